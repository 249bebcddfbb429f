//! Alertmanager's API v2, so that `amtool`, Grafana and Prometheus (as a sender, through
//! `alerting.alertmanagers`) work against Sightline unchanged: `POST/GET /api/v2/alerts`,
//! `GET /api/v2/alerts/groups`, `GET/POST /api/v2/silences`, `GET/DELETE
//! /api/v2/silence/{id}`, `GET /api/v2/status`, `GET /api/v2/receivers`, and
//! `POST /-/reload` for the configuration. Errors are JSON strings, as Alertmanager's.
//! The tenant is `X-Scope-OrgID` (`default` when absent).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use chrono::Utc;
use serde_json::{Value, json};
use sightline_alerting::alertmanager::alerts::{Alert, PostableAlert};
use sightline_alerting::alertmanager::data::rfc3339;
use sightline_alerting::alertmanager::inhibit::Inhibitions;
use sightline_alerting::alertmanager::matchers::{Matchers, parse_matchers};
use sightline_alerting::alertmanager::silence::Silence;
use sightline_model::TenantId;

use crate::alertmanager::{AlertManager, AmError, TenantState};

pub fn router(am: Arc<AlertManager>) -> Router {
    Router::new()
        .route("/api/v2/alerts", get(get_alerts).post(post_alerts))
        .route("/api/v2/alerts/groups", get(get_groups))
        .route("/api/v2/silences", get(get_silences).post(post_silence))
        .route(
            "/api/v2/silence/{id}",
            get(get_silence).delete(delete_silence),
        )
        .route("/api/v2/status", get(get_status))
        .route("/api/v2/receivers", get(get_receivers))
        .route("/api/v2/alertmanager/-/reload", axum::routing::post(reload))
        .with_state(am)
}

/// An error as Alertmanager answers it: the status and the message as a JSON string.
struct AmResponseError(StatusCode, String);

impl IntoResponse for AmResponseError {
    fn into_response(self) -> Response {
        (self.0, Json(Value::String(self.1))).into_response()
    }
}

impl From<AmError> for AmResponseError {
    fn from(e: AmError) -> Self {
        match e {
            AmError::Invalid(m) => AmResponseError(StatusCode::BAD_REQUEST, m),
            AmError::NotFound(m) => AmResponseError(StatusCode::NOT_FOUND, m),
            AmError::Limited(m) => AmResponseError(StatusCode::TOO_MANY_REQUESTS, m),
            AmError::Storage(m) => AmResponseError(StatusCode::INTERNAL_SERVER_ERROR, m),
        }
    }
}

type Result<T> = std::result::Result<T, AmResponseError>;

fn bad(message: impl Into<String>) -> AmResponseError {
    AmResponseError(StatusCode::BAD_REQUEST, message.into())
}

fn tenant(headers: &HeaderMap) -> Result<TenantId> {
    crate::api::params::tenant(headers).map_err(|e| bad(e.to_string()))
}

