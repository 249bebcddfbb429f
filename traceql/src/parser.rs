//! A hand-written recursive-descent (precedence-climbing) parser with validation.
//!
//! Grammar (informally; precedence from loosest to tightest: `|`; `&&` `||`; comparisons
//! and structural operators; `+ -`; unary `-` `!`; `* / %`; `^`, right-associative):
//!
//! ```text
//! query      := pipeline hints?
//! pipeline   := stage ("|" stage)*
//! stage      := spanset | aggregate cmp number | number cmp aggregate
//!             | "by" "(" expr ")" | "coalesce" "(" ")" | "select" "(" field ("," field)* ")"
//! spanset    := "{" expr? "}" | spanset spanset_op spanset | "(" spanset ")"
//!             | "(" pipeline ")" spanset_op "(" pipeline ")"
//! aggregate  := "count" "(" ")" | ("avg" | "min" | "max" | "sum") "(" expr ")"
//! expr       := literal | field | expr op expr | "-" expr | "!" expr | "(" expr ")"
//! hints      := "with" "(" IDENT "=" literal ("," IDENT "=" literal)* ")"
//! ```
//!
//! The parser reads the whole query before it reports anything but a syntax error, so the
//! kinds come out in Tempo's order: a syntax error first, then an invalid query (types,
//! regexes, aggregates over constants), then a construct outside our subset. Metrics queries
//! (`rate()`, `topk()`, …) are parsed and checked in full, then refused as unsupported.

use regex::RegexBuilder;
use sightline_model::{SpanKind, StatusCode};

use crate::ast::{
    Aggregate, AggregateFn, ArithOp, CmpOp, Element, Expr, Field, FirstStage, Intrinsic,
    MetricsExpr, MetricsFn, MetricsQuery, PREC_ADD, PREC_CMP, PREC_MUL, PREC_OR, PREC_POW, Pattern,
    Pipeline, ScalarFilter, Scope, SpansetExpr, SpansetOp, Static,
};
use crate::error::{ErrorKind, Pos, TraceQlError};
use crate::lexer::{AttrScope, Tok, Token, tokenize};

/// Deepest nesting of parentheses, braces and unary operators; bounds the parser's
/// recursion on hostile input.
pub const MAX_NESTING: usize = 64;
/// Deepest expression tree (a chain of `&&` counts one level per operand); bounds the
/// evaluator's recursion.
pub const MAX_EXPRESSION_DEPTH: usize = 512;
/// Largest regular expression compiled, in bytes of compiled program.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The static type of an expression, as Tempo's validator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    /// An attribute: its type is known only per span.
    Attribute,
    Nil,
    Bool,
    Int,
    Float,
    Str,
    Duration,
    Status,
    Kind,
}

impl Ty {
    fn is_numeric(self) -> bool {
        matches!(self, Ty::Int | Ty::Float | Ty::Duration)
    }

    /// Whether two operand types may meet in a binary operation at all.
    fn matches(self, rhs: Ty) -> bool {
        self == Ty::Attribute
            || rhs == Ty::Attribute
            || self == rhs
            || (self.is_numeric() && rhs.is_numeric())
            || rhs == Ty::Nil
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BinOp {
    And,
    Or,
    Cmp(CmpOp),
    Arith(ArithOp),
}

/// Whether `op` accepts an operand of type `ty` (Tempo's `binaryTypeValid`).
fn operand_valid(op: BinOp, ty: Ty) -> bool {
    match ty {
        Ty::Attribute => true,
        Ty::Bool => matches!(
            op,
            BinOp::And | BinOp::Or | BinOp::Cmp(CmpOp::Eq) | BinOp::Cmp(CmpOp::Ne)
        ),
        Ty::Int | Ty::Float | Ty::Duration => match op {
            BinOp::Arith(_) => true,
            BinOp::Cmp(c) => !matches!(c, CmpOp::Regex | CmpOp::NotRegex),
            _ => false,
        },
        Ty::Str => matches!(op, BinOp::Cmp(_)),
        Ty::Nil | Ty::Status | Ty::Kind => {
            matches!(op, BinOp::Cmp(CmpOp::Eq) | BinOp::Cmp(CmpOp::Ne))
        }
    }
}

/// A parsed field expression with its static type and tree depth.
struct Typed {
    expr: Expr,
    ty: Ty,
    depth: usize,
}

/// The query-level tree before it is sorted into pipelines, scalar filters and metrics.
#[derive(Debug, Clone)]
struct Node {
    kind: NodeKind,
    pos: Pos,
}

#[derive(Debug, Clone)]
enum NodeKind {
    Filter(Expr),
    Aggregate(Aggregate),
    GroupBy(Expr),
    Coalesce,
    Select(Vec<Field>),
    Number(Static),
    /// A metrics function (`rate()`, `compare(...)`, …) with its arguments.
    Metrics {
        compare: bool,
        stage: FirstStage,
    },
    /// `topk(n)` / `bottomk(n)`.
    SecondStage {
        bottom: bool,
        k: u64,
    },
    Group(Box<Node>),
    Binary {
        op: Tok,
        lhs: Box<Node>,
        rhs: Box<Node>,
    },
    Pipe(Vec<Node>),
}

/// Precedence and right-associativity of an operator between query-level terms.
fn query_precedence(tok: &Tok) -> Option<(u8, bool)> {
    Some(match tok {
        Tok::Pipe => (1, false),
        Tok::And | Tok::Or => (PREC_OR, false),
        Tok::Eq
        | Tok::Neq
        | Tok::Gt
        | Tok::Ge
        | Tok::Lt
        | Tok::Le
        | Tok::Re
        | Tok::Nre
        | Tok::Desc
        | Tok::Ance
        | Tok::Tilde
        | Tok::NotChild
        | Tok::NotParent
        | Tok::NotDesc
        | Tok::NotAnce
        | Tok::UnionChild
        | Tok::UnionParent
        | Tok::UnionDesc
        | Tok::UnionAnce
        | Tok::UnionSibling => (PREC_CMP, false),
        Tok::Add | Tok::Sub => (PREC_ADD, false),
        Tok::Mul | Tok::Div | Tok::Mod => (PREC_MUL, false),
        Tok::Pow => (PREC_POW, true),
        _ => return None,
    })
}

/// Operators between span expressions inside braces.
fn field_operator(tok: &Tok) -> Option<(BinOp, u8, bool)> {
    Some(match tok {
        Tok::And => (BinOp::And, PREC_OR, false),
        Tok::Or => (BinOp::Or, PREC_OR, false),
        Tok::Eq => (BinOp::Cmp(CmpOp::Eq), PREC_CMP, false),
        Tok::Neq => (BinOp::Cmp(CmpOp::Ne), PREC_CMP, false),
        Tok::Gt => (BinOp::Cmp(CmpOp::Gt), PREC_CMP, false),
        Tok::Ge => (BinOp::Cmp(CmpOp::Ge), PREC_CMP, false),
        Tok::Lt => (BinOp::Cmp(CmpOp::Lt), PREC_CMP, false),
        Tok::Le => (BinOp::Cmp(CmpOp::Le), PREC_CMP, false),
        Tok::Re => (BinOp::Cmp(CmpOp::Regex), PREC_CMP, false),
        Tok::Nre => (BinOp::Cmp(CmpOp::NotRegex), PREC_CMP, false),
        Tok::Add => (BinOp::Arith(ArithOp::Add), PREC_ADD, false),
        Tok::Sub => (BinOp::Arith(ArithOp::Sub), PREC_ADD, false),
        Tok::Mul => (BinOp::Arith(ArithOp::Mul), PREC_MUL, false),
        Tok::Div => (BinOp::Arith(ArithOp::Div), PREC_MUL, false),
        Tok::Mod => (BinOp::Arith(ArithOp::Mod), PREC_MUL, false),
        Tok::Pow => (BinOp::Arith(ArithOp::Pow), PREC_POW, true),
        _ => return None,
    })
}

fn spanset_op(tok: &Tok) -> Option<SpansetOp> {
    Some(match tok {
        Tok::And => SpansetOp::And,
        Tok::Or => SpansetOp::Union,
        Tok::Gt => SpansetOp::Child,
        Tok::Lt => SpansetOp::Parent,
        Tok::Desc => SpansetOp::Descendant,
        Tok::Ance => SpansetOp::Ancestor,
        Tok::Tilde => SpansetOp::Sibling,
        Tok::NotChild => SpansetOp::NotChild,
        Tok::NotParent => SpansetOp::NotParent,
        Tok::NotDesc => SpansetOp::NotDescendant,
        Tok::NotAnce => SpansetOp::NotAncestor,
        Tok::Nre => SpansetOp::NotSibling,
        Tok::UnionChild => SpansetOp::UnionChild,
        Tok::UnionParent => SpansetOp::UnionParent,
        Tok::UnionDesc => SpansetOp::UnionDescendant,
        Tok::UnionAnce => SpansetOp::UnionAncestor,
        Tok::UnionSibling => SpansetOp::UnionSibling,
        _ => return None,
    })
}

fn scalar_cmp(tok: &Tok) -> Option<CmpOp> {
    Some(match tok {
        Tok::Eq => CmpOp::Eq,
        Tok::Neq => CmpOp::Ne,
        Tok::Gt => CmpOp::Gt,
        Tok::Ge => CmpOp::Ge,
        Tok::Lt => CmpOp::Lt,
        Tok::Le => CmpOp::Le,
        _ => return None,
    })
}

fn arith_op(tok: &Tok) -> Option<ArithOp> {
    Some(match tok {
        Tok::Add => ArithOp::Add,
        Tok::Sub => ArithOp::Sub,
        Tok::Mul => ArithOp::Mul,
        Tok::Div => ArithOp::Div,
        Tok::Mod => ArithOp::Mod,
        Tok::Pow => ArithOp::Pow,
        _ => return None,
    })
}

const METRICS_FUNCTIONS: &[&str] = &[
    "rate",
    "count_over_time",
    "min_over_time",
    "max_over_time",
    "avg_over_time",
    "sum_over_time",
    "quantile_over_time",
    "histogram_over_time",
    "compare",
];

/// What a query asks for: spansets (search) or time series (metrics).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Body {
    Search(Pipeline),
    Metrics(MetricsQuery),
}

/// Hints that only tune how Tempo fetches or samples; an exact in-memory evaluation answers
/// the query they annotate, so they are accepted and have no effect.
const IGNORED_METRICS_HINTS: &[&str] = &["sample", "span_sample", "trace_sample", "exemplars"];

/// Parses a query and checks it; see [`crate::parse`].
pub(crate) fn parse_query(text: &str) -> Result<Body, TraceQlError> {
    let mut parser = Parser {
        tokens: tokenize(text)?,
        pos: 0,
        nesting: 0,
        invalid: None,
        unsupported: None,
        fold_budget: sightline_model::FoldBudget::for_query(text.len()),
    };
    let root = parser.query(0)?;
    let mut hints = None;
    if matches!(&parser.peek().tok, Tok::Ident(w) if w == "with") {
        let pos = parser.peek().pos;
        hints = Some((pos, parser.hints()?));
    }
    let end = parser.next();
    if end.tok != Tok::Eof {
        return Err(parser.unexpected(&end, "end of query"));
    }
    let mut body = parser.root(&root)?;
    if let Some((pos, hints)) = hints {
        match &mut body {
            Body::Metrics(query) => {
                for (name, _) in &hints {
                    if !IGNORED_METRICS_HINTS.contains(&name.as_str()) {
                        parser.refuse(
                            pos,
                            format!("the `with({name}=…)` query hint is not supported"),
                        );
                    }
                }
                query.hints = hints;
            }
            Body::Search(_) => {
                parser.refuse(
                    pos,
                    "`with()` query hints on search queries are not supported",
                );
            }
        }
    }
    if let Some(err) = parser.invalid.take() {
        return Err(err);
    }
    if let Some(err) = parser.unsupported.take() {
        return Err(err);
    }
    Ok(body)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    nesting: usize,
    /// The first reason the query is invalid, reported once it has parsed.
    invalid: Option<TraceQlError>,
    /// The first construct outside our subset, reported once the query is known valid.
    unsupported: Option<TraceQlError>,
    /// What the query's regexes may cost to compile (`sightline_model::regex_cost`).
    fold_budget: sightline_model::FoldBudget,
}

impl Parser {
    fn peek(&self) -> &Token {
        // The lexer always ends with Eof and `next` never moves past it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let token = self.peek().clone();
        if token.tok != Tok::Eof {
            self.pos += 1;
        }
        token
    }

