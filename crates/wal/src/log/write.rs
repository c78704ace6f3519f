//! Writing the log: the sync that poisons the log when it fails, appending a
//! batch, revoking a frame whose write failed, rotating to a new segment,
//! installing and preallocating segments, retiring those a checkpoint covers.

use super::*;

impl Wal {
    pub(super) fn sync(&self, f: &Arc<dyn VfsFile>, path: &Path) -> Result<()> {
        f.sync_data().map_err(|source| {
            self.poison();
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
                self.poison();
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

    pub(super) fn rewrite_header(&self, cur: &mut Cursor) -> Result<()> {
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
    pub(super) fn revoke(&self, file: &Arc<dyn VfsFile>, offset: u64, then_sync: bool) {
        let ok = file.write_at(&[0u8; FRAME_HEADER_BYTES], offset).is_ok()
            && (!then_sync || file.sync_data().is_ok());
        if !ok {
            self.poison();
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
    pub(super) fn rotate(
        &self,
        cur: &mut Cursor,
        file: &Arc<dyn VfsFile>,
    ) -> Result<Arc<dyn VfsFile>> {
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
            .inspect_err(|_| self.poison())?;
        self.sync(file, &path)?;
        let f = self.install(cur.next_lsn).inspect_err(|_| self.poison())?;
        *cur = Cursor {
            segment: cur.next_lsn,
            offset: SEGMENT_HEADER_BYTES,
            next_lsn: cur.next_lsn,
            last_frame: 0,
        };
        Ok(f)
    }

    pub(super) fn install(&self, first_lsn: u64) -> Result<Arc<dyn VfsFile>> {
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
    pub(super) fn is_future_segment(&self, segment: u64) -> Result<bool> {
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
