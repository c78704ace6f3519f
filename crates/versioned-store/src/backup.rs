//! Backups: a consistent copy of the store at one LSN, itself a store directory
//! under `backups/<name>/`.
//!
//! A backup is taken without the writer lock: the handle catches up to the
//! durable LSN L and copies, under its state's read lock, the manifest, the open
//! runs and the in-memory delta (every version above the checkpoint up to L).
//! Then, with no lock: the runs are copied byte for byte and each copy is read
//! back and verified against its checksums, the delta is written as one more
//! run, and a CURRENT naming them all with checkpoint LSN L and an empty log
//! starting at L + 1 complete a store directory; CURRENT is written last and
//! atomically, so a directory without it (a crash mid-way) is not a backup and
//! is never listed: a backup is whole or absent. Commits racing with it are
//! simply not in it.
//!
//! Never a hard link, nor a reflink: both share the bytes on the medium, so one
//! bad block would damage the store and every backup of it at once. A copy
//! costs the run's size in time and space; that is what a backup is. A copy
//! that does not verify (the store's run is damaged) fails the backup, naming
//! the run: a bad block in the store never reaches its backups. A restore copies
//! the backup's runs into the store the same way, so the two stay independent.

use crate::error::{io_at, Error, Result};
use crate::manifest::{self, Manifest};
use crate::run;
use crate::store::Store;
use crate::util::{now_ms, random_u64};
use std::path::{Path, PathBuf};
use wal::{OpenMode, Vfs, WalOptions};

/// What `backups/` holds about one backup.
#[derive(Clone, Debug, PartialEq)]
pub struct BackupInfo {
    pub name: String,
    /// Everything at or below this LSN is in the backup.
    pub lsn: u64,
    pub runs: usize,
    pub bytes: u64,
    pub path: PathBuf,
}

/// `YYYYMMDDTHHMMSS.mmmZ` for a time in ms (UTC): names that sort by time.
fn stamp(ms: i64) -> String {
    let t = crate::time::utc(ms);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.milli
    )
}

fn dir_bytes(vfs: &dyn Vfs, dir: &Path) -> u64 {
    let mut total = 0;
    for sub in ["", "runs", "wal"] {
        let d = if sub.is_empty() {
            dir.to_path_buf()
        } else {
            dir.join(sub)
        };
        for n in vfs.list_dir(&d).unwrap_or_default() {
            if let Ok(f) = vfs.open(&d.join(&n), OpenMode::Read) {
                total += f.len().unwrap_or(0);
            }
        }
    }
    total
}

/// Removes a backup directory: CURRENT first (from then on it is no backup),
/// then its files, then the directories.
fn remove_tree(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    let current = dir.join("CURRENT");
    if vfs.exists(&current).map_err(io_at(&current))? {
        vfs.remove_file(&current).map_err(io_at(&current))?;
        vfs.sync_dir(dir).map_err(io_at(dir))?;
    }
    for sub in ["runs", "wal", "quarantine", "backups"] {
        let d = dir.join(sub);
        if let Ok(names) = vfs.list_dir(&d) {
            for n in names {
                let p = d.join(n);
                vfs.remove_file(&p).map_err(io_at(&p))?;
            }
            vfs.remove_dir(&d).or_else(|e| ignore_missing(e, &d))?;
        }
    }
    if let Ok(names) = vfs.list_dir(dir) {
        let subdirs = ["runs", "wal", "quarantine", "backups"];
        for n in names.into_iter().filter(|n| !subdirs.contains(&n.as_str())) {
            let p = dir.join(n);
            vfs.remove_file(&p).map_err(io_at(&p))?;
        }
    }
    vfs.remove_dir(dir).or_else(|e| ignore_missing(e, dir))
}

/// Bytes copied per read and write.
const COPY_CHUNK_BYTES: usize = 1 << 20;

/// Copies run `meta` from `from` into `to_dir` as an independent file: its bytes
/// read and written (no link of any kind) and synced under a temporary name,
/// then opened and verified against every checksum it carries. Returns the
/// temporary path; the caller renames it and syncs `to_dir`. A copy that does
/// not verify is removed and the error names the copy; the source it came from
/// is then damaged (or the medium under the copy is).
fn stage_run(
    v: &dyn Vfs,
    from: &Path,
    to_dir: &Path,
    meta: &run::RunMeta,
    store_id: [u8; 16],
) -> Result<PathBuf> {
    let tmp_name = format!(
        "{}.{}.{:016x}.tmp",
        meta.name,
        std::process::id(),
        random_u64()
    );
    let tmp = to_dir.join(&tmp_name);
    let checked = (|| -> Result<()> {
        let len = copy_bytes(v, from, &tmp)?;
        if len != meta.bytes {
            return Err(Error::CorruptFile {
                file: from.to_path_buf(),
                detail: format!("{len} bytes, the manifest says {}", meta.bytes),
            });
        }
        let as_copied = run::RunMeta {
            name: tmp_name.clone(),
            ..meta.clone()
        };
        run::Run::open(v, to_dir, &as_copied, store_id)?.verify()
    })();
    if let Err(e) = checked {
        let _ = v.remove_file(&tmp);
        return Err(e);
    }
    Ok(tmp)
}

