//! OTLP traces → Sightline model, and the span ingest both transports share.
//!
//! An `ExportTraceServiceRequest` becomes one [`SpanBatch`] in OTLP's own shape: resource
//! attributes typed as sent plus the index labels logs get from them
//! ([`index_labels_from_resource`], values as text), scopes with their attributes, spans with
//! every field OTLP has (a trace is given back as OTLP unchanged).
//!
//! A span is refused on its own, the rest of the request kept and the refusals reported in
//! `partial_success` (`rejected_spans` and the first reasons, each naming
//! `resource_spans[i].scope_spans[j].spans[k]`):
//!
//! | reason              | when                                                          |
//! |---------------------|---------------------------------------------------------------|
//! | `invalid_trace_id`  | `trace_id` not 16 bytes, or all zero                          |
//! | `invalid_span_id`   | `span_id` not 8 bytes or all zero; `parent_span_id` not empty or 8 bytes; a link's ids of the wrong length |
//! | `invalid_timestamp` | no start time, a time beyond the year 2262, or end before start |
//! | `limit`             | more attributes, events or links than [`SpanLimits`] allow, attributes (with those of events and links) over their byte limit, or a resource label value too long to index |
//!
//! An all-zero `parent_span_id` means "no parent" (the Go and Java SDKs send it so for
//! roots), as an empty one does.

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue as OtlpValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans as OtlpResourceSpans, ScopeSpans as OtlpScopeSpans, Span as OtlpSpan, Status,
    TracesData,
};
use sightline_http::ApiError;
use sightline_model::{
    AnyValue, Attributes, ResourceSpans, ScopeSpans, Span, SpanBatch, SpanEvent, SpanId, SpanKind,
    SpanLink, StatusCode, TenantId, TraceId, index_labels_from_resource,
};

use super::convert::Refusals;
use crate::CollectorMetrics;
use crate::refusal::ingest_refusal;

/// Where accepted span batches go: the traces write-ahead log's queue.
pub type SpanIngestHandle = sightline_ingest::IngestHandle<SpanBatch>;

/// What the trace receivers hand spans to: the traces queue, and the connectors that derive
/// span metrics and the service graph from what was acknowledged.
#[derive(Debug, Clone)]
pub struct SpanIngest {
    pub queue: SpanIngestHandle,
    pub connectors: Option<crate::connectors::Connectors>,
}

impl SpanIngest {
    /// Spans to the queue only (no derived metrics).
    pub fn new(queue: SpanIngestHandle) -> Self {
        Self {
            queue,
            connectors: None,
        }
    }

    /// The same, also feeding `connectors`.
    pub fn with_connectors(mut self, connectors: crate::connectors::Connectors) -> Self {
        self.connectors = Some(connectors);
        self
    }
}

/// The metrics' `signal` label of spans.
pub const SIGNAL: &str = "traces";

/// What one span may hold. The counts default to the OpenTelemetry SDKs' own span limits
/// (128 attributes, events and links), so that nothing an SDK sends by default is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanLimits {
    pub max_attributes: usize,
    pub max_events: usize,
    pub max_links: usize,
    /// Attribute names and values of the span, its events and its links, added up.
    pub max_attribute_bytes: usize,
    /// Longest value of a resource attribute that becomes an index label.
    pub max_label_value_bytes: usize,
}

impl Default for SpanLimits {
    fn default() -> Self {
        Self {
            max_attributes: 128,
            max_events: 128,
            max_links: 128,
            max_attribute_bytes: 64 << 10,
            max_label_value_bytes: 2048,
        }
    }
}

/// The outcome of converting one export request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConvertedSpans {
    /// Resources with their accepted spans (scopes and resources left empty are omitted).
    pub resources: Vec<ResourceSpans>,
    pub received_spans: u64,
    pub rejected_spans: u64,
    /// Refused spans per reason, in first-seen order.
    pub rejected_by_reason: Vec<(&'static str, u64)>,
    /// Empty when nothing was refused; otherwise names the first refused spans.
    pub error_message: String,
}

impl ConvertedSpans {
    pub fn accepted_spans(&self) -> u64 {
        self.received_spans - self.rejected_spans
    }
}

