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
#[cfg(feature = "server")]
#[path = "fuzz_decoders/mcp_messages.rs"]
mod mcp_messages;
#[path = "fuzz_decoders/reseal.rs"]
mod reseal;

#[global_allocator]
static ALLOC: harness::Counting = harness::Counting;

use common::mutate::Rng;
use corpus::{Corpus, CORPUS, DIR, SEGMENT_BYTES};
use got::versioned_store::model::{self, EdgeRecord, EntityRecord};
use got::versioned_store::record::{self, TxRecord};
use got::versioned_store::run::{Run, RunMeta};
use got::versioned_store::{backup, manifest, Props, Value};
use got::wal::frame::{self, FrameKind, HeaderCheck};
use got::wal::{durable, segment, ProcessLock, SimVfs, Vfs, Wal, WalOptions};
use got::{Direction, Store};
use harness::{run, run_mutated_with, run_with, Target, Verdict};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Every frame of every segment of the corpus (the bytes it occupies, padding
/// included).
fn corpus_frames(c: &Corpus) -> Vec<(Vec<u8>, u8)> {
    let mut out = Vec::new();
    for (_, seg) in c.segments() {
        for f in common::wal_bytes::frames(seg) {
            out.push((seg[f.off..f.end().min(seg.len())].to_vec(), f.kind));
        }
    }
    out
}

/// Decodes every write of a transaction record as what its key says it is
/// (what applying and reading it does).
fn decode_writes(records: &[TxRecord]) -> bool {
    let mut ok = true;
    for r in records {
        for (k, v) in &r.writes {
            ok &= match k.first() {
                Some(b'e') => model::decode::<EntityRecord>(v, "entity").is_ok(),
                Some(b'm') => true,
                Some(b'o' | b'i') => {
                    model::edge_of_key(k).is_some()
                        && model::decode::<EdgeRecord>(v, "edge").is_ok()
                }
                _ => false,
            };
        }
    }
    ok
}

fn payloads(c: &Corpus) -> Vec<Vec<u8>> {
    corpus_frames(c)
        .into_iter()
        .filter(|(_, kind)| *kind == 1)
        .map(|(f, _)| {
            let len = u32::from_le_bytes(f[4..8].try_into().unwrap()) as usize;
            f[48..48 + len].to_vec()
        })
        .collect()
}

#[test]
fn wal_frame_decoder_never_panics_on_mutated_frames() {
    let c = &*CORPUS;
    let id = c.store_id;
    let corpus: Vec<Vec<u8>> = corpus_frames(c).into_iter().map(|(f, _)| f).collect();
    let t = Target {
        name: "wal_frame_decoder_never_panics_on_mutated_frames",
        quick_inputs: 30_000,
        corpus,
        tokens: &[],
        reseal: Some(&|_, _, b| reseal::frame(b)),
        context_len: 0,
    };
    run(&t, |b| {
        // The checksum check takes any slice.
        let _ = frame::check_crc(b);
        match frame::parse_header(b, &id, frame::DEFAULT_MAX_FRAME_BYTES) {
            HeaderCheck::Plausible(h) => {
                // Readers compute these from a plausible header before its
                // checksum is known (the WAL hint check does).
                let _ = (h.last_lsn(), h.stored_len());
                let end = frame::FRAME_HEADER_BYTES + h.payload_len as usize;
                if end > b.len() || !frame::check_crc(&b[..end]) {
                    return Verdict::Rejected;
                }
                match h.kind {
                    FrameKind::Batch => match record::decode_batch(&b[48..end], h.count) {
                        Ok(recs) if decode_writes(&recs) => Verdict::Accepted,
                        _ => Verdict::Rejected,
                    },
                    FrameKind::EndOfSegment => Verdict::Accepted,
                }
            }
            HeaderCheck::Zero | HeaderCheck::Invalid(_) => Verdict::Rejected,
        }
    });
}

#[test]
fn wal_payload_decoder_never_panics_on_mutated_payloads() {
    let c = &*CORPUS;
    let t = Target {
        name: "wal_payload_decoder_never_panics_on_mutated_payloads",
        quick_inputs: 30_000,
        corpus: payloads(c),
        tokens: &[],
        reseal: None,
        context_len: 0,
    };
    run(&t, |b| {
        // The count the frame header would carry: the payload's own, so that
        // decoding goes on past the count check.
        let expected = b
            .get(1..5)
            .map_or(1, |c| u32::from_le_bytes(c.try_into().unwrap()));
        match record::decode_batch(b, expected) {
            Ok(recs) if decode_writes(&recs) => Verdict::Accepted,
            _ => Verdict::Rejected,
        }
    });
}

/// Keys and values as runs and WAL records hold them.
fn stored_keys_and_values(c: &Corpus) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for p in payloads(c) {
        let n = u32::from_le_bytes(p[1..5].try_into().unwrap());
        for r in record::decode_batch(&p, n).expect("a valid payload") {
            for (k, v) in r.writes {
                out.push(k);
                out.push(v);
            }
            out.push(model::encode(&TxRecord {
                actor: r.actor,
                time_ms: r.time_ms,
                writes: Vec::new(),
            }));
        }
    }
    for r in opened_runs(c) {
        for e in r.entries() {
            let (k, versions) = e.expect("a valid run");
            for (_, v) in versions {
                out.push(v.to_vec());
            }
            out.push(k);
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn stored_key_and_value_decoders_never_panic_on_mutated_records() {
    let c = &*CORPUS;
    let t = Target {
        name: "stored_key_and_value_decoders_never_panic_on_mutated_records",
        quick_inputs: 30_000,
        corpus: stored_keys_and_values(c),
        tokens: &[],
        reseal: None,
        context_len: 0,
    };
    run(&t, |b| {
        // Keys: edge keys and index keys are split back into their parts.
        let _ = model::split_edge_key(b);
        let _ = model::edge_of_key(b);
        let _ = indexer::id_of(b);
        let _ = String::from_utf8_lossy(b.get(1..).unwrap_or_default());
        // Values: every record type and property value.
        let entity = model::decode::<EntityRecord>(b, "entity");
        if let Ok(e) = &entity {
            let _ = e.clone().into_entity("T-fuzz");
        }
        let edge = model::decode::<EdgeRecord>(b, "edge");
        let tx = model::decode::<TxRecord>(b, "transaction");
        let value = model::decode::<Value>(b, "value");
        let props = model::decode::<Props>(b, "props");
        if entity.is_ok() || edge.is_ok() || tx.is_ok() || value.is_ok() || props.is_ok() {
            Verdict::Accepted
        } else {
            Verdict::Rejected
        }
    });
}

/// The log as a reader and as the lock holder read it: from the checkpoint (with
/// the manifest's hint), lock-free up to DURABLE, examined, recovered (which may
/// cut a torn tail), and every frame read decoded.
fn read_log(vfs: &Arc<SimVfs>, m: &manifest::Manifest) -> got::wal::Result<bool> {
    let dir = Path::new(DIR);
    let opts = WalOptions {
        segment_size_bytes: SEGMENT_BYTES,
        ..WalOptions::default()
    };
    let v: Arc<dyn Vfs> = vfs.clone();
    let mut ok = true;
    let mut frames = Vec::new();
    {
        let reader = Wal::open(v.clone(), dir, m.store_id, opts.clone(), false)?;
        match (
            reader.position_from(m.checkpoint_lsn, m.wal_position_hint()),
            reader.published(),
        ) {
            (Ok(mut cur), Ok(p)) => {
                ok &= reader.read_committed(p, &mut cur, &mut frames).is_ok();
                ok &= reader.examine(&mut cur, &mut frames).is_ok();
            }
            _ => ok = false,
        }
    }
    let wal = Wal::open(v, dir, m.store_id, opts, true)?;
    let lock = ProcessLock::open(vfs.as_ref(), dir)?;
    let held = lock.acquire(Duration::from_secs(5))?;
    let published = wal.published().ok();
    let mut cur = wal.position_from(m.checkpoint_lsn, m.wal_position_hint())?;
    ok &= wal.recover(&held, &mut cur, &mut frames, published)?;
    // Recovered: a second pass reads what is left, and its payloads are decoded
    // (their records are the payload target's to fuzz).
    frames.clear();
    let mut cur = wal.position(m.checkpoint_lsn)?;
    wal.scan(&mut cur, None, &mut frames, usize::MAX)?;
    for f in &frames {
        let _ = f.last_lsn();
        ok &= record::decode_batch(&f.payload, f.count).is_ok();
    }
    Ok(ok)
}

#[test]
fn wal_scan_never_panics_on_mutated_segments() {
    let c = &*CORPUS;
    let m = manifest::read(c.vfs(|_| true, None).as_ref(), Path::new(DIR)).unwrap();
    let segs: Vec<(PathBuf, Vec<u8>)> = c
        .segments()
        .into_iter()
        .map(|(p, b)| (p.clone(), b.clone()))
        .collect();
    let in_log = |p: &Path| {
        p.starts_with(Path::new(DIR).join("wal"))
            || p == Path::new(DIR).join("DURABLE")
            || p == Path::new(DIR).join("LOCK")
    };
    let context: usize = c
        .files
        .iter()
        .filter(|(p, _)| in_log(p))
        .map(|(_, b)| b.len())
        .sum();
    let t = Target {
        name: "wal_scan_never_panics_on_mutated_segments",
        quick_inputs: 2_000,
        corpus: segs.iter().map(|(_, b)| b.clone()).collect(),
        tokens: &[],
        reseal: Some(&|_, _, b| reseal::segment(b)),
        context_len: context,
    };
    run_with(
        &t,
        |base, input| c.vfs(in_log, Some((&segs[base].0, input))),
        |_, vfs| match read_log(vfs, &m) {
            Ok(true) => Verdict::Accepted,
            _ => Verdict::Rejected,
        },
    );
}

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

/// A run's checksums recomputed; for half of them after a structural
/// mutation of its block index.
fn run_reseal(rng: &mut Rng, b: &mut Vec<u8>) {
    if rng.one_in(2) {
        reseal::run_index_field(rng, b);
    } else {
        reseal::run(b);
    }
}

/// Recomputes the checksums of a store file by what it is (its path).
fn reseal_file(rng: &mut Rng, path: &Path, b: &mut Vec<u8>) {
    let name = path.file_name().unwrap().to_str().unwrap();
    match name {
        "CURRENT" => reseal::current(b),
        "DURABLE" => reseal::durable(b),
        n if n.ends_with(".wal") => reseal::segment(b),
        n if n.ends_with(".run") => run_reseal(rng, b),
        _ => {}
    }
}

/// Every run file of the corpus (the store's and the backup's), with what its
/// manifest says about it.
fn corpus_runs(c: &Corpus) -> Vec<(PathBuf, RunMeta, Vec<u8>)> {
    let vfs = c.vfs(|_| true, None);
    let mut out: Vec<(PathBuf, RunMeta, Vec<u8>)> = Vec::new();
    for dir in [PathBuf::from(DIR), c.backup_dir.clone()] {
        let m = manifest::read(vfs.as_ref(), &dir).unwrap();
        for meta in m.runs {
            let path = dir.join("runs").join(&meta.name);
            let bytes = c.file(&path).clone();
            if !out.iter().any(|(_, _, b)| *b == bytes) {
                out.push((path, meta, bytes));
            }
        }
    }
    assert!(!out.is_empty());
    out
}

fn opened_runs(c: &Corpus) -> Vec<Arc<Run>> {
    let vfs = c.vfs(|_| true, None);
    corpus_runs(c)
        .into_iter()
        .map(|(path, meta, _)| {
            Arc::new(Run::open(vfs.as_ref(), path.parent().unwrap(), &meta, c.store_id).unwrap())
        })
        .collect()
}

/// Opens a run and reads it every way the store does; `Ok(true)` when all of it
/// checked out.
fn read_run(
    vfs: &SimVfs,
    path: &Path,
    meta: &RunMeta,
    id: [u8; 16],
    keys: &[Vec<u8>],
) -> got::Result<bool> {
    let r = Arc::new(Run::open(vfs, path.parent().unwrap(), meta, id)?);
    let mut ok = r.verify().is_ok();
    let _ = r.block_spans();
    for k in keys {
        ok &= r.get(k).is_ok();
        ok &= r.get_at(k, u64::MAX).is_ok();
        ok &= r.get_at(k, meta.min_lsn).is_ok();
    }
    for prefix in [&b""[..], b"e", b"o", b"x", b"xr"] {
        ok &= r.scan_prefix(prefix, |_, vs| vs.for_each(drop)).is_ok();
        ok &= r.iter_prefix(prefix, u64::MAX).all(|e| e.is_ok());
    }
    ok &= r.iter_from(b"e", b"eT-0010", u64::MAX).all(|e| e.is_ok());
    ok &= r.entries().all(|e| e.is_ok());
    let _ = (r.derived_damaged(), r.derived_version);
    Ok(ok)
}

#[test]
fn run_decoder_never_panics_on_mutated_runs() {
    let c = &*CORPUS;
    let runs = corpus_runs(c);
    let keys: Vec<Vec<Vec<u8>>> = opened_runs(c)
        .iter()
        .map(|r| r.entries().map(|e| e.unwrap().0).collect())
        .collect();
    let id = c.store_id;
    let t = Target {
        name: "run_decoder_never_panics_on_mutated_runs",
        quick_inputs: 3_000,
        corpus: runs.iter().map(|r| r.2.clone()).collect(),
        tokens: &[],
        reseal: Some(&|rng, _, b| run_reseal(rng, b)),
        context_len: 0,
    };
    run_with(
        &t,
        |base, input| {
            let vfs = SimVfs::new();
            let path = &runs[base].0;
            vfs.create_dir_all(path.parent().unwrap()).unwrap();
            corpus::put_file(&vfs, path, input);
            (vfs, base)
        },
        |_, (vfs, base)| {
            let (path, meta, _) = &runs[*base];
            match read_run(vfs, path, meta, id, &keys[*base]) {
                Ok(true) => Verdict::Accepted,
                _ => Verdict::Rejected,
            }
        },
    );
}

/// Reads every entity, its history and edges, and the ready queue (read from
/// the runs' index entries).
fn read_store(s: &Store) -> got::Result<()> {
    let all = s.list(None, None)?;
    for e in &all {
        s.get(&e.id)?;
        s.history(&e.id)?;
    }
    let mut tx = s.begin()?;
    for e in &all {
        tx.edges(&e.id, Direction::Both, None)?;
    }
    tx.list(Some("task"), Some(10))?;
    got::ready::ready(&mut tx, Some(10))?;
    Ok(())
}

#[test]
fn backup_decoders_never_panic_on_mutated_backups() {
    let c = &*CORPUS;
    let files: Vec<(PathBuf, Vec<u8>)> = c
        .files
        .iter()
        .filter(|(p, _)| p.starts_with(&c.backup_dir))
        .map(|(p, b)| (p.clone(), b.clone()))
        .collect();
    let name = c
        .backup_dir
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let total: usize = c.files.values().map(Vec::len).sum();
    let reseal_by_path =
        |rng: &mut Rng, base: usize, b: &mut Vec<u8>| reseal_file(rng, &files[base].0, b);
    let t = Target {
        name: "backup_decoders_never_panic_on_mutated_backups",
        quick_inputs: 500,
        corpus: files.iter().map(|f| f.1.clone()).collect(),
        tokens: &[],
        reseal: Some(&reseal_by_path),
        context_len: total,
    };
    run_with(
        &t,
        |base, input| c.vfs(|_| true, Some((&files[base].0, input))),
        |input, vfs| {
            let v: Arc<dyn Vfs> = vfs.clone();
            let listed = backup::list_backups(vfs.as_ref(), Path::new(DIR))
                .is_ok_and(|l| l.iter().any(|b| b.name == name));
            let opened = Store::open_with_vfs(
                v.clone(),
                &c.backup_dir,
                got::Options {
                    read_only: true,
                    ..corpus::opts()
                },
            )
            .and_then(|s| read_store(&s));
            let verified = got::verify(v.clone(), &c.backup_dir).is_ok_and(|r| r.healthy());
            // A restore from it (one input in eight: a restore writes a whole
            // safety backup first), then the restored store read back.
            if crc32fast::hash(input).is_multiple_of(8)
                && backup::restore(v.clone(), Path::new(DIR), &name, Duration::from_secs(5)).is_ok()
            {
                let _ = Store::open_with_vfs(v, DIR, corpus::opts()).and_then(|s| read_store(&s));
            }
            if listed && opened.is_ok() && verified {
                Verdict::Accepted
            } else {
                Verdict::Rejected
            }
        },
    );
}

#[test]
fn repairing_decoder_never_panics_on_mutated_files() {
    let c = &*CORPUS;
    let path = Path::new(DIR).join(backup::REPAIRING);
    let t = Target {
        name: "repairing_decoder_never_panics_on_mutated_files",
        quick_inputs: 15_000,
        corpus: vec![c.repairing.clone()],
        tokens: &[],
        reseal: Some(&|_, _, b| reseal::repairing(b)),
        context_len: 0,
    };
    run(&t, |b| {
        match backup::decode_repairing(b, &path, c.backup_lsn) {
            Ok(Some((frames, _))) => {
                // A valid value is what a repair can append as it is: frames of at
                // least one transaction each, one after the other from the backup's
                // LSN on.
                let mut next = c.backup_lsn + 1;
                for f in &frames {
                    assert!(
                        f.count >= 1 && f.first_lsn == next,
                        "REPAIRING decoded to frames a repair cannot append: {:?}",
                        frames
                            .iter()
                            .map(|f| (f.first_lsn, f.count))
                            .collect::<Vec<_>>()
                    );
                    next = f.first_lsn + f.count as u64;
                }
                let all = frames.iter().all(|f| {
                    record::decode_batch(&f.payload, f.count).is_ok_and(|r| decode_writes(&r))
                });
                if all {
                    Verdict::Accepted
                } else {
                    Verdict::Rejected
                }
            }
            Ok(None) => Verdict::Accepted,
            Err(_) => Verdict::Rejected,
        }
    });
}

/// JSON syntax, edge numbers and multi-byte characters, for the text formats.
const JSON_TOKENS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"null",
    b"true",
    b"0",
    b"-1",
    b"1e999",
    b"18446744073709551615",
    b"18446744073709551616",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"\\u0000",
    b"\\ud800",
    "é".as_bytes(),
    "\u{10348}".as_bytes(),
    b"\"type\":\"entity\"",
    b"\"type\":\"edge\"",
    b"\"version\":",
    b"\"created_at\":\"",
    b"2025-10-01T12:00:00",
    b"+01:00",
    b"\n",
];

/// A new store on a simulated disk, for one import.
fn import_store() -> Store {
    let vfs = SimVfs::new();
    // Segments large enough for a batch of 50 entities in one frame.
    let opts = got::Options {
        segment_size_bytes: 64 << 10,
        ..corpus::opts()
    };
    Store::open_with_vfs(vfs as Arc<dyn Vfs>, "/import/.got", opts).expect("a new store")
}

/// Each imported entity can be edited again, and the store reads back.
fn usable(s: &Store) -> bool {
    let edited = s.list(None, None).and_then(|all| {
        s.transaction(|tx| {
            for e in &all {
                tx.put(&e.id, &e.kind, e.props.clone())?;
            }
            Ok(())
        })
    });
    edited.is_ok() && read_store(s).is_ok()
}

/// What `got import` does with a file: UTF-8, parse and check, import (as
/// got's own export, and as a beads file), and the store it made must stay
/// usable.
fn import(text: &str, shared: &got::Store) -> Verdict {
    let mut accepted = false;
    if let Ok(items) = got::transfer::parse(shared, text) {
        let s = import_store();
        if got::transfer::import(&s, &items, 50, |_, _| {}).is_ok() {
            accepted |= usable(&s);
        }
    }
    let s = import_store();
    if got::transfer::beads::import(&s, text).is_ok() {
        accepted |= usable(&s);
    }
    if accepted {
        Verdict::Accepted
    } else {
        Verdict::Rejected
    }
}

#[test]
fn import_parsers_never_panic_on_mutated_exports() {
    let c = &*CORPUS;
    let shared =
        Store::open_with_vfs(SimVfs::new() as Arc<dyn Vfs>, "/empty/.got", corpus::opts()).unwrap();
    let t = Target {
        name: "import_parsers_never_panic_on_mutated_exports",
        quick_inputs: 2_000,
        corpus: vec![
            c.export.clone(),
            c.beads.clone(),
            // Files as beads wrote them, each version (tests/fixtures/beads).
            include_bytes!("fixtures/beads/current.jsonl").to_vec(),
            include_bytes!("fixtures/beads/legacy.jsonl").to_vec(),
            include_bytes!("fixtures/beads/deletions.jsonl").to_vec(),
            include_bytes!("fixtures/beads/schema_version.jsonl").to_vec(),
        ],
        tokens: JSON_TOKENS,
        reseal: None,
        context_len: 0,
    };
    run(&t, |b| match std::str::from_utf8(b) {
        Ok(text) => import(text, &shared),
        Err(_) => Verdict::Rejected,
    });
}

/// A tracked file with every kind of field: tasks with labels added and
/// removed, notes, a claim and its release, a dependency added and removed, a
/// deletion, and a second store's edits merged in.
fn tracked_corpus() -> Vec<Vec<u8>> {
    use got::sync::exchange;
    use got::tasks::{self, NewTask, TaskUpdate};
    let open = |dir: &str| {
        Store::open_with_vfs(SimVfs::new() as Arc<dyn Vfs>, dir, corpus::opts()).unwrap()
    };
    let (a, b) = (open("/a/.got"), open("/b/.got"));
    let mk = |s: &Store, t: &str| {
        let n = NewTask {
            title: t.into(),
            labels: vec!["ui".into(), "db".into()],
            ..NewTask::default()
        };
        tasks::create(s, "fuzz", &n).unwrap().id
    };
    let (t1, t2, t3) = (mk(&a, "one"), mk(&a, "two"), mk(&a, "three"));
    tasks::add_dependency(&a, &t1, &t2).unwrap();
    tasks::add_dependency(&a, &t3, &t2).unwrap();
    tasks::claim(&a, &t2, "agent-a", Some(Duration::from_secs(60))).unwrap();
    tasks::note(&a, &t1, "agent-a", "a note, with \"quotes\" and ünïcödé").unwrap();
    let first = exchange::export(&a).unwrap();
    exchange::import(&b, &first).unwrap();
    tasks::release(&a, &t2, "agent-a", false).unwrap();
    tasks::remove_dependency(&a, &t3, &t2).unwrap();
    let u = TaskUpdate {
        remove_labels: vec!["ui".into()],
        ..TaskUpdate::default()
    };
    tasks::update(&a, &t2, &u).unwrap();
    tasks::delete(&a, &t3, true).unwrap();
    let t4 = mk(&b, "four");
    tasks::claim(&b, &t4, "agent-b", None).unwrap();
    let u = TaskUpdate {
        title: Some("one, renamed on b".into()),
        ..TaskUpdate::default()
    };
    tasks::update(&b, &t1, &u).unwrap();
    let theirs = exchange::export(&b).unwrap();
    exchange::import(&a, &theirs).unwrap();
    let merged = exchange::export(&a).unwrap();
    vec![first.to_bytes(), theirs.to_bytes(), merged.to_bytes()]
}

#[test]
fn tracked_file_reader_and_merge_never_panic_on_mutated_files() {
    use got::sync::{merge, Doc};
    let corpus = tracked_corpus();
    let known = Doc::parse(&corpus[2]).unwrap();
    let t = Target {
        name: "tracked_file_reader_and_merge_never_panic_on_mutated_files",
        quick_inputs: 3_000,
        corpus,
        tokens: JSON_TOKENS,
        reseal: None,
        context_len: 0,
    };
    let known_bytes = known.to_bytes();
    run(&t, |b| {
        // The merge driver's line-by-line merge agrees with a full read.
        let fast = got::sync::merge::merge_bytes(b, &known_bytes);
        let Ok(d) = Doc::parse(b) else {
            assert!(
                fast.is_err(),
                "a file a full read refuses, merged line by line"
            );
            return Verdict::Rejected;
        };
        let fast = fast.expect("a file a full read accepts merges line by line");
        assert_eq!(
            Doc::parse(&fast).as_ref(),
            Ok(&merge(&d, &known)),
            "line merge"
        );
        // What is read writes back as the same state, and merges as a join.
        assert_eq!(Doc::parse(&d.to_bytes()).as_ref(), Ok(&d), "round trip");
        let m = merge(&d, &d);
        assert_eq!(merge(&m, &m), m, "idempotent");
        assert_eq!(merge(&m, &d), m, "absorbs");
        assert_eq!(merge(&d, &known), merge(&known, &d), "commutative");
        // Imported into a store, it is merged or refused, never half applied.
        // (A new store each time: one that kept every accepted input would grow
        // and make each import slower than the last.)
        let shared = Store::open_with_vfs(SimVfs::new() as Arc<dyn Vfs>, "/t/.got", corpus::opts())
            .expect("a new store");
        match got::sync::exchange::import(&shared, &d) {
            Ok(_) => Verdict::Accepted,
            Err(_) => Verdict::Rejected,
        }
    });
}

#[test]
fn cli_text_parsers_never_panic_on_mutated_text() {
    let corpus: Vec<Vec<u8>> = [
        "2025-10-01T12:00:00Z",
        "2025-10-02T12:00:00.5Z",
        "2025-10-01T13:00:00+02:00",
        "2000-02-29T00:00:00.123456-05:30",
        "90s",
        "1h30m",
        "2d",
        "3600",
        r#"{"title": "x", "n": 1, "labels": ["a", "b"], "m": {"k": null}}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let t = Target {
        name: "cli_text_parsers_never_panic_on_mutated_text",
        quick_inputs: 30_000,
        corpus,
        tokens: JSON_TOKENS,
        reseal: None,
        context_len: 0,
    };
    run(&t, |b| {
        let Ok(s) = std::str::from_utf8(b) else {
            return Verdict::Rejected;
        };
        // Times in beads files, durations of leases, --props.
        let time = got::transfer::parse_rfc3339(s);
        let lease = got::tasks::parse_duration(s);
        let props = got::json::props_from_json_str(s);
        if time.is_some() || lease.is_ok() || props.is_ok() {
            Verdict::Accepted
        } else {
            Verdict::Rejected
        }
    });
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

#[test]
fn store_open_never_panics_on_a_mutated_store_file() {
    let c = &*CORPUS;
    let files: Vec<(PathBuf, Vec<u8>)> = c
        .files
        .iter()
        .filter(|(p, _)| !p.starts_with(Path::new(DIR).join("backups")))
        .map(|(p, b)| (p.clone(), b.clone()))
        .collect();
    let total: usize = c.files.values().map(Vec::len).sum();
    let reseal_by_path =
        |rng: &mut Rng, base: usize, b: &mut Vec<u8>| reseal_file(rng, &files[base].0, b);
    let t = Target {
        name: "store_open_never_panics_on_a_mutated_store_file",
        quick_inputs: 500,
        corpus: files.iter().map(|f| f.1.clone()).collect(),
        tokens: &[],
        reseal: Some(&reseal_by_path),
        context_len: total,
    };
    run_with(
        &t,
        |base, input| c.vfs(|_| true, Some((&files[base].0, input))),
        |_, vfs| {
            let v: Arc<dyn Vfs> = vfs.clone();
            let opened = Store::open_with_vfs(v.clone(), DIR, corpus::opts()).and_then(|s| {
                read_store(&s)?;
                // The write path after recovery.
                s.transaction(|tx| tx.put("T-fuzz", "task", Props::new()))?;
                Ok(())
            });
            let verified = got::verify(v, Path::new(DIR)).is_ok_and(|r| r.healthy());
            if opened.is_ok() && verified {
                Verdict::Accepted
            } else {
                Verdict::Rejected
            }
        },
    );
}

// ---------------------------------------------------------------------------
// Regressions: inputs a target failed on (checked in under
// tests/fixtures/fuzz/<target>/, or inline), each decoded under the same checks
// as every fuzzed input (no panic, no allocation beyond the bound, no hang).

fn fixture(target: &str, name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(target)
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The store id a frame, segment or run header carries at `at`.
fn id_at(b: &[u8], at: usize) -> [u8; 16] {
    b[at..at + 16].try_into().unwrap()
}

#[test]
fn a_frame_header_shorter_than_48_bytes_is_invalid_not_a_panic() {
    let b = fixture("wal_frame", "header-shorter-than-48-bytes.bin");
    assert!(b.len() < frame::FRAME_HEADER_BYTES);
    let v = harness::check_one("short frame header", &b, 0, |b| {
        match frame::parse_header(b, &[0; 16], frame::DEFAULT_MAX_FRAME_BYTES) {
            HeaderCheck::Invalid(_) => Verdict::Rejected,
            other => panic!("a {}-byte header parsed as {other:?}", b.len()),
        }
    });
    assert_eq!(v, Verdict::Rejected);
}

#[test]
fn a_plausible_frame_header_at_the_highest_lsn_gives_a_last_lsn_without_overflow() {
    let b = fixture("wal_frame", "first-lsn-at-u64-max.bin");
    let id = id_at(&b, 24);
    harness::check_one("frame at u64::MAX", &b, 0, |b| {
        let HeaderCheck::Plausible(h) = frame::parse_header(b, &id, frame::DEFAULT_MAX_FRAME_BYTES)
        else {
            panic!("the fixture's header is plausible");
        };
        assert_eq!((h.first_lsn, h.count), (u64::MAX, 1));
        assert_eq!(h.last_lsn(), u64::MAX);
        Verdict::Accepted
    });
}

#[test]
fn a_payload_claiming_more_records_than_its_bytes_is_refused_before_allocating() {
    let b = fixture("wal_payload", "record-count-beyond-the-payload.bin");
    let count = u32::from_le_bytes(b[1..5].try_into().unwrap());
    assert!(count > 1 << 28, "the count asks for gigabytes");
    let v = harness::check_one("record count", &b, 0, |b| {
        Verdict::of(&record::decode_batch(b, count))
    });
    assert_eq!(v, Verdict::Rejected);
}

/// A log of one segment holding `seg` (its first LSN and store id are read from
/// its header), on a fresh `SimVfs`.
fn log_of(seg: &[u8]) -> (Arc<SimVfs>, Wal) {
    let id = id_at(seg, 16);
    let first = u64::from_le_bytes(seg[32..40].try_into().unwrap());
    let opts = WalOptions {
        segment_size_bytes: seg.len() as u64,
        ..WalOptions::default()
    };
    let vfs = SimVfs::new();
    let dir = Path::new("/regress/.got");
    vfs.create_dir_all(dir).unwrap();
    Wal::create_at(vfs.as_ref(), dir, id, &opts, first).unwrap();
    corpus::put_file(
        &vfs,
        &dir.join("wal").join(segment::segment_name(first)),
        seg,
    );
    let wal = Wal::open(vfs.clone() as Arc<dyn Vfs>, dir, id, opts, true).unwrap();
    (vfs, wal)
}

#[test]
fn a_frame_holding_lsns_on_both_sides_of_the_checkpoint_ends_the_search_for_it() {
    // Frames 52, 53, 54, then one claiming 32513 transactions from LSN 55 (its
    // checksum recomputed): a checkpoint at LSN 60 lies inside it, and looking
    // for the position after the checkpoint skipped nothing, forever.
    let seg = fixture("wal_scan", "frame-across-the-checkpoint-lsn.bin");
    let (_vfs, wal) = log_of(&seg);
    let v = harness::check_one("frame across the checkpoint", &seg, 0, |_| {
        Verdict::of(&wal.position(60))
    });
    assert_eq!(
        v,
        Verdict::Rejected,
        "the log does not reach the checkpoint as it should"
    );
}

#[test]
fn an_end_of_segment_frame_naming_its_own_segment_ends_the_scan() {
    // Segment 1's first frame is an end-of-segment frame naming segment 1:
    // following it read the same segment again, forever.
    let seg = fixture("wal_scan", "end-of-segment-naming-its-own-segment.bin");
    let (_vfs, wal) = log_of(&seg);
    harness::check_one("end of segment naming itself", &seg, 0, |_| {
        let mut cur = wal.position(0).expect("the log starts at LSN 1");
        let stop = wal
            .scan(&mut cur, None, &mut Vec::new(), usize::MAX)
            .unwrap();
        assert!(
            matches!(&stop, got::wal::ScanStop::Invalid(r) if r.contains("its own segment")),
            "{stop:?}"
        );
        Verdict::Rejected
    });
}

#[test]
fn a_run_whose_index_names_keys_beyond_its_blocks_reads_without_a_panic() {
    // A run whose block index (checksums recomputed) says a block ends with a
    // key beyond the block's real last key: a read from that key found no
    // entry in the block and read past its end.
    let b = fixture("run", "index-key-beyond-its-block.bin");
    let id = id_at(&b, 16);
    let vfs = SimVfs::new();
    let path = Path::new("/regress/runs/r.run");
    vfs.create_dir_all(path.parent().unwrap()).unwrap();
    corpus::put_file(&vfs, path, &b);
    let meta = RunMeta {
        name: "r.run".into(),
        min_lsn: u64::from_le_bytes(b[32..40].try_into().unwrap()),
        max_lsn: u64::from_le_bytes(b[40..48].try_into().unwrap()),
        bytes: b.len() as u64,
        keys: 0,
    };
    harness::check_one("run index beyond its blocks", &b, 0, |_| {
        let keys: Vec<Vec<u8>> = (0..40).map(|i| format!("eT-{i:04}").into_bytes()).collect();
        Verdict::of(&read_run(&vfs, path, &meta, id, &keys))
    });
}

#[test]
fn rfc3339_offsets_holding_multibyte_characters_are_refused_not_a_panic() {
    for s in [
        "2000-02-29T00:00:00.123456-0é30",
        "2000-02-29T00:00:00.123456𐍈30",
    ] {
        let v = harness::check_one("rfc3339", s.as_bytes(), 0, |b| {
            let t = got::transfer::parse_rfc3339(std::str::from_utf8(b).unwrap());
            assert_eq!(t, None, "{s}");
            Verdict::Rejected
        });
        assert_eq!(v, Verdict::Rejected);
    }
    assert_eq!(
        got::transfer::parse_rfc3339("2000-02-29T00:00:00.123456-05:30"),
        Some(951_782_400_123 + 5 * 3_600_000 + 30 * 60_000)
    );
}

#[test]
fn a_run_whose_index_gives_a_block_too_short_for_its_header_is_corrupt_not_a_panic() {
    // An index entry (partition checksums recomputed) giving a block of fewer
    // than the 8 bytes of its length and checksum: the block's header was read
    // past the end of what was read.
    let b = fixture("run", "block-length-shorter-than-its-header.bin");
    let id = id_at(&b, 16);
    let vfs = SimVfs::new();
    let path = Path::new("/regress/runs/r.run");
    vfs.create_dir_all(path.parent().unwrap()).unwrap();
    corpus::put_file(&vfs, path, &b);
    let meta = RunMeta {
        name: "r.run".into(),
        min_lsn: 0,
        max_lsn: u64::MAX,
        bytes: b.len() as u64,
        keys: 0,
    };
    let v = harness::check_one("run block too short", &b, 0, |_| {
        match read_run(&vfs, path, &meta, id, &[]) {
            Ok(true) => Verdict::Accepted,
            _ => Verdict::Rejected,
        }
    });
    assert_eq!(v, Verdict::Rejected);
}

#[test]
fn a_run_whose_index_gives_a_block_of_gigabytes_is_corrupt_before_allocating() {
    // An index entry (partition checksums recomputed) giving a block 4 GiB
    // long: room for it was allocated before its read could fail.
    let b = fixture("run", "block-of-gigabytes.bin");
    let id = id_at(&b, 16);
    let vfs = SimVfs::new();
    let path = Path::new("/regress/runs/r.run");
    vfs.create_dir_all(path.parent().unwrap()).unwrap();
    corpus::put_file(&vfs, path, &b);
    let meta = RunMeta {
        name: "r.run".into(),
        min_lsn: 0,
        max_lsn: u64::MAX,
        bytes: b.len() as u64,
        keys: 0,
    };
    let v = harness::check_one("run block of gigabytes", &b, 0, |_| {
        match read_run(&vfs, path, &meta, id, &[]) {
            Ok(true) => Verdict::Accepted,
            _ => Verdict::Rejected,
        }
    });
    assert_eq!(v, Verdict::Rejected);
}

#[test]
fn values_nested_deeper_than_the_limit_are_refused_not_a_stack_overflow() {
    // An index key read as properties: a map whose value is a list in a list in
    // a list… 7,500 levels deep (two bytes a level); decoding recursed once a
    // level and overflowed the stack. Found with the depth limit taken out.
    let bomb = fixture("stored_values", "lists-nested-past-the-stack.bin");
    let v = harness::check_one("nested values", &bomb, 0, |b| {
        assert!(model::decode::<Props>(b, "props").is_err());
        assert!(model::decode::<EntityRecord>(b, "entity").is_err());
        assert!(model::decode::<Value>(b, "value").is_err());
        Verdict::Rejected
    });
    assert_eq!(v, Verdict::Rejected);
    // As deep as the limit still round-trips, and deeper cannot be written.
    let nest = |depth: usize| (1..depth).fold(Value::Null, |v, _| Value::List(vec![v]));
    let deepest = nest(got::versioned_store::value::MAX_DEPTH);
    let bytes = model::encode(&deepest);
    assert_eq!(model::decode::<Value>(&bytes, "value").unwrap(), deepest);
    let s =
        Store::open_with_vfs(SimVfs::new() as Arc<dyn Vfs>, "/deep/.got", corpus::opts()).unwrap();
    let mut p = Props::new();
    p.insert("v".into(), deepest);
    s.transaction(|tx| tx.put("T-1", "task", p.clone()))
        .unwrap();
    assert_eq!(s.get("T-1").unwrap().unwrap().props, p);
    p.insert("v".into(), nest(got::versioned_store::value::MAX_DEPTH + 1));
    let e = s
        .transaction(|tx| tx.put("T-2", "task", p.clone()))
        .unwrap_err();
    assert!(e.to_string().contains("nests deeper"), "{e}");
}

#[test]
fn an_import_version_with_no_room_to_count_on_is_refused() {
    // An export with one entity at version 2^64 - 1: imported, the next edit of
    // that entity overflowed its version.
    let text = fixture("import", "version-with-no-room-to-count-on.jsonl");
    let shared =
        Store::open_with_vfs(SimVfs::new() as Arc<dyn Vfs>, "/v/.got", corpus::opts()).unwrap();
    let v = harness::check_one("import version", &text, 0, |b| {
        let r = got::transfer::parse(&shared, std::str::from_utf8(b).unwrap());
        assert!(
            r.as_ref()
                .is_err_and(|e| e.to_string().contains("\"version\" must be")),
            "{r:?}"
        );
        Verdict::Rejected
    });
    assert_eq!(v, Verdict::Rejected);
    // The highest version an import takes leaves room to count on.
    let line = |v: u64| {
        format!(r#"{{"type":"entity","id":"T-1","kind":"task","version":{v},"props":{{}}}}"#)
    };
    assert!(got::transfer::parse(&shared, &line(i64::MAX as u64 + 1)).is_err());
    assert_eq!(import(&line(i64::MAX as u64), &shared), Verdict::Accepted);
}

#[test]
fn a_repairing_file_whose_frames_a_repair_cannot_append_is_corrupt() {
    let path = Path::new("/r/REPAIRING");
    let frame = |first_lsn, count| got::wal::Frame {
        first_lsn,
        count,
        payload: record::encode_batch(&[]),
    };
    for frames in [
        vec![frame(11, 0)],
        vec![frame(12, 1)],
        vec![frame(11, 2), frame(12, 1)],
        vec![frame(11, u32::MAX), frame(u64::MAX - 1, 1)],
    ] {
        let b = backup::encode_repairing(10, &frames, "the end of the log");
        let v = harness::check_one("REPAIRING frames", &b, 0, |b| {
            Verdict::of(&backup::decode_repairing(b, path, 10))
        });
        assert_eq!(v, Verdict::Rejected, "{frames:?}");
    }
    let b = backup::encode_repairing(10, &[frame(11, 2), frame(13, 1)], "");
    assert_eq!(
        backup::decode_repairing(&b, path, 10)
            .unwrap()
            .unwrap()
            .0
            .len(),
        2
    );
}

/// The GoT JSON store's entity files (`got import --from got-json`, `got
/// migrate`): a mutated file is reported or imported, and an imported store
/// stays usable. Half the inputs get their `_checksum` recomputed, so the
/// mapping behind the check sees damaged data.
#[test]
fn got_json_entity_files_are_reported_or_imported_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join(".got");
    std::fs::create_dir_all(root.join("entities/_history")).unwrap();
    let fixture = |name: &str| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/got-json/store/.got/entities")
                .join(name),
        )
        .unwrap()
    };
    let corpus: Vec<Vec<u8>> = [
        "T-20251226-091130-c4fe0001.json",
        "T-20251226-092045-7b2d4e61.json",
        "S-018.json",
        "EPIC-platform.json",
        "H-20251226-110000-0ff1ce01.json",
        "D-20251226-102000-a11e7e01.json",
        "E-T-20251226-101245-58e3b1f0-T-20251226-100130-9a4c2d75-BLOCKS.json",
    ]
    .iter()
    .map(|n| fixture(n))
    .collect();
    let history = fixture("_history/S-018.jsonl");
    let reseal = |_: &mut Rng, _: usize, b: &mut Vec<u8>| {
        if let Ok(mut j) = serde_json::from_slice::<serde_json::Value>(b) {
            if j.get("data").is_some() {
                let sum = got::transfer::got_json::checksum(&j["data"]);
                j["_checksum"] = sum.into();
                *b = serde_json::to_vec_pretty(&j).unwrap();
            }
        }
    };
    let t = Target {
        name: "got_json_entity_files_are_reported_or_imported_never_a_panic",
        quick_inputs: 1_000,
        corpus,
        tokens: JSON_TOKENS,
        reseal: Some(&reseal),
        context_len: history.len(),
    };
    run(&t, |b| {
        std::fs::write(root.join("entities/X.json"), b).unwrap();
        // The same bytes as a history line too: earlier versions are read.
        let line: Vec<u8> = b.iter().copied().filter(|&c| c != b'\n').collect();
        let mut h = history.clone();
        h.extend_from_slice(&line);
        std::fs::write(root.join("entities/_history/S-018.jsonl"), &h).unwrap();
        let Ok(read) = got::transfer::got_json::read(&root, true) else {
            return Verdict::Rejected;
        };
        if !read.report.unreadable.is_empty() {
            return Verdict::Rejected;
        }
        let s = import_store();
        match got::transfer::got_json::import(&s, read) {
            Ok(_) if usable(&s) => Verdict::Accepted,
            _ => Verdict::Rejected,
        }
    });
}

/// What `got serve` does with a request (its method and path on the first
/// line, its body after): every answer is a documented status, an error is
/// `{"error": {code, message}}`, and nothing panics.
#[cfg(feature = "server")]
#[test]
fn server_requests_are_answered_or_refused_never_a_panic() {
    use got::server::http::{InProcess, ServeOptions};
    let vfs = SimVfs::new();
    let store = Store::open_with_vfs(vfs as Arc<dyn Vfs>, "/served/.got", corpus::opts()).unwrap();
    let id = got::tasks::create(
        &store,
        "fuzz",
        &got::tasks::NewTask {
            title: "a task".into(),
            ..Default::default()
        },
    )
    .unwrap()
    .id;
    let server = InProcess::new(
        store,
        ServeOptions::new("127.0.0.1:0".parse().unwrap(), "fuzz".into()),
    )
    .unwrap();
    let corpus: Vec<Vec<u8>> = [
        "POST /v1/tasks\n{\"title\": \"x\", \"priority\": \"high\", \"labels\": [\"a\"], \"depends_on\": []}".to_string(),
        format!("PATCH /v1/tasks/{id}\n{{\"title\": \"y\", \"if_version\": 1, \"add_labels\": [\"b\"]}}"),
        format!("POST /v1/tasks/{id}/claim\n{{\"lease\": \"30m\"}}"),
        format!("POST /v1/tasks/{id}/note\n{{\"text\": \"n\"}}"),
        format!("POST /v1/tasks/{id}/block\n{{\"reason\": \"r\"}}"),
        "POST /v1/next?claim=true\n{\"lease\": \"1h\"}".to_string(),
        "GET /v1/tasks?status=pending&label=a&limit=5&after=T-0\n".to_string(),
        format!("POST /v1/handoffs\n{{\"task\": \"{id}\", \"to\": \"b\", \"instructions\": \"i\", \"context\": {{\"k\": 1}}}}"),
        "POST /v1/decisions\n{\"title\": \"t\", \"rationale\": \"r\", \"alternatives\": [\"x\"]}".to_string(),
        "POST /v1/sprints\n{\"title\": \"s\", \"number\": 3, \"goals\": [\"g\"]}".to_string(),
        "POST /v1/epics\n{\"title\": \"e\", \"phases\": [\"p\"]}".to_string(),
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let t = Target {
        name: "server_requests_are_answered_or_refused_never_a_panic",
        quick_inputs: 1_000,
        corpus,
        tokens: JSON_TOKENS,
        reseal: None,
        context_len: 0,
    };
    const STATUSES: [u16; 11] = [200, 201, 400, 401, 404, 405, 409, 413, 422, 500, 503];
    run(&t, |b| {
        let (head, body) = match b.iter().position(|&c| c == b'\n') {
            Some(i) => (&b[..i], b[i + 1..].to_vec()),
            None => (b, Vec::new()),
        };
        let head = String::from_utf8_lossy(head);
        let mut parts = head.splitn(2, ' ');
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let (status, resp) = server.call(method, path, &[], body);
        assert!(STATUSES.contains(&status), "status {status} for {head:?}");
        if status >= 400 {
            let j: serde_json::Value = serde_json::from_slice(&resp)
                .unwrap_or_else(|e| panic!("{status} for {head:?}: not JSON ({e})"));
            assert!(j["error"]["code"].is_string(), "{j}");
        }
        if status < 400 {
            Verdict::Accepted
        } else {
            Verdict::Rejected
        }
    });
}

/// Byte tokens of MCP messages, for the byte mutations of the MCP target.
#[cfg(feature = "server")]
const MCP_TOKENS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"null",
    b"true",
    b"-1",
    b"1.0",
    b"1e999",
    b"9223372036854775808",
    b"\\u0000",
    b"\\ud800",
    "\u{10348}".as_bytes(),
    b"\xEF\xBB\xBF",
    b"\r",
    b"\n",
    b"\"id\":",
    b"\"method\":",
    b"\"params\":",
    b"\"arguments\":",
    b"\"_meta\":",
    b"\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\"",
    b"\"io.modelcontextprotocol/clientCapabilities\":{}",
    b"\"tools/call\"",
    b"\"notifications/cancelled\"",
];

/// What `got mcp` does with the lines a client writes to its stdin, through
/// rmcp's real transport, lifecycle and dispatch and got's handler (the
/// in-process driver, `got::server::mcp::InProcessMcp`). Seeds are real
/// client messages: `initialize` at 2025-06-18 and 2025-11-25,
/// `notifications/initialized`, `tools/list`, `ping`, `tools/call` of every
/// tool with valid arguments, and the handshake-free 2026-07-28 flow
/// (`server/discover`, `tools/call` with the `_meta` keys). They are mutated
/// as bytes and as JSON (`fuzz_decoders/mcp_messages.rs`) and sent to a
/// session already initialized, or (the openers) to a new one.
///
/// Checked for each input: nothing panics; every line the server writes is a
/// JSON-RPC 2.0 response (a result, or an error with an integer code); every
/// request gets exactly one response; a `tools/call` is answered with a
/// result with `isError` (a failure with its message as text, never a panic
/// in the library) or a JSON-RPC error; and the server keeps answering: a
/// valid tool call after the input gets its result. The one exception is
/// rmcp's: a session whose first message is not a request ends (stdout
/// closes, as `got mcp` exits), so a new session's end is allowed when the
/// input held a notification, response or error.
#[cfg(feature = "server")]
#[test]
fn mcp_messages_are_answered_or_refused_never_a_panic() {
    use got::server::mcp::{InProcessMcp, McpLine};
    use mcp_messages::{check_line, check_tool_response, meta_2026, TOOLS};
    use serde_json::{json, Value as Json};
    use std::cell::RefCell;

    // The store every server starts from: tasks for the tools to act on, and
    // handoffs to the server's agent. Exported once, imported for each server
    // (the same ids, so the seeds stay valid when the store is renewed).
    let new_store = || {
        Store::open_with_vfs(SimVfs::new() as Arc<dyn Vfs>, "/mcp/.got", corpus::opts()).unwrap()
    };
    let (export, [a, b, c, d, h1, h2]) = {
        let s = new_store();
        let task = |title: &str, labels: &[&str]| {
            got::tasks::create(
                &s,
                "fuzz",
                &got::tasks::NewTask {
                    title: title.into(),
                    labels: labels.iter().map(|l| l.to_string()).collect(),
                    ..Default::default()
                },
            )
            .unwrap()
            .id
        };
        let (a, b, c, d) = (
            task("a", &["a"]),
            task("b", &[]),
            task("c", &[]),
            task("d", &[]),
        );
        let handoff = |task: &str| {
            got::handoffs::initiate(&s, task, "other", "fuzz", "take it", None)
                .unwrap()
                .id
        };
        let (h1, h2) = (handoff(&a), handoff(&b));
        let mut text = Vec::new();
        got::transfer::export(&s, &mut text).unwrap();
        (String::from_utf8(text).unwrap(), [a, b, c, d, h1, h2])
    };
    let new_server = || {
        let s = new_store();
        let items = got::transfer::parse(&s, &export).unwrap();
        got::transfer::import(&s, &items, 50, |_, _| {}).unwrap();
        InProcessMcp::new(s, "fuzz".into()).unwrap()
    };

    let req = |id: Json, method: &str, params: Json| {
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
    };
    let call = |id: Json, name: &str, args: Json| {
        req(id, "tools/call", json!({"name": name, "arguments": args}))
    };
    let init_params = |version: &str| {
        json!({
            "protocolVersion": version,
            "capabilities": {"roots": {"listChanged": true}, "sampling": {}, "elicitation": {}},
            "clientInfo": {"name": "fuzz-client", "version": "1.0"},
        })
    };
    const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    // The openers: what a client sends first.
    let openers = vec![
        req(json!(0), "initialize", init_params("2025-06-18")),
        format!(
            "{}\n{INITIALIZED}",
            req(json!("init"), "initialize", init_params("2025-11-25"))
        ),
        req(json!(1), "server/discover", json!({"_meta": meta_2026()})),
        req(
            json!("inline"),
            "tools/call",
            json!({"name": "create_task", "arguments": {"title": "inline"}, "_meta": meta_2026()}),
        ),
        req(json!(2), "tools/list", json!({"_meta": meta_2026()})),
    ];
    let opener_count = openers.len();
    let calls = [
        (
            "create_task",
            json!({"title": "write the parser", "description": "d", "priority": "high",
            "category": "feature", "labels": ["mcp"], "estimate_hours": 1.5, "depends_on": [a],
            "blocks": [], "parent": a, "part_of": []}),
        ),
        ("show_task", json!({"id": a})),
        (
            "list_tasks",
            json!({"status": ["pending", "in_progress"], "priority": "high", "label": "a",
            "category": "feature", "assignee": "fuzz", "limit": 5, "after": a}),
        ),
        (
            "update_task",
            json!({"id": a, "title": "renamed", "description": "more", "priority": "low",
            "category": "docs", "add_labels": ["b"], "remove_labels": ["a"], "estimate_hours": 2,
            "if_version": 1}),
        ),
        ("claim_task", json!({"id": b, "lease": "30m"})),
        ("release_task", json!({"id": b, "force": true})),
        (
            "next_task",
            json!({"claim": true, "lease": "1h", "agent": "agent-7"}),
        ),
        (
            "complete_task",
            json!({"id": c, "retrospective": "done", "agent": "fuzz"}),
        ),
        (
            "block_task",
            json!({"id": d, "reason": "waiting on review"}),
        ),
        ("unblock_task", json!({"id": d})),
        ("add_note", json!({"id": a, "text": "the grammar is LL(1)"})),
        ("ready", json!({"limit": 5})),
        ("blocked", json!({})),
        (
            "handoff_initiate",
            json!({"task": a, "to": "fuzz", "instructions": "take it",
            "context": {"k": [1, 2]}}),
        ),
        ("handoff_accept", json!({"id": h1})),
        (
            "handoff_complete",
            json!({"id": h1, "result": {"ok": true}, "artifacts": ["src/a.rs"]}),
        ),
        ("handoff_reject", json!({"id": h2, "reason": "busy"})),
        (
            "log_decision",
            json!({"title": "use rmcp", "rationale": "the official SDK",
            "alternatives": ["our own"], "affects": [a]}),
        ),
        ("dashboard", json!({})),
    ];
    for t in TOOLS {
        assert!(calls.iter().any(|(n, _)| *n == t), "no seed calls {t}");
    }
    let mut seeds = openers;
    seeds.extend([
        INITIALIZED.to_string(),
        req(json!("list"), "tools/list", json!({})),
        req(json!(7), "ping", json!({})),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": 3, "reason": "no longer needed"}})
        .to_string(),
        req(
            json!(8),
            "tools/call",
            json!({"name": "next_task", "arguments": {"claim": true}, "_meta": meta_2026()}),
        ),
    ]);
    for (i, (name, args)) in calls.iter().enumerate() {
        // Ids as numbers and as strings.
        let id = if i % 2 == 0 {
            json!(100 + i)
        } else {
            json!(format!("call-{i}"))
        };
        seeds.push(call(id, name, args.clone()));
    }
    let corpus: Vec<Vec<u8>> = seeds.into_iter().map(String::into_bytes).collect();

    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Phase {
        /// A new session: the input is its first message.
        Fresh,
        /// After `initialize` and `notifications/initialized`.
        Initialized,
        /// Whatever the last input left.
        Unknown,
    }
    struct Fuzzed {
        mcp: InProcessMcp,
        phase: Phase,
        inputs: u64,
    }
    // A new server (on a new store) every so many inputs: a store that only
    // grows would make every list longer and every input slower.
    const RENEW_EVERY: u64 = 2_000;
    let state = RefCell::new(Fuzzed {
        mcp: new_server(),
        phase: Phase::Unknown,
        inputs: 0,
    });
    let t = Target {
        name: "mcp_messages_are_answered_or_refused_never_a_panic",
        quick_inputs: 4_000,
        corpus,
        tokens: MCP_TOKENS,
        reseal: None,
        // The store the server reads: a list or the dashboard answers with
        // up to 100 tasks whatever the request's size.
        context_len: 256 << 10,
    };
    // Which session an input goes to (not counted): the openers to a new
    // session half the time (which half depends on the input only, so a
    // replayed input goes to the same), everything else to one initialized
    // at 2025-06-18 or 2025-11-25.
    let prepare = |base: usize, input: &[u8]| {
        let mut st = state.borrow_mut();
        st.inputs += 1;
        if st.inputs.is_multiple_of(RENEW_EVERY) {
            st.mcp = new_server();
            st.phase = Phase::Unknown;
        }
        if base < opener_count && input.len().is_multiple_of(2) {
            st.mcp.restart();
            st.phase = Phase::Fresh;
        } else if st.phase != Phase::Initialized || st.mcp.ended() {
            st.mcp.restart();
            let version = if input.len().is_multiple_of(2) {
                "2025-06-18"
            } else {
                "2025-11-25"
            };
            let r = st.mcp.request("initialize", init_params(version)).unwrap();
            assert_eq!(r["result"]["protocolVersion"], version, "{r}");
            let a = st.mcp.send(INITIALIZED.as_bytes()).unwrap();
            assert!(a.lines.is_empty() && !a.ended, "{a:?}");
            st.phase = Phase::Initialized;
        }
    };
    run_mutated_with(&t, &mcp_messages::mutate_input, prepare, |input, ()| {
        let shown = || mcp_messages::shown(input);
        let mut st = state.borrow_mut();
        let phase = st.phase;
        let answer = st
            .mcp
            .send(input)
            .unwrap_or_else(|e| panic!("the server stopped answering ({phase:?} session): {e}"));
        let responses: Vec<Json> = answer.lines.iter().map(|l| check_line(l, input)).collect();
        // Requests are answered one at a time, so the n-th response with an
        // id answers the n-th request with that id.
        let mut answered = false;
        let mut seen: Vec<&Json> = Vec::new();
        for sent in &answer.sent {
            let McpLine::Request { id, method } = sent else {
                continue;
            };
            let nth = seen.iter().filter(|i| **i == id).count();
            seen.push(id);
            let Some(r) = responses.iter().filter(|r| &r["id"] == id).nth(nth) else {
                // A session that ended did not read what came after its end.
                assert!(answer.ended, "no response to request {id}\nfor {}", shown());
                continue;
            };
            answered |= if method == "tools/call" {
                check_tool_response(r, input)
            } else {
                r.get("result").is_some()
            };
        }
        let asked = seen.len();
        let with_ids = responses.iter().filter(|r| !r["id"].is_null()).count();
        assert!(
            with_ids == asked || answer.ended && with_ids < asked,
            "{asked} requests and {with_ids} responses to them\nfor {}",
            shown()
        );
        let verdict = if answered {
            Verdict::Accepted
        } else {
            Verdict::Rejected
        };
        if answer.ended {
            assert!(
                phase == Phase::Fresh && answer.sent.contains(&McpLine::Message),
                "the session ended ({phase:?} session, rmcp read {:?})\nfor {}",
                answer.sent,
                shown()
            );
            st.phase = Phase::Unknown;
            return verdict;
        }
        // The server still answers: a valid call gets its result (with the
        // request metadata unless the session was initialized).
        let mut params = json!({"name": "ready", "arguments": {"limit": 1}});
        if phase != Phase::Initialized {
            params["_meta"] = meta_2026();
        }
        let r = st.mcp.request("tools/call", params).unwrap_or_else(|e| {
            panic!(
                "no answer to a valid call after the input ({phase:?} session): {e}\nfor {}",
                shown()
            )
        });
        check_line(r.to_string().as_bytes(), input);
        assert!(
            check_tool_response(&r, input),
            "a valid call failed after the input ({phase:?} session): {r}\nfor {}",
            shown()
        );
        if phase == Phase::Fresh {
            st.phase = Phase::Unknown;
        }
        verdict
    });
}

/// Found by the MCP target: a claim with a lease of `u64::MAX` seconds (its
/// expiry saturates to `i64::MAX` ms), then a claim by another agent, whose
/// refusal names when the lease ends: formatting that time panicked (the
/// calendar's clamp was 999 ms past the last millisecond jiff takes).
#[cfg(feature = "server")]
#[test]
fn a_lease_past_the_calendar_is_a_conflict_not_a_panic() {
    use got::server::mcp::InProcessMcp;
    use serde_json::json;
    let store =
        Store::open_with_vfs(SimVfs::new() as Arc<dyn Vfs>, "/lease/.got", corpus::opts()).unwrap();
    let mut mcp = InProcessMcp::new(store, "fuzz".into()).unwrap();
    let init = json!({
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "fuzz-client", "version": "1.0"},
    });
    mcp.request("initialize", init).unwrap();
    let mut call = |args: serde_json::Value, name: &str| {
        let r = mcp
            .request("tools/call", json!({"name": name, "arguments": args}))
            .unwrap();
        r["result"].clone()
    };
    let t = call(json!({"title": "t"}), "create_task");
    let id = t["structuredContent"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let lease = u64::MAX.to_string();
    let claimed = call(json!({"id": id, "lease": lease}), "claim_task");
    assert_eq!(claimed["isError"], false, "{claimed}");
    let lost = call(json!({"id": id, "agent": "other"}), "claim_task");
    assert_eq!(lost["isError"], true, "{lost}");
    assert_eq!(
        lost["structuredContent"]["error"]["code"], "conflict",
        "{lost}"
    );
    let text = lost["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("lease until 9999-"), "{text}");
}
