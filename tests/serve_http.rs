//! `got serve` through real sockets: every route answers with the CLI's JSON
//! shapes and every error as `{"error": {"code", "message"}}` with its status;
//! a 201 means the task is on disk (16 clients creating while the server is
//! SIGKILLed and restarted: every acknowledged task is there afterwards);
//! claims race exactly as in the CLI; a token is required off loopback; SIGTERM
//! finishes the request in flight and exits 0.
#![cfg(feature = "server")]

use crate::common;

use common::cli::{got_as, ok, text};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(store: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut c = Command::new(env!("CARGO_BIN_EXE_got"));
        c.arg("--store")
            .arg(store)
            .args([
                "--agent",
                "server-agent",
                "serve",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .env_remove("GOT_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("first line: {line:?}"))
            .parse()
            .unwrap();
        Server { child, addr }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A response: status and body (JSON when it parses).
#[derive(Debug)]
struct Resp {
    status: u16,
    body: Value,
    raw: String,
}

fn request_on(
    s: &mut TcpStream,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> std::io::Result<Resp> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or_default();
    req.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ));
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    read_response(s)
}

fn read_response(s: &mut TcpStream) -> std::io::Result<Resp> {
    let mut all = Vec::new();
    s.read_to_end(&mut all)?;
    let text = String::from_utf8_lossy(&all).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no response: {text:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status: {head:?}")))?;
    Ok(Resp {
        status,
        body: serde_json::from_str(body).unwrap_or(Value::Null),
        raw: body.to_string(),
    })
}

fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(addr)?;
    let b = body.map(|b| b.to_string().into_bytes());
    request_on(&mut s, method, path, b.as_deref(), headers)
}

fn http(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Resp {
    call(addr, method, path, body, &[]).unwrap()
}

fn new_store(root: &Path) -> PathBuf {
    let s = root.join("s");
    ok(got_as(&s, "a", &["init"]));
    s
}

fn error_code(r: &Resp) -> &str {
    r.body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{r:?}"))
}

#[test]
fn every_route_answers_with_the_cli_shapes_and_errors_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let srv = Server::start(&store, &[], &[]);
    let a = srv.addr;
    let r = http(a, "GET", "/v1/health", None);
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (200, Some("ok")),
        "{r:?}"
    );

    let r = http(
        a,
        "POST",
        "/v1/tasks",
        Some(json!({"title": "write the docs", "priority": "high", "labels": ["docs"]})),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let first = r.body["task"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["task"]["created_by"], "server-agent");
    let r = call(
        a,
        "POST",
        "/v1/tasks",
        Some(json!({"title": "review them", "depends_on": [first]})),
        &[("X-Got-Agent", "ana")],
    )
    .unwrap();
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["task"]["created_by"], "ana", "X-Got-Agent acts");
    let second = r.body["task"]["id"].as_str().unwrap().to_string();
    // The same shape as the CLI's --json.
    let cli: Value = serde_json::from_str(&ok(got_as(
        &store,
        "a",
        &["--json", "task", "show", &first],
    )))
    .unwrap();
    let r = http(a, "GET", &format!("/v1/tasks/{first}"), None);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, cli, "the CLI's task show JSON, relations included");
    assert_eq!(r.body["dependents"][0]["id"], second.as_str(), "{r:?}");

    // Lists, filtered and paged.
    let r = http(a, "GET", "/v1/tasks?label=docs", None);
    assert_eq!(r.body["tasks"].as_array().unwrap().len(), 1, "{r:?}");
    let r = http(a, "GET", "/v1/tasks?limit=1", None);
    let page = r.body["tasks"].as_array().unwrap();
    assert_eq!(page.len(), 1);
    let after = r.body["next_after"].as_str().unwrap().to_string();
    let r = http(a, "GET", &format!("/v1/tasks?limit=1&after={after}"), None);
    assert_ne!(r.body["tasks"][0]["id"].as_str().unwrap(), after);
    let r = http(a, "GET", "/v1/ready", None);
    let ready: Vec<&str> = r.body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ready, [first.as_str()], "the dependent waits");
    let r = http(a, "GET", "/v1/blocked", None);
    assert_eq!(r.body["waiting"][0]["task"]["id"], second.as_str(), "{r:?}");
    let r = http(a, "GET", "/v1/dashboard", None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body,
        common::cli::ok_json(got_as(&store, "x", &["dashboard", "--json"]))
    );

    // PATCH with if_version.
    let r = http(
        a,
        "PATCH",
        &format!("/v1/tasks/{first}"),
        Some(json!({"title": "write the server docs", "if_version": 1})),
    );
    assert_eq!(
        (r.status, r.body["task"]["version"].as_u64()),
        (200, Some(2)),
        "{r:?}"
    );
    let r = http(
        a,
        "PATCH",
        &format!("/v1/tasks/{first}"),
        Some(json!({"title": "stale", "if_version": 1})),
    );
    assert_eq!((r.status, error_code(&r)), (409, "conflict"), "{r:?}");

    // The agent loop: next with claim, note, complete; then the dependent.
    let r = call(
        a,
        "POST",
        "/v1/next?claim=true",
        None,
        &[("X-Got-Agent", "bo")],
    )
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["task"]["id"], first.as_str());
    assert_eq!(r.body["task"]["assignee"], "bo");
    assert!(
        r.body["task"]["lease_expires_at"].is_i64(),
        "a lease, as the CLI's: {r:?}"
    );
    let note = format!("/v1/tasks/{first}/note");
    let r = call(
        a,
        "POST",
        &note,
        Some(json!({"text": "half done"})),
        &[("X-Got-Agent", "bo")],
    )
    .unwrap();
    assert_eq!(r.body["task"]["notes"][0]["text"], "half done", "{r:?}");
    let r = call(
        a,
        "POST",
        &format!("/v1/tasks/{first}/complete"),
        Some(json!({"retrospective": "fine"})),
        &[("X-Got-Agent", "bo")],
    )
    .unwrap();
    assert_eq!(r.body["task"]["status"], "completed", "{r:?}");
    let path = |act: &str| format!("/v1/tasks/{second}/{act}");
    let r = http(
        a,
        "POST",
        &path("block"),
        Some(json!({"reason": "waiting on review"})),
    );
    assert_eq!(r.body["task"]["status"], "blocked", "{r:?}");
    let r = http(a, "POST", &path("unblock"), None);
    assert_eq!(r.body["task"]["status"], "pending", "{r:?}");
    let r = http(a, "POST", &path("claim"), Some(json!({"lease": "30m"})));
    assert_eq!(r.body["task"]["assignee"], "server-agent", "{r:?}");
    let r = http(a, "POST", &path("start"), None);
    assert_eq!(r.body["task"]["status"], "in_progress", "{r:?}");
    let r = http(a, "POST", &path("release"), None);
    assert_eq!(r.body["task"]["status"], "pending", "{r:?}");
    let r = http(a, "POST", "/v1/next", None);
    assert_eq!(
        r.body["task"]["id"],
        second.as_str(),
        "without claim: {r:?}"
    );
    let r = http(a, "GET", "/v1/export", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.raw, ok(got_as(&store, "a", &["export"])) + "\n");

    // Errors, each with its status and code.
    for (method, path, body, status, code) in [
        ("GET", "/v1/tasks/T-nosuchtask", None, 404, "not_found"),
        ("GET", "/v1/nothing", None, 404, "not_found"),
        ("DELETE", "/v1/tasks", None, 405, "method_not_allowed"),
        ("POST", "/v1/tasks/T-x/fly", None, 404, "not_found"),
        (
            "POST",
            "/v1/tasks",
            Some(json!({"priority": "high"})),
            422,
            "invalid",
        ),
        (
            "POST",
            "/v1/tasks",
            Some(json!({"title": "x", "priority": "urgent"})),
            422,
            "invalid",
        ),
        (
            "POST",
            "/v1/tasks",
            Some(json!({"title": "x", "colour": "red"})),
            422,
            "invalid",
        ),
        ("POST", "/v1/tasks", Some(json!([1, 2])), 400, "bad_request"),
        ("GET", "/v1/tasks?status=sleeping", None, 422, "invalid"),
        ("GET", "/v1/tasks?limit=0", None, 422, "invalid"),
        ("POST", "/v1/next?claim=maybe", None, 422, "invalid"),
    ] {
        let r = http(a, method, path, body);
        assert_eq!(
            (r.status, error_code(&r)),
            (status, code),
            "{method} {path}: {r:?}"
        );
        assert!(r.body["error"]["message"].is_string());
    }
    let mut s = TcpStream::connect(a).unwrap();
    let r = request_on(&mut s, "POST", "/v1/tasks", Some(b"{\"title\": "), &[]).unwrap();
    assert_eq!((r.status, error_code(&r)), (400, "bad_request"), "{r:?}");
    let big = format!("{{\"title\": \"{}\"}}", "x".repeat(1 << 20));
    let mut s = TcpStream::connect(a).unwrap();
    let r = request_on(&mut s, "POST", "/v1/tasks", Some(big.as_bytes()), &[]).unwrap();
    assert_eq!((r.status, error_code(&r)), (413, "too_large"), "{r:?}");
    // No next task: 404.
    http(a, "POST", &path("claim"), None);
    let r = http(a, "POST", "/v1/next?claim=true", None);
    assert_eq!((r.status, error_code(&r)), (404, "not_found"), "{r:?}");
    // The CLI works on the same store while the server holds it.
    let id = ok(got_as(
        &store,
        "cli",
        &["-q", "task", "create", "made by the CLI"],
    ));
    let r = http(a, "GET", &format!("/v1/tasks/{id}"), None);
    assert_eq!(r.body["task"]["title"], "made by the CLI", "{r:?}");
}

