//! Bloom filters over a run's entity keys, one per index partition (format 4):
//! a point read of an entity that a run does not hold is answered from a few
//! hundred bytes read once, not from a block read (and parsed) on every read.
//! Without them a read of an entity in the oldest of five runs read a block of
//! each of the four newer ones first.
//!
//! Only entity keys (`e…`) are filtered: edges and index entries are read by
//! prefix, which a filter over whole keys cannot answer. A partition whose
//! filter is empty holds no entity key. A filter that fails its checksum is not
//! used (the read goes to the blocks, which decide) and `verify` reports it.
//!
//! The filter of a partition with n entity keys: `probes:u8`, then
//! `max(64, 10 n)` bits rounded up to bytes; key k sets the bits
//! `(h1 + i h2) mod bits` for i in 0..probes, where h1 and h2 are the low and
//! high halves of [`key_hash`]`(k)` (h2 made odd). Ten bits a key and seven
//! probes: about 1% false positives.

pub(super) const BITS_PER_KEY: usize = 10;
pub(super) const PROBES: u8 = 7;

/// Whether a key is one the filters cover.
pub(super) fn filtered(key: &[u8]) -> bool {
    key.first() == Some(&b'e')
}

/// FNV-1a over the key, then the splitmix64 finalizer (FNV alone mixes the
/// last bytes poorly, and ids differ mostly there). Part of the format: never
/// change it for format 4.
pub(super) fn key_hash(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

fn probes(hash: u64, bits: u64, k: u8) -> impl Iterator<Item = u64> {
    let h1 = hash & 0xffff_ffff;
    let h2 = (hash >> 32) | 1;
    (0..k as u64).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % bits)
}

/// The filter of the keys with these hashes (empty for none).
pub(super) fn build(hashes: &[u64]) -> Vec<u8> {
    if hashes.is_empty() {
        return Vec::new();
    }
    let bytes = (hashes.len() * BITS_PER_KEY).max(64).div_ceil(8);
    let mut out = vec![0u8; 1 + bytes];
    out[0] = PROBES;
    let bits = (bytes * 8) as u64;
    for &h in hashes {
        for b in probes(h, bits, PROBES) {
            out[1 + (b / 8) as usize] |= 1 << (b % 8);
        }
    }
    out
}

/// Whether the keys of `filter` may include one with `hash` (false: certainly
/// not).
pub(super) fn may_contain(filter: &[u8], hash: u64) -> bool {
    let Some((&k, bits)) = filter.split_first() else {
        return false;
    };
    if bits.is_empty() {
        return true;
    }
    let n = (bits.len() * 8) as u64;
    probes(hash, n, k).all(|b| bits[(b / 8) as usize] & (1 << (b % 8)) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_put_in_is_found_and_few_others_are() {
        let keys: Vec<Vec<u8>> = (0..5000)
            .map(|i| format!("eT-{i:06}").into_bytes())
            .collect();
        let f = build(&keys.iter().map(|k| key_hash(k)).collect::<Vec<_>>());
        assert_eq!(f.len(), 1 + 5000 * BITS_PER_KEY / 8);
        assert!(keys.iter().all(|k| may_contain(&f, key_hash(k))));
        let false_positives = (0..10_000)
            .filter(|i| may_contain(&f, key_hash(format!("eU-{i:06}").as_bytes())))
            .count();
        // About 1% expected; 3% would mean the hash or the probes are broken.
        assert!(false_positives < 300, "{false_positives} of 10000");
        assert!(!may_contain(&build(&[]), key_hash(b"eT-000001")));
    }

    /// The hash is part of the format: a run written today is read by later
    /// versions with the same filter bits.
    #[test]
    fn the_key_hash_is_stable() {
        assert_eq!(key_hash(b""), 17665956581633026203);
        assert_eq!(key_hash(b"eT-000001"), 14104588166851566661);
        assert_ne!(key_hash(b"eT-000001"), key_hash(b"eT-000002"));
    }
}
