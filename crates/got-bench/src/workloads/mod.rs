//! The workloads, and the machinery they share: interleaved rounds, timed
//! commit and read loops, child processes.

pub mod commits;
pub mod reads;
pub mod scale;

use crate::data::{small_task, task_id, Rng};
use crate::engines::{Db, Engine};
use crate::report::{Cell, CurvePoint, Row};
use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Sizes and durations of one run.
#[derive(Clone, Debug)]
pub struct Params {
    pub quick: bool,
    pub rounds: usize,
    /// Rounds of workload 2, whose rates are checked against the disk's.
    pub check_rounds: usize,
    /// Seconds per engine per round of each timed loop.
    pub limit_secs: f64,
    pub commit_secs: f64,
    pub read_secs: f64,
    pub query_secs: f64,
    pub w10_secs: f64,
    /// Rounds of the fresh-process measurements.
    pub fresh_rounds: usize,
    /// The scale stores: big (1M; 100k quick), middle (100k), small (1k).
    pub big: usize,
    pub mid: usize,
    pub small: usize,
    /// Un-checkpointed WAL records to recover.
    pub recovery: usize,
    pub threads: Vec<usize>,
    pub procs: usize,
    /// Entities per transaction in workload 5.
    pub batch: usize,
}

impl Params {
    pub fn new(quick: bool) -> Params {
        if quick {
            Params {
                quick,
                rounds: 3,
                check_rounds: 5,
                limit_secs: 0.15,
                commit_secs: 0.1,
                read_secs: 0.05,
                query_secs: 0.1,
                w10_secs: 0.2,
                fresh_rounds: 3,
                big: 100_000,
                mid: 100_000,
                small: 1_000,
                recovery: 100_000,
                threads: vec![2, 4, 8, 16],
                procs: 4,
                batch: 1000,
            }
        } else {
            Params {
                quick,
                rounds: 3,
                check_rounds: 5,
                limit_secs: 1.0,
                commit_secs: 1.0,
                read_secs: 0.5,
                query_secs: 0.3,
                w10_secs: 4.0,
                fresh_rounds: 5,
                big: 1_000_000,
                mid: 100_000,
                small: 1_000,
                recovery: 1_000_000,
                threads: vec![2, 4, 8, 16],
                procs: 4,
                batch: 1000,
            }
        }
    }

    /// "1M", "100k", "1k".
    pub fn size_name(n: usize) -> String {
        if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
            format!("{}M", n / 1_000_000)
        } else if n >= 1000 && n.is_multiple_of(1000) {
            format!("{}k", n / 1000)
        } else {
            n.to_string()
        }
    }
}

/// Everything a run carries from workload to workload.
pub struct Ctx {
    pub p: Params,
    /// Where the stores live.
    pub base: PathBuf,
    /// This executable, re-run for child processes.
    pub exe: PathBuf,
    pub rows: Vec<Row>,
    pub warnings: Vec<String>,
    /// The disk's fdatasync rate: the overwrite loop run alongside workload 2
    /// (else the faster loop of workload 1).
    pub limit: Option<f64>,
    pub curve: Vec<CurvePoint>,
    pub scale: Option<scale::ScaleStores>,
    pub only: Option<Vec<String>>,
    /// Unique to this run: ids written into reused stores never collide.
    pub run_tag: String,
    pub started: Instant,
    /// The `got` binary for the memory rows (built before any measurement).
    pub got_bin: Option<Result<PathBuf, String>>,
}

impl Ctx {
    pub fn wants(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|n| n == name))
    }

    pub fn progress(&self, msg: &str) {
        eprintln!(
            "[got-bench {:6.1}s] {msg}",
            self.started.elapsed().as_secs_f64()
        );
    }

    /// A fresh directory for one workload's stores.
    pub fn dir(&self, name: &str) -> Result<PathBuf> {
        let d = self.base.join(name);
        if d.exists() {
            std::fs::remove_dir_all(&d)?;
        }
        std::fs::create_dir_all(&d)?;
        Ok(d)
    }
}

