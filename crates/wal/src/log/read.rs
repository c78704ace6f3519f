//! Reading the log: positioning a cursor (from a checkpoint LSN, or a hint of
//! where the last read stopped), the scan of frames through a read-ahead
//! buffer, and the lock-free catch-up up to `DURABLE`.

use super::*;

impl Wal {
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
    pub(super) fn hint_fits(
        &self,
        seg: u64,
        last_frame: u64,
        offset: u64,
        after_lsn: u64,
    ) -> Result<bool> {
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
