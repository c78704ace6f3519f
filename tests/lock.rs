//! The writer lock across real processes (DESIGN.md promise 7): an OS `flock` that
//! the kernel releases when its holder dies, that closing some other descriptor of
//! `LOCK` does not release, whose waiters keep waiting while it is held and give up
//! with `Locked` naming the holder when their timeout passes, and that two `Store`
//! handles in one process share.
//!
//! Nothing here asserts how long anything took: the tests wait for events (a
//! waiter blocked in the kernel, as `/proc/locks` or the thread's state shows) and
//! check order and outcome. Timeouts only guard against a hang.
//!
//! Children are this test binary run again on one test (`--exact NAME`) with
//! `GOT_TEST_CHILD=<role>`; they talk to the parent in `@`-prefixed lines on stdout.
//! `GOT_LONG_TESTS=1` repeats the kill cycle more often.

mod common;

use common::child::{dir_env, env_string, say, Ended, Proc, CHILD_ENV, SIGKILL};
use got::wal::{ProcessLock, RealVfs};
use got::{props, Options, Store, Value};
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------
// The child side
// ---------------------------------------------------------------------------------

fn run_child(role: &str) {
    let dir = PathBuf::from(env_string("GOT_TEST_DIR"));
    match role {
        // Takes the lock, optionally opens and closes other descriptors of LOCK,
        // says so, and sleeps until it is killed.
        "hold" => {
            let lock = ProcessLock::open(&RealVfs, &dir).expect("open LOCK");
            let _held = lock.acquire(HANG_GUARD).expect("acquire the lock");
            if std::env::var("GOT_TEST_CLOSE_OTHERS").is_ok_and(|v| v == "1") {
                let other = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(dir.join("LOCK"))
                    .expect("open LOCK a second time");
                drop(other);
                let second = ProcessLock::open(&RealVfs, &dir).expect("a second ProcessLock");
                drop(second);
            }
            say(&format!("HELD {}", std::process::id()));
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        // Tries the lock once with GOT_TEST_TIMEOUT_MS and reports what happened.
        "probe" => {
            let ms: u64 = env_string("GOT_TEST_TIMEOUT_MS").parse().unwrap();
            let lock = ProcessLock::open(&RealVfs, &dir).expect("open LOCK");
            match lock.acquire(Duration::from_millis(ms)) {
                Ok(_held) => say("ACQUIRED"),
                Err(got::wal::Error::Locked { holder, .. }) => say(&format!("LOCKED {holder}")),
                Err(e) => say(&format!("ERROR {e}")),
            };
        }
        other => panic!("unknown child role {other}"),
    }
}

// ---------------------------------------------------------------------------------
// The parent side
// ---------------------------------------------------------------------------------

impl Proc {
    fn expect_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.starts_with(prefix) {
                        return l;
                    }
                }
                Err(_) => {
                    let ended = self.kill();
                    panic!(
                        "{} never printed @{prefix}:\n{}",
                        ended.label,
                        ended.describe()
                    );
                }
            }
        }
    }

    fn finish(mut self, timeout: Duration) -> Ended {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return self.collect(status);
            }
            if Instant::now() > deadline {
                let ended = self.kill();
                panic!("{} did not finish:\n{}", ended.label, ended.describe());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Proc {
    /// A holder that outlives a failed assertion would keep its lock; kill it.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Ended {
    fn describe(&self) -> String {
        format!(
            "{}: {}; lines: {:?}\n--- stderr ---\n{}",
            self.label, self.status, self.lines, self.stderr
        )
    }
}

/// How long a test waits for something that must happen before calling it a hang.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Polls `cond` until it holds; panics naming `what` after [`HANG_GUARD`].
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG_GUARD;
    while !cond() {
        assert!(Instant::now() < deadline, "hang: {what} never happened");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Processes blocked in the kernel waiting for the `flock` on `file`, by pid, as
/// `/proc/locks` lists them (`N: -> FLOCK ADVISORY WRITE PID MAJ:MIN:INODE ...`).
fn flock_waiters(file: &Path) -> Vec<u32> {
    let md = std::fs::metadata(file).expect("stat LOCK");
    let dev = md.dev();
    let id = format!(
        "{:02x}:{:02x}:{}",
        libc::major(dev),
        libc::minor(dev),
        md.ino()
    );
    std::fs::read_to_string("/proc/locks")
        .expect("read /proc/locks")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(1) == Some(&"->")
                && f.get(2) == Some(&"FLOCK")
                && f.get(6) == Some(&id.as_str()))
            .then(|| f[5].parse().ok())
            .flatten()
        })
        .collect()
}

