//! Long work (import, export, backup, verify) draws a progress bar when stderr
//! is a terminal, and never under `--json` or when stderr is not a terminal.

use std::io::Read;
use std::os::fd::FromRawFd;
use std::process::{Command, Stdio};

/// Runs `got --store STORE ARGS…` with stderr on a new pseudo-terminal;
/// returns (exit code, what the terminal received).
fn on_terminal(store: &std::path::Path, args: &[&str]) -> (i32, String) {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two new descriptors into the integers given.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are new and owned here from now on.
    let (mut master, slave) = unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
        )
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_got"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    let status = child.wait().unwrap();
    // The slave end is closed (the child exited, ours went with `Stdio`): read
    // what is buffered until the terminal reports its end (EIO on Linux).
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    (
        status.code().unwrap(),
        String::from_utf8_lossy(&out).into_owned(),
    )
}

fn got(store: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_got"))
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn long_work_shows_a_progress_bar_on_a_terminal_only() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join(".got");
    assert!(got(&store, &["init"]).status.success());
    let file = tmp.path().join("tasks.jsonl");
    let mut lines = String::new();
    for i in 0..3000 {
        lines.push_str(&format!(
            "{{\"created_at\":1,\"id\":\"T-{i:05}\",\"kind\":\"task\",\"props\":{{\"title\":\"task {i}\",\"status\":\"pending\"}},\"type\":\"entity\",\"updated_at\":1,\"version\":1}}\n"
        ));
    }
    std::fs::write(&file, lines).unwrap();
    let out = tmp.path().join("out.jsonl");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["import", file.to_str().unwrap()], "3000/3000"),
        (vec!["export", "--out", out.to_str().unwrap()], "3000/3000"),
        (vec!["backup", "create"], "backup"),
        (vec!["verify"], "entities"),
        (vec!["validate"], "indexes"),
    ];
    for (args, want) in &cases {
        let (code, term) = on_terminal(&store, args);
        assert_eq!(code, 0, "{args:?}: {term}");
        assert!(
            term.contains(want) && term.contains("[###"),
            "{args:?}: no progress bar on the terminal: {term:?}"
        );
        // Under --json the terminal gets no bar.
        let mut json = vec!["--json"];
        json.extend(args.iter().copied());
        let (code, term) = on_terminal(&store, &json);
        assert_eq!(code, 0, "{json:?}: {term}");
        assert!(
            !term.contains("[#"),
            "{json:?}: a bar under --json: {term:?}"
        );
    }
    // Not a terminal: stderr stays clean.
    let o = got(&store, &["export", "--out", out.to_str().unwrap()]);
    assert!(o.status.success());
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
