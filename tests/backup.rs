//! Backups: a backup holds exactly the state at its LSN and is itself a healthy
//! store; restore replaces the store's state with it after backing up the
//! current one, and other handles follow; a restore cut short at any operation
//! by a crash leaves either the old state, the restored one, or a store that
//! refuses to open until the restore is run again — never a mixture.

use got::versioned_store::backup::{self, list_backups};
use got::wal::sim::{FaultError, OpFilter};
use got::wal::{SimVfs, Vfs};
use got::{Options, Props, Store, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const DIR: &str = "/b/.got";

type Snapshot = BTreeMap<String, (u64, Props)>;

fn opts() -> Options {
    Options {
        create_if_missing: true,
        segment_size_bytes: 8192,
        checkpoint_wal_bytes: 4096,
        ..Options::default()
    }
}

fn open(vfs: &Arc<SimVfs>, dir: &str) -> got::Result<Store> {
    Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, dir, opts())
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
        p.insert("status".into(), "pending".into());
        tx.put(&format!("t{:03}", i % 40), "task", p)
    })
    .unwrap();
}

/// A store with runs and a delta, a backup of it, then more commits.
fn setup(vfs: &Arc<SimVfs>) -> (Snapshot, Snapshot, String) {
    let s = open(vfs, DIR).unwrap();
    for i in 0..60 {
        commit(&s, i);
    }
    s.checkpoint().unwrap();
    for i in 60..70 {
        commit(&s, i);
    }
    let at_backup = snapshot(&s);
    let b = s.backup(None).unwrap();
    for i in 70..90 {
        commit(&s, i);
    }
    (at_backup, snapshot(&s), b.name)
}

