//! Aggregation operators, step by step over the input series, as Prometheus's
//! `rangeEvalAgg`: groups are computed once per series, values accumulated per step.

use std::collections::HashMap;
use std::sync::Arc;

use sightline_model::{Labels, METRIC_NAME_LABEL};

use crate::QueryError;
use crate::eval::{Assembler, Ev, H, Point, Result, Sample, Series, notes};
use crate::functions::{go_fmt_f, go_fmt_g, kahan_inc};
use crate::histogram::{CounterResetHint, FloatHistogram, HistogramError};
use crate::labels::{Lbls, go_quote, metric_name, prom_hash};
use crate::plan::{AggNode, AggOp, Node};
use crate::quantile::quantile;

/// Sorts like Go's `sort.Sort` does for small inputs (insertion sort, so ties keep their
/// order and the `less` functions Prometheus uses, NaN-first ones included, give the same
/// result); larger inputs use a stable sort with the same order.
pub(crate) fn go_sort<T>(v: &mut [T], less: impl Fn(&T, &T) -> bool) {
    if v.len() <= 12 {
        for i in 1..v.len() {
            let mut j = i;
            while j > 0 && less(&v[j], &v[j - 1]) {
                v.swap(j, j - 1);
                j -= 1;
            }
        }
    } else {
        v.sort_by(|a, b| match (less(a, b), less(b, a)) {
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            _ => std::cmp::Ordering::Equal,
        });
    }
}

/// The labels of an aggregation group.
fn grouping_labels(l: &Labels, grouping: &[String], without: bool) -> Labels {
    if without {
        Labels::from_pairs(
            l.iter()
                .filter(|(k, _)| *k != METRIC_NAME_LABEL && !grouping.iter().any(|g| g == k)),
        )
    } else if grouping.is_empty() {
        Labels::default()
    } else {
        Labels::from_pairs(l.iter().filter(|(k, _)| grouping.iter().any(|g| g == k)))
    }
}

/// The value of a series at step `t`, moving the cursor forward.
fn next_value<'a>(s: &'a Series, cursor: &mut usize, t: i64) -> Option<&'a Point> {
    while *cursor < s.points.len() && s.points[*cursor].t < t {
        *cursor += 1;
    }
    let p = s.points.get(*cursor)?;
    if p.t == t {
        *cursor += 1;
        Some(p)
    } else {
        None
    }
}

/// Statistics of a parameter over all steps, as Prometheus's `fParams` (NaN propagates
/// into min and max as with Go's `math.Min`/`math.Max`).
struct ParamStats {
    min: f64,
    max: f64,
    has_nan: bool,
}

fn param_stats(v: &[f64]) -> ParamStats {
    let has_nan = v.iter().any(|x| x.is_nan());
    if has_nan {
        return ParamStats {
            min: f64::NAN,
            max: f64::NAN,
            has_nan,
        };
    }
    ParamStats {
        min: v.iter().copied().fold(f64::MAX, f64::min),
        max: v.iter().copied().fold(-f64::MAX, f64::max),
        has_nan,
    }
}

pub(crate) fn eval_aggregate(ev: &Ev, a: &AggNode) -> Result<Vec<Series>> {
    if a.op == AggOp::CountValues {
        return count_values(ev, a);
    }
    let params = match &a.param {
        Some(Node::Str(_)) | None => None,
        Some(p) => Some(ev.eval_scalar_steps(p)?),
    };
    let input = ev.eval_matrix(&a.expr)?;
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut group_labels: Vec<Lbls> = Vec::new();
    let series_group: Vec<usize> = input
        .iter()
        .map(|s| {
            let key = grouping_labels(&s.labels, &a.grouping, a.without);
            *index.entry(key.clone()).or_insert_with(|| {
                group_labels.push(Arc::new(key));
                group_labels.len() - 1
            })
        })
        .collect();
    match a.op {
        AggOp::Topk | AggOp::Bottomk | AggOp::Limitk | AggOp::LimitRatio => {
            aggregate_k(ev, a, &input, &series_group, group_labels.len(), params)
        }
        _ => aggregate_values(ev, a, &input, &series_group, group_labels, params),
    }
}

#[derive(Clone, Default)]
struct Group {
    seen: bool,
    value: f64,
    mean: f64,
    comp: f64,
    count: f64,
    values: Vec<f64>,
    incremental: bool,
    drop_name: bool,
    hist: Option<FloatHistogram>,
    has_float: bool,
    has_histogram: bool,
    incompatible: bool,
    reset_seen: bool,
    not_reset_seen: bool,
}

