//! Request-body plumbing shared by the HTTP receivers (OTLP/HTTP here, Loki push next door):
//! media types, `Content-Encoding`, a bounded read of the body and bounded gzip
//! decompression, so that neither a huge upload nor a zip bomb can exhaust memory.

use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use sightline_http::ErrorKind;

/// Why a request body could not be turned into payload bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BodyError {
    /// The body on the wire is longer than allowed.
    #[error("request body exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// The body inflates to more than allowed.
    #[error("decompressed request body exceeds the limit of {limit} bytes")]
    DecompressedTooLarge { limit: usize },
    /// The connection failed while the body was read.
    #[error("failed to read request body: {0}")]
    Read(String),
    /// The body is not a valid gzip stream.
    #[error("invalid gzip body: {0}")]
    InvalidGzip(String),
    /// A `Content-Encoding` other than `gzip` or `identity`.
    #[error("unsupported Content-Encoding {0:?}; supported are gzip and identity")]
    UnsupportedEncoding(String),
}

impl BodyError {
    /// The kind of answer this error gets (and so its HTTP status).
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            Self::TooLarge { .. } | Self::DecompressedTooLarge { .. } => ErrorKind::TooLarge,
            Self::Read(_) | Self::InvalidGzip(_) => ErrorKind::BadRequest,
            Self::UnsupportedEncoding(_) => ErrorKind::UnsupportedMediaType,
        }
    }

    /// The `reason` label of the rejected-records counter.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } | Self::DecompressedTooLarge { .. } => "body_too_large",
            Self::Read(_) => "read_error",
            Self::InvalidGzip(_) => "decode_error",
            Self::UnsupportedEncoding(_) => "unsupported_media_type",
        }
    }
}

/// How the request body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentEncoding {
    Identity,
    Gzip,
}

/// The `Content-Encoding` of a request; absent means identity.
pub(crate) fn content_encoding(headers: &HeaderMap) -> Result<ContentEncoding, BodyError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(ContentEncoding::Identity);
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "identity" => Ok(ContentEncoding::Identity),
        "gzip" | "x-gzip" => Ok(ContentEncoding::Gzip),
        _ => Err(BodyError::UnsupportedEncoding(text.into_owned())),
    }
}

/// The media type of the request (`Content-Type` without parameters, lower case), if any.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?;
    let text = String::from_utf8_lossy(value.as_bytes());
    let essence = text.split(';').next().unwrap_or_default().trim();
    Some(essence.to_ascii_lowercase())
}

/// Reads the whole body, failing as soon as it grows beyond `limit` bytes (or announces
/// more in `Content-Length`).
pub(crate) async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(len) = announced
        && len > limit as u64
    {
        return Err(BodyError::TooLarge { limit });
    }
    // Trust Content-Length for the first MiB only: a client announcing a huge body and
    // sending nothing should not make us allocate it.
    let capacity = announced
        .map_or(0, |len| len as usize)
        .min(limit)
        .min(1 << 20);
    let mut buf = BytesMut::with_capacity(capacity);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        if buf.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Inflates a gzip body (several concatenated members allowed), refusing to produce more
/// than `limit` bytes.
pub(crate) fn gunzip_limited(data: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    let decoder = flate2::read::MultiGzDecoder::new(data);
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(limit));
    decoder
        .take((limit as u64).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| BodyError::InvalidGzip(gzip_error_message(&e)))?;
    if out.len() > limit {
        return Err(BodyError::DecompressedTooLarge { limit });
    }
    Ok(out)
}

/// Names a gzip failure; a stream cut short reads "unexpected end of file" whether it
/// ends inside the deflate data or inside the trailer.
fn gzip_error_message(e: &std::io::Error) -> String {
    let text = e.to_string();
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        "unexpected end of file".to_string()
    } else if text.contains("incomplete") {
        format!("unexpected end of file ({text})")
    } else {
        text
    }
}

/// Applies `encoding` to a body read with [`read_limited`]: gzip is inflated (bounded by
/// `decompressed_limit`), identity is passed through.
pub(crate) fn decode_content(
    encoding: ContentEncoding,
    raw: Bytes,
    decompressed_limit: usize,
) -> Result<Bytes, BodyError> {
    match encoding {
        ContentEncoding::Identity => Ok(raw),
        ContentEncoding::Gzip => gunzip_limited(&raw, decompressed_limit).map(Bytes::from),
    }
}

