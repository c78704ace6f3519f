//! The model-checking harness shared by `io_errors` and `sim_power_loss`: a seeded
//! PRNG, a plain `BTreeMap` model of the store, `observe` (the store's whole
//! contents, checked for internal consistency) and `diff`, the random transaction
//! workload, and creating, opening and crashing a store on a simulated disk.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use got::wal::{SimVfs, Vfs, Wal, WalOptions};
use got::{Direction, Options, Props, Store, Transaction, Value};

pub const DIR: &str = "/db/.got";
pub const N_IDS: u64 = 21; // k0..k20
pub const EDGE_KINDS: [&str; 2] = ["dep", "rel"];

// ---------------------------------------------------------------------------------
// Deterministic randomness

/// splitmix64.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Decorrelate neighbouring seeds.
        let mut r = Rng(seed ^ 0x6A09_E667_F3BC_C908);
        r.next_u64();
        r
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------------
// The model

pub type EdgeKey = (String, String, String);

/// What the store should hold. `ents` keeps every id ever written with the version
/// of its last record (deletions included: versions keep rising across a delete).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Model {
    pub ents: BTreeMap<String, (u64, Option<Props>)>,
    pub edges: BTreeMap<EdgeKey, Props>,
}

/// The visible contents: live entities (id -> (kind, version, props)) and edges.
#[derive(Clone, Debug, PartialEq)]
pub struct Contents {
    pub ents: BTreeMap<String, (String, u64, Props)>,
    /// Deleted entities: the version of their deletion record.
    pub deleted: BTreeMap<String, u64>,
    pub edges: BTreeMap<EdgeKey, Props>,
}

impl Model {
    pub fn contents(&self) -> Contents {
        Contents {
            ents: self
                .ents
                .iter()
                .filter_map(|(id, (v, p))| {
                    p.as_ref()
                        .map(|p| (id.clone(), ("kv".to_string(), *v, p.clone())))
                })
                .collect(),
            deleted: self
                .ents
                .iter()
                .filter(|(_, (_, p))| p.is_none())
                .map(|(id, (v, _))| (id.clone(), *v))
                .collect(),
            edges: self.edges.clone(),
        }
    }
    pub fn live_ids(&self) -> Vec<String> {
        self.ents
            .iter()
            .filter(|(_, (_, p))| p.is_some())
            .map(|(id, _)| id.clone())
            .collect()
    }
    pub fn version(&self, id: &str) -> u64 {
        self.ents.get(id).map_or(0, |(v, _)| *v)
    }
}

pub fn id_of(n: u64) -> String {
    format!("k{n}")
}

/// Reads the store's whole contents and checks its internal consistency (every
/// out-edge has its in-edge mirror and live endpoints, `get` agrees with `list`).
pub fn observe(store: &Store) -> Result<Contents, String> {
    let list = store
        .list(None, None)
        .map_err(|e| format!("list failed: {e}"))?;
    let mut ents = BTreeMap::new();
    for e in list {
        if ents
            .insert(e.id.clone(), (e.kind.clone(), e.version, e.props.clone()))
            .is_some()
        {
            return Err(format!("list returned {} twice", e.id));
        }
    }
    let mut tx = store.begin().map_err(|e| format!("begin failed: {e}"))?;
    let mut out = BTreeMap::new();
    let mut inn = BTreeMap::new();
    let mut deleted = BTreeMap::new();
    for n in 0..N_IDS {
        let id = id_of(n);
        let history = store
            .history(&id)
            .map_err(|e| format!("history({id}) failed: {e}"))?;
        if let Some(last) = history.last() {
            let live = ents.get(&id);
            if last.deleted {
                if live.is_some() {
                    return Err(format!("{id} is listed but its history ends in a deletion"));
                }
                deleted.insert(id.clone(), last.version);
            } else if live.map(|(_, v, _)| *v) != Some(last.version) {
                return Err(format!(
                    "{id}: history ends at version {} but list() has {live:?}",
                    last.version
                ));
            }
        } else if ents.contains_key(&id) {
            return Err(format!("{id} is listed but has no history"));
        }
        let got = tx.get(&id).map_err(|e| format!("get {id} failed: {e}"))?;
        let listed = ents.get(&id);
        match (&got, listed) {
            (None, None) => {}
            (Some(g), Some((k, v, p))) if &g.kind == k && g.version == *v && &g.props == p => {}
            _ => {
                return Err(format!(
                    "get({id}) = {got:?} disagrees with list() = {listed:?}"
                ))
            }
        }
        for e in tx
            .edges(&id, Direction::Out, None)
            .map_err(|e| format!("edges({id}, Out) failed: {e}"))?
        {
            if e.from != id {
                return Err(format!("edges({id}, Out) returned {e:?}"));
            }
            out.insert((e.from, e.kind, e.to), e.props);
        }
        for e in tx
            .edges(&id, Direction::In, None)
            .map_err(|e| format!("edges({id}, In) failed: {e}"))?
        {
            if e.to != id {
                return Err(format!("edges({id}, In) returned {e:?}"));
            }
            inn.insert((e.from, e.kind, e.to), e.props);
        }
    }
    if out != inn {
        return Err(format!(
            "out-edges and in-edges disagree:\n  out: {out:?}\n  in:  {inn:?}"
        ));
    }
    for (f, k, t) in out.keys() {
        for end in [f, t] {
            if !ents.contains_key(end) {
                return Err(format!("edge {f} -{k}-> {t} has a missing endpoint {end}"));
            }
        }
    }
    Ok(Contents {
        ents,
        deleted,
        edges: out,
    })
}

