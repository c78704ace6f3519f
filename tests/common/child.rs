//! Children for the tests that need real processes (`lock`, `multi_process`): the
//! test binary runs itself again on one test (`--exact NAME`) with
//! `GOT_TEST_CHILD=<role>`, and the child talks to the parent in `@`-prefixed lines
//! on stdout.
//!
//! What a failure prints differs between the two test files, so each adds its own
//! `Proc::expect_line`, `Proc::finish` and `Ended::describe` (and `lock` a `Drop`
//! that kills a holder left running).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const CHILD_ENV: &str = "GOT_TEST_CHILD";
pub const SIGKILL: i32 = 9;

// ---------------------------------------------------------------------------------
// The child side
// ---------------------------------------------------------------------------------

/// One protocol line, written and flushed at once (a single small write to the pipe).
/// It starts with a newline because libtest may have left "test NAME ... " unfinished.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    out.write_all(format!("\n@{line}\n").as_bytes())
        .expect("write to the parent");
    out.flush().expect("flush to the parent");
}

pub fn env_string(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("child needs {key}"))
}

pub fn dir_env(dir: &Path) -> (&'static str, String) {
    ("GOT_TEST_DIR", dir.display().to_string())
}

// ---------------------------------------------------------------------------------
// The parent side
// ---------------------------------------------------------------------------------

/// A running child: its protocol lines arrive on a channel as they are printed.
pub struct Proc {
    pub label: String,
    pub child: std::process::Child,
    pub lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
    pub stderr: Option<JoinHandle<String>>,
}

/// A child that has exited (or was killed), with everything it printed.
pub struct Ended {
    pub label: String,
    pub status: ExitStatus,
    pub lines: Vec<String>,
    pub stderr: String,
}

impl Proc {
    /// Runs this test binary again on `test` alone (`--exact`) with
    /// `GOT_TEST_CHILD=role` and `envs`; the child is labelled `role`.
    pub fn spawn(test: &str, role: &str, envs: &[(&str, String)]) -> Proc {
        let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
        cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, role)
            .env_remove("GOT_LOCK_TIMEOUT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn a child process");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut out = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match out.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                // Only whole protocol lines count: a line cut short by SIGKILL (no
                // trailing newline) reports nothing.
                let Some(msg) = line.strip_suffix('\n').and_then(|l| l.strip_prefix('@')) else {
                    continue;
                };
                if tx.send(msg.to_string()).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Proc {
            label: role.to_string(),
            child,
            lines: rx,
            seen: Vec::new(),
            stderr: Some(stderr),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the next line starting with `prefix` (all lines are kept); `None` on
    /// timeout or when the child closed its stdout.
    pub fn wait_line(&mut self, prefix: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.starts_with(prefix) {
                        return Some(l);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Waits until the child has printed `count` lines starting with `prefix`.
    pub fn wait_count(&mut self, prefix: &str, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.seen.iter().filter(|l| l.starts_with(prefix)).count() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.wait_line(prefix, left).is_none() {
                return false;
            }
        }
        true
    }

    pub fn kill(&mut self) -> Ended {
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for a killed child");
        self.collect(status)
    }

    pub fn collect(&mut self, status: ExitStatus) -> Ended {
        // The reader thread ends at EOF, which the child's exit guarantees.
        let mut lines = std::mem::take(&mut self.seen);
        lines.extend(self.lines.iter());
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        Ended {
            label: self.label.clone(),
            status,
            lines,
            stderr,
        }
    }
}