/// Current time in Unix nanoseconds (0 if the clock is before 1970, saturating in 2262).
pub(crate) fn unix_now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Test helpers: an ingest queue whose consumer acknowledges and records every batch.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::{Arc, Mutex};

    use sightline_model::LogBatch;

    use crate::IngestHandle;

    /// The batches a [`recording_ingest`] consumer has acknowledged so far.
    pub(crate) type Recorded = Arc<Mutex<Vec<LogBatch>>>;

    /// An ingest handle whose batches are acknowledged `Ok(())` and recorded.
    pub(crate) fn recording_ingest() -> (IngestHandle, Recorded) {
        let (handle, mut rx) = IngestHandle::channel(16);
        let recorded: Recorded = Arc::default();
        let sink = recorded.clone();
        tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                sink.lock().unwrap().push(req.batch);
                let _ = req.ack.send(Ok(()));
            }
        });
        (handle, recorded)
    }

    /// An ingest handle whose queue (capacity 1) is already full and never drains, so every
    /// further `ingest` fails with `Overloaded`. Keep the returned receiver alive.
    pub(crate) async fn full_ingest() -> (
        IngestHandle,
        tokio::sync::mpsc::Receiver<crate::IngestRequest>,
    ) {
        let (handle, rx) = IngestHandle::channel(1);
        let filler = handle.clone();
        tokio::spawn(async move { filler.ingest(LogBatch::default()).await });
        while rx.is_empty() {
            tokio::task::yield_now().await;
        }
        (handle, rx)
    }

    /// The batches a [`metric_ingest`] consumer has acknowledged so far.
    pub(crate) type RecordedMetrics = Arc<Mutex<Vec<sightline_model::MetricBatch>>>;

    /// A metric ingest handle whose batches are recorded and answered with `report(batch)`.
    pub(crate) fn metric_ingest(
        report: impl Fn(&sightline_model::MetricBatch) -> sightline_model::AppendReport + Send + 'static,
    ) -> (crate::MetricIngestHandle, RecordedMetrics) {
        let (handle, mut rx) = crate::MetricIngestHandle::channel(16);
        let recorded: RecordedMetrics = Arc::default();
        let sink = recorded.clone();
        tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                let r = report(&req.batch);
                sink.lock().unwrap().push(req.batch);
                let _ = req.ack.send(Ok(r));
            }
        });
        (handle, recorded)
    }

    /// The report of a store that accepts every sample.
    pub(crate) fn accept_all(
        batch: &sightline_model::MetricBatch,
    ) -> sightline_model::AppendReport {
        sightline_model::AppendReport {
            accepted: batch.sample_count() as u64,
            ..Default::default()
        }
    }

    /// A metric ingest handle whose queue is full and never drains (see [`full_ingest`]).
    pub(crate) async fn full_metric_ingest() -> (
        crate::MetricIngestHandle,
        tokio::sync::mpsc::Receiver<crate::MetricIngestRequest>,
    ) {
        let (handle, rx) = crate::MetricIngestHandle::channel(1);
        let filler = handle.clone();
        tokio::spawn(async move {
            filler
                .ingest(sightline_model::MetricBatch {
                    tenant: sightline_model::TenantId::default_tenant(),
                    series: Vec::new(),
                })
                .await
        });
        while rx.is_empty() {
            tokio::task::yield_now().await;
        }
        (handle, rx)
    }

    /// Gzip-compresses `data`.
    pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_round_trip_and_limits() {
        let data = vec![b'a'; 10_000];
        let gz = testing::gzip(&data);
        assert_eq!(gunzip_limited(&gz, 10_000).unwrap(), data);
        assert_eq!(
            gunzip_limited(&gz, 9_999),
            Err(BodyError::DecompressedTooLarge { limit: 9_999 })
        );
        let truncated = &gz[..gz.len() - 10];
        let err = gunzip_limited(truncated, 1 << 20).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest);
        assert!(err.to_string().starts_with("invalid gzip body: "), "{err}");
        for cut in [5, gz.len() / 2, gz.len() - 3] {
            let err = gunzip_limited(&gz[..cut], 1 << 20).unwrap_err();
            assert!(
                err.to_string().contains("unexpected end of file"),
                "cut {cut}: {err}"
            );
        }
        assert!(gunzip_limited(b"not gzip at all", 1 << 20).is_err());
    }

    #[test]
    fn encodings_and_media_types() {
        let mut h = HeaderMap::new();
        assert_eq!(content_encoding(&h), Ok(ContentEncoding::Identity));
        assert_eq!(media_type(&h), None);
        h.insert(header::CONTENT_ENCODING, "GZIP".parse().unwrap());
        h.insert(
            header::CONTENT_TYPE,
            "Application/JSON; charset=utf-8".parse().unwrap(),
        );
        assert_eq!(content_encoding(&h), Ok(ContentEncoding::Gzip));
        assert_eq!(media_type(&h).as_deref(), Some("application/json"));
        h.insert(header::CONTENT_ENCODING, "br".parse().unwrap());
        let err = content_encoding(&h).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnsupportedMediaType);
    }

    #[tokio::test]
    async fn body_read_is_bounded() {
        let h = HeaderMap::new();
        let ok = read_limited(&h, Body::from(vec![1u8; 100]), 100)
            .await
            .unwrap();
        assert_eq!(ok.len(), 100);
        let err = read_limited(&h, Body::from(vec![1u8; 101]), 100)
            .await
            .unwrap_err();
        assert_eq!(err, BodyError::TooLarge { limit: 100 });
        let mut announced = HeaderMap::new();
        announced.insert(header::CONTENT_LENGTH, "1000".parse().unwrap());
        let err = read_limited(&announced, Body::empty(), 100)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TooLarge);
    }
}
