//! The syntax tree of an accepted query, and its canonical text (`Display`).
//!
//! Only what this crate evaluates can be represented: the parser refuses everything else
//! before a tree is built. The canonical text puts parentheses only where precedence needs
//! them, and re-parses to an equal tree.

use std::fmt;

use sightline_model::{SpanKind, StatusCode};

/// A literal value, or a value computed from a span.
#[derive(Debug, Clone, PartialEq)]
pub enum Static {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// Nanoseconds.
    Duration(i64),
    Status(StatusCode),
    Kind(SpanKind),
}

/// A span or trace property that is not an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Intrinsic {
    /// `name`, `span:name`
    Name,
    /// `status`, `span:status`
    Status,
    /// `statusMessage`, `span:statusMessage`
    StatusMessage,
    /// `kind`, `span:kind`
    Kind,
    /// `duration`, `span:duration`
    Duration,
    /// `span:id`, as lower-case hex.
    SpanId,
    /// `span:parentID`, as lower-case hex; nil for a root span.
    ParentId,
    /// `childCount`, `span:childCount`: the spans of the trace whose parent is this span.
    ChildCount,
    /// `trace:id`, as lower-case hex.
    TraceId,
    /// `rootName`, `trace:rootName`: the name of the trace's root span.
    RootName,
    /// `rootServiceName`, `trace:rootService`: the service of the trace's root span.
    RootServiceName,
    /// `traceDuration`, `trace:duration`: from the earliest start to the latest end.
    TraceDuration,
    /// `instrumentation:name`: the instrumentation scope's name.
    InstrumentationName,
    /// `instrumentation:version`
    InstrumentationVersion,
}

impl Intrinsic {
    /// The canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Intrinsic::Name => "name",
            Intrinsic::Status => "status",
            Intrinsic::StatusMessage => "statusMessage",
            Intrinsic::Kind => "kind",
            Intrinsic::Duration => "duration",
            Intrinsic::SpanId => "span:id",
            Intrinsic::ParentId => "span:parentID",
            Intrinsic::ChildCount => "span:childCount",
            Intrinsic::TraceId => "trace:id",
            Intrinsic::RootName => "rootName",
            Intrinsic::RootServiceName => "rootServiceName",
            Intrinsic::TraceDuration => "traceDuration",
            Intrinsic::InstrumentationName => "instrumentation:name",
            Intrinsic::InstrumentationVersion => "instrumentation:version",
        }
    }
}

/// Where an attribute is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `span.x`
    Span,
    /// `resource.x`
    Resource,
    /// `.x`: the span's attribute if it has one, else the resource's (Tempo's rule).
    Unscoped,
    /// `instrumentation.x`: the instrumentation scope's attributes.
    Instrumentation,
}

/// What a condition reads from a span.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    Intrinsic(Intrinsic),
    Attribute { scope: Scope, name: String },
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    /// `=~`: the pattern must match the whole value (anchored like Tempo's).
    Regex,
    /// `!~`
    NotRegex,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Regex => "=~",
            CmpOp::NotRegex => "!~",
        }
    }

    /// The operator with its operands swapped: `a < b` is `b > a`.
    pub(crate) fn flipped(self) -> Self {
        match self {
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            other => other,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl ArithOp {
    fn as_str(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Mod => "%",
            ArithOp::Pow => "^",
        }
    }
}

/// A regular expression from a string literal, compiled once and anchored at both ends.
#[derive(Clone)]
pub(crate) struct Pattern {
    pub source: String,
    pub regex: regex::Regex,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.source)
    }
}

