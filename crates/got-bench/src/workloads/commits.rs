//! Workloads 1–5: the disk's limit and durable commits from threads, processes
//! and in batches.

use super::{
    commit_rate, interleave, interleave_rounds, median, process_commit_rate, Ctx, Job, Measured,
};
use crate::data::small_task;
use crate::engines::{Db, Engine};
use crate::report::{Cell, CurvePoint, Row, Unit};
use crate::sys;
use anyhow::Result;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Opens a fresh store of each engine for one workload.
fn open_all(ctx: &Ctx, name: &str) -> Result<Vec<Box<dyn Db>>> {
    let dir = ctx.dir(name)?;
    Engine::ALL
        .iter()
        .map(|e| e.open(&e.path(&dir, name)))
        .collect()
}

/// 1: append 200 B + fdatasync, and overwrite 4 KiB in a preallocated file +
/// fdatasync, interleaved.
pub fn limit(ctx: &mut Ctx) -> Result<()> {
    ctx.progress("1: the disk's fdatasync limit");
    let dir = ctx.dir("w1")?;
    let secs = ctx.p.limit_secs;
    let cells = interleave(
        ctx.p.rounds,
        vec![
            Job::Run(Box::new(|| sys::append_fdatasync_rate(&dir, secs))),
            Job::Run(Box::new(|| sys::overwrite_fdatasync_rate(&dir, secs))),
        ],
    );
    let (a, o) = (cells[0].value(), cells[1].value());
    ctx.limit = match (a, o) {
        (Some(a), Some(o)) => Some(a.max(o)),
        (a, o) => a.or(o),
    };
    let na = || Cell::Blank;
    for (id, what, c) in [
        ("1a", "disk: append 200 B + fdatasync", &cells[0]),
        (
            "1b",
            "disk: overwrite 4 KiB (preallocated) + fdatasync",
            &cells[1],
        ),
    ] {
        let mut row = Row::new(id, what, Unit::PerSec("syncs"), c.clone(), na(), na());
        if let Cell::Value(v) = c {
            row = row.note(format!("{:.0} µs per sync", 1e6 / v));
        }
        ctx.rows.push(row);
    }
    Ok(())
}

/// Flags a row whose durable rate exceeds 1.1 × the disk's fdatasync rate.
/// Each round's rate is divided by the same round's ceiling (the faster of the
/// disk's two loops, run right next to it), and the median of those ratios is
/// what is checked: the disk's rate drifts on a shared machine.
fn check_against_limit(mut row: Row, engines: &[Measured], ceiling: &[f64]) -> Row {
    if ceiling.is_empty() {
        return row.note("the fdatasync loops failed: nothing to check against");
    }
    let mut over = Vec::new();
    let mut ratios = Vec::new();
    for (name, m) in ["got", "sqlite", "redb"].iter().zip(engines) {
        if m.rounds.len() != ceiling.len() {
            continue;
        }
        let mut r: Vec<f64> = m.rounds.iter().zip(ceiling).map(|(v, c)| v / c).collect();
        let r = median(&mut r);
        ratios.push(format!("{name} {r:.2}×"));
        if r > 1.1 {
            over.push(format!("{name} {r:.2}× the disk's rate"));
        }
    }
    if over.is_empty() {
        row = row.note("no sync skipped: every engine within 1.1× the disk's rate");
    } else {
        row.flagged = true;
        row = row.note(format!("FLAGGED: {}", over.join(", ")));
    }
    row.note(format!(
        "÷ the disk's fdatasync rate, round by round (median): {}",
        ratios.join(", ")
    ))
}

/// 2 and 3: one small task per durable commit from 1, 2, 4, 8, 16 threads.
pub fn threads(ctx: &mut Ctx, counts: &[usize]) -> Result<()> {
    for &t in counts {
        let name = if t == 1 {
            "w2".to_string()
        } else {
            format!("w3-{t}")
        };
        ctx.progress(&format!(
            "{}: durable commits, one small entity each, {t} thread(s)",
            if t == 1 { 2 } else { 3 }
        ));
        let dbs = open_all(ctx, &name)?;
        let dir = ctx.base.join(&name);
        let next = AtomicU64::new(0);
        let secs = ctx.p.commit_secs;
        let mut jobs: Vec<Job<'_>> = dbs
            .iter()
            .map(|db| {
                let next = &next;
                Job::Run(Box::new(move || {
                    commit_rate(db.as_ref(), t, secs, next, "C", "pending")
                }))
            })
            .collect();
        // With one thread, the disk's own two loops run in the same rounds: the
        // faster is the ceiling the one-thread rates are checked against.
        if t == 1 {
            jobs.push(Job::Run(Box::new(|| {
                sys::append_fdatasync_rate(&dir, secs)
            })));
            jobs.push(Job::Run(Box::new(|| {
                sys::overwrite_fdatasync_rate(&dir, secs)
            })));
        }
        let rounds = if t == 1 {
            ctx.p.check_rounds
        } else {
            ctx.p.rounds
        };
        let measured = interleave_rounds(rounds, jobs);
        let ceiling: Vec<f64> = if t == 1 {
            measured[3]
                .rounds
                .iter()
                .zip(&measured[4].rounds)
                .map(|(a, o)| a.max(*o))
                .collect()
        } else {
            Vec::new()
        };
        if !ceiling.is_empty() {
            ctx.limit = Some(median(&mut ceiling.clone()));
        }
        let c: Vec<Cell> = measured.iter().map(|m| m.cell.clone()).collect();
        ctx.curve.push(CurvePoint {
            threads: t,
            got: c[0].value(),
            sqlite: c[1].value(),
            redb: c[2].value(),
        });
        let (id, what) = if t == 1 {
            (
                "2".to_string(),
                "durable commits, 1 small entity, 1 thread".to_string(),
            )
        } else {
            (format!("3/{t}"), format!("durable commits, {t} threads"))
        };
        let row = Row::new(
            &id,
            &what,
            Unit::PerSec("commits"),
            c[0].clone(),
            c[1].clone(),
            c[2].clone(),
        );
        let row = if t == 1 {
            let (a, o) = (c[3].value(), c[4].value());
            let f = |v: Option<f64>| v.map_or("failed".into(), |v| format!("{v:.0}/s"));
            let row = match (c[0].value(), c[1].value(), c[2].value(), ctx.limit) {
                (Some(g), Some(s), Some(r), Some(l)) => row.target(
                    "≥ 0.9× disk, ≥ 1.05× SQLite, ≥ 1.5× redb",
                    g >= 0.9 * l && g >= 1.05 * s && g >= 1.5 * r,
                ),
                _ => row,
            };
            check_against_limit(row, &measured[..3], &ceiling).note(format!(
                "ceiling: the faster of the disk's two loops of row 1, run in these same {rounds} \
                 rounds (medians: append {}, overwrite {})",
                f(a),
                f(o)
            ))
        } else {
            let one = ctx.curve.first().filter(|p| p.threads == 1);
            let row = match (t, one.and_then(|p| p.got), c[0].value(), c[1].value()) {
                (8, Some(g1), Some(g), Some(s)) => row.target(
                    "≥ 4× got's 1 thread, ≥ 4× SQLite's 8",
                    g >= 4.0 * g1 && g >= 4.0 * s,
                ),
                _ => row,
            };
            match (ctx.limit, row.got.value()) {
                (Some(l), Some(g)) => {
                    row.note(format!("got at {:.2}× the disk's fdatasync rate", g / l))
                }
                _ => row,
            }
        };
        ctx.rows.push(row);
    }
    Ok(())
}