    fn unexpected(&self, token: &Token, expecting: &str) -> TraceQlError {
        TraceQlError::syntax(
            token.pos,
            format!(
                "syntax error: unexpected {}, expecting {expecting}",
                token.tok.describe()
            ),
        )
    }

    fn expect(&mut self, tok: Tok, expecting: &str) -> Result<Token, TraceQlError> {
        let token = self.next();
        if token.tok == tok {
            Ok(token)
        } else {
            Err(self.unexpected(&token, expecting))
        }
    }

    fn invalid(&mut self, pos: Pos, message: impl Into<String>) {
        if self.invalid.is_none() {
            self.invalid = Some(TraceQlError::new(ErrorKind::Invalid, pos, message));
        }
    }

    fn refuse(&mut self, pos: Pos, message: impl Into<String>) {
        if self.unsupported.is_none() {
            self.unsupported = Some(TraceQlError::new(ErrorKind::Unsupported, pos, message));
        }
    }

    /// Guards recursion; every recursive production enters through here.
    fn nested<T>(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<T, TraceQlError>,
    ) -> Result<T, TraceQlError> {
        if self.nesting >= MAX_NESTING {
            return Err(TraceQlError::new(
                ErrorKind::Invalid,
                self.peek().pos,
                format!("query is nested more than {MAX_NESTING} levels deep"),
            ));
        }
        self.nesting += 1;
        let result = parse(self);
        self.nesting -= 1;
        result
    }

    fn check_depth(&self, depth: usize, pos: Pos) -> Result<(), TraceQlError> {
        if depth > MAX_EXPRESSION_DEPTH {
            return Err(TraceQlError::new(
                ErrorKind::Invalid,
                pos,
                format!("expression is more than {MAX_EXPRESSION_DEPTH} operators deep"),
            ));
        }
        Ok(())
    }

    // ---------------------------------------------------------------- query level

    fn query(&mut self, min_prec: u8) -> Result<Node, TraceQlError> {
        self.nested(|p| {
            let mut lhs = p.query_term()?;
            let mut depth = 1usize;
            while let Some((prec, right_assoc)) = query_precedence(&p.peek().tok) {
                if prec < min_prec {
                    break;
                }
                let op = p.next();
                let rhs = p.query(if right_assoc { prec } else { prec + 1 })?;
                depth += 1;
                p.check_depth(depth, op.pos)?;
                lhs = if op.tok == Tok::Pipe {
                    match lhs.kind {
                        NodeKind::Pipe(mut stages) => {
                            stages.push(rhs);
                            Node {
                                kind: NodeKind::Pipe(stages),
                                pos: lhs.pos,
                            }
                        }
                        _ => Node {
                            pos: lhs.pos,
                            kind: NodeKind::Pipe(vec![lhs, rhs]),
                        },
                    }
                } else {
                    Node {
                        pos: op.pos,
                        kind: NodeKind::Binary {
                            op: op.tok,
                            lhs: Box::new(lhs),
                            rhs: Box::new(rhs),
                        },
                    }
                };
            }
            Ok(lhs)
        })
    }