/// An expression evaluated on one span (inside `{ }`, `by()`, aggregates).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Static(Static),
    Field(Field),
    Compare {
        op: CmpOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Match {
        negated: bool,
        lhs: Box<Expr>,
        pattern: Pattern,
    },
    Arith {
        op: ArithOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    /// `x != nil`
    Exists(Box<Expr>),
}

/// Binding strength for printing, mirroring the parser's.
pub(crate) const PREC_OR: u8 = 2;
pub(crate) const PREC_CMP: u8 = 3;
pub(crate) const PREC_ADD: u8 = 4;
/// Unary `-` and `!`: they take a `*`-level operand and bind tighter than `+`.
const PREC_UNARY: u8 = 5;
pub(crate) const PREC_MUL: u8 = 6;
pub(crate) const PREC_POW: u8 = 7;

impl ArithOp {
    pub(crate) fn precedence(self) -> u8 {
        match self {
            ArithOp::Add | ArithOp::Sub => PREC_ADD,
            ArithOp::Mul | ArithOp::Div | ArithOp::Mod => PREC_MUL,
            ArithOp::Pow => PREC_POW,
        }
    }
}

impl Expr {
    fn precedence(&self) -> u8 {
        match self {
            Expr::Static(Static::Int(i)) if *i < 0 => PREC_UNARY,
            Expr::Static(Static::Float(v)) if *v < 0.0 || (*v == 0.0 && v.is_sign_negative()) => {
                PREC_UNARY
            }
            Expr::Static(Static::Duration(d)) if *d < 0 => PREC_UNARY,
            Expr::Static(_) | Expr::Field(_) => u8::MAX,
            Expr::Compare { .. } | Expr::Match { .. } | Expr::Exists(_) => PREC_CMP,
            Expr::Arith { op, .. } => op.precedence(),
            Expr::And(..) | Expr::Or(..) => PREC_OR,
            Expr::Neg(_) | Expr::Not(_) => PREC_UNARY,
        }
    }

    /// `true` for the `{ }` filter.
    fn is_true(&self) -> bool {
        matches!(self, Expr::Static(Static::Bool(true)))
    }
}

/// Writes `child` as an operand of a binary operator of precedence `parent`, in parentheses
/// when it would otherwise bind differently. All binary operators are left-associative but
/// `^`.
fn operand(f: &mut fmt::Formatter<'_>, child: &Expr, parent: u8, right_side: bool) -> fmt::Result {
    let child_prec = child.precedence();
    let right_assoc = parent == PREC_POW;
    let needs = if child_prec == PREC_UNARY {
        // `-a * b` would read as `-(a * b)`.
        !right_side && parent >= PREC_MUL
    } else if right_side != right_assoc {
        child_prec <= parent
    } else {
        child_prec < parent
    };
    if needs {
        write!(f, "({child})")
    } else {
        write!(f, "{child}")
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prec = self.precedence();
        let binary = |f: &mut fmt::Formatter<'_>, lhs: &Expr, op: &str, rhs: &Expr| {
            operand(f, lhs, prec, false)?;
            write!(f, " {op} ")?;
            operand(f, rhs, prec, true)
        };
        match self {
            Expr::Static(s) => write!(f, "{s}"),
            Expr::Field(field) => write!(f, "{field}"),
            Expr::Compare { op, lhs, rhs } => binary(f, lhs, op.as_str(), rhs),
            Expr::Match {
                negated,
                lhs,
                pattern,
            } => {
                operand(f, lhs, prec, false)?;
                let op = if *negated { "!~" } else { "=~" };
                write!(f, " {op} {}", Static::Str(pattern.source.clone()))
            }
            Expr::Arith { op, lhs, rhs } => binary(f, lhs, op.as_str(), rhs),
            Expr::And(lhs, rhs) => binary(f, lhs, "&&", rhs),
            Expr::Or(lhs, rhs) => binary(f, lhs, "||", rhs),
            Expr::Neg(inner) | Expr::Not(inner) => {
                f.write_str(if matches!(self, Expr::Neg(_)) {
                    "-"
                } else {
                    "!"
                })?;
                match inner.as_ref() {
                    Expr::Field(_) | Expr::Static(Static::Bool(_)) => write!(f, "{inner}"),
                    // `!!x`, not `!(!(x))`: brackets would count against the nesting limit
                    // that the query itself passed (found by fuzzing).
                    Expr::Not(_) if matches!(self, Expr::Not(_)) => write!(f, "{inner}"),
                    // `- -x` likewise (the space keeps the lexer from seeing a `--`).
                    Expr::Neg(_) if matches!(self, Expr::Neg(_)) => write!(f, " {inner}"),
                    _ => write!(f, "({inner})"),
                }
            }
            Expr::Exists(inner) => {
                operand(f, inner, prec, false)?;
                f.write_str(" != nil")
            }
        }
    }
}

