//! Prometheus's HTTP query API (`/api/v1/query`, `query_range`, `series`, `labels`,
//! `label/{name}/values`, `status/buildinfo`), GET and form POST, with Prometheus's JSON
//! shapes and error types, so `promtool query` and Grafana's Prometheus data source work
//! unchanged. The tenant is `X-Scope-OrgID` (`default` when absent), as on the Loki API.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde_json::{Value as Json_, json};
use sightline_model::{LabelMatcher, Labels, TenantId};
use sightline_promql::{Engine, QueryError, QueryResult, TsdbSource, Value, parse_selector};
use sightline_tsdb::Tsdb;

use super::params::{Params, parse_duration, tenant};
use super::timed;
use crate::metrics::ServerMetrics;

/// What the handlers share.
#[derive(Clone)]
pub struct PromState {
    pub tsdb: Arc<Tsdb>,
    pub engine: Arc<Engine>,
    pub metrics: ServerMetrics,
    pub queries: super::QueryControl,
}

pub fn router(state: PromState) -> Router {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .with_state(state)
}

/// A Prometheus API error: `{"status":"error","errorType":…,"error":…}`.
pub use sightline_http::PrometheusError as PromError;

/// A query failure as Prometheus answers it: parse errors are `bad_data` (400), storage
/// failures `internal` (500), evaluation failures and exceeded limits `execution` (422).
fn query_error(e: QueryError) -> PromError {
    let message = e.to_string();
    match e {
        QueryError::Parse(_) => PromError::bad_data(message),
        QueryError::Storage(_) => PromError::internal(message),
        QueryError::Stopped(why) => PromError::from(sightline_http::ApiError::from(why)),
        _ => PromError::execution(message),
    }
}

