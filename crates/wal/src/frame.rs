//! Frame encoding: one frame holds one group-committed batch of transactions.
//!
//! ```text
//! offset size field
//!  0      4   crc32 (crc32fast) of bytes [4, 48 + payload_len)
//!  4      4   payload_len (u32 LE)
//!  8      1   kind: 1 = batch, 2 = end of segment
//!  9      1   frame format version (1)
//! 10      2   reserved, zero
//! 12      4   count: transactions in the batch (one LSN each); 0 for end of segment
//! 16      8   first_lsn (u64 LE); for end of segment, the first LSN of the next segment
//! 24     16   store id
//! 40      8   durable_lsn: the LSN up to which the log was durable when written
//! 48      n   payload (opaque to the log; its first byte is the payload's format version)
//!  …          zero padding to a multiple of 8 bytes
//! ```
//!
//! An all-zero header is the end of the written log (segments are preallocated
//! with zeros, and the rest of a segment is zeroed after a torn tail is cut).

pub const FRAME_HEADER_BYTES: usize = 48;
pub const FRAME_ALIGN: usize = 8;
pub const FRAME_FORMAT_VERSION: u8 = 1;
/// Default bound on one frame (header + payload); a batch beyond it is refused.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    Batch = 1,
    EndOfSegment = 2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub kind: FrameKind,
    pub payload_len: u32,
    pub count: u32,
    pub first_lsn: u64,
    pub store_id: [u8; 16],
    pub durable_lsn: u64,
    /// The frame format version. The header layout and checksum rule above are the
    /// same in every version, so a checksummed frame of a newer version is
    /// recognised and refused (`TooNew`), not mistaken for damage.
    pub version: u8,
}

impl FrameHeader {
    /// The frame's size on disk, padding included.
    pub fn stored_len(&self) -> usize {
        stored_len(self.payload_len as usize)
    }
    /// The last LSN inside the frame (`first_lsn - 1` for an empty frame).
    /// Wrapping: a header whose checksum is not checked yet may hold any values
    /// (and then the result means nothing, but it is not a panic).
    pub fn last_lsn(&self) -> u64 {
        self.first_lsn
            .wrapping_add(self.count as u64)
            .wrapping_sub(1)
    }
}

pub fn stored_len(payload_len: usize) -> usize {
    (FRAME_HEADER_BYTES + payload_len).div_ceil(FRAME_ALIGN) * FRAME_ALIGN
}

/// Encodes a frame, padded to [`FRAME_ALIGN`].
pub fn encode(header: &FrameHeader, payload: &[u8]) -> Vec<u8> {
    debug_assert_eq!(header.payload_len as usize, payload.len());
    let mut buf = vec![0u8; stored_len(payload.len())];
    buf[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    buf[8] = header.kind as u8;
    buf[9] = header.version;
    buf[12..16].copy_from_slice(&header.count.to_le_bytes());
    buf[16..24].copy_from_slice(&header.first_lsn.to_le_bytes());
    buf[24..40].copy_from_slice(&header.store_id);
    buf[40..48].copy_from_slice(&header.durable_lsn.to_le_bytes());
    buf[48..48 + payload.len()].copy_from_slice(payload);
    let crc = crc32fast::hash(&buf[4..48 + payload.len()]);
    buf[0..4].copy_from_slice(&crc.to_le_bytes());
    buf
}

/// What the bytes at a frame position hold.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderCheck {
    /// All zero: nothing written here.
    Zero,
    /// A plausible header; the payload still needs [`check_crc`].
    Plausible(FrameHeader),
    /// Not a frame of this store.
    Invalid(&'static str),
}

/// Checks a header's fields (not yet the checksum, which covers the payload).
/// Fewer than [`FRAME_HEADER_BYTES`] bytes are no header.
pub fn parse_header(h: &[u8], store_id: &[u8; 16], max_frame_bytes: usize) -> HeaderCheck {
    let Some(h) = h.get(..FRAME_HEADER_BYTES) else {
        return HeaderCheck::Invalid("shorter than a frame header");
    };
    if h.iter().all(|&b| b == 0) {
        return HeaderCheck::Zero;
    }
    let u32at = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().unwrap());
    let u64at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().unwrap());
    let kind = match h[8] {
        1 => FrameKind::Batch,
        2 => FrameKind::EndOfSegment,
        _ => return HeaderCheck::Invalid("unknown frame kind"),
    };
    if h[9] == 0 {
        return HeaderCheck::Invalid("frame format version 0");
    }
    if &h[24..40] != store_id {
        return HeaderCheck::Invalid("frame belongs to another store");
    }
    let payload_len = u32at(4);
    if FRAME_HEADER_BYTES + payload_len as usize > max_frame_bytes {
        return HeaderCheck::Invalid("frame length beyond the maximum");
    }
    let mut store = [0u8; 16];
    store.copy_from_slice(&h[24..40]);
    HeaderCheck::Plausible(FrameHeader {
        kind,
        payload_len,
        count: u32at(12),
        first_lsn: u64at(16),
        store_id: store,
        durable_lsn: u64at(40),
        version: h[9],
    })
}

/// Verifies the checksum of a whole frame (header + payload, unpadded).
pub fn check_crc(frame: &[u8]) -> bool {
    if frame.len() < FRAME_HEADER_BYTES {
        return false;
    }
    let stored = u32::from_le_bytes(frame[0..4].try_into().unwrap());
    crc32fast::hash(&frame[4..]) == stored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(payload: &[u8]) -> FrameHeader {
        FrameHeader {
            kind: FrameKind::Batch,
            payload_len: payload.len() as u32,
            count: 3,
            first_lsn: 17,
            store_id: [7; 16],
            durable_lsn: 16,
            version: FRAME_FORMAT_VERSION,
        }
    }

    #[test]
    fn roundtrip_and_every_bit_flip_is_caught() {
        let payload = b"\x01hello frames";
        let f = encode(&hdr(payload), payload);
        assert_eq!(f.len() % FRAME_ALIGN, 0);
        let HeaderCheck::Plausible(h) = parse_header(&f, &[7; 16], 1 << 20) else {
            panic!("not plausible")
        };
        assert_eq!(h, hdr(payload));
        let body = &f[..FRAME_HEADER_BYTES + payload.len()];
        assert!(check_crc(body));
        for bit in 0..body.len() * 8 {
            let mut g = body.to_vec();
            g[bit / 8] ^= 1 << (bit % 8);
            let ok = matches!(
                parse_header(&g, &[7; 16], 1 << 20),
                HeaderCheck::Plausible(_)
            ) && check_crc(&g);
            assert!(!ok, "flip of bit {bit} went unnoticed");
        }
    }

    #[test]
    fn zero_header_is_end_and_foreign_store_is_invalid() {
        assert_eq!(
            parse_header(&[0u8; 48], &[7; 16], 1 << 20),
            HeaderCheck::Zero
        );
        let f = encode(&hdr(b"x"), b"x");
        assert!(matches!(
            parse_header(&f, &[8; 16], 1 << 20),
            HeaderCheck::Invalid(_)
        ));
    }
}