/// 4: the same from several processes at once.
pub fn processes(ctx: &mut Ctx) -> Result<()> {
    let procs = ctx.p.procs;
    ctx.progress(&format!("4: durable commits from {procs} processes"));
    let dir = ctx.dir("w4")?;
    let got_path = Engine::Got.path(&dir, "w4");
    let sqlite_path = Engine::Sqlite.path(&dir, "w4");
    // Create both stores before the children race to open them.
    drop(Engine::Got.open(&got_path)?);
    drop(Engine::Sqlite.open(&sqlite_path)?);
    let secs = ctx.p.commit_secs;
    let exe = ctx.exe.clone();
    let mut round = 0;
    let mut round2 = 0;
    let c = interleave(
        ctx.p.rounds,
        vec![
            Job::Run(Box::new(|| {
                round += 1;
                process_commit_rate(
                    &exe,
                    Engine::Got,
                    &got_path,
                    procs,
                    secs,
                    &format!("r{round}"),
                )
            })),
            Job::Run(Box::new(|| {
                round2 += 1;
                process_commit_rate(
                    &exe,
                    Engine::Sqlite,
                    &sqlite_path,
                    procs,
                    secs,
                    &format!("r{round2}"),
                )
            })),
            Job::Na("single-process database: a second process cannot open it".into()),
        ],
    );
    let mut row = Row::new(
        "4",
        &format!("durable commits, {procs} processes (total)"),
        Unit::PerSec("commits"),
        c[0].clone(),
        c[1].clone(),
        c[2].clone(),
    );
    let one = ctx
        .curve
        .first()
        .filter(|p| p.threads == 1)
        .and_then(|p| p.got);
    if let (Some(g), Some(g1)) = (c[0].value(), one) {
        row = row
            .target("≥ 0.8× got's 1 thread", g >= 0.8 * g1)
            .note(format!("{:.2}× got's 1-thread rate of row 2", g / g1));
    }
    ctx.rows.push(row);
    Ok(())
}

/// 5: batches of 1,000 small entities per durable commit.
pub fn batches(ctx: &mut Ctx) -> Result<()> {
    let size = ctx.p.batch;
    ctx.progress(&format!("5: batches of {size} entities per commit"));
    let dbs = open_all(ctx, "w5")?;
    let secs = ctx.p.commit_secs;
    let next = AtomicU64::new(0);
    let jobs = dbs
        .iter()
        .map(|db| {
            let next = &next;
            Job::Run(Box::new(move || -> Result<f64> {
                let mut w = db.writer()?;
                let mut n = 0usize;
                let mut spent = 0.0;
                while n == 0 || spent < secs {
                    let batch: Vec<_> = (0..size)
                        .map(|_| {
                            let id = next.fetch_add(1, Ordering::Relaxed);
                            small_task(format!("B-{id:010}"), "pending")
                        })
                        .collect();
                    let t = Instant::now();
                    w.commit_batch(&batch)?;
                    spent += t.elapsed().as_secs_f64();
                    n += size;
                }
                Ok(n as f64 / spent)
            }))
        })
        .collect();
    let c = interleave(ctx.p.rounds, jobs);
    let mut row = Row::new(
        "5",
        &format!("batches of {size} entities per commit"),
        Unit::PerSec("entities"),
        c[0].clone(),
        c[1].clone(),
        c[2].clone(),
    );
    if let (Some(g), Some(s), Some(r)) = (c[0].value(), c[1].value(), c[2].value()) {
        row = row.target("≥ 1.0× the faster peer", g >= s.max(r));
    }
    ctx.rows.push(row);
    Ok(())
}
