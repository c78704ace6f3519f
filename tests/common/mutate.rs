//! The mutation engine of the fuzz targets (`tests/fuzz_decoders.rs`): it turns a
//! real, valid input into a damaged one the way a disk, a file or a client can:
//! flipped bits, overwritten bytes, truncation, extension, splices of another
//! valid input, duplicated or deleted ranges, and integers written over what may
//! be a length or count field (fixed-width little-endian or LEB128, as the
//! formats use them). Several mutations are stacked on one input.
//!
//! Deterministic: the same `Rng` state and input give the same output, so a seed
//! and an input index replay a failure.

/// SplitMix64: small, fast, and good enough to pick mutations.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The generator for input `index` of a target: inputs are independent of
    /// each other, so one can be replayed alone.
    pub fn for_input(seed: u64, target: &str, index: u64) -> Rng {
        let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
        for b in target.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        let mut r = Rng(h ^ index.wrapping_mul(0xd1b5_4a32_d192_ed03));
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Small values are likelier: lengths of ranges to copy, cut or repeat.
    pub fn small(&mut self, max: usize) -> usize {
        let cap = match self.below(4) {
            0 => 4,
            1 => 16,
            2 => 256,
            _ => max,
        };
        1 + self.below(cap.min(max).max(1))
    }
}

/// What one mutation may use besides the input itself.
pub struct Donors<'a> {
    /// Other valid inputs of the same kind (pieces are spliced in).
    pub inputs: &'a [Vec<u8>],
    /// Tokens worth inserting whole (for text formats: JSON syntax, big numbers).
    pub tokens: &'a [&'a [u8]],
}

/// The outputs never grow past this many times the input (plus 64 KiB), so a
/// mutation cannot make an input too large to decode quickly.
const GROWTH: usize = 4;

/// Applies 1 to 6 stacked mutations to `input`; the result always differs from it.
pub fn mutate(rng: &mut Rng, input: &[u8], donors: &Donors) -> Vec<u8> {
    let max_len = input.len() * GROWTH + (64 << 10);
    let mut out = input.to_vec();
    let n = 1 + (rng.next_u64().trailing_zeros() as usize).min(5);
    for _ in 0..n {
        if out.len() > 64 && rng.one_in(3) {
            // One region only: the start (headers), the end (footers, indexes,
            // checksums) or anywhere, so that the small structures of a large
            // file are hit as often as its bulk.
            let w = (16 + rng.below(512)).min(out.len());
            let start = match rng.below(3) {
                0 => 0,
                1 => out.len() - w,
                _ => rng.below(out.len() - w + 1),
            };
            let mut window = out[start..start + w].to_vec();
            mutate_once(
                rng,
                &mut window,
                donors,
                max_len.saturating_sub(out.len() - w),
            );
            out.splice(start..start + w, window);
        } else {
            mutate_once(rng, &mut out, donors, max_len);
        }
    }
    while out == input {
        mutate_once(rng, &mut out, donors, max_len);
    }
    out
}

/// An integer worth writing over a field: edges of widths, the input's own
/// length and its neighbours, and random values.
pub fn interesting(rng: &mut Rng, len: usize) -> u64 {
    let l = len as u64;
    match rng.below(16) {
        0 => 0,
        1 => 1,
        2 => l.wrapping_sub(1),
        3 => l,
        4 => l + 1,
        5 => l.wrapping_mul(2),
        6 => u32::MAX as u64,
        7 => u32::MAX as u64 + 1,
        8 => u64::MAX,
        9 => i64::MAX as u64,
        10 => 1 << (7 * (1 + rng.below(9))),
        11 => 0x7f,
        12 => 0x80,
        13 => 1 << rng.below(64),
        14 => rng.below(256) as u64,
        _ => rng.next_u64(),
    }
}

