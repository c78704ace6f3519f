//! Property tests of the indexes, the ready queue and the entity cache; on failure proptest prints the minimal failing op sequence, which is the replay.
//!
//! Every case runs on a fresh `SimVfs`, with two handles opened with
//! `Store::open_with_vfs` standing for two processes. Ids come from a small fixed
//! space (no random ids), so a printed case replays the same way (only wall-clock
//! `created_at` differs, and every comparison reads it from the store).

use crate::common;

use got::query::{Filter, Query};
use got::wal::{SimVfs, Vfs};
use got::{Options, Props, Store, Transaction, Value};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngSeed};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

const DIR: &str = "/p/.got";
/// Tasks t00..t11: few enough that updates, edges and deletes collide.
const N_IDS: usize = 12;
const PROCS: usize = 2;
const STATUSES: [&str; 4] = ["pending", "in_progress", "blocked", "completed"];
const PRIORITIES: [&str; 5] = ["critical", "high", "medium", "low", "someday"];
const LABELS: [&str; 4] = ["wal", "lock", "cli", "ui"];
/// Title words, with case and punctuation the word split folds away.
const WORDS: [&str; 6] = ["torn", "Tail", "WAL", "lock's", "cli", "Été"];

fn long() -> bool {
    std::env::var("GOT_LONG_TESTS").is_ok()
}

/// proptest's generator runs from `GOT_SEED` when set, else from a fresh seed;
/// either way the seed is printed (a failure also prints its minimal case).
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if long() { 500 } else { 24 },
        rng_seed: RngSeed::Fixed(common::seed::seed("index_props (proptest)")),
        // Never write proptest-regressions/ files: the printed case is the replay.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Small segments, frequent automatic checkpoints and at most two runs, so that
/// short cases rotate segments, checkpoint and compact.
fn opts() -> Options {
    Options {
        create_if_missing: true,
        segment_size_bytes: 4096,
        checkpoint_wal_bytes: 2048,
        max_runs: 2,
        ..Options::default()
    }
}

fn open(vfs: &Arc<SimVfs>) -> Store {
    Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, DIR, opts()).unwrap()
}

fn name(i: usize) -> String {
    format!("t{:02}", i % N_IDS)
}

// ---------------------------------------------------------------------------------
// Operations

/// An entity's content; `None` leaves the property out.
#[derive(Clone, Debug)]
struct Doc {
    kind: &'static str,
    status: Option<Value>,
    priority: Option<Value>,
    labels: Option<Vec<&'static str>>,
    assignee: Option<Value>,
    title: Option<String>,
}

impl Doc {
    fn props(&self) -> Props {
        let mut p = Props::new();
        let mut set = |k: &str, v: &Option<Value>| {
            if let Some(v) = v {
                p.insert(k.to_string(), v.clone());
            }
        };
        set("status", &self.status);
        set("priority", &self.priority);
        set("assignee", &self.assignee);
        set(
            "labels",
            &self
                .labels
                .as_ref()
                .map(|l| Value::List(l.iter().map(|s| Value::from(*s)).collect())),
        );
        set(
            "title",
            &self.title.as_ref().map(|t| Value::from(t.as_str())),
        );
        p
    }
}

