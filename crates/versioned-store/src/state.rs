//! A process's view of the store: the manifest's runs plus the in-memory delta of
//! everything applied from the WAL since the checkpoint.

use crate::error::Result;
use crate::manifest::Manifest;
use crate::memtable::MemTable;
use crate::run::Run;
use std::collections::BTreeMap;
use std::sync::Arc;

pub use crate::memtable::Version;

/// One key of a scan and its version as of the scan's LSN.
pub type Entry = Result<(Vec<u8>, Version)>;

#[derive(Debug)]
pub struct State {
    pub manifest: Manifest,
    /// Newest first.
    pub runs: Vec<Arc<Run>>,
    pub mem: MemTable,
    /// The delta a checkpoint in progress is writing out as a run: frozen (no
    /// longer written) when the checkpoint began, every version in it older than
    /// every version in `mem`. Read after `mem` and before the runs; dropped when
    /// the run is published, or folded back into `mem` if the checkpoint fails.
    pub frozen: Option<Arc<MemTable>>,
    /// Highest LSN applied (runs + delta).
    pub applied_lsn: u64,
    /// Transactions applied whose derived entries (indexes) are not all made
    /// yet, in LSN order, with the keys each wrote. Derivation waits until
    /// something reads derived keys (or a checkpoint or backup writes them out):
    /// a process that opens the store to read or write a few entities then
    /// replays the log tail without deriving any of it.
    pub underived: Underived,
}

/// The two parts of derivation: the entries of one entity's state
/// ([`crate::Deriver::entity_changed`]) and the entries that span entities
/// ([`crate::Deriver::transaction_applied`]). A deriver that names where its
/// spanning entries live ([`crate::Deriver::cross_prefixes`]) has each part
/// derived when a read under it needs it: the first read of the ready queue
/// after a long log tail does not wait for every other index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parts {
    pub entity: bool,
    pub cross: bool,
}

impl Parts {
    pub const ALL: Parts = Parts {
        entity: true,
        cross: true,
    };
    pub const ENTITY: Parts = Parts {
        entity: true,
        cross: false,
    };
    pub const CROSS: Parts = Parts {
        entity: false,
        cross: true,
    };
}

/// Transactions whose derivation is not finished, oldest first, with how far
/// each part of it got: `done[0]` of them have their per-entity entries,
/// `done[1]` their spanning ones. A transaction leaves once both parts passed it.
#[derive(Debug, Default)]
pub struct Underived {
    txns: Vec<(u64, Vec<Vec<u8>>)>,
    done: [usize; 2],
}

impl Underived {
    /// A transaction applied at `lsn` that wrote `written`.
    pub fn push(&mut self, lsn: u64, written: Vec<Vec<u8>>) {
        debug_assert!(self.txns.last().is_none_or(|(l, _)| *l < lsn));
        self.txns.push((lsn, written));
    }

    /// Whether both parts are derived for every transaction applied.
    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    /// Whether `parts` have something left to derive.
    pub fn needs(&self, parts: Parts) -> bool {
        (parts.entity && self.done[0] < self.txns.len())
            || (parts.cross && self.done[1] < self.txns.len())
    }

    /// Transactions a part (0: per entity, 1: spanning) has not derived yet.
    pub fn left(&self, part: usize) -> &[(u64, Vec<Vec<u8>>)] {
        &self.txns[self.done[part]..]
    }

    /// How many transactions from the oldest on `part` has derived.
    pub fn done(&self, part: usize) -> usize {
        self.done[part]
    }

    /// The transactions from `start` on (an index into the whole list).
    pub fn from(&self, start: usize) -> &[(u64, Vec<Vec<u8>>)] {
        &self.txns[start..]
    }

    /// Marks `n` more transactions derived for `parts`, and lets go of those both
    /// parts are done with.
    pub fn advance(&mut self, parts: Parts, n: usize) {
        for (p, on) in [parts.entity, parts.cross].into_iter().enumerate() {
            if on {
                self.done[p] += n;
                debug_assert!(self.done[p] <= self.txns.len());
            }
        }
        let both = self.done[0].min(self.done[1]);
        if both > 0 {
            self.txns.drain(..both);
            self.done[0] -= both;
            self.done[1] -= both;
        }
    }

