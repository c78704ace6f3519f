//! The ready queue equals a brute-force computation after every change.

use crate::common;

use got::wal::{SimVfs, Vfs};
use got::{Options, Props, Store};
use std::collections::BTreeMap;
use std::sync::Arc;

const PRIORITIES: [&str; 5] = ["critical", "high", "medium", "low", "someday"];
const STATUSES: [&str; 4] = ["pending", "in_progress", "blocked", "completed"];

#[test]
fn the_ready_queue_equals_brute_force_after_every_step() {
    let seed = common::seed::seed("the_ready_queue_equals_brute_force_after_every_step");
    // xorshift64 (never from 0).
    let mut x = seed | 1;
    let mut next = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let vfs = SimVfs::new();
    // The store's clock moves one millisecond a step, so creation times never tie
    // and the queue's order is exact.
    let clock = got::versioned_store::ManualClock::new(1_800_000_000_000);
    let s = Store::open_with_vfs(
        vfs.clone() as Arc<dyn Vfs>,
        "/r/.got",
        Options {
            create_if_missing: true,
            checkpoint_wal_bytes: 8192,
            clock: Some(clock.clone()),
            ..Options::default()
        },
    )
    .unwrap();
    const N: u64 = 24;
    // The model: id -> (status, priority, assignee, created order) and deps.
    let mut tasks: BTreeMap<String, (String, String, Option<String>, u64)> = BTreeMap::new();
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for step in 0..300u64 {
        clock.advance(1);
        let id = format!("T-{:02}", next(N));
        if !tasks.contains_key(&id) || next(3) == 0 {
            let status = STATUSES[next(4) as usize].to_string();
            let prio = PRIORITIES[next(5) as usize].to_string();
            let assignee = (next(4) == 0).then(|| "agent-1".to_string());
            let mut p = Props::new();
            p.insert("status".into(), status.as_str().into());
            p.insert("priority".into(), prio.as_str().into());
            if let Some(a) = &assignee {
                p.insert("assignee".into(), a.as_str().into());
            }
            let created = tasks.get(&id).map_or(step, |t| t.3);
            s.transaction(|tx| tx.put(&id, "task", p.clone())).unwrap();
            tasks.insert(id.clone(), (status, prio, assignee, created));
        } else {
            let to = format!("T-{:02}", next(N));
            if tasks.contains_key(&to) && to != id {
                s.transaction(|tx| tx.add_edge(&id, "depends_on", &to, Default::default()))
                    .unwrap();
                let d = deps.entry(id.clone()).or_default();
                if !d.contains(&to) {
                    d.push(to);
                }
            }
        }
        // Brute force.
        let rank = |p: &str| PRIORITIES.iter().position(|q| *q == p).unwrap().min(4);
        let mut want: Vec<(usize, u64, String)> = tasks
            .iter()
            .filter(|(id, (status, _, assignee, _))| {
                status == "pending"
                    && assignee.is_none()
                    && deps
                        .get(*id)
                        .into_iter()
                        .flatten()
                        .all(|d| tasks[d].0 == "completed")
            })
            .map(|(id, (_, prio, _, created))| (rank(prio), *created, id.clone()))
            .collect();
        want.sort();
        let want: Vec<String> = want.into_iter().map(|w| w.2).collect();
        let got: Vec<String> = got::ready::ready(&mut s.begin().unwrap(), None)
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(
            sorted(&got),
            sorted(&want),
            "seed {seed} step {step}: the ready set differs"
        );
        assert_eq!(
            got, want,
            "seed {seed} step {step}: the order differs (priority, then creation, then id)"
        );
        // The maintained index and the computation from scratch agree exactly.
        let mut tx = s.begin().unwrap();
        let scanned: Vec<String> = got::ready::ready_by_scan(&mut tx, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(got, scanned, "seed {seed} step {step}: ready index vs scan");
        if step % 50 == 49 {
            s.checkpoint().unwrap();
            let rep =
                got::verify(vfs.clone() as Arc<dyn Vfs>, std::path::Path::new("/r/.got")).unwrap();
            assert!(rep.healthy(), "seed {seed} step {step}: {:?}", rep.findings);
        }
    }
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}
