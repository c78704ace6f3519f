//! `SimVfs`: an in-memory simulated disk for crash and fault-injection tests.
//!
//! Modelled on SQLite's crash VFS (`test6.c`), redb's `FuzzerBackend` and
//! FoundationDB's non-durable files. Everything lives behind one global mutex, so the
//! model is simple and every operation is atomic with respect to every other one.
//!
//! # The model
//!
//! **Files are inodes.** Each inode holds
//! * `current` bytes: what reads see;
//! * `durable` bytes: what survives a power loss;
//! * an ordered list of *pending* operations (`write_at` with offset and data,
//!   `set_len`) made since the last successful `sync_data`.
//!
//! The invariant is `durable` + replay(pending) == `current`. `sync_data` replays the
//! pending list onto `durable` and clears it. What a *failed* (injected) `sync_data`
//! does is set by [`SimVfs::set_sync_failure`]: by default ([`SyncFailure::KeepsDirty`])
//! it changes nothing: the data stays readable and a later sync may still make it
//! durable. [`SyncFailure::DropsDirty`] is Linux's behaviour (the PostgreSQL
//! "fsyncgate" lesson): the kernel marks the dirty pages clean after a failed
//! writeback and reports the error once to each handle open on the file then (its
//! `errseq_t`: the failing sync, and every other handle's next sync), so the writes
//! stay readable from the page cache but no later sync writes them, and a power loss
//! loses them (a process crash does not: the cache survives it, still holding bytes
//! the disk never got).
//!
//! **Names are separate from data.** There is a `current` namespace (path -> inode) and
//! a `durable` namespace. Creating a file (`open` with `CreateReadWrite`/`CreateNew`
//! when missing, or `open_lock`), `rename` and `remove_file` change the current
//! namespace at once and are appended to the parent directory's ordered pending log.
//! `sync_dir(d)` applies `d`'s log to the durable namespace and clears it. So a file
//! whose data was synced but whose directory was not can vanish on a crash, and a
//! removed or renamed-over file can come back.
//!
//! **Directories are entries too.** `create_dir_all` and `remove_dir` change the
//! current set of directories at once and append to the parent's log like a file's
//! entry: a new directory is durable only once its parent is synced. A crash that
//! loses a directory loses everything under it, however well synced (its entries
//! are unreachable).
//!
//! **Crashes.** [`SimVfs::crash`] simulates a power loss driven by a seeded PRNG
//! (same seed and same history => same result):
//! * for each directory's pending log, a random *prefix* is applied to the durable
//!   namespace (metadata is journaled, hence ordered; a rename is atomic: after a crash
//!   the target names either the old or the new inode, never a mix);
//! * for each inode's pending operations, each one independently is applied fully,
//!   dropped, or (writes only) torn. A torn write applies a random subset of the
//!   512-byte sectors it overlaps (sectors are aligned to absolute file offsets), and
//!   some of the applied sectors receive garbage instead of the data. Only the bytes
//!   the write itself covered are touched (the "powersafe overwrite" assumption:
//!   neighbouring bytes in the same sector keep their durable value). Operations are
//!   independent, so later writes may survive while earlier ones are lost (reordering).
//!   A pending `set_len` is applied or dropped.
//!
//! Then `current := durable` everywhere, every pending list is cleared, every file and
//! lock handle opened before the crash becomes dead (each call fails with
//! `ErrorKind::Other` "handle invalidated by simulated crash") and all locks are
//! released. [`SimVfs::crash_drop_all`] loses every pending operation (only synced
//! state survives); [`SimVfs::crash_keep_all`] keeps all of them (a process kill: the
//! page cache survives, but handles die and locks are released). A power loss
//! starts a new boot ([`Vfs::boot_id`] changes); a process kill does not. Each
//! inode is a file's [`VfsFile::identity`], so a copy is another file.
//!
//! **Faults.** [`SimVfs::fail_op`] makes the n-th operation (counted from the call)
//! matching an [`OpFilter`] fail with EIO or ENOSPC, once or from then on. A failed
//! operation changes nothing. Lock operations (`lock`, `try_lock`, `unlock`) are never
//! counted nor failed.
//!
//! **Locks** are per-inode exclusive advisory locks; every `open_lock` handle is a
//! distinct owner (like one `flock` open file description), so several "processes"
//! (store handles) on one `SimVfs` contend. Waiting is done on a condition variable.
//! Locks are not durable: a crash releases them all.
//!
//! # Limits of the model
//!
//! * Directories cannot be renamed; only empty ones can be removed. Paths with no
//!   parent (`""`, `/`) always exist as directories and are never lost.
//! * Paths are keys: they are compared component-wise with `.` components removed;
//!   `..` and symlinks are not resolved. There are no hard links, no permissions, no
//!   timestamps.
//! * `rename` only works within one directory (cross-directory renames fail with
//!   `ErrorKind::CrossesDevices`).
//! * Each directory's log is independent: syncing one directory never makes another
//!   directory's entries durable (stricter than ext4's global journal, like POSIX).
//! * Torn writes never damage bytes outside the written range, and a write is never
//!   torn below sector granularity except by garbage. File length changes implied by
//!   a surviving sector of an extending write are kept (the gap reads as zeros or old
//!   data).
//! * A failed `sync_dir` keeps its directory's log pending (in both sync-failure
//!   modes): only data pages are dropped by [`SyncFailure::DropsDirty`].
//! * Files are limited to [`MAX_FILE_SIZE`] bytes; each file is a `Vec<u8>`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::vfs::{OpenMode, Vfs, VfsFile, VfsLock};

/// Sector size used for torn writes.
pub const SECTOR_SIZE: u64 = 512;

/// Largest file the simulator accepts (writes or `set_len` beyond fail with
/// `ErrorKind::FileTooLarge`).
pub const MAX_FILE_SIZE: u64 = 1 << 32;

/// Which operations a fault applies to (see [`SimVfs::fail_op`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpFilter {
    /// Every counted operation (all but lock operations).
    Any,
    /// `write_at`, `set_len`.
    Write,
    /// `sync_data`, `sync_dir`.
    Sync,
    /// `read_at`, `len`, `list_dir`, `exists`.
    Read,
    /// `open` (with or without create), `rename`, `remove_file`, `create_dir_all`,
    /// `open_lock`.
    Metadata,
}

impl OpFilter {
    fn matches(self, kind: OpKind) -> bool {
        match self {
            OpFilter::Any => true,
            OpFilter::Write => kind == OpKind::Write,
            OpFilter::Sync => kind == OpKind::Sync,
            OpFilter::Read => kind == OpKind::Read,
            OpFilter::Metadata => kind == OpKind::Metadata,
        }
    }
}

/// The error an injected fault produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultError {
    /// `EIO` (raw os error 5).
    Eio,
    /// `ENOSPC` (raw os error 28).
    Enospc,
}

