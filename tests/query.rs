//! Queries: filters, sorts and paging agree with a brute-force reading of the data,
//! and pages joined are the whole answer.

use crate::common;

use got::query::{words, Filter, Query, SortKey};
use got::wal::{SimVfs, Vfs};
use got::{Options, Props, Store, Value};
use std::sync::Arc;

const STATUSES: [&str; 3] = ["pending", "blocked", "completed"];
const LABELS: [&str; 4] = ["wal", "cli", "bug", "docs"];
const WORDS: [&str; 5] = ["torn", "tail", "Fix", "lock", "ÉTÉ"];

#[test]
fn filters_sorts_and_pages_agree_with_brute_force() {
    let vfs = SimVfs::new();
    let store = Store::open_with_vfs(
        vfs as Arc<dyn Vfs>,
        "/q/.got",
        Options {
            create_if_missing: true,
            ..Options::default()
        },
    )
    .unwrap();
    let seed = common::seed::seed("filters_sorts_and_pages_agree_with_brute_force");
    // xorshift64 (never from 0).
    let mut x = seed | 1;
    let mut next = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut all = Vec::new();
    for i in 0..120 {
        let mut p = Props::new();
        p.insert("status".into(), STATUSES[next(3) as usize].into());
        if next(4) != 0 {
            p.insert("priority".into(), Value::Int(next(4) as i64));
        }
        let labels: Vec<Value> = LABELS
            .iter()
            .filter(|_| next(3) == 0)
            .map(|l| Value::from(*l))
            .collect();
        p.insert("labels".into(), Value::List(labels));
        let title: Vec<&str> = (0..3).map(|_| WORDS[next(5) as usize]).collect();
        p.insert("title".into(), title.join(" ").into());
        let kind = if i % 5 == 0 { "epic" } else { "task" };
        let e = store
            .transaction(|tx| tx.put(&format!("t{i:03}"), kind, p.clone()))
            .unwrap();
        all.push(e);
    }
    let queries = vec![
        Query {
            kind: Some("task".into()),
            ..Query::default()
        },
        Query {
            kind: Some("task".into()),
            filters: vec![
                Filter::Eq("status".into(), "pending".into()),
                Filter::Label("wal".into()),
            ],
            sort: SortKey::Prop("priority".into()),
            descending: true,
            ..Query::default()
        },
        Query {
            filters: vec![
                Filter::In("status".into(), vec!["pending".into(), "blocked".into()]),
                Filter::Text("TORN été".into()),
            ],
            sort: SortKey::Version,
            ..Query::default()
        },
        Query {
            filters: vec![Filter::Eq("priority".into(), Value::Float(2.0))],
            ..Query::default()
        },
    ];
    let mut tx = store.begin().unwrap();
    for q in queries {
        let mut want: Vec<_> = all
            .iter()
            .filter(|e| q.kind.as_deref().is_none_or(|k| k == e.kind))
            .filter(|e| {
                q.filters.iter().all(|f| match f {
                    Filter::Eq(p, v) => match (e.props.get(p), v) {
                        (Some(Value::Int(i)), Value::Float(f)) => *i as f64 == *f,
                        (got, v) => got == Some(v),
                    },
                    Filter::In(p, vs) => vs.iter().any(|v| e.props.get(p) == Some(v)),
                    Filter::Label(l) => matches!(e.props.get("labels"),
                        Some(Value::List(ls)) if ls.contains(&Value::from(l.as_str()))),
                    Filter::Text(t) => {
                        let have = words(e.props["title"].as_str().unwrap());
                        words(t).iter().all(|w| have.contains(w))
                    }
                })
            })
            .cloned()
            .collect();
        want.sort_by(|a, b| {
            let o = match &q.sort {
                SortKey::Prop(p) => {
                    let k =
                        |e: &got::Entity| e.props.get(p).and_then(|v| v.as_i64()).map_or(-1, |i| i);
                    k(a).cmp(&k(b))
                }
                SortKey::Version => a.version.cmp(&b.version),
                _ => std::cmp::Ordering::Equal,
            }
            .then_with(|| a.id.cmp(&b.id));
            if q.descending {
                o.reverse()
            } else {
                o
            }
        });
        let got_all = q.run(&mut tx).unwrap();
        assert!(
            !want.is_empty(),
            "seed {seed}: {q:?} matches nothing: a weak test"
        );
        assert_eq!(got_all, want, "seed {seed}: {q:?}");
        // Pages of 7, each starting after the last id of the one before, join up;
        // the same when the ids of the kind are declared to share a prefix (the
        // pages then walk the entities instead of the kind index).
        for id_prefix in [None, Some("t".to_string())] {
            let mut paged = Vec::new();
            let mut after = None;
            loop {
                let page = Query {
                    limit: Some(7),
                    after: after.clone(),
                    id_prefix: id_prefix.clone(),
                    ..q.clone()
                }
                .run(&mut tx)
                .unwrap();
                if page.is_empty() {
                    break;
                }
                after = Some(page.last().unwrap().id.clone());
                paged.extend(page);
            }
            assert_eq!(
                paged, want,
                "seed {seed}: paging {q:?} with id prefix {id_prefix:?}"
            );
        }
    }
}

