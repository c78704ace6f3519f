//! `got sync`: the store, the tracked file and the remote brought together, in
//! an order where each step fixes one way other tools lost data
//! (docs/sync.md, "What sync does"):
//!
//! 1. import the tracked file as the work tree has it (git may have moved it
//!    without got: a pull, a checkout);
//! 2. export the store over it and commit got's own files alone, if changed;
//! 3. pull the branch (the merge driver joins the tracked file);
//! 4. import the merged file; export again and commit if the merge changed
//!    anything;
//! 5. push; when another clone pushed first, pull, import, export and push
//!    again (up to [`PUSH_ATTEMPTS`] times).
//!
//! Every step is safe to repeat: the store commits data and clocks together,
//! the file is replaced atomically, and git commits are atomic. Killed at any
//! point, the next `got sync` finishes the work.

use super::doc::{Body, Doc};
use super::exchange;
use super::git::{self, GitError, Setup};
use super::replica::Applied;
use crate::{Error, Store};
use std::fmt;
use std::path::{Path, PathBuf};

/// Pushes tried before giving up on a remote that keeps moving.
pub const PUSH_ATTEMPTS: u32 = 5;
/// How long a tombstone is kept when nothing else is said.
pub const DEFAULT_RETENTION_DAYS: u64 = 90;

#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// The remote to use when the branch has no upstream.
    pub remote: String,
    pub push: bool,
    pub retention_days: u64,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            remote: "origin".into(),
            push: true,
            retention_days: DEFAULT_RETENTION_DAYS,
        }
    }
}

/// What changed in the records of the tracked file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub created: Vec<String>,
    pub changed: Vec<String>,
    pub deleted: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.changed.is_empty() && self.deleted.is_empty()
    }
}

/// What a sync did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub branch: String,
    pub remote: Option<String>,
    /// What came into the store from the file and the remote.
    pub incoming: Changes,
    /// What the commits sync made carried out.
    pub outgoing: Changes,
    /// Claims of this clone's agents that another clone won.
    pub lost_claims: Vec<(String, String, Option<String>)>,
    /// Dependency cycles in the merged state (`got validate` reports them too).
    pub cycles: Vec<String>,
    pub commits: u32,
    pub pulled: bool,
    pub pushed: bool,
    /// Pushes refused because another clone pushed first.
    pub push_retries: u32,
    pub setup: Setup,
}

