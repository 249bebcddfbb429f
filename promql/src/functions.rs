//! PromQL functions: those over range vectors (evaluated per series per step over a window
//! of samples), those over instant vectors and scalars (per step), and the label functions
//! (per series).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use sightline_model::{Labels, METRIC_NAME_LABEL, MatchOp};

use crate::QueryError;
use crate::eval::{Ev, H, Point, Result, Sample, Series, merge_same_labelsets, notes};
use crate::histogram::{CounterResetHint, FloatHistogram};
use crate::labels::{Lbls, drop_metric_name, metric_name};
use crate::plan::{CallNode, Func, Node, Selector};
use crate::quantile::{Bucket, bucket_fraction, bucket_quantile, quantile};

/// Go's `math.Max`: +Inf wins over NaN, NaN otherwise propagates, +0 beats -0.
pub(crate) fn go_max(a: f64, b: f64) -> f64 {
    if a == f64::INFINITY || b == f64::INFINITY {
        return f64::INFINITY;
    }
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { b } else { a };
    }
    if a > b { a } else { b }
}

/// Go's `math.Min`: -Inf wins over NaN, NaN otherwise propagates, -0 beats +0.
pub(crate) fn go_min(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY || b == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { a } else { b };
    }
    if a < b { a } else { b }
}

/// Kahan-Neumaier summation step (Prometheus's `kahansum.Inc`): returns the new sum and
/// compensation.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Go's `%g` (shortest representation, exponent form outside 1e-4..1e6).
pub(crate) fn go_fmt_g(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let e = format!("{f:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`, the text `count_values` puts in labels.
pub(crate) fn go_fmt_f(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{f}")
    }
}

/// Prometheus's `FormatOpenMetricsFloat`: `%g`, with `.0` added to integral values.
fn openmetrics_float(f: f64) -> String {
    let s = go_fmt_g(f);
    if f.is_finite() && !s.contains(['e', '.']) {
        format!("{s}.0")
    } else {
        s
    }
}

/// Go's `strconv.ParseFloat` for label values such as `le`: also accepts `Inf`, `+inf`,
/// `infinity`, `NaN` in any case.
pub(crate) fn go_parse_float(s: &str) -> Option<f64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => {
            if body.is_empty()
                || !body
                    .bytes()
                    .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
            {
                return None;
            }
            body.parse::<f64>().ok()?
        }
    };
    Some(if neg { -v } else { v })
}

fn unwrap_step_invariant(n: &Node) -> &Node {
    match n {
        Node::StepInvariant(inner) => inner,
        other => other,
    }
}

fn string_arg(n: &Node) -> Result<&str> {
    match n {
        Node::Str(s) => Ok(s),
        _ => Err(QueryError::Execution("expected a string argument".into())),
    }
}

fn float_sample(labels: Lbls, t: i64, f: f64, drop_name: bool) -> Sample {
    Sample {
        labels,
        t,
        f,
        h: None,
        drop_name,
    }
}

