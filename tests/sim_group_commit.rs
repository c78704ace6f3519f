//! Group commit under power loss: several simulated processes (each its own
//! `Store` handle on one `SimVfs`: its own lock owner and commit queue), each with
//! several threads committing at once, so commits batch into shared frames, race
//! for the same counters (conflicts), rotate small segments and run checkpoints
//! and compactions (one process on its checkpoint thread) — and the power fails
//! at a random point in the middle of it.
//!
//! After each power loss the store is reopened and checked against what the
//! threads were told:
//! - every commit acknowledged to any thread is there, with its contents;
//! - no half transaction: each transaction writes two entities and a counter,
//!   all or nothing; a conflict wrote nothing;
//! - no lost update: each counter equals the number of surviving transactions
//!   that incremented it, and names the last of them (by LSN);
//! - nothing visible that was lost again: every commit an observer (in a writer's
//!   process, and in a process of its own) saw before the power failed is there.
//!
//! The seed (`GOT_SEED`, printed) chooses the workload and each power loss's
//! outcome; the threads' interleaving is the scheduler's, so a failing seed is
//! replayed in distribution, not byte for byte. `GOT_LONG_TESTS=1` runs 20 times
//! as many seeds.

use crate::common;

use common::seed::seed;
use got::wal::{SimVfs, Vfs};
use got::{Options, Props, Store, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const DIR: &str = "/gc/.got";
const PROCESSES: usize = 3;
const THREADS: usize = 3;
const COUNTERS: u64 = 4;

fn opts() -> Options {
    Options {
        create_if_missing: true,
        // Small segments and checkpoints, few runs: rotation, checkpoints and
        // compaction all happen while the threads commit.
        segment_size_bytes: 4096,
        checkpoint_wal_bytes: 6 << 10,
        max_runs: 2,
        // Conflicts are reported, not retried, so the test sees each one.
        max_retries: 0,
        lock_timeout: std::time::Duration::from_secs(60),
        ..Options::default()
    }
}

fn open(vfs: &Arc<SimVfs>) -> got::Result<Store> {
    Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, DIR, opts())
}

/// A writer process; the odd ones checkpoint on a thread of their own
/// (`background_checkpoints`), so power fails in their checkpoints too.
fn open_writer(vfs: &Arc<SimVfs>, p: usize) -> got::Result<Store> {
    let opts = Options {
        background_checkpoints: p % 2 == 1,
        ..opts()
    };
    Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, DIR, opts)
}

#[derive(Clone, Debug)]
enum Outcome {
    Acked(u64),
    Conflict,
    /// The power failed under it: it may have landed or not, but whole.
    Unknown,
}

#[derive(Clone, Debug)]
struct Tx {
    /// `u-…` and `m-…` are its two entities.
    name: String,
    counter: u64,
    outcome: Outcome,
}

