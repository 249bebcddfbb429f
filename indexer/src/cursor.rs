//! The read cursor of a log selection: [`EntryCursor`] walks the splits in time order,
//! searches each one only when it is reached, and loads each document only when asked for,
//! so that a log query that stops at its limit reads little more than what it returns.
//!
//! Line filters are pushed down as Tantivy clauses (`pushdown.rs`) that select a superset;
//! every candidate's line is then verified here. A `|=` needle that needs a walk over the
//! term dictionary is deferred ([`DeferredWalk`]) while cheaper verification may end the
//! query first.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use sightline_model::{
    Direction, Entry, LabelMatcher, Labels, LineFilter, LineFilterOp, SelectRequest, StoreError,
    TenantId,
};
use tantivy::collector::DocSetCollector;
use tantivy::query::{BooleanQuery, Occur, Query};
use tantivy::schema::Value;
use tantivy::{DocAddress, Searcher, TantivyDocument};

use crate::collectors::TimestampCollector;
use crate::error::IndexerError;
use crate::pushdown::{NeedlePushdown, contains_pushdown, regex_clauses};
use crate::schema::LogSchema;
use crate::selection::{all_of, matching_streams, stream_and_time_clauses};
use crate::split::{SegmentView, Split};
use crate::store::LogStore;

/// Walks the splits of a selection in time order, loading each split's hits when reached and
/// each document only when asked for.
pub(crate) struct EntryCursor<'a> {
    store: &'a LogStore,
    matchers: Vec<LabelMatcher>,
    line_filters: Vec<LineFilter>,
    tenant: TenantId,
    start_ns: i64,
    end_ns: i64,
    direction: Direction,
    ordered: bool,
    needs_line: bool,
    pending: VecDeque<Arc<Split>>,
    current: Option<SplitCursor>,
}

impl<'a> EntryCursor<'a> {
    /// A cursor over `splits` (in the order they are to be read) for `request`.
    pub(crate) fn new(
        store: &'a LogStore,
        request: &SelectRequest<'_>,
        splits: VecDeque<Arc<Split>>,
    ) -> Self {
        Self {
            store,
            matchers: request.matchers.to_vec(),
            line_filters: request.line_filters.to_vec(),
            tenant: request.tenant.clone(),
            start_ns: request.start_ns,
            end_ns: request.end_ns,
            direction: request.direction,
            ordered: request.ordered,
            needs_line: request.needs_line,
            pending: splits,
            current: None,
        }
    }
}

struct SplitCursor {
    split: Arc<Split>,
    searcher: Searcher,
    hits: HitQueue,
    view: Arc<SegmentView>,
    /// Per segment: stream-column term ordinal → labels. Resolving an ordinal reads (and
    /// decompresses) a dictionary block, so each is resolved once per query, not per entry.
    stream_labels: Vec<Vec<Option<Arc<Labels>>>>,
    walk: Option<DeferredWalk>,
    key_buf: String,
}

/// Candidates loaded at most before a deferred dictionary walk is run.
const WALK_DEFERRED_DOCS: usize = 2048;
/// Candidates loaded at least before a deferred walk may be run early because few of them
/// matched (fewer than one in eight): a rare needle is better served by the walk.
const WALK_EARLY_DOCS: usize = 256;

/// A split's candidates, handed out in time order without sorting them all up front: a log
/// query usually stops at its limit within the first few thousand. Chunks double in size,
/// so draining every candidate stays O(n log n).
struct HitQueue {
    hits: Vec<(i64, DocAddress)>,
    /// `hits[..ready]` is sorted and handed out from `next`.
    next: usize,
    ready: usize,
    chunk: usize,
    order: Option<Direction>,
}

impl HitQueue {
    fn new(hits: Vec<(i64, DocAddress)>, order: Option<Direction>) -> Self {
        let ready = if order.is_none() { hits.len() } else { 0 };
        Self {
            hits,
            next: 0,
            ready,
            chunk: 1024,
            order,
        }
    }

