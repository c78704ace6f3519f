//! Indexes stay equal to a rebuild from the entities through commits, deletes,
//! checkpoints, compactions, reopens and other processes' commits; stores whose
//! runs have no indexes get them rebuilt.

use crate::common;

use got::query::{Filter, Query};
use got::wal::{SimVfs, Vfs};
use got::{Options, Props, Store, Value};
use std::path::Path;
use std::sync::Arc;

const DIR: &str = "/i/.got";

fn opts() -> Options {
    Options {
        create_if_missing: true,
        segment_size_bytes: 8192,
        checkpoint_wal_bytes: 4096,
        max_runs: 3,
        ..Options::default()
    }
}

fn indexes_healthy(vfs: &Arc<SimVfs>, ctx: &str) {
    let rep = got::verify(vfs.clone() as Arc<dyn Vfs>, Path::new(DIR)).unwrap();
    assert!(rep.healthy(), "{ctx}: {:?}", rep.findings);
    assert!(
        rep.index_entries > 0,
        "{ctx}: no index entries were checked"
    );
}

#[test]
fn indexes_equal_a_rebuild_after_every_step_and_queries_equal_scans() {
    let seed =
        common::seed::seed("indexes_equal_a_rebuild_after_every_step_and_queries_equal_scans");
    let steps = if std::env::var("GOT_LONG_TESTS").is_ok() {
        3000
    } else {
        400
    };
    let mut x = seed | 1;
    let mut next = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let vfs = SimVfs::new();
    let mut procs: Vec<Store> = (0..2)
        .map(|_| Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, DIR, opts()).unwrap())
        .collect();
    let statuses = ["pending", "blocked", "completed"];
    let words = ["torn", "tail", "lock", "wal", "cli"];
    for step in 0..steps {
        let ctx = format!("seed {seed} step {step}");
        let p = next(2) as usize;
        match next(10) {
            0..=5 => {
                let id = format!("t{}", next(25));
                let mut props = Props::new();
                props.insert("status".into(), statuses[next(3) as usize].into());
                props.insert("priority".into(), Value::Int(next(4) as i64));
                let labels: Vec<Value> = words
                    .iter()
                    .filter(|_| next(3) == 0)
                    .map(|w| Value::from(*w))
                    .collect();
                props.insert("labels".into(), Value::List(labels));
                let t: Vec<&str> = (0..2).map(|_| words[next(5) as usize]).collect();
                props.insert("title".into(), t.join(" ").into());
                let kind = if next(4) == 0 { "epic" } else { "task" };
                procs[p]
                    .transaction(|tx| tx.put(&id, kind, props.clone()))
                    .unwrap();
            }
            6 => {
                let id = format!("t{}", next(25));
                match procs[p].transaction(|tx| tx.delete(&id).map(|_| ())) {
                    Ok(()) => {}
                    // Deleting an absent entity is the one error this workload
                    // expects, and then the entity really is absent.
                    Err(got::Error::NotFound(_)) => assert!(
                        procs[p].begin().unwrap().get(&id).unwrap().is_none(),
                        "{ctx}: delete of {id} said not found, but it exists"
                    ),
                    Err(e) => panic!("{ctx}: delete of {id} failed: {e}"),
                }
            }
            7 => {
                procs[p].checkpoint().unwrap();
            }
            8 => {
                // A process restarts.
                procs[p] = Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, DIR, opts()).unwrap();
            }
            _ => {
                let q = Query {
                    kind: Some(if next(2) == 0 { "task" } else { "epic" }.into()),
                    filters: match next(4) {
                        0 => vec![Filter::Eq(
                            "status".into(),
                            statuses[next(3) as usize].into(),
                        )],
                        1 => vec![Filter::Label(words[next(5) as usize].into())],
                        2 => vec![Filter::Text(words[next(5) as usize].into())],
                        _ => vec![Filter::In(
                            "priority".into(),
                            vec![Value::Int(next(4) as i64), Value::Float(next(4) as f64)],
                        )],
                    },
                    // With a limit, queries walk an index in id order and stop early.
                    limit: (next(2) == 0).then(|| 1 + next(6) as usize),
                    ..Query::default()
                };
                let mut tx = procs[p].begin().unwrap();
                let indexed = q.run(&mut tx).unwrap();
                // The same query without using indexes: read everything.
                let scanned: Vec<_> = tx
                    .list(None, None)
                    .unwrap()
                    .into_iter()
                    .filter(|e| Some(e.kind.as_str()) == q.kind.as_deref())
                    .filter(|e| q.filters.iter().all(|f| f.matches(e)))
                    .take(q.limit.unwrap_or(usize::MAX))
                    .collect();
                assert_eq!(indexed, scanned, "{ctx}: {q:?}");
            }
        }
        if step % 50 == 49 {
            indexes_healthy(&vfs, &ctx);
        }
    }
    indexes_healthy(&vfs, "end");
}

