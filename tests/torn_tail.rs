//! Torn tails: a crash that tears the last WAL frame before its sync returned (so
//! `DURABLE` still names the frame before it) loses exactly that frame's
//! transaction, which was never acknowledged, and no earlier one; the torn bytes go
//! to `quarantine/` (never destroyed) and the rest of the segment is zeroed, so
//! stale frames can never be read back later. A torn tail is a normal state:
//! `verify` calls it healthy and only notes it.
//!
//! Damage to a frame that `DURABLE` proves synced is not a torn tail, even in the
//! last frame: the commit was acknowledged, so it is corruption (promise 5). The
//! store refuses to open read-write, naming file and offset and pointing at
//! `got repair`, and changes nothing until `got repair --truncate-at-corruption`.
//!
//! The exhaustive sweeps tear the last frame at every byte offset, once filling the
//! rest of the frame with zeros and once with garbage from a seeded PRNG (the seed
//! is printed; set `GOT_SEED` to replay one), each with `DURABLE` before and at the
//! frame. One template store is built once and the frame is rewritten in place
//! before each reopen, so no run re-creates a store.

use crate::common;

use common::cli::text;
use common::seed::seed;
use common::store_dir::{contents, quarantine_files, snapshot};
use common::wal_bytes::{boot_anew, frames, u64_at, FrameLoc, FIRST_SEGMENT, FRAME_HEADER};
use got::versioned_store::{verify, VerifyReport};
use got::wal::{RealVfs, SimVfs, Vfs};
use got::{props, Durability, Entity, Options, Store, Value};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Instant;

/// Transactions committed before the last frame is torn.
const K: usize = 5;

// ---------------------------------------------------------------------------------
// Helpers.

/// splitmix64: a tiny seeded PRNG for the garbage fills.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

fn opts() -> Options {
    Options {
        create_if_missing: true,
        auto_checkpoint: false,
        actor: Some("torn-tail-test".into()),
        ..Default::default()
    }
}

fn try_reopen(store: &Path) -> got::Result<Store> {
    Store::open(
        store,
        Options {
            create_if_missing: false,
            ..opts()
        },
    )
}

fn reopen(store: &Path) -> Store {
    try_reopen(store).unwrap_or_else(|e| panic!("reopen of {} failed: {e}", store.display()))
}

fn got(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_got"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("GOT_DIR")
        .env("GOT_AGENT", "torn-tail-cli")
        .output()
        .expect("run got")
}

fn trim_trailing_zeros(b: &[u8]) -> &[u8] {
    let n = b.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
    &b[..n]
}

fn has_torn_note(rep: &VerifyReport) -> bool {
    rep.notes.iter().any(|n| n.contains("torn tail"))
}

// ---------------------------------------------------------------------------------
// The template: K committed transactions, one entity each.

struct Template {
    _tmp: tempfile::TempDir,
    store: PathBuf,
    seg: PathBuf,
    /// The entities in commit order (transaction i created `entities[i]`).
    entities: Vec<Entity>,
    /// The last frame (transaction K), as stored (padding included).
    last: FrameLoc,
    last_bytes: Vec<u8>,
    /// DURABLE as it was after K-1 and after K commits.
    durable_k_minus_1: Vec<u8>,
    durable_k: Vec<u8>,
}

