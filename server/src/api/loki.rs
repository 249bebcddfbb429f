//! Loki's query API (`/loki/api/v1/query`, `query_range`, `labels`, `label/{name}/values`,
//! `series`) with Loki's JSON shapes, so Grafana's Loki data source and `logcli`-style clients
//! work against Sightline.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde_json::{Value, json};
use sightline_indexer::LogStore;
use sightline_logql::{Engine, QueryResult};
use sightline_model::{Direction, LabelMatcher, Labels};

use super::params::{Params, tenant};
use super::{ApiError, timed};
use crate::metrics::ServerMetrics;

/// What the query handlers share.
#[derive(Clone)]
pub struct QueryState {
    pub store: Arc<LogStore>,
    pub metrics: ServerMetrics,
    pub max_series: usize,
    pub queries: super::QueryControl,
}

/// A LogQL evaluation failure: a stopped query as its own kind (timeout, cancelled), a
/// failing store as ours (500), anything else the query's fault (400).
fn eval_error(e: sightline_logql::EvalError) -> ApiError {
    match e {
        sightline_logql::EvalError::Stopped(why) => why.into(),
        sightline_logql::EvalError::Source(_) => ApiError::internal(e.to_string()),
        _ => ApiError::bad_request(e.to_string()),
    }
}

pub fn router(state: QueryState) -> Router {
    Router::new()
        .route("/loki/api/v1/query", get(query).post(query))
        .route(
            "/loki/api/v1/query_range",
            get(query_range).post(query_range),
        )
        .route("/loki/api/v1/labels", get(labels).post(labels))
        .route(
            "/loki/api/v1/label/{name}/values",
            get(label_values).post(label_values),
        )
        .route("/loki/api/v1/series", get(series).post(series))
        .route("/loki/api/v1/status/buildinfo", get(buildinfo))
        .route(
            "/api/v1/patterns",
            get(super::patterns::patterns).post(super::patterns::patterns),
        )
        .with_state(state)
}

const HOUR_NS: i64 = 3_600_000_000_000;
const DEFAULT_LIMIT: usize = 100;

fn direction(params: &Params) -> Result<Direction, ApiError> {
    match params
        .get("direction")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("backward") => Ok(Direction::Backward),
        Some("forward") => Ok(Direction::Forward),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid direction {other:?}: expected forward or backward"
        ))),
    }
}

async fn query_range(
    State(state): State<QueryState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(raw.as_deref(), &headers, &body);
    let tenant = tenant(&headers)?;
    let query = params
        .get("query")
        .ok_or_else(|| ApiError::bad_request("missing query parameter"))?
        .to_string();
    let (start, end) = params.range_ns(HOUR_NS)?;
    let limit = params.usize("limit", DEFAULT_LIMIT)?;
    let direction = direction(&params)?;
    let step_ns = params.step_ns(start, end)?;
    let s = state.clone();
    let started = Instant::now();
    let result = timed(
        &state.metrics,
        "query_range",
        &state.queries,
        move |cancel| {
            let expr =
                sightline_logql::parse(&query).map_err(|e| ApiError::bad_request(e.to_string()))?;
            Engine {
                max_series: s.max_series,
                cancel,
            }
            .query_range(
                s.store.as_ref(),
                &tenant,
                &expr,
                start,
                end,
                step_ns,
                limit,
                direction,
            )
            .map_err(eval_error)
        },
    )
    .await?;
    Ok(Json(success(result, started)).into_response())
}

async fn query(
    State(state): State<QueryState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(raw.as_deref(), &headers, &body);
    let tenant = tenant(&headers)?;
    let query = params
        .get("query")
        .ok_or_else(|| ApiError::bad_request("missing query parameter"))?
        .to_string();
    let time = params.time_ns("time", crate::now_ns())?;
    let limit = params.usize("limit", DEFAULT_LIMIT)?;
    let direction = direction(&params)?;
    let s = state.clone();
    let started = Instant::now();
    let result = timed(&state.metrics, "query", &state.queries, move |cancel| {
        let expr =
            sightline_logql::parse(&query).map_err(|e| ApiError::bad_request(e.to_string()))?;
        Engine {
            max_series: s.max_series,
            cancel,
        }
        .query_instant(s.store.as_ref(), &tenant, &expr, time, limit, direction)
        .map_err(eval_error)
    })
    .await?;
    Ok(Json(success(result, started)).into_response())
}

fn labels_json(labels: &sightline_model::Labels) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect(),
    )
}

fn seconds(ts_ns: i64) -> Value {
    json!(ts_ns as f64 / 1e9)
}

fn sample_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        v.to_string()
    }
}

