//! OTLP/gRPC receivers: `opentelemetry.proto.collector.logs.v1.LogsService/Export`
//! ([`logs_service`]) and `opentelemetry.proto.collector.metrics.v1.MetricsService/Export`
//! ([`metrics_service`], translated by [`super::metrics`]) and
//! `opentelemetry.proto.collector.trace.v1.TraceService/Export` ([`traces_service`]).
//!
//! Requests may be gzip-compressed (the OpenTelemetry Python exporters compress by default).
//! The tenant comes from the `x-scope-orgid` metadata entry (`default` when absent).
//!
//! | Situation                              | gRPC status                                  |
//! |----------------------------------------|----------------------------------------------|
//! | accepted (invalid records dropped)     | OK, `partial_success` set when records (data points, samples refused by the store) were rejected |
//! | invalid tenant                         | `INVALID_ARGUMENT`                           |
//! | ingest queue full                      | `RESOURCE_EXHAUSTED` ("… retry later")       |
//! | server shutting down                   | `UNAVAILABLE`                                |
//! | write-ahead log cannot persist         | `UNAVAILABLE`                                |
//! | message over the size limit            | `OUT_OF_RANGE` / `RESOURCE_EXHAUSTED` (tonic) |
//! | malformed protobuf                     | `INVALID_ARGUMENT` ("failed to decode Protobuf message: …") |
//!
//! The last two are produced by tonic before `export` runs, so they do not show in this
//! receiver's counters. Tonic answers a malformed message with `INTERNAL`, which tells a
//! client the fault is ours and invites a retry; [`decode_errors_as_invalid_argument`],
//! layered on the server, corrects the code (the message stays tonic's). Counters use the source `otlp_grpc` (signal `logs` or `metrics`; for
//! metrics, records are samples); `bytes_received` counts the encoded size of the decoded
//! request.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use sightline_model::{TenantError, TenantId};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use super::OtlpConfig;
use super::body::unix_now_ns;
use super::convert::convert_request_with;
use super::metrics::OtlpMetricsIngest;
use super::store_logs;
use super::traces::SpanIngest;
use crate::refusal::ingest_refusal;
use crate::tenant::{TENANT_HEADER, tenant_from_header};
use crate::{CollectorMetrics, IngestHandle};

/// The `source` label of this receiver's metrics.
pub const SOURCE: &str = "otlp_grpc";

/// Default limit of a decoded (decompressed) request message: 64 MiB.
pub const DEFAULT_MAX_DECODING_MESSAGE_BYTES: usize = 64 << 20;

/// What the gRPC logs service needs.
#[derive(Debug, Clone)]
pub struct OtlpGrpcState {
    /// Where accepted batches go.
    pub ingest: IngestHandle,
    /// Counters, source `otlp_grpc`.
    pub metrics: CollectorMetrics,
    /// Largest request message accepted, compressed and decompressed, in bytes.
    pub max_decoding_message_bytes: usize,
    /// What one log record may hold.
    pub record_limits: super::convert::RecordLimits,
}

impl OtlpGrpcState {
    /// State with the default message size limit (64 MiB).
    pub fn new(ingest: IngestHandle, metrics: CollectorMetrics) -> Self {
        Self {
            ingest,
            metrics,
            max_decoding_message_bytes: DEFAULT_MAX_DECODING_MESSAGE_BYTES,
            record_limits: Default::default(),
        }
    }

    /// The same state with the message size limit and record limits of `config`.
    pub fn with_config(mut self, config: &OtlpConfig) -> Self {
        self.max_decoding_message_bytes = config.max_grpc_message_bytes;
        self.record_limits = config.record_limits();
        self
    }
}

/// The [`LogsService`] implementation; build the server with [`logs_service`].
#[derive(Debug, Clone)]
pub struct OtlpLogsService {
    state: OtlpGrpcState,
}

/// The tonic server for the OTLP logs service: gzip requests accepted, message size limited
/// to `state.max_decoding_message_bytes`. Add it to a `tonic::transport::Server` or route it.
pub fn logs_service(state: OtlpGrpcState) -> LogsServiceServer<OtlpLogsService> {
    let limit = state.max_decoding_message_bytes;
    LogsServiceServer::new(OtlpLogsService { state })
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit)
}

