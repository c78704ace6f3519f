//! Real processes sharing one store (DESIGN.md promises 1, 3 and 7, "Real crashes"):
//! writers SIGKILLed at random moments, several processes committing at once while
//! segments rotate and checkpoints and compactions run, compare-and-swap across
//! processes, and a reader that must never see the store go backwards.
//!
//! Children are this test binary run again on one test (`--exact NAME`) with
//! `GOT_TEST_CHILD=<role>`. They talk to the parent in `@`-prefixed lines on stdout,
//! flushed one by one; a child prints `@ACK …` only after the commit it names
//! returned `Ok`, so every `@ACK` the parent reads is an acknowledged commit.
//!
//! Each `@ACK` line names the commit's entity and a digest of the props the child
//! wrote, so the parent checks contents, not only ids.
//!
//! No assertion depends on how fast anything runs: children are coordinated by
//! files and protocol lines (events), and the only timeouts guard against a hang
//! (a child that prints nothing for a minute), failing with a clear message.
//!
//! `GOT_LONG_TESTS=1` runs the long modes (500 kills, more rounds);
//! `GOT_SEED=<n>` replays the kill delays and the children's data of a failed run
//! (the moments the kernel schedules are not replayable).

mod common;

use common::child::{dir_env, env_string, say, Ended, Proc, CHILD_ENV, SIGKILL};
use got::wal::RealVfs;
use got::{props, Durability, Options, Props, Store, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// A child that prints nothing for this long is taken to hang (a guard, not a
/// deadline: a busy child keeps printing, however slow the machine).
const IDLE_GUARD: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------
// Helpers shared by parents and children
// ---------------------------------------------------------------------------------

fn long_mode() -> bool {
    std::env::var_os("GOT_LONG_TESTS").is_some()
}

/// splitmix64: small, seedable, good enough for timings and padding.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// What a child prints for an acknowledged commit of `props` (and the parent
/// recomputes from what the store holds): a checksum of their debug form.
fn digest(p: &Props) -> String {
    format!("{:08x}", crc32fast::hash(format!("{p:?}").as_bytes()))
}

/// Tells the parent that the commit creating `id` with `p` was acknowledged.
fn say_ack(id: &str, p: &Props) {
    say(&format!("ACK {id} {}", digest(p)));
}

/// The child's data seed, from the parent (`GOT_TEST_CHILD_SEED`).
fn child_rng() -> Rng {
    Rng::new(env_u64("GOT_TEST_CHILD_SEED"))
}

fn child_seed_env(seed: u64, n: u64) -> (&'static str, String) {
    (
        "GOT_TEST_CHILD_SEED",
        (seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_string(),
    )
}

fn pad(rng: &mut Rng, lo: u64, hi: u64) -> Value {
    let n = rng.range(lo, hi) as usize;
    let s: String = (0..n)
        .map(|i| (b'a' + ((i as u64 + rng.0) % 26) as u8) as char)
        .collect();
    Value::from(s)
}

// ---------------------------------------------------------------------------------
// The child side
// ---------------------------------------------------------------------------------

fn env_u64(key: &str) -> u64 {
    env_string(key)
        .parse()
        .unwrap_or_else(|_| panic!("{key} must be a number"))
}

fn child_store(opts: Options) -> Store {
    let dir = env_string("GOT_TEST_DIR");
    Store::open(&dir, opts).unwrap_or_else(|e| panic!("child cannot open {dir}: {e}"))
}

/// Waits until the parent creates the start file, so that all children begin together.
fn wait_for_go() {
    wait_for_file(&PathBuf::from(env_string("GOT_TEST_GO")));
}

/// Waits until `path` exists. The parent kills a child that waits too long (see
/// [`IDLE_GUARD`]); the child itself gives up only if its parent is gone.
fn wait_for_file(path: &Path) {
    let parent = std::os::unix::process::parent_id();
    while !path.exists() {
        assert!(
            std::os::unix::process::parent_id() == parent,
            "the parent died while {} did not exist",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Options for the SIGKILL loop: segments rotate and checkpoints and compactions run
/// every few commits, so kills land inside them too.
fn kill_opts() -> Options {
    Options {
        segment_size_bytes: 64 << 10,
        checkpoint_wal_bytes: 32 << 10,
        max_runs: 2,
        lock_timeout: Duration::from_secs(30),
        ..Options::default()
    }
}

/// Options for the concurrent writers: tiny segments, small checkpoint threshold,
/// compaction as soon as there are more than two runs, retries enough for contention.
fn busy_opts() -> Options {
    Options {
        segment_size_bytes: 8 << 10,
        checkpoint_wal_bytes: 16 << 10,
        max_runs: 2,
        max_retries: 10_000,
        lock_timeout: Duration::from_secs(10),
        ..Options::default()
    }
}

fn run_child(role: &str) {
    // Children read runs and DURABLE through maps, as `got-server` does (a
    // reader sees other processes' commits through the mapped DURABLE).
    if role != "truncated-run-reader-pread" {
        got::wal::mapped::enable_with_sigbus_handler().expect("install the SIGBUS handler");
    }
    match role {
        "sigkill-writer" => child_sigkill_writer(kill_opts()),
        "unsynced-writer" => child_sigkill_writer(Options {
            durability: Durability::None,
            ..kill_opts()
        }),
        "bulk-writer" => child_bulk_writer(),
        "cas-writer" => child_cas_writer(),
        "counter-reader" => child_counter_reader(),
        "steady-writer" => child_steady_writer(),
        "victim-writer" => child_victim_writer(),
        "truncated-run-reader" => child_truncated_run_reader(true),
        "truncated-run-reader-pread" => child_truncated_run_reader(false),
        "foreign-sigbus" => child_foreign_sigbus(),
        other => panic!("unknown child role {other}"),
    }
}

/// Commits forever, one new entity per transaction, until it is killed.
fn child_sigkill_writer(opts: Options) {
    let store = child_store(opts);
    let mut rng = child_rng();
    for seq in 0u64.. {
        let p = props([
            ("seq", Value::Int(seq as i64)),
            ("pid", Value::Int(i64::from(std::process::id()))),
            ("pad", pad(&mut rng, 256, 4096)),
        ]);
        let id = store
            .transaction(|tx| Ok(tx.create("item", p.clone())?.id))
            .unwrap_or_else(|e| panic!("commit {seq} failed: {e}"));
        say_ack(&id, &p);
    }
}

/// `GOT_TEST_N` commits, one new entity each. Writer 0 also runs a background thread
/// that checkpoints every few milliseconds while it commits (DESIGN.md: "a long-lived
/// process does it in the background").
fn child_bulk_writer() {
    let index = env_u64("GOT_TEST_INDEX");
    let n = env_u64("GOT_TEST_N");
    let store = child_store(busy_opts());
    let mut rng = child_rng();
    say("READY");
    wait_for_go();
    let done = std::sync::atomic::AtomicBool::new(false);
    // Runs the background checkpoints wrote: writer 0 waits for the first half-way
    // (an event, so that one runs while it commits however fast the commits are).
    let runs_written = std::sync::atomic::AtomicU64::new(0);
    /// Stops the background thread however the writing ends (a panic included).
    struct SetOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for SetOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    std::thread::scope(|s| {
        if index == 0 {
            let (store, done, runs_written) = (&store, &done, &runs_written);
            s.spawn(move || {
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(10));
                    let info = store
                        .checkpoint()
                        .unwrap_or_else(|e| panic!("background checkpoint failed: {e}"));
                    if info.run.is_some() {
                        runs_written.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        say(&format!(
                            "CKPT compacted={} retired={}",
                            info.compacted, info.segments_retired
                        ));
                    }
                }
            });
        }
        let _stop = SetOnDrop(&done);
        for seq in 0..n {
            if index == 0 && seq == n / 2 {
                let waiting = std::time::Instant::now();
                while runs_written.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                    // A hang guard, not a deadline.
                    assert!(
                        waiting.elapsed() < IDLE_GUARD,
                        "the background checkpoint never wrote a run"
                    );
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            let p = props([
                ("writer", Value::Int(index as i64)),
                ("seq", Value::Int(seq as i64)),
                ("pad", pad(&mut rng, 100, 400)),
            ]);
            let id = store
                .transaction(|tx| Ok(tx.create("bulk", p.clone())?.id))
                .unwrap_or_else(|e| panic!("writer {index} commit {seq} failed: {e}"));
            say_ack(&id, &p);
        }
    });
    if let Some(e) = store.last_checkpoint_error() {
        say(&format!("CKPTERR {e}"));
    }
    say("DONE");
}

/// Increments the counter `GOT_TEST_N` times with compare-and-swap; with
/// `GOT_TEST_TICKS=1` each increment also creates one `tick` entity in the same
/// transaction (so a consistent snapshot has exactly `n` ticks). With
/// `GOT_TEST_PAUSE_AT=k` it says `PAUSED` after k increments and waits for the
/// file `GOT_TEST_GO2` before the rest.
fn child_cas_writer() {
    let n = env_u64("GOT_TEST_N");
    let id = env_string("GOT_TEST_COUNTER");
    let ticks = std::env::var("GOT_TEST_TICKS").is_ok_and(|v| v == "1");
    let pause_at: Option<u64> = std::env::var("GOT_TEST_PAUSE_AT")
        .ok()
        .map(|v| v.parse().expect("GOT_TEST_PAUSE_AT is a number"));
    let store = child_store(busy_opts());
    say("READY");
    wait_for_go();
    for i in 0..n {
        if pause_at == Some(i) {
            say("PAUSED");
            wait_for_file(&PathBuf::from(env_string("GOT_TEST_GO2")));
        }
        let value = store
            .transaction(|tx| {
                let e = tx
                    .get(&id)?
                    .ok_or_else(|| got::Error::NotFound(id.clone()))?;
                let v = e.props["n"].as_i64().expect("n is an integer") + 1;
                if ticks {
                    tx.create("tick", props([("n", Value::Int(v))]))?;
                }
                tx.put_if_version(&id, "counter", props([("n", Value::Int(v))]), e.version)?;
                Ok(v)
            })
            .unwrap_or_else(|e| panic!("increment {i} failed: {e}"));
        say(&format!("ACK {value}"));
    }
    if let Some(e) = store.last_checkpoint_error() {
        say(&format!("CKPTERR {e}"));
    }
    say("DONE");
}

/// Reads the counter and the tick count in fresh transactions until it sees
/// `GOT_TEST_N`, reporting every step backwards or inconsistent snapshot, and
/// saying `SAW n version` for every value it sees first.
fn child_counter_reader() {
    let target = env_u64("GOT_TEST_N") as i64;
    let id = env_string("GOT_TEST_COUNTER");
    let store = child_store(Options {
        read_only: true,
        ..Options::default()
    });
    say("READY");
    let (mut last_n, mut last_version, mut reads) = (-1i64, 0u64, 0u64);
    loop {
        let mut tx = store.begin().expect("begin");
        let e = tx.get(&id).expect("get").expect("the counter exists");
        let ticks = tx.list(Some("tick"), None).expect("list").len() as i64;
        drop(tx);
        reads += 1;
        let n = e.props["n"].as_i64().expect("n is an integer");
        if n < last_n || e.version < last_version {
            say(&format!(
                "VIOLATION went backwards: n {last_n} -> {n}, version {last_version} -> {}",
                e.version
            ));
        }
        if e.version != n as u64 + 1 || ticks != n {
            say(&format!(
                "VIOLATION inconsistent snapshot: n={n} version={} ticks={ticks}",
                e.version
            ));
        }
        if n > last_n {
            say(&format!("SAW {n} {}", e.version));
        }
        last_n = last_n.max(n);
        last_version = last_version.max(e.version);
        if n >= target {
            break;
        }
    }
    say(&format!("READS {reads}"));
}

/// Commits until the parent's stop file exists, then `GOT_TEST_N` more.
fn child_steady_writer() {
    let index = env_u64("GOT_TEST_INDEX");
    let after = env_u64("GOT_TEST_N");
    let stop = PathBuf::from(env_string("GOT_TEST_STOP"));
    let store = child_store(busy_opts());
    say("READY");
    wait_for_go();
    let mut left: Option<u64> = None;
    for seq in 0u64.. {
        if left.is_none() && stop.exists() {
            left = Some(after);
        }
        match &mut left {
            Some(0) => break,
            Some(k) => *k -= 1,
            None => {}
        }
        assert!(seq < 20_000, "the parent never asked to stop");
        let p = props([
            ("writer", Value::Int(index as i64)),
            ("seq", Value::Int(seq as i64)),
        ]);
        let id = store
            .transaction(|tx| Ok(tx.create("steady", p.clone())?.id))
            .unwrap_or_else(|e| panic!("steady writer {index} commit {seq} failed: {e}"));
        say_ack(&id, &p);
    }
    if let Some(e) = store.last_checkpoint_error() {
        say(&format!("CKPTERR {e}"));
    }
    say("DONE");
}

/// Commits forever until it is killed.
fn child_victim_writer() {
    let store = child_store(busy_opts());
    let mut rng = child_rng();
    say("READY");
    wait_for_go();
    for seq in 0u64.. {
        let p = props([
            ("seq", Value::Int(seq as i64)),
            ("pad", pad(&mut rng, 50, 2000)),
        ]);
        let id = store
            .transaction(|tx| Ok(tx.create("victim", p.clone())?.id))
            .unwrap_or_else(|e| panic!("victim commit {seq} failed: {e}"));
        say_ack(&id, &p);
    }
}

// ---------------------------------------------------------------------------------
// The parent side
// ---------------------------------------------------------------------------------

impl Proc {
    /// `Proc::spawn`, labelled `label (pid=…)`.
    fn spawn_as(test: &str, role: &str, label: &str, envs: &[(&str, String)]) -> Proc {
        let mut p = Proc::spawn(test, role, envs);
        p.label = format!("{label} (pid={})", p.pid());
        p
    }

    fn expect_line(&mut self, prefix: &str, timeout: Duration) -> String {
        match self.wait_line(prefix, timeout) {
            Some(l) => l,
            None => {
                let label = self.label.clone();
                let ended = self.kill();
                panic!("{label} never printed @{prefix}:\n{}", ended.describe());
            }
        }
    }

    /// Waits for the child to exit by itself, however long it takes while it keeps
    /// printing; one that prints nothing for [`IDLE_GUARD`] is killed and fails.
    fn finish(mut self) -> Ended {
        loop {
            match self.lines.recv_timeout(IDLE_GUARD) {
                Ok(l) => self.seen.push(l),
                // The child closed its stdout: it is exiting.
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let ended = self.kill();
                    panic!(
                        "{} printed nothing for {IDLE_GUARD:?}: it hangs\n{}",
                        ended.label,
                        ended.describe()
                    );
                }
            }
        }
        let status = self.child.wait().expect("wait for a child");
        self.collect(status)
    }
}

impl Ended {
    /// The rest of each line that starts with `word` and a space.
    fn values(&self, word: &str) -> Vec<String> {
        let p = format!("{word} ");
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix(&p).map(str::to_string))
            .collect()
    }

    fn has(&self, line: &str) -> bool {
        self.lines.iter().any(|l| l == line)
    }

    /// The `ACK <id> <digest>` lines as id → digest of the props written.
    fn acks(&self) -> BTreeMap<String, String> {
        self.values("ACK")
            .iter()
            .map(|l| {
                let (id, d) = l
                    .split_once(' ')
                    .unwrap_or_else(|| panic!("{}: malformed ACK line {l:?}", self.label));
                (id.to_string(), d.to_string())
            })
            .collect()
    }

    fn describe(&self) -> String {
        let others: Vec<&String> = self
            .lines
            .iter()
            .filter(|l| !l.starts_with("ACK ") && !l.starts_with("CKPT "))
            .take(20)
            .collect();
        let count = |p: &str| self.lines.iter().filter(|l| l.starts_with(p)).count();
        format!(
            "{}: {}; {} ACK and {} CKPT lines; other lines: {others:?}\n--- stderr ---\n{}",
            self.label,
            self.status,
            count("ACK "),
            count("CKPT "),
            self.stderr
        )
    }

    /// Panics unless the child exited 0, printed DONE and reported no checkpoint error.
    fn expect_clean_exit(&self) {
        assert!(
            self.status.success() && self.has("DONE"),
            "child failed:\n{}",
            self.describe()
        );
        let errs = self.values("CKPTERR");
        assert!(
            errs.is_empty(),
            "{}: an automatic checkpoint failed: {errs:?}",
            self.label
        );
    }
}

fn got_cli(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_got"))
        .arg("--store")
        .arg(dir)
        .args(args)
        .env_remove("GOT_DIR")
        .env_remove("GOT_LOCK_TIMEOUT")
        .env_remove(CHILD_ENV)
        .output()
        .expect("run the got binary")
}

/// `verify` must find nothing wrong (notes, such as a torn tail, are fine).
fn assert_verify_healthy(dir: &Path, context: &str) -> got::versioned_store::VerifyReport {
    let rep = got::versioned_store::verify(Arc::new(RealVfs), dir)
        .unwrap_or_else(|e| panic!("{context}: verify failed to run: {e}"));
    assert!(
        rep.healthy(),
        "{context}: verify is not healthy: findings {:?}, notes {:?}",
        rep.findings,
        rep.notes
    );
    rep
}

/// Opens the store read-write in this process from nothing (recovery included),
/// the way a fresh process would, and returns every entity of `kind` by id.
fn fresh_entities(dir: &Path, kind: &str) -> BTreeMap<String, got::Entity> {
    let store = Store::open(
        dir,
        Options {
            lock_timeout: Duration::from_secs(30),
            ..Options::default()
        },
    )
    .unwrap_or_else(|e| panic!("reopen {}: {e}", dir.display()));
    let all = store
        .list(Some(kind), None)
        .unwrap_or_else(|e| panic!("list after reopen: {e}"));
    all.into_iter().map(|e| (e.id.clone(), e)).collect()
}

/// A temporary directory that is kept (and its path printed) when the test fails,
/// so the store that failed can be inspected with `got verify` / `got repair`.
struct Scratch(Option<tempfile::TempDir>);

impl Scratch {
    fn path(&self) -> &Path {
        self.0.as_ref().expect("scratch dir").path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(t) = self.0.take() {
                eprintln!("kept the failed test's files in {}", t.keep().display());
            }
        }
    }
}

/// Creates a store with `opts` (its first WAL segment already of their size) and
/// closes it again.
fn new_store(opts: Options) -> (Scratch, PathBuf) {
    let tmp = Scratch(Some(tempfile::tempdir().expect("tempdir")));
    let dir = tmp.path().join(".got");
    let store = Store::open(
        &dir,
        Options {
            create_if_missing: true,
            ..opts
        },
    )
    .expect("create a store");
    drop(store);
    (tmp, dir)
}

/// The WAL segments (`wal/<first-lsn>.wal`) and their sizes.
fn wal_segments(dir: &Path) -> Vec<(u64, u64)> {
    let mut segs: Vec<(u64, u64)> = std::fs::read_dir(dir.join("wal"))
        .expect("read wal/")
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            let first = name.strip_suffix(".wal")?.parse().ok()?;
            Some((first, e.metadata().ok()?.len()))
        })
        .collect();
    segs.sort();
    segs
}