impl FaultError {
    /// The `io::Error` for this fault (`io::Error::from_raw_os_error`).
    pub fn to_io_error(self) -> io::Error {
        match self {
            FaultError::Eio => io::Error::from_raw_os_error(5),
            FaultError::Enospc => io::Error::from_raw_os_error(28),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpKind {
    Write = 0,
    Sync = 1,
    Read = 2,
    Metadata = 3,
}

#[derive(Debug)]
struct Fault {
    filter: OpFilter,
    nth: u64,
    seen: u64,
    error: FaultError,
    persistent: bool,
    fired: bool,
}

/// splitmix64: tiny, deterministic, good enough for choosing crash outcomes.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform-ish in `0..n` (`0` when `n == 0`).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

#[derive(Debug, Clone)]
enum PendingOp {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default)]
struct Inode {
    current: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<PendingOp>,
    /// Live (this epoch) file handles on this inode, to collect orphans.
    handles: usize,
    /// A failed sync dropped pending writes ([`SyncFailure::DropsDirty`]): `current`
    /// holds bytes that neither `durable` nor `pending` will ever have.
    lost_writes: bool,
    /// Counts the failed syncs that dropped writes ([`SyncFailure::DropsDirty`]),
    /// like Linux's per-file `errseq_t`: each handle open when one happened
    /// reports it at its next sync, once.
    err_seq: u64,
}

/// What a failed `sync_data` does to the writes it did not make durable (see the
/// module documentation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncFailure {
    /// They stay pending: readable, and a later successful sync makes them durable.
    #[default]
    KeepsDirty,
    /// Linux after a failed writeback: readable from the cache, never made durable
    /// by a later sync, lost by a power loss, kept by a process crash.
    DropsDirty,
}

#[derive(Debug, Clone)]
enum DirOp {
    Create {
        path: PathBuf,
        ino: u64,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
        ino: u64,
    },
    Remove {
        path: PathBuf,
    },
    Mkdir {
        path: PathBuf,
    },
    Rmdir {
        path: PathBuf,
    },
}

fn apply_dir_op(ns: &mut BTreeMap<PathBuf, u64>, dirs: &mut BTreeSet<PathBuf>, op: &DirOp) {
    match op {
        DirOp::Create { path, ino } => {
            ns.insert(path.clone(), *ino);
        }
        DirOp::Rename { from, to, ino } => {
            ns.remove(from);
            ns.insert(to.clone(), *ino);
        }
        DirOp::Remove { path } => {
            ns.remove(path);
        }
        DirOp::Mkdir { path } => {
            dirs.insert(path.clone());
        }
        DirOp::Rmdir { path } => {
            dirs.remove(path);
        }
    }
}

/// Whether `path` has no parent (`""`, `/`): such a directory always exists.
fn is_root(path: &Path) -> bool {
    path.parent().is_none()
}

fn apply_write(buf: &mut Vec<u8>, offset: u64, data: &[u8]) {
    // Bounds were checked against MAX_FILE_SIZE when the op was accepted.
    let start = offset as usize;
    let end = start + data.len();
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[start..end].copy_from_slice(data);
}

fn apply_op(buf: &mut Vec<u8>, op: &PendingOp) {
    match op {
        PendingOp::Write { offset, data } => apply_write(buf, *offset, data),
        PendingOp::SetLen(len) => buf.resize(*len as usize, 0),
    }
}

#[derive(Debug)]
enum CrashMode {
    Random(Rng),
    DropAll,
    KeepAll,
}

#[derive(Debug, Default)]
struct State {
    /// Bumped by every crash; handles from older epochs are dead.
    epoch: u64,
    /// Bumped by every power loss (not by a process crash, which keeps the
    /// cache): what [`Vfs::boot_id`] returns.
    boot: u64,
    next_ino: u64,
    next_owner: u64,
    inodes: BTreeMap<u64, Inode>,
    /// Directories as reads see them (the roots are implicit).
    dirs: BTreeSet<PathBuf>,
    /// Directories a power loss keeps (their entries in their parents synced).
    durable_dirs: BTreeSet<PathBuf>,
    sync_failure: SyncFailure,
    current: BTreeMap<PathBuf, u64>,
    durable: BTreeMap<PathBuf, u64>,
    /// Pending (not yet `sync_dir`ed) namespace changes, per parent directory.
    dir_logs: BTreeMap<PathBuf, Vec<DirOp>>,
    /// inode -> owner id of the handle holding its lock.
    locks: BTreeMap<u64, u64>,
    faults: Vec<Fault>,
    counts: [u64; 4],
    /// Bytes returned by `read_at` so far.
    bytes_read: u64,
    /// Armed silent corruptions: `(path substring, nth matching write, seen)`.
    silent: Vec<(String, u64, u64)>,
    /// Path substrings whose opens for writing wait (see [`SimVfs::hold_opens`]).
    holds: Vec<String>,
    /// Opens waiting on a hold now.
    held: usize,
}

fn norm(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

fn parent_of(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn err(kind: io::ErrorKind, msg: String) -> io::Error {
    io::Error::new(kind, format!("SimVfs: {msg}"))
}

fn dead() -> io::Error {
    io::Error::other("handle invalidated by simulated crash")
}

fn check_range(offset: u64, len: u64) -> io::Result<()> {
    match offset.checked_add(len) {
        Some(end) if end <= MAX_FILE_SIZE => Ok(()),
        _ => Err(err(
            io::ErrorKind::FileTooLarge,
            format!("offset {offset} + {len} bytes exceeds the simulated maximum file size"),
        )),
    }
}

impl State {
    /// Counts an operation and applies fault injection.
    fn begin(&mut self, kind: OpKind) -> io::Result<()> {
        self.counts[kind as usize] += 1;
        let mut failure = None;
        self.faults.retain_mut(|f| {
            if !f.filter.matches(kind) {
                return true;
            }
            if f.fired {
                // Only persistent faults stay around after firing.
                failure.get_or_insert(f.error);
                return true;
            }
            f.seen += 1;
            if f.seen >= f.nth {
                failure.get_or_insert(f.error);
                f.fired = true;
                return f.persistent;
            }
            true
        });
        match failure {
            Some(e) => Err(e.to_io_error()),
            None => Ok(()),
        }
    }

    fn is_dir(&self, path: &Path) -> bool {
        is_root(path) || self.dirs.contains(path)
    }

    fn require_parent_dir(&self, path: &Path) -> io::Result<PathBuf> {
        let parent = parent_of(path);
        if self.is_dir(&parent) {
            Ok(parent)
        } else if self.current.contains_key(&parent) {
            Err(err(
                io::ErrorKind::NotADirectory,
                format!("{}: parent is not a directory", path.display()),
            ))
        } else {
            Err(err(
                io::ErrorKind::NotFound,
                format!("{}: parent directory does not exist", path.display()),
            ))
        }
    }

    fn log(&mut self, dir: PathBuf, op: DirOp) {
        self.dir_logs.entry(dir).or_default().push(op);
    }

    /// Looks up or creates the file at `path` (normalized). Returns the inode.
    fn open_inode(&mut self, path: &Path, mode: OpenMode) -> io::Result<u64> {
        let parent = self.require_parent_dir(path)?;
        if self.is_dir(path) {
            return Err(err(
                io::ErrorKind::IsADirectory,
                format!("{}: is a directory", path.display()),
            ));
        }
        match (self.current.get(path).copied(), mode) {
            (Some(_), OpenMode::CreateNew) => Err(err(
                io::ErrorKind::AlreadyExists,
                format!("{}: file exists", path.display()),
            )),
            (Some(ino), _) => Ok(ino),
            (None, OpenMode::Read | OpenMode::ReadWrite) => Err(err(
                io::ErrorKind::NotFound,
                format!("{}: no such file", path.display()),
            )),
            (None, OpenMode::CreateReadWrite | OpenMode::CreateNew) => {
                let ino = self.next_ino;
                self.next_ino += 1;
                self.inodes.insert(ino, Inode::default());
                self.current.insert(path.to_path_buf(), ino);
                self.log(
                    parent,
                    DirOp::Create {
                        path: path.to_path_buf(),
                        ino,
                    },
                );
                Ok(ino)
            }
        }
    }

    fn inode(&mut self, ino: u64) -> io::Result<&mut Inode> {
        self.inodes
            .get_mut(&ino)
            .ok_or_else(|| io::Error::other(format!("SimVfs: inode {ino} vanished")))
    }

    /// Drops inodes that no name (current, durable, or in a pending directory log,
    /// which a crash may make durable) and no live handle refers to.
    fn gc(&mut self) {
        let logged = self.dir_logs.values().flatten().filter_map(|op| match op {
            DirOp::Create { ino, .. } | DirOp::Rename { ino, .. } => Some(ino),
            DirOp::Remove { .. } | DirOp::Mkdir { .. } | DirOp::Rmdir { .. } => None,
        });
        let referenced: BTreeSet<u64> = self
            .current
            .values()
            .chain(self.durable.values())
            .chain(logged)
            .copied()
            .collect();
        self.inodes
            .retain(|ino, inode| inode.handles > 0 || referenced.contains(ino));
    }

    fn crash(&mut self, mut mode: CrashMode) {
        // Directory logs: an ordered prefix of each survives.
        let logs = std::mem::take(&mut self.dir_logs);
        for log in logs.values() {
            let keep = match &mut mode {
                CrashMode::Random(rng) => rng.below(log.len() as u64 + 1) as usize,
                CrashMode::DropAll => 0,
                CrashMode::KeepAll => log.len(),
            };
            for op in &log[..keep] {
                apply_dir_op(&mut self.durable, &mut self.durable_dirs, op);
            }
        }
        // A directory survives only with its parent (sorted: parents come first); an
        // entry only with its directory.
        let mut kept = BTreeSet::new();
        for d in std::mem::take(&mut self.durable_dirs) {
            if is_root(&parent_of(&d)) || kept.contains(&parent_of(&d)) {
                kept.insert(d);
            }
        }
        self.durable
            .retain(|p, _| is_root(&parent_of(p)) || kept.contains(&parent_of(p)));
        self.dirs = kept.clone();
        self.durable_dirs = kept;
        let keep_cache = matches!(mode, CrashMode::KeepAll);
        if !keep_cache {
            self.boot += 1;
        }
        // Data: each pending op independently applied, dropped or torn.
        for inode in self.inodes.values_mut() {
            inode.handles = 0;
            let pending = std::mem::take(&mut inode.pending);
            if inode.lost_writes && !keep_cache {
                // The cache held the only copy of the dropped writes.
                inode.lost_writes = false;
                inode.current = inode.durable.clone();
            }
            if pending.is_empty() {
                continue;
            }
            for op in &pending {
                match &mut mode {
                    CrashMode::DropAll => {}
                    CrashMode::KeepAll => apply_op(&mut inode.durable, op),
                    CrashMode::Random(rng) => match op {
                        PendingOp::SetLen(_) => {
                            if rng.below(2) == 0 {
                                apply_op(&mut inode.durable, op);
                            }
                        }
                        PendingOp::Write { offset, data } => match rng.below(3) {
                            0 => apply_op(&mut inode.durable, op),
                            1 => {}
                            _ => tear_write(&mut inode.durable, *offset, data, rng),
                        },
                    },
                }
            }
            if !inode.lost_writes {
                inode.current = inode.durable.clone();
            }
            // Else a process crash: the page cache, dropped writes and all, stays
            // what reads see (`current` already holds every pending write too).
        }
        self.current = self.durable.clone();
        self.locks.clear();
        self.epoch += 1;
        self.gc();
    }
}

/// Applies a random subset of the sectors `data` at `offset` overlaps; some applied
/// sectors get garbage instead of the data. Only bytes inside the write are touched.
fn tear_write(buf: &mut Vec<u8>, offset: u64, data: &[u8], rng: &mut Rng) {
    if data.is_empty() {
        return;
    }
    let end = offset + data.len() as u64;
    let first = offset / SECTOR_SIZE;
    let last = (end - 1) / SECTOR_SIZE;
    for sector in first..=last {
        let lo = offset.max(sector * SECTOR_SIZE);
        let hi = end.min((sector + 1) * SECTOR_SIZE);
        let part = &data[(lo - offset) as usize..(hi - offset) as usize];
        match rng.below(5) {
            0 | 1 => apply_write(buf, lo, part),
            2 | 3 => {}
            _ => {
                let garbage: Vec<u8> = (0..part.len()).map(|_| rng.next_u64() as u8).collect();
                apply_write(buf, lo, &garbage);
            }
        }
    }
}

struct Inner {
    state: Mutex<State>,
    cond: Condvar,
    /// Microseconds each `sync_data` waits before it runs (outside the state lock).
    sync_latency_us: std::sync::atomic::AtomicU64,
}

/// An in-memory simulated disk with crash simulation and fault injection. See the
/// module documentation for the model. Use it as `Arc<SimVfs>`.
pub struct SimVfs {
    inner: Arc<Inner>,
}

impl fmt::Debug for SimVfs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SimVfs");
        match self.inner.state.try_lock() {
            Some(st) => d
                .field("epoch", &st.epoch)
                .field("dirs", &st.dirs.len())
                .field("files", &st.current.len())
                .field("inodes", &st.inodes.len())
                .field("locks", &st.locks.len())
                .field("faults", &st.faults.len())
                .finish(),
            None => d.finish_non_exhaustive(),
        }
    }
}

impl SimVfs {
    /// An empty simulated disk (only the roots `""` and `/` exist).
    pub fn new() -> Arc<SimVfs> {
        Arc::new(SimVfs {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                cond: Condvar::new(),
                sync_latency_us: Default::default(),
            }),
        })
    }

    fn with_op<R>(
        &self,
        kind: OpKind,
        f: impl FnOnce(&mut State) -> io::Result<R>,
    ) -> io::Result<R> {
        let mut st = self.inner.state.lock();
        st.begin(kind)?;
        f(&mut st)
    }

    fn new_file(&self, st: &mut State, path: PathBuf, ino: u64, writable: bool) -> SimFile {
        if let Some(inode) = st.inodes.get_mut(&ino) {
            inode.handles += 1;
        }
        let err_seq = st.inodes.get(&ino).map_or(0, |i| i.err_seq);
        SimFile {
            inner: self.inner.clone(),
            path,
            ino,
            epoch: st.epoch,
            writable,
            seen_err: AtomicU64::new(err_seq),
        }
    }

    /// Simulated power loss, outcome chosen by a PRNG seeded with `seed` (see the
    /// module doc). Deterministic for a given history and seed.
    pub fn crash(&self, seed: u64) {
        self.crash_with(CrashMode::Random(Rng(seed)));
    }

    /// Power loss that drops every pending operation: only synced data and synced
    /// directory entries survive.
    pub fn crash_drop_all(&self) {
        self.crash_with(CrashMode::DropAll);
    }

    /// Process crash: all current state is kept (as if the page cache were written
    /// back), but every handle dies and every lock is released.
    pub fn crash_keep_all(&self) {
        self.crash_with(CrashMode::KeepAll);
    }

    fn crash_with(&self, mode: CrashMode) {
        self.inner.state.lock().crash(mode);
        self.inner.cond.notify_all();
    }

    /// Arms a fault: counting operations matching `filter` from now on, the `nth`
    /// (1-based; 0 behaves like 1) fails with `error`; if `persistent`, every later
    /// matching operation fails too, until [`SimVfs::clear_faults`]. Several faults
    /// may be armed at once; each operation advances all of their counters.
    pub fn fail_op(&self, nth: u64, filter: OpFilter, error: FaultError, persistent: bool) {
        self.inner.state.lock().faults.push(Fault {
            filter,
            nth: nth.max(1),
            seen: 0,
            error,
            persistent,
            fired: false,
        });
    }

    /// Makes every `sync_data` take `latency` (spent before it runs, without
    /// holding the simulator's lock), as a device's flush does: concurrent
    /// committers then queue behind a sync and group commit forms batches. Pacing
    /// only; nothing in the model depends on time.
    pub fn set_sync_latency(&self, latency: Duration) {
        self.inner.sync_latency_us.store(
            latency.as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Sets what a failed `sync_data` does from now on (see [`SyncFailure`]).
    pub fn set_sync_failure(&self, mode: SyncFailure) {
        self.inner.state.lock().sync_failure = mode;
    }

    /// Disarms all faults.
    pub fn clear_faults(&self) {
        let mut st = self.inner.state.lock();
        st.faults.clear();
        st.silent.clear();
    }

    /// Arms a silent corruption: the `nth` (1-based) write to a file whose path
    /// contains `path_contains` succeeds, but one bit of what it stores is flipped
    /// (a disk or controller that lies). Not counted as a fault; fires once.
    pub fn corrupt_nth_write(&self, nth: u64, path_contains: &str) {
        self.inner
            .state
            .lock()
            .silent
            .push((path_contains.to_string(), nth.max(1), 0));
    }

    /// Makes every later open for writing of a path containing `path_contains`
    /// wait (before it counts as an operation) until [`SimVfs::release_holds`]:
    /// a test can stop a thread at a known point (a checkpoint about to write its
    /// run, say) and look at what the other threads do meanwhile.
    pub fn hold_opens(&self, path_contains: &str) {
        self.inner
            .state
            .lock()
            .holds
            .push(path_contains.to_string());
    }

    /// Lets every held open go on, and holds no more.
    pub fn release_holds(&self) {
        self.inner.state.lock().holds.clear();
        self.inner.cond.notify_all();
    }

    /// Blocks until at least `n` opens are waiting on a hold.
    pub fn wait_until_held(&self, n: usize) {
        let mut st = self.inner.state.lock();
        while st.held < n {
            self.inner.cond.wait(&mut st);
        }
    }

    fn wait_for_holds(&self, path: &Path) {
        let mut st = self.inner.state.lock();
        let p = path.to_string_lossy().into_owned();
        if !st.holds.iter().any(|h| p.contains(h.as_str())) {
            return;
        }
        st.held += 1;
        self.inner.cond.notify_all();
        while st.holds.iter().any(|h| p.contains(h.as_str())) {
            self.inner.cond.wait(&mut st);
        }
        st.held -= 1;
    }

    /// Operations of all kinds so far (lock operations are not counted). Failed
    /// operations count; calls on dead handles do not.
    pub fn op_count(&self) -> u64 {
        self.inner.state.lock().counts.iter().sum()
    }

    /// Bytes all `read_at` calls returned so far.
    pub fn bytes_read(&self) -> u64 {
        self.inner.state.lock().bytes_read
    }

    /// Operations matching `filter` so far.
    pub fn ops_matching(&self, filter: OpFilter) -> u64 {
        let st = self.inner.state.lock();
        [OpKind::Write, OpKind::Sync, OpKind::Read, OpKind::Metadata]
            .into_iter()
            .filter(|k| filter.matches(*k))
            .map(|k| st.counts[k as usize])
            .sum()
    }

    /// Pending (not yet durable) operations: data operations on all inodes plus
    /// directory entry changes.
    pub fn pending_ops(&self) -> usize {
        let st = self.inner.state.lock();
        st.inodes.values().map(|i| i.pending.len()).sum::<usize>()
            + st.dir_logs.values().map(Vec::len).sum::<usize>()
    }

    /// The durable length of the file the durable namespace names `path`, if any.
    pub fn durable_len(&self, path: &Path) -> Option<u64> {
        let st = self.inner.state.lock();
        let ino = st.durable.get(&norm(path))?;
        st.inodes.get(ino).map(|i| i.durable.len() as u64)
    }

    /// The durable bytes of the file the durable namespace names `path`, if any:
    /// what [`SimVfs::crash_drop_all`] would leave.
    pub fn read_durable(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.inner.state.lock();
        let ino = st.durable.get(&norm(path))?;
        st.inodes.get(ino).map(|i| i.durable.clone())
    }

    /// The current bytes of the file at `path`, if any (no operation is counted).
    pub fn read_current(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.inner.state.lock();
        let ino = st.current.get(&norm(path))?;
        st.inodes.get(ino).map(|i| i.current.clone())
    }

    /// Overwrites `bytes` at `offset` in both the current and the durable contents of
    /// the file at `path` (looked up in the current namespace, else the durable one),
    /// extending with zeros if needed. Meant for bit-rot tests; not counted, never
    /// failed. If the file has pending writes, the corruption is also appended to them
    /// so a later `sync_data` keeps it.
    ///
    /// # Panics
    /// If no file is named `path`.
    pub fn corrupt(&self, path: &Path, offset: u64, bytes: &[u8]) {
        let path = norm(path);
        check_range(offset, bytes.len() as u64).expect("SimVfs::corrupt: range too large");
        let mut st = self.inner.state.lock();
        let ino = *st
            .current
            .get(&path)
            .or_else(|| st.durable.get(&path))
            .unwrap_or_else(|| panic!("SimVfs::corrupt: no file {}", path.display()));
        let inode = st.inodes.get_mut(&ino).expect("named inode exists");
        apply_write(&mut inode.current, offset, bytes);
        apply_write(&mut inode.durable, offset, bytes);
        if !inode.pending.is_empty() {
            inode.pending.push(PendingOp::Write {
                offset,
                data: bytes.to_vec(),
            });
        }
    }
}

impl Vfs for SimVfs {
    fn boot_id(&self) -> Option<[u8; 16]> {
        // Never all zeros (which DURABLE reads as no token).
        let mut id = *b"\0\0\0\0\0\0\0\0SIMBOOT!";
        id[..8].copy_from_slice(&self.inner.state.lock().boot.to_le_bytes());
        Some(id)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        let path = norm(path);
        if mode != OpenMode::Read {
            self.wait_for_holds(&path);
        }
        self.with_op(OpKind::Metadata, |st| {
            let ino = st.open_inode(&path, mode)?;
            let writable = mode != OpenMode::Read;
            Ok(Arc::new(self.new_file(st, path, ino, writable)) as Arc<dyn VfsFile>)
        })
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let path = norm(path);
        self.with_op(OpKind::Read, |st| {
            Ok(st.is_dir(&path) || st.current.contains_key(&path))
        })
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let path = norm(path);
        self.with_op(OpKind::Metadata, |st| {
            let mut new = Vec::new();
            for dir in path.ancestors() {
                if st.is_dir(dir) {
                    break;
                }
                if st.current.contains_key(dir) {
                    return Err(err(
                        io::ErrorKind::AlreadyExists,
                        format!("{}: exists and is not a directory", dir.display()),
                    ));
                }
                new.push(dir.to_path_buf());
            }
            // Outermost first: each new directory is an entry in its parent's log.
            for dir in new.into_iter().rev() {
                st.dirs.insert(dir.clone());
                st.log(parent_of(&dir), DirOp::Mkdir { path: dir });
            }
            Ok(())
        })
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let path = norm(path);
        self.with_op(OpKind::Metadata, |st| {
            if is_root(&path) || !st.dirs.contains(&path) {
                return Err(err(
                    io::ErrorKind::NotFound,
                    format!("remove_dir {}: no such directory", path.display()),
                ));
            }
            let busy = st
                .current
                .keys()
                .chain(st.dirs.iter())
                .any(|p| p.parent() == Some(path.as_path()));
            if busy {
                return Err(err(
                    io::ErrorKind::DirectoryNotEmpty,
                    format!("remove_dir {}: not empty", path.display()),
                ));
            }
            st.dirs.remove(&path);
            st.log(parent_of(&path), DirOp::Rmdir { path });
            Ok(())
        })
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let path = norm(path);
        self.with_op(OpKind::Read, |st| {
            if !st.is_dir(&path) {
                let kind = if st.current.contains_key(&path) {
                    io::ErrorKind::NotADirectory
                } else {
                    io::ErrorKind::NotFound
                };
                return Err(err(kind, format!("list_dir {}", path.display())));
            }
            let mut names: Vec<String> = st
                .current
                .keys()
                .chain(st.dirs.iter())
                .filter(|p| p.parent() == Some(path.as_path()))
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .collect();
            names.sort();
            names.dedup();
            Ok(names)
        })
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from, to) = (norm(from), norm(to));
        self.with_op(OpKind::Metadata, |st| {
            let from_dir = st.require_parent_dir(&from)?;
            let to_dir = st.require_parent_dir(&to)?;
            if st.is_dir(&from) {
                return Err(err(
                    io::ErrorKind::Unsupported,
                    format!(
                        "rename {}: renaming directories is not simulated",
                        from.display()
                    ),
                ));
            }
            let ino = *st.current.get(&from).ok_or_else(|| {
                err(
                    io::ErrorKind::NotFound,
                    format!("rename {}: no such file", from.display()),
                )
            })?;
            if st.is_dir(&to) {
                return Err(err(
                    io::ErrorKind::IsADirectory,
                    format!("rename to {}: is a directory", to.display()),
                ));
            }
            if from_dir != to_dir {
                return Err(err(
                    io::ErrorKind::CrossesDevices,
                    format!(
                        "rename {} -> {}: cross-directory renames are not simulated",
                        from.display(),
                        to.display()
                    ),
                ));
            }
            if from == to {
                return Ok(());
            }
            st.current.remove(&from);
            st.current.insert(to.clone(), ino);
            st.log(from_dir, DirOp::Rename { from, to, ino });
            st.gc();
            Ok(())
        })
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let path = norm(path);
        self.with_op(OpKind::Metadata, |st| {
            let dir = st.require_parent_dir(&path)?;
            if st.is_dir(&path) {
                return Err(err(
                    io::ErrorKind::IsADirectory,
                    format!("remove_file {}: is a directory", path.display()),
                ));
            }
            if st.current.remove(&path).is_none() {
                return Err(err(
                    io::ErrorKind::NotFound,
                    format!("remove_file {}: no such file", path.display()),
                ));
            }
            st.log(dir, DirOp::Remove { path });
            st.gc();
            Ok(())
        })
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let path = norm(path);
        self.with_op(OpKind::Sync, |st| {
            if !st.is_dir(&path) {
                if st.current.contains_key(&path) {
                    // Like fsync on a regular file opened read-only: nothing to do for
                    // directory entries.
                    return Ok(());
                }
                return Err(err(
                    io::ErrorKind::NotFound,
                    format!("sync_dir {}: no such directory", path.display()),
                ));
            }
            if let Some(log) = st.dir_logs.remove(&path) {
                let st = &mut *st;
                for op in &log {
                    apply_dir_op(&mut st.durable, &mut st.durable_dirs, op);
                }
                st.gc();
            }
            Ok(())
        })
    }

    fn open_lock(&self, path: &Path) -> io::Result<Box<dyn VfsLock>> {
        let path = norm(path);
        self.with_op(OpKind::Metadata, |st| {
            let ino = st.open_inode(&path, OpenMode::CreateReadWrite)?;
            let owner = st.next_owner;
            st.next_owner += 1;
            let file = self.new_file(st, path, ino, true);
            Ok(Box::new(SimLock { file, owner }) as Box<dyn VfsLock>)
        })
    }
}