/// Prometheus's time formats: Unix seconds (with a fraction) or RFC 3339; also the extreme
/// times its Go client sends for "no bound".
pub fn parse_time_ms(v: &str) -> Option<i64> {
    if let Ok(f) = v.parse::<f64>() {
        return f.is_finite().then(|| (f * 1000.0).round() as i64);
    }
    match v {
        // Go's time.Unix(math.MinInt64/1000+62135596801, 0) and its max, as client_golang
        // formats them.
        "-292273086-05-16T16:47:06Z" => return Some(MIN_TIME_MS),
        "292277025-08-18T07:12:54.999999999Z" => return Some(MAX_TIME_MS),
        _ => {}
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Bounds used when a request sets none (far enough out for any real sample, safe to add to).
const MIN_TIME_MS: i64 = i64::MIN / 4;
const MAX_TIME_MS: i64 = i64::MAX / 4;
/// Most points a range query may return per series (Prometheus's limit).
const MAX_POINTS: i64 = 11_000;

fn time_param(params: &Params, key: &str, default: i64) -> Result<i64, PromError> {
    match params.get(key) {
        None => Ok(default),
        Some(v) => parse_time_ms(v).ok_or_else(|| {
            PromError::bad_data(format!(
                "invalid parameter \"{key}\": cannot parse \"{v}\" to a valid timestamp"
            ))
        }),
    }
}

fn duration_ms(params: &Params, key: &str) -> Result<Option<i64>, PromError> {
    params
        .get(key)
        .map(|v| {
            parse_duration(v)
                .map(|d| d.as_millis() as i64)
                .ok_or_else(|| {
                    PromError::bad_data(format!(
                        "invalid parameter \"{key}\": cannot parse \"{v}\" to a valid duration"
                    ))
                })
        })
        .transpose()
}

fn query_param(params: &Params) -> Result<String, PromError> {
    params
        .get("query")
        .map(str::to_string)
        .ok_or_else(|| PromError::bad_data("invalid parameter \"query\": query is empty"))
}

async fn query(
    State(state): State<PromState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, PromError> {
    let params = Params::parse(raw.as_deref(), &headers, &body);
    let tenant = tenant(&headers)?;
    let query = query_param(&params)?;
    let time = time_param(&params, "time", crate::now_ns() / 1_000_000)?;
    let s = state.clone();
    let result = timed(
        &state.metrics,
        "prom_query",
        &state.queries,
        move |cancel| {
            let source = TsdbSource::new(&s.tsdb, &tenant);
            s.engine
                .instant_query_until(&source, &query, time, &cancel)
                .map_err(query_error)
        },
    )
    .await?;
    Ok(Json(success_result(result)).into_response())
}

async fn query_range(
    State(state): State<PromState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, PromError> {
    let params = Params::parse(raw.as_deref(), &headers, &body);
    let tenant = tenant(&headers)?;
    let query = query_param(&params)?;
    let start = params
        .get("start")
        .ok_or_else(|| PromError::bad_data("invalid parameter \"start\": missing"))
        .and_then(|_| time_param(&params, "start", 0))?;
    let end = params
        .get("end")
        .ok_or_else(|| PromError::bad_data("invalid parameter \"end\": missing"))
        .and_then(|_| time_param(&params, "end", 0))?;
    if end < start {
        return Err(PromError::bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    let step = duration_ms(&params, "step")?
        .ok_or_else(|| PromError::bad_data("invalid parameter \"step\": missing"))?;
    if step <= 0 {
        return Err(PromError::bad_data(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > MAX_POINTS {
        return Err(PromError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let s = state.clone();
    let result = timed(
        &state.metrics,
        "prom_query_range",
        &state.queries,
        move |cancel| {
            let source = TsdbSource::new(&s.tsdb, &tenant);
            s.engine
                .range_query_until(&source, &query, start, end, step, &cancel)
                .map_err(query_error)
        },
    )
    .await?;
    Ok(Json(success_result(result)).into_response())
}

/// The `match[]` selectors of a metadata request.
fn matcher_sets(params: &Params) -> Result<Vec<Vec<LabelMatcher>>, PromError> {
    params
        .all("match[]")
        .map(|m| parse_selector(m).map_err(query_error))
        .collect()
}

fn metadata_range(params: &Params) -> Result<(i64, i64), PromError> {
    Ok((
        time_param(params, "start", MIN_TIME_MS)?,
        time_param(params, "end", MAX_TIME_MS)?,
    ))
}

/// What `/series`, `/labels` and `/label/{name}/values` share: tenant, `match[]` sets,
/// range and `limit`.
struct MetadataRequest {
    tenant: TenantId,
    sets: Vec<Vec<LabelMatcher>>,
    start: i64,
    end: i64,
    limit: usize,
}

impl MetadataRequest {
    fn parse(raw: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<Self, PromError> {
        let params = Params::parse(raw, headers, body);
        let (start, end) = metadata_range(&params)?;
        Ok(Self {
            tenant: tenant(headers)?,
            sets: matcher_sets(&params)?,
            start,
            end,
            limit: params.usize("limit", 0)?,
        })
    }

    /// Runs one store lookup off the async threads and applies `limit` (with its warning).
    async fn run<T: Send + 'static>(
        self,
        state: &PromState,
        endpoint: &'static str,
        lookup: impl FnOnce(&Tsdb, &MetadataRequest) -> Result<Vec<T>, sightline_tsdb::TsdbError>
        + Send
        + 'static,
    ) -> Result<(Vec<T>, Vec<String>), PromError> {
        let tsdb = state.tsdb.clone();
        let limit = self.limit;
        let mut found = timed(&state.metrics, endpoint, &state.queries, move |_| {
            lookup(&tsdb, &self).map_err(|e| PromError::internal(e.to_string()))
        })
        .await?;
        let warnings = truncate(&mut found, limit);
        Ok((found, warnings))
    }
}

async fn series(
    State(state): State<PromState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, PromError> {
    let req = MetadataRequest::parse(raw.as_deref(), &headers, &body)?;
    if req.sets.is_empty() {
        return Err(PromError::bad_data("no match[] parameter provided"));
    }
    let (found, warnings) = req
        .run(&state, "prom_series", |db, r| {
            db.series(&r.tenant, &r.sets, r.start, r.end)
        })
        .await?;
    let data: Vec<Json_> = found.iter().map(labels_json).collect();
    Ok(Json(success(json!(data), warnings)).into_response())
}

async fn labels(
    State(state): State<PromState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, PromError> {
    let req = MetadataRequest::parse(raw.as_deref(), &headers, &body)?;
    let (names, warnings) = req
        .run(&state, "prom_labels", |db, r| {
            db.label_names(&r.tenant, &r.sets, r.start, r.end)
        })
        .await?;
    Ok(Json(success(json!(names), warnings)).into_response())
}

async fn label_values(
    State(state): State<PromState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, PromError> {
    let req = MetadataRequest::parse(raw.as_deref(), &headers, b"")?;
    if !sightline_model::is_valid_label_name(&name) {
        return Err(PromError::bad_data(format!("invalid label name: {name:?}")));
    }
    let (values, warnings) = req
        .run(&state, "prom_label_values", move |db, r| {
            db.label_values(&r.tenant, &name, &r.sets, r.start, r.end)
        })
        .await?;
    Ok(Json(success(json!(values), warnings)).into_response())
}

async fn buildinfo() -> Json<Json_> {
    Json(json!({
        "status": "success",
        "data": {
            "version": env!("CARGO_PKG_VERSION"),
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        }
    }))
}

/// Applies the `limit` parameter (0 = none), with Prometheus's warning when it cut.
fn truncate<T>(items: &mut Vec<T>, limit: usize) -> Vec<String> {
    if limit > 0 && items.len() > limit {
        items.truncate(limit);
        vec!["results truncated due to limit".to_string()]
    } else {
        Vec::new()
    }
}

fn success(data: Json_, warnings: Vec<String>) -> Json_ {
    let mut body = json!({"status": "success", "data": data});
    if !warnings.is_empty() {
        body["warnings"] = json!(warnings);
    }
    body
}

fn success_result(result: QueryResult) -> Json_ {
    let mut body = success(value_json(&result.value), result.warnings);
    if !result.infos.is_empty() {
        body["infos"] = json!(result.infos);
    }
    body
}

/// A query value in Prometheus's JSON: `{"resultType": …, "result": …}`.
pub fn value_json(value: &Value) -> Json_ {
    match value {
        Value::Scalar { t, v } => json!({"resultType": "scalar", "result": point(*t, *v)}),
        Value::String { t, v } => {
            json!({"resultType": "string", "result": [seconds(*t), v]})
        }
        Value::Vector(samples) => json!({
            "resultType": "vector",
            "result": samples.iter().map(|s| json!({
                "metric": labels_json(&s.labels),
                "value": point(s.t, s.v),
            })).collect::<Vec<_>>(),
        }),
        Value::Matrix(series) => json!({
            "resultType": "matrix",
            "result": series.iter().map(|s| json!({
                "metric": labels_json(&s.labels),
                "values": s.samples.iter().map(|p| point(p.t, p.v)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
    }
}

fn labels_json(labels: &Labels) -> Json_ {
    Json_::Object(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), Json_::String(v.to_string())))
            .collect(),
    )
}

/// Milliseconds as the JSON number of seconds Prometheus writes (`1700000000.123`).
fn seconds(t: i64) -> Json_ {
    let sign = if t < 0 { "-" } else { "" };
    let (secs, ms) = (t.unsigned_abs() / 1000, t.unsigned_abs() % 1000);
    let text = if ms == 0 {
        format!("{sign}{secs}")
    } else {
        format!("{sign}{secs}.{ms:03}")
            .trim_end_matches('0')
            .to_string()
    };
    // Parsing our own decimal text cannot fail; serde_json keeps it exact.
    serde_json::from_str(&text).unwrap_or(Json_::Null)
}

fn point(t: i64, v: f64) -> Json_ {
    json!([seconds(t), format_value(v)])
}

/// A sample value as Prometheus prints it (Go's `strconv.FormatFloat(v, 'f', -1, 64)`, with
/// `NaN`, `+Inf`, `-Inf`): Rust's shortest round-trip decimal without exponent is the same.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_like_go() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(1e-7), "0.0000001");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(123456789.125), "123456789.125");
    }

    #[test]
    fn times_are_seconds_with_milliseconds() {
        assert_eq!(seconds(1_700_000_000_123).to_string(), "1700000000.123");
        assert_eq!(seconds(1_700_000_000_100).to_string(), "1700000000.1");
        assert_eq!(seconds(1_700_000_000_000).to_string(), "1700000000");
        assert_eq!(seconds(-1500).to_string(), "-1.5");
        assert_eq!(parse_time_ms("1700000000.5"), Some(1_700_000_000_500));
        assert_eq!(
            parse_time_ms("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_time_ms("-292273086-05-16T16:47:06Z"),
            Some(MIN_TIME_MS)
        );
        assert_eq!(parse_time_ms("soon"), None);
    }
}
