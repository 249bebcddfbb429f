//! OTLP/HTTP logs receiver: `POST /v1/logs`.
//!
//! Follows the OTLP/HTTP specification: the body is an `ExportLogsServiceRequest` as binary
//! protobuf (`Content-Type: application/x-protobuf`) or OTLP/JSON (`application/json`: hex
//! trace and span ids, enums as integers, 64-bit integers as strings), optionally
//! `Content-Encoding: gzip`. The answer uses the request's encoding.
//!
//! | Situation                                         | Status | Body                         |
//! |---------------------------------------------------|--------|------------------------------|
//! | accepted (possibly with invalid records dropped)  | 200    | `ExportLogsServiceResponse`, `partial_success` set when records were rejected |
//! | invalid `X-Scope-OrgID`, undecodable body or gzip | 400    | `google.rpc.Status`          |
//! | body over the compressed or decompressed limit    | 413    | `google.rpc.Status`          |
//! | unsupported `Content-Type` / `Content-Encoding`   | 415    | `google.rpc.Status` (JSON)   |
//! | ingest queue full                                 | 429    | `Status`, `Retry-After: 1`   |
//! | write-ahead log failed                            | 500    | `google.rpc.Status`          |
//! | server shutting down                              | 503    | `Status`, `Retry-After: 5`   |
//!
//! Metrics use the source `otlp_http`. A request refused as a whole before its records could
//! be counted (bad media type, too large, undecodable) counts as one received and one
//! rejected record, so the counters still show it; an invalid tenant is not counted (there is
//! no tenant to attribute it to).

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message;
use sightline_model::{LogBatch, TenantId};

use super::body::{
    BodyError, content_encoding, decode_content, media_type, read_limited, unix_now_ns,
};
use super::convert::{Converted, convert_request};
use crate::tenant::{TENANT_HEADER, tenant_from_header};
use crate::{CollectorMetrics, IngestError, IngestHandle};

/// The `source` label of this receiver's metrics.
pub const SOURCE: &str = "otlp_http";

/// Size limits of OTLP/HTTP request bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtlpHttpLimits {
    /// Largest body accepted as sent (compressed or not), in bytes. Default 16 MiB.
    pub max_body_bytes: usize,
    /// Largest body accepted after gzip decompression, in bytes. Default 64 MiB.
    pub max_decompressed_bytes: usize,
}

impl Default for OtlpHttpLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 << 20,
            max_decompressed_bytes: 64 << 20,
        }
    }
}

/// What the `/v1/logs` handler needs.
#[derive(Debug, Clone)]
pub struct OtlpHttpState {
    /// Where accepted batches go.
    pub ingest: IngestHandle,
    /// Counters, source `otlp_http`.
    pub metrics: CollectorMetrics,
    /// Body size limits.
    pub limits: OtlpHttpLimits,
}

impl OtlpHttpState {
    /// State with the default [`OtlpHttpLimits`].
    pub fn new(ingest: IngestHandle, metrics: CollectorMetrics) -> Self {
        Self {
            ingest,
            metrics,
            limits: OtlpHttpLimits::default(),
        }
    }
}

/// The OTLP/HTTP logs routes: `POST /v1/logs`.
pub fn router(state: OtlpHttpState) -> Router {
    Router::new()
        .route("/v1/logs", post(export_logs))
        .with_state(state)
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
}

/// `google.rpc.Status`, the error body of OTLP/HTTP (details are never filled).
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// An error answer: HTTP status, gRPC code for the `Status` body, message and retry delay.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    message: String,
    retry_after: Option<&'static str>,
}

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    fn grpc_code(&self) -> tonic::Code {
        match self.status {
            StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                tonic::Code::InvalidArgument
            }
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => {
                tonic::Code::ResourceExhausted
            }
            StatusCode::SERVICE_UNAVAILABLE => tonic::Code::Unavailable,
            _ => tonic::Code::Internal,
        }
    }

    fn into_response(self, encoding: Encoding) -> Response {
        let code = self.grpc_code() as i32;
        let body = match encoding {
            Encoding::Protobuf => RpcStatus {
                code,
                message: self.message,
            }
            .encode_to_vec(),
            Encoding::Json => serde_json::json!({ "code": code, "message": self.message })
                .to_string()
                .into_bytes(),
        };
        let mut resp = (
            self.status,
            [(header::CONTENT_TYPE, encoding.content_type())],
            body,
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(secs));
        }
        resp
    }
}

impl From<BodyError> for Failure {
    fn from(e: BodyError) -> Self {
        Self::new(e.status(), e.to_string())
    }
}

/// Maps an ingest failure to the HTTP answer and the metrics reason.
fn ingest_failure(e: &IngestError) -> (Failure, &'static str) {
    match e {
        IngestError::Overloaded => (
            Failure {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: e.to_string(),
                retry_after: Some("1"),
            },
            "overloaded",
        ),
        IngestError::ShuttingDown => (
            Failure {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: e.to_string(),
                retry_after: Some("5"),
            },
            "shutting_down",
        ),
        IngestError::Storage(_) => (
            Failure::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            "storage_error",
        ),
    }
}

