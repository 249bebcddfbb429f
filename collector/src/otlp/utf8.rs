//! OTLP requests with invalid UTF-8 in a string field.
//!
//! Protobuf `string` fields must hold UTF-8, and prost refuses a whole message if one does
//! not: one bad byte in one attribute would lose every record of the request. When decoding
//! fails for that reason, the request is rewritten with each invalid sequence replaced by
//! U+FFFD (as `String::from_utf8_lossy` does) and decoded again; the answer's partial
//! success says how many strings were repaired. Only the fields that are strings in the
//! OTLP schema are touched — `bytes` fields (trace and span ids, `bytes_value`) are kept as
//! sent — so the rewrite needs the schema, which [`field`] holds for logs, metrics and traces.
//!
//! The rewrite runs only on requests that already failed to decode, so the common path
//! pays nothing.

/// An OTLP message type, as far as the rewrite needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msg {
    LogsRequest,
    MetricsRequest,
    TracesRequest,
    ResourceSpans,
    ScopeSpans,
    Span,
    SpanEvent,
    SpanLink,
    SpanStatus,
    ResourceLogs,
    ResourceMetrics,
    Resource,
    EntityRef,
    Scope,
    ScopeLogs,
    ScopeMetrics,
    LogRecord,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
    Metric,
    NumberPoints,
    HistogramPoints,
    ExponentialHistogramPoints,
    SummaryPoints,
    NumberDataPoint,
    HistogramDataPoint,
    ExponentialHistogramDataPoint,
    SummaryDataPoint,
    Exemplar,
}

enum Field {
    Message(Msg),
    String,
    /// Bytes, packed scalars, messages without strings: copied as sent.
    Other,
}

/// The kind of field `tag` of `msg` (opentelemetry-proto 1.x field numbers).
fn field(msg: Msg, tag: u64) -> Field {
    use Field::{Message as M, Other, String as S};
    match (msg, tag) {
        (Msg::LogsRequest, 1) => M(Msg::ResourceLogs),
        (Msg::MetricsRequest, 1) => M(Msg::ResourceMetrics),
        (Msg::ResourceLogs | Msg::ResourceMetrics, 1) => M(Msg::Resource),
        (Msg::ResourceLogs, 2) => M(Msg::ScopeLogs),
        (Msg::ResourceMetrics, 2) => M(Msg::ScopeMetrics),
        (Msg::ResourceLogs | Msg::ResourceMetrics | Msg::ScopeLogs | Msg::ScopeMetrics, 3) => S,
        (Msg::Resource, 1) => M(Msg::KeyValue),
        (Msg::Resource, 3) => M(Msg::EntityRef),
        (Msg::EntityRef, 1..=4) => S,
        (Msg::ScopeLogs | Msg::ScopeMetrics, 1) => M(Msg::Scope),
        (Msg::ScopeLogs, 2) => M(Msg::LogRecord),
        (Msg::ScopeMetrics, 2) => M(Msg::Metric),
        (Msg::Scope, 1 | 2) => S,
        (Msg::Scope, 3) => M(Msg::KeyValue),
        (Msg::LogRecord, 3 | 12) => S,
        (Msg::LogRecord, 5) => M(Msg::AnyValue),
        (Msg::LogRecord, 6) => M(Msg::KeyValue),
        (Msg::KeyValue, 1) => S,
        (Msg::KeyValue, 2) => M(Msg::AnyValue),
        (Msg::AnyValue, 1) => S,
        (Msg::AnyValue, 5) => M(Msg::ArrayValue),
        (Msg::AnyValue, 6) => M(Msg::KeyValueList),
        (Msg::ArrayValue, 1) => M(Msg::AnyValue),
        (Msg::KeyValueList, 1) => M(Msg::KeyValue),
        (Msg::Metric, 1..=3) => S,
        (Msg::Metric, 5 | 7) => M(Msg::NumberPoints),
        (Msg::Metric, 9) => M(Msg::HistogramPoints),
        (Msg::Metric, 10) => M(Msg::ExponentialHistogramPoints),
        (Msg::Metric, 11) => M(Msg::SummaryPoints),
        (Msg::Metric, 12) => M(Msg::KeyValue),
        (Msg::NumberPoints, 1) => M(Msg::NumberDataPoint),
        (Msg::HistogramPoints, 1) => M(Msg::HistogramDataPoint),
        (Msg::ExponentialHistogramPoints, 1) => M(Msg::ExponentialHistogramDataPoint),
        (Msg::SummaryPoints, 1) => M(Msg::SummaryDataPoint),
        (Msg::NumberDataPoint | Msg::SummaryDataPoint, 7) => M(Msg::KeyValue),
        (Msg::NumberDataPoint, 5) => M(Msg::Exemplar),
        (Msg::HistogramDataPoint, 9) => M(Msg::KeyValue),
        (Msg::HistogramDataPoint, 8) => M(Msg::Exemplar),
        (Msg::ExponentialHistogramDataPoint, 1) => M(Msg::KeyValue),
        (Msg::ExponentialHistogramDataPoint, 11) => M(Msg::Exemplar),
        (Msg::Exemplar, 7) => M(Msg::KeyValue),
        (Msg::TracesRequest, 1) => M(Msg::ResourceSpans),
        (Msg::ResourceSpans, 1) => M(Msg::Resource),
        (Msg::ResourceSpans, 2) => M(Msg::ScopeSpans),
        (Msg::ResourceSpans | Msg::ScopeSpans, 3) => S,
        (Msg::ScopeSpans, 1) => M(Msg::Scope),
        (Msg::ScopeSpans, 2) => M(Msg::Span),
        (Msg::Span, 3 | 5) => S,
        (Msg::Span, 9) => M(Msg::KeyValue),
        (Msg::Span, 11) => M(Msg::SpanEvent),
        (Msg::Span, 13) => M(Msg::SpanLink),
        (Msg::Span, 15) => M(Msg::SpanStatus),
        (Msg::SpanEvent, 2) => S,
        (Msg::SpanEvent, 3) => M(Msg::KeyValue),
        (Msg::SpanLink, 3) => S,
        (Msg::SpanLink, 4) => M(Msg::KeyValue),
        (Msg::SpanStatus, 2) => S,
        _ => Other,
    }
}

