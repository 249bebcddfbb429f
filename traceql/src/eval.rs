//! Evaluation of an accepted query over one trace held in memory.
//!
//! Semantics follow Tempo's engine: the pipeline starts with one spanset holding every span
//! of the trace; a filter keeps the spans its expression is `true` for and drops spansets
//! left empty; `&&`/`||` between spansets need both/either side non-empty and yield the
//! union of their spans; structural operators yield the right-hand spans related to some
//! left-hand span (`!` forms: related to none; `&` forms: the related spans of both sides).
//!
//! Comparisons never fail: a missing attribute, or a value of another type (a string
//! attribute compared with a number), makes the comparison false. Integers, floats and
//! durations (as nanoseconds) compare numerically with each other.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

use sightline_model::{AnyValue, ResourceSpans, ScopeSpans, Span, SpanId, SpanKind, StatusCode};

use crate::ast::{
    Aggregate, AggregateFn, ArithOp, CmpOp, Element, Expr, Field, Intrinsic, Pipeline,
    ScalarFilter, Scope, SpansetExpr, SpansetOp, Static,
};

/// One span with the resource and instrumentation scope it came with: the item type of
/// `SpanBatch::spans()`.
#[derive(Debug, Clone, Copy)]
pub struct SpanRef<'a> {
    pub resource: &'a ResourceSpans,
    pub scope: &'a ScopeSpans,
    pub span: &'a Span,
}

impl<'a> From<(&'a ResourceSpans, &'a ScopeSpans, &'a Span)> for SpanRef<'a> {
    fn from((resource, scope, span): (&'a ResourceSpans, &'a ScopeSpans, &'a Span)) -> Self {
        Self {
            resource,
            scope,
            span,
        }
    }
}

/// A set of matching spans of one trace, as the pipeline produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanSet {
    /// Indices into the trace given to [`crate::Query::evaluate`], ascending, never empty.
    pub spans: Vec<usize>,
    /// The value of the last aggregate that filtered this spanset (`count()`, `avg(…)`).
    pub scalar: Option<Static>,
    /// What the pipeline attached, in order: each `by(…)` with its group's value and each
    /// aggregate with its value, under their canonical text (`by(resource.service.name)`,
    /// `count()`).
    pub attributes: Vec<(String, Static)>,
}

/// What the evaluator knows about the trace as a whole.
pub(crate) struct Trace<'t, 'a> {
    spans: &'t [SpanRef<'a>],
    /// Index of each span's parent when it is in the trace.
    parent: Vec<Option<usize>>,
    child_count: Vec<i64>,
    root: Option<usize>,
    duration_ns: i64,
}

impl<'t, 'a> Trace<'t, 'a> {
    pub(crate) fn new(spans: &'t [SpanRef<'a>]) -> Self {
        let mut by_id: HashMap<SpanId, usize> = HashMap::with_capacity(spans.len());
        for (i, s) in spans.iter().enumerate() {
            by_id.entry(s.span.span_id).or_insert(i);
        }
        let parent: Vec<Option<usize>> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.span
                    .parent_span_id
                    .and_then(|p| by_id.get(&p).copied())
                    .filter(|p| *p != i)
            })
            .collect();
        let mut child_count = vec![0i64; spans.len()];
        for p in parent.iter().flatten() {
            child_count[*p] += 1;
        }
        let root = spans.iter().position(|s| s.span.is_root());
        let start = spans.iter().map(|s| s.span.start_ns).min().unwrap_or(0);
        let end = spans.iter().map(|s| s.span.end_ns).max().unwrap_or(0);
        Self {
            spans,
            parent,
            child_count,
            root,
            duration_ns: end.saturating_sub(start),
        }
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    pub(crate) fn span(&self, i: usize) -> SpanRef<'a> {
        self.spans[i]
    }
}

/// A field of span `i` as a label value: nil when missing, arrays and maps as their text.
pub(crate) fn field_static(field: &Field, trace: &Trace<'_, '_>, i: usize) -> Static {
    field_value(field, trace, i).to_static()
}

