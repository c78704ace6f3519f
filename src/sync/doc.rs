//! The tracked file: what a replica knows, with the clocks a merge needs, as
//! deterministic JSON Lines (docs/format.md, "The tracked file").
//!
//! One header line, then one line per entity in id order, then one line per
//! edge in `(from, kind, to)` order. The same [`Doc`] always gives the same
//! bytes: object keys sorted (fixed order for a record's own keys), no time of
//! writing, no store-local counters.

use super::hlc::Hlc;
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;
use std::fmt;

/// The format version this build writes and the highest it reads.
pub const FORMAT_VERSION: u64 = 1;

/// `(from, kind, to)`.
pub type EdgeKey = (String, String, String);

/// A replica's state: every entity and edge it has seen, deleted ones included
/// (as tombstones, until their retention passes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Doc {
    pub entities: BTreeMap<String, EntityDoc>,
    pub edges: BTreeMap<EdgeKey, EdgeDoc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EntityDoc {
    pub kind: String,
    /// Unix ms, from the store that created it.
    pub created_at: i64,
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// The entity's fields, by property name.
    Live(BTreeMap<String, Field>),
    /// Deleted at this clock. A tombstone absorbs every edit (docs/sync.md).
    Deleted(Hlc),
}

/// One property of an entity, with its merge rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    /// Last writer wins by clock; `None`: the property was removed.
    Reg { at: Hlc, value: Option<Json> },
    /// A set of strings (labels): each element added or removed at a clock, the
    /// later of the two winning.
    Set(BTreeMap<String, Elem>),
    /// An append-only list (notes): every element any replica had, in the order
    /// of their canonical JSON; never loses one.
    Log(BTreeMap<String, Json>),
    /// A task's status, assignee and lease as one value, so that a merged task
    /// is always in a state some clone had (docs/sync.md, "Claims across
    /// clones"). Kept under the name `status`.
    Claim(Claim),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elem {
    pub at: Hlc,
    pub present: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// Rises with every move; the claims of one free state share its epoch.
    pub epoch: u64,
    /// When the change was made.
    pub at: Hlc,
    pub step: Step,
    /// The task's `status` (absent: the task has none).
    pub status: Option<String>,
    pub holder: Option<Holder>,
    /// Of a claim: the other claims of the same state that it beat, `(agent,
    /// when)`. A set, so that whatever order clones merge in, all of them end
    /// with the same winner and the same losers.
    pub lost: std::collections::BTreeSet<(String, Hlc)>,
}

/// How a task's work state was reached from the one its clone last synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// Anything but a claim (created, started, completed, blocked, released,
    /// renewed): a new epoch; of two moves from one state the later wins.
    Move,
    /// A free task taken: the claims of one state race, the earliest wins, and
    /// each beats the state it was taken from.
    Claim,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub agent: String,
    /// The lease's end (Unix ms), if it has one.
    pub lease: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EdgeDoc {
    pub at: Hlc,
    pub present: bool,
    /// The edge's properties (a JSON object; empty when removed).
    pub props: Map<String, Json>,
}

/// Why a tracked file could not be read: the line (1-based) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// The canonical text of a JSON value (keys sorted, no spaces): what sorting and
/// equality of values go by.
pub fn canonical(v: &Json) -> String {
    serde_json::to_string(v).expect("JSON values serialize")
}