#[test]
fn of_eight_clients_racing_to_claim_one_task_one_wins_and_the_others_get_409() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let srv = Server::start(&store, &[], &[]);
    let a = srv.addr;
    for round in 0..5 {
        let r = http(
            a,
            "POST",
            "/v1/tasks",
            Some(json!({"title": format!("race {round}")})),
        );
        let id = r.body["task"]["id"].as_str().unwrap().to_string();
        let results: Vec<Resp> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let (id, agent) = (id.clone(), format!("agent-{i}"));
                    sc.spawn(move || {
                        call(
                            a,
                            "POST",
                            &format!("/v1/tasks/{id}/claim"),
                            None,
                            &[("X-Got-Agent", &agent)],
                        )
                        .unwrap()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won: Vec<&Resp> = results.iter().filter(|r| r.status == 200).collect();
        assert_eq!(won.len(), 1, "round {round}: {results:?}");
        let winner = won[0].body["task"]["assignee"].as_str().unwrap();
        for r in results.iter().filter(|r| r.status != 200) {
            assert_eq!((r.status, error_code(r)), (409, "conflict"), "{r:?}");
            let m = r.body["error"]["message"].as_str().unwrap();
            assert!(m.contains(winner), "the loser is told who holds it: {m}");
        }
    }
}

#[test]
fn every_201_names_a_task_that_exists_after_the_server_is_killed_and_restarted() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    for round in 0..3 {
        let mut srv = Server::start(&store, &[], &[]);
        let a = srv.addr;
        let count = Arc::new(AtomicUsize::new(0));
        let target = 40 * (round + 1);
        std::thread::scope(|sc| {
            for c in 0..16 {
                let (acked, count) = (acked.clone(), count.clone());
                sc.spawn(move || {
                    for i in 0.. {
                        let body = json!({"title": format!("round {round} client {c} task {i}")});
                        match call(a, "POST", "/v1/tasks", Some(body), &[]) {
                            Ok(r) if r.status == 201 => {
                                let id = r.body["task"]["id"].as_str().unwrap().to_string();
                                acked.lock().unwrap().push(id);
                                count.fetch_add(1, Ordering::SeqCst);
                            }
                            // Killed mid-request: no success, nothing promised.
                            Ok(r) => assert_ne!(r.status / 100, 2, "{r:?}"),
                            Err(_) => return,
                        }
                    }
                });
            }
            // Kill once enough have been acknowledged (an event, not a time).
            while count.load(Ordering::SeqCst) < 40 {
                std::thread::yield_now();
            }
            srv.kill();
        });
        let srv = Server::start(&store, &[], &[]);
        let ids = acked.lock().unwrap().clone();
        assert!(ids.len() >= target, "round {round}: {} acked", ids.len());
        for id in &ids {
            let r = http(srv.addr, "GET", &format!("/v1/tasks/{id}"), None);
            assert_eq!(r.status, 200, "round {round}: {id} was acknowledged: {r:?}");
        }
    }
    ok(got_as(&store, "a", &["validate"]));
}

