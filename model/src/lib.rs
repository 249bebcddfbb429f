//! Sightline's shared telemetry vocabulary: tenants, resources, log records,
//! metric samples and label matchers.
//!
//! Every other crate speaks these types. This crate owns no I/O, no async and no engine
//! types (no Tantivy, no tonic): it must stay cheap to depend on and easy to reason about.

pub mod labels;
pub mod log;
pub mod metric;
pub mod tenant;

pub use labels::{
    INDEXED_RESOURCE_ATTRIBUTES, Labels, UNKNOWN_SERVICE, attribute_to_label_name,
    index_labels_from_resource, is_valid_label_name,
};
pub use log::{LogBatch, LogRecord, LogStream, SeverityNumber};
pub use metric::{
    AppendReport, LabelMatcher, METRIC_NAME_LABEL, MatchOp, MetricBatch, MetricSeries,
    RejectReason, STALE_NAN_BITS, Sample, is_stale_nan, stale_nan,
};
pub use tenant::{TenantError, TenantId};
