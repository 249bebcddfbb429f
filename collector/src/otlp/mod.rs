//! OTLP logs receivers: OTLP/gRPC ([`grpc::logs_service`]) and OTLP/HTTP ([`http::router`],
//! `POST /v1/logs`), both turning an `ExportLogsServiceRequest` into one [`LogBatch`] per
//! request through [`convert::convert_request`].
//!
//! A request is answered only after its batch is in the write-ahead log. Invalid records
//! (a trace or span id of the wrong length, an unrepresentable timestamp) are dropped one by
//! one and reported in `partial_success`; the rest of the request is kept.
//!
//! [`LogBatch`]: sightline_model::LogBatch

pub(crate) mod body;
pub mod convert;
pub mod grpc;
pub mod http;

pub use grpc::{OtlpGrpcState, OtlpLogsService, logs_service};
pub use http::{OtlpHttpLimits, OtlpHttpState, router};
