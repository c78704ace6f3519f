//! `got serve`: the JSON API under `/v1` (docs/server.md), on axum and tokio.
//!
//! Every handler runs its library call on tokio's blocking pool, so many
//! requests commit at once through the store's group commit (many requests,
//! one fsync), and answers after the call returned: for a write, after its
//! commit is durable. Errors are `{"error": {"code", "message"}}` with the
//! status of their kind; a library panic is a 500, never a half-done write
//! (a transaction that did not commit left nothing).

use crate::json::{task_json, TASK_SCHEMA_VERSION};
use crate::tasks::{self, NewTask, TaskFilter, TaskUpdate};
use crate::{Entity, Error, Result, Store};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value as Json_};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How `got serve` runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// Every request must carry `Authorization: Bearer <token>`; required to
    /// listen on anything but loopback.
    pub token: Option<String>,
    /// The acting agent when a request has no `X-Got-Agent`.
    pub agent: String,
    /// The largest request body (413 above).
    pub max_body_bytes: usize,
    /// Requests handled at once; more wait for a slot.
    pub max_in_flight: usize,
    /// Connections open at once; more wait in the backlog.
    pub max_connections: usize,
    /// A request not answered by then gets 503 (`timeout`).
    pub request_timeout: Duration,
}

impl ServeOptions {
    pub fn new(listen: SocketAddr, agent: String) -> ServeOptions {
        ServeOptions {
            listen,
            token: None,
            agent,
            max_body_bytes: 1 << 20,
            max_in_flight: 256,
            max_connections: 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Why the server did not start.
#[derive(Debug)]
pub enum ServeError {
    /// Listening beyond loopback without a token.
    TokenNeeded(SocketAddr),
    Io(std::io::Error),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::TokenNeeded(a) => write!(
                f,
                "listening on {a} (not loopback) needs a token: set GOT_TOKEN or pass --token-file FILE"
            ),
            ServeError::Io(e) => write!(f, "{e}"),
        }
    }
}

struct App {
    store: Arc<Store>,
    agent: String,
    token: Option<Vec<u8>>,
}

type Shared = Arc<App>;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        use crate::wal::Error as W;
        let (status, code) = match &e {
            _ if e.is_outcome_unknown() => (StatusCode::INTERNAL_SERVER_ERROR, "outcome_unknown"),
            Error::NotFound(_) | Error::NotAStore { .. } => (StatusCode::NOT_FOUND, "not_found"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Error::Invalid(_) | Error::AlreadyExists(_) | Error::ReadOnly => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
            }
            Error::Wal(W::FrameTooLarge { .. }) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            Error::Wal(W::Locked { .. }) => (StatusCode::SERVICE_UNAVAILABLE, "locked"),
            _ if e.is_corruption() => (StatusCode::INTERNAL_SERVER_ERROR, "corrupt"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "io"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

type ApiResult = std::result::Result<Response, ApiError>;

/// Runs `f` on the blocking pool (it may wait for an fsync) and returns its
/// result once it has returned.
async fn blocking<T: Send + 'static>(
    app: &Shared,
    f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
) -> std::result::Result<T, ApiError> {
    let store = app.store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(r) => r.map_err(ApiError::from),
        // A panic in the library: the transaction did not commit.
        Err(_) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the request's write did not happen",
        )),
    }
}

/// The acting agent: `X-Got-Agent`, else the server's.
fn agent_of(app: &App, headers: &HeaderMap) -> std::result::Result<String, ApiError> {
    match headers.get("x-got-agent") {
        None => Ok(app.agent.clone()),
        Some(v) => match v.to_str() {
            Ok(a) if !a.trim().is_empty() => Ok(a.trim().to_string()),
            _ => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "X-Got-Agent must be a non-empty visible ASCII name",
            )),
        },
    }
}