/// The kernel thread id of the calling thread.
fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// Whether thread `tid` of this process is asleep (state `S`: blocked in a wait,
/// such as a lock or a condition variable), from `/proc/self/task/TID/stat`.
fn thread_sleeping(tid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('S'))
        })
        .unwrap_or(false)
}

fn new_store() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join(".got");
    got::init(&RealVfs, &dir).expect("init a store");
    (tmp, dir)
}

/// Whether a holder description (`pid=… host=… since_unix_ms=…`) names `pid`.
fn names_pid(holder: &str, pid: u32) -> bool {
    let want = format!("pid={pid}");
    holder
        .split(|c: char| c.is_whitespace() || c == ',' || c == ')' || c == '(')
        .any(|w| w == want)
}

/// Spawns a holder of the lock on `dir` and returns it once it holds the lock.
fn spawn_holder(test: &str, dir: &Path, close_others: bool) -> Proc {
    let mut p = Proc::spawn(
        test,
        "hold",
        &[
            dir_env(dir),
            (
                "GOT_TEST_CLOSE_OTHERS",
                if close_others { "1" } else { "0" }.to_string(),
            ),
        ],
    );
    let line = p.expect_line("HELD", HANG_GUARD);
    assert_eq!(line, format!("HELD {}", p.pid()));
    p
}

/// A separate process tries the lock for `timeout_ms` and says what it got.
fn probe(test: &str, dir: &Path, timeout_ms: u64) -> String {
    let p = Proc::spawn(
        test,
        "probe",
        &[
            dir_env(dir),
            ("GOT_TEST_TIMEOUT_MS", timeout_ms.to_string()),
        ],
    );
    let ended = p.finish(HANG_GUARD);
    assert!(
        ended.status.success(),
        "probe failed:\n{}",
        ended.describe()
    );
    ended
        .lines
        .iter()
        .find(|l| l.starts_with("ACQUIRED") || l.starts_with("LOCKED") || l.starts_with("ERROR"))
        .cloned()
        .unwrap_or_else(|| panic!("probe said nothing:\n{}", ended.describe()))
}

/// Expects `Locked` naming `pid`; returns the holder text and the reported wait.
fn expect_locked<T>(r: Result<T, got::wal::Error>, pid: u32, what: &str) -> (String, u64) {
    match r {
        Err(got::wal::Error::Locked { holder, waited_ms }) => {
            assert!(
                names_pid(&holder, pid),
                "{what}: Locked names {holder:?}, not the holder pid={pid}"
            );
            (holder, waited_ms)
        }
        Err(e) => panic!("{what}: expected Locked naming pid={pid}, got: {e}"),
        Ok(_) => panic!("{what}: acquired a lock that pid={pid} holds"),
    }
}

fn store_error_to_wal<T>(r: got::Result<T>, what: &str) -> Result<T, got::wal::Error> {
    match r {
        Ok(v) => Ok(v),
        Err(got::Error::Wal(e)) => Err(e),
        Err(e) => panic!("{what}: expected Error::Wal(Locked), got: {e}"),
    }
}

// ---------------------------------------------------------------------------------
// 6. A SIGKILLed holder releases the lock
// ---------------------------------------------------------------------------------

