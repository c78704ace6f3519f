//! The CLI as a user meets it: store discovery, JSON shapes, exit codes.

use serde_json::Value as Json;
use std::path::Path;
use std::process::{Command, Output};

fn got(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_got"))
        .args(args)
        .current_dir(cwd)
        .env_remove("GOT_DIR")
        .env_remove("GOT_AGENT")
        .output()
        .expect("run got")
}

fn json(o: &Output) -> Json {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

#[test]
fn init_then_commands_find_the_store_walking_up_like_git() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    assert_eq!(code(&got(root, &["init"])), 0);
    assert!(root.join(".got/CURRENT").is_file());
    // A second init refuses: the store exists.
    assert_eq!(code(&got(root, &["init"])), 5);
    let sub = root.join("a/b");
    std::fs::create_dir_all(&sub).unwrap();
    let o = got(
        &sub,
        &[
            "--json",
            "entity",
            "put",
            "item",
            "--props",
            r#"{"title":"x","n":[1,2.5,null]}"#,
        ],
    );
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let e = json(&o);
    assert_eq!(e["kind"], "item");
    assert_eq!(e["version"], 1);
    assert_eq!(e["props"]["n"], serde_json::json!([1, 2.5, null]));
    let id = e["id"].as_str().unwrap().to_string();
    let got_back = json(&got(root, &["--json", "entity", "get", &id]));
    assert_eq!(got_back["props"]["title"], "x");
    // Outside any store: not found, with a message that says what to do.
    let elsewhere = tempfile::tempdir().unwrap();
    let o = got(elsewhere.path(), &["entity", "list"]);
    assert_eq!(code(&o), 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("got init"));
}

#[test]
fn got_dir_and_store_flag_name_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    assert_eq!(
        code(&got(
            dir.path(),
            &["--store", store.to_str().unwrap(), "init"]
        )),
        0
    );
    let o = Command::new(env!("CARGO_BIN_EXE_got"))
        .args(["--json", "entity", "put", "note", "--id", "n1"])
        .current_dir(dir.path())
        .env("GOT_DIR", &store)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0);
    let list = json(&got(
        dir.path(),
        &[
            "--store",
            store.to_str().unwrap(),
            "--json",
            "entity",
            "list",
        ],
    ));
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], "n1");
}

