//! The log: its options, cursors and frames, the `Wal` handle with its small
//! surface (open, publish, options), and how segments are found. Reading is in
//! `log/read.rs`, recovery by the lock holder in `log/recovery.rs`, appending,
//! rotation and retirement in `log/write.rs`.

mod read;
mod recovery;
mod write;

use crate::durable::{DurableFile, Published};
use crate::error::{Error, IoContext, Result};
use crate::frame::{self, FrameHeader, FrameKind, HeaderCheck, FRAME_HEADER_BYTES};
use crate::lock::LockHeld;
use crate::segment::{self, SEGMENT_HEADER_BYTES};
use crate::vfs::{OpenMode, Vfs, VfsFile};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// When a commit counts as done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// `commit` returns after `fdatasync` of the frame (the default).
    #[default]
    Immediate,
    /// `commit` returns after the write, without a sync. A power loss may lose recent
    /// commits (never half of one, never an older one), like SQLite's
    /// `synchronous=NORMAL`. A process crash loses nothing.
    None,
}

#[derive(Clone, Debug)]
pub struct WalOptions {
    pub segment_size_bytes: u64,
    pub max_frame_bytes: usize,
    pub durability: Durability,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size_bytes: segment::DEFAULT_SEGMENT_BYTES,
            max_frame_bytes: frame::DEFAULT_MAX_FRAME_BYTES,
            durability: Durability::Immediate,
        }
    }
}

/// One batch read back from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub first_lsn: u64,
    pub count: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn last_lsn(&self) -> u64 {
        self.first_lsn + self.count as u64 - 1
    }
}

/// A reading (and, for the lock holder, writing) position in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// First LSN (= file name) of the segment the position is in.
    pub segment: u64,
    /// Byte offset in that segment (0 = before the segment header).
    pub offset: u64,
    /// The LSN the next frame must start with.
    pub next_lsn: u64,
    /// Where in `segment` the last frame read or written began (0: none yet in
    /// this segment). With `offset`, what a checkpoint records so that opening
    /// can start reading there (see [`Wal::position_from`]).
    pub last_frame: u64,
}

impl Cursor {
    /// The last LSN read.
    pub fn last_lsn(&self) -> u64 {
        self.next_lsn - 1
    }
}

/// Why a scan stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanStop {
    /// An all-zero header: nothing written yet at the position.
    End,
    /// Bytes that are not a valid next frame.
    Invalid(String),
    /// The next frame lies beyond the bound.
    Bound,
    /// The cursor's segment no longer exists (retired by a checkpoint).
    MissingSegment,
}

/// A torn tail's description and its bytes.
type TornBytes = (Damage, Vec<u8>);

/// What lies past the last valid frame.
#[derive(Clone, Debug)]
pub enum Tail {
    /// Zeros to the end: a clean end of log.
    Clean,
    /// Damage with nothing durable after it: what a crash leaves; the next writer
    /// moves these bytes to `quarantine/` and zeroes them.
    Torn {
        file: PathBuf,
        offset: u64,
        bytes: u64,
    },
    /// Damage followed by frames that prove it was durable: corruption.
    Damaged(Damage),
}

/// Damage found by the lock holder: a bad frame with valid frames after it.
#[derive(Clone, Debug)]
pub struct Damage {
    pub file: PathBuf,
    pub segment: u64,
    pub offset: u64,
    /// The LSN the damaged frame should have started with.
    pub expected_lsn: u64,
    pub reason: String,
    /// Valid frames found after the damage (what a truncation would discard).
    pub later_frames: Vec<Frame>,
    /// Later segment files (discarded by a truncation too).
    pub later_segments: Vec<u64>,
    /// The highest `durable_lsn` written in a later frame of the same segment.
    pub later_max_durable_lsn: u64,
    /// Later segments holding at least one valid frame. (An empty later segment is
    /// what a crash between installing a segment and closing the previous one
    /// leaves; it holds nothing and is moved aside with a torn tail.)
    pub later_segments_with_frames: usize,
    /// The LSN known synced when it was judged (from `DURABLE`, or synced by the
    /// judging handle): at or past `expected_lsn`, it alone proves corruption.
    pub synced_lsn: u64,
}

