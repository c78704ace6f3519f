//! Group commit: committers in one process queue; the first to find no leader
//! becomes the leader, takes the whole queue (up to [`MAX_BATCH`]) and runs it as one
//! batch (one lock acquisition, one frame, one sync), then hands each member its
//! result. Followers wait on a condition variable, not by polling.

use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;

/// Upper bound on transactions in one batch (one frame).
pub const MAX_BATCH: usize = 1024;

pub struct GroupCommit<T, R> {
    state: Mutex<Queue<T, R>>,
    done: Condvar,
}

struct Queue<T, R> {
    pending: Vec<(u64, T)>,
    results: HashMap<u64, R>,
    leader_active: bool,
    next_ticket: u64,
}

impl<T, R> Default for GroupCommit<T, R> {
    fn default() -> Self {
        GroupCommit {
            state: Mutex::new(Queue {
                pending: Vec::new(),
                results: HashMap::new(),
                leader_active: false,
                next_ticket: 0,
            }),
            done: Condvar::new(),
        }
    }
}

impl<T, R> std::fmt::Debug for GroupCommit<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupCommit")
    }
}

impl<T, R> GroupCommit<T, R> {
    /// Submits `item` and returns its result. `run` must return exactly one result
    /// per item, in order; it is called by whichever submitter leads the batch.
    pub fn submit(&self, item: T, run: impl Fn(Vec<T>) -> Vec<R>) -> R {
        let mut q = self.state.lock();
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.pending.push((ticket, item));
        loop {
            if let Some(r) = q.results.remove(&ticket) {
                return r;
            }
            if q.leader_active {
                self.done.wait(&mut q);
                continue;
            }
            q.leader_active = true;
            let take = q.pending.len().min(MAX_BATCH);
            let batch: Vec<(u64, T)> = q.pending.drain(..take).collect();
            drop(q);
            let tickets: Vec<u64> = batch.iter().map(|(t, _)| *t).collect();
            let items = batch.into_iter().map(|(_, i)| i).collect();
            // If `run` panics, hand leadership back so followers are not stranded.
            let reset = ResetLeader(self);
            let results = run(items);
            std::mem::forget(reset);
            assert_eq!(results.len(), tickets.len(), "one result per item");
            q = self.state.lock();
            q.leader_active = false;
            for (t, r) in tickets.into_iter().zip(results) {
                q.results.insert(t, r);
            }
            self.done.notify_all();
        }
    }
}

struct ResetLeader<'a, T, R>(&'a GroupCommit<T, R>);

impl<T, R> Drop for ResetLeader<'_, T, R> {
    fn drop(&mut self) {
        let mut q = self.0.state.lock();
        q.leader_active = false;
        self.0.done.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn every_submitter_gets_its_own_result_and_batches_form() {
        let gc = Arc::new(GroupCommit::<u64, u64>::default());
        let batches = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let gc = gc.clone();
                let batches = batches.clone();
                std::thread::spawn(move || {
                    for i in 0..200u64 {
                        let v = t * 1000 + i;
                        let r = gc.submit(v, |items| {
                            batches.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_micros(50));
                            items.into_iter().map(|x| x * 2).collect()
                        });
                        assert_eq!(r, v * 2);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(batches.load(Ordering::SeqCst) <= 1600);
    }
}