// ---------------------------------------------------------------------------------
// 1. SIGKILL at random moments
// ---------------------------------------------------------------------------------

/// The acknowledged commits (id → digest of its props) that `found` lacks or holds
/// with other contents; each was created once, so it must be at version 1.
fn lost_or_changed(
    acked: &BTreeMap<String, String>,
    found: &BTreeMap<String, got::Entity>,
) -> Vec<String> {
    acked
        .iter()
        .filter_map(|(id, want)| match found.get(id) {
            None => Some(format!("{id} missing")),
            Some(e) if digest(&e.props) != *want || e.version != 1 => Some(format!(
                "{id} changed: version {}, props digest {} instead of {want}: {:?}",
                e.version,
                digest(&e.props),
                e.props
            )),
            Some(_) => None,
        })
        .collect()
}

/// Every entity of `kind` a fresh `got --json entity list` process prints.
fn cli_entities(dir: &Path, kind: &str, why: &str) -> BTreeMap<String, got::Entity> {
    let out = got_cli(dir, &["--json", "entity", "list", "--kind", kind]);
    assert!(
        out.status.success(),
        "{why}: `got entity list` failed: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("`got --json entity list` prints JSON");
    listed
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|e| {
            let id = e["id"].as_str().expect("an id").to_string();
            let props = match got::json::from_json(&e["props"]) {
                Value::Map(m) => m,
                other => panic!("{why}: props of {id} are not an object: {other:?}"),
            };
            let entity = got::Entity {
                id: id.clone(),
                kind: e["kind"].as_str().expect("a kind").to_string(),
                version: e["version"].as_u64().expect("a version"),
                props,
                created_at: e["created_at"].as_i64().unwrap_or_default(),
                updated_at: e["updated_at"].as_i64().unwrap_or_default(),
            };
            (id, entity)
        })
        .collect()
}

