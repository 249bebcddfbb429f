//! Loki push payloads → Sightline model, with per-stream and per-entry validation.
//!
//! Two payload formats:
//!
//! - JSON: `{"streams":[{"stream":{"app":"x"},"values":[["<unix ns>","line"],
//!   ["<unix ns>","line",{"meta":"v"}]]}]}`. The timestamp is a string of decimal Unix
//!   nanoseconds (a JSON integer is accepted too).
//! - protobuf: `logproto.PushRequest` ([`super::proto`]) compressed with snappy's **block**
//!   format. The stream labels are a selector string, `{app="x", env="prod"}`, parsed by
//!   [`parse_label_selector`].
//!
//! What is refused, and how much of the request it takes down with it (reason in brackets,
//! as used by the metrics):
//!
//! - a whole stream [`invalid_labels`]: a malformed selector, an invalid label name (not
//!   `[a-zA-Z_][a-zA-Z0-9_]*`), a duplicate label name, a label value over the limit
//!   (2048 bytes by default), or no labels at all (empty values count as absent);
//! - one entry [`invalid_timestamp`]: not an integer, negative, missing, or beyond 2262;
//!   [`line_too_long`]: over the line limit (256 KiB by default); [`invalid_entry`]: a JSON
//!   entry that is not `[ts, line]` / `[ts, line, {metadata}]` with string line and values.
//!
//! The rest of the request is kept. Entries are numbered from 0 within their stream.
//!
//! The stream labels become the stream's index labels as they are (they are Loki labels
//! already), and also its `resource`. A stream without a `service_name` label gets one, like
//! Loki 3's service-name discovery: copied from the first of `service`, `app`,
//! `application`, `job`, `container` that is present, else `unknown_service`. Structured
//! metadata becomes record attributes; the entry time is `timestamp_ns` and the receive time
//! `observed_timestamp_ns`. Severity is left unspecified.
//!
//! [`invalid_labels`]: REASON_INVALID_LABELS
//! [`invalid_timestamp`]: REASON_INVALID_TIMESTAMP
//! [`line_too_long`]: REASON_LINE_TOO_LONG
//! [`invalid_entry`]: REASON_INVALID_ENTRY

use std::fmt;

use prost::Message;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use sightline_model::{Labels, LogRecord, LogStream, UNKNOWN_SERVICE, is_valid_label_name};

use super::proto::PushRequest;

/// Reason: the stream's labels are malformed or invalid.
pub const REASON_INVALID_LABELS: &str = "invalid_labels";
/// Reason: the entry's timestamp is missing or not a usable integer.
pub const REASON_INVALID_TIMESTAMP: &str = "invalid_timestamp";
/// Reason: the entry's line is longer than the limit.
pub const REASON_LINE_TOO_LONG: &str = "line_too_long";
/// Reason: a JSON entry does not have the `[ts, line, {metadata}]` shape.
pub const REASON_INVALID_ENTRY: &str = "invalid_entry";

/// Labels whose value becomes `service_name` when a stream has none, in order of preference.
pub const SERVICE_NAME_SOURCES: &[&str] = &["service", "app", "application", "job", "container"];

/// The Loki push receiver's configuration, `[loki_push]` in the server's TOML: the limits
/// applied to each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LokiPushConfig {
    /// Largest body accepted as sent, in bytes. Default 16 MiB.
    pub max_body_bytes: usize,
    /// Largest payload after gzip or snappy decompression, in bytes. Default 64 MiB.
    pub max_decompressed_bytes: usize,
    /// Longest log line, in bytes. Default 256 KiB (Loki's `max_line_size`).
    pub max_line_bytes: usize,
    /// Longest label value, in bytes. Default 2048 (Loki's `max_label_value_length`).
    pub max_label_value_bytes: usize,
    /// Longest label name, in bytes. Default 1024 (Loki's `max_label_name_length`).
    pub max_label_name_bytes: usize,
    /// Most labels a stream may have as pushed. Default 15 (Loki's
    /// `max_label_names_per_series`). With the two length limits this bounds a stream's
    /// label text well below what the index can hold as one term (65,530 bytes): streams
    /// beyond it used to be acknowledged and never be queryable.
    pub max_labels_per_stream: usize,
}

impl Default for LokiPushConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 << 20,
            max_decompressed_bytes: 64 << 20,
            max_line_bytes: 256 << 10,
            max_label_value_bytes: 2048,
            max_label_name_bytes: 1024,
            max_labels_per_stream: 15,
        }
    }
}

