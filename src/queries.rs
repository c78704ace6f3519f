//! Queries and indexes: the index entries the store derives at every commit
//! (`index`), the query planner over them (`query`), the ready queue (`ready`),
//! graph traversals (`graph`), and the two summaries built from all of them,
//! the dashboard and the prime (`board`).
//!
//! The modules are reachable from the crate root as before (`got::query`, …).

pub mod board;
pub mod graph;
pub mod index;
pub mod query;
pub mod ready;
