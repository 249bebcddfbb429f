//! The span write path: [`TraceStore::add_batch`], [`TraceStore::commit`],
//! [`TraceStore::rollback`], with the same exactly-once rule as logs (a split skips WAL
//! records at or below its committed sequence number).

use std::time::Instant;

use sightline_model::SpanBatch;

use super::{TraceStore, save_filter};
use crate::error::IndexerError;

impl TraceStore {
    /// Adds the spans of WAL record `seq` to their splits (by start time), skipping splits
    /// that already hold it. Not searchable until [`TraceStore::commit`]; findable by id
    /// from then on, since the trace-id filter learns the id now.
    pub fn add_batch(&self, seq: u64, batch: &SpanBatch) -> Result<usize, IndexerError> {
        let mut added = 0;
        for resource in &batch.resources {
            let resource_blob = postcard::to_allocvec(&(&resource.labels, &resource.resource))
                .expect("resource serialises");
            let service = resource.service_name();
            for scope in &resource.scopes {
                let scope_blob = postcard::to_allocvec(&(
                    &scope.scope_name,
                    &scope.scope_version,
                    &scope.scope_attributes,
                ))
                .expect("scope serialises");
                for span in &scope.spans {
                    let split = self.splits.split_for(&batch.tenant, span.start_ns)?;
                    let mut state = split.writer.lock().unwrap_or_else(|p| p.into_inner());
                    if seq <= state.committed_seq {
                        continue;
                    }
                    let doc = self.schema.document(
                        span,
                        service,
                        &resource.resource,
                        &resource_blob,
                        &scope_blob,
                    );
                    let writer = self.splits.writer_of(&split, &mut state)?;
                    writer
                        .add_document(doc)
                        .map_err(|source| IndexerError::Tantivy {
                            path: split.dir.clone(),
                            source,
                        })?;
                    state.pending_seq = state.pending_seq.max(seq);
                    state.last_write = Instant::now();
                    let mut filters = self.filters_lock();
                    let entry = filters.entry(split.dir.clone()).or_default();
                    entry.filter.insert(&span.trace_id);
                    entry.dirty = true;
                    added += 1;
                }
            }
        }
        Ok(added)
    }

    /// Commits every split with pending spans and saves the trace-id filter of each split
    /// whose writer is now closed (idle or surplus). Returns how many splits were committed.
    pub fn commit(&self) -> Result<usize, IndexerError> {
        let committed = self.splits.commit(|_| {})?;
        for split in self.splits.all_splits() {
            let state = split.writer.lock().unwrap_or_else(|p| p.into_inner());
            if state.writer.is_some() {
                continue;
            }
            let stamp = state.committed_seq;
            drop(state);
            let mut filters = self.filters_lock();
            if let Some(f) = filters.get_mut(&split.dir)
                && f.dirty
            {
                save_filter(&split.dir, &f.filter, stamp)?;
                f.dirty = false;
            }
        }
        Ok(committed)
    }

    /// Discards every span added since the last commit (see `LogStore::rollback`). Filters
    /// keep the ids they learnt: a false positive costs one split search, nothing more.
    pub fn rollback(&self) -> Result<(), IndexerError> {
        self.splits.rollback()
    }
}
