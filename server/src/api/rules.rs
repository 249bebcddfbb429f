//! `GET /api/v1/rules` and `GET /api/v1/alerts`: the evaluated rule groups and their
//! alerts, in Prometheus's JSON shapes (Grafana's Prometheus data source reads them).

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Json;
use axum::routing::get;
use serde_json::{Value, json};

use super::ApiError;
use super::params::Params;
use crate::rules::Rules;

pub fn router(rules: Arc<Rules>) -> Router {
    Router::new()
        .route("/api/v1/rules", get(rules_handler))
        .route("/api/v1/alerts", get(alerts_handler))
        .route("/-/reload", axum::routing::post(reload_handler))
        .with_state(rules)
}

async fn rules_handler(
    State(rules): State<Arc<Rules>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(raw.as_deref(), &headers, b"");
    let kind = params.get("type");
    if let Some(k) = kind
        && k != "alert"
        && k != "record"
    {
        return Err(ApiError::bad_request(format!(
            "unsupported type {k:?}: expected alert or record"
        )));
    }
    Ok(Json(
        json!({"status": "success", "data": rules.rules_json(kind)}),
    ))
}

/// Prometheus's `POST /-/reload`: the rule files read again; a set with problems is refused
/// (500 naming them, as Prometheus answers) and the running rules kept.
async fn reload_handler(State(rules): State<Arc<Rules>>) -> Result<String, ApiError> {
    let loaded = tokio::task::spawn_blocking(move || rules.reload())
        .await
        .map_err(|e| ApiError::internal(format!("reload task failed: {e}")))?
        .map_err(|e| ApiError::internal(format!("failed to reload rules: {e:#}")))?;
    tracing::info!(rules = loaded, "rules reloaded");
    Ok(format!("reloaded {loaded} rules\n"))
}

async fn alerts_handler(State(rules): State<Arc<Rules>>) -> Json<Value> {
    Json(json!({"status": "success", "data": rules.alerts_json()}))
}
