//! Graph queries over one transaction's snapshot: neighbors, breadth-first
//! traversal, shortest path, reachability, "would this edge close a cycle?",
//! topological order and strongly connected components.
//!
//! Every function reads through a [`Transaction`], so all of one query sees one
//! consistent state, and what it read joins the transaction's read set (a
//! transaction that adds an edge after checking for a cycle conflicts if the graph
//! changed underneath).

use crate::{Direction, Result, Transaction};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// Which edges a query follows: their kinds (empty: every kind) and direction.
#[derive(Clone, Debug)]
pub struct EdgeFilter {
    pub kinds: Vec<String>,
    pub direction: Direction,
}

impl EdgeFilter {
    /// Outgoing edges of the given kinds (none given: all kinds).
    pub fn out(kinds: &[&str]) -> Self {
        EdgeFilter {
            kinds: kinds.iter().map(|k| k.to_string()).collect(),
            direction: Direction::Out,
        }
    }
    pub fn direction(mut self, d: Direction) -> Self {
        self.direction = d;
        self
    }
}

/// The ids one step away from `id`, sorted, without duplicates.
pub fn neighbors(tx: &mut Transaction<'_>, id: &str, f: &EdgeFilter) -> Result<Vec<String>> {
    let mut out = BTreeSet::new();
    for e in tx.edges(id, f.direction, None)? {
        if !f.kinds.is_empty() && !f.kinds.contains(&e.kind) {
            continue;
        }
        let other = if e.from == id { e.to } else { e.from };
        // A self-loop seen in both directions is still one neighbor.
        out.insert(other);
    }
    Ok(out.into_iter().collect())
}

/// Breadth-first from `start` up to `max_depth` steps: `(id, depth)` in visiting
/// order (by depth, then id), `start` first at depth 0.
pub fn bfs(
    tx: &mut Transaction<'_>,
    start: &str,
    f: &EdgeFilter,
    max_depth: Option<usize>,
) -> Result<Vec<(String, usize)>> {
    let mut seen = BTreeSet::from([start.to_string()]);
    let mut order = vec![(start.to_string(), 0)];
    let mut queue = VecDeque::from([(start.to_string(), 0usize)]);
    while let Some((id, d)) = queue.pop_front() {
        if max_depth.is_some_and(|m| d >= m) {
            continue;
        }
        for n in neighbors(tx, &id, f)? {
            if seen.insert(n.clone()) {
                order.push((n.clone(), d + 1));
                queue.push_back((n, d + 1));
            }
        }
    }
    Ok(order)
}

/// A shortest path `from ..= to` (fewest edges; among equals, the one through the
/// smallest ids first), or `None` if `to` is unreachable.
pub fn shortest_path(
    tx: &mut Transaction<'_>,
    from: &str,
    to: &str,
    f: &EdgeFilter,
) -> Result<Option<Vec<String>>> {
    let mut parent: HashMap<String, String> = HashMap::new();
    let mut seen = BTreeSet::from([from.to_string()]);
    let mut queue = VecDeque::from([from.to_string()]);
    while let Some(id) = queue.pop_front() {
        if id == to {
            let mut path = vec![id.clone()];
            let mut cur = id;
            while let Some(p) = parent.get(&cur) {
                path.push(p.clone());
                cur = p.clone();
            }
            path.reverse();
            return Ok(Some(path));
        }
        for n in neighbors(tx, &id, f)? {
            if seen.insert(n.clone()) {
                parent.insert(n.clone(), id.clone());
                queue.push_back(n);
            }
        }
    }
    Ok(None)
}

/// Whether `to` can be reached from `from` (every id reaches itself).
pub fn reachable(tx: &mut Transaction<'_>, from: &str, to: &str, f: &EdgeFilter) -> Result<bool> {
    Ok(shortest_path(tx, from, to, f)?.is_some())
}

/// Whether adding `from -kind-> to` (for the kinds in `kinds`, followed outwards)
/// would close a cycle; if so, the cycle it would close: `from, to, ..., from`.
pub fn would_close_cycle(
    tx: &mut Transaction<'_>,
    from: &str,
    to: &str,
    kinds: &[&str],
) -> Result<Option<Vec<String>>> {
    let f = EdgeFilter::out(kinds);
    Ok(shortest_path(tx, to, from, &f)?.map(|back| {
        let mut cycle = vec![from.to_string()];
        cycle.extend(back);
        cycle
    }))
}

