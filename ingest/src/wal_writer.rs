//! The WAL writer: queue → write-ahead log (group commit) → acknowledgement → sink runner.
//!
//! Requests that arrive within `group_commit_delay` of each other share one fsync. A batch
//! is acknowledged only after the fsync that covers it; only then is it handed to the sink
//! runner. After every group the writer deletes the WAL segments wholly at or below the
//! sink's durable watermark.
//!
//! A failed write (a full disk) fails the WAL closed ([`Wal::repair`]): the group is refused
//! with a retryable error, the writer reports itself unhealthy (`/readyz`), and before each
//! later group — and every `repair_interval` while no group comes — it tries to repair the
//! log, which also checks that a group's worth of space is free again.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sightline_wal::Wal;
use tokio::sync::mpsc;

use crate::queue::{IngestRequest, QueueReceiver};
use crate::{Health, IngestError, IngestMetrics, SinkProgress, WalCodec};

/// A batch on its way to a sink, with its WAL sequence number.
pub type Sequenced<B> = (u64, B);

/// Batches handed from the WAL writer to the sink runner at most; beyond it the WAL writer
/// waits, the ingest queue fills and clients are told to retry. Acknowledged batches wait
/// here, so its depth bounds freshness under overload: kept short, the backlog stays in front
/// of the WAL (unacknowledged, retryable) instead of behind it.
pub const SINK_QUEUE_BATCHES: usize = 8;
/// Stop gathering a group once it holds this many batches.
const MAX_GROUP: usize = 512;

/// The bounded queue between the WAL writer and the sink runner.
pub fn sequenced_channel<B>() -> (SyncSender<Sequenced<B>>, Receiver<Sequenced<B>>) {
    sync_channel(SINK_QUEUE_BATCHES)
}

/// How the WAL writer groups, and how it recovers from a failed write.
#[derive(Debug, Clone)]
pub struct WalWriterConfig {
    /// Longest wait for other requests to share an fsync.
    pub group_commit_delay: Duration,
    /// Free space a repair checks for (written, synced and given back) before the WAL takes
    /// writes again after a failure.
    pub repair_probe_bytes: u64,
    /// How often a failed WAL is retried while no writes arrive, so that `/readyz` recovers
    /// on its own once space is freed.
    pub repair_interval: Duration,
}

impl WalWriterConfig {
    /// Groups gathered for `group_commit_delay`; repairs probe for 1 MiB every 5 s.
    pub fn new(group_commit_delay: Duration) -> Self {
        Self {
            group_commit_delay,
            repair_probe_bytes: 1 << 20,
            repair_interval: Duration::from_secs(5),
        }
    }
}

/// Runs the WAL writer until every ingest handle is dropped, then closes the sink queue
/// (dropping `to_sink`), which tells the sink runner to commit and stop. `health` is the
/// WAL's, for `/readyz`.
pub async fn run_wal_writer<B: WalCodec>(
    wal: Wal,
    mut rx: QueueReceiver<B>,
    to_sink: SyncSender<Sequenced<B>>,
    progress: Arc<SinkProgress>,
    health: Arc<Health>,
    config: WalWriterConfig,
    metrics: IngestMetrics,
) {
    let wal = Arc::new(Mutex::new(wal));
    loop {
        let first = if health.is_healthy() {
            rx.recv().await
        } else {
            match tokio::time::timeout(config.repair_interval, rx.recv()).await {
                Ok(first) => first,
                Err(_idle) => {
                    let (wal, health) = (wal.clone(), health.clone());
                    let probe = config.repair_probe_bytes;
                    let _ = tokio::task::spawn_blocking(move || {
                        let mut wal = wal.lock().unwrap_or_else(|p| p.into_inner());
                        repair(&mut wal, probe, &health);
                    })
                    .await;
                    continue;
                }
            }
        };
        let Some(first) = first else { break };
        let group = gather_group(first, &mut rx, config.group_commit_delay).await;
        let wal = wal.clone();
        let to_sink = to_sink.clone();
        let progress = progress.clone();
        let health = health.clone();
        let metrics = metrics.clone();
        let probe = config.repair_probe_bytes;
        // Appending and fsync block; the group's batches move to the blocking thread and on
        // to the sink without copies.
        let outcome = tokio::task::spawn_blocking(move || {
            let mut wal = wal.lock().unwrap_or_else(|p| p.into_inner());
            if !repair(&mut wal, probe, &health) {
                let reason = IngestError::Storage(wal.failure().unwrap_or_default().to_string());
                for req in group {
                    let _ = req.ack.send(Err(reason.clone()));
                }
                return;
            }
            write_group(&mut wal, group, &to_sink, &metrics);
            match wal.failure() {
                Some(reason) => {
                    health.set_unhealthy(format!("wal cannot persist writes: {reason}"))
                }
                None => health.set_healthy(),
            }
            if let Err(e) = wal.remove_through(progress.durable_seq()) {
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

/// Repairs a failed WAL; true when it takes writes (again), and `health` says so.
fn repair(wal: &mut Wal, probe_bytes: u64, health: &Health) -> bool {
    if wal.failure().is_none() {
        return true;
    }
    match wal.repair(probe_bytes) {
        Ok(()) => {
            health.set_healthy();
            true
        }
        Err(e) => {
            tracing::debug!(error = %e, "wal repair failed");
            health.set_unhealthy(format!(
                "wal cannot persist writes: {}",
                wal.failure().unwrap_or_default()
            ));
            false
        }
    }
}

/// Appends, fsyncs, acknowledges and forwards one group. After a failed write the WAL
/// refuses the rest of the group and the sync, so nothing of it is acknowledged.
fn write_group<B: WalCodec>(
    wal: &mut Wal,
    group: Vec<IngestRequest<B>>,
    to_sink: &SyncSender<Sequenced<B>>,
    metrics: &IngestMetrics,
) {
    let mut sequenced = Vec::with_capacity(group.len());
    let mut acks = Vec::with_capacity(group.len());
    for req in group {
        let payload = req.batch.encode();
        match wal.append(B::RECORD_KIND, &payload) {
            Ok(seq) => {
                metrics.wal_written_bytes.inc_by(payload.len() as u64);
                sequenced.push((seq, req.batch));
                acks.push(req.ack);
            }
            Err(e) => {
                tracing::error!(error = %e, "wal append failed; batch not acknowledged");
                let _ = req.ack.send(Err(IngestError::Storage(e.to_string())));
            }
        }
    }
    let started = Instant::now();
    let synced = wal.sync();
    metrics
        .wal_fsync_seconds
        .observe(started.elapsed().as_secs_f64());
    if let Err(e) = synced {
        tracing::error!(error = %e, "wal fsync failed; batches not acknowledged");
        for ack in acks {
            let _ = ack.send(Err(IngestError::Storage(e.to_string())));
        }
        return;
    }
    for ack in acks {
        // A client that went away no longer needs its answer.
        let _ = ack.send(Ok(()));
    }
    for item in sequenced {
        // Blocks while the sink runner is behind (or retrying a failing store): the ingest
        // queue then fills and clients get the retryable answer.
        if to_sink.send(item).is_err() {
            tracing::error!("sink runner stopped; acknowledged batches stay in the wal for replay");
            break;
        }
    }
}

/// `first` and the requests that arrive within `delay` after it (at most [`MAX_GROUP`]): the
/// group that shares one fsync.
pub(crate) async fn gather_group<T>(
    first: T,
    rx: &mut mpsc::Receiver<T>,
    delay: Duration,
) -> Vec<T> {
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
