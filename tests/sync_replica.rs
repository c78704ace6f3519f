//! A store as a replica: exporting records clocks in the store (the same bytes
//! each time, changes only where the data changed), importing merges field by
//! field (an older file changes nothing), and two stores that exchange their
//! files converge — claims to one claimant, deletions winning, notes kept.

use crate::common;

use got::sync::exchange::{export, import};
use got::sync::Doc;
use got::tasks::{self, NewTask, TaskUpdate};
use got::versioned_store::ManualClock;
use got::wal::{SimVfs, Vfs};
use got::{Options, Store};
use std::sync::Arc;

struct Clone {
    store: Store,
    clock: Arc<ManualClock>,
}

fn clone_at(vfs: &Arc<SimVfs>, dir: &str, now: i64) -> Clone {
    let clock = ManualClock::new(now);
    let store = Store::open_with_vfs(
        vfs.clone() as Arc<dyn Vfs>,
        dir,
        Options {
            create_if_missing: true,
            clock: Some(clock.clone()),
            ..Options::default()
        },
    )
    .unwrap();
    Clone { store, clock }
}

fn new_task(c: &Clone, title: &str) -> String {
    let t = NewTask {
        title: title.into(),
        labels: vec!["ui".into()],
        ..NewTask::default()
    };
    tasks::create(&c.store, "agent-x", &t).unwrap().id
}

/// Both directions of a sync between two clones: each imports the other's
/// export, then exports again.
fn exchange(a: &Clone, b: &Clone) -> (Vec<u8>, Vec<u8>) {
    let da = export(&a.store).unwrap();
    import(&b.store, &da).unwrap();
    let db = export(&b.store).unwrap();
    import(&a.store, &db).unwrap();
    (
        export(&a.store).unwrap().to_bytes(),
        export(&b.store).unwrap().to_bytes(),
    )
}

#[test]
fn exporting_twice_gives_the_same_bytes_and_an_edit_changes_only_its_line() {
    let vfs = SimVfs::new();
    let a = clone_at(&vfs, "/a/.got", 1_000_000);
    let t1 = new_task(&a, "one");
    let t2 = new_task(&a, "two");
    tasks::add_dependency(&a.store, &t1, &t2).unwrap();
    let first = export(&a.store).unwrap().to_bytes();
    let lsn = a.store.applied_lsn().unwrap();
    a.clock.advance(5_000);
    let again = export(&a.store).unwrap().to_bytes();
    assert_eq!(first, again, "a second export of the same state");
    assert_eq!(
        a.store.applied_lsn().unwrap(),
        lsn,
        "and it committed nothing"
    );
    tasks::update(
        &a.store,
        &t2,
        &TaskUpdate {
            title: Some("two, renamed".into()),
            ..TaskUpdate::default()
        },
    )
    .unwrap();
    let after = export(&a.store).unwrap().to_bytes();
    let (before, after) = (
        String::from_utf8(first).unwrap(),
        String::from_utf8(after).unwrap(),
    );
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(x, y)| x != y)
        .collect();
    assert_eq!(changed.len(), 1, "{before}\n---\n{after}");
    assert!(changed[0].1.contains(&t2) && changed[0].1.contains("two, renamed"));
    assert!(
        !after.contains("version"),
        "no store-local version in the file"
    );
}

