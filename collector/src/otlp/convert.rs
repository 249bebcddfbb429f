//! OTLP logs → Sightline model.
//!
//! One [`LogStream`] per (`ResourceLogs`, `ScopeLogs`) pair that keeps at least one record:
//!
//! - `resource`: the resource attributes under their OpenTelemetry names, values as strings
//!   (see [`any_value_to_string`]); `labels` = [`index_labels_from_resource`] of it.
//! - scope name and version. Scope attributes have no place in the model and are dropped.
//! - records: `timestamp_ns` = `time_unix_nano`, else `observed_time_unix_nano`, else the
//!   receive time; `observed_timestamp_ns` = `observed_time_unix_nano`, else the receive
//!   time. Severity numbers outside 0..=24 become 0 (unspecified), the text is kept. The body
//!   becomes a string like an attribute value, except that an absent body is empty. A non-empty
//!   `event_name` is kept as the attribute `event.name`; `flags` and
//!   `dropped_attributes_count` are dropped.
//! - `trace_id`/`span_id` become lower-case hex; all-zero ids count as absent (the OTLP spec
//!   calls them invalid, "not associated with a trace"). An id of the wrong length (not 16 or
//!   8 bytes) rejects that record with reason `invalid_trace_id` / `invalid_span_id`, and a
//!   time beyond the year 2262 (not representable as `i64` nanoseconds) with reason
//!   `invalid_timestamp`; the other records of the request are kept and the rejection is
//!   reported in `partial_success`.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord as OtlpLogRecord;
use sightline_model::{LogRecord, LogStream, index_labels_from_resource};

/// Detail messages kept in [`Converted::error_message`]; further rejections are only counted.
const MAX_DETAILS: usize = 10;

/// The outcome of converting one export request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Converted {
    /// The streams with their accepted records (streams left without records are omitted).
    pub streams: Vec<LogStream>,
    /// Log records in the request, accepted or not.
    pub received_records: u64,
    /// Log records rejected as invalid.
    pub rejected_records: u64,
    /// Rejected records per reason (the metrics' `reason` label), in first-seen order.
    pub rejected_by_reason: Vec<(&'static str, u64)>,
    /// Empty when nothing was rejected; otherwise a summary naming the first rejected records,
    /// meant for `partial_success.error_message`.
    pub error_message: String,
}

impl Converted {
    /// Records that passed validation.
    pub fn accepted_records(&self) -> u64 {
        self.received_records - self.rejected_records
    }
}

/// Records (log records, spans) refused one by one: how many, per reason (the metrics'
/// `reason` label, in first-seen order), and the first [`MAX_DETAILS`] named.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    pub total: u64,
    pub by_reason: Vec<(&'static str, u64)>,
    details: Vec<String>,
}

impl Refusals {
    /// Counts a refusal; `detail` (where and why) is built only for the first few.
    pub fn refuse(&mut self, reason: &'static str, detail: impl FnOnce() -> String) {
        self.total += 1;
        match self.by_reason.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => self.by_reason.push((reason, 1)),
        }
        if self.details.len() < MAX_DETAILS {
            self.details.push(detail());
        }
    }

    /// The partial-success message: empty when nothing was refused, else `rejected N of M
    /// <noun>: <details>; and K more`.
    pub fn message(&self, noun: &str, received: u64) -> String {
        if self.total == 0 {
            return String::new();
        }
        let mut msg = format!(
            "rejected {} of {received} {noun}: {}",
            self.total,
            self.details.join("; ")
        );
        let unnamed = self.total - self.details.len() as u64;
        if unnamed > 0 {
            msg.push_str(&format!("; and {unnamed} more"));
        }
        msg
    }
}

/// A rejected record: the metrics reason and a human-readable explanation.
type Invalid = (&'static str, String);

/// What one log record may hold; a record over a limit is refused (reason `limit`), the
/// rest of the request kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimits {
    pub max_line_bytes: usize,
    pub max_attributes: usize,
    pub max_attribute_bytes: usize,
    /// Longest value of a resource attribute that becomes a stream label: every record of
    /// a resource over it is refused (its labels could not be indexed).
    pub max_label_value_bytes: usize,
}

