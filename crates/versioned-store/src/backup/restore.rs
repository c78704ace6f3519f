//! Restoring a backup into its store, and repairing a damaged store from a
//! backup (the backup's state, then the log's frames after it that still read).

use super::*;

/// A manifest generation's top bits count restores (checkpoints count in the
/// low bits): a handle that sees the count change knows history was replaced.
pub(super) const RESTORE_SHIFT: u32 = 48;

/// How many restores a store with this manifest generation has been through.
pub fn restore_count(generation: u64) -> u64 {
    generation >> RESTORE_SHIFT
}

/// The marker a restore leaves while it replaces the store's files: a store
/// holding it refuses to open until the restore is run again to its end.
pub const RESTORING: &str = "RESTORING";

/// What a restore did.
#[derive(Clone, Debug, PartialEq)]
pub struct RestoreInfo {
    pub restored: BackupInfo,
    /// The backup of the state the restore replaced (`None` when that state was
    /// too damaged to back up, or when finishing an interrupted restore, whose
    /// first run kept it).
    pub safety: Option<BackupInfo>,
    /// Where the replaced state was kept as it was, when it could not be backed
    /// up (damaged): its CURRENT and runs, linked into `quarantine/repair-…/`.
    pub quarantined: Option<PathBuf>,
}

/// Where a restore kept the state it replaced.
pub(super) enum Kept {
    Backup(BackupInfo),
    Quarantine(PathBuf),
    /// An earlier, interrupted run of the same restore kept it.
    Earlier,
}

/// Replaces the store's contents with backup `name`, under the writer lock (a
/// `Locked` error if another process holds it past `lock_timeout`). First
/// backs up the current state. Crash-safe by a marker: until the new CURRENT is
/// durable the store refuses to open and names the restore to finish; running
/// it again completes it.
pub fn restore(
    vfs: std::sync::Arc<dyn Vfs>,
    dir: &Path,
    name: &str,
    lock_timeout: std::time::Duration,
) -> Result<RestoreInfo> {
    let v = vfs.as_ref();
    let (src, bm) = open_backup(v, dir, name)?;
    let live = manifest::read(v, dir)?;
    if bm.store_id != live.store_id {
        return Err(Error::Invalid(format!(
            "backup {name} belongs to another store"
        )));
    }
    let lock = wal::ProcessLock::open(v, dir)?;
    let held = lock.acquire(lock_timeout)?;
    let safety = restore_locked(&vfs, dir, name, &src, &bm, live.generation, Safety::Backup)?;
    drop(held);
    restored_info(v, dir, name, safety)
}

/// The directory and manifest of backup `name`.
pub(super) fn open_backup(v: &dyn Vfs, dir: &Path, name: &str) -> Result<(PathBuf, Manifest)> {
    let src = dir.join("backups").join(name);
    if name.contains('/') || name.starts_with('.') || !v.exists(&src).map_err(io_at(&src))? {
        return Err(Error::NotFound(format!(
            "no backup {name} (see `got backup list`)"
        )));
    }
    let bm = manifest::read(v, &src)?;
    Ok((src, bm))
}

pub(super) fn restored_info(
    v: &dyn Vfs,
    dir: &Path,
    name: &str,
    kept: Kept,
) -> Result<RestoreInfo> {
    let restored = list_backups(v, dir)?
        .into_iter()
        .find(|b| b.name == name)
        .ok_or_else(|| Error::NotFound(format!("backup {name} vanished")))?;
    let (safety, quarantined) = match kept {
        Kept::Backup(b) => (Some(b), None),
        Kept::Quarantine(q) => (None, Some(q)),
        Kept::Earlier => (None, None),
    };
    Ok(RestoreInfo {
        restored,
        safety,
        quarantined,
    })
}

/// How a restore keeps the state it replaces.
pub(super) enum Safety {
    /// A backup of it, which must succeed (a plain restore).
    Backup,
    /// A backup if the store still opens; else its CURRENT and runs are linked
    /// into `quarantine/` (a repair: the state may be too damaged to open).
    BackupOrQuarantine,
}

