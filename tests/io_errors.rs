//! Injected I/O errors (EIO, ENOSPC) on the Nth operation of a commit, a
//! checkpoint and an open, once or from then on, for write, sync and any
//! operations, over every N that falls inside the operation.
//!
//! Checked for every case: the caller gets `Ok` or `Err`, never a panic; an `Ok`
//! commit survives a power loss that drops every unsynced write; an `Err` that is
//! not "outcome unknown" means nothing was written (it never appears, not even
//! after a crash that keeps every pending write); a sync failure is "outcome
//! unknown" and poisons the handle, which then refuses commits; a failed
//! transaction is never visible to the handle's own reads, to another process (read
//! only while the poisoned handle lives, read-write after it is dropped), nor after
//! a crash; no acknowledged commit is ever lost; after the fault clears the store
//! keeps working (commits, checkpoints).
//!
//! The workload's seed is `GOT_SEED` when set, else fresh (printed). Every failure
//! prints its case; replay one with `GOT_SEED=<seed> GOT_IO_CASE=<case> cargo test
//! --test io_errors <test name> -- --nocapture`, where `<case>` is the printed
//! `target:prefix:filter:error:once|persistent:nth`.
//! `GOT_LONG_TESTS=1` covers many more store states (prefix lengths).

use crate::common;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use got::wal::sim::{FaultError, OpFilter};
use got::wal::{SimVfs, Vfs};
use got::{Options, Props, Store, Value};

use common::model::{
    build_tx, diff, new_store, observe, open, panic_text, Contents, Crash, Model, Rng, StepErr, DIR,
};

// ---------------------------------------------------------------------------------
// The workload

enum TxOutcome {
    /// Acknowledged: the model after it.
    Acked(Model),
    /// Failed: with the model it would have made if `commit` was reached.
    Failed(got::Error, Option<Model>),
    /// Rejected by commit-time validation (see sim_power_loss'
    /// `single_writer_transactions_never_conflict`).
    Conflict(got::Error),
}

/// One random transaction against `store`, starting from the acknowledged `model`.
fn run_tx(store: &Store, rng: &mut Rng, model: &Model) -> Result<TxOutcome, String> {
    let mut next = model.clone();
    let mut tx = match store.begin() {
        Ok(tx) => tx,
        Err(e) => return Ok(TxOutcome::Failed(e, None)),
    };
    let mut trace = Vec::new();
    let base = next.clone();
    match build_tx(&mut tx, rng, &base, &mut next, &mut trace) {
        Ok(()) => {}
        Err(StepErr::Store(e)) => return Ok(TxOutcome::Failed(e, None)),
        Err(StepErr::Check(s)) => return Err(s),
    }
    match tx.commit() {
        Ok(_) => Ok(TxOutcome::Acked(next)),
        Err(e @ got::Error::Conflict(_)) => Ok(TxOutcome::Conflict(e)),
        Err(e) => Ok(TxOutcome::Failed(e, Some(next))),
    }
}

/// A one-put transaction (never conflicts): entity `id` gets props `{"post": n}`.
fn put_one(store: &Store, model: &Model, id: &str, n: i64) -> Result<Model, got::Error> {
    let p: Props = [("post".to_string(), Value::Int(n))].into();
    let mut tx = store.begin()?;
    tx.put(id, "kv", p.clone())?;
    tx.commit()?;
    let mut m = model.clone();
    let v = m.version(id) + 1;
    m.ents.insert(id.to_string(), (v, Some(p)));
    Ok(m)
}

// ---------------------------------------------------------------------------------
// Cases

/// What the fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// A whole transaction: begin, reads, commit (with its rotation, automatic
    /// checkpoint and segment preallocation).
    Commit,
    /// `Store::checkpoint` (flush, sometimes compaction, CURRENT switch, retirement).
    Checkpoint,
    /// Opening the store as a new process, with a torn tail to recover.
    Open,
}

#[derive(Clone, Copy, Debug)]
struct Case {
    target: Target,
    /// Transactions committed before the target operation.
    prefix: u64,
    filter: OpFilter,
    error: FaultError,
    persistent: bool,
    nth: u64,
}

