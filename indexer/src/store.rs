//! [`LogStore`]: the set of splits of every tenant, and how a timestamp finds its split.
//!
//! What the store does with them lives beside this file: the write path in `write.rs`,
//! retention in `retention.rs`, the read path (the [`LogSource`] implementation) in
//! `read.rs` and `cursor.rs`, and pattern summaries in `pattern_summaries.rs`.
//!
//! [`LogSource`]: sightline_model::LogSource

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sightline_model::TenantId;

use crate::error::IndexerError;
use crate::patterns::IngestPatterns;
use crate::schema::LogSchema;
use crate::split::Split;

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

pub(crate) type SplitKey = (TenantId, i64);

/// The log store. Cheap to share behind an `Arc`; one thread writes, many read.
pub struct LogStore {
    pub(crate) config: LogStoreConfig,
    pub(crate) schema: LogSchema,
    pub(crate) splits: RwLock<BTreeMap<SplitKey, Arc<Split>>>,
    /// Touched by the indexing thread only (and read by pattern summaries); a mutex because
    /// the store is shared.
    pub(crate) patterns: Mutex<IngestPatterns>,
}

impl LogStore {
    /// Opens every split found under the root.
    pub fn open(config: LogStoreConfig) -> Result<Self, IndexerError> {
        let schema = LogSchema::new();
        let mut splits = BTreeMap::new();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| IndexerError::Io { path, source }
        };
        std::fs::create_dir_all(&config.root).map_err(io(&config.root))?;
        for tenant_entry in std::fs::read_dir(&config.root).map_err(io(&config.root))? {
            let tenant_entry = tenant_entry.map_err(io(&config.root))?;
            let Some(tenant) = tenant_entry
                .file_name()
                .to_str()
                .and_then(|n| TenantId::new(n).ok())
            else {
                continue;
            };
            let tenant_dir = tenant_entry.path();
            for split_entry in std::fs::read_dir(&tenant_dir).map_err(io(&tenant_dir))? {
                let split_entry = split_entry.map_err(io(&tenant_dir))?;
                let name = split_entry.file_name();
                let Some((start, end)) = name.to_str().and_then(Split::parse_dir_name) else {
                    continue;
                };
                let split = Split::open(&schema, tenant.clone(), &split_entry.path(), start, end)?;
                splits.insert((tenant.clone(), start), Arc::new(split));
            }
        }
        Ok(Self {
            patterns: Mutex::new(IngestPatterns::new(
                &config.root,
                config.patterns.clone().unwrap_or_default(),
            )),
            config,
            schema,
            splits: RwLock::new(splits),
        })
    }

    fn window_ns(&self) -> i64 {
        (self.config.split_window.as_nanos() as i64).max(1_000_000_000)
    }

    /// The split that holds `ts_ns` for `tenant`, opened (created) if need be.
    pub(crate) fn split_for(
        &self,
        tenant: &TenantId,
        ts_ns: i64,
    ) -> Result<Arc<Split>, IndexerError> {
        let window = self.window_ns();
        let start = ts_ns.div_euclid(window) * window;
        // Splits opened under an older window length still own their own range.
        if let Some(s) = self.find_split(tenant, ts_ns) {
            return Ok(s);
        }
        let mut splits = self.splits.write().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = splits.get(&(tenant.clone(), start)) {
            return Ok(s.clone());
        }
        let dir = self
            .config
            .root
            .join(tenant.as_str())
            .join(Split::dir_name(start, window));
        let split = Arc::new(Split::open(
            &self.schema,
            tenant.clone(),
            &dir,
            start,
            start + window,
        )?);
        splits.insert((tenant.clone(), start), split.clone());
        Ok(split)
    }

    fn find_split(&self, tenant: &TenantId, ts_ns: i64) -> Option<Arc<Split>> {
        let splits = self.splits.read().unwrap_or_else(|p| p.into_inner());
        splits
            .range((tenant.clone(), i64::MIN)..=(tenant.clone(), ts_ns))
            .next_back()
            .filter(|(_, s)| ts_ns < s.window_end_ns)
            .map(|(_, s)| s.clone())
    }

    /// Splits, open writers and documents, for self-monitoring.
    pub fn stats(&self) -> StoreStats {
        let splits = self.splits.read().unwrap_or_else(|p| p.into_inner());
        let mut stats = StoreStats {
            splits: splits.len(),
            ..Default::default()
        };
        for s in splits.values() {
            stats.documents += s.searcher().num_docs();
            if s.writer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .writer
                .is_some()
            {
                stats.open_writers += 1;
            }
        }
        stats
    }

    /// Splits of `tenant` overlapping `[start_ns, end_ns)`, oldest first.
    pub(crate) fn splits_in(
        &self,
        tenant: &TenantId,
        start_ns: i64,
        end_ns: i64,
    ) -> Vec<Arc<Split>> {
        let splits = self.splits.read().unwrap_or_else(|p| p.into_inner());
        splits
            .range((tenant.clone(), i64::MIN)..=(tenant.clone(), i64::MAX))
            .map(|(_, s)| s)
            .filter(|s| s.overlaps(start_ns, end_ns))
            .cloned()
            .collect()
    }

    /// Every split, of every tenant.
    pub(crate) fn all_splits(&self) -> Vec<Arc<Split>> {
        let splits = self.splits.read().unwrap_or_else(|p| p.into_inner());
        splits.values().cloned().collect()
    }
}
