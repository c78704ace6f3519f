//! Writing a run: entries into blocks of about 8 KiB, the block index (and its
//! partitions) encoded as postcard writes it, the footer; synced, read back,
//! verified and renamed into place.

use super::*;

pub(super) fn put_leb128(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A block's payload in format 3 (see `run.rs`): the entry count, then each
/// key as the length it shares with the key before it (0 for the first, so
/// that every block reads on its own) and the rest, and its versions as
/// postcard writes them.
pub(super) fn encode_block(entries: &[(Vec<u8>, Versions)]) -> Vec<u8> {
    let bytes: usize = entries
        .iter()
        .map(|(k, vs)| k.len() + vs.iter().map(|(_, v)| v.len() + 6).sum::<usize>() + 6)
        .sum();
    let mut out = Vec::with_capacity(bytes);
    put_leb128(&mut out, entries.len() as u64);
    let mut prev: &[u8] = &[];
    for (key, versions) in entries {
        let shared = prev.iter().zip(key).take_while(|(a, b)| a == b).count();
        put_leb128(&mut out, shared as u64);
        put_leb128(&mut out, (key.len() - shared) as u64);
        out.extend_from_slice(&key[shared..]);
        put_leb128(&mut out, versions.len() as u64);
        for (lsn, v) in versions {
            put_leb128(&mut out, *lsn);
            put_leb128(&mut out, v.len() as u64);
            out.extend_from_slice(v);
        }
        prev = key;
    }
    out
}

/// The index as postcard writes `Vec<IndexEntry>`, and its partitions.
pub(super) fn encode_index(index: &[IndexEntry]) -> (Vec<u8>, Vec<Partition>) {
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

/// The filter directory (per partition: its filter's length and crc32, u32 LE
/// each, then the crc32 of those bytes) and the filters, concatenated.
pub(super) fn encode_filters(partitions: usize, hashes: &[Vec<u64>]) -> (Vec<u8>, Vec<u8>) {
    let mut dir = Vec::with_capacity(partitions * 8 + 4);
    let mut filters = Vec::new();
    for p in 0..partitions {
        let f = filter::build(hashes.get(p).map_or(&[][..], Vec::as_slice));
        dir.extend_from_slice(&(f.len() as u32).to_le_bytes());
        dir.extend_from_slice(&crc32fast::hash(&f).to_le_bytes());
        filters.extend_from_slice(&f);
    }
    let crc = crc32fast::hash(&dir);
    dir.extend_from_slice(&crc.to_le_bytes());
    (dir, filters)
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
            let e = w.block(block)?;
            block.clear();
            Ok(e)
        };
        let mut first_derived_block: Option<usize> = None;
        // Hashes of the entity keys of each index partition, for its filter.
        let mut filter_hashes: Vec<Vec<u64>> = Vec::new();
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
            if filter::filtered(&key) {
                // The key goes into the block that will be number `index.len()`.
                let p = index.len() / PARTITION_BLOCKS;
                if filter_hashes.len() <= p {
                    filter_hashes.resize_with(p + 1, Vec::new);
                }
                filter_hashes[p].push(filter::key_hash(&key));
            }
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
        let (dir_bytes, filter_bytes) = encode_filters(parts.len(), &filter_hashes);
        let index_off = w.off;
        w.write(&index_bytes)?;
        w.write(&part_bytes)?;
        w.write(&dir_bytes)?;
        w.write(&filter_bytes)?;
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
        h[52..56].copy_from_slice(&(dir_bytes.len() as u32).to_le_bytes());
        let filters_len = u32::try_from(filter_bytes.len())
            .map_err(|_| Error::Invalid("a run's filters past 4 GiB".into()))?;
        h[56..60].copy_from_slice(&filters_len.to_le_bytes());
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

pub(super) struct Writer<'a> {
    f: &'a dyn VfsFile,
    path: &'a Path,
    off: u64,
}

impl Writer<'_> {
    pub(super) fn write(&mut self, b: &[u8]) -> Result<()> {
        self.f.write_at(b, self.off).map_err(io_at(self.path))?;
        self.off += b.len() as u64;
        Ok(())
    }
    pub(super) fn block(&mut self, entries: &[(Vec<u8>, Versions)]) -> Result<IndexEntry> {
        let payload = encode_block(entries);
        let mut head = [0u8; 8];
        head[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        head[4..8].copy_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        let offset = self.off;
        self.write(&head)?;
        self.write(&payload)?;
        Ok(IndexEntry {
            last_key: entries.last().expect("non-empty block").0.clone(),
            offset,
            len: payload.len() as u32 + 8,
        })
    }
}
