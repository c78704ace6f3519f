//! `got dashboard` and `got graph` through the binary: the dashboard's sections
//! hold what the store holds, with no colour when piped; the graph in DOT,
//! Mermaid and JSON has the tasks and their dependencies, limited by depth.

use crate::common;

use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::Output;

fn got(store: &Path, args: &[&str]) -> Output {
    common::cli::got_as(store, "alice", args)
}

use common::cli::ok;

/// A chain c -> b -> a (c depends on b, b on a), a claimed; d blocked by hand;
/// a pending handoff; a decision; a sprint holding a and d.
fn setup() -> (tempfile::TempDir, PathBuf, [String; 4]) {
    let tmp = tempfile::tempdir().unwrap();
    let s = tmp.path().join(".got");
    ok(got(&s, &["init"]));
    let a = ok(got(
        &s,
        &["-q", "task", "create", "alpha", "--priority", "high"],
    ));
    let b = ok(got(
        &s,
        &["-q", "task", "create", "beta", "--depends-on", &a],
    ));
    let c = ok(got(
        &s,
        &[
            "-q",
            "task",
            "create",
            "gamma \"quoted\"",
            "--depends-on",
            &b,
        ],
    ));
    let d = ok(got(&s, &["-q", "task", "create", "delta"]));
    ok(got(&s, &["task", "claim", &a]));
    ok(got(&s, &["task", "block", &d, "--reason", "needs review"]));
    ok(got(
        &s,
        &[
            "handoff",
            "initiate",
            &a,
            "--to",
            "bob",
            "--instructions",
            "finish",
        ],
    ));
    ok(got(
        &s,
        &[
            "decision",
            "log",
            "Chain them",
            "--rationale",
            "order matters",
            "--affects",
            &c,
        ],
    ));
    let sp = ok(got(&s, &["-q", "sprint", "create", "one"]));
    ok(got(&s, &["sprint", "add", &sp, &a]));
    ok(got(&s, &["sprint", "add", &sp, &d]));
    (tmp, s, [a, b, c, d])
}

#[test]
fn the_dashboard_shows_every_section_and_no_colour_when_piped() {
    let (_tmp, s, [a, b, c, d]) = setup();
    let text = ok(got(&s, &["dashboard"]));
    assert!(
        !text.contains('\x1b'),
        "no ANSI escapes when piped: {text:?}"
    );
    for want in [
        "READY",
        "IN PROGRESS",
        "BLOCKED",
        "needs review",
        "HANDOFFS",
        "DECISIONS",
        "Chain them",
        "SPRINTS",
        "alice",
        &a,
        &d,
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    let v: Json = serde_json::from_str(&ok(got(&s, &["--json", "dashboard"]))).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["counts"]["in_progress"], 1);
    assert_eq!(v["counts"]["blocked"], 1);
    assert_eq!(v["counts"]["pending"], 2);
    assert_eq!(v["in_progress"]["alice"][0], a.as_str());
    assert_eq!(v["blocked"][0]["reason"], "needs review");
    let mut waiting: Vec<&str> = v["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    waiting.sort();
    let mut want = vec![b.as_str(), c.as_str()];
    want.sort();
    assert_eq!(waiting, want, "b waits on a, c on b");
    assert_eq!(v["handoffs"][0]["to"], "bob");
    assert_eq!(v["decisions"][0]["title"], "Chain them");
    assert_eq!(v["sprints"][0]["tasks"], 2);
    assert_eq!(
        v["ready"].as_array().unwrap().len(),
        0,
        "nothing is ready: {v}"
    );
}

#[test]
fn the_graph_is_dot_mermaid_or_json_and_depth_limits_it() {
    let (_tmp, s, [a, b, c, d]) = setup();
    let dot = ok(got(&s, &["graph"]));
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(
        dot.contains(&format!("\"{c}\" -> \"{b}\""))
            && dot.contains(&format!("\"{b}\" -> \"{a}\"")),
        "{dot}"
    );
    assert!(dot.contains("gamma 'quoted'"), "quotes escaped: {dot}");
    let mermaid = ok(got(&s, &["graph", "--format", "mermaid"]));
    assert!(mermaid.starts_with("graph LR"));
    assert!(
        mermaid.contains(&format!(
            "{} -->|depends_on| {}",
            b.replace('-', "_"),
            a.replace('-', "_")
        )),
        "{mermaid}"
    );
    let nodes = |args: &[&str]| -> Vec<String> {
        let v: Json = serde_json::from_str(&ok(got(&s, args))).unwrap();
        let mut n: Vec<String> = v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    let mut all = vec![a.clone(), b.clone(), c.clone(), d.clone()];
    all.sort();
    assert_eq!(nodes(&["graph", "--format", "json"]), all);
    assert_eq!(
        nodes(&["--json", "graph"]),
        all,
        "--json means the JSON format"
    );
    let mut near = vec![a.clone(), b.clone()];
    near.sort();
    assert_eq!(nodes(&["--json", "graph", &a, "--depth", "1"]), near);
    let mut chain = vec![a.clone(), b.clone(), c.clone()];
    chain.sort();
    assert_eq!(nodes(&["--json", "graph", &b]), chain);
    let o = got(&s, &["graph", "T-zzzzzzzzzz"]);
    assert_eq!(o.status.code(), Some(3));
}
