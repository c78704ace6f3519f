//! got through its public API: `Store::transaction`, `Store::get` (the LRU entity
//! cache), `Query::run` and `ready::ready` in a transaction from `Store::begin`.

use super::{Db, Reader, Writer};
use crate::data::Task;
use anyhow::{Context, Result};
use got::query::{Filter, Query};
use got::{Options, Props, Store, Transaction, Value};
use std::path::Path;

pub struct GotDb {
    pub store: Store,
}

impl GotDb {
    /// Default options (durable commits, automatic checkpoints and compaction)
    /// of a long-lived process (checkpoints on their own thread), creating the
    /// store if missing.
    pub fn create(dir: &Path) -> Result<GotDb> {
        GotDb::open(
            dir,
            Options {
                create_if_missing: true,
                background_checkpoints: true,
                ..Options::default()
            },
        )
    }

    pub fn open(dir: &Path, opts: Options) -> Result<GotDb> {
        let store = Store::open(dir, opts).with_context(|| format!("opening got store {dir:?}"))?;
        Ok(GotDb { store })
    }

    /// A read-only handle, as a CLI reader or another process would open it.
    pub fn open_read_only(dir: &Path) -> Result<GotDb> {
        GotDb::open(
            dir,
            Options {
                read_only: true,
                ..Options::default()
            },
        )
    }
}

impl Drop for GotDb {
    /// A checkpoint still running on its thread would run into what is
    /// measured next.
    fn drop(&mut self) {
        self.store.settle();
    }
}

fn props(t: &Task) -> Props {
    let mut p = Props::new();
    p.insert("status".into(), t.status.into());
    p.insert("priority".into(), t.priority.into());
    p.insert("labels".into(), Value::List(vec![t.label.into()]));
    p.insert("title".into(), t.title.as_str().into());
    p
}

fn put_task(tx: &mut Transaction<'_>, t: &Task) -> got::Result<()> {
    tx.put(&t.id, "task", props(t))?;
    for d in &t.deps {
        tx.add_edge(&t.id, "depends_on", d, Props::new())?;
    }
    Ok(())
}

struct GotWriter(Store);

impl Writer for GotWriter {
    fn commit_one(&mut self, t: &Task) -> Result<()> {
        self.0.transaction(|tx| put_task(tx, t))?;
        Ok(())
    }
    fn commit_batch(&mut self, ts: &[Task]) -> Result<()> {
        self.0.transaction(|tx| {
            for t in ts {
                put_task(tx, t)?;
            }
            Ok(())
        })?;
        Ok(())
    }
}

struct GotReader(Store);

impl Reader for GotReader {
    fn get(&mut self, id: &str) -> Result<bool> {
        Ok(self.0.get(id)?.is_some())
    }
}

impl Db for GotDb {
    fn writer(&self) -> Result<Box<dyn Writer>> {
        Ok(Box::new(GotWriter(self.store.clone())))
    }
    fn reader(&self) -> Result<Box<dyn Reader>> {
        Ok(Box::new(GotReader(self.store.clone())))
    }
}

/// "20 pending tasks with label x", in id order, in a transaction of its own.
pub fn filter(store: &Store, label: &str, limit: usize) -> Result<Vec<String>> {
    let q = Query {
        kind: Some("task".into()),
        filters: vec![
            Filter::Eq("status".into(), "pending".into()),
            Filter::Label(label.into()),
        ],
        limit: Some(limit),
        ..Query::default()
    };
    let mut tx = store.begin()?;
    Ok(q.run(&mut tx)?.into_iter().map(|e| e.id).collect())
}

/// The first `limit` tasks of the ready queue, in a transaction of its own.
pub fn ready(store: &Store, limit: usize) -> Result<Vec<String>> {
    let mut tx = store.begin()?;
    Ok(got::ready::ready(&mut tx, Some(limit))?
        .into_iter()
        .map(|e| e.id)
        .collect())
}
