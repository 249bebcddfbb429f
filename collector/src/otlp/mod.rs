//! OTLP receivers: OTLP/gRPC ([`grpc::logs_service`], [`grpc::metrics_service`]) and OTLP/HTTP
//! ([`http::router`], `POST /v1/logs` and `POST /v1/metrics`). Logs: an
//! `ExportLogsServiceRequest` becomes one [`LogBatch`] per request through
//! [`convert::convert_request`]. Metrics: an `ExportMetricsServiceRequest` becomes one
//! [`MetricBatch`] through [`metrics::translate_request`] (the OpenTelemetry → Prometheus
//! translation), sent by an [`OtlpMetricsIngest`] shared by both protocols.
//!
//! A request is answered only after its batch is in the write-ahead log. Invalid records
//! (a trace or span id of the wrong length, an unrepresentable timestamp) are dropped one by
//! one and reported in `partial_success`; the rest of the request is kept.
//!
//! [`LogBatch`]: sightline_model::LogBatch
//! [`MetricBatch`]: sightline_model::MetricBatch

pub(crate) mod body;
pub mod convert;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod traces;
pub mod utf8;

pub use grpc::{
    OtlpGrpcMetricsState, OtlpGrpcState, OtlpGrpcTracesState, OtlpLogsService, OtlpMetricsService,
    OtlpTracesService, logs_service, metrics_service, traces_service,
};
pub use http::{OtlpHttpState, router};

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use sightline_http::ApiError;
use sightline_model::{LogBatch, TenantId};

use crate::refusal::ingest_refusal;
use crate::{CollectorMetrics, IngestHandle};

/// Counts a converted logs request under `source`, hands its valid records to the ingest
/// queue and returns the export response (with `partial_success` when records were
/// dropped), the same for both transports; `bytes` is the decoded payload size.
pub(crate) async fn store_logs(
    ingest: &IngestHandle,
    metrics: &CollectorMetrics,
    source: &'static str,
    tenant: &TenantId,
    bytes: u64,
    converted: convert::Converted,
) -> Result<ExportLogsServiceResponse, ApiError> {
    let t = tenant.as_str();
    metrics.received(source, t, converted.received_records, bytes);
    for (reason, n) in &converted.rejected_by_reason {
        metrics.rejected(source, t, reason, *n);
    }
    let accepted = converted.accepted_records();
    let convert::Converted {
        streams,
        rejected_records,
        error_message,
        ..
    } = converted;
    if !streams.is_empty() {
        let batch = LogBatch {
            tenant: tenant.clone(),
            streams,
        };
        if let Err(e) = ingest.ingest(batch).await {
            let (error, reason) = ingest_refusal(&e);
            metrics.rejected(source, t, reason, accepted);
            return Err(error);
        }
        metrics.accepted(source, t, accepted);
    }
    Ok(ExportLogsServiceResponse {
        // A message without rejections is a warning (strings repaired), as OTLP allows.
        partial_success: (rejected_records > 0 || !error_message.is_empty()).then(|| {
            ExportLogsPartialSuccess {
                rejected_log_records: i64::try_from(rejected_records).unwrap_or(i64::MAX),
                error_message,
            }
        }),
    })
}
pub use metrics::{OtlpMetricsIngest, TranslateOptions};

/// The OTLP receivers' configuration, `[otlp]` in the server's TOML: request size limits of
/// both transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpConfig {
    /// OTLP/HTTP: largest body accepted as sent (compressed or not), in bytes. Default 16 MiB.
    pub max_body_bytes: usize,
    /// OTLP/HTTP: largest body accepted after gzip decompression, in bytes. Default 64 MiB.
    pub max_decompressed_bytes: usize,
    /// OTLP/gRPC: largest request message, compressed and decompressed, in bytes. Default
    /// 64 MiB.
    pub max_grpc_message_bytes: usize,
    /// Logs: a record whose body is longer is refused (Loki's `max_line_size`). 256 KiB.
    pub max_line_bytes: usize,
    /// Logs: a record with more attributes is refused (Loki's
    /// `max_structured_metadata_entries_count`). 128.
    pub max_attributes_per_record: usize,
    /// Logs: a record whose attribute names and values add up to more bytes is refused
    /// (Loki's `max_structured_metadata_size`). 64 KiB.
    pub max_attribute_bytes_per_record: usize,
    /// Metrics: a data point that would make a series with more labels is refused (as
    /// remote_write's `max_labels_per_series`). 30.
    pub max_labels_per_series: usize,
    /// Metrics: longest label name and value (attribute name and value). 1024 and 2048;
    /// logs: longest value of a resource attribute that becomes a stream label (2048).
    pub max_label_name_bytes: usize,
    pub max_label_value_bytes: usize,
}

impl OtlpConfig {
    /// The metric translation options these limits set.
    pub fn translate_options(&self) -> metrics::TranslateOptions {
        metrics::TranslateOptions {
            max_labels_per_series: self.max_labels_per_series,
            max_label_name_bytes: self.max_label_name_bytes,
            max_label_value_bytes: self.max_label_value_bytes,
            ..Default::default()
        }
    }

    /// The span limits (events and links: the OpenTelemetry SDKs' defaults).
    pub fn span_limits(&self) -> traces::SpanLimits {
        traces::SpanLimits {
            max_attributes: self.max_attributes_per_record,
            max_attribute_bytes: self.max_attribute_bytes_per_record,
            max_label_value_bytes: self.max_label_value_bytes,
            ..Default::default()
        }
    }

    /// The log record limits.
    pub fn record_limits(&self) -> convert::RecordLimits {
        convert::RecordLimits {
            max_line_bytes: self.max_line_bytes,
            max_attributes: self.max_attributes_per_record,
            max_attribute_bytes: self.max_attribute_bytes_per_record,
            max_label_value_bytes: self.max_label_value_bytes,
        }
    }
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 << 20,
            max_decompressed_bytes: 64 << 20,
            max_grpc_message_bytes: grpc::DEFAULT_MAX_DECODING_MESSAGE_BYTES,
            max_line_bytes: 256 << 10,
            max_attributes_per_record: 128,
            max_attribute_bytes_per_record: 64 << 10,
            max_labels_per_series: 30,
            max_label_name_bytes: 1024,
            max_label_value_bytes: 2048,
        }
    }
}
