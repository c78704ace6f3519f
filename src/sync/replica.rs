//! A store as a replica: the [`Doc`] its state is, with clocks, and the way
//! back from a merged `Doc` into the store.
//!
//! The store keeps, in meta records written in the same transaction as the
//! entities they describe, the document as of the last export or import (its
//! *base*): `sync/e/<id>` and `sync/d/<from> <kind> <to>` hold the record lines,
//! `sync/node` the store's node id and `sync/hlc` the highest clock it has
//! issued or seen. A field whose value in the store differs from its base was
//! changed here since: it gets a new clock, one per snapshot, above every clock
//! the store has seen (so an edit made after seeing another clone's wins over
//! it). A field that equals its base keeps the base's clock — a stale replica
//! carries old clocks and so never overrides a newer edit. Because data and base
//! commit together, a crash leaves both from before or both from after.

use super::doc::{canonical, Body, Claim, Doc, EdgeDoc, EdgeKey, Elem, EntityDoc, Field, Holder};
use super::hlc::Hlc;
use crate::json::{from_json, props_to_json, to_json};
use crate::{Direction, Entity, Error, Props, Result, Transaction, Value};
use serde_json::{Map, Value as Json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const NODE: &str = "sync/node";
const LAST: &str = "sync/hlc";
const ENTITY: &str = "sync/e/";
const EDGE: &str = "sync/d/";

/// The name of a task's work field (status, assignee and lease as one value).
const WORK: &str = "status";
/// The task properties the work field holds.
const WORK_PROPS: [&str; 3] = ["status", "assignee", "lease_expires_at"];

/// A task's work state as the store holds it: its status and who holds it.
type Work = (Option<String>, Option<Holder>);

fn work_of(kind: &str, props: &Props) -> Option<Work> {
    if kind != crate::tasks::KIND {
        return None;
    }
    let status = props
        .get("status")
        .and_then(Value::as_str)
        .map(str::to_string);
    let agent = props
        .get("assignee")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty());
    let lease = match props.get("lease_expires_at") {
        Some(Value::Int(t)) => Some(*t),
        Some(Value::Float(t)) => Some(*t as i64),
        _ => None,
    };
    Some((
        status,
        agent.map(|a| Holder {
            agent: a.to_string(),
            lease,
        }),
    ))
}

/// The rule a property follows (docs/sync.md): labels a set, notes a log, a
/// task's claim its own field; everything else a register.
enum Shape {
    Reg(Option<Json>),
    Set(Vec<String>),
    Log(Vec<Json>),
}

fn shapes(kind: &str, props: &Props) -> BTreeMap<String, Shape> {
    let task = kind == crate::tasks::KIND;
    let mut out = BTreeMap::new();
    for (name, v) in props {
        if task && WORK_PROPS.contains(&name.as_str()) {
            continue;
        }
        let shape = match (name.as_str(), v) {
            ("labels", Value::List(l)) if l.iter().all(|x| x.as_str().is_some()) => Shape::Set(
                l.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
            ),
            ("notes", Value::List(l)) => Shape::Log(l.iter().map(to_json).collect()),
            _ => Shape::Reg(Some(to_json(v))),
        };
        out.insert(name.clone(), shape);
    }
    out
}

/// The field a property's value makes, given what the base had for it: the
/// base's field when nothing changed, else one stamped `now`.
fn field_of(
    shape: Option<&Shape>,
    base: Option<&Field>,
    now: &mut impl FnMut() -> Hlc,
) -> Option<Field> {
    match (shape, base) {
        (None, None) => None,
        // Gone from the store: a removal, unless the base already has one.
        (None, Some(Field::Reg { value: None, .. })) => base.cloned(),
        (None, Some(Field::Set(elems))) => {
            let mut elems = elems.clone();
            for e in elems.values_mut() {
                if e.present {
                    *e = Elem {
                        at: now(),
                        present: false,
                    };
                }
            }
            Some(Field::Set(elems))
        }
        // Notes are never lost: a log the store no longer has stays as it was.
        (None, Some(Field::Log(_))) => base.cloned(),
        (None, Some(_)) => Some(Field::Reg {
            at: now(),
            value: None,
        }),
        (Some(Shape::Reg(v)), Some(Field::Reg { value, .. })) if value == v => base.cloned(),
        (Some(Shape::Reg(v)), _) => Some(Field::Reg {
            at: now(),
            value: v.clone(),
        }),
        (Some(Shape::Set(labels)), b) => {
            let mut elems = match b {
                Some(Field::Set(e)) => e.clone(),
                _ => BTreeMap::new(),
            };
            for (l, e) in elems.iter_mut() {
                let here = labels.contains(l);
                if e.present != here {
                    *e = Elem {
                        at: now(),
                        present: here,
                    };
                }
            }
            for l in labels {
                if !elems.contains_key(l) {
                    elems.insert(
                        l.clone(),
                        Elem {
                            at: now(),
                            present: true,
                        },
                    );
                }
            }
            Some(Field::Set(elems))
        }
        (Some(Shape::Log(items)), b) => {
            let mut log = match b {
                Some(Field::Log(l)) => l.clone(),
                _ => BTreeMap::new(),
            };
            for v in items {
                log.insert(canonical(v), v.clone());
            }
            Some(Field::Log(log))
        }
    }
}

