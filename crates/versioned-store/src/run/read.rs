//! An open run: opening and checking it, reading blocks through the
//! process-wide block cache, point reads, prefix scans, iteration, verify.

use super::*;

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
    /// The run's format version (3: keys stored as shared length and rest).
    format: u32,
    /// Format 4: each partition's filter over its entity keys; `None` before
    /// format 4, or when the filter directory is damaged ([`Run::verify`] says so).
    filters: Option<Filters>,
    /// The filter directory failed its checks at open.
    filters_damaged: bool,
    /// The file mapped read-only, where the process enabled maps: point reads
    /// and scans copy blocks from it instead of `pread`ing them (measured
    /// faster; docs/format.md, "Reading runs through a map"). Merges and
    /// verify read with `pread`, so that a failing disk is an error they report.
    map: Option<wal::mapped::Mapped>,
}

/// Where each partition's filter lies, and the filters read so far.
#[derive(Debug)]
struct Filters {
    /// Per partition: offset in the file, length, crc32.
    dir: Vec<(u64, u32, u32)>,
    /// `None` once read: the filter failed its checksum and is not used.
    loaded: Vec<std::sync::OnceLock<Option<Box<[u8]>>>>,
}

impl Drop for Run {
    fn drop(&mut self) {
        self.forget_blocks();
    }
}

/// Checked blocks of every open run in the process, least recently used dropped
/// first: memory for reads stays within [`BLOCK_CACHE_BYTES`] however many runs
/// and however large the store.
pub(super) struct BlockCache {
    /// (run uid, block number) → (block, its cost in bytes).
    lru: lru::LruCache<(u64, usize), (Arc<Block>, usize)>,
    bytes: usize,
}

pub(super) static BLOCK_CACHE: std::sync::LazyLock<Mutex<BlockCache>> =
    std::sync::LazyLock::new(|| {
        Mutex::new(BlockCache {
            lru: lru::LruCache::unbounded(),
            bytes: 0,
        })
    });