    /// Keeps only the hits not yet handed out that satisfy `keep`, in the same order.
    fn retain_pending(&mut self, keep: impl Fn(&DocAddress) -> bool) {
        let mut pending: Vec<(i64, DocAddress)> = self.hits[self.next..self.ready]
            .iter()
            .filter(|h| keep(&h.1))
            .copied()
            .collect();
        let ready = pending.len();
        pending.extend(
            self.hits[self.ready..]
                .iter()
                .filter(|h| keep(&h.1))
                .copied(),
        );
        self.hits = pending;
        self.next = 0;
        self.ready = ready;
    }

    fn next(&mut self) -> Option<(i64, DocAddress)> {
        if self.next == self.ready && self.ready < self.hits.len() {
            let backward = self.order == Some(Direction::Backward);
            let cmp = |a: &(i64, DocAddress), b: &(i64, DocAddress)| {
                if backward { b.cmp(a) } else { a.cmp(b) }
            };
            let rest = &mut self.hits[self.ready..];
            let take = self.chunk.min(rest.len());
            if take < rest.len() {
                rest.select_nth_unstable_by(take, cmp);
            }
            rest[..take].sort_unstable_by(cmp);
            self.ready += take;
            self.chunk = self.chunk.saturating_mul(2);
        }
        let hit = self.hits.get(self.next).copied()?;
        self.next += 1;
        Some(hit)
    }
}

/// A dictionary walk (`|= "GET"`: the needle may sit inside any token) held back from a
/// split's query. A common needle is found among the first candidates by verifying their
/// lines, and a log query stops at its limit long before a walk over millions of terms would
/// have finished; only after [`WALK_DEFERRED_DOCS`] loaded candidates is the walk run, and
/// its matches then decide which remaining candidates are loaded at all. Either way every
/// line is verified, so results are the same.
struct DeferredWalk {
    query: BooleanQuery,
    loaded: usize,
    matched: usize,
    members: Option<HashSet<DocAddress>>,
}

impl DeferredWalk {
    fn due(&self) -> bool {
        self.members.is_none()
            && (self.loaded >= WALK_DEFERRED_DOCS
                || (self.loaded >= WALK_EARLY_DOCS && self.matched * 8 < self.loaded))
    }
}

