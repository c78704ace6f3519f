//! beads' files, in every shape beads has written them
//! (tests/fixtures/beads/README.md has the schema, with its sources): the
//! current `bd export` lines (`"_type":"issue"`, with counts), the older JSONL
//! sync lines (no `_type`; tombstones with `deleted_at`; the old edge fields
//! `replies_to`, `duplicate_of`, `superseded_by`, `relates_to`), `--json`
//! output with `schema_version` (in the record, or as `{"data", …}`), the
//! `_schema` header line (skipped), memory lines (skipped), and the legacy
//! `deletions.jsonl` manifest (`{id, ts, by, reason}`).
//!
//! Mapped onto got's schema (docs/cli.md, "beads") and imported through the
//! merge of [`super::foreign`]. The whole file is read before anything is
//! written: a line that is not JSON (a file cut short, a conflict marker) is an
//! error naming it, and nothing is imported. A value got has no place for is
//! never a reason to refuse: it maps to the nearest and is counted.

use super::bad;
use super::foreign::{Foreign, Link, Record};
use crate::json::from_json;
use crate::versioned_store::time::parse_ms;
use crate::{Props, Result, Value};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

/// What reading a beads file found, besides the records.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Issues read, by the got kind they became (`task`, `epic`).
    pub by_kind: BTreeMap<String, usize>,
    /// Tombstones and manifest entries: deletions.
    pub deletions: usize,
    /// Lines that hold no issue (memories, the `_schema` header).
    pub skipped: usize,
    /// Values mapped to the nearest got value: `"status \"review\""` → how
    /// many.
    pub unknown: BTreeMap<String, usize>,
}

/// An issue of beads is a task, or (issue type `epic`) an epic.
fn kind_of(issue_type: Option<&str>) -> &'static str {
    match issue_type {
        Some("epic") => crate::plans::EPIC,
        _ => crate::tasks::KIND,
    }
}

/// got's id for a beads id: `T-` (or `E-` for an epic) and the beads id.
pub fn got_id(beads_id: &str, kind: &str) -> String {
    let prefix = crate::id_prefix_of(kind).unwrap_or("T-");
    format!("{prefix}{beads_id}")
}

fn time(v: Option<&Json>) -> Option<i64> {
    v.and_then(Json::as_str).and_then(parse_ms)
}

/// Fields the mapping reads itself, and the counts beads derives (dropped:
/// they are recomputed from the edges).
const READ: [&str; 24] = [
    "_type",
    "id",
    "title",
    "description",
    "notes",
    "status",
    "priority",
    "issue_type",
    "assignee",
    "created_at",
    "created_by",
    "updated_at",
    "started_at",
    "closed_at",
    "labels",
    "dependencies",
    "comments",
    "estimated_minutes",
    "replies_to",
    "duplicate_of",
    "superseded_by",
    "relates_to",
    "wisp",
    "schema_version",
];
const DERIVED: [&str; 3] = ["dependency_count", "dependent_count", "comment_count"];

/// A task's status from beads': got's, the blocked reason it implies, and
/// whether the beads word is not got's own.
fn task_status(s: &str) -> Option<(&'static str, Option<&'static str>)> {
    Some(match s {
        "open" => ("pending", None),
        "in_progress" => ("in_progress", None),
        // Hooked: work on an agent's hook, in progress.
        "hooked" => ("in_progress", None),
        "blocked" => ("blocked", Some("blocked in beads")),
        // Put off, or a frozen context marker: not ready until taken up.
        "deferred" => ("blocked", Some("deferred in beads")),
        "pinned" => ("blocked", Some("pinned in beads")),
        "closed" | "done" => ("completed", None),
        _ => return None,
    })
}

fn epic_status(s: &str) -> Option<&'static str> {
    Some(match s {
        "open" | "in_progress" | "hooked" => "active",
        "closed" | "done" => "completed",
        "blocked" | "deferred" | "pinned" => "on_hold",
        _ => return None,
    })
}

fn priority(p: Option<&Json>) -> Option<&'static str> {
    // beads reads a missing priority as 0 (P0).
    Some(match p {
        None => "critical",
        Some(j) => match j.as_i64()? {
            0 => "critical",
            1 => "high",
            2 => "medium",
            3 | 4 => "low",
            _ => return None,
        },
    })
}

