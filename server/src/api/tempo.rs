//! Tempo's query API: traces by id (`/api/traces/{id}`, `/api/v2/traces/{id}`), search
//! (`/api/search` with TraceQL `q=` or logfmt `tags=`, `minDuration`, `maxDuration`,
//! `limit`, `spss`, `start`, `end`), tag names and values (`/api/search/tags`,
//! `/api/v2/search/tags`, `/api/search/tag/{name}/values`, `/api/v2/search/tag/{name}/values`),
//! plus `/api/echo` and `/api/status/buildinfo`, which Grafana's Tempo data source calls to
//! test the connection and pick its features.
//!
//! Bodies follow Tempo's: protobuf when the client asks for `application/protobuf` (v1:
//! `tempopb.Trace`, wire-identical to OTLP `TracesData`; v2: `TraceByIDResponse`, the trace in
//! field 1), JSON otherwise — v1 `{"batches": [ResourceSpans…]}`, v2
//! `{"trace": {"resourceSpans": […]}}`. Tempo renders its JSON with the protobuf JSON mapping,
//! not OTLP/JSON: ids are base64 (not hex), 64-bit integers are strings, enums are names
//! (`SPAN_KIND_SERVER`). So does this module, so that what Grafana and protobuf libraries
//! parse from Tempo they parse from us. Errors are plain text, as Tempo's.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::any_value::Value as OtlpValue;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{Span, TracesData};
use prost::Message;
use serde_json::{Map, Value, json};
use sightline_http::ErrorBody;
use sightline_indexer::TraceStore;
use sightline_model::{SpanBatch, TraceId};

use super::params::{Params, tenant};
use super::trace_search::{self, Search, SearchOutcome, SearchRequest, TraceSummary};
use super::{ApiError, QueryControl, timed};
use crate::metrics::ServerMetrics;

/// What the trace handlers share.
#[derive(Clone)]
pub struct TraceQueryState {
    pub store: Arc<TraceStore>,
    pub metrics: ServerMetrics,
    pub queries: QueryControl,
}

/// The Tempo version whose API this one follows, for clients that choose features by it
/// (Grafana's Tempo data source reads `/api/status/buildinfo`).
const TEMPO_API_VERSION: &str = "2.6.0";

pub fn router(state: TraceQueryState) -> Router {
    Router::new()
        .route("/api/traces/{id}", get(trace_v1))
        .route("/api/v2/traces/{id}", get(trace_v2))
        .route("/api/search", get(search))
        .route("/api/search/tags", get(tags_v1))
        .route("/api/v2/search/tags", get(tags_v2))
        .route("/api/search/tag/{name}/values", get(tag_values_v1))
        .route("/api/v2/search/tag/{name}/values", get(tag_values_v2))
        .route("/api/metrics/query_range", get(metrics_query_range))
        .route("/api/echo", get(|| async { "echo" }))
        .route("/api/status/buildinfo", get(buildinfo))
        .with_state(state)
}

/// Whether a path is one of Tempo's (its errors are plain text).
pub fn is_tempo_path(path: &str) -> bool {
    [
        "/api/traces/",
        "/api/v2/traces/",
        "/api/search",
        "/api/v2/search",
        "/api/echo",
        "/api/metrics/",
    ]
    .iter()
    .any(|p| path.starts_with(p))
        || path == "/api/status/buildinfo"
}