fn build_template(k: usize) -> Template {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join(".got");
    let s = Store::open(&store, opts()).unwrap();
    let mut entities = Vec::new();
    let mut durable_k_minus_1 = Vec::new();
    for i in 0..k {
        if i == k - 1 {
            durable_k_minus_1 = fs::read(store.join("DURABLE")).unwrap();
        }
        let e = s
            .transaction(|tx| {
                tx.create(
                    "task",
                    props([
                        ("title", Value::from(format!("transaction {}", i + 1))),
                        ("n", Value::from(i as i64)),
                        ("done", Value::from(false)),
                    ]),
                )
            })
            .unwrap();
        entities.push(e);
    }
    assert_eq!(s.applied_lsn().unwrap(), k as u64);
    drop(s);
    let durable_k = fs::read(store.join("DURABLE")).unwrap();
    let seg = store.join("wal").join(FIRST_SEGMENT);
    let bytes = fs::read(&seg).unwrap();
    let fr = frames(&bytes);
    assert_eq!(fr.len(), k, "one frame per sequential commit: {fr:?}");
    for (i, f) in fr.iter().enumerate() {
        assert_eq!(
            (f.kind, f.count, f.first_lsn),
            (1, 1, i as u64 + 1),
            "{f:?}"
        );
    }
    let last = *fr.last().unwrap();
    assert!(
        bytes[last.end()..].iter().all(|&b| b == 0),
        "the segment past the last frame must be zeros"
    );
    Template {
        _tmp: tmp,
        store,
        seg,
        entities,
        last_bytes: bytes[last.off..last.end()].to_vec(),
        last,
        durable_k_minus_1,
        durable_k,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fill {
    Zero,
    Garbage,
}

/// The last frame with bytes `[c, len)` replaced.
fn torn_image(t: &Template, c: usize, fill: Fill, rng: &mut Rng) -> Vec<u8> {
    let mut b = t.last_bytes.clone();
    for x in &mut b[c..] {
        *x = match fill {
            Fill::Zero => 0,
            Fill::Garbage => rng.byte(),
        };
    }
    b
}

/// Writes a torn last frame (and `durable`) into the template, in place.
fn install_tear(t: &Template, image: &[u8], durable: &[u8]) {
    let f = fs::OpenOptions::new().write(true).open(&t.seg).unwrap();
    f.write_all_at(image, t.last.off as u64).unwrap();
    fs::write(t.store.join("DURABLE"), durable).unwrap();
    boot_anew(&t.store);
}

/// What one tear must lead to.
struct Expect {
    /// The checksummed part of the frame is untouched (garbage in the padding only,
    /// or zeros over bytes that were zero): the frame is intact and stays.
    intact: bool,
    /// What recovery must move to quarantine (empty: nothing).
    quarantined: Vec<u8>,
}

fn expect(t: &Template, image: &[u8]) -> Expect {
    let n = t.last.checked_len();
    let intact = image[..n] == t.last_bytes[..n];
    let quarantined = if intact {
        Vec::new()
    } else {
        // The segment is zero past the frame, so the tail is the image, trimmed.
        trim_trailing_zeros(image).to_vec()
    };
    Expect {
        intact,
        quarantined,
    }
}

/// One tear, checked end to end: verify (healthy, torn-tail note), reopen read-write
/// (exactly the first K-1 transactions, or all K when nothing of it was cut), the cut
/// bytes in quarantine, zeros past the end of the log. Leaves the template with the
/// torn frame zeroed (or intact) and an empty quarantine.
fn check_one_tear(t: &Template, image: &[u8], cli: bool, ctx: &str) {
    let k = t.entities.len();
    let e = expect(t, image);
    let kept = if e.intact { k } else { k - 1 };

    // 1. verify before reopening: healthy; a torn tail is a note, not a finding.
    let rep = verify(Arc::new(RealVfs), &t.store).unwrap();
    assert!(
        rep.healthy(),
        "{ctx}: verify found problems: {:?}",
        rep.findings
    );
    assert_eq!(
        has_torn_note(&rep),
        !e.quarantined.is_empty(),
        "{ctx}: torn-tail note expected iff non-zero torn bytes: {:?}",
        rep.notes
    );
    assert_eq!(rep.last_lsn, kept as u64, "{ctx}: verify's last LSN");
    assert_eq!(rep.wal_frames, kept as u64, "{ctx}: verify's frame count");
    if cli {
        let o = got(&t.store, &["verify"]);
        assert_eq!(o.status.code(), Some(0), "{ctx}: got verify:\n{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("healthy"), "{ctx}:\n{}", text(&o));
        assert_eq!(
            out.contains("torn tail"),
            !e.quarantined.is_empty(),
            "{ctx}: got verify's note:\n{}",
            text(&o)
        );
        let o = got(&t.store, &["--json", "verify"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{ctx}: got --json verify:\n{}",
            text(&o)
        );
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(j["healthy"], true, "{ctx}: {j}");
        assert_eq!(j["last_lsn"], kept as u64, "{ctx}: {j}");
    }

    // 2. Reopen read-write: recovery.
    let s = reopen(&t.store);
    assert_eq!(s.applied_lsn().unwrap(), kept as u64, "{ctx}: applied LSN");
    let got = contents(&s);
    let want: BTreeMap<String, Entity> = t.entities[..kept]
        .iter()
        .map(|e| (e.id.clone(), e.clone()))
        .collect();
    assert_eq!(got, want, "{ctx}: recovered contents");
    drop(s);

    // 3. The log's end is clean: zeros from the end of the last kept frame (the
    // intact frame may keep garbage in its own padding, which no checksum covers).
    let seg = fs::read(&t.seg).unwrap();
    let clean_from = if e.intact { t.last.end() } else { t.last.off };
    if let Some(i) = seg[clean_from..].iter().position(|&b| b != 0) {
        panic!(
            "{ctx}: non-zero byte left past the end of the log at offset {}",
            clean_from + i
        );
    }
    assert_eq!(
        frames(&seg).len(),
        kept,
        "{ctx}: frames left in the segment"
    );

    // 4. The cut bytes are kept in quarantine/, under a name giving file and offset.
    let q = quarantine_files(&t.store);
    if e.quarantined.is_empty() {
        assert!(q.is_empty(), "{ctx}: nothing to quarantine, found {q:?}");
    } else {
        assert_eq!(
            q.len(),
            1,
            "{ctx}: one quarantine file expected, found {q:?}"
        );
        let prefix = format!("{FIRST_SEGMENT}.{:012}.", t.last.off);
        assert!(
            q[0].starts_with(&prefix) && q[0].ends_with(".torn"),
            "{ctx}: quarantine file name {:?} should start with {prefix:?}",
            q[0]
        );
        let kept_bytes = fs::read(t.store.join("quarantine").join(&q[0])).unwrap();
        assert_eq!(kept_bytes, e.quarantined, "{ctx}: quarantined bytes");
        fs::remove_file(t.store.join("quarantine").join(&q[0])).unwrap();
    }
}

/// One tear of the last frame while `DURABLE` proves it synced: unless the tear
/// left every checksummed byte as it was, this is corruption. verify reports it
/// (a finding naming file and offset), read-write opens refuse it naming file and
/// offset and pointing at `got repair`, a lock-free reader reports it rather than
/// serve the state before it, and not one byte of the store changes.
fn check_one_proven_tear(t: &Template, image: &[u8], cli: bool, ctx: &str) {
    if expect(t, image).intact {
        return check_one_tear(t, image, cli, ctx);
    }
    let before = snapshot(&t.store);
    let offset = t.last.off.to_string();
    let names_place = |msg: &str| msg.contains(FIRST_SEGMENT) && msg.contains(&offset);

    let rep = verify(Arc::new(RealVfs), &t.store).unwrap();
    assert!(!rep.healthy(), "{ctx}: verify called it healthy: {rep:?}");
    assert!(
        rep.findings
            .iter()
            .any(|f| names_place(f) && f.contains("got repair")),
        "{ctx}: verify must name file and offset and point at `got repair`: {:?}",
        rep.findings
    );
    assert!(
        !has_torn_note(&rep),
        "{ctx}: reported as a torn tail: {rep:?}"
    );

    let e = try_reopen(&t.store)
        .err()
        .unwrap_or_else(|| panic!("{ctx}: a read-write open accepted a damaged synced frame"));
    assert!(e.is_corruption(), "{ctx}: {e:?}");
    let msg = e.to_string();
    assert!(
        names_place(&msg) && msg.contains("got repair"),
        "{ctx}: the error must name file and offset and point at `got repair`: {msg}"
    );

    // A reader without the lock: an acknowledged entity is never "not found".
    let acknowledged = &t.entities[t.entities.len() - 1].id;
    let ro = Options {
        read_only: true,
        create_if_missing: false,
        ..opts()
    };
    match Store::open(&t.store, ro) {
        Err(e) => assert!(e.is_corruption(), "{ctx}: read-only open: {e:?}"),
        Ok(s) => {
            let r = s.get(acknowledged);
            assert!(
                matches!(&r, Err(e) if e.is_corruption()),
                "{ctx}: read-only get of acknowledged {acknowledged} returned {r:?}"
            );
        }
    }
    if cli {
        let o = got(&t.store, &["verify"]);
        assert_eq!(o.status.code(), Some(7), "{ctx}: got verify:\n{}", text(&o));
        let o = got(&t.store, &["entity", "put", "task", "--props", "{}"]);
        assert_eq!(
            o.status.code(),
            Some(7),
            "{ctx}: got entity put:\n{}",
            text(&o)
        );
        assert!(names_place(&text(&o)), "{ctx}:\n{}", text(&o));
        let o = got(&t.store, &["repair"]);
        assert_eq!(o.status.code(), Some(7), "{ctx}: got repair:\n{}", text(&o));
        assert!(names_place(&text(&o)), "{ctx}: got repair:\n{}", text(&o));
    }
    assert_eq!(snapshot(&t.store), before, "{ctx}: the store changed");
}

/// What `DURABLE` says when the last frame is torn.
#[derive(Clone, Copy, Debug)]
enum DurableAt {
    /// The crash image: the writer died before its sync returned.
    PreviousFrame,
    /// The frame was synced and acknowledged; the damage came later.
    TornFrame,
}

/// Tears the last frame at every offset `c` in `[0, frame_len]` with `fill`.
fn sweep(fill: Fill, durable: DurableAt, cli_offsets: &[usize]) {
    let seed = seed(&format!("torn-tail sweep {fill:?}, DURABLE at {durable:?}"));
    let mut rng = Rng(seed);
    let t = build_template(K);
    let len = t.last.stored_len;
    println!(
        "last frame: offset {}, payload {} bytes, {} bytes stored",
        t.last.off, t.last.payload_len, len
    );
    let started = Instant::now();
    let (mut torn, mut intact) = (0, 0);
    for c in 0..=len {
        let image = torn_image(&t, c, fill, &mut rng);
        let ctx =
            format!("{fill:?} tear at byte {c} of {len}, DURABLE at {durable:?} (seed {seed})");
        if expect(&t, &image).intact {
            intact += 1;
        } else {
            torn += 1;
        }
        let cli = cli_offsets.contains(&c);
        match durable {
            DurableAt::PreviousFrame => {
                install_tear(&t, &image, &t.durable_k_minus_1);
                check_one_tear(&t, &image, cli, &ctx);
            }
            DurableAt::TornFrame => {
                install_tear(&t, &image, &t.durable_k);
                check_one_proven_tear(&t, &image, cli, &ctx);
            }
        }
    }
    // Almost every tear lands in the checksummed bytes and loses the frame; c == len
    // (and tears that change no checksummed byte) keep it.
    assert!(
        torn >= t.last.checked_len() - 8,
        "only {torn} tears cut the frame"
    );
    assert!(intact >= 1);
    println!(
        "{fill:?}: {} tears ({torn} damaged, {intact} intact) in {:?}",
        len + 1,
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------
// The sweeps.

/// The crash image: the last frame's sync never returned (DURABLE names K-1), and
/// the frame is cut at every byte with the rest zero-filled. Reopening keeps exactly
/// the first K-1 transactions; all K when nothing was cut.
#[test]
fn zero_filled_tear_of_an_unsynced_frame_at_every_byte_keeps_exactly_the_earlier_transactions() {
    sweep(Fill::Zero, DurableAt::PreviousFrame, &[1, 4, 47, 48, 60]);
}

/// The same with garbage after the cut (a torn sector of random bytes). Garbage
/// only in the frame's padding, which no checksum covers, leaves the frame intact:
/// all K stay (the padding garbage stays too, inside the last frame's extent).
#[test]
fn garbage_filled_tear_of_an_unsynced_frame_at_every_byte_keeps_exactly_the_earlier_transactions() {
    sweep(Fill::Garbage, DurableAt::PreviousFrame, &[0, 9, 40, 100]);
}

/// DURABLE names K: frame K was synced and acknowledged before it was damaged. At
/// every byte, zero-filled: corruption, refused, nothing changed.
#[test]
fn zero_filled_damage_to_a_frame_durable_proves_synced_is_corruption_at_every_byte() {
    sweep(Fill::Zero, DurableAt::TornFrame, &[1, 48]);
}

/// The same with garbage after the cut.
#[test]
fn garbage_filled_damage_to_a_frame_durable_proves_synced_is_corruption_at_every_byte() {
    sweep(Fill::Garbage, DurableAt::TornFrame, &[0, 40]);
}

/// Only when asked does `got repair --truncate-at-corruption` cut an acknowledged
/// frame; it keeps the bytes in quarantine, lowers DURABLE so the cut stays a cut,
/// and the store then opens with the K-1 transactions before it and takes commits.
#[test]
fn repair_cuts_a_damaged_synced_last_frame_only_when_asked() {
    let t = build_template(K);
    let mut rng = Rng(11);
    let image = torn_image(&t, 30, Fill::Garbage, &mut rng);
    install_tear(&t, &image, &t.durable_k);
    let o = got(&t.store, &["repair"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert!(
        try_reopen(&t.store).is_err(),
        "repair without --truncate-at-corruption cut it"
    );

    let o = got(&t.store, &["repair", "--truncate-at-corruption"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(quarantine_files(&t.store).len(), 1);
    let s = reopen(&t.store);
    let want: BTreeMap<String, Entity> = t.entities[..K - 1]
        .iter()
        .map(|e| (e.id.clone(), e.clone()))
        .collect();
    assert_eq!(contents(&s), want);
    put(&s, "N-0001", "after the repair");
    assert_eq!(s.history("N-0001").unwrap()[0].lsn, K as u64);
    drop(s);
    let rep = verify(Arc::new(RealVfs), &t.store).unwrap();
    assert!(rep.healthy(), "{rep:?}");
}

/// A whole synced frame read back as zeros (a lost write) with nothing after it
/// looks like a clean end of the log; DURABLE says otherwise. Corruption, also for
/// a handle that already checked the log once (the cheap path of later commits).
#[test]
fn a_synced_frame_lost_to_zeros_at_the_end_of_the_log_is_corruption() {
    let t = build_template(K);
    let zeros = vec![0u8; t.last_bytes.len()];
    install_tear(&t, &zeros, &t.durable_k);
    let before = snapshot(&t.store);
    let Err(e) = try_reopen(&t.store) else {
        panic!("opened with a lost synced frame")
    };
    assert!(e.is_corruption(), "{e:?}");
    assert!(
        e.to_string().contains(&format!("synced through LSN {K}")),
        "{e}"
    );
    let rep = verify(Arc::new(RealVfs), &t.store).unwrap();
    assert!(!rep.healthy(), "{rep:?}");
    assert_eq!(snapshot(&t.store), before, "the store changed");

    // A long-lived handle opened before frame K existed; another process then
    // commits K (DURABLE = K), and that synced write is lost. The handle's next
    // commit (whose recovery no longer looks past a clean end) must see it.
    install_tear(&t, &zeros, &t.durable_k_minus_1);
    let s = reopen(&t.store);
    assert_eq!(contents(&s).len(), K - 1);
    install_tear(&t, &zeros, &t.durable_k);
    let r = s.transaction(|tx| tx.put("N-0001", "note", props([("x", Value::from(1))])));
    assert!(matches!(&r, Err(e) if e.is_corruption()), "{r:?}");
}

/// Damage at the very first frame of a store with one transaction is a torn tail
/// too: the store opens empty.
#[test]
fn tearing_the_only_frame_leaves_an_empty_store_that_opens() {
    let t = build_template(1);
    let mut rng = Rng(1);
    for c in [0, 1, 20, 48, t.last.checked_len() - 1] {
        let image = torn_image(&t, c, Fill::Garbage, &mut rng);
        install_tear(&t, &image, &t.durable_k_minus_1);
        check_one_tear(&t, &image, c == 20, &format!("only frame, cut {c}"));
    }
    let s = reopen(&t.store);
    assert!(contents(&s).is_empty());
    assert_eq!(s.applied_lsn().unwrap(), 0);
}

// ---------------------------------------------------------------------------------
// After recovery the store keeps working, through the CLI too.

#[test]
fn after_a_torn_tail_the_next_got_write_recovers_and_reuses_the_lsn() {
    let t = build_template(K);
    let mut rng = Rng(7);
    let image = torn_image(&t, 30, Fill::Garbage, &mut rng);
    install_tear(&t, &image, &t.durable_k_minus_1);

    let o = got(&t.store, &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("torn tail"),
        "{}",
        text(&o)
    );

    // A read-only command never repairs: the quarantine stays empty.
    let o = got(&t.store, &["--json", "entity", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), K - 1, "{list}");
    assert!(quarantine_files(&t.store).is_empty());

    // The first write takes the lock, cuts the tail, and commits at LSN K.
    let o = got(
        &t.store,
        &[
            "--json",
            "entity",
            "put",
            "task",
            "--props",
            r#"{"title":"after the crash"}"#,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let put: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let new_id = put["id"].as_str().unwrap().to_string();
    assert_eq!(quarantine_files(&t.store).len(), 1);

    let o = got(&t.store, &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("torn tail"),
        "{}",
        text(&o)
    );

    let s = reopen(&t.store);
    let c = contents(&s);
    assert_eq!(c.len(), K);
    for e in &t.entities[..K - 1] {
        assert_eq!(c.get(&e.id), Some(e));
    }
    assert!(
        !c.contains_key(&t.entities[K - 1].id),
        "the torn transaction came back"
    );
    assert_eq!(c[&new_id].props["title"], Value::from("after the crash"));
    assert_eq!(s.history(&new_id).unwrap()[0].lsn, K as u64);
    drop(s);
    let seg = fs::read(&t.seg).unwrap();
    let fr = frames(&seg);
    assert_eq!(fr.len(), K);
    assert_eq!(
        fr[K - 1].off,
        t.last.off,
        "the new frame sits where the torn one was"
    );
    assert!(seg[fr[K - 1].end()..].iter().all(|&b| b == 0));
}

// ---------------------------------------------------------------------------------
// Stale frames are never resurrected.

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn put(s: &Store, id: &str, marker: &str) -> Entity {
    s.transaction(|tx| tx.put(id, "note", props([("text", Value::from(marker))])))
        .unwrap()
}

fn zero_header(seg: &Path, off: usize) {
    let f = fs::OpenOptions::new().write(true).open(seg).unwrap();
    f.write_all_at(&[0u8; FRAME_HEADER], off as u64).unwrap();
}

/// A crash before the last frame's sync returned: its header is lost, and DURABLE
/// still says what it said before the frame (`durable_before`).
fn crash_before_sync(store: &Path, seg: &Path, off: usize, durable_before: &[u8]) {
    zero_header(seg, off);
    fs::write(store.join("DURABLE"), durable_before).unwrap();
    boot_anew(store);
}

/// Immediate durability: A committed, B torn in its header (its payload intact on
/// disk); recovery cuts B and zeroes everything after A; C (shorter) is written where
/// B was; another torn frame D and recovery later, B's bytes never come back.
#[test]
fn cut_frame_bytes_are_zeroed_so_nothing_stale_survives_past_the_end_of_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join(".got");
    let seg = store.join("wal").join(FIRST_SEGMENT);
    let s = Store::open(&store, opts()).unwrap();
    let a = put(&s, "A-0001", "first");
    let durable_a = fs::read(store.join("DURABLE")).unwrap();
    let b_marker = format!("STALE-B-{}", "b".repeat(300));
    put(&s, "B-0002", &b_marker);
    drop(s);
    let bytes = fs::read(&seg).unwrap();
    let fr = frames(&bytes);
    let b = fr[1];
    assert!(contains(&bytes, b_marker.as_bytes()));

    // The crash lost B's first sector: its header reads as zeros, its payload is there.
    crash_before_sync(&store, &seg, b.off, &durable_a);
    let s = reopen(&store);
    assert_eq!(contents(&s).into_keys().collect::<Vec<_>>(), vec!["A-0001"]);
    drop(s);
    let bytes = fs::read(&seg).unwrap();
    assert!(
        bytes[b.off..].iter().all(|&x| x == 0),
        "recovery must zero the segment past the last valid frame"
    );
    assert!(
        !contains(&bytes, b"STALE-B-"),
        "B's bytes survive in the segment"
    );
    let q = quarantine_files(&store);
    assert_eq!(q.len(), 1, "{q:?}");
    let kept = fs::read(store.join("quarantine").join(&q[0])).unwrap();
    assert!(
        contains(&kept, b_marker.as_bytes()),
        "B's bytes are kept in quarantine"
    );

    // C, shorter than B, lands where B was, with B's LSN.
    let s = reopen(&store);
    let c = put(&s, "C-0002", "short");
    assert_eq!(s.history("C-0002").unwrap()[0].lsn, b.first_lsn);
    drop(s);
    let bytes = fs::read(&seg).unwrap();
    let fr = frames(&bytes);
    assert_eq!(fr.len(), 2);
    assert_eq!(fr[1].off, b.off);
    assert!(fr[1].stored_len < b.stored_len);
    assert!(bytes[fr[1].end()..].iter().all(|&x| x == 0));

    // Another crash tears the next frame D; recovery again; B stays gone.
    let durable_c = fs::read(store.join("DURABLE")).unwrap();
    let s = reopen(&store);
    put(&s, "D-0003", &format!("STALE-D-{}", "d".repeat(100)));
    drop(s);
    let d = frames(&fs::read(&seg).unwrap())[2];
    crash_before_sync(&store, &seg, d.off, &durable_c);
    let s = reopen(&store);
    let got = contents(&s);
    assert_eq!(got.into_values().collect::<Vec<_>>(), vec![a, c]);
    assert!(s.get("B-0002").unwrap().is_none());
    assert!(s.history("B-0002").unwrap().is_empty());
    drop(s);
    let bytes = fs::read(&seg).unwrap();
    assert!(!contains(&bytes, b"STALE-B-") && !contains(&bytes, b"STALE-D-"));
    assert!(bytes[d.off..].iter().all(|&x| x == 0));
    let rep = verify(Arc::new(RealVfs), &store).unwrap();
    assert!(rep.healthy() && rep.notes.is_empty(), "{rep:?}");
}

/// The case the zeroing exists for. With `Durability::None` two unsynced frames B1
/// (LSN n) and B2 (LSN n+1) sit at the tail; the crash loses B1's first sector but
/// B2 survives intact. Recovery cuts both. If B2's bytes stayed on disk, a new frame
/// C of B1's exact length written at B1's offset would put B2 at the expected offset
/// with the expected LSN and a valid checksum: it would be read back as committed.
/// Recovery zeroes them, so B2 never reappears, now or after a later torn tail.
#[test]
fn an_intact_stale_frame_at_the_expected_offset_and_lsn_is_never_resurrected() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join(".got");
    let seg = store.join("wal").join(FIRST_SEGMENT);
    let s = Store::open(&store, opts()).unwrap();
    put(&s, "A-0001", "acknowledged one");
    put(&s, "A-0002", "acknowledged two");
    drop(s);

    let s = Store::open(
        &store,
        Options {
            durability: Durability::None,
            ..opts()
        },
    )
    .unwrap();
    put(&s, "B-0001", "unsynced batch one");
    put(&s, "B-0002", "STALE-B2-unsynced batch two");
    drop(s);
    let before = fs::read(&seg).unwrap();
    let fr = frames(&before);
    assert_eq!(fr.len(), 4, "{fr:?}");
    let (b1, b2) = (fr[2], fr[3]);
    assert_eq!((b1.first_lsn, b2.first_lsn), (3, 4));
    assert_eq!(b2.off, b1.end());
    assert!(
        b2.durable_lsn < b1.first_lsn,
        "B2 must not prove B1 durable (it was not synced): {b2:?}"
    );
    let b2_bytes = before[b2.off..b2.end()].to_vec();

    // Power loss: B1's first sector never reached the disk; B2 did.
    zero_header(&seg, b1.off);
    boot_anew(&store);
    let s = reopen(&store);
    assert_eq!(
        contents(&s).into_keys().collect::<Vec<_>>(),
        vec!["A-0001", "A-0002"]
    );
    drop(s);
    let after = fs::read(&seg).unwrap();
    assert!(
        after[b1.off..].iter().all(|&x| x == 0),
        "recovery must zero the unsynced batch's frames, B2 included"
    );
    let q = quarantine_files(&store);
    assert_eq!(q.len(), 1, "{q:?}");
    let kept = fs::read(store.join("quarantine").join(&q[0])).unwrap();
    assert!(
        contains(&kept, trim_trailing_zeros(&b2_bytes)),
        "B2 is kept in quarantine, whole"
    );

    // C: B1's exact length, at B1's offset, with B1's LSN. B2 would now sit at the
    // expected offset with the expected LSN.
    let s = reopen(&store);
    put(&s, "C-0001", "new batch, same size");
    drop(s);
    let now = fs::read(&seg).unwrap();
    let fr = frames(&now);
    assert_eq!(fr.len(), 3, "{fr:?}");
    let c = fr[2];
    assert_eq!((c.off, c.first_lsn), (b1.off, b1.first_lsn));
    assert_eq!(
        c.stored_len, b1.stored_len,
        "test construction: C must be exactly as long as B1"
    );
    assert_eq!(
        u64_at(&b2_bytes, 16),
        c.first_lsn + 1,
        "B2's LSN is the next one"
    );
    assert!(now[c.end()..].iter().all(|&x| x == 0));

    let check = |when: &str| {
        let s = reopen(&store);
        let ids: Vec<String> = contents(&s).into_keys().collect();
        assert_eq!(ids, vec!["A-0001", "A-0002", "C-0001"], "{when}");
        assert!(s.get("B-0002").unwrap().is_none(), "{when}: B2 resurrected");
        assert_eq!(s.applied_lsn().unwrap(), 3, "{when}");
    };
    check("after C");

    // A later crash tears D (LSN 4, where B2 was); recovery again: still no B2.
    let durable_c = fs::read(store.join("DURABLE")).unwrap();
    let s = reopen(&store);
    put(&s, "D-0001", "torn later");
    drop(s);
    let d = frames(&fs::read(&seg).unwrap())[3];
    assert_eq!(d.off, b2.off);
    crash_before_sync(&store, &seg, d.off, &durable_c);
    check("after D was torn");
    let bytes = fs::read(&seg).unwrap();
    assert!(!contains(&bytes, b"STALE-B2-"));
    assert!(bytes[c.end()..].iter().all(|&x| x == 0));
}

/// The zeroing is synced before anything else happens: a power loss right after
/// recovery (SimVfs, only synced bytes survive) still finds zeros past the log's end.
#[test]
fn zeroing_after_a_cut_is_durable_before_the_next_append() {
    let vfs = SimVfs::new();
    let dvfs: Arc<dyn Vfs> = vfs.clone();
    let dir = Path::new("/sim/.got");
    let seg = dir.join("wal").join(FIRST_SEGMENT);
    let open = |d: Durability| {
        Store::open_with_vfs(
            dvfs.clone(),
            dir,
            Options {
                durability: d,
                ..opts()
            },
        )
        .unwrap()
    };
    let s = open(Durability::Immediate);
    put(&s, "A-0001", "acknowledged");
    drop(s);
    let s = open(Durability::None);
    put(&s, "B-0001", "unsynced one");
    put(&s, "B-0002", "STALE-B2-unsynced two");
    drop(s);
    // A process crash keeps the page cache: both frames reach the disk...
    vfs.crash_keep_all();
    let fr = frames(&vfs.read_durable(&seg).unwrap());
    assert_eq!(fr.len(), 3, "{fr:?}");
    let b1 = fr[1];
    // ...but B1's header is lost (bit rot or a torn sector).
    vfs.corrupt(&seg, b1.off as u64, &[0u8; FRAME_HEADER]);

    let s = open(Durability::Immediate);
    assert_eq!(contents(&s).len(), 1);
    drop(s);
    // Power loss right after recovery: only synced bytes survive.
    vfs.crash_drop_all();
    let durable = vfs.read_durable(&seg).unwrap();
    assert!(
        durable[b1.off..].iter().all(|&x| x == 0),
        "the zeroing of the cut tail was not synced"
    );
    assert!(!contains(&durable, b"STALE-B2-"));
    let s = open(Durability::Immediate);
    put(&s, "C-0001", "new one, same len");
    drop(s);
    vfs.crash_drop_all();
    let s = open(Durability::Immediate);
    let ids: Vec<String> = contents(&s).into_keys().collect();
    assert_eq!(ids, vec!["A-0001", "C-0001"]);
}