/// A file handle on a [`SimVfs`] inode.
struct SimFile {
    inner: Arc<Inner>,
    path: PathBuf,
    ino: u64,
    epoch: u64,
    writable: bool,
    /// The inode's `err_seq` this handle has reported (or that was current when
    /// it was opened).
    seen_err: AtomicU64,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile")
            .field("path", &self.path)
            .field("ino", &self.ino)
            .field("epoch", &self.epoch)
            .field("writable", &self.writable)
            .finish()
    }
}

impl SimFile {
    fn with_op<R>(
        &self,
        kind: OpKind,
        f: impl FnOnce(&mut Inode) -> io::Result<R>,
    ) -> io::Result<R> {
        let mut st = self.inner.state.lock();
        if st.epoch != self.epoch {
            return Err(dead());
        }
        st.begin(kind)?;
        if kind == OpKind::Write && !self.writable {
            return Err(io::Error::from_raw_os_error(9)); // EBADF
        }
        f(st.inode(self.ino)?)
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mut st = self.inner.state.lock();
        if st.epoch != self.epoch {
            return;
        }
        if let Some(inode) = st.inodes.get_mut(&self.ino) {
            inode.handles = inode.handles.saturating_sub(1);
            if inode.handles == 0 {
                st.gc();
            }
        }
    }
}

