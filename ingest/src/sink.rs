//! The contract between the durable path and a store.
//!
//! A store that indexes what the WAL holds implements [`Sink`]: the runner
//! ([`crate::sink_runner`]) appends each batch with its WAL sequence number, commits now and
//! then, and publishes a *durable watermark* — the highest sequence number such that every
//! batch at or below it is committed in the store. The WAL deletes segments only below that
//! watermark, so a batch the store has not committed is always still in the WAL.
//!
//! Exactly once: after a crash the WAL is replayed from the watermark, and the store must
//! skip batches it already committed (the log store keeps the highest committed sequence per
//! split in the commit itself). After a failed append or commit the runner calls
//! [`Sink::rollback`] and appends every uncommitted batch again, so the store must discard
//! everything appended since its last commit.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A store fed from the WAL.
pub trait Sink<B>: Send + Sync {
    type Error: std::error::Error + Send + Sync + 'static;

    /// A short name for logs, metrics and `/readyz` (`logs`, `spans`).
    fn name(&self) -> &'static str;

    /// Applies `batch`, which is in the WAL at `seq`. Not durable until [`Sink::commit`];
    /// returns how many records it added (0 for a batch replay already committed).
    fn append(&self, seq: u64, batch: &B) -> Result<usize, Self::Error>;

    /// Makes everything appended so far durable: after `Ok`, a restart must not need any
    /// appended batch again.
    fn commit(&self) -> Result<(), Self::Error>;

    /// Discards everything appended since the last successful commit.
    fn rollback(&self) -> Result<(), Self::Error>;

    /// Housekeeping the runner calls about once a minute (retention).
    fn maintain(&self, now_ns: i64) -> Result<(), Self::Error> {
        let _ = now_ns;
        Ok(())
    }
}

/// Whether one part of the durable path (a store, the WAL) takes writes, and if not, why:
/// what `/readyz` reports.
#[derive(Debug)]
pub struct Health {
    healthy: AtomicBool,
    problem: Mutex<Option<String>>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            healthy: AtomicBool::new(true),
            problem: Mutex::new(None),
        }
    }
}

impl Health {
    /// False while failing; [`Health::problem`] says why.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// The last failure while unhealthy.
    pub fn problem(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn set_unhealthy(&self, problem: String) {
        *self.problem.lock().unwrap_or_else(|p| p.into_inner()) = Some(problem);
        self.healthy.store(false, Ordering::Release);
    }

    pub(crate) fn set_healthy(&self) {
        if !self.healthy.swap(true, Ordering::AcqRel) {
            *self.problem.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }
}

/// What one sink has made durable, and whether it is working: shared between the runner,
/// the WAL writer (which truncates below the watermark) and `/readyz`.
#[derive(Debug, Default)]
pub struct SinkProgress {
    durable_seq: AtomicU64,
    health: Health,
}

impl SinkProgress {
    /// Progress starting at `durable_seq` (what replay committed), healthy.
    pub fn new(durable_seq: u64) -> Self {
        Self {
            durable_seq: AtomicU64::new(durable_seq),
            health: Health::default(),
        }
    }

    /// Every WAL record up to this sequence number is committed in the store.
    pub fn durable_seq(&self) -> u64 {
        self.durable_seq.load(Ordering::Acquire)
    }

    /// Publishes a watermark: every WAL record up to `seq` is committed in the store (the
    /// runner after each commit; the server after replay).
    pub fn set_durable(&self, seq: u64) {
        // Never backwards: a stale publish must not let the WAL keep less than it should,
        // and a smaller value is never a correct watermark once a larger one was published.
        self.durable_seq.fetch_max(seq, Ordering::AcqRel);
    }

    /// The store's health.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// False while the sink keeps failing; [`SinkProgress::problem`] says why.
    pub fn is_healthy(&self) -> bool {
        self.health.is_healthy()
    }

    /// The last failure while unhealthy.
    pub fn problem(&self) -> Option<String> {
        self.health.problem()
    }

    pub(crate) fn set_unhealthy(&self, problem: String) {
        self.health.set_unhealthy(problem);
    }

    pub(crate) fn set_healthy(&self) {
        self.health.set_healthy();
    }
}

/// Why the parts behind `parts` are not taking writes — each failing one's problem, in
/// order, joined by `; ` — or `None` while all are healthy. What `/readyz` answers.
pub fn unready_reason(parts: &[&Health]) -> Option<String> {
    let problems: Vec<String> = parts
        .iter()
        .filter(|p| !p.is_healthy())
        .map(|p| {
            p.problem()
                .unwrap_or_else(|| "a store is failing".to_string())
        })
        .collect();
    (!problems.is_empty()).then(|| problems.join("; "))
}
