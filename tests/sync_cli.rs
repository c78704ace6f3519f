//! `got init` in a git work tree, the merge driver under real `git merge`,
//! `git rebase` and `git cherry-pick`, and `got sync` between clones of one bare
//! remote — against the machine's `git`, in a sandboxed `HOME`.

use crate::common;

use common::cli::text;
use common::git::Sandbox;
use serde_json::Value;
use std::path::Path;

fn ok(o: std::process::Output) -> String {
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(o: std::process::Output) -> Value {
    serde_json::from_str(&ok(o)).unwrap()
}

fn create(sb: &Sandbox, dir: &Path, title: &str) -> String {
    let j = json(sb.got(dir, &["--json", "task", "create", title]));
    j["task"]["id"].as_str().unwrap().to_string()
}

fn tracked(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(".got/tracked.jsonl")).unwrap_or_default()
}

#[test]
fn init_in_a_work_tree_ignores_the_store_and_registers_the_driver() {
    let sb = Sandbox::new();
    let repo = sb.repo("r");
    let j = json(sb.got(&repo, &["--json", "init"]));
    assert_eq!(j["registered_merge_driver"], true, "{j}");
    assert_eq!(
        sb.git(&repo, &["config", "merge.got.driver"]).trim(),
        "got merge-driver %O %A %B %P"
    );
    assert!(std::fs::read_to_string(repo.join(".gitattributes"))
        .unwrap()
        .lines()
        .any(|l| l == ".got/tracked.jsonl merge=got"));
    create(&sb, &repo, "a task");
    // Only the tracked file and the setup files are ever candidates to commit.
    ok(sb.got(&repo, &["sync", "--no-push"]));
    let status = sb.git(&repo, &["status", "--porcelain", "--untracked-files=all"]);
    assert_eq!(status, "", "nothing of the store is left to commit");
    let files = sb.git(&repo, &["ls-files"]);
    let mut files: Vec<&str> = files.lines().collect();
    files.sort();
    assert_eq!(
        files,
        [
            ".gitattributes",
            ".got/.gitignore",
            ".got/tracked.jsonl",
            "README"
        ]
    );
    // Running init again checks the setup and changes nothing.
    let j = json(sb.got(&repo, &["--json", "init"]));
    assert_eq!(j["existed"], true);
    assert_eq!(j["registered_merge_driver"], false);
    assert_eq!(j["wrote_gitattributes"], false);
}

/// Two branches that both changed the tracked file (one task edited on both,
/// a task created on each), made in two clones, combined by `how` in the
/// first: no conflict ever reaches the user, and the result holds both sides.
fn combine_branches(how: &str) {
    let sb = Sandbox::new();
    let (_remote, clones) = sb.team(2);
    let (a, b) = (&clones[0], &clones[1]);
    let shared = create(&sb, a, "shared");
    ok(sb.got(a, &["sync"]));
    ok(sb.got(b, &["sync"]));
    sb.git(b, &["checkout", "-q", "-b", "feature"]);
    let on_feature = create(&sb, b, "made on feature");
    ok(sb.got(
        b,
        &["task", "update", &shared, "--title", "renamed on feature"],
    ));
    ok(sb.got(b, &["sync", "--no-push"]));
    sb.git(b, &["push", "-q", "origin", "feature"]);
    let on_main = create(&sb, a, "made on main");
    ok(sb.got(a, &["task", "update", &shared, "--priority", "critical"]));
    ok(sb.got(a, &["sync", "--no-push"]));
    sb.git(a, &["fetch", "-q", "origin"]);
    match how {
        "merge" => {
            sb.git(a, &["merge", "-q", "--no-edit", "origin/feature"]);
        }
        "rebase" => {
            sb.git(a, &["checkout", "-q", "-b", "f", "origin/feature"]);
            sb.git(a, &["rebase", "-q", "main"]);
        }
        "cherry-pick" => {
            sb.git(a, &["cherry-pick", "origin/feature"]);
        }
        _ => unreachable!(),
    }
    let merged = tracked(a);
    assert!(!merged.contains("<<<<<<<"), "{merged}");
    assert_eq!(sb.git(a, &["diff", "--name-only", "--diff-filter=U"]), "");
    for id in [&shared, &on_feature, &on_main] {
        assert!(merged.contains(id.as_str()), "{how}: {id} in {merged}");
    }
    // Imported, the merge holds both sides' edits of the shared task.
    ok(sb.got(a, &["sync", "--import-only"]));
    let j = json(sb.got(a, &["--json", "task", "show", &shared]));
    assert_eq!(j["task"]["title"], "renamed on feature", "{how}: {j}");
    assert_eq!(j["task"]["priority"], "critical", "{how}: {j}");
    assert!(json(sb.got(a, &["--json", "task", "show", &on_feature]))["task"].is_object());
}

