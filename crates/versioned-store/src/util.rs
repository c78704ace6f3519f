//! Small helpers every part of the store uses; they import nothing of the crate.

pub fn random_u64() -> u64 {
    wal::segment::random_u64()
}

pub(crate) fn now_ms() -> i64 {
    wal::log::now_ms() as i64
}
