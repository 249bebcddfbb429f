//! One failure type for every API and receiver, and its one mapping to an answer.
//!
//! | kind                    | HTTP | `Retry-After` | gRPC                 | Prometheus `errorType` |
//! |-------------------------|------|---------------|----------------------|------------------------|
//! | `BadRequest`            | 400  | —             | `INVALID_ARGUMENT`   | `bad_data`             |
//! | `NotFound`              | 404  | —             | `NOT_FOUND`          | `not_found`            |
//! | `MethodNotAllowed`      | 405  | —             | `UNIMPLEMENTED`      | `bad_data`             |
//! | `TooLarge`              | 413  | —             | `RESOURCE_EXHAUSTED` | `bad_data`             |
//! | `UnsupportedMediaType`  | 415  | —             | `INVALID_ARGUMENT`   | `bad_data`             |
//! | `Unprocessable`         | 422  | —             | `INVALID_ARGUMENT`   | `execution`            |
//! | `Overloaded`            | 429  | `1`           | `RESOURCE_EXHAUSTED` | `unavailable`          |
//! | `Unavailable`           | 503  | `5`           | `UNAVAILABLE`        | `unavailable`          |
//! | `Timeout`               | 503  | —             | `DEADLINE_EXCEEDED`  | `timeout`              |
//! | `Cancelled`             | 499  | —             | `CANCELLED`          | `canceled`             |
//! | `Internal`              | 500  | —             | `INTERNAL`           | `internal`             |
//!
//! The retry hints are what clients honour: OTLP exporters and Prometheus's remote write
//! back off on 429 and 503 and read `Retry-After`; a full ingest queue clears within about a
//! second, a shutdown takes longer.
//!
//! The body is chosen by the protocol ([`ErrorBody`]); a handler returns `ApiError` (plain
//! text, the shape of Loki's API and of the push receivers), [`PrometheusError`] or
//! [`JsonError`], or calls [`ApiError::response`] with the body it needs (OTLP/HTTP answers
//! in the request's encoding).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;
use serde_json::json;

/// What went wrong, as far as the client is concerned: decides status, retry hint and codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is wrong and will stay wrong if resent (bad syntax, bad parameter).
    BadRequest,
    /// No such path or object.
    NotFound,
    /// The path exists, the method does not.
    MethodNotAllowed,
    /// The body (sent or decompressed) is over a limit.
    TooLarge,
    /// A `Content-Type` or `Content-Encoding` the endpoint does not speak.
    UnsupportedMediaType,
    /// Well-formed but cannot be evaluated (a query hitting a limit or a type error).
    Unprocessable,
    /// Too much at once: retry after a short wait.
    Overloaded,
    /// Shutting down or not ready: retry later, possibly elsewhere.
    Unavailable,
    /// A query ran past its timeout (Prometheus answers 503 with `errorType: timeout`).
    Timeout,
    /// A query was cancelled (its client went away, or the server is stopping): 499, the
    /// status Prometheus and nginx use for it.
    Cancelled,
    /// Our fault.
    Internal,
}

impl ErrorKind {
    /// The HTTP status of this kind.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable | Self::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            Self::Cancelled => StatusCode::from_u16(499).expect("a valid status code"),
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `Retry-After` value (seconds) of a retryable kind.
    pub fn retry_after(self) -> Option<&'static str> {
        match self {
            Self::Overloaded => Some("1"),
            Self::Unavailable => Some("5"),
            _ => None,
        }
    }

    /// The gRPC status code of this kind (also the `code` of OTLP/HTTP's `google.rpc.Status`).
    pub fn grpc_code(self) -> tonic::Code {
        match self {
            Self::BadRequest | Self::UnsupportedMediaType | Self::Unprocessable => {
                tonic::Code::InvalidArgument
            }
            Self::NotFound => tonic::Code::NotFound,
            Self::MethodNotAllowed => tonic::Code::Unimplemented,
            Self::TooLarge | Self::Overloaded => tonic::Code::ResourceExhausted,
            Self::Unavailable => tonic::Code::Unavailable,
            Self::Timeout => tonic::Code::DeadlineExceeded,
            Self::Cancelled => tonic::Code::Cancelled,
            Self::Internal => tonic::Code::Internal,
        }
    }

    /// The `errorType` of Prometheus's HTTP API.
    pub fn prometheus_error_type(self) -> &'static str {
        match self {
            Self::BadRequest
            | Self::MethodNotAllowed
            | Self::TooLarge
            | Self::UnsupportedMediaType => "bad_data",
            Self::NotFound => "not_found",
            Self::Unprocessable => "execution",
            Self::Overloaded | Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Cancelled => "canceled",
            Self::Internal => "internal",
        }
    }
}

/// The shape of an error body; the protocol the client speaks decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorBody {
    /// `text/plain`, the message as is: Loki's API (what Loki's own `WriteError` sends and
    /// Grafana shows), the Loki push and remote write receivers.
    PlainText,
    /// Prometheus's HTTP API: `{"status":"error","errorType":…,"error":…}`.
    Prometheus,
    /// Our own JSON APIs: `{"status":"error","error":…}`.
    Json,
    /// OTLP/HTTP with protobuf: a binary `google.rpc.Status`.
    OtlpProtobuf,
    /// OTLP/HTTP with JSON: `{"code":…,"message":…}` (`google.rpc.Status` in JSON).
    OtlpJson,
}

