//! TraceQL for Sightline: the lexer, parser, validator and evaluator of Tempo's trace query
//! language, over traces held in memory.
//!
//! [`parse`] turns text into a [`Query`] or a [`TraceQlError`] that says whether the text is
//! not TraceQL ([`ErrorKind::Syntax`]), not valid TraceQL ([`ErrorKind::Invalid`]), or valid
//! TraceQL this crate does not evaluate ([`ErrorKind::Unsupported`], naming the construct):
//! a query is refused rather than answered wrongly. [`Query::evaluate`] runs a search query
//! on one whole trace; a metrics query (`{ … } | rate() by (…)`, [`Query::is_metrics`]) is
//! evaluated by a [`MetricsEvaluator`] fed one trace at a time, which returns time series.
//! [`Query::prefilter`] tells a store which spans a trace must contain to have a chance of
//! matching, so it can narrow the traces it reads with its indexes.
//!
//! The crate owns the language only: it does no I/O, spawns nothing, and knows no store; it
//! reads spans only through `sightline-model`'s types, and keeps state only inside a
//! [`MetricsEvaluator`]. The supported subset and the semantics chosen are in
//! `docs/traceql.md`.

mod ast;
mod error;
mod eval;
mod lexer;
mod metrics;
mod parser;
mod prefilter;

use std::fmt;

pub use ast::{CmpOp, Field, Intrinsic, Scope, Static};
pub use error::{ErrorKind, TraceQlError};
pub use eval::{SpanRef, SpanSet};
pub use metrics::{MAX_METRICS_POINTS, MAX_METRICS_SERIES, MetricsEvaluator, MetricsSeries};
pub use parser::{MAX_EXPRESSION_DEPTH, MAX_NESTING};
pub use prefilter::Condition;

/// A parsed, valid TraceQL query in the supported subset: a search query or a metrics query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    body: parser::Body,
}

/// Parses and validates a TraceQL query. The caller bounds the text's size; nesting is
/// bounded here ([`MAX_NESTING`], [`MAX_EXPRESSION_DEPTH`]). Never panics.
pub fn parse(text: &str) -> Result<Query, TraceQlError> {
    parser::parse_query(text).map(|body| Query { body })
}

impl Query {
    /// Whether this is a metrics query (`{ … } | rate()`, …), to be evaluated with a
    /// [`MetricsEvaluator`] rather than [`Query::evaluate`].
    pub fn is_metrics(&self) -> bool {
        matches!(self.body, parser::Body::Metrics(_))
    }

    /// Runs the query on one whole trace (all its spans, in any order) and returns the
    /// spansets that survive the pipeline; empty when the trace does not match. For a
    /// metrics query: the spansets of its spanset part(s) — the spans its functions count —
    /// one pipeline after the other.
    pub fn evaluate(&self, trace: &[SpanRef<'_>]) -> Vec<SpanSet> {
        match &self.body {
            parser::Body::Search(pipeline) => eval::evaluate(pipeline, trace),
            parser::Body::Metrics(query) => {
                let prepared = eval::Trace::new(trace);
                metrics::pipelines(&query.expr)
                    .into_iter()
                    .flat_map(|p| eval::run(p, &prepared))
                    .collect()
            }
        }
    }

    /// A conservative hint for a store: a trace can match only if, for each conjunction
    /// listed, one of its spans satisfies every condition of that conjunction. An empty list
    /// restricts nothing. Only exact consequences of the query are listed: `||`, `!=`, `!~`
    /// and negations contribute nothing. For a metrics query the hint concerns its spanset
    /// part: a trace outside it contributes nothing to any series (with several spanset
    /// parts, as in `({ a } | rate()) / ({ } | rate())`, only what all of them require).
    pub fn prefilter(&self) -> Vec<Vec<Condition>> {
        match &self.body {
            parser::Body::Search(pipeline) => prefilter::required(pipeline),
            parser::Body::Metrics(query) => {
                let mut lists = metrics::pipelines(&query.expr)
                    .into_iter()
                    .map(prefilter::required);
                let first = lists.next().unwrap_or_default();
                let rest: Vec<_> = lists.collect();
                // A conjunction holds for every contributing trace when each other
                // pipeline requires it or a stricter one (a superset of its conditions).
                first
                    .into_iter()
                    .filter(|conj| {
                        rest.iter().all(|list| {
                            list.iter()
                                .any(|other| conj.iter().all(|c| other.contains(c)))
                        })
                    })
                    .collect()
            }
        }
    }
}

impl fmt::Display for Query {
    /// Canonical TraceQL that parses back to an equal query.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.body {
            parser::Body::Search(pipeline) => write!(f, "{pipeline}"),
            parser::Body::Metrics(query) => write!(f, "{query}"),
        }
    }
}

impl std::str::FromStr for Query {
    type Err = TraceQlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}
