//! Small helpers every part of the store uses; they import nothing of the crate.

pub fn random_u64() -> u64 {
    wal::segment::random_u64()
}

pub(crate) fn now_ms() -> i64 {
    wal::log::now_ms() as i64
}

/// A merge source's next entry: a key and what goes with it, or an error.
pub(crate) type Head<T, E> = Option<Result<(Vec<u8>, T), E>>;

/// In a k-way merge of sources sorted by key, which head to take next: the
/// first that holds an error, else the one holding the smallest key (the first
/// of equal keys, so that the caller's source order breaks ties); `None` when
/// every source is done.
pub(crate) fn next_head<T, E>(heads: &[Head<T, E>]) -> Option<usize> {
    if let Some(i) = heads.iter().position(|h| matches!(h, Some(Err(_)))) {
        return Some(i);
    }
    let mut min: Option<(usize, &[u8])> = None;
    for (i, h) in heads.iter().enumerate() {
        if let Some(Ok((k, _))) = h {
            if min.is_none_or(|(_, mk)| k.as_slice() < mk) {
                min = Some((i, k));
            }
        }
    }
    min.map(|(i, _)| i)
}
