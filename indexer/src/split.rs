//! One split: the Tantivy index of one tenant's logs for one time window.
//!
//! On disk at `<root>/<tenant>/<window start, Unix s>_<window length, s>/`. The split's
//! commit payload is the highest WAL sequence number whose documents it holds.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sightline_model::{Labels, TenantId};
use tantivy::columnar::{Column, StrColumn};
use tantivy::directory::MmapDirectory;
use tantivy::index::SegmentId;
use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::{Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, Searcher};

use crate::error::IndexerError;
use crate::schema::{BODY_TOKENIZER, LogSchema, body_analyzer};

/// Writer-side state, touched only by the indexing thread.
pub(crate) struct WriterState {
    pub writer: Option<IndexWriter>,
    /// Highest WAL sequence number durably committed in this split.
    pub committed_seq: u64,
    /// Highest WAL sequence number added since the last commit (0 when clean).
    pub pending_seq: u64,
    pub last_write: Instant,
}

pub(crate) struct Split {
    pub tenant: TenantId,
    pub window_start_ns: i64,
    pub window_end_ns: i64,
    pub dir: PathBuf,
    pub index: Index,
    pub reader: IndexReader,
    pub writer: Mutex<WriterState>,
    /// Canonical stream key → parsed labels, shared by every query on this split.
    label_cache: Mutex<HashMap<String, Arc<Labels>>>,
    /// What queries need of the segments last searched, keyed by their segment ids:
    /// segments are immutable, so it is read once per commit, not once per query.
    segment_view: Mutex<Option<(Vec<SegmentId>, Arc<SegmentView>)>>,
}

/// What every query reads of a split's current segments before it starts: opening a column
/// parses its block metadata and listing streams reads (and decompresses) the term
/// dictionary, both costs that would otherwise recur per segment per query.
pub(crate) struct SegmentView {
    /// The split's distinct streams: canonical key and parsed labels, sorted by key.
    pub catalogue: Vec<(String, Arc<Labels>)>,
    /// Per segment, in searcher order: the `ts` column.
    pub ts_columns: Vec<Column<i64>>,
    /// Per segment, in searcher order: the `stream` column (absent in an empty segment).
    pub stream_columns: Vec<Option<StrColumn>>,
    /// Per segment, in searcher order: the `pattern` column (absent in splits written
    /// before patterns were indexed).
    pub pattern_columns: Vec<Option<Column<u64>>>,
}

/// Doc store settings of new splits (existing splits keep theirs, recorded in `meta.json`).
///
/// Log lines compress several times better with zstd over large blocks than with lz4 over
/// Tantivy's default 16 KiB; a lookup decompresses one block (about 0.1 ms at 128 KiB), which
/// is small next to a query and amortised over neighbouring lines, which come from the same
/// block. Level 3 keeps compression (on Tantivy's dedicated thread) cheap beside indexing.
fn index_settings() -> IndexSettings {
    IndexSettings {
        docstore_compression: Compressor::Zstd(ZstdCompressor {
            compression_level: Some(3),
        }),
        docstore_blocksize: 128 * 1024,
        ..IndexSettings::default()
    }
}

impl Split {
    pub fn dir_name(window_start_ns: i64, window_ns: i64) -> String {
        format!(
            "{}_{}",
            window_start_ns / 1_000_000_000,
            window_ns / 1_000_000_000
        )
    }

    /// Parses a split directory name into (window start, window end) in ns.
    pub fn parse_dir_name(name: &str) -> Option<(i64, i64)> {
        let (start, len) = name.split_once('_')?;
        let start: i64 = start.parse().ok()?;
        let len: i64 = len.parse().ok()?;
        (len > 0).then(|| (start * 1_000_000_000, (start + len) * 1_000_000_000))
    }

