//! The evaluator: every expression evaluates to a matrix over the evaluator's steps (one
//! point per step at most, as in Prometheus's engine), which keeps range queries a single
//! pass over data that was selected once.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use promql_parser::parser::Expr;
use sightline_model::{Cancellation, Labels, Sample as ModelSample, is_stale_nan};

use crate::histogram::FloatHistogram;
use crate::labels::{Lbls, drop_metric_name};
use crate::plan::{self, Node, PlanOptions, Selector, SubqueryNode, VType};
use crate::{EngineOptions, QueryError, SeriesSource};

pub(crate) type Result<T> = std::result::Result<T, QueryError>;

/// A shared native histogram value.
pub(crate) type H = Arc<FloatHistogram>;

/// One point of an evaluated series: a float, or a native histogram (`h`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Point {
    pub t: i64,
    pub f: f64,
    pub h: Option<H>,
}

impl Point {
    pub(crate) fn float(t: i64, f: f64) -> Self {
        Point { t, f, h: None }
    }

    /// Whether this is a float staleness marker.
    pub(crate) fn is_stale(&self) -> bool {
        self.h.is_none() && is_stale_nan(self.f)
    }
}

/// One evaluated series. `drop_name` is Prometheus's delayed `__name__` removal: the name is
/// kept while the query runs (so `label_replace` and `by (__name__)` can still see it) and
/// dropped from the result.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub labels: Lbls,
    pub drop_name: bool,
    pub points: Vec<Point>,
}

/// One element of an instant vector at one step.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub labels: Lbls,
    pub t: i64,
    pub f: f64,
    pub h: Option<H>,
    pub drop_name: bool,
}

pub(crate) enum Val {
    Matrix(Vec<Series>),
    Str(String),
}

/// A selected series: all samples (staleness markers included, for instant lookups) and the
/// samples without markers (for range windows).
pub(crate) struct SelSeries {
    pub labels: Lbls,
    pub all: Vec<Point>,
    /// The samples without staleness markers, when there are markers.
    without_markers: Option<Vec<Point>>,
    /// Whether any sample is a native histogram.
    pub has_histograms: bool,
}

impl SelSeries {
    /// The samples range windows read: staleness markers left out.
    pub(crate) fn clean(&self) -> &[Point] {
        self.without_markers.as_deref().unwrap_or(&self.all)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnnoKind {
    Warning,
    Info,
}

/// What every evaluator of one query shares.
pub(crate) struct Ctx<'a> {
    pub text: &'a str,
    pub lookback: i64,
    /// Prometheus 2 closed windows.
    pub closed: bool,
    pub max_samples: usize,
    pub data: Vec<Vec<SelSeries>>,
    /// The query's own start, end and step (for `start()`, `end()`, `step()`, `range()`).
    pub q_start: i64,
    pub q_end: i64,
    pub q_step: i64,
    pub empty: Lbls,
    /// Polled by step loops; see [`Steps`].
    pub cancel: &'a Cancellation,
    annotations: RefCell<BTreeMap<String, AnnoKind>>,
}

impl Ctx<'_> {
    /// Records an annotation, placed at `pos` in the query like Prometheus does.
    pub(crate) fn annotate(&self, kind: AnnoKind, msg: String, pos: usize) {
        let full = format!("{msg} ({})", plan::line_col(self.text, pos));
        self.annotations.borrow_mut().insert(full, kind);
    }

    pub(crate) fn warn(&self, msg: String, pos: usize) {
        self.annotate(AnnoKind::Warning, msg, pos);
    }

    pub(crate) fn info(&self, msg: String, pos: usize) {
        self.annotate(AnnoKind::Info, msg, pos);
    }

    /// Fails the query when `n` samples would be held at once. Prometheus counts every
    /// sample in memory; this engine checks the selected data, each range window and each
    /// intermediate result against the limit, which bounds memory the same way.
    pub(crate) fn check_samples(&self, n: usize) -> Result<()> {
        if n > self.max_samples {
            return Err(QueryError::TooManySamples("query execution".into()));
        }
        Ok(())
    }