impl EntryCursor<'_> {
    fn open_next_split(&mut self) -> Result<bool, IndexerError> {
        let Some(split) = self.pending.pop_front() else {
            return Ok(false);
        };
        let searcher = split.searcher();
        let request = SelectRequest {
            tenant: &self.tenant,
            matchers: &self.matchers,
            line_filters: &self.line_filters,
            start_ns: self.start_ns,
            end_ns: self.end_ns,
            direction: self.direction,
            ordered: self.ordered,
            needs_line: self.needs_line,
        };
        let view = split.segment_view(&searcher, &self.store.schema)?;
        let (hits, walk) = split_hits(&self.store.schema, &split, &searcher, &request, &view)?;
        self.current = Some(SplitCursor {
            split,
            searcher,
            hits,
            stream_labels: vec![Vec::new(); view.stream_columns.len()],
            view,
            walk,
            key_buf: String::new(),
        });
        Ok(true)
    }

    fn entry(&mut self, ts: i64, addr: DocAddress) -> Result<Option<Entry>, IndexerError> {
        let schema = &self.store.schema;
        let cur = self.current.as_mut().expect("called with a current split");
        let err = |source| IndexerError::Tantivy {
            path: cur.split.dir.clone(),
            source,
        };
        let segment = addr.segment_ord as usize;
        let ord = cur.view.stream_columns[segment]
            .as_ref()
            .and_then(|col| col.term_ords(addr.doc_id).next());
        let known = ord.and_then(|o| cur.stream_labels[segment].get(o as usize)?.as_ref());
        let labels = match known {
            Some(labels) => labels.clone(),
            None => {
                cur.key_buf.clear();
                if let (Some(col), Some(ord)) = (&cur.view.stream_columns[segment], ord) {
                    col.ord_to_str(ord, &mut cur.key_buf)
                        .map_err(|source| IndexerError::Io {
                            path: cur.split.dir.clone(),
                            source,
                        })?;
                }
                let labels = cur.split.labels_of(&cur.key_buf);
                if let Some(ord) = ord {
                    let slots = &mut cur.stream_labels[segment];
                    if slots.len() <= ord as usize {
                        slots.resize(ord as usize + 1, None);
                    }
                    slots[ord as usize] = Some(labels.clone());
                }
                labels
            }
        };
        if let Some(walk) = &mut cur.walk {
            if walk.due() {
                let members = cur
                    .searcher
                    .search(&walk.query, &DocSetCollector)
                    .map_err(err)?;
                // From here on only the walk's matches are candidates.
                cur.hits.retain_pending(|addr| members.contains(addr));
                walk.members = Some(members);
            }
            match &walk.members {
                Some(members) if !members.contains(&addr) => return Ok(None),
                Some(_) => {}
                None => walk.loaded += 1,
            }
        }
        if !self.needs_line && self.line_filters.is_empty() {
            return Ok(Some(Entry {
                timestamp_ns: ts,
                labels,
                line: String::new(),
                metadata: Vec::new(),
            }));
        }
        let doc: TantivyDocument = cur.searcher.doc(addr).map_err(err)?;
        let line = doc
            .get_first(schema.body)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        // Verify what the index only narrowed: without lines the engine relies on exact
        // results, and with them a candidate dropped here is one line less to hand over.
        if !self.line_filters.iter().all(|f| f.matches(&line)) {
            return Ok(None);
        }
        if let Some(walk) = &mut cur.walk
            && walk.members.is_none()
        {
            walk.matched += 1;
        }
        if !self.needs_line {
            return Ok(Some(Entry {
                timestamp_ns: ts,
                labels,
                line: String::new(),
                metadata: Vec::new(),
            }));
        }
        let mut metadata = doc
            .get_first(schema.meta)
            .and_then(|v| v.as_str())
            .and_then(Labels::parse_canonical)
            .map(Labels::into_pairs)
            .unwrap_or_default();
        // The line's log pattern, for `| pattern_id="…"` (0: mined with patterns off).
        if let Some(pattern) = cur.view.pattern_columns[segment]
            .as_ref()
            .and_then(|c| c.first(addr.doc_id))
            .filter(|&p| p > 0)
        {
            metadata.push(("pattern_id".to_string(), pattern.to_string()));
        }
        Ok(Some(Entry {
            timestamp_ns: ts,
            labels,
            line,
            metadata,
        }))
    }
}

impl Iterator for EntryCursor<'_> {
    type Item = Result<Entry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let next_hit = self.current.as_mut().and_then(|c| c.hits.next());
            let result: Result<(), IndexerError> = match next_hit {
                Some((ts, addr)) => match self.entry(ts, addr) {
                    Ok(Some(entry)) => return Some(Ok(entry)),
                    Ok(None) => continue,
                    Err(e) => Err(e),
                },
                None => match self.open_next_split() {
                    Ok(true) => continue,
                    Ok(false) => return None,
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = result {
                // Stop after reporting a failure rather than skip data silently.
                self.pending.clear();
                self.current = None;
                return Some(Err(StoreError::from(e)));
            }
        }
    }
}

