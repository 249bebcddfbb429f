//! How every receiver refuses, written once: an ingest failure becomes the same
//! [`ApiError`] (429 + `Retry-After: 1` when the queue is full, 503 + `Retry-After: 5` when
//! shutting down or when the write-ahead log cannot persist — a full disk is a condition the
//! client should wait out, not a verdict on its data) and is counted under the same
//! reason, whatever the protocol; each receiver only picks the body shape (or, over gRPC,
//! converts it to a `tonic::Status`).

use sightline_http::ApiError;

use crate::IngestError;
use crate::otlp::body::BodyError;

/// The answer to a batch the ingest path refused, and the `reason` label it is counted under.
pub(crate) fn ingest_refusal(e: &IngestError) -> (ApiError, &'static str) {
    let message = e.to_string();
    match e {
        IngestError::Overloaded => (ApiError::overloaded(message), "overloaded"),
        IngestError::ShuttingDown => (ApiError::unavailable(message), "shutting_down"),
        IngestError::Storage(_) => (ApiError::unavailable(message), "storage_error"),
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        ApiError::new(e.kind(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use sightline_http::ErrorKind;

    use super::*;

    #[test]
    fn ingest_failures_are_all_retryable() {
        let kinds = [
            IngestError::Overloaded,
            IngestError::ShuttingDown,
            IngestError::Storage("disk full".into()),
        ]
        .map(|e| ingest_refusal(&e));
        assert_eq!(kinds[0].0.kind, ErrorKind::Overloaded);
        assert_eq!(kinds[1].0.kind, ErrorKind::Unavailable);
        assert_eq!(kinds[2].0.kind, ErrorKind::Unavailable);
        assert!(kinds[2].0.message.contains("disk full"));
        assert_eq!(
            kinds.map(|(_, reason)| reason),
            ["overloaded", "shutting_down", "storage_error"]
        );
    }
}