    /// The latest sample at or before `t` within the lookback, unless it is a staleness
    /// marker.
    pub(crate) fn lookup<'p>(&self, pts: &'p [Point], t: i64) -> Option<&'p Point> {
        let i = pts.partition_point(|p| p.t <= t);
        let p = pts.get(i.checked_sub(1)?)?;
        let too_old = if self.closed {
            p.t < t - self.lookback
        } else {
            p.t <= t - self.lookback
        };
        if too_old || p.is_stale() {
            None
        } else {
            Some(p)
        }
    }

    /// The points of a range window ending at `end`: `(end-range, end]`, or
    /// `[end-range, end]` with Prometheus 2 semantics.
    pub(crate) fn window<'p>(&self, pts: &'p [Point], end: i64, range: i64) -> &'p [Point] {
        let start = end - range;
        let a = if self.closed {
            pts.partition_point(|p| p.t < start)
        } else {
            pts.partition_point(|p| p.t <= start)
        };
        let b = pts.partition_point(|p| p.t <= end);
        &pts[a..b.max(a)]
    }
}

/// An evaluator over one set of steps: the query's, or a subquery's.
#[derive(Clone, Copy)]
pub(crate) struct Ev<'a> {
    pub cx: &'a Ctx<'a>,
    pub start: i64,
    pub end: i64,
    pub interval: i64,
}

/// The timestamps of an evaluation. At every step it asks whether the query must stop (two
/// atomic loads) and, if so, ends early: [`execute`] then reports the stop instead of the
/// cut-short result.
pub(crate) struct Steps<'a> {
    next: i64,
    end: i64,
    interval: i64,
    cancel: &'a Cancellation,
}

impl Iterator for Steps<'_> {
    type Item = i64;
    fn next(&mut self) -> Option<i64> {
        if self.next > self.end {
            return None;
        }
        if self.cancel.stopped().is_some() {
            return None;
        }
        let t = self.next;
        self.next += self.interval;
        Some(t)
    }
}

