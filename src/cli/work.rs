//! `got handoff …`, `got decision …`, `got sprint …`, `got epic …`.

use super::args::{DecisionCmd, EpicCmd, GoalCmd, HandoffCmd, SprintCmd};
use super::ctx::Ctx;
use super::render;
use super::{exit, CmdResult, Failure};
use got::json::{format_ms, from_json, to_json};
use got::json::{task_json as flat_json, TASK_SCHEMA_VERSION as SCHEMA_VERSION};
use got::tasks::prop_str;
use got::{decisions, handoffs, plans, Entity, Value};
use serde_json::{json, Value as Json};

/// A `--context`/`--result` argument: a JSON object.
fn json_object(flag: &str, s: &str) -> Result<Value, Failure> {
    let j: Json = serde_json::from_str(s).map_err(|e| {
        Failure::new(
            "invalid",
            exit::INVALID,
            format!("{flag} is not valid JSON: {e}"),
        )
    })?;
    if !j.is_object() {
        return Err(Failure::new(
            "invalid",
            exit::INVALID,
            format!("{flag} must be a JSON object, like '{{\"summary\": \"…\"}}'"),
        ));
    }
    Ok(from_json(&j))
}

fn print_one(ctx: &Ctx, key: &str, e: &Entity, text: impl FnOnce() -> String) {
    if ctx.quiet {
        println!("{}", e.id);
    } else {
        ctx.print(
            json!({"schema_version": SCHEMA_VERSION, key: flat_json(e)}),
            text,
        );
    }
}

/// Prints entities as JSON, ids (`--quiet`), or `text` (`(no KEY)` when there
/// are none).
fn print_many(ctx: &Ctx, key: &str, es: &[Entity], text: impl FnOnce() -> String) {
    if ctx.quiet {
        for e in es {
            println!("{}", e.id);
        }
        return;
    }
    ctx.print(
        json!({"schema_version": SCHEMA_VERSION, key: es.iter().map(flat_json).collect::<Vec<_>>()}),
        || {
            if es.is_empty() {
                format!("(no {key})")
            } else {
                text()
            }
        },
    );
}

/// A handoff's row in lists and `show`: the dashboard's, then the instructions.
fn handoff_cells(h: &Entity) -> Vec<String> {
    let mut cells = render::handoff_cells(h);
    cells.push(prop_str(h, "instructions").unwrap_or("").into());
    cells
}

pub fn handoff(ctx: &Ctx, c: HandoffCmd) -> CmdResult {
    let agent = ctx.agent();
    match c {
        HandoffCmd::Initiate {
            task,
            to,
            from,
            instructions,
            context,
        } => {
            let context = context.map(|c| json_object("--context", &c)).transpose()?;
            let from = from.unwrap_or_else(|| agent.clone());
            let h = handoffs::initiate(&ctx.open()?, &task, &from, &to, &instructions, context)?;
            print_one(ctx, "handoff", &h, || {
                format!(
                    "{}: {} handed to {to} by {from}",
                    h.id,
                    prop_str(&h, "task").unwrap_or("?")
                )
            });
        }
        HandoffCmd::Accept { id } => {
            let h = handoffs::accept(&ctx.open()?, &id, &agent)?;
            print_one(ctx, "handoff", &h, || {
                format!("{} accepted by {agent}", h.id)
            });
        }
        HandoffCmd::Complete {
            id,
            result,
            artifacts,
        } => {
            let result = result.map(|r| json_object("--result", &r)).transpose()?;
            let h = handoffs::complete(&ctx.open()?, &id, &agent, result, &artifacts)?;
            print_one(ctx, "handoff", &h, || {
                format!("{} completed by {agent}", h.id)
            });
        }
        HandoffCmd::Reject { id, reason } => {
            let h = handoffs::reject(&ctx.open()?, &id, &agent, &reason)?;
            print_one(ctx, "handoff", &h, || {
                format!("{} rejected: {reason}", h.id)
            });
        }
        HandoffCmd::List { status, to, limit } => {
            let store = ctx.open_read_only()?;
            let hs = handoffs::list(
                &mut store.begin()?,
                status.as_deref(),
                to.as_deref(),
                Some(limit),
            )?;
            print_many(ctx, "handoffs", &hs, || {
                render::table("", None, hs.iter().map(handoff_cells))
            });
        }
        HandoffCmd::Show { id } => {
            let store = ctx.open_read_only()?;
            let h = handoffs::get(&mut store.begin()?, &id)?;
            print_one(ctx, "handoff", &h, || {
                let mut s = handoff_cells(&h).join("  ");
                for (k, label) in [
                    ("initiated_at", "initiated"),
                    ("accepted_at", "accepted"),
                    ("completed_at", "completed"),
                    ("rejected_at", "rejected"),
                ] {
                    if let Some(Value::Int(ms)) = h.props.get(k) {
                        s.push_str(&format!("\n{label}: {}", format_ms(*ms)));
                    }
                }
                for k in ["context", "result", "artifacts", "reject_reason"] {
                    if let Some(v) = h.props.get(k) {
                        s.push_str(&format!("\n{k}: {}", to_json(v)));
                    }
                }
                s
            });
        }
    }
    Ok(())
}

