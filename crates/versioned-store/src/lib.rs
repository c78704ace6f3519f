//! got's versioned property graph: entities and edges with every committed version
//! kept, transactions validated under the writer lock, checkpoints into immutable
//! runs. Built on the `wal` crate; every file operation goes through its `Vfs`.

pub mod backup;
pub mod clock;
pub mod error;
pub mod maintenance;
pub mod manifest;
pub mod memtable;
pub mod model;
pub mod options;
pub mod record;
pub mod run;
pub mod state;
pub mod store;
pub mod time;
pub mod txn;
pub mod util;
pub mod value;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Result};
pub use maintenance::{
    repair, verify, verify_with, verify_with_progress, DamageReport, Progress, RepairReport,
    VerifyReport,
};
pub use model::{Edge, Entity};
pub use store::{
    init, init_with, ChangeListener, CheckpointInfo, CommitInfo, CommitStats, ContentStats,
    Deriver, DiskStats, HistoryEntry, KeyChanges, Options, StateView, Store,
};
pub use txn::{Direction, Transaction};
pub use value::{props, Props, Value};
pub use wal::Durability;
