//! [`LogStore::pattern_summaries`]: the log patterns of a selection over a range, per
//! service and pattern: lines per time bucket, the template (from the ingest miners of
//! `patterns.rs`) and the latest line as a sample. Counting reads only the `ts`, `stream`
//! and `pattern` columns ([`PatternCollector`]); one stored line is loaded per pattern.

use std::collections::HashMap;
use std::sync::Arc;

use sightline_model::{Buckets, LabelMatcher, Labels, TenantId, UNKNOWN_SERVICE};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::schema::Value;
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader, TantivyDocument};

use crate::error::IndexerError;
use crate::selection::{matching_streams, stream_and_time_query};
use crate::split::{SegmentView, Split};
use crate::store::LogStore;

/// One log pattern of a service over a query's range, as the patterns API lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct PatternSummary {
    pub service: String,
    /// The pattern id (per tenant and service); 0 for lines indexed with mining off.
    pub pattern: u64,
    /// The template, `<*>` for variables; `None` when the miner no longer keeps it.
    pub template: Option<String>,
    /// When the miner first saw the pattern (Unix ms).
    pub first_seen_ms: Option<i64>,
    /// Lines per bucket in the range.
    pub counts: Vec<u64>,
    pub total: u64,
    /// The latest line of the pattern in the range, with its timestamp.
    pub sample: (i64, String),
}

impl LogStore {
    /// The log patterns of the streams matching `matchers` in `buckets`' range: per service
    /// and pattern, lines per bucket, the template and a sample line. Reads the `ts`,
    /// `stream` and `pattern` columns, and one stored line per pattern.
    pub fn pattern_summaries(
        &self,
        tenant: &TenantId,
        matchers: &[LabelMatcher],
        buckets: Buckets,
    ) -> Result<Vec<PatternSummary>, IndexerError> {
        let (lo, hi) = buckets.range_ns();
        // (service, resolved pattern) → counts, and the latest line's (ts, split, address).
        type Latest = (i64, usize, DocAddress);
        let mut groups: HashMap<(String, u64), (Vec<u64>, Latest)> = HashMap::new();
        let mut searchers = Vec::new();
        for split in self.splits_in(tenant, lo, hi) {
            let searcher = split.searcher();
            let view = split.segment_view(&searcher, &self.schema)?;
            let streams = matching_streams(&view, matchers);
            if streams.is_empty() {
                continue;
            }
            let query = stream_and_time_query(&self.schema, &split, &view, &streams, lo, hi);
            let per_segment = searcher
                .search(
                    query.as_ref(),
                    &PatternCollector {
                        view: Arc::clone(&view),
                        buckets,
                    },
                )
                .map_err(|source| IndexerError::Tantivy {
                    path: split.dir.clone(),
                    source,
                })?;
            let mut cells = HashMap::new();
            merge_pattern_cells(&split, &view, per_segment, &mut cells)?;
            let split_index = searchers.len();
            let mut patterns = self.patterns.lock().unwrap_or_else(|p| p.into_inner());
            for ((labels, pattern), cell) in cells {
                let service = labels.get("service_name").unwrap_or(UNKNOWN_SERVICE);
                // Ids of patterns merged since are counted under the surviving id.
                let id = match pattern {
                    0 => 0,
                    id => patterns
                        .pattern(tenant, service, id)?
                        .map_or(id, |p| p.id.0),
                };
                let group = groups
                    .entry((service.to_string(), id))
                    .or_insert_with(|| (vec![0; buckets.count], (i64::MIN, 0, cell.latest.1)));
                for (total, c) in group.0.iter_mut().zip(&cell.counts) {
                    *total += u64::from(*c);
                }
                if cell.latest.0 >= group.1.0 {
                    group.1 = (cell.latest.0, split_index, cell.latest.1);
                }
            }
            drop(patterns);
            searchers.push((split, searcher));
        }
        let mut out = Vec::with_capacity(groups.len());
        for ((service, pattern), (counts, (ts, split_index, addr))) in groups {
            let (split, searcher) = &searchers[split_index];
            let doc: TantivyDocument =
                searcher.doc(addr).map_err(|source| IndexerError::Tantivy {
                    path: split.dir.clone(),
                    source,
                })?;
            let line = doc
                .get_first(self.schema.body)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            let known = match pattern {
                0 => None,
                id => self
                    .patterns
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .pattern(tenant, &service, id)?,
            };
            out.push(PatternSummary {
                total: counts.iter().sum(),
                template: known.as_ref().map(|p| p.template.clone()),
                first_seen_ms: known.as_ref().map(|p| p.first_seen_ms),
                service,
                pattern,
                counts,
                sample: (ts, line),
            });
        }
        out.sort_by(|a, b| b.total.cmp(&a.total).then(a.pattern.cmp(&b.pattern)));
        Ok(out)
    }
}

