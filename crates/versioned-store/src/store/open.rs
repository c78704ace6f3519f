//! Creating a store and opening one: the directory's files, the runs of the
//! manifest, the process lock and the first catch-up.

use super::*;

/// [`init`], where another process winning the race to create it is fine.
pub(super) fn init_if_missing(vfs: &dyn Vfs, dir: &Path, opts: &Options) -> Result<()> {
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

pub(super) fn open_runs(
    vfs: &dyn Vfs,
    dir: &Path,
    m: &Manifest,
    reuse: &[Arc<Run>],
) -> Result<Vec<Arc<Run>>> {
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

pub(super) fn is_not_found(e: &Error) -> bool {
    match e {
        Error::Wal(wal::Error::Io { source, .. }) => source.kind() == std::io::ErrorKind::NotFound,
        Error::Wal(wal::Error::BadFile { detail, .. }) => detail.starts_with("no segment holds"),
        _ => false,
    }
}

impl Inner {
    pub(super) fn open(vfs: Arc<dyn Vfs>, dir: &Path, opts: Options) -> Result<Inner> {
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
                frozen: None,
                underived: Default::default(),
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
            checkpointer: Default::default(),
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
    pub(super) fn remove_dead_temporaries(&self) {
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
}
