//! Recovery by the lock holder: reading what others committed, judging where
//! the log stops (a torn tail of unsynced frames, or damage proven by synced or
//! later frames), finding the damage, cutting a torn tail into `quarantine/`,
//! and truncating at damage the caller chose to cut (repair).

use super::*;

impl Wal {
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
        // DURABLE (read under the lock by the caller) carries this boot's token
        // for this file, and says that all it published was synced: every write
        // since a writer last found the log whole went through this page cache,
        // and past DURABLE's LSN lies at most the one frame a writer wrote and
        // died before publishing (which the scan reads whole, or which ends
        // with zeros after it). A zero header at or above the synced LSN is then
        // the end of all that was ever written, and the zeros after it need no
        // reading (docs/format.md, "When the zeros past the end need no
        // reading"). After `Durability::None` commits (unsynced frames
        // published) they are read, as before.
        let vouched = self.durable.read_vouched() && published.is_some_and(|p| p.synced == p.lsn);
        let past_end = deep && !vouched;
        if deep && !self.newest_name_durable(cur.segment) {
            // A writer whose directory sync failed (or who died before it) may have
            // left segment names that are not durable yet; make them so before
            // building on them.
            self.vfs.sync_dir(&self.wal_dir).map_err(|source| {
                self.poison();
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
            ScanStop::End if !past_end && !self.below_synced(cur) => {}
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
        // The log is whole up to its end: from now on what this handle publishes
        // carries the token. (Not written here for the token alone: a store that
        // recovery found unchanged stays byte for byte unchanged; the next commit
        // publishes it.)
        self.durable.vouch(true);
        if published != Some(self.to_publish(last)) {
            self.publish_unchecked(last)?;
        }
        Ok(true)
    }

    /// Whether the log stops at `cur` below an LSN known synced.
    pub(super) fn below_synced(&self, cur: &Cursor) -> bool {
        cur.last_lsn() < self.synced_lsn.load(Ordering::SeqCst)
    }

    /// Looks at what lies at and after `cur` (where the valid log stops). Cuts a torn
    /// tail; returns the damage if valid frames that were durable follow.
    pub(super) fn classify(&self, cur: &Cursor, reason: &str) -> Result<Option<Damage>> {
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
    pub(super) fn judge(
        &self,
        cur: &Cursor,
        reason: &str,
        synced: u64,
    ) -> Result<(Tail, Option<TornBytes>)> {
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
    pub(super) fn missing(&self, cur: &Cursor, synced: u64) -> Damage {
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
    pub(super) fn find_damage(
        &self,
        cur: &Cursor,
        reason: &str,
    ) -> Result<Option<(Damage, Vec<u8>)>> {
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

    pub(super) fn note_frame(&self, h: &FrameHeader, payload: &[u8], out: &mut Vec<Frame>) {
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
    pub(super) fn cut(&self, d: &Damage, tail: &[u8]) -> Result<()> {
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

    pub(super) fn quarantine(&self, name: &str, bytes: &[u8]) -> Result<()> {
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
        self.durable.vouch(false);
        self.synced_lsn.store(keep, Ordering::SeqCst);
        self.durable.publish_synced(self.to_publish(keep))?;
        self.cut(d, &rest)?;
        self.deep_checked.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Writes bytes `[from, to)` of `f` back as they read, so that the next sync
    /// writes them even if a failed writeback left them clean in the page cache.
    pub(super) fn redirty(
        &self,
        f: &Arc<dyn VfsFile>,
        path: &Path,
        from: u64,
        to: u64,
    ) -> Result<()> {
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
}
