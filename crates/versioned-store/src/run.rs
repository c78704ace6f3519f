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
//!   52  8  reserved, zero
//!   60  4  crc32 of bytes [0, 60)
//! blocks, each: len:u32 LE  crc32(payload):u32 LE  payload = postcard(Vec<RunEntry>)
//!   RunEntry = { key: bytes, versions: [(lsn: u64, value: bytes)] oldest first }
//!   keys ascend across the whole file; a block holds about 8 KiB; the first
//!   derived key starts a new block
//! index: postcard(Vec<IndexEntry { last_key: bytes, offset: u64, len: u32 }>)
//! partitions (format 2): postcard(Vec<Partition { last_key: bytes, start: u64,
//!   len: u64, crc: u32 }>), one per 128 index entries: where each slice of the
//!   index lies (relative to the index's start), its last block's last key and
//!   the crc32 of its bytes
//! footer (48 bytes)
//!    0  8  index offset      8  8  index length     16  8  key count
//!   24  4  crc32 of index   28  4  block count
//!   32  4  partitions length (format 2; 0 in format 1)
//!   36  4  crc32 of the partitions (format 2; 0 in format 1)
//!   40  4  crc32 of footer bytes [0, 40)            44  4  magic "RUNF"
//! ```
//! Format 2 added the partitions: opening a run reads them (a few KiB) and each
//! slice of the index when a lookup first needs it, so opening a 500 MB run no
//! longer reads and parses its whole 2.5 MB index. Format 1 runs (no partitions)
//! are read whole, as before.
//! Written to a temporary name, synced, read back and verified, then renamed and the
//! directory synced; only then may a manifest name it.

use crate::error::{io_at, Error, Result};
use crate::memtable::Versions;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use wal::{OpenMode, Vfs, VfsFile};

pub const RUN_MAGIC: &[u8; 8] = b"GOTRUN\r\n";
pub const RUN_FORMAT_VERSION: u32 = 2;
/// Index entries (blocks) per partition of the index (format 2).
const PARTITION_BLOCKS: usize = 128;
const HEADER_BYTES: u64 = 64;
const FOOTER_BYTES: u64 = 48;
const BLOCK_TARGET_BYTES: usize = 8 << 10;
/// What the checked blocks of every run open in the process may hold (a block
/// costs its bytes on disk plus 8 bytes an entry).
pub const BLOCK_CACHE_BYTES: usize = 16 << 20;
/// The first byte of every derived key (index entries).
const DERIVED_TAG: u8 = b'x';

#[derive(Serialize)]
struct RunEntryRef<'a> {
    key: &'a [u8],
    versions: Vec<(u64, &'a [u8])>,
}

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

