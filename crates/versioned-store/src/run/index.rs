//! The block index as read at open: every block's last key and position, parsed
//! from the index's postcard bytes without an allocation per block.

use super::*;

/// A run's block index as read at open: every block's last key in one buffer and
/// its position, parsed straight from the index's postcard bytes (a length, then
/// per block: key length, key, offset, length, all LEB128) without an allocation
/// per block, so opening a large run costs one pass over its index.
#[derive(Debug, Default)]
pub(super) struct BlockIndex {
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
pub(super) enum Index {
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

pub(super) fn leb128(b: &[u8], pos: &mut usize) -> Option<u64> {
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
    pub(super) fn parse(raw: Vec<u8>) -> Option<BlockIndex> {
        Self::parse_entries(raw, None)
    }

    /// Entries from `raw`: `count` of them, or as many as its leading count says.
    pub(super) fn parse_entries(raw: Vec<u8>, count: Option<usize>) -> Option<BlockIndex> {
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

    pub(super) fn len(&self) -> usize {
        self.offsets.len()
    }

    pub(super) fn last_key(&self, i: usize) -> &[u8] {
        let (start, len) = self.keys[i];
        &self.raw[start as usize..(start + len) as usize]
    }

    pub(super) fn offset(&self, i: usize) -> u64 {
        self.offsets[i]
    }

    pub(super) fn block_len(&self, i: usize) -> u32 {
        self.lens[i]
    }

    /// The first block whose last key is at or after `key`: where `key` (or the
    /// first key under it as a prefix) would be.
    pub(super) fn first_block_for(&self, key: &[u8]) -> usize {
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