/// Loki's success envelope for query results.
fn success(result: QueryResult, started: Instant) -> Value {
    let (kind, result, returned) = match result {
        QueryResult::Streams(streams) => {
            let n: usize = streams.iter().map(|s| s.entries.len()).sum();
            let v: Vec<Value> = streams
                .into_iter()
                .map(|s| {
                    json!({
                        "stream": labels_json(&s.labels),
                        "values": s.entries.into_iter()
                            .map(|(ts, line)| json!([ts.to_string(), line]))
                            .collect::<Vec<_>>(),
                    })
                })
                .collect();
            ("streams", v, n)
        }
        QueryResult::Matrix(series) => {
            let n = series.len();
            let v: Vec<Value> = series
                .into_iter()
                .map(|s| {
                    json!({
                        "metric": labels_json(&s.labels),
                        "values": s.points.into_iter()
                            .map(|(ts, v)| json!([seconds(ts), sample_value(v)]))
                            .collect::<Vec<_>>(),
                    })
                })
                .collect();
            ("matrix", v, n)
        }
        QueryResult::Vector(samples) => {
            let n = samples.len();
            let v: Vec<Value> = samples
                .into_iter()
                .map(|s| {
                    json!({
                        "metric": labels_json(&s.labels),
                        "value": [seconds(s.timestamp_ns), sample_value(s.value)],
                    })
                })
                .collect();
            ("vector", v, n)
        }
    };
    json!({
        "status": "success",
        "data": {
            "resultType": kind,
            "result": result,
            "stats": {"summary": {
                "execTime": started.elapsed().as_secs_f64(),
                "totalEntriesReturned": returned,
            }},
        },
    })
}

/// Stream matchers of a selector parameter (`{a="b"}`), for `series` and label values.
pub(crate) fn selector_matchers(selector: &str) -> Result<Vec<LabelMatcher>, ApiError> {
    match sightline_logql::parse(selector).map_err(|e| ApiError::bad_request(e.to_string()))? {
        sightline_logql::Expr::Log(log) if log.stages.is_empty() => Ok(log.matchers),
        _ => Err(ApiError::bad_request(format!(
            "{selector:?} is not a stream selector such as {{service_name=\"api\"}}"
        ))),
    }
}

struct Range {
    tenant: sightline_model::TenantId,
    start: i64,
    end: i64,
}

fn range(headers: &HeaderMap, params: &Params) -> Result<Range, ApiError> {
    let end = params.time_ns("end", crate::now_ns())?;
    // Loki's default window for metadata queries is six hours.
    let start = params.time_ns("start", end - 6 * HOUR_NS)?;
    Ok(Range {
        tenant: tenant(headers)?,
        start,
        end,
    })
}

/// The streams matching the optional `query` selector in the request's range, computed off
/// the async runtime; `view` turns them into the answer's data.
async fn streams_data<T: Send + 'static>(
    state: &QueryState,
    endpoint: &'static str,
    headers: &HeaderMap,
    raw: Option<&str>,
    body: &Bytes,
    view: impl FnOnce(Vec<Arc<Labels>>) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let params = Params::parse(raw, headers, body);
    let r = range(headers, &params)?;
    let matchers = match params.get("query") {
        Some(q) => selector_matchers(q)?,
        None => Vec::new(),
    };
    let s = state.clone();
    timed(&state.metrics, endpoint, &state.queries, move |_| {
        let streams = s
            .store
            .streams(&r.tenant, r.start, r.end, &matchers)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(view(streams))
    })
    .await
}

async fn labels(
    State(state): State<QueryState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let names = streams_data(
        &state,
        "labels",
        &headers,
        raw.as_deref(),
        &body,
        |streams| {
            streams
                .iter()
                .flat_map(|l| l.iter().map(|(k, _)| k.to_string()))
                .collect::<BTreeSet<String>>()
        },
    )
    .await?;
    Ok(Json(json!({"status": "success", "data": names})).into_response())
}

async fn label_values(
    State(state): State<QueryState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let view = move |streams: Vec<Arc<Labels>>| {
        streams
            .iter()
            .filter_map(|l| l.get(&name).map(str::to_string))
            .collect::<BTreeSet<String>>()
    };
    let values = streams_data(
        &state,
        "label_values",
        &headers,
        raw.as_deref(),
        &body,
        view,
    )
    .await?;
    Ok(Json(json!({"status": "success", "data": values})).into_response())
}

async fn series(
    State(state): State<QueryState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(raw.as_deref(), &headers, &body);
    let r = range(&headers, &params)?;
    let selectors: Vec<Vec<LabelMatcher>> = params
        .all("match[]")
        .chain(params.all("match"))
        .map(selector_matchers)
        .collect::<Result<_, _>>()?;
    if selectors.is_empty() {
        return Err(ApiError::bad_request("missing match[] parameter"));
    }
    let s = state.clone();
    let found = timed(&state.metrics, "series", &state.queries, move |_| {
        let mut all = BTreeSet::new();
        for matchers in &selectors {
            let streams = s
                .store
                .streams(&r.tenant, r.start, r.end, matchers)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            all.extend(streams);
        }
        Ok::<_, ApiError>(all)
    })
    .await?;
    let data: Vec<Value> = found.iter().map(|l| labels_json(l)).collect();
    Ok(Json(json!({"status": "success", "data": data})).into_response())
}

async fn buildinfo() -> impl IntoResponse {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
}
