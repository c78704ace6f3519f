//! Helpers shared by the integration tests. Each test file is its own crate and
//! declares `mod common;` to compile this module into itself.

// Each test binary uses a different subset of these helpers (io_errors and
// sim_power_loss use `model`, lock and multi_process `child`, corruption, torn_tail
// and format_compat `wal_bytes`, `store_dir` and `cli`, fuzz_decoders `mutate`),
// so in any one of them the rest is dead code.
#![allow(dead_code)]

pub mod child;
pub mod cli;
pub mod git;
pub mod model;
pub mod mutate;
pub mod seed;
pub mod store_dir;
pub mod wal_bytes;
