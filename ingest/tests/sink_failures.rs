//! The durable path with stores that fail: nothing acknowledged is lost, nothing is applied
//! twice, and the WAL keeps every batch the store has not committed.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sightline_ingest::{
    Health, IngestHandle, IngestMetrics, Sink, SinkProgress, SinkRunnerConfig, WalWriterConfig,
    recover, run_sink, run_wal_writer, sequenced_channel, unready_reason,
};
use sightline_model::{Labels, LogBatch, LogRecord, LogStream, TenantId};
use sightline_wal::{Wal, WalOptions};

#[derive(Debug, thiserror::Error)]
#[error("injected failure of {0}")]
struct Injected(&'static str);

/// What the fake store has, committed and not.
#[derive(Debug, Default)]
struct FakeState {
    /// Record bodies by WAL sequence number, committed.
    committed: BTreeMap<u64, Vec<String>>,
    pending: BTreeMap<u64, Vec<String>>,
    /// Every seq appended to `pending` while another copy was already there: a duplicate.
    duplicates: Vec<u64>,
    appends: usize,
    commits: usize,
}

/// An in-memory store with the log store's exactly-once rules, failing on cue.
#[derive(Debug, Default)]
struct FakeSink {
    state: Mutex<FakeState>,
    /// Appends of these sequence numbers fail this many more times.
    fail_append: Mutex<BTreeMap<u64, usize>>,
    /// The next this-many commits that have something to commit fail.
    fail_commits: Mutex<usize>,
    /// Every append from this seq on fails, forever.
    fail_from: Option<u64>,
}

impl Sink<LogBatch> for FakeSink {
    type Error = Injected;

    fn name(&self) -> &'static str {
        "fake"
    }

    fn append(&self, seq: u64, batch: &LogBatch) -> Result<usize, Injected> {
        if self.fail_from.is_some_and(|from| seq >= from) {
            return Err(Injected("append"));
        }
        if let Some(left) = self.fail_append.lock().unwrap().get_mut(&seq)
            && *left > 0
        {
            *left -= 1;
            return Err(Injected("append"));
        }
        let mut state = self.state.lock().unwrap();
        state.appends += 1;
        if state.committed.contains_key(&seq) {
            return Ok(0); // replay of what is already committed
        }
        let bodies: Vec<String> = batch
            .streams
            .iter()
            .flat_map(|s| s.records.iter().map(|r| r.body.clone()))
            .collect();
        let n = bodies.len();
        if state.pending.insert(seq, bodies).is_some() {
            state.duplicates.push(seq);
        }
        Ok(n)
    }

    fn commit(&self) -> Result<(), Injected> {
        let has_pending = !self.state.lock().unwrap().pending.is_empty();
        {
            let mut left = self.fail_commits.lock().unwrap();
            if has_pending && *left > 0 {
                *left -= 1;
                return Err(Injected("commit"));
            }
        }
        let mut state = self.state.lock().unwrap();
        state.commits += 1;
        let pending = std::mem::take(&mut state.pending);
        state.committed.extend(pending);
        Ok(())
    }

    fn rollback(&self) -> Result<(), Injected> {
        self.state.lock().unwrap().pending.clear();
        Ok(())
    }
}