/// Writes a byte-for-byte copy of `from` at `to` (created or replaced), synced.
fn copy_bytes(v: &dyn Vfs, from: &Path, to: &Path) -> Result<u64> {
    let src = v.open(from, OpenMode::Read).map_err(io_at(from))?;
    let len = src.len().map_err(io_at(from))?;
    let dst = v.open(to, OpenMode::CreateReadWrite).map_err(io_at(to))?;
    dst.set_len(0).map_err(io_at(to))?;
    let mut buf = vec![0u8; (len as usize).min(COPY_CHUNK_BYTES)];
    let mut off = 0u64;
    while off < len {
        let n = ((len - off) as usize).min(buf.len());
        src.read_exact_at(&mut buf[..n], off).map_err(io_at(from))?;
        dst.write_at(&buf[..n], off).map_err(io_at(to))?;
        off += n as u64;
    }
    dst.sync_data().map_err(io_at(to))?;
    Ok(len)
}

const BACKUP_REFUSED: &str = "the backup was refused, so that the damage does not spread; `got verify` checks the store, `got repair --from-backup NAME` repairs it from an earlier backup";
const RESTORE_REFUSED: &str =
    "the restore was refused before it changed the store; `got backup verify NAME` checks a backup";

/// A copy of `source` that failed its checksums: corruption of the source (the
/// copy holds exactly its bytes), named so, saying what was refused.
fn damaged_source(e: Error, source: &Path, refused: &str) -> Error {
    if !e.is_corruption() {
        return e;
    }
    Error::CorruptFile {
        file: source.to_path_buf(),
        detail: format!("its copy does not verify ({e}); {refused}"),
    }
}

fn ignore_missing(e: std::io::Error, p: &Path) -> Result<()> {
    if matches!(e.kind(), std::io::ErrorKind::NotFound) {
        Ok(())
    } else {
        Err(io_at(p)(e))
    }
}

impl Store {
    /// Takes a backup (see the module docs) and keeps only the newest `keep`
    /// backups (`None`: all).
    pub fn backup(&self, keep: Option<usize>) -> Result<BackupInfo> {
        self.backup_with_progress(keep, &mut |_, _, _| {})
    }

