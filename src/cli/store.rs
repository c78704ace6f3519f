//! The store's own commands: `got init`, `checkpoint`, `stats`, `backup`,
//! `validate`, `verify`, `repair`.

use super::ctx::{cwd, init_in_work_tree, Ctx};
use super::{exit, CmdResult, Failure};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

pub(super) fn init(ctx: &Ctx) -> CmdResult {
    // In a git work tree (a linked worktree included) the store goes to the top of
    // the main worktree, where every worktree of the clone finds it; the work
    // tree gets what sync needs (docs/sync.md).
    let (dir, top) = match &ctx.store_flag {
        Some(d) => (d.clone(), None),
        None => {
            let cwd = cwd()?;
            (got::locate::init_dir(&cwd), got::locate::git_top(&cwd))
        }
    };
    if got::locate::holds_got_json(&dir) {
        return Err(Failure::new(
            "got_json_store",
            exit::CONFLICT,
            format!(
                "{} holds the JSON store of the GoT system (entities/*.json): got init does not write into another tool's files; run `got migrate` to turn it into a got store in place (the original files kept under .got/{})",
                dir.display(),
                got::transfer::migrate::ORIGINALS
            ),
        ));
    }
    let existed = match got::init(&got::wal::RealVfs, &dir) {
        Ok(()) => false,
        // In a work tree `got init` is how a clone is set up, so running it again
        // checks the setup instead of failing.
        Err(got::Error::AlreadyExists(_)) if top.is_some() => true,
        Err(e) => return Err(e.into()),
    };
    let shown = std::fs::canonicalize(&dir).unwrap_or(dir.clone());
    let Some(top) = top else {
        ctx.print(json!({"store": shown}), || {
            format!("created an empty got store in {}", shown.display())
        });
        return Ok(());
    };
    let init = init_in_work_tree(ctx, &top, &dir)?;
    let (setup, incoming) = (init.setup, init.imported);
    ctx.print(
        json!({
            "store": shown,
            "existed": existed,
            "work_tree": top,
            "wrote_gitignore": setup.wrote_gitignore,
            "wrote_gitattributes": setup.wrote_attributes,
            "registered_merge_driver": setup.registered_driver,
            "imported": incoming.as_ref().map(|c| json!({
                "created": c.created, "changed": c.changed, "deleted": c.deleted,
            })),
        }),
        || {
            let mut t = if existed {
                format!("a got store already exists in {}", shown.display())
            } else {
                format!("created an empty got store in {}", shown.display())
            };
            if setup.registered_driver {
                t.push_str(
                    "
registered the merge driver for .got/tracked.jsonl in the repository's config",
                );
            }
            if setup.wrote_gitignore || setup.wrote_attributes {
                t.push_str(
                    "
wrote .got/.gitignore and .gitattributes: commit them (got sync does)",
                );
            }
            if let Some(c) = &incoming {
                t.push_str(&format!(
                    "
imported the tracked file: {} created, {} changed, {} deleted",
                    c.created.len(),
                    c.changed.len(),
                    c.deleted.len()
                ));
            }
            t
        },
    );
    Ok(())
}

pub(super) fn checkpoint(ctx: &Ctx) -> CmdResult {
    let store = ctx.open()?;
    let info = store.checkpoint()?;
    ctx.print(
        json!({"checkpoint_lsn": info.checkpoint_lsn, "generation": info.generation,
               "run": info.run.as_ref().map(|r| &r.name), "compacted": info.compacted,
               "segments_retired": info.segments_retired}),
        || match &info.run {
            Some(r) => {
                format!(
                "checkpoint at LSN {}: wrote {} ({} keys, {} bytes){}; retired {} WAL segment(s)",
                info.checkpoint_lsn,
                r.name,
                r.keys,
                r.bytes,
                if info.compacted { ", compacted all runs" } else { "" },
                info.segments_retired
            )
            }
            None => format!(
                "nothing to checkpoint (checkpoint LSN {})",
                info.checkpoint_lsn
            ),
        },
    );
    Ok(())
}

