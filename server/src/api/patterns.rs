//! `GET /api/v1/patterns`: the log patterns of the streams a selector picks, with counts per
//! step, the template, a sample line and when the pattern was first seen.
//!
//! Parameters: `query` (a LogQL stream selector, required), `start`, `end` (default: the
//! last hour) and `step` (default: about 250 points over the range, at least one second), as
//! for Loki's `query_range`. Each point counts the lines in `(t - step, t]`; the last point
//! is at `end`, the first covers `start`. Patterns are
//! ordered by their line count in the range, most frequent first. The shape is documented in
//! `docs/api.md`.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};
use sightline_logql::MAX_STEPS;
use sightline_model::Buckets;

use super::loki::{QueryState, selector_matchers};
use super::params::{Params, tenant};
use super::{ApiError, timed};

const HOUR_NS: i64 = 3_600_000_000_000;

pub async fn patterns(
    State(state): State<QueryState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(raw.as_deref(), &headers, &body);
    let tenant = tenant(&headers)?;
    let selector = params
        .get("query")
        .ok_or_else(|| ApiError::bad_request("missing query parameter (a stream selector)"))?;
    let matchers = selector_matchers(selector)?;
    let (start, end) = params.range_ns(HOUR_NS)?;
    let step = params.step_ns(start, end)?;
    // Points end at `end` and go back `step` at a time until they cover `start`, so the
    // newest lines (the ones a deploy brings) are always counted.
    let steps = ((end - start) / step + 1).max(1);
    if steps > MAX_STEPS {
        return Err(ApiError::bad_request(format!(
            "{steps} steps exceed the limit of {MAX_STEPS}; use a larger step"
        )));
    }
    // Bucket j is (first + j·step, first + (j + 1)·step], the last one ending at `end`.
    let first = end - steps * step;
    let buckets = Buckets {
        start_ns: first,
        width_ns: step,
        count: steps as usize,
    };
    let s = state.clone();
    let summaries = timed(&state.metrics, "patterns", &state.queries, move |_| {
        s.store
            .pattern_summaries(&tenant, &matchers, buckets)
            .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await?;
    let data: Vec<Value> = summaries
        .into_iter()
        .map(|p| {
            let series: Vec<Value> = p
                .counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(j, c)| {
                    let t = first + (j as i64 + 1) * step;
                    json!([t as f64 / 1e9, c.to_string()])
                })
                .collect();
            json!({
                "service_name": p.service,
                "pattern_id": p.pattern.to_string(),
                "template": p.template,
                "count": p.total,
                "first_seen": p.first_seen_ms.and_then(rfc3339_ms),
                "sample": {"timestamp": p.sample.0.to_string(), "line": p.sample.1},
                "series": series,
            })
        })
        .collect();
    Ok(Json(json!({"status": "success", "data": data})).into_response())
}

fn rfc3339_ms(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}
