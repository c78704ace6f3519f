//! Derivation: what a [`Deriver`] computes from each transaction (index keys),
//! the view of the state it reads, deriving what a checkpoint or an upgrade left
//! underived, and rebuilding derived keys when the deriver's version changed.

use super::*;

/// Derives entries (index keys, tag `x`) from entity changes. Implemented above
/// this crate (by the `got` layer, with the `indexer`). Derived entries are never
/// logged: every process derives them as it applies commits, and checkpoints write
/// them into runs with the entities.
pub trait Deriver: Send + Sync + std::fmt::Debug + std::any::Any {
    /// Which derived data this is; runs record it, and a store whose runs hold
    /// another version has its derived entries rebuilt from the entities.
    fn version(&self) -> u32;
    /// Keys to remove and keys to add (each starting with `x`) when entity `id`
    /// goes from `old` to `new`.
    fn entity_changed(
        &self,
        id: &str,
        old: Option<&crate::Entity>,
        new: Option<&crate::Entity>,
    ) -> KeyChanges;

    /// After a whole transaction was applied at `lsn` (`keys`: what it wrote),
    /// keys to remove and add for entries that depend on several entities (a task
    /// is ready only while its dependencies are completed). `view` reads the state
    /// at any LSN, so `lsn - 1` is the state before.
    fn transaction_applied(
        &self,
        view: &dyn StateView,
        lsn: u64,
        keys: &[Vec<u8>],
    ) -> Result<KeyChanges> {
        let _ = (view, lsn, keys);
        Ok((Vec::new(), Vec::new()))
    }

    /// Every entry that spans entities, made afresh as of `lsn` (rebuilds, verify).
    fn all_cross_entries(&self, view: &dyn StateView, lsn: u64) -> Result<Vec<Vec<u8>>> {
        let _ = (view, lsn);
        Ok(Vec::new())
    }
}

/// Derived keys to remove and to add.
pub type KeyChanges = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// Reads of the state at a given LSN, for derivers.
pub trait StateView {
    fn entity(&self, id: &str, lsn: u64) -> Result<Option<crate::Entity>>;
    /// [`StateView::entity`], shared: a view may hand out one decoded copy to
    /// every caller (derivation decodes each entity of a transaction once).
    fn entity_shared(&self, id: &str, lsn: u64) -> Result<Option<Arc<crate::Entity>>> {
        Ok(self.entity(id, lsn)?.map(Arc::new))
    }
    /// The other ends of `id`'s live edges of `kind` (out: targets; in: sources).
    fn neighbors(
        &self,
        id: &str,
        dir: crate::Direction,
        kind: &str,
        lsn: u64,
    ) -> Result<Vec<String>>;
    /// Ids of every live entity.
    fn entity_ids(&self, lsn: u64) -> Result<Vec<String>>;
}

impl StateView for State {
    fn entity(&self, id: &str, lsn: u64) -> Result<Option<crate::Entity>> {
        match self.get(&model::entity_key(id), lsn)? {
            Some((_, b)) => entity_of(id, Some(&b)),
            None => Ok(None),
        }
    }
    fn neighbors(
        &self,
        id: &str,
        dir: crate::Direction,
        kind: &str,
        lsn: u64,
    ) -> Result<Vec<String>> {
        let tags: &[u8] = match dir {
            crate::Direction::Out => b"o",
            crate::Direction::In => b"i",
            crate::Direction::Both => b"oi",
        };
        let mut out = Vec::new();
        for &tag in tags {
            let mut prefix = model::edge_prefix(tag, id);
            prefix.extend_from_slice(kind.as_bytes());
            prefix.push(0);
            for (k, (_, v)) in self.scan_prefix(&prefix, lsn)? {
                if model::decode::<EdgeRecord>(&v, "edge record")?.present {
                    if let Some((_, _, _, other)) = model::split_edge_key(&k) {
                        out.push(other);
                    }
                }
            }
        }
        Ok(out)
    }
    fn entity_ids(&self, lsn: u64) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for (k, (_, v)) in self.scan_prefix(b"e", lsn)? {
            if !model::decode::<EntityRecord>(&v, "entity record")?.deleted {
                out.push(String::from_utf8_lossy(&k[1..]).into_owned());
            }
        }
        Ok(out)
    }
}

/// Value of a present derived key (an absent one is `DERIVED_ABSENT`).
pub const DERIVED_PRESENT: &[u8] = &[1];

pub const DERIVED_ABSENT: &[u8] = &[0];

