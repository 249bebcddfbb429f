//! The conventions every Sightline HTTP endpoint shares, written once: the tenant header
//! ([`tenant`]) and the mapping of a failure to an answer ([`ApiError`]).
//!
//! An [`ApiError`] is a kind and a message. The kind alone decides the HTTP status, the
//! `Retry-After` hint and the gRPC code; the protocol being spoken decides only the shape of
//! the body ([`ErrorBody`]: plain text for Loki and remote write, Prometheus's JSON, OTLP's
//! `google.rpc.Status`, our own JSON). Receivers (in `sightline-collector`) and query APIs (in
//! the server) both answer through it, so a 429 looks the same wherever it comes from.
//!
//! Why a crate of its own: the receivers and the query APIs both need it and neither should
//! depend on the other for it (the query APIs have no business depending on receivers, and
//! the APIs still to come, alerting's and the UI's, even less). It depends on nothing of ours
//! but `model` (for [`sightline_model::TenantId`]) and never on a store, a query language or
//! the ingest path: those map their own errors to an [`ErrorKind`] where they meet HTTP.

pub mod error;
pub mod serve;
pub mod tenant;

pub use error::{ApiError, ErrorBody, ErrorKind, JsonError, PrometheusError};
pub use serve::{ConnectionLimits, LimitedConn, serve_http};
pub use tenant::{TENANT_HEADER, tenant_from_header, tenant_from_headers};
