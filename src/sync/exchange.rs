//! Exporting and importing a whole store's document: the merge computed from
//! one read of the store, then written in chunks that fit a WAL frame, each
//! record's data with its base (see [`super::replica`]), and the mark of the
//! tracked file sync wrote last.

use super::doc::{Body, Doc, EdgeKey};
use super::replica::{apply, note_lost_claims, snapshot, snapshot_as, Applied, Scope};
use crate::{Result, Store, Transaction};

/// Runs `f` in a transaction and commits, again from a fresh snapshot while the
/// commit loses a race to another writer.
fn write<T>(store: &Store, f: impl FnMut(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
    crate::tasks::write(store, f)
}

/// At most this many records per transaction when a merge writes many (and at
/// most a quarter of a segment's bytes, see [`chunk_bytes`]): one transaction of
/// the whole of a large store would not fit in one WAL frame. Each record's
/// data and its base commit together, so any prefix of the chunks is a
/// consistent state (entities go before edges, which need their ends).
pub const CHUNK_RECORDS: usize = 400;

/// The bytes of writes one chunk may hold: a quarter of a segment (a frame
/// never exceeds one), at most 1 MiB.
fn chunk_bytes(store: &Store) -> usize {
    ((store.options().segment_size_bytes / 4) as usize).clamp(256, 1 << 20)
}

/// Cuts `items` (each with its estimated bytes) into chunks within both limits.
fn chunked<T: Clone>(items: &[(T, usize)], max_bytes: usize) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0;
    for (item, b) in items {
        if !cur.is_empty() && (cur.len() >= CHUNK_RECORDS || bytes + b > max_bytes) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        cur.push(item.clone());
        bytes += b;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Merges `other` (`None`: nothing, just record the store's own changes) into
/// the store in chunks, keeping tombstones from `cutoff_ms` on (0: all). Returns
/// what changed and the document the store now is.
fn merge_in(store: &Store, other: Option<&Doc>, cutoff_ms: u64) -> Result<(Applied, Doc)> {
    let target_of = |local: &Doc, other: Option<&Doc>| {
        // Merged even with nothing, so the store records its own state as every
        // merge makes it (an edge of a deleted entity removed at the deletion).
        let mut t = super::merge(local, other.unwrap_or(&Doc::default()));
        note_lost_claims(&mut t);
        t.drop_tombstones(cutoff_ms);
        t
    };
    let mut total = Applied::default();
    {
        // The whole picture, read only, to find the records to write.
        let (full, target) = {
            let mut tx = store.begin()?;
            let snap = snapshot(&mut tx, None)?;
            let target = target_of(&snap.doc, other);
            (snap, target)
        };
        // A record's writes: its data (about its line) and its base (its line),
        // its in-edge mirror for an edge.
        let cost = |line: usize| 3 * line + 256;
        let mut scope_e: Vec<(String, usize)> = Vec::new();
        let ids: std::collections::BTreeSet<&String> = full
            .base
            .entities
            .keys()
            .chain(target.entities.keys())
            .collect();
        for id in ids {
            let t = target.entities.get(id);
            // A tombstone absorbs an entity made again under its id: the store
            // deletes it too.
            let revived =
                full.live.contains(id) && matches!(t.map(|t| &t.body), Some(Body::Deleted(_)));
            if full.base.entities.get(id) != t || revived {
                let line = t.map_or(0, |t| super::doc::entity_line(id, t).len());
                scope_e.push((id.clone(), cost(line)));
            }
        }
        let mut scope_d: Vec<(EdgeKey, usize)> = Vec::new();
        let keys: std::collections::BTreeSet<&EdgeKey> =
            full.base.edges.keys().chain(target.edges.keys()).collect();
        for k in keys {
            let t = target.edges.get(k);
            if full.base.edges.get(k) != t {
                let line = t.map_or(0, |t| super::doc::edge_line(k, t).len());
                scope_d.push((k.clone(), cost(line)));
            }
        }
        if scope_e.is_empty() && scope_d.is_empty() && !full.node_is_new {
            return Ok((total, target));
        }
        // Entities the target keeps first (edges need their ends), then edges,
        // then deletions: an edge of a deleted entity is removed (and its base
        // recorded) before the deletion, so no later chunk finds it gone from
        // the store and takes that for a change made here.
        let max = chunk_bytes(store);
        let (gone, kept): (Vec<_>, Vec<_>) = scope_e.into_iter().partition(|(id, _)| {
            matches!(
                target.entities.get(id).map(|e| &e.body),
                Some(Body::Deleted(_)) | None
            )
        });
        let entity_chunks = |items: &[(String, usize)]| -> Vec<Scope> {
            chunked(items, max)
                .into_iter()
                .map(|c| Scope {
                    entities: c.into_iter().collect(),
                    ..Scope::default()
                })
                .collect()
        };
        let mut chunks = entity_chunks(&kept);
        chunks.extend(chunked(&scope_d, max).into_iter().map(|c| Scope {
            edges: c.into_iter().collect(),
            ..Scope::default()
        }));
        chunks.extend(entity_chunks(&gone));
        if chunks.is_empty() {
            // Only the node id is new: record it.
            chunks.push(Scope::default());
        }
        for scope in &chunks {
            // The whole merge's records for this chunk (it saw every entity:
            // an edge of a deleted one is removed at the deletion), joined in
            // the chunk's transaction with what the store holds by then.
            let restricted = Doc {
                entities: target
                    .entities
                    .iter()
                    .filter(|(id, _)| scope.entities.contains(*id))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                edges: target
                    .edges
                    .iter()
                    .filter(|(k, _)| scope.edges.contains(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            };
            let (a, _) = write(store, |tx| {
                let snap = snapshot_as(tx, Some(scope), Some((full.node, full.stamp)))?;
                let target = target_of(&snap.doc, Some(&restricted));
                apply(tx, &snap, &target)
            })?;
            total.created.extend(a.created);
            total.changed.extend(a.changed);
            total.deleted.extend(a.deleted);
            total.edges_added += a.edges_added;
            total.edges_removed += a.edges_removed;
            total.edges_skipped += a.edges_skipped;
            total.lost_claims.extend(a.lost_claims);
        }
        // What other writers changed meanwhile is in the store, stamped by a
        // chunk's snapshot or left for the next export: the document returned
        // is the merge as read, which the store holds or has moved past.
        Ok((total, target))
    }
}

/// The store's state as a tracked file's document, its clocks recorded in the
/// store (so exporting twice gives the same bytes).
pub fn export(store: &Store) -> Result<Doc> {
    merge_in(store, None, 0).map(|(_, d)| d)
}

/// [`export`], dropping tombstones whose clock is below `cutoff_ms` from the
/// document and from the store's base (sync's retention).
pub fn export_dropping(store: &Store, cutoff_ms: u64) -> Result<Doc> {
    merge_in(store, None, cutoff_ms).map(|(_, d)| d)
}

/// [`import`], dropping tombstones whose clock is below `cutoff_ms` (sync's
/// retention).
pub fn import_dropping(store: &Store, other: &Doc, cutoff_ms: u64) -> Result<(Applied, Doc)> {
    merge_in(store, Some(other), cutoff_ms)
}

const FILE: &str = "sync/file";

fn file_mark(bytes: &[u8]) -> String {
    format!("{:08x} {}", crc32fast::hash(bytes), bytes.len())
}

/// Whether `bytes` are the tracked file this store last wrote or read whole
/// (then importing them changes nothing: the store's base holds all of it).
pub fn file_recorded(store: &Store, bytes: &[u8]) -> Result<bool> {
    let mut tx = store.begin()?;
    Ok(tx
        .get_meta(FILE)?
        .is_some_and(|m| *m == *file_mark(bytes).as_bytes()))
}

/// Records `bytes` as the tracked file the store's base holds.
pub fn record_file(store: &Store, bytes: &[u8]) -> Result<()> {
    let mark = file_mark(bytes);
    write(store, |tx| {
        if tx.get_meta(FILE)?.is_some_and(|m| *m == *mark.as_bytes()) {
            return Ok(());
        }
        tx.put_meta(FILE, mark.as_bytes())
    })
}

/// Merges another replica's document into the store: field by field whatever
/// is newer (an older file changes nothing). Returns what changed and the merged
/// document.
pub fn import(store: &Store, other: &Doc) -> Result<(Applied, Doc)> {
    merge_in(store, Some(other), 0)
}
