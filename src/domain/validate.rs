//! Domain invariants of the work graph, checked by `got validate` after
//! `verify` has checked the bytes: dangling references, dependency cycles,
//! impossible states, expired leases, and how many tasks hang in the air.

use crate::graph::{strongly_connected_components, EdgeFilter};
use crate::tasks::{self, prop_str};
use crate::{handoffs, plans, Direction, Entity, Result, Transaction, Value};

/// What `validate` found: `problems` break an invariant; `warnings` deserve a
/// look (expired leases, orphans).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
    pub tasks: usize,
    /// Tasks with no edge at all (no dependency either way, no parent, no sprint
    /// or epic).
    pub orphans: usize,
}

impl Report {
    pub fn orphan_rate(&self) -> f64 {
        if self.tasks == 0 {
            0.0
        } else {
            self.orphans as f64 / self.tasks as f64
        }
    }
}

fn one_of(r: &mut Report, e: &Entity, field: &str, allowed: &[&str], required: bool) {
    match e.props.get(field) {
        None | Some(Value::Null) if !required => {}
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => {}
        other => r.problems.push(format!(
            "{} has {field} {:?}, not one of {}",
            e.id,
            other.map(crate::json::to_json),
            allowed.join(", ")
        )),
    }
}

/// Checks every task, handoff and sprint as of `now` (ms).
pub fn validate(tx: &mut Transaction<'_>, now: i64) -> Result<Report> {
    let mut r = Report::default();
    let all = tx.list(None, None)?;
    let exists = |tx: &mut Transaction<'_>, id: &str| -> Result<bool> { Ok(tx.get(id)?.is_some()) };
    for e in &all {
        match e.kind.as_str() {
            tasks::KIND => {
                r.tasks += 1;
                one_of(&mut r, e, "status", &tasks::STATUSES, true);
                one_of(&mut r, e, "priority", &tasks::PRIORITIES, false);
                one_of(&mut r, e, "category", &tasks::CATEGORIES, false);
                let st = tasks::status(e);
                if prop_str(e, "title").is_none_or(|t| t.trim().is_empty()) {
                    r.problems.push(format!("{} has no title", e.id));
                }
                if st == "in_progress" && tasks::assignee(e).is_none() {
                    r.problems
                        .push(format!("{} is in progress with nobody assigned", e.id));
                }
                if st == "blocked" && prop_str(e, "blocked_reason").is_none() {
                    r.problems
                        .push(format!("{} is blocked without a blocked_reason", e.id));
                }
                if st == "completed" && tasks::lease_expires_at(e).is_some() {
                    r.problems
                        .push(format!("{} is completed but still under a lease", e.id));
                }
                if st == "in_progress" && tasks::lease_expired(e, now) {
                    r.warnings.push(format!(
                        "{}: the lease of {} ran out at {}; `got task reclaim --stale` frees it",
                        e.id,
                        tasks::assignee(e).unwrap_or("?"),
                        crate::json::format_ms(tasks::lease_expires_at(e).unwrap_or(0))
                    ));
                }
                if tx.edges(&e.id, Direction::Both, None)?.is_empty() {
                    r.orphans += 1;
                }
            }
            handoffs::KIND => {
                one_of(&mut r, e, "status", &handoffs::STATUSES, true);
                match prop_str(e, "task") {
                    Some(t) if exists(tx, t)? => {}
                    t => r.problems.push(format!(
                        "{} hands off task {t:?}, which does not exist",
                        e.id
                    )),
                }
            }
            plans::SPRINT => {
                one_of(&mut r, e, "status", &plans::SPRINT_STATUSES, true);
                if let Some(ep) = prop_str(e, "epic") {
                    if !exists(tx, ep)? {
                        r.problems.push(format!(
                            "{} belongs to epic {ep}, which does not exist",
                            e.id
                        ));
                    }
                }
            }
            plans::EPIC => one_of(&mut r, e, "status", &plans::EPIC_STATUSES, true),
            _ => {}
        }
    }
    let f = EdgeFilter::out(&[tasks::DEPENDS_ON]);
    for cycle in strongly_connected_components(tx, None, &f, true)? {
        r.problems
            .push(format!("dependency cycle: {}", cycle.join(" -> ")));
    }
    Ok(r)
}