#[test]
fn a_backup_is_the_state_at_its_lsn_and_restore_brings_it_back() {
    let vfs = SimVfs::new();
    let (at_backup, later, name) = setup(&vfs);
    assert_ne!(at_backup, later);
    let bdir = format!("{DIR}/backups/{name}");
    let rep = got::verify(vfs.clone() as Arc<dyn Vfs>, Path::new(&bdir)).unwrap();
    assert!(rep.healthy(), "{:?}", rep.findings);
    assert!(rep.index_entries > 0, "indexes came along");
    let b = Store::open_with_vfs(
        vfs.clone() as Arc<dyn Vfs>,
        &bdir,
        Options {
            read_only: true,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(
        snapshot(&b),
        at_backup,
        "the backup holds the state at its LSN"
    );
    drop(b);

    // Another handle, open across the restore (another process).
    let other = open(&vfs, DIR).unwrap();
    assert_eq!(snapshot(&other), later);
    let r = backup::restore(vfs.clone(), Path::new(DIR), &name, Duration::from_secs(1)).unwrap();
    let safety = r.safety.expect("the replaced state is backed up");
    let s = open(&vfs, DIR).unwrap();
    assert_eq!(snapshot(&s), at_backup, "restored");
    assert_eq!(
        snapshot(&other),
        at_backup,
        "another handle follows the restore"
    );
    let rep = got::verify(vfs.clone() as Arc<dyn Vfs>, Path::new(DIR)).unwrap();
    assert!(rep.healthy(), "{:?}", rep.findings);
    // The replaced state is a backup too, and the store goes on from the backup's LSN.
    let sb = Store::open_with_vfs(
        vfs.clone() as Arc<dyn Vfs>,
        format!("{DIR}/backups/{}", safety.name),
        Options {
            read_only: true,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(snapshot(&sb), later);
    let lsn = s.applied_lsn().unwrap();
    assert_eq!(lsn, r.restored.lsn);
    commit(&s, 1000);
    assert_eq!(s.applied_lsn().unwrap(), lsn + 1);
    assert_eq!(
        other.get("t000").unwrap().unwrap().props["n"],
        Value::Int(1000)
    );
    // Rotation keeps the newest.
    s.backup(Some(1)).unwrap();
    assert_eq!(list_backups(vfs.as_ref(), Path::new(DIR)).unwrap().len(), 1);
}

#[test]
fn a_restore_cut_short_anywhere_is_finished_by_running_it_again() {
    // How many operations a whole restore takes.
    let vfs = SimVfs::new();
    let (_, _, name) = setup(&vfs);
    let before = vfs.op_count();
    backup::restore(vfs.clone(), Path::new(DIR), &name, Duration::from_secs(1)).unwrap();
    let total = vfs.op_count() - before;
    assert!(total > 20, "{total}");
    let mut outcomes = BTreeMap::new();
    for k in 1..=total {
        let vfs = SimVfs::new();
        let (at_backup, later, name) = setup(&vfs);
        vfs.fail_op(k, OpFilter::Any, FaultError::Eio, true);
        let first = backup::restore(vfs.clone(), Path::new(DIR), &name, Duration::from_secs(1));
        vfs.clear_faults();
        vfs.crash(k);
        let ctx = format!("failing op {k} of {total} (replay: this test, k = {k})");
        let state = match open(&vfs, DIR) {
            Ok(s) => {
                let snap = snapshot(&s);
                if first.is_ok() {
                    assert_eq!(snap, at_backup, "{ctx}: restore reported success");
                }
                if snap == at_backup {
                    "restored"
                } else {
                    assert_eq!(snap, later, "{ctx}: neither the old state nor the backup");
                    "old state"
                }
            }
            Err(e) => {
                assert!(e.to_string().contains("interrupted"), "{ctx}: {e}");
                backup::restore(vfs.clone(), Path::new(DIR), &name, Duration::from_secs(1))
                    .unwrap_or_else(|e| panic!("{ctx}: finishing: {e}"));
                let s = open(&vfs, DIR).unwrap();
                assert_eq!(snapshot(&s), at_backup, "{ctx}: finished");
                "finished on a second run"
            }
        };
        *outcomes.entry(state).or_insert(0) += 1;
        let rep = got::verify(vfs.clone() as Arc<dyn Vfs>, Path::new(DIR)).unwrap();
        assert!(rep.healthy(), "{ctx}: {:?}", rep.findings);
    }
    assert!(
        outcomes.contains_key("finished on a second run"),
        "{outcomes:?}"
    );
    eprintln!("restore cut at each of {total} operations: {outcomes:?}");
}

/// Runs `got --store DIR ARGS…`, waiting at most 0.2 s for the lock.
fn got_bin(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_got"))
        .arg("--store")
        .arg(dir)
        .args(args)
        .env("GOT_LOCK_TIMEOUT", "0.2")
        .output()
        .unwrap()
}

#[test]
fn restore_is_refused_while_another_process_holds_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(".got");
    let got_cli = |args: &[&str]| got_bin(&dir, args);
    assert!(got_cli(&["init"]).status.success());
    assert!(got_cli(&["task", "create", "x"]).status.success());
    assert!(got_cli(&["backup", "create"]).status.success());
    let name = String::from_utf8(got_cli(&["-q", "backup", "list"]).stdout).unwrap();
    let name = name.trim();
    assert!(got_cli(&["task", "create", "y"]).status.success());
    // Hold the writer lock as another process would.
    let vfs = got::wal::RealVfs;
    let lock = got::wal::ProcessLock::open(&vfs, &dir).unwrap();
    let held = lock.acquire(Duration::from_secs(1)).unwrap();
    let o = got_cli(&["backup", "restore", name]);
    assert_eq!(
        o.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    drop(held);
    let listed = String::from_utf8(got_cli(&["-q", "task", "list"]).stdout).unwrap();
    assert_eq!(listed.lines().count(), 2, "nothing was restored");
    let o = got_cli(&["--json", "backup", "restore", name]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listed = String::from_utf8(got_cli(&["-q", "task", "list"]).stdout).unwrap();
    assert_eq!(listed.lines().count(), 1);
    assert_eq!(got_cli(&["backup", "verify", name]).status.code(), Some(0));
    assert_eq!(
        got_cli(&["backup", "verify", "nope"]).status.code(),
        Some(3)
    );
    assert_eq!(
        got_cli(&["backup", "restore", "nope"]).status.code(),
        Some(3)
    );
    assert_eq!(
        got_cli(&["backup", "restore", "../x"]).status.code(),
        Some(3)
    );
}

/// `got repair --from-backup`: a store whose CURRENT is destroyed comes back
/// as the backup plus every transaction its log still holds after the backup;
/// one whose log is damaged after the backup comes back up to the damage.
#[test]
fn repair_from_backup_restores_and_replays_the_intact_log_after_it() {
    for damage in ["current", "log"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(".got");
        let got_cli = |args: &[&str]| got_bin(&dir, args);
        let ok = |args: &[&str]| {
            let o = got_cli(args);
            assert!(
                o.status.success(),
                "{damage}: {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            String::from_utf8(o.stdout).unwrap()
        };
        ok(&["init"]);
        for i in 0..3 {
            ok(&["task", "create", &format!("before the backup {i}")]);
        }
        ok(&["backup", "create"]);
        let name = ok(&["-q", "backup", "list"]).trim().to_string();
        for i in 0..5 {
            ok(&["task", "create", &format!("after the backup {i}")]);
        }
        let wal_dir = dir.join("wal");
        let expect_replayed = match damage {
            "current" => {
                std::fs::write(dir.join("CURRENT"), b"not a manifest").unwrap();
                5
            }
            _ => {
                // Flip a byte inside the third transaction after the backup.
                let seg = std::fs::read_dir(&wal_dir)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|x| x == "wal"))
                    .max()
                    .unwrap();
                let mut bytes = std::fs::read(&seg).unwrap();
                let needle = b"after the backup 2";
                let at = bytes
                    .windows(needle.len())
                    .position(|w| w == needle)
                    .expect("the title is in the log");
                bytes[at] ^= 0x55;
                std::fs::write(&seg, &bytes).unwrap();
                2
            }
        };
        assert_ne!(
            got_cli(&["task", "list"]).status.code(),
            Some(0),
            "{damage}: the damaged store must not read as healthy"
        );
        let out: serde_json::Value =
            serde_json::from_str(&ok(&["--json", "repair", "--from-backup", &name])).unwrap();
        assert_eq!(out["replayed"], expect_replayed, "{damage}: {out}");
        let listed = ok(&["-q", "task", "list"]);
        assert_eq!(
            listed.lines().count(),
            3 + expect_replayed as usize,
            "{damage}: {listed}"
        );
        let titles = ok(&["task", "list"]);
        for i in 0..expect_replayed {
            assert!(
                titles.contains(&format!("after the backup {i}")),
                "{titles}"
            );
        }
        ok(&["validate"]);
        // The store takes commits again, after the replayed ones.
        ok(&["task", "create", "after the repair"]);
        assert_eq!(
            ok(&["-q", "task", "list"]).lines().count(),
            4 + expect_replayed as usize
        );
        // What it replaced is kept.
        let kept = match damage {
            "current" => std::fs::read_dir(dir.join("quarantine")).unwrap().any(|e| {
                e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("repair-")
            }),
            _ => {
                out["safety_backup"].is_object()
                    || std::fs::read_dir(dir.join("quarantine")).unwrap().any(|e| {
                        e.unwrap()
                            .file_name()
                            .to_string_lossy()
                            .starts_with("repair-")
                    })
            }
        };
        assert!(kept, "{damage}: the replaced state is kept: {out}");
    }
}

/// A repair from a backup cut short at any operation (an I/O error there, then
/// a crash that keeps only what was synced), then run again, ends with the
/// backup plus every transaction the log held after it: the frames to replay
/// are kept in REPAIRING until they are replayed.
#[test]
fn a_repair_from_backup_cut_short_anywhere_replays_everything_when_run_again() {
    // The commits after the backup stay in the log (no checkpoint retires them).
    let setup = |vfs: &Arc<SimVfs>| -> (Snapshot, String) {
        let o = Options {
            auto_checkpoint: false,
            ..opts()
        };
        let s = Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, DIR, o).unwrap();
        for i in 0..30 {
            commit(&s, i);
        }
        s.checkpoint().unwrap();
        let b = s.backup(None).unwrap();
        for i in 30..45 {
            commit(&s, i);
        }
        (snapshot(&s), b.name)
    };
    let repair = |vfs: &Arc<SimVfs>, name: &str| {
        backup::repair_from_backup(
            vfs.clone() as Arc<dyn Vfs>,
            Path::new(DIR),
            name,
            Duration::from_secs(1),
        )
    };
    let vfs = SimVfs::new();
    let (later, name) = setup(&vfs);
    let before = vfs.op_count();
    let r = repair(&vfs, &name).unwrap();
    assert_eq!(r.replayed, 15, "{r:?}");
    assert_eq!(snapshot(&open(&vfs, DIR).unwrap()), later);
    let total = vfs.op_count() - before;
    assert!(total > 20, "{total}");
    let mut again = 0;
    for k in 1..=total {
        let vfs = SimVfs::new();
        let (later, name) = setup(&vfs);
        vfs.fail_op(k, OpFilter::Any, FaultError::Eio, true);
        let first = repair(&vfs, &name);
        vfs.clear_faults();
        vfs.crash(k);
        let ctx = format!("failing op {k} of {total} (replay: this test, k = {k})");
        if first.is_err() {
            again += 1;
            repair(&vfs, &name).unwrap_or_else(|e| panic!("{ctx}: running it again: {e}"));
        }
        let s = open(&vfs, DIR).unwrap_or_else(|e| panic!("{ctx}: open: {e}"));
        assert_eq!(snapshot(&s), later, "{ctx}");
        drop(s);
        let rep = got::verify(vfs.clone() as Arc<dyn Vfs>, Path::new(DIR)).unwrap();
        assert!(rep.healthy(), "{ctx}: {:?}", rep.findings);
    }
    assert!(again > 0, "no cut made the first run fail");
    eprintln!("repair cut at each of {total} operations; {again} needed a second run");
}

// ---------------------------------------------------------------------------------
// Backups are independent of the medium under the store.

/// Runs `got` and asserts it succeeded; returns stdout.
fn got_ok(dir: &Path, args: &[&str]) -> String {
    let o = got_bin(dir, args);
    assert!(
        o.status.success(),
        "got {args:?} exited {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn run_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "run"))
        .collect();
    v.sort();
    v
}

/// Flips one byte in the middle of `file` (a bad block on the medium).
fn damage(file: &Path) {
    let at = std::fs::metadata(file).unwrap().len() / 2;
    damage_at(file, at as usize);
}

/// Flips the byte at `at` of `file`.
fn damage_at(file: &Path, at: usize) {
    let mut b = std::fs::read(file).unwrap();
    b[at] ^= 0xff;
    std::fs::write(file, &b).unwrap();
}

/// A store of 20 tasks checkpointed into a run, a backup of it, then 5 tasks in
/// the log after the backup. Returns the backup's name.
fn store_with_a_run_and_a_backup(dir: &Path) -> String {
    got_ok(dir, &["init"]);
    for i in 0..20 {
        got_ok(dir, &["task", "create", &format!("in the run {i}")]);
    }
    got_ok(dir, &["checkpoint"]);
    assert!(!run_files(dir).is_empty(), "the checkpoint wrote a run");
    got_ok(dir, &["backup", "create"]);
    let name = got_ok(dir, &["-q", "backup", "list"]).trim().to_string();
    for i in 0..5 {
        got_ok(dir, &["task", "create", &format!("after the backup {i}")]);
    }
    name
}

/// No file of a backup is a link to a file of the store: each run is its own
/// inode with one link, so a bad block under one cannot be under the other.
#[test]
fn a_backup_shares_no_file_with_the_store() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(".got");
    let name = store_with_a_run_and_a_backup(&dir);
    let store_runs = run_files(&dir);
    let backup_runs = run_files(&dir.join("backups").join(&name));
    let store_inodes: Vec<u64> = store_runs
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().ino())
        .collect();
    assert!(!backup_runs.is_empty());
    for p in store_runs.iter().chain(&backup_runs) {
        let m = std::fs::metadata(p).unwrap();
        assert_eq!(m.nlink(), 1, "{} has {} links", p.display(), m.nlink());
    }
    for p in &backup_runs {
        let ino = std::fs::metadata(p).unwrap().ino();
        assert!(
            !store_inodes.contains(&ino),
            "{} is the store's file",
            p.display()
        );
    }
    // The backup holds the store's run (same name), byte for byte.
    let shared: Vec<_> = backup_runs
        .iter()
        .filter(|b| store_runs.iter().any(|s| s.file_name() == b.file_name()))
        .collect();
    assert!(!shared.is_empty(), "the backup copied the store's run");
    for b in shared {
        let s = dir.join("runs").join(b.file_name().unwrap());
        assert_eq!(std::fs::read(b).unwrap(), std::fs::read(&s).unwrap());
    }
}

/// A bad block in a run of the store (one the backup also holds): the store no
/// longer reads, the backup is untouched, and `got repair --from-backup` brings
/// back every acknowledged commit: the backup's copy of the run plus the 5
/// transactions of the log after it. The damaged state is kept in quarantine.
#[test]
fn a_damaged_store_run_is_repaired_from_the_backup_with_every_acknowledged_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(".got");
    let name = store_with_a_run_and_a_backup(&dir);
    let acknowledged = got_ok(&dir, &["-q", "task", "list"]);
    assert_eq!(acknowledged.lines().count(), 25);
    for run in run_files(&dir) {
        damage(&run);
    }
    assert_eq!(got_bin(&dir, &["verify"]).status.code(), Some(7));
    assert_eq!(
        got_bin(&dir, &["backup", "verify", &name]).status.code(),
        Some(0),
        "the store's damage reached the backup"
    );
    let out: serde_json::Value =
        serde_json::from_str(&got_ok(&dir, &["--json", "repair", "--from-backup", &name])).unwrap();
    assert_eq!(out["replayed"], 5, "{out}");
    assert!(
        out["quarantined"].is_string(),
        "the damaged state is kept: {out}"
    );
    assert_eq!(got_ok(&dir, &["-q", "task", "list"]), acknowledged);
    got_ok(&dir, &["verify"]);
    got_ok(&dir, &["validate"]);
    got_ok(&dir, &["task", "create", "after the repair"]);
}

/// `got backup restore` of a store whose run is damaged: the restore does not
/// stop at backing up the damaged state (it cannot be copied intact); it keeps
/// it in quarantine and brings back exactly the backup's state, whose runs are
/// again independent copies.
#[test]
fn backup_restore_over_a_damaged_store_run_brings_back_the_backup() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(".got");
    let name = store_with_a_run_and_a_backup(&dir);
    let titles = got_ok(&dir, &["task", "list"]);
    for run in run_files(&dir) {
        damage(&run);
    }
    let out: serde_json::Value =
        serde_json::from_str(&got_ok(&dir, &["--json", "backup", "restore", &name])).unwrap();
    assert!(out["quarantined"].is_string(), "{out}");
    assert_eq!(got_ok(&dir, &["-q", "task", "list"]).lines().count(), 20);
    let after = got_ok(&dir, &["task", "list"]);
    for i in 0..20 {
        assert!(after.contains(&format!("in the run {i}")), "{after}");
        assert!(titles.contains(&format!("in the run {i}")));
    }
    got_ok(&dir, &["verify"]);
    for p in run_files(&dir) {
        assert_eq!(std::fs::metadata(&p).unwrap().nlink(), 1, "{}", p.display());
    }
}

