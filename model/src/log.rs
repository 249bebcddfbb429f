//! Log records as Sightline stores them.
//!
//! A [`LogBatch`] is what one client request delivers for one tenant: a list of streams, each
//! with its index labels (the Loki stream), the full resource attributes it came with, its
//! instrumentation scope, and its records. Attribute values are kept as strings; structured
//! OTLP values (arrays, maps, bytes) are rendered as JSON so nothing is dropped.

use serde::{Deserialize, Serialize};

use crate::{Labels, TenantId};

/// OTLP severity number, 0 (unspecified) to 24 (FATAL4).
pub type SeverityNumber = u8;

/// One stream's worth of records that share labels, resource and scope.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogStream {
    /// Index labels: what LogQL stream selectors match on.
    pub labels: Labels,
    /// All resource attributes, under their original OpenTelemetry names.
    pub resource: Vec<(String, String)>,
    pub scope_name: String,
    pub scope_version: String,
    pub records: Vec<LogRecord>,
}

/// One log record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Event time in Unix nanoseconds; the observed time when the source gave none.
    pub timestamp_ns: i64,
    /// When a collector first saw the record, in Unix nanoseconds.
    pub observed_timestamp_ns: i64,
    pub severity_number: SeverityNumber,
    pub severity_text: String,
    pub body: String,
    /// Record attributes (OTLP attributes, syslog fields, Loki structured metadata), under
    /// their original names.
    pub attributes: Vec<(String, String)>,
    /// Lower-case hex, empty when absent.
    pub trace_id: String,
    /// Lower-case hex, empty when absent.
    pub span_id: String,
}

/// Everything one request delivered for one tenant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogBatch {
    pub tenant: TenantId,
    pub streams: Vec<LogStream>,
}

impl LogBatch {
    pub fn record_count(&self) -> usize {
        self.streams.iter().map(|s| s.records.len()).sum()
    }

    /// Bytes of log bodies in the batch: the figure "bytes received" counts.
    pub fn body_bytes(&self) -> usize {
        self.streams
            .iter()
            .flat_map(|s| &s.records)
            .map(|r| r.body.len())
            .sum()
    }
}
