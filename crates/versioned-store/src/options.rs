//! How a store is opened: its options and their defaults.

use crate::store::Deriver;
use std::sync::Arc;
use std::time::Duration;
use wal::Durability;

/// How a store is opened.
#[derive(Clone, Debug)]
pub struct Options {
    pub durability: Durability,
    /// How long a writer waits for the lock (default 10 s, `GOT_LOCK_TIMEOUT`).
    pub lock_timeout: Duration,
    pub segment_size_bytes: u64,
    pub max_frame_bytes: usize,
    /// A checkpoint runs once the WAL tail since the last one passes this size.
    pub checkpoint_wal_bytes: u64,
    /// … or once it holds more than this many transactions (default 4096).
    /// Every process that opens the store replays the tail, and one that reads an
    /// index derives the tail's index entries (about 5–10 µs a transaction): a
    /// lower bound suits stores opened by many short-lived processes (the CLI
    /// uses 256), a higher one a long-lived process with many small commits
    /// (each checkpoint costs a few syncs).
    pub checkpoint_transactions: u64,
    /// A hard bound on live runs (compaction is size-tiered and keeps about
    /// log2(store / delta) runs; beyond this many it merges the newest to fit).
    pub max_runs: usize,
    /// `Store::transaction` re-runs its closure this many times on `Conflict`.
    pub max_retries: u32,
    /// The actor recorded on every write (default: `GOT_AGENT`, else the user name).
    pub actor: Option<String>,
    /// Create the store if the directory holds none.
    pub create_if_missing: bool,
    /// No lock, never writes or truncates; sees durable data.
    pub read_only: bool,
    /// Checkpoint automatically when the WAL tail passes `checkpoint_wal_bytes`.
    pub auto_checkpoint: bool,
    /// Automatic checkpoints run on a thread of their own, off the committing
    /// thread: for long-lived processes (a server, an application holding the
    /// store open), whose commits then go on while a checkpoint writes its run.
    /// Once the tail grows past four times the bounds above, committers
    /// checkpoint themselves again (back-pressure). Default off: a short-lived
    /// process (the CLI) would exit before the thread did its work, and a
    /// checkpoint on the committing thread keeps every I/O in one order (what
    /// the simulated-disk tests replay by seed).
    pub background_checkpoints: bool,
    /// Maintains derived entries (indexes) as entities change; `None`: none.
    pub deriver: Option<Arc<dyn Deriver>>,
    /// The wall clock that transactions stamp their records and entities with
    /// and that the layers above read for leases and expiry ([`Store::now_ms`]);
    /// `None`: the system clock. Tests set a [`crate::ManualClock`] to move time
    /// instead of sleeping. (Handles that `Store::open` shares in one process
    /// share the first opener's clock.)
    pub clock: Option<Arc<dyn crate::Clock>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Immediate,
            lock_timeout: wal::lock::lock_timeout_from_env(),
            segment_size_bytes: wal::segment::DEFAULT_SEGMENT_BYTES,
            max_frame_bytes: wal::frame::DEFAULT_MAX_FRAME_BYTES,
            checkpoint_wal_bytes: 1 << 20,
            checkpoint_transactions: 4096,
            max_runs: 16,
            max_retries: 10,
            actor: None,
            create_if_missing: false,
            read_only: false,
            auto_checkpoint: true,
            background_checkpoints: false,
            deriver: None,
            clock: None,
        }
    }
}

/// The default actor: `GOT_AGENT`, else the user name, else "unknown".
pub fn default_actor() -> String {
    for var in ["GOT_AGENT", "USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var) {
            if !v.trim().is_empty() {
                return v.trim().to_string();
            }
        }
    }
    "unknown".into()
}
