//! `got mcp` round trips over stdio, as an agent client drives it: the built
//! `got` binary on a fresh store, the `initialize` handshake, N tasks created
//! with `create_task`, then the time from writing a `tools/call` line to
//! reading its response for `next_task` with `claim: true` (each call claims
//! a task: a durable write) and, for comparison, the read-only `ready`; and
//! the time from starting the process to the handshake's response. Not a
//! test: numbers for docs/benchmarks.md.
//!
//! `cargo build --release && cargo run --release --example mcp_bench -- [TASKS] [READS] [STARTS]`
//! (defaults 2000 tasks, each claimed once; 2000 `ready` calls; 20 starts).
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A `got mcp` process and the client end of its stdio.
struct Mcp {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Mcp {
    fn start(bin: &Path, store: &Path) -> Mcp {
        let mut child = Command::new(bin)
            .arg("--store")
            .arg(store)
            .args(["--agent", "bench", "mcp"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start got mcp");
        Mcp {
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
            next_id: 1,
        }
    }

    fn send(&mut self, msg: &Value) {
        let mut line = msg.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }

    /// Sends a request and returns its response.
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                self.stdout.read_line(&mut line).unwrap() > 0,
                "got mcp closed stdout"
            );
            let v: Value = serde_json::from_str(&line).expect("a JSON line");
            if v["id"] == id {
                return v;
            }
        }
    }

    fn initialize(&mut self) {
        let r = self.request(
            "initialize",
            json!({
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "mcp_bench", "version": "1.0"},
            }),
        );
        assert_eq!(r["result"]["serverInfo"]["name"], "got", "{r}");
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    }

    /// A tool call's structured result (it must succeed).
    fn call(&mut self, name: &str, args: Value) -> Value {
        let r = self.request("tools/call", json!({"name": name, "arguments": args}));
        assert_eq!(r["result"]["isError"], false, "{name}: {r}");
        r["result"]["structuredContent"].clone()
    }

    /// Closes stdin and waits for the process to exit.
    fn close(mut self) {
        drop(self.stdin);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "got mcp exited {status:?}");
    }
}

/// Count, mean, p50, p99 and rate of some round trips, as a table row.
fn row(what: &str, mut v: Vec<Duration>) {
    v.sort();
    let n = v.len();
    let total: Duration = v.iter().sum();
    let pct = |p: f64| v[((n as f64 - 1.0) * p).round() as usize];
    println!(
        "{what:<34} {n:>6} {:>10.1?} {:>10.1?} {:>10.1?} {:>10.0}",
        total / n as u32,
        pct(0.5),
        pct(0.99),
        n as f64 / total.as_secs_f64()
    );
}

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let (tasks, reads, starts) = (arg(1, 2000), arg(2, 2000), arg(3, 20));
    // target/release/examples/mcp_bench → target/release/got (which runs
    // got-server, beside it, for `got mcp`).
    let dir: PathBuf = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    let bin = dir.join("got");
    for b in [&bin, &dir.join("got-server")] {
        assert!(
            b.exists(),
            "build the binaries first: cargo build --release ({})",
            b.display()
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let init = Command::new(&bin)
        .arg("--store")
        .arg(&store)
        .arg("init")
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");

    // Process start to the handshake's response.
    let mut start = Vec::new();
    for _ in 0..starts {
        let t = Instant::now();
        let mut m = Mcp::start(&bin, &store);
        m.initialize();
        start.push(t.elapsed());
        m.close();
    }

    let mut m = Mcp::start(&bin, &store);
    m.initialize();
    let mut create = Vec::new();
    for i in 0..tasks {
        let t = Instant::now();
        let r = m.call("create_task", json!({"title": format!("task {i}")}));
        create.push(t.elapsed());
        assert!(r["task"]["id"].is_string(), "{r}");
    }
    let mut ready = Vec::new();
    for _ in 0..reads {
        let t = Instant::now();
        let r = m.call("ready", json!({"limit": 20}));
        ready.push(t.elapsed());
        assert!(r["tasks"].is_array(), "{r}");
    }
    let mut claim = Vec::new();
    for _ in 0..tasks {
        let t = Instant::now();
        let r = m.call("next_task", json!({"claim": true}));
        claim.push(t.elapsed());
        assert_eq!(r["task"]["status"], "in_progress", "{r}");
    }
    let none = m.call("next_task", json!({"claim": true}));
    assert_eq!(none["task"], Value::Null, "every task was claimed once");
    m.close();

    println!(
        "mcp_bench: got mcp over stdio, one client, a store of {tasks} tasks ({})",
        std::env::consts::ARCH
    );
    println!(
        "{:<34} {:>6} {:>10} {:>10} {:>10} {:>10}",
        "round trip", "count", "mean", "p50", "p99", "calls/s"
    );
    row("start + initialize handshake", start);
    row("create_task (durable)", create);
    row("next_task claim=true (durable)", claim);
    row("ready limit=20 (read-only)", ready);
}
