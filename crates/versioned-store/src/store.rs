//! The store: the public [`Store`] handle and what it shares between handles
//! of one process (`Inner`). The rest of the store, each in the file named for
//! it: `store/open.rs` (init and open), `store/catch_up.rs`, `store/commit.rs`
//! (the group-commit pipeline and validation), `store/checkpoint.rs` (with
//! compaction) and `store/derive.rs` (derivation); the options in
//! `options.rs`, small helpers in `util.rs`.

mod background;
mod catch_up;
mod checkpoint;
mod commit;
mod derive;
mod open;

pub use crate::options::{default_actor, Options};
pub use crate::util::random_u64;
pub(crate) use commit::encode_record;
pub(crate) use derive::{derive_all_with, derived_present};
pub use derive::{Deriver, KeyChanges, StateView, DERIVED_ABSENT, DERIVED_PRESENT};
pub use open::{init, init_with};
use open::{init_if_missing, is_not_found, open_runs};

use crate::error::{io_at, Error, Result};
use crate::manifest::{self, Manifest};
use crate::memtable::{MemTable, Versions};
use crate::model::{self, EdgeRecord, EntityRecord};
use crate::record::{self, TxRecord};
use crate::run::{self, Run, RunMeta};
use crate::state::State;
use crate::txn::Transaction;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;
use wal::{Cursor, Durability, GroupCommit, LockHeld, ProcessLock, ScanStop, Vfs, Wal, WalOptions};

/// A handle on a store. Cheap to clone; handles opened on the same directory in one
/// process (with [`Store::open`]) share the lock, the commit queue and the state.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
    pub(crate) actor: String,
}

/// What a committed transaction got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// The transaction's LSN; `None` if it wrote nothing (no WAL record).
    pub lsn: Option<u64>,
}

/// See [`Store::commit_stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitStats {
    pub frames: u64,
    pub transactions: u64,
}

/// One version in an entity's history.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryEntry {
    pub lsn: u64,
    pub version: u64,
    pub actor: String,
    pub time_ms: i64,
    pub deleted: bool,
    /// The entity as of this version (`None` for a deletion).
    pub entity: Option<crate::Entity>,
}

/// What a store holds, by kind, and what its history costs.
#[derive(Clone, Debug, Default)]
pub struct ContentStats {
    pub entities_by_kind: BTreeMap<String, u64>,
    pub edges_by_kind: BTreeMap<String, u64>,
    /// Every version of every key (entities and both edge directions) kept.
    pub history_versions: u64,
    /// Their bytes (keys, values, LSNs) before block framing.
    pub history_bytes: u64,
    /// Versions and bytes of index entries (derived, kept in the same runs).
    pub index_versions: u64,
    pub index_bytes: u64,
}

/// What a store holds on disk and in memory.
#[derive(Clone, Debug)]
pub struct DiskStats {
    pub checkpoint_lsn: u64,
    pub applied_lsn: u64,
    pub generation: u64,
    /// Newest first.
    pub runs: Vec<RunMeta>,
    /// Bytes of WAL payload since the checkpoint (what the next one flushes).
    pub wal_tail_bytes: u64,
    /// Bytes of WAL segment files (preallocated).
    pub wal_disk_bytes: u64,
    pub delta_keys: usize,
    pub delta_bytes: usize,
}

#[derive(Clone, Debug, Default)]
pub struct CheckpointInfo {
    pub checkpoint_lsn: u64,
    pub generation: u64,
    pub run: Option<RunMeta>,
    pub compacted: bool,
    pub segments_retired: usize,
}

#[derive(Debug)]
pub(crate) struct Pending {
    pub reads: BTreeMap<Vec<u8>, u64>,
    pub writes: BTreeMap<Vec<u8>, Arc<[u8]>>,
    pub record: Vec<u8>,
}

#[derive(Debug)]
struct ReaderState {
    cursor: Cursor,
    generation: u64,
    tail_bytes: u64,
}

