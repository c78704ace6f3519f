//! The `REPAIRING` file: what a repair from a backup is about to put back (the
//! frames after the backup's LSN), written before the store is touched, so a
//! crash mid-repair is finished or undone on the next open.

use super::*;

/// The log frames a repair from a backup is to replay (see
/// [`repair_from_backup`]), until it has replayed them.
pub const REPAIRING: &str = "REPAIRING";

/// `REPAIRING`: magic, the backup's LSN, the reason the read stopped, the
/// frames; a crc32 of all of it last.
pub(super) const REPAIRING_MAGIC: &[u8; 8] = b"GOTREP\r\n";

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

pub(super) fn write_repairing(
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
pub(super) fn read_repairing(
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
