//! got: an embedded, write-ahead-logged, transactional graph store.
//!
//! ```
//! use got::{Options, Store, Value};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(
//!     dir.path().join(".got"),
//!     Options { create_if_missing: true, ..Options::default() },
//! )
//! .unwrap();
//!
//! // One transaction: two entities and an edge, all or nothing, durable on return.
//! let (a, b) = store
//!     .transaction(|tx| {
//!         let a = tx.create("task", got::props([("title", Value::from("design"))]))?;
//!         let b = tx.create("task", got::props([("title", Value::from("build"))]))?;
//!         tx.add_edge(&b.id, "depends_on", &a.id, Default::default())?;
//!         Ok((a.id, b.id))
//!     })
//!     .unwrap();
//!
//! let mut tx = store.begin().unwrap();
//! let deps = tx.edges(&b, got::Direction::Out, Some("depends_on")).unwrap();
//! assert_eq!(deps[0].to, a);
//! ```

/// The id prefix of each of got's own kinds (`T-` for tasks, …): every entity of
/// such a kind has an id starting with it. Created ids get it; `entity put` and
/// `import` refuse ids without it, so id-ordered pages of one kind can walk
/// the ids under it (see [`query::Query::id_prefix`]).
pub fn id_prefix_of(kind: &str) -> Option<&'static str> {
    match kind {
        tasks::KIND => Some(tasks::ID_PREFIX),
        handoffs::KIND => Some(handoffs::ID_PREFIX),
        decisions::KIND => Some(decisions::ID_PREFIX),
        plans::SPRINT => Some("S-"),
        plans::EPIC => Some("E-"),
        _ => None,
    }
}

/// The prefix every id of `kind` starts with, for walking them in id order:
/// [`id_prefix_of`], except that epics (`E-…`, and `EPIC-…` as the GoT system
/// named them, kept by its import) share `E`.
pub fn scan_prefix_of(kind: &str) -> Option<&'static str> {
    match kind {
        plans::EPIC => Some("E"),
        k => id_prefix_of(k),
    }
}

/// For the crash tests of multi-step commands (sync, migrate): with
/// `GOT_FAILPOINT=<area>:<step>` set, the process kills itself (SIGKILL) when
/// it reaches that step, as a crash would stop it there.
#[doc(hidden)]
pub fn failpoint(area: &str, step: &str) {
    let hit = std::env::var("GOT_FAILPOINT").is_ok_and(|v| v.split_once(':') == Some((area, step)));
    if hit {
        // SAFETY: sends a signal to this process; no memory is touched.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Refuses an id that lacks its kind's prefix (see [`id_prefix_of`]; an epic
/// may also be `EPIC-…`, as the GoT system named epics).
pub fn check_kind_id(kind: &str, id: &str) -> Result<()> {
    match id_prefix_of(kind) {
        Some(_) if kind == plans::EPIC && id.starts_with("EPIC-") => Ok(()),
        Some(p) if !id.starts_with(p) => Err(Error::Invalid(format!(
            "a {kind} id starts with {p} (got {id})"
        ))),
        _ => Ok(()),
    }
}

pub use versioned_store::{
    init, props, CheckpointInfo, CommitInfo, Direction, Durability, Edge, Entity, Error,
    HistoryEntry, Options, Props, Result, Transaction, Value,
};

// The layers, bottom up: the store facade (`store`, with `locate`), the domain
// (`domain`: tasks, handoffs, decisions, plans, validate), queries and indexes
// (`queries`: index, query, ready, graph, board), JSON values (`json`), then what
// carries the store beyond one process: `transfer` (export, import, foreign
// formats), `sync` (git) and `server` (HTTP, MCP). The domain's and the
// queries' modules are re-exported at the root, where they have always been.
mod domain;
pub mod json;
mod queries;
#[cfg(feature = "server")]
pub mod server;
mod store;
pub mod sync;
pub mod transfer;

pub use domain::{decisions, handoffs, plans, tasks, validate};
pub use queries::{board, graph, index, query, ready};
pub use store::locate;

pub use cache::CacheStats;
pub use store::{verify, verify_indexes, verify_with_progress, EntityCache, Store};

/// The store internals (formats, runs, manifest).
pub use versioned_store;
/// The write-ahead log and the file-system seam (`Vfs`, `SimVfs`) for tests and tools.
pub use wal;
