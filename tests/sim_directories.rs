//! Directories on the simulated disk: a new directory is an entry in its parent,
//! lost by a power loss (with everything under it, however well synced) until the
//! parent is synced. `init`, `backup create` and `backup restore` each create
//! directories; here each is cut by a power loss right after it returns, and at
//! every one of its operations, and what it promised must still be there.
//!
//! Seeds: each crash is seeded from `GOT_SEED` (printed) and the operation index.

use crate::common;

use common::seed::seed;
use got::versioned_store::backup::{self, list_backups};
use got::wal::sim::{FaultError, OpFilter};
use got::wal::{SimVfs, Vfs};
use got::{Options, Props, Store, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Every directory on the way to the store is new.
const DIR: &str = "/fresh/deep/.got";

type Snapshot = BTreeMap<String, (u64, Props)>;

fn opts(create: bool) -> Options {
    Options {
        create_if_missing: create,
        segment_size_bytes: 8192,
        checkpoint_wal_bytes: 4096,
        ..Options::default()
    }
}

fn open(vfs: &Arc<SimVfs>, dir: &str, create: bool) -> got::Result<Store> {
    Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, dir, opts(create))
}

fn snapshot(s: &Store) -> Snapshot {
    s.list(None, None)
        .unwrap()
        .into_iter()
        .map(|e| (e.id, (e.version, e.props)))
        .collect()
}

fn commit(s: &Store, i: usize) {
    s.transaction(|tx| {
        let mut p = Props::new();
        p.insert("n".into(), Value::Int(i as i64));
        tx.put(&format!("t{:03}", i % 30), "task", p)
    })
    .unwrap();
}

/// The power loss that keeps only what was synced, then one seeded at random.
fn power_losses(vfs: &SimVfs, seed: u64) -> [Box<dyn Fn() + '_>; 2] {
    [
        Box::new(move || vfs.crash_drop_all()),
        Box::new(move || vfs.crash(seed)),
    ]
}

/// `init` of a store whose every parent directory is new, one acknowledged commit,
/// then a power loss: the store and the commit are there.
#[test]
fn a_new_store_and_its_acknowledged_commit_survive_a_power_loss() {
    let seed = seed("init under directory loss");
    for (i, crash) in [0u64, 1].into_iter().enumerate() {
        let vfs = SimVfs::new();
        let s = open(&vfs, DIR, true).unwrap();
        commit(&s, 7);
        let want = snapshot(&s);
        drop(s);
        power_losses(&vfs, seed)[crash as usize]();
        let s = open(&vfs, DIR, false)
            .unwrap_or_else(|e| panic!("power loss {i} (seed {seed}): the store is gone: {e}"));
        assert_eq!(snapshot(&s), want, "power loss {i} (seed {seed})");
    }
}

/// `init` cut at each of its operations (an I/O error from there on, then a power
/// loss): afterwards there is no store, or a healthy empty one; either way opening
/// with `create_if_missing` gives a working store. Never a directory that refuses.
#[test]
fn init_cut_at_any_operation_leaves_no_store_or_an_empty_healthy_one() {
    let seed = seed("init cut short");
    let vfs = SimVfs::new();
    let before = vfs.op_count();
    drop(open(&vfs, DIR, true).unwrap());
    let total = vfs.op_count() - before;
    assert!(total > 10, "init took only {total} operations");
    let (mut none, mut empty) = (0, 0);
    for k in 1..=total {
        let vfs = SimVfs::new();
        vfs.fail_op(k, OpFilter::Any, FaultError::Eio, true);
        let first = open(&vfs, DIR, true);
        vfs.clear_faults();
        drop(first);
        vfs.crash(seed ^ k);
        let ctx = format!("init cut at operation {k} of {total} (seed {seed})");
        match open(&vfs, DIR, false) {
            Ok(s) => {
                assert!(snapshot(&s).is_empty(), "{ctx}");
                empty += 1;
            }
            Err(e) => {
                assert!(
                    matches!(e, got::Error::NotAStore { .. }),
                    "{ctx}: a half store: {e}"
                );
                none += 1;
            }
        }
        let s = open(&vfs, DIR, true).unwrap_or_else(|e| panic!("{ctx}: init again: {e}"));
        commit(&s, 1);
        drop(s);
        let rep = got::verify(vfs.clone() as Arc<dyn Vfs>, Path::new(DIR)).unwrap();
        assert!(rep.healthy(), "{ctx}: {:?}", rep.findings);
    }
    assert!(none > 0 && empty > 0, "no store {none}, empty {empty}");
    eprintln!("init cut at each of {total} operations: {none} left no store, {empty} an empty one");
}

/// A store with a run and a delta; then its `backups/` directory is removed, so
/// the backup has to create it (as in a store made before it existed).
fn store_for_backups(vfs: &Arc<SimVfs>) -> (Store, Snapshot) {
    let s = open(vfs, DIR, true).unwrap();
    for i in 0..40 {
        commit(&s, i);
    }
    s.checkpoint().unwrap();
    for i in 40..50 {
        commit(&s, i);
    }
    let backups = Path::new(DIR).join("backups");
    vfs.remove_dir(&backups).unwrap();
    vfs.sync_dir(Path::new(DIR)).unwrap();
    let snap = snapshot(&s);
    (s, snap)
}

