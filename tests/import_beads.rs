//! `got import --from beads`: every shape of file beads has written
//! (fixtures in tests/fixtures/beads, taken from beads' own files; its README
//! names the source of each line) comes in whole — statuses and types got does
//! not know mapped to the nearest and counted, tombstones and the deletions
//! manifest as deletions, epics as epics, `blocks` as dependencies,
//! `parent-child` as membership or parenthood, the rest as typed edges — and a
//! second import changes nothing; a file cut short is refused whole.

use crate::common;

use common::cli::{got_as, ok, ok_json, text};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::Output;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/beads")
        .join(name)
}

fn got(store: &Path, args: &[&str]) -> Output {
    got_as(store, "alice", args)
}

fn import(store: &Path, name: &str) -> Json {
    ok_json(got(
        store,
        &[
            "--json",
            "import",
            "--from",
            "beads",
            fixture(name).to_str().unwrap(),
        ],
    ))
}

fn new_store(root: &Path) -> PathBuf {
    let s = root.join("s");
    ok(got(&s, &["init"]));
    s
}

fn task(s: &Path, id: &str) -> Json {
    ok_json(got(s, &["--json", "task", "show", id]))
}

fn edges(s: &Path, id: &str) -> String {
    ok(got(s, &["--json", "edge", "list", id]))
}

#[test]
fn the_current_export_comes_in_whole_and_a_second_import_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let s = new_store(tmp.path());
    let r = import(&s, "current.jsonl");
    assert_eq!(r["read"]["task"], 22, "{r}");
    assert_eq!(r["read"]["epic"], 2, "{r}");
    assert_eq!(r["deletions"], 1, "the tombstone: {r}");
    assert_eq!(r["skipped"], 1, "the memory line: {r}");
    assert_eq!(r["created"], 24, "{r}");
    // Values got does not know: never a refusal, each counted.
    for what in [
        "status \"review\"",
        "issue_type \"convoy\"",
        "issue_type \"agent\"",
        "dependency type \"blocked-by\"",
    ] {
        assert_eq!(r["unknown_values"][what], 1, "{what}: {r}");
    }
    let dangling = r["dangling"].to_string();
    for missing in [
        "T-bd-wisp-uq6fx",
        "T-hq-mayor",
        "external:gastown:gt-5kjn",
        "T-bd-3ft33",
    ] {
        assert!(dangling.contains(missing), "{missing}: {dangling}");
    }

    // Statuses.
    let t = task(&s, "T-bd-xmf");
    assert_eq!(t["task"]["status"], "in_progress", "hooked");
    assert_eq!(t["task"]["assignee"], "beads/polecats/obsidian");
    assert_eq!(t["task"]["original_status"], "hooked");
    assert_eq!(t["task"]["priority"], "high");
    for (id, status, reason) in [
        ("T-bd-pr-sheriff", "pinned", "pinned in beads"),
        ("T-beads-iw4z", "deferred", "deferred in beads"),
        ("T-bd-324", "blocked", "blocked in beads"),
    ] {
        let t = task(&s, id);
        assert_eq!(t["task"]["status"], "blocked", "{id}");
        assert_eq!(t["task"]["blocked_reason"], reason, "{id}");
        if status != "blocked" {
            assert_eq!(t["task"]["original_status"], status, "{id}");
        }
    }
    let review = task(&s, "T-bd-ats9.3");
    assert_eq!(review["task"]["status"], "pending");
    assert_eq!(review["task"]["original_status"], "review");
    // In progress with nobody recorded: held by unknown-agent (got's rule).
    assert_eq!(
        task(&s, "T-bd-main-idj")["task"]["assignee"],
        "unknown-agent"
    );
    // A tombstone is a deletion, never a live task.
    assert_eq!(
        got(&s, &["task", "show", "T-bd-mol-pjc"]).status.code(),
        Some(3)
    );

    // Fields: times with offsets and fractions, P0, minutes, comments, types.
    let u = task(&s, "T-bd-u4n8c");
    // 2026-04-07T16:20:31.048213-07:00
    assert_eq!(u["task"]["created_at"], 1_775_604_031_048i64);
    assert_eq!(u["task"]["beads_type"], "story");
    assert!(u["task"]["acceptance_criteria"].is_string(), "{u}");
    assert_eq!(task(&s, "T-bd-s7k2p")["task"]["estimate_hours"], 1.5);
    let c = task(&s, "T-bd-ats9.2");
    let notes = c["task"]["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{c}");
    assert!(notes[0]["text"].is_string() && notes[0]["author"].is_string());
    assert_eq!(task(&s, "T-bd-324")["task"]["category"], "bugfix");

    // Epics are epics; parent-child to an epic is membership.
    let epic = ok(got(&s, &["epic", "show", "E-bd-ats9"]));
    for child in ["T-bd-ats9.2", "T-bd-ats9.3", "T-bd-ats9.5"] {
        assert!(epic.contains(child), "{child}: {epic}");
    }
    // parent-child between tasks: the parent's parent_of.
    assert!(edges(&s, "T-bd-ats9.3").contains("parent_of"));
    // blocks: the issue waits on the other.
    let t = task(&s, "T-bd-ats9.5");
    let deps: Vec<&str> = t["depends_on"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(deps, ["T-bd-ats9.3"], "{t}");
    // Every other type a typed edge named after it: supersedes reads as beads
    // writes it (the old issue → its replacement).
    assert!(edges(&s, "E-bd-kwro").contains("\"supersedes\""));
    assert!(edges(&s, "T-bd-s7k2p").contains("discovered-from"));
    ok(got(&s, &["validate"]));

    // Again: nothing changes.
    let before = ok(got(&s, &["export"]));
    let again = import(&s, "current.jsonl");
    assert_eq!(again["created"], 0, "{again}");
    assert_eq!(again["changed"], 0, "{again}");
    assert_eq!(again["edges_added"], 0, "{again}");
    assert_eq!(ok(got(&s, &["export"])), before);
}