#[test]
fn git_merge_of_two_branches_never_conflicts_in_the_tracked_file() {
    combine_branches("merge");
}

#[test]
fn git_rebase_never_conflicts_in_the_tracked_file() {
    combine_branches("rebase");
}

#[test]
fn git_cherry_pick_never_conflicts_in_the_tracked_file() {
    combine_branches("cherry-pick");
}

#[test]
fn the_merge_driver_refuses_a_file_it_cannot_read_naming_file_and_line() {
    let sb = Sandbox::new();
    let dir = sb.root.clone();
    let good = "{\"got_tracked\":1}\n";
    std::fs::write(dir.join("base"), good).unwrap();
    std::fs::write(dir.join("ours"), good).unwrap();
    for (bad, what) in [
        (
            format!("{good}<<<<<<< HEAD\n"),
            "line 2: a merge conflict marker",
        ),
        (
            "{\"got_tracked\":9}\n".to_string(),
            "line 1: written in tracked-file format 9",
        ),
        (
            format!("{good}{{\"id\":\"T-1\",\"kind\":\"ta"),
            "line 2: not JSON",
        ),
    ] {
        std::fs::write(dir.join("theirs"), &bad).unwrap();
        let o = sb.got(
            &dir,
            &[
                "merge-driver",
                "base",
                "ours",
                "theirs",
                ".got/tracked.jsonl",
            ],
        );
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(
            err.contains(".got/tracked.jsonl (theirs)") && err.contains(what),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("ours")).unwrap(),
            good,
            "ours untouched"
        );
    }
}

#[test]
fn sync_carries_tasks_between_clones_and_tells_the_loser_of_a_claim() {
    let sb = Sandbox::new();
    let (_remote, clones) = sb.team(2);
    let (a, b) = (&clones[0], &clones[1]);
    let t = create(&sb, a, "made on a");
    let j = json(sb.got(a, &["--json", "sync"]));
    assert_eq!(j["pushed"], true, "{j}");
    assert_eq!(j["outgoing"]["created"], serde_json::json!([t]), "{j}");
    let j = json(sb.got(b, &["--json", "sync"]));
    assert_eq!(j["incoming"]["created"], serde_json::json!([t]), "{j}");
    // Both claim while apart; b first.
    let mut early = sb.got_cmd(b, &["task", "claim", &t, "--agent", "agent-b"]);
    early.env("GOT_NOW_MS", "2000000000000");
    ok(early.output().unwrap());
    let mut late = sb.got_cmd(a, &["task", "claim", &t, "--agent", "agent-a"]);
    late.env("GOT_NOW_MS", "2000000001000");
    ok(late.output().unwrap());
    json(sb.got(b, &["--json", "sync"]));
    let j = json(sb.got(a, &["--json", "sync"]));
    assert_eq!(j["lost_claims"][0]["task"], t.as_str(), "{j}");
    assert_eq!(j["lost_claims"][0]["won_by"], "agent-b", "{j}");
    json(sb.got(b, &["--json", "sync"]));
    for c in [a, b] {
        let j = json(sb.got(c, &["--json", "task", "show", &t]));
        assert_eq!(j["task"]["assignee"], "agent-b", "{j}");
    }
    assert_eq!(tracked(a), tracked(b));
}