/// Payload format, from `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushFormat {
    /// `application/json`.
    Json,
    /// `application/x-protobuf`, snappy block compressed.
    SnappyProtobuf,
}

/// Why a payload could not be decoded at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid snappy block: {0}")]
    Snappy(String),
    #[error("snappy block decompresses to {len} bytes, the limit is {limit}")]
    TooLarge { len: usize, limit: usize },
    #[error("invalid protobuf: {0}")]
    Protobuf(String),
    /// The full message, `invalid JSON at line L, column C: …`.
    #[error("{0}")]
    Json(String),
}

/// Some entries (or a whole stream) refused for one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The metrics reason, e.g. `invalid_timestamp`.
    pub reason: &'static str,
    /// Entries refused (a stream refused for its labels counts all its entries; can be 0).
    pub entries: u64,
    /// What and where, e.g. `stream {app="x"}: entry 3: timestamp "abc" is not an integer`.
    pub message: String,
}

/// A decoded and validated push request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    /// Valid streams with their valid entries (streams left without entries are omitted).
    pub streams: Vec<LogStream>,
    /// Entries in the request, valid or not.
    pub received_entries: u64,
    /// Entries kept in [`Decoded::streams`].
    pub accepted_entries: u64,
    /// Everything refused, in request order.
    pub rejections: Vec<Rejection>,
}

/// A refused entry: the reason and the explanation.
type Invalid = (&'static str, String);

/// Decodes and validates a push payload (already gzip-decompressed if it was). `now_ns` is
/// the receive time, stored as every record's observed time.
pub fn decode_push(
    format: PushFormat,
    payload: &[u8],
    limits: &LokiPushConfig,
    now_ns: i64,
) -> Result<Decoded, DecodeError> {
    match format {
        PushFormat::Json => decode_json(payload, limits, now_ns),
        PushFormat::SnappyProtobuf => decode_protobuf(payload, limits, now_ns),
    }
}

fn decode_protobuf(
    payload: &[u8],
    limits: &LokiPushConfig,
    now_ns: i64,
) -> Result<Decoded, DecodeError> {
    let len = snap::raw::decompress_len(payload).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if len > limits.max_decompressed_bytes {
        return Err(DecodeError::TooLarge {
            len,
            limit: limits.max_decompressed_bytes,
        });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(payload)
        .map_err(|e| DecodeError::Snappy(e.to_string()))?;
    let request =
        PushRequest::decode(raw.as_slice()).map_err(|e| DecodeError::Protobuf(e.to_string()))?;
    drop(raw);

    let mut out = Decoded::default();
    for stream in request.streams {
        let (labels, shown) = match String::from_utf8(stream.labels) {
            Ok(text) => (parse_label_selector(&text), shorten(&text)),
            Err(e) => (
                Err("labels are not valid UTF-8".to_string()),
                shorten(&String::from_utf8_lossy(e.as_bytes())),
            ),
        };
        let entries = stream.entries.into_iter().map(|e| {
            let timestamp_ns = match e.timestamp {
                None => Err((
                    REASON_INVALID_TIMESTAMP,
                    "entry has no timestamp".to_string(),
                )),
                Some(ts) => proto_timestamp_ns(&ts),
            }?;
            let line = String::from_utf8(e.line)
                .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned());
            check_line(&line, limits)?;
            let attributes = e
                .structured_metadata
                .into_iter()
                .map(|p| (lossy(p.name), lossy(p.value)))
                .collect();
            Ok(record(timestamp_ns, now_ns, line, attributes))
        });
        out.add_stream(labels, &shown, entries, limits);
    }
    Ok(out)
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn proto_timestamp_ns(ts: &prost_types::Timestamp) -> Result<i64, Invalid> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err((
            REASON_INVALID_TIMESTAMP,
            format!("timestamp nanos {} is outside 0..999999999", ts.nanos),
        ));
    }
    let ns = ts
        .seconds
        .checked_mul(1_000_000_000)
        .and_then(|s| s.checked_add(i64::from(ts.nanos)))
        .ok_or_else(|| {
            (
                REASON_INVALID_TIMESTAMP,
                format!("timestamp {}s is beyond the year 2262", ts.seconds),
            )
        })?;
    non_negative(ns)
}