impl Default for RecordLimits {
    fn default() -> Self {
        Self {
            max_line_bytes: 256 << 10,
            max_attributes: 128,
            max_attribute_bytes: 64 << 10,
            max_label_value_bytes: 2048,
        }
    }
}

/// Reason of a record over a [`RecordLimits`] limit.
pub const REASON_LIMIT: &str = "limit";

/// Converts an export request for one tenant with the default [`RecordLimits`]. `now_ns` is
/// the receive time in Unix nanoseconds, used when a record carries no timestamp.
pub fn convert_request(request: ExportLogsServiceRequest, now_ns: i64) -> Converted {
    convert_request_with(request, now_ns, &RecordLimits::default())
}

/// [`convert_request`] with the given limits.
pub fn convert_request_with(
    request: ExportLogsServiceRequest,
    now_ns: i64,
    limits: &RecordLimits,
) -> Converted {
    let mut out = Converted::default();
    let mut refusals = Refusals::default();
    for (ri, resource_logs) in request.resource_logs.into_iter().enumerate() {
        let resource = resource_logs
            .resource
            .map(|r| key_values_to_pairs(r.attributes))
            .unwrap_or_default();
        let labels = index_labels_from_resource(&resource);
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
        for (si, scope_logs) in resource_logs.scope_logs.into_iter().enumerate() {
            let (scope_name, scope_version) = scope_logs
                .scope
                .map(|s| (s.name, s.version))
                .unwrap_or_default();
            let mut records = Vec::with_capacity(scope_logs.log_records.len());
            for (li, record) in scope_logs.log_records.into_iter().enumerate() {
                out.received_records += 1;
                let converted = match &resource_fault {
                    Some(fault) => Err((REASON_LIMIT, fault.clone())),
                    None => {
                        check_limits(&record, limits).and_then(|()| convert_record(record, now_ns))
                    }
                };
                match converted {
                    Ok(r) => records.push(r),
                    Err((reason, message)) => refusals.refuse(reason, || {
                        format!("resource_logs[{ri}].scope_logs[{si}].log_records[{li}]: {message}")
                    }),
                }
            }
            if !records.is_empty() {
                out.streams.push(LogStream {
                    labels: labels.clone(),
                    resource: resource.clone(),
                    scope_name,
                    scope_version,
                    records,
                });
            }
        }
    }
    out.error_message = refusals.message("log records", out.received_records);
    out.rejected_records = refusals.total;
    out.rejected_by_reason = refusals.by_reason;
    out
}

/// A record over a limit, checked on the protobuf before anything is converted.
fn check_limits(r: &OtlpLogRecord, limits: &RecordLimits) -> Result<(), Invalid> {
    if r.attributes.len() > limits.max_attributes {
        return Err((
            REASON_LIMIT,
            format!(
                "{} attributes, the limit is {} (max_attributes_per_record)",
                r.attributes.len(),
                limits.max_attributes
            ),
        ));
    }
    let body = r.body.as_ref().map_or(0, any_value_len);
    if body > limits.max_line_bytes {
        return Err((
            REASON_LIMIT,
            format!(
                "body of {body} bytes, the limit is {} (max_line_bytes)",
                limits.max_line_bytes
            ),
        ));
    }
    let attribute_bytes: usize = r
        .attributes
        .iter()
        .map(|kv| kv.key.len() + kv.value.as_ref().map_or(0, any_value_len))
        .sum();
    if attribute_bytes > limits.max_attribute_bytes {
        return Err((
            REASON_LIMIT,
            format!(
                "attributes of {attribute_bytes} bytes, the limit is {} (max_attribute_bytes_per_record)",
                limits.max_attribute_bytes
            ),
        ));
    }
    Ok(())
}

/// The encoded size of a value: a cheap bound on its text form, without building it.
fn any_value_len(v: &AnyValue) -> usize {
    prost::Message::encoded_len(v)
}

