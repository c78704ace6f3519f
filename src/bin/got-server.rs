//! `got-server`: the servers of got, in their own binary so that the `got`
//! binary carries no runtime, HTTP or MCP code. `got serve` finds the store
//! and the agent, then runs `got-server serve --store DIR --agent NAME
//! --listen ADDR [--token-file FILE]` in its place; `got mcp` runs `got-server
//! mcp --store DIR --agent NAME`. Run it directly only as those would.

use got::server::http::{self, ServeError, ServeOptions};
use std::io::Write;
use std::path::PathBuf;

fn fail(code: i32, msg: impl std::fmt::Display) -> ! {
    eprintln!("got: {msg}");
    std::process::exit(code);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => {}
        Some("mcp") => mcp(&args[1..]),
        _ => fail(
            2,
            "got-server is run by `got serve` and `got mcp`: see `got serve --help`",
        ),
    }
    let (mut store, mut agent, mut listen, mut token_file) = (None, None, None, None);
    let (mut max_connections, mut header_timeout) = (None, None);
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        let v = it
            .next()
            .unwrap_or_else(|| fail(2, format!("{a} needs a value")));
        match a.as_str() {
            "--store" => store = Some(PathBuf::from(v)),
            "--agent" => agent = Some(v.clone()),
            "--listen" => {
                listen = Some(
                    v.parse()
                        .unwrap_or_else(|_| fail(2, format!("--listen {v:?}: not ADDR:PORT"))),
                )
            }
            "--token-file" => token_file = Some(PathBuf::from(v)),
            "--max-connections" => {
                max_connections = Some(
                    v.parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .unwrap_or_else(|| fail(2, format!("--max-connections {v:?}"))),
                )
            }
            "--header-timeout-ms" => {
                header_timeout = Some(std::time::Duration::from_millis(
                    v.parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .unwrap_or_else(|| fail(2, format!("--header-timeout-ms {v:?}"))),
                ))
            }
            _ => fail(2, format!("unknown argument {a}")),
        }
    }
    let (Some(store), Some(agent), Some(listen)) = (store, agent, listen) else {
        fail(2, "got-server serve needs --store, --agent and --listen");
    };
    let token = match token_file {
        Some(f) => Some(
            std::fs::read_to_string(&f)
                .unwrap_or_else(|e| fail(1, format!("reading {}: {e}", f.display())))
                .trim()
                .to_string(),
        ),
        None => std::env::var("GOT_TOKEN")
            .ok()
            .map(|t| t.trim().to_string()),
    }
    .filter(|t| !t.is_empty());
    let mut opts = ServeOptions::new(listen, agent);
    opts.token = token;
    if let Some(n) = max_connections {
        opts.max_connections = n;
    }
    if let Some(d) = header_timeout {
        opts.header_timeout = d;
    }
    // Refused before the store is opened (no lock taken, nothing replayed).
    if opts.token.is_none() && !listen.ip().is_loopback() {
        fail(2, ServeError::TokenNeeded(listen));
    }
    let options = got::Options {
        actor: Some(opts.agent.clone()),
        ..got::Options::default()
    };
    let store = got::Store::open(&store, options)
        .unwrap_or_else(|e| fail(1, format!("opening {}: {e}", store.display())));
    let r = http::serve(store, opts, |addr| {
        println!("listening on http://{addr}");
        let _ = std::io::stdout().flush();
    });
    match r {
        Ok(()) => {}
        Err(e @ ServeError::TokenNeeded(_)) => fail(2, e),
        Err(e) => fail(1, format!("serving: {e}")),
    }
}

/// `got-server mcp --store DIR --agent NAME`: MCP over stdin and stdout.
/// Errors go to stderr: stdout carries protocol messages only.
fn mcp(args: &[String]) -> ! {
    let (mut store, mut agent) = (None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it
            .next()
            .unwrap_or_else(|| fail(2, format!("{a} needs a value")));
        match a.as_str() {
            "--store" => store = Some(PathBuf::from(v)),
            "--agent" => agent = Some(v.clone()),
            _ => fail(2, format!("unknown argument {a}")),
        }
    }
    let (Some(store), Some(agent)) = (store, agent) else {
        fail(2, "got-server mcp needs --store and --agent");
    };
    let options = got::Options {
        actor: Some(agent.clone()),
        ..got::Options::default()
    };
    let store = got::Store::open(&store, options)
        .unwrap_or_else(|e| fail(1, format!("opening {}: {e}", store.display())));
    match got::server::mcp::run(store, agent) {
        Ok(()) => std::process::exit(0),
        Err(e) => fail(1, format!("mcp: {e}")),
    }
}
