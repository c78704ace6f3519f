//! SQLite (bundled, through rusqlite) with the durability got has:
//! `journal_mode=WAL`, `synchronous=FULL` (every commit `fsync`s the WAL). One
//! connection per thread, `busy_timeout` for waiting writers, `BEGIN IMMEDIATE`
//! for every write transaction.
//!
//! Schema: `tasks` keyed by id, an index on (status, id), a partial index for the
//! ready queue on (priority rank, created_at, id) over pending unassigned tasks,
//! `task_labels(label, task_id)` and `deps(task_id, dep_id)` with its reverse
//! index (got keeps edges in both directions too).

use super::{Db, Reader, Writer};
use crate::data::{priority_rank, Task};
use anyhow::{Context, Result};
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tasks(
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    status TEXT,
    priority TEXT,
    prio_rank INTEGER NOT NULL,
    labels TEXT,
    title TEXT,
    assignee TEXT,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tasks_status ON tasks(status, id);
CREATE INDEX IF NOT EXISTS tasks_ready ON tasks(prio_rank, created_at, id)
    WHERE status = 'pending' AND assignee IS NULL;
CREATE TABLE IF NOT EXISTS task_labels(
    label TEXT NOT NULL, task_id TEXT NOT NULL, PRIMARY KEY(label, task_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deps(
    task_id TEXT NOT NULL, dep_id TEXT NOT NULL, PRIMARY KEY(task_id, dep_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deps_rev ON deps(dep_id, task_id);
";

const COLUMNS: &str =
    "t.id, t.kind, t.status, t.priority, t.labels, t.title, t.assignee, t.version, t.created_at, t.updated_at";

/// A decoded row, so that reads pay for decoding as got's and redb's do.
#[allow(dead_code)]
#[derive(Debug)]
pub struct Row {
    id: String,
    kind: String,
    status: Option<String>,
    priority: Option<String>,
    labels: Option<String>,
    title: Option<String>,
    assignee: Option<String>,
    version: i64,
    created_at: i64,
    updated_at: i64,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        id: r.get(0)?,
        kind: r.get(1)?,
        status: r.get(2)?,
        priority: r.get(3)?,
        labels: r.get(4)?,
        title: r.get(5)?,
        assignee: r.get(6)?,
        version: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

/// A read-write connection with got's durability.
pub fn connect(path: &Path) -> Result<Connection> {
    let c = Connection::open(path).with_context(|| format!("opening sqlite {path:?}"))?;
    c.busy_timeout(Duration::from_secs(60))?;
    let mode: String = c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    anyhow::ensure!(mode == "wal", "sqlite journal_mode is {mode}, not wal");
    c.execute_batch("PRAGMA synchronous=FULL;")?;
    Ok(c)
}

/// A read-only connection (a fresh reader process).
pub fn connect_read_only(path: &Path) -> Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(Duration::from_secs(60))?;
    Ok(c)
}

pub struct SqliteDb {
    path: PathBuf,
}

impl SqliteDb {
    pub fn create(path: &Path) -> Result<SqliteDb> {
        let c = connect(path)?;
        c.execute_batch(SCHEMA)?;
        Ok(SqliteDb {
            path: path.to_path_buf(),
        })
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Inserts tasks, their label rows and their dependency rows.
fn insert(c: &Connection, ts: &[Task]) -> rusqlite::Result<()> {
    let now = now_ms();
    let mut task = c.prepare_cached(
        "INSERT INTO tasks(id, kind, status, priority, prio_rank, labels, title, assignee, \
         version, created_at, updated_at) VALUES (?1, 'task', ?2, ?3, ?4, ?5, ?6, NULL, 1, ?7, ?7)",
    )?;
    let mut label =
        c.prepare_cached("INSERT OR IGNORE INTO task_labels(label, task_id) VALUES (?1, ?2)")?;
    let mut dep =
        c.prepare_cached("INSERT OR IGNORE INTO deps(task_id, dep_id) VALUES (?1, ?2)")?;
    for t in ts {
        let labels = format!("[\"{}\"]", t.label);
        task.execute(params![
            t.id,
            t.status,
            t.priority,
            priority_rank(t.priority),
            labels,
            t.title,
            now
        ])?;
        label.execute(params![t.label, t.id])?;
        for d in &t.deps {
            dep.execute(params![t.id, d])?;
        }
    }
    Ok(())
}

pub struct SqliteWriter(Connection);

impl SqliteWriter {
    pub fn new(path: &Path) -> Result<SqliteWriter> {
        Ok(SqliteWriter(connect(path)?))
    }
}

impl Writer for SqliteWriter {
    fn commit_one(&mut self, t: &Task) -> Result<()> {
        self.commit_batch(std::slice::from_ref(t))
    }
    fn commit_batch(&mut self, ts: &[Task]) -> Result<()> {
        let tx = self
            .0
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        insert(&tx, ts)?;
        tx.commit()?;
        Ok(())
    }
}

pub struct SqliteReader(Connection);

impl Reader for SqliteReader {
    fn get(&mut self, id: &str) -> Result<bool> {
        get(&self.0, id)
    }
}

/// Reads and decodes one task by primary key.
pub fn get(c: &Connection, id: &str) -> Result<bool> {
    let mut s = c.prepare_cached(&format!("SELECT {COLUMNS} FROM tasks t WHERE t.id = ?1"))?;
    let mut rows = s.query_map([id], row)?;
    Ok(match rows.next() {
        Some(r) => {
            std::hint::black_box(r?);
            true
        }
        None => false,
    })
}

impl Db for SqliteDb {
    fn writer(&self) -> Result<Box<dyn Writer>> {
        Ok(Box::new(SqliteWriter::new(&self.path)?))
    }
    fn reader(&self) -> Result<Box<dyn Reader>> {
        Ok(Box::new(SqliteReader(connect(&self.path)?)))
    }
}

fn filter_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM task_labels l JOIN tasks t ON t.id = l.task_id \
         WHERE l.label = ?1 AND t.status = 'pending' AND t.kind = 'task' \
         ORDER BY l.task_id LIMIT ?2"
    )
}

fn ready_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM tasks t INDEXED BY tasks_ready \
         WHERE t.status = 'pending' AND t.assignee IS NULL AND t.kind = 'task' \
         AND NOT EXISTS (SELECT 1 FROM deps d LEFT JOIN tasks u ON u.id = d.dep_id \
                         WHERE d.task_id = t.id AND (u.status IS NULL OR u.status <> 'completed')) \
         ORDER BY t.prio_rank, t.created_at, t.id LIMIT ?1"
    )
}

/// SQLite's query plans for the filter and the ready queue, one line each.
pub fn plans(c: &Connection) -> Result<(String, String)> {
    let plan = |sql: &str, n: usize| -> Result<String> {
        let mut s = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let p = if n == 2 {
            s.query_map(params!["x", 20], |r| r.get::<_, String>(3))?
                .collect::<rusqlite::Result<Vec<_>>>()?
        } else {
            s.query_map(params![20], |r| r.get::<_, String>(3))?
                .collect::<rusqlite::Result<Vec<_>>>()?
        };
        Ok(p.join("; "))
    };
    Ok((plan(&filter_sql(), 2)?, plan(&ready_sql(), 1)?))
}

/// `n` pending tasks with this label, in id order.
pub fn filter(c: &Connection, label: &str, limit: usize) -> Result<Vec<String>> {
    let mut s = c.prepare_cached(&filter_sql())?;
    let rows = s.query_map(params![label, limit as i64], row)?;
    Ok(rows
        .map(|r| r.map(|r| r.id))
        .collect::<rusqlite::Result<_>>()?)
}

/// The ready queue as SQL: pending, unassigned, every `depends_on` target an
/// existing completed task; by priority rank, creation time, id.
pub fn ready(c: &Connection, limit: usize) -> Result<Vec<String>> {
    let mut s = c.prepare_cached(&ready_sql())?;
    let rows = s.query_map(params![limit as i64], row)?;
    Ok(rows
        .map(|r| r.map(|r| r.id))
        .collect::<rusqlite::Result<_>>()?)
}

/// Collects statistics for the query planner (after a bulk build).
pub fn analyze(path: &Path) -> Result<()> {
    connect(path)?.execute_batch("ANALYZE;")?;
    Ok(())
}

/// Writes `n` small tasks in transactions of `batch`, with automatic checkpoints
/// off and no checkpoint on close: the WAL holds all of them afterwards.
pub fn build_unckpt(path: &Path, ts: &mut dyn Iterator<Item = Vec<Task>>) -> Result<()> {
    let c = connect(path)?;
    c.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    c.execute_batch("PRAGMA wal_autocheckpoint=0;")?;
    c.execute_batch(SCHEMA)?;
    let mut w = SqliteWriter(c);
    for b in ts {
        w.commit_batch(&b)?;
    }
    Ok(())
}

/// Opens a store whose WAL was left un-checkpointed and reads one row; the
/// connection returned closes without checkpointing, so the next call recovers
/// the same log again. The
/// WAL index (`-shm`) is removed first (no connection is open), so the first
/// read must rebuild it by scanning the whole log, as after a crash.
pub fn reopen_unckpt(path: &Path, id: &str) -> Result<(bool, Connection)> {
    let shm = PathBuf::from(format!("{}-shm", path.display()));
    match std::fs::remove_file(&shm) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    let c = Connection::open(path)?;
    c.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    c.execute_batch("PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0;")?;
    Ok((get(&c, id)?, c))
}
