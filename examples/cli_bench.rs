//! Whole-process latency of the commands agents run most, next to the `sqlite3`
//! command-line tool doing the equivalent, on stores of N tasks (issue 4's
//! benchmark). Not a test: numbers for docs/benchmarks.md.
//!
//! `cargo build --release && cargo run --release --example cli_bench -- 100000 [RUNS]`
//! (needs `sqlite3` on the PATH). Each sample is one process: `got task create`
//! (open, one durable commit, exit; automatic checkpoints on, so some cross one)
//! and `got task list --limit 20`; sqlite3 does an INSERT in WAL mode with
//! synchronous=FULL, and a SELECT … ORDER BY id LIMIT 20 on an indexed table.
//! Prints median, p99 and max of each, the mean CPU time (user + system, from
//! `getrusage(RUSAGE_CHILDREN)` around each process), and the times of the
//! creates that ran a checkpoint (the CLI checkpoints every 256 transactions).
//! `got entity put` is timed too, against the same INSERT.
//!
//! N = 0: fresh stores, as a new user meets the tool: every sample gets a new
//! `got init` store and a new sqlite3 database with the table (both untimed),
//! then the timed write, then the timed read.
use got::{Options, Props, Store, Value};
use std::process::Command;
use std::time::{Duration, Instant};

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// User + system CPU time of every child reaped so far.
fn children_cpu() -> Duration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// One process: wall time, and CPU time (the child is reaped by `output`).
#[derive(Clone, Copy, Default)]
struct Sample {
    wall: Duration,
    cpu: Duration,
}

fn time(mut cmd: Command) -> Sample {
    let cpu = children_cpu();
    let t = Instant::now();
    let o = cmd.output().expect("run");
    let wall = t.elapsed();
    assert!(
        o.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&o.stderr)
    );
    Sample {
        wall,
        cpu: children_cpu() - cpu,
    }
}

const SCHEMA: &str = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; \
     CREATE TABLE tasks(id TEXT PRIMARY KEY, title TEXT, status TEXT, priority TEXT, created_at INTEGER); \
     CREATE INDEX tasks_status ON tasks(status);";

