//! Tag names and values for search forms (Tempo's `/api/search/tags`, `…/tag/{name}/values`),
//! read from the term dictionaries of the splits in a time range, never from stored spans.

use std::collections::BTreeSet;

use sightline_model::TenantId;
use tantivy::schema::Field;

use super::TraceStore;
use super::schema::ATTR_SEPARATOR;
use crate::error::IndexerError;
use crate::split::Split;

/// Attribute names seen, by scope.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TagNames {
    pub span: BTreeSet<String>,
    pub resource: BTreeSet<String>,
}

/// What a tag's values are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagSource<'a> {
    /// Span names.
    SpanName,
    /// `resource.service.name`.
    Service,
    /// An attribute in one scope (`"span"` or `"resource"`).
    Attribute { scope: &'a str, name: &'a str },
}

impl TraceStore {
    /// Attribute names of `tenant`'s spans in the splits overlapping `[start_ns, end_ns)`
    /// (whole splits: an hour each by default); at most `limit` per scope. Each name costs one dictionary seek per segment, however many values it
    /// has.
    pub fn tag_names(
        &self,
        tenant: &TenantId,
        start_ns: i64,
        end_ns: i64,
        limit: usize,
    ) -> Result<TagNames, IndexerError> {
        let mut out = TagNames::default();
        for split in self.splits.splits_in(tenant, start_ns, end_ns) {
            let searcher = split.searcher();
            for segment in searcher.segment_readers() {
                let inverted = segment
                    .inverted_index(self.schema.attr)
                    .map_err(|source| tantivy_error(&split, source))?;
                let dict = inverted.terms();
                let mut from: Vec<u8> = Vec::new();
                loop {
                    let mut stream = dict
                        .range()
                        .ge(&from)
                        .into_stream()
                        .map_err(|source| io_error(&split, source))?;
                    if !stream.advance() {
                        break;
                    }
                    let key = stream.key().to_vec();
                    let Some(sep) = key.iter().position(|b| *b == ATTR_SEPARATOR as u8) else {
                        break;
                    };
                    let scoped = String::from_utf8_lossy(&key[..sep]).into_owned();
                    if let Some((scope, name)) = scoped.split_once('.') {
                        let set = if scope == "span" {
                            &mut out.span
                        } else {
                            &mut out.resource
                        };
                        if set.len() < limit {
                            set.insert(name.to_string());
                        }
                    }
                    // Jump past every value of this name: the next name sorts after
                    // `<scoped name>\x01`.
                    from = key[..sep].to_vec();
                    from.push(ATTR_SEPARATOR as u8 + 1);
                }
            }
        }
        Ok(out)
    }

    /// Distinct values of a tag in the splits overlapping `[start_ns, end_ns)`, sorted, at
    /// most `limit`.
    pub fn tag_values(
        &self,
        tenant: &TenantId,
        start_ns: i64,
        end_ns: i64,
        source: TagSource<'_>,
        limit: usize,
    ) -> Result<Vec<String>, IndexerError> {
        let (field, prefix): (Field, Vec<u8>) = match source {
            TagSource::SpanName => (self.schema.name, Vec::new()),
            TagSource::Service => (self.schema.service, Vec::new()),
            TagSource::Attribute { scope, name } => {
                let mut p = format!("{scope}.{name}").into_bytes();
                p.push(ATTR_SEPARATOR as u8);
                (self.schema.attr, p)
            }
        };
        let mut values = BTreeSet::new();
        for split in self.splits.splits_in(tenant, start_ns, end_ns) {
            let searcher = split.searcher();
            for segment in searcher.segment_readers() {
                let inverted = segment
                    .inverted_index(field)
                    .map_err(|source| tantivy_error(&split, source))?;
                let mut stream = inverted
                    .terms()
                    .range()
                    .ge(&prefix)
                    .into_stream()
                    .map_err(|source| io_error(&split, source))?;
                while stream.advance() {
                    let Some(value) = stream.key().strip_prefix(prefix.as_slice()) else {
                        break;
                    };
                    values.insert(String::from_utf8_lossy(value).into_owned());
                    if values.len() >= limit {
                        break;
                    }
                }
            }
        }
        Ok(values.into_iter().take(limit).collect())
    }
}

fn tantivy_error(split: &Split, source: tantivy::TantivyError) -> IndexerError {
    IndexerError::Tantivy {
        path: split.dir.clone(),
        source,
    }
}

fn io_error(split: &Split, source: std::io::Error) -> IndexerError {
    IndexerError::Io {
        path: split.dir.clone(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use sightline_model::{AnyValue, ResourceSpans, ScopeSpans, Span, SpanBatch, SpanId, TraceId};

    use super::*;
    use crate::traces::TraceStoreConfig;

    #[test]
    fn names_and_values_come_from_the_dictionaries() {
        let dir = tempfile::tempdir().unwrap();
        let store = TraceStore::open(TraceStoreConfig::new(dir.path())).unwrap();
        let span = |id: u8, method: &str, name: &str| Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([id; 8]),
            name: name.into(),
            start_ns: 10,
            end_ns: 20,
            attributes: vec![
                ("http.method".into(), AnyValue::String(method.into())),
                ("retries".into(), AnyValue::Int(i64::from(id))),
            ],
            ..Default::default()
        };
        let batch = SpanBatch {
            tenant: TenantId::new("t").unwrap(),
            resources: vec![ResourceSpans {
                labels: sightline_model::index_labels_from_resource(&[(
                    "service.name".to_string(),
                    "pay".to_string(),
                )]),
                resource: vec![
                    ("service.name".into(), AnyValue::String("pay".into())),
                    ("host.name".into(), AnyValue::String("node-1".into())),
                ],
                scopes: vec![ScopeSpans {
                    spans: vec![
                        span(1, "GET", "a"),
                        span(2, "POST", "b"),
                        span(3, "GET", "a"),
                    ],
                    ..Default::default()
                }],
            }],
        };
        store.add_batch(1, &batch).unwrap();
        store.commit().unwrap();
        let t = TenantId::new("t").unwrap();
        let names = store.tag_names(&t, 0, 100, 100).unwrap();
        assert_eq!(
            names.span.into_iter().collect::<Vec<_>>(),
            ["http.method", "retries"]
        );
        assert_eq!(
            names.resource.into_iter().collect::<Vec<_>>(),
            ["host.name", "service.name"]
        );
        let values = |source| store.tag_values(&t, 0, 100, source, 100).unwrap();
        assert_eq!(
            values(TagSource::Attribute {
                scope: "span",
                name: "http.method"
            }),
            ["GET", "POST"]
        );
        assert_eq!(
            values(TagSource::Attribute {
                scope: "span",
                name: "retries"
            }),
            ["1", "2", "3"]
        );
        assert_eq!(values(TagSource::SpanName), ["a", "b"]);
        assert_eq!(values(TagSource::Service), ["pay"]);
        // Ranges select whole splits (an hour each by default).
        let hour = 3_600_000_000_000;
        assert!(
            store
                .tag_values(&t, 2 * hour, 3 * hour, TagSource::SpanName, 10)
                .unwrap()
                .is_empty()
        );
    }
}
