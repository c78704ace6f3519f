//! Decisions: what was decided, why, what else was considered, and what it
//! affects — so an agent picking up a task can ask why it is the way it is.
//!
//! A decision is an entity of kind `decision`, id `D-…`, with `title`,
//! `rationale`, `alternatives` (a list of strings) and `decided_by`, and an
//! `affects` edge to each task or other entity it bears on.

use crate::tasks::{self, write};
use crate::{Direction, Entity, Error, Props, Result, Store, Transaction, Value};

pub const KIND: &str = "decision";
pub const ID_PREFIX: &str = "D-";
pub const EDGE: &str = "affects";

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

pub fn get(tx: &mut Transaction<'_>, id: &str) -> Result<Entity> {
    let id = tasks::resolve(tx, id, KIND)?;
    tx.get(&id)?
        .ok_or_else(|| Error::NotFound(format!("no decision {id}")))
}

/// The full id of any entity named by id or unique prefix (of any kind).
fn resolve_entity(tx: &mut Transaction<'_>, id: &str) -> Result<String> {
    if let Some(e) = tx.get(id).ok().flatten() {
        return Ok(e.id);
    }
    if id.chars().count() < 4 {
        return Err(Error::NotFound(format!(
            "no entity {id} (an abbreviated id needs at least 4 characters)"
        )));
    }
    let found = tx.ids_with_prefix(id, 3)?;
    match found.len() {
        0 => Err(Error::NotFound(format!("no entity {id}"))),
        1 => Ok(found[0].clone()),
        _ => Err(invalid(format!(
            "{id} is ambiguous: {}; give more characters",
            found.join(", ")
        ))),
    }
}

/// Records a decision and its `affects` edges in one transaction.
pub fn log(
    store: &Store,
    agent: &str,
    title: &str,
    rationale: &str,
    alternatives: &[String],
    affects: &[String],
) -> Result<Entity> {
    if title.trim().is_empty() {
        return Err(invalid("a decision needs a non-empty title"));
    }
    if title.len() > tasks::MAX_TITLE_BYTES {
        return Err(invalid(format!(
            "the title is {} bytes; at most {} are accepted",
            title.len(),
            tasks::MAX_TITLE_BYTES
        )));
    }
    if rationale.trim().is_empty() {
        return Err(invalid("a decision needs a rationale (--rationale TEXT)"));
    }
    if rationale.len() > tasks::MAX_TEXT_BYTES {
        return Err(invalid(format!(
            "the rationale is {} bytes; at most {} are accepted",
            rationale.len(),
            tasks::MAX_TEXT_BYTES
        )));
    }
    write(store, |tx| {
        let mut p = Props::new();
        p.insert("title".into(), title.trim().into());
        p.insert("rationale".into(), rationale.into());
        p.insert(
            "alternatives".into(),
            Value::List(
                alternatives
                    .iter()
                    .map(|a| Value::from(a.as_str()))
                    .collect(),
            ),
        );
        p.insert("decided_by".into(), agent.into());
        let d = tx.create_with_prefix(ID_PREFIX, KIND, p)?;
        for a in affects {
            let target = resolve_entity(tx, a)?;
            tx.add_edge(&d.id, EDGE, &target, Props::new())?;
        }
        Ok(d)
    })
}

/// Decisions, newest first.
pub fn list(tx: &mut Transaction<'_>, limit: Option<usize>) -> Result<Vec<Entity>> {
    use crate::query::{Query, SortKey};
    Query {
        kind: Some(KIND.into()),
        sort: SortKey::CreatedAt,
        descending: true,
        limit,
        ..Query::default()
    }
    .run(tx)
}

/// What a decision affects (ids).
pub fn affected(tx: &mut Transaction<'_>, id: &str) -> Result<Vec<String>> {
    Ok(tx
        .edges(id, Direction::Out, Some(EDGE))?
        .into_iter()
        .map(|e| e.to)
        .collect())
}

/// The decisions that affect an entity (`got decision why TASK`), oldest first.
pub fn why(tx: &mut Transaction<'_>, id: &str) -> Result<Vec<Entity>> {
    let id = resolve_entity(tx, id)?;
    let mut out = Vec::new();
    for e in tx.edges(&id, Direction::In, Some(EDGE))? {
        if let Some(d) = tx.get(&e.from)? {
            out.push(d);
        }
    }
    out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(out)
}
