//! `got serve` under load: durable task creates per second over HTTP with 1, 8
//! and 32 keep-alive clients, their p50/p99 latency, and got's own in-process
//! commit rate with 32 threads on the same disk for the ratio (issue 13's
//! benchmark). Not a test: numbers for docs/benchmarks.md.
//!
//! `cargo build --release && cargo run --release --example serve_bench -- [SECONDS]`
//! (default 5 s per row).
use got::tasks::{self, NewTask};
use got::{Options, Store};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One keep-alive connection.
struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    fn new(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        Client {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    /// POSTs `body`, returns the status.
    fn post(&mut self, path: &str, body: &str) -> u16 {
        write!(
            self.w,
            "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        self.w.flush().unwrap();
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut len = 0usize;
        loop {
            line.clear();
            self.r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        self.r.read_exact(&mut body).unwrap();
        status
    }
}

/// CPU time (user + system) this process has used.
fn own_cpu() -> Duration {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// CPU time (user + system) process `pid` has used, from /proc.
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are
    // the 14th and 15th of the whole line, in clock ticks.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let t = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_micros(t * 1_000_000 / ticks.max(1))
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Starts `got serve` on a new store under `root`; returns it and its address.
fn start_server(
    bin: &std::path::Path,
    store: &std::path::Path,
) -> (std::process::Child, SocketAddr) {
    assert!(Command::new(bin)
        .arg("--store")
        .arg(store)
        .arg("init")
        .output()
        .unwrap()
        .status
        .success());
    let mut child = Command::new(bin)
        .arg("--store")
        .arg(store)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap()
        .parse()
        .unwrap();
    (child, addr)
}

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let run_for = Duration::from_secs(secs);
    let tmp = tempfile::tempdir().unwrap();
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("got");
    println!("serve_bench: {secs} s per row, durable creates");
    for clients in [1usize, 8, 32] {
        // Each row on a new store, as the in-process row is: the same
        // amount of checkpointing for the same number of commits.
        let (mut child, addr) = start_server(&bin, &tmp.path().join(format!("served-{clients}")));
        let (server_cpu0, client_cpu0) = (cpu_of(child.id()), own_cpu());
        let lat: Vec<Vec<Duration>> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..clients)
                .map(|c| {
                    sc.spawn(move || {
                        let mut cl = Client::new(addr);
                        let mut lat = Vec::new();
                        let start = Instant::now();
                        let mut i = 0;
                        while start.elapsed() < run_for {
                            let body = format!("{{\"title\": \"client {c} task {i}\"}}");
                            let t = Instant::now();
                            assert_eq!(cl.post("/v1/tasks", &body), 201);
                            lat.push(t.elapsed());
                            i += 1;
                        }
                        lat
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let (server_cpu, client_cpu) = (cpu_of(child.id()) - server_cpu0, own_cpu() - client_cpu0);
        let mut all: Vec<Duration> = lat.into_iter().flatten().collect();
        let n = all.len() as u32;
        let rate = all.len() as f64 / secs as f64;
        let (p50, p99) = (pct(&mut all, 0.5), pct(&mut all, 0.99));
        println!(
            "  HTTP, {clients:2} clients: {rate:8.0} creates/s  p50 {p50:.2?}  p99 {p99:.2?}  CPU per create: server {:.0?}, clients {:.0?}",
            server_cpu / n.max(1),
            client_cpu / n.max(1)
        );
        let _ = child.kill();
        let _ = child.wait();
    }
    // got in process, 32 threads creating tasks on the same disk.
    let direct = Store::open(
        tmp.path().join("direct"),
        Options {
            create_if_missing: true,
            ..Options::default()
        },
    )
    .unwrap();
    let cpu0 = own_cpu();
    let counts: Vec<usize> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..32)
            .map(|c| {
                let s = &direct;
                sc.spawn(move || {
                    let start = Instant::now();
                    let mut n = 0;
                    while start.elapsed() < run_for {
                        let t = NewTask {
                            title: format!("thread {c} task {n}"),
                            ..NewTask::default()
                        };
                        tasks::create(s, "bench", &t).unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total = counts.iter().sum::<usize>();
    let rate = total as f64 / secs as f64;
    let cpu = (own_cpu() - cpu0) / (total as u32).max(1);
    println!("  in process, 32 threads: {rate:8.0} creates/s  CPU per create {cpu:.0?}");
}
