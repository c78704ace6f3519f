//! Exporting and importing a whole store's document: the merge computed from
//! one read of the store, then written in chunks that fit a WAL frame, each
//! record's data with its base (see [`super::replica`]), and the mark of the
//! tracked file sync wrote last.

use super::doc::{edge_line, entity_line, Body, Doc, EdgeKey, ParseError, FORMAT_VERSION};
use super::merge::{keyed_lines, LineKey};
use super::replica::{apply, note_lost_claims, snapshot, snapshot_as, Applied, Reads, Scope};
use crate::{Error, Result, Store, Transaction};
use std::collections::BTreeMap;

/// Runs `f` in a transaction and commits, again from a fresh snapshot while the
/// commit loses a race to another writer.
fn write<T>(store: &Store, f: impl FnMut(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
    crate::tasks::write(store, f)
}

/// At most this many records per transaction when a merge writes many (and at
/// most a quarter of a segment's bytes, see `chunk_bytes`): one transaction of
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

/// Another replica's document, as [`merge_in`] reads it.
enum Incoming<'a> {
    /// A file as got writes it: its records' lines in key order, with their
    /// line numbers. A line equal to the store's base line for its record (when
    /// the store did not change that record either) is not read at all.
    Lines(Vec<(LineKey<'a>, &'a str, usize)>),
    /// A document read whole.
    Doc(&'a Doc),
}

/// Why a tracked file was not imported.
#[derive(Debug)]
pub enum ImportError {
    /// A line of it cannot be read (the store is unchanged).
    Parse(ParseError),
    Store(Error),
}

impl From<Error> for ImportError {
    fn from(e: Error) -> Self {
        ImportError::Store(e)
    }
}

/// What a merge left the store holding: the records it read, merged, and the
/// lines of those it did not need to read (unchanged on both sides).
#[derive(Clone, Debug, Default)]
pub struct Merged {
    /// The records read and merged.
    pub doc: Doc,
    /// Entities unchanged everywhere since the store recorded them: id → line.
    pub unchanged: BTreeMap<String, String>,
}

impl Merged {
    /// The tracked file's bytes: what `to_bytes` of the whole document gives
    /// (every record's line in key order), without reading the unchanged ones.
    pub fn to_bytes(&self) -> Vec<u8> {
        let size: usize = self.unchanged.values().map(|l| l.len() + 1).sum();
        let mut out = String::with_capacity(size + 300 * (self.doc.entities.len() + 1));
        out.push_str(&format!("{{\"got_tracked\":{FORMAT_VERSION}}}\n"));
        let mut read = self.doc.entities.iter().peekable();
        let mut kept = self.unchanged.iter().peekable();
        loop {
            let take_read = match (read.peek(), kept.peek()) {
                (Some((a, _)), Some((b, _))) => a < b,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if take_read {
                let (id, e) = read.next().expect("peeked");
                out.push_str(&entity_line(id, e));
            } else {
                out.push_str(kept.next().expect("peeked").1);
            }
            out.push('\n');
        }
        for (k, e) in &self.doc.edges {
            out.push_str(&edge_line(k, e));
            out.push('\n');
        }
        out.into_bytes()
    }

    /// The whole document (the unchanged lines read).
    pub fn into_doc(self) -> Result<Doc> {
        let mut doc = self.doc;
        for (id, line) in &self.unchanged {
            doc.insert_line(line)
                .map_err(|m| Error::Invalid(format!("the base line of {id}: {m}")))?;
        }
        Ok(doc)
    }
}

/// Merges `other` (`None`: nothing, just record the store's own changes) into
/// the store in chunks, keeping tombstones from `cutoff_ms` on (0: all). Returns
/// what changed and what the store now is.
fn merge_in(
    store: &Store,
    other: Option<&Incoming<'_>>,
    cutoff_ms: u64,
) -> std::result::Result<(Applied, Merged), ImportError> {
    let target_of = |local: &Doc, other: &Doc| {
        // Merged even with nothing, so the store records its own state as every
        // merge makes it (an edge of a deleted entity removed at the deletion).
        let mut t = super::merge(local, other);
        note_lost_claims(&mut t);
        t.drop_tombstones(cutoff_ms);
        t
    };
    let mut total = Applied::default();
    // The whole picture, read only, to find the records to write. Records
    // unchanged here and in `other` are not read: the merge of a record with
    // itself is that record.
    let (full, target) = {
        let mut tx = store.begin()?;
        let lines: BTreeMap<&str, &str> = match other {
            Some(Incoming::Lines(l)) => l
                .iter()
                .filter_map(|(k, line, _)| match k {
                    LineKey::Entity(id) => Some((*id, *line)),
                    LineKey::Edge(..) => None,
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        let changed_elsewhere = |id: &str, line: &str| match other {
            Some(Incoming::Doc(d)) => d.entities.contains_key(id),
            _ => lines.get(id).is_some_and(|l| *l != line),
        };
        let snap = snapshot(&mut tx, Reads::Whole(&changed_elsewhere))?;
        let theirs = match other {
            None => Doc::default(),
            Some(Incoming::Doc(d)) => (*d).clone(),
            Some(Incoming::Lines(l)) => {
                let mut d = Doc::default();
                for (k, line, n) in l {
                    let known = match k {
                        LineKey::Entity(id) => snap.unchanged.contains_key(*id),
                        LineKey::Edge(from, kind, to) => {
                            let key = (from.to_string(), kind.to_string(), to.to_string());
                            match (snap.doc.edges.get(&key), snap.base.edges.get(&key)) {
                                (Some(a), Some(b)) => a == b && edge_line(&key, b) == *line,
                                _ => false,
                            }
                        }
                    };
                    if !known {
                        d.insert_line(line).map_err(|message| {
                            ImportError::Parse(ParseError { line: *n, message })
                        })?;
                    }
                }
                d
            }
        };
        let target = target_of(&snap.doc, &theirs);
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
        debug_assert!(!full.unchanged.contains_key(id), "{id} read and unread");
        let t = target.entities.get(id);
        // A tombstone absorbs an entity made again under its id: the store
        // deletes it too.
        let revived =
            full.live.contains(id) && matches!(t.map(|t| &t.body), Some(Body::Deleted(_)));
        if full.base.entities.get(id) != t || revived || full.stale.contains(id) {
            let line = t.map_or(0, |t| entity_line(id, t).len());
            scope_e.push((id.clone(), cost(line)));
        }
    }
    let mut scope_d: Vec<(EdgeKey, usize)> = Vec::new();
    let keys: std::collections::BTreeSet<&EdgeKey> =
        full.base.edges.keys().chain(target.edges.keys()).collect();
    for k in keys {
        let t = target.edges.get(k);
        if full.base.edges.get(k) != t {
            let line = t.map_or(0, |t| edge_line(k, t).len());
            scope_d.push((k.clone(), cost(line)));
        }
    }
    let merged = |target| Merged {
        doc: target,
        unchanged: full.unchanged.clone(),
    };
    if scope_e.is_empty() && scope_d.is_empty() && !full.node_is_new {
        return Ok((total, merged(target)));
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
            let snap = snapshot_as(tx, Reads::Scope(scope), Some((full.node, full.stamp)))?;
            let target = target_of(&snap.doc, &restricted);
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
    Ok((total, merged(target)))
}

fn store_error(e: ImportError) -> Error {
    match e {
        ImportError::Store(e) => e,
        ImportError::Parse(p) => Error::Invalid(format!("line {}: {}", p.line, p.message)),
    }
}

/// The store's state as a tracked file's document, its clocks recorded in the
/// store (so exporting twice gives the same bytes).
pub fn export(store: &Store) -> Result<Doc> {
    merge_in(store, None, 0).map_err(store_error)?.1.into_doc()
}

/// The store's state as the tracked file ([`Merged::to_bytes`]), dropping
/// tombstones whose clock is below `cutoff_ms` from it and from the store's
/// base (sync's retention).
pub fn export_file(store: &Store, cutoff_ms: u64) -> Result<Merged> {
    merge_in(store, None, cutoff_ms)
        .map(|(_, m)| m)
        .map_err(store_error)
}

/// Merges a tracked file into the store, dropping tombstones whose clock is
/// below `cutoff_ms` (sync's retention); a line that cannot be read is an error
/// and the store is left unchanged. A file as got writes it is merged line by
/// line: only the records whose lines differ from the store's base are read.
pub fn import_file(
    store: &Store,
    bytes: &[u8],
    cutoff_ms: u64,
) -> std::result::Result<(Applied, Merged), ImportError> {
    let header = format!("{{\"got_tracked\":{FORMAT_VERSION}}}");
    let lines = std::str::from_utf8(bytes)
        .ok()
        .and_then(|t| keyed_lines(t, &header));
    match lines {
        Some(l) => merge_in(store, Some(&Incoming::Lines(l)), cutoff_ms),
        None => {
            let doc = Doc::parse(bytes).map_err(ImportError::Parse)?;
            merge_in(store, Some(&Incoming::Doc(&doc)), cutoff_ms)
        }
    }
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
    let (a, m) = merge_in(store, Some(&Incoming::Doc(other)), 0).map_err(store_error)?;
    Ok((a, m.into_doc()?))
}
