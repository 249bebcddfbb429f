//! Evaluates parsed queries against a [`LogSource`].
//!
//! - Log queries select `[start, end)`, run the pipeline and keep the first `limit` entries in
//!   the requested direction, grouped into streams by their result labels.
//! - Metric queries evaluate at steps `start, start + step, …` up to and including `end`. At
//!   step `t` a range function sees the window `(t - range - offset, t - offset]`. The whole
//!   span is selected once; each series' timestamps are sorted and swept with two pointers, so
//!   overlapping windows (range > step) cost no rescans. A series with no entries in a window
//!   has no point at that step, as in Loki.
//! - Vector aggregations group per step by `by`/`without` labels; `topk`/`bottomk` keep the k
//!   extreme series per group and step, with their own labels (Prometheus semantics).
//! - Binary operations pair the points of their two sides step by step ([`binary`]); a
//!   number alone is one series without labels with the number at every step.

mod binary;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sightline_model::{
    Buckets, Cancellation, Direction, Entry, Labels, LogSource, SelectRequest, Stopped, StoreError,
    TenantId,
};

use crate::ast::{
    BinaryExpr, Expr, LogExpr, MetricExpr, RangeAggregation, RangeOp, VectorAggregation, VectorOp,
};
use crate::pipeline::Pipeline;

/// Default cap on the series (or streams) one query may build.
pub const DEFAULT_MAX_SERIES: usize = 10_000;
/// Most steps a range query may have, as in Prometheus.
pub const MAX_STEPS: i64 = 11_000;

/// The answer to a query.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    /// A log query's streams, sorted by labels.
    Streams(Vec<Stream>),
    /// A metric range query's series, sorted by labels.
    Matrix(Vec<Series>),
    /// A metric instant query's samples, sorted by labels.
    Vector(Vec<Sample>),
}

/// Log entries sharing one set of result labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    /// Stream labels plus labels extracted by the pipeline.
    pub labels: Labels,
    /// `(timestamp_ns, line)`, ordered by the query's direction.
    pub entries: Vec<(i64, String)>,
}

/// One series of a range query.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels after the pipeline and any aggregation.
    pub labels: Labels,
    /// `(timestamp_ns, value)`, ascending; steps without data are absent.
    pub points: Vec<(i64, f64)>,
}

/// One sample of an instant query.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels after the pipeline and any aggregation.
    pub labels: Labels,
    /// The evaluation time.
    pub timestamp_ns: i64,
    /// The value at that time.
    pub value: f64,
}

/// Why a query could not be evaluated.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EvalError {
    #[error("log store error: {0}")]
    /// The store failed; its error is kept as the source.
    Source(#[from] StoreError),
    #[error(
        "maximum number of series ({limit}) reached for a single query; narrow the selector or aggregate, e.g. sum by (service_name) (...)"
    )]
    /// More series or streams than [`Engine::max_series`].
    TooManySeries {
        /// The limit in force.
        limit: usize,
    },
    #[error(
        "zero or negative query resolution step widths are not accepted; try a positive integer"
    )]
    /// `step <= 0` for a metric range query.
    NonPositiveStep,
    #[error("end timestamp must not be before start time")]
    /// `end < start`.
    EndBeforeStart,
    #[error(
        "exceeded maximum resolution of {MAX_STEPS} points per timeseries ({steps} requested); try increasing the step"
    )]
    /// More than [`MAX_STEPS`] steps.
    TooManySteps {
        /// The number of steps asked for.
        steps: i128,
    },
    #[error("limit must be a positive value")]
    /// `limit == 0` for a log query.
    NonPositiveLimit,
    #[error("{0}")]
    /// The query was cancelled or ran past its timeout.
    Stopped(Stopped),
    #[error("log queries are not supported as an instant query; use query_range")]
    /// A log query run as an instant query.
    InstantLogQuery,
    #[error("{0}")]
    /// The two sides of a binary operation cannot be paired at some step: several series of
    /// one match group on the "one" side (many-to-many), or an ambiguous match.
    VectorMatching(String),
}

/// The evaluator, with its resource limits.
#[derive(Debug, Clone)]
pub struct Engine {
    /// Most series (metric queries, before aggregation) or streams (log queries) one query
    /// may build.
    pub max_series: usize,
    /// Polled for every entry read: once it fires, the query stops with
    /// [`EvalError::Stopped`].
    pub cancel: Cancellation,
}

impl Default for Engine {
    fn default() -> Self {
        Self {
            max_series: DEFAULT_MAX_SERIES,
            cancel: Cancellation::new(),
        }
    }
}

/// [`Engine::query_range`] with the default limits.
#[expect(
    clippy::too_many_arguments,
    reason = "mirrors Loki's query_range parameters"
)]
pub fn query_range(
    source: &dyn LogSource,
    tenant: &TenantId,
    expr: &Expr,
    start_ns: i64,
    end_ns: i64,
    step_ns: i64,
    limit: usize,
    direction: Direction,
) -> Result<QueryResult, EvalError> {
    Engine::default().query_range(
        source, tenant, expr, start_ns, end_ns, step_ns, limit, direction,
    )
}

/// [`Engine::query_instant`] with the default limits.
pub fn query_instant(
    source: &dyn LogSource,
    tenant: &TenantId,
    expr: &Expr,
    time_ns: i64,
    limit: usize,
    direction: Direction,
) -> Result<QueryResult, EvalError> {
    Engine::default().query_instant(source, tenant, expr, time_ns, limit, direction)
}

/// The evaluation steps of a metric query: `start + i * step` for `i < count`.
#[derive(Debug, Clone, Copy)]
struct Steps {
    start: i64,
    step: i64,
    count: usize,
}

impl Steps {
    fn at(&self, index: usize) -> i64 {
        // Computed wide: `index * step` alone may overflow although the sum is within
        // `[start, end]`, which bounds the result to i64.
        (i128::from(self.start) + index as i128 * i128::from(self.step)) as i64
    }
}

/// A series during evaluation: points keyed by step index, ascending.
#[derive(Debug, Clone)]
struct StepSeries {
    labels: Labels,
    points: Vec<(usize, f64)>,
}

impl Engine {
    /// An engine allowing at most `max_series` series or streams per query.
    pub fn new(max_series: usize) -> Self {
        Self {
            max_series,
            cancel: Cancellation::new(),
        }
    }

    /// Whether the query must stop (two atomic loads).
    fn check_cancel(&self) -> Result<(), EvalError> {
        self.cancel.check().map_err(EvalError::Stopped)
    }

