//! The MCP messages target's mutations and checks (`got mcp`, see
//! `mcp_messages_are_answered_or_refused_never_a_panic`).
//!
//! Inputs are what a client writes to the server's stdin: JSON-RPC lines.
//! Besides the byte mutations every target uses, most inputs are changed as
//! JSON: a value anywhere (most often a tool argument) replaced by one of
//! another type, a huge string or deep nesting; a field removed or an unknown
//! one added; the method, the tool or the id replaced (ids of every JSON
//! type); `_meta` and `params` broken; messages put side by side on separate
//! lines or in a batch.

use crate::common::mutate::{mutate, Donors, Rng};
use serde_json::{json, Map, Value};

/// Every tool of `got mcp`.
pub const TOOLS: [&str; 19] = [
    "create_task",
    "show_task",
    "list_tasks",
    "update_task",
    "claim_task",
    "release_task",
    "next_task",
    "complete_task",
    "block_task",
    "unblock_task",
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

/// Every argument name of the tools: one tool's argument given to another.
const ARGUMENTS: &[&str] = &[
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
    "id",
    "agent",
    "status",
    "label",
    "assignee",
    "limit",
    "after",
    "add_labels",
    "remove_labels",
    "if_version",
    "lease",
    "force",
    "claim",
    "retrospective",
    "reason",
    "text",
    "task",
    "to",
    "instructions",
    "context",
    "result",
    "artifacts",
    "rationale",
    "alternatives",
    "affects",
];

/// Methods a client may send (and some it may not).
const METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
    "notifications/unknown",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "subscriptions/listen",
    "tasks/get",
    "tasks/cancel",
    "tasks/list",
    "skills/list",
    "sampling/createMessage",
    "roots/list",
    "elicitation/create",
    "tools/call/",
    "Tools/Call",
    "rpc.discover",
    "$/cancelRequest",
    "",
];

/// The 2026-07-28 request metadata (the handshake-free flow).
pub fn meta_2026() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "fuzz-client", "version": "1.0"},
    })
}

/// Ids of every JSON type, and numbers at the edges of what an id may be.
fn odd_id(rng: &mut Rng) -> Value {
    match rng.below(20) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(false),
        3 => json!(0),
        4 => json!(-1),
        5 => json!(1.5),
        6 => serde_json::from_str("1.0").unwrap(),
        7 => serde_json::from_str("1e2").unwrap(),
        8 => json!(i64::MAX),
        9 => json!(i64::MIN),
        10 => json!(u64::MAX),
        11 => serde_json::from_str("9007199254740993").unwrap(),
        12 => json!(""),
        13 => json!("1"),
        14 => json!("x".repeat(1 + rng.below(4096))),
        15 => json!([]),
        16 => json!([1]),
        17 => json!({}),
        18 => json!({"id": 1}),
        _ => json!(rng.next_u64() as i64),
    }
}

/// A string as a client might send one: empty, blank, long, control
/// characters, non-ASCII, a path, JSON in a string.
fn odd_string(rng: &mut Rng) -> String {
    match rng.below(12) {
        0 => String::new(),
        1 => "   ".into(),
        2 => "\u{0}".into(),
        3 => "é\u{10348}\u{202e}".into(),
        4 => "T-".into(),
        5 => "T-0".into(),
        6 => "../../etc/passwd".into(),
        7 => "{\"a\":1}".into(),
        8 => "line\nbreak\r\n".into(),
        9 => "30m".into(),
        10 => "-1h".into(),
        _ => huge_string(rng),
    }
}

/// A long string: up to 64 KiB of one character (or a few).
fn huge_string(rng: &mut Rng) -> String {
    let unit = *rng.pick(&["x", "é", "\u{10348}", "ab", "\\", "\""]);
    let most = if rng.one_in(4) { 64 << 10 } else { 1024 };
    unit.repeat(1 + rng.below(most))
}

/// A placeholder for nesting too deep to build as a `Value`; [`render`]
/// writes the nesting out as text.
const DEEP: &str = "\u{1}deep-nesting\u{1}";

/// A value of any type, as a wrong-typed argument or field.
fn odd_value(rng: &mut Rng) -> Value {
    match rng.below(22) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(false),
        3 => json!(0),
        4 => json!(-1),
        5 => json!(1.5),
        6 => json!(1e300),
        7 => json!(u64::MAX),
        8 => json!(i64::MIN),
        9 => json!(10_000),
        10 => json!(10_001),
        11 => json!(odd_string(rng)),
        12 => json!(odd_string(rng)),
        13 => json!([]),
        14 => json!([odd_string(rng)]),
        15 => json!([1, "a", null]),
        16 => json!({}),
        17 => json!({"a": 1, "b": [true]}),
        18 => {
            let depth = 1 + rng.below(40);
            nested(rng, depth)
        }
        19 => json!(format!(
            "{DEEP}{}",
            *rng.pick(&[100usize, 127, 128, 129, 200, 1000, 20_000])
        )),
        20 => json!(huge_string(rng)),
        _ => json!((0..1 + rng.below(300))
            .map(|i| json!(i))
            .collect::<Vec<_>>()),
    }
}