/// One engine's part in an interleaved measurement.
pub enum Job<'a> {
    Run(Box<dyn FnMut() -> Result<f64> + 'a>),
    Na(String),
}

/// Runs each job once per round, in order (got, sqlite, redb, got, ...), for
/// `rounds` rounds; gives the median of each job's results. A job that fails is
/// n/a with its error from then on.
pub fn interleave(rounds: usize, jobs: Vec<Job<'_>>) -> Vec<Cell> {
    interleave_rounds(rounds, jobs)
        .into_iter()
        .map(|m| m.cell)
        .collect()
}

/// One job's median and its result in each round.
pub struct Measured {
    pub cell: Cell,
    /// Round by round (empty when the job is n/a).
    pub rounds: Vec<f64>,
}

/// [`interleave`], keeping each round's result, so that jobs can be compared
/// round by round (results of one round are close in time).
pub fn interleave_rounds(rounds: usize, mut jobs: Vec<Job<'_>>) -> Vec<Measured> {
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); jobs.len()];
    let mut failed: Vec<Option<String>> = vec![None; jobs.len()];
    for _ in 0..rounds {
        for (i, j) in jobs.iter_mut().enumerate() {
            if failed[i].is_some() {
                continue;
            }
            if let Job::Run(f) = j {
                match f() {
                    Ok(v) => results[i].push(v),
                    Err(e) => failed[i] = Some(format!("failed: {e:#}")),
                }
            }
        }
    }
    jobs.iter()
        .zip(results)
        .enumerate()
        .map(|(i, (j, r))| match (j, &failed[i]) {
            (Job::Na(reason), _) => Measured {
                cell: Cell::na(reason.clone()),
                rounds: Vec::new(),
            },
            (_, Some(e)) => Measured {
                cell: Cell::na(e.clone()),
                rounds: Vec::new(),
            },
            _ => Measured {
                cell: Cell::Value(median(&mut r.clone())),
                rounds: r,
            },
        })
        .collect()
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs one `work` per worker on its own thread, all started together, each
/// repeating until `secs` have passed (at least once); `work(worker)` returns
/// how many operations one call did. Operations per second, over all workers.
fn timed_threads<W: Send>(
    workers: Vec<W>,
    secs: f64,
    work: impl Fn(&mut W) -> Result<u64> + Sync,
) -> Result<f64> {
    let barrier = Barrier::new(workers.len() + 1);
    let total = AtomicU64::new(0);
    std::thread::scope(|s| {
        let handles: Vec<_> = workers
            .into_iter()
            .map(|mut w| {
                let (barrier, total, work) = (&barrier, &total, &work);
                s.spawn(move || -> Result<()> {
                    barrier.wait();
                    let deadline = Instant::now() + Duration::from_secs_f64(secs);
                    let mut n = 0;
                    while n == 0 || Instant::now() < deadline {
                        n += work(&mut w)?;
                    }
                    total.fetch_add(n, Ordering::Relaxed);
                    Ok(())
                })
            })
            .collect();
        barrier.wait();
        let t = Instant::now();
        for h in handles {
            h.join().expect("benchmark thread panicked")?;
        }
        Ok(total.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64())
    })
}

/// Commits one small task per transaction from `threads` threads for `secs`;
/// commits per second. Ids come from `next`, so rounds never collide.
pub fn commit_rate(
    db: &dyn Db,
    threads: usize,
    secs: f64,
    next: &AtomicU64,
    prefix: &str,
    status: &'static str,
) -> Result<f64> {
    let writers = (0..threads)
        .map(|_| db.writer())
        .collect::<Result<Vec<_>>>()?;
    timed_threads(writers, secs, |w| {
        let id = next.fetch_add(1, Ordering::Relaxed);
        w.commit_one(&small_task(format!("{prefix}-{id:010}"), status))?;
        Ok(1)
    })
}

