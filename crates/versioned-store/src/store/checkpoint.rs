//! Checkpoints: the delta written as a run (merged with the newest runs,
//! size-tiered), the manifest swapped, the log retired through it.

use super::*;

impl Inner {
    /// A checkpoint in three steps, so writers wait only for the two short ones:
    /// under the lock, reach the end of the log and freeze the delta (commits go
    /// on into a new one); without it, write and verify the run (merging the
    /// newest runs when size-tiering says so); under the lock again, switch
    /// CURRENT and drop the frozen delta, unless another process checkpointed
    /// meanwhile (then the new run is dropped, the frozen delta folded back, and
    /// nothing changes).
    pub(super) fn checkpoint(&self) -> Result<CheckpointInfo> {
        let lock = self.lock.as_ref().ok_or(Error::ReadOnly)?;
        if self.wal.is_poisoned() {
            return Err(wal::Error::Poisoned.into());
        }
        let _one_at_a_time = self.checkpointing.lock();
        let runs_dir = self.dir.join("runs");
        // Derive what is already applied before taking the lock, so that other
        // processes' writers wait only for what the catch-up below adds.
        self.ensure_derived()?;
        let (old, ckpt, hint, frozen, inputs, frozen_tail) = {
            let held = lock.acquire(self.opts.lock_timeout)?;
            let wcur = self.sync_with_log(&held)?;
            if self.opts.durability == Durability::None {
                // Runs must never hold what the log could still lose.
                self.wal.sync_tail(&held, &wcur)?;
            }
            // The run holds derived entries for everything up to the checkpoint.
            self.ensure_derived()?;
            let rd = self.reader.lock();
            let mut st = self.state.write();
            let ckpt = st.applied_lsn;
            // Where the log continues after the checkpoint LSN, for opens.
            let hint =
                (wcur.last_lsn() == ckpt && wcur.last_frame > 0).then_some(manifest::WalHint {
                    segment: wcur.segment,
                    last_frame: wcur.last_frame,
                    offset: wcur.offset,
                });
            if ckpt == st.manifest.checkpoint_lsn {
                return Ok(CheckpointInfo {
                    checkpoint_lsn: ckpt,
                    generation: st.manifest.generation,
                    ..Default::default()
                });
            }
            let sizes: Vec<u64> = std::iter::once(st.mem.approx_bytes() as u64)
                .chain(st.runs.iter().map(|r| r.meta.bytes))
                .collect();
            // The delta plus the `merge - 1` newest runs become one run; all of
            // them while some run lacks this process's derived entries (they were
            // rebuilt in memory, and only a run holding them makes that last).
            let merge = if st
                .runs
                .iter()
                .any(|r| r.derived_version != self.derived_version() || r.derived_damaged())
            {
                st.runs.len() + 1
            } else {
                runs_to_merge(&sizes, self.opts.max_runs)
            };
            // Under the lock nothing newer than `ckpt` can be applied: the frozen
            // delta holds exactly the versions at or below it (one checkpoint at a
            // time: none is frozen yet).
            debug_assert!(st.frozen.is_none());
            let frozen = Arc::new(std::mem::take(&mut st.mem));
            st.frozen = Some(frozen.clone());
            (
                st.manifest.clone(),
                ckpt,
                hint,
                frozen,
                st.runs[..merge - 1].to_vec(),
                rd.tail_bytes,
            )
        };
        // From here until the run is published, a failure folds the frozen delta
        // back into the one commits write.
        let unfreeze = |e: Error| {
            self.state.write().unfreeze();
            e
        };
        let merged = inputs.len();
        let gen = old.generation + 1;
        // A random part keeps names unique even if two processes checkpoint the same
        // LSN at once (only one of them can switch CURRENT).
        let name = format!(
            "{ckpt:020}-{gen:08}{}-{:08x}.run",
            if merged > 0 { "m" } else { "" },
            random_u64() as u32
        );
        let new_meta = run::write_run(
            self.vfs.as_ref(),
            &runs_dir,
            &name,
            self.store_id,
            self.derived_version(),
            merge_versions(&inputs, frozen),
        )
        .map_err(unfreeze)?;
        let mut runs = vec![new_meta.clone()];
        runs.extend(old.runs.iter().skip(merged).cloned());
        let compacted = merged > 0;
        let m = Manifest {
            store_id: self.store_id,
            generation: old.generation + 1,
            checkpoint_lsn: ckpt,
            runs,
            created_at_ms: old.created_at_ms,
            wal_hint: hint,
        };
        // Written and synced before the lock is taken: under it, only the
        // rename and the directory sync (a sync fewer that writers wait for).
        let staged = manifest::stage(self.vfs.as_ref(), &self.dir, &m).map_err(unfreeze)?;
        let held = lock
            .acquire(self.opts.lock_timeout)
            .map_err(|e| unfreeze(e.into()))?;
        let now = manifest::read(self.vfs.as_ref(), &self.dir).map_err(unfreeze)?;
        if now.generation != old.generation {
            // Another process checkpointed meanwhile; its CURRENT stands.
            drop(staged);
            self.state.write().unfreeze();
            let p = runs_dir.join(&name);
            self.vfs.remove_file(&p).map_err(io_at(&p))?;
            return Ok(CheckpointInfo {
                checkpoint_lsn: now.checkpoint_lsn,
                generation: now.generation,
                ..Default::default()
            });
        }
        // Commits may have landed while the run was written: publish the end of
        // the log, not the checkpoint LSN, with the new generation.
        let wcur = self.sync_with_log(&held).map_err(unfreeze)?;
        staged.install().map_err(unfreeze)?;
        // From here the new CURRENT is durable; publish its generation.
        self.wal.set_generation(m.generation);
        self.wal.publish(&held, wcur.last_lsn())?;
        {
            let mut rd = self.reader.lock();
            let reuse = self.state.read().runs.clone();
            let runs = open_runs(self.vfs.as_ref(), &self.dir, &m, &reuse);
            let mut st = self.state.write();
            let runs = match runs {
                Ok(runs) => runs,
                Err(e) => {
                    // CURRENT names the new run but this process cannot open it:
                    // it keeps the delta (the old manifest stands in its state,
                    // so a later catch-up reloads) and says why.
                    st.unfreeze();
                    return Err(e);
                }
            };
            st.runs = runs;
            st.frozen = None;
            st.manifest = m.clone();
            rd.generation = m.generation;
            // What was logged after the frozen delta is the new tail.
            rd.tail_bytes = rd.tail_bytes.saturating_sub(frozen_tail);
        }
        let retired = self.wal.retire_through(&held, ckpt)?;
        // The runs CURRENT no longer names are removed without the lock: no
        // writer needs them, and a process still reading one keeps its open
        // file (a merge another process began from the older manifest drops
        // its run at its own generation check).
        drop(held);
        let live: Vec<&str> = m.runs.iter().map(|r| r.name.as_str()).collect();
        let mut removed = false;
        for r in &old.runs {
            if !live.contains(&r.name.as_str()) {
                let p = runs_dir.join(&r.name);
                self.vfs.remove_file(&p).map_err(io_at(&p))?;
                removed = true;
            }
        }
        if removed {
            self.vfs.sync_dir(&runs_dir).map_err(io_at(&runs_dir))?;
        }
        Ok(CheckpointInfo {
            checkpoint_lsn: ckpt,
            generation: m.generation,
            run: Some(new_meta),
            compacted,
            segments_retired: retired,
        })
    }
}

