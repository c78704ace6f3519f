//! A block as read: its payload checked once, its entries' keys and versions
//! read in place.

use super::*;

/// A block as the cache holds it: its payload bytes, checked once when read,
/// and where each entry's key and versions start. Keys and values are read in
/// place, so a block costs three allocations however many entries it holds.
#[derive(Debug)]
pub(super) struct Block {
    buf: Vec<u8>,
    /// Per entry: key start, key end (the versions follow the key).
    keys: Vec<(u32, u32)>,
}

impl Block {
    /// Checks that `buf` is a postcard `Vec<RunEntry>` (nothing left over) and
    /// indexes its entries; `None` when it is not.
    pub(super) fn parse(buf: Vec<u8>) -> Option<Block> {
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

    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(super) fn key(&self, i: usize) -> &[u8] {
        let (a, b) = self.keys[i];
        &self.buf[a as usize..b as usize]
    }

    /// Entry `i`'s versions, oldest first.
    pub(super) fn versions(&self, i: usize) -> BlockVersions<'_> {
        let mut pos = self.keys[i].1 as usize;
        let left = leb128(&self.buf, &mut pos).unwrap_or(0);
        BlockVersions {
            buf: &self.buf,
            pos,
            left,
        }
    }

    /// The newest version of entry `i` at or below `lsn`.
    pub(super) fn version_at(&self, i: usize, lsn: u64) -> Option<(u64, &[u8])> {
        self.versions(i).take_while(|(l, _)| *l <= lsn).last()
    }

    /// Where `key` is (`Ok`) or would be (`Err`).
    pub(super) fn find(&self, key: &[u8]) -> std::result::Result<usize, usize> {
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
    pub(super) fn cost(&self) -> usize {
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
