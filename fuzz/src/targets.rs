//! One harness per parser of untrusted bytes. Each is what the server does with a request
//! body (or a query, or a configuration file), followed by checks of what must hold.
//!
//! A harness whose input starts with a mode byte documents it; seeds are made by
//! `examples/gen_seeds.rs` in the same shape.

use bytes::BytesMut;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use sightline_collector::loki_push::decode::{LokiPushConfig, PushFormat, decode_push};
use sightline_collector::otlp::convert::convert_request;
use sightline_collector::otlp::metrics::{DeltaToCumulative, TranslateOptions, translate_request};
use sightline_collector::otlp::traces::{SpanLimits, convert_traces, to_otlp};
use sightline_collector::otlp::utf8;
use sightline_collector::remote_write::decode::{RemoteWriteConfig, decode_write_request};
use sightline_collector::remote_write::is_valid_metric_name;
use sightline_collector::syslog::framing::{Frame, FrameDecoder};
use sightline_collector::syslog::parser;
use sightline_model::{LogStream, TenantId, index_labels_from_resource};

use crate::check;

/// The receive time every harness uses (2023-11-14), so that runs are reproducible.
pub const NOW_NS: i64 = 1_700_000_000_000_000_000;

/// Limits small enough that fuzz-sized inputs reach every refusal, and a decompression limit
/// small enough that a short input claiming a huge length does not make each run allocate
/// the default 64 MiB (the code path is the same).
const MAX_DECOMPRESSED: usize = 1 << 20;

fn loki_limits() -> LokiPushConfig {
    LokiPushConfig {
        max_body_bytes: MAX_DECOMPRESSED,
        max_decompressed_bytes: MAX_DECOMPRESSED,
        max_line_bytes: 256,
        max_label_value_bytes: 64,
        max_label_name_bytes: 32,
        max_labels_per_stream: 6,
    }
}

fn remote_write_limits() -> RemoteWriteConfig {
    RemoteWriteConfig {
        max_body_bytes: MAX_DECOMPRESSED,
        max_decompressed_bytes: MAX_DECOMPRESSED,
        max_labels_per_series: 8,
        max_label_name_bytes: 32,
        max_label_value_bytes: 64,
    }
}

/// What a converted log request must satisfy, however it was decoded.
fn check_converted_logs(request: ExportLogsServiceRequest) {
    let records: u64 = request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len() as u64)
        .sum();
    let converted = convert_request(request, NOW_NS);
    assert_eq!(converted.received_records, records, "received count");
    assert!(converted.rejected_records <= converted.received_records);
    let by_reason: u64 = converted.rejected_by_reason.iter().map(|(_, n)| n).sum();
    assert_eq!(
        by_reason, converted.rejected_records,
        "rejections by reason"
    );
    assert_eq!(
        converted.error_message.is_empty(),
        converted.rejected_records == 0,
        "error message iff something was rejected: {:?}",
        converted.error_message
    );
    let kept: u64 = converted
        .streams
        .iter()
        .map(|s| s.records.len() as u64)
        .sum();
    assert_eq!(kept, converted.accepted_records(), "records kept");
    for stream in &converted.streams {
        assert!(!stream.records.is_empty(), "a stream without records");
        check::labels(&stream.labels, "otlp logs stream");
    }
    check::wal_round_trip(converted.streams);
}