/// A request body as a JSON object (an empty body is `{}`).
fn body_object(
    body: std::result::Result<Bytes, BytesRejection>,
) -> std::result::Result<Map<String, Json_>, ApiError> {
    let bytes = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "the request body is over the limit (1 MiB)",
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", r.body_text())
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Json_>(&bytes) {
        Ok(Json_::Object(o)) => Ok(o),
        Ok(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the body must be a JSON object",
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("the body is not JSON: {e}"),
        )),
    }
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", msg)
}

fn opt_str(o: &Map<String, Json_>, k: &str) -> std::result::Result<Option<String>, ApiError> {
    match o.get(k) {
        None | Some(Json_::Null) => Ok(None),
        Some(Json_::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("\"{k}\" must be a string"))),
    }
}

fn str_list(o: &Map<String, Json_>, k: &str) -> std::result::Result<Vec<String>, ApiError> {
    match o.get(k) {
        None | Some(Json_::Null) => Ok(Vec::new()),
        Some(Json_::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| invalid(format!("\"{k}\" must be a list of strings")))
            })
            .collect(),
        Some(_) => Err(invalid(format!("\"{k}\" must be a list of strings"))),
    }
}

fn opt_f64(o: &Map<String, Json_>, k: &str) -> std::result::Result<Option<f64>, ApiError> {
    match o.get(k) {
        None | Some(Json_::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| invalid(format!("\"{k}\" must be a number"))),
    }
}

fn opt_bool(o: &Map<String, Json_>, k: &str) -> std::result::Result<bool, ApiError> {
    match o.get(k) {
        None | Some(Json_::Null) => Ok(false),
        Some(Json_::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(format!("\"{k}\" must be true or false"))),
    }
}

/// Refuses keys a route does not know (a typo is an error, not a no-op).
fn only(o: &Map<String, Json_>, keys: &[&str]) -> std::result::Result<(), ApiError> {
    match o.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(k) => Err(invalid(format!(
            "unknown field \"{k}\" (known: {})",
            keys.join(", ")
        ))),
        None => Ok(()),
    }
}

/// A claim's lease, as the CLI takes it: `"30m"`, `"2h"`, `"0"` (forever);
/// one hour when not given.
fn lease_of(o: &Map<String, Json_>) -> std::result::Result<Option<Duration>, ApiError> {
    let d = match opt_str(o, "lease")? {
        Some(s) => tasks::parse_duration(&s).map_err(invalid)?,
        None => tasks::DEFAULT_LEASE,
    };
    Ok((!d.is_zero()).then_some(d))
}

fn one(status: StatusCode, t: &Entity) -> Response {
    (
        status,
        Json(json!({"schema_version": TASK_SCHEMA_VERSION, "task": task_json(t)})),
    )
        .into_response()
}

fn many(ts: &[Entity], next_after: Option<&str>) -> Response {
    let mut j = json!({
        "schema_version": TASK_SCHEMA_VERSION,
        "tasks": ts.iter().map(task_json).collect::<Vec<_>>(),
    });
    if let Some(a) = next_after {
        j["next_after"] = json!(a);
    }
    Json(j).into_response()
}

