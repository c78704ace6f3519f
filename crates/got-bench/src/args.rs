//! Command-line flags.

use clap::Parser;
use std::path::PathBuf;

/// The comparison harness: got against SQLite, redb and the disk's own fsync rate.
#[derive(Parser, Debug)]
#[command(name = "got-bench")]
pub struct Args {
    /// Small sizes and short rounds (a CI smoke test, under a minute).
    #[arg(long)]
    pub quick: bool,
    /// Write every row (values, units, ratios, targets) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw commits/s against threads (workloads 2 and 3) as SVG to this file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Run only these workloads (comma-separated or repeated): 1..10, mem.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Keep the stores under this directory (kept afterwards; a later run with the
    /// same directory reuses finished scale stores). Default: a temporary
    /// directory under the target directory, removed at the end.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Measure nothing: draw --plot from the JSON an earlier run wrote with --json.
    #[arg(long, value_name = "FILE", requires = "plot")]
    pub from_json: Option<PathBuf>,
}
