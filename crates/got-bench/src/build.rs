//! Building the scale stores: the same tasks into each engine, 1,000 per
//! transaction, with each engine's default maintenance (got: automatic checkpoints
//! and compaction). A store of the middle size is a copy of the big one taken on
//! the way up, so the big store is built once.

use crate::data::TaskGen;
use crate::engines::{copy_store, Db, Engine};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Tasks per transaction while building.
pub const BUILD_BATCH: usize = 1000;

/// Builds `n` scale tasks into a new store at `path`; when `mid` is given, copies
/// the store to `mid.1` once it holds `mid.0` tasks (the copy's time is not
/// counted). Returns the build time in seconds and the open store.
pub fn build(
    engine: Engine,
    path: &Path,
    n: usize,
    mid: Option<(usize, PathBuf)>,
) -> Result<(f64, Box<dyn Db>)> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
    }
    let mut db = engine.open(path)?;
    let mut w = db.writer()?;
    let mut gen = TaskGen::new();
    let mut secs = 0.0;
    // How far a long build is: a line at each tenth (builds of 100k and more).
    let tenth = if n >= 100_000 { n / 10 } else { usize::MAX };
    while gen.count() < n {
        let batch = gen.batch(BUILD_BATCH.min(n - gen.count()));
        let t = Instant::now();
        w.commit_batch(&batch)?;
        secs += t.elapsed().as_secs_f64();
        let done = gen.count();
        if done % tenth < batch.len() && done < n {
            eprintln!(
                "[got-bench] scale: {} {done} of {n} tasks built ({:.1}k tasks/s so far)",
                engine.name(),
                done as f64 / secs / 1000.0
            );
        }
        if let Some((m, to)) = &mid {
            if gen.count() == *m {
                drop(w);
                drop(db);
                copy_store(path, to)?;
                let t = Instant::now();
                db = engine.open(path)?;
                w = db.writer()?;
                secs += t.elapsed().as_secs_f64();
            }
        }
    }
    drop(w);
    Ok((secs, db))
}
