//! Handoffs and decisions through the `got` binary: the handoff state machine is
//! enforced (only the target agent steps it, no step twice, none out of order,
//! racing steps: one wins), and decisions answer "why" for a task.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn got(store: &Path, agent: &str, args: &[&str]) -> Output {
    common::cli::got_as(store, agent, args)
}

use common::cli::ok;

/// Exit code and stderr of a refused command.
fn refused(o: &Output) -> (Option<i32>, String) {
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

use common::cli::ok_json as json;

fn store() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let s = tmp.path().join(".got");
    ok(got(&s, "x", &["init"]));
    (tmp, s)
}

#[test]
fn the_handoff_state_machine_is_enforced_step_by_step() {
    let (_tmp, s) = store();
    let t = ok(got(
        &s,
        "alice",
        &["-q", "task", "create", "port the cutter"],
    ));
    let h = ok(got(
        &s,
        "alice",
        &[
            "-q",
            "handoff",
            "initiate",
            &t,
            "--to",
            "bob",
            "--instructions",
            "finish the tests",
            "--context",
            r#"{"branch": "wal-tail", "files_modified": ["src/log.rs"]}"#,
        ],
    ));
    assert!(h.starts_with("H-"), "{h}");
    let show = || json(got(&s, "x", &["--json", "handoff", "show", &h]));
    let v = show();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["handoff"]["status"], "initiated");
    assert_eq!(v["handoff"]["from"], "alice");
    assert_eq!(v["handoff"]["task"], t.as_str());
    assert_eq!(v["handoff"]["context"]["branch"], "wal-tail");
    assert!(v["handoff"]["initiated_at"].is_i64());

    // Out of order, and by anyone but bob: refused, nothing changes.
    let version = v["handoff"]["version"].clone();
    for (agent, args, why) in [
        ("bob", vec!["handoff", "complete", &h], "only an accepted"),
        (
            "alice",
            vec!["handoff", "accept", &h],
            "only they can accept",
        ),
        (
            "carol",
            vec!["handoff", "reject", &h, "--reason", "no"],
            "only they can reject",
        ),
    ] {
        let (code, err) = refused(&got(&s, agent, &args));
        assert_eq!(code, Some(5), "{agent} {args:?}: {err}");
        assert!(err.contains(why), "{agent} {args:?}: {err}");
    }
    assert_eq!(show()["handoff"]["version"], version);

    ok(got(&s, "alice", &["task", "claim", &t]));
    ok(got(&s, "bob", &["handoff", "accept", &h]));
    let v = show();
    assert_eq!(v["handoff"]["status"], "accepted");
    // Accepting hands the task itself over.
    let task = json(got(&s, "x", &["--json", "task", "show", &t]));
    assert_eq!(task["task"]["assignee"], "bob");
    assert_eq!(task["task"]["status"], "in_progress");
    assert!(task["task"]["lease_expires_at"].is_null());
    assert!(v["handoff"]["accepted_at"].is_i64());
    // No step twice; no reject after accepting.
    for args in [
        vec!["handoff", "accept", &h],
        vec!["handoff", "reject", &h, "--reason", "changed my mind"],
    ] {
        let (code, err) = refused(&got(&s, "bob", &args));
        assert_eq!(code, Some(5), "{args:?}: {err}");
        assert!(err.contains("is accepted"), "{args:?}: {err}");
    }
    // A result that is not an object is refused before anything is written.
    let (code, err) = refused(&got(
        &s,
        "bob",
        &["handoff", "complete", &h, "--result", "[1]"],
    ));
    assert_eq!(code, Some(5), "{err}");
    ok(got(
        &s,
        "bob",
        &[
            "handoff",
            "complete",
            &h,
            "--result",
            r#"{"success": true, "summary": "tests pass", "commits": ["abc123"]}"#,
            "--artifact",
            "tests/torn_tail.rs",
        ],
    ));
    let v = show();
    assert_eq!(v["handoff"]["status"], "completed");
    assert_eq!(v["handoff"]["result"]["success"], true);
    assert_eq!(v["handoff"]["artifacts"][0], "tests/torn_tail.rs");
    let (code, _) = refused(&got(&s, "bob", &["handoff", "complete", &h]));
    assert_eq!(code, Some(5));

    // Rejection path, and the lists.
    let h2 = ok(got(
        &s,
        "alice",
        &[
            "-q",
            "handoff",
            "initiate",
            &t,
            "--to",
            "carol",
            "--instructions",
            "review",
        ],
    ));
    let (code, _) = refused(&got(
        &s,
        "carol",
        &["handoff", "reject", &h2, "--reason", " "],
    ));
    assert_eq!(code, Some(5), "an empty reason is refused");
    ok(got(
        &s,
        "carol",
        &["handoff", "reject", &h2, "--reason", "not my area"],
    ));
    let v = json(got(&s, "x", &["--json", "handoff", "show", &h2[..6]]));
    assert_eq!(v["handoff"]["status"], "rejected");
    assert_eq!(v["handoff"]["reject_reason"], "not my area");
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["-q", "handoff", "list"];
        all.extend(args);
        ok(got(&s, "x", &all)).lines().map(str::to_string).collect()
    };
    assert_eq!(ids(&["--status", "rejected"]), vec![h2.clone()]);
    assert_eq!(ids(&["--to", "bob"]), vec![h.clone()]);
    let mut both = vec![h.clone(), h2.clone()];
    both.sort();
    assert_eq!(ids(&[]), both);
    let (code, err) = refused(&got(&s, "x", &["handoff", "list", "--status", "done"]));
    assert_eq!(code, Some(5), "{err}");
    // Bad input refused: unknown task, context not an object, no instructions.
    for (args, code) in [
        (
            vec![
                "handoff",
                "initiate",
                "T-zzzzzzzzzz",
                "--to",
                "b",
                "--instructions",
                "i",
            ],
            3,
        ),
        (
            vec![
                "handoff",
                "initiate",
                &t,
                "--to",
                "b",
                "--instructions",
                "i",
                "--context",
                "{",
            ],
            5,
        ),
        (
            vec!["handoff", "initiate", &t, "--to", "b", "--instructions", ""],
            5,
        ),
        (
            vec![
                "handoff",
                "initiate",
                &t,
                "--to",
                "alice",
                "--instructions",
                "i",
            ],
            5,
        ),
    ] {
        let (c, err) = refused(&got(&s, "alice", &args));
        assert_eq!(c, Some(code), "{args:?}: {err}");
    }
    assert_eq!(ids(&[]).len(), 2, "refusals wrote nothing");
    let shown = json(got(&s, "x", &["--json", "task", "show", &t]));
    let mut listed: Vec<&str> = shown["handoffs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        both.iter().map(String::as_str).collect::<Vec<_>>(),
        "task show lists its handoffs"
    );
}