type Invalid = (&'static str, String);

/// Converts an export request with the given limits.
pub fn convert_traces(request: ExportTraceServiceRequest, limits: &SpanLimits) -> ConvertedSpans {
    let mut out = ConvertedSpans::default();
    let mut refusals = Refusals::default();
    for (ri, resource_spans) in request.resource_spans.into_iter().enumerate() {
        let resource = resource_spans
            .resource
            .map(|r| attributes(r.attributes))
            .unwrap_or_default();
        let as_text: Vec<(String, String)> = resource
            .iter()
            .map(|(k, v)| (k.clone(), v.to_text()))
            .collect();
        let labels = index_labels_from_resource(&as_text);
        let resource_fault = labels
            .iter()
            .find(|(_, v)| v.len() > limits.max_label_value_bytes)
            .map(|(k, v)| {
                format!(
                    "resource attribute for label {k:?} has a value of {} bytes, the limit is {} (max_label_value_bytes)",
                    v.len(),
                    limits.max_label_value_bytes
                )
            });
        let mut scopes = Vec::new();
        for (si, scope_spans) in resource_spans.scope_spans.into_iter().enumerate() {
            let (scope_name, scope_version, scope_attributes) = scope_spans
                .scope
                .map(|s| (s.name, s.version, attributes(s.attributes)))
                .unwrap_or_default();
            let mut spans = Vec::with_capacity(scope_spans.spans.len());
            for (k, span) in scope_spans.spans.into_iter().enumerate() {
                out.received_spans += 1;
                let converted = match &resource_fault {
                    Some(fault) => Err(("limit", fault.clone())),
                    None => check_limits(&span, limits).and_then(|()| convert_span(span)),
                };
                match converted {
                    Ok(span) => spans.push(span),
                    Err((reason, message)) => refusals.refuse(reason, || {
                        format!("resource_spans[{ri}].scope_spans[{si}].spans[{k}]: {message}")
                    }),
                }
            }
            if !spans.is_empty() {
                scopes.push(ScopeSpans {
                    scope_name,
                    scope_version,
                    scope_attributes,
                    spans,
                });
            }
        }
        if !scopes.is_empty() {
            out.resources.push(ResourceSpans {
                labels,
                resource,
                scopes,
            });
        }
    }
    out.error_message = refusals.message("spans", out.received_spans);
    out.rejected_spans = refusals.total;
    out.rejected_by_reason = refusals.by_reason;
    out
}

/// A span over a limit, checked on the protobuf before anything is converted.
fn check_limits(span: &OtlpSpan, limits: &SpanLimits) -> Result<(), Invalid> {
    let over = |what: &str, n: usize, limit: usize, name: &str| -> Result<(), Invalid> {
        if n > limit {
            return Err((
                "limit",
                format!("{n} {what}, the limit is {limit} ({name})"),
            ));
        }
        Ok(())
    };
    over(
        "attributes",
        span.attributes.len(),
        limits.max_attributes,
        "max_attributes_per_record",
    )?;
    over(
        "events",
        span.events.len(),
        limits.max_events,
        "max_events_per_span",
    )?;
    over(
        "links",
        span.links.len(),
        limits.max_links,
        "max_links_per_span",
    )?;
    let bytes = |kvs: &[KeyValue]| -> usize {
        kvs.iter()
            .map(|kv| kv.key.len() + kv.value.as_ref().map_or(0, prost::Message::encoded_len))
            .sum()
    };
    let total = bytes(&span.attributes)
        + span
            .events
            .iter()
            .map(|e| bytes(&e.attributes))
            .sum::<usize>()
        + span
            .links
            .iter()
            .map(|l| bytes(&l.attributes))
            .sum::<usize>();
    if total > limits.max_attribute_bytes {
        return Err((
            "limit",
            format!(
                "attributes of {total} bytes, the limit is {} (max_attribute_bytes_per_record)",
                limits.max_attribute_bytes
            ),
        ));
    }
    Ok(())
}

fn convert_span(s: OtlpSpan) -> Result<Span, Invalid> {
    let trace_id = TraceId::from_slice(&s.trace_id)
        .filter(|id| !id.is_zero())
        .ok_or_else(|| ("invalid_trace_id", id_problem("trace_id", &s.trace_id, 16)))?;
    let span_id = SpanId::from_slice(&s.span_id)
        .filter(|id| !id.is_zero())
        .ok_or_else(|| ("invalid_span_id", id_problem("span_id", &s.span_id, 8)))?;
    let parent_span_id = match s.parent_span_id.len() {
        0 => None,
        8 => SpanId::from_slice(&s.parent_span_id).filter(|id| !id.is_zero()),
        n => {
            return Err((
                "invalid_span_id",
                format!("parent_span_id is {n} bytes long, expected 8 (or empty for a root)"),
            ));
        }
    };
    if s.start_time_unix_nano == 0 {
        return Err((
            "invalid_timestamp",
            "start_time_unix_nano is missing".to_string(),
        ));
    }
    let start_ns = nanos(s.start_time_unix_nano, "start_time_unix_nano")?;
    let end_ns = nanos(s.end_time_unix_nano, "end_time_unix_nano")?;
    if end_ns < start_ns {
        return Err((
            "invalid_timestamp",
            format!(
                "end_time_unix_nano {} is before start_time_unix_nano {}",
                s.end_time_unix_nano, s.start_time_unix_nano
            ),
        ));
    }
    let mut links = Vec::with_capacity(s.links.len());
    for (i, l) in s.links.into_iter().enumerate() {
        let (Some(trace_id), Some(span_id)) = (
            TraceId::from_slice(&l.trace_id),
            SpanId::from_slice(&l.span_id),
        ) else {
            return Err((
                "invalid_span_id",
                format!(
                    "links[{i}] has a trace_id of {} bytes and a span_id of {} bytes, expected 16 and 8",
                    l.trace_id.len(),
                    l.span_id.len()
                ),
            ));
        };
        links.push(SpanLink {
            trace_id,
            span_id,
            trace_state: l.trace_state,
            attributes: attributes(l.attributes),
            dropped_attributes_count: l.dropped_attributes_count,
            flags: l.flags,
        });
    }
    let mut events = Vec::with_capacity(s.events.len());
    for (i, e) in s.events.into_iter().enumerate() {
        events.push(SpanEvent {
            time_ns: nanos(e.time_unix_nano, &format!("events[{i}].time_unix_nano"))?,
            name: e.name,
            attributes: attributes(e.attributes),
            dropped_attributes_count: e.dropped_attributes_count,
        });
    }
    let (status_code, status_message) = s
        .status
        .map(|st| (StatusCode::from_i32(st.code), st.message))
        .unwrap_or_default();
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        trace_state: s.trace_state,
        flags: s.flags,
        name: s.name,
        kind: SpanKind::from_i32(s.kind),
        start_ns,
        end_ns,
        attributes: attributes(s.attributes),
        dropped_attributes_count: s.dropped_attributes_count,
        events,
        dropped_events_count: s.dropped_events_count,
        links,
        dropped_links_count: s.dropped_links_count,
        status_code,
        status_message,
    })
}