impl<'a> Ev<'a> {
    pub(crate) fn steps(&self) -> Steps<'a> {
        Steps {
            next: self.start,
            end: self.end,
            interval: self.interval,
            cancel: self.cx.cancel,
        }
    }

    pub(crate) fn num_steps(&self) -> usize {
        if self.end < self.start {
            0
        } else {
            ((self.end - self.start) / self.interval + 1) as usize
        }
    }

    /// Whether this evaluation has a single step (an instant query, or a step-invariant
    /// subtree): results then keep their order instead of being grouped by labels.
    pub(crate) fn is_instant(&self) -> bool {
        self.start == self.end
    }

    pub(crate) fn eval(&self, n: &Node) -> Result<Val> {
        if self.end < self.start {
            return Ok(Val::Matrix(Vec::new()));
        }
        match n {
            Node::Str(s) => Ok(Val::Str(s.clone())),
            _ => self.eval_matrix(n).map(Val::Matrix),
        }
    }

    pub(crate) fn eval_matrix(&self, n: &Node) -> Result<Vec<Series>> {
        if self.end < self.start {
            return Ok(Vec::new());
        }
        match n {
            Node::Number(v) => Ok(vec![Series {
                labels: self.cx.empty.clone(),
                drop_name: false,
                points: self.steps().map(|t| Point::float(t, *v)).collect(),
            }]),
            Node::Str(_) => Err(QueryError::Execution(
                "a string cannot be used where a number or a vector is expected".into(),
            )),
            Node::VectorSel(sel) => self.eval_vector_selector(sel),
            Node::MatrixSel { sel, range } => self.eval_matrix_selector(sel, *range),
            Node::Subquery(sq) => self.eval_subquery(sq),
            Node::Call(c) => crate::functions::eval_call(self, c),
            Node::Aggregate(a) => crate::aggregate::eval_aggregate(self, a),
            Node::Binary(b) => crate::binop::eval_binary(self, b),
            Node::Neg(e) => {
                let mut m = self.eval_matrix(e)?;
                for s in &mut m {
                    s.drop_name = true;
                    for p in &mut s.points {
                        p.f = -p.f;
                        if let Some(h) = &mut p.h {
                            let h = Arc::make_mut(h);
                            h.mul(-1.0);
                            h.counter_reset_hint = crate::histogram::CounterResetHint::Gauge;
                        }
                    }
                }
                Ok(m)
            }
            Node::StepInvariant(e) => self.eval_step_invariant(e),
        }
    }

    /// Evaluates once at the first step and repeats the result at every step.
    fn eval_step_invariant(&self, e: &Node) -> Result<Vec<Series>> {
        let once = Ev {
            end: self.start,
            ..*self
        };
        let mut m = once.eval_matrix(e)?;
        if matches!(e, Node::MatrixSel { .. } | Node::Subquery(_)) || self.is_instant() {
            return Ok(m);
        }
        let n = self.num_steps();
        let mut total = 0;
        for s in &mut m {
            let Some(first) = s.points.first().cloned() else {
                continue;
            };
            s.points = self.steps().map(|t| Point { t, ..first.clone() }).collect();
            total += n;
            self.cx.check_samples(total)?;
        }
        Ok(m)
    }

    fn eval_vector_selector(&self, sel: &Selector) -> Result<Vec<Series>> {
        let data = &self.cx.data[sel.id];
        let mut out = Vec::with_capacity(data.len());
        let mut total = 0;
        for s in data {
            let points: Vec<Point> = match sel.at {
                // Pinned: the same sample at every step.
                Some(at) => match self.cx.lookup(&s.all, at - sel.offset) {
                    Some(p) => self.steps().map(|t| Point { t, ..p.clone() }).collect(),
                    None => Vec::new(),
                },
                None => {
                    let mut pts = Vec::new();
                    let mut lo = 0usize;
                    for t in self.steps() {
                        let r = t - sel.offset;
                        // Steps only move forward: skip the prefix already behind us.
                        while lo + 1 < s.all.len() && s.all[lo + 1].t <= r {
                            lo += 1;
                        }
                        if let Some(p) = self.cx.lookup(&s.all[lo..], r) {
                            pts.push(Point { t, ..p.clone() });
                            // A fine step over a long range: stop at the limit, not after
                            // building the whole series.
                            if pts.len() % 4096 == 0 {
                                self.cx.check_samples(total + pts.len())?;
                            }
                        }
                    }
                    pts
                }
            };
            if !points.is_empty() {
                total += points.len();
                self.cx.check_samples(total)?;
                out.push(Series {
                    labels: s.labels.clone(),
                    drop_name: false,
                    points,
                });
            }
        }
        Ok(out)
    }

    /// A range selector as a query result (instant queries only): the raw samples in the
    /// window.
    fn eval_matrix_selector(&self, sel: &Selector, range: i64) -> Result<Vec<Series>> {
        let end = sel.at.unwrap_or(self.start) - sel.offset;
        let mut out = Vec::new();
        let mut total = 0;
        for s in &self.cx.data[sel.id] {
            let w = self.cx.window(s.clean(), end, range);
            if !w.is_empty() {
                total += w.len();
                self.cx.check_samples(total)?;
                out.push(Series {
                    labels: s.labels.clone(),
                    drop_name: false,
                    points: w.to_vec(),
                });
            }
        }
        Ok(out)
    }

    /// Evaluates a subquery's inner expression at the subquery's own steps, aligned to
    /// multiples of its step, over every window the enclosing evaluation needs.
    pub(crate) fn eval_subquery(&self, sq: &SubqueryNode) -> Result<Vec<Series>> {
        let (ref_start, ref_end) = match sq.at {
            Some(a) => (a, a),
            None => (self.start, self.end),
        };
        let lower = ref_start - sq.offset - sq.range;
        let mut start = sq.step * (lower / sq.step);
        let before = if self.cx.closed {
            start < lower
        } else {
            start <= lower
        };
        if before {
            start += sq.step;
        }
        let ev = Ev {
            cx: self.cx,
            start,
            end: ref_end - sq.offset,
            interval: sq.step,
        };
        // Every series of the subquery may have a point per step: a step count beyond the
        // sample limit (`x[10y:1ms]`) is refused before anything is built.
        if ev.num_steps() > self.cx.max_samples {
            return Err(QueryError::TooManySamples("subquery evaluation".into()));
        }
        ev.eval_matrix(&sq.expr)
    }

    /// Evaluates a scalar expression: its value at every step (NaN where it has none).
    pub(crate) fn eval_scalar_steps(&self, n: &Node) -> Result<Vec<f64>> {
        let m = self.eval_matrix(n)?;
        let mut out = vec![f64::NAN; self.num_steps()];
        if let Some(s) = m.first() {
            for p in s.points.iter().filter(|p| p.h.is_none()) {
                let i = ((p.t - self.start) / self.interval) as usize;
                if let Some(slot) = out.get_mut(i) {
                    *slot = p.f;
                }
            }
        }
        Ok(out)
    }

    /// Prometheus's `rangeEval`: evaluates the inputs, then calls `f` once per step with the
    /// input vectors at that step, and assembles the outputs into series.
    pub(crate) fn range_eval<F>(&self, inputs: &[Vec<Series>], mut f: F) -> Result<Vec<Series>>
    where
        F: FnMut(i64, &[Vec<Sample>], &mut Vec<Sample>) -> Result<()>,
    {
        let mut gather = Gather::new(inputs);
        let mut out = Vec::new();
        let mut asm = Assembler::default();
        for t in self.steps() {
            gather.at(t, inputs);
            out.clear();
            f(t, &gather.vectors, &mut out)?;
            if self.is_instant() {
                return Ok(Assembler::instant(t, std::mem::take(&mut out)));
            }
            asm.add(t, &out, self.cx)?;
        }
        Ok(asm.series)
    }
}

