//! Corruption (issue requirement 4): damage that valid later data proves was
//! acknowledged is never silently truncated. Opening read-write refuses with an
//! error naming the file and offset; `got verify` and `got repair` exit 7 and
//! change nothing; only `got repair --truncate-at-corruption` cuts the log, keeping
//! the cut bytes in `quarantine/`. Damaged runs and a damaged CURRENT are reported
//! as corruption naming the file, never a panic.

use crate::common;

use common::cli::text;
use common::store_dir::{contents, copy_dir, quarantine_files, snapshot};
use common::wal_bytes::{frames, FIRST_SEGMENT, FRAME_HEADER};
use got::versioned_store::{manifest, verify};
use got::wal::{segment, RealVfs};
use got::{props, Entity, Error, Options, Store, Value};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

/// Transactions in the template store.
const N: usize = 12;
/// The damaged frame (1-based LSN; one transaction per frame).
const DAMAGED_LSN: usize = 3;

// ---------------------------------------------------------------------------------
// Helpers.

fn opts() -> Options {
    Options {
        create_if_missing: true,
        auto_checkpoint: false,
        actor: Some("corruption-test".into()),
        ..Default::default()
    }
}

fn open(store: &Path) -> got::Result<Store> {
    Store::open(
        store,
        Options {
            create_if_missing: false,
            ..opts()
        },
    )
}

fn flip_bit(path: &Path, offset: usize, bit: u8) {
    let mut b = fs::read(path).unwrap();
    b[offset] ^= 1 << bit;
    fs::write(path, b).unwrap();
}

fn got(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_got"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("GOT_DIR")
        .env("GOT_AGENT", "corruption-cli")
        .env("GOT_LOCK_TIMEOUT", "5")
        .output()
        .expect("run got")
}

fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn assert_unchanged(before: &BTreeMap<PathBuf, Vec<u8>>, dir: &Path, what: &str) {
    let after = snapshot(dir);
    let names = |m: &BTreeMap<PathBuf, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&after),
        names(before),
        "{what}: the set of files changed"
    );
    for (p, b) in before {
        assert!(after[p] == *b, "{what}: {} changed", p.display());
    }
}

/// A store with N committed transactions, each creating one entity.
struct Template {
    _tmp: tempfile::TempDir,
    store: PathBuf,
    entities: Vec<Entity>,
}

fn template() -> Template {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join(".got");
    let s = Store::open(&store, opts()).unwrap();
    let entities = (0..N)
        .map(|i| {
            s.transaction(|tx| {
                tx.put(
                    &format!("T-{:04}", i + 1),
                    "task",
                    props([
                        ("title", Value::from(format!("transaction {}", i + 1))),
                        ("n", Value::from(i as i64)),
                    ]),
                )
            })
            .unwrap()
        })
        .collect();
    drop(s);
    Template {
        _tmp: tmp,
        store,
        entities,
    }
}

/// A fresh copy of the template in its own directory.
fn copy_of(t: &Template) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join(".got");
    copy_dir(&t.store, &store);
    (tmp, store)
}

/// The error must be `Wal(Corruption)` naming `file` and `offset`.
fn assert_corruption_at(e: &Error, file: &Path, offset: usize, what: &str) {
    match e {
        Error::Wal(got::wal::Error::Corruption {
            file: f, offset: o, ..
        }) => {
            assert_eq!(
                f.file_name(),
                file.file_name(),
                "{what}: the error names the wrong file: {e}"
            );
            assert!(
                f.ends_with(Path::new("wal").join(FIRST_SEGMENT)),
                "{what}: {e}"
            );
            assert_eq!(
                *o, offset as u64,
                "{what}: the error names the wrong offset: {e}"
            );
        }
        other => panic!("{what}: expected Wal(Corruption), got {other:?}"),
    }
    assert!(e.is_corruption(), "{what}");
    let msg = e.to_string();
    assert!(
        msg.contains(FIRST_SEGMENT) && msg.contains(&offset.to_string()),
        "{what}: the message must name file and offset: {msg}"
    );
    assert!(
        msg.contains("got repair"),
        "{what}: the message must point at `got repair`: {msg}"
    );
}