#[derive(Debug)]
pub struct Wal {
    vfs: Arc<dyn Vfs>,
    wal_dir: PathBuf,
    quarantine_dir: PathBuf,
    store_id: [u8; 16],
    opts: WalOptions,
    files: Mutex<BTreeMap<u64, Arc<dyn VfsFile>>>,
    durable: DurableFile,
    writable: bool,
    poisoned: AtomicBool,
    /// The first recovery of this handle also checks the bytes past the end of the
    /// log (a zeroed frame in mid-log would otherwise look like the end), unless
    /// `DURABLE`'s boot token says no write can have been lost since a writer
    /// last did (see `durable.rs`).
    deep_checked: AtomicBool,
    /// Highest LSN known synced (written into frames as `durable_lsn`).
    synced_lsn: AtomicU64,
    /// Set when a failed sync could not be undone: the caller must keep the lock.
    unrevoked_frame: AtomicBool,
    /// The manifest generation this handle publishes with the durable LSN.
    generation: AtomicU64,
    /// A frame whose sync failed and whose erasure failed too: erasing it is tried
    /// again when the handle is dropped (while the caller still holds the lock).
    unrevoked_at: Mutex<Option<(Arc<dyn VfsFile>, u64)>>,
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Some((file, offset)) = self.unrevoked_at.lock().take() {
            // Best effort, and the last chance: if this fails too, the frame's
            // outcome stays what the caller was told, unknown.
            let _ = file
                .write_at(&[0u8; FRAME_HEADER_BYTES], offset)
                .and_then(|_| file.sync_data());
        }
    }
}

impl Wal {
    /// Creates the log of a new store: `wal/`, `quarantine/`, the first segment
    /// (LSN 1) and `DURABLE` = 0, all synced.
    pub fn create(vfs: &dyn Vfs, dir: &Path, store_id: [u8; 16], opts: &WalOptions) -> Result<()> {
        Wal::create_at(vfs, dir, store_id, opts, 1)
    }

    /// Like [`Wal::create`], for a store whose runs already hold every LSN below
    /// `next_lsn` (a backup): the first segment starts there.
    pub fn create_at(
        vfs: &dyn Vfs,
        dir: &Path,
        store_id: [u8; 16],
        opts: &WalOptions,
        next_lsn: u64,
    ) -> Result<()> {
        let wal_dir = dir.join("wal");
        vfs.create_dir_all(&wal_dir).at(&wal_dir)?;
        let q = dir.join("quarantine");
        vfs.create_dir_all(&q).at(&q)?;
        vfs.sync_dir(dir).at(dir)?;
        segment::install_segment(vfs, &wal_dir, &store_id, next_lsn, opts.segment_size_bytes)?;
        DurableFile::create(vfs, dir, store_id)
    }

    pub fn open(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        store_id: [u8; 16],
        opts: WalOptions,
        writable: bool,
    ) -> Result<Wal> {
        assert!(opts.segment_size_bytes >= segment::MIN_SEGMENT_BYTES);
        let durable = DurableFile::open(vfs.as_ref(), dir, store_id, writable)?;
        Ok(Wal {
            wal_dir: dir.join("wal"),
            quarantine_dir: dir.join("quarantine"),
            vfs,
            store_id,
            opts,
            files: Mutex::new(BTreeMap::new()),
            durable,
            writable,
            poisoned: AtomicBool::new(false),
            deep_checked: AtomicBool::new(false),
            synced_lsn: AtomicU64::new(0),
            unrevoked_frame: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            unrevoked_at: Mutex::new(None),
        })
    }

    /// The log was replaced under this handle (a restore): forget open segment
    /// files and what was synced; the log now ends at `lsn`.
    pub fn rewind(&self, lsn: u64) {
        self.files.lock().clear();
        self.synced_lsn.store(lsn, Ordering::SeqCst);
        self.deep_checked.store(false, Ordering::SeqCst);
        self.durable.vouch(false);
    }

