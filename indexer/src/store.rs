//! [`LogStore`]: the set of splits, the write path (add, commit, retention) and the read path
//! (the [`LogSource`] seam).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use sightline_model::{
    BucketCounts, Buckets, Direction, Entry, EntryIter, LabelMatcher, Labels, LineFilter,
    LineFilterOp, LogBatch, LogSource, SelectRequest, StoreError, TenantId, UNKNOWN_SERVICE,
};
use tantivy::collector::{Collector, DocSetCollector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, RangeQuery, TermSetQuery};
use tantivy::schema::Value;
use tantivy::{
    DocAddress, DocId, Score, Searcher, SegmentOrdinal, SegmentReader, TantivyDocument, Term,
};

use crate::patterns::{IngestPatterns, PatternCollector, merge_pattern_cells};
use crate::pushdown::{NeedlePushdown, contains_pushdown, regex_clauses};
use crate::schema::{LogSchema, StreamMetadata, write_record_metadata};
use crate::split::{SegmentView, Split, WriterState};

/// Indexer failures, with the split path they concern.
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

impl From<IndexerError> for StoreError {
    /// Hands the error to a query engine with its cause chain intact.
    fn from(error: IndexerError) -> Self {
        StoreError::new(error)
    }
}

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

type SplitKey = (TenantId, i64);

/// The log store. Cheap to share behind an `Arc`; one thread writes, many read.
pub struct LogStore {
    config: LogStoreConfig,
    schema: LogSchema,
    splits: RwLock<BTreeMap<SplitKey, Arc<Split>>>,
    /// Touched by the indexing thread only; a mutex because the store is shared.
    patterns: Mutex<IngestPatterns>,
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

