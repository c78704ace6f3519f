//! Time a fresh handle replaying a WAL tail of N small task commits (no
//! checkpoint), as a CLI process meets it. Not a test: for profiling.
//! `cargo run --release --example replay -- 50000`
use got::{Options, Props, Store, Value};
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50_000);
    let tmp = tempfile::tempdir().unwrap();
    // An existing DIR (second argument) is replayed as it is.
    let dir = std::env::args()
        .nth(2)
        .map(std::path::PathBuf::from)
        .unwrap_or(tmp.path().join(".got"));
    let build = !dir.exists();
    let opts = Options {
        create_if_missing: true,
        checkpoint_wal_bytes: u64::MAX,
        checkpoint_transactions: u64::MAX,
        durability: got::Durability::None,
        ..Options::default()
    };
    let s = Store::open(&dir, opts).unwrap();
    for b in 0..if build { n.div_ceil(100) } else { 0 } {
        s.transaction(|tx| {
            for i in b * 100..((b + 1) * 100).min(n) {
                let mut p = Props::new();
                p.insert("title".into(), format!("task {i}").into());
                p.insert("status".into(), "pending".into());
                p.insert("priority".into(), "medium".into());
                p.insert("labels".into(), Value::List(vec!["x".into()]));
                tx.put(&format!("T-{i:010}"), "task", p)?;
                if i > 0 {
                    tx.add_edge(
                        &format!("T-{i:010}"),
                        "depends_on",
                        &format!("T-{:010}", i / 2),
                        Props::new(),
                    )?;
                }
            }
            Ok(())
        })
        .unwrap();
    }
    drop(s);
    let reps = std::env::var("REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    for _ in 0..reps {
        let t = Instant::now();
        let r = Store::open(
            &dir,
            Options {
                read_only: true,
                ..Options::default()
            },
        )
        .unwrap();
        let e = r.get("T-0000000007").unwrap();
        let el = t.elapsed();
        println!(
            "replayed {n} records in {el:?} ({:.0} records/s), found {}",
            n as f64 / el.as_secs_f64(),
            e.is_some()
        );
        // The first index read derives the indexes of the replayed tail.
        let t = Instant::now();
        let top = r
            .versioned()
            .transaction(|tx| got::ready::ready(tx, Some(1)))
            .unwrap();
        let el = t.elapsed();
        println!(
            "derived the indexes of {n} records in {el:?} ({:.0} records/s), ready: {}",
            n as f64 / el.as_secs_f64(),
            top.len()
        );
        // The first read of another index derives the rest.
        let t = Instant::now();
        let pending = r
            .versioned()
            .transaction(|tx| {
                let p = indexer::prop_prefix(
                    "task",
                    "status",
                    &indexer::IndexValue::Str("pending".into()),
                )
                .expect("a string is indexed");
                Ok(tx.derived_iter(&p).take(20).count())
            })
            .unwrap();
        println!(
            "then derived the other indexes in {:?}, pending: {pending}",
            t.elapsed()
        );
    }
}