/// What a translated metrics request must satisfy, however it was decoded. The request is
/// translated twice against the same delta state (the second time, delta points meet the
/// totals of the first), then the second translation is undone, as when a store fails.
fn check_translated_metrics(request: ExportMetricsServiceRequest) {
    let tenant = TenantId::new("fuzz").unwrap();
    // A small state, so that eviction runs too.
    let mut delta = DeltaToCumulative::new(4);
    let now_ms = NOW_NS / 1_000_000;
    for round in 0..2 {
        let tr = translate_request(
            request.clone(),
            &tenant,
            now_ms,
            TranslateOptions::default(),
            &mut delta,
        );
        assert!(tr.rejected_points <= tr.received_points, "round {round}");
        let by_reason: u64 = tr.rejected_by_reason.iter().map(|(_, n)| n).sum();
        assert_eq!(by_reason, tr.rejected_points, "rejections by reason");
        assert_eq!(tr.error_message.is_empty(), tr.rejected_points == 0);
        for series in &tr.series {
            check::labels(&series.labels, "otlp metric series");
            let name = series.labels.get("__name__").unwrap_or_default();
            assert!(is_valid_metric_name(name), "metric name {name:?}");
            assert!(!series.samples.is_empty(), "a series without samples");
        }
        assert!(delta.len() <= 4, "delta state over its bound");
        if round == 1 {
            delta.undo(&tr.delta_undo);
        }
    }
}

/// OTLP logs protobuf, as both receivers decode it (gRPC and `/v1/logs`).
pub fn otlp_logs_proto(data: &[u8]) {
    check::linear_time(data.len(), || {
        decode_as_received(data, utf8::Msg::LogsRequest, check_converted_logs);
    });
}

/// OTLP metrics protobuf, as both receivers decode it (gRPC and `/v1/metrics`).
pub fn otlp_metrics_proto(data: &[u8]) {
    check::linear_time(data.len(), || {
        decode_as_received(data, utf8::Msg::MetricsRequest, check_translated_metrics);
    });
}

/// Decodes `data` as the receivers do — a request with invalid UTF-8 in a string is
/// repaired and decoded again — and hands the request to `check`. The repair must not
/// change what a valid request says.
fn decode_as_received<T>(data: &[u8], message: utf8::Msg, check: impl FnOnce(T))
where
    T: Message + Default + PartialEq + std::fmt::Debug,
{
    match T::decode(data) {
        Ok(request) => {
            if let Some((fixed, 0)) = utf8::repair(message, data) {
                // Compared as encodings: a NaN double is not equal to itself.
                let again = T::decode(fixed.as_slice()).map(|m| m.encode_to_vec());
                assert_eq!(
                    again,
                    Ok(request.encode_to_vec()),
                    "repair changed a valid request"
                );
            }
            check(request);
        }
        Err(e) if utf8::is_utf8_error(&e) => {
            if let Some((fixed, _)) = utf8::repair(message, data)
                && let Ok(request) = T::decode(fixed.as_slice())
            {
                check(request);
            }
        }
        Err(_) => {}
    }
}

/// OTLP/JSON as `/v1/logs` and `/v1/metrics` read it (`serde_json::from_slice`). Mode byte:
/// even, logs; odd, metrics. The rest is the body.
pub fn otlp_json(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    check::linear_time(body.len(), || {
        if mode & 1 == 0 {
            if let Ok(request) = serde_json::from_slice::<ExportLogsServiceRequest>(body) {
                check_converted_logs(request);
            }
        } else if let Ok(request) = serde_json::from_slice::<ExportMetricsServiceRequest>(body) {
            check_translated_metrics(request);
        }
    });
}

/// Prometheus remote write, `decode_write_request` as `/api/v1/write` calls it. Mode byte:
/// even, the rest is the body as sent (snappy block); odd, the rest is the protobuf, which
/// the harness compresses (so that the fuzzer's mutations reach the protobuf decoder and the
/// validation instead of breaking the snappy framing).
pub fn remote_write(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let body = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        snap::raw::Encoder::new().compress_vec(rest).unwrap()
    };
    let limits = remote_write_limits();
    check::linear_time(rest.len(), || {
        let Ok(decoded) = decode_write_request(&body, &limits) else {
            return;
        };
        let refused: u64 = decoded.rejections.iter().map(|r| r.samples).sum();
        assert_eq!(
            decoded.received_samples,
            decoded.valid_samples + refused,
            "every sample is either valid or refused"
        );
        let kept: u64 = decoded.series.iter().map(|s| s.samples.len() as u64).sum();
        assert_eq!(kept, decoded.valid_samples, "samples kept");
        for series in &decoded.series {
            check::labels(&series.labels, "remote_write series");
            assert!(series.labels.len() <= limits.max_labels_per_series);
            for (name, value) in series.labels.iter() {
                assert!(name.len() <= limits.max_label_name_bytes);
                assert!(value.len() <= limits.max_label_value_bytes);
            }
            let name = series.labels.get("__name__").unwrap_or_default();
            assert!(is_valid_metric_name(name), "metric name {name:?}");
        }
    });
}

