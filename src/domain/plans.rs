//! Sprints and epics: how tasks are grouped and how far along the groups are.
//!
//! A sprint (`S-…`, kind `sprint`) has `title`, `number`, `status` (available,
//! in_progress, completed, blocked), `goals` (a list of {description, done}),
//! `claimed_by`, `notes`, and a `part_of` edge to its epic if it has one. An epic
//! (`E-…`, kind `epic`) has `title`, `status` (active, completed, on_hold) and
//! `phases` (a list of strings). Tasks join either with a `part_of` edge.
//! Claiming a sprint works as claiming a task: one transaction reading and
//! writing it, so of racing agents one wins.

use crate::tasks::{self, prop_str, write};
use crate::{Direction, Entity, Error, Props, Result, Store, Transaction, Value};

pub const SPRINT: &str = "sprint";
pub const EPIC: &str = "epic";
pub const SPRINT_STATUSES: [&str; 4] = ["available", "in_progress", "completed", "blocked"];
pub const EPIC_STATUSES: [&str; 3] = ["active", "completed", "on_hold"];
pub const PART_OF: &str = "part_of";

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

fn check_title(t: &str) -> Result<()> {
    if t.trim().is_empty() {
        return Err(invalid("a non-empty title is needed"));
    }
    if t.len() > tasks::MAX_TITLE_BYTES {
        return Err(invalid(format!(
            "the title is {} bytes; at most {} are accepted",
            t.len(),
            tasks::MAX_TITLE_BYTES
        )));
    }
    Ok(())
}

pub fn get(tx: &mut Transaction<'_>, id: &str, kind: &str) -> Result<Entity> {
    let id = tasks::resolve(tx, id, kind)?;
    tx.get(&id)?
        .ok_or_else(|| Error::NotFound(format!("no {kind} {id}")))
}

/// Creates an epic.
pub fn create_epic(store: &Store, agent: &str, title: &str, phases: &[String]) -> Result<Entity> {
    check_title(title)?;
    write(store, |tx| {
        let mut p = Props::new();
        p.insert("title".into(), title.trim().into());
        p.insert("status".into(), "active".into());
        p.insert(
            "phases".into(),
            Value::List(phases.iter().map(|s| Value::from(s.as_str())).collect()),
        );
        p.insert("created_by".into(), agent.into());
        tx.create_with_prefix("E-", EPIC, p)
    })
}

/// Creates a sprint, numbered one past the highest so far unless `number` is given.
pub fn create_sprint(
    store: &Store,
    agent: &str,
    title: &str,
    number: Option<i64>,
    epic: Option<&str>,
    goals: &[String],
) -> Result<Entity> {
    check_title(title)?;
    write(store, |tx| {
        let n = match number {
            Some(n) => n,
            None => {
                let all = list(tx, SPRINT)?;
                all.iter()
                    .filter_map(|s| match s.props.get("number") {
                        Some(Value::Int(n)) => Some(*n),
                        _ => None,
                    })
                    .max()
                    .unwrap_or(0)
                    + 1
            }
        };
        let mut p = Props::new();
        p.insert("title".into(), title.trim().into());
        p.insert("number".into(), Value::Int(n));
        p.insert("status".into(), "available".into());
        p.insert(
            "goals".into(),
            Value::List(goals.iter().map(|g| goal(g, false)).collect()),
        );
        p.insert("created_by".into(), agent.into());
        let s = tx.create_with_prefix("S-", SPRINT, p)?;
        if let Some(e) = epic {
            let e = tasks::resolve(tx, e, EPIC)?;
            tx.add_edge(&s.id, PART_OF, &e, Props::new())?;
            let mut p = s.props.clone();
            p.insert("epic".into(), e.as_str().into());
            return tx.put_if_version(&s.id, SPRINT, p, s.version);
        }
        Ok(s)
    })
}

fn goal(description: &str, done: bool) -> Value {
    let mut m = std::collections::BTreeMap::new();
    m.insert("description".to_string(), Value::from(description));
    m.insert("done".to_string(), Value::Bool(done));
    Value::Map(m.into_iter().collect())
}

/// Every entity of `kind` (sprints or epics), in id order.
pub fn list(tx: &mut Transaction<'_>, kind: &str) -> Result<Vec<Entity>> {
    crate::query::Query {
        kind: Some(kind.into()),
        ..Default::default()
    }
    .run(tx)
}

/// The members of a sprint or epic: entities with a `part_of` edge to it.
pub fn members(tx: &mut Transaction<'_>, id: &str) -> Result<Vec<Entity>> {
    let mut out = Vec::new();
    for e in tx.edges(id, Direction::In, Some(PART_OF))? {
        if let Some(m) = tx.get(&e.from)? {
            out.push(m);
        }
    }
    Ok(out)
}

/// How far along a sprint or epic is: its tasks (directly, or through its
/// sprints for an epic) by status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    pub tasks: usize,
    pub completed: usize,
    pub in_progress: usize,
    pub blocked: usize,
    pub pending: usize,
}

impl Progress {
    pub fn percent(&self) -> u32 {
        (self.completed * 100)
            .checked_div(self.tasks)
            .map_or(0, |p| p as u32)
    }
}

