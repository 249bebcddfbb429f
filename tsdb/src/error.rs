//! The store's error type: every failure names the file it concerns.

use std::io;
use std::path::{Path, PathBuf};

/// Failures of the store. Refused samples are not errors (they are counted in the
/// [`AppendReport`](sightline_model::AppendReport)); these are the store failing.
#[derive(Debug, thiserror::Error)]
pub enum TsdbError {
    #[error("tsdb i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("tsdb file {path} is corrupt: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error(transparent)]
    Wal(#[from] sightline_wal::WalError),
    #[error("invalid tsdb options: {0}")]
    InvalidOptions(String),
    #[error("series ids are exhausted (2^32 series were created since the head began)")]
    SeriesIdsExhausted,
    #[error("compressing series data failed: {0}")]
    Encode(String),
}

/// Maps an `io::Error` on `path` into [`TsdbError::Io`].
pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TsdbError + '_ {
    move |source| TsdbError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn corrupt(path: &Path, detail: impl Into<String>) -> TsdbError {
    TsdbError::Corrupt {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}
