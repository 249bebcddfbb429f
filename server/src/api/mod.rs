//! HTTP APIs on the main port: Loki's query API, Prometheus's query API, our patterns and
//! anomalies APIs. Failures are [`ApiError`]s (`sightline-http`: one mapping of error kinds
//! to status codes and retry hints); each API only picks its body shape: plain text for
//! Loki's API and ours, Prometheus's JSON in `prom.rs`.

pub mod anomalies;
pub mod loki;
pub mod params;
pub mod patterns;
pub mod prom;

use std::time::Instant;

pub use sightline_http::ApiError;

/// Runs blocking query work off the async threads and records its latency under `endpoint`.
/// Generic over the API's error type (Loki's plain text, Prometheus's JSON).
pub(crate) async fn timed<T, E>(
    metrics: &crate::metrics::ServerMetrics,
    endpoint: &'static str,
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: From<ApiError> + Send + 'static,
{
    let started = Instant::now();
    let result = tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| E::from(ApiError::internal(format!("query task failed: {e}"))))?;
    metrics
        .query_seconds
        .get_or_create(&crate::metrics::QueryLabels { endpoint })
        .observe(started.elapsed().as_secs_f64());
    result
}
