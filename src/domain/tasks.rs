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

mod claims;
mod lifecycle;
mod queries;

pub use claims::{claim, next, next_claim, reclaim_stale, release, stale_claims};
pub use lifecycle::{
    add_dependency, block, complete, create, delete, note, open_dependencies, remove_dependency,
    start, unblock, update, NewTask, TaskUpdate,
};
pub use queries::{blocked, check_filter, list, view, Blocked, TaskFilter, TaskView};

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

fn set(p: &mut Props, k: &str, v: impl Into<Value>) {
    p.insert(k.to_string(), v.into());
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
