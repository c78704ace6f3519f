//! The store: open, catch-up, the commit pipeline, checkpoints and compaction.

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

/// How a store is opened.
#[derive(Clone, Debug)]
pub struct Options {
    pub durability: Durability,
    /// How long a writer waits for the lock (default 10 s, `GOT_LOCK_TIMEOUT`).
    pub lock_timeout: Duration,
    pub segment_size_bytes: u64,
    pub max_frame_bytes: usize,
    /// A checkpoint runs once the WAL tail since the last one passes this size.
    pub checkpoint_wal_bytes: u64,
    /// … or once it holds more than this many transactions (default 4096).
    /// Every process that opens the store replays the tail, and one that reads an
    /// index derives the tail's index entries (about 5–10 µs a transaction): a
    /// lower bound suits stores opened by many short-lived processes (the CLI
    /// uses 256), a higher one a long-lived process with many small commits
    /// (each checkpoint costs a few syncs).
    pub checkpoint_transactions: u64,
    /// A hard bound on live runs (compaction is size-tiered and keeps about
    /// log2(store / delta) runs; beyond this many it merges the newest to fit).
    pub max_runs: usize,
    /// `Store::transaction` re-runs its closure this many times on `Conflict`.
    pub max_retries: u32,
    /// The actor recorded on every write (default: `GOT_AGENT`, else the user name).
    pub actor: Option<String>,
    /// Create the store if the directory holds none.
    pub create_if_missing: bool,
    /// No lock, never writes or truncates; sees durable data.
    pub read_only: bool,
    /// Checkpoint automatically when the WAL tail passes `checkpoint_wal_bytes`.
    pub auto_checkpoint: bool,
    /// Maintains derived entries (indexes) as entities change; `None`: none.
    pub deriver: Option<Arc<dyn Deriver>>,
    /// The wall clock that transactions stamp their records and entities with
    /// and that the layers above read for leases and expiry ([`Store::now_ms`]);
    /// `None`: the system clock. Tests set a [`crate::ManualClock`] to move time
    /// instead of sleeping. (Handles that `Store::open` shares in one process
    /// share the first opener's clock.)
    pub clock: Option<Arc<dyn crate::Clock>>,
}

/// Derives entries (index keys, tag `x`) from entity changes. Implemented above
/// this crate (by the `got` layer, with the `indexer`). Derived entries are never
/// logged: every process derives them as it applies commits, and checkpoints write
/// them into runs with the entities.
pub trait Deriver: Send + Sync + std::fmt::Debug + std::any::Any {
    /// Which derived data this is; runs record it, and a store whose runs hold
    /// another version has its derived entries rebuilt from the entities.
    fn version(&self) -> u32;
    /// Keys to remove and keys to add (each starting with `x`) when entity `id`
    /// goes from `old` to `new`.
    fn entity_changed(
        &self,
        id: &str,
        old: Option<&crate::Entity>,
        new: Option<&crate::Entity>,
    ) -> KeyChanges;

    /// After a whole transaction was applied at `lsn` (`keys`: what it wrote),
    /// keys to remove and add for entries that depend on several entities (a task
    /// is ready only while its dependencies are completed). `view` reads the state
    /// at any LSN, so `lsn - 1` is the state before.
    fn transaction_applied(
        &self,
        view: &dyn StateView,
        lsn: u64,
        keys: &[Vec<u8>],
    ) -> Result<KeyChanges> {
        let _ = (view, lsn, keys);
        Ok((Vec::new(), Vec::new()))
    }

    /// Every entry that spans entities, made afresh as of `lsn` (rebuilds, verify).
    fn all_cross_entries(&self, view: &dyn StateView, lsn: u64) -> Result<Vec<Vec<u8>>> {
        let _ = (view, lsn);
        Ok(Vec::new())
    }
}

/// Derived keys to remove and to add.
pub type KeyChanges = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// Reads of the state at a given LSN, for derivers.
pub trait StateView {
    fn entity(&self, id: &str, lsn: u64) -> Result<Option<crate::Entity>>;
    /// [`StateView::entity`], shared: a view may hand out one decoded copy to
    /// every caller (derivation decodes each entity of a transaction once).
    fn entity_shared(&self, id: &str, lsn: u64) -> Result<Option<Arc<crate::Entity>>> {
        Ok(self.entity(id, lsn)?.map(Arc::new))
    }
    /// The other ends of `id`'s live edges of `kind` (out: targets; in: sources).
    fn neighbors(
        &self,
        id: &str,
        dir: crate::Direction,
        kind: &str,
        lsn: u64,
    ) -> Result<Vec<String>>;
    /// Ids of every live entity.
    fn entity_ids(&self, lsn: u64) -> Result<Vec<String>>;
}

impl StateView for State {
    fn entity(&self, id: &str, lsn: u64) -> Result<Option<crate::Entity>> {
        match self.get(&model::entity_key(id), lsn)? {
            Some((_, b)) => entity_of(id, Some(&b)),
            None => Ok(None),
        }
    }
    fn neighbors(
        &self,
        id: &str,
        dir: crate::Direction,
        kind: &str,
        lsn: u64,
    ) -> Result<Vec<String>> {
        let tags: &[u8] = match dir {
            crate::Direction::Out => b"o",
            crate::Direction::In => b"i",
            crate::Direction::Both => b"oi",
        };
        let mut out = Vec::new();
        for &tag in tags {
            let mut prefix = model::edge_prefix(tag, id);
            prefix.extend_from_slice(kind.as_bytes());
            prefix.push(0);
            for (k, (_, v)) in self.scan_prefix(&prefix, lsn)? {
                if model::decode::<EdgeRecord>(&v, "edge record")?.present {
                    if let Some((_, _, _, other)) = model::split_edge_key(&k) {
                        out.push(other);
                    }
                }
            }
        }
        Ok(out)
    }
    fn entity_ids(&self, lsn: u64) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for (k, (_, v)) in self.scan_prefix(b"e", lsn)? {
            if !model::decode::<EntityRecord>(&v, "entity record")?.deleted {
                out.push(String::from_utf8_lossy(&k[1..]).into_owned());
            }
        }
        Ok(out)
    }
}

/// Value of a present derived key (an absent one is `DERIVED_ABSENT`).
pub const DERIVED_PRESENT: &[u8] = &[1];
pub const DERIVED_ABSENT: &[u8] = &[0];

