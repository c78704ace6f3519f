//! `got sync` and `got merge-driver` on a store of N tasks (default 10,000) with
//! 100 changed since the last sync: issue 11's benchmark. Not a test: numbers
//! for docs/benchmarks.md.
//!
//! `cargo build --release && cargo run --release --example sync_bench -- [N] [RUNS]`
//! (needs `git`). The remote is a bare repository on the same disk, so what is
//! measured is sync's own work and git's, not a network. Prints, as medians of
//! RUNS: the whole `got sync` process with 100 tasks changed; its own part
//! measured in process, for 100 tasks changed here (export the store, write the
//! file) and for a pulled file with 100 changed elsewhere (read it, import it,
//! write the merge); `got merge-driver` on three versions of the file (base, and two
//! sides that each changed 100 other tasks); and the tracked file's size
//! against `got export`'s.
use got::sync::{cycle, exchange, replica};
use got::tasks::{self, NewTask, TaskUpdate};
use got::{Options, Store};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@got.invalid")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@got.invalid")
        .output()
        .expect("git");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn got_cmd(dir: &Path, args: &[&str]) -> Command {
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("got");
    let mut c = Command::new(bin);
    c.current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@got.invalid")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@got.invalid");
    c
}

fn time(mut c: Command) -> Duration {
    let t = Instant::now();
    let o = c.output().expect("run");
    let d = t.elapsed();
    assert!(
        o.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    d
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn change(store: &Store, ids: &[String], from: usize, round: usize) {
    for id in ids.iter().skip(from).take(100) {
        let u = TaskUpdate {
            title: Some(format!("{id} changed in round {round}")),
            ..TaskUpdate::default()
        };
        tasks::update(store, id, &u).unwrap();
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let runs: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let remote = root.join("remote.git");
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(
        root,
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            remote.to_str().unwrap(),
        ],
    );
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README"), "bench\n").unwrap();
    git(&repo, &["add", "README"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    git(
        &repo,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    assert!(got_cmd(&repo, &["init"]).output().unwrap().status.success());
    let dir = repo.join(".got");
    let store = Store::open(&dir, Options::default()).unwrap();
    let t0 = Instant::now();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let t = NewTask {
            title: format!("task {i} of the benchmark"),
            labels: vec![["ui", "db", "docs"][i % 3].to_string()],
            priority: Some(["high", "medium", "low"][i % 3].to_string()),
            ..NewTask::default()
        };
        ids.push(tasks::create(&store, "bench", &t).unwrap().id);
    }
    eprintln!("{n} tasks created in {:.1?}", t0.elapsed());
    drop(store);
    // The first sync: every task goes out.
    let first = time(got_cmd(&repo, &["sync"]));
    eprintln!("first got sync (all {n} tasks out): {first:.1?}");

    let mut whole = Vec::new();
    let mut own = Vec::new();
    for round in 0..runs {
        let store = Store::open(&dir, Options::default()).unwrap();
        change(&store, &ids, (round * 100) % n, round);
        drop(store);
        whole.push(time(got_cmd(&repo, &["sync"])));
        // Sync's own part, in process, as sync does it with 100 tasks changed
        // here (the file is the one the last sync wrote: only an export).
        let store = Store::open(&dir, Options::default()).unwrap();
        change(&store, &ids, (round * 100 + 50) % n, round + 1000);
        let t = Instant::now();
        let before = std::fs::read(repo.join(".got/tracked.jsonl")).unwrap();
        assert!(exchange::file_recorded(&store, &before).unwrap());
        let doc = exchange::export_file(&store, 0).unwrap();
        let bytes = doc.to_bytes();
        cycle::changes_bytes(&before, &bytes);
        cycle::write_bytes(&repo, &bytes).unwrap();
        exchange::record_file(&store, &bytes).unwrap();
        own.push(t.elapsed());
        drop(store);
        time(got_cmd(&repo, &["sync"]));
    }

    // Three versions of the file: base, and two sides that changed 100 other
    // tasks each (written by two stores, as two clones would).
    let base = std::fs::read(repo.join(".got/tracked.jsonl")).unwrap();
    let side = |name: &str, from: usize| {
        let d = root.join(name);
        let s = Store::open(
            &d,
            Options {
                create_if_missing: true,
                ..Options::default()
            },
        )
        .unwrap();
        exchange::import(&s, &got::sync::Doc::parse(&base).unwrap()).unwrap();
        change(&s, &ids, from, 7);
        exchange::export(&s).unwrap().to_bytes()
    };
    let ours = side("ours", 1000 % n);
    let theirs = side("theirs", 2000 % n);
    // A pulled file with another clone's 100 changes, imported.
    let mut incoming = Vec::new();
    for _ in 0..runs {
        let copy = root.join("copy");
        let _ = std::fs::remove_dir_all(&copy);
        let s = Store::open(
            &copy,
            Options {
                create_if_missing: true,
                ..Options::default()
            },
        )
        .unwrap();
        exchange::import(&s, &got::sync::Doc::parse(&base).unwrap()).unwrap();
        let t = Instant::now();
        let (_, merged) = exchange::import_file(&s, &theirs, 0).unwrap();
        let bytes = merged.to_bytes();
        cycle::changes_bytes(&base, &bytes);
        std::fs::write(root.join("merged.jsonl"), &bytes).unwrap();
        exchange::record_file(&s, &bytes).unwrap();
        incoming.push(t.elapsed());
    }
    if std::env::var_os("SYNC_BENCH_PARTS").is_some() {
        // The store read as a document: as sync reads it (lines unchanged since
        // recorded left unread), and every line read.
        let store = Store::open(&dir, Options::default()).unwrap();
        let mut tx = store.begin().unwrap();
        let t = Instant::now();
        let snap = replica::snapshot(&mut tx, replica::Reads::Whole(&|_, _| false)).unwrap();
        let t_snap = t.elapsed();
        let t = Instant::now();
        let whole = replica::snapshot(&mut tx, replica::Reads::Whole(&|_, _| true)).unwrap();
        let t_whole = t.elapsed();
        let t = Instant::now();
        let bytes = exchange::Merged {
            doc: snap.doc,
            unchanged: snap.unchanged,
        }
        .to_bytes();
        let t_bytes = t.elapsed();
        let t = Instant::now();
        let parsed = got::sync::Doc::parse(&bytes).unwrap();
        let t_parse = t.elapsed();
        let t = Instant::now();
        let _ = got::sync::merge(&parsed, &whole.doc);
        let t_merge = t.elapsed();
        let t = Instant::now();
        let _ = tx.list(None, None).unwrap();
        let t_list = t.elapsed();
        let t = Instant::now();
        let _ = tx.meta_with_prefix("sync/e/").unwrap();
        let t_meta = t.elapsed();
        eprintln!(
            "parts: snapshot as sync reads it {t_snap:.1?} (list {t_list:.1?}, meta scan {t_meta:.1?}), \
             every line read {t_whole:.1?}; the file's bytes {t_bytes:.1?}; \
             whole-file parse {t_parse:.1?}, whole merge {t_merge:.1?}"
        );
    }
    let mut driver = Vec::new();
    for _ in 0..runs {
        std::fs::write(root.join("O"), &base).unwrap();
        std::fs::write(root.join("A"), &ours).unwrap();
        std::fs::write(root.join("B"), &theirs).unwrap();
        driver.push(time(got_cmd(
            root,
            &["merge-driver", "O", "A", "B", ".got/tracked.jsonl"],
        )));
    }

    let export = got_cmd(&repo, &["export"]).output().unwrap().stdout;
    let tracked = std::fs::metadata(repo.join(".got/tracked.jsonl"))
        .unwrap()
        .len();
    println!("sync_bench: {n} tasks, 100 changed per sync, medians of {runs}");
    println!(
        "  got sync, whole process (local bare remote): {:.1?}",
        median(whole)
    );
    println!(
        "  sync's own work, 100 changed here (export, write): {:.1?}",
        median(own)
    );
    println!(
        "  sync's own work, 100 pulled (read, import, write): {:.1?}",
        median(incoming)
    );
    println!(
        "  got merge-driver on three versions:          {:.1?}",
        median(driver)
    );
    println!(
        "  tracked file {} bytes, got export {} bytes: {:.2}x",
        tracked,
        export.len(),
        tracked as f64 / export.len() as f64
    );
}
