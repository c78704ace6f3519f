//! The two summaries of the work: the dashboard (one screen of everything:
//! `got dashboard`, `GET /v1/dashboard`, the MCP tool `dashboard`) and the
//! prime (what one agent should know at the start of a session: `got prime`).
//! Gathered in one read transaction; shown as text by the CLI and as the same
//! JSON everywhere.

use crate::json::{task_json, TASK_SCHEMA_VERSION};
use crate::plans::Progress;
use crate::tasks::{self, prop_str, Blocked};
use crate::{decisions, handoffs, plans, Entity, Result, Transaction};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;

/// The state of the work, as `got dashboard` shows it.
pub struct Dashboard {
    /// Tasks per status, every status present.
    pub counts: BTreeMap<&'static str, usize>,
    /// The first ten ready tasks.
    pub ready: Vec<Entity>,
    /// Tasks in progress, by assignee (`(nobody)` for none).
    pub in_progress: BTreeMap<String, Vec<Entity>>,
    pub blocked: Blocked,
    /// Handoffs initiated or accepted.
    pub handoffs: Vec<Entity>,
    /// The five most recent decisions.
    pub decisions: Vec<Entity>,
    /// Sprints not completed, with their progress.
    pub sprints: Vec<(Entity, Progress)>,
}

impl Dashboard {
    pub fn gather(tx: &mut Transaction<'_>) -> Result<Dashboard> {
        let all = tasks::list(tx, &tasks::TaskFilter::default())?;
        let mut counts: BTreeMap<&'static str, usize> =
            tasks::STATUSES.iter().map(|s| (*s, 0)).collect();
        let mut in_progress: BTreeMap<String, Vec<Entity>> = BTreeMap::new();
        for t in all {
            let status = tasks::status(&t);
            if let Some(n) = counts.get_mut(status) {
                *n += 1;
            }
            if status == "in_progress" {
                let who = tasks::assignee(&t).unwrap_or("(nobody)").to_string();
                in_progress.entry(who).or_default().push(t);
            }
        }
        let ready = crate::ready::ready(tx, Some(10))?;
        let blocked = tasks::blocked(tx)?;
        let mut pending = handoffs::list(tx, Some("initiated"), None, None)?;
        pending.extend(handoffs::list(tx, Some("accepted"), None, None)?);
        let decisions = decisions::list(tx, Some(5))?;
        let mut sprints = Vec::new();
        for s in plans::list(tx, plans::SPRINT)? {
            if prop_str(&s, "status") != Some("completed") {
                let p = plans::progress(tx, &s.id)?;
                sprints.push((s, p));
            }
        }
        Ok(Dashboard {
            counts,
            ready,
            in_progress,
            blocked,
            handoffs: pending,
            decisions,
            sprints,
        })
    }

    pub fn to_json(&self) -> Json {
        let title = |e: &Entity| prop_str(e, "title").map(str::to_string);
        let ids = |ts: &[Entity]| ts.iter().map(|t| t.id.clone()).collect::<Vec<_>>();
        json!({
            "schema_version": TASK_SCHEMA_VERSION,
            "counts": self.counts,
            "ready": self.ready.iter().map(task_json).collect::<Vec<_>>(),
            "in_progress": self.in_progress.iter().map(|(a, ts)| (a.clone(), ids(ts))).collect::<BTreeMap<_, _>>(),
            "blocked": self.blocked.by_hand.iter().map(|t| json!({"id": t.id, "reason": prop_str(t, "blocked_reason")})).collect::<Vec<_>>(),
            "waiting": self.blocked.waiting.iter().map(|(t, open)| json!({"id": t.id, "waits_on": ids(open)})).collect::<Vec<_>>(),
            "handoffs": self.handoffs.iter().map(|h| json!({"id": h.id, "status": handoffs::status(h), "to": prop_str(h, "to"), "task": prop_str(h, "task")})).collect::<Vec<_>>(),
            "decisions": self.decisions.iter().map(|d| json!({"id": d.id, "title": title(d)})).collect::<Vec<_>>(),
            "sprints": self.sprints.iter().map(|(s, p)| json!({"id": s.id, "title": title(s), "status": prop_str(s, "status"), "percent": p.percent(), "tasks": p.tasks, "completed": p.completed})).collect::<Vec<_>>(),
        })
    }
}

/// The agent loop, as `got prime` teaches it: a command and what it is for.
pub const LOOP: [(&str, &str); 5] = [
    (
        "got task next --claim",
        "take the first ready task (exit 3: none)",
    ),
    ("got task note ID \"…\"", "record what you found or did"),
    ("got task complete ID --retrospective \"…\"", "finish it"),
    ("got task block ID --reason \"…\"", "stuck: say why"),
    (
        "got handoff initiate ID --to AGENT --instructions \"…\"",
        "hand it on",
    ),
];

/// What one agent should know at the start of a session.
pub struct Prime {
    pub agent: String,
    /// The agent's tasks in progress (its claims, with their leases).
    pub claimed: Vec<Entity>,
    /// Handoffs to the agent not yet accepted.
    pub handoffs_for_you: Vec<Entity>,
    /// The top of the ready queue.
    pub ready: Vec<Entity>,
}

impl Prime {
    pub fn gather(tx: &mut Transaction<'_>, agent: &str, limit: usize) -> Result<Prime> {
        let claimed = tasks::list(
            tx,
            &tasks::TaskFilter {
                status: vec!["in_progress".into()],
                assignee: Some(agent.to_string()),
                ..Default::default()
            },
        )?;
        let handoffs_for_you = handoffs::list(tx, Some("initiated"), Some(agent), None)?;
        let ready = crate::ready::ready(tx, Some(limit))?;
        Ok(Prime {
            agent: agent.to_string(),
            claimed,
            handoffs_for_you,
            ready,
        })
    }

    /// The JSON of `got prime --json`; `store` is the store's directory.
    pub fn to_json(&self, store: &std::path::Path) -> Json {
        let many = |es: &[Entity]| es.iter().map(task_json).collect::<Vec<_>>();
        json!({
            "schema_version": TASK_SCHEMA_VERSION,
            "store": store,
            "agent": self.agent,
            "claimed": many(&self.claimed),
            "handoffs_for_you": many(&self.handoffs_for_you),
            "ready": many(&self.ready),
            "loop": LOOP.iter().map(|(c, w)| json!({"command": c, "what": w})).collect::<Vec<_>>(),
        })
    }
}
