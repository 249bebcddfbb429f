//! The read path: the log store as a [`LogSource`] (time-ordered, lazily loaded entries
//! through [`EntryCursor`]; bucket counts for bare-selector metric queries through
//! [`BucketCollector`]), and the streams of a tenant for the label APIs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sightline_model::{
    BucketCounts, Buckets, Direction, EntryIter, LabelMatcher, Labels, LogSource, SelectRequest,
    StoreError, TenantId,
};

use crate::collectors::BucketCollector;
use crate::cursor::EntryCursor;
use crate::error::IndexerError;
use crate::selection::{matching_streams, stream_and_time_query};
use crate::store::LogStore;

impl LogStore {
    /// Distinct streams of `tenant` matching `matchers` (all streams when empty) in splits
    /// overlapping the range. Resolution is one split window.
    pub fn streams(
        &self,
        tenant: &TenantId,
        start_ns: i64,
        end_ns: i64,
        matchers: &[LabelMatcher],
    ) -> Result<Vec<Arc<Labels>>, IndexerError> {
        let mut seen: HashSet<Arc<Labels>> = HashSet::new();
        for split in self.splits_in(tenant, start_ns, end_ns) {
            let view = split.segment_view(&split.searcher(), &self.schema)?;
            for i in matching_streams(&view, matchers) {
                seen.insert(view.catalogue[i].1.clone());
            }
        }
        let mut out: Vec<Arc<Labels>> = seen.into_iter().collect();
        out.sort();
        Ok(out)
    }

    /// [`LogSource::count_buckets`]: per split, one pass of a collector over the matching
    /// documents that reads only the `ts` and `stream` columns.
    fn count_in_buckets(
        &self,
        request: &SelectRequest<'_>,
        buckets: Buckets,
    ) -> Result<Option<BucketCounts>, IndexerError> {
        /// Stream × bucket cells counted at most per segment (4 bytes each).
        const MAX_CELLS: usize = 1 << 20;
        let (lo, hi) = buckets.range_ns();
        let mut totals: HashMap<Arc<Labels>, Vec<u32>> = HashMap::new();
        for split in self.splits_in(request.tenant, lo, hi) {
            let searcher = split.searcher();
            let view = split.segment_view(&searcher, &self.schema)?;
            let streams = matching_streams(&view, request.matchers);
            if streams.is_empty() {
                continue;
            }
            if streams.len().saturating_mul(buckets.count) > MAX_CELLS {
                return Ok(None);
            }
            let query = stream_and_time_query(&self.schema, &split, &view, &streams, lo, hi);
            let per_segment = searcher
                .search(
                    query.as_ref(),
                    &BucketCollector {
                        view: Arc::clone(&view),
                        buckets,
                    },
                )
                .map_err(|source| IndexerError::Tantivy {
                    path: split.dir.clone(),
                    source,
                })?;
            let mut key = String::new();
            for (segment, by_ord) in per_segment {
                let Some(column) = &view.stream_columns[segment as usize] else {
                    continue;
                };
                for (ord, counts) in by_ord.into_iter().enumerate() {
                    let Some(counts) = counts else { continue };
                    key.clear();
                    column
                        .ord_to_str(ord as u64, &mut key)
                        .map_err(|source| IndexerError::Io {
                            path: split.dir.clone(),
                            source,
                        })?;
                    let total = totals
                        .entry(split.labels_of(&key))
                        .or_insert_with(|| vec![0; buckets.count]);
                    for (t, c) in total.iter_mut().zip(counts) {
                        *t += c;
                    }
                }
            }
        }
        Ok(Some(totals.into_iter().collect()))
    }
}

impl LogSource for LogStore {
    fn count_buckets(
        &self,
        request: &SelectRequest<'_>,
        buckets: Buckets,
    ) -> Option<Result<BucketCounts, StoreError>> {
        if !request.line_filters.is_empty() {
            return None;
        }
        self.count_in_buckets(request, buckets)
            .map_err(StoreError::from)
            .transpose()
    }

