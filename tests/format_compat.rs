//! Formats over time: a small store made by format version 1 is checked in under
//! `tests/fixtures/store-v1/` (with its expected contents in
//! `tests/fixtures/store-v1.expected.json`), and every future binary must still read
//! it. A file claiming a format newer than this binary knows is refused with a clear
//! "newer than this binary supports" error and left untouched, never mistaken for
//! damage and cut.
//!
//! Regenerate the fixture (only when deliberately creating a new one) with
//! `GOT_REGENERATE_FIXTURES=1 cargo test --test format_compat`.
//!
//! What the fixture holds: entities with every property type, edges (one removed),
//! an update, a deletion, a checkpoint into one run, then more commits in the WAL,
//! enough to rotate into a second 16 KiB segment (so an end-of-segment frame is in
//! it too). LOCK is empty, `next.prealloc` is not kept, and `.keep` files hold the
//! empty `quarantine/` and `backups/` directories in git.

use crate::common;

use common::cli::text;
use common::store_dir::{copy_dir, snapshot};
use common::wal_bytes::{frames, u32_at, FrameLoc, FRAME_HEADER};
use got::versioned_store::{manifest, verify};
use got::wal::{segment, RealVfs};
use got::{props, Direction, Error, Options, Store, Value};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

const SEGMENT_BYTES: u64 = 16384;
/// Every id the fixture ever held (T-3 is deleted).
const IDS: [&str; 5] = ["E-1", "H-1", "T-1", "T-2", "T-3"];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

fn fixture_dir() -> PathBuf {
    fixtures().join("store-v1")
}

fn expected_path() -> PathBuf {
    fixtures().join("store-v1.expected.json")
}

// ---------------------------------------------------------------------------------
// Helpers.

/// CRC-32 (IEEE, reflected), the checksum crc32fast computes.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

fn got(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_got"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("GOT_DIR")
        .env("GOT_AGENT", "format-compat-cli")
        .output()
        .expect("run got")
}

fn open_opts() -> Options {
    Options {
        auto_checkpoint: false,
        segment_size_bytes: SEGMENT_BYTES,
        actor: Some("format-compat-test".into()),
        ..Default::default()
    }
}

/// Everything a reader can see of the store, as JSON with typed property values
/// (`{"Int": 1}`, `{"Float": 0.5}`, ...), so nothing is lost in the comparison.
fn describe(s: &Store) -> Json {
    let typed = |p: &got::Props| serde_json::to_value(p).unwrap();
    let applied = s.applied_lsn().unwrap();
    let entities: Vec<Json> = s
        .list(None, None)
        .unwrap()
        .iter()
        .map(|e| {
            json!({"id": e.id, "kind": e.kind, "version": e.version, "props": typed(&e.props),
                   "created_at": e.created_at, "updated_at": e.updated_at})
        })
        .collect();
    let mut edges = Vec::new();
    let mut tx = s.begin().unwrap();
    for e in s.list(None, None).unwrap() {
        for ed in tx.edges(&e.id, Direction::Out, None).unwrap() {
            edges.push(
                json!({"from": ed.from, "kind": ed.kind, "to": ed.to, "props": typed(&ed.props)}),
            );
        }
        let inbound = tx.edges(&e.id, Direction::In, None).unwrap().len();
        edges.push(json!({"in_degree_of": e.id, "count": inbound}));
    }
    drop(tx);
    let mut history = serde_json::Map::new();
    let mut as_of = serde_json::Map::new();
    for id in IDS {
        let h: Vec<Json> = s
            .history(id)
            .unwrap()
            .iter()
            .map(|v| {
                json!({"lsn": v.lsn, "version": v.version, "actor": v.actor, "time_ms": v.time_ms,
                       "deleted": v.deleted,
                       "entity": v.entity.as_ref().map(|e| json!({"kind": e.kind, "props": typed(&e.props),
                           "created_at": e.created_at, "updated_at": e.updated_at}))})
            })
            .collect();
        history.insert(id.to_string(), Json::Array(h));
        let versions: Vec<Json> = (0..=applied)
            .map(|lsn| match s.get_at(id, lsn).unwrap() {
                Some(e) => json!(e.version),
                None => Json::Null,
            })
            .collect();
        as_of.insert(id.to_string(), Json::Array(versions));
    }
    json!({"applied_lsn": applied, "entities": entities, "edges": edges,
           "history": history, "version_as_of_lsn": as_of})
}