#[derive(Default)]
struct Stats {
    acked: u64,
    conflicts: u64,
    unknown_landed: u64,
    unknown_lost: u64,
    observed: u64,
    frames: u64,
    transactions: u64,
    checkpoints: u64,
    compactions: u64,
    /// The highest first LSN of a segment seen: above 1 means segments rotated.
    newest_segment: u64,
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One transaction: read counter `c{k}`, write `u-name` and `m-name` (the same
/// props) and the counter plus one, naming this transaction.
fn one_tx(s: &Store, name: &str, k: u64) -> Outcome {
    let r = (|| -> got::Result<u64> {
        let mut tx = s.begin()?;
        let cid = format!("c{k}");
        let n = match tx.get(&cid)? {
            Some(e) => match e.props.get("n") {
                Some(Value::Int(n)) => *n,
                other => panic!("counter {cid} holds {other:?}"),
            },
            None => 0,
        };
        let mut p = Props::new();
        p.insert("tx".into(), Value::from(name.to_string()));
        p.insert("counter".into(), Value::Int(k as i64));
        tx.put(&format!("u-{name}"), "pair", p.clone())?;
        tx.put(&format!("m-{name}"), "pair", p)?;
        let mut c = Props::new();
        c.insert("n".into(), Value::Int(n + 1));
        c.insert("last".into(), Value::from(name.to_string()));
        tx.put(&cid, "counter", c)?;
        Ok(tx.commit()?.lsn.expect("it wrote"))
    })();
    match r {
        Ok(lsn) => Outcome::Acked(lsn),
        Err(got::Error::Conflict(_)) => Outcome::Conflict,
        Err(_) => Outcome::Unknown,
    }
}

/// The `u-` entities a handle sees now.
fn visible(s: &Store) -> got::Result<Vec<String>> {
    Ok(s.list(Some("pair"), None)?
        .into_iter()
        .filter(|e| e.id.starts_with("u-"))
        .map(|e| e.id)
        .collect())
}

/// One round: processes and threads commit until `acks_before_crash` commits were
/// acknowledged, then the power fails (`crash_seed`). Returns what the threads were
/// told and what the observers saw.
fn round(
    vfs: &Arc<SimVfs>,
    round: usize,
    mut rng: u64,
    acks_before_crash: u64,
    crash_seed: u64,
    stats: &mut Stats,
) -> (Vec<Tx>, BTreeSet<String>) {
    let stores: Vec<Store> = (0..PROCESSES)
        .map(|p| open_writer(vfs, p).unwrap())
        .collect();
    let observer_process = open(vfs).unwrap();
    let txs = Mutex::new(Vec::new());
    let seen = Mutex::new(BTreeSet::new());
    let acks = AtomicU64::new(0);
    let writing = AtomicU64::new((PROCESSES * THREADS) as u64);
    let down = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for (p, s) in stores.iter().enumerate() {
            for t in 0..THREADS {
                let mut r = splitmix(&mut rng);
                let (txs, acks, down, writing) = (&txs, &acks, &down, &writing);
                scope.spawn(move || {
                    let _done = Done(writing);
                    for seq in 0.. {
                        if down.load(Ordering::SeqCst) {
                            return;
                        }
                        let name = format!("r{round}-p{p}-t{t}-{seq}");
                        let k = splitmix(&mut r) % COUNTERS;
                        let outcome = one_tx(s, &name, k);
                        let stop = matches!(outcome, Outcome::Unknown);
                        if matches!(outcome, Outcome::Acked(_)) {
                            acks.fetch_add(1, Ordering::SeqCst);
                        }
                        txs.lock().unwrap().push(Tx {
                            name,
                            counter: k,
                            outcome,
                        });
                        if stop {
                            return;
                        }
                    }
                });
            }
            if p == 0 {
                // Checkpoints (and the compactions they trigger) on demand too,
                // every 25 acknowledgements.
                let (down, acks, s) = (&down, &acks, s);
                scope.spawn(move || {
                    let mut next = 25;
                    while !down.load(Ordering::SeqCst) {
                        if acks.load(Ordering::SeqCst) >= next {
                            next += 25;
                            if s.checkpoint().is_err() {
                                return;
                            }
                        }
                        pause();
                    }
                });
            }
        }
        // Observers: one in a writer's process, one in a process of its own.
        for s in [&stores[1], &observer_process] {
            let (seen, down) = (&seen, &down);
            scope.spawn(move || {
                while !down.load(Ordering::SeqCst) {
                    match visible(s) {
                        Ok(ids) => seen.lock().unwrap().extend(ids),
                        Err(_) => return,
                    }
                    pause();
                }
            });
        }
        // Wait for the event (so many acknowledgements), then cut the power.
        while acks.load(Ordering::SeqCst) < acks_before_crash {
            assert!(
                writing.load(Ordering::SeqCst) > 0,
                "every writer stopped before the power loss: {:?}",
                txs.lock().unwrap().last()
            );
            pause();
        }
        vfs.crash(crash_seed);
        down.store(true, Ordering::SeqCst);
    });
    for s in &stores {
        let c = s.commit_stats();
        stats.frames += c.frames;
        stats.transactions += c.transactions;
    }
    (txs.into_inner().unwrap(), seen.into_inner().unwrap())
}

/// Counts a writer thread out when it ends, however it ends.
struct Done<'a>(&'a AtomicU64);
impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Lets the committing threads run (pacing only: nothing waits on time).
fn pause() {
    std::thread::sleep(std::time::Duration::from_micros(300));
}

fn int(p: &Props, k: &str) -> i64 {
    match p.get(k) {
        Some(Value::Int(n)) => *n,
        other => panic!("{k} = {other:?}"),
    }
}