/// Rewrites tonic's answer to a request that does not decode (`INTERNAL`, "failed to decode
/// Protobuf message") to `INVALID_ARGUMENT`: the request is at fault and resending it cannot
/// help. Use it as a response map on the gRPC server
/// (`tower::util::MapResponseLayer::new(decode_errors_as_invalid_argument)`).
pub fn decode_errors_as_invalid_argument<B>(
    mut response: axum::http::Response<B>,
) -> axum::http::Response<B> {
    let headers = response.headers_mut();
    let is_decode_error = headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == b"13")
        && headers.get("grpc-message").is_some_and(|v| {
            let m = v.as_bytes();
            m.starts_with(b"failed%20to%20decode") || m.starts_with(b"failed to decode")
        });
    if is_decode_error {
        headers.insert("grpc-status", axum::http::HeaderValue::from_static("3"));
    }
    response
}

/// How many strings [`RepairUtf8`] repaired in a request: a request extension the export
/// handlers read to add the note to their partial success.
#[derive(Debug, Clone, Copy)]
pub struct Utf8Repaired(pub usize);

/// A layer for the gRPC server that keeps OTLP requests with invalid UTF-8 in a string
/// (tonic refuses the whole message): when tonic answers such a request with its decode
/// error, the message is rewritten with U+FFFD in place of each invalid sequence
/// ([`super::utf8`]) and sent to the service again, marked with [`Utf8Repaired`]. Requests
/// that decode pass through untouched; only the body is held to be able to resend it.
#[derive(Debug, Clone)]
pub struct RepairUtf8Layer {
    /// Largest message (after decompression) accepted.
    pub max_message_bytes: usize,
}

impl<S> tower::Layer<S> for RepairUtf8Layer {
    type Service = RepairUtf8<S>;

    fn layer(&self, inner: S) -> RepairUtf8<S> {
        RepairUtf8 {
            inner,
            max_message_bytes: self.max_message_bytes,
        }
    }
}

/// See [`RepairUtf8Layer`].
#[derive(Debug, Clone)]
pub struct RepairUtf8<S> {
    inner: S,
    max_message_bytes: usize,
}

type GrpcRequest = axum::http::Request<tonic::body::Body>;
type GrpcResponse = axum::http::Response<tonic::body::Body>;

impl<S> tower::Service<GrpcRequest> for RepairUtf8<S>
where
    S: tower::Service<GrpcRequest, Response = GrpcResponse> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = GrpcResponse;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<GrpcResponse, S::Error>> + Send + 'static>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: GrpcRequest) -> <Self as tower::Service<GrpcRequest>>::Future {
        // The clone that was made ready is the one to call first.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limit = self.max_message_bytes;
        Box::pin(async move {
            let message = match request.uri().path() {
                "/opentelemetry.proto.collector.logs.v1.LogsService/Export" => {
                    super::utf8::Msg::LogsRequest
                }
                "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export" => {
                    super::utf8::Msg::MetricsRequest
                }
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export" => {
                    super::utf8::Msg::TracesRequest
                }
                _ => return inner.call(request).await,
            };
            let (parts, body) = request.into_parts();
            // Frame header plus the largest message: beyond that tonic refuses anyway.
            let limited = http_body_util::Limited::new(body, limit.saturating_add(5));
            let bytes = match http_body_util::BodyExt::collect(limited).await {
                Ok(collected) => collected.to_bytes(),
                Err(e) => {
                    return Ok(
                        Status::resource_exhausted(format!("request body not read: {e}"))
                            .into_http(),
                    );
                }
            };
            let first = inner
                .call(GrpcRequest::from_parts(
                    parts.clone(),
                    tonic::body::Body::new(http_body_util::Full::new(bytes.clone())),
                ))
                .await?;
            if !is_utf8_decode_error(&first) {
                return Ok(first);
            }
            let gzip = parts
                .headers
                .get("grpc-encoding")
                .is_some_and(|v| v.as_bytes() == b"gzip");
            let Some((frame, repaired)) = repair_frame(&bytes, gzip, message, limit) else {
                return Ok(first);
            };
            let mut parts = parts;
            parts.extensions.insert(Utf8Repaired(repaired));
            let mut retry = inner.clone();
            std::future::poll_fn(|cx| retry.poll_ready(cx)).await?;
            retry
                .call(GrpcRequest::from_parts(
                    parts,
                    tonic::body::Body::new(http_body_util::Full::new(bytes::Bytes::from(frame))),
                ))
                .await
        })
    }
}

