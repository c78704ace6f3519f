//! The JSON store of the Python GoT system, the tool got replaces: a `.got/`
//! directory with one file per entity under `entities/` and earlier versions
//! under `_history/`. Read whole, checked, and mapped onto got's schema
//! (docs/cli.md, "Importing the GoT JSON store"); imported through the merge of
//! [`super::foreign`], so a second import changes nothing.
//!
//! An entity file is `{"_checksum", "_written_at", "data"}` (Python's
//! `json.dump(…, indent=2, sort_keys=True)`); `_checksum` is the first 16 hex
//! digits of the SHA-256 of `data` as `json.dumps(data, sort_keys=True,
//! separators=(',', ':'))` writes it (non-ASCII escaped), which [`python_dumps`]
//! reproduces.

use super::foreign::{Dangling, Foreign, Link, Record, GOT_JSON};
pub use super::python_json::{checksum, python_dumps};
use crate::sync::replica::Applied;
use crate::versioned_store::time::parse_ms;
use crate::{Error, Props, Result, Store, Value};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a GoT JSON store's files are, given the directory a user names: the
/// store itself (`…/.got`, holding `entities/`) or the project above it.
pub fn store_root(dir: &Path) -> Option<PathBuf> {
    if dir.join("entities").is_dir() {
        Some(dir.to_path_buf())
    } else if dir.join(".got").join("entities").is_dir() {
        Some(dir.join(".got"))
    } else {
        None
    }
}

pub use crate::locate::holds_got_json;

/// What reading the store found, and what importing it did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Entity files read and mapped, by got kind (edge files under "edge").
    pub by_kind: BTreeMap<String, usize>,
    /// Earlier versions read from `_history/`.
    pub history_versions: usize,
    /// Files whose `_checksum` does not match their data (not imported unless
    /// accepted).
    pub bad_checksums: Vec<PathBuf>,
    /// Files that cannot be read as an entity, with why (not imported).
    pub unreadable: Vec<(PathBuf, String)>,
    /// Values got has no place for, mapped to the nearest and kept as the
    /// original in a property: `"task status \"review\""` → how many.
    pub unknown: BTreeMap<String, usize>,
    pub dangling: Vec<Dangling>,
    pub applied: Applied,
}

/// What [`read`] found: the versions to import, oldest first, then the
/// current records with their links.
pub struct Read {
    pub rounds: Vec<Foreign>,
    pub report: Report,
}

/// Maps one kind's value onto got's (or the nearest, counted in `unknown`).
struct Mapper<'a> {
    unknown: &'a mut BTreeMap<String, usize>,
}

const TASK_STATUSES: [(&str, &str); 5] = [
    ("pending", "pending"),
    ("in_progress", "in_progress"),
    ("completed", "completed"),
    ("blocked", "blocked"),
    // Put off: not ready until someone takes it up (`got unblock`).
    ("deferred", "blocked"),
];
const SPRINT_STATUSES: [(&str, &str); 4] = [
    ("available", "available"),
    ("in_progress", "in_progress"),
    ("completed", "completed"),
    ("blocked", "blocked"),
];
const EPIC_STATUSES: [(&str, &str); 3] = [
    ("active", "active"),
    ("completed", "completed"),
    ("on_hold", "on_hold"),
];
const HANDOFF_STATUSES: [(&str, &str); 4] = [
    ("initiated", "initiated"),
    ("accepted", "accepted"),
    ("completed", "completed"),
    ("rejected", "rejected"),
];
const PRIORITIES: [(&str, &str); 4] = [
    ("low", "low"),
    ("medium", "medium"),
    ("high", "high"),
    ("critical", "critical"),
];