/// Gathers the input vectors of each step from evaluated matrices.
pub(crate) struct Gather {
    cursors: Vec<Vec<usize>>,
    pub vectors: Vec<Vec<Sample>>,
    /// For each gathered sample, the index of its input series.
    pub indexes: Vec<Vec<usize>>,
}

impl Gather {
    pub(crate) fn new(inputs: &[Vec<Series>]) -> Self {
        Self {
            cursors: inputs.iter().map(|m| vec![0; m.len()]).collect(),
            vectors: inputs.iter().map(|m| Vec::with_capacity(m.len())).collect(),
            indexes: inputs.iter().map(|m| Vec::with_capacity(m.len())).collect(),
        }
    }

    pub(crate) fn at(&mut self, t: i64, inputs: &[Vec<Series>]) {
        for (k, m) in inputs.iter().enumerate() {
            let (v, idx, cur) = (
                &mut self.vectors[k],
                &mut self.indexes[k],
                &mut self.cursors[k],
            );
            v.clear();
            idx.clear();
            for (i, s) in m.iter().enumerate() {
                let c = &mut cur[i];
                while *c < s.points.len() && s.points[*c].t < t {
                    *c += 1;
                }
                if let Some(p) = s.points.get(*c)
                    && p.t == t
                {
                    v.push(Sample {
                        labels: s.labels.clone(),
                        t,
                        f: p.f,
                        h: p.h.clone(),
                        drop_name: s.drop_name,
                    });
                    idx.push(i);
                    *c += 1;
                }
            }
        }
    }
}