/// A numeric field of span `i`: an integer, a float or a duration (`true` for a duration,
/// then in nanoseconds); `None` for anything else, missing values and NaN.
pub(crate) fn field_number(field: &Field, trace: &Trace<'_, '_>, i: usize) -> Option<(f64, bool)> {
    let (value, duration) = match field_value(field, trace, i) {
        Value::Int(v) => (v as f64, false),
        Value::Float(v) => (v, false),
        Value::Duration(v) => (v as f64, true),
        _ => return None,
    };
    (!value.is_nan()).then_some((value, duration))
}

/// Runs the pipeline over a prepared trace: the spansets that survive it.
pub(crate) fn run(pipeline: &Pipeline, trace: &Trace<'_, '_>) -> Vec<SpanSet> {
    if trace.len() == 0 {
        return Vec::new();
    }
    let all = SpanSet {
        spans: (0..trace.len()).collect(),
        scalar: None,
        attributes: Vec::new(),
    };
    eval_pipeline(pipeline, trace, vec![all])
}

/// A value met while evaluating: a literal, or borrowed from a span.
#[derive(Debug, Clone)]
enum Value<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Duration(i64),
    Status(StatusCode),
    Kind(SpanKind),
    Array(&'a [AnyValue]),
    /// Bytes and maps: they exist, but compare with nothing.
    Opaque(&'a AnyValue),
}

impl<'a> Value<'a> {
    fn from_static(s: &'a Static) -> Self {
        match s {
            Static::Nil => Value::Nil,
            Static::Bool(b) => Value::Bool(*b),
            Static::Int(i) => Value::Int(*i),
            Static::Float(f) => Value::Float(*f),
            Static::Str(s) => Value::Str(Cow::Borrowed(s)),
            Static::Duration(d) => Value::Duration(*d),
            Static::Status(s) => Value::Status(*s),
            Static::Kind(k) => Value::Kind(*k),
        }
    }

    fn from_any(v: &'a AnyValue) -> Self {
        match v {
            AnyValue::String(s) => Value::Str(Cow::Borrowed(s)),
            AnyValue::Bool(b) => Value::Bool(*b),
            AnyValue::Int(i) => Value::Int(*i),
            AnyValue::Double(d) => Value::Float(*d),
            AnyValue::Array(items) => Value::Array(items),
            other => Value::Opaque(other),
        }
    }

    fn to_static(&self) -> Static {
        match self {
            Value::Nil => Static::Nil,
            Value::Bool(b) => Static::Bool(*b),
            Value::Int(i) => Static::Int(*i),
            Value::Float(f) => Static::Float(*f),
            Value::Str(s) => Static::Str(s.to_string()),
            Value::Duration(d) => Static::Duration(*d),
            Value::Status(s) => Static::Status(*s),
            Value::Kind(k) => Static::Kind(*k),
            Value::Array(items) => Static::Str(AnyValue::Array(items.to_vec()).to_text()),
            Value::Opaque(v) => Static::Str(v.to_text()),
        }
    }

    fn number(&self) -> Option<Num> {
        match self {
            Value::Int(i) => Some(Num::Int(*i)),
            Value::Float(f) => Some(Num::Float(*f)),
            Value::Duration(d) => Some(Num::Duration(*d)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
    Duration(i64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) | Num::Duration(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    fn into_static(self) -> Static {
        match self {
            Num::Int(i) => Static::Int(i),
            Num::Float(f) => Static::Float(f),
            Num::Duration(d) => Static::Duration(d),
        }
    }

    fn into_value(self) -> Value<'static> {
        match self {
            Num::Int(i) => Value::Int(i),
            Num::Float(f) => Value::Float(f),
            Num::Duration(d) => Value::Duration(d),
        }
    }

    fn cmp(self, other: Num) -> Option<Ordering> {
        match (self, other) {
            (Num::Int(a) | Num::Duration(a), Num::Int(b) | Num::Duration(b)) => Some(a.cmp(&b)),
            _ => self.as_f64().partial_cmp(&other.as_f64()),
        }
    }
}

/// `l op r` on numbers: integers stay integers (falling back to floats on overflow),
/// durations added to or subtracted from durations stay durations, the rest is float
/// arithmetic. `None` for an integer division or remainder by zero.
fn arith(op: ArithOp, l: Num, r: Num) -> Option<Num> {
    let float = |a: f64, b: f64| {
        Num::Float(match op {
            ArithOp::Add => a + b,
            ArithOp::Sub => a - b,
            ArithOp::Mul => a * b,
            ArithOp::Div => a / b,
            ArithOp::Mod => a % b,
            ArithOp::Pow => a.powf(b),
        })
    };
    match (l, r) {
        (Num::Int(a), Num::Int(b)) => {
            let exact = match op {
                ArithOp::Add => a.checked_add(b),
                ArithOp::Sub => a.checked_sub(b),
                ArithOp::Mul => a.checked_mul(b),
                ArithOp::Div if b == 0 => return None,
                ArithOp::Mod if b == 0 => return None,
                ArithOp::Div => a.checked_div(b),
                ArithOp::Mod => a.checked_rem(b),
                ArithOp::Pow => u32::try_from(b).ok().and_then(|e| a.checked_pow(e)),
            };
            Some(exact.map_or_else(|| float(a as f64, b as f64), Num::Int))
        }
        (Num::Duration(a), Num::Duration(b)) if matches!(op, ArithOp::Add | ArithOp::Sub) => {
            let exact = if op == ArithOp::Add {
                a.checked_add(b)
            } else {
                a.checked_sub(b)
            };
            Some(exact.map_or_else(|| float(a as f64, b as f64), Num::Duration))
        }
        _ => Some(float(l.as_f64(), r.as_f64())),
    }
}

/// Arithmetic on two literals (constant folding in the parser).
pub(crate) fn arith_static(op: ArithOp, l: &Static, r: &Static) -> Option<Static> {
    let l = Value::from_static(l).number()?;
    let r = Value::from_static(r).number()?;
    arith(op, l, r).map(Num::into_static)
}

/// `l op r` for the six ordering operators; false whenever the types do not meet.
fn compare(op: CmpOp, l: &Value<'_>, r: &Value<'_>) -> bool {
    match (l, r) {
        (Value::Array(_), Value::Array(_)) => false,
        (Value::Array(items), r) => array_test(op == CmpOp::Ne, items, |v| compare(op, &v, r)),
        (l, Value::Array(items)) => array_test(op == CmpOp::Ne, items, |v| compare(op, l, &v)),
        _ => {
            let equality_only = matches!(op, CmpOp::Eq | CmpOp::Ne);
            let ordering = match (l, r) {
                (Value::Str(a), Value::Str(b)) => Some(a.as_ref().cmp(b.as_ref())),
                (Value::Bool(a), Value::Bool(b)) if equality_only => Some(a.cmp(b)),
                (Value::Status(a), Value::Status(b)) if equality_only => Some(if a == b {
                    Ordering::Equal
                } else {
                    Ordering::Less
                }),
                (Value::Kind(a), Value::Kind(b)) if equality_only => Some(if a == b {
                    Ordering::Equal
                } else {
                    Ordering::Less
                }),
                _ => match (l.number(), r.number()) {
                    (Some(a), Some(b)) => a.cmp(b),
                    _ => None,
                },
            };
            let Some(ordering) = ordering else {
                return false;
            };
            match op {
                CmpOp::Eq => ordering == Ordering::Equal,
                CmpOp::Ne => ordering != Ordering::Equal,
                CmpOp::Gt => ordering == Ordering::Greater,
                CmpOp::Ge => ordering != Ordering::Less,
                CmpOp::Lt => ordering == Ordering::Less,
                CmpOp::Le => ordering != Ordering::Greater,
                CmpOp::Regex | CmpOp::NotRegex => false,
            }
        }
    }
}

/// An array attribute against a scalar, as Tempo does it: a match on any element, except
/// for the negative operators (`!=`, `!~`), which must hold for every element.
fn array_test(all: bool, items: &[AnyValue], test: impl Fn(Value<'_>) -> bool) -> bool {
    if all {
        items.iter().all(|v| test(Value::from_any(v)))
    } else {
        items.iter().any(|v| test(Value::from_any(v)))
    }
}

fn regex_match(negated: bool, value: &Value<'_>, regex: &regex::Regex) -> bool {
    match value {
        Value::Str(s) => regex.is_match(s) != negated,
        Value::Array(items) => array_test(negated, items, |v| regex_match(negated, &v, regex)),
        _ => false,
    }
}

fn lookup<'a>(attributes: &'a [(String, AnyValue)], name: &str) -> Option<&'a AnyValue> {
    attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn field_value<'a>(field: &Field, trace: &Trace<'_, 'a>, i: usize) -> Value<'a> {
    let s = trace.spans[i];
    match field {
        Field::Attribute { scope, name } => {
            let found = match scope {
                Scope::Span => lookup(&s.span.attributes, name),
                Scope::Resource => lookup(&s.resource.resource, name),
                Scope::Unscoped => {
                    lookup(&s.span.attributes, name).or_else(|| lookup(&s.resource.resource, name))
                }
                Scope::Instrumentation => lookup(&s.scope.scope_attributes, name),
            };
            found.map_or(Value::Nil, Value::from_any)
        }
        Field::Intrinsic(intrinsic) => match intrinsic {
            Intrinsic::Name => Value::Str(Cow::Borrowed(&s.span.name)),
            Intrinsic::Status => Value::Status(s.span.status_code),
            Intrinsic::StatusMessage => Value::Str(Cow::Borrowed(&s.span.status_message)),
            Intrinsic::Kind => Value::Kind(s.span.kind),
            Intrinsic::Duration => Value::Duration(s.span.duration_ns()),
            Intrinsic::SpanId => Value::Str(Cow::Owned(s.span.span_id.to_hex())),
            Intrinsic::ParentId => s
                .span
                .parent_span_id
                .map_or(Value::Nil, |p| Value::Str(Cow::Owned(p.to_hex()))),
            Intrinsic::ChildCount => Value::Int(trace.child_count[i]),
            Intrinsic::TraceId => Value::Str(Cow::Owned(s.span.trace_id.to_hex())),
            Intrinsic::RootName => trace.root.map_or(Value::Nil, |r| {
                Value::Str(Cow::Borrowed(&trace.spans[r].span.name))
            }),
            Intrinsic::RootServiceName => trace.root.map_or(Value::Nil, |r| {
                Value::Str(Cow::Borrowed(trace.spans[r].resource.service_name()))
            }),
            Intrinsic::TraceDuration => Value::Duration(trace.duration_ns),
            Intrinsic::InstrumentationName => Value::Str(Cow::Borrowed(&s.scope.scope_name)),
            Intrinsic::InstrumentationVersion => Value::Str(Cow::Borrowed(&s.scope.scope_version)),
        },
    }
}

fn eval_expr<'a>(expr: &'a Expr, trace: &Trace<'_, 'a>, i: usize) -> Value<'a> {
    match expr {
        Expr::Static(s) => Value::from_static(s),
        Expr::Field(f) => field_value(f, trace, i),
        Expr::Compare { op, lhs, rhs } => {
            let l = eval_expr(lhs, trace, i);
            let r = eval_expr(rhs, trace, i);
            Value::Bool(compare(*op, &l, &r))
        }
        Expr::Match {
            negated,
            lhs,
            pattern,
        } => Value::Bool(regex_match(
            *negated,
            &eval_expr(lhs, trace, i),
            &pattern.regex,
        )),
        Expr::Arith { op, lhs, rhs } => {
            let l = eval_expr(lhs, trace, i).number();
            let r = eval_expr(rhs, trace, i).number();
            match (l, r) {
                (Some(l), Some(r)) => arith(*op, l, r).map_or(Value::Nil, Num::into_value),
                _ => Value::Nil,
            }
        }
        // Operands that are not booleans (a missing attribute) count as false.
        Expr::And(lhs, rhs) => Value::Bool(
            matches!(eval_expr(lhs, trace, i), Value::Bool(true))
                && matches!(eval_expr(rhs, trace, i), Value::Bool(true)),
        ),
        Expr::Or(lhs, rhs) => Value::Bool(
            matches!(eval_expr(lhs, trace, i), Value::Bool(true))
                || matches!(eval_expr(rhs, trace, i), Value::Bool(true)),
        ),
        Expr::Neg(inner) => match eval_expr(inner, trace, i) {
            Value::Int(v) => v
                .checked_neg()
                .map_or(Value::Float(-(v as f64)), Value::Int),
            Value::Float(v) => Value::Float(-v),
            Value::Duration(v) => v
                .checked_neg()
                .map_or(Value::Float(-(v as f64)), Value::Duration),
            _ => Value::Nil,
        },
        Expr::Not(inner) => match eval_expr(inner, trace, i) {
            Value::Bool(b) => Value::Bool(!b),
            _ => Value::Nil,
        },
        Expr::Exists(inner) => Value::Bool(!matches!(eval_expr(inner, trace, i), Value::Nil)),
    }
}

/// Runs the pipeline over one trace.
pub(crate) fn evaluate(pipeline: &Pipeline, spans: &[SpanRef<'_>]) -> Vec<SpanSet> {
    run(pipeline, &Trace::new(spans))
}

fn eval_pipeline(pipeline: &Pipeline, trace: &Trace<'_, '_>, input: Vec<SpanSet>) -> Vec<SpanSet> {
    let mut sets = input;
    for element in &pipeline.elements {
        if sets.is_empty() {
            break;
        }
        sets = eval_element(element, trace, sets);
    }
    sets.retain(|s| !s.spans.is_empty());
    sets
}

fn eval_element(element: &Element, trace: &Trace<'_, '_>, input: Vec<SpanSet>) -> Vec<SpanSet> {
    match element {
        Element::Spanset(expr) => input
            .iter()
            .flat_map(|set| eval_spanset(expr, trace, set))
            .collect(),
        Element::ScalarFilter(filter) => input
            .into_iter()
            .filter_map(|set| scalar_filter(filter, trace, set))
            .collect(),
        Element::GroupBy(expr) => {
            let label = format!("by({expr})");
            let mut out = Vec::new();
            for set in input {
                let mut groups: Vec<(Static, Vec<usize>)> = Vec::new();
                for &i in &set.spans {
                    let key = eval_expr(expr, trace, i).to_static();
                    match groups.iter_mut().find(|(k, _)| same_group(k, &key)) {
                        Some((_, members)) => members.push(i),
                        None => groups.push((key, vec![i])),
                    }
                }
                for (key, spans) in groups {
                    let mut attributes = set.attributes.clone();
                    attributes.push((label.clone(), key));
                    out.push(SpanSet {
                        spans,
                        scalar: set.scalar.clone(),
                        attributes,
                    });
                }
            }
            out
        }
        Element::Coalesce => {
            let mut spans: Vec<usize> = input.into_iter().flat_map(|s| s.spans).collect();
            spans.sort_unstable();
            spans.dedup();
            if spans.is_empty() {
                return Vec::new();
            }
            vec![SpanSet {
                spans,
                scalar: None,
                attributes: Vec::new(),
            }]
        }
        Element::Select(_) => input,
    }
}

/// Group keys are equal values of the same type; floats by their bits, so NaN groups too.
fn same_group(a: &Static, b: &Static) -> bool {
    match (a, b) {
        (Static::Float(x), Static::Float(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

fn scalar_filter(filter: &ScalarFilter, trace: &Trace<'_, '_>, set: SpanSet) -> Option<SpanSet> {
    let value = aggregate(&filter.aggregate, trace, &set.spans)?;
    if !compare(
        filter.op,
        &Value::from_static(&value),
        &Value::from_static(&filter.value),
    ) {
        return None;
    }
    let mut out = set;
    out.attributes
        .push((filter.aggregate.to_string(), value.clone()));
    out.scalar = Some(value);
    Some(out)
}

/// The aggregate over a spanset's spans; spans whose value is missing or not a number are
/// skipped, and `None` (the spanset is dropped) when no span has one.
fn aggregate(aggregate: &Aggregate, trace: &Trace<'_, '_>, spans: &[usize]) -> Option<Static> {
    let Some(arg) = &aggregate.arg else {
        return Some(Static::Int(i64::try_from(spans.len()).unwrap_or(i64::MAX)));
    };
    let values: Vec<Num> = spans
        .iter()
        .filter_map(|&i| eval_expr(arg, trace, i).number())
        .collect();
    let first = *values.first()?;
    match aggregate.func {
        AggregateFn::Count => unreachable!("count() takes no argument"),
        AggregateFn::Min | AggregateFn::Max => {
            let wanted = if aggregate.func == AggregateFn::Min {
                Ordering::Less
            } else {
                Ordering::Greater
            };
            let best = values.iter().skip(1).fold(first, |best, &v| {
                if v.cmp(best) == Some(wanted) { v } else { best }
            });
            Some(best.into_static())
        }
        AggregateFn::Sum | AggregateFn::Avg => {
            let sum = values
                .iter()
                .skip(1)
                .try_fold(first, |acc, &v| arith(ArithOp::Add, acc, v))?;
            if aggregate.func == AggregateFn::Sum {
                return Some(sum.into_static());
            }
            let mean = sum.as_f64() / values.len() as f64;
            Some(match first {
                Num::Duration(_) if values.iter().all(|v| matches!(v, Num::Duration(_))) => {
                    Static::Duration(mean.round() as i64)
                }
                _ => Static::Float(mean),
            })
        }
    }
}

fn eval_spanset(expr: &SpansetExpr, trace: &Trace<'_, '_>, input: &SpanSet) -> Vec<SpanSet> {
    match expr {
        SpansetExpr::Filter(filter) => {
            let spans: Vec<usize> = input
                .spans
                .iter()
                .copied()
                .filter(|&i| matches!(eval_expr(filter, trace, i), Value::Bool(true)))
                .collect();
            if spans.is_empty() {
                return Vec::new();
            }
            vec![SpanSet {
                spans,
                scalar: input.scalar.clone(),
                attributes: input.attributes.clone(),
            }]
        }
        SpansetExpr::Pipeline(p) => eval_pipeline(p, trace, vec![input.clone()]),
        SpansetExpr::Op { op, lhs, rhs } => {
            let l = eval_spanset(lhs, trace, input);
            let r = eval_spanset(rhs, trace, input);
            let spans = match op {
                SpansetOp::And if !l.is_empty() && !r.is_empty() => union(&l, &r),
                SpansetOp::Union if !l.is_empty() || !r.is_empty() => union(&l, &r),
                SpansetOp::And | SpansetOp::Union => Vec::new(),
                structural => {
                    // Operands never hold several spansets: the parser refuses `by()`
                    // without `coalesce()` here, as Tempo does.
                    let ls = l.first().map_or(&[][..], |s| &s.spans[..]);
                    let rs = r.first().map_or(&[][..], |s| &s.spans[..]);
                    related_spans(*structural, trace, ls, rs)
                }
            };
            if spans.is_empty() {
                return Vec::new();
            }
            vec![SpanSet {
                spans,
                scalar: input.scalar.clone(),
                attributes: input.attributes.clone(),
            }]
        }
    }
}

fn union(l: &[SpanSet], r: &[SpanSet]) -> Vec<usize> {
    let mut spans: Vec<usize> = l
        .iter()
        .chain(r)
        .flat_map(|s| s.spans.iter().copied())
        .collect();
    spans.sort_unstable();
    spans.dedup();
    spans
}

#[derive(Debug, Clone, Copy)]
enum Relation {
    Child,
    Parent,
    Descendant,
    Ancestor,
    Sibling,
}

impl Relation {
    fn inverse(self) -> Self {
        match self {
            Relation::Child => Relation::Parent,
            Relation::Parent => Relation::Child,
            Relation::Descendant => Relation::Ancestor,
            Relation::Ancestor => Relation::Descendant,
            Relation::Sibling => Relation::Sibling,
        }
    }
}

fn related_spans(op: SpansetOp, trace: &Trace<'_, '_>, l: &[usize], r: &[usize]) -> Vec<usize> {
    if r.is_empty() {
        return Vec::new();
    }
    let (relation, mode) = match op {
        SpansetOp::Child => (Relation::Child, Mode::Plain),
        SpansetOp::Parent => (Relation::Parent, Mode::Plain),
        SpansetOp::Descendant => (Relation::Descendant, Mode::Plain),
        SpansetOp::Ancestor => (Relation::Ancestor, Mode::Plain),
        SpansetOp::Sibling => (Relation::Sibling, Mode::Plain),
        SpansetOp::NotChild => (Relation::Child, Mode::Not),
        SpansetOp::NotParent => (Relation::Parent, Mode::Not),
        SpansetOp::NotDescendant => (Relation::Descendant, Mode::Not),
        SpansetOp::NotAncestor => (Relation::Ancestor, Mode::Not),
        SpansetOp::NotSibling => (Relation::Sibling, Mode::Not),
        SpansetOp::UnionChild => (Relation::Child, Mode::Union),
        SpansetOp::UnionParent => (Relation::Parent, Mode::Union),
        SpansetOp::UnionDescendant => (Relation::Descendant, Mode::Union),
        SpansetOp::UnionAncestor => (Relation::Ancestor, Mode::Union),
        SpansetOp::UnionSibling => (Relation::Sibling, Mode::Union),
        SpansetOp::And | SpansetOp::Union => return Vec::new(),
    };
    let matched = matching(relation, trace, l, r);
    let mut out = match mode {
        Mode::Plain => matched,
        Mode::Not => {
            let mut related = vec![false; trace.len()];
            for &i in &matched {
                related[i] = true;
            }
            r.iter().copied().filter(|&i| !related[i]).collect()
        }
        Mode::Union => {
            if matched.is_empty() {
                return Vec::new();
            }
            let mut both = matched;
            both.extend(matching(relation.inverse(), trace, r, l));
            both
        }
    };
    out.sort_unstable();
    out.dedup();
    out
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Plain,
    Not,
    Union,
}

/// The spans of `r` that stand in `relation` to at least one span of `l` (`r` is a child
/// of an `l` span, a parent of one, …).
fn matching(relation: Relation, trace: &Trace<'_, '_>, l: &[usize], r: &[usize]) -> Vec<usize> {
    let n = trace.len();
    let mut in_l = vec![false; n];
    for &i in l {
        in_l[i] = true;
    }
    let parent = &trace.parent;
    match relation {
        Relation::Child => r
            .iter()
            .copied()
            .filter(|&i| parent[i].is_some_and(|p| in_l[p]))
            .collect(),
        Relation::Parent => {
            let mut is_parent = vec![false; n];
            for &i in l {
                if let Some(p) = parent[i] {
                    is_parent[p] = true;
                }
            }
            r.iter().copied().filter(|&i| is_parent[i]).collect()
        }
        Relation::Descendant => {
            // Whether some ancestor of a span is in `l`, resolved once per span: a walk up
            // stops at the first span already resolved, and every span it passed shares its
            // answer. Linear in the trace even for a 20,000-span chain (a walk per span
            // would be quadratic); a parent cycle (a malformed trace) answers no.
            const UNKNOWN: u8 = 0;
            const WALKING: u8 = 1;
            const NO: u8 = 2;
            const YES: u8 = 3;
            let mut state = vec![UNKNOWN; n];
            let mut walked = Vec::new();
            let mut has_l_ancestor = |i: usize| -> bool {
                if state[i] >= NO {
                    return state[i] == YES;
                }
                walked.clear();
                walked.push(i);
                state[i] = WALKING;
                let mut current = i;
                let answer = loop {
                    let Some(p) = parent[current] else {
                        break false;
                    };
                    if in_l[p] {
                        break true;
                    }
                    match state[p] {
                        NO | WALKING => break false,
                        YES => break true,
                        _ => {}
                    }
                    state[p] = WALKING;
                    walked.push(p);
                    current = p;
                };
                for &w in &walked {
                    state[w] = if answer { YES } else { NO };
                }
                answer
            };
            r.iter().copied().filter(|&i| has_l_ancestor(i)).collect()
        }
        Relation::Ancestor => {
            let mut is_ancestor = vec![false; n];
            for &i in l {
                let mut current = parent[i];
                while let Some(p) = current {
                    if is_ancestor[p] {
                        break;
                    }
                    is_ancestor[p] = true;
                    current = parent[p];
                }
            }
            r.iter().copied().filter(|&i| is_ancestor[i]).collect()
        }
        Relation::Sibling => {
            let mut l_children = vec![0usize; n];
            for &i in l {
                if let Some(p) = parent[i] {
                    l_children[p] += 1;
                }
            }
            r.iter()
                .copied()
                .filter(|&i| parent[i].is_some_and(|p| l_children[p] > usize::from(in_l[i])))
                .collect()
        }
    }
}