/// The value of a derived key as the delta holds it: one shared allocation for
/// every present (or absent) key rather than one each.
fn derived_value(present: bool) -> Arc<[u8]> {
    static PRESENT: std::sync::LazyLock<Arc<[u8]>> =
        std::sync::LazyLock::new(|| Arc::from(DERIVED_PRESENT));
    static ABSENT: std::sync::LazyLock<Arc<[u8]>> =
        std::sync::LazyLock::new(|| Arc::from(DERIVED_ABSENT));
    if present {
        PRESENT.clone()
    } else {
        ABSENT.clone()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Immediate,
            lock_timeout: wal::lock::lock_timeout_from_env(),
            segment_size_bytes: wal::segment::DEFAULT_SEGMENT_BYTES,
            max_frame_bytes: wal::frame::DEFAULT_MAX_FRAME_BYTES,
            checkpoint_wal_bytes: 1 << 20,
            checkpoint_transactions: 4096,
            max_runs: 16,
            max_retries: 10,
            actor: None,
            create_if_missing: false,
            read_only: false,
            auto_checkpoint: true,
            deriver: None,
            clock: None,
        }
    }
}

/// The default actor: `GOT_AGENT`, else the user name, else "unknown".
pub fn default_actor() -> String {
    for var in ["GOT_AGENT", "USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var) {
            if !v.trim().is_empty() {
                return v.trim().to_string();
            }
        }
    }
    "unknown".into()
}

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

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish()
    }
}

type Registry = Mutex<HashMap<(PathBuf, bool), Weak<Inner>>>;
static REGISTRY: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();

pub fn random_u64() -> u64 {
    wal::segment::random_u64()
}

pub(crate) fn now_ms() -> i64 {
    wal::log::now_ms() as i64
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
                    entity: r.to_entity(id),
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
    pub fn checkpoint(&self) -> Result<CheckpointInfo> {
        match self.inner.checkpoint() {
            Err(_) if self.inner.heal_derived()? => self.inner.checkpoint(),
            r => r,
        }
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
    /// automatic checkpoint, or preallocating the next segment), if the latest
    /// attempt failed. The commit itself stayed durable; both are retried after the
    /// next commit.
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
        for (k, vs) in st.mem.iter() {
            let bytes = vs.iter().map(|(_, v)| (v.len() + k.len() + 8) as u64).sum();
            count(k, vs.len(), bytes);
        }
        Ok(out)
    }

    /// Files, sizes and positions, for `got stats`.
    pub fn disk_stats(&self) -> Result<DiskStats> {
        self.inner.catch_up()?;
        let st = self.inner.state.read();
        let rd = self.inner.reader.lock();
        Ok(DiskStats {
            checkpoint_lsn: st.manifest.checkpoint_lsn,
            applied_lsn: st.applied_lsn,
            generation: st.manifest.generation,
            runs: st.manifest.runs.clone(),
            wal_tail_bytes: rd.tail_bytes,
            wal_disk_bytes: self.inner.wal.disk_bytes()?,
            delta_keys: st.mem.len(),
            delta_bytes: st.mem.approx_bytes(),
        })
    }

    pub(crate) fn commit_pending(&self, p: Pending) -> Result<u64> {
        let inner = &self.inner;
        let r = inner.commits.submit(p, |batch| inner.run_batch(batch));
        if r.is_ok() && inner.opts.auto_checkpoint && !inner.opts.read_only {
            let tail_bytes = inner.reader.lock().tail_bytes;
            let tail_transactions = {
                let st = inner.state.read();
                st.applied_lsn.saturating_sub(st.manifest.checkpoint_lsn)
            };
            let due = tail_bytes > inner.opts.checkpoint_wal_bytes
                || tail_transactions > inner.opts.checkpoint_transactions;
            if due {
                let res = inner.checkpoint();
                *inner.checkpoint_error.lock() = res.err().map(|e| e.to_string());
            }
            let cur = inner.reader.lock().cursor;
            if let Err(e) = inner.wal.ensure_preallocated(&cur) {
                // Not fatal: rotation creates the segment itself if none is ready.
                *inner.checkpoint_error.lock() = Some(format!("preallocation: {e}"));
            }
        }
        r
    }
}

/// [`init`], where another process winning the race to create it is fine.
fn init_if_missing(vfs: &dyn Vfs, dir: &Path, opts: &Options) -> Result<()> {
    match init_with(vfs, dir, opts) {
        Err(Error::AlreadyExists(_)) => Ok(()),
        r => r,
    }
}

/// Creates a new, empty store in `dir` (which may exist but must hold no store).
pub fn init(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    init_with(vfs, dir, &Options::default())
}

/// [`init`] with options (the first segment's size comes from them).
pub fn init_with(vfs: &dyn Vfs, dir: &Path, opts: &Options) -> Result<()> {
    // The store's directory (and any parent it needs) must survive a power loss
    // with what is synced inside it.
    wal::create_dir_durable(vfs, dir).map_err(io_at(dir))?;
    // Two racing inits: the lock orders them and the second finds CURRENT.
    let lock = ProcessLock::open(vfs, dir)?;
    let _held = lock.acquire(wal::lock::lock_timeout_from_env())?;
    if vfs.exists(&dir.join("CURRENT")).map_err(io_at(dir))? {
        return Err(Error::AlreadyExists(dir.to_path_buf()));
    }
    let mut store_id = [0u8; 16];
    store_id[..8].copy_from_slice(&random_u64().to_le_bytes());
    store_id[8..].copy_from_slice(&random_u64().to_le_bytes());
    for sub in ["runs", "backups", "quarantine"] {
        let p = dir.join(sub);
        vfs.create_dir_all(&p).map_err(io_at(&p))?;
    }
    Wal::create(
        vfs,
        dir,
        store_id,
        &WalOptions {
            segment_size_bytes: opts.segment_size_bytes,
            ..WalOptions::default()
        },
    )?;
    // CURRENT last: its presence is what makes the directory a store.
    manifest::write(
        vfs,
        dir,
        &Manifest {
            store_id,
            generation: 0,
            checkpoint_lsn: 0,
            runs: Vec::new(),
            created_at_ms: crate::clock::now_ms(opts.clock.as_ref()),
            wal_hint: None,
        },
    )
}

