//! `verify` (is everything on disk healthy?) and `repair` (explain mid-log damage
//! and, only when asked, cut it off into `quarantine/`).

use crate::error::{Error, Result};
use crate::manifest;
use crate::model::{self, EdgeRecord, EntityRecord};
use crate::record;
use crate::run::Run;
use crate::store::{Options, Store};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wal::{Damage, ProcessLock, Tail, Vfs, Wal, WalOptions};

/// What `verify` found. Healthy when `findings` is empty; `notes` are normal states
/// worth mentioning (a torn tail left by a crash, leftover temporary files).
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    pub findings: Vec<String>,
    pub notes: Vec<String>,
    pub checkpoint_lsn: u64,
    pub last_lsn: u64,
    pub runs: usize,
    pub wal_frames: u64,
    pub entities: u64,
    pub edges: u64,
    /// Index entries checked against a rebuild (0 when not checked).
    pub index_entries: u64,
}

impl VerifyReport {
    pub fn healthy(&self) -> bool {
        self.findings.is_empty()
    }
}

fn wal_opts() -> WalOptions {
    WalOptions::default()
}

/// Checks every file's checksums, reads the WAL end to end, checks that the runs and
/// the WAL agree, and that every edge points at live entities. Takes no lock and
/// writes nothing.
pub fn verify(vfs: Arc<dyn Vfs>, dir: &Path) -> Result<VerifyReport> {
    verify_with(vfs, dir, None)
}

/// [`verify`], and with a deriver also every derived entry (index) against a full
/// rebuild from the entities.
pub fn verify_with(
    vfs: Arc<dyn Vfs>,
    dir: &Path,
    deriver: Option<Arc<dyn crate::store::Deriver>>,
) -> Result<VerifyReport> {
    verify_with_progress(vfs, dir, deriver, &mut |_, _, _| {})
}

/// What long work reports as it goes: `(phase, done, total)`, e.g. `("runs",
/// bytes checked, bytes)`. Called often; the caller decides what to draw.
pub type Progress<'a> = &'a mut dyn FnMut(&str, u64, u64);

/// [`verify_with`], reporting progress: `runs` (bytes of runs checked), `log`,
/// `indexes` and `entities` (entities done).
pub fn verify_with_progress(
    vfs: Arc<dyn Vfs>,
    dir: &Path,
    deriver: Option<Arc<dyn crate::store::Deriver>>,
    progress: Progress<'_>,
) -> Result<VerifyReport> {
    let mut rep = VerifyReport::default();
    let m = match manifest::read(vfs.as_ref(), dir) {
        Ok(m) => m,
        Err(e @ Error::NotAStore { .. }) => return Err(e),
        Err(e) => {
            rep.findings.push(format!("CURRENT: {e}"));
            return Ok(rep);
        }
    };
    rep.checkpoint_lsn = m.checkpoint_lsn;
    rep.runs = m.runs.len();
    let run_bytes: u64 = m.runs.iter().map(|r| r.bytes).sum();
    let mut checked = 0;
    progress("runs", 0, run_bytes);
    for meta in &m.runs {
        match Run::open(vfs.as_ref(), &dir.join("runs"), meta, m.store_id) {
            Ok(r) => match r.verify() {
                Ok(()) => {}
                Err(e) if r.derived_damaged() => rep.findings.push(format!(
                    "run {}: {e} (index entries only: readers rebuild them from the entities; `got checkpoint` rewrites the run)",
                    meta.name
                )),
                Err(e) => rep.findings.push(format!("run {}: {e}", meta.name)),
            },
            Err(e) => rep.findings.push(format!("run {}: {e}", meta.name)),
        }
        if meta.max_lsn > m.checkpoint_lsn {
            rep.findings.push(format!(
                "run {} holds LSN {} past the checkpoint LSN {}",
                meta.name, meta.max_lsn, m.checkpoint_lsn
            ));
        }
        checked += meta.bytes;
        progress("runs", checked, run_bytes);
    }
    progress("log", 0, 1);
    let wal = Wal::open(vfs.clone(), dir, m.store_id, wal_opts(), false)?;
    match wal.position(m.checkpoint_lsn) {
        Err(e) => rep.findings.push(format!("WAL: {e}")),
        Ok(mut cur) => {
            let mut frames = Vec::new();
            match wal.examine(&mut cur, &mut frames) {
                Err(e) => rep.findings.push(format!("WAL: {e}")),
                Ok(Tail::Clean) => {}
                Ok(Tail::Torn {
                    file,
                    offset,
                    bytes,
                }) => rep.notes.push(format!(
                    "torn tail left by a crash: {bytes} bytes at {}:{offset}; the next writer moves them to quarantine/",
                    file.display()
                )),
                Ok(Tail::Damaged(d)) => rep.findings.push(format!(
                    "WAL: {}; run `got repair`",
                    d.into_error()
                )),
            }
            for f in &frames {
                if let Err(e) = record::decode_batch(&f.payload, f.count) {
                    rep.findings
                        .push(format!("WAL frame at LSN {}: {e}", f.first_lsn));
                }
            }
            rep.wal_frames = frames.len() as u64;
            rep.last_lsn = cur.last_lsn();
        }
    }
    progress("log", 1, 1);
    for (sub, what) in [("runs", "run"), ("wal", "segment"), ("", "store")] {
        let d = if sub.is_empty() {
            dir.to_path_buf()
        } else {
            dir.join(sub)
        };
        if let Ok(names) = vfs.list_dir(&d) {
            for n in names.iter().filter(|n| n.ends_with(".tmp")) {
                rep.notes.push(format!(
                    "leftover temporary {what} file {} (from an interrupted write; harmless)",
                    d.join(n).display()
                ));
            }
        }
    }
    if rep.healthy() {
        if let Err(e) = check_graph(vfs, dir, deriver, &mut rep, progress) {
            rep.findings.push(format!("reading the graph: {e}"));
        }
    }
    Ok(rep)
}

