//! Whole-process latency of the commands agents run most, next to the `sqlite3`
//! command-line tool doing the equivalent, on stores of N tasks (issue 4's
//! benchmark). Not a test: numbers for docs/benchmarks.md.
//!
//! `cargo build --release && cargo run --release --example cli_bench -- 100000 [RUNS]`
//! (needs `sqlite3` on the PATH). Each sample is one process: `got task create`
//! (open, one durable commit, exit; automatic checkpoints on, so some cross one)
//! and `got task list --limit 20`; sqlite3 does an INSERT in WAL mode with
//! synchronous=FULL, and a SELECT … ORDER BY id LIMIT 20 on an indexed table.
//! Prints median, p99 and max of each, and the times of the creates that ran a
//! checkpoint (the CLI checkpoints every 256 transactions).
use got::{Options, Props, Store, Value};
use std::process::Command;
use std::time::{Duration, Instant};

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn time(mut cmd: Command) -> Duration {
    let t = Instant::now();
    let o = cmd.output().expect("run");
    let d = t.elapsed();
    assert!(
        o.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&o.stderr)
    );
    d
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
    let mut sql = String::from(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; \
         CREATE TABLE tasks(id TEXT PRIMARY KEY, title TEXT, status TEXT, priority TEXT, created_at INTEGER); \
         CREATE INDEX tasks_status ON tasks(status); BEGIN;",
    );
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

    let (mut gc, mut gl, mut sc, mut sl) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // The creates that ran a checkpoint (CURRENT changed under them).
    let mut crossing = Vec::new();
    let current = || std::fs::read(dir.join("CURRENT")).unwrap();
    for i in 0..runs {
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
            crossing.push(d);
        }
        let mut c = Command::new("sqlite3");
        c.arg(&db).arg(format!(
            "PRAGMA synchronous=FULL; INSERT INTO tasks VALUES('B-{i:08}','benchmark task {i}','pending','medium',{});",
            n + i
        ));
        sc.push(time(c));
        let mut c = Command::new(&got_bin);
        c.arg("--store")
            .arg(&dir)
            .args(["-q", "task", "list", "--limit", "20"]);
        gl.push(time(c));
        let mut c = Command::new("sqlite3");
        c.arg(&db).arg("SELECT id FROM tasks ORDER BY id LIMIT 20;");
        sl.push(time(c));
    }
    let row = |name: &str, g: &mut Vec<Duration>, s: &mut Vec<Duration>| {
        let (gm, gp, gx) = (pct(g, 0.5), pct(g, 0.99), pct(g, 1.0));
        let (sm, sp, sx) = (pct(s, 0.5), pct(s, 0.99), pct(s, 1.0));
        println!(
            "{name:<24} got median {gm:>8.2?} p99 {gp:>8.2?} max {gx:>8.2?} | sqlite3 median {sm:>8.2?} p99 {sp:>8.2?} max {sx:>8.2?} | median got/sqlite3 {:.2}",
            gm.as_secs_f64() / sm.as_secs_f64()
        );
    };
    println!("{runs} runs each, {n} tasks, one process per sample:");
    row("task create (durable)", &mut gc, &mut sc);
    row("task list --limit 20", &mut gl, &mut sl);
    crossing.sort();
    println!(
        "{} of the creates ran a checkpoint: {:.2?}",
        crossing.len(),
        crossing
    );
}
