use std::io;
use std::path::PathBuf;

/// Errors of the write-ahead log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A damaged frame with valid data after it: acknowledged data may be behind it,
    /// so nothing is truncated. `got repair` explains and, if asked, cuts it.
    #[error("corruption in {file} at offset {offset}: {detail}; the store refuses to open read-write; run `got repair` to inspect it")]
    Corruption {
        file: PathBuf,
        offset: u64,
        detail: String,
    },
    /// The writer lock was not acquired within the timeout.
    #[error("store is locked by another writer ({holder}); waited {waited_ms} ms (set GOT_LOCK_TIMEOUT to wait longer)")]
    Locked { holder: String, waited_ms: u64 },
    /// A sync failed: the outcome of the writes it covered is unknown, and this handle
    /// refuses further writes until the store is reopened.
    #[error("outcome unknown: sync of {path} failed ({source}); this handle is poisoned, reopen the store")]
    SyncFailed {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("this handle is poisoned by an earlier failed sync; reopen the store")]
    Poisoned,
    #[error("frame of {size} bytes exceeds the maximum of {max} bytes")]
    FrameTooLarge { size: usize, max: usize },
    #[error("{file}: format version {found} is newer than this binary supports ({supported}); upgrade got")]
    TooNew {
        file: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{file}: {detail}")]
    BadFile { file: PathBuf, detail: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