fn jstr(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

impl Doc {
    /// The highest clock anywhere in the document ([`Hlc::ZERO`] when none).
    pub fn max_clock(&self) -> Hlc {
        let mut top = Hlc::ZERO;
        for e in self.entities.values() {
            match &e.body {
                Body::Deleted(at) => top = top.max(*at),
                Body::Live(fields) => {
                    for f in fields.values() {
                        match f {
                            Field::Reg { at, .. } => top = top.max(*at),
                            Field::Set(s) => {
                                top = s.values().map(|e| e.at).fold(top, Hlc::max);
                            }
                            Field::Log(_) => {}
                            Field::Claim(c) => top = top.max(c.at),
                        }
                    }
                }
            }
        }
        self.edges.values().map(|e| e.at).fold(top, Hlc::max)
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{{\"got_tracked\":{FORMAT_VERSION}}}\n");
        for (id, e) in &self.entities {
            out.push_str(&entity_line(id, e));
            out.push('\n');
        }
        for (k, e) in &self.edges {
            out.push_str(&edge_line(k, e));
            out.push('\n');
        }
        out.into_bytes()
    }

    /// Reads a tracked file. Empty input is an empty document (git hands a merge
    /// driver an empty base when the file is new on both sides).
    pub fn parse(bytes: &[u8]) -> Result<Doc, ParseError> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            ParseError {
                line,
                message: "not UTF-8".into(),
            }
        })?;
        let mut doc = Doc::default();
        let mut header = false;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |message: String| ParseError { line, message };
            if ["<<<<<<<", "=======", ">>>>>>>", "|||||||"]
                .iter()
                .any(|m| raw.starts_with(m))
            {
                return Err(err(
                    "a merge conflict marker: the file was merged without got's merge driver \
                     (run `got init` to register it, then merge again)"
                        .into(),
                ));
            }
            if raw.trim().is_empty() {
                continue;
            }
            let j: Json = serde_json::from_str(raw).map_err(|e| err(format!("not JSON: {e}")))?;
            let Json::Object(o) = j else {
                return Err(err("not a JSON object".into()));
            };
            if !header {
                match o.get("got_tracked").and_then(Json::as_u64) {
                    Some(v) if v > FORMAT_VERSION => {
                        return Err(err(format!(
                            "written in tracked-file format {v}, newer than this got reads \
                             ({FORMAT_VERSION}): upgrade got"
                        )))
                    }
                    Some(v) if v >= 1 && o.len() == 1 => {
                        header = true;
                        continue;
                    }
                    _ => {
                        return Err(err(
                            "the first line must be {\"got_tracked\":1}: not a got tracked file"
                                .into(),
                        ))
                    }
                }
            }
            doc.insert_record(&o).map_err(err)?;
        }
        Ok(doc)
    }

    /// Adds one record line (no header) to the document, joined with what it
    /// already holds for that id or edge.
    pub fn insert_line(&mut self, line: &str) -> Result<(), String> {
        match serde_json::from_str(line) {
            Ok(Json::Object(o)) => self.insert_record(&o),
            Ok(_) => Err("not a JSON object".into()),
            Err(e) => Err(format!("not JSON: {e}")),
        }
    }

    fn insert_record(&mut self, o: &Map<String, Json>) -> Result<(), String> {
        if o.contains_key("edge") {
            let (k, e) = parse_edge(o)?;
            let merged = match self.edges.remove(&k) {
                Some(old) => super::merge::join_edge(&old, &e),
                None => e,
            };
            self.edges.insert(k, merged);
        } else {
            let (id, e) = parse_entity(o)?;
            let merged = match self.entities.remove(&id) {
                Some(old) => super::merge::join_entity(&old, &e),
                None => e,
            };
            self.entities.insert(id, merged);
        }
        Ok(())
    }
}

/// The line of edge `k` (without the newline).
pub fn edge_line((from, kind, to): &EdgeKey, e: &EdgeDoc) -> String {
    let mut line = format!(
        "{{\"edge\":[{},{},{}],\"c\":\"{}\"",
        jstr(from),
        jstr(kind),
        jstr(to),
        e.at
    );
    if e.present {
        line.push_str(&format!(
            ",\"props\":{}",
            canonical(&Json::Object(e.props.clone()))
        ));
    } else {
        line.push_str(",\"removed\":true");
    }
    line.push('}');
    line
}

/// The clock a field is stamped with, when it has one clock.
fn field_clock(f: &Field) -> Option<Hlc> {
    match f {
        Field::Reg { at, value: Some(_) } => Some(*at),
        Field::Claim(c) => Some(c.at),
        Field::Set(elems) => {
            let mut clocks = elems.values().map(|e| e.at);
            let first = clocks.next()?;
            clocks.all(|c| c == first).then_some(first)
        }
        _ => None,
    }
}

/// The clock most of an entity's fields share (the highest on a tie): it is
/// written once for the record, and those fields in their plain form.
fn common_clock(fields: &BTreeMap<String, Field>) -> Option<Hlc> {
    let mut count: BTreeMap<Hlc, usize> = BTreeMap::new();
    for f in fields.values() {
        if let Some(at) = field_clock(f) {
            *count.entry(at).or_default() += 1;
        }
    }
    count
        .into_iter()
        .max_by_key(|&(at, n)| (n, at))
        .map(|(at, _)| at)
}

/// Whether a plain value under `name` reads as a field other than a register:
/// `labels` as a list of strings is a set, `notes` as a list a log, a task's
/// `status` as a string its work state.
fn plain_is_special(kind: &str, name: &str, v: &Json) -> bool {
    match (name, v) {
        ("labels", Json::Array(a)) => a.iter().all(Json::is_string),
        ("notes", Json::Array(_)) => true,
        ("status", Json::String(_)) => kind == TASK,
        _ => false,
    }
}

