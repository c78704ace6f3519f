//! The merge: one function, used by the git merge driver, by import and by
//! sync. It is a join — commutative, associative and idempotent — so replicas
//! that have seen the same edits hold the same state, in whatever order and
//! however often they merged. The rules (docs/sync.md, "The merge"):
//!
//! - An entity's plain fields: the higher clock wins (a removal is a value).
//! - Sets (labels): per element, the later of its add and its remove wins.
//! - Logs (notes): the union; nothing appended is ever lost.
//! - A task's work state (status, assignee, lease, as one value): a move
//!   (start, complete, block, release, renew) opens a new epoch and the later
//!   of two moves from one state wins; the claims of one free state race and
//!   the earliest wins.
//! - A deletion absorbs every edit: an entity deleted on any replica stays
//!   deleted (ids are random and never reused).
//! - Edges: the later of add and remove wins (at one clock the remove, see
//!   [`join_edge`]); props go with the winner.
//!
//! Other ties of equal clocks (one node never issues a clock twice, so only a
//! file edited by hand has them) fall to the greater canonical value, so the
//! result is still the same everywhere.

use super::doc::{canonical, Body, Claim, Doc, EdgeDoc, Elem, EntityDoc, Field};
use serde_json::Value as Json;
use std::cmp::Reverse;
use std::collections::BTreeMap;

/// The merge of two replicas' states.
pub fn merge(a: &Doc, b: &Doc) -> Doc {
    let mut d = Doc {
        entities: join_maps(&a.entities, &b.entities, join_entity),
        edges: join_maps(&a.edges, &b.edges, join_edge),
    };
    remove_edges_of_deleted(&mut d);
    d
}

/// An edge with a deleted end is removed, at the latest of its own clock and
/// its ends' deletions: what every store does when it applies the deletion, so
/// that no clone has to record it as a change of its own (each at another
/// clock). A function of the joined state, so the merge stays a join.
fn remove_edges_of_deleted(d: &mut Doc) {
    let deleted = |id: &str| match d.entities.get(id).map(|e| &e.body) {
        Some(Body::Deleted(at)) => Some(*at),
        _ => None,
    };
    let mut fixes = Vec::new();
    for ((from, kind, to), e) in &d.edges {
        let ends = [deleted(from), deleted(to)];
        if let Some(del) = ends.iter().flatten().max() {
            let at = e.at.max(*del);
            if e.present || at != e.at {
                fixes.push(((from.clone(), kind.clone(), to.clone()), at));
            }
        }
    }
    for (k, at) in fixes {
        d.edges.insert(
            k,
            EdgeDoc {
                at,
                present: false,
                props: Default::default(),
            },
        );
    }
}