    pub fn options(&self) -> &WalOptions {
        &self.opts
    }
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::SeqCst)
    }
    /// True when a frame whose sync failed could not be erased: the holder must keep
    /// the lock until the handle is dropped so that no other process reads it.
    pub fn must_keep_lock(&self) -> bool {
        self.unrevoked_frame.load(Ordering::SeqCst)
    }
    /// Marks the handle unusable after a failure whose effect on the file is
    /// unknown (a failed sync may have dropped writes from the cache), and
    /// withdraws its boot token, so that the next writer reads past the end of
    /// the log again.
    fn poison(&self) {
        self.poisoned.store(true, Ordering::SeqCst);
        self.durable.withdraw();
    }

    fn check_poisoned(&self) -> Result<()> {
        if self.is_poisoned() {
            Err(Error::Poisoned)
        } else {
            Ok(())
        }
    }

    /// What `DURABLE` says now.
    pub fn published(&self) -> Result<Published> {
        self.durable.read()
    }

    /// Sets the manifest generation published from now on (after a checkpoint
    /// switched CURRENT, or after loading it).
    pub fn set_generation(&self, generation: u64) {
        self.generation.store(generation, Ordering::SeqCst);
    }

    /// Publishes `lsn` with the current generation.
    pub fn publish(&self, _held: &LockHeld, lsn: u64) -> Result<()> {
        self.publish_unchecked(lsn)
    }

    fn publish_unchecked(&self, lsn: u64) -> Result<()> {
        self.durable.publish(self.to_publish(lsn))
    }

    /// What `DURABLE` should say with the log ending at `lsn`.
    fn to_publish(&self, lsn: u64) -> Published {
        Published {
            lsn,
            generation: self.generation.load(Ordering::SeqCst),
            synced: self.synced_lsn.load(Ordering::SeqCst).min(lsn),
        }
    }

    fn segment_path(&self, first: u64) -> PathBuf {
        self.wal_dir.join(segment::segment_name(first))
    }

    /// Whether segment `first` (the newest) says its name is durable, which the
    /// directory sync that installed it made every older name too.
    fn newest_name_durable(&self, first: u64) -> bool {
        let Ok(Some(f)) = self.segment_file(first) else {
            return false;
        };
        let newest = segment::list_segments(self.vfs.as_ref(), &self.wal_dir)
            .ok()
            .and_then(|v| v.last().copied());
        if newest != Some(first) {
            return false;
        }
        let mut h = [0u8; 64];
        f.read_exact_at(&mut h, 0).is_ok() && segment::name_durable(&h)
    }

    fn segment_file(&self, first: u64) -> Result<Option<Arc<dyn VfsFile>>> {
        let mut files = self.files.lock();
        if let Some(f) = files.get(&first) {
            return Ok(Some(f.clone()));
        }
        let path = self.segment_path(first);
        let mode = if self.writable {
            OpenMode::ReadWrite
        } else {
            OpenMode::Read
        };
        match self.vfs.open(&path, mode).and_then(KnownLen::wrap) {
            Ok(f) => {
                files.insert(first, f.clone());
                Ok(Some(f))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).at(&path),
        }
    }

    /// A segment that must exist (the cursor is in it), with its path.
    fn existing_segment(&self, segment: u64) -> Result<(PathBuf, Arc<dyn VfsFile>)> {
        let path = self.segment_path(segment);
        match self.segment_file(segment)? {
            Some(f) => Ok((path, f)),
            None => Err(Error::BadFile {
                file: path,
                detail: "segment vanished while in use".into(),
            }),
        }
    }
}