/// The value of a derived key as the delta holds it: one shared allocation for
/// every present (or absent) key rather than one each.
pub(super) fn derived_value(present: bool) -> Arc<[u8]> {
    static PRESENT: std::sync::LazyLock<Arc<[u8]>> =
        std::sync::LazyLock::new(|| Arc::from(DERIVED_PRESENT));
    static ABSENT: std::sync::LazyLock<Arc<[u8]>> =
        std::sync::LazyLock::new(|| Arc::from(DERIVED_ABSENT));
    if present {
        PRESENT.clone()
    } else {
        ABSENT.clone()
    }
}

pub(super) fn entity_of(id: &str, bytes: Option<&[u8]>) -> Result<Option<crate::Entity>> {
    match bytes {
        Some(b) => Ok(model::decode::<EntityRecord>(b, "entity record")?.into_entity(id)),
        None => Ok(None),
    }
}

/// Transactions of a tail whose derivation is split across threads: at least
/// this many keys written (below it, a thread costs more than it saves).
const PARALLEL_MIN_KEYS: usize = 4096;

/// Keys written by the transactions one parallel round derives before it
/// inserts what they add: bounds the changes held at once.
const ROUND_KEYS: usize = 64 << 10;

/// Transactions one round derives at most, per thread it runs on.
/// [`Inner::ensure_derived`] holds the state's write lock for one round at a
/// time, so that commits (which apply under that lock) and reads wait for one
/// round, not for a whole tail: a checkpoint of 4,096 small transactions once
/// held it 30–45 ms, which was the server's p99 (docs/benchmarks.md).
const ROUND_TRANSACTIONS: usize = 128;

/// Derives the entries of [`State::underived`], oldest first. Each transaction's
/// changes are computed from the versions at its LSN and the one before (which
/// later transactions do not change) before any is inserted, so a read error
/// leaves that transaction and the ones after it waiting, and nothing half-done.
/// Computing a transaction's changes reads entities and edges only, never
/// derived keys, so a long tail's transactions are computed on several threads
/// (in rounds of about [`ROUND_KEYS`] written keys) and inserted in LSN order.
pub(super) fn derive_underived(st: &mut State, d: &dyn Deriver) -> Result<()> {
    while derive_next_round(st, d)? {}
    Ok(())
}

/// Derives the oldest round of [`State::underived`] (transactions up to about
/// [`ROUND_KEYS`] written keys and at most [`ROUND_TRANSACTIONS`] a thread);
/// `false` when nothing was left to derive. On a failure the failed transaction and
/// the ones after it stay underived.
pub(super) fn derive_next_round(st: &mut State, d: &dyn Deriver) -> Result<bool> {
    if st.underived.is_empty() {
        return Ok(false);
    }
    let threads = threads();
    let mut end = 0;
    let mut keys = 0;
    while end < st.underived.len()
        && end < ROUND_TRANSACTIONS * threads
        && (end == 0 || keys < ROUND_KEYS)
    {
        keys += st.underived[end].1.len();
        end += 1;
    }
    let mut round: Vec<(u64, Vec<Vec<u8>>)> = st.underived.drain(..end).collect();
    // A full round of small transactions is worth its threads too.
    let parallel = threads > 1
        && round.len() > 1
        && (keys >= PARALLEL_MIN_KEYS || round.len() >= ROUND_TRANSACTIONS * threads);
    let changes = if parallel {
        derive_round_parallel(st, d, &round, threads)
    } else {
        derive_round(st, d, &round)
    };
    for (i, c) in changes.into_iter().enumerate() {
        match c {
            Ok(c) => {
                let lsn = round[i].0;
                for (k, present) in c {
                    debug_assert_eq!(k.first(), Some(&b'x'));
                    st.mem.insert(k, lsn, derived_value(present));
                }
            }
            Err(e) => {
                st.underived.splice(..0, round.drain(i..));
                return Err(e);
            }
        }
    }
    Ok(true)
}

/// Threads a parallel round runs on.
fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(2, 8)
}

/// What one transaction adds and removes.
type Changes = Vec<(Vec<u8>, bool)>;

/// The changes of each transaction of `round`, in order; after the first
/// failure, nothing more is computed.
fn derive_round(
    st: &State,
    d: &dyn Deriver,
    round: &[(u64, Vec<Vec<u8>>)],
) -> Vec<Result<Changes>> {
    let mut seen = HashMap::new();
    let mut out = Vec::with_capacity(round.len());
    for (lsn, written) in round {
        seen.clear();
        let mut changes = Vec::new();
        let r = derive_transaction(st, d, *lsn, written, &mut changes, &mut seen).map(|()| changes);
        let failed = r.is_err();
        out.push(r);
        if failed {
            break;
        }
    }
    out
}

