//! Every decoder of bytes that a disk, a file or a client can make wrong, fuzzed
//! on stable Rust inside `cargo test`: each target starts from real, valid inputs
//! the code itself wrote (a small store with transactions, checkpoints, a backup
//! and an export; see `fuzz_decoders/corpus.rs`), mutates them (flipped bits,
//! truncation, splices, overwritten length fields, duplicated ranges; see
//! `common/mutate.rs`), recomputes the checksums for half of them so that the
//! parsing behind each checksum sees damaged bytes too (`fuzz_decoders/reseal.rs`),
//! and checks that the decoder returns an error or a valid value: never a panic,
//! never an allocation larger than the input justifies, never an endless loop
//! (`fuzz_decoders/harness.rs`).
//!
//! Quick by default; `GOT_LONG_TESTS=1` runs 1,000,000 inputs per target (best
//! with `--release`), `GOT_FUZZ_INPUTS=n` any number. `GOT_SEED` replays a run,
//! `GOT_FUZZ_REPLAY=<file>` one saved input.

mod common;
#[path = "fuzz_decoders/corpus.rs"]
mod corpus;
#[path = "fuzz_decoders/harness.rs"]
mod harness;
#[path = "fuzz_decoders/reseal.rs"]
mod reseal;

#[global_allocator]
static ALLOC: harness::Counting = harness::Counting;

use corpus::{CORPUS, DIR};
use got::versioned_store::{backup, manifest};
use got::wal::{durable, segment, ProcessLock};
use harness::{run, run_with, Target, Verdict};
use std::path::{Path, PathBuf};

#[test]
fn wal_segment_header_decoder_never_panics_on_mutated_headers() {
    let c = &*CORPUS;
    let id = c.store_id;
    let segs: Vec<(PathBuf, u64, Vec<u8>)> = c
        .segments()
        .into_iter()
        .map(|(p, b)| {
            let name = p.file_name().unwrap().to_str().unwrap();
            (
                p.clone(),
                segment::parse_segment_name(name).unwrap(),
                b[..64].to_vec(),
            )
        })
        .collect();
    let t = Target {
        name: "wal_segment_header_decoder_never_panics_on_mutated_headers",
        quick_inputs: 30_000,
        corpus: segs.iter().map(|s| s.2.clone()).collect(),
        tokens: &[],
        reseal: Some(&|_, _, b| {
            if b.len() >= 64 {
                let crc = crc32fast::hash(&b[0..60]);
                b[60..64].copy_from_slice(&crc.to_le_bytes());
            }
        }),
        context_len: 0,
    };
    run_with(
        &t,
        |base, _| base,
        |b, &base| {
            let (path, first, _) = &segs[base];
            let _ = segment::name_durable(b);
            Verdict::of(&segment::check_header(path, b, &id, *first))
        },
    );
}

#[test]
fn durable_decoder_never_panics_on_mutated_files() {
    let c = &*CORPUS;
    let id = c.store_id;
    let corpus: Vec<Vec<u8>> = c
        .files
        .iter()
        .filter(|(p, _)| p.file_name().is_some_and(|n| n == "DURABLE"))
        .map(|(_, b)| b.clone())
        .collect();
    let t = Target {
        name: "durable_decoder_never_panics_on_mutated_files",
        quick_inputs: 30_000,
        corpus,
        tokens: &[],
        reseal: Some(&|_, _, b| reseal::durable(b)),
        context_len: 0,
    };
    run(&t, |b| match durable::decode(b, &id) {
        durable::Decoded::Ok(p) => {
            assert!(
                p.synced <= p.lsn,
                "a synced LSN above the durable LSN: {p:?}"
            );
            Verdict::Accepted
        }
        durable::Decoded::TooNew(_) | durable::Decoded::Invalid => Verdict::Rejected,
    });
}

#[test]
fn manifest_decoder_never_panics_on_mutated_current() {
    let c = &*CORPUS;
    let corpus: Vec<Vec<u8>> = c
        .files
        .iter()
        .filter(|(p, _)| p.file_name().is_some_and(|n| n == "CURRENT"))
        .map(|(_, b)| b.clone())
        .collect();
    let t = Target {
        name: "manifest_decoder_never_panics_on_mutated_current",
        quick_inputs: 15_000,
        corpus,
        tokens: &[],
        reseal: Some(&|_, _, b| reseal::current(b)),
        context_len: 0,
    };
    run_with(
        &t,
        |_, input| {
            let current = Path::new(DIR).join("CURRENT");
            c.vfs(|p| p == current, Some((&current, input)))
        },
        |_, vfs| match manifest::read(vfs.as_ref(), Path::new(DIR)) {
            Ok(m) => {
                let _ = m.wal_position_hint();
                let _ = backup::restore_count(m.generation);
                Verdict::Accepted
            }
            Err(_) => Verdict::Rejected,
        },
    );
}

#[test]
fn lock_file_reader_never_panics_on_mutated_lock_files() {
    let c = &*CORPUS;
    let t = Target {
        name: "lock_file_reader_never_panics_on_mutated_lock_files",
        quick_inputs: 10_000,
        corpus: vec![c.file(Path::new(DIR).join("LOCK")).clone()],
        tokens: &[
            b"pid=",
            b" host=",
            b" since_unix_ms=",
            "é".as_bytes(),
            b"\n",
        ],
        reseal: None,
        context_len: 0,
    };
    run_with(
        &t,
        |_, input| {
            let lock = Path::new(DIR).join("LOCK");
            c.vfs(|p| p == lock, Some((&lock, input)))
        },
        |_, vfs| {
            let holder = ProcessLock::open(vfs.as_ref(), Path::new(DIR)).map(|l| l.holder());
            match holder {
                Ok(h) if h.starts_with("pid=") && h.contains(" since_unix_ms=") => {
                    Verdict::Accepted
                }
                _ => Verdict::Rejected,
            }
        },
    );
}
