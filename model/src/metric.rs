//! Metric samples, series and batches: what receivers hand to the TSDB and what the PromQL
//! engine reads back.
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
    /// Further in the future than the store's grace period (a wrong clock or unit): once
    /// stored it would make every current sample of its series out of order.
    TooFarInFuture,
}

impl RejectReason {
    /// The name used in error messages and in the `reason` label of counters.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::OutOfOrder => "out_of_order",
            RejectReason::TooOld => "too_old",
            RejectReason::DuplicateTimestamp => "duplicate_timestamp",
            RejectReason::SeriesLimit => "series_limit",
            RejectReason::TooFarInFuture => "too_far_in_future",
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

#[cfg(test)]
mod tests {
    use super::*;

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
