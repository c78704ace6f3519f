//! Power-loss model checking on the simulated disk (`SimVfs`).
//!
//! Random transactions run against the store and against a plain `BTreeMap` model;
//! the model takes a transaction only when `commit` acknowledged it. Power is cut at
//! random points (between transactions, in the middle of the Nth I/O operation of a
//! commit or a checkpoint), the store is reopened as a new process, and its whole
//! contents (entities with props and versions, edges in both directions) must equal
//! the last acknowledged model, or the model after the one transaction that was in
//! flight (never half of it, never less than what was acknowledged).
//!
//! Every failure names its seed. Replay one with
//! `GOT_SEED=<n> cargo test --test sim_power_loss <test name> -- --nocapture`.
//! `GOT_LONG_TESTS=1` runs many more seeds; `GOT_SEEDS=<count>` sets the count.

use crate::common;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use got::wal::sim::{FaultError, OpFilter};
use got::{Durability, Options, Props, Store, Value};

use common::model::{
    build_tx, diff, new_store, observe, open, panic_text, Crash, Model, Rng, StepErr,
};

const TEST_FILE: &str = "sim_power_loss";

// ---------------------------------------------------------------------------------
// The workload

enum TxOutcome {
    /// Acknowledged: the model after it.
    Acked(Model),
    /// Nothing was written (an error before or at commit that is not "outcome
    /// unknown").
    Failed(got::Error),
    /// Rejected by commit-time validation (nothing written). A single writer should
    /// never see one; `single_writer_transactions_never_conflict` checks that, the
    /// crash tests only count them.
    Conflict(got::Error, Vec<String>),
    /// The commit failed with an unknown outcome: the model if it did land.
    Unknown(Model, got::Error),
}

/// One random transaction against `store`, starting from the acknowledged `model`.
fn run_tx(store: &Store, rng: &mut Rng, model: &Model) -> Result<TxOutcome, String> {
    let mut next = model.clone();
    let mut tx = match store.begin() {
        Ok(tx) => tx,
        Err(e) => return Ok(TxOutcome::Failed(e)),
    };
    let mut trace = Vec::new();
    let base = next.clone();
    match build_tx(&mut tx, rng, &base, &mut next, &mut trace) {
        Ok(()) => {}
        Err(StepErr::Store(e)) => return Ok(TxOutcome::Failed(e)),
        Err(StepErr::Check(s)) => return Err(s),
    }
    match tx.commit() {
        Ok(_) => Ok(TxOutcome::Acked(next)),
        Err(e @ got::Error::Conflict(_)) => Ok(TxOutcome::Conflict(e, trace)),
        Err(e) if e.is_outcome_unknown() || store.is_poisoned() => Ok(TxOutcome::Unknown(next, e)),
        Err(e) => Ok(TxOutcome::Failed(e)),
    }
}

// ---------------------------------------------------------------------------------
// Opening

fn options(rng: &mut Rng) -> Options {
    Options {
        segment_size_bytes: if rng.one_in(2) { 4096 } else { 8192 },
        checkpoint_wal_bytes: 2048 + rng.below(6145),
        max_runs: 2 + rng.below(2) as usize,
        lock_timeout: Duration::from_secs(5),
        actor: Some("sim".into()),
        ..Options::default()
    }
}

// ---------------------------------------------------------------------------------
// Seeds, failures and replay

fn seed_count(quick: u64, long: u64) -> u64 {
    if let Some(n) = std::env::var("GOT_SEEDS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        return n;
    }
    if std::env::var_os("GOT_LONG_TESTS").is_some() {
        long
    } else {
        quick
    }
}