/// Why a sync stopped.
#[derive(Debug)]
pub enum SyncError {
    NoGit(String),
    NotARepository(PathBuf),
    /// The branch has no upstream and the named remote does not exist.
    NoRemote(String),
    /// HEAD is detached: there is no branch to sync.
    NoBranch,
    /// The pull stopped at conflicts in these files (not the tracked file):
    /// the user resolves them; the store is unchanged.
    MergeConflict(Vec<String>),
    /// The remote refused every push.
    PushRefused(u32),
    /// The tracked file cannot be read.
    Tracked {
        path: PathBuf,
        error: super::ParseError,
    },
    Git(GitError),
    Store(Error),
    /// Reading or writing a file of the work tree.
    Io(String),
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncError::NoGit(e) => write!(f, "git could not be run ({e}); got sync needs git"),
            SyncError::NotARepository(d) => {
                write!(f, "{} is not in a git work tree; got sync needs one", d.display())
            }
            SyncError::NoRemote(r) => write!(
                f,
                "the branch has no upstream and there is no remote {r:?}; add one (git remote add {r} URL) or name one with --remote"
            ),
            SyncError::NoBranch => write!(f, "HEAD is detached; check out a branch to sync"),
            SyncError::MergeConflict(files) => write!(
                f,
                "the pull stopped at a merge conflict in {}: resolve it, commit, and run got sync again (the store is unchanged)",
                files.join(", ")
            ),
            SyncError::PushRefused(n) => write!(
                f,
                "the remote refused {n} pushes in a row (other clones keep pushing); run got sync again"
            ),
            SyncError::Tracked { path, error } => write!(f, "{}: {error}", path.display()),
            SyncError::Git(e) => write!(f, "{e}"),
            SyncError::Store(e) => write!(f, "{e}"),
            SyncError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<GitError> for SyncError {
    fn from(e: GitError) -> Self {
        match e {
            GitError::NoGit(m) => SyncError::NoGit(m),
            e => SyncError::Git(e),
        }
    }
}

impl From<Error> for SyncError {
    fn from(e: Error) -> Self {
        SyncError::Store(e)
    }
}

/// For the crash tests: `GOT_FAILPOINT=sync:<step>` (see [`crate::failpoint`]).
fn failpoint(step: &str) {
    crate::failpoint("sync", step);
}

/// What `got init` (and `got migrate`) did in a git work tree once the store
/// existed.
#[derive(Debug, Default)]
pub struct WorkTreeInit {
    /// The git setup: `.gitignore`, `.gitattributes`, the merge driver.
    pub setup: Setup,
    /// Set when git could not be run: the store is made, the merge driver is
    /// not registered (sync will need git, and says so then).
    pub no_git: Option<String>,
    /// What the tracked file a clone brought added to the store.
    pub imported: Option<Changes>,
}

/// The git setup of work tree `top` for the store at `store_dir` (opened with
/// `options`), and an import of the tracked file a clone brought.
pub fn init_in_work_tree(
    top: &Path,
    store_dir: &Path,
    options: crate::Options,
) -> Result<WorkTreeInit, SyncError> {
    let mut init = WorkTreeInit::default();
    match git::setup(top) {
        Ok(s) => init.setup = s,
        Err(GitError::NoGit(e)) => init.no_git = Some(e),
        Err(e) => return Err(e.into()),
    }
    if let Some(doc) = read_tracked(top)? {
        let store = Store::open(store_dir, options)?;
        let (a, _) = exchange::import(&store, &doc)?;
        init.imported = Some(Changes {
            created: a.created,
            changed: a.changed,
            deleted: a.deleted,
        });
    }
    Ok(init)
}

/// Reads the tracked file of work tree `top` (`None`: there is none yet).
pub fn read_tracked(top: &Path) -> Result<Option<Doc>, SyncError> {
    let path = top.join(git::TRACKED_PATH);
    match std::fs::read(&path) {
        Ok(b) => Doc::parse(&b)
            .map(Some)
            .map_err(|error| SyncError::Tracked { path, error }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SyncError::Io(format!("{}: {e}", path.display()))),
    }
}

/// Replaces the tracked file with `doc`'s bytes (written aside, synced,
/// renamed): a reader sees the old file or the new, never half. Returns whether
/// the bytes changed.
pub fn write_tracked(top: &Path, doc: &Doc) -> Result<bool, SyncError> {
    write_bytes(top, &doc.to_bytes())
}

/// [`write_tracked`] of bytes already made.
pub fn write_bytes(top: &Path, bytes: &[u8]) -> Result<bool, SyncError> {
    let path = top.join(git::TRACKED_PATH);
    if std::fs::read(&path).ok().as_deref() == Some(bytes) {
        return Ok(false);
    }
    git::replace_file(&path, bytes)
        .map_err(|e| SyncError::Io(format!("{}: {e}", path.display())))?;
    Ok(true)
}

/// The records that differ between two documents, by id (edges count for the
/// entity they leave).
pub fn changes(before: &Doc, after: &Doc) -> Changes {
    let mut c = Changes::default();
    for (id, e) in &after.entities {
        let was = before.entities.get(id);
        let live = |b: &Body| matches!(b, Body::Live(_));
        match (was, &e.body) {
            (Some(w), _) if w == e => {}
            (None | Some(_), Body::Live(_)) if was.is_none_or(|w| !live(&w.body)) => {
                c.created.push(id.clone())
            }
            (Some(w), Body::Deleted(_)) if live(&w.body) => c.deleted.push(id.clone()),
            (Some(_), Body::Live(_)) => c.changed.push(id.clone()),
            _ => {}
        }
    }
    for (k, e) in &after.edges {
        if before.edges.get(k) != Some(e)
            && !c.created.contains(&k.0)
            && !c.deleted.contains(&k.0)
            && !c.changed.contains(&k.0)
        {
            c.changed.push(k.0.clone());
        }
    }
    c.changed.sort();
    c
}

/// [`changes`] between two files' bytes, reading only the records whose lines
/// differ (both files as got writes them; else both are read whole).
pub fn changes_bytes(before: &[u8], after: &[u8]) -> Changes {
    let (Ok(b), Ok(a)) = (std::str::from_utf8(before), std::str::from_utf8(after)) else {
        return Changes::default();
    };
    let lines: std::collections::BTreeSet<&str> = b.lines().collect();
    let now: std::collections::BTreeSet<&str> = a.lines().collect();
    let mut old = Doc::default();
    let mut new = Doc::default();
    for l in lines.difference(&now) {
        let _ = old.insert_line(l);
    }
    for l in now.difference(&lines) {
        let _ = new.insert_line(l);
    }
    // Records whose line did not change are the same on both sides.
    let mut c = changes(&old, &new);
    c.created.sort();
    c.deleted.sort();
    c
}

fn add(into: &mut Changes, a: &Applied) {
    for (from, to) in [
        (&a.created, &mut into.created),
        (&a.changed, &mut into.changed),
        (&a.deleted, &mut into.deleted),
    ] {
        for id in from {
            if !to.contains(id) {
                to.push(id.clone());
            }
        }
    }
}

/// Imports the work tree's tracked file, exports the store over it and
/// commits got's files if they changed; what came in is added to `report`.
fn import_export_commit(
    store: &Store,
    top: &Path,
    opts: &SyncOptions,
    report: &mut Report,
    message: &str,
    step: &str,
) -> Result<(), SyncError> {
    let path = top.join(git::TRACKED_PATH);
    let before = match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(SyncError::Io(format!("{}: {e}", path.display()))),
    };
    let now = store.now_ms().max(0) as u64;
    let cutoff = now.saturating_sub(opts.retention_days.saturating_mul(86_400_000));
    // The file as this store last wrote it holds nothing the store lacks: no
    // need to read it again.
    let fresh = match &before {
        Some(b) => !exchange::file_recorded(store, b)?,
        None => false,
    };
    let doc = if fresh {
        let bytes = before.as_deref().expect("read");
        let (applied, merged) =
            exchange::import_file(store, bytes, cutoff).map_err(|e| match e {
                exchange::ImportError::Parse(error) => SyncError::Tracked {
                    path: path.clone(),
                    error,
                },
                exchange::ImportError::Store(e) => e.into(),
            })?;
        add(&mut report.incoming, &applied);
        report.lost_claims.extend(applied.lost_claims);
        failpoint(&format!("{step}-imported"));
        merged
    } else {
        failpoint(&format!("{step}-imported"));
        exchange::export_file(store, cutoff)?
    };
    let after = doc.to_bytes();
    let out = changes_bytes(before.as_deref().unwrap_or_default(), &after);
    write_bytes(top, &after)?;
    exchange::record_file(store, &after)?;
    failpoint(&format!("{step}-exported"));
    let message = if out.is_empty() {
        message.to_string()
    } else {
        format!(
            "{message}: {} created, {} changed, {} deleted",
            out.created.len(),
            out.changed.len(),
            out.deleted.len()
        )
    };
    if git::commit_own(top, &message)? {
        report.commits += 1;
        for (from, to) in [
            (out.created, &mut report.outgoing.created),
            (out.changed, &mut report.outgoing.changed),
            (out.deleted, &mut report.outgoing.deleted),
        ] {
            for id in from {
                if !to.contains(&id) {
                    to.push(id);
                }
            }
        }
    }
    failpoint(&format!("{step}-committed"));
    Ok(())
}

