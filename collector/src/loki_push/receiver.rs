//! Loki push receiver: `POST /loki/api/v1/push`.
//!
//! | Situation                                              | Status | Body (plain text)      |
//! |--------------------------------------------------------|--------|------------------------|
//! | everything accepted (or an empty push)                 | 204    | —                      |
//! | some streams/entries refused: the valid ones are stored | 400    | one line per refusal (first 20) and a count |
//! | invalid `X-Scope-OrgID`, undecodable body, bad gzip    | 400    | what and where         |
//! | body over the compressed or decompressed limit         | 413    | the limit              |
//! | unsupported `Content-Type` / `Content-Encoding`        | 415    | what is supported      |
//! | ingest queue full                                      | 429    | `Retry-After: 1`       |
//! | write-ahead log failed                                 | 500    | the error              |
//! | server shutting down                                   | 503    | `Retry-After: 5`       |
//!
//! `Content-Type: application/json` is JSON; `application/x-protobuf`, or no `Content-Type`
//! at all (as Loki does), is snappy-compressed protobuf. Either may additionally be sent with
//! `Content-Encoding: gzip`. Metrics use the source `loki_push`; a request refused as a whole
//! counts as one received and one rejected record (reasons `decode_error`, `body_too_large`,
//! `unsupported_media_type`), an invalid tenant is not counted.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use sightline_http::{ApiError, ErrorKind, tenant_from_headers};
use sightline_model::{LogBatch, TenantId};

use super::decode::{DecodeError, Decoded, LokiPushConfig, PushFormat, decode_push};
use crate::otlp::body::{
    BodyError, content_encoding, decode_content, media_type, read_limited, unix_now_ns,
};
use crate::refusal::ingest_refusal;
use crate::{CollectorMetrics, IngestHandle};

/// The `source` label of this receiver's metrics.
pub const SOURCE: &str = "loki_push";

/// Refusals listed one by one in a 400 answer; the rest are only counted.
pub const MAX_LISTED_REJECTIONS: usize = 20;

/// What the push handler needs.
#[derive(Debug, Clone)]
pub struct LokiPushState {
    /// Where accepted batches go.
    pub ingest: IngestHandle,
    /// Counters, source `loki_push`.
    pub metrics: CollectorMetrics,
    /// Size and validation limits (`[loki_push]` in the server's configuration).
    pub config: LokiPushConfig,
}

impl LokiPushState {
    /// State with the default [`LokiPushConfig`].
    pub fn new(ingest: IngestHandle, metrics: CollectorMetrics) -> Self {
        Self {
            ingest,
            metrics,
            config: LokiPushConfig::default(),
        }
    }

    /// The same state with another configuration.
    pub fn with_config(mut self, config: LokiPushConfig) -> Self {
        self.config = config;
        self
    }
}

/// The Loki push routes: `POST /loki/api/v1/push`.
pub fn router(state: LokiPushState) -> Router {
    Router::new()
        .route("/loki/api/v1/push", post(push))
        .with_state(state)
}

async fn push(
    State(state): State<LokiPushState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let tenant = tenant_from_headers(&headers)?;
    let format = match media_type(&headers).as_deref() {
        Some("application/json") => PushFormat::Json,
        None | Some("application/x-protobuf") => PushFormat::SnappyProtobuf,
        Some(other) => {
            refused_whole(&state, &tenant, "unsupported_media_type", 0);
            return Err(ApiError::unsupported_media_type(format!(
                "unsupported Content-Type {other:?}; use application/x-protobuf (snappy) or application/json"
            )));
        }
    };
    handle(&state, &tenant, format, &headers, body).await
}