impl Group {
    fn track_hint(&mut self, h: &FloatHistogram) {
        match h.counter_reset_hint {
            CounterResetHint::CounterReset => self.reset_seen = true,
            CounterResetHint::NotCounterReset => self.not_reset_seen = true,
            _ => {}
        }
    }
}

fn agg_name(op: AggOp) -> &'static str {
    match op {
        AggOp::Sum => "sum",
        AggOp::Avg => "avg",
        AggOp::Count => "count",
        AggOp::Min => "min",
        AggOp::Max => "max",
        AggOp::Group => "group",
        AggOp::Stddev => "stddev",
        AggOp::Stdvar => "stdvar",
        AggOp::Topk => "topk",
        AggOp::Bottomk => "bottomk",
        AggOp::CountValues => "count_values",
        AggOp::Quantile => "quantile",
        AggOp::Limitk => "limitk",
        AggOp::LimitRatio => "limit_ratio",
    }
}

fn aggregate_values(
    ev: &Ev,
    a: &AggNode,
    input: &[Series],
    series_group: &[usize],
    group_labels: Vec<Lbls>,
    params: Option<Vec<f64>>,
) -> Result<Vec<Series>> {
    if a.op == AggOp::Quantile
        && let Some(p) = &params
    {
        let st = param_stats(p);
        if st.has_nan {
            ev.cx.warn(notes::invalid_quantile(f64::NAN), a.param_pos);
        }
        if st.max > 1.0 {
            ev.cx.warn(notes::invalid_quantile(st.max), a.param_pos);
        }
        if st.min < 0.0 {
            ev.cx.warn(notes::invalid_quantile(st.min), a.param_pos);
        }
    }
    let ignored = || {
        ev.cx
            .info(notes::ignored_in_aggregation(agg_name(a.op)), a.expr_pos)
    };
    let combine = |g: &mut Group, h: &FloatHistogram, name: &str, sub_first: bool| {
        let r = if sub_first {
            g.hist.as_mut().map(|x| x.sub(h))
        } else {
            g.hist.as_mut().map(|x| x.add(h))
        };
        match r {
            Some(Err(HistogramError::IncompatibleSchema)) => {
                ev.cx
                    .warn(notes::mixed_exponential_custom(name), a.expr_pos);
                g.incompatible = true;
                false
            }
            Some(Ok(true)) => {
                ev.cx.info(notes::reconciled("aggregation"), a.expr_pos);
                true
            }
            _ => true,
        }
    };
    let mut groups = vec![Group::default(); group_labels.len()];
    let mut out: Vec<Series> = group_labels
        .into_iter()
        .map(|labels| Series {
            labels,
            drop_name: false,
            points: Vec::new(),
        })
        .collect();
    let mut cursors = vec![0usize; input.len()];
    let mut total = 0usize;
    for (step, t) in ev.steps().enumerate() {
        let q = params.as_ref().map_or(f64::NAN, |p| p[step]);
        for g in &mut groups {
            g.seen = false;
        }
        for (si, s) in input.iter().enumerate() {
            let Some(p) = next_value(s, &mut cursors[si], t) else {
                continue;
            };
            let (f, h) = (p.f, p.h.as_ref());
            let g = &mut groups[series_group[si]];
            if !g.seen {
                *g = Group {
                    seen: true,
                    value: f,
                    mean: f,
                    count: 1.0,
                    drop_name: s.drop_name,
                    values: std::mem::take(&mut g.values),
                    ..Group::default()
                };
                match a.op {
                    AggOp::Sum | AggOp::Avg => match h {
                        None => g.has_float = true,
                        Some(h) => {
                            g.hist = Some((**h).clone());
                            g.has_histogram = true;
                            g.track_hint(h);
                        }
                    },
                    AggOp::Stddev | AggOp::Stdvar => {
                        if h.is_some() {
                            g.seen = false;
                            ignored();
                        } else {
                            g.value = if f.is_nan() || f.is_infinite() {
                                f64::NAN
                            } else {
                                0.0
                            };
                        }
                    }
                    AggOp::Quantile => {
                        if h.is_some() {
                            g.seen = false;
                            ignored();
                        }
                        g.values.clear();
                        g.values.push(f);
                    }
                    AggOp::Group => g.value = 1.0,
                    AggOp::Min | AggOp::Max if h.is_some() => {
                        g.seen = false;
                        ignored();
                    }
                    _ => {}
                }
                continue;
            }
            if g.incompatible {
                continue;
            }
            if s.drop_name {
                g.drop_name = true;
            }
            match a.op {
                AggOp::Sum => match h {
                    Some(h) => {
                        g.has_histogram = true;
                        if g.hist.is_some() {
                            g.track_hint(h);
                            combine(g, h, metric_name(&s.labels), false);
                        }
                    }
                    None => {
                        g.has_float = true;
                        (g.value, g.comp) = kahan_inc(f, g.value, g.comp);
                    }
                },
                AggOp::Avg => {
                    g.count += 1.0;
                    match h {
                        Some(h) => {
                            g.has_histogram = true;
                            if let Some(mut right) = g.hist.clone() {
                                g.track_hint(h);
                                // Incremental mean: mean += h/n - mean/n.
                                let mut to_add = (**h).clone();
                                to_add.div(g.count);
                                right.div(g.count);
                                let name = metric_name(&s.labels);
                                match to_add.sub(&right) {
                                    Err(_) => {
                                        ev.cx.warn(
                                            notes::mixed_exponential_custom(name),
                                            a.expr_pos,
                                        );
                                        g.incompatible = true;
                                        continue;
                                    }
                                    Ok(r) => {
                                        if r {
                                            ev.cx
                                                .info(notes::reconciled("aggregation"), a.expr_pos);
                                        }
                                    }
                                }
                                combine(g, &to_add, name, false);
                            }
                        }
                        None => {
                            g.has_float = true;
                            if !g.incremental {
                                let (v, c) = kahan_inc(f, g.value, g.comp);
                                if !v.is_infinite() {
                                    g.value = v;
                                    g.comp = c;
                                    continue;
                                }
                                // The running sum would overflow: continue with an
                                // incremental mean.
                                g.incremental = true;
                                g.mean = g.value / (g.count - 1.0);
                                g.comp /= g.count - 1.0;
                            }
                            let r = (g.count - 1.0) / g.count;
                            (g.mean, g.comp) = kahan_inc(f / g.count, r * g.mean, r * g.comp);
                        }
                    }
                }
                AggOp::Max | AggOp::Min => {
                    if h.is_some() {
                        ignored();
                        continue;
                    }
                    let better = if a.op == AggOp::Max {
                        g.value < f
                    } else {
                        g.value > f
                    };
                    if better || g.value.is_nan() {
                        g.value = f;
                    }
                }
                AggOp::Count => g.count += 1.0,
                AggOp::Stddev | AggOp::Stdvar => {
                    if h.is_some() {
                        ignored();
                        continue;
                    }
                    g.count += 1.0;
                    let delta = f - g.mean;
                    g.mean += delta / g.count;
                    g.value += delta * (f - g.mean);
                }
                AggOp::Quantile => {
                    if h.is_some() {
                        ignored();
                        continue;
                    }
                    g.values.push(f);
                }
                _ => {}
            }
        }
        for (gi, g) in groups.iter_mut().enumerate() {
            if !g.seen {
                continue;
            }
            let mut hist: Option<H> = None;
            let v = match a.op {
                AggOp::Sum | AggOp::Avg => {
                    if g.has_float && g.has_histogram {
                        ev.cx.warn(notes::mixed_floats_histograms_agg(), a.expr_pos);
                        continue;
                    }
                    if g.incompatible {
                        continue;
                    }
                    if g.has_histogram {
                        hist = g.hist.clone().map(Arc::new);
                        0.0
                    } else if a.op == AggOp::Sum {
                        g.value + g.comp
                    } else if g.incremental {
                        g.mean + g.comp
                    } else {
                        g.value / g.count + g.comp / g.count
                    }
                }
                AggOp::Count => g.count,
                AggOp::Stdvar => g.value / g.count,
                AggOp::Stddev => (g.value / g.count).sqrt(),
                AggOp::Quantile => quantile(q, &mut g.values),
                _ => g.value,
            };
            if g.reset_seen && g.not_reset_seen {
                ev.cx
                    .warn(notes::counter_reset_collision("aggregation"), a.expr_pos);
            }
            out[gi].points.push(Point { t, f: v, h: hist });
            out[gi].drop_name = g.drop_name;
            total += 1;
        }
        ev.cx.check_samples(total)?;
    }
    out.retain(|s| !s.points.is_empty());
    Ok(out)
}