/// Bytes under `dir`, recursively (0 if unreadable).
pub(super) fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

pub(super) fn stats(ctx: &Ctx) -> CmdResult {
    let located = ctx.locate()?;
    let dir = located.dir.clone();
    let store = ctx.open_read_only()?;
    let c = store.content_stats()?;
    let d = store.disk_stats()?;
    let cache = store.cache_stats();
    let disk: serde_json::Map<String, serde_json::Value> = ["wal", "runs", "quarantine", "backups"]
        .iter()
        .map(|s| (s.to_string(), json!(dir_bytes(&dir.join(s)))))
        .chain(std::iter::once((
            "total".to_string(),
            json!(dir_bytes(&dir)),
        )))
        .collect();
    let shown = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
    let mut store_json = json!({"path": shown, "found_by": located.found_by.name()});
    if let got::locate::FoundBy::MainWorktree { worktree } = &located.found_by {
        store_json["worktree"] = json!(worktree);
    }
    let j = json!({
        "store": store_json,
        "entities_by_kind": c.entities_by_kind, "edges_by_kind": c.edges_by_kind,
        "history": {"versions": c.history_versions, "bytes": c.history_bytes},
        "indexes": {"versions": c.index_versions, "bytes": c.index_bytes},
        "checkpoint_lsn": d.checkpoint_lsn, "last_lsn": d.applied_lsn, "generation": d.generation,
        "wal_tail_bytes": d.wal_tail_bytes, "wal_disk_bytes": d.wal_disk_bytes,
        "runs": d.runs.iter().map(|r| json!({"name": r.name, "bytes": r.bytes, "keys": r.keys,
                 "min_lsn": r.min_lsn, "max_lsn": r.max_lsn})).collect::<Vec<_>>(),
        "cache": {"hits": cache.hits, "misses": cache.misses, "evictions": cache.evictions,
                  "invalidations": cache.invalidations, "entries": cache.entries, "bytes": cache.bytes},
        "disk_bytes": disk,
    });
    ctx.print(j.clone(), || {
        let kinds = |m: &std::collections::BTreeMap<String, u64>| {
            if m.is_empty() {
                "none".to_string()
            } else {
                m.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
            }
        };
        let mut out = vec![
            format!("store:    {} (found by {})", shown.display(), located.found_by),
            format!("entities: {}", kinds(&c.entities_by_kind)),
            format!("edges:    {}", kinds(&c.edges_by_kind)),
            format!(
                "history:  {} versions, {} bytes (retention: every version kept)",
                c.history_versions, c.history_bytes
            ),
            format!(
                "indexes:  {} entry versions, {} bytes (derived; rebuilt when missing)",
                c.index_versions, c.index_bytes
            ),
            format!(
                "log:      last LSN {}, checkpoint LSN {} (generation {}), {} bytes of WAL since it; {} bytes of segments",
                d.applied_lsn, d.checkpoint_lsn, d.generation, d.wal_tail_bytes, d.wal_disk_bytes
            ),
        ];
        for r in &d.runs {
            out.push(format!(
                "run:      {} {} keys {} bytes (LSN {}..={})",
                r.name, r.keys, r.bytes, r.min_lsn, r.max_lsn
            ));
        }
        out.push(format!(
            "cache (this process): {} hits, {} misses, {} evictions, {} entries",
            cache.hits, cache.misses, cache.evictions, cache.entries
        ));
        out.push(format!(
            "disk:     {} bytes total ({})",
            j["disk_bytes"]["total"],
            ["wal", "runs", "quarantine", "backups"]
                .iter()
                .map(|s| format!("{s} {}", j["disk_bytes"][s]))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        out.join("\n")
    });
    Ok(())
}

/// Where a restore kept the state it replaced, as the end of its message.
pub(super) fn kept_text(r: &got::versioned_store::backup::RestoreInfo) -> String {
    match (&r.safety, &r.quarantined) {
        (Some(b), _) => format!("\nthe state it replaced is backup {}", b.name),
        (None, Some(q)) => format!(
            "\nthe state it replaced was damaged: its CURRENT and runs are kept in {}",
            q.display()
        ),
        (None, None) => {
            "\n(an earlier, interrupted run of this restore kept the state it replaced)".into()
        }
    }
}

pub(super) fn backup_json(b: &got::versioned_store::backup::BackupInfo) -> serde_json::Value {
    json!({"name": b.name, "lsn": b.lsn, "runs": b.runs, "bytes": b.bytes, "path": b.path})
}

pub(super) fn backup(ctx: &Ctx, c: super::args::BackupCmd) -> CmdResult {
    use super::args::BackupCmd;
    use got::versioned_store::backup;
    let dir = ctx.store_dir()?;
    let vfs: Arc<dyn got::wal::Vfs> = Arc::new(got::wal::RealVfs);
    match c {
        BackupCmd::Create { keep } => {
            let store = ctx.open_read_only()?;
            let mut bar = super::progress::Bar::new(ctx);
            let b = store.backup_with_progress(keep, &mut |what, n, t| bar.update(what, n, t))?;
            bar.finish();
            ctx.print(
                json!({"schema_version": 1, "backup": backup_json(&b)}),
                || {
                    format!(
                        "backup {} holds everything through LSN {} ({} runs, {} bytes)",
                        b.name, b.lsn, b.runs, b.bytes
                    )
                },
            );
        }
        BackupCmd::List => {
            let all = backup::list_backups(vfs.as_ref(), &dir)?;
            if ctx.quiet {
                for b in &all {
                    println!("{}", b.name);
                }
                return Ok(());
            }
            ctx.print(
                json!({"schema_version": 1, "backups": all.iter().map(backup_json).collect::<Vec<_>>()}),
                || {
                    if all.is_empty() {
                        return "(no backups; `got backup create` takes one)".into();
                    }
                    let rows = all.iter().map(|b| {
                        [b.name.clone(), b.lsn.to_string(), b.runs.to_string(), b.bytes.to_string()]
                    });
                    super::render::table("", Some(&["NAME", "LSN", "RUNS", "BYTES"]), rows)
                },
            );
        }
        BackupCmd::Verify { name } => {
            let path = dir.join("backups").join(&name);
            if name.contains('/') || !path.join("CURRENT").is_file() {
                return Err(Failure::new(
                    "not_found",
                    exit::NOT_FOUND,
                    format!("no backup {name} (see `got backup list`)"),
                ));
            }
            let mut bar = super::progress::Bar::new(ctx);
            let rep =
                got::verify_with_progress(vfs, &path, &mut |what, n, t| bar.update(what, n, t))?;
            bar.finish();
            ctx.print(
                json!({"schema_version": 1, "backup": name, "healthy": rep.healthy(), "findings": rep.findings,
                       "entities": rep.entities, "edges": rep.edges, "lsn": rep.checkpoint_lsn}),
                || {
                    let mut out: Vec<String> = rep.findings.iter().map(|f| format!("finding: {f}")).collect();
                    out.push(format!(
                        "backup {name}: {}; {} entities, {} edges through LSN {}",
                        if rep.healthy() { "healthy" } else { "NOT HEALTHY" },
                        rep.entities,
                        rep.edges,
                        rep.checkpoint_lsn
                    ));
                    out.join("\n")
                },
            );
            if !rep.healthy() {
                return Err(Failure::reported(
                    "corrupt",
                    exit::CORRUPT,
                    format!("backup {name} has {} problem(s)", rep.findings.len()),
                ));
            }
        }
        BackupCmd::Restore { name } => {
            let r = backup::restore(vfs, &dir, &name, got::wal::lock::lock_timeout_from_env())?;
            ctx.print(
                json!({"schema_version": 1, "restored": backup_json(&r.restored),
                       "safety_backup": r.safety.as_ref().map(backup_json),
                       "quarantined": r.quarantined}),
                || {
                    format!(
                        "restored backup {} (everything through LSN {}){}",
                        r.restored.name,
                        r.restored.lsn,
                        kept_text(&r)
                    )
                },
            );
        }
    }
    Ok(())
}

pub(super) fn validate(ctx: &Ctx) -> CmdResult {
    let dir = ctx.store_dir()?;
    let mut bar = super::progress::Bar::new(ctx);
    let rep = got::verify_with_progress(Arc::new(got::wal::RealVfs), &dir, &mut |what, n, t| {
        bar.update(what, n, t)
    })?;
    bar.finish();
    if !rep.healthy() {
        return Err(Failure::new(
            "corrupt",
            exit::CORRUPT,
            format!(
                "verify found {} problem(s) in the files ({}); run `got verify` for them",
                rep.findings.len(),
                rep.findings.first().map(String::as_str).unwrap_or("")
            ),
        ));
    }
    let store = ctx.open_read_only()?;
    let v = got::validate::validate(&mut store.begin()?, store.now_ms())?;
    ctx.print(
        json!({"schema_version": 1, "valid": v.problems.is_empty(), "problems": v.problems,
               "warnings": v.warnings, "tasks": v.tasks, "orphans": v.orphans,
               "orphan_rate": v.orphan_rate(), "entities": rep.entities, "edges": rep.edges}),
        || {
            let mut out: Vec<String> = v.problems.iter().map(|p| format!("problem: {p}")).collect();
            out.extend(v.warnings.iter().map(|w| format!("warning: {w}")));
            out.push(format!(
                "{}: files healthy; {} tasks, {} with no edge at all ({:.0}% orphans); {} problem(s), {} warning(s)",
                if v.problems.is_empty() { "valid" } else { "NOT VALID" },
                v.tasks,
                v.orphans,
                v.orphan_rate() * 100.0,
                v.problems.len(),
                v.warnings.len()
            ));
            out.join("\n")
        },
    );
    if v.problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::reported(
            "invalid",
            exit::INVALID,
            format!("validate found {} problem(s)", v.problems.len()),
        ))
    }
}

