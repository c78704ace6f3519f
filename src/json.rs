//! Conversions between property values and JSON (the CLI's input and output).

use crate::{Entity, Props, Value};
use serde_json::{json, Map, Number, Value as Json};

pub fn to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::Number((*i).into()),
        Value::Float(f) => Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(s.clone()),
        Value::List(l) => Json::Array(l.iter().map(to_json).collect()),
        Value::Map(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

pub fn from_json(j: &Json) -> Value {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(a) => Value::List(a.iter().map(from_json).collect()),
        Json::Object(o) => Value::Map(o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect()),
    }
}

pub fn props_to_json(p: &Props) -> Json {
    Json::Object(
        p.iter()
            .map(|(k, v)| (k.clone(), to_json(v)))
            .collect::<Map<_, _>>(),
    )
}

/// Parses a JSON object into props; anything else is an error message.
pub fn props_from_json_str(s: &str) -> Result<Props, String> {
    let j: Json = serde_json::from_str(s).map_err(|e| format!("--props is not valid JSON: {e}"))?;
    match j {
        Json::Object(o) => Ok(o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect()),
        _ => Err("--props must be a JSON object, like '{\"title\": \"x\"}'".into()),
    }
}

pub fn entity_to_json(e: &Entity) -> Json {
    json!({
        "id": e.id,
        "kind": e.kind,
        "version": e.version,
        "props": props_to_json(&e.props),
        "created_at": e.created_at,
        "updated_at": e.updated_at,
    })
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn format_ms(ms: i64) -> String {
    let t = versioned_store::time::utc(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.milli
    )
}

/// The version of the JSON objects the task commands (and the server) print.
pub const TASK_SCHEMA_VERSION: u32 = 1;

/// A task as the CLI's `--json` and the server show it: its id, version, every
/// property, and its times.
pub fn task_json(e: &Entity) -> Json {
    let mut m = Map::new();
    m.insert("id".into(), json!(e.id));
    m.insert("version".into(), json!(e.version));
    for (k, v) in &e.props {
        m.insert(k.clone(), to_json(v));
    }
    m.insert("created_at".into(), json!(e.created_at));
    m.insert("updated_at".into(), json!(e.updated_at));
    Json::Object(m)
}

/// `got blocked --json` and `GET /v1/blocked`.
pub fn blocked_json(b: &crate::tasks::Blocked) -> Json {
    json!({
        "schema_version": TASK_SCHEMA_VERSION,
        "blocked": b.by_hand.iter().map(task_json).collect::<Vec<_>>(),
        "waiting": b.waiting.iter().map(|(t, open)| json!({
            "task": task_json(t),
            "waits_on": open.iter().map(|d| json!({"id": d.id, "status": crate::tasks::status(d)})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// A sprint's or epic's progress.
pub fn progress_json(p: &crate::plans::Progress) -> Json {
    json!({"tasks": p.tasks, "completed": p.completed, "in_progress": p.in_progress,
           "blocked": p.blocked, "pending": p.pending, "percent": p.percent()})
}

/// `got sprint list --json` / `got epic list --json` (`key`: `sprints`,
/// `epics`): each group with its progress.
pub fn groups_json(key: &str, rows: &[(Entity, crate::plans::Progress)]) -> Json {
    json!({"schema_version": TASK_SCHEMA_VERSION, key: rows.iter().map(|(g, p)| {
        let mut j = task_json(g);
        j["progress"] = progress_json(p);
        j
    }).collect::<Vec<_>>()})
}

/// `got sprint show --json` / `got epic show --json` (`key`: `sprint`,
/// `epic`): the group, its members in brief, its progress.
pub fn group_json(key: &str, g: &Entity, members: &[Entity], p: &crate::plans::Progress) -> Json {
    let s = |e: &Entity, k: &str| e.props.get(k).and_then(Value::as_str).map(str::to_string);
    let brief: Vec<Json> = members
        .iter()
        .map(|m| json!({"id": m.id, "kind": m.kind, "status": s(m, "status"), "title": s(m, "title")}))
        .collect();
    json!({"schema_version": TASK_SCHEMA_VERSION, key: task_json(g), "members": brief, "progress": progress_json(p)})
}

/// `got task show --json` and `GET /v1/tasks/{id}`.
pub fn task_view_json(v: &crate::tasks::TaskView) -> Json {
    let title = |e: &Entity| {
        e.props
            .get("title")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let brief = |ts: &[Entity]| -> Vec<Json> {
        ts.iter()
            .map(|d| json!({"id": d.id, "status": crate::tasks::status(d), "title": title(d)}))
            .collect()
    };
    json!({
        "schema_version": TASK_SCHEMA_VERSION,
        "task": task_json(&v.task),
        "depends_on": brief(&v.depends_on),
        "dependents": brief(&v.dependents),
        "handoffs": v.handoffs.iter().map(|h| json!({"id": h.id, "status": crate::handoffs::status(h),
            "from": crate::tasks::prop_str(h, "from"), "to": crate::tasks::prop_str(h, "to")})).collect::<Vec<_>>(),
        "decisions": v.decisions.iter().map(|d| json!({"id": d.id, "title": title(d)})).collect::<Vec<_>>(),
        "history_count": v.history_count,
    })
}
