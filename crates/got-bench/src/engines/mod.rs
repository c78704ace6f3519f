//! The three engines behind one small interface: a writer handle per thread, a
//! reader handle per thread. Queries that only got and SQLite can answer (filters,
//! the ready queue) are functions of their own modules.

pub mod got_db;
pub mod redb_db;
pub mod sqlite_db;

use crate::data::Task;
use anyhow::Result;
use std::path::Path;

/// Which engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Got,
    Sqlite,
    Redb,
}

impl Engine {
    pub const ALL: [Engine; 3] = [Engine::Got, Engine::Sqlite, Engine::Redb];

    pub fn name(self) -> &'static str {
        match self {
            Engine::Got => "got",
            Engine::Sqlite => "sqlite",
            Engine::Redb => "redb",
        }
    }

    pub fn parse(s: &str) -> Option<Engine> {
        Engine::ALL.into_iter().find(|e| e.name() == s)
    }

    /// Where this engine keeps a store named `name` under `base`.
    pub fn path(self, base: &Path, name: &str) -> std::path::PathBuf {
        match self {
            Engine::Got => base.join(format!("got-{name}")).join(".got"),
            Engine::Sqlite => base.join(format!("sqlite-{name}.db")),
            Engine::Redb => base.join(format!("redb-{name}.redb")),
        }
    }

    /// Creates (if missing) and opens a store for writing, durable by default.
    pub fn open(self, path: &Path) -> Result<Box<dyn Db>> {
        Ok(match self {
            Engine::Got => Box::new(got_db::GotDb::create(path)?),
            Engine::Sqlite => Box::new(sqlite_db::SqliteDb::create(path)?),
            Engine::Redb => Box::new(redb_db::RedbDb::create(path)?),
        })
    }
}

/// One thread's handle for writing. Every commit is durable when it returns.
pub trait Writer: Send {
    /// One transaction holding one task (and its edges).
    fn commit_one(&mut self, t: &Task) -> Result<()>;
    /// One transaction holding all of `ts` (and their edges).
    fn commit_batch(&mut self, ts: &[Task]) -> Result<()>;
}

/// One thread's handle for point reads.
pub trait Reader: Send {
    /// Reads and decodes the task with this id; whether it exists.
    fn get(&mut self, id: &str) -> Result<bool>;
}

/// An open store.
pub trait Db: Send + Sync {
    fn writer(&self) -> Result<Box<dyn Writer>>;
    fn reader(&self) -> Result<Box<dyn Reader>>;
}

/// Copies a store (closed, or with every commit durable and no checkpoint
/// running) to `to`: files and directories, recursively.
pub fn copy_store(from: &Path, to: &Path) -> Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for e in std::fs::read_dir(from)? {
            let e = e?;
            copy_store(&e.path(), &to.join(e.file_name()))?;
        }
    } else {
        if let Some(p) = to.parent() {
            std::fs::create_dir_all(p)?;
        }
        std::fs::copy(from, to)?;
    }
    Ok(())
}
