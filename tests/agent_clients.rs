//! What agent clients see: `got mcp` driven over stdio as a client drives it —
//! the `initialize` handshake at protocol 2025-06-18 and 2025-11-25, the
//! handshake-free 2026-07-28 flow (`server/discover`, per-request `_meta`),
//! `tools/list`, the agent loop (create, next with claim, note, complete),
//! failures as `isError` results with the CLI's message, malformed lines, a
//! tool's write on disk before its result (SIGKILL right after), exit when
//! stdin closes — and `got setup`, which wires a client up.
#![cfg(feature = "server")]

mod common;

use common::cli::{got_as, ok, ok_json, text};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// A `got mcp` process and the client end of its stdio.
struct Mcp {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// Every line the server wrote, for the "only protocol on stdout" check.
    lines: Vec<String>,
    next_id: u64,
}

impl Mcp {
    fn start(store: &Path, agent: &str) -> Mcp {
        let mut child = Command::new(env!("CARGO_BIN_EXE_got"))
            .arg("--store")
            .arg(store)
            .args(["--agent", agent, "mcp"])
            .env_remove("GOT_AGENT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Mcp {
            stdin: child.stdin.take(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
            lines: Vec::new(),
            next_id: 1,
        }
    }

    fn send_line(&mut self, line: &str) {
        let w = self.stdin.as_mut().unwrap();
        w.write_all(line.as_bytes()).unwrap();
        w.write_all(b"\n").unwrap();
        w.flush().unwrap();
    }

    /// The next message the server writes (a JSON object per line).
    fn read(&mut self) -> Value {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).unwrap();
        assert!(
            n > 0,
            "got mcp closed stdout; lines so far: {:?}",
            self.lines
        );
        self.lines.push(line.clone());
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a JSON line on stdout ({e}): {line:?}"));
        assert_eq!(v["jsonrpc"], "2.0", "{line}");
        v
    }

    /// Sends a request and returns its response (skipping notifications).
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_line(&msg.to_string());
        loop {
            let v = self.read();
            if v.get("id") == Some(&json!(id)) {
                return v;
            }
            assert!(
                v.get("method").is_some(),
                "a response to another request: {v}"
            );
        }
    }

    fn initialize(&mut self, version: &str) -> Value {
        let r = self.request(
            "initialize",
            json!({
                "protocolVersion": version,
                "capabilities": {},
                "clientInfo": {"name": "test-client", "version": "1.0"},
            }),
        );
        self.send_line(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        r
    }

    /// A tool call's result (which must not be a JSON-RPC error).
    fn call(&mut self, name: &str, args: Value) -> Value {
        self.call_with(name, args, None)
    }

    fn call_with(&mut self, name: &str, args: Value, meta: Option<&Value>) -> Value {
        let mut params = json!({"name": name, "arguments": args});
        if let Some(m) = meta {
            params["_meta"] = m.clone();
        }
        let r = self.request("tools/call", params);
        assert!(r.get("error").is_none(), "{name}: {r}");
        r["result"].clone()
    }

    /// Closes stdin and waits for the process to exit.
    fn close(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        let mut rest = String::new();
        while self.stdout.read_line(&mut rest).unwrap() > 0 {
            self.lines.push(std::mem::take(&mut rest));
        }
        for l in &self.lines {
            serde_json::from_str::<Value>(l).expect("only protocol messages on stdout");
        }
        self.child.wait().unwrap()
    }
}

/// A tool result's JSON (its structured content, which its text repeats).
fn structured(result: &Value) -> Value {
    assert_eq!(result["isError"], false, "{result}");
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, result["structuredContent"]);
    text
}

fn store() -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let s = d.path().join("store");
    ok(got_as(&s, "setup", &["init"]));
    (d, s)
}

const TOOLS: [&str; 18] = [
    "create_task",
    "show_task",
    "list_tasks",
    "update_task",
    "claim_task",
    "release_task",
    "next_task",
    "complete_task",
    "block_task",
    "add_note",
    "ready",
    "blocked",
    "handoff_initiate",
    "handoff_accept",
    "handoff_complete",
    "handoff_reject",
    "log_decision",
    "dashboard",
];

