//! The contract between the LogQL engine and a log store.
//!
//! The engine hands a store the stream matchers and the line filters that stand before any
//! parser stage; the store may use them to narrow its search but only as a *prefilter*: it
//! returns a superset of the matching entries, and the engine re-applies the whole pipeline.
//! Entries come in the requested time order so that a log query can stop at its limit.

use std::sync::Arc;

use sightline_model::{Labels, TenantId};

use crate::ast::{LineFilter, Matcher};

/// Which way log entries are ordered (Loki's `direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Newest first (Loki's default).
    #[default]
    Backward,
    Forward,
}

/// What the engine asks a store for.
#[derive(Debug, Clone)]
pub struct SelectRequest<'a> {
    pub tenant: &'a TenantId,
    /// Stream selector; an entry's stream labels must satisfy all of them.
    pub matchers: &'a [Matcher],
    /// Line filters that may be pushed down (all of them must hold for an entry).
    pub line_filters: &'a [LineFilter],
    /// Inclusive start, Unix nanoseconds.
    pub start_ns: i64,
    /// Exclusive end, Unix nanoseconds.
    pub end_ns: i64,
    pub direction: Direction,
    /// False when the engine does not need entries in time order (metric queries sort the
    /// samples of each series themselves): the store may then skip ordering all its hits.
    pub ordered: bool,
    /// False when the engine needs only timestamps and stream labels (e.g. `count_over_time`
    /// with an empty pipeline): the store may then skip loading lines and metadata, and must
    /// then return only entries that satisfy the line filters exactly.
    pub needs_line: bool,
}

/// One log entry as a store returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub timestamp_ns: i64,
    /// The stream's index labels; shared between the entries of one stream.
    pub labels: Arc<Labels>,
    /// The log line; empty when `needs_line` was false.
    pub line: String,
    /// Structured metadata (label-name form), usable by label filters and `line_format`;
    /// empty when `needs_line` was false.
    pub metadata: Vec<(String, String)>,
}

/// A store failure, passed through to the query's caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// Entries in the requested order.
pub type EntryIter<'a> = Box<dyn Iterator<Item = Result<Entry, SourceError>> + 'a>;

/// Consecutive, equal time buckets, left-open and right-closed like range windows: bucket `j`
/// is `(start_ns + j·width_ns, start_ns + (j + 1)·width_ns]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    pub start_ns: i64,
    pub width_ns: i64,
    pub count: usize,
}

impl Buckets {
    /// The bucket of a timestamp, if it falls in one.
    pub fn index(&self, timestamp_ns: i64) -> Option<usize> {
        let offset = i128::from(timestamp_ns) - i128::from(self.start_ns) - 1;
        if offset < 0 {
            return None;
        }
        let j = offset / i128::from(self.width_ns);
        (j < self.count as i128).then_some(j as usize)
    }

    /// Inclusive first and exclusive last timestamp covered, as a half-open range.
    pub fn range_ns(&self) -> (i64, i64) {
        let end = i128::from(self.start_ns) + i128::from(self.width_ns) * self.count as i128 + 1;
        (
            self.start_ns.saturating_add(1),
            end.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
        )
    }
}

/// Per stream, the number of entries in each bucket.
pub type BucketCounts = Vec<(Arc<Labels>, Vec<u32>)>;

/// A log store the engine can query.
pub trait LogSource {
    fn select(&self, request: &SelectRequest<'_>) -> Result<EntryIter<'_>, SourceError>;

    /// Counts, per stream matching the request's matchers, the entries in each bucket, for
    /// requests without line filters. `None` when the store has no faster way than handing
    /// out every entry through [`LogSource::select`] (the engine then counts them itself).
    fn count_buckets(
        &self,
        _request: &SelectRequest<'_>,
        _buckets: Buckets,
    ) -> Option<Result<BucketCounts, SourceError>> {
        None
    }
}