fn non_negative(ns: i64) -> Result<i64, Invalid> {
    if ns < 0 {
        Err((
            REASON_INVALID_TIMESTAMP,
            format!("timestamp {ns} is negative"),
        ))
    } else {
        Ok(ns)
    }
}

fn check_line(line: &str, limits: &LokiPushConfig) -> Result<(), Invalid> {
    if line.len() > limits.max_line_bytes {
        return Err((
            REASON_LINE_TOO_LONG,
            format!(
                "line is {} bytes long, the limit is {}",
                line.len(),
                limits.max_line_bytes
            ),
        ));
    }
    Ok(())
}

fn record(
    timestamp_ns: i64,
    now_ns: i64,
    body: String,
    attributes: Vec<(String, String)>,
) -> LogRecord {
    LogRecord {
        timestamp_ns,
        observed_timestamp_ns: now_ns,
        body,
        attributes,
        ..LogRecord::default()
    }
}

/// Keeps error messages readable when a client sends something huge.
fn shorten(text: &str) -> String {
    const MAX: usize = 200;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl Decoded {
    fn reject(&mut self, reason: &'static str, entries: u64, message: String) {
        self.rejections.push(Rejection {
            reason,
            entries,
            message,
        });
    }

    /// Validates one stream's labels and entries and keeps what is valid.
    fn add_stream(
        &mut self,
        labels: Result<Vec<(String, String)>, String>,
        shown: &str,
        entries: impl ExactSizeIterator<Item = Result<LogRecord, Invalid>>,
        limits: &LokiPushConfig,
    ) {
        let count = entries.len() as u64;
        self.received_entries += count;
        let labels = match labels.and_then(|pairs| validate_labels(pairs, limits)) {
            Ok(l) => l,
            Err(msg) => {
                self.reject(
                    REASON_INVALID_LABELS,
                    count,
                    format!("stream {shown}: {msg}"),
                );
                return;
            }
        };
        let mut records = Vec::with_capacity(entries.len());
        for (i, entry) in entries.enumerate() {
            match entry {
                Ok(r) => records.push(r),
                Err((reason, msg)) => {
                    self.reject(reason, 1, format!("stream {shown}: entry {i}: {msg}"));
                }
            }
        }
        if records.is_empty() {
            return;
        }
        self.accepted_entries += records.len() as u64;
        self.streams.push(LogStream {
            resource: labels.clone().into_pairs(),
            labels,
            records,
            ..LogStream::default()
        });
    }
}

/// Checks names, duplicates, value lengths and emptiness, and adds `service_name`.
fn validate_labels(
    pairs: Vec<(String, String)>,
    limits: &LokiPushConfig,
) -> Result<Labels, String> {
    if pairs.len() > limits.max_labels_per_stream {
        return Err(format!(
            "stream has {} labels, the limit is {} (max_labels_per_stream)",
            pairs.len(),
            limits.max_labels_per_stream
        ));
    }
    for (i, (name, value)) in pairs.iter().enumerate() {
        if name.len() > limits.max_label_name_bytes {
            return Err(format!(
                "label name {:?} is {} bytes long, the limit is {} (max_label_name_bytes)",
                shorten(name),
                name.len(),
                limits.max_label_name_bytes
            ));
        }
        if !is_valid_label_name(name) {
            return Err(format!("invalid label name {:?}", shorten(name)));
        }
        if pairs[..i].iter().any(|(n, _)| n == name) {
            return Err(format!("duplicate label name {name:?}"));
        }
        if value.len() > limits.max_label_value_bytes {
            return Err(format!(
                "label {name:?} value is {} bytes long, the limit is {}",
                value.len(),
                limits.max_label_value_bytes
            ));
        }
    }
    let labels = Labels::from_pairs(pairs);
    if labels.is_empty() {
        return Err("stream has no labels".to_string());
    }
    if labels.get("service_name").is_some() {
        return Ok(labels);
    }
    let service = SERVICE_NAME_SOURCES
        .iter()
        .find_map(|name| labels.get(name))
        .unwrap_or(UNKNOWN_SERVICE)
        .to_string();
    let mut pairs = labels.into_pairs();
    pairs.push(("service_name".to_string(), service));
    Ok(Labels::from_pairs(pairs))
}

// ---------------------------------------------------------------------------------------
// JSON

#[derive(Deserialize)]
struct JsonPush {
    #[serde(default)]
    streams: Vec<JsonStream>,
}

#[derive(Deserialize)]
struct JsonStream {
    #[serde(default)]
    stream: JsonLabels,
    #[serde(default)]
    values: Vec<Value>,
}

/// The `stream` object, pairs in order with duplicates kept (so they can be refused).
#[derive(Default)]
struct JsonLabels(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for JsonLabels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = JsonLabels;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of label names to values")
            }
            fn visit_unit<E>(self) -> Result<JsonLabels, E> {
                Ok(JsonLabels::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonLabels, A::Error> {
                let mut pairs = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    pairs.push((k, v));
                }
                Ok(JsonLabels(pairs))
            }
        }
        d.deserialize_any(PairsVisitor)
    }
}

