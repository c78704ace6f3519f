//! `got task …`, `got ready`, `got blocked`: the task commands agents use.
//!
//! JSON output: one object per command with `schema_version` (docs/cli.md has the
//! schemas); a task is its properties flattened next to `id`, `version`,
//! `created_at` and `updated_at`.

use super::args::{TaskCmd, TaskFields};
use super::ctx::Ctx;
use super::render::{self, clip};
use super::{exit, CmdResult, Failure};
use got::json::format_ms;
use got::tasks::{self, NewTask, TaskFilter, TaskUpdate};
use got::{Entity, Value};
use serde_json::{json, Value as Json};
use std::time::Duration;

/// The version of the JSON objects the task commands print.
pub const SCHEMA_VERSION: u32 = got::json::TASK_SCHEMA_VERSION;

pub use got::json::task_json;

fn one(e: &Entity) -> Json {
    json!({"schema_version": SCHEMA_VERSION, "task": task_json(e)})
}

fn many(ts: &[Entity]) -> Json {
    json!({"schema_version": SCHEMA_VERSION, "tasks": ts.iter().map(task_json).collect::<Vec<_>>()})
}

/// Prints one task: JSON, its id (`--quiet`), or `text`.
fn print_task(ctx: &Ctx, t: &Entity, text: impl FnOnce() -> String) {
    if ctx.quiet {
        println!("{}", t.id);
    } else {
        ctx.print(one(t), text);
    }
}

fn title(t: &Entity) -> &str {
    tasks::prop_str(t, "title").unwrap_or("")
}

fn table(ts: &[Entity]) -> String {
    if ts.is_empty() {
        return "(no tasks)".into();
    }
    let rows = ts.iter().map(|t| {
        [
            t.id.clone(),
            tasks::status(t).to_string(),
            tasks::prop_str(t, "priority").unwrap_or("-").to_string(),
            clip(tasks::assignee(t).unwrap_or("-"), 14),
            clip(title(t), 60),
        ]
    });
    render::table(
        "",
        Some(&["ID", "STATUS", "PRIORITY", "ASSIGNEE", "TITLE"]),
        rows,
    )
}

fn print_list(ctx: &Ctx, ts: &[Entity]) {
    if ctx.quiet {
        for t in ts {
            println!("{}", t.id);
        }
    } else {
        ctx.print(many(ts), || table(ts));
    }
}

fn lease(s: &str) -> Result<Option<Duration>, Failure> {
    let d = tasks::parse_duration(s).map_err(|m| Failure::new("usage", exit::USAGE, m))?;
    Ok((!d.is_zero()).then_some(d))
}

fn lease_text(t: &Entity) -> String {
    tasks::lease_expires_at(t)
        .map(|ms| format!(" (lease until {})", format_ms(ms)))
        .unwrap_or_default()
}