/// After each kill: `verify` healthy before anyone recovers, a fresh CLI process
/// lists every acknowledged commit with the props the child wrote, a fresh
/// read-write open (recovery) holds every acknowledged commit with its props and at
/// most one unacknowledged commit per kill, and `verify` is healthy again after
/// recovery.
fn check_after_kill(
    dir: &Path,
    kind: &str,
    acked: &BTreeMap<String, String>,
    kills: usize,
    why: &str,
) {
    assert_verify_healthy(dir, &format!("{why}, before recovery"));

    let lost = lost_or_changed(acked, &cli_entities(dir, kind, why));
    assert!(
        lost.is_empty(),
        "{why}: a fresh `got entity list` process lacks {} of {} acknowledged commits: {lost:?}",
        lost.len(),
        acked.len()
    );

    let found = fresh_entities(dir, kind);
    let lost = lost_or_changed(acked, &found);
    assert!(
        lost.is_empty(),
        "{why}: after a read-write reopen {} of {} acknowledged commits are lost or changed: {lost:?}",
        lost.len(),
        acked.len()
    );
    assert!(
        found.len() <= acked.len() + kills,
        "{why}: {} entities but only {} acknowledged in {kills} kills (at most one \
         unacknowledged commit can be in flight per kill)",
        found.len(),
        acked.len()
    );
    assert_verify_healthy(dir, &format!("{why}, after recovery"));
}