    fn split_for(&self, tenant: &TenantId, ts_ns: i64) -> Result<Arc<Split>, IndexerError> {
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

    /// Adds the records of WAL record `seq` to their splits, skipping splits that already
    /// hold it (a replay after their commit). Not searchable until [`LogStore::commit`].
    pub fn add_batch(&self, seq: u64, batch: &LogBatch) -> Result<usize, IndexerError> {
        let mut added = 0;
        let mut patterns = self.patterns.lock().unwrap_or_else(|p| p.into_inner());
        let mut metadata = String::new();
        for stream in &batch.streams {
            let key = stream.labels.to_canonical();
            let service = stream.labels.get("service_name").unwrap_or(UNKNOWN_SERVICE);
            let stream_metadata = StreamMetadata::new(stream);
            for record in &stream.records {
                let split = self.split_for(&batch.tenant, record.timestamp_ns)?;
                let mut state = split.writer.lock().unwrap_or_else(|p| p.into_inner());
                if seq <= state.committed_seq {
                    continue;
                }
                let pattern = if self.config.patterns.is_some() {
                    patterns.mine(&batch.tenant, service, &record.body, record.timestamp_ns)?
                } else {
                    0
                };
                let writer = self.writer_of(&split, &mut state)?;
                writer
                    .add_document({
                        metadata.clear();
                        write_record_metadata(&stream_metadata, record, &mut metadata);
                        self.schema.document(&key, record, &metadata, pattern)
                    })
                    .map_err(|source| IndexerError::Tantivy {
                        path: split.dir.clone(),
                        source,
                    })?;
                state.pending_seq = state.pending_seq.max(seq);
                state.last_write = Instant::now();
                added += 1;
            }
        }
        Ok(added)
    }

    fn writer_of<'a>(
        &self,
        split: &Split,
        state: &'a mut WriterState,
    ) -> Result<&'a mut tantivy::IndexWriter, IndexerError> {
        if state.writer.is_none() {
            let budget = self
                .config
                .writer_memory_bytes
                .max(15_000_000 * self.config.writer_threads);
            let writer = split
                .index
                .writer_with_num_threads(self.config.writer_threads.max(1), budget)
                .map_err(|source| IndexerError::Tantivy {
                    path: split.dir.clone(),
                    source,
                })?;
            state.writer = Some(writer);
        }
        // Just ensured above.
        Ok(state.writer.as_mut().expect("writer was just opened"))
    }

    /// Commits every split with pending documents (each with its WAL sequence number as the
    /// payload), makes them searchable, and closes idle or surplus writers. Returns how many
    /// splits were committed.
    pub fn commit(&self) -> Result<usize, IndexerError> {
        // Pattern ids of the lines about to be committed must outlive a crash.
        self.patterns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .save_due()?;
        let splits: Vec<Arc<Split>> = {
            let s = self.splits.read().unwrap_or_else(|p| p.into_inner());
            s.values().cloned().collect()
        };
        let mut committed = 0;
        let mut open: Vec<(Instant, Arc<Split>)> = Vec::new();
        for split in splits {
            let mut state = split.writer.lock().unwrap_or_else(|p| p.into_inner());
            let err = |source| IndexerError::Tantivy {
                path: split.dir.clone(),
                source,
            };
            if state.pending_seq > state.committed_seq {
                let seq = state.pending_seq;
                let writer = state
                    .writer
                    .as_mut()
                    .expect("pending documents imply a writer");
                let mut prepared = writer.prepare_commit().map_err(err)?;
                prepared.set_payload(&seq.to_string());
                prepared.commit().map_err(err)?;
                state.committed_seq = seq;
                split.reader.reload().map_err(err)?;
                committed += 1;
            }
            if state.writer.is_some() {
                open.push((state.last_write, split.clone()));
            }
        }
        // Close idle writers, then the least recently written beyond the limit: their
        // memory is the bulk of the indexer's.
        open.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
        for (i, (last_write, split)) in open.into_iter().enumerate() {
            if i >= self.config.max_open_writers
                || last_write.elapsed() > self.config.writer_idle_close
            {
                let mut state = split.writer.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(writer) = state.writer.take() {
                    writer
                        .wait_merging_threads()
                        .map_err(|source| IndexerError::Tantivy {
                            path: split.dir.clone(),
                            source,
                        })?;
                }
            }
        }
        Ok(committed)
    }

    /// Deletes whole splits whose window ended before `now_ns - retention`. Returns how many.
    pub fn apply_retention(&self, now_ns: i64) -> Result<usize, IndexerError> {
        let Some(retention) = self.config.retention else {
            return Ok(0);
        };
        let cutoff = now_ns.saturating_sub(retention.as_nanos() as i64);
        let expired: Vec<Arc<Split>> = {
            let mut splits = self.splits.write().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<SplitKey> = splits
                .iter()
                .filter(|(_, s)| s.window_end_ns <= cutoff)
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter().filter_map(|k| splits.remove(k)).collect()
        };
        for split in &expired {
            if let Some(writer) = split
                .writer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .writer
                .take()
            {
                drop(writer);
            }
            std::fs::remove_dir_all(&split.dir).map_err(|source| IndexerError::Io {
                path: split.dir.clone(),
                source,
            })?;
            tracing::info!(tenant = %split.tenant, dir = %split.dir.display(), "retention removed split");
        }
        Ok(expired.len())
    }

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
    fn splits_in(&self, tenant: &TenantId, start_ns: i64, end_ns: i64) -> Vec<Arc<Split>> {
        let splits = self.splits.read().unwrap_or_else(|p| p.into_inner());
        splits
            .range((tenant.clone(), i64::MIN)..=(tenant.clone(), i64::MAX))
            .map(|(_, s)| s)
            .filter(|s| s.overlaps(start_ns, end_ns))
            .cloned()
            .collect()
    }

    /// Distinct streams of `tenant` matching `matchers` (all streams when empty) in splits
    /// overlapping the range. Resolution is one split window.
    pub fn streams(
        &self,
        tenant: &TenantId,
        start_ns: i64,
        end_ns: i64,
        matchers: &[LabelMatcher],
    ) -> Result<Vec<Arc<Labels>>, IndexerError> {
        let mut seen: HashSet<Arc<Labels>> = HashSet::new();
        for split in self.splits_in(tenant, start_ns, end_ns) {
            let view = split.segment_view(&split.searcher(), &self.schema)?;
            for i in matching_streams(&view, matchers) {
                seen.insert(view.catalogue[i].1.clone());
            }
        }
        let mut out: Vec<Arc<Labels>> = seen.into_iter().collect();
        out.sort();
        Ok(out)
    }

    /// Candidate documents of one split for a request, ordered by time in its direction.
    fn split_hits(
        &self,
        split: &Split,
        searcher: &Searcher,
        request: &SelectRequest<'_>,
        view: &Arc<SegmentView>,
    ) -> Result<(HitQueue, Option<DeferredWalk>), IndexerError> {
        let streams = matching_streams(view, request.matchers);
        if streams.is_empty() {
            return Ok((HitQueue::new(Vec::new(), None), None));
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if streams.len() < view.catalogue.len() {
            let terms = streams
                .iter()
                .map(|&i| Term::from_field_text(self.schema.stream, &view.catalogue[i].0));
            clauses.push((Occur::Must, Box::new(TermSetQuery::new(terms))));
        }
        if request.start_ns > split.window_start_ns || request.end_ns < split.window_end_ns {
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_i64(self.schema.ts, request.start_ns)),
                    Bound::Excluded(Term::from_field_i64(self.schema.ts, request.end_ns)),
                )),
            ));
        }
        let mut walks: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for filter in request.line_filters {
            let filter_clauses = match filter.op {
                LineFilterOp::Contains => {
                    match contains_pushdown(self.schema.body, &filter.value) {
                        NeedlePushdown::Cheap(clauses) => clauses,
                        // Deferred only where a limit can end the query early: time-ordered
                        // requests. Metric queries read every candidate, so walk up front.
                        NeedlePushdown::Walk(walk) if request.ordered => {
                            walks.push((Occur::Must, walk));
                            Vec::new()
                        }
                        NeedlePushdown::Walk(walk) => vec![walk],
                    }
                }
                LineFilterOp::Regex => regex_clauses(self.schema.body, &filter.value),
                LineFilterOp::NotContains | LineFilterOp::NotRegex => Vec::new(),
            };
            clauses.extend(filter_clauses.into_iter().map(|q| (Occur::Must, q)));
        }
        let query: Box<dyn Query> = if clauses.is_empty() {
            Box::new(AllQuery)
        } else {
            Box::new(BooleanQuery::new(clauses))
        };
        let hits = searcher
            .search(
                query.as_ref(),
                &TimestampCollector {
                    view: Arc::clone(view),
                },
            )
            .map_err(|source| IndexerError::Tantivy {
                path: split.dir.clone(),
                source,
            })?;
        let order = match (request.ordered, request.direction) {
            (false, _) => None,
            (true, direction) => Some(direction),
        };
        let walk = (!walks.is_empty()).then(|| DeferredWalk {
            query: BooleanQuery::new(walks),
            loaded: 0,
            matched: 0,
            members: None,
        });
        Ok((HitQueue::new(hits, order), walk))
    }
}

/// One log pattern of a service over a query's range, as the patterns API lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct PatternSummary {
    pub service: String,
    /// The pattern id (per tenant and service); 0 for lines indexed with mining off.
    pub pattern: u64,
    /// The template, `<*>` for variables; `None` when the miner no longer keeps it.
    pub template: Option<String>,
    /// When the miner first saw the pattern (Unix ms).
    pub first_seen_ms: Option<i64>,
    /// Lines per bucket in the range.
    pub counts: Vec<u64>,
    pub total: u64,
    /// The latest line of the pattern in the range, with its timestamp.
    pub sample: (i64, String),
}