fn open_runs(vfs: &dyn Vfs, dir: &Path, m: &Manifest, reuse: &[Arc<Run>]) -> Result<Vec<Arc<Run>>> {
    let runs_dir = dir.join("runs");
    m.runs
        .iter()
        .map(|meta| {
            if let Some(r) = reuse.iter().find(|r| r.meta == *meta) {
                return Ok(r.clone());
            }
            Ok(Arc::new(Run::open(vfs, &runs_dir, meta, m.store_id)?))
        })
        .collect()
}

fn is_not_found(e: &Error) -> bool {
    match e {
        Error::Wal(wal::Error::Io { source, .. }) => source.kind() == std::io::ErrorKind::NotFound,
        Error::Wal(wal::Error::BadFile { detail, .. }) => detail.starts_with("no segment holds"),
        _ => false,
    }
}

impl Inner {
    fn open(vfs: Arc<dyn Vfs>, dir: &Path, opts: Options) -> Result<Inner> {
        // CURRENT may move (a checkpoint elsewhere) while we open: retry.
        let mut attempt = 0;
        let marker = dir.join(crate::backup::RESTORING);
        if vfs.exists(&marker).map_err(io_at(&marker))? {
            let name = vfs
                .open(&marker, wal::OpenMode::Read)
                .and_then(|f| f.read_all())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            return Err(Error::Invalid(format!(
                "{}: a restore of backup {name} was interrupted; run `got backup restore {name}` to finish it",
                dir.display()
            )));
        }
        let (m, runs, wal, cursor) = loop {
            attempt += 1;
            let r = (|| {
                let m = manifest::read(vfs.as_ref(), dir)?;
                let runs = open_runs(vfs.as_ref(), dir, &m, &[])?;
                let wal = Wal::open(
                    vfs.clone(),
                    dir,
                    m.store_id,
                    WalOptions {
                        segment_size_bytes: opts.segment_size_bytes,
                        max_frame_bytes: opts.max_frame_bytes,
                        durability: opts.durability,
                    },
                    !opts.read_only,
                )?;
                wal.set_generation(m.generation);
                let cursor = wal.position_from(m.checkpoint_lsn, m.wal_position_hint())?;
                Ok((m, runs, wal, cursor))
            })();
            match r {
                Err(e) if attempt < 20 && is_not_found(&e) => continue,
                r => break r?,
            }
        };
        let lock = if opts.read_only {
            None
        } else {
            Some(ProcessLock::open(vfs.as_ref(), dir)?)
        };
        let inner = Inner {
            store_id: m.store_id,
            reader: Mutex::new(ReaderState {
                cursor,
                generation: m.generation,
                tail_bytes: 0,
            }),
            state: RwLock::new(State {
                applied_lsn: m.checkpoint_lsn,
                manifest: m,
                runs,
                mem: MemTable::default(),
                underived: Vec::new(),
            }),
            vfs,
            dir: dir.to_path_buf(),
            opts,
            wal,
            lock,
            commits: GroupCommit::default(),
            checkpoint_error: Mutex::new(None),
            listeners: RwLock::new(Vec::new()),
            extensions: Mutex::new(HashMap::new()),
            checkpointing: Mutex::new(()),
            frames_written: Default::default(),
            transactions_written: Default::default(),
        };
        inner.rebuild_derived_if_stale()?;
        if let Some(lock) = &inner.lock {
            // Recovery by the lock holder: cut a torn tail, refuse mid-log damage.
            let held = lock.acquire(inner.opts.lock_timeout)?;
            inner.sync_with_log(&held)?;
            inner.remove_dead_temporaries();
        } else {
            inner.catch_up()?;
        }
        Ok(inner)
    }

    /// Removes temporary files (`<name>.<pid>.<random>.tmp`) left by processes that
    /// died mid-write: a half-written preallocation is 8 MiB of waste. Files of
    /// live processes (this one included) are left alone.
    fn remove_dead_temporaries(&self) {
        for sub in ["", "wal", "runs"] {
            let d = if sub.is_empty() {
                self.dir.clone()
            } else {
                self.dir.join(sub)
            };
            let Ok(names) = self.vfs.list_dir(&d) else {
                continue;
            };
            for n in names.iter().filter(|n| n.ends_with(".tmp")) {
                let mut parts = n.rsplit('.');
                let pid = parts.nth(2).and_then(|p| p.parse::<u32>().ok());
                let dead = pid.is_some_and(|p| {
                    p != std::process::id() && !Path::new(&format!("/proc/{p}")).exists()
                });
                if dead {
                    // Best effort: a leftover temporary file is waste, not damage.
                    let _ = self.vfs.remove_file(&d.join(n));
                }
            }
        }
    }

    /// After a read failed: when the failure was a damaged index block (the run
    /// marked itself), rebuilds the derived entries and says so (`true`: retry).
    pub(crate) fn heal_derived(&self) -> Result<bool> {
        if !self.state.read().runs.iter().any(|r| r.derived_damaged()) {
            return Ok(false);
        }
        self.rebuild_derived_if_stale()?;
        Ok(true)
    }

    pub(crate) fn derived_version(&self) -> u32 {
        self.opts.deriver.as_ref().map_or(0, |d| d.version())
    }

    /// When some run lacks this process's derived entries (a store made before
    /// them, or by a process without them), rebuilds them from the entities into
    /// the delta, at the checkpoint LSN. The next checkpoint merges every run, so
    /// the rebuilt entries become part of the runs. Logged as a warning on stderr:
    /// it costs a scan of the store.
    ///
    /// The same when a run's index blocks were found damaged: that run's derived
    /// keys are no longer read, and the rebuild puts the full set in the delta;
    /// the next checkpoint merges every run, leaving the damaged blocks behind.
    fn rebuild_derived_if_stale(&self) -> Result<()> {
        let Some(d) = &self.opts.deriver else {
            return Ok(());
        };
        let mut st = self.state.write();
        derive_underived(&mut st, d.as_ref())?;
        let damaged: Vec<String> = st
            .runs
            .iter()
            .filter(|r| r.derived_damaged())
            .map(|r| r.meta.name.clone())
            .collect();
        if damaged.is_empty() && st.runs.iter().all(|r| r.derived_version == d.version()) {
            return Ok(());
        }
        let ckpt = st.manifest.checkpoint_lsn;
        let want = derive_all(&st, d.as_ref(), ckpt)?;
        let have = derived_present(&st, ckpt)?;
        let (mut added, mut removed) = (0usize, 0usize);
        for k in have.difference(&want) {
            if st.mem.versions(k).is_none() {
                st.mem.insert(k.clone(), ckpt, derived_value(false));
                removed += 1;
            }
        }
        for k in want.difference(&have) {
            if st.mem.versions(k).is_none() {
                st.mem.insert(k.clone(), ckpt, derived_value(true));
                added += 1;
            }
        }
        if !damaged.is_empty() {
            eprintln!(
                "got: warning: index blocks of run {} in {} are damaged; rebuilt {added} index entries from the entities (the next checkpoint rewrites the run)",
                damaged.join(", "),
                self.dir.display()
            );
        } else if added + removed > 0 {
            eprintln!(
                "got: warning: rebuilt {added} index entries (and dropped {removed} stale ones) in {}: runs without current indexes; the next checkpoint stores them",
                self.dir.display()
            );
        }
        Ok(())
    }