#[test]
fn a_store_whose_runs_hold_no_indexes_gets_them_rebuilt() {
    // A store written without a deriver (as before indexes existed), then
    // checkpointed: its run has derived-data version 0.
    let vfs = SimVfs::new();
    let plain = got::versioned_store::Store::open_with_vfs(
        vfs.clone() as Arc<dyn Vfs>,
        DIR,
        Options {
            create_if_missing: true,
            auto_checkpoint: false,
            ..Options::default()
        },
    )
    .unwrap();
    for i in 0..30 {
        let mut p = Props::new();
        p.insert(
            "status".into(),
            if i % 3 == 0 { "pending" } else { "completed" }.into(),
        );
        plain
            .transaction(|tx| tx.put(&format!("t{i:02}"), "task", p.clone()))
            .unwrap();
    }
    plain.checkpoint().unwrap();
    drop(plain);
    // Opened with indexes: rebuilt from the entities, and queries use them.
    let s = Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, DIR, opts()).unwrap();
    let q = Query {
        kind: Some("task".into()),
        filters: vec![Filter::Eq("status".into(), "pending".into())],
        ..Query::default()
    };
    assert_eq!(q.run(&mut s.begin().unwrap()).unwrap().len(), 10);
    indexes_healthy(&vfs, "after rebuild");
    // The next checkpoint stores them (merging every run), so a later open need
    // not rebuild: the run now carries the index version.
    s.checkpoint().unwrap();
    drop(s);
    let s = Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, DIR, opts()).unwrap();
    assert_eq!(q.run(&mut s.begin().unwrap()).unwrap().len(), 10);
    indexes_healthy(&vfs, "after the checkpoint");
}