fn put_leb128(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The index as postcard writes `Vec<IndexEntry>`, and its partitions.
fn encode_index(index: &[IndexEntry]) -> (Vec<u8>, Vec<Partition>) {
    let mut out = Vec::new();
    put_leb128(&mut out, index.len() as u64);
    let mut parts = Vec::with_capacity(index.len().div_ceil(PARTITION_BLOCKS));
    for chunk in index.chunks(PARTITION_BLOCKS) {
        let start = out.len();
        for e in chunk {
            put_leb128(&mut out, e.last_key.len() as u64);
            out.extend_from_slice(&e.last_key);
            put_leb128(&mut out, e.offset);
            put_leb128(&mut out, e.len as u64);
        }
        parts.push(Partition {
            last_key: chunk
                .last()
                .expect("a chunk is never empty")
                .last_key
                .clone(),
            start: start as u64,
            len: (out.len() - start) as u64,
            crc: crc32fast::hash(&out[start..]),
        });
    }
    (out, parts)
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

/// Writes a run from entries in ascending key order. Returns its meta once the file
/// is durable under its final name and has been read back and verified.
pub fn write_run(
    vfs: &dyn Vfs,
    runs_dir: &Path,
    name: &str,
    store_id: [u8; 16],
    derived_version: u32,
    entries: impl Iterator<Item = Result<(Vec<u8>, Versions)>>,
) -> Result<RunMeta> {
    let tmp = runs_dir.join(format!(
        "{name}.{}.{:016x}.tmp",
        std::process::id(),
        crate::util::random_u64()
    ));
    let dst = runs_dir.join(name);
    let f = vfs.open(&tmp, OpenMode::CreateNew).map_err(io_at(&tmp))?;
    let result = (|| -> Result<RunMeta> {
        let mut w = Writer {
            f: f.as_ref(),
            path: &tmp,
            off: HEADER_BYTES,
        };
        let mut index = Vec::new();
        // One block's entries at a time: a run is written in bounded memory.
        let mut block: Vec<(Vec<u8>, Versions)> = Vec::new();
        let mut block_bytes = 0usize;
        let (mut min_lsn, mut max_lsn, mut keys) = (u64::MAX, 0u64, 0u64);
        let mut last_key: Option<Vec<u8>> = None;
        let flush = |w: &mut Writer, block: &mut Vec<(Vec<u8>, Versions)>| -> Result<IndexEntry> {
            let refs: Vec<RunEntryRef> = block
                .iter()
                .map(|(key, versions)| RunEntryRef {
                    key,
                    versions: versions.iter().map(|(l, v)| (*l, &v[..])).collect(),
                })
                .collect();
            let e = w.block(&refs)?;
            block.clear();
            Ok(e)
        };
        let mut first_derived_block: Option<usize> = None;
        for item in entries {
            let (key, versions) = item?;
            assert!(
                last_key.as_deref().is_none_or(|k| k < key.as_slice()),
                "run keys must ascend"
            );
            if first_derived_block.is_none() && key.first() == Some(&DERIVED_TAG) {
                // Derived keys never share a block with entities or edges.
                if !block.is_empty() {
                    index.push(flush(&mut w, &mut block)?);
                    block_bytes = 0;
                }
                first_derived_block = Some(index.len());
            }
            keys += 1;
            for (l, v) in &versions {
                min_lsn = min_lsn.min(*l);
                max_lsn = max_lsn.max(*l);
                block_bytes += v.len() + 10;
            }
            block_bytes += key.len() + 4;
            last_key = Some(key.clone());
            block.push((key, versions));
            if block_bytes >= BLOCK_TARGET_BYTES {
                index.push(flush(&mut w, &mut block)?);
                block_bytes = 0;
            }
        }
        if !block.is_empty() {
            index.push(flush(&mut w, &mut block)?);
        }
        if keys == 0 {
            min_lsn = 0;
        }
        let (index_bytes, parts) = encode_index(&index);
        let part_bytes = crate::model::encode(&parts);
        let index_off = w.off;
        w.write(&index_bytes)?;
        w.write(&part_bytes)?;
        let mut footer = [0u8; FOOTER_BYTES as usize];
        footer[0..8].copy_from_slice(&index_off.to_le_bytes());
        footer[8..16].copy_from_slice(&(index_bytes.len() as u64).to_le_bytes());
        footer[16..24].copy_from_slice(&keys.to_le_bytes());
        footer[24..28].copy_from_slice(&crc32fast::hash(&index_bytes).to_le_bytes());
        footer[28..32].copy_from_slice(&(index.len() as u32).to_le_bytes());
        footer[32..36].copy_from_slice(&(part_bytes.len() as u32).to_le_bytes());
        footer[36..40].copy_from_slice(&crc32fast::hash(&part_bytes).to_le_bytes());
        let crc = crc32fast::hash(&footer[0..40]);
        footer[40..44].copy_from_slice(&crc.to_le_bytes());
        footer[44..48].copy_from_slice(b"RUNF");
        w.write(&footer)?;
        let mut h = [0u8; HEADER_BYTES as usize];
        h[0..8].copy_from_slice(RUN_MAGIC);
        h[8..12].copy_from_slice(&RUN_FORMAT_VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&derived_version.to_le_bytes());
        h[16..32].copy_from_slice(&store_id);
        h[32..40].copy_from_slice(&min_lsn.to_le_bytes());
        h[40..48].copy_from_slice(&max_lsn.to_le_bytes());
        let derived_from = first_derived_block.map_or(0, |b| b as u32 + 1);
        h[48..52].copy_from_slice(&derived_from.to_le_bytes());
        let crc = crc32fast::hash(&h[0..60]);
        h[60..64].copy_from_slice(&crc.to_le_bytes());
        f.write_at(&h, 0).map_err(io_at(&tmp))?;
        f.sync_data().map_err(io_at(&tmp))?;
        let meta = RunMeta {
            name: name.to_string(),
            min_lsn,
            max_lsn,
            bytes: w.off,
            keys,
        };
        // Read every block back (from the disk's answer, not our buffers) before the
        // run gets its name: a run that does not verify is never installed, and the
        // checkpoint fails with the WAL and the older runs it was made from intact,
        // so the next checkpoint rebuilds it from them.
        let tmp_name = tmp.file_name().expect("file name").to_string_lossy();
        Run::open(
            vfs,
            runs_dir,
            &RunMeta {
                name: tmp_name.into_owned(),
                ..meta.clone()
            },
            store_id,
        )?
        .verify()?;
        vfs.rename(&tmp, &dst).map_err(io_at(&tmp))?;
        vfs.sync_dir(runs_dir).map_err(io_at(runs_dir))?;
        Ok(meta)
    })();
    if result.is_err() {
        let _ = vfs.remove_file(&tmp);
    }
    result
}

struct Writer<'a> {
    f: &'a dyn VfsFile,
    path: &'a Path,
    off: u64,
}

impl Writer<'_> {
    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.f.write_at(b, self.off).map_err(io_at(self.path))?;
        self.off += b.len() as u64;
        Ok(())
    }
    fn block(&mut self, entries: &[RunEntryRef]) -> Result<IndexEntry> {
        let payload = crate::model::encode(&entries);
        let mut head = [0u8; 8];
        head[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        head[4..8].copy_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        let offset = self.off;
        self.write(&head)?;
        self.write(&payload)?;
        Ok(IndexEntry {
            last_key: entries.last().expect("non-empty block").key.to_vec(),
            offset,
            len: payload.len() as u32 + 8,
        })
    }
}

/// An open run: header, footer and index in memory; blocks read (and verified) on
/// first touch and kept in a small cache.
#[derive(Debug)]
pub struct Run {
    pub meta: RunMeta,
    /// Which derived entries (indexes) the run holds; 0 for none.
    pub derived_version: u32,
    path: PathBuf,
    file: Arc<dyn VfsFile>,
    index: Index,
    /// Header field: the first derived-only block + 1 (0: not recorded).
    derived_from: u32,
    /// Set when a derived-only block failed its checks: this run's derived keys
    /// are no longer read, and the store rebuilds them from the entities.
    derived_damaged: AtomicBool,
    /// This open run's key in the block cache.
    uid: u64,
    /// Where the blocks end (the index begins): no block lies past it.
    blocks_end: u64,
}