/// Every record decodes; every live edge has live endpoints and both directions.
fn check_graph(
    vfs: Arc<dyn Vfs>,
    dir: &Path,
    deriver: Option<Arc<dyn crate::store::Deriver>>,
    rep: &mut VerifyReport,
    progress: Progress<'_>,
) -> Result<()> {
    let opts = Options {
        read_only: true,
        deriver: deriver.clone(),
        ..Options::default()
    };
    let store = Store::open_with_vfs(vfs, dir, opts)?;
    store.inner.ensure_derived()?;
    let st = store.inner.state.read();
    if let Some(d) = &deriver {
        // Every index against a rebuild from the entities.
        let want = crate::store::derive_all_with(&st, d.as_ref(), u64::MAX, &mut |n, t| {
            progress("indexes", n, t)
        })?;
        let have = crate::store::derived_present(&st, u64::MAX)?;
        let missing = want.difference(&have).count();
        let extra = have.difference(&want).count();
        if missing + extra > 0 {
            rep.findings.push(format!(
                "indexes disagree with a rebuild from the entities: {missing} entries missing, {extra} stale"
            ));
        }
        rep.index_entries = have.len() as u64;
    }
    let entities = st.scan_prefix(b"e", u64::MAX)?;
    let mut live = BTreeSet::new();
    let total = entities.len() as u64;
    for (i, (k, (_, v))) in entities.iter().enumerate() {
        if i % 1024 == 0 {
            progress("entities", i as u64, total);
        }
        let id = String::from_utf8_lossy(&k[1..]).into_owned();
        match model::decode::<EntityRecord>(v, "entity record") {
            Ok(r) if !r.deleted => {
                live.insert(id);
            }
            Ok(_) => {}
            Err(e) => rep.findings.push(format!("entity {id}: {e}")),
        }
    }
    progress("entities", total, total);
    rep.entities = live.len() as u64;
    for tag in [b'o', b'i'] {
        for (k, (_, v)) in st.scan_prefix(&[tag], u64::MAX)? {
            let Some((from, kind, to)) = model::edge_of_key(&k) else {
                rep.findings.push(format!("undecodable edge key {k:?}"));
                continue;
            };
            let rec = match model::decode::<EdgeRecord>(&v, "edge record") {
                Ok(r) => r,
                Err(e) => {
                    rep.findings
                        .push(format!("edge {from} -{kind}-> {to}: {e}"));
                    continue;
                }
            };
            if !rec.present {
                continue;
            }
            if tag == b'o' {
                rep.edges += 1;
            }
            for id in [&from, &to] {
                if !live.contains(id) {
                    rep.findings.push(format!(
                        "edge {from} -{kind}-> {to} points at missing entity {id}"
                    ));
                }
            }
            let mirror = if tag == b'o' {
                model::in_key(&from, &kind, &to)
            } else {
                model::out_key(&from, &kind, &to)
            };
            let ok = st
                .get(&mirror, u64::MAX)?
                .and_then(|(_, b)| model::decode::<EdgeRecord>(&b, "edge").ok())
                .is_some_and(|r| r.present);
            if !ok {
                rep.findings.push(format!(
                    "edge {from} -{kind}-> {to} is missing its {} mirror",
                    if tag == b'o' { "in-edge" } else { "out-edge" }
                ));
            }
        }
    }
    Ok(())
}

