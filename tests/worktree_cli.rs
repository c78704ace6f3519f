//! Worktrees of one clone share one store: from any linked worktree of a
//! repository, and any directory below one, `got` finds the `.got` at the top of
//! the main worktree; `got init` anywhere in the work tree creates it there. Agents
//! in separate worktrees then claim atomically from one store. Run against the
//! machine's `git` in a sandboxed `HOME`.

use crate::common;

use common::cli::text;
use common::git::Sandbox;
use std::path::Path;

fn json(o: std::process::Output) -> serde_json::Value {
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// A repository `main` with two linked worktrees, `wt1` and `wt2`, each with a
/// subdirectory `src/deep`.
fn repo_with_worktrees(sb: &Sandbox) -> (std::path::PathBuf, [std::path::PathBuf; 2]) {
    let main = sb.repo("main");
    let wts = ["wt1", "wt2"].map(|n| {
        let wt = sb.root.join(n);
        sb.git(
            &main,
            &["worktree", "add", "-q", "-b", n, wt.to_str().unwrap()],
        );
        std::fs::create_dir_all(wt.join("src/deep")).unwrap();
        wt
    });
    (main, wts)
}

#[test]
fn every_worktree_and_every_directory_below_finds_the_main_worktrees_store() {
    let sb = Sandbox::new();
    let (main, [wt1, wt2]) = repo_with_worktrees(&sb);
    std::fs::create_dir_all(main.join("sub")).unwrap();

    // Before `got init`: no store, and the error says where it looked.
    let o = sb.got(&wt1.join("src/deep"), &["task", "list"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("main worktree"), "{}", text(&o));

    // `got init` from a subdirectory of the main worktree: at its top.
    let j = json(sb.got(&main.join("sub"), &["--json", "init"]));
    assert_eq!(j["store"], serde_json::json!(main.join(".got")));

    let j = json(sb.got(
        &wt1.join("src/deep"),
        &["--json", "task", "create", "shared work"],
    ));
    let id = j["task"]["id"].as_str().unwrap().to_string();
    for dir in [
        main.clone(),
        main.join("sub"),
        wt1.clone(),
        wt2.join("src/deep"),
    ] {
        let j = json(sb.got(&dir, &["--json", "task", "show", &id]));
        assert_eq!(j["task"]["title"], "shared work", "from {}", dir.display());
    }

    let j = json(sb.got(&wt2.join("src/deep"), &["--json", "stats"]));
    assert_eq!(
        j["store"]["path"],
        serde_json::json!(main.join(".got")),
        "{j}"
    );
    assert_eq!(j["store"]["found_by"], "main_worktree", "{j}");
    assert_eq!(j["store"]["worktree"], serde_json::json!(wt2), "{j}");
    let j = json(sb.got(&main.join("sub"), &["--json", "stats"]));
    assert_eq!(j["store"]["found_by"], "nearest", "{j}");
    let o = sb.got(&wt1, &["stats"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("from the linked worktree"),
        "{}",
        text(&o)
    );
    // No worktree got a store of its own.
    for wt in [&wt1, &wt2] {
        assert!(!wt.join(".got").exists());
    }
}

#[test]
fn got_init_in_a_linked_worktree_creates_the_store_in_the_main_worktree() {
    let sb = Sandbox::new();
    let (main, [wt1, wt2]) = repo_with_worktrees(&sb);
    let j = json(sb.got(&wt1.join("src/deep"), &["--json", "init"]));
    assert_eq!(j["store"], serde_json::json!(main.join(".got")));
    assert!(main.join(".got/CURRENT").is_file());
    // The linked worktree gets what sync needs in its own checkout (the
    // .gitignore of its .got/), but no store.
    assert!(!wt1.join(".got/CURRENT").exists());
    assert!(wt1.join(".got/.gitignore").is_file());
    // A second init, from the other worktree, finds the store made, keeps it
    // and sets up that worktree (init in a work tree is idempotent).
    let o = sb.got(&wt2, &["init"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("already exists"), "{}", text(&o));
    assert!(!wt2.join(".got/CURRENT").exists());
    assert!(wt2.join(".got/.gitignore").is_file());
}

#[test]
fn store_and_got_dir_still_win_over_the_worktrees_store() {
    let sb = Sandbox::new();
    let (main, [wt1, _]) = repo_with_worktrees(&sb);
    json(sb.got(&main, &["--json", "init"]));
    let other = sb.root.join("elsewhere/.got");
    json(sb.got(
        &sb.root,
        &["--json", "--store", other.to_str().unwrap(), "init"],
    ));

    let j = json(sb.got(
        &wt1,
        &["--json", "--store", other.to_str().unwrap(), "stats"],
    ));
    assert_eq!(j["store"]["path"], serde_json::json!(other), "{j}");
    assert_eq!(j["store"]["found_by"], "flag", "{j}");
    let o = sb
        .got_cmd(&wt1, &["--json", "stats"])
        .env("GOT_DIR", &other)
        .output()
        .unwrap();
    let j = json(o);
    assert_eq!(j["store"]["path"], serde_json::json!(other), "{j}");
    assert_eq!(j["store"]["found_by"], "env", "{j}");
}

/// Agents in two worktrees race for one task: exactly one claim wins, the others
/// are told who holds it, and the task was written once.
#[test]
fn agents_in_two_worktrees_racing_for_one_task_have_one_winner() {
    let sb = Sandbox::new();
    let (main, wts) = repo_with_worktrees(&sb);
    json(sb.got(&main, &["--json", "init"]));
    let j = json(sb.got(&main, &["--json", "task", "create", "contended"]));
    let id = j["task"]["id"].as_str().unwrap().to_string();
    let children: Vec<(String, std::process::Child)> = (0..8)
        .map(|i| {
            let agent = format!("agent-{i}");
            let dir: &Path = &wts[i % 2].join("src/deep");
            let c = sb
                .got_cmd(dir, &["--agent", &agent, "task", "claim", &id])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (agent, c)
        })
        .collect();
    let outs: Vec<(String, std::process::Output)> = children
        .into_iter()
        .map(|(a, c)| (a, c.wait_with_output().unwrap()))
        .collect();
    let winners: Vec<&String> = outs
        .iter()
        .filter(|(_, o)| o.status.code() == Some(0))
        .map(|(a, _)| a)
        .collect();
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    for (agent, o) in &outs {
        if agent != winners[0] {
            assert_eq!(o.status.code(), Some(4), "{agent}: {}", text(o));
            assert!(
                text(o).contains(&format!("claimed by {}", winners[0])),
                "{agent}: {}",
                text(o)
            );
        }
    }
    let j = json(sb.got(&wts[0], &["--json", "task", "show", &id]));
    assert_eq!(j["task"]["assignee"], serde_json::json!(winners[0]), "{j}");
}
