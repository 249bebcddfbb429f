//! The log store under the ingest path's sink runner when an append fails halfway: the
//! documents it had already added are rolled back and the batch is added again exactly once.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sightline_indexer::{IndexerError, LogStore, LogStoreConfig};
use sightline_ingest::{IngestMetrics, Sink, SinkProgress, SinkRunnerConfig, run_sink};
use sightline_model::{Labels, LogBatch, LogRecord, LogStream, TenantId};

const HOUR: i64 = 3_600_000_000_000;

#[derive(Debug, thiserror::Error)]
enum FlakyError {
    #[error("injected failure after the batch was added")]
    Injected,
    #[error(transparent)]
    Store(#[from] IndexerError),
}

/// The real store, but the first append of `fail_seq` reports failure after it has added
/// its documents (a failure halfway through a batch, as a full disk would cause).
struct FlakyStore<'a> {
    store: &'a LogStore,
    fail_seq: Mutex<Option<u64>>,
}

impl Sink<LogBatch> for FlakyStore<'_> {
    type Error = FlakyError;

    fn name(&self) -> &'static str {
        "flaky-logs"
    }

    fn append(&self, seq: u64, batch: &LogBatch) -> Result<usize, FlakyError> {
        let n = self.store.append(seq, batch)?;
        let mut fail = self.fail_seq.lock().unwrap();
        if *fail == Some(seq) {
            *fail = None;
            return Err(FlakyError::Injected);
        }
        Ok(n)
    }

    fn commit(&self) -> Result<(), FlakyError> {
        Ok(Sink::commit(self.store)?)
    }

    fn rollback(&self) -> Result<(), FlakyError> {
        Ok(self.store.rollback()?)
    }
}

/// A batch with records in two hourly splits.
fn batch(seq: u64) -> LogBatch {
    let records = (0..4)
        .map(|i| LogRecord {
            timestamp_ns: i64::from(i % 2) * HOUR + seq as i64 * 1000 + i64::from(i),
            body: format!("batch {seq} line {i}"),
            ..Default::default()
        })
        .collect();
    LogBatch {
        tenant: TenantId::default_tenant(),
        streams: vec![LogStream {
            labels: Labels::from_pairs([("service_name", "ledger")]),
            records,
            ..Default::default()
        }],
    }
}

#[test]
fn append_failing_halfway_is_rolled_back_and_added_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(LogStoreConfig::new(dir.path())).unwrap();
    let flaky = FlakyStore {
        store: &store,
        fail_seq: Mutex::new(Some(3)),
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(8);
    for seq in 1..=5 {
        tx.send((seq, batch(seq))).unwrap();
    }
    drop(tx);
    let progress = SinkProgress::new(0);
    let config = SinkRunnerConfig {
        retry_backoff: Duration::from_millis(1),
        ..Default::default()
    };
    run_sink(
        &flaky,
        rx,
        &progress,
        &config,
        Arc::new(AtomicBool::new(false)),
        &IngestMetrics::default(),
        || 0,
    );
    assert_eq!(progress.durable_seq(), 5);
    assert!(progress.is_healthy());
    assert_eq!(store.stats().documents, 5 * 4, "every record exactly once");

    // A replay of the same WAL records after a restart adds nothing twice.
    drop(store);
    let store = LogStore::open(LogStoreConfig::new(dir.path())).unwrap();
    for seq in 1..=5 {
        assert_eq!(
            store.append(seq, &batch(seq)).unwrap(),
            0,
            "seq {seq} replayed"
        );
    }
    Sink::commit(&store).unwrap();
    assert_eq!(store.stats().documents, 20);
}