/// Whether a prost decode error is an invalid-UTF-8 string (the only fault [`repair`]
/// mends).
pub fn is_utf8_error(e: &prost::DecodeError) -> bool {
    e.to_string().contains("UTF-8")
}

/// `encoded` (a message of type `msg`) with every invalid UTF-8 sequence in its string
/// fields replaced by U+FFFD, and how many strings were changed; `None` if it is not
/// well-formed protobuf.
pub fn repair(msg: Msg, encoded: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::with_capacity(encoded.len() + 16);
    let mut repaired = 0;
    rewrite(msg, encoded, &mut out, &mut repaired, 0)?;
    Some((out, repaired))
}

/// Deeper than any OTLP message nests (AnyValue arrays can nest, but not this far).
const MAX_DEPTH: usize = 100;

fn rewrite(
    msg: Msg,
    mut input: &[u8],
    out: &mut Vec<u8>,
    repaired: &mut usize,
    depth: usize,
) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    while !input.is_empty() {
        let key = varint(&mut input)?;
        put_varint(out, key);
        match key & 7 {
            0 => {
                let v = varint(&mut input)?;
                put_varint(out, v);
            }
            1 => out.extend_from_slice(take(&mut input, 8)?),
            5 => out.extend_from_slice(take(&mut input, 4)?),
            2 => {
                let len = usize::try_from(varint(&mut input)?).ok()?;
                let body = take(&mut input, len)?;
                match field(msg, key >> 3) {
                    Field::Message(inner) => {
                        let mut nested = Vec::with_capacity(body.len());
                        rewrite(inner, body, &mut nested, repaired, depth + 1)?;
                        put_varint(out, nested.len() as u64);
                        out.extend_from_slice(&nested);
                    }
                    Field::String if std::str::from_utf8(body).is_err() => {
                        *repaired += 1;
                        let text = String::from_utf8_lossy(body);
                        put_varint(out, text.len() as u64);
                        out.extend_from_slice(text.as_bytes());
                    }
                    Field::String | Field::Other => {
                        put_varint(out, len as u64);
                        out.extend_from_slice(body);
                    }
                }
            }
            // Groups (deprecated, unused by OTLP) and invalid wire types.
            _ => return None,
        }
    }
    Some(())
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if input.len() < n {
        return None;
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Some(head)
}

