//! HTTP APIs on the main port: Loki's query API, Prometheus's query API, our patterns and
//! anomalies APIs. Failures are [`ApiError`]s (`sightline-http`: one mapping of error kinds
//! to status codes and retry hints); each API only picks its body shape: plain text for
//! Loki's API and ours, Prometheus's JSON in `prom.rs`.

pub mod alertmanager;
pub mod anomalies;
pub mod incidents;
pub mod loki;
pub mod params;
pub mod patterns;
pub mod prom;
pub mod rca;
pub mod rules;
pub mod tempo;
pub mod topology;
pub mod trace_search;

use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{Method, Uri};
use axum::response::Response;
pub use sightline_http::ApiError;
use sightline_http::ErrorBody;
use sightline_model::Cancellation;

use crate::query_pool::NotRun;

/// When queries stop: each gets `timeout` (`[limits] query_timeout`), and all stop when
/// `shutdown` is cancelled as the server stops.
#[derive(Debug, Clone)]
pub struct QueryControl {
    pub shutdown: Cancellation,
    pub timeout: Duration,
    /// Where queries run (low priority, bounded).
    pub pool: crate::query_pool::QueryPool,
}

/// The error body of the API a path belongs to: Prometheus's JSON under `/api/v1/` (the
/// Prometheus API, remote write, and our own APIs beside them), Loki's plain text under
/// `/loki/` (as every other Loki API error), our JSON anywhere else.
fn error_body_for(path: &str) -> ErrorBody {
    if path.starts_with("/loki/") || tempo::is_tempo_path(path) {
        ErrorBody::PlainText
    } else if path.starts_with("/api/") {
        ErrorBody::Prometheus
    } else {
        ErrorBody::Json
    }
}

/// The main router's answers for a path no route serves (404) and for a method a route does
/// not take (405), in the shape of the API the path belongs to, naming the path. Call it
/// once every route is added: the 405 answer is attached to the routes present.
pub fn with_fallbacks(router: Router) -> Router {
    router
        .fallback(|method: Method, uri: Uri| async move {
            in_api_shape(ApiError::unknown_path(method.as_str(), uri.path()), &uri)
        })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            in_api_shape(
                ApiError::method_not_allowed(method.as_str(), uri.path()),
                &uri,
            )
        })
}

fn in_api_shape(error: ApiError, uri: &Uri) -> Response {
    error.response(error_body_for(uri.path()))
}

/// Runs blocking query work on the query pool and records its latency under `endpoint`.
/// Generic over the API's error type (Loki's plain text, Prometheus's JSON).
///
/// The work gets the query's [`Cancellation`]: it fires at the query timeout, at shutdown,
/// and when this future is dropped — which is what hyper does when the client disconnects —
/// so an abandoned query stops instead of running to the end on a blocking thread.
pub(crate) async fn timed<T, E>(
    metrics: &crate::metrics::ServerMetrics,
    endpoint: &'static str,
    control: &QueryControl,
    work: impl FnOnce(Cancellation) -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: From<ApiError> + Send + 'static,
{
    let started = Instant::now();
    let cancel = control.shutdown.child(Some(control.timeout));
    let on_drop = cancel.cancel_on_drop();
    let timer = {
        let (cancel, timeout) = (cancel.clone(), control.timeout);
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            cancel.expire();
        })
    };
    let job_cancel = cancel.clone();
    let result = control
        .pool
        .run(&cancel, move || work(job_cancel))
        .await
        .map_err(|e| {
            E::from(match e {
                NotRun::QueueFull {
                    threads,
                    max_queued,
                } => ApiError::overloaded(format!(
                    "too many queries: {threads} running and {max_queued} waiting (max_concurrent_queries, max_queued_queries); retry later"
                )),
                // Cancelled before its turn (the answer goes nowhere) or the work panicked.
                NotRun::Failed => match cancel.stopped() {
                    Some(why) => ApiError::from(why),
                    None => ApiError::internal("query task failed"),
                },
            })
        });
    timer.abort();
    on_drop.disarm();
    metrics
        .query_seconds
        .get_or_create(&crate::metrics::QueryLabels { endpoint })
        .observe(started.elapsed().as_secs_f64());
    result?
}
