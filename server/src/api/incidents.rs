//! `/api/v1/incidents` (`docs/api.md`, incidents): the list, one incident whole, and the
//! operator's acknowledge and resolve, written durably before the answer.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Json;
use axum::routing::{get, post};
use serde_json::{Value, json};
use sightline_incidents::{Incident, State as IncidentState};

use super::ApiError;
use super::params::{Params, tenant};
use crate::incidents::{IncidentsRuntime, Refused};

pub fn router(rt: Arc<IncidentsRuntime>) -> Router {
    Router::new()
        .route("/api/v1/incidents", get(list))
        .route("/api/v1/incidents/{id}", get(one))
        .route("/api/v1/incidents/{id}/acknowledge", post(acknowledge))
        .route("/api/v1/incidents/{id}/resolve", post(resolve))
        .with_state(rt)
}

fn ok(data: Value) -> Json<Value> {
    Json(json!({"status": "success", "data": data}))
}

/// An incident in a list: what a person scans.
fn summary(i: &Incident) -> Value {
    json!({
        "id": i.id,
        "title": i.title,
        "state": i.state,
        "opened_at": i.opened_at,
        "updated_at": i.updated_at,
        "resolved_at": i.resolved_at,
        "symptom": i.symptom,
        "entities": i.entities.len(),
        "signals": i.signals.len(),
        "firing": i.firing(),
        "cause": i.causes.first().map(|c| json!({"entity": c.entity, "confidence": c.confidence})),
    })
}

async fn list(
    State(rt): State<Arc<IncidentsRuntime>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(raw.as_deref(), &headers, b"");
    let tenant = tenant(&headers)?;
    let state = match params.get("state") {
        None => None,
        Some(s) => Some(IncidentState::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid parameter \"state\": {s:?} (open, acknowledged or resolved)"
            ))
        })?),
    };
    let limit = params.usize("limit", 100)?;
    let list: Vec<Value> = rt
        .list(&tenant, state)
        .iter()
        .take(limit)
        .map(summary)
        .collect();
    Ok(ok(Value::Array(list)))
}

async fn one(
    State(rt): State<Arc<IncidentsRuntime>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&headers)?;
    let inc = rt
        .get(&tenant, &id)
        .ok_or_else(|| ApiError::not_found(format!("no incident {id}")))?;
    Ok(ok(serde_json::to_value(&inc).expect("serialises")))
}

/// Who operates: `{"by": "…"}` (JSON) or `by=` (form or query), default `api`.
fn operator(headers: &HeaderMap, raw: Option<&str>, body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body)
        && let Some(by) = v["by"].as_str()
    {
        return by.to_string();
    }
    Params::parse(raw, headers, body)
        .get("by")
        .unwrap_or("api")
        .to_string()
}

fn refused(r: Refused) -> ApiError {
    match r {
        Refused::NotFound(m) => ApiError::not_found(m),
        Refused::Conflict(m) => ApiError::bad_request(m),
        Refused::Storage(m) => ApiError::internal(format!("cannot write the incidents: {m}")),
    }
}

async fn operate(
    rt: Arc<IncidentsRuntime>,
    id: String,
    headers: HeaderMap,
    raw: Option<String>,
    body: Bytes,
    resolve: bool,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&headers)?;
    let by = operator(&headers, raw.as_deref(), &body);
    let inc = tokio::task::spawn_blocking(move || rt.operate(&tenant, &id, &by, resolve))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(refused)?;
    Ok(ok(serde_json::to_value(&inc).expect("serialises")))
}

async fn acknowledge(
    State(rt): State<Arc<IncidentsRuntime>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    operate(rt, id, headers, raw, body, false).await
}

async fn resolve(
    State(rt): State<Arc<IncidentsRuntime>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    operate(rt, id, headers, raw, body, true).await
}
