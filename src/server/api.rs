//! What every route of `got serve` shares: its error responses, reading a
//! request's body and fields, the acting agent, and running a library call on
//! the blocking pool.

use crate::json::{task_json, TASK_SCHEMA_VERSION};
use crate::{Entity, Error, Store};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value as Json_};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub(super) struct App {
    pub(super) store: Arc<Store>,
    pub(super) agent: String,
    pub(super) token: Option<Vec<u8>>,
}

pub(super) type Shared = Arc<App>;

impl App {
    pub(super) fn shared(store: Store, opts: &super::http::ServeOptions) -> Shared {
        Arc::new(App {
            store: Arc::new(store),
            agent: opts.agent.clone(),
            token: opts.token.clone().map(String::into_bytes),
        })
    }
}

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// The error's code (`not_found`, `conflict`, …) and message.
    pub(super) fn parts(&self) -> (&'static str, &str) {
        (self.code, &self.message)
    }

    pub(super) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
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

pub(super) type ApiResult = std::result::Result<Response, ApiError>;

/// Runs `f` on the blocking pool (it may wait for an fsync) and returns its
/// result once it has returned.
pub(super) async fn blocking<T, E>(
    app: &Shared,
    f: impl FnOnce(&Store) -> std::result::Result<T, E> + Send + 'static,
) -> std::result::Result<T, ApiError>
where
    T: Send + 'static,
    E: Send + 'static,
    ApiError: From<E>,
{
    on_pool(app.store.clone(), f).await
}

/// [`blocking`] for a caller that holds the store itself (`got mcp`).
pub(super) async fn on_pool<T, E>(
    store: Arc<Store>,
    f: impl FnOnce(&Store) -> std::result::Result<T, E> + Send + 'static,
) -> std::result::Result<T, ApiError>
where
    T: Send + 'static,
    E: Send + 'static,
    ApiError: From<E>,
{
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
pub(super) fn agent_of(app: &App, headers: &HeaderMap) -> std::result::Result<String, ApiError> {
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
pub(super) fn body_object(
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

pub(super) fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", msg)
}

pub(super) fn opt_str(
    o: &Map<String, Json_>,
    k: &str,
) -> std::result::Result<Option<String>, ApiError> {
    match o.get(k) {
        None | Some(Json_::Null) => Ok(None),
        Some(Json_::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("\"{k}\" must be a string"))),
    }
}

pub(super) fn str_list(
    o: &Map<String, Json_>,
    k: &str,
) -> std::result::Result<Vec<String>, ApiError> {
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

pub(super) fn opt_f64(
    o: &Map<String, Json_>,
    k: &str,
) -> std::result::Result<Option<f64>, ApiError> {
    match o.get(k) {
        None | Some(Json_::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| invalid(format!("\"{k}\" must be a number"))),
    }
}

pub(super) fn opt_bool(o: &Map<String, Json_>, k: &str) -> std::result::Result<bool, ApiError> {
    match o.get(k) {
        None | Some(Json_::Null) => Ok(false),
        Some(Json_::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(format!("\"{k}\" must be true or false"))),
    }
}

/// Refuses keys a route does not know (a typo is an error, not a no-op).
pub(super) fn only(o: &Map<String, Json_>, keys: &[&str]) -> std::result::Result<(), ApiError> {
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
pub(super) fn lease_of(o: &Map<String, Json_>) -> std::result::Result<Option<Duration>, ApiError> {
    let d = match opt_str(o, "lease")? {
        Some(s) => crate::tasks::parse_duration(&s).map_err(invalid)?,
        None => crate::tasks::DEFAULT_LEASE,
    };
    Ok((!d.is_zero()).then_some(d))
}

pub(super) fn keyed(status: StatusCode, key: &str, e: &Entity) -> Response {
    (
        status,
        Json(json!({"schema_version": TASK_SCHEMA_VERSION, key: task_json(e)})),
    )
        .into_response()
}

/// `{schema_version, KEY: [...]}`.
pub(super) fn keyed_json(key: &str, es: &[Entity]) -> Json_ {
    json!({
        "schema_version": TASK_SCHEMA_VERSION,
        key: es.iter().map(task_json).collect::<Vec<_>>(),
    })
}

pub(super) fn keyed_many(key: &str, es: &[Entity]) -> Response {
    Json(keyed_json(key, es)).into_response()
}

/// A JSON object argument (`context`, `result`) as a property value.
pub(super) fn opt_object(
    o: &Map<String, Json_>,
    k: &str,
) -> std::result::Result<Option<crate::Value>, ApiError> {
    match o.get(k) {
        None | Some(Json_::Null) => Ok(None),
        Some(v @ Json_::Object(_)) => Ok(Some(crate::json::from_json(v))),
        Some(_) => Err(invalid(format!("\"{k}\" must be a JSON object"))),
    }
}

pub(super) fn limit_of(
    q: &HashMap<String, String>,
    default: usize,
) -> std::result::Result<usize, ApiError> {
    match q.get("limit") {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| invalid("\"limit\" must be a number from 1 to 10000")),
    }
}

/// `POST /v1/{collection}/{id}/{action}`: the action's operation from `table`
/// (404 naming the known ones), run for the acting agent; answered with the
/// entity under `key`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn entity_action(
    app: &Shared,
    headers: &HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
    table: &'static [(&'static str, super::ops::Op)],
    collection: &str,
    key: &str,
    id: String,
    action: &str,
) -> ApiResult {
    let o = body_object(body)?;
    let agent = agent_of(app, headers)?;
    let op = super::ops::find(table, action).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no route POST /v1/{collection}/{{id}}/{action} (known: {})",
                super::ops::actions(table)
            ),
        )
    })?;
    let e = blocking(app, move |s| op(s, &agent, &id, &o)).await?;
    Ok(keyed(StatusCode::OK, key, &e))
}