/// Runs `f` for every seed (or just `GOT_SEED`), collecting failures (panics
/// included); reports each kind of failure with its seeds and replay command.
///
/// Returns the summed statistics of the passing seeds and whether this was a full
/// run (not the replay of one `GOT_SEED`), for the callers' floors: a fault
/// injector or a crash simulator that silently stopped working would otherwise
/// leave every seed passing.
fn for_seeds(
    test: &str,
    quick: u64,
    long: u64,
    f: impl Fn(u64) -> Result<Stats, String>,
) -> (Stats, bool) {
    let replay = std::env::var("GOT_SEED").is_ok();
    let seeds: Vec<u64> = if replay {
        vec![common::seed::seed(test)]
    } else {
        (0..seed_count(quick, long)).collect()
    };
    if !replay {
        eprintln!(
            "{test}: seeds 0..{} (replay one with GOT_SEED=<n>)",
            seeds.len()
        );
    }
    let start = Instant::now();
    // Failure kind (first line, numbers blanked) -> (seeds, first full message).
    let mut failures: BTreeMap<String, (Vec<u64>, String)> = BTreeMap::new();
    let mut total = Stats::default();
    for &seed in &seeds {
        let r = catch_unwind(AssertUnwindSafe(|| f(seed)))
            .unwrap_or_else(|p| Err(format!("panicked: {}", panic_text(&p))));
        match r {
            Ok(s) => total.add(&s),
            Err(msg) => {
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
                slot.0.push(seed);
            }
        }
    }
    println!(
        "{test}: {} seeds in {:.1?}; passing seeds: {total:?}",
        seeds.len(),
        start.elapsed()
    );
    if !failures.is_empty() {
        let n: usize = failures.values().map(|(v, _)| v.len()).sum();
        let mut report = format!(
            "{test}: {n} of {} seeds failed, {} kind(s) of failure:\n",
            seeds.len(),
            failures.len()
        );
        for (seeds, msg) in failures.values() {
            let first = seeds[0];
            let shown: Vec<String> = seeds.iter().take(20).map(u64::to_string).collect();
            report += &format!(
                "\n=== {} seed(s): {}{}\nseed {first}: {msg}\n  replay: GOT_SEED={first} cargo test --test {TEST_FILE} {test} -- --nocapture\n",
                seeds.len(),
                shown.join(" "),
                if seeds.len() > 20 { " ..." } else { "" },
            );
        }
        panic!("{report}");
    }
    (total, !replay)
}

#[derive(Debug, Default)]
struct Stats {
    acked: u64,
    crashes: u64,
    in_flight_landed: u64,
    in_flight_lost: u64,
    failed_commits: u64,
    checkpoints: u64,
    failed_checkpoints: u64,
    conflicts: u64,
    /// Crash cycles that armed a fault.
    faults_armed: u64,
    /// ... whose Nth matching operation then happened (so the fault fired).
    faults_reached: u64,
    /// ... after which some operation failed where the test could see it.
    faults_surfaced: u64,
    /// Crashes that kept every pending write (a process crash, not a power loss).
    keep_all_crashes: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.acked += o.acked;
        self.crashes += o.crashes;
        self.in_flight_landed += o.in_flight_landed;
        self.in_flight_lost += o.in_flight_lost;
        self.failed_commits += o.failed_commits;
        self.checkpoints += o.checkpoints;
        self.failed_checkpoints += o.failed_checkpoints;
        self.conflicts += o.conflicts;
        self.faults_armed += o.faults_armed;
        self.faults_reached += o.faults_reached;
        self.faults_surfaced += o.faults_surfaced;
        self.keep_all_crashes += o.keep_all_crashes;
    }
}

// ---------------------------------------------------------------------------------
// Power loss at random points

/// The fault armed in one crash cycle.
#[derive(Clone, Copy, Debug)]
struct Fault {
    before_step: u64,
    nth: u64,
    filter: OpFilter,
    error: FaultError,
    persistent: bool,
}

