//! Tasks: the work items agents create, claim, start, block and complete.
//!
//! A task is an entity of kind `task` with id `T-` + 10 base32 characters (50
//! random bits). Its properties (docs/cli.md has the schema): `title`,
//! `description`, `status` (pending, in_progress, blocked, completed), `priority`
//! (critical, high, medium, low), `category`, `labels`, `assignee`,
//! `lease_expires_at` (ms since the epoch; null: no expiry), `estimate_hours`,
//! `retrospective`, `blocked_reason`, `notes` (a list of {at, author, text}),
//! `created_by`, `completed_by`, `started_at`, `completed_at`.
//! Dependencies are `depends_on` edges from the dependent task to what it waits
//! on, stored one way only.
//!
//! Claiming is a transaction that reads the task and writes it: of any number of
//! agents racing for one task, the store's commit validation lets exactly one
//! through; the others re-read, find it taken and are told by whom.

use crate::graph;
use crate::json::format_ms;
use crate::{Direction, Entity, Error, Props, Result, Store, Transaction, Value};
use std::time::Duration;

pub const KIND: &str = "task";
pub const ID_PREFIX: &str = "T-";
pub const STATUSES: [&str; 4] = ["pending", "in_progress", "blocked", "completed"];
/// In queue order.
pub const PRIORITIES: [&str; 4] = ["critical", "high", "medium", "low"];
pub const CATEGORIES: [&str; 10] = [
    "arch",
    "feature",
    "bugfix",
    "test",
    "docs",
    "refactor",
    "debt",
    "devex",
    "security",
    "performance",
];
/// The dependency edge: `A depends_on B` means A waits for B.
pub const DEPENDS_ON: &str = "depends_on";
/// Longest title accepted, in bytes.
pub const MAX_TITLE_BYTES: usize = 500;
/// Longest description, note or reason accepted, in bytes.
pub const MAX_TEXT_BYTES: usize = 64 << 10;
/// A claim's lease when none is given.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(3600);
/// Attempts at a write that keeps losing races before giving up with `Conflict`.
const MAX_ATTEMPTS: usize = 200;

/// Milliseconds since the Unix epoch, by the system clock. The task commands read
/// the store's clock instead ([`versioned_store::Store::now_ms`]), which tests and
/// `GOT_NOW_MS` can set.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

fn one_of(what: &str, v: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what} {v:?} is not one of {}",
            allowed.join(", ")
        )))
    }
}

fn check_text(what: &str, s: &str, max: usize) -> Result<()> {
    if s.len() > max {
        return Err(invalid(format!(
            "{what} is {} bytes; at most {max} are accepted",
            s.len()
        )));
    }
    Ok(())
}

fn check_title(t: &str) -> Result<()> {
    if t.trim().is_empty() {
        return Err(invalid("a task needs a non-empty title"));
    }
    check_text("the title", t, MAX_TITLE_BYTES)
}

fn check_label(l: &str) -> Result<()> {
    if l.trim().is_empty() {
        return Err(invalid("an empty label"));
    }
    check_text("a label", l, MAX_TITLE_BYTES)
}

fn check_estimate(h: f64) -> Result<()> {
    if !(h.is_finite() && h >= 0.0) {
        return Err(invalid(format!("estimate_hours {h} must be a number >= 0")));
    }
    Ok(())
}

/// A string property, if set to a string.
pub fn prop_str<'a>(e: &'a Entity, name: &str) -> Option<&'a str> {
    e.props.get(name).and_then(Value::as_str)
}

pub fn status(e: &Entity) -> &str {
    prop_str(e, "status").unwrap_or("pending")
}

/// The agent holding the task, if any.
pub fn assignee(e: &Entity) -> Option<&str> {
    prop_str(e, "assignee").filter(|a| !a.is_empty())
}