/// Whether a response is tonic's refusal of a message with invalid UTF-8 in a string.
fn is_utf8_decode_error(response: &GrpcResponse) -> bool {
    let headers = response.headers();
    headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == b"13")
        && headers
            .get("grpc-message")
            .is_some_and(|v| v.as_bytes().windows(5).any(|w| w == b"UTF-8"))
}

/// One gRPC frame (flag, length, message) with its message's strings repaired, sent
/// uncompressed (flag 0), and the number of strings repaired.
fn repair_frame(
    body: &[u8],
    gzip: bool,
    message: super::utf8::Msg,
    limit: usize,
) -> Option<(Vec<u8>, usize)> {
    let (&flag, rest) = body.split_first()?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let encoded = rest.get(4..4 + len)?;
    let plain;
    let encoded = match flag {
        0 => encoded,
        1 if gzip => {
            plain = super::body::gunzip_limited(encoded, limit).ok()?;
            &plain[..]
        }
        _ => return None,
    };
    let (repaired, n) = super::utf8::repair(message, encoded)?;
    let mut frame = Vec::with_capacity(repaired.len() + 5);
    frame.push(0);
    frame.extend_from_slice(&u32::try_from(repaired.len()).ok()?.to_be_bytes());
    frame.extend_from_slice(&repaired);
    Some((frame, n))
}

/// The tenant named by the `x-scope-orgid` metadata entry.
fn request_tenant<T>(request: &Request<T>) -> Result<TenantId, Status> {
    let key = TENANT_HEADER.to_ascii_lowercase();
    tenant_from_header(request.metadata().get(key.as_str()).map(|v| v.as_bytes()))
        .map_err(|e: TenantError| Status::invalid_argument(format!("invalid {key} metadata: {e}")))
}

#[tonic::async_trait]
impl LogsService for OtlpLogsService {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let tenant = request_tenant(&request)?;
        let repaired = request
            .extensions()
            .get::<Utf8Repaired>()
            .map_or(0, |r| r.0);
        let request = request.into_inner();
        let bytes = request.encoded_len() as u64;
        let mut converted = convert_request_with(request, unix_now_ns(), &self.state.record_limits);
        super::http::note_repaired(&mut converted.error_message, repaired);

        let state = &self.state;
        let response = store_logs(
            &state.ingest,
            &state.metrics,
            SOURCE,
            &tenant,
            bytes,
            converted,
        )
        .await
        .map_err(Status::from)?;
        Ok(Response::new(response))
    }
}

/// What the gRPC metrics service needs.
#[derive(Debug, Clone)]
pub struct OtlpGrpcMetricsState {
    /// Translation and the metric ingest queue; share it with the HTTP receiver.
    pub ingest: OtlpMetricsIngest,
    /// Counters, signal `metrics`, source `otlp_grpc`.
    pub metrics: CollectorMetrics,
    /// Largest request message accepted, compressed and decompressed, in bytes.
    pub max_decoding_message_bytes: usize,
}

impl OtlpGrpcMetricsState {
    /// State with the default message size limit (64 MiB).
    pub fn new(ingest: OtlpMetricsIngest, metrics: CollectorMetrics) -> Self {
        Self {
            ingest,
            metrics,
            max_decoding_message_bytes: DEFAULT_MAX_DECODING_MESSAGE_BYTES,
        }
    }

    /// The same state with the message size limit of `config`.
    pub fn with_config(mut self, config: &OtlpConfig) -> Self {
        self.max_decoding_message_bytes = config.max_grpc_message_bytes;
        self
    }
}

/// The [`MetricsService`] implementation; build the server with [`metrics_service`].
#[derive(Debug, Clone)]
pub struct OtlpMetricsService {
    state: OtlpGrpcMetricsState,
}

/// The tonic server for the OTLP metrics service: gzip requests accepted, message size
/// limited to `state.max_decoding_message_bytes`. Add it to the same
/// `tonic::transport::Server` as [`logs_service`].
pub fn metrics_service(state: OtlpGrpcMetricsState) -> MetricsServiceServer<OtlpMetricsService> {
    let limit = state.max_decoding_message_bytes;
    MetricsServiceServer::new(OtlpMetricsService { state })
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit)
}

