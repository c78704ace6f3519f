//! Segments: `wal/<first-lsn, 20 digits>.wal`, preallocated with zeros, a 64-byte
//! header, then frames, ending with an end-of-segment frame once rotated.
//!
//! ```text
//!  0  8  magic "GOTWAL\r\n"
//!  8  4  format version (u32 LE) = 1
//! 12  4  reserved, zero
//! 16 16  store id
//! 32  8  first LSN of the segment (u64 LE)
//! 40  8  segment size in bytes (u64 LE)
//! 48  1  1 once the segment's name is durable (written, with the checksum,
//!          after the directory sync that installed it, before any frame); 0
//!          before, and in segments written before the field existed
//! 49 11  reserved, zero
//! 60  4  crc32 of bytes [0, 60)
//! ```
//!
//! A writer's first recovery in a process syncs the `wal/` directory unless the
//! newest segment says its name is durable: a directory sync costs a journal
//! commit (milliseconds), which a CLI command would otherwise pay every time.

use crate::error::{Error, IoContext, Result};
use crate::vfs::{OpenMode, Vfs, VfsFile};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const SEGMENT_MAGIC: &[u8; 8] = b"GOTWAL\r\n";
pub const SEGMENT_FORMAT_VERSION: u32 = 1;
pub const SEGMENT_HEADER_BYTES: u64 = 64;
/// Default segment size.
pub const DEFAULT_SEGMENT_BYTES: u64 = 2 << 20;
/// Smallest allowed segment (tests use tiny segments to force rotation).
pub const MIN_SEGMENT_BYTES: u64 = 4096;
/// Name of the preallocated, not yet used segment.
pub const PREALLOC_NAME: &str = "next.prealloc";

pub fn segment_name(first_lsn: u64) -> String {
    format!("{first_lsn:020}.wal")
}

pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub fn encode_header(store_id: &[u8; 16], first_lsn: u64, size: u64) -> [u8; 64] {
    encode_header_with(store_id, first_lsn, size, false)
}