async fn handle(
    state: &LokiPushState,
    tenant: &TenantId,
    format: PushFormat,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let limits = state.config;
    let body_error = |e: BodyError, bytes: usize| {
        refused_whole(state, tenant, e.reason(), bytes as u64);
        ApiError::from(e)
    };
    let encoding = content_encoding(headers).map_err(|e| body_error(e, 0))?;
    let raw = read_limited(headers, body, limits.max_body_bytes)
        .await
        .map_err(|e| body_error(e, 0))?;
    let raw_len = raw.len();
    let now_ns = unix_now_ns();

    // Decompression, decoding and validation are CPU work: keep them off the async workers.
    let decoded = tokio::task::spawn_blocking(move || -> Result<_, Undecodable> {
        let payload = decode_content(encoding, raw, limits.max_decompressed_bytes)
            .map_err(Undecodable::Body)?;
        let decoded =
            decode_push(format, &payload, &limits, now_ns).map_err(Undecodable::Payload)?;
        Ok((payload.len(), decoded))
    })
    .await
    .map_err(|e| ApiError::internal(format!("decoding task failed: {e}")))?;
    let (payload_len, decoded) = match decoded {
        Ok(ok) => ok,
        Err(Undecodable::Body(e)) => return Err(body_error(e, raw_len)),
        Err(Undecodable::Payload(e)) => {
            let (kind, reason) = match e {
                DecodeError::TooLarge { .. } => (ErrorKind::TooLarge, "body_too_large"),
                _ => (ErrorKind::BadRequest, "decode_error"),
            };
            refused_whole(state, tenant, reason, raw_len as u64);
            return Err(ApiError::new(kind, e.to_string()));
        }
    };

    let m = &state.metrics;
    let t = tenant.as_str();
    m.received(SOURCE, t, decoded.received_entries, payload_len as u64);
    for r in &decoded.rejections {
        m.rejected(SOURCE, t, r.reason, r.entries);
    }
    let Decoded {
        streams,
        accepted_entries,
        rejections,
        received_entries,
    } = decoded;
    if !streams.is_empty() {
        let batch = LogBatch {
            tenant: tenant.clone(),
            streams,
        };
        if let Err(e) = state.ingest.ingest(batch).await {
            let (error, reason) = ingest_refusal(&e);
            m.rejected(SOURCE, t, reason, accepted_entries);
            return Err(error);
        }
        m.accepted(SOURCE, t, accepted_entries);
    }
    if rejections.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let refused = received_entries - accepted_entries;
    let mut body =
        format!("accepted {accepted_entries} of {received_entries} entries, refused {refused}:\n");
    for r in rejections.iter().take(MAX_LISTED_REJECTIONS) {
        body.push_str(&r.message);
        body.push('\n');
    }
    if rejections.len() > MAX_LISTED_REJECTIONS {
        body.push_str(&format!(
            "… and {} more refusals\n",
            rejections.len() - MAX_LISTED_REJECTIONS
        ));
    }
    // Partial acceptance: the valid part is stored, the answer lists what was refused.
    Err(ApiError::bad_request(body))
}

/// Why a read body could not be decoded.
enum Undecodable {
    /// Content-Encoding trouble (invalid gzip, decompressed size over the limit).
    Body(BodyError),
    /// Not a valid push payload.
    Payload(DecodeError),
}

/// Counts a request refused before its entries could be counted.
fn refused_whole(state: &LokiPushState, tenant: &TenantId, reason: &'static str, bytes: u64) {
    let m = &state.metrics;
    m.refused_whole("logs", SOURCE, tenant.as_str(), reason, bytes);
}

#[cfg(test)]
mod tests {
    use axum::http::Request;
    use tower::ServiceExt;

    use axum::http::header;
    use sightline_http::TENANT_HEADER;

    use super::super::decode::tests::snappy_push;
    use super::*;
    use crate::metrics::RejectLabels;
    use crate::otlp::body::testing::{full_ingest, gzip, recording_ingest};