pub fn diff(want: &Contents, got: &Contents) -> String {
    let mut s = String::new();
    let ids: std::collections::BTreeSet<&String> =
        want.ents.keys().chain(got.ents.keys()).collect();
    for id in ids {
        let (w, g) = (want.ents.get(id), got.ents.get(id));
        if w != g {
            s += &format!("    entity {id}: expected {w:?}, store has {g:?}\n");
        }
    }
    let ids: std::collections::BTreeSet<&String> =
        want.deleted.keys().chain(got.deleted.keys()).collect();
    for id in ids {
        let (w, g) = (want.deleted.get(id), got.deleted.get(id));
        if w != g {
            s += &format!("    deleted {id}: expected deletion version {w:?}, store has {g:?}\n");
        }
    }
    let keys: std::collections::BTreeSet<&EdgeKey> =
        want.edges.keys().chain(got.edges.keys()).collect();
    for k in keys {
        let (w, g) = (want.edges.get(k), got.edges.get(k));
        if w != g {
            s += &format!(
                "    edge {} -{}-> {}: expected {w:?}, store has {g:?}\n",
                k.0, k.1, k.2
            );
        }
    }
    s
}

// ---------------------------------------------------------------------------------
// The workload

pub enum StepErr {
    /// The store returned an error (expected only while faults are armed).
    Store(got::Error),
    /// The store disagreed with the model while building the transaction.
    Check(String),
}

impl From<got::Error> for StepErr {
    fn from(e: got::Error) -> Self {
        StepErr::Store(e)
    }
}

pub fn random_props(rng: &mut Rng) -> Props {
    let mut p = Props::new();
    match rng.below(3) {
        0 => {
            p.insert("n".into(), Value::Int(rng.below(1000) as i64 - 500));
        }
        1 => {
            p.insert("s".into(), Value::String(format!("v{}", rng.below(10_000))));
        }
        _ => {
            p.insert("n".into(), Value::Int(rng.next_u64() as i64));
            // Sometimes a longer value, so frames vary in size and rotation moves.
            let len = if rng.one_in(4) { 200 } else { 8 };
            p.insert(
                "s".into(),
                Value::String("x".repeat(1 + rng.below(len) as usize)),
            );
        }
    }
    p
}

