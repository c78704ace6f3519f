//! The `got` command-line tool: parses flags, calls the library, prints.

// See Cargo.toml: measured, not assumed (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // Like other Unix tools: output piped into `head` ends the process quietly
    // when the reader goes away, instead of failing on a write.
    // SAFETY: setting a signal's disposition to the default before any thread
    // starts has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(got_cli::run());
}

#[path = "cli/mod.rs"]
mod got_cli;