impl Damage {
    pub fn into_error(self) -> Error {
        let mut detail = format!(
            "{} at LSN {}, with {} valid frame(s) after it",
            self.reason,
            self.expected_lsn,
            self.later_frames.len() + self.later_segments.len()
        );
        if self.synced_lsn >= self.expected_lsn {
            detail += &format!(
                "; DURABLE says the log was synced through LSN {}",
                self.synced_lsn
            );
        }
        Error::Corruption {
            file: self.file,
            offset: self.offset,
            detail,
        }
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A segment file whose length is asked of the file system once, when opened,
/// and then kept (and moved by this handle's own writes). Segments are
/// installed at their full size and never change length, and on Linux a
/// `statx` before each commit's write made the next write update the file's
/// timestamps at fine grain (multigrain timestamps), which made every
/// `fdatasync` write the inode too: one more device round trip per commit
/// (4.8k commits/s instead of 7k in a loop of the same system calls).
#[derive(Debug)]
struct KnownLen {
    inner: Arc<dyn VfsFile>,
    len: AtomicU64,
}

impl KnownLen {
    fn wrap(inner: Arc<dyn VfsFile>) -> std::io::Result<Arc<dyn VfsFile>> {
        let len = inner.len()?;
        Ok(Arc::new(KnownLen {
            inner,
            len: AtomicU64::new(len),
        }))
    }
}

impl VfsFile for KnownLen {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.inner.write_at(buf, offset)?;
        self.len
            .fetch_max(offset + buf.len() as u64, Ordering::SeqCst);
        Ok(())
    }
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.len.load(Ordering::SeqCst))
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)?;
        self.len.store(len, Ordering::SeqCst);
        Ok(())
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.inner.sync_data()
    }
    fn identity(&self) -> Option<(u64, u64)> {
        self.inner.identity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::ProcessLock;
    use crate::sim::SimVfs;
    use std::time::Duration;

    const DIR: &str = "/sim/store";
    const ID: [u8; 16] = [7; 16];

    fn open(vfs: &Arc<SimVfs>, durability: Durability) -> Wal {
        let opts = WalOptions {
            durability,
            ..WalOptions::default()
        };
        let v: Arc<dyn Vfs> = vfs.clone();
        Wal::open(v, Path::new(DIR), ID, opts, true).unwrap()
    }

    fn new_log() -> Arc<SimVfs> {
        let vfs = SimVfs::new();
        vfs.create_dir_all(Path::new(DIR)).unwrap();
        vfs.sync_dir(Path::new("/")).unwrap();
        vfs.sync_dir(Path::new("/sim")).unwrap();
        Wal::create(vfs.as_ref(), Path::new(DIR), ID, &WalOptions::default()).unwrap();
        vfs
    }

    /// Recovers `w` from `cur` under the lock, with what DURABLE says.
    fn recover(w: &Wal, lock: &ProcessLock, cur: &mut Cursor) -> Result<bool> {
        let held = lock.acquire(Duration::from_secs(5))?;
        let published = w.published().ok();
        w.recover(&held, cur, &mut Vec::new(), published)
    }

    fn append(w: &Wal, lock: &ProcessLock, cur: &mut Cursor, payload: &[u8]) -> u64 {
        let held = lock.acquire(Duration::from_secs(5)).unwrap();
        w.append(&held, cur, payload, 1).unwrap()
    }

    /// A handle whose first (deep) recovery is behind it still refuses a log that
    /// ends below DURABLE's synced LSN: another process's synced frame was lost.
    #[test]
    fn a_later_recovery_refuses_a_log_that_ends_below_the_synced_lsn() {
        let vfs = new_log();
        let lock = ProcessLock::open(vfs.as_ref(), Path::new(DIR)).unwrap();
        let a = open(&vfs, Durability::Immediate);
        let mut cur_a = a.position(0).unwrap();
        assert!(recover(&a, &lock, &mut cur_a).unwrap());
        append(&a, &lock, &mut cur_a, b"one");

        let b = open(&vfs, Durability::Immediate);
        let mut cur_b = b.position(0).unwrap();
        assert!(recover(&b, &lock, &mut cur_b).unwrap());
        let off = cur_b.offset;
        append(&b, &lock, &mut cur_b, b"two");
        assert_eq!(b.published().unwrap().synced, 2);
        // The write of frame 2 is lost (the medium returns zeros where it was).
        let seg = Path::new(DIR).join("wal").join(segment::segment_name(1));
        vfs.corrupt(&seg, off, &[0u8; FRAME_HEADER_BYTES]);

        match recover(&a, &lock, &mut cur_a) {
            Err(Error::Corruption { offset, detail, .. }) => {
                assert_eq!(offset, off);
                assert!(detail.contains("synced through LSN 2"), "{detail}");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    /// With `Durability::None` DURABLE's LSN leads what is synced, and says so: its
    /// synced LSN stays at the last sync, so a power loss that tears the unsynced
    /// frames is a crash, not corruption.
    #[test]
    fn durable_without_sync_publishes_the_lsn_but_not_as_synced() {
        let vfs = new_log();
        let lock = ProcessLock::open(vfs.as_ref(), Path::new(DIR)).unwrap();
        let a = open(&vfs, Durability::Immediate);
        let mut cur = a.position(0).unwrap();
        assert!(recover(&a, &lock, &mut cur).unwrap());
        append(&a, &lock, &mut cur, b"synced");
        drop(a);
        let n = open(&vfs, Durability::None);
        let mut cur = n.position(0).unwrap();
        assert!(recover(&n, &lock, &mut cur).unwrap());
        append(&n, &lock, &mut cur, b"unsynced one");
        append(&n, &lock, &mut cur, b"unsynced two");
        let p = n.published().unwrap();
        assert_eq!((p.lsn, p.synced), (3, 1), "{p:?}");
        drop(n);
        // Power loss: the page of DURABLE was written back, the log's was not.
        let durable = DurableFile::path_in(Path::new(DIR));
        let last_published = vfs.read_current(&durable).unwrap();
        vfs.crash_drop_all();
        vfs.corrupt(&durable, 0, &last_published);
        let lock = ProcessLock::open(vfs.as_ref(), Path::new(DIR)).unwrap();
        let a = open(&vfs, Durability::Immediate);
        let mut cur = a.position(0).unwrap();
        assert!(recover(&a, &lock, &mut cur).unwrap());
        assert_eq!(cur.last_lsn(), 1);
        assert_eq!(a.published().unwrap(), Published::synced(1, 0));
    }

    /// Bytes the first recovery of a new handle on the log at `dir` reads.
    fn first_recovery_reads(vfs: &Arc<SimVfs>, dir: &str) -> u64 {
        let v: Arc<dyn Vfs> = vfs.clone();
        let w = Wal::open(v, Path::new(dir), ID, WalOptions::default(), true).unwrap();
        let lock = ProcessLock::open(vfs.as_ref(), Path::new(dir)).unwrap();
        let mut cur = w.position(0).unwrap();
        let before = vfs.bytes_read();
        assert!(recover(&w, &lock, &mut cur).unwrap());
        let read = vfs.bytes_read() - before;
        append(&w, &lock, &mut cur, b"next");
        read
    }

    /// DURABLE's boot token: in the boot that wrote it, on the file it was
    /// written in, a writer's first recovery reads the end of the log and not
    /// the zeros after it; after a power loss (a new boot), on a copy of the
    /// store, or once a failed sync withdrew the token, it reads to the end of
    /// the segment again, as it must to tell a torn tail from damage.
    #[test]
    fn the_zeros_past_the_end_of_the_log_are_read_only_when_writes_may_have_been_lost() {
        let whole = WalOptions::default().segment_size_bytes / 2;
        let vfs = new_log();
        let created = first_recovery_reads(&vfs, DIR);
        assert!(created < 64 << 10, "a new log: {created} bytes read");
        let same_boot = first_recovery_reads(&vfs, DIR);
        assert!(
            same_boot < 64 << 10,
            "the same boot: {same_boot} bytes read"
        );

        vfs.crash_drop_all();
        let after_power_loss = first_recovery_reads(&vfs, DIR);
        assert!(
            after_power_loss > whole,
            "after a power loss: {after_power_loss} bytes read"
        );
        assert!(first_recovery_reads(&vfs, DIR) < 64 << 10);

        // A process crash keeps the cache, and the boot.
        vfs.crash_keep_all();
        assert!(first_recovery_reads(&vfs, DIR) < 64 << 10);

        // A copy of the store (other files, other inodes).
        let copy = "/sim/copy";
        vfs.create_dir_all(&Path::new(copy).join("wal")).unwrap();
        for rel in ["DURABLE", "LOCK", "wal/00000000000000000001.wal"] {
            let from = vfs.open(&Path::new(DIR).join(rel), OpenMode::Read).unwrap();
            let to = vfs
                .open(&Path::new(copy).join(rel), OpenMode::CreateReadWrite)
                .unwrap();
            to.write_at(&from.read_all().unwrap(), 0).unwrap();
        }
        let copied = first_recovery_reads(&vfs, copy);
        assert!(copied > whole, "a copy: {copied} bytes read");

        // A failed sync poisons the writer and withdraws the token.
        let w = open(&vfs, Durability::Immediate);
        let lock = ProcessLock::open(vfs.as_ref(), Path::new(DIR)).unwrap();
        let mut cur = w.position(0).unwrap();
        assert!(recover(&w, &lock, &mut cur).unwrap());
        vfs.fail_op(
            1,
            crate::sim::OpFilter::Sync,
            crate::sim::FaultError::Eio,
            false,
        );
        let held = lock.acquire(Duration::from_secs(5)).unwrap();
        assert!(w.append(&held, &mut cur, b"lost", 1).is_err());
        drop(held);
        drop(w);
        let durable = vfs.read_current(&Path::new(DIR).join("DURABLE")).unwrap();
        assert_eq!(crate::durable::decode_token(&durable), None);
        let after_failed_sync = first_recovery_reads(&vfs, DIR);
        assert!(
            after_failed_sync > whole,
            "after a failed sync: {after_failed_sync} bytes read"
        );
    }
}