    /// Makes the derived entries of every applied transaction (see
    /// [`State::underived`]); called before derived keys are read or written out.
    pub(crate) fn ensure_derived(&self) -> Result<()> {
        let Some(d) = &self.opts.deriver else {
            return Ok(());
        };
        if self.state.read().underived.is_empty() {
            return Ok(());
        }
        derive_underived(&mut self.state.write(), d.as_ref())
    }

    /// Applies frames (idempotently: LSNs at or below `applied_lsn` are skipped).
    fn apply(&self, rd: &mut ReaderState, frames: Vec<wal::Frame>) -> Result<()> {
        if frames.is_empty() {
            return Ok(());
        }
        let mut decoded = Vec::with_capacity(frames.len());
        for f in &frames {
            rd.tail_bytes += f.payload.len() as u64;
            decoded.push((f.first_lsn, record::decode_batch(&f.payload, f.count)?));
        }
        let mut changed: Vec<String> = Vec::new();
        {
            let mut st = self.state.write();
            for (first, records) in decoded {
                for (i, rec) in records.into_iter().enumerate() {
                    let lsn = first + i as u64;
                    if lsn <= st.applied_lsn {
                        continue;
                    }
                    let derives = self.opts.deriver.is_some();
                    let mut written =
                        Vec::with_capacity(if derives { rec.writes.len() } else { 0 });
                    for (k, v) in rec.writes {
                        if k.first() == Some(&b'e') {
                            changed.push(String::from_utf8_lossy(&k[1..]).into_owned());
                        }
                        if derives {
                            written.push(k.clone());
                        }
                        st.mem.insert(k, lsn, Arc::from(v));
                    }
                    if derives {
                        // Derived later, when first needed (see `State::underived`).
                        st.underived.push((lsn, written));
                    }
                    st.applied_lsn = lsn;
                }
            }
        }
        if !changed.is_empty() {
            let ids: Vec<&str> = changed.iter().map(String::as_str).collect();
            for l in self.listeners.read().iter() {
                l.entities_changed(&ids);
            }
        }
        Ok(())
    }

