//! The Tantivy schema of a span split and how a span becomes a document.
//!
//! | field      | type                      | why                                                |
//! |------------|---------------------------|----------------------------------------------------|
//! | `ts`       | i64, fast                 | span start: time range filters                     |
//! | `trace_id` | raw string, indexed+fast  | trace by id; search results grouped by trace       |
//! | `service`  | raw string, indexed+fast  | `resource.service.name`: search, tag values        |
//! | `name`     | raw string, indexed+fast  | span name                                          |
//! | `kind`     | u64, indexed+fast         | OTLP span kind number                              |
//! | `status`   | u64, indexed+fast         | OTLP status code number                            |
//! | `duration` | u64, fast                 | nanoseconds: `minDuration`, `duration > 1s`        |
//! | `root`     | u64, indexed+fast         | 1 for a root span (no parent)                      |
//! | `attr`     | raw strings, indexed      | `span.<name>\0<value>` and `resource.<name>\0<value>` of scalar attributes: equality search, tag names and values |
//! | `resource` | bytes, stored             | postcard of the resource (labels, attributes)      |
//! | `scope`    | bytes, stored             | postcard of the scope (name, version, attributes)  |
//! | `span`     | bytes, stored             | postcard of the span, everything OTLP sent         |
//!
//! Attribute values longer than [`MAX_INDEXED_VALUE_BYTES`] (and arrays and maps) are not
//! indexed: a query on them is answered by reading the stored span, not from terms.

use sightline_model::{AnyValue, Span};
use tantivy::TantivyDocument;
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions,
};

/// Attribute names and values longer than this are stored but not indexed.
pub const MAX_INDEXED_VALUE_BYTES: usize = 256;

/// Separates an attribute's scoped name from its value in an `attr` term.
pub const ATTR_SEPARATOR: char = '\0';

#[derive(Clone, Debug)]
pub(crate) struct SpanSchema {
    pub schema: Schema,
    pub ts: Field,
    pub trace_id: Field,
    pub service: Field,
    pub name: Field,
    pub kind: Field,
    pub status: Field,
    pub duration: Field,
    pub root: Field,
    pub attr: Field,
    pub resource: Field,
    pub scope: Field,
    pub span: Field,
}

impl SpanSchema {
    pub fn new() -> Self {
        let mut b = Schema::builder();
        let raw = TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false);
        let raw_fast = TextOptions::default()
            .set_indexing_options(raw.clone())
            .set_fast("raw");
        let ts = b.add_i64_field("ts", FAST);
        let trace_id = b.add_text_field("trace_id", raw_fast.clone());
        let service = b.add_text_field("service", raw_fast.clone());
        let name = b.add_text_field("name", raw_fast);
        let kind = b.add_u64_field("kind", INDEXED | FAST);
        let status = b.add_u64_field("status", INDEXED | FAST);
        let duration = b.add_u64_field("duration", FAST);
        let root = b.add_u64_field("root", INDEXED | FAST);
        let attr = b.add_text_field("attr", TextOptions::default().set_indexing_options(raw));
        let resource = b.add_bytes_field("resource", STORED);
        let scope = b.add_bytes_field("scope", STORED);
        let span = b.add_bytes_field("span", STORED);
        Self {
            schema: b.build(),
            ts,
            trace_id,
            service,
            name,
            kind,
            status,
            duration,
            root,
            attr,
            resource,
            scope,
            span,
        }
    }

    /// The document of `span`, whose resource and scope are already encoded.
    pub fn document(
        &self,
        span: &Span,
        service: &str,
        resource_attributes: &[(String, AnyValue)],
        resource_blob: &[u8],
        scope_blob: &[u8],
    ) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_i64(self.ts, span.start_ns);
        doc.add_text(self.trace_id, span.trace_id.to_hex());
        doc.add_text(self.service, service);
        doc.add_text(self.name, &span.name);
        doc.add_u64(self.kind, span.kind.as_i32() as u64);
        doc.add_u64(self.status, span.status_code.as_i32() as u64);
        doc.add_u64(self.duration, span.duration_ns().max(0) as u64);
        doc.add_u64(self.root, u64::from(span.is_root()));
        let mut term = String::new();
        for (scope, attributes) in [
            ("span", &span.attributes[..]),
            ("resource", resource_attributes),
        ] {
            for (key, value) in attributes {
                if attr_term(&mut term, scope, key, value) {
                    doc.add_text(self.attr, &term);
                }
            }
        }
        doc.add_bytes(self.resource, resource_blob);
        doc.add_bytes(self.scope, scope_blob);
        doc.add_bytes(
            self.span,
            &postcard::to_allocvec(span).expect("span serialises"),
        );
        doc
    }
}

/// Writes the `attr` term of a scalar attribute into `out`; false when it is not indexed
/// (not a scalar, or too long).
pub(crate) fn attr_term(out: &mut String, scope: &str, key: &str, value: &AnyValue) -> bool {
    let text = match value {
        AnyValue::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
        AnyValue::Bool(_) | AnyValue::Int(_) | AnyValue::Double(_) => {
            std::borrow::Cow::Owned(value.to_text())
        }
        AnyValue::Bytes(_) | AnyValue::Array(_) | AnyValue::KvList(_) => return false,
    };
    if key.len() > MAX_INDEXED_VALUE_BYTES || text.len() > MAX_INDEXED_VALUE_BYTES {
        return false;
    }
    out.clear();
    out.push_str(scope);
    out.push('.');
    out.push_str(key);
    out.push(ATTR_SEPARATOR);
    out.push_str(&text);
    true
}
