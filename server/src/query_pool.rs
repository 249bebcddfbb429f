//! The threads queries run on: a fixed number (`[limits] max_concurrent_queries`, one per
//! core but one by default), at a lower scheduling priority than ingest, behind a bounded
//! queue.
//!
//! Queries are the work a client can make arbitrarily expensive; ingest is the work that
//! must not wait (an acknowledged batch is an fsync behind it). On tokio's shared blocking
//! pool a storm of heavy queries took every core and ingest latency rose tenfold. Here at
//! most N queries run at once, each thread at `nice` +10 (Linux applies nice per thread), so
//! the scheduler gives ingest threads about ten times their share when both want a core; a
//! query whose client left while it waited is dropped without running.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use sightline_model::Cancellation;

type Job = Box<dyn FnOnce() + Send>;

/// Nice value of query threads: ingest runs at 0.
const QUERY_NICE: i32 = 10;

/// A bounded set of low-priority query threads.
#[derive(Debug, Clone)]
pub struct QueryPool {
    queue: SyncSender<Job>,
    threads: usize,
    max_queued: usize,
}

/// Why a query did not run.
#[derive(Debug)]
pub enum NotRun {
    /// The queue was full: too many queries waiting.
    QueueFull { threads: usize, max_queued: usize },
    /// The pool stopped, or the work panicked.
    Failed,
}

impl QueryPool {
    /// Starts `threads` threads with `stack_bytes` stacks and a queue of `max_queued`.
    pub fn start(threads: usize, max_queued: usize, stack_bytes: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let (queue, jobs) = sync_channel::<Job>(max_queued);
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..threads {
            let jobs = jobs.clone();
            std::thread::Builder::new()
                .name(format!("query-{i}"))
                .stack_size(stack_bytes)
                .spawn(move || worker(&jobs))?;
        }
        Ok(Self {
            queue,
            threads,
            max_queued,
        })
    }

    /// Runs `work` on a query thread unless `cancel` has fired by the time it is its turn.
    pub async fn run<T: Send + 'static>(
        &self,
        cancel: &Cancellation,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, NotRun> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let cancel = cancel.clone();
        let job: Job = Box::new(move || {
            // Its client went away, it timed out or the server stops: do not start.
            if cancel.stopped().is_some() {
                return;
            }
            let _ = tx.send(work());
        });
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(NotRun::QueueFull {
                    threads: self.threads,
                    max_queued: self.max_queued,
                });
            }
            Err(TrySendError::Disconnected(_)) => return Err(NotRun::Failed),
        }
        rx.await.map_err(|_| NotRun::Failed)
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        let job = {
            let jobs = jobs.lock().unwrap_or_else(|p| p.into_inner());
            jobs.recv()
        };
        let Ok(job) = job else { return };
        // A panicking query must not take its thread with it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

/// Lowers this thread's scheduling priority (Linux: nice is per thread, so the thread id
/// names this thread alone).
fn lower_priority() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), QUERY_NICE) {
        tracing::debug!(error = %e, "cannot lower the query thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn runs_work_skips_cancelled_work_and_refuses_beyond_the_queue() {
        let pool = QueryPool::start(1, 1, 1 << 20).unwrap();
        let live = Cancellation::new();
        assert_eq!(pool.run(&live, || 2 + 2).await.unwrap(), 4);

        // Occupy the one thread, fill the one queue slot; the next is refused.
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let busy = {
            let pool = pool.clone();
            let live = live.clone();
            tokio::spawn(async move { pool.run(&live, move || wait.recv().ok()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let ran = Arc::new(AtomicUsize::new(0));
        let gone = Cancellation::new();
        let queued = {
            let (pool, gone, ran) = (pool.clone(), gone.clone(), ran.clone());
            tokio::spawn(async move {
                pool.run(&gone, move || ran.fetch_add(1, Ordering::SeqCst))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let refused = pool.run(&live, || ()).await;
        assert!(matches!(
            refused,
            Err(NotRun::QueueFull {
                threads: 1,
                max_queued: 1
            })
        ));
        // The queued query's client leaves before its turn: it never runs.
        gone.cancel();
        release.send(()).unwrap();
        assert!(busy.await.unwrap().is_ok());
        assert!(matches!(queued.await.unwrap(), Err(NotRun::Failed)));
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }
}
