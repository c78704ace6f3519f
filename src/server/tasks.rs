//! The task routes of `got serve`: `/v1/tasks`, `/v1/next`, `/v1/ready`,
//! `/v1/blocked`, `/v1/export`.

use super::api::*;
use super::ops;
use crate::tasks::{self, TaskFilter};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::collections::HashMap;

pub(super) async fn health(State(app): State<Shared>) -> Response {
    Json(json!({
        "status": "ok",
        "store": app.store.dir(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

pub(super) async fn create_task(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let t = ops::new_task(&body_object(body)?)?;
    let agent = agent_of(&app, &headers)?;
    let e = blocking(&app, move |s| tasks::create(s, &agent, &t)).await?;
    Ok(keyed(StatusCode::CREATED, "task", &e))
}

pub(super) async fn show_task(State(app): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let v = blocking(&app, move |s| tasks::view(s, &id)).await?;
    Ok(Json(crate::json::task_view_json(&v)).into_response())
}

pub(super) async fn list_tasks(
    State(app): State<Shared>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult {
    let mut f = TaskFilter::default();
    for (k, v) in q {
        match k.as_str() {
            "status" => f.status.push(v),
            "priority" => f.priority.push(v),
            "label" => f.label.push(v),
            "category" => f.category = Some(v),
            "assignee" => f.assignee = Some(v),
            "after" => f.after = Some(v),
            "limit" => {
                let n = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| invalid("\"limit\" must be a number from 1 to 10000"))?;
                f.limit = Some(n);
            }
            other => {
                return Err(invalid(format!(
                    "unknown query parameter \"{other}\" (known: status, priority, label, category, assignee, limit, after)"
                )))
            }
        }
    }
    let limit = f.limit.unwrap_or(100);
    f.limit = Some(limit);
    tasks::check_filter(&f)?;
    let ts = blocking(&app, move |s| tasks::list(&mut s.begin()?, &f)).await?;
    let next = (ts.len() == limit)
        .then(|| ts.last().map(|t| t.id.clone()))
        .flatten();
    let mut r = keyed_json("tasks", &ts);
    if let Some(a) = next {
        r["next_after"] = json!(a);
    }
    Ok(Json(r).into_response())
}

pub(super) async fn update_task(
    State(app): State<Shared>,
    Path(id): Path<String>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let u = ops::task_update(&body_object(body)?)?;
    let e = blocking(&app, move |s| tasks::update(s, &id, &u)).await?;
    Ok(keyed(StatusCode::OK, "task", &e))
}

/// `POST /v1/tasks/{id}/{action}`.
pub(super) async fn task_action(
    State(app): State<Shared>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    entity_action(
        &app,
        &headers,
        body,
        &ops::TASK_ACTIONS,
        "tasks",
        "task",
        id,
        &action,
    )
    .await
}

pub(super) async fn next_task(
    State(app): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let o = body_object(body)?;
    let claim = match q.get("claim").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => return Err(invalid(format!("claim must be true or false, got {v:?}"))),
    };
    let agent = agent_of(&app, &headers)?;
    let t = blocking(&app, move |s| ops::next(s, &agent, claim, &o)).await?;
    match t {
        Some(t) => Ok(keyed(StatusCode::OK, "task", &t)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no ready task",
        )),
    }
}

pub(super) async fn ready(
    State(app): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let limit = match q.get("limit") {
        None => 20,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| invalid("\"limit\" must be a number from 1 to 10000"))?,
    };
    let ts = blocking(&app, move |s| {
        crate::ready::ready(&mut s.begin()?, Some(limit))
    })
    .await?;
    Ok(keyed_many("tasks", &ts))
}

pub(super) async fn blocked(State(app): State<Shared>) -> ApiResult {
    let b = blocking(&app, |s| tasks::blocked(&mut s.begin()?)).await?;
    Ok(Json(crate::json::blocked_json(&b)).into_response())
}

pub(super) async fn dashboard(State(app): State<Shared>) -> ApiResult {
    let d = blocking(&app, |s| crate::board::Dashboard::gather(&mut s.begin()?)).await?;
    Ok(Json(d.to_json()).into_response())
}

pub(super) async fn export(State(app): State<Shared>) -> ApiResult {
    let bytes = blocking(&app, |s| {
        let mut out = Vec::new();
        crate::transfer::export(s, &mut out)?;
        Ok::<_, crate::Error>(out)
    })
    .await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        bytes,
    )
        .into_response())
}