const TASK: &str = "task";

/// A field's plain form under the record's clock `c`, when it has one: a
/// register's value; a set of labels all added at `c` as their list; a log of
/// notes as its list; a task's work state of epoch 0 made at `c`, free, as its
/// status.
fn plain_form(kind: &str, name: &str, f: &Field, c: Option<Hlc>) -> Option<Json> {
    match f {
        Field::Reg { at, value: Some(v) } if Some(*at) == c && !plain_is_special(kind, name, v) => {
            Some(v.clone())
        }
        Field::Set(elems)
            if name == "labels" && elems.values().all(|e| e.present && Some(e.at) == c) =>
        {
            Some(Json::Array(
                elems.keys().map(|k| Json::String(k.clone())).collect(),
            ))
        }
        Field::Log(items) if name == "notes" => {
            Some(Json::Array(items.values().cloned().collect()))
        }
        Field::Claim(w)
            if kind == TASK
                && name == "status"
                && w.epoch == 0
                && w.step == Step::Move
                && Some(w.at) == c
                && w.holder.is_none()
                && w.lost.is_empty() =>
        {
            w.status.clone().map(Json::String)
        }
        _ => None,
    }
}

/// The field a plain value under `name` is (see [`plain_form`]).
fn from_plain(
    kind: &str,
    name: &str,
    v: &Json,
    c: Option<Hlc>,
    what: &str,
) -> Result<Field, String> {
    if name == "notes" && v.is_array() {
        let items = v.as_array().expect("an array");
        return Ok(Field::Log(
            items.iter().map(|x| (canonical(x), x.clone())).collect(),
        ));
    }
    let at =
        c.ok_or_else(|| format!("{what}: \"c\" (the clock of its plain fields) is missing"))?;
    Ok(match (name, v) {
        ("labels", Json::Array(a)) if a.iter().all(Json::is_string) => Field::Set(
            a.iter()
                .filter_map(Json::as_str)
                .map(|l| (l.to_string(), Elem { at, present: true }))
                .collect(),
        ),
        ("status", Json::String(st)) if kind == TASK => Field::Claim(Claim {
            epoch: 0,
            at,
            step: Step::Move,
            status: Some(st.clone()),
            holder: None,
            lost: Default::default(),
        }),
        _ => Field::Reg {
            at,
            value: Some(v.clone()),
        },
    })
}

/// The line of entity `id` (without the newline).
pub fn entity_line(id: &str, e: &EntityDoc) -> String {
    let mut line = format!(
        "{{\"id\":{},\"kind\":{},\"created_at\":{}",
        jstr(id),
        jstr(&e.kind),
        e.created_at
    );
    match &e.body {
        Body::Deleted(at) => line.push_str(&format!(",\"deleted\":\"{at}\"")),
        Body::Live(fields) => {
            let c = common_clock(fields);
            let mut plain = Map::new();
            let mut other = Map::new();
            for (name, f) in fields {
                match plain_form(&e.kind, name, f, c) {
                    Some(v) => {
                        plain.insert(name.clone(), v);
                    }
                    None => {
                        other.insert(name.clone(), field_json(f));
                    }
                }
            }
            if let Some(c) = c {
                line.push_str(&format!(",\"c\":\"{c}\""));
            }
            line.push_str(&format!(",\"p\":{}", canonical(&Json::Object(plain))));
            if !other.is_empty() {
                line.push_str(&format!(",\"f\":{}", canonical(&Json::Object(other))));
            }
        }
    }
    line.push('}');
    line
}

fn field_json(f: &Field) -> Json {
    let mut o = Map::new();
    match f {
        Field::Reg { at, value } => {
            o.insert("c".into(), Json::String(at.to_string()));
            if let Some(v) = value {
                o.insert("v".into(), v.clone());
            }
        }
        Field::Set(elems) => {
            let (mut add, mut rm) = (Map::new(), Map::new());
            for (k, e) in elems {
                let side = if e.present { &mut add } else { &mut rm };
                side.insert(k.clone(), Json::String(e.at.to_string()));
            }
            o.insert("add".into(), Json::Object(add));
            o.insert("rm".into(), Json::Object(rm));
        }
        Field::Log(items) => {
            o.insert("log".into(), Json::Array(items.values().cloned().collect()));
        }
        Field::Claim(c) => {
            let mut cj = Map::new();
            cj.insert("c".into(), Json::String(c.at.to_string()));
            cj.insert("epoch".into(), Json::from(c.epoch));
            let step = match c.step {
                Step::Move => "move",
                Step::Claim => "claim",
            };
            cj.insert("step".into(), Json::String(step.into()));
            if let Some(st) = &c.status {
                cj.insert("status".into(), Json::String(st.clone()));
            }
            if let Some(h) = &c.holder {
                cj.insert("agent".into(), Json::String(h.agent.clone()));
                if let Some(l) = h.lease {
                    cj.insert("lease".into(), Json::from(l));
                }
            }
            if !c.lost.is_empty() {
                let lost = c
                    .lost
                    .iter()
                    .map(|(a, at)| {
                        Json::Array(vec![Json::String(a.clone()), Json::String(at.to_string())])
                    })
                    .collect();
                cj.insert("lost".into(), Json::Array(lost));
            }
            o.insert("work".into(), Json::Object(cj));
        }
    }
    Json::Object(o)
}