/// Where the branch syncs: its upstream, else `opts.remote`'s branch of the
/// same name. `(remote, branch, has upstream)`.
fn target(top: &Path, opts: &SyncOptions) -> Result<(String, String, bool), SyncError> {
    let head = git::run(top, &["symbolic-ref", "--quiet", "--short", "HEAD"])?;
    if !head.status.success() {
        return Err(SyncError::NoBranch);
    }
    let branch = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let remote = git::run(
        top,
        &["config", "--get", &format!("branch.{branch}.remote")],
    )?;
    if remote.status.success() {
        let r = String::from_utf8_lossy(&remote.stdout).trim().to_string();
        return Ok((r, branch, true));
    }
    if !git::run(top, &["remote", "get-url", &opts.remote])?
        .status
        .success()
    {
        return Err(SyncError::NoRemote(opts.remote.clone()));
    }
    Ok((opts.remote.clone(), branch, false))
}

/// Pulls; `Ok(false)` when the remote has no such branch yet.
fn pull(top: &Path, remote: &str, branch: &str, upstream: bool) -> Result<bool, SyncError> {
    if !upstream {
        let o = git::run(
            top,
            &["ls-remote", "--exit-code", "--heads", remote, branch],
        )?;
        match o.status.code() {
            Some(0) => {}
            Some(2) => return Ok(false),
            _ => return Err(git::failed(&["ls-remote", remote, branch], &o).into()),
        }
    }
    let args: Vec<&str> = if upstream {
        vec!["pull", "-q", "--no-rebase", "--no-edit"]
    } else {
        vec!["pull", "-q", "--no-rebase", "--no-edit", remote, branch]
    };
    let o = git::run(top, &args)?;
    if o.status.success() {
        return Ok(true);
    }
    let conflicted = git::ok(top, &["diff", "--name-only", "--diff-filter=U"])?;
    if !conflicted.is_empty() {
        return Err(SyncError::MergeConflict(
            conflicted.lines().map(str::to_string).collect(),
        ));
    }
    Err(git::failed(&args, &o).into())
}