fn sqlite(db: &std::path::Path, sql: &str) -> Command {
    let mut c = Command::new("sqlite3");
    c.arg(db).arg(sql);
    c
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let runs: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let exe = std::env::current_exe().unwrap();
    let got_bin = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("got"))
        .expect("target dir");
    assert!(
        got_bin.exists(),
        "build the binary first: cargo build --release ({})",
        got_bin.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    // A third argument keeps the stores in that directory for profiling.
    let base = std::env::args()
        .nth(3)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&base).unwrap();
    let fresh = n == 0;
    let dir = base.join(".got");
    let store = Store::open(
        &dir,
        Options {
            create_if_missing: true,
            ..Options::default()
        },
    )
    .unwrap();
    let statuses = ["pending", "in_progress", "blocked", "completed"];
    let prios = ["critical", "high", "medium", "low"];
    let t = Instant::now();
    for b in 0..n.div_ceil(1000) {
        store
            .transaction(|tx| {
                for i in b * 1000..((b + 1) * 1000).min(n) {
                    let mut p = Props::new();
                    p.insert("title".into(), format!("task number {i}").into());
                    p.insert("status".into(), statuses[i % 4].into());
                    p.insert("priority".into(), prios[i % 4].into());
                    p.insert("labels".into(), Value::List(vec!["bench".into()]));
                    tx.put(&format!("T-{i:010}"), "task", p)?;
                }
                Ok(())
            })
            .unwrap();
    }
    store.checkpoint().unwrap();
    drop(store);
    println!("got store of {n} tasks built in {:?}", t.elapsed());

    let db = base.join("tasks.db");
    let mut sql = format!("{SCHEMA} BEGIN;");
    for i in 0..n {
        sql.push_str(&format!(
            "INSERT INTO tasks VALUES('T-{i:010}','task number {i}','{}','{}',{i});",
            statuses[i % 4],
            prios[i % 4]
        ));
    }
    sql.push_str("COMMIT;");
    let script = base.join("load.sql");
    std::fs::write(&script, &sql).unwrap();
    let out = Command::new("sqlite3")
        .arg(&db)
        .stdin(std::fs::File::open(&script).unwrap())
        .output()
        .expect("sqlite3 on the PATH");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut samples: [Vec<Sample>; 5] = Default::default();
    let [gc, gp, gl, sc, sl] = &mut samples;
    // The creates that ran a checkpoint (CURRENT changed under them).
    let mut crossing = Vec::new();
    for i in 0..runs {
        // A new store and database per sample in fresh mode (untimed).
        let (dir, db) = if fresh {
            let d = base.join(format!("fresh-{i}"));
            let (dir, db) = (d.join(".got"), d.join("tasks.db"));
            std::fs::create_dir_all(&d).unwrap();
            let mut c = Command::new(&got_bin);
            c.arg("--store").arg(&dir).arg("init");
            time(c);
            time(sqlite(&db, SCHEMA));
            (dir, db)
        } else {
            (dir.clone(), db.clone())
        };
        let current = || std::fs::read(dir.join("CURRENT")).unwrap();
        // Interleaved, so both see the same machine.
        let mut c = Command::new(&got_bin);
        c.arg("--store")
            .arg(&dir)
            .args(["-q", "task", "create"])
            .arg(format!("benchmark task {i}"));
        let before = current();
        let d = time(c);
        gc.push(d);
        if current() != before {
            crossing.push(d.wall);
        }
        sc.push(time(sqlite(&db, &format!(
            "PRAGMA synchronous=FULL; INSERT INTO tasks VALUES('B-{i:08}','benchmark task {i}','pending','medium',{});",
            n + i
        ))));
        let mut c = Command::new(&got_bin);
        c.arg("--store")
            .arg(&dir)
            .args(["-q", "entity", "put", "note", "--props"])
            .arg(format!("{{\"title\": \"benchmark note {i}\"}}"));
        gp.push(time(c));
        let mut c = Command::new(&got_bin);
        c.arg("--store")
            .arg(&dir)
            .args(["-q", "task", "list", "--limit", "20"]);
        gl.push(time(c));
        sl.push(time(sqlite(
            &db,
            "SELECT id FROM tasks ORDER BY id LIMIT 20;",
        )));
        if fresh {
            let _ = std::fs::remove_dir_all(base.join(format!("fresh-{i}")));
        }
    }
    let walls = |v: &[Sample]| v.iter().map(|x| x.wall).collect::<Vec<_>>();
    let cpu_mean = |v: &[Sample]| v.iter().map(|x| x.cpu).sum::<Duration>() / v.len() as u32;
    let row = |name: &str, g: &[Sample], s: &[Sample]| {
        let (mut gw, mut sw) = (walls(g), walls(s));
        let (gm, gp, gx) = (pct(&mut gw, 0.5), pct(&mut gw, 0.99), pct(&mut gw, 1.0));
        let (sm, sp, sx) = (pct(&mut sw, 0.5), pct(&mut sw, 0.99), pct(&mut sw, 1.0));
        let (gcpu, scpu) = (cpu_mean(g), cpu_mean(s));
        println!(
            "{name:<24} got median {gm:>8.2?} p99 {gp:>8.2?} max {gx:>8.2?} cpu {gcpu:>8.2?} | sqlite3 median {sm:>8.2?} p99 {sp:>8.2?} max {sx:>8.2?} cpu {scpu:>8.2?} | got/sqlite3 median {:.2} cpu {:.2}",
            gm.as_secs_f64() / sm.as_secs_f64(),
            gcpu.as_secs_f64() / scpu.as_secs_f64()
        );
    };
    let what = if fresh {
        "a fresh store each".to_string()
    } else {
        format!("{n} tasks")
    };
    println!("{runs} runs each, {what}, one process per sample:");
    row("task create (durable)", gc, sc);
    row("entity put (durable)", gp, sc);
    row("task list --limit 20", gl, sl);
    crossing.sort();
    println!(
        "{} of the creates ran a checkpoint: {:.2?}",
        crossing.len(),
        crossing
    );
}
