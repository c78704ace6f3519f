//! `got-server`: the servers of got, in their own binary so that the `got`
//! binary carries no runtime, HTTP or MCP code. `got serve` finds the store
//! and the agent, then runs `got-server serve --store DIR --agent NAME
//! --listen ADDR [--token-file FILE] [--max-connections N]
//! [--header-timeout-ms MS]` in its place; `got mcp` runs `got-server mcp
//! --store DIR --agent NAME`. Run it directly only as those would.

use got::server::http::{self, ServeError, ServeOptions};

// A long-lived process: mimalloc (see Cargo.toml and docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

fn fail(code: i32, msg: impl std::fmt::Display) -> ! {
    eprintln!("got: {msg}");
    std::process::exit(code);
}

/// `--name value` pairs, each name one of `known`; `needed` must all be there.
fn flags(mode: &str, args: &[String], known: &[&str], needed: &[&str]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if !known.contains(&a.as_str()) {
            fail(2, format!("unknown argument {a}"));
        }
        let v = it
            .next()
            .unwrap_or_else(|| fail(2, format!("{a} needs a value")));
        out.insert(a.clone(), v.clone());
    }
    if needed.iter().any(|n| !out.contains_key(*n)) {
        fail(2, format!("got-server {mode} needs {}", needed.join(", ")));
    }
    out
}

/// A positive number given as `flag`.
fn positive(flag: &str, v: &str) -> u64 {
    v.parse()
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or_else(|| fail(2, format!("{flag} {v:?}: not a number above zero")))
}

/// The store at `dir`, opened for `agent` (exit 1 if it cannot be).
fn open(dir: &Path, agent: &str) -> got::Store {
    let options = got::Options {
        actor: Some(agent.to_string()),
        // A long-lived process: requests do not wait for checkpoints.
        background_checkpoints: true,
        ..got::Options::default()
    };
    got::Store::open(dir, options)
        .unwrap_or_else(|e| fail(1, format!("opening {}: {e}", dir.display())))
}

fn main() {
    // A long-lived process: runs and DURABLE read through maps, with the
    // SIGBUS handler that turns a page that cannot be read into one line and
    // exit 7 (crates/wal/src/mapped.rs). If it cannot be installed, pread.
    let _ = got::wal::mapped::enable_with_sigbus_handler();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("mcp") => mcp(&args[1..]),
        _ => fail(
            2,
            "got-server is run by `got serve` and `got mcp`: see `got serve --help`",
        ),
    }
}

fn serve(args: &[String]) -> ! {
    let f = flags(
        "serve",
        args,
        &[
            "--store",
            "--agent",
            "--listen",
            "--token-file",
            "--max-connections",
            "--header-timeout-ms",
        ],
        &["--store", "--agent", "--listen"],
    );
    let listen: std::net::SocketAddr = f["--listen"]
        .parse()
        .unwrap_or_else(|_| fail(2, format!("--listen {:?}: not ADDR:PORT", f["--listen"])));
    let token = match f.get("--token-file") {
        Some(file) => Some(
            std::fs::read_to_string(file)
                .unwrap_or_else(|e| fail(1, format!("reading {file}: {e}")))
                .trim()
                .to_string(),
        ),
        None => std::env::var("GOT_TOKEN")
            .ok()
            .map(|t| t.trim().to_string()),
    }
    .filter(|t| !t.is_empty());
    let mut opts = ServeOptions::new(listen, f["--agent"].clone());
    opts.token = token;
    if let Some(v) = f.get("--max-connections") {
        opts.max_connections = positive("--max-connections", v) as usize;
    }
    if let Some(v) = f.get("--header-timeout-ms") {
        opts.header_timeout = std::time::Duration::from_millis(positive("--header-timeout-ms", v));
    }
    // Refused before the store is opened (no lock taken, nothing replayed).
    if opts.token.is_none() && !listen.ip().is_loopback() {
        fail(2, ServeError::TokenNeeded(listen));
    }
    let store = open(&PathBuf::from(&f["--store"]), &opts.agent);
    let r = http::serve(store, opts, |addr| {
        println!("listening on http://{addr}");
        let _ = std::io::stdout().flush();
    });
    match r {
        Ok(()) => std::process::exit(0),
        Err(e @ ServeError::TokenNeeded(_)) => fail(2, e),
        Err(e) => fail(1, format!("serving: {e}")),
    }
}

/// `got-server mcp --store DIR --agent NAME`: MCP over stdin and stdout.
/// Errors go to stderr: stdout carries protocol messages only.
fn mcp(args: &[String]) -> ! {
    let f = flags(
        "mcp",
        args,
        &["--store", "--agent"],
        &["--store", "--agent"],
    );
    let agent = f["--agent"].clone();
    let store = open(&PathBuf::from(&f["--store"]), &agent);
    match got::server::mcp::run(store, agent) {
        Ok(()) => std::process::exit(0),
        Err(e) => fail(1, format!("mcp: {e}")),
    }
}
