//! The WAL payload: a batch of transaction records.
//!
//! ```text
//! payload := version:u8 (=1) count:u32 LE { len:u32 LE  record:[len] }*count
//! record  := postcard(TxRecord)
//! ```
//!
//! Records are encoded by each committer before it takes the lock; the leader only
//! concatenates them. Transaction `i` of a frame has LSN `first_lsn + i`.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

pub const PAYLOAD_FORMAT_VERSION: u8 = 1;

/// One committed transaction: its actor, wall time and the new versions it wrote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TxRecord {
    pub actor: String,
    pub time_ms: i64,
    /// `(key, value)` pairs; each becomes the key's newest version at this LSN.
    pub writes: Vec<(Vec<u8>, Vec<u8>)>,
}

pub fn encode_batch(records: &[&[u8]]) -> Vec<u8> {
    let total: usize = records.iter().map(|r| r.len() + 4).sum();
    let mut out = Vec::with_capacity(5 + total);
    out.push(PAYLOAD_FORMAT_VERSION);
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for r in records {
        out.extend_from_slice(&(r.len() as u32).to_le_bytes());
        out.extend_from_slice(r);
    }
    out
}

pub fn decode_batch(payload: &[u8], expected: u32) -> Result<Vec<TxRecord>> {
    let bad = |m: &str| Error::Decode(format!("WAL payload: {m}"));
    let (&version, mut rest) = payload.split_first().ok_or_else(|| bad("empty"))?;
    if version > PAYLOAD_FORMAT_VERSION {
        return Err(Error::Invalid(format!(
            "WAL payload format {version} is newer than this binary supports ({PAYLOAD_FORMAT_VERSION}); upgrade got"
        )));
    }
    let take = |rest: &mut &[u8], n: usize| -> Result<Vec<u8>> {
        if rest.len() < n {
            return Err(bad("truncated"));
        }
        let (a, b) = rest.split_at(n);
        *rest = b;
        Ok(a.to_vec())
    };
    let count = u32::from_le_bytes(take(&mut rest, 4)?.try_into().unwrap());
    if count != expected {
        return Err(bad("record count differs from the frame header"));
    }
    // Each record takes at least its 4-byte length: a count the bytes cannot
    // hold is refused before room for it is allocated.
    if count as usize > rest.len() / 4 {
        return Err(bad("more records than the payload holds"));
    }
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = u32::from_le_bytes(take(&mut rest, 4)?.try_into().unwrap()) as usize;
        let r = take(&mut rest, len)?;
        out.push(crate::model::decode(&r, "transaction record")?);
    }
    Ok(out)
}