/// Builds one random transaction of 1-4 operations in `tx`, applying each to `m`
/// (the transaction's own view of the model) and checking the store agrees.
pub fn build_tx(
    tx: &mut Transaction<'_>,
    rng: &mut Rng,
    base: &Model,
    m: &mut Model,
    trace: &mut Vec<String>,
) -> Result<(), StepErr> {
    let nops = 1 + rng.below(4);
    for _ in 0..nops {
        let live = m.live_ids();
        let mut choice = rng.below(10);
        if live.is_empty() && choice >= 4 {
            choice = 0;
        }
        match choice {
            // put
            0..=3 => {
                let id = id_of(rng.below(N_IDS));
                let p = random_props(rng);
                trace.push(format!("put({id})"));
                let e = tx.put(&id, "kv", p.clone())?;
                // One committed change raises a version by one, however many
                // operations of the transaction touch the entity.
                let v = base.version(&id) + 1;
                if e.version != v || e.props != p || e.kind != "kv" {
                    return Err(StepErr::Check(format!(
                        "put({id}) returned version {} props {:?}, model expects version {v}",
                        e.version, e.props
                    )));
                }
                m.ents.insert(id, (v, Some(p)));
            }
            // delete (and, in the same transaction, its edges)
            4 | 5 => {
                let id = rng.pick(&live).clone();
                trace.push(format!("delete({id})"));
                let e = tx.delete(&id)?;
                let (v, p) = m.ents.get(&id).cloned().expect("live");
                if e.version != v || Some(&e.props) != p.as_ref() {
                    return Err(StepErr::Check(format!(
                        "delete({id}) returned version {} props {:?}, model has {v} {p:?}",
                        e.version, e.props
                    )));
                }
                // Deleting an entity this transaction created leaves no record.
                if base.ents.contains_key(&id) {
                    m.ents.insert(id.clone(), (base.version(&id) + 1, None));
                } else {
                    m.ents.remove(&id);
                }
                m.edges.retain(|(f, _, t), _| f != &id && t != &id);
            }
            // add (or re-add) an edge between live entities
            6 | 7 => {
                let from = rng.pick(&live).clone();
                let to = rng.pick(&live).clone();
                let kind = *rng.pick(&EDGE_KINDS);
                let mut p = Props::new();
                p.insert("w".into(), Value::Int(rng.below(100) as i64));
                trace.push(format!("add_edge({from} -{kind}-> {to})"));
                tx.add_edge(&from, kind, &to, p.clone())?;
                m.edges.insert((from, kind.to_string(), to), p);
            }
            // remove an edge (usually an existing one)
            _ => {
                let key = if !m.edges.is_empty() && !rng.one_in(4) {
                    let keys: Vec<&EdgeKey> = m.edges.keys().collect();
                    (*rng.pick(&keys)).clone()
                } else {
                    (
                        id_of(rng.below(N_IDS)),
                        rng.pick(&EDGE_KINDS).to_string(),
                        id_of(rng.below(N_IDS)),
                    )
                };
                trace.push(format!("remove_edge({} -{}-> {})", key.0, key.1, key.2));
                let existed = tx.remove_edge(&key.0, &key.1, &key.2)?;
                let modeled = m.edges.remove(&key).is_some();
                if existed != modeled {
                    return Err(StepErr::Check(format!(
                        "remove_edge({key:?}) returned {existed}, model says {modeled}"
                    )));
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Opening

/// Creates the store like `got::versioned_store::init_with`, but with a store id
/// drawn from `rng`, so that a seed replays the same bytes.
pub fn create(vfs: &Arc<SimVfs>, opts: &Options, rng: &mut Rng) -> Result<(), String> {
    use got::versioned_store::manifest::{self, Manifest};
    let dir = Path::new(DIR);
    let r = (|| -> got::Result<()> {
        let io = |e: std::io::Error| got::Error::Invalid(e.to_string());
        got::wal::create_dir_durable(vfs.as_ref(), dir).map_err(io)?;
        for sub in ["runs", "backups", "quarantine"] {
            vfs.create_dir_all(&dir.join(sub)).map_err(io)?;
        }
        let mut store_id = [0u8; 16];
        store_id[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
        store_id[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
        let wal_opts = WalOptions {
            segment_size_bytes: opts.segment_size_bytes,
            ..WalOptions::default()
        };
        Wal::create(vfs.as_ref(), dir, store_id, &wal_opts)?;
        manifest::write(
            vfs.as_ref(),
            dir,
            &Manifest {
                store_id,
                generation: 0,
                checkpoint_lsn: 0,
                runs: Vec::new(),
                created_at_ms: 0,
                wal_hint: None,
            },
        )
    })();
    r.map_err(|e| format!("creating the store failed: {e}"))
}

/// A new store on a new simulated disk, opened. Half the seeds get Linux's
/// behaviour after a failed sync (the dirty pages dropped, see `SyncFailure`), the
/// other half the gentler one (they stay pending). The choice reads the PRNG's
/// state without drawing from it, so each seed's workload stays what it was.
pub fn new_store(rng: &mut Rng, opts: &Options) -> Result<(Arc<SimVfs>, Store), String> {
    let vfs = SimVfs::new();
    if (rng.0 >> 17) & 1 == 1 {
        vfs.set_sync_failure(got::wal::sim::SyncFailure::DropsDirty);
    }
    create(&vfs, opts, rng)?;
    let store = open(&vfs, opts)?;
    Ok((vfs, store))
}

pub fn open(vfs: &Arc<SimVfs>, opts: &Options) -> Result<Store, String> {
    Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, DIR, opts.clone())
        .map_err(|e| format!("open failed: {e} ({e:?})"))
}

#[derive(Clone, Copy, Debug)]
pub enum Crash {
    Random(u64),
    DropAll,
    KeepAll,
}

impl Crash {
    pub fn random(rng: &mut Rng) -> Crash {
        match rng.below(10) {
            0 => Crash::KeepAll,
            1 => Crash::DropAll,
            _ => Crash::Random(rng.next_u64()),
        }
    }
    pub fn apply(self, vfs: &SimVfs) {
        match self {
            Crash::Random(s) => vfs.crash(s),
            Crash::DropAll => vfs.crash_drop_all(),
            Crash::KeepAll => vfs.crash_keep_all(),
        }
    }
}

// ---------------------------------------------------------------------------------
// Failures

pub fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic)".into()
    }
}