/// Reads a beads file (issues in any of its shapes, or a deletions manifest)
/// whole. `known` tells the kind of an id the file does not hold (an epic
/// already in the store): `None` for a task.
pub fn read(text: &str, known: &dyn Fn(&str) -> Option<String>) -> Result<(Foreign, Report)> {
    let mut rep = Report::default();
    let mut issues: Vec<(usize, Map<String, Json>)> = Vec::new();
    let mut manifest: BTreeMap<String, (i64, Map<String, Json>)> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        if ["<<<<<<<", "=======", ">>>>>>>", "|||||||"]
            .iter()
            .any(|m| raw.starts_with(m))
        {
            return Err(bad(
                line,
                "a merge conflict marker: resolve the conflict in the file first",
            ));
        }
        let j: Json = serde_json::from_str(raw).map_err(|e| {
            bad(
                line,
                format!("not JSON ({e}); a file cut short or damaged is not imported"),
            )
        })?;
        let Json::Object(mut o) = j else {
            return Err(bad(line, "not a JSON object"));
        };
        // `--json` output with BD_JSON_ENVELOPE=1: the record is in `data`.
        if let (Some(Json::Object(d)), true) = (o.get("data"), o.contains_key("schema_version")) {
            o = d.clone();
        }
        if o.contains_key("_schema") || o.get("_type").is_some_and(|t| t != "issue") {
            rep.skipped += 1;
            continue;
        }
        let Some(id) = o.get("id").and_then(Json::as_str).map(str::to_string) else {
            return Err(bad(line, "a record without an \"id\""));
        };
        crate::versioned_store::model::check_id(&got_id(&id, crate::tasks::KIND))
            .map_err(|e| bad(line, e))?;
        if !o.contains_key("title") && o.contains_key("ts") {
            // The legacy deletions manifest: the last record of an id wins.
            let at = time(o.get("ts")).unwrap_or(0);
            manifest.insert(id, (at, o));
            continue;
        }
        issues.push((line, o));
    }
    // Kinds first, so that edges point at the right ids.
    let mut kinds: BTreeMap<String, &'static str> = BTreeMap::new();
    for (_, o) in &issues {
        let id = o["id"].as_str().expect("checked");
        let ty = o
            .get("original_type")
            .filter(|_| o.get("status").and_then(Json::as_str) == Some("tombstone"))
            .or_else(|| o.get("issue_type"))
            .and_then(Json::as_str);
        kinds.insert(id.to_string(), kind_of(ty));
    }
    let target = |bid: &str| -> String {
        match kinds.get(bid) {
            // Another project's capability: never an entity here (listed as
            // dangling under its own name).
            None if bid.starts_with("external:") => bid.to_string(),
            Some(k) => got_id(bid, k),
            None => known(bid).unwrap_or_else(|| got_id(bid, crate::tasks::KIND)),
        }
    };
    let mut out = Foreign::default();
    let count = |rep: &mut Report, what: String| *rep.unknown.entry(what).or_default() += 1;
    for (line, o) in &issues {
        let bid = o["id"].as_str().expect("checked").to_string();
        let kind = kinds[&bid];
        let id = got_id(&bid, kind);
        let created = time(o.get("created_at")).unwrap_or(0).max(0);
        let changed = time(o.get("updated_at")).unwrap_or(created).max(created);
        let status = o.get("status").and_then(Json::as_str).unwrap_or("open");
        if status == "tombstone" {
            let at = time(o.get("deleted_at"))
                .filter(|t| *t > 0)
                .unwrap_or(changed);
            out.deletions.insert(id, (kind.to_string(), created, at));
            rep.deletions += 1;
            continue;
        }
        *rep.by_kind.entry(kind.to_string()).or_default() += 1;
        let mut p = Props::new();
        let title = o
            .get("title")
            .and_then(Json::as_str)
            .filter(|t| !t.trim().is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("(untitled beads issue {bid})"));
        p.insert("title".into(), Value::from(title));
        if let Some(d) = o.get("description").and_then(Json::as_str) {
            if !d.is_empty() {
                p.insert("description".into(), Value::from(d));
            }
        }
        p.insert("beads_id".into(), Value::from(bid.as_str()));
        if !["open", "closed", "in_progress", "blocked"].contains(&status) {
            p.insert("original_status".into(), Value::from(status));
        }
        if kind == crate::plans::EPIC {
            let s = epic_status(status).unwrap_or_else(|| {
                count(&mut rep, format!("status {status:?}"));
                "active"
            });
            p.insert("status".into(), Value::from(s));
        } else {
            let (s, reason) = task_status(status).unwrap_or_else(|| {
                count(&mut rep, format!("status {status:?}"));
                ("pending", None)
            });
            p.insert("status".into(), Value::from(s));
            if let Some(r) = reason {
                p.insert("blocked_reason".into(), Value::from(r));
            }
            let pr = priority(o.get("priority")).unwrap_or_else(|| {
                count(
                    &mut rep,
                    format!("priority {}", o.get("priority").unwrap_or(&Json::Null)),
                );
                "medium"
            });
            p.insert("priority".into(), Value::from(pr));
            if o.get("priority").and_then(Json::as_i64) == Some(4) {
                p.insert("original_priority".into(), Value::Int(4));
            }
        }
        let ty = o.get("issue_type").and_then(Json::as_str).unwrap_or("task");
        p.insert("beads_type".into(), Value::from(ty));
        const TYPES: [&str; 13] = [
            "bug",
            "feature",
            "task",
            "epic",
            "chore",
            "decision",
            "message",
            "molecule",
            "gate",
            "spike",
            "story",
            "milestone",
            "event",
        ];
        if !TYPES.contains(&ty) {
            count(&mut rep, format!("issue_type {ty:?}"));
        }
        if kind == crate::tasks::KIND {
            let category = match ty {
                "bug" => Some("bugfix"),
                "feature" => Some("feature"),
                "chore" => Some("devex"),
                _ => None,
            };
            if let Some(c) = category {
                p.insert("category".into(), Value::from(c));
            }
        }
        let mut labels: Vec<String> = match o.get("labels") {
            Some(Json::Array(ls)) => ls
                .iter()
                .filter_map(|l| l.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        labels.sort();
        labels.dedup();
        p.insert(
            "labels".into(),
            Value::List(labels.into_iter().map(Value::from).collect()),
        );
        let assignee = o
            .get("assignee")
            .and_then(Json::as_str)
            .filter(|a| !a.is_empty());
        if let Some(a) = assignee {
            p.insert("assignee".into(), Value::from(a));
        } else if p.get("status").and_then(Value::as_str) == Some("in_progress") {
            p.insert(
                "assignee".into(),
                Value::from(super::got_json::UNKNOWN_AGENT),
            );
        }
        if let Some(by) = ["created_by", "owner"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Json::as_str).filter(|s| !s.is_empty()))
        {
            p.insert("created_by".into(), Value::from(by));
        }
        if let Some(m) = o.get("estimated_minutes").and_then(Json::as_f64) {
            if m >= 0.0 {
                p.insert("estimate_hours".into(), Value::Float(m / 60.0));
            }
        }
        for (from, to) in [("started_at", "started_at"), ("closed_at", "completed_at")] {
            if let Some(t) = time(o.get(from)).filter(|t| *t > 0) {
                p.insert(to.into(), Value::Int(t));
            }
        }
        // beads' notes are one text; got's `notes` is a log: comments go there.
        if let Some(n) = o
            .get("notes")
            .and_then(Json::as_str)
            .filter(|n| !n.is_empty())
        {
            p.insert("beads_notes".into(), Value::from(n));
        }
        if let Some(Json::Array(cs)) = o.get("comments") {
            let notes: Vec<Value> = cs
                .iter()
                .filter_map(Json::as_object)
                .map(|c| {
                    let mut n = BTreeMap::new();
                    n.insert(
                        "at".to_string(),
                        Value::Int(time(c.get("created_at")).unwrap_or(changed)),
                    );
                    n.insert(
                        "author".to_string(),
                        c.get("author").map(from_json).unwrap_or(Value::from("")),
                    );
                    n.insert(
                        "text".to_string(),
                        c.get("text").map(from_json).unwrap_or(Value::from("")),
                    );
                    if let Some(cid) = c.get("id") {
                        n.insert("beads_comment_id".to_string(), from_json(cid));
                    }
                    Value::Map(n.into_iter().collect())
                })
                .collect();
            if !notes.is_empty() {
                p.insert("notes".into(), Value::List(notes));
            }
        }
        if o.get("wisp").and_then(Json::as_bool) == Some(true) {
            p.insert("ephemeral".into(), Value::Bool(true));
        }
        // Every other field, under its own name (or beads_<name> when got's
        // mapping took it).
        for (k, v) in o {
            if READ.contains(&k.as_str()) || DERIVED.contains(&k.as_str()) {
                continue;
            }
            let v = match k.as_str() {
                "due_at" | "defer_until" | "compacted_at" => match time(Some(v)) {
                    Some(t) => Json::from(t),
                    None => v.clone(),
                },
                _ => v.clone(),
            };
            let name = if p.contains_key(k) {
                format!("beads_{k}")
            } else {
                k.clone()
            };
            p.insert(name, from_json(&v));
        }
        // Edges: the dependencies, and the old fields that became them.
        let mut deps: Vec<(String, String, Map<String, Json>)> = Vec::new();
        if let Some(ds) = o.get("dependencies") {
            let Json::Array(ds) = ds else {
                return Err(bad(*line, "\"dependencies\" must be a list"));
            };
            for d in ds {
                let Some(on) = d.get("depends_on_id").and_then(Json::as_str) else {
                    return Err(bad(*line, "a dependency without depends_on_id"));
                };
                let ty = d.get("type").and_then(Json::as_str).unwrap_or("blocks");
                deps.push((
                    on.to_string(),
                    ty.to_string(),
                    d.as_object().cloned().unwrap_or_default(),
                ));
            }
        }
        for (field, ty) in [
            ("replies_to", "replies-to"),
            ("duplicate_of", "duplicates"),
            ("superseded_by", "supersedes"),
        ] {
            if let Some(on) = o
                .get(field)
                .and_then(Json::as_str)
                .filter(|s| !s.is_empty())
            {
                deps.push((on.to_string(), ty.into(), Map::new()));
            }
        }
        if let Some(Json::Array(rs)) = o.get("relates_to") {
            for on in rs.iter().filter_map(Json::as_str) {
                deps.push((on.to_string(), "relates-to".into(), Map::new()));
            }
        }
        for (on, ty, d) in deps {
            const KNOWN: [&str; 19] = [
                "blocks",
                "parent-child",
                "conditional-blocks",
                "waits-for",
                "related",
                "discovered-from",
                "replies-to",
                "relates-to",
                "duplicates",
                "supersedes",
                "authored-by",
                "assigned-to",
                "approved-by",
                "attests",
                "tracks",
                "until",
                "caused-by",
                "validates",
                "delegated-from",
            ];
            if !KNOWN.contains(&ty.as_str()) {
                count(&mut rep, format!("dependency type {ty:?}"));
            }
            let mut props = Props::new();
            if ty == "conditional-blocks" {
                props.insert("beads_type".into(), Value::from(ty.as_str()));
            }
            for (k, v) in &d {
                match k.as_str() {
                    "issue_id" | "depends_on_id" | "type" => {}
                    "created_at" => {
                        if let Some(t) = time(Some(v)) {
                            props.insert(k.clone(), Value::Int(t));
                        }
                    }
                    _ => {
                        props.insert(k.clone(), from_json(v));
                    }
                }
            }
            let other = target(&on);
            let (from, edge, to) = match ty.as_str() {
                // The issue waits on the one it depends on; a conditional
                // block waits the same way in beads.
                "blocks" | "conditional-blocks" => {
                    (id.clone(), crate::tasks::DEPENDS_ON.to_string(), other)
                }
                // The issue is the child: a member of an epic, else a child task.
                "parent-child" if other.starts_with("E-") => {
                    (id.clone(), crate::plans::PART_OF.to_string(), other)
                }
                "parent-child" => (other, "parent_of".to_string(), id.clone()),
                t => {
                    let kind = if crate::versioned_store::model::check_kind(t).is_ok() {
                        t.to_string()
                    } else {
                        t.chars()
                            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                            .collect()
                    };
                    (id.clone(), kind, other)
                }
            };
            out.links.push(Link {
                from,
                kind: edge,
                to,
                props,
                at: changed,
            });
        }
        out.records.insert(
            id.clone(),
            Record {
                id,
                kind: kind.to_string(),
                props: p,
                created_at: created,
                changed_at: changed,
            },
        );
    }
    // The manifest: each id deleted (a tombstone in the file keeps its own).
    for (bid, (at, _)) in manifest {
        let id = target(&bid);
        if out.deletions.contains_key(&id) {
            continue;
        }
        let kind = if id.starts_with("E-") {
            crate::plans::EPIC
        } else {
            crate::tasks::KIND
        };
        let created = out.records.get(&id).map_or(at, |r| r.created_at);
        out.deletions
            .insert(id, (kind.to_string(), created, at.max(0)));
        rep.deletions += 1;
    }
    Ok((out, rep))
}