fn convert_record(r: OtlpLogRecord, now_ns: i64) -> Result<LogRecord, Invalid> {
    let trace_id = hex_id(&r.trace_id, 16, "trace_id", "invalid_trace_id")?;
    let span_id = hex_id(&r.span_id, 8, "span_id", "invalid_span_id")?;
    let time = nanos(r.time_unix_nano, "time_unix_nano")?;
    let observed = nanos(r.observed_time_unix_nano, "observed_time_unix_nano")?;
    let observed_timestamp_ns = observed.unwrap_or(now_ns);
    let timestamp_ns = time.or(observed).unwrap_or(now_ns);
    let severity_number = u8::try_from(r.severity_number)
        .ok()
        .filter(|n| *n <= 24)
        .unwrap_or(0);
    let mut attributes = key_values_to_pairs(r.attributes);
    if !r.event_name.is_empty() {
        attributes.push(("event.name".to_string(), r.event_name));
    }
    Ok(LogRecord {
        timestamp_ns,
        observed_timestamp_ns,
        severity_number,
        severity_text: r.severity_text,
        body: any_value_to_string(r.body),
        attributes,
        trace_id,
        span_id,
    })
}

/// `None` for 0 (unknown), the value as `i64` otherwise.
fn nanos(value: u64, field: &str) -> Result<Option<i64>, Invalid> {
    if value == 0 {
        return Ok(None);
    }
    i64::try_from(value).map(Some).map_err(|_| {
        (
            "invalid_timestamp",
            format!("{field} {value} is beyond the year 2262"),
        )
    })
}

/// Lower-case hex of a trace or span id; empty when absent or all zeros.
fn hex_id(
    bytes: &[u8],
    expected: usize,
    field: &str,
    reason: &'static str,
) -> Result<String, Invalid> {
    if bytes.is_empty() || (bytes.len() == expected && bytes.iter().all(|b| *b == 0)) {
        return Ok(String::new());
    }
    if bytes.len() != expected {
        return Err((
            reason,
            format!("{field} is {} bytes long, expected {expected}", bytes.len()),
        ));
    }
    Ok(hex::encode(bytes))
}

/// Attribute list → `(name, value-as-string)` pairs, in order.
fn key_values_to_pairs(kvs: Vec<KeyValue>) -> Vec<(String, String)> {
    kvs.into_iter()
        .map(|kv| (kv.key, any_value_to_string(kv.value)))
        .collect()
}

/// An attribute value (or body) as a string: strings as they are; booleans, integers and
/// doubles formatted (`true`, `42`, `637.704`, `NaN`, `Infinity`); bytes as lower-case
/// hex; arrays and key-value lists as compact JSON (keys in their original order, bytes as
/// hex strings, non-finite doubles as the strings `"NaN"`, `"Infinity"`, `"-Infinity"`).
/// An absent or empty value is the empty string.
pub fn any_value_to_string(value: Option<AnyValue>) -> String {
    match value.and_then(|v| v.value) {
        None | Some(Value::StringValueStrindex(_)) => String::new(),
        Some(Value::StringValue(s)) => s,
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => format_double(d),
        Some(Value::BytesValue(b)) => hex::encode(b),
        Some(v @ (Value::ArrayValue(_) | Value::KvlistValue(_))) => {
            let mut out = String::new();
            write_json(&mut out, Some(&v));
            out
        }
    }
}

fn format_double(d: f64) -> String {
    if d.is_nan() {
        "NaN".to_string()
    } else if d.is_infinite() {
        if d > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else {
        serde_json::Number::from_f64(d).map_or_else(|| d.to_string(), |n| n.to_string())
    }
}

fn write_json(out: &mut String, value: Option<&Value>) {
    match value {
        None | Some(Value::StringValueStrindex(_)) => out.push_str("null"),
        Some(Value::StringValue(s)) => write_json_string(out, s),
        Some(Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::IntValue(i)) => out.push_str(&i.to_string()),
        Some(Value::DoubleValue(d)) if d.is_finite() => out.push_str(&format_double(*d)),
        Some(Value::DoubleValue(d)) => write_json_string(out, &format_double(*d)),
        Some(Value::BytesValue(b)) => write_json_string(out, &hex::encode(b)),
        Some(Value::ArrayValue(a)) => {
            out.push('[');
            for (i, v) in a.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, v.value.as_ref());
            }
            out.push(']');
        }
        Some(Value::KvlistValue(kv)) => {
            out.push('{');
            for (i, pair) in kv.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, &pair.key);
                out.push(':');
                write_json(out, pair.value.as_ref().and_then(|v| v.value.as_ref()));
            }
            out.push('}');
        }
    }
}

fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
pub(crate) mod tests {
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, InstrumentationScope, KeyValueList};
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    use super::*;

    pub(crate) fn s(v: &str) -> Option<AnyValue> {
        Some(AnyValue {
            value: Some(Value::StringValue(v.to_string())),
        })
    }

    pub(crate) fn kv(k: &str, v: Option<AnyValue>) -> KeyValue {
        KeyValue {
            key: k.to_string(),
            value: v,
            ..Default::default()
        }
    }

    /// A request with one resource (`service.name` = `checkout`), one scope and `records`.
    pub(crate) fn request(records: Vec<OtlpLogRecord>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", s("checkout")),
                        kv(
                            "process.pid",
                            Some(AnyValue {
                                value: Some(Value::IntValue(42)),
                            }),
                        ),
                    ],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "app.logger".into(),
                        version: "1.2".into(),
                        ..Default::default()
                    }),
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    pub(crate) fn record(body: &str) -> OtlpLogRecord {
        OtlpLogRecord {
            time_unix_nano: 1_700_000_000_000_000_000,
            observed_time_unix_nano: 1_700_000_000_000_000_001,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: s(body),
            attributes: vec![kv("http.method", s("GET"))],
            trace_id: vec![0xab; 16],
            span_id: vec![0x01; 8],
            ..Default::default()
        }
    }

    #[test]
    fn converts_resource_scope_and_record() {
        let c = convert_request(request(vec![record("hello")]), 5);
        assert_eq!(c.received_records, 1);
        assert_eq!(c.rejected_records, 0);
        assert!(c.error_message.is_empty());
        assert_eq!(c.streams.len(), 1);
        let st = &c.streams[0];
        assert_eq!(st.labels.get("service_name"), Some("checkout"));
        assert_eq!(st.labels.get("process_pid"), None);
        assert!(st.resource.contains(&("process.pid".into(), "42".into())));
        assert_eq!(
            (st.scope_name.as_str(), st.scope_version.as_str()),
            ("app.logger", "1.2")
        );
        let r = &st.records[0];
        assert_eq!(r.timestamp_ns, 1_700_000_000_000_000_000);
        assert_eq!(r.observed_timestamp_ns, 1_700_000_000_000_000_001);
        assert_eq!(r.severity_number, 9);
        assert_eq!(r.severity_text, "INFO");
        assert_eq!(r.body, "hello");
        assert_eq!(r.attributes, vec![("http.method".into(), "GET".into())]);
        assert_eq!(r.trace_id, "ab".repeat(16));
        assert_eq!(r.span_id, "01".repeat(8));
    }

    #[test]
    fn timestamps_fall_back_to_observed_then_now() {
        let mut a = record("a");
        a.time_unix_nano = 0;
        let mut b = record("b");
        b.time_unix_nano = 0;
        b.observed_time_unix_nano = 0;
        let c = convert_request(request(vec![a, b]), 77);
        let recs = &c.streams[0].records;
        assert_eq!(recs[0].timestamp_ns, 1_700_000_000_000_000_001);
        assert_eq!(
            (recs[1].timestamp_ns, recs[1].observed_timestamp_ns),
            (77, 77)
        );
    }

    /// Records over a size or count limit are refused one by one with the limit named; a
    /// 50 MiB line used to be stored and returned.
    #[test]
    fn records_over_the_limits_are_refused_naming_the_limit() {
        let mut many = record("many attributes");
        many.attributes = (0..129).map(|i| kv(&format!("k{i}"), s("v"))).collect();
        let long = record(&"x".repeat((256 << 10) + 1));
        let mut heavy = record("heavy attributes");
        heavy.attributes = vec![kv("blob", s(&"y".repeat(70_000)))];
        let c = convert_request(request(vec![many, long, heavy, record("fine")]), 0);
        assert_eq!(c.rejected_records, 3);
        assert_eq!(c.rejected_by_reason, vec![(REASON_LIMIT, 3)]);
        for limit in [
            "129 attributes, the limit is 128 (max_attributes_per_record)",
            "the limit is 262144 (max_line_bytes)",
            "the limit is 65536 (max_attribute_bytes_per_record)",
        ] {
            assert!(
                c.error_message.contains(limit),
                "{limit}: {}",
                c.error_message
            );
        }
        assert_eq!(c.streams[0].records.len(), 1);
        assert_eq!(c.streams[0].records[0].body, "fine");
    }

    #[test]
    fn wrong_id_lengths_reject_only_that_record() {
        let mut bad_trace = record("bad trace");
        bad_trace.trace_id = vec![1; 5];
        let mut bad_span = record("bad span");
        bad_span.span_id = vec![1; 16];
        let mut zero = record("zero ids");
        zero.trace_id = vec![0; 16];
        zero.span_id = vec![0; 8];
        let mut far = record("far future");
        far.time_unix_nano = u64::MAX;
        let c = convert_request(
            request(vec![record("ok"), bad_trace, bad_span, zero, far]),
            0,
        );
        assert_eq!(c.received_records, 5);
        assert_eq!(c.rejected_records, 3);
        assert_eq!(c.accepted_records(), 2);
        assert_eq!(
            c.rejected_by_reason,
            vec![
                ("invalid_trace_id", 1),
                ("invalid_span_id", 1),
                ("invalid_timestamp", 1)
            ]
        );
        assert!(
            c.error_message.contains(
                "resource_logs[0].scope_logs[0].log_records[1]: trace_id is 5 bytes long, expected 16"
            ),
            "{}",
            c.error_message
        );
        assert!(c.error_message.starts_with("rejected 3 of 5 log records: "));
        let recs = &c.streams[0].records;
        assert_eq!(recs.len(), 2);
        assert_eq!(
            (recs[1].trace_id.as_str(), recs[1].span_id.as_str()),
            ("", "")
        );
    }

    #[test]
    fn all_rejected_leaves_no_stream_and_message_is_bounded() {
        let records: Vec<_> = (0..15)
            .map(|_| {
                let mut r = record("x");
                r.span_id = vec![9; 3];
                r
            })
            .collect();
        let c = convert_request(request(records), 0);
        assert!(c.streams.is_empty());
        assert_eq!(c.rejected_records, 15);
        assert!(
            c.error_message.ends_with("; and 5 more"),
            "{}",
            c.error_message
        );
    }

    #[test]
    fn any_values_render_as_strings_and_json() {
        let int = |i| AnyValue {
            value: Some(Value::IntValue(i)),
        };
        let dbl = |d| {
            Some(AnyValue {
                value: Some(Value::DoubleValue(d)),
            })
        };
        assert_eq!(any_value_to_string(None), "");
        assert_eq!(any_value_to_string(Some(AnyValue { value: None })), "");
        assert_eq!(any_value_to_string(s("x\"y")), "x\"y");
        assert_eq!(
            any_value_to_string(Some(AnyValue {
                value: Some(Value::BoolValue(true))
            })),
            "true"
        );
        assert_eq!(any_value_to_string(Some(int(-7))), "-7");
        assert_eq!(any_value_to_string(dbl(637.704)), "637.704");
        assert_eq!(any_value_to_string(dbl(f64::NAN)), "NaN");
        assert_eq!(any_value_to_string(dbl(f64::NEG_INFINITY)), "-Infinity");
        assert_eq!(
            any_value_to_string(Some(AnyValue {
                value: Some(Value::BytesValue(vec![0xde, 0xad]))
            })),
            "dead"
        );
        let nested = AnyValue {
            value: Some(Value::KvlistValue(KeyValueList {
                values: vec![
                    kv("z", s("a\nb")),
                    kv(
                        "list",
                        Some(AnyValue {
                            value: Some(Value::ArrayValue(ArrayValue {
                                values: vec![
                                    int(1),
                                    AnyValue { value: None },
                                    dbl(f64::INFINITY).unwrap(),
                                ],
                            })),
                        }),
                    ),
                    kv(
                        "b",
                        Some(AnyValue {
                            value: Some(Value::BytesValue(vec![1])),
                        }),
                    ),
                ],
            })),
        };
        let json = any_value_to_string(Some(nested));
        assert_eq!(json, r#"{"z":"a\nb","list":[1,null,"Infinity"],"b":"01"}"#);
        assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
    }

    #[test]
    fn event_name_and_odd_severity() {
        let mut r = record("e");
        r.event_name = "user.login".into();
        r.severity_number = 99;
        let c = convert_request(request(vec![r]), 0);
        let rec = &c.streams[0].records[0];
        assert_eq!(rec.severity_number, 0);
        assert!(
            rec.attributes
                .contains(&("event.name".into(), "user.login".into()))
        );
    }
}
