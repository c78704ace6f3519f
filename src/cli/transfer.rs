//! `got export` and `got import`.

use super::args::ImportFormat;
use super::ctx::{init_in_work_tree, Ctx};
use super::progress::Bar;
use super::{exit, CmdResult, Failure};
use got::json::TASK_SCHEMA_VERSION as SCHEMA_VERSION;
use got::transfer;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

fn io_failure(what: &str, path: &Path, e: std::io::Error) -> Failure {
    Failure::new("io", exit::ERROR, format!("{what} {}: {e}", path.display()))
}

pub fn export(ctx: &Ctx, out: Option<PathBuf>) -> CmdResult {
    let store = ctx.open_read_only()?;
    let Some(path) = out else {
        let stdout = std::io::stdout();
        let mut w = std::io::BufWriter::new(stdout.lock());
        let mut bar = Bar::new(ctx);
        transfer::export_with_progress(&store, &mut w, &mut |n, t| bar.update("exporting", n, t))?;
        bar.finish();
        w.flush()
            .map_err(|e| io_failure("writing", Path::new("stdout"), e))?;
        return Ok(());
    };
    // Never a half-written file: write a temporary beside it, sync, rename.
    let name = path
        .file_name()
        .ok_or_else(|| Failure::new("invalid", exit::INVALID, "--out needs a file name"))?;
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> Result<(u64, u64), Failure> {
        let f = std::fs::File::create(&tmp).map_err(|e| io_failure("creating", &tmp, e))?;
        let mut w = std::io::BufWriter::new(f);
        let mut bar = Bar::new(ctx);
        let counts = transfer::export_with_progress(&store, &mut w, &mut |n, t| {
            bar.update("exporting", n, t)
        })?;
        bar.finish();
        let f = w
            .into_inner()
            .map_err(|e| io_failure("writing", &tmp, e.into_error()))?;
        f.sync_all().map_err(|e| io_failure("syncing", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io_failure("renaming", &tmp, e))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(counts)
    })();
    let (entities, edges) = match result {
        Ok(c) => c,
        Err(f) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(f);
        }
    };
    ctx.print(
        json!({"schema_version": SCHEMA_VERSION, "out": path, "entities": entities, "edges": edges}),
        || format!("exported {entities} entities and {edges} edges to {}", path.display()),
    );
    Ok(())
}

