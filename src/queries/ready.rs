//! The ready queue: tasks that are pending, unassigned, and whose every
//! `depends_on` target is completed — ordered by priority (critical, high, medium,
//! low, then anything else), then creation time, then id.
//!
//! Answered from the ready index, which every process maintains as it applies
//! commits (see `index.rs`): a task's key is recomputed whenever the task, its
//! `depends_on` edges, or the status of a task it depends on changes.

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

/// A pending, unassigned task (its dependencies aside).
pub(crate) fn is_ready_itself(e: &Entity) -> bool {
    e.kind == "task"
        && e.props.get("status").and_then(Value::as_str) == Some("pending")
        && unassigned(e)
}

/// A dependency counts as done when its status is `completed`.
pub(crate) fn is_completed(e: &Entity) -> bool {
    e.props.get("status").and_then(Value::as_str) == Some("completed")
}

fn unassigned(e: &Entity) -> bool {
    matches!(e.props.get("assignee"), None | Some(Value::Null))
        || e.props.get("assignee").and_then(Value::as_str) == Some("")
}

/// Whether every `depends_on` target of `id` has status `completed` (of any kind).
pub fn dependencies_done(tx: &mut Transaction<'_>, id: &str) -> Result<bool> {
    for e in tx.edges(id, Direction::Out, Some("depends_on"))? {
        let done = tx.get(&e.to)?.is_some_and(|t| is_completed(&t));
        if !done {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The first `limit` ready tasks, in queue order, walking the ready index.
/// Tasks this transaction itself changed are judged directly (the index reflects
/// committed data only).
pub fn ready(tx: &mut Transaction<'_>, limit: Option<usize>) -> Result<Vec<Entity>> {
    let limit = limit.unwrap_or(usize::MAX);
    let written = tx.written_ids();
    if !written.is_empty() {
        return ready_by_scan(tx, limit);
    }
    let mut out = Vec::new();
    for key in tx.derived_iter(&indexer::ready_prefix()) {
        if out.len() >= limit {
            break;
        }
        let key = key?;
        if let Some(id) = indexer::id_of(&key) {
            if let Some(t) = tx.get(id)? {
                out.push(t);
            }
        }
    }
    Ok(out)
}

/// The ready queue computed from the status index and each pending task's edges.
pub fn ready_by_scan(tx: &mut Transaction<'_>, limit: usize) -> Result<Vec<Entity>> {
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
    out.truncate(limit);
    Ok(out)
}
