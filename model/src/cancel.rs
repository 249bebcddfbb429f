//! When a query must stop: its client went away, its timeout passed, or the server is
//! shutting down. Engines poll [`Cancellation::stopped`] in their long loops (every step or
//! entry), so a query that nobody waits for stops burning a core.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

/// A query's stop signal. Cheap to clone; clones share the signal. Checking it is two
/// atomic loads, cheap enough for every step of a loop; the timeout is therefore not a clock
/// read here but a timer the caller runs, which calls [`Cancellation::expire`].
#[derive(Debug, Clone, Default)]
pub struct Cancellation {
    state: Arc<AtomicU8>,
    /// The server's signal at shutdown: every query made from it stops too.
    parent: Option<Arc<AtomicU8>>,
    timeout: Option<Duration>,
}

const RUNNING: u8 = 0;
const CANCELLED: u8 = 1;
const EXPIRED: u8 = 2;

/// Why a query stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Cancelled: its client went away, or the server is shutting down.
    Cancelled,
    /// It ran longer than its timeout.
    TimedOut(Duration),
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stopped::Cancelled => f.write_str("query was cancelled"),
            Stopped::TimedOut(d) => write!(
                f,
                "query timed out after {:?} (limit query_timeout)",
                Duration::from_millis(d.as_millis() as u64)
            ),
        }
    }
}

impl Cancellation {
    /// A signal that fires only when [`Cancellation::cancel`] is called.
    pub fn new() -> Self {
        Self::default()
    }

    /// A query's signal: fires when `self` is cancelled (a shutdown), when the query is
    /// cancelled itself, or when its timer calls [`Cancellation::expire`]; `timeout` is
    /// what the timer waits, for the message.
    pub fn child(&self, timeout: Option<Duration>) -> Self {
        Self {
            state: Arc::new(AtomicU8::new(RUNNING)),
            parent: Some(self.state.clone()),
            timeout,
        }
    }

    /// The timeout this signal was made with.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    pub fn cancel(&self) {
        let _ =
            self.state
                .compare_exchange(RUNNING, CANCELLED, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The query's timeout has passed.
    pub fn expire(&self) {
        let _ = self
            .state
            .compare_exchange(RUNNING, EXPIRED, Ordering::AcqRel, Ordering::Acquire);
    }

    /// `Some` once the query must stop, saying why.
    pub fn stopped(&self) -> Option<Stopped> {
        match self.state.load(Ordering::Relaxed) {
            CANCELLED => return Some(Stopped::Cancelled),
            EXPIRED => return Some(Stopped::TimedOut(self.timeout.unwrap_or_default())),
            _ => {}
        }
        let parent = self.parent.as_ref()?.load(Ordering::Relaxed);
        (parent != RUNNING).then_some(Stopped::Cancelled)
    }

    /// `Err` once the query must stop.
    pub fn check(&self) -> Result<(), Stopped> {
        self.stopped().map_or(Ok(()), Err)
    }

    /// A guard that cancels this signal when dropped unless disarmed: held by a request
    /// handler, it stops the query when the handler's future is dropped because the client
    /// disconnected.
    pub fn cancel_on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(Some(self.clone()))
    }
}

/// See [`Cancellation::cancel_on_drop`].
#[derive(Debug)]
pub struct CancelOnDrop(Option<Cancellation>);

impl CancelOnDrop {
    /// The query finished: dropping the guard no longer cancels it.
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_stops_on_its_own_cancel_the_parents_or_its_deadline() {
        let root = Cancellation::new();
        let a = root.child(None);
        let b = root.child(Some(Duration::from_secs(2)));
        assert_eq!(a.stopped(), None);
        assert_eq!(b.stopped(), None);
        b.expire();
        b.cancel();
        assert_eq!(b.stopped(), Some(Stopped::TimedOut(Duration::from_secs(2))));
        a.clone().cancel();
        assert_eq!(a.stopped(), Some(Stopped::Cancelled));
        let c = root.child(None);
        root.cancel();
        assert_eq!(c.check(), Err(Stopped::Cancelled));
    }

    #[test]
    fn guard_cancels_on_drop_unless_disarmed() {
        let q = Cancellation::new();
        q.cancel_on_drop().disarm();
        assert_eq!(q.stopped(), None);
        drop(q.cancel_on_drop());
        assert_eq!(q.stopped(), Some(Stopped::Cancelled));
    }
}
