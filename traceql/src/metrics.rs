//! Evaluation of metrics queries: the spans that a query's spanset part matches, counted or
//! measured per time step, grouped into series, then filtered, ranked and combined.
//!
//! Semantics follow Tempo's engine (`pkg/traceql/engine_metrics*.go`) except where
//! `docs/traceql.md` says otherwise: series labels (`__name__` for an ungrouped function,
//! each `by()` field under its canonical text, nils dropped, `p` per quantile, `__bucket`
//! per log2 histogram bucket), durations measured in seconds, `rate` per second of step,
//! quantiles interpolated between power-of-two buckets, `topk`/`bottomk` chosen per step,
//! arithmetic between series matched on their labels with an unlabelled series applying to
//! all. The time window is `[start, end)` cut into steps from `start`; each point is
//! stamped with its step's start.

use std::collections::{BTreeMap, HashMap};

use crate::Query;
use crate::ast::{ArithOp, CmpOp, Field, FirstStage, MetricsExpr, MetricsFn, Pipeline, Static};
use crate::error::{ErrorKind, TraceQlError};
use crate::eval::{self, SpanRef, Trace};
use crate::parser::Body;

/// Most points a series may have: the number of steps in the window (Prometheus' bound).
pub const MAX_METRICS_POINTS: i64 = 11_000;
/// Most series one evaluation may hold, counted over all the query's functions before
/// `topk`/`bottomk` and arithmetic (a quantile function counts one per quantile).
pub const MAX_METRICS_SERIES: usize = 1_000;

const NAME_LABEL: &str = "__name__";
const BUCKET_LABEL: &str = "__bucket";
const QUANTILE_LABEL: &str = "p";
const NANOS_PER_SECOND: f64 = 1e9;

/// One output time series.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSeries {
    /// `[("__name__", "rate")]` for an ungrouped function; otherwise each `by()` field that
    /// has a value, under its canonical text (`resource.service.name`), then `p` (the
    /// quantile, a float) or `__bucket` (the histogram bucket's upper bound, a float).
    pub labels: Vec<(String, Static)>,
    /// `(timestamp, value)`, ascending: the timestamp is the start (Unix nanoseconds) of the
    /// step the value covers. Steps without a value (a minimum over no span, a point a
    /// filter removed) are absent; counts and rates are 0 in an empty step.
    pub points: Vec<(i64, f64)>,
}

/// Evaluates a metrics query over traces fed one at a time: [`MetricsEvaluator::observe`]
/// each trace once (every span of it, in any order), then [`MetricsEvaluator::finish`].
#[derive(Debug)]
pub struct MetricsEvaluator {
    expr: MetricsExpr,
    leaves: Vec<Leaf>,
    window: Window,
    series: usize,
    exceeded: bool,
}

impl MetricsEvaluator {
    /// Prepares the evaluation of `query` over `[start_ns, end_ns)` cut into steps of
    /// `step_ns` from `start_ns` (the last may be shorter); an instant query is one step,
    /// `step_ns = end_ns - start_ns`. Invalid when the query is not a metrics query, the
    /// step is not positive, the window is empty, or it has more than
    /// [`MAX_METRICS_POINTS`] steps.
    pub fn new(
        query: &Query,
        start_ns: i64,
        end_ns: i64,
        step_ns: i64,
    ) -> Result<Self, TraceQlError> {
        let Body::Metrics(metrics) = &query.body else {
            return Err(TraceQlError::request(
                ErrorKind::Invalid,
                "not a metrics query: a metrics evaluation needs a function such as `| rate()`",
            ));
        };
        if step_ns <= 0 {
            return Err(TraceQlError::request(
                ErrorKind::Invalid,
                format!("the step must be positive, not {step_ns} ns"),
            ));
        }
        if end_ns <= start_ns {
            return Err(TraceQlError::request(
                ErrorKind::Invalid,
                "the end of the time range must be after its start",
            ));
        }
        let width = i128::from(end_ns) - i128::from(start_ns);
        let steps = (width + i128::from(step_ns) - 1) / i128::from(step_ns);
        if steps > i128::from(MAX_METRICS_POINTS) {
            return Err(TraceQlError::request(
                ErrorKind::Invalid,
                format!(
                    "the time range holds {steps} steps, more than {MAX_METRICS_POINTS}: use a larger step"
                ),
            ));
        }
        let mut leaves = Vec::new();
        for leaf in leaf_stages(&metrics.expr) {
            match leaf.1 {
                FirstStage::Aggregate {
                    func,
                    attr,
                    quantiles,
                    by,
                } => leaves.push(Leaf {
                    pipeline: leaf.0.clone(),
                    func: *func,
                    attr: attr.clone(),
                    quantiles: quantiles.clone(),
                    by: by.clone(),
                    groups: Vec::new(),
                    index: HashMap::new(),
                }),
                FirstStage::Compare { .. } => {
                    return Err(TraceQlError::request(
                        ErrorKind::Unsupported,
                        "`compare()` is not supported",
                    ));
                }
            }
        }
        Ok(Self {
            expr: metrics.expr.clone(),
            leaves,
            window: Window {
                start: start_ns,
                end: end_ns,
                step: step_ns,
                steps: usize::try_from(steps).unwrap_or(0),
            },
            series: 0,
            exceeded: false,
        })
    }