impl Drop for Run {
    fn drop(&mut self) {
        self.forget_blocks();
    }
}

/// A block as the cache holds it: its payload bytes, checked once when read,
/// and where each entry's key and versions start. Keys and values are read in
/// place, so a block costs three allocations however many entries it holds.
#[derive(Debug)]
struct Block {
    buf: Vec<u8>,
    /// Per entry: key start, key end (the versions follow the key).
    keys: Vec<(u32, u32)>,
}

impl Block {
    /// Checks that `buf` is a postcard `Vec<RunEntry>` (nothing left over) and
    /// indexes its entries; `None` when it is not.
    fn parse(buf: Vec<u8>) -> Option<Block> {
        let mut pos = 0;
        let n = usize::try_from(leb128(&buf, &mut pos)?).ok()?;
        // An entry takes at least 2 bytes (key length, version count).
        if n > buf.len() / 2 {
            return None;
        }
        let mut keys = Vec::with_capacity(n);
        for _ in 0..n {
            let klen = usize::try_from(leb128(&buf, &mut pos)?).ok()?;
            let kend = pos.checked_add(klen).filter(|&e| e <= buf.len())?;
            keys.push((u32::try_from(pos).ok()?, u32::try_from(kend).ok()?));
            pos = kend;
            let nv = leb128(&buf, &mut pos)?;
            for _ in 0..nv {
                leb128(&buf, &mut pos)?;
                let vlen = usize::try_from(leb128(&buf, &mut pos)?).ok()?;
                pos = pos.checked_add(vlen).filter(|&e| e <= buf.len())?;
            }
        }
        (pos == buf.len()).then_some(Block { buf, keys })
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    fn key(&self, i: usize) -> &[u8] {
        let (a, b) = self.keys[i];
        &self.buf[a as usize..b as usize]
    }

    /// Entry `i`'s versions, oldest first.
    fn versions(&self, i: usize) -> BlockVersions<'_> {
        let mut pos = self.keys[i].1 as usize;
        let left = leb128(&self.buf, &mut pos).unwrap_or(0);
        BlockVersions {
            buf: &self.buf,
            pos,
            left,
        }
    }

    /// The newest version of entry `i` at or below `lsn`.
    fn version_at(&self, i: usize, lsn: u64) -> Option<(u64, &[u8])> {
        self.versions(i).take_while(|(l, _)| *l <= lsn).last()
    }

    /// Where `key` is (`Ok`) or would be (`Err`).
    fn find(&self, key: &[u8]) -> std::result::Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.key(mid).cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// What the block cache counts it as.
    fn cost(&self) -> usize {
        self.buf.len() + self.keys.len() * 8 + 64
    }
}

/// The versions of one block entry, oldest first, read in place.
#[derive(Clone)]
pub struct BlockVersions<'a> {
    buf: &'a [u8],
    pos: usize,
    left: u64,
}

impl<'a> Iterator for BlockVersions<'a> {
    type Item = (u64, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The block was checked whole when read: these reads succeed.
        let lsn = leb128(self.buf, &mut self.pos)?;
        let len = leb128(self.buf, &mut self.pos)? as usize;
        let v = self.buf.get(self.pos..self.pos + len)?;
        self.pos += len;
        Some((lsn, v))
    }
}

/// Checked blocks of every open run in the process, least recently used dropped
/// first: memory for reads stays within [`BLOCK_CACHE_BYTES`] however many runs
/// and however large the store.
struct BlockCache {
    /// (run uid, block number) → (block, its cost in bytes).
    lru: lru::LruCache<(u64, usize), (Arc<Block>, usize)>,
    bytes: usize,
}

static BLOCK_CACHE: std::sync::LazyLock<Mutex<BlockCache>> = std::sync::LazyLock::new(|| {
    Mutex::new(BlockCache {
        lru: lru::LruCache::unbounded(),
        bytes: 0,
    })
});

static NEXT_RUN_UID: AtomicU64 = AtomicU64::new(1);

