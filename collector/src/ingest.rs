//! The hand-off from receivers to the write-ahead log.
//!
//! Receivers send a batch with a one-shot reply channel; the WAL writer (in the server)
//! appends, fsyncs in groups and replies. Logs use [`IngestHandle`] (reply `()`); metrics use
//! [`MetricIngestHandle`], whose reply is the store's [`AppendReport`] (samples refused as out
//! of order or over a limit are known only when the store appends them). The channel is bounded: when it is full the
//! receiver gets [`IngestError::Overloaded`] at once and answers with the protocol's
//! retryable error, so memory stays bounded under overload.

use sightline_model::{AppendReport, LogBatch, MetricBatch};
use tokio::sync::{mpsc, oneshot};

/// Why a batch was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("ingest queue is full, retry later")]
    Overloaded,
    #[error("server is shutting down")]
    ShuttingDown,
    #[error("write-ahead log failed: {0}")]
    Storage(String),
}

/// One batch waiting for the WAL, with the channel its acknowledgement goes back on.
#[derive(Debug)]
pub struct IngestRequest<B = LogBatch, R = ()> {
    pub batch: B,
    pub ack: oneshot::Sender<Result<R, IngestError>>,
}

/// Cloneable sender side of the ingest queue.
#[derive(Debug)]
pub struct IngestHandle<B = LogBatch, R = ()> {
    tx: mpsc::Sender<IngestRequest<B, R>>,
}

/// The metric ingest queue: batches of samples, answered with what the store accepted.
pub type MetricIngestHandle = IngestHandle<MetricBatch, AppendReport>;
/// One metric batch waiting for the TSDB's WAL.
pub type MetricIngestRequest = IngestRequest<MetricBatch, AppendReport>;

impl<B, R> Clone for IngestHandle<B, R> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<B, R> IngestHandle<B, R> {
    /// A handle and the receiving end of a queue of `capacity` batches.
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<IngestRequest<B, R>>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Self { tx }, rx)
    }

    /// Queues `batch` and waits until it is durable. Fails fast when the queue is full.
    pub async fn ingest(&self, batch: B) -> Result<R, IngestError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .try_send(IngestRequest { batch, ack })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => IngestError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => IngestError::ShuttingDown,
            })?;
        done.await.map_err(|_| IngestError::ShuttingDown)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_queue_is_overload_not_a_wait() {
        let (h, mut rx) = IngestHandle::channel(1);
        let h2 = h.clone();
        let first = tokio::spawn(async move { h2.ingest(LogBatch::default()).await });
        tokio::task::yield_now().await;
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
}