#[test]
fn each_outcome_has_its_exit_code_and_json_error_object() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    got(root, &["init"]);
    assert_eq!(
        code(&got(root, &["entity", "put", "item", "--id", "t1"])),
        0
    );
    // Compare-and-swap mismatch: conflict, nothing written.
    let o = got(
        root,
        &[
            "--json",
            "entity",
            "put",
            "item",
            "--id",
            "t1",
            "--if-version",
            "7",
        ],
    );
    assert_eq!(code(&o), 4);
    assert_eq!(json(&o)["error"]["code"], "conflict");
    assert_eq!(
        json(&got(root, &["--json", "entity", "get", "t1"]))["version"],
        1
    );
    // A matching version succeeds and bumps it by one.
    let o = got(
        root,
        &[
            "--json",
            "entity",
            "put",
            "item",
            "--id",
            "t1",
            "--if-version",
            "1",
        ],
    );
    assert_eq!(json(&o)["version"], 2);
    // Not found.
    let o = got(root, &["--json", "entity", "get", "nope"]);
    assert_eq!(code(&o), 3);
    assert_eq!(json(&o)["error"]["code"], "not_found");
    assert_eq!(
        code(&got(root, &["edge", "add", "t1", "dep", "missing"])),
        3
    );
    assert_eq!(code(&got(root, &["edge", "rm", "t1", "dep", "missing"])), 3);
    // Invalid input.
    assert_eq!(
        code(&got(root, &["entity", "put", "item", "--props", "[1]"])),
        5
    );
    assert_eq!(
        code(&got(root, &["entity", "put", "item", "--props", "{bad"])),
        5
    );
    assert_eq!(
        code(&got(root, &["entity", "put", "item", "--id", "has space"])),
        5
    );
    // Usage errors are clap's 2; --help is a success.
    assert_eq!(code(&got(root, &["entity", "frobnicate"])), 2);
    assert_eq!(code(&got(root, &["--help"])), 0);
    // Errors are one line, without a backtrace.
    let o = got(root, &["entity", "get", "nope"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn edges_history_and_delete_work_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    got(root, &["init"]);
    for id in ["a", "b"] {
        assert_eq!(
            code(&got(
                root,
                &["--agent", "alice", "entity", "put", "item", "--id", id]
            )),
            0
        );
    }
    assert_eq!(
        code(&got(root, &["edge", "add", "a", "depends_on", "b"])),
        0
    );
    let edges = json(&got(
        root,
        &["--json", "edge", "list", "b", "--direction", "in"],
    ));
    assert_eq!(edges[0]["from"], "a");
    got(
        root,
        &[
            "--agent",
            "bob",
            "entity",
            "put",
            "item",
            "--id",
            "a",
            "--props",
            r#"{"x":1}"#,
        ],
    );
    let h = json(&got(root, &["--json", "history", "a"]));
    let h = h.as_array().unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(
        (h[0]["actor"].as_str(), h[1]["actor"].as_str()),
        (Some("alice"), Some("bob"))
    );
    // Deleting b removes the edge in the same transaction.
    assert_eq!(code(&got(root, &["entity", "delete", "b"])), 0);
    let edges = json(&got(root, &["--json", "edge", "list", "a"]));
    assert!(edges.as_array().unwrap().is_empty());
    assert_eq!(code(&got(root, &["verify"])), 0);
    assert_eq!(code(&got(root, &["checkpoint"])), 0);
    assert_eq!(code(&got(root, &["verify"])), 0);
    let st = json(&got(root, &["--json", "stats"]));
    assert_eq!(st["entities_by_kind"]["item"], 1);
    assert!(st["edges_by_kind"].as_object().unwrap().is_empty());
    // a: 2 versions; b: put + delete; the edge: added + removed, both directions.
    assert_eq!(st["history"]["versions"], 8);
    assert!(st["indexes"]["versions"].as_u64().unwrap() > 0);
    assert_eq!(st["runs"].as_array().unwrap().len(), 1);
    assert!(st["disk_bytes"]["total"].as_u64().unwrap() > 0);
    assert_eq!(
        json(&got(root, &["--json", "entity", "get", "a"]))["props"]["x"],
        1
    );
}

fn got_in(store: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_got"))
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn demo_runs_agents_in_a_new_temporary_store_never_a_discovered_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    got(root, &["init"]);
    let o = Command::new(env!("CARGO_BIN_EXE_got"))
        .args(["--json", "demo"])
        .current_dir(root)
        .env("GOT_DIR", root.join(".got"))
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let d = json(&o);
    let store = d["store"].as_str().unwrap();
    assert!(!store.starts_with(root.to_str().unwrap()));
    // The discovered store was not touched.
    let list = json(&got(root, &["--json", "entity", "list"]));
    assert!(list.as_array().unwrap().is_empty());
    // The agents completed all eight planned tasks, each exactly once.
    let done = d["completed"].as_array().unwrap();
    let mut tasks: Vec<&str> = done.iter().map(|c| c["task"].as_str().unwrap()).collect();
    tasks.sort();
    tasks.dedup();
    assert_eq!((done.len(), tasks.len()), (8, 8), "{d}");
    let demo = Path::new(store);
    let v = json(&got_in(demo, &["--json", "dashboard"]));
    assert_eq!(v["counts"]["completed"], 8, "{v}");
    assert_eq!(v["counts"]["in_progress"], 1, "the handed-off task");
    assert_eq!(
        v["in_progress"]["agent-1"].as_array().unwrap().len(),
        1,
        "{v}"
    );
    assert_eq!(v["handoffs"][0]["status"], "accepted");
    assert_eq!(v["decisions"].as_array().unwrap().len(), 1);
    assert_eq!(v["sprints"][0]["completed"], 8);
    std::fs::remove_dir_all(Path::new(store).parent().unwrap()).unwrap();
}

#[test]
fn graph_queries_answer_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    got(root, &["init"]);
    for id in ["a", "b", "c"] {
        got(root, &["entity", "put", "item", "--id", id]);
    }
    got(root, &["edge", "add", "a", "depends_on", "b"]);
    got(root, &["edge", "add", "b", "depends_on", "c"]);
    let path = json(&got(root, &["--json", "query", "path", "a", "c"]));
    assert_eq!(path, serde_json::json!(["a", "b", "c"]));
    let topo = json(&got(
        root,
        &["--json", "query", "topo", "--kind", "depends_on"],
    ));
    assert_eq!(topo, serde_json::json!(["c", "b", "a"]));
    assert_eq!(code(&got(root, &["query", "path", "c", "a"])), 3);
    assert_eq!(code(&got(root, &["query", "neighbors", "nope"])), 3);
    got(root, &["edge", "add", "c", "depends_on", "a"]);
    let cycles = json(&got(root, &["--json", "query", "cycles"]));
    assert_eq!(cycles, serde_json::json!([["a", "b", "c"]]));
    let o = got(root, &["--json", "query", "topo"]);
    assert_eq!(code(&o), 4);
    assert!(json(&o)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("cycle"));
}

