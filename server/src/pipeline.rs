//! The ingest pipeline behind the receivers: queue → WAL (group commit) → acknowledgement →
//! indexer (periodic commit) → WAL segment deletion.
//!
//! ```text
//! receivers ──IngestHandle──► wal writer task ──(seq, batch)──► indexer thread
//!      ▲                        │ append, fsync                  │ add, commit every interval
//!      └──────── ack ◄──────────┘                                └─► durable watermark ─► WAL deletes segments
//! ```
//!
//! Acknowledgement follows fsync, so `kill -9` loses nothing acknowledged; segments are
//! deleted only below the watermark the indexer publishes after a commit.
//!
//! Metrics take a parallel path with the same guarantees: metric receivers → their own queue
//! → metric writer → `Tsdb::append` (the TSDB's own WAL, fsynced per group, then the
//! in-memory head) → acknowledgement with the store's report. The TSDB has its own WAL
//! because its head holds hours of samples: sharing the log WAL would pin log segments for
//! as long.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use sightline_collector::{IngestError, IngestRequest, MetricIngestRequest};
use sightline_indexer::LogStore;
use sightline_model::{LogBatch, MetricBatch};
use sightline_tsdb::Tsdb;
use sightline_wal::{Wal, WalOptions, WalRecord};
use tokio::sync::mpsc;

use crate::metrics::ServerMetrics;

/// WAL record kind of a postcard-encoded [`LogBatch`].
pub const RECORD_KIND_LOG_BATCH: u8 = 1;
/// Batches handed from the WAL writer to the indexer at most; beyond it the WAL writer waits,
/// the ingest queue fills and clients are told to retry. Acknowledged batches wait here, so
/// its depth bounds freshness under overload: kept short, the backlog stays in front of the
/// WAL (unacknowledged, retryable) instead of behind it.
const INDEXER_QUEUE: usize = 8;
/// Stop gathering a group once it holds this many batches.
const MAX_GROUP: usize = 512;

pub fn encode_batch(batch: &LogBatch) -> Vec<u8> {
    // Serialising plain owned data into a Vec cannot fail.
    postcard::to_allocvec(batch).expect("log batch serialises")
}

pub fn decode_batch(payload: &[u8]) -> anyhow::Result<LogBatch> {
    postcard::from_bytes(payload).context("undecodable log batch in wal")
}