    /// Loads a newer CURRENT: its runs, and drops the delta they now hold.
    fn reload(&self, rd: &mut ReaderState) -> Result<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let r = (|| {
                let m = manifest::read(self.vfs.as_ref(), &self.dir)?;
                if m.generation == rd.generation {
                    return Ok(None);
                }
                let reuse = self.state.read().runs.clone();
                let runs = open_runs(self.vfs.as_ref(), &self.dir, &m, &reuse)?;
                let cursor = if rd.cursor.next_lsn <= m.checkpoint_lsn {
                    Some(
                        self.wal
                            .position_from(m.checkpoint_lsn, m.wal_position_hint())?,
                    )
                } else {
                    None
                };
                Ok(Some((m, runs, cursor)))
            })();
            let (m, runs, cursor) = match r {
                Err(e) if attempt < 20 && is_not_found(&e) => continue,
                Err(e) => return Err(e),
                Ok(None) => return Ok(()),
                Ok(Some(x)) => x,
            };
            let mut st = self.state.write();
            let restored = crate::backup::restore_count(m.generation)
                != crate::backup::restore_count(rd.generation);
            let skipped = restored || m.checkpoint_lsn > st.applied_lsn;
            if restored {
                // The store was restored from a backup: history went back to the
                // backup's LSN; nothing applied from the old log stands.
                st.mem = MemTable::default();
                st.underived.clear();
                st.applied_lsn = m.checkpoint_lsn;
                self.wal.rewind(m.checkpoint_lsn);
                rd.cursor = self.wal.position(m.checkpoint_lsn)?;
                rd.tail_bytes = 0;
            } else {
                st.mem.prune_through(m.checkpoint_lsn);
                // The new runs hold the derived entries up to their checkpoint.
                let ckpt = m.checkpoint_lsn;
                st.underived.retain(|(l, _)| *l > ckpt);
                st.applied_lsn = st.applied_lsn.max(m.checkpoint_lsn);
            }
            rd.generation = m.generation;
            self.wal.set_generation(m.generation);
            if let (Some(c), false) = (cursor, restored) {
                rd.cursor = c;
                rd.tail_bytes = 0;
            }
            st.manifest = m;
            st.runs = runs;
            drop(st);
            if skipped {
                for l in self.listeners.read().iter() {
                    l.everything_changed();
                }
            }
            self.rebuild_derived_if_stale()?;
            return Ok(());
        }
    }

    /// Lock-free catch-up to the published durable LSN.
    pub(crate) fn catch_up(&self) -> Result<()> {
        let mut rd = self.reader.lock();
        let published = self.wal.published()?;
        if published.generation != rd.generation {
            self.reload(&mut rd)?;
        }
        for _ in 0..20 {
            let mut frames = Vec::new();
            let stop = self
                .wal
                .read_committed(published, &mut rd.cursor, &mut frames)?;
            self.apply(&mut rd, frames)?;
            if stop != ScanStop::MissingSegment {
                return Ok(());
            }
            self.reload(&mut rd)?;
        }
        Ok(())
    }

    /// Under the lock: recover and apply everything in the log; returns the write
    /// position (the end of the log).
    fn sync_with_log(&self, held: &LockHeld) -> Result<Cursor> {
        let mut rd = self.reader.lock();
        // DURABLE is not synced, so a power loss may leave it garbled: the lock
        // holder then asks CURRENT directly, and recovery rewrites DURABLE.
        let published = match self.wal.published() {
            Ok(p) => Some(p),
            Err(e @ wal::Error::TooNew { .. }) => return Err(e.into()),
            Err(_) => None,
        };
        if published.is_none_or(|p| p.generation != rd.generation) {
            self.reload(&mut rd)?;
        }
        for _ in 0..20 {
            let mut frames = Vec::new();
            let complete = self
                .wal
                .recover(held, &mut rd.cursor, &mut frames, published)?;
            self.apply(&mut rd, frames)?;
            if complete {
                return Ok(rd.cursor);
            }
            self.reload(&mut rd)?;
        }
        Err(Error::Invalid(
            "could not find the end of the log after 20 tries".into(),
        ))
    }

    fn run_batch(&self, batch: Vec<Pending>) -> Vec<Result<u64>> {
        match self.try_batch(&batch) {
            Ok(v) => v,
            Err(e) => batch.iter().map(|_| Err(dup_error(&e))).collect(),
        }
    }

    fn try_batch(&self, batch: &[Pending]) -> Result<Vec<Result<u64>>> {
        let lock = self.lock.as_ref().ok_or(Error::ReadOnly)?;
        // A poisoned handle may be keeping the lock on purpose; say why it refuses.
        if self.wal.is_poisoned() {
            return Err(wal::Error::Poisoned.into());
        }
        let held = lock.acquire(self.opts.lock_timeout)?;
        let mut wcur = self.sync_with_log(&held)?;
        let mut results = Vec::with_capacity(batch.len());
        let mut accepted: Vec<&Pending> = Vec::new();
        {
            let st = self.state.read();
            let mut overlay: BTreeMap<Vec<u8>, (u64, Arc<[u8]>)> = BTreeMap::new();
            for p in batch {
                match validate(&st, &overlay, p) {
                    Ok(()) => {
                        let lsn = wcur.next_lsn + accepted.len() as u64;
                        for (k, v) in &p.writes {
                            overlay.insert(k.clone(), (lsn, v.clone()));
                        }
                        accepted.push(p);
                        results.push(Ok(lsn));
                    }
                    Err(e) => results.push(Err(e)),
                }
            }
        }
        if accepted.is_empty() {
            return Ok(results);
        }
        let records: Vec<&[u8]> = accepted.iter().map(|p| p.record.as_slice()).collect();
        let payload = record::encode_batch(&records);
        let appended = self
            .wal
            .append(&held, &mut wcur, &payload, accepted.len() as u32);
        let first = match appended {
            Ok(first) => {
                use std::sync::atomic::Ordering::Relaxed;
                self.frames_written.fetch_add(1, Relaxed);
                self.transactions_written
                    .fetch_add(accepted.len() as u64, Relaxed);
                first
            }
            Err(e) => {
                if self.wal.must_keep_lock() {
                    // The failed frame could not be erased: keep others from reading
                    // it until this handle is dropped.
                    held.keep();
                }
                let e = Error::from(e);
                return Ok(results
                    .into_iter()
                    .map(|r| r.and_then(|_| Err(dup_error(&e))))
                    .collect());
            }
        };
        let mut rd = self.reader.lock();
        self.apply(
            &mut rd,
            vec![wal::Frame {
                first_lsn: first,
                count: accepted.len() as u32,
                payload,
            }],
        )?;
        if rd.cursor.next_lsn < wcur.next_lsn {
            rd.cursor = wcur;
        }
        Ok(results)
    }

    /// A checkpoint in three steps, so writers wait only for the two short ones:
    /// under the lock, reach the end of the log and take a copy of the delta; without
    /// it, write and verify the run (merging the newest runs when size-tiering says
    /// so); under the lock again, switch CURRENT unless another process checkpointed
    /// meanwhile (then the new run is dropped and nothing changes).
    fn checkpoint(&self) -> Result<CheckpointInfo> {
        let lock = self.lock.as_ref().ok_or(Error::ReadOnly)?;
        if self.wal.is_poisoned() {
            return Err(wal::Error::Poisoned.into());
        }
        let _one_at_a_time = self.checkpointing.lock();
        let runs_dir = self.dir.join("runs");
        // Derive what is already applied before taking the lock, so that other
        // processes' writers wait only for what the catch-up below adds.
        self.ensure_derived()?;
        let (old, ckpt, hint, delta, inputs) = {
            let held = lock.acquire(self.opts.lock_timeout)?;
            let wcur = self.sync_with_log(&held)?;
            if self.opts.durability == Durability::None {
                // Runs must never hold what the log could still lose.
                self.wal.sync_tail(&held, &wcur)?;
            }
            // The run holds derived entries for everything up to the checkpoint.
            self.ensure_derived()?;
            let st = self.state.read();
            let ckpt = st.applied_lsn;
            // Where the log continues after the checkpoint LSN, for opens.
            let hint =
                (wcur.last_lsn() == ckpt && wcur.last_frame > 0).then_some(manifest::WalHint {
                    segment: wcur.segment,
                    last_frame: wcur.last_frame,
                    offset: wcur.offset,
                });
            if ckpt == st.manifest.checkpoint_lsn {
                return Ok(CheckpointInfo {
                    checkpoint_lsn: ckpt,
                    generation: st.manifest.generation,
                    ..Default::default()
                });
            }
            let sizes: Vec<u64> = std::iter::once(st.mem.approx_bytes() as u64)
                .chain(st.runs.iter().map(|r| r.meta.bytes))
                .collect();
            // The delta plus the `merge - 1` newest runs become one run; all of
            // them while some run lacks this process's derived entries (they were
            // rebuilt in memory, and only a run holding them makes that last).
            let merge = if st
                .runs
                .iter()
                .any(|r| r.derived_version != self.derived_version() || r.derived_damaged())
            {
                st.runs.len() + 1
            } else {
                runs_to_merge(&sizes, self.opts.max_runs)
            };
            // Under the lock nothing newer than `ckpt` can be applied: the copy
            // holds exactly the versions at or below it.
            (
                st.manifest.clone(),
                ckpt,
                hint,
                st.mem.clone(),
                st.runs[..merge - 1].to_vec(),
            )
        };
        let merged = inputs.len();
        let gen = old.generation + 1;
        // A random part keeps names unique even if two processes checkpoint the same
        // LSN at once (only one of them can switch CURRENT).
        let name = format!(
            "{ckpt:020}-{gen:08}{}-{:08x}.run",
            if merged > 0 { "m" } else { "" },
            random_u64() as u32
        );
        let new_meta = run::write_run(
            self.vfs.as_ref(),
            &runs_dir,
            &name,
            self.store_id,
            self.derived_version(),
            merge_versions(&inputs, delta),
        )?;
        let held = lock.acquire(self.opts.lock_timeout)?;
        let now = manifest::read(self.vfs.as_ref(), &self.dir)?;
        if now.generation != old.generation {
            // Another process checkpointed meanwhile; its CURRENT stands.
            let p = runs_dir.join(&name);
            self.vfs.remove_file(&p).map_err(io_at(&p))?;
            return Ok(CheckpointInfo {
                checkpoint_lsn: now.checkpoint_lsn,
                generation: now.generation,
                ..Default::default()
            });
        }
        // Commits may have landed while the run was written: publish the end of
        // the log, not the checkpoint LSN, with the new generation.
        let wcur = self.sync_with_log(&held)?;
        let mut runs = vec![new_meta.clone()];
        runs.extend(old.runs.iter().skip(merged).cloned());
        let compacted = merged > 0;
        let m = Manifest {
            store_id: self.store_id,
            generation: old.generation + 1,
            checkpoint_lsn: ckpt,
            runs,
            created_at_ms: old.created_at_ms,
            wal_hint: hint,
        };
        manifest::write(self.vfs.as_ref(), &self.dir, &m)?;
        // From here the new CURRENT is durable; publish its generation.
        self.wal.set_generation(m.generation);
        self.wal.publish(&held, wcur.last_lsn())?;
        {
            let mut rd = self.reader.lock();
            let reuse = self.state.read().runs.clone();
            let runs = open_runs(self.vfs.as_ref(), &self.dir, &m, &reuse)?;
            let mut st = self.state.write();
            st.mem.prune_through(ckpt);
            st.runs = runs;
            st.manifest = m.clone();
            rd.generation = m.generation;
            rd.tail_bytes = 0;
        }
        let retired = self.wal.retire_through(&held, ckpt)?;
        let live: Vec<&str> = m.runs.iter().map(|r| r.name.as_str()).collect();
        let mut removed = false;
        for r in &old.runs {
            if !live.contains(&r.name.as_str()) {
                let p = runs_dir.join(&r.name);
                self.vfs.remove_file(&p).map_err(io_at(&p))?;
                removed = true;
            }
        }
        if removed {
            self.vfs.sync_dir(&runs_dir).map_err(io_at(&runs_dir))?;
        }
        Ok(CheckpointInfo {
            checkpoint_lsn: ckpt,
            generation: m.generation,
            run: Some(new_meta),
            compacted,
            segments_retired: retired,
        })
    }
}

