//! The bounded hand-off from receivers to the durable path.
//!
//! A receiver holds an [`IngestHandle`] and calls [`IngestHandle::ingest`], which resolves
//! once the batch is durable (answered with `R`, the store's report where it has one) or
//! refused. The handle hides which queue is behind it ([`IngestQueue`]): the single-node
//! [`LocalQueue`] is a bounded channel to the WAL writer; a distributed queue (NATS
//! JetStream, where the publish acknowledgement is the durability point) implements the same
//! trait, so receivers and stores do not change. A full queue answers
//! [`IngestError::Overloaded`] at once — the receiver turns it into the protocol's retryable
//! error — so memory stays bounded under overload.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sightline_model::{AppendReport, LogBatch, MetricBatch};
use tokio::sync::{mpsc, oneshot};

use crate::IngestError;

/// The answer to one submitted batch, once it is durable or refused.
pub type Submission<R> = Pin<Box<dyn Future<Output = Result<R, IngestError>> + Send>>;

/// A durable queue receivers submit batches to.
pub trait IngestQueue<B, R>: Send + Sync + fmt::Debug {
    /// Queues `batch`. Refusals that need no waiting (a full queue, a closed one) are decided
    /// before this returns; the returned future resolves when the batch is durable.
    fn submit(&self, batch: B) -> Submission<R>;
}

/// Cloneable sender side of an ingest queue, what every receiver holds.
#[derive(Debug)]
pub struct IngestHandle<B = LogBatch, R = ()> {
    queue: Arc<dyn IngestQueue<B, R>>,
}

/// The metric ingest queue: batches of samples, answered with what the store accepted.
pub type MetricIngestHandle = IngestHandle<MetricBatch, AppendReport>;
/// One metric batch waiting for the TSDB.
pub type MetricIngestRequest = IngestRequest<MetricBatch, AppendReport>;

impl<B, R> Clone for IngestHandle<B, R> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<B, R> IngestHandle<B, R> {
    /// A handle over any queue implementation.
    pub fn new(queue: Arc<dyn IngestQueue<B, R>>) -> Self {
        Self { queue }
    }

    /// Queues `batch` and waits until it is durable. Fails fast when the queue is full.
    pub async fn ingest(&self, batch: B) -> Result<R, IngestError> {
        self.queue.submit(batch).await
    }

    /// Queues `batch` now (whether or not the answer is awaited) and returns the answer.
    pub fn submit(&self, batch: B) -> Submission<R> {
        self.queue.submit(batch)
    }
}

impl<B: Send + fmt::Debug + 'static, R: Send + fmt::Debug + 'static> IngestHandle<B, R> {
    /// A handle over a new [`LocalQueue`] of `capacity` batches, and the queue's receiving
    /// end for the writer.
    pub fn channel(capacity: usize) -> (Self, QueueReceiver<B, R>) {
        let (queue, rx) = LocalQueue::new(capacity);
        (Self::new(Arc::new(queue)), rx)
    }
}

/// One batch waiting for the writer, with the channel its acknowledgement goes back on.
#[derive(Debug)]
pub struct IngestRequest<B = LogBatch, R = ()> {
    pub batch: B,
    pub ack: oneshot::Sender<Result<R, IngestError>>,
}

/// The receiving end of a [`LocalQueue`], read by the WAL writer or a direct writer.
pub type QueueReceiver<B = LogBatch, R = ()> = mpsc::Receiver<IngestRequest<B, R>>;

/// The single-node queue: a bounded channel in front of the writer.
#[derive(Debug)]
pub struct LocalQueue<B, R> {
    tx: mpsc::Sender<IngestRequest<B, R>>,
}

impl<B, R> LocalQueue<B, R> {
    /// A queue of `capacity` batches and its receiving end.
    pub fn new(capacity: usize) -> (Self, QueueReceiver<B, R>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self { tx }, rx)
    }
}

impl<B, R> IngestQueue<B, R> for LocalQueue<B, R>
where
    B: Send + fmt::Debug + 'static,
    R: Send + fmt::Debug + 'static,
{
    fn submit(&self, batch: B) -> Submission<R> {
        let (ack, done) = oneshot::channel();
        let queued = self
            .tx
            .try_send(IngestRequest { batch, ack })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => IngestError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => IngestError::ShuttingDown,
            });
        Box::pin(async move {
            queued?;
            // A writer that drops the answer channel is stopping.
            done.await.map_err(|_| IngestError::ShuttingDown)?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_queue_is_overload_not_a_wait() {
        let (h, mut rx) = IngestHandle::<LogBatch, ()>::channel(1);
        let h2 = h.clone();
        let first = tokio::spawn(async move { h2.ingest(LogBatch::default()).await });
        while rx.is_empty() {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            h.ingest(LogBatch::default()).await,
            Err(IngestError::Overloaded)
        );
        let req = rx.recv().await.unwrap();
        req.ack.send(Ok(())).unwrap();
        assert_eq!(first.await.unwrap(), Ok(()));
    }

    #[tokio::test]
    async fn closed_queue_is_shutting_down() {
        let (h, rx) = IngestHandle::<LogBatch, ()>::channel(4);
        drop(rx);
        assert_eq!(
            h.ingest(LogBatch::default()).await,
            Err(IngestError::ShuttingDown)
        );
    }

    #[tokio::test]
    async fn dropped_answer_is_shutting_down() {
        let (h, mut rx) = IngestHandle::<LogBatch, ()>::channel(4);
        let pending = tokio::spawn(async move { h.ingest(LogBatch::default()).await });
        drop(rx.recv().await.unwrap());
        assert_eq!(pending.await.unwrap(), Err(IngestError::ShuttingDown));
    }
}
