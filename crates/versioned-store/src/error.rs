use std::path::PathBuf;

/// Errors of the store. Each names what a person needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Wal(#[from] wal::Error),
    #[error("not found: {0}")]
    NotFound(String),
    /// A version this transaction read (or expected) changed before it committed;
    /// nothing was written. Retry the transaction.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("{path} is not a got store: {detail}")]
    NotAStore { path: PathBuf, detail: String },
    #[error("a store already exists at {0}")]
    AlreadyExists(PathBuf),
    #[error("corrupt {file}: {detail}")]
    CorruptFile { file: PathBuf, detail: String },
    #[error("undecodable record: {0}")]
    Decode(String),
    #[error("store opened read-only")]
    ReadOnly,
    #[error("transaction already finished")]
    Finished,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The outcome of the write is unknown (a sync failed): the CLI's own exit code.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(
            self,
            Error::Wal(wal::Error::SyncFailed { .. }) | Error::Wal(wal::Error::Poisoned)
        )
    }
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::Wal(wal::Error::Corruption { .. })
                | Error::Wal(wal::Error::BadFile { .. })
                | Error::CorruptFile { .. }
                | Error::Decode(_)
        )
    }
}

pub(crate) fn io_at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| {
        Error::Wal(wal::Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