    /// Forgets every transaction at or below `lsn` (runs now hold their entries).
    pub fn drop_through(&mut self, lsn: u64) {
        let n = self.txns.partition_point(|(l, _)| *l <= lsn);
        self.txns.drain(..n);
        self.done = self.done.map(|d| d.saturating_sub(n));
    }

    pub fn clear(&mut self) {
        self.txns.clear();
        self.done = [0, 0];
    }
}

impl State {
    /// The newest version of `key` at or below `lsn`.
    pub fn get(&self, key: &[u8], lsn: u64) -> Result<Option<Version>> {
        if let Some(v) = self.mem.get(key, lsn) {
            return Ok(Some(v));
        }
        if let Some(v) = self.frozen.as_ref().and_then(|f| f.get(key, lsn)) {
            return Ok(Some(v));
        }
        let mut hash = None;
        for run in &self.runs {
            if let Some(v) = run.get_at_hashed(key, lsn, &mut hash)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// The newest versions of `key` at or below `lsn - 1` and at or below
    /// `lsn` (what a derivation compares), with one search of each delta table.
    pub fn get_pair(&self, key: &[u8], lsn: u64) -> Result<[Option<Version>; 2]> {
        let at = [lsn.saturating_sub(1), lsn];
        let mut out: [Option<Version>; 2] = [None, None];
        // Newest source first: the first version found at or below a LSN is it.
        for m in [Some(&self.mem), self.frozen.as_deref()]
            .into_iter()
            .flatten()
        {
            if let Some(vs) = m.versions(key) {
                for (o, at) in out.iter_mut().zip(at) {
                    if o.is_none() {
                        *o = vs.iter().rev().find(|(l, _)| *l <= at).cloned();
                    }
                }
                if out.iter().all(Option::is_some) {
                    return Ok(out);
                }
            }
        }
        let mut hash = None;
        for run in &self.runs {
            for (o, at) in out.iter_mut().zip(at) {
                if o.is_none() {
                    *o = run.get_at_hashed(key, at, &mut hash)?;
                }
            }
            if out.iter().all(Option::is_some) {
                break;
            }
        }
        Ok(out)
    }

    /// Whether the delta (frozen or not) holds a version of `key`.
    pub fn delta_has(&self, key: &[u8]) -> bool {
        self.mem.versions(key).is_some()
            || self
                .frozen
                .as_ref()
                .is_some_and(|f| f.versions(key).is_some())
    }

    /// The whole delta (frozen and not) as one table, copied.
    pub fn delta_copy(&self) -> MemTable {
        match &self.frozen {
            Some(f) => (**f).clone().followed_by(self.mem.clone()),
            None => self.mem.clone(),
        }
    }

    /// Folds a frozen delta back into `mem` (its checkpoint did not publish a
    /// run), dropping what the manifest's runs hold by now.
    pub fn unfreeze(&mut self) {
        if self.frozen.is_some() {
            self.fold_frozen_pruning(self.manifest.checkpoint_lsn);
        }
    }

    /// Folds a frozen delta back into `mem` and drops every version at or below
    /// `lsn` (which runs hold).
    pub fn fold_frozen_pruning(&mut self, lsn: u64) {
        if let Some(f) = self.frozen.take() {
            let older = Arc::try_unwrap(f).unwrap_or_else(|f| (*f).clone());
            let newer = std::mem::take(&mut self.mem);
            self.mem = older.followed_by(newer);
        }
        self.mem.prune_through(lsn);
    }

    /// LSN of the newest version of `key` (0: never written).
    pub fn latest_lsn(&self, key: &[u8]) -> Result<u64> {
        Ok(self.get(key, u64::MAX)?.map_or(0, |(l, _)| l))
    }

    /// The newest version at or below `lsn` of every key starting with `prefix`.
    pub fn scan_prefix(&self, prefix: &[u8], lsn: u64) -> Result<BTreeMap<Vec<u8>, Version>> {
        self.iter_prefix(prefix, lsn).collect()
    }

    /// Like [`State::scan_prefix`], but lazy: a k-way merge of the delta (copied:
    /// it is small) and the runs (read block by block as reached), holding no lock,
    /// so the caller may stop early and may read the state while iterating.
    pub fn iter_prefix(
        &self,
        prefix: &[u8],
        lsn: u64,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Version)>> + use<> {
        self.iter_from(prefix, prefix, lsn)
    }

    /// [`State::iter_prefix`], starting at the first key at or after `from`.
    pub fn iter_from(
        &self,
        prefix: &[u8],
        from: &[u8],
        lsn: u64,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Version)>> + use<> {
        self.iter_from_bounded(prefix, from, lsn, usize::MAX).0
    }

    /// [`State::iter_from`] with at most `copy` keys of each delta table copied:
    /// where a table holds more, the walk stops after the last key copied, and
    /// that key comes back (the next walk starts after it). See `Inner::walk`.
    pub fn iter_from_bounded(
        &self,
        prefix: &[u8],
        from: &[u8],
        lsn: u64,
        copy: usize,
    ) -> (impl Iterator<Item = Entry> + use<>, Option<Vec<u8>>) {
        type Item = Entry;
        type Src = Box<dyn Iterator<Item = Item>>;
        let from = from.max(prefix);
        // The last key copied of a table cut short, the smallest of them.
        let mut bound: Option<Vec<u8>> = None;
        let mut copy_of = |m: &MemTable| -> Vec<Item> {
            let mut keys = m.prefix_from(prefix, from);
            let mut out = Vec::new();
            for (i, (k, vs)) in keys.by_ref().enumerate() {
                if let Some((l, v)) = vs.iter().rev().find(|(l, _)| *l <= lsn) {
                    out.push(Ok((k.clone(), (*l, v.clone()))));
                }
                if i + 1 == copy {
                    if keys.next().is_some() && bound.as_ref().is_none_or(|b| k < b) {
                        bound = Some(k.clone());
                    }
                    break;
                }
            }
            out
        };
        // Newest source first: where keys tie, the first source's version wins.
        let mut sources: Vec<Src> = vec![Box::new(copy_of(&self.mem).into_iter())];
        if let Some(f) = &self.frozen {
            sources.push(Box::new(copy_of(f).into_iter()));
        }
        for run in &self.runs {
            sources.push(Box::new(run.iter_from(prefix, from, lsn)));
        }
        // Each source's next entry, so the merge compares keys without copying them.
        let mut heads: Vec<Option<Item>> = sources.iter_mut().map(|s| s.next()).collect();
        let stop = bound.clone();
        let merged = std::iter::from_fn(move || {
            let m = crate::util::next_head(&heads)?;
            let found = match &heads[m] {
                Some(Ok((k, _))) if stop.as_ref().is_some_and(|b| k > b) => return None,
                Some(Ok(_)) => std::mem::replace(&mut heads[m], sources[m].next()),
                // An error ends the scan: the caller stops at it.
                _ => return heads[m].take(),
            };
            let Some(Ok(found)) = found else {
                unreachable!("a head holding a key");
            };
            // Older versions of the same key in the other sources are shadowed.
            for (h, s) in heads.iter_mut().zip(sources.iter_mut()) {
                while matches!(h, Some(Ok((k, _))) if *k == found.0) {
                    *h = s.next();
                }
            }
            Some(Ok(found))
        });
        (merged, bound)
    }

    /// Every version of `key`, oldest first.
    pub fn history(&self, key: &[u8]) -> Result<Vec<Version>> {
        let mut out: BTreeMap<u64, Arc<[u8]>> = BTreeMap::new();
        for run in &self.runs {
            if let Some(vs) = run.get(key)? {
                for (l, v) in vs {
                    out.insert(l, Arc::from(v.as_slice()));
                }
            }
        }
        let deltas = self.frozen.as_deref().into_iter().chain([&self.mem]);
        for vs in deltas.filter_map(|m| m.versions(key)) {
            for (l, v) in vs {
                out.insert(*l, v.clone());
            }
        }
        Ok(out.into_iter().collect())
    }
}