fn join_maps<K: Ord + Clone, V: Clone + PartialEq>(
    a: &BTreeMap<K, V>,
    b: &BTreeMap<K, V>,
    join: impl Fn(&V, &V) -> V,
) -> BTreeMap<K, V> {
    let mut out = a.clone();
    for (k, v) in b {
        match out.get_mut(k) {
            // Most records of two replicas are the same: nothing to join.
            Some(mine) if mine == v => {}
            Some(mine) => *mine = join(mine, v),
            None => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

fn value_key(v: &Option<Json>) -> Option<String> {
    v.as_ref().map(canonical)
}

/// The greater of two by `key` (`a` when equal: then they are the same).
fn max_by<T: Clone, K: Ord>(a: &T, b: &T, key: impl Fn(&T) -> K) -> T {
    if key(b) > key(a) {
        b.clone()
    } else {
        a.clone()
    }
}

pub fn join_entity(a: &EntityDoc, b: &EntityDoc) -> EntityDoc {
    // Kind and creation are fixed when an entity is made; two replicas that made
    // one id differently (only by hand) keep the earlier.
    let (created_at, kind) = std::cmp::min(
        (a.created_at, a.kind.clone()),
        (b.created_at, b.kind.clone()),
    );
    let body = match (&a.body, &b.body) {
        (Body::Deleted(x), Body::Deleted(y)) => Body::Deleted(*x.max(y)),
        (Body::Deleted(x), Body::Live(_)) | (Body::Live(_), Body::Deleted(x)) => Body::Deleted(*x),
        (Body::Live(x), Body::Live(y)) => Body::Live(join_maps(x, y, join_field)),
    };
    EntityDoc {
        kind,
        created_at,
        body,
    }
}

/// Which rule a field follows, for two replicas that disagree on it (a file
/// edited by hand): the higher rule wins, whole.
fn rule(f: &Field) -> u8 {
    match f {
        Field::Reg { .. } => 0,
        Field::Set(_) => 1,
        Field::Log(_) => 2,
        Field::Claim(_) => 3,
    }
}

pub fn join_field(a: &Field, b: &Field) -> Field {
    match (a, b) {
        (Field::Reg { .. }, Field::Reg { .. }) => max_by(a, b, |f| match f {
            Field::Reg { at, value } => (*at, value_key(value)),
            _ => unreachable!(),
        }),
        (Field::Set(x), Field::Set(y)) => Field::Set(join_maps(x, y, |p, q| join_elem(*p, *q))),
        (Field::Log(x), Field::Log(y)) => Field::Log(join_maps(x, y, |p, _| p.clone())),
        (Field::Claim(x), Field::Claim(y)) => Field::Claim(join_claim(x, y)),
        _ => {
            if rule(b) > rule(a) {
                b.clone()
            } else {
                a.clone()
            }
        }
    }
}

pub fn join_elem(a: Elem, b: Elem) -> Elem {
    max_by(&a, &b, |e| (e.at, e.present))
}

/// Work states: ordered by (epoch, step), a move (a new epoch) beating every
/// claim of the state it left and a claim beating the state it took; of two
/// moves of one epoch the later wins. The claims of one state are a set — the
/// earliest holds the task, the others are its `lost` — so their join is a
/// union, whatever order clones merge in. (A total order on the first part and
/// a semilattice on the rest: their lexicographic join is a join.)
pub fn join_claim(a: &Claim, b: &Claim) -> Claim {
    use super::doc::Step;
    use super::hlc::Hlc;
    if a.epoch == b.epoch && a.step == Step::Claim && b.step == Step::Claim {
        // Every claim either side knows of, as (when, agent, the state).
        let mut all: Vec<(Hlc, String, Option<&Claim>)> = Vec::new();
        for c in [a, b] {
            let agent = c.holder.as_ref().map_or(String::new(), |h| h.agent.clone());
            all.push((c.at, agent, Some(c)));
            for (agent, at) in &c.lost {
                all.push((*at, agent.clone(), None));
            }
        }
        // The winner is the earliest of the two states (a loser is never
        // earlier than the claim that beat it).
        let winner = all
            .iter()
            .filter_map(|(at, _, c)| c.map(|c| (*at, c)))
            .min_by_key(|(at, c)| (*at, format!("{:?}\0{:?}", c.status, c.holder)))
            .map(|(_, c)| c)
            .expect("two states");
        let mut out = winner.clone();
        let win_agent = out.holder.as_ref().map(|h| h.agent.clone());
        out.lost = all
            .into_iter()
            .filter(|(at, agent, _)| !(*at == out.at && Some(agent) == win_agent.as_ref()))
            .map(|(at, agent, _)| (agent, at))
            .collect();
        return out;
    }
    type Key = (u64, Step, Hlc, Reverse<Hlc>, String);
    fn key(c: &Claim) -> Key {
        let value = format!("{:?}\0{:?}\0{:?}", c.status, c.holder, c.lost);
        match c.step {
            Step::Move => (c.epoch, Step::Move, c.at, Reverse(Hlc::ZERO), value),
            Step::Claim => (c.epoch, Step::Claim, Hlc::ZERO, Reverse(c.at), value),
        }
    }
    max_by(a, b, key)
}

/// The later of two states of an edge; at one clock the removal wins. Two
/// states share a clock when an edge added at or after its end's deletion is
/// removed with it (at the edge's own clock, see `remove_edges_of_deleted`):
/// a merge of part of a document (one chunk of an import) then still removes
/// it, as the whole merge does.
pub fn join_edge(a: &EdgeDoc, b: &EdgeDoc) -> EdgeDoc {
    max_by(a, b, |e| {
        (e.at, !e.present, canonical(&Json::Object(e.props.clone())))
    })
}

impl Doc {
    /// Drops tombstones (deleted entities, removed edges, removed set elements)
    /// whose clock is below `cutoff_ms`: sync does it for those older than the
    /// retention (90 days by default). A replica that was away for longer may
    /// bring a dropped one back.
    pub fn drop_tombstones(&mut self, cutoff_ms: u64) {
        self.entities.retain(|_, e| match e.body {
            Body::Deleted(at) => at.ms >= cutoff_ms,
            Body::Live(_) => true,
        });
        self.edges.retain(|_, e| e.present || e.at.ms >= cutoff_ms);
        for e in self.entities.values_mut() {
            if let Body::Live(fields) = &mut e.body {
                for f in fields.values_mut() {
                    if let Field::Set(elems) = f {
                        elems.retain(|_, el| el.present || el.at.ms >= cutoff_ms);
                    }
                }
            }
        }
    }
}

/// A record's key, read from the start of its line without parsing it: an
/// entity's id, or an edge's ends and kind. (Ids and kinds never need escapes.)
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum LineKey<'a> {
    Entity(&'a str),
    Edge(&'a str, &'a str, &'a str),
}

pub(super) fn line_key(line: &str) -> Option<LineKey<'_>> {
    let plain = |s: &str| !s.is_empty() && !s.contains('\\');
    if let Some(rest) = line.strip_prefix("{\"id\":\"") {
        let end = rest.find('"')?;
        let id = &rest[..end];
        return (plain(id) && rest[end..].starts_with("\",")).then_some(LineKey::Entity(id));
    }
    let rest = line.strip_prefix("{\"edge\":[\"")?;
    let end = rest.find("\"]")?;
    let mut parts = rest[..end].split("\",\"");
    let (from, kind, to) = (parts.next()?, parts.next()?, parts.next()?);
    (parts.next().is_none() && [from, kind, to].iter().all(|p| plain(p)))
        .then_some(LineKey::Edge(from, kind, to))
}

/// The lines of a tracked file with their keys and line numbers, when it is as
/// got writes it: the header, then strictly increasing keys.
pub(super) fn keyed_lines<'a>(
    t: &'a str,
    header: &str,
) -> Option<Vec<(LineKey<'a>, &'a str, usize)>> {
    let mut it = t.lines().enumerate();
    if it.next().map(|(_, l)| l) != Some(header) {
        return None;
    }
    let mut out: Vec<(LineKey<'a>, &'a str, usize)> = Vec::new();
    for (i, l) in it {
        let k = line_key(l)?;
        if out.last().is_some_and(|(p, _, _)| *p >= k) {
            return None;
        }
        out.push((k, l, i + 1));
    }
    Some(out)
}

/// Whether an entity's line is a deletion (read whole when it may be one).
fn is_deletion(line: &str) -> bool {
    if !line.contains("\"deleted\"") {
        return false;
    }
    let mut d = Doc::default();
    d.insert_line(line).is_ok()
        && d.entities
            .values()
            .any(|e| matches!(e.body, Body::Deleted(_)))
}

/// Which input of [`merge_bytes`] could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Ours,
    Theirs,
}

/// The merge of two tracked files, as bytes: what `Doc::parse` of both,
/// [`merge`] and `to_bytes` give. Files as got writes them (sorted, one record a
/// line) are merged line by line: a line both sides hold is kept as it is, and
/// only records whose lines differ are read and joined, so merging two large
/// files that each changed a few records reads only those (and the records one
/// side alone has). Anything else (a file out of order, a line whose key cannot
/// be seen) is read whole.
pub fn merge_bytes(a: &[u8], b: &[u8]) -> Result<Vec<u8>, (Side, super::ParseError)> {
    use super::doc::ParseError;
    let slow = || {
        let da = Doc::parse(a).map_err(|e| (Side::Ours, e))?;
        let db = Doc::parse(b).map_err(|e| (Side::Theirs, e))?;
        Ok(merge(&da, &db).to_bytes())
    };
    let (Ok(ta), Ok(tb)) = (std::str::from_utf8(a), std::str::from_utf8(b)) else {
        return slow();
    };
    let header = format!("{{\"got_tracked\":{}}}", super::doc::FORMAT_VERSION);
    let (la, lb) = (keyed_lines(ta, &header), keyed_lines(tb, &header));
    let (Some(la), Some(lb)) = (la, lb) else {
        return slow();
    };
    let read = |side: Side, line: &str, n: usize| -> Result<Doc, (Side, ParseError)> {
        let mut d = Doc::default();
        d.insert_line(line)
            .map_err(|message| (side, ParseError { line: n, message }))?;
        Ok(d)
    };
    // An edge to an entity either side deletes may need removing (see
    // `remove_edges_of_deleted`): such files are merged whole.
    let deleted_ids: std::collections::BTreeSet<&str> = la
        .iter()
        .chain(lb.iter())
        .filter_map(|(k, l, _)| match k {
            LineKey::Entity(id) if is_deletion(l) => Some(*id),
            _ => None,
        })
        .collect();
    let touches = |k: &LineKey<'_>| match k {
        LineKey::Edge(f, _, t) => deleted_ids.contains(f) || deleted_ids.contains(t),
        LineKey::Entity(_) => false,
    };
    if !deleted_ids.is_empty() && la.iter().chain(lb.iter()).any(|(k, _, _)| touches(k)) {
        return slow();
    }
    let mut out = String::with_capacity(ta.len().max(tb.len()) + 64);
    out.push_str(&header);
    out.push('\n');
    let (mut i, mut j) = (0, 0);
    while i < la.len() || j < lb.len() {
        let ord = match (la.get(i), lb.get(j)) {
            (Some(x), Some(y)) => x.0.cmp(&y.0),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        let line = match ord {
            // A record one side alone has is read (so a damaged line is an
            // error, as a full read finds it) and kept as it is.
            std::cmp::Ordering::Less => {
                i += 1;
                let (_, x, n) = &la[i - 1];
                read(Side::Ours, x, *n)?;
                x.to_string()
            }
            std::cmp::Ordering::Greater => {
                j += 1;
                let (_, y, n) = &lb[j - 1];
                read(Side::Theirs, y, *n)?;
                y.to_string()
            }
            std::cmp::Ordering::Equal => {
                let ((_, x, nx), (_, y, ny)) = (&la[i], &lb[j]);
                i += 1;
                j += 1;
                if x == y {
                    x.to_string()
                } else {
                    let joined = merge(&read(Side::Ours, x, *nx)?, &read(Side::Theirs, y, *ny)?);
                    let bytes = joined.to_bytes();
                    let text = String::from_utf8(bytes).expect("got writes UTF-8");
                    // The joined record is the line after the header.
                    text.lines().nth(1).unwrap_or_default().to_string()
                }
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out.into_bytes())
}
