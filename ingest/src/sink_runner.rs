//! Drives one [`Sink`] from the WAL writer's queue and keeps the watermark bookkeeping.
//!
//! The runner appends each batch, commits every `commit_interval`, and after a successful
//! commit publishes the sequence number of the last batch it holds as the durable watermark.
//! It keeps the uncommitted batches (at most a commit interval's worth) so that a failure
//! never costs data and never duplicates it:
//!
//! * a failed append or commit marks the sink unhealthy, rolls the store back to its last
//!   commit and appends every uncommitted batch again, with growing pauses, until that
//!   works — meanwhile nothing new is taken, the queue in front fills and clients get the
//!   protocol's retryable answer;
//! * the watermark therefore never passes a batch the store has not committed, and the WAL
//!   keeps every such batch;
//! * at shutdown a sink that still fails is retried for `shutdown_retry_budget`, then left:
//!   its batches are in the WAL and replay retries them at the next start.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::metrics::SinkMetrics;
use crate::{IngestMetrics, Sequenced, Sink, SinkProgress};

/// How the runner paces commits, housekeeping and retries.
#[derive(Debug, Clone)]
pub struct SinkRunnerConfig {
    /// Data is visible to queries after the next commit.
    pub commit_interval: Duration,
    /// How often [`Sink::maintain`] runs.
    pub maintain_interval: Duration,
    /// The first pause after a failure; doubled after each further failure.
    pub retry_backoff: Duration,
    pub max_retry_backoff: Duration,
    /// Once stopping, how long a failing sink is still retried.
    pub shutdown_retry_budget: Duration,
}

impl Default for SinkRunnerConfig {
    fn default() -> Self {
        Self {
            commit_interval: Duration::from_millis(500),
            maintain_interval: Duration::from_secs(60),
            retry_backoff: Duration::from_millis(100),
            max_retry_backoff: Duration::from_secs(5),
            shutdown_retry_budget: Duration::from_secs(5),
        }
    }
}