impl Run {
    pub fn open(vfs: &dyn Vfs, runs_dir: &Path, meta: &RunMeta, store_id: [u8; 16]) -> Result<Run> {
        let path = runs_dir.join(&meta.name);
        let file = vfs.open(&path, OpenMode::Read).map_err(io_at(&path))?;
        let corrupt = |d: String| Error::CorruptFile {
            file: path.clone(),
            detail: d,
        };
        let len = file.len().map_err(io_at(&path))?;
        if len < HEADER_BYTES + FOOTER_BYTES {
            return Err(corrupt(format!("{len} bytes is shorter than a run")));
        }
        let mut h = [0u8; HEADER_BYTES as usize];
        file.read_exact_at(&mut h, 0).map_err(io_at(&path))?;
        if &h[0..8] != RUN_MAGIC {
            return Err(corrupt("bad magic".into()));
        }
        if crc32fast::hash(&h[0..60]) != u32::from_le_bytes(h[60..64].try_into().unwrap()) {
            return Err(corrupt("header checksum mismatch".into()));
        }
        let version = u32::from_le_bytes(h[8..12].try_into().unwrap());
        if version > RUN_FORMAT_VERSION {
            return Err(Error::Wal(wal::Error::TooNew {
                file: path.clone(),
                found: version,
                supported: RUN_FORMAT_VERSION,
            }));
        }
        if h[16..32] != store_id {
            return Err(corrupt("belongs to another store".into()));
        }
        let mut ft = [0u8; FOOTER_BYTES as usize];
        file.read_exact_at(&mut ft, len - FOOTER_BYTES)
            .map_err(io_at(&path))?;
        if &ft[44..48] != b"RUNF"
            || crc32fast::hash(&ft[0..40]) != u32::from_le_bytes(ft[40..44].try_into().unwrap())
        {
            return Err(corrupt("footer damaged (checksum or magic)".into()));
        }
        let u64at = |o: usize| u64::from_le_bytes(ft[o..o + 8].try_into().unwrap());
        let u32at = |o: usize| u32::from_le_bytes(ft[o..o + 4].try_into().unwrap());
        let (index_off, index_len) = (u64at(0), u64at(8));
        let part_len = if version >= 2 { u32at(32) as u64 } else { 0 };
        if index_off
            .checked_add(index_len)
            .and_then(|x| x.checked_add(part_len))
            != Some(len - FOOTER_BYTES)
        {
            return Err(corrupt(
                "index position disagrees with the file length".into(),
            ));
        }
        let index = if version >= 2 {
            let mut pb = vec![0u8; part_len as usize];
            file.read_exact_at(&mut pb, index_off + index_len)
                .map_err(io_at(&path))?;
            if crc32fast::hash(&pb) != u32at(36) {
                return Err(corrupt("index partitions checksum mismatch".into()));
            }
            let parts: Vec<Partition> = crate::model::decode(&pb, "run index partitions")?;
            let blocks = u32at(28) as usize;
            // The slices must tile the index after its count, in order.
            let mut at = None;
            let fits = parts.len() == blocks.div_ceil(PARTITION_BLOCKS)
                && parts.iter().all(|p| {
                    let ok = at.is_none_or(|a| a == p.start)
                        && p.start.checked_add(p.len).is_some_and(|e| e <= index_len);
                    at = Some(p.start + p.len);
                    ok
                })
                && at.is_none_or(|a| a == index_len);
            if !fits {
                return Err(corrupt("index partitions do not tile the index".into()));
            }
            Index::Parted {
                blocks,
                loaded: (0..parts.len())
                    .map(|_| std::sync::OnceLock::new())
                    .collect(),
                parts,
                index_off,
                index_len,
                index_crc: u32at(24),
            }
        } else {
            let mut ib = vec![0u8; index_len as usize];
            file.read_exact_at(&mut ib, index_off)
                .map_err(io_at(&path))?;
            if crc32fast::hash(&ib) != u32at(24) {
                return Err(corrupt("index checksum mismatch".into()));
            }
            Index::Whole(BlockIndex::parse(ib).ok_or_else(|| Error::Decode("run index".into()))?)
        };
        Ok(Run {
            derived_version: u32::from_le_bytes(h[12..16].try_into().unwrap()),
            meta: meta.clone(),
            path,
            file,
            index,
            derived_from: u32::from_le_bytes(h[48..52].try_into().unwrap()),
            derived_damaged: AtomicBool::new(false),
            uid: NEXT_RUN_UID.fetch_add(1, Ordering::Relaxed),
            blocks_end: index_off,
        })
    }

    /// How many blocks the run holds.
    fn blocks(&self) -> usize {
        match &self.index {
            Index::Whole(ix) => ix.len(),
            Index::Parted { blocks, .. } => *blocks,
        }
    }

    /// Partition `p` of a format-2 index, read and checked on first use.
    fn partition(&self, p: usize) -> Result<&BlockIndex> {
        let Index::Parted {
            blocks,
            parts,
            loaded,
            index_off,
            ..
        } = &self.index
        else {
            unreachable!("only format-2 runs have partitions");
        };
        if let Some(ix) = loaded[p].get() {
            return Ok(ix);
        }
        let part = &parts[p];
        let mut raw = vec![0u8; part.len as usize];
        self.file
            .read_exact_at(&mut raw, index_off + part.start)
            .map_err(io_at(&self.path))?;
        let count = (blocks - p * PARTITION_BLOCKS).min(PARTITION_BLOCKS);
        let ix = (crc32fast::hash(&raw) == part.crc)
            .then(|| BlockIndex::parse_entries(raw, Some(count)))
            .flatten()
            .filter(|ix| ix.len() == count && ix.last_key(count - 1) == part.last_key)
            .ok_or_else(|| Error::CorruptFile {
                file: self.path.clone(),
                detail: format!("index partition {p} fails its checksum or does not parse"),
            })?;
        // Two threads may both read it; either copy is the same.
        let _ = loaded[p].set(ix);
        Ok(loaded[p].get().expect("just set"))
    }

    /// Where block `i` lies in the file: `(offset, length)`.
    fn block_pos(&self, i: usize) -> Result<(u64, u32)> {
        match &self.index {
            Index::Whole(ix) => Ok((ix.offset(i), ix.block_len(i))),
            Index::Parted { .. } => {
                let ix = self.partition(i / PARTITION_BLOCKS)?;
                let j = i % PARTITION_BLOCKS;
                Ok((ix.offset(j), ix.block_len(j)))
            }
        }
    }

