//! The log store's query seam: [`LogSource`], the contract between a log query engine
//! (LogQL) and a log store.
//!
//! The store owns this contract, not the query language: a store implements it without
//! knowing any query syntax, and an engine reaches log data only through it.
//!
//! The engine hands a store the stream matchers and the line filters that stand before any
//! parser stage; the store may use them to narrow its search but only as a *prefilter*: it
//! returns a superset of the matching entries, and the engine re-applies the whole pipeline.
//! Entries come in the requested time order so that a log query can stop at its limit.

use std::sync::Arc;

use regex::Regex;

use crate::{LabelMatcher, Labels, StoreError, TenantId};

/// Which way log entries are ordered (Loki's `direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Newest first (Loki's default).
    #[default]
    Backward,
    Forward,
}

/// A line filter operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFilterOp {
    /// `|=`: the line contains the value (case-sensitive).
    Contains,
    /// `!=`: the line does not contain the value.
    NotContains,
    /// `|~`: the regex matches somewhere in the line.
    Regex,
    /// `!~`: the regex matches nowhere in the line.
    NotRegex,
}

impl LineFilterOp {
    /// The operator as written in a query.
    pub fn as_str(self) -> &'static str {
        match self {
            LineFilterOp::Contains => "|=",
            LineFilterOp::NotContains => "!=",
            LineFilterOp::Regex => "|~",
            LineFilterOp::NotRegex => "!~",
        }
    }
}

/// `|= "text"`, `!= "text"`, `|~ "re"`, `!~ "re"`: a test of a log line, which a store may
/// push down into its index. Equality compares operator and value as written.
#[derive(Debug, Clone)]
pub struct LineFilter {
    pub op: LineFilterOp,
    /// The substring or, for `|~`/`!~`, the regex as written.
    pub value: String,
    /// Compiled for the regex operators, unanchored as in Loki.
    regex: Option<Regex>,
}

impl LineFilter {
    /// Builds a line filter, compiling the regex of `|~`/`!~`.
    pub fn new(op: LineFilterOp, value: impl Into<String>) -> Result<Self, regex::Error> {
        let value = value.into();
        let regex = match op {
            LineFilterOp::Regex | LineFilterOp::NotRegex => {
                crate::regex_cost::check_fold_work(&value).map_err(|e| {
                    regex::Error::Syntax(format!("regex parse error:\n    {value}\nerror: {e}"))
                })?;
                Some(Regex::new(&value)?)
            }
            LineFilterOp::Contains | LineFilterOp::NotContains => None,
        };
        Ok(Self { op, value, regex })
    }

    /// Whether the line passes the filter.
    pub fn matches(&self, line: &str) -> bool {
        match self.op {
            LineFilterOp::Contains => line.contains(self.value.as_str()),
            LineFilterOp::NotContains => !line.contains(self.value.as_str()),
            LineFilterOp::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(line)),
            LineFilterOp::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(line)),
        }
    }
}

impl PartialEq for LineFilter {
    fn eq(&self, other: &Self) -> bool {
        self.op == other.op && self.value == other.value
    }
}

/// What the engine asks a store for.
#[derive(Debug, Clone)]
pub struct SelectRequest<'a> {
    pub tenant: &'a TenantId,
    /// Stream selector; an entry's stream labels must satisfy all of them.
    pub matchers: &'a [LabelMatcher],
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

/// Entries in the requested order.
pub type EntryIter<'a> = Box<dyn Iterator<Item = Result<Entry, StoreError>> + 'a>;

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

/// A log store a query engine can read.
pub trait LogSource {
    fn select(&self, request: &SelectRequest<'_>) -> Result<EntryIter<'_>, StoreError>;

    /// Counts, per stream matching the request's matchers, the entries in each bucket, for
    /// requests without line filters. `None` when the store has no faster way than handing
    /// out every entry through [`LogSource::select`] (the engine then counts them itself).
    fn count_buckets(
        &self,
        _request: &SelectRequest<'_>,
        _buckets: Buckets,
    ) -> Option<Result<BucketCounts, StoreError>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_filters_are_case_sensitive_and_unanchored() {
        let contains = LineFilter::new(LineFilterOp::Contains, "Error").unwrap();
        assert!(contains.matches("an Error here"));
        assert!(!contains.matches("an error here"));
        let re = LineFilter::new(LineFilterOp::Regex, "err(or)?").unwrap();
        assert!(re.matches("some error"));
        let nre = LineFilter::new(LineFilterOp::NotRegex, "^debug").unwrap();
        assert!(nre.matches("info: debug"));
        assert!(!nre.matches("debug: x"));
        assert!(
            LineFilter::new(LineFilterOp::NotContains, "x")
                .unwrap()
                .matches("abc")
        );
    }

    #[test]
    fn buckets_are_left_open_and_right_closed() {
        let b = Buckets {
            start_ns: 10,
            width_ns: 5,
            count: 2,
        };
        assert_eq!(b.index(10), None);
        assert_eq!(b.index(11), Some(0));
        assert_eq!(b.index(15), Some(0));
        assert_eq!(b.index(16), Some(1));
        assert_eq!(b.index(20), Some(1));
        assert_eq!(b.index(21), None);
        assert_eq!(b.range_ns(), (11, 21));
    }
}
