//! # got-bench — got against SQLite, redb and the disk
//!
//! ```text
//! cargo build --release            # the `got` binary, for the memory rows
//! cargo run --release -p got-bench -- [--quick] [--json FILE] [--plot FILE.svg] [--only N,..] [--dir DIR]
//! ```
//!
//! Prints the machine (cores, CPU, kernel, the data directory's file system), then
//! one row per workload: got's figure, SQLite's, redb's, got ÷ each, the target
//! and whether got met it. Every engine is durable on commit: got with its
//! defaults (`Durability::Immediate`), SQLite with `journal_mode=WAL` and
//! `synchronous=FULL`, redb with `Durability::Immediate`. The engines run in the
//! same process run, interleaved round by round (got, sqlite, redb, got, ...), and
//! each figure is the median of its rounds, so ratios hold on a noisy machine.
//!
//! Workloads (see docs/benchmarks.md for the reading of a run):
//!
//! 1. the disk's limit: append 200 B + `fdatasync`; overwrite 4 KiB + `fdatasync`;
//! 2. durable commits of one small entity, one thread;
//! 3. the same from 2, 4, 8 and 16 threads;
//! 4. the same from 4 processes (the harness re-runs itself: `__child commit`);
//! 5. batches of 1,000 entities per commit;
//! 6. warm point reads by id, 1 and 8 threads, and uniform reads over the store;
//! 7. a fresh process opens the 1M store and reads one entity;
//! 8. "20 pending tasks with label x", the top 20 of the ready queue, and a fresh
//!    process asking for the next ready task at 100k;
//! 9. recovery: open + replay 1M un-checkpointed WAL records;
//! 10. the durable commit rate at 1M ÷ at 1k;
//!
//! plus `scale` (building the 1k/100k/1M task stores, ~3 `depends_on` edges per
//! task, built once and reused) and `mem` (peak RSS of one `got` CLI command on
//! the 1M store, and the harness's own memory after building it).
//!
//! A one-thread durable rate above 1.1 × the disk's fdatasync rate means a sync is
//! being skipped: the row is FLAGGED and the run does not count. `--quick` uses
//! 100k instead of 1M and short rounds (under a minute); a full run takes as long
//! as building the 1M got store plus about five minutes.

mod args;
mod build;
mod child;
mod data;
mod engines;
mod plot;
mod report;
mod sys;
mod workloads;

use anyhow::{Context, Result};

// What got-server runs with (this crate's Cargo.toml says why); docs/benchmarks.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::Parser;
use std::time::Instant;
use workloads::{commits, reads, scale, Ctx, Params};

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    // got as got-server runs it (runs read through maps), except in the
    // children, which time fresh processes as the CLI runs them (no maps).
    if argv.get(1).map(String::as_str) != Some("__child") {
        let _ = got::wal::mapped::enable_with_sigbus_handler();
    }
    let r = match argv.get(1).map(String::as_str) {
        Some("__child") if argv.get(2).map(String::as_str) == Some("build-peers") => {
            scale::child_build_peers(&argv[3..])
        }
        Some("__child") if argv.get(2).map(String::as_str) == Some("rss") => {
            sys::rss_intermediate(&argv[3..])
        }
        Some("__child") => child::main(&argv[2..]),
        _ => run(args::Args::parse()),
    };
    if let Err(e) = r {
        eprintln!("got-bench: {e:#}");
        std::process::exit(1);
    }
}

/// Sort key for the printed order: 1a, 1b, 2, 3/2.., 4, ..., 10, scale, mem.
fn row_order(id: &str) -> (u32, String) {
    let digits: String = id.chars().take_while(char::is_ascii_digit).collect();
    match digits.parse::<u32>() {
        Ok(n) => {
            // "3/16" after "3/8": order by the number after the slash.
            let rest = &id[digits.len()..];
            let key = match rest.strip_prefix('/').and_then(|t| t.parse::<u32>().ok()) {
                Some(t) => format!("{t:04}"),
                None => rest.to_string(),
            };
            (n, key)
        }
        Err(_) if id == "scale" => (100, String::new()),
        Err(_) => (101, id.to_string()),
    }
}