/// A property a library user declares is indexed by (kind, property, value):
/// its entries are in the store, id-ordered queries on it walk them and agree with
/// a scan, verify checks them, and a process with the default set rebuilds the
/// indexes without them (and they verify healthy again).
#[test]
fn declared_properties_are_indexed_and_queried_through_the_index() {
    use got::index::IndexDeriver;
    use std::path::Path;
    let vfs = SimVfs::new();
    let dir = "/d/.got";
    let declared = Arc::new(IndexDeriver::with_declared(["component"]));
    let opts = |d: Option<Arc<IndexDeriver>>| Options {
        create_if_missing: true,
        deriver: d.map(|d| d as Arc<dyn got::versioned_store::Deriver>),
        ..Options::default()
    };
    let store = Store::open_with_vfs(
        vfs.clone() as Arc<dyn Vfs>,
        dir,
        opts(Some(declared.clone())),
    )
    .unwrap();
    let components = ["wal", "cli", "index"];
    store
        .transaction(|tx| {
            for i in 0..60 {
                let mut p = Props::new();
                p.insert("component".into(), components[i % 3].into());
                p.insert("status".into(), STATUSES[i % 2].into());
                tx.put(&format!("t{i:03}"), "task", p)?;
            }
            Ok(())
        })
        .unwrap();
    store.checkpoint().unwrap();
    let mut tx = store.begin().unwrap();
    let key = indexer_prefix("component", "cli");
    let indexed = tx.derived(&key).unwrap();
    assert_eq!(indexed.len(), 20, "one entry per task with component=cli");
    let q = Query {
        kind: Some("task".into()),
        filters: vec![
            Filter::Eq("component".into(), "cli".into()),
            Filter::Eq("status".into(), "pending".into()),
        ],
        limit: Some(7),
        ..Query::default()
    };
    let got: Vec<String> = q.run(&mut tx).unwrap().into_iter().map(|e| e.id).collect();
    let mut want: Vec<String> = tx
        .list(Some("task"), None)
        .unwrap()
        .into_iter()
        .filter(|e| q.filters.iter().all(|f| f.matches(e)))
        .map(|e| e.id)
        .collect();
    want.sort();
    want.truncate(7);
    assert_eq!(got, want);
    drop(tx);
    let rep = got::verify_indexes(vfs.clone() as Arc<dyn Vfs>, Path::new(dir), declared).unwrap();
    assert!(rep.healthy(), "{:?}", rep.findings);
    drop(store);

    // The default set: the component entries are dropped by the rebuild.
    let store = Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, dir, opts(None)).unwrap();
    assert!(store.begin().unwrap().derived(&key).unwrap().is_empty());
    store.checkpoint().unwrap();
    let rep = got::verify(vfs.clone() as Arc<dyn Vfs>, Path::new(dir)).unwrap();
    assert!(rep.healthy(), "{:?}", rep.findings);
}

fn indexer_prefix(prop: &str, value: &str) -> Vec<u8> {
    // 'x' 'p' str(kind) str(prop) val(value), as docs/format.md gives it.
    let mut k = vec![b'x', b'p'];
    for s in ["task", prop] {
        k.extend_from_slice(s.as_bytes());
        k.extend_from_slice(&[0, 1]);
    }
    k.push(5);
    k.extend_from_slice(value.as_bytes());
    k.extend_from_slice(&[0, 1]);
    k
}