pub(crate) fn eval_call(ev: &Ev, c: &CallNode) -> Result<Vec<Series>> {
    match c.func {
        Func::Timestamp => {
            if let Node::VectorSel(sel) = unwrap_step_invariant(&c.args[0]) {
                return timestamp_of_selector(ev, sel);
            }
        }
        Func::LabelReplace => return label_replace(ev, c),
        Func::LabelJoin => return label_join(ev, c),
        _ => {}
    }
    if let Some(i) = c.args.iter().position(|a| {
        matches!(
            unwrap_step_invariant(a),
            Node::MatrixSel { .. } | Node::Subquery(_)
        )
    }) {
        return eval_range_function(ev, c, i);
    }
    if matches!(
        c.func,
        Func::Sort | Func::SortDesc | Func::SortByLabel | Func::SortByLabelDesc
    ) && ev.cx.q_step != 0
    {
        ev.cx.warn(
            "PromQL warning: sort is ineffective for range queries since results are always ordered by labels".into(),
            c.pos,
        );
    }
    let mut inputs = Vec::with_capacity(c.args.len());
    for a in &c.args {
        inputs.push(match a {
            Node::Str(_) => Vec::new(),
            a => ev.eval_matrix(a)?,
        });
    }
    let strings: Vec<Option<&str>> = c
        .args
        .iter()
        .map(|a| match a {
            Node::Str(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    let absent_labels = if c.func == Func::Absent {
        Some(Arc::new(absent_labels(&c.args[0])))
    } else {
        None
    };
    ev.range_eval(&inputs, |t, v, out| {
        instant_function(ev, c, t, v, &strings, absent_labels.as_ref(), out)
    })
}

/// `timestamp(selector)`: the time of the sample each series contributes, not the step time.
fn timestamp_of_selector(ev: &Ev, sel: &Selector) -> Result<Vec<Series>> {
    let data = &ev.cx.data[sel.id];
    let mut out = Vec::new();
    for s in data {
        let mut points = Vec::new();
        for t in ev.steps() {
            if let Some(p) = ev.cx.lookup(&s.all, sel.at.unwrap_or(t) - sel.offset) {
                points.push(Point::float(t, p.t as f64 / 1000.0));
            }
        }
        if !points.is_empty() {
            out.push(Series {
                labels: s.labels.clone(),
                drop_name: true,
                points,
            });
        }
    }
    Ok(out)
}

/// The labels `absent()` gives its series: the selector's equality matchers (a name matched
/// twice is dropped), without the metric name.
fn absent_labels(arg: &Node) -> Labels {
    let matchers = match unwrap_step_invariant(arg) {
        Node::VectorSel(sel) | Node::MatrixSel { sel, .. } => &sel.matchers,
        _ => return Labels::default(),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut has: Vec<&str> = Vec::new();
    for m in matchers {
        if m.name == METRIC_NAME_LABEL {
            continue;
        }
        if m.op == MatchOp::Equal && !has.contains(&m.name.as_str()) {
            pairs.push((m.name.clone(), m.value.clone()));
            has.push(&m.name);
        } else {
            pairs.retain(|(k, _)| *k != m.name);
        }
    }
    Labels::from_pairs(pairs)
}

/// One series a range function reads windows from.
struct WindowSeries<'a> {
    labels: &'a Lbls,
    points: &'a [Point],
    has_histograms: bool,
}

fn eval_range_function(ev: &Ev, c: &CallNode, matrix_idx: usize) -> Result<Vec<Series>> {
    let mut scalars: Vec<Vec<f64>> = Vec::new();
    for (j, a) in c.args.iter().enumerate() {
        if j != matrix_idx && !matches!(a, Node::Str(_)) {
            scalars.push(ev.eval_scalar_steps(a)?);
        }
    }
    let evaluated: Vec<(Lbls, Vec<Point>, bool)>;
    let (series, range, offset, at): (Vec<WindowSeries>, i64, i64, Option<i64>) =
        match unwrap_step_invariant(&c.args[matrix_idx]) {
            Node::MatrixSel { sel, range } => (
                ev.cx.data[sel.id]
                    .iter()
                    .map(|s| WindowSeries {
                        labels: &s.labels,
                        points: s.clean(),
                        has_histograms: s.has_histograms,
                    })
                    .collect(),
                *range,
                sel.offset,
                sel.at,
            ),
            Node::Subquery(sq) => {
                let m = ev.eval_subquery(sq)?;
                // A subquery result is a new series: names its expression dropped are gone,
                // and counter reset hints no longer describe neighbouring samples.
                evaluated = m
                    .into_iter()
                    .map(|s| {
                        let labels = if s.drop_name {
                            Arc::new(drop_metric_name(&s.labels))
                        } else {
                            s.labels
                        };
                        let mut has = false;
                        let points = s
                            .points
                            .into_iter()
                            .map(|mut p| {
                                if let Some(h) = &mut p.h {
                                    has = true;
                                    if matches!(
                                        h.counter_reset_hint,
                                        CounterResetHint::CounterReset
                                            | CounterResetHint::NotCounterReset
                                    ) {
                                        Arc::make_mut(h).counter_reset_hint =
                                            CounterResetHint::Unknown;
                                    }
                                }
                                p
                            })
                            .collect();
                        (labels, points, has)
                    })
                    .collect();
                (
                    evaluated
                        .iter()
                        .map(|(l, p, h)| WindowSeries {
                            labels: l,
                            points: p,
                            has_histograms: *h,
                        })
                        .collect(),
                    sq.range,
                    sq.offset,
                    sq.at,
                )
            }
            _ => unreachable!("matrix argument checked by the caller"),
        };
    let scalar = |k: usize, step: usize| -> f64 {
        scalars
            .get(k)
            .and_then(|v| v.get(step).copied())
            .unwrap_or(f64::NAN)
    };
    if c.func == Func::DoubleExponentialSmoothing && ev.num_steps() > 0 {
        let (sf, tf) = (scalar(0, 0), scalar(1, 0));
        if sf <= 0.0 || sf >= 1.0 || sf.is_nan() {
            return Err(QueryError::Execution(format!(
                "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
            )));
        }
        if tf <= 0.0 || tf >= 1.0 || tf.is_nan() {
            return Err(QueryError::Execution(format!(
                "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
            )));
        }
    }
    let drop_name = !matches!(c.func, Func::LastOverTime | Func::FirstOverTime);
    let rc = RangeCall {
        ev,
        c,
        arg_pos: c.arg(matrix_idx),
    };
    let mut out = Vec::new();
    let mut total = 0usize;
    for ws in series {
        let name = metric_name(ws.labels);
        let mut points = Vec::new();
        for (step, t) in ev.steps().enumerate() {
            let end = at.unwrap_or(t) - offset;
            let w = ev.cx.window(ws.points, end, range);
            if w.is_empty() {
                continue;
            }
            ev.cx.check_samples(total + points.len() + w.len())?;
            let args = WindowArgs {
                w,
                t,
                range_start: end - range,
                range_end: end,
                range,
                closed: ev.cx.closed,
                has_histograms: ws.has_histograms && w.iter().any(|p| p.h.is_some()),
                name,
            };
            if let Some((f, h)) = rc.apply(&args, scalar(0, step), scalar(1, step)) {
                points.push(Point { t, f, h });
            }
        }
        if points.is_empty() {
            continue;
        }
        if matches!(c.func, Func::Rate | Func::Increase)
            && !name.is_empty()
            && points.iter().any(|p| p.h.is_none())
            && !["_total", "_sum", "_count", "_bucket"]
                .iter()
                .any(|s| name.ends_with(s))
        {
            ev.cx.info(notes::possible_non_counter(name), rc.arg_pos);
        }
        total += points.len();
        out.push(Series {
            labels: ws.labels.clone(),
            drop_name,
            points,
        });
    }
    if c.func == Func::AbsentOverTime {
        return Ok(absent_over_time(ev, &c.args[matrix_idx], out));
    }
    Ok(out)
}

/// `absent_over_time`: 1 at the steps where no series had samples.
fn absent_over_time(ev: &Ev, arg: &Node, found: Vec<Series>) -> Vec<Series> {
    let steps = ev.num_steps();
    if found.iter().any(|s| s.points.len() == steps) {
        return Vec::new();
    }
    let mut seen = std::collections::HashSet::new();
    for s in &found {
        for p in &s.points {
            seen.insert(p.t);
        }
    }
    let points: Vec<Point> = ev
        .steps()
        .filter(|t| !seen.contains(t))
        .map(|t| Point::float(t, 1.0))
        .collect();
    if points.is_empty() {
        return Vec::new();
    }
    vec![Series {
        labels: Arc::new(absent_labels(arg)),
        drop_name: true,
        points,
    }]
}

struct WindowArgs<'a> {
    w: &'a [Point],
    /// The evaluation step time.
    t: i64,
    range_start: i64,
    range_end: i64,
    range: i64,
    closed: bool,
    has_histograms: bool,
    name: &'a str,
}

impl<'a> WindowArgs<'a> {
    /// The float samples of the window.
    fn floats(&self) -> Cow<'a, [Point]> {
        if self.has_histograms {
            Cow::Owned(self.w.iter().filter(|p| p.h.is_none()).cloned().collect())
        } else {
            Cow::Borrowed(self.w)
        }
    }

    fn histograms(&self) -> Vec<(i64, &'a H)> {
        if !self.has_histograms {
            return Vec::new();
        }
        self.w
            .iter()
            .filter_map(|p| p.h.as_ref().map(|h| (p.t, h)))
            .collect()
    }
}

/// One range-function call: where its annotations go.
struct RangeCall<'a> {
    ev: &'a Ev<'a>,
    c: &'a CallNode,
    /// Position of the range argument.
    arg_pos: usize,
}

