//! Traces by id.

use std::collections::HashMap;

use sightline_model::{
    Attributes, Labels, ResourceSpans, ScopeSpans, Span, SpanBatch, TenantId, TraceId,
};
use tantivy::collector::DocSetCollector;
use tantivy::query::TermQuery;
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{TantivyDocument, Term};

use super::TraceStore;
use crate::error::IndexerError;
use crate::split::Split;

impl TraceStore {
    /// Every stored span of trace `id` whose start lies in `[start_ns, end_ns)`, grouped by
    /// resource and scope as OTLP sends them (spans in start order), or `None` when there is
    /// none. Only splits whose trace-id filter may hold the id are searched.
    pub fn trace(
        &self,
        tenant: &TenantId,
        id: &TraceId,
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Option<SpanBatch>, IndexerError> {
        let candidates: Vec<_> = {
            let splits = self.splits.splits_in(tenant, start_ns, end_ns);
            let filters = self.filters_lock();
            splits
                .into_iter()
                .filter(|s| {
                    filters
                        .get(&s.dir)
                        .is_some_and(|f| f.filter.may_contain(id))
                })
                .collect()
        };
        let mut grouper = Grouper::default();
        let hex = id.to_hex();
        for split in candidates {
            self.read_trace_from(&split, &hex, start_ns, end_ns, &mut grouper)?;
        }
        Ok(grouper.finish(tenant))
    }

    /// How many splits a lookup of `id` searches: those whose filter may hold it.
    pub fn splits_searched_for(&self, tenant: &TenantId, id: &TraceId) -> usize {
        let splits = self.splits.splits_in(tenant, i64::MIN, i64::MAX);
        let filters = self.filters_lock();
        splits
            .iter()
            .filter(|s| {
                filters
                    .get(&s.dir)
                    .is_some_and(|f| f.filter.may_contain(id))
            })
            .count()
    }

    fn read_trace_from(
        &self,
        split: &Split,
        hex: &str,
        start_ns: i64,
        end_ns: i64,
        grouper: &mut Grouper,
    ) -> Result<(), IndexerError> {
        let tantivy_err = |source| IndexerError::Tantivy {
            path: split.dir.clone(),
            source,
        };
        let searcher = split.searcher();
        let query = TermQuery::new(
            Term::from_field_text(self.schema.trace_id, hex),
            IndexRecordOption::Basic,
        );
        let mut docs: Vec<_> = searcher
            .search(&query, &DocSetCollector)
            .map_err(tantivy_err)?
            .into_iter()
            .collect();
        docs.sort();
        for address in docs {
            let doc: TantivyDocument = searcher.doc(address).map_err(tantivy_err)?;
            let bytes = |field| {
                doc.get_first(field)
                    .and_then(|v| v.as_bytes())
                    .unwrap_or_default()
                    .to_vec()
            };
            let span_bytes = bytes(self.schema.span);
            let span: Span = postcard::from_bytes(&span_bytes).map_err(|e| corrupt(split, e))?;
            if span.start_ns < start_ns || span.start_ns >= end_ns {
                continue;
            }
            grouper.add(
                split,
                bytes(self.schema.resource),
                bytes(self.schema.scope),
                span,
            )?;
        }
        Ok(())
    }
}

fn corrupt(split: &Split, e: postcard::Error) -> IndexerError {
    IndexerError::Io {
        path: split.dir.clone(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("stored span does not decode: {e}"),
        ),
    }
}

/// Spans regrouped under their resource and scope, by the stored encodings (equal bytes,
/// same resource), in first-seen order.
#[derive(Default)]
pub(crate) struct Grouper {
    resources: Vec<ResourceSpans>,
    resource_index: HashMap<Vec<u8>, usize>,
    scope_index: HashMap<(usize, Vec<u8>), usize>,
}

impl Grouper {
    pub fn add(
        &mut self,
        split: &Split,
        resource_blob: Vec<u8>,
        scope_blob: Vec<u8>,
        span: Span,
    ) -> Result<(), IndexerError> {
        let ri = match self.resource_index.get(&resource_blob) {
            Some(i) => *i,
            None => {
                let (labels, resource): (Labels, Attributes) =
                    postcard::from_bytes(&resource_blob).map_err(|e| corrupt(split, e))?;
                self.resources.push(ResourceSpans {
                    labels,
                    resource,
                    scopes: Vec::new(),
                });
                self.resource_index
                    .insert(resource_blob, self.resources.len() - 1);
                self.resources.len() - 1
            }
        };
        let key = (ri, scope_blob);
        let si = match self.scope_index.get(&key) {
            Some(i) => *i,
            None => {
                let (scope_name, scope_version, scope_attributes): (String, String, Attributes) =
                    postcard::from_bytes(&key.1).map_err(|e| corrupt(split, e))?;
                let scopes = &mut self.resources[ri].scopes;
                scopes.push(ScopeSpans {
                    scope_name,
                    scope_version,
                    scope_attributes,
                    spans: Vec::new(),
                });
                self.scope_index.insert(key, scopes.len() - 1);
                scopes.len() - 1
            }
        };
        self.resources[ri].scopes[si].spans.push(span);
        Ok(())
    }

