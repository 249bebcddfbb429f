//! [`SplitSet`]: the splits of every tenant of one signal (logs or spans), how a timestamp
//! finds its split, and the writer bookkeeping both stores share: open writers within a
//! memory budget, commit with the WAL sequence number as payload, rollback, retention.
//!
//! What a split holds (its schema, its documents) is the store's business; this module only
//! knows splits as Tantivy indexes over a time window.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sightline_model::TenantId;
use tantivy::schema::Schema;

use crate::error::IndexerError;
use crate::split::{Split, WriterState};

/// How splits are cut and written.
#[derive(Debug, Clone)]
pub(crate) struct SplitConfig {
    pub root: PathBuf,
    pub split_window: Duration,
    pub writer_memory_bytes: usize,
    pub max_open_writers: usize,
    pub writer_threads: usize,
    pub writer_idle_close: Duration,
    pub retention: Option<Duration>,
}

pub(crate) type SplitKey = (TenantId, i64);

pub(crate) struct SplitSet {
    pub config: SplitConfig,
    pub schema: Schema,
    splits: RwLock<BTreeMap<SplitKey, Arc<Split>>>,
}

impl SplitSet {
    /// Opens every split found under the root (`<root>/<tenant>/<start>_<length>/`).
    pub fn open(config: SplitConfig, schema: Schema) -> Result<Self, IndexerError> {
        let mut splits = BTreeMap::new();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| IndexerError::Io { path, source }
        };
        let root = &config.root;
        std::fs::create_dir_all(root).map_err(io(root))?;
        for tenant_entry in std::fs::read_dir(root).map_err(io(root))? {
            let tenant_entry = tenant_entry.map_err(io(root))?;
            let Some(tenant) = tenant_entry
                .file_name()
                .to_str()
                .and_then(|n| TenantId::new(n).ok())
            else {
                continue;
            };
            let tenant_dir = tenant_entry.path();
            if !tenant_dir.is_dir() {
                continue;
            }
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
            config,
            schema,
            splits: RwLock::new(splits),
        })
    }

    fn window_ns(&self) -> i64 {
        (self.config.split_window.as_nanos() as i64).max(1_000_000_000)
    }

    /// The split that holds `ts_ns` for `tenant`, opened (created) if need be.
    pub fn split_for(&self, tenant: &TenantId, ts_ns: i64) -> Result<Arc<Split>, IndexerError> {
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

    /// Splits of `tenant` overlapping `[start_ns, end_ns)`, oldest first.
    pub fn splits_in(&self, tenant: &TenantId, start_ns: i64, end_ns: i64) -> Vec<Arc<Split>> {
        let splits = self.splits.read().unwrap_or_else(|p| p.into_inner());
        splits
            .range((tenant.clone(), i64::MIN)..=(tenant.clone(), i64::MAX))
            .map(|(_, s)| s)
            .filter(|s| s.overlaps(start_ns, end_ns))
            .cloned()
            .collect()
    }

    /// Every split, of every tenant.
    pub fn all_splits(&self) -> Vec<Arc<Split>> {
        let splits = self.splits.read().unwrap_or_else(|p| p.into_inner());
        splits.values().cloned().collect()
    }

    /// Splits, open writers and documents.
    pub fn stats(&self) -> crate::StoreStats {
        let splits = self.all_splits();
        let mut stats = crate::StoreStats {
            splits: splits.len(),
            ..Default::default()
        };
        for s in splits {
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

    /// The split's writer, opened if need be.
    pub fn writer_of<'a>(
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
    /// payload), makes them searchable, and closes idle or surplus writers; `on_commit` runs
    /// for each split just committed. Returns how many splits were committed.
    pub fn commit(&self, mut on_commit: impl FnMut(&Split)) -> Result<usize, IndexerError> {
        let mut committed = 0;
        let mut open: Vec<(Instant, Arc<Split>)> = Vec::new();
        for split in self.all_splits() {
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
                on_commit(&split);
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

    /// Discards every document added since the last commit, in every split: each split's
    /// pending sequence number falls back to its committed one, so re-added records are
    /// taken (once) and committed ones are still skipped.
    pub fn rollback(&self) -> Result<(), IndexerError> {
        for split in self.all_splits() {
            let mut state = split.writer.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(writer) = state.writer.as_mut() {
                writer.rollback().map_err(|source| IndexerError::Tantivy {
                    path: split.dir.clone(),
                    source,
                })?;
            }
            state.pending_seq = state.committed_seq;
        }
        Ok(())
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
}