#[test]
fn two_clones_converge_and_a_stale_replica_never_reopens_a_completed_task() {
    let vfs = SimVfs::new();
    let a = clone_at(&vfs, "/a/.got", 1_000_000);
    let b = clone_at(&vfs, "/b/.got", 1_000_000);
    let t = new_task(&a, "shared");
    let (x, y) = exchange(&a, &b);
    assert_eq!(x, y, "after one exchange");
    let bt = b.store.get(&t).unwrap().unwrap();
    let at = a.store.get(&t).unwrap().unwrap();
    assert_eq!(
        (bt.props.clone(), bt.created_at),
        (at.props.clone(), at.created_at)
    );
    // B completes; A, which has not touched the task, imports B and exports
    // again: the task stays completed, on both.
    b.clock.advance(10);
    tasks::claim(&b.store, &t, "agent-b", None).unwrap();
    tasks::start(&b.store, &t, "agent-b").unwrap();
    tasks::complete(&b.store, &t, "agent-b", None).unwrap();
    // A's wall clock is far ahead of B's: clocks, not wall time alone, decide.
    a.clock.advance(1_000_000);
    let stale = export(&a.store).unwrap();
    import(&b.store, &stale).unwrap();
    assert_eq!(
        tasks::status(&b.store.get(&t).unwrap().unwrap()),
        "completed"
    );
    let (x, y) = exchange(&a, &b);
    assert_eq!(x, y);
    assert_eq!(
        tasks::status(&a.store.get(&t).unwrap().unwrap()),
        "completed"
    );
    // Importing an old file again changes nothing and commits nothing.
    let lsn = a.store.applied_lsn().unwrap();
    let (applied, _) = import(&a.store, &stale).unwrap();
    assert_eq!(applied, Default::default());
    assert_eq!(a.store.applied_lsn().unwrap(), lsn);
}

#[test]
fn concurrent_edits_merge_per_field_labels_as_sets_and_notes_are_kept() {
    let vfs = SimVfs::new();
    let a = clone_at(&vfs, "/a/.got", 1_000_000);
    let b = clone_at(&vfs, "/b/.got", 1_000_000);
    let t = new_task(&a, "shared");
    exchange(&a, &b);
    // Apart: A renames and adds a label; B changes the priority, removes the
    // label A had and adds a note; both add a note.
    a.clock.advance(10);
    b.clock.advance(20);
    tasks::update(
        &a.store,
        &t,
        &TaskUpdate {
            title: Some("renamed on a".into()),
            add_labels: vec!["db".into()],
            ..TaskUpdate::default()
        },
    )
    .unwrap();
    tasks::update(
        &b.store,
        &t,
        &TaskUpdate {
            priority: Some("critical".into()),
            remove_labels: vec!["ui".into()],
            ..TaskUpdate::default()
        },
    )
    .unwrap();
    tasks::note(&a.store, &t, "agent-a", "from a").unwrap();
    tasks::note(&b.store, &t, "agent-b", "from b").unwrap();
    let (x, y) = exchange(&a, &b);
    assert_eq!(x, y);
    for c in [&a, &b] {
        let e = c.store.get(&t).unwrap().unwrap();
        assert_eq!(tasks::prop_str(&e, "title"), Some("renamed on a"));
        assert_eq!(tasks::prop_str(&e, "priority"), Some("critical"));
        let labels = format!("{:?}", e.props.get("labels"));
        assert!(labels.contains("db") && !labels.contains("ui"), "{labels}");
        let notes = format!("{:?}", e.props.get("notes"));
        assert!(
            notes.contains("from a") && notes.contains("from b"),
            "{notes}"
        );
    }
    // The same field on both: the later clock wins, on both clones.
    a.clock.advance(100);
    b.clock.advance(200);
    let set_title = |c: &Clone, t_: &str| {
        tasks::update(
            &c.store,
            &t,
            &TaskUpdate {
                title: Some(t_.into()),
                ..TaskUpdate::default()
            },
        )
        .unwrap();
        export(&c.store).unwrap();
    };
    set_title(&a, "a's title");
    set_title(&b, "b's title");
    let (x, y) = exchange(&a, &b);
    assert_eq!(x, y);
    let e = a.store.get(&t).unwrap().unwrap();
    assert_eq!(tasks::prop_str(&e, "title"), Some("b's title"));
}

