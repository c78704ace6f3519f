//! got's index entries, as bytes.
//!
//! The indexer turns an entity's state into index keys and reads ids back out of
//! them; it does no I/O. Keys sort so that one prefix scan answers one question:
//!
//! ```text
//! 'x' 'k' str(kind) id                      entities of a kind
//! 'x' 'p' str(kind) str(prop) val(value) id  entities of a kind with prop = value
//!                                            (a list value: one entry per element)
//! 'x' 't' str(kind) str(word) id             entities whose title/description has word
//! 'x' 'r' rank:u8 time:i64 id                the ready queue, in priority order
//! str(s) = s with 0x00 written 0x00 0xFF, then 0x00 0x01 (self-delimiting, order kept)
//! val(v) = type byte (null 1, false 2, true 3, number 4, string 5) then, for numbers,
//!          the f64's bits made order-preserving (8 bytes, big-endian); for strings,
//!          str(s)
//! ```
//!
//! Property values are given as [`IndexValue`]s (the store's own value type lives
//! above this crate).

use std::collections::BTreeSet;

pub const TAG: u8 = b'x';
const KIND: u8 = b'k';
const PROP: u8 = b'p';
const WORD: u8 = b't';
const READY: u8 = b'r';

/// A property value as indexes see it.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexValue {
    Null,
    Bool(bool),
    /// Ints and floats alike (ints beyond 2^53 lose precision in the index only).
    Number(f64),
    Str(String),
    /// Each element is indexed on its own (labels).
    List(Vec<IndexValue>),
    /// Maps are not indexed.
    Other,
}

/// The properties indexed by (kind, property, value), unless a user declares more.
pub const DEFAULT_DECLARED: [&str; 6] = [
    "status", "priority", "assignee", "labels", "sprint", "parent",
];

/// An entity's state as the indexer needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Doc<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub props: Vec<(&'a str, IndexValue)>,
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