async fn buildinfo() -> impl IntoResponse {
    Json(json!({
        "version": TEMPO_API_VERSION,
        "revision": concat!("sightline-", env!("CARGO_PKG_VERSION")),
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
}

/// Default search window when the request names none, as Loki's query API.
const DEFAULT_SEARCH_NS: i64 = 3_600_000_000_000;
/// Tempo's default result count and spans per spanset.
const DEFAULT_LIMIT: usize = 20;
const DEFAULT_SPSS: usize = 3;
const MAX_LIMIT: usize = 1_000;
/// Longest TraceQL text accepted.
const MAX_QUERY_BYTES: usize = 64 << 10;

/// `[start, end)` of a search in ns from Tempo's `start`/`end` (Unix seconds; `end`
/// inclusive to the second), by default the last hour.
fn search_range(params: &Params) -> Result<(i64, i64), ApiError> {
    let now = crate::now_ns();
    let end = params.time_ns("end", now)?;
    let end = if params.get("end").is_some() {
        end.saturating_add(1_000_000_000)
    } else {
        end
    };
    let start = params.time_ns("start", end - DEFAULT_SEARCH_NS)?;
    if end < start {
        return Err(ApiError::bad_request("end must not be before start"));
    }
    Ok((start, end))
}

fn count_param(params: &Params, key: &str, default: usize, max: usize) -> Result<usize, ApiError> {
    match params.get(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .map(|n| n.min(max))
            .ok_or_else(|| {
                ApiError::bad_request(format!("invalid {key} {v:?}: expected a positive integer"))
            }),
    }
}

fn duration_param(params: &Params, key: &str) -> Result<Option<i64>, ApiError> {
    params
        .get(key)
        .map(|v| {
            super::params::parse_duration(v)
                .map(|d| d.as_nanos() as i64)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid {key} {v:?}: expected a duration such as 100ms"
                    ))
                })
        })
        .transpose()
}

/// The search request of `/api/search`'s parameters.
fn search_request(
    params: &Params,
    headers: &HeaderMap,
) -> Result<(SearchRequest, usize), ApiError> {
    let tenant = tenant(headers)?;
    let search = match (params.get("q"), params.get("tags")) {
        (Some(q), _) => {
            if q.len() > MAX_QUERY_BYTES {
                return Err(ApiError::bad_request(format!(
                    "query of {} bytes exceeds the limit of {MAX_QUERY_BYTES}",
                    q.len()
                )));
            }
            let query = sightline_traceql::parse(q)
                .map_err(|e| ApiError::bad_request(trace_search::describe_error(&e)))?;
            if query.is_metrics() {
                return Err(ApiError::bad_request(
                    "a TraceQL metrics query is answered by /api/metrics/query_range, not /api/search",
                ));
            }
            Search::TraceQl(Box::new(query))
        }
        (None, Some(tags)) => Search::Tags(trace_search::parse_logfmt(tags)?),
        (None, None) => Search::TraceQl(Box::new(
            sightline_traceql::parse("{}").expect("the empty spanset filter parses"),
        )),
    };
    let (start_ns, end_ns) = search_range(params)?;
    let request = SearchRequest {
        tenant,
        search,
        start_ns,
        end_ns,
        min_duration_ns: duration_param(params, "minDuration")?,
        max_duration_ns: duration_param(params, "maxDuration")?,
        limit: count_param(params, "limit", DEFAULT_LIMIT, MAX_LIMIT)?,
    };
    Ok((
        request,
        count_param(params, "spss", DEFAULT_SPSS, MAX_LIMIT)?,
    ))
}

async fn search(
    State(state): State<TraceQueryState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let run = async {
        let params = Params::parse(raw.as_deref(), &headers, &[]);
        let (request, spss) = search_request(&params, &headers)?;
        let store = state.store.clone();
        let outcome = timed(
            &state.metrics,
            "trace_search",
            &state.queries,
            move |cancel| trace_search::search(&store, &request, &cancel),
        )
        .await?;
        Ok::<_, ApiError>(Json(search_json(&outcome, spss)).into_response())
    };
    run.await
        .unwrap_or_else(|e: ApiError| e.response(ErrorBody::PlainText))
}

