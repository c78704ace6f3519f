//! Checkpoints on their own thread (`Options::background_checkpoints`): commits
//! go on, and read everything, while a checkpoint writes its run; committers
//! wait once the tail has grown past four times the bound; a checkpoint that
//! fails, or finds that another process checkpointed first, loses nothing and
//! leaves no stale version readable.
//!
//! The simulated disk holds the checkpoint thread at the moment it opens its run
//! file (`SimVfs::hold_opens`), so each test knows exactly where it is.

use got::query::{Filter, Query};
use got::wal::sim::{FaultError, OpFilter};
use got::wal::{SimVfs, Vfs};
use got::{Options, Props, Store};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

const DIR: &str = "/bg/.got";
/// A checkpoint is due after this many transactions.
const BOUND: u64 = 8;
/// A generous deadline that turns a hang into a failure (nothing is timed).
const HANG: Duration = Duration::from_secs(120);

fn opts() -> Options {
    Options {
        create_if_missing: true,
        checkpoint_transactions: BOUND,
        checkpoint_wal_bytes: u64::MAX,
        background_checkpoints: true,
        lock_timeout: Duration::from_secs(60),
        ..Options::default()
    }
}

fn open(vfs: &Arc<SimVfs>) -> Store {
    Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, DIR, opts()).unwrap()
}

fn put(s: &Store, i: u64, status: &str) {
    let mut p = Props::new();
    p.insert("status".into(), status.into());
    p.insert("n".into(), (i as i64).into());
    s.transaction(|tx| tx.put(&format!("t{i:03}"), "task", p.clone()))
        .unwrap();
}

/// The tasks an index query finds with `status`, by id.
fn with_status(s: &Store, status: &str) -> Vec<String> {
    let q = Query {
        kind: Some("task".into()),
        filters: vec![Filter::Eq("status".into(), status.into())],
        ..Query::default()
    };
    let mut ids: Vec<String> = q
        .run(&mut s.begin().unwrap())
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    ids.sort();
    ids
}

fn ids(range: std::ops::Range<u64>) -> Vec<String> {
    range.map(|i| format!("t{i:03}")).collect()
}

/// Runs `f` on a thread of its own and waits for it (at most [`HANG`]).
fn within_deadline<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(HANG)
        .unwrap_or_else(|_| panic!("{what} did not finish"))
}

/// A store whose checkpoint thread is held at its run file: the commit of
/// the ninth task made the checkpoint due.
fn checkpoint_held() -> (Arc<SimVfs>, Store) {
    let vfs = SimVfs::new();
    let s = open(&vfs);
    vfs.hold_opens("/runs/");
    for i in 0..=BOUND {
        put(&s, i, "pending");
    }
    vfs.wait_until_held(1);
    (vfs, s)
}

#[test]
fn commits_go_on_and_read_everything_while_a_checkpoint_writes_its_run() {
    let vfs = SimVfs::new();
    let s = open(&vfs);
    vfs.hold_opens("/runs/");
    // The ninth commit makes a checkpoint due: the thread freezes the delta
    // and stops at its run file. Commits go on (up to the backlog bound) while
    // the checkpoint is held, and every read sees the frozen delta and the new
    // one together.
    let (s2, vfs2) = (s.clone(), vfs.clone());
    within_deadline("committing while the checkpoint is held", move || {
        for i in 0..=BOUND {
            put(&s2, i, "pending");
        }
        vfs2.wait_until_held(1);
        for i in BOUND + 1..3 * BOUND {
            put(&s2, i, if i % 2 == 0 { "pending" } else { "done" });
        }
        // A version newer than the frozen one shadows it.
        put(&s2, 0, "done");
    });
    assert_eq!(
        s.disk_stats().unwrap().checkpoint_lsn,
        0,
        "nothing published yet"
    );
    let pending: Vec<String> = ids(1..3 * BOUND)
        .into_iter()
        .filter(|id| {
            let i: u64 = id[1..].parse().unwrap();
            i <= BOUND || i.is_multiple_of(2)
        })
        .collect();
    assert_eq!(with_status(&s, "pending"), pending);
    assert_eq!(
        s.get("t000").unwrap().unwrap().props["status"],
        "done".into()
    );
    assert_eq!(s.history("t000").unwrap().len(), 2);
    // Released, the checkpoint publishes; an explicit one waits for it.
    vfs.release_holds();
    let s2 = s.clone();
    let info = within_deadline("the checkpoint", move || s2.checkpoint().unwrap());
    assert!(info.checkpoint_lsn > BOUND, "{info:?}");
    assert_eq!(s.last_checkpoint_error(), None);
    assert_eq!(with_status(&s, "pending"), pending);
    // Power loss: everything acknowledged is there, from the runs and the log.
    drop(s);
    vfs.crash_drop_all();
    let s = open(&vfs);
    assert_eq!(with_status(&s, "pending"), pending);
    assert_eq!(
        s.list(Some("task"), None).unwrap().len(),
        3 * BOUND as usize
    );
}

