//! The log itself: reading frames (lock-free up to `DURABLE`), recovery by the lock
//! holder, appending, rotation, retirement, and repair of mid-log damage.

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
    /// log (a zeroed frame in mid-log would otherwise look like the end).
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

    /// A cursor just after `after_lsn` (a checkpoint LSN, or 0 for the start).
    pub fn position(&self, after_lsn: u64) -> Result<Cursor> {
        self.position_from(after_lsn, None)
    }

    /// [`Wal::position`], starting from `hint` — `(segment, last_frame, offset)`
    /// of a cursor that stood just after `after_lsn`, as a checkpoint recorded it
    /// — when it is proven right: the frame at `last_frame` is intact (checksum),
    /// ends at `after_lsn` and at `offset`, and the header at `offset` is empty
    /// or starts `after_lsn + 1`. The frames before it are then not read (they
    /// are in the runs). A hint that does not prove right is ignored and the
    /// segment is read from its start.
    pub fn position_from(&self, after_lsn: u64, hint: Option<(u64, u64, u64)>) -> Result<Cursor> {
        let segs = segment::list_segments(self.vfs.as_ref(), &self.wal_dir)?;
        let Some(&seg) = segs.iter().rev().find(|&&s| s <= after_lsn + 1) else {
            return Err(Error::BadFile {
                file: self.wal_dir.clone(),
                detail: format!("no segment holds LSN {}", after_lsn + 1),
            });
        };
        if let Some((hseg, hlast, hoff)) = hint {
            if hseg == seg && self.hint_fits(seg, hlast, hoff, after_lsn)? {
                return Ok(Cursor {
                    segment: seg,
                    offset: hoff,
                    next_lsn: after_lsn + 1,
                    last_frame: hlast,
                });
            }
        }
        let mut cur = Cursor {
            segment: seg,
            offset: 0,
            next_lsn: seg,
            last_frame: 0,
        };
        let mut skipped = Vec::new();
        loop {
            let stop = self.scan(&mut cur, Some(after_lsn), &mut skipped, 64)?;
            let more = skipped.len() == 64;
            skipped.clear();
            match stop {
                // 64 frames read and more to skip. (Fewer: the next frame reaches
                // past `after_lsn`, which no read can step over.)
                ScanStop::Bound if more && cur.next_lsn <= after_lsn => continue,
                _ => break,
            }
        }
        if cur.next_lsn != after_lsn + 1 {
            return Err(Error::Corruption {
                file: self.segment_path(cur.segment),
                offset: cur.offset,
                detail: format!(
                    "the log ends at LSN {} before the checkpoint LSN {after_lsn}",
                    cur.last_lsn()
                ),
            });
        }
        Ok(cur)
    }

    /// Whether a cursor at `offset` of segment `seg` stands just after
    /// `after_lsn`: see [`Wal::position_from`].
    fn hint_fits(&self, seg: u64, last_frame: u64, offset: u64, after_lsn: u64) -> Result<bool> {
        let align = frame::FRAME_ALIGN as u64;
        if last_frame < SEGMENT_HEADER_BYTES
            || last_frame >= offset
            || !last_frame.is_multiple_of(align)
            || !offset.is_multiple_of(align)
        {
            return Ok(false);
        }
        let Some(file) = self.segment_file(seg)? else {
            return Ok(false);
        };
        let path = self.segment_path(seg);
        if offset + FRAME_HEADER_BYTES as u64 > file.len().at(&path)? {
            return Ok(false);
        }
        let mut h = [0u8; SEGMENT_HEADER_BYTES as usize];
        file.read_exact_at(&mut h, 0).at(&path)?;
        if segment::check_header(&path, &h, &self.store_id, seg).is_err() {
            return Ok(false);
        }
        // The frame before: intact, ending at `after_lsn` and at `offset`.
        let mut prev = vec![0u8; (offset - last_frame) as usize];
        file.read_exact_at(&mut prev, last_frame).at(&path)?;
        let HeaderCheck::Plausible(ph) =
            frame::parse_header(&prev, &self.store_id, self.opts.max_frame_bytes)
        else {
            return Ok(false);
        };
        let body = FRAME_HEADER_BYTES + ph.payload_len as usize;
        if ph.kind != FrameKind::Batch
            || ph.last_lsn() != after_lsn
            || ph.stored_len() as u64 != offset - last_frame
            || !frame::check_crc(&prev[..body])
        {
            return Ok(false);
        }
        let mut hb = [0u8; FRAME_HEADER_BYTES];
        file.read_exact_at(&mut hb, offset).at(&path)?;
        Ok(
            match frame::parse_header(&hb, &self.store_id, self.opts.max_frame_bytes) {
                HeaderCheck::Zero => true,
                HeaderCheck::Plausible(fh) => fh.first_lsn == after_lsn + 1,
                HeaderCheck::Invalid(_) => false,
            },
        )
    }

    /// Reads valid frames from `cur` onwards, following end-of-segment frames, until
    /// the end, an invalid frame, a frame past `bound`, or `max_frames` frames.
    pub fn scan(
        &self,
        cur: &mut Cursor,
        bound: Option<u64>,
        out: &mut Vec<Frame>,
        max_frames: usize,
    ) -> Result<ScanStop> {
        let mut taken = 0;
        let mut ahead = ReadAhead::default();
        // A segment read again from its file on disk (see the end-of-segment
        // case below), at most once per scan.
        let mut reopened = None;
        loop {
            if taken >= max_frames {
                return Ok(ScanStop::Bound);
            }
            let Some(file) = self.segment_file(cur.segment)? else {
                return Ok(ScanStop::MissingSegment);
            };
            let path = self.segment_path(cur.segment);
            let seg_len = file.len().at(&path)?;
            if cur.offset == 0 {
                let mut h = [0u8; SEGMENT_HEADER_BYTES as usize];
                if seg_len < SEGMENT_HEADER_BYTES {
                    return Ok(ScanStop::Invalid("segment shorter than its header".into()));
                }
                file.read_exact_at(&mut h, 0).at(&path)?;
                match segment::check_header(&path, &h, &self.store_id, cur.segment) {
                    Ok(_) => {}
                    Err(e @ Error::TooNew { .. }) => return Err(e),
                    Err(e) => return Ok(ScanStop::Invalid(e.to_string())),
                }
                cur.offset = SEGMENT_HEADER_BYTES;
            }
            if cur.offset + FRAME_HEADER_BYTES as u64 > seg_len {
                return Ok(ScanStop::Invalid(
                    "segment ends without an end-of-segment frame".into(),
                ));
            }
            let hb = ahead
                .get(
                    file.as_ref(),
                    cur.segment,
                    seg_len,
                    cur.offset,
                    FRAME_HEADER_BYTES,
                )
                .at(&path)?;
            let h = match frame::parse_header(hb, &self.store_id, self.opts.max_frame_bytes) {
                HeaderCheck::Zero => return Ok(ScanStop::End),
                HeaderCheck::Invalid(r) => return Ok(ScanStop::Invalid(r.into())),
                HeaderCheck::Plausible(h) => h,
            };
            if cur.offset + h.stored_len() as u64 > seg_len {
                return Ok(ScanStop::Invalid("frame runs past the segment end".into()));
            }
            let body = ahead
                .get(
                    file.as_ref(),
                    cur.segment,
                    seg_len,
                    cur.offset,
                    FRAME_HEADER_BYTES + h.payload_len as usize,
                )
                .at(&path)?;
            if !frame::check_crc(body) {
                return Ok(ScanStop::Invalid("checksum mismatch".into()));
            }
            if h.version > frame::FRAME_FORMAT_VERSION {
                return Err(Error::TooNew {
                    file: path,
                    found: h.version as u32,
                    supported: frame::FRAME_FORMAT_VERSION as u32,
                });
            }
            if h.first_lsn != cur.next_lsn {
                return Ok(ScanStop::Invalid(format!(
                    "frame starts at LSN {}, expected {}",
                    h.first_lsn, cur.next_lsn
                )));
            }
            self.synced_lsn.fetch_max(h.durable_lsn, Ordering::SeqCst);
            match h.kind {
                FrameKind::EndOfSegment => {
                    if h.count != 0 {
                        return Ok(ScanStop::Invalid(
                            "end-of-segment frame with a count".into(),
                        ));
                    }
                    // It names the segment to read next, which starts at the next
                    // LSN. It names this segment itself when the segment was
                    // closed before any frame in it (the first frame after a
                    // restore did not fit a backup's small segment): then the
                    // rotation replaced the file under the same name, and the
                    // file to read is the one on disk now, not the one open here.
                    // Once: a file that still says so would be read forever.
                    if h.first_lsn <= cur.segment {
                        if h.first_lsn == cur.segment && reopened != Some(cur.segment) {
                            reopened = Some(cur.segment);
                            self.files.lock().remove(&cur.segment);
                            ahead = ReadAhead::default();
                            cur.offset = 0;
                            continue;
                        }
                        return Ok(ScanStop::Invalid(
                            "end-of-segment frame naming its own segment".into(),
                        ));
                    }
                    *cur = Cursor {
                        segment: h.first_lsn,
                        offset: 0,
                        next_lsn: cur.next_lsn,
                        last_frame: 0,
                    };
                }
                FrameKind::Batch => {
                    if h.count == 0 {
                        return Ok(ScanStop::Invalid("batch frame with no transactions".into()));
                    }
                    if bound.is_some_and(|b| h.last_lsn() > b) {
                        return Ok(ScanStop::Bound);
                    }
                    out.push(Frame {
                        first_lsn: h.first_lsn,
                        count: h.count,
                        payload: body[FRAME_HEADER_BYTES..].to_vec(),
                    });
                    taken += 1;
                    cur.last_frame = cur.offset;
                    cur.offset += h.stored_len() as u64;
                    cur.next_lsn += h.count as u64;
                }
            }
        }
    }

    /// Lock-free catch-up: frames from `cur` up to what the caller read from
    /// [`Wal::published`]. Stops quietly at a torn-looking end above the synced LSN;
    /// damage at or below it, or proven by later durable frames, is an error.
    pub fn read_committed(
        &self,
        published: Published,
        cur: &mut Cursor,
        out: &mut Vec<Frame>,
    ) -> Result<ScanStop> {
        let durable = published.lsn;
        if cur.last_lsn() >= durable {
            return Ok(ScanStop::Bound);
        }
        let stop = self.scan(cur, Some(durable), out, usize::MAX)?;
        if stop == ScanStop::MissingSegment && self.is_future_segment(cur.segment)? {
            // Closed, next segment not installed yet: nothing more to read.
            return Ok(ScanStop::End);
        }
        if matches!(stop, ScanStop::End | ScanStop::Invalid(_)) && cur.last_lsn() < durable {
            // Frames through `durable` were written before it was published, so the
            // log should not stop below it. Judge (without changing anything) as the
            // lock holder would: damage at or below the synced LSN, or with durable
            // frames after it, is corruption, reported rather than shown as an old
            // state; anything else is a torn tail of unsynced frames (possible only
            // with `Durability::None`) and the reader stops there quietly, as the
            // next writer will.
            let why = match &stop {
                ScanStop::Invalid(r) => r.clone(),
                _ => "zero header before written bytes".into(),
            };
            if let (Tail::Damaged(d), _) = self.judge(cur, &why, published.synced)? {
                return Err(d.into_error());
            }
        }
        Ok(stop)
    }

    /// Recovery by the lock holder, at every lock acquisition: reads every valid frame
    /// after `cur` (other processes' commits, or a dead writer's unsynced batch, which
    /// is synced here before anything acts on it), cuts a torn tail into
    /// `quarantine/`, refuses mid-log damage, and publishes `DURABLE`.
    /// `published` is what the caller read from `DURABLE` under the lock (`None` if
    /// it did not validate: a power loss can garble it, as it is never synced).
    /// Returns `false` if `cur`'s segment was retired (reload from CURRENT first).
    pub fn recover(
        &self,
        _held: &LockHeld,
        cur: &mut Cursor,
        out: &mut Vec<Frame>,
        published: Option<Published>,
    ) -> Result<bool> {
        self.check_poisoned()?;
        if let Some(p) = published {
            // DURABLE's synced LSN proves those frames reached stable storage.
            self.synced_lsn.fetch_max(p.synced, Ordering::SeqCst);
        }
        let scan_from = (cur.segment, cur.offset);
        let mut stop = self.scan(cur, None, out, usize::MAX)?;
        if stop == ScanStop::MissingSegment && self.is_future_segment(cur.segment)? {
            // A writer closed a segment but died (or failed) before installing the
            // next one: finish its rotation. Its end-of-segment frame may never have
            // been synced (the sync failed, or it died first): make it durable
            // before the new segment can hold anything, or a power loss could take
            // it and leave later frames behind a hole.
            if let Some(&closed) = segment::list_segments(self.vfs.as_ref(), &self.wal_dir)?.last()
            {
                if let Some(f) = self.segment_file(closed)? {
                    let path = self.segment_path(closed);
                    let len = f.len().at(&path)?;
                    self.redirty(&f, &path, SEGMENT_HEADER_BYTES, len)?;
                    self.sync(&f, &path)?;
                }
            }
            self.install(cur.segment)?;
            stop = self.scan(cur, None, out, usize::MAX)?;
        }
        let deep = !self.deep_checked.swap(true, Ordering::SeqCst);
        if deep && !self.newest_name_durable(cur.segment) {
            // A writer whose directory sync failed (or who died before it) may have
            // left segment names that are not durable yet; make them so before
            // building on them.
            self.vfs.sync_dir(&self.wal_dir).map_err(|source| {
                self.poisoned.store(true, Ordering::SeqCst);
                Error::SyncFailed {
                    path: self.wal_dir.clone(),
                    source,
                }
            })?;
        }
        match stop {
            ScanStop::MissingSegment => {
                self.deep_checked.store(!deep, Ordering::SeqCst);
                return Ok(false);
            }
            ScanStop::Bound => unreachable!("unbounded scan"),
            // A clean-looking end, unless frames that were synced should follow.
            ScanStop::End if !deep && !self.below_synced(cur) => {}
            ScanStop::End => {
                if let Some(d) = self.classify(cur, "zero header before written bytes")? {
                    return Err(d.into_error());
                }
            }
            ScanStop::Invalid(reason) => {
                if let Some(d) = self.classify(cur, &reason)? {
                    return Err(d.into_error());
                }
                if cur.offset == 0 {
                    // A segment whose header did not survive but that holds no
                    // frames (classify found none): give it its header back, so
                    // that appends start after it.
                    self.rewrite_header(cur)?;
                }
            }
        }
        let last = cur.last_lsn();
        if published.is_none_or(|p| last > p.synced)
            && self.opts.durability == Durability::Immediate
        {
            // Frames a dead writer (or a `Durability::None` writer) wrote but may
            // not have synced: make them durable before anything (our own commit
            // included) builds on them. A plain sync is not enough: if the dead
            // writer's sync failed, Linux may have marked those pages clean
            // without writing them (the "fsyncgate" lesson); they read back fine
            // from the cache, and no later fsync writes them. Writing the same
            // bytes again makes them dirty, so this sync does.
            if let Some(f) = self.segment_file(cur.segment)? {
                let path = self.segment_path(cur.segment);
                let from = if scan_from.0 == cur.segment {
                    scan_from.1.max(SEGMENT_HEADER_BYTES)
                } else {
                    SEGMENT_HEADER_BYTES
                };
                self.redirty(&f, &path, from, cur.offset)?;
                self.sync(&f, &path)?;
            }
        }
        if self.opts.durability == Durability::Immediate {
            self.synced_lsn.fetch_max(last, Ordering::SeqCst);
        }
        if published != Some(self.to_publish(last)) {
            self.publish_unchecked(last)?;
        }
        Ok(true)
    }

    /// Whether the log stops at `cur` below an LSN known synced.
    fn below_synced(&self, cur: &Cursor) -> bool {
        cur.last_lsn() < self.synced_lsn.load(Ordering::SeqCst)
    }

    /// Looks at what lies at and after `cur` (where the valid log stops). Cuts a torn
    /// tail; returns the damage if valid frames that were durable follow.
    fn classify(&self, cur: &Cursor, reason: &str) -> Result<Option<Damage>> {
        match self.judge(cur, reason, self.synced_lsn.load(Ordering::SeqCst))? {
            (Tail::Clean, _) => Ok(None),
            (Tail::Damaged(d), _) => Ok(Some(d)),
            (Tail::Torn { .. }, Some((d, tail))) => {
                self.cut(&d, &tail)?;
                Ok(None)
            }
            (Tail::Torn { .. }, None) => unreachable!("a torn tail has bytes"),
        }
    }

    /// What lies at `cur`, and for a torn tail the damage and its bytes (to cut).
    /// `synced` is an LSN known to be on stable storage (from `DURABLE`, or synced
    /// by this handle): the log cannot legitimately end or be damaged below it.
    fn judge(&self, cur: &Cursor, reason: &str, synced: u64) -> Result<(Tail, Option<TornBytes>)> {
        let Some((mut damage, tail)) = self.find_damage(cur, reason)? else {
            if cur.last_lsn() < synced {
                // Zeros where synced frames should be (a lost write, or a log cut
                // behind DURABLE's back): acknowledged commits are missing.
                return Ok((Tail::Damaged(self.missing(cur, synced)), None));
            }
            return Ok((Tail::Clean, None));
        };
        // DURABLE at or past the damaged LSN, or a later frame written when the log
        // was durable at or past it, proves the damaged frame had been synced (and
        // acknowledged): corruption, not a crash. (In `Immediate` mode every frame's
        // durable LSN is its first LSN - 1.) Only damage above every durable mark is
        // a crash's torn tail.
        let proven = damage.later_segments_with_frames > 0
            || damage.later_max_durable_lsn >= damage.expected_lsn
            || synced >= damage.expected_lsn;
        damage.synced_lsn = synced;
        if proven {
            return Ok((Tail::Damaged(damage), None));
        }
        let t = Tail::Torn {
            file: damage.file.clone(),
            offset: damage.offset,
            bytes: tail.len() as u64,
        };
        Ok((t, Some((damage, tail))))
    }

    /// The damage of a log that ends cleanly at `cur`, below `synced`.
    fn missing(&self, cur: &Cursor, synced: u64) -> Damage {
        Damage {
            file: self.segment_path(cur.segment),
            segment: cur.segment,
            offset: cur.offset.max(SEGMENT_HEADER_BYTES),
            expected_lsn: cur.next_lsn,
            reason: "the log ends here (zeros)".into(),
            later_frames: Vec::new(),
            later_segments: Vec::new(),
            later_max_durable_lsn: 0,
            later_segments_with_frames: 0,
            synced_lsn: synced,
        }
    }

    /// Reads to the end of the log from `cur` and says what lies there, changing
    /// nothing (no lock needed; a writer mid-append may look like a torn tail).
    pub fn examine(&self, cur: &mut Cursor, out: &mut Vec<Frame>) -> Result<Tail> {
        // A DURABLE that does not validate (a power loss may garble it) proves
        // nothing; the frames' own durable LSNs still do.
        let synced = self.durable.read().map_or(0, |p| p.synced);
        let reason = match self.scan(cur, None, out, usize::MAX)? {
            ScanStop::End => "zero header before written bytes".to_string(),
            ScanStop::Invalid(r) => r,
            ScanStop::MissingSegment if self.is_future_segment(cur.segment)? => {
                // Closed, the next segment not installed yet (the next writer
                // installs it): a clean end.
                return Ok(Tail::Clean);
            }
            ScanStop::MissingSegment | ScanStop::Bound => {
                return Err(Error::BadFile {
                    file: self.segment_path(cur.segment),
                    detail: "segment vanished while reading (a checkpoint ran); retry".into(),
                })
            }
        };
        Ok(self.judge(cur, &reason, synced)?.0)
    }

    /// Reads the bytes from `cur` to the segment's end. `None` when all are zero and
    /// no later segment exists (a clean end of log).
    fn find_damage(&self, cur: &Cursor, reason: &str) -> Result<Option<(Damage, Vec<u8>)>> {
        let (path, file) = self.existing_segment(cur.segment)?;
        let seg_len = file.len().at(&path)?;
        let start = cur.offset.max(SEGMENT_HEADER_BYTES).min(seg_len);
        let later_segments: Vec<u64> = segment::list_segments(self.vfs.as_ref(), &self.wal_dir)?
            .into_iter()
            .filter(|&s| s > cur.segment)
            .collect();
        if later_segments.is_empty() && cur.offset != 0 {
            // The common case, a clean end: all zeros to the segment's end. Checked
            // in chunks through one small buffer (a whole preallocated segment
            // read at once costs milliseconds of page faults, paid by every CLI
            // command's first commit).
            let mut buf = vec![0u8; 256 << 10];
            let mut off = start;
            let mut clean = true;
            while off < seg_len {
                let n = ((seg_len - off) as usize).min(buf.len());
                file.read_exact_at(&mut buf[..n], off).at(&path)?;
                if buf[..n].iter().any(|&b| b != 0) {
                    clean = false;
                    break;
                }
                off += n as u64;
            }
            if clean {
                return Ok(None);
            }
        }
        let mut rest = vec![0u8; (seg_len - start) as usize];
        file.read_exact_at(&mut rest, start).at(&path)?;
        let last_nonzero = rest.iter().rposition(|&b| b != 0);
        if last_nonzero.is_none() && later_segments.is_empty() && cur.offset != 0 {
            return Ok(None);
        }
        let tail_len = last_nonzero.map_or(0, |i| i + 1);
        rest.truncate(tail_len);
        let mut later_frames = Vec::new();
        let mut later_max_durable_lsn = 0;
        let mut rel = frame::FRAME_ALIGN;
        while rel + FRAME_HEADER_BYTES <= rest.len() {
            if let HeaderCheck::Plausible(h) =
                frame::parse_header(&rest[rel..], &self.store_id, self.opts.max_frame_bytes)
            {
                let end = rel + FRAME_HEADER_BYTES + h.payload_len as usize;
                if end <= rest.len() && frame::check_crc(&rest[rel..end]) {
                    later_max_durable_lsn = later_max_durable_lsn.max(h.durable_lsn);
                    self.note_frame(&h, &rest[rel + FRAME_HEADER_BYTES..end], &mut later_frames);
                    rel += h.stored_len();
                    continue;
                }
            }
            rel += frame::FRAME_ALIGN;
        }
        let mut later_segments_with_frames = 0;
        for &s in &later_segments {
            let mut c = Cursor {
                segment: s,
                offset: 0,
                next_lsn: s,
                last_frame: 0,
            };
            let before = later_frames.len();
            let _ = self.scan(&mut c, None, &mut later_frames, usize::MAX)?;
            if later_frames.len() > before {
                later_segments_with_frames += 1;
            }
        }
        Ok(Some((
            Damage {
                file: path,
                segment: cur.segment,
                offset: start,
                expected_lsn: cur.next_lsn,
                reason: reason.to_string(),
                later_frames,
                later_segments,
                later_max_durable_lsn,
                later_segments_with_frames,
                synced_lsn: 0,
            },
            rest,
        )))
    }

    fn note_frame(&self, h: &FrameHeader, payload: &[u8], out: &mut Vec<Frame>) {
        self.synced_lsn.fetch_max(h.durable_lsn, Ordering::SeqCst);
        if h.kind == FrameKind::Batch && h.count > 0 {
            out.push(Frame {
                first_lsn: h.first_lsn,
                count: h.count,
                payload: payload.to_vec(),
            });
        }
    }

    /// Moves the damaged region (and any later segments) to `quarantine/`, zeroes
    /// the region, syncs. Nothing is destroyed: the bytes are kept there.
    fn cut(&self, d: &Damage, tail: &[u8]) -> Result<()> {
        if !tail.is_empty() {
            let name = format!(
                "{}.{:012}.{}.torn",
                segment::segment_name(d.segment),
                d.offset,
                now_ms()
            );
            self.quarantine(&name, tail)?;
            let file = self.segment_file(d.segment)?.expect("segment open");
            segment::write_zeros(file.as_ref(), &d.file, d.offset, tail.len() as u64)?;
            self.sync(&file, &d.file)?;
        }
        for &s in &d.later_segments {
            let path = self.segment_path(s);
            let f = self.vfs.open(&path, OpenMode::Read).at(&path)?;
            let bytes = f.read_all().at(&path)?;
            self.quarantine(
                &format!("{}.{}.cut", segment::segment_name(s), now_ms()),
                &bytes,
            )?;
            self.files.lock().remove(&s);
            self.vfs.remove_file(&path).at(&path)?;
        }
        if !d.later_segments.is_empty() {
            self.vfs.sync_dir(&self.wal_dir).at(&self.wal_dir)?;
        }
        Ok(())
    }

    fn quarantine(&self, name: &str, bytes: &[u8]) -> Result<()> {
        crate::vfs::create_dir_durable(self.vfs.as_ref(), &self.quarantine_dir)
            .at(&self.quarantine_dir)?;
        let tmp = self.quarantine_dir.join(format!("{name}.tmp"));
        // Never replace what an earlier cut kept: a repair cut short and run
        // again in the same millisecond would otherwise write the same name over
        // the only intact copy of the bytes it cut first.
        let (stem, ext) = name.rsplit_once('.').unwrap_or((name, "bytes"));
        let mut dst = self.quarantine_dir.join(name);
        let mut k = 1;
        while self.vfs.exists(&dst).at(&dst)? {
            k += 1;
            dst = self.quarantine_dir.join(format!("{stem}-{k}.{ext}"));
        }
        let f = self.vfs.open(&tmp, OpenMode::CreateReadWrite).at(&tmp)?;
        f.set_len(0).at(&tmp)?;
        f.write_at(bytes, 0).at(&tmp)?;
        f.sync_data().at(&tmp)?;
        self.vfs.rename(&tmp, &dst).at(&tmp)?;
        self.vfs
            .sync_dir(&self.quarantine_dir)
            .at(&self.quarantine_dir)
    }

    /// For `got repair --truncate-at-corruption`: moves the damaged frame and all
    /// after it to `quarantine/`, zeroes, syncs, publishes `DURABLE`.
    pub fn truncate_at(&self, _held: &LockHeld, d: &Damage) -> Result<()> {
        let (path, file) = self.existing_segment(d.segment)?;
        let seg_len = file.len().at(&path)?;
        let mut rest = vec![0u8; (seg_len - d.offset) as usize];
        file.read_exact_at(&mut rest, d.offset).at(&path)?;
        let n = rest.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        rest.truncate(n);
        // Lower DURABLE first, synced: once the frames are cut it must not prove
        // them again after a power loss. (A crash between the two leaves damage that
        // nothing proves any more, or a log DURABLE leads: `got repair` again.)
        let keep = d.expected_lsn - 1;
        self.synced_lsn.store(keep, Ordering::SeqCst);
        self.durable.publish_synced(self.to_publish(keep))?;
        self.cut(d, &rest)?;
        self.deep_checked.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Writes bytes `[from, to)` of `f` back as they read, so that the next sync
    /// writes them even if a failed writeback left them clean in the page cache.
    fn redirty(&self, f: &Arc<dyn VfsFile>, path: &Path, from: u64, to: u64) -> Result<()> {
        const CHUNK_BYTES: u64 = 256 << 10;
        let mut buf = Vec::new();
        let mut off = from;
        while off < to {
            let n = (to - off).min(CHUNK_BYTES) as usize;
            buf.resize(n, 0);
            f.read_exact_at(&mut buf, off).at(path)?;
            f.write_at(&buf, off).at(path)?;
            off += n as u64;
        }
        Ok(())
    }

    fn sync(&self, f: &Arc<dyn VfsFile>, path: &Path) -> Result<()> {
        f.sync_data().map_err(|source| {
            self.poisoned.store(true, Ordering::SeqCst);
            Error::SyncFailed {
                path: path.to_path_buf(),
                source,
            }
        })
    }

    /// Appends one batch of `count` transactions at `cur` (which recovery has brought
    /// to the end of the log), rotating first if it does not fit; syncs per the
    /// durability mode; publishes `DURABLE`. Returns the batch's first LSN.
    pub fn append(
        &self,
        _held: &LockHeld,
        cur: &mut Cursor,
        payload: &[u8],
        count: u32,
    ) -> Result<u64> {
        self.check_poisoned()?;
        assert!(count >= 1, "a batch holds at least one transaction");
        assert!(
            cur.offset >= SEGMENT_HEADER_BYTES,
            "appends start after the segment header (recovery positions the cursor)"
        );
        let len = frame::stored_len(payload.len());
        let eos_len = frame::stored_len(0) as u64;
        let max = self
            .opts
            .max_frame_bytes
            .min((self.opts.segment_size_bytes - SEGMENT_HEADER_BYTES - eos_len) as usize);
        if len > max {
            return Err(Error::FrameTooLarge { size: len, max });
        }
        let (seg_path, mut file) = self.existing_segment(cur.segment)?;
        let seg_len = file.len().at(&seg_path)?;
        if cur.offset + len as u64 + eos_len > seg_len {
            file = self.rotate(cur, &file)?;
        }
        let path = self.segment_path(cur.segment);
        let first = cur.next_lsn;
        let durable_lsn = match self.opts.durability {
            Durability::Immediate => first - 1,
            Durability::None => self.synced_lsn.load(Ordering::SeqCst).min(first - 1),
        };
        let header = FrameHeader {
            kind: FrameKind::Batch,
            payload_len: payload.len() as u32,
            count,
            first_lsn: first,
            store_id: self.store_id,
            durable_lsn,
            version: frame::FRAME_FORMAT_VERSION,
        };
        let bytes = frame::encode(&header, payload);
        if let Err(e) = file.write_at(&bytes, cur.offset) {
            // Part of the frame may have landed: erase its header so no one reads it.
            self.revoke(&file, cur.offset, false);
            return Err(e).at(&path);
        }
        if self.opts.durability == Durability::Immediate {
            if let Err(source) = file.sync_data() {
                self.poisoned.store(true, Ordering::SeqCst);
                self.revoke(&file, cur.offset, true);
                return Err(Error::SyncFailed { path, source });
            }
            self.synced_lsn
                .fetch_max(header.last_lsn(), Ordering::SeqCst);
        }
        cur.last_frame = cur.offset;
        cur.offset += len as u64;
        cur.next_lsn += count as u64;
        // DURABLE is a visibility hint; recovery republishes it, so a failed publish
        // does not change the (durable) outcome of this commit.
        let _ = self.publish_unchecked(cur.last_lsn());
        Ok(first)
    }

    fn rewrite_header(&self, cur: &mut Cursor) -> Result<()> {
        let (path, file) = self.existing_segment(cur.segment)?;
        let size = file.len().at(&path)?;
        file.write_at(
            &segment::encode_header(&self.store_id, cur.segment, size),
            0,
        )
        .at(&path)?;
        self.sync(&file, &path)?;
        cur.offset = SEGMENT_HEADER_BYTES;
        Ok(())
    }

    /// Overwrites a frame header with zeros so the frame is never read back.
    fn revoke(&self, file: &Arc<dyn VfsFile>, offset: u64, then_sync: bool) {
        let ok = file.write_at(&[0u8; FRAME_HEADER_BYTES], offset).is_ok()
            && (!then_sync || file.sync_data().is_ok());
        if !ok {
            self.poisoned.store(true, Ordering::SeqCst);
            self.unrevoked_frame.store(true, Ordering::SeqCst);
            *self.unrevoked_at.lock() = Some((file.clone(), offset));
        }
    }

    /// Ends the current segment with an end-of-segment frame (synced), then
    /// installs the segment it names (header synced, renamed, directory synced).
    /// In this order a segment never exists without its predecessor being closed,
    /// so no reader can miss it; a crash (or failure) between the two leaves an
    /// end-of-segment frame naming a segment that does not exist yet, which the
    /// next lock holder installs and readers treat as the end of the log. Any
    /// failure poisons the handle: the state of the directory is then unknown.
    fn rotate(&self, cur: &mut Cursor, file: &Arc<dyn VfsFile>) -> Result<Arc<dyn VfsFile>> {
        let path = self.segment_path(cur.segment);
        let eos = frame::encode(
            &FrameHeader {
                kind: FrameKind::EndOfSegment,
                payload_len: 0,
                count: 0,
                first_lsn: cur.next_lsn,
                store_id: self.store_id,
                durable_lsn: cur.last_lsn(),
                version: frame::FRAME_FORMAT_VERSION,
            },
            &[],
        );
        file.write_at(&eos, cur.offset)
            .at(&path)
            .inspect_err(|_| self.poisoned.store(true, Ordering::SeqCst))?;
        self.sync(file, &path)?;
        let f = self
            .install(cur.next_lsn)
            .inspect_err(|_| self.poisoned.store(true, Ordering::SeqCst))?;
        *cur = Cursor {
            segment: cur.next_lsn,
            offset: SEGMENT_HEADER_BYTES,
            next_lsn: cur.next_lsn,
            last_frame: 0,
        };
        Ok(f)
    }

    fn install(&self, first_lsn: u64) -> Result<Arc<dyn VfsFile>> {
        let (_, f) = segment::install_segment(
            self.vfs.as_ref(),
            &self.wal_dir,
            &self.store_id,
            first_lsn,
            self.opts.segment_size_bytes,
        )?;
        let f = KnownLen::wrap(f).at(&self.segment_path(first_lsn))?;
        self.files.lock().insert(first_lsn, f.clone());
        Ok(f)
    }

    /// Whether `segment` is newer than every segment on disk: named by an
    /// end-of-segment frame but not installed yet (not retired).
    fn is_future_segment(&self, segment: u64) -> Result<bool> {
        let segs = segment::list_segments(self.vfs.as_ref(), &self.wal_dir)?;
        Ok(segs.last().is_none_or(|&last| segment > last))
    }

    /// Makes everything appended so far durable (used before a checkpoint when
    /// running with `Durability::None`).
    pub fn sync_tail(&self, _held: &LockHeld, cur: &Cursor) -> Result<()> {
        if let Some(f) = self.segment_file(cur.segment)? {
            self.sync(&f, &self.segment_path(cur.segment))?;
            self.synced_lsn.fetch_max(cur.last_lsn(), Ordering::SeqCst);
        }
        Ok(())
    }

    /// Removes segments holding only LSNs ≤ `lsn` (all of them in runs now).
    pub fn retire_through(&self, _held: &LockHeld, lsn: u64) -> Result<usize> {
        let segs = segment::list_segments(self.vfs.as_ref(), &self.wal_dir)?;
        let mut removed = 0;
        for w in segs.windows(2) {
            if w[1] <= lsn + 1 {
                let path = self.segment_path(w[0]);
                self.files.lock().remove(&w[0]);
                self.vfs.remove_file(&path).at(&path)?;
                removed += 1;
            }
        }
        if removed > 0 {
            self.vfs.sync_dir(&self.wal_dir).at(&self.wal_dir)?;
        }
        Ok(removed)
    }

    /// Makes sure a preallocated segment is ready for the next rotation once the
    /// current one (position `cur`) is half full. Called outside the lock, after a
    /// commit, so rotation under the lock is a rename, not 8 MiB of zeros.
    pub fn ensure_preallocated(&self, cur: &Cursor) -> Result<()> {
        if cur.offset < self.opts.segment_size_bytes / 2 {
            return Ok(());
        }
        let pre = self.wal_dir.join(segment::PREALLOC_NAME);
        if self.vfs.exists(&pre).at(&pre)? {
            return Ok(());
        }
        segment::preallocate(
            self.vfs.as_ref(),
            &self.wal_dir,
            self.opts.segment_size_bytes,
        )
    }

    /// Total bytes of the segments (the WAL's disk usage).
    pub fn disk_bytes(&self) -> Result<u64> {
        let mut total = 0;
        for s in segment::list_segments(self.vfs.as_ref(), &self.wal_dir)? {
            let p = self.segment_path(s);
            if let Ok(f) = self.vfs.open(&p, OpenMode::Read) {
                total += f.len().at(&p)?;
            }
        }
        Ok(total)
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
}

/// Sequential reads of a segment through one buffer, for [`Wal::scan`]: the
/// buffer starts at 4 KiB (a writer's scan usually reads one empty header) and
/// doubles up to 256 KiB while the scan goes on, so reading a log tail costs a
/// system call per buffer rather than two per frame.
#[derive(Default)]
struct ReadAhead {
    segment: u64,
    offset: u64,
    buf: Vec<u8>,
    next: usize,
}

impl ReadAhead {
    /// `len` bytes at `offset` of segment `segment` (whose length is
    /// `seg_len`; the caller has checked that they lie within it).
    fn get(
        &mut self,
        file: &dyn VfsFile,
        segment: u64,
        seg_len: u64,
        offset: u64,
        len: usize,
    ) -> std::io::Result<&[u8]> {
        let end = offset + len as u64;
        let held = self.segment == segment
            && !self.buf.is_empty()
            && offset >= self.offset
            && end <= self.offset + self.buf.len() as u64;
        if !held {
            let size = len
                .max(self.next.max(4 << 10))
                .min((seg_len - offset) as usize);
            self.buf.resize(size, 0);
            file.read_exact_at(&mut self.buf, offset)?;
            self.segment = segment;
            self.offset = offset;
            self.next = (self.next.max(4 << 10) * 2).min(256 << 10);
        }
        let at = (offset - self.offset) as usize;
        Ok(&self.buf[at..at + len])
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
}
