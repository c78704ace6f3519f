//! Builds a store of N tasks (status, priority, labels, ~3 depends_on edges each)
//! and times the reads issue 3 names. Not a test: numbers for docs/benchmarks.md.
//! `cargo run --release --example scale -- 100000 [DIR]`
use got::query::{Filter, Query};
use got::{Options, Props, Store, Value};
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::args()
        .nth(2)
        .map(std::path::PathBuf::from)
        .unwrap_or(tmp.path().join(".got"));
    let opts = Options {
        create_if_missing: true,
        ..Options::default()
    };
    let reuse = dir.exists();
    let store = Store::open(&dir, opts.clone()).unwrap();
    let statuses = ["pending", "in_progress", "blocked", "completed"];
    let prios = ["low", "medium", "high", "critical"];
    let labels = ["wal", "cli", "bug", "docs", "perf", "x"];
    let t = Instant::now();
    let batch = 1000;
    let mut x = 88172645463325252u64;
    let mut rnd = move |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    // An existing DIR is reused as it is (to time reads again without a rebuild).
    let batches = if reuse { 0 } else { n.div_ceil(batch) };
    for b in 0..batches {
        store
            .transaction(|tx| {
                for i in b * batch..((b + 1) * batch).min(n) {
                    let mut p = Props::new();
                    p.insert("status".into(), statuses[rnd(4) as usize].into());
                    p.insert("priority".into(), prios[rnd(4) as usize].into());
                    p.insert(
                        "labels".into(),
                        Value::List(vec![labels[rnd(6) as usize].into()]),
                    );
                    p.insert("title".into(), format!("task number {i}").into());
                    tx.put(&format!("T-{i:08}"), "task", p)?;
                    for _ in 0..3 {
                        if i > 0 {
                            let to = format!("T-{:08}", rnd(i as u64));
                            tx.add_edge(
                                &format!("T-{i:08}"),
                                "depends_on",
                                &to,
                                Default::default(),
                            )?;
                        }
                    }
                }
                Ok(())
            })
            .unwrap();
    }
    store.checkpoint().unwrap();
    println!("built {n} tasks in {:?}", t.elapsed());
    // Durable single-entity commits at this size.
    let t = Instant::now();
    for i in 0..200 {
        store
            .transaction(|tx| tx.put(&format!("C-{i}"), "note", Props::new()))
            .unwrap();
    }
    println!("durable commit at {n}: {:?} each", t.elapsed() / 200);
    drop(store);
    // A fresh handle (as a new process would): open + get one entity.
    let t = Instant::now();
    let s = Store::open(
        &dir,
        Options {
            read_only: true,
            ..Options::default()
        },
    )
    .unwrap();
    let e = s.get(&format!("T-{:08}", n / 2)).unwrap();
    println!(
        "fresh open + get by id: {:?} (found {})",
        t.elapsed(),
        e.is_some()
    );
    let q = Query {
        kind: Some("task".into()),
        filters: vec![
            Filter::Eq("status".into(), "pending".into()),
            Filter::Label("x".into()),
        ],
        limit: Some(20),
        ..Query::default()
    };
    let mut tx = s.begin().unwrap();
    let _ = q.run(&mut tx).unwrap();
    let reps: u32 = std::env::var("GOT_SCALE_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let t = Instant::now();
    for _ in 0..reps {
        let _ = q.run(&mut tx).unwrap();
    }
    println!(
        "20 pending tasks with label x (warm): {:?}",
        t.elapsed() / reps
    );
    let t = Instant::now();
    let r = got::ready::ready(&mut tx, Some(20)).unwrap();
    println!("top 20 ready: {:?} ({} found)", t.elapsed(), r.len());
    let t = Instant::now();
    for _ in 0..20 {
        let _ = got::ready::ready(&mut tx, Some(20)).unwrap();
    }
    println!("top 20 ready (warm): {:?}", t.elapsed() / 20);
    drop(tx);
    drop(s);
    // A fresh handle asking for the next ready task, as `got query ready --limit 1`.
    let t = Instant::now();
    let s = Store::open(
        &dir,
        Options {
            read_only: true,
            ..Options::default()
        },
    )
    .unwrap();
    let next = got::ready::ready(&mut s.begin().unwrap(), Some(1)).unwrap();
    println!(
        "fresh open + next ready task: {:?} ({} found)",
        t.elapsed(),
        next.len()
    );
}
