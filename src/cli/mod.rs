//! The CLI: flags in, library calls, text or JSON out, one exit code per outcome.

mod args;
mod board;
mod commands;
mod ctx;
mod demo;
mod entities;
mod progress;
mod render;
#[cfg(feature = "server")]
mod serve;
mod setup;
mod store;
mod sync;
mod tasks;
mod transfer;
mod work;

use args::Cli;
use clap::Parser;
use got::Error;
use serde_json::json;

/// Exit codes (the table lives in docs/cli.md).
pub mod exit {
    pub const OK: i32 = 0;
    pub const ERROR: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const NOT_FOUND: i32 = 3;
    pub const CONFLICT: i32 = 4;
    pub const INVALID: i32 = 5;
    pub const LOCKED: i32 = 6;
    pub const CORRUPT: i32 = 7;
    pub const OUTCOME_UNKNOWN: i32 = 8;
    // got sync's outcomes.
    pub const NO_GIT: i32 = 10;
    pub const NOT_A_REPOSITORY: i32 = 11;
    pub const NO_REMOTE: i32 = 12;
    pub const PUSH_REFUSED: i32 = 13;
    pub const MERGE_CONFLICT: i32 = 14;
    pub const NO_BRANCH: i32 = 15;
}

/// A command's failure: a stable code name, a one-line message, an exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
    pub exit: i32,
    /// The command already printed its (JSON) report; only the exit code is left.
    pub reported: bool,
}

impl Failure {
    pub fn new(code: &'static str, exit: i32, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
            exit,
            reported: false,
        }
    }

    /// A failure whose report is already on stdout (so `--json` output stays one
    /// document).
    pub fn reported(code: &'static str, exit: i32, message: impl Into<String>) -> Self {
        Failure {
            reported: true,
            ..Failure::new(code, exit, message)
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        use got::wal::Error as W;
        let (code, exit) = match &e {
            _ if e.is_outcome_unknown() => ("outcome_unknown", exit::OUTCOME_UNKNOWN),
            Error::NotFound(_) | Error::NotAStore { .. } => ("not_found", exit::NOT_FOUND),
            Error::Conflict(_) => ("conflict", exit::CONFLICT),
            Error::Invalid(_) | Error::AlreadyExists(_) | Error::ReadOnly => {
                ("invalid", exit::INVALID)
            }
            Error::Wal(W::Locked { .. }) => ("locked", exit::LOCKED),
            Error::Wal(W::FrameTooLarge { .. }) => ("invalid", exit::INVALID),
            Error::Wal(W::TooNew { .. }) => ("too_new", exit::CORRUPT),
            _ if e.is_corruption() => ("corrupt", exit::CORRUPT),
            _ => ("io", exit::ERROR),
        };
        Failure::new(code, exit, e.to_string())
    }
}

pub type CmdResult = Result<(), Failure>;

pub fn run() -> i32 {
    // No panic or backtrace reaches the user: one line and a distinct exit code.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("got: internal error: {info}; please report it");
        std::process::exit(exit::ERROR);
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if e.use_stderr() && std::env::args_os().any(|a| a == "--json") => {
            // With --json even a usage error is one JSON object on stdout: the
            // error without its usage lines, on one line.
            let msg = e.to_string();
            let what = msg.split("\n\nUsage:").next().unwrap_or(&msg);
            let one_line = what
                .trim_start_matches("error: ")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            println!(
                "{}",
                json!({"error": {"code": "usage", "message": one_line}})
            );
            return exit::USAGE;
        }
        Err(e) => {
            let _ = e.print();
            // --help and --version "fail" to parse but are successes.
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    let json_mode = cli.json;
    match commands::dispatch(cli) {
        Ok(()) => exit::OK,
        Err(f) => {
            if f.reported && json_mode {
                return f.exit;
            }
            if json_mode {
                println!(
                    "{}",
                    json!({"error": {"code": f.code, "message": f.message}})
                );
            } else {
                eprintln!("got: {}", f.message);
            }
            f.exit
        }
    }
}
