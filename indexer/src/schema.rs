//! The Tantivy schema of a log split and how a record becomes a document.
//!
//! | field      | type                     | why                                              |
//! |------------|--------------------------|--------------------------------------------------|
//! | `ts`       | i64, fast                | time range filters and time ordering             |
//! | `stream`   | raw string, indexed+fast | canonical stream labels: selector pushdown, grouping |
//! | `body`     | text (no positions), stored | line filter pushdown; the log line itself     |
//! | `meta`     | stored string            | structured metadata for label filters            |
//! | `severity` | u64, fast                | OTLP severity number                             |
//! | `trace_id` | raw string, indexed      | jump from a trace to its logs                    |
//! | `pattern`  | u64, fast                | the line's log pattern id (per tenant and service) |
//!
//! The body is indexed without positions (docs only): phrase and substring semantics come
//! from verifying candidate lines, so positions would only cost space. `ts` is a fast field
//! only: Tantivy answers range queries on fast fields from the column, and an inverted index
//! of (nearly unique) timestamps would cost more than the whole body's postings.

use sightline_model::{Labels, LogRecord, LogStream, attribute_to_label_name};
use tantivy::TantivyDocument;
use tantivy::schema::{
    FAST, Field, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer};

/// Name under which [`body_analyzer`] is registered.
pub const BODY_TOKENIZER: &str = "sightline_body";
/// Tokens longer than this (in bytes) are not indexed; line filters on them are verified only.
pub const MAX_TOKEN_LEN: usize = 64;

/// Field handles of the log schema.
#[derive(Clone, Debug)]
pub struct LogSchema {
    pub schema: Schema,
    pub ts: Field,
    pub stream: Field,
    pub body: Field,
    pub meta: Field,
    pub severity: Field,
    pub trace_id: Field,
    pub pattern: Field,
}

impl LogSchema {
    pub fn new() -> Self {
        let mut b = Schema::builder();
        let ts = b.add_i64_field("ts", FAST);
        // No field norms anywhere: they serve BM25 scoring, and log queries never score.
        let raw_term = TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false);
        let stream = b.add_text_field(
            "stream",
            TextOptions::default()
                .set_indexing_options(raw_term.clone())
                .set_fast("raw"),
        );
        let body_options = TextOptions::default().set_stored().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(BODY_TOKENIZER)
                .set_index_option(IndexRecordOption::Basic)
                .set_fieldnorms(false),
        );
        let body = b.add_text_field("body", body_options);
        let meta = b.add_text_field("meta", STORED);
        let severity = b.add_u64_field("severity", FAST);
        let trace_id = b.add_text_field(
            "trace_id",
            TextOptions::default().set_indexing_options(raw_term),
        );
        let pattern = b.add_u64_field("pattern", FAST);
        Self {
            schema: b.build(),
            ts,
            stream,
            body,
            meta,
            severity,
            trace_id,
            pattern,
        }
    }

    /// The document for `record` of a stream whose canonical labels are `stream_key`.
    pub fn document(
        &self,
        stream_key: &str,
        stream: &LogStream,
        record: &LogRecord,
        pattern: u64,
    ) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_i64(self.ts, record.timestamp_ns);
        doc.add_text(self.stream, stream_key);
        doc.add_text(self.body, &record.body);
        doc.add_u64(self.severity, u64::from(record.severity_number));
        doc.add_u64(self.pattern, pattern);
        if !record.trace_id.is_empty() {
            doc.add_text(self.trace_id, &record.trace_id);
        }
        doc.add_text(
            self.meta,
            structured_metadata(stream, record).to_canonical(),
        );
        doc
    }
}

impl Default for LogSchema {
    fn default() -> Self {
        Self::new()
    }
}

/// The analyzer for bodies (and for line-filter needles): alphanumeric runs, lower-cased.
pub fn body_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_LEN))
        .filter(LowerCaser)
        .build()
}

/// Structured metadata of a record, in label-name form: resource attributes that are not
/// index labels, the scope, severity, trace context and record attributes (record attributes
/// win over resource attributes of the same name).
pub fn structured_metadata(stream: &LogStream, record: &LogRecord) -> Labels {
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(8 + record.attributes.len());
    for (k, v) in &stream.resource {
        let name = attribute_to_label_name(k);
        if stream.labels.get(&name).is_none() {
            pairs.push((name, v.clone()));
        }
    }
    if !stream.scope_name.is_empty() {
        pairs.push(("scope_name".into(), stream.scope_name.clone()));
    }
    if !record.severity_text.is_empty() {
        pairs.push(("severity_text".into(), record.severity_text.clone()));
    }
    if record.severity_number > 0 {
        pairs.push(("severity_number".into(), record.severity_number.to_string()));
    }
    if !record.trace_id.is_empty() {
        pairs.push(("trace_id".into(), record.trace_id.clone()));
    }
    if !record.span_id.is_empty() {
        pairs.push(("span_id".into(), record.span_id.clone()));
    }
    for (k, v) in &record.attributes {
        pairs.push((attribute_to_label_name(k), v.clone()));
    }
    Labels::from_pairs(pairs)
}