    pub fn open(
        schema: &tantivy::schema::Schema,
        tenant: TenantId,
        dir: &Path,
        window_start_ns: i64,
        window_end_ns: i64,
    ) -> Result<Self, IndexerError> {
        let tantivy_err = |source| IndexerError::Tantivy {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|source| IndexerError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let directory = MmapDirectory::open(dir).map_err(|e| tantivy_err(e.into()))?;
        let exists = Index::exists(&directory).map_err(|e| tantivy_err(e.into()))?;
        let index = if exists {
            // A split written by an earlier version keeps its own field options (norms,
            // indexing, doc store settings); what must match is the fields, in order, since
            // documents and queries address them by position.
            let index = Index::open(directory).map_err(tantivy_err)?;
            let names = |s: &tantivy::schema::Schema| -> Vec<String> {
                s.fields().map(|(_, e)| e.name().to_string()).collect()
            };
            let (found, expected) = (names(&index.schema()), names(schema));
            if found != expected {
                return Err(IndexerError::IncompatibleSchema {
                    path: dir.to_path_buf(),
                    found,
                    expected,
                });
            }
            index
        } else {
            Index::builder()
                .schema(schema.clone())
                .settings(index_settings())
                .open_or_create(directory)
                .map_err(tantivy_err)?
        };
        index.tokenizers().register(BODY_TOKENIZER, body_analyzer());
        let committed_seq = index
            .load_metas()
            .map_err(tantivy_err)?
            .payload
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(tantivy_err)?;
        Ok(Self {
            tenant,
            window_start_ns,
            window_end_ns,
            dir: dir.to_path_buf(),
            index,
            reader,
            writer: Mutex::new(WriterState {
                writer: None,
                committed_seq,
                pending_seq: 0,
                last_write: Instant::now(),
            }),
            label_cache: Mutex::new(HashMap::new()),
            segment_view: Mutex::new(None),
        })
    }

    pub fn overlaps(&self, start_ns: i64, end_ns: i64) -> bool {
        self.window_start_ns < end_ns && start_ns < self.window_end_ns
    }

    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    /// The [`SegmentView`] of the segments of `searcher`.
    pub fn segment_view(
        &self,
        searcher: &Searcher,
        schema: &LogSchema,
    ) -> Result<Arc<SegmentView>, IndexerError> {
        let segment_ids: Vec<SegmentId> = searcher
            .segment_readers()
            .iter()
            .map(|s| s.segment_id())
            .collect();
        if let Some((ids, view)) = &*self.segment_view.lock().unwrap_or_else(|p| p.into_inner())
            && *ids == segment_ids
        {
            return Ok(view.clone());
        }
        let tantivy_err = |source| IndexerError::Tantivy {
            path: self.dir.clone(),
            source,
        };
        let mut keys: BTreeSet<String> = BTreeSet::new();
        let mut ts_columns = Vec::new();
        let mut stream_columns = Vec::new();
        let mut pattern_columns = Vec::new();
        for segment in searcher.segment_readers() {
            let inverted = segment.inverted_index(schema.stream).map_err(tantivy_err)?;
            let mut terms = inverted
                .terms()
                .stream()
                .map_err(|source| IndexerError::Io {
                    path: self.dir.clone(),
                    source,
                })?;
            while terms.advance() {
                if let Ok(key) = std::str::from_utf8(terms.key())
                    && !keys.contains(key)
                {
                    keys.insert(key.to_string());
                }
            }
            ts_columns.push(segment.fast_fields().i64("ts").map_err(tantivy_err)?);
            stream_columns.push(segment.fast_fields().str("stream").ok().flatten());
            pattern_columns.push(segment.fast_fields().u64("pattern").ok());
        }
        let view = Arc::new(SegmentView {
            catalogue: keys
                .into_iter()
                .map(|k| {
                    let labels = self.labels_of(&k);
                    (k, labels)
                })
                .collect(),
            ts_columns,
            stream_columns,
            pattern_columns,
        });
        *self.segment_view.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((segment_ids, view.clone()));
        Ok(view)
    }

    /// Parsed labels of a canonical stream key, cached.
    pub fn labels_of(&self, key: &str) -> Arc<Labels> {
        let mut cache = self.label_cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = cache.get(key) {
            return l.clone();
        }
        // Keys are written by `Labels::to_canonical`; a key that does not parse (impossible
        // unless the index was edited by hand) reads as an empty label set.
        let labels = Arc::new(Labels::parse_canonical(key).unwrap_or_default());
        cache.insert(key.to_string(), labels.clone());
        labels
    }
}
