//! `got import --from got-json`: the JSON store of the GoT system got replaces
//! (fixtures in tests/fixtures/got-json, written as that tool writes them; see
//! its README) comes in whole — every kind, ids kept, edges as got's relations,
//! history as earlier versions, checksums verified, dangling edges listed — and
//! a second import changes nothing.

use crate::common;

use common::cli::{got_as, ok, ok_json, text};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::Output;

const T_PARSE: &str = "T-20251226-090512-3f1a9c07";
const T_CAFE: &str = "T-20251226-091130-c4fe0001";
const T_EDGES: &str = "T-20251226-092045-7b2d4e61";
const T_SPRINTS: &str = "T-20251226-093300-0d5e8a12";
const T_HANDOFFS: &str = "T-20251226-094415-e2b7c943";
const T_RETAIN: &str = "T-20251226-095020-f10a6b38";
const T_VERIFY: &str = "T-20251226-100130-9a4c2d75";
const T_CRLF: &str = "T-20251226-101245-58e3b1f0";
const T_BAD: &str = "T-20251226-130000-bad0c0de";
const H_DONE: &str = "H-20251226-110000-0ff1ce01";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/got-json")
        .join(name)
}

fn got(store: &Path, args: &[&str]) -> Output {
    got_as(store, "alice", args)
}

fn import(store: &Path, dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["--json", "import", "--from", "got-json"];
    args.extend_from_slice(extra);
    args.push(dir.to_str().unwrap());
    got(store, &args)
}

