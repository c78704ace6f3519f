//! Checkpoints on a thread of their own ([`Options::background_checkpoints`]):
//! a commit that makes a checkpoint due wakes the thread and returns; commits go
//! on into a new delta while the thread derives, writes the run and compacts.
//! Back-pressure: once the tail passes [`BACKLOG_FACTOR`] times the checkpoint
//! bound (the thread fell behind), a committer checkpoints itself, waiting for
//! the thread's checkpoint to end first.

use super::*;
use parking_lot::Condvar;

/// How far past the checkpoint bound the tail may grow before committers wait.
pub(crate) const BACKLOG_FACTOR: u64 = 4;

#[derive(Default)]
pub(crate) struct Checkpointer {
    st: Mutex<BgState>,
    cv: Condvar,
}

#[derive(Default)]
struct BgState {
    started: bool,
    requested: bool,
    stop: bool,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer").finish_non_exhaustive()
    }
}

impl Checkpointer {
    /// Asks for a checkpoint; starts the thread on first use. False if no thread
    /// could be started (the caller checkpoints itself).
    pub(crate) fn request(self: &Arc<Self>, inner: &Arc<Inner>) -> bool {
        let mut s = self.st.lock();
        if s.stop {
            return false;
        }
        if !s.started {
            let me = self.clone();
            let weak = Arc::downgrade(inner);
            let spawned = std::thread::Builder::new()
                .name("got-checkpoint".into())
                .spawn(move || me.run(weak));
            if spawned.is_err() {
                return false;
            }
            s.started = true;
        }
        s.requested = true;
        self.cv.notify_one();
        true
    }

    /// Ends the thread after the checkpoint it is writing, if any.
    pub(crate) fn stop(&self) {
        self.st.lock().stop = true;
        self.cv.notify_one();
    }

    fn run(&self, store: Weak<Inner>) {
        loop {
            {
                let mut s = self.st.lock();
                while !s.requested && !s.stop {
                    self.cv.wait(&mut s);
                }
                if s.stop {
                    return;
                }
                s.requested = false;
            }
            // Held only while checkpointing: a store no handle holds any more
            // ends the thread (its drop stops it).
            let Some(inner) = store.upgrade() else {
                return;
            };
            // Requests made while the last checkpoint ran may find nothing due.
            if !inner.checkpoint_due(1) {
                continue;
            }
            let res = inner.checkpoint();
            *inner.checkpoint_error.lock() = res.err().map(|e| e.to_string());
        }
    }
}