    fn query_term(&mut self) -> Result<Node, TraceQlError> {
        let token = self.next();
        let pos = token.pos;
        let kind = match &token.tok {
            Tok::LBrace => NodeKind::Filter(self.filter_body(pos)?),
            Tok::LParen => {
                let inner = self.query(0)?;
                self.expect(Tok::RParen, ")")?;
                NodeKind::Group(Box::new(inner))
            }
            Tok::Int(_) | Tok::Float(_) | Tok::Duration(_) => {
                NodeKind::Number(number_static(&token.tok))
            }
            Tok::Sub
                if matches!(
                    self.peek().tok,
                    Tok::Int(_) | Tok::Float(_) | Tok::Duration(_)
                ) =>
            {
                let literal = self.next();
                NodeKind::Number(negate_static(&number_static(&literal.tok)).ok_or_else(|| {
                    TraceQlError::syntax(pos, "syntax error: number out of range")
                })?)
            }
            Tok::Ident(word) => match word.as_str() {
                "count" | "avg" | "min" | "max" | "sum" => {
                    NodeKind::Aggregate(self.aggregate(word, pos)?)
                }
                "by" => {
                    self.expect(Tok::LParen, "(")?;
                    let arg = self.field_expr(0)?;
                    self.expect(Tok::RParen, ")")?;
                    if !references_span(&arg.expr) {
                        self.invalid(
                            pos,
                            format!(
                                "grouping field expressions must reference the span: by({})",
                                arg.expr
                            ),
                        );
                    }
                    NodeKind::GroupBy(arg.expr)
                }
                "coalesce" => {
                    self.expect(Tok::LParen, "(")?;
                    self.expect(Tok::RParen, ")")?;
                    NodeKind::Coalesce
                }
                "select" => NodeKind::Select(self.select()?),
                "topk" | "bottomk" => {
                    self.expect(Tok::LParen, "(")?;
                    let k = self.next();
                    let limit = match k.tok {
                        Tok::Int(0) => {
                            self.invalid(k.pos, format!("{word}() needs a limit above 0"));
                            1
                        }
                        Tok::Int(n) => u64::try_from(n).unwrap_or(1),
                        _ => return Err(self.unexpected(&k, "a positive integer")),
                    };
                    self.expect(Tok::RParen, ")")?;
                    NodeKind::SecondStage {
                        bottom: word == "bottomk",
                        k: limit,
                    }
                }
                name if METRICS_FUNCTIONS.contains(&name) => {
                    let name = name.to_string();
                    self.metrics_function(&name)?
                }
                _ => return Err(self.unexpected(&token, "{, (, an aggregate or a pipeline stage")),
            },
            _ => return Err(self.unexpected(&token, "{, (, an aggregate or a pipeline stage")),
        };
        Ok(Node { kind, pos })
    }

    /// After `{`: the filter expression and `}`; `{ }` matches every span.
    fn filter_body(&mut self, pos: Pos) -> Result<Expr, TraceQlError> {
        if self.peek().tok == Tok::RBrace {
            self.next();
            return Ok(Expr::Static(Static::Bool(true)));
        }
        let typed = self.nested(|p| p.field_expr(0))?;
        self.expect(Tok::RBrace, "}")?;
        if !matches!(typed.ty, Ty::Bool | Ty::Attribute) {
            self.invalid(
                pos,
                format!(
                    "span filter field expressions must resolve to a boolean: {{ {} }}",
                    typed.expr
                ),
            );
        }
        Ok(typed.expr)
    }

    fn aggregate(&mut self, word: &str, pos: Pos) -> Result<Aggregate, TraceQlError> {
        self.expect(Tok::LParen, "(")?;
        let func = match word {
            "count" => {
                self.expect(Tok::RParen, ")")?;
                return Ok(Aggregate {
                    func: AggregateFn::Count,
                    arg: None,
                });
            }
            "avg" => AggregateFn::Avg,
            "min" => AggregateFn::Min,
            "max" => AggregateFn::Max,
            _ => AggregateFn::Sum,
        };
        if self.peek().tok == Tok::RParen {
            let token = self.next();
            return Err(self.unexpected(&token, "a field expression"));
        }
        let arg = self.field_expr(0)?;
        self.expect(Tok::RParen, ")")?;
        let aggregate = Aggregate {
            func,
            arg: Some(arg.expr),
        };
        if !(arg.ty == Ty::Attribute || arg.ty.is_numeric()) {
            self.invalid(
                pos,
                format!("aggregate field expressions must resolve to a number type: {aggregate}"),
            );
        } else if !aggregate.arg.as_ref().is_some_and(references_span) {
            self.invalid(
                pos,
                format!("aggregate field expressions must reference the span: {aggregate}"),
            );
        }
        Ok(aggregate)
    }

    fn select(&mut self) -> Result<Vec<Field>, TraceQlError> {
        self.expect(Tok::LParen, "(")?;
        let mut fields = Vec::new();
        loop {
            let token = self.next();
            match self.field_token(&token)? {
                Some(Expr::Field(field)) => fields.push(field),
                _ => return Err(self.unexpected(&token, "an attribute or intrinsic")),
            }
            let sep = self.next();
            match sep.tok {
                Tok::Comma => continue,
                Tok::RParen => return Ok(fields),
                _ => return Err(self.unexpected(&sep, ", or )")),
            }
        }
    }

    /// `rate()`, `quantile_over_time(duration, 0.5) by (name)`, `compare({ … }, 10)`, with
    /// their arguments checked as Tempo's validator does.
    fn metrics_function(&mut self, name: &str) -> Result<NodeKind, TraceQlError> {
        self.expect(Tok::LParen, "(")?;
        if name == "compare" {
            let brace = self.expect(Tok::LBrace, "{")?;
            let selection = self.filter_body(brace.pos)?;
            let mut numbers = Vec::new();
            while self.peek().tok == Tok::Comma {
                self.next();
                let n = self.next();
                match n.tok {
                    Tok::Int(v) => numbers.push((v, n.pos)),
                    _ => return Err(self.unexpected(&n, "an integer")),
                }
            }
            if numbers.len() == 2 || numbers.len() > 3 {
                let token = self.peek().clone();
                return Err(self.unexpected(&token, ", integer"));
            }
            self.expect(Tok::RParen, ")")?;
            let top = match numbers.first() {
                Some(&(n, at)) if n <= 0 => {
                    self.invalid(at, "compare() top number of values must be greater than 0");
                    1
                }
                Some(&(n, _)) => u64::try_from(n).unwrap_or(1),
                None => 10,
            };
            let window = match numbers.get(1..3) {
                Some([(start, at), (end, _)]) => {
                    if *start <= 0 || *end <= 0 {
                        self.invalid(
                            *at,
                            "compare() timestamps must be positive integer unix nanoseconds",
                        );
                    } else if end <= start {
                        self.invalid(
                            *at,
                            "compare() end timestamp must be greater than start timestamp",
                        );
                    }
                    Some((*start, *end))
                }
                _ => None,
            };
            return Ok(NodeKind::Metrics {
                compare: true,
                stage: FirstStage::Compare {
                    selection,
                    top,
                    window,
                },
            });
        }
        let func = MetricsFn::from_name(name).unwrap_or(MetricsFn::Rate);
        let mut attr = None;
        let mut quantiles = Vec::new();
        if !matches!(func, MetricsFn::Rate | MetricsFn::CountOverTime) {
            let token = self.next();
            match self.field_token(&token)? {
                Some(Expr::Field(field)) => attr = Some(field),
                _ => return Err(self.unexpected(&token, "an attribute or intrinsic")),
            }
            if func == MetricsFn::QuantileOverTime {
                while self.peek().tok == Tok::Comma {
                    self.next();
                    let q = self.next();
                    let value = match q.tok {
                        Tok::Int(i) => i as f64,
                        Tok::Float(f) => f,
                        _ => return Err(self.unexpected(&q, "a number")),
                    };
                    if !(0.0..=1.0).contains(&value) {
                        self.invalid(q.pos, format!("quantile must be between 0 and 1: {value}"));
                    }
                    quantiles.push(value);
                }
                if quantiles.is_empty() {
                    let token = self.peek().clone();
                    return Err(self.unexpected(&token, ","));
                }
            }
        }
        self.expect(Tok::RParen, ")")?;
        let mut by = Vec::new();
        if matches!(&self.peek().tok, Tok::Ident(w) if w == "by") {
            self.next();
            by = self.select()?;
        }
        Ok(NodeKind::Metrics {
            compare: false,
            stage: FirstStage::Aggregate {
                func,
                attr,
                quantiles,
                by,
            },
        })
    }

