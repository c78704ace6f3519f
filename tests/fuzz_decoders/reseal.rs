//! Recomputes the checksums of a mutated input the way its writer would, from
//! what the (mutated) bytes themselves say: without this, almost every mutation
//! would stop at the first checksum and the parsing behind it (lengths, counts,
//! offsets, postcard bodies) would only ever see valid bytes. Written from
//! docs/format.md, independently of the decoders under test. Each function
//! leaves alone what it cannot make sense of.

use crate::common::mutate::{interesting, Rng};

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}
fn put_u32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
fn crc(b: &[u8]) -> u32 {
    crc32fast::hash(b)
}

/// One frame (header and payload, padding optional): the crc of bytes
/// `[4, 48 + payload_len)`, or of as many as there are.
pub fn frame(b: &mut [u8]) {
    if b.len() < 48 {
        return;
    }
    let end = (48 + u32_at(b, 4) as usize).min(b.len());
    let c = crc(&b[4..end]);
    put_u32(b, 0, c);
}

/// A WAL segment: the header's crc, then every frame from offset 64 walked as a
/// reader walks them, up to the first zero header or a length past the end.
pub fn segment(b: &mut [u8]) {
    if b.len() < 64 {
        return;
    }
    let c = crc(&b[0..60]);
    put_u32(b, 60, c);
    let mut off = 64;
    while off + 48 <= b.len() && b[off..off + 48].iter().any(|&x| x != 0) {
        let len = u32_at(b, off + 4) as usize;
        let end = off + 48 + len;
        if end > b.len() {
            return;
        }
        let c = crc(&b[off + 4..end]);
        put_u32(b, off, c);
        off += (48 + len).div_ceil(8) * 8;
    }
}

/// `DURABLE`: the crc of bytes `[0, 48)` at 48.
pub fn durable(b: &mut [u8]) {
    if b.len() >= 52 {
        let c = crc(&b[0..48]);
        put_u32(b, 48, c);
    }
}

/// `CURRENT`: the body length and the body's crc.
pub fn current(b: &mut [u8]) {
    if b.len() >= 24 {
        let len = (b.len() - 24) as u32;
        put_u32(b, 12, len);
        let c = crc(&b[24..]);
        put_u32(b, 16, c);
    }
}

/// `REPAIRING`: the crc of everything before its last four bytes.
pub fn repairing(b: &mut [u8]) {
    if b.len() >= 4 {
        let n = b.len() - 4;
        let c = crc(&b[..n]);
        put_u32(b, n, c);
    }
}