fn report(o: &Output) -> Json {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn ids(j: &Json, key: &str) -> Vec<String> {
    let mut v: Vec<String> = j[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {j}"))
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn a_got_json_store_comes_in_whole_and_a_second_import_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let s = tmp.path().join("s");
    ok(got(&s, &["init"]));
    // The project directory (holding .got) is accepted as well as .got itself.
    let o = import(&s, &fixture("store"), &[]);
    // One file's checksum does not match: reported, left out, exit 5.
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    let r = report(&o);
    let read = &r["read"];
    for (kind, n) in [
        ("task", 8),
        ("decision", 2),
        ("sprint", 2),
        ("epic", 2),
        ("handoff", 2),
        ("edge", 18),
    ] {
        assert_eq!(read[kind], n, "{kind}: {r}");
    }
    assert_eq!(r["created"], 16, "{r}");
    assert_eq!(r["edges_added"], 17, "{r}");
    assert_eq!(r["history_versions"], 5, "{r}");
    let bad = r["bad_checksums"].as_array().unwrap();
    assert_eq!(bad.len(), 1, "{r}");
    assert!(bad[0].as_str().unwrap().ends_with(&format!("{T_BAD}.json")));
    assert_eq!(
        r["dangling"],
        serde_json::json!([{
            "from": "D-20251222-143000-5e7ded02",
            "kind": "affects",
            "to": "T-20251220-080000-de1e7ed0",
            "missing": "T-20251220-080000-de1e7ed0",
        }])
    );
    assert_eq!(r["unreadable"], serde_json::json!([]));
    assert!(
        got(&s, &["task", "show", T_BAD]).status.code() == Some(3),
        "the bad-checksum task is not imported"
    );

    // Ready: pending with every dependency completed. A pending task waiting
    // on a pending one is not (the GoT system's `task next` offered it).
    let ready = ok_json(got(&s, &["--json", "ready"]));
    assert_eq!(ids(&ready, "tasks"), [T_SPRINTS, T_RETAIN], "{ready}");
    // `task next` agrees (in the GoT system it ignored dependencies).
    let next = ok_json(got(&s, &["--json", "task", "next"]));
    assert!(
        [T_SPRINTS, T_RETAIN].contains(&next["task"]["id"].as_str().unwrap()),
        "{next}"
    );
    let blocked = ok_json(got(&s, &["--json", "blocked"]));
    assert!(blocked.to_string().contains(T_HANDOFFS), "{blocked}");

    let show = |id: &str| ok_json(got(&s, &["--json", "task", "show", id]));
    // Fields mapped, the rest kept; non-ASCII exact.
    let cafe = show(T_CAFE);
    assert_eq!(cafe["task"]["title"], "Café — naïve ✓ title round-trip");
    assert!(cafe["task"]["description"]
        .as_str()
        .unwrap()
        .contains("like «日本語» and 🚀 must"));
    let edges = show(T_EDGES);
    let t = &edges["task"];
    assert_eq!(t["status"], "completed");
    assert_eq!(t["priority"], "critical", "the top-level priority wins");
    assert_eq!(t["category"], "feature");
    assert_eq!(t["got_json_priority"], "high", "the stale copy is kept");
    assert_eq!(t["estimated_hours"], 2.5);
    assert_eq!(t["review"]["by"], "zoë");
    assert!(t["retrospective"]
        .as_str()
        .unwrap()
        .starts_with("DEPENDS_ON"));
    // DEPENDS_ON dependent → prerequisite; BLOCKS blocker → blocked.
    let sprints = show(T_SPRINTS);
    assert_eq!(ids(&sprints, "depends_on"), [T_PARSE]);
    let verify = show(T_VERIFY);
    assert_eq!(ids(&verify, "depends_on"), [T_CRLF]);
    // Deferred: put off, so blocked with its original status kept.
    let crlf = show(T_CRLF);
    assert_eq!(crlf["task"]["status"], "blocked");
    assert_eq!(crlf["task"]["original_status"], "deferred");
    // JUSTIFIES: what the decision affects; TRANSFERS: the handoff's task.
    let parse = show(T_PARSE);
    assert_eq!(
        ids(&parse, "decisions"),
        ["D-20251226-102000-a11e7e01"],
        "{parse}"
    );
    assert_eq!(ids(&parse, "handoffs"), [H_DONE], "{parse}");

    // Sprints and epics keep their ids, CONTAINS and PART_OF make membership.
    let sprint = ok(got(&s, &["sprint", "show", "S-018"]));
    for t in [T_CAFE, T_SPRINTS, T_HANDOFFS] {
        assert!(sprint.contains(t), "{sprint}");
    }
    assert!(
        sprint.contains("[x] Read every entity kind"),
        "goals from text: {sprint}"
    );
    let old = ok(got(&s, &["sprint", "show", "S-sprint-017-auth-rework"]));
    assert!(
        old.contains("[x] Drop the v1 login endpoint")
            && old.contains("[ ] Document the migration for operators"),
        "goals from description: {old}"
    );
    for t in [T_PARSE, T_EDGES] {
        assert!(old.contains(t), "{old}");
    }
    let epics = ok(got(&s, &["epic", "list"]));
    assert!(
        epics.contains("EPIC-platform") && epics.contains("E-legacy-2024"),
        "{epics}"
    );
    assert!(ok(got(&s, &["epic", "show", "EPIC-platform"])).contains("S-018"));
    assert!(ok(got(&s, &["epic", "show", "E-legacy-2024"])).contains("S-sprint-017-auth-rework"));

    // History: the earlier versions, in order, with their original times.
    let hist = ok_json(got(&s, &["--json", "history", T_PARSE]));
    let versions = hist.as_array().unwrap();
    let hist_text = hist.to_string();
    let titles: Vec<&str> = versions
        .iter()
        .filter_map(|v| v["props"]["title"].as_str())
        .collect();
    assert_eq!(
        titles,
        [
            "Parse GoT wrappers",
            "Parse .got entity wrappers",
            "Parse .got entity wrappers"
        ],
        "{hist_text}"
    );
    let times: Vec<i64> = versions
        .iter()
        .map(|v| v["props"]["modified_at"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");

    ok(got(&s, &["validate"]));
    // Again: nothing changes.
    let before = ok(got(&s, &["export"]));
    let again = report(&import(&s, &fixture("store/.got"), &[]));
    assert_eq!(
        (again["created"].clone(), again["changed"].clone()),
        (0.into(), 0.into()),
        "{again}"
    );
    assert_eq!(again["edges_added"], 0);
    assert_eq!(ok(got(&s, &["export"])), before);
}

#[test]
fn an_edit_made_in_got_after_the_import_survives_importing_again() {
    let tmp = tempfile::tempdir().unwrap();
    let s = tmp.path().join("s");
    ok(got(&s, &["init"]));
    import(&s, &fixture("store"), &[]);
    ok(got(
        &s,
        &["task", "update", T_RETAIN, "--title", "renamed in got"],
    ));
    ok(got(&s, &["task", "claim", T_SPRINTS]));
    import(&s, &fixture("store"), &[]);
    let t = ok_json(got(&s, &["--json", "task", "show", T_RETAIN]));
    assert_eq!(t["task"]["title"], "renamed in got");
    let t = ok_json(got(&s, &["--json", "task", "show", T_SPRINTS]));
    assert_eq!(t["task"]["status"], "in_progress");
    assert_eq!(t["task"]["assignee"], "alice");
}

#[test]
fn bad_checksums_are_imported_when_accepted_and_unreadable_files_never() {
    let tmp = tempfile::tempdir().unwrap();
    let s = tmp.path().join("s");
    ok(got(&s, &["init"]));
    let o = import(&s, &fixture("store"), &["--accept-bad-checksums"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        report(&o)["bad_checksums"].as_array().unwrap().len(),
        1,
        "still reported"
    );
    let t = ok_json(got(&s, &["--json", "task", "show", T_BAD]));
    assert_eq!(
        t["task"]["title"],
        "Hand-edited after write (checksum no longer matches)"
    );

    // A file cut in the middle: named, left out; the rest comes in.
    let c = tmp.path().join("c");
    ok(got(&c, &["init"]));
    let o = import(&c, &fixture("cut/.got"), &[]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    let r = report(&o);
    assert_eq!(r["read"]["task"], 1, "{r}");
    assert_eq!(r["created"], 1, "{r}");
    let bad = r["unreadable"].as_array().unwrap();
    assert_eq!(bad.len(), 1, "{r}");
    assert!(
        bad[0]["error"].as_str().unwrap().contains("not JSON"),
        "{r}"
    );

    // Not a GoT store at all.
    let o = got(
        &c,
        &["import", "--from", "got-json", tmp.path().to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no GoT JSON store"));
}
