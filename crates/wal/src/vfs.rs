//! The file-system seam. Every byte `wal` and `versioned-store` read or write goes
//! through [`Vfs`], so the crash tests (`SimVfs`) see all of it.
//!
//! The trait is deliberately small: positioned reads and writes, length changes,
//! `fdatasync`, directory operations with an explicit directory sync, and an exclusive
//! advisory lock with a timeout. Paths are absolute or relative to the process's
//! working directory; implementations do not interpret them beyond that.

use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How a file is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Read and write; the file must exist.
    ReadWrite,
    /// Read and write; created empty if missing (the directory entry is not durable
    /// until the parent directory is synced).
    CreateReadWrite,
    /// Read and write; must not exist yet (`O_EXCL`).
    CreateNew,
}

/// An open file.
#[allow(clippy::len_without_is_empty)] // a file length is an I/O call, not a collection
pub trait VfsFile: Send + Sync + Debug {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at EOF).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`, extending the file if needed.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// The current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Truncates or extends (with zeros) to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// `fdatasync`: the file's data (and the size, if it changed) are durable when this
    /// returns `Ok`. After an error the outcome of earlier writes is unknown.
    fn sync_data(&self) -> io::Result<()>;

    /// Which file this is, as `(device, inode)`: the same for every handle on
    /// the file, different for a copy of it. `None` where unknown (then
    /// nothing that depends on it is trusted; see `DURABLE`'s boot token).
    fn identity(&self) -> Option<(u64, u64)> {
        None
    }

    /// A read-only map of the whole file, where the process has enabled maps
    /// ([`crate::mapped::enable_with_sigbus_handler`]): for runs, which never
    /// change once written, and `DURABLE`, which is overwritten in place and
    /// read from the map only by [`crate::mapped::Mapped::copy_changing`].
    /// `None` (the default): read with [`VfsFile::read_at`].
    fn map(&self, path: &Path) -> Option<crate::mapped::Mapped> {
        let _ = path;
        None
    }

    /// Reads exactly `buf.len()` bytes at `offset`, or fails with `UnexpectedEof`.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.read_at(buf, offset)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "short read: file ends early",
                ));
            }
            buf = &mut buf[n..];
            offset += n as u64;
        }
        Ok(())
    }

    /// Reads the whole file.
    fn read_all(&self) -> io::Result<Vec<u8>> {
        let len = self.len()? as usize;
        let mut buf = vec![0u8; len];
        let mut done = 0;
        while done < len {
            let n = self.read_at(&mut buf[done..], done as u64)?;
            if n == 0 {
                buf.truncate(done);
                break;
            }
            done += n;
        }
        Ok(buf)
    }
}

/// An exclusive advisory lock on a file (`flock(LOCK_EX)` on the real file system).
/// The lock is released when [`VfsLock::unlock`] is called, when the value is dropped,
/// or, for the real file system, when the holding process dies.
pub trait VfsLock: Send + Sync + Debug {
    /// Blocks (in the kernel, not by polling) until the lock is held or `timeout`
    /// passes. Returns `Ok(false)` on timeout.
    fn lock(&self, timeout: Duration) -> io::Result<bool>;
    /// Takes the lock only if it is free right now.
    fn try_lock(&self) -> io::Result<bool>;
    /// Releases the lock (no-op if not held).
    fn unlock(&self) -> io::Result<()>;
    /// The lock file itself, for writing and reading diagnostics (pid, host, since).
    fn file(&self) -> &dyn VfsFile;
}

/// The file system as the store sees it.
pub trait Vfs: Send + Sync + Debug + 'static {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>>;
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Creates `path` and missing parents. Not durable until the parents are synced.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The file names (not paths) in a directory, sorted.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Atomically replaces `to` with `from`. Durable after `sync_dir` of the parent(s).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file. Durable after `sync_dir` of the parent.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creates, renames, removes) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Opens (creating if needed) a lock file. Taking the lock is a separate step.
    fn open_lock(&self, path: &Path) -> io::Result<Box<dyn VfsLock>>;

    /// An id of the current boot of the machine (of its kernel, with its page
    /// cache): the same for every process until the machine restarts or loses
    /// power, then different. `None` where the platform has none; then every
    /// first recovery reads past the end of the log (`DURABLE`'s boot token).
    fn boot_id(&self) -> Option<[u8; 16]> {
        None
    }
    /// Removes an empty directory. The default does nothing (for file systems
    /// whose directories are implicit).
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let _ = path;
        Ok(())
    }
    /// Makes `to` name the same (immutable) content as `from`; `to` must not
    /// exist. Durable after the file is synced and `sync_dir` of `to`'s parent.
    /// The default copies the bytes (and syncs them); the real file system links.
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let bytes = self.open(from, OpenMode::Read)?.read_all()?;
        let f = self.open(to, OpenMode::CreateNew)?;
        f.write_at(&bytes, 0)?;
        f.sync_data()
    }
}

/// Creates directory `path` and its missing parents durably: each new directory
/// is an entry in its parent, durable only once the parent is synced, so after
/// creating them this syncs every parent that gained one, outermost first. A
/// power loss after it returns keeps `path` (an existing `path` costs one
/// `exists` call and nothing else).
pub fn create_dir_durable(vfs: &dyn Vfs, path: &Path) -> io::Result<()> {
    let mut new = Vec::new();
    for dir in path.ancestors() {
        if dir.as_os_str().is_empty() || vfs.exists(dir)? {
            break;
        }
        new.push(dir);
    }
    if new.is_empty() {
        return Ok(());
    }
    vfs.create_dir_all(path)?;
    for dir in new.iter().rev() {
        match dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => vfs.sync_dir(parent)?,
            // A relative path's first component: its parent is the working
            // directory.
            _ => vfs.sync_dir(Path::new("."))?,
        }
    }
    Ok(())
}

/// The real file system (`std::fs`, `fdatasync`, `flock`).
#[derive(Debug, Default, Clone, Copy)]
pub struct RealVfs;

#[derive(Debug)]
struct RealFile(File);

impl VfsFile for RealFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        loop {
            match self.0.read_at(buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn identity(&self) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let m = self.0.metadata().ok()?;
        Some((m.dev(), m.ino()))
    }
    fn map(&self, path: &Path) -> Option<crate::mapped::Mapped> {
        crate::mapped::map(&self.0, path)
    }
}

/// Linux's `/proc/sys/kernel/random/boot_id` (a UUID drawn at each boot), read
/// once per process. Containers on one kernel share it, as they share its page
/// cache; another machine, a VM guest and the next boot each have their own.
fn linux_boot_id() -> Option<[u8; 16]> {
    static ID: std::sync::OnceLock<Option<[u8; 16]>> = std::sync::OnceLock::new();
    *ID.get_or_init(|| {
        let text = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        parse_uuid(text.trim())
    })
}

/// A UUID's 32 hex digits (hyphens anywhere) as 16 bytes.
fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|&b| b != b'-')
        .map(|b| (b as char).to_digit(16).map(|d| d as u8))
        .collect::<Option<_>>()?;
    if digits.len() != 32 {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, pair) in digits.chunks(2).enumerate() {
        id[i] = pair[0] << 4 | pair[1];
    }
    Some(id)
}

impl Vfs for RealVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        let mut o = OpenOptions::new();
        match mode {
            OpenMode::Read => o.read(true),
            OpenMode::ReadWrite => o.read(true).write(true),
            OpenMode::CreateReadWrite => o.read(true).write(true).create(true),
            OpenMode::CreateNew => o.read(true).write(true).create_new(true),
        };
        Ok(Arc::new(RealFile(o.open(path)?)))
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::hard_link(from, to)
    }
    fn boot_id(&self) -> Option<[u8; 16]> {
        linux_boot_id()
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir(path)
    }
    fn open_lock(&self, path: &Path) -> io::Result<Box<dyn VfsLock>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        Ok(Box::new(RealLock {
            path: path.to_path_buf(),
            file: RealFile(file),
            wait: Default::default(),
        }))
    }
}

/// `flock` on one open file description. Other descriptions of the same file, in
/// this process or another, contend for it; closing them does not release it.
#[derive(Debug)]
struct RealLock {
    path: PathBuf,
    file: RealFile,
    wait: Arc<(parking_lot::Mutex<LockWait>, parking_lot::Condvar)>,
}

/// The state shared with the (at most one) helper thread blocked in `flock`.
#[derive(Debug, Default)]
struct LockWait {
    helper_running: bool,
    /// A `lock` call is waiting for the helper's result.
    waiting: bool,
    delivered: Option<io::Result<()>>,
}

impl VfsLock for RealLock {
    fn lock(&self, timeout: Duration) -> io::Result<bool> {
        // `flock` has no timeout, so a helper thread blocks in the kernel on a
        // duplicate descriptor (same open file description: the lock it gets is
        // ours). At most one helper exists per lock; if the waiter gives up, the
        // helper, deciding under the same mutex, releases what it got. Without that
        // mutex an abandoned helper could release a lock a later call believes held.
        let (m, cv) = &*self.wait;
        let mut w = m.lock();
        if !w.helper_running {
            if self.try_lock()? {
                return Ok(true);
            }
            let dup = self.file.0.try_clone()?;
            let shared = self.wait.clone();
            w.helper_running = true;
            w.delivered = None;
            let spawned = std::thread::Builder::new()
                .name("got-lock-wait".into())
                .spawn(move || {
                    let r = dup.lock();
                    let (m, cv) = &*shared;
                    let mut w = m.lock();
                    w.helper_running = false;
                    if w.waiting {
                        w.delivered = Some(r);
                        cv.notify_all();
                    } else if r.is_ok() {
                        let _ = dup.unlock();
                    }
                });
            if let Err(e) = spawned {
                w.helper_running = false;
                return Err(e);
            }
        }
        w.waiting = true;
        let deadline = std::time::Instant::now() + timeout;
        while w.delivered.is_none() {
            if cv.wait_until(&mut w, deadline).timed_out() {
                break;
            }
        }
        w.waiting = false;
        match w.delivered.take() {
            Some(r) => r.map(|_| true),
            None => Ok(false),
        }
    }
    fn try_lock(&self) -> io::Result<bool> {
        match self.file.0.try_lock() {
            Ok(()) => Ok(true),
            Err(fs::TryLockError::WouldBlock) => Ok(false),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
    fn unlock(&self) -> io::Result<()> {
        self.file
            .0
            .unlock()
            .map_err(|e| io::Error::new(e.kind(), format!("unlock {}: {e}", self.path.display())))
    }
    fn file(&self) -> &dyn VfsFile {
        &self.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uuid_parses_to_its_sixteen_bytes_and_nothing_else_does() {
        assert_eq!(
            parse_uuid("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
            Some([
                0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2,
                0xe1, 0xf0
            ])
        );
        assert_eq!(parse_uuid("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1"), None);
        assert_eq!(parse_uuid("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1fz"), None);
        assert_eq!(parse_uuid(""), None);
    }

    /// The real file system's identity of a file: the same through every
    /// handle and after a rename, another for a copy.
    #[test]
    fn a_file_keeps_its_identity_and_a_copy_has_another() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, b"x").unwrap();
        let id = |p: &Path| RealVfs.open(p, OpenMode::Read).unwrap().identity();
        let first = id(&a);
        assert!(first.is_some());
        assert_eq!(id(&a), first);
        fs::copy(&a, &b).unwrap();
        assert_ne!(id(&b), first);
        fs::rename(&a, dir.path().join("c")).unwrap();
        assert_eq!(id(&dir.path().join("c")), first);
        if cfg!(target_os = "linux") {
            assert!(RealVfs.boot_id().is_some());
            assert_eq!(RealVfs.boot_id(), RealVfs.boot_id());
        }
    }

    #[test]
    fn flock_times_out_then_is_granted_and_excludes_the_other_description() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("LOCK");
        let a = RealVfs.open_lock(&path).unwrap();
        let b = RealVfs.open_lock(&path).unwrap();
        assert!(a.lock(Duration::from_millis(10)).unwrap());
        let start = std::time::Instant::now();
        assert!(!b.lock(Duration::from_millis(50)).unwrap());
        assert!(start.elapsed() >= Duration::from_millis(45));
        // Once `a` releases, `b`'s next attempt (reusing the waiting helper) wins...
        a.unlock().unwrap();
        assert!(b.lock(Duration::from_secs(5)).unwrap());
        // ...and really holds it: `a` cannot get it while `b` does.
        assert!(!a.try_lock().unwrap());
        b.unlock().unwrap();
        assert!(a.try_lock().unwrap());
    }

    #[test]
    fn an_abandoned_wait_releases_what_it_later_gets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("LOCK");
        let a = RealVfs.open_lock(&path).unwrap();
        let b = RealVfs.open_lock(&path).unwrap();
        assert!(a.lock(Duration::from_millis(10)).unwrap());
        assert!(!b.lock(Duration::from_millis(20)).unwrap());
        a.unlock().unwrap();
        // b's helper gets the lock with nobody waiting and must give it back.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            if a.try_lock().unwrap() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "helper kept the lock");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
