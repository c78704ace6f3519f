//! Handoffs: one agent passing a task to another, with instructions and context,
//! through a state machine the store enforces.
//!
//! A handoff is an entity of kind `handoff`, id `H-…`, with a `handoff_for` edge to
//! its task. Properties: `task`, `from`, `to`, `instructions`, `context` (a JSON
//! object: branch, files_modified, files_to_review, blockers, notes, …), `status`,
//! the time of each step (`initiated_at`, `accepted_at`, `completed_at`,
//! `rejected_at`), `result` (success, summary, next_steps, commits), `artifacts`,
//! `reject_reason`.
//!
//! ```text
//! initiated --accept--> accepted --complete--> completed
//!     \--reject--> rejected
//! ```
//! Accepting hands the task itself to the target agent (assigned, in progress,
//! no lease). Only the target agent (`to`) accepts, completes or rejects; no step is taken
//! twice or out of order. Each step is a transaction that reads the handoff and
//! writes it at the version read, so two racing steps cannot both succeed.

use crate::tasks::{self, prop_str, write};
use crate::{Entity, Error, Props, Result, Store, Transaction, Value};

pub const KIND: &str = "handoff";
pub const ID_PREFIX: &str = "H-";
/// The edge from a handoff to its task.
pub const EDGE: &str = "handoff_for";
pub const STATUSES: [&str; 4] = ["initiated", "accepted", "completed", "rejected"];

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

fn set(p: &mut Props, k: &str, v: impl Into<Value>) {
    p.insert(k.to_string(), v.into());
}

pub fn status(h: &Entity) -> &str {
    prop_str(h, "status").unwrap_or("initiated")
}

pub fn get(tx: &mut Transaction<'_>, id: &str) -> Result<Entity> {
    let id = tasks::resolve(tx, id, KIND)?;
    tx.get(&id)?
        .ok_or_else(|| Error::NotFound(format!("no handoff {id}")))
}

/// Starts a handoff of `task` from `from` to `to`. `context` must be a map.
pub fn initiate(
    store: &Store,
    task: &str,
    from: &str,
    to: &str,
    instructions: &str,
    context: Option<Value>,
) -> Result<Entity> {
    if to.trim().is_empty() {
        return Err(invalid("a handoff needs a target agent (--to)"));
    }
    if instructions.trim().is_empty() {
        return Err(invalid(
            "a handoff needs instructions (--instructions TEXT)",
        ));
    }
    if instructions.len() > tasks::MAX_TEXT_BYTES {
        return Err(invalid(format!(
            "the instructions are {} bytes; at most {} are accepted",
            instructions.len(),
            tasks::MAX_TEXT_BYTES
        )));
    }
    if let Some(c) = &context {
        if !matches!(c, Value::Map(_)) {
            return Err(invalid(
                "--context must be a JSON object, like '{\"branch\": \"wal-tail\"}'",
            ));
        }
    }
    if from == to {
        return Err(invalid(format!(
            "{from} cannot hand a task off to themselves"
        )));
    }
    write(store, |tx| {
        let t = tasks::get(tx, task)?;
        if tasks::status(&t) == "completed" {
            return Err(invalid(format!(
                "{} is completed; nothing to hand off",
                t.id
            )));
        }
        let mut p = Props::new();
        set(&mut p, "task", t.id.as_str());
        set(&mut p, "from", from);
        set(&mut p, "to", to);
        set(&mut p, "instructions", instructions);
        if let Some(c) = &context {
            p.insert("context".into(), c.clone());
        }
        set(&mut p, "status", "initiated");
        set(&mut p, "initiated_at", store.now_ms());
        let h = tx.create_with_prefix(ID_PREFIX, KIND, p)?;
        tx.add_edge(&h.id, EDGE, &t.id, Props::new())?;
        Ok(h)
    })
}