/// The tenant's alert-manager state (restored from its log on first use).
fn tenant_state(
    am: &AlertManager,
    tenant: &TenantId,
) -> Result<Arc<std::sync::Mutex<TenantState>>> {
    am.tenant(tenant)
        .map_err(|e| AmResponseError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Query parameters, repeated ones (`filter`) kept in order.
fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn flag(pairs: &[(String, String)], name: &str, default: bool) -> Result<bool> {
    match pairs.iter().rev().find(|(k, _)| k == name) {
        None => Ok(default),
        Some((_, v)) => match v.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(bad(format!(
                "{name}: expected true or false, got {other:?}"
            ))),
        },
    }
}

/// The `filter` parameters as one matcher set.
fn filters(pairs: &[(String, String)]) -> Result<Matchers> {
    let mut all = Vec::new();
    for (_, v) in pairs.iter().filter(|(k, _)| k == "filter") {
        all.extend(
            parse_matchers(v)
                .map_err(|e| bad(format!("bad matcher format: {e}")))?
                .0,
        );
    }
    Ok(Matchers(all))
}

fn receiver_filter(pairs: &[(String, String)]) -> Result<Option<regex::Regex>> {
    match pairs.iter().rev().find(|(k, _)| k == "receiver") {
        None => Ok(None),
        Some((_, v)) => sightline_model::check_fold_work(v)
            .map_err(regex::Error::Syntax)
            .and_then(|()| regex::Regex::new(&format!("^(?:{v})$")))
            .map(Some)
            .map_err(|e| bad(format!("failed to parse receiver param: {e}"))),
    }
}

async fn post_alerts(
    State(am): State<Arc<AlertManager>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode> {
    let tenant = tenant(&headers)?;
    let posted: Vec<PostableAlert> = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("body: {e} (expected a JSON array of alerts)")))?;
    let errors = tokio::task::spawn_blocking(move || am.post_alerts(&tenant, posted))
        .await
        .map_err(|e| AmResponseError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    if errors.is_empty() {
        Ok(StatusCode::OK)
    } else {
        Err(bad(errors.join("; ")))
    }
}

/// One alert in the API's `gettableAlert` shape.
fn gettable_alert(
    st: &TenantState,
    inhibitions: &Inhibitions<'_>,
    alert: &Alert,
    now: chrono::DateTime<Utc>,
) -> (Value, bool, bool) {
    let (silenced, inhibited) = AlertManager::mute_status(st, inhibitions, &alert.labels, now);
    let mut receivers: Vec<&str> = st
        .dispatcher
        .tree()
        .match_labels(&alert.labels)
        .into_iter()
        .map(|r| r.opts.receiver.as_str())
        .collect();
    receivers.dedup();
    let state = if !silenced.is_empty() || !inhibited.is_empty() {
        "suppressed"
    } else {
        "active"
    };
    let value = json!({
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": rfc3339(alert.starts_at),
        "endsAt": rfc3339(alert.ends_at),
        "updatedAt": rfc3339(alert.updated_at),
        "generatorURL": alert.generator_url,
        "fingerprint": format!("{:016x}", alert.fingerprint()),
        "receivers": receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
        "status": {
            "state": state,
            "silencedBy": silenced,
            "inhibitedBy": inhibited,
            "mutedBy": [],
        },
    });
    (value, !silenced.is_empty(), !inhibited.is_empty())
}

/// Whether an alert passes the listing's flags and filters.
struct AlertFilter {
    active: bool,
    silenced: bool,
    inhibited: bool,
    matchers: Matchers,
    receiver: Option<regex::Regex>,
}

impl AlertFilter {
    fn parse(pairs: &[(String, String)]) -> Result<AlertFilter> {
        Ok(AlertFilter {
            active: flag(pairs, "active", true)?,
            silenced: flag(pairs, "silenced", true)?,
            inhibited: flag(pairs, "inhibited", true)?,
            matchers: filters(pairs)?,
            receiver: receiver_filter(pairs)?,
        })
    }

    fn keeps(&self, value: &Value, silenced: bool, inhibited: bool) -> bool {
        let suppressed = silenced || inhibited;
        if (!self.active && !suppressed)
            || (!self.silenced && silenced)
            || (!self.inhibited && inhibited)
        {
            return false;
        }
        match &self.receiver {
            None => true,
            Some(re) => value["receivers"].as_array().is_some_and(|rs| {
                rs.iter()
                    .any(|r| re.is_match(r["name"].as_str().unwrap_or("")))
            }),
        }
    }
}

async fn get_alerts(
    State(am): State<Arc<AlertManager>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    let tenant = tenant(&headers)?;
    let pairs = query_pairs(raw.as_deref());
    let filter = AlertFilter::parse(&pairs)?;
    let state = tenant_state(&am, &tenant)?;
    let st = lock(&state);
    let now = Utc::now();
    let config = st.dispatcher.config();
    let inhibitions = Inhibitions::new(&config.inhibit_rules, st.dispatcher.alerts.values(), now);
    let listed = listed_alerts(
        &st,
        &inhibitions,
        &filter,
        st.dispatcher.alerts.values(),
        now,
    );
    Ok(Json(Value::Array(listed)))
}

/// The alerts the filter keeps, as `gettableAlert`s in fingerprint order. Resolved alerts
/// are not listed (Alertmanager lists only unresolved ones).
fn listed_alerts<'a>(
    st: &TenantState,
    inhibitions: &Inhibitions<'_>,
    filter: &AlertFilter,
    alerts: impl Iterator<Item = &'a Alert>,
    now: chrono::DateTime<Utc>,
) -> Vec<Value> {
    let mut out: Vec<(String, Value)> = Vec::new();
    for alert in alerts {
        if alert.resolved_at(now) || !filter.matchers.matches(&alert.labels) {
            continue;
        }
        let (value, silenced, inhibited) = gettable_alert(st, inhibitions, alert, now);
        if filter.keeps(&value, silenced, inhibited) {
            out.push((
                value["fingerprint"].as_str().unwrap_or("").to_owned(),
                value,
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, v)| v).collect()
}

async fn get_groups(
    State(am): State<Arc<AlertManager>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    let tenant = tenant(&headers)?;
    let pairs = query_pairs(raw.as_deref());
    let filter = AlertFilter::parse(&pairs)?;
    let state = tenant_state(&am, &tenant)?;
    let st = lock(&state);
    let now = Utc::now();
    let config = st.dispatcher.config();
    let inhibitions = Inhibitions::new(&config.inhibit_rules, st.dispatcher.alerts.values(), now);
    let mut groups: Vec<(String, Value)> = Vec::new();
    for group in st.dispatcher.groups() {
        if let Some(re) = &filter.receiver
            && !re.is_match(&group.opts.receiver)
        {
            continue;
        }
        let alerts = listed_alerts(&st, &inhibitions, &filter, group.alerts.values(), now);
        if alerts.is_empty() {
            continue;
        }
        groups.push((
            group.key(),
            json!({
                "labels": group.labels,
                "receiver": {"name": group.opts.receiver},
                "alerts": alerts,
            }),
        ));
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Json(Value::Array(
        groups.into_iter().map(|(_, v)| v).collect(),
    )))
}

fn gettable_silence(s: &Silence, now: chrono::DateTime<Utc>) -> Value {
    json!({
        "id": s.id,
        "status": {"state": s.state(now).as_str()},
        "updatedAt": rfc3339(s.updated_at),
        "matchers": s.matchers,
        "startsAt": rfc3339(s.starts_at),
        "endsAt": rfc3339(s.ends_at),
        "createdBy": s.created_by,
        "comment": s.comment,
    })
}

async fn get_silences(
    State(am): State<Arc<AlertManager>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    let tenant = tenant(&headers)?;
    let filter = filters(&query_pairs(raw.as_deref()))?;
    let state = tenant_state(&am, &tenant)?;
    let st = lock(&state);
    let now = Utc::now();
    let list: Vec<Value> = st
        .silences
        .list(now)
        .into_iter()
        .filter(|s| {
            // As Alertmanager: the silence's equality matchers, read as labels, must
            // satisfy the filter.
            let labels: BTreeMap<String, String> = s
                .matchers
                .iter()
                .map(|m| (m.name.clone(), m.value.clone()))
                .collect();
            filter.matches(&labels)
        })
        .map(|s| gettable_silence(s, now))
        .collect();
    Ok(Json(Value::Array(list)))
}

async fn post_silence(
    State(am): State<Arc<AlertManager>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>> {
    let tenant = tenant(&headers)?;
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Postable {
        #[serde(default)]
        id: String,
        matchers: Vec<sightline_alerting::alertmanager::silence::ApiMatcher>,
        starts_at: chrono::DateTime<Utc>,
        ends_at: chrono::DateTime<Utc>,
        created_by: String,
        comment: String,
    }
    let p: Postable = serde_json::from_slice(&body).map_err(|e| bad(format!("body: {e}")))?;
    if p.created_by.is_empty() {
        return Err(bad("createdBy in body is required"));
    }
    if p.comment.is_empty() {
        return Err(bad("comment in body is required"));
    }
    let silence = Silence {
        id: p.id,
        matchers: p.matchers,
        starts_at: p.starts_at,
        ends_at: p.ends_at,
        updated_at: Utc::now(),
        created_by: p.created_by,
        comment: p.comment,
    };
    let id = tokio::task::spawn_blocking(move || am.set_silence(&tenant, silence))
        .await
        .map_err(|e| AmResponseError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(json!({"silenceID": id})))
}

async fn get_silence(
    State(am): State<Arc<AlertManager>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let tenant = tenant(&headers)?;
    let state = tenant_state(&am, &tenant)?;
    let st = lock(&state);
    let silence = st
        .silences
        .get(&id)
        .ok_or_else(|| AmResponseError(StatusCode::NOT_FOUND, format!("silence {id} not found")))?;
    Ok(Json(gettable_silence(silence, Utc::now())))
}

async fn delete_silence(
    State(am): State<Arc<AlertManager>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let tenant = tenant(&headers)?;
    tokio::task::spawn_blocking(move || am.expire_silence(&tenant, &id))
        .await
        .map_err(|e| AmResponseError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(StatusCode::OK)
}

async fn get_status(State(am): State<Arc<AlertManager>>) -> Json<Value> {
    let text = am.config_text();
    Json(json!({
        "cluster": {"name": "", "status": "disabled", "peers": []},
        "config": {"original": text},
        "uptime": rfc3339(am.started),
        "versionInfo": {
            "branch": "",
            "buildDate": "",
            "buildUser": "",
            "goVersion": "",
            "revision": "",
            "version": env!("CARGO_PKG_VERSION"),
        },
    }))
}

async fn get_receivers(State(am): State<Arc<AlertManager>>) -> Json<Value> {
    let config = am.config();
    Json(Value::Array(
        config
            .receivers
            .iter()
            .map(|r| json!({"name": r.name}))
            .collect(),
    ))
}

/// Reloads the Alertmanager configuration (`POST /api/v2/alertmanager/-/reload`; the
/// server's `POST /-/reload` reloads it too, with the rule files).
async fn reload(State(am): State<Arc<AlertManager>>) -> Result<String> {
    tokio::task::spawn_blocking(move || am.reload())
        .await
        .map_err(|e| AmResponseError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| {
            AmResponseError(
                StatusCode::BAD_REQUEST,
                format!("failed to reload config: {e:#}"),
            )
        })?;
    Ok("configuration reloaded\n".to_owned())
}