/// Kills a writer of `role` (`kind` entities) `kills` times: half of the kills
/// land a random delay after its spawn, half a random delay after its first ACK.
/// After every kill each commit any writer acknowledged is there with its contents.
fn kill_loop(name: &str, role: &str, opts: Options, kills: usize) {
    let seed = common::seed::seed(name);
    let mut rng = Rng::new(seed);
    let (_tmp, dir) = new_store(opts);
    let mut acked = BTreeMap::new();
    let mut acked_before_kill = 0;
    for round in 0..kills {
        let after_first_ack = round % 2 == 1;
        let delay = Duration::from_millis(rng.range(5, 60));
        let why = format!(
            "GOT_SEED={seed}, kill {} of {kills}, {delay:?} after {}",
            round + 1,
            if after_first_ack {
                "its first ACK"
            } else {
                "spawn"
            }
        );
        let mut w = Proc::spawn_as(
            name,
            role,
            "writer",
            &[dir_env(&dir), child_seed_env(seed, round as u64)],
        );
        if after_first_ack {
            w.expect_line("ACK ", IDLE_GUARD);
        }
        std::thread::sleep(delay);
        let ended = w.kill();
        assert_eq!(
            ended.status.signal(),
            Some(SIGKILL),
            "{why}: the writer exited before it was killed:\n{}",
            ended.describe()
        );
        let mine = ended.acks();
        if after_first_ack {
            assert!(
                !mine.is_empty(),
                "{why}: the ACK waited for is not in its output"
            );
        }
        acked_before_kill += usize::from(!mine.is_empty());
        for (id, d) in mine {
            assert!(
                acked.insert(id.clone(), d).is_none(),
                "{why}: {id} acknowledged twice"
            );
        }
        check_after_kill(&dir, "item", &acked, round + 1, &why);
    }
    eprintln!(
        "{name}: {kills} kills, {acked_before_kill} of them after at least one ACK; \
         all {} acknowledged commits survived with their contents",
        acked.len()
    );
}