impl VfsFile for SimFile {
    fn identity(&self) -> Option<(u64, u64)> {
        Some((0, self.ino))
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let n = self.with_op(OpKind::Read, |inode| {
            let len = inode.current.len() as u64;
            if offset >= len {
                return Ok(0);
            }
            let start = offset as usize;
            let n = buf.len().min(inode.current.len() - start);
            buf[..n].copy_from_slice(&inode.current[start..start + n]);
            Ok(n)
        })?;
        self.inner.state.lock().bytes_read += n as u64;
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let flip = {
            let mut st = self.inner.state.lock();
            let path = self.path.to_string_lossy();
            let mut hit = false;
            for (needle, nth, seen) in st.silent.iter_mut() {
                if path.contains(needle.as_str()) {
                    *seen += 1;
                    hit |= *seen == *nth;
                }
            }
            hit && !buf.is_empty()
        };
        let mut data = buf.to_vec();
        if flip {
            let mid = data.len() / 2;
            data[mid] ^= 0x10;
        }
        self.with_op(OpKind::Write, |inode| {
            check_range(offset, data.len() as u64)?;
            if data.is_empty() {
                return Ok(());
            }
            apply_write(&mut inode.current, offset, &data);
            inode.pending.push(PendingOp::Write { offset, data });
            Ok(())
        })
    }