type FnValue = (f64, Option<H>);

impl RangeCall<'_> {
    fn warn(&self, msg: String) {
        self.ev.cx.warn(msg, self.arg_pos);
    }

    fn info(&self, msg: String) {
        self.ev.cx.info(msg, self.arg_pos);
    }

    /// The float samples of a window for functions that ignore histograms, with the
    /// Prometheus info when histograms were ignored.
    fn floats_only<'w>(&self, a: &WindowArgs<'w>) -> Option<Cow<'w, [Point]>> {
        let floats = a.floats();
        if floats.is_empty() {
            return None;
        }
        if a.has_histograms {
            self.info(notes::ignored_in_mixed_range(a.name));
        }
        Some(floats)
    }

    fn apply(&self, a: &WindowArgs, p0: f64, p1: f64) -> Option<FnValue> {
        let w = a.w;
        let float = |f: f64| Some((f, None));
        match self.c.func {
            Func::Rate => self.extrapolated_rate(a, true, true),
            Func::Increase => self.extrapolated_rate(a, true, false),
            Func::Delta => self.extrapolated_rate(a, false, false),
            Func::Irate => self.instant_value(a, true),
            Func::Idelta => self.instant_value(a, false),
            Func::AvgOverTime | Func::SumOverTime => self.sum_or_avg_over_time(a),
            Func::CountOverTime => float(w.len() as f64),
            Func::PresentOverTime | Func::AbsentOverTime => float(1.0),
            Func::LastOverTime => {
                let p = &w[w.len() - 1];
                Some((p.f, p.h.clone()))
            }
            Func::FirstOverTime => Some((w[0].f, w[0].h.clone())),
            Func::TsOfFirstOverTime => float(w[0].t as f64 / 1000.0),
            Func::TsOfLastOverTime => float(w[w.len() - 1].t as f64 / 1000.0),
            Func::MinOverTime => {
                float(compare_over_time(&self.floats_only(a)?, |c, m| c < m || m.is_nan()).1)
            }
            Func::MaxOverTime => {
                float(compare_over_time(&self.floats_only(a)?, |c, m| c > m || m.is_nan()).1)
            }
            Func::TsOfMinOverTime => {
                float(compare_over_time(&self.floats_only(a)?, |c, m| c <= m || m.is_nan()).0)
            }
            Func::TsOfMaxOverTime => {
                float(compare_over_time(&self.floats_only(a)?, |c, m| c >= m || m.is_nan()).0)
            }
            Func::QuantileOverTime => {
                let fl = self.floats_only(a)?;
                if p0.is_nan() || !(0.0..=1.0).contains(&p0) {
                    self.ev.cx.warn(notes::invalid_quantile(p0), self.c.arg(0));
                }
                let mut vals: Vec<f64> = fl.iter().map(|p| p.f).collect();
                float(quantile(p0, &mut vals))
            }
            Func::MadOverTime => {
                let fl = self.floats_only(a)?;
                if fl.iter().any(|p| p.f.is_nan()) {
                    return float(f64::NAN);
                }
                let mut vals: Vec<f64> = fl.iter().map(|p| p.f).collect();
                let median = quantile(0.5, &mut vals);
                let mut dev: Vec<f64> = fl.iter().map(|p| (p.f - median).abs()).collect();
                float(quantile(0.5, &mut dev))
            }
            Func::StddevOverTime => float(variance_over_time(&self.floats_only(a)?).sqrt()),
            Func::StdvarOverTime => float(variance_over_time(&self.floats_only(a)?)),
            Func::Changes | Func::Resets => {
                float(changes_or_resets(w, self.c.func == Func::Resets))
            }
            Func::Deriv | Func::PredictLinear | Func::DoubleExponentialSmoothing => {
                let fl = a.floats();
                if fl.len() < 2 {
                    if fl.len() == 1 && a.has_histograms {
                        self.info(notes::ignored_in_mixed_range(a.name));
                    }
                    return None;
                }
                if a.has_histograms {
                    self.info(notes::ignored_in_mixed_range(a.name));
                }
                match self.c.func {
                    Func::Deriv => float(linear_regression(&fl, fl[0].t).0),
                    Func::PredictLinear => {
                        let (slope, intercept) = linear_regression(&fl, a.t);
                        float(slope * p0 + intercept)
                    }
                    _ => float(double_exponential_smoothing(&fl, p0, p1)?),
                }
            }
            _ => None,
        }
    }

    /// `rate`, `increase` and `delta`: the change over the window, corrected for counter
    /// resets and extrapolated towards the window's edges as Prometheus's
    /// `extrapolatedRate` does.
    fn extrapolated_rate(
        &self,
        a: &WindowArgs,
        is_counter: bool,
        is_rate: bool,
    ) -> Option<FnValue> {
        let hists = a.histograms();
        let floats = a.floats();
        if !hists.is_empty() && !floats.is_empty() {
            self.warn(notes::mixed_floats_histograms(a.name));
            return None;
        }
        let (first_t, last_t, n, first_count, result_f, mut result_h);
        if hists.len() > 1 {
            result_h = Some(self.histogram_rate(&hists, is_counter, a.name)?);
            first_t = hists[0].0;
            last_t = hists[hists.len() - 1].0;
            n = hists.len();
            first_count = hists[0].1.count;
            result_f = 0.0;
        } else if floats.len() > 1 {
            let (first, last) = (&floats[0], &floats[floats.len() - 1]);
            let mut r = last.f - first.f;
            if is_counter {
                for p in floats.windows(2) {
                    if p[1].f < p[0].f {
                        r += p[0].f;
                    }
                }
            }
            first_t = first.t;
            last_t = last.t;
            n = floats.len();
            first_count = first.f;
            result_f = r;
            result_h = None;
        } else {
            return None;
        }
        let growth = result_h.as_ref().map_or(result_f, |h| h.count);
        let mut to_start = (first_t - a.range_start) as f64 / 1000.0;
        let mut to_end = (a.range_end - last_t) as f64 / 1000.0;
        let sampled = (last_t - first_t) as f64 / 1000.0;
        let avg = sampled / (n - 1) as f64;
        let threshold = avg * 1.1;
        let range_secs = a.range as f64 / 1000.0;
        let factor = if a.closed {
            // Prometheus before 2.51 (the 2.42 the differential test runs): the counter's
            // zero point limits `to_start` before the threshold check, so a series that
            // starts inside the window with its zero point within 1.1 intervals of its
            // first sample is extrapolated up to 1.1 intervals back. 2.51 (PR #13725) and
            // 3.x check the threshold first and extrapolate at most half an interval (the
            // branch below). `docs/metrics.md` documents the difference.
            if is_counter && growth > 0.0 && first_count >= 0.0 {
                let to_zero = sampled * (first_count / growth);
                if to_zero < to_start {
                    to_start = to_zero;
                }
            }
            let mut interval = sampled;
            interval += if to_start < threshold {
                to_start
            } else {
                avg / 2.0
            };
            interval += if to_end < threshold {
                to_end
            } else {
                avg / 2.0
            };
            let f = interval / sampled;
            if is_rate { f / range_secs } else { f }
        } else {
            if to_start >= threshold {
                to_start = avg / 2.0;
            }
            if is_counter {
                let mut to_zero = to_start;
                if growth > 0.0 && first_count >= 0.0 {
                    to_zero = sampled * (first_count / growth);
                }
                if to_zero < to_start {
                    to_start = to_zero;
                }
            }
            if to_end >= threshold {
                to_end = avg / 2.0;
            }
            let f = (sampled + to_start + to_end) / sampled;
            if is_rate { f / range_secs } else { f }
        };
        match &mut result_h {
            Some(h) => {
                Arc::make_mut(h).mul(factor);
                Some((0.0, result_h))
            }
            None => Some((result_f * factor, None)),
        }
    }

    /// The increase between the first and last histogram, with counter resets (Prometheus's
    /// `histogramRate`).
    fn histogram_rate(&self, pts: &[(i64, &H)], is_counter: bool, name: &str) -> Option<H> {
        let mut prev: FloatHistogram = (**pts[0].1).clone();
        let last = pts[pts.len() - 1].1;
        if is_counter
            && (prev.counter_reset_hint == CounterResetHint::Gauge
                || last.counter_reset_hint == CounterResetHint::Gauge)
        {
            self.warn(notes::not_counter(name));
        }
        if is_counter && pts.len() > 1 && pts[1].1.detect_reset(&prev) {
            let second = pts[1].1;
            prev = FloatHistogram {
                schema: second.schema,
                custom_values: second.custom_values.clone(),
                ..FloatHistogram::default()
            };
        }
        if last.uses_custom_buckets() != prev.uses_custom_buckets() {
            self.warn(notes::mixed_exponential_custom(name));
            return None;
        }
        let mut min_schema = last.schema.min(prev.schema);
        for (_, cur) in &pts[1..pts.len() - 1] {
            if !is_counter {
                continue;
            }
            if cur.counter_reset_hint == CounterResetHint::Gauge {
                self.warn(notes::not_counter(name));
            }
            min_schema = min_schema.min(cur.schema);
            if cur.uses_custom_buckets() != prev.uses_custom_buckets() {
                self.warn(notes::mixed_exponential_custom(name));
                return None;
            }
        }
        let mut h = last.to_schema(min_schema);
        match h.sub(&prev) {
            Err(_) => {
                self.warn(notes::mixed_exponential_custom(name));
                return None;
            }
            Ok(true) => self.info(notes::reconciled("subtraction")),
            Ok(false) => {}
        }
        if is_counter {
            let mut p: &FloatHistogram = &prev;
            for (_, cur) in &pts[1..] {
                if cur.detect_reset(p) {
                    match h.add(p) {
                        Err(_) => {
                            self.warn(notes::mixed_exponential_custom(name));
                            return None;
                        }
                        Ok(true) => self.info(notes::reconciled("addition")),
                        Ok(false) => {}
                    }
                }
                p = cur;
            }
        } else if pts[0].1.counter_reset_hint != CounterResetHint::Gauge
            || last.counter_reset_hint != CounterResetHint::Gauge
        {
            self.warn(notes::not_gauge(name));
        }
        h.counter_reset_hint = CounterResetHint::Gauge;
        Some(Arc::new(h))
    }

    /// `irate` and `idelta`: from the last two samples.
    fn instant_value(&self, a: &WindowArgs, is_rate: bool) -> Option<FnValue> {
        let w = a.w;
        if w.len() < 2 {
            return None;
        }
        let (prev, last) = (&w[w.len() - 2], &w[w.len() - 1]);
        let interval = last.t - prev.t;
        if interval == 0 {
            return None;
        }
        let secs = interval as f64 / 1000.0;
        match (&prev.h, &last.h) {
            (None, None) => {
                let mut result = last.f;
                if !is_rate || last.f >= prev.f || last.f.is_nan() || prev.f.is_nan() {
                    result = last.f - prev.f;
                }
                if is_rate {
                    result /= secs;
                }
                Some((result, None))
            }
            (Some(ph), Some(lh)) => {
                let mut r: FloatHistogram = (**lh).clone();
                if is_rate
                    && (lh.counter_reset_hint == CounterResetHint::Gauge
                        || ph.counter_reset_hint == CounterResetHint::Gauge)
                {
                    self.warn(notes::not_counter(a.name));
                }
                if !is_rate
                    && (lh.counter_reset_hint != CounterResetHint::Gauge
                        || ph.counter_reset_hint != CounterResetHint::Gauge)
                {
                    self.warn(notes::not_gauge(a.name));
                }
                if !is_rate || !lh.detect_reset(ph) {
                    match r.sub(ph) {
                        Err(_) => {
                            self.warn(notes::mixed_exponential_custom(a.name));
                            return None;
                        }
                        Ok(true) => self.info(notes::reconciled("subtraction")),
                        Ok(false) => {}
                    }
                }
                r.counter_reset_hint = CounterResetHint::Gauge;
                if is_rate {
                    r.div(secs);
                }
                Some((0.0, Some(Arc::new(r))))
            }
            _ => {
                self.warn(notes::mixed_floats_histograms(a.name));
                None
            }
        }
    }

    fn sum_or_avg_over_time(&self, a: &WindowArgs) -> Option<FnValue> {
        let avg = self.c.func == Func::AvgOverTime;
        if !a.has_histograms {
            return Some((
                if avg {
                    avg_over_time(a.w)
                } else {
                    sum_over_time(a.w)
                },
                None,
            ));
        }
        let hists = a.histograms();
        if hists.len() != a.w.len() {
            self.warn(notes::mixed_floats_histograms(a.name));
            return None;
        }
        let mut sum: FloatHistogram = (**hists[0].1).clone();
        let (mut reset, mut not_reset) = (false, false);
        let mut track = |h: &FloatHistogram| match h.counter_reset_hint {
            CounterResetHint::CounterReset => reset = true,
            CounterResetHint::NotCounterReset => not_reset = true,
            _ => {}
        };
        track(&sum);
        let mut reconciled = false;
        for (_, h) in &hists[1..] {
            track(h);
            match sum.add(h) {
                Err(_) => {
                    self.warn(notes::mixed_exponential_custom(a.name));
                    return None;
                }
                Ok(r) => reconciled |= r,
            }
        }
        if reset && not_reset {
            self.warn(notes::counter_reset_collision("aggregation"));
        }
        if reconciled {
            self.info(notes::reconciled("aggregation"));
        }
        if avg {
            sum.div(hists.len() as f64);
        }
        Some((0.0, Some(Arc::new(sum))))
    }
}