fn hlc_of(v: Option<&Json>, what: &str) -> Result<Hlc, String> {
    let s = v
        .and_then(Json::as_str)
        .ok_or_else(|| format!("{what}: a clock (\"<ms>.<counter>.<node>\") is missing"))?;
    Hlc::parse(s).ok_or_else(|| format!("{what}: {s:?} is not a clock"))
}

fn name_of(
    o: &Map<String, Json>,
    key: &str,
    check: fn(&str) -> versioned_store::Result<()>,
) -> Result<String, String> {
    let s = o
        .get(key)
        .and_then(Json::as_str)
        .ok_or_else(|| format!("\"{key}\" is missing or not a string"))?;
    check(s).map_err(|e| e.to_string())?;
    Ok(s.to_string())
}

fn only_keys(o: &Map<String, Json>, allowed: &[&str], what: &str) -> Result<(), String> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("{what}: unknown key {k:?}")),
        None => Ok(()),
    }
}

fn parse_entity(o: &Map<String, Json>) -> Result<(String, EntityDoc), String> {
    only_keys(
        o,
        &["id", "kind", "created_at", "deleted", "c", "p", "f"],
        "an entity",
    )?;
    let id = name_of(o, "id", versioned_store::model::check_id)?;
    let kind = name_of(o, "kind", versioned_store::model::check_kind)?;
    let created_at = o
        .get("created_at")
        .and_then(Json::as_i64)
        .ok_or_else(|| format!("entity {id}: \"created_at\" (Unix ms) is missing"))?;
    let what = format!("entity {id}");
    let body = if let Some(d) = o.get("deleted") {
        if o.contains_key("p") || o.contains_key("f") {
            return Err(format!("{what}: a deleted entity has no fields"));
        }
        Body::Deleted(hlc_of(Some(d), &what)?)
    } else {
        let mut fields = BTreeMap::new();
        let plain = match o.get("p") {
            Some(Json::Object(p)) => p,
            _ => return Err(format!("{what}: \"p\" (its plain fields) is missing")),
        };
        let c = match o.get("c") {
            None => None,
            c => Some(hlc_of(c, &what)?),
        };
        for (k, v) in plain {
            let f = from_plain(&kind, k, v, c, &format!("{what} field {k:?}"))?;
            fields.insert(k.clone(), f);
        }
        match o.get("f") {
            None => {}
            Some(Json::Object(f)) => {
                for (k, v) in f {
                    if fields.contains_key(k) {
                        return Err(format!("{what}: field {k:?} both plain and clocked"));
                    }
                    fields.insert(k.clone(), parse_field(v, &format!("{what} field {k:?}"))?);
                }
            }
            Some(_) => return Err(format!("{what}: \"f\" is not an object")),
        }
        Body::Live(fields)
    };
    Ok((
        id,
        EntityDoc {
            kind,
            created_at,
            body,
        },
    ))
}