#[test]
fn a_token_is_required_off_loopback_and_checked_on_every_request() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let o = got_as(&store, "a", &["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs a token"));

    let tok = tmp.path().join("token");
    std::fs::write(&tok, "s3cret-token\n").unwrap();
    for srv in [
        Server::start(&store, &["--token-file", tok.to_str().unwrap()], &[]),
        Server::start(&store, &[], &[("GOT_TOKEN", "s3cret-token")]),
    ] {
        let a = srv.addr;
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Bearer s3cret-tokeX"),
            Some("s3cret-token"),
        ] {
            let h: Vec<(&str, &str)> = auth.iter().map(|v| ("Authorization", *v)).collect();
            let r = call(a, "GET", "/v1/health", None, &h).unwrap();
            assert_eq!(
                (r.status, error_code(&r)),
                (401, "unauthorized"),
                "{auth:?}"
            );
            let r = call(a, "POST", "/v1/tasks", Some(json!({"title": "x"})), &h).unwrap();
            assert_eq!(r.status, 401, "{auth:?}: nothing written");
        }
        let h = [("Authorization", "Bearer s3cret-token")];
        assert_eq!(call(a, "GET", "/v1/health", None, &h).unwrap().status, 200);
    }
    let list = ok(got_as(&store, "a", &["task", "list"]));
    assert!(
        !list.contains(" x"),
        "no task from an unauthorized request: {list}"
    );
}