/// When the holder's claim lapses (ms), if it does.
pub fn lease_expires_at(e: &Entity) -> Option<i64> {
    match e.props.get("lease_expires_at") {
        Some(Value::Int(t)) => Some(*t),
        Some(Value::Float(t)) => Some(*t as i64),
        _ => None,
    }
}

/// Whether the task is held under a lease that has run out at `now`.
pub fn lease_expired(e: &Entity, now: i64) -> bool {
    assignee(e).is_some() && lease_expires_at(e).is_some_and(|t| t <= now)
}

/// Runs `f` and commits, running it again from a fresh snapshot while the commit
/// loses a race (`Conflict` at commit). Errors `f` returns are returned as they
/// are, so a refusal ("claimed by B") is not retried.
pub fn write<T>(store: &Store, mut f: impl FnMut(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
    for attempt in 0..MAX_ATTEMPTS {
        let mut tx = store.begin()?;
        let v = f(&mut tx)?;
        match tx.commit() {
            Ok(_) => return Ok(v),
            Err(Error::Conflict(_)) => {
                // Racing processes interleave instead of colliding again at once.
                let jitter = crate::versioned_store::store::random_u64() % 200;
                std::thread::sleep(Duration::from_micros(jitter * (attempt as u64 + 1).min(20)));
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict(format!(
        "lost {MAX_ATTEMPTS} races in a row to other writers; try again"
    )))
}

/// The full id of an entity of `kind` named by `id` or by a unique prefix of at
/// least 4 characters.
pub fn resolve(tx: &mut Transaction<'_>, id: &str, kind: &str) -> Result<String> {
    if id.is_empty() {
        return Err(invalid(format!("an empty {kind} id")));
    }
    if crate::versioned_store::model::check_id(id).is_ok() {
        if let Some(e) = tx.get(id)? {
            if e.kind == kind {
                return Ok(e.id);
            }
            return Err(Error::NotFound(format!(
                "{id} is a {}, not a {kind}",
                e.kind
            )));
        }
    }
    if id.chars().count() < 4 {
        return Err(Error::NotFound(format!(
            "no {kind} {id} (an abbreviated id needs at least 4 characters)"
        )));
    }
    let mut found = Vec::new();
    for cand in tx.ids_with_prefix(id, 64)? {
        if tx.get(&cand)?.is_some_and(|e| e.kind == kind) {
            found.push(cand);
        }
    }
    match found.len() {
        0 => Err(Error::NotFound(format!("no {kind} {id}"))),
        1 => Ok(found.pop().expect("one")),
        _ => Err(invalid(format!(
            "{id} is ambiguous: {} and more; give more characters",
            found[..found.len().min(3)].join(", ")
        ))),
    }
}

/// Reads a task by id or prefix.
pub fn get(tx: &mut Transaction<'_>, id: &str) -> Result<Entity> {
    let id = resolve(tx, id, KIND)?;
    tx.get(&id)?
        .ok_or_else(|| Error::NotFound(format!("no task {id}")))
}

/// What `create` needs; everything but the title has a default.
#[derive(Clone, Debug, Default)]
pub struct NewTask {
    pub title: String,
    pub description: Option<String>,
    /// Default `medium`.
    pub priority: Option<String>,
    pub category: Option<String>,
    pub labels: Vec<String>,
    pub estimate_hours: Option<f64>,
    /// Tasks this one waits for.
    pub depends_on: Vec<String>,
    /// Tasks that wait for this one (each gets a `depends_on` edge to it).
    pub blocks: Vec<String>,
    /// A parent task (`parent_of` edge from it).
    pub parent: Option<String>,
    /// A sprint or epic this task is part of (`part_of` edges).
    pub part_of: Vec<String>,
}

fn set(p: &mut Props, k: &str, v: impl Into<Value>) {
    p.insert(k.to_string(), v.into());
}

/// Creates a task (and its edges) in one transaction.
pub fn create(store: &Store, agent: &str, t: &NewTask) -> Result<Entity> {
    check_title(&t.title)?;
    if let Some(d) = &t.description {
        check_text("the description", d, MAX_TEXT_BYTES)?;
    }
    let priority = t.priority.as_deref().unwrap_or("medium");
    one_of("priority", priority, &PRIORITIES)?;
    if let Some(c) = &t.category {
        one_of("category", c, &CATEGORIES)?;
    }
    for l in &t.labels {
        check_label(l)?;
    }
    if let Some(h) = t.estimate_hours {
        check_estimate(h)?;
    }
    write(store, |tx| {
        let mut p = Props::new();
        set(&mut p, "title", t.title.trim());
        if let Some(d) = &t.description {
            set(&mut p, "description", d.as_str());
        }
        set(&mut p, "status", "pending");
        set(&mut p, "priority", priority);
        if let Some(c) = &t.category {
            set(&mut p, "category", c.as_str());
        }
        let mut labels: Vec<String> = t.labels.clone();
        labels.sort();
        labels.dedup();
        set(
            &mut p,
            "labels",
            Value::List(labels.into_iter().map(Value::from).collect()),
        );
        if let Some(h) = t.estimate_hours {
            set(&mut p, "estimate_hours", Value::Float(h));
        }
        set(&mut p, "created_by", agent);
        let task = tx.create_with_prefix(ID_PREFIX, KIND, p)?;
        for d in &t.depends_on {
            let d = resolve(tx, d, KIND)?;
            tx.add_edge(&task.id, DEPENDS_ON, &d, Props::new())?;
        }
        for b in &t.blocks {
            let b = resolve(tx, b, KIND)?;
            // The new task's own dependencies may lead back to `b`.
            if let Some(cycle) = graph::would_close_cycle(tx, &b, &task.id, &[DEPENDS_ON])? {
                return Err(invalid(format!(
                    "--blocks {b} would close a cycle: {}",
                    cycle.join(" -> ")
                )));
            }
            tx.add_edge(&b, DEPENDS_ON, &task.id, Props::new())?;
        }
        if let Some(parent) = &t.parent {
            let parent = resolve(tx, parent, KIND)?;
            tx.add_edge(&parent, "parent_of", &task.id, Props::new())?;
        }
        for c in &t.part_of {
            let c = resolve_any(tx, c, &["sprint", "epic"])?;
            tx.add_edge(&task.id, "part_of", &c, Props::new())?;
        }
        Ok(task)
    })
}

/// An id of one of several kinds.
fn resolve_any(tx: &mut Transaction<'_>, id: &str, kinds: &[&str]) -> Result<String> {
    let mut last = None;
    for k in kinds {
        match resolve(tx, id, k) {
            Ok(id) => return Ok(id),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::NotFound(id.to_string())))
}

/// The tasks `id` depends on that are not completed.
pub fn open_dependencies(tx: &mut Transaction<'_>, id: &str) -> Result<Vec<Entity>> {
    let mut out = Vec::new();
    for e in tx.edges(id, Direction::Out, Some(DEPENDS_ON))? {
        if let Some(t) = tx.get(&e.to)? {
            if status(&t) != "completed" {
                out.push(t);
            }
        }
    }
    Ok(out)
}

/// Writes `t` with `props` changed, refusing if it changed since it was read
/// (the read is in the transaction's read set, so a race is a commit conflict).
fn update_props(
    tx: &mut Transaction<'_>,
    t: &Entity,
    f: impl FnOnce(&mut Props),
) -> Result<Entity> {
    let mut p = t.props.clone();
    f(&mut p);
    if p == t.props {
        // Nothing changes: no new version.
        return Ok(t.clone());
    }
    tx.put_if_version(&t.id, &t.kind, p, t.version)
}

/// Claims a ready task for `agent`: pending and unassigned (or held under a lease
/// that has run out), every dependency completed. Sets it in progress, assigned
/// to `agent`, with a lease of `lease` (`None`: no expiry). Claiming a task one
/// already holds renews the lease. Refusals: `Conflict` naming the holder when
/// another agent holds it; `Invalid` when it is not ready (and why).
pub fn claim(store: &Store, id: &str, agent: &str, lease: Option<Duration>) -> Result<Entity> {
    write(store, |tx| {
        let t = get(tx, id)?;
        claim_in(tx, &t, agent, lease, store.now_ms())
    })
}

fn claim_in(
    tx: &mut Transaction<'_>,
    t: &Entity,
    agent: &str,
    lease: Option<Duration>,
    now: i64,
) -> Result<Entity> {
    let held_by_other = assignee(t).is_some_and(|a| a != agent);
    if held_by_other && !lease_expired(t, now) {
        let until = lease_expires_at(t)
            .map(|ms| format!(" (lease until {})", format_ms(ms)))
            .unwrap_or_default();
        return Err(Error::Conflict(format!(
            "{} is claimed by {}{until}",
            t.id,
            assignee(t).unwrap_or("?")
        )));
    }
    let st = status(t);
    let renew = assignee(t) == Some(agent) && st == "in_progress";
    if !(st == "pending" || renew || (st == "in_progress" && lease_expired(t, now))) {
        return Err(invalid(format!(
            "{} is {st}; only a pending task can be claimed",
            t.id
        )));
    }
    let open = open_dependencies(tx, &t.id)?;
    if !open.is_empty() {
        let ids: Vec<String> = open
            .iter()
            .map(|d| format!("{} ({})", d.id, status(d)))
            .collect();
        return Err(invalid(format!(
            "{} is not ready: it depends on {}",
            t.id,
            ids.join(", ")
        )));
    }
    update_props(tx, t, |p| {
        set(p, "status", "in_progress");
        set(p, "assignee", agent);
        set(
            p,
            "lease_expires_at",
            lease.map_or(Value::Null, |d| {
                // A lease too long for the clock saturates instead of wrapping.
                let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                Value::Int(now.saturating_add(ms))
            }),
        );
        p.entry("started_at".into()).or_insert(Value::Int(now));
    })
}

/// Claims the first task of the ready queue that can still be claimed, retrying
/// past tasks other agents take meanwhile: N agents asking at once get N
/// different tasks. `None` only when no ready task remains.
pub fn next_claim(store: &Store, agent: &str, lease: Option<Duration>) -> Result<Option<Entity>> {
    // Also tasks held under leases that ran out: claimable, but not in the ready
    // index (they are assigned).
    write(store, |tx| {
        let now = store.now_ms();
        let mut skip = 0;
        loop {
            let batch = crate::ready::ready(tx, Some(skip + 16))?;
            let fresh = &batch[skip.min(batch.len())..];
            for t in fresh {
                match claim_in(tx, t, agent, lease, now) {
                    Ok(t) => return Ok(Some(t)),
                    // Taken or changed since the index was read: the next one.
                    Err(Error::Conflict(_) | Error::Invalid(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
            if batch.len() < skip + 16 {
                break;
            }
            skip = batch.len();
        }
        for t in stale_claims(tx, now)? {
            if let Ok(t) = claim_in(tx, &t, agent, lease, now) {
                return Ok(Some(t));
            }
        }
        Ok(None)
    })
}

/// The first ready task, without claiming it.
pub fn next(store: &Store) -> Result<Option<Entity>> {
    let mut tx = store.begin()?;
    Ok(crate::ready::ready(&mut tx, Some(1))?.into_iter().next())
}

/// In-progress tasks whose lease has run out.
pub fn stale_claims(tx: &mut Transaction<'_>, now: i64) -> Result<Vec<Entity>> {
    let q = crate::query::Query {
        kind: Some(KIND.into()),
        filters: vec![crate::query::Filter::Eq(
            "status".into(),
            "in_progress".into(),
        )],
        ..Default::default()
    };
    Ok(q.run(tx)?
        .into_iter()
        .filter(|t| lease_expired(t, now))
        .collect())
}

/// Gives a claimed task back: pending and unassigned again. Only its holder may,
/// unless `force`.
pub fn release(store: &Store, id: &str, agent: &str, force: bool) -> Result<Entity> {
    write(store, |tx| {
        let t = get(tx, id)?;
        match assignee(&t) {
            None => return Err(invalid(format!("{} is not claimed", t.id))),
            Some(a) if a != agent && !force => {
                return Err(Error::Conflict(format!(
                    "{} is claimed by {a}, not {agent} (--force releases it anyway)",
                    t.id
                )))
            }
            _ => {}
        }
        if status(&t) == "completed" {
            return Err(invalid(format!("{} is completed", t.id)));
        }
        unclaim(tx, &t)
    })
}

fn unclaim(tx: &mut Transaction<'_>, t: &Entity) -> Result<Entity> {
    update_props(tx, t, |p| {
        set(p, "assignee", Value::Null);
        set(p, "lease_expires_at", Value::Null);
        if p.get("status").and_then(Value::as_str) == Some("in_progress") {
            set(p, "status", "pending");
        }
    })
}

/// Releases every claim whose lease has run out; returns the tasks released.
pub fn reclaim_stale(store: &Store) -> Result<Vec<Entity>> {
    write(store, |tx| {
        let now = store.now_ms();
        let mut out = Vec::new();
        for t in stale_claims(tx, now)? {
            out.push(unclaim(tx, &t)?);
        }
        Ok(out)
    })
}

/// Starts work: in progress, assigned to `agent` (without a lease). Refused while
/// another agent holds it or dependencies are open.
pub fn start(store: &Store, id: &str, agent: &str) -> Result<Entity> {
    write(store, |tx| {
        let t = get(tx, id)?;
        if let Some(a) = assignee(&t).filter(|a| *a != agent) {
            if !lease_expired(&t, store.now_ms()) {
                return Err(Error::Conflict(format!("{} is claimed by {a}", t.id)));
            }
        }
        match status(&t) {
            "pending" | "blocked" => {}
            "in_progress" if assignee(&t) == Some(agent) => return Ok(t),
            s => {
                return Err(invalid(format!(
                    "{} is {s}; only a pending or blocked task can be started",
                    t.id
                )))
            }
        }
        let open = open_dependencies(tx, &t.id)?;
        if let Some(d) = open.first() {
            return Err(invalid(format!(
                "{} waits on {} ({}); complete it first",
                t.id,
                d.id,
                status(d)
            )));
        }
        let now = store.now_ms();
        update_props(tx, &t, |p| {
            set(p, "status", "in_progress");
            set(p, "assignee", agent);
            set(p, "lease_expires_at", Value::Null);
            p.remove("blocked_reason");
            p.entry("started_at".into()).or_insert(Value::Int(now));
        })
    })
}

/// Completes a task (from any state but completed), optionally with a
/// retrospective.
pub fn complete(
    store: &Store,
    id: &str,
    agent: &str,
    retrospective: Option<&str>,
) -> Result<Entity> {
    if let Some(r) = retrospective {
        check_text("the retrospective", r, MAX_TEXT_BYTES)?;
    }
    write(store, |tx| {
        let t = get(tx, id)?;
        if status(&t) == "completed" {
            return Err(invalid(format!("{} is already completed", t.id)));
        }
        if let Some(a) = assignee(&t).filter(|a| *a != agent) {
            if !lease_expired(&t, store.now_ms()) {
                return Err(Error::Conflict(format!(
                    "{} is claimed by {a}; only they can complete it",
                    t.id
                )));
            }
        }
        let now = store.now_ms();
        update_props(tx, &t, |p| {
            set(p, "status", "completed");
            set(p, "completed_by", agent);
            set(p, "completed_at", now);
            set(p, "lease_expires_at", Value::Null);
            p.remove("blocked_reason");
            if let Some(r) = retrospective {
                set(p, "retrospective", r);
            }
        })
    })
}

/// Blocks a task by hand, with a reason.
pub fn block(store: &Store, id: &str, reason: &str) -> Result<Entity> {
    if reason.trim().is_empty() {
        return Err(invalid("blocking needs a reason (--reason TEXT)"));
    }
    check_text("the reason", reason, MAX_TEXT_BYTES)?;
    write(store, |tx| {
        let t = get(tx, id)?;
        if status(&t) == "completed" {
            return Err(invalid(format!(
                "{} is completed; it cannot be blocked",
                t.id
            )));
        }
        update_props(tx, &t, |p| {
            set(p, "status", "blocked");
            set(p, "blocked_reason", reason);
        })
    })
}

/// Unblocks a task blocked by hand: back to in progress if someone holds it,
/// else pending.
pub fn unblock(store: &Store, id: &str) -> Result<Entity> {
    write(store, |tx| {
        let t = get(tx, id)?;
        if status(&t) != "blocked" {
            return Err(invalid(format!("{} is {}, not blocked", t.id, status(&t))));
        }
        let back = if assignee(&t).is_some() {
            "in_progress"
        } else {
            "pending"
        };
        update_props(tx, &t, |p| {
            set(p, "status", back);
            p.remove("blocked_reason");
        })
    })
}

/// Appends a timestamped note.
pub fn note(store: &Store, id: &str, agent: &str, text: &str) -> Result<Entity> {
    if text.trim().is_empty() {
        return Err(invalid("an empty note"));
    }
    check_text("the note", text, MAX_TEXT_BYTES)?;
    write(store, |tx| {
        let t = get(tx, id)?;
        update_props(tx, &t, |p| {
            let mut notes = match p.remove("notes") {
                Some(Value::List(l)) => l,
                _ => Vec::new(),
            };
            let mut n = std::collections::BTreeMap::new();
            n.insert("at".to_string(), Value::Int(store.now_ms()));
            n.insert("author".to_string(), Value::from(agent));
            n.insert("text".to_string(), Value::from(text));
            notes.push(Value::Map(n.into_iter().collect()));
            set(p, "notes", Value::List(notes));
        })
    })
}

/// Changes to a task's fields (`None`: unchanged).
#[derive(Clone, Debug, Default)]
pub struct TaskUpdate {
    pub title: Option<String>,
    pub description: Option<String>,
    pub priority: Option<String>,
    pub category: Option<String>,
    pub add_labels: Vec<String>,
    pub remove_labels: Vec<String>,
    pub estimate_hours: Option<f64>,
    /// Refuse (`Conflict`) unless the task is at this version.
    pub if_version: Option<u64>,
}

pub fn update(store: &Store, id: &str, u: &TaskUpdate) -> Result<Entity> {
    if let Some(t) = &u.title {
        check_title(t)?;
    }
    if let Some(d) = &u.description {
        check_text("the description", d, MAX_TEXT_BYTES)?;
    }
    if let Some(p) = &u.priority {
        one_of("priority", p, &PRIORITIES)?;
    }
    if let Some(c) = &u.category {
        one_of("category", c, &CATEGORIES)?;
    }
    for l in &u.add_labels {
        check_label(l)?;
    }
    if let Some(h) = u.estimate_hours {
        check_estimate(h)?;
    }
    write(store, |tx| {
        let t = get(tx, id)?;
        if let Some(v) = u.if_version {
            if v != t.version {
                return Err(Error::Conflict(format!(
                    "{} is at version {}, not {v}",
                    t.id, t.version
                )));
            }
        }
        update_props(tx, &t, |p| {
            if let Some(x) = &u.title {
                set(p, "title", x.trim());
            }
            if let Some(x) = &u.description {
                set(p, "description", x.as_str());
            }
            if let Some(x) = &u.priority {
                set(p, "priority", x.as_str());
            }
            if let Some(x) = &u.category {
                set(p, "category", x.as_str());
            }
            if let Some(h) = u.estimate_hours {
                set(p, "estimate_hours", Value::Float(h));
            }
            if !u.add_labels.is_empty() || !u.remove_labels.is_empty() {
                let mut labels: Vec<String> = match p.get("labels") {
                    Some(Value::List(l)) => l
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect(),
                    _ => Vec::new(),
                };
                labels.extend(u.add_labels.iter().cloned());
                labels.retain(|l| !u.remove_labels.contains(l));
                labels.sort();
                labels.dedup();
                set(
                    p,
                    "labels",
                    Value::List(labels.into_iter().map(Value::from).collect()),
                );
            }
        })
    })
}

/// Deletes a task and its edges. Refused while other tasks depend on it, unless
/// `force` (their edges to it go too).
pub fn delete(store: &Store, id: &str, force: bool) -> Result<Entity> {
    write(store, |tx| {
        let t = get(tx, id)?;
        let dependents: Vec<String> = tx
            .edges(&t.id, Direction::In, Some(DEPENDS_ON))?
            .into_iter()
            .map(|e| e.from)
            .collect();
        if !dependents.is_empty() && !force {
            return Err(Error::Conflict(format!(
                "{} is depended on by {}; --force deletes it anyway",
                t.id,
                dependents.join(", ")
            )));
        }
        for e in tx.edges(&t.id, Direction::Both, None)? {
            tx.remove_edge(&e.from, &e.kind, &e.to)?;
        }
        tx.delete(&t.id)
    })
}

/// Adds `id depends_on on`, refusing an edge that would close a cycle (the
/// error names the cycle).
pub fn add_dependency(store: &Store, id: &str, on: &str) -> Result<(String, String)> {
    write(store, |tx| {
        let a = resolve(tx, id, KIND)?;
        let b = resolve(tx, on, KIND)?;
        if a == b {
            return Err(invalid(format!("{a} cannot depend on itself")));
        }
        if let Some(cycle) = graph::would_close_cycle(tx, &a, &b, &[DEPENDS_ON])? {
            return Err(invalid(format!(
                "{a} depends_on {b} would close a cycle: {}",
                cycle.join(" -> ")
            )));
        }
        tx.add_edge(&a, DEPENDS_ON, &b, Props::new())?;
        Ok((a, b))
    })
}

/// Removes `id depends_on on`; `false` if there was no such edge.
pub fn remove_dependency(store: &Store, id: &str, on: &str) -> Result<bool> {
    write(store, |tx| {
        let a = resolve(tx, id, KIND)?;
        let b = resolve(tx, on, KIND)?;
        tx.remove_edge(&a, DEPENDS_ON, &b)
    })
}

/// A filter for `list`.
#[derive(Clone, Debug, Default)]
pub struct TaskFilter {
    pub status: Vec<String>,
    pub priority: Vec<String>,
    pub category: Option<String>,
    pub label: Vec<String>,
    pub assignee: Option<String>,
    pub limit: Option<usize>,
    pub after: Option<String>,
}

/// Refuses filter values that are not a status, priority or category.
pub fn check_filter(f: &TaskFilter) -> Result<()> {
    for s in &f.status {
        one_of("status", s, &STATUSES)?;
    }
    for p in &f.priority {
        one_of("priority", p, &PRIORITIES)?;
    }
    if let Some(c) = &f.category {
        one_of("category", c, &CATEGORIES)?;
    }
    Ok(())
}

/// Tasks matching the filter, in id order, answered from the indexes.
pub fn list(tx: &mut Transaction<'_>, f: &TaskFilter) -> Result<Vec<Entity>> {
    use crate::query::{Filter, Query};
    check_filter(f)?;
    let mut filters = Vec::new();
    let many = |name: &str, vs: &[String]| {
        Filter::In(
            name.into(),
            vs.iter().map(|v| Value::from(v.as_str())).collect(),
        )
    };
    if !f.status.is_empty() {
        filters.push(many("status", &f.status));
    }
    if !f.priority.is_empty() {
        filters.push(many("priority", &f.priority));
    }
    if let Some(c) = &f.category {
        filters.push(Filter::Eq("category".into(), c.as_str().into()));
    }
    for l in &f.label {
        filters.push(Filter::Label(l.clone()));
    }
    if let Some(a) = &f.assignee {
        filters.push(Filter::Eq("assignee".into(), a.as_str().into()));
    }
    Query {
        kind: Some(KIND.into()),
        filters,
        limit: f.limit,
        after: f.after.clone(),
        id_prefix: Some(ID_PREFIX.into()),
        ..Query::default()
    }
    .run(tx)
}

/// Tasks that cannot proceed: blocked by hand (with reasons), and pending tasks
/// waiting on open dependencies (with what they wait on).
pub struct Blocked {
    pub by_hand: Vec<Entity>,
    pub waiting: Vec<(Entity, Vec<Entity>)>,
}

pub fn blocked(tx: &mut Transaction<'_>) -> Result<Blocked> {
    let by_hand = list(
        tx,
        &TaskFilter {
            status: vec!["blocked".into()],
            ..Default::default()
        },
    )?;
    let mut waiting = Vec::new();
    for t in list(
        tx,
        &TaskFilter {
            status: vec!["pending".into()],
            ..Default::default()
        },
    )? {
        let open = open_dependencies(tx, &t.id)?;
        if !open.is_empty() {
            waiting.push((t, open));
        }
    }
    Ok(Blocked { by_hand, waiting })
}

/// Parses a duration: `90s`, `30m`, `2h`, `1h30m`, `1d`, or plain seconds.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => {
                return Err(format!(
                    "{s:?} is not a duration (like 90s, 30m, 2h, 1h30m)"
                ))
            }
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a duration (like 90s, 30m, 2h, 1h30m)"))?;
        total = total.saturating_add(n.saturating_mul(unit));
        num.clear();
    }
    if !num.is_empty() || s.is_empty() {
        return Err(format!(
            "{s:?} is not a duration (like 90s, 30m, 2h, 1h30m)"
        ));
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_refuse_nonsense() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        for bad in ["", "m", "10x", "1h30", "-5m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}

/// A task with what `got task show` shows around it.
#[derive(Clone, Debug)]
pub struct TaskView {
    pub task: Entity,
    /// The tasks it waits on, and those that wait on it.
    pub depends_on: Vec<Entity>,
    pub dependents: Vec<Entity>,
    pub handoffs: Vec<Entity>,
    /// Decisions that affect it.
    pub decisions: Vec<Entity>,
    /// How many versions its history holds.
    pub history_count: usize,
}

/// The task `id` (a unique prefix will do) and its relations, in one snapshot.
pub fn view(store: &Store, id: &str) -> Result<TaskView> {
    let mut tx = store.begin()?;
    let t = get(&mut tx, id)?;
    let mut depends_on = Vec::new();
    for e in tx.edges(&t.id, crate::Direction::Out, Some(DEPENDS_ON))? {
        depends_on.extend(tx.get(&e.to)?);
    }
    let mut dependents = Vec::new();
    for e in tx.edges(&t.id, crate::Direction::In, Some(DEPENDS_ON))? {
        dependents.extend(tx.get(&e.from)?);
    }
    let handoffs = crate::handoffs::of_task(&mut tx, &t.id)?;
    let decisions = crate::decisions::why(&mut tx, &t.id)?;
    drop(tx);
    let history_count = store.history(&t.id)?.len();
    Ok(TaskView {
        task: t,
        depends_on,
        dependents,
        handoffs,
        decisions,
        history_count,
    })
}