impl Mapper<'_> {
    /// `value` through `table` into `p[name]`; a value the table lacks becomes
    /// `fallback`, and a value that is not got's own is kept as
    /// `original_<name>`.
    fn enumerated(
        &mut self,
        p: &mut Props,
        kind: &str,
        name: &str,
        value: Option<&Json>,
        table: &[(&str, &str)],
        fallback: &str,
    ) {
        let raw = value.and_then(Json::as_str);
        let mapped = match raw.and_then(|r| table.iter().find(|(from, _)| *from == r)) {
            Some((_, to)) => to,
            None => {
                let shown = match value {
                    Some(v) => v.to_string(),
                    None => "(missing)".into(),
                };
                *self
                    .unknown
                    .entry(format!("{kind} {name} {shown}"))
                    .or_default() += 1;
                fallback
            }
        };
        p.insert(name.into(), Value::from(mapped));
        if let Some(r) = value.filter(|_| raw != Some(mapped)) {
            p.insert(format!("original_{name}"), crate::json::from_json(r));
        }
    }
}

/// A time as the GoT system writes it (ISO 8601), as Unix milliseconds; unset
/// (`""`, null) and unreadable are `None`.
fn time(v: Option<&Json>) -> Option<i64> {
    v.and_then(Json::as_str)
        .filter(|s| !s.is_empty())
        .and_then(parse_ms)
}

/// Puts `v` in `p` under `name`, or under `got_json_<name>` when got's mapping
/// already took the name: nothing the file holds is dropped.
fn keep(p: &mut Props, name: &str, v: &Json) {
    let name = if p.contains_key(name) {
        format!("got_json_{name}")
    } else {
        name.to_string()
    };
    p.insert(name, crate::json::from_json(v));
}

