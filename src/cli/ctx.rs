//! What every command shares: the store it acts on (`--store`, `GOT_DIR`, the
//! nearest `.got`), the agent, the output mode, opening the store, printing.

use super::{exit, Failure};
use got::{Options, Store};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(super) struct Ctx {
    pub(super) store_flag: Option<PathBuf>,
    pub(super) json: bool,
    pub(super) quiet: bool,
    pub(super) agent: Option<String>,
}

/// How many transactions the log may hold past a checkpoint before a CLI
/// command that commits runs the next one.
pub const CLI_CHECKPOINT_TRANSACTIONS: u64 = 256;

impl Ctx {
    /// `--store`/`GOT_DIR` (clap merges them), else the nearest `.got` upwards,
    /// where a linked git worktree leads to its main worktree's (`got::locate`).
    pub(super) fn store_dir(&self) -> Result<PathBuf, Failure> {
        Ok(self.locate()?.dir)
    }

    /// The store and how it was found.
    pub(super) fn locate(&self) -> Result<got::locate::Located, Failure> {
        use got::locate::{FoundBy, Located};
        if let Some(d) = &self.store_flag {
            let flag = std::env::args_os().any(|a| {
                let a = a.to_string_lossy();
                a == "--store" || a.starts_with("--store=")
            });
            return Ok(Located {
                dir: d.clone(),
                found_by: if flag { FoundBy::Flag } else { FoundBy::Env },
            });
        }
        let cwd = cwd()?;
        match got::locate::find(&cwd) {
            Some(got::locate::Found::Store(l)) => Ok(l),
            Some(got::locate::Found::GotJson(d)) => Err(got_json_found(&d)),
            None => Err(Failure::new(
                "not_found",
                exit::NOT_FOUND,
                format!(
                    "no store: no .got directory in {} or above (nor in the main worktree of its git repository); run `got init`, or pass --store DIR / set GOT_DIR",
                    cwd.display()
                ),
            )),
        }
    }

    pub(super) fn options(&self) -> Result<Options, Failure> {
        Ok(Options {
            actor: self.agent.clone(),
            // Each command replays the log since the last checkpoint (and derives
            // its index entries when it reads an index): a short tail keeps every
            // command fast; see docs/design.md.
            checkpoint_transactions: CLI_CHECKPOINT_TRANSACTIONS,
            clock: clock_from_env()?,
            ..Options::default()
        })
    }

    /// Who is acting: `--agent`, else `GOT_AGENT`, else the user name.
    pub(super) fn agent(&self) -> String {
        self.agent
            .clone()
            .unwrap_or_else(got::versioned_store::store::default_actor)
    }

    pub(super) fn open(&self) -> Result<Store, Failure> {
        let dir = self.store_dir()?;
        if got::locate::holds_got_json(&dir) {
            return Err(got_json_found(&dir));
        }
        Ok(Store::open(dir, self.options()?)?)
    }

    pub(super) fn open_read_only(&self) -> Result<Store, Failure> {
        let dir = self.store_dir()?;
        if got::locate::holds_got_json(&dir) {
            return Err(got_json_found(&dir));
        }
        Ok(Store::open(
            dir,
            Options {
                read_only: true,
                ..self.options()?
            },
        )?)
    }

    /// Prints JSON with `--json`, else the text (`--quiet`: commands print ids
    /// through [`Ctx::print_ids`] instead).
    pub(super) fn print(&self, j: serde_json::Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{j}");
        } else {
            // anstream drops the styles of `render` off a terminal and
            // under NO_COLOR (CLICOLOR_FORCE forces them).
            let t = text();
            if !t.is_empty() {
                anstream::println!("{t}");
            }
        }
    }
}

/// The failure of a command run where `.got` holds the GoT system's JSON store.
pub(super) fn got_json_found(dir: &Path) -> Failure {
    Failure::new(
        "got_json_store",
        exit::NOT_FOUND,
        format!(
            "{} holds the JSON store of the GoT system (entities/*.json), not a got store: run `got migrate` in {} to turn it into one (the original files are kept under .got/{}), or `got import --from got-json {}` into another store",
            dir.display(),
            dir.parent().unwrap_or(dir).display(),
            got::transfer::migrate::ORIGINALS,
            dir.display()
        ),
    )
}

pub(super) fn cwd() -> Result<PathBuf, Failure> {
    std::env::current_dir()
        .map_err(|e| Failure::new("io", exit::ERROR, format!("working directory: {e}")))
}

/// `GOT_NOW_MS` (a testing aid, see docs/cli.md): the time every command takes as
/// now, in Unix milliseconds, for leases, their expiry and the times it records.
fn clock_from_env() -> Result<Option<Arc<dyn got::versioned_store::Clock>>, Failure> {
    let Some(v) = std::env::var_os("GOT_NOW_MS") else {
        return Ok(None);
    };
    let v = v.to_string_lossy();
    let ms: i64 = v.trim().parse().map_err(|_| {
        Failure::new(
            "usage",
            exit::USAGE,
            format!("GOT_NOW_MS must be Unix milliseconds (an integer), got {v:?}"),
        )
    })?;
    Ok(Some(got::versioned_store::ManualClock::new(ms)))
}

/// What `got init` and `got migrate` do in a git work tree once the store
/// exists (see `got::sync::cycle::init_in_work_tree`), warning when git could
/// not be run.
pub(super) fn init_in_work_tree(
    ctx: &Ctx,
    top: &Path,
    store_dir: &Path,
) -> Result<got::sync::cycle::WorkTreeInit, Failure> {
    let init = got::sync::cycle::init_in_work_tree(top, store_dir, ctx.options()?)?;
    if let Some(e) = &init.no_git {
        eprintln!("got: warning: git could not be run ({e}): the merge driver is not registered; run got init again once git is installed");
    }
    Ok(init)
}