/// Hashes a pointer-sized key cheaply (keys are addresses, already well spread).
#[derive(Default)]
pub(crate) struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn write_u64(&mut self, n: u64) {
        let x = self.0.rotate_left(23) ^ n;
        self.0 = (x ^ (x >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    }
}

pub(crate) type AddrMap<V> = HashMap<usize, V, std::hash::BuildHasherDefault<AddrHasher>>;

/// A map keyed by pairs of addresses.
pub(crate) type AddrPairMap<V> =
    HashMap<(usize, usize), V, std::hash::BuildHasherDefault<AddrHasher>>;

/// Collects per-step output vectors into series keyed by label set. Outputs usually carry
/// the same shared label set at every step, so they are looked up by address first and by
/// content only the first time an address is seen (the label sets are kept alive, so an
/// address cannot be reused for different labels meanwhile).
#[derive(Default)]
pub(crate) struct Assembler {
    by_addr: AddrMap<usize>,
    alive: Vec<Lbls>,
    by_labels: HashMap<Lbls, usize>,
    pub series: Vec<Series>,
    last: Vec<i64>,
    total: usize,
}

impl Assembler {
    pub(crate) fn add(&mut self, t: i64, samples: &[Sample], cx: &Ctx) -> Result<()> {
        for s in samples {
            self.push(t, s)?;
        }
        self.total += samples.len();
        cx.check_samples(self.total)
    }

    pub(crate) fn push(&mut self, t: i64, s: &Sample) -> Result<()> {
        let addr = Arc::as_ptr(&s.labels) as usize;
        let idx = match self.by_addr.get(&addr) {
            Some(&i) => Some(i),
            None => {
                let found = self.by_labels.get(&s.labels).copied();
                let i = found.unwrap_or(self.series.len());
                self.by_addr.insert(addr, i);
                self.alive.push(s.labels.clone());
                found
            }
        };
        match idx {
            Some(i) => {
                if self.last[i] == t {
                    return Err(duplicate_labelset());
                }
                self.last[i] = t;
                self.series[i].points.push(Point {
                    t,
                    f: s.f,
                    h: s.h.clone(),
                });
            }
            None => {
                self.by_labels.insert(s.labels.clone(), self.series.len());
                self.last.push(t);
                self.series.push(Series {
                    labels: s.labels.clone(),
                    drop_name: s.drop_name,
                    points: vec![Point {
                        t,
                        f: s.f,
                        h: s.h.clone(),
                    }],
                });
            }
        }
        Ok(())
    }

    /// The single-step result, in the vector's own order.
    pub(crate) fn instant(t: i64, v: Vec<Sample>) -> Vec<Series> {
        v.into_iter()
            .map(|s| Series {
                labels: s.labels,
                drop_name: s.drop_name,
                points: vec![Point { t, f: s.f, h: s.h }],
            })
            .collect()
    }
}

pub(crate) fn duplicate_labelset() -> QueryError {
    QueryError::Execution("vector cannot contain metrics with the same labelset".into())
}

/// Merges series that have the same labels once names are dropped; their points must not
/// share a timestamp (Prometheus's `mergeSeriesWithSameLabelset`).
pub(crate) fn merge_same_labelsets(m: Vec<Series>) -> Result<Vec<Series>> {
    if m.len() <= 1 {
        return Ok(m);
    }
    let mut index: HashMap<Lbls, usize> = HashMap::with_capacity(m.len());
    let mut out: Vec<Series> = Vec::with_capacity(m.len());
    let mut merged = false;
    for s in m {
        match index.get(&s.labels) {
            Some(&i) => {
                out[i].points.extend(s.points);
                merged = true;
            }
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
        }
    }
    if merged {
        for s in &mut out {
            s.points.sort_by_key(|p| p.t);
            if s.points.windows(2).any(|w| w[0].t == w[1].t) {
                return Err(duplicate_labelset());
            }
        }
    }
    Ok(out)
}

/// A query result as the engine computes it, native histograms included.
#[derive(Debug, Clone)]
pub(crate) enum OutValue {
    Scalar { t: i64, v: f64 },
    String { t: i64, v: String },
    Vector(Vec<OutSample>),
    Matrix(Vec<OutSeries>),
}

#[derive(Debug, Clone)]
pub(crate) struct OutSample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
    pub h: Option<H>,
}

#[derive(Debug, Clone)]
pub(crate) struct OutSeries {
    pub labels: Labels,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone)]
