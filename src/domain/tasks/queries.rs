//! Reading tasks: lists by filter (status, priority, label, category,
//! assignee, pages), what is blocked and on what, and a task with what
//! `got task show` shows around it.

use super::*;

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
