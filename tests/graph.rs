//! Graph queries against brute force on random graphs.

use crate::common;

use got::graph::{self, EdgeFilter};
use got::wal::{SimVfs, Vfs};
use got::{Direction, Options, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }
}

const N: usize = 10;

fn node(i: usize) -> String {
    format!("n{i}")
}

/// reach[a][b]: b reachable from a by >= 0 edges of `adj`.
fn closure(adj: &[Vec<bool>]) -> Vec<Vec<bool>> {
    let mut r: Vec<Vec<bool>> = (0..N)
        .map(|a| (0..N).map(|b| a == b || adj[a][b]).collect())
        .collect();
    for k in 0..N {
        for a in 0..N {
            for b in 0..N {
                if r[a][k] && r[k][b] {
                    r[a][b] = true;
                }
            }
        }
    }
    r
}

/// Shortest distances by BFS over `adj`.
fn distances(adj: &[Vec<bool>], from: usize) -> Vec<Option<usize>> {
    let mut d = vec![None; N];
    d[from] = Some(0);
    let mut q = std::collections::VecDeque::from([from]);
    while let Some(a) = q.pop_front() {
        for b in 0..N {
            if adj[a][b] && d[b].is_none() {
                d[b] = Some(d[a].unwrap() + 1);
                q.push_back(b);
            }
        }
    }
    d
}

fn idx(s: &str) -> usize {
    s[1..].parse().unwrap()
}