fn power_loss_seed(seed: u64) -> Result<Stats, String> {
    let mut rng = Rng::new(seed);
    let opts = options(&mut rng);
    let mut stats = Stats::default();
    let (vfs, store) = new_store(&mut rng, &opts)?;
    let mut store = Some(store);
    let mut acked = Model::default();
    let cycles = 2 + rng.below(2);
    let mut log = format!("options: {opts:?}\n");
    for cycle in 0..cycles {
        let steps = 1 + rng.below(16);
        let fault = (!rng.one_in(4)).then(|| Fault {
            before_step: rng.below(steps),
            nth: 1 + rng.below(60),
            filter: match rng.below(6) {
                0 => OpFilter::Write,
                1 => OpFilter::Sync,
                _ => OpFilter::Any,
            },
            error: if rng.one_in(2) {
                FaultError::Eio
            } else {
                FaultError::Enospc
            },
            persistent: !rng.one_in(4),
        });
        let mut armed = false;
        // Matching operations before the fault was armed, and failures seen since.
        let mut ops_at_arming = 0;
        let failures_before = stats.failed_commits + stats.failed_checkpoints;
        let mut in_flight: Option<Model> = None;
        let s = store.as_ref().expect("open");
        for step in 0..steps {
            if let Some(f) = fault.filter(|f| f.before_step == step) {
                ops_at_arming = vfs.ops_matching(f.filter);
                vfs.fail_op(f.nth, f.filter, f.error, f.persistent);
                armed = true;
                log += &format!("cycle {cycle} step {step}: armed {f:?}\n");
            }
            // Checkpoints now and then, more often right where the fault is armed.
            let at_fault = fault.is_some_and(|f| f.before_step == step);
            if rng.one_in(if at_fault { 3 } else { 6 }) {
                stats.checkpoints += 1;
                match s.checkpoint() {
                    Ok(_) => {}
                    Err(e) if armed => {
                        stats.failed_checkpoints += 1;
                        log += &format!("cycle {cycle} step {step}: checkpoint failed: {e}\n");
                        if s.is_poisoned() || fault.is_some_and(|f| f.persistent) {
                            break;
                        }
                    }
                    Err(e) => {
                        return Err(format!(
                            "checkpoint failed without an injected fault: {e}\n{log}"
                        ))
                    }
                }
            }
            match run_tx(s, &mut rng, &acked).map_err(|e| format!("{e}\n{log}"))? {
                TxOutcome::Acked(m) => {
                    stats.acked += 1;
                    acked = m;
                }
                TxOutcome::Conflict(..) => stats.conflicts += 1,
                TxOutcome::Failed(e) if armed => {
                    stats.failed_commits += 1;
                    log += &format!("cycle {cycle} step {step}: transaction failed: {e}\n");
                    if fault.is_some_and(|f| f.persistent) {
                        break;
                    }
                }
                TxOutcome::Unknown(m, e) if armed => {
                    stats.failed_commits += 1;
                    log += &format!("cycle {cycle} step {step}: outcome unknown: {e}\n");
                    in_flight = Some(m);
                    break;
                }
                TxOutcome::Failed(e) | TxOutcome::Unknown(_, e) => {
                    return Err(format!(
                        "transaction failed without an injected fault: {e}\n{log}"
                    ))
                }
            }
        }
        if let Some(f) = fault.filter(|_| armed) {
            stats.faults_armed += 1;
            if vfs.ops_matching(f.filter) - ops_at_arming >= f.nth {
                stats.faults_reached += 1;
                if stats.failed_commits + stats.failed_checkpoints > failures_before {
                    stats.faults_surfaced += 1;
                }
            }
        }
        // The writer's own reads show exactly the acknowledged state: a failed or
        // unknown commit is not visible before it is known durable.
        vfs.clear_faults();
        let live =
            observe(s).map_err(|e| format!("cycle {cycle}, before the crash: {e}\n{log}"))?;
        if live != acked.contents() {
            return Err(format!(
                "cycle {cycle}: before the crash, the writer's own reads differ from the acknowledged state:\n{}{log}",
                diff(&acked.contents(), &live)
            ));
        }
        let crash = Crash::random(&mut rng);
        log += &format!("cycle {cycle}: crash {crash:?}\n");
        crash.apply(&vfs);
        stats.crashes += 1;
        drop(store.take());
        let s = open(&vfs, &opts).map_err(|e| format!("after crash {cycle}: {e}\n{log}"))?;
        let got = observe(&s).map_err(|e| format!("after crash {cycle}: {e}\n{log}"))?;
        let want = acked.contents();
        if got == want {
            if in_flight.is_some() {
                stats.in_flight_lost += 1;
            }
        } else if in_flight.as_ref().is_some_and(|m| m.contents() == got) {
            stats.in_flight_landed += 1;
            acked = in_flight.take().expect("some");
        } else {
            let mut msg = format!(
                "after crash {cycle} the store matches neither the last acknowledged state{}:\n  vs acknowledged:\n{}",
                if in_flight.is_some() { " nor the in-flight transaction" } else { "" },
                diff(&want, &got)
            );
            if let Some(m) = &in_flight {
                msg += &format!("  vs in-flight:\n{}", diff(&m.contents(), &got));
            }
            return Err(format!("{msg}{log}"));
        }
        store = Some(s);
    }
    // The recovered store takes new commits and reads them back.
    let s = store.as_ref().expect("open");
    for _ in 0..3 {
        match run_tx(s, &mut rng, &acked).map_err(|e| format!("{e}\n{log}"))? {
            TxOutcome::Acked(m) => acked = m,
            TxOutcome::Conflict(..) => stats.conflicts += 1,
            TxOutcome::Failed(e) | TxOutcome::Unknown(_, e) => {
                return Err(format!("commit after recovery failed: {e}\n{log}"))
            }
        }
    }
    let got = observe(s)?;
    if got != acked.contents() {
        return Err(format!(
            "after recovery, new commits read back wrong:\n{}{log}",
            diff(&acked.contents(), &got)
        ));
    }
    Ok(stats)
}

