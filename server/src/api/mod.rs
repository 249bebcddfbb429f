//! HTTP APIs on the main port: Loki's query API, Prometheus's query API, our patterns API,
//! and one error type that maps failures to status codes and Loki's plain-text error bodies
//! (the Prometheus API has its own JSON errors, in `prom.rs`).

pub mod anomalies;
pub mod loki;
pub mod params;
pub mod patterns;
pub mod prom;

use std::time::Instant;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An API failure: a status and a message for the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Loki answers errors as plain text; Grafana shows the body as is.
        (
            self.status,
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            self.message,
        )
            .into_response()
    }
}

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
