//! A process's view of the store: the manifest's runs plus the in-memory delta of
//! everything applied from the WAL since the checkpoint.

use crate::error::Result;
use crate::manifest::Manifest;
use crate::memtable::MemTable;
use crate::run::Run;
use std::collections::BTreeMap;
use std::sync::Arc;

pub use crate::memtable::Version;

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
    /// Transactions applied whose derived entries (indexes) are not made yet, in
    /// LSN order, with the keys each wrote. Derivation waits until something reads
    /// derived keys (or a checkpoint or backup writes them out): a process that
    /// opens the store to read or write a few entities then replays the log tail
    /// without deriving any of it.
    pub underived: Vec<(u64, Vec<Vec<u8>>)>,
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
        type Item = Result<(Vec<u8>, Version)>;
        type Src = Box<dyn Iterator<Item = Item>>;
        let from = from.max(prefix);
        let copy = |m: &MemTable| -> Vec<Item> {
            m.prefix_from(prefix, from)
                .filter_map(|(k, vs)| {
                    vs.iter()
                        .rev()
                        .find(|(l, _)| *l <= lsn)
                        .map(|(l, v)| Ok((k.clone(), (*l, v.clone()))))
                })
                .collect()
        };
        // Newest source first: where keys tie, the first source's version wins.
        let mut sources: Vec<Src> = vec![Box::new(copy(&self.mem).into_iter())];
        if let Some(f) = &self.frozen {
            sources.push(Box::new(copy(f).into_iter()));
        }
        for run in &self.runs {
            sources.push(Box::new(run.iter_from(prefix, from, lsn)));
        }
        // Each source's next entry, so the merge compares keys without copying them.
        let mut heads: Vec<Option<Item>> = sources.iter_mut().map(|s| s.next()).collect();
        std::iter::from_fn(move || {
            let m = crate::util::next_head(&heads)?;
            let found = match &heads[m] {
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
        })
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
