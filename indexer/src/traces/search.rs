//! Candidate traces for a search: which traces have, for each of the conjunctions asked,
//! one span that satisfies all of it, answered from the index (terms and fast fields) without
//! reading a stored span. The query language turns its queries into these conjunctions and
//! checks each candidate trace in full; a condition the index cannot answer exactly is left
//! out by the caller, so candidates are a superset of the matches.

use std::collections::HashMap;
use std::ops::Bound;

use sightline_model::{Cancellation, TenantId, TraceId};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery, TermSetQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader, Term};

use super::TraceStore;
use super::schema::{ATTR_SEPARATOR, MAX_INDEXED_VALUE_BYTES, SpanSchema};
use crate::error::IndexerError;

/// Where an attribute is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrScope {
    Span,
    Resource,
    /// The span's attribute, or the resource's (TraceQL's unscoped `.name`).
    Either,
}

/// A span property the index answers.
#[derive(Debug, Clone, PartialEq)]
pub enum SpanCondition {
    /// The span name is exactly this.
    Name(String),
    /// `service.name` of the span's resource is exactly this.
    Service(String),
    /// OTLP span kind number.
    Kind(u64),
    /// OTLP status code number.
    Status(u64),
    /// The span is a root (no parent).
    Root,
    /// Duration in nanoseconds within these bounds.
    Duration(Bound<u64>, Bound<u64>),
    /// A scalar attribute whose text form is exactly this (`200`, `true`, `GET`).
    Attribute {
        scope: AttrScope,
        name: String,
        value: String,
    },
}

impl SpanCondition {
    /// The terms whose postings hold every span that satisfies the condition (for an
    /// estimate of its selectivity); `None` when it is not a term lookup.
    fn terms(&self, schema: &SpanSchema) -> Option<Vec<Term>> {
        Some(match self {
            SpanCondition::Name(n) => vec![Term::from_field_text(schema.name, n)],
            SpanCondition::Service(s) => vec![Term::from_field_text(schema.service, s)],
            SpanCondition::Kind(k) => vec![Term::from_field_u64(schema.kind, *k)],
            SpanCondition::Status(s) => vec![Term::from_field_u64(schema.status, *s)],
            SpanCondition::Root => vec![Term::from_field_u64(schema.root, 1)],
            SpanCondition::Duration(..) => return None,
            SpanCondition::Attribute { scope, name, value } => {
                let attr = |prefix: &str| {
                    Term::from_field_text(
                        schema.attr,
                        &format!("{prefix}.{name}{ATTR_SEPARATOR}{value}"),
                    )
                };
                match scope {
                    AttrScope::Span => vec![attr("span")],
                    AttrScope::Resource => vec![attr("resource")],
                    AttrScope::Either => vec![attr("span"), attr("resource")],
                }
            }
        })
    }

    /// The Tantivy query of one span condition; `None` when the index cannot answer it
    /// (a value too long to have been indexed), which restricts nothing.
    fn query(&self, schema: &SpanSchema) -> Option<Box<dyn Query>> {
        let term = |field, text: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, text),
                IndexRecordOption::Basic,
            ))
        };
        let number = |field, n: u64| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_u64(field, n),
                IndexRecordOption::Basic,
            ))
        };
        Some(match self {
            SpanCondition::Name(n) => term(schema.name, n),
            SpanCondition::Service(s) => term(schema.service, s),
            SpanCondition::Kind(k) => number(schema.kind, *k),
            SpanCondition::Status(s) => number(schema.status, *s),
            SpanCondition::Root => number(schema.root, 1),
            SpanCondition::Duration(lo, hi) => {
                let bound = |b: &Bound<u64>| match b {
                    Bound::Included(v) => {
                        Bound::Included(Term::from_field_u64(schema.duration, *v))
                    }
                    Bound::Excluded(v) => {
                        Bound::Excluded(Term::from_field_u64(schema.duration, *v))
                    }
                    Bound::Unbounded => Bound::Unbounded,
                };
                Box::new(RangeQuery::new(bound(lo), bound(hi)))
            }
            SpanCondition::Attribute { scope, name, value } => {
                if name.len() > MAX_INDEXED_VALUE_BYTES || value.len() > MAX_INDEXED_VALUE_BYTES {
                    return None;
                }
                let attr = |prefix: &str| format!("{prefix}.{name}{ATTR_SEPARATOR}{value}");
                match scope {
                    AttrScope::Span => term(schema.attr, &attr("span")),
                    AttrScope::Resource => term(schema.attr, &attr("resource")),
                    AttrScope::Either => Box::new(BooleanQuery::new(vec![
                        (Occur::Should, term(schema.attr, &attr("span"))),
                        (Occur::Should, term(schema.attr, &attr("resource"))),
                    ])),
                }
            }
        })
    }
}