/// The work field for `work`, given the base's: the base's when unchanged; a
/// claim when a free task was taken (same epoch); else a move (next epoch).
fn claim_of(work: Work, base: Option<&Field>, now: &mut impl FnMut() -> Hlc) -> Field {
    use super::doc::Step;
    let (status, holder) = work;
    let base = match base {
        Some(Field::Claim(c)) => Some(c),
        _ => None,
    };
    match base {
        Some(c) if c.status == status && c.holder == holder => Field::Claim(c.clone()),
        // A free task taken and nothing more (a claim, perhaps started): one of
        // the claims of that state. Taken and already finished, or blocked, is a
        // move on, which beats every claim of the state it left.
        Some(c)
            if c.holder.is_none()
                && holder.is_some()
                && status.as_deref() == Some("in_progress") =>
        {
            Field::Claim(Claim {
                epoch: c.epoch,
                at: now(),
                step: Step::Claim,
                status,
                holder,
                lost: Default::default(),
            })
        }
        Some(c) => Field::Claim(Claim {
            epoch: c.epoch + 1,
            at: now(),
            step: Step::Move,
            status,
            holder,
            lost: Default::default(),
        }),
        None => Field::Claim(Claim {
            epoch: 0,
            at: now(),
            step: Step::Move,
            status,
            holder,
            lost: Default::default(),
        }),
    }
}

/// An entity as a record whose every field was set at `at`: how an importer
/// of another tool's files gives each record the clock of its last change.
pub fn entity_doc_at(e: &Entity, at: Hlc) -> EntityDoc {
    entity_doc(e, None, &mut || at)
}

fn entity_doc(e: &Entity, base: Option<&EntityDoc>, now: &mut impl FnMut() -> Hlc) -> EntityDoc {
    let empty = BTreeMap::new();
    let base_fields = match base.map(|b| &b.body) {
        Some(Body::Live(f)) => f,
        _ => &empty,
    };
    let shapes = shapes(&e.kind, &e.props);
    let mut fields = BTreeMap::new();
    let mut names: Vec<&String> = shapes.keys().chain(base_fields.keys()).collect();
    names.sort();
    names.dedup();
    let work = work_of(&e.kind, &e.props);
    for name in names {
        if work.is_some() && WORK_PROPS.contains(&name.as_str()) {
            continue;
        }
        if let Some(f) = field_of(shapes.get(name), base_fields.get(name), now) {
            fields.insert(name.clone(), f);
        }
    }
    if let Some(w) = work {
        fields.insert(WORK.into(), claim_of(w, base_fields.get(WORK), now));
    }
    EntityDoc {
        kind: e.kind.clone(),
        created_at: base.map_or(e.created_at, |b| b.created_at.min(e.created_at)),
        body: Body::Live(fields),
    }
}

/// The props a live entity's fields make in the store.
fn props_of(kind: &str, fields: &BTreeMap<String, Field>) -> Props {
    let mut p = Props::new();
    for (name, f) in fields {
        match f {
            Field::Reg { value: Some(v), .. } => {
                p.insert(name.clone(), from_json(v));
            }
            Field::Reg { value: None, .. } => {}
            Field::Set(elems) => {
                let labels: Vec<Value> = elems
                    .iter()
                    .filter(|(_, e)| e.present)
                    .map(|(l, _)| Value::String(l.clone()))
                    .collect();
                if !labels.is_empty() {
                    p.insert(name.clone(), Value::List(labels));
                }
            }
            Field::Log(items) => {
                p.insert(
                    name.clone(),
                    Value::List(items.values().map(from_json).collect()),
                );
            }
            Field::Claim(c) => {
                if kind != crate::tasks::KIND || name != WORK {
                    continue;
                }
                if let Some(st) = &c.status {
                    p.insert("status".into(), Value::String(st.clone()));
                }
                if let Some(h) = &c.holder {
                    p.insert("assignee".into(), Value::String(h.agent.clone()));
                    if let Some(l) = h.lease {
                        p.insert("lease_expires_at".into(), Value::Int(l));
                    }
                }
            }
        }
    }
    p
}

