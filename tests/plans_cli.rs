//! Sprints and epics through the `got` binary: membership, progress, goals,
//! status transitions, and a claim that exactly one of racing agents wins.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn got(store: &Path, agent: &str, args: &[&str]) -> Output {
    common::cli::got_as(store, agent, args)
}

use common::cli::{ok, ok_json as json};

fn store() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let s = tmp.path().join(".got");
    ok(got(&s, "x", &["init"]));
    (tmp, s)
}

#[test]
fn sprints_and_epics_track_membership_goals_and_progress() {
    let (_tmp, s) = store();
    let e = ok(got(
        &s,
        "a",
        &[
            "-q",
            "epic",
            "create",
            "Durable core",
            "--phase",
            "design",
            "--phase",
            "build",
        ],
    ));
    let s1 = ok(got(
        &s,
        "a",
        &[
            "-q",
            "sprint",
            "create",
            "one",
            "--epic",
            &e,
            "--goal",
            "WAL recovers",
        ],
    ));
    let s2 = ok(got(
        &s,
        "a",
        &["-q", "sprint", "create", "two", "--epic", &e],
    ));
    let v = json(got(&s, "a", &["--json", "sprint", "show", &s2]));
    assert_eq!(v["sprint"]["number"], 2, "numbered one past the highest");
    assert_eq!(v["sprint"]["epic"], e.as_str());
    let t1 = ok(got(
        &s,
        "a",
        &["-q", "task", "create", "t1", "--sprint", &s1],
    ));
    let t2 = ok(got(&s, "a", &["-q", "task", "create", "t2"]));
    let t3 = ok(got(
        &s,
        "a",
        &["-q", "task", "create", "t3", "--sprint", &s2],
    ));
    let t4 = ok(got(&s, "a", &["-q", "task", "create", "t4", "--epic", &e]));
    ok(got(&s, "a", &["sprint", "add", &s1, &t2]));
    ok(got(&s, "a", &["task", "complete", &t1]));
    ok(got(&s, "a", &["task", "start", &t3]));
    ok(got(&s, "a", &["task", "block", &t4, "--reason", "waiting"]));

    let v = json(got(&s, "a", &["--json", "sprint", "show", &s1]));
    let p = &v["progress"];
    assert_eq!(
        (
            p["tasks"].as_u64(),
            p["completed"].as_u64(),
            p["percent"].as_u64()
        ),
        (Some(2), Some(1), Some(50))
    );
    let mut members: Vec<&str> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    members.sort();
    let mut want = vec![t1.as_str(), t2.as_str()];
    want.sort();
    assert_eq!(members, want);
    // The epic counts its sprints' tasks and its own.
    let v = json(got(&s, "a", &["--json", "epic", "show", &e]));
    let p = &v["progress"];
    assert_eq!(p["tasks"], 4, "{v}");
    assert_eq!(
        (
            p["completed"].as_u64(),
            p["in_progress"].as_u64(),
            p["blocked"].as_u64(),
            p["pending"].as_u64()
        ),
        (Some(1), Some(1), Some(1), Some(1))
    );
    assert_eq!(p["percent"], 25);
    let v = json(got(&s, "a", &["--json", "epic", "list"]));
    assert_eq!(v["epics"][0]["progress"]["tasks"], 4);
    assert_eq!(v["epics"][0]["phases"][1], "build");

    // Goals.
    ok(got(
        &s,
        "a",
        &["sprint", "goal", "add", &s1, "docs match the code"],
    ));
    ok(got(&s, "a", &["sprint", "goal", "complete", &s1, "2"]));
    let v = json(got(&s, "a", &["--json", "sprint", "goal", "list", &s1]));
    assert_eq!(v["goals"][0]["done"], false);
    assert_eq!(v["goals"][1]["done"], true);
    assert_eq!(v["goals"][1]["description"], "docs match the code");
    let o = got(&s, "a", &["sprint", "goal", "complete", &s1, "3"]);
    assert_eq!(o.status.code(), Some(3), "no goal 3");

    // Status transitions.
    ok(got(&s, "a", &["sprint", "start", &s1]));
    let o = got(&s, "a", &["sprint", "start", &s1]);
    assert_eq!(
        o.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    ok(got(&s, "a", &["sprint", "complete", &s1]));
    let o = got(&s, "a", &["sprint", "complete", &s1]);
    assert_eq!(o.status.code(), Some(5));
    let o = got(&s, "b", &["sprint", "claim", &s1]);
    assert_eq!(
        o.status.code(),
        Some(5),
        "a completed sprint cannot be claimed"
    );
    let ids: Vec<String> = ok(got(&s, "a", &["-q", "sprint", "list"]))
        .lines()
        .map(str::to_string)
        .collect();
    let mut want = vec![s1.clone(), s2.clone()];
    want.sort();
    assert_eq!(ids, want);
    for (args, code) in [
        (vec!["sprint", "create", " "], 5),
        (vec!["sprint", "create", "x", "--epic", "E-zzzzzzzzzz"], 3),
        (vec!["sprint", "add", &s1, "T-zzzzzzzzzz"], 3),
        (vec!["sprint", "show", &t1], 3),
        (vec!["epic", "create", ""], 5),
    ] {
        let o = got(&s, "a", &args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn of_four_agents_claiming_one_sprint_exactly_one_wins() {
    let (_tmp, s) = store();
    for round in 0..5 {
        let sp = ok(got(
            &s,
            "a",
            &["-q", "sprint", "create", &format!("s{round}")],
        ));
        let kids: Vec<_> = (0..4)
            .map(|i| {
                Command::new(env!("CARGO_BIN_EXE_got"))
                    .arg("--store")
                    .arg(&s)
                    .args(["--agent", &format!("agent-{i}"), "sprint", "claim", &sp])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outs: Vec<Output> = kids
            .into_iter()
            .map(|k| k.wait_with_output().unwrap())
            .collect();
        let wins = outs.iter().filter(|o| o.status.code() == Some(0)).count();
        assert_eq!(wins, 1, "round {round}");
        let v = json(got(&s, "x", &["--json", "sprint", "show", &sp]));
        let holder = v["sprint"]["claimed_by"].as_str().unwrap().to_string();
        for o in outs.iter().filter(|o| o.status.code() != Some(0)) {
            assert_eq!(o.status.code(), Some(4));
            assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("claimed by {holder}")));
        }
        // The holder releases; another may then claim.
        let o = got(&s, "someone-else", &["sprint", "release", &sp]);
        assert_eq!(o.status.code(), Some(4));
        ok(got(&s, &holder, &["sprint", "release", &sp]));
        ok(got(&s, "someone-else", &["sprint", "claim", &sp]));
    }
}
