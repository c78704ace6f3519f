//! Claims: taking a task for an agent with a lease (one of any number of racing
//! agents wins), the next ready task claimed atomically, releasing, and
//! reclaiming claims whose lease ran out.

use super::*;

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

pub(super) fn claim_in(
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

pub(super) fn unclaim(tx: &mut Transaction<'_>, t: &Entity) -> Result<Entity> {
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