/// The checks of a decoded Loki push, either format.
fn check_loki(format: PushFormat, payload: &[u8]) {
    let limits = loki_limits();
    let Ok(decoded) = decode_push(format, payload, &limits, NOW_NS) else {
        return;
    };
    let refused: u64 = decoded.rejections.iter().map(|r| r.entries).sum();
    assert_eq!(
        decoded.received_entries,
        decoded.accepted_entries + refused,
        "every entry is either accepted or refused"
    );
    let kept: u64 = decoded.streams.iter().map(|s| s.records.len() as u64).sum();
    assert_eq!(kept, decoded.accepted_entries, "entries kept");
    for stream in &decoded.streams {
        assert!(!stream.records.is_empty(), "a stream without entries");
        check::labels(&stream.labels, "loki stream");
        for (name, value) in stream.labels.iter() {
            assert!(name.len() <= limits.max_label_name_bytes, "name {name:?}");
            assert!(
                value.len() <= limits.max_label_value_bytes,
                "value {value:?}"
            );
        }
        for record in &stream.records {
            assert!(record.body.len() <= limits.max_line_bytes, "line too long");
        }
    }
    check::wal_round_trip(decoded.streams);
}

/// Loki push, snappy protobuf. Mode byte as in [`remote_write`]: even, the body as sent;
/// odd, the protobuf, compressed by the harness.
pub fn loki_push_proto(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let body = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        snap::raw::Encoder::new().compress_vec(rest).unwrap()
    };
    check::linear_time(rest.len(), || check_loki(PushFormat::SnappyProtobuf, &body));
}

/// Loki push, JSON.
pub fn loki_push_json(data: &[u8]) {
    check::linear_time(data.len(), || check_loki(PushFormat::Json, data));
}

/// RFC 6587 framing of a syslog TCP stream. Byte 0 picks the message limit (1 to 1021
/// bytes, so that oversized frames are common), byte 1 seeds the sizes of the reads; the rest
/// is the stream. The frames must not depend on how the stream was split into reads, the
/// buffer must stay bounded, and every message must be within the limit; each message is
/// then parsed as the receiver does.
pub fn syslog_framing(data: &[u8]) {
    let [limit_byte, chunk_seed, stream @ ..] = data else {
        return;
    };
    let max = 1 + usize::from(*limit_byte) * 4;
    check::linear_time(stream.len(), || {
        let whole = frames(max, stream, &mut std::iter::repeat(stream.len().max(1)));
        let mut rng = u32::from(*chunk_seed) | 0x100;
        let mut sizes = std::iter::from_fn(|| {
            // xorshift: reads of 1 to 64 bytes.
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            Some(1 + (rng % 64) as usize)
        });
        let chunked = frames(max, stream, &mut sizes);
        assert_eq!(
            whole.messages, chunked.messages,
            "messages depend on how the stream was read"
        );
        assert_eq!(
            whole.rejected, chunked.rejected,
            "refused frames depend on how the stream was read"
        );
        for m in &whole.messages {
            assert!(
                !m.is_empty() && m.len() <= max,
                "message of {} bytes",
                m.len()
            );
            if let Ok(parsed) = parser::parse(m, NOW_NS) {
                check_syslog(parsed);
            }
        }
    });
}

