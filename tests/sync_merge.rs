//! The merge function is a join: commutative, associative and idempotent, over
//! states that random histories on several replicas make (edits of the same and
//! of disjoint fields, labels, notes, claims, deletions, edges, and merges
//! between replicas at random). Replicas that have seen the same edits hold the
//! same bytes, whatever order they merged in. Seeds printed; GOT_SEED replays.

use crate::common;

use common::mutate::Rng;
use common::seed::seed;
use got::sync::doc::{Body, Claim, EdgeDoc, Elem, EntityDoc, Field, Holder, Step};
use got::sync::{merge, Doc, Hlc};
use serde_json::{json, Map};

fn long() -> bool {
    std::env::var_os("GOT_LONG_TESTS").is_some()
}

struct Replica {
    node: u64,
    last: Hlc,
    wall: u64,
    doc: Doc,
}

impl Replica {
    fn tick(&mut self, rng: &mut Rng) -> Hlc {
        // Wall clocks that disagree and sometimes go backwards.
        self.wall = (self.wall + rng.below(5) as u64).saturating_sub(rng.below(3) as u64);
        self.last = Hlc::tick(self.last, self.wall, self.node);
        self.last
    }

    fn see(&mut self, other: &Doc) {
        self.doc = merge(&self.doc, other);
        // A replica's clock is above every clock it has seen.
        self.last = self.last.max(self.doc.max_clock());
    }
}

const IDS: [&str; 6] = ["T-a", "T-b", "T-c", "T-d", "T-e", "T-f"];
const FIELDS: [&str; 3] = ["title", "status", "priority"];
const LABELS: [&str; 3] = ["bug", "ui", "db"];
const AGENTS: [&str; 3] = ["agent-a", "agent-b", "agent-c"];

fn live_fields<'d>(
    d: &'d mut Doc,
    id: &str,
) -> Option<&'d mut std::collections::BTreeMap<String, Field>> {
    match &mut d.entities.get_mut(id)?.body {
        Body::Live(f) => Some(f),
        Body::Deleted(_) => None,
    }
}

