//! OTLP/HTTP receiver: `POST /v1/logs` and `POST /v1/metrics`.
//!
//! Follows the OTLP/HTTP specification: the body is an `ExportLogsServiceRequest` (or
//! `ExportMetricsServiceRequest`, translated by [`super::metrics`]) as binary protobuf (`Content-Type: application/x-protobuf`) or OTLP/JSON (`application/json`: hex
//! trace and span ids, enums as integers, 64-bit integers as strings), optionally
//! `Content-Encoding: gzip`. The answer uses the request's encoding.
//!
//! | Situation                                         | Status | Body                         |
//! |---------------------------------------------------|--------|------------------------------|
//! | accepted (possibly with invalid records dropped)  | 200    | `Export…ServiceResponse`, `partial_success` set when records (data points, samples refused by the store) were rejected |
//! | invalid `X-Scope-OrgID`, undecodable body or gzip | 400    | `google.rpc.Status`          |
//! | body over the compressed or decompressed limit    | 413    | `google.rpc.Status`          |
//! | unsupported `Content-Type` / `Content-Encoding`   | 415    | `google.rpc.Status` (JSON)   |
//! | ingest queue full                                 | 429    | `Status`, `Retry-After: 1`   |
//! | write-ahead log failed                            | 500    | `google.rpc.Status`          |
//! | server shutting down                              | 503    | `Status`, `Retry-After: 5`   |
//!
//! Counters use the source `otlp_http` (signal `logs` or `metrics`; for metrics, records are
//! samples). A request refused as a whole before its records could be counted (bad media
//! type, too large, undecodable) counts as one received and one rejected record, so the
//! counters still show it; an invalid tenant is not counted (there is no tenant to attribute
//! it to). `/v1/metrics` exists only when the state has a metric ingest
//! ([`OtlpHttpState::with_metrics`]).

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use sightline_http::{ApiError, ErrorBody, tenant_from_headers};
use sightline_model::TenantId;

use super::OtlpConfig;
use super::body::{
    BodyError, content_encoding, decode_content, media_type, read_limited, unix_now_ns,
};
use super::convert::convert_request_with;
use super::metrics::OtlpMetricsIngest;
use super::store_logs;
use super::traces::{self, SpanIngest};
use super::utf8;
use crate::refusal::ingest_refusal;
use crate::{CollectorMetrics, IngestHandle};

/// The `source` label of this receiver's metrics.
pub const SOURCE: &str = "otlp_http";

/// What the `/v1/logs` and `/v1/metrics` handlers need.
#[derive(Debug, Clone)]
pub struct OtlpHttpState {
    /// Where accepted log batches go.
    pub ingest: IngestHandle,
    /// Counters, source `otlp_http`.
    pub metrics: CollectorMetrics,
    /// Body size limits (`[otlp]` in the server's configuration).
    pub config: OtlpConfig,
    /// Where accepted metrics go; `None`: no `/v1/metrics` route.
    pub metric_ingest: Option<OtlpMetricsIngest>,
    /// Where accepted spans go; `None`: no `/v1/traces` route.
    pub span_ingest: Option<SpanIngest>,
}

impl OtlpHttpState {
    /// State with the default [`OtlpConfig`], logs only.
    pub fn new(ingest: IngestHandle, metrics: CollectorMetrics) -> Self {
        Self {
            ingest,
            metrics,
            config: OtlpConfig::default(),
            metric_ingest: None,
            span_ingest: None,
        }
    }

    /// The same state with another configuration.
    pub fn with_config(mut self, config: OtlpConfig) -> Self {
        self.config = config;
        self
    }

    /// The same state also receiving metrics on `/v1/metrics`. Give the gRPC metrics service
    /// the same [`OtlpMetricsIngest`] (a clone) so that both share the delta state.
    pub fn with_metrics(mut self, metric_ingest: OtlpMetricsIngest) -> Self {
        self.metric_ingest = Some(metric_ingest);
        self
    }

    /// The same state also receiving traces on `/v1/traces`.
    pub fn with_traces(mut self, span_ingest: SpanIngest) -> Self {
        self.span_ingest = Some(span_ingest);
        self
    }
}

/// The OTLP/HTTP routes: `POST /v1/logs`, and `POST /v1/metrics` when the state has a
/// metric ingest ([`OtlpHttpState::with_metrics`]).
///
/// Any other path is a 404 and any other method a 405, answered as a `google.rpc.Status`
/// naming the path (protobuf when the request is, JSON otherwise).
pub fn router(state: OtlpHttpState) -> Router {
    let mut router = Router::new().route("/v1/logs", post(export_logs));
    if state.metric_ingest.is_some() {
        router = router.route("/v1/metrics", post(export_metrics));
    }
    if state.span_ingest.is_some() {
        router = router.route("/v1/traces", post(export_traces));
    }
    router
        .with_state(state)
        .fallback(|method: Method, uri: Uri, headers: HeaderMap| async move {
            let error = ApiError::unknown_path(method.as_str(), uri.path());
            error.response(reply_encoding(&headers).error_body())
        })
        .method_not_allowed_fallback(|method: Method, uri: Uri, headers: HeaderMap| async move {
            let error = ApiError::method_not_allowed(method.as_str(), uri.path());
            error.response(reply_encoding(&headers).error_body())
        })
}