/// Which ids a read loop asks for.
#[derive(Clone, Debug)]
pub enum Ids {
    /// Cycling at random through these (a hot set).
    Set(Vec<String>),
    /// Uniformly among scale tasks 0..n.
    Uniform(usize),
}

impl Ids {
    fn pick(&self, rng: &mut Rng) -> String {
        match self {
            Ids::Set(v) => v[rng.below(v.len())].clone(),
            Ids::Uniform(n) => task_id(rng.below(*n)),
        }
    }
}

/// Point reads by id from `threads` threads for `secs`; reads per second.
pub fn read_rate(db: &dyn Db, threads: usize, secs: f64, ids: &Ids) -> Result<f64> {
    let readers = (0..threads)
        .map(|i| {
            Ok((
                db.reader()?,
                Rng::new(0x9E37_79B9_7F4A_7C15 ^ (i as u64 * 7919)),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    timed_threads(readers, secs, |(r, rng)| {
        // 64 reads between clock checks.
        for _ in 0..64 {
            let id = ids.pick(rng);
            anyhow::ensure!(r.get(&id)?, "read of {id} found nothing");
        }
        Ok(64)
    })
}

/// Runs `f` repeatedly for `secs` (at least 3 times); the mean in microseconds.
pub fn mean_micros(secs: f64, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let t = Instant::now();
    let mut n = 0u64;
    while n < 3 || t.elapsed().as_secs_f64() < secs {
        f()?;
        n += 1;
    }
    Ok(t.elapsed().as_secs_f64() * 1e6 / n as f64)
}

/// `__child commit` in `procs` processes at once, started together after each
/// opened its store; total commits per second across them.
pub fn process_commit_rate(
    exe: &Path,
    engine: Engine,
    path: &Path,
    procs: usize,
    secs: f64,
    tag: &str,
) -> Result<f64> {
    let mut children = Vec::new();
    for i in 0..procs {
        let child = Command::new(exe)
            .args(["__child", "commit", engine.name()])
            .arg(path)
            .arg(secs.to_string())
            .arg(format!("{tag}-{i}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting a child process")?;
        children.push(child);
    }
    let mut outs = Vec::new();
    for c in &mut children {
        let mut out = BufReader::new(c.stdout.take().context("child stdout")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        anyhow::ensure!(line.trim() == "ready", "child said {line:?}");
        outs.push(out);
    }
    let t = Instant::now();
    for c in &mut children {
        c.stdin
            .as_mut()
            .context("child stdin")?
            .write_all(b"go\n")?;
    }
    let mut total = 0u64;
    for out in &mut outs {
        let mut line = String::new();
        out.read_line(&mut line)?;
        let n = line
            .trim()
            .strip_prefix("done ")
            .with_context(|| format!("child said {line:?}"))?;
        total += n.parse::<u64>()?;
    }
    let secs = t.elapsed().as_secs_f64();
    for mut c in children {
        let st = c.wait()?;
        anyhow::ensure!(st.success(), "child failed: {st}");
    }
    Ok(total as f64 / secs)
}

/// `__child open-get` / `open-ready`: microseconds from before the open to after
/// the read, measured inside the child, and the child's peak RSS in KiB.
pub fn fresh_process(
    exe: &Path,
    op: &str,
    engine: Engine,
    path: &Path,
    arg: Option<&str>,
) -> Result<(f64, u64, String)> {
    let mut args: Vec<std::ffi::OsString> = vec![
        "__child".into(),
        op.into(),
        engine.name().into(),
        path.into(),
    ];
    if let Some(a) = arg {
        args.push(a.into());
    }
    let run = crate::sys::run_measured(exe, exe, &args)?;
    let mut it = run.stdout.split_whitespace();
    let ns: f64 = it.next().context("no timing from child")?.parse()?;
    let answer = it.next().unwrap_or("").to_string();
    Ok((ns / 1e3, run.max_rss_kib, answer))
}