/// The agent loop as a client runs it after the handshake at `version`.
fn agent_loop(version: &str) {
    let (_d, s) = store();
    let mut m = Mcp::start(&s, "server-default");
    let init = m.initialize(version);
    assert_eq!(init["result"]["protocolVersion"], version, "{init}");
    assert_eq!(init["result"]["serverInfo"]["name"], "got");
    assert!(
        init["result"]["capabilities"]["tools"].is_object(),
        "{init}"
    );

    let tools = m.request("tools/list", json!({}));
    let listed: Vec<&Value> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    for name in TOOLS {
        let t = listed
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("tool {name} not listed"));
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        assert!(t["description"].as_str().unwrap().len() > 20, "{t}");
    }

    // create (by the server's default agent), next with claim (by the tool's
    // agent argument), note, complete.
    let created = structured(&m.call(
        "create_task",
        json!({"title": "write the parser", "priority": "high", "labels": ["mcp"]}),
    ));
    let id = created["task"]["id"].as_str().unwrap().to_string();
    assert_eq!(created["task"]["created_by"], "server-default");
    let next = structured(&m.call("next_task", json!({"claim": true, "agent": "agent-7"})));
    assert_eq!(next["task"]["id"], id.as_str());
    assert_eq!(next["task"]["status"], "in_progress");
    assert_eq!(next["task"]["assignee"], "agent-7");
    structured(&m.call(
        "add_note",
        json!({"id": id, "text": "the grammar is LL(1)", "agent": "agent-7"}),
    ));
    let done = structured(&m.call(
        "complete_task",
        json!({"id": id, "retrospective": "done", "agent": "agent-7"}),
    ));
    assert_eq!(done["task"]["status"], "completed");
    // Nothing ready is a result, not an error.
    let none = structured(&m.call("next_task", json!({"claim": true})));
    assert_eq!(none["task"], Value::Null);

    // The tool saw what the CLI sees: the same JSON as `got task show --json`.
    let shown = structured(&m.call("show_task", json!({"id": id})));
    let cli = ok_json(got_as(&s, "x", &["task", "show", &id, "--json"]));
    assert_eq!(shown, cli);
    assert_eq!(
        cli["task"]["notes"][0]["text"], "the grammar is LL(1)",
        "{cli}"
    );
    let board = structured(&m.call("dashboard", json!({})));
    assert_eq!(board, ok_json(got_as(&s, "x", &["dashboard", "--json"])));

    let status = m.close();
    assert!(
        status.success(),
        "got mcp exited {status:?} after stdin closed"
    );
}

#[test]
fn agent_loop_after_the_2025_06_18_handshake() {
    agent_loop("2025-06-18");
}

#[test]
fn agent_loop_after_the_2025_11_25_handshake() {
    agent_loop("2025-11-25");
}

#[test]
fn the_2026_07_28_flow_needs_no_handshake() {
    let (_d, s) = store();
    let mut m = Mcp::start(&s, "agent-9");
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test-client", "version": "1.0"},
    });
    let d = m.request("server/discover", json!({"_meta": meta}));
    let versions = d["result"]["supportedVersions"].as_array().unwrap();
    for v in ["2025-06-18", "2025-11-25", "2026-07-28"] {
        assert!(versions.contains(&json!(v)), "{d}");
    }
    assert!(d["result"]["capabilities"]["tools"].is_object(), "{d}");
    let listed = m.request("tools/list", json!({"_meta": meta}));
    assert_eq!(
        listed["result"]["tools"].as_array().unwrap().len(),
        TOOLS.len() + 1, // unblock_task too
        "{listed}"
    );
    let t = structured(&m.call_with("create_task", json!({"title": "inline"}), Some(&meta)));
    let next = structured(&m.call_with("next_task", json!({"claim": true}), Some(&meta)));
    assert_eq!(next["task"]["id"], t["task"]["id"]);
    assert_eq!(next["task"]["assignee"], "agent-9");
    assert!(m.close().success());
}