// ---------------------------------------------------------------------------------
// The generator (runs only with GOT_REGENERATE_FIXTURES=1).

fn big(tag: &str) -> Value {
    Value::from(format!(
        "{tag}: {}",
        "handoff notes, line after line. ".repeat(190)
    ))
}

fn generate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(".got");
    got::init(&RealVfs, &dir).unwrap();
    // `init` makes an 8 MiB first segment whatever the options say; swap in a 16 KiB
    // one, made by the library, before the first commit, to keep the fixture small.
    let store_id = manifest::read(&RealVfs, &dir).unwrap().store_id;
    segment::install_segment(&RealVfs, &dir.join("wal"), &store_id, 1, SEGMENT_BYTES).unwrap();

    let s = Store::open(
        &dir,
        Options {
            actor: Some("fixture-v1".into()),
            ..open_opts()
        },
    )
    .unwrap();
    let mut meta = BTreeMap::new();
    meta.insert("owner".to_string(), Value::from("ann"));
    meta.insert("points".to_string(), Value::from(8i64));
    s.transaction(|tx| {
        tx.put(
            "E-1",
            "epic",
            props([
                ("title", Value::from("Ship format v1")),
                ("tags", Value::from(vec!["storage", "compat"])),
                ("meta", Value::Map(meta.clone())),
            ]),
        )?;
        tx.put(
            "T-1",
            "task",
            props([
                ("title", Value::from("design the frames")),
                ("priority", Value::from(1i64)),
                ("done", Value::from(false)),
                ("ratio", Value::from(0.5f64)),
                ("negative", Value::from(-42i64)),
                ("note", Value::Null),
                ("unicode", Value::from("naïve — ✓ 日本")),
            ]),
        )?;
        tx.add_edge(
            "T-1",
            "part_of",
            "E-1",
            props([("weight", Value::from(3i64))]),
        )
    })
    .unwrap();
    s.transaction(|tx| {
        tx.put(
            "T-2",
            "task",
            props([("title", Value::from("write the recovery"))]),
        )?;
        tx.add_edge("T-2", "depends_on", "T-1", Default::default())?;
        tx.add_edge("T-2", "part_of", "E-1", Default::default())
    })
    .unwrap();
    s.transaction(|tx| {
        tx.put(
            "T-1",
            "task",
            props([
                ("title", Value::from("design the frames")),
                ("priority", Value::from(1i64)),
                ("done", Value::from(true)),
            ]),
        )
    })
    .unwrap();
    s.transaction(|tx| tx.put("T-3", "task", props([("title", Value::from("a mistake"))])))
        .unwrap();
    s.transaction(|tx| tx.delete("T-3")).unwrap();
    s.transaction(|tx| tx.remove_edge("T-2", "part_of", "E-1").map(|_| ()))
        .unwrap();
    let info = s.checkpoint().unwrap();
    assert!(info.run.is_some());

    // After the checkpoint: WAL only, enough to rotate into a second segment.
    s.transaction(|tx| {
        tx.put(
            "T-2",
            "task",
            props([
                ("title", Value::from("write the recovery")),
                ("status", Value::from("active")),
            ]),
        )
    })
    .unwrap();
    for (i, tag) in ["first", "second", "third"].iter().enumerate() {
        s.transaction(|tx| {
            tx.put(
                "H-1",
                "handoff",
                props([("body", big(tag)), ("n", Value::from(i as i64))]),
            )
        })
        .unwrap();
    }
    s.transaction(|tx| tx.add_edge("H-1", "about", "T-2", props([("ok", Value::from(true))])))
        .unwrap();
    let expected = describe(&s);
    drop(s);
    let segs = files_with_ext(&dir.join("wal"), "wal");
    assert_eq!(
        segs.len(),
        2,
        "the fixture should span two segments: {segs:?}"
    );

    // Tidy for checking in.
    let _ = fs::remove_file(dir.join("wal").join(segment::PREALLOC_NAME));
    fs::write(dir.join("LOCK"), b"").unwrap();
    for sub in ["quarantine", "backups"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
        fs::write(dir.join(sub).join(".keep"), b"").unwrap();
    }
    assert!(
        !snapshot(&dir)
            .keys()
            .any(|p| p.to_string_lossy().ends_with(".tmp")),
        "temporary file left in the generated store"
    );
    let dst = fixture_dir();
    if dst.exists() {
        fs::remove_dir_all(&dst).unwrap();
    }
    copy_dir(&dir, &dst);
    fs::write(
        expected_path(),
        serde_json::to_string_pretty(&expected).unwrap() + "\n",
    )
    .unwrap();
    println!(
        "regenerated {} and {}",
        dst.display(),
        expected_path().display()
    );
}