#[test]
fn a_claim_race_between_clones_ends_with_one_claimant_and_the_loser_told() {
    let vfs = SimVfs::new();
    let a = clone_at(&vfs, "/a/.got", 1_000_000);
    let b = clone_at(&vfs, "/b/.got", 1_000_000);
    let t = new_task(&a, "contended");
    exchange(&a, &b);
    // B claims first (earlier clock), A later; each exports before they meet.
    b.clock.advance(5);
    tasks::claim(&b.store, &t, "agent-b", None).unwrap();
    let db = export(&b.store).unwrap();
    a.clock.advance(50);
    tasks::claim(&a.store, &t, "agent-a", None).unwrap();
    let da = export(&a.store).unwrap();
    let (lost_a, _) = import(&a.store, &db).unwrap();
    let (lost_b, _) = import(&b.store, &da).unwrap();
    assert_eq!(
        lost_a.lost_claims,
        [(t.clone(), "agent-a".into(), Some("agent-b".into()))]
    );
    assert!(lost_b.lost_claims.is_empty());
    let (x, y) = exchange(&a, &b);
    assert_eq!(x, y);
    for c in [&a, &b] {
        let e = c.store.get(&t).unwrap().unwrap();
        assert_eq!(tasks::assignee(&e), Some("agent-b"));
        let notes = format!("{:?}", e.props.get("notes"));
        assert!(
            notes.contains("claim of agent-a lost: another clone claimed the task earlier"),
            "{notes}"
        );
    }
}

