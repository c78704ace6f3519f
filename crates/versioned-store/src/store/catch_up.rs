//! Catch-up: applying the log's frames after what this process has seen,
//! reloading when another process's checkpoint moved the manifest, and the lock
//! holder's sync with the log.

use super::*;

impl Inner {
    /// Applies frames (idempotently: LSNs at or below `applied_lsn` are skipped).
    pub(super) fn apply(&self, rd: &mut ReaderState, frames: Vec<wal::Frame>) -> Result<()> {
        if frames.is_empty() {
            return Ok(());
        }
        let mut decoded = Vec::with_capacity(frames.len());
        for f in &frames {
            rd.tail_bytes += f.payload.len() as u64;
            decoded.push((f.first_lsn, record::decode_batch(&f.payload, f.count)?));
        }
        let mut changed: Vec<String> = Vec::new();
        {
            let mut st = self.state.write();
            for (first, records) in decoded {
                for (i, rec) in records.into_iter().enumerate() {
                    let lsn = first + i as u64;
                    if lsn <= st.applied_lsn {
                        continue;
                    }
                    let derives = self.opts.deriver.is_some();
                    let mut written =
                        Vec::with_capacity(if derives { rec.writes.len() } else { 0 });
                    for (k, v) in rec.writes {
                        if k.first() == Some(&b'e') {
                            changed.push(String::from_utf8_lossy(&k[1..]).into_owned());
                        }
                        if derives {
                            written.push(k.clone());
                        }
                        st.mem.insert(k, lsn, Arc::from(v));
                    }
                    if derives {
                        // Derived later, when first needed (see `State::underived`).
                        st.underived.push(lsn, written);
                    }
                    st.applied_lsn = lsn;
                }
            }
        }
        if !changed.is_empty() {
            let ids: Vec<&str> = changed.iter().map(String::as_str).collect();
            for l in self.listeners.read().iter() {
                l.entities_changed(&ids);
            }
        }
        Ok(())
    }

    /// Loads a newer CURRENT: its runs, and drops the delta they now hold.
    pub(super) fn reload(&self, rd: &mut ReaderState) -> Result<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let r = (|| {
                let m = manifest::read(self.vfs.as_ref(), &self.dir)?;
                if m.generation == rd.generation {
                    return Ok(None);
                }
                let reuse = self.state.read().runs.clone();
                let runs = open_runs(self.vfs.as_ref(), &self.dir, &m, &reuse)?;
                let cursor = if rd.cursor.next_lsn <= m.checkpoint_lsn {
                    Some(
                        self.wal
                            .position_from(m.checkpoint_lsn, m.wal_position_hint())?,
                    )
                } else {
                    None
                };
                Ok(Some((m, runs, cursor)))
            })();
            let (m, runs, cursor) = match r {
                Err(e) if attempt < 20 && is_not_found(&e) => continue,
                Err(e) => return Err(e),
                Ok(None) => return Ok(()),
                Ok(Some(x)) => x,
            };
            let mut st = self.state.write();
            let restored = crate::backup::restore_count(m.generation)
                != crate::backup::restore_count(rd.generation);
            let skipped = restored || m.checkpoint_lsn > st.applied_lsn;
            if restored {
                // The store was restored from a backup: history went back to the
                // backup's LSN; nothing applied from the old log stands.
                st.mem = MemTable::default();
                st.frozen = None;
                st.underived.clear();
                st.applied_lsn = m.checkpoint_lsn;
                self.wal.rewind(m.checkpoint_lsn);
                rd.cursor = self.wal.position(m.checkpoint_lsn)?;
                rd.tail_bytes = 0;
            } else {
                // A checkpoint of this process in progress finds the manifest
                // moved and drops its run; its frozen delta may hold versions
                // above the new checkpoint (another process froze first and
                // published last), so it is folded back now.
                st.fold_frozen_pruning(m.checkpoint_lsn);
                // The new runs hold the derived entries up to their checkpoint.
                let ckpt = m.checkpoint_lsn;
                st.underived.drop_through(ckpt);
                st.applied_lsn = st.applied_lsn.max(m.checkpoint_lsn);
            }
            rd.generation = m.generation;
            self.wal.set_generation(m.generation);
            if let (Some(c), false) = (cursor, restored) {
                rd.cursor = c;
                rd.tail_bytes = 0;
            }
            st.manifest = m;
            st.runs = runs;
            drop(st);
            if skipped {
                for l in self.listeners.read().iter() {
                    l.everything_changed();
                }
            }
            self.rebuild_derived_if_stale()?;
            return Ok(());
        }
    }

    /// Lock-free catch-up to the published durable LSN.
    pub(crate) fn catch_up(&self) -> Result<()> {
        let mut rd = self.reader.lock();
        let published = self.wal.published()?;
        if published.generation != rd.generation {
            self.reload(&mut rd)?;
        }
        for _ in 0..20 {
            let mut frames = Vec::new();
            let stop = self
                .wal
                .read_committed(published, &mut rd.cursor, &mut frames)?;
            self.apply(&mut rd, frames)?;
            if stop != ScanStop::MissingSegment {
                return Ok(());
            }
            self.reload(&mut rd)?;
        }
        Ok(())
    }

    /// Under the lock: recover and apply everything in the log; returns the write
    /// position (the end of the log).
    pub(super) fn sync_with_log(&self, held: &LockHeld) -> Result<Cursor> {
        let mut rd = self.reader.lock();
        // DURABLE is not synced, so a power loss may leave it garbled: the lock
        // holder then asks CURRENT directly, and recovery rewrites DURABLE.
        let published = match self.wal.published() {
            Ok(p) => Some(p),
            Err(e @ wal::Error::TooNew { .. }) => return Err(e.into()),
            Err(_) => None,
        };
        if published.is_none_or(|p| p.generation != rd.generation) {
            self.reload(&mut rd)?;
        }
        for _ in 0..20 {
            let mut frames = Vec::new();
            let complete = self
                .wal
                .recover(held, &mut rd.cursor, &mut frames, published)?;
            self.apply(&mut rd, frames)?;
            if complete {
                return Ok(rd.cursor);
            }
            self.reload(&mut rd)?;
        }
        Err(Error::Invalid(
            "could not find the end of the log after 20 tries".into(),
        ))
    }
}