#[test]
fn entity_list_filters_sorts_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    got(root, &["init"]);
    for (id, status, prio, labels) in [
        ("t1", "pending", 3, r#"["wal","bug"]"#),
        ("t2", "completed", 1, r#"["cli"]"#),
        ("t3", "blocked", 2, r#"["wal"]"#),
    ] {
        let props = format!(
            r#"{{"status":"{status}","priority":{prio},"labels":{labels},"title":"task {id}"}}"#
        );
        assert_eq!(
            code(&got(
                root,
                &["entity", "put", "item", "--id", id, "--props", &props]
            )),
            0
        );
    }
    let ids = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["--json", "entity", "list"];
        a.extend_from_slice(args);
        json(&got(root, &a))
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(&["--where", "status=pending", "--where", "status=blocked"]),
        ["t1", "t3"]
    );
    assert_eq!(
        ids(&["--label", "wal", "--sort", "-priority"]),
        ["t1", "t3"]
    );
    assert_eq!(ids(&["--where", "priority=2"]), ["t3"]);
    assert_eq!(ids(&["--text", "TASK t2"]), ["t2"]);
    assert_eq!(ids(&["--sort", "priority", "--limit", "2"]), ["t2", "t3"]);
    assert_eq!(ids(&["--sort", "priority", "--after", "t3"]), ["t1"]);
    assert_eq!(
        code(&got(root, &["entity", "list", "--where", "nonsense"])),
        5
    );
}

/// got's own kinds keep their id prefixes (`T-` for tasks, …) whatever writes
/// them, so id-ordered task pages can walk the ids under `T-`.
#[test]
fn entities_of_gots_kinds_keep_their_id_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    got(root, &["init"]);
    for (kind, id) in [
        ("task", "t1"),
        ("handoff", "T-1"),
        ("decision", "x"),
        ("sprint", "E-1"),
        ("epic", "S-1"),
    ] {
        let o = got(root, &["--json", "entity", "put", kind, "--id", id]);
        assert_eq!(
            code(&o),
            5,
            "{kind} {id}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(json(&o)["error"]["code"], "invalid");
    }
    let e = json(&got(root, &["--json", "entity", "put", "task"]));
    assert!(e["id"].as_str().unwrap().starts_with("T-"), "{e}");
    assert_eq!(
        code(&got(root, &["entity", "put", "task", "--id", "T-mine"])),
        0
    );
    // An import with a task whose id lacks the prefix changes nothing.
    let file = root.join("in.jsonl");
    std::fs::write(
        &file,
        r#"{"created_at":1,"id":"bad-1","kind":"task","props":{"title":"x"},"type":"entity","updated_at":1,"version":1}
"#,
    )
    .unwrap();
    let o = got(root, &["import", file.to_str().unwrap()]);
    assert_eq!(code(&o), 5, "{}", String::from_utf8_lossy(&o.stderr));
    let listed = json(&got(root, &["--json", "task", "list"]));
    let ids: Vec<&str> = listed["tasks"]
        .as_array()
        .map(|a| a.iter().map(|t| t["id"].as_str().unwrap()).collect())
        .unwrap_or_default();
    assert_eq!(ids.len(), 2, "{listed}");
    assert!(ids.contains(&"T-mine"), "{listed}");
}

/// The README's first command is `cargo run --release -- demo`: with got-server
/// beside got in the package, `cargo run` needs to be told which binary runs.
#[test]
fn cargo_run_runs_got_though_the_package_has_two_binaries() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let package = manifest
        .split("\n[package]\n")
        .nth(1)
        .and_then(|p| p.split("\n[").next())
        .unwrap();
    assert!(
        manifest.matches("[[bin]]").count() < 2 || package.contains("default-run = \"got\""),
        "[package] needs default-run = \"got\""
    );
}