/// The encoding of a request, if it is one OTLP/HTTP speaks.
fn request_encoding(media: Option<&str>) -> Option<Encoding> {
    match media {
        Some("application/x-protobuf") => Some(Encoding::Protobuf),
        Some("application/json") => Some(Encoding::Json),
        _ => None,
    }
}

/// The encoding to answer in: the request's, JSON when it has none we speak (readable by
/// anyone).
fn reply_encoding(headers: &HeaderMap) -> Encoding {
    request_encoding(media_type(headers).as_deref()).unwrap_or(Encoding::Json)
}

/// Wire encoding of the request and therefore of the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }

    /// The error body answered in this encoding: `google.rpc.Status`.
    fn error_body(self) -> ErrorBody {
        match self {
            Self::Protobuf => ErrorBody::OtlpProtobuf,
            Self::Json => ErrorBody::OtlpJson,
        }
    }
}

/// The telemetry signal of a route, for the counters of requests refused as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Logs,
    Metrics,
    Traces,
}

/// Tenant and wire encoding of a request, or the failure refusing it and the encoding to
/// answer in.
fn preamble(
    state: &OtlpHttpState,
    signal: Signal,
    headers: &HeaderMap,
) -> Result<(TenantId, Encoding), (ApiError, Encoding)> {
    let media = media_type(headers);
    let encoding = request_encoding(media.as_deref());
    // Errors found before the encoding is known are answered in JSON: readable by anyone.
    let reply_encoding = encoding.unwrap_or(Encoding::Json);

    let tenant = tenant_from_headers(headers).map_err(|e| (e, reply_encoding))?;
    let Some(encoding) = encoding else {
        refused_whole(state, signal, &tenant, "unsupported_media_type", 0);
        let shown = media.unwrap_or_else(|| "none".to_string());
        return Err((
            ApiError::unsupported_media_type(format!(
                "unsupported Content-Type {shown:?}; use application/x-protobuf or application/json"
            )),
            reply_encoding,
        ));
    };
    Ok((tenant, encoding))
}

async fn export_logs(
    State(state): State<OtlpHttpState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (tenant, encoding) = match preamble(&state, Signal::Logs, &headers) {
        Ok(ok) => ok,
        Err((failure, encoding)) => return failure.response(encoding.error_body()),
    };
    match handle_logs(&state, &tenant, encoding, &headers, body).await {
        Ok(resp) => resp,
        Err(f) => f.response(encoding.error_body()),
    }
}

/// Reads, decompresses, decodes and converts a request body (the last three off the async
/// workers: CPU work on up to tens of MiB). Returns the decoded payload size and what
/// `convert` made of the request; counts whole-request refusals under `signal`.
async fn decode_body<T, R>(
    state: &OtlpHttpState,
    signal: Signal,
    tenant: &TenantId,
    encoding: Encoding,
    headers: &HeaderMap,
    body: Body,
    convert: impl FnOnce(T) -> R + Send + 'static,
) -> Result<(usize, usize, R), ApiError>
where
    T: Message + Default + serde::de::DeserializeOwned + 'static,
    R: Send + 'static,
{
    let limits = state.config;
    let body_error = |e: BodyError, bytes: usize| {
        refused_whole(state, signal, tenant, e.reason(), bytes as u64);
        ApiError::from(e)
    };
    let content = content_encoding(headers).map_err(|e| body_error(e, 0))?;
    let raw = read_limited(headers, body, limits.max_body_bytes)
        .await
        .map_err(|e| body_error(e, 0))?;
    let raw_len = raw.len();

    let decoded = tokio::task::spawn_blocking(move || -> Result<_, Undecodable> {
        let payload = decode_content(content, raw, limits.max_decompressed_bytes)
            .map_err(Undecodable::Body)?;
        let message = match signal {
            Signal::Logs => utf8::Msg::LogsRequest,
            Signal::Metrics => utf8::Msg::MetricsRequest,
            Signal::Traces => utf8::Msg::TracesRequest,
        };
        let (request, repaired) =
            decode_request::<T>(encoding, &payload, message).map_err(Undecodable::Payload)?;
        Ok((payload.len(), repaired, convert(request)))
    })
    .await
    .map_err(|e| ApiError::internal(format!("decoding task failed: {e}")))?;
    match decoded {
        Ok(ok) => Ok(ok),
        Err(Undecodable::Body(e)) => Err(body_error(e, raw_len)),
        Err(Undecodable::Payload(msg)) => {
            refused_whole(state, signal, tenant, "decode_error", raw_len as u64);
            Err(ApiError::bad_request(msg))
        }
    }
}

/// A `200 OK` carrying `body` in `encoding`.
fn ok_response(encoding: Encoding, body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}

async fn handle_logs(
    state: &OtlpHttpState,
    tenant: &TenantId,
    encoding: Encoding,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let now_ns = unix_now_ns();
    let limits = state.config.record_limits();
    let (payload_len, repaired, mut converted) = decode_body(
        state,
        Signal::Logs,
        tenant,
        encoding,
        headers,
        body,
        move |request: ExportLogsServiceRequest| convert_request_with(request, now_ns, &limits),
    )
    .await?;
    note_repaired(&mut converted.error_message, repaired);

    let bytes = payload_len as u64;
    let response = store_logs(
        &state.ingest,
        &state.metrics,
        SOURCE,
        tenant,
        bytes,
        converted,
    )
    .await?;
    let body = match encoding {
        Encoding::Protobuf => response.encode_to_vec(),
        Encoding::Json => response_json(&response).into_bytes(),
    };
    Ok(ok_response(encoding, body))
}

