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

pub use grpc::{
    OtlpGrpcMetricsState, OtlpGrpcState, OtlpLogsService, OtlpMetricsService, logs_service,
    metrics_service,
};
pub use http::{OtlpHttpState, router};
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
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 << 20,
            max_decompressed_bytes: 64 << 20,
            max_grpc_message_bytes: grpc::DEFAULT_MAX_DECODING_MESSAGE_BYTES,
        }
    }
}
