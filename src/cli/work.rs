//! `got handoff …` and `got decision …`.

use super::args::{DecisionCmd, HandoffCmd};
use super::commands::Ctx;
use super::tasks::{task_json as flat_json, SCHEMA_VERSION};
use super::{exit, CmdResult, Failure};
use got::json::{format_ms, from_json, to_json};
use got::tasks::prop_str;
use got::{decisions, handoffs, Entity, Value};
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

fn print_many(ctx: &Ctx, key: &str, es: &[Entity], row: impl Fn(&Entity) -> String) {
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
                es.iter().map(&row).collect::<Vec<_>>().join("\n")
            }
        },
    );
}

fn handoff_row(h: &Entity) -> String {
    format!(
        "{}  {:<9}  {} -> {}  {}  {}",
        h.id,
        handoffs::status(h),
        prop_str(h, "from").unwrap_or("?"),
        prop_str(h, "to").unwrap_or("?"),
        prop_str(h, "task").unwrap_or("?"),
        prop_str(h, "instructions").unwrap_or("")
    )
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
            print_many(ctx, "handoffs", &hs, handoff_row);
        }
        HandoffCmd::Show { id } => {
            let store = ctx.open_read_only()?;
            let h = handoffs::get(&mut store.begin()?, &id)?;
            print_one(ctx, "handoff", &h, || {
                let mut s = handoff_row(&h);
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

fn decision_row(d: &Entity) -> String {
    format!(
        "{}  {}  {}",
        d.id,
        format_ms(d.created_at),
        prop_str(d, "title").unwrap_or("")
    )
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
            print_many(ctx, "decisions", &ds, decision_row);
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
                    let mut s = decision_row(&d);
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
            print_many(ctx, "decisions", &ds, |d| {
                format!(
                    "{}\n    why: {}",
                    decision_row(d),
                    prop_str(d, "rationale").unwrap_or("")
                )
            });
        }
    }
    Ok(())
}