fn entity_of(id: &str, bytes: Option<&[u8]>) -> Result<Option<crate::Entity>> {
    match bytes {
        Some(b) => Ok(model::decode::<EntityRecord>(b, "entity record")?.to_entity(id)),
        None => Ok(None),
    }
}

/// Applies the derived-entry changes of one entity change at `lsn`.
/// Derives the entries of [`State::underived`], oldest first. Each transaction's
/// changes are computed from the versions at its LSN and the one before (which
/// later transactions do not change) before any is inserted, so a read error
/// leaves that transaction and the ones after it waiting, and nothing half-done.
fn derive_underived(st: &mut State, d: &dyn Deriver) -> Result<()> {
    let mut todo = std::mem::take(&mut st.underived).into_iter();
    // Reused from one transaction to the next: growing and freeing large
    // buffers per transaction made the allocator consolidate its free lists
    // over and over (a fifth of the time, measured).
    let mut changes = Vec::new();
    let mut seen = HashMap::new();
    while let Some((lsn, written)) = todo.next() {
        changes.clear();
        seen.clear();
        match derive_transaction(st, d, lsn, &written, &mut changes, &mut seen) {
            Ok(()) => {
                for (k, present) in changes.drain(..) {
                    debug_assert_eq!(k.first(), Some(&b'x'));
                    st.mem.insert(k, lsn, derived_value(present));
                }
            }
            Err(e) => {
                st.underived = std::iter::once((lsn, written)).chain(todo).collect();
                return Err(e);
            }
        }
    }
    Ok(())
}

/// A view of the state for one transaction's derivation: each entity is decoded
/// once per LSN asked, however many times the deriver asks.
struct MemoView<'a> {
    st: &'a State,
    seen: std::cell::RefCell<&'a mut Seen>,
}

/// Entities a [`MemoView`] decoded, by id and LSN asked.
type Seen = HashMap<(String, u64), Option<Arc<crate::Entity>>>;

impl StateView for MemoView<'_> {
    fn entity(&self, id: &str, lsn: u64) -> Result<Option<crate::Entity>> {
        Ok(self.entity_shared(id, lsn)?.map(|e| (*e).clone()))
    }
    fn entity_shared(&self, id: &str, lsn: u64) -> Result<Option<Arc<crate::Entity>>> {
        if let Some(e) = self.seen.borrow().get(&(id.to_string(), lsn)) {
            return Ok(e.clone());
        }
        let e = self.st.entity(id, lsn)?.map(Arc::new);
        self.seen
            .borrow_mut()
            .insert((id.to_string(), lsn), e.clone());
        Ok(e)
    }
    fn neighbors(
        &self,
        id: &str,
        dir: crate::Direction,
        kind: &str,
        lsn: u64,
    ) -> Result<Vec<String>> {
        self.st.neighbors(id, dir, kind, lsn)
    }
    fn entity_ids(&self, lsn: u64) -> Result<Vec<String>> {
        self.st.entity_ids(lsn)
    }
}

