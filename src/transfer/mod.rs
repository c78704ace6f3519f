//! Export and import: the store as JSON Lines, merge-friendly in git.
//!
//! One line per entity, then its out-edges, entities in id order and edges by
//! (kind, to); object keys sorted; the same state always gives the same bytes:
//!
//! ```text
//! {"created_at":…,"id":"T-…","kind":"task","props":{…},"type":"entity","updated_at":…,"version":3}
//! {"from":"T-…","kind":"depends_on","props":{},"to":"T-…","type":"edge"}
//! ```
//!
//! Import reads and checks the whole file before the first write, then commits in
//! batches. Entities carry their versions over: a line is written only when its
//! version is above the store's (a deletion counts), so importing twice changes
//! nothing and an import never rewinds; an equal version with other content is a
//! reported conflict. Edges are added when absent.

use crate::json::{from_json, props_to_json};
use crate::{Direction, Entity, Error, Props, Result, Store};
use serde_json::{json, Value as Json};
use std::collections::BTreeSet;
use std::io::Write;

pub mod beads;
pub mod foreign;
pub mod got_json;
pub mod migrate;
pub mod python_json;

/// Writes every live entity and edge as JSON Lines; returns (entities, edges).
pub fn export(store: &Store, out: &mut dyn Write) -> Result<(u64, u64)> {
    export_with_progress(store, out, &mut |_, _| {})
}

/// [`export`], calling `progress(entities written, entities)` as it goes.
pub fn export_with_progress(
    store: &Store,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(u64, u64)> {
    let mut tx = store.begin()?;
    let (mut entities, mut edges) = (0, 0);
    let io = |e: std::io::Error| {
        Error::Wal(crate::wal::Error::Io {
            path: "export output".into(),
            source: e,
        })
    };
    let all = tx.list(None, None)?;
    let total = all.len() as u64;
    for e in all {
        if entities % 256 == 0 {
            progress(entities, total);
        }
        let line = json!({
            "type": "entity",
            "id": e.id,
            "kind": e.kind,
            "version": e.version,
            "props": props_to_json(&e.props),
            "created_at": e.created_at,
            "updated_at": e.updated_at,
        });
        writeln!(out, "{line}").map_err(io)?;
        entities += 1;
        let mut out_edges = tx.edges(&e.id, Direction::Out, None)?;
        out_edges.sort_by(|a, b| (&a.kind, &a.to).cmp(&(&b.kind, &b.to)));
        for ed in out_edges {
            let line = json!({
                "type": "edge",
                "from": ed.from,
                "kind": ed.kind,
                "to": ed.to,
                "props": props_to_json(&ed.props),
            });
            writeln!(out, "{line}").map_err(io)?;
            edges += 1;
        }
    }
    progress(entities, total);
    Ok((entities, edges))
}

/// One parsed line of an import file.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Entity(Entity),
    Edge {
        from: String,
        kind: String,
        to: String,
        props: Props,
    },
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportReport {
    pub entities_written: u64,
    /// Already here at that version, or here at a higher one.
    pub entities_skipped: u64,
    pub edges_written: u64,
    pub edges_skipped: u64,
    /// Entities at an equal version with other content: not written.
    pub conflicts: Vec<String>,
}

pub(crate) fn bad(line: usize, msg: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("line {line}: {msg}"))
}

pub(crate) fn str_field(o: &serde_json::Map<String, Json>, k: &str, line: usize) -> Result<String> {
    match o.get(k) {
        Some(Json::String(s)) => Ok(s.clone()),
        _ => Err(bad(line, format!("\"{k}\" must be a string"))),
    }
}

fn props_field(o: &serde_json::Map<String, Json>, line: usize) -> Result<Props> {
    match o.get("props") {
        None => Ok(Props::new()),
        Some(Json::Object(p)) => Ok(p.iter().map(|(k, v)| (k.clone(), from_json(v))).collect()),
        Some(_) => Err(bad(line, "\"props\" must be an object")),
    }
}