fn search_json(outcome: &SearchOutcome, spss: usize) -> Value {
    let traces: Vec<Value> = outcome
        .traces
        .iter()
        .map(|found| {
            let summary = TraceSummary::of(&found.trace);
            let spans: Vec<_> = found.trace.spans().collect();
            let spansets: Vec<Value> = found
                .spansets
                .iter()
                .map(|set| {
                    let shown: Vec<Value> = set
                        .spans
                        .iter()
                        .take(spss)
                        .filter_map(|i| spans.get(*i))
                        .map(|(resource, _, span)| {
                            json!({
                                "spanID": span.span_id.to_hex(),
                                "name": span.name,
                                "startTimeUnixNano": span.start_ns.to_string(),
                                "durationNanos": span.duration_ns().to_string(),
                                "attributes": [
                                    {"key": "service.name", "value": {"stringValue": resource.service_name()}}
                                ],
                            })
                        })
                        .collect();
                    let attributes: Vec<Value> = set
                        .attributes
                        .iter()
                        .map(|(k, v)| json!({"key": k, "value": static_json(v)}))
                        .collect();
                    json!({"spans": shown, "matched": set.spans.len(), "attributes": attributes})
                })
                .collect();
            let mut t = json!({
                "traceID": found.trace_id.to_hex(),
                "rootServiceName": summary.root_service.as_deref().unwrap_or("<root span not yet received>"),
                "startTimeUnixNano": summary.start_ns.to_string(),
                "durationMs": summary.duration_ns / 1_000_000,
                "spanSets": spansets,
            });
            if let Some(name) = summary.root_name {
                t["rootTraceName"] = json!(name);
            }
            if let Some(first) = spansets.first() {
                t["spanSet"] = first.clone();
            }
            t
        })
        .collect();
    json!({
        "traces": traces,
        "metrics": {
            "inspectedTraces": outcome.inspected,
            "completedJobs": 1,
            "totalJobs": 1,
        },
    })
}

fn static_json(v: &sightline_traceql::Static) -> Value {
    use sightline_traceql::Static;
    match v {
        Static::Nil => json!({}),
        Static::Bool(b) => json!({"boolValue": b}),
        Static::Int(i) => json!({"intValue": i.to_string()}),
        Static::Float(f) => json!({"doubleValue": f}),
        Static::Str(s) => json!({"stringValue": s}),
        Static::Duration(ns) => json!({"intValue": ns.to_string()}),
        Static::Status(s) => json!({"stringValue": s.traceql_name()}),
        Static::Kind(k) => json!({"stringValue": k.traceql_name()}),
    }
}

/// The intrinsics TraceQL offers, as Tempo lists them.
const INTRINSICS: [&str; 9] = [
    "duration",
    "kind",
    "name",
    "rootName",
    "rootServiceName",
    "status",
    "statusMessage",
    "traceDuration",
    "span:id",
];
const MAX_TAGS: usize = 10_000;