#[test]
fn graph_queries_agree_with_brute_force_on_random_graphs() {
    // Seeds 0..N, or the one in GOT_SEED (each failure names its seed).
    let seeds: Vec<u64> = if std::env::var_os("GOT_SEED").is_some() {
        vec![common::seed::seed(
            "graph_queries_agree_with_brute_force_on_random_graphs",
        )]
    } else if std::env::var("GOT_LONG_TESTS").is_ok() {
        (0..2000).collect()
    } else {
        (0..150).collect()
    };
    for seed in seeds {
        let mut rng = Rng(seed);
        let vfs = SimVfs::new();
        let store = Store::open_with_vfs(
            vfs.clone() as Arc<dyn Vfs>,
            "/g/.got",
            Options {
                create_if_missing: true,
                ..Options::default()
            },
        )
        .unwrap();
        // Edges of kind "a" (followed) and "b" (ignored by the filter).
        let mut adj_a = vec![vec![false; N]; N];
        let mut adj_b = vec![vec![false; N]; N];
        store
            .transaction(|tx| {
                for i in 0..N {
                    tx.put(&node(i), "task", Default::default())?;
                }
                Ok(())
            })
            .unwrap();
        let density = 60 + rng.next() % 160;
        store
            .transaction(|tx| {
                for a in 0..N {
                    for b in 0..N {
                        if rng.chance(density) {
                            tx.add_edge(&node(a), "a", &node(b), Default::default())?;
                            adj_a[a][b] = true;
                        }
                        if rng.chance(100) {
                            tx.add_edge(&node(a), "b", &node(b), Default::default())?;
                            adj_b[a][b] = true;
                        }
                    }
                }
                Ok(())
            })
            .unwrap();
        let ctx = format!("seed {seed} (replay with GOT_SEED={seed})");
        let reach = closure(&adj_a);
        let f = EdgeFilter::out(&["a"]);
        let mut tx = store.begin().unwrap();
        for a in 0..N {
            // Neighbors, each direction.
            let outs: Vec<String> = (0..N).filter(|&b| adj_a[a][b]).map(node).collect();
            assert_eq!(
                graph::neighbors(&mut tx, &node(a), &f).unwrap(),
                {
                    let mut o = outs.clone();
                    o.sort();
                    o
                },
                "{ctx}: out-neighbors of n{a}"
            );
            let ins: BTreeSet<String> = (0..N).filter(|&b| adj_a[b][a]).map(node).collect();
            let got_in: BTreeSet<String> =
                graph::neighbors(&mut tx, &node(a), &f.clone().direction(Direction::In))
                    .unwrap()
                    .into_iter()
                    .collect();
            assert_eq!(got_in, ins, "{ctx}: in-neighbors of n{a}");
            // BFS depths and shortest paths equal brute-force distances.
            let dist = distances(&adj_a, a);
            let order = graph::bfs(&mut tx, &node(a), &f, None).unwrap();
            let got: BTreeMap<usize, usize> = order.iter().map(|(id, d)| (idx(id), *d)).collect();
            let want: BTreeMap<usize, usize> =
                (0..N).filter_map(|b| dist[b].map(|d| (b, d))).collect();
            assert_eq!(got, want, "{ctx}: bfs from n{a}");
            let limited = graph::bfs(&mut tx, &node(a), &f, Some(1)).unwrap();
            assert!(limited.iter().all(|(_, d)| *d <= 1), "{ctx}");
            for b in 0..N {
                let p = graph::shortest_path(&mut tx, &node(a), &node(b), &f).unwrap();
                match (p, dist[b]) {
                    (None, None) => {}
                    (Some(p), Some(d)) => {
                        assert_eq!(p.len(), d + 1, "{ctx}: path n{a}->n{b} {p:?}");
                        assert_eq!(
                            (p[0].as_str(), p[d].as_str()),
                            (node(a).as_str(), node(b).as_str())
                        );
                        for w in p.windows(2) {
                            assert!(
                                adj_a[idx(&w[0])][idx(&w[1])],
                                "{ctx}: {p:?} uses a missing edge"
                            );
                        }
                    }
                    (p, d) => panic!("{ctx}: path n{a}->n{b}: {p:?} but distance {d:?}"),
                }
                // Adding a -> b closes a cycle exactly when b reaches a.
                let c = graph::would_close_cycle(&mut tx, &node(a), &node(b), &["a"]).unwrap();
                assert_eq!(c.is_some(), reach[b][a], "{ctx}: cycle check n{a}->n{b}");
                if let Some(c) = c {
                    assert_eq!((c.first(), c.last()), (Some(&node(a)), Some(&node(a))));
                    assert_eq!(c[1], node(b));
                    for w in c[1..].windows(2) {
                        assert!(adj_a[idx(&w[0])][idx(&w[1])], "{ctx}: cycle {c:?}");
                    }
                }
            }
        }
        // SCCs: same component exactly when mutually reachable.
        let comps = graph::strongly_connected_components(&mut tx, None, &f, false).unwrap();
        let comp_of: BTreeMap<usize, usize> = comps
            .iter()
            .enumerate()
            .flat_map(|(ci, c)| c.iter().map(move |id| (idx(id), ci)))
            .collect();
        assert_eq!(comp_of.len(), N, "{ctx}: every node in one component");
        for a in 0..N {
            for b in 0..N {
                assert_eq!(
                    comp_of[&a] == comp_of[&b],
                    reach[a][b] && reach[b][a],
                    "{ctx}: scc n{a} n{b}"
                );
            }
        }
        let has_cycle = (0..N).any(|a| (0..N).any(|b| adj_a[a][b] && reach[b][a]));
        let cyclic = graph::strongly_connected_components(&mut tx, None, &f, true).unwrap();
        assert_eq!(
            !cyclic.is_empty(),
            has_cycle,
            "{ctx}: cyclic components {cyclic:?}"
        );
        // Topological order: dependencies first, or a real cycle.
        match graph::topo_order(&mut tx, None, &f).unwrap() {
            Ok(order) => {
                assert!(!has_cycle, "{ctx}: an order for a cyclic graph");
                assert_eq!(order.len(), N);
                let pos: BTreeMap<usize, usize> = order
                    .iter()
                    .enumerate()
                    .map(|(i, id)| (idx(id), i))
                    .collect();
                for a in 0..N {
                    for b in 0..N {
                        if adj_a[a][b] {
                            assert!(pos[&b] < pos[&a], "{ctx}: n{a} -> n{b} but order {order:?}");
                        }
                    }
                }
            }
            Err(cycle) => {
                assert!(has_cycle, "{ctx}: a cycle {cycle:?} in an acyclic graph");
                assert_eq!(cycle.first(), cycle.last());
                for w in cycle.windows(2) {
                    assert!(adj_a[idx(&w[0])][idx(&w[1])], "{ctx}: cycle {cycle:?}");
                }
            }
        }
        let _ = adj_b;
    }
}