/// Power is cut between transactions, in the middle of a commit (the Nth I/O
/// operation fails, once or from then on, then the crash applies, drops or tears
/// what was pending) and in the middle of checkpoints and compactions. After each
/// reopen the store holds exactly the acknowledged transactions, plus possibly the
/// single one whose outcome was unknown, and nothing else.
#[test]
fn power_loss_never_loses_acknowledged_or_shows_half_a_transaction() {
    let (s, full) = for_seeds(
        "power_loss_never_loses_acknowledged_or_shows_half_a_transaction",
        3_000,
        50_000,
        power_loss_seed,
    );
    if full {
        // The faults must really fire, and fail operations the test sees: with an
        // injector that never fires every seed would pass without testing anything.
        assert!(
            s.faults_reached * 3 >= s.faults_armed && s.faults_armed > 0,
            "only {} of {} armed faults had their Nth operation happen: {s:?}",
            s.faults_reached,
            s.faults_armed
        );
        assert!(
            s.faults_surfaced * 10 >= s.faults_reached * 7,
            "only {} of {} faults that fired made an operation fail: is the fault \
             injector working? {s:?}",
            s.faults_surfaced,
            s.faults_reached
        );
        assert!(
            s.failed_commits > 0 && s.failed_checkpoints > 0 && s.in_flight_lost > 0,
            "no failed commit, failed checkpoint or lost in-flight commit: {s:?}"
        );
    }
}

// ---------------------------------------------------------------------------------
// Every acknowledgement is already durable

fn ack_is_durable_seed(seed: u64) -> Result<Stats, String> {
    let mut rng = Rng::new(seed ^ 0xACED);
    let opts = options(&mut rng);
    let mut stats = Stats::default();
    let (vfs, store) = new_store(&mut rng, &opts)?;
    let mut store = Some(store);
    let mut acked = Model::default();
    let steps = 4 + rng.below(12);
    for step in 0..steps {
        let s = store.as_ref().expect("open");
        let what;
        if rng.one_in(5) {
            stats.checkpoints += 1;
            s.checkpoint()
                .map_err(|e| format!("step {step}: checkpoint failed: {e}"))?;
            what = "checkpoint";
        } else {
            match run_tx(s, &mut rng, &acked)? {
                TxOutcome::Acked(m) => acked = m,
                TxOutcome::Conflict(..) => stats.conflicts += 1,
                TxOutcome::Failed(e) | TxOutcome::Unknown(_, e) => {
                    return Err(format!("step {step}: commit failed: {e}"))
                }
            }
            stats.acked += 1;
            what = "commit";
        }
        // Power loss right after the acknowledgement: only synced data survives.
        vfs.crash_drop_all();
        stats.crashes += 1;
        drop(store.take());
        let s = open(&vfs, &opts).map_err(|e| format!("step {step} ({what}): {e}"))?;
        let got = observe(&s).map_err(|e| format!("step {step} ({what}): {e}"))?;
        if got != acked.contents() {
            return Err(format!(
                "step {step}: after an acknowledged {what} and a power loss that dropped every unsynced write, the store lost acknowledged state:\n{}options: {opts:?}",
                diff(&acked.contents(), &got)
            ));
        }
        store = Some(s);
    }
    Ok(stats)
}

