//! From `promql-parser`'s AST to the evaluator's plan: selectors resolved to label matchers
//! and to the time span each one must read, `@ start()`/`@ end()` resolved, functions and
//! operators resolved to enums, step-invariant subtrees marked, and the position of every
//! call in the query text recorded for annotations.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promql_parser::label::{MatchOp as PMatchOp, Matcher};
use promql_parser::parser::token::{self, TokenId};
use promql_parser::parser::{
    AtModifier, Expr, LabelModifier, Offset, VectorMatchCardinality, VectorSelector,
};
use sightline_model::{LabelMatcher, METRIC_NAME_LABEL, MatchOp};

use crate::QueryError;

/// The largest time, offset, range or step (in ms, about 31,700 years) a query may use, so
/// that time arithmetic cannot overflow.
pub(crate) const TIME_LIMIT_MS: i64 = 1_000_000_000_000_000;

/// Rejects a time or duration beyond [`TIME_LIMIT_MS`].
pub(crate) fn check_time(what: &str, ms: i64) -> Result<i64, QueryError> {
    if ms.abs() > TIME_LIMIT_MS {
        return Err(QueryError::parse(format!("{what} out of range: {ms}ms")));
    }
    Ok(ms)
}

/// PromQL's value types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VType {
    Scalar,
    Vector,
    Matrix,
    String,
}

impl VType {
    /// The name Prometheus uses in messages (`parser.DocumentedType`).
    pub(crate) fn documented(self) -> &'static str {
        match self {
            VType::Scalar => "scalar",
            VType::Vector => "instant vector",
            VType::Matrix => "range vector",
            VType::String => "string",
        }
    }
}

/// A selector occurrence: which data slot holds its series and how it is positioned in time.
#[derive(Debug, Clone)]
pub(crate) struct Selector {
    /// Index into the query's selected data.
    pub id: usize,
    pub offset: i64,
    /// The `@` time, resolved (ms).
    pub at: Option<i64>,
    /// The matchers (the first `or` group), for `absent()` labels.
    pub matchers: Vec<LabelMatcher>,
}

/// What must be read for one selector.
#[derive(Debug, Clone)]
pub(crate) struct SelectorSpec {
    /// One set per `or` alternative (usually one).
    pub matcher_sets: Vec<Vec<LabelMatcher>>,
    pub mint: i64,
    pub maxt: i64,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Number(f64),
    Str(String),
    VectorSel(Selector),
    MatrixSel {
        sel: Selector,
        range: i64,
    },
    Subquery(Box<SubqueryNode>),
    Call(Box<CallNode>),
    Aggregate(Box<AggNode>),
    Binary(Box<BinNode>),
    Neg(Box<Node>),
    /// A subtree whose value is the same at every step: evaluated once, then repeated.
    StepInvariant(Box<Node>),
}

