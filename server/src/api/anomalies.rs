//! `GET /api/v1/anomalies`: the latest score of every series the `[anomaly]` rules watch,
//! highest first, with the expected value, the band of ordinary values and the component
//! that decided the score (documented in `docs/api.md`).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Json;
use serde_json::{Value, json};

use super::ApiError;
use super::params::{Params, tenant};
use crate::anomalies::Anomalies;

pub async fn anomalies(
    State(anomalies): State<Arc<Anomalies>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(raw.as_deref(), &headers, b"");
    let tenant = tenant(&headers)?;
    let min_score: f64 = match params.get("min_score") {
        None => 0.0,
        Some(v) => v
            .parse()
            .ok()
            .filter(|s: &f64| (0.0..=1.0).contains(s))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid min_score {v:?}: expected a number in [0, 1]"
                ))
            })?,
    };
    let rule = params.get("rule");
    let data: Vec<Value> = anomalies
        .latest(&tenant)
        .into_iter()
        .filter(|l| l.score.value >= min_score && rule.is_none_or(|r| r == l.rule))
        .map(|l| {
            let e = &l.score.explanation;
            json!({
                "rule": l.rule,
                "labels": l.labels.iter().collect::<std::collections::BTreeMap<_, _>>(),
                "timestamp": l.timestamp_ms as f64 / 1000.0,
                "value": finite(l.value),
                "score": l.score.value,
                "expected": finite(e.expected),
                "band": [finite(e.band.0), finite(e.band.1)],
                "baseline": format!("{:?}", e.baseline),
                "component": format!("{:?}", e.component),
                "unsuppressed_score": e.unsuppressed,
                "points_seen": l.seen,
                "last_alert": l.last_alert_ms.map(|t| t as f64 / 1000.0),
            })
        })
        .collect();
    Ok(Json(json!({"status": "success", "data": data})))
}

/// JSON has no NaN or infinities: those become `null`.
fn finite(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}