pub fn import(ctx: &Ctx, file: &Path, from: ImportFormat, batch: usize) -> CmdResult {
    let bytes = std::fs::read(file).map_err(|e| {
        let (code, exit) = if e.kind() == std::io::ErrorKind::NotFound {
            ("not_found", exit::NOT_FOUND)
        } else {
            ("io", exit::ERROR)
        };
        Failure::new(code, exit, format!("reading {}: {e}", file.display()))
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Failure::new(
            "invalid",
            exit::INVALID,
            format!(
                "{} is not UTF-8 (byte {} is not); nothing was imported",
                file.display(),
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    let store = ctx.open()?;
    // A tracked file (what `got sync` commits) is merged, field by field: an
    // older one changes nothing.
    if from == ImportFormat::Got && text.starts_with("{\"got_tracked\":") {
        let doc = got::sync::Doc::parse(text.as_bytes()).map_err(|e| {
            Failure::new(
                "tracked_file",
                exit::INVALID,
                format!("{}: {e}; nothing was imported", file.display()),
            )
        })?;
        let (a, _) = got::sync::exchange::import(&store, &doc)?;
        ctx.print(
            json!({"created": a.created, "changed": a.changed, "deleted": a.deleted}),
            || {
                format!(
                    "merged the tracked file: {} created, {} changed, {} deleted",
                    a.created.len(),
                    a.changed.len(),
                    a.deleted.len()
                )
            },
        );
        return Ok(());
    }
    if from == ImportFormat::Beads {
        return import_beads(ctx, &store, &text, file);
    }
    let items = transfer::parse(&store, &text).map_err(|e| {
        let mut f = Failure::from(e);
        f.message = format!("{}; nothing was imported", f.message);
        f
    })?;
    let mut bar = Bar::new(ctx);
    let rep = transfer::import(&store, &items, batch, |done, total| {
        bar.update("importing", done as u64, total as u64)
    })?;
    bar.finish();
    ctx.print(
        json!({
            "schema_version": SCHEMA_VERSION,
            "entities_written": rep.entities_written,
            "entities_skipped": rep.entities_skipped,
            "edges_written": rep.edges_written,
            "edges_skipped": rep.edges_skipped,
            "conflicts": rep.conflicts,
        }),
        || {
            let mut s = format!(
                "imported {} entities and {} edges; skipped {} entities (already here, or here at a higher version) and {} edges (already here)",
                rep.entities_written, rep.edges_written, rep.entities_skipped, rep.edges_skipped
            );
            for c in &rep.conflicts {
                s.push_str(&format!("\nconflict (not imported): {c}"));
            }
            s
        },
    );
    if rep.conflicts.is_empty() {
        Ok(())
    } else {
        Err(Failure::reported(
            "conflict",
            exit::CONFLICT,
            format!(
                "{} entities conflict with the store (same version, other content)",
                rep.conflicts.len()
            ),
        ))
    }
}

/// What an import from another tool read and did, as JSON.
fn got_json_report_json(r: &transfer::got_json::Report) -> serde_json::Value {
    let a = &r.applied;
    json!({
        "read": r.by_kind,
        "history_versions": r.history_versions,
        "created": a.created.len(),
        "changed": a.changed.len(),
        "deleted": a.deleted.len(),
        "edges_added": a.edges_added,
        "dangling": r.dangling.iter().map(|d| json!({
            "from": d.from, "kind": d.kind, "to": d.to, "missing": d.missing,
        })).collect::<Vec<_>>(),
        "bad_checksums": r.bad_checksums,
        "unreadable": r.unreadable.iter().map(|(p, e)| json!({"path": p, "error": e})).collect::<Vec<_>>(),
        "unknown_values": r.unknown,
    })
}

fn got_json_report_text(r: &transfer::got_json::Report, accepted: bool) -> String {
    let a = &r.applied;
    let kinds: Vec<String> = r.by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let mut s = format!(
        "read {} (and {} earlier versions); {} created, {} changed, {} edges added",
        if kinds.is_empty() {
            "nothing".to_string()
        } else {
            kinds.join(", ")
        },
        r.history_versions,
        a.created.len(),
        a.changed.len(),
        a.edges_added
    );
    for d in &r.dangling {
        s.push_str(&format!(
            "\nskipped edge {} -{}-> {}: {} does not exist",
            d.from, d.kind, d.to, d.missing
        ));
    }
    for p in &r.bad_checksums {
        s.push_str(&format!(
            "\nbad checksum: {}{}",
            p.display(),
            if accepted {
                " (imported: --accept-bad-checksums)"
            } else {
                " (not imported; --accept-bad-checksums imports it)"
            }
        ));
    }
    for (p, e) in &r.unreadable {
        s.push_str(&format!("\nunreadable, not imported: {}: {e}", p.display()));
    }
    for (what, n) in &r.unknown {
        s.push_str(&format!(
            "\nunknown {what}: {n} (mapped to the nearest; the original kept as a property)"
        ));
    }
    s
}

/// `got import --from got-json DIR`.
pub fn import_got_json(ctx: &Ctx, dir: &Path, accept_bad_checksums: bool) -> CmdResult {
    let Some(root) = transfer::got_json::store_root(dir) else {
        return Err(Failure::new(
            "not_found",
            exit::NOT_FOUND,
            format!(
                "no GoT JSON store at {}: looked for {} and {}",
                dir.display(),
                dir.join("entities").display(),
                dir.join(".got/entities").display()
            ),
        ));
    };
    let read = transfer::got_json::read(&root, accept_bad_checksums)?;
    let store = ctx.open()?;
    let r = transfer::got_json::import(&store, read)?;
    ctx.print(got_json_report_json(&r), || {
        got_json_report_text(&r, accept_bad_checksums)
    });
    let left_out = r.unreadable.len()
        + if accept_bad_checksums {
            0
        } else {
            r.bad_checksums.len()
        };
    if left_out > 0 {
        return Err(Failure::reported(
            "partial",
            exit::INVALID,
            format!("{left_out} entity files were not imported (see above)"),
        ));
    }
    Ok(())
}

/// `got migrate`.
pub fn migrate(ctx: &Ctx, accept_bad_checksums: bool) -> CmdResult {
    use got::locate::Found;
    use got::transfer::migrate::{self as m, Outcome, Refusal};
    let cwd = super::ctx::cwd()?;
    let dot_got = match &ctx.store_flag {
        Some(d) => d.clone(),
        None => match got::locate::find(&cwd) {
            Some(Found::GotJson(d)) => d,
            Some(Found::Store(l)) => l.dir,
            None => cwd.join(".got"),
        },
    };
    let outcome = match m::migrate(&dot_got, accept_bad_checksums, &ctx.options()?) {
        Ok(o) => o,
        Err(Refusal::Nothing(d)) => {
            return Err(Failure::new(
                "not_found",
                exit::NOT_FOUND,
                format!(
                    "nothing to migrate: {} holds no GoT JSON store (entities/*.json)",
                    d.display()
                ),
            ))
        }
        Err(Refusal::BadFiles(r)) => {
            ctx.print(
                json!({
                    "bad_checksums": r.bad_checksums,
                    "unreadable": r.unreadable.iter().map(|(p, e)| json!({"path": p, "error": e})).collect::<Vec<_>>(),
                }),
                || {
                    let mut s: Vec<String> = r
                        .bad_checksums
                        .iter()
                        .map(|p| format!("bad checksum: {}", p.display()))
                        .collect();
                    s.extend(
                        r.unreadable
                            .iter()
                            .map(|(p, e)| format!("unreadable: {}: {e}", p.display())),
                    );
                    s.join("\n")
                },
            );
            return Err(Failure::reported(
                "bad_files",
                exit::INVALID,
                format!(
                    "{} entity files cannot be imported (see above); nothing was changed. Fix or remove them, or pass --accept-bad-checksums for files whose checksum alone is wrong",
                    r.unreadable.len() + r.bad_checksums.len()
                ),
            ));
        }
        Err(Refusal::Store(e)) => return Err(e.into()),
    };
    let originals = dot_got.join(m::ORIGINALS);
    // In a git work tree the store gets what got init gives it there.
    let work_tree = got::locate::git_top(&cwd).filter(|t| t.join(".got") == dot_got);
    if let Some(top) = &work_tree {
        init_in_work_tree(ctx, top, &dot_got)?;
    }
    let git_hint = if work_tree.is_some() {
        "\nin git: the GoT system's files moved under .got/got-json, which .got/.gitignore leaves out; `git add -A .got && git commit -m \"got migrate\"` records that (got sync commits got's own files only)"
    } else {
        ""
    };
    match outcome {
        Outcome::Migrated(r) => {
            let mut j = got_json_report_json(&r);
            j["store"] = json!(dot_got);
            j["originals"] = json!(originals);
            ctx.print(j, || {
                format!(
                    "migrated {} into a got store; the original files are in {}\n{}{git_hint}",
                    dot_got.display(),
                    originals.display(),
                    got_json_report_text(&r, accept_bad_checksums)
                )
            });
        }
        Outcome::Already { finished } => {
            ctx.print(
                json!({"store": dot_got, "originals": originals, "already": true, "finished_now": finished}),
                || {
                    format!(
                        "{} is a got store migrated from the GoT system{}; the original files are in {}",
                        dot_got.display(),
                        if finished { " (this run finished moving the original files)" } else { "" },
                        originals.display()
                    )
                },
            );
        }
    }
    Ok(())
}

/// `got import --from beads FILE`.
fn import_beads(ctx: &Ctx, store: &got::Store, text: &str, file: &Path) -> CmdResult {
    let (rep, a, dangling) = transfer::beads::import(store, text).map_err(|e| {
        let mut f = Failure::from(e);
        f.message = format!("{}: {}; nothing was imported", file.display(), f.message);
        f
    })?;
    ctx.print(
        json!({
            "read": rep.by_kind,
            "deletions": rep.deletions,
            "skipped": rep.skipped,
            "created": a.created.len(),
            "changed": a.changed.len(),
            "deleted": a.deleted.len(),
            "edges_added": a.edges_added,
            "dangling": dangling.iter().map(|d| json!({
                "from": d.from, "kind": d.kind, "to": d.to, "missing": d.missing,
            })).collect::<Vec<_>>(),
            "unknown_values": rep.unknown,
        }),
        || {
            let kinds: Vec<String> = rep.by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect();
            let mut s = format!(
                "read {} and {} deletions ({} other lines skipped); {} created, {} changed, {} deleted, {} edges added",
                if kinds.is_empty() { "no issue".to_string() } else { kinds.join(", ") },
                rep.deletions,
                rep.skipped,
                a.created.len(),
                a.changed.len(),
                a.deleted.len(),
                a.edges_added
            );
            for d in &dangling {
                s.push_str(&format!(
                    "\nskipped edge {} -{}-> {}: {} is not in the file or the store",
                    d.from, d.kind, d.to, d.missing
                ));
            }
            for (what, n) in &rep.unknown {
                s.push_str(&format!(
                    "\nunknown {what}: {n} (mapped to the nearest; the original kept as a property)"
                ));
            }
            s
        },
    );
    Ok(())
}