#[test]
fn a_deletion_wins_over_a_concurrent_edit_and_takes_its_edges() {
    let vfs = SimVfs::new();
    let a = clone_at(&vfs, "/a/.got", 1_000_000);
    let b = clone_at(&vfs, "/b/.got", 1_000_000);
    let t1 = new_task(&a, "doomed");
    let t2 = new_task(&a, "kept");
    tasks::add_dependency(&a.store, &t2, &t1).unwrap();
    exchange(&a, &b);
    a.clock.advance(10);
    b.clock.advance(20);
    tasks::delete(&a.store, &t1, true).unwrap();
    tasks::note(&b.store, &t1, "agent-b", "edited meanwhile").unwrap();
    let (x, y) = exchange(&a, &b);
    assert_eq!(x, y);
    for c in [&a, &b] {
        assert!(c.store.get(&t1).unwrap().is_none());
        assert!(c.store.get(&t2).unwrap().is_some());
    }
    let doc = Doc::parse(&x).unwrap();
    assert!(
        String::from_utf8(x).unwrap().contains("\"deleted\""),
        "{doc:?}"
    );
    let mut tx = a.store.begin().unwrap();
    let report = got::validate::validate(&mut tx, 0).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn a_store_larger_than_one_frame_exports_and_imports_in_chunks() {
    let vfs = SimVfs::new();
    // Small segments: one transaction of every record would not fit a frame.
    let small = |dir: &str| {
        Store::open_with_vfs(
            vfs.clone() as Arc<dyn Vfs>,
            dir,
            Options {
                create_if_missing: true,
                segment_size_bytes: 128 << 10,
                ..Options::default()
            },
        )
        .unwrap()
    };
    let (a, b) = (small("/a/.got"), small("/b/.got"));
    let n = 3 * got::sync::exchange::CHUNK_RECORDS / 2;
    let mut ids: Vec<String> = Vec::new();
    for chunk in 0..n.div_ceil(100) {
        let made = a
            .transaction(|tx| {
                let mut made = Vec::new();
                for i in chunk * 100..((chunk + 1) * 100).min(n) {
                    let mut p = got::Props::new();
                    let title = format!("task {i} {}", "x".repeat(200));
                    p.insert("title".into(), got::Value::String(title));
                    made.push(tx.create_with_prefix("T-", "task", p)?.id);
                }
                Ok(made)
            })
            .unwrap();
        ids.extend(made);
    }
    for w in ids.chunks(100) {
        a.transaction(|tx| {
            for i in 1..w.len() {
                tx.add_edge(&w[i], "depends_on", &w[i - 1], got::Props::new())?;
            }
            Ok(())
        })
        .unwrap();
    }
    let edges = n - n.div_ceil(100);
    let da = export(&a).unwrap();
    assert_eq!(da.entities.len(), n);
    assert_eq!(da.edges.len(), edges);
    let (applied, db) = import(&b, &da).unwrap();
    assert_eq!(applied.created.len(), n);
    assert_eq!(applied.edges_added, edges);
    assert_eq!(db.to_bytes(), da.to_bytes());
    assert_eq!(export(&b).unwrap().to_bytes(), da.to_bytes());
    assert_eq!(b.list(Some("task"), None).unwrap().len(), n);
}

#[test]
fn an_entity_made_again_under_a_deleted_id_is_deleted_by_the_next_merge() {
    let vfs = SimVfs::new();
    let a = clone_at(&vfs, "/a/.got", 1_000_000);
    let t = new_task(&a, "deleted, then made again");
    export(&a.store).unwrap();
    tasks::delete(&a.store, &t, true).unwrap();
    let with_tombstone = export(&a.store).unwrap();
    a.store
        .transaction(|tx| tx.put(&t, "task", got::Props::new()).map(|_| ()))
        .unwrap();
    let d = export(&a.store).unwrap();
    assert_eq!(
        d.to_bytes(),
        with_tombstone.to_bytes(),
        "the tombstone stands"
    );
    assert!(a.store.get(&t).unwrap().is_none(), "and the store agrees");
}

/// The store as a whole read gives it (every base line read and compared),
/// against what sync reads (lines of entities whose version has not moved since
/// they were recorded left unread), in one transaction.
fn whole_and_lazy(store: &Store) -> (Vec<u8>, Vec<u8>) {
    use got::sync::exchange::Merged;
    use got::sync::replica::{snapshot, Reads};
    let mut tx = store.begin().unwrap();
    let whole = snapshot(&mut tx, Reads::Whole(&|_, _| true)).unwrap();
    let lazy = snapshot(&mut tx, Reads::Whole(&|_, _| false)).unwrap();
    let lazy = Merged {
        doc: lazy.doc,
        unchanged: lazy.unchanged,
    };
    (whole.doc.to_bytes(), lazy.to_bytes())
}

#[test]
fn reading_only_changed_lines_gives_what_reading_every_line_gives() {
    let seed = common::seed::seed("lazy sync reads");
    let histories = if std::env::var_os("GOT_LONG_TESTS").is_some() {
        200
    } else {
        2
    };
    let mut unread = 0;
    for i in 0..histories {
        unread += lazy_history(seed.wrapping_add(i));
    }
    // The comparison means something only if lines were left unread.
    assert!(unread > 0, "seed {seed}: no line was left unread");
}

/// A random history of two clones that sync one way now and then; at each sync
/// the export and the import, which leave unread the lines unchanged since
/// recorded, give what they give when every line is read. Returns how many
/// lines the imports left unread.
fn lazy_history(seed: u64) -> usize {
    use got::sync::exchange::{export_file, import_file};
    let mut rng = common::mutate::Rng::new(seed);
    let vfs = SimVfs::new();
    let clones = [
        clone_at(&vfs, "/a/.got", 1_000_000),
        clone_at(&vfs, "/b/.got", 1_000_000),
    ];
    let mut ids: Vec<String> = Vec::new();
    for c in &clones {
        ids.push(new_task(c, "first"));
        export_file(&c.store, 0).unwrap();
    }
    let mut unread = 0;
    for step in 0..300 {
        let ctx = format!("seed {seed}, step {step}");
        let c = &clones[rng.below(2)];
        c.clock.advance(1 + rng.below(1000) as i64);
        let id = rng.pick(&ids).clone();
        let label = ["ui", "db", "docs"][rng.below(3)].to_string();
        // Operations that find the task deleted, taken or done fail; the
        // history goes on.
        let _ = match rng.below(10) {
            0 => {
                ids.push(new_task(c, &format!("made at step {step}")));
                Ok(())
            }
            1 => tasks::update(
                &c.store,
                &id,
                &TaskUpdate {
                    title: Some(format!("renamed at step {step}")),
                    ..TaskUpdate::default()
                },
            )
            .map(drop),
            2 => tasks::update(
                &c.store,
                &id,
                &TaskUpdate {
                    add_labels: vec![label],
                    ..TaskUpdate::default()
                },
            )
            .map(drop),
            3 => tasks::update(
                &c.store,
                &id,
                &TaskUpdate {
                    remove_labels: vec![label],
                    ..TaskUpdate::default()
                },
            )
            .map(drop),
            4 => tasks::note(&c.store, &id, "agent-x", &format!("note {step}")).map(drop),
            5 => tasks::claim(&c.store, &id, ["agent-a", "agent-b"][rng.below(2)], None).map(drop),
            6 => tasks::complete(&c.store, &id, "agent-a", None).map(drop),
            7 if rng.one_in(3) => tasks::delete(&c.store, &id, true).map(drop),
            8 => {
                let on = rng.pick(&ids).clone();
                tasks::add_dependency(&c.store, &id, &on).map(drop)
            }
            _ => {
                // A sync, one way: the other clone's file merged in.
                let from = &clones[rng.below(2)];
                let file = export_file(&from.store, 0).unwrap().to_bytes();
                let (whole, lazy) = whole_and_lazy(&c.store);
                assert_eq!(lazy, whole, "{ctx}: the export reads");
                let mut want =
                    got::sync::merge(&Doc::parse(&whole).unwrap(), &Doc::parse(&file).unwrap());
                got::sync::replica::note_lost_claims(&mut want);
                let (_, merged) = import_file(&c.store, &file, 0).unwrap();
                unread += merged.unchanged.len();
                assert_eq!(
                    String::from_utf8(merged.to_bytes()).unwrap(),
                    String::from_utf8(want.to_bytes()).unwrap(),
                    "{ctx}: the import's merge"
                );
                let (whole, lazy) = whole_and_lazy(&c.store);
                assert_eq!(lazy, whole, "{ctx}: after the import");
                assert_eq!(whole, merged.to_bytes(), "{ctx}: the store holds the merge");
                Ok(())
            }
        };
    }
    unread
}

#[test]
fn base_lines_recorded_without_versions_are_read_and_recorded_again_with_them() {
    use got::sync::replica::{snapshot, Reads};
    let vfs = SimVfs::new();
    let a = clone_at(&vfs, "/a/.got", 1_000_000);
    let ids: Vec<String> = (0..5).map(|i| new_task(&a, &format!("t{i}"))).collect();
    let file = export(&a.store).unwrap().to_bytes();
    // The base as a release before versions were recorded left it: bare lines.
    a.store
        .transaction(|tx| {
            for (name, v) in tx.meta_with_prefix("sync/e/")? {
                let text = String::from_utf8(v.to_vec()).unwrap();
                let (version, line) = text.split_once(' ').unwrap();
                assert!(version.parse::<u64>().is_ok(), "{text}");
                tx.put_meta(&name, line.as_bytes())?;
            }
            Ok(())
        })
        .unwrap();
    let unread = |s: &Store| {
        let mut tx = s.begin().unwrap();
        snapshot(&mut tx, Reads::Whole(&|_, _| false))
            .unwrap()
            .unchanged
            .len()
    };
    assert_eq!(unread(&a.store), 0, "a bare line is read");
    assert_eq!(export(&a.store).unwrap().to_bytes(), file, "the same file");
    assert_eq!(
        unread(&a.store),
        ids.len(),
        "then recorded with its version"
    );
    assert_eq!(export(&a.store).unwrap().to_bytes(), file);
}