/// One random edit on replica `r`, as the store's export would record it.
fn edit(r: &mut Replica, rng: &mut Rng) {
    let at = r.tick(rng);
    let id = *rng.pick(&IDS);
    match rng.below(10) {
        0 => {
            r.doc.entities.entry(id.to_string()).or_insert(EntityDoc {
                kind: "task".into(),
                created_at: at.ms as i64,
                body: Body::Live(
                    [(
                        "title".to_string(),
                        Field::Reg {
                            at,
                            value: Some(json!(format!("{id} by {}", r.node))),
                        },
                    )]
                    .into(),
                ),
            });
        }
        1 | 2 => {
            let name = *rng.pick(&FIELDS);
            let value = (!rng.one_in(5)).then(|| json!(rng.below(4)));
            if let Some(f) = live_fields(&mut r.doc, id) {
                f.insert(name.into(), Field::Reg { at, value });
            }
        }
        3 => {
            let l = *rng.pick(&LABELS);
            let present = !rng.one_in(3);
            if let Some(f) = live_fields(&mut r.doc, id) {
                let set = f
                    .entry("labels".into())
                    .or_insert(Field::Set(Default::default()));
                if let Field::Set(s) = set {
                    s.insert(l.into(), Elem { at, present });
                }
            }
        }
        4 => {
            let note = json!({"at": at.ms, "author": r.node, "text": format!("n{}", rng.below(3))});
            if let Some(f) = live_fields(&mut r.doc, id) {
                let log = f
                    .entry("notes".into())
                    .or_insert(Field::Log(Default::default()));
                if let Field::Log(l) = log {
                    l.insert(got::sync::doc::canonical(&note), note);
                }
            }
        }
        5 => {
            // The work state: claim when free (same epoch), else move on
            // (start, complete, release, renew: the next epoch).
            let agent = *rng.pick(&AGENTS);
            if let Some(f) = live_fields(&mut r.doc, id) {
                let cur = match f.get("status") {
                    Some(Field::Claim(c)) => c.clone(),
                    _ => Claim {
                        epoch: 0,
                        at: Hlc::ZERO,
                        step: Step::Move,
                        status: None,
                        holder: None,
                        lost: Default::default(),
                    },
                };
                let status =
                    Some((*rng.pick(&["pending", "in_progress", "completed"])).to_string());
                let next = if cur.holder.is_none() && rng.one_in(2) {
                    Claim {
                        epoch: cur.epoch,
                        at,
                        step: Step::Claim,
                        status: Some("in_progress".into()),
                        holder: Some(Holder {
                            agent: agent.into(),
                            lease: Some(rng.below(9) as i64),
                        }),
                        lost: Default::default(),
                    }
                } else {
                    let holder = (!rng.one_in(3)).then(|| Holder {
                        agent: agent.into(),
                        lease: None,
                    });
                    Claim {
                        epoch: cur.epoch + 1,
                        at,
                        step: Step::Move,
                        status,
                        holder,
                        lost: Default::default(),
                    }
                };
                f.insert("status".into(), Field::Claim(next));
            }
        }
        6 => {
            // A deletion takes the entity's edges with it, as in a store.
            if rng.one_in(3) {
                if let Some(e) = r.doc.entities.get_mut(id) {
                    e.body = Body::Deleted(at);
                    for ((from, _, to), edge) in r.doc.edges.iter_mut() {
                        // Removed at the later of the deletion and its own
                        // clock: what the merge makes of it.
                        if from == id || to == id {
                            *edge = EdgeDoc {
                                at: at.max(edge.at),
                                present: false,
                                props: Map::new(),
                            };
                        }
                    }
                }
            }
        }
        _ => {
            let to = *rng.pick(&IDS);
            // Edges join entities the replica has alive.
            let alive =
                |x: &str| matches!(r.doc.entities.get(x).map(|e| &e.body), Some(Body::Live(_)));
            if !(alive(id) && alive(to)) {
                return;
            }
            let present = !rng.one_in(3);
            let mut props = Map::new();
            if rng.one_in(2) {
                props.insert("w".into(), json!(rng.below(3)));
            }
            if !present {
                props.clear();
            }
            r.doc.edges.insert(
                (id.into(), "depends_on".into(), to.into()),
                EdgeDoc { at, present, props },
            );
        }
    }
}

fn run_history(seed: u64, replicas: usize, steps: usize) -> Vec<Replica> {
    let mut rng = Rng::new(seed);
    let mut rs: Vec<Replica> = (0..replicas)
        .map(|i| Replica {
            node: 0x1000 + i as u64,
            last: Hlc::ZERO,
            wall: 1_000 + rng.below(10) as u64,
            doc: Doc::default(),
        })
        .collect();
    for _ in 0..steps {
        let i = rng.below(replicas);
        if rng.one_in(6) {
            let j = rng.below(replicas);
            let other = rs[j].doc.clone();
            rs[i].see(&other);
        } else {
            edit(&mut rs[i], &mut rng);
        }
    }
    rs
}

fn cases() -> u64 {
    if long() {
        3_000
    } else {
        150
    }
}

#[test]
fn merge_is_commutative_associative_and_idempotent() {
    let base = seed("merge laws");
    for case in 0..cases() {
        let s = base.wrapping_add(case);
        let rs = run_history(s, 3, 60);
        let (a, b, c) = (&rs[0].doc, &rs[1].doc, &rs[2].doc);
        let ctx = format!("seed {s} (GOT_SEED={base}, case {case})");
        assert_eq!(merge(a, b), merge(b, a), "commutative: {ctx}");
        assert_eq!(
            merge(&merge(a, b), c),
            merge(a, &merge(b, c)),
            "associative: {ctx}"
        );
        assert_eq!(merge(a, a), *a, "idempotent: {ctx}");
        // The merge driver's line-by-line merge writes the same bytes.
        let fast = got::sync::merge::merge_bytes(&a.to_bytes(), &b.to_bytes()).unwrap();
        assert_eq!(fast, merge(a, b).to_bytes(), "line merge: {ctx}");
        // A state merged with one it has already absorbed does not change: an
        // old export imported again is a no-op.
        let ab = merge(a, b);
        assert_eq!(merge(&ab, a), ab, "absorbs: {ctx}");
    }
}