#[test]
fn sigkilled_writer_never_loses_an_acknowledged_commit() {
    const NAME: &str = "sigkilled_writer_never_loses_an_acknowledged_commit";
    if let Ok(role) = std::env::var(CHILD_ENV) {
        run_child(&role);
        return;
    }
    let kills = if long_mode() { 500 } else { 50 };
    kill_loop(NAME, "sigkill-writer", kill_opts(), kills);
}

/// `Durability::None` gives up durability against power loss only: a process
/// crash keeps everything written (the page cache survives a SIGKILL), so a
/// SIGKILLed writer loses no commit it acknowledged (docs/design.md, "Durability
/// modes").
#[test]
fn sigkilled_writer_with_durability_none_loses_no_acknowledged_commit() {
    const NAME: &str = "sigkilled_writer_with_durability_none_loses_no_acknowledged_commit";
    if let Ok(role) = std::env::var(CHILD_ENV) {
        run_child(&role);
        return;
    }
    let kills = if long_mode() { 200 } else { 12 };
    kill_loop(
        NAME,
        "unsynced-writer",
        Options {
            durability: Durability::None,
            ..kill_opts()
        },
        kills,
    );
}

// ---------------------------------------------------------------------------------
// 2. Four processes committing at once while checkpoints and compaction run
// ---------------------------------------------------------------------------------

#[test]
fn four_processes_committing_at_once_lose_nothing_while_checkpoints_and_compaction_run() {
    const NAME: &str =
        "four_processes_committing_at_once_lose_nothing_while_checkpoints_and_compaction_run";
    if let Ok(role) = std::env::var(CHILD_ENV) {
        run_child(&role);
        return;
    }
    const WRITERS: usize = 4;
    const EACH: usize = 250;
    let seed = common::seed::seed(NAME);
    let (tmp, dir) = new_store(busy_opts());
    let go = tmp.path().join("go");
    let mut procs: Vec<Proc> = (0..WRITERS)
        .map(|i| {
            Proc::spawn_as(
                NAME,
                "bulk-writer",
                &format!("writer {i}"),
                &[
                    dir_env(&dir),
                    ("GOT_TEST_INDEX", i.to_string()),
                    ("GOT_TEST_N", EACH.to_string()),
                    ("GOT_TEST_GO", go.display().to_string()),
                    child_seed_env(seed, i as u64),
                ],
            )
        })
        .collect();
    for p in &mut procs {
        p.expect_line("READY", IDLE_GUARD);
    }
    std::fs::write(&go, b"go").unwrap();
    let ended: Vec<Ended> = procs.into_iter().map(Proc::finish).collect();
    let mut acked = BTreeMap::new();
    for e in &ended {
        e.expect_clean_exit();
        let acks = e.acks();
        assert_eq!(acks.len(), EACH, "{}", e.describe());
        for (id, d) in acks {
            assert!(
                acked.insert(id.clone(), d).is_none(),
                "id {id} acknowledged twice"
            );
        }
    }
    let ckpts = ended[0].values("CKPT");
    assert!(
        !ckpts.is_empty(),
        "writer 0's background thread never checkpointed: {}",
        ended[0].describe()
    );

    let found = fresh_entities(&dir, "bulk");
    let lost = lost_or_changed(&acked, &found);
    assert!(
        lost.is_empty(),
        "acknowledged but lost or changed: {lost:?}"
    );
    assert_eq!(found.len(), WRITERS * EACH, "exactly one entity per commit");
    let rep = assert_verify_healthy(&dir, "after four concurrent writers");
    assert!(rep.checkpoint_lsn > 0, "no checkpoint ever ran");
    assert!(
        rep.runs <= 2,
        "max_runs is 2 but {} runs are live: compaction did not keep up",
        rep.runs
    );
    let segs = wal_segments(&dir);
    assert!(
        segs[0].0 > 1 && segs.iter().all(|&(_, len)| len <= 8 << 10),
        "the 8 KiB segments should have rotated and the first been retired: {segs:?}"
    );
    eprintln!(
        "{NAME}: {} commits; writer 0's background checkpoints wrote {} runs ({} compactions)",
        found.len(),
        ckpts.len(),
        ckpts
            .iter()
            .filter(|c| c.contains("compacted=true"))
            .count()
    );
}