/// The address is printed only once SIGTERM is handled: a SIGTERM sent the
/// moment the first line arrives stops the server cleanly (exit 0), never
/// with the signal's default action (which would reset every connection).
#[test]
fn sigterm_right_after_the_listening_line_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    for round in 0..20 {
        let mut srv = Server::start(&store, &[], &[]);
        // SAFETY: sends a signal to a child this test started.
        unsafe {
            libc::kill(srv.child.id() as i32, libc::SIGTERM);
        }
        let status = srv.child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "round {round}: {status:?}");
    }
}

#[test]
fn sigterm_finishes_the_request_in_flight_and_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let mut srv = Server::start(&store, &[], &[]);
    let a = srv.addr;
    assert_eq!(http(a, "GET", "/v1/health", None).status, 200);
    // A request in flight: its head sent with `Expect: 100-continue`; the
    // server's `100 Continue` says the handler is reading the body.
    let body = json!({"title": "sent across a shutdown"}).to_string();
    let (head, tail) = body.split_at(10);
    let mut s = TcpStream::connect(a).unwrap();
    write!(
        s,
        "POST /v1/tasks HTTP/1.1\r\nHost: t\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.flush().unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8];
    while !got.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        got.push(byte[0]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    s.write_all(head.as_bytes()).unwrap();
    // SAFETY: sends a signal to a child this test started.
    unsafe {
        libc::kill(srv.child.id() as i32, libc::SIGTERM);
    }
    // It stops accepting (wait for that), then finishes the request.
    while TcpStream::connect(a).is_ok() {
        std::thread::yield_now();
    }
    s.write_all(tail.as_bytes()).unwrap();
    let r = read_response(&mut s).unwrap();
    assert_eq!(r.status, 201, "{r:?}");
    let status = srv.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "exit 0 after SIGTERM");
    let id = r.body["task"]["id"].as_str().unwrap();
    ok(got_as(&store, "a", &["task", "show", id]));
}