    /// Runs the spanset part of the query on one whole trace and counts each span of every
    /// spanset that survives it, once, in the step containing the span's start time (spans
    /// starting outside the window count nowhere). Fails with [`ErrorKind::Limit`] once
    /// the series exceed [`MAX_METRICS_SERIES`]; the evaluation then ignores further
    /// traces and [`MetricsEvaluator::finish`] fails too.
    pub fn observe(&mut self, trace: &[SpanRef<'_>]) -> Result<(), TraceQlError> {
        if self.exceeded {
            return Err(self.limit_error());
        }
        if trace.is_empty() {
            return Ok(());
        }
        let prepared = Trace::new(trace);
        let mut counted = vec![false; trace.len()];
        for leaf in &mut self.leaves {
            counted.iter_mut().for_each(|c| *c = false);
            for set in eval::run(&leaf.pipeline, &prepared) {
                for i in set.spans {
                    counted[i] = true;
                }
            }
            for (i, _) in counted.iter().enumerate().filter(|(_, c)| **c) {
                let Some(step) = self.window.step_of(prepared.span(i).span.start_ns) else {
                    continue;
                };
                if !leaf.observe(&prepared, i, step, &mut self.series) {
                    self.exceeded = true;
                    return Err(self.limit_error());
                }
            }
        }
        Ok(())
    }

    /// The series of the query, sorted by their labels. Fails when
    /// [`MetricsEvaluator::observe`] exceeded [`MAX_METRICS_SERIES`].
    pub fn finish(self) -> Result<Vec<MetricsSeries>, TraceQlError> {
        if self.exceeded {
            return Err(self.limit_error());
        }
        let window = self.window;
        let mut leaves = self.leaves.into_iter().map(|leaf| leaf.finish(&window));
        let series = evaluate(&self.expr, &mut leaves);
        let mut out: Vec<MetricsSeries> = series
            .into_iter()
            .filter_map(|s| {
                let points: Vec<(i64, f64)> = s
                    .values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| !v.is_nan())
                    .map(|(i, v)| (window.timestamp(i), *v))
                    .collect();
                (!points.is_empty()).then_some(MetricsSeries {
                    labels: s.labels,
                    points,
                })
            })
            .collect();
        out.sort_by_cached_key(|s| label_key(&s.labels, true));
        Ok(out)
    }

    fn limit_error(&self) -> TraceQlError {
        TraceQlError::request(
            ErrorKind::Limit,
            format!(
                "the query produces more than {MAX_METRICS_SERIES} series: narrow it or group by fewer values"
            ),
        )
    }
}

/// The spanset pipelines of a metrics expression, left to right.
pub(crate) fn pipelines(expr: &MetricsExpr) -> Vec<&Pipeline> {
    leaf_stages(expr).into_iter().map(|(p, _)| p).collect()
}

fn leaf_stages(expr: &MetricsExpr) -> Vec<(&Pipeline, &FirstStage)> {
    let mut out = Vec::new();
    collect_leaves(expr, &mut out);
    out
}