/// Arrays or objects nested `depth` deep.
fn nested(rng: &mut Rng, depth: usize) -> Value {
    let arrays = rng.one_in(2);
    (0..depth).fold(
        json!(1),
        |v, _| {
            if arrays {
                json!([v])
            } else {
                json!({"a": v})
            }
        },
    )
}

/// The JSON pointers of every value in `v` (the root too).
fn pointers(v: &Value, at: &mut String, out: &mut Vec<String>) {
    out.push(at.clone());
    let len = at.len();
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                at.push('/');
                at.push_str(&k.replace('~', "~0").replace('/', "~1"));
                pointers(x, at, out);
                at.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                at.push('/');
                at.push_str(&i.to_string());
                pointers(x, at, out);
                at.truncate(len);
            }
        }
        _ => {}
    }
}

/// A value of `msg` to change: half the time one among the tool arguments
/// (when there are any).
fn pick_pointer(rng: &mut Rng, msg: &Value) -> String {
    let mut all = Vec::new();
    pointers(msg, &mut String::new(), &mut all);
    let args: Vec<&String> = all
        .iter()
        .filter(|p| p.starts_with("/params/arguments/"))
        .collect();
    if !args.is_empty() && rng.one_in(2) {
        return args[rng.below(args.len())].clone();
    }
    all[rng.below(all.len())].clone()
}

/// An object of `msg` (the message itself, its params, its arguments, …).
fn pick_object<'a>(rng: &mut Rng, msg: &'a mut Value) -> Option<&'a mut Map<String, Value>> {
    let mut all = Vec::new();
    pointers(msg, &mut String::new(), &mut all);
    let objects: Vec<String> = all
        .into_iter()
        .filter(|p| msg.pointer(p).is_some_and(Value::is_object))
        .collect();
    if objects.is_empty() {
        return None;
    }
    let p = objects[rng.below(objects.len())].clone();
    msg.pointer_mut(&p).and_then(Value::as_object_mut)
}

/// The changes [`mutate_message`] makes.
#[derive(Clone, Copy, PartialEq)]
enum Change {
    /// A value of another type.
    Retype,
    /// A field missing.
    Remove,
    /// A field added: an argument of another tool, or one of no tool.
    Add,
    /// The id: of any type, gone (a notification), or added.
    Id,
    /// Another method.
    Method,
    /// Another tool, or none that exists.
    Tool,
    /// The request metadata of the handshake-free flow, whole or broken.
    Meta,
    /// The JSON-RPC version.
    Version,
    /// Params not an object, or gone.
    Params,
    /// The arguments of another message (another tool's, valid for it).
    Arguments,
    /// A string (an argument's, most often) made huge.
    Huge,
    /// Not a message: another JSON value at the top.
    Replace,
}

/// The tool arguments of `msg`, if it has an object of them.
fn arguments(msg: &mut Value) -> Option<&mut Map<String, Value>> {
    msg.pointer_mut("/params/arguments")
        .and_then(Value::as_object_mut)
}

