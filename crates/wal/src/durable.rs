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
//!
//! A boot token may follow (40 bytes; files without it are 56 bytes long, and
//! readers of the 56 bytes above ignore it):
//!
//! ```text
//! 56 16  boot id of the machine (Vfs::boot_id)
//! 72  8  device of DURABLE (u64 LE)
//! 80  8  inode of DURABLE (u64 LE)
//! 88  4  crc32 of bytes [0, 48) and [56, 88): the token holds only with the
//!        record it follows
//! 92  4  reserved, zero
//! ```
//!
//! A writer writes its token once its recovery has found the log whole up to
//! its end (or it created the log), and zeros there when its log is poisoned,
//! truncated or replaced. A token that matches the reader's own boot and file
//! says: since a writer last found the log whole, every write to it went
//! through this boot's page cache, which loses nothing short of a power loss,
//! a crash of the machine or a failed writeback (which poisons the writer);
//! and DURABLE is the same file, not a copy. With the record saying all it
//! published is synced, recovery then need not read the zeros past the end of
//! the log to tell a torn tail from damage (docs/format.md, "When the zeros
//! past the end need no reading").

use crate::error::{Error, IoContext, Result};
use crate::vfs::{OpenMode, Vfs, VfsFile};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub const DURABLE_MAGIC: &[u8; 8] = b"GOTDUR\r\n";
pub const DURABLE_BYTES: usize = 56;
pub const DURABLE_FORMAT_VERSION: u32 = 1;
/// The boot token after the record.
pub const TOKEN_BYTES: usize = 40;

/// Who may skip reading past the end of the log: the machine's boot and
/// DURABLE's own file (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootToken {
    pub boot: [u8; 16],
    pub device: u64,
    pub inode: u64,
}

impl BootToken {
    /// This boot's token for `file`, where the platform knows both.
    pub fn of(vfs: &dyn Vfs, file: &dyn VfsFile) -> Option<BootToken> {
        let boot = vfs.boot_id()?;
        let (device, inode) = file.identity()?;
        Some(BootToken {
            boot,
            device,
            inode,
        })
    }
}

/// The token bytes that follow `record` (zeros for `None`).
pub fn encode_token(record: &[u8; DURABLE_BYTES], t: Option<BootToken>) -> [u8; TOKEN_BYTES] {
    let mut b = [0u8; TOKEN_BYTES];
    let Some(t) = t else {
        return b;
    };
    b[0..16].copy_from_slice(&t.boot);
    b[16..24].copy_from_slice(&t.device.to_le_bytes());
    b[24..32].copy_from_slice(&t.inode.to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&record[0..48]);
    h.update(&b[0..32]);
    b[32..36].copy_from_slice(&h.finalize().to_le_bytes());
    b
}

/// The token in `b` (a whole file's bytes), if one is there and checks out
/// against the record before it.
pub fn decode_token(b: &[u8]) -> Option<BootToken> {
    if b.len() < DURABLE_BYTES + TOKEN_BYTES {
        return None;
    }
    let t = &b[DURABLE_BYTES..DURABLE_BYTES + TOKEN_BYTES];
    let crc = u32::from_le_bytes(t[32..36].try_into().unwrap());
    // Over the record's fields, not its crc: a crc over a message followed by
    // its own crc is the same for every message.
    let mut h = crc32fast::Hasher::new();
    h.update(&b[0..48]);
    h.update(&t[0..32]);
    if t[0..16].iter().all(|&x| x == 0) || h.finalize() != crc {
        return None;
    }
    Some(BootToken {
        boot: t[0..16].try_into().unwrap(),
        device: u64::from_le_bytes(t[16..24].try_into().unwrap()),
        inode: u64::from_le_bytes(t[24..32].try_into().unwrap()),
    })
}

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
    /// This handle's token (writable handles, where the platform has one).
    token: Option<BootToken>,
    /// Whether publishes carry the token: this handle found the log whole.
    vouching: AtomicBool,
    /// Whether the last read found this handle's token.
    read_vouched: AtomicBool,
    /// The file mapped, where the process enabled maps and the file holds the
    /// record and its token: a read copies from it instead of `pread`ing (a
    /// system call per catch-up saved; got overwrites DURABLE in place and
    /// never shortens it, and the page cache shows every process's writes
    /// through a map at once).
    map: Option<crate::mapped::Mapped>,
}

/// The record and its token, as written.
fn encode_file(
    p: Published,
    store_id: &[u8; 16],
    t: Option<BootToken>,
) -> [u8; DURABLE_BYTES + TOKEN_BYTES] {
    let record = encode(p, store_id);
    let mut b = [0u8; DURABLE_BYTES + TOKEN_BYTES];
    b[..DURABLE_BYTES].copy_from_slice(&record);
    b[DURABLE_BYTES..].copy_from_slice(&encode_token(&record, t));
    b
}