/// What [`TraceStore::candidate_traces`] looks for.
#[derive(Debug, Clone)]
pub struct CandidateQuery<'a> {
    /// Span starts in `[start_ns, end_ns)`.
    pub start_ns: i64,
    pub end_ns: i64,
    /// Per conjunction, one span must satisfy all of it; none: every trace.
    pub must: &'a [Vec<SpanCondition>],
    pub max_traces: usize,
    /// With a single conjunction, each segment contributes only the traces of its newest
    /// `max_traces` matching spans (a trace with several matching spans may then give way
    /// to an older one: newest first, nearly); without it every match counts, for callers
    /// that must see all of them (metrics) or know whether there are more.
    pub newest_only: bool,
}

/// A candidate trace and the latest start among its spans that matched.
pub type Candidate = (TraceId, i64);

impl TraceStore {
    /// Traces of `tenant` with spans starting in the query's range that have, for each
    /// conjunction, a span satisfying all of it, newest first. Splits are searched newest
    /// first and the search stops after the split in which `max_traces` candidates were
    /// reached, so the newest are found, not all.
    pub fn candidate_traces(
        &self,
        tenant: &TenantId,
        query: &CandidateQuery<'_>,
        cancel: &Cancellation,
    ) -> Result<Vec<Candidate>, IndexerError> {
        let CandidateQuery {
            start_ns,
            end_ns,
            must,
            max_traces,
            newest_only,
        } = *query;
        let mut splits = self.splits.splits_in(tenant, start_ns, end_ns);
        splits.reverse();
        let conjunctions: Vec<&[SpanCondition]> = if must.is_empty() {
            vec![&[]]
        } else {
            must.iter().map(Vec::as_slice).collect()
        };
        let clauses = |conjunction: &[SpanCondition]| -> Vec<(Occur, Box<dyn Query>)> {
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_i64(self.schema.ts, start_ns)),
                    Bound::Excluded(Term::from_field_i64(self.schema.ts, end_ns)),
                )),
            )];
            clauses.extend(
                conjunction
                    .iter()
                    .filter_map(|c| c.query(&self.schema))
                    .map(|q| (Occur::Must, q)),
            );
            clauses
        };
        // Per conjunction: trace → latest matching start, over the splits searched so far.
        let mut found: Vec<HashMap<TraceId, i64>> = vec![HashMap::new(); conjunctions.len()];
        // Newest-only searches with several conjunctions: what the splits so far gave.
        let mut led: HashMap<TraceId, i64> = HashMap::new();
        let mut result = Vec::new();
        for split in splits {
            if cancel.stopped().is_some() {
                break;
            }
            let searcher = split.searcher();
            let tantivy_err = |source| IndexerError::Tantivy {
                path: split.dir.clone(),
                source,
            };
            if newest_only && conjunctions.len() > 1 {
                // The newest traces of the most selective conjunction lead; the others are
                // only asked about those traces, so no conjunction's matches are gathered
                // in full. (A trace whose spans for two conjunctions sit in different
                // splits is then not found: newest-only searches accept that.)
                let estimate = |c: &[SpanCondition]| -> u64 {
                    c.iter()
                        .filter_map(|c| c.terms(&self.schema))
                        .map(|terms| {
                            terms
                                .iter()
                                .map(|t| searcher.doc_freq(t).unwrap_or(u64::MAX))
                                .sum::<u64>()
                        })
                        .min()
                        .unwrap_or(u64::MAX)
                };
                let lead = (0..conjunctions.len())
                    .min_by_key(|i| estimate(conjunctions[*i]))
                    .unwrap_or(0);
                let collector = TraceIdCollector {
                    newest: Some(max_traces),
                };
                let mut candidates: HashMap<TraceId, i64> = searcher
                    .search(&BooleanQuery::new(clauses(conjunctions[lead])), &collector)
                    .map_err(tantivy_err)?
                    .into_iter()
                    .collect();
                for (i, conjunction) in conjunctions.iter().enumerate() {
                    if i == lead || candidates.is_empty() {
                        continue;
                    }
                    let mut q = clauses(conjunction);
                    q.push((
                        Occur::Must,
                        Box::new(TermSetQuery::new(candidates.keys().map(|id| {
                            Term::from_field_text(self.schema.trace_id, &id.to_hex())
                        }))),
                    ));
                    let hits: HashMap<TraceId, i64> = searcher
                        .search(&BooleanQuery::new(q), &TraceIdCollector { newest: None })
                        .map_err(tantivy_err)?
                        .into_iter()
                        .collect();
                    candidates.retain(|id, ts| match hits.get(id) {
                        Some(t) => {
                            *ts = (*ts).max(*t);
                            true
                        }
                        None => false,
                    });
                }
                for (id, ts) in candidates {
                    let latest = led.entry(id).or_insert(ts);
                    *latest = (*latest).max(ts);
                }
                result = led.iter().map(|(id, ts)| (*id, *ts)).collect();
                if result.len() >= max_traces {
                    break;
                }
                continue;
            }
            for (i, conjunction) in conjunctions.iter().enumerate() {
                // With one conjunction only the newest `max_traces` spans of a segment can
                // be among the answer.
                let collector = TraceIdCollector {
                    newest: newest_only.then_some(max_traces),
                };
                let hits = searcher
                    .search(&BooleanQuery::new(clauses(conjunction)), &collector)
                    .map_err(tantivy_err)?;
                for (id, ts) in hits {
                    let latest = found[i].entry(id).or_insert(ts);
                    *latest = (*latest).max(ts);
                }
            }
            result = intersect(&found);
            if result.len() >= max_traces {
                break;
            }
        }
        result.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        result.truncate(max_traces);
        Ok(result)
    }
}