fn id_problem(field: &str, bytes: &[u8], expected: usize) -> String {
    if bytes.len() == expected {
        format!("{field} is all zero")
    } else {
        format!("{field} is {} bytes long, expected {expected}", bytes.len())
    }
}

fn nanos(value: u64, field: &str) -> Result<i64, Invalid> {
    i64::try_from(value).map_err(|_| {
        (
            "invalid_timestamp",
            format!("{field} {value} is beyond the year 2262"),
        )
    })
}

/// OTLP attributes → typed model attributes, in order. A value that is absent (or an
/// OTLP profiles string-table index, which spans never carry) becomes the empty string.
pub fn attributes(kvs: Vec<KeyValue>) -> Attributes {
    kvs.into_iter()
        .map(|kv| (kv.key, any_value(kv.value)))
        .collect()
}

fn any_value(v: Option<OtlpValue>) -> AnyValue {
    match v.and_then(|v| v.value) {
        None | Some(Value::StringValueStrindex(_)) => AnyValue::String(String::new()),
        Some(Value::StringValue(s)) => AnyValue::String(s),
        Some(Value::BoolValue(b)) => AnyValue::Bool(b),
        Some(Value::IntValue(i)) => AnyValue::Int(i),
        Some(Value::DoubleValue(d)) => AnyValue::Double(d),
        Some(Value::BytesValue(b)) => AnyValue::Bytes(b),
        Some(Value::ArrayValue(a)) => {
            AnyValue::Array(a.values.into_iter().map(|v| any_value(Some(v))).collect())
        }
        Some(Value::KvlistValue(kv)) => AnyValue::KvList(attributes(kv.values)),
    }
}

