//! The routes of `got serve` for handoffs, decisions, sprints and epics, as
//! the CLI has them (`got handoff …`, `got decision …`, `got sprint …`, `got
//! epic …`).

use super::api::*;
use super::ops;
use crate::json::{task_json, TASK_SCHEMA_VERSION};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value as Json_};
use std::collections::HashMap;

pub(super) async fn create_handoff(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let o = body_object(body)?;
    let from = agent_of(&app, &headers)?;
    let h = blocking(&app, move |s| ops::handoff_initiate(s, &from, &o)).await?;
    Ok(keyed(StatusCode::CREATED, "handoff", &h))
}

pub(super) async fn list_handoffs(
    State(app): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    if let Some(k) = q
        .keys()
        .find(|k| !["status", "to", "limit"].contains(&k.as_str()))
    {
        return Err(invalid(format!(
            "unknown query parameter \"{k}\" (known: status, to, limit)"
        )));
    }
    let limit = limit_of(&q, 100)?;
    let (status, to) = (q.get("status").cloned(), q.get("to").cloned());
    let hs = blocking(&app, move |s| {
        crate::handoffs::list(
            &mut s.begin()?,
            status.as_deref(),
            to.as_deref(),
            Some(limit),
        )
    })
    .await?;
    Ok(keyed_many("handoffs", &hs))
}

pub(super) async fn show_handoff(State(app): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let h = blocking(&app, move |s| crate::handoffs::get(&mut s.begin()?, &id)).await?;
    Ok(keyed(StatusCode::OK, "handoff", &h))
}

/// `POST /v1/handoffs/{id}/{accept|complete|reject}`: only the target agent.
pub(super) async fn handoff_action(
    State(app): State<Shared>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    entity_action(
        &app,
        &headers,
        body,
        &ops::HANDOFF_ACTIONS,
        "handoffs",
        "handoff",
        id,
        &action,
    )
    .await
}

pub(super) async fn create_decision(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let o = body_object(body)?;
    let agent = agent_of(&app, &headers)?;
    let d = blocking(&app, move |s| ops::log_decision(s, &agent, &o)).await?;
    Ok(keyed(StatusCode::CREATED, "decision", &d))
}

pub(super) async fn list_decisions(
    State(app): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    if let Some(k) = q.keys().find(|k| k.as_str() != "limit") {
        return Err(invalid(format!(
            "unknown query parameter \"{k}\" (known: limit)"
        )));
    }
    let limit = limit_of(&q, 20)?;
    let ds = blocking(&app, move |s| {
        crate::decisions::list(&mut s.begin()?, Some(limit))
    })
    .await?;
    Ok(keyed_many("decisions", &ds))
}

pub(super) async fn show_decision(State(app): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let (d, affects) = blocking(&app, move |s| {
        let mut tx = s.begin()?;
        let d = crate::decisions::get(&mut tx, &id)?;
        let a = crate::decisions::affected(&mut tx, &d.id)?;
        Ok::<_, crate::Error>((d, a))
    })
    .await?;
    Ok(Json(json!({
        "schema_version": TASK_SCHEMA_VERSION,
        "decision": task_json(&d),
        "affects": affects,
    }))
    .into_response())
}

/// `GET /v1/sprints`, `GET /v1/epics`.
pub(super) async fn list_groups(app: Shared, kind: &'static str, key: &'static str) -> ApiResult {
    let rows = blocking(&app, move |s| {
        let mut tx = s.begin()?;
        let mut rows = Vec::new();
        for g in crate::plans::list(&mut tx, kind)? {
            let p = crate::plans::progress(&mut tx, &g.id)?;
            rows.push((g, p));
        }
        Ok::<_, crate::Error>(rows)
    })
    .await?;
    Ok(Json(crate::json::groups_json(key, &rows)).into_response())
}

pub(super) async fn show_group(
    app: Shared,
    id: String,
    kind: &'static str,
    key: &'static str,
) -> ApiResult {
    let j = blocking(&app, move |s| {
        let mut tx = s.begin()?;
        let g = crate::plans::get(&mut tx, &id, kind)?;
        let members = crate::plans::members(&mut tx, &g.id)?;
        let p = crate::plans::progress(&mut tx, &g.id)?;
        Ok::<_, crate::Error>(crate::json::group_json(key, &g, &members, &p))
    })
    .await?;
    Ok(Json(j).into_response())
}