pub(super) fn verify(ctx: &Ctx) -> CmdResult {
    let dir = ctx.store_dir()?;
    let mut bar = super::progress::Bar::new(ctx);
    let rep = got::verify_with_progress(Arc::new(got::wal::RealVfs), &dir, &mut |what, n, t| {
        bar.update(what, n, t)
    })?;
    bar.finish();
    ctx.print(
        json!({"healthy": rep.healthy(), "findings": rep.findings, "notes": rep.notes,
               "checkpoint_lsn": rep.checkpoint_lsn, "last_lsn": rep.last_lsn, "runs": rep.runs,
               "wal_frames": rep.wal_frames, "entities": rep.entities, "edges": rep.edges}),
        || {
            let mut out = Vec::new();
            for n in &rep.notes {
                out.push(format!("note: {n}"));
            }
            for f in &rep.findings {
                out.push(format!("finding: {f}"));
            }
            out.push(format!(
                "{}: {} entities, {} edges, {} run(s), {} WAL frame(s) after checkpoint LSN {}, last LSN {}",
                if rep.healthy() { "healthy" } else { "NOT HEALTHY" },
                rep.entities,
                rep.edges,
                rep.runs,
                rep.wal_frames,
                rep.checkpoint_lsn,
                rep.last_lsn
            ));
            out.join("\n")
        },
    );
    if rep.healthy() {
        Ok(())
    } else {
        Err(Failure::reported(
            "corrupt",
            exit::CORRUPT,
            format!("verify found {} problem(s)", rep.findings.len()),
        ))
    }
}

