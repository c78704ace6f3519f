//! The tools of `got mcp`: each one's name, description and JSON schema
//! (written for a model: what the tool does, when to use it, what it
//! returns), and the call that runs it. The arguments go through the same
//! parsers as the HTTP API's bodies (`ops`), the results are the CLI's `--json`
//! shapes, and a failure carries the CLI's message.

use super::api::{invalid, only, ApiError};
use super::ops::{self, Args};
use crate::json::{task_json, TASK_SCHEMA_VERSION};
use crate::Store;
use serde_json::{json, Map, Value as Json_};

type Res<T> = std::result::Result<T, ApiError>;

/// A tool: name, title, description, input properties, required properties,
/// whether it only reads.
pub(super) struct ToolDef {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub properties: fn() -> Json_,
    pub required: &'static [&'static str],
    pub read_only: bool,
}

const AGENT: &str = "Who is acting (your agent name). Defaults to the name the server was started with (--agent or GOT_AGENT).";
const ID: &str = "The task's id, like T-1a2b3c (a unique prefix of the part after T- is enough).";

fn id_and_agent() -> Map<String, Json_> {
    let mut m = Map::new();
    m.insert("id".into(), json!({"type": "string", "description": ID}));
    m.insert(
        "agent".into(),
        json!({"type": "string", "description": AGENT}),
    );
    m
}

fn with(mut m: Map<String, Json_>, extra: Json_) -> Json_ {
    if let Json_::Object(o) = extra {
        m.extend(o);
    }
    Json_::Object(m)
}

fn agent_only() -> Map<String, Json_> {
    let mut m = id_and_agent();
    m.remove("id");
    m
}

const PRIORITY: &str = "One of critical, high, medium, low.";
const STATUS: &str = "One of pending, in_progress, blocked, completed, cancelled.";
const LEASE: &str = "How long the claim holds unless renewed, like \"30m\" or \"2h\"; \"0\" for no expiry. Default 1h.";