    /// [`Store::backup`], reporting progress as `("backup", files done, files)`.
    pub fn backup_with_progress(
        &self,
        keep: Option<usize>,
        progress: crate::Progress<'_>,
    ) -> Result<BackupInfo> {
        let inner = &self.inner;
        let vfs = inner.vfs.as_ref();
        inner.catch_up()?;
        // The backup's runs hold derived entries for everything up to its LSN
        // (another thread may apply more in between: then derive again).
        let (m, runs, delta, lsn) = loop {
            inner.ensure_derived()?;
            let st = inner.state.read();
            if st.underived.is_empty() {
                break (
                    st.manifest.clone(),
                    st.runs.clone(),
                    st.mem.clone(),
                    st.applied_lsn,
                );
            }
        };
        let backups = inner.dir.join("backups");
        wal::create_dir_durable(vfs, &backups).map_err(io_at(&backups))?;
        // LSNs repeat after a restore, and two backups can share a millisecond:
        // a counter keeps names unique.
        let base = format!("{}-lsn{lsn:012}", stamp(now_ms()));
        let mut name = base.clone();
        let mut n = 1;
        while vfs.exists(&backups.join(&name)).map_err(io_at(&backups))? {
            n += 1;
            name = format!("{base}-{n}");
        }
        // Built in place; CURRENT, written last and atomically, is what makes it
        // a backup (as it makes a directory a store): a crash before leaves a
        // directory `list_backups` does not count.
        let dst = backups.join(&name);
        let tmp = dst.clone();
        let result = (|| -> Result<usize> {
            for sub in ["runs", "quarantine", "backups"] {
                let d = tmp.join(sub);
                vfs.create_dir_all(&d).map_err(io_at(&d))?;
            }
            let runs_dir = tmp.join("runs");
            let mut metas = Vec::new();
            // The delta's run, each run copied, the log and CURRENT.
            let files = runs.len() as u64 + 3;
            let mut done = 0;
            progress("backup", done, files);
            if !delta.is_empty() {
                let run_name = format!("{lsn:020}-backup-{:08x}.run", random_u64() as u32);
                metas.push(run::write_run(
                    vfs,
                    &runs_dir,
                    &run_name,
                    inner.store_id,
                    inner.derived_version(),
                    delta.into_entries().map(Ok),
                )?);
            }
            done += 1;
            progress("backup", done, files);
            for r in &runs {
                let staged = stage_run(vfs, r.path(), &runs_dir, &r.meta, inner.store_id)
                    .map_err(|e| damaged_source(e, r.path(), BACKUP_REFUSED))?;
                let to = runs_dir.join(&r.meta.name);
                vfs.rename(&staged, &to).map_err(io_at(&staged))?;
                metas.push(r.meta.clone());
                done += 1;
                progress("backup", done, files);
            }
            vfs.sync_dir(&runs_dir).map_err(io_at(&runs_dir))?;
            wal::Wal::create_at(
                vfs,
                &tmp,
                inner.store_id,
                &WalOptions {
                    // Small: a backup is read, rarely written (rotation after a
                    // restore moves to the store's own segment size).
                    segment_size_bytes: wal::segment::MIN_SEGMENT_BYTES,
                    ..WalOptions::default()
                },
                lsn + 1,
            )?;
            done += 1;
            progress("backup", done, files);
            let count = metas.len();
            manifest::write(
                vfs,
                &tmp,
                &Manifest {
                    store_id: inner.store_id,
                    // DURABLE starts at generation 0 too: readers see no newer
                    // checkpoint to reload.
                    generation: 0,
                    checkpoint_lsn: lsn,
                    runs: metas,
                    created_at_ms: m.created_at_ms,
                    // The backup's log is written afresh: offsets differ.
                    wal_hint: None,
                },
            )?;
            vfs.sync_dir(&backups).map_err(io_at(&backups))?;
            progress("backup", files, files);
            Ok(count)
        })();
        let count = match result {
            Ok(c) => c,
            Err(e) => {
                let _ = remove_tree(vfs, &tmp);
                return Err(e);
            }
        };
        if let Some(k) = keep {
            let all = list_backups(vfs, &inner.dir)?;
            for old in all.iter().take(all.len().saturating_sub(k.max(1))) {
                remove_tree(vfs, &old.path)?;
            }
            vfs.sync_dir(&backups).map_err(io_at(&backups))?;
        }
        Ok(BackupInfo {
            bytes: dir_bytes(vfs, &dst),
            name,
            lsn,
            runs: count,
            path: dst,
        })
    }
}

/// The store's backups, oldest first.
pub fn list_backups(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<BackupInfo>> {
    let backups = dir.join("backups");
    let mut out = Vec::new();
    let names = match vfs.list_dir(&backups) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_at(&backups)(e)),
    };
    for n in names.into_iter().filter(|n| !n.starts_with('.')) {
        let path = backups.join(&n);
        let m = match manifest::read(vfs, &path) {
            Ok(m) => m,
            Err(_) => continue,
        };
        out.push(BackupInfo {
            lsn: m.checkpoint_lsn,
            runs: m.runs.len(),
            bytes: dir_bytes(vfs, &path),
            name: n,
            path,
        });
    }
    Ok(out)
}

/// A manifest generation's top bits count restores (checkpoints count in the
/// low bits): a handle that sees the count change knows history was replaced.
const RESTORE_SHIFT: u32 = 48;

/// How many restores a store with this manifest generation has been through.
pub fn restore_count(generation: u64) -> u64 {
    generation >> RESTORE_SHIFT
}

/// The marker a restore leaves while it replaces the store's files: a store
/// holding it refuses to open until the restore is run again to its end.
pub const RESTORING: &str = "RESTORING";
/// The log frames a repair from a backup is to replay (see
/// [`repair_from_backup`]), until it has replayed them.
pub const REPAIRING: &str = "REPAIRING";

/// `REPAIRING`: magic, the backup's LSN, the reason the read stopped, the
/// frames; a crc32 of all of it last.
const REPAIRING_MAGIC: &[u8; 8] = b"GOTREP\r\n";