#[test]
fn of_four_processes_accepting_one_handoff_exactly_one_succeeds() {
    let (_tmp, s) = store();
    for round in 0..5 {
        let t = ok(got(
            &s,
            "alice",
            &["-q", "task", "create", &format!("t{round}")],
        ));
        let h = ok(got(
            &s,
            "alice",
            &[
                "-q",
                "handoff",
                "initiate",
                &t,
                "--to",
                "bob",
                "--instructions",
                "go",
            ],
        ));
        let kids: Vec<_> = (0..4)
            .map(|_| {
                Command::new(env!("CARGO_BIN_EXE_got"))
                    .arg("--store")
                    .arg(&s)
                    .args(["--agent", "bob", "handoff", "accept", &h])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let codes: Vec<Option<i32>> = kids
            .into_iter()
            .map(|k| k.wait_with_output().unwrap().status.code())
            .collect();
        assert_eq!(
            codes.iter().filter(|c| **c == Some(0)).count(),
            1,
            "round {round}: {codes:?}"
        );
        assert!(
            codes.iter().all(|c| matches!(c, Some(0) | Some(5))),
            "{codes:?}"
        );
        let v = json(got(&s, "x", &["--json", "handoff", "show", &h]));
        assert_eq!(v["handoff"]["version"], 2, "accepted exactly once");
    }
}

#[test]
fn decisions_record_why_and_answer_for_the_tasks_they_affect() {
    let (_tmp, s) = store();
    let a = ok(got(&s, "alice", &["-q", "task", "create", "segments"]));
    let b = ok(got(&s, "alice", &["-q", "task", "create", "recovery"]));
    let d1 = ok(got(
        &s,
        "alice",
        &[
            "-q",
            "decision",
            "log",
            "Zero-fill segments",
            "--rationale",
            "unwritten extents journal on first write",
            "--alternative",
            "fallocate",
            "--alternative",
            "sparse files",
            "--affects",
            &a,
            "--affects",
            &b[..6],
        ],
    ));
    let d2 = ok(got(
        &s,
        "bob",
        &[
            "-q",
            "decision",
            "log",
            "Quarantine torn tails",
            "--rationale",
            "keep evidence",
            "--affects",
            &b,
        ],
    ));
    let why = |id: &str| -> Vec<String> {
        ok(got(&s, "x", &["-q", "decision", "why", id]))
            .lines()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(why(&a), vec![d1.clone()]);
    assert_eq!(why(&b), vec![d1.clone(), d2.clone()], "oldest first");
    let shown = json(got(&s, "x", &["--json", "task", "show", &b]));
    assert_eq!(
        shown["decisions"].as_array().unwrap().len(),
        2,
        "task show lists its decisions"
    );
    assert_eq!(shown["decisions"][0]["id"], d1.as_str());
    let v = json(got(&s, "x", &["--json", "decision", "show", &d1]));
    assert_eq!(v["decision"]["decided_by"], "alice");
    assert_eq!(v["decision"]["alternatives"][1], "sparse files");
    let mut affects: Vec<String> = v["affects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    affects.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(affects, want);
    let listed: Vec<String> = ok(got(&s, "x", &["-q", "decision", "list"]))
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(listed, vec![d2.clone(), d1.clone()], "newest first");
    for (args, code) in [
        (vec!["decision", "log", "", "--rationale", "r"], 5),
        (vec!["decision", "log", "t", "--rationale", " "], 5),
        (
            vec![
                "decision",
                "log",
                "t",
                "--rationale",
                "r",
                "--affects",
                "T-nope-nope",
            ],
            3,
        ),
        (vec!["decision", "log", "t"], 2),
        (vec!["decision", "why", "T-zzzzzzzzzz"], 3),
    ] {
        let (c, err) = refused(&got(&s, "x", &args));
        assert_eq!(c, Some(code), "{args:?}: {err}");
    }
    assert_eq!(
        ok(got(&s, "x", &["-q", "decision", "list"]))
            .lines()
            .count(),
        2
    );
}
