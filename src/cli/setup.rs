//! `got setup claude|codex|cursor`: wires an agent client up to got in a
//! project — registers `got mcp` where the client looks for MCP servers, runs
//! `got prime` at session start where the client has such a hook, and puts
//! the agent loop in AGENTS.md (docs/server.md, "Agent setup").
//!
//! A user's settings are merged into, never replaced: other servers, hooks
//! and keys stay. An entry named `got` that differs from ours, or a block of
//! ours in AGENTS.md that was edited, is replaced only with `--force`; a file
//! that does not parse is never rewritten. All files are checked before any
//! is written, so a refusal leaves every file as it was.

use super::args::Client;
use super::ctx::Ctx;
use super::{exit, CmdResult, Failure};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// The command every file registers (found on PATH, so a committed file
/// works on every machine of the team).
const GOT: &str = "got";

/// What one file becomes.
struct Change {
    path: PathBuf,
    before: Option<String>,
    after: String,
    what: &'static str,
}

/// A file that cannot be changed without `--force` (or at all).
struct Refusal {
    path: PathBuf,
    why: String,
}

type Planned = Result<Change, Refusal>;

pub fn setup(
    ctx: &Ctx,
    client: Client,
    dir: Option<PathBuf>,
    print: bool,
    force: bool,
) -> CmdResult {
    let root = match dir {
        Some(d) => d,
        None => std::env::current_dir()
            .map_err(|e| Failure::new("io", exit::ERROR, format!("the current directory: {e}")))?,
    };
    let plans: Vec<Planned> = match client {
        Client::Claude => vec![
            mcp_json(&root.join(".mcp.json"), force),
            session_hook(
                &root.join(".claude/settings.json"),
                "startup|resume|clear|compact",
            ),
            agents_md(&root.join("AGENTS.md"), force),
        ],
        Client::Codex => vec![
            codex_toml(&root.join(".codex/config.toml"), force),
            session_hook(&root.join(".codex/hooks.json"), "startup|resume"),
            agents_md(&root.join("AGENTS.md"), force),
        ],
        Client::Cursor => vec![
            mcp_json(&root.join(".cursor/mcp.json"), force),
            agents_md(&root.join("AGENTS.md"), force),
        ],
    };
    let (changes, refusals): (Vec<_>, Vec<_>) = plans.into_iter().partition(Result::is_ok);
    let changes: Vec<Change> = changes.into_iter().filter_map(Result::ok).collect();
    let refusals: Vec<Refusal> = refusals.into_iter().filter_map(Result::err).collect();
    if !refusals.is_empty() {
        let msg = refusals
            .iter()
            .map(|r| format!("{}: {}", r.path.display(), r.why))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(Failure::new(
            "conflict",
            exit::CONFLICT,
            format!("nothing written: {msg}"),
        ));
    }
    let action = |c: &Change| match &c.before {
        None => "create",
        Some(b) if *b == c.after => "unchanged",
        Some(_) => "update",
    };
    if print {
        let j = json!({
            "files": changes.iter().map(|c| json!({
                "path": c.path, "action": action(c), "what": c.what, "content": c.after,
            })).collect::<Vec<_>>(),
        });
        ctx.print(j, || {
            changes
                .iter()
                .map(|c| {
                    format!(
                        "# {} ({}: {})\n{}",
                        c.path.display(),
                        action(c),
                        c.what,
                        c.after.trim_end()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n\n")
        });
        return Ok(());
    }
    for c in &changes {
        if action(c) != "unchanged" {
            write_atomically(&c.path, &c.after)?;
        }
    }
    let j = json!({
        "files": changes.iter().map(|c| json!({"path": c.path, "action": action(c), "what": c.what})).collect::<Vec<_>>(),
    });
    ctx.print(j, || {
        let mut s: Vec<String> = changes
            .iter()
            .map(|c| format!("{:<9} {}  ({})", action(c), c.path.display(), c.what))
            .collect();
        s.push(format!(
            "{} now runs `got prime` at session start and has got's tools through `got mcp` (got must be on PATH).",
            match client {
                Client::Claude => "Claude Code",
                Client::Codex => "Codex",
                Client::Cursor => "Cursor",
            }
        ));
        if client == Client::Cursor {
            s.push("Cursor has no dependable session-start hook: AGENTS.md tells the agent to run `got prime`.".into());
        }
        s.join("\n")
    });
    Ok(())
}

fn read(path: &Path) -> Result<Option<String>, Refusal> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Refusal {
            path: path.into(),
            why: format!("cannot be read: {e}"),
        }),
    }
}

