//! Finding the store a command means: `--store DIR` or `GOT_DIR`, else the nearest
//! `.got` upwards from the working directory — where a git repository's linked
//! worktrees all lead to the `.got` at the top of its main worktree, so that agents
//! working in separate worktrees of one clone share one store (and its atomic
//! claims).
//!
//! Worktrees are recognised from the files git leaves, without running `git` (a
//! process per command would cost every command milliseconds): a linked
//! worktree's `.git` is a file `gitdir: <dir>`; that directory's `commondir` names
//! the repository's own `.git`, whose parent is the main worktree.
//!
//! Limits: a repository whose common directory is not called `.git` (a bare
//! repository with worktrees) has no main worktree; each of its worktrees is then
//! its own top. Submodules are their own repositories.

use std::fmt;
use std::path::{Path, PathBuf};

/// How the store was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FoundBy {
    /// `--store DIR`.
    Flag,
    /// The `GOT_DIR` environment variable.
    Env,
    /// The nearest `.got` upwards from the working directory.
    Nearest,
    /// The `.got` of the main worktree of the repository whose linked worktree
    /// `worktree` holds the working directory.
    MainWorktree { worktree: PathBuf },
}

impl FoundBy {
    /// A short name for JSON (`flag`, `env`, `nearest`, `main_worktree`).
    pub fn name(&self) -> &'static str {
        match self {
            FoundBy::Flag => "flag",
            FoundBy::Env => "env",
            FoundBy::Nearest => "nearest",
            FoundBy::MainWorktree { .. } => "main_worktree",
        }
    }
}

impl fmt::Display for FoundBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FoundBy::Flag => write!(f, "--store"),
            FoundBy::Env => write!(f, "GOT_DIR"),
            FoundBy::Nearest => write!(f, "the nearest .got above the working directory"),
            FoundBy::MainWorktree { worktree } => write!(
                f,
                "the main worktree's store, from the linked worktree {}",
                worktree.display()
            ),
        }
    }
}

/// A store directory and how it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    pub dir: PathBuf,
    pub found_by: FoundBy,
}

/// Whether `dir` holds a store (its CURRENT).
fn is_store(dir: &Path) -> bool {
    dir.join("CURRENT").is_file()
}

/// What the walk up from the working directory found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    Store(Located),
    /// A `.got` that holds the JSON store of the GoT system got replaces (its
    /// `entities/`, no `CURRENT`): never taken for a got store, nor passed over
    /// for one further up; `got migrate` turns it into one.
    GotJson(PathBuf),
}

/// Whether `dot_got` holds the GoT system's JSON store and no got store.
pub fn holds_got_json(dot_got: &Path) -> bool {
    dot_got.join("entities").is_dir() && !is_store(dot_got)
}

/// The store for a command run in `cwd` without `--store` or `GOT_DIR`: walking
/// up, the first directory with a `.got` store, or whose `.git` leads to a main
/// worktree with one. `None` when there is none.
pub fn find_store(cwd: &Path) -> Option<Located> {
    match find(cwd) {
        Some(Found::Store(l)) => Some(l),
        _ => None,
    }
}

/// [`find_store`], stopping at a `.got` of the GoT system's JSON store.
pub fn find(cwd: &Path) -> Option<Found> {
    for dir in cwd.ancestors() {
        let here = dir.join(".got");
        if is_store(&here) {
            return Some(Found::Store(Located {
                dir: here,
                found_by: FoundBy::Nearest,
            }));
        }
        if holds_got_json(&here) {
            return Some(Found::GotJson(here));
        }
        if let Some(main) = main_worktree(dir) {
            let store = main.join(".got");
            if main != dir && is_store(&store) {
                return Some(Found::Store(Located {
                    dir: store,
                    found_by: FoundBy::MainWorktree {
                        worktree: dir.to_path_buf(),
                    },
                }));
            }
            if main != dir && holds_got_json(&store) {
                return Some(Found::GotJson(store));
            }
        }
    }
    None
}

/// Where `got init` without `--store` creates the store: at the top of the main
/// worktree when `cwd` is inside a git work tree (a linked worktree included),
/// else `cwd/.got`.
pub fn init_dir(cwd: &Path) -> PathBuf {
    git_top(cwd)
        .and_then(|top| main_worktree(&top))
        .unwrap_or_else(|| cwd.to_path_buf())
        .join(".got")
}