async fn tag_names(
    state: &TraceQueryState,
    headers: &HeaderMap,
    raw: Option<&str>,
) -> Result<sightline_indexer::TagNames, ApiError> {
    let tenant = tenant(headers)?;
    let params = Params::parse(raw, headers, &[]);
    let (start, end) = search_range(&params)?;
    let store = state.store.clone();
    timed(&state.metrics, "trace_tags", &state.queries, move |_| {
        store
            .tag_names(&tenant, start, end, MAX_TAGS)
            .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await
}

async fn tags_v1(
    State(state): State<TraceQueryState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    match tag_names(&state, &headers, raw.as_deref()).await {
        Ok(names) => {
            let all: std::collections::BTreeSet<&String> =
                names.span.iter().chain(&names.resource).collect();
            Json(json!({ "tagNames": all })).into_response()
        }
        Err(e) => e.response(ErrorBody::PlainText),
    }
}

async fn tags_v2(
    State(state): State<TraceQueryState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let scope = Params::parse(raw.as_deref(), &headers, &[])
        .get("scope")
        .map(str::to_string);
    match tag_names(&state, &headers, raw.as_deref()).await {
        Ok(names) => {
            let mut scopes = Vec::new();
            let wanted = |s: &str| scope.as_deref().is_none_or(|w| w == s || w == "all");
            if wanted("resource") {
                scopes.push(json!({"name": "resource", "tags": names.resource}));
            }
            if wanted("span") {
                scopes.push(json!({"name": "span", "tags": names.span}));
            }
            if wanted("intrinsic") {
                scopes.push(json!({"name": "intrinsic", "tags": INTRINSICS}));
            }
            Json(json!({ "scopes": scopes })).into_response()
        }
        Err(e) => e.response(ErrorBody::PlainText),
    }
}

/// Values of a tag: `(value, TraceQL type)`. `name` is scoped in v2 (`resource.x`,
/// `span.x`, `.x`, an intrinsic) and a bare attribute name in v1.
async fn tag_values(
    state: &TraceQueryState,
    headers: &HeaderMap,
    raw: Option<&str>,
    name: &str,
    scoped: bool,
) -> Result<Vec<(String, &'static str)>, ApiError> {
    use sightline_indexer::TagSource;
    let keywords = |values: &[&str]| -> Vec<(String, &'static str)> {
        values.iter().map(|v| (v.to_string(), "keyword")).collect()
    };
    if scoped {
        match name {
            "status" | "span:status" => return Ok(keywords(&["error", "ok", "unset"])),
            "kind" | "span:kind" => {
                return Ok(keywords(&[
                    "client",
                    "consumer",
                    "internal",
                    "producer",
                    "server",
                    "unspecified",
                ]));
            }
            _ => {}
        }
    }
    let tenant = tenant(headers)?;
    let params = Params::parse(raw, headers, &[]);
    let (start, end) = search_range(&params)?;
    let limit = count_param(&params, "limit", MAX_TAGS, MAX_TAGS)?;
    // Which dictionaries to read.
    let (sources, name_owned): (Vec<(&'static str, Option<&'static str>)>, String) = if !scoped {
        (vec![("span", None), ("resource", None)], name.to_string())
    } else if let Some(n) = name.strip_prefix("resource.") {
        (vec![("resource", None)], n.to_string())
    } else if let Some(n) = name.strip_prefix("span.") {
        (vec![("span", None)], n.to_string())
    } else if let Some(n) = name.strip_prefix('.') {
        (vec![("span", None), ("resource", None)], n.to_string())
    } else {
        match name {
            "name" | "span:name" | "rootName" | "trace:rootName" => {
                (vec![("", Some("name"))], String::new())
            }
            "rootServiceName" | "trace:rootService" => (vec![("", Some("service"))], String::new()),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown tag {other:?}: use a scoped attribute (resource.x, span.x, .x) or an intrinsic"
                )));
            }
        }
    };
    let store = state.store.clone();
    let values = timed(
        &state.metrics,
        "trace_tag_values",
        &state.queries,
        move |_| {
            let mut all = std::collections::BTreeSet::new();
            for (scope, intrinsic) in sources {
                let source = match intrinsic {
                    Some("name") => TagSource::SpanName,
                    Some(_) => TagSource::Service,
                    None => TagSource::Attribute {
                        scope,
                        name: &name_owned,
                    },
                };
                all.extend(
                    store
                        .tag_values(&tenant, start, end, source, limit)
                        .map_err(|e| ApiError::internal(e.to_string()))?,
                );
            }
            Ok::<_, ApiError>(all.into_iter().take(limit).collect::<Vec<String>>())
        },
    )
    .await?;
    Ok(values
        .into_iter()
        .map(|v| {
            let kind = if v.parse::<i64>().is_ok() {
                "int"
            } else if v == "true" || v == "false" {
                "bool"
            } else if v.parse::<f64>().is_ok_and(f64::is_finite) && v.contains('.') {
                "float"
            } else {
                "string"
            };
            (v, kind)
        })
        .collect())
}

async fn tag_values_v1(
    State(state): State<TraceQueryState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    match tag_values(&state, &headers, raw.as_deref(), &name, false).await {
        Ok(values) => {
            let values: Vec<String> = values.into_iter().map(|(v, _)| v).collect();
            Json(json!({ "tagValues": values })).into_response()
        }
        Err(e) => e.response(ErrorBody::PlainText),
    }
}

async fn tag_values_v2(
    State(state): State<TraceQueryState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    match tag_values(&state, &headers, raw.as_deref(), &name, true).await {
        Ok(values) => {
            let values: Vec<Value> = values
                .into_iter()
                .map(|(v, t)| json!({"type": t, "value": v}))
                .collect();
            Json(json!({ "tagValues": values })).into_response()
        }
        Err(e) => e.response(ErrorBody::PlainText),
    }
}