struct Framed {
    messages: Vec<bytes::Bytes>,
    rejected: usize,
}

/// Frames `stream` read in pieces of the given sizes, then EOF; checks the buffer bound of
/// `framing.rs` (a message, its octet count and one read).
fn frames(max: usize, stream: &[u8], sizes: &mut dyn Iterator<Item = usize>) -> Framed {
    let mut decoder = FrameDecoder::new(max);
    let mut buf = BytesMut::new();
    let mut out = Framed {
        messages: Vec::new(),
        rejected: 0,
    };
    let mut push = |frame: Frame| match frame {
        Frame::Message(m) => out.messages.push(m),
        Frame::Rejected(_) => out.rejected += 1,
    };
    let mut rest = stream;
    while !rest.is_empty() {
        let n = sizes.next().unwrap().min(rest.len());
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        buf.extend_from_slice(piece);
        assert!(
            buf.len() <= max + 10 + 2 + n,
            "buffered {} bytes with a limit of {max}",
            buf.len()
        );
        while let Some(frame) = decoder.decode(&mut buf) {
            push(frame);
        }
    }
    let mut eof_frames = 0;
    while let Some(frame) = decoder.decode_eof(&mut buf) {
        push(frame);
        eof_frames += 1;
        assert!(eof_frames <= stream.len() + 1, "decode_eof does not end");
    }
    assert!(buf.is_empty(), "decode_eof left {} bytes", buf.len());
    out
}

/// What the syslog receiver does with a parsed message, and what must hold of it.
fn check_syslog(parsed: parser::ParsedSyslog) {
    assert!(parsed.facility <= 23, "facility {}", parsed.facility);
    assert!(parsed.severity <= 7, "severity {}", parsed.severity);
    let (resource, record) = parsed.into_resource_and_record(NOW_NS);
    let labels = index_labels_from_resource(&resource);
    check::labels(&labels, "syslog stream");
    check::wal_round_trip(vec![LogStream {
        labels,
        resource,
        scope_name: String::new(),
        scope_version: String::new(),
        records: vec![record],
    }]);
}

/// One syslog message (a UDP datagram, or a frame of a TCP stream).
pub fn syslog_parse(data: &[u8]) {
    check::linear_time(data.len(), || {
        if let Ok(parsed) = parser::parse(data, NOW_NS) {
            check_syslog(parsed);
        }
    });
}

/// A LogQL query, as the query API and the CLI parse it.
pub fn logql(data: &[u8]) {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    check::linear_time(data.len(), || {
        if let Ok(expr) = sightline_logql::parse(query) {
            // The tree is walked (Debug) and dropped: both recursive, both must fit the stack.
            let _ = format!("{expr:?}");
        }
    });
}

/// A TraceQL query: parsed and validated; an accepted query prints as canonical text that
/// parses back to the same query, and evaluates on a small trace (a metrics query over a
/// small window) without panicking.
pub fn traceql(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check::linear_time(data.len(), || {
        let Ok(query) = sightline_traceql::parse(text) else {
            return;
        };
        let canonical = query.to_string();
        let again = sightline_traceql::parse(&canonical)
            .unwrap_or_else(|e| panic!("canonical text {canonical:?} does not parse: {e}"));
        assert_eq!(
            again, query,
            "canonical text {canonical:?} means something else"
        );
        let _ = query.prefilter();
        let batch = small_trace();
        let spans: Vec<sightline_traceql::SpanRef<'_>> = batch
            .spans()
            .map(|(resource, scope, span)| sightline_traceql::SpanRef {
                resource,
                scope,
                span,
            })
            .collect();
        if query.is_metrics() {
            if let Ok(mut m) =
                sightline_traceql::MetricsEvaluator::new(&query, 0, 4_000_000_000, 1_000_000_000)
            {
                let _ = m.observe(&spans);
                let _ = m.finish();
            }
        } else {
            for set in query.evaluate(&spans) {
                assert!(
                    set.spans.iter().all(|i| *i < spans.len()),
                    "span index out of range"
                );
            }
        }
    });
}