/// The top of the work tree holding `cwd`: the nearest directory upwards with a
/// `.git` (directory or file).
pub fn git_top(cwd: &Path) -> Option<PathBuf> {
    cwd.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// For a work tree's top `dir` (one holding `.git`): the repository's main
/// worktree. `dir` itself for a main worktree (or a submodule); for a linked
/// worktree, the parent of the common `.git` directory. `None` when `dir` holds
/// no `.git`, or its `.git` file cannot be read.
pub fn main_worktree(dir: &Path) -> Option<PathBuf> {
    let dot_git = dir.join(".git");
    let meta = std::fs::metadata(&dot_git).ok()?;
    if meta.is_dir() {
        return Some(dir.to_path_buf());
    }
    // A linked worktree (or a submodule): `gitdir: <path>`.
    let text = std::fs::read_to_string(&dot_git).ok()?;
    let gitdir = text.lines().find_map(|l| l.strip_prefix("gitdir:"))?.trim();
    let gitdir = resolve(dir, gitdir);
    let Ok(common) = std::fs::read_to_string(gitdir.join("commondir")) else {
        // No common directory: a submodule, its own main worktree.
        return Some(dir.to_path_buf());
    };
    let common = resolve(&gitdir, common.trim());
    if common.file_name().is_some_and(|n| n == ".git") {
        common.parent().map(Path::to_path_buf)
    } else {
        // A bare repository's worktree: there is no main worktree.
        Some(dir.to_path_buf())
    }
}

/// `path` as git writes it in `.git` and `commondir`: absolute, or relative to
/// `base`; `..` resolved (through the file system when it exists).
fn resolve(base: &Path, path: &str) -> PathBuf {
    let p = base.join(path);
    std::fs::canonicalize(&p).unwrap_or(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The files `git worktree add` leaves, written by hand.
    fn fake_repo() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let main = root.join("main");
        let wt = root.join("wt1");
        std::fs::create_dir_all(main.join(".git/worktrees/wt1")).unwrap();
        std::fs::create_dir_all(wt.join("src/deep")).unwrap();
        std::fs::write(
            wt.join(".git"),
            format!("gitdir: {}\n", main.join(".git/worktrees/wt1").display()),
        )
        .unwrap();
        std::fs::write(main.join(".git/worktrees/wt1/commondir"), "../..\n").unwrap();
        (tmp, main, wt)
    }

    fn make_store(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("CURRENT"), b"x").unwrap();
    }

    #[test]
    fn a_linked_worktree_leads_to_the_main_worktrees_store() {
        let (_tmp, main, wt) = fake_repo();
        assert_eq!(find_store(&wt.join("src/deep")), None);
        assert_eq!(init_dir(&wt.join("src/deep")), main.join(".got"));
        make_store(&main.join(".got"));
        let found = find_store(&wt.join("src/deep")).unwrap();
        assert_eq!(found.dir, main.join(".got"));
        assert_eq!(
            found.found_by,
            FoundBy::MainWorktree {
                worktree: wt.clone()
            }
        );
        // From the main worktree itself it is simply the nearest.
        let found = find_store(&main).unwrap();
        assert_eq!(
            (found.dir, found.found_by),
            (main.join(".got"), FoundBy::Nearest)
        );
    }

    #[test]
    fn a_relative_gitdir_and_a_store_in_the_worktree_itself() {
        let (_tmp, main, wt) = fake_repo();
        std::fs::write(wt.join(".git"), "gitdir: ../main/.git/worktrees/wt1\n").unwrap();
        assert_eq!(main_worktree(&wt), Some(main.clone()));
        // A store made in the worktree itself (by --store) is the nearest one.
        make_store(&main.join(".got"));
        make_store(&wt.join(".got"));
        assert_eq!(find_store(&wt).unwrap().dir, wt.join(".got"));
    }

    #[test]
    fn outside_git_init_uses_the_working_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let d = std::fs::canonicalize(tmp.path()).unwrap();
        assert_eq!(init_dir(&d), d.join(".got"));
        assert_eq!(main_worktree(&d), None);
    }
}