/// What [`repair_from_backup`] did.
#[derive(Clone, Debug)]
pub struct RepairFromBackup {
    pub restore: RestoreInfo,
    /// The backup's LSN: everything at or below it came from the backup.
    pub backup_lsn: u64,
    /// Transactions replayed from the damaged store's log after the backup.
    pub replayed: u64,
    /// The store's last LSN after the repair.
    pub last_lsn: u64,
    /// Why the replay stopped where it did (the end of the log, damage, or a
    /// log that no longer reaches back to the backup).
    pub stopped: String,
}

/// Restores backup `name`, then replays the damaged store's intact log frames
/// that follow the backup's LSN, in order, up to the first that is missing or
/// damaged: the store ends at the newest consistent state the backup and the
/// log together still hold. Everything under one hold of the writer lock.
/// The replaced state is kept: backed up when it still opens, else its CURRENT
/// and runs linked into `quarantine/`; its log goes to `quarantine/` as in a
/// restore. The frames to replay are first written to `REPAIRING` (synced),
/// which stays until they are all appended: a repair cut short anywhere, run
/// again, restores the backup again and replays them from there (tested by
/// cutting it at every operation).
pub fn repair_from_backup(
    vfs: std::sync::Arc<dyn Vfs>,
    dir: &Path,
    name: &str,
    lock_timeout: std::time::Duration,
) -> Result<RepairFromBackup> {
    let v = vfs.as_ref();
    let (src, bm) = open_backup(v, dir, name)?;
    // CURRENT itself may be what is damaged: then DURABLE says the generation.
    let live_generation = match manifest::read(v, dir) {
        Ok(live) if live.store_id != bm.store_id => {
            return Err(Error::Invalid(format!(
                "backup {name} belongs to another store"
            )))
        }
        Ok(live) => live.generation,
        Err(_) => wal::durable::DurableFile::open(v, dir, bm.store_id, false)
            .and_then(|d| d.read())
            .map_or(0, |p| p.generation),
    };
    let lock = wal::ProcessLock::open(v, dir)?;
    let held = lock.acquire(lock_timeout)?;
    // The frames after the backup, read before the log is replaced, and kept in
    // REPAIRING until they are replayed: a repair cut short and run again
    // replays them from there (the log it read them from is gone by then).
    let after = bm.checkpoint_lsn;
    let pending = dir.join(REPAIRING);
    let (frames, stopped) = match read_repairing(v, &pending, after)? {
        Some(kept) => kept,
        None => {
            let old = wal::Wal::open(vfs.clone(), dir, bm.store_id, WalOptions::default(), false)?;
            let mut frames = Vec::new();
            let stopped = match old.position(after) {
                Err(e) => format!("the log does not reach back to LSN {} ({e})", after + 1),
                Ok(mut cur) => match old.scan(&mut cur, None, &mut frames, usize::MAX) {
                    Ok(wal::ScanStop::End) => "the end of the log".to_string(),
                    Ok(wal::ScanStop::Invalid(r)) => {
                        format!("LSN {}: {r}", cur.next_lsn)
                    }
                    Ok(wal::ScanStop::MissingSegment) => {
                        format!("LSN {}: its segment is missing", cur.next_lsn)
                    }
                    Ok(wal::ScanStop::Bound) => unreachable!("unbounded scan"),
                    Err(e) => format!("LSN {}: {e}", cur.next_lsn),
                },
            };
            drop(old);
            write_repairing(v, dir, after, &frames, &stopped)?;
            (frames, stopped)
        }
    };
    let safety = restore_locked(
        &vfs,
        dir,
        name,
        &src,
        &bm,
        live_generation,
        Safety::BackupOrQuarantine,
    )?;
    // The restored log ends at the backup's LSN: append the frames as they were.
    let wal = wal::Wal::open(vfs.clone(), dir, bm.store_id, WalOptions::default(), true)?;
    let m = manifest::read(v, dir)?;
    wal.set_generation(m.generation);
    let mut cur = wal.position(after)?;
    let mut none = Vec::new();
    wal.recover(&held, &mut cur, &mut none, None)?;
    let mut replayed = 0u64;
    for f in &frames {
        if f.first_lsn != cur.next_lsn {
            break;
        }
        wal.append(&held, &mut cur, &f.payload, f.count)?;
        replayed += f.count as u64;
    }
    v.remove_file(&pending).map_err(io_at(&pending))?;
    v.sync_dir(dir).map_err(io_at(dir))?;
    drop(held);
    Ok(RepairFromBackup {
        restore: restored_info(v, dir, name, safety)?,
        backup_lsn: after,
        replayed,
        last_lsn: cur.last_lsn(),
        stopped,
    })
}