    pub fn finish(mut self, tenant: &TenantId) -> Option<SpanBatch> {
        if self.resources.is_empty() {
            return None;
        }
        for r in &mut self.resources {
            for s in &mut r.scopes {
                s.spans.sort_by_key(|span| (span.start_ns, span.span_id));
            }
        }
        Some(SpanBatch {
            tenant: tenant.clone(),
            resources: self.resources,
        })
    }
}

#[cfg(test)]
mod tests {
    use sightline_model::{AnyValue, SpanId, SpanKind, StatusCode};

    use super::*;
    use crate::traces::TraceStoreConfig;

    const HOUR: i64 = 3_600_000_000_000;

    fn span(trace: u8, id: u8, parent: Option<u8>, start_ns: i64) -> Span {
        Span {
            trace_id: TraceId([trace; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: parent.map(|p| SpanId([p; 8])),
            name: format!("op{id}"),
            kind: SpanKind::Server,
            start_ns,
            end_ns: start_ns + 1_000,
            attributes: vec![("http.route".into(), AnyValue::String("/pay".into()))],
            status_code: StatusCode::Ok,
            ..Default::default()
        }
    }

    fn batch(tenant: &str, service: &str, spans: Vec<Span>) -> SpanBatch {
        let resource = vec![("service.name".to_string(), AnyValue::String(service.into()))];
        let labels = sightline_model::index_labels_from_resource(&[(
            "service.name".to_string(),
            service.to_string(),
        )]);
        SpanBatch {
            tenant: TenantId::new(tenant).unwrap(),
            resources: vec![ResourceSpans {
                labels,
                resource,
                scopes: vec![ScopeSpans {
                    scope_name: "lib".into(),
                    spans,
                    ..Default::default()
                }],
            }],
        }
    }

    fn ids(b: &SpanBatch) -> Vec<String> {
        b.spans().map(|(_, _, s)| s.span_id.to_hex()).collect()
    }

    #[test]
    fn a_trace_comes_back_whole_across_splits_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let t = TenantId::new("t").unwrap();
        let id = TraceId([7; 16]);
        {
            let store = TraceStore::open(TraceStoreConfig::new(dir.path())).unwrap();
            store
                .add_batch(
                    1,
                    &batch(
                        "t",
                        "a",
                        vec![span(7, 1, None, HOUR - 10), span(9, 5, None, 3)],
                    ),
                )
                .unwrap();
            store
                .add_batch(2, &batch("t", "b", vec![span(7, 2, Some(1), HOUR + 5)]))
                .unwrap();
            store.commit().unwrap();
            let got = store.trace(&t, &id, i64::MIN, i64::MAX).unwrap().unwrap();
            assert_eq!(ids(&got), ["0101010101010101", "0202020202020202"]);
            assert_eq!(got.resources.len(), 2, "one resource per service");
            assert_eq!(
                got.resources[1].scopes[0].spans[0].parent_span_id,
                Some(SpanId([1; 8]))
            );
            // Crash: filters never saved (writers still open).
        }
        let store = TraceStore::open(TraceStoreConfig::new(dir.path())).unwrap();
        let got = store.trace(&t, &id, i64::MIN, i64::MAX).unwrap().unwrap();
        assert_eq!(ids(&got).len(), 2);
        // Another tenant sees nothing; an unknown id is None.
        assert!(
            store
                .trace(&TenantId::new("u").unwrap(), &id, i64::MIN, i64::MAX)
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .trace(&t, &TraceId([8; 16]), i64::MIN, i64::MAX)
                .unwrap()
                .is_none()
        );
        // A time range narrows the search.
        let first_hour = store.trace(&t, &id, 0, HOUR).unwrap().unwrap();
        assert_eq!(ids(&first_hour), ["0101010101010101"]);
    }

    #[test]
    fn lookups_skip_splits_whose_filter_rules_the_id_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = TraceStoreConfig::new(dir.path());
        config.writer_idle_close = std::time::Duration::ZERO;
        let store = TraceStore::open(config.clone()).unwrap();
        for h in 0..24u8 {
            store
                .add_batch(
                    u64::from(h) + 1,
                    &batch("t", "a", vec![span(h + 1, 1, None, i64::from(h) * HOUR)]),
                )
                .unwrap();
        }
        store.commit().unwrap();
        let t = TenantId::new("t").unwrap();
        assert_eq!(store.stats().splits, 24);
        assert_eq!(store.splits_searched_for(&t, &TraceId([5; 16])), 1);
        // Filters were saved as the writers closed, and are loaded, not rebuilt, on open.
        assert!(
            dir.path().join("t").read_dir().unwrap().all(|e| e
                .unwrap()
                .path()
                .join(super::super::FILTER_FILE)
                .exists())
        );
        drop(store);
        let store = TraceStore::open(config).unwrap();
        assert_eq!(store.splits_searched_for(&t, &TraceId([5; 16])), 1);
        assert!(
            store
                .trace(&t, &TraceId([5; 16]), i64::MIN, i64::MAX)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn replay_after_commit_adds_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        let t = TenantId::new("t").unwrap();
        let store = TraceStore::open(TraceStoreConfig::new(dir.path())).unwrap();
        let b = batch("t", "a", vec![span(3, 1, None, 10)]);
        assert_eq!(store.add_batch(1, &b).unwrap(), 1);
        store.commit().unwrap();
        assert_eq!(store.add_batch(1, &b).unwrap(), 0);
        store.commit().unwrap();
        let got = store
            .trace(&t, &TraceId([3; 16]), i64::MIN, i64::MAX)
            .unwrap()
            .unwrap();
        assert_eq!(got.span_count(), 1);
    }
}
