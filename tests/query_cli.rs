//! `got query neighbors`, `got query reach` and `got query ready` through the
//! built binary, on a small graph whose answers are worked out by hand: JSON and
//! text output, kinds, directions, depth and limits.

use crate::common;

use common::cli::{ok, ok_json, text};
use serde_json::{json, Value as Json};
use std::path::Path;
use std::process::{Command, Output};

/// `got --store STORE ARGS…` with `GOT_NOW_MS` set to `now` (creation times are
/// the test's, so the ready queue's order by creation time is exact).
fn got_at(store: &Path, now: i64, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_got"))
        .arg("--store")
        .arg(store)
        .args(["--agent", "alice"])
        .args(args)
        .env_remove("GOT_AGENT")
        .env_remove("NO_COLOR")
        .env("GOT_NOW_MS", now.to_string())
        .output()
        .unwrap()
}

const T0: i64 = 4_000_000_000_000;

fn got(store: &Path, args: &[&str]) -> Output {
    got_at(store, T0, args)
}

fn put(store: &Path, id: &str, kind: &str, props: &str, at: i64) {
    ok(got_at(
        store,
        at,
        &["entity", "put", kind, "--id", id, "--props", props],
    ));
}

fn edge(store: &Path, from: &str, kind: &str, to: &str) {
    ok(got(store, &["edge", "add", from, kind, to]));
}

fn ids(j: &Json) -> Vec<String> {
    j.as_array()
        .unwrap_or_else(|| panic!("not an array: {j}"))
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

fn new_store() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let s = tmp.path().join(".got");
    ok(got(&s, &["init"]));
    (tmp, s)
}