#[derive(Debug, Clone)]
pub(crate) struct SubqueryNode {
    pub expr: Node,
    pub range: i64,
    pub step: i64,
    pub offset: i64,
    pub at: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct CallNode {
    pub func: Func,
    pub args: Vec<Node>,
    /// Byte offsets in the query of the call and of each argument.
    pub pos: usize,
    pub arg_pos: Vec<usize>,
}

impl CallNode {
    /// Where argument `i` starts in the query (the call's position if unknown).
    pub(crate) fn arg(&self, i: usize) -> usize {
        self.arg_pos.get(i).copied().unwrap_or(self.pos)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct AggNode {
    pub op: AggOp,
    pub expr: Node,
    pub param: Option<Node>,
    /// Sorted grouping labels.
    pub grouping: Vec<String>,
    pub without: bool,
    /// Positions of the aggregation, its parameter and its vector argument.
    pub pos: usize,
    pub param_pos: usize,
    pub expr_pos: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct BinNode {
    /// Where the expression starts in the query (for annotations).
    pub pos: usize,
    pub op: BinOp,
    pub lhs: Node,
    pub rhs: Node,
    pub lhs_type: VType,
    pub rhs_type: VType,
    pub return_bool: bool,
    pub matching: Matching,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

#[derive(Debug, Clone)]
pub(crate) struct Matching {
    pub card: Card,
    /// `on(...)` when true, `ignoring(...)` (or nothing) when false.
    pub on: bool,
    pub labels: Vec<String>,
    /// `group_left(...)`/`group_right(...)` labels.
    pub include: Vec<String>,
    pub fill_lhs: Option<f64>,
    pub fill_rhs: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl BinOp {
    /// The operator as written.
    pub(crate) fn text(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Atan2 => "atan2",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Gt => ">",
            BinOp::Lt => "<",
            BinOp::Ge => ">=",
            BinOp::Le => "<=",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Unless => "unless",
        }
    }

    pub(crate) fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le
        )
    }

    /// Whether the result no longer means what the input metric meant, so the name goes.
    pub(crate) fn changes_metric_schema(self) -> bool {
        matches!(
            self,
            BinOp::Add
                | BinOp::Sub
                | BinOp::Mul
                | BinOp::Div
                | BinOp::Pow
                | BinOp::Mod
                | BinOp::Atan2
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggOp {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    CountValues,
    Quantile,
    Limitk,
    LimitRatio,
}

macro_rules! funcs {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// The PromQL functions this engine evaluates.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Func { $($variant),* }

        impl Func {
            pub(crate) fn from_name(name: &str) -> Option<Func> {
                match name { $($name => Some(Func::$variant),)* _ => None }
            }

            pub(crate) fn name(self) -> &'static str {
                match self { $(Func::$variant => $name),* }
            }
        }
    };
}

funcs! {
    Abs => "abs", Absent => "absent", AbsentOverTime => "absent_over_time", Acos => "acos",
    Acosh => "acosh", Asin => "asin", Asinh => "asinh", Atan => "atan", Atanh => "atanh",
    AvgOverTime => "avg_over_time", Ceil => "ceil", Changes => "changes", Clamp => "clamp",
    ClampMax => "clamp_max", ClampMin => "clamp_min", Cos => "cos", Cosh => "cosh",
    CountOverTime => "count_over_time", DaysInMonth => "days_in_month",
    DayOfMonth => "day_of_month", DayOfWeek => "day_of_week", DayOfYear => "day_of_year",
    Deg => "deg", Delta => "delta", Deriv => "deriv",
    DoubleExponentialSmoothing => "double_exponential_smoothing", End => "end", Exp => "exp",
    FirstOverTime => "first_over_time", Floor => "floor", HistogramAvg => "histogram_avg",
    HistogramCount => "histogram_count", HistogramFraction => "histogram_fraction",
    HistogramQuantile => "histogram_quantile", HistogramQuantiles => "histogram_quantiles",
    HistogramStddev => "histogram_stddev", HistogramStdvar => "histogram_stdvar",
    HistogramSum => "histogram_sum", Hour => "hour", Idelta => "idelta",
    Increase => "increase", Irate => "irate", LabelJoin => "label_join",
    LabelReplace => "label_replace", LastOverTime => "last_over_time", Ln => "ln",
    Log10 => "log10", Log2 => "log2", MadOverTime => "mad_over_time", MaxOf => "max_of",
    MaxOverTime => "max_over_time", MinOf => "min_of", MinOverTime => "min_over_time",
    Minute => "minute", Month => "month", Pi => "pi", PredictLinear => "predict_linear",
    PresentOverTime => "present_over_time", QuantileOverTime => "quantile_over_time",
    Rad => "rad", Range => "range", Rate => "rate", Resets => "resets", Round => "round",
    Scalar => "scalar", Sgn => "sgn", Sin => "sin", Sinh => "sinh", Sort => "sort",
    SortByLabel => "sort_by_label", SortByLabelDesc => "sort_by_label_desc",
    SortDesc => "sort_desc", Sqrt => "sqrt", Start => "start", Step => "step",
    StddevOverTime => "stddev_over_time", StdvarOverTime => "stdvar_over_time",
    SumOverTime => "sum_over_time", Tan => "tan", Tanh => "tanh", Time => "time",
    Timestamp => "timestamp", TsOfFirstOverTime => "ts_of_first_over_time",
    TsOfLastOverTime => "ts_of_last_over_time", TsOfMaxOverTime => "ts_of_max_over_time",
    TsOfMinOverTime => "ts_of_min_over_time", Vector => "vector", Year => "year",
}

impl Func {
    /// Functions whose result changes with the evaluation time even when their arguments do
    /// not (Prometheus's `AtModifierUnsafeFunctions`).
    pub(crate) fn at_modifier_unsafe(self) -> bool {
        matches!(
            self,
            Func::DaysInMonth
                | Func::DayOfMonth
                | Func::DayOfWeek
                | Func::DayOfYear
                | Func::Hour
                | Func::Minute
                | Func::Month
                | Func::Year
                | Func::PredictLinear
                | Func::Time
                | Func::Timestamp
        )
    }

    pub(crate) fn return_type(self) -> VType {
        match self {
            Func::Time
            | Func::Pi
            | Func::Scalar
            | Func::Start
            | Func::End
            | Func::Range
            | Func::Step
            | Func::MinOf
            | Func::MaxOf => VType::Scalar,
            _ => VType::Vector,
        }
    }
}

/// The evaluator's plan of one query.
#[derive(Debug)]
pub(crate) struct Plan {
    pub root: Node,
    pub root_type: VType,
    pub selectors: Vec<SelectorSpec>,
}

/// Query-wide settings the plan depends on.
pub(crate) struct PlanOptions {
    pub start: i64,
    pub end: i64,
    pub lookback: i64,
    pub closed_ranges: bool,
    /// The step of a subquery that gives none ([`crate::EngineOptions::default_subquery_step_ms`]).
    pub default_subquery_step: i64,
}

struct SubqueryFrame {
    offset: i64,
    range: i64,
    at: Option<i64>,
}

struct PlanCx<'a> {
    opts: &'a PlanOptions,
    text: TextCursor<'a>,
    selectors: Vec<SelectorSpec>,
    subqueries: Vec<SubqueryFrame>,
}

pub(crate) fn plan(expr: &Expr, text: &str, opts: &PlanOptions) -> Result<Plan, QueryError> {
    let mut cx = PlanCx {
        opts,
        text: TextCursor { text, pos: 0 },
        selectors: Vec::new(),
        subqueries: Vec::new(),
    };
    let mut root = convert(expr, &mut cx)?;
    let root_type = value_type(&root);
    let (_, wrap) = mark_step_invariant(&mut root);
    if wrap {
        root = Node::StepInvariant(Box::new(root));
    }
    Ok(Plan {
        root,
        root_type,
        selectors: cx.selectors,
    })
}

pub(crate) fn value_type(n: &Node) -> VType {
    match n {
        Node::Number(_) => VType::Scalar,
        Node::Str(_) => VType::String,
        Node::VectorSel(_) | Node::Aggregate(_) => VType::Vector,
        Node::MatrixSel { .. } | Node::Subquery(_) => VType::Matrix,
        Node::Call(c) => c.func.return_type(),
        Node::Binary(b) => {
            if b.lhs_type == VType::Scalar && b.rhs_type == VType::Scalar {
                VType::Scalar
            } else {
                VType::Vector
            }
        }
        Node::Neg(e) | Node::StepInvariant(e) => value_type(e),
    }
}

fn duration_ms(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn resolve_at(at: &Option<AtModifier>, opts: &PlanOptions) -> Option<i64> {
    match at {
        None => None,
        Some(AtModifier::Start) => Some(opts.start),
        Some(AtModifier::End) => Some(opts.end),
        Some(AtModifier::At(t)) => Some(system_time_ms(t)),
    }
}

fn convert(expr: &Expr, cx: &mut PlanCx) -> Result<Node, QueryError> {
    Ok(match expr {
        Expr::NumberLiteral(n) => Node::Number(n.val),
        Expr::StringLiteral(s) => Node::Str(s.val.clone()),
        Expr::Paren(p) => convert(&p.expr, cx)?,
        Expr::Unary(u) => Node::Neg(Box::new(convert(&u.expr, cx)?)),
        Expr::VectorSelector(vs) => Node::VectorSel(selector(vs, None, cx)?),
        Expr::MatrixSelector(ms) => {
            let range = check_time("range", duration_ms(&ms.range))?;
            Node::MatrixSel {
                sel: selector(&ms.vs, Some(range), cx)?,
                range,
            }
        }
        Expr::Subquery(sq) => {
            let offset = check_time("offset", offset_ms(&sq.offset))?;
            let range = check_time("subquery range", duration_ms(&sq.range))?;
            let at = resolve_at(&sq.at, cx.opts)
                .map(|t| check_time("@ timestamp", t))
                .transpose()?;
            let step = check_time(
                "subquery step",
                sq.step
                    .as_ref()
                    .map(duration_ms)
                    .filter(|s| *s > 0)
                    .unwrap_or(cx.opts.default_subquery_step.max(1)),
            )?;
            cx.subqueries.push(SubqueryFrame { offset, range, at });
            let inner = convert(&sq.expr, cx);
            cx.subqueries.pop();
            Node::Subquery(Box::new(SubqueryNode {
                expr: inner?,
                range,
                step,
                offset,
                at,
            }))
        }
        Expr::Call(call) => {
            let name = call.func.name;
            let func = Func::from_name(name).ok_or_else(|| {
                QueryError::Execution(format!("function {name:?} is not supported"))
            })?;
            let (pos, arg_pos) = cx.text.find_call(name, false, call.args.args.len());
            let mut args = Vec::with_capacity(call.args.args.len());
            for (i, a) in call.args.args.iter().enumerate() {
                if let Some(p) = arg_pos.get(i) {
                    cx.text.pos = cx.text.pos.max(*p);
                }
                args.push(convert(a, cx)?);
            }
            Node::Call(Box::new(CallNode {
                func,
                args,
                pos,
                arg_pos,
            }))
        }
        Expr::Aggregate(agg) => {
            let op = agg_op(agg.op.id()).ok_or_else(|| {
                QueryError::parse(format!("unknown aggregation operator {}", agg.op))
            })?;
            let nargs = if agg.param.is_some() { 2 } else { 1 };
            let (pos, arg_pos) = cx.text.find_call(&agg.op.to_string(), true, nargs);
            let param = match &agg.param {
                Some(p) => Some(convert(p, cx)?),
                None => None,
            };
            if let Some(p) = arg_pos.last() {
                cx.text.pos = cx.text.pos.max(*p);
            }
            let inner = convert(&agg.expr, cx)?;
            let (mut grouping, without) = match &agg.modifier {
                None => (Vec::new(), false),
                Some(LabelModifier::Include(l)) => (l.labels.clone(), false),
                Some(LabelModifier::Exclude(l)) => (l.labels.clone(), true),
            };
            grouping.sort();
            grouping.dedup();
            Node::Aggregate(Box::new(AggNode {
                op,
                expr: inner,
                param,
                grouping,
                without,
                pos,
                param_pos: arg_pos.first().copied().unwrap_or(0),
                expr_pos: arg_pos.last().copied().unwrap_or(0),
            }))
        }
        Expr::Binary(b) => {
            let op = bin_op(b.op.id())
                .ok_or_else(|| QueryError::parse(format!("unknown binary operator {}", b.op)))?;
            let pos = cx.text.expression_start();
            let lhs = convert(&b.lhs, cx)?;
            let rhs = convert(&b.rhs, cx)?;
            let lhs_type = value_type(&lhs);
            let rhs_type = value_type(&rhs);
            let mut matching = Matching {
                card: if matches!(op, BinOp::And | BinOp::Or | BinOp::Unless) {
                    Card::ManyToMany
                } else {
                    Card::OneToOne
                },
                on: false,
                labels: Vec::new(),
                include: Vec::new(),
                fill_lhs: None,
                fill_rhs: None,
            };
            let mut return_bool = false;
            if let Some(m) = &b.modifier {
                return_bool = m.return_bool;
                match &m.matching {
                    Some(LabelModifier::Include(l)) => {
                        matching.on = true;
                        matching.labels = l.labels.clone();
                    }
                    Some(LabelModifier::Exclude(l)) => matching.labels = l.labels.clone(),
                    None => {}
                }
                match &m.card {
                    VectorMatchCardinality::ManyToOne(l) => {
                        matching.card = Card::ManyToOne;
                        matching.include = l.labels.clone();
                    }
                    VectorMatchCardinality::OneToMany(l) => {
                        matching.card = Card::OneToMany;
                        matching.include = l.labels.clone();
                    }
                    VectorMatchCardinality::ManyToMany => matching.card = Card::ManyToMany,
                    VectorMatchCardinality::OneToOne => {}
                }
                matching.fill_lhs = m.fill_values.lhs;
                matching.fill_rhs = m.fill_values.rhs;
            }
            if op.is_comparison()
                && !return_bool
                && lhs_type == VType::Scalar
                && rhs_type == VType::Scalar
            {
                return Err(QueryError::parse(
                    "comparisons between scalars must use BOOL modifier",
                ));
            }
            Node::Binary(Box::new(BinNode {
                pos,
                op,
                lhs,
                rhs,
                lhs_type,
                rhs_type,
                return_bool,
                matching,
            }))
        }
        Expr::Extension(_) => {
            return Err(QueryError::parse("extension expressions are not supported"));
        }
    })
}

fn agg_op(id: TokenId) -> Option<AggOp> {
    Some(match id {
        token::T_SUM => AggOp::Sum,
        token::T_AVG => AggOp::Avg,
        token::T_COUNT => AggOp::Count,
        token::T_MIN => AggOp::Min,
        token::T_MAX => AggOp::Max,
        token::T_GROUP => AggOp::Group,
        token::T_STDDEV => AggOp::Stddev,
        token::T_STDVAR => AggOp::Stdvar,
        token::T_TOPK => AggOp::Topk,
        token::T_BOTTOMK => AggOp::Bottomk,
        token::T_COUNT_VALUES => AggOp::CountValues,
        token::T_QUANTILE => AggOp::Quantile,
        token::T_LIMITK => AggOp::Limitk,
        token::T_LIMIT_RATIO => AggOp::LimitRatio,
        _ => return None,
    })
}

fn bin_op(id: TokenId) -> Option<BinOp> {
    Some(match id {
        token::T_ADD => BinOp::Add,
        token::T_SUB => BinOp::Sub,
        token::T_MUL => BinOp::Mul,
        token::T_DIV => BinOp::Div,
        token::T_MOD => BinOp::Mod,
        token::T_POW => BinOp::Pow,
        token::T_ATAN2 => BinOp::Atan2,
        token::T_EQLC => BinOp::Eq,
        token::T_NEQ => BinOp::Ne,
        token::T_GTR => BinOp::Gt,
        token::T_LSS => BinOp::Lt,
        token::T_GTE => BinOp::Ge,
        token::T_LTE => BinOp::Le,
        token::T_LAND => BinOp::And,
        token::T_LOR => BinOp::Or,
        token::T_LUNLESS => BinOp::Unless,
        _ => return None,
    })
}

/// The label matchers of a selector, one set per `or` alternative; the metric name becomes a
/// `__name__` matcher in each.
pub(crate) fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Vec<LabelMatcher>>, QueryError> {
    let mut name = Vec::new();
    if let Some(n) = &vs.name {
        name.push(
            LabelMatcher::new(METRIC_NAME_LABEL, MatchOp::Equal, n.clone())
                .map_err(|e| QueryError::parse(e.to_string()))?,
        );
    }
    let groups: Vec<&Vec<Matcher>> = if vs.matchers.or_matchers.is_empty() {
        vec![&vs.matchers.matchers]
    } else {
        vs.matchers.or_matchers.iter().collect()
    };
    groups
        .into_iter()
        .map(|g| {
            let mut set = name.clone();
            for m in g {
                set.push(convert_matcher(m)?);
            }
            Ok(set)
        })
        .collect()
}

fn convert_matcher(m: &Matcher) -> Result<LabelMatcher, QueryError> {
    let op = match m.op {
        PMatchOp::Equal => MatchOp::Equal,
        PMatchOp::NotEqual => MatchOp::NotEqual,
        PMatchOp::Re(_) => MatchOp::Regex,
        PMatchOp::NotRe(_) => MatchOp::NotRegex,
    };
    LabelMatcher::new(m.name.clone(), op, m.value.clone())
        .or_else(|_| LabelMatcher::new(m.name.clone(), op, escape_go_only_braces(&m.value)))
        .map_err(|e| {
            QueryError::parse(format!(
                "invalid regular expression {:?} in label matcher: {e}",
                m.value
            ))
        })
}

/// Go's regexp treats a `{` that does not start a valid repetition (`a{bc}`) as a literal;
/// Rust's rejects it. Escape those braces so the same patterns compile.
pub(crate) fn escape_go_only_braces(re: &str) -> String {
    let chars: Vec<char> = re.chars().collect();
    let mut out = String::with_capacity(re.len() + 4);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            out.push(c);
            if let Some(n) = chars.get(i + 1) {
                out.push(*n);
            }
            i += 2;
            continue;
        }
        if c == '{' {
            // A repetition is `{n}`, `{n,}` or `{n,m}`.
            let rest: String = chars[i + 1..].iter().collect();
            let valid = rest.find('}').is_some_and(|end| {
                let body = &rest[..end];
                let mut parts = body.splitn(2, ',');
                let first = parts.next().unwrap_or("");
                let second = parts.next();
                !first.is_empty()
                    && first.chars().all(|c| c.is_ascii_digit())
                    && second.is_none_or(|s| s.chars().all(|c| c.is_ascii_digit()))
            });
            if !valid {
                out.push('\\');
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

fn selector(
    vs: &VectorSelector,
    range: Option<i64>,
    cx: &mut PlanCx,
) -> Result<Selector, QueryError> {
    let matcher_sets = selector_matchers(vs)?;
    let offset = check_time("offset", offset_ms(&vs.offset))?;
    let at = resolve_at(&vs.at, cx.opts)
        .map(|t| check_time("@ timestamp", t))
        .transpose()?;
    let (mint, maxt) = time_span(offset, at, range, cx);
    let id = cx.selectors.len();
    let matchers = matcher_sets.first().cloned().unwrap_or_default();
    cx.selectors.push(SelectorSpec {
        matcher_sets,
        mint,
        maxt,
    });
    Ok(Selector {
        id,
        offset,
        at,
        matchers,
    })
}

/// The time span a selector reads, as Prometheus's `getTimeRangesForSelector`: the query
/// span moved by enclosing subqueries (reset by an `@` on one of them), pinned by the
/// selector's own `@`, widened by the lookback or the range, then moved by the offset.
fn time_span(offset: i64, at: Option<i64>, range: Option<i64>, cx: &PlanCx) -> (i64, i64) {
    let (mut start, mut end) = (cx.opts.start, cx.opts.end);
    let (mut sq_offset, mut sq_range, mut sq_at) = (0i64, 0i64, None);
    for f in &cx.subqueries {
        sq_offset += f.offset;
        sq_range += f.range;
        if f.at.is_some() {
            sq_offset = f.offset;
            sq_range = f.range;
            sq_at = f.at;
        }
    }
    if let Some(t) = sq_at {
        start = t;
        end = t;
    }
    if let Some(t) = at {
        start = t;
        end = t;
    } else {
        start -= sq_offset + sq_range;
        end -= sq_offset;
    }
    let widen = range.unwrap_or(cx.opts.lookback);
    start -= if cx.opts.closed_ranges {
        widen
    } else {
        widen - 1
    };
    (start - offset, end - offset)
}

/// Marks step-invariant subtrees as Prometheus's `preprocessExprHelper` does. Returns
/// whether the subtree is step invariant and whether it should be wrapped.
fn mark_step_invariant(n: &mut Node) -> (bool, bool) {
    fn wrap(n: &mut Node) {
        let inner = std::mem::replace(n, Node::Number(0.0));
        *n = Node::StepInvariant(Box::new(inner));
    }
    match n {
        Node::VectorSel(s) => (s.at.is_some(), s.at.is_some()),
        Node::MatrixSel { sel, .. } => (sel.at.is_some(), false),
        Node::Number(_) | Node::Str(_) => (true, false),
        Node::Neg(e) => mark_step_invariant(e),
        Node::StepInvariant(_) => (true, false),
        Node::Aggregate(a) => mark_step_invariant(&mut a.expr),
        Node::Binary(b) => {
            let (li, lw) = mark_step_invariant(&mut b.lhs);
            let (ri, rw) = mark_step_invariant(&mut b.rhs);
            if li && ri {
                return (true, true);
            }
            if lw {
                wrap(&mut b.lhs);
            }
            if rw {
                wrap(&mut b.rhs);
            }
            (false, false)
        }
        Node::Call(c) => {
            let mut invariant = !c.func.at_modifier_unsafe();
            let mut wraps = Vec::with_capacity(c.args.len());
            for a in &mut c.args {
                let (ai, aw) = mark_step_invariant(a);
                invariant &= ai;
                wraps.push(aw);
            }
            if invariant {
                return (true, true);
            }
            for (a, w) in c.args.iter_mut().zip(wraps) {
                if w {
                    wrap(a);
                }
            }
            (false, false)
        }
        Node::Subquery(s) => {
            let (inner, _) = mark_step_invariant(&mut s.expr);
            if inner {
                wrap(&mut s.expr);
            }
            (s.at.is_some(), s.at.is_some())
        }
    }
}

/// Finds the calls and aggregations of the query text in evaluation order, for annotation
/// positions (promql-parser keeps no positions in its AST).
struct TextCursor<'a> {
    text: &'a str,
    pos: usize,
}

impl TextCursor<'_> {
    /// The start of the expression at the cursor: whitespace and opening parentheses are
    /// skipped.
    fn expression_start(&self) -> usize {
        let b = self.text.as_bytes();
        let mut i = self.pos;
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'(') {
            i += 1;
        }
        i
    }

    /// The position of the next call of `name` from the cursor, and of its arguments; moves
    /// the cursor into the argument list.
    fn find_call(&mut self, name: &str, aggregation: bool, nargs: usize) -> (usize, Vec<usize>) {
        let b = self.text.as_bytes();
        let mut i = self.pos;
        while i < b.len() {
            let c = b[i];
            if c == b'"' || c == b'\'' || c == b'`' {
                i = skip_string(b, i);
                continue;
            }
            if is_ident_start(c) {
                let start = i;
                while i < b.len() && is_ident_char(b[i]) {
                    i += 1;
                }
                if &self.text[start..i] == name
                    && let Some(paren) = self.args_paren(i, aggregation)
                {
                    let args = arg_starts(b, paren);
                    self.pos = paren + 1;
                    return (start, args);
                }
                continue;
            }
            i += 1;
        }
        (self.pos, vec![self.pos; nargs])
    }

    /// The index of the `(` opening the argument list after a name ending at `i`.
    fn args_paren(&self, mut i: usize, aggregation: bool) -> Option<usize> {
        let b = self.text.as_bytes();
        i = skip_ws(b, i);
        if i < b.len() && b[i] == b'(' {
            return Some(i);
        }
        if aggregation {
            let rest = &self.text[i..];
            let kw = ["by", "without"].into_iter().find(|k| {
                rest.starts_with(k) && !rest[k.len()..].bytes().next().is_some_and(is_ident_char)
            })?;
            i = skip_ws(b, i + kw.len());
            if i < b.len() && b[i] == b'(' {
                i = skip_group(b, i);
                i = skip_ws(b, i);
                if i < b.len() && b[i] == b'(' {
                    return Some(i);
                }
            }
        }
        None
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The index just after the string literal starting at `i`.
fn skip_string(b: &[u8], i: usize) -> usize {
    let q = b[i];
    let mut j = i + 1;
    while j < b.len() {
        if b[j] == b'\\' && q != b'`' {
            j += 2;
            continue;
        }
        if b[j] == q {
            return j + 1;
        }
        j += 1;
    }
    b.len()
}

/// The index just after the bracketed group starting at `i`.
fn skip_group(b: &[u8], i: usize) -> usize {
    let mut depth = 0usize;
    let mut j = i;
    while j < b.len() {
        match b[j] {
            b'"' | b'\'' | b'`' => {
                j = skip_string(b, j);
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    b.len()
}

/// The start of each argument in the list opened at `paren`.
fn arg_starts(b: &[u8], paren: usize) -> Vec<usize> {
    let mut out = vec![skip_ws(b, paren + 1)];
    let mut depth = 0usize;
    let mut j = paren + 1;
    while j < b.len() {
        match b[j] {
            b'"' | b'\'' | b'`' => {
                j = skip_string(b, j);
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
            b',' if depth == 0 => out.push(skip_ws(b, j + 1)),
            _ => {}
        }
        j += 1;
    }
    out
}

/// `line:column` of a byte offset, as Prometheus prints positions (both 1-based).
pub(crate) fn line_col(text: &str, pos: usize) -> String {
    let pos = pos.min(text.len());
    let before = &text.as_bytes()[..pos];
    let line = 1 + before.iter().filter(|&&c| c == b'\n').count();
    let col = match before.iter().rposition(|&c| c == b'\n') {
        Some(nl) => pos - nl,
        None => pos + 1,
    };
    format!("{line}:{col}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_call_and_argument_positions() {
        let q = r#"sum(sort(x)) + histogram_quantile(0.5, rate(a{b="sort("}[5m]))"#;
        let mut c = TextCursor { text: q, pos: 0 };
        let (p, _) = c.find_call("sum", true, 1);
        assert_eq!(line_col(q, p), "1:1");
        let (p, _) = c.find_call("sort", false, 1);
        assert_eq!(line_col(q, p), "1:5");
        let (_, args) = c.find_call("histogram_quantile", false, 2);
        assert_eq!(line_col(q, args[1]), "1:40");
        let q = "topk by (a) (3, x)";
        let mut c = TextCursor { text: q, pos: 0 };
        let (_, args) = c.find_call("topk", true, 2);
        assert_eq!(args, vec![13, 16]);
    }

    #[test]
    fn escapes_go_literal_braces() {
        assert_eq!(escape_go_only_braces("a{bc}"), "a\\{bc}");
        assert_eq!(escape_go_only_braces("a{2,3}"), "a{2,3}");
    }
}
