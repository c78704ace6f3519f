//! Micro-benchmarks of the parts a commit and a read pass through: frame encode and
//! check, CRC, the group-commit queue, the entity cache (one mutex, and the same
//! cache in 8 shards, from 1 and 8 threads: the measurement behind not sharding),
//! and index lookups.
//!
//! `cargo bench --bench micro`. Results and their reading go in docs/benchmarks.md.

use cache::{Cache, CacheConfig};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use got::query::{Filter, Query};
use got::wal::frame::{self, FrameHeader, FrameKind};
use got::wal::{GroupCommit, SimVfs, Vfs};
use got::{Options, Props, Store, Value};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    let payload = vec![0x5au8; 200];
    let header = FrameHeader {
        kind: FrameKind::Batch,
        payload_len: payload.len() as u32,
        count: 1,
        first_lsn: 42,
        store_id: [7; 16],
        durable_lsn: 41,
        version: frame::FRAME_FORMAT_VERSION,
    };
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_200B", |b| {
        b.iter(|| frame::encode(&header, &payload))
    });
    let bytes = frame::encode(&header, &payload);
    g.bench_function("check_200B", |b| {
        b.iter(|| {
            let h = frame::parse_header(&bytes, &[7; 16], frame::DEFAULT_MAX_FRAME_BYTES);
            (h, frame::check_crc(&bytes))
        })
    });
    g.finish();
    let mut g = c.benchmark_group("crc32");
    let block = vec![1u8; 4096];
    g.throughput(Throughput::Bytes(4096));
    g.bench_function("4KiB", |b| b.iter(|| crc32fast::hash(&block)));
    g.finish();
}

fn group_commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("group_commit");
    g.throughput(Throughput::Elements(1));
    let q: GroupCommit<u64, u64> = GroupCommit::default();
    g.bench_function("submit_uncontended", |b| {
        b.iter(|| q.submit(1, |items| items.into_iter().map(|i| i + 1).collect()))
    });
    g.finish();
}

/// The cache split into shards by key hash, each its own mutex: what sharding
/// would buy.
struct Sharded {
    shards: Vec<Cache<String, u64>>,
    hasher: RandomState,
}

impl Sharded {
    fn get(&self, k: &String) -> Option<Arc<u64>> {
        let i = self.hasher.hash_one(k) as usize % self.shards.len();
        self.shards[i].get(k)
    }
}

/// A cache lookup, shared by the threads.
type Getter = Arc<dyn Fn(&String) -> Option<Arc<u64>> + Send + Sync>;

/// `threads` threads doing `iters` cache hits in all; the wall time.
fn parallel_gets(threads: usize, iters: u64, keys: &Arc<Vec<String>>, get: Getter) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (keys, get) = (keys.clone(), get.clone());
            s.spawn(move || {
                let n = iters / threads as u64;
                for i in 0..n {
                    let k = &keys[(i as usize * 7 + t * 13) % keys.len()];
                    assert!(get(k).is_some());
                }
            });
        }
    });
    start.elapsed()
}

fn cache_gets(c: &mut Criterion) {
    let keys: Arc<Vec<String>> = Arc::new((0..10_000).map(|i| format!("T-{i:08}")).collect());
    let single = Arc::new(Cache::<String, u64>::new(CacheConfig::default()));
    let sharded = Arc::new(Sharded {
        shards: (0..8).map(|_| Cache::new(CacheConfig::default())).collect(),
        hasher: RandomState::new(),
    });
    for (i, k) in keys.iter().enumerate() {
        single.fill(k.clone(), Arc::new(i as u64), 64, single.epoch());
        let s = &sharded.shards[sharded.hasher.hash_one(k) as usize % 8];
        s.fill(k.clone(), Arc::new(i as u64), 64, s.epoch());
    }
    let mut g = c.benchmark_group("cache_get_hit");
    g.throughput(Throughput::Elements(1));
    for threads in [1usize, 8] {
        let s = single.clone();
        let get: Getter = Arc::new(move |k| s.get(k));
        g.bench_with_input(BenchmarkId::new("one_mutex", threads), &threads, |b, &t| {
            b.iter_custom(|iters| parallel_gets(t, iters.max(t as u64), &keys, get.clone()))
        });
        let s = sharded.clone();
        let get: Getter = Arc::new(move |k| s.get(k));
        g.bench_with_input(BenchmarkId::new("8_shards", threads), &threads, |b, &t| {
            b.iter_custom(|iters| parallel_gets(t, iters.max(t as u64), &keys, get.clone()))
        });
    }
    g.finish();
}

fn index_lookups(c: &mut Criterion) {
    let vfs = SimVfs::new();
    let store = Store::open_with_vfs(
        vfs as Arc<dyn Vfs>,
        "/b/.got",
        Options {
            create_if_missing: true,
            durability: got::Durability::None,
            ..Options::default()
        },
    )
    .unwrap();
    let statuses = ["pending", "in_progress", "blocked", "completed"];
    let labels = ["wal", "cli", "bug", "docs", "perf", "x"];
    for b in 0..10 {
        store
            .transaction(|tx| {
                for i in b * 1000..(b + 1) * 1000 {
                    let mut p = Props::new();
                    p.insert("status".into(), statuses[i % 4].into());
                    p.insert("labels".into(), Value::List(vec![labels[i % 6].into()]));
                    p.insert("title".into(), format!("task {i}").into());
                    tx.put(&format!("T-{i:08}"), "task", p)?;
                }
                Ok(())
            })
            .unwrap();
    }
    store.checkpoint().unwrap();
    let mut g = c.benchmark_group("index");
    let q = Query {
        kind: Some("task".into()),
        filters: vec![
            Filter::Eq("status".into(), "pending".into()),
            Filter::Label("wal".into()),
        ],
        limit: Some(20),
        ..Query::default()
    };
    let mut tx = store.begin().unwrap();
    g.bench_function("20_pending_label_10k", |b| {
        b.iter(|| q.run(&mut tx).unwrap())
    });
    g.bench_function("ready_top20_10k", |b| {
        b.iter(|| got::ready::ready(&mut tx, Some(20)).unwrap())
    });
    g.bench_function("get_by_id_cached", |b| {
        b.iter(|| store.get("T-00004242").unwrap())
    });
    g.finish();
}

criterion_group!(benches, frames, group_commit, cache_gets, index_lookups);
criterion_main!(benches);