fn edge_name((from, kind, to): &EdgeKey) -> String {
    format!("{EDGE}{from} {kind} {to}")
}

/// This store's node id, made (random) the first time.
fn node_id(tx: &mut Transaction<'_>) -> Result<(u64, bool)> {
    if let Some(b) = tx.get_meta(NODE)? {
        let s = String::from_utf8_lossy(&b);
        return u64::from_str_radix(&s, 16)
            .map(|n| (n, false))
            .map_err(|_| Error::Invalid(format!("meta record {NODE} holds {s:?}, not a node id")));
    }
    Ok((crate::versioned_store::store::random_u64() | 1, true))
}

/// What the store holds, as a document, and what it takes to record it.
pub struct Snapshot {
    /// The store's state with its clocks (local changes stamped): the records
    /// read, which are all but those in `unchanged`.
    pub doc: Doc,
    /// The base it was computed against (the same records).
    pub base: Doc,
    /// Records left as their base lines, unread: live entities not written
    /// since their line was recorded (see [`Reads::Whole`]). Both `doc` and
    /// `base` hold them as these lines say.
    pub unchanged: BTreeMap<String, String>,
    /// Entities read whose base line was recorded at another version than the
    /// store's (or at none): their line is recorded again, with the version,
    /// so the next snapshot need not read them.
    pub(super) stale: BTreeSet<String>,
    /// The version each base line read was recorded at.
    versions: BTreeMap<String, u64>,
    pub(super) node: u64,
    pub(super) node_is_new: bool,
    /// The highest clock issued or seen, and what `sync/hlc` holds.
    last: Hlc,
    stored_last: Hlc,
    pub(super) stamp: Option<Hlc>,
    /// The ids live in the store.
    pub(super) live: BTreeSet<String>,
}

/// A base record: the entity version it was recorded at, if any (`<version>
/// <line>`; records of deletions, edges, and those of earlier releases are the
/// bare line), and its line.
fn split_record(s: &str) -> (Option<u64>, &str) {
    match s.split_once(' ') {
        Some((v, line)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            (v.parse().ok(), line)
        }
        _ => (None, s),
    }
}

/// The record of `line` recorded at `version`.
fn record_of(version: Option<u64>, line: String) -> String {
    match version {
        Some(v) => format!("{v} {line}"),
        None => line,
    }
}

/// Whether an entity's line may hold something the retention drops (a
/// deletion, a removed label): such lines are always read. A false yes only
/// costs the read (the patterns cannot occur inside a JSON string, whose quotes
/// are escaped, but can as a property's own name).
fn may_hold_tombstone(line: &str) -> bool {
    line.contains(",\"deleted\":\"") || line.contains("\"rm\":{\"")
}

/// The base's record lines, read on two threads when there are many (reading
/// them is most of a snapshot's time when many changed). Each record has its
/// own key, so the halves join without overlap. Returns the document and the
/// version each entity's line was recorded at.
fn parse_base(records: &[(String, Arc<[u8]>)]) -> Result<(Doc, BTreeMap<String, u64>)> {
    let parse = |part: &[(String, Arc<[u8]>)]| -> Result<(Doc, BTreeMap<String, u64>)> {
        let mut d = Doc::default();
        let mut versions = BTreeMap::new();
        for (name, raw) in part {
            let text = String::from_utf8_lossy(raw);
            let (version, line) = split_record(&text);
            d.insert_line(line)
                .map_err(|m| Error::Invalid(format!("meta record {name}: {m}")))?;
            if let (Some(v), Some(id)) = (version, name.strip_prefix(ENTITY)) {
                versions.insert(id.to_string(), v);
            }
        }
        Ok((d, versions))
    };
    if records.len() < 512 {
        return parse(records);
    }
    let (a, b) = records.split_at(records.len() / 2);
    let (ra, rb) = std::thread::scope(|sc| {
        let hb = sc.spawn(|| parse(b));
        let ra = parse(a);
        (ra, hb.join().expect("parsing the base does not panic"))
    });
    let ((mut da, mut va), (db, vb)) = (ra?, rb?);
    da.entities.extend(db.entities);
    da.edges.extend(db.edges);
    va.extend(vb);
    Ok((da, va))
}