fn sum_over_time(w: &[Point]) -> f64 {
    let (mut sum, mut c) = (0.0, 0.0);
    for p in w {
        (sum, c) = kahan_inc(p.f, sum, c);
    }
    if sum.is_infinite() { sum } else { sum + c }
}

/// `changes` and `resets` over a window that may mix floats and histograms: a change of
/// sample type counts as both.
fn changes_or_resets(w: &[Point], resets: bool) -> f64 {
    let mut n = 0;
    for pair in w.windows(2) {
        let (prev, cur) = (&pair[0], &pair[1]);
        let hit = match (&prev.h, &cur.h) {
            (None, None) => {
                if resets {
                    cur.f < prev.f
                } else {
                    cur.f != prev.f && !(cur.f.is_nan() && prev.f.is_nan())
                }
            }
            (Some(p), Some(c)) => {
                if resets {
                    c.detect_reset(p)
                } else {
                    !c.equals(p)
                }
            }
            _ => true,
        };
        if hit {
            n += 1;
        }
    }
    n as f64
}

/// The mean with Kahan summation, falling back to an incremental mean if the sum would
/// overflow (as Prometheus does).
fn avg_over_time(w: &[Point]) -> f64 {
    let (mut sum, mut count) = (w[0].f, 1.0f64);
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for (i, p) in w.iter().enumerate().skip(1) {
        count = (i + 1) as f64;
        if !incremental {
            let (ns, nc) = kahan_inc(p.f, sum, c);
            if !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(p.f / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

/// Returns (timestamp in seconds, value) of the sample preferred by `better`.
fn compare_over_time(w: &[Point], better: impl Fn(f64, f64) -> bool) -> (f64, f64) {
    let (mut best, mut ts) = (w[0].f, w[0].t);
    for p in w {
        if better(p.f, best) {
            best = p.f;
            ts = p.t;
        }
    }
    (ts as f64 / 1000.0, best)
}

fn variance_over_time(w: &[Point]) -> f64 {
    let mut count = 0.0;
    let (mut mean, mut c_mean) = (0.0, 0.0);
    let (mut aux, mut c_aux) = (0.0, 0.0);
    for p in w {
        count += 1.0;
        let delta = p.f - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (p.f - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// Least-squares slope and intercept at `intercept_time` (Kahan-summed, as Prometheus).
fn linear_regression(w: &[Point], intercept_time: i64) -> (f64, f64) {
    let mut n = 0.0;
    let (mut sum_x, mut c_x) = (0.0, 0.0);
    let (mut sum_y, mut c_y) = (0.0, 0.0);
    let (mut sum_xy, mut c_xy) = (0.0, 0.0);
    let (mut sum_x2, mut c_x2) = (0.0, 0.0);
    let init_y = w[0].f;
    let mut const_y = true;
    for (i, p) in w.iter().enumerate() {
        if const_y && i > 0 && p.f != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t - intercept_time) as f64 / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(p.f, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * p.f, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

fn double_exponential_smoothing(w: &[Point], sf: f64, tf: f64) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let trend = |i: usize, s0: f64, s1: f64, b: f64| -> f64 {
        if i == 0 {
            return b;
        }
        tf * (s1 - s0) + (1.0 - tf) * b
    };
    let mut s0 = 0.0;
    let mut s1 = w[0].f;
    let mut b = w[1].f - w[0].f;
    for (i, p) in w.iter().enumerate().skip(1) {
        let x = sf * p.f;
        b = trend(i - 1, s0, s1, b);
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

/// Civil date and time of a Unix time in seconds (UTC), for the date functions.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    weekday: u32,
    yday: u32,
}

fn civil(secs: i64) -> Civil {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    const CUM: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = CUM[(month - 1) as usize] + day + u32::from(leap && month > 2);
    Civil {
        year,
        month,
        day,
        hour: (rem / 3600) as u32,
        minute: (rem % 3600 / 60) as u32,
        weekday: (days + 4).rem_euclid(7) as u32,
        yday,
    }
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

fn date_part(f: Func, c: &Civil) -> f64 {
    match f {
        Func::DaysInMonth => days_in_month(c.year, c.month) as f64,
        Func::DayOfMonth => c.day as f64,
        Func::DayOfWeek => c.weekday as f64,
        Func::DayOfYear => c.yday as f64,
        Func::Hour => c.hour as f64,
        Func::Minute => c.minute as f64,
        Func::Month => c.month as f64,
        _ => c.year as f64,
    }
}

/// Go's `int64(f)` for a float of seconds (saturating; NaN becomes the minimum, as on amd64).
fn go_float_to_i64(f: f64) -> i64 {
    if f.is_nan() { i64::MIN } else { f as i64 }
}

fn simple_math(f: Func, v: f64) -> f64 {
    match f {
        Func::Abs => v.abs(),
        Func::Ceil => v.ceil(),
        Func::Floor => v.floor(),
        Func::Exp => v.exp(),
        Func::Sqrt => v.sqrt(),
        Func::Ln => v.ln(),
        Func::Log2 => v.log2(),
        Func::Log10 => v.log10(),
        Func::Sin => v.sin(),
        Func::Cos => v.cos(),
        Func::Tan => v.tan(),
        Func::Asin => v.asin(),
        Func::Acos => v.acos(),
        Func::Atan => v.atan(),
        Func::Sinh => v.sinh(),
        Func::Cosh => v.cosh(),
        Func::Tanh => v.tanh(),
        Func::Asinh => v.asinh(),
        Func::Acosh => v.acosh(),
        Func::Atanh => v.atanh(),
        Func::Rad => v * std::f64::consts::PI / 180.0,
        Func::Deg => v * 180.0 / std::f64::consts::PI,
        Func::Sgn => {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        }
        _ => f64::NAN,
    }
}

fn scalar_out(ev: &Ev, t: i64, f: f64, out: &mut Vec<Sample>) {
    out.push(float_sample(ev.cx.empty.clone(), t, f, false));
}

fn first_value(v: &[Sample]) -> f64 {
    v.iter().find(|s| s.h.is_none()).map_or(f64::NAN, |s| s.f)
}

/// One step of a function over instant vectors and scalars.
fn instant_function(
    ev: &Ev,
    c: &CallNode,
    t: i64,
    v: &[Vec<Sample>],
    strings: &[Option<&str>],
    absent: Option<&Lbls>,
    out: &mut Vec<Sample>,
) -> Result<()> {
    // Float functions skip histogram samples.
    let map_values = |out: &mut Vec<Sample>, g: &dyn Fn(f64) -> f64| {
        for s in v[0].iter().filter(|s| s.h.is_none()) {
            out.push(float_sample(s.labels.clone(), t, g(s.f), true));
        }
    };
    let map_histograms = |out: &mut Vec<Sample>, g: &dyn Fn(&FloatHistogram) -> f64| {
        for s in &v[0] {
            if let Some(h) = &s.h {
                out.push(float_sample(s.labels.clone(), t, g(h), true));
            }
        }
    };
    match c.func {
        Func::Abs
        | Func::Ceil
        | Func::Floor
        | Func::Exp
        | Func::Sqrt
        | Func::Ln
        | Func::Log2
        | Func::Log10
        | Func::Sin
        | Func::Cos
        | Func::Tan
        | Func::Asin
        | Func::Acos
        | Func::Atan
        | Func::Sinh
        | Func::Cosh
        | Func::Tanh
        | Func::Asinh
        | Func::Acosh
        | Func::Atanh
        | Func::Rad
        | Func::Deg
        | Func::Sgn => map_values(out, &|x| simple_math(c.func, x)),
        Func::Round => {
            let to_nearest = if v.len() > 1 { first_value(&v[1]) } else { 1.0 };
            let inv = 1.0 / to_nearest;
            map_values(out, &|x| (x * inv + 0.5).floor() / inv);
        }
        Func::Clamp | Func::ClampMin | Func::ClampMax => {
            let (lo, hi) = match c.func {
                Func::Clamp => (first_value(&v[1]), first_value(&v[2])),
                Func::ClampMin => (first_value(&v[1]), f64::INFINITY),
                _ => (f64::NEG_INFINITY, first_value(&v[1])),
            };
            if hi < lo {
                return Ok(());
            }
            map_values(out, &|x| go_max(lo, go_min(hi, x)));
        }
        Func::Scalar => {
            let mut floats = v[0].iter().filter(|s| s.h.is_none());
            let f = match (floats.next(), floats.next()) {
                (Some(s), None) => s.f,
                _ => f64::NAN,
            };
            scalar_out(ev, t, f, out);
        }
        Func::Vector => scalar_out(ev, t, first_value(&v[0]), out),
        Func::Time => scalar_out(ev, t, t as f64 / 1000.0, out),
        Func::Pi => scalar_out(ev, t, std::f64::consts::PI, out),
        Func::Start => scalar_out(ev, t, ev.cx.q_start as f64 / 1000.0, out),
        Func::End => scalar_out(ev, t, ev.cx.q_end as f64 / 1000.0, out),
        Func::Range => scalar_out(ev, t, (ev.cx.q_end - ev.cx.q_start) as f64 / 1000.0, out),
        Func::Step => scalar_out(ev, t, ev.cx.q_step as f64 / 1000.0, out),
        Func::MinOf => scalar_out(ev, t, go_min(first_value(&v[0]), first_value(&v[1])), out),
        Func::MaxOf => scalar_out(ev, t, go_max(first_value(&v[0]), first_value(&v[1])), out),
        Func::Timestamp => {
            for s in &v[0] {
                out.push(float_sample(s.labels.clone(), t, s.t as f64 / 1000.0, true));
            }
        }
        Func::Absent => {
            if v[0].is_empty() {
                let labels = absent.cloned().unwrap_or_else(|| ev.cx.empty.clone());
                out.push(float_sample(labels, t, 1.0, false));
            }
        }
        Func::DaysInMonth
        | Func::DayOfMonth
        | Func::DayOfWeek
        | Func::DayOfYear
        | Func::Hour
        | Func::Minute
        | Func::Month
        | Func::Year => {
            if c.args.is_empty() {
                // Go truncates toward zero when converting milliseconds to seconds.
                scalar_out(ev, t, date_part(c.func, &civil(t / 1000)), out);
            } else {
                map_values(out, &|x| date_part(c.func, &civil(go_float_to_i64(x))));
            }
        }
        Func::Sort | Func::SortDesc => {
            let mut vec: Vec<Sample> = v[0].iter().filter(|s| s.h.is_none()).cloned().collect();
            if c.func == Func::Sort {
                // Ascending, NaN last.
                crate::aggregate::go_sort(&mut vec, |a, b| b.f.is_nan() || a.f < b.f);
            } else {
                // Descending, NaN last.
                crate::aggregate::go_sort(&mut vec, |a, b| b.f.is_nan() || a.f > b.f);
            }
            out.extend(vec);
        }
        Func::SortByLabel | Func::SortByLabelDesc => {
            let names: Vec<&str> = strings[1..].iter().flatten().copied().collect();
            let desc = c.func == Func::SortByLabelDesc;
            let mut vec = v[0].clone();
            vec.sort_by(|a, b| {
                for n in &names {
                    let (x, y) = (a.labels.get(n).unwrap_or(""), b.labels.get(n).unwrap_or(""));
                    if x == y {
                        continue;
                    }
                    let ord = natural_cmp(x, y);
                    return if desc { ord.reverse() } else { ord };
                }
                let ord = a.labels.cmp(&b.labels);
                if desc { ord.reverse() } else { ord }
            });
            out.extend(vec);
        }
        Func::HistogramCount => map_histograms(out, &|h| h.count),
        Func::HistogramSum => map_histograms(out, &|h| h.sum),
        Func::HistogramAvg => map_histograms(out, &|h| h.sum / h.count),
        Func::HistogramStddev => map_histograms(out, &|h| h.variance().sqrt()),
        Func::HistogramStdvar => map_histograms(out, &|h| h.variance()),
        Func::HistogramQuantile => {
            let q = first_value(&v[0]);
            if q.is_nan() || !(0.0..=1.0).contains(&q) {
                ev.cx.warn(notes::invalid_quantile(q), c.arg(0));
            }
            let hs = histograms_of(ev, c, &v[1], 1);
            for (labels, h) in &hs.native {
                out.push(float_sample(labels.clone(), t, h.quantile(q), true));
            }
            for (metric, buckets) in hs.classic {
                let (val, fixes) = bucket_quantile(q, buckets);
                if fixes.forced_monotonic {
                    ev.cx
                        .info(notes::forced_monotonicity(metric_name(&metric)), c.arg(1));
                }
                out.push(float_sample(
                    Arc::new(drop_histogram_labels(&metric)),
                    t,
                    val,
                    true,
                ));
            }
        }
        Func::HistogramQuantiles => {
            let label = strings[1].unwrap_or("quantile");
            let qs: Vec<f64> = v[2..].iter().map(|x| first_value(x)).collect();
            for (i, q) in qs.iter().enumerate() {
                if q.is_nan() || !(0.0..=1.0).contains(q) {
                    ev.cx.warn(notes::invalid_quantile(*q), c.arg(i + 2));
                }
            }
            let hs = histograms_of(ev, c, &v[0], 0);
            for q in qs {
                let qlabel = openmetrics_float(q);
                for (labels, h) in &hs.native {
                    let l = crate::labels::set(labels, label, &qlabel);
                    out.push(float_sample(Arc::new(l), t, h.quantile(q), true));
                }
                for (metric, buckets) in &hs.classic {
                    let (val, fixes) = bucket_quantile(q, buckets.clone());
                    if fixes.forced_monotonic {
                        ev.cx
                            .info(notes::forced_monotonicity(metric_name(metric)), c.arg(0));
                    }
                    let base = drop_histogram_labels(metric);
                    let l = crate::labels::set(&base, label, &qlabel);
                    out.push(float_sample(Arc::new(l), t, val, true));
                }
            }
        }
        Func::HistogramFraction => {
            let (lo, hi) = (first_value(&v[0]), first_value(&v[1]));
            let hs = histograms_of(ev, c, &v[2], 2);
            for (labels, h) in &hs.native {
                out.push(float_sample(labels.clone(), t, h.fraction(lo, hi), true));
            }
            for (metric, buckets) in hs.classic {
                let f = bucket_fraction(lo, hi, buckets);
                out.push(float_sample(
                    Arc::new(drop_histogram_labels(&metric)),
                    t,
                    f,
                    true,
                ));
            }
        }
        other => {
            return Err(QueryError::Execution(format!(
                "function {:?} cannot be evaluated here",
                other.name()
            )));
        }
    }
    Ok(())
}

/// The labels of a classic histogram's quantile: without `__name__` and `le`.
fn drop_histogram_labels(l: &Labels) -> Labels {
    Labels::from_pairs(
        l.iter()
            .filter(|(k, _)| *k != "le" && *k != METRIC_NAME_LABEL),
    )
}

/// The histograms of one vector: native ones, and classic ones grouped from `le` buckets.
struct Histograms {
    native: Vec<(Lbls, H)>,
    classic: Vec<(Labels, Vec<Bucket>)>,
}

/// Splits a vector into native histograms and classic histograms (grouped by all labels
/// except `le`, in order of first appearance), as Prometheus's `resetHistograms`: warns
/// about unparsable `le` labels, and drops both kinds where a native and a classic
/// histogram share their labels.
fn histograms_of(ev: &Ev, c: &CallNode, v: &[Sample], arg: usize) -> Histograms {
    let pos = c.arg(arg);
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut classic: Vec<(Labels, Vec<Bucket>)> = Vec::new();
    let mut native = Vec::new();
    for s in v {
        if let Some(h) = &s.h {
            native.push((s.labels.clone(), h.clone()));
            continue;
        }
        let le = s.labels.get("le").unwrap_or("");
        let Some(upper) = go_parse_float(le) else {
            ev.cx
                .warn(notes::bad_bucket_label(le, metric_name(&s.labels)), pos);
            continue;
        };
        let key = Labels::from_pairs(s.labels.iter().filter(|(k, _)| *k != "le"));
        let i = *index.entry(key.clone()).or_insert_with(|| {
            classic.push((key, Vec::new()));
            classic.len() - 1
        });
        classic[i].1.push(Bucket { upper, count: s.f });
    }
    native.retain(|(labels, _)| match index.get(&**labels) {
        Some(&i) if !classic[i].1.is_empty() => {
            ev.cx
                .warn(notes::mixed_classic_native(metric_name(labels)), pos);
            classic[i].1.clear();
            false
        }
        _ => true,
    });
    classic.retain(|(_, b)| !b.is_empty());
    Histograms { native, classic }
}

/// Natural order of strings (digit runs compared as numbers), as `sort_by_label` uses.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < ab.len() && j < bb.len() {
        if ab[i].is_ascii_digit() && bb[j].is_ascii_digit() {
            let si = i;
            while i < ab.len() && ab[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < bb.len() && bb[j].is_ascii_digit() {
                j += 1;
            }
            let (x, y) = (
                a[si..i].trim_start_matches('0'),
                b[sj..j].trim_start_matches('0'),
            );
            let ord = x.len().cmp(&y.len()).then_with(|| x.cmp(y));
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            let ord = ab[i].cmp(&bb[j]);
            if ord != Ordering::Equal {
                return ord;
            }
            i += 1;
            j += 1;
        }
    }
    (ab.len() - i).cmp(&(bb.len() - j))
}

fn compile_anchored(re: &str) -> std::result::Result<regex::Regex, regex::Error> {
    sightline_model::check_fold_work(re).map_err(regex::Error::Syntax)?;
    regex::Regex::new(&format!("^(?s:{re})$"))
}

/// `label_replace(v, dst, replacement, src, regex)`.
fn label_replace(ev: &Ev, c: &CallNode) -> Result<Vec<Series>> {
    let dst = string_arg(&c.args[1])?;
    let repl = string_arg(&c.args[2])?;
    let src = string_arg(&c.args[3])?;
    let re_str = string_arg(&c.args[4])?;
    let re = compile_anchored(re_str).map_err(|_| {
        QueryError::Execution(format!(
            "invalid regular expression in label_replace(): {re_str}"
        ))
    })?;
    if dst.is_empty() {
        return Err(QueryError::Execution(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let mut m = ev.eval_matrix(&c.args[0])?;
    for s in &mut m {
        let value = s.labels.get(src).unwrap_or("");
        if let Some(caps) = re.captures(value) {
            let mut res = String::new();
            caps.expand(repl, &mut res);
            s.labels = Arc::new(crate::labels::set(&s.labels, dst, &res));
            if dst == METRIC_NAME_LABEL {
                s.drop_name = false;
            }
        }
    }
    merge_same_labelsets(m)
}

/// `label_join(v, dst, separator, src...)`.
fn label_join(ev: &Ev, c: &CallNode) -> Result<Vec<Series>> {
    let dst = string_arg(&c.args[1])?;
    let sep = string_arg(&c.args[2])?;
    let mut srcs = Vec::new();
    for a in &c.args[3..] {
        let s = string_arg(a)?;
        if s.is_empty() {
            return Err(QueryError::Execution(format!(
                "invalid source label name in label_join(): {s}"
            )));
        }
        srcs.push(s);
    }
    if dst.is_empty() {
        return Err(QueryError::Execution(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    let mut m = ev.eval_matrix(&c.args[0])?;
    for s in &mut m {
        let joined = srcs
            .iter()
            .map(|n| s.labels.get(n).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(sep);
        s.labels = Arc::new(crate::labels::set(&s.labels, dst, &joined));
        if dst == METRIC_NAME_LABEL {
            s.drop_name = false;
        }
    }
    merge_same_labelsets(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[(i64, f64)]) -> Vec<Point> {
        v.iter().map(|&(t, f)| Point::float(t, f)).collect()
    }

    #[test]
    fn changes_and_resets_count_type_switches() {
        let mut w = pts(&[(0, 1.0), (1, 1.0), (2, 0.5), (3, 2.0)]);
        assert_eq!(changes_or_resets(&w, false), 2.0);
        assert_eq!(changes_or_resets(&w, true), 1.0);
        w.push(Point {
            t: 4,
            f: 0.0,
            h: Some(Arc::new(FloatHistogram::default())),
        });
        assert_eq!(changes_or_resets(&w, true), 2.0);
    }

    #[test]
    fn go_number_formatting() {
        assert_eq!(go_fmt_g(1.1), "1.1");
        assert_eq!(go_fmt_g(1e6), "1e+06");
        assert_eq!(go_fmt_g(123456.0), "123456");
        assert_eq!(go_fmt_g(0.00001), "1e-05");
        assert_eq!(go_fmt_g(-1.1), "-1.1");
        assert_eq!(openmetrics_float(0.0), "0.0");
        assert_eq!(openmetrics_float(0.25), "0.25");
        assert_eq!(go_fmt_f(1e21), "1000000000000000000000");
        assert_eq!(go_parse_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(go_parse_float("2e-1"), Some(0.2));
        assert_eq!(go_parse_float("Hello World"), None);
    }

    #[test]
    fn civil_dates() {
        let c = civil(0);
        assert_eq!(
            (c.year, c.month, c.day, c.weekday, c.yday),
            (1970, 1, 1, 4, 1)
        );
        let c = civil(951_782_400); // 2000-02-29
        assert_eq!((c.year, c.month, c.day, c.yday), (2000, 2, 29, 60));
        assert_eq!(days_in_month(2000, 2), 29);
        let c = civil(-1); // 1969-12-31 23:59:59
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute),
            (1969, 12, 31, 23, 59)
        );
    }

    #[test]
    fn natural_order() {
        assert_eq!(natural_cmp("a2", "a10"), std::cmp::Ordering::Less);
        assert_eq!(natural_cmp("b", "a10"), std::cmp::Ordering::Greater);
    }
}
