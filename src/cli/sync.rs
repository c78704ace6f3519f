//! `got sync`, `got merge-driver`, `got hooks`, and what `got init` does in a
//! git work tree: parsing and printing; the work is in `got::sync`.

use super::args::{HooksCmd, SyncArgs};
use super::ctx::{cwd, Ctx};
use super::{exit, CmdResult, Failure};
use got::sync::cycle::{self, Changes, Report, SyncError, SyncOptions};
use got::sync::{exchange, git};
use serde_json::json;
use std::path::{Path, PathBuf};

impl From<SyncError> for Failure {
    fn from(e: SyncError) -> Self {
        let (code, exit) = match e {
            SyncError::Store(e) => return Failure::from(e),
            SyncError::NoGit(_) => ("no_git", exit::NO_GIT),
            SyncError::NotARepository(_) => ("not_a_repository", exit::NOT_A_REPOSITORY),
            SyncError::NoRemote(_) => ("no_remote", exit::NO_REMOTE),
            SyncError::NoBranch => ("no_branch", exit::NO_BRANCH),
            SyncError::MergeConflict(_) => ("merge_conflict", exit::MERGE_CONFLICT),
            SyncError::PushRefused(_) => ("push_refused", exit::PUSH_REFUSED),
            SyncError::Tracked { .. } => ("tracked_file", exit::INVALID),
            SyncError::Git(_) => ("git", exit::ERROR),
            SyncError::Io(_) => ("io", exit::ERROR),
        };
        Failure::new(code, exit, e.to_string())
    }
}

/// The top of the git work tree holding the working directory.
fn work_top() -> Result<PathBuf, Failure> {
    let cwd = cwd()?;
    match git::top(&cwd).map_err(SyncError::from)? {
        Some(t) => Ok(t),
        None => Err(SyncError::NotARepository(cwd).into()),
    }
}

fn changes_json(c: &Changes) -> serde_json::Value {
    json!({"created": c.created, "changed": c.changed, "deleted": c.deleted})
}

fn changes_text(c: &Changes) -> String {
    format!(
        "{} created, {} changed, {} deleted",
        c.created.len(),
        c.changed.len(),
        c.deleted.len()
    )
}

fn lost_text(task: &str, lost_by: &str, won_by: &Option<String>) -> String {
    match won_by {
        Some(w) => format!("claim of {task} by {lost_by} lost to {w}"),
        None => format!("claim of {task} by {lost_by} ended on another clone"),
    }
}

fn report_json(r: &Report) -> serde_json::Value {
    json!({
        "branch": r.branch,
        "remote": r.remote,
        "incoming": changes_json(&r.incoming),
        "outgoing": changes_json(&r.outgoing),
        "lost_claims": r.lost_claims.iter().map(|(t, l, w)| json!({
            "task": t, "lost_by": l, "won_by": w, "message": lost_text(t, l, w),
        })).collect::<Vec<_>>(),
        "cycles": r.cycles,
        "commits": r.commits,
        "pulled": r.pulled,
        "pushed": r.pushed,
        "push_retries": r.push_retries,
    })
}

fn report_text(r: &Report) -> String {
    let mut out = format!(
        "synced {}{}: in {}; out {}",
        r.branch,
        r.remote
            .as_ref()
            .map(|m| format!(" with {m}"))
            .unwrap_or_default(),
        changes_text(&r.incoming),
        changes_text(&r.outgoing),
    );
    out.push_str(match (r.pulled, r.pushed) {
        (true, true) => "; pulled and pushed",
        (false, true) => "; pushed",
        (true, false) => "; pulled",
        (false, false) => "",
    });
    for (t, l, w) in &r.lost_claims {
        out.push_str(&format!("\n{}", lost_text(t, l, w)));
    }
    for c in &r.cycles {
        out.push_str(&format!(
            "\nwarning: {c} (got validate lists it; remove one dependency)"
        ));
    }
    out
}

pub(super) fn sync(ctx: &Ctx, a: SyncArgs) -> CmdResult {
    let top = work_top()?;
    let store = ctx.open()?;
    if a.import_only {
        let Some(doc) = cycle::read_tracked(&top)? else {
            ctx.print(
                json!({"incoming": changes_json(&Changes::default())}),
                || "no tracked file to import".into(),
            );
            return Ok(());
        };
        let (applied, _) = exchange::import(&store, &doc)?;
        let c = Changes {
            created: applied.created,
            changed: applied.changed,
            deleted: applied.deleted,
        };
        ctx.print(json!({"incoming": changes_json(&c)}), || {
            format!("imported the tracked file: {}", changes_text(&c))
        });
        return Ok(());
    }
    let opts = SyncOptions {
        remote: a.remote,
        push: !a.no_push,
        retention_days: a.retention_days,
    };
    let r = cycle::sync(&store, &top, &opts)?;
    ctx.print(report_json(&r), || report_text(&r));
    Ok(())
}