#[test]
fn sync_outcomes_have_their_own_exit_codes_and_bad_files_change_nothing() {
    let sb = Sandbox::new();
    let plain = sb.root.join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    ok(sb.got(&plain, &["init"]));
    let o = sb.got(&plain, &["sync"]);
    assert_eq!(o.status.code(), Some(11), "not a work tree: {}", text(&o));
    let repo = sb.repo("r");
    ok(sb.got(&repo, &["init"]));
    let t = create(&sb, &repo, "kept");
    let o = sb.got(&repo, &["sync"]);
    assert_eq!(o.status.code(), Some(12), "no remote: {}", text(&o));
    assert!(text(&o).contains("origin"), "{}", text(&o));
    ok(sb.got(&repo, &["sync", "--no-push"]));
    let good = tracked(&repo);
    let before = ok(sb.got(&repo, &["--json", "export"]));
    for bad in [
        good.replacen('\n', "\n<<<<<<< ours\n", 1),
        good[..good.len() - 7].to_string(),
        good.replacen("{\"got_tracked\":1}", "{\"got_tracked\":2}", 1),
    ] {
        std::fs::write(repo.join(".got/tracked.jsonl"), &bad).unwrap();
        let o = sb.got(&repo, &["sync", "--no-push"]);
        assert_eq!(o.status.code(), Some(5), "{}", text(&o));
        assert!(text(&o).contains("tracked.jsonl: line"), "{}", text(&o));
        assert_eq!(
            ok(sb.got(&repo, &["--json", "export"])),
            before,
            "store unchanged"
        );
        assert_eq!(tracked(&repo), bad, "the file left for the user");
    }
    std::fs::write(repo.join(".got/tracked.jsonl"), &good).unwrap();
    assert!(ok(sb.got(&repo, &["task", "show", &t])).contains("kept"));
}