async fn export_metrics(
    State(state): State<OtlpHttpState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (tenant, encoding) = match preamble(&state, Signal::Metrics, &headers) {
        Ok(ok) => ok,
        Err((failure, encoding)) => return failure.response(encoding.error_body()),
    };
    match handle_metrics(&state, &tenant, encoding, &headers, body).await {
        Ok(resp) => resp,
        Err(f) => f.response(encoding.error_body()),
    }
}

async fn handle_metrics(
    state: &OtlpHttpState,
    tenant: &TenantId,
    encoding: Encoding,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Some(sink) = state.metric_ingest.clone() else {
        return Err(ApiError::not_found(
            "metrics are not received on this endpoint",
        ));
    };
    let now_ms = unix_now_ns() / 1_000_000;
    let translator = sink.clone();
    let tenant_for_task = tenant.clone();
    let (payload_len, repaired, mut translated) = decode_body(
        state,
        Signal::Metrics,
        tenant,
        encoding,
        headers,
        body,
        move |request: ExportMetricsServiceRequest| {
            translator.translate(request, &tenant_for_task, now_ms)
        },
    )
    .await?;
    note_repaired(&mut translated.error_message, repaired);
    let outcome = sink
        .store(
            tenant,
            translated,
            SOURCE,
            payload_len as u64,
            &state.metrics,
        )
        .await
        .map_err(|e| ingest_refusal(&e).0)?;
    let response = outcome.response();
    let body = match encoding {
        Encoding::Protobuf => response.encode_to_vec(),
        Encoding::Json => metrics_response_json(&response).into_bytes(),
    };
    Ok(ok_response(encoding, body))
}

async fn export_traces(
    State(state): State<OtlpHttpState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (tenant, encoding) = match preamble(&state, Signal::Traces, &headers) {
        Ok(ok) => ok,
        Err((failure, encoding)) => return failure.response(encoding.error_body()),
    };
    match handle_traces(&state, &tenant, encoding, &headers, body).await {
        Ok(resp) => resp,
        Err(f) => f.response(encoding.error_body()),
    }
}

async fn handle_traces(
    state: &OtlpHttpState,
    tenant: &TenantId,
    encoding: Encoding,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Some(ingest) = state.span_ingest.clone() else {
        return Err(ApiError::not_found(
            "traces are not received on this endpoint",
        ));
    };
    let limits = state.config.span_limits();
    let (payload_len, repaired, mut converted) = decode_body(
        state,
        Signal::Traces,
        tenant,
        encoding,
        headers,
        body,
        move |request: ExportTraceServiceRequest| traces::convert_traces(request, &limits),
    )
    .await?;
    note_repaired(&mut converted.error_message, repaired);
    let response = traces::store_spans(
        &ingest,
        &state.metrics,
        SOURCE,
        tenant,
        payload_len as u64,
        converted,
    )
    .await?;
    let body = match encoding {
        Encoding::Protobuf => response.encode_to_vec(),
        Encoding::Json => traces::response_json(&response).into_bytes(),
    };
    Ok(ok_response(encoding, body))
}

/// Why a read body could not be decoded.
enum Undecodable {
    /// Content-Encoding trouble (invalid gzip, decompressed size over the limit).
    Body(BodyError),
    /// Not a valid protobuf or JSON request; the client-facing message.
    Payload(String),
}

/// Decodes the payload; the error is the client-facing message.
/// Decodes a request; one with invalid UTF-8 in its strings is decoded with U+FFFD in place
/// of each invalid sequence ([`utf8`]), and the count of repairs is returned with it.
fn decode_request<T>(
    encoding: Encoding,
    payload: &[u8],
    message: utf8::Msg,
) -> Result<(T, usize), String>
where
    T: Message + Default + serde::de::DeserializeOwned,
{
    match encoding {
        Encoding::Protobuf => match T::decode(payload) {
            Ok(request) => Ok((request, 0)),
            Err(e) if utf8::is_utf8_error(&e) => {
                let (repaired, n) = utf8::repair(message, payload)
                    .ok_or_else(|| format!("invalid protobuf: {e}"))?;
                let request =
                    T::decode(repaired.as_slice()).map_err(|e| format!("invalid protobuf: {e}"))?;
                Ok((request, n))
            }
            Err(e) => Err(format!("invalid protobuf: {e}")),
        },
        Encoding::Json => match serde_json::from_slice(payload) {
            Ok(request) => Ok((request, 0)),
            Err(e) if std::str::from_utf8(payload).is_err() => {
                let text = String::from_utf8_lossy(payload);
                let n = text.matches('\u{fffd}').count();
                let request = serde_json::from_str(&text).map_err(|_| json_error_message(&e))?;
                Ok((request, n))
            }
            Err(e) => Err(json_error_message(&e)),
        },
    }
}

/// Appends the note about repaired strings to a partial-success message.
pub(crate) fn note_repaired(message: &mut String, repaired: usize) {
    if repaired > 0 {
        if !message.is_empty() {
            message.push_str("; ");
        }
        message.push_str(&utf8::repaired_note(repaired));
    }
}

