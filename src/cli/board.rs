//! `got dashboard` (one screen of the state of the work) and `got graph` (the
//! dependency graph as DOT, Mermaid or JSON).

use super::args::GraphFormat;
use super::ctx::Ctx;
use super::CmdResult;
use got::board::Prime;
use got::graph::{bfs, EdgeFilter};
use got::json::TASK_SCHEMA_VERSION as SCHEMA_VERSION;
use got::tasks::{self, prop_str};
use got::{Direction, Entity};
use serde_json::json;
use std::collections::BTreeSet;

fn title(e: &Entity) -> &str {
    prop_str(e, "title").unwrap_or("")
}

pub fn dashboard(ctx: &Ctx) -> CmdResult {
    let store = ctx.open_read_only()?;
    let d = got::board::Dashboard::gather(&mut store.begin()?)?;
    if ctx.quiet {
        for t in &d.ready {
            println!("{}", t.id);
        }
        return Ok(());
    }
    ctx.print(d.to_json(), || super::render::dashboard(&d));
    Ok(())
}

/// Node label for pictures: id and title, quotes escaped.
fn label(e: &Entity) -> String {
    format!("{}\\n{}", e.id, title(e).replace('"', "'"))
}

pub fn graph(
    ctx: &Ctx,
    id: Option<String>,
    depth: Option<usize>,
    format: GraphFormat,
) -> CmdResult {
    let store = ctx.open_read_only()?;
    let mut tx = store.begin()?;
    // The nodes: the whole task graph, or what `depends_on` edges reach from ID
    // (either way) within the depth.
    let nodes: Vec<Entity> = match &id {
        None => tasks::list(&mut tx, &tasks::TaskFilter::default())?,
        Some(id) => {
            let t = tasks::get(&mut tx, id)?;
            let f = EdgeFilter::out(&[tasks::DEPENDS_ON]).direction(Direction::Both);
            let mut out = Vec::new();
            for (n, _) in bfs(&mut tx, &t.id, &f, depth)? {
                if let Some(e) = tx.get(&n)? {
                    out.push(e);
                }
            }
            out
        }
    };
    let ids: BTreeSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    let mut edges = Vec::new();
    for n in &nodes {
        for e in tx.edges(&n.id, Direction::Out, Some(tasks::DEPENDS_ON))? {
            if ids.contains(e.to.as_str()) {
                edges.push((e.from, e.to));
            }
        }
    }
    let text = match format {
        GraphFormat::Json => json!({
            "schema_version": SCHEMA_VERSION,
            "nodes": nodes.iter().map(|n| json!({"id": n.id, "title": title(n), "status": tasks::status(n)})).collect::<Vec<_>>(),
            "edges": edges.iter().map(|(a, b)| json!({"from": a, "kind": tasks::DEPENDS_ON, "to": b})).collect::<Vec<_>>(),
        })
        .to_string(),
        GraphFormat::Dot => {
            let mut s = String::from("digraph tasks {\n  rankdir=LR;\n  node [shape=box];\n");
            for n in &nodes {
                let color = match tasks::status(n) {
                    "completed" => "palegreen",
                    "in_progress" => "lightblue",
                    "blocked" => "salmon",
                    _ => "white",
                };
                s.push_str(&format!(
                    "  \"{}\" [label=\"{}\", style=filled, fillcolor={color}];\n",
                    n.id,
                    label(n)
                ));
            }
            for (a, b) in &edges {
                s.push_str(&format!("  \"{a}\" -> \"{b}\" [label=\"depends_on\"];\n"));
            }
            s.push('}');
            s
        }
        GraphFormat::Mermaid => {
            let mut s = String::from("graph LR\n");
            let key = |id: &str| id.replace('-', "_");
            for n in &nodes {
                s.push_str(&format!(
                    "  {}[\"{} {}: {}\"]\n",
                    key(&n.id),
                    n.id,
                    tasks::status(n),
                    title(n).replace('"', "'")
                ));
            }
            for (a, b) in &edges {
                s.push_str(&format!("  {} -->|depends_on| {}\n", key(a), key(b)));
            }
            s.trim_end().to_string()
        }
    };
    // The format is the output: --json selects nothing more.
    println!("{text}");
    Ok(())
}

/// `got prime`: a short start-of-session summary for one agent.
pub fn prime(ctx: &Ctx, limit: usize) -> CmdResult {
    let agent = ctx.agent();
    let located = ctx.locate()?;
    let store = ctx.open_read_only()?;
    let p = Prime::gather(&mut store.begin()?, &agent, limit)?;
    let Prime {
        claimed: mine,
        handoffs_for_you: waiting,
        ready,
        ..
    } = &p;
    ctx.print(p.to_json(&located.dir), || {
        let title = |e: &got::Entity| prop_str(e, "title").unwrap_or("").to_string();
        let mut s = format!("got store {} · you are {agent}\n", located.dir.display());
        if mine.is_empty() {
            s.push_str("claimed: none\n");
        }
        for t in mine.iter() {
            let lease = match got::tasks::lease_expires_at(t) {
                Some(ms) => format!(" (lease until {})", got::json::format_ms(ms)),
                None => String::new(),
            };
            s.push_str(&format!("claimed: {}  {}{lease}\n", t.id, title(t)));
        }
        for h in waiting.iter() {
            s.push_str(&format!(
                "handoff for you: {} from {} on {}: {}\n",
                h.id,
                prop_str(h, "from").unwrap_or("?"),
                prop_str(h, "task").unwrap_or("?"),
                prop_str(h, "instructions").unwrap_or("")
            ));
        }
        if ready.is_empty() {
            s.push_str("ready: nothing\n");
        }
        for t in ready.iter() {
            s.push_str(&format!(
                "ready: {}  [{}]  {}\n",
                t.id,
                prop_str(t, "priority").unwrap_or("-"),
                title(t)
            ));
        }
        s.push_str("loop:");
        for (c, w) in got::board::LOOP {
            s.push_str(&format!("\n  {c:<56} {w}"));
        }
        s
    });
    Ok(())
}
