//! The ready queue: tasks that are pending, unassigned, and whose every
//! `depends_on` target is completed — ordered by priority (critical, high, medium,
//! low, then anything else), then creation time, then id.
//!
//! Answered from the status index (pending tasks only) and each candidate's
//! dependency edges; an incrementally maintained ready index is the next step.

use crate::query::{Filter, Query};
use crate::{Direction, Entity, Result, Transaction, Value};

/// The rank of a priority: 0 for critical, then high, medium, low; 4 otherwise.
pub fn priority_rank(e: &Entity) -> u8 {
    match e.props.get("priority").and_then(Value::as_str) {
        Some("critical") => 0,
        Some("high") => 1,
        Some("medium") => 2,
        Some("low") => 3,
        _ => 4,
    }
}

fn unassigned(e: &Entity) -> bool {
    matches!(e.props.get("assignee"), None | Some(Value::Null))
        || e.props.get("assignee").and_then(Value::as_str) == Some("")
}

/// Whether every `depends_on` target of `id` is a completed task.
pub fn dependencies_done(tx: &mut Transaction<'_>, id: &str) -> Result<bool> {
    for e in tx.edges(id, Direction::Out, Some("depends_on"))? {
        let done = tx
            .get(&e.to)?
            .is_some_and(|t| t.props.get("status").and_then(Value::as_str) == Some("completed"));
        if !done {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The first `limit` ready tasks, in queue order.
pub fn ready(tx: &mut Transaction<'_>, limit: Option<usize>) -> Result<Vec<Entity>> {
    let pending = Query {
        kind: Some("task".into()),
        filters: vec![Filter::Eq("status".into(), "pending".into())],
        ..Query::default()
    }
    .run(tx)?;
    let mut out = Vec::new();
    for t in pending {
        if unassigned(&t) && dependencies_done(tx, &t.id)? {
            out.push(t);
        }
    }
    out.sort_by(|a, b| {
        (priority_rank(a), a.created_at, &a.id).cmp(&(priority_rank(b), b.created_at, &b.id))
    });
    if let Some(l) = limit {
        out.truncate(l);
    }
    Ok(out)
}
