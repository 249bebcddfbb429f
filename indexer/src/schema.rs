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

use std::borrow::Cow;

use sightline_model::labels::{is_valid_label_name, write_canonical};
use sightline_model::{LogRecord, LogStream, attribute_to_label_name};
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

    /// The document for `record` of a stream whose canonical labels are `stream_key`, with
    /// its structured metadata in canonical form ([`write_record_metadata`]).
    pub fn document(
        &self,
        stream_key: &str,
        record: &LogRecord,
        metadata: &str,
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
        doc.add_text(self.meta, metadata);
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

/// The part of a stream's structured metadata that all its records share: resource
/// attributes that are not index labels (label-name form) and the scope. Computed once per
/// stream of a batch instead of once per record.
#[derive(Debug, Clone)]
pub struct StreamMetadata {
    /// In the order [`Labels::from_pairs`] would see them, duplicates included.
    pairs: Vec<(String, String)>,
}

impl StreamMetadata {
    pub fn new(stream: &LogStream) -> Self {
        let mut pairs = Vec::with_capacity(stream.resource.len() + 1);
        for (k, v) in &stream.resource {
            let name = attribute_to_label_name(k);
            if stream.labels.get(&name).is_none() {
                pairs.push((name, v.clone()));
            }
        }
        if !stream.scope_name.is_empty() {
            pairs.push(("scope_name".into(), stream.scope_name.clone()));
        }
        Self { pairs }
    }
}

/// Writes a record's structured metadata in canonical form to `out`: the stream's part, then
/// severity, trace context and the record's attributes, a later pair replacing an earlier
/// one of the same name (record attributes win), empty values dropped, sorted by name —
/// exactly `Labels::from_pairs(…).to_canonical()`, without building the label set.
pub fn write_record_metadata<'a>(
    stream: &'a StreamMetadata,
    record: &'a LogRecord,
    out: &mut String,
) {
    type Pairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;
    fn put<'a>(pairs: &mut Pairs<'a>, name: Cow<'a, str>, value: Cow<'a, str>) {
        // Few pairs: a scan beats hashing.
        match pairs.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => pairs.push((name, value)),
        }
    }
    let mut pairs: Pairs<'a> = Vec::with_capacity(stream.pairs.len() + 5 + record.attributes.len());
    for (k, v) in &stream.pairs {
        put(&mut pairs, Cow::Borrowed(k), Cow::Borrowed(v));
    }
    if !record.severity_text.is_empty() {
        put(
            &mut pairs,
            Cow::Borrowed("severity_text"),
            Cow::Borrowed(&record.severity_text),
        );
    }
    if record.severity_number > 0 {
        put(
            &mut pairs,
            Cow::Borrowed("severity_number"),
            Cow::Owned(record.severity_number.to_string()),
        );
    }
    if !record.trace_id.is_empty() {
        put(
            &mut pairs,
            Cow::Borrowed("trace_id"),
            Cow::Borrowed(&record.trace_id),
        );
    }
    if !record.span_id.is_empty() {
        put(
            &mut pairs,
            Cow::Borrowed("span_id"),
            Cow::Borrowed(&record.span_id),
        );
    }
    for (k, v) in &record.attributes {
        let name = if is_valid_label_name(k) {
            Cow::Borrowed(k.as_str())
        } else {
            Cow::Owned(attribute_to_label_name(k))
        };
        put(&mut pairs, name, Cow::Borrowed(v));
    }
    pairs.retain(|(_, v)| !v.is_empty());
    pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    write_canonical(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())), out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_model::Labels;

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

    fn stream(resource: &[(&str, &str)], labels: &[(&str, &str)], scope: &str) -> LogStream {
        LogStream {
            labels: Labels::from_pairs(labels.iter().map(|&(k, v)| (k, v))),
            resource: resource
                .iter()
                .map(|&(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            scope_name: scope.to_string(),
            ..Default::default()
        }
    }

    #[test]
    fn record_metadata_is_written_exactly_as_the_label_set_prints() {
        let streams = [
            stream(
                &[
                    ("service.name", "api"),
                    ("k8s.namespace.name", "fin"),
                    ("host.arch", "x86"),
                ],
                &[("service_name", "api")],
                "com.finance",
            ),
            stream(&[("severity_text", "from-resource"), ("a", "")], &[], ""),
        ];
        let records = [
            LogRecord::default(),
            LogRecord {
                severity_text: "WARN".into(),
                severity_number: 13,
                trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
                span_id: "b7ad6b7169203331".into(),
                attributes: vec![
                    ("http.method".into(), "GET".into()),
                    ("host_arch".into(), "arm \"64\"\n".into()),
                    ("http.method".into(), "POST".into()),
                    ("1st".into(), "x".into()),
                    ("empty".into(), "".into()),
                ],
                ..Default::default()
            },
            LogRecord {
                attributes: vec![("severity_text".into(), "".into())],
                ..Default::default()
            },
        ];
        for s in &streams {
            let base = StreamMetadata::new(s);
            for r in &records {
                let mut out = String::new();
                write_record_metadata(&base, r, &mut out);
                assert_eq!(out, structured_metadata(s, r).to_canonical());
            }
        }
    }
}