/// A candidate of `topk`/`bottomk`/`limitk`/`limit_ratio`: value and input series index.
#[derive(Clone)]
struct Cand {
    f: f64,
    h: Option<H>,
    si: usize,
}

/// Go's `container/heap` push with the given `less`.
fn heap_push(h: &mut Vec<Cand>, c: Cand, less: fn(f64, f64) -> bool) {
    h.push(c);
    let mut j = h.len() - 1;
    while j > 0 {
        let i = (j - 1) / 2;
        if !less(h[j].f, h[i].f) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

/// Go's `container/heap` fix of the root after replacing it.
fn heap_fix_root(h: &mut [Cand], less: fn(f64, f64) -> bool) {
    let n = h.len();
    let mut i = 0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        if j1 + 1 < n && less(h[j1 + 1].f, h[j1].f) {
            j = j1 + 1;
        }
        if !less(h[j].f, h[i].f) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
}

/// Min-heap order with NaN smallest (`vectorByValueHeap`), used by `topk`.
fn value_less(a: f64, b: f64) -> bool {
    a.is_nan() || a < b
}

/// Max-heap order with NaN first (`vectorByReverseValueHeap`), used by `bottomk`.
fn reverse_less(a: f64, b: f64) -> bool {
    a.is_nan() || a > b
}

fn aggregate_k(
    ev: &Ev,
    a: &AggNode,
    input: &[Series],
    series_group: &[usize],
    num_groups: usize,
    params: Option<Vec<f64>>,
) -> Result<Vec<Series>> {
    let params = params.unwrap_or_else(|| vec![f64::NAN; ev.num_steps()]);
    let st = param_stats(&params);
    match a.op {
        AggOp::LimitRatio => {
            if st.max == 0.0 && st.min == 0.0 {
                return Ok(Vec::new());
            }
            if st.has_nan {
                return Err(QueryError::Execution("Ratio value is NaN".into()));
            }
            if st.max > 1.0 {
                ev.cx.warn(
                    format!(
                        "PromQL warning: ratio value should be between -1 and 1, got {}, capping to 1",
                        go_fmt_g(st.max)
                    ),
                    a.param_pos,
                );
            }
            if st.min < -1.0 {
                ev.cx.warn(
                    format!(
                        "PromQL warning: ratio value should be between -1 and 1, got {}, capping to -1",
                        go_fmt_g(st.min)
                    ),
                    a.param_pos,
                );
            }
        }
        _ => {
            if st.max < 1.0 {
                return Ok(Vec::new());
            }
            if st.has_nan {
                return Err(QueryError::Execution("Parameter value is NaN".into()));
            }
            if st.min <= -9_223_372_036_854_775_808.0 {
                return Err(QueryError::Execution(format!(
                    "Scalar value {} underflows int64",
                    go_fmt_g(st.min)
                )));
            }
            if st.max >= 9_223_372_036_854_774_784.0 {
                return Err(QueryError::Execution(format!(
                    "Scalar value {} overflows int64",
                    go_fmt_g(st.max)
                )));
            }
        }
    }
    let mut heaps: Vec<Option<Vec<Cand>>> = vec![None; num_groups];
    let mut cursors = vec![0usize; input.len()];
    let mut asm = Assembler::default();
    let ratio_offsets: Vec<f64> = if a.op == AggOp::LimitRatio {
        input
            .iter()
            .map(|s| prom_hash(&s.labels) as f64 / u64::MAX as f64)
            .collect()
    } else {
        Vec::new()
    };
    let mut step_out: Vec<Sample> = Vec::new();
    for (step, t) in ev.steps().enumerate() {
        let param = params[step];
        heaps.fill(None);
        let k = (param as i64).min(input.len() as i64);
        let ratio = param.clamp(-1.0, 1.0);
        let skip_step = match a.op {
            AggOp::LimitRatio => param == 0.0,
            _ => k < 1,
        };
        if skip_step {
            // Values at this step are consumed by the cursors at the next step.
            continue;
        }
        for (si, s) in input.iter().enumerate() {
            let Some(p) = next_value(s, &mut cursors[si], t) else {
                continue;
            };
            let f = p.f;
            let c = Cand {
                f,
                h: p.h.clone(),
                si,
            };
            // topk and bottomk rank floats only.
            if c.h.is_some() && matches!(a.op, AggOp::Topk | AggOp::Bottomk) {
                ev.cx
                    .info(notes::ignored_in_aggregation(agg_name(a.op)), a.pos);
                continue;
            }
            let slot = &mut heaps[series_group[si]];
            let take_ratio = || {
                let off = ratio_offsets[si];
                (ratio >= 0.0 && off < ratio) || (ratio < 0.0 && off >= 1.0 + ratio)
            };
            let Some(h) = slot else {
                let mut h = Vec::new();
                match a.op {
                    AggOp::LimitRatio => {
                        if take_ratio() {
                            h.push(c);
                        }
                    }
                    _ => h.push(c),
                }
                *slot = Some(h);
                continue;
            };
            match a.op {
                AggOp::Topk => {
                    if (h.len() as i64) < k {
                        heap_push(h, c, value_less);
                    } else if h[0].f < f || (h[0].f.is_nan() && !f.is_nan()) {
                        h[0] = c;
                        if k > 1 {
                            heap_fix_root(h, value_less);
                        }
                    }
                }
                AggOp::Bottomk => {
                    if (h.len() as i64) < k {
                        heap_push(h, c, reverse_less);
                    } else if h[0].f > f || (h[0].f.is_nan() && !f.is_nan()) {
                        h[0] = c;
                        if k > 1 {
                            heap_fix_root(h, reverse_less);
                        }
                    }
                }
                AggOp::Limitk => {
                    if (h.len() as i64) < k {
                        heap_push(h, c, value_less);
                    }
                }
                _ => {
                    if take_ratio() {
                        heap_push(h, c, value_less);
                    }
                }
            }
        }
        step_out.clear();
        for h in heaps.iter_mut().flatten() {
            match a.op {
                AggOp::Topk => go_sort(h, |x, y| value_less(y.f, x.f)),
                AggOp::Bottomk => go_sort(h, |x, y| reverse_less(y.f, x.f)),
                _ => {}
            }
            for c in h.iter() {
                let s = &input[c.si];
                step_out.push(Sample {
                    labels: s.labels.clone(),
                    t,
                    f: c.f,
                    h: c.h.clone(),
                    drop_name: s.drop_name,
                });
            }
        }
        if ev.is_instant() {
            return Ok(Assembler::instant(t, std::mem::take(&mut step_out)));
        }
        asm.add(t, &step_out, ev.cx)?;
    }
    Ok(asm.series)
}

fn count_values(ev: &Ev, a: &AggNode) -> Result<Vec<Series>> {
    let label = match &a.param {
        Some(Node::Str(s)) => s.clone(),
        _ => {
            return Err(QueryError::Execution(
                "count_values needs a string parameter".into(),
            ));
        }
    };
    if label.is_empty() {
        return Err(QueryError::Execution(format!(
            "invalid label name {}",
            go_quote(&label)
        )));
    }
    let mut grouping = a.grouping.clone();
    if !a.without {
        grouping.push(label.clone());
        grouping.sort();
    }
    let input = ev.eval_matrix(&a.expr)?;
    ev.range_eval(&[input], |t, v, out| {
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut counts: Vec<(Labels, usize)> = Vec::new();
        for s in &v[0] {
            let value = match &s.h {
                Some(h) => h.prom_string(),
                None => go_fmt_f(s.f),
            };
            let with_value = crate::labels::set(&s.labels, &label, &value);
            let key = grouping_labels(&with_value, &grouping, a.without);
            match index.get(&key) {
                Some(&i) => counts[i].1 += 1,
                None => {
                    index.insert(key.clone(), counts.len());
                    counts.push((key, 1));
                }
            }
        }
        for (labels, n) in counts {
            out.push(Sample {
                labels: Arc::new(labels),
                t,
                f: n as f64,
                h: None,
                drop_name: false,
            });
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_by_and_without() {
        let l = Labels::from_pairs([("__name__", "m"), ("a", "1"), ("b", "2")]);
        assert_eq!(
            grouping_labels(&l, &["a".into()], false),
            Labels::from_pairs([("a", "1")])
        );
        assert_eq!(
            grouping_labels(&l, &["a".into()], true),
            Labels::from_pairs([("b", "2")])
        );
        assert_eq!(grouping_labels(&l, &[], false), Labels::default());
    }

    #[test]
    fn go_sort_puts_nan_last_for_sort() {
        let mut v = vec![3.0, f64::NAN, 1.0, 2.0];
        go_sort(&mut v, |a, b| b.is_nan() || a < b);
        assert_eq!(&v[..3], &[1.0, 2.0, 3.0]);
        assert!(v[3].is_nan());
    }

    #[test]
    fn heap_keeps_smallest_on_top() {
        let mut h = Vec::new();
        for (i, f) in [5.0, 1.0, 3.0].into_iter().enumerate() {
            heap_push(&mut h, Cand { f, h: None, si: i }, value_less);
        }
        assert_eq!(h[0].f, 1.0);
        h[0] = Cand {
            f: 4.0,
            h: None,
            si: 9,
        };
        heap_fix_root(&mut h, value_less);
        assert_eq!(h[0].f, 3.0);
    }
}