    /// The first block whose last key is at or after `key`: where `key` (or the
    /// first key under it as a prefix) would be; [`Run::blocks`] if none.
    fn first_block_for(&self, key: &[u8]) -> Result<usize> {
        match &self.index {
            Index::Whole(ix) => Ok(ix.first_block_for(key)),
            Index::Parted { blocks, parts, .. } => {
                let p = parts.partition_point(|part| part.last_key.as_slice() < key);
                if p == parts.len() {
                    return Ok(*blocks);
                }
                Ok(p * PARTITION_BLOCKS + self.partition(p)?.first_block_for(key))
            }
        }
    }

    fn block(&self, i: usize) -> Result<Arc<Block>> {
        if let Some((b, _)) = BLOCK_CACHE.lock().lru.get(&(self.uid, i)) {
            return Ok(b.clone());
        }
        let b = Arc::new(self.read_block(i)?);
        let cost = b.cost();
        let mut cache = BLOCK_CACHE.lock();
        if let Some((_, old)) = cache.lru.put((self.uid, i), (b.clone(), cost)) {
            cache.bytes -= old;
        }
        cache.bytes += cost;
        while cache.bytes > BLOCK_CACHE_BYTES {
            let Some((_, (_, c))) = cache.lru.pop_lru() else {
                break;
            };
            cache.bytes -= c;
        }
        Ok(b)
    }

    /// Drops this run's blocks from the block cache: a pass over the cache
    /// (a few thousand blocks at most), not over the run's blocks (80k in a
    /// 650 MB run, which made every process's exit pay for them).
    fn forget_blocks(&self) {
        let mut cache = BLOCK_CACHE.lock();
        let mine: Vec<(u64, usize)> = cache
            .lru
            .iter()
            .map(|(k, _)| *k)
            .filter(|(uid, _)| *uid == self.uid)
            .collect();
        for k in mine {
            if let Some((_, c)) = cache.lru.pop(&k) {
                cache.bytes -= c;
            }
        }
    }

    /// Whether block `i` holds only derived keys (index entries).
    pub fn derived_only(&self, i: usize) -> bool {
        if self.derived_from > 0 {
            return i + 1 >= self.derived_from as usize;
        }
        // Runs written since the header field existed (every format-2 run)
        // record it whenever they hold derived keys.
        match &self.index {
            Index::Whole(ix) => i > 0 && ix.last_key(i - 1).first() == Some(&DERIVED_TAG),
            Index::Parted { .. } => false,
        }
    }

    /// Whether a derived-only block of this run was found damaged.
    pub fn derived_damaged(&self) -> bool {
        self.derived_damaged.load(Ordering::Acquire)
    }

    /// Each block's position in the file: `(offset, length, derived_only)`, for
    /// tools and tests that inspect or damage runs.
    pub fn block_spans(&self) -> Result<Vec<(u64, u32, bool)>> {
        (0..self.blocks())
            .map(|i| {
                let (offset, len) = self.block_pos(i)?;
                Ok((offset, len, self.derived_only(i)))
            })
            .collect()
    }

    /// Reads block `i` from the file and checks it. A derived-only block that
    /// fails marks the run's derived keys damaged (see [`Run::derived_damaged`]).
    fn read_block(&self, i: usize) -> Result<Block> {
        let r = self.read_block_unmarked(i);
        if r.is_err() && self.derived_only(i) {
            self.derived_damaged.store(true, Ordering::Release);
        }
        r
    }

    fn read_block_unmarked(&self, i: usize) -> Result<Block> {
        let (offset, len) = self.block_pos(i)?;
        // A block lies between the header and the index and holds at least its
        // length and checksum: an index entry that says otherwise is damage,
        // refused before room for the block is allocated.
        if len < 8
            || offset < HEADER_BYTES
            || offset
                .checked_add(len as u64)
                .is_none_or(|e| e > self.blocks_end)
        {
            return Err(Error::CorruptFile {
                file: self.path.clone(),
                detail: format!(
                    "block {i}: the index places it at offset {offset}, {len} bytes, outside the blocks"
                ),
            });
        }
        let mut buf = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(io_at(&self.path))?;
        let len = u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(buf[4..8].try_into().unwrap());
        if len + 8 != buf.len() || crc32fast::hash(&buf[8..]) != crc {
            let what = if self.derived_only(i) {
                "index block"
            } else {
                "block"
            };
            return Err(Error::CorruptFile {
                file: self.path.clone(),
                detail: format!("{what} {i} at offset {} fails its checksum", offset),
            });
        }
        buf.drain(..8);
        Block::parse(buf).ok_or_else(|| Error::Decode(format!("run block {i}")))
    }

    /// Whether `key` is a derived key this run no longer answers for.
    fn shunned(&self, key: &[u8]) -> bool {
        key.first() == Some(&DERIVED_TAG) && self.derived_damaged()
    }

    /// All versions of `key`, oldest first.
    pub fn get(&self, key: &[u8]) -> Result<Option<StoredVersions>> {
        if self.shunned(key) {
            return Ok(None);
        }
        let i = self.first_block_for(key)?;
        if i >= self.blocks() {
            return Ok(None);
        }
        let b = self.block(i)?;
        Ok(b.find(key)
            .ok()
            .map(|j| b.versions(j).map(|(l, v)| (l, v.to_vec())).collect()))
    }