fn take_str(b: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == 0 {
            match b.get(i + 1)? {
                0xFF => out.push(0),
                0x01 => return Some((out, &b[i + 2..])),
                _ => return None,
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    None
}

fn number_bits(f: f64) -> [u8; 8] {
    let bits = f.to_bits();
    let ordered = if bits >> 63 == 1 {
        !bits
    } else {
        bits ^ (1 << 63)
    };
    ordered.to_be_bytes()
}

/// Appends `val(v)`; `false` for values that are not indexed (lists, maps).
pub fn put_value(out: &mut Vec<u8>, v: &IndexValue) -> bool {
    match v {
        IndexValue::Null => out.push(1),
        IndexValue::Bool(false) => out.push(2),
        IndexValue::Bool(true) => out.push(3),
        IndexValue::Number(f) => {
            out.push(4);
            out.extend_from_slice(&number_bits(*f));
        }
        IndexValue::Str(s) => {
            out.push(5);
            put_str(out, s.as_bytes());
        }
        IndexValue::List(_) | IndexValue::Other => return false,
    }
    true
}

fn skip_value(b: &[u8]) -> Option<&[u8]> {
    match *b.first()? {
        1..=3 => Some(&b[1..]),
        4 => b.get(9..),
        5 => take_str(&b[1..]).map(|(_, rest)| rest),
        _ => None,
    }
}

/// Prefix of every entity of `kind`.
pub fn kind_prefix(kind: &str) -> Vec<u8> {
    let mut k = vec![TAG, KIND];
    put_str(&mut k, kind.as_bytes());
    k
}

/// Prefix of the entities of `kind` whose `prop` equals (or, for a list, holds) `v`.
pub fn prop_prefix(kind: &str, prop: &str, v: &IndexValue) -> Option<Vec<u8>> {
    let mut k = vec![TAG, PROP];
    put_str(&mut k, kind.as_bytes());
    put_str(&mut k, prop.as_bytes());
    put_value(&mut k, v).then_some(k)
}

/// Prefix of the entities of `kind` whose title or description holds `word`
/// (already case-folded, see [`words`]).
pub fn word_prefix(kind: &str, word: &str) -> Vec<u8> {
    let mut k = vec![TAG, WORD];
    put_str(&mut k, kind.as_bytes());
    put_str(&mut k, word.as_bytes());
    k
}

/// Prefix of the whole ready queue.
pub fn ready_prefix() -> Vec<u8> {
    vec![TAG, READY]
}

/// The ready-queue key: priority rank (0 first), then creation time, then id.
pub fn ready_key(rank: u8, created_at_ms: i64, id: &str) -> Vec<u8> {
    let mut k = vec![TAG, READY, rank];
    k.extend_from_slice(&((created_at_ms as u64) ^ (1 << 63)).to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

/// The id at the end of any index key.
pub fn id_of(key: &[u8]) -> Option<&str> {
    if key.len() < 2 || key[0] != TAG {
        return None;
    }
    let rest = &key[2..];
    let rest = match key[1] {
        KIND => take_str(rest)?.1,
        PROP => skip_value(take_str(take_str(rest)?.1)?.1)?,
        WORD => take_str(take_str(rest)?.1)?.1,
        READY => rest.get(9..)?,
        _ => return None,
    };
    std::str::from_utf8(rest).ok()
}

/// Words of a text: split on anything not alphanumeric, lowercased.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect()
}

/// Every index key of one entity state (kind, declared properties, words).
pub fn entries(doc: &Doc<'_>, declared: &[&str]) -> BTreeSet<Vec<u8>> {
    let mut out = BTreeSet::new();
    let mut k = kind_prefix(doc.kind);
    k.extend_from_slice(doc.id.as_bytes());
    out.insert(k);
    for (name, v) in &doc.props {
        if declared.contains(name) {
            let values: Vec<&IndexValue> = match v {
                IndexValue::List(items) => items.iter().collect(),
                v => vec![v],
            };
            for v in values {
                if let Some(mut k) = prop_prefix(doc.kind, name, v) {
                    k.extend_from_slice(doc.id.as_bytes());
                    out.insert(k);
                }
            }
        }
        if matches!(*name, "title" | "description") {
            if let IndexValue::Str(s) = v {
                for w in words(s) {
                    let mut k = word_prefix(doc.kind, &w);
                    k.extend_from_slice(doc.id.as_bytes());
                    out.insert(k);
                }
            }
        }
    }
    out
}

/// What changes when an entity goes from `old` to `new` (either may be absent):
/// `(removed, added)` keys.
pub fn delta(
    old: Option<&Doc<'_>>,
    new: Option<&Doc<'_>>,
    declared: &[&str],
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let o = old.map(|d| entries(d, declared)).unwrap_or_default();
    let n = new.map(|d| entries(d, declared)).unwrap_or_default();
    // Moved, not cloned: a new entity (no old state) is the common case.
    if o.is_empty() || n.is_empty() {
        return (o.into_iter().collect(), n.into_iter().collect());
    }
    let removed = o.iter().filter(|k| !n.contains(*k)).cloned().collect();
    let added = n.into_iter().filter(|k| !o.contains(k)).collect();
    (removed, added)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(v: &IndexValue) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(put_value(&mut out, v));
        out
    }

    #[test]
    fn value_bytes_sort_like_the_values() {
        use IndexValue::*;
        let ordered = [
            Null,
            Bool(false),
            Bool(true),
            Number(f64::NEG_INFINITY),
            Number(-2.5),
            Number(-0.0),
            Number(0.0),
            Number(1.0),
            Number(2.0),
            Number(1e300),
            Str(String::new()),
            Str("a".into()),
            Str("a\0".into()),
            Str("a\0b".into()),
            Str("ab".into()),
            Str("b".into()),
        ];
        for w in ordered.windows(2) {
            assert!(val(&w[0]) < val(&w[1]), "{:?} !< {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn ids_come_back_out_of_every_key_even_with_awkward_names() {
        let doc = Doc {
            id: "T-0a\u{e9}",
            kind: "ta\0sk",
            props: vec![
                ("status", IndexValue::Str("in\0progress".into())),
                ("priority", IndexValue::Number(2.0)),
                (
                    "labels",
                    IndexValue::List(vec![
                        IndexValue::Str("wal".into()),
                        IndexValue::Str("x".into()),
                    ]),
                ),
                ("title", IndexValue::Str("Fix the TORN tail".into())),
                ("other", IndexValue::Str("not declared".into())),
            ],
        };
        let keys = entries(&doc, &DEFAULT_DECLARED);
        // kind + status + priority + 2 labels + 4 words.
        assert_eq!(keys.len(), 9, "{keys:?}");
        for k in &keys {
            assert_eq!(id_of(k), Some(doc.id));
        }
        let mut want = prop_prefix("ta\0sk", "labels", &IndexValue::Str("wal".into())).unwrap();
        want.extend_from_slice(doc.id.as_bytes());
        assert!(keys.contains(&want));
        let mut w = word_prefix("ta\0sk", "torn");
        w.extend_from_slice(doc.id.as_bytes());
        assert!(keys.contains(&w));
        assert_eq!(id_of(&ready_key(0, -5, "T-1")), Some("T-1"));
    }

    #[test]
    fn a_prefix_never_matches_a_longer_value_or_name() {
        let mut a = prop_prefix("task", "status", &IndexValue::Str("pend".into())).unwrap();
        let mut b = prop_prefix("task", "status", &IndexValue::Str("pending".into())).unwrap();
        a.extend_from_slice(b"id1");
        b.extend_from_slice(b"id1");
        let pfx = prop_prefix("task", "status", &IndexValue::Str("pend".into())).unwrap();
        assert!(a.starts_with(&pfx));
        assert!(!b.starts_with(&pfx));
        assert!(!kind_prefix("tasks").starts_with(&kind_prefix("task")));
    }

    #[test]
    fn the_ready_queue_orders_by_rank_then_time_then_id() {
        let keys = [
            ready_key(0, 50, "b"),
            ready_key(0, 50, "c"),
            ready_key(0, 60, "a"),
            ready_key(1, -100, "a"),
            ready_key(3, 0, "a"),
        ];
        for w in keys.windows(2) {
            assert!(w[0] < w[1]);
        }
    }

    #[test]
    fn delta_removes_what_went_and_adds_what_came() {
        let old = Doc {
            id: "t",
            kind: "task",
            props: vec![("status", IndexValue::Str("pending".into()))],
        };
        let new = Doc {
            id: "t",
            kind: "task",
            props: vec![("status", IndexValue::Str("completed".into()))],
        };
        let (removed, added) = delta(Some(&old), Some(&new), &DEFAULT_DECLARED);
        assert_eq!(removed.len(), 1);
        assert_eq!(added.len(), 1);
        assert!(removed[0].starts_with(
            &prop_prefix("task", "status", &IndexValue::Str("pending".into())).unwrap()
        ));
        let (removed, added) = delta(Some(&old), None, &DEFAULT_DECLARED);
        assert_eq!((removed.len(), added.len()), (2, 0));
    }
}