/// `got sync` in work tree `top` on `store` (docs/sync.md).
pub fn sync(store: &Store, top: &Path, opts: &SyncOptions) -> Result<Report, SyncError> {
    let mut report = Report {
        setup: git::setup(top)?,
        ..Report::default()
    };
    failpoint("start");
    // A merge left unfinished (by the user, or a sync killed mid-pull) is the
    // user's to finish: never commit over it.
    let pending = git::ok(top, &["diff", "--name-only", "--diff-filter=U"])?;
    if !pending.is_empty() {
        return Err(SyncError::MergeConflict(
            pending.lines().map(str::to_string).collect(),
        ));
    }
    import_export_commit(store, top, opts, &mut report, "got sync", "local")?;
    let (remote, branch, upstream) = match target(top, opts) {
        Ok(t) => t,
        Err(SyncError::NoRemote(r)) if !opts.push => {
            // Nothing to pull from and nothing to push: the local commit is all.
            report.remote = None;
            report.branch = git::ok(top, &["symbolic-ref", "--short", "HEAD"])?;
            let _ = r;
            return finish(store, report);
        }
        Err(e) => return Err(e),
    };
    report.branch = branch.clone();
    report.remote = Some(remote.clone());
    let mut has_upstream = upstream;
    for attempt in 0..PUSH_ATTEMPTS {
        failpoint("pull");
        if pull(top, &remote, &branch, has_upstream)? {
            report.pulled = true;
            import_export_commit(store, top, opts, &mut report, "got sync: merge", "merged")?;
        }
        if !opts.push {
            return finish(store, report);
        }
        failpoint("push");
        let mut args = vec!["push", "-q"];
        if !has_upstream {
            args.push("--set-upstream");
        }
        args.extend([remote.as_str(), branch.as_str()]);
        let o = git::run(top, &args)?;
        if o.status.success() {
            report.pushed = true;
            failpoint("pushed");
            return finish(store, report);
        }
        let text = String::from_utf8_lossy(&o.stderr).to_string();
        let refused = ["rejected", "fetch first", "non-fast-forward"]
            .iter()
            .any(|m| text.contains(m));
        if !refused {
            return Err(git::failed(&args, &o).into());
        }
        report.push_retries = attempt + 1;
        // The branch exists on the remote now, whoever made it.
        has_upstream = has_upstream
            || git::run(
                top,
                &["config", "--get", &format!("branch.{branch}.remote")],
            )?
            .status
            .success();
    }
    Err(SyncError::PushRefused(PUSH_ATTEMPTS))
}

fn finish(store: &Store, mut report: Report) -> Result<Report, SyncError> {
    let mut tx = store.begin()?;
    let v = crate::validate::validate(&mut tx, store.now_ms())?;
    report.cycles = v
        .problems
        .into_iter()
        .filter(|p| p.starts_with("dependency cycle"))
        .collect();
    Ok(report)
}