    /// The newest version of `key` at or below `lsn` (without copying the others:
    /// a hot key may have a long history).
    pub fn get_at(&self, key: &[u8], lsn: u64) -> Result<Option<crate::state::Version>> {
        if self.shunned(key) {
            return Ok(None);
        }
        let i = self.first_block_for(key)?;
        if i >= self.blocks() {
            return Ok(None);
        }
        let b = self.block(i)?;
        Ok(b.find(key)
            .ok()
            .and_then(|j| b.version_at(j, lsn).map(|(l, v)| (l, Arc::from(v)))))
    }

    /// Calls `f` with each key starting with `prefix` and its versions, in order.
    pub fn scan_prefix(
        &self,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], BlockVersions<'_>),
    ) -> Result<()> {
        let mut i = self.first_block_for(prefix)?;
        while i < self.blocks() && !(self.derived_damaged() && self.derived_only(i)) {
            let b = self.block(i)?;
            for j in 0..b.len() {
                let key = b.key(j);
                if key < prefix || self.shunned(key) {
                    continue;
                }
                if !key.starts_with(prefix) {
                    return Ok(());
                }
                f(key, b.versions(j));
            }
            i += 1;
        }
        Ok(())
    }

    /// The newest version at or below `lsn` of each key starting with `prefix`, in
    /// key order, lazily: blocks are read (through the block cache) only as the
    /// iteration reaches them, so a caller that stops early reads little.
    pub fn iter_prefix(
        self: &Arc<Self>,
        prefix: &[u8],
        lsn: u64,
    ) -> impl Iterator<Item = Result<(Vec<u8>, crate::state::Version)>> {
        self.iter_from(prefix, prefix, lsn)
    }

    /// [`Run::iter_prefix`], from the first key at or after `from`.
    pub fn iter_from(
        self: &Arc<Self>,
        prefix: &[u8],
        from: &[u8],
        lsn: u64,
    ) -> impl Iterator<Item = Result<(Vec<u8>, crate::state::Version)>> {
        let run = self.clone();
        let prefix = prefix.to_vec();
        let from = from.max(prefix.as_slice()).to_vec();
        // Found on the first call (it may read a partition of the index).
        let mut block_i: Option<usize> = None;
        let mut block: Option<Arc<Block>> = None;
        let mut pos = 0usize;
        let mut done = false;
        std::iter::from_fn(move || loop {
            if done {
                return None;
            }
            if block.as_ref().is_none_or(|b| pos >= b.len()) {
                let block_i = match block_i {
                    Some(ref mut i) => {
                        *i += 1;
                        *i
                    }
                    None => match run.first_block_for(&from) {
                        Ok(i) => *block_i.insert(i),
                        Err(e) => {
                            done = true;
                            return Some(Err(e));
                        }
                    },
                };
                if block_i >= run.blocks() || (run.derived_damaged() && run.derived_only(block_i)) {
                    done = true;
                    return None;
                }
                match run.block(block_i) {
                    Ok(b) => {
                        // The first block may start below `from`.
                        pos = b.find(&from).unwrap_or_else(|p| p);
                        block = Some(b);
                    }
                    Err(e) => {
                        done = true;
                        return Some(Err(e));
                    }
                }
                // Nothing at or after `from` in it (an index that does not
                // match its blocks can say otherwise): on to the next block.
                continue;
            }
            let b = block.as_ref().expect("loaded");
            let (j, key) = (pos, b.key(pos));
            pos += 1;
            if !key.starts_with(&prefix) {
                done = true;
                return None;
            }
            if run.shunned(key) {
                continue;
            }
            if let Some((l, v)) = b.version_at(j, lsn) {
                return Some(Ok((key.to_vec(), (l, Arc::from(v)))));
            }
        })
    }

    /// Every entry in key order, reading each block once (bypassing the block
    /// cache, so that a merge does not evict what readers use). Once the run's
    /// derived keys are damaged, they are left out (the store rebuilt them).
    pub fn entries(self: &Arc<Self>) -> impl Iterator<Item = Result<(Vec<u8>, Versions)>> {
        let run = self.clone();
        let skip_derived = self.derived_damaged();
        (0..self.blocks()).flat_map(move |i| {
            if skip_derived && run.derived_only(i) {
                return Vec::new();
            }
            let block: Vec<Result<(Vec<u8>, Versions)>> = match run.read_block(i) {
                Ok(b) => (0..b.len())
                    .filter(|&j| !(skip_derived && b.key(j).first() == Some(&DERIVED_TAG)))
                    .map(|j| {
                        Ok((
                            b.key(j).to_vec(),
                            b.versions(j).map(|(l, v)| (l, Arc::from(v))).collect(),
                        ))
                    })
                    .collect(),
                Err(e) => vec![Err(e)],
            };
            block
        })
    }

    /// Reads and checks every block (bypassing the block cache).
    pub fn verify(&self) -> Result<()> {
        if let Index::Parted {
            index_off,
            index_len,
            index_crc,
            parts,
            ..
        } = &self.index
        {
            // The whole index against its checksum, then every partition.
            let mut ib = vec![0u8; *index_len as usize];
            self.file
                .read_exact_at(&mut ib, *index_off)
                .map_err(io_at(&self.path))?;
            if crc32fast::hash(&ib) != *index_crc {
                return Err(Error::CorruptFile {
                    file: self.path.clone(),
                    detail: "index checksum mismatch".into(),
                });
            }
            for p in 0..parts.len() {
                self.partition(p)?;
            }
        }
        let mut keys = 0u64;
        for i in 0..self.blocks() {
            keys += self.read_block(i)?.len() as u64;
        }
        if keys != self.meta.keys {
            return Err(Error::CorruptFile {
                file: self.path.clone(),
                detail: format!("holds {keys} keys, manifest says {}", self.meta.keys),
            });
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A run's block index as read at open: every block's last key in one buffer and
/// its position, parsed straight from the index's postcard bytes (a length, then
/// per block: key length, key, offset, length, all LEB128) without an allocation
/// per block, so opening a large run costs one pass over its index.
#[derive(Debug, Default)]
struct BlockIndex {
    /// The index's bytes as read: keys are read in place.
    raw: Vec<u8>,
    /// Where block i's last key starts in `raw`, and its length.
    keys: Vec<(u32, u32)>,
    offsets: Vec<u64>,
    lens: Vec<u32>,
}

/// A run's block index: whole (format 1), or in partitions read when first
/// needed (format 2).
#[derive(Debug)]
enum Index {
    Whole(BlockIndex),
    Parted {
        blocks: usize,
        parts: Vec<Partition>,
        /// Each partition once read (lock-free once set).
        loaded: Vec<std::sync::OnceLock<BlockIndex>>,
        index_off: u64,
        index_len: u64,
        index_crc: u32,
    },
}

fn leb128(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        if shift == 63 && byte > 1 {
            return None;
        }
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

impl BlockIndex {
    fn parse(raw: Vec<u8>) -> Option<BlockIndex> {
        Self::parse_entries(raw, None)
    }

    /// Entries from `raw`: `count` of them, or as many as its leading count says.
    fn parse_entries(raw: Vec<u8>, count: Option<usize>) -> Option<BlockIndex> {
        let b = &raw;
        let mut pos = 0;
        let n = match count {
            Some(n) => n,
            None => usize::try_from(leb128(b, &mut pos)?).ok()?,
        };
        // Each entry takes at least 3 bytes: refuse counts the bytes cannot hold.
        if n > b.len() / 3 + 1 {
            return None;
        }
        let mut keys = Vec::with_capacity(n);
        let mut offsets = Vec::with_capacity(n);
        let mut lens = Vec::with_capacity(n);
        for _ in 0..n {
            let klen = usize::try_from(leb128(b, &mut pos)?).ok()?;
            let end = pos.checked_add(klen).filter(|&e| e <= b.len())?;
            keys.push((u32::try_from(pos).ok()?, u32::try_from(klen).ok()?));
            pos = end;
            offsets.push(leb128(b, &mut pos)?);
            lens.push(u32::try_from(leb128(b, &mut pos)?).ok()?);
        }
        (pos == b.len()).then_some(BlockIndex {
            raw,
            keys,
            offsets,
            lens,
        })
    }

    fn len(&self) -> usize {
        self.offsets.len()
    }

    fn last_key(&self, i: usize) -> &[u8] {
        let (start, len) = self.keys[i];
        &self.raw[start as usize..(start + len) as usize]
    }

    fn offset(&self, i: usize) -> u64 {
        self.offsets[i]
    }

    fn block_len(&self, i: usize) -> u32 {
        self.lens[i]
    }

    /// The first block whose last key is at or after `key`: where `key` (or the
    /// first key under it as a prefix) would be.
    fn first_block_for(&self, key: &[u8]) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.last_key(mid) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

#[cfg(test)]
mod block_index_tests {
    use super::*;

    #[test]
    fn the_block_index_parses_what_postcard_wrote() {
        let entries: Vec<IndexEntry> = (0..300u64)
            .map(|i| IndexEntry {
                last_key: format!("e{:05}{}", i * 7, "k".repeat((i % 5) as usize)).into_bytes(),
                offset: 64 + i * 40_000 + (i << 40),
                len: (i * 977) as u32,
            })
            .collect();
        let bytes = crate::model::encode(&entries);
        let ix = BlockIndex::parse(bytes.clone()).expect("parses");
        assert_eq!(ix.len(), entries.len());
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(ix.last_key(i), e.last_key.as_slice());
            assert_eq!((ix.offset(i), ix.block_len(i)), (e.offset, e.len));
        }
        for probe in [&b"e"[..], b"e00700", b"e00701", b"z"] {
            let want = entries.partition_point(|e| e.last_key.as_slice() < probe);
            assert_eq!(ix.first_block_for(probe), want, "{probe:?}");
        }
        assert_eq!(
            BlockIndex::parse(crate::model::encode(&Vec::<IndexEntry>::new()))
                .unwrap()
                .len(),
            0
        );
        // Truncated or padded bytes are refused.
        assert!(BlockIndex::parse(bytes[..bytes.len() - 1].to_vec()).is_none());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(BlockIndex::parse(longer).is_none());
    }
}

#[cfg(test)]
mod block_tests {
    use super::*;

    #[test]
    fn a_block_reads_in_place_what_postcard_wrote() {
        let entries: Vec<RunEntry> = (0..200u64)
            .map(|i| RunEntry {
                key: format!("e{:05}{}", i * 3, "k".repeat((i % 4) as usize)).into_bytes(),
                versions: (0..(i % 4))
                    .map(|v| (i * 10 + v + (v << 40), vec![v as u8; (i % 7) as usize * 50]))
                    .collect(),
            })
            .collect();
        let bytes = crate::model::encode(&entries);
        let b = Block::parse(bytes.clone()).expect("parses");
        assert_eq!(b.len(), entries.len());
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(b.key(i), e.key.as_slice());
            let vs: Vec<(u64, Vec<u8>)> = b.versions(i).map(|(l, v)| (l, v.to_vec())).collect();
            assert_eq!(vs, e.versions);
            assert_eq!(b.find(&e.key), Ok(i));
            for lsn in [0, i as u64 * 10, i as u64 * 10 + 1, u64::MAX] {
                let want = e.versions.iter().rev().find(|(l, _)| *l <= lsn);
                assert_eq!(b.version_at(i, lsn), want.map(|(l, v)| (*l, v.as_slice())));
            }
        }
        for probe in [&b"a"[..], b"e00001", b"e00003k", b"z"] {
            let want = entries.partition_point(|e| e.key.as_slice() < probe);
            assert_eq!(b.find(probe).unwrap_or_else(|p| p), want, "{probe:?}");
        }
        // Truncated, padded or garbled bytes are refused, never misread.
        assert!(Block::parse(bytes[..bytes.len() - 1].to_vec()).is_none());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Block::parse(longer).is_none());
        assert!(Block::parse(vec![0xff; 16]).is_none());
        assert_eq!(
            Block::parse(crate::model::encode(&Vec::<RunEntry>::new()))
                .unwrap()
                .len(),
            0
        );
    }
}

#[cfg(test)]
mod partition_tests {
    use super::*;
    use wal::SimVfs;

    fn entries(n: usize) -> Vec<(Vec<u8>, Versions)> {
        (0..n)
            .map(|i| {
                let key = format!("e{i:06}").into_bytes();
                let v: Arc<[u8]> = Arc::from(vec![(i % 251) as u8; 900]);
                (key, vec![(i as u64 + 1, v)])
            })
            .collect()
    }

    #[test]
    fn the_index_encodes_as_postcard_does_and_its_partitions_tile_it() {
        let index: Vec<IndexEntry> = (0..300u64)
            .map(|i| IndexEntry {
                last_key: format!("k{i:04}").into_bytes(),
                offset: 64 + i * 9000,
                len: 9000 + i as u32,
            })
            .collect();
        let (bytes, parts) = encode_index(&index);
        assert_eq!(bytes, crate::model::encode(&index));
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2].last_key, b"k0299");
        assert_eq!(parts[0].start + parts[0].len, parts[1].start);
        assert_eq!(parts[2].start + parts[2].len, bytes.len() as u64);
    }

    /// A run of several partitions answers every key, in order, reads only the
    /// partitions it needs, and a damaged partition fails the lookups under it
    /// (and `verify`) with a corruption error while the others still answer.
    #[test]
    fn a_partitioned_index_is_read_as_needed_and_checked() {
        let vfs = SimVfs::new();
        let dir = Path::new("/p/runs");
        vfs.create_dir_all(dir).unwrap();
        let id = [7u8; 16];
        let n = 3000;
        let meta = write_run(
            vfs.as_ref(),
            dir,
            "r.run",
            id,
            0,
            entries(n).into_iter().map(Ok),
        )
        .unwrap();
        let run = Arc::new(Run::open(vfs.as_ref(), dir, &meta, id).unwrap());
        let Index::Parted { parts, loaded, .. } = &run.index else {
            panic!("a new run has a partitioned index");
        };
        assert!(parts.len() >= 3, "{} partitions", parts.len());
        assert!(
            loaded.iter().all(|p| p.get().is_none()),
            "nothing read at open"
        );
        let (_, v) = run.get_at(b"e000005", u64::MAX).unwrap().unwrap();
        assert_eq!(&v[..], &[5u8; 900][..]);
        assert_eq!(
            loaded.iter().filter(|p| p.get().is_some()).count(),
            1,
            "one lookup reads one partition"
        );
        for i in (0..n).step_by(97) {
            let key = format!("e{i:06}").into_bytes();
            assert_eq!(run.get_at(&key, u64::MAX).unwrap().unwrap().0, i as u64 + 1);
        }
        assert!(run.get_at(b"e999999", u64::MAX).unwrap().is_none());
        assert!(run.get_at(b"a", u64::MAX).unwrap().is_none());
        let all: Vec<Vec<u8>> = run
            .iter_prefix(b"e", u64::MAX)
            .map(|r| r.unwrap().0)
            .collect();
        assert_eq!(all.len(), n);
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        let tail: Vec<Vec<u8>> = run
            .iter_from(b"e", b"e002990", u64::MAX)
            .map(|r| r.unwrap().0)
            .collect();
        assert_eq!(tail.len(), 10);
        run.verify().unwrap();

        // Damage the last partition's bytes of the index.
        let (index_off, last) = match &run.index {
            Index::Parted {
                index_off, parts, ..
            } => (*index_off, parts.last().unwrap().clone()),
            Index::Whole(_) => unreachable!(),
        };
        let f = vfs.open(&dir.join("r.run"), OpenMode::ReadWrite).unwrap();
        let at = index_off + last.start + 1;
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, at).unwrap();
        f.write_at(&[b[0] ^ 0x40], at).unwrap();
        let run = Arc::new(Run::open(vfs.as_ref(), dir, &meta, id).unwrap());
        let last_key = format!("e{:06}", n - 1).into_bytes();
        let e = run.get_at(&last_key, u64::MAX).unwrap_err();
        assert!(
            matches!(&e, Error::CorruptFile { detail, .. } if detail.contains("partition")),
            "{e}"
        );
        assert!(run.get_at(b"e000005", u64::MAX).unwrap().is_some());
        assert!(run.verify().is_err());
    }
}
