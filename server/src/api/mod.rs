//! HTTP APIs on the main port: Loki's query API, Prometheus's query API, our patterns API,
//! and one error type that maps failures to status codes and Loki's plain-text error bodies
//! (the Prometheus API has its own JSON errors, in `prom.rs`).

pub mod anomalies;
pub mod loki;
pub mod params;
pub mod patterns;
pub mod prom;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An API failure: a status and a message for the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Loki answers errors as plain text; Grafana shows the body as is.
        (
            self.status,
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            self.message,
        )
            .into_response()
    }
}