pub(crate) struct Output {
    pub value: OutValue,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

/// Reads one selector's series: float and histogram samples merged in time order.
fn select(
    src: &dyn SeriesSource,
    spec: &plan::SelectorSpec,
    total: &mut usize,
) -> Result<Vec<SelSeries>> {
    let mut by_labels: BTreeMap<Labels, Vec<Point>> = BTreeMap::new();
    for set in &spec.matcher_sets {
        for s in src.select(set, spec.mint, spec.maxt)? {
            let pts = by_labels.entry(s.labels).or_default();
            pts.extend(
                s.samples
                    .iter()
                    .map(|x: &ModelSample| Point::float(x.t, x.v)),
            );
        }
        for s in src.select_histograms(set, spec.mint, spec.maxt)? {
            let pts = by_labels.entry(s.labels).or_default();
            // Schemas outside Prometheus's range cannot be evaluated; such samples are
            // left out rather than trusted.
            pts.extend(
                s.samples
                    .into_iter()
                    .filter(|x| x.h.valid_schema())
                    .map(|x| Point {
                        t: x.t,
                        f: 0.0,
                        h: Some(Arc::new(x.h)),
                    }),
            );
        }
    }
    let mut out = Vec::with_capacity(by_labels.len());
    for (labels, mut all) in by_labels {
        let has_histograms = all.iter().any(|p| p.h.is_some());
        if has_histograms || spec.matcher_sets.len() > 1 {
            all.sort_by_key(|p| p.t);
            all.dedup_by(|a, b| a.t == b.t);
        }
        *total += all.len();
        let without_markers = all
            .iter()
            .any(Point::is_stale)
            .then(|| all.iter().filter(|p| !p.is_stale()).cloned().collect());
        out.push(SelSeries {
            labels: Arc::new(labels),
            all,
            without_markers,
            has_histograms,
        });
    }
    Ok(out)
}

/// Runs one query: plan, select every selector's data once, evaluate, shape the result.
#[expect(clippy::too_many_arguments, reason = "one query's whole description")]
pub(crate) fn execute(
    opts: &EngineOptions,
    cancel: &Cancellation,
    src: &dyn SeriesSource,
    expr: &Expr,
    text: &str,
    start: i64,
    end: i64,
    step: i64,
) -> Result<Output> {
    let is_range = step > 0;
    plan::check_time("start time", start)?;
    plan::check_time("end time", end)?;
    plan::check_time("step", step)?;
    let plan = plan::plan(
        expr,
        text,
        &PlanOptions {
            start,
            end,
            lookback: opts.lookback_delta_ms,
            closed_ranges: opts.prometheus2_ranges,
            default_subquery_step: opts.default_subquery_step_ms,
        },
    )?;
    if is_range && !matches!(plan.root_type, VType::Scalar | VType::Vector) {
        return Err(QueryError::parse(format!(
            "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
            plan.root_type.documented()
        )));
    }
    let mut data = Vec::with_capacity(plan.selectors.len());
    let mut total = 0usize;
    for spec in &plan.selectors {
        data.push(select(src, spec, &mut total)?);
        cancel.check().map_err(QueryError::Stopped)?;
    }
    let cx = Ctx {
        text,
        lookback: opts.lookback_delta_ms,
        closed: opts.prometheus2_ranges,
        max_samples: opts.max_samples,
        data,
        q_start: start,
        q_end: end,
        q_step: step,
        empty: Arc::new(Labels::default()),
        cancel,
        annotations: RefCell::new(BTreeMap::new()),
    };
    cx.check_samples(total)?;
    let ev = Ev {
        cx: &cx,
        start,
        end,
        interval: if is_range { step } else { 1 },
    };
    let val = ev.eval(&plan.root);
    // Step loops end early once the query must stop: the result is then incomplete.
    cancel.check().map_err(QueryError::Stopped)?;
    let val = val?;
    let value = shape_result(val, plan.root_type, is_range, start)?;
    let mut warnings = Vec::new();
    let mut infos = Vec::new();
    for (msg, kind) in cx.annotations.into_inner() {
        match kind {
            AnnoKind::Warning => warnings.push(msg),
            AnnoKind::Info => infos.push(msg),
        }
    }
    Ok(Output {
        value,
        warnings,
        infos,
    })
}

fn final_labels(s: &Series) -> Labels {
    if s.drop_name {
        drop_metric_name(&s.labels)
    } else {
        (*s.labels).clone()
    }
}

fn shape_result(val: Val, root_type: VType, is_range: bool, start: i64) -> Result<OutValue> {
    let m = match val {
        Val::Str(s) => return Ok(OutValue::String { t: start, v: s }),
        Val::Matrix(m) => m,
    };
    if !is_range && root_type == VType::Scalar {
        let v = m
            .first()
            .and_then(|s| s.points.first())
            .map_or(f64::NAN, |p| p.f);
        return Ok(OutValue::Scalar { t: start, v });
    }
    if !is_range && root_type == VType::Vector {
        let mut out = Vec::with_capacity(m.len());
        let mut seen = std::collections::HashSet::with_capacity(m.len());
        for s in &m {
            let Some(p) = s.points.first() else { continue };
            let labels = final_labels(s);
            if !seen.insert(labels.clone()) {
                return Err(duplicate_labelset());
            }
            out.push(OutSample {
                labels,
                t: start,
                v: p.f,
                h: p.h.clone(),
            });
        }
        return Ok(OutValue::Vector(out));
    }
    let cleaned: Vec<Series> = m
        .into_iter()
        .map(|s| Series {
            labels: Arc::new(final_labels(&s)),
            drop_name: false,
            points: s.points,
        })
        .collect();
    let mut merged = merge_same_labelsets(cleaned)?;
    merged.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(OutValue::Matrix(
        merged
            .into_iter()
            .filter(|s| !s.points.is_empty())
            .map(|s| OutSeries {
                labels: Arc::unwrap_or_clone(s.labels),
                points: s.points,
            })
            .collect(),
    ))
}

/// Prometheus's annotation texts (`util/annotations`).
pub(crate) mod notes {
    use crate::labels::go_quote;

