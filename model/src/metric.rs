//! Metric samples, series, batches and label matchers: what receivers hand to the TSDB and
//! what the PromQL engine reads back.
//!
//! Times are milliseconds since the Unix epoch (Prometheus's unit); values are `f64`, where
//! NaN and ±Inf are ordinary values and one NaN bit pattern, [`STALE_NAN_BITS`], is
//! Prometheus's staleness marker.

use serde::{Deserialize, Serialize};

use crate::{Labels, TenantId};

/// The bit pattern of Prometheus's staleness marker (`value.StaleNaN`): a NaN that says "this
/// series ended here". Any other NaN is an ordinary value.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker as a value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is the staleness marker (compared bit for bit).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// The label that holds a metric's name.
pub const METRIC_NAME_LABEL: &str = "__name__";

/// One sample: time in milliseconds, value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

/// One series: its label set (with `__name__`) and samples in time order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricSeries {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// The samples of one write request, for one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricBatch {
    pub tenant: TenantId,
    pub series: Vec<MetricSeries>,
}

impl MetricBatch {
    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }
}

/// Why the store refused a sample (the rest of its batch is still written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RejectReason {
    /// Older than the series' newest sample by more than the out-of-order window.
    OutOfOrder,
    /// Older than what the store still accepts (before the head, i.e. already in a block).
    TooOld,
    /// Same timestamp as a stored sample with a different value.
    DuplicateTimestamp,
    /// A new series beyond the tenant's series limit.
    SeriesLimit,
}

impl RejectReason {
    /// The name used in error messages and in the `reason` label of counters.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::OutOfOrder => "out_of_order",
            RejectReason::TooOld => "too_old",
            RejectReason::DuplicateTimestamp => "duplicate_timestamp",
            RejectReason::SeriesLimit => "series_limit",
        }
    }
}

/// What happened to one appended batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppendReport {
    /// Samples written (durable when the report is returned).
    pub accepted: u64,
    /// Samples refused, by reason.
    pub rejected: Vec<(RejectReason, u64)>,
    /// The first refusal, described for the client: the rule, the limit and the series.
    pub first_rejection: Option<String>,
}

impl AppendReport {
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().map(|(_, n)| n).sum()
    }

    /// Counts one refusal; keeps the first description.
    pub fn reject(&mut self, reason: RejectReason, describe: impl FnOnce() -> String) {
        match self.rejected.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => self.rejected.push((reason, 1)),
        }
        if self.first_rejection.is_none() {
            self.first_rejection = Some(describe());
        }
    }
}

/// How a [`LabelMatcher`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

/// One label matcher of a selector (`name="v"`, `!=`, `=~`, `!~`). An absent label matches
/// as the empty string, as in Prometheus; regexes are fully anchored.
#[derive(Debug, Clone)]
pub struct LabelMatcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<regex::Regex>,
}

impl LabelMatcher {
    /// A matcher; fails only on an invalid regex.
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Self, regex::Error> {
        let value = value.into();
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                regex::RegexBuilder::new(&format!("^(?s:{value})$"))
                    .size_limit(1 << 22)
                    .build()?,
            ),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Self {
            name: name.into(),
            op,
            value,
            regex,
        })
    }

    /// Whether a label value (`""` when the label is absent) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// Whether the matcher accepts the empty string (so it also selects series without the
    /// label).
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// Whether a label set satisfies the matcher.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }
}

impl PartialEq for LabelMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl std::fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        };
        write!(f, "{}{}{:?}", self.name, op, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_follow_prometheus() {
        let l = Labels::from_pairs([("job", "api"), ("__name__", "up")]);
        let m = |n: &str, op, v: &str| LabelMatcher::new(n, op, v).unwrap();
        assert!(m("job", MatchOp::Regex, "a.*").matches_labels(&l));
        assert!(
            !m("job", MatchOp::Regex, "p").matches_labels(&l),
            "anchored"
        );
        assert!(
            m("zone", MatchOp::Equal, "").matches_labels(&l),
            "absent is empty"
        );
        assert!(m("zone", MatchOp::NotRegex, ".+").matches_labels(&l));
        assert!(!m("job", MatchOp::NotEqual, "api").matches_labels(&l));
        assert!(LabelMatcher::new("a", MatchOp::Regex, "(").is_err());
    }

    #[test]
    fn stale_marker_is_one_nan() {
        assert!(is_stale_nan(stale_nan()));
        assert!(!is_stale_nan(f64::NAN));
    }

    #[test]
    fn report_keeps_first_reason() {
        let mut r = AppendReport::default();
        r.reject(RejectReason::OutOfOrder, || "first".into());
        r.reject(RejectReason::OutOfOrder, || "second".into());
        r.reject(RejectReason::SeriesLimit, || "third".into());
        assert_eq!(r.rejected_total(), 3);
        assert_eq!(r.first_rejection.as_deref(), Some("first"));
    }
}