/// Lines of one pattern in one stream, per time bucket, as the collector
/// merges them across segments.
#[derive(Debug, Clone, PartialEq)]
struct PatternCount {
    labels: Arc<Labels>,
    /// The pattern id as indexed (0: mined with patterns off).
    pattern: u64,
    /// Lines per bucket.
    counts: Vec<u32>,
    /// The latest line of the pattern in the range: timestamp and document.
    latest: (i64, DocAddress),
}

/// Counts matching documents per (stream ordinal, pattern) and time bucket, per segment,
/// remembering each pair's latest document.
struct PatternCollector {
    view: Arc<SegmentView>,
    buckets: Buckets,
}

type PatternCells = HashMap<(u64, u64), (Vec<u32>, i64, DocId)>;

struct PatternSegmentCollector {
    segment_ord: SegmentOrdinal,
    ts: Column<i64>,
    stream: Option<StrColumn>,
    pattern: Option<Column<u64>>,
    buckets: Buckets,
    cells: PatternCells,
}

impl Collector for PatternCollector {
    type Fruit = Vec<(SegmentOrdinal, PatternCells)>;
    type Child = PatternSegmentCollector;

    fn for_segment(
        &self,
        segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        Ok(PatternSegmentCollector {
            segment_ord,
            ts: self.view.ts_columns[segment_ord as usize].clone(),
            stream: self.view.stream_columns[segment_ord as usize].clone(),
            // Absent in splits written before patterns were indexed.
            pattern: segment.fast_fields().u64("pattern").ok(),
            buckets: self.buckets,
            cells: HashMap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Self::Fruit>) -> tantivy::Result<Self::Fruit> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for PatternSegmentCollector {
    type Fruit = Vec<(SegmentOrdinal, PatternCells)>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(ts) = self.ts.first(doc) else { return };
        let Some(bucket) = self.buckets.index(ts) else {
            return;
        };
        let Some(ord) = self.stream.as_ref().and_then(|c| c.term_ords(doc).next()) else {
            return;
        };
        let pattern = self
            .pattern
            .as_ref()
            .and_then(|c| c.first(doc))
            .unwrap_or(0);
        let count = self.buckets.count;
        let cell = self
            .cells
            .entry((ord, pattern))
            .or_insert_with(|| (vec![0; count], i64::MIN, doc));
        cell.0[bucket] += 1;
        if ts >= cell.1 {
            cell.1 = ts;
            cell.2 = doc;
        }
    }

    fn harvest(self) -> Self::Fruit {
        vec![(self.segment_ord, self.cells)]
    }
}

/// Merges per-segment cells into counts per (stream labels, pattern).
fn merge_pattern_cells(
    split: &Split,
    view: &SegmentView,
    per_segment: Vec<(SegmentOrdinal, PatternCells)>,
    into: &mut HashMap<(Arc<Labels>, u64), PatternCount>,
) -> Result<(), IndexerError> {
    let mut key = String::new();
    for (segment, cells) in per_segment {
        let Some(column) = &view.stream_columns[segment as usize] else {
            continue;
        };
        for ((ord, pattern), (counts, ts, doc)) in cells {
            key.clear();
            column
                .ord_to_str(ord, &mut key)
                .map_err(|source| IndexerError::Io {
                    path: split.dir.clone(),
                    source,
                })?;
            let labels = split.labels_of(&key);
            let entry = into
                .entry((labels.clone(), pattern))
                .or_insert_with(|| PatternCount {
                    labels,
                    pattern,
                    counts: vec![0; counts.len()],
                    latest: (i64::MIN, DocAddress::new(segment, doc)),
                });
            for (total, c) in entry.counts.iter_mut().zip(&counts) {
                *total += c;
            }
            if ts >= entry.latest.0 {
                entry.latest = (ts, DocAddress::new(segment, doc));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    #[test]
    fn patterns_keep_their_ids_across_a_restart_and_count_like_brute_force() {
        let dir = tempfile::tempdir().unwrap();
        let tenant = TenantId::new("t1").unwrap();
        let sec = 1_000_000_000i64;
        let shape_a = |i: i64| format!("GET /orders/{i} status=200 took {}ms", i % 97);
        let shape_b = |i: i64| format!("user u{i} logged in from 10.0.0.{}", i % 250);
        let before: Vec<(i64, String)> = (0..300)
            .map(|i| {
                let line = if i % 3 == 0 { shape_b(i) } else { shape_a(i) };
                (HOUR + i * sec, line)
            })
            .collect();
        let buckets = Buckets {
            start_ns: HOUR - 1,
            width_ns: 600 * sec,
            count: 2,
        };
        let summaries_of =
            |store: &LogStore| store.pattern_summaries(&tenant, &prod(), buckets).unwrap();
        let id_of = |summaries: &[PatternSummary], needle: &str| {
            summaries
                .iter()
                .find(|s| s.sample.1.contains(needle))
                .map(|s| (s.pattern, s.total))
                .unwrap()
        };
        let (id_a, id_b) = {
            let store = open(dir.path());
            let refs: Vec<(i64, &str)> = before.iter().map(|(t, l)| (*t, l.as_str())).collect();
            store.add_batch(1, &batch("t1", "api", &refs)).unwrap();
            store.commit().unwrap();
            let summaries = summaries_of(&store);
            assert_eq!(summaries.len(), 2, "{summaries:?}");
            let (a, count_a) = id_of(&summaries, "GET /orders/");
            let (b, count_b) = id_of(&summaries, "logged in");
            assert_eq!((count_a, count_b), (200, 100), "brute force: 200 and 100");
            assert_ne!(a, b);
            assert!(a > 0 && b > 0);
            (a, b)
        };
        // Restart, then a deploy brings a new shape.
        let store = open(dir.path());
        let deploy = HOUR + 700 * sec;
        let after: Vec<(i64, String)> = (0..90)
            .map(|i| {
                let line = match i % 3 {
                    0 => shape_a(1000 + i),
                    1 => shape_b(1000 + i),
                    _ => format!("cache warmup of shard {i} failed: timeout"),
                };
                (deploy + i * sec, line)
            })
            .collect();
        let refs: Vec<(i64, &str)> = after.iter().map(|(t, l)| (*t, l.as_str())).collect();
        store.add_batch(2, &batch("t1", "api", &refs)).unwrap();
        store.commit().unwrap();
        let summaries = summaries_of(&store);
        assert_eq!(id_of(&summaries, "GET /orders/"), (id_a, 230));
        assert_eq!(id_of(&summaries, "logged in"), (id_b, 130));
        let new = summaries
            .iter()
            .find(|s| s.sample.1.contains("cache warmup"))
            .unwrap();
        assert_eq!(new.total, 30);
        assert_eq!(new.counts, vec![0, 30], "all after the deploy");
        assert!(new.first_seen_ms.unwrap() >= deploy / 1_000_000);
        assert!(new.pattern != id_a && new.pattern != id_b);
        assert!(
            new.template
                .as_ref()
                .unwrap()
                .contains("cache warmup of shard")
        );
    }
}