#[tonic::async_trait]
impl MetricsService for OtlpMetricsService {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let tenant = request_tenant(&request)?;
        let repaired = request
            .extensions()
            .get::<Utf8Repaired>()
            .map_or(0, |r| r.0);
        let request = request.into_inner();
        let bytes = request.encoded_len() as u64;
        let sink = &self.state.ingest;
        let mut translated = sink.translate(request, &tenant, unix_now_ns() / 1_000_000);
        super::http::note_repaired(&mut translated.error_message, repaired);
        let outcome = sink
            .store(&tenant, translated, SOURCE, bytes, &self.state.metrics)
            .await
            .map_err(|e| Status::from(ingest_refusal(&e).0))?;
        Ok(Response::new(outcome.response()))
    }
}

/// What the gRPC traces service needs.
#[derive(Debug, Clone)]
pub struct OtlpGrpcTracesState {
    /// Where accepted span batches go.
    pub ingest: SpanIngest,
    /// Counters, signal `traces`, source `otlp_grpc`.
    pub metrics: CollectorMetrics,
    /// Largest request message accepted, compressed and decompressed, in bytes.
    pub max_decoding_message_bytes: usize,
    /// What one span may hold.
    pub limits: super::traces::SpanLimits,
}

impl OtlpGrpcTracesState {
    /// State with the default message size limit (64 MiB) and span limits.
    pub fn new(ingest: SpanIngest, metrics: CollectorMetrics) -> Self {
        Self {
            ingest,
            metrics,
            max_decoding_message_bytes: DEFAULT_MAX_DECODING_MESSAGE_BYTES,
            limits: Default::default(),
        }
    }

    /// The same state with the message size limit and span limits of `config`.
    pub fn with_config(mut self, config: &OtlpConfig) -> Self {
        self.max_decoding_message_bytes = config.max_grpc_message_bytes;
        self.limits = config.span_limits();
        self
    }
}

/// The [`TraceService`] implementation; build the server with [`traces_service`].
#[derive(Debug, Clone)]
pub struct OtlpTracesService {
    state: OtlpGrpcTracesState,
}

/// The tonic server for the OTLP trace service, like [`logs_service`].
pub fn traces_service(state: OtlpGrpcTracesState) -> TraceServiceServer<OtlpTracesService> {
    let limit = state.max_decoding_message_bytes;
    TraceServiceServer::new(OtlpTracesService { state })
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit)
}

