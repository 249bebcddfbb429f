//! Spans as Sightline stores them.
//!
//! A [`SpanBatch`] is what one client request delivers for one tenant, in OTLP's own shape
//! (resource → instrumentation scope → spans), so that a trace can be given back as OTLP
//! unchanged. Unlike log attributes, span attributes keep their OTLP types ([`AnyValue`]):
//! TraceQL compares `.http.status_code >= 500` as a number and `.cache.hit = true` as a
//! boolean.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Labels, TenantId};

/// An OTLP attribute value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AnyValue {
    String(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(Vec<AnyValue>),
    KvList(Vec<(String, AnyValue)>),
}

impl AnyValue {
    /// The value as text: strings as they are, numbers and booleans in their usual form,
    /// bytes as lower-case hex, arrays and maps as JSON.
    pub fn to_text(&self) -> String {
        match self {
            Self::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for AnyValue {
    /// JSON-like: strings quoted inside arrays and maps, bare at the top level is
    /// [`AnyValue::to_text`]'s job.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(s) => write!(f, "{s:?}"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Double(d) => write!(f, "{d}"),
            Self::Bytes(b) => {
                for byte in b {
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
            Self::Array(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Self::KvList(items) => {
                f.write_str("{")?;
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{k:?}:{v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Attributes under their original OpenTelemetry names, in the order received.
pub type Attributes = Vec<(String, AnyValue)>;

/// A 16-byte trace id (never all zero in a stored span).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id (never all zero in a stored span).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct SpanId(pub [u8; 8]);

macro_rules! hex_id {
    ($t:ident, $n:literal) => {
        impl $t {
            /// Lower-case hex, `2 × len` digits.
            pub fn to_hex(&self) -> String {
                let mut s = String::with_capacity($n * 2);
                for b in self.0 {
                    s.push_str(&format!("{b:02x}"));
                }
                s
            }

            /// From hex (either case). Shorter input is left-padded with zeros, as Tempo
            /// accepts trace ids with their leading zeros dropped; longer input, odd
            /// characters and the all-zero id are refused.
            pub fn from_hex(s: &str) -> Option<Self> {
                if s.is_empty() || s.len() > $n * 2 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                let padded = format!("{s:0>width$}", width = $n * 2);
                let mut out = [0u8; $n];
                for (i, chunk) in padded.as_bytes().chunks(2).enumerate() {
                    let text = std::str::from_utf8(chunk).ok()?;
                    out[i] = u8::from_str_radix(text, 16).ok()?;
                }
                let id = Self(out);
                (!id.is_zero()).then_some(id)
            }

            /// From raw bytes of exactly the right length.
            pub fn from_slice(b: &[u8]) -> Option<Self> {
                <[u8; $n]>::try_from(b).ok().map(Self)
            }

            pub fn is_zero(&self) -> bool {
                self.0.iter().all(|b| *b == 0)
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
    };
}
hex_id!(TraceId, 16);
hex_id!(SpanId, 8);

/// OTLP span kind (`SPAN_KIND_*`), numbered as in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// From the protocol's number; unknown numbers read as unspecified.
    pub fn from_i32(n: i32) -> Self {
        match n {
            1 => Self::Internal,
            2 => Self::Server,
            3 => Self::Client,
            4 => Self::Producer,
            5 => Self::Consumer,
            _ => Self::Unspecified,
        }
    }

    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The protocol's enum name: `SPAN_KIND_SERVER`, the form the spanmetrics connector
    /// puts in its `span_kind` label.
    pub fn otlp_name(self) -> &'static str {
        match self {
            Self::Unspecified => "SPAN_KIND_UNSPECIFIED",
            Self::Internal => "SPAN_KIND_INTERNAL",
            Self::Server => "SPAN_KIND_SERVER",
            Self::Client => "SPAN_KIND_CLIENT",
            Self::Producer => "SPAN_KIND_PRODUCER",
            Self::Consumer => "SPAN_KIND_CONSUMER",
        }
    }

    /// TraceQL's name: `server`, `client`, … (`unspecified` for 0).
    pub fn traceql_name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Internal => "internal",
            Self::Server => "server",
            Self::Client => "client",
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }
}

/// OTLP status code, numbered as in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum StatusCode {
    #[default]
    Unset,
    Ok,
    Error,
}

impl StatusCode {
    pub fn from_i32(n: i32) -> Self {
        match n {
            1 => Self::Ok,
            2 => Self::Error,
            _ => Self::Unset,
        }
    }

    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The protocol's enum name (`STATUS_CODE_ERROR`), as spanmetrics labels it.
    pub fn otlp_name(self) -> &'static str {
        match self {
            Self::Unset => "STATUS_CODE_UNSET",
            Self::Ok => "STATUS_CODE_OK",
            Self::Error => "STATUS_CODE_ERROR",
        }
    }

    /// TraceQL's name: `unset`, `ok`, `error`.
    pub fn traceql_name(self) -> &'static str {
        match self {
            Self::Unset => "unset",
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }
}

/// A timed event inside a span.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpanEvent {
    pub time_ns: i64,
    pub name: String,
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
}

/// A link from a span to another span, possibly of another trace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpanLink {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub trace_state: String,
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
    pub flags: u32,
}

/// One span.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    pub trace_state: String,
    pub flags: u32,
    pub name: String,
    pub kind: SpanKind,
    /// Unix nanoseconds.
    pub start_ns: i64,
    /// Unix nanoseconds, never before `start_ns`.
    pub end_ns: i64,
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
    pub events: Vec<SpanEvent>,
    pub dropped_events_count: u32,
    pub links: Vec<SpanLink>,
    pub dropped_links_count: u32,
    pub status_code: StatusCode,
    pub status_message: String,
}

impl Span {
    pub fn duration_ns(&self) -> i64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    pub fn is_root(&self) -> bool {
        self.parent_span_id.is_none()
    }
}

/// Spans that share one instrumentation scope.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScopeSpans {
    pub scope_name: String,
    pub scope_version: String,
    pub scope_attributes: Attributes,
    pub spans: Vec<Span>,
}

/// Spans that share one resource (one service instance).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceSpans {
    /// The resource attributes mapped to index labels the way logs are
    /// ([`crate::index_labels_from_resource`]): `service_name`, `k8s_namespace_name`, …
    pub labels: Labels,
    /// Every resource attribute, typed, under its OpenTelemetry name.
    pub resource: Attributes,
    pub scopes: Vec<ScopeSpans>,
}

impl ResourceSpans {
    /// `service.name`, or [`crate::UNKNOWN_SERVICE`].
    pub fn service_name(&self) -> &str {
        self.labels
            .get("service_name")
            .unwrap_or(crate::UNKNOWN_SERVICE)
    }
}

/// Everything one request delivered for one tenant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpanBatch {
    pub tenant: TenantId,
    pub resources: Vec<ResourceSpans>,
}