    /// Evaluates a query over `[start_ns, end_ns]`: a log query returns streams (from
    /// `[start, end)`, at most `limit` entries, `step_ns` unused), a metric query a matrix
    /// (`limit` and `direction` unused).
    #[expect(
        clippy::too_many_arguments,
        reason = "mirrors Loki's query_range parameters"
    )]
    pub fn query_range(
        &self,
        source: &dyn LogSource,
        tenant: &TenantId,
        expr: &Expr,
        start_ns: i64,
        end_ns: i64,
        step_ns: i64,
        limit: usize,
        direction: Direction,
    ) -> Result<QueryResult, EvalError> {
        if end_ns < start_ns {
            return Err(EvalError::EndBeforeStart);
        }
        match expr {
            Expr::Log(log) => {
                if limit == 0 {
                    return Err(EvalError::NonPositiveLimit);
                }
                let streams =
                    self.select_logs(source, tenant, log, start_ns, end_ns, limit, direction)?;
                Ok(QueryResult::Streams(streams))
            }
            Expr::Metric(metric) => {
                if step_ns <= 0 {
                    return Err(EvalError::NonPositiveStep);
                }
                let steps = (i128::from(end_ns) - i128::from(start_ns)) / i128::from(step_ns) + 1;
                if steps > i128::from(MAX_STEPS) {
                    return Err(EvalError::TooManySteps { steps });
                }
                let steps = Steps {
                    start: start_ns,
                    step: step_ns,
                    // At most MAX_STEPS here.
                    count: steps as usize,
                };
                let mut matrix: Vec<Series> = self
                    .eval_metric(source, tenant, metric, steps)?
                    .into_iter()
                    .filter(|s| !s.points.is_empty())
                    .map(|s| Series {
                        labels: s.labels,
                        points: s
                            .points
                            .into_iter()
                            .map(|(i, v)| (steps.at(i), v))
                            .collect(),
                    })
                    .collect();
                matrix.sort_by(|a, b| a.labels.cmp(&b.labels));
                Ok(QueryResult::Matrix(matrix))
            }
        }
    }

    /// Evaluates a metric query at one instant. Log queries are rejected, as in modern Loki.
    pub fn query_instant(
        &self,
        source: &dyn LogSource,
        tenant: &TenantId,
        expr: &Expr,
        time_ns: i64,
        _limit: usize,
        _direction: Direction,
    ) -> Result<QueryResult, EvalError> {
        let Expr::Metric(metric) = expr else {
            return Err(EvalError::InstantLogQuery);
        };
        let steps = Steps {
            start: time_ns,
            step: 1,
            count: 1,
        };
        let mut vector: Vec<Sample> = self
            .eval_metric(source, tenant, metric, steps)?
            .into_iter()
            .filter_map(|s| {
                let (_, value) = s.points.first().copied()?;
                Some(Sample {
                    labels: s.labels,
                    timestamp_ns: time_ns,
                    value,
                })
            })
            .collect();
        vector.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(QueryResult::Vector(vector))
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one query's parameters, passed through"
    )]
    fn select_logs(
        &self,
        source: &dyn LogSource,
        tenant: &TenantId,
        log: &LogExpr,
        start_ns: i64,
        end_ns: i64,
        limit: usize,
        direction: Direction,
    ) -> Result<Vec<Stream>, EvalError> {
        let line_filters = log.pushdown_line_filters();
        let request = SelectRequest {
            tenant,
            matchers: &log.matchers,
            line_filters: &line_filters,
            start_ns,
            end_ns,
            direction,
            ordered: true,
            needs_line: true,
        };
        let pipeline = Pipeline::new(&log.stages);
        let mut table: SeriesTable<(i64, String)> = SeriesTable::new(self.max_series);
        let mut selector = StreamCheck::default();
        let mut accepted = 0;
        for entry in source.select(&request)? {
            let entry = entry?;
            self.check_cancel()?;
            if entry.timestamp_ns < start_ns
                || entry.timestamp_ns >= end_ns
                || !selector.matches(log, &entry)
            {
                continue;
            }
            let Some(processed) = pipeline.process(&entry.line, &entry.labels, &entry.metadata)
            else {
                continue;
            };
            table
                .slot(&entry.labels, processed.labels)?
                .push((entry.timestamp_ns, processed.line.into_owned()));
            accepted += 1;
            if accepted == limit {
                break;
            }
        }
        let mut streams: Vec<Stream> = table
            .into_series()
            .map(|(labels, mut entries)| {
                // Stable: entries with equal timestamps keep the store's order.
                match direction {
                    Direction::Forward => entries.sort_by_key(|e| e.0),
                    Direction::Backward => entries.sort_by_key(|e| std::cmp::Reverse(e.0)),
                }
                Stream { labels, entries }
            })
            .collect();
        streams.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(streams)
    }

    fn eval_metric(
        &self,
        source: &dyn LogSource,
        tenant: &TenantId,
        expr: &MetricExpr,
        steps: Steps,
    ) -> Result<Vec<StepSeries>, EvalError> {
        match expr {
            MetricExpr::Range(agg) => self.eval_range(source, tenant, agg, steps, None),
            // `sum [by|without] (range_op(…))`: every range op is a sum over entries, so the
            // entries of a group can be counted together, exactly, without a series per
            // stream first. The series limit then applies to the groups — the result, as
            // Loki's `max_query_series` does — and 50,000 streams can be summed.
            MetricExpr::Vector(agg)
                if agg.op == VectorOp::Sum
                    && matches!(agg.inner.as_ref(), MetricExpr::Range(_)) =>
            {
                let MetricExpr::Range(range) = agg.inner.as_ref() else {
                    unreachable!("matched above")
                };
                let group = |labels: &Labels| match &agg.grouping {
                    Some(grouping) => grouping.group_labels(labels),
                    None => Labels::default(),
                };
                let grouped = self.eval_range(source, tenant, range, steps, Some(&group))?;
                Ok(aggregate(agg, grouped, steps.count))
            }
            MetricExpr::Vector(agg) => {
                let inner = self.eval_metric(source, tenant, &agg.inner, steps)?;
                Ok(aggregate(agg, inner, steps.count))
            }
            MetricExpr::Literal(value) => Ok(vec![literal_series(*value, steps.count)]),
            MetricExpr::Binary(expr) => self.eval_binary(source, tenant, expr, steps),
        }
    }

    /// A binary operation. A literal side is a scalar, applied to every point of the other
    /// side; two vectors are matched step by step.
    fn eval_binary(
        &self,
        source: &dyn LogSource,
        tenant: &TenantId,
        expr: &BinaryExpr,
        steps: Steps,
    ) -> Result<Vec<StepSeries>, EvalError> {
        let eval = |side: &MetricExpr| self.eval_metric(source, tenant, side, steps);
        let result = if expr.op.is_set_operator() {
            // The parser refuses literals here; in a tree built by hand a literal is its one
            // series without labels.
            let left = eval(&expr.left)?;
            let right = eval(&expr.right)?;
            binary::set_operation(expr.op, &expr.matching, left, right)
        } else {
            self.eval_arithmetic(expr, steps.count, eval)?
        };
        // Only `or` can return more series than a side has.
        if result.len() > self.max_series {
            return Err(EvalError::TooManySeries {
                limit: self.max_series,
            });
        }
        Ok(result)
    }

    /// An arithmetic or comparison operation over `step_count` steps, its sides evaluated by
    /// `eval`.
    fn eval_arithmetic(
        &self,
        expr: &BinaryExpr,
        step_count: usize,
        eval: impl Fn(&MetricExpr) -> Result<Vec<StepSeries>, EvalError>,
    ) -> Result<Vec<StepSeries>, EvalError> {
        let literal = |side: &MetricExpr| match side {
            MetricExpr::Literal(value) => Some(*value),
            _ => None,
        };
        match (literal(&expr.left), literal(&expr.right)) {
            // The parser folds these; as it does, a comparison is 1 or 0.
            (Some(left), Some(right)) => Ok(vec![literal_series(
                expr.op.apply(left, right).unwrap_or(f64::NAN),
                step_count,
            )]),
            (Some(scalar), None) => Ok(binary::with_scalar(expr, eval(&expr.right)?, scalar, true)),
            (None, Some(scalar)) => Ok(binary::with_scalar(expr, eval(&expr.left)?, scalar, false)),
            (None, None) => {
                let left = eval(&expr.left)?;
                let right = eval(&expr.right)?;
                binary::vector_operation(expr, left, right, step_count, &|| self.check_cancel())
            }
        }
    }

    /// A range aggregation's series; with `group`, the entries of every group of series
    /// (the labels `group` maps them to) are counted as one series.
    fn eval_range(
        &self,
        source: &dyn LogSource,
        tenant: &TenantId,
        agg: &RangeAggregation,
        steps: Steps,
        group: Option<GroupFn<'_>>,
    ) -> Result<Vec<StepSeries>, EvalError> {
        let log = &agg.log;
        let last_step = steps.at(steps.count.saturating_sub(1));
        // The union of all windows (t - range - offset, t - offset] as a half-open interval.
        let start_ns = steps
            .start
            .saturating_sub(agg.range_ns)
            .saturating_sub(agg.offset_ns)
            .saturating_add(1);
        let end_ns = last_step.saturating_sub(agg.offset_ns).saturating_add(1);
        let line_filters = log.pushdown_line_filters();
        // Without lines the store applies the pushed-down line filters exactly, so a pipeline
        // of line filters only may then be skipped; bytes need the lines.
        let needs_line = agg.op.needs_lines() || !log.has_only_line_filters();
        let request = SelectRequest {
            tenant,
            matchers: &log.matchers,
            line_filters: &line_filters,
            start_ns,
            end_ns,
            direction: Direction::Forward,
            ordered: false,
            needs_line,
        };
        if let Some(series) = self.count_in_store(source, &request, agg, steps, group)? {
            return Ok(series);
        }
        let pipeline = Pipeline::new(&log.stages);
        let mut table: SeriesTable<(i64, u64)> = SeriesTable::new(self.max_series);
        let mut selector = StreamCheck::default();
        for entry in source.select(&request)? {
            let entry = entry?;
            self.check_cancel()?;
            if entry.timestamp_ns < start_ns
                || entry.timestamp_ns >= end_ns
                || !selector.matches(log, &entry)
            {
                continue;
            }
            let (labels, bytes) = if needs_line {
                let Some(processed) = pipeline.process(&entry.line, &entry.labels, &entry.metadata)
                else {
                    continue;
                };
                (processed.labels, processed.line.len() as u64)
            } else {
                (None, 0)
            };
            let slot = match group {
                Some(group) => table.slot_in_group(&entry.labels, labels, group)?,
                None => table.slot(&entry.labels, labels)?,
            };
            slot.push((entry.timestamp_ns, bytes));
        }
        let range_seconds = agg.range_ns as f64 / 1e9;
        Ok(table
            .into_series()
            .map(|(labels, mut samples)| {
                samples.sort_unstable_by_key(|s| s.0);
                StepSeries {
                    labels,
                    points: sweep_windows(&samples, agg, range_seconds, steps),
                }
            })
            .filter(|s| !s.points.is_empty())
            .collect())
    }
}