pub fn task(ctx: &Ctx, c: TaskCmd) -> CmdResult {
    let agent = ctx.agent();
    match c {
        TaskCmd::Create {
            title,
            fields,
            labels,
            depends_on,
            blocks,
            parent,
            sprint,
            epic,
        } => {
            let TaskFields {
                priority,
                category,
                description,
                estimate,
            } = fields;
            let store = ctx.open()?;
            let t = tasks::create(
                &store,
                &agent,
                &NewTask {
                    title,
                    description,
                    priority,
                    category,
                    labels,
                    estimate_hours: estimate,
                    depends_on,
                    blocks,
                    parent,
                    part_of: sprint.into_iter().chain(epic).collect(),
                },
            )?;
            print_task(ctx, &t, || format!("created {}  {}", t.id, title_of(&t)));
        }
        TaskCmd::List {
            status,
            priority,
            category,
            label,
            assignee,
            ready: only_ready,
            blocked: only_blocked,
            limit,
            after,
        } => {
            let filter = TaskFilter {
                status,
                priority,
                category,
                label,
                assignee,
                limit: Some(limit),
                after,
            };
            // Bad values are refused for --ready and --blocked too.
            tasks::check_filter(&filter)?;
            let store = ctx.open_read_only()?;
            let mut tx = store.begin()?;
            let mut ts = if only_ready {
                // The whole queue: the filters below may drop any of it.
                got::ready::ready(&mut tx, None)?
            } else if only_blocked {
                let b = tasks::blocked(&mut tx)?;
                b.by_hand
                    .into_iter()
                    .chain(b.waiting.into_iter().map(|(t, _)| t))
                    .collect()
            } else {
                tasks::list(&mut tx, &filter)?
            };
            if only_ready || only_blocked {
                let TaskFilter {
                    status,
                    priority,
                    category,
                    label,
                    assignee,
                    after,
                    ..
                } = filter;
                // The other filters apply to these too.
                let f = |t: &Entity| {
                    (status.is_empty() || status.iter().any(|s| s == tasks::status(t)))
                        && (priority.is_empty()
                            || tasks::prop_str(t, "priority")
                                .is_some_and(|p| priority.iter().any(|x| x == p)))
                        && category
                            .as_deref()
                            .is_none_or(|c| tasks::prop_str(t, "category") == Some(c))
                        && assignee
                            .as_deref()
                            .is_none_or(|a| tasks::assignee(t) == Some(a))
                        && label.iter().all(|l| has_label(t, l))
                };
                ts.retain(f);
                // Paging follows the listed order (queue order for --ready).
                if let Some(a) = &after {
                    let Some(i) = ts.iter().position(|t| &t.id == a) else {
                        return Err(Failure::new(
                            "not_found",
                            exit::NOT_FOUND,
                            format!("--after {a}: no such task in this list"),
                        ));
                    };
                    ts.drain(..=i);
                }
                ts.truncate(limit);
            }
            print_list(ctx, &ts);
        }
        TaskCmd::Show { id } => show(ctx, &id)?,
        TaskCmd::Start { id } => {
            let t = tasks::start(&ctx.open()?, &id, &agent)?;
            print_task(ctx, &t, || format!("{} is in progress ({agent})", t.id));
        }
        TaskCmd::Complete { id, retrospective } => {
            let t = tasks::complete(&ctx.open()?, &id, &agent, retrospective.as_deref())?;
            print_task(ctx, &t, || format!("{} completed by {agent}", t.id));
        }
        TaskCmd::Block { id, reason } => {
            let t = tasks::block(&ctx.open()?, &id, &reason)?;
            print_task(ctx, &t, || format!("{} blocked: {reason}", t.id));
        }
        TaskCmd::Unblock { id } => {
            let t = tasks::unblock(&ctx.open()?, &id)?;
            print_task(ctx, &t, || format!("{} is {}", t.id, tasks::status(&t)));
        }
        TaskCmd::Update {
            id,
            title,
            fields,
            add_labels,
            remove_labels,
            if_version,
        } => {
            let t = tasks::update(
                &ctx.open()?,
                &id,
                &TaskUpdate {
                    title,
                    description: fields.description,
                    priority: fields.priority,
                    category: fields.category,
                    add_labels,
                    remove_labels,
                    estimate_hours: fields.estimate,
                    if_version,
                },
            )?;
            print_task(ctx, &t, || {
                format!("{} updated (version {})", t.id, t.version)
            });
        }
        TaskCmd::Delete { id, force } => {
            let t = tasks::delete(&ctx.open()?, &id, force)?;
            print_task(ctx, &t, || format!("deleted {}", t.id));
        }
        TaskCmd::Note { id, text } => {
            let t = tasks::note(&ctx.open()?, &id, &agent, &text)?;
            print_task(ctx, &t, || format!("noted on {}", t.id));
        }
        TaskCmd::Depends { id, on, remove } => {
            let store = ctx.open()?;
            if remove {
                let removed = tasks::remove_dependency(&store, &id, &on)?;
                ctx.print(
                    json!({"schema_version": SCHEMA_VERSION, "removed": removed}),
                    || {
                        if removed {
                            format!("{id} no longer depends on {on}")
                        } else {
                            format!("{id} did not depend on {on}")
                        }
                    },
                );
            } else {
                let (a, b) = tasks::add_dependency(&store, &id, &on)?;
                if ctx.quiet {
                    println!("{a}");
                } else {
                    ctx.print(
                        json!({"schema_version": SCHEMA_VERSION, "from": a, "kind": "depends_on", "to": b}),
                        || format!("{a} depends on {b}"),
                    );
                }
            }
        }
        TaskCmd::Claim { id, lease: l } => {
            // A bad --lease is a usage error before the store is opened.
            let lease = lease(&l)?;
            let t = tasks::claim(&ctx.open()?, &id, &agent, lease)?;
            print_task(ctx, &t, || {
                format!("claimed {} for {agent}{}", t.id, lease_text(&t))
            });
        }
        TaskCmd::Release { id, force } => {
            let t = tasks::release(&ctx.open()?, &id, &agent, force)?;
            print_task(ctx, &t, || format!("released {}", t.id));
        }
        TaskCmd::Reclaim { stale: _ } => {
            let ts = tasks::reclaim_stale(&ctx.open()?)?;
            if ctx.quiet {
                print_list(ctx, &ts);
            } else {
                ctx.print(many(&ts), || {
                    if ts.is_empty() {
                        "no expired leases".into()
                    } else {
                        format!("released {} expired claim(s):\n{}", ts.len(), table(&ts))
                    }
                });
            }
        }
        TaskCmd::Next { claim, lease: l } => {
            let t = if claim {
                let lease = lease(&l)?;
                tasks::next_claim(&ctx.open()?, &agent, lease)?
            } else {
                tasks::next(&ctx.open_read_only()?)?
            };
            let Some(t) = t else {
                return Err(Failure::new(
                    "not_found",
                    exit::NOT_FOUND,
                    "nothing is ready: no pending, unassigned task with its dependencies completed",
                ));
            };
            print_task(ctx, &t, || {
                if claim {
                    format!(
                        "claimed {}  {}  for {agent}{}",
                        t.id,
                        title_of(&t),
                        lease_text(&t)
                    )
                } else {
                    format!("{}  {}  {}", t.id, priority_of(&t), title_of(&t))
                }
            });
        }
    }
    Ok(())
}

