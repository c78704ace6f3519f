//! Sync: git as got's distributed engine. A store's state is exported to one
//! tracked file (`.got/tracked.jsonl`) with a hybrid logical clock per field;
//! git moves it between clones; one merge function joins what two replicas
//! know, in the merge driver, in import and in `got sync` (docs/sync.md).

pub mod cycle;
pub mod doc;
pub mod exchange;
pub mod git;
pub mod hlc;
pub mod merge;
pub mod replica;

pub use doc::{Doc, ParseError};
pub use hlc::Hlc;
pub use merge::merge;

/// The tracked file, under the store's directory (`.got/`): the one file of a
/// store that git carries.
pub const TRACKED_FILE: &str = "tracked.jsonl";
