use versioned_store::{props, Direction, Error, Options, Store, Value};
use wal::SimVfs;

fn opts() -> Options {
    Options {
        create_if_missing: true,
        segment_size_bytes: 8192,
        checkpoint_wal_bytes: 4096,
        max_runs: 3,
        ..Options::default()
    }
}

#[test]
fn put_get_history_edges_and_reopen_across_checkpoints() {
    let vfs = SimVfs::new();
    let dir = std::path::Path::new("/s/.got");
    let s = Store::open_with_vfs(vfs.clone(), dir, opts()).unwrap();
    let mut ids = Vec::new();
    for i in 0..300i64 {
        let id = s
            .transaction(|tx| Ok(tx.create("task", props([("n", Value::Int(i))]))?.id))
            .unwrap();
        ids.push(id);
    }
    s.transaction(|tx| tx.add_edge(&ids[0], "depends_on", &ids[1], Default::default()))
        .unwrap();
    s.transaction(|tx| {
        tx.put(&ids[0], "task", props([("n", Value::Int(-1))]))
            .map(|_| ())
    })
    .unwrap();
    let h = s.history(&ids[0]).unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[1].version, 2);
    drop(s);
    let s = Store::open_with_vfs(vfs.clone(), dir, opts()).unwrap();
    assert_eq!(s.list(Some("task"), None).unwrap().len(), 300);
    assert_eq!(s.get(&ids[0]).unwrap().unwrap().props["n"], Value::Int(-1));
    let mut tx = s.begin().unwrap();
    assert_eq!(tx.edges(&ids[1], Direction::In, None).unwrap().len(), 1);
    drop(tx);
    // Deleting removes the edge too.
    s.transaction(|tx| tx.delete(&ids[1]).map(|_| ())).unwrap();
    let mut tx = s.begin().unwrap();
    assert!(tx.edges(&ids[0], Direction::Out, None).unwrap().is_empty());
    drop(tx);
    assert!(matches!(
        s.transaction(|tx| tx.add_edge(&ids[0], "x", &ids[1], Default::default())),
        Err(Error::NotFound(_))
    ));
    let h = s.history(&ids[0]).unwrap();
    let first_lsn = h[0].lsn;
    assert_eq!(
        s.get_at(&ids[0], first_lsn).unwrap().unwrap().props["n"],
        Value::Int(0)
    );
}

#[test]
fn two_handles_conflict_on_compare_and_swap() {
    let vfs = SimVfs::new();
    let dir = std::path::Path::new("/s/.got");
    let a = Store::open_with_vfs(vfs.clone(), dir, opts()).unwrap();
    let b = Store::open_with_vfs(vfs.clone(), dir, opts()).unwrap();
    a.transaction(|tx| {
        tx.put("c", "counter", props([("v", Value::Int(0))]))
            .map(|_| ())
    })
    .unwrap();
    let mut ta = a.begin().unwrap();
    let mut tb = b.begin().unwrap();
    let va = ta.get("c").unwrap().unwrap();
    let vb = tb.get("c").unwrap().unwrap();
    ta.put("c", "counter", props([("v", Value::Int(1))]))
        .unwrap();
    tb.put("c", "counter", props([("v", Value::Int(1))]))
        .unwrap();
    assert_eq!(va.version, vb.version);
    ta.commit().unwrap();
    assert!(matches!(tb.commit(), Err(Error::Conflict(_))));
    assert_eq!(b.get("c").unwrap().unwrap().version, 2);
}

#[test]
fn a_run_that_does_not_verify_is_never_installed_and_the_next_checkpoint_rebuilds_it() {
    let vfs = SimVfs::new();
    let dir = std::path::Path::new("/s/.got");
    let o = Options {
        auto_checkpoint: false,
        ..opts()
    };
    let s = Store::open_with_vfs(vfs.clone(), dir, o.clone()).unwrap();
    let mut ids = Vec::new();
    for i in 0..50i64 {
        ids.push(
            s.transaction(|tx| Ok(tx.create("task", props([("n", Value::Int(i))]))?.id))
                .unwrap(),
        );
    }
    let before = versioned_store::manifest::read(vfs.as_ref(), dir).unwrap();
    // The disk silently flips a bit in the run's first block payload (write 1 is
    // the block's length and checksum, write 2 its payload).
    vfs.corrupt_nth_write(2, "/runs/");
    let err = s.checkpoint().unwrap_err();
    assert!(err.is_corruption(), "{err}");
    // Nothing switched, nothing named, nothing lost.
    assert_eq!(
        versioned_store::manifest::read(vfs.as_ref(), dir).unwrap(),
        before
    );
    let runs = wal::Vfs::list_dir(vfs.as_ref(), &dir.join("runs")).unwrap();
    assert!(runs.is_empty(), "left behind: {runs:?}");
    assert_eq!(s.list(None, None).unwrap().len(), 50);
    // The next checkpoint rebuilds the run from the WAL.
    vfs.clear_faults();
    let info = s.checkpoint().unwrap();
    assert_eq!(info.checkpoint_lsn, 50);
    drop(s);
    let s = Store::open_with_vfs(vfs.clone(), dir, o).unwrap();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(s.get(id).unwrap().unwrap().props["n"], Value::Int(i as i64));
    }
    assert!(versioned_store::verify(vfs.clone(), dir).unwrap().healthy());
}