/// Three spans: a server root, its client child (failing, with a database attribute) and a
/// grandchild in another service.
fn small_trace() -> sightline_model::SpanBatch {
    use sightline_model::{
        AnyValue, ResourceSpans, ScopeSpans, Span, SpanBatch, SpanId, SpanKind, StatusCode, TraceId,
    };
    let span = |id: u8, parent: Option<u8>, kind, name: &str| Span {
        trace_id: TraceId([1; 16]),
        span_id: SpanId([id; 8]),
        parent_span_id: parent.map(|p| SpanId([p; 8])),
        name: name.into(),
        kind,
        start_ns: i64::from(id) * 1_000_000_000,
        end_ns: i64::from(id) * 1_000_000_000 + 250_000_000,
        attributes: vec![
            ("http.status_code".into(), AnyValue::Int(500)),
            ("db.system".into(), AnyValue::String("postgresql".into())),
            ("ratio".into(), AnyValue::Double(0.5)),
            ("ok".into(), AnyValue::Bool(true)),
        ],
        status_code: if id == 2 {
            StatusCode::Error
        } else {
            StatusCode::Unset
        },
        ..Default::default()
    };
    let resource = |service: &str, spans| ResourceSpans {
        labels: index_labels_from_resource(&[("service.name".into(), service.into())]),
        resource: vec![("service.name".into(), AnyValue::String(service.into()))],
        scopes: vec![ScopeSpans {
            scope_name: "lib".into(),
            spans,
            ..Default::default()
        }],
    };
    SpanBatch {
        tenant: TenantId::default(),
        resources: vec![
            resource(
                "a",
                vec![
                    span(1, None, SpanKind::Server, "GET /"),
                    span(2, Some(1), SpanKind::Client, "SELECT"),
                ],
            ),
            resource("b", vec![span(3, Some(2), SpanKind::Server, "POST /x")]),
        ],
    }
}

/// OTLP traces protobuf, as both receivers decode it (gRPC and `/v1/traces`): counts add up,
/// kept spans survive the WAL codec and go back to OTLP with their ids.
pub fn otlp_traces_proto(data: &[u8]) {
    check::linear_time(data.len(), || {
        decode_as_received(
            data,
            utf8::Msg::TracesRequest,
            |request: ExportTraceServiceRequest| {
                let spans: u64 = request
                    .resource_spans
                    .iter()
                    .flat_map(|r| &r.scope_spans)
                    .map(|s| s.spans.len() as u64)
                    .sum();
                let converted = convert_traces(request, &SpanLimits::default());
                assert_eq!(converted.received_spans, spans, "received count");
                let by_reason: u64 = converted.rejected_by_reason.iter().map(|(_, n)| n).sum();
                assert_eq!(by_reason, converted.rejected_spans, "rejections by reason");
                let batch = sightline_model::SpanBatch {
                    tenant: TenantId::default(),
                    resources: converted.resources,
                };
                assert_eq!(
                    batch.span_count() as u64,
                    converted.received_spans - converted.rejected_spans,
                    "kept spans"
                );
                let payload = sightline_ingest::WalCodec::encode(&batch);
                let back =
                    <sightline_model::SpanBatch as sightline_ingest::WalCodec>::decode(&payload)
                        .expect("a span batch survives the WAL codec");
                assert_eq!(
                    sightline_ingest::WalCodec::encode(&back),
                    payload,
                    "WAL codec round trip"
                );
                let otlp = to_otlp(&batch);
                let ids: Vec<Vec<u8>> = otlp
                    .resource_spans
                    .iter()
                    .flat_map(|r| &r.scope_spans)
                    .flat_map(|s| &s.spans)
                    .map(|s| s.span_id.clone())
                    .collect();
                assert_eq!(
                    ids.len(),
                    batch.span_count(),
                    "every span goes back to OTLP"
                );
                assert!(
                    ids.iter()
                        .all(|id| id.len() == 8 && id.iter().any(|b| *b != 0))
                );
            },
        );
    });
}

