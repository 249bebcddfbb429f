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

/// A log store the engine can query.
pub trait LogSource {
    fn select(&self, request: &SelectRequest<'_>) -> Result<EntryIter<'_>, SourceError>;
}
