//! The write path: [`LogStore::add_batch`], [`LogStore::commit`] and [`LogStore::rollback`].
//!
//! One thread writes. Each split remembers the highest WAL sequence number it has committed
//! (its Tantivy commit payload) and the highest it holds uncommitted; a record at or below
//! the committed one is skipped, so replaying the WAL after a crash, or re-adding batches
//! after a rollback, adds each record to each split exactly once.

use std::time::Instant;

use sightline_model::{LogBatch, UNKNOWN_SERVICE};

use crate::error::IndexerError;
use crate::schema::{StreamMetadata, write_record_metadata};
use crate::store::LogStore;

impl LogStore {
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
                let split = self.splits.split_for(&batch.tenant, record.timestamp_ns)?;
                let mut state = split.writer.lock().unwrap_or_else(|p| p.into_inner());
                if seq <= state.committed_seq {
                    continue;
                }
                let pattern = if self.config.patterns.is_some() {
                    patterns.mine(&batch.tenant, service, &record.body, record.timestamp_ns)?
                } else {
                    0
                };
                let writer = self.splits.writer_of(&split, &mut state)?;
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

    /// Commits every split with pending documents (each with its WAL sequence number as the
    /// payload), makes them searchable, and closes idle or surplus writers. Returns how many
    /// splits were committed.
    pub fn commit(&self) -> Result<usize, IndexerError> {
        // Pattern ids of the lines about to be committed must outlive a crash.
        self.patterns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .save_due()?;
        self.splits.commit(|_| {})
    }

    /// Discards every document added since the last commit, in every split, so that the
    /// caller can add the uncommitted batches again after a failed [`LogStore::add_batch`]
    /// or [`LogStore::commit`]: each split's pending sequence number falls back to its
    /// committed one, so the re-added records are taken (once) and committed ones are still
    /// skipped.
    ///
    /// The pattern miners are not rolled back: lines mined before the rollback stay in the
    /// miners' state (pattern counters, last-seen times, patterns they created), and mining
    /// them again when they are re-added counts them twice there. Those counters only rank
    /// patterns for eviction; the counts `pattern_summaries` reports come from the index,
    /// which holds each line once. A line mined again finds the pattern it created or
    /// joined the first time, so ids stay valid. Accepted rather than snapshotting every
    /// miner at each commit.
    pub fn rollback(&self) -> Result<(), IndexerError> {
        self.splits.rollback()
    }
}

#[cfg(test)]
mod tests {
    use sightline_model::{Direction, LabelMatcher, MatchOp};

    use super::*;
    use crate::test_support::*;

    /// `{service_name="…"}`.
    fn service(name: &str) -> Vec<LabelMatcher> {
        vec![matcher("service_name", MatchOp::Equal, name)]
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
        let got = select(&store, "t", &service("a"), &[], Direction::Forward, true);
        assert_eq!(
            got.iter().map(|e| e.line.as_str()).collect::<Vec<_>>(),
            vec!["one", "two"]
        );
    }

    #[test]
    fn rollback_lets_uncommitted_batches_be_added_again_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store
            .add_batch(1, &batch("t", "a", &[(1, "one"), (HOUR + 1, "one later")]))
            .unwrap();
        store.commit().unwrap();
        // Seq 2 lands in both splits and a new third one; then the ingest layer gives up on
        // the round (a failed add or commit) and rolls back.
        let two = batch(
            "t",
            "a",
            &[
                (2, "two"),
                (HOUR + 2, "two later"),
                (2 * HOUR + 2, "two latest"),
            ],
        );
        assert_eq!(store.add_batch(2, &two).unwrap(), 3);
        store.rollback().unwrap();
        assert_eq!(store.commit().unwrap(), 0, "nothing left to commit");
        // Re-added once, committed once.
        assert_eq!(store.add_batch(2, &two).unwrap(), 3);
        assert_eq!(store.commit().unwrap(), 3);
        let lines = |store: &LogStore| -> Vec<String> {
            select(store, "t", &service("a"), &[], Direction::Forward, true)
                .into_iter()
                .map(|e| e.line)
                .collect()
        };
        let expected = ["one", "two", "one later", "two later", "two latest"];
        assert_eq!(lines(&store), expected);
        // Replay semantics are unchanged: committed records are skipped, in every split,
        // also after a restart.
        assert_eq!(store.add_batch(2, &two).unwrap(), 0);
        assert_eq!(
            store.add_batch(1, &batch("t", "a", &[(1, "one")])).unwrap(),
            0
        );
        drop(store);
        let store = open(dir.path());
        assert_eq!(store.add_batch(2, &two).unwrap(), 0);
        assert_eq!(lines(&store), expected);
    }

    #[test]
    fn rollback_without_pending_documents_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store.rollback().unwrap();
        store.add_batch(1, &batch("t", "a", &[(1, "one")])).unwrap();
        store.commit().unwrap();
        store.rollback().unwrap();
        assert_eq!(
            store.add_batch(1, &batch("t", "a", &[(1, "one")])).unwrap(),
            0
        );
        store.add_batch(2, &batch("t", "a", &[(2, "two")])).unwrap();
        assert_eq!(store.commit().unwrap(), 1);
        let got = select(&store, "t", &service("a"), &[], Direction::Forward, true);
        assert_eq!(got.len(), 2);
    }
}
