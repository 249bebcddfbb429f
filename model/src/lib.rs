//! Sightline's shared telemetry vocabulary: tenants, resources, log records, metric samples,
//! spans, label matchers, and the log store's query seam.
//!
//! Every other crate speaks these types. This crate owns no I/O, no async and no engine
//! types (no Tantivy, no tonic): it must stay cheap to depend on and easy to reason about.
//! The stores' query contracts that more than one crate implements or consumes live here
//! ([`LogSource`], [`StoreError`]), so that a store never depends on a query language.

pub mod cancel;
pub mod go_string;
pub mod labels;
pub mod log;
pub mod log_query;
pub mod matcher;
pub mod metric;
pub mod regex_cost;
pub mod span;
pub mod store_error;
pub mod tenant;

pub use cancel::{CancelOnDrop, Cancellation, Stopped};
pub use labels::{
    INDEXED_RESOURCE_ATTRIBUTES, Labels, UNKNOWN_SERVICE, attribute_to_label_name,
    index_labels_from_resource, is_valid_label_name,
};
pub use log::{LogBatch, LogRecord, LogStream, SeverityNumber};
pub use log_query::{
    BucketCounts, Buckets, Direction, Entry, EntryIter, LineFilter, LineFilterOp, LogSource,
    SelectRequest,
};
pub use matcher::{LabelMatcher, MAX_REPEAT, MatchOp, largest_repeat};
pub use metric::{
    AppendReport, METRIC_NAME_LABEL, MetricBatch, MetricSeries, RejectReason, STALE_NAN_BITS,
    Sample, is_stale_nan, stale_nan,
};
pub use regex_cost::{FoldBudget, check_fold_work};
pub use span::{
    AnyValue, Attributes, ResourceSpans, ScopeSpans, Span, SpanBatch, SpanEvent, SpanId, SpanKind,
    SpanLink, StatusCode, TraceId,
};
pub use store_error::StoreError;
pub use tenant::{TenantError, TenantId};