#[tonic::async_trait]
impl TraceService for OtlpTracesService {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let tenant = request_tenant(&request)?;
        let repaired = request
            .extensions()
            .get::<Utf8Repaired>()
            .map_or(0, |r| r.0);
        let request = request.into_inner();
        let bytes = request.encoded_len() as u64;
        let mut converted = super::traces::convert_traces(request, &self.state.limits);
        super::http::note_repaired(&mut converted.error_message, repaired);
        let state = &self.state;
        let response = super::traces::store_spans(
            &state.ingest,
            &state.metrics,
            SOURCE,
            &tenant,
            bytes,
            converted,
        )
        .await
        .map_err(Status::from)?;
        Ok(Response::new(response))
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request as HttpRequest, StatusCode};
    use tonic::Code;
    use tonic::codegen::Service;

    use super::super::body::testing::{full_ingest, gzip, recording_ingest};
    use super::super::convert::tests::{record, request};
    use super::*;

    fn service(ingest: IngestHandle) -> OtlpLogsService {
        OtlpLogsService {
            state: OtlpGrpcState::new(ingest, CollectorMetrics::default()),
        }
    }

    fn with_tenant<T>(msg: T, tenant: &str) -> Request<T> {
        let mut req = Request::new(msg);
        req.metadata_mut()
            .insert("x-scope-orgid", tenant.parse().unwrap());
        req
    }

    #[tokio::test]
    async fn export_ingests_under_the_metadata_tenant() {
        let (ingest, recorded) = recording_ingest();
        let svc = service(ingest);
        let resp = svc
            .export(with_tenant(
                request(vec![record("a"), record("b")]),
                "team-b",
            ))
            .await
            .unwrap();
        assert_eq!(resp.get_ref().partial_success, None);
        let batches = recorded.lock().unwrap();
        assert_eq!(batches[0].tenant.as_str(), "team-b");
        assert_eq!(batches[0].record_count(), 2);
        assert_eq!(
            batches[0].streams[0].labels.get("service_name"),
            Some("checkout")
        );
    }

    #[tokio::test]
    async fn partial_success_reports_rejected_records() {
        let (ingest, recorded) = recording_ingest();
        let mut bad = record("bad");
        bad.span_id = vec![1; 3];
        let resp = service(ingest)
            .export(Request::new(request(vec![bad, record("ok")])))
            .await;
        let partial = resp.unwrap().into_inner().partial_success.unwrap();
        assert_eq!(partial.rejected_log_records, 1);
        assert!(
            partial
                .error_message
                .contains("log_records[0]: span_id is 3 bytes long")
        );
        assert_eq!(recorded.lock().unwrap()[0].tenant.as_str(), "default");
    }

    #[tokio::test]
    async fn errors_map_to_grpc_codes() {
        let (ingest, _) = recording_ingest();
        let err = service(ingest)
            .export(with_tenant(request(vec![]), "a b"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(
            err.message().contains("illegal character ' '"),
            "{}",
            err.message()
        );

        let (ingest, _rx) = full_ingest().await;
        let err = service(ingest)
            .export(Request::new(request(vec![record("x")])))
            .await;
        let err = err.unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert!(err.message().contains("retry later"));

        let (ingest, rx) = IngestHandle::channel(1);
        drop(rx);
        let err = service(ingest)
            .export(Request::new(request(vec![record("x")])))
            .await;
        assert_eq!(err.unwrap_err().code(), Code::Unavailable);

        let (ingest, mut rx) = IngestHandle::channel(1);
        tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                let _ = req
                    .ack
                    .send(Err(crate::IngestError::Storage("disk full".into())));
            }
        });
        let err = service(ingest)
            .export(Request::new(request(vec![record("x")])))
            .await;
        // A store that cannot persist (a full disk) is retryable.
        assert_eq!(err.unwrap_err().code(), Code::Unavailable);
    }

    /// A gRPC request as it travels over HTTP/2: 1-byte compression flag, 4-byte length.
    fn grpc_frame(message: &[u8], compressed: bool) -> Vec<u8> {
        let mut frame = vec![u8::from(compressed)];
        frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
        frame.extend_from_slice(message);
        frame
    }

    async fn call_server<S>(
        server: &mut S,
        frame: Vec<u8>,
        gzip_encoded: bool,
    ) -> (StatusCode, Option<Code>, String)
    where
        S: Service<HttpRequest<Body>, Response = axum::http::Response<tonic::body::Body>>,
        S::Error: std::fmt::Debug,
    {
        let mut req = HttpRequest::post(
            "http://localhost/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        )
        .header("content-type", "application/grpc")
        .header("te", "trailers");
        if gzip_encoded {
            req = req.header("grpc-encoding", "gzip");
        }
        let resp = server
            .call(req.body(Body::from(frame)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        // Errors come as "trailers-only" responses: the status is in the headers.
        let code = resp
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i32>().ok())
            .map(Code::from_i32);
        let message = resp
            .headers()
            .get("grpc-message")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        (status, code, message)
    }

    /// Tonic calls a malformed message INTERNAL; the server's response map makes it
    /// INVALID_ARGUMENT (a client must not retry it), keeping tonic's message.
    #[tokio::test]
    async fn garbage_frame_is_invalid_argument() {
        let (ingest, recorded) = recording_ingest();
        let mut server = tower::ServiceBuilder::new()
            .map_response(decode_errors_as_invalid_argument)
            .service(logs_service(OtlpGrpcState::new(
                ingest,
                CollectorMetrics::default(),
            )));
        let (status, code, message) = call_server(
            &mut server,
            grpc_frame(&[0xff, 0xff, 0xff, 0x01], false),
            false,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(code, Some(Code::InvalidArgument));
        assert!(
            message.contains("failed%20to%20decode") || message.contains("decode"),
            "{message}"
        );
        assert!(recorded.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn gzip_frames_are_accepted_and_size_is_limited() {
        let (ingest, recorded) = recording_ingest();
        let mut server = logs_service(OtlpGrpcState::new(
            ingest.clone(),
            CollectorMetrics::default(),
        ));
        let msg = request(vec![record("zipped")]).encode_to_vec();
        let (_, code, message) =
            call_server(&mut server, grpc_frame(&gzip(&msg), true), true).await;
        // A successful unary call carries grpc-status in the trailers, not the headers.
        assert_eq!(code, None, "{message}");
        tokio::task::yield_now().await;
        assert_eq!(
            recorded.lock().unwrap()[0].streams[0].records[0].body,
            "zipped"
        );

        let mut small = logs_service(OtlpGrpcState {
            max_decoding_message_bytes: 16,
            ..OtlpGrpcState::new(ingest, CollectorMetrics::default())
        });
        let (_, code, _) = call_server(&mut small, grpc_frame(&msg, false), false).await;
        assert_eq!(code, Some(Code::OutOfRange));
    }

    mod metrics {
        use sightline_model::{AppendReport, RejectReason};

        use super::super::super::body::testing::{accept_all, full_metric_ingest, metric_ingest};
        use super::super::super::metrics::tests::{T0, gauge, kv, metrics_request, point};
        use super::*;
        use crate::MetricIngestHandle;

        fn service(ingest: MetricIngestHandle) -> OtlpMetricsService {
            OtlpMetricsService {
                state: OtlpGrpcMetricsState::new(
                    OtlpMetricsIngest::new(ingest),
                    CollectorMetrics::default(),
                ),
            }
        }

        fn request() -> ExportMetricsServiceRequest {
            metrics_request(
                vec![kv("service.name", "api"), kv("service.instance.id", "i-1")],
                vec![gauge("queue.depth", "{item}", vec![point(T0, 3.0, vec![])])],
            )
        }

        #[tokio::test]
        async fn export_ingests_under_the_metadata_tenant() {
            let (ingest, recorded) = metric_ingest(accept_all);
            let resp = service(ingest)
                .export(with_tenant(request(), "team-g"))
                .await
                .unwrap();
            assert_eq!(resp.get_ref().partial_success, None);
            let batches = recorded.lock().unwrap();
            assert_eq!(batches[0].tenant.as_str(), "team-g");
            assert_eq!(
                batches[0].series[0].labels.to_canonical(),
                r#"{__name__="queue_depth", instance="i-1", job="api"}"#
            );
        }

        #[tokio::test]
        async fn store_refusals_are_partial_success() {
            let (ingest, _) = metric_ingest(|_| {
                let mut r = AppendReport::default();
                r.reject(RejectReason::TooOld, || "too old".into());
                r
            });
            let partial = service(ingest)
                .export(Request::new(request()))
                .await
                .unwrap()
                .into_inner()
                .partial_success
                .unwrap();
            assert_eq!(partial.rejected_data_points, 1);
            assert!(
                partial.error_message.contains("too_old: 1"),
                "{}",
                partial.error_message
            );
        }

        #[tokio::test]
        async fn errors_map_to_grpc_codes() {
            let (ingest, _) = metric_ingest(accept_all);
            let err = service(ingest)
                .export(with_tenant(request(), "a b"))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument);

            let (ingest, _rx) = full_metric_ingest().await;
            let err = service(ingest)
                .export(Request::new(request()))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::ResourceExhausted);

            let (ingest, rx) = MetricIngestHandle::channel(1);
            drop(rx);
            let err = service(ingest)
                .export(Request::new(request()))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::Unavailable);

            let (ingest, mut rx) = MetricIngestHandle::channel(1);
            tokio::spawn(async move {
                while let Some(req) = rx.recv().await {
                    let _ = req
                        .ack
                        .send(Err(crate::IngestError::Storage("disk full".into())));
                }
            });
            let err = service(ingest)
                .export(Request::new(request()))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::Unavailable);
        }

        #[tokio::test]
        async fn gzip_frames_reach_the_service() {
            let (ingest, recorded) = metric_ingest(accept_all);
            let mut server = metrics_service(OtlpGrpcMetricsState::new(
                OtlpMetricsIngest::new(ingest),
                CollectorMetrics::default(),
            ));
            let msg = request().encode_to_vec();
            let req = HttpRequest::post(
                "http://localhost/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            )
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("grpc-encoding", "gzip")
            .body(Body::from(grpc_frame(&gzip(&msg), true)))
            .unwrap();
            let resp = server.call(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            assert!(resp.headers().get("grpc-status").is_none());
            // Drive the body so the handler completes.
            let _ = axum::body::to_bytes(Body::new(resp.into_body()), usize::MAX).await;
            assert_eq!(recorded.lock().unwrap()[0].sample_count(), 1);
        }
    }
}