/// A backup of a store whose run is damaged is refused, naming the run; no
/// backup is listed (a damaged copy is never kept as one). The damage is in the
/// first entity block, which nothing but the copy reads.
#[test]
fn a_backup_of_a_damaged_run_is_refused_naming_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(".got");
    got_ok(&dir, &["init"]);
    for i in 0..20 {
        got_ok(&dir, &["task", "create", &format!("in the run {i}")]);
    }
    got_ok(&dir, &["checkpoint"]);
    got_ok(&dir, &["backup", "create"]);
    let before = got_ok(&dir, &["-q", "backup", "list"]);
    let runs = run_files(&dir);
    // Past the 64-byte run header: inside the first block. Nothing after the
    // checkpoint, so nothing but the copy reads that block.
    damage_at(&runs[0], 100);
    let o = got_bin(&dir, &["backup", "create"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(7), "{err}");
    let run_name = runs[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(err.contains(&run_name), "the error names the run: {err}");
    assert_eq!(got_ok(&dir, &["-q", "backup", "list"]), before);
    let leftovers = std::fs::read_dir(dir.join("backups")).unwrap().count();
    assert_eq!(
        leftovers,
        before.lines().count(),
        "a partial backup was left"
    );
}

/// `got backup create --keep N` keeps the newest N backups and removes the rest,
/// whole.
#[test]
fn backup_create_keep_keeps_only_the_newest_backups() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(".got");
    got_ok(&dir, &["init"]);
    let mut made = Vec::new();
    for i in 0..4 {
        got_ok(&dir, &["task", "create", &format!("task {i}")]);
        let out: serde_json::Value = serde_json::from_str(&got_ok(
            &dir,
            &["--json", "backup", "create", "--keep", "2"],
        ))
        .unwrap();
        made.push(out["backup"]["name"].as_str().unwrap().to_string());
    }
    let listed: Vec<String> = got_ok(&dir, &["-q", "backup", "list"])
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(listed, made[2..].to_vec());
    let dirs: Vec<String> = std::fs::read_dir(dir.join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(dirs.len(), 2, "removed backups left files: {dirs:?}");
    for (i, name) in made[2..].iter().enumerate() {
        got_ok(&dir, &["backup", "verify", name]);
        let lsn = got_ok(&dir, &["--json", "backup", "list"]);
        let j: serde_json::Value = serde_json::from_str(&lsn).unwrap();
        assert_eq!(j["backups"][i]["lsn"], (i + 3) as u64, "{j}");
    }
}

/// A backup's log has small segments; after a restore, the first frame too
/// large for one closes it before any frame is in it, with an end-of-segment
/// frame naming the segment itself, and the rotation replaces the file under
/// that name. A reader that had the old file open reads the new one (it used
/// to follow the old file into itself forever).
#[test]
fn a_reader_follows_the_first_rotation_after_a_restore() {
    let vfs = SimVfs::new();
    let v = vfs.clone() as Arc<dyn Vfs>;
    let opts = Options {
        create_if_missing: true,
        ..Options::default()
    };
    let s = Store::open_with_vfs(v.clone(), DIR, opts.clone()).unwrap();
    s.transaction(|tx| tx.put("T-1", "task", Props::new()))
        .unwrap();
    let b = s.backup(None).unwrap();
    drop(s);
    backup::restore(v.clone(), Path::new(DIR), &b.name, Duration::from_secs(5)).unwrap();
    let writer = Store::open_with_vfs(v.clone(), DIR, opts.clone()).unwrap();
    let reader = Store::open_with_vfs(
        v.clone(),
        DIR,
        Options {
            read_only: true,
            ..opts
        },
    )
    .unwrap();
    assert!(reader.get("T-1").unwrap().is_some());
    let mut p = Props::new();
    p.insert("text".into(), Value::String("x".repeat(6000)));
    writer
        .transaction(|tx| tx.put("T-2", "task", p.clone()))
        .unwrap();
    assert_eq!(reader.get("T-2").unwrap().unwrap().props, p);
}
