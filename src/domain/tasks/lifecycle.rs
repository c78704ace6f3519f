//! A task's life: creating it (with its dependencies, parent and groups),
//! starting, completing, blocking, unblocking, notes, updates, deletion, and
//! dependencies added and removed.

use super::*;

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