/// The fixture directory, regenerated first if asked (once per test binary).
fn fixture() -> PathBuf {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var("GOT_REGENERATE_FIXTURES").is_ok_and(|v| v == "1") {
            generate();
        }
    });
    let d = fixture_dir();
    assert!(
        d.join("CURRENT").is_file(),
        "missing fixture {}; generate it with GOT_REGENERATE_FIXTURES=1",
        d.display()
    );
    d
}

fn expected() -> Json {
    let _ = fixture();
    serde_json::from_slice(&fs::read(expected_path()).unwrap()).unwrap()
}

/// A copy of the fixture in a temporary directory (the checked-in one is never
/// opened, so no test can change it).
fn fixture_copy() -> (tempfile::TempDir, PathBuf) {
    let src = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(".got");
    copy_dir(&src, &dir);
    (tmp, dir)
}

// ---------------------------------------------------------------------------------
// Reading the v1 fixture.

/// The fixture really is format 1 everywhere (so the tests below test reading v1,
/// whatever the current version is).
#[test]
fn the_checked_in_fixture_is_format_version_1_in_every_file() {
    let d = fixture();
    let current = fs::read(d.join("CURRENT")).unwrap();
    assert_eq!(&current[0..8], b"GOTCUR\r\n");
    assert_eq!(u32_at(&current, 8), 1, "CURRENT format version");
    let runs = files_with_ext(&d.join("runs"), "run");
    assert_eq!(runs.len(), 1, "{runs:?}");
    for r in &runs {
        let b = fs::read(r).unwrap();
        assert_eq!(&b[0..8], b"GOTRUN\r\n");
        assert_eq!(u32_at(&b, 8), 1, "run format version");
    }
    let segs = files_with_ext(&d.join("wal"), "wal");
    assert_eq!(segs.len(), 2, "{segs:?}");
    let mut batches = 0;
    for s in &segs {
        let b = fs::read(s).unwrap();
        assert_eq!(b.len() as u64, SEGMENT_BYTES);
        assert_eq!(&b[0..8], b"GOTWAL\r\n");
        assert_eq!(u32_at(&b, 8), 1, "segment format version");
        for f in frames(&b) {
            assert_eq!(b[f.off + 9], 1, "frame format version at {}", f.off);
            if f.kind == 1 {
                assert_eq!(b[f.off + FRAME_HEADER], 1, "payload format version");
                batches += 1;
            }
        }
    }
    assert!(batches >= 10, "{batches} batch frames");
    let durable = fs::read(d.join("DURABLE")).unwrap();
    assert_eq!(&durable[0..8], b"GOTDUR\r\n");
    assert!(!d.join("wal").join(segment::PREALLOC_NAME).exists());
}

