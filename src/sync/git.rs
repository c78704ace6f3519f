//! The `git` command line, for `got init` in a work tree, `got sync` and the
//! hooks: the user's own git, credentials, hooks and config (as jj and beads
//! do), never a library. Only these commands spawn git; every other command
//! finds its store from the files git leaves ([`crate::locate`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The tracked file's path in a work tree.
pub const TRACKED_PATH: &str = ".got/tracked.jsonl";
/// What `.got/.gitignore` holds: only the tracked file (and this file) is ever
/// committed; the store's own files stay on the machine.
pub const GITIGNORE: &str =
    "# Written by got: a clone shares only the tracked file; the store's own\n\
# files (WAL, runs, locks, backups) stay on this machine.\n\
*\n\
!.gitignore\n\
!tracked.jsonl\n";
/// got's line in `.gitattributes`.
pub const ATTRIBUTES_LINE: &str = ".got/tracked.jsonl merge=got";
/// The merge driver git runs for the tracked file.
pub const DRIVER: &str = "got merge-driver %O %A %B %P";
pub const DRIVER_NAME: &str = "got: merge the tracked file of the task store";

/// A git command that failed, or git missing.
#[derive(Debug)]
pub enum GitError {
    /// No `git` could be run.
    NoGit(String),
    /// `git ARGS` exited non-zero: its arguments and what it printed.
    Failed { args: String, output: String },
}

impl fmt::Display for GitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GitError::NoGit(e) => write!(f, "git could not be run ({e}); install git"),
            GitError::Failed { args, output } => {
                write!(f, "git {args} failed: {}", output.trim())
            }
        }
    }
}

/// Runs `git ARGS` in `dir`, its output whatever the exit status.
pub fn run(dir: &Path, args: &[&str]) -> Result<Output, GitError> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        // Never wait for a user at a prompt: a sync runs unattended.
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .map_err(|e| GitError::NoGit(e.to_string()))
}

/// Runs `git ARGS` in `dir` and returns its stdout, trimmed; an error unless it
/// exited 0.
pub fn ok(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let o = run(dir, args)?;
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
    } else {
        Err(failed(args, &o))
    }
}

pub fn failed(args: &[&str], o: &Output) -> GitError {
    GitError::Failed {
        args: args.join(" "),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        ),
    }
}

/// Replaces `path` with `bytes` so that no reader and no crash sees half of
/// it: written beside it under a temporary name, synced, renamed over it, and
/// the directory synced. The file keeps its permissions (a new one gets
/// `rw-r--r--`, as a work tree's files have).
pub fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let perm = std::fs::metadata(path)
        .map(|m| m.permissions())
        .unwrap_or_else(|_| std::fs::Permissions::from_mode(0o644));
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
    tmp.as_file().set_permissions(perm)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(&dir)?.sync_all()
}

/// The top of the work tree holding `dir`, by git; `None` outside one.
pub fn top(dir: &Path) -> Result<Option<PathBuf>, GitError> {
    let o = run(dir, &["rev-parse", "--show-toplevel"])?;
    Ok(o.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())))
}

/// What [`setup`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Setup {
    pub wrote_gitignore: bool,
    pub wrote_attributes: bool,
    pub registered_driver: bool,
}

/// Makes work tree `top` ready for sync: `.got/.gitignore`, got's line in
/// `.gitattributes`, and the merge driver in the repository's config (which a
/// clone does not carry, so every `got init` and `got sync` checks it).
pub fn setup(top: &Path) -> Result<Setup, GitError> {
    let mut out = Setup::default();
    let io = |what: &Path, e: std::io::Error| GitError::Failed {
        args: format!("(writing {})", what.display()),
        output: e.to_string(),
    };
    let got_dir = top.join(".got");
    std::fs::create_dir_all(&got_dir).map_err(|e| io(&got_dir, e))?;
    let ignore = got_dir.join(".gitignore");
    if std::fs::read_to_string(&ignore).ok().as_deref() != Some(GITIGNORE) {
        replace_file(&ignore, GITIGNORE.as_bytes()).map_err(|e| io(&ignore, e))?;
        out.wrote_gitignore = true;
    }
    let attrs = top.join(".gitattributes");
    let text = std::fs::read_to_string(&attrs).unwrap_or_default();
    if !text.lines().any(|l| l.trim() == ATTRIBUTES_LINE) {
        let mut new = text.clone();
        if !new.is_empty() && !new.ends_with('\n') {
            new.push('\n');
        }
        new.push_str(ATTRIBUTES_LINE);
        new.push('\n');
        replace_file(&attrs, new.as_bytes()).map_err(|e| io(&attrs, e))?;
        out.wrote_attributes = true;
    }
    let current = run(top, &["config", "--get", "merge.got.driver"])?;
    if String::from_utf8_lossy(&current.stdout).trim() != DRIVER {
        ok(top, &["config", "merge.got.name", DRIVER_NAME])?;
        ok(top, &["config", "merge.got.driver", DRIVER])?;
        out.registered_driver = true;
    }
    Ok(out)
}

/// The files of a work tree that got commits, and only those.
pub fn own_files() -> [&'static str; 3] {
    [TRACKED_PATH, ".got/.gitignore", ".gitattributes"]
}

/// Commits got's own files if they changed, leaving every other file as it is
/// (staged or not). Returns whether a commit was made.
pub fn commit_own(top: &Path, message: &str) -> Result<bool, GitError> {
    let files: Vec<&str> = own_files()
        .into_iter()
        .filter(|f| top.join(f).exists())
        .collect();
    if files.is_empty() {
        return Ok(false);
    }
    let mut status = vec!["status", "--porcelain", "--untracked-files=all", "--"];
    status.extend(&files);
    if ok(top, &status)?.is_empty() {
        return Ok(false);
    }
    let mut add = vec!["add", "--"];
    add.extend(&files);
    ok(top, &add)?;
    // `commit -- paths` commits those paths alone (`--only`): whatever else the
    // user staged stays staged, uncommitted.
    let mut commit = vec!["commit", "-q", "-m", message, "--"];
    commit.extend(&files);
    ok(top, &commit)?;
    Ok(true)
}