#[test]
fn handoffs_and_decisions_work_as_in_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let srv = Server::start(&store, &[], &[]);
    let a = srv.addr;
    let as_ = |agent: &'static str| [("X-Got-Agent", agent)];
    let r = http(
        a,
        "POST",
        "/v1/tasks",
        Some(json!({"title": "the wal tail"})),
    );
    let task = r.body["task"]["id"].as_str().unwrap().to_string();
    let r = call(
        a,
        "POST",
        "/v1/handoffs",
        Some(json!({"task": task, "to": "bo", "instructions": "finish the tests", "context": {"branch": "wal-tail"}})),
        &as_("ana"),
    )
    .unwrap();
    assert_eq!(r.status, 201, "{r:?}");
    let h = r.body["handoff"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["handoff"]["from"], "ana");
    assert_eq!(r.body["handoff"]["context"]["branch"], "wal-tail");
    let cli: Value =
        serde_json::from_str(&ok(got_as(&store, "a", &["--json", "handoff", "show", &h]))).unwrap();
    let r = http(a, "GET", &format!("/v1/handoffs/{h}"), None);
    assert_eq!(r.body["handoff"], cli["handoff"], "the CLI's JSON");
    let r = http(a, "GET", "/v1/handoffs?to=bo&status=initiated", None);
    assert_eq!(r.body["handoffs"][0]["id"], h.as_str(), "{r:?}");
    // Only the target agent moves it.
    let act = |act: &str| format!("/v1/handoffs/{h}/{act}");
    let r = call(a, "POST", &act("accept"), None, &as_("cy")).unwrap();
    assert_eq!((r.status, error_code(&r)), (422, "invalid"), "{r:?}");
    let r = call(a, "POST", &act("accept"), None, &as_("bo")).unwrap();
    assert_eq!(r.body["handoff"]["status"], "accepted", "{r:?}");
    let r = call(
        a,
        "POST",
        &act("complete"),
        Some(json!({"result": {"summary": "done"}, "artifacts": ["tests/wal.rs"]})),
        &as_("bo"),
    )
    .unwrap();
    assert_eq!(r.body["handoff"]["status"], "completed", "{r:?}");
    assert_eq!(r.body["handoff"]["result"]["summary"], "done");
    let r = call(
        a,
        "POST",
        &act("reject"),
        Some(json!({"reason": "late"})),
        &as_("bo"),
    )
    .unwrap();
    assert_eq!(
        r.status, 422,
        "a completed handoff cannot be rejected: {r:?}"
    );
    let r = http(a, "POST", "/v1/handoffs", Some(json!({"task": task})));
    assert_eq!((r.status, error_code(&r)), (422, "invalid"), "{r:?}");

    let r = call(
        a,
        "POST",
        "/v1/decisions",
        Some(json!({"title": "Cut at the last intact frame", "rationale": "no guessing", "alternatives": ["refuse to open"], "affects": [task]})),
        &as_("ana"),
    )
    .unwrap();
    assert_eq!(r.status, 201, "{r:?}");
    let d = r.body["decision"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["decision"]["decided_by"], "ana");
    let r = http(a, "GET", &format!("/v1/decisions/{d}"), None);
    assert_eq!(r.body["affects"], json!([task]), "{r:?}");
    let r = http(a, "GET", "/v1/decisions?limit=5", None);
    assert_eq!(r.body["decisions"][0]["id"], d.as_str(), "{r:?}");
    let r = http(a, "GET", "/v1/decisions/D-nosuchone", None);
    assert_eq!((r.status, error_code(&r)), (404, "not_found"), "{r:?}");
}

