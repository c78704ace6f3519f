//! `got validate`: a store the task commands made is valid; broken invariants
//! written around them (raw entity and edge writes) are each reported, exit 5;
//! expired leases and orphans are warnings; completions print a script.

use crate::common;

use serde_json::Value as Json;
use std::path::Path;
use std::process::Output;

fn got(store: &Path, args: &[&str]) -> Output {
    common::cli::got_as(store, "alice", args)
}

use common::cli::ok;

#[test]
fn validate_reports_each_broken_invariant_and_passes_a_clean_store() {
    let tmp = tempfile::tempdir().unwrap();
    let s = tmp.path().join(".got");
    ok(got(&s, &["init"]));
    let a = ok(got(&s, &["-q", "task", "create", "a"]));
    let b = ok(got(&s, &["-q", "task", "create", "b", "--depends-on", &a]));
    let lonely = ok(got(&s, &["-q", "task", "create", "lonely"]));
    // The clock is the test's (GOT_NOW_MS): the lease runs out when the test says.
    const T0: i64 = 4_000_000_000_000;
    let at = |ms: i64, args: &[&str]| -> Output {
        let mut o = std::process::Command::new(env!("CARGO_BIN_EXE_got"));
        o.arg("--store")
            .arg(&s)
            .args(["--agent", "alice"])
            .args(args)
            .env_remove("NO_COLOR")
            .env_remove("GOT_AGENT")
            .env("GOT_NOW_MS", ms.to_string());
        o.output().unwrap()
    };
    ok(at(T0, &["task", "claim", &lonely, "--lease", "1s"]));
    let v: Json = serde_json::from_str(&ok(at(T0 + 999, &["--json", "validate"]))).unwrap();
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["tasks"], 3);
    assert_eq!(v["orphans"], 1, "the lonely task has no edge");
    assert!(
        !v["warnings"].to_string().contains("reclaim"),
        "the lease has not run out yet: {v}"
    );
    let v: Json = serde_json::from_str(&ok(at(T0 + 1000, &["--json", "validate"]))).unwrap();
    assert_eq!(
        v["valid"], true,
        "an expired lease is a warning, not a broken rule: {v}"
    );
    assert!(
        v["warnings"][0].as_str().unwrap().contains("reclaim"),
        "{v}"
    );

    // Writes around the task commands break the rules.
    let put = |id: &str, kind: &str, props: &str| {
        ok(got(
            &s,
            &["entity", "put", kind, "--id", id, "--props", props],
        ));
    };
    put("T-badstatus", "task", r#"{"title": "x", "status": "done"}"#);
    put(
        "T-nobody",
        "task",
        r#"{"title": "x", "status": "in_progress"}"#,
    );
    put(
        "T-noreason",
        "task",
        r#"{"title": "x", "status": "blocked"}"#,
    );
    put(
        "H-dangling",
        "handoff",
        r#"{"status": "initiated", "task": "T-gone"}"#,
    );
    ok(got(&s, &["edge", "add", &a, "depends_on", &b]));
    let o = got(&s, &["--json", "validate"]);
    assert_eq!(
        o.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Json = serde_json::from_slice(&o.stdout).unwrap();
    let problems: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for want in [
        "T-badstatus has status",
        "T-nobody is in progress with nobody assigned",
        "T-noreason is blocked without a blocked_reason",
        "H-dangling hands off task",
        "dependency cycle",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(want)),
            "missing {want:?} in {problems:?}"
        );
    }
    assert_eq!(problems.len(), 5, "{problems:?}");
    let o = got(&s, &["validate"]);
    assert_eq!(o.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&o.stdout).contains("NOT VALID"));
}

#[test]
fn completions_print_a_script_for_each_shell() {
    let tmp = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "_got()"),
        ("zsh", "#compdef got"),
        ("fish", "complete -c got"),
    ] {
        let out = ok(got(tmp.path(), &["completions", shell]));
        assert!(
            out.contains(marker),
            "{shell}: {}",
            &out[..out.len().min(200)]
        );
        assert!(out.contains("claim"), "{shell} completes subcommands");
    }
    let o = got(tmp.path(), &["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
}
