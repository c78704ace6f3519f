//! The task commands end to end: the built `got` binary run in temporary
//! directories, as agents and scripts use it.

use serde_json::{json, Value as Json};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Exit code, stdout and stderr, for assertion messages.
fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn code(o: &Output) -> i32 {
    o.status
        .code()
        .unwrap_or_else(|| panic!("killed: {}", text(o)))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn parse(o: &Output) -> Json {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", text(o)))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `T-` and 10 characters of the id alphabet.
fn is_task_id(s: &str) -> bool {
    s.len() == 12
        && s.starts_with("T-")
        && s[2..]
            .bytes()
            .all(|b| b"0123456789abcdefghjkmnpqrstvwxyz".contains(&b))
}

/// The ids of a `{"tasks": [...]}` object.
fn ids(j: &Json) -> Vec<String> {
    j["tasks"]
        .as_array()
        .unwrap_or_else(|| panic!("no tasks array: {j}"))
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

/// A store in a temporary directory, found by walking up from `root` (neither
/// `GOT_DIR` nor `GOT_AGENT` is passed on to the binary unless a test sets it).
struct Got {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Got {
    fn new() -> Got {
        let g = Got::bare();
        g.ok(&["init"]);
        g
    }

    /// An empty directory, no store.
    fn bare() -> Got {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        Got { _dir: dir, root }
    }

    fn run_env<S: AsRef<OsStr>>(&self, env: &[(&str, &OsStr)], args: &[S]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_got"));
        c.args(args)
            .current_dir(&self.root)
            .env_remove("GOT_DIR")
            .env_remove("GOT_AGENT");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("run got")
    }

    fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        self.run_env::<S>(&[], args)
    }

    /// Runs, requires exit 0 and no complaint; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(code(&o), 0, "got {args:?}: {}", text(&o));
        assert!(stderr(&o).is_empty(), "got {args:?}: {}", text(&o));
        stdout(&o)
    }

    /// `got --json ARGS`, exit 0, one JSON document.
    fn json(&self, args: &[&str]) -> Json {
        self.json_env(&[], args)
    }

    /// `got --json ARGS` with environment variables set.
    fn json_env(&self, env: &[(&str, &str)], args: &[&str]) -> Json {
        let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, OsStr::new(v))).collect();
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let o = self.run_env(&env, &a);
        assert_eq!(code(&o), 0, "got {a:?}: {}", text(&o));
        parse(&o)
    }

    /// A task command's JSON object: it carries `schema_version` 1.
    fn tj(&self, args: &[&str]) -> Json {
        self.tj_env(&[], args)
    }

    fn tj_env(&self, env: &[(&str, &str)], args: &[&str]) -> Json {
        let j = self.json_env(env, args);
        assert_eq!(j["schema_version"], 1, "got {args:?}: {j}");
        j
    }

    /// `got -q ARGS` printing exactly one task id, which it returns.
    fn id(&self, args: &[&str]) -> String {
        self.id_env(&[], args)
    }

    fn id_env(&self, env: &[(&str, &str)], args: &[&str]) -> String {
        let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, OsStr::new(v))).collect();
        let mut a = vec!["-q"];
        a.extend_from_slice(args);
        let o = self.run_env(&env, &a);
        assert_eq!(code(&o), 0, "got {a:?}: {}", text(&o));
        let out = stdout(&o);
        assert!(
            out.ends_with('\n') && is_task_id(out.trim_end()) && out.lines().count() == 1,
            "--quiet prints one id: {out:?}"
        );
        out.trim_end().to_string()
    }

    /// `got -q ARGS`: the ids printed, one a line (nothing else).
    fn quiet_ids(&self, args: &[&str]) -> Vec<String> {
        let mut a = vec!["-q"];
        a.extend_from_slice(args);
        let ids = lines(&self.ok(&a));
        assert!(ids.iter().all(|l| is_task_id(l)), "{a:?}: {ids:?}");
        ids
    }

    /// A task as `task show --json` reports it.
    fn task(&self, id: &str) -> Json {
        self.tj(&["task", "show", id])["task"].clone()
    }

    /// Every live entity with its version and properties, and the log position
    /// and edge counts: equal snapshots mean nothing was committed in between.
    fn snapshot(&self) -> Json {
        let entities = self.json(&["entity", "list"]);
        let st = self.json(&["stats"]);
        json!({
            "entities": entities,
            "last_lsn": st["last_lsn"],
            "versions": st["history"]["versions"],
            "edges": st["edges_by_kind"],
        })
    }
}

/// Fails with the command's output if `o` did not exit with `want`.
#[track_caller]
fn expect_exit(o: &Output, want: i32, what: &str) {
    assert_eq!(code(o), want, "{what}: {}", text(o));
}

