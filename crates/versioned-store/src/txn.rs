//! Transactions: snapshot reads that record what they saw (absence included),
//! buffered writes with read-your-own-writes, validated at commit under the lock.

use crate::error::{Error, Result};
use crate::model::{self, Edge, EdgeRecord, Entity, EntityRecord};
use crate::store::{encode_record, CommitInfo, Pending, Store};
use crate::value::Props;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Which edges of an entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Out,
    In,
    Both,
}

/// A transaction. Reads see the durable state at `begin` plus this transaction's
/// own writes. Nothing is written until [`Transaction::commit`]; dropping it (or
/// [`Transaction::abort`]) discards it.
pub struct Transaction<'s> {
    store: &'s Store,
    snapshot: u64,
    reads: BTreeMap<Vec<u8>, u64>,
    writes: BTreeMap<Vec<u8>, Arc<[u8]>>,
    time_ms: i64,
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("snapshot", &self.snapshot)
            .field("reads", &self.reads.len())
            .field("writes", &self.writes.len())
            .finish()
    }
}

impl<'s> Transaction<'s> {
    pub(crate) fn new(store: &'s Store, snapshot: u64) -> Self {
        Transaction {
            store,
            snapshot,
            reads: BTreeMap::new(),
            writes: BTreeMap::new(),
            time_ms: store.now_ms(),
        }
    }

    /// The LSN this transaction reads at.
    pub fn snapshot_lsn(&self) -> u64 {
        self.snapshot
    }

    /// This transaction's wall time (Unix ms, by the store's clock, read at
    /// `begin`): its record and the entities it writes carry it.
    pub fn time_ms(&self) -> i64 {
        self.time_ms
    }

    /// Every key under `prefix` as of the snapshot, with this transaction's own
    /// writes over them (at LSN `u64::MAX`); with `read_set`, what the snapshot
    /// held joins the read set.
    fn scan_with_writes(
        &mut self,
        prefix: &[u8],
        read_set: bool,
    ) -> Result<BTreeMap<Vec<u8>, crate::state::Version>> {
        let mut found = self
            .store
            .inner
            .state
            .read()
            .scan_prefix(prefix, self.snapshot)?;
        if read_set {
            for (k, (l, _)) in &found {
                self.reads.entry(k.clone()).or_insert(*l);
            }
        }
        for (k, v) in self.writes.range(prefix.to_vec()..) {
            if !k.starts_with(prefix) {
                break;
            }
            found.insert(k.clone(), (u64::MAX, v.clone()));
        }
        Ok(found)
    }

    fn read_key(&mut self, key: Vec<u8>) -> Result<Option<Arc<[u8]>>> {
        if let Some(v) = self.writes.get(&key) {
            return Ok(Some(v.clone()));
        }
        let r = self.store.inner.state.read().get(&key, self.snapshot)?;
        self.reads
            .entry(key)
            .or_insert(r.as_ref().map_or(0, |(l, _)| *l));
        Ok(r.map(|(_, v)| v))
    }

    /// The entity's record as of the snapshot, ignoring this transaction's writes
    /// (joins the read set).
    fn committed_record(&mut self, id: &str) -> Result<Option<EntityRecord>> {
        let key = model::entity_key(id);
        let r = self.store.inner.state.read().get(&key, self.snapshot)?;
        self.reads
            .entry(key)
            .or_insert(r.as_ref().map_or(0, |(l, _)| *l));
        match r {
            Some((_, b)) => Ok(Some(model::decode(&b, "entity record")?)),
            None => Ok(None),
        }
    }

    fn record(&mut self, id: &str) -> Result<Option<EntityRecord>> {
        model::check_id(id)?;
        match self.read_key(model::entity_key(id))? {
            Some(b) => Ok(Some(model::decode(&b, "entity record")?)),
            None => Ok(None),
        }
    }

    /// The entity, if it exists (as of the snapshot, or as this transaction left it).
    pub fn get(&mut self, id: &str) -> Result<Option<Entity>> {
        Ok(self.record(id)?.and_then(|r| r.into_entity(id)))
    }