fn batch(i: usize) -> LogBatch {
    LogBatch {
        tenant: TenantId::default_tenant(),
        streams: vec![LogStream {
            labels: Labels::from_pairs([("service_name", "checkout")]),
            records: vec![LogRecord {
                timestamp_ns: 1_700_000_000_000_000_000 + i as i64,
                body: format!("line {i}"),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn fast_runner() -> SinkRunnerConfig {
    SinkRunnerConfig {
        commit_interval: Duration::from_millis(5),
        maintain_interval: Duration::from_secs(3600),
        retry_backoff: Duration::from_millis(1),
        max_retry_backoff: Duration::from_millis(4),
        shutdown_retry_budget: Duration::from_millis(50),
    }
}

/// Sends `n` batches one after the other through queue → WAL → runner → `sink`, with small
/// WAL segments so truncation has something to delete, then shuts down. Returns what each
/// submission was answered and the final progress.
async fn run_pipeline(
    dir: &std::path::Path,
    sink: Arc<FakeSink>,
    n: usize,
) -> (
    Vec<Result<(), sightline_ingest::IngestError>>,
    Arc<SinkProgress>,
) {
    let options = WalOptions { segment_bytes: 256 };
    let (wal, recovered) = recover::<LogBatch, _>(dir, options, sink.as_ref()).unwrap();
    let progress = Arc::new(SinkProgress::new(recovered.durable_seq));
    let (handle, rx) = IngestHandle::<LogBatch, ()>::channel(64);
    let (to_sink, sink_rx) = sequenced_channel();
    let stop = Arc::new(AtomicBool::new(false));
    let runner = {
        let (sink, progress, stop) = (sink.clone(), progress.clone(), stop.clone());
        std::thread::spawn(move || {
            run_sink(
                sink.as_ref(),
                sink_rx,
                &progress,
                &fast_runner(),
                stop,
                &IngestMetrics::default(),
                || 0,
            )
        })
    };
    let writer = tokio::spawn(run_wal_writer(
        wal,
        rx,
        to_sink,
        progress.clone(),
        Arc::new(Health::default()),
        WalWriterConfig::new(Duration::ZERO),
        IngestMetrics::default(),
    ));
    let mut answers = Vec::new();
    for i in 0..n {
        answers.push(handle.ingest(batch(i)).await);
    }
    drop(handle);
    stop.store(true, std::sync::atomic::Ordering::Release);
    writer.await.unwrap();
    runner.join().unwrap();
    (answers, progress)
}

/// Every record the WAL still holds, by sequence number.
fn wal_contents(dir: &std::path::Path) -> Vec<u64> {
    let mut seqs = Vec::new();
    Wal::open(dir, WalOptions { segment_bytes: 256 }, |r| seqs.push(r.seq)).unwrap();
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_that_fails_once_is_retried_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(FakeSink::default());
    sink.fail_append.lock().unwrap().insert(3, 1);
    sink.fail_append.lock().unwrap().insert(7, 2);
    *sink.fail_commits.lock().unwrap() = 0;
    let (answers, progress) = run_pipeline(dir.path(), sink.clone(), 20).await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    let state = sink.state.lock().unwrap();
    assert_eq!(
        state.committed.keys().copied().collect::<Vec<_>>(),
        (1..=20).collect::<Vec<_>>()
    );
    assert!(
        state.duplicates.is_empty(),
        "appended twice: {:?}",
        state.duplicates
    );
    assert_eq!(state.committed[&3], vec!["line 2".to_string()]);
    assert_eq!(progress.durable_seq(), 20);
    assert!(progress.is_healthy());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_that_fails_once_is_retried_and_the_watermark_waits() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(FakeSink::default());
    *sink.fail_commits.lock().unwrap() = 2;
    let (answers, progress) = run_pipeline(dir.path(), sink.clone(), 12).await;
    assert!(answers.iter().all(Result::is_ok));
    let state = sink.state.lock().unwrap();
    assert_eq!(state.committed.len(), 12);
    assert!(state.duplicates.is_empty(), "{:?}", state.duplicates);
    assert_eq!(progress.durable_seq(), 12);
}

/// The defect this crate was written to fix: a failed append used to count as applied, the
/// next commit moved the watermark past it and the WAL deleted an acknowledged batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_sink_never_lets_the_watermark_pass_an_unapplied_batch() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(FakeSink {
        fail_from: Some(5),
        ..Default::default()
    });
    let sink_for_run = sink.clone();
    // The runner stops taking batches once the store fails, so only a few submissions fit
    // in the queues before they fill; send them from a task so the test can stop it.
    let (answers, progress) = run_pipeline(dir.path(), sink_for_run, 6).await;
    // Acknowledged: in the WAL, fsynced.
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert!(
        progress.durable_seq() < 5,
        "watermark {} passed the failing batch",
        progress.durable_seq()
    );
    assert!(!progress.is_healthy());
    assert!(
        progress
            .problem()
            .unwrap()
            .contains("append failed at wal record 5")
    );
    let committed: Vec<u64> = sink
        .state
        .lock()
        .unwrap()
        .committed
        .keys()
        .copied()
        .collect();
    assert!(!committed.contains(&5));
    // Everything not committed is still in the WAL, so a restart replays it.
    let in_wal = wal_contents(dir.path());
    for seq in 5..=6 {
        assert!(
            in_wal.contains(&seq),
            "acknowledged record {seq} left the wal: {in_wal:?}"
        );
    }

    // The store works again after a restart: replay brings every acknowledged batch in.
    let healed = Arc::new(FakeSink::default());
    {
        let old = sink.state.lock().unwrap();
        healed.state.lock().unwrap().committed = old.committed.clone();
    }
    let (_, progress) = run_pipeline(dir.path(), healed.clone(), 0).await;
    let state = healed.state.lock().unwrap();
    assert_eq!(
        state.committed.keys().copied().collect::<Vec<_>>(),
        (1..=6).collect::<Vec<_>>()
    );
    assert!(state.duplicates.is_empty());
    assert_eq!(progress.durable_seq(), 6);
    assert_eq!(unready_reason(&[progress.health()]), None);
}