/// One property of an existing entity changed (read, modify, put).
#[derive(Clone, Debug)]
enum Field {
    Status(Option<Value>),
    Priority(Option<Value>),
    Labels(Option<Vec<&'static str>>),
    Assignee(Option<Value>),
    Title(Option<String>),
    Kind(&'static str),
}

impl Field {
    fn apply(&self, kind: &str, mut props: Props) -> (String, Props) {
        let mut kind = kind.to_string();
        let mut set = |k: &str, v: Option<Value>| {
            match v {
                Some(v) => props.insert(k.to_string(), v),
                None => props.remove(k),
            };
        };
        match self {
            Field::Status(v) => set("status", v.clone()),
            Field::Priority(v) => set("priority", v.clone()),
            Field::Assignee(v) => set("assignee", v.clone()),
            Field::Labels(l) => set(
                "labels",
                l.as_ref()
                    .map(|l| Value::List(l.iter().map(|s| Value::from(*s)).collect())),
            ),
            Field::Title(t) => set("title", t.as_ref().map(|t| Value::from(t.as_str()))),
            Field::Kind(k) => kind = k.to_string(),
        }
        (kind, props)
    }
}

/// One write of a transaction. Writes whose precondition fails (an update of a
/// missing entity, an edge to one) are skipped, in the store and in the model.
#[derive(Clone, Debug)]
enum Write {
    /// Create or replace whole.
    Put {
        id: usize,
        doc: Doc,
    },
    /// Insert if absent (`put_if_version(.., 0)`).
    Create {
        id: usize,
        doc: Doc,
    },
    Set {
        id: usize,
        field: Field,
    },
    Delete {
        id: usize,
    },
    Link {
        from: usize,
        kind: &'static str,
        to: usize,
    },
    Unlink {
        from: usize,
        kind: &'static str,
        to: usize,
    },
}

#[derive(Clone, Debug)]
enum Op {
    /// One transaction on process `p`.
    Commit {
        p: usize,
        writes: Vec<Write>,
    },
    Checkpoint {
        p: usize,
    },
    /// Process `p` restarts: its handle is dropped and the store opened again.
    Reopen {
        p: usize,
    },
}

fn status() -> impl Strategy<Value = Option<Value>> {
    prop::option::weighted(
        0.9,
        prop_oneof![
            4 => Just(Value::from("pending")),
            3 => Just(Value::from("completed")),
            1 => Just(Value::from("in_progress")),
            1 => Just(Value::from("blocked")),
            1 => Just(Value::Null),
        ],
    )
}

fn priority() -> impl Strategy<Value = Option<Value>> {
    prop::option::weighted(
        0.8,
        prop_oneof![
            5 => prop::sample::select(PRIORITIES.to_vec()).prop_map(Value::from),
            1 => Just(Value::Int(2)),
        ],
    )
}

fn assignee() -> impl Strategy<Value = Option<Value>> {
    prop::option::weighted(
        0.4,
        prop_oneof![
            Just(Value::from("agent-1")),
            Just(Value::from("agent-2")),
            Just(Value::from("")),
            Just(Value::Null),
        ],
    )
}

fn labels() -> impl Strategy<Value = Option<Vec<&'static str>>> {
    prop::option::weighted(
        0.7,
        prop::sample::subsequence(LABELS.to_vec(), 0..=LABELS.len()),
    )
}

fn title() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(
        0.8,
        (
            prop::collection::vec(prop::sample::select(WORDS.to_vec()), 0..3),
            any::<bool>(),
        )
            .prop_map(|(w, dash)| w.join(if dash { "-" } else { " " })),
    )
}

fn kind() -> impl Strategy<Value = &'static str> {
    prop_oneof![5 => Just("task"), 1 => Just("epic")]
}

fn doc() -> impl Strategy<Value = Doc> {
    (kind(), status(), priority(), labels(), assignee(), title()).prop_map(
        |(kind, status, priority, labels, assignee, title)| Doc {
            kind,
            status,
            priority,
            labels,
            assignee,
            title,
        },
    )
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        4 => status().prop_map(Field::Status),
        2 => priority().prop_map(Field::Priority),
        2 => labels().prop_map(Field::Labels),
        2 => assignee().prop_map(Field::Assignee),
        2 => title().prop_map(Field::Title),
        1 => kind().prop_map(Field::Kind),
    ]
}

fn edge_kind() -> impl Strategy<Value = &'static str> {
    prop_oneof![4 => Just("depends_on"), 1 => Just("relates_to")]
}