/// How many of the newest sources (the delta first, then the runs newest first,
/// with their sizes in `sizes`) a checkpoint merges into its one new run: the
/// newest sources while each next one is at most twice the size gathered so far.
/// Size-tiered: a large old run is rewritten only once the newer ones have grown to
/// match it, so run sizes grow geometrically with age, a store of N bytes has about
/// log2(N / delta) runs, and each byte is rewritten about that many times. Beyond
/// `max_runs` runs, enough of the newest are merged to get back to it.
pub(super) fn runs_to_merge(sizes: &[u64], max_runs: usize) -> usize {
    let n = sizes.len();
    let mut k = 1;
    let mut acc = sizes[0];
    while k < n && sizes[k] <= acc.saturating_mul(2) {
        acc += sizes[k];
        k += 1;
    }
    k.max((n + 1).saturating_sub(max_runs.max(1)))
}

pub(super) type Entry = Result<(Vec<u8>, Versions)>;

/// Every version of every key in `runs` (newest first, as a manifest lists them)
/// and the delta (newer than them all), merged in key order as a stream: one block per run in memory,
/// not the whole merge.
pub(super) fn merge_versions(runs: &[Arc<Run>], mem: Arc<MemTable>) -> impl Iterator<Item = Entry> {
    // Oldest source first, so concatenated versions come out in LSN order.
    let mut sources: Vec<Box<dyn Iterator<Item = Entry>>> = runs
        .iter()
        .rev()
        .map(|r| Box::new(r.entries()) as Box<dyn Iterator<Item = Entry>>)
        .collect();
    sources.push(Box::new(MemTable::shared_entries(mem).map(Ok)));
    // Each source's next entry, taken out when it is merged (no key is cloned).
    let mut heads: Vec<Option<Entry>> = sources.iter_mut().map(|s| s.next()).collect();
    std::iter::from_fn(move || {
        let m = crate::util::next_head(&heads)?;
        let taken = std::mem::replace(&mut heads[m], sources[m].next());
        let (key, first) = match taken {
            Some(Ok(entry)) => entry,
            error => return error,
        };
        // Other sources holding the same key, oldest first.
        let same: Vec<usize> = (0..heads.len())
            .filter(|&i| matches!(&heads[i], Some(Ok((k, _))) if *k == key))
            .collect();
        if same.is_empty() {
            let mut first = first;
            first.dedup_by_key(|(l, _)| *l);
            return Some(Ok((key, first)));
        }
        let mut versions: Versions = Vec::new();
        let mut first = Some(first);
        for i in 0..heads.len() {
            if i == m {
                versions.extend(first.take().into_iter().flatten());
            } else if same.contains(&i) {
                if let Some(Ok((_, vs))) = heads[i].take() {
                    versions.extend(vs);
                }
                heads[i] = sources[i].next();
            }
        }
        // Sources hold disjoint LSN ranges; keep the order strict regardless.
        versions.dedup_by_key(|(l, _)| *l);
        Some(Ok((key, versions)))
    })
}