    /// `with(name = literal, …)`.
    fn hints(&mut self) -> Result<Vec<(String, Static)>, TraceQlError> {
        let mut hints = Vec::new();
        self.next();
        self.expect(Tok::LParen, "(")?;
        loop {
            let name = self.next();
            let Tok::Ident(hint) = &name.tok else {
                return Err(self.unexpected(&name, "a hint name"));
            };
            let hint = hint.clone();
            self.expect(Tok::Eq, "=")?;
            let value = self.next();
            let literal = match &value.tok {
                Tok::Int(_) | Tok::Float(_) | Tok::Duration(_) => number_static(&value.tok),
                Tok::Str(s) => Static::Str(s.clone()),
                Tok::Ident(w) if w == "true" || w == "false" => Static::Bool(w == "true"),
                _ => return Err(self.unexpected(&value, "a literal")),
            };
            hints.push((hint, literal));
            let sep = self.next();
            match sep.tok {
                Tok::Comma => continue,
                Tok::RParen => return Ok(hints),
                _ => return Err(self.unexpected(&sep, ", or )")),
            }
        }
    }

    // ---------------------------------------------------------------- field level

    fn field_expr(&mut self, min_prec: u8) -> Result<Typed, TraceQlError> {
        self.nested(|p| {
            let mut lhs = p.field_term()?;
            while let Some((op, prec, right_assoc)) = field_operator(&p.peek().tok) {
                if prec < min_prec {
                    break;
                }
                let op_token = p.next();
                let rhs = p.field_expr(if right_assoc { prec } else { prec + 1 })?;
                lhs = p.binary(op, lhs, rhs, op_token.pos)?;
            }
            Ok(lhs)
        })
    }

    fn field_term(&mut self) -> Result<Typed, TraceQlError> {
        let token = self.next();
        match &token.tok {
            Tok::LParen => {
                let inner = self.field_expr(0)?;
                self.expect(Tok::RParen, ")")?;
                Ok(inner)
            }
            Tok::Sub | Tok::Not => {
                let operand = self.field_expr(PREC_MUL)?;
                let negate = token.tok == Tok::Sub;
                let valid = operand.ty == Ty::Attribute
                    || if negate {
                        operand.ty.is_numeric()
                    } else {
                        operand.ty == Ty::Bool
                    };
                let expr = match (&operand.expr, negate) {
                    (Expr::Static(s), true) if valid => match negate_static(s) {
                        Some(negated) => Expr::Static(negated),
                        None => {
                            return Err(TraceQlError::syntax(
                                token.pos,
                                "syntax error: number out of range",
                            ));
                        }
                    },
                    (_, true) => Expr::Neg(Box::new(operand.expr)),
                    (_, false) => Expr::Not(Box::new(operand.expr)),
                };
                if !valid {
                    self.invalid(
                        token.pos,
                        format!("illegal operation for the given type: {expr}"),
                    );
                }
                let depth = operand.depth + 1;
                self.check_depth(depth, token.pos)?;
                Ok(Typed {
                    expr,
                    ty: operand.ty,
                    depth,
                })
            }
            _ => match self.field_token(&token)? {
                Some(expr) => {
                    let ty = static_type_of(&expr);
                    Ok(Typed { expr, ty, depth: 1 })
                }
                None => Err(self.unexpected(&token, "a value, an attribute or an intrinsic")),
            },
        }
    }

    /// A literal, attribute or intrinsic token as an expression; `None` if it is none of
    /// these. Constructs outside our subset are recorded and replaced by a stand-in of the
    /// same type, so that validation still sees the query as written.
    fn field_token(&mut self, token: &Token) -> Result<Option<Expr>, TraceQlError> {
        let pos = token.pos;
        let intrinsic = |i| Some(Expr::Field(Field::Intrinsic(i)));
        Ok(match &token.tok {
            Tok::Str(s) => Some(Expr::Static(Static::Str(s.clone()))),
            Tok::Int(_) | Tok::Float(_) | Tok::Duration(_) => {
                Some(Expr::Static(number_static(&token.tok)))
            }
            Tok::Ident(word) => match word.as_str() {
                "true" => Some(Expr::Static(Static::Bool(true))),
                "false" => Some(Expr::Static(Static::Bool(false))),
                "nil" => Some(Expr::Static(Static::Nil)),
                "ok" => Some(Expr::Static(Static::Status(StatusCode::Ok))),
                "error" => Some(Expr::Static(Static::Status(StatusCode::Error))),
                "unset" => Some(Expr::Static(Static::Status(StatusCode::Unset))),
                "unspecified" => Some(Expr::Static(Static::Kind(SpanKind::Unspecified))),
                "internal" => Some(Expr::Static(Static::Kind(SpanKind::Internal))),
                "server" => Some(Expr::Static(Static::Kind(SpanKind::Server))),
                "client" => Some(Expr::Static(Static::Kind(SpanKind::Client))),
                "producer" => Some(Expr::Static(Static::Kind(SpanKind::Producer))),
                "consumer" => Some(Expr::Static(Static::Kind(SpanKind::Consumer))),
                "name" => intrinsic(Intrinsic::Name),
                "status" => intrinsic(Intrinsic::Status),
                "statusMessage" => intrinsic(Intrinsic::StatusMessage),
                "kind" => intrinsic(Intrinsic::Kind),
                "duration" => intrinsic(Intrinsic::Duration),
                "childCount" => intrinsic(Intrinsic::ChildCount),
                "rootName" => intrinsic(Intrinsic::RootName),
                "rootServiceName" => intrinsic(Intrinsic::RootServiceName),
                "traceDuration" => intrinsic(Intrinsic::TraceDuration),
                "parent" => {
                    self.refuse(pos, "the `parent` intrinsic is not supported");
                    Some(attribute_stand_in("parent"))
                }
                "nestedSetLeft" | "nestedSetRight" | "nestedSetParent" => {
                    self.refuse(pos, format!("the `{word}` intrinsic is not supported"));
                    intrinsic(Intrinsic::ChildCount)
                }
                _ => None,
            },
            Tok::Attribute { scope, name } => {
                let scope = match scope {
                    AttrScope::Unscoped => Scope::Unscoped,
                    AttrScope::Span => Scope::Span,
                    AttrScope::Resource => Scope::Resource,
                    AttrScope::Instrumentation => Scope::Instrumentation,
                    AttrScope::Event | AttrScope::Link | AttrScope::Parent => {
                        let what = match scope {
                            AttrScope::Event => "event",
                            AttrScope::Link => "link",
                            _ => "parent",
                        };
                        self.refuse(pos, format!("`{what}.` attributes are not supported"));
                        return Ok(Some(attribute_stand_in(name)));
                    }
                };
                Some(Expr::Field(Field::Attribute {
                    scope,
                    name: name.clone(),
                }))
            }
            Tok::ScopedIntrinsic { scope, name } => {
                let known = match (scope.as_str(), name.as_str()) {
                    ("span", "name") => Intrinsic::Name,
                    ("span", "status") => Intrinsic::Status,
                    ("span", "statusMessage") => Intrinsic::StatusMessage,
                    ("span", "kind") => Intrinsic::Kind,
                    ("span", "duration") => Intrinsic::Duration,
                    ("span", "id") => Intrinsic::SpanId,
                    ("span", "parentID") => Intrinsic::ParentId,
                    ("span", "childCount") => Intrinsic::ChildCount,
                    ("trace", "id") => Intrinsic::TraceId,
                    ("trace", "rootName") => Intrinsic::RootName,
                    ("trace", "rootService") => Intrinsic::RootServiceName,
                    ("trace", "duration") => Intrinsic::TraceDuration,
                    ("instrumentation", "name") => Intrinsic::InstrumentationName,
                    ("instrumentation", "version") => Intrinsic::InstrumentationVersion,
                    // Stand-ins of the same type for what we do not evaluate.
                    ("event", "name") | ("link", "traceID") | ("link", "spanID") => {
                        self.refuse(pos, format!("`{scope}:{name}` is not supported"));
                        Intrinsic::Name
                    }
                    ("event", "timeSinceStart") => {
                        self.refuse(pos, format!("`{scope}:{name}` is not supported"));
                        Intrinsic::Duration
                    }
                    ("span", "nestedSetLeft" | "nestedSetRight" | "nestedSetParent") => {
                        self.refuse(pos, format!("`{scope}:{name}` is not supported"));
                        Intrinsic::ChildCount
                    }
                    _ => {
                        return Err(TraceQlError::syntax(
                            pos,
                            format!("syntax error: unknown intrinsic `{scope}:{name}`"),
                        ));
                    }
                };
                intrinsic(known)
            }
            _ => None,
        })
    }