fn write() -> impl Strategy<Value = Write> {
    let id = 0..N_IDS;
    prop_oneof![
        3 => (id.clone(), doc()).prop_map(|(id, doc)| Write::Put { id, doc }),
        2 => (id.clone(), doc()).prop_map(|(id, doc)| Write::Create { id, doc }),
        5 => (id.clone(), field()).prop_map(|(id, field)| Write::Set { id, field }),
        1 => id.clone().prop_map(|id| Write::Delete { id }),
        4 => (id.clone(), edge_kind(), id.clone())
            .prop_map(|(from, kind, to)| Write::Link { from, kind, to }),
        2 => (id.clone(), edge_kind(), id)
            .prop_map(|(from, kind, to)| Write::Unlink { from, kind, to }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0..PROCS;
    prop_oneof![
        12 => (p.clone(), prop::collection::vec(write(), 1..4))
            .prop_map(|(p, writes)| Op::Commit { p, writes }),
        2 => p.clone().prop_map(|p| Op::Checkpoint { p }),
        1 => p.prop_map(|p| Op::Reopen { p }),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..48)
}

// ---------------------------------------------------------------------------------
// The model and the world

/// What the store should hold: live entities (id -> (kind, props)) and edges.
#[derive(Clone, Debug, Default, PartialEq)]
struct Model {
    ents: BTreeMap<String, (String, Props)>,
    edges: BTreeSet<(String, String, String)>,
}

impl Model {
    fn apply(&mut self, w: &Write) {
        match w {
            Write::Put { id, doc } => {
                self.ents
                    .insert(name(*id), (doc.kind.to_string(), doc.props()));
            }
            Write::Create { id, doc } => {
                self.ents
                    .entry(name(*id))
                    .or_insert_with(|| (doc.kind.to_string(), doc.props()));
            }
            Write::Set { id, field } => {
                if let Some((kind, props)) = self.ents.get_mut(&name(*id)) {
                    (*kind, *props) = field.apply(kind, std::mem::take(props));
                }
            }
            Write::Delete { id } => {
                let id = name(*id);
                if self.ents.remove(&id).is_some() {
                    self.edges.retain(|(f, _, t)| *f != id && *t != id);
                }
            }
            Write::Link { from, kind, to } => {
                let (from, to) = (name(*from), name(*to));
                if self.ents.contains_key(&from) && self.ents.contains_key(&to) {
                    self.edges.insert((from, kind.to_string(), to));
                }
            }
            Write::Unlink { from, kind, to } => {
                self.edges
                    .remove(&(name(*from), kind.to_string(), name(*to)));
            }
        }
    }

    /// The ready queue's members, computed from the model alone: pending,
    /// unassigned tasks whose every `depends_on` target has status `completed`.
    fn ready_ids(&self) -> BTreeSet<String> {
        let str_of = |p: &Props, k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
        self.ents
            .iter()
            .filter(|(id, (kind, props))| {
                let unassigned = match props.get("assignee") {
                    None | Some(Value::Null) => true,
                    Some(Value::String(s)) => s.is_empty(),
                    Some(_) => false,
                };
                kind == "task"
                    && str_of(props, "status").as_deref() == Some("pending")
                    && unassigned
                    && self
                        .edges
                        .iter()
                        .filter(|(f, k, _)| f == *id && k == "depends_on")
                        .all(|(_, _, t)| {
                            str_of(&self.ents[t].1, "status").as_deref() == Some("completed")
                        })
            })
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// The transaction's side of a write (mirrors `Model::apply`).
fn write_tx(tx: &mut Transaction<'_>, w: &Write) -> got::Result<()> {
    match w {
        Write::Put { id, doc } => {
            tx.put(&name(*id), doc.kind, doc.props())?;
        }
        Write::Create { id, doc } => {
            if tx.get(&name(*id))?.is_none() {
                tx.put_if_version(&name(*id), doc.kind, doc.props(), 0)?;
            }
        }
        Write::Set { id, field } => {
            if let Some(e) = tx.get(&name(*id))? {
                let (kind, props) = field.apply(&e.kind, e.props);
                tx.put(&e.id, &kind, props)?;
            }
        }
        Write::Delete { id } => {
            if tx.get(&name(*id))?.is_some() {
                tx.delete(&name(*id))?;
            }
        }
        Write::Link { from, kind, to } => {
            let (from, to) = (name(*from), name(*to));
            if tx.get(&from)?.is_some() && tx.get(&to)?.is_some() {
                tx.add_edge(&from, kind, &to, Props::new())?;
            }
        }
        Write::Unlink { from, kind, to } => {
            tx.remove_edge(&name(*from), kind, &name(*to))?;
        }
    }
    Ok(())
}

struct World {
    vfs: Arc<SimVfs>,
    procs: Vec<Store>,
    model: Model,
    /// Also check the queries inside each transaction, after its writes and before
    /// its commit (the indexes hold committed data only; the query adds the
    /// transaction's own writes).
    queries_in_tx: bool,
}

impl World {
    fn new() -> World {
        let vfs = SimVfs::new();
        let procs = (0..PROCS).map(|_| open(&vfs)).collect();
        World {
            vfs,
            procs,
            model: Model::default(),
            queries_in_tx: false,
        }
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::Commit { p, writes } => {
                let in_tx = self.queries_in_tx;
                self.procs[*p]
                    .transaction(|tx| {
                        for w in writes {
                            write_tx(tx, w)?;
                        }
                        if in_tx {
                            check_queries_in(tx, &format!("{op:?}: inside the transaction"));
                        }
                        Ok(())
                    })
                    .unwrap();
                for w in writes {
                    self.model.apply(w);
                }
            }
            Op::Checkpoint { p } => {
                self.procs[*p].checkpoint().unwrap();
            }
            Op::Reopen { p } => {
                // Drop first, as a process exits before it starts again.
                drop(self.procs.remove(*p));
                self.procs.insert(*p, open(&self.vfs));
            }
        }
    }

    /// Every handle's entities equal the model.
    fn check_contents(&self, ctx: &str) {
        let want: BTreeMap<String, (String, Props)> = self.model.ents.clone();
        for (p, s) in self.procs.iter().enumerate() {
            let have: BTreeMap<String, (String, Props)> = s
                .list(None, None)
                .unwrap()
                .into_iter()
                .map(|e| (e.id, (e.kind, e.props)))
                .collect();
            assert_eq!(
                have, want,
                "{ctx}: process {p}'s entities differ from the model"
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// Property 1: indexes equal a rebuild; queries through them equal scans

/// The queries compared with a brute-force filter: every filter kind the indexes
/// serve (declared equality, in, label, text) alone and combined, with and
/// without a limit (a limit in id order walks the indexes lazily) and a page start.
fn queries() -> Vec<Query> {
    let eq = |p: &str, v: Value| Filter::Eq(p.into(), v);
    let mut filters: Vec<Vec<Filter>> = Vec::new();
    for s in STATUSES {
        filters.push(vec![eq("status", s.into())]);
    }
    // A missing property reads as null, so these match entities without it too.
    filters.push(vec![eq("status", Value::Null)]);
    filters.push(vec![eq("assignee", Value::Null)]);
    filters.push(vec![Filter::In(
        "assignee".into(),
        vec![Value::Null, "".into()],
    )]);
    filters.push(vec![eq("priority", Value::Float(2.0))]);
    filters.push(vec![eq("assignee", "agent-1".into())]);
    filters.push(vec![eq("labels", "wal".into())]);
    filters.push(vec![Filter::In(
        "priority".into(),
        vec!["critical".into(), Value::Int(2)],
    )]);
    for l in LABELS {
        filters.push(vec![Filter::Label(l.into())]);
    }
    for w in ["torn", "tail", "WAL's", "Lock", "été", "torn tail", ""] {
        filters.push(vec![Filter::Text(w.into())]);
    }
    filters.push(vec![
        eq("status", "pending".into()),
        Filter::Label("wal".into()),
    ]);
    filters.push(vec![
        Filter::Label("cli".into()),
        Filter::Label("lock".into()),
    ]);
    filters.push(vec![
        eq("status", "completed".into()),
        Filter::Text("tail".into()),
    ]);
    filters.push(vec![
        Filter::In("status".into(), vec!["pending".into(), "blocked".into()]),
        Filter::Label("ui".into()),
    ]);
    filters.push(vec![]);
    let mut out = Vec::new();
    for f in filters {
        for (limit, after) in [
            (None, None),
            (Some(1), None),
            (Some(3), None),
            (Some(2), Some("t05")),
            (None, Some("t05")),
        ] {
            out.push(Query {
                kind: Some("task".into()),
                filters: f.clone(),
                limit,
                after: after.map(str::to_string),
                ..Query::default()
            });
        }
    }
    for limit in [None, Some(2)] {
        out.push(Query {
            kind: Some("epic".into()),
            filters: vec![eq("status", "pending".into())],
            limit,
            ..Query::default()
        });
    }
    out
}

/// The query answered by reading every entity of its kind.
fn brute_force(tx: &mut Transaction<'_>, q: &Query) -> Vec<got::Entity> {
    let mut v: Vec<got::Entity> = tx
        .list(q.kind.as_deref(), None)
        .unwrap()
        .into_iter()
        .filter(|e| q.filters.iter().all(|f| f.matches(e)))
        .filter(|e| q.after.as_ref().is_none_or(|a| e.id > *a))
        .collect();
    v.sort_by(|a, b| a.id.cmp(&b.id));
    v.truncate(q.limit.unwrap_or(usize::MAX));
    v
}

/// Every query of `queries()` through the indexes equals the brute force, in
/// `tx` (which may hold its own uncommitted writes).
fn check_queries_in(tx: &mut Transaction<'_>, ctx: &str) {
    for q in queries() {
        let indexed = q.run(tx).unwrap();
        let scanned = brute_force(tx, &q);
        let ids = |v: &[got::Entity]| v.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(&indexed),
            ids(&scanned),
            "{ctx}: {q:?} through the indexes differs from a scan"
        );
        assert_eq!(indexed, scanned, "{ctx}: {q:?}");
    }
}

fn check_queries(w: &World, ctx: &str) {
    for (p, s) in w.procs.iter().enumerate() {
        check_queries_in(&mut s.begin().unwrap(), &format!("{ctx}: process {p}"));
    }
}

/// `got verify` (every index entry against a rebuild from the entities, as a new
/// process reading the runs and the WAL sees them) is healthy, and every live
/// handle's index entries equal that new process's.
fn check_indexes(w: &World, ctx: &str) {
    let rep = got::verify(w.vfs.clone() as Arc<dyn Vfs>, Path::new(DIR)).unwrap();
    assert!(rep.healthy(), "{ctx}: verify: {:?}", rep.findings);
    assert_eq!(
        rep.index_entries > 0,
        !w.model.ents.is_empty(),
        "{ctx}: {} index entries checked for {} entities",
        rep.index_entries,
        w.model.ents.len()
    );
    assert_eq!(
        (rep.entities, rep.edges),
        (w.model.ents.len() as u64, w.model.edges.len() as u64),
        "{ctx}: verify counted other entities/edges than the model"
    );
    let fresh = Store::open_with_vfs(
        w.vfs.clone() as Arc<dyn Vfs>,
        DIR,
        Options {
            read_only: true,
            ..opts()
        },
    )
    .unwrap();
    let mut ftx = fresh.begin().unwrap();
    let want = ftx.derived(b"x").unwrap();
    assert_eq!(
        want.len() as u64,
        rep.index_entries,
        "{ctx}: a new reader holds another number of index entries than verify checked"
    );
    for (p, s) in w.procs.iter().enumerate() {
        let mut tx = s.begin().unwrap();
        assert_eq!(tx.snapshot_lsn(), ftx.snapshot_lsn(), "{ctx}: process {p}");
        let have = tx.derived(b"x").unwrap();
        if have != want {
            let (h, f): (BTreeSet<_>, BTreeSet<_>) =
                (have.into_iter().collect(), want.iter().cloned().collect());
            panic!(
                "{ctx}: process {p}'s indexes differ from a rebuild: stale {:?}, missing {:?}",
                h.difference(&f).collect::<Vec<_>>(),
                f.difference(&h).collect::<Vec<_>>()
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// Property 2: the ready index equals brute force

fn check_ready(w: &World, ctx: &str) {
    let members = w.model.ready_ids();
    for (p, s) in w.procs.iter().enumerate() {
        let mut tx = s.begin().unwrap();
        let ids = |v: Vec<got::Entity>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
        let indexed = ids(got::ready::ready(&mut tx, None).unwrap());
        let scanned = ids(got::ready::ready_by_scan(&mut tx, usize::MAX).unwrap());
        assert_eq!(
            indexed, scanned,
            "{ctx}: process {p}: ready index vs ready_by_scan"
        );
        // From the model alone, ordered by (priority rank, created_at, id) with
        // created_at as the store recorded it.
        let rank = |props: &Props| match props.get("priority").and_then(Value::as_str) {
            Some("critical") => 0,
            Some("high") => 1,
            Some("medium") => 2,
            Some("low") => 3,
            _ => 4,
        };
        let mut want: Vec<(u8, i64, String)> = members
            .iter()
            .map(|id| {
                let e = tx.get(id).unwrap().expect("a model entity exists");
                (rank(&e.props), e.created_at, e.id)
            })
            .collect();
        want.sort();
        let want: Vec<String> = want.into_iter().map(|t| t.2).collect();
        assert_eq!(
            indexed, want,
            "{ctx}: process {p}: ready index vs the model"
        );
        for limit in [1, 2] {
            let first = ids(got::ready::ready(&mut tx, Some(limit)).unwrap());
            assert_eq!(
                first,
                want[..limit.min(want.len())],
                "{ctx}: process {p}: ready with limit {limit}"
            );
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// Property 1: after every step of random commits (from either process),
    /// checkpoints, compactions and reopens, `verify` finds every index equal to
    /// a rebuild from the entities, every handle's index entries equal a new
    /// reader's, and indexed queries equal a brute-force filter.
    #[test]
    fn indexes_equal_a_rebuild_and_queries_equal_scans(ops in ops()) {
        let mut w = World::new();
        w.queries_in_tx = true;
        for (i, op) in ops.iter().enumerate() {
            w.step(op);
            let ctx = format!("step {i} ({op:?})");
            w.check_contents(&ctx);
            check_indexes(&w, &ctx);
            check_queries(&w, &ctx);
        }
    }

    /// Property 2: after every step, the ready queue walked from its index equals
    /// `ready_by_scan` and a computation from the model, ids and order alike.
    #[test]
    fn the_ready_index_equals_brute_force_after_every_step(ops in ops()) {
        let mut w = World::new();
        for (i, op) in ops.iter().enumerate() {
            w.step(op);
            let ctx = format!("step {i} ({op:?})");
            w.check_contents(&ctx);
            check_ready(&w, &ctx);
        }
        check_indexes(&w, "end");
    }
}

// ---------------------------------------------------------------------------------
// Property 3: reads through the cache are never stale across processes

/// Entities k0..k3 of kind `kv` with one property `n`.
const N_KEYS: usize = 4;

#[derive(Clone, Debug)]
enum CacheOp {
    Put { p: usize, id: usize, n: i64 },
    Delete { p: usize, id: usize },
    Get { p: usize, id: usize },
    Checkpoint { p: usize },
    Reopen { p: usize },
}

fn cache_ops() -> impl Strategy<Value = Vec<CacheOp>> {
    let p = || 0..PROCS;
    let id = || 0..N_KEYS;
    let op = prop_oneof![
        5 => (p(), id(), 0..100i64).prop_map(|(p, id, n)| CacheOp::Put { p, id, n }),
        1 => (p(), id()).prop_map(|(p, id)| CacheOp::Delete { p, id }),
        8 => (p(), id()).prop_map(|(p, id)| CacheOp::Get { p, id }),
        1 => p().prop_map(|p| CacheOp::Checkpoint { p }),
        1 => p().prop_map(|p| CacheOp::Reopen { p }),
    ];
    prop::collection::vec(op, 1..120)
}

proptest! {
    #![proptest_config(config())]

    /// Property 3: with two processes committing, checkpointing and restarting,
    /// every `get` through either one's entity cache returns exactly the latest
    /// committed value (version, props, or absence) of a `BTreeMap` model. A `get`
    /// repeated with nothing committed, checkpointed or reopened in between must
    /// be a cache hit, so the cache is really in the path.
    #[test]
    fn reads_through_the_cache_are_never_stale_across_processes(ops in cache_ops()) {
        let vfs = SimVfs::new();
        let mut procs: Vec<Store> = (0..PROCS).map(|_| open(&vfs)).collect();
        // id -> (version of the last record, value if live).
        let mut model: BTreeMap<String, (u64, Option<i64>)> = BTreeMap::new();
        // (process, id) read since the last change anywhere: the next read hits.
        let mut cached: BTreeSet<(usize, usize)> = BTreeSet::new();
        for (i, op) in ops.iter().enumerate() {
            let ctx = format!("step {i} ({op:?})");
            let key = |id: usize| format!("k{id}");
            match *op {
                CacheOp::Put { p, id, n } => {
                    let mut props = Props::new();
                    props.insert("n".into(), Value::Int(n));
                    procs[p]
                        .transaction(|tx| tx.put(&key(id), "kv", props.clone()))
                        .unwrap();
                    let e = model.entry(key(id)).or_insert((0, None));
                    *e = (e.0 + 1, Some(n));
                    cached.clear();
                }
                CacheOp::Delete { p, id } => {
                    let deleted = procs[p]
                        .transaction(|tx| match tx.get(&key(id))? {
                            Some(_) => tx.delete(&key(id)).map(|_| true),
                            None => Ok(false),
                        })
                        .unwrap();
                    let e = model.entry(key(id)).or_insert((0, None));
                    prop_assert_eq!(deleted, e.1.is_some(), "{}: delete", ctx);
                    if deleted {
                        *e = (e.0 + 1, None);
                    }
                    cached.clear();
                }
                CacheOp::Get { p, id } => {
                    let before = procs[p].cache_stats();
                    let got = procs[p].get(&key(id)).unwrap();
                    let after = procs[p].cache_stats();
                    let have = got.map(|e| {
                        prop_assert_eq!(&e.kind, "kv", "{}", ctx);
                        prop_assert_eq!(e.props.len(), 1, "{}", ctx);
                        Ok((e.version, e.props["n"].as_i64()))
                    });
                    let have = have.transpose()?;
                    let want = model
                        .get(&key(id))
                        .and_then(|(v, n)| n.map(|n| (*v, Some(n))));
                    prop_assert_eq!(have, want, "{}: process {} read a stale {}", ctx, p, key(id));
                    if !cached.insert((p, id)) {
                        prop_assert_eq!(
                            after.hits,
                            before.hits + 1,
                            "{}: a repeated read with nothing changed missed the cache",
                            ctx
                        );
                    }
                }
                CacheOp::Checkpoint { p } => {
                    procs[p].checkpoint().unwrap();
                    cached.clear();
                }
                CacheOp::Reopen { p } => {
                    drop(procs.remove(p));
                    procs.insert(p, open(&vfs));
                    cached.clear();
                }
            }
        }
    }
}