fn decision_cells(d: &Entity) -> Vec<String> {
    vec![
        d.id.clone(),
        format_ms(d.created_at),
        prop_str(d, "title").unwrap_or("").into(),
    ]
}

pub fn decision(ctx: &Ctx, c: DecisionCmd) -> CmdResult {
    match c {
        DecisionCmd::Log {
            title,
            rationale,
            alternatives,
            affects,
        } => {
            let d = decisions::log(
                &ctx.open()?,
                &ctx.agent(),
                &title,
                &rationale,
                &alternatives,
                &affects,
            )?;
            print_one(ctx, "decision", &d, || {
                format!("logged {}  {}", d.id, title)
            });
        }
        DecisionCmd::List { limit } => {
            let store = ctx.open_read_only()?;
            let ds = decisions::list(&mut store.begin()?, Some(limit))?;
            print_many(ctx, "decisions", &ds, || {
                render::table("", None, ds.iter().map(decision_cells))
            });
        }
        DecisionCmd::Show { id } => {
            let store = ctx.open_read_only()?;
            let mut tx = store.begin()?;
            let d = decisions::get(&mut tx, &id)?;
            let affects = decisions::affected(&mut tx, &d.id)?;
            if ctx.quiet {
                println!("{}", d.id);
                return Ok(());
            }
            ctx.print(
                json!({"schema_version": SCHEMA_VERSION, "decision": flat_json(&d), "affects": affects}),
                || {
                    let mut s = decision_cells(&d).join("  ");
                    s.push_str(&format!(
                        "\nrationale: {}",
                        prop_str(&d, "rationale").unwrap_or("")
                    ));
                    if let Some(Value::List(alts)) = d.props.get("alternatives") {
                        for a in alts.iter().filter_map(Value::as_str) {
                            s.push_str(&format!("\nalternative: {a}"));
                        }
                    }
                    for a in &affects {
                        s.push_str(&format!("\naffects: {a}"));
                    }
                    s
                },
            );
        }
        DecisionCmd::Why { id } => {
            let store = ctx.open_read_only()?;
            let ds = decisions::why(&mut store.begin()?, &id)?;
            print_many(ctx, "decisions", &ds, || {
                ds.iter()
                    .map(|d| {
                        let why = prop_str(d, "rationale").unwrap_or("");
                        format!("{}\n    why: {why}", decision_cells(d).join("  "))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    Ok(())
}

fn progress_text(p: &plans::Progress) -> String {
    format!(
        "{}% ({}/{} done, {} in progress, {} blocked)",
        p.percent(),
        p.completed,
        p.tasks,
        p.in_progress,
        p.blocked
    )
}

/// Prints groups (sprints or epics) with their progress.
fn print_groups(ctx: &Ctx, key: &str, store: &got::Store, kind: &str) -> CmdResult {
    let mut tx = store.begin()?;
    let gs = plans::list(&mut tx, kind)?;
    if ctx.quiet {
        for g in &gs {
            println!("{}", g.id);
        }
        return Ok(());
    }
    let mut rows: Vec<(Entity, plans::Progress)> = Vec::new();
    for g in gs {
        let p = plans::progress(&mut tx, &g.id)?;
        rows.push((g, p));
    }
    ctx.print(got::json::groups_json(key, &rows), || {
        if rows.is_empty() {
            return format!("(no {key})");
        }
        let cells = rows.iter().map(|(g, p)| {
            vec![
                g.id.clone(),
                prop_str(g, "status").unwrap_or("-").into(),
                prop_str(g, "title").unwrap_or("").into(),
                progress_text(p),
            ]
        });
        render::table("", None, cells)
    });
    Ok(())
}

/// Prints one sprint or epic with members and progress.
fn show_group(ctx: &Ctx, key: &str, id: &str, kind: &str) -> CmdResult {
    let store = ctx.open_read_only()?;
    let mut tx = store.begin()?;
    let g = plans::get(&mut tx, id, kind)?;
    let members = plans::members(&mut tx, &g.id)?;
    let p = plans::progress(&mut tx, &g.id)?;
    if ctx.quiet {
        println!("{}", g.id);
        return Ok(());
    }
    ctx.print(got::json::group_json(key, &g, &members, &p), || {
        let mut s = format!(
            "{}  {}  ({})\nprogress: {}",
            g.id,
            prop_str(&g, "title").unwrap_or(""),
            prop_str(&g, "status").unwrap_or("-"),
            progress_text(&p)
        );
        if let Some(c) = prop_str(&g, "claimed_by").filter(|c| !c.is_empty()) {
            s.push_str(&format!("\nclaimed by: {c}"));
        }
        for (i, (d, done)) in plans::goals(&g).iter().enumerate() {
            s.push_str(&format!(
                "\ngoal {}: [{}] {d}",
                i + 1,
                if *done { "x" } else { " " }
            ));
        }
        if let Some(Value::List(ps)) = g.props.get("phases") {
            for ph in ps.iter().filter_map(Value::as_str) {
                s.push_str(&format!("\nphase: {ph}"));
            }
        }
        for m in &members {
            s.push_str(&format!(
                "\n  {} {:<7} {:<11} {}",
                m.id,
                m.kind,
                prop_str(m, "status").unwrap_or("-"),
                prop_str(m, "title").unwrap_or("")
            ));
        }
        s
    });
    Ok(())
}

pub fn sprint(ctx: &Ctx, c: SprintCmd) -> CmdResult {
    let agent = ctx.agent();
    let done = |ctx: &Ctx, s: &Entity, what: &str| {
        print_one(ctx, "sprint", s, || format!("{} {what}", s.id));
    };
    match c {
        SprintCmd::Create {
            title,
            number,
            epic,
            goals,
        } => {
            let s = plans::create_sprint(
                &ctx.open()?,
                &agent,
                &title,
                number,
                epic.as_deref(),
                &goals,
            )?;
            print_one(ctx, "sprint", &s, || format!("created {}  {title}", s.id));
        }
        SprintCmd::List => print_groups(ctx, "sprints", &ctx.open_read_only()?, plans::SPRINT)?,
        SprintCmd::Show { id } => show_group(ctx, "sprint", &id, plans::SPRINT)?,
        SprintCmd::Start { id } => done(ctx, &plans::start(&ctx.open()?, &id)?, "in progress"),
        SprintCmd::Complete { id } => done(ctx, &plans::complete(&ctx.open()?, &id)?, "completed"),
        SprintCmd::Claim { id } => {
            let s = plans::claim(&ctx.open()?, &id, &agent)?;
            done(ctx, &s, &format!("claimed by {agent}"));
        }
        SprintCmd::Release { id, force } => done(
            ctx,
            &plans::release(&ctx.open()?, &id, &agent, force)?,
            "released",
        ),
        SprintCmd::Add { sprint, task } => {
            let (s, t) = plans::add_task(&ctx.open()?, &sprint, &task)?;
            if ctx.quiet {
                println!("{t}");
            } else {
                ctx.print(
                    json!({"schema_version": SCHEMA_VERSION, "from": t, "kind": plans::PART_OF, "to": s}),
                    || format!("{t} is part of {s}"),
                );
            }
        }
        SprintCmd::Goal(g) => match g {
            GoalCmd::Add {
                sprint,
                description,
            } => done(
                ctx,
                &plans::add_goal(&ctx.open()?, &sprint, &description)?,
                "has a new goal",
            ),
            GoalCmd::Complete { sprint, n } => done(
                ctx,
                &plans::complete_goal(&ctx.open()?, &sprint, n)?,
                &format!("goal {n} done"),
            ),
            GoalCmd::List { sprint } => {
                let store = ctx.open_read_only()?;
                let s = plans::get(&mut store.begin()?, &sprint, plans::SPRINT)?;
                let goals = plans::goals(&s);
                ctx.print(
                    json!({"schema_version": SCHEMA_VERSION, "sprint": s.id,
                           "goals": goals.iter().enumerate().map(|(i, (d, done))| json!({"n": i + 1, "description": d, "done": done})).collect::<Vec<_>>()}),
                    || {
                        if goals.is_empty() {
                            return "(no goals)".into();
                        }
                        goals
                            .iter()
                            .enumerate()
                            .map(|(i, (d, done))| {
                                format!("{}. [{}] {d}", i + 1, if *done { "x" } else { " " })
                            })
                            .collect::<Vec<_>>()
                            .join("\n")
                    },
                );
            }
        },
    }
    Ok(())
}

pub fn epic(ctx: &Ctx, c: EpicCmd) -> CmdResult {
    match c {
        EpicCmd::Create { title, phases } => {
            let e = plans::create_epic(&ctx.open()?, &ctx.agent(), &title, &phases)?;
            print_one(ctx, "epic", &e, || format!("created {}  {title}", e.id));
        }
        EpicCmd::List => print_groups(ctx, "epics", &ctx.open_read_only()?, plans::EPIC)?,
        EpicCmd::Show { id } => show_group(ctx, "epic", &id, plans::EPIC)?,
    }
    Ok(())
}