fn decode_json(
    payload: &[u8],
    limits: &LokiPushConfig,
    now_ns: i64,
) -> Result<Decoded, DecodeError> {
    let push: JsonPush = serde_json::from_slice(payload)
        .map_err(|e| DecodeError::Json(crate::otlp::http::json_error_message(&e)))?;
    let mut out = Decoded::default();
    for stream in push.streams {
        let shown = shorten(&format_json_labels(&stream.stream.0));
        let labels = stream
            .stream
            .0
            .into_iter()
            .map(|(name, value)| match value {
                Value::String(s) => Ok((name, s)),
                other => Err(format!("label {name:?} value {other} is not a string")),
            })
            .collect::<Result<Vec<_>, _>>();
        let entries = stream
            .values
            .into_iter()
            .map(|v| json_entry(v, limits, now_ns));
        out.add_stream(labels, &shown, entries, limits);
    }
    Ok(out)
}

fn json_entry(value: Value, limits: &LokiPushConfig, now_ns: i64) -> Result<LogRecord, Invalid> {
    let shape = || {
        (
            REASON_INVALID_ENTRY,
            "entry must be [\"<unix ns>\", \"<line>\"] or [\"<unix ns>\", \"<line>\", {<metadata>}]"
                .to_string(),
        )
    };
    let Value::Array(items) = value else {
        return Err(shape());
    };
    if !(2..=3).contains(&items.len()) {
        return Err(shape());
    }
    let mut items = items.into_iter();
    let (Some(ts), Some(line)) = (items.next(), items.next()) else {
        return Err(shape());
    };
    let timestamp_ns = json_timestamp_ns(&ts)?;
    let Value::String(line) = line else {
        return Err((REASON_INVALID_ENTRY, "line is not a string".to_string()));
    };
    check_line(&line, limits)?;
    let attributes = match items.next() {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                other => Err((
                    REASON_INVALID_ENTRY,
                    format!("structured metadata {k:?} value {other} is not a string"),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err((
                REASON_INVALID_ENTRY,
                "structured metadata is not an object".to_string(),
            ));
        }
    };
    Ok(record(timestamp_ns, now_ns, line, attributes))
}

fn json_timestamp_ns(ts: &Value) -> Result<i64, Invalid> {
    let parsed = match ts {
        Value::String(s) => s.parse::<i64>().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    match parsed {
        Some(ns) => non_negative(ns),
        None => {
            let shown = match ts {
                Value::String(s) => format!("{:?}", shorten(s)),
                other => shorten(&other.to_string()),
            };
            Err((
                REASON_INVALID_TIMESTAMP,
                format!("timestamp {shown} is not an integer"),
            ))
        }
    }
}

/// `{a="b", c="d"}` for messages, values as JSON strings (non-strings as JSON).
fn format_json_labels(pairs: &[(String, Value)]) -> String {
    let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", inner.join(", "))
}

// ---------------------------------------------------------------------------------------
// Label selector

/// Parses a Loki stream selector as sent in push requests, `{a="b", c="d"}`: names, `=`
/// and values quoted with `"` (Go escapes: `\n \t \\ \" \xHH \ooo \uHHHH …`) or backticks
/// (raw). Whitespace around tokens and a trailing comma are allowed. Names are returned as
/// written (validation is separate); the error says what is wrong and at which byte.
pub fn parse_label_selector(text: &str) -> Result<Vec<(String, String)>, String> {
    SelectorParser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    }
    .parse()
    .map_err(|e| format!("malformed labels: {e}"))
}

struct SelectorParser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl SelectorParser<'_> {
    fn parse(mut self) -> Result<Vec<(String, String)>, String> {
        let mut pairs = Vec::new();
        self.skip_ws();
        if !self.eat(b'{') {
            return Err(format!("expected '{{' at byte {}", self.pos));
        }
        self.skip_ws();
        if !self.eat(b'}') {
            loop {
                self.skip_ws();
                let name = self.name()?;
                self.skip_ws();
                let at = self.pos;
                if !self.eat(b'=') || matches!(self.peek(), Some(b'~')) {
                    return Err(format!(
                        "expected '=' after label name {name:?} at byte {at} (only = is allowed)"
                    ));
                }
                self.skip_ws();
                let value = self.value()?;
                pairs.push((name, value));
                self.skip_ws();
                if self.eat(b',') {
                    self.skip_ws();
                    if self.eat(b'}') {
                        break;
                    }
                } else if self.eat(b'}') {
                    break;
                } else {
                    return Err(format!("expected ',' or '}}' at byte {}", self.pos));
                }
            }
        }
        self.skip_ws();
        if self.pos != self.bytes.len() {
            return Err(format!("unexpected text after '}}' at byte {}", self.pos));
        }
        Ok(pairs)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn name(&mut self) -> Result<String, String> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b.is_ascii_whitespace() || b"=!~,{}\"`".contains(&b) {
                break;
            }
            self.pos += 1;
        }
        if start == self.pos {
            return Err(format!("expected a label name at byte {start}"));
        }
        // Stops only at ASCII bytes or the end, so both ends are char boundaries.
        Ok(self.text[start..self.pos].to_string())
    }

    fn value(&mut self) -> Result<String, String> {
        let start = self.pos;
        if self.eat(b'`') {
            let Some(len) = self.bytes[self.pos..].iter().position(|b| *b == b'`') else {
                return Err(format!("unterminated label value starting at byte {start}"));
            };
            let value = self.text[self.pos..self.pos + len].to_string();
            self.pos += len + 1;
            return Ok(value);
        }
        if !self.eat(b'"') {
            return Err(format!("expected a quoted label value at byte {start}"));
        }
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(format!("unterminated label value starting at byte {start}"));
            };
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => self.escape(&mut out)?,
                b => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| {
            format!("label value starting at byte {start} is not valid UTF-8 after unescaping")
        })
    }

    /// One Go escape sequence, the backslash already consumed.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let at = self.pos - 1;
        let Some(c) = self.peek() else {
            return Err(format!("unterminated escape sequence at byte {at}"));
        };
        self.pos += 1;
        let simple = match c {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' | b'"' | b'\'' => Some(c),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            return Ok(());
        }
        let invalid = || format!("invalid escape sequence at byte {at}");
        match c {
            b'x' => {
                let v = self.digits(2, 16).ok_or_else(invalid)?;
                out.push(u8::try_from(v).map_err(|_| invalid())?);
            }
            b'0'..=b'7' => {
                self.pos -= 1;
                let v = self.digits(3, 8).ok_or_else(invalid)?;
                out.push(u8::try_from(v).map_err(|_| invalid())?);
            }
            b'u' | b'U' => {
                let n = if c == b'u' { 4 } else { 8 };
                let v = self.digits(n, 16).ok_or_else(invalid)?;
                let ch = char::from_u32(v).ok_or_else(invalid)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            _ => return Err(invalid()),
        }
        Ok(())
    }

    /// Exactly `n` digits in `radix`.
    fn digits(&mut self, n: usize, radix: u32) -> Option<u32> {
        let digits = self.bytes.get(self.pos..self.pos + n)?;
        let mut v: u32 = 0;
        for d in digits {
            v = v * radix + char::from(*d).to_digit(radix)?;
        }
        self.pos += n;
        Some(v)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::proto::{EntryAdapter, LabelPairAdapter, StreamAdapter};
    use super::*;

    fn limits() -> LokiPushConfig {
        LokiPushConfig::default()
    }

    /// A snappy-compressed protobuf push with one stream of `(ts_ns, line)` entries.
    pub(crate) fn snappy_push(labels: &str, entries: &[(i64, &str)]) -> Vec<u8> {
        let req = PushRequest {
            streams: vec![StreamAdapter {
                labels: labels.as_bytes().to_vec(),
                entries: entries
                    .iter()
                    .map(|(ts, line)| EntryAdapter {
                        timestamp: Some(prost_types::Timestamp {
                            seconds: ts / 1_000_000_000,
                            nanos: (ts % 1_000_000_000) as i32,
                        }),
                        line: line.as_bytes().to_vec(),
                        structured_metadata: vec![LabelPairAdapter {
                            name: b"trace_id".to_vec(),
                            value: b"abc".to_vec(),
                        }],
                    })
                    .collect(),
                hash: 0,
            }],
        };
        snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap()
    }

    #[test]
    fn selector_parses_go_strings() {
        assert_eq!(parse_label_selector("{}").unwrap(), vec![]);
        assert_eq!(
            parse_label_selector(r#" { app = "x" , msg="a\"b\\c\n\x41\101\u00e9" , raw=`r\n`, } "#)
                .unwrap(),
            vec![
                ("app".to_string(), "x".to_string()),
                ("msg".to_string(), "a\"b\\c\nAAé".to_string()),
                ("raw".to_string(), "r\\n".to_string()),
            ]
        );
        assert_eq!(
            parse_label_selector(r#"{ünï="v"}"#).unwrap(),
            vec![("ünï".to_string(), "v".to_string())]
        );
    }

    #[test]
    fn selector_errors_say_what_and_where() {
        let cases = [
            (r#"app="x"}"#, "expected '{' at byte 0"),
            (r#"{app="x""#, "expected ',' or '}' at byte 8"),
            (r#"{app="x}"#, "unterminated label value starting at byte 5"),
            (
                r#"{app=~"x"}"#,
                "expected '=' after label name \"app\" at byte 4",
            ),
            (
                r#"{app x}"#,
                "expected '=' after label name \"app\" at byte 5",
            ),
            (r#"{="x"}"#, "expected a label name at byte 1"),
            (r#"{app=x}"#, "expected a quoted label value at byte 5"),
            (r#"{a="\q"}"#, "invalid escape sequence at byte 4"),
            (r#"{a="\x4"}"#, "invalid escape sequence at byte 4"),
            (r#"{a="\777"}"#, "invalid escape sequence at byte 4"),
            (r#"{a="\xff"}"#, "not valid UTF-8"),
            (r#"{a="b"} x"#, "unexpected text after '}' at byte 8"),
            (r#"{a="b",,}"#, "expected a label name at byte 7"),
            ("", "expected '{' at byte 0"),
        ];
        for (input, want) in cases {
            let err = parse_label_selector(input).unwrap_err();
            assert!(err.starts_with("malformed labels: "), "{input}: {err}");
            assert!(err.contains(want), "{input}: {err}");
        }
    }

    /// Streams with label text too large for the index were acknowledged and could never be
    /// queried (33 labels of 2,000 bytes, or 10,000 short labels).
    #[test]
    fn label_sets_the_index_cannot_hold_are_refused_by_limit() {
        let wide: serde_json::Map<String, Value> = (0..33)
            .map(|i| (format!("l{i}"), Value::String("v".repeat(2000))))
            .collect();
        let many: serde_json::Map<String, Value> = (0..10_000)
            .map(|i| (format!("l{i}"), Value::String("v".into())))
            .collect();
        let long_name: serde_json::Map<String, Value> =
            [("n".repeat(1025), Value::String("v".into()))]
                .into_iter()
                .collect();
        let body = serde_json::json!({"streams": [
            {"stream": wide, "values": [["1", "a"]]},
            {"stream": many, "values": [["1", "a"]]},
            {"stream": long_name, "values": [["1", "a"]]},
            {"stream": {"app": "ok"}, "values": [["1", "kept"]]},
        ]});
        let d = decode_push(PushFormat::Json, body.to_string().as_bytes(), &limits(), 0).unwrap();
        assert_eq!(d.accepted_entries, 1);
        assert_eq!(d.streams[0].records[0].body, "kept");
        let msgs: Vec<&str> = d.rejections.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(
            msgs[0].contains("has 33 labels, the limit is 15 (max_labels_per_stream)"),
            "{}",
            msgs[0]
        );
        assert!(
            msgs[1].contains("has 10000 labels"),
            "{}",
            &msgs[1][msgs[1].len() - 80..]
        );
        assert!(
            msgs[2].contains("is 1025 bytes long, the limit is 1024 (max_label_name_bytes)"),
            "{}",
            msgs[2]
        );
        assert!(
            d.rejections
                .iter()
                .all(|r| r.reason == REASON_INVALID_LABELS)
        );
    }

    #[test]
    fn json_push_with_partial_acceptance() {
        let body = r#"{"streams":[
            {"stream":{"app":"web","env":"prod"},"values":[
                ["1700000000000000000","first"],
                ["abc","bad time"],
                ["1700000000000000002","with meta",{"trace_id":"t1","user":"u"}],
                [1700000000000000003,"numeric ts"],
                ["-1","negative"],
                "not an array",
                ["1700000000000000004", 42],
                ["1700000000000000005","xxxxxxxxxxx"]
            ]},
            {"stream":{"bad-name":"x"},"values":[["1","a"],["2","b"]]},
            {"stream":{"a":"1","a":"2"},"values":[["1","a"]]},
            {"stream":{},"values":[["1","a"]]},
            {"stream":{"app":"n","n":7},"values":[["1","a"]]}
        ]}"#;
        let lim = LokiPushConfig {
            max_line_bytes: 10,
            ..limits()
        };
        let d = decode_push(PushFormat::Json, body.as_bytes(), &lim, 99).unwrap();
        assert_eq!(d.received_entries, 8 + 2 + 1 + 1 + 1);
        assert_eq!(d.accepted_entries, 3);
        assert_eq!(d.streams.len(), 1);
        let st = &d.streams[0];
        assert_eq!(st.labels.get("app"), Some("web"));
        assert_eq!(st.labels.get("service_name"), Some("web"));
        assert!(st.resource.contains(&("service_name".into(), "web".into())));
        let bodies: Vec<_> = st.records.iter().map(|r| r.body.as_str()).collect();
        assert_eq!(bodies, ["first", "with meta", "numeric ts"]);
        assert_eq!(st.records[1].attributes.len(), 2);
        assert_eq!(st.records[0].timestamp_ns, 1_700_000_000_000_000_000);
        assert_eq!(st.records[0].observed_timestamp_ns, 99);

        let reasons: Vec<_> = d.rejections.iter().map(|r| (r.reason, r.entries)).collect();
        assert_eq!(
            reasons,
            [
                (REASON_INVALID_TIMESTAMP, 1),
                (REASON_INVALID_TIMESTAMP, 1),
                (REASON_INVALID_ENTRY, 1),
                (REASON_INVALID_ENTRY, 1),
                (REASON_LINE_TOO_LONG, 1),
                (REASON_INVALID_LABELS, 2),
                (REASON_INVALID_LABELS, 1),
                (REASON_INVALID_LABELS, 1),
                (REASON_INVALID_LABELS, 1),
            ]
        );
        let msgs: Vec<_> = d.rejections.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(
            msgs[0],
            r#"stream {app="web", env="prod"}: entry 1: timestamp "abc" is not an integer"#
        );
        assert_eq!(
            msgs[1],
            r#"stream {app="web", env="prod"}: entry 4: timestamp -1 is negative"#
        );
        assert!(msgs[4].contains("entry 7: line is 11 bytes long, the limit is 10"));
        assert_eq!(
            msgs[5],
            r#"stream {bad-name="x"}: invalid label name "bad-name""#
        );
        assert_eq!(
            msgs[6],
            r#"stream {a="1", a="2"}: duplicate label name "a""#
        );
        assert_eq!(msgs[7], "stream {}: stream has no labels");
        assert!(
            msgs[8].contains(r#"label "n" value 7 is not a string"#),
            "{}",
            msgs[8]
        );
    }

    #[test]
    fn service_name_is_derived_or_kept() {
        let lim = limits();
        let v = |pairs: &[(&str, &str)]| {
            validate_labels(
                pairs
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
                &lim,
            )
            .unwrap()
        };
        assert_eq!(
            v(&[("service_name", "s"), ("app", "a")]).get("service_name"),
            Some("s")
        );
        assert_eq!(
            v(&[("job", "j"), ("app", "a")]).get("service_name"),
            Some("a")
        );
        assert_eq!(v(&[("container", "c")]).get("service_name"), Some("c"));
        assert_eq!(
            v(&[("env", "e")]).get("service_name"),
            Some(UNKNOWN_SERVICE)
        );
        let long = "v".repeat(2049);
        let err = validate_labels(vec![("a".into(), long)], &lim).unwrap_err();
        assert_eq!(
            err,
            "label \"a\" value is 2049 bytes long, the limit is 2048"
        );
        let err = validate_labels(vec![("a".into(), String::new())], &lim).unwrap_err();
        assert_eq!(err, "stream has no labels");
    }

    #[test]
    fn snappy_protobuf_round_trip() {
        let body = snappy_push(
            r#"{app="api", env="dev"}"#,
            &[(1_700_000_000_123_456_789, "hello")],
        );
        let d = decode_push(PushFormat::SnappyProtobuf, &body, &limits(), 5).unwrap();
        assert!(d.rejections.is_empty());
        let st = &d.streams[0];
        assert_eq!(
            st.labels.to_canonical(),
            r#"{app="api", env="dev", service_name="api"}"#
        );
        let r = &st.records[0];
        assert_eq!(r.timestamp_ns, 1_700_000_000_123_456_789);
        assert_eq!(r.body, "hello");
        assert_eq!(
            r.attributes,
            vec![("trace_id".to_string(), "abc".to_string())]
        );
    }

    #[test]
    fn protobuf_stream_and_entry_errors() {
        let req = PushRequest {
            streams: vec![
                StreamAdapter {
                    labels: b"{app=\"x\"".to_vec(),
                    entries: vec![EntryAdapter::default()],
                    hash: 0,
                },
                StreamAdapter {
                    labels: vec![b'{', 0xff, b'}'],
                    entries: vec![],
                    hash: 0,
                },
                StreamAdapter {
                    labels: b"{app=\"y\"}".to_vec(),
                    entries: vec![
                        EntryAdapter::default(),
                        EntryAdapter {
                            timestamp: Some(prost_types::Timestamp {
                                seconds: 1,
                                nanos: -1,
                            }),
                            ..Default::default()
                        },
                        EntryAdapter {
                            timestamp: Some(prost_types::Timestamp {
                                seconds: i64::MAX,
                                nanos: 0,
                            }),
                            ..Default::default()
                        },
                        EntryAdapter {
                            timestamp: Some(prost_types::Timestamp {
                                seconds: 2,
                                nanos: 0,
                            }),
                            line: vec![b'o', b'k', 0xff],
                            structured_metadata: vec![],
                        },
                    ],
                    hash: 0,
                },
            ],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap();
        let d = decode_push(PushFormat::SnappyProtobuf, &body, &limits(), 0).unwrap();
        assert_eq!(d.received_entries, 5);
        assert_eq!(d.accepted_entries, 1);
        assert_eq!(d.streams[0].records[0].body, "ok\u{fffd}");
        assert_eq!(d.streams[0].records[0].timestamp_ns, 2_000_000_000);
        let msgs: Vec<_> = d.rejections.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(
            msgs[0],
            r#"stream {app="x": malformed labels: expected ',' or '}' at byte 8"#
        );
        assert_eq!(msgs[1], "stream {\u{fffd}}: labels are not valid UTF-8");
        assert_eq!(
            msgs[2],
            r#"stream {app="y"}: entry 0: entry has no timestamp"#
        );
        assert!(
            msgs[3].contains("entry 1: timestamp nanos -1 is outside"),
            "{}",
            msgs[3]
        );
        assert!(
            msgs[4].contains("entry 2: timestamp 9223372036854775807s is beyond"),
            "{}",
            msgs[4]
        );
    }

    #[test]
    fn undecodable_payloads_are_named() {
        let err = decode_push(
            PushFormat::SnappyProtobuf,
            b"\xff\xff\xff\xff\xff\xff",
            &limits(),
            0,
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("invalid snappy block: "),
            "{err}"
        );
        let not_proto = snap::raw::Encoder::new()
            .compress_vec(b"\xff\xff\xff")
            .unwrap();
        let err = decode_push(PushFormat::SnappyProtobuf, &not_proto, &limits(), 0).unwrap_err();
        assert!(err.to_string().starts_with("invalid protobuf: "), "{err}");
        let err = decode_push(
            PushFormat::Json,
            br#"{"streams": [{"stream": 5}]}"#,
            &limits(),
            0,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid JSON at line 1, column "),
            "{err}"
        );
        let big = snap::raw::Encoder::new()
            .compress_vec(&[0u8; 4096])
            .unwrap();
        let lim = LokiPushConfig {
            max_decompressed_bytes: 1024,
            ..limits()
        };
        let err = decode_push(PushFormat::SnappyProtobuf, &big, &lim, 0).unwrap_err();
        assert_eq!(
            err,
            DecodeError::TooLarge {
                len: 4096,
                limit: 1024
            }
        );
    }
}
