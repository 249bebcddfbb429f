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
use crate::alertmanager::AlertManager;
use crate::rules::Rules;

pub fn router(rules: Arc<Rules>, alertmanager: Arc<AlertManager>) -> Router {
    Router::new()
        .route("/api/v1/rules", get(rules_handler))
        .route("/api/v1/alerts", get(alerts_handler))
        .with_state(rules.clone())
        .merge(
            Router::new()
                .route("/-/reload", axum::routing::post(reload_handler))
                .with_state((rules, alertmanager)),
        )
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

/// Prometheus's (and Alertmanager's) `POST /-/reload`: the rule files and the Alertmanager
/// configuration read again; a set with problems is refused (500 naming them, as
/// Prometheus answers) and the running one kept. The rules are reloaded first; when the
/// Alertmanager configuration is refused the new rules stay.
async fn reload_handler(
    State((rules, alertmanager)): State<(Arc<Rules>, Arc<AlertManager>)>,
) -> Result<String, ApiError> {
    let loaded = tokio::task::spawn_blocking(move || rules.reload())
        .await
        .map_err(|e| ApiError::internal(format!("reload task failed: {e}")))?
        .map_err(|e| ApiError::internal(format!("failed to reload rules: {e:#}")))?;
    tracing::info!(rules = loaded, "rules reloaded");
    tokio::task::spawn_blocking(move || alertmanager.reload())
        .await
        .map_err(|e| ApiError::internal(format!("reload task failed: {e}")))?
        .map_err(|e| {
            ApiError::internal(format!(
                "failed to reload the alertmanager configuration: {e:#}"
            ))
        })?;
    Ok(format!(
        "reloaded {loaded} rules and the alertmanager configuration\n"
    ))
}

async fn alerts_handler(State(rules): State<Arc<Rules>>) -> Json<Value> {
    Json(json!({"status": "success", "data": rules.alerts_json()}))
}
