//! Taps: something that learns from every batch on its way in, durably, before the batch is
//! acknowledged (the topology learns the estate from the resources of every signal).
//!
//! [`TappedQueue`] wraps any [`IngestQueue`]: it shows each batch to its [`Tap`] before
//! queuing it, and answers once both the batch and what the tap made of it are durable. A tap
//! that learned nothing new returns no future, and the batch's answer is the queue's alone.
//! A tap's failure fails the request with the tap's error, so that nothing the client saw
//! acknowledged was lost to the tap either; the client's retry resubmits both.

use std::fmt;
use std::sync::Arc;

use crate::IngestError;
use crate::queue::{IngestQueue, Submission};

/// Learns from batches before they are queued.
pub trait Tap<B>: Send + Sync {
    /// Looks at `batch`; returns a future that resolves once what was learned is durable, or
    /// `None` when nothing new was learned. Must be cheap when nothing is new.
    fn observe(&self, batch: &B) -> Option<Submission<()>>;
}

/// An [`IngestQueue`] whose batches a [`Tap`] sees first.
pub struct TappedQueue<B, R> {
    inner: Arc<dyn IngestQueue<B, R>>,
    tap: Arc<dyn Tap<B>>,
}

impl<B, R> TappedQueue<B, R> {
    pub fn new(inner: Arc<dyn IngestQueue<B, R>>, tap: Arc<dyn Tap<B>>) -> Self {
        Self { inner, tap }
    }
}

impl<B, R> fmt::Debug for TappedQueue<B, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TappedQueue")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<B: Send + 'static, R: Send + 'static> IngestQueue<B, R> for TappedQueue<B, R> {
    fn submit(&self, batch: B) -> Submission<R> {
        let learned = self.tap.observe(&batch);
        let queued = self.inner.submit(batch);
        match learned {
            None => queued,
            Some(learned) => Box::pin(async move {
                let (answer, learned): (Result<R, IngestError>, Result<(), IngestError>) =
                    tokio::join!(queued, learned);
                let answer = answer?;
                learned?;
                Ok(answer)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::IngestHandle;

    struct Learner {
        seen: Mutex<Vec<u32>>,
        fail: bool,
    }

    impl Tap<u32> for Learner {
        fn observe(&self, batch: &u32) -> Option<Submission<()>> {
            self.seen.lock().unwrap().push(*batch);
            let fail = self.fail;
            batch.is_multiple_of(2).then(|| {
                Box::pin(async move {
                    if fail {
                        Err(IngestError::Overloaded)
                    } else {
                        Ok(())
                    }
                }) as Submission<()>
            })
        }
    }

    #[tokio::test]
    async fn the_tap_sees_every_batch_and_its_failure_fails_the_request() {
        for fail in [false, true] {
            let (queue, mut rx) = crate::LocalQueue::<u32, u32>::new(8);
            let learner = Arc::new(Learner {
                seen: Mutex::new(vec![]),
                fail,
            });
            let handle =
                IngestHandle::new(Arc::new(TappedQueue::new(Arc::new(queue), learner.clone())));
            let writer = tokio::spawn(async move {
                while let Some(req) = rx.recv().await {
                    let _ = req.ack.send(Ok(req.batch * 10));
                }
            });
            assert_eq!(handle.ingest(1).await.unwrap(), 10);
            let even = handle.ingest(2).await;
            if fail {
                assert!(matches!(even, Err(IngestError::Overloaded)), "{even:?}");
            } else {
                assert_eq!(even.unwrap(), 20);
            }
            assert_eq!(*learner.seen.lock().unwrap(), [1, 2]);
            drop(handle);
            writer.await.unwrap();
        }
    }
}