async fn export_logs(
    State(state): State<OtlpHttpState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let media = media_type(&headers);
    let encoding = match media.as_deref() {
        Some("application/x-protobuf") => Some(Encoding::Protobuf),
        Some("application/json") => Some(Encoding::Json),
        _ => None,
    };
    // Errors found before the encoding is known are answered in JSON: readable by anyone.
    let reply_encoding = encoding.unwrap_or(Encoding::Json);

    let tenant = match tenant_from_header(headers.get(TENANT_HEADER).map(|v| v.as_bytes())) {
        Ok(t) => t,
        Err(e) => {
            return Failure::new(
                StatusCode::BAD_REQUEST,
                format!("invalid {TENANT_HEADER} header: {e}"),
            )
            .into_response(reply_encoding);
        }
    };
    let Some(encoding) = encoding else {
        refused_whole(&state, &tenant, "unsupported_media_type", 0);
        let shown = media.unwrap_or_else(|| "none".to_string());
        return Failure::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported Content-Type {shown:?}; use application/x-protobuf or application/json"
            ),
        )
        .into_response(reply_encoding);
    };

    match handle(&state, &tenant, encoding, &headers, body).await {
        Ok(resp) => resp,
        Err(f) => f.into_response(encoding),
    }
}

async fn handle(
    state: &OtlpHttpState,
    tenant: &TenantId,
    encoding: Encoding,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Failure> {
    let limits = state.limits;
    let body_error = |e: BodyError, bytes: usize| {
        refused_whole(state, tenant, e.reason(), bytes as u64);
        Failure::from(e)
    };
    let content = content_encoding(headers).map_err(|e| body_error(e, 0))?;
    let raw = read_limited(headers, body, limits.max_body_bytes)
        .await
        .map_err(|e| body_error(e, 0))?;
    let raw_len = raw.len();
    let now_ns = unix_now_ns();

    // Decompression and decoding are CPU work on up to tens of MiB: keep them off the
    // async workers.
    let decoded = tokio::task::spawn_blocking(move || -> Result<_, Undecodable> {
        let payload = decode_content(content, raw, limits.max_decompressed_bytes)
            .map_err(Undecodable::Body)?;
        let request = decode_request(encoding, &payload).map_err(Undecodable::Payload)?;
        Ok((payload.len(), convert_request(request, now_ns)))
    })
    .await
    .map_err(|e| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("decoding task failed: {e}"),
        )
    })?;
    let (payload_len, converted) = match decoded {
        Ok(ok) => ok,
        Err(Undecodable::Body(e)) => return Err(body_error(e, raw_len)),
        Err(Undecodable::Payload(msg)) => {
            refused_whole(state, tenant, "decode_error", raw_len as u64);
            return Err(Failure::new(StatusCode::BAD_REQUEST, msg));
        }
    };

    let m = &state.metrics;
    let t = tenant.as_str();
    m.received(SOURCE, t, converted.received_records, payload_len as u64);
    for (reason, n) in &converted.rejected_by_reason {
        m.rejected(SOURCE, t, reason, *n);
    }
    let accepted = converted.accepted_records();
    let Converted {
        streams,
        rejected_records,
        error_message,
        ..
    } = converted;
    if !streams.is_empty() {
        let batch = LogBatch {
            tenant: tenant.clone(),
            streams,
        };
        if let Err(e) = state.ingest.ingest(batch).await {
            let (failure, reason) = ingest_failure(&e);
            m.rejected(SOURCE, t, reason, accepted);
            return Err(failure);
        }
        m.accepted(SOURCE, t, accepted);
    }

    let response = ExportLogsServiceResponse {
        partial_success: (rejected_records > 0).then(|| ExportLogsPartialSuccess {
            rejected_log_records: i64::try_from(rejected_records).unwrap_or(i64::MAX),
            error_message,
        }),
    };
    let body = match encoding {
        Encoding::Protobuf => response.encode_to_vec(),
        Encoding::Json => response_json(&response).into_bytes(),
    };
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response())
}

/// Why a read body could not be decoded.
enum Undecodable {
    /// Content-Encoding trouble (invalid gzip, decompressed size over the limit).
    Body(BodyError),
    /// Not a valid protobuf or JSON request; the client-facing message.
    Payload(String),
}

/// Decodes the payload; the error is the client-facing message.
fn decode_request(encoding: Encoding, payload: &[u8]) -> Result<ExportLogsServiceRequest, String> {
    match encoding {
        Encoding::Protobuf => {
            ExportLogsServiceRequest::decode(payload).map_err(|e| format!("invalid protobuf: {e}"))
        }
        Encoding::Json => serde_json::from_slice(payload).map_err(|e| json_error_message(&e)),
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

/// Counts a request refused before its records could be counted as one received and one
/// rejected record.
fn refused_whole(state: &OtlpHttpState, tenant: &TenantId, reason: &'static str, bytes: u64) {
    state.metrics.received(SOURCE, tenant.as_str(), 1, bytes);
    state.metrics.rejected(SOURCE, tenant.as_str(), reason, 1);
}

#[cfg(test)]
mod tests {
    use axum::http::Request;
    use tower::ServiceExt;

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
        st.limits = OtlpHttpLimits {
            max_body_bytes: 1 << 20,
            max_decompressed_bytes: 1 << 20,
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
        st.limits.max_body_bytes = 10;
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
}