impl LogStore {
    /// The documents of `streams` (indices into the view's catalogue) in `[lo, hi)`.
    fn stream_and_time_query(
        &self,
        split: &Split,
        view: &SegmentView,
        streams: &[usize],
        lo: i64,
        hi: i64,
    ) -> Box<dyn Query> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if streams.len() < view.catalogue.len() {
            let terms = streams
                .iter()
                .map(|&i| Term::from_field_text(self.schema.stream, &view.catalogue[i].0));
            clauses.push((Occur::Must, Box::new(TermSetQuery::new(terms))));
        }
        if lo > split.window_start_ns || hi < split.window_end_ns {
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_i64(self.schema.ts, lo)),
                    Bound::Excluded(Term::from_field_i64(self.schema.ts, hi)),
                )),
            ));
        }
        if clauses.is_empty() {
            Box::new(AllQuery)
        } else {
            Box::new(BooleanQuery::new(clauses))
        }
    }

    /// The log patterns of the streams matching `matchers` in `buckets`' range: per service
    /// and pattern, lines per bucket, the template and a sample line. Reads the `ts`,
    /// `stream` and `pattern` columns, and one stored line per pattern.
    pub fn pattern_summaries(
        &self,
        tenant: &TenantId,
        matchers: &[LabelMatcher],
        buckets: Buckets,
    ) -> Result<Vec<PatternSummary>, IndexerError> {
        let (lo, hi) = buckets.range_ns();
        // (service, resolved pattern) → counts, and the latest line's (ts, split, address).
        type Latest = (i64, usize, DocAddress);
        let mut groups: HashMap<(String, u64), (Vec<u64>, Latest)> = HashMap::new();
        let mut searchers = Vec::new();
        for split in self.splits_in(tenant, lo, hi) {
            let searcher = split.searcher();
            let view = split.segment_view(&searcher, &self.schema)?;
            let streams = matching_streams(&view, matchers);
            if streams.is_empty() {
                continue;
            }
            let query = self.stream_and_time_query(&split, &view, &streams, lo, hi);
            let per_segment = searcher
                .search(
                    query.as_ref(),
                    &PatternCollector {
                        view: Arc::clone(&view),
                        buckets,
                    },
                )
                .map_err(|source| IndexerError::Tantivy {
                    path: split.dir.clone(),
                    source,
                })?;
            let mut cells = HashMap::new();
            merge_pattern_cells(&split, &view, per_segment, &mut cells)?;
            let split_index = searchers.len();
            let mut patterns = self.patterns.lock().unwrap_or_else(|p| p.into_inner());
            for ((labels, pattern), cell) in cells {
                let service = labels.get("service_name").unwrap_or(UNKNOWN_SERVICE);
                // Ids of patterns merged since are counted under the surviving id.
                let id = match pattern {
                    0 => 0,
                    id => patterns
                        .pattern(tenant, service, id)?
                        .map_or(id, |p| p.id.0),
                };
                let group = groups
                    .entry((service.to_string(), id))
                    .or_insert_with(|| (vec![0; buckets.count], (i64::MIN, 0, cell.latest.1)));
                for (total, c) in group.0.iter_mut().zip(&cell.counts) {
                    *total += u64::from(*c);
                }
                if cell.latest.0 >= group.1.0 {
                    group.1 = (cell.latest.0, split_index, cell.latest.1);
                }
            }
            drop(patterns);
            searchers.push((split, searcher));
        }
        let mut out = Vec::with_capacity(groups.len());
        for ((service, pattern), (counts, (ts, split_index, addr))) in groups {
            let (split, searcher) = &searchers[split_index];
            let doc: TantivyDocument =
                searcher.doc(addr).map_err(|source| IndexerError::Tantivy {
                    path: split.dir.clone(),
                    source,
                })?;
            let line = doc
                .get_first(self.schema.body)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            let known = match pattern {
                0 => None,
                id => self
                    .patterns
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .pattern(tenant, &service, id)?,
            };
            out.push(PatternSummary {
                total: counts.iter().sum(),
                template: known.as_ref().map(|p| p.template.clone()),
                first_seen_ms: known.as_ref().map(|p| p.first_seen_ms),
                service,
                pattern,
                counts,
                sample: (ts, line),
            });
        }
        out.sort_by(|a, b| b.total.cmp(&a.total).then(a.pattern.cmp(&b.pattern)));
        Ok(out)
    }

    /// [`LogSource::count_buckets`]: per split, one pass of a collector over the matching
    /// documents that reads only the `ts` and `stream` columns.
    fn count_in_buckets(
        &self,
        request: &SelectRequest<'_>,
        buckets: Buckets,
    ) -> Result<Option<BucketCounts>, IndexerError> {
        /// Stream × bucket cells counted at most per segment (4 bytes each).
        const MAX_CELLS: usize = 1 << 20;
        let (lo, hi) = buckets.range_ns();
        let mut totals: HashMap<Arc<Labels>, Vec<u32>> = HashMap::new();
        for split in self.splits_in(request.tenant, lo, hi) {
            let searcher = split.searcher();
            let view = split.segment_view(&searcher, &self.schema)?;
            let streams = matching_streams(&view, request.matchers);
            if streams.is_empty() {
                continue;
            }
            if streams.len().saturating_mul(buckets.count) > MAX_CELLS {
                return Ok(None);
            }
            let query = self.stream_and_time_query(&split, &view, &streams, lo, hi);
            let per_segment = searcher
                .search(
                    query.as_ref(),
                    &BucketCollector {
                        view: Arc::clone(&view),
                        buckets,
                    },
                )
                .map_err(|source| IndexerError::Tantivy {
                    path: split.dir.clone(),
                    source,
                })?;
            let mut key = String::new();
            for (segment, by_ord) in per_segment {
                let Some(column) = &view.stream_columns[segment as usize] else {
                    continue;
                };
                for (ord, counts) in by_ord.into_iter().enumerate() {
                    let Some(counts) = counts else { continue };
                    key.clear();
                    column
                        .ord_to_str(ord as u64, &mut key)
                        .map_err(|source| IndexerError::Io {
                            path: split.dir.clone(),
                            source,
                        })?;
                    let total = totals
                        .entry(split.labels_of(&key))
                        .or_insert_with(|| vec![0; buckets.count]);
                    for (t, c) in total.iter_mut().zip(counts) {
                        *t += c;
                    }
                }
            }
        }
        Ok(Some(totals.into_iter().collect()))
    }
}

impl LogSource for LogStore {
    fn count_buckets(
        &self,
        request: &SelectRequest<'_>,
        buckets: Buckets,
    ) -> Option<Result<BucketCounts, StoreError>> {
        if !request.line_filters.is_empty() {
            return None;
        }
        self.count_in_buckets(request, buckets)
            .map_err(StoreError::from)
            .transpose()
    }

