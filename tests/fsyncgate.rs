//! Linux's fsync failure (the PostgreSQL "fsyncgate" lesson) on the simulated disk:
//! after a failed writeback the kernel reports the error once and marks the dirty
//! pages clean. The bytes stay readable from the page cache, no later `fsync`
//! writes them, a power loss loses them and a process crash does not
//! (`SyncFailure::DropsDirty`).
//!
//! What must hold: the commit whose sync failed is "outcome unknown", the handle
//! is poisoned, and whatever any later process is shown is durable — nothing is
//! visible that a power loss then takes away, and no acknowledged commit is lost.
//! The frame of the failed commit may land or not, but not land for one reader
//! and vanish for the next.

use crate::common;

use common::seed::seed;
use got::wal::sim::{FaultError, OpFilter, SyncFailure};
use got::wal::{SimVfs, Vfs};
use got::{Options, Props, Store, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

const DIR: &str = "/fg/.got";

type Snapshot = BTreeMap<String, (u64, Props)>;

fn opts() -> Options {
    Options {
        create_if_missing: true,
        auto_checkpoint: false,
        ..Options::default()
    }
}

fn open(vfs: &Arc<SimVfs>) -> Store {
    Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, DIR, opts())
        .unwrap_or_else(|e| panic!("open: {e}"))
}

fn snapshot(s: &Store) -> Snapshot {
    s.list(None, None)
        .unwrap()
        .into_iter()
        .map(|e| (e.id, (e.version, e.props)))
        .collect()
}

fn put(s: &Store, id: &str, n: i64) -> got::Result<()> {
    s.transaction(|tx| {
        let mut p = Props::new();
        p.insert("n".into(), Value::Int(n));
        tx.put(id, "task", p)
    })
    .map(|_| ())
}

/// What a new process sees, and that a power loss right after keeps exactly that.
fn seen_and_durable(vfs: &Arc<SimVfs>, ctx: &str) -> Snapshot {
    let s = open(vfs);
    let seen = snapshot(&s);
    drop(s);
    vfs.crash_drop_all();
    let s = open(vfs);
    assert_eq!(
        snapshot(&s),
        seen,
        "{ctx}: a process was shown commits that a power loss took away"
    );
    seen
}

/// The commit's sync fails once and its dirty pages are dropped: the frame is
/// revoked (its header zeroed and synced), the handle refuses further writes, and
/// no later process ever sees the commit.
#[test]
fn a_commit_whose_sync_dropped_its_pages_is_revoked_and_never_seen() {
    let vfs = SimVfs::new();
    vfs.set_sync_failure(SyncFailure::DropsDirty);
    let s = open(&vfs);
    put(&s, "T-a", 1).unwrap();
    vfs.fail_op(1, OpFilter::Sync, FaultError::Eio, false);
    let e = put(&s, "T-b", 2).unwrap_err();
    assert!(e.is_outcome_unknown(), "{e}");
    let again = put(&s, "T-c", 3).unwrap_err();
    assert!(
        again.is_outcome_unknown(),
        "the handle is poisoned: {again}"
    );
    drop(s);
    vfs.crash_keep_all();
    let seen = seen_and_durable(&vfs, "after the revoke");
    assert_eq!(seen.keys().collect::<Vec<_>>(), vec!["T-a"]);
}

/// A commit cut at each of its operations: that operation and every one after it
/// fail until the process dies, so a frame whose sync failed may not be revoked
/// either (its zeroing fails too) and the page cache still holds it when the next
/// process starts. That process must not build on bytes the disk never got:
/// whatever it shows survives a power loss, and so does its own acknowledged
/// commit. `before` commits precede the one cut; `opts` may make it rotate.
fn cut_a_commit_at_every_operation(
    opts: &Options,
    before: usize,
    value_bytes: usize,
    rotates: bool,
) {
    let open = |vfs: &Arc<SimVfs>| {
        Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, DIR, opts.clone())
            .unwrap_or_else(|e| panic!("open: {e}"))
    };
    let put = |s: &Store, id: &str, n: usize| {
        s.transaction(|tx| {
            let mut p = Props::new();
            p.insert("n".into(), Value::Int(n as i64));
            p.insert("pad".into(), Value::String("x".repeat(value_bytes)));
            tx.put(id, "task", p)
        })
        .map(|_| ())
    };
    let segments = |vfs: &Arc<SimVfs>| {
        vfs.list_dir(&std::path::Path::new(DIR).join("wal"))
            .unwrap()
    };
    let (total, rotated) = {
        let vfs = SimVfs::new();
        let s = open(&vfs);
        for i in 0..before {
            put(&s, &format!("T-{i}"), i).unwrap();
        }
        let (ops, segs) = (vfs.op_count(), segments(&vfs));
        put(&s, "T-cut", 99).unwrap();
        (vfs.op_count() - ops, segments(&vfs) != segs)
    };
    assert_eq!(
        rotated, rotates,
        "test construction: does the cut commit rotate?"
    );
    let mut unknown = 0;
    for k in 1..=total {
        for next_commits in [false, true] {
            let ctx = format!(
                "failing from operation {k} of {total} (rotating: {rotated}), next commits: {next_commits}"
            );
            let vfs = SimVfs::new();
            vfs.set_sync_failure(SyncFailure::DropsDirty);
            let s = open(&vfs);
            for i in 0..before {
                put(&s, &format!("T-{i}"), i).unwrap();
            }
            let acked = snapshot(&s);
            vfs.fail_op(k, OpFilter::Any, FaultError::Eio, true);
            if let Err(e) = put(&s, "T-cut", 99) {
                unknown += e.is_outcome_unknown() as usize;
            }
            drop(s);
            vfs.clear_faults();
            // The process dies; the page cache (with any dropped frame) lives on.
            vfs.crash_keep_all();
            let s = open(&vfs);
            let mut want = snapshot(&s);
            for id in acked.keys() {
                assert_eq!(want.get(id), acked.get(id), "{ctx}: acknowledged {id} lost");
            }
            if next_commits {
                put(&s, "T-next", 100).unwrap();
                want = snapshot(&s);
            }
            drop(s);
            vfs.crash_drop_all();
            let s = Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, DIR, opts.clone())
                .unwrap_or_else(|e| panic!("{ctx}: after the power loss: {e}"));
            assert_eq!(
                snapshot(&s),
                want,
                "{ctx}: shown, then lost by a power loss"
            );
        }
    }
    assert!(unknown > 0, "no cut made the outcome unknown");
}