// ---------------------------------------------------------------------------------
// 3. Compare-and-swap across processes
// ---------------------------------------------------------------------------------

const COUNTER: &str = "counter-1";

/// Creates the counter at version 1 with `n = 0`.
fn create_counter(dir: &Path) {
    let store = Store::open(dir, Options::default()).expect("open");
    let e = store
        .transaction(|tx| tx.put(COUNTER, "counter", props([("n", Value::Int(0))])))
        .expect("create the counter");
    assert_eq!(e.version, 1);
}

/// With `pause`, each writer stops after `pause.0` increments, says `PAUSED`
/// and waits for the file `pause.1`.
fn spawn_cas_writers(
    name: &str,
    dir: &Path,
    go: &Path,
    writers: usize,
    each: usize,
    ticks: bool,
    pause: Option<(usize, &Path)>,
) -> Vec<Proc> {
    (0..writers)
        .map(|i| {
            let mut env = vec![
                dir_env(dir),
                ("GOT_TEST_N", each.to_string()),
                ("GOT_TEST_COUNTER", COUNTER.to_string()),
                ("GOT_TEST_TICKS", if ticks { "1" } else { "0" }.to_string()),
                ("GOT_TEST_GO", go.display().to_string()),
            ];
            if let Some((at, go2)) = pause {
                env.push(("GOT_TEST_PAUSE_AT", at.to_string()));
                env.push(("GOT_TEST_GO2", go2.display().to_string()));
            }
            Proc::spawn_as(name, "cas-writer", &format!("cas writer {i}"), &env)
        })
        .collect()
}

/// Every increment a writer acknowledged wrote a distinct value, and together they
/// are exactly 1..=total.
fn check_cas_results(ended: &[Ended], total: usize) {
    let mut values = BTreeSet::new();
    for e in ended {
        e.expect_clean_exit();
        for v in e.values("ACK") {
            let v: i64 = v.parse().expect("a number");
            assert!(
                values.insert(v),
                "two processes both incremented to {v}: a lost update"
            );
        }
    }
    let want: BTreeSet<i64> = (1..=total as i64).collect();
    assert_eq!(
        values, want,
        "acknowledged increments are not exactly 1..={total}"
    );
}

#[test]
fn compare_and_swap_across_four_processes_loses_no_increment() {
    const NAME: &str = "compare_and_swap_across_four_processes_loses_no_increment";
    if let Ok(role) = std::env::var(CHILD_ENV) {
        run_child(&role);
        return;
    }
    const WRITERS: usize = 4;
    let each = if long_mode() { 500 } else { 50 };
    let (tmp, dir) = new_store(busy_opts());
    let go = tmp.path().join("go");
    create_counter(&dir);
    let mut procs = spawn_cas_writers(NAME, &dir, &go, WRITERS, each, false, None);
    for p in &mut procs {
        p.expect_line("READY", IDLE_GUARD);
    }
    std::fs::write(&go, b"go").unwrap();
    let ended: Vec<Ended> = procs.into_iter().map(Proc::finish).collect();
    check_cas_results(&ended, WRITERS * each);

    let counter = fresh_entities(&dir, "counter")
        .remove(COUNTER)
        .expect("the counter exists");
    assert_eq!(counter.props["n"], Value::Int((WRITERS * each) as i64));
    assert_eq!(
        counter.version,
        (WRITERS * each) as u64 + 1,
        "one version per increment after the creation"
    );
    assert_verify_healthy(&dir, "after compare-and-swap writers");
}

// ---------------------------------------------------------------------------------
// 4. A reader process never sees the store go backwards
// ---------------------------------------------------------------------------------