/// The body of a restore, under the writer lock: returns the safety backup.
pub(super) fn restore_locked(
    vfs: &std::sync::Arc<dyn Vfs>,
    dir: &Path,
    name: &str,
    src: &Path,
    bm: &Manifest,
    live_generation: u64,
    keep: Safety,
) -> Result<Kept> {
    let v = vfs.as_ref();
    let marker = dir.join(RESTORING);
    let resuming = v.exists(&marker).map_err(io_at(&marker))?;
    // Runs: the backup's, copied in under temporary names and verified before
    // anything of the store changes (a damaged backup is refused, the store as it
    // was); renamed into place once the replaced state is kept.
    let runs_dir = dir.join("runs");
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    for r in &bm.runs {
        let from = src.join("runs").join(&r.name);
        match stage_run(v, &from, &runs_dir, r, bm.store_id) {
            Ok(tmp) => staged.push((tmp, runs_dir.join(&r.name))),
            Err(e) => {
                for (tmp, _) in &staged {
                    let _ = v.remove_file(tmp);
                }
                return Err(damaged_source(e, &from, RESTORE_REFUSED));
            }
        }
    }
    let kept = (|| -> Result<Kept> {
        if resuming {
            return Ok(Kept::Earlier);
        }
        // The current state, kept: a read-only handle takes no lock.
        let b = Store::open_with_vfs(
            vfs.clone(),
            dir,
            crate::Options {
                read_only: true,
                ..crate::Options::default()
            },
        )
        .and_then(|h| h.backup(None));
        let kept = match (b, keep) {
            (Ok(b), _) => Kept::Backup(b),
            // Damage is what a restore is for: the damaged state cannot be backed
            // up (its copies do not verify), so it is kept as it is instead.
            (Err(e), Safety::Backup) if !e.is_corruption() => return Err(e),
            (Err(_), _) => Kept::Quarantine(quarantine_state(v, dir)?),
        };
        let f = v
            .open(&marker, OpenMode::CreateReadWrite)
            .map_err(io_at(&marker))?;
        f.write_at(name.as_bytes(), 0).map_err(io_at(&marker))?;
        f.sync_data().map_err(io_at(&marker))?;
        v.sync_dir(dir).map_err(io_at(dir))?;
        Ok(kept)
    })();
    let kept = match kept {
        Ok(k) => k,
        Err(e) => {
            for (tmp, _) in &staged {
                let _ = v.remove_file(tmp);
            }
            return Err(e);
        }
    };
    // A run of the same name in the store is the one the backup copied, but it
    // may be what is damaged: the verified copy replaces it (by rename, so a
    // process that has the old file mapped keeps reading the old bytes).
    for (tmp, to) in &staged {
        v.rename(tmp, to).map_err(io_at(tmp))?;
    }
    v.sync_dir(&runs_dir).map_err(io_at(&runs_dir))?;
    // The log: the current segments go to quarantine/ (kept, not read), the
    // backup's empty log (starting at its LSN + 1) is copied in.
    let wal_dir = dir.join("wal");
    let q = dir.join("quarantine");
    wal::create_dir_durable(v, &q).map_err(io_at(&q))?;
    let tag = stamp(now_ms());
    for n in v.list_dir(&wal_dir).map_err(io_at(&wal_dir))? {
        let from = wal_dir.join(&n);
        let bytes = v
            .open(&from, OpenMode::Read)
            .and_then(|f| f.read_all())
            .map_err(io_at(&from))?;
        let to = q.join(format!("restore-{tag}-{n}"));
        let f = v.open(&to, OpenMode::CreateReadWrite).map_err(io_at(&to))?;
        f.write_at(&bytes, 0).map_err(io_at(&to))?;
        f.sync_data().map_err(io_at(&to))?;
        v.sync_dir(&q).map_err(io_at(&q))?;
        v.remove_file(&from).map_err(io_at(&from))?;
    }
    for n in v.list_dir(&src.join("wal")).map_err(io_at(src))? {
        let bytes = v
            .open(&src.join("wal").join(&n), OpenMode::Read)
            .and_then(|f| f.read_all())
            .map_err(io_at(src))?;
        let to = wal_dir.join(&n);
        let f = v.open(&to, OpenMode::CreateReadWrite).map_err(io_at(&to))?;
        f.set_len(0).map_err(io_at(&to))?;
        f.write_at(&bytes, 0).map_err(io_at(&to))?;
        f.sync_data().map_err(io_at(&to))?;
    }
    v.sync_dir(&q).map_err(io_at(&q))?;
    v.sync_dir(&wal_dir).map_err(io_at(&wal_dir))?;
    // A generation with the restore count raised: every open handle reloads and,
    // seeing the count change, drops what it applied from the old log.
    let generation = (restore_count(live_generation) + 1) << RESTORE_SHIFT;
    let durable = dir.join("DURABLE");
    let f = v
        .open(&durable, OpenMode::CreateReadWrite)
        .map_err(io_at(&durable))?;
    f.write_at(
        &wal::durable::encode(
            wal::Published::synced(bm.checkpoint_lsn, generation),
            &bm.store_id,
        ),
        0,
    )
    .map_err(io_at(&durable))?;
    f.sync_data().map_err(io_at(&durable))?;
    manifest::write(
        v,
        dir,
        &Manifest {
            generation,
            ..bm.clone()
        },
    )?;
    // From here the restored state is the store's. Runs no longer named go (the
    // safety backup holds links to them); then the marker.
    let keep: Vec<&str> = bm.runs.iter().map(|r| r.name.as_str()).collect();
    for n in v.list_dir(&runs_dir).map_err(io_at(&runs_dir))? {
        if n.ends_with(".run") && !keep.contains(&n.as_str()) {
            let p = runs_dir.join(&n);
            v.remove_file(&p).map_err(io_at(&p))?;
        }
    }
    v.sync_dir(&runs_dir).map_err(io_at(&runs_dir))?;
    if v.exists(&marker).map_err(io_at(&marker))? {
        v.remove_file(&marker).map_err(io_at(&marker))?;
    }
    v.sync_dir(dir).map_err(io_at(dir))?;
    Ok(kept)
}