    /// Builds and type-checks `lhs op rhs` (Tempo's rules; `x != nil` is existence).
    fn binary(
        &mut self,
        op: BinOp,
        lhs: Typed,
        rhs: Typed,
        pos: Pos,
    ) -> Result<Typed, TraceQlError> {
        let depth = lhs.depth.max(rhs.depth) + 1;
        self.check_depth(depth, pos)?;
        let nil = |e: &Expr| matches!(e, Expr::Static(Static::Nil));
        let boolean = |expr| Typed {
            expr,
            ty: Ty::Bool,
            depth,
        };
        match op {
            BinOp::Cmp(CmpOp::Ne) | BinOp::Cmp(CmpOp::Eq) if nil(&lhs.expr) && nil(&rhs.expr) => {
                // Tempo reads `nil = nil` and `nil != nil` as false.
                return Ok(boolean(Expr::Static(Static::Bool(false))));
            }
            BinOp::Cmp(CmpOp::Ne) if nil(&rhs.expr) => {
                return Ok(boolean(Expr::Exists(Box::new(lhs.expr))));
            }
            BinOp::Cmp(CmpOp::Ne) if nil(&lhs.expr) => {
                return Ok(boolean(Expr::Exists(Box::new(rhs.expr))));
            }
            BinOp::Cmp(CmpOp::Eq) if nil(&rhs.expr) => {
                self.invalid(
                    pos,
                    format!(
                        "comparing with `= nil` is not valid: {} = nil; use `!= nil` for existence",
                        lhs.expr
                    ),
                );
                return Ok(boolean(Expr::Static(Static::Bool(false))));
            }
            BinOp::Cmp(CmpOp::Eq) if nil(&lhs.expr) && rhs.ty == Ty::Attribute => {
                self.refuse(pos, "`nil = …` is not supported");
                return Ok(boolean(Expr::Static(Static::Bool(false))));
            }
            _ => {}
        }
        let op_text = match op {
            BinOp::And => "&&",
            BinOp::Or => "||",
            BinOp::Cmp(c) => c.as_str(),
            BinOp::Arith(a) => match a {
                ArithOp::Add => "+",
                ArithOp::Sub => "-",
                ArithOp::Mul => "*",
                ArithOp::Div => "/",
                ArithOp::Mod => "%",
                ArithOp::Pow => "^",
            },
        };
        if !lhs.ty.matches(rhs.ty) {
            self.invalid(
                pos,
                format!(
                    "binary operations must operate on the same type: {} {op_text} {}",
                    lhs.expr, rhs.expr
                ),
            );
        } else if !operand_valid(op, lhs.ty) || !operand_valid(op, rhs.ty) {
            self.invalid(
                pos,
                format!(
                    "illegal operation for the given types: {} {op_text} {}",
                    lhs.expr, rhs.expr
                ),
            );
        }
        let (l, r) = (Box::new(lhs.expr), Box::new(rhs.expr));
        Ok(match op {
            BinOp::And => boolean(Expr::And(l, r)),
            BinOp::Or => boolean(Expr::Or(l, r)),
            BinOp::Cmp(cmp @ (CmpOp::Regex | CmpOp::NotRegex)) => {
                let negated = cmp == CmpOp::NotRegex;
                match *r {
                    Expr::Static(Static::Str(source)) => {
                        if let Err(e) = self.fold_budget.charge(&source) {
                            self.invalid(pos, format!("invalid regex {source:?}: {e}"));
                            return Ok(boolean(Expr::Static(Static::Bool(false))));
                        }
                        let anchored = format!("^(?:{source})$");
                        match RegexBuilder::new(&anchored)
                            .size_limit(REGEX_SIZE_LIMIT)
                            .build()
                        {
                            Ok(regex) => boolean(Expr::Match {
                                negated,
                                lhs: l,
                                pattern: Pattern { source, regex },
                            }),
                            Err(err) => {
                                self.invalid(
                                    pos,
                                    format!(
                                        "invalid regex {source:?}: {}",
                                        first_line(&err.to_string())
                                    ),
                                );
                                boolean(Expr::Static(Static::Bool(false)))
                            }
                        }
                    }
                    Expr::Static(_) => boolean(Expr::Static(Static::Bool(false))),
                    other => {
                        self.refuse(pos, format!("a regular expression that is not a string literal (`{op_text} {other}`) is not supported"));
                        boolean(Expr::Static(Static::Bool(false)))
                    }
                }
            }
            BinOp::Cmp(cmp) => boolean(Expr::Compare {
                op: cmp,
                lhs: l,
                rhs: r,
            }),
            BinOp::Arith(a) => {
                let ty = match (lhs.ty, rhs.ty) {
                    (Ty::Attribute, _) | (_, Ty::Attribute) => Ty::Attribute,
                    (Ty::Int, Ty::Int) => Ty::Int,
                    (Ty::Duration, Ty::Duration) => Ty::Duration,
                    (t, _) if !t.is_numeric() => t,
                    (_, t) if !t.is_numeric() => t,
                    _ => Ty::Float,
                };
                Typed {
                    expr: Expr::Arith {
                        op: a,
                        lhs: l,
                        rhs: r,
                    },
                    ty,
                    depth,
                }
            }
        })
    }

    // ---------------------------------------------------------------- sorting the tree

    fn root(&mut self, node: &Node) -> Result<Body, TraceQlError> {
        if contains_metrics(node) {
            match self.metrics_type(node)? {
                MetricsType::Metric { .. } => {}
                _ => {
                    return Err(TraceQlError::syntax(
                        node.pos,
                        "syntax error: a metrics function must follow a spanset pipeline",
                    ));
                }
            }
            let expr = self.metrics_expr(node)?;
            return Ok(Body::Metrics(MetricsQuery {
                expr,
                hints: Vec::new(),
            }));
        }
        if let NodeKind::Binary { op, lhs, rhs } = &node.kind
            && scalar_cmp(op).is_some()
            && (is_scalar_pipeline(lhs) || is_scalar_pipeline(rhs))
        {
            let filter = self.scalar_filter(op, lhs, rhs, node.pos, true)?;
            return Ok(Body::Search(Pipeline {
                elements: vec![Element::ScalarFilter(filter)],
            }));
        }
        self.pipeline(node).map(Body::Search)
    }