/// Every tool, in the order `tools/list` gives them.
pub(super) const TOOLS: &[ToolDef] = &[
    ToolDef {
        name: "create_task",
        title: "Create a task",
        description: "Create a task (status pending). Use depends_on for tasks that must be completed first; a task is ready only when everything it depends on is completed. Returns {task} with the new id.",
        properties: || with(agent_only(), json!({
            "title": {"type": "string", "description": "One line saying what is to be done."},
            "description": {"type": "string", "description": "Details, acceptance criteria."},
            "priority": {"type": "string", "description": PRIORITY, "enum": ["critical", "high", "medium", "low"]},
            "category": {"type": "string", "description": "One of feature, bugfix, refactor, docs, test, research, chore."},
            "labels": {"type": "array", "items": {"type": "string"}, "description": "Free labels, for filtering."},
            "estimate_hours": {"type": "number", "description": "Estimated effort in hours."},
            "depends_on": {"type": "array", "items": {"type": "string"}, "description": "Ids of tasks this one waits on."},
            "blocks": {"type": "array", "items": {"type": "string"}, "description": "Ids of tasks that wait on this one."},
            "parent": {"type": "string", "description": "Id of a parent task (this is a subtask)."},
            "part_of": {"type": "array", "items": {"type": "string"}, "description": "Ids of sprints or epics this task belongs to."}
        })),
        required: &["title"],
        read_only: false,
    },
    ToolDef {
        name: "show_task",
        title: "Show a task",
        description: "Everything about one task: its fields, notes, what it depends on and what depends on it, its claim and lease. Returns what `got task show --json` prints.",
        properties: || with(id_and_agent(), json!({})),
        required: &["id"],
        read_only: true,
    },
    ToolDef {
        name: "list_tasks",
        title: "List tasks",
        description: "List tasks, oldest first, filtered by status, priority, label, category or assignee. At most `limit` (default 100); when more remain the result has next_after: pass it as `after` for the next page.",
        properties: || json!({
            "status": {"type": ["string", "array"], "items": {"type": "string"}, "description": STATUS},
            "priority": {"type": ["string", "array"], "items": {"type": "string"}, "description": PRIORITY},
            "label": {"type": ["string", "array"], "items": {"type": "string"}, "description": "Only tasks with every one of these labels."},
            "category": {"type": "string"},
            "assignee": {"type": "string", "description": "Only tasks assigned to this agent."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 10000},
            "after": {"type": "string", "description": "The next_after of the previous page."}
        }),
        required: &[],
        read_only: true,
    },
    ToolDef {
        name: "update_task",
        title: "Update a task",
        description: "Change a task's title, description, priority, category, labels or estimate. With if_version, the update happens only if the task is still at that version (else a conflict error). Returns {task}.",
        properties: || with(id_and_agent(), json!({
            "title": {"type": "string"},
            "description": {"type": "string"},
            "priority": {"type": "string", "description": PRIORITY},
            "category": {"type": "string"},
            "add_labels": {"type": "array", "items": {"type": "string"}},
            "remove_labels": {"type": "array", "items": {"type": "string"}},
            "estimate_hours": {"type": "number"},
            "if_version": {"type": "integer", "description": "The version you read (task.version); the update fails if someone changed the task since."}
        })),
        required: &["id"],
        read_only: false,
    },
    ToolDef {
        name: "claim_task",
        title: "Claim a task",
        description: "Claim a task for yourself (status in_progress, assignee you) with a lease. Atomic: if another agent holds it, this fails with a conflict naming the holder. Prefer next_task with claim=true to take the first ready task.",
        properties: || with(id_and_agent(), json!({
            "lease": {"type": "string", "description": LEASE}
        })),
        required: &["id"],
        read_only: false,
    },
    ToolDef {
        name: "release_task",
        title: "Release a claim",
        description: "Give up your claim on a task: it goes back to pending for others. force releases another agent's claim.",
        properties: || with(id_and_agent(), json!({
            "force": {"type": "boolean", "description": "Release even if another agent holds the claim."}
        })),
        required: &["id"],
        read_only: false,
    },
    ToolDef {
        name: "next_task",
        title: "Next ready task",
        description: "The first ready task (pending, everything it depends on completed), by priority then age. With claim=true it is claimed for you atomically: two agents never get the same task. Returns {task}, with task null when nothing is ready.",
        properties: || with(agent_only(), json!({
            "claim": {"type": "boolean", "description": "Claim the task for you (default false: only show it)."},
            "lease": {"type": "string", "description": LEASE}
        })),
        required: &[],
        read_only: false,
    },
    ToolDef {
        name: "complete_task",
        title: "Complete a task",
        description: "Mark a task completed; tasks waiting on it may become ready. Say what was done and learned in retrospective.",
        properties: || with(id_and_agent(), json!({
            "retrospective": {"type": "string", "description": "What was done, what was learned, what is left."}
        })),
        required: &["id"],
        read_only: false,
    },
    ToolDef {
        name: "block_task",
        title: "Block a task",
        description: "Mark a task blocked, with the reason (what it needs before work can go on). Undo with unblock_task.",
        properties: || with(id_and_agent(), json!({
            "reason": {"type": "string", "description": "Why work cannot go on."}
        })),
        required: &["id", "reason"],
        read_only: false,
    },
    ToolDef {
        name: "unblock_task",
        title: "Unblock a task",
        description: "Take a blocked task back to pending.",
        properties: || with(id_and_agent(), json!({})),
        required: &["id"],
        read_only: false,
    },
    ToolDef {
        name: "add_note",
        title: "Add a note",
        description: "Append a note to a task: what you found, tried or decided. Notes are kept in order with their author and time.",
        properties: || with(id_and_agent(), json!({
            "text": {"type": "string", "description": "The note."}
        })),
        required: &["id", "text"],
        read_only: false,
    },
    ToolDef {
        name: "ready",
        title: "Ready tasks",
        description: "Tasks ready to start (pending, nothing they wait on open), in the order next_task takes them.",
        properties: || json!({
            "limit": {"type": "integer", "minimum": 1, "maximum": 10000, "description": "At most this many (default 20)."}
        }),
        required: &[],
        read_only: true,
    },
    ToolDef {
        name: "blocked",
        title: "Blocked tasks",
        description: "Tasks that cannot go on: blocked by hand (with the reason) and pending ones waiting on open tasks (with what they wait on).",
        properties: || json!({}),
        required: &[],
        read_only: true,
    },
    ToolDef {
        name: "handoff_initiate",
        title: "Hand a task to another agent",
        description: "Hand a task to another agent with instructions (and any context as a JSON object). The other agent accepts, completes or rejects it. Returns {handoff} with its id.",
        properties: || with(agent_only(), json!({
            "task": {"type": "string", "description": ID},
            "to": {"type": "string", "description": "The agent who takes it on."},
            "instructions": {"type": "string", "description": "What they should do."},
            "context": {"type": "object", "description": "Anything else they need, as JSON."}
        })),
        required: &["task", "to"],
        read_only: false,
    },
    ToolDef {
        name: "handoff_accept",
        title: "Accept a handoff",
        description: "Accept a handoff made to you (you must be its target).",
        properties: || with(handoff_id(), json!({})),
        required: &["id"],
        read_only: false,
    },
    ToolDef {
        name: "handoff_complete",
        title: "Complete a handoff",
        description: "Complete a handoff you accepted, with its result (a JSON object) and artifacts (paths, commits).",
        properties: || with(handoff_id(), json!({
            "result": {"type": "object", "description": "What came of it, as JSON."},
            "artifacts": {"type": "array", "items": {"type": "string"}, "description": "Files, commits, links produced."}
        })),
        required: &["id"],
        read_only: false,
    },
    ToolDef {
        name: "handoff_reject",
        title: "Reject a handoff",
        description: "Refuse a handoff made to you, saying why.",
        properties: || with(handoff_id(), json!({
            "reason": {"type": "string", "description": "Why you cannot take it."}
        })),
        required: &["id", "reason"],
        read_only: false,
    },
    ToolDef {
        name: "log_decision",
        title: "Log a decision",
        description: "Record a decision with its rationale, the alternatives considered, and the tasks it affects, so later agents know why. Returns {decision}.",
        properties: || with(agent_only(), json!({
            "title": {"type": "string", "description": "The decision, in one line."},
            "rationale": {"type": "string", "description": "Why."},
            "alternatives": {"type": "array", "items": {"type": "string"}, "description": "What else was considered."},
            "affects": {"type": "array", "items": {"type": "string"}, "description": "Ids of the tasks it affects."}
        })),
        required: &["title"],
        read_only: false,
    },
    ToolDef {
        name: "dashboard",
        title: "Dashboard",
        description: "The state of all the work in one object: task counts by status, the top of the ready queue, who is working on what, what is blocked, pending handoffs, recent decisions, open sprints.",
        properties: || json!({}),
        required: &[],
        read_only: true,
    },
];

