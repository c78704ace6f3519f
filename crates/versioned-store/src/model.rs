//! Entities, edges, their stored records, and the keys they live under.
//!
//! Keys (bytes; ids and kinds never contain 0x00):
//! - `e` id                       → [`EntityRecord`]
//! - `o` from 0x00 kind 0x00 to   → [`EdgeRecord`] (out-edge, carries the props)
//! - `i` to 0x00 kind 0x00 from   → [`EdgeRecord`] (in-edge mirror)
//! - `m` name                     → bytes a layer above encodes (meta records)
//!
//! Every committed change appends a new version of the key (keyed by LSN); deletion
//! is a record with `deleted`/`present` set accordingly, so history keeps it.

use crate::error::{Error, Result};
use crate::value::Props;
use serde::{Deserialize, Serialize};

pub const MAX_ID_BYTES: usize = 128;
pub const MAX_KIND_BYTES: usize = 64;
/// The highest version an import may carry: the largest signed 64-bit integer
/// (what JSON readers take a version for), leaving room to count on from it.
pub const MAX_IMPORT_VERSION: u64 = i64::MAX as u64;

/// A committed (or, inside a transaction, pending) entity.
#[derive(Clone, Debug, PartialEq)]
pub struct Entity {
    pub id: String,
    pub kind: String,
    /// Rises by exactly one per committed change of this entity (deletion included).
    pub version: u64,
    pub props: Props,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
}

/// An edge `(from, kind, to)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    pub from: String,
    pub kind: String,
    pub to: String,
    pub props: Props,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntityRecord {
    pub deleted: bool,
    pub kind: String,
    pub version: u64,
    pub props: Props,
    pub created_at: i64,
    pub updated_at: i64,
    /// Who made this version.
    pub actor: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EdgeRecord {
    pub present: bool,
    pub props: Props,
    pub actor: String,
    pub time_ms: i64,
}

impl EntityRecord {
    /// The entity this record describes (`None` if deleted).
    pub fn into_entity(self, id: &str) -> Option<Entity> {
        (!self.deleted).then(|| Entity {
            id: id.to_string(),
            kind: self.kind,
            version: self.version,
            props: self.props,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).expect("encoding to memory cannot fail")
}

pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::Decode(format!("{what}: {e}")))
}

fn check_name(what: &str, s: &str, max: usize) -> Result<()> {
    if s.is_empty() || s.len() > max {
        return Err(Error::Invalid(format!(
            "{what} must be 1 to {max} bytes, got {}",
            s.len()
        )));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/')))
    {
        return Err(Error::Invalid(format!(
            "{what} {s:?} contains {c:?}; use letters, digits and - _ . : /"
        )));
    }
    Ok(())
}

pub fn check_id(id: &str) -> Result<()> {
    check_name("id", id, MAX_ID_BYTES)
}

pub fn check_kind(kind: &str) -> Result<()> {
    check_name("kind", kind, MAX_KIND_BYTES)
}

pub fn entity_key(id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len());
    k.push(b'e');
    k.extend_from_slice(id.as_bytes());
    k
}

/// The longest meta record name, in bytes.
pub const MAX_META_NAME_BYTES: usize = 512;
/// The largest meta record value, in bytes.
pub const MAX_META_BYTES: usize = 1 << 20;

/// The key of meta record `name`: `m` name. Names are 1 to 512 bytes of UTF-8
/// without 0x00.
pub fn meta_key(name: &str) -> Result<Vec<u8>> {
    if name.is_empty() || name.len() > MAX_META_NAME_BYTES || name.contains('\0') {
        return Err(Error::Invalid(format!(
            "a meta record name must be 1 to {MAX_META_NAME_BYTES} bytes without NUL, got {name:?}"
        )));
    }
    Ok(meta_key_prefix(name))
}

/// `m` prefix: the keys of every meta record whose name starts with `prefix`.
pub fn meta_key_prefix(prefix: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + prefix.len());
    k.push(b'm');
    k.extend_from_slice(prefix.as_bytes());
    k
}

pub fn out_key(from: &str, kind: &str, to: &str) -> Vec<u8> {
    let mut k = vec![b'o'];
    for (i, part) in [from, kind, to].iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(part.as_bytes());
    }
    k
}

pub fn in_key(from: &str, kind: &str, to: &str) -> Vec<u8> {
    let mut k = vec![b'i'];
    for (i, part) in [to, kind, from].iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(part.as_bytes());
    }
    k
}

/// Prefix of all out-edges (`b'o'`) or in-edges (`b'i'`) of `id`.
pub fn edge_prefix(tag: u8, id: &str) -> Vec<u8> {
    let mut k = vec![tag];
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k
}

/// Splits an edge key into (tag, first, kind, second).
pub fn split_edge_key(key: &[u8]) -> Option<(u8, String, String, String)> {
    let tag = *key.first()?;
    let mut parts = key[1..].split(|&b| b == 0);
    let a = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let k = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let b = String::from_utf8(parts.next()?.to_vec()).ok()?;
    Some((tag, a, k, b))
}

/// `(from, kind, to)` of an out- or in-edge key.
pub fn edge_of_key(key: &[u8]) -> Option<(String, String, String)> {
    let (tag, a, k, b) = split_edge_key(key)?;
    match tag {
        b'o' => Some((a, k, b)),
        b'i' => Some((b, k, a)),
        _ => None,
    }
}

/// Crockford base32 alphabet, lowercase (no i, l, o, u).
const B32: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A new random id: `prefix` then 10 base32 characters (50 random bits).
pub fn new_id(prefix: &str) -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the OS random source failed");
    let mut n = u64::from_le_bytes(b);
    let mut s = String::with_capacity(prefix.len() + 10);
    s.push_str(prefix);
    for _ in 0..10 {
        s.push(B32[(n & 31) as usize] as char);
        n >>= 5;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn edge_keys_roundtrip_both_directions() {
        assert_eq!(
            edge_of_key(&out_key("a", "dep", "b")),
            Some(("a".into(), "dep".into(), "b".into()))
        );
        assert_eq!(
            edge_of_key(&in_key("a", "dep", "b")),
            Some(("a".into(), "dep".into(), "b".into()))
        );
        assert!(out_key("a", "dep", "b").starts_with(&edge_prefix(b'o', "a")));
        assert!(!out_key("ab", "dep", "b").starts_with(&edge_prefix(b'o', "a")));
    }
    #[test]
    fn ids_are_checked_and_generated_ids_are_valid() {
        assert!(check_id("T-abc").is_ok());
        assert!(check_id("").is_err());
        assert!(check_id("a b").is_err());
        assert!(check_id("a\0b").is_err());
        let id = new_id("T-");
        assert_eq!(id.len(), 12);
        check_id(&id).unwrap();
        assert_ne!(new_id(""), new_id(""));
    }
}
