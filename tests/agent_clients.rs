//! What agent clients see: `got mcp` driven over stdio as a client drives it —
//! the `initialize` handshake at protocol 2025-06-18 and 2025-11-25, the
//! handshake-free 2026-07-28 flow (`server/discover`, per-request `_meta`),
//! `tools/list`, the agent loop (create, next with claim, note, complete),
//! failures as `isError` results with the CLI's message, malformed lines, a
//! tool's write on disk before its result (SIGKILL right after), exit when
//! stdin closes — and `got setup`, which wires a client up.
#![cfg(feature = "server")]

use crate::common;

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

/// Runs `got setup ARGS…` in `dir` (no store needed).
fn setup_in(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_got"))
        .arg("setup")
        .args(args)
        .current_dir(dir)
        .env_remove("GOT_DIR")
        .output()
        .unwrap()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn setup_claude_merges_into_the_users_files_and_what_it_registers_runs() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::create_dir(p.join(".claude")).unwrap();
    let settings = json!({
        "permissions": {"allow": ["Bash(ls)"]},
        "hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": "echo hello"}]}]},
    });
    std::fs::write(p.join(".claude/settings.json"), settings.to_string()).unwrap();
    std::fs::write(
        p.join(".mcp.json"),
        r#"{"mcpServers": {"other": {"command": "x"}}}"#,
    )
    .unwrap();
    std::fs::write(p.join("AGENTS.md"), "# Rules\n\nBe kind.\n").unwrap();

    // --print writes nothing.
    let before = std::fs::read(p.join(".mcp.json")).unwrap();
    let printed = ok(setup_in(p, &["claude", "--print"]));
    assert!(printed.contains("got prime"), "{printed}");
    assert_eq!(std::fs::read(p.join(".mcp.json")).unwrap(), before);

    ok(setup_in(p, &["claude"]));
    let mcp = read_json(&p.join(".mcp.json"));
    assert_eq!(
        mcp["mcpServers"]["got"],
        json!({"command": "got", "args": ["mcp"]})
    );
    assert_eq!(mcp["mcpServers"]["other"], json!({"command": "x"}));
    let s = read_json(&p.join(".claude/settings.json"));
    assert_eq!(s["permissions"], settings["permissions"]);
    let starts = s["hooks"]["SessionStart"].as_array().unwrap();
    assert_eq!(starts.len(), 2, "{s}");
    assert_eq!(starts[0]["hooks"][0]["command"], "echo hello");
    assert_eq!(starts[1]["hooks"][0]["command"], "got prime");
    let agents = std::fs::read_to_string(p.join("AGENTS.md")).unwrap();
    assert!(agents.starts_with("# Rules\n\nBe kind.\n"), "{agents}");
    assert!(agents.contains("got task next --claim"), "{agents}");

    // Again: every file byte for byte as it was.
    let files = [".mcp.json", ".claude/settings.json", "AGENTS.md"];
    let snapshot: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(p.join(f)).unwrap())
        .collect();
    let again = ok(setup_in(p, &["claude", "--json"]));
    let again: Value = serde_json::from_str(&again).unwrap();
    assert!(
        again["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["action"] == "unchanged"),
        "{again}"
    );
    for (f, b) in files.iter().zip(&snapshot) {
        assert_eq!(&std::fs::read(p.join(f)).unwrap(), b, "{f}");
    }

    // What it registered works: the MCP command answers the handshake, and
    // the hook's command primes, in the project.
    let (_sd, store) = store();
    let server = &mcp["mcpServers"]["got"];
    assert_eq!(server["command"], "got");
    let mut child = Command::new(env!("CARGO_BIN_EXE_got"))
        .args(
            server["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap()),
        )
        .env("GOT_DIR", &store)
        .current_dir(p)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut m = Mcp {
        stdin: child.stdin.take(),
        stdout: BufReader::new(child.stdout.take().unwrap()),
        child,
        lines: Vec::new(),
        next_id: 1,
    };
    assert_eq!(
        m.initialize("2025-11-25")["result"]["serverInfo"]["name"],
        "got"
    );
    assert!(m.close().success());
    let hook = starts[1]["hooks"][0]["command"].as_str().unwrap();
    let mut words = hook.split_whitespace();
    assert_eq!(words.next(), Some("got"));
    let primed = Command::new(env!("CARGO_BIN_EXE_got"))
        .args(words)
        .env("GOT_DIR", &store)
        .env("GOT_AGENT", "agent-1")
        .current_dir(p)
        .output()
        .unwrap();
    let primed = ok(primed);
    assert!(primed.contains("you are agent-1"), "{primed}");
}

#[test]
fn setup_refuses_to_overwrite_without_force_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::write(
        p.join(".mcp.json"),
        r#"{"mcpServers": {"got": {"command": "/opt/got/bin/got", "args": ["mcp"]}, "other": {"command": "x"}}}"#,
    )
    .unwrap();
    let before = std::fs::read(p.join(".mcp.json")).unwrap();
    let r = setup_in(p, &["claude"]);
    assert_eq!(r.status.code(), Some(4), "{}", text(&r));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("--force") && err.contains(".mcp.json"),
        "{err}"
    );
    // Nothing written: not the refused file, nor the others.
    assert_eq!(std::fs::read(p.join(".mcp.json")).unwrap(), before);
    assert!(!p.join(".claude").exists());
    assert!(!p.join("AGENTS.md").exists());

    ok(setup_in(p, &["claude", "--force"]));
    let mcp = read_json(&p.join(".mcp.json"));
    assert_eq!(mcp["mcpServers"]["got"]["command"], "got");
    assert_eq!(mcp["mcpServers"]["other"], json!({"command": "x"}));

    // An edited block of ours in AGENTS.md: refused, then rewritten with
    // --force, the text around it kept.
    let agents = std::fs::read_to_string(p.join("AGENTS.md")).unwrap();
    let edited = format!(
        "intro\n{}outro\n",
        agents.replace("got prime", "got prime --limit 1")
    );
    std::fs::write(p.join("AGENTS.md"), &edited).unwrap();
    assert_eq!(setup_in(p, &["claude"]).status.code(), Some(4));
    assert_eq!(
        std::fs::read_to_string(p.join("AGENTS.md")).unwrap(),
        edited
    );
    ok(setup_in(p, &["claude", "--force"]));
    assert_eq!(
        std::fs::read_to_string(p.join("AGENTS.md")).unwrap(),
        format!("intro\n{agents}outro\n")
    );

    // A file that does not parse is never rewritten, not even with --force.
    std::fs::write(p.join(".mcp.json"), "{ not json").unwrap();
    let r = setup_in(p, &["claude", "--force"]);
    assert_eq!(r.status.code(), Some(4), "{}", text(&r));
    assert_eq!(
        std::fs::read_to_string(p.join(".mcp.json")).unwrap(),
        "{ not json"
    );
}

