//! `got export` / `got import` through the binary: identical states export to
//! identical bytes; import checks the whole file first, is idempotent, keeps the
//! higher version of each entity, never rewinds, reports equal-version conflicts;
//! a beads issues.jsonl maps to tasks and dependencies.

use crate::common;

use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::Output;

fn got(store: &Path, args: &[&str]) -> Output {
    common::cli::got_as(store, "alice", args)
}

/// Stdout, untrimmed (exports are compared byte for byte).
fn ok(o: Output) -> String {
    assert_eq!(o.status.code(), Some(0), "{}", common::cli::text(&o));
    String::from_utf8(o.stdout).unwrap()
}

fn new_store(root: &Path, name: &str) -> PathBuf {
    let s = root.join(name);
    ok(got(&s, &["init"]));
    s
}

fn export(s: &Path) -> String {
    ok(got(s, &["export"]))
}

#[test]
fn export_import_round_trips_byte_for_byte_and_import_is_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let a = new_store(tmp.path(), "a");
    let t1 = ok(got(&a, &["-q", "task", "create", "one", "--label", "wal"]))
        .trim()
        .to_string();
    let t2 = ok(got(
        &a,
        &["-q", "task", "create", "two", "--depends-on", &t1],
    ))
    .trim()
    .to_string();
    ok(got(
        &a,
        &["task", "note", &t2, "a note with \"quotes\" and ünïcode"],
    ));
    ok(got(
        &a,
        &["decision", "log", "d", "--rationale", "r", "--affects", &t2],
    ));
    let file = tmp.path().join("out.jsonl");
    let out = ok(got(&a, &["export", "--out", file.to_str().unwrap()]));
    assert!(out.contains("exported 3 entities and 2 edges"), "{out}");
    let bytes = std::fs::read_to_string(&file).unwrap();
    assert_eq!(bytes, export(&a), "--out and stdout agree");
    assert_eq!(bytes, export(&a), "exports are deterministic");
    // Sorted by id, each entity followed by its out-edges.
    let lines: Vec<Json> = bytes
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "entity")
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);

    let b = new_store(tmp.path(), "b");
    let r: Json =
        serde_json::from_str(&ok(got(&b, &["--json", "import", file.to_str().unwrap()]))).unwrap();
    assert_eq!(
        (r["entities_written"].as_u64(), r["edges_written"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(
        export(&b),
        bytes,
        "the imported store exports the same bytes"
    );
    let r: Json =
        serde_json::from_str(&ok(got(&b, &["--json", "import", file.to_str().unwrap()]))).unwrap();
    assert_eq!(
        (
            r["entities_written"].as_u64(),
            r["entities_skipped"].as_u64(),
            r["edges_skipped"].as_u64()
        ),
        (Some(0), Some(3), Some(2))
    );
    assert_eq!(export(&b), bytes, "importing twice changes nothing");
    // The indexes follow imported data.
    let ready = ok(got(&b, &["-q", "ready"]));
    assert_eq!(ready.trim(), t1);
}

#[test]
fn import_keeps_the_higher_version_never_rewinds_and_reports_conflicts() {
    let tmp = tempfile::tempdir().unwrap();
    let a = new_store(tmp.path(), "a");
    let t = ok(got(&a, &["-q", "task", "create", "shared"]))
        .trim()
        .to_string();
    let v1 = tmp.path().join("v1.jsonl");
    ok(got(&a, &["export", "--out", v1.to_str().unwrap()]));
    ok(got(
        &a,
        &["task", "update", &t, "--title", "shared, renamed"],
    ));
    let v2 = tmp.path().join("v2.jsonl");
    ok(got(&a, &["export", "--out", v2.to_str().unwrap()]));

    let b = new_store(tmp.path(), "b");
    ok(got(&b, &["import", v1.to_str().unwrap()]));
    ok(got(&b, &["import", v2.to_str().unwrap()]));
    let title = |s: &Path| -> (String, u64) {
        let v: Json = serde_json::from_str(&ok(got(s, &["--json", "task", "show", &t]))).unwrap();
        (
            v["task"]["title"].as_str().unwrap().to_string(),
            v["task"]["version"].as_u64().unwrap(),
        )
    };
    assert_eq!(
        title(&b),
        ("shared, renamed".into(), 2),
        "the higher version wins"
    );
    ok(got(&b, &["import", v1.to_str().unwrap()]));
    assert_eq!(
        title(&b),
        ("shared, renamed".into(), 2),
        "an older export never rewinds"
    );

    // Same version, other content: a conflict, reported, nothing else lost.
    let c = new_store(tmp.path(), "c");
    ok(got(&c, &["import", v1.to_str().unwrap()]));
    ok(got(&c, &["task", "update", &t, "--title", "diverged"]));
    let o = got(&c, &["--json", "import", v2.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: Json = serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    assert_eq!(r["conflicts"].as_array().unwrap().len(), 1, "{r}");
    assert!(r["conflicts"][0].as_str().unwrap().contains(&t));
    assert_eq!(title(&c), ("diverged".into(), 2));
}

#[test]
fn a_bad_line_anywhere_means_nothing_is_imported() {
    let tmp = tempfile::tempdir().unwrap();
    let a = new_store(tmp.path(), "a");
    for i in 0..5 {
        ok(got(&a, &["task", "create", &format!("t{i}")]));
    }
    let good = export(&a);
    let b = new_store(tmp.path(), "b");
    let before = export(&b);
    let cases: Vec<(String, &str, i32)> = vec![
        (format!("{good}not json\n"), "not JSON", 5),
        (format!("{good}{{\"type\":\"widget\"}}\n"), "\"type\"", 5),
        (format!("{good}{{\"type\":\"entity\",\"id\":\"x\",\"kind\":\"task\",\"version\":0}}\n"), "version", 5),
        (format!("{good}{{\"type\":\"edge\",\"from\":\"T-nowhere\",\"kind\":\"depends_on\",\"to\":\"T-nothere\"}}\n"), "neither in the file nor in the store", 5),
        (format!("{good}{}", good.lines().next().unwrap()), "appears twice", 5),
    ];
    for (i, (text, why, code)) in cases.iter().enumerate() {
        let f = tmp.path().join(format!("bad{i}.jsonl"));
        std::fs::write(&f, text).unwrap();
        let o = got(&b, &["import", f.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(*code), "case {i}: {err}");
        assert!(
            err.contains(why) && err.contains("nothing was imported"),
            "case {i}: {err}"
        );
        assert_eq!(export(&b), before, "case {i}: the store is unchanged");
    }
    let f = tmp.path().join("latin1.jsonl");
    std::fs::write(&f, b"{\"type\":\"entity\",\"id\":\"caf\xe9\"}\n").unwrap();
    let o = got(&b, &["import", f.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("not UTF-8"));
    let o = got(
        &b,
        &["import", tmp.path().join("missing.jsonl").to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(export(&b), before);
}

#[test]
fn a_beads_issues_file_becomes_tasks_and_dependencies() {
    let tmp = tempfile::tempdir().unwrap();
    let s = new_store(tmp.path(), "s");
    let f = tmp.path().join("issues.jsonl");
    std::fs::write(
        &f,
        concat!(
            r#"{"id":"bd-1","title":"Fix the tail","description":"torn","status":"open","priority":0,"issue_type":"bug","labels":["wal"],"assignee":"","created_at":"2025-10-01T12:00:00Z","updated_at":"2025-10-02T12:00:00.5Z"}"#, "\n",
            r#"{"id":"bd-2","title":"Test it","status":"closed","priority":3,"issue_type":"task","closed_at":"2025-10-03T00:00:00Z","created_at":"2025-10-01T13:00:00Z","dependencies":[{"issue_id":"bd-2","depends_on_id":"bd-1","type":"blocks"}]}"#, "\n",
            r#"{"id":"bd-3","title":"Epic","status":"in_progress","priority":2,"issue_type":"epic","created_at":"2025-10-01T13:00:00+02:00","dependencies":[{"issue_id":"bd-3","depends_on_id":"bd-1","type":"parent-child"}]}"#, "\n",
        ),
    )
    .unwrap();
    ok(got(&s, &["import", "--from", "beads", f.to_str().unwrap()]));
    let show = |id: &str| -> Json {
        serde_json::from_str(&ok(got(&s, &["--json", "task", "show", id]))).unwrap()
    };
    let t1 = show("T-bd-1");
    assert_eq!(t1["task"]["status"], "pending");
    assert_eq!(t1["task"]["priority"], "critical");
    assert_eq!(t1["task"]["category"], "bugfix");
    assert_eq!(t1["task"]["labels"][0], "wal");
    assert!(
        t1["task"].get("assignee").is_none(),
        "an empty beads assignee is none"
    );
    assert_eq!(t1["task"]["created_at"], 1_759_320_000_000i64);
    let t2 = show("T-bd-2");
    assert_eq!(t2["task"]["status"], "completed");
    assert_eq!(t2["depends_on"][0]["id"], "T-bd-1");
    // An epic is an epic; its parent-child to a task makes the task its parent.
    let epic = ok(got(&s, &["--json", "epic", "show", "E-bd-3"]));
    assert!(epic.contains("Epic"), "{epic}");
    let edges = ok(got(&s, &["--json", "edge", "list", "T-bd-1"]));
    assert!(
        edges.contains("parent_of") && edges.contains("E-bd-3"),
        "{edges}"
    );
    // Idempotent too.
    let r: Json = serde_json::from_str(&ok(got(
        &s,
        &["--json", "import", "--from", "beads", f.to_str().unwrap()],
    )))
    .unwrap();
    assert_eq!(r["created"], 0, "{r}");
    assert_eq!(r["changed"], 0, "{r}");
}

/// `import --batch N` writes N items (entities first, then edges) per
/// transaction: the log grows by one LSN per batch, the entities of one batch
/// share its LSN, and the result is the same store whatever the batch size.
#[test]
fn import_batch_commits_n_items_per_transaction() {
    let tmp = tempfile::tempdir().unwrap();
    let a = new_store(tmp.path(), "a");
    for i in 1..=7 {
        ok(got(
            &a,
            &[
                "entity",
                "put",
                "node",
                "--id",
                &format!("n{i}"),
                "--props",
                &format!(r#"{{"i": {i}}}"#),
            ],
        ));
    }
    for (from, to) in [
        ("n1", "n2"),
        ("n2", "n3"),
        ("n3", "n4"),
        ("n5", "n6"),
        ("n7", "n1"),
    ] {
        ok(got(&a, &["edge", "add", from, "link", to]));
    }
    let file = tmp.path().join("a.jsonl");
    ok(got(&a, &["export", "--out", file.to_str().unwrap()]));
    let file = file.to_str().unwrap();
    let last_lsn = |s: &Path| -> u64 {
        let st: Json = serde_json::from_str(&ok(got(s, &["--json", "stats"]))).unwrap();
        st["last_lsn"].as_u64().unwrap_or_else(|| panic!("{st}"))
    };
    let lsn_of = |s: &Path, id: &str| -> u64 {
        let h: Json = serde_json::from_str(&ok(got(s, &["--json", "history", id]))).unwrap();
        let [v] = h.as_array().unwrap().as_slice() else {
            panic!("{id}: one version expected: {h}")
        };
        v["lsn"].as_u64().unwrap()
    };

    // 12 items in batches of 3: n1-n3 | n4-n6 | n7 + 2 edges | 3 edges.
    let b = new_store(tmp.path(), "b");
    let before = last_lsn(&b);
    let rep: Json =
        serde_json::from_str(&ok(got(&b, &["--json", "import", file, "--batch", "3"]))).unwrap();
    assert_eq!(
        (&rep["entities_written"], &rep["edges_written"]),
        (&Json::from(7), &Json::from(5)),
        "{rep}"
    );
    assert_eq!(last_lsn(&b), before + 4, "one transaction per batch of 3");
    let lsns: Vec<u64> = (1..=7).map(|i| lsn_of(&b, &format!("n{i}"))).collect();
    let f = before + 1;
    assert_eq!(
        lsns,
        [f, f, f, f + 1, f + 1, f + 1, f + 2],
        "entities by batch"
    );
    assert_eq!(export(&b), export(&a), "the same store as the source");

    // Importing again writes nothing, in any batch size: no new transaction.
    let rep: Json =
        serde_json::from_str(&ok(got(&b, &["--json", "import", file, "--batch", "1"]))).unwrap();
    assert_eq!(
        (&rep["entities_skipped"], &rep["edges_skipped"]),
        (&Json::from(7), &Json::from(5)),
        "{rep}"
    );
    assert_eq!(
        last_lsn(&b),
        before + 4,
        "a second import committed something"
    );

    // One item per transaction, and everything in one (the default 1000).
    let c = new_store(tmp.path(), "c");
    let before = last_lsn(&c);
    ok(got(&c, &["import", file, "--batch", "1"]));
    assert_eq!(last_lsn(&c), before + 12);
    let lsns: Vec<u64> = (1..=7).map(|i| lsn_of(&c, &format!("n{i}"))).collect();
    assert_eq!(lsns, (before + 1..=before + 7).collect::<Vec<_>>());
    assert_eq!(export(&c), export(&a));
    let d = new_store(tmp.path(), "d");
    let before = last_lsn(&d);
    ok(got(&d, &["import", file]));
    assert_eq!(last_lsn(&d), before + 1);
    assert_eq!(export(&d), export(&a));
    // A batch size that is not a number is a usage error, and nothing is written.
    let e = new_store(tmp.path(), "e");
    let o = got(&e, &["import", file, "--batch", "many"]);
    assert_eq!(o.status.code(), Some(2), "{}", common::cli::text(&o));
    assert_eq!(export(&e), "");
}