fn collect_leaves<'e>(expr: &'e MetricsExpr, out: &mut Vec<(&'e Pipeline, &'e FirstStage)>) {
    match expr {
        MetricsExpr::Leaf { pipeline, stage } => out.push((pipeline, stage)),
        MetricsExpr::Filter { inner, .. }
        | MetricsExpr::TopK { inner, .. }
        | MetricsExpr::Scalar { inner, .. } => collect_leaves(inner, out),
        MetricsExpr::Binary { lhs, rhs, .. } => {
            collect_leaves(lhs, out);
            collect_leaves(rhs, out);
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: i64,
    end: i64,
    step: i64,
    steps: usize,
}

impl Window {
    fn step_of(&self, ts: i64) -> Option<usize> {
        if ts < self.start || ts >= self.end {
            return None;
        }
        let offset = i128::from(ts) - i128::from(self.start);
        usize::try_from(offset / i128::from(self.step)).ok()
    }

    fn timestamp(&self, i: usize) -> i64 {
        // i < steps, so the result lies in [start, end) and fits.
        let ts = i128::from(self.start) + i as i128 * i128::from(self.step);
        i64::try_from(ts).unwrap_or(self.end)
    }

    fn step_seconds(&self) -> f64 {
        self.step as f64 / NANOS_PER_SECOND
    }
}

/// A log2 histogram bucket: values in `(2^(exp-1), 2^exp]`, of nanoseconds when
/// `duration` (labelled in seconds), else of the value's own unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Bucket {
    duration: bool,
    exp: u8,
}

impl Bucket {
    /// Tempo's `Log2Bucketize`: the power of two at or above the value; values below 2 have
    /// no bucket. Only integers and durations are bucketed (floats are not, as in Tempo).
    fn of(value: f64, duration: bool, integer: bool) -> Option<Self> {
        if !(duration || integer) || value < 2.0 {
            return None;
        }
        // Integers and durations are whole numbers below 2^63.
        let v = value as u64;
        let exp = 64 - (v - 1).leading_zeros();
        Some(Self {
            duration,
            exp: u8::try_from(exp).unwrap_or(u8::MAX),
        })
    }

    fn upper_bound(self) -> f64 {
        let v = 2f64.powi(i32::from(self.exp));
        if self.duration {
            v / NANOS_PER_SECOND
        } else {
            v
        }
    }
}

/// What a step of a series has seen.
#[derive(Debug, Clone, Default)]
struct Acc {
    count: u64,
    /// Neumaier-compensated sum.
    sum: f64,
    compensation: f64,
    min: f64,
    max: f64,
    buckets: Vec<(Bucket, u64)>,
}

impl Acc {
    fn add(&mut self, v: f64) {
        if self.count == 0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.count += 1;
        let t = self.sum + v;
        if self.sum.abs() >= v.abs() {
            self.compensation += (self.sum - t) + v;
        } else {
            self.compensation += (v - t) + self.sum;
        }
        self.sum = t;
    }

    fn total(&self) -> f64 {
        self.sum + self.compensation
    }

    fn add_bucket(&mut self, bucket: Bucket) {
        self.count += 1;
        match self.buckets.binary_search_by(|(b, _)| b.cmp(&bucket)) {
            Ok(i) => self.buckets[i].1 += 1,
            Err(i) => self.buckets.insert(i, (bucket, 1)),
        }
    }
}

/// Tempo's `Log2Quantile`: the bucket where the quantile falls, interpolated exponentially
/// between the bounds of that bucket and of the one below it (half its bound for the first).
fn log2_quantile(q: f64, buckets: &[(Bucket, u64)]) -> f64 {
    let total: u64 = buckets.iter().map(|(_, c)| c).sum();
    if total == 0 || q.is_nan() {
        return f64::NAN;
    }
    let wanted = ((q * total as f64).ceil() as u64).max(1);
    let mut seen = 0u64;
    let mut at = buckets.len() - 1;
    for (i, (bucket, count)) in buckets.iter().enumerate() {
        at = i;
        if seen + count > wanted {
            break;
        }
        seen += count;
        if seen == wanted {
            return bucket.upper_bound();
        }
    }
    let (bucket, count) = buckets[at];
    let fraction = (wanted - seen) as f64 / count as f64;
    let max = bucket.upper_bound().log2();
    let min = if at > 0 {
        buckets[at - 1].0.upper_bound().log2()
    } else {
        max - 1.0
    };
    2f64.powf(min + (max - min) * fraction)
}

/// The state of one first-stage function.
#[derive(Debug)]
struct Leaf {
    pipeline: Pipeline,
    func: MetricsFn,
    attr: Option<Field>,
    quantiles: Vec<f64>,
    by: Vec<Field>,
    groups: Vec<Group>,
    index: HashMap<String, usize>,
}

#[derive(Debug)]
struct Group {
    values: Vec<Static>,
    /// The histogram bucket, for `histogram_over_time`.
    bucket: Option<Bucket>,
    steps: BTreeMap<usize, Acc>,
}

impl Leaf {
    /// Counts span `i` in `step`; `false` when a new series would exceed the limit.
    fn observe(
        &mut self,
        trace: &Trace<'_, '_>,
        i: usize,
        step: usize,
        series: &mut usize,
    ) -> bool {
        let number = || {
            self.attr
                .as_ref()
                .and_then(|attr| eval::field_number(attr, trace, i))
        };
        let mut bucket = None;
        let mut value = None;
        match self.func {
            MetricsFn::Rate | MetricsFn::CountOverTime => {}
            MetricsFn::MinOverTime
            | MetricsFn::MaxOverTime
            | MetricsFn::AvgOverTime
            | MetricsFn::SumOverTime => {
                let Some((v, duration)) = number() else {
                    return true;
                };
                value = Some(if duration { v / NANOS_PER_SECOND } else { v });
            }
            MetricsFn::QuantileOverTime | MetricsFn::HistogramOverTime => {
                let Some((v, duration)) = number() else {
                    return true;
                };
                let integer = self.attr.as_ref().is_some_and(|attr| {
                    matches!(eval::field_static(attr, trace, i), Static::Int(_))
                });
                let Some(b) = Bucket::of(v, duration, integer) else {
                    return true;
                };
                bucket = Some(b);
            }
        }
        let values: Vec<Static> = self
            .by
            .iter()
            .map(|field| eval::field_static(field, trace, i))
            .collect();
        let series_bucket = (self.func == MetricsFn::HistogramOverTime)
            .then_some(bucket)
            .flatten();
        let key = format!("{values:?}{series_bucket:?}");
        let g = match self.index.get(&key) {
            Some(&g) => g,
            None => {
                let cost = if self.func == MetricsFn::QuantileOverTime {
                    self.quantiles.len()
                } else {
                    1
                };
                if *series + cost > MAX_METRICS_SERIES {
                    return false;
                }
                *series += cost;
                self.groups.push(Group {
                    values,
                    bucket: series_bucket,
                    steps: BTreeMap::new(),
                });
                self.index.insert(key, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        let acc = self.groups[g].steps.entry(step).or_default();
        match (value, bucket) {
            (Some(v), _) => acc.add(v),
            (None, Some(b)) if self.func == MetricsFn::QuantileOverTime => acc.add_bucket(b),
            _ => acc.count += 1,
        }
        true
    }

    /// The labels of a group: the `by()` fields that have a value (all nil: the first,
    /// as nil), the histogram bucket; `__name__` when ungrouped.
    fn labels(&self, group: &Group) -> Vec<(String, Static)> {
        let mut labels: Vec<(String, Static)> = self
            .by
            .iter()
            .zip(&group.values)
            .filter(|(_, v)| **v != Static::Nil)
            .map(|(field, v)| (field.to_string(), v.clone()))
            .collect();
        if let Some(bucket) = group.bucket {
            labels.push((
                BUCKET_LABEL.to_string(),
                Static::Float(bucket.upper_bound()),
            ));
        }
        let bucketed = matches!(
            self.func,
            MetricsFn::QuantileOverTime | MetricsFn::HistogramOverTime
        );
        if labels.is_empty() && !bucketed {
            match self.by.first() {
                Some(first) => labels.push((first.to_string(), Static::Nil)),
                None => labels.push((
                    NAME_LABEL.to_string(),
                    Static::Str(self.func.as_str().to_string()),
                )),
            }
        }
        labels
    }

    fn finish(self, window: &Window) -> Vec<Series> {
        let mut out = Vec::new();
        for group in &self.groups {
            let labels = self.labels(group);
            let dense = |f: &dyn Fn(Option<&Acc>) -> f64| -> Vec<f64> {
                (0..window.steps).map(|i| f(group.steps.get(&i))).collect()
            };
            match self.func {
                MetricsFn::QuantileOverTime => {
                    for &q in &self.quantiles {
                        let mut labels = labels.clone();
                        labels.push((QUANTILE_LABEL.to_string(), Static::Float(q)));
                        let values =
                            dense(&|acc| acc.map_or(f64::NAN, |a| log2_quantile(q, &a.buckets)));
                        out.push(Series { labels, values });
                    }
                }
                func => {
                    let step_seconds = window.step_seconds();
                    let values = dense(&|acc| match (func, acc) {
                        (MetricsFn::Rate, a) => a.map_or(0, |a| a.count) as f64 / step_seconds,
                        (MetricsFn::CountOverTime | MetricsFn::HistogramOverTime, a) => {
                            a.map_or(0, |a| a.count) as f64
                        }
                        (_, None) => f64::NAN,
                        (MetricsFn::MinOverTime, Some(a)) => a.min,
                        (MetricsFn::MaxOverTime, Some(a)) => a.max,
                        (MetricsFn::SumOverTime, Some(a)) => a.total(),
                        (_, Some(a)) => a.total() / a.count as f64,
                    });
                    out.push(Series { labels, values });
                }
            }
        }
        out.sort_by_cached_key(|s| label_key(&s.labels, true));
        out
    }
}

/// A series while the expression is evaluated: one value per step, NaN where it has none.
#[derive(Debug, Clone)]
struct Series {
    labels: Vec<(String, Static)>,
    values: Vec<f64>,
}

/// Text identifying a label set; without `__name__` it is the key series are matched on.
fn label_key(labels: &[(String, Static)], with_name: bool) -> String {
    let kept: Vec<&(String, Static)> = labels
        .iter()
        .filter(|(name, _)| with_name || name != NAME_LABEL)
        .collect();
    format!("{kept:?}")
}

fn evaluate(expr: &MetricsExpr, leaves: &mut impl Iterator<Item = Vec<Series>>) -> Vec<Series> {
    match expr {
        MetricsExpr::Leaf { .. } => leaves.next().unwrap_or_default(),
        MetricsExpr::Filter { inner, op, value } => {
            let mut series = evaluate(inner, leaves);
            for s in &mut series {
                for v in &mut s.values {
                    if !v.is_nan() && !holds(*op, *v, *value) {
                        *v = f64::NAN;
                    }
                }
            }
            series
        }
        MetricsExpr::TopK { inner, bottom, k } => top_k(evaluate(inner, leaves), *bottom, *k),
        MetricsExpr::Scalar {
            op,
            inner,
            value,
            scalar_left,
        } => {
            let mut series = evaluate(inner, leaves);
            for s in &mut series {
                for v in &mut s.values {
                    *v = if *scalar_left {
                        apply(*op, *value, *v)
                    } else {
                        apply(*op, *v, *value)
                    };
                }
            }
            series
        }
        MetricsExpr::Binary { op, lhs, rhs } => {
            let l = evaluate(lhs, leaves);
            let r = evaluate(rhs, leaves);
            binary(*op, &l, &r)
        }
    }
}

fn holds(op: CmpOp, v: f64, threshold: f64) -> bool {
    match op {
        CmpOp::Eq => v == threshold,
        CmpOp::Ne => v != threshold,
        CmpOp::Gt => v > threshold,
        CmpOp::Ge => v >= threshold,
        CmpOp::Lt => v < threshold,
        CmpOp::Le => v <= threshold,
        CmpOp::Regex | CmpOp::NotRegex => false,
    }
}

/// Tempo's arithmetic on points: NaN (no value) stays NaN, and so does a division by zero.
fn apply(op: ArithOp, l: f64, r: f64) -> f64 {
    match op {
        ArithOp::Add => l + r,
        ArithOp::Sub => l - r,
        ArithOp::Mul => l * r,
        ArithOp::Div if r == 0.0 => f64::NAN,
        ArithOp::Div => l / r,
        ArithOp::Mod | ArithOp::Pow => f64::NAN,
    }
}

/// At each step, the `k` series with the highest (`bottom`: lowest) values there; a series
/// keeps only the points where it was chosen, and is dropped if it never was. Ties go to
/// the series whose labels sort first.
fn top_k(series: Vec<Series>, bottom: bool, k: u64) -> Vec<Series> {
    let mut order: Vec<usize> = (0..series.len()).collect();
    order.sort_by_cached_key(|&i| label_key(&series[i].labels, true));
    let steps = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let k = usize::try_from(k).unwrap_or(usize::MAX);
    let mut candidates: Vec<(usize, f64)> = Vec::with_capacity(series.len());
    let picks: Vec<Vec<usize>> = (0..steps)
        .map(|step| {
            candidates.clear();
            candidates.extend(
                order
                    .iter()
                    .filter_map(|&i| series[i].values.get(step).map(|v| (i, *v)))
                    .filter(|(_, v)| !v.is_nan()),
            );
            // A stable sort keeps the label order among equal values.
            candidates.sort_by(|a, b| {
                let ord = a.1.total_cmp(&b.1);
                if bottom { ord } else { ord.reverse() }
            });
            candidates.iter().take(k).map(|&(i, _)| i).collect()
        })
        .collect();
    let mut chosen = vec![vec![false; steps]; series.len()];
    for (step, picked) in picks.iter().enumerate() {
        for &i in picked {
            chosen[i][step] = true;
        }
    }
    series
        .into_iter()
        .zip(chosen)
        .filter(|(_, c)| c.iter().any(|&x| x))
        .map(|(mut s, c)| {
            for (v, keep) in s.values.iter_mut().zip(c) {
                if !keep {
                    *v = f64::NAN;
                }
            }
            s
        })
        .collect()
}

/// Arithmetic between two sets of series, as Tempo matches them: series with equal labels
/// (`__name__` aside) pair up, and a series without labels (an ungrouped function) pairs
/// with every series of the other side. The result carries the left labels, then the right
/// ones the left lacks; `__name__` becomes `(left op right)` when both sides have one.
fn binary(op: ArithOp, lhs: &[Series], rhs: &[Series]) -> Vec<Series> {
    let index = |set: &[Series]| -> HashMap<String, usize> {
        set.iter()
            .enumerate()
            .map(|(i, s)| (label_key(&s.labels, false), i))
            .collect()
    };
    let (l_index, r_index) = (index(lhs), index(rhs));
    let unlabelled = label_key(&[], false);
    let target = if r_index.contains_key(&unlabelled) {
        lhs
    } else {
        rhs
    };
    let find = |set: &[Series], idx: &HashMap<String, usize>, key: &str| {
        idx.get(key)
            .or_else(|| idx.get(&unlabelled))
            .map(|&i| set[i].clone())
    };
    let mut out = Vec::new();
    for t in target {
        let key = label_key(&t.labels, false);
        let (Some(l), Some(r)) = (find(lhs, &l_index, &key), find(rhs, &r_index, &key)) else {
            continue;
        };
        let values = l
            .values
            .iter()
            .zip(&r.values)
            .map(|(a, b)| apply(op, *a, *b))
            .collect();
        out.push(Series {
            labels: merge_labels(op, &l.labels, &r.labels),
            values,
        });
    }
    out
}

fn merge_labels(
    op: ArithOp,
    l: &[(String, Static)],
    r: &[(String, Static)],
) -> Vec<(String, Static)> {
    let mut out = l.to_vec();
    for (name, value) in r {
        if name != NAME_LABEL && !l.iter().any(|(n, _)| n == name) {
            out.push((name.clone(), value.clone()));
        }
    }
    let name_of = |labels: &[(String, Static)]| {
        labels.iter().find_map(|(n, v)| match v {
            Static::Str(s) if n == NAME_LABEL => Some(s.clone()),
            _ => None,
        })
    };
    match (name_of(l), name_of(r)) {
        (Some(a), Some(b)) => {
            let symbol = match op {
                ArithOp::Add => "+",
                ArithOp::Sub => "-",
                ArithOp::Mul => "*",
                ArithOp::Div => "/",
                ArithOp::Mod => "%",
                ArithOp::Pow => "^",
            };
            for (n, v) in &mut out {
                if n == NAME_LABEL {
                    *v = Static::Str(format!("({a} {symbol} {b})"));
                }
            }
        }
        _ => out.retain(|(n, _)| n != NAME_LABEL),
    }
    out
}
