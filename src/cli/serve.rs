//! `got serve`.

use super::commands::Ctx;
use super::{exit, CmdResult, Failure};
use got::server::http::{self, ServeError, ServeOptions};
use std::io::Write;
use std::path::PathBuf;

pub fn serve(ctx: &Ctx, listen: std::net::SocketAddr, token_file: Option<PathBuf>) -> CmdResult {
    let token = match token_file {
        Some(f) => {
            let t = std::fs::read_to_string(&f).map_err(|e| {
                Failure::new("io", exit::ERROR, format!("reading {}: {e}", f.display()))
            })?;
            Some(t.trim().to_string())
        }
        None => std::env::var("GOT_TOKEN")
            .ok()
            .map(|t| t.trim().to_string()),
    }
    .filter(|t| !t.is_empty());
    let store = ctx.open()?;
    let mut opts = ServeOptions::new(listen, ctx.agent());
    opts.token = token;
    http::serve(store, opts, |addr| {
        println!("listening on http://{addr}");
        let _ = std::io::stdout().flush();
    })
    .map_err(|e| match e {
        ServeError::TokenNeeded(_) => Failure::new("usage", exit::USAGE, e.to_string()),
        ServeError::Io(_) => Failure::new("io", exit::ERROR, format!("serving: {e}")),
    })
}