fn string(v: Option<&Json>) -> Option<String> {
    v.and_then(Json::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Who holds an imported task in progress when the GoT system did not record
/// it (`got task release ID --force` frees it).
pub const UNKNOWN_AGENT: &str = "unknown-agent";

/// The fields every entity has, which the mapping reads itself.
const BOOKKEEPING: [&str; 5] = ["id", "entity_type", "version", "created_at", "modified_at"];

/// One entity's `data` mapped onto got's schema: the record (ids as the GoT
/// system wrote them; see [`IdMap`]) and the links its fields imply.
fn map_entity(data: &Map<String, Json>, m: &mut Mapper<'_>) -> Option<(Record, Vec<Link>)> {
    let id = data.get("id")?.as_str()?.to_string();
    let etype = data.get("entity_type")?.as_str()?.to_string();
    let created = time(data.get("created_at")).unwrap_or(0);
    let changed = time(data.get("modified_at")).unwrap_or(created);
    let mut p = Props::new();
    let mut links = Vec::new();
    let mut consumed: Vec<&str> = BOOKKEEPING.to_vec();
    let link = |from: &str, kind: &str, to: &str| Link {
        from: from.to_string(),
        kind: kind.to_string(),
        to: to.to_string(),
        props: Props::new(),
        at: changed,
    };
    let title = string(data.get("title")).unwrap_or_else(|| format!("({etype} {id})"));
    let kind = match etype.as_str() {
        "task" => {
            p.insert("title".into(), Value::from(title));
            m.enumerated(
                &mut p,
                "task",
                "status",
                data.get("status"),
                &TASK_STATUSES,
                "pending",
            );
            if data.get("status").and_then(Json::as_str) == Some("deferred") {
                p.insert(
                    "blocked_reason".into(),
                    Value::from("deferred in the GoT system"),
                );
            }
            m.enumerated(
                &mut p,
                "task",
                "priority",
                data.get("priority"),
                &PRIORITIES,
                "medium",
            );
            if let Some(d) = string(data.get("description")) {
                p.insert("description".into(), Value::from(d));
            }
            if let Some(Json::Object(props)) = data.get("properties") {
                for (k, v) in props {
                    match (k.as_str(), v) {
                        ("category", Json::String(c))
                            if crate::tasks::CATEGORIES.contains(&c.as_str()) =>
                        {
                            p.insert("category".into(), Value::from(c.as_str()));
                        }
                        ("category", v) => keep(&mut p, "original_category", v),
                        _ => keep(&mut p, k, v),
                    }
                }
            }
            if let Some(Json::Object(meta)) = data.get("metadata") {
                let mut rest = Map::new();
                for (k, v) in meta {
                    match (k.as_str(), time(Some(v)), v) {
                        ("started_at" | "completed_at", Some(ms), _) => {
                            p.insert(k.clone(), Value::Int(ms));
                        }
                        (
                            "blocked_reason" | "claimed_by" | "assignee" | "assigned_to",
                            _,
                            Json::String(x),
                        ) if !x.is_empty() => {
                            let name = if k == "blocked_reason" {
                                k.as_str()
                            } else {
                                "assignee"
                            };
                            p.insert(name.into(), Value::from(x.as_str()));
                        }
                        _ => {
                            rest.insert(k.clone(), v.clone());
                        }
                    }
                }
                if !rest.is_empty() {
                    keep(&mut p, "metadata", &Json::Object(rest));
                }
            }
            // got's rules for a task's state (`got validate`): one in progress
            // has a holder, a blocked one a reason. The GoT system recorded
            // neither always.
            match p.get("status").and_then(Value::as_str) {
                Some("in_progress") if !p.contains_key("assignee") => {
                    p.insert("assignee".into(), Value::from(UNKNOWN_AGENT));
                }
                Some("blocked") if !p.contains_key("blocked_reason") => {
                    p.insert(
                        "blocked_reason".into(),
                        Value::from("blocked in the GoT system"),
                    );
                }
                _ => {}
            }
            consumed.extend([
                "title",
                "status",
                "priority",
                "description",
                "properties",
                "metadata",
            ]);
            crate::tasks::KIND
        }
        "decision" => {
            p.insert("title".into(), Value::from(title));
            if let Some(r) = string(data.get("rationale")) {
                p.insert("rationale".into(), Value::from(r));
            }
            if let Some(Json::Array(a)) = data.get("affects") {
                for t in a.iter().filter_map(Json::as_str) {
                    links.push(link(&id, crate::decisions::EDGE, t));
                }
            }
            if let Some(Json::Object(props)) = data.get("properties") {
                for (k, v) in props {
                    keep(&mut p, k, v);
                }
            }
            consumed.extend(["title", "rationale", "affects", "properties"]);
            crate::decisions::KIND
        }
        "sprint" => {
            p.insert("title".into(), Value::from(title));
            m.enumerated(
                &mut p,
                "sprint",
                "status",
                data.get("status"),
                &SPRINT_STATUSES,
                "available",
            );
            if let Some(n) = data.get("number").and_then(Json::as_i64) {
                p.insert("number".into(), Value::Int(n));
            }
            if let Some(Json::Array(goals)) = data.get("goals") {
                let goals = goals.iter().map(goal).collect();
                p.insert("goals".into(), Value::List(goals));
            }
            if let Some(e) = string(data.get("epic_id")) {
                p.insert("epic".into(), Value::from(e.as_str()));
                links.push(link(&id, crate::plans::PART_OF, &e));
            }
            consumed.extend(["title", "status", "number", "goals", "epic_id"]);
            crate::plans::SPRINT
        }
        "epic" => {
            p.insert("title".into(), Value::from(title));
            m.enumerated(
                &mut p,
                "epic",
                "status",
                data.get("status"),
                &EPIC_STATUSES,
                "active",
            );
            consumed.extend(["title", "status"]);
            crate::plans::EPIC
        }
        "handoff" => {
            for (from, to) in [
                ("source_agent", "from"),
                ("target_agent", "to"),
                ("instructions", "instructions"),
                ("reject_reason", "reject_reason"),
            ] {
                if let Some(s) = string(data.get(from)) {
                    p.insert(to.into(), Value::from(s));
                }
            }
            if let Some(t) = string(data.get("task_id")) {
                p.insert("task".into(), Value::from(t.as_str()));
                links.push(link(&id, crate::handoffs::EDGE, &t));
            }
            m.enumerated(
                &mut p,
                "handoff",
                "status",
                data.get("status"),
                &HANDOFF_STATUSES,
                "initiated",
            );
            for at in ["initiated_at", "accepted_at", "completed_at", "rejected_at"] {
                if let Some(ms) = time(data.get(at)) {
                    p.insert(at.into(), Value::Int(ms));
                }
            }
            consumed.extend([
                "source_agent",
                "target_agent",
                "instructions",
                "reject_reason",
                "task_id",
                "status",
                "initiated_at",
                "accepted_at",
                "completed_at",
                "rejected_at",
            ]);
            crate::handoffs::KIND
        }
        other => {
            *m.unknown
                .entry(format!("entity_type {other:?}"))
                .or_default() += 1;
            if crate::versioned_store::model::check_kind(other).is_err() {
                return None;
            }
            other
        }
    };
    for (k, v) in data {
        if !consumed.contains(&k.as_str()) {
            keep(&mut p, k, v);
        }
    }
    if let Some(v) = data.get("version") {
        keep(&mut p, "got_json_version", v);
    }
    if let Some(ms) = time(data.get("modified_at")) {
        p.insert("modified_at".into(), Value::Int(ms));
    }
    let record = Record {
        id,
        kind: kind.to_string(),
        props: p,
        created_at: created,
        changed_at: changed,
    };
    Some((record, links))
}

/// A sprint goal as got keeps it: `{description, done}` (the GoT system wrote
/// `text` or `description`, and `completed`); other keys kept.
fn goal(g: &Json) -> Value {
    let Json::Object(o) = g else {
        return Value::Map(
            [
                ("description".to_string(), crate::json::from_json(g)),
                ("done".to_string(), Value::Bool(false)),
            ]
            .into_iter()
            .collect(),
        );
    };
    let mut out = BTreeMap::new();
    let text = o.get("description").or_else(|| o.get("text"));
    out.insert(
        "description".to_string(),
        text.map(crate::json::from_json).unwrap_or(Value::from("")),
    );
    out.insert(
        "done".to_string(),
        Value::Bool(o.get("completed").and_then(Json::as_bool).unwrap_or(false)),
    );
    for (k, v) in o {
        if !matches!(k.as_str(), "description" | "text" | "completed") {
            out.insert(k.clone(), crate::json::from_json(v));
        }
    }
    Value::Map(out.into_iter().collect())
}

/// An edge entity as got's relation: `(from, kind, to)`.
fn relation(source: &str, target: &str, etype: &str) -> (String, String, String) {
    let (s, t) = (source.to_string(), target.to_string());
    match etype {
        // The dependent waits on the prerequisite.
        "DEPENDS_ON" => (s, crate::tasks::DEPENDS_ON.into(), t),
        // The blocked waits on the blocker.
        "BLOCKS" => (t, crate::tasks::DEPENDS_ON.into(), s),
        // A sprint contains tasks, an epic sprints: the member is part of it.
        "CONTAINS" => (t, crate::plans::PART_OF.into(), s),
        "PART_OF" => (s, crate::plans::PART_OF.into(), t),
        "JUSTIFIES" => (s, crate::decisions::EDGE.into(), t),
        // A task transfers to a handoff: the handoff is for the task.
        "TRANSFERS" => (t, crate::handoffs::EDGE.into(), s),
        "PARENT_OF" => (s, "parent_of".into(), t),
        "CHILD_OF" => (t, "parent_of".into(), s),
        other => (s, other.to_ascii_lowercase(), t),
    }
}

/// got's id for a GoT id: the same, unless got's kind needs another prefix (an
/// epic keeps `E-…` and `EPIC-…`).
fn got_id(id: &str, kind: &str) -> String {
    match crate::check_kind_id(kind, id) {
        Ok(()) => id.to_string(),
        Err(_) => format!(
            "{}{id}",
            crate::id_prefix_of(kind).expect("only kinds with a prefix refuse an id")
        ),
    }
}

fn read_json(path: &Path) -> std::result::Result<Json, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))
}