/// Which records a snapshot reads: all of them, or these entities and edges.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub entities: BTreeSet<String>,
    pub edges: BTreeSet<EdgeKey>,
}

/// The records a snapshot reads.
#[derive(Clone, Copy)]
pub enum Reads<'a> {
    /// The whole store. A live entity whose version is the one its base line
    /// was recorded at has not changed here since (the version rises with every
    /// committed change): its line is left as it is, in
    /// [`Snapshot::unchanged`], unless `changed_elsewhere(id, line)` says the
    /// replica it is merged with holds another line for it, or the line may
    /// hold a tombstone. Edges are all read.
    Whole(&'a dyn Fn(&str, &str) -> bool),
    /// These entities and edges alone (the rest of the document is left out).
    Scope(&'a Scope),
}

/// The store as of `tx`'s snapshot, as a document: the base, with every change
/// made here since stamped with one new clock.
pub fn snapshot(tx: &mut Transaction<'_>, reads: Reads<'_>) -> Result<Snapshot> {
    snapshot_as(tx, reads, None)
}

/// [`snapshot`], stamping as an earlier snapshot did (its node id, and its
/// stamp for changes made here): the chunks of one merge record the clocks the
/// merge was computed with.
pub(super) fn snapshot_as(
    tx: &mut Transaction<'_>,
    reads: Reads<'_>,
    like: Option<(u64, Option<Hlc>)>,
) -> Result<Snapshot> {
    let (mut node, node_is_new) = node_id(tx)?;
    if let (true, Some((n, _))) = (node_is_new, like) {
        node = n;
    }
    let stored_last = match tx.get_meta(LAST)? {
        Some(b) => Hlc::parse(&String::from_utf8_lossy(&b)).unwrap_or(Hlc::ZERO),
        None => Hlc::ZERO,
    };
    // Every clock of a base line is at most `sync/hlc`, which is written with
    // the lines; the lines read are checked against it anyway.
    let mut last = stored_last;
    let mut entities = Vec::new();
    let mut unchanged = BTreeMap::new();
    let mut live = BTreeSet::new();
    let mut edges_here = BTreeMap::new();
    let edge_of = |edge: crate::Edge, edges_here: &mut BTreeMap<EdgeKey, Map<String, Json>>| {
        let props = match props_to_json(&edge.props) {
            Json::Object(m) => m,
            _ => Map::new(),
        };
        edges_here.insert((edge.from, edge.kind, edge.to), props);
    };
    let mut records = Vec::new();
    match reads {
        Reads::Whole(changed_elsewhere) => {
            let all = tx.list(None, None)?;
            let version: BTreeMap<&str, u64> =
                all.iter().map(|e| (e.id.as_str(), e.version)).collect();
            for (name, raw) in tx.meta_with_prefix(ENTITY)? {
                let id = &name[ENTITY.len()..];
                let same = match std::str::from_utf8(&raw).map(split_record) {
                    Ok((Some(v), line)) => {
                        version.get(id) == Some(&v)
                            && !may_hold_tombstone(line)
                            && !changed_elsewhere(id, line)
                    }
                    _ => false,
                };
                if same {
                    let text = std::str::from_utf8(&raw).expect("checked above");
                    unchanged.insert(id.to_string(), split_record(text).1.to_string());
                } else {
                    records.push((name, raw));
                }
            }
            drop(version);
            for e in all {
                live.insert(e.id.clone());
                if !unchanged.contains_key(&e.id) {
                    entities.push(e);
                }
            }
            records.extend(tx.meta_with_prefix(EDGE)?);
            for edge in tx.all_edges()? {
                edge_of(edge, &mut edges_here);
            }
        }
        Reads::Scope(sc) => {
            for id in &sc.entities {
                let name = format!("{ENTITY}{id}");
                if let Some(line) = tx.get_meta(&name)? {
                    records.push((name, line));
                }
                if let Some(e) = tx.get(id)? {
                    live.insert(e.id.clone());
                    entities.push(e);
                }
            }
            for k in &sc.edges {
                let name = edge_name(k);
                if let Some(line) = tx.get_meta(&name)? {
                    records.push((name, line));
                }
                let (from, kind, to) = k;
                if crate::versioned_store::model::check_id(from).is_err() {
                    continue;
                }
                for edge in tx.edges(from, Direction::Out, Some(kind))? {
                    if edge.to == *to {
                        edge_of(edge, &mut edges_here);
                    }
                }
            }
        }
    }
    let (base, versions) = parse_base(&records)?;
    last = last.max(base.max_clock());
    let wall = tx.time_ms().max(0) as u64;
    let mut stamp: Option<Hlc> = like.and_then(|(_, s)| s);
    let mut now = || *stamp.get_or_insert_with(|| Hlc::tick(last, wall, node));
    let mut doc = Doc::default();
    let mut stale = BTreeSet::new();
    for e in &entities {
        let b = base.entities.get(&e.id);
        let d = match b {
            Some(
                b @ EntityDoc {
                    body: Body::Deleted(_),
                    ..
                },
            ) => b.clone(),
            _ => entity_doc(e, b, &mut now),
        };
        if b.is_some() && versions.get(&e.id) != Some(&e.version) {
            stale.insert(e.id.clone());
        }
        doc.entities.insert(e.id.clone(), d);
    }
    for (id, b) in &base.entities {
        if live.contains(id) {
            continue;
        }
        let d = match b.body {
            Body::Deleted(_) => b.clone(),
            Body::Live(_) => EntityDoc {
                kind: b.kind.clone(),
                created_at: b.created_at,
                body: Body::Deleted(now()),
            },
        };
        doc.entities.insert(id.clone(), d);
    }
    for (k, props) in &edges_here {
        let d = match base.edges.get(k) {
            Some(b) if b.present && b.props == *props => b.clone(),
            _ => EdgeDoc {
                at: now(),
                present: true,
                props: props.clone(),
            },
        };
        doc.edges.insert(k.clone(), d);
    }
    for (k, b) in &base.edges {
        if edges_here.contains_key(k) {
            continue;
        }
        let d = if b.present {
            EdgeDoc {
                at: now(),
                present: false,
                props: Map::new(),
            }
        } else {
            b.clone()
        };
        doc.edges.insert(k.clone(), d);
    }
    if let Some(s) = stamp {
        last = last.max(s);
    }
    Ok(Snapshot {
        doc,
        base,
        unchanged,
        stale,
        versions,
        node,
        node_is_new,
        last,
        stored_last,
        stamp,
        live,
    })
}

/// Gives each task a note of every claim its work state lost, the same note on
/// every clone (it says only who lost and when they claimed), so the notes
/// converge with the claims.
pub fn note_lost_claims(doc: &mut Doc) {
    for t in doc.entities.values_mut() {
        let Body::Live(fields) = &mut t.body else {
            continue;
        };
        let lost = match fields.get(WORK) {
            Some(Field::Claim(won)) if !won.lost.is_empty() => won.lost.clone(),
            _ => continue,
        };
        let log = fields
            .entry("notes".into())
            .or_insert(Field::Log(BTreeMap::new()));
        let Field::Log(notes) = log else {
            continue;
        };
        for (agent, at) in lost {
            let note = serde_json::json!({
                "at": at.ms,
                "author": "got sync",
                "text": format!("claim of {agent} lost: another clone claimed the task earlier"),
            });
            notes.insert(canonical(&note), note);
        }
    }
}

/// What [`apply`] changed in the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub created: Vec<String>,
    pub changed: Vec<String>,
    pub deleted: Vec<String>,
    pub edges_added: usize,
    pub edges_removed: usize,
    /// Claims this store's agents held that the merge gave to another:
    /// `(task, lost by, won by)`.
    pub lost_claims: Vec<(String, String, Option<String>)>,
    /// Edges the merge holds whose ends are not both in the store.
    pub edges_skipped: usize,
}

