//! Recomputes the checksums of a mutated input the way its writer would, from
//! what the (mutated) bytes themselves say: without this, almost every mutation
//! would stop at the first checksum and the parsing behind it (lengths, counts,
//! offsets, postcard bodies) would only ever see valid bytes. Written from
//! docs/format.md, independently of the decoders under test. Each function
//! leaves alone what it cannot make sense of.

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
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