    /// Ids of committed entities (as of the snapshot; deleted ones included, which
    /// [`Transaction::get`] answers with `None`) that start with `prefix` and sort
    /// after `after`, in order, lazily: for id-ordered pages of one kind whose ids
    /// share a prefix. Not part of the read set until the caller reads them.
    pub fn entity_ids_after(
        &self,
        prefix: &str,
        after: &str,
    ) -> impl Iterator<Item = Result<String>> + use<> {
        let key = |s: &str| {
            let mut k = vec![b'e'];
            k.extend_from_slice(s.as_bytes());
            k
        };
        let mut from = key(after);
        // Strictly after: the smallest key above `after`.
        from.push(0);
        self.store
            .inner
            .walk(&key(prefix), &from, self.snapshot)
            .map(|item| item.map(|(k, _)| String::from_utf8_lossy(&k[1..]).into_owned()))
    }

    /// Ids of live committed entities (as of the snapshot) that start with
    /// `prefix`, in order, at most `limit` of them: for resolving abbreviated ids.
    pub fn ids_with_prefix(&mut self, prefix: &str, limit: usize) -> Result<Vec<String>> {
        let mut key = vec![b'e'];
        key.extend_from_slice(prefix.as_bytes());
        let walk = self.store.inner.walk(&key, &key, self.snapshot);
        let mut out = Vec::new();
        for item in walk {
            if out.len() >= limit {
                break;
            }
            let (k, (_, v)) = item?;
            let rec: EntityRecord = model::decode(&v, "entity record")?;
            if !rec.deleted {
                out.push(String::from_utf8_lossy(&k[1..]).into_owned());
            }
        }
        Ok(out)
    }

    /// Writes `e` as it is, version and times included, when its version is
    /// above the entity's committed version (a deletion counts): for imports and
    /// restores, which carry versions over. An equal version with the same kind
    /// and properties is already here (`Ok(false)`); an equal version with other
    /// content is a `Conflict`; a lower version is never written (`Ok(false)`: the
    /// store never rewinds).
    pub fn import_entity(&mut self, e: &Entity) -> Result<bool> {
        model::check_id(&e.id)?;
        model::check_kind(&e.kind)?;
        if e.version == 0 || e.version > model::MAX_IMPORT_VERSION {
            return Err(Error::Invalid(format!(
                "entity {}: version {} (versions run from 1 to {})",
                e.id,
                e.version,
                model::MAX_IMPORT_VERSION
            )));
        }
        crate::value::check_depth(&e.props)?;
        let cur = self.committed_record(&e.id)?;
        let cur_version = cur.as_ref().map_or(0, |r| r.version);
        if e.version < cur_version {
            return Ok(false);
        }
        if e.version == cur_version {
            let same = cur
                .as_ref()
                .is_some_and(|r| !r.deleted && r.kind == e.kind && r.props == e.props);
            return if same {
                Ok(false)
            } else {
                Err(Error::Conflict(format!(
                    "entity {} is at version {cur_version} here with other content",
                    e.id
                )))
            };
        }
        let rec = EntityRecord {
            deleted: false,
            kind: e.kind.clone(),
            version: e.version,
            props: e.props.clone(),
            created_at: e.created_at,
            updated_at: e.updated_at,
            actor: self.store.actor().to_string(),
        };
        self.write_entity(&e.id, &rec);
        Ok(true)
    }

    fn write_entity(&mut self, id: &str, rec: &EntityRecord) {
        self.writes
            .insert(model::entity_key(id), Arc::from(model::encode(rec)));
    }

    fn put_inner(
        &mut self,
        id: &str,
        kind: &str,
        props: Props,
        expected: Option<u64>,
    ) -> Result<Entity> {
        model::check_id(id)?;
        model::check_kind(kind)?;
        crate::value::check_depth(&props)?;
        let prev = self.record(id)?;
        let live_version = prev
            .as_ref()
            .filter(|r| !r.deleted)
            .map_or(0, |r| r.version);
        if let Some(exp) = expected {
            if exp != live_version {
                return Err(Error::Conflict(format!(
                    "entity {id} is at version {live_version}, expected {exp}"
                )));
            }
        }
        // One committed change raises the version by exactly one, however many
        // puts this transaction makes: count from the committed record.
        let committed = self.committed_record(id)?;
        let created_at = match (&prev, &committed) {
            (Some(r), _) if !r.deleted => r.created_at,
            _ => self.time_ms,
        };
        let rec = EntityRecord {
            deleted: false,
            kind: kind.to_string(),
            version: next_version(id, committed.as_ref().map_or(0, |r| r.version))?,
            props,
            created_at,
            updated_at: self.time_ms,
            actor: self.store.actor().to_string(),
        };
        self.write_entity(id, &rec);
        Ok(rec.into_entity(id).expect("not deleted"))
    }

