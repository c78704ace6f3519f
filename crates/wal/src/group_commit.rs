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
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// Without timing: the first batch's leader holds its batch (the frame being
    /// written and synced, in the store) until every other submitter is queued
    /// behind it, so the next leader must take them together. Every submitter gets
    /// its own result, every item runs exactly once, and there are fewer batches
    /// (frames) than items, one of them holding more than one.
    #[test]
    fn every_submitter_gets_its_own_result_and_batches_form() {
        const THREADS: u64 = 8;
        const EACH: u64 = 50;
        let gc = Arc::new(GroupCommit::<u64, u64>::default());
        let sizes = Arc::new(Mutex::new(Vec::<Vec<u64>>::new()));
        let first = Arc::new(AtomicBool::new(true));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (gc, sizes, first) = (gc.clone(), sizes.clone(), first.clone());
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        let v = t * 1000 + i;
                        let r = gc.submit(v, |items| {
                            if first.swap(false, Ordering::SeqCst) {
                                // Each thread has at most one item outstanding: wait
                                // (an event, not a time) until all the others are
                                // queued. The deadline only turns a hang into a
                                // clear failure.
                                let deadline = Instant::now() + Duration::from_secs(60);
                                while items.len() + gc.state.lock().pending.len() < THREADS as usize
                                {
                                    assert!(
                                        Instant::now() < deadline,
                                        "the other submitters never queued"
                                    );
                                    std::thread::yield_now();
                                }
                            }
                            sizes.lock().push(items.clone());
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
        let batches = sizes.lock().clone();
        let mut all: Vec<u64> = batches.iter().flatten().copied().collect();
        all.sort();
        let want: Vec<u64> = (0..THREADS)
            .flat_map(|t| (0..EACH).map(move |i| t * 1000 + i))
            .collect();
        assert_eq!(all, want, "every item runs exactly once");
        assert!(
            batches[0].len() + batches[1].len() >= THREADS as usize,
            "the second batch did not take everything queued behind the first: {:?}",
            &batches[..2]
        );
        assert!(
            (batches.len() as u64) < THREADS * EACH,
            "{} batches for {} items: none formed",
            batches.len(),
            THREADS * EACH
        );
        assert!(batches.iter().any(|b| b.len() > 1));
        // A thread's items run in the order it submitted them.
        for t in 0..THREADS {
            let mine: Vec<u64> = batches
                .iter()
                .flatten()
                .copied()
                .filter(|v| v / 1000 == t)
                .collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "thread {t}: {mine:?}");
        }
    }
}