/// Tempo's `/api/metrics/query_range`: a TraceQL metrics query (`q`) over `start`..`end`
/// (Unix seconds or RFC 3339; the last hour by default) every `step` (default: about 100
/// points, at least 1 s). Each point is stamped with the start of its step.
async fn metrics_query_range(
    State(state): State<TraceQueryState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let run = async {
        let params = Params::parse(raw.as_deref(), &headers, &[]);
        let tenant = tenant(&headers)?;
        let q = params
            .get("q")
            .or_else(|| params.get("query"))
            .ok_or_else(|| {
                ApiError::bad_request("missing q parameter (a TraceQL metrics query)")
            })?;
        if q.len() > MAX_QUERY_BYTES {
            return Err(ApiError::bad_request(format!(
                "query of {} bytes exceeds the limit of {MAX_QUERY_BYTES}",
                q.len()
            )));
        }
        let query = sightline_traceql::parse(q)
            .map_err(|e| ApiError::bad_request(trace_search::describe_error(&e)))?;
        if !query.is_metrics() {
            return Err(ApiError::bad_request(
                "not a metrics query: add a function such as `| rate()`, or use /api/search",
            ));
        }
        let (start, end) = search_range(&params)?;
        let step = match params.get("step") {
            Some(s) => super::params::parse_duration(s)
                .map(|d| d.as_nanos() as i64)
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid step {s:?}: expected a positive duration"
                    ))
                })?,
            None => ((end - start) / 100).max(1_000_000_000),
        };
        let store = state.store.clone();
        let (series, inspected) = timed(
            &state.metrics,
            "trace_metrics",
            &state.queries,
            move |cancel| trace_search::metrics(&store, &tenant, &query, start, end, step, &cancel),
        )
        .await?;
        let series: Vec<Value> = series
            .iter()
            .map(|s| {
                let labels: Vec<Value> = s
                    .labels
                    .iter()
                    .map(|(k, v)| json!({"key": k, "value": static_json(v)}))
                    .collect();
                let prom: Vec<String> = s
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}={:?}", static_text(v)))
                    .collect();
                let samples: Vec<Value> = s
                    .points
                    .iter()
                    .map(|(t, v)| json!({"timestampMs": (t / 1_000_000).to_string(), "value": v}))
                    .collect();
                json!({"labels": labels, "samples": samples, "promLabels": format!("{{{}}}", prom.join(", "))})
            })
            .collect();
        Ok::<_, ApiError>(
            Json(json!({
                "series": series,
                "metrics": {"inspectedTraces": inspected, "completedJobs": 1, "totalJobs": 1},
            }))
            .into_response(),
        )
    };
    run.await
        .unwrap_or_else(|e: ApiError| e.response(ErrorBody::PlainText))
}

fn static_text(v: &sightline_traceql::Static) -> String {
    use sightline_traceql::Static;
    match v {
        Static::Nil => "nil".into(),
        Static::Bool(b) => b.to_string(),
        Static::Int(i) => i.to_string(),
        Static::Float(f) => f.to_string(),
        Static::Str(s) => s.clone(),
        Static::Duration(ns) => format!("{ns}ns"),
        Static::Status(s) => s.traceql_name().into(),
        Static::Kind(k) => k.traceql_name().into(),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Version {
    V1,
    V2,
}

async fn trace_v1(
    state: State<TraceQueryState>,
    id: Path<String>,
    headers: HeaderMap,
    raw: RawQuery,
) -> Response {
    trace_by_id(state, id, headers, raw, Version::V1).await
}

async fn trace_v2(
    state: State<TraceQueryState>,
    id: Path<String>,
    headers: HeaderMap,
    raw: RawQuery,
) -> Response {
    trace_by_id(state, id, headers, raw, Version::V2).await
}

async fn trace_by_id(
    State(state): State<TraceQueryState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    version: Version,
) -> Response {
    match find_trace(&state, &id, &headers, raw.as_deref()).await {
        Ok(trace) => answer(&trace, &headers, version),
        Err(e) => e.response(ErrorBody::PlainText),
    }
}

async fn find_trace(
    state: &TraceQueryState,
    id: &str,
    headers: &HeaderMap,
    raw: Option<&str>,
) -> Result<SpanBatch, ApiError> {
    let trace_id = TraceId::from_hex(id).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid trace id {id:?}: expected 1 to 32 hex digits, not all zero"
        ))
    })?;
    let tenant = tenant(headers)?;
    let params = Params::parse(raw, headers, &[]);
    // Tempo's optional `start`/`end` (Unix seconds) narrow the search; without them every
    // split whose filter may hold the id is searched.
    let start = params.time_ns("start", i64::MIN)?;
    let end = match params.time_ns("end", i64::MAX)? {
        i64::MAX => i64::MAX,
        // `end` is inclusive at second precision: a span starting within that second counts.
        e => e.saturating_add(1_000_000_000),
    };
    if end < start {
        return Err(ApiError::bad_request("end must not be before start"));
    }
    let store = state.store.clone();
    let found = timed(&state.metrics, "traces", &state.queries, move |_| {
        store
            .trace(&tenant, &trace_id, start, end)
            .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await?;
    found.ok_or_else(|| ApiError::not_found(format!("trace not found: {}", trace_id.to_hex())))
}

fn wants_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/protobuf"))
}