/// Counts a converted request under `source`, hands its valid spans to the traces queue and
/// returns the export response (with `partial_success` when spans were refused), the same for
/// both transports; `bytes` is the decoded payload size.
pub(crate) async fn store_spans(
    ingest: &SpanIngest,
    metrics: &CollectorMetrics,
    source: &'static str,
    tenant: &TenantId,
    bytes: u64,
    converted: ConvertedSpans,
) -> Result<ExportTraceServiceResponse, ApiError> {
    let t = tenant.as_str();
    metrics.received_signal(SIGNAL, source, t, converted.received_spans, bytes);
    for (reason, n) in &converted.rejected_by_reason {
        metrics.rejected_signal(SIGNAL, source, t, reason, *n);
    }
    let accepted = converted.accepted_spans();
    let ConvertedSpans {
        resources,
        rejected_spans,
        error_message,
        ..
    } = converted;
    if !resources.is_empty() {
        let batch = SpanBatch {
            tenant: tenant.clone(),
            resources,
        };
        // Taken before the batch goes: counted only once it is acknowledged.
        let facts = ingest
            .connectors
            .as_ref()
            .map(|_| crate::connectors::facts(&batch));
        if let Err(e) = ingest.queue.ingest(batch).await {
            let (error, reason) = ingest_refusal(&e);
            metrics.rejected_signal(SIGNAL, source, t, reason, accepted);
            return Err(error);
        }
        metrics.accepted_signal(SIGNAL, source, t, accepted);
        if let (Some(connectors), Some(facts)) = (&ingest.connectors, facts) {
            connectors.observe(tenant, facts);
        }
    }
    Ok(ExportTraceServiceResponse {
        partial_success: (rejected_spans > 0 || !error_message.is_empty()).then(|| {
            ExportTracePartialSuccess {
                rejected_spans: i64::try_from(rejected_spans).unwrap_or(i64::MAX),
                error_message,
            }
        }),
    })
}

/// OTLP/JSON of a traces response: `{}` or `{"partialSuccess":{...}}`, the int64 a string.
pub(crate) fn response_json(r: &ExportTraceServiceResponse) -> String {
    match &r.partial_success {
        None => "{}".to_string(),
        Some(p) => serde_json::json!({
            "partialSuccess": {
                "rejectedSpans": p.rejected_spans.to_string(),
                "errorMessage": p.error_message,
            }
        })
        .to_string(),
    }
}

/// The model back to OTLP: what the trace APIs answer with, field for field what was
/// received (the all-zero parent of a root comes back empty).
pub fn to_otlp(batch: &SpanBatch) -> TracesData {
    TracesData {
        resource_spans: batch
            .resources
            .iter()
            .map(|r| OtlpResourceSpans {
                resource: Some(Resource {
                    attributes: key_values(&r.resource),
                    ..Default::default()
                }),
                scope_spans: r
                    .scopes
                    .iter()
                    .map(|s| OtlpScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: s.scope_name.clone(),
                            version: s.scope_version.clone(),
                            attributes: key_values(&s.scope_attributes),
                            dropped_attributes_count: 0,
                        }),
                        spans: s.spans.iter().map(span_to_otlp).collect(),
                        schema_url: String::new(),
                    })
                    .collect(),
                schema_url: String::new(),
            })
            .collect(),
    }
}