/// The derived keys transaction `lsn` (which wrote `written`) removes (`false`)
/// and adds (`true`), in the order to apply them.
fn derive_transaction(
    st: &State,
    d: &dyn Deriver,
    lsn: u64,
    written: &[Vec<u8>],
    changes: &mut Vec<(Vec<u8>, bool)>,
    seen: &mut Seen,
) -> Result<()> {
    let view = MemoView {
        st,
        seen: std::cell::RefCell::new(seen),
    };
    for k in written.iter().filter(|k| k.first() == Some(&b'e')) {
        let id = String::from_utf8_lossy(&k[1..]);
        let old = view.entity_shared(&id, lsn - 1)?;
        let new = view.entity_shared(&id, lsn)?;
        let (removed, added) = d.entity_changed(&id, old.as_deref(), new.as_deref());
        changes.extend(removed.into_iter().map(|k| (k, false)));
        changes.extend(added.into_iter().map(|k| (k, true)));
    }
    let (removed, added) = d.transaction_applied(&view, lsn, written)?;
    changes.extend(removed.into_iter().map(|k| (k, false)));
    changes.extend(added.into_iter().map(|k| (k, true)));
    Ok(())
}

/// Every derived entry, made afresh from the entities as of `lsn`: what the
/// derived keys present in the state must equal.
pub(crate) fn derive_all(
    st: &State,
    d: &dyn Deriver,
    lsn: u64,
) -> Result<std::collections::BTreeSet<Vec<u8>>> {
    derive_all_with(st, d, lsn, &mut |_, _| {})
}

