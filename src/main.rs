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
    // Runs are read through maps, with a SIGBUS handler that turns a page that
    // cannot be read into one line and exit 7 (crates/wal/src/mapped.rs). If
    // the handler cannot be installed, runs are read with pread.
    let _ = got::wal::mapped::enable_with_sigbus_handler();
    std::process::exit(got_cli::run());
}

#[path = "cli/mod.rs"]
mod got_cli;