/// One step of the state machine by `agent`: allowed only from `from_status`
/// and only for the target agent.
fn step(
    store: &Store,
    id: &str,
    agent: &str,
    verb: &str,
    from_status: &str,
    f: impl Fn(&mut Props),
) -> Result<Entity> {
    write(store, |tx| {
        let h = get(tx, id)?;
        let to = prop_str(&h, "to").unwrap_or("");
        if to != agent {
            return Err(invalid(format!(
                "{} is for {to}; only they can {verb} it (you are {agent}; pass --agent)",
                h.id
            )));
        }
        let st = status(&h);
        if st != from_status {
            return Err(invalid(format!(
                "{} is {st}; only an {from_status} handoff can be {}",
                h.id,
                match verb {
                    "accept" => "accepted",
                    "complete" => "completed",
                    _ => "rejected",
                }
            )));
        }
        let mut p = h.props.clone();
        f(&mut p);
        if verb == "accept" {
            take_over(tx, prop_str(&h, "task").unwrap_or(""), agent)?;
        }
        tx.put_if_version(&h.id, KIND, p, h.version)
    })
}

/// The target agent takes the task over (unless it is completed or gone).
fn take_over(tx: &mut Transaction<'_>, task: &str, agent: &str) -> Result<()> {
    let Some(t) = tx.get(task)? else {
        return Ok(());
    };
    if tasks::status(&t) == "completed" {
        return Ok(());
    }
    let mut p = t.props.clone();
    set(&mut p, "assignee", agent);
    set(&mut p, "status", "in_progress");
    set(&mut p, "lease_expires_at", Value::Null);
    p.entry("started_at".into())
        .or_insert(Value::Int(tx.time_ms()));
    tx.put_if_version(&t.id, &t.kind, p, t.version)?;
    Ok(())
}

/// Accepts a handoff: the target agent now holds the task (assigned, in
/// progress, no lease), in the same transaction.
pub fn accept(store: &Store, id: &str, agent: &str) -> Result<Entity> {
    step(store, id, agent, "accept", "initiated", |p| {
        set(p, "status", "accepted");
        set(p, "accepted_at", store.now_ms());
    })
}

/// Completes an accepted handoff; `result` must be a map when given.
pub fn complete(
    store: &Store,
    id: &str,
    agent: &str,
    result: Option<Value>,
    artifacts: &[String],
) -> Result<Entity> {
    if let Some(r) = &result {
        if !matches!(r, Value::Map(_)) {
            return Err(invalid(
                "--result must be a JSON object, like '{\"success\": true, \"summary\": \"…\"}'",
            ));
        }
    }
    step(store, id, agent, "complete", "accepted", |p| {
        set(p, "status", "completed");
        set(p, "completed_at", store.now_ms());
        if let Some(r) = &result {
            p.insert("result".into(), r.clone());
        }
        if !artifacts.is_empty() {
            set(
                p,
                "artifacts",
                Value::List(artifacts.iter().map(|a| Value::from(a.as_str())).collect()),
            );
        }
    })
}

pub fn reject(store: &Store, id: &str, agent: &str, reason: &str) -> Result<Entity> {
    if reason.trim().is_empty() {
        return Err(invalid("rejecting needs a reason (--reason TEXT)"));
    }
    step(store, id, agent, "reject", "initiated", |p| {
        set(p, "status", "rejected");
        set(p, "rejected_at", store.now_ms());
        set(p, "reject_reason", reason);
    })
}

/// Handoffs, optionally by status and target agent, in id order.
pub fn list(
    tx: &mut Transaction<'_>,
    status: Option<&str>,
    to: Option<&str>,
    limit: Option<usize>,
) -> Result<Vec<Entity>> {
    use crate::query::{Filter, Query};
    let mut filters = Vec::new();
    if let Some(s) = status {
        if !STATUSES.contains(&s) {
            return Err(invalid(format!(
                "status {s:?} is not one of {}",
                STATUSES.join(", ")
            )));
        }
        filters.push(Filter::Eq("status".into(), s.into()));
    }
    if let Some(t) = to {
        filters.push(Filter::Eq("to".into(), t.into()));
    }
    Query {
        kind: Some(KIND.into()),
        filters,
        limit,
        ..Query::default()
    }
    .run(tx)
}

/// The handoffs of a task.
pub fn of_task(tx: &mut Transaction<'_>, task: &str) -> Result<Vec<Entity>> {
    let mut out = Vec::new();
    for e in tx.edges(task, crate::Direction::In, Some(EDGE))? {
        if let Some(h) = tx.get(&e.from)? {
            out.push(h);
        }
    }
    Ok(out)
}
