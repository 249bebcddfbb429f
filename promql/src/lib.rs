//! PromQL for Sightline: queries are parsed by `promql-parser` and evaluated here, with
//! Prometheus 3.x semantics (left-open range selectors and lookback, staleness markers,
//! delayed `__name__` removal, Kahan summation where Prometheus uses it), over any
//! [`SeriesSource`].
//!
//! The engine reads each selector's data once per query, over the whole time span the query
//! needs (offsets, `@`, lookback and subquery ranges included), then evaluates step by step
//! over that data. [`TsdbSource`] is the source over Sightline's TSDB (the TSDB knows no
//! query language; this crate adapts to it). With the `promqltest` feature, `promqltest`
//! runs Prometheus's own `.test` conformance scripts against the engine.

mod aggregate;
mod binop;
mod eval;
mod functions;
mod histogram;
mod labels;
mod lean_regexes;
mod nesting;
mod parse_error;
mod plan;
#[cfg(any(test, feature = "promqltest"))]
pub mod promqltest;
mod quantile;
mod regex_limits;
pub mod series_notation;
mod source;
mod tsdb_source;

use std::fmt;

use sightline_model::{Cancellation, LabelMatcher, Labels, MetricSeries, Stopped, StoreError};

pub use histogram::{
    Bucket, CUSTOM_BUCKETS_SCHEMA, CounterResetHint, FloatHistogram, HistogramError,
};
pub use nesting::{MAX_NESTING_DEPTH, MAX_OPERATORS, QUERY_THREAD_STACK_BYTES};
pub use parse_error::{ParseError, Position};
pub use source::{HistogramSample, HistogramSeries, MemorySource, SeriesSource};
pub use tsdb_source::TsdbSource;

/// How the engine evaluates queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOptions {
    /// How far back an instant selector looks for the latest sample (Prometheus's
    /// `--query.lookback-delta`, 5 minutes by default).
    pub lookback_delta_ms: i64,
    /// The most samples a query may hold in memory at once (Prometheus's
    /// `--query.max-samples`); exceeding it fails the query with [`QueryError::TooManySamples`].
    pub max_samples: usize,
    /// `false`: Prometheus 3 — left-open windows, `(t-range, t]` for range selectors and
    /// lookback, and `rate`/`increase` extrapolation as since 2.51. `true`:
    /// Prometheus 2.42 — closed windows `[t-range, t]`, 2.x subquery step alignment, and the
    /// extrapolation before 2.51, which limits a counter's extrapolation to its zero point
    /// before the half-interval rule (a series starting inside the window can get up to 0.6
    /// of a scrape interval's increase more). For comparisons with a Prometheus 2.42 server;
    /// 2.51–2.55 (closed windows, new extrapolation) match neither exactly.
    pub prometheus2_ranges: bool,
    /// The step of a subquery that gives none (`x[5m:]`): Prometheus uses the global
    /// evaluation interval, one minute by default.
    pub default_subquery_step_ms: i64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            lookback_delta_ms: 300_000,
            max_samples: 50_000_000,
            prometheus2_ranges: false,
            default_subquery_step_ms: 60_000,
        }
    }
}

/// The PromQL engine. Stateless between queries: one instance serves every tenant, each query
/// is bound to its data through the [`SeriesSource`] it is given.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    options: EngineOptions,
}

/// A query's result, with Prometheus's annotations (already formatted with their position in
/// the query, as the HTTP API returns them).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub value: Value,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

/// A query value, in Prometheus's four result types. Native histogram samples (which only
/// sources implementing [`SeriesSource::select_histograms`] provide) are not part of it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar {
        t: i64,
        v: f64,
    },
    String {
        t: i64,
        v: String,
    },
    /// An instant vector, in the order Prometheus returns it (which matters only for `sort`
    /// and friends, `topk`, `bottomk`).
    Vector(Vec<InstantSample>),
    /// A range result: series sorted by labels, samples in time order.
    Matrix(Vec<MetricSeries>),
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// An instant query's value with native histogram samples kept, as rule evaluation and rule
/// unit tests need it ([`Engine::instant_query_value`]).
#[derive(Debug, Clone, PartialEq)]
pub enum InstantValue {
    Scalar(f64),
    String(String),
    Vector(Vec<VectorSample>),
    /// A range vector (`x[5m]` at an instant); its samples are not kept here.
    Matrix,
}

/// One element of an instant vector: a float (`v`) or a native histogram (`h`, with `v` 0).
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
    pub h: Option<FloatHistogram>,
}

/// A label set as Prometheus's `Labels.String()` prints it: `{a="1", b="2"}`, names that
/// are not legacy label names quoted.
pub fn labels_string(labels: &Labels) -> String {
    labels::to_prom_string(labels)
}