fn title_of(t: &Entity) -> String {
    title(t).to_string()
}

fn priority_of(t: &Entity) -> &str {
    tasks::prop_str(t, "priority").unwrap_or("-")
}

fn has_label(t: &Entity, l: &str) -> bool {
    matches!(t.props.get("labels"), Some(Value::List(ls)) if ls.iter().any(|x| x.as_str() == Some(l)))
}

fn show(ctx: &Ctx, id: &str) -> CmdResult {
    let store = ctx.open_read_only()?;
    let v = tasks::view(&store, id)?;
    if ctx.quiet {
        println!("{}", v.task.id);
        return Ok(());
    }
    let j = got::json::task_view_json(&v);
    let tasks::TaskView {
        task: t,
        depends_on: deps,
        dependents,
        handoffs: hands,
        decisions: decided,
        history_count: history,
    } = v;
    ctx.print(j, || {
        let mut s = format!("{}  {}\n", t.id, title(&t));
        s.push_str(&format!(
            "status: {}   priority: {}   assignee: {}{}\n",
            tasks::status(&t),
            priority_of(&t),
            tasks::assignee(&t).unwrap_or("-"),
            lease_text(&t)
        ));
        for (k, label) in [
            ("category", "category"),
            ("description", "description"),
            ("blocked_reason", "blocked"),
            ("retrospective", "retrospective"),
            ("created_by", "created by"),
            ("completed_by", "completed by"),
        ] {
            if let Some(v) = tasks::prop_str(&t, k) {
                s.push_str(&format!("{label}: {v}\n"));
            }
        }
        if let Some(Value::List(ls)) = t.props.get("labels") {
            let ls: Vec<&str> = ls.iter().filter_map(Value::as_str).collect();
            if !ls.is_empty() {
                s.push_str(&format!("labels: {}\n", ls.join(", ")));
            }
        }
        for (what, ts) in [("depends on", &deps), ("needed by", &dependents)] {
            for d in ts {
                s.push_str(&format!(
                    "{what}: {} ({}) {}\n",
                    d.id,
                    tasks::status(d),
                    title(d)
                ));
            }
        }
        if let Some(Value::List(notes)) = t.props.get("notes") {
            for n in notes {
                if let Value::Map(m) = n {
                    let get = |k: &str| m.get(k);
                    let at = match get("at") {
                        Some(Value::Int(ms)) => format_ms(*ms),
                        _ => String::new(),
                    };
                    s.push_str(&format!(
                        "note {at} {}: {}\n",
                        get("author").and_then(Value::as_str).unwrap_or("?"),
                        get("text").and_then(Value::as_str).unwrap_or("")
                    ));
                }
            }
        }
        for h in &hands {
            s.push_str(&format!(
                "handoff: {} {} {} -> {}\n",
                h.id,
                got::handoffs::status(h),
                tasks::prop_str(h, "from").unwrap_or("?"),
                tasks::prop_str(h, "to").unwrap_or("?")
            ));
        }
        for d in &decided {
            s.push_str(&format!("decision: {} {}\n", d.id, title(d)));
        }
        s.push_str(&format!(
            "version {}, {history} versions in history, created {}",
            t.version,
            format_ms(t.created_at)
        ));
        s
    });
    Ok(())
}

pub fn ready(ctx: &Ctx, limit: usize) -> CmdResult {
    let store = ctx.open_read_only()?;
    let ts = got::ready::ready(&mut store.begin()?, Some(limit))?;
    print_list(ctx, &ts);
    Ok(())
}

pub fn blocked(ctx: &Ctx) -> CmdResult {
    let store = ctx.open_read_only()?;
    let b = tasks::blocked(&mut store.begin()?)?;
    if ctx.quiet {
        for t in b.by_hand.iter().chain(b.waiting.iter().map(|(t, _)| t)) {
            println!("{}", t.id);
        }
        return Ok(());
    }
    let j = got::json::blocked_json(&b);
    ctx.print(j, || {
        let mut s = String::from("Blocked by hand:\n");
        if b.by_hand.is_empty() {
            s.push_str("  (none)\n");
        }
        for t in &b.by_hand {
            s.push_str(&format!(
                "  {}  {}  — {}\n",
                t.id,
                clip(title(t), 50),
                tasks::prop_str(t, "blocked_reason").unwrap_or("no reason given")
            ));
        }
        s.push_str("Waiting on dependencies:\n");
        if b.waiting.is_empty() {
            s.push_str("  (none)\n");
        }
        for (t, open) in &b.waiting {
            let on: Vec<String> = open
                .iter()
                .map(|d| format!("{} ({})", d.id, tasks::status(d)))
                .collect();
            s.push_str(&format!(
                "  {}  {}  — waits on {}\n",
                t.id,
                clip(title(t), 50),
                on.join(", ")
            ));
        }
        s.trim_end().to_string()
    });
    Ok(())
}