impl Engine {
    /// `count_over_time` and `rate` of a bare selector, counted by the store in buckets as
    /// wide as the greatest common divisor of range and step, so that every window is a run
    /// of whole buckets: no entry crosses the store boundary one by one. `None` when the
    /// query or the store does not allow it.
    fn count_in_store(
        &self,
        source: &dyn LogSource,
        request: &SelectRequest<'_>,
        agg: &RangeAggregation,
        steps: Steps,
        group: Option<GroupFn<'_>>,
    ) -> Result<Option<Vec<StepSeries>>, EvalError> {
        /// Bucket cells (streams × buckets) a store may be asked to count at most.
        const MAX_CELLS: i128 = 1 << 20;
        if !agg.log.stages.is_empty() || agg.op.needs_lines() {
            return Ok(None);
        }
        let width = if steps.count <= 1 {
            agg.range_ns
        } else {
            gcd(agg.range_ns, steps.step)
        };
        let per_window = i128::from(agg.range_ns / width);
        let per_step = i128::from(if steps.count <= 1 {
            0
        } else {
            steps.step / width
        });
        let count = per_step * (steps.count as i128 - 1) + per_window;
        if count * 16 > MAX_CELLS {
            return Ok(None);
        }
        let buckets = Buckets {
            // Window 0 is (start - offset - range, start - offset].
            start_ns: steps
                .start
                .saturating_sub(agg.offset_ns)
                .saturating_sub(agg.range_ns),
            width_ns: width,
            count: count as usize,
        };
        let Some(counted) = source.count_buckets(request, buckets) else {
            return Ok(None);
        };
        let mut by_labels: BTreeMap<Labels, Vec<u64>> = BTreeMap::new();
        for (labels, counts) in counted? {
            let key = match group {
                Some(group) => group(labels.as_ref()),
                None => labels.as_ref().clone(),
            };
            if !by_labels.contains_key(&key) && by_labels.len() >= self.max_series {
                return Err(EvalError::TooManySeries {
                    limit: self.max_series,
                });
            }
            let sums = by_labels
                .entry(key)
                .or_insert_with(|| vec![0; buckets.count]);
            for (sum, c) in sums.iter_mut().zip(counts) {
                *sum += u64::from(c);
            }
        }
        let range_seconds = agg.range_ns as f64 / 1e9;
        Ok(Some(
            by_labels
                .into_iter()
                .map(|(labels, counts)| {
                    // prefix[j] = entries in buckets 0..j.
                    let mut prefix = Vec::with_capacity(counts.len() + 1);
                    prefix.push(0u64);
                    for c in &counts {
                        prefix.push(prefix[prefix.len() - 1] + c);
                    }
                    let points = (0..steps.count)
                        .filter_map(|i| {
                            let lo = (per_step * i as i128) as usize;
                            let n = prefix[lo + per_window as usize] - prefix[lo];
                            (n > 0).then(|| {
                                let value = match agg.op {
                                    RangeOp::Rate => n as f64 / range_seconds,
                                    _ => n as f64,
                                };
                                (i, value)
                            })
                        })
                        .collect();
                    StepSeries { labels, points }
                })
                .filter(|s| !s.points.is_empty())
                .collect(),
        ))
    }
}

/// A number as a series: no labels, the value at every step (Loki's range query of a
/// literal; an instant query gives its one sample).
fn literal_series(value: f64, step_count: usize) -> StepSeries {
    StepSeries {
        labels: Labels::default(),
        points: (0..step_count).map(|index| (index, value)).collect(),
    }
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs().max(1)
}

/// Computes a range function at every step over `samples` (sorted by timestamp) with two
/// pointers: `lo..hi` is the window, and both only move forward as `t` grows.
fn sweep_windows(
    samples: &[(i64, u64)],
    agg: &RangeAggregation,
    range_seconds: f64,
    steps: Steps,
) -> Vec<(usize, f64)> {
    let mut points = Vec::new();
    let (mut lo, mut hi) = (0, 0);
    let mut bytes_in_window: u64 = 0;
    for index in 0..steps.count {
        let window_end = steps.at(index).saturating_sub(agg.offset_ns);
        let window_start = window_end.saturating_sub(agg.range_ns);
        while hi < samples.len() && samples[hi].0 <= window_end {
            bytes_in_window += samples[hi].1;
            hi += 1;
        }
        while lo < hi && samples[lo].0 <= window_start {
            bytes_in_window -= samples[lo].1;
            lo += 1;
        }
        let count = hi - lo;
        if count == 0 {
            continue;
        }
        let value = match agg.op {
            RangeOp::CountOverTime => count as f64,
            RangeOp::Rate => count as f64 / range_seconds,
            RangeOp::BytesOverTime => bytes_in_window as f64,
            RangeOp::BytesRate => bytes_in_window as f64 / range_seconds,
        };
        points.push((index, value));
    }
    points
}

/// Applies a vector aggregation step by step.
fn aggregate(
    agg: &VectorAggregation,
    inner: Vec<StepSeries>,
    step_count: usize,
) -> Vec<StepSeries> {
    let group_of = |labels: &Labels| match &agg.grouping {
        Some(grouping) => grouping.group_labels(labels),
        None => Labels::default(),
    };
    match agg.op {
        VectorOp::Topk(k) => select_k(inner, k, true, step_count, group_of),
        VectorOp::Bottomk(k) => select_k(inner, k, false, step_count, group_of),
        op => {
            #[derive(Clone, Copy)]
            struct Acc {
                sum: f64,
                count: usize,
                min: f64,
                max: f64,
            }
            let mut groups: HashMap<Labels, BTreeMap<usize, Acc>> = HashMap::new();
            for series in inner {
                let by_step = groups.entry(group_of(&series.labels)).or_default();
                for (index, value) in series.points {
                    by_step
                        .entry(index)
                        .and_modify(|acc| {
                            acc.sum += value;
                            acc.count += 1;
                            acc.min = acc.min.min(value);
                            acc.max = acc.max.max(value);
                        })
                        .or_insert(Acc {
                            sum: value,
                            count: 1,
                            min: value,
                            max: value,
                        });
                }
            }
            groups
                .into_iter()
                .map(|(labels, by_step)| StepSeries {
                    labels,
                    points: by_step
                        .into_iter()
                        .map(|(index, acc)| {
                            let value = match op {
                                VectorOp::Sum => acc.sum,
                                VectorOp::Avg => acc.sum / acc.count as f64,
                                VectorOp::Min => acc.min,
                                VectorOp::Max => acc.max,
                                _ => acc.count as f64,
                            };
                            (index, value)
                        })
                        .collect(),
                })
                .collect()
        }
    }
}

/// `topk`/`bottomk`: at each step, the `k` largest (or smallest) series of each group keep
/// their point; ties go to the smaller labels so results are deterministic. NaN (a division
/// by zero) comes last either way, as in Loki and Prometheus.
fn select_k(
    inner: Vec<StepSeries>,
    k: usize,
    largest: bool,
    step_count: usize,
    group_of: impl Fn(&Labels) -> Labels,
) -> Vec<StepSeries> {
    let mut group_ids: HashMap<Labels, usize> = HashMap::new();
    let groups: Vec<usize> = inner
        .iter()
        .map(|s| {
            let next = group_ids.len();
            *group_ids.entry(group_of(&s.labels)).or_insert(next)
        })
        .collect();
    let mut by_step: Vec<Vec<(usize, f64)>> = vec![Vec::new(); step_count];
    for (series, s) in inner.iter().enumerate() {
        for &(index, value) in &s.points {
            if let Some(bucket) = by_step.get_mut(index) {
                bucket.push((series, value));
            }
        }
    }
    let mut out: Vec<StepSeries> = inner
        .into_iter()
        .map(|s| StepSeries {
            labels: s.labels,
            points: Vec::new(),
        })
        .collect();
    for (index, mut bucket) in by_step.into_iter().enumerate() {
        bucket.sort_by(|a, b| {
            let by_value = match (a.1.is_nan(), b.1.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if largest => b.1.total_cmp(&a.1),
                _ => a.1.total_cmp(&b.1),
            };
            groups[a.0]
                .cmp(&groups[b.0])
                .then(by_value)
                .then_with(|| out[a.0].labels.cmp(&out[b.0].labels))
        });
        let mut taken_in_group = 0;
        let mut current_group = None;
        for (series, value) in bucket {
            if current_group != Some(groups[series]) {
                current_group = Some(groups[series]);
                taken_in_group = 0;
            }
            if taken_in_group < k {
                out[series].points.push((index, value));
                taken_in_group += 1;
            }
        }
    }
    out.retain(|s| !s.points.is_empty());
    out
}

fn insert_series<T>(
    index: &mut HashMap<Labels, usize>,
    series: &mut Vec<(Labels, Vec<T>)>,
    max_series: usize,
    labels: Labels,
) -> Result<usize, EvalError> {
    if series.len() >= max_series {
        return Err(EvalError::TooManySeries { limit: max_series });
    }
    let i = series.len();
    index.insert(labels.clone(), i);
    series.push((labels, Vec::new()));
    Ok(i)
}

/// Hashes a stream's identity: the address of its shared labels (one multiply).
#[derive(Default)]
struct StreamKeyHasher(u64);

impl std::hash::Hasher for StreamKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Per-stream memo keyed by the address of the stream's shared labels. Stores hand out one
/// `Arc` per stream, and entries of many streams interleave in time order, so this replaces
/// hashing (and regex-matching) whole label sets per entry. The memo holds its own `Arc`, so
/// an address cannot be reused by another stream while the memo lives.
struct StreamMemo<T> {
    map: HashMap<usize, (Arc<Labels>, T), std::hash::BuildHasherDefault<StreamKeyHasher>>,
}

impl<T: Copy> StreamMemo<T> {
    fn new() -> Self {
        Self {
            map: HashMap::default(),
        }
    }

    fn get_or_try_insert<E>(
        &mut self,
        stream: &Arc<Labels>,
        compute: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let key = Arc::as_ptr(stream) as usize;
        if let Some((_, value)) = self.map.get(&key) {
            return Ok(*value);
        }
        let value = compute()?;
        self.map.insert(key, (Arc::clone(stream), value));
        Ok(value)
    }
}

/// Caches the selector check per stream.
struct StreamCheck {
    memo: StreamMemo<bool>,
}

impl Default for StreamCheck {
    fn default() -> Self {
        Self {
            memo: StreamMemo::new(),
        }
    }
}

impl StreamCheck {
    fn matches(&mut self, log: &LogExpr, entry: &Entry) -> bool {
        self.memo
            .get_or_try_insert(&entry.labels, || {
                Ok::<_, std::convert::Infallible>(log.matches_stream(&entry.labels))
            })
            .unwrap_or_else(|never| match never {})
    }
}

/// Maps a series' labels to its group's.
type GroupFn<'a> = &'a dyn Fn(&Labels) -> Labels;

/// Groups items by result labels, enforcing the series limit. Entries whose result labels
/// are the stream's own are looked up by the stream's `Arc` first, without hashing labels.
struct SeriesTable<T> {
    index: HashMap<Labels, usize>,
    series: Vec<(Labels, Vec<T>)>,
    by_stream: StreamMemo<usize>,
    max_series: usize,
}

