//! The log store as a sink of the ingest path: batches from the WAL, commits with the WAL
//! sequence number in each split, rollback of what is not committed.

use sightline_ingest::Sink;
use sightline_model::LogBatch;

use crate::{IndexerError, LogStore};

impl Sink<LogBatch> for LogStore {
    type Error = IndexerError;

    fn name(&self) -> &'static str {
        "logs"
    }

    fn append(&self, seq: u64, batch: &LogBatch) -> Result<usize, IndexerError> {
        self.add_batch(seq, batch)
    }

    fn commit(&self) -> Result<(), IndexerError> {
        LogStore::commit(self).map(|_| ())
    }

    fn rollback(&self) -> Result<(), IndexerError> {
        LogStore::rollback(self)
    }

    fn maintain(&self, now_ns: i64) -> Result<(), IndexerError> {
        self.apply_retention(now_ns).map(|_| ())
    }
}
