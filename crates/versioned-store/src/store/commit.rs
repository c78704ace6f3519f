//! The commit pipeline: a transaction submitted to the group commit, the
//! leader's batch (validated against the state and the batch before it, logged
//! with one sync, applied), and the checkpoint a commit makes due.

use super::*;

impl Store {
    pub(crate) fn commit_pending(&self, p: Pending) -> Result<u64> {
        let inner = &self.inner;
        let r = inner.commits.submit(p, |batch| inner.run_batch(batch));
        if r.is_ok() && inner.opts.auto_checkpoint && !inner.opts.read_only {
            // With a checkpoint thread, a due checkpoint is its work unless the
            // tail has grown past what it should have kept up with.
            let inline = inner.checkpoint_due(1)
                && (!inner.opts.background_checkpoints
                    || inner.checkpoint_due(background::BACKLOG_FACTOR)
                    || !inner.checkpointer.request(inner));
            if inline {
                let res = inner.checkpoint();
                *inner.checkpoint_error.lock() = res.err().map(|e| e.to_string());
            }
            let cur = inner.reader.lock().cursor;
            if let Err(e) = inner.wal.ensure_preallocated(&cur) {
                // Not fatal: rotation creates the segment itself if none is ready.
                *inner.checkpoint_error.lock() = Some(format!("preallocation: {e}"));
            }
        }
        r
    }
}

impl Inner {
    /// Whether the tail since the checkpoint has passed `factor` times the
    /// checkpoint bounds.
    pub(super) fn checkpoint_due(&self, factor: u64) -> bool {
        let tail_bytes = self.reader.lock().tail_bytes;
        let tail_transactions = {
            let st = self.state.read();
            st.applied_lsn.saturating_sub(st.manifest.checkpoint_lsn)
        };
        tail_bytes > self.opts.checkpoint_wal_bytes.saturating_mul(factor)
            || tail_transactions > self.opts.checkpoint_transactions.saturating_mul(factor)
    }

    pub(super) fn run_batch(&self, batch: Vec<Pending>) -> Vec<Result<u64>> {
        match self.try_batch(&batch) {
            Ok(v) => v,
            Err(e) => batch.iter().map(|_| Err(dup_error(&e))).collect(),
        }
    }

    pub(super) fn try_batch(&self, batch: &[Pending]) -> Result<Vec<Result<u64>>> {
        let lock = self.lock.as_ref().ok_or(Error::ReadOnly)?;
        // A poisoned handle may be keeping the lock on purpose; say why it refuses.
        if self.wal.is_poisoned() {
            return Err(wal::Error::Poisoned.into());
        }
        let held = lock.acquire(self.opts.lock_timeout)?;
        let mut wcur = self.sync_with_log(&held)?;
        let mut results = Vec::with_capacity(batch.len());
        let mut accepted: Vec<&Pending> = Vec::new();
        {
            let st = self.state.read();
            let mut overlay: BTreeMap<Vec<u8>, (u64, Arc<[u8]>)> = BTreeMap::new();
            for p in batch {
                match validate(&st, &overlay, p) {
                    Ok(()) => {
                        let lsn = wcur.next_lsn + accepted.len() as u64;
                        for (k, v) in &p.writes {
                            overlay.insert(k.clone(), (lsn, v.clone()));
                        }
                        accepted.push(p);
                        results.push(Ok(lsn));
                    }
                    Err(e) => results.push(Err(e)),
                }
            }
        }
        if accepted.is_empty() {
            return Ok(results);
        }
        let records: Vec<&[u8]> = accepted.iter().map(|p| p.record.as_slice()).collect();
        let payload = record::encode_batch(&records);
        let appended = self
            .wal
            .append(&held, &mut wcur, &payload, accepted.len() as u32);
        let first = match appended {
            Ok(first) => {
                use std::sync::atomic::Ordering::Relaxed;
                self.frames_written.fetch_add(1, Relaxed);
                self.transactions_written
                    .fetch_add(accepted.len() as u64, Relaxed);
                first
            }
            Err(e) => {
                if self.wal.must_keep_lock() {
                    // The failed frame could not be erased: keep others from reading
                    // it until this handle is dropped.
                    held.keep();
                }
                let e = Error::from(e);
                return Ok(results
                    .into_iter()
                    .map(|r| r.and_then(|_| Err(dup_error(&e))))
                    .collect());
            }
        };
        let mut rd = self.reader.lock();
        self.apply(
            &mut rd,
            vec![wal::Frame {
                first_lsn: first,
                count: accepted.len() as u32,
                payload,
            }],
        )?;
        if rd.cursor.next_lsn < wcur.next_lsn {
            rd.cursor = wcur;
        }
        Ok(results)
    }
}

pub(super) fn describe_key(key: &[u8]) -> String {
    match key.first() {
        Some(b'e') => format!("entity {}", String::from_utf8_lossy(&key[1..])),
        _ => match model::edge_of_key(key) {
            Some((f, k, t)) => format!("edge {f} -{k}-> {t}"),
            None => "a key".into(),
        },
    }
}

