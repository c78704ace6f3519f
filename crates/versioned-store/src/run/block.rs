//! A block as read: its payload checked once, its entries' keys and versions
//! read in place.

use super::*;

/// A block as the cache holds it: its payload bytes, checked once when read,
/// and where each entry's key and versions start. Versions are read in place;
/// keys too in formats 1 and 2, while format 3 (keys stored as the length they
/// share with the key before and the rest) has them rebuilt, whole, into one
/// buffer. So a block costs four allocations however many entries it holds.
#[derive(Debug)]
pub(super) struct Block {
    buf: Vec<u8>,
    /// Format 3: every key of the block, whole, one after the other.
    whole_keys: Vec<u8>,
    /// Per entry: key start and end (in `whole_keys` for format 3, else in
    /// `buf`), and where its versions start in `buf`.
    keys: Vec<(u32, u32, u32)>,
    prefixed: bool,
}

impl Block {
    /// Checks that `buf` is a block payload (nothing left over) and indexes its
    /// entries; `None` when it is not. `prefixed`: format 3, each key as the
    /// length it shares with the previous key and the rest (see `run.rs`);
    /// else a postcard `Vec<RunEntry>`.
    pub(super) fn parse(buf: Vec<u8>, prefixed: bool) -> Option<Block> {
        let mut pos = 0;
        let n = usize::try_from(leb128(&buf, &mut pos)?).ok()?;
        // An entry takes at least 2 bytes (key length, version count).
        if n > buf.len() / 2 {
            return None;
        }
        let mut keys = Vec::with_capacity(n);
        let mut whole_keys = Vec::new();
        let mut prev = (0usize, 0usize);
        for _ in 0..n {
            let shared = if prefixed {
                usize::try_from(leb128(&buf, &mut pos)?).ok()?
            } else {
                0
            };
            let klen = usize::try_from(leb128(&buf, &mut pos)?).ok()?;
            let kend = pos.checked_add(klen).filter(|&e| e <= buf.len())?;
            let (a, b) = if prefixed {
                // The shared part comes from the key before (none for the first).
                if shared > prev.1 - prev.0 {
                    return None;
                }
                let a = whole_keys.len();
                whole_keys.extend_from_within(prev.0..prev.0 + shared);
                whole_keys.extend_from_slice(&buf[pos..kend]);
                (a, whole_keys.len())
            } else {
                (pos, kend)
            };
            prev = (a, b);
            pos = kend;
            keys.push((
                u32::try_from(a).ok()?,
                u32::try_from(b).ok()?,
                u32::try_from(pos).ok()?,
            ));
            let nv = leb128(&buf, &mut pos)?;
            for _ in 0..nv {
                leb128(&buf, &mut pos)?;
                let vlen = usize::try_from(leb128(&buf, &mut pos)?).ok()?;
                pos = pos.checked_add(vlen).filter(|&e| e <= buf.len())?;
            }
        }
        (pos == buf.len()).then_some(Block {
            buf,
            whole_keys,
            keys,
            prefixed,
        })
    }

    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(super) fn key(&self, i: usize) -> &[u8] {
        let (a, b, _) = self.keys[i];
        let from = if self.prefixed {
            &self.whole_keys
        } else {
            &self.buf
        };
        &from[a as usize..b as usize]
    }

    /// Entry `i`'s versions, oldest first.
    pub(super) fn versions(&self, i: usize) -> BlockVersions<'_> {
        let mut pos = self.keys[i].2 as usize;
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
        self.buf.len() + self.whole_keys.len() + self.keys.len() * 12 + 64
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
        let b = Block::parse(bytes.clone(), false).expect("parses");
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
        assert!(Block::parse(bytes[..bytes.len() - 1].to_vec(), false).is_none());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Block::parse(longer, false).is_none());
        assert!(Block::parse(vec![0xff; 16], false).is_none());
        assert_eq!(
            Block::parse(crate::model::encode(&Vec::<RunEntry>::new()), false)
                .unwrap()
                .len(),
            0
        );
    }

    /// Format 3: keys that share their beginnings are stored once and rebuilt
    /// whole; a block reads on its own, and a shared length the key before
    /// cannot supply is refused.
    #[test]
    fn a_format_3_block_rebuilds_every_key_from_the_part_it_shares() {
        use crate::run::write::{encode_block, put_leb128};
        let entries: Vec<(Vec<u8>, Versions)> = (0..300u64)
            .map(|i| {
                let key = match i % 3 {
                    0 => format!("oT-{:06}\0depends_on\0T-{:06}", i / 3, i),
                    1 => format!("oT-{:06}\0depends_on\0T-{:06}x", i / 3, i),
                    _ => format!("oT-{:06}\0parent\0E-{i}", i / 3),
                }
                .into_bytes();
                let versions = (0..(i % 3))
                    .map(|v| (i * 7 + v, Arc::from(vec![v as u8; (i % 5) as usize * 9])))
                    .collect();
                (key, versions)
            })
            .collect();
        let mut sorted = entries.clone();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let bytes = encode_block(&sorted);
        let as_format_2 = crate::model::encode(
            &sorted
                .iter()
                .map(|(k, vs)| RunEntry {
                    key: k.clone(),
                    versions: vs.iter().map(|(l, v)| (*l, v.to_vec())).collect(),
                })
                .collect::<Vec<_>>(),
        );
        // Each key stores its shared bytes once as a one-byte length (all
        // lengths here are below 128).
        let shared: usize = sorted
            .windows(2)
            .map(|w| {
                w[0].0
                    .iter()
                    .zip(&w[1].0)
                    .take_while(|(a, b)| a == b)
                    .count()
            })
            .sum();
        assert!(shared > 10 * sorted.len(), "test construction: {shared}");
        assert_eq!(as_format_2.len() - bytes.len(), shared - sorted.len());
        let b = Block::parse(bytes.clone(), true).expect("parses");
        assert_eq!(b.len(), sorted.len());
        for (i, (k, vs)) in sorted.iter().enumerate() {
            assert_eq!(b.key(i), k.as_slice());
            let got: Vec<(u64, Vec<u8>)> = b.versions(i).map(|(l, v)| (l, v.to_vec())).collect();
            let want: Vec<(u64, Vec<u8>)> = vs.iter().map(|(l, v)| (*l, v.to_vec())).collect();
            assert_eq!(got, want);
            assert_eq!(b.find(k), Ok(i));
        }
        // A first key that claims to share bytes with a key before it.
        let mut bad = Vec::new();
        put_leb128(&mut bad, 1);
        put_leb128(&mut bad, 2);
        put_leb128(&mut bad, 1);
        bad.push(b'k');
        put_leb128(&mut bad, 0);
        assert!(Block::parse(bad, true).is_none());
        // Truncated or padded.
        assert!(Block::parse(bytes[..bytes.len() - 1].to_vec(), true).is_none());
        let mut longer = bytes;
        longer.push(0);
        assert!(Block::parse(longer, true).is_none());
    }
}