fn handoff_id() -> Map<String, Json_> {
    let mut m = agent_only();
    m.insert(
        "id".into(),
        json!({"type": "string", "description": "The handoff's id, like H-1a2b3c."}),
    );
    m
}

impl ToolDef {
    /// The tool's input schema.
    pub(super) fn schema(&self) -> Map<String, Json_> {
        let mut s = Map::new();
        s.insert("type".into(), json!("object"));
        s.insert("properties".into(), (self.properties)());
        s.insert("required".into(), json!(self.required));
        s.insert("additionalProperties".into(), json!(false));
        s
    }
}

pub(super) fn find(name: &str) -> Option<&'static ToolDef> {
    TOOLS.iter().find(|t| t.name == name)
}

/// Takes `k` out of the arguments as a string (`None` when absent).
fn take_str(o: &mut Args, k: &str) -> Res<Option<String>> {
    match o.remove(k) {
        None | Some(Json_::Null) => Ok(None),
        Some(Json_::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("\"{k}\" must be a string"))),
    }
}

fn take_id(o: &mut Args) -> Res<String> {
    take_str(o, "id")?.ok_or_else(|| invalid("\"id\" is needed"))
}

fn keyed(key: &str, e: &crate::Entity) -> Json_ {
    json!({"schema_version": TASK_SCHEMA_VERSION, key: task_json(e)})
}