/// Drops every pending (unsynced) write right after each acknowledgement: fails if
/// a commit (or a checkpoint) is ever acknowledged before what it depends on is
/// synced.
#[test]
fn every_acknowledged_commit_is_already_durable() {
    for_seeds(
        "every_acknowledged_commit_is_already_durable",
        1_000,
        20_000,
        ack_is_durable_seed,
    );
}

// ---------------------------------------------------------------------------------
// Durability::None: a suffix may be lost, consistency never

fn durability_none_seed(seed: u64) -> Result<Stats, String> {
    let mut rng = Rng::new(seed ^ 0x0DD5);
    let opts = Options {
        durability: Durability::None,
        ..options(&mut rng)
    };
    let mut stats = Stats::default();
    let (vfs, store) = new_store(&mut rng, &opts)?;
    let mut store = Some(store);
    // Every acknowledged state since the last point known durable (oldest first).
    let mut states = vec![Model::default()];
    for cycle in 0..2 + rng.below(2) {
        let s = store.as_ref().expect("open");
        for step in 0..1 + rng.below(16) {
            if rng.one_in(6) {
                stats.checkpoints += 1;
                s.checkpoint()
                    .map_err(|e| format!("cycle {cycle} step {step}: checkpoint: {e}"))?;
                // A checkpoint syncs the log first: everything so far is durable.
                let last = states.pop().expect("non-empty");
                states = vec![last];
            }
            let cur = states.last().expect("non-empty").clone();
            match run_tx(s, &mut rng, &cur)? {
                TxOutcome::Acked(m) => states.push(m),
                TxOutcome::Conflict(..) => stats.conflicts += 1,
                TxOutcome::Failed(e) | TxOutcome::Unknown(_, e) => {
                    return Err(format!("cycle {cycle} step {step}: commit failed: {e}"))
                }
            }
            stats.acked += 1;
        }
        let crash = Crash::random(&mut rng);
        crash.apply(&vfs);
        stats.crashes += 1;
        drop(store.take());
        let s = open(&vfs, &opts).map_err(|e| format!("after crash {cycle} ({crash:?}): {e}"))?;
        let got = observe(&s).map_err(|e| format!("after crash {cycle} ({crash:?}): {e}"))?;
        if let Crash::KeepAll = crash {
            // A process crash (the page cache survives it) loses nothing, even
            // unsynced: docs/design.md, "Durability modes".
            stats.keep_all_crashes += 1;
            let newest = states.last().expect("non-empty");
            if got != newest.contents() {
                return Err(format!(
                    "after process crash {cycle} (every write kept) with Durability::None the store lost acknowledged commits:\n{}options: {opts:?}",
                    diff(&newest.contents(), &got)
                ));
            }
        }
        let Some(i) = states.iter().rposition(|m| m.contents() == got) else {
            return Err(format!(
                "after crash {cycle} ({crash:?}) with Durability::None the store is not any acknowledged state since the last checkpoint ({} candidates); vs the newest:\n{}vs the oldest:\n{}options: {opts:?}",
                states.len(),
                diff(&states.last().expect("non-empty").contents(), &got),
                diff(&states[0].contents(), &got),
            ));
        };
        if i + 1 == states.len() {
            stats.in_flight_landed += 1;
        } else {
            stats.in_flight_lost += 1;
        }
        // After a crash the recovered state is what is on disk.
        states = vec![states.swap_remove(i)];
        store = Some(s);
    }
    Ok(stats)
}

