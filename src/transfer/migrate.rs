//! `got migrate`: a project's `.got` that holds the GoT system's JSON store
//! becomes a got store in place, the original files kept byte for byte under
//! `.got/got-json/` (a directory got never writes into).
//!
//! The original is never written. The new store is built beside it, in
//! `.got.migrating/`, and imported into from the original; then one atomic
//! exchange of the two directories (`renameat2(RENAME_EXCHANGE)` on Linux,
//! `renamex_np(RENAME_SWAP)` on macOS) makes `.got` the new store and
//! `.got.migrating` the original, which a last rename moves to
//! `.got/got-json`. So a crash leaves either the original at `.got` (and
//! perhaps a half-built `.got.migrating`, which the next run discards and
//! builds again), or the finished store at `.got` (the original perhaps still
//! beside it, which the next run moves under it): `got migrate` run again
//! finishes and confirms.

use super::got_json::{self, Report};
use crate::wal::{RealVfs, Vfs};
use crate::{Error, Options, Result, Store};
use std::path::{Path, PathBuf};

/// Where the original files end up, under the store's directory.
pub const ORIGINALS: &str = "got-json";

/// What a migration did.
#[derive(Debug)]
pub enum Outcome {
    /// The store was migrated now; what its import read and did.
    Migrated(Box<Report>),
    /// It had been migrated; `finished` says whether this run had to finish
    /// moving the original files under it (a crash had stopped it there).
    Already { finished: bool },
}

/// Why a migration did not start.
#[derive(Debug)]
pub enum Refusal {
    /// Nothing at `.got` to migrate (named).
    Nothing(PathBuf),
    /// Entity files that cannot be imported: unreadable, or (without
    /// `accept_bad_checksums`) with a bad checksum. Nothing was changed.
    BadFiles(Box<Report>),
    Store(Error),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Store(e)
    }
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Invalid(format!("{what} {}: {e}", path.display()))
}

/// The sibling where the new store is built.
pub fn building_dir(dot_got: &Path) -> PathBuf {
    dot_got.with_file_name(".got.migrating")
}

/// For the crash tests: `GOT_FAILPOINT=migrate:<step>` (see [`crate::failpoint`]).
fn failpoint(step: &str) {
    crate::failpoint("migrate", step);
}

/// Swaps two directories in one step.
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes())?;
    let cb = CString::new(b.as_os_str().as_bytes())?;
    #[cfg(target_os = "linux")]
    // SAFETY: two valid NUL-terminated paths; the call reads them only.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    #[cfg(target_os = "macos")]
    // SAFETY: as above.
    let r = unsafe { libc::renamex_np(ca.as_ptr(), cb.as_ptr(), libc::RENAME_SWAP) } as i64;
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    let r: i64 = {
        let _ = (ca, cb);
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "this system has no atomic exchange of two directories",
        ));
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    RealVfs.sync_dir(dir).map_err(|e| io("syncing", dir, e))
}

/// Migrates the GoT JSON store at `dot_got` (a project's `.got`) into a got
/// store in place, or finishes and confirms one a crash interrupted. `opts`
/// open the new store.
pub fn migrate(
    dot_got: &Path,
    accept_bad_checksums: bool,
    opts: &Options,
) -> std::result::Result<Outcome, Refusal> {
    let parent = dot_got
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let building = building_dir(dot_got);
    let is_store = |d: &Path| d.join("CURRENT").is_file();
    if is_store(dot_got) {
        // Interrupted after the exchange: the original is beside the store.
        let finished = got_json::holds_got_json(&building);
        if finished {
            let to = dot_got.join(ORIGINALS);
            std::fs::rename(&building, &to).map_err(|e| io("moving", &building, e))?;
            sync_dir(dot_got)?;
            sync_dir(&parent)?;
        }
        if !dot_got.join(ORIGINALS).is_dir() {
            return Err(Refusal::Nothing(dot_got.to_path_buf()));
        }
        // Confirm: the store opens.
        drop(Store::open(dot_got, opts.clone())?);
        return Ok(Outcome::Already { finished });
    }
    if !got_json::holds_got_json(dot_got) {
        return Err(Refusal::Nothing(dot_got.to_path_buf()));
    }
    let read = got_json::read(dot_got, accept_bad_checksums)?;
    let bad = !read.report.unreadable.is_empty()
        || (!accept_bad_checksums && !read.report.bad_checksums.is_empty());
    if bad {
        return Err(Refusal::BadFiles(Box::new(read.report)));
    }
    // A half-built store from an interrupted run is built again.
    if building.exists() {
        std::fs::remove_dir_all(&building).map_err(|e| io("removing", &building, e))?;
    }
    crate::init(&RealVfs, &building)?;
    failpoint("initialized");
    let report = {
        let store = Store::open(&building, opts.clone())?;
        got_json::import(&store, read)?
    };
    sync_dir(&parent)?;
    failpoint("imported");
    exchange(dot_got, &building).map_err(|e| io("exchanging with", dot_got, e))?;
    sync_dir(&parent)?;
    failpoint("exchanged");
    let to = dot_got.join(ORIGINALS);
    std::fs::rename(&building, &to).map_err(|e| io("moving", &building, e))?;
    sync_dir(dot_got)?;
    sync_dir(&parent)?;
    Ok(Outcome::Migrated(Box::new(report)))
}