#[test]
fn hooks_import_what_a_plain_git_pull_brings_and_chain_the_hooks_already_there() {
    let sb = Sandbox::new();
    let (_remote, clones) = sb.team(2);
    let (a, b) = (&clones[0], &clones[1]);
    // Each clone syncs once after init (which commits got's setup files).
    ok(sb.got(a, &["sync"]));
    ok(sb.got(b, &["sync"]));
    // b already has a post-merge hook of its own.
    let hooks = b.join(".git/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(
        hooks.join("post-merge"),
        "#!/bin/sh\necho mine >> \"$(git rev-parse --git-dir)/mine.log\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        hooks.join("post-merge"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let j = json(sb.got(b, &["--json", "hooks", "install"]));
    assert_eq!(j["chained"], serde_json::json!(["post-merge"]), "{j}");
    assert!(hooks.join("post-merge.pre-got").is_file());
    // Again: nothing changes, nothing is chained twice.
    let j = json(sb.got(b, &["--json", "hooks", "install"]));
    assert_eq!(j["installed"], serde_json::json!([]), "{j}");

    let t = create(&sb, a, "made on a");
    ok(sb.got(a, &["sync"]));
    // b only runs git pull: the hook imports the file it brought.
    sb.git(b, &["pull", "-q", "--no-rebase", "--no-edit"]);
    let j = json(sb.got(b, &["--json", "task", "show", &t]));
    assert_eq!(j["task"]["title"], "made on a", "{j}");
    let mine = std::fs::read_to_string(b.join(".git/mine.log")).unwrap();
    assert_eq!(mine, "mine\n", "the hook that was there ran too");
}

#[test]
fn got_import_of_a_tracked_file_merges_it_and_an_old_one_changes_nothing() {
    let sb = Sandbox::new();
    let repo = sb.repo("r");
    ok(sb.got(&repo, &["init"]));
    let t = create(&sb, &repo, "first title");
    ok(sb.got(&repo, &["sync", "--no-push"]));
    let old = sb.root.join("old.jsonl");
    std::fs::copy(repo.join(".got/tracked.jsonl"), &old).unwrap();
    ok(sb.got(&repo, &["task", "update", &t, "--title", "newer title"]));
    let j = json(sb.got(&repo, &["--json", "import", old.to_str().unwrap()]));
    assert_eq!(j["changed"], serde_json::json!([]), "{j}");
    let j = json(sb.got(&repo, &["--json", "task", "show", &t]));
    assert_eq!(
        j["task"]["title"], "newer title",
        "an old file never rewinds"
    );
}

#[test]
fn got_init_in_a_fresh_clone_registers_the_driver_and_imports_the_tracked_file() {
    let sb = Sandbox::new();
    let (remote, clones) = sb.team(1);
    let a = &clones[0];
    let t = create(&sb, a, "carried by git");
    ok(sb.got(a, &["sync"]));
    let fresh = sb.root.join("fresh");
    sb.git(
        &sb.root,
        &[
            "clone",
            "-q",
            remote.to_str().unwrap(),
            fresh.to_str().unwrap(),
        ],
    );
    let j = json(sb.got(&fresh, &["--json", "init"]));
    assert_eq!(j["registered_merge_driver"], true, "{j}");
    assert_eq!(j["imported"]["created"], serde_json::json!([t]), "{j}");
    let j = json(sb.got(&fresh, &["--json", "task", "show", &t]));
    assert_eq!(j["task"]["title"], "carried by git");
}

#[test]
fn sync_drops_tombstones_past_their_retention_and_keeps_younger_ones() {
    let sb = Sandbox::new();
    let repo = sb.repo("r");
    ok(sb.got(&repo, &["init"]));
    let day = 86_400_000i64;
    let t0 = 2_000_000_000_000i64;
    let at = |ms: i64, args: &[&str]| {
        let mut c = sb.got_cmd(&repo, args);
        c.env("GOT_NOW_MS", ms.to_string());
        ok(c.output().unwrap())
    };
    let id = |out: String| out.split_whitespace().next().unwrap().to_string();
    let gone = id(at(t0, &["-q", "task", "create", "deleted early"]));
    let young = id(at(t0, &["-q", "task", "create", "deleted late"]));
    at(t0, &["sync", "--no-push"]);
    // A change's clock is that of the sync that first records it.
    at(t0 + day, &["task", "delete", &gone]);
    at(t0 + day, &["sync", "--no-push"]);
    at(t0 + 80 * day, &["task", "delete", &young]);
    at(t0 + 80 * day, &["sync", "--no-push"]);
    let file = tracked(&repo);
    assert!(
        file.contains(&gone) && file.contains(&young),
        "both tombstones kept: {file}"
    );
    // 91 days after the first deletion, 11 after the second.
    at(t0 + 92 * day, &["sync", "--no-push"]);
    let file = tracked(&repo);
    assert!(!file.contains(&gone), "past the 90 days: dropped\n{file}");
    assert!(file.contains(&young), "younger: kept\n{file}");
    // --retention-days changes the window.
    at(
        t0 + 92 * day,
        &["sync", "--no-push", "--retention-days", "5"],
    );
    assert!(!tracked(&repo).contains(&young));
}

#[test]
fn a_push_refused_because_another_clone_pushed_first_is_merged_and_pushed_again() {
    let sb = Sandbox::new();
    let (_remote, clones) = sb.team(2);
    let (a, b) = (&clones[0], &clones[1]);
    ok(sb.got(a, &["sync"]));
    ok(sb.got(b, &["sync"]));
    let on_a = create(&sb, a, "pushed by a meanwhile");
    ok(sb.got(a, &["sync", "--no-push"]));
    // b's pre-push hook makes a push first, once: between b's pull and its push.
    let hook = b.join(".git/hooks/pre-push");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nmark=\"$(git rev-parse --git-dir)/raced\"\n[ -e \"$mark\" ] && exit 0\ntouch \"$mark\"\ngit -C '{}' push -q origin main\n",
            a.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let on_b = create(&sb, b, "made on b");
    let j = json(sb.got(b, &["--json", "sync"]));
    assert_eq!(j["pushed"], true, "{j}");
    assert!(j["push_retries"].as_u64().unwrap() >= 1, "{j}");
    assert_eq!(j["incoming"]["created"], serde_json::json!([on_a]), "{j}");
    ok(sb.got(a, &["sync"]));
    for c in [a, b] {
        for t in [&on_a, &on_b] {
            assert!(json(sb.got(c, &["--json", "task", "show", t]))["task"].is_object());
        }
    }
    assert_eq!(tracked(a), tracked(b));
}

#[test]
fn sync_commits_gots_files_alone_and_leaves_the_users_staged_and_unstaged_work() {
    let sb = Sandbox::new();
    let (_remote, clones) = sb.team(1);
    let a = &clones[0];
    ok(sb.got(a, &["sync"]));
    std::fs::write(a.join("staged.txt"), "staged, not committed\n").unwrap();
    sb.git(a, &["add", "staged.txt"]);
    std::fs::write(a.join("README"), "edited, not staged\n").unwrap();
    create(&sb, a, "a task");
    ok(sb.got(a, &["sync"]));
    let last = sb.git(a, &["show", "--name-only", "--format=", "HEAD"]);
    assert_eq!(
        last.trim(),
        ".got/tracked.jsonl",
        "the sync's commit: {last}"
    );
    let status = sb.git(a, &["status", "--porcelain"]);
    assert!(status.lines().any(|l| l == "A  staged.txt"), "{status}");
    assert!(status.lines().any(|l| l == " M README"), "{status}");
}

#[test]
fn sync_from_a_linked_worktree_commits_that_worktrees_file_from_the_shared_store() {
    let sb = Sandbox::new();
    let (_remote, clones) = sb.team(1);
    let main = &clones[0];
    ok(sb.got(main, &["sync"]));
    let wt = sb.root.join("wt1");
    sb.git(
        main,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "feature",
            wt.to_str().unwrap(),
        ],
    );
    let t = create(&sb, &wt, "made in the worktree");
    let j = json(sb.got(&wt, &["--json", "sync", "--no-push"]));
    assert_eq!(j["branch"], "feature", "{j}");
    assert!(tracked(&wt).contains(&t), "the worktree's file carries it");
    assert!(!wt.join(".got/CURRENT").exists(), "no store of its own");
    let log = sb.git(&wt, &["log", "-1", "--name-only", "--format=%s"]);
    assert!(log.contains(".got/tracked.jsonl"), "{log}");
    // The main worktree's branch is untouched until it syncs.
    assert!(!tracked(main).contains(&t));
}