/// `invalid JSON at line L, column C: <what>` from a serde_json error.
pub(crate) fn json_error_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let what = text.strip_suffix(&suffix).unwrap_or(&text);
    format!(
        "invalid JSON at line {}, column {}: {what}",
        e.line(),
        e.column()
    )
}

/// OTLP/JSON of a response: `{}` or `{"partialSuccess":{...}}` with the int64 as a string.
fn response_json(r: &ExportLogsServiceResponse) -> String {
    match &r.partial_success {
        None => "{}".to_string(),
        Some(p) => serde_json::json!({
            "partialSuccess": {
                "rejectedLogRecords": p.rejected_log_records.to_string(),
                "errorMessage": p.error_message,
            }
        })
        .to_string(),
    }
}

/// OTLP/JSON of a metrics response, like [`response_json`].
fn metrics_response_json(r: &ExportMetricsServiceResponse) -> String {
    match &r.partial_success {
        None => "{}".to_string(),
        Some(p) => serde_json::json!({
            "partialSuccess": {
                "rejectedDataPoints": p.rejected_data_points.to_string(),
                "errorMessage": p.error_message,
            }
        })
        .to_string(),
    }
}

/// Counts a request refused before its records could be counted as one received and one
/// rejected record (a sample, for metrics).
fn refused_whole(
    state: &OtlpHttpState,
    signal: Signal,
    tenant: &TenantId,
    reason: &'static str,
    bytes: u64,
) {
    let signal = match signal {
        Signal::Logs => "logs",
        Signal::Metrics => "metrics",
        Signal::Traces => traces::SIGNAL,
    };
    let m = &state.metrics;
    m.refused_whole(signal, SOURCE, tenant.as_str(), reason, bytes);
}

#[cfg(test)]
mod tests {
    use axum::http::Request;
    use tower::ServiceExt;

    use sightline_http::TENANT_HEADER;
    use sightline_http::error::RpcStatus;

    use super::super::body::testing::{full_ingest, gzip, recording_ingest};
    use super::super::convert::tests::{record, request};
    use super::*;