impl<T> SeriesTable<T> {
    fn new(max_series: usize) -> Self {
        Self {
            index: HashMap::new(),
            series: Vec::new(),
            by_stream: StreamMemo::new(),
            max_series,
        }
    }

    /// The item list for an entry of `stream` whose pipeline produced `labels`
    /// (`None`: the stream labels).
    fn slot(
        &mut self,
        stream: &Arc<Labels>,
        labels: Option<Labels>,
    ) -> Result<&mut Vec<T>, EvalError> {
        let index = match labels {
            Some(labels) => match self.index.get(&labels) {
                Some(&index) => index,
                None => self.insert(labels)?,
            },
            None => {
                let (index, series, max) = (&mut self.index, &mut self.series, self.max_series);
                self.by_stream
                    .get_or_try_insert(stream, || match index.get(stream.as_ref()) {
                        Some(&i) => Ok(i),
                        None => insert_series(index, series, max, stream.as_ref().clone()),
                    })?
            }
        };
        Ok(&mut self.series[index].1)
    }

    /// [`SeriesTable::slot`] for the group `group` maps the entry's labels to (the stream's
    /// group is remembered per stream, as `slot` remembers the stream's series).
    fn slot_in_group(
        &mut self,
        stream: &Arc<Labels>,
        labels: Option<Labels>,
        group: GroupFn<'_>,
    ) -> Result<&mut Vec<T>, EvalError> {
        let index = match labels {
            Some(labels) => {
                let key = group(&labels);
                match self.index.get(&key) {
                    Some(&index) => index,
                    None => self.insert(key)?,
                }
            }
            None => {
                let (index, series, max) = (&mut self.index, &mut self.series, self.max_series);
                self.by_stream.get_or_try_insert(stream, || {
                    let key = group(stream.as_ref());
                    match index.get(&key) {
                        Some(&i) => Ok(i),
                        None => insert_series(index, series, max, key),
                    }
                })?
            }
        };
        Ok(&mut self.series[index].1)
    }

    fn insert(&mut self, labels: Labels) -> Result<usize, EvalError> {
        insert_series(&mut self.index, &mut self.series, self.max_series, labels)
    }