fn answer(trace: &SpanBatch, headers: &HeaderMap, version: Version) -> Response {
    let data = sightline_collector::otlp::traces::to_otlp(trace);
    if wants_protobuf(headers) {
        let body = match version {
            Version::V1 => data.encode_to_vec(),
            Version::V2 => TraceByIdResponse { trace: Some(data) }.encode_to_vec(),
        };
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/protobuf")],
            body,
        )
            .into_response();
    }
    let resource_spans = traces_json(&data);
    let body = match version {
        Version::V1 => json!({ "batches": resource_spans }),
        Version::V2 => json!({ "trace": { "resourceSpans": resource_spans } }),
    };
    Json(body).into_response()
}

/// Tempo's `TraceByIDResponse`: `Trace trace = 1`, and `Trace` is wire-identical to OTLP's
/// `TracesData` (`repeated ResourceSpans = 1`). Metrics, status and message are left out
/// (a complete answer).
#[derive(Clone, PartialEq, Message)]
struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    trace: Option<TracesData>,
}

/// The resource spans of a trace in the protobuf JSON mapping.
fn traces_json(data: &TracesData) -> Vec<Value> {
    data.resource_spans
        .iter()
        .map(|r| {
            let scopes: Vec<Value> = r
                .scope_spans
                .iter()
                .map(|s| {
                    let mut scope = Map::new();
                    if let Some(sc) = &s.scope {
                        put_str(&mut scope, "name", &sc.name);
                        put_str(&mut scope, "version", &sc.version);
                        if !sc.attributes.is_empty() {
                            scope.insert("attributes".into(), attributes_json(&sc.attributes));
                        }
                    }
                    json!({
                        "scope": scope,
                        "spans": s.spans.iter().map(span_json).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let attributes = r
                .resource
                .as_ref()
                .map_or_else(|| json!([]), |res| attributes_json(&res.attributes));
            json!({
                "resource": { "attributes": attributes },
                "scopeSpans": scopes,
            })
        })
        .collect()
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn put_str(m: &mut Map<String, Value>, key: &str, v: &str) {
    if !v.is_empty() {
        m.insert(key.into(), Value::String(v.to_string()));
    }
}

fn span_json(s: &Span) -> Value {
    let mut m = Map::new();
    m.insert("traceId".into(), b64(&s.trace_id));
    m.insert("spanId".into(), b64(&s.span_id));
    put_str(&mut m, "traceState", &s.trace_state);
    if !s.parent_span_id.is_empty() {
        m.insert("parentSpanId".into(), b64(&s.parent_span_id));
    }
    if s.flags != 0 {
        m.insert("flags".into(), json!(s.flags));
    }
    put_str(&mut m, "name", &s.name);
    m.insert("kind".into(), json!(span_kind_name(s.kind)));
    m.insert(
        "startTimeUnixNano".into(),
        json!(s.start_time_unix_nano.to_string()),
    );
    m.insert(
        "endTimeUnixNano".into(),
        json!(s.end_time_unix_nano.to_string()),
    );
    if !s.attributes.is_empty() {
        m.insert("attributes".into(), attributes_json(&s.attributes));
    }
    if s.dropped_attributes_count != 0 {
        m.insert(
            "droppedAttributesCount".into(),
            json!(s.dropped_attributes_count),
        );
    }
    if !s.events.is_empty() {
        let events: Vec<Value> = s
            .events
            .iter()
            .map(|e| {
                let mut ev = Map::new();
                ev.insert("timeUnixNano".into(), json!(e.time_unix_nano.to_string()));
                put_str(&mut ev, "name", &e.name);
                if !e.attributes.is_empty() {
                    ev.insert("attributes".into(), attributes_json(&e.attributes));
                }
                if e.dropped_attributes_count != 0 {
                    ev.insert(
                        "droppedAttributesCount".into(),
                        json!(e.dropped_attributes_count),
                    );
                }
                Value::Object(ev)
            })
            .collect();
        m.insert("events".into(), Value::Array(events));
    }
    if s.dropped_events_count != 0 {
        m.insert("droppedEventsCount".into(), json!(s.dropped_events_count));
    }
    if !s.links.is_empty() {
        let links: Vec<Value> = s
            .links
            .iter()
            .map(|l| {
                let mut lk = Map::new();
                lk.insert("traceId".into(), b64(&l.trace_id));
                lk.insert("spanId".into(), b64(&l.span_id));
                put_str(&mut lk, "traceState", &l.trace_state);
                if !l.attributes.is_empty() {
                    lk.insert("attributes".into(), attributes_json(&l.attributes));
                }
                if l.flags != 0 {
                    lk.insert("flags".into(), json!(l.flags));
                }
                Value::Object(lk)
            })
            .collect();
        m.insert("links".into(), Value::Array(links));
    }
    if s.dropped_links_count != 0 {
        m.insert("droppedLinksCount".into(), json!(s.dropped_links_count));
    }
    if let Some(st) = &s.status {
        let mut status = Map::new();
        put_str(&mut status, "message", &st.message);
        if st.code != 0 {
            status.insert("code".into(), json!(status_code_name(st.code)));
        }
        m.insert("status".into(), Value::Object(status));
    } else {
        m.insert("status".into(), json!({}));
    }
    Value::Object(m)
}

fn span_kind_name(kind: i32) -> &'static str {
    sightline_model::SpanKind::from_i32(kind).otlp_name()
}

fn status_code_name(code: i32) -> &'static str {
    sightline_model::StatusCode::from_i32(code).otlp_name()
}

fn attributes_json(kvs: &[KeyValue]) -> Value {
    Value::Array(
        kvs.iter()
            .map(|kv| json!({ "key": kv.key, "value": any_value_json(kv.value.as_ref()) }))
            .collect(),
    )
}

fn any_value_json(v: Option<&AnyValue>) -> Value {
    match v.and_then(|v| v.value.as_ref()) {
        None | Some(OtlpValue::StringValueStrindex(_)) => json!({}),
        Some(OtlpValue::StringValue(s)) => json!({ "stringValue": s }),
        Some(OtlpValue::BoolValue(b)) => json!({ "boolValue": b }),
        Some(OtlpValue::IntValue(i)) => json!({ "intValue": i.to_string() }),
        Some(OtlpValue::DoubleValue(d)) if d.is_finite() => json!({ "doubleValue": d }),
        Some(OtlpValue::DoubleValue(d)) => {
            let text = if d.is_nan() {
                "NaN"
            } else if *d > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            };
            json!({ "doubleValue": text })
        }
        Some(OtlpValue::BytesValue(b)) => json!({ "bytesValue": b64(b) }),
        Some(OtlpValue::ArrayValue(a)) => json!({
            "arrayValue": {
                "values": a.values.iter().map(|v| any_value_json(Some(v))).collect::<Vec<_>>()
            }
        }),
        Some(OtlpValue::KvlistValue(kv)) => json!({
            "kvlistValue": { "values": attributes_json(&kv.values) }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tempo_paths_are_recognised() {
        assert!(is_tempo_path("/api/traces/abc"));
        assert!(is_tempo_path("/api/v2/search/tags"));
        assert!(is_tempo_path("/api/status/buildinfo"));
        assert!(!is_tempo_path("/api/v1/query"));
    }

    #[test]
    fn values_follow_the_protobuf_json_mapping() {
        let v = AnyValue {
            value: Some(OtlpValue::IntValue(1 << 40)),
        };
        assert_eq!(
            any_value_json(Some(&v)),
            json!({"intValue": "1099511627776"})
        );
        let v = AnyValue {
            value: Some(OtlpValue::BytesValue(vec![0xff, 0])),
        };
        assert_eq!(any_value_json(Some(&v)), json!({"bytesValue": "/wA="}));
    }
}