/// Mid-log damage as `got repair` reports it.
#[derive(Clone, Debug)]
pub struct DamageReport {
    pub file: PathBuf,
    pub offset: u64,
    pub reason: String,
    /// The first LSN that truncating would discard.
    pub first_lost_lsn: u64,
    /// The last LSN found after the damage (what truncating would discard up to).
    pub last_lost_lsn: Option<u64>,
    /// Entity ids (and edges, as `from -kind-> to`) written by the discarded frames.
    pub lost: Vec<String>,
    pub later_segments: usize,
}

#[derive(Clone, Debug, Default)]
pub struct RepairReport {
    pub damage: Option<DamageReport>,
    /// A torn tail (normal after a crash): `(file, offset, bytes)`.
    pub torn_tail: Option<(PathBuf, u64, u64)>,
    /// Whether the damage was cut off (only with truncation asked for).
    pub truncated: bool,
}

fn describe(d: &Damage) -> DamageReport {
    let mut lost = BTreeSet::new();
    let mut last = None;
    for f in &d.later_frames {
        last = Some(f.last_lsn());
        if let Ok(recs) = record::decode_batch(&f.payload, f.count) {
            for r in recs {
                for (k, _) in r.writes {
                    match k.first() {
                        Some(b'e') => {
                            lost.insert(String::from_utf8_lossy(&k[1..]).into_owned());
                        }
                        Some(b'o') => {
                            if let Some((a, kind, b)) = model::edge_of_key(&k) {
                                lost.insert(format!("{a} -{kind}-> {b}"));
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    DamageReport {
        file: d.file.clone(),
        offset: d.offset,
        reason: d.reason.clone(),
        first_lost_lsn: d.expected_lsn,
        last_lost_lsn: last,
        lost: lost.into_iter().collect(),
        later_segments: d.later_segments.len(),
    }
}

/// Explains the state of the log's end; with `truncate`, moves a mid-log damaged
/// frame and everything after it to `quarantine/` (the store then opens with the
/// prefix before the damage). Takes the writer lock.
pub fn repair(
    vfs: Arc<dyn Vfs>,
    dir: &Path,
    truncate: bool,
    lock_timeout: std::time::Duration,
) -> Result<RepairReport> {
    let m = manifest::read(vfs.as_ref(), dir)?;
    // A store holding a file newer than this binary knows is not ours to cut: a
    // newer binary may write its log differently. (Other damage to runs is not
    // this repair's business: see `repair --from-backup`.)
    for meta in &m.runs {
        if let Err(e @ Error::Wal(wal::Error::TooNew { .. })) =
            Run::open(vfs.as_ref(), &dir.join("runs"), meta, m.store_id)
        {
            return Err(e);
        }
    }
    let lock = ProcessLock::open(vfs.as_ref(), dir)?;
    let held = lock.acquire(lock_timeout)?;
    let wal = Wal::open(vfs.clone(), dir, m.store_id, wal_opts(), true)?;
    wal.set_generation(m.generation);
    let mut cur = wal.position(m.checkpoint_lsn)?;
    let mut frames = Vec::new();
    let mut rep = RepairReport::default();
    match wal.examine(&mut cur, &mut frames)? {
        Tail::Clean => {}
        Tail::Torn {
            file,
            offset,
            bytes,
        } => rep.torn_tail = Some((file, offset, bytes)),
        Tail::Damaged(d) => {
            rep.damage = Some(describe(&d));
            if truncate {
                wal.truncate_at(&held, &d)?;
                rep.truncated = true;
            }
        }
    }
    Ok(rep)
}
