//! Agents racing for work, each a separate `got` process: of any number claiming
//! one task exactly one wins and the others are told who did; N agents asking for
//! the next task at once get N different tasks.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

fn got(store: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_got"));
    c.arg("--store").arg(store).env_remove("GOT_AGENT");
    c
}

fn run(store: &Path, args: &[&str]) -> Output {
    got(store).args(args).output().unwrap()
}

fn ok_stdout(o: Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

fn spawn(store: &Path, args: &[&str]) -> Child {
    got(store)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn new_store() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join(".got");
    ok_stdout(run(&store, &["init"]));
    (tmp, store)
}

const AGENTS: usize = 8;

#[test]
fn eight_processes_claiming_one_task_twenty_rounds_exactly_one_wins_each_round() {
    let (_tmp, store) = new_store();
    for round in 0..20 {
        let id = ok_stdout(run(
            &store,
            &["-q", "task", "create", &format!("contested task {round}")],
        ));
        let kids: Vec<(String, Child)> = (0..AGENTS)
            .map(|a| {
                let agent = format!("agent-{a}");
                let c = spawn(&store, &["--agent", &agent, "task", "claim", &id]);
                (agent, c)
            })
            .collect();
        let outs: Vec<(String, Output)> = kids
            .into_iter()
            .map(|(a, c)| (a, c.wait_with_output().unwrap()))
            .collect();
        let winners: Vec<&String> = outs
            .iter()
            .filter(|(_, o)| o.status.code() == Some(0))
            .map(|(a, _)| a)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let winner = winners[0];
        for (a, o) in &outs {
            if a == winner {
                continue;
            }
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(4), "round {round} {a}: {err}");
            assert!(
                err.contains(&format!("claimed by {winner}")),
                "round {round} {a} must be told the winner {winner}: {err}"
            );
        }
        let shown: serde_json::Value =
            serde_json::from_str(&ok_stdout(run(&store, &["--json", "task", "show", &id])))
                .unwrap();
        assert_eq!(shown["task"]["assignee"], winner.as_str(), "round {round}");
        assert_eq!(shown["task"]["status"], "in_progress");
        // One claim: the task was written once after its creation.
        assert_eq!(shown["task"]["version"], 2, "round {round}: {shown}");
    }
}

#[test]
fn eight_processes_asking_for_the_next_task_get_eight_different_tasks() {
    let (_tmp, store) = new_store();
    let mut ids: Vec<String> = (0..AGENTS)
        .map(|i| {
            ok_stdout(run(
                &store,
                &["-q", "task", "create", &format!("work item {i}")],
            ))
        })
        .collect();
    // Not ready: waits on an open task; must never be handed out.
    let blocker = ok_stdout(run(&store, &["-q", "task", "create", "blocker"]));
    run(&store, &["--agent", "someone", "task", "start", &blocker]);
    ok_stdout(run(
        &store,
        &["-q", "task", "create", "waits", "--depends-on", &blocker],
    ));
    let kids: Vec<(String, Child)> = (0..AGENTS)
        .map(|a| {
            let agent = format!("agent-{a}");
            let c = spawn(
                &store,
                &["--json", "--agent", &agent, "task", "next", "--claim"],
            );
            (agent, c)
        })
        .collect();
    let mut claimed = Vec::new();
    for (agent, c) in kids {
        let o = c.wait_with_output().unwrap();
        let v: serde_json::Value = serde_json::from_str(&ok_stdout(o)).unwrap();
        assert_eq!(v["task"]["assignee"], agent.as_str());
        claimed.push(v["task"]["id"].as_str().unwrap().to_string());
    }
    claimed.sort();
    ids.sort();
    assert_eq!(
        claimed, ids,
        "each agent a different ready task, all of them"
    );
    // Nothing ready is left: the next agent is told so (exit 3).
    let o = run(&store, &["--agent", "late", "task", "next", "--claim"]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing is ready"));
}