#[test]
fn a_sigkilled_lock_holder_releases_the_lock() {
    const NAME: &str = "a_sigkilled_lock_holder_releases_the_lock";
    if let Ok(role) = std::env::var(CHILD_ENV) {
        run_child(&role);
        return;
    }
    let cycles = if std::env::var_os("GOT_LONG_TESTS").is_some() {
        30
    } else {
        3
    };
    let (_tmp, dir) = new_store();
    let me = std::process::id();
    // One lock handle for the whole test, as one process (one store handle) has.
    let lock = ProcessLock::open(&RealVfs, &dir).expect("open LOCK");
    for cycle in 0..cycles {
        let mut holder = spawn_holder(NAME, &dir, false);
        let pid = holder.pid();

        // A try with a short timeout fails, naming the holder; so does a store open.
        expect_locked(
            lock.acquire(Duration::from_millis(200)),
            pid,
            "ProcessLock::acquire while a child holds the lock",
        );
        if cycle == 0 {
            let r = Store::open(
                &dir,
                Options {
                    lock_timeout: Duration::from_millis(200),
                    ..Options::default()
                },
            );
            expect_locked(
                store_error_to_wal(r, "Store::open"),
                pid,
                "Store::open (read-write) while a child holds the lock",
            );
        }

        // Then the lock comes free with the holder's death: in even cycles a waiter
        // is already blocked when the holder is SIGKILLed, in odd ones it starts
        // right after the kill. Either way it gets the lock (its timeout is only a
        // hang guard), and then really holds it: another process is locked out.
        let wait_first = cycle % 2 == 0;
        std::thread::scope(|s| {
            let (got_tx, got_rx) = mpsc::channel::<Result<(), String>>();
            let (tid_tx, tid_rx) = mpsc::channel::<i32>();
            let (release_tx, release_rx) = mpsc::channel::<()>();
            let lock = &lock;
            let start_waiter = move || {
                s.spawn(move || {
                    tid_tx.send(gettid()).unwrap();
                    match lock.acquire(HANG_GUARD) {
                        Ok(held) => {
                            got_tx.send(Ok(())).unwrap();
                            let _ = release_rx.recv_timeout(HANG_GUARD);
                            drop(held);
                        }
                        Err(e) => got_tx.send(Err(e.to_string())).unwrap(),
                    }
                });
            };
            if wait_first {
                start_waiter();
                // The event: the waiter thread is asleep in its wait for the lock
                // (or gone, which the next check reports).
                let tid = tid_rx.recv().unwrap();
                wait_until(&format!("cycle {cycle}: the waiter blocking"), || {
                    thread_sleeping(tid) || !Path::new(&format!("/proc/self/task/{tid}")).exists()
                });
                if let Ok(r) = got_rx.try_recv() {
                    panic!(
                        "cycle {cycle}: the waiter returned ({r:?}) while pid={pid} held the lock"
                    );
                }
                assert!(
                    !flock_waiters(&dir.join("LOCK")).is_empty(),
                    "cycle {cycle}: nobody waits in the kernel for the lock pid={pid} holds"
                );
                let ended = holder.kill();
                assert_eq!(ended.status.signal(), Some(SIGKILL), "{}", ended.describe());
            } else {
                let ended = holder.kill();
                assert_eq!(ended.status.signal(), Some(SIGKILL), "{}", ended.describe());
                start_waiter();
            }
            match got_rx.recv_timeout(HANG_GUARD) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("cycle {cycle}: acquire failed after the holder died: {e}"),
                Err(_) => panic!("cycle {cycle}: hang: the waiter never returned"),
            }
            let seen = probe(NAME, &dir, 0);
            let result = match seen.strip_prefix("LOCKED ") {
                Some(h) if names_pid(h, me) => Ok(()),
                _ => Err(format!(
                    "cycle {cycle}: while this process's waiter holds the lock, another \
                     process's try got {seen:?} (expected Locked naming pid={me}): the lock \
                     was released behind the waiter's back"
                )),
            };
            release_tx.send(()).unwrap();
            result.unwrap();
        });

        // Released again: any process can take it (the probe waits for it: a
        // helper thread of an attempt that gave up earlier in this cycle may still
        // take and drop it first).
        let seen = probe(NAME, &dir, HANG_GUARD.as_millis() as u64);
        assert_eq!(seen, "ACQUIRED", "cycle {cycle}: after the waiter let go");
    }
}

// ---------------------------------------------------------------------------------
// 7. Closing another descriptor of LOCK in the holder does not release the lock
// ---------------------------------------------------------------------------------

#[test]
fn closing_another_handle_to_the_lock_file_in_the_holder_keeps_the_lock() {
    const NAME: &str = "closing_another_handle_to_the_lock_file_in_the_holder_keeps_the_lock";
    if let Ok(role) = std::env::var(CHILD_ENV) {
        run_child(&role);
        return;
    }
    let (_tmp, dir) = new_store();
    // The child opens and drops a std::fs::File on LOCK and a second ProcessLock
    // (never acquired) after taking the lock, and only then says HELD.
    let mut holder = spawn_holder(NAME, &dir, true);
    let pid = holder.pid();
    let lock = ProcessLock::open(&RealVfs, &dir).expect("open LOCK");
    expect_locked(
        lock.acquire(Duration::from_millis(300)),
        pid,
        "acquire after the holder closed other descriptors of LOCK",
    );
    let seen = probe(NAME, &dir, 300);
    assert!(
        seen.strip_prefix("LOCKED ")
            .is_some_and(|h| names_pid(h, pid)),
        "another process's try got {seen:?}, expected Locked naming pid={pid}"
    );
    let ended = holder.kill();
    assert_eq!(ended.status.signal(), Some(SIGKILL), "{}", ended.describe());
}

