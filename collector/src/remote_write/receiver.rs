//! Prometheus remote-write 1.0 receiver: `POST /api/v1/write`.
//!
//! | Situation                                                  | Status | Body (plain text)     |
//! |------------------------------------------------------------|--------|-----------------------|
//! | everything written (or nothing to write)                   | 204    | —                     |
//! | some series invalid, or samples refused by the store (out of order, too old, duplicate timestamp, series limit): the rest is written | 400 | counts, then one line per refusal (first 10) |
//! | invalid `X-Scope-OrgID`, invalid snappy or protobuf        | 400    | what and where        |
//! | body over the compressed or decompressed limit             | 413    | the limit             |
//! | `Content-Encoding` other than snappy, a remote-write 2.0 or non-protobuf `Content-Type` | 415 | what is supported |
//! | ingest queue full                                          | 429    | `Retry-After: 1`      |
//! | write-ahead log failed                                     | 500    | the error             |
//! | server shutting down                                       | 503    | `Retry-After: 5`      |
//!
//! Partial acceptance follows Mimir: valid series are written and the answer is a 400 naming
//! what was refused, so that the sender (which retries only 429 and 5xx) drops the bad data
//! instead of resending the whole batch forever; nothing good is lost. Refusals by the store
//! are 400 too, as in Prometheus's own receiver (an out-of-order sample will not get better
//! by being resent).
//!
//! Metrics use the signal `metrics` and source `remote_write`; records are samples. A request
//! refused as a whole (reasons `decode_error`, `body_too_large`, `unsupported_media_type`)
//! counts as one received and one rejected sample; an invalid tenant is not counted.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use sightline_http::{ApiError, ErrorKind, tenant_from_headers};
use sightline_model::{AppendReport, MetricBatch, TenantId};

use super::decode::{DecodeError, Decoded, RemoteWriteConfig, decode_write_request};
use crate::otlp::body::{BodyError, media_type, read_limited};
use crate::refusal::ingest_refusal;
use crate::{CollectorMetrics, MetricIngestHandle};

/// The `source` label of this receiver's metrics.
pub const SOURCE: &str = "remote_write";

/// Refusals listed one by one in a 400 answer; the rest are only counted.
pub const MAX_LISTED_REJECTIONS: usize = 10;

/// What the write handler needs.
#[derive(Debug, Clone)]
pub struct RemoteWriteState {
    /// Where accepted samples go.
    pub ingest: MetricIngestHandle,
    /// Counters, signal `metrics`, source `remote_write`.
    pub metrics: CollectorMetrics,
    /// Size and validation limits (`[remote_write]` in the server's configuration).
    pub config: RemoteWriteConfig,
}

impl RemoteWriteState {
    /// State with the default [`RemoteWriteConfig`].
    pub fn new(ingest: MetricIngestHandle, metrics: CollectorMetrics) -> Self {
        Self {
            ingest,
            metrics,
            config: RemoteWriteConfig::default(),
        }
    }

    /// The same state with another configuration.
    pub fn with_config(mut self, config: RemoteWriteConfig) -> Self {
        self.config = config;
        self
    }
}

/// The remote-write routes: `POST /api/v1/write`.
pub fn router(state: RemoteWriteState) -> Router {
    Router::new()
        .route("/api/v1/write", post(write))
        .with_state(state)
}

/// Checks `Content-Type` and `Content-Encoding`: the message to answer with 415, if any.
fn unsupported_media(headers: &HeaderMap) -> Option<String> {
    if let Some(media) = media_type(headers)
        && media != "application/x-protobuf"
    {
        return Some(format!(
            "unsupported Content-Type {media:?}; remote write 1.0 is application/x-protobuf"
        ));
    }
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = String::from_utf8_lossy(ct.as_bytes());
        let proto = ct.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            (k.trim().eq_ignore_ascii_case("proto")).then(|| v.trim().trim_matches('"').to_string())
        });
        if let Some(proto) = proto
            && proto != "prometheus.WriteRequest"
        {
            return Some(format!(
                "unsupported remote write message {proto:?}; only prometheus.WriteRequest (remote write 1.0) is supported"
            ));
        }
    }
    if let Some(enc) = headers.get(header::CONTENT_ENCODING) {
        let enc = String::from_utf8_lossy(enc.as_bytes());
        if !enc.trim().eq_ignore_ascii_case("snappy") {
            return Some(format!(
                "unsupported Content-Encoding {enc:?}; remote write bodies are snappy (block format)"
            ));
        }
    }
    None
}

