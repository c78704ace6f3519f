//! The store as the `got` layer offers it: the versioned store plus one entity
//! cache per open store, kept exact by the store's change notifications.

pub mod locate;

use crate::{Entity, Options, Result, Value};
use cache::{Cache, CacheConfig, CacheStats};
use std::path::Path;
use std::sync::Arc;
use versioned_store::ChangeListener;

/// A handle on a store (see [`versioned_store::Store`], which it dereferences to
/// for transactions, lists, history and checkpoints). `get` is served from an LRU
/// of decoded entities shared by every handle on the store in this process.
#[derive(Clone, Debug)]
pub struct Store {
    inner: versioned_store::Store,
    cache: Arc<EntityCache>,
}

/// Cached lookups by id (absence included), invalidated for every entity a commit
/// applied in this process writes: its own commits and other processes' alike.
#[derive(Debug)]
pub struct EntityCache {
    cache: Cache<String, Option<Entity>>,
}

impl ChangeListener for EntityCache {
    fn entities_changed(&self, ids: &[&str]) {
        for id in ids {
            self.cache.invalidate(&id.to_string());
        }
    }
    fn everything_changed(&self) {
        self.cache.clear();
    }
}

impl std::ops::Deref for Store {
    type Target = versioned_store::Store;
    fn deref(&self) -> &versioned_store::Store {
        &self.inner
    }
}

/// Rough heap size of a value, for the cache's byte bound.
fn value_bytes(v: &Value) -> usize {
    16 + match v {
        Value::String(s) => s.len(),
        Value::List(l) => l.iter().map(value_bytes).sum(),
        Value::Map(m) => m.iter().map(|(k, v)| k.len() + value_bytes(v)).sum(),
        _ => 0,
    }
}

fn entity_bytes(e: &Option<Entity>) -> usize {
    64 + e.as_ref().map_or(0, |e| {
        e.id.len()
            + e.kind.len()
            + e.props
                .iter()
                .map(|(k, v)| k.len() + value_bytes(v))
                .sum::<usize>()
    })
}

fn with_indexes(mut opts: Options) -> Options {
    if opts.deriver.is_none() {
        opts.deriver = Some(crate::index::default_deriver());
    }
    opts
}

/// Checks a store like [`versioned_store::verify`], and its indexes against a
/// rebuild from the entities.
pub fn verify(vfs: Arc<dyn wal::Vfs>, dir: &Path) -> Result<versioned_store::VerifyReport> {
    verify_indexes(vfs, dir, crate::index::default_deriver())
}

/// [`verify`], reporting progress (see [`versioned_store::verify_with_progress`]).
pub fn verify_with_progress(
    vfs: Arc<dyn wal::Vfs>,
    dir: &Path,
    progress: versioned_store::Progress<'_>,
) -> Result<versioned_store::VerifyReport> {
    versioned_store::verify_with_progress(vfs, dir, Some(crate::index::default_deriver()), progress)
}

/// [`verify`] for a store whose indexes are `deriver`'s (declared properties
/// beyond the defaults, see [`crate::index::IndexDeriver::with_declared`]).
pub fn verify_indexes(
    vfs: Arc<dyn wal::Vfs>,
    dir: &Path,
    deriver: Arc<crate::index::IndexDeriver>,
) -> Result<versioned_store::VerifyReport> {
    versioned_store::verify_with(vfs, dir, Some(deriver))
}

impl Store {
    fn wrap(inner: versioned_store::Store) -> Store {
        let cache = inner
            .extension(|s| {
                let c = Arc::new(EntityCache {
                    cache: Cache::new(CacheConfig::default()),
                });
                s.add_change_listener(c.clone());
                c
            })
            .as_ref()
            .clone();
        Store { inner, cache }
    }

    /// Opens (see [`versioned_store::Store::open`]), maintaining got's indexes
    /// unless `opts.deriver` names another deriver.
    pub fn open(path: impl AsRef<Path>, opts: Options) -> Result<Store> {
        Ok(Store::wrap(versioned_store::Store::open(
            path,
            with_indexes(opts),
        )?))
    }

    /// Opens on any `Vfs` (see [`versioned_store::Store::open_with_vfs`]).
    pub fn open_with_vfs(
        vfs: Arc<dyn wal::Vfs>,
        path: impl AsRef<Path>,
        opts: Options,
    ) -> Result<Store> {
        Ok(Store::wrap(versioned_store::Store::open_with_vfs(
            vfs,
            path,
            with_indexes(opts),
        )?))
    }

    /// The same store, writing as `actor`.
    pub fn with_actor(&self, actor: impl Into<String>) -> Store {
        Store {
            inner: self.inner.with_actor(actor),
            cache: self.cache.clone(),
        }
    }

    /// The latest committed version of an entity: catches up with every durable
    /// commit, then answers from the cache or fills it.
    pub fn get(&self, id: &str) -> Result<Option<Entity>> {
        self.inner.refresh()?;
        let epoch = self.cache.cache.epoch();
        if let Some(hit) = self.cache.cache.get(&id.to_string()) {
            return Ok((*hit).clone());
        }
        let v = self.inner.get_applied(id)?;
        let bytes = entity_bytes(&v);
        self.cache
            .cache
            .fill(id.to_string(), Arc::new(v.clone()), bytes, epoch);
        Ok(v)
    }

    /// Hits, misses, evictions and size of this store's entity cache.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.cache.stats()
    }

    /// The underlying versioned store handle.
    pub fn versioned(&self) -> &versioned_store::Store {
        &self.inner
    }
}