pub(super) fn repair_from_backup(ctx: &Ctx, name: &str) -> CmdResult {
    let dir = ctx.store_dir()?;
    let r = got::versioned_store::backup::repair_from_backup(
        Arc::new(got::wal::RealVfs),
        &dir,
        name,
        got::wal::lock::lock_timeout_from_env(),
    )?;
    ctx.print(
        json!({"schema_version": 1, "restored": backup_json(&r.restore.restored),
               "safety_backup": r.restore.safety.as_ref().map(backup_json),
               "quarantined": r.restore.quarantined,
               "backup_lsn": r.backup_lsn, "replayed": r.replayed,
               "last_lsn": r.last_lsn, "stopped": r.stopped}),
        || {
            format!(
                "restored backup {} (through LSN {}) and replayed {} transaction(s) from the log after it; the store now ends at LSN {}\nthe replay stopped at {}{}",
                r.restore.restored.name, r.backup_lsn, r.replayed, r.last_lsn, r.stopped, kept_text(&r.restore)
            )
        },
    );
    Ok(())
}

pub(super) fn repair(ctx: &Ctx, truncate: bool) -> CmdResult {
    let dir = ctx.store_dir()?;
    let timeout = got::wal::lock::lock_timeout_from_env();
    let vfs = Arc::new(got::wal::RealVfs);
    // Always inspect first, so the loss is printed before anything is cut.
    let rep = got::versioned_store::repair(vfs.clone(), &dir, false, timeout)?;
    let describe = |rep: &got::versioned_store::RepairReport| -> Vec<String> {
        let mut out = Vec::new();
        if let Some((file, offset, bytes)) = &rep.torn_tail {
            out.push(format!(
                "torn tail: {bytes} bytes at {}:{offset}, left by a crash; not damage. The next write moves them to quarantine/.",
                file.display()
            ));
        }
        if let Some(d) = &rep.damage {
            out.push(format!(
                "corruption: {} at {}:{} — valid frames follow it, so acknowledged commits may sit behind it.",
                d.reason,
                d.file.display(),
                d.offset
            ));
            out.push(format!(
                "truncating there would discard LSNs {}..={} ({} later segment file(s)), written to: {}",
                d.first_lost_lsn,
                d.last_lost_lsn.map_or("?".to_string(), |l| l.to_string()),
                d.later_segments,
                if d.lost.is_empty() { "(nothing decodable)".to_string() } else { d.lost.join(", ") }
            ));
        }
        if rep.torn_tail.is_none() && rep.damage.is_none() {
            out.push("the WAL is intact; nothing to repair".into());
        }
        out
    };
    let lines = describe(&rep);
    let damage_json = |rep: &got::versioned_store::RepairReport| {
        rep.damage.as_ref().map(|d| {
            json!({"file": d.file, "offset": d.offset, "reason": d.reason,
                   "first_lost_lsn": d.first_lost_lsn, "last_lost_lsn": d.last_lost_lsn,
                   "lost": d.lost, "later_segments": d.later_segments})
        })
    };
    if rep.damage.is_some() && truncate {
        if !ctx.json {
            println!("{}", lines.join("\n"));
        }
        let done = got::versioned_store::repair(vfs, &dir, true, timeout)?;
        ctx.print(
            json!({"damage": damage_json(&done), "truncated": done.truncated}),
            || "truncated: the damaged frame and everything after it are in quarantine/; the store opens again".into(),
        );
        return Ok(());
    }
    ctx.print(
        json!({"damage": damage_json(&rep), "torn_tail": rep.torn_tail.as_ref().map(|(f, o, b)| json!({"file": f, "offset": o, "bytes": b})), "truncated": false}),
        || {
            let mut l = lines.clone();
            if rep.damage.is_some() {
                l.push("nothing changed; rerun with --truncate-at-corruption to cut the log there".into());
            }
            l.join("\n")
        },
    );
    if rep.damage.is_some() {
        return Err(Failure::reported(
            "corrupt",
            exit::CORRUPT,
            "the WAL is damaged mid-log (see above)",
        ));
    }
    Ok(())
}