/// Reads a beads file and imports it into `store` (see the module's comment).
pub fn import(
    store: &crate::Store,
    text: &str,
) -> Result<(
    Report,
    crate::sync::replica::Applied,
    Vec<super::foreign::Dangling>,
)> {
    let known = |bid: &str| {
        let e = got_id(bid, crate::plans::EPIC);
        store.get(&e).ok().flatten().map(|_| e)
    };
    let (f, rep) = read(text, &known)?;
    let (applied, dangling) = f.import(store, super::foreign::BEADS)?;
    Ok((rep, applied, dangling))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_old_edge_fields_become_the_edges_beads_migrated_them_to() {
        // The v0.30 fields on a live issue, and `wisp` (v0.35–0.37 for
        // `ephemeral`); beads' own migration made these edges
        // (tests/fixtures/beads/README.md, "Removed and renamed fields").
        let line = r#"{"id":"bd-a1","title":"reply","status":"open","priority":2,"issue_type":"message","created_at":"2025-12-16T10:00:00Z","updated_at":"2025-12-16T10:00:00Z","replies_to":"bd-a0","duplicate_of":"bd-b0","superseded_by":"bd-c0","relates_to":["bd-d0","bd-e0"],"wisp":true}"#;
        let (f, rep) = read(line, &|_| None).unwrap();
        assert_eq!(rep.by_kind["task"], 1);
        let mut got: Vec<(String, String, String)> = f
            .links
            .iter()
            .map(|l| (l.from.clone(), l.kind.clone(), l.to.clone()))
            .collect();
        got.sort();
        let want: Vec<(String, String, String)> = [
            ("duplicates", "T-bd-b0"),
            ("relates-to", "T-bd-d0"),
            ("relates-to", "T-bd-e0"),
            ("replies-to", "T-bd-a0"),
            ("supersedes", "T-bd-c0"),
        ]
        .iter()
        .map(|(k, to)| ("T-bd-a1".to_string(), k.to_string(), to.to_string()))
        .collect();
        assert_eq!(got, want);
        let r = &f.records["T-bd-a1"];
        assert_eq!(r.props["ephemeral"], Value::Bool(true));
        assert!(!r.props.contains_key("wisp"));
        assert!(!r.props.contains_key("replies_to"));
    }

    #[test]
    fn an_unknown_status_or_priority_maps_to_the_nearest_and_is_counted() {
        let line = r#"{"id":"bd-x","title":"t","status":"qa","priority":9,"issue_type":"task","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}"#;
        let (f, rep) = read(line, &|_| None).unwrap();
        let p = &f.records["T-bd-x"].props;
        assert_eq!(p["status"], Value::from("pending"));
        assert_eq!(p["original_status"], Value::from("qa"));
        assert_eq!(p["priority"], Value::from("medium"));
        assert_eq!(rep.unknown["status \"qa\""], 1);
        assert_eq!(rep.unknown["priority 9"], 1);
        // Missing priority: beads reads 0.
        let line = r#"{"id":"bd-y","title":"t","created_at":"2026-01-01T00:00:00Z"}"#;
        let (f, _) = read(line, &|_| None).unwrap();
        assert_eq!(
            f.records["T-bd-y"].props["priority"],
            Value::from("critical")
        );
    }
}
