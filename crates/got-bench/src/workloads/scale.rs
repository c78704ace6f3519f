//! The scale stores (built once, reused by workloads 6, 7, 8, 10 and the memory
//! rows), workload 9 (recovery), workload 10 (commit rate at scale) and the
//! memory rows.

use super::{commit_rate, fresh_process, interleave, median, Ctx, Job, Params};
use crate::build::{build, BUILD_BATCH};
use crate::data::{small_task, task_id};
use crate::engines::got_db::GotDb;
use crate::engines::redb_db::RedbDb;
use crate::engines::sqlite_db::{self, SqliteDb};
use crate::engines::{Db, Engine};
use crate::report::{Cell, Row, Unit};
use crate::sys;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

/// The stores of the scale data, and the harness's own handle on got's big one.
pub struct ScaleStores {
    pub n: usize,
    pub mid_n: usize,
    pub got: PathBuf,
    pub sqlite: PathBuf,
    pub redb: PathBuf,
    pub got_mid: PathBuf,
    pub sqlite_mid: PathBuf,
    /// A long-lived read-write handle on the big got store (default options).
    pub got_db: GotDb,
    /// Whether [`checkpoint`] ran.
    pub checkpointed: bool,
}

/// Checkpoints the big and middle got stores once, so that the read workloads
/// see them as SQLite's are after the build (its last connection's close
/// checkpointed it). Workload 7b measures the state the build left first.
pub fn checkpoint(ctx: &mut Ctx) -> Result<()> {
    ensure(ctx)?;
    let s = ctx.scale.as_mut().context("scale stores")?;
    if s.checkpointed {
        return Ok(());
    }
    s.got_db.store.checkpoint()?;
    if s.got_mid != s.got {
        GotDb::create(&s.got_mid)?.store.checkpoint()?;
    }
    s.checkpointed = true;
    Ok(())
}

/// What a finished build leaves next to the stores, so `--dir` can reuse them.
#[derive(Serialize, Deserialize)]
struct Built {
    n: usize,
    mid_n: usize,
    got_secs: f64,
    sqlite_secs: f64,
    redb_secs: f64,
    /// The harness's VmHWM and RssAnon (KiB) right after building got's store.
    got_vmhwm_kib: u64,
    got_rss_anon_kib: u64,
}