    fn select(&self, request: &SelectRequest<'_>) -> Result<EntryIter<'_>, StoreError> {
        let mut splits = self.splits_in(request.tenant, request.start_ns, request.end_ns);
        if request.direction == Direction::Backward {
            splits.reverse();
        }
        Ok(Box::new(EntryCursor {
            store: self,
            matchers: request.matchers.to_vec(),
            line_filters: request.line_filters.to_vec(),
            tenant: request.tenant.clone(),
            start_ns: request.start_ns,
            end_ns: request.end_ns,
            direction: request.direction,
            ordered: request.ordered,
            needs_line: request.needs_line,
            pending: splits.into(),
            current: None,
        }))
    }
}

/// Walks the splits of a selection in time order, loading each split's hits when reached and
/// each document only when asked for.
struct EntryCursor<'a> {
    store: &'a LogStore,
    matchers: Vec<LabelMatcher>,
    line_filters: Vec<LineFilter>,
    tenant: TenantId,
    start_ns: i64,
    end_ns: i64,
    direction: Direction,
    ordered: bool,
    needs_line: bool,
    pending: VecDeque<Arc<Split>>,
    current: Option<SplitCursor>,
}

struct SplitCursor {
    split: Arc<Split>,
    searcher: Searcher,
    hits: HitQueue,
    view: Arc<SegmentView>,
    /// Per segment: stream-column term ordinal → labels. Resolving an ordinal reads (and
    /// decompresses) a dictionary block, so each is resolved once per query, not per entry.
    stream_labels: Vec<Vec<Option<Arc<Labels>>>>,
    walk: Option<DeferredWalk>,
    key_buf: String,
}

/// Candidates loaded at most before a deferred dictionary walk is run.
const WALK_DEFERRED_DOCS: usize = 2048;
/// Candidates loaded at least before a deferred walk may be run early because few of them
/// matched (fewer than one in eight): a rare needle is better served by the walk.
const WALK_EARLY_DOCS: usize = 256;

/// A split's candidates, handed out in time order without sorting them all up front: a log
/// query usually stops at its limit within the first few thousand. Chunks double in size,
/// so draining every candidate stays O(n log n).
struct HitQueue {
    hits: Vec<(i64, DocAddress)>,
    /// `hits[..ready]` is sorted and handed out from `next`.
    next: usize,
    ready: usize,
    chunk: usize,
    order: Option<Direction>,
}

impl HitQueue {
    fn new(hits: Vec<(i64, DocAddress)>, order: Option<Direction>) -> Self {
        let ready = if order.is_none() { hits.len() } else { 0 };
        Self {
            hits,
            next: 0,
            ready,
            chunk: 1024,
            order,
        }
    }

    /// Keeps only the hits not yet handed out that satisfy `keep`, in the same order.
    fn retain_pending(&mut self, keep: impl Fn(&DocAddress) -> bool) {
        let mut pending: Vec<(i64, DocAddress)> = self.hits[self.next..self.ready]
            .iter()
            .filter(|h| keep(&h.1))
            .copied()
            .collect();
        let ready = pending.len();
        pending.extend(
            self.hits[self.ready..]
                .iter()
                .filter(|h| keep(&h.1))
                .copied(),
        );
        self.hits = pending;
        self.next = 0;
        self.ready = ready;
    }

    fn next(&mut self) -> Option<(i64, DocAddress)> {
        if self.next == self.ready && self.ready < self.hits.len() {
            let backward = self.order == Some(Direction::Backward);
            let cmp = |a: &(i64, DocAddress), b: &(i64, DocAddress)| {
                if backward { b.cmp(a) } else { a.cmp(b) }
            };
            let rest = &mut self.hits[self.ready..];
            let take = self.chunk.min(rest.len());
            if take < rest.len() {
                rest.select_nth_unstable_by(take, cmp);
            }
            rest[..take].sort_unstable_by(cmp);
            self.ready += take;
            self.chunk = self.chunk.saturating_mul(2);
        }
        let hit = self.hits.get(self.next).copied()?;
        self.next += 1;
        Some(hit)
    }
}

/// A dictionary walk (`|= "GET"`: the needle may sit inside any token) held back from a
/// split's query. A common needle is found among the first candidates by verifying their
/// lines, and a log query stops at its limit long before a walk over millions of terms would
/// have finished; only after [`WALK_DEFERRED_DOCS`] loaded candidates is the walk run, and
/// its matches then decide which remaining candidates are loaded at all. Either way every
/// line is verified, so results are the same.
struct DeferredWalk {
    query: BooleanQuery,
    loaded: usize,
    matched: usize,
    members: Option<HashSet<DocAddress>>,
}

impl DeferredWalk {
    fn due(&self) -> bool {
        self.members.is_none()
            && (self.loaded >= WALK_DEFERRED_DOCS
                || (self.loaded >= WALK_EARLY_DOCS && self.matched * 8 < self.loaded))
    }
}