#[test]
fn committers_wait_for_a_checkpoint_that_falls_four_bounds_behind() {
    let (vfs, s) = checkpoint_held();
    // A committer writes up to six bounds' worth: it gets past four and waits
    // there for the held checkpoint.
    let s2 = s.clone();
    let committer = std::thread::spawn(move || {
        for i in BOUND + 1..6 * BOUND {
            put(&s2, i, "pending");
        }
    });
    // It stops once its commit takes the tail past four bounds ...
    let stop = 4 * BOUND + 1;
    while s.disk_stats().unwrap().applied_lsn < stop {
        std::thread::yield_now();
    }
    // ... and stays stopped (it cannot go on before the release below).
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(s.disk_stats().unwrap().applied_lsn, stop);
    assert!(!committer.is_finished());
    vfs.release_holds();
    within_deadline("the committer", move || committer.join().unwrap());
    assert_eq!(
        s.list(Some("task"), None).unwrap().len(),
        6 * BOUND as usize
    );
    let st = s.disk_stats().unwrap();
    assert!(st.checkpoint_lsn >= stop, "{st:?}");
}

#[test]
fn a_failed_background_checkpoint_loses_nothing_and_the_next_one_succeeds() {
    let (vfs, s) = checkpoint_held();
    // The held open fails: the frozen delta goes back into the live one. (No
    // commit asks for another checkpoint meanwhile: the error stays to be seen.)
    vfs.fail_op(1, OpFilter::Metadata, FaultError::Eio, false);
    vfs.release_holds();
    let s2 = s.clone();
    within_deadline("the failed checkpoint", move || {
        while s2.last_checkpoint_error().is_none() {
            std::thread::yield_now();
        }
    });
    let st = s.disk_stats().unwrap();
    assert_eq!(st.checkpoint_lsn, 0, "{st:?}");
    assert!(st.delta_keys > BOUND as usize, "{st:?}");
    assert_eq!(with_status(&s, "pending"), ids(0..BOUND + 1));
    // The next commit asks again, and that checkpoint holds everything.
    put(&s, BOUND + 1, "done");
    let info = s.checkpoint().unwrap();
    assert_eq!(info.checkpoint_lsn, BOUND + 2);
    assert_eq!(s.last_checkpoint_error(), None);
    assert_eq!(with_status(&s, "done"), ids(BOUND + 1..BOUND + 2));
    drop(s);
    vfs.crash_drop_all();
    let s = open(&vfs);
    assert_eq!(with_status(&s, "pending"), ids(0..BOUND + 1));
    assert_eq!(
        s.list(Some("task"), None).unwrap().len(),
        BOUND as usize + 2
    );
}

/// Another process froze later and published first: this process's frozen
/// delta is older than the new runs, and must not shadow what they hold.
#[test]
fn another_process_checkpointing_first_leaves_no_stale_version_readable() {
    let vfs = SimVfs::new();
    let a = open(&vfs);
    // Only A's checkpoint (at LSN BOUND + 1: run names begin with the LSN).
    vfs.hold_opens(&format!("/runs/{:020}-", BOUND + 1));
    for i in 0..=BOUND {
        put(&a, i, "pending");
    }
    vfs.wait_until_held(1);
    let b = Store::open_with_vfs(
        vfs.clone() as Arc<dyn Vfs>,
        DIR,
        Options {
            background_checkpoints: false,
            ..opts()
        },
    )
    .unwrap();
    put(&b, 0, "done");
    put(&b, 1, "done");
    b.checkpoint().unwrap();
    // A reads B's versions, not those of its frozen delta.
    assert_eq!(
        a.get("t000").unwrap().unwrap().props["status"],
        "done".into()
    );
    assert_eq!(with_status(&a, "done"), ids(0..2));
    assert_eq!(with_status(&a, "pending"), ids(2..BOUND + 1));
    // A's checkpoint, released, finds the manifest moved and drops its run.
    vfs.release_holds();
    let a2 = a.clone();
    within_deadline("A's checkpoint", move || a2.checkpoint().unwrap());
    assert_eq!(a.last_checkpoint_error(), None);
    // The CURRENT that A wrote (and synced) before taking the lock for its
    // switch is gone with its run: only B's manifest is left.
    let files = vfs.list_dir(std::path::Path::new(DIR)).unwrap();
    let staged: Vec<&String> = files.iter().filter(|n| n.starts_with("CURRENT.")).collect();
    assert!(staged.is_empty(), "staged manifests left: {staged:?}");
    put(&a, BOUND + 1, "done");
    assert_eq!(with_status(&a, "done"), vec!["t000", "t001", "t009"]);
    assert_eq!(with_status(&b, "done"), vec!["t000", "t001", "t009"]);
    drop((a, b));
    vfs.crash_drop_all();
    let s = open(&vfs);
    assert_eq!(with_status(&s, "done"), vec!["t000", "t001", "t009"]);
    assert_eq!(with_status(&s, "pending"), ids(2..BOUND + 1));
    let rep = got::verify(vfs.clone() as Arc<dyn Vfs>, std::path::Path::new(DIR)).unwrap();
    assert!(rep.healthy(), "{:?}", rep.findings);
}