    fn len(&self) -> io::Result<u64> {
        self.with_op(OpKind::Read, |inode| Ok(inode.current.len() as u64))
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with_op(OpKind::Write, |inode| {
            check_range(0, len)?;
            let op = PendingOp::SetLen(len);
            apply_op(&mut inode.current, &op);
            inode.pending.push(op);
            Ok(())
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        let latency = self
            .inner
            .sync_latency_us
            .load(std::sync::atomic::Ordering::Relaxed);
        if latency > 0 {
            std::thread::sleep(Duration::from_micros(latency));
        }
        let mut st = self.inner.state.lock();
        if st.epoch != self.epoch {
            return Err(dead());
        }
        let failed = st.begin(OpKind::Sync);
        let drops = st.sync_failure == SyncFailure::DropsDirty;
        let inode = st.inode(self.ino)?;
        if let Err(e) = failed {
            if drops && !inode.pending.is_empty() {
                // Marked clean, never written: readable until a power loss.
                inode.pending.clear();
                inode.lost_writes = true;
                inode.err_seq += 1;
                self.seen_err.store(inode.err_seq, SeqCst);
            }
            return Err(e);
        }
        for op in std::mem::take(&mut inode.pending) {
            apply_op(&mut inode.durable, &op);
        }
        if self.seen_err.swap(inode.err_seq, SeqCst) < inode.err_seq {
            // Another handle's sync failed and dropped writes since this one
            // last synced: the writeback above happened, and the error is
            // reported here too (Linux since 4.13).
            return Err(io::Error::from_raw_os_error(5));
        }
        debug_assert!(inode.lost_writes || inode.durable == inode.current);
        Ok(())
    }
}

/// An exclusive lock handle; a distinct owner per `open_lock` call.
#[derive(Debug)]
struct SimLock {
    file: SimFile,
    owner: u64,
}

impl VfsLock for SimLock {
    fn lock(&self, timeout: Duration) -> io::Result<bool> {
        let deadline = Instant::now().checked_add(timeout);
        let inner = &self.file.inner;
        let mut st = inner.state.lock();
        loop {
            if st.epoch != self.file.epoch {
                return Err(dead());
            }
            match st.locks.get(&self.file.ino) {
                None => {
                    st.locks.insert(self.file.ino, self.owner);
                    return Ok(true);
                }
                Some(&o) if o == self.owner => return Ok(true),
                Some(_) => {}
            }
            match deadline {
                Some(d) => {
                    if Instant::now() >= d {
                        return Ok(false);
                    }
                    inner.cond.wait_until(&mut st, d);
                }
                None => inner.cond.wait(&mut st),
            }
        }
    }

    fn try_lock(&self) -> io::Result<bool> {
        self.lock(Duration::ZERO)
    }

    fn unlock(&self) -> io::Result<()> {
        let mut st = self.file.inner.state.lock();
        if st.epoch != self.file.epoch {
            return Err(dead());
        }
        if st.locks.get(&self.file.ino) == Some(&self.owner) {
            st.locks.remove(&self.file.ino);
            drop(st);
            self.file.inner.cond.notify_all();
        }
        Ok(())
    }

    fn file(&self) -> &dyn VfsFile {
        &self.file
    }
}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut st = self.file.inner.state.lock();
        if st.epoch == self.file.epoch && st.locks.get(&self.file.ino) == Some(&self.owner) {
            st.locks.remove(&self.file.ino);
            drop(st);
            self.file.inner.cond.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    /// `/db/wal`, durable (each directory's entry synced in its parent).
    fn setup() -> Arc<SimVfs> {
        let vfs = SimVfs::new();
        vfs.create_dir_all(p("/db/wal")).unwrap();
        vfs.sync_dir(p("/")).unwrap();
        vfs.sync_dir(p("/db")).unwrap();
        vfs
    }

    /// Creates `path` with `data`, synced and with its directory synced.
    fn durable_file(vfs: &SimVfs, path: &str, data: &[u8]) {
        let f = vfs.open(p(path), OpenMode::CreateNew).unwrap();
        f.write_at(data, 0).unwrap();
        f.sync_data().unwrap();
        vfs.sync_dir(Path::new(path).parent().unwrap()).unwrap();
    }

    fn read(vfs: &SimVfs, path: &str) -> Option<Vec<u8>> {
        match vfs.open(p(path), OpenMode::Read) {
            Ok(f) => Some(f.read_all().unwrap()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => panic!("open {path}: {e}"),
        }
    }

    /// Every file under every directory with its contents.
    fn snapshot(vfs: &SimVfs) -> BTreeMap<PathBuf, Vec<u8>> {
        let st = vfs.inner.state.lock();
        st.current
            .iter()
            .map(|(k, ino)| (k.clone(), st.inodes[ino].current.clone()))
            .collect()
    }

    fn is_dead(e: &io::Error) -> bool {
        e.kind() == io::ErrorKind::Other && e.to_string() == "handle invalidated by simulated crash"
    }

    #[test]
    fn is_send_sync_static_and_usable_as_dyn_vfs() {
        fn assert<T: Send + Sync + fmt::Debug + 'static>() {}
        assert::<SimVfs>();
        let vfs: Arc<dyn Vfs> = SimVfs::new();
        vfs.create_dir_all(p("a")).unwrap();
        assert!(vfs.exists(p("a")).unwrap());
        assert!(!format!("{vfs:?}").is_empty());
    }

    #[test]
    fn basic_read_write_len_set_len() {
        let vfs = setup();
        let f = vfs.open(p("/db/x"), OpenMode::CreateReadWrite).unwrap();
        assert_eq!(f.len().unwrap(), 0);
        f.write_at(b"hello", 3).unwrap();
        assert_eq!(f.read_all().unwrap(), b"\0\0\0hello");
        let mut buf = [0u8; 16];
        assert_eq!(f.read_at(&mut buf, 5).unwrap(), 3);
        assert_eq!(&buf[..3], b"llo");
        assert_eq!(f.read_at(&mut buf, 8).unwrap(), 0);
        assert_eq!(f.read_at(&mut buf, 100).unwrap(), 0);
        f.set_len(4).unwrap();
        assert_eq!(f.read_all().unwrap(), b"\0\0\0h");
        f.set_len(6).unwrap();
        assert_eq!(f.read_all().unwrap(), b"\0\0\0h\0\0");
        let mut exact = [0u8; 8];
        let e = f.read_exact_at(&mut exact, 0).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        // A second handle sees the same inode.
        let g = vfs.open(p("/db/x"), OpenMode::ReadWrite).unwrap();
        assert_eq!(g.len().unwrap(), 6);
        // Read-only handles cannot write.
        let r = vfs.open(p("/db/x"), OpenMode::Read).unwrap();
        assert_eq!(r.write_at(b"z", 0).unwrap_err().raw_os_error(), Some(9));
        assert!(f.write_at(b"x", MAX_FILE_SIZE).is_err());
    }

    #[test]
    fn open_modes_and_missing_paths() {
        let vfs = setup();
        let e = vfs.open(p("/db/none"), OpenMode::Read).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e = vfs.open(p("/db/none"), OpenMode::ReadWrite).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e = vfs
            .open(p("/nodir/x"), OpenMode::CreateReadWrite)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e = vfs.open_lock(p("/nodir/LOCK")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        vfs.open(p("/db/x"), OpenMode::CreateNew).unwrap();
        let e = vfs.open(p("/db/x"), OpenMode::CreateNew).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        vfs.open(p("/db/x"), OpenMode::CreateReadWrite).unwrap();
        let e = vfs.open(p("/db/wal"), OpenMode::Read).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::IsADirectory);
        let e = vfs.create_dir_all(p("/db/x/sub")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        let e = vfs.rename(p("/db/none"), p("/db/y")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e = vfs.rename(p("/nodir/a"), p("/db/y")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e = vfs.remove_file(p("/db/none")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e = vfs.sync_dir(p("/nodir")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        // "./" and "//" are normalized away.
        assert!(vfs.exists(p("/db//./x")).unwrap());
    }

    #[test]
    fn list_dir_sorted_with_subdirs() {
        let vfs = setup();
        for name in ["c", "a", "b"] {
            vfs.open(&Path::new("/db").join(name), OpenMode::CreateNew)
                .unwrap();
        }
        vfs.create_dir_all(p("/db/sub/deeper")).unwrap();
        assert_eq!(
            vfs.list_dir(p("/db")).unwrap(),
            vec!["a", "b", "c", "sub", "wal"]
        );
        assert_eq!(vfs.list_dir(p("/db/sub")).unwrap(), vec!["deeper"]);
        assert!(vfs.list_dir(p("/db/wal")).unwrap().is_empty());
        assert_eq!(vfs.list_dir(p("/")).unwrap(), vec!["db"]);
        let e = vfs.list_dir(p("/nope")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        vfs.remove_file(p("/db/b")).unwrap();
        vfs.rename(p("/db/c"), p("/db/d")).unwrap();
        assert_eq!(
            vfs.list_dir(p("/db")).unwrap(),
            vec!["a", "d", "sub", "wal"]
        );
        // Relative paths work too.
        vfs.create_dir_all(p("rel/dir")).unwrap();
        vfs.open(p("rel/dir/f"), OpenMode::CreateNew).unwrap();
        assert_eq!(vfs.list_dir(p("rel/dir")).unwrap(), vec!["f"]);
        assert_eq!(vfs.list_dir(p("")).unwrap(), vec!["rel"]);
    }

    #[test]
    fn synced_data_survives_every_crash() {
        for mode in 0..12u64 {
            let vfs = setup();
            durable_file(&vfs, "/db/wal/1.wal", b"committed");
            match mode {
                0 => vfs.crash_drop_all(),
                1 => vfs.crash_keep_all(),
                seed => vfs.crash(seed),
            }
            assert_eq!(read(&vfs, "/db/wal/1.wal").unwrap(), b"committed");
            assert_eq!(vfs.pending_ops(), 0);
            // Directories always survive.
            assert!(vfs.exists(p("/db/wal")).unwrap());
        }
    }

    #[test]
    fn unsynced_write_lost_by_drop_all_kept_by_keep_all() {
        let vfs = setup();
        durable_file(&vfs, "/db/f", b"old!");
        let f = vfs.open(p("/db/f"), OpenMode::ReadWrite).unwrap();
        f.write_at(b"new", 0).unwrap();
        f.write_at(b"tail", 10).unwrap();
        assert_eq!(vfs.pending_ops(), 2);
        assert_eq!(vfs.durable_len(p("/db/f")), Some(4));
        assert_eq!(vfs.read_durable(p("/db/f")).unwrap(), b"old!");
        vfs.crash_drop_all();
        assert_eq!(read(&vfs, "/db/f").unwrap(), b"old!");

        let f = vfs.open(p("/db/f"), OpenMode::ReadWrite).unwrap();
        f.write_at(b"new", 0).unwrap();
        vfs.crash_keep_all();
        assert_eq!(read(&vfs, "/db/f").unwrap(), b"new!");
        assert_eq!(vfs.read_durable(p("/db/f")).unwrap(), b"new!");
    }

    #[test]
    fn unsynced_set_len_lost_by_drop_all() {
        let vfs = setup();
        durable_file(&vfs, "/db/f", b"0123456789");
        let f = vfs.open(p("/db/f"), OpenMode::ReadWrite).unwrap();
        f.set_len(3).unwrap();
        vfs.crash_drop_all();
        assert_eq!(read(&vfs, "/db/f").unwrap(), b"0123456789");
        let f = vfs.open(p("/db/f"), OpenMode::ReadWrite).unwrap();
        f.set_len(3).unwrap();
        f.sync_data().unwrap();
        vfs.crash_drop_all();
        assert_eq!(read(&vfs, "/db/f").unwrap(), b"012");
    }

    #[test]
    fn created_file_needs_dir_sync() {
        let vfs = setup();
        let f = vfs.open(p("/db/wal/2.wal"), OpenMode::CreateNew).unwrap();
        f.write_at(b"data", 0).unwrap();
        f.sync_data().unwrap();
        assert_eq!(vfs.durable_len(p("/db/wal/2.wal")), None);
        vfs.crash_drop_all();
        assert!(!vfs.exists(p("/db/wal/2.wal")).unwrap());
        assert!(vfs.list_dir(p("/db/wal")).unwrap().is_empty());

        let f = vfs.open(p("/db/wal/2.wal"), OpenMode::CreateNew).unwrap();
        f.write_at(b"data", 0).unwrap();
        f.sync_data().unwrap();
        // Syncing a different directory does not help.
        vfs.sync_dir(p("/db")).unwrap();
        assert_eq!(vfs.durable_len(p("/db/wal/2.wal")), None);
        vfs.sync_dir(p("/db/wal")).unwrap();
        assert_eq!(vfs.durable_len(p("/db/wal/2.wal")), Some(4));
        vfs.crash_drop_all();
        assert_eq!(read(&vfs, "/db/wal/2.wal").unwrap(), b"data");
    }

    #[test]
    fn name_synced_but_data_not_gives_empty_file() {
        let vfs = setup();
        let f = vfs.open(p("/db/f"), OpenMode::CreateNew).unwrap();
        f.write_at(b"data", 0).unwrap();
        vfs.sync_dir(p("/db")).unwrap();
        vfs.crash_drop_all();
        assert_eq!(read(&vfs, "/db/f").unwrap(), b"");
    }

    #[test]
    fn remove_without_dir_sync_can_come_back() {
        let vfs = setup();
        durable_file(&vfs, "/db/f", b"zombie");
        vfs.remove_file(p("/db/f")).unwrap();
        assert!(!vfs.exists(p("/db/f")).unwrap());
        vfs.crash_drop_all();
        assert_eq!(read(&vfs, "/db/f").unwrap(), b"zombie");
        vfs.remove_file(p("/db/f")).unwrap();
        vfs.sync_dir(p("/db")).unwrap();
        vfs.crash_drop_all();
        assert!(read(&vfs, "/db/f").is_none());
    }

    #[test]
    fn removed_file_stays_readable_through_open_handle() {
        let vfs = setup();
        durable_file(&vfs, "/db/f", b"abc");
        let f = vfs.open(p("/db/f"), OpenMode::ReadWrite).unwrap();
        vfs.remove_file(p("/db/f")).unwrap();
        vfs.sync_dir(p("/db")).unwrap();
        assert_eq!(f.read_all().unwrap(), b"abc");
        f.write_at(b"d", 3).unwrap();
        f.sync_data().unwrap();
        assert_eq!(f.read_all().unwrap(), b"abcd");
        let inodes_before = vfs.inner.state.lock().inodes.len();
        drop(f);
        // The orphan inode is collected once the last handle goes.
        assert_eq!(vfs.inner.state.lock().inodes.len(), inodes_before - 1);
    }

    #[test]
    fn rename_is_atomic_and_needs_dir_sync() {
        let mut saw = BTreeSet::new();
        for seed in 0..64 {
            let vfs = setup();
            durable_file(&vfs, "/db/CURRENT", b"old contents");
            let tmp = vfs.open(p("/db/CURRENT.tmp"), OpenMode::CreateNew).unwrap();
            tmp.write_at(b"new contents, longer", 0).unwrap();
            tmp.sync_data().unwrap();
            vfs.rename(p("/db/CURRENT.tmp"), p("/db/CURRENT")).unwrap();
            assert_eq!(read(&vfs, "/db/CURRENT").unwrap(), b"new contents, longer");
            assert!(!vfs.exists(p("/db/CURRENT.tmp")).unwrap());
            vfs.crash(seed);
            let got = read(&vfs, "/db/CURRENT").unwrap();
            assert!(
                got == b"old contents" || got == b"new contents, longer",
                "seed {seed}: torn rename {got:?}"
            );
            // The temporary name may or may not survive, but only with its data.
            if let Some(t) = read(&vfs, "/db/CURRENT.tmp") {
                assert_eq!(t, b"new contents, longer");
                assert_eq!(got, b"old contents");
            }
            saw.insert(got);
        }
        assert_eq!(saw.len(), 2, "both outcomes should occur over 64 seeds");

        // After sync_dir the rename is durable.
        for seed in 0..16 {
            let vfs = setup();
            durable_file(&vfs, "/db/CURRENT", b"old");
            durable_file(&vfs, "/db/CURRENT.tmp", b"new");
            vfs.rename(p("/db/CURRENT.tmp"), p("/db/CURRENT")).unwrap();
            vfs.sync_dir(p("/db")).unwrap();
            vfs.crash(seed);
            assert_eq!(read(&vfs, "/db/CURRENT").unwrap(), b"new");
            assert!(read(&vfs, "/db/CURRENT.tmp").is_none());
        }
    }

    #[test]
    fn cross_directory_rename_is_rejected() {
        let vfs = setup();
        vfs.open(p("/db/f"), OpenMode::CreateNew).unwrap();
        let e = vfs.rename(p("/db/f"), p("/db/wal/f")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::CrossesDevices);
        assert!(vfs.exists(p("/db/f")).unwrap());
        // Same path: no-op.
        vfs.rename(p("/db/f"), p("/db/f")).unwrap();
        assert!(vfs.exists(p("/db/f")).unwrap());
    }

    #[test]
    fn directory_log_survives_as_a_prefix() {
        let names = ["a", "b", "c", "d"];
        let mut lens = BTreeSet::new();
        for seed in 0..100 {
            let vfs = setup();
            for n in names {
                vfs.open(&Path::new("/db/wal").join(n), OpenMode::CreateNew)
                    .unwrap();
            }
            vfs.crash(seed);
            let got = vfs.list_dir(p("/db/wal")).unwrap();
            assert_eq!(got, names[..got.len()], "seed {seed}: not a prefix");
            lens.insert(got.len());
        }
        assert_eq!(lens.len(), names.len() + 1, "every prefix length occurs");
    }

    /// Checks the torn-write contract for `old` (durable, synced) overwritten by
    /// `new[start..end]` (pending) and returns a classification of the sectors.
    fn check_torn(old: &[u8], new_byte: u8, start: usize, end: usize, got: &[u8]) -> Vec<u8> {
        assert_eq!(got.len(), old.len());
        // Bytes outside the written range never change, even inside touched sectors.
        for i in (0..start).chain(end..old.len()) {
            assert_eq!(got[i], old[i], "byte {i} outside the write changed");
        }
        let mut kinds = Vec::new();
        let first = start / 512;
        let last = (end - 1) / 512;
        for s in first..=last {
            let lo = start.max(s * 512);
            let hi = end.min((s + 1) * 512);
            let part = &got[lo..hi];
            if part == &old[lo..hi] {
                kinds.push(b'o');
            } else if part.iter().all(|&b| b == new_byte) {
                kinds.push(b'n');
            } else {
                kinds.push(b'g');
            }
        }
        kinds
    }

    #[test]
    fn torn_writes_touch_only_whole_sectors_of_the_write() {
        let old: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
        let (start, end) = (700usize, 3000usize);
        let mut outcomes = BTreeSet::new();
        for seed in 0..300 {
            let vfs = setup();
            durable_file(&vfs, "/db/f", &old);
            let f = vfs.open(p("/db/f"), OpenMode::ReadWrite).unwrap();
            f.write_at(&vec![0xEE; end - start], start as u64).unwrap();
            vfs.crash(seed);
            let got = read(&vfs, "/db/f").unwrap();
            let kinds = check_torn(&old, 0xEE, start, end, &got);
            outcomes.insert(kinds);
        }
        let sectors = (end - 1) / 512 - start / 512 + 1;
        assert_eq!(sectors, 5);
        let all_old = vec![b'o'; sectors];
        let all_new = vec![b'n'; sectors];
        assert!(outcomes.contains(&all_old), "write dropped at least once");
        assert!(outcomes.contains(&all_new), "write applied at least once");
        assert!(
            outcomes
                .iter()
                .any(|k| k.contains(&b'o') && k.contains(&b'n')),
            "some write torn into old and new sectors"
        );
        assert!(
            outcomes.iter().any(|k| k.contains(&b'g')),
            "some torn sector got garbage"
        );
    }

    #[test]
    fn torn_extending_write_respects_sector_boundaries() {
        for seed in 0..100 {
            let vfs = setup();
            durable_file(&vfs, "/db/f", &[1u8; 100]);
            let f = vfs.open(p("/db/f"), OpenMode::ReadWrite).unwrap();
            f.write_at(&[2u8; 1000], 100).unwrap(); // covers sectors 0, 1, 2
            vfs.crash(seed);
            let got = read(&vfs, "/db/f").unwrap();
            assert!(got[..100].iter().all(|&b| b == 1));
            assert!(
                [100, 512, 1024, 1100].contains(&got.len()),
                "len {}",
                got.len()
            );
        }
    }

    #[test]
    fn pending_ops_are_independent() {
        // Two writes to distinct sectors: every combination can survive, including the
        // later one without the earlier one.
        let mut seen = BTreeSet::new();
        for seed in 0..200 {
            let vfs = setup();
            durable_file(&vfs, "/db/f", &[0u8; 1024]);
            let f = vfs.open(p("/db/f"), OpenMode::ReadWrite).unwrap();
            f.write_at(&[1u8; 512], 0).unwrap();
            f.write_at(&[2u8; 512], 512).unwrap();
            vfs.crash(seed);
            let got = read(&vfs, "/db/f").unwrap();
            seen.insert((got[0], got[512]));
        }
        for combo in [(0, 0), (1, 0), (0, 2), (1, 2)] {
            assert!(seen.contains(&combo), "missing {combo:?} in {seen:?}");
        }
    }

    fn scenario(vfs: &SimVfs) {
        vfs.create_dir_all(p("/db/wal")).unwrap();
        durable_file(vfs, "/db/base", &[7u8; 3000]);
        let f = vfs.open(p("/db/base"), OpenMode::ReadWrite).unwrap();
        for i in 0..20u64 {
            f.write_at(&[i as u8; 300], i * 137).unwrap();
        }
        f.set_len(2500).unwrap();
        for i in 0..5 {
            let g = vfs
                .open(
                    &PathBuf::from(format!("/db/wal/{i}.wal")),
                    OpenMode::CreateNew,
                )
                .unwrap();
            g.write_at(&[i as u8 + 1; 900], 0).unwrap();
        }
        vfs.rename(p("/db/wal/0.wal"), p("/db/wal/9.wal")).unwrap();
        vfs.remove_file(p("/db/wal/1.wal")).unwrap();
    }

    #[test]
    fn crash_is_deterministic_per_seed() {
        let mut distinct = BTreeSet::new();
        for seed in [0u64, 1, 42, 0xDEAD_BEEF, u64::MAX] {
            let a = SimVfs::new();
            let b = SimVfs::new();
            scenario(&a);
            scenario(&b);
            a.crash(seed);
            b.crash(seed);
            let sa = snapshot(&a);
            assert_eq!(sa, snapshot(&b), "seed {seed}");
            distinct.insert(format!("{sa:?}"));
        }
        assert!(distinct.len() > 1, "different seeds should differ");
    }

    #[test]
    fn failed_sync_leaves_data_readable_but_not_durable() {
        let vfs = setup();
        durable_file(&vfs, "/db/f", b"v1");
        let f = vfs.open(p("/db/f"), OpenMode::ReadWrite).unwrap();
        f.write_at(b"v2", 0).unwrap();
        vfs.fail_op(1, OpFilter::Sync, FaultError::Eio, false);
        let e = f.sync_data().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(5));
        assert_eq!(f.read_all().unwrap(), b"v2");
        assert_eq!(vfs.read_durable(p("/db/f")).unwrap(), b"v1");
        assert_eq!(vfs.pending_ops(), 1);
        // A later successful sync makes it durable.
        f.sync_data().unwrap();
        assert_eq!(vfs.read_durable(p("/db/f")).unwrap(), b"v2");

        // Same with the data lost by a crash after the failed sync.
        f.write_at(b"v3", 0).unwrap();
        vfs.fail_op(1, OpFilter::Sync, FaultError::Eio, false);
        f.sync_data().unwrap_err();
        vfs.crash_drop_all();
        assert_eq!(read(&vfs, "/db/f").unwrap(), b"v2");
    }

    /// Linux after a failed writeback: the error once, the bytes readable from the
    /// cache, never made durable by the next (successful) sync; a power loss loses
    /// them, a process crash does not.
    #[test]
    fn a_failed_sync_that_drops_dirty_pages_loses_them_for_good() {
        let vfs = setup();
        vfs.set_sync_failure(SyncFailure::DropsDirty);
        durable_file(&vfs, "/db/f", b"v1......");
        let f = vfs.open(p("/db/f"), OpenMode::ReadWrite).unwrap();
        f.write_at(b"v2", 0).unwrap();
        vfs.fail_op(1, OpFilter::Sync, FaultError::Eio, false);
        assert_eq!(f.sync_data().unwrap_err().raw_os_error(), Some(5));
        assert_eq!(f.read_all().unwrap(), b"v2......");
        assert_eq!(vfs.pending_ops(), 0, "the dirty pages were marked clean");
        // Reported once: the next sync succeeds, and writes only what came after.
        f.write_at(b"w", 7).unwrap();
        f.sync_data().unwrap();
        assert_eq!(vfs.read_durable(p("/db/f")).unwrap(), b"v1.....w");
        assert_eq!(f.read_all().unwrap(), b"v2.....w");
        // A process crash keeps the cache: the dropped bytes are still read.
        vfs.crash_keep_all();
        assert_eq!(read(&vfs, "/db/f").unwrap(), b"v2.....w");
        // A power loss does not.
        vfs.crash_drop_all();
        assert_eq!(read(&vfs, "/db/f").unwrap(), b"v1.....w");
        check_invariants(&vfs);
    }

    /// Like Linux's `errseq_t`: a failed sync that dropped writes is reported
    /// to every other handle that was open on the file when it happened, at
    /// its next sync and once (its own writes are written back all the same);
    /// a handle opened afterwards does not report it.
    #[test]
    fn a_dropped_writeback_is_reported_once_to_every_handle_open_at_the_time() {
        let vfs = setup();
        vfs.set_sync_failure(SyncFailure::DropsDirty);
        durable_file(&vfs, "/db/f", b"........");
        let f = vfs.open(p("/db/f"), OpenMode::ReadWrite).unwrap();
        let g = vfs.open(p("/db/f"), OpenMode::ReadWrite).unwrap();
        g.write_at(b"g", 1).unwrap();
        f.write_at(b"f", 0).unwrap();
        vfs.fail_op(1, OpFilter::Sync, FaultError::Eio, false);
        assert!(f.sync_data().is_err());
        let h = vfs.open(p("/db/f"), OpenMode::ReadWrite).unwrap();
        g.write_at(b"G", 2).unwrap();
        assert_eq!(g.sync_data().unwrap_err().raw_os_error(), Some(5));
        assert_eq!(vfs.read_durable(p("/db/f")).unwrap(), b"..G.....");
        g.sync_data().unwrap();
        h.sync_data().unwrap();
        f.sync_data().unwrap();
        check_invariants(&vfs);
    }

    /// A new directory is an entry in its parent: lost by a power loss until the
    /// parent is synced, and everything under it with it, however well synced.
    #[test]
    fn a_new_directory_and_all_under_it_are_lost_until_its_parent_is_synced() {
        let vfs = setup();
        vfs.create_dir_all(p("/db/new/sub")).unwrap();
        durable_file(&vfs, "/db/new/sub/f", b"synced");
        vfs.sync_dir(p("/db/new")).unwrap(); // makes `sub` durable in `new`
        assert!(vfs.exists(p("/db/new/sub/f")).unwrap());
        vfs.crash_drop_all();
        assert!(
            !vfs.exists(p("/db/new")).unwrap(),
            "unsynced directory survived"
        );
        assert!(read(&vfs, "/db/new/sub/f").is_none());
        assert_eq!(vfs.list_dir(p("/db")).unwrap(), vec!["wal"]);

        vfs.create_dir_all(p("/db/new/sub")).unwrap();
        durable_file(&vfs, "/db/new/sub/f", b"synced");
        vfs.sync_dir(p("/db")).unwrap();
        vfs.sync_dir(p("/db/new")).unwrap();
        vfs.crash_drop_all();
        assert_eq!(read(&vfs, "/db/new/sub/f").unwrap(), b"synced");
        check_invariants(&vfs);
    }

    /// `remove_dir` refuses a directory with entries; an unsynced removal can be
    /// undone by a crash, a synced one cannot.
    #[test]
    fn remove_dir_needs_an_empty_directory_and_a_parent_sync() {
        let vfs = setup();
        vfs.create_dir_all(p("/db/d")).unwrap();
        durable_file(&vfs, "/db/d/f", b"x");
        vfs.sync_dir(p("/db")).unwrap();
        let e = vfs.remove_dir(p("/db/d")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::DirectoryNotEmpty);
        vfs.remove_file(p("/db/d/f")).unwrap();
        vfs.remove_dir(p("/db/d")).unwrap();
        assert!(!vfs.exists(p("/db/d")).unwrap());
        vfs.crash_drop_all();
        assert_eq!(read(&vfs, "/db/d/f").unwrap(), b"x", "nothing was synced");
        vfs.remove_file(p("/db/d/f")).unwrap();
        vfs.sync_dir(p("/db/d")).unwrap();
        vfs.remove_dir(p("/db/d")).unwrap();
        vfs.sync_dir(p("/db")).unwrap();
        vfs.crash_drop_all();
        assert!(!vfs.exists(p("/db/d")).unwrap());
        check_invariants(&vfs);
    }

    #[test]
    fn failed_sync_dir_does_not_make_entries_durable() {
        let vfs = setup();
        vfs.open(p("/db/f"), OpenMode::CreateNew).unwrap();
        vfs.fail_op(1, OpFilter::Sync, FaultError::Eio, false);
        assert_eq!(vfs.sync_dir(p("/db")).unwrap_err().raw_os_error(), Some(5));
        assert_eq!(vfs.durable_len(p("/db/f")), None);
        vfs.crash_drop_all();
        assert!(!vfs.exists(p("/db/f")).unwrap());
    }

    #[test]
    fn nth_op_fault_once() {
        let vfs = setup();
        let f = vfs.open(p("/db/f"), OpenMode::CreateNew).unwrap();
        vfs.fail_op(3, OpFilter::Write, FaultError::Enospc, false);
        f.write_at(b"a", 0).unwrap();
        // Non-matching ops do not advance the counter.
        f.read_all().unwrap();
        f.sync_data().unwrap();
        f.write_at(b"b", 1).unwrap();
        let e = f.write_at(b"c", 2).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(28));
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        // The failed write changed nothing.
        assert_eq!(f.read_all().unwrap(), b"ab");
        assert_eq!(vfs.pending_ops(), 1 + 1); // "b" + the create in /db's log
        f.write_at(b"d", 2).unwrap();
        f.set_len(10).unwrap();
        assert_eq!(f.len().unwrap(), 10);
    }

    #[test]
    fn nth_op_fault_persistent_until_cleared() {
        let vfs = setup();
        let f = vfs.open(p("/db/f"), OpenMode::CreateNew).unwrap();
        vfs.fail_op(2, OpFilter::Write, FaultError::Eio, true);
        f.write_at(b"a", 0).unwrap();
        for i in 0..5u64 {
            assert_eq!(f.write_at(b"x", i).unwrap_err().raw_os_error(), Some(5));
        }
        assert_eq!(f.set_len(0).unwrap_err().raw_os_error(), Some(5));
        assert_eq!(f.read_all().unwrap(), b"a");
        f.sync_data().unwrap();
        vfs.clear_faults();
        f.write_at(b"b", 1).unwrap();
        assert_eq!(f.read_all().unwrap(), b"ab");
    }

    #[test]
    fn fault_filters_and_op_counts() {
        let vfs = SimVfs::new();
        let base = vfs.op_count();
        assert_eq!(base, 0);
        vfs.create_dir_all(p("/d")).unwrap(); // metadata
        let f = vfs.open(p("/d/f"), OpenMode::CreateNew).unwrap(); // metadata
        f.write_at(b"x", 0).unwrap(); // write
        f.len().unwrap(); // read
        vfs.exists(p("/d/f")).unwrap(); // read
        vfs.list_dir(p("/d")).unwrap(); // read
        f.sync_data().unwrap(); // sync
        vfs.sync_dir(p("/d")).unwrap(); // sync
        let l = vfs.open_lock(p("/d/LOCK")).unwrap(); // metadata
        assert!(l.lock(Duration::from_secs(1)).unwrap()); // not counted
        l.unlock().unwrap(); // not counted
        assert_eq!(vfs.op_count(), 9);
        assert_eq!(vfs.ops_matching(OpFilter::Any), 9);
        assert_eq!(vfs.ops_matching(OpFilter::Metadata), 3);
        assert_eq!(vfs.ops_matching(OpFilter::Write), 1);
        assert_eq!(vfs.ops_matching(OpFilter::Read), 3);
        assert_eq!(vfs.ops_matching(OpFilter::Sync), 2);

        // Metadata faults: nothing changes.
        vfs.fail_op(1, OpFilter::Metadata, FaultError::Eio, false);
        assert!(vfs.rename(p("/d/f"), p("/d/g")).is_err());
        assert!(vfs.exists(p("/d/f")).unwrap());
        vfs.fail_op(1, OpFilter::Metadata, FaultError::Eio, false);
        assert!(vfs.open(p("/d/new"), OpenMode::CreateNew).is_err());
        assert!(!vfs.exists(p("/d/new")).unwrap());
        vfs.fail_op(1, OpFilter::Metadata, FaultError::Eio, false);
        assert!(vfs.remove_file(p("/d/f")).is_err());
        assert!(vfs.exists(p("/d/f")).unwrap());
        vfs.fail_op(1, OpFilter::Metadata, FaultError::Eio, false);
        assert!(vfs.create_dir_all(p("/e")).is_err());
        assert!(!vfs.exists(p("/e")).unwrap());
        // Read faults.
        vfs.fail_op(1, OpFilter::Read, FaultError::Eio, false);
        let mut buf = [0u8; 1];
        assert!(f.read_at(&mut buf, 0).is_err());
        assert_eq!(f.read_at(&mut buf, 0).unwrap(), 1);
        // Any: the 2nd op of any kind.
        vfs.fail_op(2, OpFilter::Any, FaultError::Eio, false);
        f.len().unwrap();
        assert!(f.sync_data().is_err());
        f.sync_data().unwrap();
        // Lock operations are never failed.
        vfs.fail_op(1, OpFilter::Any, FaultError::Eio, true);
        assert!(l.try_lock().unwrap());
        l.unlock().unwrap();
        assert!(l.lock(Duration::ZERO).unwrap());
        vfs.clear_faults();
    }

    #[test]
    fn handles_die_after_crash() {
        for kind in 0..3 {
            let vfs = setup();
            durable_file(&vfs, "/db/f", b"abc");
            let f = vfs.open(p("/db/f"), OpenMode::ReadWrite).unwrap();
            let l = vfs.open_lock(p("/db/LOCK")).unwrap();
            assert!(l.try_lock().unwrap());
            match kind {
                0 => vfs.crash(1),
                1 => vfs.crash_drop_all(),
                _ => vfs.crash_keep_all(),
            }
            let mut buf = [0u8; 3];
            assert!(is_dead(&f.read_at(&mut buf, 0).unwrap_err()));
            assert!(is_dead(&f.write_at(b"x", 0).unwrap_err()));
            assert!(is_dead(&f.len().unwrap_err()));
            assert!(is_dead(&f.set_len(0).unwrap_err()));
            assert!(is_dead(&f.sync_data().unwrap_err()));
            assert!(is_dead(&l.lock(Duration::from_millis(1)).unwrap_err()));
            assert!(is_dead(&l.try_lock().unwrap_err()));
            assert!(is_dead(&l.unlock().unwrap_err()));
            assert!(is_dead(&l.file().len().unwrap_err()));
            // New handles work, and the lock was released by the crash.
            let g = vfs.open(p("/db/f"), OpenMode::ReadWrite).unwrap();
            assert_eq!(g.read_all().unwrap(), b"abc");
            let l2 = vfs.open_lock(p("/db/LOCK")).unwrap();
            assert!(l2.try_lock().unwrap());
            // Dropping the dead handle does not release the new owner's lock.
            drop(l);
            drop(f);
            let l3 = vfs.open_lock(p("/db/LOCK")).unwrap();
            assert!(!l3.try_lock().unwrap());
        }
    }

    #[test]
    fn lock_contention_and_timeout() {
        let vfs = setup();
        let a = vfs.open_lock(p("/db/LOCK")).unwrap();
        let b = vfs.open_lock(p("/db/LOCK")).unwrap();
        assert!(vfs.exists(p("/db/LOCK")).unwrap());
        assert!(a.try_lock().unwrap());
        // Re-locking by the holder succeeds.
        assert!(a.try_lock().unwrap());
        assert!(a.lock(Duration::from_millis(1)).unwrap());
        assert!(!b.try_lock().unwrap());
        let t0 = Instant::now();
        assert!(!b.lock(Duration::from_millis(50)).unwrap());
        assert!(t0.elapsed() >= Duration::from_millis(50));
        // Unlocking by a non-holder is a no-op.
        b.unlock().unwrap();
        assert!(!b.try_lock().unwrap());
        a.unlock().unwrap();
        a.unlock().unwrap();
        assert!(b.try_lock().unwrap());
        assert!(!a.try_lock().unwrap());
        // Locks on different files are independent.
        let c = vfs.open_lock(p("/db/OTHER")).unwrap();
        assert!(c.try_lock().unwrap());
    }

    #[test]
    fn blocked_lock_wakes_on_unlock() {
        let vfs = setup();
        let a = vfs.open_lock(p("/db/LOCK")).unwrap();
        assert!(a.try_lock().unwrap());
        let vfs2 = vfs.clone();
        let waiter = thread::spawn(move || {
            let b = vfs2.open_lock(p("/db/LOCK")).unwrap();
            let t0 = Instant::now();
            let got = b.lock(Duration::from_secs(30)).unwrap();
            (got, t0.elapsed())
        });
        thread::sleep(Duration::from_millis(50));
        a.unlock().unwrap();
        let (got, waited) = waiter.join().unwrap();
        assert!(got);
        assert!(waited < Duration::from_secs(10));
    }

    #[test]
    fn drop_releases_lock() {
        let vfs = setup();
        let a = vfs.open_lock(p("/db/LOCK")).unwrap();
        let b = vfs.open_lock(p("/db/LOCK")).unwrap();
        assert!(a.lock(Duration::from_secs(1)).unwrap());
        assert!(!b.try_lock().unwrap());
        let vfs2 = vfs.clone();
        let waiter = thread::spawn(move || {
            let c = vfs2.open_lock(p("/db/LOCK")).unwrap();
            c.lock(Duration::from_secs(30)).unwrap()
        });
        thread::sleep(Duration::from_millis(20));
        drop(a);
        assert!(waiter.join().unwrap());
        // The waiter's handle was dropped too, so b can now take it.
        assert!(b.try_lock().unwrap());
    }

    #[test]
    fn crash_wakes_lock_waiters_with_dead_handle_error() {
        let vfs = setup();
        let a = vfs.open_lock(p("/db/LOCK")).unwrap();
        assert!(a.try_lock().unwrap());
        let b = vfs.open_lock(p("/db/LOCK")).unwrap();
        let waiter = thread::spawn(move || b.lock(Duration::from_secs(30)));
        thread::sleep(Duration::from_millis(20));
        vfs.crash_keep_all();
        let e = waiter.join().unwrap().unwrap_err();
        assert!(is_dead(&e));
    }

    #[test]
    fn lock_file_is_a_regular_file() {
        let vfs = setup();
        let l = vfs.open_lock(p("/db/LOCK")).unwrap();
        l.file().write_at(b"pid 42", 0).unwrap();
        l.file().sync_data().unwrap();
        let f = vfs.open(p("/db/LOCK"), OpenMode::Read).unwrap();
        assert_eq!(f.read_all().unwrap(), b"pid 42");
        // open_lock on an existing file does not truncate it.
        let l2 = vfs.open_lock(p("/db/LOCK")).unwrap();
        assert_eq!(l2.file().read_all().unwrap(), b"pid 42");
        // Its name is not durable until the directory is synced.
        vfs.crash_drop_all();
        assert!(!vfs.exists(p("/db/LOCK")).unwrap());
    }

    #[test]
    fn corrupt_changes_current_and_durable() {
        let vfs = setup();
        durable_file(&vfs, "/db/f", &[0u8; 16]);
        vfs.corrupt(p("/db/f"), 3, &[0xFF]);
        assert_eq!(read(&vfs, "/db/f").unwrap()[3], 0xFF);
        assert_eq!(vfs.read_durable(p("/db/f")).unwrap()[3], 0xFF);
        vfs.crash_drop_all();
        assert_eq!(read(&vfs, "/db/f").unwrap()[3], 0xFF);

        // With pending writes: the corruption survives a later sync.
        let f = vfs.open(p("/db/f"), OpenMode::ReadWrite).unwrap();
        f.write_at(&[1u8; 16], 0).unwrap();
        vfs.corrupt(p("/db/f"), 5, &[0xAA]);
        assert_eq!(f.read_all().unwrap()[5], 0xAA);
        f.sync_data().unwrap();
        assert_eq!(vfs.read_durable(p("/db/f")).unwrap()[5], 0xAA);
        assert_eq!(vfs.read_current(p("/db/f")).unwrap()[5], 0xAA);
    }

    #[test]
    fn several_processes_share_one_disk() {
        let vfs = setup();
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let vfs = vfs.clone();
                thread::spawn(move || {
                    let lock = vfs.open_lock(p("/db/LOCK")).unwrap();
                    for j in 0..25u64 {
                        assert!(lock.lock(Duration::from_secs(30)).unwrap());
                        let f = vfs
                            .open(p("/db/counter"), OpenMode::CreateReadWrite)
                            .unwrap();
                        let mut buf = [0u8; 8];
                        let n = f.read_at(&mut buf, 0).unwrap();
                        let v = if n == 8 { u64::from_le_bytes(buf) } else { 0 };
                        f.write_at(&(v + 1).to_le_bytes(), 0).unwrap();
                        f.sync_data().unwrap();
                        lock.unlock().unwrap();
                        let _ = (i, j);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let got = read(&vfs, "/db/counter").unwrap();
        assert_eq!(u64::from_le_bytes(got.try_into().unwrap()), 100);
    }

    #[test]
    fn removed_unsynced_file_may_reappear_with_its_data() {
        let mut seen = BTreeSet::new();
        for seed in 0..64 {
            let vfs = setup();
            let f = vfs.open(p("/db/f"), OpenMode::CreateNew).unwrap();
            f.write_at(b"payload", 0).unwrap();
            f.sync_data().unwrap();
            drop(f);
            vfs.remove_file(p("/db/f")).unwrap();
            vfs.crash(seed);
            let got = read(&vfs, "/db/f");
            if let Some(data) = &got {
                assert_eq!(data, b"payload");
            }
            seen.insert(got.is_some());
        }
        assert_eq!(seen.len(), 2);
    }

    /// durable + replay(pending) == current for every inode, and every name resolves.
    fn check_invariants(vfs: &SimVfs) {
        let st = vfs.inner.state.lock();
        for (ino, inode) in &st.inodes {
            let mut replay = inode.durable.clone();
            for op in &inode.pending {
                apply_op(&mut replay, op);
            }
            if !inode.lost_writes {
                assert_eq!(replay, inode.current, "inode {ino}");
            }
        }
        for ino in st.current.values().chain(st.durable.values()) {
            assert!(st.inodes.contains_key(ino), "dangling inode {ino}");
        }
        let mut ns = st.durable.clone();
        let mut dirs = st.durable_dirs.clone();
        for log in st.dir_logs.values() {
            for op in log {
                if let DirOp::Create { ino, .. } | DirOp::Rename { ino, .. } = op {
                    assert!(st.inodes.contains_key(ino), "dangling logged inode {ino}");
                }
                apply_dir_op(&mut ns, &mut dirs, op);
            }
        }
        assert_eq!(ns, st.current, "durable + dir logs == current namespace");
        assert_eq!(dirs, st.dirs, "durable + dir logs == current directories");
    }

    #[test]
    fn random_histories_keep_invariants() {
        for seed in 0..40u64 {
            let vfs = setup();
            let mut rng = Rng(seed);
            let mut files: Vec<Arc<dyn VfsFile>> = Vec::new();
            let names = ["/db/a", "/db/b", "/db/c", "/db/wal/x", "/db/wal/y"];
            for step in 0..300 {
                let name = p(names[rng.below(names.len() as u64) as usize]);
                let other = p(names[rng.below(names.len() as u64) as usize]);
                if rng.below(20) == 0 {
                    vfs.fail_op(1 + rng.below(3), OpFilter::Any, FaultError::Eio, false);
                }
                match rng.below(12) {
                    0 => {
                        if let Ok(f) = vfs.open(name, OpenMode::CreateReadWrite) {
                            files.push(f);
                        }
                    }
                    1 | 2 if !files.is_empty() => {
                        let f = &files[rng.below(files.len() as u64) as usize];
                        let len = rng.below(1500) as usize;
                        let _ = f.write_at(&vec![step as u8; len], rng.below(3000));
                    }
                    3 if !files.is_empty() => {
                        let f = &files[rng.below(files.len() as u64) as usize];
                        let _ = f.set_len(rng.below(4000));
                    }
                    4 if !files.is_empty() => {
                        let f = &files[rng.below(files.len() as u64) as usize];
                        let _ = f.sync_data();
                    }
                    5 => {
                        let _ = vfs.rename(name, other);
                    }
                    6 => {
                        let _ = vfs.remove_file(name);
                    }
                    7 => {
                        let _ = vfs.sync_dir(name.parent().unwrap());
                    }
                    8 if !files.is_empty() => {
                        files.swap_remove(rng.below(files.len() as u64) as usize);
                    }
                    9 if rng.below(10) == 0 => {
                        match rng.below(3) {
                            0 => vfs.crash(rng.next_u64()),
                            1 => vfs.crash_drop_all(),
                            _ => vfs.crash_keep_all(),
                        }
                        files.clear();
                        assert_eq!(vfs.pending_ops(), 0);
                    }
                    _ => {}
                }
                check_invariants(&vfs);
            }
            vfs.clear_faults();
            // Without crashes in between, keep_all is exactly "current survives".
            let before = snapshot(&vfs);
            vfs.crash_keep_all();
            assert_eq!(snapshot(&vfs), before);
            check_invariants(&vfs);
        }
    }
}