    fn with_name(base: &str, name: &str) -> String {
        if name.is_empty() {
            base.to_string()
        } else {
            format!("{base} for metric name {}", go_quote(name))
        }
    }

    pub(crate) fn mixed_floats_histograms(name: &str) -> String {
        format!(
            "PromQL warning: encountered a mix of histograms and floats for metric name {}",
            go_quote(name)
        )
    }

    pub(crate) fn mixed_floats_histograms_agg() -> String {
        "PromQL warning: encountered a mix of histograms and floats for aggregation".into()
    }

    pub(crate) fn not_counter(name: &str) -> String {
        format!(
            "PromQL warning: this native histogram metric is not a counter: {}",
            go_quote(name)
        )
    }

    pub(crate) fn not_gauge(name: &str) -> String {
        format!(
            "PromQL warning: this native histogram metric is not a gauge: {}",
            go_quote(name)
        )
    }

    pub(crate) fn mixed_exponential_custom(name: &str) -> String {
        format!(
            "PromQL warning: vector contains a mix of histograms with exponential and custom buckets schemas for metric name {}",
            go_quote(name)
        )
    }

    pub(crate) fn ignored_in_aggregation(agg: &str) -> String {
        format!("PromQL info: ignored histogram in {agg} aggregation")
    }

    pub(crate) fn ignored_in_mixed_range(name: &str) -> String {
        format!(
            "PromQL info: ignored histograms in a range containing both floats and histograms for metric name {}",
            go_quote(name)
        )
    }

    pub(crate) fn incompatible_types(lhs: &str, op: &str, rhs: &str) -> String {
        format!(
            "PromQL info: incompatible sample types encountered for binary operator {}: {lhs} {op} {rhs}",
            go_quote(op)
        )
    }

    pub(crate) fn incompatible_layout(op: &str) -> String {
        format!("PromQL warning: incompatible bucket layout encountered for binary operator {op}")
    }

    pub(crate) fn counter_reset_collision(operation: &str) -> String {
        format!("PromQL warning: conflicting counter resets during histogram {operation}")
    }

    pub(crate) fn reconciled(operation: &str) -> String {
        format!("PromQL info: mismatched custom buckets were reconciled during {operation}")
    }

    pub(crate) fn mixed_classic_native(name: &str) -> String {
        with_name(
            "PromQL warning: vector contains a mix of classic and native histograms",
            name,
        )
    }

    pub(crate) fn bad_bucket_label(le: &str, name: &str) -> String {
        with_name(
            &format!(
                "PromQL warning: bucket label \"le\" is missing or has a malformed value of {}",
                go_quote(le)
            ),
            name,
        )
    }

    pub(crate) fn forced_monotonicity(name: &str) -> String {
        with_name(
            "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)",
            name,
        )
    }

    pub(crate) fn invalid_quantile(q: f64) -> String {
        format!(
            "PromQL warning: quantile value should be between 0 and 1, got {}",
            crate::functions::go_fmt_g(q)
        )
    }

    pub(crate) fn possible_non_counter(name: &str) -> String {
        format!(
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {}",
            go_quote(name)
        )
    }
}
