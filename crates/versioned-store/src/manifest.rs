//! `CURRENT`: the manifest naming the live runs and the checkpoint LSN.
//!
//! ```text
//!  0  8  magic "GOTCUR\r\n"
//!  8  4  format version (u32 LE) = 1
//! 12  4  body length (u32 LE)
//! 16  4  crc32 of the body
//! 20  4  reserved, zero
//! 24  …  body = postcard(Manifest)
//! ```
//! Replaced atomically: temporary name, sync, rename, directory sync.

use crate::error::{io_at, Error, Result};
use crate::run::RunMeta;
use serde::{Deserialize, Serialize};
use std::path::Path;
use wal::{OpenMode, Vfs};

pub const CURRENT_MAGIC: &[u8; 8] = b"GOTCUR\r\n";
pub const CURRENT_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub store_id: [u8; 16],
    /// Bumped by every checkpoint or compaction.
    pub generation: u64,
    /// Every LSN at or below this is in the runs.
    pub checkpoint_lsn: u64,
    /// Live runs, newest first.
    pub runs: Vec<RunMeta>,
    pub created_at_ms: i64,
    /// Where the log continues after `checkpoint_lsn`, so that opening the store
    /// need not read every frame of the segment up to it. Only a hint: used when
    /// the frame it names is intact and ends at the checkpoint LSN, else ignored
    /// (the segment is read from its start). Appended after the fields of
    /// the first manifests, which decode without it (see [`read`]); readers that
    /// predate it ignore the trailing bytes.
    pub wal_hint: Option<WalHint>,
}

impl Manifest {
    /// [`Manifest::wal_hint`] as `Wal::position_from` takes it.
    pub fn wal_position_hint(&self) -> Option<(u64, u64, u64)> {
        self.wal_hint.map(|h| (h.segment, h.last_frame, h.offset))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalHint {
    pub segment: u64,
    /// Where the frame holding the checkpoint LSN begins (checked at open).
    pub last_frame: u64,
    /// Where the next frame goes.
    pub offset: u64,
}

/// The manifest as first written, without [`Manifest::wal_hint`].
#[derive(Deserialize)]
struct ManifestV1 {
    store_id: [u8; 16],
    generation: u64,
    checkpoint_lsn: u64,
    runs: Vec<RunMeta>,
    created_at_ms: i64,
}

pub fn write(vfs: &dyn Vfs, dir: &Path, m: &Manifest) -> Result<()> {
    stage(vfs, dir, m)?.install()
}

/// A new CURRENT written and synced under a temporary name, not yet in place:
/// a checkpoint stages it before it takes the writer lock, so that the lock is
/// held for the rename and the directory sync only. Dropped without
/// [`Staged::install`], the temporary file is removed.
pub struct Staged<'a> {
    vfs: &'a dyn Vfs,
    dir: &'a Path,
    tmp: Option<std::path::PathBuf>,
}

impl Staged<'_> {
    /// Renames the staged file over CURRENT and syncs the directory: the new
    /// manifest is durable when this returns `Ok`.
    pub fn install(mut self) -> Result<()> {
        let tmp = self.tmp.as_ref().expect("installed once");
        let dst = self.dir.join("CURRENT");
        self.vfs.rename(tmp, &dst).map_err(io_at(tmp))?;
        // Renamed: nothing is left to remove, whatever the directory sync says.
        self.tmp = None;
        self.vfs.sync_dir(self.dir).map_err(io_at(self.dir))
    }
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = self.vfs.remove_file(&tmp);
        }
    }
}

/// Writes `m` under a temporary name in `dir` and syncs it (see [`Staged`]).
pub fn stage<'a>(vfs: &'a dyn Vfs, dir: &'a Path, m: &Manifest) -> Result<Staged<'a>> {
    let body = crate::model::encode(m);
    let mut buf = Vec::with_capacity(24 + body.len());
    buf.extend_from_slice(CURRENT_MAGIC);
    buf.extend_from_slice(&CURRENT_FORMAT_VERSION.to_le_bytes());
    buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    buf.extend_from_slice(&[0u8; 4]);
    buf.extend_from_slice(&body);
    let tmp = dir.join(format!(
        "CURRENT.{}.{:016x}.tmp",
        std::process::id(),
        crate::util::random_u64()
    ));
    // On any failure below, dropping `staged` removes what was written.
    let staged = Staged {
        vfs,
        dir,
        tmp: Some(tmp.clone()),
    };
    let f = vfs.open(&tmp, OpenMode::CreateNew).map_err(io_at(&tmp))?;
    f.write_at(&buf, 0).map_err(io_at(&tmp))?;
    f.sync_data().map_err(io_at(&tmp))?;
    Ok(staged)
}

pub fn read(vfs: &dyn Vfs, dir: &Path) -> Result<Manifest> {
    let path = dir.join("CURRENT");
    let f = match vfs.open(&path, OpenMode::Read) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotAStore {
                path: dir.to_path_buf(),
                detail: "no CURRENT file (run `got init` to create a store)".into(),
            })
        }
        Err(e) => return Err(io_at(&path)(e)),
    };
    let buf = f.read_all().map_err(io_at(&path))?;
    let corrupt = |d: &str| Error::CorruptFile {
        file: path.clone(),
        detail: d.to_string(),
    };
    if buf.len() < 24 || &buf[0..8] != CURRENT_MAGIC {
        return Err(corrupt("bad magic"));
    }
    let version = u32::from_le_bytes(buf[8..12].try_into().unwrap());
    if version > CURRENT_FORMAT_VERSION {
        return Err(Error::Wal(wal::Error::TooNew {
            file: path.clone(),
            found: version,
            supported: CURRENT_FORMAT_VERSION,
        }));
    }
    let len = u32::from_le_bytes(buf[12..16].try_into().unwrap()) as usize;
    if buf.len() != 24 + len {
        return Err(corrupt("length mismatch"));
    }
    if crc32fast::hash(&buf[24..]) != u32::from_le_bytes(buf[16..20].try_into().unwrap()) {
        return Err(corrupt("checksum mismatch"));
    }
    let body = &buf[24..];
    match postcard::from_bytes::<Manifest>(body) {
        Ok(m) => Ok(m),
        Err(_) => {
            let v1: ManifestV1 = crate::model::decode(body, "manifest")?;
            Ok(Manifest {
                store_id: v1.store_id,
                generation: v1.generation,
                checkpoint_lsn: v1.checkpoint_lsn,
                runs: v1.runs,
                created_at_ms: v1.created_at_ms,
                wal_hint: None,
            })
        }
    }
}
