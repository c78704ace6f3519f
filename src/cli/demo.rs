//! `got demo`: a small graph written from several threads into a new
//! temporary store, read back and shown.

use super::ctx::Ctx;
use super::{exit, CmdResult, Failure};
use got::Store;
use serde_json::json;
use std::path::Path;

/// A small multi-agent scenario in a new temporary store: a planner lays out an
/// epic, a sprint and eight dependent tasks and logs a decision; `threads` agents
/// (threads, each its own handle, as separate processes would be) claim ready
/// tasks with `next --claim` and complete them until none is left; one task is
/// handed off; then the dashboard.
pub(super) fn demo(ctx: &Ctx, threads: usize) -> CmdResult {
    use got::{decisions, handoffs, plans, tasks};
    let threads = threads.clamp(1, 64);
    let tmp = tempfile::Builder::new()
        .prefix("got-demo-")
        .tempdir()
        .map_err(|e| Failure::new("io", exit::ERROR, format!("temporary directory: {e}")))?
        .keep();
    let dir = tmp.join(".got");
    if !ctx.json {
        println!("demo store: {}\n", dir.display());
    }
    got::init(&got::wal::RealVfs, &dir)?;
    let store = Store::open(&dir, ctx.options()?)?.with_actor("planner");
    let epic = plans::create_epic(
        &store,
        "planner",
        "Ship the WAL",
        &["design".into(), "build".into()],
    )?;
    let sprint = plans::create_sprint(
        &store,
        "planner",
        "Sprint 1",
        None,
        Some(&epic.id),
        &["recovery survives SIGKILL".into()],
    )?;
    // (title, priority, indexes of the tasks it depends on)
    let plan: [(&str, &str, &[usize]); 8] = [
        ("Design the segment format", "critical", &[]),
        ("Write segments with preallocation", "high", &[0]),
        ("Recover a torn tail", "high", &[1]),
        ("Kill writers in a loop", "medium", &[2]),
        ("Benchmark durable commits", "medium", &[1]),
        ("Document the format", "low", &[0]),
        ("CLI: got verify", "high", &[]),
        ("Review the CLI", "medium", &[6]),
    ];
    let mut ids: Vec<String> = Vec::new();
    for (title, priority, deps) in plan {
        let t = tasks::create(
            &store,
            "planner",
            &tasks::NewTask {
                title: title.into(),
                priority: Some(priority.into()),
                depends_on: deps.iter().map(|d| ids[*d].clone()).collect(),
                part_of: vec![sprint.id.clone()],
                ..Default::default()
            },
        )?;
        ids.push(t.id);
    }
    decisions::log(
        &store,
        "planner",
        "Zero-fill segments instead of fallocate",
        "appends into unwritten extents journal a conversion on every first write",
        &["fallocate".into()],
        std::slice::from_ref(&ids[1]),
    )?;
    plans::start(&store, &sprint.id)?;

    // The agents: claim, work, complete, until nothing is ready.
    let started = std::time::Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|n| {
            let agent = format!("agent-{n}");
            let store = store.with_actor(agent.clone());
            std::thread::spawn(move || -> Result<Vec<(String, String)>, got::Error> {
                let mut done = Vec::new();
                while let Some(t) =
                    tasks::next_claim(&store, &agent, Some(std::time::Duration::from_secs(600)))?
                {
                    tasks::note(&store, &t.id, &agent, "on it")?;
                    tasks::complete(&store, &t.id, &agent, Some("went as planned"))?;
                    done.push((t.id, agent.clone()));
                }
                Ok(done)
            })
        })
        .collect();
    let mut log = Vec::new();
    for h in handles {
        log.extend(
            h.join()
                .map_err(|_| Failure::new("io", exit::ERROR, "a demo agent panicked"))??,
        );
    }
    let elapsed = started.elapsed();
    // One more task, handed from one agent to another mid-way.
    let polish = tasks::create(
        &store,
        "planner",
        &tasks::NewTask {
            title: "Polish the error messages".into(),
            part_of: vec![sprint.id.clone()],
            ..Default::default()
        },
    )?;
    let from = "agent-0".to_string();
    let to = format!("agent-{}", 1 % threads.max(2));
    tasks::claim(&store, &polish.id, &from, None)?;
    let h = handoffs::initiate(&store, &polish.id, &from, &to, "finish the wording", None)?;
    handoffs::accept(&store, &h.id, &to)?;
    plans::complete_goal(&store, &sprint.id, 1)?;

    if ctx.json {
        println!(
            "{}",
            json!({"store": dir, "agents": threads, "completed": log.iter().map(|(t, a)| json!({"task": t, "agent": a})).collect::<Vec<_>>(),
                   "elapsed_ms": elapsed.as_millis() as u64, "handoff": h.id, "epic": epic.id, "sprint": sprint.id})
        );
        return Ok(());
    }
    println!(
        "{threads} agents claimed and completed {} tasks in {} ms; each claim one durable transaction, no task claimed twice:",
        log.len(),
        elapsed.as_millis()
    );
    for (t, a) in &log {
        println!("  {a:<9} {t}");
    }
    println!(
        "{from} handed {} to {to} ({}), who accepted it.\n",
        polish.id, h.id
    );
    let board = got::board::Dashboard::gather(&mut store.begin()?)?;
    anstream::println!("{}", super::render::dashboard(&board));
    println!(
        "\ntry: got --store {} task list   (or dashboard, graph, blocked, decision why {})",
        shell_quote(&dir),
        ids[1]
    );
    Ok(())
}

pub(super) fn shell_quote(p: &Path) -> String {
    let s = p.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