async fn write(
    State(state): State<RemoteWriteState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let tenant = tenant_from_headers(&headers)?;
    if let Some(msg) = unsupported_media(&headers) {
        refused_whole(&state, &tenant, "unsupported_media_type", 0);
        return Err(ApiError::unsupported_media_type(msg));
    }
    handle(&state, &tenant, &headers, body).await
}

async fn handle(
    state: &RemoteWriteState,
    tenant: &TenantId,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let limits = state.config;
    let raw = read_limited(headers, body, limits.max_body_bytes)
        .await
        .map_err(|e: BodyError| {
            refused_whole(state, tenant, e.reason(), 0);
            ApiError::from(e)
        })?;
    let raw_len = raw.len();

    // Snappy and protobuf decoding of up to tens of MiB: keep it off the async workers.
    let decoded = tokio::task::spawn_blocking(move || decode_write_request(&raw, &limits))
        .await
        .map_err(|e| ApiError::internal(format!("decoding task failed: {e}")))?;
    let decoded = decoded.map_err(|e| {
        let (kind, reason) = match e {
            DecodeError::TooLarge { .. } => (ErrorKind::TooLarge, "body_too_large"),
            _ => (ErrorKind::BadRequest, "decode_error"),
        };
        refused_whole(state, tenant, reason, raw_len as u64);
        ApiError::new(kind, e.to_string())
    })?;

    let m = &state.metrics;
    let t = tenant.as_str();
    m.metric_received(SOURCE, t, decoded.received_samples, raw_len as u64);
    for r in &decoded.rejections {
        m.metric_rejected(SOURCE, t, r.reason, r.samples);
    }
    let Decoded {
        series,
        received_samples,
        valid_samples,
        rejections,
    } = decoded;
    let mut report = AppendReport::default();
    if !series.is_empty() {
        let batch = MetricBatch {
            tenant: tenant.clone(),
            series,
        };
        match state.ingest.ingest(batch).await {
            Ok(r) => report = r,
            Err(e) => {
                let (error, reason) = ingest_refusal(&e);
                m.metric_rejected(SOURCE, t, reason, valid_samples);
                return Err(error);
            }
        }
        m.metric_accepted(SOURCE, t, report.accepted);
        for (reason, n) in &report.rejected {
            m.metric_rejected(SOURCE, t, reason.as_str(), *n);
        }
    }
    if rejections.is_empty() && report.rejected.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    // Partial acceptance: the rest is written, the answer names what was refused.
    Err(ApiError::bad_request(refusal_body(
        received_samples,
        &rejections,
        &report,
    )))
}

/// The 400 body: a count line, the first series refusals, then the store's refusals.
fn refusal_body(
    received_samples: u64,
    rejections: &[super::decode::Rejection],
    report: &AppendReport,
) -> String {
    let refused = received_samples.saturating_sub(report.accepted);
    let mut body = format!(
        "accepted {} of {received_samples} samples, refused {refused}:\n",
        report.accepted
    );
    for r in rejections.iter().take(MAX_LISTED_REJECTIONS) {
        body.push_str(&r.message);
        body.push('\n');
    }
    if rejections.len() > MAX_LISTED_REJECTIONS {
        body.push_str(&format!(
            "… and {} more invalid series\n",
            rejections.len() - MAX_LISTED_REJECTIONS
        ));
    }
    if !report.rejected.is_empty() {
        let counts: Vec<String> = report
            .rejected
            .iter()
            .map(|(r, n)| format!("{}: {n}", r.as_str()))
            .collect();
        body.push_str(&format!(
            "store refused {} samples ({}); first: {}\n",
            report.rejected_total(),
            counts.join(", "),
            report.first_rejection.as_deref().unwrap_or("not described")
        ));
    }
    body
}

/// Counts a request refused before its samples could be counted.
fn refused_whole(state: &RemoteWriteState, tenant: &TenantId, reason: &'static str, bytes: u64) {
    let m = &state.metrics;
    m.refused_whole("metrics", SOURCE, tenant.as_str(), reason, bytes);
}

#[cfg(test)]
mod tests {
    use axum::http::Request;
    use sightline_http::TENANT_HEADER;
    use sightline_model::RejectReason;
    use tower::ServiceExt;

    use crate::IngestError;

    use super::super::decode::tests::{body, series};
    use super::*;
    use crate::metrics::{RejectLabels, SourceLabels};
    use crate::otlp::body::testing::{accept_all, full_metric_ingest, metric_ingest};

    fn state(ingest: MetricIngestHandle) -> RemoteWriteState {
        RemoteWriteState::new(ingest, CollectorMetrics::default())
    }