/// The bytes of a `REPAIRING` file (see docs/format.md).
#[doc(hidden)]
pub fn encode_repairing(after: u64, frames: &[wal::Frame], stopped: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(REPAIRING_MAGIC);
    b.extend_from_slice(&after.to_le_bytes());
    b.extend_from_slice(&(stopped.len() as u32).to_le_bytes());
    b.extend_from_slice(stopped.as_bytes());
    b.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    for f in frames {
        b.extend_from_slice(&f.first_lsn.to_le_bytes());
        b.extend_from_slice(&f.count.to_le_bytes());
        b.extend_from_slice(&(f.payload.len() as u32).to_le_bytes());
        b.extend_from_slice(&f.payload);
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn write_repairing(
    v: &dyn Vfs,
    dir: &Path,
    after: u64,
    frames: &[wal::Frame],
    stopped: &str,
) -> Result<()> {
    let b = encode_repairing(after, frames, stopped);
    // Never a half-written file: a temporary name, synced, renamed.
    let tmp = dir.join(format!(
        "{REPAIRING}.{}.{:016x}.tmp",
        std::process::id(),
        random_u64()
    ));
    let dst = dir.join(REPAIRING);
    let f = v
        .open(&tmp, OpenMode::CreateReadWrite)
        .map_err(io_at(&tmp))?;
    f.set_len(0).map_err(io_at(&tmp))?;
    f.write_at(&b, 0).map_err(io_at(&tmp))?;
    f.sync_data().map_err(io_at(&tmp))?;
    v.rename(&tmp, &dst).map_err(io_at(&tmp))?;
    v.sync_dir(dir).map_err(io_at(dir))
}

/// What an earlier, interrupted repair from the backup at LSN `after` kept;
/// `None` when there is no such file (or it is for another backup).
fn read_repairing(
    v: &dyn Vfs,
    path: &Path,
    after: u64,
) -> Result<Option<(Vec<wal::Frame>, String)>> {
    if !v.exists(path).map_err(io_at(path))? {
        return Ok(None);
    }
    let b = v
        .open(path, OpenMode::Read)
        .and_then(|f| f.read_all())
        .map_err(io_at(path))?;
    decode_repairing(&b, path, after)
}

/// The frames and the reason a `REPAIRING` file's bytes hold, if it is for the
/// backup at LSN `after` (see [`read_repairing`]).
#[doc(hidden)]
pub fn decode_repairing(
    b: &[u8],
    path: &Path,
    after: u64,
) -> Result<Option<(Vec<wal::Frame>, String)>> {
    let corrupt = || Error::CorruptFile {
        file: path.to_path_buf(),
        detail: "not a whole REPAIRING file".into(),
    };
    if b.len() < 28 || &b[..8] != REPAIRING_MAGIC {
        return Err(corrupt());
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().unwrap()) {
        return Err(corrupt());
    }
    let mut at = 8;
    let mut take = |n: usize| -> Result<&[u8]> {
        let s = body.get(at..at + n).ok_or_else(corrupt)?;
        at += n;
        Ok(s)
    };
    let lsn = u64::from_le_bytes(take(8)?.try_into().unwrap());
    if lsn != after {
        return Ok(None);
    }
    let n = u32::from_le_bytes(take(4)?.try_into().unwrap()) as usize;
    let stopped = String::from_utf8_lossy(take(n)?).into_owned();
    let count = u32::from_le_bytes(take(4)?.try_into().unwrap());
    let mut frames = Vec::new();
    // The frames follow the backup's LSN one after the other, each of at least
    // one transaction, as the log they were read from held them: a repair
    // appends them as they are.
    let mut next = after.checked_add(1).ok_or_else(corrupt)?;
    for _ in 0..count {
        let first_lsn = u64::from_le_bytes(take(8)?.try_into().unwrap());
        let txns = u32::from_le_bytes(take(4)?.try_into().unwrap());
        let len = u32::from_le_bytes(take(4)?.try_into().unwrap()) as usize;
        if first_lsn != next || txns == 0 {
            return Err(corrupt());
        }
        next = first_lsn.checked_add(txns as u64).ok_or_else(corrupt)?;
        frames.push(wal::Frame {
            first_lsn,
            count: txns,
            payload: take(len)?.to_vec(),
        });
    }
    Ok(Some((frames, stopped)))
}

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
enum Kept {
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
fn open_backup(v: &dyn Vfs, dir: &Path, name: &str) -> Result<(PathBuf, Manifest)> {
    let src = dir.join("backups").join(name);
    if name.contains('/') || name.starts_with('.') || !v.exists(&src).map_err(io_at(&src))? {
        return Err(Error::NotFound(format!(
            "no backup {name} (see `got backup list`)"
        )));
    }
    let bm = manifest::read(v, &src)?;
    Ok((src, bm))
}

fn restored_info(v: &dyn Vfs, dir: &Path, name: &str, kept: Kept) -> Result<RestoreInfo> {
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
enum Safety {
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
fn restore_locked(
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
fn quarantine_state(v: &dyn Vfs, dir: &Path) -> Result<PathBuf> {
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