#[test]
fn a_merge_conflict_in_another_file_stops_sync_with_the_store_unchanged() {
    let sb = Sandbox::new();
    let (_remote, clones) = sb.team(2);
    let (a, b) = (&clones[0], &clones[1]);
    ok(sb.got(a, &["sync"]));
    ok(sb.got(b, &["sync"]));
    // b's sync may have pushed a merge of its first commit with a's (when the
    // two were not made within one second, their hashes differ): a takes it.
    ok(sb.got(a, &["sync"]));
    for (c, text) in [(a, "a's line\n"), (b, "b's line\n")] {
        std::fs::write(c.join("README"), text).unwrap();
        sb.git(c, &["commit", "-q", "-am", "edit README"]);
    }
    sb.git(a, &["push", "-q", "origin", "main"]);
    create(&sb, b, "made on b");
    let o = sb.got(b, &["--json", "sync"]);
    assert_eq!(o.status.code(), Some(14), "{}", text(&o));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["error"]["code"], "merge_conflict", "{j}");
    assert!(
        j["error"]["message"].as_str().unwrap().contains("README"),
        "{j}"
    );
    // Again, with the merge unfinished and something new to commit: it stops
    // before committing anything.
    create(&sb, b, "made during the merge");
    let before = ok(sb.got(b, &["--json", "export"]));
    let head = sb.git(b, &["rev-parse", "HEAD"]);
    let o = sb.got(b, &["sync"]);
    assert_eq!(o.status.code(), Some(14), "{}", text(&o));
    assert_eq!(
        ok(sb.got(b, &["--json", "export"])),
        before,
        "the store unchanged"
    );
    assert_eq!(
        sb.git(b, &["rev-parse", "HEAD"]),
        head,
        "and nothing committed"
    );
    // Resolved and committed, the next sync goes through.
    std::fs::write(b.join("README"), "both lines\n").unwrap();
    sb.git(b, &["commit", "-q", "-am", "merge"]);
    ok(sb.got(b, &["sync"]));
    ok(sb.got(a, &["sync"]));
    assert_eq!(tracked(a), tracked(b));
}

#[test]
fn the_files_sync_writes_are_readable_by_all_like_the_rest_of_the_work_tree() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    let repo = sb.repo("r");
    ok(sb.got(&repo, &["init"]));
    create(&sb, &repo, "a task");
    ok(sb.got(&repo, &["sync", "--no-push"]));
    for f in [".gitattributes", ".got/.gitignore", ".got/tracked.jsonl"] {
        let mode = std::fs::metadata(repo.join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o644, "{f}: {mode:o}");
    }
}