/// Why a query failed. The `Display` text follows Prometheus's messages.
#[derive(Debug, Clone)]
pub enum QueryError {
    /// The query text is not valid PromQL (HTTP 400, `bad_data`): what and, for faults in
    /// the text, where.
    Parse(ParseError),
    /// Evaluation failed, e.g. a many-to-many match (HTTP 422, `execution`).
    Execution(String),
    /// The query would hold more samples than [`EngineOptions::max_samples`] (HTTP 422,
    /// `execution`); holds the stage, like Prometheus's `ErrTooManySamples`.
    TooManySamples(String),
    /// The series source failed (HTTP 500, `internal`); the store's error is kept, and
    /// `Display` and `source()` are its own.
    Storage(StoreError),
    /// The query was cancelled or ran past its timeout (Prometheus's `canceled` and
    /// `timeout` errors).
    Stopped(Stopped),
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Parse(e) => e.fmt(f),
            QueryError::Execution(m) => f.write_str(m),
            QueryError::Storage(e) => e.fmt(f),
            QueryError::Stopped(why) => why.fmt(f),
            QueryError::TooManySamples(stage) => write!(
                f,
                "query processing would load too many samples into memory in {stage}"
            ),
        }
    }
}

impl std::error::Error for QueryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Transparent, like `StoreError` itself: the message is the store error's, so
            // the chain continues below it rather than repeating it.
            QueryError::Storage(e) => e.source(),
            _ => None,
        }
    }
}

impl QueryError {
    /// A parse error about the query as a whole (no position in its text).
    pub(crate) fn parse(message: impl Into<String>) -> Self {
        QueryError::Parse(ParseError::new(message))
    }
}

impl From<StoreError> for QueryError {
    fn from(e: StoreError) -> Self {
        QueryError::Storage(e)
    }
}