/// [`derive_all`], calling `progress(entities done, entities)` as it goes.
pub(crate) fn derive_all_with(
    st: &State,
    d: &dyn Deriver,
    lsn: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<std::collections::BTreeSet<Vec<u8>>> {
    let mut out = std::collections::BTreeSet::new();
    let entities = st.scan_prefix(b"e", lsn)?;
    let total = entities.len() as u64;
    for (i, (k, (_, v))) in entities.into_iter().enumerate() {
        if i % 1024 == 0 {
            progress(i as u64, total);
        }
        let id = String::from_utf8_lossy(&k[1..]).into_owned();
        if let Some(e) = entity_of(&id, Some(&v))? {
            out.extend(d.entity_changed(&id, None, Some(&e)).1);
        }
    }
    progress(total, total);
    out.extend(d.all_cross_entries(st, lsn)?);
    Ok(out)
}

/// The derived keys present in the state as of `lsn`.
pub(crate) fn derived_present(st: &State, lsn: u64) -> Result<std::collections::BTreeSet<Vec<u8>>> {
    Ok(st
        .scan_prefix(b"x", lsn)?
        .into_iter()
        .filter(|(_, (_, v))| &v[..] == DERIVED_PRESENT)
        .map(|(k, _)| k)
        .collect())
}

/// How many of the newest sources (the delta first, then the runs newest first,
/// with their sizes in `sizes`) a checkpoint merges into its one new run: the
/// newest sources while each next one is at most twice the size gathered so far.
/// Size-tiered: a large old run is rewritten only once the newer ones have grown to
/// match it, so run sizes grow geometrically with age, a store of N bytes has about
/// log2(N / delta) runs, and each byte is rewritten about that many times. Beyond
/// `max_runs` runs, enough of the newest are merged to get back to it.
fn runs_to_merge(sizes: &[u64], max_runs: usize) -> usize {
    let n = sizes.len();
    let mut k = 1;
    let mut acc = sizes[0];
    while k < n && sizes[k] <= acc.saturating_mul(2) {
        acc += sizes[k];
        k += 1;
    }
    k.max((n + 1).saturating_sub(max_runs.max(1)))
}

type Entry = Result<(Vec<u8>, Versions)>;

/// Every version of every key in `runs` (newest first, as a manifest lists them)
/// and the delta, merged in key order as a stream: one block per run in memory,
/// not the whole merge.
fn merge_versions(runs: &[Arc<Run>], mem: MemTable) -> impl Iterator<Item = Entry> {
    // Oldest source first, so concatenated versions come out in LSN order.
    let mut sources: Vec<std::iter::Peekable<Box<dyn Iterator<Item = Entry>>>> = runs
        .iter()
        .rev()
        .map(|r| (Box::new(r.entries()) as Box<dyn Iterator<Item = Entry>>).peekable())
        .collect();
    sources
        .push((Box::new(mem.into_entries().map(Ok)) as Box<dyn Iterator<Item = Entry>>).peekable());
    std::iter::from_fn(move || {
        let mut min: Option<Vec<u8>> = None;
        for s in sources.iter_mut() {
            match s.peek() {
                Some(Err(_)) => return s.next(),
                Some(Ok((k, _))) if min.as_ref().is_none_or(|m| k < m) => min = Some(k.clone()),
                _ => {}
            }
        }
        let key = min?;
        let mut versions: Versions = Vec::new();
        for s in sources.iter_mut() {
            if matches!(s.peek(), Some(Ok((k, _))) if *k == key) {
                if let Some(Ok((_, vs))) = s.next() {
                    versions.extend(vs);
                }
            }
        }
        // Sources hold disjoint LSN ranges; keep the order strict regardless.
        versions.dedup_by_key(|(l, _)| *l);
        Some(Ok((key, versions)))
    })
}

/// The newest value of `key` as of the batch so far: own writes, then earlier
/// members of the batch, then the state.
fn latest(
    st: &State,
    overlay: &BTreeMap<Vec<u8>, (u64, Arc<[u8]>)>,
    own: &BTreeMap<Vec<u8>, Arc<[u8]>>,
    key: &[u8],
) -> Result<Option<Arc<[u8]>>> {
    if let Some(v) = own.get(key) {
        return Ok(Some(v.clone()));
    }
    if let Some((_, v)) = overlay.get(key) {
        return Ok(Some(v.clone()));
    }
    Ok(st.get(key, u64::MAX)?.map(|(_, v)| v))
}

fn alive(v: Option<Arc<[u8]>>) -> Result<bool> {
    match v {
        None => Ok(false),
        Some(b) => Ok(!model::decode::<EntityRecord>(&b, "entity record")?.deleted),
    }
}

fn describe_key(key: &[u8]) -> String {
    match key.first() {
        Some(b'e') => format!("entity {}", String::from_utf8_lossy(&key[1..])),
        _ => match model::edge_of_key(key) {
            Some((f, k, t)) => format!("edge {f} -{k}-> {t}"),
            None => "a key".into(),
        },
    }
}

/// Validates one transaction against the latest state plus the earlier members of
/// its batch: the read set, then the cross-entity invariants.
fn validate(st: &State, overlay: &BTreeMap<Vec<u8>, (u64, Arc<[u8]>)>, p: &Pending) -> Result<()> {
    for (key, seen) in &p.reads {
        let now = match overlay.get(key) {
            Some((l, _)) => *l,
            None => st.latest_lsn(key)?,
        };
        if now != *seen {
            return Err(Error::Conflict(format!(
                "{} changed since this transaction read it (LSN {seen} → {now})",
                describe_key(key)
            )));
        }
    }
    // The invariants are checked on what the transaction leaves, not on the steps
    // it took to get there (it may add an edge and then delete its endpoint).
    for (key, value) in &p.writes {
        match key.first() {
            Some(b'o') => {
                if !model::decode::<EdgeRecord>(value, "edge record")?.present {
                    continue;
                }
                let Some((from, _, to)) = model::edge_of_key(key) else {
                    continue;
                };
                for id in [&from, &to] {
                    if !alive(latest(st, overlay, &p.writes, &model::entity_key(id))?)? {
                        return Err(Error::Conflict(format!(
                            "edge endpoint {id} no longer exists"
                        )));
                    }
                }
            }
            Some(b'e') => {
                if !model::decode::<EntityRecord>(value, "entity record")?.deleted {
                    continue;
                }
                let id = String::from_utf8_lossy(&key[1..]).into_owned();
                check_no_live_edges(st, overlay, p, &id)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// A deleted entity must have no live edge left in the latest state, including
/// edges other transactions added concurrently.
fn check_no_live_edges(
    st: &State,
    overlay: &BTreeMap<Vec<u8>, (u64, Arc<[u8]>)>,
    p: &Pending,
    id: &str,
) -> Result<()> {
    for tag in [b'o', b'i'] {
        let prefix = model::edge_prefix(tag, id);
        let mut keys: Vec<Vec<u8>> = st.scan_prefix(&prefix, u64::MAX)?.into_keys().collect();
        keys.extend(
            overlay
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(k, _)| k.clone()),
        );
        for k in keys {
            if let Some(b) = latest(st, overlay, &p.writes, &k)? {
                if model::decode::<EdgeRecord>(&b, "edge record")?.present {
                    return Err(Error::Conflict(format!(
                        "{} was added concurrently to deleted entity {id}",
                        describe_key(&k)
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Errors are not `Clone`; each member of a failed batch gets an equivalent one.
pub(crate) fn dup_error(e: &Error) -> Error {
    use wal::Error as W;
    let io = |s: &std::io::Error| std::io::Error::new(s.kind(), s.to_string());
    match e {
        Error::Wal(w) => Error::Wal(match w {
            W::Io { path, source } => W::Io {
                path: path.clone(),
                source: io(source),
            },
            W::Corruption {
                file,
                offset,
                detail,
            } => W::Corruption {
                file: file.clone(),
                offset: *offset,
                detail: detail.clone(),
            },
            W::Locked { holder, waited_ms } => W::Locked {
                holder: holder.clone(),
                waited_ms: *waited_ms,
            },
            W::SyncFailed { path, source } => W::SyncFailed {
                path: path.clone(),
                source: io(source),
            },
            W::Poisoned => W::Poisoned,
            W::FrameTooLarge { size, max } => W::FrameTooLarge {
                size: *size,
                max: *max,
            },
            W::TooNew {
                file,
                found,
                supported,
            } => W::TooNew {
                file: file.clone(),
                found: *found,
                supported: *supported,
            },
            W::BadFile { file, detail } => W::BadFile {
                file: file.clone(),
                detail: detail.clone(),
            },
        }),
        Error::NotFound(s) => Error::NotFound(s.clone()),
        Error::Conflict(s) => Error::Conflict(s.clone()),
        Error::Invalid(s) => Error::Invalid(s.clone()),
        Error::NotAStore { path, detail } => Error::NotAStore {
            path: path.clone(),
            detail: detail.clone(),
        },
        Error::AlreadyExists(p) => Error::AlreadyExists(p.clone()),
        Error::CorruptFile { file, detail } => Error::CorruptFile {
            file: file.clone(),
            detail: detail.clone(),
        },
        Error::Decode(s) => Error::Decode(s.clone()),
        Error::ReadOnly => Error::ReadOnly,
        Error::Finished => Error::Finished,
    }
}

/// Encodes a transaction's record (before the lock is taken).
pub(crate) fn encode_record(
    actor: &str,
    time_ms: i64,
    writes: &BTreeMap<Vec<u8>, Arc<[u8]>>,
) -> Vec<u8> {
    model::encode(&TxRecord {
        actor: actor.to_string(),
        time_ms,
        writes: writes
            .iter()
            .map(|(k, v)| (k.clone(), v.to_vec()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::runs_to_merge;

    #[test]
    fn merging_is_size_tiered_and_keeps_the_run_count_bounded() {
        // Under the limit: only the delta is written.
        assert_eq!(runs_to_merge(&[10, 100, 1000], 8), 1);
        // Similar sizes merge even under the limit.
        assert_eq!(runs_to_merge(&[10, 10, 1000], 8), 2);
        // Over it: small new runs merge, the big old one is left alone.
        assert_eq!(runs_to_merge(&[10, 10, 20, 1000], 3), 3);
        // Over it, with nothing size-similar: merge just enough.
        assert_eq!(runs_to_merge(&[1, 100, 10_000, 1_000_000], 3), 2);
        // Everything similar: merge it all.
        assert_eq!(runs_to_merge(&[5, 5, 5, 5], 3), 4);
    }

    #[test]
    fn repeated_checkpoints_rewrite_far_less_than_everything() {
        // Simulate 1,000 checkpoints of equal deltas: the bytes rewritten stay
        // near n log2 n, not n^2, and the run count near log2 n.
        let mut runs: Vec<u64> = Vec::new();
        let mut written = 0u64;
        for _ in 0..1000 {
            let mut sizes = vec![1u64];
            sizes.extend(&runs);
            let k = runs_to_merge(&sizes, 16);
            let merged: u64 = sizes[..k].iter().sum();
            written += merged;
            runs = std::iter::once(merged)
                .chain(runs[k - 1..].iter().copied())
                .collect();
            assert!(runs.len() <= 11, "{} runs: {runs:?}", runs.len());
        }
        assert!(
            written < 1000 * 12,
            "rewrote {written} units for 1000 deltas"
        );
    }
}