pub(super) static NEXT_RUN_UID: AtomicU64 = AtomicU64::new(1);

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
        let h32 = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().unwrap()) as u64;
        let (dir_len, filters_len) = if version >= 4 {
            (h32(52), h32(56))
        } else {
            (0, 0)
        };
        if index_off
            .checked_add(index_len)
            .and_then(|x| x.checked_add(part_len))
            .and_then(|x| x.checked_add(dir_len))
            .and_then(|x| x.checked_add(filters_len))
            != Some(len - FOOTER_BYTES)
        {
            return Err(corrupt(
                "index position disagrees with the file length".into(),
            ));
        }
        let mut filters = None;
        let mut filters_damaged = false;
        let index = if version >= 2 {
            // The partitions and the filter directory after them, in one read.
            let mut pb = vec![0u8; (part_len + dir_len) as usize];
            file.read_exact_at(&mut pb, index_off + index_len)
                .map_err(io_at(&path))?;
            let dir = pb.split_off(part_len as usize);
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
            if version >= 4 {
                let filters_off = index_off + index_len + part_len + dir_len;
                filters = parse_filter_dir(&dir, parts.len(), filters_off, filters_len);
                filters_damaged = filters.is_none();
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
        let map = file.map(&path).filter(|m| m.len() as u64 == len);
        Ok(Run {
            derived_version: u32::from_le_bytes(h[12..16].try_into().unwrap()),
            meta: meta.clone(),
            file,
            index,
            derived_from: u32::from_le_bytes(h[48..52].try_into().unwrap()),
            derived_damaged: AtomicBool::new(false),
            uid: NEXT_RUN_UID.fetch_add(1, Ordering::Relaxed),
            blocks_end: index_off,
            format: version,
            filters,
            filters_damaged,
            map,
            path,
        })
    }

    /// Whether partition `p`'s filter says the run certainly does not hold
    /// `key` (false for keys the filters do not cover, runs without them, and
    /// damaged ones). `hash`: the key's filter hash, computed here on first
    /// need and kept for the next run a read asks (one hash per point read,
    /// not one per run).
    fn partition_rules_out(&self, p: usize, key: &[u8], hash: &mut Option<u64>) -> Result<bool> {
        let Some(f) = &self.filters else {
            return Ok(false);
        };
        if !filter::filtered(key) {
            return Ok(false);
        }
        Ok(match self.filter(f, p)? {
            Some(bits) => {
                !filter::may_contain(bits, *hash.get_or_insert_with(|| filter::key_hash(key)))
            }
            None => false,
        })
    }

    /// The block that would hold `key`, or `None` when none does: past the
    /// last key, or ruled out by the partition's filter. One search of the
    /// partitions serves both.
    fn locate(&self, key: &[u8], hash: &mut Option<u64>) -> Result<Option<usize>> {
        if self.shunned(key) {
            return Ok(None);
        }
        let i = match &self.index {
            Index::Whole(ix) => ix.first_block_for(key),
            Index::Parted { parts, .. } => {
                let p = parts.partition_point(|part| part.last_key.as_slice() < key);
                if p == parts.len() || self.partition_rules_out(p, key, hash)? {
                    return Ok(None);
                }
                p * PARTITION_BLOCKS + self.partition(p)?.first_block_for(key)
            }
        };
        Ok((i < self.blocks()).then_some(i))
    }

    /// Partition `p`'s filter, read and checked on first use; `None` if it
    /// failed its checksum.
    fn filter<'a>(&self, f: &'a Filters, p: usize) -> Result<Option<&'a [u8]>> {
        if let Some(got) = f.loaded[p].get() {
            return Ok(got.as_deref());
        }
        let (off, len, crc) = f.dir[p];
        let raw = self.read_bytes(off, len as usize, true)?;
        let checked = (crc32fast::hash(&raw) == crc).then(|| raw.into_boxed_slice());
        // Two threads may both read it; either copy is the same.
        let _ = f.loaded[p].set(checked);
        Ok(f.loaded[p].get().expect("just set").as_deref())
    }

    /// How many blocks the run holds.
    pub(super) fn blocks(&self) -> usize {
        match &self.index {
            Index::Whole(ix) => ix.len(),
            Index::Parted { blocks, .. } => *blocks,
        }
    }

    /// Partition `p` of a format-2 index, read and checked on first use.
    pub(super) fn partition(&self, p: usize) -> Result<&BlockIndex> {
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
        let raw = self.read_bytes(index_off + part.start, part.len as usize, true)?;
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
    pub(super) fn block_pos(&self, i: usize) -> Result<(u64, u32)> {
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
    pub(super) fn first_block_for(&self, key: &[u8]) -> Result<usize> {
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

    pub(super) fn block(&self, i: usize) -> Result<Arc<Block>> {
        if let Some((b, _)) = BLOCK_CACHE.lock().lru.get(&(self.uid, i)) {
            return Ok(b.clone());
        }
        let b = Arc::new(self.read_block(i, true)?);
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
    pub(super) fn forget_blocks(&self) {
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

    /// `len` bytes at `offset`: copied from the map where there is one and
    /// `mapped` asks for it, else (and for a range past the map's end) read
    /// with `pread`.
    fn read_bytes(&self, offset: u64, len: usize, mapped: bool) -> Result<Vec<u8>> {
        if let Some(m) = self.map.as_ref().filter(|_| mapped) {
            let bytes = usize::try_from(offset)
                .ok()
                .and_then(|o| Some(o..o.checked_add(len)?))
                .and_then(|r| m.bytes().get(r));
            if let Some(b) = bytes {
                return Ok(b.to_vec());
            }
        }
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(io_at(&self.path))?;
        Ok(buf)
    }

    /// Reads block `i` from the file and checks it. A derived-only block that
    /// fails marks the run's derived keys damaged (see [`Run::derived_damaged`]).
    /// `mapped`: from the map where there is one (else, and always for
    /// `false`, with `pread`).
    pub(super) fn read_block(&self, i: usize, mapped: bool) -> Result<Block> {
        let r = self.read_block_unmarked(i, mapped);
        if r.is_err() && self.derived_only(i) {
            self.derived_damaged.store(true, Ordering::Release);
        }
        r
    }

    pub(super) fn read_block_unmarked(&self, i: usize, mapped: bool) -> Result<Block> {
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
        let mut buf = self.read_bytes(offset, len as usize, mapped)?;
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
        Block::parse(buf, self.format >= 3).ok_or_else(|| Error::Decode(format!("run block {i}")))
    }

    /// Whether `key` is a derived key this run no longer answers for.
    pub(super) fn shunned(&self, key: &[u8]) -> bool {
        key.first() == Some(&DERIVED_TAG) && self.derived_damaged()
    }

    /// All versions of `key`, oldest first.
    pub fn get(&self, key: &[u8]) -> Result<Option<StoredVersions>> {
        let Some(i) = self.locate(key, &mut None)? else {
            return Ok(None);
        };
        let b = self.block(i)?;
        Ok(b.find(key)
            .ok()
            .map(|j| b.versions(j).map(|(l, v)| (l, v.to_vec())).collect()))
    }

    /// The newest version of `key` at or below `lsn` (without copying the others:
    /// a hot key may have a long history).
    pub fn get_at(&self, key: &[u8], lsn: u64) -> Result<Option<crate::state::Version>> {
        self.get_at_hashed(key, lsn, &mut None)
    }

    /// [`Run::get_at`] with the key's filter hash shared across the runs a
    /// read asks in turn (see [`Run::partition_rules_out`]).
    pub fn get_at_hashed(
        &self,
        key: &[u8],
        lsn: u64,
        hash: &mut Option<u64>,
    ) -> Result<Option<crate::state::Version>> {
        let Some(i) = self.locate(key, hash)? else {
            return Ok(None);
        };
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
            let block: Vec<Result<(Vec<u8>, Versions)>> = match run.read_block(i, false) {
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
        let damaged_filters = |detail: String| Error::CorruptFile {
            file: self.path.clone(),
            detail,
        };
        if self.filters_damaged {
            return Err(damaged_filters(
                "the filter directory fails its checksum".into(),
            ));
        }
        let mut keys = 0u64;
        for i in 0..self.blocks() {
            let b = self.read_block(i, false)?;
            keys += b.len() as u64;
            // Every entity key must pass its partition's filter (else a read
            // would skip a run that holds it).
            if let Some(f) = &self.filters {
                let p = i / PARTITION_BLOCKS;
                let bits = self.filter(f, p)?.ok_or_else(|| {
                    damaged_filters(format!("the filter of partition {p} fails its checksum"))
                })?;
                for j in 0..b.len() {
                    let k = b.key(j);
                    if filter::filtered(k) && !filter::may_contain(bits, filter::key_hash(k)) {
                        return Err(damaged_filters(format!(
                            "the filter of partition {p} lacks a key of block {i}"
                        )));
                    }
                }
            }
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

/// The filter directory of `parts` partitions whose filters begin at
/// `filters_off` and take `filters_len` bytes; `None` if it is damaged.
fn parse_filter_dir(
    dir: &[u8],
    parts: usize,
    filters_off: u64,
    filters_len: u64,
) -> Option<Filters> {
    let (body, crc) = dir.split_at_checked(dir.len().checked_sub(4)?)?;
    if body.len() != parts * 8 || crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().ok()?)
    {
        return None;
    }
    let mut at = filters_off;
    let mut out = Vec::with_capacity(parts);
    for e in body.chunks_exact(8) {
        let len = u32::from_le_bytes(e[0..4].try_into().ok()?);
        let crc = u32::from_le_bytes(e[4..8].try_into().ok()?);
        out.push((at, len, crc));
        at += len as u64;
    }
    (at == filters_off + filters_len).then(|| Filters {
        loaded: (0..parts).map(|_| std::sync::OnceLock::new()).collect(),
        dir: out,
    })
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

    /// Entity reads of keys a run does not hold are answered by the filters
    /// (about one in a hundred reads a block); every key it holds passes them;
    /// a damaged filter is not used (the blocks answer) and `verify` names it.
    #[test]
    fn filters_rule_out_absent_entities_and_a_damaged_one_is_not_trusted() {
        let vfs = SimVfs::new();
        let dir = Path::new("/f/runs");
        vfs.create_dir_all(dir).unwrap();
        let id = [7u8; 16];
        let v =
            |i: usize| -> Versions { vec![(i as u64 + 1, Arc::from(vec![(i % 251) as u8; 300]))] };
        // Even entities, each with an edge key and an index entry (not filtered).
        let mut es: Vec<(Vec<u8>, Versions)> = Vec::new();
        for i in (0..6000).step_by(2) {
            es.push((format!("e{i:06}").into_bytes(), v(i)));
            es.push((format!("o{i:06}").into_bytes(), v(i)));
            es.push((format!("x{i:06}").into_bytes(), v(i)));
        }
        es.sort_by(|a, b| a.0.cmp(&b.0));
        let meta = write_run(vfs.as_ref(), dir, "f.run", id, 0, es.into_iter().map(Ok)).unwrap();
        let run = Run::open(vfs.as_ref(), dir, &meta, id).unwrap();
        assert!(run.filters.as_ref().is_some_and(|f| f.dir.len() >= 2));
        run.verify().unwrap();
        let before = vfs.bytes_read();
        for i in (1..6000).step_by(2) {
            assert!(run
                .get_at(format!("e{i:06}").as_bytes(), u64::MAX)
                .unwrap()
                .is_none());
        }
        let absent_bytes = vfs.bytes_read() - before;
        // Without filters: every block of entity keys, about 1 MB; with them,
        // the filters and the false positives' blocks (1–2% of reads).
        assert!(
            absent_bytes < 300_000,
            "{absent_bytes} bytes read for absent keys"
        );
        for i in (0..6000).step_by(2) {
            let key = format!("e{i:06}");
            assert!(
                run.get_at(key.as_bytes(), u64::MAX).unwrap().is_some(),
                "{key}"
            );
            // Keys the filters do not cover are looked up in the blocks.
            assert!(run
                .get_at(format!("o{i:06}").as_bytes(), u64::MAX)
                .unwrap()
                .is_some());
        }
        // Damage the first filter: it fails its checksum and is not used.
        let (off, len, _) = run.filters.as_ref().unwrap().dir[0];
        assert!(len > 0);
        drop(run);
        vfs.corrupt(&dir.join("f.run"), off + 1, &[0u8; 64]);
        let run = Run::open(vfs.as_ref(), dir, &meta, id).unwrap();
        for i in (0..6000).step_by(2) {
            let key = format!("e{i:06}");
            assert!(
                run.get_at(key.as_bytes(), u64::MAX).unwrap().is_some(),
                "{key}"
            );
        }
        let e = run.verify().unwrap_err().to_string();
        assert!(e.contains("filter of partition 0"), "{e}");
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