/// With `Durability::None` a power loss may lose recent commits, but what remains
/// is exactly the state after some acknowledged commit since the last checkpoint:
/// never half a transaction, never a gap. A process crash (every pending write
/// kept) loses nothing.
#[test]
fn durability_none_loses_only_a_suffix_of_commits() {
    let (s, full) = for_seeds(
        "durability_none_loses_only_a_suffix_of_commits",
        1_000,
        20_000,
        durability_none_seed,
    );
    if full {
        // Power losses must really lose unsynced commits sometimes (else "only a
        // suffix" was never put to the test), and process crashes must occur.
        assert!(
            s.in_flight_lost > 0 && s.in_flight_landed > 0 && s.keep_all_crashes > 0,
            "the crashes never lost (or never kept) a commit, or none was a process crash: {s:?}"
        );
    }
}

// ---------------------------------------------------------------------------------
// The workload's own precondition

fn no_conflict_seed(seed: u64) -> Result<Stats, String> {
    let mut rng = Rng::new(seed ^ 0xC0F1);
    let opts = options(&mut rng);
    let mut stats = Stats::default();
    let (_vfs, store) = new_store(&mut rng, &opts)?;
    let mut acked = Model::default();
    for step in 0..30 {
        match run_tx(&store, &mut rng, &acked)? {
            TxOutcome::Acked(m) => acked = m,
            TxOutcome::Conflict(e, trace) => {
                return Err(format!(
                    "step {step}: a transaction with no concurrent writer was rejected: {e}\n  its operations: {}",
                    trace.join(", ")
                ))
            }
            TxOutcome::Failed(e) | TxOutcome::Unknown(_, e) => {
                return Err(format!("step {step}: commit failed: {e}"))
            }
        }
        stats.acked += 1;
    }
    let got = observe(&store)?;
    if got != acked.contents() {
        return Err(format!(
            "the store disagrees with the model:\n{}",
            diff(&acked.contents(), &got)
        ));
    }
    Ok(stats)
}

/// The random transactions of these tests (put, delete with its edges, add and
/// remove edges, several per transaction) are valid in their final state, so with
/// one writer and no crash every one of them commits and reads back as modeled.
#[test]
fn single_writer_transactions_never_conflict() {
    for_seeds(
        "single_writer_transactions_never_conflict",
        300,
        5_000,
        no_conflict_seed,
    );
}

/// Minimal forms of what `single_writer_transactions_never_conflict` finds: the
/// commit-time invariant checks look at the transaction's intermediate steps
/// instead of its final state.
#[test]
fn a_transaction_is_validated_on_its_final_state() {
    let mut rng = Rng::new(0);
    let opts = options(&mut rng);
    let (_vfs, store) = new_store(&mut rng, &opts).expect("store");
    let p = || Props::from([("n".to_string(), Value::Int(1))]);
    let mut tx = store.begin().unwrap();
    for id in ["a", "b", "c"] {
        tx.put(id, "kv", p()).unwrap();
    }
    tx.add_edge("c", "dep", "b", p()).unwrap();
    tx.commit().unwrap();
    let mut failures = Vec::new();

    // An edge added, then one of its endpoints deleted (which removes the edge).
    let mut tx = store.begin().unwrap();
    tx.add_edge("a", "dep", "b", p()).unwrap();
    tx.delete("a").unwrap();
    if let Err(e) = tx.commit() {
        failures.push(format!("add_edge(a -dep-> b), delete(a): {e}"));
    }

    // An entity deleted (with its edge), re-created, and given that edge again.
    let mut tx = store.begin().unwrap();
    tx.delete("c").unwrap();
    tx.put("c", "kv", p()).unwrap();
    tx.add_edge("c", "dep", "b", p()).unwrap();
    if let Err(e) = tx.commit() {
        failures.push(format!("delete(c), put(c), add_edge(c -dep-> b): {e}"));
    }
    assert!(
        failures.is_empty(),
        "transactions valid in their final state were rejected:\n  {}",
        failures.join("\n  ")
    );
}
