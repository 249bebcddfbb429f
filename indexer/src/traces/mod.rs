//! The span store: spans in Tantivy splits per tenant and time window (the same
//! [`SplitSet`] logs use, under `<data dir>/traces`), written from the traces WAL and read by
//! trace id and by search.
//!
//! A split holds the spans that *started* in its window, so a trace that crosses a window
//! boundary lives in two splits; a lookup by id asks every split whose trace-id filter
//! ([`bloom`]) may hold the id, and no other.
//!
//! Modules: `bloom` (trace-id filters), `schema` (fields, span → document), `write`
//! (batches, commit, rollback, the filters' upkeep), `read` (traces by id), `search`
//! (candidate traces from the index).

mod bloom;
mod read;
mod schema;
mod search;
mod tags;
mod write;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use sightline_ingest::Sink;
use sightline_model::SpanBatch;

use crate::error::IndexerError;
use crate::split::Split;
use crate::split_set::{SplitConfig, SplitSet};
use bloom::TraceIdFilter;
use schema::SpanSchema;
pub use schema::{ATTR_SEPARATOR, MAX_INDEXED_VALUE_BYTES};
pub use search::{AttrScope, Candidate, CandidateQuery, SpanCondition};
pub use tags::{TagNames, TagSource};

/// The file beside a split's index that holds its trace-id filter.
const FILTER_FILE: &str = "trace_ids.bloom";

/// Tunables of the span store.
#[derive(Debug, Clone)]
pub struct TraceStoreConfig {
    /// Root of the span splits (`<data dir>/traces`).
    pub root: PathBuf,
    /// Time window of one split.
    pub split_window: Duration,
    /// Indexing memory of one open split writer.
    pub writer_memory_bytes: usize,
    /// Open writers at most.
    pub max_open_writers: usize,
    /// Indexing threads per writer.
    pub writer_threads: usize,
    /// A writer idle this long is closed after the next commit (and its filter saved).
    pub writer_idle_close: Duration,
    /// Splits whose window ended longer ago than this are deleted; `None` keeps everything.
    pub retention: Option<Duration>,
}

impl TraceStoreConfig {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            split_window: Duration::from_secs(3600),
            writer_memory_bytes: 64 << 20,
            max_open_writers: 2,
            writer_threads: 1,
            writer_idle_close: Duration::from_secs(120),
            retention: None,
        }
    }
}

/// A split's trace-id filter and whether it holds ids not yet saved.
#[derive(Default)]
struct FilterState {
    filter: TraceIdFilter,
    dirty: bool,
}

/// The span store. Cheap to share behind an `Arc`; one thread writes, many read.
pub struct TraceStore {
    schema: SpanSchema,
    splits: SplitSet,
    /// Per split directory.
    filters: Mutex<HashMap<PathBuf, FilterState>>,
}

impl TraceStore {
    /// Opens every split under the root and loads (or rebuilds) their trace-id filters.
    pub fn open(config: TraceStoreConfig) -> Result<Self, IndexerError> {
        let schema = SpanSchema::new();
        let splits = SplitSet::open(
            SplitConfig {
                root: config.root,
                split_window: config.split_window,
                writer_memory_bytes: config.writer_memory_bytes,
                max_open_writers: config.max_open_writers,
                writer_threads: config.writer_threads,
                writer_idle_close: config.writer_idle_close,
                retention: config.retention,
            },
            schema.schema.clone(),
        )?;
        let mut filters = HashMap::new();
        for split in splits.all_splits() {
            filters.insert(split.dir.clone(), load_filter(&split, &schema)?);
        }
        Ok(Self {
            schema,
            splits,
            filters: Mutex::new(filters),
        })
    }

    /// Splits, open writers and spans, for self-monitoring.
    pub fn stats(&self) -> crate::StoreStats {
        self.splits.stats()
    }

    /// Deletes whole splits whose window ended before `now_ns - retention`. Returns how many.
    pub fn apply_retention(&self, now_ns: i64) -> Result<usize, IndexerError> {
        let removed = self.splits.apply_retention(now_ns)?;
        if removed > 0 {
            let live: std::collections::HashSet<PathBuf> = self
                .splits
                .all_splits()
                .iter()
                .map(|s| s.dir.clone())
                .collect();
            self.filters_lock().retain(|dir, _| live.contains(dir));
        }
        Ok(removed)
    }

    fn filters_lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, FilterState>> {
        self.filters.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The split's saved filter when its stamp is the split's committed sequence number, else
/// one rebuilt from the split's trace-id terms.
fn load_filter(split: &Split, schema: &SpanSchema) -> Result<FilterState, IndexerError> {
    let committed = split
        .writer
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .committed_seq;
    let path = split.dir.join(FILTER_FILE);
    if let Ok(bytes) = std::fs::read(&path)
        && let Some((filter, stamp)) = TraceIdFilter::from_bytes(&bytes)
        && stamp == committed
    {
        return Ok(FilterState {
            filter,
            dirty: false,
        });
    }
    let mut filter = TraceIdFilter::default();
    let searcher = split.searcher();
    for segment in searcher.segment_readers() {
        let inverted =
            segment
                .inverted_index(schema.trace_id)
                .map_err(|source| IndexerError::Tantivy {
                    path: split.dir.clone(),
                    source,
                })?;
        let mut terms = inverted
            .terms()
            .stream()
            .map_err(|source| IndexerError::Io {
                path: split.dir.clone(),
                source,
            })?;
        while terms.advance() {
            if let Some(id) = std::str::from_utf8(terms.key())
                .ok()
                .and_then(sightline_model::TraceId::from_hex)
            {
                filter.insert(&id);
            }
        }
    }
    tracing::debug!(split = %split.dir.display(), bytes = filter.memory_bytes(), "trace-id filter rebuilt");
    Ok(FilterState {
        filter,
        dirty: true,
    })
}

/// Writes a filter file atomically (temporary file, fsync, rename).
fn save_filter(dir: &Path, filter: &TraceIdFilter, stamp: u64) -> Result<(), IndexerError> {
    use std::io::Write;
    let path = dir.join(FILTER_FILE);
    let tmp = dir.join(format!("{FILTER_FILE}.tmp"));
    let io = |source| IndexerError::Io {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(&filter.to_bytes(stamp)).map_err(io)?;
    file.sync_data().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

impl Sink<SpanBatch> for TraceStore {
    type Error = IndexerError;

    fn name(&self) -> &'static str {
        "traces"
    }

    fn append(&self, seq: u64, batch: &SpanBatch) -> Result<usize, IndexerError> {
        self.add_batch(seq, batch)
    }

    fn commit(&self) -> Result<(), IndexerError> {
        TraceStore::commit(self).map(|_| ())
    }

    fn rollback(&self) -> Result<(), IndexerError> {
        TraceStore::rollback(self)
    }

    fn maintain(&self, now_ns: i64) -> Result<(), IndexerError> {
        self.apply_retention(now_ns).map(|_| ())
    }
}