pub(super) fn merge_driver(
    _base: &Path,
    ours: &Path,
    theirs: &Path,
    path: Option<&str>,
) -> CmdResult {
    let name = path.unwrap_or(".got/tracked.jsonl");
    let read = |file: &Path, side: &str| {
        std::fs::read(file).map_err(|e| {
            Failure::new(
                "io",
                exit::ERROR,
                format!("{name} ({side}, {}): {e}", file.display()),
            )
        })
    };
    let (a, b) = (read(ours, "ours")?, read(theirs, "theirs")?);
    let merged = got::sync::merge::merge_bytes(&a, &b).map_err(|(side, e)| {
        let side = match side {
            got::sync::merge::Side::Ours => "ours",
            got::sync::merge::Side::Theirs => "theirs",
        };
        Failure::new(
            "tracked_file",
            exit::ERROR,
            format!("{name} ({side}): {e}; not merged, git reports a conflict"),
        )
    })?;
    git::replace_file(ours, &merged).map_err(|e| {
        Failure::new(
            "io",
            exit::ERROR,
            format!("writing the merge over {}: {e}", ours.display()),
        )
    })?;
    Ok(())
}

/// The marker of got's hooks.
const HOOK_MARK: &str = "# got: import the tracked file after git moved it";

fn hook_script(name: &str) -> String {
    format!(
        "#!/bin/sh\n{HOOK_MARK} (got hooks install)\n\
chained=\"$(dirname \"$0\")/{name}.pre-got\"\n\
status=0\n\
if [ -x \"$chained\" ]; then \"$chained\" \"$@\" || status=$?; fi\n\
if command -v got >/dev/null 2>&1; then\n\
  got sync --import-only >/dev/null || echo \"got: the tracked file was not imported; run got sync\" >&2\n\
fi\n\
exit $status\n"
    )
}

pub(super) fn hooks(ctx: &Ctx, c: HooksCmd) -> CmdResult {
    match c {
        HooksCmd::Install => {
            let top = work_top()?;
            let dir =
                git::ok(&top, &["rev-parse", "--git-path", "hooks"]).map_err(SyncError::from)?;
            let dir = top.join(dir);
            std::fs::create_dir_all(&dir)
                .map_err(|e| Failure::new("io", exit::ERROR, format!("{}: {e}", dir.display())))?;
            let mut installed = Vec::new();
            let mut chained = Vec::new();
            for name in ["post-merge", "post-checkout", "post-rewrite"] {
                let path = dir.join(name);
                let io = |e: std::io::Error| {
                    Failure::new("io", exit::ERROR, format!("{}: {e}", path.display()))
                };
                match std::fs::read_to_string(&path) {
                    Ok(t) if t.contains(HOOK_MARK) => continue,
                    Ok(_) => {
                        let keep = dir.join(format!("{name}.pre-got"));
                        if keep.exists() {
                            return Err(Failure::new(
                                "invalid",
                                exit::INVALID,
                                format!(
                                    "{} exists and so does {}: move one of them aside, then run got hooks install again",
                                    path.display(),
                                    keep.display()
                                ),
                            ));
                        }
                        std::fs::rename(&path, &keep).map_err(io)?;
                        chained.push(name);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(e)),
                }
                git::replace_file(&path, hook_script(name).as_bytes()).map_err(io)?;
                set_executable(&path).map_err(io)?;
                installed.push(name);
            }
            ctx.print(
                json!({"hooks": dir, "installed": installed, "chained": chained}),
                || {
                    if installed.is_empty() {
                        format!("got's hooks are already installed in {}", dir.display())
                    } else {
                        let mut t =
                            format!("installed {} in {}", installed.join(", "), dir.display());
                        for c in &chained {
                            t.push_str(&format!(
                                "\nthe {c} hook already there runs first (now {c}.pre-got)"
                            ));
                        }
                        t
                    }
                },
            );
            Ok(())
        }
    }
}

fn set_executable(p: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut perm = std::fs::metadata(p)?.permissions();
    perm.set_mode(0o755);
    std::fs::set_permissions(p, perm)
}
