//! Receivers: turn what clients send (OTLP, Loki push, syslog, Prometheus remote write) and
//! what Prometheus targets expose (scraping) into [`sightline_model`] batches and hand them
//! to the ingest path; and the agent's sources: host metrics from `/proc` and `/sys`
//! ([`host`]).
//!
//! One module per source, each with its decoder, its receiver (HTTP routes, gRPC service or
//! socket listener) and its tests. A receiver answers a client only after
//! [`IngestHandle::ingest`] returned, i.e. after the batch is in the write-ahead log. This
//! crate never touches storage itself: it knows only the [`IngestHandle`] queue of `sightline-ingest`.
//!
//! Each receiver owns its configuration type (a serde section of the server's TOML) and
//! answers failures as a [`sightline_http::ApiError`] in its protocol's body shape; how an
//! ingest failure is answered and counted is written once, in `refusal.rs`.

pub mod connectors;
pub mod host;
pub mod loki_push;
pub mod metrics;
pub mod otlp;
mod refusal;
pub mod remote_write;
pub mod scrape;
pub mod syslog;

/// The tenant header, shared with the query APIs (see [`sightline_http::tenant`]).
pub use sightline_http::tenant;

// The queue receivers hand batches to is the ingest crate's; re-exported because every
// receiver names it.
pub use metrics::CollectorMetrics;
pub use sightline_ingest::{
    IngestError, IngestHandle, IngestRequest, MetricIngestHandle, MetricIngestRequest,
};