pub(crate) struct Inner {
    pub(crate) vfs: Arc<dyn Vfs>,
    pub(crate) dir: PathBuf,
    pub(crate) store_id: [u8; 16],
    pub(crate) opts: Options,
    pub(crate) wal: Wal,
    lock: Option<ProcessLock>,
    reader: Mutex<ReaderState>,
    pub(crate) state: RwLock<State>,
    commits: GroupCommit<Pending, Result<u64>>,
    checkpoint_error: Mutex<Option<String>>,
    listeners: RwLock<Vec<Arc<dyn ChangeListener>>>,
    extensions: Mutex<HashMap<std::any::TypeId, Arc<dyn std::any::Any + Send + Sync>>>,
    /// One checkpoint at a time in this process (each releases the lock while it
    /// writes its run).
    checkpointing: Mutex<()>,
    /// The checkpoint thread, if `Options::background_checkpoints`.
    checkpointer: Arc<background::Checkpointer>,
    /// What this handle's group commit appended: frames, and transactions in them.
    frames_written: std::sync::atomic::AtomicU64,
    transactions_written: std::sync::atomic::AtomicU64,
}

/// Told about every committed change this process applies: its own commits and
/// other processes' commits met while catching up (how caches stay exact).
pub trait ChangeListener: Send + Sync {
    /// Entity ids whose record a newly applied transaction wrote. Called after the
    /// state holds the new versions.
    fn entities_changed(&self, ids: &[&str]);
    /// Anything may have changed: this process jumped over commits it never
    /// applied one by one (another process's checkpoint moved past them).
    fn everything_changed(&self);
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.checkpointer.stop();
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish()
    }
}

type Registry = Mutex<HashMap<(PathBuf, bool), Weak<Inner>>>;
static REGISTRY: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();

/// Keys of each delta table a [`Inner::walk`] copies at a time.
const WALK_COPY: usize = 1024;

impl Inner {
    /// The state's keys under `prefix` from `from` on, newest version at or
    /// below `lsn`, in key order: [`State::iter_from`], but with the delta copied
    /// [`WALK_COPY`] keys at a time, each chunk under a fresh read of the state
    /// and no lock held in between. A read that stops after a few keys copies a
    /// few of the delta's, however long the log tail behind it (the first read
    /// of the ready queue after a 1M-record tail once copied a million keys to
    /// use one). Each chunk continues where the last stopped: every version at
    /// or below `lsn` stays in the state while checkpoints move it from the
    /// delta into runs (runs keep every version).
    pub(crate) fn walk(
        self: &Arc<Self>,
        prefix: &[u8],
        from: &[u8],
        lsn: u64,
    ) -> impl Iterator<Item = crate::state::Entry> + use<> {
        let inner = self.clone();
        let prefix = prefix.to_vec();
        let (mut cur, mut bound) = inner
            .state
            .read()
            .iter_from_bounded(&prefix, from, lsn, WALK_COPY);
        std::iter::from_fn(move || loop {
            if let Some(item) = cur.next() {
                return Some(item);
            }
            // Past the last key copied of a table cut short: the next chunk.
            let mut next = bound.take()?;
            next.push(0);
            (cur, bound) = inner
                .state
                .read()
                .iter_from_bounded(&prefix, &next, lsn, WALK_COPY);
        })
    }
}