/// [`derive_round`] on `threads` threads, each taking a contiguous share.
fn derive_round_parallel(
    st: &State,
    d: &dyn Deriver,
    round: &[(u64, Vec<Vec<u8>>)],
    threads: usize,
) -> Vec<Result<Changes>> {
    let share = round.len().div_ceil(threads.min(round.len()));
    std::thread::scope(|s| {
        let handles: Vec<_> = round
            .chunks(share)
            .map(|part| s.spawn(move || derive_round(st, d, part)))
            .collect();
        let mut out = Vec::with_capacity(round.len());
        for h in handles {
            let part = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            let failed = part.iter().any(|r| r.is_err());
            out.extend(part);
            if failed {
                // Results after a failure are not used: the caller stops there.
                break;
            }
        }
        out
    })
}

/// A view of the state for one transaction's derivation: each entity is decoded
/// once per LSN asked, however many times the deriver asks.
pub(super) struct MemoView<'a> {
    st: &'a State,
    seen: std::cell::RefCell<&'a mut Seen>,
}

/// Entities a [`MemoView`] decoded, by id: the versions at the (at most two)
/// LSNs last asked for it. A derivation asks for an entity at its LSN and the
/// one before, so two slots hold every repeat; looking one up by `&str`
/// allocates nothing (only a miss stores its id).
pub(super) type Seen = HashMap<String, [Option<Memo>; 2]>;

/// One decoded version: the LSN asked and the entity then.
pub(super) type Memo = (u64, Option<Arc<crate::Entity>>);

impl StateView for MemoView<'_> {
    fn entity(&self, id: &str, lsn: u64) -> Result<Option<crate::Entity>> {
        Ok(self.entity_shared(id, lsn)?.map(|e| (*e).clone()))
    }
    fn entity_shared(&self, id: &str, lsn: u64) -> Result<Option<Arc<crate::Entity>>> {
        if let Some(slots) = self.seen.borrow().get(id) {
            if let Some((_, e)) = slots.iter().flatten().find(|(l, _)| *l == lsn) {
                return Ok(e.clone());
            }
        }
        let e = self.st.entity(id, lsn)?.map(Arc::new);
        let mut seen = self.seen.borrow_mut();
        let slots = match seen.get_mut(id) {
            Some(s) => s,
            None => seen.entry(id.to_string()).or_default(),
        };
        // The free slot, else the older of the two.
        let i = match slots {
            [None, _] => 0,
            [_, None] => 1,
            [Some((a, _)), Some((b, _))] => usize::from(b < a),
        };
        slots[i] = Some((lsn, e.clone()));
        Ok(e)
    }
    fn neighbors(
        &self,
        id: &str,
        dir: crate::Direction,
        kind: &str,
        lsn: u64,
    ) -> Result<Vec<String>> {
        self.st.neighbors(id, dir, kind, lsn)
    }
    fn entity_ids(&self, lsn: u64) -> Result<Vec<String>> {
        self.st.entity_ids(lsn)
    }
}

/// The derived keys transaction `lsn` (which wrote `written`) removes (`false`)
/// and adds (`true`), in the order to apply them.
pub(super) fn derive_transaction(
    st: &State,
    d: &dyn Deriver,
    lsn: u64,
    written: &[Vec<u8>],
    changes: &mut Vec<(Vec<u8>, bool)>,
    seen: &mut Seen,
) -> Result<()> {
    let view = MemoView {
        st,
        seen: std::cell::RefCell::new(seen),
    };
    for k in written.iter().filter(|k| k.first() == Some(&b'e')) {
        let id = String::from_utf8_lossy(&k[1..]);
        let old = view.entity_shared(&id, lsn - 1)?;
        let new = view.entity_shared(&id, lsn)?;
        let (removed, added) = d.entity_changed(&id, old.as_deref(), new.as_deref());
        changes.extend(removed.into_iter().map(|k| (k, false)));
        changes.extend(added.into_iter().map(|k| (k, true)));
    }
    let (removed, added) = d.transaction_applied(&view, lsn, written)?;
    changes.extend(removed.into_iter().map(|k| (k, false)));
    changes.extend(added.into_iter().map(|k| (k, true)));
    Ok(())
}