/// libfuzzer-sys installs a panic hook that aborts before a panic can unwind, which would
/// make `promql::upstream_parse`'s `catch_unwind` (around `promql-parser`'s panic on a
/// number out of range as a duration) useless here. Panics unwind again (their message
/// printed); one that escapes the harness still aborts (libfuzzer-sys catches it at the top
/// and aborts), as any other.
fn let_panics_unwind() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|info| eprintln!("{info}"))));
}

/// A PromQL query: the nesting limits of `nesting.rs`, then the parser, then (for the
/// series APIs) the selector rules.
pub fn promql(data: &[u8]) {
    let_panics_unwind();
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    check::linear_time(data.len(), || {
        let parsed = sightline_promql::parse_expr(query);
        if sightline_promql::parse_selector(query).is_ok() {
            assert!(parsed.is_ok(), "a valid selector that is not a valid query");
        }
    });
}

/// The server's configuration file, as `Config::from_file` reads it (after reading the file):
/// TOML into `Config`, moved keys, validation, and the scrape jobs derived from it.
pub fn config(data: &[u8]) {
    let_panics_unwind();
    use crate::server_config::Config;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check::linear_time(data.len(), || {
        let Ok(mut config) = toml::from_str::<Config>(text) else {
            return;
        };
        config.apply_moved_keys();
        if config.validate().is_ok() {
            let _ = config.scrape_jobs("0.0.0.0:7070".parse().unwrap());
            let _ = config.max_request_bytes();
            let _ = config.indexer.miner_config();
        }
    });
}

/// A rule file as the rule loader reads it (`rulefmt::parse`: YAML, the group and rule
/// checks, every expression parsed as PromQL or LogQL, every annotation and label parsed as
/// a template). The first byte picks the options: bit 0 ignores unknown fields (promtool's
/// `--ignore-unknown-fields`), bit 1 reads the expressions as LogQL (Loki's ruler).
pub fn rule_file(data: &[u8]) {
    let_panics_unwind();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let options = sightline_alerting::rulefmt::ParseOptions {
        ignore_unknown_fields: mode & 1 == 1,
        logql: mode & 2 == 2,
    };
    check::linear_time(data.len(), || {
        if let Err(errors) = sightline_alerting::rulefmt::parse("fuzz.yml", text, options) {
            assert!(!errors.is_empty(), "a refused file says why");
        }
    });
}

/// An Alertmanager configuration as the alert manager loads it (`Config::parse`: YAML, the
/// route tree, receivers and their integrations, inhibit rules, time intervals, matchers).
pub fn alertmanager_config(data: &[u8]) {
    let_panics_unwind();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check::linear_time(data.len(), || {
        if let Err(message) = sightline_alerting::alertmanager::config::Config::parse(text) {
            assert!(!message.is_empty(), "a refused configuration says why");
        }
    });
}

/// A harness: one input, panics on a finding.
pub type Harness = fn(&[u8]);

/// Every harness by name, for the regression test.
pub const ALL: &[(&str, Harness)] = &[
    ("otlp_logs_proto", otlp_logs_proto),
    ("otlp_metrics_proto", otlp_metrics_proto),
    ("otlp_json", otlp_json),
    ("remote_write", remote_write),
    ("loki_push_proto", loki_push_proto),
    ("loki_push_json", loki_push_json),
    ("syslog_framing", syslog_framing),
    ("syslog_parse", syslog_parse),
    ("logql", logql),
    ("promql", promql),
    ("config", config),
    ("traceql", traceql),
    ("otlp_traces_proto", otlp_traces_proto),
    ("rule_file", rule_file),
    ("alertmanager_config", alertmanager_config),
];