/// Bytes of a file, or of every file under a directory.
pub fn disk_bytes(p: &Path) -> u64 {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| disk_bytes(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// `__child build-peers DIR N MID_N`: builds the SQLite (with its middle copy,
/// then `ANALYZE`) and redb scale stores; prints "sqlite SECS" and "redb SECS".
pub fn child_build_peers(args: &[String]) -> Result<()> {
    let dir = PathBuf::from(args.first().context("dir")?);
    let n: usize = args.get(1).context("n")?.parse()?;
    let mid_n: usize = args.get(2).context("mid")?.parse()?;
    let names = names(n, mid_n);
    let mid = (mid_n < n).then(|| (mid_n, Engine::Sqlite.path(&dir, &names.1)));
    let (secs, db) = build(Engine::Sqlite, &Engine::Sqlite.path(&dir, &names.0), n, mid)?;
    drop(db);
    sqlite_db::analyze(&Engine::Sqlite.path(&dir, &names.0))?;
    if mid_n < n {
        sqlite_db::analyze(&Engine::Sqlite.path(&dir, &names.1))?;
    }
    println!("sqlite {secs}");
    let (secs, db) = build(Engine::Redb, &Engine::Redb.path(&dir, &names.0), n, None)?;
    drop(db);
    println!("redb {secs}");
    Ok(())
}

fn names(n: usize, mid_n: usize) -> (String, String) {
    (
        format!("scale-{}", Params::size_name(n)),
        format!("scale-{}", Params::size_name(mid_n)),
    )
}

/// Builds the scale stores unless this run has them (or `--dir` holds a finished
/// build of the same size): got in this process, SQLite and redb meanwhile in a
/// child process.
pub fn ensure(ctx: &mut Ctx) -> Result<()> {
    if ctx.scale.is_some() {
        return Ok(());
    }
    let (n, mid_n) = (ctx.p.big, ctx.p.mid);
    let dir = ctx.base.join("scale");
    std::fs::create_dir_all(&dir)?;
    let (big, mid) = names(n, mid_n);
    let marker = dir.join(format!("{big}.built.json"));
    let got = Engine::Got.path(&dir, &big);
    let got_mid = if mid_n < n {
        Engine::Got.path(&dir, &mid)
    } else {
        got.clone()
    };
    let sqlite = Engine::Sqlite.path(&dir, &big);
    let sqlite_mid = if mid_n < n {
        Engine::Sqlite.path(&dir, &mid)
    } else {
        sqlite.clone()
    };
    let redb = Engine::Redb.path(&dir, &big);
    let reused = marker.exists();
    let built = if reused {
        ctx.progress(&format!("scale: reusing the {big} stores in {dir:?}"));
        serde_json::from_slice::<Built>(&std::fs::read(&marker)?)?
    } else {
        for p in [&got, &got_mid, &sqlite, &sqlite_mid, &redb] {
            if p.is_dir() {
                std::fs::remove_dir_all(p)?;
            } else if p.exists() {
                std::fs::remove_file(p)?;
            }
        }
        ctx.progress(&format!(
            "scale: building {n} tasks (~3 edges each, {BUILD_BATCH} per commit) into got here, \
             and into SQLite then redb in a child process"
        ));
        let peers = Command::new(&ctx.exe)
            .args(["__child", "build-peers"])
            .arg(&dir)
            .arg(n.to_string())
            .arg(mid_n.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()?;
        let mid_arg = (mid_n < n).then(|| (mid_n, got_mid.clone()));
        let (got_secs, db) = build(Engine::Got, &got, n, mid_arg)?;
        // The long-lived handle's memory, before anything else runs here.
        let (hwm, anon) = sys::own_memory_kib();
        drop(db);
        ctx.progress(&format!(
            "scale: got built in {got_secs:.1} s; waiting for SQLite and redb"
        ));
        let out = peers.wait_with_output()?;
        anyhow::ensure!(
            out.status.success(),
            "building the SQLite/redb stores failed"
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let secs_of = |name: &str| -> Result<f64> {
            text.lines()
                .find_map(|l| l.strip_prefix(name).map(|s| s.trim().parse::<f64>()))
                .with_context(|| format!("no build time for {name}"))?
                .map_err(Into::into)
        };
        let b = Built {
            n,
            mid_n,
            got_secs,
            sqlite_secs: secs_of("sqlite ")?,
            redb_secs: secs_of("redb ")?,
            got_vmhwm_kib: hwm,
            got_rss_anon_kib: anon,
        };
        std::fs::write(&marker, serde_json::to_vec(&b)?)?;
        b
    };
    let got_db = GotDb::create(&got)?;
    let rate = |s: f64| Cell::Value(n as f64 / s);
    let mut row = Row::new(
        "scale",
        &format!(
            "build {} tasks, ~3 edges each, {BUILD_BATCH}/commit",
            Params::size_name(n)
        ),
        Unit::PerSec("tasks"),
        rate(built.got_secs),
        rate(built.sqlite_secs),
        rate(built.redb_secs),
    )
    .note(format!(
        "on disk: got {:.0} MiB, sqlite {:.0} MiB, redb {:.0} MiB; got built here while a child \
         process built SQLite (+ANALYZE, untimed) then redb, on the same cores",
        mib(disk_bytes(got.parent().unwrap_or(&got))),
        mib(disk_bytes(&sqlite)),
        mib(disk_bytes(&redb)),
    ));
    if reused {
        row = row.note("reused: built by an earlier run with the same --dir");
    }
    ctx.rows.push(row);
    let mut row = Row::new(
        "mem/c",
        &format!(
            "harness after building {}: VmHWM (RssAnon in note)",
            Params::size_name(n)
        ),
        Unit::MiB,
        Cell::Value(built.got_vmhwm_kib as f64 / 1024.0),
        Cell::Blank,
        Cell::Blank,
    )
    .note(format!(
        "RssAnon {:.1} MiB with the build's got handle still open (SQLite and redb were \
         built in a child process)",
        built.got_rss_anon_kib as f64 / 1024.0
    ));
    if reused {
        row = row.note("measured by the earlier run that built the stores");
    }
    ctx.rows.push(row);
    ctx.scale = Some(ScaleStores {
        n,
        mid_n,
        got,
        sqlite,
        redb,
        got_mid,
        sqlite_mid,
        got_db,
        checkpointed: false,
    });
    Ok(())
}

/// 9: recovery of un-checkpointed WAL records at open.
pub fn recovery(ctx: &mut Ctx) -> Result<()> {
    let n = ctx.p.recovery;
    ctx.progress(&format!(
        "9: writing {n} records with checkpoints off, then timing reopen"
    ));
    let dir = ctx.dir("w9")?;
    let got_path = Engine::Got.path(&dir, "w9");
    let sqlite_path = Engine::Sqlite.path(&dir, "w9");
    const TXN: usize = 10_000;
    let batches = |prefix: &'static str| {
        (0..n.div_ceil(TXN)).map(move |b| {
            (b * TXN..((b + 1) * TXN).min(n))
                .map(|i| small_task(format!("{prefix}-{i:09}"), "pending"))
                .collect::<Vec<_>>()
        })
    };
    {
        let db = GotDb::open(
            &got_path,
            got::Options {
                create_if_missing: true,
                auto_checkpoint: false,
                checkpoint_wal_bytes: u64::MAX,
                ..got::Options::default()
            },
        )?;
        let mut w = db.writer()?;
        for b in batches("R") {
            w.commit_batch(&b)?;
        }
    }
    sqlite_db::build_unckpt(&sqlite_path, &mut batches("R"))?;
    ctx.progress("9: written; timing reopens");
    sys::sync_all();
    let wal_got = disk_bytes(&got_path.join("wal"));
    let sqlite_wal = PathBuf::from(format!("{}-wal", sqlite_path.display()));
    let wal_sqlite = disk_bytes(&sqlite_wal);
    let probe = format!("R-{:09}", n / 2);
    let mut tail = 0u64;
    // Index entries are derived when first read, not at open: timed apart.
    let mut derive_secs = Vec::new();
    let c = interleave(
        ctx.p.rounds,
        vec![
            Job::Run(Box::new(|| {
                let t = Instant::now();
                let db = GotDb::open(&got_path, got::Options::default())?;
                anyhow::ensure!(
                    db.store.get(&probe)?.is_some(),
                    "record missing after recovery"
                );
                let secs = t.elapsed().as_secs_f64();
                tail = db.store.disk_stats()?.wal_tail_bytes;
                let t = Instant::now();
                let top = db.store.transaction(|tx| got::ready::ready(tx, Some(1)))?;
                anyhow::ensure!(top.len() == 1, "no ready task after recovery");
                derive_secs.push(t.elapsed().as_secs_f64());
                Ok(n as f64 / secs)
            })),
            Job::Run(Box::new(|| {
                let t = Instant::now();
                let (found, conn) = sqlite_db::reopen_unckpt(&sqlite_path, &probe)?;
                let secs = t.elapsed().as_secs_f64();
                drop(conn);
                anyhow::ensure!(found, "record missing after reopen");
                Ok(n as f64 / secs)
            })),
            Job::Na("no WAL to replay: commits write its B-tree copy-on-write".into()),
        ],
    );
    let mut row = Row::new(
        "9",
        &format!(
            "recovery: open + replay {} un-checkpointed records",
            Params::size_name(n)
        ),
        Unit::PerSec("records"),
        c[0].clone(),
        c[1].clone(),
        c[2].clone(),
    );
    if let Some(g) = c[0].value() {
        row = row.target("≥ 1M records/s", g >= 1e6);
    }
    let secs = |c: &Cell| {
        c.value()
            .map_or("—".into(), |v| format!("{:.0} ms", n as f64 / v * 1e3))
    };
    derive_secs.sort_by(f64::total_cmp);
    let derive = derive_secs
        .get(derive_secs.len() / 2)
        .map_or("—".into(), |s| {
            format!("{:.0} ms ({:.0} records/s)", s * 1e3, n as f64 / s)
        });
    row = row.note(format!(
        "got: WAL tail {:.0} MiB ({:.0} MiB of segments) in {}; sqlite: WAL {:.0} MiB in {}; \
         {n} small tasks in transactions of {TXN}, read-write open + one get; \
         got then derives the tail's index entries at its first index read (the ready \
         queue's top): {derive}",
        mib(tail),
        mib(wal_got),
        secs(&c[0]),
        mib(wal_sqlite),
        secs(&c[1]),
    ));
    if wal_sqlite < 1 << 20 {
        ctx.warnings.push(
            "9: SQLite's WAL is under 1 MiB: it was checkpointed, its figure is not a recovery"
                .into(),
        );
    }
    ctx.rows.push(row);
    Ok(())
}

/// 10: durable 1-thread commit rate on the big store ÷ on a 1k store, each
/// engine with its default maintenance on.
pub fn rate_at_scale(ctx: &mut Ctx) -> Result<()> {
    checkpoint(ctx)?;
    let small_n = ctx.p.small;
    ctx.progress(&format!(
        "10: durable commit rate at {} vs at {}",
        Params::size_name(ctx.p.big),
        Params::size_name(small_n)
    ));
    let dir = ctx.dir("w10")?;
    let mut small: Vec<Box<dyn Db>> = Vec::new();
    for e in Engine::ALL {
        let (_, db) = build(e, &e.path(&dir, "small"), small_n, None)?;
        small.push(db);
    }
    let s = ctx.scale.as_ref().context("scale stores")?;
    let big_sqlite = SqliteDb::create(&s.sqlite)?;
    let big_redb = RedbDb::create(&s.redb)?;
    let big: [&dyn Db; 3] = [&s.got_db, &big_sqlite, &big_redb];
    let ds0 = s.got_db.store.disk_stats()?;
    let gen0 = ds0.generation;
    let secs = ctx.p.w10_secs;
    let next = AtomicU64::new(0);
    let prefix = format!("W{}", ctx.run_tag);
    let mut jobs = Vec::new();
    for i in 0..3 {
        for db in [small[i].as_ref(), big[i]] {
            let (next, prefix) = (&next, &prefix);
            // Completed tasks: the ready queue and the filter answers stay as built.
            jobs.push(Job::Run(Box::new(move || {
                commit_rate(db, 1, secs, next, prefix, "completed")
            })));
        }
    }
    let c = interleave(ctx.p.rounds, jobs);
    let ds1 = s.got_db.store.disk_stats()?;
    let checkpoints = ds1.generation - gen0;
    let commits = ds1.applied_lsn - ds0.applied_lsn;
    let ratio = |a: &Cell, b: &Cell| match (a.value(), b.value()) {
        (Some(s), Some(b)) => Cell::Value(b / s),
        _ => Cell::na("a rate failed"),
    };
    let big_name = Params::size_name(ctx.p.big);
    let mut row = Row::new(
        "10",
        &format!(
            "commit rate at {big_name} ÷ at {}",
            Params::size_name(small_n)
        ),
        Unit::Ratio,
        ratio(&c[0], &c[1]),
        ratio(&c[2], &c[3]),
        ratio(&c[4], &c[5]),
    );
    if let Some(g) = row.got.value() {
        row = row.target("≥ 0.9", g >= 0.9);
    }
    let f = |c: &Cell| c.value().map_or("—".into(), |v| format!("{v:.0}/s"));
    row = row.note(format!(
        "commits/s at {} → {big_name}: got {} → {}, sqlite {} → {}, redb {} → {}; \
         got's {big_name} store took {commits} commits and {checkpoints} automatic \
         checkpoint(s) during its rounds",
        Params::size_name(small_n),
        f(&c[0]),
        f(&c[1]),
        f(&c[2]),
        f(&c[3]),
        f(&c[4]),
        f(&c[5]),
    ));
    if ctx.p.quick {
        row = row.note("--quick: the target is for 1M; measured at 100k");
    }
    ctx.rows.push(row);
    Ok(())
}

/// The memory rows: the `got` CLI's peak resident memory on the big store,
/// reaped with wait4; SQLite and redb as harness child processes doing the same.
pub fn memory(ctx: &mut Ctx) -> Result<()> {
    checkpoint(ctx)?;
    ctx.progress("mem: peak resident memory of one CLI command on the big store");
    let s = ctx.scale.as_ref().context("scale stores")?;
    let id = task_id(s.n / 2);
    let rounds = ctx.p.fresh_rounds;
    let cli = |args: &[&str]| -> Result<f64> {
        let bin = match &ctx.got_bin {
            Some(Ok(b)) => b,
            Some(Err(e)) => anyhow::bail!("{e}"),
            None => anyhow::bail!("the got binary was not looked for"),
        };
        let mut v = Vec::new();
        let mut full: Vec<std::ffi::OsString> = vec!["--store".into(), s.got.clone().into()];
        full.extend(args.iter().map(Into::into));
        for _ in 0..rounds {
            v.push(sys::run_measured(&ctx.exe, bin, &full)?.max_rss_kib as f64 / 1024.0);
        }
        Ok(median(&mut v))
    };
    let child = |op: &str, e: Engine, path: &Path, arg: Option<&str>| -> Result<f64> {
        let mut v = Vec::new();
        for _ in 0..rounds {
            v.push(fresh_process(&ctx.exe, op, e, path, arg)?.1 as f64 / 1024.0);
        }
        Ok(median(&mut v))
    };
    let cell = |r: Result<f64>| match r {
        Ok(v) => Cell::Value(v),
        Err(e) => Cell::na(format!("failed: {e:#}")),
    };
    let size = Params::size_name(s.n);
    let get = cell(cli(&["--json", "entity", "get", &id]));
    let mut row = Row::new(
        "mem/a",
        &format!("`got entity get ID --json` at {size}: peak RSS"),
        Unit::MiB,
        get,
        cell(child("open-get", Engine::Sqlite, &s.sqlite, Some(&id))),
        cell(child("open-get", Engine::Redb, &s.redb, Some(&id))),
    );
    if let Some(v) = row.got.value() {
        row = row.target("≤ 32 MiB", v <= 32.0);
    }
    row = row.note(
        "ru_maxrss of the process (wait4), median of rounds; got reads with pread, so the \
         pages it touches sit in the page cache, not in its RSS; sqlite/redb: this harness \
         re-run as a child doing open + the same read",
    );
    ctx.rows.push(row);
    let ready = cell(cli(&["query", "ready", "--limit", "1"]));
    let mut row = Row::new(
        "mem/b",
        &format!("`got query ready --limit 1` at {size}: peak RSS"),
        Unit::MiB,
        ready,
        cell(child("open-ready", Engine::Sqlite, &s.sqlite, None)),
        Cell::na("no secondary indexes"),
    );
    if let Some(v) = row.got.value() {
        row = row.target("≤ 32 MiB", v <= 32.0);
    }
    ctx.rows.push(row);
    Ok(())
}