#[test]
fn failures_are_tool_errors_with_the_clis_message_and_bad_lines_are_survived() {
    let (_d, s) = store();
    let mut m = Mcp::start(&s, "ann");
    m.initialize("2025-11-25");

    // A failed operation: isError, the CLI's message.
    let t = structured(&m.call("create_task", json!({"title": "contested"})));
    let id = t["task"]["id"].as_str().unwrap().to_string();
    structured(&m.call("claim_task", json!({"id": id})));
    let lost = m.call("claim_task", json!({"id": id, "agent": "bob"}));
    assert_eq!(lost["isError"], true, "{lost}");
    let cli = got_as(&s, "bob", &["task", "claim", &id]);
    assert_ne!(cli.status.code(), Some(0), "{}", text(&cli));
    let cli_msg = String::from_utf8_lossy(&cli.stderr)
        .trim()
        .trim_start_matches("got: ")
        .to_string();
    assert_eq!(lost["content"][0]["text"], cli_msg.as_str(), "{lost}");
    assert!(
        cli_msg.contains("ann"),
        "a lost claim names the holder: {cli_msg}"
    );
    assert_eq!(lost["structuredContent"]["error"]["code"], "conflict");
    let missing = m.call("show_task", json!({"id": "T-nosuchtask"}));
    assert_eq!(missing["isError"], true);
    assert_eq!(missing["structuredContent"]["error"]["code"], "not_found");
    // Invalid arguments are tool errors too, naming the field.
    let bad = m.call("create_task", json!({"title": "x", "priority": 3}));
    assert_eq!(bad["isError"], true);
    assert!(bad["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("priority"));
    let typo = m.call("create_task", json!({"title": "x", "prio": "high"}));
    assert_eq!(typo["isError"], true);
    assert!(typo["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("prio"));

    // Protocol faults are JSON-RPC errors: an unknown tool, a message that is
    // JSON but not JSON-RPC. A line that is not JSON is ignored (as the other
    // official SDKs do); the session goes on.
    let unknown = m.request("tools/call", json!({"name": "rm_rf", "arguments": {}}));
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    m.send_line("this is not json {");
    m.send_line(r#"{"jsonrpc":"2.0","id":"#);
    m.send_line(r#"{"not":"json-rpc"}"#);
    let invalid = m.read();
    assert_eq!(invalid["error"]["code"], -32600, "{invalid}");
    let after = structured(&m.call("create_task", json!({"title": "acknowledged"})));
    let acked = after["task"]["id"].as_str().unwrap().to_string();

    // The result came after the write was durable: SIGKILL now, and the task
    // is there.
    m.child.kill().unwrap();
    m.child.wait().unwrap();
    let shown = ok_json(got_as(&s, "x", &["task", "show", &acked, "--json"]));
    assert_eq!(shown["task"]["title"], "acknowledged");
    for l in &m.lines {
        serde_json::from_str::<Value>(l).expect("only protocol messages on stdout");
    }
}

#[test]
fn two_mcp_servers_racing_for_one_task_one_gets_it() {
    let (_d, s) = store();
    let t = ok_json(got_as(&s, "x", &["task", "create", "only one", "--json"]));
    let id = t["task"]["id"].as_str().unwrap().to_string();
    let mut a = Mcp::start(&s, "a");
    let mut b = Mcp::start(&s, "b");
    a.initialize("2025-11-25");
    b.initialize("2025-11-25");
    // Both requests are in flight before either answer is read.
    let call = json!({"jsonrpc": "2.0", "id": 99, "method": "tools/call",
        "params": {"name": "next_task", "arguments": {"claim": true}}})
    .to_string();
    a.send_line(&call);
    b.send_line(&call);
    let (ra, rb) = (a.read(), b.read());
    let got: Vec<Value> = [ra, rb]
        .iter()
        .map(|r| structured(&r["result"])["task"].clone())
        .collect();
    let winners: Vec<&Value> = got.iter().filter(|t| !t.is_null()).collect();
    assert_eq!(winners.len(), 1, "{got:?}");
    assert_eq!(winners[0]["id"], id.as_str());
    let shown = ok_json(got_as(&s, "x", &["task", "show", &id, "--json"]));
    assert_eq!(shown["task"]["assignee"], winners[0]["assignee"]);
    assert!(a.close().success());
    assert!(b.close().success());
}
