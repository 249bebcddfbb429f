//! `GET /api/v1/rca`: the likely causes of a symptom, ranked from data already stored
//! (`docs/api.md`, root cause): the request's parameters, then `crate::root_cause`.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Json;
use axum::routing::get;
use serde_json::{Value, json};
use sightline_rca::Params as RcaParams;
use sightline_topology::EntityId;

use super::params::{Params, parse_duration, tenant};
use super::{ApiError, QueryControl, timed};
use crate::metrics::ServerMetrics;
use crate::root_cause::{Question, RootCause};

#[derive(Clone)]
pub struct RcaState {
    pub root_cause: RootCause,
    pub metrics: ServerMetrics,
    pub queries: QueryControl,
}

pub fn router(state: RcaState) -> Router {
    Router::new()
        .route("/api/v1/rca", get(rca).post(rca))
        .with_state(state)
}

/// Candidates answered by default.
const DEFAULT_LIMIT: usize = 20;

fn float(params: &Params, key: &str, default: f64) -> Result<f64, ApiError> {
    match params.get(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid parameter {key:?}: {v:?} is not a non-negative number"
                ))
            }),
    }
}

async fn rca(
    State(s): State<RcaState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(raw.as_deref(), &headers, &body);
    let tenant = tenant(&headers)?;
    let symptom = params
        .get("entity")
        .ok_or_else(|| ApiError::bad_request("missing parameter \"entity\" (the symptom's id)"))?;
    let symptom = EntityId::parse(symptom)
        .map_err(|e| ApiError::bad_request(format!("invalid parameter \"entity\": {e}")))?;
    let now_ms = crate::now_ns() / 1_000_000;
    let onset = params.time_ns("time", now_ns_default(now_ms))? / 1_000_000;
    let end = params.time_ns("end", now_ms * 1_000_000)? / 1_000_000;
    if end < onset {
        return Err(ApiError::bad_request(format!(
            "\"end\" ({end} ms) is before \"time\" ({onset} ms): the analysis needs the data after the onset"
        )));
    }
    let lookback = match params.get("lookback") {
        None => 24 * 3_600_000,
        Some(v) => parse_duration(v)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| ApiError::bad_request(format!("invalid parameter \"lookback\": {v:?}")))?
            .as_millis() as i64,
    };
    let start = onset.saturating_sub(lookback);
    let defaults = RcaParams::default();
    let method = RcaParams {
        alpha: float(&params, "alpha", defaults.alpha)?,
        z: float(&params, "z", defaults.z)?,
        resolution: float(&params, "resolution", defaults.resolution)?,
        recent: params.usize("recent", defaults.recent)?,
    };
    let metric = params.get("metric").map(str::to_string);
    let limit = params.usize("limit", DEFAULT_LIMIT)?;

    let question = Question {
        symptom,
        metric,
        onset,
        start,
        end,
        params: method,
        limit,
        seen: None,
    };
    let rc = s.root_cause.clone();
    let data = timed(&s.metrics, "rca", &s.queries, move |cancel| {
        rc.analyse(&tenant, &question, &cancel)
    })
    .await?;
    Ok(Json(json!({"status": "success", "data": data})))
}

/// Default onset: a quarter of an hour ago (an alert's typical look back).
fn now_ns_default(now_ms: i64) -> i64 {
    (now_ms - 15 * 60_000) * 1_000_000
}