impl Case {
    fn spec(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}:{}",
            match self.target {
                Target::Commit => "commit",
                Target::Checkpoint => "checkpoint",
                Target::Open => "open",
            },
            self.prefix,
            match self.filter {
                OpFilter::Write => "write",
                OpFilter::Sync => "sync",
                _ => "any",
            },
            match self.error {
                FaultError::Eio => "eio",
                FaultError::Enospc => "enospc",
            },
            if self.persistent {
                "persistent"
            } else {
                "once"
            },
            self.nth
        )
    }

    fn parse(s: &str) -> Case {
        let p: Vec<&str> = s.trim().split(':').collect();
        assert_eq!(
            p.len(),
            6,
            "GOT_IO_CASE is target:prefix:filter:error:once|persistent:nth"
        );
        Case {
            target: match p[0] {
                "commit" => Target::Commit,
                "checkpoint" => Target::Checkpoint,
                "open" => Target::Open,
                t => panic!("unknown target {t}"),
            },
            prefix: p[1].parse().expect("prefix"),
            filter: match p[2] {
                "write" => OpFilter::Write,
                "sync" => OpFilter::Sync,
                "any" => OpFilter::Any,
                f => panic!("unknown filter {f}"),
            },
            error: match p[3] {
                "eio" => FaultError::Eio,
                "enospc" => FaultError::Enospc,
                e => panic!("unknown error {e}"),
            },
            persistent: p[4] == "persistent",
            nth: p[5].parse().expect("nth"),
        }
    }

    /// The power loss after the fault: every kind, spread over N.
    fn crash(&self) -> Crash {
        match self.nth % 3 {
            0 => Crash::DropAll,
            1 => Crash::KeepAll,
            _ => Crash::Random(self.nth.wrapping_mul(0x9E37_79B9) ^ self.prefix),
        }
    }
}

/// The seed of the workload every case of this run replays: `GOT_SEED` when set,
/// else fresh (printed once; a case's replay needs it with `GOT_IO_CASE`).
fn workload_seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| common::seed::seed("io_errors workload"))
}

fn io_options() -> Options {
    Options {
        segment_size_bytes: 4096,
        checkpoint_wal_bytes: 2048,
        max_runs: 2,
        lock_timeout: Duration::from_secs(2),
        actor: Some("io".into()),
        ..Options::default()
    }
}

/// A store after `prefix` acknowledged transactions (and a few checkpoints), all
/// from one deterministic workload; `rng` continues it.
struct Setup {
    vfs: Arc<SimVfs>,
    store: Option<Store>,
    rng: Rng,
    acked: Model,
}

fn setup(prefix: u64, target: Target) -> Result<Setup, String> {
    let mut rng = Rng::new(workload_seed());
    let opts = io_options();
    let (vfs, store) = new_store(&mut rng, &opts)?;
    let mut acked = Model::default();
    let mut done = 0;
    while done < prefix {
        if rng.one_in(15) {
            store
                .checkpoint()
                .map_err(|e| format!("setup: checkpoint failed: {e}"))?;
        }
        match run_tx(&store, &mut rng, &acked)? {
            TxOutcome::Acked(m) => {
                acked = m;
                done += 1;
            }
            // The workload's spurious conflicts (see sim_power_loss) just skip.
            TxOutcome::Conflict(..) => {}
            TxOutcome::Failed(e, _) => return Err(format!("setup: commit failed: {e}")),
        }
    }
    let mut store = Some(store);
    if target == Target::Open {
        // Leave a torn tail for the next open to recover: a commit whose frame is
        // written but whose sync (and the erasing of its header) fails, then a
        // process crash that keeps everything written.
        vfs.fail_op(1, OpFilter::Sync, FaultError::Eio, true);
        let s = store.as_ref().expect("open");
        // A transaction that writes nothing commits without a frame (nothing to
        // sync): draw until one writes.
        let mut tries = 0;
        while let TxOutcome::Acked(m) = run_tx(s, &mut rng, &acked)? {
            tries += 1;
            if m != acked || tries == 20 {
                return Err("setup: a commit whose syncs all failed was acknowledged".into());
            }
        }
        vfs.crash_keep_all();
        vfs.clear_faults();
        drop(store.take());
    }
    Ok(Setup {
        vfs,
        store,
        rng,
        acked,
    })
}