#[test]
fn a_frame_the_kernel_dropped_is_never_shown_then_lost() {
    cut_a_commit_at_every_operation(&opts(), 1, 1, false);
}

/// The same for a commit that closes its segment and installs the next: the
/// end-of-segment frame's sync may be the one that failed.
#[test]
fn a_rotation_the_kernel_dropped_is_never_shown_then_lost() {
    let small = Options {
        segment_size_bytes: 4096,
        ..opts()
    };
    cut_a_commit_at_every_operation(&small, 3, 900, true);
}

/// The same at random: many commits, sync failures now and then (once, or until
/// the process dies), process crashes and power losses, in the Linux mode. After
/// each recovery, what a process is shown must survive the next power loss, and
/// every acknowledged commit must be there.
#[test]
fn random_sync_failures_that_drop_pages_lose_nothing_acknowledged() {
    let seed = seed("fsyncgate random");
    let rounds = if std::env::var_os("GOT_LONG_TESTS").is_some() {
        400
    } else {
        40
    };
    let mut rng = common::model::Rng::new(seed);
    let (mut failed, mut unknown_landed) = (0u64, 0u64);
    for round in 0..rounds {
        let ctx = format!("round {round} (seed {seed})");
        let vfs = SimVfs::new();
        vfs.set_sync_failure(SyncFailure::DropsDirty);
        let mut acked: BTreeMap<String, i64> = BTreeMap::new();
        let mut unknown: Vec<(String, i64)> = Vec::new();
        let mut n = 0i64;
        for _process in 0..4 {
            let s = open(&vfs);
            let seen = snapshot(&s);
            // A commit of unknown outcome either landed (and is then as good as
            // acknowledged) or did not.
            for (id, v) in unknown.drain(..) {
                if seen.get(&id).map(|(_, p)| p["n"].clone()) == Some(Value::Int(v)) {
                    unknown_landed += 1;
                    acked.insert(id, v);
                }
            }
            for (id, v) in &acked {
                let got = seen.get(id).map(|(_, p)| p["n"].clone());
                assert_eq!(got, Some(Value::Int(*v)), "{ctx}: acknowledged {id} lost");
            }
            for _ in 0..(1 + rng.below(12)) {
                n += 1;
                let id = format!("T-{}", rng.below(6));
                if rng.one_in(5) {
                    // A sync, or any operation of the next commits (the zeroing of
                    // a frame whose sync failed among them), once or until the
                    // process dies.
                    let filter = *rng.pick(&[OpFilter::Sync, OpFilter::Any]);
                    vfs.fail_op(1 + rng.below(8), filter, FaultError::Eio, rng.one_in(2));
                }
                match put(&s, &id, n) {
                    Ok(()) => {
                        acked.insert(id, n);
                    }
                    Err(e) if e.is_outcome_unknown() => {
                        failed += 1;
                        unknown.push((id, n));
                        break;
                    }
                    Err(e) => {
                        // A failure before the frame was written: nothing landed.
                        failed += 1;
                        assert!(!e.is_corruption(), "{ctx}: {e}");
                        break;
                    }
                }
            }
            drop(s);
            vfs.clear_faults();
            if rng.one_in(2) {
                vfs.crash_keep_all();
            } else {
                let shown = {
                    let s = open(&vfs);
                    snapshot(&s)
                };
                vfs.crash(rng.next_u64());
                let s = open(&vfs);
                assert_eq!(
                    snapshot(&s),
                    shown,
                    "{ctx}: shown, then lost by a power loss"
                );
                // What was shown is what there is: unknown outcomes are settled.
                for (id, (_, p)) in &shown {
                    if let Value::Int(v) = p["n"] {
                        acked.insert(id.clone(), v);
                    }
                }
                unknown.clear();
            }
        }
    }
    eprintln!("{rounds} rounds: {failed} commits failed, {unknown_landed} unknown outcomes landed");
    assert!(
        failed > rounds / 4,
        "too few injected failures fired: {failed}"
    );
}
