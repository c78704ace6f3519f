//! The writes both servers offer, from a JSON object of arguments (an HTTP
//! request's body, an MCP tool call's `arguments`) to the library call the CLI
//! makes: one parser per operation, so a field means the same thing, and a
//! wrong one is refused with the same message, over HTTP and MCP.
//!
//! Each runs on the blocking pool (it may wait for an fsync) and returns once
//! its transaction is durable.

use super::api::*;
use crate::tasks::{self, NewTask, TaskFilter, TaskUpdate};
use crate::{Entity, Store};
use serde_json::{Map, Value as Json_};

pub(super) type Args = Map<String, Json_>;
type Res<T> = std::result::Result<T, ApiError>;

/// An operation on one entity by an agent: `(store, agent, id, arguments)`.
pub(super) type Op = fn(&Store, &str, &str, &Args) -> Res<Entity>;

pub(super) const NEW_TASK_FIELDS: [&str; 10] = [
    "title",
    "description",
    "priority",
    "category",
    "labels",
    "estimate_hours",
    "depends_on",
    "blocks",
    "parent",
    "part_of",
];

pub(super) fn new_task(o: &Args) -> Res<NewTask> {
    only(o, &NEW_TASK_FIELDS)?;
    Ok(NewTask {
        title: needed(o, "title")?,
        description: opt_str(o, "description")?,
        priority: opt_str(o, "priority")?,
        category: opt_str(o, "category")?,
        labels: str_list(o, "labels")?,
        estimate_hours: opt_f64(o, "estimate_hours")?,
        depends_on: str_list(o, "depends_on")?,
        blocks: str_list(o, "blocks")?,
        parent: opt_str(o, "parent")?,
        part_of: str_list(o, "part_of")?,
    })
}

pub(super) const UPDATE_FIELDS: [&str; 8] = [
    "title",
    "description",
    "priority",
    "category",
    "add_labels",
    "remove_labels",
    "estimate_hours",
    "if_version",
];

pub(super) fn task_update(o: &Args) -> Res<TaskUpdate> {
    only(o, &UPDATE_FIELDS)?;
    let if_version = match o.get("if_version") {
        None | Some(Json_::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| invalid("\"if_version\" must be a version number"))?,
        ),
    };
    Ok(TaskUpdate {
        title: opt_str(o, "title")?,
        description: opt_str(o, "description")?,
        priority: opt_str(o, "priority")?,
        category: opt_str(o, "category")?,
        add_labels: str_list(o, "add_labels")?,
        remove_labels: str_list(o, "remove_labels")?,
        estimate_hours: opt_f64(o, "estimate_hours")?,
        if_version,
    })
}

/// A required string field.
pub(super) fn needed(o: &Args, k: &str) -> Res<String> {
    opt_str(o, k)?.ok_or_else(|| invalid(format!("\"{k}\" is needed")))
}

/// The task operations of `POST /v1/tasks/{id}/{action}`, by action.
pub(super) const TASK_ACTIONS: [(&str, Op); 7] = [
    ("claim", claim),
    ("release", release),
    ("start", start),
    ("complete", complete),
    ("block", block),
    ("unblock", unblock),
    ("note", note),
];

/// The handoff operations of `POST /v1/handoffs/{id}/{action}` (only the
/// target agent may take them).
pub(super) const HANDOFF_ACTIONS: [(&str, Op); 3] = [
    ("accept", handoff_accept),
    ("complete", handoff_complete),
    ("reject", handoff_reject),
];

pub(super) fn find(table: &[(&str, Op)], action: &str) -> Option<Op> {
    table.iter().find(|(a, _)| *a == action).map(|(_, op)| *op)
}

pub(super) fn actions(table: &[(&str, Op)]) -> String {
    table.iter().map(|(a, _)| *a).collect::<Vec<_>>().join(", ")
}

fn claim(s: &Store, agent: &str, id: &str, o: &Args) -> Res<Entity> {
    only(o, &["lease"])?;
    Ok(tasks::claim(s, id, agent, lease_of(o)?)?)
}

fn release(s: &Store, agent: &str, id: &str, o: &Args) -> Res<Entity> {
    only(o, &["force"])?;
    Ok(tasks::release(s, id, agent, opt_bool(o, "force")?)?)
}

