//! The in-memory delta: every version written since the last checkpoint, by key.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

/// Versions of one key, oldest first: `(lsn, value)`.
pub type Versions = Vec<(u64, Arc<[u8]>)>;

#[derive(Debug, Default, Clone)]
pub struct MemTable {
    map: BTreeMap<Vec<u8>, Versions>,
    bytes: usize,
}

impl MemTable {
    pub fn insert(&mut self, key: Vec<u8>, lsn: u64, value: Arc<[u8]>) {
        let added = key.len() + value.len() + 16;
        self.bytes += added;
        // Most keys get one version: room for exactly one (a default Vec's
        // first push reserves four).
        let v = self.map.entry(key).or_insert_with(|| Vec::with_capacity(1));
        debug_assert!(v.last().is_none_or(|(l, _)| *l <= lsn), "LSNs rise");
        // A transaction record that writes one key twice (got never writes one;
        // a damaged frame whose checksum was recomputed can): the later write is
        // the key's value at that LSN, as a reader of the record would take it.
        if let Some(last) = v.last_mut().filter(|(l, _)| *l == lsn) {
            // Counted as one version, of the new value's size.
            self.bytes -= added - value.len() + last.1.len();
            last.1 = value;
            return;
        }
        v.push((lsn, value));
    }

    /// The newest version at or below `lsn`.
    pub fn get(&self, key: &[u8], lsn: u64) -> Option<(u64, Arc<[u8]>)> {
        let v = self.map.get(key)?;
        v.iter().rev().find(|(l, _)| *l <= lsn).cloned()
    }

    pub fn versions(&self, key: &[u8]) -> Option<&Versions> {
        self.map.get(key)
    }

    /// Keys starting with `prefix`, with their versions, from the first at or
    /// after `from`.
    pub fn prefix_from<'a>(
        &'a self,
        prefix: &'a [u8],
        from: &'a [u8],
    ) -> impl Iterator<Item = (&'a Vec<u8>, &'a Versions)> + 'a {
        self.map
            .range::<[u8], _>((Bound::Included(from.max(prefix)), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Versions)> {
        self.map.iter()
    }

    /// Consumes the table: every key with its versions, in key order.
    pub fn into_entries(self) -> impl Iterator<Item = (Vec<u8>, Versions)> {
        self.map.into_iter()
    }

    /// Drops every version at or below `lsn` (now held by a run).
    pub fn prune_through(&mut self, lsn: u64) {
        self.map.retain(|_, v| {
            v.retain(|(l, _)| *l > lsn);
            !v.is_empty()
        });
        self.bytes = self
            .map
            .iter()
            .map(|(k, v)| v.iter().map(|(_, x)| k.len() + x.len() + 16).sum::<usize>())
            .sum();
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn approx_bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing a store with a frame whose checksum was recomputed: a
    /// record writing one key twice panicked (in debug builds) at "LSNs rise".
    #[test]
    fn a_key_written_twice_at_one_lsn_keeps_the_later_value() {
        let mut m = MemTable::default();
        m.insert(b"k".to_vec(), 7, Arc::from(&b"first"[..]));
        m.insert(b"k".to_vec(), 7, Arc::from(&b"second"[..]));
        assert_eq!(m.versions(b"k").unwrap().len(), 1);
        assert_eq!(&*m.get(b"k", 7).unwrap().1, b"second");
        m.insert(b"k".to_vec(), 8, Arc::from(&b"third"[..]));
        assert_eq!(&*m.get(b"k", 7).unwrap().1, b"second");
        assert_eq!(&*m.get(b"k", 8).unwrap().1, b"third");
    }
}