#[test]
fn every_task_command_works_end_to_end_and_records_the_agent() {
    let g = Got::new();

    // --- create: every field, the agent from --agent.
    let j = g.tj(&[
        "--agent",
        "alice",
        "task",
        "create",
        "Design the WAL",
        "--priority",
        "critical",
        "--category",
        "arch",
        "--description",
        "frames and checksums",
        "--estimate",
        "3.5",
        "--label",
        "wal",
        "--label",
        "core",
    ]);
    let t = &j["task"];
    let a = t["id"].as_str().unwrap().to_string();
    assert!(is_task_id(&a), "{a}");
    assert_eq!(t["title"], "Design the WAL");
    assert_eq!(t["status"], "pending");
    assert_eq!(t["priority"], "critical");
    assert_eq!(t["category"], "arch");
    assert_eq!(t["description"], "frames and checksums");
    assert_eq!(t["estimate_hours"], 3.5);
    assert_eq!(t["labels"], json!(["core", "wal"]));
    assert_eq!(t["created_by"], "alice");
    assert_eq!(t["version"], 1);
    // The agent from GOT_AGENT when there is no --agent. --depends-on takes an
    // abbreviated id (4 characters suffice: A is the only task yet).
    let bob = [("GOT_AGENT", "bob")];
    let b = g.id_env(
        &bob,
        &[
            "task",
            "create",
            "Write the WAL",
            "--priority",
            "high",
            "--category",
            "feature",
            "--label",
            "wal",
            "--depends-on",
            &a[..4],
        ],
    );
    // --agent wins over GOT_AGENT.
    let c = g.id_env(
        &bob,
        &[
            "--agent",
            "carol",
            "task",
            "create",
            "Ship it",
            "--depends-on",
            &b,
        ],
    );
    // --blocks gives C a dependency on the new task; --parent an edge from A.
    let e = g.id(&[
        "task",
        "create",
        "Benchmark",
        "--priority",
        "low",
        "--category",
        "performance",
        "--blocks",
        &c,
        "--parent",
        &a,
    ]);
    let f = g.id(&[
        "task",
        "create",
        "Docs",
        "--priority",
        "low",
        "--category",
        "docs",
    ]);
    assert_eq!(g.task(&b)["created_by"], "bob");
    assert_eq!(g.task(&c)["created_by"], "carol");
    assert_eq!(g.task(&b)["priority"], "high");
    let edges = g.json(&["edge", "list", &e]);
    let edges: Vec<(String, String, String)> = edges
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let s = |k: &str| x[k].as_str().unwrap().to_string();
            (s("from"), s("kind"), s("to"))
        })
        .collect();
    assert_eq!(
        sorted(edges),
        sorted(vec![
            (c.clone(), "depends_on".into(), e.clone()),
            (a.clone(), "parent_of".into(), e.clone()),
        ])
    );

    // --- show: JSON and text.
    let s = g.tj(&["task", "show", &b]);
    assert_eq!(
        s["depends_on"],
        json!([{"id": a, "status": "pending", "title": "Design the WAL"}])
    );
    assert_eq!(
        s["dependents"],
        json!([{"id": c, "status": "pending", "title": "Ship it"}])
    );
    assert_eq!(s["history_count"], 1);
    assert_eq!(s["task"]["id"], b.as_str());
    let shown = g.ok(&["task", "show", &c]);
    assert!(shown.starts_with(&format!("{c}  Ship it\n")), "{shown}");
    assert!(
        shown.contains(&format!("depends on: {b} (pending) Write the WAL")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("depends on: {e} (pending) Benchmark")),
        "{shown}"
    );
    assert!(shown.contains("created by: carol"), "{shown}");
    assert_eq!(g.quiet_ids(&["task", "show", &c]), [c.as_str()]);

    // --- list: filters, in id order.
    let all = ids(&g.tj(&["task", "list"]));
    assert_eq!(
        all,
        sorted(vec![a.clone(), b.clone(), c.clone(), e.clone(), f.clone()])
    );
    assert_eq!(g.quiet_ids(&["task", "list"]), all);
    let list = |args: &[&str]| {
        let mut v = vec!["task", "list"];
        v.extend_from_slice(args);
        ids(&g.tj(&v))
    };
    assert_eq!(list(&["--status", "pending"]), all);
    assert_eq!(list(&["--status", "completed"]), Vec::<String>::new());
    assert_eq!(
        list(&["--priority", "low"]),
        sorted(vec![e.clone(), f.clone()])
    );
    assert_eq!(
        list(&["--priority", "critical", "--priority", "high"]),
        sorted(vec![a.clone(), b.clone()])
    );
    assert_eq!(list(&["--category", "arch"]), [a.as_str()]);
    assert_eq!(
        list(&["--label", "wal"]),
        sorted(vec![a.clone(), b.clone()])
    );
    assert_eq!(list(&["--label", "wal", "--label", "core"]), [a.as_str()]);
    assert_eq!(list(&["--limit", "2"]), all[..2]);
    // Pages joined are the whole list.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut args = vec!["--limit", "2"];
        if let Some(x) = &after {
            args.extend(["--after", x.as_str()]);
        }
        let page = list(&args);
        assert!(page.len() <= 2);
        if page.is_empty() {
            break;
        }
        after = page.last().cloned();
        paged.extend(page);
    }
    assert_eq!(paged, all);
    // The ready queue: by priority, then age.
    let queue = vec![a.clone(), e.clone(), f.clone()];
    assert_eq!(list(&["--ready"]), queue);
    assert_eq!(ids(&g.tj(&["ready"])), queue);
    assert_eq!(g.quiet_ids(&["ready"]), queue);
    // Filters apply to the whole queue, before the limit.
    assert_eq!(
        list(&["--ready", "--priority", "low", "--limit", "1"]),
        [e.as_str()]
    );
    assert_eq!(list(&["--ready", "--category", "docs"]), [f.as_str()]);
    // --after pages the queue in queue order.
    assert_eq!(list(&["--ready", "--limit", "1"]), [a.as_str()]);
    assert_eq!(
        list(&["--ready", "--limit", "1", "--after", &a]),
        [e.as_str()]
    );
    assert_eq!(list(&["--ready", "--after", &e]), [f.as_str()]);
    // Both wait on dependencies (none is blocked by hand): id order.
    assert_eq!(list(&["--blocked"]), sorted(vec![b.clone(), c.clone()]));

    // --- next, claim, release, next --claim.
    assert_eq!(g.tj(&["task", "next"])["task"]["id"], a.as_str());
    assert_eq!(g.quiet_ids(&["task", "next"]), [a.as_str()]);
    let before = now_ms();
    // The shortest prefix of A (4 characters at least) that no other id has.
    let a_short = (4..=12)
        .map(|n| &a[..n])
        .find(|p| all.iter().filter(|i| i.starts_with(p)).count() == 1)
        .unwrap();
    let t = g.tj(&["--agent", "alice", "task", "claim", a_short])["task"].clone();
    assert_eq!(t["id"], a.as_str());
    assert_eq!(t["status"], "in_progress");
    assert_eq!(t["assignee"], "alice");
    let lease = t["lease_expires_at"].as_i64().expect("a lease");
    // The default lease is an hour.
    assert!(
        (before + 3_600_000..=now_ms() + 3_600_000).contains(&lease),
        "{t}"
    );
    assert!(t["started_at"].as_i64().is_some());
    assert_eq!(list(&["--assignee", "alice"]), [a.as_str()]);
    assert_eq!(list(&["--ready"]), [e.clone(), f.clone()]);
    let t = g.tj(&["--agent", "alice", "task", "release", &a])["task"].clone();
    assert_eq!(
        (&t["status"], &t["assignee"]),
        (&json!("pending"), &json!(null))
    );
    // next --claim takes the head of the queue, for GOT_AGENT.
    let t = g.tj_env(&[("GOT_AGENT", "dave")], &["task", "next", "--claim"])["task"].clone();
    assert_eq!(t["id"], a.as_str());
    assert_eq!(t["assignee"], "dave");
    assert_eq!(list(&["--assignee", "dave"]), [a.as_str()]);
    g.tj(&["--agent", "dave", "task", "release", &a]);

    // --- start, note, complete.
    let t = g.tj(&["--agent", "alice", "task", "start", &a])["task"].clone();
    assert_eq!(t["status"], "in_progress");
    assert_eq!(t["assignee"], "alice");
    assert_eq!(t["lease_expires_at"], json!(null));
    let t = g.tj(&["--agent", "alice", "task", "note", &a, "halfway there"])["task"].clone();
    assert_eq!(t["notes"][0]["author"], "alice");
    assert_eq!(t["notes"][0]["text"], "halfway there");
    assert!(t["notes"][0]["at"].as_i64().is_some());
    let t = g.tj(&[
        "--agent",
        "alice",
        "task",
        "complete",
        &a,
        "--retrospective",
        "went fine",
    ])["task"]
        .clone();
    assert_eq!(t["status"], "completed");
    assert_eq!(t["completed_by"], "alice");
    assert_eq!(t["retrospective"], "went fine");
    assert!(t["completed_at"].as_i64().is_some());
    let s = g.tj(&["task", "show", &a]);
    // create, claim, release, claim, release, start, note, complete.
    assert_eq!(s["task"]["version"], 8);
    assert_eq!(s["history_count"], 8);
    assert_eq!(s["task"]["notes"].as_array().unwrap().len(), 1);
    let shown = g.ok(&["task", "show", &a]);
    assert!(shown.contains("alice: halfway there"), "{shown}");
    assert!(shown.contains("retrospective: went fine"), "{shown}");
    // B's dependency is done: B is ready, first (high before low).
    assert_eq!(ids(&g.tj(&["ready"])), [b.clone(), e.clone(), f.clone()]);
    assert_eq!(
        g.tj(&["task", "show", &b])["depends_on"][0]["status"],
        "completed"
    );

    // --- block and `got blocked`: by hand vs waiting on dependencies.
    let t = g.tj(&["task", "block", &b, "--reason", "waiting on review"])["task"].clone();
    assert_eq!(t["status"], "blocked");
    assert_eq!(t["blocked_reason"], "waiting on review");
    let bl = g.tj(&["blocked"]);
    let by_hand: Vec<&str> = bl["blocked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(by_hand, [b.as_str()]);
    let waiting = bl["waiting"].as_array().unwrap();
    assert_eq!(waiting.len(), 1, "{bl}");
    assert_eq!(waiting[0]["task"]["id"], c.as_str());
    let on: Vec<String> = waiting[0]["waits_on"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sorted(on), sorted(vec![b.clone(), e.clone()]));
    let txt = g.ok(&["blocked"]);
    let (hand, wait) = txt
        .split_once("Waiting on dependencies:")
        .unwrap_or_else(|| panic!("{txt}"));
    assert!(hand.starts_with("Blocked by hand:"), "{txt}");
    let listed = |section: &str, id: &str| {
        section
            .lines()
            .find(|l| l.trim_start().starts_with(id))
            .map(str::to_string)
    };
    let line = listed(hand, &b).unwrap_or_else(|| panic!("{txt}"));
    assert!(line.contains("waiting on review"), "{txt}");
    assert!(listed(hand, &c).is_none(), "{txt}");
    let line = listed(wait, &c).unwrap_or_else(|| panic!("{txt}"));
    assert!(line.contains("waits on") && line.contains(&e), "{txt}");
    assert!(listed(wait, &b).is_none(), "{txt}");
    assert_eq!(g.quiet_ids(&["blocked"]), [b.clone(), c.clone()]);
    assert_eq!(list(&["--blocked"]), [b.clone(), c.clone()]);
    assert_eq!(list(&["--blocked", "--status", "blocked"]), [b.as_str()]);
    let t = g.tj(&["task", "unblock", &b])["task"].clone();
    assert_eq!(t["status"], "pending");
    assert!(t.get("blocked_reason").is_none(), "{t}");

    // --- update, with and without --if-version.
    let t = g.tj(&[
        "task",
        "update",
        &b,
        "--title",
        "Write the WAL, v2",
        "--add-label",
        "perf",
        "--remove-label",
        "wal",
    ])["task"]
        .clone();
    assert_eq!(t["title"], "Write the WAL, v2");
    assert_eq!(t["labels"], json!(["perf"]));
    let v = t["version"].as_u64().unwrap();
    let vs = v.to_string();
    let t = g.tj(&[
        "task",
        "update",
        &b,
        "--if-version",
        &vs,
        "--priority",
        "critical",
    ])["task"]
        .clone();
    assert_eq!(
        (t["version"].as_u64(), &t["priority"]),
        (Some(v + 1), &json!("critical"))
    );
    let o = g.run(&[
        "--json",
        "task",
        "update",
        &b,
        "--if-version",
        &vs,
        "--title",
        "nope",
    ]);
    expect_exit(&o, 4, "a stale --if-version");
    assert_eq!(parse(&o)["error"]["code"], "conflict");
    let t = g.task(&b);
    assert_eq!(
        (t["version"].as_u64(), &t["title"]),
        (Some(v + 1), &json!("Write the WAL, v2"))
    );
    assert_eq!(
        g.quiet_ids(&["task", "update", &b, "--estimate", "2"]),
        [b.as_str()]
    );

    // --- depends: add, refuse a cycle (naming it), remove.
    let o = g.run(&["task", "depends", &a, "--on", &c]);
    expect_exit(&o, 5, "a dependency closing a cycle");
    let err = stderr(&o);
    assert!(err.contains("cycle"), "{err}");
    for id in [&a, &b, &c] {
        assert!(err.contains(id.as_str()), "the cycle names {id}: {err}");
    }
    let d = g.tj(&["task", "depends", &f, "--on", &e]);
    assert_eq!(
        (&d["from"], &d["kind"], &d["to"]),
        (&json!(f), &json!("depends_on"), &json!(e))
    );
    assert_eq!(list(&["--ready"]), [b.clone(), e.clone()]);
    let r = g.tj(&["task", "depends", &f, "--on", &e, "--remove"]);
    assert_eq!(r["removed"], true);
    let r = g.tj(&["task", "depends", &f, "--on", &e, "--remove"]);
    assert_eq!(r["removed"], false);
    assert_eq!(list(&["--ready"]), [b.clone(), e.clone(), f.clone()]);

    // --- delete: refused while depended on; --force takes the edges too.
    let o = g.run(&["task", "delete", &e]);
    expect_exit(&o, 4, "deleting a task others depend on");
    assert!(stderr(&o).contains(&c), "names the dependent: {}", text(&o));
    assert_eq!(g.task(&e)["id"], e.as_str());
    let t = g.tj(&["task", "delete", &e, "--force"])["task"].clone();
    assert_eq!(t["id"], e.as_str());
    expect_exit(&g.run(&["task", "show", &e]), 3, "a deleted task");
    let left = g.json(&["edge", "list", &c]);
    assert_eq!(
        left,
        json!([{"from": c, "kind": "depends_on", "props": {}, "to": b}])
    );
    assert_eq!(
        g.json(&["edge", "list", &a, "--kind", "parent_of"]),
        json!([])
    );
    let s = g.tj(&["task", "show", &c]);
    assert_eq!(s["depends_on"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["depends_on"][0]["id"], b.as_str());

    // --- reclaim with nothing expired.
    assert!(ids(&g.tj(&["task", "reclaim", "--stale"])).is_empty());
    assert!(g
        .ok(&["task", "reclaim", "--stale"])
        .contains("no expired leases"));

    // --- finish everything: completed_by from GOT_AGENT; then nothing is ready.
    let frank = [("GOT_AGENT", "frank")];
    g.tj_env(&frank, &["task", "start", &b]);
    let t = g.tj_env(&frank, &["task", "complete", &b])["task"].clone();
    assert_eq!(t["completed_by"], "frank");
    assert_eq!(list(&["--ready"]), [c.clone(), f.clone()]);
    g.tj(&["--agent", "carol", "task", "complete", &c]);
    g.tj(&["task", "complete", &f]);
    assert_eq!(
        list(&["--status", "completed"]),
        sorted(vec![a.clone(), b.clone(), c.clone(), f.clone()])
    );
    for args in [vec!["task", "next"], vec!["task", "next", "--claim"]] {
        let o = g.run(&args);
        expect_exit(&o, 3, "next with nothing ready");
        assert!(stderr(&o).contains("nothing is ready"), "{}", text(&o));
    }

    // --- abbreviated ids: any unique prefix of at least 4 characters.
    let every: Vec<String> = g
        .json(&["entity", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    let unique = |p: &str| every.iter().filter(|i| i.starts_with(p)).count() == 1;
    let shortest = (4..=12).find(|&n| unique(&a[..n])).unwrap();
    let mut lens = vec![shortest, 7.max(shortest), 12];
    lens.dedup();
    for n in lens {
        assert_eq!(g.task(&a[..n])["id"], a.as_str(), "prefix {}", &a[..n]);
    }
    let o = g.run(&["task", "show", &a[..3]]);
    expect_exit(&o, 3, "a 3-character prefix");
    assert!(stderr(&o).contains("at least 4 characters"), "{}", text(&o));
    // A second task sharing A's first 6 characters (its 7th is `-`, which no
    // generated id has) makes 4..=6-character prefixes ambiguous.
    let decoy = format!("{}-decoy", &a[..6]);
    g.json(&[
        "entity",
        "put",
        "task",
        "--id",
        &decoy,
        "--props",
        r#"{"title":"decoy","status":"pending"}"#,
    ]);
    for n in [4, 6] {
        let o = g.run(&["task", "show", &a[..n]]);
        expect_exit(&o, 5, "an ambiguous prefix");
        let err = stderr(&o);
        assert!(err.contains("ambiguous"), "{err}");
        assert!(err.contains(&a) && err.contains(&decoy), "{err}");
        let o = g.run(&["--json", "task", "show", &a[..n]]);
        expect_exit(&o, 5, "an ambiguous prefix (--json)");
        assert_eq!(parse(&o)["error"]["code"], "invalid");
    }
    assert_eq!(g.task(&a[..7.max(shortest)])["id"], a.as_str());
    assert_eq!(g.task(&decoy)["title"], "decoy");
}

/// Leases with the clock the test sets (`GOT_NOW_MS`, docs/cli.md): time moves
/// only when the test says so, so no step depends on how fast the machine runs.
#[test]
fn an_expired_lease_lets_another_agent_claim_and_reclaim_releases_it() {
    let g = Got::new();
    const T0: i64 = 1_800_000_000_000;
    let at = |ms: i64| ms.to_string();
    let t = g.id(&["task", "create", "leased briefly"]);
    let u = g.id(&["task", "create", "leased briefly too"]);
    let w = g.id(&["task", "create", "leased for ages"]);
    let x = g.id(&["task", "create", "leased for longer"]);
    let now = at(T0);
    let claimed = g.tj_env(
        &[("GOT_NOW_MS", &now)],
        &["--agent", "alice", "task", "claim", &t, "--lease", "1s"],
    )["task"]
        .clone();
    assert_eq!(claimed["lease_expires_at"], T0 + 1000, "{claimed}");
    assert_eq!(claimed["started_at"], T0, "{claimed}");
    assert_eq!(claimed["updated_at"], T0, "{claimed}");
    // Until the last millisecond of alice's lease, bob is refused, told who holds
    // it, and nothing is stale.
    let last = at(T0 + 999);
    let env_last: [(&str, &OsStr); 1] = [("GOT_NOW_MS", OsStr::new(&last))];
    let o = g.run_env(&env_last, &["--agent", "bob", "task", "claim", &t]);
    expect_exit(&o, 4, "claiming a task another agent holds");
    assert!(stderr(&o).contains("claimed by alice"), "{}", text(&o));
    let o = g.run_env(
        &env_last,
        &["--agent", "bob", "--json", "task", "claim", &t],
    );
    expect_exit(&o, 4, "claiming a task another agent holds (--json)");
    let err = parse(&o);
    assert_eq!(err["error"]["code"], "conflict");
    assert!(err["error"]["message"].as_str().unwrap().contains("alice"));
    let o = g.run_env(&env_last, &["--agent", "bob", "task", "start", &t]);
    expect_exit(&o, 4, "starting a task another agent holds");
    let o = g.run_env(&env_last, &["--agent", "bob", "task", "complete", &t]);
    expect_exit(&o, 4, "completing a task another agent holds");
    assert!(ids(&g.tj_env(&[("GOT_NOW_MS", &last)], &["task", "reclaim", "--stale"])).is_empty());
    assert_eq!(g.task(&t)["assignee"], "alice");

    let u_claim = g.tj_env(
        &[("GOT_NOW_MS", &at(T0 + 500))],
        &["--agent", "dave", "task", "claim", &u, "--lease", "1s"],
    );
    assert_eq!(u_claim["task"]["lease_expires_at"], T0 + 1500);
    // Leases too long for the clock saturate: they neither wrap into the past
    // (an instantly stale claim) nor overflow.
    for (id, lease) in [(&w, "213503982334d"), (&x, "106751991167d")] {
        let t = g.tj_env(
            &[("GOT_NOW_MS", &now)],
            &["--agent", "carol", "task", "claim", id, "--lease", lease],
        )["task"]
            .clone();
        assert_eq!(t["lease_expires_at"], i64::MAX, "{t}");
    }

    // The moment alice's lease runs out, bob's claim goes through (dave's lease
    // still holds), with a fresh default lease of an hour from then.
    let expired = at(T0 + 1000);
    let t2 = g.tj_env(
        &[("GOT_NOW_MS", &expired)],
        &["--agent", "bob", "task", "claim", &t],
    )["task"]
        .clone();
    assert_eq!(t2["assignee"], "bob");
    assert_eq!(t2["status"], "in_progress");
    assert_eq!(t2["lease_expires_at"], T0 + 1000 + 3_600_000);
    assert_eq!(t2["started_at"], T0, "the first start is kept: {t2}");
    assert!(ids(&g.tj_env(
        &[("GOT_NOW_MS", &at(T0 + 1499))],
        &["task", "reclaim", "--stale"]
    ))
    .is_empty());

    // reclaim --stale releases dave's expired claim, and only it.
    let r = g.tj_env(
        &[("GOT_NOW_MS", &at(T0 + 1500))],
        &["task", "reclaim", "--stale"],
    );
    assert_eq!(ids(&r), [u.as_str()]);
    let back = &r["tasks"][0];
    assert_eq!(back["status"], "pending");
    assert_eq!(back["assignee"], json!(null));
    assert_eq!(back["lease_expires_at"], json!(null));
    let shown = g.task(&u);
    assert_eq!(
        (&shown["status"], &shown["assignee"]),
        (&json!("pending"), &json!(null))
    );
    assert_eq!(g.task(&t)["assignee"], "bob");
    for id in [&w, &x] {
        assert_eq!(g.task(id)["assignee"], "carol");
    }
    assert_eq!(ids(&g.tj(&["ready"])), [u.as_str()]);
    let o = g.run_env(
        &[("GOT_NOW_MS", OsStr::new(&at(T0 + 1500)))],
        &["task", "reclaim", "--stale"],
    );
    expect_exit(&o, 0, "reclaim with nothing expired");
    assert!(stdout(&o).contains("no expired leases"), "{}", text(&o));
    let o = g.run_env(&[("GOT_NOW_MS", OsStr::new("soon"))], &["task", "show", &t]);
    expect_exit(&o, 2, "a GOT_NOW_MS that is not a number");
    assert!(stderr(&o).contains("GOT_NOW_MS"), "{}", text(&o));
}

/// Where a bad invocation runs.
#[derive(Clone, Copy, Debug)]
enum At {
    /// The populated store.
    Main,
    /// A store with no tasks.
    Empty,
    /// A directory with no store in it or above.
    NoStore,
    /// `--store` naming a directory that is not a store.
    NotAStoreFlag,
    /// `GOT_DIR` naming a directory that is not a store.
    NotAStoreEnv,
}

struct Bad {
    at: At,
    args: Vec<OsString>,
    exit: i32,
    /// The `--json` error code; `None` for clap's usage errors (no JSON: the
    /// arguments did not parse).
    code: Option<&'static str>,
    /// What the message must say.
    says: String,
}

fn bad(at: At, args: &[&str], exit: i32, code: Option<&'static str>, says: &str) -> Bad {
    Bad {
        at,
        args: args.iter().map(OsString::from).collect(),
        exit,
        code,
        says: says.to_string(),
    }
}

/// A directory's entries, for "nothing was created here".
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn bad_invocations_exit_with_their_code_and_message_and_change_nothing() {
    use std::os::unix::ffi::OsStringExt;
    use At::*;

    let g = Got::new();
    let p = g.id(&["--agent", "alice", "task", "create", "pending and ready"]);
    let d = g.id(&["task", "create", "done already"]);
    g.tj(&["task", "complete", &d]);
    let w = g.id(&["task", "create", "waits on p", "--depends-on", &p]);
    let h = g.id(&["task", "create", "held by alice"]);
    g.tj(&["--agent", "alice", "task", "claim", &h]);
    g.json(&["entity", "put", "note", "--id", "n1"]);
    let empty = Got::new();
    let nostore = Got::bare();
    for dir in nostore.root.ancestors() {
        assert!(
            !dir.join(".got/CURRENT").exists(),
            "a store in {} would be found from the temporary directory",
            dir.display()
        );
    }
    let notastore = Got::bare();
    std::fs::write(notastore.root.join("README"), "not a store").unwrap();
    let not_a_store = notastore.root.to_str().unwrap().to_string();

    let long_title = "t".repeat(501);
    let long_note = "n".repeat(64 * 1024 + 1);
    let cycle_msg = format!("{p} depends_on {w} would close a cycle");
    let p3 = &p[..3];
    // (where, arguments, exit code, --json error code (None: clap's usage error), message)
    const NF: Option<&str> = Some("not_found");
    const INV: Option<&str> = Some("invalid");
    const CONFLICT: Option<&str> = Some("conflict");
    const USAGE: Option<&str> = None;
    #[rustfmt::skip]
    let mut cases = vec![
        // Unknown ids and prefixes.
        bad(Main, &["task", "show", "T-uuuuuuuuuu"], 3, NF, "no task T-uuuuuuuuuu"),
        bad(Main, &["task", "start", "T-uuuu"], 3, NF, "no task T-uuuu"),
        bad(Main, &["task", "complete", "T-uuuuuuuuuu"], 3, NF, "no task"),
        bad(Main, &["task", "note", "T-uuuuuuuuuu", "hi"], 3, NF, "no task"),
        bad(Main, &["task", "depends", &p, "--on", "T-uuuuu"], 3, NF, "no task T-uuuuu"),
        bad(Main, &["task", "create", "x", "--depends-on", "T-uuuuu"], 3, NF, "no task T-uuuuu"),
        bad(Main, &["task", "show", p3], 3, NF, "at least 4 characters"),
        bad(Main, &["task", "claim", p3], 3, NF, "at least 4 characters"),
        bad(Main, &["task", "show", "n1"], 3, NF, "n1 is a note, not a task"),
        bad(Main, &["task", "show", ""], 5, INV, "empty task id"),
        // Values that are not a status, priority or category.
        bad(Main, &["task", "list", "--status", "done"], 5, INV, "status \"done\" is not one of"),
        bad(Main, &["task", "list", "--priority", "urgent"], 5, INV, "priority \"urgent\" is not one of"),
        bad(Main, &["task", "list", "--category", "chores"], 5, INV, "category \"chores\" is not one of"),
        bad(Main, &["task", "list", "--ready", "--priority", "urgent"], 5, INV, "priority \"urgent\""),
        bad(Main, &["task", "list", "--blocked", "--category", "chores"], 5, INV, "category \"chores\""),
        bad(Main, &["task", "create", "x", "--priority", "urgent"], 5, INV, "priority \"urgent\""),
        bad(Main, &["task", "create", "x", "--category", "chores"], 5, INV, "category \"chores\""),
        bad(Main, &["task", "update", &p, "--priority", "urgent"], 5, INV, "priority \"urgent\""),
        bad(Main, &["task", "update", &p, "--category", "chores"], 5, INV, "category \"chores\""),
        // Titles, notes, reasons, labels, estimates.
        bad(Main, &["task", "create", ""], 5, INV, "non-empty title"),
        bad(Main, &["task", "create", " \t "], 5, INV, "non-empty title"),
        bad(Main, &["task", "create", &long_title], 5, INV, "the title is 501 bytes; at most 500"),
        bad(Main, &["task", "update", &p, "--title", "  "], 5, INV, "non-empty title"),
        bad(Main, &["task", "update", &p, "--title", &long_title], 5, INV, "at most 500"),
        bad(Main, &["task", "note", &p, &long_note], 5, INV, "the note is 65537 bytes; at most 65536"),
        bad(Main, &["task", "note", &p, ""], 5, INV, "an empty note"),
        bad(Main, &["task", "note", &p, "   "], 5, INV, "an empty note"),
        bad(Main, &["task", "block", &p], 2, USAGE, "--reason"),
        bad(Main, &["task", "block", &p, "--reason", ""], 5, INV, "needs a reason"),
        bad(Main, &["task", "block", &p, "--reason", "  "], 5, INV, "needs a reason"),
        bad(Main, &["task", "create", "x", "--label", " "], 5, INV, "an empty label"),
        bad(Main, &["task", "update", &p, "--add-label", ""], 5, INV, "an empty label"),
        bad(Main, &["task", "create", "x", "--estimate=-1"], 5, INV, "must be a number >= 0"),
        bad(Main, &["task", "create", "x", "--estimate", "NaN"], 5, INV, "must be a number >= 0"),
        bad(Main, &["task", "update", &p, "--estimate=-1"], 5, INV, "must be a number >= 0"),
        bad(Main, &["task", "update", &p, "--estimate", "inf"], 5, INV, "must be a number >= 0"),
        bad(Main, &["task", "create", "x", "--estimate", "-1"], 5, INV, "must be a number >= 0"),
        bad(Main, &["task", "create", "x", "--estimate", "abc"], 2, USAGE, "invalid value 'abc'"),
        // Leases (checked by got itself: a usage error with a JSON object).
        bad(Main, &["task", "claim", &p, "--lease", "10x"], 2, Some("usage"), "\"10x\" is not a duration"),
        bad(Main, &["task", "next", "--claim", "--lease", "10x"], 2, Some("usage"), "\"10x\" is not a duration"),
        // Claims, starts, completions in the wrong state.
        bad(Main, &["task", "claim", &d], 5, INV, "is completed; only a pending task can be claimed"),
        bad(Main, &["task", "claim", &w], 5, INV, &format!("it depends on {p} (pending)")),
        bad(Main, &["--agent", "bob", "task", "claim", &h], 4, CONFLICT, "claimed by alice"),
        bad(Main, &["--agent", "bob", "task", "start", &h], 4, CONFLICT, "claimed by alice"),
        bad(Main, &["--agent", "bob", "task", "complete", &h], 4, CONFLICT, "claimed by alice"),
        bad(Main, &["task", "start", &w], 5, INV, &format!("waits on {p}")),
        bad(Main, &["task", "start", &d], 5, INV, "is completed"),
        bad(Main, &["task", "complete", &d], 5, INV, "already completed"),
        bad(Main, &["task", "block", &d, "--reason", "r"], 5, INV, "cannot be blocked"),
        bad(Main, &["task", "unblock", &p], 5, INV, "is pending, not blocked"),
        // Dependencies and deletion.
        bad(Main, &["task", "depends", &p, "--on", &p], 5, INV, "cannot depend on itself"),
        bad(Main, &["task", "depends", &p, "--on", &w], 5, INV, &cycle_msg),
        bad(Main, &["task", "create", "x", "--depends-on", &w, "--blocks", &p], 5, INV, "would close a cycle"),
        bad(Main, &["task", "delete", &p], 4, CONFLICT, &format!("depended on by {w}")),
        bad(Main, &["task", "update", &p, "--if-version", "99", "--title", "y"], 4, CONFLICT, "not 99"),
        // Releases.
        bad(Main, &["task", "release", &p], 5, INV, "is not claimed"),
        bad(Main, &["--agent", "bob", "task", "release", &h], 4, CONFLICT, "claimed by alice, not bob"),
        // Paging the queue after a task not in it.
        bad(Main, &["task", "list", "--ready", "--after", &d], 3, NF, "no such task in this list"),
        // clap's usage errors.
        bad(Main, &["task", "frobnicate"], 2, USAGE, "unrecognized subcommand 'frobnicate'"),
        bad(Main, &["task", "show"], 2, USAGE, "required arguments were not provided"),
        bad(Main, &["task", "reclaim"], 2, USAGE, "--stale"),
        bad(Main, &["task", "list", "--limit", "many"], 2, USAGE, "invalid value 'many'"),
        bad(Main, &["--json", "-q", "task", "list"], 2, USAGE, "'--json' cannot be used with '--quiet'"),
        bad(Main, &["task", "list", "--ready", "--status", "pending"], 2, USAGE, "cannot be used with"),
        // Nothing ready.
        bad(Empty, &["task", "next"], 3, NF, "nothing is ready"),
        bad(Empty, &["task", "next", "--claim"], 3, NF, "nothing is ready"),
        // No store, or not a store.
        bad(NoStore, &["task", "list"], 3, NF, "run `got init`"),
        bad(NoStore, &["task", "create", "x"], 3, NF, "run `got init`"),
        bad(NoStore, &["ready"], 3, NF, "no .got directory"),
        // A bad --lease is a usage error, found before the (missing) store.
        bad(NoStore, &["task", "claim", "T-uuuu", "--lease", "10x"], 2, Some("usage"), "\"10x\" is not a duration"),
        bad(NotAStoreFlag, &["--store", &not_a_store, "task", "list"], 3, NF, "is not a got store"),
        bad(NotAStoreFlag, &["--store", &not_a_store, "task", "create", "x"], 3, NF, "is not a got store"),
        bad(NotAStoreEnv, &["task", "claim", "T-uuuu"], 3, NF, "is not a got store"),
    ];
    // A title that is not UTF-8.
    let mut raw = bad(Main, &["task", "create"], 2, None, "invalid UTF-8");
    raw.args.push(OsString::from_vec(b"caf\xe9".to_vec()));
    cases.push(raw);
    assert!(cases.len() >= 40);

    let snap = |at: At| -> Json {
        match at {
            Main => g.snapshot(),
            Empty => empty.snapshot(),
            NoStore => json!(listing(&nostore.root)),
            NotAStoreFlag | NotAStoreEnv => json!(listing(&notastore.root)),
        }
    };
    let slot = |at: At| match at {
        Main => 0,
        Empty => 1,
        NoStore => 2,
        NotAStoreFlag | NotAStoreEnv => 3,
    };
    let mut before: Vec<Json> = [Main, Empty, NoStore, NotAStoreFlag]
        .into_iter()
        .map(snap)
        .collect();
    assert_eq!(before[2], json!([]));
    let run = |c: &Bad, args: &[OsString]| -> Output {
        let (dir, env): (&Got, Vec<(&str, &OsStr)>) = match c.at {
            Main => (&g, vec![]),
            Empty => (&empty, vec![]),
            NoStore => (&nostore, vec![]),
            NotAStoreFlag => (&notastore, vec![]),
            NotAStoreEnv => (&notastore, vec![("GOT_DIR", OsStr::new(&not_a_store))]),
        };
        dir.run_env(&env, args)
    };

    let mut failures = Vec::new();
    for c in &cases {
        for json_mode in [false, true] {
            let mut args = c.args.clone();
            if json_mode {
                if args.iter().any(|a| a == "--json") {
                    continue;
                }
                args.insert(0, "--json".into());
            }
            let o = run(c, &args);
            let (out, err) = (stdout(&o), stderr(&o));
            let mut wrong: Vec<String> = Vec::new();
            if code(&o) != c.exit {
                wrong.push(format!("exit {}, want {}", code(&o), c.exit));
            }
            if [&out, &err]
                .iter()
                .any(|s| s.contains("panicked") || s.contains("internal error"))
            {
                wrong.push("panic text".into());
            }
            // A case that names --json itself is in JSON mode already.
            let json_mode = json_mode || args.iter().any(|a| a == "--json");
            match (c.code, json_mode) {
                // got's own refusals: one line on stderr saying what is wrong ...
                (Some(_), false) => {
                    if !out.is_empty() {
                        wrong.push("output on stdout".into());
                    }
                    if !(err.lines().count() == 1 && err.starts_with("got: ")) {
                        wrong.push("not one `got: ...` line on stderr".into());
                    }
                    if !err.contains(&c.says) {
                        wrong.push(format!("the message lacks {:?}", c.says));
                    }
                }
                // ... and with --json, one error object on stdout.
                (Some(want), true) => match serde_json::from_str::<Json>(&out) {
                    Ok(j) => {
                        if j["error"]["code"] != want {
                            wrong.push(format!("error.code is not {want:?}"));
                        }
                        let m = j["error"]["message"].as_str().unwrap_or("");
                        if !m.contains(&c.says) {
                            wrong.push(format!("error.message lacks {:?}", c.says));
                        }
                        if !err.is_empty() {
                            wrong.push("output on stderr".into());
                        }
                    }
                    Err(e) => wrong.push(format!("stdout is not a JSON object: {e}")),
                },
                // Arguments that do not parse, with --json: a usage error object.
                (None, true) => match serde_json::from_str::<Json>(&out) {
                    Ok(j) => {
                        if j["error"]["code"] != "usage" {
                            wrong.push("error.code is not \"usage\"".into());
                        }
                        let m = j["error"]["message"].as_str().unwrap_or("");
                        if !m.contains(&c.says) {
                            wrong.push(format!("error.message lacks {:?}", c.says));
                        }
                    }
                    Err(e) => wrong.push(format!("stdout is not a JSON object: {e}")),
                },
                // Without: clap's `error: ...` on stderr.
                (None, false) => {
                    if !out.is_empty() {
                        wrong.push("output on stdout".into());
                    }
                    if !err.starts_with("error: ") || !err.contains(&c.says) {
                        wrong.push(format!("no `error: ...` naming {:?}", c.says));
                    }
                }
            }
            let now = snap(c.at);
            if now != before[slot(c.at)] {
                wrong.push("the store changed".into());
                before[slot(c.at)] = now;
            }
            if !wrong.is_empty() {
                failures.push(format!(
                    "{:?} {args:?}: {}\n{}",
                    c.at,
                    wrong.join("; "),
                    text(&o)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad invocations misbehaved:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
    // Nothing above touched the tasks.
    assert_eq!(g.task(&h)["assignee"], "alice");
    assert_eq!(g.task(&p)["version"], 1);
}

/// `got prime`: an agent's own claims, the handoffs waiting for it, the top of
/// the ready queue and the loop's commands — and nothing of other agents'.
#[test]
fn prime_tells_an_agent_its_claims_its_handoffs_and_what_is_ready() {
    let g = Got::new();
    let first = g.id(&["--agent", "ana", "task", "create", "first"]);
    let second = g.id(&[
        "--agent",
        "ana",
        "task",
        "create",
        "second",
        "--priority",
        "high",
    ]);
    let third = g.id(&["--agent", "ana", "task", "create", "third"]);
    g.ok(&["--agent", "ana", "task", "claim", &second]);
    g.ok(&["--agent", "bo", "task", "claim", &third]);
    g.ok(&[
        "--agent",
        "ana",
        "handoff",
        "initiate",
        &second,
        "--to",
        "cy",
        "--instructions",
        "finish it",
    ]);
    let ana = g.tj(&["--agent", "ana", "prime"]);
    assert_eq!(
        ids(&json!({"tasks": ana["claimed"]})),
        [second.as_str()],
        "{ana}"
    );
    assert!(ana["claimed"][0]["lease_expires_at"].is_i64());
    assert_eq!(ana["handoffs_for_you"], json!([]));
    assert_eq!(
        ids(&json!({"tasks": ana["ready"]})),
        [first.as_str()],
        "{ana}"
    );
    assert_eq!(ana["loop"].as_array().unwrap().len(), 5);
    let cy = g.tj(&["--agent", "cy", "prime", "--limit", "1"]);
    assert_eq!(cy["claimed"], json!([]), "{cy}");
    assert_eq!(cy["handoffs_for_you"][0]["task"], second.as_str(), "{cy}");
    // Short: it costs an agent's context.
    let text = g.ok(&["--agent", "cy", "prime"]);
    assert!(text.lines().count() <= 12, "{text}");
    assert!(text.contains("handoff for you") && text.contains("got task next --claim"));
}
