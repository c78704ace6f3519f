//! The machine's `git`, run in a sandbox: a temporary `HOME` with no global or
//! system configuration, so that no test reads or writes the user's.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary home for git and got processes of one test.
pub struct Sandbox {
    pub tmp: tempfile::TempDir,
    /// Canonical (so paths printed by processes compare equal).
    pub root: PathBuf,
    home: PathBuf,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let home = root.join("home");
        std::fs::create_dir_all(&home).unwrap();
        Sandbox { tmp, root, home }
    }

    /// The environment every git and got process of the test gets.
    pub fn env(&self, c: &mut Command) {
        // git runs `got merge-driver` and the hooks run `got`: this build's.
        let bin = std::path::Path::new(env!("CARGO_BIN_EXE_got"))
            .parent()
            .unwrap();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![bin.to_path_buf()];
        paths.extend(std::env::split_paths(&path));
        c.env("PATH", std::env::join_paths(paths).unwrap())
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", self.home.join(".gitconfig"))
            .env("GIT_AUTHOR_NAME", "got tests")
            .env("GIT_AUTHOR_EMAIL", "tests@got.invalid")
            .env("GIT_COMMITTER_NAME", "got tests")
            .env("GIT_COMMITTER_EMAIL", "tests@got.invalid")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GOT_DIR")
            .env_remove("GOT_AGENT")
            .env_remove("NO_COLOR");
    }

    /// Runs `git ARGS…` in `dir`; panics with its output unless it succeeded.
    pub fn git(&self, dir: &Path, args: &[&str]) -> String {
        let mut c = Command::new("git");
        c.current_dir(dir).args(args);
        self.env(&mut c);
        let o = c.output().expect("run git");
        assert!(
            o.status.success(),
            "git {args:?} in {}: {}",
            dir.display(),
            super::cli::text(&o)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A `got` command in `dir`, not yet run.
    pub fn got_cmd(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_got"));
        c.current_dir(dir).args(args);
        self.env(&mut c);
        c
    }

    /// Runs `got ARGS…` in `dir`.
    pub fn got(&self, dir: &Path, args: &[&str]) -> Output {
        self.got_cmd(dir, args).output().expect("run got")
    }

    /// A new repository at `root/name` with one commit.
    pub fn repo(&self, name: &str) -> PathBuf {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        self.git(&dir, &["init", "-q", "-b", "main"]);
        std::fs::write(dir.join("README"), "a project\n").unwrap();
        self.git(&dir, &["add", "README"]);
        self.git(&dir, &["commit", "-q", "-m", "first"]);
        dir
    }

    /// A bare remote (`remote.git`, from a repository with one commit) and
    /// `n` clones of it (`clone0`, …), each with `got init` run in it.
    pub fn team(&self, n: usize) -> (PathBuf, Vec<PathBuf>) {
        let seed = self.repo("seed");
        let remote = self.root.join("remote.git");
        self.git(
            &self.root,
            &[
                "clone",
                "-q",
                "--bare",
                seed.to_str().unwrap(),
                remote.to_str().unwrap(),
            ],
        );
        let clones = (0..n)
            .map(|i| {
                let c = self.root.join(format!("clone{i}"));
                self.git(
                    &self.root,
                    &["clone", "-q", remote.to_str().unwrap(), c.to_str().unwrap()],
                );
                let o = self.got(&c, &["init"]);
                assert!(o.status.success(), "got init: {}", super::cli::text(&o));
                c
            })
            .collect();
        (remote, clones)
    }
}
