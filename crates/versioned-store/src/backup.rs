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

mod repairing;
mod restore;

pub use repairing::{decode_repairing, encode_repairing, REPAIRING};
use repairing::{read_repairing, write_repairing};
pub use restore::{
    repair_from_backup, restore, restore_count, RepairFromBackup, RestoreInfo, RESTORING,
};

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
                    st.delta_copy(),
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
