//! [`LogStore`]: the log splits of every tenant ([`SplitSet`]) and the pattern miners.
//!
//! What the store does with them lives beside this file: the write path in `write.rs`,
//! retention in `retention.rs`, the read path (the [`LogSource`] implementation) in
//! `read.rs` and `cursor.rs`, and pattern summaries in `pattern_summaries.rs`.
//!
//! [`LogSource`]: sightline_model::LogSource

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sightline_model::TenantId;

use crate::error::IndexerError;
use crate::patterns::IngestPatterns;
use crate::schema::LogSchema;
use crate::split::Split;
use crate::split_set::{SplitConfig, SplitSet};

/// Tunables of the log store.
#[derive(Debug, Clone)]
pub struct LogStoreConfig {
    /// Root of the log splits (`<data dir>/logs`).
    pub root: PathBuf,
    /// Time window of one split.
    pub split_window: Duration,
    /// Indexing memory of one open split writer; the total bound is this times
    /// `max_open_writers`.
    pub writer_memory_bytes: usize,
    /// Open writers at most; the least recently written is committed and closed first.
    pub max_open_writers: usize,
    /// Indexing threads per writer.
    pub writer_threads: usize,
    /// A writer idle this long is closed after the next commit.
    pub writer_idle_close: Duration,
    /// Splits whose window ended longer ago than this are deleted; `None` keeps everything.
    pub retention: Option<Duration>,
    /// How every line's log pattern is mined at ingest; `None`: not at all (the `pattern`
    /// field is then 0).
    pub patterns: Option<sightline_patterns::MinerConfig>,
}

impl LogStoreConfig {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            split_window: Duration::from_secs(3600),
            writer_memory_bytes: 64 << 20,
            max_open_writers: 4,
            writer_threads: 1,
            writer_idle_close: Duration::from_secs(120),
            retention: None,
            patterns: Some(sightline_patterns::MinerConfig::default()),
        }
    }
}

/// Counts for self-monitoring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub splits: usize,
    pub open_writers: usize,
    pub documents: u64,
}

/// The log store. Cheap to share behind an `Arc`; one thread writes, many read.
pub struct LogStore {
    pub(crate) config: LogStoreConfig,
    pub(crate) schema: LogSchema,
    pub(crate) splits: SplitSet,
    /// Touched by the indexing thread only (and read by pattern summaries); a mutex because
    /// the store is shared.
    pub(crate) patterns: Mutex<IngestPatterns>,
}

impl LogStore {
    /// Opens every split found under the root.
    pub fn open(config: LogStoreConfig) -> Result<Self, IndexerError> {
        let schema = LogSchema::new();
        let splits = SplitSet::open(
            SplitConfig {
                root: config.root.clone(),
                split_window: config.split_window,
                writer_memory_bytes: config.writer_memory_bytes,
                max_open_writers: config.max_open_writers,
                writer_threads: config.writer_threads,
                writer_idle_close: config.writer_idle_close,
                retention: config.retention,
            },
            schema.schema.clone(),
        )?;
        Ok(Self {
            patterns: Mutex::new(IngestPatterns::new(
                &config.root,
                config.patterns.clone().unwrap_or_default(),
            )),
            config,
            schema,
            splits,
        })
    }

    /// Splits, open writers and documents, for self-monitoring.
    pub fn stats(&self) -> StoreStats {
        self.splits.stats()
    }

    /// Splits of `tenant` overlapping `[start_ns, end_ns)`, oldest first.
    pub(crate) fn splits_in(
        &self,
        tenant: &TenantId,
        start_ns: i64,
        end_ns: i64,
    ) -> Vec<Arc<Split>> {
        self.splits.splits_in(tenant, start_ns, end_ns)
    }
}
