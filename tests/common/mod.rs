//! Helpers shared by the integration tests: a module of `tests/suite.rs` (whose
//! files reach it as `crate::common`), and of `fuzz_decoders`, `lock` and
//! `multi_process`, which declare `mod common;` for themselves.

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