#[test]
fn replicas_that_saw_the_same_edits_write_the_same_bytes_in_any_merge_order() {
    let base = seed("merge convergence");
    for case in 0..cases() {
        let s = base.wrapping_add(case);
        let rs = run_history(s, 4, 80);
        let docs: Vec<&Doc> = rs.iter().map(|r| &r.doc).collect();
        let mut rng = Rng::new(s ^ 0xabc);
        let forward = docs.iter().fold(Doc::default(), |m, d| merge(&m, d));
        let mut order: Vec<usize> = (0..docs.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let shuffled = order
            .iter()
            .fold(Doc::default(), |m, &i| merge(docs[i], &m));
        let ctx = format!("seed {s} (GOT_SEED={base}, case {case}), order {order:?}");
        assert_eq!(forward.to_bytes(), shuffled.to_bytes(), "{ctx}");
        // And the bytes read back as the same state.
        assert_eq!(Doc::parse(&forward.to_bytes()).unwrap(), forward, "{ctx}");
        for d in &docs {
            assert_eq!(Doc::parse(&d.to_bytes()).unwrap(), **d, "{ctx}");
        }
    }
}

#[test]
fn the_rules_of_each_field_hold_in_the_merged_state() {
    let base = seed("merge rules");
    for case in 0..cases() {
        let s = base.wrapping_add(case);
        let rs = run_history(s, 3, 60);
        let all = rs.iter().fold(Doc::default(), |m, r| merge(&m, &r.doc));
        let ctx = format!("seed {s} (GOT_SEED={base}, case {case})");
        for (id, e) in &all.entities {
            let deleted_somewhere = rs.iter().any(|r| {
                matches!(
                    r.doc.entities.get(id).map(|e| &e.body),
                    Some(Body::Deleted(_))
                )
            });
            // A deletion on any replica wins.
            assert_eq!(
                matches!(e.body, Body::Deleted(_)),
                deleted_somewhere,
                "{id}: {ctx}"
            );
            let Body::Live(fields) = &e.body else {
                continue;
            };
            for (name, f) in fields {
                let versions: Vec<&Field> = rs
                    .iter()
                    .filter_map(|r| match &r.doc.entities.get(id)?.body {
                        Body::Live(fs) => fs.get(name),
                        Body::Deleted(_) => None,
                    })
                    .collect();
                match f {
                    // The highest clock any replica has for the field wins.
                    Field::Reg { at, .. } => {
                        let top = versions
                            .iter()
                            .filter_map(|v| match v {
                                Field::Reg { at, .. } => Some(*at),
                                _ => None,
                            })
                            .max()
                            .unwrap();
                        assert_eq!(*at, top, "{id}.{name}: {ctx}");
                    }
                    // Every note any replica had is there.
                    Field::Log(items) => {
                        for v in &versions {
                            if let Field::Log(mine) = v {
                                for k in mine.keys() {
                                    assert!(items.contains_key(k), "{id} note lost: {ctx}");
                                }
                            }
                        }
                    }
                    // The state some replica had: of the top epoch, a claim
                    // over a move, the earliest claim, else the latest move.
                    Field::Claim(c) => {
                        let claims: Vec<&Claim> = versions
                            .iter()
                            .filter_map(|v| match v {
                                Field::Claim(c) => Some(c),
                                _ => None,
                            })
                            .collect();
                        let bare = |x: &Claim| Claim {
                            lost: Default::default(),
                            ..x.clone()
                        };
                        assert!(
                            claims.iter().any(|x| bare(x) == bare(c)),
                            "{id}: a state no replica had: {ctx}"
                        );
                        let top = claims.iter().map(|x| x.epoch).max().unwrap();
                        assert_eq!(c.epoch, top, "{id}: {ctx}");
                        let of_top: Vec<&&Claim> =
                            claims.iter().filter(|x| x.epoch == top).collect();
                        let want = if of_top.iter().any(|x| x.step == Step::Claim) {
                            of_top
                                .iter()
                                .filter(|x| x.step == Step::Claim)
                                .map(|x| x.at)
                                .min()
                        } else {
                            of_top.iter().map(|x| x.at).max()
                        };
                        assert_eq!(Some(c.at), want, "{id}: {ctx}");
                        // Every other claim of that state is among its losers.
                        if c.step == Step::Claim {
                            for x in of_top.iter().filter(|x| x.step == Step::Claim) {
                                let agent = x.holder.as_ref().unwrap().agent.clone();
                                if x.at != c.at {
                                    assert!(c.lost.contains(&(agent, x.at)), "{id}: {ctx}");
                                }
                                for l in &x.lost {
                                    assert!(l.1 == c.at || c.lost.contains(l), "{id}: {ctx}");
                                }
                            }
                        }
                    }
                    Field::Set(elems) => {
                        for (l, el) in elems {
                            let top = versions
                                .iter()
                                .filter_map(|v| match v {
                                    Field::Set(s) => s.get(l).map(|e| e.at),
                                    _ => None,
                                })
                                .max()
                                .unwrap();
                            assert_eq!(el.at, top, "{id} label {l}: {ctx}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn a_claim_race_between_two_replicas_ends_with_the_earlier_claim() {
    let claim = |node: u64, ms: u64, agent: &str| {
        let at = Hlc {
            ms,
            counter: 0,
            node,
        };
        let mut d = Doc::default();
        d.entities.insert(
            "T-1".into(),
            EntityDoc {
                kind: "task".into(),
                created_at: 1,
                body: Body::Live(
                    [(
                        "status".to_string(),
                        Field::Claim(Claim {
                            epoch: 0,
                            at,
                            step: Step::Claim,
                            status: Some("in_progress".into()),
                            holder: Some(Holder {
                                agent: agent.into(),
                                lease: None,
                            }),
                            lost: Default::default(),
                        }),
                    )]
                    .into(),
                ),
            },
        );
        d
    };
    let a = claim(1, 500, "agent-a");
    let b = claim(2, 400, "agent-b");
    for m in [merge(&a, &b), merge(&b, &a)] {
        let Body::Live(f) = &m.entities["T-1"].body else {
            panic!()
        };
        let Field::Claim(c) = &f["status"] else {
            panic!()
        };
        assert_eq!(c.holder.as_ref().unwrap().agent, "agent-b");
    }
}

/// Found by fuzzing: JSON numbers must read back as the same float, or a value
/// would change each time the file is read and written (and look like an edit).
#[test]
fn floats_in_the_tracked_file_read_back_bit_for_bit() {
    for v in [
        "-9.522846247048323e+18",
        "0.30000000000000004",
        "1.7976931348623157e+308",
        "5e-324",
    ] {
        let file = format!(
            "{{\"got_tracked\":1}}\n{{\"id\":\"T-1\",\"kind\":\"task\",\"created_at\":1,\"c\":\"1.0.0000000000000001\",\"p\":{{\"x\":{v}}}}}\n"
        );
        let d = Doc::parse(file.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(d.to_bytes()).unwrap(), file, "{v}");
    }
}

/// docs/format.md's example of a tracked file is one got reads, and writes back
/// byte for byte.
#[test]
fn the_example_in_the_format_document_reads_and_writes_back_the_same_bytes() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/format.md")).unwrap();
    let section = &doc[doc.find("## The tracked file").unwrap()..];
    let start = section.find("```\n{\"got_tracked\":1}").unwrap() + 4;
    let example = &section[start..start + section[start..].find("```").unwrap()];
    let parsed = Doc::parse(example.as_bytes()).unwrap();
    assert_eq!(parsed.entities.len(), 2);
    assert_eq!(parsed.edges.len(), 1);
    assert_eq!(String::from_utf8(parsed.to_bytes()).unwrap(), example);
}
