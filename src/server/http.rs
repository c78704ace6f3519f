//! `got serve`: the JSON API under `/v1` (docs/server.md), on axum and tokio.
//!
//! Every handler runs its library call on tokio's blocking pool, so many
//! requests commit at once through the store's group commit (many requests,
//! one fsync), and answers after the call returned: for a write, after its
//! commit is durable. Errors are `{"error": {"code", "message"}}` with the
//! status of their kind; a library panic is a 500, never a half-done write
//! (a transaction that did not commit left nothing).

use super::api::{ApiError, App, Shared};
use super::tasks::*;
use super::work::*;
use crate::Store;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::Router;
use serde_json::json;
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
    /// A connection whose request headers have not all arrived by then
    /// (counted from its start, or from its previous response: an idle
    /// keep-alive connection too) is closed, so slow or stalled clients
    /// cannot hold every connection slot.
    pub header_timeout: Duration,
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
            header_timeout: Duration::from_secs(30),
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
        .route("/v1/dashboard", get(dashboard))
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
        let app = App::shared(store, &opts);
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
        let app = App::shared(store, &opts);
        let routes = router(app, &opts);
        let listener = Limited {
            inner: listener,
            slots: Arc::new(tokio::sync::Semaphore::new(opts.max_connections)),
        };
        // The handlers are in place before the address is announced: a
        // SIGTERM sent the moment it is known stops the server cleanly, never
        // by the signal's default action (which resets every connection).
        let stop = stop_signal();
        listening(addr);
        accept_until_stopped(listener, routes, opts.header_timeout, stop).await;
        Ok(())
    })
}

/// Accepts connections and serves each on its own task until SIGTERM or
/// SIGINT; then stops accepting and waits for the connections to finish the
/// requests in flight (each is told to close after its current response).
async fn accept_until_stopped(
    mut listener: Limited,
    routes: Router,
    header_timeout: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    use axum::serve::Listener;
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            (io, _) = listener.accept() => {
                let service = hyper_util::service::TowerToHyperService::new(routes.clone());
                let conn = graceful.watch(http.serve_connection(TokioIo::new(io), service));
                tokio::spawn(async move {
                    // A connection's error (reset, timeout) ends that
                    // connection only.
                    let _ = conn.await;
                });
            }
            _ = &mut stop => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Installs the SIGTERM and SIGINT handlers now (not at the first poll: the
/// accept loop may not poll this future before it accepts) and returns what
/// waits for either.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            // Without signal handlers the server runs until killed.
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}