    /// Creates or replaces entity `id` (its props are replaced whole).
    pub fn put(&mut self, id: &str, kind: &str, props: Props) -> Result<Entity> {
        self.put_inner(id, kind, props, None)
    }

    /// Like [`put`](Self::put), but an entity this creates records `created_at`
    /// (Unix ms) as its creation time instead of the transaction's: for imports
    /// that carry an entity's creation from another store. A live entity keeps
    /// its own.
    pub fn put_created_at(
        &mut self,
        id: &str,
        kind: &str,
        props: Props,
        created_at: i64,
    ) -> Result<Entity> {
        let live = self.record(id)?.is_some_and(|r| !r.deleted);
        let mut e = self.put_inner(id, kind, props, None)?;
        if !live {
            let key = model::entity_key(id);
            let mut rec: EntityRecord = model::decode(&self.writes[&key], "entity record")?;
            rec.created_at = created_at;
            self.write_entity(id, &rec);
            e.created_at = created_at;
        }
        Ok(e)
    }

    /// Compare-and-swap: like [`put`](Self::put), but only if the entity's current
    /// version is `expected` (0: it must not exist); otherwise `Conflict`.
    pub fn put_if_version(
        &mut self,
        id: &str,
        kind: &str,
        props: Props,
        expected: u64,
    ) -> Result<Entity> {
        self.put_inner(id, kind, props, Some(expected))
    }

    /// Creates an entity under a new random id (10 base32 characters, 50 bits).
    pub fn create(&mut self, kind: &str, props: Props) -> Result<Entity> {
        self.create_with_prefix("", kind, props)
    }

    /// Creates an entity under `prefix` + a new random id. Insert-if-absent: an id
    /// that exists (or existed) is skipped for a fresh one.
    pub fn create_with_prefix(&mut self, prefix: &str, kind: &str, props: Props) -> Result<Entity> {
        for _ in 0..16 {
            let id = model::new_id(prefix);
            if self.record(&id)?.is_none() {
                return self.put_inner(&id, kind, props, Some(0));
            }
        }
        Err(Error::Invalid(
            "could not find a free id in 16 tries".into(),
        ))
    }

    /// Deletes an entity and, in the same transaction, all its edges.
    pub fn delete(&mut self, id: &str) -> Result<Entity> {
        let Some(rec) = self.record(id)?.filter(|r| !r.deleted) else {
            return Err(Error::NotFound(format!("entity {id}")));
        };
        for e in self.edges(id, Direction::Both, None)? {
            self.remove_edge(&e.from, &e.kind, &e.to)?;
        }
        let committed_version = self.committed_record(id)?.map_or(0, |r| r.version);
        let gone = EntityRecord {
            deleted: true,
            version: next_version(id, committed_version)?,
            updated_at: self.time_ms,
            actor: self.store.actor().to_string(),
            ..rec.clone()
        };
        match self.committed_record(id)? {
            // Created by this transaction: deleting it leaves nothing to record.
            None => {
                self.writes.remove(&model::entity_key(id));
            }
            Some(_) => self.write_entity(id, &gone),
        }
        Ok(rec.into_entity(id).expect("was live"))
    }

    fn write_edge(&mut self, from: &str, kind: &str, to: &str, rec: &EdgeRecord) {
        let v: Arc<[u8]> = Arc::from(model::encode(rec));
        self.writes
            .insert(model::out_key(from, kind, to), v.clone());
        self.writes.insert(model::in_key(from, kind, to), v);
    }

    /// Adds (or replaces the props of) edge `from -kind-> to`. Both ends must exist.
    pub fn add_edge(&mut self, from: &str, kind: &str, to: &str, props: Props) -> Result<()> {
        model::check_kind(kind)?;
        crate::value::check_depth(&props)?;
        for id in [from, to] {
            if self.get(id)?.is_none() {
                return Err(Error::NotFound(format!("entity {id} (edge endpoint)")));
            }
        }
        self.read_key(model::out_key(from, kind, to))?;
        let rec = EdgeRecord {
            present: true,
            props,
            actor: self.store.actor().to_string(),
            time_ms: self.time_ms,
        };
        self.write_edge(from, kind, to, &rec);
        Ok(())
    }

