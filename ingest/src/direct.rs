//! The path of stores that keep their own write-ahead log (the TSDB: its head holds hours of
//! samples, which would pin the shared WAL's segments for as long).
//!
//! Queued batches are gathered into groups as the WAL writer does, and each group is appended
//! with one call: the store makes it durable (its own WAL, one fsync) before returning, and
//! each request is answered with the store's report for its batch (samples refused as out of
//! order or over a limit are known only then).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::queue::QueueReceiver;
use crate::wal_writer::gather_group;
use crate::{IngestError, IngestMetrics, SinkProgress};

/// A store that is durable when its append returns.
pub trait DurableSink<B, R>: Send + Sync + 'static {
    type Error: std::error::Error + Send + Sync + 'static;

    /// A short name for logs, metrics and `/readyz` (`metrics`).
    fn name(&self) -> &'static str;

    /// Appends a group of batches durably; one report per batch, in order.
    fn append_durable(&self, group: &[&B]) -> Result<Vec<R>, Self::Error>;
}

/// Runs the direct writer until every handle of the queue is dropped. A failed group is
/// answered with a storage error (nothing of it was acknowledged) and marks the store
/// unhealthy until a group succeeds again.
pub async fn run_direct_writer<B, R, S>(
    sink: Arc<S>,
    mut rx: QueueReceiver<B, R>,
    progress: Arc<SinkProgress>,
    group_commit_delay: Duration,
    metrics: IngestMetrics,
) where
    B: Send + 'static,
    R: Send + 'static,
    S: DurableSink<B, R>,
{
    let metrics = metrics.sink(sink.name());
    metrics.healthy.set(1);
    while let Some(first) = rx.recv().await {
        let group = gather_group(first, &mut rx, group_commit_delay).await;
        let sink = sink.clone();
        let progress = progress.clone();
        let metrics = metrics.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let (batches, acks): (Vec<B>, Vec<_>) =
                group.into_iter().map(|r| (r.batch, r.ack)).unzip();
            let refs: Vec<&B> = batches.iter().collect();
            let started = Instant::now();
            let appended = sink.append_durable(&refs);
            metrics
                .append_seconds
                .observe(started.elapsed().as_secs_f64());
            match appended {
                Ok(reports) => {
                    progress.set_healthy();
                    metrics.healthy.set(1);
                    for (ack, report) in acks.into_iter().zip(reports) {
                        // A client that went away no longer needs its answer.
                        let _ = ack.send(Ok(report));
                    }
                }
                Err(e) => {
                    metrics.count_failure("append");
                    metrics.healthy.set(0);
                    tracing::error!(sink = sink.name(), error = %e, "store append failed; batches not acknowledged");
                    progress.set_unhealthy(format!("{} store: append failed: {e}", sink.name()));
                    for ack in acks {
                        let _ = ack.send(Err(IngestError::Storage(e.to_string())));
                    }
                }
            }
        })
        .await;
        if let Err(e) = outcome {
            tracing::error!(error = %e, "direct writer task failed");
        }
    }
    tracing::info!(sink = sink.name(), "direct writer stopped");
}