impl DurableFile {
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join("DURABLE")
    }

    /// Creates (or overwrites) with LSN 0, synced, directory synced. The log
    /// was just created, so it is whole: the file carries this boot's token.
    pub fn create(vfs: &dyn Vfs, dir: &Path, store_id: [u8; 16]) -> Result<()> {
        let path = Self::path_in(dir);
        let f = vfs.open(&path, OpenMode::CreateReadWrite).at(&path)?;
        let t = BootToken::of(vfs, f.as_ref());
        f.write_at(&encode_file(Published::default(), &store_id, t), 0)
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
        let token = if writable {
            BootToken::of(vfs, file.as_ref())
        } else {
            None
        };
        let map = file
            .map(&path)
            .filter(|m| m.len() >= DURABLE_BYTES + TOKEN_BYTES);
        Ok(DurableFile {
            path,
            file,
            store_id,
            token,
            vouching: AtomicBool::new(false),
            read_vouched: AtomicBool::new(false),
            map,
        })
    }

    /// Reads the published LSN. A torn read (a concurrent overwrite) fails the
    /// checksum and is retried; a file that never validates is an error.
    pub fn read(&self) -> Result<Published> {
        self.read_vouched.store(false, Ordering::SeqCst);
        let mut b = [0u8; DURABLE_BYTES + TOKEN_BYTES];
        for _ in 0..100 {
            let read = match &self.map {
                Some(m) if m.copy_changing(0, &mut b) => Ok(b.len()),
                _ => read_prefix(self.file.as_ref(), &mut b),
            };
            match read {
                Ok(n) if n >= DURABLE_BYTES => match decode(&b[..DURABLE_BYTES], &self.store_id) {
                    Decoded::Ok(p) => {
                        let mine = self.token.is_some() && decode_token(&b[..n]) == self.token;
                        self.read_vouched.store(mine, Ordering::SeqCst);
                        return Ok(p);
                    }
                    Decoded::TooNew(found) => {
                        return Err(Error::TooNew {
                            file: self.path.clone(),
                            found,
                            supported: DURABLE_FORMAT_VERSION,
                        })
                    }
                    Decoded::Invalid => {}
                },
                Ok(_) => {}
                Err(e) => return Err(e).at(&self.path),
            }
            std::thread::yield_now();
        }
        Err(Error::BadFile {
            file: self.path.clone(),
            detail: "DURABLE does not validate (bad magic, store id or checksum)".into(),
        })
    }

    /// Whether the last [`DurableFile::read`] found this handle's own token:
    /// this boot, this file (see the module docs).
    pub fn read_vouched(&self) -> bool {
        self.read_vouched.load(Ordering::SeqCst)
    }

    /// From now on, publishes carry this handle's token (`true`: the log was
    /// found whole) or zeros in its place.
    pub fn vouch(&self, whole: bool) {
        self.vouching.store(whole, Ordering::SeqCst);
    }

    /// Stops vouching and erases the token on disk now, synced, best effort:
    /// for a log whose writes may have been lost (a failed sync).
    pub fn withdraw(&self) {
        self.vouch(false);
        let _ = self
            .file
            .write_at(&[0u8; TOKEN_BYTES], DURABLE_BYTES as u64)
            .and_then(|_| self.file.sync_data());
    }

    /// Publishes (not synced; see the module docs).
    pub fn publish(&self, p: Published) -> Result<()> {
        let t = self.token.filter(|_| self.vouching.load(Ordering::SeqCst));
        self.file
            .write_at(&encode_file(p, &self.store_id, t), 0)
            .at(&self.path)
    }

    /// Publishes and syncs: for a value lower than one published before (a
    /// truncation), which must not come back after a power loss.
    pub fn publish_synced(&self, p: Published) -> Result<()> {
        self.publish(p)?;
        self.file.sync_data().at(&self.path)
    }
}

/// Reads from offset 0 until `buf` is full or the file ends; returns the count.
fn read_prefix(f: &dyn VfsFile, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORE: [u8; 16] = [3; 16];

    fn token() -> BootToken {
        BootToken {
            boot: [9; 16],
            device: 7,
            inode: 42,
        }
    }

    fn file(p: Published, t: Option<BootToken>) -> Vec<u8> {
        encode_file(p, &STORE, t).to_vec()
    }

    #[test]
    fn a_token_reads_back_only_with_the_record_it_was_written_with() {
        let p = Published::synced(5, 1);
        assert_eq!(decode_token(&file(p, Some(token()))), Some(token()));
        assert_eq!(decode_token(&file(p, None)), None, "zeros: no token");
        // The record alone (a DURABLE written before tokens, or by a binary
        // that writes only the record) has none.
        assert_eq!(decode_token(&file(p, Some(token()))[..DURABLE_BYTES]), None);
        // Another record under the token (an older binary rewrote the record
        // and left the bytes after it): the token does not hold for it.
        let mut b = file(p, Some(token()));
        b[..DURABLE_BYTES].copy_from_slice(&encode(Published::synced(6, 1), &STORE));
        assert_eq!(decode_token(&b), None);
        // Any flipped bit of the token.
        for i in DURABLE_BYTES..DURABLE_BYTES + 36 {
            let mut b = file(p, Some(token()));
            b[i] ^= 1;
            assert_eq!(decode_token(&b), None, "byte {i}");
        }
        // The record itself decodes as before.
        assert_eq!(decode(&file(p, Some(token())), &STORE), Decoded::Ok(p));
    }
}