/// The nodes and out-edges of the graph the filter's kinds span (direction is
/// ignored: edges are taken as stored), over all live entities of `node_kind`
/// (every kind if `None`).
fn whole_graph(
    tx: &mut Transaction<'_>,
    node_kind: Option<&str>,
    kinds: &[String],
) -> Result<BTreeMap<String, Vec<String>>> {
    let nodes: Vec<String> = tx
        .list(node_kind, None)?
        .into_iter()
        .map(|e| e.id)
        .collect();
    let set: BTreeSet<&String> = nodes.iter().collect();
    let mut adj = BTreeMap::new();
    for id in &nodes {
        let mut outs: Vec<String> = tx
            .edges(id, Direction::Out, None)?
            .into_iter()
            .filter(|e| kinds.is_empty() || kinds.contains(&e.kind))
            .map(|e| e.to)
            .filter(|to| set.contains(to))
            .collect();
        outs.sort();
        outs.dedup();
        adj.insert(id.clone(), outs);
    }
    Ok(adj)
}

/// A topological order of the entities (of `node_kind`) along the edges of the
/// filter's kinds: every edge `a -> b` puts `b` before `a` ("dependencies
/// first"). Ties broken by id. `Err(cycle)` names a cycle when there is none.
pub fn topo_order(
    tx: &mut Transaction<'_>,
    node_kind: Option<&str>,
    f: &EdgeFilter,
) -> Result<std::result::Result<Vec<String>, Vec<String>>> {
    let adj = whole_graph(tx, node_kind, &f.kinds)?;
    // Kahn's algorithm on the reversed edges: a node is ready once all it points
    // at are placed.
    let mut pending: BTreeMap<&String, usize> = adj.iter().map(|(k, v)| (k, v.len())).collect();
    let mut rev: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
    for (a, outs) in &adj {
        for b in outs {
            rev.entry(b).or_default().push(a);
        }
    }
    let mut ready: BTreeSet<&String> = pending
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(k, _)| *k)
        .collect();
    let mut order = Vec::new();
    while let Some(n) = ready.pop_first() {
        order.push(n.clone());
        for a in rev.get(n).into_iter().flatten() {
            let c = pending.get_mut(a).expect("node");
            *c -= 1;
            if *c == 0 {
                ready.insert(a);
            }
        }
    }
    if order.len() == adj.len() {
        return Ok(Ok(order));
    }
    // Some node is left: follow out-edges among the leftovers until one repeats.
    let placed: BTreeSet<&String> = order.iter().collect();
    let start = adj
        .keys()
        .find(|k| !placed.contains(k))
        .expect("a leftover");
    let mut path = vec![start.clone()];
    let mut at: BTreeMap<String, usize> = BTreeMap::from([(start.clone(), 0)]);
    loop {
        let cur = path.last().expect("non-empty");
        let next = adj[cur]
            .iter()
            .find(|n| !placed.contains(n))
            .expect("a leftover node has a leftover successor")
            .clone();
        if let Some(&i) = at.get(&next) {
            let mut cycle = path[i..].to_vec();
            cycle.push(next);
            return Ok(Err(cycle));
        }
        at.insert(next.clone(), path.len());
        path.push(next);
    }
}

/// Strongly connected components (Tarjan), each sorted, ordered by their smallest
/// id. With `only_cycles`, just those that hold a cycle (more than one node, or a
/// self-loop).
pub fn strongly_connected_components(
    tx: &mut Transaction<'_>,
    node_kind: Option<&str>,
    f: &EdgeFilter,
    only_cycles: bool,
) -> Result<Vec<Vec<String>>> {
    let adj = whole_graph(tx, node_kind, &f.kinds)?;
    let ids: Vec<&String> = adj.keys().collect();
    let index_of: HashMap<&String, usize> = ids.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let succ: Vec<Vec<usize>> = ids
        .iter()
        .map(|k| adj[*k].iter().map(|n| index_of[n]).collect())
        .collect();
    let n = ids.len();
    let (mut index, mut low, mut on_stack) = (vec![usize::MAX; n], vec![0; n], vec![false; n]);
    let (mut stack, mut next, mut comps) = (Vec::new(), 0usize, Vec::new());
    // Iterative Tarjan: (node, next successor position) frames.
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut frames = vec![(root, 0usize)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut pos)) = frames.last_mut() {
            if *pos < succ[v].len() {
                let w = succ[v][*pos];
                *pos += 1;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    frames.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            frames.pop();
            if let Some(&(parent, _)) = frames.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = Vec::new();
                loop {
                    let w = stack.pop().expect("on stack");
                    on_stack[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                let cyclic = comp.len() > 1 || succ[v].contains(&v);
                if !only_cycles || cyclic {
                    let mut names: Vec<String> = comp.into_iter().map(|i| ids[i].clone()).collect();
                    names.sort();
                    comps.push(names);
                }
            }
        }
    }
    comps.sort();
    Ok(comps)
}