    /// The OTLP/JSON example from the specification repository (`examples/logs.json`), as the
    /// Python SDK or curl would send it.
    const SPEC_JSON: &str = r#"{
      "resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
        "scopeLogs": [{
          "scope": {"name": "my.library", "version": "1.0.0",
                    "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
          "logRecords": [{
            "timeUnixNano": "1544712660300000000",
            "observedTimeUnixNano": "1544712660300000000",
            "severityNumber": 10,
            "severityText": "Information",
            "traceId": "5B8EFFF798038103D269B633813FC60C",
            "spanId": "EEE19B7EC3C1B174",
            "body": {"stringValue": "Example log record"},
            "attributes": [
              {"key": "string.attribute", "value": {"stringValue": "some string"}},
              {"key": "boolean.attribute", "value": {"boolValue": true}},
              {"key": "int.attribute", "value": {"intValue": "10"}},
              {"key": "double.attribute", "value": {"doubleValue": 637.704}},
              {"key": "array.attribute", "value": {"arrayValue": {"values": [{"stringValue": "many"}, {"stringValue": "values"}]}}},
              {"key": "map.attribute", "value": {"kvlistValue": {"values": [{"key": "some.map.key", "value": {"stringValue": "some value"}}]}}}
            ]
          }]
        }]
      }]
    }"#;

    fn state(ingest: IngestHandle) -> OtlpHttpState {
        OtlpHttpState::new(ingest, CollectorMetrics::default())
    }

    fn post(content_type: &str) -> axum::http::request::Builder {
        Request::post("/v1/logs").header(header::CONTENT_TYPE, content_type)
    }

    async fn send(router: Router, req: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, body.to_vec())
    }

    fn json_body(body: &[u8]) -> serde_json::Value {
        serde_json::from_slice(body).unwrap()
    }

    #[tokio::test]
    async fn protobuf_request_is_ingested() {
        let (ingest, recorded) = recording_ingest();
        let st = state(ingest);
        let metrics = st.metrics.clone();
        let body = request(vec![record("hello"), record("world")]).encode_to_vec();
        let req = post("application/x-protobuf")
            .header(TENANT_HEADER, "team-a")
            .body(Body::from(body))
            .unwrap();
        let (status, headers, body) = send(router(st), req).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/x-protobuf");
        let resp = ExportLogsServiceResponse::decode(body.as_slice()).unwrap();
        assert_eq!(resp.partial_success, None);
        let batches = recorded.lock().unwrap();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].tenant.as_str(), "team-a");
        assert_eq!(batches[0].record_count(), 2);
        let l = crate::metrics::SourceLabels {
            signal: "logs",
            source: SOURCE,
            tenant: "team-a".into(),
        };
        assert_eq!(metrics.records_accepted.get_or_create(&l).get(), 2);
        assert_eq!(metrics.records_received.get_or_create(&l).get(), 2);
    }

    #[tokio::test]
    async fn spec_json_example_decodes_with_hex_ids_and_string_timestamps() {
        let (ingest, recorded) = recording_ingest();
        let req = post("application/json")
            .body(Body::from(SPEC_JSON))
            .unwrap();
        let (status, headers, body) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(json_body(&body), serde_json::json!({}));
        let batches = recorded.lock().unwrap();
        let batch = &batches[0];
        assert_eq!(batch.tenant.as_str(), "default");
        let st = &batch.streams[0];
        assert_eq!(st.labels.get("service_name"), Some("my.service"));
        assert_eq!(
            (st.scope_name.as_str(), st.scope_version.as_str()),
            ("my.library", "1.0.0")
        );
        let r = &st.records[0];
        assert_eq!(r.timestamp_ns, 1_544_712_660_300_000_000);
        assert_eq!(r.observed_timestamp_ns, 1_544_712_660_300_000_000);
        assert_eq!(r.trace_id, "5b8efff798038103d269b633813fc60c");
        assert_eq!(r.span_id, "eee19b7ec3c1b174");
        assert_eq!(r.severity_number, 10);
        assert_eq!(r.severity_text, "Information");
        assert_eq!(r.body, "Example log record");
        let attr = |k: &str| {
            r.attributes
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .unwrap()
        };
        assert_eq!(attr("boolean.attribute"), "true");
        assert_eq!(attr("int.attribute"), "10");
        assert_eq!(attr("double.attribute"), "637.704");
        assert_eq!(attr("array.attribute"), r#"["many","values"]"#);
        assert_eq!(attr("map.attribute"), r#"{"some.map.key":"some value"}"#);
    }

    #[tokio::test]
    async fn gzip_json_is_decompressed() {
        let (ingest, recorded) = recording_ingest();
        let req = post("application/json")
            .header(header::CONTENT_ENCODING, "gzip")
            .body(Body::from(gzip(SPEC_JSON.as_bytes())))
            .unwrap();
        let (status, _, _) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(recorded.lock().unwrap()[0].record_count(), 1);
    }

    /// Regression: unknown paths answered 404 with an empty body.
    #[tokio::test]
    async fn unknown_path_is_404_status_naming_it() {
        let (ingest, _) = recording_ingest();
        let req = post("application/x-protobuf")
            .uri("/v1/trace")
            .body(Body::empty())
            .unwrap();
        let (status, headers, body) = send(router(state(ingest.clone())), req).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers[header::CONTENT_TYPE], "application/x-protobuf");
        let st = RpcStatus::decode(body.as_slice()).unwrap();
        assert_eq!(st.code, tonic::Code::NotFound as i32);
        assert!(st.message.contains("/v1/trace"), "{}", st.message);

        let req = Request::get("/v1/logs").body(Body::empty()).unwrap();
        let (status, _, body) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        let message = json_body(&body)["message"].as_str().unwrap().to_string();
        assert!(
            message.contains("GET") && message.contains("/v1/logs"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn truncated_gzip_is_400() {
        let (ingest, recorded) = recording_ingest();
        let gz = gzip(&request(vec![record("x")]).encode_to_vec());
        let req = post("application/x-protobuf")
            .header(header::CONTENT_ENCODING, "gzip")
            .body(Body::from(gz[..gz.len() / 2].to_vec()))
            .unwrap();
        let (status, _, body) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let st = RpcStatus::decode(body.as_slice()).unwrap();
        assert_eq!(st.code, tonic::Code::InvalidArgument as i32);
        assert!(
            st.message.starts_with("invalid gzip body: "),
            "{}",
            st.message
        );
        assert!(
            st.message.contains("unexpected end of file"),
            "{}",
            st.message
        );
        assert!(recorded.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn gzip_bomb_is_413() {
        let (ingest, _) = recording_ingest();
        let mut st = state(ingest);
        st.config = OtlpConfig {
            max_body_bytes: 1 << 20,
            max_decompressed_bytes: 1 << 20,
            ..Default::default()
        };
        let bomb = gzip(&vec![0u8; 8 << 20]);
        assert!(bomb.len() < 1 << 20);
        let req = post("application/x-protobuf")
            .header(header::CONTENT_ENCODING, "gzip")
            .body(Body::from(bomb))
            .unwrap();
        let (status, _, body) = send(router(st), req).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let st = RpcStatus::decode(body.as_slice()).unwrap();
        assert!(
            st.message.contains("decompressed request body exceeds"),
            "{}",
            st.message
        );
    }

    #[tokio::test]
    async fn oversized_body_is_413() {
        let (ingest, _) = recording_ingest();
        let mut st = state(ingest);
        st.config.max_body_bytes = 10;
        let req = post("application/json")
            .body(Body::from(SPEC_JSON))
            .unwrap();
        let (status, _, body) = send(router(st), req).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            json_body(&body)["code"],
            tonic::Code::ResourceExhausted as i32
        );
    }

    #[tokio::test]
    async fn garbage_protobuf_is_400_with_message() {
        let (ingest, recorded) = recording_ingest();
        let req = post("application/x-protobuf")
            .body(Body::from(vec![0xff, 0xff, 0xff, 0x01, 0x02]))
            .unwrap();
        let (status, headers, body) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(headers[header::CONTENT_TYPE], "application/x-protobuf");
        let st = RpcStatus::decode(body.as_slice()).unwrap();
        assert!(
            st.message.starts_with("invalid protobuf: "),
            "{}",
            st.message
        );
        assert!(recorded.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn bad_json_names_line_and_column() {
        let (ingest, _) = recording_ingest();
        let req = post("application/json")
            .body(Body::from(r#"{"resourceLogs": [}"#))
            .unwrap();
        let (status, _, body) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let v = json_body(&body);
        let msg = v["message"].as_str().unwrap();
        assert!(
            msg.starts_with("invalid JSON at line 1, column 19: "),
            "{msg}"
        );
        assert_eq!(v["code"], 3);
    }

    #[tokio::test]
    async fn unsupported_content_type_is_415() {
        let (ingest, _) = recording_ingest();
        let req = post("text/plain").body(Body::from("hi")).unwrap();
        let (status, _, body) = send(router(state(ingest.clone())), req).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let msg = json_body(&body)["message"].as_str().unwrap().to_string();
        assert!(msg.contains("\"text/plain\""), "{msg}");

        let req = post("application/json")
            .header(header::CONTENT_ENCODING, "zstd")
            .body(Body::from("{}"))
            .unwrap();
        let (status, _, _) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[tokio::test]
    async fn bad_tenant_is_400_naming_the_character() {
        let (ingest, _) = recording_ingest();
        let req = post("application/json")
            .header(TENANT_HEADER, "a/b")
            .body(Body::from("{}"))
            .unwrap();
        let (status, _, body) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let msg = json_body(&body)["message"].as_str().unwrap().to_string();
        assert!(msg.starts_with("invalid X-Scope-OrgID header: "), "{msg}");
        assert!(msg.contains("'/'"), "{msg}");
    }

    #[tokio::test]
    async fn overload_is_429_with_retry_after() {
        let (ingest, _rx) = full_ingest().await;
        let req = post("application/x-protobuf")
            .body(Body::from(request(vec![record("x")]).encode_to_vec()))
            .unwrap();
        let (status, headers, body) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "1");
        let st = RpcStatus::decode(body.as_slice()).unwrap();
        assert_eq!(st.code, tonic::Code::ResourceExhausted as i32);
    }

    #[tokio::test]
    async fn shutting_down_is_503_with_retry_after() {
        let (ingest, rx) = IngestHandle::channel(1);
        drop(rx);
        let req = post("application/json")
            .body(Body::from(SPEC_JSON))
            .unwrap();
        let (status, headers, _) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(headers.contains_key(header::RETRY_AFTER));
    }

    #[tokio::test]
    async fn invalid_records_give_partial_success() {
        let (ingest, recorded) = recording_ingest();
        let mut bad = record("bad");
        bad.trace_id = vec![1, 2, 3];
        let req = post("application/x-protobuf")
            .body(Body::from(
                request(vec![record("good"), bad]).encode_to_vec(),
            ))
            .unwrap();
        let (status, _, body) = send(router(state(ingest.clone())), req).await;
        assert_eq!(status, StatusCode::OK);
        let resp = ExportLogsServiceResponse::decode(body.as_slice()).unwrap();
        let partial = resp.partial_success.unwrap();
        assert_eq!(partial.rejected_log_records, 1);
        assert!(partial.error_message.contains("trace_id is 3 bytes long"));
        assert_eq!(recorded.lock().unwrap()[0].record_count(), 1);

        // The same in JSON: int64 as a string, camelCase names.
        let json = SPEC_JSON.replace("5B8EFFF798038103D269B633813FC60C", "abcd");
        let req = post("application/json").body(Body::from(json)).unwrap();
        let (status, _, body) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::OK);
        let v = json_body(&body);
        assert_eq!(v["partialSuccess"]["rejectedLogRecords"], "1");
        assert!(
            v["partialSuccess"]["errorMessage"]
                .as_str()
                .unwrap()
                .contains("trace_id")
        );
        assert_eq!(
            recorded.lock().unwrap().len(),
            1,
            "nothing valid, nothing ingested"
        );
    }

    /// The OTLP/JSON metrics example of the specification repository (`examples/metrics.json`).
    const SPEC_METRICS_JSON: &str = r#"{
      "resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
        "scopeMetrics": [{
          "scope": {"name": "my.library", "version": "1.0.0"},
          "metrics": [
            {"name": "my.counter", "unit": "1", "description": "I am a Counter",
             "sum": {"aggregationTemporality": 1, "isMonotonic": true, "dataPoints": [
               {"asDouble": 5, "startTimeUnixNano": "1544712660300000000",
                "timeUnixNano": "1544712660300000000",
                "attributes": [{"key": "my.counter.attr", "value": {"stringValue": "some value"}}]}]}},
            {"name": "my.gauge", "unit": "1", "description": "I am a Gauge",
             "gauge": {"dataPoints": [
               {"asDouble": 10, "timeUnixNano": "1544712660300000000",
                "attributes": [{"key": "my.gauge.attr", "value": {"stringValue": "some value"}}]}]}},
            {"name": "my.histogram", "unit": "1", "description": "I am a Histogram",
             "histogram": {"aggregationTemporality": 1, "dataPoints": [
               {"startTimeUnixNano": "1544712660300000000", "timeUnixNano": "1544712660300000000",
                "count": 2, "sum": 2, "bucketCounts": [1, 1], "explicitBounds": [1], "min": 0, "max": 2,
                "attributes": [{"key": "my.histogram.attr", "value": {"stringValue": "some value"}}]}]}},
            {"name": "my.exponential.histogram", "unit": "1", "description": "I am an Exponential Histogram",
             "exponentialHistogram": {"aggregationTemporality": 1, "dataPoints": [
               {"startTimeUnixNano": "1544712660300000000", "timeUnixNano": "1544712660300000000",
                "count": 3, "sum": 10, "scale": 0, "zeroCount": 1,
                "positive": {"offset": 1, "bucketCounts": [0, 2]}, "min": 0, "max": 5, "zeroThreshold": 0,
                "attributes": [{"key": "my.exponential.histogram.attr", "value": {"stringValue": "some value"}}]}]}}
          ]
        }]
      }]
    }"#;

    mod metrics {
        use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
        use sightline_model::{AppendReport, RejectReason};

        use super::super::super::body::testing::{
            RecordedMetrics, accept_all, full_metric_ingest, metric_ingest,
        };
        use super::super::super::metrics::tests::{T0, gauge, kv, metrics_request, point};
        use super::*;

        fn metrics_state(
            report: impl Fn(&sightline_model::MetricBatch) -> AppendReport + Send + 'static,
        ) -> (OtlpHttpState, RecordedMetrics) {
            let (logs, _) = recording_ingest();
            let (ingest, recorded) = metric_ingest(report);
            let st = OtlpHttpState::new(logs, CollectorMetrics::default())
                .with_metrics(OtlpMetricsIngest::new(ingest));
            (st, recorded)
        }

        fn post_metrics(content_type: &str) -> axum::http::request::Builder {
            Request::post("/v1/metrics").header(header::CONTENT_TYPE, content_type)
        }

        fn samples(recorded: &RecordedMetrics) -> Vec<(String, f64)> {
            recorded.lock().unwrap()[0]
                .series
                .iter()
                .map(|s| (s.labels.to_canonical(), s.samples[0].v))
                .collect()
        }

        #[tokio::test]
        async fn spec_json_example_is_translated() {
            let (st, recorded) = metrics_state(accept_all);
            let counters = st.metrics.clone();
            let req = post_metrics("application/json")
                .header(TENANT_HEADER, "team-x")
                .body(Body::from(SPEC_METRICS_JSON))
                .unwrap();
            let (status, headers, body) = send(router(st), req).await;
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
            assert_eq!(headers[header::CONTENT_TYPE], "application/json");
            assert_eq!(json_body(&body), serde_json::json!({}));
            let job = r#"job="my.service""#;
            assert_eq!(
                samples(&recorded),
                vec![
                    (
                        format!(
                            r#"{{__name__="my_counter_total", {job}, my_counter_attr="some value"}}"#
                        ),
                        5.0
                    ),
                    (
                        format!(
                            r#"{{__name__="my_gauge_ratio", {job}, my_gauge_attr="some value"}}"#
                        ),
                        10.0
                    ),
                    (
                        format!(
                            r#"{{__name__="my_histogram_bucket", {job}, le="1", my_histogram_attr="some value"}}"#
                        ),
                        1.0
                    ),
                    (
                        format!(
                            r#"{{__name__="my_histogram_bucket", {job}, le="+Inf", my_histogram_attr="some value"}}"#
                        ),
                        2.0
                    ),
                    (
                        format!(
                            r#"{{__name__="my_histogram_sum", {job}, my_histogram_attr="some value"}}"#
                        ),
                        2.0
                    ),
                    (
                        format!(
                            r#"{{__name__="my_histogram_count", {job}, my_histogram_attr="some value"}}"#
                        ),
                        2.0
                    ),
                    (
                        format!(
                            r#"{{__name__="my_exponential_histogram_bucket", {job}, le="0", my_exponential_histogram_attr="some value"}}"#
                        ),
                        1.0
                    ),
                    (
                        format!(
                            r#"{{__name__="my_exponential_histogram_bucket", {job}, le="4", my_exponential_histogram_attr="some value"}}"#
                        ),
                        1.0
                    ),
                    (
                        format!(
                            r#"{{__name__="my_exponential_histogram_bucket", {job}, le="8", my_exponential_histogram_attr="some value"}}"#
                        ),
                        3.0
                    ),
                    (
                        format!(
                            r#"{{__name__="my_exponential_histogram_bucket", {job}, le="+Inf", my_exponential_histogram_attr="some value"}}"#
                        ),
                        3.0
                    ),
                    (
                        format!(
                            r#"{{__name__="my_exponential_histogram_sum", {job}, my_exponential_histogram_attr="some value"}}"#
                        ),
                        10.0
                    ),
                    (
                        format!(
                            r#"{{__name__="my_exponential_histogram_count", {job}, my_exponential_histogram_attr="some value"}}"#
                        ),
                        3.0
                    ),
                ]
            );
            let batches = recorded.lock().unwrap();
            assert_eq!(batches[0].tenant.as_str(), "team-x");
            assert!(
                batches[0]
                    .series
                    .iter()
                    .all(|s| s.samples[0].t == 1_544_712_660_300)
            );
            let l = crate::metrics::SourceLabels {
                signal: "metrics",
                source: SOURCE,
                tenant: "team-x".into(),
            };
            assert_eq!(counters.records_accepted.get_or_create(&l).get(), 12);
            assert_eq!(counters.records_received.get_or_create(&l).get(), 12);
        }

        #[tokio::test]
        async fn protobuf_gzip_and_store_refusals_in_partial_success() {
            let (st, recorded) = metrics_state(|b| {
                let mut r = AppendReport {
                    accepted: b.sample_count() as u64 - 1,
                    ..Default::default()
                };
                r.reject(RejectReason::OutOfOrder, || {
                    "out of order sample for {__name__=\"g\"}".into()
                });
                r
            });
            let mut missing = point(T0, 0.0, vec![]);
            missing.value = None;
            let req = metrics_request(
                vec![kv("service.name", "api")],
                vec![gauge(
                    "g",
                    "",
                    vec![
                        point(T0, 1.0, vec![]),
                        point(T0 + 1_000_000, 2.0, vec![]),
                        missing,
                    ],
                )],
            );
            let req = post_metrics("application/x-protobuf")
                .header(header::CONTENT_ENCODING, "gzip")
                .body(Body::from(gzip(&req.encode_to_vec())))
                .unwrap();
            let (status, headers, body) = send(router(st), req).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(headers[header::CONTENT_TYPE], "application/x-protobuf");
            let resp = ExportMetricsServiceResponse::decode(body.as_slice()).unwrap();
            let partial = resp.partial_success.unwrap();
            assert_eq!(partial.rejected_data_points, 2);
            assert!(
                partial.error_message.contains("data_points[2]: no value"),
                "{}",
                partial.error_message
            );
            assert!(
                partial
                    .error_message
                    .contains("the store refused 1 samples (out_of_order: 1); first: out of order"),
                "{}",
                partial.error_message
            );
            assert_eq!(recorded.lock().unwrap()[0].sample_count(), 2);
        }

        #[tokio::test]
        async fn json_partial_success_uses_camel_case_and_string_int64() {
            let (st, _) = metrics_state(accept_all);
            let json = SPEC_METRICS_JSON.replace(
                "\"aggregationTemporality\": 1, \"isMonotonic\"",
                "\"aggregationTemporality\": 0, \"isMonotonic\"",
            );
            let req = post_metrics("application/json")
                .body(Body::from(json))
                .unwrap();
            let (status, _, body) = send(router(st), req).await;
            assert_eq!(status, StatusCode::OK);
            let v = json_body(&body);
            assert_eq!(v["partialSuccess"]["rejectedDataPoints"], "1");
            assert!(
                v["partialSuccess"]["errorMessage"]
                    .as_str()
                    .unwrap()
                    .contains("unspecified aggregation temporality")
            );
        }

        #[tokio::test]
        async fn errors_follow_the_logs_status_table() {
            // No metric ingest: no route.
            let (logs, _) = recording_ingest();
            let req = post_metrics("application/json")
                .body(Body::from("{}"))
                .unwrap();
            let (status, _, _) = send(router(state(logs)), req).await;
            assert_eq!(status, StatusCode::NOT_FOUND);

            let (st, _) = metrics_state(accept_all);
            let counters = st.metrics.clone();
            let req = post_metrics("application/json")
                .body(Body::from(r#"{"resourceMetrics": 3}"#))
                .unwrap();
            let (status, _, body) = send(router(st.clone()), req).await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(
                json_body(&body)["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("invalid JSON at line 1")
            );
            let rejected = |reason| {
                counters
                    .records_rejected
                    .get_or_create(&crate::metrics::RejectLabels {
                        signal: "metrics",
                        source: SOURCE,
                        tenant: "default".into(),
                        reason,
                    })
                    .get()
            };
            assert_eq!(rejected("decode_error"), 1);

            let req = post_metrics("text/plain").body(Body::from("x")).unwrap();
            let (status, _, _) = send(router(st.clone()), req).await;
            assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
            assert_eq!(rejected("unsupported_media_type"), 1);

            let mut small = st.clone();
            small.config.max_body_bytes = 8;
            let req = post_metrics("application/json")
                .body(Body::from(SPEC_METRICS_JSON))
                .unwrap();
            let (status, _, _) = send(router(small), req).await;
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

            let (logs, _) = recording_ingest();
            let (full, _rx) = full_metric_ingest().await;
            let st = OtlpHttpState::new(logs, CollectorMetrics::default())
                .with_metrics(OtlpMetricsIngest::new(full));
            let req = post_metrics("application/json")
                .body(Body::from(SPEC_METRICS_JSON))
                .unwrap();
            let (status, headers, _) = send(router(st), req).await;
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(headers[header::RETRY_AFTER], "1");
        }

        #[tokio::test]
        async fn a_refused_batch_does_not_advance_delta_totals() {
            let (logs, _) = recording_ingest();
            let (full, rx) = full_metric_ingest().await;
            let sink = OtlpMetricsIngest::new(full);
            let st =
                OtlpHttpState::new(logs, CollectorMetrics::default()).with_metrics(sink.clone());
            let req = post_metrics("application/json")
                .body(Body::from(SPEC_METRICS_JSON))
                .unwrap();
            let (status, _, _) = send(router(st), req).await;
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
            drop(rx);
            // Resent: the counter starts from its first delta again, not from twice it.
            let req: ExportMetricsServiceRequest = serde_json::from_str(SPEC_METRICS_JSON).unwrap();
            let t = sink.translate(req, &TenantId::default_tenant(), 0);
            let counter = t
                .series
                .iter()
                .find(|s| s.labels.get("__name__") == Some("my_counter_total"))
                .unwrap();
            assert_eq!(counter.samples[0].v, 5.0);
        }
    }
}