/// Links CURRENT and every run into `quarantine/repair-<time>/` (a state too
/// damaged to back up is kept as it is); returns that directory. Links, not
/// copies: these files leave the store, and quarantine keeps the damaged bytes
/// for inspection, not as a backup.
pub(super) fn quarantine_state(v: &dyn Vfs, dir: &Path) -> Result<PathBuf> {
    let q = dir
        .join("quarantine")
        .join(format!("repair-{}", stamp(now_ms())));
    wal::create_dir_durable(v, &q.join("runs")).map_err(io_at(&q))?;
    let current = dir.join("CURRENT");
    if v.exists(&current).map_err(io_at(&current))? {
        v.hard_link(&current, &q.join("CURRENT"))
            .map_err(io_at(&current))?;
    }
    let runs = dir.join("runs");
    for n in v.list_dir(&runs).map_err(io_at(&runs))? {
        if n.ends_with(".run") {
            v.hard_link(&runs.join(&n), &q.join("runs").join(&n))
                .map_err(io_at(&runs))?;
        }
    }
    v.sync_dir(&q.join("runs")).map_err(io_at(&q))?;
    v.sync_dir(&q).map_err(io_at(&q))?;
    v.sync_dir(&dir.join("quarantine")).map_err(io_at(dir))?;
    Ok(q)
}