/// A checkpoint records where the log continues after it, so that opening reads
/// only the frames after the checkpoint. The hint is used only when the frame it
/// names proves it right; any other hint is ignored and opening reads the
/// segment from its start.
#[test]
fn opening_starts_reading_the_log_where_the_checkpoint_left_it() {
    use versioned_store::manifest::{self, Manifest, WalHint};
    use wal::{Vfs, Wal, WalOptions};
    let vfs = SimVfs::new();
    let dir = std::path::Path::new("/h/.got");
    let o = Options {
        create_if_missing: true,
        auto_checkpoint: false,
        ..Options::default()
    };
    let put = |s: &Store, i: i64| {
        s.transaction(|tx| {
            tx.put(&format!("k{i:03}"), "t", props([("n", Value::Int(i))]))
                .map(|_| ())
        })
        .unwrap();
    };
    let s = Store::open_with_vfs(vfs.clone(), dir, o.clone()).unwrap();
    for i in 0..50 {
        put(&s, i);
    }
    s.checkpoint().unwrap();
    for i in 50..60 {
        put(&s, i);
    }
    drop(s);
    let m = manifest::read(vfs.as_ref(), dir).unwrap();
    let hint = m
        .wal_hint
        .expect("a checkpoint records where the log continues");
    let wal = Wal::open(
        vfs.clone() as std::sync::Arc<dyn Vfs>,
        dir,
        m.store_id,
        WalOptions::default(),
        false,
    )
    .unwrap();
    let full = wal.position(m.checkpoint_lsn).unwrap();
    assert_eq!((full.segment, full.offset), (hint.segment, hint.offset));
    let good = (hint.segment, hint.last_frame, hint.offset);
    assert_eq!(
        wal.position_from(m.checkpoint_lsn, Some(good)).unwrap(),
        full
    );
    let (seg, last, off) = good;
    let bad = [
        (seg, last, off + 8),
        (seg, last + 8, off),
        (seg, 64, off),
        (seg, last, last),
        (seg + 1, last, off),
        (seg, 3, off),
        (seg, last, u64::MAX / 2),
        (seg, 0, off),
    ];
    for b in bad {
        assert_eq!(
            wal.position_from(m.checkpoint_lsn, Some(b)).unwrap(),
            full,
            "hint {b:?}"
        );
    }
    // A store whose manifest names a wrong place opens with every commit.
    manifest::write(
        vfs.as_ref(),
        dir,
        &Manifest {
            wal_hint: Some(WalHint {
                segment: seg,
                last_frame: 64,
                offset: off,
            }),
            ..m
        },
    )
    .unwrap();
    let s = Store::open_with_vfs(vfs.clone(), dir, o).unwrap();
    for i in 0..60 {
        assert_eq!(
            s.get(&format!("k{i:03}")).unwrap().unwrap().props["n"],
            Value::Int(i)
        );
    }
}