#[test]
fn sprints_and_epics_work_as_in_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let srv = Server::start(&store, &[], &[]);
    let a = srv.addr;
    let r = http(
        a,
        "POST",
        "/v1/epics",
        Some(json!({"title": "Storage", "phases": ["wal", "runs"]})),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let epic = r.body["epic"]["id"].as_str().unwrap().to_string();
    let r = http(
        a,
        "POST",
        "/v1/sprints",
        Some(json!({"title": "Sprint 1", "epic": epic, "goals": ["cut the tail", "test it"]})),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let sprint = r.body["sprint"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["sprint"]["epic"], epic.as_str());
    let t = http(a, "POST", "/v1/tasks", Some(json!({"title": "cut"})));
    let task = t.body["task"]["id"].as_str().unwrap().to_string();
    let act = |x: &str| format!("/v1/sprints/{sprint}/{x}");
    let r = http(a, "POST", &act("add"), Some(json!({"task": task})));
    assert_eq!(r.status, 200, "{r:?}");
    let r = http(a, "POST", &act("complete_goal"), Some(json!({"n": 1})));
    assert_eq!(r.body["sprint"]["goals"][0]["done"], true, "{r:?}");
    let r = http(
        a,
        "POST",
        &act("goal"),
        Some(json!({"description": "ship"})),
    );
    assert_eq!(
        r.body["sprint"]["goals"].as_array().unwrap().len(),
        3,
        "{r:?}"
    );
    let r = http(a, "POST", &act("start"), None);
    assert_eq!(r.body["sprint"]["status"], "in_progress", "{r:?}");
    let r = call(a, "POST", &act("claim"), None, &[("X-Got-Agent", "bo")]).unwrap();
    assert_eq!(r.body["sprint"]["claimed_by"], "bo", "{r:?}");
    let r = http(a, "POST", &act("fly"), None);
    assert_eq!((r.status, error_code(&r)), (404, "not_found"), "{r:?}");
    // The CLI's JSON for show and list.
    for (path, args) in [
        (
            format!("/v1/sprints/{sprint}"),
            vec!["--json", "sprint", "show", &sprint],
        ),
        (
            format!("/v1/epics/{epic}"),
            vec!["--json", "epic", "show", &epic],
        ),
        ("/v1/sprints".to_string(), vec!["--json", "sprint", "list"]),
        ("/v1/epics".to_string(), vec!["--json", "epic", "list"]),
    ] {
        let cli: Value = serde_json::from_str(&ok(got_as(&store, "a", &args))).unwrap();
        let r = http(a, "GET", &path, None);
        assert_eq!(r.body, cli, "{path}");
    }
    let r = http(a, "GET", &format!("/v1/sprints/{sprint}"), None);
    assert_eq!(r.body["members"][0]["id"], task.as_str(), "{r:?}");
    assert_eq!(r.body["progress"]["tasks"], 1);
}

/// Waits until the server closes `s` and returns what it sent before closing
/// (a reset counts as a close). The read timeout is a bound on a hang, not a
/// measurement: a connection the server never closes fails the test.
fn closed_by_server(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!(
                    "the server never closed the connection ({} bytes sent)",
                    got.len()
                )
            }
            Err(_) => return got,
        }
    }
}

#[test]
fn stalled_clients_are_cut_off_and_a_slow_one_holds_up_nobody() {
    let d = tempfile::tempdir().unwrap();
    let store = new_store(d.path());
    let srv = Server::start(
        &store,
        &["--max-connections", "2", "--header-timeout", "1s"],
        &[],
    );
    // Two clients stall halfway through their headers, holding both
    // connection slots; a third waits in the backlog.
    let mut stalled: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(srv.addr).unwrap();
            s.write_all(b"POST /v1/tasks HTTP/1.1\r\nHost: test\r\nContent-Le")
                .unwrap();
            s
        })
        .collect();
    let mut third = TcpStream::connect(srv.addr).unwrap();
    // A bound on a hang, not a measurement: the header timeout is 1 s.
    third
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let r = request_on(
        &mut third,
        "POST",
        "/v1/tasks",
        Some(br#"{"title": "after the stall"}"#),
        &[],
    )
    .unwrap();
    assert_eq!(r.status, 201, "{r:?}");
    // The third was served because a stalled one was cut off (both slots were
    // held); both are cut off, each when its own header timeout fires (the
    // second may close a moment after the third was served).
    for (i, s) in stalled.iter_mut().enumerate() {
        let sent = closed_by_server(s);
        let sent = String::from_utf8_lossy(&sent);
        assert!(
            sent.is_empty() || sent.starts_with("HTTP/1.1 408"),
            "stalled connection {i}: {sent:?}"
        );
    }

    // A slow client: its request in one-byte segments, then a pause in the
    // middle of its body; another client is served meanwhile.
    let (paused_tx, paused_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let addr = srv.addr;
    let slow = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        let body = br#"{"title": "slowly"}"#;
        let head = format!(
            "POST /v1/tasks HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        for b in head.as_bytes().iter().chain(&body[..8]) {
            s.write_all(std::slice::from_ref(b)).unwrap();
        }
        paused_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        s.write_all(&body[8..]).unwrap();
        read_response(&mut s).unwrap()
    });
    paused_rx.recv().unwrap();
    let other = http(
        srv.addr,
        "POST",
        "/v1/tasks",
        Some(json!({"title": "quick"})),
    );
    assert_eq!(other.status, 201, "{other:?}");
    go_tx.send(()).unwrap();
    let r = slow.join().unwrap();
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["task"]["title"], "slowly");
}