impl SpanBatch {
    pub fn span_count(&self) -> usize {
        self.resources
            .iter()
            .flat_map(|r| &r.scopes)
            .map(|s| s.spans.len())
            .sum()
    }

    /// Every span with its resource and scope.
    pub fn spans(&self) -> impl Iterator<Item = (&ResourceSpans, &ScopeSpans, &Span)> {
        self.resources.iter().flat_map(|r| {
            r.scopes
                .iter()
                .flat_map(move |s| s.spans.iter().map(move |span| (r, s, span)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_round_trip_through_hex_and_accept_dropped_leading_zeros() {
        let id = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
        assert_eq!(id.to_hex(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(
            TraceId::from_hex("AF7651916CD43DD8448EB211C80319C").unwrap(),
            id
        );
        assert_eq!(TraceId::from_hex(&"0".repeat(32)), None);
        assert_eq!(TraceId::from_hex("xyz"), None);
        assert_eq!(TraceId::from_hex(&"1".repeat(33)), None);
        assert_eq!(
            SpanId::from_hex("b7ad6b7169203331").unwrap().to_hex(),
            "b7ad6b7169203331"
        );
    }

    #[test]
    fn values_render_as_text() {
        assert_eq!(AnyValue::String("a b".into()).to_text(), "a b");
        assert_eq!(AnyValue::Int(-3).to_text(), "-3");
        let v = AnyValue::KvList(vec![(
            "k".into(),
            AnyValue::Array(vec![AnyValue::Bool(true), AnyValue::String("x".into())]),
        )]);
        assert_eq!(v.to_text(), r#"{"k":[true,"x"]}"#);
    }
}