#[test]
fn meta_records_commit_with_entities_survive_checkpoints_and_stay_out_of_lists() {
    let vfs = SimVfs::new();
    let dir = std::path::Path::new("/s/.got");
    let s = Store::open_with_vfs(vfs.clone(), dir, opts()).unwrap();
    s.transaction(|tx| {
        tx.put("T-1", "task", props([("n", Value::Int(1))]))?;
        tx.put_meta("sync/e/T-1", b"clock one")?;
        tx.put_meta("sync/e/T-2", b"clock two")?;
        tx.put_meta("other", b"x")
    })
    .unwrap();
    // Enough commits to rotate, checkpoint and compact around the records.
    for i in 0..200i64 {
        s.transaction(|tx| {
            tx.put("T-1", "task", props([("n", Value::Int(i))]))
                .map(|_| ())
        })
        .unwrap();
    }
    s.transaction(|tx| tx.put_meta("sync/e/T-2", b"")).unwrap();
    drop(s);
    let s = Store::open_with_vfs(vfs.clone(), dir, opts()).unwrap();
    let mut tx = s.begin().unwrap();
    assert_eq!(&*tx.get_meta("sync/e/T-1").unwrap().unwrap(), b"clock one");
    assert_eq!(tx.get_meta("sync/e/T-2").unwrap(), None, "cleared");
    let names: Vec<String> = tx
        .meta_with_prefix("sync/")
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["sync/e/T-1"]);
    assert_eq!(
        tx.list(None, None).unwrap().len(),
        1,
        "meta records are no entities"
    );
    drop(tx);
    let stats = s.content_stats().unwrap();
    assert_eq!(stats.entities_by_kind.values().sum::<u64>(), 1);
    assert!(versioned_store::verify(vfs.clone(), dir).unwrap().healthy());
    assert!(matches!(
        s.transaction(|tx| tx.put_meta("", b"x")),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn a_meta_record_read_by_a_transaction_conflicts_when_another_commit_changes_it() {
    let vfs = SimVfs::new();
    let dir = std::path::Path::new("/s/.got");
    let s = Store::open_with_vfs(vfs.clone(), dir, opts()).unwrap();
    s.transaction(|tx| tx.put_meta("sync/hlc", b"1")).unwrap();
    let mut a = s.begin().unwrap();
    assert_eq!(&*a.get_meta("sync/hlc").unwrap().unwrap(), b"1");
    a.put_meta("sync/hlc", b"2a").unwrap();
    s.transaction(|tx| tx.put_meta("sync/hlc", b"2b")).unwrap();
    assert!(matches!(a.commit(), Err(Error::Conflict(_))));
    let mut b = s.begin().unwrap();
    assert_eq!(&*b.get_meta("sync/hlc").unwrap().unwrap(), b"2b");
}

#[test]
fn put_created_at_sets_the_creation_time_of_what_it_creates_only() {
    let vfs = SimVfs::new();
    let dir = std::path::Path::new("/s/.got");
    let s = Store::open_with_vfs(vfs.clone(), dir, opts()).unwrap();
    s.transaction(|tx| {
        tx.put_created_at("T-1", "task", props([]), 1_000)
            .map(|_| ())
    })
    .unwrap();
    assert_eq!(s.get("T-1").unwrap().unwrap().created_at, 1_000);
    s.transaction(|tx| {
        tx.put_created_at("T-1", "task", props([]), 2_000)
            .map(|_| ())
    })
    .unwrap();
    let e = s.get("T-1").unwrap().unwrap();
    assert_eq!((e.created_at, e.version), (1_000, 2));
}

/// A lazy walk copies the delta 1,024 keys at a time, taking the state's lock
/// again for each chunk: ids spread over a run and a delta of several chunks
/// come out once each, in order, as of the walk's snapshot, though a commit
/// and a checkpoint (which moves the whole delta into a new run) land mid-walk.
#[test]
fn a_lazy_walk_over_a_long_delta_keeps_its_snapshot_across_a_checkpoint() {
    let vfs = SimVfs::new();
    let dir = std::path::Path::new("/s/.got");
    let o = Options {
        create_if_missing: true,
        auto_checkpoint: false,
        checkpoint_wal_bytes: u64::MAX,
        ..Options::default()
    };
    let s = Store::open_with_vfs(vfs.clone(), dir, o).unwrap();
    let id = |i: usize| format!("E{i:05}");
    let put = |ids: Vec<usize>| {
        for part in ids.chunks(250) {
            s.transaction(|tx| {
                for &i in part {
                    tx.put(&id(i), "item", props([("n", Value::Int(i as i64))]))?;
                }
                Ok(())
            })
            .unwrap();
        }
    };
    // Odd ids in a run, even ones (3,000: three chunks) in the delta.
    put((1..6000).step_by(2).collect());
    s.checkpoint().unwrap();
    put((0..6000).step_by(2).collect());
    let tx = s.begin().unwrap();
    let mut walk = tx.entity_ids_after("E", "");
    let mut seen: Vec<String> = walk.by_ref().take(10).map(Result::unwrap).collect();
    // After the snapshot: a new id in the middle and a deletion (the snapshot
    // still holds it), then a checkpoint that empties the delta.
    s.transaction(|tx| {
        tx.put("E03000a", "item", props([]))?;
        tx.delete(&id(4001)).map(|_| ())
    })
    .unwrap();
    s.checkpoint().unwrap();
    seen.extend(walk.map(Result::unwrap));
    let want: Vec<String> = (0..6000).map(id).collect();
    assert_eq!(seen.len(), want.len());
    assert!(seen == want, "the walk differs from its snapshot");
}