// ---------------------------------------------------------------------------------
// Mid-log bit flips.

/// Flips `bit` of byte `rel` of the frame holding LSN 3 (of 12), then walks the
/// whole story: refuse, report, explain, change nothing, truncate only when asked.
fn mid_log_flip(rel: usize, bit: u8, what: &str) {
    let t = template();
    let (_tmp, store) = copy_of(&t);
    let seg = store.join("wal").join(FIRST_SEGMENT);
    let original = fs::read(&seg).unwrap();
    let fr = frames(&original);
    assert_eq!(fr.len(), N);
    let f = fr[DAMAGED_LSN - 1];
    assert_eq!(f.first_lsn, DAMAGED_LSN as u64);
    flip_bit(&seg, f.off + rel, bit);
    let damaged = fs::read(&seg).unwrap();
    let before = snapshot(&store);

    // 1. Opening read-write refuses, naming file and offset, and changes nothing.
    for attempt in 0..2 {
        let e = open(&store).expect_err("a store with mid-log damage must not open read-write");
        assert_corruption_at(&e, &seg, f.off, &format!("{what}, open attempt {attempt}"));
        assert_unchanged(&before, &store, &format!("{what}: failed open"));
    }
    assert!(quarantine_files(&store).is_empty());

    // 2. verify: exit 7, the finding names file and offset.
    let rep = verify(Arc::new(RealVfs), &store).unwrap();
    assert!(
        !rep.healthy(),
        "{what}: verify called mid-log damage healthy"
    );
    assert!(
        rep.findings
            .iter()
            .any(|x| x.contains(FIRST_SEGMENT) && x.contains(&f.off.to_string())),
        "{what}: {:?}",
        rep.findings
    );
    let o = got(&store, &["verify"]);
    assert_eq!(o.status.code(), Some(7), "{what}: got verify\n{}", text(&o));
    assert!(
        all_output(&o).contains(FIRST_SEGMENT),
        "{what}: {}",
        text(&o)
    );
    let o = got(&store, &["--json", "verify"]);
    assert_eq!(
        o.status.code(),
        Some(7),
        "{what}: got --json verify\n{}",
        text(&o)
    );
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: verify --json output is not JSON ({e}):\n{}",
            text(&o)
        )
    });
    assert_eq!(j["healthy"], false, "{what}: {j}");
    assert_unchanged(&before, &store, &format!("{what}: verify"));

    // 3. repair without the flag: exit 7, explains the loss, changes nothing.
    let o = got(&store, &["repair"]);
    assert_eq!(o.status.code(), Some(7), "{what}: got repair\n{}", text(&o));
    let out = all_output(&o);
    assert!(
        out.contains(&format!("{DAMAGED_LSN}..={N}")),
        "{what}: repair must print the LSN range that truncating would discard:\n{out}"
    );
    for e in &t.entities[DAMAGED_LSN..] {
        assert!(
            out.contains(&e.id),
            "{what}: repair must list lost id {}:\n{out}",
            e.id
        );
    }
    for e in &t.entities[..DAMAGED_LSN - 1] {
        assert!(!out.contains(&e.id), "{what}: {} is not lost:\n{out}", e.id);
    }
    assert!(out.contains("--truncate-at-corruption"), "{what}:\n{out}");
    assert_unchanged(&before, &store, &format!("{what}: repair without the flag"));
    assert!(
        open(&store).is_err(),
        "{what}: still refused after repair without the flag"
    );

    // 4. repair --truncate-at-corruption: the prefix before the damage survives.
    let o = got(&store, &["repair", "--truncate-at-corruption"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{what}: got repair --truncate\n{}",
        text(&o)
    );
    let s = open(&store).unwrap_or_else(|e| panic!("{what}: open after truncation: {e}"));
    let want: BTreeMap<String, Entity> = t.entities[..DAMAGED_LSN - 1]
        .iter()
        .map(|e| (e.id.clone(), e.clone()))
        .collect();
    assert_eq!(contents(&s), want, "{what}: after truncation");
    assert_eq!(s.applied_lsn().unwrap(), DAMAGED_LSN as u64 - 1);
    drop(s);

    // The damaged frame and everything after it are in quarantine/, byte for byte.
    let q = quarantine_files(&store);
    assert_eq!(q.len(), 1, "{what}: {q:?}");
    assert!(
        q[0].starts_with(&format!("{FIRST_SEGMENT}.{:012}.", f.off)),
        "{what}: {q:?}"
    );
    let kept = fs::read(store.join("quarantine").join(&q[0])).unwrap();
    let end = fr[N - 1].end();
    let tail = &damaged[f.off..end];
    let n = tail.iter().rposition(|&b| b != 0).unwrap() + 1;
    assert_eq!(kept, tail[..n], "{what}: quarantined bytes");
    let now = fs::read(&seg).unwrap();
    assert_eq!(
        now[..f.off],
        original[..f.off],
        "{what}: the prefix was touched"
    );
    assert!(
        now[f.off..].iter().all(|&b| b == 0),
        "{what}: the cut region is zeroed"
    );

    let o = got(&store, &["verify"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{what}: verify after repair\n{}",
        text(&o)
    );

    // The store goes on: the next commit takes the first lost LSN.
    let s = open(&store).unwrap();
    s.transaction(|tx| tx.put("AFTER", "task", props([("title", Value::from("after"))])))
        .unwrap();
    assert_eq!(s.history("AFTER").unwrap()[0].lsn, DAMAGED_LSN as u64);
    drop(s);
    let o = got(&store, &["verify"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{what}: verify after a new commit\n{}",
        text(&o)
    );
}

/// `got --json repair` on mid-log damage: exit 7 and one JSON document on stdout
/// describing the damage (like `got --json verify`, which prints its report and
/// exits 7 without a second object), changing nothing.
#[test]
fn got_json_repair_prints_one_json_document_describing_the_damage() {
    let t = template();
    let (_tmp, store) = copy_of(&t);
    let seg = store.join("wal").join(FIRST_SEGMENT);
    let f = frames(&fs::read(&seg).unwrap())[DAMAGED_LSN - 1];
    flip_bit(&seg, f.off + FRAME_HEADER + 10, 3);
    let before = snapshot(&store);
    let o = got(&store, &["--json", "repair"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert_unchanged(&before, &store, "got --json repair");
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "repair --json stdout is not one JSON document ({e}):\n{}",
            text(&o)
        )
    });
    assert_eq!(j["damage"]["first_lost_lsn"], DAMAGED_LSN as u64, "{j}");
    assert_eq!(j["damage"]["last_lost_lsn"], N as u64, "{j}");
    assert_eq!(j["damage"]["offset"], f.off as u64, "{j}");
    assert_eq!(j["truncated"], false, "{j}");
    let lost: Vec<&str> = j["damage"]["lost"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for e in &t.entities[DAMAGED_LSN..] {
        assert!(lost.contains(&e.id.as_str()), "{j}");
    }
}

#[test]
fn bit_flip_in_an_early_frames_length_field_refuses_open_and_repair_truncates_only_when_asked() {
    mid_log_flip(4, 0, "low bit of the length field");
}

#[test]
fn bit_flip_making_an_early_frames_length_huge_is_corruption_not_a_torn_tail() {
    mid_log_flip(7, 7, "high bit of the length field");
}

#[test]
fn bit_flip_in_an_early_frames_payload_refuses_open_and_repair_truncates_only_when_asked() {
    mid_log_flip(FRAME_HEADER + 10, 3, "payload");
}

#[test]
fn bit_flip_in_an_early_frames_checksum_refuses_open_and_repair_truncates_only_when_asked() {
    mid_log_flip(1, 5, "checksum");
}

/// Every other header field: the open is refused, naming file and offset, and no
/// byte of the store changes.
#[test]
fn bit_flip_in_any_header_field_of_an_early_frame_refuses_open_and_changes_nothing() {
    let t = template();
    let fields = [
        (8, "kind"),
        (9, "frame format version"),
        (10, "reserved"),
        (12, "count"),
        (16, "first LSN"),
        (20, "first LSN (high bytes)"),
        (24, "store id"),
        (39, "store id (last byte)"),
        (40, "durable LSN"),
        (47, "durable LSN (high byte)"),
    ];
    for (rel, name) in fields {
        for bit in [0u8, 6] {
            let what = format!("bit {bit} of byte {rel} ({name})");
            let (_tmp, store) = copy_of(&t);
            let seg = store.join("wal").join(FIRST_SEGMENT);
            let f = frames(&fs::read(&seg).unwrap())[DAMAGED_LSN - 1];
            flip_bit(&seg, f.off + rel, bit);
            let before = snapshot(&store);
            let e = open(&store).expect_err(&what);
            assert_corruption_at(&e, &seg, f.off, &what);
            assert_unchanged(&before, &store, &what);
            let rep = verify(Arc::new(RealVfs), &store).unwrap();
            assert!(!rep.healthy(), "{what}");
        }
    }
}

/// A whole frame header zeroed in mid-log (a lost sector) looks like the end of the
/// log to a plain scan; the frames after it prove otherwise: corruption, refused.
#[test]
fn a_zeroed_frame_header_in_mid_log_is_corruption_not_the_end_of_the_log() {
    let t = template();
    let (_tmp, store) = copy_of(&t);
    let seg = store.join("wal").join(FIRST_SEGMENT);
    let mut b = fs::read(&seg).unwrap();
    let f = frames(&b)[DAMAGED_LSN - 1];
    b[f.off..f.off + FRAME_HEADER].fill(0);
    fs::write(&seg, &b).unwrap();
    let before = snapshot(&store);
    let e = open(&store).expect_err("a zeroed mid-log header must not read as the end");
    assert_corruption_at(&e, &seg, f.off, "zeroed header");
    assert_unchanged(&before, &store, "zeroed header");
    let o = got(&store, &["verify"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    let o = got(&store, &["repair"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert_unchanged(&before, &store, "zeroed header, after verify and repair");
}

/// A bit flip in the last frame of a rotated segment, or in its end-of-segment
/// frame, is proven corruption by the later segment (not a torn tail).
#[test]
fn damage_at_the_end_of_a_rotated_segment_is_corruption_proven_by_the_next_segment() {
    const SEG: u64 = 4096;
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let s = Store::open(&base, opts()).unwrap();
    drop(s);
    // Tiny segments force rotation: replace the (empty) first segment with a small
    // one made by the library itself.
    let store_id = manifest::read(&RealVfs, &base).unwrap().store_id;
    segment::install_segment(&RealVfs, &base.join("wal"), &store_id, 1, SEG).unwrap();
    let small = Options {
        segment_size_bytes: SEG,
        ..opts()
    };
    let s = Store::open(&base, small.clone()).unwrap();
    let mut ids = Vec::new();
    while fs::read_dir(base.join("wal")).unwrap().count() < 3 {
        let id = format!("R-{:04}", ids.len() + 1);
        s.transaction(|tx| tx.put(&id, "task", props([("pad", Value::from("x".repeat(200)))])))
            .unwrap();
        ids.push(id);
    }
    drop(s);
    let seg1 = base.join("wal").join(FIRST_SEGMENT);
    let fr = frames(&fs::read(&seg1).unwrap());
    let eos = *fr.last().unwrap();
    assert_eq!(
        eos.kind, 2,
        "segment 1 must end with an end-of-segment frame: {fr:?}"
    );
    let last = fr[fr.len() - 2];

    for (f, what) in [
        (last, "last batch frame of segment 1"),
        (eos, "end-of-segment frame"),
    ] {
        let store = tmp.path().join(format!("copy-{}", f.off));
        copy_dir(&base, &store);
        let seg = store.join("wal").join(FIRST_SEGMENT);
        let rel = if f.kind == 1 { FRAME_HEADER + 20 } else { 16 };
        flip_bit(&seg, f.off + rel, 2);
        let before = snapshot(&store);
        let e = Store::open(
            &store,
            Options {
                create_if_missing: false,
                ..small.clone()
            },
        )
        .expect_err(what);
        assert_corruption_at(&e, &seg, f.off, what);
        assert_unchanged(&before, &store, what);
        let o = got(&store, &["verify"]);
        assert_eq!(o.status.code(), Some(7), "{what}\n{}", text(&o));
        let o = got(&store, &["repair"]);
        assert_eq!(o.status.code(), Some(7), "{what}\n{}", text(&o));
        assert_unchanged(&before, &store, what);
        let o = got(&store, &["repair", "--truncate-at-corruption"]);
        assert_eq!(o.status.code(), Some(0), "{what}\n{}", text(&o));
        let s = Store::open(
            &store,
            Options {
                create_if_missing: false,
                ..small.clone()
            },
        )
        .unwrap_or_else(|e| panic!("{what}: open after truncation: {e}"));
        let kept = (last.first_lsn - if f.kind == 1 { 1 } else { 0 }) as usize;
        let listed: Vec<String> = contents(&s).into_keys().collect();
        assert_eq!(listed, ids[..kept].to_vec(), "{what}");
        drop(s);
        // The later segments went to quarantine/ too.
        assert_eq!(
            fs::read_dir(store.join("wal")).unwrap().count(),
            1,
            "{what}: later segments must be moved out of wal/"
        );
        assert!(
            quarantine_files(&store).len() >= 2,
            "{what}: {:?}",
            quarantine_files(&store)
        );
        let o = got(&store, &["verify"]);
        assert_eq!(o.status.code(), Some(0), "{what}\n{}", text(&o));
    }
}

// ---------------------------------------------------------------------------------
// Runs.

/// A store with a checkpointed run (entities + edges) and two WAL commits after it.
fn store_with_run() -> (tempfile::TempDir, PathBuf, PathBuf, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join(".got");
    let s = Store::open(&store, opts()).unwrap();
    let mut ids = Vec::new();
    for i in 0..8 {
        let id = format!("K-{i:03}");
        s.transaction(|tx| {
            tx.put(
                &id,
                "task",
                props([("title", Value::from(format!("checkpointed {i}")))]),
            )?;
            if i > 0 {
                tx.add_edge(
                    &id,
                    "depends_on",
                    &format!("K-{:03}", i - 1),
                    Default::default(),
                )?;
            }
            Ok(())
        })
        .unwrap();
        ids.push(id);
    }
    let info = s.checkpoint().unwrap();
    assert_eq!(info.checkpoint_lsn, 8);
    for i in 0..2 {
        s.transaction(|tx| tx.put(&format!("W-{i}"), "task", Default::default()))
            .unwrap();
    }
    drop(s);
    let runs: Vec<PathBuf> = fs::read_dir(store.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "run"))
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    (tmp, store, runs[0].clone(), ids)
}

fn names_file(msg: &str, file: &Path) -> bool {
    msg.contains(&*file.file_name().unwrap().to_string_lossy())
}

/// A flipped byte inside a run's data block: verify exits 7 naming the run; opening
/// or reading reports corruption naming the run (no panic, no wrong data).
#[test]
fn bit_flip_inside_a_run_block_is_reported_as_corruption_naming_the_run() {
    let (_tmp, store, run, ids) = store_with_run();
    // The first block starts right after the 64-byte header: len, crc, payload.
    flip_bit(&run, 64 + 8 + 5, 1);

    let rep = verify(Arc::new(RealVfs), &store).unwrap();
    assert!(!rep.healthy());
    assert!(
        rep.findings.iter().any(|f| names_file(f, &run)),
        "{:?}",
        rep.findings
    );
    let o = got(&store, &["verify"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert!(names_file(&all_output(&o), &run), "{}", text(&o));

    // Open may succeed (blocks are checked when first read); reading must fail.
    let err = match open(&store) {
        Err(e) => e,
        Ok(s) => s
            .get(&ids[0])
            .expect_err("reading a damaged block must fail"),
    };
    assert!(err.is_corruption(), "{err:?}");
    assert!(names_file(&err.to_string(), &run), "{err}");
    assert!(
        matches!(err, Error::CorruptFile { ref file, .. } if file.ends_with(run.file_name().unwrap())),
        "{err:?}"
    );
    if let Ok(s) = open(&store) {
        let e = s
            .list(None, None)
            .expect_err("listing over a damaged block must fail");
        assert!(e.is_corruption() && names_file(&e.to_string(), &run), "{e}");
        // The WAL-only entities are unaffected.
        assert!(s.get("W-0").unwrap().is_some());
    }

    for args in [
        vec!["entity", "get", ids[0].as_str()],
        vec!["entity", "list"],
        vec!["history", ids[0].as_str()],
    ] {
        let o = got(&store, &args);
        assert_eq!(o.status.code(), Some(7), "{args:?}\n{}", text(&o));
        assert!(names_file(&all_output(&o), &run), "{args:?}\n{}", text(&o));
        let mut j = vec!["--json"];
        j.extend(&args);
        let o = got(&store, &j);
        assert_eq!(o.status.code(), Some(7), "{j:?}\n{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["error"]["code"], "corrupt", "{v}");
    }
}

/// Damage to a run's header, index or footer: refused at open, naming the run.
#[test]
fn damage_to_a_runs_header_index_or_footer_is_corruption_naming_the_run() {
    let (_tmp, base, run, _ids) = store_with_run();
    let bytes = fs::read(&run).unwrap();
    let len = bytes.len();
    let index_off = u64::from_le_bytes(bytes[len - 48..len - 40].try_into().unwrap()) as usize;
    let rel = run.strip_prefix(&base).unwrap().to_path_buf();
    for (off, what) in [
        (3, "header magic"),
        (20, "header store id"),
        (62, "header checksum"),
        (index_off + 3, "index"),
        (len - 48 + 2, "footer index offset"),
        (len - 30, "footer key count"),
        (len - 2, "footer magic"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join(".got");
        copy_dir(&base, &store);
        flip_bit(&store.join(&rel), off, 0);
        let e = match open(&store) {
            Err(e) => e,
            Ok(s) => s.list(None, None).expect_err(what),
        };
        assert!(e.is_corruption(), "{what}: {e:?}");
        assert!(names_file(&e.to_string(), &run), "{what}: {e}");
        let o = got(&store, &["verify"]);
        assert_eq!(o.status.code(), Some(7), "{what}\n{}", text(&o));
        assert!(names_file(&all_output(&o), &run), "{what}\n{}", text(&o));
        let o = got(&store, &["entity", "list"]);
        assert_eq!(o.status.code(), Some(7), "{what}\n{}", text(&o));
    }
}

/// Damage to a run's filters (format 4, just before the footer) loses nothing:
/// the damaged filter is not used, every read answers from the blocks, and
/// `verify` reports the run.
#[test]
fn damage_to_a_runs_filters_is_reported_by_verify_and_reads_still_answer() {
    let (_tmp, base, run, ids) = store_with_run();
    let bytes = fs::read(&run).unwrap();
    let len = bytes.len();
    let filters_len = u32::from_le_bytes(bytes[56..60].try_into().unwrap()) as usize;
    assert!(filters_len > 0, "the run has filters");
    let rel = run.strip_prefix(&base).unwrap().to_path_buf();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join(".got");
    copy_dir(&base, &store);
    // The middle of the last filter's bits.
    flip_bit(&store.join(&rel), len - 48 - filters_len / 2, 3);
    let s = open(&store).unwrap();
    for id in &ids {
        assert!(s.get(id).unwrap().is_some(), "{id}");
    }
    drop(s);
    let o = got(&store, &["entity", "get", ids[0].as_str()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = got(&store, &["verify"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert!(all_output(&o).contains("filter"), "{}", text(&o));
    assert!(names_file(&all_output(&o), &run), "{}", text(&o));
}

// ---------------------------------------------------------------------------------
// CURRENT.

/// A damaged CURRENT (flipped body byte, truncation, bad magic, empty file) is
/// reported as corruption naming CURRENT, by open, verify and every CLI command.
#[test]
fn a_damaged_current_is_reported_clearly_by_open_verify_and_the_cli() {
    let (_tmp, base, _run, _ids) = store_with_run();
    let current = fs::read(base.join("CURRENT")).unwrap();
    let mut cases: Vec<(Vec<u8>, &str)> = Vec::new();
    let mut b = current.clone();
    b[30] ^= 0x10;
    cases.push((b, "flipped body byte"));
    let mut b = current.clone();
    b[16] ^= 0x01;
    cases.push((b, "flipped checksum"));
    cases.push((current[..current.len() - 3].to_vec(), "truncated"));
    let mut b = current.clone();
    b[0] = b'X';
    cases.push((b, "bad magic"));
    cases.push((Vec::new(), "empty"));
    let mut b = current.clone();
    b.extend_from_slice(b"junk");
    cases.push((b, "trailing junk"));

    for (bytes, what) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join(".got");
        copy_dir(&base, &store);
        fs::write(store.join("CURRENT"), &bytes).unwrap();
        let before = snapshot(&store);

        let e = open(&store).expect_err(what);
        assert!(e.is_corruption(), "{what}: {e:?}");
        assert!(
            matches!(&e, Error::CorruptFile { file, .. } if file.ends_with("CURRENT")),
            "{what}: {e:?}"
        );
        assert!(e.to_string().contains("CURRENT"), "{what}: {e}");
        let e = Store::open(
            &store,
            Options {
                read_only: true,
                ..opts()
            },
        )
        .expect_err(what);
        assert!(
            e.is_corruption() && e.to_string().contains("CURRENT"),
            "{what}: {e}"
        );

        let rep = verify(Arc::new(RealVfs), &store).unwrap();
        assert!(!rep.healthy(), "{what}");
        assert!(
            rep.findings.iter().any(|f| f.contains("CURRENT")),
            "{what}: {:?}",
            rep.findings
        );

        for args in [
            vec!["verify"],
            vec!["entity", "list"],
            vec!["entity", "put", "task"],
            vec!["repair"],
        ] {
            let o = got(&store, &args);
            assert_eq!(
                o.status.code(),
                Some(7),
                "{what}: got {args:?}\n{}",
                text(&o)
            );
            assert!(
                all_output(&o).contains("CURRENT"),
                "{what}: got {args:?}\n{}",
                text(&o)
            );
            assert!(!all_output(&o).contains("panicked"), "{what}: {}", text(&o));
        }
        let o = got(&store, &["--json", "entity", "list"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["error"]["code"], "corrupt", "{what}: {v}");
        // Nothing was "fixed" behind the user's back.
        assert_unchanged(&before, &store, what);
    }
}

// ---------------------------------------------------------------------------------
// Readers without the lock.

/// DURABLE says every frame up to LSN 12 is on stable storage; a reader without the
/// lock that meets a damaged frame at LSN 3 knows acknowledged data is behind it. It
/// must say so (corruption), not serve the prefix as the store's state: an
/// acknowledged entity is never reported "not found".
#[test]
fn a_reader_meeting_damage_below_the_durable_lsn_reports_corruption_not_a_silent_prefix() {
    let t = template();
    let (_tmp, store) = copy_of(&t);
    let seg = store.join("wal").join(FIRST_SEGMENT);
    let f = frames(&fs::read(&seg).unwrap())[DAMAGED_LSN - 1];
    flip_bit(&seg, f.off + FRAME_HEADER + 10, 3);
    let before = snapshot(&store);
    let acknowledged = &t.entities[N - 1].id;

    let ro = Options {
        read_only: true,
        ..opts()
    };
    match Store::open(&store, ro) {
        Err(e) => assert!(e.is_corruption(), "{e:?}"),
        Ok(s) => {
            let r = s.get(acknowledged);
            assert!(
                matches!(&r, Err(e) if e.is_corruption()),
                "read-only get of acknowledged {acknowledged} returned {r:?} (the log is damaged at LSN {DAMAGED_LSN}, DURABLE says {N})"
            );
        }
    }
    let o = got(&store, &["entity", "get", acknowledged]);
    assert_eq!(
        o.status.code(),
        Some(7),
        "got entity get {acknowledged}\n{}",
        text(&o)
    );
    let o = got(&store, &["entity", "list"]);
    assert_eq!(o.status.code(), Some(7), "got entity list\n{}", text(&o));
    assert_unchanged(&before, &store, "read-only commands");
}