/// A backup that `backup` returned survives a power loss: listed, healthy, and
/// holding exactly the state at its LSN.
#[test]
fn a_finished_backup_survives_a_power_loss() {
    let seed = seed("backup under directory loss");
    for crash in 0..2 {
        let vfs = SimVfs::new();
        let (s, at_backup) = store_for_backups(&vfs);
        let b = s.backup(None).unwrap();
        drop(s);
        power_losses(&vfs, seed)[crash]();
        let listed = list_backups(vfs.as_ref(), Path::new(DIR)).unwrap();
        assert_eq!(
            listed.iter().map(|b| &b.name).collect::<Vec<_>>(),
            vec![&b.name],
            "power loss {crash} (seed {seed})"
        );
        let bdir = format!("{DIR}/backups/{}", b.name);
        let rep = got::verify(vfs.clone() as Arc<dyn Vfs>, Path::new(&bdir)).unwrap();
        assert!(rep.healthy(), "{:?}", rep.findings);
        let opened = Store::open_with_vfs(
            vfs.clone() as Arc<dyn Vfs>,
            &bdir,
            Options {
                read_only: true,
                ..opts(false)
            },
        )
        .unwrap();
        assert_eq!(snapshot(&opened), at_backup);
    }
}

/// `backup` cut at each of its operations, then a power loss: the backup is whole
/// (listed, healthy, exactly the state) or not listed at all; the store is as it was.
#[test]
fn a_backup_cut_at_any_operation_is_whole_or_absent() {
    let seed = seed("backup cut short");
    let vfs = SimVfs::new();
    let (s, _) = store_for_backups(&vfs);
    let before = vfs.op_count();
    s.backup(None).unwrap();
    let total = vfs.op_count() - before;
    drop(s);
    let (mut whole, mut absent) = (0, 0);
    for k in 1..=total {
        let vfs = SimVfs::new();
        let (s, at_backup) = store_for_backups(&vfs);
        vfs.fail_op(k, OpFilter::Any, FaultError::Eio, true);
        let r = s.backup(None);
        vfs.clear_faults();
        drop(s);
        vfs.crash(seed ^ k);
        let ctx = format!("backup cut at operation {k} of {total} (seed {seed}): {r:?}");
        let s = open(&vfs, DIR, false).unwrap_or_else(|e| panic!("{ctx}: store: {e}"));
        assert_eq!(snapshot(&s), at_backup, "{ctx}: the store changed");
        let listed = list_backups(vfs.as_ref(), Path::new(DIR)).unwrap();
        match listed.as_slice() {
            [] => absent += 1,
            [b] => {
                let bdir = format!("{DIR}/backups/{}", b.name);
                let rep = got::verify(vfs.clone() as Arc<dyn Vfs>, Path::new(&bdir)).unwrap();
                assert!(rep.healthy(), "{ctx}: {:?}", rep.findings);
                whole += 1;
            }
            more => panic!("{ctx}: {} backups", more.len()),
        }
    }
    assert!(whole > 0 && absent > 0, "whole {whole}, absent {absent}");
    eprintln!("backup cut at each of {total} operations: {whole} whole, {absent} absent");
}

/// A restore that returned survives a power loss: the store is the backup's state,
/// and the safety backup of the state it replaced is listed and whole.
#[test]
fn a_finished_restore_and_its_safety_backup_survive_a_power_loss() {
    let seed = seed("restore under directory loss");
    for crash in 0..2 {
        let vfs = SimVfs::new();
        let (s, at_backup) = store_for_backups(&vfs);
        let b = s.backup(None).unwrap();
        for i in 50..60 {
            commit(&s, i);
        }
        let replaced = snapshot(&s);
        drop(s);
        let r =
            backup::restore(vfs.clone(), Path::new(DIR), &b.name, Duration::from_secs(5)).unwrap();
        let safety = r.safety.expect("the replaced state was backed up");
        power_losses(&vfs, seed)[crash]();
        let ctx = format!("power loss {crash} (seed {seed})");
        let s = open(&vfs, DIR, false).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        assert_eq!(snapshot(&s), at_backup, "{ctx}");
        drop(s);
        let sdir = format!("{DIR}/backups/{}", safety.name);
        let kept = Store::open_with_vfs(
            vfs.clone() as Arc<dyn Vfs>,
            &sdir,
            Options {
                read_only: true,
                ..opts(false)
            },
        )
        .unwrap_or_else(|e| panic!("{ctx}: the safety backup: {e}"));
        assert_eq!(snapshot(&kept), replaced, "{ctx}");
        let rep = got::verify(vfs.clone() as Arc<dyn Vfs>, Path::new(DIR)).unwrap();
        assert!(rep.healthy(), "{ctx}: {:?}", rep.findings);
    }
}
