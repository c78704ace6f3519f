//! The writer lock: `flock(LOCK_EX)` on `LOCK`, held only while a batch is
//! validated, appended and synced. The kernel releases it when the holder dies, so
//! the file is never stolen or unlinked. The holder writes `pid=… host=… since=…`
//! into the file for diagnostics only.

use crate::error::{Error, IoContext, Result};
use crate::vfs::{Vfs, VfsLock};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Default time a writer waits for the lock (`GOT_LOCK_TIMEOUT` overrides it).
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct ProcessLock {
    path: PathBuf,
    lock: Box<dyn VfsLock>,
    /// `flock` excludes other open file descriptions, not other threads using this
    /// one: threads of this process take this mutex first.
    threads: parking_lot::Mutex<()>,
    /// Set by [`LockHeld::keep`]: the lock stays held until this handle is dropped,
    /// and every later `acquire` fails at once instead of waiting for it.
    kept: std::sync::atomic::AtomicBool,
}

/// Proof that the lock is held; releases it when dropped.
#[derive(Debug)]
pub struct LockHeld<'a> {
    lock: &'a ProcessLock,
    _thread: parking_lot::MutexGuard<'a, ()>,
}

impl LockHeld<'_> {
    /// Keeps the lock held until the `ProcessLock` is dropped (a frame whose sync
    /// failed could not be erased: no other process may read it). Every later
    /// `acquire` on this `ProcessLock` fails with `Error::Poisoned`.
    pub fn keep(self) {
        self.lock
            .kept
            .store(true, std::sync::atomic::Ordering::SeqCst);
        std::mem::forget(self);
    }
}

impl Drop for LockHeld<'_> {
    fn drop(&mut self) {
        // An unlock failure cannot lose data; the kernel drops the lock with the fd.
        // (The thread mutex is released after this, when `_thread` drops.)
        let _ = self.lock.lock.unlock();
    }
}

impl ProcessLock {
    pub fn open(vfs: &dyn Vfs, dir: &Path) -> Result<Self> {
        let path = dir.join("LOCK");
        let lock = vfs.open_lock(&path).at(&path)?;
        Ok(ProcessLock {
            path,
            lock,
            threads: parking_lot::Mutex::new(()),
            kept: Default::default(),
        })
    }

    /// Blocks until the lock is held or `timeout` passes (`Error::Locked`). Fails
    /// with `Error::Poisoned` once a holder has kept the lock (see
    /// [`LockHeld::keep`]), also for threads already waiting.
    pub fn acquire(&self, timeout: Duration) -> Result<LockHeld<'_>> {
        let start = Instant::now();
        let locked = |waited: Duration| Error::Locked {
            holder: self.holder(),
            waited_ms: waited.as_millis() as u64,
        };
        // Waits in slices, so that a thread waiting behind a holder that keeps the
        // lock learns it within one slice rather than at the end of its timeout.
        const SLICE: Duration = Duration::from_millis(20);
        let thread = loop {
            if self.kept.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(Error::Poisoned);
            }
            let left = timeout.saturating_sub(start.elapsed());
            if let Some(t) = self.threads.try_lock_for(left.min(SLICE)) {
                break t;
            }
            if left <= SLICE {
                return Err(locked(start.elapsed()));
            }
        };
        if self.kept.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Poisoned);
        }
        let left = timeout.saturating_sub(start.elapsed());
        if !self.lock.lock(left).at(&self.path)? {
            return Err(locked(start.elapsed()));
        }
        let held = LockHeld {
            lock: self,
            _thread: thread,
        };
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let diag = format!(
            "pid={} host={} since_unix_ms={}\n",
            std::process::id(),
            hostname(),
            since
        );
        let mut buf = [b' '; 128];
        let n = diag.len().min(127);
        buf[..n].copy_from_slice(&diag.as_bytes()[..n]);
        buf[127] = b'\n';
        // Diagnostics only: a failure to write them must not fail the commit.
        let _ = self.lock.file().write_at(&buf, 0);
        Ok(held)
    }

    /// The diagnostic line the current (or last) holder wrote.
    pub fn holder(&self) -> String {
        let mut buf = [0u8; 128];
        match self.lock.file().read_at(&mut buf, 0) {
            Ok(n) if n > 0 => {
                let s = String::from_utf8_lossy(&buf[..n]);
                let s = s.trim();
                if s.is_empty() {
                    "unknown holder".into()
                } else {
                    s.to_string()
                }
            }
            _ => "unknown holder".into(),
        }
    }
}

/// The host name (read once per process: it is written into `LOCK` at every lock
/// acquisition).
pub fn hostname() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into())
    })
}

/// `GOT_LOCK_TIMEOUT` in seconds (fractions allowed), else the default.
pub fn lock_timeout_from_env() -> Duration {
    std::env::var("GOT_LOCK_TIMEOUT")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_LOCK_TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimVfs;
    use crate::vfs::Vfs;

    /// A holder that keeps the lock (its frame could not be erased) fails the
    /// threads waiting behind it with `Poisoned`, not `Locked` at the end of their
    /// (here very long) timeout, and every later acquire too.
    #[test]
    fn keeping_the_lock_fails_waiting_and_later_acquires_as_poisoned() {
        let vfs = SimVfs::new();
        vfs.create_dir_all(Path::new("/l")).unwrap();
        let lock = ProcessLock::open(vfs.as_ref(), Path::new("/l")).unwrap();
        let held = lock.acquire(Duration::from_secs(1)).unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| lock.acquire(Duration::from_secs(3600)).map(|_| ()));
            // The waiter is parked behind the holder (or not yet started: either
            // way it must come back Poisoned).
            held.keep();
            let r = waiter.join().unwrap();
            assert!(matches!(r, Err(Error::Poisoned)), "{r:?}");
        });
        let r = lock.acquire(Duration::from_secs(3600)).map(|_| ());
        assert!(matches!(r, Err(Error::Poisoned)), "{r:?}");
    }
}
