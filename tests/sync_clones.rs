//! Three clones of one bare remote, random operations on each (creates, edits of
//! disjoint and of the same fields, labels, notes, dependencies, deletions,
//! claims, completions), `got sync` in random orders; then two quiet rounds. All
//! three must write identical tracked files, no edit to a field only one clone
//! touched may be lost, every created task must be there unless deleted, every
//! deleted one gone, no conflict marker anywhere, `got validate` clean. And
//! `got sync` SIGKILLed at each of its steps, then run again: converged, nothing
//! lost. Real `git` in a sandboxed `HOME`; seeds printed (GOT_SEED replays).

use crate::common;

use common::cli::text;
use common::git::Sandbox;
use common::mutate::Rng;
use common::seed::seed;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn long() -> bool {
    std::env::var_os("GOT_LONG_TESTS").is_some()
}

fn ok(o: std::process::Output, ctx: &str) -> String {
    assert_eq!(o.status.code(), Some(0), "{ctx}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What the test knows it did.
#[derive(Default)]
struct Model {
    /// Task id → its creation index (dependencies only point to older tasks, so
    /// no cycle can form).
    tasks: BTreeMap<String, usize>,
    /// The same ids in creation order (ids are random: picking by position in
    /// this list keeps a seed's run the same).
    order: Vec<String>,
    /// Each clone's wall clock (Unix ms, `GOT_NOW_MS`): they disagree, and
    /// move on a little with every command.
    clocks: Vec<i64>,
    deleted: BTreeSet<String>,
    /// (task, field) → (clones that wrote it, the last value written).
    writes: BTreeMap<(String, String), (BTreeSet<usize>, String)>,
    /// Operations that took effect, by kind.
    done: BTreeMap<&'static str, usize>,
}

impl Model {
    fn done(&mut self, what: &'static str) {
        *self.done.entry(what).or_default() += 1;
    }

    fn wrote(&mut self, task: &str, field: &str, clone: usize, value: &str) {
        let e = self
            .writes
            .entry((task.to_string(), field.to_string()))
            .or_default();
        e.0.insert(clone);
        e.1 = value.to_string();
        let kind = field.split(' ').next().unwrap_or(field);
        let kind: &'static str = match kind {
            "title" => "title",
            "priority" => "priority",
            "label" => "label",
            "note" => "note",
            _ => "status",
        };
        self.done(kind);
    }
}

fn got_json(sb: &Sandbox, dir: &Path, args: &[&str]) -> Option<Value> {
    got_json_at(sb, dir, None, args)
}

/// A command at clone time `now` (`GOT_NOW_MS`), or the real clock.
fn got_json_at(sb: &Sandbox, dir: &Path, now: Option<i64>, args: &[&str]) -> Option<Value> {
    let mut all = vec!["--json"];
    all.extend(args);
    let mut cmd = sb.got_cmd(dir, &all);
    if let Some(t) = now {
        cmd.env("GOT_NOW_MS", t.to_string());
    }
    let o = cmd.output().unwrap();
    if o.status.code() != Some(0) {
        return None;
    }
    serde_json::from_slice(&o.stdout).ok()
}

fn random_op(sb: &Sandbox, clones: &[PathBuf], model: &mut Model, rng: &mut Rng, ctx: &str) {
    let c = rng.below(clones.len());
    let dir = &clones[c];
    let agent = format!("agent-{c}");
    model.clocks[c] += 1 + rng.below(20) as i64;
    let now = Some(model.clocks[c]);
    let got_json = |sb: &Sandbox, dir: &Path, args: &[&str]| got_json_at(sb, dir, now, args);
    let known: Vec<String> = model.order.clone();
    if known.is_empty() || rng.one_in(5) {
        let title = format!("task {} by {c}", model.tasks.len());
        let j = got_json(sb, dir, &["task", "create", &title]).expect("create");
        let id = j["task"]["id"].as_str().unwrap().to_string();
        model.tasks.insert(id.clone(), model.tasks.len());
        model.order.push(id.clone());
        model.wrote(&id, "title", c, &title);
        return;
    }
    let id = rng.pick(&known).clone();
    // A task this clone has not seen yet (or deleted) makes the op fail: fine.
    match rng.below(9) {
        0 | 1 => {
            let title = format!("title {} from {c}", rng.below(1000));
            if got_json(sb, dir, &["task", "update", &id, "--title", &title]).is_some() {
                model.wrote(&id, "title", c, &title);
            }
        }
        2 => {
            let p = *rng.pick(&["critical", "high", "medium", "low"]);
            if got_json(sb, dir, &["task", "update", &id, "--priority", p]).is_some() {
                model.wrote(&id, "priority", c, p);
            }
        }
        3 => {
            let l = *rng.pick(&["ui", "db", "docs"]);
            let (flag, v) = if rng.one_in(3) {
                ("--remove-label", "absent")
            } else {
                ("--add-label", "present")
            };
            if got_json(sb, dir, &["task", "update", &id, flag, l]).is_some() {
                model.wrote(&id, &format!("label {l}"), c, v);
            }
        }
        4 => {
            let text = format!("note {} from {c}", rng.below(1000));
            if got_json(sb, dir, &["task", "note", &id, &text]).is_some() {
                // Notes are never lost: each one must be there at the end.
                model.wrote(&id, &format!("note {text}"), c, "present");
            }
        }
        5 => {
            let other = rng.pick(&known).clone();
            if model.tasks[&other] < model.tasks[&id]
                && got_json(sb, dir, &["task", "depends", &id, "--on", &other]).is_some()
            {
                model.done("depend");
            }
        }
        6 => {
            if rng.one_in(3) && got_json(sb, dir, &["task", "delete", &id, "--force"]).is_some() {
                model.deleted.insert(id);
                model.done("delete");
            }
        }
        7 => {
            if got_json(sb, dir, &["--agent", &agent, "task", "claim", &id]).is_some() {
                model.done("claim");
            }
        }
        _ => {
            if got_json(sb, dir, &["--agent", &agent, "task", "start", &id]).is_some()
                && got_json(sb, dir, &["--agent", &agent, "task", "complete", &id]).is_some()
            {
                model.wrote(&id, "status", c, "completed");
            }
        }
    }
    let _ = ctx;
}

/// A new task made in `dir`; its id.
fn create(sb: &Sandbox, dir: &Path, title: &str) -> String {
    got_json(sb, dir, &["task", "create", title]).expect("create")["task"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn sync(sb: &Sandbox, dir: &Path, ctx: &str) {
    ok(
        sb.got(dir, &["sync"]),
        &format!("{ctx}: sync in {}", dir.display()),
    );
}

/// `got sync` at clone `c`'s time.
fn sync_at(sb: &Sandbox, clones: &[PathBuf], model: &mut Model, c: usize, ctx: &str) {
    model.clocks[c] += 1;
    let mut cmd = sb.got_cmd(&clones[c], &["sync"]);
    cmd.env("GOT_NOW_MS", model.clocks[c].to_string());
    ok(cmd.output().unwrap(), &format!("{ctx}: sync in clone {c}"));
}

fn check_converged(sb: &Sandbox, clones: &[PathBuf], model: &Model, ctx: &str) {
    let files: Vec<String> = clones
        .iter()
        .map(|c| std::fs::read_to_string(c.join(".got/tracked.jsonl")).unwrap())
        .collect();
    for f in &files[1..] {
        assert_eq!(f, &files[0], "{ctx}: the clones' tracked files differ");
    }
    for c in clones {
        let conflicted = sb.git(c, &["diff", "--name-only", "--diff-filter=U"]);
        assert_eq!(conflicted, "", "{ctx}");
        let grep = std::process::Command::new("git")
            .current_dir(c)
            .args(["grep", "-n", "-e", "^<<<<<<<", "-e", "^>>>>>>>"])
            .output()
            .unwrap();
        assert!(
            grep.stdout.is_empty(),
            "{ctx}: conflict markers: {}",
            text(&grep)
        );
        let o = sb.got(c, &["validate"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{ctx}: validate in {}: {}\ntracked file:\n{}",
            c.display(),
            text(&o),
            files[0]
        );
    }
    let dir = &clones[0];
    for id in model.tasks.keys() {
        let shown = got_json(sb, dir, &["task", "show", id]);
        if model.deleted.contains(id) {
            assert!(shown.is_none(), "{ctx}: {id} was deleted but is back");
            continue;
        }
        let j = shown
            .unwrap_or_else(|| panic!("{ctx}: {id} was created and never deleted, but is gone"));
        let t = &j["task"];
        for ((task, field), (writers, last)) in &model.writes {
            if task != id || writers.len() != 1 {
                continue;
            }
            let what = format!("{ctx}: {id} {field} written only by clone {writers:?}");
            if let Some(l) = field.strip_prefix("label ") {
                let has = t["labels"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == l));
                assert_eq!(has, last == "present", "{what}: {t}");
            } else if let Some(n) = field.strip_prefix("note ") {
                let has = t["notes"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x["text"] == n));
                assert!(has, "{what}: {t}");
            } else {
                assert_eq!(t[field.as_str()], last.as_str(), "{what}: {t}");
            }
        }
    }
}

#[test]
fn three_clones_converge_whatever_they_do_and_in_whatever_order_they_sync() {
    let base = seed("three clones");
    let mut done: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut syncs = 0;
    let (seeds, ops) = if long() { (200, 40) } else { (3, 40) };
    for case in 0..seeds {
        let s = base.wrapping_add(case);
        let ctx = format!("seed {s} (GOT_SEED={base}, case {case})");
        let mut rng = Rng::new(s);
        let sb = Sandbox::new();
        let (_remote, clones) = sb.team(3);
        let mut model = Model {
            clocks: (0..clones.len())
                .map(|_| 1_900_000_000_000 + rng.below(50) as i64)
                .collect(),
            ..Model::default()
        };
        for _ in 0..ops {
            if rng.one_in(4) {
                let c = rng.below(clones.len());
                sync_at(&sb, &clones, &mut model, c, &ctx);
                syncs += 1;
            } else {
                random_op(&sb, &clones, &mut model, &mut rng, &ctx);
            }
        }
        // Two quiet rounds: everything reaches the remote, then every clone.
        for _ in 0..2 {
            for c in 0..clones.len() {
                sync_at(&sb, &clones, &mut model, c, &ctx);
            }
        }
        check_converged(&sb, &clones, &model, &ctx);
        eprintln!(
            "{ctx}: {} tasks, {} deleted, {} field writes, converged",
            model.tasks.len(),
            model.deleted.len(),
            model.writes.len()
        );
        for (k, n) in &model.done {
            *done.entry(k).or_default() += n;
        }
    }
    eprintln!(
        "{seeds} seeds: {syncs} syncs amid the operations; operations that took effect: {done:?}"
    );
    assert!(
        syncs > 0 && done.len() >= 3,
        "the workload did little: {done:?}"
    );
}

#[test]
fn two_clones_that_make_a_cycle_together_hear_of_it_from_sync_and_validate() {
    let sb = Sandbox::new();
    let (_remote, clones) = sb.team(2);
    let (a, b) = (&clones[0], &clones[1]);
    let (x, y) = (create(&sb, a, "x"), create(&sb, a, "y"));
    sync(&sb, a, "a");
    sync(&sb, b, "b");
    ok(sb.got(a, &["task", "depends", &x, "--on", &y]), "x on y");
    ok(sb.got(b, &["task", "depends", &y, "--on", &x]), "y on x");
    sync(&sb, a, "a");
    let j = got_json(&sb, b, &["sync"]).expect("sync reports, and succeeds");
    let cycles = j["cycles"].as_array().unwrap();
    assert_eq!(cycles.len(), 1, "{j}");
    let o = sb.got(b, &["validate"]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("cycle"), "{}", text(&o));
    // Kept, not silently dropped: both edges are there.
    for (t, on) in [(&x, &y), (&y, &x)] {
        let j = got_json(&sb, b, &["task", "show", t]).unwrap();
        assert!(
            j.to_string().contains(on.as_str()),
            "{t} depends on {on}: {j}"
        );
    }
}

const STEPS: [&str; 10] = [
    "start",
    "local-imported",
    "local-exported",
    "local-committed",
    "pull",
    "merged-imported",
    "merged-exported",
    "merged-committed",
    "push",
    "pushed",
];

#[test]
fn sync_killed_at_each_step_finishes_on_the_next_run_and_loses_nothing() {
    for step in STEPS {
        let ctx = format!("killed at {step}");
        let sb = Sandbox::new();
        let (_remote, clones) = sb.team(2);
        let (a, b) = (&clones[0], &clones[1]);
        let on_b = create(&sb, b, "made on b");
        sync(&sb, b, &ctx);
        let on_a = create(&sb, a, "made on a");
        let mut kill = sb.got_cmd(a, &["sync"]);
        kill.env("GOT_FAILPOINT", format!("sync:{step}"));
        let o = kill.output().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(o.status.signal(), Some(9), "{ctx}: {}", text(&o));
        sync(&sb, a, &ctx);
        sync(&sb, b, &ctx);
        sync(&sb, a, &ctx);
        let fa = std::fs::read_to_string(a.join(".got/tracked.jsonl")).unwrap();
        let fb = std::fs::read_to_string(b.join(".got/tracked.jsonl")).unwrap();
        assert_eq!(fa, fb, "{ctx}");
        for c in [a, b] {
            for id in [&on_a, &on_b] {
                assert!(
                    got_json(&sb, c, &["task", "show", id]).is_some(),
                    "{ctx}: {id} in {}",
                    c.display()
                );
            }
        }
    }
}
