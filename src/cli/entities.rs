//! The graph's own commands: `got entity`, `got edge`, `got query`, `got history`.

use super::args::{Dir, EdgeCmd, EntityCmd, Follow, QueryCmd};
use super::ctx::Ctx;
use super::{exit, CmdResult, Failure};
use got::json::{entity_to_json, format_ms, props_from_json_str, props_to_json};
use got::{Direction, Entity};
use serde_json::json;

pub(super) fn entity_text(e: &Entity) -> String {
    format!(
        "{} {} v{} {}",
        e.id,
        e.kind,
        e.version,
        props_to_json(&e.props)
    )
}

pub(super) fn entity(ctx: &Ctx, c: EntityCmd) -> CmdResult {
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

pub(super) fn build_query(
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

pub(super) fn edge(ctx: &Ctx, c: EdgeCmd) -> CmdResult {
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

pub(super) fn direction(d: Dir) -> Direction {
    match d {
        Dir::Out => Direction::Out,
        Dir::In => Direction::In,
        Dir::Both => Direction::Both,
    }
}

pub(super) fn filter(f: &Follow) -> got::graph::EdgeFilter {
    got::graph::EdgeFilter {
        kinds: f.kinds.clone(),
        direction: direction(f.direction),
    }
}

pub(super) fn require(tx: &mut got::Transaction<'_>, id: &str) -> CmdResult {
    match tx.get(id)? {
        Some(_) => Ok(()),
        None => Err(Failure::new(
            "not_found",
            exit::NOT_FOUND,
            format!("not found: entity {id}"),
        )),
    }
}

pub(super) fn query(ctx: &Ctx, q: QueryCmd) -> CmdResult {
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

pub(super) fn history(ctx: &Ctx, id: &str) -> CmdResult {
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