/// A damaged index block is never trusted: verify names it (exit 7 from the CLI),
/// readers rebuild the indexes from the entities with a warning and answer
/// exactly as before, and the next checkpoint rewrites the run without it.
#[test]
fn a_damaged_index_block_is_rebuilt_from_the_entities_with_a_warning() {
    use got::versioned_store::{manifest, run::Run};
    use got::wal::RealVfs;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(".got");
    let store = Store::open(
        &dir,
        Options {
            create_if_missing: true,
            ..Options::default()
        },
    )
    .unwrap();
    let labels = ["wal", "cli", "x"];
    store
        .transaction(|tx| {
            for i in 0..1500 {
                let mut p = Props::new();
                p.insert("status".into(), ["pending", "completed"][i % 2].into());
                p.insert("labels".into(), Value::List(vec![labels[i % 3].into()]));
                p.insert("title".into(), format!("task {i} of the torn tail").into());
                tx.put(&format!("t{i:05}"), "task", p)?;
            }
            Ok(())
        })
        .unwrap();
    store.checkpoint().unwrap();
    let queries = [
        Query {
            kind: Some("task".into()),
            filters: vec![
                Filter::Eq("status".into(), "pending".into()),
                Filter::Label("x".into()),
            ],
            limit: Some(20),
            ..Query::default()
        },
        Query {
            kind: Some("task".into()),
            filters: vec![Filter::Text("torn".into())],
            ..Query::default()
        },
    ];
    let answers = |s: &Store| -> Vec<Vec<String>> {
        let mut tx = s.begin().unwrap();
        let mut out: Vec<Vec<String>> = queries
            .iter()
            .map(|q| q.run(&mut tx).unwrap().into_iter().map(|e| e.id).collect())
            .collect();
        out.push(
            got::ready::ready(&mut tx, Some(50))
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .collect(),
        );
        out
    };
    let before = answers(&store);
    assert_eq!(before[0].len(), 20);
    assert_eq!(before[1].len(), 1500);
    drop(store);

    // Damage one block that holds only index entries.
    let m = manifest::read(&RealVfs, &dir).unwrap();
    assert_eq!(m.runs.len(), 1);
    let run = Run::open(&RealVfs, &dir.join("runs"), &m.runs[0], m.store_id).unwrap();
    let spans = run.block_spans().unwrap();
    assert!(spans.iter().any(|s| !s.2), "some blocks hold entities");
    let (off, len, _) = *spans
        .iter()
        .rev()
        .find(|s| s.2)
        .expect("an index-only block");
    let path = run.path().to_path_buf();
    drop(run);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(off + len as u64 / 2) as usize] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();

    let rep = got::verify(Arc::new(RealVfs), &dir).unwrap();
    assert!(!rep.healthy());
    assert!(
        rep.findings
            .iter()
            .any(|f| f.contains("index entries only")),
        "{:?}",
        rep.findings
    );
    let got_cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_got"))
            .arg("--store")
            .arg(&dir)
            .args(args)
            .output()
            .unwrap()
    };
    assert_eq!(got_cli(&["verify"]).status.code(), Some(7));

    // A reader: the same answers, and a warning that says what happened.
    let o = got_cli(&[
        "entity", "list", "--kind", "task", "--text", "torn", "--json",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning") && stderr.contains("damaged"),
        "{stderr}"
    );
    let store = Store::open(&dir, Options::default()).unwrap();
    assert_eq!(answers(&store), before);
    // Commits after the rebuild keep the indexes right.
    store
        .transaction(|tx| {
            let mut p = Props::new();
            p.insert("status".into(), "pending".into());
            p.insert("labels".into(), Value::List(vec!["x".into()]));
            tx.put("a0000", "task", p)
        })
        .unwrap();
    let now = answers(&store);
    assert_eq!(now[0][0], "a0000");
    assert_eq!(now[0][1..], before[0][..19]);

    // The checkpoint rewrites the run from entities and rebuilt indexes.
    store.checkpoint().unwrap();
    assert!(!path.exists(), "the damaged run is retired");
    drop(store);
    let rep = got::verify(Arc::new(RealVfs), &dir).unwrap();
    assert!(rep.healthy(), "{:?}", rep.findings);
    let o = got_cli(&["entity", "list", "--kind", "task", "--text", "torn"]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("warning"));
}

/// Index entries are derived when first needed, not as the log is replayed. A
/// handle that replayed other handles' commits and never read an index must
/// still write complete indexes into the runs of its checkpoint and into its
/// backups.
#[test]
fn a_handle_that_never_read_an_index_checkpoints_and_backs_up_complete_indexes() {
    let vfs = SimVfs::new();
    let o = Options {
        auto_checkpoint: false,
        ..opts()
    };
    let a = Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, DIR, o.clone()).unwrap();
    let commit = |s: &Store, i: usize| {
        s.transaction(|tx| {
            let id = format!("t{i:03}");
            let mut p = Props::new();
            p.insert(
                "status".into(),
                ["pending", "blocked", "completed"][i % 3].into(),
            );
            p.insert(
                "labels".into(),
                Value::List(vec![format!("l{}", i % 4).into()]),
            );
            p.insert("title".into(), format!("task {i} of the wal tail").into());
            tx.put(&id, "task", p)?;
            if i > 0 {
                tx.add_edge(&id, "depends_on", &format!("t{:03}", i / 2), Props::new())?;
            }
            // Never an edge's target (those are t000..t049).
            if i % 7 == 6 && i >= 56 {
                tx.delete(&format!("t{:03}", i - 3))?;
            }
            Ok(())
        })
        .unwrap();
    };
    for i in 0..60 {
        commit(&a, i);
    }
    // `b` replays the 60 transactions at open; `a` commits 20 more, which `b`
    // applies when it checkpoints. `b` reads no index before that.
    let b = Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, DIR, o.clone()).unwrap();
    for i in 60..80 {
        commit(&a, i);
    }
    let info = b.checkpoint().unwrap();
    assert!(info.checkpoint_lsn >= 80, "{info:?}");
    drop((a, b));
    indexes_healthy(&vfs, "after a checkpoint by a handle that read no index");
    // The same for a backup, restored over the store.
    let a = Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, DIR, o.clone()).unwrap();
    for i in 80..100 {
        commit(&a, i);
    }
    let c = Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, DIR, o.clone()).unwrap();
    let backup = c.backup(None).unwrap();
    drop((a, c));
    got::versioned_store::backup::restore(
        vfs.clone() as Arc<dyn Vfs>,
        Path::new(DIR),
        &backup.name,
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    indexes_healthy(
        &vfs,
        "after restoring a backup by a handle that read no index",
    );
    // And queries from a fresh handle agree with scans.
    let s = Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, DIR, o).unwrap();
    let q = Query {
        kind: Some("task".into()),
        filters: vec![Filter::Eq("status".into(), "pending".into())],
        ..Query::default()
    };
    let by_index: Vec<String> = q
        .run(&mut s.begin().unwrap())
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    let by_scan: Vec<String> = s
        .list(Some("task"), None)
        .unwrap()
        .into_iter()
        .filter(|e| e.props.get("status") == Some(&Value::from("pending")))
        .map(|e| e.id)
        .collect();
    assert!(!by_scan.is_empty());
    assert_eq!(by_index, by_scan);
}