impl EntryCursor<'_> {
    fn open_next_split(&mut self) -> Result<bool, IndexerError> {
        let Some(split) = self.pending.pop_front() else {
            return Ok(false);
        };
        let searcher = split.searcher();
        let request = SelectRequest {
            tenant: &self.tenant,
            matchers: &self.matchers,
            line_filters: &self.line_filters,
            start_ns: self.start_ns,
            end_ns: self.end_ns,
            direction: self.direction,
            ordered: self.ordered,
            needs_line: self.needs_line,
        };
        let view = split.segment_view(&searcher, &self.store.schema)?;
        let (hits, walk) = self.store.split_hits(&split, &searcher, &request, &view)?;
        self.current = Some(SplitCursor {
            split,
            searcher,
            hits,
            stream_labels: vec![Vec::new(); view.stream_columns.len()],
            view,
            walk,
            key_buf: String::new(),
        });
        Ok(true)
    }

    fn entry(&mut self, ts: i64, addr: DocAddress) -> Result<Option<Entry>, IndexerError> {
        let schema = &self.store.schema;
        let cur = self.current.as_mut().expect("called with a current split");
        let err = |source| IndexerError::Tantivy {
            path: cur.split.dir.clone(),
            source,
        };
        let segment = addr.segment_ord as usize;
        let ord = cur.view.stream_columns[segment]
            .as_ref()
            .and_then(|col| col.term_ords(addr.doc_id).next());
        let known = ord.and_then(|o| cur.stream_labels[segment].get(o as usize)?.as_ref());
        let labels = match known {
            Some(labels) => labels.clone(),
            None => {
                cur.key_buf.clear();
                if let (Some(col), Some(ord)) = (&cur.view.stream_columns[segment], ord) {
                    col.ord_to_str(ord, &mut cur.key_buf)
                        .map_err(|source| IndexerError::Io {
                            path: cur.split.dir.clone(),
                            source,
                        })?;
                }
                let labels = cur.split.labels_of(&cur.key_buf);
                if let Some(ord) = ord {
                    let slots = &mut cur.stream_labels[segment];
                    if slots.len() <= ord as usize {
                        slots.resize(ord as usize + 1, None);
                    }
                    slots[ord as usize] = Some(labels.clone());
                }
                labels
            }
        };
        if let Some(walk) = &mut cur.walk {
            if walk.due() {
                let members = cur
                    .searcher
                    .search(&walk.query, &DocSetCollector)
                    .map_err(err)?;
                // From here on only the walk's matches are candidates.
                cur.hits.retain_pending(|addr| members.contains(addr));
                walk.members = Some(members);
            }
            match &walk.members {
                Some(members) if !members.contains(&addr) => return Ok(None),
                Some(_) => {}
                None => walk.loaded += 1,
            }
        }
        if !self.needs_line && self.line_filters.is_empty() {
            return Ok(Some(Entry {
                timestamp_ns: ts,
                labels,
                line: String::new(),
                metadata: Vec::new(),
            }));
        }
        let doc: TantivyDocument = cur.searcher.doc(addr).map_err(err)?;
        let line = doc
            .get_first(schema.body)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        // Verify what the index only narrowed: without lines the engine relies on exact
        // results, and with them a candidate dropped here is one line less to hand over.
        if !self.line_filters.iter().all(|f| f.matches(&line)) {
            return Ok(None);
        }
        if let Some(walk) = &mut cur.walk
            && walk.members.is_none()
        {
            walk.matched += 1;
        }
        if !self.needs_line {
            return Ok(Some(Entry {
                timestamp_ns: ts,
                labels,
                line: String::new(),
                metadata: Vec::new(),
            }));
        }
        let mut metadata = doc
            .get_first(schema.meta)
            .and_then(|v| v.as_str())
            .and_then(Labels::parse_canonical)
            .map(Labels::into_pairs)
            .unwrap_or_default();
        // The line's log pattern, for `| pattern_id="…"` (0: mined with patterns off).
        if let Some(pattern) = cur.view.pattern_columns[segment]
            .as_ref()
            .and_then(|c| c.first(addr.doc_id))
            .filter(|&p| p > 0)
        {
            metadata.push(("pattern_id".to_string(), pattern.to_string()));
        }
        Ok(Some(Entry {
            timestamp_ns: ts,
            labels,
            line,
            metadata,
        }))
    }
}

impl Iterator for EntryCursor<'_> {
    type Item = Result<Entry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let next_hit = self.current.as_mut().and_then(|c| c.hits.next());
            let result: Result<(), IndexerError> = match next_hit {
                Some((ts, addr)) => match self.entry(ts, addr) {
                    Ok(Some(entry)) => return Some(Ok(entry)),
                    Ok(None) => continue,
                    Err(e) => Err(e),
                },
                None => match self.open_next_split() {
                    Ok(true) => continue,
                    Ok(false) => return None,
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = result {
                // Stop after reporting a failure rather than skip data silently.
                self.pending.clear();
                self.current = None;
                return Some(Err(StoreError::from(e)));
            }
        }
    }
}

/// Indices into the catalogue of `view` of the streams that satisfy `matchers`.
fn matching_streams(view: &SegmentView, matchers: &[LabelMatcher]) -> Vec<usize> {
    view.catalogue
        .iter()
        .enumerate()
        .filter(|(_, (_, labels))| matchers.iter().all(|m| m.matches_labels(labels)))
        .map(|(i, _)| i)
        .collect()
}

/// Counts matching documents per stream ordinal and time bucket, per segment.
struct BucketCollector {
    view: Arc<SegmentView>,
    buckets: Buckets,
}

struct BucketSegmentCollector {
    segment_ord: SegmentOrdinal,
    ts: Column<i64>,
    stream: Option<StrColumn>,
    buckets: Buckets,
    /// Stream ordinal → counts per bucket, allocated when the stream is first seen.
    counts: Vec<Option<Vec<u32>>>,
}

impl Collector for BucketCollector {
    type Fruit = Vec<(SegmentOrdinal, Vec<Option<Vec<u32>>>)>;
    type Child = BucketSegmentCollector;