    /// Builds the expression of a metrics query that [`Self::metrics_type`] accepted.
    fn metrics_expr(&mut self, node: &Node) -> Result<MetricsExpr, TraceQlError> {
        match &node.kind {
            NodeKind::Group(inner) => self.metrics_expr(inner),
            NodeKind::Pipe(stages) => {
                let mut before = Vec::new();
                let mut expr: Option<MetricsExpr> = None;
                for (i, stage) in stages.iter().enumerate() {
                    let (core, filter) = match &stage.kind {
                        NodeKind::Binary { op, lhs, rhs }
                            if matches!(
                                lhs.kind,
                                NodeKind::Metrics { .. } | NodeKind::SecondStage { .. }
                            ) =>
                        {
                            let cmp = scalar_cmp(op).unwrap_or(CmpOp::Eq);
                            (lhs.as_ref(), Some((cmp, self.metrics_constant(rhs))))
                        }
                        _ => (stage, None),
                    };
                    let built = match (&core.kind, expr.take()) {
                        (NodeKind::Metrics { stage: first, .. }, None) => {
                            if let FirstStage::Compare { .. } = first {
                                self.refuse(core.pos, "`compare()` is not supported");
                            }
                            MetricsExpr::Leaf {
                                pipeline: Pipeline {
                                    elements: std::mem::take(&mut before),
                                },
                                stage: first.clone(),
                            }
                        }
                        (NodeKind::SecondStage { bottom, k }, Some(inner)) => MetricsExpr::TopK {
                            inner: Box::new(inner),
                            bottom: *bottom,
                            k: *k,
                        },
                        (_, None) if i == 0 && contains_metrics(stage) => {
                            expr = Some(self.metrics_expr(stage)?);
                            continue;
                        }
                        (_, None) => {
                            before.push(self.element(stage, i == 0)?);
                            continue;
                        }
                        _ => {
                            return Err(TraceQlError::syntax(
                                stage.pos,
                                "syntax error: only topk() or bottomk() can follow a metrics function",
                            ));
                        }
                    };
                    expr = Some(match filter {
                        Some((op, value)) => MetricsExpr::Filter {
                            inner: Box::new(built),
                            op,
                            value,
                        },
                        None => built,
                    });
                }
                expr.ok_or_else(|| {
                    TraceQlError::syntax(
                        node.pos,
                        "syntax error: a metrics function must follow a spanset pipeline",
                    )
                })
            }
            NodeKind::Binary { op, lhs, rhs } => {
                let (l_metric, r_metric) = (contains_metrics(lhs), contains_metrics(rhs));
                if let Some(cmp) = scalar_cmp(op) {
                    return Ok(match (l_metric, r_metric) {
                        (true, false) => MetricsExpr::Filter {
                            inner: Box::new(self.metrics_expr(lhs)?),
                            op: cmp,
                            value: self.metrics_constant(rhs),
                        },
                        (false, true) => MetricsExpr::Filter {
                            inner: Box::new(self.metrics_expr(rhs)?),
                            op: cmp.flipped(),
                            value: self.metrics_constant(lhs),
                        },
                        _ => {
                            self.refuse(
                                node.pos,
                                "comparing two metrics (`(… | rate()) > (… | rate())`) is not supported",
                            );
                            let l = self.metrics_expr(lhs)?;
                            self.metrics_expr(rhs)?;
                            l
                        }
                    });
                }
                let Some(arith) = arith_op(op) else {
                    return Err(TraceQlError::syntax(
                        node.pos,
                        format!("syntax error: {} cannot combine metrics", op.describe()),
                    ));
                };
                Ok(match (l_metric, r_metric) {
                    (true, true) => MetricsExpr::Binary {
                        op: arith,
                        lhs: Box::new(self.metrics_expr(lhs)?),
                        rhs: Box::new(self.metrics_expr(rhs)?),
                    },
                    (true, false) => MetricsExpr::Scalar {
                        op: arith,
                        inner: Box::new(self.metrics_expr(lhs)?),
                        value: self.metrics_constant(rhs),
                        scalar_left: false,
                    },
                    _ => MetricsExpr::Scalar {
                        op: arith,
                        inner: Box::new(self.metrics_expr(rhs)?),
                        value: self.metrics_constant(lhs),
                        scalar_left: true,
                    },
                })
            }
            _ => Err(TraceQlError::syntax(
                node.pos,
                "syntax error: a metrics function must follow a spanset pipeline",
            )),
        }
    }

    /// A constant operand of metrics arithmetic or of a metrics filter, computed in floating
    /// point as Tempo does (`1 / 2` is 0.5); invalid when it is not a finite number.
    fn metrics_constant(&mut self, node: &Node) -> f64 {
        match fold_f64(node) {
            Some(v) if v.is_finite() => v,
            _ => {
                self.invalid(node.pos, "the constant expression cannot be computed");
                0.0
            }
        }
    }

    fn pipeline(&mut self, node: &Node) -> Result<Pipeline, TraceQlError> {
        let stages: Vec<&Node> = match &node.kind {
            NodeKind::Pipe(stages) => stages.iter().collect(),
            _ => vec![node],
        };
        let mut elements = Vec::with_capacity(stages.len());
        for (i, stage) in stages.into_iter().enumerate() {
            elements.push(self.element(stage, i == 0)?);
        }
        Ok(Pipeline { elements })
    }

    fn element(&mut self, node: &Node, first: bool) -> Result<Element, TraceQlError> {
        match &node.kind {
            NodeKind::GroupBy(e) => Ok(Element::GroupBy(e.clone())),
            NodeKind::Coalesce if first => Err(TraceQlError::syntax(
                node.pos,
                "syntax error: coalesce() cannot start a pipeline",
            )),
            NodeKind::Coalesce => Ok(Element::Coalesce),
            NodeKind::Select(fields) => Ok(Element::Select(fields.clone())),
            NodeKind::Aggregate(a) => Err(TraceQlError::syntax(
                node.pos,
                format!("syntax error: {a} must be compared with a number, e.g. {a} > 1"),
            )),
            NodeKind::Binary { op, lhs, rhs }
                if scalar_cmp(op).is_some() && (is_scalar(lhs) || is_scalar(rhs)) =>
            {
                Ok(Element::ScalarFilter(
                    self.scalar_filter(op, lhs, rhs, node.pos, false)?,
                ))
            }
            _ => Ok(Element::Spanset(self.spanset(node)?)),
        }
    }

    fn spanset(&mut self, node: &Node) -> Result<SpansetExpr, TraceQlError> {
        match &node.kind {
            NodeKind::Filter(e) => Ok(SpansetExpr::Filter(e.clone())),
            NodeKind::Group(inner) if is_pure_spanset(inner) => self.spanset(inner),
            NodeKind::Group(inner) => Ok(SpansetExpr::Pipeline(Box::new(self.pipeline(inner)?))),
            NodeKind::Binary { op, lhs, rhs } => {
                let Some(set_op) = spanset_op(op) else {
                    return Err(TraceQlError::syntax(
                        node.pos,
                        format!("syntax error: {} cannot combine spansets", op.describe()),
                    ));
                };
                let l = self.spanset(lhs)?;
                let r = self.spanset(rhs)?;
                let wrapped = |n: &Node| matches!(n.kind, NodeKind::Group(_));
                let has_pipeline =
                    matches!(l, SpansetExpr::Pipeline(_)) || matches!(r, SpansetExpr::Pipeline(_));
                if has_pipeline && !(wrapped(lhs) && wrapped(rhs)) {
                    return Err(TraceQlError::syntax(
                        node.pos,
                        "syntax error: a pipeline combined with another spanset needs both sides in parentheses",
                    ));
                }
                if set_op.is_structural() && (may_be_grouped(&l) || may_be_grouped(&r)) {
                    self.refuse(
                        node.pos,
                        "structural operators over grouped spansets (`by()` without `coalesce()`) are not supported",
                    );
                }
                Ok(SpansetExpr::Op {
                    op: set_op,
                    lhs: Box::new(l),
                    rhs: Box::new(r),
                })
            }
            _ => Err(TraceQlError::syntax(
                node.pos,
                "syntax error: expecting a spanset such as { … }",
            )),
        }
    }