/// A read-only process reads the counter and the tick count in fresh transactions
/// while three processes increment it. Every value it sees is consistent (n ticks
/// for counter n) and never older than one it saw before. To prove it sees other
/// processes' commits while they run, not just at the end, the writers stop half
/// way (an event: each says `PAUSED`) until the reader has reported the half-way
/// value; then they go on, and the reader must see the final one.
#[test]
fn a_reader_process_never_sees_the_counter_go_backwards_while_writers_run() {
    const NAME: &str = "a_reader_process_never_sees_the_counter_go_backwards_while_writers_run";
    if let Ok(role) = std::env::var(CHILD_ENV) {
        run_child(&role);
        return;
    }
    const WRITERS: usize = 3;
    let each = if long_mode() { 300 } else { 40 };
    let total = WRITERS * each;
    let half = WRITERS * (each / 2);
    let (tmp, dir) = new_store(busy_opts());
    let go = tmp.path().join("go");
    let go2 = tmp.path().join("go2");
    create_counter(&dir);
    let mut reader = Proc::spawn_as(
        NAME,
        "counter-reader",
        "reader",
        &[
            dir_env(&dir),
            ("GOT_TEST_N", total.to_string()),
            ("GOT_TEST_COUNTER", COUNTER.to_string()),
        ],
    );
    reader.expect_line("SAW 0 1", IDLE_GUARD);
    let mut procs = spawn_cas_writers(NAME, &dir, &go, WRITERS, each, true, Some((each / 2, &go2)));
    for p in &mut procs {
        p.expect_line("READY", IDLE_GUARD);
    }
    std::fs::write(&go, b"go").unwrap();
    for p in &mut procs {
        p.expect_line("PAUSED", IDLE_GUARD);
    }
    // Every writer is paused: the counter stays at `half` until go2, and a reader
    // that follows other processes' commits must report it.
    reader.expect_line(&format!("SAW {half} "), IDLE_GUARD);
    std::fs::write(&go2, b"go").unwrap();
    let ended: Vec<Ended> = procs.into_iter().map(Proc::finish).collect();
    check_cas_results(&ended, total);
    let r = reader.finish();
    assert!(r.status.success(), "the reader failed:\n{}", r.describe());
    let violations = r.values("VIOLATION");
    assert!(
        violations.is_empty(),
        "the reader saw {} violation(s): {violations:?}",
        violations.len()
    );
    // The parent checks the order too, from the values the reader reported in the
    // order it saw them: strictly increasing n and version, consistent, from the
    // initial value through the half-way value to the final one.
    let saw: Vec<(usize, u64)> = r
        .values("SAW")
        .iter()
        .map(|l| {
            let (n, v) = l.split_once(' ').expect("SAW n version");
            (n.parse().unwrap(), v.parse().unwrap())
        })
        .collect();
    assert!(
        saw.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1),
        "the reader's values went backwards: {saw:?}"
    );
    assert!(
        saw.iter().all(|&(n, v)| v == n as u64 + 1),
        "a value the reader saw has the wrong version: {saw:?}"
    );
    assert_eq!(saw.first(), Some(&(0, 1)), "{saw:?}");
    assert!(saw.contains(&(half, half as u64 + 1)), "{saw:?}");
    assert_eq!(saw.last(), Some(&(total, total as u64 + 1)), "{saw:?}");
    eprintln!(
        "{NAME}: {} reads saw {} distinct values of 0..={total}",
        r.values("READS").join(" "),
        saw.len()
    );
    assert_verify_healthy(&dir, "after the reader test");
}

// ---------------------------------------------------------------------------------
// 5. One writer SIGKILLed while the others keep writing
// ---------------------------------------------------------------------------------

#[test]
fn a_writer_sigkilled_mid_run_loses_nothing_and_the_others_complete() {
    const NAME: &str = "a_writer_sigkilled_mid_run_loses_nothing_and_the_others_complete";
    if let Ok(role) = std::env::var(CHILD_ENV) {
        run_child(&role);
        return;
    }
    const STEADY: usize = 3;
    const AFTER_KILL: usize = 40;
    let rounds = if long_mode() { 20 } else { 3 };
    let seed = common::seed::seed(NAME);
    let mut rng = Rng::new(seed);
    let (tmp, dir) = new_store(busy_opts());
    let mut steady_acked = BTreeMap::new();
    let mut victim_acked = BTreeMap::new();
    for round in 0..rounds {
        let go = tmp.path().join(format!("go-{round}"));
        let stop = tmp.path().join(format!("stop-{round}"));
        let common = |extra: Vec<(&'static str, String)>| {
            let mut v = vec![
                dir_env(&dir),
                ("GOT_TEST_GO", go.display().to_string()),
                ("GOT_TEST_STOP", stop.display().to_string()),
                ("GOT_TEST_N", AFTER_KILL.to_string()),
            ];
            v.extend(extra);
            v
        };
        let mut steady: Vec<Proc> = (0..STEADY)
            .map(|i| {
                Proc::spawn_as(
                    NAME,
                    "steady-writer",
                    &format!("steady writer {i}"),
                    &common(vec![
                        ("GOT_TEST_INDEX", i.to_string()),
                        child_seed_env(seed, (round * 8 + i) as u64),
                    ]),
                )
            })
            .collect();
        let mut victim = Proc::spawn_as(
            NAME,
            "victim-writer",
            "victim",
            &common(vec![child_seed_env(seed, (round * 8 + 7) as u64)]),
        );
        for p in steady.iter_mut().chain([&mut victim]) {
            p.expect_line("READY", IDLE_GUARD);
        }
        std::fs::write(&go, b"go").unwrap();
        let min_acks = rng.range(1, 20) as usize;
        let delay = Duration::from_millis(rng.range(5, 60));
        let why = format!(
            "GOT_SEED={seed}, round {round}: victim killed {delay:?} after its ACK #{min_acks}"
        );
        assert!(
            victim.wait_count("ACK ", min_acks, IDLE_GUARD),
            "{why}: the victim did not commit:\n{}",
            victim.kill().describe()
        );
        std::thread::sleep(delay);
        let v = victim.kill();
        assert_eq!(
            v.status.signal(),
            Some(SIGKILL),
            "{why}: the victim exited by itself:\n{}",
            v.describe()
        );
        // The others were told nothing yet: they are still writing, and write
        // AFTER_KILL more commits each once the stop file exists.
        std::fs::write(&stop, b"stop").unwrap();
        for s in steady {
            let e = s.finish();
            e.expect_clean_exit();
            let acks = e.acks();
            assert!(acks.len() >= AFTER_KILL, "{why}: {}", e.describe());
            steady_acked.extend(acks);
        }
        let v_acks = v.acks();
        assert!(
            v_acks.len() >= min_acks,
            "{why}: the victim's ACKs waited for are not in its output"
        );
        victim_acked.extend(v_acks);

        let steady_found = fresh_entities(&dir, "steady");
        let victim_found = fresh_entities(&dir, "victim");
        let mut lost = lost_or_changed(&steady_acked, &steady_found);
        lost.extend(lost_or_changed(&victim_acked, &victim_found));
        assert!(
            lost.is_empty(),
            "{why}: acknowledged but lost or changed: {lost:?}"
        );
        assert_eq!(
            steady_found.len(),
            steady_acked.len(),
            "{why}: the surviving writers committed exactly what they acknowledged"
        );
        assert!(
            victim_found.len() <= victim_acked.len() + round + 1,
            "{why}: {} victim entities for {} acknowledged commits: more than one \
             unacknowledged commit per kill",
            victim_found.len(),
            victim_acked.len()
        );
        assert_verify_healthy(&dir, &why);
    }
    eprintln!(
        "{NAME}: {rounds} rounds, {} steady and {} victim commits acknowledged and found",
        steady_acked.len(),
        victim_acked.len()
    );
}