fn leb128(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

fn mutate_once(rng: &mut Rng, b: &mut Vec<u8>, donors: &Donors, max_len: usize) {
    let len = b.len();
    let room = max_len.saturating_sub(len);
    match rng.below(16) {
        // Flip one to eight bits.
        0 | 1 if len > 0 => {
            for _ in 0..1 + rng.below(8) {
                let bit = rng.below(len * 8);
                b[bit / 8] ^= 1 << (bit % 8);
            }
        }
        // Overwrite a byte with a random or an edge value.
        2 if len > 0 => {
            let i = rng.below(len);
            let random = rng.next_u64() as u8;
            b[i] = *rng.pick(&[0, 1, 0x7f, 0x80, 0xff, random]);
        }
        // Truncate.
        3 if len > 0 => {
            let keep = if rng.one_in(2) {
                len - rng.small(len)
            } else {
                rng.below(len)
            };
            b.truncate(keep);
        }
        // Extend with zeros or random bytes.
        4 if room > 0 => {
            let n = rng.small(room.min(4096));
            let zero = rng.one_in(2);
            b.extend((0..n).map(|_| if zero { 0 } else { rng.next_u64() as u8 }));
        }
        // Splice: a range replaced by a piece of another valid input (or this one).
        5 | 6 if !donors.inputs.is_empty() => {
            let d = rng.pick(donors.inputs);
            if d.is_empty() {
                return;
            }
            let dn = rng.small(d.len());
            let ds = rng.below(d.len() - dn + 1);
            let piece = d[ds..ds + dn].to_vec();
            let at = rng.below(len + 1);
            let cut = if rng.one_in(3) {
                0
            } else {
                rng.below(len - at + 1)
            };
            if len - cut + dn <= max_len {
                b.splice(at..at + cut, piece);
            }
        }
        // Overwrite a (possible) length or count field with an interesting value.
        7 | 8 if len > 0 => {
            let v = interesting(rng, len);
            let bytes = match rng.below(5) {
                0 => vec![v as u8],
                1 => (v as u16).to_le_bytes().to_vec(),
                2 => (v as u32).to_le_bytes().to_vec(),
                3 => v.to_le_bytes().to_vec(),
                _ => leb128(v),
            };
            // Fixed-width fields of the binary formats sit at 4-byte offsets.
            let mut at = rng.below(len);
            if rng.one_in(2) {
                at &= !3;
            }
            for (i, x) in bytes.into_iter().enumerate() {
                if at + i < len {
                    b[at + i] = x;
                }
            }
        }
        // Duplicate a range, once or many times (many copies of a short range
        // nest whatever it opens: a nesting bomb for recursive decoders).
        9 if len > 0 && room > 0 => {
            let n = rng.small(len.min(room));
            let s = rng.below(len - n + 1);
            let piece = b[s..s + n].to_vec();
            let copies = if n <= 8 && rng.one_in(4) {
                1 + rng.below(40_000)
            } else {
                1 + rng.below(3)
            };
            let copies = copies.min(room / n).max(1);
            let ins: Vec<u8> = piece.iter().copied().cycle().take(n * copies).collect();
            let at = if rng.one_in(2) { s } else { rng.below(len + 1) };
            b.splice(at..at, ins);
        }
        // Delete a range.
        10 if len > 0 => {
            let n = rng.small(len);
            let s = rng.below(len - n + 1);
            b.drain(s..s + n);
        }
        // Add or subtract a little from a byte or a u32 (off-by-one lengths).
        11 if len >= 4 => {
            let at = rng.below(len - 3);
            let d = (rng.below(33) as i64 - 16) as i32;
            if rng.one_in(2) {
                b[at] = (b[at] as i32).wrapping_add(d) as u8;
            } else {
                let v = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
                b[at..at + 4].copy_from_slice(&v.wrapping_add(d as u32).to_le_bytes());
            }
        }
        // Zero a range (a lost sector).
        12 if len > 0 => {
            let n = rng.small(len);
            let s = rng.below(len - n + 1);
            b[s..s + n].fill(0);
        }
        // Insert or overwrite with a token.
        13 if !donors.tokens.is_empty() => {
            let t = rng.pick(donors.tokens);
            let at = rng.below(len + 1);
            let cut = if rng.one_in(2) {
                0
            } else {
                rng.below((len - at).min(t.len() + 2) + 1)
            };
            if len - cut + t.len() <= max_len {
                b.splice(at..at + cut, t.iter().copied());
            }
        }
        // Overwrite a range with another range of the same input (a field
        // copied over another: an LSN where a count was, a header twice).
        14 if len >= 2 => {
            let n = rng.small(len / 2);
            let (mut from, mut to) = (rng.below(len - n + 1), rng.below(len - n + 1));
            if rng.one_in(2) {
                from &= !7;
                to &= !7;
            }
            let piece = b[from..from + n].to_vec();
            b[to..to + n].copy_from_slice(&piece);
        }
        // In text, a decimal number replaced by another (a version, a count or
        // a time written as text).
        15 if b.iter().any(u8::is_ascii_digit) => {
            // Each number equally likely, however many digits it has.
            let starts: Vec<usize> = (0..len)
                .filter(|&i| b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit()))
                .collect();
            let s = *rng.pick(&starts);
            let mut e = s;
            while e < len && b[e].is_ascii_digit() {
                e += 1;
            }
            let v = interesting(rng, len);
            let text = if rng.one_in(4) {
                format!("-{}", v)
            } else {
                v.to_string()
            };
            if len - (e - s) + text.len() <= max_len {
                b.splice(s..e, text.into_bytes());
            }
        }
        _ => {
            // The chosen mutation does not apply to this input: flip a bit, or
            // add a byte to an empty one.
            if len > 0 {
                let bit = rng.below(len * 8);
                b[bit / 8] ^= 1 << (bit % 8);
            } else {
                b.push(rng.next_u64() as u8);
            }
        }
    }
}