#[cfg(test)]
mod tests {
    use super::{merge_versions, runs_to_merge};
    use crate::memtable::MemTable;
    use crate::run::{write_run, Run};
    use std::path::Path;
    use std::sync::Arc;
    use wal::{SimVfs, Vfs};

    /// Keys in order, each with the versions of every source that holds it,
    /// oldest source first: two runs (listed newest first, as a manifest lists
    /// them) and the delta.
    #[test]
    fn a_merge_yields_every_key_once_with_all_its_versions_in_lsn_order() {
        let vfs = SimVfs::new();
        let dir = Path::new("/runs");
        vfs.create_dir_all(dir).unwrap();
        let id = [9u8; 16];
        let v = |l: u64| (l, Arc::<[u8]>::from(vec![l as u8]));
        let run = |name: &str, entries: Vec<(&str, Vec<u64>)>| {
            let es = entries
                .into_iter()
                .map(|(k, ls)| Ok((k.as_bytes().to_vec(), ls.into_iter().map(v).collect())));
            let meta = write_run(vfs.as_ref(), dir, name, id, 0, es).unwrap();
            Arc::new(Run::open(vfs.as_ref(), dir, &meta, id).unwrap())
        };
        let older = run(
            "a.run",
            vec![("a", vec![1]), ("b", vec![2]), ("d", vec![3, 4])],
        );
        let newer = run("b.run", vec![("b", vec![5]), ("c", vec![6])]);
        let mut mem = MemTable::default();
        for (k, l) in [("a", 8), ("c", 9), ("e", 10), ("e", 11)] {
            mem.insert(k.as_bytes().to_vec(), l, v(l).1);
        }
        let got: Vec<(String, Vec<u64>)> = merge_versions(&[newer, older], Arc::new(mem))
            .map(|e| {
                let (k, vs) = e.unwrap();
                (
                    String::from_utf8(k).unwrap(),
                    vs.iter().map(|(l, _)| *l).collect(),
                )
            })
            .collect();
        let want: Vec<(String, Vec<u64>)> = [
            ("a", vec![1, 8]),
            ("b", vec![2, 5]),
            ("c", vec![6, 9]),
            ("d", vec![3, 4]),
            ("e", vec![10, 11]),
        ]
        .into_iter()
        .map(|(k, ls)| (k.to_string(), ls))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn merging_is_size_tiered_and_keeps_the_run_count_bounded() {
        // Under the limit: only the delta is written.
        assert_eq!(runs_to_merge(&[10, 100, 1000], 8), 1);
        // Similar sizes merge even under the limit.
        assert_eq!(runs_to_merge(&[10, 10, 1000], 8), 2);
        // Over it: small new runs merge, the big old one is left alone.
        assert_eq!(runs_to_merge(&[10, 10, 20, 1000], 3), 3);
        // Over it, with nothing size-similar: merge just enough.
        assert_eq!(runs_to_merge(&[1, 100, 10_000, 1_000_000], 3), 2);
        // Everything similar: merge it all.
        assert_eq!(runs_to_merge(&[5, 5, 5, 5], 3), 4);
    }

    #[test]
    fn repeated_checkpoints_rewrite_far_less_than_everything() {
        // Simulate 1,000 checkpoints of equal deltas: the bytes rewritten stay
        // near n log2 n, not n^2, and the run count near log2 n.
        let mut runs: Vec<u64> = Vec::new();
        let mut written = 0u64;
        for _ in 0..1000 {
            let mut sizes = vec![1u64];
            sizes.extend(&runs);
            let k = runs_to_merge(&sizes, 16);
            let merged: u64 = sizes[..k].iter().sum();
            written += merged;
            runs = std::iter::once(merged)
                .chain(runs[k - 1..].iter().copied())
                .collect();
            assert!(runs.len() <= 11, "{} runs: {runs:?}", runs.len());
        }
        assert!(
            written < 1000 * 12,
            "rewrote {written} units for 1000 deltas"
        );
    }
}