fn parse_field(v: &Json, what: &str) -> Result<Field, String> {
    let Json::Object(o) = v else {
        return Err(format!("{what}: not an object"));
    };
    if let Some(work) = o.get("work") {
        only_keys(o, &["work"], what)?;
        let Json::Object(c) = work else {
            return Err(format!("{what}: \"work\" is not an object"));
        };
        only_keys(
            c,
            &["c", "epoch", "step", "status", "agent", "lease", "lost"],
            what,
        )?;
        let epoch = c
            .get("epoch")
            .and_then(Json::as_u64)
            .ok_or_else(|| format!("{what}: the epoch is missing"))?;
        let step = match c.get("step").and_then(Json::as_str) {
            Some("move") => Step::Move,
            Some("claim") => Step::Claim,
            _ => return Err(format!("{what}: the step must be \"move\" or \"claim\"")),
        };
        let status = match c.get("status") {
            None => None,
            Some(Json::String(s)) => Some(s.clone()),
            Some(_) => return Err(format!("{what}: the status is not a string")),
        };
        let holder = match c.get("agent") {
            None => {
                if c.contains_key("lease") {
                    return Err(format!("{what}: a lease without an agent"));
                }
                None
            }
            Some(Json::String(a)) if !a.is_empty() => Some(Holder {
                agent: a.clone(),
                lease: match c.get("lease") {
                    None => None,
                    Some(l) => Some(
                        l.as_i64()
                            .ok_or_else(|| format!("{what}: lease is not Unix ms"))?,
                    ),
                },
            }),
            Some(_) => return Err(format!("{what}: the agent is not a non-empty string")),
        };
        let mut lost = std::collections::BTreeSet::new();
        match c.get("lost") {
            None => {}
            Some(Json::Array(items)) => {
                for it in items {
                    let pair = it.as_array().filter(|p| p.len() == 2);
                    let agent = pair.and_then(|p| p[0].as_str()).filter(|a| !a.is_empty());
                    let (Some(agent), Some(p)) = (agent, pair) else {
                        return Err(format!("{what}: \"lost\" holds [agent, clock] pairs"));
                    };
                    lost.insert((agent.to_string(), hlc_of(Some(&p[1]), what)?));
                }
            }
            Some(_) => return Err(format!("{what}: \"lost\" is not a list")),
        }
        if step == Step::Move && !lost.is_empty() {
            return Err(format!("{what}: only a claim has lost claims"));
        }
        return Ok(Field::Claim(Claim {
            epoch,
            at: hlc_of(c.get("c"), what)?,
            step,
            status,
            holder,
            lost,
        }));
    }
    if let Some(log) = o.get("log") {
        only_keys(o, &["log"], what)?;
        let Json::Array(items) = log else {
            return Err(format!("{what}: \"log\" is not a list"));
        };
        return Ok(Field::Log(
            items.iter().map(|v| (canonical(v), v.clone())).collect(),
        ));
    }
    if o.contains_key("add") || o.contains_key("rm") {
        only_keys(o, &["add", "rm"], what)?;
        let mut elems: BTreeMap<String, Elem> = BTreeMap::new();
        for (side, present) in [("add", true), ("rm", false)] {
            match o.get(side) {
                None => {}
                Some(Json::Object(m)) => {
                    for (k, c) in m {
                        let e = Elem {
                            at: hlc_of(Some(c), what)?,
                            present,
                        };
                        let e = match elems.get(k) {
                            Some(old) => super::merge::join_elem(*old, e),
                            None => e,
                        };
                        elems.insert(k.clone(), e);
                    }
                }
                Some(_) => return Err(format!("{what}: \"{side}\" is not an object")),
            }
        }
        return Ok(Field::Set(elems));
    }
    only_keys(o, &["c", "v"], what)?;
    Ok(Field::Reg {
        at: hlc_of(o.get("c"), what)?,
        value: o.get("v").cloned(),
    })
}

fn parse_edge(o: &Map<String, Json>) -> Result<(EdgeKey, EdgeDoc), String> {
    only_keys(o, &["edge", "c", "props", "removed"], "an edge")?;
    let parts: Vec<&str> = match o.get("edge") {
        Some(Json::Array(a)) => a.iter().filter_map(Json::as_str).collect(),
        _ => Vec::new(),
    };
    let [from, kind, to] = parts[..] else {
        return Err("\"edge\" must be [from, kind, to], three strings".into());
    };
    versioned_store::model::check_id(from).map_err(|e| e.to_string())?;
    versioned_store::model::check_kind(kind).map_err(|e| e.to_string())?;
    versioned_store::model::check_id(to).map_err(|e| e.to_string())?;
    let what = format!("edge {from} -{kind}-> {to}");
    let at = hlc_of(o.get("c"), &what)?;
    let removed = match o.get("removed") {
        None => false,
        Some(Json::Bool(true)) => true,
        Some(_) => return Err(format!("{what}: \"removed\" can only be true")),
    };
    let props = match (o.get("props"), removed) {
        (None, true) => Map::new(),
        (Some(Json::Object(p)), false) => p.clone(),
        (None, false) => return Err(format!("{what}: \"props\" is missing")),
        _ => {
            return Err(format!(
                "{what}: a removed edge has no props; props are an object"
            ))
        }
    };
    Ok((
        (from.to_string(), kind.to_string(), to.to_string()),
        EdgeDoc {
            at,
            present: !removed,
            props,
        },
    ))
}