#[test]
fn older_files_the_deletions_manifest_and_schema_versions_come_in_too() {
    let tmp = tempfile::tempdir().unwrap();
    let s = new_store(tmp.path());
    let r = import(&s, "legacy.jsonl");
    assert_eq!(r["deletions"], 7, "the tombstones: {r}");
    assert_eq!(r["read"]["task"], 7, "{r}");
    assert_eq!(
        got(&s, &["task", "show", "T-bd-442"]).status.code(),
        Some(3)
    );
    let first = task(&s, "T-bd-1");
    assert_eq!(first["task"]["title"], "Add export/import commands");
    assert!(
        task(&s, "T-bd-63")["task"]["notes"].is_array(),
        "integer comment ids"
    );
    assert!(ok(got(&s, &["task", "show", "T-bd-324"])).contains("GH-3"));

    // The manifest deletes a live issue it lists, and a tombstone stands.
    let r = import(&s, "deletions.jsonl");
    assert_eq!(r["deletions"], 4, "{r}");
    assert_eq!(r["deleted"], 1, "{r}");
    assert_eq!(
        got(&s, &["task", "show", "T-bd-324"]).status.code(),
        Some(3)
    );
    // A live copy from a later file does not bring a deleted issue back.
    import(&s, "current.jsonl");
    assert_eq!(
        got(&s, &["task", "show", "T-bd-324"]).status.code(),
        Some(3)
    );

    // schema_version: a header skipped, records with it, records in `data`.
    let r = import(&s, "schema_version.jsonl");
    assert_eq!(r["skipped"], 1, "{r}");
    assert_eq!(r["read"]["task"], 4, "{r}");
    let q = task(&s, "T-bd-q3w7n");
    assert_eq!(q["task"]["title"], "bd export drops comment bodies");
    assert!(q["task"].get("schema_version").is_none(), "{q}");
    ok(got(&s, &["validate"]));
}

#[test]
fn a_file_cut_short_is_refused_whole_and_an_edit_in_got_survives_a_reimport() {
    let tmp = tempfile::tempdir().unwrap();
    let s = new_store(tmp.path());
    let before = ok(got(&s, &["export"]));
    let o = got(
        &s,
        &[
            "import",
            "--from",
            "beads",
            fixture("cut.jsonl").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("line 5") && err.contains("nothing was imported"),
        "{err}"
    );
    assert_eq!(ok(got(&s, &["export"])), before, "the store unchanged");

    import(&s, "current.jsonl");
    ok(got(
        &s,
        &["task", "update", "T-bd-09kt", "--title", "renamed in got"],
    ));
    import(&s, "current.jsonl");
    assert_eq!(task(&s, "T-bd-09kt")["task"]["title"], "renamed in got");
}
