//! Errors of the store. Each says what failed, where, and what the operator can do.

use std::path::{Path, PathBuf};

use tessera_log::{BuildError, NetworkId, VerifyError};

use crate::segments::{LogPosition, SegmentError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store in {} is in use by another Tessera process; stop it first (only one process may open a store)", .dir.display())]
    InUse { dir: PathBuf },
    #[error("no Tessera store in {}: run `tessera init` first", .dir.display())]
    NotInitialized { dir: PathBuf },
    #[error("the store in {} belongs to network {found}, not to network {expected}", .dir.display())]
    WrongNetwork { dir: PathBuf, expected: NetworkId, found: NetworkId },
    #[error("{} is damaged: it should hold a network id in hex", .path.display())]
    BadNetworkFile { path: PathBuf },
    #[error("entry {index} of the batch was refused, nothing from the batch was stored: {error}")]
    Rejected { index: usize, error: VerifyError },
    #[error("cannot build the envelope: {0}")]
    Build(#[from] BuildError),
    #[error("a batch of {len} entries is above the limit of {max}")]
    BatchTooLarge { len: usize, max: usize },
    #[error("log: {0}")]
    Log(#[from] SegmentError),
    #[error("log record at {at} is unreadable: {reason}")]
    CorruptRecord { at: LogPosition, reason: String },
    #[error("derived database: {0}")]
    Derived(#[from] sled::Error),
    #[error("derived database is inconsistent ({0}); it will be rebuilt from the log at the next open")]
    CorruptDerived(String),
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("this device may not sign new changes: {0}")]
    SigningBlocked(crate::store::SigningBlocked),
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

impl StoreError {
    pub(crate) fn io<'p>(
        action: &'static str,
        path: &'p Path,
    ) -> impl FnOnce(std::io::Error) -> StoreError + 'p {
        move |source| StoreError::Io { action, path: path.to_path_buf(), source }
    }
}