fn op_of(table: &[(&str, ops::Op)], action: &str) -> ops::Op {
    ops::find(table, action).expect("every action tool names an action of ops")
}

/// Runs tool `name` (known) with `args` for `agent` (the server's, unless
/// the arguments name one); on the blocking pool, durable when it returns.
pub(super) fn call(s: &Store, default_agent: &str, name: &str, mut o: Args) -> Res<Json_> {
    let agent = take_str(&mut o, "agent")?
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| default_agent.to_string());
    let task_op = |action: &str, mut o: Args| -> Res<Json_> {
        let id = take_id(&mut o)?;
        Ok(keyed(
            "task",
            &op_of(&ops::TASK_ACTIONS, action)(s, &agent, &id, &o)?,
        ))
    };
    let handoff_op = |action: &str, mut o: Args| -> Res<Json_> {
        let id = take_id(&mut o)?;
        Ok(keyed(
            "handoff",
            &op_of(&ops::HANDOFF_ACTIONS, action)(s, &agent, &id, &o)?,
        ))
    };
    match name {
        "create_task" => {
            let t = ops::new_task(&o)?;
            Ok(keyed("task", &crate::tasks::create(s, &agent, &t)?))
        }
        "show_task" => {
            let id = take_id(&mut o)?;
            only(&o, &[])?;
            Ok(crate::json::task_view_json(&crate::tasks::view(s, &id)?))
        }
        "list_tasks" => {
            let f = ops::task_filter(&o)?;
            let limit = f.limit.unwrap_or(100);
            let ts = crate::tasks::list(&mut s.begin()?, &f)?;
            let mut r = json!({
                "schema_version": TASK_SCHEMA_VERSION,
                "tasks": ts.iter().map(task_json).collect::<Vec<_>>(),
            });
            if ts.len() == limit {
                if let Some(t) = ts.last() {
                    r["next_after"] = json!(t.id);
                }
            }
            Ok(r)
        }
        "update_task" => {
            let id = take_id(&mut o)?;
            let u = ops::task_update(&o)?;
            Ok(keyed("task", &crate::tasks::update(s, &id, &u)?))
        }
        "claim_task" => task_op("claim", o),
        "release_task" => task_op("release", o),
        "complete_task" => task_op("complete", o),
        "block_task" => task_op("block", o),
        "unblock_task" => task_op("unblock", o),
        "add_note" => task_op("note", o),
        "next_task" => {
            let claim = match o.remove("claim") {
                None | Some(Json_::Null) => false,
                Some(Json_::Bool(b)) => b,
                Some(_) => return Err(invalid("\"claim\" must be true or false")),
            };
            let t = ops::next(s, &agent, claim, &o)?;
            Ok(json!({
                "schema_version": TASK_SCHEMA_VERSION,
                "task": t.as_ref().map(task_json),
            }))
        }
        "ready" => {
            only(&o, &["limit"])?;
            let limit = match o.get("limit") {
                None | Some(Json_::Null) => 20,
                Some(v) => v
                    .as_u64()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| invalid("\"limit\" must be a number from 1 to 10000"))?
                    as usize,
            };
            let ts = crate::ready::ready(&mut s.begin()?, Some(limit))?;
            Ok(json!({
                "schema_version": TASK_SCHEMA_VERSION,
                "tasks": ts.iter().map(task_json).collect::<Vec<_>>(),
            }))
        }
        "blocked" => {
            only(&o, &[])?;
            Ok(crate::json::blocked_json(&crate::tasks::blocked(
                &mut s.begin()?,
            )?))
        }
        "handoff_initiate" => Ok(keyed("handoff", &ops::handoff_initiate(s, &agent, &o)?)),
        "handoff_accept" => handoff_op("accept", o),
        "handoff_complete" => handoff_op("complete", o),
        "handoff_reject" => handoff_op("reject", o),
        "log_decision" => Ok(keyed("decision", &ops::log_decision(s, &agent, &o)?)),
        "dashboard" => {
            only(&o, &[])?;
            Ok(crate::board::Dashboard::gather(&mut s.begin()?)?.to_json())
        }
        other => unreachable!("tool {other} is in TOOLS but has no call"),
    }
}
