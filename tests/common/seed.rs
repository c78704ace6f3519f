//! Seeds of randomized tests: `GOT_SEED` when set (to replay a failure), else a
//! fresh one. Either way it is printed, so every failure can be replayed.

/// The seed for `what`, printed with the line that replays it.
pub fn seed(what: &str) -> u64 {
    let seed = match std::env::var("GOT_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("GOT_SEED must be a u64, got {s:?}")),
        Err(_) => fresh(),
    };
    eprintln!("{what}: seed {seed} (replay with GOT_SEED={seed})");
    seed
}

/// A seed from the clock and the process id (not a test input: only printed).
pub fn fresh() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    t ^ (std::process::id() as u64).rotate_left(32)
}