/// ```text
///  a -depends_on-> b -depends_on-> d -depends_on-> e
///  a -depends_on-> c -rel--------> d
///  f (alone), g -rel-> a
/// ```
fn graph_store() -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, s) = new_store();
    for id in ["a", "b", "c", "d", "e", "f", "g"] {
        put(&s, id, "node", &format!(r#"{{"name": "{id}"}}"#), T0);
    }
    edge(&s, "a", "depends_on", "b");
    edge(&s, "a", "depends_on", "c");
    edge(&s, "b", "depends_on", "d");
    edge(&s, "c", "rel", "d");
    edge(&s, "d", "depends_on", "e");
    edge(&s, "g", "rel", "a");
    (tmp, s)
}

#[test]
fn query_neighbors_follows_the_kinds_and_direction_asked_for() {
    let (_tmp, s) = graph_store();
    let n = |args: &[&str]| -> Json {
        let mut a = vec!["--json", "query", "neighbors"];
        a.extend_from_slice(args);
        ok_json(got(&s, &a))
    };
    // Default: out-edges of every kind, sorted, once each.
    assert_eq!(n(&["a"]), json!(["b", "c"]));
    assert_eq!(n(&["c"]), json!(["d"]));
    assert_eq!(n(&["e"]), json!([]));
    assert_eq!(n(&["f"]), json!([]));
    assert_eq!(n(&["c", "--kind", "depends_on"]), json!([]));
    assert_eq!(n(&["c", "--kind", "rel"]), json!(["d"]));
    assert_eq!(n(&["d", "--direction", "in"]), json!(["b", "c"]));
    assert_eq!(
        n(&["d", "--direction", "in", "--kind", "depends_on"]),
        json!(["b"])
    );
    assert_eq!(n(&["d", "--direction", "both"]), json!(["b", "c", "e"]));
    assert_eq!(n(&["a", "--direction", "both"]), json!(["b", "c", "g"]));
    assert_eq!(
        n(&[
            "a",
            "--direction",
            "both",
            "--kind",
            "rel",
            "--kind",
            "depends_on"
        ]),
        json!(["b", "c", "g"])
    );
    // Text: one id a line.
    assert_eq!(
        ok(got(&s, &["query", "neighbors", "d", "--direction", "both"])),
        "b\nc\ne"
    );
    assert_eq!(ok(got(&s, &["query", "neighbors", "f"])), "");
    // An unknown entity is not found (3); a bad direction a usage error (2).
    let o = got(&s, &["query", "neighbors", "zz"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let o = got(&s, &["query", "neighbors", "a", "--direction", "up"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // A deleted edge is gone from the answer.
    ok(got(&s, &["edge", "rm", "a", "depends_on", "c"]));
    assert_eq!(n(&["a"]), json!(["b"]));
    assert_eq!(n(&["c", "--direction", "in"]), json!([]));
}

#[test]
fn query_reach_walks_breadth_first_with_distances() {
    let (_tmp, s) = graph_store();
    let r = |args: &[&str]| -> Vec<(String, u64)> {
        let mut a = vec!["--json", "query", "reach"];
        a.extend_from_slice(args);
        let j = ok_json(got(&s, &a));
        j.as_array()
            .unwrap_or_else(|| panic!("not an array: {j}"))
            .iter()
            .map(|e| {
                (
                    e["id"].as_str().unwrap().to_string(),
                    e["depth"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let v = |pairs: &[(&str, u64)]| -> Vec<(String, u64)> {
        pairs.iter().map(|(i, d)| (i.to_string(), *d)).collect()
    };
    // The start first at 0; then by depth, ids in order within one; d once,
    // at its shortest distance, though two paths lead to it.
    assert_eq!(
        r(&["a"]),
        v(&[("a", 0), ("b", 1), ("c", 1), ("d", 2), ("e", 3)])
    );
    assert_eq!(
        r(&["a", "--depth", "1"]),
        v(&[("a", 0), ("b", 1), ("c", 1)])
    );
    assert_eq!(r(&["a", "--depth", "0"]), v(&[("a", 0)]));
    assert_eq!(
        r(&["a", "--depth", "2"]),
        v(&[("a", 0), ("b", 1), ("c", 1), ("d", 2)])
    );
    // Only depends_on: c's way to d is a rel edge, so d comes through b.
    assert_eq!(
        r(&["a", "--kind", "depends_on"]),
        v(&[("a", 0), ("b", 1), ("c", 1), ("d", 2), ("e", 3)])
    );
    assert_eq!(r(&["c", "--kind", "depends_on"]), v(&[("c", 0)]));
    assert_eq!(r(&["c"]), v(&[("c", 0), ("d", 1), ("e", 2)]));
    // Backwards: what depends on e, however far.
    assert_eq!(
        r(&["e", "--direction", "in", "--kind", "depends_on"]),
        v(&[("e", 0), ("d", 1), ("b", 2), ("a", 3)])
    );
    assert_eq!(
        r(&["e", "--direction", "in"]),
        v(&[("e", 0), ("d", 1), ("b", 2), ("c", 2), ("a", 3), ("g", 4)])
    );
    assert_eq!(r(&["f", "--direction", "both"]), v(&[("f", 0)]));
    // Text: "DEPTH ID" a line.
    assert_eq!(ok(got(&s, &["query", "reach", "b"])), "0 b\n1 d\n2 e");
    let o = got(&s, &["query", "reach", "zz"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    // A new edge is followed at once.
    edge(&s, "e", "rel", "f");
    assert_eq!(r(&["b"]), v(&[("b", 0), ("d", 1), ("e", 2), ("f", 3)]));
}

#[test]
fn query_ready_lists_ready_tasks_by_priority_then_creation_then_id() {
    let (_tmp, s) = new_store();
    let task = |id: &str, prio: &str, status: &str, at: i64| {
        put(
            &s,
            id,
            "task",
            &format!(r#"{{"title": "{id}", "status": "{status}", "priority": "{prio}"}}"#),
            at,
        );
    };
    let o = got(&s, &["query", "ready"]);
    assert_eq!(ok(o), "nothing ready");
    assert_eq!(ok_json(got(&s, &["--json", "query", "ready"])), json!([]));
    // Ready: pending, unassigned, every dependency completed.
    task("T-m2", "medium", "pending", T0 + 2);
    task("T-m1", "medium", "pending", T0 + 3); // later than T-m2 despite its id
    task("T-m3", "medium", "pending", T0 + 3); // same time as T-m1: by id
    task("T-crit", "critical", "pending", T0 + 9);
    task("T-low", "low", "pending", T0 + 1);
    task("T-odd", "someday", "pending", T0); // an unknown priority sorts last
    task("T-high", "high", "pending", T0 + 4);
    // Not ready: waits on an open task; waits on a completed one is fine.
    task("T-waits", "critical", "pending", T0 + 5);
    task("T-open", "high", "in_progress", T0 + 5);
    edge(&s, "T-waits", "depends_on", "T-open");
    task("T-done", "high", "completed", T0 + 5);
    task("T-after", "high", "pending", T0 + 6);
    edge(&s, "T-after", "depends_on", "T-done");
    // Not ready: blocked, completed, or claimed.
    task("T-blocked", "critical", "blocked", T0 + 5);
    task("T-claimed", "critical", "pending", T0 + 5);
    ok(got(&s, &["task", "claim", "T-claimed"]));
    // Not a task at all.
    put(
        &s,
        "x-note",
        "note",
        r#"{"status": "pending", "priority": "critical"}"#,
        T0,
    );

    let want = [
        "T-crit", "T-high", "T-after", "T-m2", "T-m1", "T-m3", "T-low", "T-odd",
    ];
    let all = ok_json(got(&s, &["--json", "query", "ready", "--limit", "100"]));
    assert_eq!(ids(&all), want, "{all}");
    assert_eq!(all[0]["kind"], "task");
    assert_eq!(all[0]["props"]["priority"], "critical");
    assert_eq!(all[0]["created_at"], T0 + 9);
    // The default limit is 20; --limit takes a prefix of the same order.
    assert_eq!(ids(&ok_json(got(&s, &["--json", "query", "ready"]))), want);
    assert_eq!(
        ids(&ok_json(got(
            &s,
            &["--json", "query", "ready", "--limit", "3"]
        ))),
        want[..3]
    );
    // Text: one entity a line, `ID KIND vVERSION PROPS`.
    let lines: Vec<String> = ok(got(&s, &["query", "ready", "--limit", "2"]))
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("T-crit task v1 {"), "{lines:?}");
    assert!(lines[1].starts_with("T-high task v1 {"), "{lines:?}");
    // The task command `got ready` agrees.
    let ready = ok_json(got(&s, &["--json", "ready"]));
    assert_eq!(
        ready["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        want
    );
    // Completing what T-waits waits on makes it ready (critical, created at +5).
    ok(got(&s, &["task", "complete", "T-open"]));
    let now = ids(&ok_json(got(
        &s,
        &["--json", "query", "ready", "--limit", "2"],
    )));
    assert_eq!(now, ["T-waits", "T-crit"]);
}