// ---------------------------------------------------------------------------------
// 8. A waiter waits while the lock is held, and gets Locked naming the holder
//    when its timeout passes
// ---------------------------------------------------------------------------------

#[test]
fn a_waiter_waits_while_the_lock_is_held_and_gets_locked_naming_the_holder_at_its_timeout() {
    const NAME: &str =
        "a_waiter_waits_while_the_lock_is_held_and_gets_locked_naming_the_holder_at_its_timeout";
    if let Ok(role) = std::env::var(CHILD_ENV) {
        run_child(&role);
        return;
    }
    let (_tmp, dir) = new_store();
    let lock_file = dir.join("LOCK");
    let mut holder = spawn_holder(NAME, &dir, false);
    let pid = holder.pid();
    let me = std::process::id();
    let timeout = Duration::from_millis(300);

    // When its timeout passes, each layer gives up with Locked naming the holder,
    // and reports a wait of at least its timeout (its own account: one that gave
    // up early would report less; the test reads no clock).
    let lock = ProcessLock::open(&RealVfs, &dir).expect("open LOCK");
    let (_, waited_ms) = expect_locked(lock.acquire(timeout), pid, "ProcessLock::acquire");
    assert!(
        waited_ms >= timeout.as_millis() as u64,
        "Locked reports waited_ms={waited_ms} for a {timeout:?} timeout"
    );
    let r = Store::open(
        &dir,
        Options {
            lock_timeout: timeout,
            ..Options::default()
        },
    );
    expect_locked(store_error_to_wal(r, "Store::open"), pid, "Store::open");

    // The CLI: GOT_LOCK_TIMEOUT=0.3, exit code 6, and the message names the holder.
    let cli_put = |lock_timeout: &str, json: bool, title: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_got"));
        cmd.arg("--store").arg(&dir);
        if json {
            cmd.arg("--json");
        }
        cmd.args([
            "entity",
            "put",
            "task",
            "--props",
            &format!(r#"{{"title": "{title}"}}"#),
        ])
        .env("GOT_LOCK_TIMEOUT", lock_timeout)
        .env_remove("GOT_DIR")
        .env_remove(CHILD_ENV)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        cmd
    };
    for json in [true, false] {
        let out = cli_put("0.3", json, "blocked").output().expect("run got");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(6),
            "`got entity put` against a held lock (json={json}): stdout {stdout}, stderr {stderr}"
        );
        let message = if json {
            let j: serde_json::Value = serde_json::from_str(stdout.trim())
                .unwrap_or_else(|e| panic!("--json error output is not JSON ({e}): {stdout}"));
            assert_eq!(j["error"]["code"], "locked", "{stdout}");
            j["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        } else {
            stderr.to_string()
        };
        assert!(
            message.contains(&format!("pid={pid}")),
            "the CLI's message does not name the holder pid={pid}: {message}"
        );
    }

    // Before its timeout a waiter keeps waiting: with long timeouts (hang guards
    // only) the library's lock, a store's read-write open and a CLI write all block
    // in the kernel while the holder lives, and each gets the lock once it dies.
    let mine = || {
        flock_waiters(&lock_file)
            .iter()
            .filter(|&&p| p == me)
            .count()
    };
    // (The attempts above that gave up left their helper threads blocked.)
    let before = mine();
    let hang_guard_s = HANG_GUARD.as_secs().to_string();
    std::thread::scope(|s| {
        let lib = s.spawn(|| {
            let l = ProcessLock::open(&RealVfs, &dir).expect("open LOCK");
            l.acquire(HANG_GUARD).map(|_| ()).map_err(|e| e.to_string())
        });
        let opened = s.spawn(|| {
            let st = Store::open(
                &dir,
                Options {
                    lock_timeout: HANG_GUARD,
                    ..Options::default()
                },
            )
            .map_err(|e| e.to_string())?;
            st.transaction(|tx| tx.put("waited", "note", props([("by", Value::from("store"))])))
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        let mut cli = cli_put(&hang_guard_s, false, "waited")
            .spawn()
            .expect("spawn got");
        let cli_pid = cli.id();
        wait_until("three waiters blocking in the kernel on LOCK", || {
            (mine() >= before + 2 && flock_waiters(&lock_file).contains(&cli_pid))
                || lib.is_finished()
                || opened.is_finished()
                || cli.try_wait().unwrap().is_some()
        });
        assert!(
            !lib.is_finished() && !opened.is_finished() && cli.try_wait().unwrap().is_none(),
            "a waiter returned while pid={pid} held the lock"
        );
        let ended = holder.kill();
        assert_eq!(ended.status.signal(), Some(SIGKILL), "{}", ended.describe());
        assert_eq!(lib.join().unwrap(), Ok(()), "ProcessLock::acquire");
        assert_eq!(opened.join().unwrap(), Ok(()), "Store::open and a commit");
        let out = cli.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "`got entity put` that waited: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });

    // The locked-out puts wrote nothing; the ones that waited are there.
    let store = Store::open(&dir, Options::default()).expect("open after the holder died");
    let titles: Vec<Value> = store
        .list(Some("task"), None)
        .unwrap()
        .into_iter()
        .map(|e| e.props["title"].clone())
        .collect();
    assert_eq!(titles, [Value::from("waited")]);
    assert!(store.get("waited").unwrap().is_some());
}

// ---------------------------------------------------------------------------------
// 9. Two handles in one process share the lock and the commit queue
// ---------------------------------------------------------------------------------

#[test]
fn two_store_handles_in_one_process_share_the_lock_and_the_commit_queue() {
    const THREADS: usize = 8;
    const EACH: usize = 40;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join(".got");
    let opts = Options {
        create_if_missing: true,
        // Threads of one process take turns on the one lock (a checkpoint holds it
        // while it writes a run): the timeout is only a hang guard, so a loaded
        // machine cannot fail the test.
        lock_timeout: HANG_GUARD,
        checkpoint_wal_bytes: 16 << 10,
        max_runs: 2,
        ..Options::default()
    };
    let a = Store::open(&dir, opts.clone()).expect("first handle");
    let b = Store::open(&dir, opts).expect("second handle");
    // One shared store behind both handles: one lock, one commit queue, one state
    // (an extension made through one handle is the one the other gets).
    let ext_a = a.extension(|_| std::sync::atomic::AtomicU8::new(7));
    let ext_b = b.extension(|_| std::sync::atomic::AtomicU8::new(9));
    assert!(
        std::sync::Arc::ptr_eq(&ext_a, &ext_b),
        "the two handles do not share one store"
    );
    let handles = [&a, &b];
    let errors = Mutex::new(Vec::<String>::new());
    let acked = Mutex::new(BTreeSet::<String>::new());
    let writers_done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        // A background thread checkpoints through the second handle meanwhile.
        let (errors_ref, done, b_ref) = (&errors, &writers_done, &b);
        s.spawn(move || {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if let Err(e) = b_ref.checkpoint() {
                    errors_ref
                        .lock()
                        .unwrap()
                        .push(format!("background checkpoint: {e}"));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let mut writers = Vec::new();
        for t in 0..THREADS {
            let (mine, other) = (handles[t % 2], handles[(t + 1) % 2]);
            let (errors, acked) = (&errors, &acked);
            writers.push(s.spawn(move || {
                for k in 0..EACH {
                    let p = props([
                        ("thread", Value::Int(t as i64)),
                        ("seq", Value::Int(k as i64)),
                    ]);
                    let e = match mine.transaction(|tx| tx.create("shared", p.clone())) {
                        Ok(e) => e,
                        Err(e) => {
                            errors
                                .lock()
                                .unwrap()
                                .push(format!("thread {t} commit {k}: {e}"));
                            continue;
                        }
                    };
                    acked.lock().unwrap().insert(e.id.clone());
                    match other.get(&e.id) {
                        Ok(Some(seen)) if seen.version == e.version => {}
                        r => errors.lock().unwrap().push(format!(
                            "thread {t}: the other handle does not see {} v{} right after \
                             its commit: {r:?}",
                            e.id, e.version
                        )),
                    }
                }
            }));
        }
        for w in writers {
            w.join().expect("a writer thread panicked");
        }
        writers_done.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let errors = errors.into_inner().unwrap();
    assert!(
        errors.is_empty(),
        "{} failure(s), first ones: {:?}",
        errors.len(),
        &errors[..errors.len().min(10)]
    );
    let acked = acked.into_inner().unwrap();
    assert_eq!(acked.len(), THREADS * EACH);
    for h in handles {
        let listed: BTreeSet<String> = h
            .list(Some("shared"), None)
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(
            listed, acked,
            "a handle's list differs from what was committed"
        );
    }
    drop((a, b));

    let rep = got::versioned_store::verify(Arc::new(RealVfs), &dir).expect("verify");
    assert!(rep.healthy(), "verify: {:?}", rep.findings);
    let fresh = Store::open(&dir, Options::default()).expect("reopen");
    let listed: BTreeSet<String> = fresh
        .list(Some("shared"), None)
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        listed, acked,
        "after reopening, the store differs from what was acknowledged"
    );
}
