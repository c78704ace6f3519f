//! `DURABLE`: the LSN up to which the log is known to be on stable storage.
//!
//! The writer overwrites it in place after every append (it is a hint for lock-free
//! readers, not itself synced). Readers without the lock stop at its LSN. Its synced
//! LSN (the LSN minus the unsynced count) is a proof: it is written only after the
//! frames through it were synced, so after a power loss it may lag, never lead, and
//! damage to a frame at or below it is corruption, never a torn tail. With
//! `Durability::Immediate` the two are equal; with `Durability::None` the LSN leads.
//! Layout (56 bytes):
//!
//! ```text
//!  0  8  magic "GOTDUR\r\n"
//!  8  4  format version (u32 LE) = 1
//! 12  4  unsynced count (u32 LE): how many LSNs at the top of the durable LSN are
//!        not known to be synced (saturating; 0 in files written before it existed,
//!        which were written only after a sync in the default mode)
//! 16  8  durable LSN (u64 LE)
//! 24  8  manifest generation (u64 LE): bumped by each checkpoint, so readers
//!        learn from this one read that CURRENT changed
//! 32 16  store id
//! 48  4  crc32 of bytes [0, 48)
//! 52  4  reserved, zero
//! ```

use crate::error::{Error, IoContext, Result};
use crate::vfs::{OpenMode, Vfs, VfsFile};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const DURABLE_MAGIC: &[u8; 8] = b"GOTDUR\r\n";
pub const DURABLE_BYTES: usize = 56;
pub const DURABLE_FORMAT_VERSION: u32 = 1;

/// What `DURABLE` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Published {
    /// Readers without the lock read up to here.
    pub lsn: u64,
    pub generation: u64,
    /// Every frame through this LSN is on stable storage (at most `lsn`).
    pub synced: u64,
}

impl Published {
    /// Published after a sync: everything through `lsn` is on stable storage.
    pub fn synced(lsn: u64, generation: u64) -> Published {
        Published {
            lsn,
            generation,
            synced: lsn,
        }
    }
}

pub fn encode(p: Published, store_id: &[u8; 16]) -> [u8; DURABLE_BYTES] {
    let mut b = [0u8; DURABLE_BYTES];
    b[0..8].copy_from_slice(DURABLE_MAGIC);
    b[8..12].copy_from_slice(&DURABLE_FORMAT_VERSION.to_le_bytes());
    let unsynced = p.lsn.saturating_sub(p.synced).min(u32::MAX as u64) as u32;
    b[12..16].copy_from_slice(&unsynced.to_le_bytes());
    b[16..24].copy_from_slice(&p.lsn.to_le_bytes());
    b[24..32].copy_from_slice(&p.generation.to_le_bytes());
    b[32..48].copy_from_slice(store_id);
    let crc = crc32fast::hash(&b[0..48]);
    b[48..52].copy_from_slice(&crc.to_le_bytes());
    b
}

/// What a read of the bytes found.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Ok(Published),
    /// Checksummed, but of a newer format version.
    TooNew(u32),
    /// Not a whole, valid DURABLE of this store (or a torn read).
    Invalid,
}

pub fn decode(b: &[u8], store_id: &[u8; 16]) -> Decoded {
    if b.len() < DURABLE_BYTES || &b[0..8] != DURABLE_MAGIC || &b[32..48] != store_id {
        return Decoded::Invalid;
    }
    let crc = u32::from_le_bytes(b[48..52].try_into().unwrap());
    if crc32fast::hash(&b[0..48]) != crc {
        return Decoded::Invalid;
    }
    let version = u32::from_le_bytes(b[8..12].try_into().unwrap());
    if version > DURABLE_FORMAT_VERSION {
        return Decoded::TooNew(version);
    }
    let lsn = u64::from_le_bytes(b[16..24].try_into().unwrap());
    let unsynced = u32::from_le_bytes(b[12..16].try_into().unwrap()) as u64;
    Decoded::Ok(Published {
        lsn,
        generation: u64::from_le_bytes(b[24..32].try_into().unwrap()),
        // A saturated count proves less than it could; never more.
        synced: lsn.saturating_sub(unsynced),
    })
}

#[derive(Debug)]
pub struct DurableFile {
    path: PathBuf,
    file: Arc<dyn VfsFile>,
    store_id: [u8; 16],
}

impl DurableFile {
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join("DURABLE")
    }

    /// Creates (or overwrites) with `lsn`, synced, directory synced.
    pub fn create(vfs: &dyn Vfs, dir: &Path, store_id: [u8; 16]) -> Result<()> {
        let path = Self::path_in(dir);
        let f = vfs.open(&path, OpenMode::CreateReadWrite).at(&path)?;
        f.write_at(&encode(Published::default(), &store_id), 0)
            .at(&path)?;
        f.sync_data().at(&path)?;
        vfs.sync_dir(dir).at(dir)
    }

    pub fn open(vfs: &dyn Vfs, dir: &Path, store_id: [u8; 16], writable: bool) -> Result<Self> {
        let path = Self::path_in(dir);
        let mode = if writable {
            OpenMode::ReadWrite
        } else {
            OpenMode::Read
        };
        let file = vfs.open(&path, mode).at(&path)?;
        Ok(DurableFile {
            path,
            file,
            store_id,
        })
    }

    /// Reads the published LSN. A torn read (a concurrent overwrite) fails the
    /// checksum and is retried; a file that never validates is an error.
    pub fn read(&self) -> Result<Published> {
        let mut b = [0u8; DURABLE_BYTES];
        for _ in 0..100 {
            match self.file.read_exact_at(&mut b, 0) {
                Ok(()) => match decode(&b, &self.store_id) {
                    Decoded::Ok(p) => return Ok(p),
                    Decoded::TooNew(found) => {
                        return Err(Error::TooNew {
                            file: self.path.clone(),
                            found,
                            supported: DURABLE_FORMAT_VERSION,
                        })
                    }
                    Decoded::Invalid => {}
                },
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
                Err(e) => return Err(e).at(&self.path),
            }
            std::thread::yield_now();
        }
        Err(Error::BadFile {
            file: self.path.clone(),
            detail: "DURABLE does not validate (bad magic, store id or checksum)".into(),
        })
    }

    /// Publishes (not synced; see the module docs).
    pub fn publish(&self, p: Published) -> Result<()> {
        self.file
            .write_at(&encode(p, &self.store_id), 0)
            .at(&self.path)
    }

    /// Publishes and syncs: for a value lower than one published before (a
    /// truncation), which must not come back after a power loss.
    pub fn publish_synced(&self, p: Published) -> Result<()> {
        self.publish(p)?;
        self.file.sync_data().at(&self.path)
    }
}
