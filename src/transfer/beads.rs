//! beads' files: `issues.jsonl` in every format beads has written, and the
//! legacy `deletions.jsonl` manifest.

use super::{bad, str_field, Item};
use crate::transfer::parse_rfc3339;
use crate::{Entity, Props, Result, Value};
use serde_json::Value as Json;

/// Maps a beads `issues.jsonl` to import items: each issue a task (`T-` + its
/// beads id), `blocks` dependencies as `depends_on`, `parent-child` as
/// `parent_of`, others as `relates_to`.
pub fn from_beads(text: &str) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut edges = Vec::new();
    let task_id = |bid: &str| {
        if bid.starts_with("T-") {
            bid.to_string()
        } else {
            format!("T-{bid}")
        }
    };
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let j: Json = serde_json::from_str(raw).map_err(|e| bad(line, format!("not JSON: {e}")))?;
        let Json::Object(o) = j else {
            return Err(bad(line, "not a JSON object"));
        };
        let bid = str_field(&o, "id", line)?;
        let id = task_id(&bid);
        crate::versioned_store::model::check_id(&id).map_err(|e| bad(line, e))?;
        let title = str_field(&o, "title", line)?;
        let mut p = Props::new();
        p.insert("title".into(), title.into());
        if let Some(d) = o.get("description").and_then(Json::as_str) {
            if !d.is_empty() {
                p.insert("description".into(), d.into());
            }
        }
        let status = match o.get("status").and_then(Json::as_str).unwrap_or("open") {
            "open" => "pending",
            "in_progress" => "in_progress",
            "blocked" => "blocked",
            "closed" => "completed",
            other => return Err(bad(line, format!("unknown beads status {other:?}"))),
        };
        p.insert("status".into(), status.into());
        let priority = match o.get("priority").and_then(Json::as_i64).unwrap_or(2) {
            0 => "critical",
            1 => "high",
            2 => "medium",
            _ => "low",
        };
        p.insert("priority".into(), priority.into());
        let category = match o.get("issue_type").and_then(Json::as_str) {
            Some("bug") => Some("bugfix"),
            Some("feature") => Some("feature"),
            Some("chore") => Some("devex"),
            _ => None,
        };
        if let Some(c) = category {
            p.insert("category".into(), c.into());
        }
        let mut labels: Vec<Value> = match o.get("labels") {
            Some(Json::Array(ls)) => ls
                .iter()
                .filter_map(|l| l.as_str().map(Value::from))
                .collect(),
            _ => Vec::new(),
        };
        if o.get("issue_type").and_then(Json::as_str) == Some("epic") {
            labels.push("epic".into());
        }
        p.insert("labels".into(), Value::List(labels));
        if let Some(a) = o
            .get("assignee")
            .and_then(Json::as_str)
            .filter(|a| !a.is_empty())
        {
            p.insert("assignee".into(), a.into());
        }
        p.insert("beads_id".into(), bid.as_str().into());
        let time = |k: &str| o.get(k).and_then(Json::as_str).and_then(parse_rfc3339);
        let created = time("created_at").unwrap_or(0);
        let updated = time("updated_at").unwrap_or(created);
        if status == "completed" {
            if let Some(c) = time("closed_at") {
                p.insert("completed_at".into(), Value::Int(c));
            }
        }
        items.push(Item::Entity(Entity {
            id: id.clone(),
            kind: "task".into(),
            version: 1,
            props: p,
            created_at: created,
            updated_at: updated,
        }));
        if let Some(Json::Array(deps)) = o.get("dependencies") {
            for d in deps {
                let on = d
                    .get("depends_on_id")
                    .and_then(Json::as_str)
                    .ok_or_else(|| bad(line, "a dependency without depends_on_id"))?;
                let (from, kind, to) =
                    match d.get("type").and_then(Json::as_str).unwrap_or("blocks") {
                        "blocks" => (id.clone(), "depends_on", task_id(on)),
                        "parent-child" => (task_id(on), "parent_of", id.clone()),
                        _ => (id.clone(), "relates_to", task_id(on)),
                    };
                edges.push(Item::Edge {
                    from,
                    kind: kind.into(),
                    to,
                    props: Props::new(),
                });
            }
        }
    }
    items.extend(edges);
    Ok(items)
}
