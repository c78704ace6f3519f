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

/// Why segments are preallocated by writing zeros: an append + `fdatasync` into
/// `fallocate`d (unwritten) extents must also journal the extent conversion; into
/// zero-filled extents it is data only. And what rotation costs with a segment
/// preallocated outside the lock versus zero-filled under it.
fn segments(c: &mut Criterion) {
    use std::os::fd::AsRawFd;
    const SEG: u64 = 8 << 20;
    let mut g = c.benchmark_group("segment_preallocation");
    g.sample_size(20);
    let dir = tempfile::tempdir().unwrap();
    let frame = vec![9u8; 200];
    for (name, zero_fill) in [
        ("append_fdatasync_zero_filled", true),
        ("append_fdatasync_fallocated", false),
    ] {
        let path = dir.path().join(name);
        let f = std::fs::File::create(&path).unwrap();
        let mut off = 0u64;
        let fresh = |f: &std::fs::File| {
            f.set_len(0).unwrap();
            if zero_fill {
                let zeros = vec![0u8; 1 << 20];
                for i in 0..SEG / (1 << 20) {
                    f.write_all_at(&zeros, i << 20).unwrap();
                }
            } else {
                let r = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, SEG as libc::off_t) };
                assert_eq!(r, 0, "fallocate failed");
            }
            f.sync_all().unwrap();
        };
        fresh(&f);
        g.bench_function(name, |b| {
            b.iter(|| {
                if off + 200 > SEG {
                    fresh(&f);
                    off = 0;
                }
                f.write_all_at(&frame, off).unwrap();
                f.sync_data().unwrap();
                off += 200;
            })
        });
    }
    // Rotation under the lock: a ready preallocated file (rename + header + syncs)
    // versus writing 8 MiB of zeros first.
    let wal_dir = dir.path().join("wal");
    std::fs::create_dir_all(&wal_dir).unwrap();
    let vfs = got::wal::RealVfs;
    // Each routine installs segment 1; the setup removes the last one (and, for
    // the first case, preallocates), so the disk does not fill up.
    let seg1 = wal_dir.join(got::wal::segment::segment_name(1));
    let clear = || {
        let _ = std::fs::remove_file(&seg1);
    };
    g.bench_function("rotate_with_preallocated_segment", |b| {
        b.iter_batched(
            || {
                clear();
                got::wal::segment::preallocate(&vfs, &wal_dir, SEG).unwrap()
            },
            |_| got::wal::segment::install_segment(&vfs, &wal_dir, &[1; 16], 1, SEG).unwrap(),
            criterion::BatchSize::PerIteration,
        )
    });
    g.bench_function("rotate_zero_filling_under_the_lock", |b| {
        b.iter_batched(
            clear,
            |_| got::wal::segment::install_segment(&vfs, &wal_dir, &[1; 16], 1, SEG).unwrap(),
            criterion::BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench, segments);
criterion_main!(benches);
