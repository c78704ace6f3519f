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
