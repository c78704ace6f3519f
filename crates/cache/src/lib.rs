//! got's cache of decoded entities: an LRU bounded in entries and bytes, with an
//! optional time to live, behind one `parking_lot` mutex, counting hits, misses,
//! evictions and invalidations.
//!
//! Exact invalidation: the store invalidates every key a committed transaction
//! wrote, whether the commit was its own or read from the log (another process's).
//! A reader that looked something up before an invalidation must not put its
//! (possibly stale) value back afterwards: every fill carries the invalidation
//! epoch it read under, and a fill from an older epoch than the key's last
//! invalidation is dropped.

use lru::LruCache;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Monotonic time for entry ages, injectable so that a test moves time forward
/// instead of sleeping.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Instant;
}

/// `Instant::now()`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that stands still until [`ManualClock::advance`] moves it.
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    offset: Mutex<Duration>,
}

impl ManualClock {
    pub fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock {
            start: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        })
    }
    pub fn advance(&self, by: Duration) {
        *self.offset.lock() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + *self.offset.lock()
    }
}

/// Bounds of a cache.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    pub max_entries: usize,
    pub max_bytes: usize,
    /// Entries older than this are misses (and dropped). `None`: no expiry.
    pub ttl: Option<Duration>,
    /// What entry ages are measured with (default: [`SystemClock`]).
    pub clock: Arc<dyn Clock>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_entries: 10_000,
            max_bytes: 16 << 20,
            ttl: None,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Counters, for `got stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub invalidations: u64,
    pub entries: usize,
    pub bytes: usize,
}

struct Slot<V> {
    value: Arc<V>,
    bytes: usize,
    at: Instant,
}

struct Inner<K, V> {
    lru: LruCache<K, Slot<V>>,
    bytes: usize,
    /// Bumped by every invalidation.
    epoch: u64,
    /// Key → epoch of its last invalidation, for keys invalidated since the oldest
    /// fill still in flight could have started (pruned when it grows large).
    invalidated_at: HashMap<K, u64>,
    /// Fills older than this epoch are dropped (after a prune of `invalidated_at`).
    floor: u64,
    stats: CacheStats,
}

/// An LRU of shared values.
pub struct Cache<K, V> {
    cfg: CacheConfig,
    inner: Mutex<Inner<K, V>>,
}

impl<K: Hash + Eq + Clone, V> std::fmt::Debug for Cache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("cfg", &self.cfg)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Tracked invalidations kept before the oldest are forgotten (fills older than
/// what was forgotten are then refused: safe, merely a miss).
const MAX_TRACKED_INVALIDATIONS: usize = 65_536;

impl<K: Hash + Eq + Clone, V> Cache<K, V> {
    pub fn new(cfg: CacheConfig) -> Self {
        Cache {
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
                epoch: 0,
                invalidated_at: HashMap::new(),
                floor: 0,
                stats: CacheStats::default(),
            }),
            cfg,
        }
    }

    /// The epoch to pass to [`Cache::fill`] for a value about to be read from the
    /// source of truth.
    pub fn epoch(&self) -> u64 {
        self.inner.lock().epoch
    }

    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        let mut g = self.inner.lock();
        let expired = match (g.lru.get(key), self.cfg.ttl) {
            (Some(slot), Some(ttl)) => self.cfg.clock.now().duration_since(slot.at) > ttl,
            (Some(_), None) => false,
            (None, _) => {
                g.stats.misses += 1;
                return None;
            }
        };
        if expired {
            if let Some(slot) = g.lru.pop(key) {
                g.bytes -= slot.bytes;
            }
            g.stats.misses += 1;
            return None;
        }
        g.stats.hits += 1;
        g.lru.get(key).map(|s| s.value.clone())
    }

    /// Inserts a value read at `epoch` (from [`Cache::epoch`] before the read),
    /// unless the key was invalidated since. Returns whether it was kept.
    pub fn fill(&self, key: K, value: Arc<V>, bytes: usize, epoch: u64) -> bool {
        let mut g = self.inner.lock();
        let stale = epoch < g.floor || g.invalidated_at.get(&key).is_some_and(|&at| at > epoch);
        if stale || bytes > self.cfg.max_bytes || self.cfg.max_entries == 0 {
            return false;
        }
        if let Some(old) = g.lru.put(
            key,
            Slot {
                value,
                bytes,
                at: self.cfg.clock.now(),
            },
        ) {
            g.bytes -= old.bytes;
        }
        g.bytes += bytes;
        while g.lru.len() > self.cfg.max_entries || g.bytes > self.cfg.max_bytes {
            match g.lru.pop_lru() {
                Some((_, s)) => {
                    g.bytes -= s.bytes;
                    g.stats.evictions += 1;
                }
                None => break,
            }
        }
        true
    }

    /// Drops `key` and refuses fills of it read before now.
    pub fn invalidate(&self, key: &K) {
        let mut g = self.inner.lock();
        g.epoch += 1;
        let epoch = g.epoch;
        if let Some(slot) = g.lru.pop(key) {
            g.bytes -= slot.bytes;
        }
        g.stats.invalidations += 1;
        if g.invalidated_at.len() >= MAX_TRACKED_INVALIDATIONS {
            g.invalidated_at.clear();
            g.floor = epoch;
        }
        g.invalidated_at.insert(key.clone(), epoch);
    }

    /// Drops everything (e.g. after loading a new manifest).
    pub fn clear(&self) {
        let mut g = self.inner.lock();
        g.epoch += 1;
        g.floor = g.epoch;
        g.invalidated_at.clear();
        g.lru.clear();
        g.bytes = 0;
    }

    pub fn stats(&self) -> CacheStats {
        let g = self.inner.lock();
        CacheStats {
            entries: g.lru.len(),
            bytes: g.bytes,
            ..g.stats
        }
    }

    pub fn config(&self) -> &CacheConfig {
        &self.cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: usize, bytes: usize) -> Cache<String, String> {
        Cache::new(CacheConfig {
            max_entries: entries,
            max_bytes: bytes,
            ..CacheConfig::default()
        })
    }

    #[test]
    fn least_recently_used_is_evicted_by_entries_and_by_bytes() {
        let c = cache(2, 1000);
        for k in ["a", "b"] {
            let e = c.epoch();
            c.fill(k.into(), Arc::new(k.into()), 10, e);
        }
        assert!(c.get(&"a".into()).is_some()); // a is now most recent
        let e = c.epoch();
        c.fill("c".into(), Arc::new("c".into()), 10, e);
        assert!(c.get(&"b".into()).is_none(), "b was least recently used");
        assert!(c.get(&"a".into()).is_some());
        let s = c.stats();
        assert_eq!((s.entries, s.evictions, s.hits, s.misses), (2, 1, 2, 1));

        let c = cache(100, 25);
        for k in ["a", "b", "c"] {
            let e = c.epoch();
            c.fill(k.into(), Arc::new(k.into()), 10, e);
        }
        assert_eq!(c.stats().entries, 2);
        assert_eq!(c.stats().bytes, 20);
        assert!(c.get(&"a".into()).is_none());
    }

    #[test]
    fn a_fill_read_before_an_invalidation_is_refused() {
        let c = cache(10, 1000);
        let before = c.epoch();
        // Someone reads "x" (old value) ... a commit invalidates "x" ...
        c.invalidate(&"x".to_string());
        // ... and the slow reader tries to cache what it read: refused.
        assert!(!c.fill("x".into(), Arc::new("old".into()), 3, before));
        assert!(c.get(&"x".into()).is_none());
        // Other keys read at that epoch are fine.
        assert!(c.fill("y".into(), Arc::new("y".into()), 1, before));
        // A read after the invalidation may fill.
        let after = c.epoch();
        assert!(c.fill("x".into(), Arc::new("new".into()), 3, after));
        assert_eq!(*c.get(&"x".into()).unwrap(), "new");
        // Invalidation drops a cached value.
        c.invalidate(&"x".to_string());
        assert!(c.get(&"x".into()).is_none());
        assert_eq!(c.stats().invalidations, 2);
    }

    /// With a clock the test moves (no sleeping): an entry is a hit up to its TTL
    /// and a miss (and dropped) once it is older; a refill starts its age again.
    #[test]
    fn entries_expire_after_their_ttl() {
        let clock = ManualClock::new();
        let c: Cache<String, String> = Cache::new(CacheConfig {
            max_entries: 10,
            max_bytes: 1000,
            ttl: Some(Duration::from_millis(20)),
            clock: clock.clone(),
        });
        let e = c.epoch();
        c.fill("a".into(), Arc::new("a".into()), 1, e);
        clock.advance(Duration::from_millis(5));
        c.fill("b".into(), Arc::new("b".into()), 1, e);
        clock.advance(Duration::from_millis(15));
        // a is exactly 20 ms old: still fresh.
        assert!(c.get(&"a".into()).is_some());
        clock.advance(Duration::from_millis(1));
        assert!(c.get(&"a".into()).is_none(), "a is 21 ms old");
        assert!(c.get(&"b".into()).is_some(), "b is 16 ms old");
        assert_eq!(c.stats().entries, 1);
        clock.advance(Duration::from_millis(5));
        assert!(c.get(&"b".into()).is_none(), "b is 21 ms old");
        let e = c.epoch();
        c.fill("b".into(), Arc::new("b2".into()), 2, e);
        clock.advance(Duration::from_millis(20));
        assert_eq!(
            c.get(&"b".into()).as_deref().map(String::as_str),
            Some("b2")
        );
        let s = c.stats();
        assert_eq!((s.entries, s.hits, s.misses), (1, 3, 2));
    }

    #[test]
    fn forgetting_old_invalidations_refuses_old_fills_instead_of_risking_them() {
        let c = cache(10, 1000);
        let old = c.epoch();
        for i in 0..MAX_TRACKED_INVALIDATIONS + 1 {
            c.invalidate(&format!("k{i}"));
        }
        assert!(!c.fill("unrelated".into(), Arc::new("v".into()), 1, old));
        let now = c.epoch();
        assert!(c.fill("unrelated".into(), Arc::new("v".into()), 1, now));
    }
}