/// A store written by format 1 opens read-write and reads back exactly: entities,
/// edges, every version in history (across the run and the WAL), `get_at`.
#[test]
fn a_v1_store_opens_and_reads_back_its_exact_contents() {
    let (_tmp, dir) = fixture_copy();
    let want = expected();
    let s = Store::open(&dir, open_opts()).unwrap();
    assert_eq!(describe(&s), want);
    drop(s);
    // Read-only, as a CLI read would.
    let s = Store::open(
        &dir,
        Options {
            read_only: true,
            ..open_opts()
        },
    )
    .unwrap();
    assert_eq!(describe(&s), want);
    drop(s);
    let rep = verify(Arc::new(RealVfs), &dir).unwrap();
    assert!(rep.healthy(), "{:?}", rep.findings);
    assert!(rep.notes.is_empty(), "{:?}", rep.notes);
    assert_eq!(rep.runs, 1);
    assert_eq!(
        rep.entities,
        want["entities"].as_array().unwrap().len() as u64
    );
}

#[test]
fn the_got_cli_reads_a_v1_store() {
    let (_tmp, dir) = fixture_copy();
    let want = expected();
    let o = got(&dir, &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let o = got(&dir, &["--json", "entity", "get", "T-1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j: Json = serde_json::from_slice(&o.stdout).unwrap();
    let t1 = want["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "T-1")
        .unwrap();
    assert_eq!(j["version"], t1["version"]);
    assert_eq!(j["props"]["done"], true);
    assert_eq!(j["props"]["title"], "design the frames");

    let o = got(&dir, &["--json", "entity", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j: Json = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<&str> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["E-1", "H-1", "T-1", "T-2"]);

    let o = got(&dir, &["--json", "history", "T-3"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j.as_array().unwrap().len(), 2);
    assert_eq!(j[1]["deleted"], true);

    let o = got(&dir, &["entity", "get", "T-3"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));

    let o = got(
        &dir,
        &["--json", "edge", "list", "T-2", "--direction", "out"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j.as_array().unwrap().len(), 1, "{j}");
    assert_eq!(j[0]["to"], "T-1");
}

/// A binary keeps writing to a v1 store: commits, a checkpoint (a second run), a
/// reopen; what the fixture held is unchanged.
#[test]
fn a_v1_store_accepts_new_commits_and_checkpoints_and_keeps_its_old_contents() {
    let (_tmp, dir) = fixture_copy();
    let want = expected();
    let s = Store::open(&dir, open_opts()).unwrap();
    s.transaction(|tx| {
        tx.put("N-1", "task", props([("title", Value::from("new"))]))?;
        tx.add_edge("N-1", "depends_on", "T-2", Default::default())
    })
    .unwrap();
    let info = s.checkpoint().unwrap();
    assert!(info.run.is_some());
    s.transaction(|tx| tx.put("N-2", "task", Default::default()))
        .unwrap();
    drop(s);
    let s = Store::open(&dir, open_opts()).unwrap();
    for id in IDS {
        let h: Vec<Json> = s
            .history(id)
            .unwrap()
            .iter()
            .map(|v| json!({"lsn": v.lsn, "version": v.version, "actor": v.actor, "time_ms": v.time_ms}))
            .collect();
        let w: Vec<Json> = want["history"][id]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| json!({"lsn": v["lsn"], "version": v["version"], "actor": v["actor"], "time_ms": v["time_ms"]}))
            .collect();
        assert_eq!(h, w, "history of {id}");
    }
    let applied = want["applied_lsn"].as_u64().unwrap();
    assert_eq!(s.applied_lsn().unwrap(), applied + 2);
    assert_eq!(s.history("N-1").unwrap()[0].lsn, applied + 1);
    assert!(s.get("T-3").unwrap().is_none());
    drop(s);
    let o = got(&dir, &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

// ---------------------------------------------------------------------------------
// The v2 and v3 fixtures: the same history written by older binaries (the
// generator above, pointed at `store-v2` or `store-v3`): commit 3a6f53c, whose
// runs are format 2 (keys stored whole), the last before format 3 (keys stored
// as shared length and rest); and commit 3d86ce6, whose runs are format 3, the
// last before format 4 (filters over each partition's entity keys).

fn old_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(".got");
    copy_dir(&fixtures().join(name), &dir);
    (tmp, dir)
}

fn old_expected(name: &str) -> Json {
    serde_json::from_slice(&fs::read(fixtures().join(format!("{name}.expected.json"))).unwrap())
        .unwrap()
}

fn run_formats(dir: &Path) -> Vec<u32> {
    files_with_ext(&dir.join("runs"), "run")
        .iter()
        .map(|r| u32_at(&fs::read(r).unwrap(), 8))
        .collect()
}

/// A store whose run is format `format` (the fixture `name`) reads back
/// exactly, read-write and read-only; after new commits and a checkpoint it
/// holds a run of the current format (beside the old one, or merged with it)
/// and still reads back every old version.
fn an_old_store_reads_back_exactly_and_takes_current_runs(name: &str, format: u32) {
    let (_tmp, dir) = old_copy(name);
    assert_eq!(run_formats(&dir), vec![format], "the fixture's run");
    let want = old_expected(name);
    let s = Store::open(&dir, open_opts()).unwrap();
    assert_eq!(describe(&s), want);
    drop(s);
    let ro = Options {
        read_only: true,
        ..open_opts()
    };
    assert_eq!(describe(&Store::open(&dir, ro.clone()).unwrap()), want);
    let rep = verify(Arc::new(RealVfs), &dir).unwrap();
    assert!(rep.healthy() && rep.notes.is_empty(), "{rep:?}");

    let s = Store::open(&dir, open_opts()).unwrap();
    s.transaction(|tx| {
        tx.put("N-1", "task", props([("title", Value::from("new"))]))?;
        tx.add_edge("N-1", "depends_on", "T-2", Default::default())
    })
    .unwrap();
    assert!(s.checkpoint().unwrap().run.is_some());
    drop(s);
    let formats = run_formats(&dir);
    assert!(
        formats.contains(&got::versioned_store::run::RUN_FORMAT_VERSION),
        "{formats:?} {:?}",
        files_with_ext(&dir.join("runs"), "run")
    );
    let s = Store::open(&dir, ro).unwrap();
    let now = describe(&s);
    for id in IDS {
        assert_eq!(now["history"][id], want["history"][id], "history of {id}");
    }
    let applied = want["applied_lsn"].as_u64().unwrap();
    assert_eq!(s.applied_lsn().unwrap(), applied + 1);
    assert_eq!(
        s.get("N-1").unwrap().unwrap().props["title"],
        Value::from("new")
    );
    drop(s);
    let o = got(&dir, &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn a_store_with_format_2_runs_reads_back_exactly_and_takes_current_runs() {
    an_old_store_reads_back_exactly_and_takes_current_runs("store-v2", 2);
}

#[test]
fn a_store_with_format_3_runs_reads_back_exactly_and_takes_current_runs() {
    an_old_store_reads_back_exactly_and_takes_current_runs("store-v3", 3);
}

// ---------------------------------------------------------------------------------
// Files newer than this binary.

fn assert_too_new(e: &Error, file: &Path, what: &str) {
    match e {
        Error::Wal(got::wal::Error::TooNew {
            file: f,
            found,
            supported,
        }) => {
            assert!(
                f.file_name() == file.file_name(),
                "{what}: names {} instead of {}",
                f.display(),
                file.display()
            );
            assert!(found > supported, "{what}: {e}");
        }
        other => panic!("{what}: expected Wal(TooNew), got {other:?}: {other}"),
    }
    assert!(
        e.to_string().contains("newer than this binary supports"),
        "{what}: {e}"
    );
}

/// Opens (read-write, then read-only) a copy whose `file` was changed by `edit`;
/// expects a TooNew refusal naming `file`, via the library and the CLI, and no byte
/// of the store changed.
fn check_refused_as_too_new(rel: &Path, edit: impl Fn(&mut Vec<u8>), what: &str) {
    let (_tmp, dir) = fixture_copy();
    let path = dir.join(rel);
    let mut b = fs::read(&path).unwrap();
    edit(&mut b);
    fs::write(&path, &b).unwrap();
    let before = snapshot(&dir);

    let e = match Store::open(&dir, open_opts()) {
        Err(e) => e,
        Ok(s) => {
            let applied = s.applied_lsn().unwrap();
            drop(s);
            let q: Vec<String> = fs::read_dir(dir.join("quarantine"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            panic!(
                "{what}: the store opened read-write (applied LSN {applied}, expected {}); \
                 quarantine/ now holds {q:?}",
                expected()["applied_lsn"]
            );
        }
    };
    assert_too_new(&e, &path, &format!("{what} (read-write open)"));
    let e = Store::open(
        &dir,
        Options {
            read_only: true,
            ..open_opts()
        },
    )
    .expect_err(what);
    assert_too_new(&e, &path, &format!("{what} (read-only open)"));

    let o = got(&dir, &["--json", "entity", "list"]);
    assert_eq!(o.status.code(), Some(7), "{what}\n{}", text(&o));
    let j: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["error"]["code"], "too_new", "{what}: {j}");
    let o = got(&dir, &["entity", "put", "task"]);
    assert_ne!(o.status.code(), Some(0), "{what}\n{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("newer than this binary supports"),
        "{what}\n{}",
        text(&o)
    );
    let o = got(&dir, &["verify"]);
    assert_eq!(o.status.code(), Some(7), "{what}\n{}", text(&o));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        all.contains("newer than this binary supports"),
        "{what}\n{}",
        text(&o)
    );
    // Repair must refuse a newer file (exit 7, too_new) and not cut it (checked
    // with the snapshot below).
    for json in [false, true] {
        let mut args = vec!["repair", "--truncate-at-corruption"];
        if json {
            args.insert(0, "--json");
        }
        let o = got(&dir, &args);
        assert_eq!(o.status.code(), Some(7), "{what}: repair\n{}", text(&o));
        if json {
            let j: Json = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
                panic!("{what}: repair --json is not JSON ({e})\n{}", text(&o))
            });
            assert_eq!(j["error"]["code"], "too_new", "{what}: {j}");
        } else {
            assert!(
                String::from_utf8_lossy(&o.stderr).contains("newer than this binary supports"),
                "{what}: repair\n{}",
                text(&o)
            );
        }
    }

    let after = snapshot(&dir);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "{what}"
    );
    for (p, b) in &before {
        assert!(after[p] == *b, "{what}: {} was changed", p.display());
    }
}

/// Sets the version field (bytes 8..12) one past `supported`, fixing the
/// checksum at `crc_at` over its range.
fn bump_version_u32(b: &mut [u8], supported: u32, crc_at: Option<(usize, std::ops::Range<usize>)>) {
    b[8..12].copy_from_slice(&(supported + 1).to_le_bytes());
    if let Some((at, range)) = crc_at {
        let c = crc32(&b[range]);
        b[at..at + 4].copy_from_slice(&c.to_le_bytes());
    }
}

#[test]
fn a_current_claiming_a_newer_format_is_refused_as_too_new() {
    // CURRENT's checksum covers the body only; the version field is in the header.
    check_refused_as_too_new(
        Path::new("CURRENT"),
        |b| bump_version_u32(b, manifest::CURRENT_FORMAT_VERSION, None),
        "CURRENT v2",
    );
}

#[test]
fn a_wal_segment_claiming_a_newer_format_is_refused_as_too_new() {
    let d = fixture();
    for seg in files_with_ext(&d.join("wal"), "wal") {
        let rel = seg.strip_prefix(&d).unwrap().to_path_buf();
        check_refused_as_too_new(
            &rel,
            |b| bump_version_u32(b, segment::SEGMENT_FORMAT_VERSION, Some((60, 0..60))),
            &format!("segment {} v2", rel.display()),
        );
    }
}

#[test]
fn a_run_claiming_a_newer_format_is_refused_as_too_new() {
    let d = fixture();
    let run = files_with_ext(&d.join("runs"), "run").remove(0);
    let rel = run.strip_prefix(&d).unwrap().to_path_buf();
    check_refused_as_too_new(
        &rel,
        |b| {
            bump_version_u32(
                b,
                got::versioned_store::run::RUN_FORMAT_VERSION,
                Some((60, 0..60)),
            )
        },
        "run from a newer format",
    );
}

/// Sets the frame format version (byte 9) of frame `which` of the last segment to 2
/// and fixes the frame's checksum.
fn bump_frame_version(which: fn(&[FrameLoc]) -> FrameLoc) -> impl Fn(&mut Vec<u8>) {
    move |b: &mut Vec<u8>| {
        let f = which(&frames(b));
        b[f.off + 9] = 2;
        let end = f.off + FRAME_HEADER + f.payload_len;
        let c = crc32(&b[f.off + 4..end]);
        b[f.off..f.off + 4].copy_from_slice(&c.to_le_bytes());
    }
}

fn last_segment_rel() -> PathBuf {
    let d = fixture();
    let seg = files_with_ext(&d.join("wal"), "wal").pop().unwrap();
    seg.strip_prefix(&d).unwrap().to_path_buf()
}

/// A frame written by a newer binary (valid checksum, frame format 2) at the end of
/// the log is refused as too new: it is not a torn tail, so it must not be cut.
#[test]
fn a_last_frame_claiming_a_newer_frame_format_is_refused_not_cut_as_a_torn_tail() {
    check_refused_as_too_new(
        &last_segment_rel(),
        bump_frame_version(|f| *f.last().unwrap()),
        "last frame, frame format 2",
    );
}

/// The same in the middle of the log: too new, not "corruption" to be truncated.
#[test]
fn a_mid_log_frame_claiming_a_newer_frame_format_is_refused_as_too_new_not_corruption() {
    check_refused_as_too_new(
        &last_segment_rel(),
        bump_frame_version(|f| f[0]),
        "first frame of the last segment, frame format 2",
    );
}

/// A batch payload with a newer payload format (valid frame checksum): open refuses
/// with a clear "newer" error and changes nothing.
#[test]
fn a_wal_payload_claiming_a_newer_payload_format_is_refused_clearly_and_kept() {
    let (_tmp, dir) = fixture_copy();
    let seg = dir.join(last_segment_rel());
    let mut b = fs::read(&seg).unwrap();
    let f = *frames(&b).last().unwrap();
    b[f.off + FRAME_HEADER] = 2;
    let c = crc32(&b[f.off + 4..f.off + FRAME_HEADER + f.payload_len]);
    b[f.off..f.off + 4].copy_from_slice(&c.to_le_bytes());
    fs::write(&seg, &b).unwrap();
    let before = snapshot(&dir);
    let e = Store::open(&dir, open_opts()).expect_err("a newer payload must be refused");
    assert!(
        e.to_string().contains("newer than this binary supports"),
        "{e:?}"
    );
    let o = got(&dir, &["entity", "list"]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("newer than this binary supports"),
        "{}",
        text(&o)
    );
    let after = snapshot(&dir);
    assert_eq!(after, before, "nothing may change");
}