/// What the disk looks like, coarsely: to tell which paths an operation took.
#[derive(Clone, Debug, PartialEq)]
struct Shape {
    segments: usize,
    prealloc: bool,
    generation: u64,
    runs: usize,
    quarantined: usize,
}

fn shape(vfs: &SimVfs) -> Shape {
    let dir = Path::new(DIR);
    let wal = vfs.list_dir(&dir.join("wal")).unwrap_or_default();
    let m = got::versioned_store::manifest::read(vfs, dir).ok();
    Shape {
        segments: wal.iter().filter(|n| n.ends_with(".wal")).count(),
        prealloc: wal.iter().any(|n| n == "next.prealloc"),
        generation: m.as_ref().map_or(0, |m| m.generation),
        runs: m.as_ref().map_or(0, |m| m.runs.len()),
        quarantined: vfs.list_dir(&dir.join("quarantine")).map_or(0, |v| v.len()),
    }
}

/// A fault-free run of the target operation after `prefix` transactions.
struct DryRun {
    /// Operations it did, per filter.
    counts: BTreeMap<&'static str, u64>,
    /// Which paths it took (rotation, checkpoint, compaction, ...).
    category: String,
}

/// Runs the target operation fault-free. `None` if the transaction conflicted
/// (then the prefix is skipped: see `single_writer_transactions_never_conflict`
/// in sim_power_loss).
fn dry_run(prefix: u64, target: Target) -> Result<Option<DryRun>, String> {
    let mut su = setup(prefix, target)?;
    let filters = [
        ("any", OpFilter::Any),
        ("write", OpFilter::Write),
        ("sync", OpFilter::Sync),
    ];
    let s0 = shape(&su.vfs);
    let before: Vec<u64> = filters
        .iter()
        .map(|(_, f)| su.vfs.ops_matching(*f))
        .collect();
    match target {
        Target::Commit => {
            let s = su.store.as_ref().expect("open");
            match run_tx(s, &mut su.rng, &su.acked)? {
                TxOutcome::Acked(_) => {}
                TxOutcome::Conflict(..) => return Ok(None),
                TxOutcome::Failed(e, _) => return Err(format!("commit failed: {e}")),
            }
        }
        Target::Checkpoint => {
            su.store
                .as_ref()
                .expect("open")
                .checkpoint()
                .map_err(|e| format!("checkpoint failed: {e}"))?;
        }
        Target::Open => {
            open(&su.vfs, &io_options())?;
        }
    }
    let counts = filters
        .iter()
        .zip(before)
        .map(|((n, f), b)| (*n, su.vfs.ops_matching(*f) - b))
        .collect();
    let s1 = shape(&su.vfs);
    let category = match target {
        Target::Commit | Target::Checkpoint => format!(
            "rotated={} checkpointed={} compacted={} retired={} preallocated={}",
            s1.segments > s0.segments || (s0.prealloc && !s1.prealloc),
            s1.generation > s0.generation,
            s1.generation > s0.generation && s1.runs <= s0.runs,
            s1.segments < s0.segments,
            !s0.prealloc && s1.prealloc,
        ),
        Target::Open => format!(
            "segments={} runs={} cut={}",
            s0.segments.min(2),
            s0.runs,
            s1.quarantined > s0.quarantined
        ),
    };
    Ok(Some(DryRun { counts, category }))
}

#[derive(Debug, Default)]
struct Tally {
    cases: u64,
    ok: u64,
    failed: u64,
    unknown: u64,
    poisoned: u64,
    stale_readers: u64,
}

fn expect_contents(what: &str, want: &Model, got: Result<Contents, String>) -> Result<(), String> {
    let got = got.map_err(|e| format!("{what}: {e}"))?;
    if got != want.contents() {
        return Err(format!(
            "{what}: contents differ from the expected state:\n{}",
            diff(&want.contents(), &got)
        ));
    }
    Ok(())
}