/// Opens the WAL and replays it into the store, then commits. Returns the open WAL.
pub fn recover(wal_dir: &Path, options: WalOptions, store: &LogStore) -> anyhow::Result<Wal> {
    let started = Instant::now();
    let mut replayed = 0u64;
    let mut failure: Option<anyhow::Error> = None;
    let mut wal = Wal::open(wal_dir, options, |record: WalRecord| {
        if failure.is_some() || record.kind != RECORD_KIND_LOG_BATCH {
            return;
        }
        let result = decode_batch(&record.payload)
            .and_then(|batch| Ok(store.add_batch(record.seq, &batch)?));
        match result {
            Ok(n) => replayed += n as u64,
            Err(e) => failure = Some(e.context(format!("replaying wal record {}", record.seq))),
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    store.commit()?;
    let watermark = wal.next_seq() - 1;
    wal.remove_through(watermark)?;
    tracing::info!(
        replayed,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "wal replay done"
    );
    Ok(wal)
}

/// Shared progress markers.
#[derive(Debug, Default)]
pub struct Watermarks {
    /// Every WAL record with a sequence number up to this is committed in the index.
    pub durable_seq: AtomicU64,
    pub ready: AtomicBool,
}

/// Runs the WAL writer until every ingest handle is dropped, then closes the indexer queue.
pub async fn run_wal_writer(
    wal: Wal,
    mut rx: mpsc::Receiver<IngestRequest>,
    to_indexer: SyncSender<SequencedBatch>,
    group_commit_delay: Duration,
    watermarks: Arc<Watermarks>,
    metrics: ServerMetrics,
) {
    let wal = Arc::new(Mutex::new(wal));
    while let Some(first) = rx.recv().await {
        let group = gather_group(first, &mut rx, group_commit_delay).await;
        let wal = wal.clone();
        let to_indexer = to_indexer.clone();
        let watermarks = watermarks.clone();
        let metrics = metrics.clone();
        // Appending and fsync block; the group's batches move to the blocking thread and on
        // to the indexer without copies.
        let outcome = tokio::task::spawn_blocking(move || {
            let mut wal = wal.lock().unwrap_or_else(|p| p.into_inner());
            let mut sequenced = Vec::with_capacity(group.len());
            let mut acks = Vec::with_capacity(group.len());
            let mut failed: Option<String> = None;
            for req in group {
                let payload = encode_batch(&req.batch);
                match wal.append(RECORD_KIND_LOG_BATCH, &payload) {
                    Ok(seq) => {
                        metrics.wal_bytes.inc_by(payload.len() as u64);
                        sequenced.push((seq, req.batch));
                        acks.push(req.ack);
                    }
                    Err(e) => {
                        failed.get_or_insert(e.to_string());
                        let _ = req.ack.send(Err(IngestError::Storage(e.to_string())));
                    }
                }
            }
            let started = Instant::now();
            let synced = wal.sync();
            metrics
                .wal_fsync_seconds
                .observe(started.elapsed().as_secs_f64());
            match synced {
                Ok(()) => {
                    for ack in acks {
                        // A client that went away no longer needs its answer.
                        let _ = ack.send(Ok(()));
                    }
                    for item in sequenced {
                        if to_indexer.send(item).is_err() {
                            tracing::error!(
                                "indexer stopped; acknowledged batches stay in the wal for replay"
                            );
                            break;
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "wal fsync failed; batches not acknowledged");
                    for ack in acks {
                        let _ = ack.send(Err(IngestError::Storage(e.to_string())));
                    }
                }
            }
            if let Some(e) = failed {
                tracing::error!(error = %e, "wal append failed");
            }
            let durable = watermarks.durable_seq.load(Ordering::Acquire);
            if let Err(e) = wal.remove_through(durable) {
                tracing::warn!(error = %e, "could not delete wal segments");
            }
        })
        .await;
        if let Err(e) = outcome {
            tracing::error!(error = %e, "wal writer task failed");
        }
    }
    tracing::info!("wal writer stopped");
}

/// `first` and the requests that arrive within `delay` after it (at most [`MAX_GROUP`]): the
/// group that shares one fsync.
async fn gather_group<T>(first: T, rx: &mut mpsc::Receiver<T>, delay: Duration) -> Vec<T> {
    let mut group = vec![first];
    while group.len() < MAX_GROUP {
        match rx.try_recv() {
            Ok(r) => group.push(r),
            Err(_) => break,
        }
    }
    if !delay.is_zero() && group.len() < MAX_GROUP {
        let deadline = tokio::time::Instant::now() + delay;
        while group.len() < MAX_GROUP {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(r)) => group.push(r),
                Ok(None) | Err(_) => break,
            }
        }
    }
    group
}

/// Runs the metric writer until every metric ingest handle is dropped: groups requests,
/// appends each group to the TSDB (one WAL fsync per group, inside `Tsdb::append`) and
/// answers each request with what the store accepted and refused.
pub async fn run_metric_writer(
    tsdb: Arc<Tsdb>,
    mut rx: mpsc::Receiver<MetricIngestRequest>,
    group_commit_delay: Duration,
    metrics: ServerMetrics,
) {
    while let Some(first) = rx.recv().await {
        let group = gather_group(first, &mut rx, group_commit_delay).await;
        let tsdb = tsdb.clone();
        let metrics = metrics.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let (batches, acks): (Vec<MetricBatch>, Vec<_>) =
                group.into_iter().map(|r| (r.batch, r.ack)).unzip();
            let refs: Vec<&MetricBatch> = batches.iter().collect();
            let started = Instant::now();
            let appended = tsdb.append(&refs);
            metrics
                .tsdb_append_seconds
                .observe(started.elapsed().as_secs_f64());
            match appended {
                Ok(reports) => {
                    for (ack, report) in acks.into_iter().zip(reports) {
                        // A client that went away no longer needs its answer.
                        let _ = ack.send(Ok(report));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "tsdb append failed; samples not acknowledged");
                    for ack in acks {
                        let _ = ack.send(Err(IngestError::Storage(e.to_string())));
                    }
                }
            }
        })
        .await;
        if let Err(e) = outcome {
            tracing::error!(error = %e, "metric writer task failed");
        }
    }
    tracing::info!("metric writer stopped");
}