impl fmt::Display for Static {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Static::Nil => f.write_str("nil"),
            Static::Bool(b) => write!(f, "{b}"),
            Static::Int(i) => write!(f, "{i}"),
            // `{:?}` keeps a `.0` or an exponent, so the text lexes as a float again.
            Static::Float(v) => write!(f, "{v:?}"),
            Static::Str(s) => write_quoted(f, s),
            Static::Duration(ns) => write_duration(f, *ns),
            Static::Status(s) => f.write_str(s.traceql_name()),
            Static::Kind(k) => f.write_str(k.traceql_name()),
        }
    }
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\U{:08x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

fn write_duration(f: &mut fmt::Formatter<'_>, ns: i64) -> fmt::Result {
    const UNITS: &[(&str, i64)] = &[
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ];
    if ns != 0 {
        for (unit, scale) in UNITS {
            if ns % scale == 0 {
                return write!(f, "{}{unit}", ns / scale);
            }
        }
    }
    write!(f, "{ns}ns")
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Intrinsic(i) => f.write_str(i.as_str()),
            Field::Attribute { scope, name } => {
                let prefix = match scope {
                    Scope::Span => "span.",
                    Scope::Resource => "resource.",
                    Scope::Unscoped => ".",
                    Scope::Instrumentation => "instrumentation.",
                };
                f.write_str(prefix)?;
                let plain = !name.is_empty()
                    && name.chars().all(crate::lexer::is_attribute_char)
                    && !name.starts_with(|c: char| c.is_ascii_digit());
                if plain {
                    f.write_str(name)
                } else {
                    write_quoted(f, name)
                }
            }
        }
    }
}

/// A whole query: a pipeline of stages, evaluated one trace at a time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pipeline {
    pub elements: Vec<Element>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Element {
    Spanset(SpansetExpr),
    ScalarFilter(ScalarFilter),
    GroupBy(Expr),
    Coalesce,
    /// `select(...)`: names attributes for the caller to show; it changes no match.
    Select(Vec<Field>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpansetOp {
    And,
    Union,
    Child,
    Parent,
    Descendant,
    Ancestor,
    Sibling,
    NotChild,
    NotParent,
    NotDescendant,
    NotAncestor,
    NotSibling,
    UnionChild,
    UnionParent,
    UnionDescendant,
    UnionAncestor,
    UnionSibling,
}

impl SpansetOp {
    fn as_str(self) -> &'static str {
        match self {
            SpansetOp::And => "&&",
            SpansetOp::Union => "||",
            SpansetOp::Child => ">",
            SpansetOp::Parent => "<",
            SpansetOp::Descendant => ">>",
            SpansetOp::Ancestor => "<<",
            SpansetOp::Sibling => "~",
            SpansetOp::NotChild => "!>",
            SpansetOp::NotParent => "!<",
            SpansetOp::NotDescendant => "!>>",
            SpansetOp::NotAncestor => "!<<",
            SpansetOp::NotSibling => "!~",
            SpansetOp::UnionChild => "&>",
            SpansetOp::UnionParent => "&<",
            SpansetOp::UnionDescendant => "&>>",
            SpansetOp::UnionAncestor => "&<<",
            SpansetOp::UnionSibling => "&~",
        }
    }

    fn precedence(self) -> u8 {
        match self {
            SpansetOp::And | SpansetOp::Union => PREC_OR,
            _ => PREC_CMP,
        }
    }

    /// Whether the operator relates spans by the trace's tree (all but `&&` and `||`).
    pub(crate) fn is_structural(self) -> bool {
        !matches!(self, SpansetOp::And | SpansetOp::Union)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SpansetExpr {
    Filter(Expr),
    Op {
        op: SpansetOp,
        lhs: Box<SpansetExpr>,
        rhs: Box<SpansetExpr>,
    },
    /// A parenthesised pipeline used as an operand: `({ a } | count() > 1) && ({ b })`.
    Pipeline(Box<Pipeline>),
}

impl SpansetExpr {
    fn precedence(&self) -> u8 {
        match self {
            SpansetExpr::Op { op, .. } => op.precedence(),
            _ => u8::MAX,
        }
    }
}

impl fmt::Display for SpansetExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpansetExpr::Filter(expr) if expr.is_true() => f.write_str("{ }"),
            SpansetExpr::Filter(expr) => write!(f, "{{ {expr} }}"),
            SpansetExpr::Pipeline(p) => write!(f, "({p})"),
            SpansetExpr::Op { op, lhs, rhs } => {
                // Pipelines combine only when both sides are parenthesised.
                let wrap_all = matches!(lhs.as_ref(), SpansetExpr::Pipeline(_))
                    || matches!(rhs.as_ref(), SpansetExpr::Pipeline(_));
                let prec = op.precedence();
                let side = |f: &mut fmt::Formatter<'_>, e: &SpansetExpr, right: bool| {
                    let p = e.precedence();
                    let needs = if right { p <= prec } else { p < prec };
                    if (wrap_all || needs) && !matches!(e, SpansetExpr::Pipeline(_)) {
                        write!(f, "({e})")
                    } else {
                        write!(f, "{e}")
                    }
                };
                side(f, lhs, false)?;
                write!(f, " {} ", op.as_str())?;
                side(f, rhs, true)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggregateFn {
    Count,
    Avg,
    Min,
    Max,
    Sum,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Aggregate {
    pub func: AggregateFn,
    /// `None` only for `count()`.
    pub arg: Option<Expr>,
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.func {
            AggregateFn::Count => "count",
            AggregateFn::Avg => "avg",
            AggregateFn::Min => "min",
            AggregateFn::Max => "max",
            AggregateFn::Sum => "sum",
        };
        match &self.arg {
            Some(arg) => write!(f, "{name}({arg})"),
            None => write!(f, "{name}()"),
        }
    }
}

/// `aggregate op constant`, the one scalar filter form evaluated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScalarFilter {
    pub aggregate: Aggregate,
    pub op: CmpOp,
    pub value: Static,
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Element::Spanset(s) => write!(f, "{s}"),
            Element::ScalarFilter(s) => {
                write!(f, "{} {} ", s.aggregate, s.op.as_str())?;
                // A negative constant needs no parentheses after a comparison.
                write!(f, "{}", s.value)
            }
            Element::GroupBy(e) => write!(f, "by({e})"),
            Element::Coalesce => f.write_str("coalesce()"),
            Element::Select(fields) => {
                f.write_str("select(")?;
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{field}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl fmt::Display for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, element) in self.elements.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{element}")?;
        }
        Ok(())
    }
}

