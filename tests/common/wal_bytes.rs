//! The WAL's on-disk format, read independently of the library (docs/format.md), for
//! the tests that cut, flip and rewrite its bytes (`corruption`, `torn_tail`,
//! `format_compat`).

pub const SEGMENT_HEADER: usize = 64;
pub const FRAME_HEADER: usize = 48;
pub const FIRST_SEGMENT: &str = "00000000000000000001.wal";

/// One frame found by walking a segment from offset 64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLoc {
    pub off: usize,
    pub payload_len: usize,
    /// Bytes on disk, padding to 8 included.
    pub stored_len: usize,
    pub kind: u8,
    pub count: u32,
    pub first_lsn: u64,
    pub durable_lsn: u64,
}

impl FrameLoc {
    /// Header + payload: the bytes the checksum covers.
    pub fn checked_len(&self) -> usize {
        FRAME_HEADER + self.payload_len
    }
    pub fn end(&self) -> usize {
        self.off + self.stored_len
    }
}

pub fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
pub fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// Frames of a segment from offset 64, up to the first all-zero header (or an
/// end-of-segment frame, which is included).
pub fn frames(seg: &[u8]) -> Vec<FrameLoc> {
    let mut out = Vec::new();
    let mut off = SEGMENT_HEADER;
    while off + FRAME_HEADER <= seg.len() && seg[off..off + FRAME_HEADER].iter().any(|&b| b != 0) {
        let payload_len = u32_at(seg, off + 4) as usize;
        let f = FrameLoc {
            off,
            payload_len,
            stored_len: (FRAME_HEADER + payload_len).div_ceil(8) * 8,
            kind: seg[off + 8],
            count: u32_at(seg, off + 12),
            first_lsn: u64_at(seg, off + 16),
            durable_lsn: u64_at(seg, off + 40),
        };
        out.push(f);
        if f.kind != 1 {
            break;
        }
        off += f.stored_len;
    }
    out
}

/// `DURABLE`'s record (56 bytes) and the boot token after it (40 bytes:
/// boot id, device, inode, crc32 of bytes 0..48 and 56..88, reserved).
pub const DURABLE_RECORD: usize = 56;
pub const DURABLE_WITH_TOKEN: usize = 96;

/// What a power loss does besides losing writes: the machine boots anew, so
/// the boot token in `DURABLE` names a boot that is over. A test cannot restart
/// the machine; it gives the token another boot id (resealed, so that only the
/// boot differs), which recovery must treat as any earlier boot's. A DURABLE
/// without a token is left as it is.
pub fn boot_anew(store: &std::path::Path) {
    let path = store.join("DURABLE");
    let mut b = std::fs::read(&path).unwrap();
    if b.len() < DURABLE_WITH_TOKEN || b[DURABLE_RECORD..DURABLE_RECORD + 16] == [0; 16] {
        return;
    }
    b[DURABLE_RECORD] ^= 0xff;
    let mut h = crc32fast::Hasher::new();
    h.update(&b[..48]);
    h.update(&b[DURABLE_RECORD..DURABLE_RECORD + 32]);
    let crc = h.finalize();
    b[DURABLE_RECORD + 32..DURABLE_RECORD + 36].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, b).unwrap();
}