fn read_only(opts: &Options) -> Options {
    Options {
        read_only: true,
        ..opts.clone()
    }
}

/// One case; `Err` says what went wrong.
fn run_case(c: &Case, tally: &mut Tally) -> Result<(), String> {
    let opts = io_options();
    let mut su = setup(c.prefix, c.target)?;
    let vfs = su.vfs.clone();
    let mut acked = su.acked.clone();
    let before = acked.clone();
    let mut log = String::new();
    tally.cases += 1;
    let ops_before = vfs.ops_matching(c.filter);
    vfs.fail_op(c.nth, c.filter, c.error, c.persistent);

    // The target operation, under the fault.
    let mut target_ok = false;
    let mut store: Option<Store> = match c.target {
        Target::Commit => {
            let s = su.store.take().expect("open");
            let out = catch_unwind(AssertUnwindSafe(|| run_tx(&s, &mut su.rng, &acked)))
                .map_err(|p| format!("the commit panicked: {}", panic_text(&p)))??;
            match out {
                TxOutcome::Acked(m) => {
                    target_ok = true;
                    acked = m;
                }
                TxOutcome::Conflict(e) => {
                    return Err(format!("the commit returned a conflict: {e}"))
                }
                TxOutcome::Failed(e, m) => {
                    log += &format!(
                        "the {} failed: {e}\n",
                        if m.is_some() { "commit" } else { "transaction" }
                    );
                    check_error(&e, &s, tally)?;
                }
            }
            Some(s)
        }
        Target::Checkpoint => {
            let s = su.store.take().expect("open");
            let r = catch_unwind(AssertUnwindSafe(|| s.checkpoint()))
                .map_err(|p| format!("the checkpoint panicked: {}", panic_text(&p)))?;
            match r {
                Ok(_) => target_ok = true,
                Err(e) => {
                    log += &format!("the checkpoint failed: {e}\n");
                    check_error(&e, &s, tally)?;
                }
            }
            Some(s)
        }
        Target::Open => {
            let r = catch_unwind(AssertUnwindSafe(|| {
                Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, DIR, opts.clone())
            }))
            .map_err(|p| format!("the open panicked: {}", panic_text(&p)))?;
            match r {
                Ok(s) => {
                    target_ok = true;
                    Some(s)
                }
                Err(e) => {
                    log += &format!("the open failed: {e}\n");
                    tally.failed += 1;
                    None
                }
            }
        }
    };
    if target_ok {
        tally.ok += 1;
    }
    // The workload is deterministic, so the target operation did at least the
    // operations before the Nth as in its dry run, and then the Nth: the fault fired.
    let ops = vfs.ops_matching(c.filter) - ops_before;
    if ops < c.nth {
        return Err(format!(
            "the fault never fired: the target did {ops} matching operations, fewer than \
             the {} of its dry run\n{log}",
            c.nth
        ));
    }
    vfs.clear_faults();
    let ctx = |e: String| format!("{e}\n{log}");

    if let Some(s) = &store {
        // The handle's own reads: acknowledged data only.
        expect_contents("the handle's own reads after the fault", &acked, observe(s))
            .map_err(ctx)?;
        // Another process (read-only: it needs no lock) while this handle lives.
        let ro = Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, DIR, read_only(&opts))
            .map_err(|e| ctx(format!("a read-only open after the fault failed: {e}")))?;
        let seen = observe(&ro).map_err(|e| ctx(format!("read-only process: {e}")))?;
        drop(ro);
        if seen != acked.contents() {
            // A commit is acknowledged once synced; the DURABLE hint that readers
            // follow may lag if writing it failed (the next commit republishes it).
            if target_ok && c.target == Target::Commit && seen == before.contents() {
                tally.stale_readers += 1;
            } else {
                return Err(ctx(format!(
                    "a read-only process opened after the fault sees other data than acknowledged:\n{}",
                    diff(&acked.contents(), &seen)
                )));
            }
        }
        if !s.is_poisoned() {
            // Another read-write process (the lock is free between commits): its
            // recovery reads to the end of the log, past DURABLE.
            let rw =
                open(&vfs, &opts).map_err(|e| ctx(format!("a second read-write process: {e}")))?;
            expect_contents(
                "a second read-write process opened after the fault",
                &acked,
                observe(&rw),
            )
            .map_err(ctx)?;
        } else {
            tally.poisoned += 1;
            match put_one(s, &acked, "k0", -1) {
                Ok(_) => return Err(ctx("a poisoned handle acknowledged a commit".into())),
                Err(e) if e.is_outcome_unknown() => {}
                Err(e) => {
                    return Err(ctx(format!(
                        "a poisoned handle refused a commit, but not as outcome unknown: {e}"
                    )))
                }
            }
            // The poisoned handle goes away; a new read-write process (it takes the
            // lock and recovers) must not see the failed transaction either.
            drop(store.take());
            let s2 = open(&vfs, &opts).map_err(|e| {
                ctx(format!(
                    "opening read-write after dropping the poisoned handle: {e}"
                ))
            })?;
            expect_contents(
                "a new read-write process after the poisoned handle was dropped",
                &acked,
                observe(&s2),
            )
            .map_err(ctx)?;
            store = Some(s2);
        }
        // The fault is gone: the store keeps working.
        let s = store.as_ref().expect("open");
        acked = put_one(s, &acked, "k1", c.nth as i64)
            .map_err(|e| ctx(format!("after the fault cleared, a commit failed: {e}")))?;
        if c.target == Target::Checkpoint {
            s.checkpoint()
                .map_err(|e| ctx(format!("after the fault cleared, a checkpoint failed: {e}")))?;
        }
        expect_contents("after the fault cleared", &acked, observe(s)).map_err(ctx)?;
    }

    // Power loss; every acknowledged commit is there, nothing else.
    let crash = if target_ok { Crash::DropAll } else { c.crash() };
    crash.apply(&vfs);
    drop(store.take());
    let s = open(&vfs, &opts).map_err(|e| ctx(format!("reopening after {crash:?}: {e}")))?;
    expect_contents(&format!("after {crash:?} and reopen"), &acked, observe(&s)).map_err(ctx)?;
    acked = put_one(&s, &acked, "k2", 7)
        .map_err(|e| ctx(format!("after {crash:?} and reopen, a commit failed: {e}")))?;
    expect_contents("the last commit", &acked, observe(&s)).map_err(ctx)?;
    Ok(())
}