fn start(s: &Store, agent: &str, id: &str, o: &Args) -> Res<Entity> {
    only(o, &[])?;
    Ok(tasks::start(s, id, agent)?)
}

fn complete(s: &Store, agent: &str, id: &str, o: &Args) -> Res<Entity> {
    only(o, &["retrospective"])?;
    let r = opt_str(o, "retrospective")?;
    Ok(tasks::complete(s, id, agent, r.as_deref())?)
}

fn block(s: &Store, _agent: &str, id: &str, o: &Args) -> Res<Entity> {
    only(o, &["reason"])?;
    Ok(tasks::block(s, id, &needed(o, "reason")?)?)
}

fn unblock(s: &Store, _agent: &str, id: &str, o: &Args) -> Res<Entity> {
    only(o, &[])?;
    Ok(tasks::unblock(s, id)?)
}

fn note(s: &Store, agent: &str, id: &str, o: &Args) -> Res<Entity> {
    only(o, &["text"])?;
    Ok(tasks::note(s, id, agent, &needed(o, "text")?)?)
}

/// The next ready task; claimed for `agent` (atomically) with `claim`.
pub(super) fn next(s: &Store, agent: &str, claim: bool, o: &Args) -> Res<Option<Entity>> {
    only(o, &["lease"])?;
    let lease = lease_of(o)?;
    Ok(if claim {
        tasks::next_claim(s, agent, lease)?
    } else {
        tasks::next(s)?
    })
}

/// A handoff of `task` from `agent` to `to`.
pub(super) fn handoff_initiate(s: &Store, agent: &str, o: &Args) -> Res<Entity> {
    only(o, &["task", "to", "instructions", "context"])?;
    let (task, to) = (needed(o, "task")?, needed(o, "to")?);
    let instructions = opt_str(o, "instructions")?.unwrap_or_default();
    let context = opt_object(o, "context")?;
    Ok(crate::handoffs::initiate(
        s,
        &task,
        agent,
        &to,
        &instructions,
        context,
    )?)
}

fn handoff_accept(s: &Store, agent: &str, id: &str, o: &Args) -> Res<Entity> {
    only(o, &[])?;
    Ok(crate::handoffs::accept(s, id, agent)?)
}

fn handoff_complete(s: &Store, agent: &str, id: &str, o: &Args) -> Res<Entity> {
    only(o, &["result", "artifacts"])?;
    let result = opt_object(o, "result")?;
    let artifacts = str_list(o, "artifacts")?;
    Ok(crate::handoffs::complete(s, id, agent, result, &artifacts)?)
}

fn handoff_reject(s: &Store, agent: &str, id: &str, o: &Args) -> Res<Entity> {
    only(o, &["reason"])?;
    Ok(crate::handoffs::reject(
        s,
        id,
        agent,
        &needed(o, "reason")?,
    )?)
}

pub(super) fn log_decision(s: &Store, agent: &str, o: &Args) -> Res<Entity> {
    only(o, &["title", "rationale", "alternatives", "affects"])?;
    let title = needed(o, "title")?;
    let rationale = opt_str(o, "rationale")?.unwrap_or_default();
    let alternatives = str_list(o, "alternatives")?;
    let affects = str_list(o, "affects")?;
    Ok(crate::decisions::log(
        s,
        agent,
        &title,
        &rationale,
        &alternatives,
        &affects,
    )?)
}

/// A task list filter from arguments: `status`, `priority` and `label` as a
/// string or a list of strings, `category`, `assignee`, `limit`, `after`.
pub(super) fn task_filter(o: &Args) -> Res<TaskFilter> {
    only(
        o,
        &[
            "status", "priority", "label", "category", "assignee", "limit", "after",
        ],
    )?;
    let one_or_many = |k: &str| match o.get(k) {
        Some(Json_::String(s)) => Ok(vec![s.clone()]),
        _ => str_list(o, k),
    };
    let limit = match o.get("limit") {
        None | Some(Json_::Null) => 100,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| invalid("\"limit\" must be a number from 1 to 10000"))?
            as usize,
    };
    let f = TaskFilter {
        status: one_or_many("status")?,
        priority: one_or_many("priority")?,
        label: one_or_many("label")?,
        category: opt_str(o, "category")?,
        assignee: opt_str(o, "assignee")?,
        limit: Some(limit),
        after: opt_str(o, "after")?,
    };
    tasks::check_filter(&f)?;
    Ok(f)
}