async fn health(State(app): State<Shared>) -> Response {
    Json(json!({
        "status": "ok",
        "store": app.store.dir(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

async fn create_task(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let o = body_object(body)?;
    only(
        &o,
        &[
            "title",
            "description",
            "priority",
            "category",
            "labels",
            "estimate_hours",
            "depends_on",
            "blocks",
            "parent",
            "part_of",
        ],
    )?;
    let title = opt_str(&o, "title")?.ok_or_else(|| invalid("\"title\" is needed"))?;
    let t = NewTask {
        title,
        description: opt_str(&o, "description")?,
        priority: opt_str(&o, "priority")?,
        category: opt_str(&o, "category")?,
        labels: str_list(&o, "labels")?,
        estimate_hours: opt_f64(&o, "estimate_hours")?,
        depends_on: str_list(&o, "depends_on")?,
        blocks: str_list(&o, "blocks")?,
        parent: opt_str(&o, "parent")?,
        part_of: str_list(&o, "part_of")?,
    };
    let agent = agent_of(&app, &headers)?;
    let e = blocking(&app, move |s| tasks::create(s, &agent, &t)).await?;
    Ok(one(StatusCode::CREATED, &e))
}

async fn show_task(State(app): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let v = blocking(&app, move |s| tasks::view(s, &id)).await?;
    Ok(Json(crate::json::task_view_json(&v)).into_response())
}

async fn list_tasks(
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
    Ok(many(&ts, next.as_deref()))
}

async fn update_task(
    State(app): State<Shared>,
    Path(id): Path<String>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let o = body_object(body)?;
    only(
        &o,
        &[
            "title",
            "description",
            "priority",
            "category",
            "add_labels",
            "remove_labels",
            "estimate_hours",
            "if_version",
        ],
    )?;
    let if_version = match o.get("if_version") {
        None | Some(Json_::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| invalid("\"if_version\" must be a version number"))?,
        ),
    };
    let u = TaskUpdate {
        title: opt_str(&o, "title")?,
        description: opt_str(&o, "description")?,
        priority: opt_str(&o, "priority")?,
        category: opt_str(&o, "category")?,
        add_labels: str_list(&o, "add_labels")?,
        remove_labels: str_list(&o, "remove_labels")?,
        estimate_hours: opt_f64(&o, "estimate_hours")?,
        if_version,
    };
    let e = blocking(&app, move |s| tasks::update(s, &id, &u)).await?;
    Ok(one(StatusCode::OK, &e))
}

/// `POST /v1/tasks/{id}/{action}`.
async fn task_action(
    State(app): State<Shared>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let o = body_object(body)?;
    let agent = agent_of(&app, &headers)?;
    let e = match action.as_str() {
        "claim" => {
            only(&o, &["lease"])?;
            let lease = lease_of(&o)?;
            blocking(&app, move |s| tasks::claim(s, &id, &agent, lease)).await?
        }
        "release" => {
            only(&o, &["force"])?;
            let force = opt_bool(&o, "force")?;
            blocking(&app, move |s| tasks::release(s, &id, &agent, force)).await?
        }
        "start" => {
            only(&o, &[])?;
            blocking(&app, move |s| tasks::start(s, &id, &agent)).await?
        }
        "complete" => {
            only(&o, &["retrospective"])?;
            let r = opt_str(&o, "retrospective")?;
            blocking(&app, move |s| tasks::complete(s, &id, &agent, r.as_deref())).await?
        }
        "block" => {
            only(&o, &["reason"])?;
            let reason = opt_str(&o, "reason")?.ok_or_else(|| invalid("\"reason\" is needed"))?;
            blocking(&app, move |s| tasks::block(s, &id, &reason)).await?
        }
        "unblock" => {
            only(&o, &[])?;
            blocking(&app, move |s| tasks::unblock(s, &id)).await?
        }
        "note" => {
            only(&o, &["text"])?;
            let text = opt_str(&o, "text")?.ok_or_else(|| invalid("\"text\" is needed"))?;
            blocking(&app, move |s| tasks::note(s, &id, &agent, &text)).await?
        }
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "no route POST /v1/tasks/{{id}}/{other} (known: claim, release, start, complete, block, unblock, note)"
                ),
            ))
        }
    };
    Ok(one(StatusCode::OK, &e))
}

async fn next_task(
    State(app): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let o = body_object(body)?;
    only(&o, &["lease"])?;
    let claim = match q.get("claim").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => return Err(invalid(format!("claim must be true or false, got {v:?}"))),
    };
    let agent = agent_of(&app, &headers)?;
    let lease = lease_of(&o)?;
    let t = if claim {
        blocking(&app, move |s| tasks::next_claim(s, &agent, lease)).await?
    } else {
        blocking(&app, tasks::next).await?
    };
    match t {
        Some(t) => Ok(one(StatusCode::OK, &t)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no ready task",
        )),
    }
}

async fn ready(State(app): State<Shared>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
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
    Ok(many(&ts, None))
}