/// The file as a JSON object (`{}` when it does not exist).
fn read_json(path: &Path) -> Result<(Option<String>, Map<String, Value>), Refusal> {
    let before = read(path)?;
    let obj = match &before {
        None => Map::new(),
        Some(s) if s.trim().is_empty() => Map::new(),
        Some(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(o)) => o,
            Ok(_) => {
                return Err(Refusal {
                    path: path.into(),
                    why: "is not a JSON object; left alone".into(),
                })
            }
            Err(e) => {
                return Err(Refusal {
                    path: path.into(),
                    why: format!("is not valid JSON ({e}); left alone"),
                })
            }
        },
    };
    Ok((before, obj))
}

fn pretty(o: Map<String, Value>) -> String {
    let mut s = serde_json::to_string_pretty(&Value::Object(o)).expect("JSON values serialize");
    s.push('\n');
    s
}

/// An object member, created when absent; a refusal when it is not an object.
fn object_at<'a>(
    o: &'a mut Map<String, Value>,
    key: &str,
    path: &Path,
) -> Result<&'a mut Map<String, Value>, Refusal> {
    match o.entry(key).or_insert_with(|| json!({})) {
        Value::Object(m) => Ok(m),
        _ => Err(Refusal {
            path: path.into(),
            why: format!("\"{key}\" is not a JSON object; left alone"),
        }),
    }
}

/// `{"mcpServers": {"got": {"command": "got", "args": ["mcp"]}}}` merged in
/// (Claude Code's `.mcp.json`, Cursor's `.cursor/mcp.json`).
fn mcp_json(path: &Path, force: bool) -> Planned {
    let (before, mut o) = read_json(path)?;
    let ours = json!({"command": GOT, "args": ["mcp"]});
    let servers = object_at(&mut o, "mcpServers", path)?;
    match servers.get("got") {
        Some(v) if *v == ours => {}
        Some(v) if !force => {
            return Err(Refusal {
                path: path.into(),
                why: format!("mcpServers.got is already {v}; --force replaces it"),
            })
        }
        _ => {
            servers.insert("got".into(), ours);
        }
    }
    Ok(Change {
        path: path.into(),
        before,
        after: pretty(o),
        what: "registers got mcp",
    })
}

/// A `SessionStart` hook running `got prime`, added beside the hooks already
/// there (Claude Code's `.claude/settings.json`, Codex's `.codex/hooks.json`:
/// the same shape). Its output goes before the model.
fn session_hook(path: &Path, matcher: &str) -> Planned {
    let (before, mut o) = read_json(path)?;
    let hooks = object_at(&mut o, "hooks", path)?;
    let starts = hooks.entry("SessionStart").or_insert_with(|| json!([]));
    let Value::Array(starts) = starts else {
        return Err(Refusal {
            path: path.into(),
            why: "hooks.SessionStart is not a list; left alone".into(),
        });
    };
    let primes = |e: &Value| {
        e["hooks"]
            .as_array()
            .is_some_and(|hs| hs.iter().any(|h| h["command"] == "got prime"))
    };
    if !starts.iter().any(primes) {
        starts.push(json!({
            "matcher": matcher,
            "hooks": [{"type": "command", "command": "got prime", "timeout": 10}],
        }));
    }
    Ok(Change {
        path: path.into(),
        before,
        after: pretty(o),
        what: "runs got prime at session start",
    })
}

const CODEX_TABLE: &str = "[mcp_servers.got]\ncommand = \"got\"\nargs = [\"mcp\"]\n";