/// Candidate documents of one split for a request, ordered by time in its direction.
fn split_hits(
    schema: &LogSchema,
    split: &Split,
    searcher: &Searcher,
    request: &SelectRequest<'_>,
    view: &Arc<SegmentView>,
) -> Result<(HitQueue, Option<DeferredWalk>), IndexerError> {
    let streams = matching_streams(view, request.matchers);
    if streams.is_empty() {
        return Ok((HitQueue::new(Vec::new(), None), None));
    }
    let mut clauses = stream_and_time_clauses(
        schema,
        split,
        view,
        &streams,
        request.start_ns,
        request.end_ns,
    );
    let mut walks: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for filter in request.line_filters {
        let filter_clauses = match filter.op {
            LineFilterOp::Contains => {
                match contains_pushdown(schema.body, &filter.value) {
                    NeedlePushdown::Cheap(clauses) => clauses,
                    // Deferred only where a limit can end the query early: time-ordered
                    // requests. Metric queries read every candidate, so walk up front.
                    NeedlePushdown::Walk(walk) if request.ordered => {
                        walks.push((Occur::Must, walk));
                        Vec::new()
                    }
                    NeedlePushdown::Walk(walk) => vec![walk],
                }
            }
            LineFilterOp::Regex => regex_clauses(schema.body, &filter.value),
            LineFilterOp::NotContains | LineFilterOp::NotRegex => Vec::new(),
        };
        clauses.extend(filter_clauses.into_iter().map(|q| (Occur::Must, q)));
    }
    let query = all_of(clauses);
    let hits = searcher
        .search(
            query.as_ref(),
            &TimestampCollector {
                view: Arc::clone(view),
            },
        )
        .map_err(|source| IndexerError::Tantivy {
            path: split.dir.clone(),
            source,
        })?;
    let order = match (request.ordered, request.direction) {
        (false, _) => None,
        (true, direction) => Some(direction),
    };
    let walk = (!walks.is_empty()).then(|| DeferredWalk {
        query: BooleanQuery::new(walks),
        loaded: 0,
        matched: 0,
        members: None,
    });
    Ok((HitQueue::new(hits, order), walk))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    #[test]
    fn hit_queue_hands_out_every_hit_in_order_without_sorting_up_front() {
        let mut x: u64 = 7;
        let hits: Vec<(i64, DocAddress)> = (0..5000u32)
            .map(|i| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                ((x >> 40) as i64 % 1000, DocAddress::new(i % 3, i))
            })
            .collect();
        for direction in [Direction::Forward, Direction::Backward] {
            let mut expected = hits.clone();
            expected.sort_unstable();
            if direction == Direction::Backward {
                expected.reverse();
            }
            let mut queue = HitQueue::new(hits.clone(), Some(direction));
            let got: Vec<_> = std::iter::from_fn(|| queue.next()).collect();
            assert_eq!(got, expected);
        }
        let mut unordered = HitQueue::new(hits.clone(), None);
        assert_eq!(
            std::iter::from_fn(|| unordered.next()).collect::<Vec<_>>(),
            hits
        );
        // Retaining part way keeps the order of what is left.
        let mut queue = HitQueue::new(hits.clone(), Some(Direction::Forward));
        let first: Vec<_> = (0..1500).map_while(|_| queue.next()).collect();
        queue.retain_pending(|a| a.doc_id % 2 == 0);
        let rest: Vec<_> = std::iter::from_fn(|| queue.next()).collect();
        let mut expected = hits.clone();
        expected.sort_unstable();
        let expected_rest: Vec<_> = expected[1500..]
            .iter()
            .filter(|h| h.1.doc_id % 2 == 0)
            .copied()
            .collect();
        assert_eq!(first, expected[..1500]);
        assert_eq!(rest, expected_rest);
    }

    #[test]
    fn bare_token_needles_find_the_same_lines_before_and_after_the_deferred_walk() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let n = 3 * WALK_DEFERRED_DOCS as i64;
        let lines: Vec<(i64, String)> = (1..=n)
            .map(|i| {
                let line = if i == 10 || i == n - 10 {
                    format!("xyzNEEDLEabc {i}")
                } else if i == 20 || i == n - 20 {
                    format!("plain needle {i}")
                } else {
                    format!("GET /api/{i} status=200")
                };
                (i, line)
            })
            .collect();
        let refs: Vec<(i64, &str)> = lines.iter().map(|(t, l)| (*t, l.as_str())).collect();
        store.add_batch(1, &batch("t1", "api", &refs)).unwrap();
        store.commit().unwrap();
        for needs_line in [true, false] {
            for (dir, order) in [(Direction::Forward, 1), (Direction::Backward, -1)] {
                // With lines the store may return a superset (the engine verifies); without,
                // it must be exact.
                let ts = |needle: &str| -> Vec<i64> {
                    select(&store, "t1", &prod(), &[contains(needle)], dir, needs_line)
                        .iter()
                        .filter(|e| !needs_line || e.line.contains(needle))
                        .map(|e| e.timestamp_ns)
                        .collect()
                };
                let sorted = |mut v: Vec<i64>| {
                    v.sort_by_key(|t| t * order);
                    v
                };
                // Inside a token, past the deferral point and before it.
                assert_eq!(ts("EEDL"), sorted(vec![10, n - 10]));
                assert_eq!(ts("needle"), sorted(vec![20, n - 20]));
                assert_eq!(ts("GET").len() as i64, n - 4);
            }
        }
    }
}
