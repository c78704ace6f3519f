//! Output of the `got` binary run by a test.

use std::process::Output;

/// Exit code, stdout and stderr, for a failure message.
pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `got --store STORE --agent AGENT ARGS…` (the built binary), with
/// `NO_COLOR` and `GOT_AGENT` cleared so the environment cannot change the output.
pub fn got_as(store: &std::path::Path, agent: &str, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_got"))
        .arg("--store")
        .arg(store)
        .args(["--agent", agent])
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("GOT_AGENT")
        .output()
        .unwrap()
}

/// The stdout of a command that must have succeeded (trimmed), else a panic
/// showing its output.
pub fn ok(o: Output) -> String {
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// The JSON document a successful command printed.
pub fn ok_json(o: Output) -> serde_json::Value {
    serde_json::from_str(&ok(o)).unwrap()
}
