//! [`IndexerError`]: the log store's failures, each with the path it concerns.

use std::path::PathBuf;

/// Indexer failures, with the split (or patterns file) path they concern.
#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    #[error("index i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("index at {path} has fields {found:?}, this version expects {expected:?}")]
    IncompatibleSchema {
        path: PathBuf,
        found: Vec<String>,
        expected: Vec<String>,
    },
    #[error("log patterns at {path}: {source}")]
    Patterns {
        path: PathBuf,
        #[source]
        source: sightline_patterns::PatternsError,
    },
    #[error("index error on {path}: {source}")]
    Tantivy {
        path: PathBuf,
        #[source]
        source: tantivy::TantivyError,
    },
}

impl From<IndexerError> for sightline_model::StoreError {
    /// Hands the error to a query engine with its cause chain intact.
    fn from(error: IndexerError) -> Self {
        sightline_model::StoreError::new(error)
    }
}