    fn into_series(self) -> impl Iterator<Item = (Labels, Vec<T>)> {
        self.series.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::parser::parse;
    use sightline_model::{BucketCounts, EntryIter};

    const S: i64 = 1_000_000_000;

    /// What a test store records of each request: start, end, direction, needs_line and the
    /// number of pushed-down line filters.
    type RequestSummary = (i64, i64, Direction, bool, usize);

    /// A store in memory that honours the contract: time range, matchers, pushed-down line
    /// filters (always exactly here), direction, and empty lines when `needs_line` is false.
    #[derive(Default)]
    struct MemorySource {
        entries: Vec<Entry>,
        /// The requests seen, to check what the engine asked for.
        requests: RefCell<Vec<RequestSummary>>,
    }

    impl MemorySource {
        fn push(&mut self, labels: &Arc<Labels>, seconds: i64, line: &str) {
            self.push_ns(labels, seconds * S, line, &[]);
        }

        fn push_ns(
            &mut self,
            labels: &Arc<Labels>,
            ts: i64,
            line: &str,
            metadata: &[(&str, &str)],
        ) {
            self.entries.push(Entry {
                timestamp_ns: ts,
                labels: Arc::clone(labels),
                line: line.to_string(),
                metadata: metadata
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            });
        }
    }

    impl LogSource for MemorySource {
        fn select(&self, request: &SelectRequest<'_>) -> Result<EntryIter<'_>, StoreError> {
            self.requests.borrow_mut().push((
                request.start_ns,
                request.end_ns,
                request.direction,
                request.needs_line,
                request.line_filters.len(),
            ));
            let mut selected: Vec<Entry> = self
                .entries
                .iter()
                .filter(|e| e.timestamp_ns >= request.start_ns && e.timestamp_ns < request.end_ns)
                .filter(|e| request.matchers.iter().all(|m| m.matches_labels(&e.labels)))
                .filter(|e| request.line_filters.iter().all(|f| f.matches(&e.line)))
                .cloned()
                .map(|mut e| {
                    if !request.needs_line {
                        e.line.clear();
                        e.metadata.clear();
                    }
                    e
                })
                .collect();
            selected.sort_by_key(|e| e.timestamp_ns);
            if request.direction == Direction::Backward {
                selected.reverse();
            }
            Ok(Box::new(selected.into_iter().map(Ok)))
        }
    }

    /// A [`MemorySource`] that also counts in buckets, by the contract's definition (every
    /// selected entry in the bucket its timestamp falls in), and records each count request.
    struct CountingSource {
        inner: MemorySource,
        counted: RefCell<usize>,
    }

    impl LogSource for CountingSource {
        fn select(&self, request: &SelectRequest<'_>) -> Result<EntryIter<'_>, StoreError> {
            self.inner.select(request)
        }

        fn count_buckets(
            &self,
            request: &SelectRequest<'_>,
            buckets: Buckets,
        ) -> Option<Result<BucketCounts, StoreError>> {
            *self.counted.borrow_mut() += 1;
            let mut counts: BTreeMap<Arc<Labels>, Vec<u32>> = BTreeMap::new();
            for e in &self.inner.entries {
                if let Some(j) = buckets.index(e.timestamp_ns)
                    && request.matchers.iter().all(|m| m.matches_labels(&e.labels))
                {
                    counts
                        .entry(Arc::clone(&e.labels))
                        .or_insert_with(|| vec![0; buckets.count])[j] += 1;
                }
            }
            Some(Ok(counts.into_iter().collect()))
        }
    }

    struct FailingSource;

    impl LogSource for FailingSource {
        fn select(&self, _: &SelectRequest<'_>) -> Result<EntryIter<'_>, StoreError> {
            Ok(Box::new(std::iter::once(Err(StoreError::msg(
                "disk on fire",
            )))))
        }
    }

    fn stream(pairs: &[(&str, &str)]) -> Arc<Labels> {
        Arc::new(Labels::from_pairs(pairs.iter().copied()))
    }

    fn tenant() -> TenantId {
        TenantId::default()
    }

    fn range_query(
        source: &dyn LogSource,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Vec<Series> {
        let expr = parse(query).unwrap();
        match query_range(
            source,
            &tenant(),
            &expr,
            start * S,
            end * S,
            step * S,
            100,
            Direction::Backward,
        ) {
            Ok(QueryResult::Matrix(m)) => m,
            other => panic!("{query}: {other:?}"),
        }
    }

    fn log_query(
        source: &dyn LogSource,
        query: &str,
        limit: usize,
        direction: Direction,
    ) -> Vec<Stream> {
        let expr = parse(query).unwrap();
        match query_range(source, &tenant(), &expr, 0, 100 * S, S, limit, direction) {
            Ok(QueryResult::Streams(s)) => s,
            other => panic!("{query}: {other:?}"),
        }
    }

    fn points(series: &Series) -> Vec<(i64, f64)> {
        series.points.iter().map(|&(t, v)| (t / S, v)).collect()
    }

    /// app=api: entries at 1..=10 s ("line N", "error" on even seconds); app=web at 5 and 15.
    fn sample_source() -> MemorySource {
        let mut source = MemorySource::default();
        let api = stream(&[("app", "api"), ("env", "prod")]);
        let web = stream(&[("app", "web"), ("env", "prod")]);
        for s in 1..=10 {
            let line = if s % 2 == 0 {
                format!("error {s}")
            } else {
                format!("ok {s}")
            };
            source.push(&api, s, &line);
        }
        source.push(&web, 5, "hello");
        source.push(&web, 15, "hello again");
        source
    }

    #[test]
    fn count_over_time_windows_exclude_the_start_and_include_the_end() {
        let source = sample_source();
        // Window at t is (t - 5s, t]: at t=5 it holds 1..=5, at t=10 6..=10, at t=15 none.
        let m = range_query(&source, r#"count_over_time({app="api"}[5s])"#, 0, 15, 5);
        assert_eq!(m.len(), 1);
        assert_eq!(
            m[0].labels,
            Labels::from_pairs([("app", "api"), ("env", "prod")])
        );
        assert_eq!(points(&m[0]), vec![(5, 5.0), (10, 5.0)]);
        // Overlapping windows (range > step) and a step grid that does not divide the range.
        let m = range_query(&source, r#"count_over_time({app="api"}[3s])"#, 0, 12, 2);
        assert_eq!(
            points(&m[0]),
            vec![(2, 2.0), (4, 3.0), (6, 3.0), (8, 3.0), (10, 3.0), (12, 1.0)]
        );
        // The request covers the union of windows exactly, and skips lines when it can.
        let requests = source.requests.borrow();
        assert_eq!(
            requests[0],
            (-5 * S + 1, 15 * S + 1, Direction::Forward, false, 0)
        );
    }

    #[test]
    fn entries_exactly_on_window_edges() {
        let mut source = MemorySource::default();
        let s = stream(&[("app", "x")]);
        source.push_ns(&s, 10 * S - 60 * S, "at t - range", &[]);
        source.push_ns(&s, 10 * S - 60 * S + 1, "just inside", &[]);
        source.push_ns(&s, 10 * S, "at t", &[]);
        source.push_ns(&s, 10 * S + 1, "after t", &[]);
        let m = range_query(&source, r#"count_over_time({app="x"}[1m])"#, 10, 10, 1);
        assert_eq!(points(&m[0]), vec![(10, 2.0)]);
    }

    #[test]
    fn rate_and_bytes_use_the_range_in_seconds() {
        let source = sample_source();
        let m = range_query(&source, r#"rate({app="api"} |= "error" [5s])"#, 10, 10, 1);
        // 6, 8, 10 are errors in (5, 10].
        assert_eq!(points(&m[0]), vec![(10, 3.0 / 5.0)]);
        let m = range_query(&source, r#"bytes_over_time({app="web"}[10s])"#, 10, 20, 10);
        assert_eq!(points(&m[0]), vec![(10, 5.0), (20, 11.0)]);
        let m = range_query(&source, r#"bytes_rate({app="web"}[10s])"#, 20, 20, 1);
        assert_eq!(points(&m[0]), vec![(20, 1.1)]);
        let requests = source.requests.borrow();
        // Line filters alone are pushed down and exact without lines; bytes need lines.
        assert_eq!((requests[0].3, requests[0].4), (false, 1));
        assert!(requests[1].3);
    }

    #[test]
    fn offset_shifts_the_window_into_the_past() {
        let source = sample_source();
        let m = range_query(
            &source,
            r#"count_over_time({app="api"}[5s] offset 5s)"#,
            15,
            15,
            1,
        );
        assert_eq!(points(&m[0]), vec![(15, 5.0)]);
    }

    #[test]
    fn series_follow_pipeline_labels_including_errors() {
        let mut source = MemorySource::default();
        let s = stream(&[("app", "x")]);
        source.push(&s, 1, "level=info");
        source.push(&s, 2, "level=error");
        source.push(&s, 3, "level=error");
        source.push(&s, 4, "level=\"broken");
        let m = range_query(
            &source,
            r#"count_over_time({app="x"} | logfmt [10s])"#,
            10,
            10,
            1,
        );
        let summary: Vec<_> = m
            .iter()
            .map(|s| {
                (
                    s.labels.get("level"),
                    s.labels.get("__error__"),
                    s.points[0].1,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (None, Some("LogfmtParserErr"), 1.0),
                (Some("error"), None, 2.0),
                (Some("info"), None, 1.0),
            ]
        );
    }

    #[test]
    fn sum_by_and_other_aggregations() {
        let mut source = MemorySource::default();
        let a1 = stream(&[("service_name", "a"), ("pod", "1")]);
        let a2 = stream(&[("service_name", "a"), ("pod", "2")]);
        let b1 = stream(&[("service_name", "b"), ("pod", "1")]);
        for s in 1..=4 {
            source.push(&a1, s, "x");
        }
        source.push(&a2, 2, "x");
        source.push(&b1, 3, "x");
        source.push(&b1, 4, "x");
        let q = |agg: &str| format!(r#"{agg}(count_over_time({{pod=~".+"}}[10s]))"#);
        let m = range_query(
            &source,
            r#"sum by (service_name) (count_over_time({pod=~".+"}[10s]))"#,
            10,
            10,
            1,
        );
        let got: Vec<_> = m
            .iter()
            .map(|s| (s.labels.get("service_name"), s.points[0].1))
            .collect();
        assert_eq!(got, vec![(Some("a"), 5.0), (Some("b"), 2.0)]);
        let m = range_query(
            &source,
            r#"sum(count_over_time({pod=~".+"}[10s])) without (pod)"#,
            10,
            10,
            1,
        );
        assert_eq!(m.len(), 2);
        for (agg, expected) in [
            ("sum", 7.0),
            ("avg", 7.0 / 3.0),
            ("min", 1.0),
            ("max", 4.0),
            ("count", 3.0),
        ] {
            let m = range_query(&source, &q(agg), 10, 10, 1);
            assert_eq!(m.len(), 1, "{agg}");
            assert_eq!(m[0].labels, Labels::default());
            assert_eq!(points(&m[0]), vec![(10, expected)], "{agg}");
        }
    }

    #[test]
    fn topk_and_bottomk_pick_per_step_and_group() {
        let mut source = MemorySource::default();
        let a1 = stream(&[("service_name", "a"), ("pod", "1")]);
        let a2 = stream(&[("service_name", "a"), ("pod", "2")]);
        let b1 = stream(&[("service_name", "b"), ("pod", "1")]);
        // Step 10: a1=3, a2=1, b1=2. Step 20: a1=1, a2=4, b1=0 (absent).
        for s in [1, 2, 3, 11] {
            source.push(&a1, s, "x");
        }
        for s in [4, 12, 13, 14, 15] {
            source.push(&a2, s, "x");
        }
        for s in [5, 6] {
            source.push(&b1, s, "x");
        }
        let m = range_query(
            &source,
            r#"topk(1, count_over_time({pod=~".+"}[10s]))"#,
            10,
            20,
            10,
        );
        let got: Vec<_> = m
            .iter()
            .map(|s| {
                (
                    s.labels.get("pod").zip(s.labels.get("service_name")),
                    points(s),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(("1", "a")), vec![(10, 3.0)]),
                (Some(("2", "a")), vec![(20, 4.0)])
            ]
        );
        let m = range_query(
            &source,
            r#"topk(1, count_over_time({pod=~".+"}[10s])) by (service_name)"#,
            10,
            10,
            1,
        );
        let got: Vec<_> = m
            .iter()
            .map(|s| (s.labels.clone(), s.points[0].1))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    Labels::from_pairs([("pod", "1"), ("service_name", "a")]),
                    3.0
                ),
                (
                    Labels::from_pairs([("pod", "1"), ("service_name", "b")]),
                    2.0
                ),
            ]
        );
        let m = range_query(
            &source,
            r#"bottomk(2, count_over_time({pod=~".+"}[10s]))"#,
            10,
            10,
            1,
        );
        let got: Vec<_> = m.iter().map(|s| s.points[0].1).collect();
        // b1 {pod="1", service_name="b"} sorts before a2 {pod="2", service_name="a"}.
        assert_eq!(got, vec![2.0, 1.0]);
        let nested = range_query(
            &source,
            r#"topk(1, sum by (service_name) (rate({pod=~".+"}[10s])))"#,
            10,
            10,
            1,
        );
        assert_eq!(nested.len(), 1);
        assert_eq!(
            nested[0].labels,
            Labels::from_pairs([("service_name", "a")])
        );
        assert_eq!(points(&nested[0]), vec![(10, 0.4)]);
    }

    #[test]
    fn log_queries_honour_limit_and_direction() {
        let source = sample_source();
        let backward = log_query(&source, r#"{env="prod"}"#, 3, Direction::Backward);
        // Newest three overall: web@15, api@10, api@9.
        assert_eq!(backward.len(), 2);
        assert_eq!(
            backward[0].entries,
            vec![
                (10 * S, "error 10".to_string()),
                (9 * S, "ok 9".to_string())
            ]
        );
        assert_eq!(
            backward[1].entries,
            vec![(15 * S, "hello again".to_string())]
        );
        let forward = log_query(&source, r#"{app="api"} |= "error""#, 2, Direction::Forward);
        assert_eq!(forward.len(), 1);
        assert_eq!(
            forward[0].entries,
            vec![
                (2 * S, "error 2".to_string()),
                (4 * S, "error 4".to_string())
            ]
        );
        let requests = source.requests.borrow();
        assert_eq!(requests[0], (0, 100 * S, Direction::Backward, true, 0));
        assert_eq!(requests[1].4, 1);
    }

    #[test]
    fn log_queries_group_by_result_labels_and_format_lines() {
        let mut source = MemorySource::default();
        let s = stream(&[("app", "x")]);
        source.push_ns(
            &s,
            S,
            r#"{"level":"info","msg":"a"}"#,
            &[("trace_id", "t1")],
        );
        source.push_ns(
            &s,
            2 * S,
            r#"{"level":"error","msg":"b"}"#,
            &[("trace_id", "t2")],
        );
        source.push_ns(
            &s,
            3 * S,
            r#"{"level":"error","msg":"c"}"#,
            &[("trace_id", "t3")],
        );
        let streams = log_query(
            &source,
            r#"{app="x"} | json | trace_id!="t3" | line_format "{{.msg}} {{.trace_id}}""#,
            10,
            Direction::Forward,
        );
        let got: Vec<_> = streams
            .iter()
            .map(|s| (s.labels.get("level"), s.entries.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some("error"), vec![(2 * S, "b t2".to_string())]),
                (Some("info"), vec![(S, "a t1".to_string())]),
            ]
        );
    }

    #[test]
    fn instant_queries_evaluate_one_step() {
        let source = sample_source();
        let expr = parse(r#"sum by (app) (count_over_time({env="prod"}[10s]))"#).unwrap();
        let result =
            query_instant(&source, &tenant(), &expr, 10 * S, 100, Direction::Backward).unwrap();
        assert_eq!(
            result,
            QueryResult::Vector(vec![
                Sample {
                    labels: Labels::from_pairs([("app", "api")]),
                    timestamp_ns: 10 * S,
                    value: 10.0
                },
                Sample {
                    labels: Labels::from_pairs([("app", "web")]),
                    timestamp_ns: 10 * S,
                    value: 1.0
                },
            ])
        );
        let log = parse(r#"{env="prod"}"#).unwrap();
        assert!(matches!(
            query_instant(&source, &tenant(), &log, 10 * S, 100, Direction::Backward),
            Err(EvalError::InstantLogQuery)
        ));
    }

    /// `sum(count_over_time(…))` over more streams than the series limit used to fail
    /// (the limit applied to the per-stream series before the sum); the limit is the
    /// result's, and grouped sums equal the sums of the per-stream results.
    #[test]
    fn sums_over_more_streams_than_the_series_limit() {
        let mut inner = MemorySource {
            entries: Vec::new(),
            requests: RefCell::new(Vec::new()),
        };
        for i in 0..30 {
            let labels = stream(&[
                ("app", if i % 2 == 0 { "a" } else { "b" }),
                ("pod", &i.to_string()),
            ]);
            for t in 0..=i % 5 {
                inner.push(&labels, 1 + t, &format!("line {i} {t} status=500"));
            }
        }
        let counting = CountingSource {
            inner,
            counted: RefCell::new(0),
        };
        let unlimited = Engine::new(1000);
        let limited = Engine::new(2);
        let by_app = |l: &Labels| Labels::from_pairs(l.iter().filter(|(k, _)| *k == "app"));
        let all = |_: &Labels| Labels::default();
        let cases: [(&str, &str, GroupFn<'_>); 4] = [
            (
                r#"sum(count_over_time({app=~".+"}[10s]))"#,
                r#"count_over_time({app=~".+"}[10s])"#,
                &all,
            ),
            (
                r#"sum by (app) (rate({app=~".+"}[10s]))"#,
                r#"rate({app=~".+"}[10s])"#,
                &by_app,
            ),
            (
                r#"sum without (pod) (bytes_over_time({app=~".+"} |= "status"[10s]))"#,
                r#"bytes_over_time({app=~".+"} |= "status"[10s])"#,
                &by_app,
            ),
            (
                r#"sum by (app) (count_over_time({app=~".+"} | logfmt [10s]))"#,
                r#"count_over_time({app=~".+"} | logfmt [10s])"#,
                &by_app,
            ),
        ];
        for (query, per_stream, group) in cases {
            for source in [&counting as &dyn LogSource, &counting.inner] {
                let run = |engine: &Engine, q: &str| {
                    let expr = parse(q).unwrap();
                    match engine
                        .query_range(
                            source,
                            &tenant(),
                            &expr,
                            0,
                            10 * S,
                            S,
                            100,
                            Direction::Forward,
                        )
                        .unwrap()
                    {
                        QueryResult::Matrix(m) => m,
                        other => panic!("{q}: {other:?}"),
                    }
                };
                // The sum of the per-stream series, by group and time.
                let mut want: BTreeMap<Labels, BTreeMap<i64, f64>> = BTreeMap::new();
                for series in run(&unlimited, per_stream) {
                    let points = want.entry(group(&series.labels)).or_default();
                    for (t, v) in series.points {
                        *points.entry(t).or_default() += v;
                    }
                }
                let got: BTreeMap<Labels, BTreeMap<i64, f64>> = run(&limited, query)
                    .into_iter()
                    .map(|s| (s.labels, s.points.into_iter().collect()))
                    .collect();
                // Equal up to rounding: a group's rate is its count over the range, not a
                // sum of per-stream quotients.
                let flat = |m: &BTreeMap<Labels, BTreeMap<i64, f64>>| -> Vec<(Labels, i64, f64)> {
                    m.iter()
                        .flat_map(|(l, ps)| ps.iter().map(|(t, v)| (l.clone(), *t, *v)))
                        .collect()
                };
                let (got, want) = (flat(&got), flat(&want));
                assert_eq!(got.len(), want.len(), "{query}");
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        g.0 == w.0 && g.1 == w.1 && (g.2 - w.2).abs() <= 1e-9 * w.2.abs(),
                        "{query}: {g:?} vs {w:?}"
                    );
                }
            }
        }
        // Without the sum, 30 series are over a limit of 2; so are 30 groups.
        for query in [
            r#"count_over_time({app=~".+"}[10s])"#,
            r#"sum by (pod) (count_over_time({app=~".+"}[10s]))"#,
        ] {
            let expr = parse(query).unwrap();
            let err = limited
                .query_range(
                    &counting,
                    &tenant(),
                    &expr,
                    0,
                    10 * S,
                    S,
                    100,
                    Direction::Forward,
                )
                .unwrap_err();
            assert!(
                matches!(err, EvalError::TooManySeries { limit: 2 }),
                "{query}: {err}"
            );
        }
        assert!(*counting.counted.borrow() > 0, "the store counted some");
    }

    #[test]
    fn validates_parameters_and_limits() {
        let source = sample_source();
        let metric = parse(r#"rate({env="prod"}[1m])"#).unwrap();
        let log = parse(r#"{env="prod"}"#).unwrap();
        let run = |expr: &Expr, start: i64, end: i64, step: i64, limit: usize| {
            query_range(
                &source,
                &tenant(),
                expr,
                start,
                end,
                step,
                limit,
                Direction::Forward,
            )
        };
        assert!(matches!(
            run(&metric, 0, 10, 0, 1),
            Err(EvalError::NonPositiveStep)
        ));
        assert!(matches!(
            run(&metric, 10, 0, 1, 1),
            Err(EvalError::EndBeforeStart)
        ));
        assert!(matches!(
            run(&metric, 0, 11_000, 1, 1),
            Err(EvalError::TooManySteps { steps: 11_001 })
        ));
        assert!(run(&metric, 0, 10_999, 1, 1).is_ok());
        assert!(matches!(
            run(&log, 0, 10, 1, 0),
            Err(EvalError::NonPositiveLimit)
        ));
        assert!(run(&metric, i64::MIN, i64::MAX, i64::MAX, 1).is_ok());

        let engine = Engine::new(1);
        let err = engine
            .query_range(
                &source,
                &tenant(),
                &metric,
                0,
                20 * S,
                S,
                1,
                Direction::Forward,
            )
            .unwrap_err();
        assert!(matches!(err, EvalError::TooManySeries { limit: 1 }));
        assert!(err.to_string().contains("maximum number of series (1)"));

        let err = query_range(
            &FailingSource,
            &tenant(),
            &metric,
            0,
            S,
            S,
            1,
            Direction::Forward,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "log store error: disk on fire");
        // The store's error stays the cause, not only its text.
        let cause = std::error::Error::source(&err).expect("the store error is the source");
        assert_eq!(cause.to_string(), "disk on fire");
    }

    #[test]
    fn counts_from_the_store_give_the_same_metrics_as_counting_entries() {
        // Entries every 7 s with three phases, some exactly on step and window edges.
        let mut inner = MemorySource::default();
        for (app, phase) in [("api", 0), ("db", 3), ("web", 5)] {
            let labels = stream(&[("app", app), ("env", "prod")]);
            for i in 0..400 {
                inner.push(&labels, i * 7 + phase, &format!("line {i}"));
            }
        }
        let counting = CountingSource {
            inner: MemorySource {
                entries: inner.entries.clone(),
                ..Default::default()
            },
            counted: RefCell::new(0),
        };
        for (query, step) in [
            (r#"count_over_time({env="prod"}[60s])"#, 60),
            (r#"count_over_time({env="prod"}[5m])"#, 60),
            (r#"rate({app=~"api|db"}[90s])"#, 60),
            (
                r#"sum by (env) (count_over_time({env="prod"}[35s] offset 1m))"#,
                14,
            ),
            (r#"count_over_time({app="web"}[1h])"#, 300),
        ] {
            let before = *counting.counted.borrow();
            let fast = range_query(&counting, query, 30, 2800, step);
            let slow = range_query(&inner, query, 30, 2800, step);
            assert_eq!(fast, slow, "{query}");
            assert!(!fast.is_empty(), "{query}");
            assert!(
                *counting.counted.borrow() > before,
                "{query}: counted by the store"
            );
            let expr = parse(query).unwrap();
            let at = 1400 * S;
            let fast = query_instant(&counting, &tenant(), &expr, at, 100, Direction::Forward);
            let slow = query_instant(&inner, &tenant(), &expr, at, 100, Direction::Forward);
            assert_eq!(fast.unwrap(), slow.unwrap(), "{query} at {at}");
        }
    }

    /// For the binary operator tests: in (0, 10 s], app=api has job=a with 2 error and 6
    /// info lines, job=b with 1 of each; app=web has job=c with 4 info lines.
    fn jobs_source() -> MemorySource {
        let mut source = MemorySource::default();
        for (app, job, level, count) in [
            ("api", "a", "error", 2),
            ("api", "a", "info", 6),
            ("api", "b", "error", 1),
            ("api", "b", "info", 1),
            ("web", "c", "info", 4),
        ] {
            let labels = stream(&[("app", app), ("job", job), ("level", level)]);
            for s in 1..=count {
                source.push(&labels, s, &format!("{level} {s}"));
            }
        }
        source
    }

    /// An instant query at 10 s, as (labels, value); checked against the range query with
    /// the one step 10 s, which must agree.
    fn instant(source: &dyn LogSource, query: &str) -> Vec<(String, f64)> {
        let expr = parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        let samples = match query_instant(source, &tenant(), &expr, 10 * S, 100, Direction::Forward)
        {
            Ok(QueryResult::Vector(samples)) => samples,
            other => panic!("{query}: {other:?}"),
        };
        let got: Vec<(String, f64)> = samples
            .into_iter()
            .map(|s| (s.labels.to_canonical(), s.value))
            .collect();
        let ranged: Vec<(String, f64)> = range_query(source, query, 10, 10, 1)
            .into_iter()
            .map(|s| (s.labels.to_canonical(), s.points[0].1))
            .collect();
        // NaN is not equal to itself: compare the text.
        assert_eq!(format!("{got:?}"), format!("{ranged:?}"), "{query}");
        got
    }

    fn instant_error(source: &dyn LogSource, query: &str) -> EvalError {
        let expr = parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        match query_instant(source, &tenant(), &expr, 10 * S, 100, Direction::Forward) {
            Err(e) => e,
            Ok(result) => panic!("{query}: {result:?}"),
        }
    }

    fn samples(expected: &[(&str, f64)]) -> Vec<(String, f64)> {
        expected.iter().map(|(l, v)| (l.to_string(), *v)).collect()
    }

    #[test]
    fn an_error_ratio_by_job_compared_to_a_threshold_keeps_the_ratio_where_it_holds() {
        let source = jobs_source();
        let ratio = r#"sum(rate({app="api"} |= "error" [10s])) by (job) / sum(rate({app="api"}[10s])) by (job)"#;
        assert_eq!(
            instant(&source, ratio),
            samples(&[(r#"{job="a"}"#, 0.25), (r#"{job="b"}"#, 0.5)])
        );
        assert_eq!(
            instant(&source, &format!("{ratio} > 0.3")),
            samples(&[(r#"{job="b"}"#, 0.5)])
        );
        assert_eq!(
            instant(&source, &format!("{ratio} > bool 0.3")),
            samples(&[(r#"{job="a"}"#, 0.0), (r#"{job="b"}"#, 1.0)])
        );
        // The same as a ruler writes it for Loki, with a 5m window.
        let expr = parse(r#"sum(rate({app="api"} |= "error" [5m])) by (job) / sum(rate({app="api"}[5m])) by (job) > 0.05"#).unwrap();
        let result =
            query_instant(&source, &tenant(), &expr, 10 * S, 100, Direction::Forward).unwrap();
        let QueryResult::Vector(alerts) = result else {
            panic!("{result:?}")
        };
        assert_eq!(alerts.len(), 2);
    }

    #[test]
    fn a_scalar_applies_to_every_point_on_either_side_and_comparisons_keep_the_vector_value() {
        let source = jobs_source();
        let info = r#"count_over_time({app="api", level="info"}[10s])"#;
        let a = r#"{app="api", job="a", level="info"}"#;
        let b = r#"{app="api", job="b", level="info"}"#;
        for (query, expected) in [
            (format!("{info} * 2"), [12.0, 2.0]),
            (format!("10 - {info}"), [4.0, 9.0]),
            (format!("{info} - 10"), [-4.0, -9.0]),
            (format!("{info} ^ 2"), [36.0, 1.0]),
            (format!("2 ^ {info}"), [64.0, 2.0]),
            (format!("{info} % 4"), [2.0, 1.0]),
            (format!("-1 * {info}"), [-6.0, -1.0]),
        ] {
            assert_eq!(
                instant(&source, &query),
                samples(&[(a, expected[0]), (b, expected[1])]),
                "{query}"
            );
        }
        // A comparison filters, keeping the vector's value on whichever side it is.
        let all = r#"count_over_time({app="api"}[10s])"#;
        assert_eq!(
            instant(&source, &format!("3 < {all}")),
            samples(&[(a, 6.0)])
        );
        assert_eq!(
            instant(&source, &format!("{all} > 3")),
            samples(&[(a, 6.0)])
        );
        assert_eq!(
            instant(&source, &format!("{all} == 1")),
            samples(&[(r#"{app="api", job="b", level="error"}"#, 1.0), (b, 1.0)])
        );
        // With bool every series stays, with 1 or 0.
        let got: Vec<f64> = instant(&source, &format!("2 <= bool {all}"))
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        assert_eq!(got, [1.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn division_and_modulo_by_zero_give_nan_as_in_loki_and_nan_propagates() {
        let source = jobs_source();
        let info = r#"count_over_time({app="api", level="info"}[10s])"#;
        for query in [
            format!("{info} / 0"),
            format!("{info} % 0"),
            format!("{info} / ({info} - {info})"),
            format!("0 / 0 * {info}"),
            format!("({info} - {info}) / ({info} - {info}) + 1"),
        ] {
            let got = instant(&source, &query);
            assert_eq!(got.len(), 2, "{query}");
            assert!(got.iter().all(|(_, v)| v.is_nan()), "{query}: {got:?}");
        }
        // NaN compares false, except with !=.
        let nan = format!("({info} / 0)");
        assert!(instant(&source, &format!("{nan} == {nan}")).is_empty());
        assert!(instant(&source, &format!("{nan} > 0")).is_empty());
        assert_eq!(instant(&source, &format!("{nan} != 0")).len(), 2);
        // Other IEEE results stand: a power can overflow to +Inf.
        let got = instant(&source, &format!("{info} ^ 1000"));
        assert_eq!(got[0].1, f64::INFINITY);
    }

    #[test]
    fn vectors_match_on_all_labels_by_default_or_on_and_ignoring_lists() {
        let source = jobs_source();
        let errors = r#"count_over_time({level="error"}[10s])"#;
        let info = r#"count_over_time({level="info"}[10s])"#;
        // All labels: error and info series never match.
        assert!(instant(&source, &format!("{errors} + {info}")).is_empty());
        // Ignoring level: the result drops it; web has no errors, so no result.
        assert_eq!(
            instant(&source, &format!("{errors} / ignoring (level) {info}")),
            samples(&[
                (r#"{app="api", job="a"}"#, 2.0 / 6.0),
                (r#"{app="api", job="b"}"#, 1.0)
            ])
        );
        // On job: the result has only job.
        assert_eq!(
            instant(
                &source,
                &format!("sum by (job) ({errors}) + on (job) sum by (job, app) ({info})")
            ),
            samples(&[(r#"{job="a"}"#, 8.0), (r#"{job="b"}"#, 2.0)])
        );
        // Between vectors a comparison keeps the left value, or with bool gives 1 or 0.
        assert_eq!(
            instant(&source, &format!("{info} > ignoring (level) {errors}")),
            samples(&[(r#"{app="api", job="a"}"#, 6.0)])
        );
        assert_eq!(
            instant(&source, &format!("{errors} < bool ignoring (level) {info}")),
            samples(&[
                (r#"{app="api", job="a"}"#, 1.0),
                (r#"{app="api", job="b"}"#, 0.0)
            ])
        );
        // on () puts every series in one group: one on each side match, two on the
        // right are many-to-many.
        assert!(matches!(
            instant_error(
                &source,
                &format!("sum ({errors}) / on () sum by (app) ({info})")
            ),
            EvalError::VectorMatching(_)
        ));
        assert_eq!(
            instant(&source, &format!("sum ({errors}) / on () sum ({info})")),
            samples(&[("{}", 3.0 / 11.0)])
        );
    }

    #[test]
    fn group_left_and_group_right_keep_the_many_sides_labels_and_copy_the_listed_ones() {
        let source = jobs_source();
        let by_level = r#"sum by (job, level) (count_over_time({app="api"}[10s]))"#;
        let by_job = r#"sum by (job) (count_over_time({app="api"}[10s]))"#;
        let shares = samples(&[
            (r#"{job="a", level="error"}"#, 0.25),
            (r#"{job="a", level="info"}"#, 0.75),
            (r#"{job="b", level="error"}"#, 0.5),
            (r#"{job="b", level="info"}"#, 0.5),
        ]);
        assert_eq!(
            instant(
                &source,
                &format!("{by_level} / on (job) group_left {by_job}")
            ),
            shares
        );
        // group_right: the right side is the many side; the operation stays left op right.
        assert_eq!(
            instant(
                &source,
                &format!("{by_job} / on (job) group_right {by_level}")
            ),
            samples(&[
                (r#"{job="a", level="error"}"#, 4.0),
                (r#"{job="a", level="info"}"#, 8.0 / 6.0),
                (r#"{job="b", level="error"}"#, 2.0),
                (r#"{job="b", level="info"}"#, 2.0),
            ])
        );
        // group_left (app) copies app from the one side.
        let max_by_app = r#"max by (job, app) (count_over_time({app="api"}[10s]))"#;
        assert_eq!(
            instant(
                &source,
                &format!("{by_level} * on (job) group_left (app) {max_by_app}")
            ),
            samples(&[
                (r#"{app="api", job="a", level="error"}"#, 12.0),
                (r#"{app="api", job="a", level="info"}"#, 36.0),
                (r#"{app="api", job="b", level="error"}"#, 1.0),
                (r#"{app="api", job="b", level="info"}"#, 1.0),
            ])
        );
        // Comparisons keep the left side's value, the "one" side's with group_right.
        let avg = r#"avg by (job) (count_over_time({app="api"}[10s]))"#;
        assert_eq!(
            instant(&source, &format!("{by_level} > on (job) group_left {avg}")),
            samples(&[(r#"{job="a", level="info"}"#, 6.0)])
        );
        assert_eq!(
            instant(&source, &format!("{avg} < on (job) group_right {by_level}")),
            samples(&[(r#"{job="a", level="info"}"#, 4.0)])
        );
        assert_eq!(
            instant(
                &source,
                &format!("{avg} < bool ignoring (level) group_right {by_level}")
            ),
            samples(&[
                (r#"{job="a", level="error"}"#, 0.0),
                (r#"{job="a", level="info"}"#, 1.0),
                (r#"{job="b", level="error"}"#, 0.0),
                (r#"{job="b", level="info"}"#, 0.0),
            ])
        );
    }

    #[test]
    fn ambiguous_matches_fail_with_lokis_messages_naming_the_match_group() {
        let source = jobs_source();
        let by_level =
            |selector: &str| format!("sum by (job, level) (count_over_time({selector}[10s]))");
        let many_to_many = |side: &str| {
            format!(
                "found duplicate series for the match group {{job=\"a\"}} on the {side} \
                 hand-side of the operation: [{{job=\"a\", level=\"error\"}}, {{job=\"a\", \
                 level=\"info\"}}];many-to-many matching not allowed: matching labels must be \
                 unique on one side"
            )
        };
        let swap_pair = |message: String| {
            message.replace(
                r#"[{job="a", level="error"}, {job="a", level="info"}]"#,
                r#"[{job="a", level="info"}, {job="a", level="error"}]"#,
            )
        };
        for (query, side) in [
            (
                format!(
                    "{} + on (job) {}",
                    by_level(r#"{app="api"}"#),
                    by_level(r#"{job="a"}"#)
                ),
                "right",
            ),
            (
                format!(
                    "{} + on (job) group_left {}",
                    by_level(r#"{app="api"}"#),
                    by_level(r#"{job="a"}"#)
                ),
                "right",
            ),
            (
                format!(
                    "{} + on (job) group_right {}",
                    by_level(r#"{job="a"}"#),
                    by_level(r#"{app="api"}"#)
                ),
                "left",
            ),
        ] {
            let e = instant_error(&source, &query);
            assert!(matches!(e, EvalError::VectorMatching(_)), "{query}: {e:?}");
            // The two series are named in the order the step met them.
            let text = e.to_string();
            assert!(
                text == many_to_many(side) || text == swap_pair(many_to_many(side)),
                "{query}: {text}"
            );
        }
        let by_job = r#"sum by (job) (count_over_time({app="api"}[10s]))"#;
        assert_eq!(
            instant_error(
                &source,
                &format!(r#"count_over_time({{app="api"}}[10s]) / on (job) {by_job}"#)
            )
            .to_string(),
            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
        );
        // group_left (level) takes level from the one side, which has none: both levels of a
        // job would become the same series.
        assert_eq!(
            instant_error(
                &source,
                &format!(
                    "{} * on (job) group_left (level) {by_job}",
                    by_level(r#"{app="api"}"#)
                )
            )
            .to_string(),
            "multiple matches for labels: grouping labels must ensure unique matches"
        );
    }

    #[test]
    fn and_or_unless_select_series_by_match_group_and_keep_them_as_they_are() {
        let source = jobs_source();
        let api = r#"count_over_time({app="api"}[10s])"#;
        let b_errors = r#"count_over_time({job="b", level="error"}[10s])"#;
        assert_eq!(
            instant(&source, &format!("{api} and on (level) {b_errors}")),
            samples(&[
                (r#"{app="api", job="a", level="error"}"#, 2.0),
                (r#"{app="api", job="b", level="error"}"#, 1.0)
            ])
        );
        assert_eq!(
            instant(&source, &format!("{api} unless on (level) {b_errors}")),
            samples(&[
                (r#"{app="api", job="a", level="info"}"#, 6.0),
                (r#"{app="api", job="b", level="info"}"#, 1.0)
            ])
        );
        // Without on/ignoring all labels count.
        assert_eq!(instant(&source, &format!("{api} and {b_errors}")).len(), 1);
        assert_eq!(
            instant(&source, &format!("{api} unless {b_errors}")).len(),
            3
        );
        let errors = r#"sum by (job) (count_over_time({level="error"}[10s]))"#;
        let info = r#"sum by (job) (count_over_time({level="info"}[10s]))"#;
        assert_eq!(
            instant(&source, &format!("{errors} or {info}")),
            samples(&[
                (r#"{job="a"}"#, 2.0),
                (r#"{job="b"}"#, 1.0),
                (r#"{job="c"}"#, 4.0)
            ])
        );
        let nothing = r#"count_over_time({app="none"}[10s])"#;
        assert_eq!(instant(&source, &format!("{errors} or {nothing}")).len(), 2);
        assert_eq!(instant(&source, &format!("{nothing} or {errors}")).len(), 2);
        assert!(instant(&source, &format!("{errors} and {nothing}")).is_empty());
        assert_eq!(
            instant(&source, &format!("{errors} unless {nothing}")).len(),
            2
        );
        // `and` binds tighter than `or`.
        assert_eq!(
            instant(
                &source,
                &format!("{errors} or {info} and on (job) {nothing}")
            )
            .len(),
            2
        );
    }

    #[test]
    fn range_queries_pair_the_two_sides_step_by_step() {
        // side=l has entries at 1..=10 s, side=r at 6..=15 s; windows of 5 s at 5, 10, 15.
        let mut source = MemorySource::default();
        let l = stream(&[("app", "x"), ("side", "l")]);
        let r = stream(&[("app", "x"), ("side", "r")]);
        for s in 1..=10 {
            source.push(&l, s, "l");
        }
        for s in 6..=15 {
            source.push(&r, s, "r");
        }
        let left = r#"sum(count_over_time({side="l"}[5s]))"#;
        let right = r#"sum(count_over_time({side="r"}[5s]))"#;
        let run = |query: &str| -> Vec<(String, Vec<(i64, f64)>)> {
            range_query(&source, query, 5, 15, 5)
                .iter()
                .map(|s| (s.labels.to_canonical(), points(s)))
                .collect()
        };
        let one = |pts: &[(i64, f64)]| vec![("{}".to_string(), pts.to_vec())];
        assert_eq!(run(&format!("{left} + {right}")), one(&[(10, 10.0)]));
        assert_eq!(run(&format!("{left} * 2")), one(&[(5, 10.0), (10, 10.0)]));
        assert_eq!(
            run(&format!("{left} > bool 4")),
            one(&[(5, 1.0), (10, 1.0)])
        );
        // The same labels on both sides: `or` fills the steps the left side lacks.
        assert_eq!(
            run(&format!("{left} or {right}")),
            one(&[(5, 5.0), (10, 5.0), (15, 5.0)])
        );
        assert_eq!(run(&format!("{left} and {right}")), one(&[(10, 5.0)]));
        assert_eq!(run(&format!("{left} unless {right}")), one(&[(5, 5.0)]));
        let per_side = r#"count_over_time({app="x"}[5s])"#;
        assert_eq!(
            run(&format!(
                r#"{per_side} unless on (app) count_over_time({{side="r"}}[5s])"#
            )),
            vec![(r#"{app="x", side="l"}"#.to_string(), vec![(5, 5.0)])]
        );
    }

    #[test]
    fn the_series_limit_applies_to_what_or_returns() {
        let source = jobs_source();
        let errors = r#"count_over_time({level="error"}[10s])"#;
        let info = r#"count_over_time({level="info"}[10s])"#;
        let query = format!("{errors} or {info}");
        let expr = parse(&query).unwrap();
        let run = |engine: Engine| {
            engine.query_instant(&source, &tenant(), &expr, 10 * S, 100, Direction::Forward)
        };
        // Three info series, two error series: each side is within 3, the union is not.
        assert!(matches!(
            run(Engine::new(3)),
            Err(EvalError::TooManySeries { limit: 3 })
        ));
        assert!(matches!(run(Engine::new(5)), Ok(QueryResult::Vector(v)) if v.len() == 5));
    }

    #[test]
    fn a_cancelled_query_stops_in_a_vector_operation() {
        // Sides without entries: reading them never polls, the operation's steps do.
        let source = jobs_source();
        let none = r#"count_over_time({app="none"}[10s])"#;
        let expr = parse(&format!("{none} / {none}")).unwrap();
        let engine = Engine::default();
        assert!(
            engine
                .query_instant(&source, &tenant(), &expr, 10 * S, 100, Direction::Forward)
                .is_ok()
        );
        engine.cancel.cancel();
        assert!(matches!(
            engine.query_instant(&source, &tenant(), &expr, 10 * S, 100, Direction::Forward),
            Err(EvalError::Stopped(_))
        ));
    }

    #[test]
    fn a_query_of_numbers_only_is_one_series_without_labels() {
        let source = sample_source();
        let m = range_query(&source, "1 + 1", 5, 15, 5);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].labels, Labels::default());
        assert_eq!(points(&m[0]), vec![(5, 2.0), (10, 2.0), (15, 2.0)]);
        for (query, value) in [("2 * 3", 6.0), ("-1", -1.0), ("1 > 2", 0.0)] {
            let expr = parse(query).unwrap();
            assert_eq!(
                query_instant(&source, &tenant(), &expr, 7 * S, 100, Direction::Forward).unwrap(),
                QueryResult::Vector(vec![Sample {
                    labels: Labels::default(),
                    timestamp_ns: 7 * S,
                    value
                }]),
                "{query}"
            );
        }
    }

    #[test]
    fn binary_operations_nest_inside_aggregations() {
        let source = jobs_source();
        let api = r#"count_over_time({app="api"}[10s])"#;
        assert_eq!(
            instant(&source, &format!("sum({api} * 2)")),
            samples(&[("{}", 20.0)])
        );
        assert_eq!(
            instant(&source, &format!("sum by (job) ({api} > 1)")),
            samples(&[(r#"{job="a"}"#, 8.0)])
        );
        assert_eq!(
            instant(
                &source,
                &format!("topk(1, {api} / ignoring (level) group_left sum by (app, job) ({api}))")
            ),
            samples(&[(r#"{app="api", job="a", level="info"}"#, 0.75)])
        );
    }

    #[test]
    fn topk_and_bottomk_rank_nan_last() {
        let source = jobs_source();
        // (count - 2) / (count - 2): NaN for a/error (count 2), 1 for the others.
        let api = r#"count_over_time({app="api"}[10s])"#;
        let ones_and_nan = format!("({api} - 2) / ({api} - 2)");
        for agg in ["topk", "bottomk"] {
            let got = instant(&source, &format!("{agg}(3, {ones_and_nan})"));
            assert_eq!(
                got.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
                [1.0, 1.0, 1.0],
                "{agg}: {got:?}"
            );
            let got = instant(&source, &format!("{agg}(4, {ones_and_nan})"));
            assert_eq!(got.iter().filter(|(_, v)| v.is_nan()).count(), 1, "{agg}");
        }
    }
}