    /// Removes edge `from -kind-> to`; returns whether it existed.
    pub fn remove_edge(&mut self, from: &str, kind: &str, to: &str) -> Result<bool> {
        model::check_id(from)?;
        model::check_id(to)?;
        model::check_kind(kind)?;
        let Some(b) = self.read_key(model::out_key(from, kind, to))? else {
            return Ok(false);
        };
        let rec: EdgeRecord = model::decode(&b, "edge record")?;
        if !rec.present {
            return Ok(false);
        }
        let gone = EdgeRecord {
            present: false,
            props: Props::new(),
            actor: self.store.actor().to_string(),
            time_ms: self.time_ms,
        };
        self.write_edge(from, kind, to, &gone);
        Ok(true)
    }

    /// The live edges of `id`, optionally of one kind. Each edge seen joins the read
    /// set; edges added concurrently are caught by the commit-time invariants.
    pub fn edges(&mut self, id: &str, dir: Direction, kind: Option<&str>) -> Result<Vec<Edge>> {
        model::check_id(id)?;
        let tags: &[u8] = match dir {
            Direction::Out => b"o",
            Direction::In => b"i",
            Direction::Both => b"oi",
        };
        let mut out = Vec::new();
        for &tag in tags {
            let found = self.scan_with_writes(&model::edge_prefix(tag, id), true)?;
            for (k, (_, v)) in found {
                let rec: EdgeRecord = model::decode(&v, "edge record")?;
                let Some((from, ekind, to)) = model::edge_of_key(&k) else {
                    continue;
                };
                if rec.present && kind.is_none_or(|want| want == ekind) {
                    out.push(Edge {
                        from,
                        kind: ekind,
                        to,
                        props: rec.props,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Every live edge as of the snapshot (with this transaction's own writes),
    /// in `(from, kind, to)` order. A scan, like [`Transaction::list`]: not part
    /// of the read set.
    pub fn all_edges(&mut self) -> Result<Vec<Edge>> {
        let found = self.scan_with_writes(b"o", false)?;
        let mut out = Vec::new();
        for (k, (_, v)) in found {
            let rec: EdgeRecord = model::decode(&v, "edge record")?;
            if !rec.present {
                continue;
            }
            if let Some((from, kind, to)) = model::edge_of_key(&k) {
                out.push(Edge {
                    from,
                    kind,
                    to,
                    props: rec.props,
                });
            }
        }
        Ok(out)
    }

    /// Live entities (optionally of one kind) in id order, up to `limit`. A scan is
    /// not part of the read set (entities created concurrently are not conflicts).
    pub fn list(&mut self, kind: Option<&str>, limit: Option<usize>) -> Result<Vec<Entity>> {
        let found = self.scan_with_writes(b"e", false)?;
        let mut out = Vec::new();
        for (k, (_, v)) in found {
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
            let rec: EntityRecord = model::decode(&v, "entity record")?;
            if rec.deleted || kind.is_some_and(|want| want != rec.kind) {
                continue;
            }
            let id = String::from_utf8_lossy(&k[1..]).into_owned();
            out.extend(rec.into_entity(&id));
        }
        Ok(out)
    }

    /// Derived keys (indexes, tag `x`) under `prefix` that are present as of the
    /// snapshot. They reflect committed entities only, not this transaction's own
    /// writes (see [`Transaction::written_ids`]); not part of the read set.
    ///
    /// Derived keys are never trusted past their checks: a damaged index block
    /// makes the store rebuild the indexes from the entities (with a warning) and
    /// the read is answered from the rebuild.
    pub fn derived(&mut self, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.derived_iter(prefix).collect()
    }

    /// Like [`Transaction::derived`], lazily and in key order: for queries that
    /// stop after a few results.
    pub fn derived_iter(&self, prefix: &[u8]) -> impl Iterator<Item = Result<Vec<u8>>> + use<> {
        debug_assert_eq!(prefix.first(), Some(&b'x'));
        type Walk = Box<dyn Iterator<Item = Result<(Vec<u8>, crate::state::Version)>>>;
        let store = self.store.clone();
        let (prefix, snapshot) = (prefix.to_vec(), self.snapshot);
        let walk = move |store: &Store, prefix: &[u8]| -> Walk {
            if let Err(e) = store.inner.ensure_derived_under(prefix) {
                return Box::new(std::iter::once(Err(e)));
            }
            Box::new(store.inner.walk(prefix, prefix, snapshot))
        };
        let mut inner = walk(&store, &prefix);
        // The last key met, so a walk restarted after a rebuild resumes past it.
        let mut last: Option<Vec<u8>> = None;
        let mut healed = false;
        std::iter::from_fn(move || loop {
            match inner.next()? {
                Ok((k, (_, v))) => {
                    if last.as_ref().is_some_and(|l| k <= *l) {
                        continue;
                    }
                    last = Some(k.clone());
                    if &v[..] == crate::store::DERIVED_PRESENT {
                        return Some(Ok(k));
                    }
                }
                Err(e) => {
                    if healed {
                        return Some(Err(e));
                    }
                    match store.inner.heal_derived() {
                        Ok(true) => {
                            healed = true;
                            inner = walk(&store, &prefix);
                        }
                        Ok(false) => return Some(Err(e)),
                        Err(e2) => return Some(Err(e2)),
                    }
                }
            }
        })
    }

    /// A meta record (tag `m`): bytes the caller encodes, kept under `name` by
    /// the store like any key (versioned, in the WAL, checkpoints and backups)
    /// but never an entity: no kind, no index, not in lists, exports or stats.
    /// For state a layer above keeps alongside its entities and must change in
    /// the same transaction (sync's clocks). Joins the read set, so a commit
    /// conflicts if another one changed it. `None`: never written, or cleared.
    pub fn get_meta(&mut self, name: &str) -> Result<Option<Arc<[u8]>>> {
        Ok(self
            .read_key(model::meta_key(name)?)?
            .filter(|v| !v.is_empty()))
    }

    /// Writes meta record `name` (see [`Transaction::get_meta`]); an empty
    /// `value` clears it.
    pub fn put_meta(&mut self, name: &str, value: &[u8]) -> Result<()> {
        let key = model::meta_key(name)?;
        if value.len() > model::MAX_META_BYTES {
            return Err(Error::Invalid(format!(
                "meta record {name} is {} bytes; at most {} are kept",
                value.len(),
                model::MAX_META_BYTES
            )));
        }
        self.writes.insert(key, Arc::from(value));
        Ok(())
    }

    /// Meta records whose names start with `prefix`, in name order, as of the
    /// snapshot and with this transaction's own writes (cleared ones left out).
    /// Each one joins the read set; one written concurrently under the prefix is
    /// not seen (a scan, like [`Transaction::list`]).
    pub fn meta_with_prefix(&mut self, prefix: &str) -> Result<Vec<(String, Arc<[u8]>)>> {
        let found = self.scan_with_writes(&model::meta_key_prefix(prefix), true)?;
        Ok(found
            .into_iter()
            .filter(|(_, (_, v))| !v.is_empty())
            .map(|(k, (_, v))| (String::from_utf8_lossy(&k[1..]).into_owned(), v))
            .collect())
    }

    /// The store this transaction reads and commits to.
    pub fn store(&self) -> &'s Store {
        self.store
    }

    /// Ids of the entities this transaction has written so far.
    pub fn written_ids(&self) -> Vec<String> {
        self.writes
            .keys()
            .filter(|k| k.first() == Some(&b'e'))
            .map(|k| String::from_utf8_lossy(&k[1..]).into_owned())
            .collect()
    }

    /// Commits: under the lock, validates the read set and the invariants against the
    /// latest state (`Conflict`, nothing written, if anything changed), appends one
    /// WAL record and, by default, returns only after it is durable.
    pub fn commit(self) -> Result<CommitInfo> {
        if self.writes.is_empty() {
            return Ok(CommitInfo { lsn: None });
        }
        if self.store.options().read_only {
            return Err(Error::ReadOnly);
        }
        let record = encode_record(self.store.actor(), self.time_ms, &self.writes);
        let lsn = self.store.commit_pending(Pending {
            reads: self.reads,
            writes: self.writes,
            record,
        })?;
        Ok(CommitInfo { lsn: Some(lsn) })
    }

    /// Discards the transaction.
    pub fn abort(self) {}
}

/// The version after `v`: an error, not an overflow, at the highest one (only a
/// damaged or crafted record holds it; imports stop at
/// [`model::MAX_IMPORT_VERSION`]).
fn next_version(id: &str, v: u64) -> Result<u64> {
    v.checked_add(1).ok_or_else(|| {
        Error::Invalid(format!(
            "entity {id} is at the highest version ({v}) and cannot change again"
        ))
    })
}