/// Traces present in every map, with the latest start any of them saw.
fn intersect(found: &[HashMap<TraceId, i64>]) -> Vec<Candidate> {
    let Some((smallest, rest)) = found
        .iter()
        .enumerate()
        .min_by_key(|(_, m)| m.len())
        .map(|(i, m)| (m, found.iter().enumerate().filter(move |(j, _)| *j != i)))
    else {
        return Vec::new();
    };
    let rest: Vec<&HashMap<TraceId, i64>> = rest.map(|(_, m)| m).collect();
    smallest
        .iter()
        .filter_map(|(id, ts)| {
            let mut latest = *ts;
            for m in &rest {
                latest = latest.max(*m.get(id)?);
            }
            Some((*id, latest))
        })
        .collect()
}

/// Gathers the trace id and start of matching spans from the fast fields: of every span,
/// or (with `newest`) only of the newest that many spans of each segment, which is all a
/// single-conjunction search can use of them.
struct TraceIdCollector {
    newest: Option<usize>,
}

struct TraceIdSegmentCollector {
    ts: Column<i64>,
    trace_id: Option<StrColumn>,
    newest: Option<usize>,
    /// (start, trace-id ordinal in this segment) of matching spans.
    spans: Vec<(i64, u64)>,
}

impl Collector for TraceIdCollector {
    type Fruit = Vec<(TraceId, i64)>;
    type Child = TraceIdSegmentCollector;

