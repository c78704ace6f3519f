//! What the importers of other tools' files share: the records they read, as
//! got entities and edges each with the time of its last change, imported
//! through sync's one merge (field by field the newer wins). So importing a
//! file twice changes nothing, importing an older one changes nothing, a newer
//! one changes what changed, an edit made in got after the import is kept, and a
//! deletion (a beads tombstone) absorbs every live copy of its record.
//!
//! Each record's clock is the source's own change time (milliseconds), counter
//! 0, and a node id fixed per tool ([`BEADS`], [`GOT_JSON`]): two machines that
//! import the same file make the same clocks, and their stores merge cleanly.

use crate::sync::doc::{Body, Doc, EdgeDoc, EntityDoc};
use crate::sync::replica::{entity_doc_at, Applied};
use crate::sync::Hlc;
use crate::{Entity, Props, Result, Store};
use std::collections::{BTreeMap, BTreeSet};

/// The node id of records imported from beads.
pub const BEADS: u64 = 0x6265_6164_7300_0001;
/// The node id of records imported from the GoT JSON store.
pub const GOT_JSON: u64 = 0x676f_746a_736f_0001;

/// One record of another tool, as got will hold it.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub id: String,
    pub kind: String,
    pub props: Props,
    /// Unix milliseconds.
    pub created_at: i64,
    /// When the source last changed it (Unix milliseconds): the clock of
    /// every field.
    pub changed_at: i64,
}

/// A relation between two records.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    pub from: String,
    pub kind: String,
    pub to: String,
    pub props: Props,
    pub at: i64,
}

/// What one tool's files hold, mapped onto got's schema.
#[derive(Clone, Debug, Default)]
pub struct Foreign {
    pub records: BTreeMap<String, Record>,
    /// Deleted records: id → (kind, created at, deleted at).
    pub deletions: BTreeMap<String, (String, i64, i64)>,
    pub links: Vec<Link>,
}

fn clock(ms: i64, node: u64) -> Hlc {
    Hlc {
        ms: ms.max(0) as u64,
        counter: 0,
        node,
    }
}

/// An edge whose end is neither among the records nor in the store: skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dangling {
    pub from: String,
    pub kind: String,
    pub to: String,
    /// The end that is missing.
    pub missing: String,
}

impl Foreign {
    /// The records as a document with clocks of `node`, without the links
    /// whose ends are missing (returned).
    pub fn to_doc(&self, store: &Store, node: u64) -> Result<(Doc, Vec<Dangling>)> {
        let mut doc = Doc::default();
        for (id, r) in &self.records {
            if self.deletions.contains_key(id) {
                continue;
            }
            let e = Entity {
                id: id.clone(),
                kind: r.kind.clone(),
                version: 1,
                props: r.props.clone(),
                created_at: r.created_at,
                updated_at: r.changed_at,
            };
            doc.entities
                .insert(id.clone(), entity_doc_at(&e, clock(r.changed_at, node)));
        }
        for (id, (kind, created_at, at)) in &self.deletions {
            doc.entities.insert(
                id.clone(),
                EntityDoc {
                    kind: kind.clone(),
                    created_at: *created_at,
                    body: Body::Deleted(clock(*at, node)),
                },
            );
        }
        let mut dangling = Vec::new();
        let mut tx = store.begin()?;
        let mut in_store: BTreeMap<String, bool> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for l in &self.links {
            let mut missing = None;
            for end in [&l.from, &l.to] {
                let here = match doc.entities.get(end.as_str()).map(|e| &e.body) {
                    Some(Body::Live(_)) => true,
                    // An edge of a deleted record goes with it.
                    Some(Body::Deleted(_)) => false,
                    None => match in_store.get(end.as_str()) {
                        Some(&b) => b,
                        None => {
                            let b = crate::versioned_store::model::check_id(end).is_ok()
                                && tx.get(end)?.is_some();
                            in_store.insert(end.clone(), b);
                            b
                        }
                    },
                };
                if !here && missing.is_none() {
                    missing = Some(end.clone());
                }
            }
            let key = (l.from.clone(), l.kind.clone(), l.to.clone());
            if let Some(m) = missing {
                if !self.deletions.contains_key(&m) {
                    dangling.push(Dangling {
                        from: l.from.clone(),
                        kind: l.kind.clone(),
                        to: l.to.clone(),
                        missing: m,
                    });
                }
                continue;
            }
            if !seen.insert(key.clone()) {
                continue;
            }
            let props = match crate::json::props_to_json(&l.props) {
                serde_json::Value::Object(m) => m,
                _ => serde_json::Map::new(),
            };
            doc.edges.insert(
                key,
                EdgeDoc {
                    at: clock(l.at, node),
                    present: true,
                    props,
                },
            );
        }
        Ok((doc, dangling))
    }

    /// Imports the records (see the module's comment); returns what changed in
    /// the store and the links skipped for a missing end.
    pub fn import(&self, store: &Store, node: u64) -> Result<(Applied, Vec<Dangling>)> {
        let (doc, dangling) = self.to_doc(store, node)?;
        let (applied, _) = crate::sync::exchange::import(store, &doc)?;
        Ok((applied, dangling))
    }
}