pub(super) async fn list_sprints(State(app): State<Shared>) -> ApiResult {
    list_groups(app, crate::plans::SPRINT, "sprints").await
}

pub(super) async fn list_epics(State(app): State<Shared>) -> ApiResult {
    list_groups(app, crate::plans::EPIC, "epics").await
}

pub(super) async fn show_sprint(State(app): State<Shared>, Path(id): Path<String>) -> ApiResult {
    show_group(app, id, crate::plans::SPRINT, "sprint").await
}

pub(super) async fn show_epic(State(app): State<Shared>, Path(id): Path<String>) -> ApiResult {
    show_group(app, id, crate::plans::EPIC, "epic").await
}

pub(super) async fn create_sprint(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let o = body_object(body)?;
    only(&o, &["title", "number", "epic", "goals"])?;
    let title = opt_str(&o, "title")?.ok_or_else(|| invalid("\"title\" is needed"))?;
    let number = match o.get("number") {
        None | Some(Json_::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| invalid("\"number\" must be an integer"))?,
        ),
    };
    let epic = opt_str(&o, "epic")?;
    let goals = str_list(&o, "goals")?;
    let agent = agent_of(&app, &headers)?;
    let g = blocking(&app, move |s| {
        crate::plans::create_sprint(s, &agent, &title, number, epic.as_deref(), &goals)
    })
    .await?;
    Ok(keyed(StatusCode::CREATED, "sprint", &g))
}

pub(super) async fn create_epic(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let o = body_object(body)?;
    only(&o, &["title", "phases"])?;
    let title = opt_str(&o, "title")?.ok_or_else(|| invalid("\"title\" is needed"))?;
    let phases = str_list(&o, "phases")?;
    let agent = agent_of(&app, &headers)?;
    let g = blocking(&app, move |s| {
        crate::plans::create_epic(s, &agent, &title, &phases)
    })
    .await?;
    Ok(keyed(StatusCode::CREATED, "epic", &g))
}

/// `POST /v1/sprints/{id}/{start|complete|claim|release|add|goal|complete_goal}`.
pub(super) async fn sprint_action(
    State(app): State<Shared>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let o = body_object(body)?;
    let agent = agent_of(&app, &headers)?;
    let g = match action.as_str() {
        "start" => {
            only(&o, &[])?;
            blocking(&app, move |s| crate::plans::start(s, &id)).await?
        }
        "complete" => {
            only(&o, &[])?;
            blocking(&app, move |s| crate::plans::complete(s, &id)).await?
        }
        "claim" => {
            only(&o, &[])?;
            blocking(&app, move |s| crate::plans::claim(s, &id, &agent)).await?
        }
        "release" => {
            only(&o, &["force"])?;
            let force = opt_bool(&o, "force")?;
            blocking(&app, move |s| crate::plans::release(s, &id, &agent, force)).await?
        }
        "add" => {
            only(&o, &["task"])?;
            let task = opt_str(&o, "task")?.ok_or_else(|| invalid("\"task\" is needed"))?;
            blocking(&app, move |s| {
                let (sprint, _) = crate::plans::add_task(s, &id, &task)?;
                crate::plans::get(&mut s.begin()?, &sprint, crate::plans::SPRINT)
            })
            .await?
        }
        "goal" => {
            only(&o, &["description"])?;
            let d = opt_str(&o, "description")?
                .ok_or_else(|| invalid("\"description\" is needed"))?;
            blocking(&app, move |s| crate::plans::add_goal(s, &id, &d)).await?
        }
        "complete_goal" => {
            only(&o, &["n"])?;
            let n = o
                .get("n")
                .and_then(Json_::as_u64)
                .ok_or_else(|| invalid("\"n\" (the goal's number, from 1) is needed"))?
                as usize;
            blocking(&app, move |s| crate::plans::complete_goal(s, &id, n)).await?
        }
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no route POST /v1/sprints/{{id}}/{other} (known: start, complete, claim, release, add, goal, complete_goal)"),
            ))
        }
    };
    Ok(keyed(StatusCode::OK, "sprint", &g))
}