async fn blocked(State(app): State<Shared>) -> ApiResult {
    let b = blocking(&app, |s| tasks::blocked(&mut s.begin()?)).await?;
    Ok(Json(crate::json::blocked_json(&b)).into_response())
}

async fn export(State(app): State<Shared>) -> ApiResult {
    let bytes = blocking(&app, |s| {
        let mut out = Vec::new();
        crate::transfer::export(s, &mut out)?;
        Ok(out)
    })
    .await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        bytes,
    )
        .into_response())
}

fn keyed(status: StatusCode, key: &str, e: &Entity) -> Response {
    (
        status,
        Json(json!({"schema_version": TASK_SCHEMA_VERSION, key: task_json(e)})),
    )
        .into_response()
}

fn keyed_many(key: &str, es: &[Entity]) -> Response {
    Json(json!({
        "schema_version": TASK_SCHEMA_VERSION,
        key: es.iter().map(task_json).collect::<Vec<_>>(),
    }))
    .into_response()
}

/// A JSON object argument (`context`, `result`) as a property value.
fn opt_object(
    o: &Map<String, Json_>,
    k: &str,
) -> std::result::Result<Option<crate::Value>, ApiError> {
    match o.get(k) {
        None | Some(Json_::Null) => Ok(None),
        Some(v @ Json_::Object(_)) => Ok(Some(crate::json::from_json(v))),
        Some(_) => Err(invalid(format!("\"{k}\" must be a JSON object"))),
    }
}

fn limit_of(q: &HashMap<String, String>, default: usize) -> std::result::Result<usize, ApiError> {
    match q.get("limit") {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| invalid("\"limit\" must be a number from 1 to 10000")),
    }
}

async fn create_handoff(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let o = body_object(body)?;
    only(&o, &["task", "to", "instructions", "context"])?;
    let task = opt_str(&o, "task")?.ok_or_else(|| invalid("\"task\" is needed"))?;
    let to = opt_str(&o, "to")?.ok_or_else(|| invalid("\"to\" is needed"))?;
    let instructions = opt_str(&o, "instructions")?.unwrap_or_default();
    let context = opt_object(&o, "context")?;
    let from = agent_of(&app, &headers)?;
    let h = blocking(&app, move |s| {
        crate::handoffs::initiate(s, &task, &from, &to, &instructions, context)
    })
    .await?;
    Ok(keyed(StatusCode::CREATED, "handoff", &h))
}

async fn list_handoffs(
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

async fn show_handoff(State(app): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let h = blocking(&app, move |s| crate::handoffs::get(&mut s.begin()?, &id)).await?;
    Ok(keyed(StatusCode::OK, "handoff", &h))
}

/// `POST /v1/handoffs/{id}/{accept|complete|reject}`: only the target agent.
async fn handoff_action(
    State(app): State<Shared>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let o = body_object(body)?;
    let agent = agent_of(&app, &headers)?;
    let h = match action.as_str() {
        "accept" => {
            only(&o, &[])?;
            blocking(&app, move |s| crate::handoffs::accept(s, &id, &agent)).await?
        }
        "complete" => {
            only(&o, &["result", "artifacts"])?;
            let result = opt_object(&o, "result")?;
            let artifacts = str_list(&o, "artifacts")?;
            blocking(&app, move |s| {
                crate::handoffs::complete(s, &id, &agent, result, &artifacts)
            })
            .await?
        }
        "reject" => {
            only(&o, &["reason"])?;
            let reason = opt_str(&o, "reason")?.ok_or_else(|| invalid("\"reason\" is needed"))?;
            blocking(&app, move |s| {
                crate::handoffs::reject(s, &id, &agent, &reason)
            })
            .await?
        }
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "no route POST /v1/handoffs/{{id}}/{other} (known: accept, complete, reject)"
                ),
            ))
        }
    };
    Ok(keyed(StatusCode::OK, "handoff", &h))
}