/// `google.rpc.Status`, the error body of OTLP/HTTP (details are never filled).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// The gRPC code ([`ErrorKind::grpc_code`]).
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// A failure to answer a client with: a kind and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooLarge, message)
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::UnsupportedMediaType, message)
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unprocessable, message)
    }

    pub fn overloaded(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Overloaded, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// The `404` of a path no route serves, naming it.
    pub fn unknown_path(method: &str, path: &str) -> Self {
        Self::not_found(format!("unknown path {path} ({method})"))
    }

    /// The `405` of a route that exists for other methods.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            ErrorKind::MethodNotAllowed,
            format!("method {method} is not allowed on {path}"),
        )
    }

    /// The answer: the kind's status and retry hint, the message in `body`'s shape.
    pub fn response(self, body: ErrorBody) -> Response {
        let kind = self.kind;
        let (content_type, bytes): (&'static str, Vec<u8>) = match body {
            ErrorBody::PlainText => ("text/plain; charset=utf-8", self.message.into_bytes()),
            ErrorBody::Prometheus => (
                "application/json",
                json!({
                    "status": "error",
                    "errorType": kind.prometheus_error_type(),
                    "error": self.message,
                })
                .to_string()
                .into_bytes(),
            ),
            ErrorBody::Json => (
                "application/json",
                json!({"status": "error", "error": self.message})
                    .to_string()
                    .into_bytes(),
            ),
            ErrorBody::OtlpProtobuf => (
                "application/x-protobuf",
                RpcStatus {
                    code: kind.grpc_code() as i32,
                    message: self.message,
                }
                .encode_to_vec(),
            ),
            ErrorBody::OtlpJson => (
                "application/json",
                json!({"code": kind.grpc_code() as i32, "message": self.message})
                    .to_string()
                    .into_bytes(),
            ),
        };
        let mut response =
            (kind.status(), [(header::CONTENT_TYPE, content_type)], bytes).into_response();
        if let Some(secs) = kind.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(secs));
        }
        response
    }
}

/// Plain text: the shape of Loki's API and of the push receivers.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.response(ErrorBody::PlainText)
    }
}

/// A query that stopped: 503 `timeout` past its timeout, 499 `canceled` when cancelled.
impl From<sightline_model::Stopped> for ApiError {
    fn from(why: sightline_model::Stopped) -> Self {
        let kind = match why {
            sightline_model::Stopped::Cancelled => ErrorKind::Cancelled,
            sightline_model::Stopped::TimedOut(_) => ErrorKind::Timeout,
        };
        ApiError::new(kind, why.to_string())
    }
}

impl From<ApiError> for tonic::Status {
    fn from(e: ApiError) -> Self {
        tonic::Status::new(e.kind.grpc_code(), e.message)
    }
}

/// An [`ApiError`] answered in Prometheus's JSON shape: the error type of the Prometheus
/// query API's handlers (`?` converts an `ApiError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusError(pub ApiError);

impl PrometheusError {
    /// `bad_data` (400).
    pub fn bad_data(message: impl Into<String>) -> Self {
        Self(ApiError::bad_request(message))
    }

    /// `internal` (500).
    pub fn internal(message: impl Into<String>) -> Self {
        Self(ApiError::internal(message))
    }

    /// `execution` (422): Prometheus's answer to evaluation failures and exceeded limits.
    pub fn execution(message: impl Into<String>) -> Self {
        Self(ApiError::unprocessable(message))
    }
}

impl From<ApiError> for PrometheusError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl IntoResponse for PrometheusError {
    fn into_response(self) -> Response {
        self.0.response(ErrorBody::Prometheus)
    }
}

/// An [`ApiError`] answered as `{"status":"error","error":…}`, for our own JSON APIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError(pub ApiError);

impl From<ApiError> for JsonError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        self.0.response(ErrorBody::Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parts(response: Response) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, body.to_vec())
    }

    #[tokio::test]
    async fn overload_is_429_with_retry_after_in_every_shape() {
        for body in [
            ErrorBody::PlainText,
            ErrorBody::Prometheus,
            ErrorBody::Json,
            ErrorBody::OtlpProtobuf,
            ErrorBody::OtlpJson,
        ] {
            let (status, headers, _) =
                parts(ApiError::overloaded("queue full").response(body)).await;
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body:?}");
            assert_eq!(headers[header::RETRY_AFTER], "1", "{body:?}");
        }
        let (status, headers, _) = parts(ApiError::unavailable("stopping").into_response()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::RETRY_AFTER], "5");
        let (_, headers, _) = parts(ApiError::internal("x").into_response()).await;
        assert!(headers.get(header::RETRY_AFTER).is_none());
    }

    #[tokio::test]
    async fn bodies_take_the_protocol_shape() {
        let (status, headers, body) = parts(ApiError::bad_request("bad x").into_response()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(headers[header::CONTENT_TYPE], "text/plain; charset=utf-8");
        assert_eq!(body, b"bad x");

        let (status, headers, body) =
            parts(PrometheusError::execution("too many samples").into_response()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"error":"too many samples","errorType":"execution","status":"error"}"#
        );

        let (_, _, body) = parts(JsonError(ApiError::not_found("no x")).into_response()).await;
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"error":"no x","status":"error"}"#
        );

        let (status, headers, body) =
            parts(ApiError::too_large("big").response(ErrorBody::OtlpJson)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"code":8,"message":"big"}"#
        );

        let (_, headers, body) =
            parts(ApiError::bad_request("bad").response(ErrorBody::OtlpProtobuf)).await;
        assert_eq!(headers[header::CONTENT_TYPE], "application/x-protobuf");
        let status = RpcStatus::decode(body.as_slice()).unwrap();
        assert_eq!(status.code, tonic::Code::InvalidArgument as i32);
        assert_eq!(status.message, "bad");
    }

    #[test]
    fn grpc_status_uses_the_same_kinds() {
        let status = tonic::Status::from(ApiError::overloaded("full"));
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(status.message(), "full");
        assert_eq!(
            tonic::Status::from(ApiError::unavailable("bye")).code(),
            tonic::Code::Unavailable
        );
    }
}
