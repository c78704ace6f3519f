//! got's write-ahead log.
//!
//! A store's log is a directory of preallocated segments `wal/<first-lsn>.wal`, each a
//! header followed by checksummed frames; one frame holds one group-committed batch of
//! transactions, one LSN per transaction. See `docs/format.md` for the bytes and
//! `docs/design.md` for the flows.

pub mod durable;
pub mod error;
pub mod frame;
pub mod group_commit;
pub mod lock;
pub mod log;
pub mod mapped;
pub mod segment;
pub mod sim;
pub mod vfs;

pub use durable::Published;
pub use error::{Error, Result};
pub use group_commit::GroupCommit;
pub use lock::{LockHeld, ProcessLock};
pub use log::{Cursor, Damage, Durability, Frame, ScanStop, Tail, Wal, WalOptions};
pub use sim::SimVfs;
pub use vfs::{create_dir_durable, OpenMode, RealVfs, Vfs, VfsFile, VfsLock};