    fn select(&self, request: &SelectRequest<'_>) -> Result<EntryIter<'_>, StoreError> {
        let mut splits = self.splits_in(request.tenant, request.start_ns, request.end_ns);
        if request.direction == Direction::Backward {
            splits.reverse();
        }
        Ok(Box::new(EntryCursor::new(self, request, splits.into())))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use sightline_model::MatchOp;

    use super::*;
    use crate::test_support::*;

    #[test]
    fn committed_records_are_found_by_selector_and_filters_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store
            .add_batch(
                1,
                &batch(
                    "t1",
                    "api",
                    &[
                        (10, "GET /users 200"),
                        (30, "Error: connection refused"),
                        (20, "GET /orders 500"),
                    ],
                ),
            )
            .unwrap();
        store
            .add_batch(2, &batch("t1", "db", &[(HOUR + 5, "slow query took 2s")]))
            .unwrap();
        store
            .add_batch(3, &batch("t2", "api", &[(15, "other tenant error")]))
            .unwrap();
        assert!(
            select(&store, "t1", &prod(), &[], Direction::Forward, true).is_empty(),
            "not committed yet"
        );
        assert_eq!(store.commit().unwrap(), 3);

        let all = select(&store, "t1", &prod(), &[], Direction::Forward, true);
        assert_eq!(
            all.iter().map(|e| e.timestamp_ns).collect::<Vec<_>>(),
            vec![10, 20, 30, HOUR + 5]
        );
        let back = select(&store, "t1", &prod(), &[], Direction::Backward, true);
        assert_eq!(
            back.iter().map(|e| e.timestamp_ns).collect::<Vec<_>>(),
            vec![HOUR + 5, 30, 20, 10]
        );
        assert_eq!(
            select(
                &store,
                "t1",
                &[matcher("service_name", MatchOp::Regex, "d.*")],
                &[],
                Direction::Forward,
                true
            )
            .len(),
            1
        );
        // Pushdown is a superset: substrings inside tokens and other cases still reach the engine.
        let hits = select(
            &store,
            "t1",
            &prod(),
            &[contains("rror")],
            Direction::Forward,
            true,
        );
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].line, "Error: connection refused");
        assert_eq!(hits[0].labels.get("service_name"), Some("api"));
        assert!(
            hits[0]
                .metadata
                .contains(&("process_pid".into(), "7".into()))
        );
        assert!(
            hits[0]
                .metadata
                .contains(&("trace_id".into(), "0af7651916cd43dd8448eb211c80319c".into()))
        );
        assert_eq!(
            select(
                &store,
                "t1",
                &prod(),
                &[contains("onnection ref")],
                Direction::Forward,
                true
            )
            .len(),
            1
        );
        assert_eq!(
            select(
                &store,
                "t1",
                &prod(),
                &[contains("GET /")],
                Direction::Forward,
                true
            )
            .len(),
            2
        );
        // A needle's last token may be the head of a longer token: a term-range prefix.
        for (needle, expected) in [("GET /ord", 1), ("/users 2", 1), ("GET /", 2), (" 5", 1)] {
            let filters = [contains(needle)];
            let found = select(&store, "t1", &prod(), &filters, Direction::Forward, false).len();
            assert_eq!(found, expected, "{needle:?}");
        }
        // Regex filters push down their literal runs and are verified exactly.
        for (pattern, expected) in [
            ("GET /(users|orders) [0-9]+", 2),
            ("GET /[a-z]+ 5[0-9]{2}", 1),
            ("(?i)error: conn", 1),
            ("refused$", 1),
        ] {
            let filters = [regex(pattern)];
            let found = select(&store, "t1", &prod(), &filters, Direction::Forward, false).len();
            assert_eq!(found, expected, "{pattern:?}");
        }
        // Without lines the store must be exact: "error" is not in "Error: ...".
        assert_eq!(
            select(
                &store,
                "t1",
                &prod(),
                &[contains("error")],
                Direction::Forward,
                false
            )
            .len(),
            0
        );
        assert_eq!(
            select(
                &store,
                "t1",
                &prod(),
                &[contains("500")],
                Direction::Forward,
                false
            )
            .len(),
            1
        );
        let streams = store
            .streams(&TenantId::new("t1").unwrap(), 0, i64::MAX, &[])
            .unwrap();
        assert_eq!(streams.len(), 2);
        assert_eq!(
            select(&store, "t2", &prod(), &[], Direction::Forward, true).len(),
            1
        );
    }

    #[test]
    fn bucket_counts_equal_counting_the_selected_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let sec = 1_000_000_000i64;
        // Entries every 7 s over two split windows, some exactly on bucket edges.
        let mut seq = 0;
        for (service, phase) in [("api", 0), ("db", 3), ("web", 5)] {
            let lines: Vec<(i64, String)> = (0..1100)
                .map(|i| {
                    (
                        HOUR - 600 * sec + (i * 7 + phase) * sec,
                        format!("line {i}"),
                    )
                })
                .collect();
            let refs: Vec<(i64, &str)> = lines.iter().map(|(t, l)| (*t, l.as_str())).collect();
            seq += 1;
            store.add_batch(seq, &batch("t1", service, &refs)).unwrap();
        }
        store.commit().unwrap();
        let tenant = TenantId::new("t1").unwrap();
        let api_or_db = [matcher("service_name", MatchOp::Regex, "api|db")];
        let web = [matcher("service_name", MatchOp::Equal, "web")];
        let bucketed = |start_s: i64, width_s: i64, count: usize| Buckets {
            start_ns: HOUR + start_s * sec,
            width_ns: width_s * sec,
            count,
        };
        for (matchers, buckets) in [
            (&prod()[..], bucketed(-360, 60, 56)),
            (&prod()[..], bucketed(-360, 300, 12)),
            // Edges on entry timestamps: left-open, right-closed.
            (&prod()[..], bucketed(-600, 7, 900)),
            (&api_or_db[..], bucketed(-90, 30, 100)),
            (&prod()[..], bucketed(-415, 14, 240)),
            (&web[..], bucketed(-3600, 3600, 3)),
        ] {
            let (start_ns, end_ns) = buckets.range_ns();
            let request = SelectRequest {
                tenant: &tenant,
                matchers,
                line_filters: &[],
                start_ns,
                end_ns,
                direction: Direction::Forward,
                ordered: false,
                needs_line: false,
            };
            let counted: BTreeMap<Labels, Vec<u32>> = store
                .count_buckets(&request, buckets)
                .expect("the store counts bare selectors")
                .unwrap()
                .into_iter()
                .map(|(labels, counts)| (labels.as_ref().clone(), counts))
                .collect();
            let mut brute: BTreeMap<Labels, Vec<u32>> = BTreeMap::new();
            for entry in store.select(&request).unwrap() {
                let entry = entry.unwrap();
                let j = buckets
                    .index(entry.timestamp_ns)
                    .expect("selected in range");
                brute
                    .entry(entry.labels.as_ref().clone())
                    .or_insert_with(|| vec![0; buckets.count])[j] += 1;
            }
            assert!(!brute.is_empty(), "{buckets:?}");
            assert_eq!(counted, brute, "{matchers:?} {buckets:?}");
        }
        let filtered = SelectRequest {
            tenant: &tenant,
            matchers: &prod(),
            line_filters: &[contains("line")],
            start_ns: 0,
            end_ns: i64::MAX,
            direction: Direction::Forward,
            ordered: false,
            needs_line: false,
        };
        assert!(
            store.count_buckets(&filtered, bucketed(0, 60, 1)).is_none(),
            "line filters are not counted by the store"
        );
    }
}
