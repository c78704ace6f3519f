//! The hidden `__child` subcommand: the harness re-executes itself so that a
//! measurement runs in a fresh process (open + one read), or so that several
//! processes commit to one store at once.
//!
//! ```text
//! got-bench __child commit ENGINE PATH SECS TAG   # "ready", waits for a line, commits for SECS, "done COUNT"
//! got-bench __child open-get ENGINE PATH ID       # prints "NANOS FOUND": open + read one entity
//! got-bench __child open-ready ENGINE PATH        # prints "NANOS ID": open + the next ready task
//! ```

use crate::data::small_task;
use crate::engines::{got_db, redb_db, sqlite_db, Engine};
use anyhow::{bail, Context, Result};
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::{Duration, Instant};

pub fn main(args: &[String]) -> Result<()> {
    let arg = |i: usize| {
        args.get(i)
            .map(String::as_str)
            .with_context(|| format!("__child: missing argument {i} in {args:?}"))
    };
    let name = arg(1)?;
    let engine = Engine::parse(name).with_context(|| format!("__child: unknown engine {name}"))?;
    let path = Path::new(arg(2)?);
    match arg(0)? {
        "commit" => {
            let secs: f64 = arg(3)?.parse()?;
            commit(engine, path, secs, arg(4)?)
        }
        // Timed from before the open to after the read; the handle is closed
        // after the clock stops (a process exiting need not tidy up).
        "open-get" => {
            let id = arg(3)?;
            let t = Instant::now();
            let (found, ns) = match engine {
                Engine::Got => {
                    let db = got_db::GotDb::open_read_only(path)?;
                    let found = db.store.get(id)?.is_some();
                    (found, t.elapsed().as_nanos())
                }
                Engine::Sqlite => {
                    let c = sqlite_db::connect_read_only(path)?;
                    let found = sqlite_db::get(&c, id)?;
                    (found, t.elapsed().as_nanos())
                }
                Engine::Redb => {
                    let db = redb::ReadOnlyDatabase::open(path)?;
                    let found = redb_db::get(&db, id)?;
                    (found, t.elapsed().as_nanos())
                }
            };
            println!("{ns} {found}");
            Ok(())
        }
        "open-ready" => {
            let t = Instant::now();
            let (next, ns) = match engine {
                Engine::Got => {
                    let db = got_db::GotDb::open_read_only(path)?;
                    let next = got_db::ready(&db.store, 1)?;
                    (next, t.elapsed().as_nanos())
                }
                Engine::Sqlite => {
                    let c = sqlite_db::connect_read_only(path)?;
                    let next = sqlite_db::ready(&c, 1)?;
                    (next, t.elapsed().as_nanos())
                }
                Engine::Redb => bail!("redb has no ready queue"),
            };
            println!("{ns} {}", next.first().map_or("-", String::as_str));
            Ok(())
        }
        other => bail!("__child: unknown command {other}"),
    }
}

/// Opens a writer, says "ready", waits for the go line on stdin, commits small
/// tasks one per transaction for `secs`, says "done COUNT".
fn commit(engine: Engine, path: &Path, secs: f64, tag: &str) -> Result<()> {
    let db = engine.open(path)?;
    let mut w = db.writer()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut n = 0u64;
    while n == 0 || Instant::now() < deadline {
        w.commit_one(&small_task(format!("P-{tag}-{n:09}"), "pending"))?;
        n += 1;
    }
    writeln!(out, "done {n}")?;
    out.flush()?;
    Ok(())
}
