//! The integration tests, in one binary: each file of `tests/` below is a
//! module of it (one link of the library and its dependencies instead of one
//! per file, which was most of CI's compile time). `fuzz_decoders` (its own
//! counting allocator), `lock` and `multi_process` (they run their own binary
//! again as child processes, by test name) stay binaries of their own.
//!
//! One file's tests: `cargo test --test suite sync_clones::`.

mod common;

mod agent_clients;
mod background_checkpoint;
mod backup;
mod board_cli;
mod cache;
mod cli;
mod corruption;
mod format_compat;
mod fsyncgate;
mod graph;
mod handoff_cli;
mod import_beads;
mod import_got_json;
mod index;
mod index_props;
mod io_errors;
mod migrate_cli;
mod plans_cli;
mod progress_cli;
mod query;
mod query_cli;
mod ready;
mod repair_crash;
mod serve_http;
mod sim_directories;
mod sim_group_commit;
mod sim_power_loss;
mod sync_cli;
mod sync_clones;
mod sync_merge;
mod sync_replica;
mod task_cli;
mod task_races;
mod torn_tail;
mod transfer_cli;
mod validate_cli;
mod worktree_cli;