/// The header, saying whether the segment's name is known durable.
pub fn encode_header_with(
    store_id: &[u8; 16],
    first_lsn: u64,
    size: u64,
    name_durable: bool,
) -> [u8; 64] {
    let mut h = [0u8; 64];
    h[48] = u8::from(name_durable);
    h[0..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&SEGMENT_FORMAT_VERSION.to_le_bytes());
    h[16..32].copy_from_slice(store_id);
    h[32..40].copy_from_slice(&first_lsn.to_le_bytes());
    h[40..48].copy_from_slice(&size.to_le_bytes());
    let crc = crc32fast::hash(&h[0..60]);
    h[60..64].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Validates a segment header; returns the segment size it declares.
pub fn check_header(path: &Path, h: &[u8], store_id: &[u8; 16], first_lsn: u64) -> Result<u64> {
    let bad = |detail: &str| Error::BadFile {
        file: path.to_path_buf(),
        detail: format!("segment header: {detail}"),
    };
    if h.len() < 64 || &h[0..8] != SEGMENT_MAGIC {
        return Err(bad("bad magic"));
    }
    if crc32fast::hash(&h[0..60]) != u32::from_le_bytes(h[60..64].try_into().unwrap()) {
        return Err(bad("checksum mismatch"));
    }
    let version = u32::from_le_bytes(h[8..12].try_into().unwrap());
    if version > SEGMENT_FORMAT_VERSION {
        return Err(Error::TooNew {
            file: path.to_path_buf(),
            found: version,
            supported: SEGMENT_FORMAT_VERSION,
        });
    }
    if &h[16..32] != store_id {
        return Err(bad("belongs to another store"));
    }
    if u64::from_le_bytes(h[32..40].try_into().unwrap()) != first_lsn {
        return Err(bad("first LSN does not match the file name"));
    }
    Ok(u64::from_le_bytes(h[40..48].try_into().unwrap()))
}

/// Whether a (checked) header says the segment's name is durable.
pub fn name_durable(h: &[u8]) -> bool {
    h.len() >= 64
        && h[48] == 1
        && crc32fast::hash(&h[0..60]) == u32::from_le_bytes(h[60..64].try_into().unwrap())
}

/// Writes `len` zero bytes into `file` in large chunks.
pub fn write_zeros(file: &dyn VfsFile, path: &Path, from: u64, len: u64) -> Result<()> {
    const CHUNK: usize = 1 << 20;
    let zeros = vec![0u8; CHUNK];
    let mut off = from;
    let end = from + len;
    while off < end {
        let n = ((end - off) as usize).min(CHUNK);
        file.write_at(&zeros[..n], off).at(path)?;
        off += n as u64;
    }
    Ok(())
}

/// Creates a zero-filled file of `size` bytes at a unique temporary name, synced,
/// then renames it to `wal/next.prealloc` and syncs the directory. Runs outside the
/// lock; several processes racing here each install a complete file.
pub fn preallocate(vfs: &dyn Vfs, wal_dir: &Path, size: u64) -> Result<()> {
    let tmp = wal_dir.join(format!(
        "prealloc.{}.{:016x}.tmp",
        std::process::id(),
        random_u64()
    ));
    let f = vfs.open(&tmp, OpenMode::CreateNew).at(&tmp)?;
    let r = (|| {
        write_zeros(f.as_ref(), &tmp, 0, size)?;
        f.sync_data().at(&tmp)?;
        vfs.rename(&tmp, &wal_dir.join(PREALLOC_NAME)).at(&tmp)?;
        vfs.sync_dir(wal_dir).at(wal_dir)
    })();
    if r.is_err() {
        let _ = vfs.remove_file(&tmp);
    }
    r
}

/// Turns the preallocated file (or, if none is ready, a freshly zeroed one) into
/// segment `first_lsn`: taken under a private name, header written and synced,
/// renamed, directory synced. Called by the lock holder only.
pub fn install_segment(
    vfs: &dyn Vfs,
    wal_dir: &Path,
    store_id: &[u8; 16],
    first_lsn: u64,
    size: u64,
) -> Result<(PathBuf, Arc<dyn VfsFile>)> {
    let path = wal_dir.join(segment_name(first_lsn));
    let pre = wal_dir.join(PREALLOC_NAME);
    let private = wal_dir.join(format!(
        "{}.{}.{:016x}.tmp",
        segment_name(first_lsn),
        std::process::id(),
        random_u64()
    ));
    // Take the preallocated file by renaming it to a name no one else uses before
    // touching it: another process may rename a fresh file onto `next.prealloc` at
    // any moment (preallocation runs outside the lock), and the file we write the
    // header into must be the file we then install.
    let mut file = match vfs.rename(&pre, &private) {
        Ok(()) => {
            let f = vfs.open(&private, OpenMode::ReadWrite).at(&private)?;
            if f.len().at(&private)? == size {
                Some(f)
            } else {
                vfs.remove_file(&private).at(&private)?;
                None
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).at(&pre),
    };
    if file.is_none() {
        let f = vfs.open(&private, OpenMode::CreateNew).at(&private)?;
        write_zeros(f.as_ref(), &private, 0, size)?;
        file = Some(f);
    }
    let f = file.expect("set above");
    let r = (|| {
        f.write_at(&encode_header(store_id, first_lsn, size), 0)
            .at(&private)?;
        f.sync_data().at(&private)?;
        vfs.rename(&private, &path).at(&private)?;
        vfs.sync_dir(wal_dir).at(wal_dir)?;
        // The name is durable now, and so is every older segment's: say so in
        // the header (no frame is in the segment yet), so later writers need
        // not sync the directory again.
        f.write_at(&encode_header_with(store_id, first_lsn, size, true), 0)
            .at(&path)?;
        f.sync_data().at(&path)
    })();
    if r.is_err() {
        let _ = vfs.remove_file(&private);
    }
    r.map(|()| (path, f))
}

/// The segments in `wal_dir`, by first LSN ascending.
pub fn list_segments(vfs: &dyn Vfs, wal_dir: &Path) -> Result<Vec<u64>> {
    let mut v: Vec<u64> = vfs
        .list_dir(wal_dir)
        .at(wal_dir)?
        .iter()
        .filter_map(|n| parse_segment_name(n))
        .collect();
    v.sort_unstable();
    Ok(v)
}

pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the OS random source failed");
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn names_sort_by_lsn() {
        assert_eq!(segment_name(42), "00000000000000000042.wal");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_name("42.wal"), None);
        assert_eq!(parse_segment_name(PREALLOC_NAME), None);
    }
}