/// A failed operation's error: "outcome unknown" implies a poisoned handle.
fn check_error(e: &got::Error, s: &Store, tally: &mut Tally) -> Result<(), String> {
    if e.is_outcome_unknown() {
        tally.unknown += 1;
        if !s.is_poisoned() {
            return Err(format!(
                "an outcome-unknown error ({e}) left the handle unpoisoned"
            ));
        }
    } else {
        tally.failed += 1;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Running the cases

fn long_mode() -> bool {
    std::env::var_os("GOT_LONG_TESTS").is_some()
}

/// A prefix length whose fault-free dry run failed, and why.
type DryRunError = (u64, String);

/// The store states (prefix lengths) to inject into: in quick mode the first
/// prefix of each category of the target's dry run (a plain commit, one that
/// rotates, one that checkpoints, one that compacts, ...), in long mode all. A dry
/// run that fails (no fault injected!) is reported as a failure of its own.
fn prefixes(target: Target) -> (Vec<(u64, DryRun)>, Vec<DryRunError>) {
    let max = if long_mode() { 100 } else { 60 };
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for prefix in 0..=max {
        let r = catch_unwind(AssertUnwindSafe(|| dry_run(prefix, target)))
            .unwrap_or_else(|p| Err(format!("panicked: {}", panic_text(&p))));
        match r {
            Ok(Some(d)) => {
                if long_mode() || seen.insert(d.category.clone()) {
                    out.push((prefix, d));
                }
            }
            Ok(None) => {}
            Err(e) => errors.push((prefix, e)),
        }
    }
    (out, errors)
}

fn run_target(test: &str, target: Target) {
    let start = Instant::now();
    let mut dry_errors = Vec::new();
    let cases: Vec<Case> = match std::env::var("GOT_IO_CASE") {
        Ok(spec) => vec![Case::parse(&spec)],
        Err(_) => {
            let mut v = Vec::new();
            let (list, errors) = prefixes(target);
            dry_errors = errors;
            for (prefix, d) in list {
                println!(
                    "{test}: after {prefix} transactions: {} {:?}",
                    d.category, d.counts
                );
                let counts = d.counts;
                for (name, filter) in [
                    ("any", OpFilter::Any),
                    ("write", OpFilter::Write),
                    ("sync", OpFilter::Sync),
                ] {
                    for nth in 1..=counts[name] {
                        for error in [FaultError::Eio, FaultError::Enospc] {
                            for persistent in [false, true] {
                                v.push(Case {
                                    target,
                                    prefix,
                                    filter,
                                    error,
                                    persistent,
                                    nth,
                                });
                            }
                        }
                    }
                }
            }
            v
        }
    };
    let prefixes: std::collections::BTreeSet<u64> = cases.iter().map(|c| c.prefix).collect();
    let mut tally = Tally::default();
    // Failure kind (first line, numbers blanked) -> (cases, first full message).
    let mut failures: BTreeMap<String, (Vec<String>, String)> = BTreeMap::new();
    for (prefix, e) in dry_errors {
        let slot = failures
            .entry(format!("the fault-free dry run failed: {}", e.lines().next().unwrap_or("")))
            .or_insert_with(|| {
                (
                    Vec::new(),
                    format!("the fault-free dry run of {target:?} after {prefix} transactions failed: {e}"),
                )
            });
        slot.0
            .push(format!("{target:?} after {prefix} transactions (dry run)"));
    }
    for c in &cases {
        let r = catch_unwind(AssertUnwindSafe(|| run_case(c, &mut tally)))
            .unwrap_or_else(|p| Err(format!("panicked: {}", panic_text(&p))));
        if let Err(msg) = r {
            let kind: String = msg
                .lines()
                .next()
                .unwrap_or("")
                .split(|ch: char| ch.is_ascii_digit())
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join("#")
                .chars()
                .take(160)
                .collect();
            let slot = failures.entry(kind).or_insert_with(|| (Vec::new(), msg));
            slot.0.push(c.spec());
        }
    }
    println!(
        "{test}: {} cases over prefixes {prefixes:?} in {:.1?}: {tally:?}",
        cases.len(),
        start.elapsed()
    );
    if std::env::var_os("GOT_IO_CASE").is_none() {
        // Every case's fault fires (checked per case above), and a good share of
        // them must fail the target operation where the caller sees it: a fault
        // injector that stopped failing operations would leave every case passing.
        // (A commit absorbs many: a failed preallocation or automatic checkpoint
        // after the frame is synced does not fail the commit.)
        let surfaced = tally.failed + tally.unknown;
        let floor = match target {
            Target::Commit => tally.cases / 10,
            Target::Checkpoint | Target::Open => tally.cases * 2 / 5,
        };
        assert!(
            tally.cases > 0 && surfaced >= floor.max(1),
            "{test}: only {surfaced} of {} cases failed the target operation (floor {floor}): \
             is the fault injector working? {tally:?}",
            tally.cases
        );
        if target == Target::Commit {
            assert!(
                tally.unknown > 0 && tally.poisoned > 0,
                "{test}: no sync failure made a commit's outcome unknown: {tally:?}"
            );
        }
    }
    if !failures.is_empty() {
        let n: usize = failures.values().map(|(v, _)| v.len()).sum();
        let mut report = format!(
            "{test}: {n} of {} cases failed, {} kind(s) of failure:\n",
            cases.len(),
            failures.len()
        );
        for (specs, msg) in failures.values() {
            let shown: Vec<&str> = specs.iter().take(12).map(String::as_str).collect();
            let seed = workload_seed();
            let replay = if specs[0].contains("dry run") {
                format!("GOT_SEED={seed} cargo test --test io_errors {test} -- --nocapture")
            } else {
                format!(
                    "GOT_SEED={seed} GOT_IO_CASE={} cargo test --test io_errors {test} -- --nocapture",
                    specs[0]
                )
            };
            report += &format!(
                "\n=== {} case(s): {}{}\ncase {}: {msg}\n  replay: {replay}\n",
                specs.len(),
                shown.join(" "),
                if specs.len() > 12 { " ..." } else { "" },
                specs[0],
            );
        }
        panic!("{report}");
    }
}

/// EIO/ENOSPC on every operation of a transaction (reads, the frame write and its
/// sync, rotation, the automatic checkpoint and compaction it may trigger, segment
/// preallocation), once and persistently.
#[test]
fn io_errors_during_a_commit_surface_and_lose_nothing() {
    run_target(
        "io_errors_during_a_commit_surface_and_lose_nothing",
        Target::Commit,
    );
}

/// EIO/ENOSPC on every operation of a checkpoint (and compaction).
#[test]
fn io_errors_during_a_checkpoint_surface_and_lose_nothing() {
    run_target(
        "io_errors_during_a_checkpoint_surface_and_lose_nothing",
        Target::Checkpoint,
    );
}

/// EIO/ENOSPC on every operation of an open that must recover a torn tail.
#[test]
fn io_errors_while_opening_surface_and_lose_nothing() {
    run_target(
        "io_errors_while_opening_surface_and_lose_nothing",
        Target::Open,
    );
}

/// A commit whose first sync fails — at every position relative to a segment
/// rotation, so at some step it is the end-of-segment frame's sync — then a new
/// handle commits on top, then a power loss that keeps only what was synced:
/// the store opens and holds every acknowledged commit. (The next writer must
/// sync a closed segment's end-of-segment frame before installing the segment it
/// names; a long-mode run found a hole there.)
#[test]
fn a_failed_sync_at_any_point_of_a_rotation_is_healed_by_the_next_writer() {
    let opts = Options {
        create_if_missing: true,
        segment_size_bytes: 4096,
        checkpoint_wal_bytes: 1 << 30,
        ..Options::default()
    };
    let mut rotations_hit = 0;
    for before in 0..40 {
        let vfs = SimVfs::new();
        let s = Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, "/r/.got", opts.clone()).unwrap();
        let mut acked = Vec::new();
        let put = |s: &Store, i: usize| {
            s.transaction(|tx| {
                let mut p = Props::new();
                p.insert("pad".into(), "x".repeat(300).into());
                tx.put(&format!("k{i:03}"), "t", p)
            })
        };
        for i in 0..before {
            put(&s, i).unwrap();
            acked.push(i);
        }
        let segments = || vfs.list_dir(Path::new("/r/.got/wal")).unwrap().len();
        let n_before = segments();
        vfs.fail_op(1, OpFilter::Sync, FaultError::Eio, false);
        assert!(
            put(&s, 1000).is_err(),
            "step {before}: the failed sync surfaces"
        );
        vfs.clear_faults();
        drop(s);
        let s = Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, "/r/.got", opts.clone()).unwrap();
        for i in 2000..2002 {
            put(&s, i).unwrap();
            acked.push(i);
        }
        if segments() > n_before {
            rotations_hit += 1;
        }
        drop(s);
        vfs.crash_drop_all();
        let s = Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, "/r/.got", opts.clone())
            .unwrap_or_else(|e| panic!("step {before}: reopening after the power loss: {e}"));
        for i in &acked {
            let id = format!("k{i:03}");
            let e = s
                .get(&id)
                .unwrap()
                .unwrap_or_else(|| panic!("step {before}: acknowledged {id} lost"));
            assert_eq!(
                (e.kind.as_str(), e.version, e.props.len(), &e.props["pad"]),
                ("t", 1, 1, &Value::from("x".repeat(300))),
                "step {before}: acknowledged {id} came back with other contents: {e:?}"
            );
        }
        assert!(
            s.get("k1000").unwrap().is_none(),
            "step {before}: the commit whose sync failed came back"
        );
    }
    assert!(rotations_hit > 0, "no step crossed a rotation");
}
