//! `got serve` and `got mcp`: find the store and the agent as every command
//! does, then run `got-server` (installed beside `got`) in this process's place, so that the
//! `got` binary carries no server code (docs/server.md, "Two binaries").

use super::ctx::Ctx;
use super::{exit, CmdResult, Failure};
use std::path::PathBuf;

pub fn serve(
    ctx: &Ctx,
    listen: std::net::SocketAddr,
    token_file: Option<PathBuf>,
    max_connections: usize,
    header_timeout: &str,
) -> CmdResult {
    let header_timeout = got::tasks::parse_duration(header_timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Failure::new(
                "invalid",
                exit::USAGE,
                format!(
                    "--header-timeout {header_timeout:?}: not a duration above zero (like 30s, 2m)"
                ),
            )
        })?;
    if max_connections == 0 {
        return Err(Failure::new(
            "invalid",
            exit::USAGE,
            "--max-connections must be at least 1",
        ));
    }
    let mut args = vec![
        "--listen".to_string(),
        listen.to_string(),
        "--max-connections".to_string(),
        max_connections.to_string(),
        "--header-timeout-ms".to_string(),
        header_timeout.as_millis().to_string(),
    ];
    if let Some(f) = token_file {
        args.push("--token-file".into());
        args.push(f.to_string_lossy().into_owned());
    }
    run_server(ctx, "serve", &args)
}

/// `got mcp`: got's tools over MCP on stdin and stdout, until stdin closes.
pub fn mcp(ctx: &Ctx) -> CmdResult {
    run_server(ctx, "mcp", &[])
}

/// Runs `got-server MODE --store DIR --agent NAME ARGS…` in this process's
/// place, once the store is known to be one.
fn run_server(ctx: &Ctx, mode: &str, args: &[String]) -> CmdResult {
    use std::os::unix::process::CommandExt;
    let located = ctx.locate()?;
    // What opening the store would refuse (a GoT JSON store, no store at
    // all), said before the server starts; got-server opens it once.
    if got::locate::holds_got_json(&located.dir) {
        return Err(super::ctx::got_json_found(&located.dir));
    }
    if !located.dir.join("CURRENT").is_file() {
        return Err(Failure::new(
            "not_found",
            exit::NOT_FOUND,
            format!(
                "{} is not a got store (run `got init` to create one)",
                located.dir.display()
            ),
        ));
    }
    let dir = std::fs::canonicalize(&located.dir).unwrap_or(located.dir);
    let me = std::env::current_exe()
        .map_err(|e| Failure::new("io", exit::ERROR, format!("finding got itself: {e}")))?;
    let server = me.with_file_name("got-server");
    let mut cmd = std::process::Command::new(&server);
    cmd.arg(mode)
        .arg("--store")
        .arg(&dir)
        .arg("--agent")
        .arg(ctx.agent())
        .args(args);
    // Only returns when the exec failed.
    let e = cmd.exec();
    Err(Failure::new(
        "io",
        exit::ERROR,
        format!(
            "got {mode} runs {}, which could not be started: {e} (it is built and installed with got: cargo install --path . installs both)",
            server.display()
        ),
    ))
}