/// A first-stage metrics function: it turns the spans a pipeline matched into time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricsFn {
    Rate,
    CountOverTime,
    MinOverTime,
    MaxOverTime,
    AvgOverTime,
    SumOverTime,
    QuantileOverTime,
    HistogramOverTime,
}

impl MetricsFn {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "rate" => MetricsFn::Rate,
            "count_over_time" => MetricsFn::CountOverTime,
            "min_over_time" => MetricsFn::MinOverTime,
            "max_over_time" => MetricsFn::MaxOverTime,
            "avg_over_time" => MetricsFn::AvgOverTime,
            "sum_over_time" => MetricsFn::SumOverTime,
            "quantile_over_time" => MetricsFn::QuantileOverTime,
            "histogram_over_time" => MetricsFn::HistogramOverTime,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MetricsFn::Rate => "rate",
            MetricsFn::CountOverTime => "count_over_time",
            MetricsFn::MinOverTime => "min_over_time",
            MetricsFn::MaxOverTime => "max_over_time",
            MetricsFn::AvgOverTime => "avg_over_time",
            MetricsFn::SumOverTime => "sum_over_time",
            MetricsFn::QuantileOverTime => "quantile_over_time",
            MetricsFn::HistogramOverTime => "histogram_over_time",
        }
    }
}

/// The metrics function ending a spanset pipeline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FirstStage {
    /// `rate()`, `quantile_over_time(duration, 0.5, 0.9) by (name)`, …
    Aggregate {
        func: MetricsFn,
        /// The attribute of the `*_over_time` functions; `None` for `rate` and `count_over_time`.
        attr: Option<Field>,
        /// The quantiles of `quantile_over_time`, each within `[0, 1]`.
        quantiles: Vec<f64>,
        by: Vec<Field>,
    },
    /// `compare({ selection }, top, start, end)`; `window` is `None` without timestamps.
    Compare {
        selection: Expr,
        top: u64,
        window: Option<(i64, i64)>,
    },
}