/// Checks the reopened store against a round's transactions; `base` holds each
/// counter before the round. Returns the counters after it.
fn check(
    vfs: &Arc<SimVfs>,
    txs: &[Tx],
    seen: &BTreeSet<String>,
    base: &BTreeMap<u64, i64>,
    ctx: &str,
    stats: &mut Stats,
) -> BTreeMap<u64, i64> {
    let s = open(vfs).unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
    let all: BTreeMap<String, Props> = s
        .list(None, None)
        .unwrap()
        .into_iter()
        .map(|e| (e.id, e.props))
        .collect();
    // Surviving transactions of this round, with their LSN.
    let mut landed: Vec<(u64, &Tx)> = Vec::new();
    for tx in txs {
        let (u, m) = (format!("u-{}", tx.name), format!("m-{}", tx.name));
        let present = all.contains_key(&u);
        assert_eq!(
            present,
            all.contains_key(&m),
            "{ctx}: half a transaction: {} ({:?})",
            tx.name,
            tx.outcome
        );
        if present {
            assert_eq!(all[&u], all[&m], "{ctx}: {}", tx.name);
            assert_eq!(int(&all[&u], "counter"), tx.counter as i64, "{ctx}");
        }
        match tx.outcome {
            Outcome::Acked(lsn) => {
                assert!(present, "{ctx}: acknowledged {} (LSN {lsn}) lost", tx.name);
                let h = s.history(&u).unwrap();
                assert_eq!(h[0].lsn, lsn, "{ctx}: {} landed at another LSN", tx.name);
                stats.acked += 1;
            }
            Outcome::Conflict => {
                assert!(!present, "{ctx}: a conflict wrote {}", tx.name);
                stats.conflicts += 1;
            }
            Outcome::Unknown if present => stats.unknown_landed += 1,
            Outcome::Unknown => stats.unknown_lost += 1,
        }
        if present {
            landed.push((s.history(&u).unwrap()[0].lsn, tx));
        }
    }
    for id in seen {
        assert!(all.contains_key(id), "{ctx}: {id} was seen, then lost");
    }
    stats.observed += seen.len() as u64;
    let mut counters = BTreeMap::new();
    for k in 0..COUNTERS {
        let mine: Vec<&(u64, &Tx)> = landed.iter().filter(|(_, t)| t.counter == k).collect();
        let before = base.get(&k).copied().unwrap_or(0);
        let Some(c) = all.get(&format!("c{k}")) else {
            assert!(mine.is_empty() && before == 0, "{ctx}: counter c{k} lost");
            continue;
        };
        let n = int(c, "n");
        assert_eq!(
            n,
            before + mine.len() as i64,
            "{ctx}: counter c{k}: lost or phantom updates"
        );
        if let Some((_, last)) = mine.iter().max_by_key(|(lsn, _)| *lsn) {
            assert_eq!(
                c.get("last"),
                Some(&Value::from(last.name.clone())),
                "{ctx}: c{k} names the wrong last writer"
            );
        }
        counters.insert(k, n);
    }
    let rep = got::verify(vfs.clone() as Arc<dyn Vfs>, std::path::Path::new(DIR)).unwrap();
    assert!(rep.healthy(), "{ctx}: {:?}", rep.findings);
    counters
}

#[test]
fn group_commit_across_threads_and_processes_survives_power_loss() {
    let seed = seed("group commit under power loss");
    let seeds = if std::env::var_os("GOT_LONG_TESTS").is_some() {
        200
    } else {
        10
    };
    let mut stats = Stats::default();
    for i in 0..seeds {
        let mut rng = seed ^ (i as u64).wrapping_mul(0xA24B_AED4_963E_E407);
        let vfs = SimVfs::new();
        // A device flush's latency, so that committers queue and batch.
        vfs.set_sync_latency(std::time::Duration::from_micros(300));
        drop(open(&vfs).unwrap());
        let mut counters = BTreeMap::new();
        for r in 0..3 {
            let acks = 10 + splitmix(&mut rng) % 80;
            let crash_seed = splitmix(&mut rng);
            let ctx = format!("seed {seed}, iteration {i}, round {r} (crash after {acks} acks)");
            let (txs, seen) = round(&vfs, r, splitmix(&mut rng), acks, crash_seed, &mut stats);
            counters = check(&vfs, &txs, &seen, &counters, &ctx, &mut stats);
            let newest = vfs
                .list_dir(&std::path::Path::new(DIR).join("wal"))
                .unwrap()
                .iter()
                .filter_map(|n| n.strip_suffix(".wal")?.parse::<u64>().ok())
                .max()
                .unwrap_or(0);
            stats.newest_segment = stats.newest_segment.max(newest);
            let s = open(&vfs).unwrap();
            let info = s.checkpoint().unwrap();
            stats.checkpoints += 1;
            stats.compactions += info.compacted as u64;
        }
    }
    eprintln!(
        "{seeds} seeds x 3 power losses: {} acknowledged, {} conflicts, {} unknown landed, {} unknown lost, {} observed; {} transactions in {} frames; {} compactions; newest segment {}",
        stats.acked,
        stats.conflicts,
        stats.unknown_landed,
        stats.unknown_lost,
        stats.observed,
        stats.transactions,
        stats.frames,
        stats.compactions,
        stats.newest_segment
    );
    // The test exercised what it claims to.
    assert!(
        stats.transactions > stats.frames,
        "no batch formed: {} transactions, {} frames",
        stats.transactions,
        stats.frames
    );
    assert!(stats.conflicts > 0, "no conflict happened");
    assert!(stats.newest_segment > 1, "no segment rotated");
    assert!(stats.compactions > 0, "no compaction ran");
    assert!(stats.observed > 0, "the observers saw nothing");
    assert!(
        stats.unknown_landed + stats.unknown_lost > 0,
        "no commit was in flight at a power loss"
    );
}