/// One change to a message, as JSON: most often to the tool's arguments.
fn mutate_message(rng: &mut Rng, msg: &mut Value, donors: &[Value]) {
    use Change::*;
    let change = match rng.below(20) {
        0..=5 => Retype,
        6 => Remove,
        7 | 8 => Add,
        9 => Id,
        10 => Method,
        11 | 12 => Tool,
        13 => Meta,
        14 => Version,
        15 => Params,
        16 | 17 => Arguments,
        18 => Huge,
        _ => Replace,
    };
    // The changes to fields of the message need one (an earlier change may
    // have made it something else).
    let change = match change {
        Retype | Remove | Add | Huge | Replace => change,
        _ if !msg.is_object() => Retype,
        _ => change,
    };
    match change {
        Retype => {
            let p = pick_pointer(rng, msg);
            if let Some(v) = msg.pointer_mut(&p) {
                *v = odd_value(rng);
            }
        }
        Remove => {
            let of_arguments = rng.one_in(2) && arguments(msg).is_some_and(|a| !a.is_empty());
            let o = if of_arguments {
                arguments(msg)
            } else {
                pick_object(rng, msg)
            };
            if let Some(o) = o.filter(|o| !o.is_empty()) {
                let k = o.keys().nth(rng.below(o.len())).unwrap().clone();
                o.remove(&k);
            }
        }
        Add => {
            let k = if rng.one_in(4) {
                odd_string(rng)
            } else {
                rng.pick(ARGUMENTS).to_string()
            };
            let v = if rng.one_in(3) {
                // A value of the right type, for some argument.
                rng.pick(&[
                    json!("x"),
                    json!(["x"]),
                    json!(true),
                    json!(3),
                    json!({"k": 1}),
                ])
                .clone()
            } else {
                odd_value(rng)
            };
            let to_arguments = !rng.one_in(4) && arguments(msg).is_some();
            let o = if to_arguments {
                arguments(msg)
            } else {
                pick_object(rng, msg)
            };
            if let Some(o) = o {
                o.insert(k, v);
            }
        }
        Id => {
            let o = msg.as_object_mut().unwrap();
            if o.contains_key("id") && rng.one_in(4) {
                o.remove("id");
            } else {
                o.insert("id".into(), odd_id(rng));
            }
        }
        Method => msg["method"] = json!(rng.pick(METHODS)),
        Tool => {
            if msg["params"].is_object() {
                msg["params"]["name"] = if rng.one_in(4) {
                    odd_value(rng)
                } else {
                    json!(rng.pick(&TOOLS))
                };
            }
        }
        Meta => {
            if !msg["params"].is_object() {
                msg["params"] = json!({});
            }
            let mut meta = meta_2026();
            match rng.below(5) {
                0 => {}
                1 => meta["io.modelcontextprotocol/protocolVersion"] = odd_value(rng),
                2 => {
                    let versions = [
                        "2025-06-18",
                        "2025-11-25",
                        "2024-11-05",
                        "2099-01-01",
                        "2026-07-28 ",
                    ];
                    meta["io.modelcontextprotocol/protocolVersion"] = json!(rng.pick(&versions))
                }
                3 => meta["io.modelcontextprotocol/clientCapabilities"] = odd_value(rng),
                _ => {
                    meta.as_object_mut()
                        .unwrap()
                        .remove("io.modelcontextprotocol/clientCapabilities");
                }
            }
            if rng.one_in(3) {
                meta["progressToken"] = odd_id(rng);
            }
            msg["params"]["_meta"] = if rng.one_in(8) { odd_value(rng) } else { meta };
        }
        Version => {
            if rng.one_in(3) {
                msg.as_object_mut().unwrap().remove("jsonrpc");
            } else {
                msg["jsonrpc"] = rng
                    .pick(&[json!("1.0"), json!(2.0), json!(null), json!("2.0 ")])
                    .clone();
            }
        }
        Params => {
            if rng.one_in(3) {
                msg.as_object_mut().unwrap().remove("params");
            } else {
                msg["params"] = odd_value(rng);
            }
        }
        Arguments => {
            let d = rng.pick(donors);
            if let Some(a) = d.pointer("/params/arguments") {
                if msg["params"].is_object() {
                    msg["params"]["arguments"] = a.clone();
                }
            }
        }
        Huge => {
            let mut all = Vec::new();
            pointers(msg, &mut String::new(), &mut all);
            let strings: Vec<String> = all
                .into_iter()
                .filter(|p| msg.pointer(p).is_some_and(Value::is_string))
                .collect();
            let in_arguments: Vec<&String> = strings
                .iter()
                .filter(|p| p.starts_with("/params/arguments/"))
                .collect();
            let p = if !in_arguments.is_empty() && !rng.one_in(4) {
                Some(in_arguments[rng.below(in_arguments.len())].clone())
            } else if !strings.is_empty() {
                Some(strings[rng.below(strings.len())].clone())
            } else {
                None
            };
            if let Some(p) = p {
                *msg.pointer_mut(&p).unwrap() = json!(huge_string(rng));
            }
        }
        Replace => *msg = odd_value(rng),
    }
}

/// The text of `msg`, with any [`DEEP`] placeholder written out as that much
/// nesting.
fn render(msg: &Value) -> Vec<u8> {
    let mut text = msg.to_string();
    let mark = serde_json::to_string(DEEP).unwrap();
    // The opening quote and the mark; the depth follows, then the quote.
    let mark = &mark[..mark.len() - 1];
    while let Some(at) = text.find(mark) {
        let digits = at + mark.len();
        let close = digits + text[digits..].find('"').expect("the closing quote");
        let depth: usize = text[digits..close].parse().unwrap_or(100);
        let (open, shut) = if depth.is_multiple_of(2) {
            ("[", "]")
        } else {
            ("{\"a\":", "}")
        };
        let deep = format!("{}1{}", open.repeat(depth), shut.repeat(depth));
        text.replace_range(at..close + 1, &deep);
    }
    text.into_bytes()
}

