//! The machine, the disk's own limit, child processes and their peak memory.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::ffi::OsString;
use std::os::unix::fs::FileExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// What the numbers were measured on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub kernel: String,
    pub filesystem: String,
    pub data_dir: String,
    pub memory_gib: f64,
}

fn first_line(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.lines().next().map(|l| l.trim().to_string()))
}

/// The type of the file system holding `dir`: `stat -f -c %T`, else the longest
/// matching mount point in /proc/mounts.
pub fn filesystem_type(dir: &Path) -> String {
    if let Ok(out) = Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(dir)
        .output()
    {
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !s.is_empty() {
            // stat reports ext2/ext3/ext4 alike as "ext2/ext3"; /proc/mounts knows.
            if let Some(m) = mount_type(dir) {
                if s.starts_with("ext") {
                    return m;
                }
                return format!("{s} ({m})");
            }
            return s;
        }
    }
    mount_type(dir).unwrap_or_else(|| "unknown".into())
}

fn mount_type(dir: &Path) -> Option<String> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    let mut best: Option<(usize, String)> = None;
    for l in mounts.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 {
            continue;
        }
        let mp = Path::new(f[1]);
        if dir.starts_with(mp) && best.as_ref().is_none_or(|(n, _)| f[1].len() > *n) {
            best = Some((f[1].len(), format!("{} on {}", f[2], f[0])));
        }
    }
    best.map(|b| b.1)
}

impl Machine {
    pub fn probe(data_dir: &Path) -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = first_line("/proc/sys/kernel/osrelease").unwrap_or_else(|| {
            Command::new("uname")
                .arg("-r")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_else(|_| "unknown".into())
        });
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<f64>().ok())
            })
            .map_or(0.0, |kib| kib / (1024.0 * 1024.0));
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            kernel,
            filesystem: filesystem_type(data_dir),
            data_dir: data_dir.display().to_string(),
            memory_gib,
        }
    }
}

/// The disk's limit, loop 1: append 200 bytes to a growing file and `fdatasync`,
/// for `secs`. Returns syncs per second.
pub fn append_fdatasync_rate(dir: &Path, secs: f64) -> Result<f64> {
    let path = dir.join("limit-append");
    let _ = std::fs::remove_file(&path);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    f.sync_all()?;
    let rate = sync_loop(&f, secs, &[7u8; 200], |off| off + 200)?;
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(rate)
}

/// Writes `buf` at 0, then at each `next(offset)`, each write followed by
/// `fdatasync`, for `secs` (at least once). Returns syncs per second.
fn sync_loop(f: &std::fs::File, secs: f64, buf: &[u8], next: impl Fn(u64) -> u64) -> Result<f64> {
    let mut off = 0u64;
    let t = Instant::now();
    let mut n = 0u64;
    while n == 0 || t.elapsed().as_secs_f64() < secs {
        f.write_all_at(buf, off)?;
        f.sync_data()?;
        off = next(off);
        n += 1;
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

/// The disk's limit, loop 2: overwrite 4 KiB in place in a preallocated (written
/// and synced) file and `fdatasync`, for `secs`. Returns syncs per second.
pub fn overwrite_fdatasync_rate(dir: &Path, secs: f64) -> Result<f64> {
    let path = dir.join("limit-overwrite");
    const SIZE: u64 = 8 << 20;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    f.write_all_at(&vec![0u8; SIZE as usize], 0)?;
    f.sync_all()?;
    let rate = sync_loop(&f, secs, &[7u8; 4096], |off| (off + 4096) % SIZE)?;
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(rate)
}

/// What a child process printed and its peak resident memory.
pub struct ChildRun {
    pub stdout: String,
    pub max_rss_kib: u64,
}

/// Runs `prog args..` to the end and measures its peak RSS (`ru_maxrss` from
/// `wait4`). Fails unless it exits 0.
///
/// Through an intermediate process (`exe __child rss prog args..`): on Linux a
/// child's `ru_maxrss` starts from the high-water mark of the address space it
/// was spawned from, so a command spawned straight from this large harness would
/// report the harness's own peak. The intermediate is freshly exec'd and small.
pub fn run_measured(exe: &Path, prog: &Path, args: &[OsString]) -> Result<ChildRun> {
    let mut cmd = Command::new(exe);
    cmd.args(["__child", "rss"]).arg(prog).args(args);
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting {prog:?}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("{prog:?} {args:?} failed ({})", out.status);
    }
    let (body, last) = text
        .trim_end()
        .rsplit_once('\n')
        .unwrap_or(("", text.trim_end()));
    let kib = last
        .strip_prefix("__maxrss_kib ")
        .with_context(|| format!("no peak RSS from the intermediate: {last:?}"))?
        .parse()?;
    Ok(ChildRun {
        stdout: body.to_string(),
        max_rss_kib: kib,
    })
}

/// `__child rss PROG ARGS..`: runs PROG (stdout and stderr passed through),
/// reaps it with `wait4`, prints `__maxrss_kib N` last and exits with its code.
pub fn rss_intermediate(args: &[String]) -> Result<()> {
    let prog = args.first().context("__child rss: no program")?;
    let child = Command::new(prog)
        .args(&args[1..])
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {prog}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child `pid`.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    if r != pid {
        bail!("wait4 on {pid}: {}", std::io::Error::last_os_error());
    }
    let st = std::process::ExitStatus::from_raw(status);
    println!("__maxrss_kib {}", ru.ru_maxrss);
    if !st.success() {
        std::process::exit(st.code().unwrap_or(1));
    }
    Ok(())
}

/// `sync(2)`: writes back every dirty page on the machine, so the next
/// measurement's syncs do not wait behind an earlier workload's writeback.
pub fn sync_all() {
    // SAFETY: sync takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// This process's `VmHWM` (peak resident) and `RssAnon` (anonymous resident), KiB.
pub fn own_memory_kib() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("RssAnon:"))
}

/// The `got` binary: next to this executable, built (or brought up to date) with
/// `cargo build --release --bin got --no-default-features` when cargo is at
/// hand. Without the `server` feature the got library is built as this
/// harness already has it, so only the binary is linked (with the feature, the
/// build compiled the library and the HTTP and MCP stack again: over 3 minutes
/// of CI); the servers live in `got-server`, so the `got` binary is the same
/// program either way but for the `serve` and `mcp` subcommands.
pub fn got_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("executable has no directory")?;
    let bin = dir.join("got");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let profile_release = dir.file_name().is_some_and(|n| n == "release");
    if manifest.exists() {
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "--bin",
            "got",
            "--no-default-features",
            "--manifest-path",
        ])
        .arg(&manifest);
        if profile_release {
            cmd.arg("--release");
        }
        match cmd.status() {
            Ok(s) if s.success() => {}
            r => {
                eprintln!("got-bench: could not build the got binary ({r:?}); using what is there")
            }
        }
    }
    if !bin.exists() {
        bail!("no got binary at {bin:?} (run `cargo build --release`)");
    }
    Ok(bin)
}