fn span_to_otlp(s: &Span) -> OtlpSpan {
    OtlpSpan {
        trace_id: s.trace_id.0.to_vec(),
        span_id: s.span_id.0.to_vec(),
        trace_state: s.trace_state.clone(),
        parent_span_id: s.parent_span_id.map(|p| p.0.to_vec()).unwrap_or_default(),
        flags: s.flags,
        name: s.name.clone(),
        kind: s.kind.as_i32(),
        start_time_unix_nano: s.start_ns as u64,
        end_time_unix_nano: s.end_ns as u64,
        attributes: key_values(&s.attributes),
        dropped_attributes_count: s.dropped_attributes_count,
        events: s
            .events
            .iter()
            .map(|e| Event {
                time_unix_nano: e.time_ns as u64,
                name: e.name.clone(),
                attributes: key_values(&e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: s.dropped_events_count,
        links: s
            .links
            .iter()
            .map(|l| Link {
                trace_id: l.trace_id.0.to_vec(),
                span_id: l.span_id.0.to_vec(),
                trace_state: l.trace_state.clone(),
                attributes: key_values(&l.attributes),
                dropped_attributes_count: l.dropped_attributes_count,
                flags: l.flags,
            })
            .collect(),
        dropped_links_count: s.dropped_links_count,
        status: (s.status_code != StatusCode::Unset || !s.status_message.is_empty()).then(|| {
            Status {
                message: s.status_message.clone(),
                code: s.status_code.as_i32(),
            }
        }),
    }
}

fn key_values(attributes: &Attributes) -> Vec<KeyValue> {
    attributes
        .iter()
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value: Some(otlp_value(v)),
            ..Default::default()
        })
        .collect()
}

fn otlp_value(v: &AnyValue) -> OtlpValue {
    let value = match v {
        AnyValue::String(s) => Value::StringValue(s.clone()),
        AnyValue::Bool(b) => Value::BoolValue(*b),
        AnyValue::Int(i) => Value::IntValue(*i),
        AnyValue::Double(d) => Value::DoubleValue(*d),
        AnyValue::Bytes(b) => Value::BytesValue(b.clone()),
        AnyValue::Array(items) => Value::ArrayValue(ArrayValue {
            values: items.iter().map(otlp_value).collect(),
        }),
        AnyValue::KvList(items) => Value::KvlistValue(KeyValueList {
            values: key_values(items),
        }),
    };
    OtlpValue { value: Some(value) }
}

#[cfg(test)]
pub(crate) mod tests {
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
    use opentelemetry_proto::tonic::trace::v1::{
        ResourceSpans as OtlpResourceSpans, ScopeSpans as OtlpScopeSpans, Status,
    };

    use super::*;

    pub(crate) fn kv(k: &str, v: Value) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(OtlpValue { value: Some(v) }),
            ..Default::default()
        }
    }

    pub(crate) fn span(trace: u8, id: u8, parent: Option<u8>, name: &str) -> OtlpSpan {
        OtlpSpan {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            name: name.into(),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_250_000_000,
            attributes: vec![kv("http.response.status_code", Value::IntValue(200))],
            ..Default::default()
        }
    }

    pub(crate) fn request(service: &str, spans: Vec<OtlpSpan>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![OtlpResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", Value::StringValue(service.into()))],
                    ..Default::default()
                }),
                scope_spans: vec![OtlpScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "lib".into(),
                        version: "1.0".into(),
                        ..Default::default()
                    }),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    #[test]
    fn spans_keep_every_field_typed() {
        let mut s = span(1, 2, Some(3), "GET /pay");
        s.status = Some(Status {
            code: 2,
            message: "boom".into(),
        });
        s.events = vec![Event {
            time_unix_nano: 1_700_000_000_100_000_000,
            name: "exception".into(),
            attributes: vec![kv("exception.type", Value::StringValue("E".into()))],
            dropped_attributes_count: 0,
        }];
        s.links = vec![Link {
            trace_id: vec![9; 16],
            span_id: vec![8; 8],
            ..Default::default()
        }];
        let out = convert_traces(request("pay", vec![s]), &SpanLimits::default());
        assert_eq!(out.rejected_spans, 0, "{}", out.error_message);
        let r = &out.resources[0];
        assert_eq!(r.service_name(), "pay");
        assert_eq!(r.scopes[0].scope_name, "lib");
        let sp = &r.scopes[0].spans[0];
        assert_eq!(sp.trace_id.to_hex(), "01".repeat(16));
        assert_eq!(sp.parent_span_id.unwrap().to_hex(), "03".repeat(8));
        assert_eq!(sp.kind, SpanKind::Server);
        assert_eq!(sp.status_code, StatusCode::Error);
        assert_eq!(sp.duration_ns(), 250_000_000);
        assert_eq!(
            sp.attributes,
            vec![("http.response.status_code".to_string(), AnyValue::Int(200))]
        );
        assert_eq!(sp.events[0].name, "exception");
        assert_eq!(sp.links[0].span_id.to_hex(), "08".repeat(8));
    }

    #[test]
    fn bad_spans_are_refused_one_by_one_and_named() {
        let good = span(1, 2, None, "ok");
        let mut zero_trace = span(0, 2, None, "zero trace");
        zero_trace.trace_id = vec![0; 16];
        let mut short_span = span(1, 3, None, "short span id");
        short_span.span_id = vec![1, 2, 3];
        let mut backwards = span(1, 4, None, "backwards");
        backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1;
        let mut no_start = span(1, 5, None, "no start");
        no_start.start_time_unix_nano = 0;
        let mut huge = span(1, 6, None, "huge attribute");
        huge.attributes = vec![kv("blob", Value::StringValue("x".repeat(1 << 20)))];
        let mut zero_parent = span(1, 7, None, "zero parent is a root");
        zero_parent.parent_span_id = vec![0; 8];
        let out = convert_traces(
            request(
                "svc",
                vec![
                    good,
                    zero_trace,
                    short_span,
                    backwards,
                    no_start,
                    huge,
                    zero_parent,
                ],
            ),
            &SpanLimits::default(),
        );
        assert_eq!(out.received_spans, 7);
        assert_eq!(out.rejected_spans, 5);
        let kept: Vec<&str> = out.resources[0].scopes[0]
            .spans
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(kept, ["ok", "zero parent is a root"]);
        assert!(out.resources[0].scopes[0].spans[1].is_root());
        let m = &out.error_message;
        assert!(m.starts_with("rejected 5 of 7 spans"), "{m}");
        assert!(m.contains("spans[1]: trace_id is all zero"), "{m}");
        assert!(
            m.contains("spans[2]: span_id is 3 bytes long, expected 8"),
            "{m}"
        );
        assert!(m.contains("spans[3]: end_time_unix_nano"), "{m}");
        assert!(
            m.contains("spans[4]: start_time_unix_nano is missing"),
            "{m}"
        );
        assert!(m.contains("(max_attribute_bytes_per_record)"), "{m}");
        assert_eq!(
            out.rejected_by_reason,
            vec![
                ("invalid_trace_id", 1),
                ("invalid_span_id", 1),
                ("invalid_timestamp", 2),
                ("limit", 1)
            ]
        );
    }

    #[test]
    fn the_model_goes_back_to_the_same_otlp() {
        let mut s = span(1, 2, Some(3), "GET /pay");
        s.status = Some(Status {
            code: 2,
            message: "boom".into(),
        });
        s.events = vec![Event {
            time_unix_nano: 1_700_000_000_100_000_000,
            name: "exception".into(),
            attributes: vec![kv("exception.type", Value::StringValue("E".into()))],
            dropped_attributes_count: 1,
        }];
        s.attributes.push(kv("blob", Value::BytesValue(vec![1, 2])));
        s.flags = 0x301;
        let original = request("pay", vec![s]);
        let converted = convert_traces(original.clone(), &SpanLimits::default());
        let batch = SpanBatch {
            tenant: TenantId::default(),
            resources: converted.resources,
        };
        let back = to_otlp(&batch);
        assert_eq!(back.resource_spans, original.resource_spans);
    }

    #[test]
    fn values_keep_their_types() {
        let v = any_value(Some(OtlpValue {
            value: Some(Value::ArrayValue(
                opentelemetry_proto::tonic::common::v1::ArrayValue {
                    values: vec![
                        OtlpValue {
                            value: Some(Value::DoubleValue(1.5)),
                        },
                        OtlpValue {
                            value: Some(Value::BoolValue(true)),
                        },
                    ],
                },
            )),
        }));
        assert_eq!(
            v,
            AnyValue::Array(vec![AnyValue::Double(1.5), AnyValue::Bool(true)])
        );
    }
}