impl fmt::Display for FirstStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FirstStage::Aggregate {
                func,
                attr,
                quantiles,
                by,
            } => {
                write!(f, "{}(", func.as_str())?;
                if let Some(attr) = attr {
                    write!(f, "{attr}")?;
                }
                for q in quantiles {
                    write!(f, ", {q:?}")?;
                }
                f.write_str(")")?;
                if !by.is_empty() {
                    f.write_str(" by (")?;
                    for (i, field) in by.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "{field}")?;
                    }
                    f.write_str(")")?;
                }
                Ok(())
            }
            FirstStage::Compare {
                selection,
                top,
                window,
            } => {
                let filter = SpansetExpr::Filter(selection.clone());
                write!(f, "compare({filter}, {top}")?;
                if let Some((start, end)) = window {
                    write!(f, ", {start}, {end}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// A metrics query's expression: series from a pipeline, then second stages, arithmetic and
/// filters on series.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MetricsExpr {
    /// `pipeline | function`
    Leaf {
        pipeline: Pipeline,
        stage: FirstStage,
    },
    /// `series op number`: keeps the points for which the comparison holds.
    Filter {
        inner: Box<MetricsExpr>,
        op: CmpOp,
        value: f64,
    },
    /// `series | topk(k)` / `bottomk(k)`: at each step, the k highest (lowest) series.
    TopK {
        inner: Box<MetricsExpr>,
        bottom: bool,
        k: u64,
    },
    /// `series op number` or `number op series` for `+ - * /`.
    Scalar {
        op: ArithOp,
        inner: Box<MetricsExpr>,
        value: f64,
        scalar_left: bool,
    },
    /// `series op series` for `+ - * /`, matched by labels.
    Binary {
        op: ArithOp,
        lhs: Box<MetricsExpr>,
        rhs: Box<MetricsExpr>,
    },
}

/// Binding strength of the pipe, below every operator.
const PREC_PIPE: u8 = 1;

impl MetricsExpr {
    fn precedence(&self) -> u8 {
        match self {
            MetricsExpr::Leaf { .. } | MetricsExpr::TopK { .. } => PREC_PIPE,
            MetricsExpr::Filter { inner, .. } if inner.ends_in_function() => PREC_PIPE,
            MetricsExpr::Filter { .. } => PREC_CMP,
            MetricsExpr::Scalar { op, .. } | MetricsExpr::Binary { op, .. } => op.precedence(),
        }
    }

    /// Whether the text ends in `rate()`, `topk(k)`, …: a comparison can then be written as
    /// a stage (`{ } | rate() > 1`).
    fn ends_in_function(&self) -> bool {
        matches!(self, MetricsExpr::Leaf { .. } | MetricsExpr::TopK { .. })
    }

    /// Writes `self` where an operand of binding strength `min` is needed.
    fn operand(&self, f: &mut fmt::Formatter<'_>, min: u8) -> fmt::Result {
        if self.precedence() < min {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

impl fmt::Display for MetricsExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricsExpr::Leaf { pipeline, stage } => write!(f, "{pipeline} | {stage}"),
            MetricsExpr::Filter { inner, op, value } => {
                if inner.ends_in_function() {
                    write!(f, "{inner}")?;
                } else {
                    inner.operand(f, PREC_CMP)?;
                }
                write!(f, " {} {value:?}", op.as_str())
            }
            MetricsExpr::TopK { inner, bottom, k } => {
                let name = if *bottom { "bottomk" } else { "topk" };
                write!(f, "{inner} | {name}({k})")
            }
            MetricsExpr::Scalar {
                op,
                inner,
                value,
                scalar_left,
            } => {
                let prec = op.precedence();
                if *scalar_left {
                    write!(f, "{value:?} {} ", op.as_str())?;
                    inner.operand(f, prec + 1)
                } else {
                    inner.operand(f, prec)?;
                    write!(f, " {} {value:?}", op.as_str())
                }
            }
            MetricsExpr::Binary { op, lhs, rhs } => {
                let prec = op.precedence();
                lhs.operand(f, prec)?;
                write!(f, " {} ", op.as_str())?;
                rhs.operand(f, prec + 1)
            }
        }
    }
}

/// A metrics query with its `with(…)` hints.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MetricsQuery {
    pub expr: MetricsExpr,
    pub hints: Vec<(String, Static)>,
}

impl fmt::Display for MetricsQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.expr)?;
        if !self.hints.is_empty() {
            f.write_str(" with(")?;
            for (i, (name, value)) in self.hints.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{name}={value}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}