fn varint(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&b, rest) = input.split_first()?;
        *input = rest;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The note added to a partial success when strings were repaired.
pub fn repaired_note(repaired: usize) -> String {
    format!(
        "{repaired} string field(s) held invalid UTF-8 and were stored with U+FFFD in its place"
    )
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use prost::Message;

    use super::*;
    use crate::otlp::convert::tests::{kv, record, request, s};
    use crate::otlp::metrics::tests::{gauge, metrics_request, point};

    /// Replaces the first occurrence of `from` in `bytes` by `to` (same length).
    fn corrupt(bytes: &mut [u8], from: &[u8], to: &[u8]) {
        let at = bytes
            .windows(from.len())
            .position(|w| w == from)
            .expect("marker present");
        bytes[at..at + to.len()].copy_from_slice(to);
    }

    #[test]
    fn invalid_utf8_in_log_strings_is_replaced_and_ids_are_kept() {
        let mut bad = record("body XX here");
        bad.attributes.push(kv("user", s("naXXve")));
        let good = record("fine");
        let mut bytes = request(vec![bad, good]).encode_to_vec();
        corrupt(&mut bytes, b"XX", &[0xff, 0xfe]);
        corrupt(&mut bytes, b"XX", &[0xc3, 0x28]);
        let err = ExportLogsServiceRequest::decode(bytes.as_slice()).unwrap_err();
        assert!(is_utf8_error(&err), "{err}");
        let (fixed, n) = repair(Msg::LogsRequest, &bytes).unwrap();
        assert_eq!(n, 2);
        let req = ExportLogsServiceRequest::decode(fixed.as_slice()).unwrap();
        let records = &req.resource_logs[0].scope_logs[0].log_records;
        assert_eq!(records.len(), 2);
        let body = crate::otlp::convert::any_value_to_string(records[0].body.clone());
        assert_eq!(body, "body \u{fffd}\u{fffd} here");
        // Trace and span ids are bytes, not strings: untouched.
        assert_eq!(records[0].trace_id, vec![0xab; 16]);
        assert_eq!(records[1].span_id, vec![0x01; 8]);
    }

    #[test]
    fn invalid_utf8_in_metric_attributes_is_replaced() {
        let req = metrics_request(
            vec![kv_m("service.name", "svc")],
            vec![gauge(
                "g",
                "",
                vec![point(1_000, 1.0, vec![kv_m("path", "/aXXb")])],
            )],
        );
        let mut bytes = req.encode_to_vec();
        corrupt(&mut bytes, b"XX", &[0x80, 0x80]);
        assert!(ExportMetricsServiceRequest::decode(bytes.as_slice()).is_err());
        let (fixed, n) = repair(Msg::MetricsRequest, &bytes).unwrap();
        assert_eq!(n, 1);
        let req = ExportMetricsServiceRequest::decode(fixed.as_slice()).unwrap();
        assert_eq!(
            req.resource_metrics[0].scope_metrics[0].metrics[0].name,
            "g"
        );
    }

    fn kv_m(k: &str, v: &str) -> opentelemetry_proto::tonic::common::v1::KeyValue {
        crate::otlp::metrics::tests::kv(k, v)
    }

    #[test]
    fn malformed_protobuf_is_not_repaired() {
        assert!(repair(Msg::LogsRequest, &[0x0a, 0x05, 0x01]).is_none());
        assert!(repair(Msg::LogsRequest, &[0xff; 11]).is_none());
    }
}
