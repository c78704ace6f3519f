//! Durable commit cost next to the disk's own fsync rate, measured in one run.
//!
//! `cargo bench --bench commit`. Results and their reading go in docs/benchmarks.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use got::{Options, Store, Value};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

fn open(dir: &std::path::Path) -> Store {
    Store::open(
        dir.join(".got"),
        Options {
            create_if_missing: true,
            ..Options::default()
        },
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("durable_commit");
    g.sample_size(20);
    g.throughput(Throughput::Elements(1));

    // The disk's limit: overwrite 4 KiB in place and fdatasync.
    let dir = tempfile::tempdir().unwrap();
    let mut f = std::fs::File::create(dir.path().join("raw")).unwrap();
    f.write_all(&vec![0u8; 1 << 20]).unwrap();
    f.sync_all().unwrap();
    let block = vec![7u8; 4096];
    let mut off = 0u64;
    g.bench_function("raw_pwrite_4k_fdatasync", |b| {
        b.iter(|| {
            f.write_all_at(&block, off).unwrap();
            f.sync_data().unwrap();
            off = (off + 4096) % (1 << 20);
        })
    });

    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    g.bench_function("got_commit_1_entity_1_thread", |b| {
        b.iter(|| {
            store
                .transaction(|tx| tx.create("task", got::props([("title", Value::from("x"))])))
                .unwrap()
        })
    });

    // Four committers at once: group commit shares one sync among them.
    g.throughput(Throughput::Elements(4 * 25));
    let store = Arc::new(store);
    g.bench_function("got_commit_4_threads_x25", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for _ in 0..4 {
                    let store = store.clone();
                    s.spawn(move || {
                        for _ in 0..25 {
                            store
                                .transaction(|tx| {
                                    tx.create("task", got::props([("title", Value::from("x"))]))
                                })
                                .unwrap();
                        }
                    });
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