impl Engine {
    pub fn new(options: EngineOptions) -> Self {
        Self { options }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Evaluates `query` at one instant (milliseconds since the epoch).
    pub fn instant_query(
        &self,
        src: &dyn SeriesSource,
        query: &str,
        time_ms: i64,
    ) -> Result<QueryResult, QueryError> {
        self.instant_query_until(src, query, time_ms, &Cancellation::new())
    }

    /// [`Engine::instant_query`] with native histogram samples kept in vectors.
    pub fn instant_query_value(
        &self,
        src: &dyn SeriesSource,
        query: &str,
        time_ms: i64,
    ) -> Result<InstantValue, QueryError> {
        let expr = parse(query)?;
        let out = self.instant_query_expr(src, &expr, query, time_ms, &Cancellation::new())?;
        Ok(match out.value {
            eval::OutValue::Scalar { v, .. } => InstantValue::Scalar(v),
            eval::OutValue::String { v, .. } => InstantValue::String(v),
            eval::OutValue::Vector(v) => InstantValue::Vector(
                v.into_iter()
                    .map(|s| VectorSample {
                        labels: s.labels,
                        t: s.t,
                        v: if s.h.is_some() { 0.0 } else { s.v },
                        h: s.h.map(|h| (*h).clone()),
                    })
                    .collect(),
            ),
            eval::OutValue::Matrix(_) => InstantValue::Matrix,
        })
    }

    /// [`Engine::instant_query`] that stops with [`QueryError::Stopped`] once `cancel` fires.
    pub fn instant_query_until(
        &self,
        src: &dyn SeriesSource,
        query: &str,
        time_ms: i64,
        cancel: &Cancellation,
    ) -> Result<QueryResult, QueryError> {
        let expr = parse(query)?;
        self.instant_query_expr(src, &expr, query, time_ms, cancel)
            .map(public_result)
    }

    /// Evaluates `query` at every `step_ms` from `start_ms` to `end_ms` (inclusive). The
    /// expression must be a scalar or an instant vector.
    pub fn range_query(
        &self,
        src: &dyn SeriesSource,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryResult, QueryError> {
        self.range_query_until(src, query, start_ms, end_ms, step_ms, &Cancellation::new())
    }

    /// [`Engine::range_query`] that stops with [`QueryError::Stopped`] once `cancel` fires.
    pub fn range_query_until(
        &self,
        src: &dyn SeriesSource,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        cancel: &Cancellation,
    ) -> Result<QueryResult, QueryError> {
        let expr = parse(query)?;
        self.range_query_expr(src, &expr, query, start_ms, end_ms, step_ms, cancel)
            .map(public_result)
    }

    /// [`Engine::instant_query`] on an already parsed expression; `text` is the query as
    /// written, used only to place annotations.
    pub(crate) fn instant_query_expr(
        &self,
        src: &dyn SeriesSource,
        expr: &promql_parser::parser::Expr,
        text: &str,
        time_ms: i64,
        cancel: &Cancellation,
    ) -> Result<eval::Output, QueryError> {
        eval::execute(&self.options, cancel, src, expr, text, time_ms, time_ms, 0)
    }

    /// [`Engine::range_query`] on an already parsed expression.
    #[expect(clippy::too_many_arguments, reason = "one query's whole description")]
    pub(crate) fn range_query_expr(
        &self,
        src: &dyn SeriesSource,
        expr: &promql_parser::parser::Expr,
        text: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        cancel: &Cancellation,
    ) -> Result<eval::Output, QueryError> {
        if step_ms <= 0 {
            return Err(QueryError::parse(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        if end_ms < start_ms {
            return Err(QueryError::parse(
                "end timestamp must not be before start time",
            ));
        }
        eval::execute(
            &self.options,
            cancel,
            src,
            expr,
            text,
            start_ms,
            end_ms,
            step_ms,
        )
    }
}

/// The public form of a result: float samples only.
fn public_result(out: eval::Output) -> QueryResult {
    let value = match out.value {
        eval::OutValue::Scalar { t, v } => Value::Scalar { t, v },
        eval::OutValue::String { t, v } => Value::String { t, v },
        eval::OutValue::Vector(v) => Value::Vector(
            v.into_iter()
                .filter(|s| s.h.is_none())
                .map(|s| InstantSample {
                    labels: s.labels,
                    t: s.t,
                    v: s.v,
                })
                .collect(),
        ),
        eval::OutValue::Matrix(m) => Value::Matrix(
            m.into_iter()
                .filter_map(|s| {
                    let samples: Vec<sightline_model::Sample> = s
                        .points
                        .iter()
                        .filter(|p| p.h.is_none())
                        .map(|p| sightline_model::Sample { t: p.t, v: p.f })
                        .collect();
                    (!samples.is_empty()).then_some(MetricSeries {
                        labels: s.labels,
                        samples,
                    })
                })
                .collect(),
        ),
    };
    QueryResult {
        value,
        warnings: out.warnings,
        infos: out.infos,
    }
}

/// Parses a query with `promql-parser`, mapping its error to [`QueryError::Parse`] with the
/// fault's position ([`parse_error::locate_in`]).
pub(crate) fn parse(query: &str) -> Result<promql_parser::parser::Expr, QueryError> {
    // Before the parser: a tree too deep to walk must never be built (it would overflow the
    // stack of whichever thread parses, evaluates or drops it).
    nesting::check(query).map_err(QueryError::Parse)?;
    // Before the parser compiles the matchers' regexes: counts RE2 refuses.
    regex_limits::check(query).map_err(QueryError::Parse)?;
    // The parser compiles matcher regexes the costly way: it sees stand-ins.
    let neutral = lean_regexes::neutralise(query);
    match upstream_parse(&neutral.text) {
        Ok(mut expr) => {
            lean_regexes::restore(&mut expr, &neutral.originals);
            Ok(expr)
        }
        Err(message) => {
            let message = lean_regexes::restore_message(message, &neutral.originals);
            Err(QueryError::Parse(parse_error::locate_in(
                query,
                &neutral.text,
                &message,
            )))
        }
    }
}

/// `promql-parser`'s parse with its panics turned into errors. Its grammar makes a number
/// written where a duration goes into `Duration::from_secs_f64`, which panics when the value
/// is out of range (`x[5m:1e31]`, found by fuzzing); the message then names that.
pub(crate) fn upstream_parse(query: &str) -> Result<promql_parser::parser::Expr, String> {
    std::panic::catch_unwind(|| promql_parser::parser::parse(query)).unwrap_or_else(|_| {
        Err(
            "a number used as a duration is out of range (negative, not finite or too large)"
                .into(),
        )
    })
}

/// Checks that `query` is valid PromQL (for configuration checks), naming the fault if not.
pub fn parse_expr(query: &str) -> Result<(), QueryError> {
    parse(query).map(|_| ())
}

/// Parses a series selector for `/api/v1/series` and friends (`match[]`), such as
/// `up{job="x"}` or `{__name__=~"a.*"}`, into label matchers.
pub fn parse_selector(s: &str) -> Result<Vec<LabelMatcher>, QueryError> {
    match parse(s)? {
        promql_parser::parser::Expr::VectorSelector(vs) => {
            if vs.offset.is_some() || vs.at.is_some() {
                return Err(QueryError::parse(format!(
                    "invalid series selector {s:?}: offset and @ are not allowed"
                )));
            }
            let mut sets = plan::selector_matchers(&vs)?;
            if sets.len() != 1 {
                return Err(QueryError::parse(format!(
                    "invalid series selector {s:?}: `or` in label matchers is not supported here"
                )));
            }
            Ok(sets.remove(0))
        }
        _ => Err(QueryError::parse(format!(
            "invalid series selector {s:?}: expected a vector selector such as up{{job=\"x\"}}"
        ))),
    }
}