/// Parses and checks a whole export file: every line an entity or an edge, ids
/// and kinds valid, no entity twice, every edge's ends in the file or the store.
pub fn parse(store: &Store, text: &str) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut ids = BTreeSet::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let j: Json = serde_json::from_str(raw).map_err(|e| bad(line, format!("not JSON: {e}")))?;
        let Json::Object(o) = j else {
            return Err(bad(line, "not a JSON object"));
        };
        match o.get("type").and_then(Json::as_str) {
            Some("entity") => {
                let id = str_field(&o, "id", line)?;
                let kind = str_field(&o, "kind", line)?;
                crate::versioned_store::model::check_id(&id).map_err(|e| bad(line, e))?;
                crate::versioned_store::model::check_kind(&kind).map_err(|e| bad(line, e))?;
                let max = crate::versioned_store::model::MAX_IMPORT_VERSION;
                let version = o
                    .get("version")
                    .and_then(Json::as_u64)
                    .filter(|v| (1..=max).contains(v))
                    .ok_or_else(|| {
                        bad(
                            line,
                            format!("\"version\" must be an integer from 1 to {max}"),
                        )
                    })?;
                let time = |k: &str| o.get(k).and_then(Json::as_i64).unwrap_or(0);
                if !ids.insert(id.clone()) {
                    return Err(bad(line, format!("entity {id} appears twice")));
                }
                items.push(Item::Entity(Entity {
                    id,
                    kind,
                    version,
                    props: props_field(&o, line)?,
                    created_at: time("created_at"),
                    updated_at: time("updated_at"),
                }));
            }
            Some("edge") => {
                let from = str_field(&o, "from", line)?;
                let kind = str_field(&o, "kind", line)?;
                let to = str_field(&o, "to", line)?;
                crate::versioned_store::model::check_kind(&kind).map_err(|e| bad(line, e))?;
                items.push(Item::Edge {
                    from,
                    kind,
                    to,
                    props: props_field(&o, line)?,
                });
            }
            _ => return Err(bad(line, "\"type\" must be \"entity\" or \"edge\"")),
        }
    }
    check(store, &items)?;
    Ok(items)
}

/// Checks items from any source before the first write: no entity twice, every
/// edge's ends among the items or in the store.
pub fn check(store: &Store, items: &[Item]) -> Result<()> {
    let mut ids = BTreeSet::new();
    for it in items {
        if let Item::Entity(e) = it {
            crate::check_kind_id(&e.kind, &e.id)?;
            if !ids.insert(e.id.as_str()) {
                return Err(Error::Invalid(format!("entity {} appears twice", e.id)));
            }
        }
    }
    let mut tx = store.begin()?;
    for it in items {
        if let Item::Edge { from, kind, to, .. } = it {
            for end in [from, to] {
                if !ids.contains(end.as_str()) && tx.get(end).ok().flatten().is_none() {
                    return Err(Error::Invalid(format!(
                        "edge {from} -{kind}-> {to}: {end} is neither in the file nor in the store"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Imports checked items, `batch` per transaction; `progress(done, total)` after
/// each batch.
pub fn import(
    store: &Store,
    items: &[Item],
    batch: usize,
    mut progress: impl FnMut(usize, usize),
) -> Result<ImportReport> {
    let mut rep = ImportReport::default();
    // Entities first, so every edge finds its ends.
    let (entities, edges): (Vec<&Item>, Vec<&Item>) =
        items.iter().partition(|i| matches!(i, Item::Entity(_)));
    let ordered: Vec<&Item> = entities.into_iter().chain(edges).collect();
    let total = ordered.len();
    for (n, chunk) in ordered.chunks(batch.max(1)).enumerate() {
        let r = crate::tasks::write(store, |tx| {
            let mut r = ImportReport::default();
            for it in chunk {
                match it {
                    Item::Entity(e) => match tx.import_entity(e) {
                        Ok(true) => r.entities_written += 1,
                        Ok(false) => r.entities_skipped += 1,
                        Err(Error::Conflict(m)) => r.conflicts.push(m),
                        Err(e) => return Err(e),
                    },
                    Item::Edge {
                        from,
                        kind,
                        to,
                        props,
                    } => {
                        let exists = tx
                            .edges(from, Direction::Out, Some(kind))?
                            .iter()
                            .any(|e| &e.to == to);
                        if exists {
                            r.edges_skipped += 1;
                        } else {
                            tx.add_edge(from, kind, to, props.clone())?;
                            r.edges_written += 1;
                        }
                    }
                }
            }
            Ok(r)
        })?;
        rep.entities_written += r.entities_written;
        rep.entities_skipped += r.entities_skipped;
        rep.edges_written += r.edges_written;
        rep.edges_skipped += r.edges_skipped;
        rep.conflicts.extend(r.conflicts);
        progress(((n + 1) * batch.max(1)).min(total), total);
    }
    Ok(rep)
}

/// Milliseconds since the epoch of an RFC 3339 / ISO 8601 time
/// (`2025-10-01T12:00:00Z`, fractions and offsets allowed).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    crate::versioned_store::time::parse_ms(s)
}
