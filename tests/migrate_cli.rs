//! `got migrate` and the commands around it in a project whose `.got` holds the
//! GoT system's JSON store: every command says what it found, `got init`
//! refuses to write into it, and `got migrate` turns it into a got store in
//! place with the original files kept byte for byte — killed at any step, it
//! leaves the original or the finished store, and a second run finishes.

use crate::common;

use common::cli::{ok, ok_json, text};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/got-json/store/.got")
}

/// Every file under `dir` (relative path → bytes).
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn copy_tree(from: &Path, to: &Path) {
    for (rel, bytes) in tree(from) {
        let p = to.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

/// A project directory holding a copy of the fixture store in `.got`.
fn project(root: &Path) -> PathBuf {
    let p = root.join("project");
    copy_tree(&fixture(), &p.join(".got"));
    p
}

fn got_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_got"));
    c.current_dir(dir)
        .args(["--agent", "alice"])
        .args(args)
        .env_remove("GOT_DIR")
        .env_remove("GOT_AGENT")
        .env_remove("GOT_FAILPOINT");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

const READY: [&str; 3] = [
    "T-20251226-093300-0d5e8a12",
    "T-20251226-095020-f10a6b38",
    "T-20251226-130000-bad0c0de",
];

fn ready_ids(dir: &Path) -> Vec<String> {
    let j = ok_json(got_in(dir, &["--json", "ready"], &[]));
    let mut ids: Vec<String> = j["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn commands_in_a_got_json_project_name_it_and_init_refuses_to_write_into_it() {
    let tmp = tempfile::tempdir().unwrap();
    let p = project(tmp.path());
    let sub = p.join("src/deep");
    std::fs::create_dir_all(&sub).unwrap();
    let before = tree(&p.join(".got"));
    for args in [
        &["ready"][..],
        &["task", "list"],
        &["task", "create", "x"],
        &["stats"],
    ] {
        let o = got_in(&sub, args, &[]);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("JSON store of the GoT system") && err.contains("got migrate"),
            "{args:?}: {err}"
        );
    }
    // --store pointing at it says the same.
    let o = got_in(
        tmp.path(),
        &["--store", p.join(".got").to_str().unwrap(), "ready"],
        &[],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let o = got_in(&p, &["init"], &[]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not write into another tool's files"));
    assert_eq!(
        tree(&p.join(".got")),
        before,
        "nothing written into the GoT store"
    );
}

#[test]
fn migrate_turns_the_store_into_a_got_store_and_keeps_the_originals_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let p = project(tmp.path());
    let original = tree(&p.join(".got"));
    // A bad checksum stops it before anything changes.
    let o = got_in(&p, &["migrate"], &[]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("T-20251226-130000-bad0c0de.json"));
    assert_eq!(tree(&p.join(".got")), original, "nothing changed");
    assert!(!p.join(".got.migrating").exists());

    let j = ok_json(got_in(
        &p,
        &["--json", "migrate", "--accept-bad-checksums"],
        &[],
    ));
    assert_eq!(j["created"], 17, "{j}");
    assert_eq!(
        tree(&p.join(".got/got-json")),
        original,
        "the original files, byte for byte"
    );
    assert_eq!(ready_ids(&p), READY);
    ok(got_in(&p, &["validate"], &[]));
    // Again: confirmed, nothing changes.
    let before = ok(got_in(&p, &["export"], &[]));
    let j = ok_json(got_in(&p, &["--json", "migrate"], &[]));
    assert_eq!(j["already"], true, "{j}");
    assert_eq!(j["finished_now"], false, "{j}");
    assert_eq!(ok(got_in(&p, &["export"], &[])), before);
}

#[test]
fn migrate_killed_at_each_step_leaves_the_original_or_the_store_and_a_rerun_finishes() {
    for step in ["initialized", "imported", "exchanged"] {
        let tmp = tempfile::tempdir().unwrap();
        let p = project(tmp.path());
        let original = tree(&p.join(".got"));
        let o = got_in(
            &p,
            &["migrate", "--accept-bad-checksums"],
            &[("GOT_FAILPOINT", &format!("migrate:{step}"))],
        );
        assert_eq!(o.status.code(), None, "{step}: killed, {}", text(&o));
        // Either the untouched original or a got store.
        let dot = p.join(".got");
        if dot.join("CURRENT").exists() {
            assert_eq!(ready_ids(&p), READY, "{step}: the store is finished");
        } else {
            assert_eq!(tree(&dot), original, "{step}: the original untouched");
        }
        let o = got_in(&p, &["--json", "migrate", "--accept-bad-checksums"], &[]);
        assert_eq!(o.status.code(), Some(0), "{step}: {}", text(&o));
        assert_eq!(tree(&dot.join("got-json")), original, "{step}: originals");
        assert!(!p.join(".got.migrating").exists(), "{step}");
        assert_eq!(ready_ids(&p), READY, "{step}");
        let j = ok_json(got_in(&p, &["--json", "migrate"], &[]));
        assert_eq!(j["already"], true, "{step}: {j}");
    }
}
