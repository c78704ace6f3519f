//! The `got` command-line tool: parses flags, calls the library, prints.

fn main() {
    std::process::exit(got_cli::run());
}

#[path = "cli/mod.rs"]
mod got_cli;