    /// `aggregate op constant` (either way round). Other forms that Tempo accepts (two
    /// aggregates, arithmetic on aggregates, `(pipeline | count()) > …` at the root) are
    /// checked and then refused as unsupported.
    fn scalar_filter(
        &mut self,
        op: &Tok,
        lhs: &Node,
        rhs: &Node,
        pos: Pos,
        at_root: bool,
    ) -> Result<ScalarFilter, TraceQlError> {
        let cmp = scalar_cmp(op).unwrap_or(CmpOp::Eq);
        let l = self.scalar(lhs, at_root)?;
        let r = self.scalar(rhs, at_root)?;
        if !(l.has_aggregate || r.has_aggregate) {
            return Err(TraceQlError::syntax(
                pos,
                "syntax error: a scalar filter compares an aggregate such as count() with a number",
            ));
        }
        let placeholder = ScalarFilter {
            aggregate: Aggregate {
                func: AggregateFn::Count,
                arg: None,
            },
            op: cmp,
            value: Static::Int(0),
        };
        if l.has_pipeline || r.has_pipeline {
            self.refuse(
                pos,
                "scalar pipeline expressions such as `({ … } | count()) > 1` are not supported",
            );
            return Ok(placeholder);
        }
        let (aggregate, constant, cmp) = match (&l.aggregate, &r.aggregate) {
            (Some(a), None) if !r.has_aggregate => (a.clone(), rhs, cmp),
            (None, Some(a)) if !l.has_aggregate => (a.clone(), lhs, cmp.flipped()),
            _ => {
                let message = if l.has_aggregate && r.has_aggregate {
                    "comparing two aggregates is not supported"
                } else {
                    "arithmetic on aggregates is not supported"
                };
                self.refuse(pos, message);
                return Ok(placeholder);
            }
        };
        match fold(constant) {
            Some(value) => Ok(ScalarFilter {
                aggregate,
                op: cmp,
                value,
            }),
            None => {
                self.invalid(
                    constant.pos,
                    "the constant expression cannot be computed (overflow or division by zero)",
                );
                Ok(placeholder)
            }
        }
    }

    /// Checks one side of a scalar filter: aggregates, numbers and arithmetic on them.
    fn scalar(&mut self, node: &Node, at_root: bool) -> Result<ScalarSide, TraceQlError> {
        match &node.kind {
            NodeKind::Aggregate(a) => Ok(ScalarSide {
                aggregate: Some(a.clone()),
                has_aggregate: true,
                has_pipeline: false,
            }),
            NodeKind::Number(_) => Ok(ScalarSide::default()),
            NodeKind::Group(inner) if is_scalar_pipeline(node) => {
                if !at_root {
                    return Err(TraceQlError::syntax(
                        node.pos,
                        "syntax error: a pipeline ending in an aggregate can only be compared at the top of a query",
                    ));
                }
                if let NodeKind::Pipe(stages) = &inner.kind {
                    for (i, stage) in stages[..stages.len() - 1].iter().enumerate() {
                        self.element(stage, i == 0)?;
                    }
                }
                Ok(ScalarSide {
                    aggregate: None,
                    has_aggregate: true,
                    has_pipeline: true,
                })
            }
            NodeKind::Group(inner) => self.scalar(inner, at_root),
            NodeKind::Binary { op, lhs, rhs } if arith_op(op).is_some() => {
                let l = self.scalar(lhs, at_root)?;
                let r = self.scalar(rhs, at_root)?;
                Ok(ScalarSide {
                    aggregate: None,
                    has_aggregate: l.has_aggregate || r.has_aggregate,
                    has_pipeline: l.has_pipeline || r.has_pipeline,
                })
            }
            _ => Err(TraceQlError::syntax(
                node.pos,
                "syntax error: expecting an aggregate or a number",
            )),
        }
    }

    /// The shape of a query containing metrics functions; errors where Tempo's grammar or
    /// validator would.
    fn metrics_type(&mut self, node: &Node) -> Result<MetricsType, TraceQlError> {
        match &node.kind {
            NodeKind::Pipe(stages) => {
                let mut state = MetricsType::Spanset;
                for (i, stage) in stages.iter().enumerate() {
                    state = match state {
                        MetricsType::Spanset => {
                            if let Some(compare) = first_stage(stage) {
                                if i == 0 {
                                    return Err(TraceQlError::syntax(
                                        stage.pos,
                                        "syntax error: a metrics function must follow a spanset pipeline",
                                    ));
                                }
                                self.metrics_filter(stage)?;
                                MetricsType::Metric { compare }
                            } else if i == 0 && contains_metrics(stage) {
                                match self.metrics_type(stage)? {
                                    MetricsType::Metric { compare } => {
                                        MetricsType::Metric { compare }
                                    }
                                    _ => {
                                        return Err(TraceQlError::syntax(
                                            stage.pos,
                                            "syntax error: unexpected metrics function",
                                        ));
                                    }
                                }
                            } else {
                                self.element(stage, i == 0)?;
                                MetricsType::Spanset
                            }
                        }
                        MetricsType::Metric { compare } => {
                            if !is_second_stage(stage) {
                                return Err(TraceQlError::syntax(
                                    stage.pos,
                                    "syntax error: only topk() or bottomk() can follow a metrics function",
                                ));
                            }
                            if compare {
                                self.invalid(
                                    stage.pos,
                                    "compare() cannot be followed by other functions",
                                );
                            }
                            self.metrics_filter(stage)?;
                            MetricsType::Metric { compare }
                        }
                        MetricsType::Number { .. } => {
                            unreachable!("pipeline stages are never numbers")
                        }
                    };
                }
                Ok(state)
            }
            NodeKind::Group(inner) => self.metrics_type(inner),
            NodeKind::Number(n) => Ok(MetricsType::Number {
                duration: matches!(n, Static::Duration(_)),
            }),
            NodeKind::Metrics { .. } | NodeKind::SecondStage { .. } => Err(TraceQlError::syntax(
                node.pos,
                "syntax error: a metrics function must follow a spanset pipeline",
            )),
            NodeKind::Binary { op, lhs, rhs } => {
                let l = self.metrics_type(lhs)?;
                let r = self.metrics_type(rhs)?;
                let metric = matches!(l, MetricsType::Metric { .. })
                    || matches!(r, MetricsType::Metric { .. });
                let compare = matches!(l, MetricsType::Metric { compare: true })
                    || matches!(r, MetricsType::Metric { compare: true });
                let spanset = l == MetricsType::Spanset || r == MetricsType::Spanset;
                let duration = matches!(l, MetricsType::Number { duration: true })
                    || matches!(r, MetricsType::Number { duration: true });
                let arithmetic = matches!(op, Tok::Add | Tok::Sub | Tok::Mul | Tok::Div);
                if !metric {
                    if spanset || !arithmetic {
                        return Err(TraceQlError::syntax(
                            node.pos,
                            format!("syntax error: unexpected {}", op.describe()),
                        ));
                    }
                    return Ok(MetricsType::Number { duration });
                }
                if spanset || duration || !(arithmetic || scalar_cmp(op).is_some()) {
                    return Err(TraceQlError::syntax(
                        node.pos,
                        format!(
                            "syntax error: {} cannot combine these metrics operands",
                            op.describe()
                        ),
                    ));
                }
                if compare {
                    self.invalid(
                        node.pos,
                        "compare() cannot be combined with other expressions",
                    );
                }
                Ok(MetricsType::Metric { compare })
            }
            _ => Ok(MetricsType::Spanset),
        }
    }

