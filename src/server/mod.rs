//! The server boundary (docs/server.md): `got serve`, a JSON API over HTTP for
//! agents that do not share a file system with the store. The rule every
//! route keeps: **a success status only after the commit's `fdatasync`
//! returned** — the handlers call the same library functions as the CLI, which
//! return once their transaction is durable, and answer only then.
//!
//! The tokio runtime is built here, inside `got serve`, so every other command
//! starts as fast as before.

mod api;
pub mod http;
pub mod mcp;
mod mcp_in_process;
mod mcp_tools;
mod ops;
mod tasks;
mod work;