    fn post() -> axum::http::request::Builder {
        Request::post("/api/v1/write")
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .header(header::CONTENT_ENCODING, "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
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

    fn rejected(m: &CollectorMetrics, tenant: &str, reason: &'static str) -> u64 {
        m.records_rejected
            .get_or_create(&RejectLabels {
                signal: "metrics",
                source: SOURCE,
                tenant: tenant.into(),
                reason,
            })
            .get()
    }

    #[tokio::test]
    async fn valid_write_is_204_and_ingested_under_the_tenant() {
        let (ingest, recorded) = metric_ingest(accept_all);
        let st = state(ingest);
        let metrics = st.metrics.clone();
        let req = post()
            .header(TENANT_HEADER, "team-m")
            .body(Body::from(body(vec![
                series(
                    &[("__name__", "up"), ("job", "a")],
                    &[(1000, 1.0), (2000, f64::NAN)],
                ),
                series(&[("__name__", "x")], &[(1000, f64::NEG_INFINITY)]),
            ])))
            .unwrap();
        let (status, _, text) = send(router(st), req).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
        let batches = recorded.lock().unwrap();
        assert_eq!(batches[0].tenant.as_str(), "team-m");
        assert_eq!(batches[0].sample_count(), 3);
        assert!(batches[0].series[0].samples[1].v.is_nan());
        let l = SourceLabels {
            signal: "metrics",
            source: SOURCE,
            tenant: "team-m".into(),
        };
        assert_eq!(metrics.records_received.get_or_create(&l).get(), 3);
        assert_eq!(metrics.records_accepted.get_or_create(&l).get(), 3);
    }

    #[tokio::test]
    async fn no_content_type_or_encoding_is_accepted_as_v1() {
        let (ingest, recorded) = metric_ingest(accept_all);
        let req = Request::post("/api/v1/write")
            .body(Body::from(body(vec![series(
                &[("__name__", "up")],
                &[(1, 1.0)],
            )])))
            .unwrap();
        let (status, _, _) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(recorded.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn bad_series_are_refused_alone_and_good_ones_written() {
        let (ingest, recorded) = metric_ingest(accept_all);
        let st = state(ingest);
        let metrics = st.metrics.clone();
        let req = post()
            .body(Body::from(body(vec![
                series(&[("__name__", "good")], &[(1, 1.0), (2, 2.0)]),
                series(&[("__name__", "m"), ("a.b", "x")], &[(1, 1.0)]),
            ])))
            .unwrap();
        let (status, _, text) = send(router(st), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            text,
            "accepted 2 of 3 samples, refused 1:\n\
             series 1 {__name__=\"m\", a.b=\"x\"}: invalid label name \"a.b\": must match [a-zA-Z_][a-zA-Z0-9_]*\n"
        );
        assert_eq!(recorded.lock().unwrap()[0].sample_count(), 2);
        assert_eq!(rejected(&metrics, "default", "invalid_label_name"), 1);
    }

    #[tokio::test]
    async fn store_refusals_are_400_with_first_rejection_and_counts() {
        let (ingest, _) = metric_ingest(|batch| {
            let mut r = AppendReport {
                accepted: batch.sample_count() as u64 - 2,
                ..Default::default()
            };
            r.reject(RejectReason::OutOfOrder, || {
                "out of order sample for {__name__=\"up\"} at 1".into()
            });
            r.reject(RejectReason::SeriesLimit, || "unused".into());
            r
        });
        let st = state(ingest);
        let metrics = st.metrics.clone();
        let req = post()
            .body(Body::from(body(vec![series(
                &[("__name__", "up")],
                &[(1, 1.0), (2, 1.0), (3, 1.0)],
            )])))
            .unwrap();
        let (status, _, text) = send(router(st), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            text,
            "accepted 1 of 3 samples, refused 2:\n\
             store refused 2 samples (out_of_order: 1, series_limit: 1); \
             first: out of order sample for {__name__=\"up\"} at 1\n"
        );
        assert_eq!(rejected(&metrics, "default", "out_of_order"), 1);
        assert_eq!(rejected(&metrics, "default", "series_limit"), 1);
    }

    #[tokio::test]
    async fn invalid_snappy_and_protobuf_are_400() {
        let (ingest, recorded) = metric_ingest(accept_all);
        let st = state(ingest);
        let metrics = st.metrics.clone();
        let req = post().body(Body::from(vec![0xffu8; 12])).unwrap();
        let (status, _, text) = send(router(st.clone()), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(text.starts_with("invalid snappy block: "), "{text}");

        let framed_not_block = snap::raw::Encoder::new()
            .compress_vec(b"\x0a\x05garbage")
            .unwrap();
        let req = post().body(Body::from(framed_not_block)).unwrap();
        let (status, _, text) = send(router(st), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            text.starts_with("invalid protobuf WriteRequest: "),
            "{text}"
        );
        assert_eq!(rejected(&metrics, "default", "decode_error"), 2);
        assert!(recorded.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn oversized_bodies_are_413() {
        let (ingest, _) = metric_ingest(accept_all);
        let payload = body(vec![series(&[("__name__", "up")], &[(1, 1.0)])]);
        let mut st = state(ingest.clone());
        st.config.max_body_bytes = payload.len() - 1;
        let (status, _, text) = send(
            router(st),
            post().body(Body::from(payload.clone())).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(text.contains("exceeds the limit"), "{text}");

        let st = state(ingest).with_config(RemoteWriteConfig {
            max_decompressed_bytes: 4,
            ..Default::default()
        });
        let (status, _, text) = send(router(st), post().body(Body::from(payload)).unwrap()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(text.contains("the limit is 4"), "{text}");
    }

    #[tokio::test]
    async fn unsupported_media_is_415() {
        let (ingest, _) = metric_ingest(accept_all);
        let payload = body(vec![series(&[("__name__", "up")], &[(1, 1.0)])]);
        for (ct, ce, needle) in [
            ("application/json", "snappy", "\"application/json\""),
            (
                "application/x-protobuf;proto=io.prometheus.write.v2.Request",
                "snappy",
                "io.prometheus.write.v2.Request",
            ),
            ("application/x-protobuf", "gzip", "\"gzip\""),
        ] {
            let req = Request::post("/api/v1/write")
                .header(header::CONTENT_TYPE, ct)
                .header(header::CONTENT_ENCODING, ce)
                .body(Body::from(payload.clone()))
                .unwrap();
            let (status, _, text) = send(router(state(ingest.clone())), req).await;
            assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct} {ce}");
            assert!(text.contains(needle), "{text}");
        }
        let req = post()
            .header(
                header::CONTENT_TYPE,
                "application/x-protobuf;proto=prometheus.WriteRequest",
            )
            .body(Body::from(payload))
            .unwrap();
        let (status, _, _) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }

    #[tokio::test]
    async fn bad_tenant_is_400() {
        let (ingest, _) = metric_ingest(accept_all);
        let req = post()
            .header(TENANT_HEADER, "a/b")
            .body(Body::from(body(vec![])))
            .unwrap();
        let (status, _, text) = send(router(state(ingest)), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(text.starts_with("invalid X-Scope-OrgID header: "), "{text}");
    }

    #[tokio::test]
    async fn ingest_failures_map_to_retryable_statuses() {
        let payload = body(vec![series(&[("__name__", "up")], &[(1, 1.0)])]);
        let (ingest, _rx) = full_metric_ingest().await;
        let st = state(ingest);
        let metrics = st.metrics.clone();
        let (status, headers, _) = send(
            router(st),
            post().body(Body::from(payload.clone())).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "1");
        assert_eq!(rejected(&metrics, "default", "overloaded"), 1);

        let (ingest, rx) = MetricIngestHandle::channel(1);
        drop(rx);
        let (status, headers, _) = send(
            router(state(ingest)),
            post().body(Body::from(payload.clone())).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::RETRY_AFTER], "5");

        let (ingest, mut rx) = MetricIngestHandle::channel(1);
        tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                let _ = req.ack.send(Err(IngestError::Storage("disk full".into())));
            }
        });
        let (status, headers, text) = send(
            router(state(ingest)),
            post().body(Body::from(payload)).unwrap(),
        )
        .await;
        // Retryable: Prometheus backs off and resends rather than dropping the samples.
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::RETRY_AFTER], "5");
        assert!(text.contains("disk full"), "{text}");
    }

    #[tokio::test]
    async fn refusal_list_is_bounded() {
        let (ingest, recorded) = metric_ingest(accept_all);
        let bad: Vec<_> = (0..15)
            .map(|_| series(&[("job", "no name")], &[(1, 1.0)]))
            .collect();
        let (status, _, text) = send(
            router(state(ingest)),
            post().body(Body::from(body(bad))).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(text.lines().count(), 1 + MAX_LISTED_REJECTIONS + 1);
        assert!(text.ends_with("… and 5 more invalid series\n"), "{text}");
        assert!(
            recorded.lock().unwrap().is_empty(),
            "nothing valid, nothing ingested"
        );
    }
}