async fn create_decision(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let o = body_object(body)?;
    only(&o, &["title", "rationale", "alternatives", "affects"])?;
    let title = opt_str(&o, "title")?.ok_or_else(|| invalid("\"title\" is needed"))?;
    let rationale = opt_str(&o, "rationale")?.unwrap_or_default();
    let alternatives = str_list(&o, "alternatives")?;
    let affects = str_list(&o, "affects")?;
    let agent = agent_of(&app, &headers)?;
    let d = blocking(&app, move |s| {
        crate::decisions::log(s, &agent, &title, &rationale, &alternatives, &affects)
    })
    .await?;
    Ok(keyed(StatusCode::CREATED, "decision", &d))
}

async fn list_decisions(
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

async fn show_decision(State(app): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let (d, affects) = blocking(&app, move |s| {
        let mut tx = s.begin()?;
        let d = crate::decisions::get(&mut tx, &id)?;
        let a = crate::decisions::affected(&mut tx, &d.id)?;
        Ok((d, a))
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
async fn list_groups(app: Shared, kind: &'static str, key: &'static str) -> ApiResult {
    let rows = blocking(&app, move |s| {
        let mut tx = s.begin()?;
        let mut rows = Vec::new();
        for g in crate::plans::list(&mut tx, kind)? {
            let p = crate::plans::progress(&mut tx, &g.id)?;
            rows.push((g, p));
        }
        Ok(rows)
    })
    .await?;
    Ok(Json(crate::json::groups_json(key, &rows)).into_response())
}

async fn show_group(app: Shared, id: String, kind: &'static str, key: &'static str) -> ApiResult {
    let j = blocking(&app, move |s| {
        let mut tx = s.begin()?;
        let g = crate::plans::get(&mut tx, &id, kind)?;
        let members = crate::plans::members(&mut tx, &g.id)?;
        let p = crate::plans::progress(&mut tx, &g.id)?;
        Ok(crate::json::group_json(key, &g, &members, &p))
    })
    .await?;
    Ok(Json(j).into_response())
}

async fn list_sprints(State(app): State<Shared>) -> ApiResult {
    list_groups(app, crate::plans::SPRINT, "sprints").await
}

async fn list_epics(State(app): State<Shared>) -> ApiResult {
    list_groups(app, crate::plans::EPIC, "epics").await
}

async fn show_sprint(State(app): State<Shared>, Path(id): Path<String>) -> ApiResult {
    show_group(app, id, crate::plans::SPRINT, "sprint").await
}

async fn show_epic(State(app): State<Shared>, Path(id): Path<String>) -> ApiResult {
    show_group(app, id, crate::plans::EPIC, "epic").await
}

async fn create_sprint(
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

async fn create_epic(
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
async fn sprint_action(
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

async fn no_route(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {} {}", req.method(), req.uri().path()),
    )
}

async fn no_method(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not a method of {}", req.method(), req.uri().path()),
    )
}

/// Compares in time that depends only on the lengths, not on where the bytes
/// differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn authorize(State(app): State<Shared>, req: Request, next: Next) -> Response {
    if let Some(token) = &app.token {
        let given = req
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let ok = given.is_some_and(|g| same_secret(g.trim().as_bytes(), token));
        if !ok {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a missing or wrong token: send Authorization: Bearer <token>",
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// The routes, for a store already open.
fn router(app: Shared, opts: &ServeOptions) -> Router {
    use tower::ServiceBuilder;
    let timeout = opts.request_timeout;
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/tasks", post(create_task).get(list_tasks))
        .route("/v1/tasks/{id}", get(show_task).merge(patch(update_task)))
        .route("/v1/tasks/{id}/{action}", post(task_action))
        .route("/v1/next", post(next_task))
        .route("/v1/ready", get(ready))
        .route("/v1/blocked", get(blocked))
        .route("/v1/export", get(export))
        .route("/v1/handoffs", post(create_handoff).get(list_handoffs))
        .route("/v1/handoffs/{id}", get(show_handoff))
        .route("/v1/handoffs/{id}/{action}", post(handoff_action))
        .route("/v1/decisions", post(create_decision).get(list_decisions))
        .route("/v1/decisions/{id}", get(show_decision))
        .route("/v1/sprints", post(create_sprint).get(list_sprints))
        .route("/v1/sprints/{id}", get(show_sprint))
        .route("/v1/sprints/{id}/{action}", post(sprint_action))
        .route("/v1/epics", post(create_epic).get(list_epics))
        .route("/v1/epics/{id}", get(show_epic))
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(axum::middleware::from_fn_with_state(app.clone(), authorize))
        .layer(DefaultBodyLimit::max(opts.max_body_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(
                    |_: tower::BoxError| async {
                        ApiError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "timeout",
                            "the request took too long; a write it made may have happened — check before retrying",
                        )
                    },
                ))
                .timeout(timeout)
                .concurrency_limit(opts.max_in_flight),
        )
        .with_state(app)
}

/// The routes answering requests in the calling thread, without sockets: how
/// tests and the fuzzer drive the request handling.
pub struct InProcess {
    rt: tokio::runtime::Runtime,
    routes: Router,
}

impl InProcess {
    pub fn new(store: Store, opts: ServeOptions) -> std::io::Result<InProcess> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let app = Arc::new(App {
            store: Arc::new(store),
            agent: opts.agent.clone(),
            token: opts.token.clone().map(String::into_bytes),
        });
        let routes = {
            let _in_rt = rt.enter();
            router(app, &opts)
        };
        Ok(InProcess { rt, routes })
    }

    /// One request; returns the status and the body. A method or path that is
    /// not HTTP is answered 400, as a server would.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, Vec<u8>) {
        use tower::ServiceExt;
        let mut req = axum::http::Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let Ok(req) = req.body(axum::body::Body::from(body)) else {
            let e =
                json!({"error": {"code": "bad_request", "message": "not an HTTP method and path"}});
            return (400, e.to_string().into_bytes());
        };
        self.rt.block_on(async {
            let resp = match self.routes.clone().oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let status = resp.status().as_u16();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .map(|b| b.to_vec())
                .unwrap_or_default();
            (status, bytes)
        })
    }
}

/// A listener that holds at most `max` connections open: the next is
/// accepted when one closes (it waits in the kernel's backlog meanwhile).
struct Limited {
    inner: tokio::net::TcpListener,
    slots: Arc<tokio::sync::Semaphore>,
}

/// A connection with its slot, given back when it closes.
struct Slotted {
    io: tokio::net::TcpStream,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl tokio::io::AsyncRead for Slotted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Slotted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl axum::serve::Listener for Limited {
    type Io = Slotted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        loop {
            match self.inner.accept().await {
                Ok((io, addr)) => {
                    let _ = io.set_nodelay(true);
                    return (Slotted { io, _slot: slot }, addr);
                }
                // Out of file descriptors and the like: wait a moment (as
                // axum's own listener does) rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Serves `store` until SIGTERM or SIGINT: stops accepting, finishes the
/// requests in flight, returns. `listening(addr)` is called once the socket is
/// bound (with the port chosen, for port 0).
pub fn serve(
    store: Store,
    opts: ServeOptions,
    listening: impl FnOnce(SocketAddr),
) -> std::result::Result<(), ServeError> {
    if opts.token.is_none() && !opts.listen.ip().is_loopback() {
        return Err(ServeError::TokenNeeded(opts.listen));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Io)?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(ServeError::Io)?;
        let addr = listener.local_addr().map_err(ServeError::Io)?;
        let app = Arc::new(App {
            store: Arc::new(store),
            agent: opts.agent.clone(),
            token: opts.token.clone().map(String::into_bytes),
        });
        let routes = router(app, &opts);
        let listener = Limited {
            inner: listener,
            slots: Arc::new(tokio::sync::Semaphore::new(opts.max_connections)),
        };
        listening(addr);
        axum::serve(listener, routes)
            .with_graceful_shutdown(stop_signal())
            .await
            .map_err(ServeError::Io)
    })
}

async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the server runs until killed.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
