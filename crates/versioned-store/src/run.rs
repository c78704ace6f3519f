//! Runs: immutable sorted files of every version of every key up to a checkpoint.
//!
//! ```text
//! header (64 bytes)
//!    0  8  magic "GOTRUN\r\n"
//!    8  4  format version (u32 LE) = 1
//!   12  4  derived-data version: which index entries ('x' keys) the run holds
//!          (0: none; the store rebuilds them from the entities when it differs)
//!   16 16  store id
//!   32  8  min LSN held (u64 LE)
//!   40  8  max LSN held (u64 LE)
//!   48  4  first derived block + 1 (u32 LE): blocks from it on hold only derived
//!          keys ('x'), so a damaged one loses nothing that cannot be rebuilt;
//!          0: none, or a run written before this field (then a block is known
//!          to be derived-only when the block before it ends with a derived key)
//!   52  4  filter directory length (u32 LE; format 4, else 0)
//!   56  4  filters length (u32 LE; format 4, else 0)
//!   60  4  crc32 of bytes [0, 60)
//! blocks, each: len:u32 LE  crc32(payload):u32 LE  payload
//!   payload (formats 3, 4) = count:varint, then per entry: shared:varint
//!     rest_len:varint rest  versions   (the key is the first `shared` bytes of
//!     the key before it, 0 for a block's first, then `rest`)
//!   payload (formats 1, 2) = postcard(Vec<RunEntry>): per entry key_len:varint key
//!     versions
//!   versions = count:varint, then (lsn:varint, value_len:varint, value) oldest first
//!   keys ascend across the whole file; a block holds about 8 KiB; the first
//!   derived key starts a new block
//! index: postcard(Vec<IndexEntry { last_key: bytes, offset: u64, len: u32 }>)
//! partitions (format 2): postcard(Vec<Partition { last_key: bytes, start: u64,
//!   len: u64, crc: u32 }>), one per 128 index entries: where each slice of the
//!   index lies (relative to the index's start), its last block's last key and
//!   the crc32 of its bytes
//! filter directory (format 4): per partition its filter's length and crc32
//!   (u32 LE each), then the crc32 of the directory's bytes before it
//! filters (format 4): each partition's Bloom filter over its entity keys, in
//!   order (see `run/filter.rs`; empty for a partition without entity keys)
//! footer (48 bytes)
//!    0  8  index offset      8  8  index length     16  8  key count
//!   24  4  crc32 of index   28  4  block count
//!   32  4  partitions length (format 2; 0 in format 1)
//!   36  4  crc32 of the partitions (format 2; 0 in format 1)
//!   40  4  crc32 of footer bytes [0, 40)            44  4  magic "RUNF"
//! ```
//! Format 4 adds the filters: a point read of an entity a run does not hold
//! skips the run after reading its partition's filter once (a few hundred
//! bytes), instead of reading a block of it on every read.
//! Format 3 stores each key of a block as the part it shares with the key
//! before and the rest: keys sort, so neighbours share most of their bytes
//! (an edge key repeats its source and kind, an index key its kind, property
//! and value), and the runs of a 100k-task store (got-bench scale, ~3 edges a task) shrank
//! from 66.7 MB to 36.4 MB.
//! Format 2 added the partitions: opening a run reads them (a few KiB) and each
//! slice of the index when a lookup first needs it, so opening a 500 MB run no
//! longer reads and parses its whole 2.5 MB index. Format 1 runs (no partitions)
//! are read whole, as before.
//! Written to a temporary name, synced, read back and verified, then renamed and the
//! directory synced; only then may a manifest name it.

mod block;
mod filter;
mod index;
mod read;
mod write;

use block::Block;
pub use block::BlockVersions;
use index::{leb128, BlockIndex, Index};
pub use read::Run;
#[cfg(test)]
use write::encode_index;
pub use write::write_run;

use crate::error::{io_at, Error, Result};
use crate::memtable::Versions;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use wal::{OpenMode, Vfs, VfsFile};

pub const RUN_MAGIC: &[u8; 8] = b"GOTRUN\r\n";
pub const RUN_FORMAT_VERSION: u32 = 4;
/// Index entries (blocks) per partition of the index (format 2).
const PARTITION_BLOCKS: usize = 128;
const HEADER_BYTES: u64 = 64;
const FOOTER_BYTES: u64 = 48;
const BLOCK_TARGET_BYTES: usize = 8 << 10;
/// What the checked blocks of every run open in the process may hold (a block
/// costs its bytes, its keys when rebuilt (format 3), and 12 bytes an entry).
pub const BLOCK_CACHE_BYTES: usize = 16 << 20;
/// The first byte of every derived key (index entries).
const DERIVED_TAG: u8 = b'x';

/// `(lsn, value)` pairs, oldest first, as a run stores them.
pub type StoredVersions = Vec<(u64, Vec<u8>)>;

/// One key and all its versions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunEntry {
    pub key: Vec<u8>,
    pub versions: StoredVersions,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IndexEntry {
    last_key: Vec<u8>,
    offset: u64,
    len: u32,
}

/// A slice of the index (format 2): see the module docs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Partition {
    last_key: Vec<u8>,
    start: u64,
    len: u64,
    crc: u32,
}
/// What a manifest records about a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMeta {
    pub name: String,
    pub min_lsn: u64,
    pub max_lsn: u64,
    pub bytes: u64,
    pub keys: u64,
}