#[test]
fn setup_codex_edits_config_toml_as_text_and_cursor_writes_its_mcp_json() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::create_dir(p.join(".codex")).unwrap();
    let user = "model = \"o4\"\n\n[mcp_servers.docs]\ncommand = \"docs-mcp\"\n";
    std::fs::write(p.join(".codex/config.toml"), user).unwrap();
    ok(setup_in(p, &["codex"]));
    let toml = std::fs::read_to_string(p.join(".codex/config.toml")).unwrap();
    assert_eq!(
        toml,
        format!("{user}\n[mcp_servers.got]\ncommand = \"got\"\nargs = [\"mcp\"]\n")
    );
    let hooks = read_json(&p.join(".codex/hooks.json"));
    assert_eq!(
        hooks["hooks"]["SessionStart"][0]["hooks"][0]["command"],
        "got prime"
    );
    ok(setup_in(p, &["codex"]));
    assert_eq!(
        std::fs::read_to_string(p.join(".codex/config.toml")).unwrap(),
        toml
    );

    // A different [mcp_servers.got]: refused; --force replaces that table
    // alone, the tables after it kept.
    let other = format!(
        "{user}\n[mcp_servers.got]\ncommand = \"/usr/local/bin/got\"\nargs = [\"mcp\"]\n\n[profiles.fast]\nmodel = \"mini\"\n"
    );
    std::fs::write(p.join(".codex/config.toml"), &other).unwrap();
    assert_eq!(setup_in(p, &["codex"]).status.code(), Some(4));
    assert_eq!(
        std::fs::read_to_string(p.join(".codex/config.toml")).unwrap(),
        other
    );
    ok(setup_in(p, &["codex", "--force"]));
    assert_eq!(
        std::fs::read_to_string(p.join(".codex/config.toml")).unwrap(),
        format!("{user}\n[mcp_servers.got]\ncommand = \"got\"\nargs = [\"mcp\"]\n\n[profiles.fast]\nmodel = \"mini\"\n")
    );

    ok(setup_in(p, &["cursor"]));
    let mcp = read_json(&p.join(".cursor/mcp.json"));
    assert_eq!(
        mcp["mcpServers"]["got"],
        json!({"command": "got", "args": ["mcp"]})
    );
    assert!(!p.join(".cursor/hooks.json").exists());
}