/// Reads a GoT JSON store whole (`root` holds `entities/`); nothing is written.
pub fn read(root: &Path, accept_bad_checksums: bool) -> Result<Read> {
    let mut report = Report::default();
    let entities_dir = root.join("entities");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&entities_dir)
        .map_err(|e| Error::Invalid(format!("{}: {e}", entities_dir.display())))?
        .filter_map(|d| d.ok().map(|d| d.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        // `_version.json` holds the store's version counter, not an entity.
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('_'))
        })
        .collect();
    files.sort();
    let mut unknown = BTreeMap::new();
    let mut m = Mapper {
        unknown: &mut unknown,
    };
    // First every file, so that edges find their ends under got's ids.
    let mut records: Vec<Record> = Vec::new();
    let mut implied: Vec<Link> = Vec::new();
    let mut edges: Vec<(String, String, String, Props, i64)> = Vec::new();
    for path in &files {
        let j = match read_json(path) {
            Ok(j) => j,
            Err(e) => {
                report.unreadable.push((path.clone(), e));
                continue;
            }
        };
        let Some(data) = j.get("data").and_then(Json::as_object) else {
            report
                .unreadable
                .push((path.clone(), "no \"data\" object".into()));
            continue;
        };
        let good = j.get("_checksum").and_then(Json::as_str) == Some(&checksum(&j["data"]));
        if !good {
            report.bad_checksums.push(path.clone());
            if !accept_bad_checksums {
                continue;
            }
        }
        if data.get("entity_type").and_then(Json::as_str) == Some("edge") {
            let s = string(data.get("source_id"));
            let t = string(data.get("target_id"));
            let ty = string(data.get("edge_type"));
            let (Some(s), Some(t), Some(ty)) = (s, t, ty) else {
                report.unreadable.push((
                    path.clone(),
                    "an edge needs source_id, target_id and edge_type".into(),
                ));
                continue;
            };
            let mut props = Props::new();
            for k in ["weight", "confidence"] {
                if let Some(v) = data.get(k) {
                    props.insert(k.into(), crate::json::from_json(v));
                }
            }
            if let Some(Json::Object(extra)) = data.get("properties") {
                for (k, v) in extra {
                    keep(&mut props, k, v);
                }
            }
            let created = time(data.get("created_at")).unwrap_or(0);
            let at = time(data.get("modified_at")).unwrap_or(created);
            edges.push((s, ty, t, props, at));
            *report.by_kind.entry("edge".into()).or_default() += 1;
            continue;
        }
        match map_entity(data, &mut m) {
            Some((r, l)) => {
                *report.by_kind.entry(r.kind.clone()).or_default() += 1;
                records.push(r);
                implied.extend(l);
            }
            None => report.unreadable.push((
                path.clone(),
                "no id or entity_type, or an entity_type got cannot name a kind by".into(),
            )),
        }
    }
    // got's ids (a GoT id without got's prefix for its kind gets it).
    let ids: BTreeMap<String, String> = records
        .iter()
        .map(|r| (r.id.clone(), got_id(&r.id, &r.kind)))
        .collect();
    let map_id = |id: &str| ids.get(id).cloned().unwrap_or_else(|| id.to_string());
    let mut current = Foreign::default();
    for mut r in records.clone() {
        let gid = map_id(&r.id);
        if gid != r.id {
            r.props
                .insert("got_json_id".into(), Value::from(r.id.as_str()));
        }
        for v in r.props.values_mut() {
            if let Value::String(s) = v {
                if let Some(g) = ids.get(s.as_str()).filter(|g| *g != s) {
                    *s = g.clone();
                }
            }
        }
        r.id = gid.clone();
        current.records.insert(gid, r);
    }
    for l in implied {
        current.links.push(Link {
            from: map_id(&l.from),
            to: map_id(&l.to),
            ..l
        });
    }
    for (s, ty, t, props, at) in edges {
        let (from, kind, to) = relation(&map_id(&s), &map_id(&t), &ty);
        if crate::versioned_store::model::check_kind(&kind).is_err() {
            *m.unknown.entry(format!("edge_type {ty:?}")).or_default() += 1;
            continue;
        }
        if kind == crate::plans::PART_OF {
            // A sprint in an epic names it, as got's own sprints do.
            let epic = current
                .records
                .get(&to)
                .is_some_and(|r| r.kind == crate::plans::EPIC);
            if let Some(r) = current.records.get_mut(&from) {
                if r.kind == crate::plans::SPRINT && epic {
                    r.props.insert("epic".into(), Value::from(to.as_str()));
                }
            }
        }
        current.links.push(Link {
            from,
            kind,
            to,
            props,
            at,
        });
    }
    // Earlier versions, oldest first, each before the one after it.
    let mut history: Vec<Vec<Record>> = Vec::new();
    for (gid, r) in &current.records {
        let orig = r
            .props
            .get("got_json_id")
            .and_then(Value::as_str)
            .unwrap_or(gid)
            .to_string();
        // The GoT system writes history beside the entities; older layouts
        // had it at the top of the store.
        let text = ["entities/_history", "_history"]
            .iter()
            .find_map(|d| std::fs::read_to_string(root.join(d).join(format!("{orig}.jsonl"))).ok());
        let Some(text) = text else {
            continue;
        };
        let mut versions = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(j) = serde_json::from_str::<Json>(line) else {
                *m.unknown
                    .entry("unreadable history line".into())
                    .or_default() += 1;
                continue;
            };
            let Some(data) = j.get("data").and_then(Json::as_object) else {
                continue;
            };
            let Some((mut old, _)) = map_entity(
                data,
                &mut Mapper {
                    unknown: &mut BTreeMap::new(),
                },
            ) else {
                continue;
            };
            if old.changed_at >= r.changed_at || old.kind != r.kind {
                continue;
            }
            old.id = gid.clone();
            versions.push(old);
        }
        versions.sort_by_key(|v| v.changed_at);
        versions.dedup_by_key(|v| v.changed_at);
        report.history_versions += versions.len();
        for (i, v) in versions.into_iter().enumerate() {
            if history.len() <= i {
                history.resize_with(i + 1, Vec::new);
            }
            history[i].push(v);
        }
    }
    let mut rounds: Vec<Foreign> = history
        .into_iter()
        .map(|vs| Foreign {
            records: vs.into_iter().map(|r| (r.id.clone(), r)).collect(),
            ..Foreign::default()
        })
        .collect();
    rounds.push(current);
    report.unknown = unknown;
    Ok(Read { rounds, report })
}

/// Imports what [`read`] found: the earlier versions round by round (each an
/// earlier version of its entity in the store's history), then the current
/// records and their links.
pub fn import(store: &Store, read: Read) -> Result<Report> {
    let Read { rounds, mut report } = read;
    let last = rounds.len().saturating_sub(1);
    for (i, f) in rounds.iter().enumerate() {
        let (a, dangling) = f.import(store, GOT_JSON)?;
        if i == last {
            report.dangling = dangling;
        }
        let t = &mut report.applied;
        for id in a.created {
            if !t.created.contains(&id) {
                t.created.push(id);
            }
        }
        for id in a.changed {
            if !t.created.contains(&id) && !t.changed.contains(&id) {
                t.changed.push(id);
            }
        }
        t.deleted.extend(a.deleted);
        t.edges_added += a.edges_added;
        t.edges_skipped += a.edges_skipped;
    }
    Ok(report)
}