fn leb(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let x = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(x & 0x7f) << shift;
        if x & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn put_leb(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A run: the header's crc; each block the index names (its length field and
/// crc); each partition's crc of its slice of the index; the crcs of the index
/// and of the partitions; the footer's crc.
pub fn run(b: &mut Vec<u8>) {
    if b.len() < 64 + 48 {
        return;
    }
    let c = crc(&b[0..60]);
    put_u32(b, 60, c);
    let mut ft = b.len() - 48;
    let index_off = u64_at(b, ft) as usize;
    let index_len = u64_at(b, ft + 8) as usize;
    let index_end = index_off.checked_add(index_len).filter(|&e| e <= ft);
    if let Some(index_end) = index_end {
        // Blocks, as far as the index parses.
        let index = b[index_off..index_end].to_vec();
        let mut pos = 0;
        let count = leb(&index, &mut pos).unwrap_or(0);
        for _ in 0..count {
            let Some(klen) = leb(&index, &mut pos) else {
                break;
            };
            pos = pos.saturating_add(klen as usize);
            let (Some(off), Some(len)) = (leb(&index, &mut pos), leb(&index, &mut pos)) else {
                break;
            };
            let (off, len) = (off as usize, len as usize);
            if len >= 8 && off.checked_add(len).is_some_and(|e| e <= ft) {
                put_u32(b, off, (len - 8) as u32);
                let c = crc(&b[off + 8..off + len]);
                put_u32(b, off + 4, c);
            }
        }
        // Partitions (format 2): re-encoded with the crcs of their slices;
        // format 4's filter directory and filters follow them.
        let part_len = u32_at(b, ft + 32) as usize;
        let (dir_len, filters_len) = filter_lens(b);
        let pe = index_end + part_len;
        if pe + dir_len + filters_len == ft && part_len > 0 {
            let pb = b[index_end..pe].to_vec();
            let mut pos = 0;
            let mut out = Vec::new();
            let ok = (|| {
                let n = leb(&pb, &mut pos)?;
                put_leb(&mut out, n);
                for _ in 0..n {
                    let klen = leb(&pb, &mut pos)? as usize;
                    let key = pb.get(pos..pos.checked_add(klen)?)?;
                    pos += klen;
                    let start = leb(&pb, &mut pos)?;
                    let len = leb(&pb, &mut pos)?;
                    let old = leb(&pb, &mut pos)?;
                    let slice = (start as usize)
                        .checked_add(len as usize)
                        .filter(|&e| e <= index_len)
                        .map(|e| &b[index_off + start as usize..index_off + e]);
                    put_leb(&mut out, klen as u64);
                    out.extend_from_slice(key);
                    put_leb(&mut out, start);
                    put_leb(&mut out, len);
                    put_leb(&mut out, slice.map_or(old, |s| crc(s) as u64));
                }
                out.extend_from_slice(&pb[pos..]);
                Some(())
            })();
            let mut pe = pe;
            if ok.is_some() && out != pb {
                b.splice(index_end..pe, out.iter().copied());
                ft = b.len() - 48;
                pe = index_end + out.len();
                put_u32(b, ft + 32, out.len() as u32);
            }
            filters(b, pe, dir_len, filters_len);
            let c = crc(&b[index_end..pe]);
            put_u32(b, ft + 36, c);
        }
        let c = crc(&b[index_off..index_end]);
        put_u32(b, ft + 24, c);
    }
    let c = crc(&b[ft..ft + 40]);
    put_u32(b, ft + 40, c);
}

/// The lengths of a run's filter directory and filters (format 4, in its
/// header; 0 before).
fn filter_lens(b: &[u8]) -> (usize, usize) {
    if u32_at(b, 8) >= 4 {
        (u32_at(b, 52) as usize, u32_at(b, 56) as usize)
    } else {
        (0, 0)
    }
}

/// Format 4: each filter's crc in the directory at `dir` and the directory's
/// own, as the writer computes them (the filters follow the directory).
fn filters(b: &mut [u8], dir: usize, dir_len: usize, filters_len: usize) {
    if dir_len < 4 || !(dir_len - 4).is_multiple_of(8) || dir + dir_len + filters_len > b.len() {
        return;
    }
    let mut at = dir + dir_len;
    for e in (dir..dir + dir_len - 4).step_by(8) {
        let len = u32_at(b, e) as usize;
        if at + len > dir + dir_len + filters_len {
            break;
        }
        let c = crc(&b[at..at + len]);
        put_u32(b, e + 4, c);
        at += len;
    }
    let c = crc(&b[dir..dir + dir_len - 4]);
    put_u32(b, dir + dir_len - 4, c);
}

type IndexEntries = Vec<(Vec<u8>, u64, u64)>;

/// A run's block index parsed: `(last key, offset, length)` per block, and
/// where the index starts in the file.
fn run_index(b: &[u8]) -> Option<(usize, IndexEntries)> {
    let ft = b.len().checked_sub(48)?;
    let index_off = u64_at(b, ft) as usize;
    let index_len = u64_at(b, ft + 8) as usize;
    let index = b.get(index_off..index_off.checked_add(index_len)?)?;
    let mut pos = 0;
    let n = leb(index, &mut pos)?;
    let mut out = Vec::new();
    for _ in 0..n.min(1 << 20) {
        let klen = leb(index, &mut pos)? as usize;
        let key = index.get(pos..pos.checked_add(klen)?)?.to_vec();
        pos += klen;
        out.push((key, leb(index, &mut pos)?, leb(index, &mut pos)?));
    }
    Some((index_off, out))
}

/// A structural mutation of a run: one field of its block index (a block's
/// offset, length or last key) set to another value, and the index, its
/// partitions and the footer written again around it as the writer would (so
/// lengths and checksums agree), then [`run`]. Byte mutations of the index
/// rarely survive as a parseable index; this makes every read of a block
/// trust an offset or a length that is wrong.
pub fn run_index_field(rng: &mut Rng, b: &mut Vec<u8>) {
    let Some((index_off, mut entries)) = run_index(b) else {
        return run(b);
    };
    if entries.is_empty() || b.len() < 64 + 48 {
        return run(b);
    }
    let ft = b.len() - 48;
    let i = rng.below(entries.len());
    match rng.below(4) {
        0 => entries[i].1 = interesting(rng, b.len()),
        1 => entries[i].2 = interesting(rng, b.len()) & u32::MAX as u64,
        2 => {
            let d = rng.below(33) as u64;
            entries[i].2 = entries[i].2.wrapping_add(d).wrapping_sub(16) & u32::MAX as u64;
        }
        _ => {
            let other = rng.below(entries.len());
            entries[i].0 = entries[other].0.clone();
            if rng.one_in(2) {
                entries[i].0.push(0xff);
            }
        }
    }
    let mut index = Vec::new();
    put_leb(&mut index, entries.len() as u64);
    let mut parts = Vec::new();
    for chunk in entries.chunks(128) {
        let start = index.len();
        for (k, off, len) in chunk {
            put_leb(&mut index, k.len() as u64);
            index.extend_from_slice(k);
            put_leb(&mut index, *off);
            put_leb(&mut index, *len);
        }
        parts.push((chunk.last().unwrap().0.clone(), start, index.len() - start));
    }
    let mut pb = Vec::new();
    put_leb(&mut pb, parts.len() as u64);
    for (k, start, len) in &parts {
        put_leb(&mut pb, k.len() as u64);
        pb.extend_from_slice(k);
        put_leb(&mut pb, *start as u64);
        put_leb(&mut pb, *len as u64);
        put_leb(&mut pb, crc(&index[*start..*start + *len]) as u64);
    }
    // Format 4's filter directory and filters, kept after the partitions.
    let old_end = (index_off as u64)
        .saturating_add(u64_at(b, ft + 8))
        .saturating_add(u32_at(b, ft + 32) as u64) as usize;
    let (dir_len, filters_len) = filter_lens(b);
    let filters = b
        .get(old_end..old_end.saturating_add(dir_len + filters_len))
        .filter(|_| old_end + dir_len + filters_len == ft)
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    let mut footer = b[ft..].to_vec();
    footer[8..16].copy_from_slice(&(index.len() as u64).to_le_bytes());
    footer[32..36].copy_from_slice(&(pb.len() as u32).to_le_bytes());
    b.truncate(index_off.min(ft));
    b.extend_from_slice(&index);
    b.extend_from_slice(&pb);
    b.extend_from_slice(&filters);
    b.extend_from_slice(&footer);
    run(b);
}
