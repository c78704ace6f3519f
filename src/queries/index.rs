//! The indexes got keeps: the `indexer`'s entries, derived by the store as it
//! applies every commit (see `versioned_store::Deriver`).

use crate::{Direction, Entity, Value};
use indexer::{Doc, IndexValue};
use std::sync::Arc;
use versioned_store::StateView;

/// Bumped whenever what is indexed, or how, changes: stores whose runs hold
/// another version get their indexes rebuilt.
pub const INDEX_VERSION: u32 = 2;

/// Indexes by kind, by (kind, property, value) for the declared properties, by
/// title/description words, and the ready queue of tasks.
#[derive(Debug)]
pub struct IndexDeriver {
    declared: Vec<String>,
}

impl Default for IndexDeriver {
    fn default() -> Self {
        IndexDeriver {
            declared: indexer::DEFAULT_DECLARED
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

impl IndexDeriver {
    /// got's indexes with `extra` properties indexed by (kind, property, value)
    /// besides the defaults ([`indexer::DEFAULT_DECLARED`]), for queries that
    /// filter on them:
    ///
    /// ```
    /// use got::index::IndexDeriver;
    /// use std::sync::Arc;
    /// let opts = got::Options {
    ///     deriver: Some(Arc::new(IndexDeriver::with_declared(["component"]))),
    ///     create_if_missing: true,
    ///     ..got::Options::default()
    /// };
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = got::Store::open(dir.path().join(".got"), opts).unwrap();
    /// ```
    ///
    /// Every process that opens the store should declare the same set (the `got`
    /// CLI declares the defaults): the set is part of the indexes' version, so a
    /// process with another set rebuilds the indexes from the entities when it
    /// opens the store (correct, with a warning, but a scan of the whole store).
    pub fn with_declared<S: Into<String>>(extra: impl IntoIterator<Item = S>) -> IndexDeriver {
        let mut d = IndexDeriver::default();
        for p in extra {
            let p = p.into();
            if !d.declared.contains(&p) {
                d.declared.push(p);
            }
        }
        d
    }

    /// The properties indexed by (kind, property, value).
    pub fn declared(&self) -> &[String] {
        &self.declared
    }
    pub fn is_declared(&self, prop: &str) -> bool {
        self.declared.iter().any(|d| d == prop)
    }
}

/// A property value as the indexer sees it.
pub fn index_value(v: &Value) -> IndexValue {
    match v {
        Value::Null => IndexValue::Null,
        Value::Bool(b) => IndexValue::Bool(*b),
        Value::Int(i) => IndexValue::Number(*i as f64),
        Value::Float(f) => IndexValue::Number(*f),
        Value::String(s) => IndexValue::Str(s.clone()),
        Value::List(items) => IndexValue::List(
            items
                .iter()
                .map(|i| match i {
                    Value::List(_) | Value::Map(_) => IndexValue::Other,
                    i => index_value(i),
                })
                .collect(),
        ),
        Value::Map(_) => IndexValue::Other,
    }
}

fn doc(e: &Entity) -> Doc<'_> {
    Doc {
        id: &e.id,
        kind: &e.kind,
        props: e
            .props
            .iter()
            .map(|(k, v)| (k.as_str(), index_value(v)))
            .collect(),
    }
}

impl versioned_store::Deriver for IndexDeriver {
    /// [`INDEX_VERSION`] with the defaults; with other declared properties, a
    /// checksum of the version and the sorted set (high bit set, so it never
    /// equals a plain version).
    fn version(&self) -> u32 {
        let mut set: Vec<&str> = self.declared.iter().map(String::as_str).collect();
        set.sort_unstable();
        let mut default: Vec<&str> = indexer::DEFAULT_DECLARED.to_vec();
        default.sort_unstable();
        if set == default {
            return INDEX_VERSION;
        }
        let mut h = crc32fast::Hasher::new();
        h.update(&INDEX_VERSION.to_le_bytes());
        for p in set {
            h.update(p.as_bytes());
            h.update(&[0]);
        }
        h.finalize() | 1 << 31
    }
    fn entity_changed(
        &self,
        _id: &str,
        old: Option<&Entity>,
        new: Option<&Entity>,
    ) -> versioned_store::KeyChanges {
        let declared: Vec<&str> = self.declared.iter().map(String::as_str).collect();
        let (o, n) = (old.map(doc), new.map(doc));
        indexer::delta(o.as_ref(), n.as_ref(), &declared)
    }

    /// Keeps the ready queue: a commit can change whether a task is ready by
    /// changing the task, its `depends_on` edges, or the status of a task it
    /// depends on; each such task's ready key is recomputed before and after.
    fn transaction_applied(
        &self,
        view: &dyn StateView,
        lsn: u64,
        keys: &[Vec<u8>],
    ) -> versioned_store::Result<versioned_store::KeyChanges> {
        // Collected in a vector and sorted once: a transaction of 10,000
        // tasks made a set's inserts a tenth of the ready queue's derivation.
        let mut affected = Vec::new();
        for k in keys {
            match k.first() {
                Some(b'e') => {
                    let id = String::from_utf8_lossy(&k[1..]).into_owned();
                    // `lsn` first: its search finds the version before it too.
                    let after = view.entity_shared(&id, lsn)?;
                    let before = view.entity_shared(&id, lsn - 1)?;
                    let status = |e: &Option<Arc<Entity>>| {
                        e.as_ref().and_then(|e| e.props.get("status").cloned())
                    };
                    if status(&before) != status(&after) {
                        // Where the entity does not exist, no edge points at it
                        // (deleting an entity deletes its edges; an edge needs
                        // both ends): only the LSNs where it exists are read.
                        // One made by this transaction has no edges but the
                        // ones this transaction wrote, whose sources the
                        // `o` keys below add: nothing to read for it either.
                        for (at, e) in [(lsn - 1, &before), (lsn, &after)] {
                            if e.is_some() && before.is_some() {
                                affected.extend(view.neighbors(
                                    &id,
                                    Direction::In,
                                    "depends_on",
                                    at,
                                )?);
                            }
                        }
                    }
                    affected.push(id);
                }
                Some(b'o') => {
                    if let Some((from, kind, _)) = versioned_store::model::edge_of_key(k) {
                        if kind == "depends_on" {
                            affected.push(from);
                        }
                    }
                }
                _ => {}
            }
        }
        affected.sort_unstable();
        affected.dedup();
        let (mut removed, mut added) = (Vec::new(), Vec::new());
        for t in affected {
            let before = ready_key_at(view, &t, lsn - 1)?;
            let after = ready_key_at(view, &t, lsn)?;
            if before != after {
                removed.extend(before);
                added.extend(after);
            }
        }
        Ok((removed, added))
    }

    /// The ready queue is the only index that spans entities: a read of it
    /// derives it alone, and the other indexes wait for a read of theirs.
    fn cross_prefixes(&self) -> Vec<Vec<u8>> {
        vec![indexer::ready_prefix()]
    }

    fn all_cross_entries(
        &self,
        view: &dyn StateView,
        lsn: u64,
    ) -> versioned_store::Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for id in view.entity_ids(lsn)? {
            out.extend(ready_key_at(view, &id, lsn)?);
        }
        Ok(out)
    }
}

/// The task's key in the ready queue as of `lsn`, if it is ready then: a pending,
/// unassigned task whose every `depends_on` target has status `completed` (of any kind).
fn ready_key_at(
    view: &dyn StateView,
    id: &str,
    lsn: u64,
) -> versioned_store::Result<Option<Vec<u8>>> {
    let Some(t) = view.entity_shared(id, lsn)? else {
        return Ok(None);
    };
    if !crate::ready::is_ready_itself(&t) {
        return Ok(None);
    }
    for d in view.neighbors(id, Direction::Out, "depends_on", lsn)? {
        let done = view
            .entity_shared(&d, lsn)?
            .is_some_and(|e| crate::ready::is_completed(&e));
        if !done {
            return Ok(None);
        }
    }
    Ok(Some(indexer::ready_key(
        crate::ready::priority_rank(&t),
        t.created_at,
        &t.id,
    )))
}

/// The store's deriver, if it is an [`IndexDeriver`].
pub fn deriver_of(store: &versioned_store::Store) -> Option<&IndexDeriver> {
    let d: &dyn std::any::Any = store.options().deriver.as_deref()?;
    d.downcast_ref::<IndexDeriver>()
}

/// The deriver `got` opens stores with.
pub fn default_deriver() -> Arc<IndexDeriver> {
    Arc::new(IndexDeriver::default())
}