/// Every derived entry, made afresh from the entities as of `lsn`: what the
/// derived keys present in the state must equal.
pub(crate) fn derive_all(
    st: &State,
    d: &dyn Deriver,
    lsn: u64,
) -> Result<std::collections::BTreeSet<Vec<u8>>> {
    derive_all_with(st, d, lsn, &mut |_, _| {})
}

/// [`derive_all`], calling `progress(entities done, entities)` as it goes.
pub(crate) fn derive_all_with(
    st: &State,
    d: &dyn Deriver,
    lsn: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<std::collections::BTreeSet<Vec<u8>>> {
    let mut out = std::collections::BTreeSet::new();
    let entities = st.scan_prefix(b"e", lsn)?;
    let total = entities.len() as u64;
    for (i, (k, (_, v))) in entities.into_iter().enumerate() {
        if i % 1024 == 0 {
            progress(i as u64, total);
        }
        let id = String::from_utf8_lossy(&k[1..]).into_owned();
        if let Some(e) = entity_of(&id, Some(&v))? {
            out.extend(d.entity_changed(&id, None, Some(&e)).1);
        }
    }
    progress(total, total);
    out.extend(d.all_cross_entries(st, lsn)?);
    Ok(out)
}

/// The derived keys present in the state as of `lsn`.
pub(crate) fn derived_present(st: &State, lsn: u64) -> Result<std::collections::BTreeSet<Vec<u8>>> {
    Ok(st
        .scan_prefix(b"x", lsn)?
        .into_iter()
        .filter(|(_, (_, v))| &v[..] == DERIVED_PRESENT)
        .map(|(k, _)| k)
        .collect())
}

impl Inner {
    /// After a read failed: when the failure was a damaged index block (the run
    /// marked itself), rebuilds the derived entries and says so (`true`: retry).
    pub(crate) fn heal_derived(&self) -> Result<bool> {
        if !self.state.read().runs.iter().any(|r| r.derived_damaged()) {
            return Ok(false);
        }
        self.rebuild_derived_if_stale()?;
        Ok(true)
    }

    pub(crate) fn derived_version(&self) -> u32 {
        self.opts.deriver.as_ref().map_or(0, |d| d.version())
    }

    /// When some run lacks this process's derived entries (a store made before
    /// them, or by a process without them), rebuilds them from the entities into
    /// the delta, at the checkpoint LSN. The next checkpoint merges every run, so
    /// the rebuilt entries become part of the runs. Logged as a warning on stderr:
    /// it costs a scan of the store.
    ///
    /// The same when a run's index blocks were found damaged: that run's derived
    /// keys are no longer read, and the rebuild puts the full set in the delta;
    /// the next checkpoint merges every run, leaving the damaged blocks behind.
    pub(super) fn rebuild_derived_if_stale(&self) -> Result<()> {
        let Some(d) = &self.opts.deriver else {
            return Ok(());
        };
        let mut st = self.state.write();
        derive_underived(&mut st, d.as_ref())?;
        let damaged: Vec<String> = st
            .runs
            .iter()
            .filter(|r| r.derived_damaged())
            .map(|r| r.meta.name.clone())
            .collect();
        if damaged.is_empty() && st.runs.iter().all(|r| r.derived_version == d.version()) {
            return Ok(());
        }
        let ckpt = st.manifest.checkpoint_lsn;
        let want = derive_all(&st, d.as_ref(), ckpt)?;
        let have = derived_present(&st, ckpt)?;
        let (mut added, mut removed) = (0usize, 0usize);
        for k in have.difference(&want) {
            if !st.delta_has(k) {
                st.mem.insert(k.clone(), ckpt, derived_value(false));
                removed += 1;
            }
        }
        for k in want.difference(&have) {
            if !st.delta_has(k) {
                st.mem.insert(k.clone(), ckpt, derived_value(true));
                added += 1;
            }
        }
        if !damaged.is_empty() {
            eprintln!(
                "got: warning: index blocks of run {} in {} are damaged; rebuilt {added} index entries from the entities (the next checkpoint rewrites the run)",
                damaged.join(", "),
                self.dir.display()
            );
        } else if added + removed > 0 {
            eprintln!(
                "got: warning: rebuilt {added} index entries (and dropped {removed} stale ones) in {}: runs without current indexes; the next checkpoint stores them",
                self.dir.display()
            );
        }
        Ok(())
    }

    /// Makes the derived entries of every applied transaction (see
    /// [`State::underived`]); called before derived keys are read or written out.
    pub(crate) fn ensure_derived(&self) -> Result<()> {
        let Some(d) = &self.opts.deriver else {
            return Ok(());
        };
        if self.state.read().underived.is_empty() {
            return Ok(());
        }
        // One round per hold of the write lock: commits and reads go on
        // between rounds (their new transactions join the end of the list).
        while derive_next_round(&mut self.state.write(), d.as_ref())? {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One index key per entity written; `transaction_applied` fails at
    /// `fail_at` (a read error, as a damaged block would give).
    #[derive(Debug)]
    struct OneKey {
        fail_at: Option<u64>,
    }

    impl Deriver for OneKey {
        fn version(&self) -> u32 {
            1
        }
        fn entity_changed(
            &self,
            id: &str,
            _old: Option<&crate::Entity>,
            new: Option<&crate::Entity>,
        ) -> KeyChanges {
            let key = format!("x{id}").into_bytes();
            (Vec::new(), new.map(|_| key).into_iter().collect())
        }
        fn transaction_applied(
            &self,
            _view: &dyn StateView,
            lsn: u64,
            _keys: &[Vec<u8>],
        ) -> Result<KeyChanges> {
            if Some(lsn) == self.fail_at {
                return Err(Error::Invalid(format!("read failed at {lsn}")));
            }
            Ok((Vec::new(), Vec::new()))
        }
    }

    /// A state whose delta holds `n` entities, each written by its own
    /// transaction (LSNs 1..=n), none of them derived yet.
    fn tail(n: u64) -> State {
        let mut st = State {
            manifest: Manifest {
                store_id: [0; 16],
                generation: 1,
                checkpoint_lsn: 0,
                runs: Vec::new(),
                created_at_ms: 0,
                wal_hint: None,
            },
            runs: Vec::new(),
            mem: MemTable::default(),
            frozen: None,
            applied_lsn: n,
            underived: Vec::new(),
        };
        for lsn in 1..=n {
            let key = model::entity_key(&format!("E{lsn:04}"));
            let rec = EntityRecord {
                deleted: false,
                kind: "item".into(),
                version: 1,
                props: Default::default(),
                created_at: 0,
                updated_at: 0,
                actor: "test".into(),
            };
            st.mem
                .insert(key.clone(), lsn, Arc::from(model::encode(&rec)));
            st.underived.push((lsn, vec![key]));
        }
        st
    }

    fn derived(st: &State) -> usize {
        st.mem
            .iter()
            .filter(|(k, _)| k.first() == Some(&b'x'))
            .count()
    }

    /// `ensure_derived` holds the state's write lock for one round at a time:
    /// a round takes at most ROUND_TRANSACTIONS transactions a thread, oldest
    /// first, and leaves the rest waiting in order.
    #[test]
    fn a_round_derives_at_most_its_share_of_the_tail_oldest_first() {
        let round = ROUND_TRANSACTIONS * threads();
        let n = (2 * round + round / 2) as u64;
        let mut st = tail(n);
        let d = OneKey { fail_at: None };
        assert!(derive_next_round(&mut st, &d).unwrap());
        assert_eq!(derived(&st), round);
        assert_eq!(st.underived.len() as u64, n - round as u64);
        assert_eq!(st.underived[0].0, round as u64 + 1);
        while derive_next_round(&mut st, &d).unwrap() {}
        assert_eq!(derived(&st) as u64, n);
        assert!(st.underived.is_empty());
        assert!(!derive_next_round(&mut st, &d).unwrap(), "nothing left");
    }

    /// A failure in a round keeps the failed transaction and every later one
    /// underived, in LSN order, and what the round derived before it stays.
    #[test]
    fn a_failed_round_keeps_the_failed_transaction_and_the_later_ones_in_order() {
        let round = ROUND_TRANSACTIONS * threads();
        let n = (3 * round) as u64;
        // In the second round, past its first transaction.
        let fail_at = (round + round / 2) as u64;
        let mut st = tail(n);
        let d = OneKey {
            fail_at: Some(fail_at),
        };
        assert!(derive_next_round(&mut st, &d).unwrap());
        assert!(derive_next_round(&mut st, &d).is_err());
        assert_eq!(derived(&st) as u64, fail_at - 1);
        let left: Vec<u64> = st.underived.iter().map(|(l, _)| *l).collect();
        assert_eq!(left, (fail_at..=n).collect::<Vec<u64>>());
        // Once the read works again, derivation resumes where it stopped.
        while derive_next_round(&mut st, &OneKey { fail_at: None }).unwrap() {}
        assert_eq!(derived(&st) as u64, n);
    }
}