    fn for_segment(
        &self,
        _segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        Ok(TraceIdSegmentCollector {
            ts: segment.fast_fields().i64("ts")?,
            trace_id: segment.fast_fields().str("trace_id")?,
            newest: self.newest,
            spans: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Self::Fruit>) -> tantivy::Result<Self::Fruit> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for TraceIdSegmentCollector {
    type Fruit = Vec<(TraceId, i64)>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(column) = &self.trace_id else {
            return;
        };
        let Some(ord) = column.term_ords(doc).next() else {
            return;
        };
        let ts = self.ts.first(doc).unwrap_or(i64::MIN);
        // A push per span; the per-trace reduction happens once, in `harvest`.
        self.spans.push((ts, ord));
    }

    fn harvest(self) -> Self::Fruit {
        let Some(column) = self.trace_id else {
            return Vec::new();
        };
        // One pass over the dictionary in ordinal order: looking ordinals up one by one
        // decompresses a dictionary block each time (about 10 µs a trace).
        let mut spans = self.spans;
        if let Some(n) = self.newest
            && spans.len() > n
        {
            spans.select_nth_unstable_by(n, |a, b| b.0.cmp(&a.0));
            spans.truncate(n);
        }
        // Per trace ordinal, its latest start.
        spans.sort_unstable_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)));
        spans.dedup_by_key(|s| s.1);
        let found: Vec<(u64, i64)> = spans.into_iter().map(|(ts, ord)| (ord, ts)).collect();
        let ords: Vec<u64> = found.iter().map(|(ord, _)| *ord).collect();
        let mut out = Vec::with_capacity(found.len());
        let mut next = found.iter();
        let _ = column.dictionary().sorted_ords_to_term_cb(&ords, |term| {
            if let Some((_, ts)) = next.next()
                && let Some(id) = std::str::from_utf8(term).ok().and_then(TraceId::from_hex)
            {
                out.push((id, *ts));
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use sightline_model::{
        AnyValue, ResourceSpans, ScopeSpans, Span, SpanBatch, SpanId, SpanKind, StatusCode,
    };

    use super::*;
    use crate::traces::TraceStoreConfig;

    const HOUR: i64 = 3_600_000_000_000;

    fn span(trace: u8, id: u8, parent: Option<u8>, name: &str, start_ns: i64, ms: i64) -> Span {
        Span {
            trace_id: TraceId([trace; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: parent.map(|p| SpanId([p; 8])),
            name: name.into(),
            kind: if parent.is_some() {
                SpanKind::Client
            } else {
                SpanKind::Server
            },
            start_ns,
            end_ns: start_ns + ms * 1_000_000,
            attributes: vec![("http.response.status_code".into(), AnyValue::Int(200))],
            ..Default::default()
        }
    }

    fn batch(service: &str, spans: Vec<Span>) -> SpanBatch {
        SpanBatch {
            tenant: TenantId::new("t").unwrap(),
            resources: vec![ResourceSpans {
                labels: sightline_model::index_labels_from_resource(&[(
                    "service.name".to_string(),
                    service.to_string(),
                )]),
                resource: vec![("service.name".into(), AnyValue::String(service.into()))],
                scopes: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
            }],
        }
    }

    fn q(
        start_ns: i64,
        end_ns: i64,
        must: &[Vec<SpanCondition>],
        max_traces: usize,
    ) -> CandidateQuery<'_> {
        CandidateQuery {
            start_ns,
            end_ns,
            must,
            max_traces,
            newest_only: true,
        }
    }

    fn ids(c: &[Candidate]) -> Vec<u8> {
        c.iter().map(|(id, _)| id.0[0]).collect()
    }

    #[test]
    fn conjunctions_are_per_span_and_traces_need_all_of_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = TraceStore::open(TraceStoreConfig::new(dir.path())).unwrap();
        let mut failing = span(2, 2, Some(1), "SELECT", HOUR + 20, 300);
        failing.status_code = StatusCode::Error;
        store
            .add_batch(
                1,
                &batch(
                    "a",
                    vec![
                        span(1, 1, None, "GET", 10, 5),
                        span(1, 2, Some(1), "SELECT", 11, 1),
                    ],
                ),
            )
            .unwrap();
        store
            .add_batch(
                2,
                &batch("b", vec![span(2, 1, None, "GET", HOUR + 10, 5), failing]),
            )
            .unwrap();
        store.commit().unwrap();
        let t = TenantId::new("t").unwrap();
        let never = Cancellation::new();
        let search = |must: &[Vec<SpanCondition>]| {
            ids(&store
                .candidate_traces(&t, &q(0, 2 * HOUR, must, 10), &never)
                .unwrap())
        };
        // Everything, newest first.
        assert_eq!(search(&[]), [2, 1]);
        assert_eq!(search(&[vec![SpanCondition::Status(2)]]), [2]);
        // One span must satisfy a whole conjunction: no root is named SELECT.
        assert!(
            search(&[vec![
                SpanCondition::Root,
                SpanCondition::Name("SELECT".into())
            ]])
            .is_empty()
        );
        // Two conjunctions may be met by different spans.
        assert_eq!(
            search(&[
                vec![SpanCondition::Root],
                vec![SpanCondition::Name("SELECT".into())]
            ]),
            [2, 1]
        );
        assert_eq!(
            search(&[vec![SpanCondition::Duration(
                Bound::Excluded(100_000_000),
                Bound::Unbounded
            )]]),
            [2]
        );
        assert_eq!(
            search(&[vec![SpanCondition::Attribute {
                scope: AttrScope::Either,
                name: "service.name".into(),
                value: "a".into()
            }]]),
            [1]
        );
        assert_eq!(
            search(&[vec![SpanCondition::Attribute {
                scope: AttrScope::Span,
                name: "http.response.status_code".into(),
                value: "200".into()
            }]]),
            [2, 1]
        );
        assert_eq!(search(&[vec![SpanCondition::Service("b".into())]]), [2]);
        // The time range bounds span starts.
        assert_eq!(
            ids(&store
                .candidate_traces(&t, &q(0, HOUR, &[], 10), &never)
                .unwrap()),
            [1]
        );
        // The newest split alone satisfies the limit.
        assert_eq!(
            ids(&store
                .candidate_traces(&t, &q(0, 2 * HOUR, &[], 1), &never)
                .unwrap()),
            [2]
        );
    }
}