pub fn progress(tx: &mut Transaction<'_>, id: &str) -> Result<Progress> {
    let mut p = Progress::default();
    let mut seen = std::collections::BTreeSet::new();
    let mut stack = vec![id.to_string()];
    while let Some(g) = stack.pop() {
        for m in members(tx, &g)? {
            if !seen.insert(m.id.clone()) {
                continue;
            }
            if m.kind == tasks::KIND {
                p.tasks += 1;
                match tasks::status(&m) {
                    "completed" => p.completed += 1,
                    "in_progress" => p.in_progress += 1,
                    "blocked" => p.blocked += 1,
                    _ => p.pending += 1,
                }
            } else if m.kind == SPRINT {
                stack.push(m.id);
            }
        }
    }
    Ok(p)
}

/// Puts a task in a sprint (`part_of` edge).
pub fn add_task(store: &Store, sprint: &str, task: &str) -> Result<(String, String)> {
    write(store, |tx| {
        let s = tasks::resolve(tx, sprint, SPRINT)?;
        let t = tasks::resolve(tx, task, tasks::KIND)?;
        tx.add_edge(&t, PART_OF, &s, Props::new())?;
        Ok((s, t))
    })
}

/// Moves a sprint to `to`, from one of `from`, by `agent`.
fn set_status(store: &Store, id: &str, from: &[&str], to: &str) -> Result<Entity> {
    write(store, |tx| {
        let s = get(tx, id, SPRINT)?;
        let st = prop_str(&s, "status").unwrap_or("available");
        if !from.contains(&st) {
            return Err(invalid(format!(
                "{} is {st}; it must be {} to become {to}",
                s.id,
                from.join(" or ")
            )));
        }
        let mut p = s.props.clone();
        p.insert("status".into(), to.into());
        p.insert(format!("{to}_at"), Value::Int(store.now_ms()));
        tx.put_if_version(&s.id, SPRINT, p, s.version)
    })
}

pub fn start(store: &Store, id: &str) -> Result<Entity> {
    set_status(store, id, &["available", "blocked"], "in_progress")
}

pub fn complete(store: &Store, id: &str) -> Result<Entity> {
    set_status(
        store,
        id,
        &["available", "in_progress", "blocked"],
        "completed",
    )
}

/// Claims a sprint for `agent` (exactly one of racing agents wins; the others
/// get `Conflict` naming the holder).
pub fn claim(store: &Store, id: &str, agent: &str) -> Result<Entity> {
    write(store, |tx| {
        let s = get(tx, id, SPRINT)?;
        match prop_str(&s, "claimed_by").filter(|c| !c.is_empty()) {
            Some(c) if c == agent => return Ok(s),
            Some(c) => {
                return Err(Error::Conflict(format!("{} is claimed by {c}", s.id)));
            }
            None => {}
        }
        if prop_str(&s, "status") == Some("completed") {
            return Err(invalid(format!("{} is completed", s.id)));
        }
        let mut p = s.props.clone();
        p.insert("claimed_by".into(), agent.into());
        tx.put_if_version(&s.id, SPRINT, p, s.version)
    })
}

pub fn release(store: &Store, id: &str, agent: &str, force: bool) -> Result<Entity> {
    write(store, |tx| {
        let s = get(tx, id, SPRINT)?;
        match prop_str(&s, "claimed_by").filter(|c| !c.is_empty()) {
            None => return Err(invalid(format!("{} is not claimed", s.id))),
            Some(c) if c != agent && !force => {
                return Err(Error::Conflict(format!(
                    "{} is claimed by {c}, not {agent} (--force releases it anyway)",
                    s.id
                )))
            }
            _ => {}
        }
        let mut p = s.props.clone();
        p.insert("claimed_by".into(), Value::Null);
        tx.put_if_version(&s.id, SPRINT, p, s.version)
    })
}

pub fn add_goal(store: &Store, id: &str, description: &str) -> Result<Entity> {
    if description.trim().is_empty() {
        return Err(invalid("an empty goal"));
    }
    edit_goals(store, id, |_, goals| {
        goals.push(goal(description, false));
        Ok(())
    })
}

/// Marks goal number `n` (1-based, as `goal list` shows them) done.
pub fn complete_goal(store: &Store, id: &str, n: usize) -> Result<Entity> {
    edit_goals(store, id, |sprint, goals| {
        if n == 0 || n > goals.len() {
            return Err(Error::NotFound(format!(
                "{sprint} has {} goal(s); there is no goal {n}",
                goals.len()
            )));
        }
        let desc = match &goals[n - 1] {
            Value::Map(m) => m
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            _ => String::new(),
        };
        goals[n - 1] = goal(&desc, true);
        Ok(())
    })
}

/// Changes sprint `id`'s list of goals with `f` (given the sprint's id and the
/// list) in one transaction, conditional on the version read.
fn edit_goals(
    store: &Store,
    id: &str,
    f: impl Fn(&str, &mut Vec<Value>) -> Result<()>,
) -> Result<Entity> {
    write(store, |tx| {
        let s = get(tx, id, SPRINT)?;
        let mut p = s.props.clone();
        let mut goals = match p.remove("goals") {
            Some(Value::List(g)) => g,
            _ => Vec::new(),
        };
        f(&s.id, &mut goals)?;
        p.insert("goals".into(), Value::List(goals));
        tx.put_if_version(&s.id, SPRINT, p, s.version)
    })
}

/// A sprint's goals: (description, done).
pub fn goals(s: &Entity) -> Vec<(String, bool)> {
    match s.props.get("goals") {
        Some(Value::List(gs)) => gs
            .iter()
            .filter_map(|g| match g {
                Value::Map(m) => Some((
                    m.get("description")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    matches!(m.get("done"), Some(Value::Bool(true))),
                )),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}