/// Runs `sink` until the queue closes (after a final commit) or, once `stop` is set, until a
/// sink that keeps failing has used up its retry budget. `now_ns` is the clock retention
/// reads.
pub fn run_sink<B, S: Sink<B>>(
    sink: &S,
    rx: Receiver<Sequenced<B>>,
    progress: &SinkProgress,
    config: &SinkRunnerConfig,
    stop: Arc<AtomicBool>,
    metrics: &IngestMetrics,
    now_ns: impl Fn() -> i64,
) {
    let mut runner = Runner {
        sink,
        progress,
        config,
        stop,
        stopping_since: None,
        metrics: metrics.sink(sink.name()),
        uncommitted: Vec::new(),
    };
    runner.publish(progress.durable_seq());
    runner.metrics.healthy.set(1);
    let mut last_commit = Instant::now();
    let mut last_maintain = Instant::now();
    loop {
        // With nothing to commit there is no deadline: wait for work (waking now and then
        // for housekeeping) instead of spinning on a zero timeout.
        let timeout = if runner.uncommitted.is_empty() {
            Duration::from_secs(1)
        } else {
            config.commit_interval.saturating_sub(last_commit.elapsed())
        };
        let closed = match rx.recv_timeout(timeout) {
            Ok((seq, batch)) => {
                if !runner.append(seq, batch) {
                    return;
                }
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        let due = last_commit.elapsed() >= config.commit_interval;
        if !runner.uncommitted.is_empty() && (due || closed) {
            if !runner.commit() {
                return;
            }
            last_commit = Instant::now();
        }
        if last_maintain.elapsed() >= config.maintain_interval {
            if let Err(e) = sink.maintain(now_ns()) {
                runner.metrics.count_failure("maintain");
                tracing::warn!(sink = sink.name(), error = %e, "store housekeeping failed");
            }
            last_maintain = Instant::now();
        }
        if closed {
            tracing::info!(sink = sink.name(), "sink stopped after its final commit");
            return;
        }
    }
}

struct Runner<'a, B, S> {
    sink: &'a S,
    progress: &'a SinkProgress,
    config: &'a SinkRunnerConfig,
    stop: Arc<AtomicBool>,
    stopping_since: Option<Instant>,
    metrics: SinkMetrics,
    /// Batches appended (or being retried) since the last successful commit, in WAL order.
    uncommitted: Vec<Sequenced<B>>,
}

impl<B, S: Sink<B>> Runner<'_, B, S> {
    /// Appends one batch; false when the runner must give up (stopping with a failing sink).
    fn append(&mut self, seq: u64, batch: B) -> bool {
        let started = Instant::now();
        let appended = self.sink.append(seq, &batch);
        self.metrics
            .append_seconds
            .observe(started.elapsed().as_secs_f64());
        self.uncommitted.push((seq, batch));
        match appended {
            Ok(n) => {
                self.metrics.records.inc_by(n as u64);
                true
            }
            Err(e) => {
                self.failed("append", seq, &e);
                self.restore()
            }
        }
    }

    /// Commits; on success publishes the watermark. False when the runner must give up.
    fn commit(&mut self) -> bool {
        loop {
            let started = Instant::now();
            match self.sink.commit() {
                Ok(()) => {
                    self.metrics
                        .commit_seconds
                        .observe(started.elapsed().as_secs_f64());
                    if let Some(&(last, _)) = self.uncommitted.last() {
                        self.publish(last);
                    }
                    self.uncommitted.clear();
                    self.healthy();
                    return true;
                }
                Err(e) => {
                    let last = self.uncommitted.last().map_or(0, |(seq, _)| *seq);
                    self.failed("commit", last, &e);
                    if !self.restore() {
                        return false;
                    }
                }
            }
        }
    }

    /// Rolls the store back to its last commit and appends every uncommitted batch again,
    /// pausing before each attempt, until it works. False when stopping and out of budget:
    /// the batches stay in the WAL for the next start.
    fn restore(&mut self) -> bool {
        let mut backoff = self.config.retry_backoff;
        'attempt: loop {
            if self.out_of_budget() {
                tracing::error!(
                    sink = self.sink.name(),
                    batches = self.uncommitted.len(),
                    "giving up on a failing store at shutdown; its batches stay in the wal for replay"
                );
                return false;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(self.config.max_retry_backoff);
            if let Err(e) = self.sink.rollback() {
                let last = self.uncommitted.last().map_or(0, |(seq, _)| *seq);
                self.failed("rollback", last, &e);
                continue;
            }
            for (seq, batch) in &self.uncommitted {
                if let Err(e) = self.sink.append(*seq, batch) {
                    self.failed("append", *seq, &e);
                    continue 'attempt;
                }
            }
            tracing::info!(
                sink = self.sink.name(),
                batches = self.uncommitted.len(),
                "store recovered; uncommitted batches appended again"
            );
            self.healthy();
            return true;
        }
    }

    fn out_of_budget(&mut self) -> bool {
        if !self.stop.load(Ordering::Acquire) {
            return false;
        }
        let since = *self.stopping_since.get_or_insert_with(Instant::now);
        since.elapsed() >= self.config.shutdown_retry_budget
    }

    fn publish(&self, seq: u64) {
        self.progress.set_durable(seq);
        self.metrics
            .durable_seq
            .set(self.progress.durable_seq() as i64);
    }

    fn failed(&self, operation: &'static str, seq: u64, error: &S::Error) {
        self.metrics.count_failure(operation);
        self.metrics.healthy.set(0);
        tracing::error!(
            sink = self.sink.name(),
            operation,
            seq,
            error = %error,
            "store failed; the batches stay in the wal and are retried"
        );
        self.progress.set_unhealthy(format!(
            "{} store: {operation} failed at wal record {seq}: {error}",
            self.sink.name()
        ));
    }

    fn healthy(&self) {
        self.metrics.healthy.set(1);
        self.progress.set_healthy();
    }
}