    fn for_segment(
        &self,
        segment_ord: SegmentOrdinal,
        _segment: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        Ok(BucketSegmentCollector {
            segment_ord,
            ts: self.view.ts_columns[segment_ord as usize].clone(),
            stream: self.view.stream_columns[segment_ord as usize].clone(),
            buckets: self.buckets,
            counts: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Self::Fruit>) -> tantivy::Result<Self::Fruit> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for BucketSegmentCollector {
    type Fruit = Vec<(SegmentOrdinal, Vec<Option<Vec<u32>>>)>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(bucket) = self.ts.first(doc).and_then(|ts| self.buckets.index(ts)) else {
            return;
        };
        let Some(ord) = self.stream.as_ref().and_then(|c| c.term_ords(doc).next()) else {
            return;
        };
        let ord = ord as usize;
        if self.counts.len() <= ord {
            self.counts.resize(ord + 1, None);
        }
        let count = self.buckets.count;
        self.counts[ord].get_or_insert_with(|| vec![0; count])[bucket] += 1;
    }

    fn harvest(self) -> Self::Fruit {
        vec![(self.segment_ord, self.counts)]
    }
}

/// Collects (timestamp, address) of every matching document from the `ts` fast field.
struct TimestampCollector {
    view: Arc<SegmentView>,
}

struct TimestampSegmentCollector {
    segment_ord: SegmentOrdinal,
    ts: Column<i64>,
    hits: Vec<(i64, DocAddress)>,
}

impl Collector for TimestampCollector {
    type Fruit = Vec<(i64, DocAddress)>;
    type Child = TimestampSegmentCollector;

    fn for_segment(
        &self,
        segment_ord: SegmentOrdinal,
        _segment: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        Ok(TimestampSegmentCollector {
            segment_ord,
            ts: self.view.ts_columns[segment_ord as usize].clone(),
            hits: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Self::Fruit>) -> tantivy::Result<Self::Fruit> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for TimestampSegmentCollector {
    type Fruit = Vec<(i64, DocAddress)>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if let Some(ts) = self.ts.first(doc) {
            self.hits.push((ts, DocAddress::new(self.segment_ord, doc)));
        }
    }

    fn harvest(self) -> Self::Fruit {
        self.hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_logql::{Expr, LogExpr, QueryResult};
    use sightline_model::{LogRecord, LogStream};

    const HOUR: i64 = 3_600_000_000_000;

    fn batch(tenant: &str, service: &str, lines: &[(i64, &str)]) -> LogBatch {
        LogBatch {
            tenant: TenantId::new(tenant).unwrap(),
            streams: vec![LogStream {
                labels: Labels::from_pairs([("service_name", service), ("env", "prod")]),
                resource: vec![
                    ("service.name".into(), service.into()),
                    ("process.pid".into(), "7".into()),
                ],
                records: lines
                    .iter()
                    .map(|(ts, body)| LogRecord {
                        timestamp_ns: *ts,
                        body: body.to_string(),
                        trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
        }
    }

    fn log_expr(q: &str) -> LogExpr {
        match sightline_logql::parse(q).unwrap() {
            Expr::Log(l) => l,
            Expr::Metric(_) => panic!("not a log query"),
        }
    }

    fn select(
        store: &LogStore,
        tenant: &str,
        q: &str,
        dir: Direction,
        needs_line: bool,
    ) -> Vec<Entry> {
        let expr = log_expr(q);
        let tenant = TenantId::new(tenant).unwrap();
        let filters = expr.pushdown_line_filters();
        let req = SelectRequest {
            tenant: &tenant,
            matchers: &expr.matchers,
            line_filters: &filters,
            start_ns: 0,
            end_ns: i64::MAX,
            direction: dir,
            ordered: true,
            needs_line,
        };
        store.select(&req).unwrap().map(Result::unwrap).collect()
    }

    fn open(dir: &Path) -> LogStore {
        LogStore::open(LogStoreConfig::new(dir)).unwrap()
    }

    #[test]
    fn committed_records_are_found_by_selector_and_filters_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store
            .add_batch(
                1,
                &batch(
                    "t1",
                    "api",
                    &[
                        (10, "GET /users 200"),
                        (30, "Error: connection refused"),
                        (20, "GET /orders 500"),
                    ],
                ),
            )
            .unwrap();
        store
            .add_batch(2, &batch("t1", "db", &[(HOUR + 5, "slow query took 2s")]))
            .unwrap();
        store
            .add_batch(3, &batch("t2", "api", &[(15, "other tenant error")]))
            .unwrap();
        assert!(
            select(&store, "t1", r#"{env="prod"}"#, Direction::Forward, true).is_empty(),
            "not committed yet"
        );
        assert_eq!(store.commit().unwrap(), 3);

        let all = select(&store, "t1", r#"{env="prod"}"#, Direction::Forward, true);
        assert_eq!(
            all.iter().map(|e| e.timestamp_ns).collect::<Vec<_>>(),
            vec![10, 20, 30, HOUR + 5]
        );
        let back = select(&store, "t1", r#"{env="prod"}"#, Direction::Backward, true);
        assert_eq!(
            back.iter().map(|e| e.timestamp_ns).collect::<Vec<_>>(),
            vec![HOUR + 5, 30, 20, 10]
        );
        assert_eq!(
            select(
                &store,
                "t1",
                r#"{service_name=~"d.*"}"#,
                Direction::Forward,
                true
            )
            .len(),
            1
        );
        // Pushdown is a superset: substrings inside tokens and other cases still reach the engine.
        let hits = select(
            &store,
            "t1",
            r#"{env="prod"} |= "rror""#,
            Direction::Forward,
            true,
        );
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].line, "Error: connection refused");
        assert_eq!(hits[0].labels.get("service_name"), Some("api"));
        assert!(
            hits[0]
                .metadata
                .contains(&("process_pid".into(), "7".into()))
        );
        assert!(
            hits[0]
                .metadata
                .contains(&("trace_id".into(), "0af7651916cd43dd8448eb211c80319c".into()))
        );
        assert_eq!(
            select(
                &store,
                "t1",
                r#"{env="prod"} |= "onnection ref""#,
                Direction::Forward,
                true
            )
            .len(),
            1
        );
        assert_eq!(
            select(
                &store,
                "t1",
                r#"{env="prod"} |= "GET /""#,
                Direction::Forward,
                true
            )
            .len(),
            2
        );
        // A needle's last token may be the head of a longer token: a term-range prefix.
        for (needle, expected) in [("GET /ord", 1), ("/users 2", 1), ("GET /", 2), (" 5", 1)] {
            let query = format!(r#"{{env="prod"}} |= "{needle}""#);
            let found = select(&store, "t1", &query, Direction::Forward, false).len();
            assert_eq!(found, expected, "{needle:?}");
        }
        // Regex filters push down their literal runs and are verified exactly.
        for (regex, expected) in [
            ("GET /(users|orders) [0-9]+", 2),
            ("GET /[a-z]+ 5[0-9]{2}", 1),
            ("(?i)error: conn", 1),
            ("refused$", 1),
        ] {
            let query = format!(r#"{{env="prod"}} |~ "{regex}""#);
            let found = select(&store, "t1", &query, Direction::Forward, false).len();
            assert_eq!(found, expected, "{regex:?}");
        }
        // Without lines the store must be exact: "error" is not in "Error: ...".
        assert_eq!(
            select(
                &store,
                "t1",
                r#"{env="prod"} |= "error""#,
                Direction::Forward,
                false
            )
            .len(),
            0
        );
        assert_eq!(
            select(
                &store,
                "t1",
                r#"{env="prod"} |= "500""#,
                Direction::Forward,
                false
            )
            .len(),
            1
        );
        let streams = store
            .streams(&TenantId::new("t1").unwrap(), 0, i64::MAX, &[])
            .unwrap();
        assert_eq!(streams.len(), 2);
        assert_eq!(
            select(&store, "t2", r#"{env="prod"}"#, Direction::Forward, true).len(),
            1
        );
    }

    /// The store, with its bucket counting hidden (the engine then counts entries itself) or
    /// not, counting the entry selections asked of it.
    struct Probe<'a> {
        store: &'a LogStore,
        buckets: bool,
        selects: std::cell::Cell<usize>,
    }

    impl<'a> Probe<'a> {
        fn new(store: &'a LogStore, buckets: bool) -> Self {
            Self {
                store,
                buckets,
                selects: std::cell::Cell::new(0),
            }
        }
    }

    impl LogSource for Probe<'_> {
        fn select(&self, request: &SelectRequest<'_>) -> Result<EntryIter<'_>, StoreError> {
            self.selects.set(self.selects.get() + 1);
            self.store.select(request)
        }

        fn count_buckets(
            &self,
            request: &SelectRequest<'_>,
            buckets: Buckets,
        ) -> Option<Result<BucketCounts, StoreError>> {
            if self.buckets {
                self.store.count_buckets(request, buckets)
            } else {
                None
            }
        }
    }

    #[test]
    fn bucket_counts_give_the_same_metrics_as_counting_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let sec = 1_000_000_000i64;
        // Entries every 7 s over two split windows, some exactly on step edges.
        let mut seq = 0;
        for (service, phase) in [("api", 0), ("db", 3), ("web", 5)] {
            let lines: Vec<(i64, String)> = (0..1100)
                .map(|i| {
                    (
                        HOUR - 600 * sec + (i * 7 + phase) * sec,
                        format!("line {i}"),
                    )
                })
                .collect();
            let refs: Vec<(i64, &str)> = lines.iter().map(|(t, l)| (*t, l.as_str())).collect();
            seq += 1;
            store.add_batch(seq, &batch("t1", service, &refs)).unwrap();
        }
        store.commit().unwrap();
        let tenant = TenantId::new("t1").unwrap();
        let start = HOUR - 300 * sec;
        let end = HOUR + 3000 * sec;
        for (query, step) in [
            (r#"count_over_time({env="prod"}[60s])"#, 60),
            (r#"count_over_time({env="prod"}[5m])"#, 60),
            (r#"rate({service_name=~"api|db"}[90s])"#, 60),
            (
                r#"sum by (env) (count_over_time({env="prod"}[35s] offset 1m))"#,
                14,
            ),
            (r#"count_over_time({service_name="web"}[1h])"#, 300),
        ] {
            let expr = sightline_logql::parse(query).unwrap();
            let fast = sightline_logql::query_range(
                &store,
                &tenant,
                &expr,
                start,
                end,
                step * sec,
                100,
                Direction::Forward,
            )
            .unwrap();
            let slow = sightline_logql::query_range(
                &Probe::new(&store, false),
                &tenant,
                &expr,
                start,
                end,
                step * sec,
                100,
                Direction::Forward,
            )
            .unwrap();
            assert_eq!(fast, slow, "{query}");
            assert!(
                matches!(&fast, QueryResult::Matrix(m) if !m.is_empty()),
                "{query}"
            );
            let at = HOUR + 60 * sec;
            let fast =
                sightline_logql::query_instant(&store, &tenant, &expr, at, 100, Direction::Forward);
            let slow = sightline_logql::query_instant(
                &Probe::new(&store, false),
                &tenant,
                &expr,
                at,
                100,
                Direction::Forward,
            );
            assert_eq!(fast.unwrap(), slow.unwrap(), "{query} at {at}");
        }
    }

    #[test]
    fn patterns_keep_their_ids_across_a_restart_and_count_like_brute_force() {
        let dir = tempfile::tempdir().unwrap();
        let tenant = TenantId::new("t1").unwrap();
        let sec = 1_000_000_000i64;
        let shape_a = |i: i64| format!("GET /orders/{i} status=200 took {}ms", i % 97);
        let shape_b = |i: i64| format!("user u{i} logged in from 10.0.0.{}", i % 250);
        let before: Vec<(i64, String)> = (0..300)
            .map(|i| {
                let line = if i % 3 == 0 { shape_b(i) } else { shape_a(i) };
                (HOUR + i * sec, line)
            })
            .collect();
        let buckets = Buckets {
            start_ns: HOUR - 1,
            width_ns: 600 * sec,
            count: 2,
        };
        let summaries_of = |store: &LogStore| {
            store
                .pattern_summaries(&tenant, &log_expr(r#"{env="prod"}"#).matchers, buckets)
                .unwrap()
        };
        let id_of = |summaries: &[PatternSummary], needle: &str| {
            summaries
                .iter()
                .find(|s| s.sample.1.contains(needle))
                .map(|s| (s.pattern, s.total))
                .unwrap()
        };
        let (id_a, id_b) = {
            let store = open(dir.path());
            let refs: Vec<(i64, &str)> = before.iter().map(|(t, l)| (*t, l.as_str())).collect();
            store.add_batch(1, &batch("t1", "api", &refs)).unwrap();
            store.commit().unwrap();
            let summaries = summaries_of(&store);
            assert_eq!(summaries.len(), 2, "{summaries:?}");
            let (a, count_a) = id_of(&summaries, "GET /orders/");
            let (b, count_b) = id_of(&summaries, "logged in");
            assert_eq!((count_a, count_b), (200, 100), "brute force: 200 and 100");
            assert_ne!(a, b);
            assert!(a > 0 && b > 0);
            (a, b)
        };
        // Restart, then a deploy brings a new shape.
        let store = open(dir.path());
        let deploy = HOUR + 700 * sec;
        let after: Vec<(i64, String)> = (0..90)
            .map(|i| {
                let line = match i % 3 {
                    0 => shape_a(1000 + i),
                    1 => shape_b(1000 + i),
                    _ => format!("cache warmup of shard {i} failed: timeout"),
                };
                (deploy + i * sec, line)
            })
            .collect();
        let refs: Vec<(i64, &str)> = after.iter().map(|(t, l)| (*t, l.as_str())).collect();
        store.add_batch(2, &batch("t1", "api", &refs)).unwrap();
        store.commit().unwrap();
        let summaries = summaries_of(&store);
        assert_eq!(id_of(&summaries, "GET /orders/"), (id_a, 230));
        assert_eq!(id_of(&summaries, "logged in"), (id_b, 130));
        let new = summaries
            .iter()
            .find(|s| s.sample.1.contains("cache warmup"))
            .unwrap();
        assert_eq!(new.total, 30);
        assert_eq!(new.counts, vec![0, 30], "all after the deploy");
        assert!(new.first_seen_ms.unwrap() >= deploy / 1_000_000);
        assert!(new.pattern != id_a && new.pattern != id_b);
        assert!(
            new.template
                .as_ref()
                .unwrap()
                .contains("cache warmup of shard")
        );
    }

    #[test]
    fn hit_queue_hands_out_every_hit_in_order_without_sorting_up_front() {
        let mut x: u64 = 7;
        let hits: Vec<(i64, DocAddress)> = (0..5000u32)
            .map(|i| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                ((x >> 40) as i64 % 1000, DocAddress::new(i % 3, i))
            })
            .collect();
        for direction in [Direction::Forward, Direction::Backward] {
            let mut expected = hits.clone();
            expected.sort_unstable();
            if direction == Direction::Backward {
                expected.reverse();
            }
            let mut queue = HitQueue::new(hits.clone(), Some(direction));
            let got: Vec<_> = std::iter::from_fn(|| queue.next()).collect();
            assert_eq!(got, expected);
        }
        let mut unordered = HitQueue::new(hits.clone(), None);
        assert_eq!(
            std::iter::from_fn(|| unordered.next()).collect::<Vec<_>>(),
            hits
        );
        // Retaining part way keeps the order of what is left.
        let mut queue = HitQueue::new(hits.clone(), Some(Direction::Forward));
        let first: Vec<_> = (0..1500).map_while(|_| queue.next()).collect();
        queue.retain_pending(|a| a.doc_id % 2 == 0);
        let rest: Vec<_> = std::iter::from_fn(|| queue.next()).collect();
        let mut expected = hits.clone();
        expected.sort_unstable();
        let expected_rest: Vec<_> = expected[1500..]
            .iter()
            .filter(|h| h.1.doc_id % 2 == 0)
            .copied()
            .collect();
        assert_eq!(first, expected[..1500]);
        assert_eq!(rest, expected_rest);
    }

    #[test]
    fn bare_token_needles_find_the_same_lines_before_and_after_the_deferred_walk() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let n = 3 * WALK_DEFERRED_DOCS as i64;
        let lines: Vec<(i64, String)> = (1..=n)
            .map(|i| {
                let line = if i == 10 || i == n - 10 {
                    format!("xyzNEEDLEabc {i}")
                } else if i == 20 || i == n - 20 {
                    format!("plain needle {i}")
                } else {
                    format!("GET /api/{i} status=200")
                };
                (i, line)
            })
            .collect();
        let refs: Vec<(i64, &str)> = lines.iter().map(|(t, l)| (*t, l.as_str())).collect();
        store.add_batch(1, &batch("t1", "api", &refs)).unwrap();
        store.commit().unwrap();
        for needs_line in [true, false] {
            for (dir, order) in [(Direction::Forward, 1), (Direction::Backward, -1)] {
                // With lines the store may return a superset (the engine verifies); without,
                // it must be exact.
                let ts = |needle: &str| -> Vec<i64> {
                    let q = format!(r#"{{env="prod"}} |= "{needle}""#);
                    select(&store, "t1", &q, dir, needs_line)
                        .iter()
                        .filter(|e| !needs_line || e.line.contains(needle))
                        .map(|e| e.timestamp_ns)
                        .collect()
                };
                let sorted = |mut v: Vec<i64>| {
                    v.sort_by_key(|t| t * order);
                    v
                };
                // Inside a token, past the deferral point and before it.
                assert_eq!(ts("EEDL"), sorted(vec![10, n - 10]));
                assert_eq!(ts("needle"), sorted(vec![20, n - 20]));
                assert_eq!(ts("GET").len() as i64, n - 4);
            }
        }
    }

    #[test]
    fn replay_after_commit_adds_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = open(dir.path());
            store.add_batch(1, &batch("t", "a", &[(1, "one")])).unwrap();
            store.commit().unwrap();
            store.add_batch(2, &batch("t", "a", &[(2, "two")])).unwrap();
            // Crash: record 2 was never committed.
        }
        let store = open(dir.path());
        assert_eq!(
            store.add_batch(1, &batch("t", "a", &[(1, "one")])).unwrap(),
            0
        );
        assert_eq!(
            store.add_batch(2, &batch("t", "a", &[(2, "two")])).unwrap(),
            1
        );
        store.commit().unwrap();
        let got = select(
            &store,
            "t",
            r#"{service_name="a"}"#,
            Direction::Forward,
            true,
        );
        assert_eq!(
            got.iter().map(|e| e.line.as_str()).collect::<Vec<_>>(),
            vec!["one", "two"]
        );
    }

    #[test]
    fn retention_deletes_whole_expired_splits() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = LogStoreConfig::new(dir.path());
        config.retention = Some(Duration::from_secs(3600));
        let store = LogStore::open(config).unwrap();
        store
            .add_batch(1, &batch("t", "a", &[(10, "old"), (5 * HOUR + 1, "new")]))
            .unwrap();
        store.commit().unwrap();
        assert_eq!(store.stats().splits, 2);
        assert_eq!(store.apply_retention(6 * HOUR + 2).unwrap(), 1);
        let got = select(
            &store,
            "t",
            r#"{service_name="a"}"#,
            Direction::Forward,
            true,
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].line, "new");
        assert!(!dir.path().join("t").join(Split::dir_name(0, HOUR)).exists());
    }
}