// ---------------------------------------------------------------------------------
// 6. Reading runs through a map: a page that cannot be read
// ---------------------------------------------------------------------------------

/// Builds a store with one run, opens it again (mapping the run where maps
/// are enabled), truncates the run file under it as another program could,
/// then reads an entity that lies only in the run.
fn child_truncated_run_reader(maps: bool) {
    assert_eq!(got::wal::mapped::enabled(), maps);
    let dir = PathBuf::from(env_string("GOT_TEST_DIR"));
    let opts = Options {
        create_if_missing: true,
        ..Options::default()
    };
    let id = {
        let store = Store::open(&dir, opts.clone()).unwrap();
        let id = store
            .transaction(|tx| Ok(tx.create("item", props([("n", Value::Int(1))]))?.id))
            .unwrap();
        store.checkpoint().unwrap();
        id
    };
    let store = Store::open(&dir, opts).unwrap();
    // Loads the run's filter (read once, with pread), so that the read below
    // needs only a block.
    assert!(store.get("no-such-entity").unwrap().is_none());
    for f in std::fs::read_dir(dir.join("runs")).unwrap() {
        let path = f.unwrap().path();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        say(&format!("TRUNCATED {}", path.display()));
    }
    match store.get(&id) {
        Ok(e) => say(&format!("READ {e:?}")),
        Err(e) => say(&format!("ERR {e}")),
    }
    say("DONE");
}

/// With maps on (as in `got-server`), a run page that cannot be read
/// stops the process with one line naming the file and exit status 7, not a
/// bare "Bus error"; nothing after the fault runs.
#[test]
fn a_mapped_run_that_cannot_be_read_ends_the_process_with_status_7_naming_the_file() {
    const NAME: &str =
        "a_mapped_run_that_cannot_be_read_ends_the_process_with_status_7_naming_the_file";
    if let Ok(role) = std::env::var(CHILD_ENV) {
        run_child(&role);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(".got");
    let child = Proc::spawn(NAME, "truncated-run-reader", &[dir_env(&dir)]);
    let e = child.finish();
    let truncated = e.values("TRUNCATED");
    assert_eq!(truncated.len(), 1, "one run file:\n{}", e.describe());
    assert_eq!(e.status.code(), Some(7), "exit status:\n{}", e.describe());
    assert!(
        e.values("READ").is_empty() && e.values("ERR").is_empty() && !e.has("DONE"),
        "the read returned:\n{}",
        e.describe()
    );
    let want = format!(
        "got: cannot read {}: a page of it could not be read",
        truncated[0]
    );
    assert!(
        e.stderr.contains(&want),
        "{want:?} not in:\n{}",
        e.describe()
    );
}

/// A program that embeds the library and does not opt in reads runs with
/// pread: the same damage is an error the read returns.
#[test]
fn without_maps_a_truncated_run_is_an_error_the_read_returns() {
    const NAME: &str = "without_maps_a_truncated_run_is_an_error_the_read_returns";
    if let Ok(role) = std::env::var(CHILD_ENV) {
        run_child(&role);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(".got");
    let child = Proc::spawn(NAME, "truncated-run-reader-pread", &[dir_env(&dir)]);
    let e = child.finish();
    assert!(e.status.success() && e.has("DONE"), "{}", e.describe());
    assert_eq!(
        e.values("ERR").len(),
        1,
        "the read failed:\n{}",
        e.describe()
    );
}

/// A page of a map that is not got's: a file the child maps itself, truncates
/// and reads.
fn child_foreign_sigbus() {
    let dir = PathBuf::from(env_string("GOT_TEST_DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("foreign");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    f.set_len(8192).unwrap();
    // SAFETY: a fresh private read-only map of a file this child owns; the
    // read below faults on purpose.
    let p = unsafe {
        use std::os::fd::AsRawFd;
        libc::mmap(
            std::ptr::null_mut(),
            8192,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    f.set_len(0).unwrap();
    say("MAPPED");
    // SAFETY: inside the map (which now lies past the end of the file).
    let b = unsafe { std::ptr::read_volatile(p as *const u8) };
    say(&format!("READ {b}"));
}

/// A SIGBUS outside got's maps is not got's to explain: the disposition from
/// before got's handler takes it, and the process dies of the signal, without
/// got's message.
#[test]
fn a_sigbus_outside_the_maps_of_runs_gets_the_previous_disposition() {
    const NAME: &str = "a_sigbus_outside_the_maps_of_runs_gets_the_previous_disposition";
    if let Ok(role) = std::env::var(CHILD_ENV) {
        run_child(&role);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let child = Proc::spawn(NAME, "foreign-sigbus", &[dir_env(tmp.path())]);
    let e = child.finish();
    assert!(e.has("MAPPED"), "{}", e.describe());
    assert!(
        e.values("READ").is_empty(),
        "the read returned:\n{}",
        e.describe()
    );
    assert_eq!(e.status.signal(), Some(libc::SIGBUS), "{}", e.describe());
    assert!(!e.stderr.contains("got: cannot read"), "{}", e.describe());
}