    /// A metrics stage optionally compared with a number: `rate() > 10`, `topk(5) <= 3`.
    fn metrics_filter(&mut self, stage: &Node) -> Result<(), TraceQlError> {
        if let NodeKind::Binary { op, lhs, rhs } = &stage.kind {
            let number =
                matches!(&rhs.kind, NodeKind::Number(n) if !matches!(n, Static::Duration(_)));
            if scalar_cmp(op).is_none() || !number {
                return Err(TraceQlError::syntax(
                    rhs.pos,
                    "syntax error: expecting a number",
                ));
            }
            if matches!(lhs.kind, NodeKind::Metrics { compare: true, .. }) {
                self.invalid(stage.pos, "compare() cannot be filtered");
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetricsType {
    Spanset,
    Number { duration: bool },
    Metric { compare: bool },
}

#[derive(Debug, Default)]
struct ScalarSide {
    /// Set when the side is exactly one aggregate.
    aggregate: Option<Aggregate>,
    has_aggregate: bool,
    has_pipeline: bool,
}

/// `Some(is_compare)` when the stage is a metrics function, optionally compared.
fn first_stage(node: &Node) -> Option<bool> {
    match &node.kind {
        NodeKind::Metrics { compare, .. } => Some(*compare),
        NodeKind::Binary { lhs, .. } => match lhs.kind {
            NodeKind::Metrics { compare, .. } => Some(compare),
            _ => None,
        },
        _ => None,
    }
}

fn is_second_stage(node: &Node) -> bool {
    match &node.kind {
        NodeKind::SecondStage { .. } => true,
        NodeKind::Binary { lhs, .. } => matches!(lhs.kind, NodeKind::SecondStage { .. }),
        _ => false,
    }
}

fn contains_metrics(node: &Node) -> bool {
    match &node.kind {
        NodeKind::Metrics { .. } | NodeKind::SecondStage { .. } => true,
        NodeKind::Group(inner) => contains_metrics(inner),
        NodeKind::Binary { lhs, rhs, .. } => contains_metrics(lhs) || contains_metrics(rhs),
        NodeKind::Pipe(stages) => stages.iter().any(contains_metrics),
        _ => false,
    }
}

/// Whether the node is a spanset expression without pipeline stages.
fn is_pure_spanset(node: &Node) -> bool {
    match &node.kind {
        NodeKind::Filter(_) => true,
        NodeKind::Group(inner) => is_pure_spanset(inner),
        NodeKind::Binary { op, lhs, rhs } => {
            spanset_op(op).is_some() && is_pure_spanset(lhs) && is_pure_spanset(rhs)
        }
        _ => false,
    }
}

/// Whether the node reads as a number-valued expression (aggregate, number, arithmetic).
fn is_scalar(node: &Node) -> bool {
    match &node.kind {
        NodeKind::Aggregate(_) | NodeKind::Number(_) => true,
        NodeKind::Group(inner) => is_scalar(inner) || is_scalar_pipeline(node),
        NodeKind::Binary { op, .. } => arith_op(op).is_some(),
        _ => false,
    }
}

/// `( pipeline | aggregate )`, possibly inside arithmetic.
fn is_scalar_pipeline(node: &Node) -> bool {
    match &node.kind {
        NodeKind::Group(inner) => match &inner.kind {
            NodeKind::Pipe(stages) => {
                matches!(stages.last().map(|s| &s.kind), Some(NodeKind::Aggregate(_)))
            }
            _ => is_scalar_pipeline(inner),
        },
        NodeKind::Binary { op, lhs, rhs } if arith_op(op).is_some() => {
            is_scalar_pipeline(lhs) || is_scalar_pipeline(rhs)
        }
        _ => false,
    }
}

/// Whether an operand may yield several spansets per trace (a `by()` not undone by a later
/// `coalesce()`), which Tempo's structural operators refuse.
fn may_be_grouped(expr: &SpansetExpr) -> bool {
    match expr {
        SpansetExpr::Filter(_) => false,
        SpansetExpr::Op { .. } => false,
        SpansetExpr::Pipeline(p) => {
            let mut grouped = false;
            for element in &p.elements {
                match element {
                    Element::GroupBy(_) => grouped = true,
                    Element::Coalesce => grouped = false,
                    _ => {}
                }
            }
            grouped
        }
    }
}

/// Computes a constant operand of metrics arithmetic in floating point.
fn fold_f64(node: &Node) -> Option<f64> {
    match &node.kind {
        NodeKind::Number(Static::Int(i)) => Some(*i as f64),
        NodeKind::Number(Static::Float(f)) => Some(*f),
        NodeKind::Group(inner) => fold_f64(inner),
        NodeKind::Binary { op, lhs, rhs } => {
            let (l, r) = (fold_f64(lhs)?, fold_f64(rhs)?);
            Some(match arith_op(op)? {
                ArithOp::Add => l + r,
                ArithOp::Sub => l - r,
                ArithOp::Mul => l * r,
                ArithOp::Div => l / r,
                ArithOp::Mod => l % r,
                ArithOp::Pow => l.powf(r),
            })
        }
        _ => None,
    }
}

/// Computes a constant side of a scalar filter; `None` on overflow or division by zero.
fn fold(node: &Node) -> Option<Static> {
    match &node.kind {
        NodeKind::Number(n) => Some(n.clone()),
        NodeKind::Group(inner) => fold(inner),
        NodeKind::Binary { op, lhs, rhs } => {
            let op = arith_op(op)?;
            let (l, r) = (fold(lhs)?, fold(rhs)?);
            let value = crate::eval::arith_static(op, &l, &r)?;
            match value {
                Static::Float(v) if !v.is_finite() => None,
                Static::Int(i64::MIN) | Static::Duration(i64::MIN) => None,
                other => Some(other),
            }
        }
        _ => None,
    }
}

fn number_static(tok: &Tok) -> Static {
    match tok {
        Tok::Int(i) => Static::Int(*i),
        Tok::Float(f) => Static::Float(*f),
        Tok::Duration(d) => Static::Duration(*d),
        _ => Static::Nil,
    }
}

/// `-x` for a numeric literal; `None` for a non-number or on overflow.
fn negate_static(s: &Static) -> Option<Static> {
    match s {
        Static::Int(i) => i.checked_neg().map(Static::Int),
        Static::Float(f) => Some(Static::Float(-f)),
        Static::Duration(d) => d.checked_neg().map(Static::Duration),
        _ => None,
    }
}

fn static_type_of(expr: &Expr) -> Ty {
    match expr {
        Expr::Static(s) => match s {
            Static::Nil => Ty::Nil,
            Static::Bool(_) => Ty::Bool,
            Static::Int(_) => Ty::Int,
            Static::Float(_) => Ty::Float,
            Static::Str(_) => Ty::Str,
            Static::Duration(_) => Ty::Duration,
            Static::Status(_) => Ty::Status,
            Static::Kind(_) => Ty::Kind,
        },
        Expr::Field(Field::Intrinsic(i)) => match i {
            Intrinsic::Name
            | Intrinsic::StatusMessage
            | Intrinsic::SpanId
            | Intrinsic::ParentId
            | Intrinsic::TraceId
            | Intrinsic::RootName
            | Intrinsic::RootServiceName
            | Intrinsic::InstrumentationName
            | Intrinsic::InstrumentationVersion => Ty::Str,
            Intrinsic::Status => Ty::Status,
            Intrinsic::Kind => Ty::Kind,
            Intrinsic::Duration | Intrinsic::TraceDuration => Ty::Duration,
            Intrinsic::ChildCount => Ty::Int,
        },
        _ => Ty::Attribute,
    }
}

fn attribute_stand_in(name: &str) -> Expr {
    Expr::Field(Field::Attribute {
        scope: Scope::Unscoped,
        name: name.to_string(),
    })
}

/// Whether the expression reads anything from the span (an attribute or intrinsic).
fn references_span(expr: &Expr) -> bool {
    match expr {
        Expr::Static(_) => false,
        Expr::Field(_) => true,
        Expr::Compare { lhs, rhs, .. } | Expr::Arith { lhs, rhs, .. } => {
            references_span(lhs) || references_span(rhs)
        }
        Expr::And(lhs, rhs) | Expr::Or(lhs, rhs) => references_span(lhs) || references_span(rhs),
        Expr::Match { lhs, .. } => references_span(lhs),
        Expr::Neg(e) | Expr::Not(e) | Expr::Exists(e) => references_span(e),
    }
}

fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("error:"))
        .map(|l| l.trim_start_matches("error:").trim())
        .unwrap_or_else(|| text.lines().next().unwrap_or(text))
}