/// Makes one input from a valid one: a quarter of the time by bytes only
/// (the harness's mutations), else as JSON (1 to 3 changes), then sometimes
/// bytes on top; sometimes with another message on a line of its own, or
/// the messages in a batch.
pub fn mutate_input(rng: &mut Rng, input: &[u8], donors: &Donors) -> Vec<u8> {
    if rng.one_in(4) {
        return mutate(rng, input, donors);
    }
    let parse = |b: &[u8]| -> Vec<Value> {
        b.split(|&c| c == b'\n')
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect()
    };
    let mut msgs = parse(input);
    let others: Vec<Value> = donors.inputs.iter().flat_map(|d| parse(d)).collect();
    if msgs.is_empty() || others.is_empty() {
        return mutate(rng, input, donors);
    }
    for _ in 0..1 + rng.below(2) + usize::from(rng.one_in(4)) {
        let i = rng.below(msgs.len());
        mutate_message(rng, &mut msgs[i], &others);
    }
    if rng.one_in(8) {
        // Another message after (or before) it, or this one twice.
        let extra = if rng.one_in(3) {
            msgs[0].clone()
        } else {
            rng.pick(&others).clone()
        };
        if rng.one_in(2) {
            msgs.push(extra);
        } else {
            msgs.insert(0, extra);
        }
    }
    let mut out = if rng.one_in(16) {
        render(&Value::Array(msgs))
    } else {
        let lines: Vec<Vec<u8>> = msgs.iter().map(render).collect();
        lines.join(&b"\n"[..])
    };
    if rng.one_in(8) {
        out = mutate(rng, &out, donors);
    }
    if out == input {
        out = mutate(rng, input, donors);
    }
    out
}

/// `v` as text, cut short for a report.
fn clip(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(2000) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s,
    }
}

/// The input of a report, cut short.
pub fn shown(input: &[u8]) -> String {
    let s = String::from_utf8_lossy(input);
    match s.char_indices().nth(2000) {
        Some((at, _)) => format!("{:?}…", &s[..at]),
        None => format!("{s:?}"),
    }
}

/// Checks one line the server wrote: a JSON-RPC 2.0 response (a result or an
/// error with an integer code and a message), never anything else. Returns
/// it parsed.
pub fn check_line(line: &[u8], input: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(line).unwrap_or_else(|e| {
        panic!(
            "the server wrote a line that is not JSON ({e}): {}\nfor {}",
            shown(line),
            shown(input)
        )
    });
    let bad = |what: &str| -> ! { panic!("{what}: {}\nfor {}", clip(&v), shown(input)) };
    if v["jsonrpc"] != "2.0" {
        bad("not JSON-RPC 2.0");
    }
    let Some(o) = v.as_object() else {
        bad("not an object")
    };
    if o.contains_key("method") {
        bad("the server sent a request or a notification");
    }
    let id = o.get("id");
    match (o.get("result"), o.get("error")) {
        (Some(r), None) => {
            if !r.is_object() {
                bad("a result that is not an object");
            }
            if !id.is_some_and(|id| id.is_i64() || id.is_string()) {
                bad("a result without the id of a request");
            }
        }
        (None, Some(e)) => {
            if !e["code"].is_i64() {
                bad("an error without an integer code");
            }
            if !e["message"].is_string() {
                bad("an error without a message");
            }
            if !id.is_none_or(|id| id.is_null() || id.is_i64() || id.is_string()) {
                bad("an error with an id no request has");
            }
        }
        _ => bad("neither a result nor an error"),
    }
    v
}

/// Checks the response to a `tools/call`: a JSON-RPC error (checked by
/// [`check_line`]), or a result with `isError`; a failure has the message as
/// text and a code that is not `internal` (a panic in the library); a success
/// has its JSON as structured content. Returns whether it succeeded.
pub fn check_tool_response(v: &Value, input: &[u8]) -> bool {
    let bad = |what: &str| -> ! { panic!("{what}: {}\nfor {}", clip(v), shown(input)) };
    let Some(r) = v.get("result") else {
        return false;
    };
    match r["isError"] {
        Value::Bool(true) => {
            let texts = r["content"].as_array().map_or(0, |c| {
                c.iter()
                    .filter(|c| c["type"] == "text" && c["text"].is_string())
                    .count()
            });
            if texts == 0 {
                bad("a tool error without a text");
            }
            let code = &r["structuredContent"]["error"]["code"];
            if !code.is_string() {
                bad("a tool error without a code");
            }
            if code == "internal" {
                bad("a panic in the library");
            }
            false
        }
        Value::Bool(false) => {
            if !r["structuredContent"].is_object() || !r["content"].is_array() {
                bad("a tool result without its JSON");
            }
            true
        }
        _ => bad("a tool result without isError"),
    }
}