/// TSDB housekeeping every `interval` until `stop` turns true: head → blocks, compaction,
/// retention, WAL truncation.
pub async fn run_tsdb_maintenance(
    tsdb: Arc<Tsdb>,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let tsdb = tsdb.clone();
        let now_ms = crate::now_ns() / 1_000_000;
        match tokio::task::spawn_blocking(move || tsdb.maintain(now_ms)).await {
            Ok(Ok(report)) => tracing::debug!(?report, "tsdb maintenance done"),
            Ok(Err(e)) => tracing::warn!(error = %e, "tsdb maintenance failed"),
            Err(e) => tracing::error!(error = %e, "tsdb maintenance task failed"),
        }
    }
}

/// A batch on its way to the indexer, with its WAL sequence number.
pub type SequencedBatch = (u64, LogBatch);

/// Creates the bounded queue between the WAL writer and the indexer.
pub fn indexer_queue() -> (SyncSender<SequencedBatch>, Receiver<SequencedBatch>) {
    sync_channel(INDEXER_QUEUE)
}

/// The indexer loop (a plain thread): adds batches, commits every `commit_interval`,
/// publishes the durable watermark, applies retention. Returns when the queue closes, after
/// a final commit.
pub fn run_indexer(
    store: Arc<LogStore>,
    rx: Receiver<SequencedBatch>,
    commit_interval: Duration,
    watermarks: Arc<Watermarks>,
    metrics: ServerMetrics,
) {
    let mut last_commit = Instant::now();
    let mut last_retention = Instant::now();
    let mut added_seq = watermarks.durable_seq.load(Ordering::Acquire);
    let mut dirty = false;
    loop {
        // With nothing to commit there is no deadline: wait for work (waking now and then
        // for retention) instead of spinning on a zero timeout.
        let timeout = if dirty {
            commit_interval.saturating_sub(last_commit.elapsed())
        } else {
            Duration::from_secs(1)
        };
        let closed = match rx.recv_timeout(timeout) {
            Ok((seq, batch)) => {
                match store.add_batch(seq, &batch) {
                    Ok(n) => {
                        metrics.index_documents.inc_by(n as u64);
                    }
                    // The batch stays in the WAL and is retried on the next start.
                    Err(e) => tracing::error!(error = %e, seq, "indexing failed"),
                }
                added_seq = seq;
                dirty = true;
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        if (dirty && last_commit.elapsed() >= commit_interval) || closed {
            let started = Instant::now();
            match store.commit() {
                Ok(_) => {
                    metrics
                        .index_commit_seconds
                        .observe(started.elapsed().as_secs_f64());
                    watermarks.durable_seq.store(added_seq, Ordering::Release);
                }
                Err(e) => tracing::error!(error = %e, "index commit failed"),
            }
            last_commit = Instant::now();
            dirty = false;
        }
        if last_retention.elapsed() > Duration::from_secs(60) {
            let now_ns = crate::now_ns();
            if let Err(e) = store.apply_retention(now_ns) {
                tracing::warn!(error = %e, "retention failed");
            }
            last_retention = Instant::now();
        }
        if closed {
            tracing::info!("indexer stopped after final commit");
            return;
        }
    }
}