    const JSON: &str = r#"{"streams":[{"stream":{"app":"web"},"values":[
        ["1700000000000000000","one"],["1700000000000000001","two",{"user":"u1"}]]}]}"#;

    fn state(ingest: IngestHandle) -> LokiPushState {
        LokiPushState::new(ingest, CollectorMetrics::default())
    }

    fn post(content_type: &str) -> axum::http::request::Builder {
        Request::post("/loki/api/v1/push").header(header::CONTENT_TYPE, content_type)
    }

    async fn send(router: Router, req: Request<Body>) -> (StatusCode, HeaderMap, String) {
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn json_push_is_204_and_ingested() {
        let (ingest, recorded) = recording_ingest();
        let req = post("application/json")
            .header(TENANT_HEADER, "team-l")
            .body(Body::from(JSON))
            .unwrap();
        let (status, _, body) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let batches = recorded.lock().unwrap();
        assert_eq!(batches[0].tenant.as_str(), "team-l");
        let st = &batches[0].streams[0];
        assert_eq!(st.labels.get("service_name"), Some("web"));
        assert_eq!(
            st.records[1].attributes,
            vec![("user".to_string(), "u1".to_string())]
        );
    }

    #[tokio::test]
    async fn gzip_json_push() {
        let (ingest, recorded) = recording_ingest();
        let req = post("application/json; charset=utf-8")
            .header(header::CONTENT_ENCODING, "gzip")
            .body(Body::from(gzip(JSON.as_bytes())))
            .unwrap();
        let (status, _, _) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(recorded.lock().unwrap()[0].record_count(), 2);
    }

    #[tokio::test]
    async fn truncated_gzip_is_400() {
        let (ingest, recorded) = recording_ingest();
        let gz = gzip(JSON.as_bytes());
        let req = post("application/json")
            .header(header::CONTENT_ENCODING, "gzip")
            .body(Body::from(gz[..gz.len() - 12].to_vec()))
            .unwrap();
        let (status, _, body) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body.starts_with("invalid gzip body: unexpected end of file"),
            "{body}"
        );
        assert!(recorded.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn snappy_protobuf_push_round_trip() {
        let (ingest, recorded) = recording_ingest();
        let body = snappy_push(
            r#"{job="varlogs", host="h1"}"#,
            &[(1_000_000_007, "line a")],
        );
        let req = post("application/x-protobuf")
            .body(Body::from(body))
            .unwrap();
        let (status, _, text) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
        let batches = recorded.lock().unwrap();
        let st = &batches[0].streams[0];
        assert_eq!(
            st.labels.to_canonical(),
            r#"{host="h1", job="varlogs", service_name="varlogs"}"#
        );
        assert_eq!(st.records[0].timestamp_ns, 1_000_000_007);
        assert_eq!(st.records[0].body, "line a");
    }

    #[tokio::test]
    async fn invalid_snappy_is_400() {
        let (ingest, _) = recording_ingest();
        let req = post("application/x-protobuf")
            .body(Body::from(vec![0xffu8; 12]))
            .unwrap();
        let (status, _, body) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.starts_with("invalid snappy block: "), "{body}");
    }

    #[tokio::test]
    async fn invalid_json_names_position() {
        let (ingest, _) = recording_ingest();
        let st = state(ingest);
        let metrics = st.metrics.clone();
        let req = post("application/json")
            .body(Body::from(r#"{"streams":[{"stream":}]}"#))
            .unwrap();
        let (status, _, body) = send(router(st), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body.starts_with("invalid JSON at line 1, column 23: "),
            "{body}"
        );
        let l = RejectLabels {
            signal: "logs",
            source: SOURCE,
            tenant: "default".into(),
            reason: "decode_error",
        };
        assert_eq!(metrics.records_rejected.get_or_create(&l).get(), 1);
    }

    #[tokio::test]
    async fn partial_acceptance_stores_valid_and_names_refused() {
        let (ingest, recorded) = recording_ingest();
        let st = state(ingest);
        let metrics = st.metrics.clone();
        let body = r#"{"streams":[
            {"stream":{"app":"x"},"values":[["1","ok 0"],["2","ok 1"],["3","ok 2"],["abc","bad"]]},
            {"stream":{"app-x":"y"},"values":[["1","lost"]]}
        ]}"#;
        let req = post("application/json").body(Body::from(body)).unwrap();
        let (status, _, text) = send(router(st), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            text,
            "accepted 3 of 5 entries, refused 2:\n\
             stream {app=\"x\"}: entry 3: timestamp \"abc\" is not an integer\n\
             stream {app-x=\"y\"}: invalid label name \"app-x\"\n"
        );
        let batches = recorded.lock().unwrap();
        let bodies: Vec<_> = batches[0].streams[0]
            .records
            .iter()
            .map(|r| r.body.as_str())
            .collect();
        assert_eq!(bodies, ["ok 0", "ok 1", "ok 2"]);
        let reject = |reason| RejectLabels {
            signal: "logs",
            source: SOURCE,
            tenant: "default".into(),
            reason,
        };
        assert_eq!(
            metrics
                .records_rejected
                .get_or_create(&reject("invalid_timestamp"))
                .get(),
            1
        );
        assert_eq!(
            metrics
                .records_rejected
                .get_or_create(&reject("invalid_labels"))
                .get(),
            1
        );
    }

    #[tokio::test]
    async fn refusal_list_is_bounded() {
        let (ingest, recorded) = recording_ingest();
        let values: Vec<String> = (0..30).map(|i| format!(r#"["t{i}","x"]"#)).collect();
        let body = format!(
            r#"{{"streams":[{{"stream":{{"a":"b"}},"values":[{}]}}]}}"#,
            values.join(",")
        );
        let req = post("application/json").body(Body::from(body)).unwrap();
        let (status, _, text) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(text.lines().count(), 1 + MAX_LISTED_REJECTIONS + 1);
        assert!(text.ends_with("… and 10 more refusals\n"), "{text}");
        assert!(
            recorded.lock().unwrap().is_empty(),
            "nothing valid, nothing ingested"
        );
    }

    #[tokio::test]
    async fn unsupported_content_type_is_415() {
        let (ingest, _) = recording_ingest();
        let req = post("text/plain").body(Body::from("x")).unwrap();
        let (status, _, body) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(body.contains("\"text/plain\""), "{body}");
    }

    #[tokio::test]
    async fn bad_tenant_is_400() {
        let (ingest, _) = recording_ingest();
        let req = post("application/json")
            .header(TENANT_HEADER, "t*x")
            .body(Body::from(JSON))
            .unwrap();
        let (status, _, body) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("illegal character '*'"), "{body}");
    }

    #[tokio::test]
    async fn overload_is_429_with_retry_after() {
        let (ingest, _rx) = full_ingest().await;
        let req = post("application/json").body(Body::from(JSON)).unwrap();
        let (status, headers, _) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "1");
    }

    #[tokio::test]
    async fn oversized_body_is_413() {
        let (ingest, _) = recording_ingest();
        let mut st = state(ingest);
        st.config.max_body_bytes = 16;
        let req = post("application/json").body(Body::from(JSON)).unwrap();
        let (status, _, _) = send(router(st), req).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
