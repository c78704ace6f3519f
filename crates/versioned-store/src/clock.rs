//! Wall-clock time as the store and the layers above it read it: the system clock
//! by default, or a clock that a test (or the CLI's `GOT_NOW_MS`) sets and moves,
//! so that leases, expiry and timestamps can be tested without sleeping.

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A source of wall-clock time in Unix milliseconds (UTC).
pub trait Clock: Send + Sync + Debug {
    fn now_ms(&self) -> i64;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        wal::log::now_ms() as i64
    }
}

/// A clock that reads what it was last set to, and moves only when told.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(now_ms: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicI64::new(now_ms)))
    }
    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }
    /// Moves the clock `ms` milliseconds forward (backward if negative).
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The time `clock` reads, or the system's without one.
pub fn now_ms(clock: Option<&Arc<dyn Clock>>) -> i64 {
    match clock {
        Some(c) => c.now_ms(),
        None => SystemClock.now_ms(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        let dynamic: Arc<dyn Clock> = c.clone();
        assert_eq!(now_ms(Some(&dynamic)), 1_000);
        c.advance(500);
        assert_eq!(dynamic.now_ms(), 1_500);
        c.set(42);
        assert_eq!(dynamic.now_ms(), 42);
        assert!(now_ms(None) > 1_600_000_000_000, "the system clock");
    }
}