/// Makes the store hold `target` (a merge of `snap.doc` and another replica's
/// state), and records it as the new base, in `tx`; the caller commits. Returns
/// what changed and the document recorded (`target` with a note on each task
/// whose claim was lost).
pub fn apply(tx: &mut Transaction<'_>, snap: &Snapshot, target: &Doc) -> Result<(Applied, Doc)> {
    let mut out = Applied::default();
    let mut target = target.clone();
    // Claims lost to another clone's earlier claim: the clone whose claim it
    // was is told (the notes are the target's, see `note_lost_claims`).
    note_lost_claims(&mut target);
    for (id, t) in &target.entities {
        let Body::Live(theirs) = &t.body else {
            continue;
        };
        let Some(Field::Claim(won)) = theirs.get(WORK) else {
            continue;
        };
        let mine = match snap.doc.entities.get(id).map(|e| &e.body) {
            Some(Body::Live(f)) => match f.get(WORK) {
                Some(Field::Claim(c)) => c.holder.as_ref().map(|h| (h.agent.clone(), c.at)),
                _ => None,
            },
            _ => None,
        };
        let winner = won.holder.as_ref().map(|h| h.agent.clone());
        for (agent, at) in &won.lost {
            if mine.as_ref() == Some(&(agent.clone(), *at)) {
                out.lost_claims
                    .push((id.clone(), agent.clone(), winner.clone()));
            }
        }
    }
    let mut deletes = Vec::new();
    for (id, t) in &target.entities {
        let revived = snap.live.contains(id) && matches!(t.body, Body::Deleted(_));
        if snap.doc.entities.get(id) == Some(t) && !revived {
            continue;
        }
        match &t.body {
            Body::Live(fields) => {
                let props = props_of(&t.kind, fields);
                match tx.get(id)? {
                    Some(cur) if cur.props == props && cur.kind == t.kind => {}
                    Some(_) => {
                        tx.put_created_at(id, &t.kind, props, t.created_at)?;
                        out.changed.push(id.clone());
                    }
                    None => {
                        tx.put_created_at(id, &t.kind, props, t.created_at)?;
                        out.created.push(id.clone());
                    }
                }
            }
            Body::Deleted(_) => {
                if tx.get(id)?.is_some() {
                    deletes.push(id.clone());
                }
            }
        }
    }
    // An end the target deletes is gone; one it does not hold (another chunk's)
    // is as the store has it, checked below.
    let alive = |id: &str| {
        !matches!(
            target.entities.get(id).map(|e| &e.body),
            Some(Body::Deleted(_))
        )
    };
    for (k, e) in &target.edges {
        if snap.doc.edges.get(k) == Some(e) {
            continue;
        }
        let (from, kind, to) = k;
        if e.present {
            if !(alive(from) && alive(to)) || tx.get(from)?.is_none() || tx.get(to)?.is_none() {
                out.edges_skipped += 1;
                continue;
            }
            let props: Props = e
                .props
                .iter()
                .map(|(k, v)| (k.clone(), from_json(v)))
                .collect();
            tx.add_edge(from, kind, to, props)?;
            out.edges_added += 1;
        } else if tx.remove_edge(from, kind, to)? {
            out.edges_removed += 1;
        }
    }
    for id in deletes {
        tx.delete(&id)?;
        out.deleted.push(id);
    }
    // The new base: every record whose line changed.
    let mut last = snap.last;
    // A live entity's line is recorded with the entity's version, so the next
    // snapshot knows it unchanged while the version stays.
    for (id, t) in &target.entities {
        let version = match t.body {
            Body::Live(_) => tx.get(id)?.map(|e| e.version),
            Body::Deleted(_) => None,
        };
        if snap.base.entities.get(id) != Some(t) || snap.versions.get(id).copied() != version {
            let record = record_of(version, super::doc::entity_line(id, t));
            tx.put_meta(&format!("{ENTITY}{id}"), record.as_bytes())?;
        }
    }
    for (k, e) in &target.edges {
        if snap.base.edges.get(k) != Some(e) {
            tx.put_meta(&edge_name(k), super::doc::edge_line(k, e).as_bytes())?;
        }
    }
    // Records the target no longer holds (tombstones past their retention).
    for id in snap.base.entities.keys() {
        if !target.entities.contains_key(id) {
            tx.put_meta(&format!("{ENTITY}{id}"), b"")?;
        }
    }
    for k in snap.base.edges.keys() {
        if !target.edges.contains_key(k) {
            tx.put_meta(&edge_name(k), b"")?;
        }
    }
    last = last.max(target.max_clock());
    if last != snap.stored_last {
        tx.put_meta(LAST, last.to_string().as_bytes())?;
    }
    if snap.node_is_new {
        tx.put_meta(NODE, format!("{:016x}", snap.node).as_bytes())?;
    }
    Ok((out, target))
}
