//! Derivation: what a [`Deriver`] computes from each transaction (index keys),
//! the view of the state it reads, deriving what a checkpoint or an upgrade left
//! underived, and rebuilding derived keys when the deriver's version changed.

use super::*;
use crate::state::{Parts, Version};

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

    /// Prefixes under which every key of [`Deriver::transaction_applied`] lies,
    /// and no key of [`Deriver::entity_changed`]. With them, a read under one
    /// of these prefixes derives only the spanning entries, and a read outside
    /// them only the per-entity ones (each part in LSN order, as far as the
    /// read needs it). Empty (the default): both parts are derived together.
    fn cross_prefixes(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }
}

/// The parts of derivation a read of derived keys under `prefix` needs.
pub(crate) fn parts_for(d: &dyn Deriver, prefix: &[u8]) -> Parts {
    let cross = d.cross_prefixes();
    if cross.is_empty() {
        return Parts::ALL;
    }
    Parts {
        entity: !cross.iter().any(|c| prefix.starts_with(c)),
        cross: cross
            .iter()
            .any(|c| prefix.starts_with(c) || c.starts_with(prefix)),
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
            for item in self.iter_prefix(&prefix, lsn) {
                let (k, (_, v)) = item?;
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
    while derive_next_round(st, d, Parts::ALL)? {}
    Ok(())
}

/// Derives the oldest round of [`State::underived`] for `want` (transactions up
/// to about [`ROUND_KEYS`] written keys and at most [`ROUND_TRANSACTIONS`] a
/// thread); `false` when `want` had nothing left. On a failure the failed
/// transaction and the ones after it stay underived.
///
/// When the deriver splits its entries ([`Deriver::cross_prefixes`]) each part
/// keeps its own place in the list: a part that is behind the other is derived
/// alone until it catches up, and from the same place both are derived in one
/// pass (each entity decoded once for both).
pub(super) fn derive_next_round(st: &mut State, d: &dyn Deriver, want: Parts) -> Result<bool> {
    let want = if d.cross_prefixes().is_empty() {
        Parts::ALL
    } else {
        want
    };
    let u = &st.underived;
    let (entity, cross) = (
        want.entity && u.needs(Parts::ENTITY),
        want.cross && u.needs(Parts::CROSS),
    );
    let (start, parts, stop) = match (entity, cross) {
        (false, false) => return Ok(false),
        (true, false) => (u.done(0), Parts::ENTITY, usize::MAX),
        (false, true) => (u.done(1), Parts::CROSS, usize::MAX),
        // The one behind goes alone as far as the other got.
        (true, true) if u.done(0) < u.done(1) => (u.done(0), Parts::ENTITY, u.done(1)),
        (true, true) if u.done(1) < u.done(0) => (u.done(1), Parts::CROSS, u.done(0)),
        (true, true) => (u.done(0), Parts::ALL, usize::MAX),
    };
    let left = u.from(start);
    let threads = threads();
    let mut end = 0;
    let mut keys = 0;
    while end < left.len()
        && start + end < stop
        && end < ROUND_TRANSACTIONS * threads
        && (end == 0 || keys < ROUND_KEYS)
    {
        keys += left[end].1.len();
        end += 1;
    }
    let round = &left[..end];
    // A full round of small transactions is worth its threads too.
    let parallel = threads > 1
        && round.len() > 1
        && (keys >= PARALLEL_MIN_KEYS || round.len() >= ROUND_TRANSACTIONS * threads);
    let changes = if parallel {
        derive_round_parallel(st, d, round, parts, threads)
    } else {
        derive_round(st, d, round, parts)
    };
    let lsns: Vec<u64> = round.iter().map(|(l, _)| *l).collect();
    for (i, c) in changes.into_iter().enumerate() {
        match c {
            Ok(c) => {
                for (k, present) in c {
                    debug_assert_eq!(k.first(), Some(&b'x'));
                    st.mem.insert(k, lsns[i], derived_value(present));
                }
            }
            Err(e) => {
                st.underived.advance(parts, i);
                return Err(e);
            }
        }
    }
    st.underived.advance(parts, lsns.len());
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
    parts: Parts,
) -> Vec<Result<Changes>> {
    let mut seen = HashMap::new();
    let mut out = Vec::with_capacity(round.len());
    for (lsn, written) in round {
        seen.clear();
        let mut changes = Vec::new();
        let r = derive_transaction(st, d, *lsn, written, parts, &mut changes, &mut seen)
            .map(|()| changes);
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
    parts: Parts,
    threads: usize,
) -> Vec<Result<Changes>> {
    let share = round.len().div_ceil(threads.min(round.len()));
    std::thread::scope(|s| {
        let handles: Vec<_> = round
            .chunks(share)
            .map(|part| s.spawn(move || derive_round(st, d, part, parts)))
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
        // A derivation asks for `lsn` and `lsn - 1` (or `lsn + 1` and `lsn`):
        // one search finds both, and both slots take them.
        let key = model::entity_key(id);
        let [before, at] = self.st.get_pair(&key, lsn)?;
        let decode = |v: &Option<Version>| -> Result<Option<Arc<crate::Entity>>> {
            Ok(entity_of(id, v.as_ref().map(|(_, b)| &b[..]))?.map(Arc::new))
        };
        let e = decode(&at)?;
        // The same version at both LSNs (nothing written at `lsn`) is decoded once.
        let same = matches!((&before, &at), (Some((a, _)), Some((b, _))) if a == b)
            || (before.is_none() && at.is_none());
        let older = if same { e.clone() } else { decode(&before)? };
        let mut seen = self.seen.borrow_mut();
        let slots = match seen.get_mut(id) {
            Some(s) => s,
            None => seen.entry(id.to_string()).or_default(),
        };
        *slots = [Some((lsn.saturating_sub(1), older)), Some((lsn, e.clone()))];
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

/// The derived keys (of `parts`) transaction `lsn` (which wrote `written`)
/// removes (`false`) and adds (`true`), in the order to apply them.
pub(super) fn derive_transaction(
    st: &State,
    d: &dyn Deriver,
    lsn: u64,
    written: &[Vec<u8>],
    parts: Parts,
    changes: &mut Vec<(Vec<u8>, bool)>,
    seen: &mut Seen,
) -> Result<()> {
    let view = MemoView {
        st,
        seen: std::cell::RefCell::new(seen),
    };
    if parts.entity {
        for k in written.iter().filter(|k| k.first() == Some(&b'e')) {
            let id = String::from_utf8_lossy(&k[1..]);
            // `lsn` first: its search finds the version before it too.
            let new = view.entity_shared(&id, lsn)?;
            let old = view.entity_shared(&id, lsn - 1)?;
            let (removed, added) = d.entity_changed(&id, old.as_deref(), new.as_deref());
            changes.extend(removed.into_iter().map(|k| (k, false)));
            changes.extend(added.into_iter().map(|k| (k, true)));
        }
    }
    if parts.cross {
        let (removed, added) = d.transaction_applied(&view, lsn, written)?;
        changes.extend(removed.into_iter().map(|k| (k, false)));
        changes.extend(added.into_iter().map(|k| (k, true)));
    }
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
        self.ensure_derived_parts(Parts::ALL)
    }

    /// [`Inner::ensure_derived`] for a read of derived keys under `prefix`
    /// only: the part of derivation it does not read may stay behind.
    pub(crate) fn ensure_derived_under(&self, prefix: &[u8]) -> Result<()> {
        match &self.opts.deriver {
            Some(d) => self.ensure_derived_parts(parts_for(d.as_ref(), prefix)),
            None => Ok(()),
        }
    }

    fn ensure_derived_parts(&self, parts: Parts) -> Result<()> {
        let Some(d) = &self.opts.deriver else {
            return Ok(());
        };
        if !self.state.read().underived.needs(parts) {
            return Ok(());
        }
        // One round per hold of the write lock: commits and reads go on
        // between rounds (their new transactions join the end of the list).
        while derive_next_round(&mut self.state.write(), d.as_ref(), parts)? {}
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

    /// Per-entity keys `xk<id>` and spanning keys `xr<id>` (one for every
    /// entity a transaction wrote), named apart by `cross_prefixes`; the
    /// spanning part fails at `fail_at`.
    #[derive(Debug)]
    struct Split {
        fail_at: Option<u64>,
    }

    impl Deriver for Split {
        fn version(&self) -> u32 {
            1
        }
        fn entity_changed(
            &self,
            id: &str,
            _old: Option<&crate::Entity>,
            new: Option<&crate::Entity>,
        ) -> KeyChanges {
            let key = format!("xk{id}").into_bytes();
            (Vec::new(), new.map(|_| key).into_iter().collect())
        }
        fn transaction_applied(
            &self,
            _view: &dyn StateView,
            lsn: u64,
            keys: &[Vec<u8>],
        ) -> Result<KeyChanges> {
            if Some(lsn) == self.fail_at {
                return Err(Error::Invalid(format!("read failed at {lsn}")));
            }
            let added = keys
                .iter()
                .map(|k| [&b"xr"[..], &k[1..]].concat())
                .collect();
            Ok((Vec::new(), added))
        }
        fn cross_prefixes(&self) -> Vec<Vec<u8>> {
            vec![b"xr".to_vec()]
        }
    }

    fn count(st: &State, prefix: &[u8]) -> u64 {
        st.mem.iter().filter(|(k, _)| k.starts_with(prefix)).count() as u64
    }

    fn derive(st: &mut State, d: &dyn Deriver, parts: Parts) -> Result<()> {
        while derive_next_round(st, d, parts)? {}
        Ok(())
    }

    /// A read under the spanning prefix derives the spanning part alone; the
    /// per-entity part waits for a read of its own, and then the list empties.
    #[test]
    fn a_read_of_the_spanning_entries_derives_them_alone_and_the_rest_follows() {
        let d = Split { fail_at: None };
        assert_eq!(parts_for(&d, b"xr"), Parts::CROSS);
        assert_eq!(parts_for(&d, b"xr\x02"), Parts::CROSS);
        assert_eq!(parts_for(&d, b"xk"), Parts::ENTITY);
        assert_eq!(parts_for(&d, b"x"), Parts::ALL);
        assert_eq!(parts_for(&OneKey { fail_at: None }, b"xr"), Parts::ALL);
        let n = (2 * ROUND_TRANSACTIONS * threads() + 7) as u64;
        let mut st = tail(n);
        derive(&mut st, &d, parts_for(&d, b"xr")).unwrap();
        assert_eq!((count(&st, b"xr"), count(&st, b"xk")), (n, 0));
        assert!(st.underived.needs(Parts::ENTITY));
        assert!(!st.underived.needs(Parts::CROSS));
        derive(&mut st, &d, parts_for(&d, b"xk")).unwrap();
        assert_eq!((count(&st, b"xr"), count(&st, b"xk")), (n, n));
        assert!(st.underived.is_empty());
    }

    /// A part behind the other is derived alone up to where the other got,
    /// then both go on together; a failure of one part stops that part only.
    #[test]
    fn a_part_behind_catches_up_alone_and_a_failed_part_keeps_its_place() {
        let round = ROUND_TRANSACTIONS * threads();
        let n = (3 * round) as u64;
        let mut st = tail(n);
        let d = Split { fail_at: None };
        assert!(derive_next_round(&mut st, &d, Parts::CROSS).unwrap());
        assert_eq!(st.underived.done(1), round);
        // Both asked for: the per-entity part catches up alone first.
        assert!(derive_next_round(&mut st, &d, Parts::ALL).unwrap());
        assert_eq!(count(&st, b"xk"), round as u64);
        assert_eq!(count(&st, b"xr"), round as u64);
        // Both parts passed the first round: it left the list.
        assert_eq!(st.underived.left(0).len(), 2 * round);
        assert_eq!(st.underived.left(1).len(), 2 * round);
        assert!(derive_next_round(&mut st, &d, Parts::ALL).unwrap());
        assert_eq!(count(&st, b"xk"), 2 * round as u64);
        assert_eq!(count(&st, b"xr"), 2 * round as u64);

        let fail_at = (2 * round + round / 2) as u64;
        let bad = Split {
            fail_at: Some(fail_at),
        };
        assert!(derive(&mut st, &bad, Parts::CROSS).is_err());
        assert_eq!(count(&st, b"xr"), fail_at - 1);
        // The per-entity part does not wait for the failed one.
        derive(&mut st, &bad, Parts::ENTITY).unwrap();
        assert_eq!(count(&st, b"xk"), n);
        assert!(st.underived.left(0).is_empty());
        let left: Vec<u64> = st.underived.left(1).iter().map(|(l, _)| *l).collect();
        assert_eq!(left, (fail_at..=n).collect::<Vec<u64>>());
        derive(&mut st, &d, Parts::ALL).unwrap();
        assert_eq!(count(&st, b"xr"), n);
        assert!(st.underived.is_empty());
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
            underived: Default::default(),
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
            st.underived.push(lsn, vec![key]);
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
        assert!(derive_next_round(&mut st, &d, Parts::ALL).unwrap());
        assert_eq!(derived(&st), round);
        assert_eq!(st.underived.left(0).len() as u64, n - round as u64);
        assert_eq!(st.underived.left(0)[0].0, round as u64 + 1);
        while derive_next_round(&mut st, &d, Parts::ALL).unwrap() {}
        assert_eq!(derived(&st) as u64, n);
        assert!(st.underived.is_empty());
        assert!(
            !derive_next_round(&mut st, &d, Parts::ALL).unwrap(),
            "nothing left"
        );
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
        assert!(derive_next_round(&mut st, &d, Parts::ALL).unwrap());
        assert!(derive_next_round(&mut st, &d, Parts::ALL).is_err());
        assert_eq!(derived(&st) as u64, fail_at - 1);
        let left: Vec<u64> = st.underived.left(0).iter().map(|(l, _)| *l).collect();
        assert_eq!(left, (fail_at..=n).collect::<Vec<u64>>());
        // Once the read works again, derivation resumes where it stopped.
        while derive_next_round(&mut st, &OneKey { fail_at: None }, Parts::ALL).unwrap() {}
        assert_eq!(derived(&st) as u64, n);
    }
}