/// `[mcp_servers.got]` in Codex's `.codex/config.toml` (read by Codex in a
/// trusted project). The file is edited as text: the table is appended, or
/// replaced up to the next table with `--force`; the rest stays byte for byte.
fn codex_toml(path: &Path, force: bool) -> Planned {
    let before = read(path)?;
    let text = before.clone().unwrap_or_default();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let header = |l: &str| l.trim() == "[mcp_servers.got]";
    let after = match lines.iter().position(|l| header(l)) {
        None => {
            if text.contains("mcp_servers.got") || has_inline_got(&lines) {
                return Err(Refusal {
                    path: path.into(),
                    why: "defines mcp_servers.got in a form got setup does not edit; left alone"
                        .into(),
                });
            }
            let mut s = text.clone();
            if !s.is_empty() && !s.ends_with('\n') {
                s.push('\n');
            }
            if !s.is_empty() {
                s.push('\n');
            }
            s.push_str(CODEX_TABLE);
            s
        }
        Some(at) => {
            let end = lines[at + 1..]
                .iter()
                .position(|l| l.trim_start().starts_with('['))
                .map_or(lines.len(), |p| at + 1 + p);
            let table: String = lines[at..end].concat();
            let normalize = |s: &str| {
                s.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            if normalize(&table) == normalize(CODEX_TABLE) {
                text.clone()
            } else if !force {
                return Err(Refusal {
                    path: path.into(),
                    why: "[mcp_servers.got] is already set otherwise; --force replaces it".into(),
                });
            } else {
                let mut s = lines[..at].concat();
                s.push_str(CODEX_TABLE);
                let rest = lines[end..].concat();
                if !rest.is_empty() {
                    s.push('\n');
                    s.push_str(&rest);
                }
                s
            }
        }
    };
    Ok(Change {
        path: path.into(),
        before,
        after,
        what: "registers got mcp",
    })
}

/// `got = …` directly under `[mcp_servers]`.
fn has_inline_got(lines: &[&str]) -> bool {
    let mut in_servers = false;
    for l in lines {
        let t = l.trim();
        if t.starts_with('[') {
            in_servers = t == "[mcp_servers]";
        } else if in_servers && t.split('=').next().map(str::trim) == Some("got") {
            return true;
        }
    }
    false
}

const BEGIN: &str =
    "<!-- got:begin (written by `got setup`; `got setup --force` rewrites this block) -->";
const END: &str = "<!-- got:end -->";

/// The block of AGENTS.md that teaches the loop.
fn agents_block() -> String {
    let mut s = format!(
        "{BEGIN}\n## Work tracking: got\n\nThis project tracks its work in got (tasks, claims, handoffs, decisions). At the start of a session run `got prime`: your claimed tasks, handoffs waiting for you, and what is ready. Every write is on disk when the command returns. The loop:\n\n"
    );
    for (c, w) in got::board::LOOP {
        s.push_str(&format!("- `{c}`: {w}\n"));
    }
    s.push_str("\nSet GOT_AGENT to your name. With MCP, the same operations are the `got` server's tools (next_task, add_note, complete_task, block_task, handoff_initiate, …).\n");
    s.push_str(END);
    s.push('\n');
    s
}

/// The block in AGENTS.md, appended, or replaced with `--force` when it was
/// edited (only what is between the markers).
fn agents_md(path: &Path, force: bool) -> Planned {
    let before = read(path)?;
    let text = before.clone().unwrap_or_default();
    let block = agents_block();
    let after = match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if e > b => {
            let e = e + END.len();
            let e = if text[e..].starts_with('\n') {
                e + 1
            } else {
                e
            };
            if text[b..e] == block {
                text.clone()
            } else if !force {
                return Err(Refusal {
                    path: path.into(),
                    why: "got's block was edited; --force rewrites it".into(),
                });
            } else {
                format!("{}{block}{}", &text[..b], &text[e..])
            }
        }
        (None, None) => {
            let mut s = text.clone();
            if !s.is_empty() && !s.ends_with('\n') {
                s.push('\n');
            }
            if !s.is_empty() {
                s.push('\n');
            }
            s.push_str(&block);
            s
        }
        _ => {
            return Err(Refusal {
                path: path.into(),
                why: "has one of got's markers without the other; left alone".into(),
            })
        }
    };
    Ok(Change {
        path: path.into(),
        before,
        after,
        what: "the agent loop",
    })
}

/// Writes `text` to `path` through a temporary file renamed over it.
fn write_atomically(path: &Path, text: &str) -> CmdResult {
    let fail = |e: std::io::Error| {
        Failure::new(
            "io",
            exit::ERROR,
            format!("writing {}: {e}", path.display()),
        )
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    // The file keeps its mode (a temporary file is created 0600).
    if let Ok(m) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), m.permissions()).map_err(fail)?;
    } else {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644));
    }
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}
