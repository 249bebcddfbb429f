//! Which documents of a split a request selects before any line filter: the streams whose
//! labels satisfy the matchers (resolved against the split's stream catalogue, not per
//! document) and the time range, as Tantivy clauses.

use std::ops::Bound;

use sightline_model::LabelMatcher;
use tantivy::Term;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, RangeQuery, TermSetQuery};

use crate::schema::LogSchema;
use crate::split::{SegmentView, Split};

/// Indices into the catalogue of `view` of the streams that satisfy `matchers`.
pub(crate) fn matching_streams(view: &SegmentView, matchers: &[LabelMatcher]) -> Vec<usize> {
    view.catalogue
        .iter()
        .enumerate()
        .filter(|(_, (_, labels))| matchers.iter().all(|m| m.matches_labels(labels)))
        .map(|(i, _)| i)
        .collect()
}

/// The clauses that select `streams` (indices into the view's catalogue) in `[lo, hi)`;
/// none where the split holds nothing else (every stream, or a range covering its window).
pub(crate) fn stream_and_time_clauses(
    schema: &LogSchema,
    split: &Split,
    view: &SegmentView,
    streams: &[usize],
    lo: i64,
    hi: i64,
) -> Vec<(Occur, Box<dyn Query>)> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if streams.len() < view.catalogue.len() {
        let terms = streams
            .iter()
            .map(|&i| Term::from_field_text(schema.stream, &view.catalogue[i].0));
        clauses.push((Occur::Must, Box::new(TermSetQuery::new(terms))));
    }
    if lo > split.window_start_ns || hi < split.window_end_ns {
        clauses.push((
            Occur::Must,
            Box::new(RangeQuery::new(
                Bound::Included(Term::from_field_i64(schema.ts, lo)),
                Bound::Excluded(Term::from_field_i64(schema.ts, hi)),
            )),
        ));
    }
    clauses
}

/// The documents of `streams` (indices into the view's catalogue) in `[lo, hi)`.
pub(crate) fn stream_and_time_query(
    schema: &LogSchema,
    split: &Split,
    view: &SegmentView,
    streams: &[usize],
    lo: i64,
    hi: i64,
) -> Box<dyn Query> {
    all_of(stream_and_time_clauses(
        schema, split, view, streams, lo, hi,
    ))
}

/// Every clause must hold; no clause selects every document.
pub(crate) fn all_of(clauses: Vec<(Occur, Box<dyn Query>)>) -> Box<dyn Query> {
    if clauses.is_empty() {
        Box::new(AllQuery)
    } else {
        Box::new(BooleanQuery::new(clauses))
    }
}
