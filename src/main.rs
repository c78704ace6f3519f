//! The `got` command-line tool: parses flags, calls the library, prints.

// The system allocator: mimalloc (which got-server and the harness use) starts
// each process about 0.2 ms later, more than a CLI command gains from it
// (docs/benchmarks.md).

fn main() {
    // Like other Unix tools: output piped into `head` ends the process quietly
    // when the reader goes away, instead of failing on a write.
    // SAFETY: setting a signal's disposition to the default before any thread
    // starts has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Runs are read with pread, not through maps: a command reads a few blocks
    // and exits, and mapping its runs cost it more than it saved
    // (docs/format.md, "Reading runs through a map"; got-server maps).
    std::process::exit(got_cli::run());
}

#[path = "cli/mod.rs"]
mod got_cli;
