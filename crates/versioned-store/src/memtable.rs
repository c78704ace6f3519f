//! The in-memory delta: every version written since the last checkpoint, by key.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

/// One version of a key: `(lsn, value)`.
pub type Version = (u64, Arc<[u8]>);

/// Versions of one key, oldest first.
pub type Versions = Vec<Version>;

/// One key's versions as the table holds them: most keys get one version
/// (every index entry, every entity written once since the checkpoint), held
/// inline rather than in a vector of its own (one allocation a key fewer; a
/// 200k-entity tail has about 1.6M keys).
#[derive(Debug, Clone)]
enum Slot {
    One([Version; 1]),
    Many(Versions),
}

impl Slot {
    fn as_slice(&self) -> &[Version] {
        match self {
            Slot::One(v) => v,
            Slot::Many(v) => v,
        }
    }

    fn last_mut(&mut self) -> Option<&mut Version> {
        match self {
            Slot::One(v) => v.last_mut(),
            Slot::Many(v) => v.last_mut(),
        }
    }

    fn push(&mut self, version: Version) {
        match self {
            Slot::One([first]) => {
                let first = first.clone();
                *self = Slot::Many(vec![first, version]);
            }
            Slot::Many(v) => v.push(version),
        }
    }

    fn into_vec(self) -> Versions {
        match self {
            Slot::One([v]) => vec![v],
            Slot::Many(v) => v,
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct MemTable {
    map: BTreeMap<Vec<u8>, Slot>,
    bytes: usize,
}

impl MemTable {
    pub fn insert(&mut self, key: Vec<u8>, lsn: u64, value: Arc<[u8]>) {
        let added = key.len() + value.len() + 16;
        self.bytes += added;
        let v = match self.map.entry(key) {
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(Slot::One([(lsn, value)]));
                return;
            }
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
        };
        debug_assert!(
            v.as_slice().last().is_none_or(|(l, _)| *l <= lsn),
            "LSNs rise"
        );
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
    pub fn get(&self, key: &[u8], lsn: u64) -> Option<Version> {
        let v = self.map.get(key)?;
        v.as_slice().iter().rev().find(|(l, _)| *l <= lsn).cloned()
    }

    pub fn versions(&self, key: &[u8]) -> Option<&[Version]> {
        self.map.get(key).map(Slot::as_slice)
    }

    /// Keys starting with `prefix`, with their versions, from the first at or
    /// after `from`.
    pub fn prefix_from<'a>(
        &'a self,
        prefix: &'a [u8],
        from: &'a [u8],
    ) -> impl Iterator<Item = (&'a Vec<u8>, &'a [Version])> + 'a {
        self.map
            .range::<[u8], _>((Bound::Included(from.max(prefix)), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k, v.as_slice()))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &[Version])> {
        self.map.iter().map(|(k, v)| (k, v.as_slice()))
    }

    /// Consumes the table: every key with its versions, in key order.
    pub fn into_entries(self) -> impl Iterator<Item = (Vec<u8>, Versions)> {
        self.map.into_iter().map(|(k, v)| (k, v.into_vec()))
    }

    /// Up to `n` keys after `after` (from the first key if `None`), with their
    /// versions, copied: how a reader walks a table others share.
    pub fn copy_after(&self, after: Option<&[u8]>, n: usize) -> Vec<(Vec<u8>, Versions)> {
        let lower = match after {
            Some(k) => Bound::Excluded(k),
            None => Bound::Unbounded,
        };
        self.map
            .range::<[u8], _>((lower, Bound::Unbounded))
            .take(n)
            .map(|(k, v)| (k.clone(), v.as_slice().to_vec()))
            .collect()
    }

    /// Every key with its versions in key order, from a table shared with
    /// others (copied a few hundred keys at a time) or owned (moved).
    pub fn shared_entries(table: Arc<MemTable>) -> Box<dyn Iterator<Item = (Vec<u8>, Versions)>> {
        let table = match Arc::try_unwrap(table) {
            Ok(t) => return Box::new(t.into_entries()),
            Err(shared) => shared,
        };
        let mut buf = std::vec::IntoIter::default();
        let mut last: Option<Vec<u8>> = None;
        let mut done = false;
        Box::new(std::iter::from_fn(move || {
            if buf.len() == 0 && !done {
                let chunk = table.copy_after(last.as_deref(), 512);
                done = chunk.len() < 512;
                last = chunk.last().map(|(k, _)| k.clone());
                buf = chunk.into_iter();
            }
            buf.next()
        }))
    }

    /// This table with every version of `newer` (each newer than every
    /// version here) appended.
    pub fn followed_by(mut self, newer: MemTable) -> MemTable {
        if self.map.is_empty() {
            return newer;
        }
        for (k, vs) in newer.into_entries() {
            for (l, v) in vs {
                self.insert(k.clone(), l, v);
            }
        }
        self
    }

    /// Drops every version at or below `lsn` (now held by a run).
    pub fn prune_through(&mut self, lsn: u64) {
        self.map.retain(|_, slot| {
            if slot.as_slice().iter().all(|(l, _)| *l > lsn) {
                return true;
            }
            let mut v = std::mem::replace(slot, Slot::Many(Vec::new())).into_vec();
            v.retain(|(l, _)| *l > lsn);
            *slot = match v.len() {
                1 => Slot::One([v.pop().expect("one version")]),
                _ => Slot::Many(v),
            };
            !slot.as_slice().is_empty()
        });
        self.bytes = self
            .map
            .iter()
            .map(|(k, v)| {
                v.as_slice()
                    .iter()
                    .map(|(_, x)| k.len() + x.len() + 16)
                    .sum::<usize>()
            })
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

    /// A key's one version held inline, then several, then pruned back to one
    /// and to none: every read sees the versions in LSN order throughout.
    #[test]
    fn versions_grow_from_one_inline_and_prune_back() {
        let v = |s: &str| Arc::<[u8]>::from(s.as_bytes());
        let lsns = |m: &MemTable, k: &[u8]| -> Vec<u64> {
            m.versions(k)
                .map_or(Vec::new(), |vs| vs.iter().map(|(l, _)| *l).collect())
        };
        let mut m = MemTable::default();
        m.insert(b"a".to_vec(), 3, v("a3"));
        m.insert(b"b".to_vec(), 4, v("b4"));
        assert_eq!(lsns(&m, b"a"), vec![3]);
        m.insert(b"a".to_vec(), 5, v("a5"));
        m.insert(b"a".to_vec(), 9, v("a9"));
        assert_eq!(lsns(&m, b"a"), vec![3, 5, 9]);
        assert_eq!(&*m.get(b"a", 8).unwrap().1, b"a5");
        assert!(m.get(b"a", 2).is_none());
        let entries: Vec<(Vec<u8>, Vec<u64>)> = m
            .clone()
            .into_entries()
            .map(|(k, vs)| (k, vs.iter().map(|(l, _)| *l).collect()))
            .collect();
        assert_eq!(
            entries,
            vec![(b"a".to_vec(), vec![3, 5, 9]), (b"b".to_vec(), vec![4])]
        );
        m.prune_through(5);
        assert_eq!(lsns(&m, b"a"), vec![9]);
        assert_eq!(lsns(&m, b"b"), Vec::<u64>::new());
        assert_eq!(m.len(), 1);
        assert_eq!(m.approx_bytes(), 1 + 2 + 16);
        m.insert(b"a".to_vec(), 10, v("a10"));
        assert_eq!(lsns(&m, b"a"), vec![9, 10]);
        m.prune_through(10);
        assert!(m.is_empty());
    }
}
