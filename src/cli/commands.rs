//! One function per command: resolve the store, call the library, print.

use super::args::{Cli, Command, Dir, EdgeCmd, EntityCmd, Follow, ImportFormat, QueryCmd};
use super::{exit, CmdResult, Failure};
use got::json::{entity_to_json, format_ms, props_from_json_str, props_to_json};
use got::{Direction, Entity, Options, Store};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(super) struct Ctx {
    pub(super) store_flag: Option<PathBuf>,
    pub(super) json: bool,
    pub(super) quiet: bool,
    agent: Option<String>,
}

/// How many transactions the log may hold past a checkpoint before a CLI
/// command that commits runs the next one.
pub const CLI_CHECKPOINT_TRANSACTIONS: u64 = 256;

impl Ctx {
    /// `--store`/`GOT_DIR` (clap merges them), else the nearest `.got` upwards,
    /// where a linked git worktree leads to its main worktree's (`got::locate`).
    fn store_dir(&self) -> Result<PathBuf, Failure> {
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
            let t = text();
            if !t.is_empty() {
                println!("{t}");
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

pub fn dispatch(cli: Cli) -> CmdResult {
    let ctx = Ctx {
        store_flag: cli.store,
        json: cli.json,
        quiet: cli.quiet,
        agent: cli.agent,
    };
    match cli.command {
        Command::Init => init(&ctx),
        Command::Migrate {
            accept_bad_checksums,
        } => super::transfer::migrate(&ctx, accept_bad_checksums),
        #[cfg(feature = "server")]
        Command::Serve {
            listen,
            token_file,
            max_connections,
            header_timeout,
        } => super::serve::serve(&ctx, listen, token_file, max_connections, &header_timeout),
        #[cfg(feature = "server")]
        Command::Mcp => super::serve::mcp(&ctx),
        Command::Setup {
            client,
            print,
            force,
            dir,
        } => super::setup::setup(&ctx, client, dir, print, force),
        Command::Demo { threads } => demo(&ctx, threads),
        Command::Entity(c) => entity(&ctx, c),
        Command::Edge(c) => edge(&ctx, c),
        Command::History { id } => history(&ctx, &id),
        Command::Query(q) => query(&ctx, q),
        Command::Checkpoint => checkpoint(&ctx),
        Command::Stats => stats(&ctx),
        Command::Verify => verify(&ctx),
        Command::Repair(a) => match a.from_backup {
            Some(name) => repair_from_backup(&ctx, &name),
            None => repair(&ctx, a.truncate_at_corruption),
        },
        Command::Task(c) => super::tasks::task(&ctx, c),
        Command::Ready { limit } => super::tasks::ready(&ctx, limit),
        Command::Blocked => super::tasks::blocked(&ctx),
        Command::Handoff(c) => super::work::handoff(&ctx, c),
        Command::Decision(c) => super::work::decision(&ctx, c),
        Command::Sprint(c) => super::work::sprint(&ctx, c),
        Command::Epic(c) => super::work::epic(&ctx, c),
        Command::Dashboard => super::board::dashboard(&ctx),
        Command::Prime { limit } => super::board::prime(&ctx, limit),
        Command::Validate => validate(&ctx),
        Command::Backup(c) => backup(&ctx, c),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = super::args::Cli::command();
            clap_complete::generate(shell, &mut cmd, "got", &mut std::io::stdout());
            Ok(())
        }
        Command::Sync(a) => super::sync::sync(&ctx, a),
        Command::MergeDriver {
            base,
            ours,
            theirs,
            path,
        } => super::sync::merge_driver(&base, &ours, &theirs, path.as_deref()),
        Command::Hooks(c) => super::sync::hooks(&ctx, c),
        Command::Export { out } => super::transfer::export(&ctx, out),
        Command::Import {
            file,
            from,
            batch,
            accept_bad_checksums,
        } => match from {
            ImportFormat::GotJson => {
                super::transfer::import_got_json(&ctx, &file, accept_bad_checksums)
            }
            _ => super::transfer::import(&ctx, &file, from, batch),
        },
        Command::Graph { id, depth, format } => {
            // --json picks the JSON format.
            let format = if ctx.json {
                super::args::GraphFormat::Json
            } else {
                format
            };
            super::board::graph(&ctx, id, depth, format)
        }
    }
}

fn init(ctx: &Ctx) -> CmdResult {
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
    let (setup, incoming) = super::sync::init_in_work_tree(ctx, &top, &dir)?;
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

fn entity_text(e: &Entity) -> String {
    format!(
        "{} {} v{} {}",
        e.id,
        e.kind,
        e.version,
        props_to_json(&e.props)
    )
}

fn entity(ctx: &Ctx, c: EntityCmd) -> CmdResult {
    match c {
        EntityCmd::Put {
            kind,
            id,
            props,
            if_version,
        } => {
            let props = props_from_json_str(&props)
                .map_err(|m| Failure::new("invalid", exit::INVALID, m))?;
            if let Some(id) = &id {
                got::check_kind_id(&kind, id)?;
            }
            let store = ctx.open()?;
            // With --if-version the caller asked for compare-and-swap: no retry.
            let e = store.transaction(|tx| match (&id, if_version) {
                (Some(id), Some(v)) => tx.put_if_version(id, &kind, props.clone(), v),
                (Some(id), None) => tx.put(id, &kind, props.clone()),
                (None, Some(v)) if v != 0 => {
                    Err(got::Error::Invalid("--if-version N > 0 needs --id".into()))
                }
                (None, _) => match got::id_prefix_of(&kind) {
                    Some(p) => tx.create_with_prefix(p, &kind, props.clone()),
                    None => tx.create(&kind, props.clone()),
                },
            })?;
            ctx.print(entity_to_json(&e), || format!("{} v{}", e.id, e.version));
        }
        EntityCmd::Get { id } => {
            let store = ctx.open_read_only()?;
            let e = store.get(&id)?.ok_or_else(|| {
                Failure::new(
                    "not_found",
                    exit::NOT_FOUND,
                    format!("not found: entity {id}"),
                )
            })?;
            ctx.print(entity_to_json(&e), || entity_text(&e));
        }
        EntityCmd::List {
            kind,
            wheres,
            labels,
            text,
            sort,
            limit,
            after,
        } => {
            let q = build_query(kind, &wheres, labels, text, &sort, limit, after)?;
            let store = ctx.open_read_only()?;
            let list = q.run(&mut store.begin()?)?;
            ctx.print(
                json!(list.iter().map(entity_to_json).collect::<Vec<_>>()),
                || list.iter().map(entity_text).collect::<Vec<_>>().join("\n"),
            );
        }
        EntityCmd::Delete { id } => {
            let store = ctx.open()?;
            let e = store.transaction(|tx| tx.delete(&id))?;
            ctx.print(json!({"deleted": e.id, "version": e.version + 1}), || {
                format!("deleted {}", e.id)
            });
        }
    }
    Ok(())
}

fn build_query(
    kind: Option<String>,
    wheres: &[String],
    labels: Vec<String>,
    text: Option<String>,
    sort: &str,
    limit: Option<usize>,
    after: Option<String>,
) -> Result<got::query::Query, Failure> {
    use got::query::{Filter, Query, SortKey};
    let invalid = |m: String| Failure::new("invalid", exit::INVALID, m);
    // Values per property, in first-seen order: one property's values are OR-ed.
    let mut by_prop: Vec<(String, Vec<got::Value>)> = Vec::new();
    for w in wheres {
        let (p, v) = w
            .split_once('=')
            .ok_or_else(|| invalid(format!("--where {w:?}: expected PROP=VALUE")))?;
        let v = serde_json::from_str::<serde_json::Value>(v)
            .map(|j| got::json::from_json(&j))
            .unwrap_or_else(|_| got::Value::String(v.to_string()));
        match by_prop.iter_mut().find(|(q, _)| q == p) {
            Some((_, vs)) => vs.push(v),
            None => by_prop.push((p.to_string(), vec![v])),
        }
    }
    let mut filters: Vec<Filter> = by_prop
        .into_iter()
        .map(|(p, mut vs)| {
            if vs.len() == 1 {
                Filter::Eq(p, vs.remove(0))
            } else {
                Filter::In(p, vs)
            }
        })
        .collect();
    filters.extend(labels.into_iter().map(Filter::Label));
    filters.extend(text.map(Filter::Text));
    let (descending, key) = match sort.strip_prefix('-') {
        Some(k) => (true, k),
        None => (false, sort),
    };
    let sort = match key {
        "id" => SortKey::Id,
        "version" => SortKey::Version,
        "created" => SortKey::CreatedAt,
        "updated" => SortKey::UpdatedAt,
        "" => return Err(invalid("--sort needs a key".into())),
        p => SortKey::Prop(p.to_string()),
    };
    Ok(Query {
        id_prefix: kind
            .as_deref()
            .and_then(got::scan_prefix_of)
            .map(String::from),
        kind,
        filters,
        sort,
        descending,
        limit,
        after,
    })
}

fn edge(ctx: &Ctx, c: EdgeCmd) -> CmdResult {
    match c {
        EdgeCmd::Add {
            from,
            kind,
            to,
            props,
        } => {
            let props = props_from_json_str(&props)
                .map_err(|m| Failure::new("invalid", exit::INVALID, m))?;
            let store = ctx.open()?;
            store.transaction(|tx| tx.add_edge(&from, &kind, &to, props.clone()))?;
            ctx.print(json!({"from": from, "kind": kind, "to": to}), || {
                format!("{from} -{kind}-> {to}")
            });
        }
        EdgeCmd::Rm { from, kind, to } => {
            let store = ctx.open()?;
            let existed = store.transaction(|tx| tx.remove_edge(&from, &kind, &to))?;
            if !existed {
                return Err(Failure::new(
                    "not_found",
                    exit::NOT_FOUND,
                    format!("not found: edge {from} -{kind}-> {to}"),
                ));
            }
            ctx.print(
                json!({"removed": {"from": from, "kind": kind, "to": to}}),
                || format!("removed {from} -{kind}-> {to}"),
            );
        }
        EdgeCmd::List {
            id,
            kind,
            direction,
        } => {
            let store = ctx.open_read_only()?;
            let mut tx = store.begin()?;
            if tx.get(&id)?.is_none() {
                return Err(Failure::new(
                    "not_found",
                    exit::NOT_FOUND,
                    format!("not found: entity {id}"),
                ));
            }
            let edges = tx.edges(&id, self::direction(direction), kind.as_deref())?;
            ctx.print(
                json!(edges
                    .iter()
                    .map(|e| json!({"from": e.from, "kind": e.kind, "to": e.to, "props": props_to_json(&e.props)}))
                    .collect::<Vec<_>>()),
                || {
                    edges
                        .iter()
                        .map(|e| format!("{} -{}-> {}", e.from, e.kind, e.to))
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            );
        }
    }
    Ok(())
}

fn direction(d: Dir) -> Direction {
    match d {
        Dir::Out => Direction::Out,
        Dir::In => Direction::In,
        Dir::Both => Direction::Both,
    }
}

fn filter(f: &Follow) -> got::graph::EdgeFilter {
    got::graph::EdgeFilter {
        kinds: f.kinds.clone(),
        direction: direction(f.direction),
    }
}

fn require(tx: &mut got::Transaction<'_>, id: &str) -> CmdResult {
    match tx.get(id)? {
        Some(_) => Ok(()),
        None => Err(Failure::new(
            "not_found",
            exit::NOT_FOUND,
            format!("not found: entity {id}"),
        )),
    }
}

fn query(ctx: &Ctx, q: QueryCmd) -> CmdResult {
    use got::graph;
    let store = ctx.open_read_only()?;
    let mut tx = store.begin()?;
    match q {
        QueryCmd::Neighbors { id, follow } => {
            require(&mut tx, &id)?;
            let n = graph::neighbors(&mut tx, &id, &filter(&follow))?;
            ctx.print(json!(n), || n.join("\n"));
        }
        QueryCmd::Path { from, to, follow } => {
            require(&mut tx, &from)?;
            require(&mut tx, &to)?;
            match graph::shortest_path(&mut tx, &from, &to, &filter(&follow))? {
                Some(p) => ctx.print(json!(p), || p.join(" -> ")),
                None => {
                    return Err(Failure::new(
                        "not_found",
                        exit::NOT_FOUND,
                        format!("no path from {from} to {to}"),
                    ))
                }
            }
        }
        QueryCmd::Reach {
            from,
            depth,
            follow,
        } => {
            require(&mut tx, &from)?;
            let r = graph::bfs(&mut tx, &from, &filter(&follow), depth)?;
            ctx.print(
                json!(r
                    .iter()
                    .map(|(id, d)| json!({"id": id, "depth": d}))
                    .collect::<Vec<_>>()),
                || {
                    r.iter()
                        .map(|(id, d)| format!("{d} {id}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            );
        }
        QueryCmd::Cycles { of, kinds } => {
            let f = graph::EdgeFilter {
                kinds,
                direction: Direction::Out,
            };
            let c = graph::strongly_connected_components(&mut tx, of.as_deref(), &f, true)?;
            ctx.print(json!(c), || {
                if c.is_empty() {
                    "no cycles".into()
                } else {
                    c.iter().map(|c| c.join(" ")).collect::<Vec<_>>().join("\n")
                }
            });
        }
        QueryCmd::Ready { limit } => {
            let r = got::ready::ready(&mut tx, Some(limit))?;
            ctx.print(
                json!(r.iter().map(entity_to_json).collect::<Vec<_>>()),
                || {
                    if r.is_empty() {
                        "nothing ready".into()
                    } else {
                        r.iter().map(entity_text).collect::<Vec<_>>().join("\n")
                    }
                },
            );
        }
        QueryCmd::Topo { of, kinds } => {
            let f = graph::EdgeFilter {
                kinds,
                direction: Direction::Out,
            };
            match graph::topo_order(&mut tx, of.as_deref(), &f)? {
                Ok(order) => ctx.print(json!(order), || order.join("\n")),
                Err(cycle) => {
                    return Err(Failure::new(
                        "conflict",
                        exit::CONFLICT,
                        format!("no topological order: cycle {}", cycle.join(" -> ")),
                    ))
                }
            }
        }
    }
    Ok(())
}

fn history(ctx: &Ctx, id: &str) -> CmdResult {
    let store = ctx.open_read_only()?;
    let h = store.history(id)?;
    if h.is_empty() {
        return Err(Failure::new(
            "not_found",
            exit::NOT_FOUND,
            format!("not found: entity {id}"),
        ));
    }
    ctx.print(
        json!(h
            .iter()
            .map(|v| json!({
                "lsn": v.lsn, "version": v.version, "actor": v.actor, "time_ms": v.time_ms,
                "deleted": v.deleted, "props": v.entity.as_ref().map(|e| props_to_json(&e.props)),
            }))
            .collect::<Vec<_>>()),
        || {
            h.iter()
                .map(|v| {
                    let what = match &v.entity {
                        Some(e) => props_to_json(&e.props).to_string(),
                        None => "(deleted)".into(),
                    };
                    format!(
                        "v{} lsn {} by {} at {} {}",
                        v.version,
                        v.lsn,
                        v.actor,
                        format_ms(v.time_ms),
                        what
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
    Ok(())
}

fn checkpoint(ctx: &Ctx) -> CmdResult {
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
fn dir_bytes(dir: &Path) -> u64 {
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

fn stats(ctx: &Ctx) -> CmdResult {
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
fn kept_text(r: &got::versioned_store::backup::RestoreInfo) -> String {
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

fn backup_json(b: &got::versioned_store::backup::BackupInfo) -> serde_json::Value {
    json!({"name": b.name, "lsn": b.lsn, "runs": b.runs, "bytes": b.bytes, "path": b.path})
}

fn backup(ctx: &Ctx, c: super::args::BackupCmd) -> CmdResult {
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
                    all.iter()
                        .map(|b| format!("{}  LSN {:>8}  {:>3} runs  {:>12} bytes", b.name, b.lsn, b.runs, b.bytes))
                        .collect::<Vec<_>>()
                        .join("\n")
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

fn validate(ctx: &Ctx) -> CmdResult {
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

fn verify(ctx: &Ctx) -> CmdResult {
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

fn repair_from_backup(ctx: &Ctx, name: &str) -> CmdResult {
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

fn repair(ctx: &Ctx, truncate: bool) -> CmdResult {
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

/// A small multi-agent scenario in a new temporary store: a planner lays out an
/// epic, a sprint and eight dependent tasks and logs a decision; `threads` agents
/// (threads, each its own handle, as separate processes would be) claim ready
/// tasks with `next --claim` and complete them until none is left; one task is
/// handed off; then the dashboard.
fn demo(ctx: &Ctx, threads: usize) -> CmdResult {
    use got::{decisions, handoffs, plans, tasks};
    let threads = threads.clamp(1, 64);
    let tmp = tempfile::Builder::new()
        .prefix("got-demo-")
        .tempdir()
        .map_err(|e| Failure::new("io", exit::ERROR, format!("temporary directory: {e}")))?
        .keep();
    let dir = tmp.join(".got");
    if !ctx.json {
        println!("demo store: {}\n", dir.display());
    }
    got::init(&got::wal::RealVfs, &dir)?;
    let store = Store::open(&dir, ctx.options()?)?.with_actor("planner");
    let epic = plans::create_epic(
        &store,
        "planner",
        "Ship the WAL",
        &["design".into(), "build".into()],
    )?;
    let sprint = plans::create_sprint(
        &store,
        "planner",
        "Sprint 1",
        None,
        Some(&epic.id),
        &["recovery survives SIGKILL".into()],
    )?;
    // (title, priority, indexes of the tasks it depends on)
    let plan: [(&str, &str, &[usize]); 8] = [
        ("Design the segment format", "critical", &[]),
        ("Write segments with preallocation", "high", &[0]),
        ("Recover a torn tail", "high", &[1]),
        ("Kill writers in a loop", "medium", &[2]),
        ("Benchmark durable commits", "medium", &[1]),
        ("Document the format", "low", &[0]),
        ("CLI: got verify", "high", &[]),
        ("Review the CLI", "medium", &[6]),
    ];
    let mut ids: Vec<String> = Vec::new();
    for (title, priority, deps) in plan {
        let t = tasks::create(
            &store,
            "planner",
            &tasks::NewTask {
                title: title.into(),
                priority: Some(priority.into()),
                depends_on: deps.iter().map(|d| ids[*d].clone()).collect(),
                part_of: vec![sprint.id.clone()],
                ..Default::default()
            },
        )?;
        ids.push(t.id);
    }
    decisions::log(
        &store,
        "planner",
        "Zero-fill segments instead of fallocate",
        "appends into unwritten extents journal a conversion on every first write",
        &["fallocate".into()],
        std::slice::from_ref(&ids[1]),
    )?;
    plans::start(&store, &sprint.id)?;

    // The agents: claim, work, complete, until nothing is ready.
    let started = std::time::Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|n| {
            let agent = format!("agent-{n}");
            let store = store.with_actor(agent.clone());
            std::thread::spawn(move || -> Result<Vec<(String, String)>, got::Error> {
                let mut done = Vec::new();
                while let Some(t) =
                    tasks::next_claim(&store, &agent, Some(std::time::Duration::from_secs(600)))?
                {
                    tasks::note(&store, &t.id, &agent, "on it")?;
                    tasks::complete(&store, &t.id, &agent, Some("went as planned"))?;
                    done.push((t.id, agent.clone()));
                }
                Ok(done)
            })
        })
        .collect();
    let mut log = Vec::new();
    for h in handles {
        log.extend(
            h.join()
                .map_err(|_| Failure::new("io", exit::ERROR, "a demo agent panicked"))??,
        );
    }
    let elapsed = started.elapsed();
    // One more task, handed from one agent to another mid-way.
    let polish = tasks::create(
        &store,
        "planner",
        &tasks::NewTask {
            title: "Polish the error messages".into(),
            part_of: vec![sprint.id.clone()],
            ..Default::default()
        },
    )?;
    let from = "agent-0".to_string();
    let to = format!("agent-{}", 1 % threads.max(2));
    tasks::claim(&store, &polish.id, &from, None)?;
    let h = handoffs::initiate(&store, &polish.id, &from, &to, "finish the wording", None)?;
    handoffs::accept(&store, &h.id, &to)?;
    plans::complete_goal(&store, &sprint.id, 1)?;

    if ctx.json {
        println!(
            "{}",
            json!({"store": dir, "agents": threads, "completed": log.iter().map(|(t, a)| json!({"task": t, "agent": a})).collect::<Vec<_>>(),
                   "elapsed_ms": elapsed.as_millis() as u64, "handoff": h.id, "epic": epic.id, "sprint": sprint.id})
        );
        return Ok(());
    }
    println!(
        "{threads} agents claimed and completed {} tasks in {} ms; each claim one durable transaction, no task claimed twice:",
        log.len(),
        elapsed.as_millis()
    );
    for (t, a) in &log {
        println!("  {a:<9} {t}");
    }
    println!(
        "{from} handed {} to {to} ({}), who accepted it.\n",
        polish.id, h.id
    );
    let view = Ctx {
        store_flag: Some(dir.clone()),
        json: false,
        quiet: false,
        agent: None,
    };
    super::board::dashboard(&view)?;
    println!(
        "\ntry: got --store {} task list   (or dashboard, graph, blocked, decision why {})",
        shell_quote(&dir),
        ids[1]
    );
    Ok(())
}

fn shell_quote(p: &Path) -> String {
    let s = p.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