impl Store {
    /// Opens the store in directory `path` on the real file system. Handles on the
    /// same directory within one process share one lock and commit queue.
    ///
    /// ```
    /// use versioned_store::{Options, Store, Value};
    /// let dir = tempfile::tempdir().unwrap();
    /// let opts = Options { create_if_missing: true, ..Options::default() };
    /// let store = Store::open(dir.path().join(".got"), opts).unwrap();
    /// let id = store
    ///     .transaction(|tx| {
    ///         let e = tx.create("task", [("title".to_string(), Value::from("write docs"))].into())?;
    ///         Ok(e.id)
    ///     })
    ///     .unwrap();
    /// assert_eq!(store.get(&id).unwrap().unwrap().version, 1);
    /// ```
    pub fn open(path: impl AsRef<Path>, opts: Options) -> Result<Store> {
        let path = path.as_ref();
        let vfs: Arc<dyn Vfs> = Arc::new(wal::RealVfs);
        if opts.create_if_missing && !opts.read_only && !path.join("CURRENT").exists() {
            init_if_missing(vfs.as_ref(), path, &opts)?;
        }
        let canon = std::fs::canonicalize(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotAStore {
                    path: path.to_path_buf(),
                    detail: "no such directory (run `got init` to create a store)".into(),
                }
            } else {
                io_at(path)(e)
            }
        })?;
        let actor = opts.actor.clone().unwrap_or_else(default_actor);
        let key = (canon.clone(), opts.read_only);
        let reg = REGISTRY.get_or_init(Default::default);
        let mut map = reg.lock();
        if let Some(inner) = map.get(&key).and_then(Weak::upgrade) {
            if !inner.wal.is_poisoned() {
                return Ok(Store { inner, actor });
            }
        }
        let inner = Arc::new(Inner::open(vfs, &canon, opts)?);
        map.retain(|_, w| w.strong_count() > 0);
        map.insert(key, Arc::downgrade(&inner));
        Ok(Store { inner, actor })
    }

    /// Opens on any [`Vfs`] (the crash tests use `SimVfs`). Never shared: each call
    /// behaves like a separate process.
    pub fn open_with_vfs(
        vfs: Arc<dyn Vfs>,
        path: impl AsRef<Path>,
        opts: Options,
    ) -> Result<Store> {
        let path = path.as_ref();
        if opts.create_if_missing
            && !opts.read_only
            && !vfs.exists(&path.join("CURRENT")).map_err(io_at(path))?
        {
            init_if_missing(vfs.as_ref(), path, &opts)?;
        }
        let actor = opts.actor.clone().unwrap_or_else(default_actor);
        Ok(Store {
            inner: Arc::new(Inner::open(vfs, path, opts)?),
            actor,
        })
    }

    /// The same store, writing as `actor`.
    pub fn with_actor(&self, actor: impl Into<String>) -> Store {
        Store {
            inner: self.inner.clone(),
            actor: actor.into(),
        }
    }

    pub fn actor(&self) -> &str {
        &self.actor
    }
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }
    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    /// Now, in Unix milliseconds, by the store's clock (`Options::clock`).
    pub fn now_ms(&self) -> i64 {
        crate::clock::now_ms(self.inner.opts.clock.as_ref())
    }

    /// Starts a transaction on the latest durable state. Never retries.
    pub fn begin(&self) -> Result<Transaction<'_>> {
        self.inner.catch_up()?;
        let snapshot = self.inner.state.read().applied_lsn;
        Ok(Transaction::new(self, snapshot))
    }

    /// Runs `f` in a transaction and commits it, re-running `f` on `Conflict` up to
    /// `max_retries` times. Any other error aborts and is returned.
    pub fn transaction<T>(
        &self,
        mut f: impl FnMut(&mut Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            let mut tx = self.begin()?;
            let r = f(&mut tx).and_then(|v| tx.commit().map(|_| v));
            match r {
                Err(Error::Conflict(_)) if attempt < self.inner.opts.max_retries => {
                    attempt += 1;
                    // Back off a little so racing processes interleave.
                    std::thread::sleep(Duration::from_micros(
                        (random_u64() % 500) * attempt as u64,
                    ));
                }
                r => return r,
            }
        }
    }

    /// The latest committed version of an entity.
    pub fn get(&self, id: &str) -> Result<Option<crate::Entity>> {
        self.refresh()?;
        self.get_applied(id)
    }

    /// Catches up with every durable commit (other processes' included).
    pub fn refresh(&self) -> Result<()> {
        self.inner.catch_up()
    }

    /// The entity as of what this handle has applied, without catching up first
    /// (for a cache in front of the store, which refreshes once per read).
    pub fn get_applied(&self, id: &str) -> Result<Option<crate::Entity>> {
        model::check_id(id)?;
        StateView::entity(&*self.inner.state.read(), id, u64::MAX)
    }

    /// Entities, optionally of one kind, in id order.
    pub fn list(&self, kind: Option<&str>, limit: Option<usize>) -> Result<Vec<crate::Entity>> {
        self.begin()?.list(kind, limit)
    }

    /// Every committed version of `id`, oldest first, with actor and time.
    pub fn history(&self, id: &str) -> Result<Vec<HistoryEntry>> {
        self.inner.catch_up()?;
        let versions = self.inner.state.read().history(&model::entity_key(id))?;
        versions
            .into_iter()
            .map(|(lsn, v)| {
                let r: EntityRecord = model::decode(&v, "entity record")?;
                Ok(HistoryEntry {
                    lsn,
                    version: r.version,
                    actor: r.actor.clone(),
                    time_ms: r.updated_at,
                    deleted: r.deleted,
                    entity: r.into_entity(id),
                })
            })
            .collect()
    }

    /// The entity as it was at `lsn` (`None` if absent or deleted then).
    pub fn get_at(&self, id: &str, lsn: u64) -> Result<Option<crate::Entity>> {
        self.inner.catch_up()?;
        StateView::entity(&*self.inner.state.read(), id, lsn)
    }

    /// Flushes the delta into a new run and retires WAL segments it covers;
    /// compacts when there are too many runs.
    ///
    /// A merge that meets a damaged index block rebuilds the indexes from the
    /// entities and checkpoints again, leaving the damaged blocks behind.
    /// Waits for a checkpoint in progress (on the checkpoint thread, say) first;
    /// a success clears [`Store::last_checkpoint_error`].
    pub fn checkpoint(&self) -> Result<CheckpointInfo> {
        let r = match self.inner.checkpoint() {
            Err(_) if self.inner.heal_derived()? => self.inner.checkpoint(),
            r => r,
        };
        if r.is_ok() {
            *self.inner.checkpoint_error.lock() = None;
        }
        r
    }

    /// Waits until no checkpoint is in progress in this process (on the
    /// checkpoint thread or another): what a benchmark calls before it measures
    /// the next thing, or a caller before it copies the directory by other means.
    pub fn settle(&self) {
        drop(self.inner.checkpointing.lock());
    }

    /// What this handle (and every handle sharing it in this process) appended to
    /// the log since it was opened: WAL frames, each one write and one sync, and
    /// the transactions they held. More transactions than frames means group
    /// commit batched concurrent committers.
    pub fn commit_stats(&self) -> CommitStats {
        use std::sync::atomic::Ordering::Relaxed;
        CommitStats {
            frames: self.inner.frames_written.load(Relaxed),
            transactions: self.inner.transactions_written.load(Relaxed),
        }
    }

    /// The highest LSN this handle has applied.
    pub fn applied_lsn(&self) -> Result<u64> {
        self.inner.catch_up()?;
        Ok(self.inner.state.read().applied_lsn)
    }

    /// The last failure of the work a commit does after it is durable (the
    /// automatic checkpoint, on the committing thread or the checkpoint thread,
    /// or preallocating the next segment), if the latest attempt failed. The
    /// commit itself stayed durable; both are retried after the next commit.
    pub fn last_checkpoint_error(&self) -> Option<String> {
        self.inner.checkpoint_error.lock().clone()
    }

    pub fn is_poisoned(&self) -> bool {
        self.inner.wal.is_poisoned()
    }

    /// Registers a listener for committed changes (see [`ChangeListener`]). It
    /// lives as long as the shared handle does.
    pub fn add_change_listener(&self, l: Arc<dyn ChangeListener>) {
        self.inner.listeners.write().push(l);
    }

    /// A value of type `T` shared by every handle on this store in this process,
    /// made by `init` the first time it is asked for (how the `got` layer keeps one
    /// entity cache per open store).
    pub fn extension<T: Send + Sync + 'static>(&self, init: impl FnOnce(&Store) -> T) -> Arc<T> {
        let id = std::any::TypeId::of::<T>();
        if let Some(v) = self.inner.extensions.lock().get(&id) {
            return v.clone().downcast::<T>().expect("keyed by type");
        }
        // Made outside the map's lock: `init` may register listeners.
        let made = Arc::new(init(self));
        let mut map = self.inner.extensions.lock();
        let v = map.entry(id).or_insert_with(|| made.clone());
        v.clone().downcast::<T>().expect("keyed by type")
    }

    /// Live entities and edges by kind, and what history holds (every version of
    /// every key). Reads every key: cost proportional to the store.
    pub fn content_stats(&self) -> Result<ContentStats> {
        self.inner.catch_up()?;
        self.inner.ensure_derived()?;
        let st = self.inner.state.read();
        let mut out = ContentStats::default();
        // Streamed, not collected: memory stays flat however large the store.
        for item in st.iter_prefix(b"e", u64::MAX) {
            let (_, (_, v)) = item?;
            let r: EntityRecord = model::decode(&v, "entity record")?;
            if !r.deleted {
                *out.entities_by_kind.entry(r.kind).or_default() += 1;
            }
        }
        for item in st.iter_prefix(b"o", u64::MAX) {
            let (k, (_, v)) = item?;
            if model::decode::<EdgeRecord>(&v, "edge record")?.present {
                if let Some((_, kind, _)) = model::edge_of_key(&k) {
                    *out.edges_by_kind.entry(kind).or_default() += 1;
                }
            }
        }
        // History is what entities and edges keep; derived keys (indexes) are
        // counted apart.
        let mut count = |key: &[u8], n: usize, bytes: u64| {
            if key.first() == Some(&b'x') {
                out.index_versions += n as u64;
                out.index_bytes += bytes;
            } else {
                out.history_versions += n as u64;
                out.history_bytes += bytes;
            }
        };
        for r in &st.runs {
            r.scan_prefix(&[], |key, versions| {
                let (n, bytes) = versions.fold((0, 0u64), |(n, b), (_, v)| {
                    (n + 1, b + (v.len() + key.len() + 8) as u64)
                });
                count(key, n, bytes);
            })?;
        }
        for m in st.frozen.as_deref().into_iter().chain([&st.mem]) {
            for (k, vs) in m.iter() {
                let bytes = vs.iter().map(|(_, v)| (v.len() + k.len() + 8) as u64).sum();
                count(k, vs.len(), bytes);
            }
        }
        Ok(out)
    }

    /// Files, sizes and positions, for `got stats`.
    pub fn disk_stats(&self) -> Result<DiskStats> {
        self.inner.catch_up()?;
        // The reader's lock before the state's, as everywhere.
        let rd = self.inner.reader.lock();
        let st = self.inner.state.read();
        let frozen = st.frozen.as_deref();
        Ok(DiskStats {
            checkpoint_lsn: st.manifest.checkpoint_lsn,
            applied_lsn: st.applied_lsn,
            generation: st.manifest.generation,
            runs: st.manifest.runs.clone(),
            wal_tail_bytes: rd.tail_bytes,
            wal_disk_bytes: self.inner.wal.disk_bytes()?,
            delta_keys: st.mem.len() + frozen.map_or(0, MemTable::len),
            delta_bytes: st.mem.approx_bytes() + frozen.map_or(0, MemTable::approx_bytes),
        })
    }
}