/// `--from-json FILE --plot OUT.svg`: the plot of an earlier run.
fn replot(json: &std::path::Path, out: &std::path::Path) -> Result<()> {
    #[derive(serde::Deserialize)]
    struct Saved {
        fdatasync_limit_per_sec: Option<f64>,
        commits_by_threads: Vec<report::CurvePoint>,
    }
    let saved: Saved = serde_json::from_slice(&std::fs::read(json)?)
        .with_context(|| format!("reading {json:?}"))?;
    plot::commits_by_threads(
        out,
        &saved.commits_by_threads,
        saved.fdatasync_limit_per_sec,
    )?;
    eprintln!("[got-bench] wrote {out:?}");
    Ok(())
}

fn run(args: args::Args) -> Result<()> {
    if let (Some(json), Some(out)) = (&args.from_json, &args.plot) {
        return replot(json, out);
    }
    let started = Instant::now();
    let exe = std::env::current_exe()?;
    // Default: a temporary directory on the project disk (the target directory).
    let target_dir = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.to_path_buf())
        .unwrap_or_else(std::env::temp_dir);
    let (_tmp, base) = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            (None, std::fs::canonicalize(d)?)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("got-bench-")
                .tempdir_in(&target_dir)
                .with_context(|| format!("creating a temporary directory in {target_dir:?}"))?;
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    let machine = sys::Machine::probe(&base);
    eprintln!(
        "[got-bench] {} cores, kernel {}, data in {} on {}",
        machine.cores, machine.kernel, machine.data_dir, machine.filesystem
    );
    let only = (!args.only.is_empty()).then(|| args.only.clone());
    let mut ctx = Ctx {
        p: Params::new(args.quick),
        base,
        exe,
        rows: Vec::new(),
        warnings: Vec::new(),
        limit: None,
        curve: Vec::new(),
        scale: None,
        only,
        run_tag: format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
        ),
        started,
        got_bin: None,
    };
    let mut got_build_seconds = 0.0;
    // The CLI binary for the memory rows, built (if stale) before any measurement.
    if ctx.wants("mem") {
        ctx.progress(
            "building the got binary (cargo build --release --bin got --no-default-features)",
        );
        let t = Instant::now();
        ctx.got_bin = Some(sys::got_binary().map_err(|e| format!("{e:#}")));
        got_build_seconds = t.elapsed().as_secs_f64();
    }
    type Step = fn(&mut Ctx) -> Result<()>;
    let steps: [(&str, Step); 12] = [
        ("1", commits::limit),
        // Before anything checkpoints the scale stores.
        ("7", reads::fresh_get_tail),
        ("2", |c| commits::threads(c, &[1])),
        ("3", |c| {
            let t = c.p.threads.clone();
            commits::threads(c, &t)
        }),
        ("4", commits::processes),
        ("5", commits::batches),
        ("6", reads::point_reads),
        ("7", reads::fresh_get),
        ("8", reads::queries),
        ("mem", scale::memory),
        ("9", scale::recovery),
        // Last: it commits into the scale stores.
        ("10", scale::rate_at_scale),
    ];
    // Building the scale stores first keeps the harness's memory reading clean.
    if ["6", "7", "8", "10", "mem"].iter().any(|n| ctx.wants(n)) {
        scale::ensure(&mut ctx)?;
    }
    for (name, step) in steps {
        if !ctx.wants(name) {
            continue;
        }
        // Start each workload from a quiet disk: no writeback of an earlier
        // workload's (or the build's) dirty pages behind its syncs.
        sys::sync_all();
        if let Err(e) = step(&mut ctx) {
            ctx.warnings.push(format!("workload {name} failed: {e:#}"));
            eprintln!("[got-bench] workload {name} failed: {e:#}");
        }
    }
    ctx.rows.sort_by_key(|r| row_order(&r.id));
    let counts = !ctx.rows.iter().any(|r| r.flagged);
    let report = report::Report {
        machine,
        quick: args.quick,
        fdatasync_limit_per_sec: ctx.limit,
        rows: std::mem::take(&mut ctx.rows),
        counts,
        warnings: std::mem::take(&mut ctx.warnings),
        wall_seconds: started.elapsed().as_secs_f64(),
        got_build_seconds,
        commits_by_threads: ctx.curve.clone(),
    };
    report.print();
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {path:?}"))?;
        eprintln!("[got-bench] wrote {path:?}");
    }
    if let Some(path) = &args.plot {
        match plot::commits_by_threads(path, &report.commits_by_threads, ctx.limit) {
            Ok(()) => eprintln!("[got-bench] wrote {path:?}"),
            Err(e) => eprintln!("[got-bench] no plot: {e:#}"),
        }
    }
    // Close the scale handles before the temporary directory goes.
    drop(ctx);
    Ok(())
}