/// A long log tail (thousands of written keys, no checkpoint) is derived on
/// several threads when an index is first read: its indexes equal a rebuild
/// from the entities, the ready queue included, where a task's dependencies
/// are completed by a later transaction of the same tail. The ready queue is
/// derived first, alone; the other indexes at the first read of one of them.
#[test]
fn a_long_tail_derived_on_several_threads_equals_a_rebuild() {
    let vfs = SimVfs::new();
    let o = Options {
        auto_checkpoint: false,
        checkpoint_wal_bytes: u64::MAX,
        segment_size_bytes: got::Options::default().segment_size_bytes,
        ..opts()
    };
    let s = Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, DIR, o).unwrap();
    let task = |t: usize, i: usize, status: &str| {
        let mut p = Props::new();
        p.insert(
            "title".into(),
            Value::from(format!("task {t} {i} of the tail")),
        );
        p.insert("status".into(), Value::from(status));
        p.insert("priority".into(), Value::from(["low", "high"][i % 2]));
        p
    };
    for t in 0..12 {
        s.transaction(|tx| {
            for i in 0..300 {
                let id = format!("T-{t:02}-{i:03}");
                tx.put(&id, "task", task(t, i, "pending"))?;
                if t > 0 {
                    tx.add_edge(
                        &id,
                        "depends_on",
                        &format!("T-{:02}-{i:03}", t - 1),
                        Props::new(),
                    )?;
                }
            }
            // Completing a third of the previous transaction's tasks (a
            // different third each time) makes their dependents ready.
            if t > 0 {
                for i in (0..300).filter(|i| i % 3 == t % 3) {
                    tx.put(
                        &format!("T-{:02}-{i:03}", t - 1),
                        "task",
                        task(t - 1, i, "completed"),
                    )?;
                }
            }
            Ok(())
        })
        .unwrap();
    }
    // What is ready, by the rule: pending, and the one dependency (the task of
    // the transaction before, same number) completed.
    let completed = |t: usize, i: usize| t < 11 && i % 3 == (t + 1) % 3;
    let want: usize = (0..12)
        .flat_map(|t| (0..300).map(move |i| (t, i)))
        .filter(|&(t, i)| !completed(t, i) && (t == 0 || completed(t - 1, i)))
        .count();
    let ready = s
        .transaction(|tx| got::ready::ready(tx, None))
        .unwrap()
        .len();
    assert_eq!(ready, want);
    assert!(want > 1000, "test construction: {want}");
    // The ready queue's read derived the ready queue alone; the first read of
    // another index derives the rest, and the checkpoint writes both out.
    let q = Query {
        kind: Some("task".into()),
        filters: vec![Filter::Eq("priority".into(), "high".into())],
        ..Query::default()
    };
    let by_index = q.run(&mut s.begin().unwrap()).unwrap().len();
    let by_scan = s
        .list(Some("task"), None)
        .unwrap()
        .iter()
        .filter(|e| e.props.get("priority") == Some(&Value::from("high")))
        .count();
    assert_eq!((by_index, by_scan), (12 * 150, 12 * 150));
    s.checkpoint().unwrap();
    drop(s);
    indexes_healthy(&vfs, "a long tail");
}