/// Validates one transaction against the latest state plus the earlier members of
/// its batch: the read set, then the cross-entity invariants.
pub(super) fn validate(
    st: &State,
    overlay: &BTreeMap<Vec<u8>, (u64, Arc<[u8]>)>,
    p: &Pending,
) -> Result<()> {
    for (key, seen) in &p.reads {
        let now = match overlay.get(key) {
            Some((l, _)) => *l,
            None => st.latest_lsn(key)?,
        };
        if now != *seen {
            return Err(Error::Conflict(format!(
                "{} changed since this transaction read it (LSN {seen} → {now})",
                describe_key(key)
            )));
        }
    }
    // The invariants are checked on what the transaction leaves, not on the steps
    // it took to get there (it may add an edge and then delete its endpoint).
    for (key, value) in &p.writes {
        match key.first() {
            Some(b'o') => {
                if !model::decode::<EdgeRecord>(value, "edge record")?.present {
                    continue;
                }
                let Some((from, _, to)) = model::edge_of_key(key) else {
                    continue;
                };
                for id in [&from, &to] {
                    if !alive(latest(st, overlay, &p.writes, &model::entity_key(id))?)? {
                        return Err(Error::Conflict(format!(
                            "edge endpoint {id} no longer exists"
                        )));
                    }
                }
            }
            Some(b'e') => {
                if !model::decode::<EntityRecord>(value, "entity record")?.deleted {
                    continue;
                }
                let id = String::from_utf8_lossy(&key[1..]).into_owned();
                check_no_live_edges(st, overlay, p, &id)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// A deleted entity must have no live edge left in the latest state, including
/// edges other transactions added concurrently.
pub(super) fn check_no_live_edges(
    st: &State,
    overlay: &BTreeMap<Vec<u8>, (u64, Arc<[u8]>)>,
    p: &Pending,
    id: &str,
) -> Result<()> {
    for tag in [b'o', b'i'] {
        let prefix = model::edge_prefix(tag, id);
        let mut keys: Vec<Vec<u8>> = st.scan_prefix(&prefix, u64::MAX)?.into_keys().collect();
        keys.extend(
            overlay
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(k, _)| k.clone()),
        );
        for k in keys {
            if let Some(b) = latest(st, overlay, &p.writes, &k)? {
                if model::decode::<EdgeRecord>(&b, "edge record")?.present {
                    return Err(Error::Conflict(format!(
                        "{} was added concurrently to deleted entity {id}",
                        describe_key(&k)
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Errors are not `Clone`; each member of a failed batch gets an equivalent one.
pub(crate) fn dup_error(e: &Error) -> Error {
    use wal::Error as W;
    let io = |s: &std::io::Error| std::io::Error::new(s.kind(), s.to_string());
    match e {
        Error::Wal(w) => Error::Wal(match w {
            W::Io { path, source } => W::Io {
                path: path.clone(),
                source: io(source),
            },
            W::Corruption {
                file,
                offset,
                detail,
            } => W::Corruption {
                file: file.clone(),
                offset: *offset,
                detail: detail.clone(),
            },
            W::Locked { holder, waited_ms } => W::Locked {
                holder: holder.clone(),
                waited_ms: *waited_ms,
            },
            W::SyncFailed { path, source } => W::SyncFailed {
                path: path.clone(),
                source: io(source),
            },
            W::Poisoned => W::Poisoned,
            W::FrameTooLarge { size, max } => W::FrameTooLarge {
                size: *size,
                max: *max,
            },
            W::TooNew {
                file,
                found,
                supported,
            } => W::TooNew {
                file: file.clone(),
                found: *found,
                supported: *supported,
            },
            W::BadFile { file, detail } => W::BadFile {
                file: file.clone(),
                detail: detail.clone(),
            },
        }),
        Error::NotFound(s) => Error::NotFound(s.clone()),
        Error::Conflict(s) => Error::Conflict(s.clone()),
        Error::Invalid(s) => Error::Invalid(s.clone()),
        Error::NotAStore { path, detail } => Error::NotAStore {
            path: path.clone(),
            detail: detail.clone(),
        },
        Error::AlreadyExists(p) => Error::AlreadyExists(p.clone()),
        Error::CorruptFile { file, detail } => Error::CorruptFile {
            file: file.clone(),
            detail: detail.clone(),
        },
        Error::Decode(s) => Error::Decode(s.clone()),
        Error::ReadOnly => Error::ReadOnly,
        Error::Finished => Error::Finished,
    }
}

/// Encodes a transaction's record (before the lock is taken).
pub(crate) fn encode_record(
    actor: &str,
    time_ms: i64,
    writes: &BTreeMap<Vec<u8>, Arc<[u8]>>,
) -> Vec<u8> {
    model::encode(&TxRecord {
        actor: actor.to_string(),
        time_ms,
        writes: writes
            .iter()
            .map(|(k, v)| (k.clone(), v.to_vec()))
            .collect(),
    })
}

/// The newest value of `key` as of the batch so far: own writes, then earlier
/// members of the batch, then the state.
pub(super) fn latest(
    st: &State,
    overlay: &BTreeMap<Vec<u8>, (u64, Arc<[u8]>)>,
    own: &BTreeMap<Vec<u8>, Arc<[u8]>>,
    key: &[u8],
) -> Result<Option<Arc<[u8]>>> {
    if let Some(v) = own.get(key) {
        return Ok(Some(v.clone()));
    }
    if let Some((_, v)) = overlay.get(key) {
        return Ok(Some(v.clone()));
    }
    Ok(st.get(key, u64::MAX)?.map(|(_, v)| v))
}

pub(super) fn alive(v: Option<Arc<[u8]>>) -> Result<bool> {
    match v {
        None => Ok(false),
        Some(b) => Ok(!model::decode::<EntityRecord>(&b, "entity record")?.deleted),
    }
}
