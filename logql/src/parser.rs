//! A hand-written recursive-descent parser for the supported LogQL subset.
//!
//! Grammar (informally):
//!
//! ```text
//! expr        := operand (binary_op modifiers operand)*        (precedence below)
//! operand     := log_expr | metric_expr | ("+" | "-")? NUMBER | "(" expr ")"
//! binary_op   := "or" | "and" | "unless" | "==" | "!=" | ">" | ">=" | "<" | "<="
//!              | "+" | "-" | "*" | "/" | "%" | "^"
//! modifiers   := "bool"? (("on" | "ignoring") labels (("group_left" | "group_right") labels?)?)?
//! labels      := "(" (IDENTIFIER ("," IDENTIFIER)*)? ")"
//! log_expr    := selector stage* | "(" log_expr ")"
//! selector    := "{" matcher ("," matcher)* ","? "}"
//! matcher     := IDENTIFIER ("=" | "!=" | "=~" | "!~") STRING
//! stage       := ("|=" | "!=" | "|~" | "!~") STRING
//!              | "|" ("json" | "logfmt" | "line_format" STRING | label_filter)
//! label_filter:= and_filter ("or" and_filter)*
//! and_filter  := primary (("and" | ",")? primary)*
//! primary     := "(" label_filter ")" | IDENTIFIER op (STRING | NUMBER | DURATION)
//! metric_expr := range_fn "(" log_range ")" | vector_op grouping? "(" (NUMBER ",")? expr ")" grouping?
//! log_range   := selector RANGE? stage* RANGE? ("offset" DURATION)?     (exactly one RANGE)
//!              | "(" log_expr ")" RANGE ("offset" DURATION)?
//! grouping    := ("by" | "without") labels
//! ```
//!
//! Binary operators bind as in Loki and Prometheus, loosest first: `or`; `and` `unless`;
//! comparisons; `+` `-`; `*` `/` `%`; `^`. All associate to the left except `^`. A sign
//! belongs to the number it precedes (`-2 ^ 2` is 4, as in Loki). Both sides of an operator
//! must be metric expressions or numbers; an operation between two numbers is folded into
//! one (`1 > 2` is 0). The argument of an aggregation is an expression too, but neither a log
//! query nor a number.
//!
//! Errors carry the 1-based line and column (in characters) of the offending token and print
//! like Loki's: `parse error at line 1, col 15: syntax error: unexpected IDENTIFIER, expecting {`.

use sightline_model::{LabelMatcher, LineFilter, LineFilterOp, MatchOp};

use crate::ast::{
    BinaryExpr, BinaryOp, Cardinality, Expr, Grouping, LabelFilter, LineTemplate, LogExpr,
    MetricExpr, NumericOp, RangeAggregation, RangeOp, Stage, VectorAggregation, VectorMatching,
    VectorOp,
};
use crate::lexer::{Token, TokenKind, tokenize};

/// Deepest nesting accepted, of two kinds: the parser's recursion (parentheses, aggregations,
/// right operands) and the height of the metric tree it builds (binary operations and
/// aggregations, so that a long chain `a + b + c + …`, which the parser builds in a loop, is
/// bounded too). Evaluating, printing and dropping the tree recurse along its height.
const MAX_DEPTH: usize = 64;

/// What an operand after a binary operator may start with.
const OPERAND: &str = "a metric expression or NUMBER";

/// Loki's message for a selector that could match every stream.
const EMPTY_SELECTOR: &str = "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will";

/// Functions and stages of LogQL that this engine does not implement.
const UNSUPPORTED_FUNCTIONS: &[&str] = &[
    "sum_over_time",
    "avg_over_time",
    "max_over_time",
    "min_over_time",
    "first_over_time",
    "last_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "quantile_over_time",
    "absent_over_time",
    "rate_counter",
    "stddev",
    "stdvar",
    "sort",
    "sort_desc",
    "label_replace",
    "vector",
    "approx_topk",
];
const UNSUPPORTED_STAGES: &[&str] = &[
    "unwrap",
    "label_format",
    "regexp",
    "pattern",
    "unpack",
    "drop",
    "keep",
    "decolorize",
    "distinct",
];

/// Why a query could not be parsed, with the 1-based position of the offending token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse error at line {line}, col {column}: {message}")]
pub struct ParseError {
    /// 1-based line of the offending token.
    pub line: usize,
    /// 1-based column of the offending token, counted in characters, not bytes.
    pub column: usize,
    /// What is wrong, without the position.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(line: usize, column: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            column,
            message: message.into(),
        }
    }

    fn at(token: &Token, message: impl Into<String>) -> Self {
        Self::new(token.line, token.column, message)
    }
}

/// Parses a LogQL query.
pub fn parse(query: &str) -> Result<Expr, ParseError> {
    let mut parser = Parser {
        tokens: tokenize(query)?,
        pos: 0,
        depth: 0,
        fold_budget: sightline_model::FoldBudget::for_query(query.len()),
    };
    let parsed = parser.expr("{ or (")?;
    let token = parser.peek();
    match &token.kind {
        TokenKind::Eof => Ok(parsed.expr),
        _ => Err(parser.unexpected(token, None)),
    }
}

/// The binary operator a token is, if it is one.
fn binary_op(kind: &TokenKind) -> Option<BinaryOp> {
    Some(match kind {
        TokenKind::Arithmetic('+') => BinaryOp::Add,
        TokenKind::Arithmetic('-') => BinaryOp::Sub,
        TokenKind::Arithmetic('*') => BinaryOp::Mul,
        TokenKind::Arithmetic('/') => BinaryOp::Div,
        TokenKind::Arithmetic('%') => BinaryOp::Mod,
        TokenKind::Arithmetic('^') => BinaryOp::Pow,
        TokenKind::EqEq => BinaryOp::Eq,
        TokenKind::Neq => BinaryOp::Neq,
        TokenKind::Gt => BinaryOp::Gt,
        TokenKind::Ge => BinaryOp::Ge,
        TokenKind::Lt => BinaryOp::Lt,
        TokenKind::Le => BinaryOp::Le,
        TokenKind::Ident(word) => match word.as_str() {
            "or" => BinaryOp::Or,
            "and" => BinaryOp::And,
            "unless" => BinaryOp::Unless,
            _ => return None,
        },
        _ => return None,
    })
}

/// An expression being parsed: what it is, the height of its metric tree (1 for a leaf) and
/// where it starts.
struct Parsed {
    expr: Expr,
    height: usize,
    line: usize,
    column: usize,
}

impl Parsed {
    /// An error positioned at the expression's start.
    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError::new(self.line, self.column, message)
    }
}

/// Builds `left op right`, or refuses it as Loki does: a log query on either side, a number
/// on either side of `and`/`or`/`unless`. An operation between two numbers is folded.
fn combine(
    left: Parsed,
    op: BinaryOp,
    op_token: &Token,
    return_bool: bool,
    matching: VectorMatching,
    right: Parsed,
) -> Result<Parsed, ParseError> {
    let (line, column) = (left.line, left.column);
    let height = left.height.max(right.height) + 1;
    let left = leg("left", op, left)?;
    let right = leg("right", op, right)?;
    let (expr, height) = match (&left, &right) {
        (MetricExpr::Literal(l), MetricExpr::Literal(r)) => {
            (MetricExpr::Literal(op.apply(*l, *r).unwrap_or(f64::NAN)), 1)
        }
        _ => {
            check_height(height, op_token)?;
            let binary = BinaryExpr {
                op,
                return_bool,
                matching,
                left: Box::new(left),
                right: Box::new(right),
            };
            (MetricExpr::Binary(binary), height)
        }
    };
    Ok(Parsed {
        expr: Expr::Metric(expr),
        height,
        line,
        column,
    })
}

/// One side of a binary operation, if Loki accepts it there.
fn leg(side: &str, op: BinaryOp, parsed: Parsed) -> Result<MetricExpr, ParseError> {
    let (line, column) = (parsed.line, parsed.column);
    match parsed.expr {
        Expr::Log(_) => Err(ParseError::new(
            line,
            column,
            format!(
                "unexpected type for {side} leg of binary operation ({}): a log query; both \
                 sides must be metric expressions (such as rate(…)) or numbers",
                op.as_str()
            ),
        )),
        Expr::Metric(MetricExpr::Literal(value)) if op.is_set_operator() => Err(ParseError::new(
            line,
            column,
            format!(
                "unexpected literal for {side} leg of logical/set binary operation ({}): {value:.6}",
                op.as_str()
            ),
        )),
        Expr::Metric(metric) => Ok(metric),
    }
}

/// Refuses a metric tree taller than [`MAX_DEPTH`], at the token that would make it so.
fn check_height(height: usize, token: &Token) -> Result<(), ParseError> {
    if height > MAX_DEPTH {
        return Err(ParseError::at(
            token,
            format!("query is nested more than {MAX_DEPTH} levels deep"),
        ));
    }
    Ok(())
}

fn is_word(kind: &TokenKind, word: &str) -> bool {
    matches!(kind, TokenKind::Ident(w) if w == word)
}

/// Compact form of a regex error, like Go's `error parsing regexp: …`.
fn regex_message(value: &str, err: &regex::Error) -> String {
    let text = err.to_string();
    let reason = text
        .lines()
        .find_map(|line| line.strip_prefix("error: "))
        .unwrap_or(text.as_str());
    format!("error parsing regexp: {reason}: `{value}`")
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    /// What the query's regexes may cost to compile together
    /// (`sightline_model::regex_cost`: a few bytes of `(?i)[a[^b]]` walk all of Unicode).
    fold_budget: sightline_model::FoldBudget,
}

impl Parser {
    /// Charges a regex (matcher, line or label filter) to the query's budget.
    fn charge_regex(&mut self, token: &Token, value: &str) -> Result<(), ParseError> {
        self.fold_budget
            .charge(value)
            .map_err(|e| ParseError::at(token, format!("error parsing regexp: {e}: `{value}`")))
    }

    fn peek(&self) -> &Token {
        // The lexer always ends with Eof and `next` never moves past it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek_kind_at(&self, ahead: usize) -> &TokenKind {
        let last = self.tokens.len() - 1;
        &self.tokens[(self.pos + ahead).min(last)].kind
    }

    fn next(&mut self) -> Token {
        let token = self.peek().clone();
        if token.kind != TokenKind::Eof {
            self.pos += 1;
        }
        token
    }

    fn unexpected(&self, token: &Token, expecting: Option<&str>) -> ParseError {
        let found = token.kind.describe();
        match expecting {
            Some(expected) => ParseError::at(
                token,
                format!("syntax error: unexpected {found}, expecting {expected}"),
            ),
            None => ParseError::at(token, format!("syntax error: unexpected {found}")),
        }
    }

    fn expect(&mut self, kind: TokenKind, expecting: &str) -> Result<Token, ParseError> {
        let token = self.next();
        if token.kind == kind {
            Ok(token)
        } else {
            Err(self.unexpected(&token, Some(expecting)))
        }
    }

    fn expect_string(&mut self) -> Result<(String, Token), ParseError> {
        let token = self.next();
        match &token.kind {
            TokenKind::Str(value) => Ok((value.clone(), token.clone())),
            _ => Err(self.unexpected(&token, Some("STRING"))),
        }
    }

    fn expect_ident(&mut self) -> Result<String, ParseError> {
        let token = self.next();
        match token.kind {
            TokenKind::Ident(word) => Ok(word),
            _ => Err(self.unexpected(&token, Some("IDENTIFIER"))),
        }
    }

    /// Guards recursion; every recursive production enters and leaves through here.
    fn nested<T>(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(ParseError::at(
                self.peek(),
                format!("query is nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        self.depth += 1;
        let result = parse(self);
        self.depth -= 1;
        result
    }

    /// A whole expression, binary operations included; `expecting` names what may start it.
    fn expr(&mut self, expecting: &str) -> Result<Parsed, ParseError> {
        self.nested(|p| p.binary(0, expecting))
    }

    /// Precedence climbing: an operand, then every operator binding at least as tightly as
    /// `min_precedence` with its right side. Left-associative chains are built in the loop
    /// (their height is checked as they grow); a right side recurses, through `nested`.
    fn binary(&mut self, min_precedence: u8, expecting: &str) -> Result<Parsed, ParseError> {
        let mut left = self.operand(expecting)?;
        while let Some(op) = binary_op(&self.peek().kind) {
            if op.precedence() < min_precedence {
                break;
            }
            let op_token = self.next();
            let (return_bool, matching) = self.binary_modifiers()?;
            let next_min = if op.is_right_associative() {
                op.precedence()
            } else {
                op.precedence() + 1
            };
            let right = self.nested(|p| p.binary(next_min, OPERAND))?;
            left = combine(left, op, &op_token, return_bool, matching, right)?;
        }
        Ok(left)
    }

    fn operand(&mut self, expecting: &str) -> Result<Parsed, ParseError> {
        let start = self.peek().clone();
        let (expr, height) = match &start.kind {
            TokenKind::LBrace => (Expr::Log(self.log_expr()?), 1),
            TokenKind::LParen => {
                self.next();
                let inner = self.expr("{ or (")?;
                self.expect(TokenKind::RParen, ")")?;
                (inner.expr, inner.height)
            }
            TokenKind::Number(value) => {
                self.next();
                (Expr::Metric(MetricExpr::Literal(*value)), 1)
            }
            // Loki's grammar signs numbers only: `-rate(…)` and `-(1)` are errors.
            TokenKind::Arithmetic(sign @ ('+' | '-')) => {
                self.next();
                let token = self.next();
                let TokenKind::Number(value) = token.kind else {
                    return Err(self.unexpected(&token, Some("NUMBER")));
                };
                let value = if *sign == '-' { -value } else { value };
                (Expr::Metric(MetricExpr::Literal(value)), 1)
            }
            TokenKind::Ident(_) => {
                let (metric, height) = self.metric_call()?;
                (Expr::Metric(metric), height)
            }
            _ => return Err(self.unexpected(&start, Some(expecting))),
        };
        Ok(Parsed {
            expr,
            height,
            line: start.line,
            column: start.column,
        })
    }

    /// What may follow a binary operator before its right side: `bool`, then `on (…)` or
    /// `ignoring (…)`, then `group_left` or `group_right` with an optional label list (a `(`
    /// right after them always opens that list, as in Loki's and Prometheus' grammars).
    fn binary_modifiers(&mut self) -> Result<(bool, VectorMatching), ParseError> {
        let return_bool = is_word(&self.peek().kind, "bool");
        if return_bool {
            self.next();
        }
        let mut matching = VectorMatching::default();
        let on = match &self.peek().kind {
            TokenKind::Ident(w) if w == "on" => true,
            TokenKind::Ident(w) if w == "ignoring" => false,
            _ => return Ok((return_bool, matching)),
        };
        self.next();
        matching.on = on;
        matching.labels = self.label_list()?;
        matching.card = match &self.peek().kind {
            TokenKind::Ident(w) if w == "group_left" => Cardinality::ManyToOne,
            TokenKind::Ident(w) if w == "group_right" => Cardinality::OneToMany,
            _ => return Ok((return_bool, matching)),
        };
        self.next();
        if self.peek().kind == TokenKind::LParen {
            matching.include = self.label_list()?;
        }
        Ok((return_bool, matching))
    }

    /// The argument of an aggregation: an expression that is neither a log query nor a
    /// number (Loki parses `sum(1)` but cannot evaluate it).
    fn aggregated_expr(&mut self, name: &str) -> Result<(MetricExpr, usize), ParseError> {
        const LOG: &str = "syntax error: unexpected {, expecting a metric expression such as \
                           rate(…) (log queries cannot be aggregated directly)";
        if self.peek().kind == TokenKind::LBrace {
            return Err(ParseError::at(self.peek(), LOG));
        }
        let parsed = self.expr("a metric expression")?;
        match parsed.expr {
            Expr::Log(_) => Err(parsed.error(LOG)),
            Expr::Metric(MetricExpr::Literal(_)) => Err(parsed.error(format!(
                "{name} cannot aggregate a number; it needs a metric expression such as rate(…)"
            ))),
            Expr::Metric(metric) => Ok((metric, parsed.height)),
        }
    }

    /// The next token, with a `+` or `-` right before a number or a duration folded into it
    /// (the sign's position is the token's).
    fn signed_token(&mut self) -> Token {
        let token = self.next();
        let negative = match token.kind {
            TokenKind::Arithmetic('-') => true,
            TokenKind::Arithmetic('+') => false,
            _ => return token,
        };
        let kind = match self.peek().kind {
            TokenKind::Number(n) => TokenKind::Number(if negative { -n } else { n }),
            TokenKind::Duration(ns) => TokenKind::Duration(if negative { -ns } else { ns }),
            _ => return token,
        };
        self.next();
        Token { kind, ..token }
    }

    fn metric_call(&mut self) -> Result<(MetricExpr, usize), ParseError> {
        let token = self.next();
        let TokenKind::Ident(name) = &token.kind else {
            return Err(self.unexpected(&token, Some("IDENTIFIER")));
        };
        let range_op = match name.as_str() {
            "count_over_time" => Some(RangeOp::CountOverTime),
            "rate" => Some(RangeOp::Rate),
            "bytes_over_time" => Some(RangeOp::BytesOverTime),
            "bytes_rate" => Some(RangeOp::BytesRate),
            _ => None,
        };
        if let Some(op) = range_op {
            self.expect(TokenKind::LParen, "(")?;
            let agg = self.log_range(op)?;
            self.expect(TokenKind::RParen, ")")?;
            return Ok((MetricExpr::Range(agg), 1));
        }
        let vector_op = match name.as_str() {
            "sum" => Some(VectorOp::Sum),
            "avg" => Some(VectorOp::Avg),
            "min" => Some(VectorOp::Min),
            "max" => Some(VectorOp::Max),
            "count" => Some(VectorOp::Count),
            "topk" => Some(VectorOp::Topk(0)),
            "bottomk" => Some(VectorOp::Bottomk(0)),
            _ => None,
        };
        if let Some(op) = vector_op {
            let (agg, height) = self.vector_aggregation(name, op)?;
            check_height(height, &token)?;
            return Ok((agg, height));
        }
        if UNSUPPORTED_FUNCTIONS.contains(&name.as_str()) {
            return Err(ParseError::at(&token, format!("{name} is not supported")));
        }
        if self.peek().kind == TokenKind::LParen && !crate::lexer::is_keyword(name) {
            return Err(ParseError::at(&token, format!("unknown function {name}")));
        }
        Err(self.unexpected(&token, None))
    }

    fn vector_aggregation(
        &mut self,
        name: &str,
        op: VectorOp,
    ) -> Result<(MetricExpr, usize), ParseError> {
        let mut grouping = self.grouping()?;
        self.expect(TokenKind::LParen, "(")?;
        let op = match op {
            VectorOp::Topk(_) | VectorOp::Bottomk(_) => {
                let k = self.k_parameter(name)?;
                self.expect(TokenKind::Comma, ",")?;
                if matches!(op, VectorOp::Topk(_)) {
                    VectorOp::Topk(k)
                } else {
                    VectorOp::Bottomk(k)
                }
            }
            other => other,
        };
        let (inner, height) = self.aggregated_expr(name)?;
        self.expect(TokenKind::RParen, ")")?;
        let after = self.peek().clone();
        if let Some(trailing) = self.grouping()? {
            if grouping.is_some() {
                return Err(ParseError::at(
                    &after,
                    "syntax error: grouping given both before and after the aggregation",
                ));
            }
            grouping = Some(trailing);
        }
        let agg = MetricExpr::Vector(VectorAggregation {
            op,
            grouping,
            inner: Box::new(inner),
        });
        Ok((agg, height + 1))
    }

    fn k_parameter(&mut self, name: &str) -> Result<usize, ParseError> {
        let token = self.signed_token();
        match token.kind {
            TokenKind::Number(k) if k >= 1.0 && k.fract() == 0.0 && k <= u32::MAX as f64 => {
                Ok(k as usize)
            }
            TokenKind::Number(k) => Err(ParseError::at(
                &token,
                format!("invalid parameter {k} for {name}: k must be a positive integer"),
            )),
            _ => Err(ParseError::at(
                &token,
                format!(
                    "syntax error: unexpected {}, expecting NUMBER (parameter required for operation {name})",
                    token.kind.describe()
                ),
            )),
        }
    }

    /// `by (…)` / `without (…)`, or nothing.
    fn grouping(&mut self) -> Result<Option<Grouping>, ParseError> {
        let without = match &self.peek().kind {
            TokenKind::Ident(w) if w == "by" => false,
            TokenKind::Ident(w) if w == "without" => true,
            _ => return Ok(None),
        };
        self.next();
        let labels = self.label_list()?;
        Ok(Some(Grouping { without, labels }))
    }

    /// `(a, b)` or `()`, as after `by`, `without`, `on`, `ignoring` and `group_left`.
    fn label_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect(TokenKind::LParen, "(")?;
        let mut labels = Vec::new();
        if self.peek().kind == TokenKind::RParen {
            self.next();
            return Ok(labels);
        }
        loop {
            labels.push(self.expect_ident()?);
            let token = self.next();
            match token.kind {
                TokenKind::Comma => continue,
                TokenKind::RParen => return Ok(labels),
                _ => return Err(self.unexpected(&token, Some(", or )"))),
            }
        }
    }

    /// The argument of a range function: a log expression with exactly one `[range]`, either
    /// right after the selector or after the pipeline, then an optional `offset`.
    fn log_range(&mut self, op: RangeOp) -> Result<RangeAggregation, ParseError> {
        let (log, range_ns) = if self.peek().kind == TokenKind::LParen {
            let log = self.nested(|p| {
                p.next();
                let log = p.log_expr()?;
                p.expect(TokenKind::RParen, ")")?;
                Ok(log)
            })?;
            (log, self.range()?)
        } else {
            let selector = self.peek().clone();
            let matchers = self.selector()?;
            let early_range = match self.peek().kind {
                TokenKind::Range(ns) => {
                    self.next();
                    Some(ns)
                }
                _ => None,
            };
            let stages = self.stages()?;
            let range_ns = match early_range {
                Some(ns) => ns,
                None => self.range()?,
            };
            let log = LogExpr { matchers, stages };
            Self::check_selector(&selector, &log.matchers)?;
            (log, range_ns)
        };
        let offset_ns = if is_word(&self.peek().kind, "offset") {
            self.next();
            let token = self.signed_token();
            match token.kind {
                TokenKind::Duration(ns) => ns,
                _ => return Err(self.unexpected(&token, Some("DURATION"))),
            }
        } else {
            0
        };
        Ok(RangeAggregation {
            op,
            log,
            range_ns,
            offset_ns,
        })
    }

    fn range(&mut self) -> Result<i64, ParseError> {
        let token = self.next();
        match token.kind {
            TokenKind::Range(ns) => Ok(ns),
            _ => Err(self.unexpected(&token, Some("RANGE (e.g. [5m])"))),
        }
    }

    fn log_expr(&mut self) -> Result<LogExpr, ParseError> {
        self.nested(|p| {
            if p.peek().kind == TokenKind::LParen {
                p.next();
                let log = p.log_expr()?;
                p.expect(TokenKind::RParen, ")")?;
                return Ok(log);
            }
            let selector = p.peek().clone();
            let matchers = p.selector()?;
            Self::check_selector(&selector, &matchers)?;
            let stages = p.stages()?;
            Ok(LogExpr { matchers, stages })
        })
    }

    fn check_selector(selector: &Token, matchers: &[LabelMatcher]) -> Result<(), ParseError> {
        if matchers.iter().all(|m| m.matches("")) {
            return Err(ParseError::at(selector, EMPTY_SELECTOR));
        }
        Ok(())
    }

    fn selector(&mut self) -> Result<Vec<LabelMatcher>, ParseError> {
        self.expect(TokenKind::LBrace, "{")?;
        let mut matchers = Vec::new();
        loop {
            if self.peek().kind == TokenKind::RBrace {
                self.next();
                return Ok(matchers);
            }
            let name = self.expect_ident()?;
            let op_token = self.next();
            let op = match op_token.kind {
                TokenKind::Eq => MatchOp::Equal,
                TokenKind::Neq => MatchOp::NotEqual,
                TokenKind::Re => MatchOp::Regex,
                TokenKind::Nre => MatchOp::NotRegex,
                _ => return Err(self.unexpected(&op_token, Some("=, !=, =~ or !~"))),
            };
            let (value, value_token) = self.expect_string()?;
            if matches!(op, MatchOp::Regex | MatchOp::NotRegex) {
                self.charge_regex(&value_token, &value)?;
            }
            let matcher = LabelMatcher::new(name, op, value.as_str())
                .map_err(|e| ParseError::at(&value_token, regex_message(&value, &e)))?;
            matchers.push(matcher);
            let token = self.next();
            match token.kind {
                TokenKind::Comma => continue,
                TokenKind::RBrace => return Ok(matchers),
                _ => return Err(self.unexpected(&token, Some(", or }"))),
            }
        }
    }

    fn stages(&mut self) -> Result<Vec<Stage>, ParseError> {
        let mut stages = Vec::new();
        loop {
            let op = match self.peek().kind {
                TokenKind::PipeExact => LineFilterOp::Contains,
                TokenKind::Neq => LineFilterOp::NotContains,
                TokenKind::PipeMatch => LineFilterOp::Regex,
                TokenKind::Nre => LineFilterOp::NotRegex,
                TokenKind::Pipe => {
                    self.next();
                    stages.push(self.pipe_stage()?);
                    continue;
                }
                _ => return Ok(stages),
            };
            self.next();
            let (value, token) = self.expect_string()?;
            if matches!(op, LineFilterOp::Regex | LineFilterOp::NotRegex) {
                self.charge_regex(&token, &value)?;
            }
            let filter = LineFilter::new(op, value.as_str())
                .map_err(|e| ParseError::at(&token, regex_message(&value, &e)))?;
            stages.push(Stage::LineFilter(filter));
            if is_word(&self.peek().kind, "or") {
                return Err(ParseError::at(
                    self.peek(),
                    "line filters combined with or are not supported; use a regex such as |~ \"a|b\"",
                ));
            }
        }
    }

    /// The stage after a `|`.
    fn pipe_stage(&mut self) -> Result<Stage, ParseError> {
        let token = self.peek().clone();
        let word = match &token.kind {
            TokenKind::Ident(word) => word.as_str(),
            TokenKind::LParen => return Ok(Stage::LabelFilter(self.label_filter()?)),
            _ => {
                return Err(
                    self.unexpected(&token, Some("json, logfmt, line_format or a label filter"))
                );
            }
        };
        match word {
            "json" | "logfmt" => {
                self.next();
                // `| json field="expr"` and `| logfmt --strict` take parameters we lack.
                let next = self.peek();
                let has_params = match &next.kind {
                    TokenKind::Ident(w) => !matches!(w.as_str(), "offset" | "by" | "without"),
                    TokenKind::Arithmetic('-') => true,
                    _ => false,
                };
                if has_params {
                    return Err(ParseError::at(
                        next,
                        format!("{word} with parameters is not supported"),
                    ));
                }
                Ok(if word == "json" {
                    Stage::Json
                } else {
                    Stage::Logfmt
                })
            }
            "line_format" => {
                self.next();
                let (template, token) = self.expect_string()?;
                LineTemplate::parse(&template)
                    .map(Stage::LineFormat)
                    .map_err(|message| ParseError::at(&token, message))
            }
            word if UNSUPPORTED_STAGES.contains(&word) => {
                Err(ParseError::at(&token, format!("{word} is not supported")))
            }
            _ => Ok(Stage::LabelFilter(self.label_filter()?)),
        }
    }

    fn label_filter(&mut self) -> Result<LabelFilter, ParseError> {
        self.nested(|p| {
            let mut left = p.label_filter_and()?;
            while is_word(&p.peek().kind, "or") {
                p.next();
                let right = p.label_filter_and()?;
                left = LabelFilter::Or(Box::new(left), Box::new(right));
            }
            Ok(left)
        })
    }

    /// `and`, `,` and plain juxtaposition all mean "and", as in Loki.
    fn label_filter_and(&mut self) -> Result<LabelFilter, ParseError> {
        let mut left = self.label_filter_primary()?;
        loop {
            let juxtaposed = match &self.peek().kind {
                TokenKind::Comma => {
                    self.next();
                    true
                }
                TokenKind::Ident(w) if w == "and" => {
                    self.next();
                    true
                }
                // A following `name op` starts another filter (but `offset 1h` ends the range).
                TokenKind::Ident(w) => {
                    !matches!(w.as_str(), "or" | "offset" | "unless")
                        && matches!(
                            self.peek_kind_at(1),
                            TokenKind::Eq
                                | TokenKind::EqEq
                                | TokenKind::Neq
                                | TokenKind::Re
                                | TokenKind::Nre
                                | TokenKind::Gt
                                | TokenKind::Ge
                                | TokenKind::Lt
                                | TokenKind::Le
                        )
                }
                _ => false,
            };
            if !juxtaposed {
                return Ok(left);
            }
            let right = self.label_filter_primary()?;
            left = LabelFilter::And(Box::new(left), Box::new(right));
        }
    }

    fn label_filter_primary(&mut self) -> Result<LabelFilter, ParseError> {
        if self.peek().kind == TokenKind::LParen {
            self.next();
            let inner = self.label_filter()?;
            self.expect(TokenKind::RParen, ")")?;
            return Ok(inner);
        }
        let name = self.expect_ident()?;
        let op_token = self.next();
        let value_token = self.signed_token();
        let numeric_op = match op_token.kind {
            TokenKind::Eq | TokenKind::EqEq => Some(NumericOp::Eq),
            TokenKind::Neq => Some(NumericOp::Neq),
            TokenKind::Gt => Some(NumericOp::Gt),
            TokenKind::Ge => Some(NumericOp::Ge),
            TokenKind::Lt => Some(NumericOp::Lt),
            TokenKind::Le => Some(NumericOp::Le),
            TokenKind::Re | TokenKind::Nre => None,
            _ => {
                return Err(self.unexpected(&op_token, Some("=, !=, =~, !~, >, >=, <, <= or ==")));
            }
        };
        match (&value_token.kind, numeric_op) {
            (TokenKind::Str(value), _) => {
                let op = match op_token.kind {
                    TokenKind::Eq | TokenKind::EqEq => MatchOp::Equal,
                    TokenKind::Neq => MatchOp::NotEqual,
                    TokenKind::Re => MatchOp::Regex,
                    TokenKind::Nre => MatchOp::NotRegex,
                    _ => return Err(self.unexpected(&value_token, Some("NUMBER or DURATION"))),
                };
                if matches!(op, MatchOp::Regex | MatchOp::NotRegex) {
                    self.charge_regex(&value_token, value)?;
                }
                LabelMatcher::new(name, op, value.as_str())
                    .map(LabelFilter::String)
                    .map_err(|e| ParseError::at(&value_token, regex_message(value, &e)))
            }
            (TokenKind::Number(value), Some(op)) => Ok(LabelFilter::Number {
                name,
                op,
                value: *value,
            }),
            (TokenKind::Duration(ns), Some(op)) => Ok(LabelFilter::Duration {
                name,
                op,
                seconds: *ns as f64 / 1e9,
            }),
            (_, Some(_)) => Err(self.unexpected(&value_token, Some("STRING, NUMBER or DURATION"))),
            (_, None) => Err(self.unexpected(&value_token, Some("STRING"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(query: &str) -> LogExpr {
        match parse(query) {
            Ok(Expr::Log(log)) => log,
            other => panic!("{query}: {other:?}"),
        }
    }

    fn metric(query: &str) -> MetricExpr {
        match parse(query) {
            Ok(Expr::Metric(metric)) => metric,
            other => panic!("{query}: {other:?}"),
        }
    }

    fn error(query: &str) -> ParseError {
        match parse(query) {
            Err(err) => err,
            Ok(expr) => panic!("{query} parsed: {expr:?}"),
        }
    }

    fn matcher(name: &str, op: MatchOp, value: &str) -> LabelMatcher {
        LabelMatcher::new(name, op, value).unwrap()
    }

    fn range(agg: &MetricExpr) -> &RangeAggregation {
        match agg {
            MetricExpr::Range(r) => r,
            other => panic!("not a range aggregation: {other:?}"),
        }
    }

    fn vector(agg: &MetricExpr) -> &VectorAggregation {
        match agg {
            MetricExpr::Vector(v) => v,
            other => panic!("not a vector aggregation: {other:?}"),
        }
    }

    #[test]
    fn parses_selectors_with_every_operator() {
        let l = log(r#"{app="api", env!="dev", pod=~"api-.*", ns!~`kube-.*`,}"#);
        assert_eq!(
            l.matchers,
            vec![
                matcher("app", MatchOp::Equal, "api"),
                matcher("env", MatchOp::NotEqual, "dev"),
                matcher("pod", MatchOp::Regex, "api-.*"),
                matcher("ns", MatchOp::NotRegex, "kube-.*"),
            ]
        );
        assert!(l.stages.is_empty());
        assert_eq!(
            log(r#"( {a="b"} )"#).matchers,
            vec![matcher("a", MatchOp::Equal, "b")]
        );
    }

    #[test]
    fn parses_line_filters_parsers_and_line_format() {
        let l = log(
            "{a=\"b\"} |= \"x\" != `y` |~ \"z+\" !~ \"w\" | json | logfmt | line_format \"{{.a}}\"",
        );
        let ops: Vec<_> = l
            .stages
            .iter()
            .map(|s| match s {
                Stage::LineFilter(f) => f.op.as_str().to_string(),
                Stage::Json => "json".into(),
                Stage::Logfmt => "logfmt".into(),
                Stage::LabelFilter(_) => "label".into(),
                Stage::LineFormat(t) => format!("line_format {}", t.source),
            })
            .collect();
        assert_eq!(
            ops,
            [
                "|=",
                "!=",
                "|~",
                "!~",
                "json",
                "logfmt",
                "line_format {{.a}}"
            ]
        );
        assert_eq!(l.pushdown_line_filters().len(), 4);
    }

    #[test]
    fn parses_label_filters_with_precedence_and_types() {
        let l = log(r#"{a="b"} | x="1" or y>=2 and z < 250ms, (w=~"v.*" or u == 3) q!="r""#);
        let Stage::LabelFilter(filter) = &l.stages[0] else {
            panic!("{l:?}")
        };
        let s = |name, op, value| Box::new(LabelFilter::String(matcher(name, op, value)));
        let expected = LabelFilter::Or(
            s("x", MatchOp::Equal, "1"),
            Box::new(LabelFilter::And(
                Box::new(LabelFilter::And(
                    Box::new(LabelFilter::And(
                        Box::new(LabelFilter::Number {
                            name: "y".into(),
                            op: NumericOp::Ge,
                            value: 2.0,
                        }),
                        Box::new(LabelFilter::Duration {
                            name: "z".into(),
                            op: NumericOp::Lt,
                            seconds: 0.25,
                        }),
                    )),
                    Box::new(LabelFilter::Or(
                        s("w", MatchOp::Regex, "v.*"),
                        Box::new(LabelFilter::Number {
                            name: "u".into(),
                            op: NumericOp::Eq,
                            value: 3.0,
                        }),
                    )),
                )),
                s("q", MatchOp::NotEqual, "r"),
            )),
        );
        assert_eq!(filter, &expected);
        // A label filter after `|` is not a line filter and is not pushed down.
        assert!(
            log(r#"{a="b"} | x="1" |= "y""#)
                .pushdown_line_filters()
                .is_empty()
        );
    }

    #[test]
    fn parses_range_aggregations_with_range_and_offset_anywhere_loki_allows() {
        let r = metric(r#"count_over_time({a="b"} |= "x" [5m])"#);
        let r = range(&r);
        assert_eq!(
            (r.op, r.range_ns, r.offset_ns),
            (RangeOp::CountOverTime, 300_000_000_000, 0)
        );
        assert_eq!(r.log.stages.len(), 1);
        let early = metric(r#"rate({a="b"}[1m] | json offset 1h)"#);
        let early = range(&early);
        assert_eq!((early.op, early.range_ns), (RangeOp::Rate, 60_000_000_000));
        assert_eq!(early.offset_ns, 3_600_000_000_000);
        assert_eq!(early.log.stages, vec![Stage::Json]);
        let parenthesized = metric(r#"bytes_rate(({a="b"} |= "x")[30s])"#);
        assert_eq!(range(&parenthesized).op, RangeOp::BytesRate);
        assert_eq!(
            range(&metric(r#"bytes_over_time({a="b"}[1h])"#)).op,
            RangeOp::BytesOverTime
        );
    }

    #[test]
    fn parses_vector_aggregations_with_grouping_before_or_after() {
        let m = metric(r#"topk(3, sum by (service_name) (rate({a="b"}[1m])))"#);
        let top = vector(&m);
        assert_eq!(top.op, VectorOp::Topk(3));
        assert_eq!(top.grouping, None);
        let sum = vector(&top.inner);
        assert_eq!(sum.op, VectorOp::Sum);
        assert_eq!(
            sum.grouping,
            Some(Grouping {
                without: false,
                labels: vec!["service_name".into()]
            })
        );
        let after = metric(r#"avg(count_over_time({a="b"}[1m])) without (pod, node)"#);
        assert_eq!(
            vector(&after).grouping,
            Some(Grouping {
                without: true,
                labels: vec!["pod".into(), "node".into()]
            })
        );
        for (query, op) in [
            (r#"min(rate({a="b"}[1m]))"#, VectorOp::Min),
            (r#"max by () (rate({a="b"}[1m]))"#, VectorOp::Max),
            (r#"count((rate({a="b"}[1m])))"#, VectorOp::Count),
            (
                r#"bottomk(2, rate({a="b"}[1m])) by (x)"#,
                VectorOp::Bottomk(2),
            ),
        ] {
            assert_eq!(vector(&metric(query)).op, op, "{query}");
        }
    }

    #[test]
    fn error_positions_and_messages_follow_loki() {
        let e = error(r#"count_over_time(foo[5m])"#);
        assert_eq!((e.line, e.column), (1, 17));
        assert_eq!(
            e.message,
            "syntax error: unexpected IDENTIFIER, expecting {"
        );
        assert_eq!(
            e.to_string(),
            "parse error at line 1, col 17: syntax error: unexpected IDENTIFIER, expecting {"
        );
        let e = error("{a=\"b\"}\n  | json foo=\"bar\"");
        assert_eq!((e.line, e.column), (2, 10));
        assert_eq!(e.message, "json with parameters is not supported");
        let e = error(r#"{a="b"} |= "x" xyz"#);
        assert_eq!(
            (e.column, e.message.as_str()),
            (16, "syntax error: unexpected IDENTIFIER")
        );
        let e = error(r#"{a="b""#);
        assert_eq!(
            (e.column, e.message.as_str()),
            (7, "syntax error: unexpected $end, expecting , or }")
        );
    }

    #[test]
    fn rejects_empty_compatible_selectors() {
        for query in [
            r#"{}"#,
            r#"{a=~".*"}"#,
            r#"{a!="x"}"#,
            r#"rate({a=""}[1m])"#,
        ] {
            let e = error(query);
            assert!(
                e.message.starts_with("queries require at least one regexp"),
                "{query}: {e}"
            );
        }
        let e = error(r#"sum(rate({a=~".*"}[1m]))"#);
        assert_eq!(e.column, 10);
    }

    #[test]
    fn regexes_share_one_case_folding_budget_per_query() {
        // Found by fuzzing PromQL: `(?i)[a[^b]]` walks all of Unicode to compile (~8 ms).
        let q = format!(r#"{{a="b"}} |~ "(?i){}""#, "[a[^b]]".repeat(100));
        let e = parse(&q).unwrap_err();
        assert!(
            e.message
                .contains("case-insensitive character classes too large"),
            "{e}"
        );
        assert_eq!(e.column, 12);
        let spread = r"{a=~`(?i)[\s\S]`} |~ `(?i)[\s\S]` | b=~`(?i)[\s\S]`";
        assert!(parse(spread).is_err());
        assert!(parse(r"{a=~`(?i)[\s\S]`} |~ `(?i)[\s\S]` | b=~`(?i)err.*`").is_ok());
    }

    #[test]
    fn reports_invalid_regexes_at_the_value() {
        let e = error(r#"{a=~"(x"}"#);
        assert_eq!((e.line, e.column), (1, 5));
        assert!(e.message.starts_with("error parsing regexp: "), "{e}");
        assert!(e.message.ends_with("`(x`"), "{e}");
        let e = error(r#"{a="b"} |~ "[z""#);
        assert_eq!(e.column, 12);
        let e = error(r#"{a="b"} | x=~"*""#);
        assert_eq!(e.column, 14);
    }

    #[test]
    fn reports_missing_ranges_and_unknown_or_unsupported_constructs() {
        let cases: &[(&str, usize, &str)] = &[
            (
                r#"rate({a="b"})"#,
                13,
                "syntax error: unexpected ), expecting RANGE (e.g. [5m])",
            ),
            (r#"foo({a="b"}[1m])"#, 1, "unknown function foo"),
            (
                r#"sum_over_time({a="b"} | unwrap x [1m])"#,
                1,
                "sum_over_time is not supported",
            ),
            (r#"{a="b"} | unwrap x"#, 11, "unwrap is not supported"),
            (
                r#"{a="b"} | label_format x="y""#,
                11,
                "label_format is not supported",
            ),
            (r#"{a="b"} | pattern "<x>""#, 11, "pattern is not supported"),
            (
                r#"{a="b"} |= "x" or "y""#,
                16,
                "line filters combined with or are not supported; use a regex such as |~ \"a|b\"",
            ),
            (
                r#"sum({a="b"})"#,
                5,
                "syntax error: unexpected {, expecting a metric expression such as rate(…) (log queries cannot be aggregated directly)",
            ),
            (
                r#"topk(rate({a="b"}[1m]))"#,
                6,
                "syntax error: unexpected rate, expecting NUMBER (parameter required for operation topk)",
            ),
            (
                r#"topk(0, rate({a="b"}[1m]))"#,
                6,
                "invalid parameter 0 for topk: k must be a positive integer",
            ),
            (
                r#"sum by (a) (rate({a="b"}[1m])) by (b)"#,
                32,
                "syntax error: grouping given both before and after the aggregation",
            ),
            (
                r#"rate({a="b"}[5m:1m])"#,
                13,
                "subqueries are not supported",
            ),
            (
                r#"{a="b"} | size > 10KB"#,
                18,
                "byte size literals like \"10KB\" are not supported",
            ),
            (
                r#"{a="b"} | x > "y""#,
                15,
                "syntax error: unexpected STRING, expecting NUMBER or DURATION",
            ),
            (
                r#"{a="b"} | x =~ 5"#,
                16,
                "syntax error: unexpected NUMBER, expecting STRING",
            ),
            (
                r#"{a="b"} | line_format "{{ .a | upper }}""#,
                23,
                "line_format action {{ .a | upper }} is not supported; only {{.label}} substitution is",
            ),
            (
                r#"{a="b"} | "x""#,
                11,
                "syntax error: unexpected STRING, expecting json, logfmt, line_format or a label filter",
            ),
            (r#"{a="b" @ "#, 8, "syntax error: unexpected character '@'"),
            (r#"{a="b"} |= "x"#, 12, "literal not terminated"),
            ("", 1, "syntax error: unexpected $end, expecting { or ("),
        ];
        for (query, column, message) in cases {
            let e = error(query);
            assert_eq!(
                (e.column, e.message.as_str()),
                (*column, *message),
                "{query}"
            );
        }
    }

    #[test]
    fn bounds_nesting_depth() {
        let deep = format!("{}{{a=\"b\"}}{}", "(".repeat(500), ")".repeat(500));
        assert!(error(&deep).message.contains("nested more than"));
        let ok = format!("{}{{a=\"b\"}}{}", "(".repeat(10), ")".repeat(10));
        assert!(parse(&ok).is_ok());
    }

    /// `a + b + …` is built in a loop, not by recursion, so the tree's height is bounded on
    /// its own; `a ^ b ^ …` recurses, and hits the parser's bound.
    #[test]
    fn bounds_the_height_of_binary_chains() {
        let chain = |op: &str, n: usize| vec![R; n + 1].join(op);
        // n operators make a tree n + 1 high.
        assert!(matches!(
            parse(&chain(" + ", MAX_DEPTH - 1)),
            Ok(Expr::Metric(MetricExpr::Binary(_)))
        ));
        let e = error(&chain(" + ", MAX_DEPTH));
        assert_eq!(
            e.message,
            format!("query is nested more than {MAX_DEPTH} levels deep")
        );
        // At the operator that made it too high.
        assert_eq!(e.column, (R.len() + 3) * MAX_DEPTH - 1);
        for op in [" + ", " / ", " and ", " > bool ", " ^ "] {
            let e = error(&chain(op, 5000));
            assert!(e.message.contains("nested more than"), "{op}: {e}");
        }
        // Aggregations count too: a chain inside 10 sums may be 10 lower.
        let wrapped =
            |n: usize| format!("{}{}{}", "sum(".repeat(10), chain("-", n), ")".repeat(10));
        assert!(parse(&wrapped(MAX_DEPTH - 11)).is_ok());
        assert!(
            error(&wrapped(MAX_DEPTH - 10))
                .message
                .contains("nested more than")
        );
        // Numbers fold as they are read, whatever the length.
        let sum = vec!["1"; 5000].join(" + ");
        assert_eq!(parse(&sum), Ok(Expr::Metric(MetricExpr::Literal(5000.0))));
    }

    /// A range aggregation used as an operand in the binary operator tests: `$x` in a query
    /// stands for `rate({x="x"}[1m])`.
    const R: &str = r#"rate({x="r"}[1m])"#;

    fn expand(query: &str) -> String {
        let mut out = String::new();
        let mut chars = query.chars();
        while let Some(c) = chars.next() {
            match c {
                '$' => {
                    let name = chars.next().expect("a name after $");
                    out.push_str(&format!(r#"rate({{x="{name}"}}[1m])"#));
                }
                c => out.push(c),
            }
        }
        out
    }

    /// The tree as text, fully parenthesized, with `$x` for `rate({x="x"}[1m])`.
    fn shape(expr: &MetricExpr) -> String {
        match expr {
            MetricExpr::Range(r) => format!("${}", r.log.matchers[0].value),
            MetricExpr::Vector(v) => format!("{:?}({})", v.op, shape(&v.inner)).to_lowercase(),
            MetricExpr::Literal(value) => value.to_string(),
            MetricExpr::Binary(b) => format!(
                "({} {}{} {})",
                shape(&b.left),
                b.op.as_str(),
                if b.return_bool { " bool" } else { "" },
                shape(&b.right)
            ),
        }
    }

    fn parsed_shape(query: &str) -> String {
        shape(&metric(&expand(query)))
    }

    fn binary(query: &str) -> BinaryExpr {
        match metric(&expand(query)) {
            MetricExpr::Binary(b) => b,
            other => panic!("{query}: not a binary operation: {other:?}"),
        }
    }

    #[test]
    fn binary_operators_bind_as_in_loki_from_or_loosest_to_power_tightest() {
        for (query, expected) in [
            (
                "$a + $b * $c ^ $d > $e and $f or $g unless $h",
                "(((($a + ($b * ($c ^ $d))) > $e) and $f) or ($g unless $h))",
            ),
            ("$a or $b and $c", "($a or ($b and $c))"),
            ("$a == $b + $c % $d", "($a == ($b + ($c % $d)))"),
            ("$a * $b - $c / $d", "(($a * $b) - ($c / $d))"),
            ("$a unless $b >= bool $c", "($a unless ($b >= bool $c))"),
        ] {
            assert_eq!(parsed_shape(query), expected, "{query}");
        }
    }

    #[test]
    fn operators_of_one_class_associate_to_the_left_except_power() {
        for (query, expected) in [
            ("$a - $b - $c", "(($a - $b) - $c)"),
            ("$a / $b * $c % $d", "((($a / $b) * $c) % $d)"),
            ("$a == $b != $c < $d", "((($a == $b) != $c) < $d)"),
            ("$a and $b unless $c", "(($a and $b) unless $c)"),
            ("$a or $b or $c", "(($a or $b) or $c)"),
            ("$a ^ $b ^ $c", "($a ^ ($b ^ $c))"),
            ("$a ^ $b * $c ^ $d ^ $e", "(($a ^ $b) * ($c ^ ($d ^ $e)))"),
        ] {
            assert_eq!(parsed_shape(query), expected, "{query}");
        }
    }

    #[test]
    fn parentheses_group_operands_and_aggregations_take_expressions() {
        for (query, expected) in [
            ("($a + $b) * $c", "(($a + $b) * $c)"),
            ("$a ^ ($b ^ $c) ^ $d", "($a ^ (($b ^ $c) ^ $d))"),
            ("(($a))", "$a"),
            ("sum($a / 2) by (job) > 1", "(sum(($a / 2)) > 1)"),
            ("topk(3, $a - $b) / 2", "(topk(3)(($a - $b)) / 2)"),
            ("sum by (x) ($a) / ignoring (x) ($b)", "(sum($a) / $b)"),
        ] {
            assert_eq!(parsed_shape(query), expected, "{query}");
        }
        // A grouping after the aggregation's argument stays with the aggregation.
        assert_eq!(
            vector(&binary("sum($a / 2) by (job) > 1").left).grouping,
            Some(Grouping {
                without: false,
                labels: vec!["job".into()]
            })
        );
    }

    #[test]
    fn numbers_are_signed_and_scientific_and_two_numbers_fold_into_one() {
        for (query, expected) in [
            ("1 + 1", 2.0),
            ("2 * -3e2", -600.0),
            ("- 1.5E1 + +.5", -14.5),
            // The sign belongs to the number, as in Loki's grammar: (-2)^2.
            ("-2 ^ 2", 4.0),
            ("2 ^ 3 ^ 2", 512.0),
            ("(1 + 2) * 3", 9.0),
            ("7 % 4 - 7 % -4", 0.0),
            ("-7 % 4", -3.0),
            // Loki folds comparisons to 1 or 0, with or without bool.
            ("1 > 2", 0.0),
            ("1 < bool 2", 1.0),
            ("2 >= 2 == 1", 1.0),
            ("1 - 1 != 0", 0.0),
            ("5", 5.0),
            ("-5", -5.0),
        ] {
            match metric(query) {
                MetricExpr::Literal(value) => assert_eq!(value, expected, "{query}"),
                other => panic!("{query}: {other:?}"),
            }
        }
        // A zero divisor gives NaN, as in Loki.
        for query in ["1 / 0", "0 / 0", "-1 / 0", "1 % 0"] {
            assert!(
                matches!(metric(query), MetricExpr::Literal(v) if v.is_nan()),
                "{query}"
            );
        }
        // `x-1` subtracts: no sign is read into a number after an operand.
        assert_eq!(parsed_shape("$a-1"), "($a - 1)");
        assert_eq!(parsed_shape("$a - -1"), "($a - -1)");
        assert_eq!(parsed_shape("2-$a"), "(2 - $a)");
        assert_eq!(parsed_shape("$a*1e-3"), "($a * 0.001)");
        // A number on one side stays a number; the other side is evaluated per step.
        assert_eq!(parsed_shape("(1 + 1) * $a"), "(2 * $a)");
    }

    #[test]
    fn signs_still_apply_to_label_filter_values_k_and_offsets() {
        let l = log(r#"{a="b"} | x > -1.5 | y >= - 2 | z < -250ms"#);
        let values: Vec<_> = l
            .stages
            .iter()
            .map(|s| match s {
                Stage::LabelFilter(LabelFilter::Number { value, .. }) => *value,
                Stage::LabelFilter(LabelFilter::Duration { seconds, .. }) => *seconds,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(values, [-1.5, -2.0, -0.25]);
        let e = error(r#"topk(-1, rate({a="b"}[1m]))"#);
        assert_eq!(
            (e.column, e.message.as_str()),
            (
                6,
                "invalid parameter -1 for topk: k must be a positive integer"
            )
        );
        let r = metric(r#"rate({a="b"}[1m] offset -1m)"#);
        assert_eq!(range(&r).offset_ns, -60_000_000_000);
    }

    #[test]
    fn modifiers_set_bool_and_vector_matching() {
        let b = binary("$a > bool $b");
        assert_eq!((b.op, b.return_bool), (BinaryOp::Gt, true));
        assert_eq!(b.matching, VectorMatching::default());

        let b = binary("$a / on (job, instance) group_left (pod) $b");
        assert_eq!((b.op, b.return_bool), (BinaryOp::Div, false));
        assert_eq!(
            b.matching,
            VectorMatching {
                on: true,
                labels: vec!["job".into(), "instance".into()],
                card: Cardinality::ManyToOne,
                include: vec!["pod".into()],
            }
        );

        let b = binary("$a <= bool ignoring (pod) group_right $b");
        assert!(b.return_bool);
        assert_eq!(
            b.matching,
            VectorMatching {
                on: false,
                labels: vec!["pod".into()],
                card: Cardinality::OneToMany,
                include: vec![],
            }
        );

        // `on ()` matches everything with everything; `ignoring ()` is the default.
        let b = binary("$a - on () group_left () $b");
        assert!(b.matching.on && b.matching.labels.is_empty() && b.matching.include.is_empty());
        assert_eq!(b.matching.card, Cardinality::ManyToOne);
        assert_eq!(
            binary("$a - ignoring () $b").matching,
            VectorMatching::default()
        );

        // Set operators take on/ignoring; Loki also accepts (and ignores) bool and group_*.
        let b = binary("$a unless on (job) $b");
        assert_eq!((b.op, b.matching.on), (BinaryOp::Unless, true));
        assert!(binary("$a and bool ignoring (x) group_left $b").return_bool);

        // Against a number, matching is accepted and ignored, as in Loki.
        assert_eq!(binary("$a * on (x) 2").matching.labels, ["x"]);
        // A parenthesized right side after group_left needs its label list first.
        assert_eq!(parsed_shape("$a * on (x) group_left () ($b)"), "($a * $b)");
    }

    #[test]
    fn binary_operation_errors_follow_loki_and_carry_positions() {
        let cases: &[(&str, (usize, usize), &str)] = &[
            (
                r#"{a="b"} > 1"#,
                (1, 1),
                "unexpected type for left leg of binary operation (>): a log query; both sides must be metric expressions (such as rate(…)) or numbers",
            ),
            (
                "$a / \n  ({a=\"b\"} |= \"x\")",
                (2, 3),
                "unexpected type for right leg of binary operation (/): a log query; both sides must be metric expressions (such as rate(…)) or numbers",
            ),
            (
                "$a and 1",
                (1, 23),
                "unexpected literal for right leg of logical/set binary operation (and): 1.000000",
            ),
            (
                "-2.5 or $a",
                (1, 1),
                "unexpected literal for left leg of logical/set binary operation (or): -2.500000",
            ),
            (
                "$a unless (1 + 1)",
                (1, 26),
                "unexpected literal for right leg of logical/set binary operation (unless): 2.000000",
            ),
            (
                "$a + -$b",
                (1, 22),
                "syntax error: unexpected rate, expecting NUMBER",
            ),
            (
                "-($a)",
                (1, 2),
                "syntax error: unexpected (, expecting NUMBER",
            ),
            (
                "$a > -5m",
                (1, 22),
                "syntax error: unexpected DURATION, expecting NUMBER",
            ),
            (
                "$a +",
                (1, 20),
                "syntax error: unexpected $end, expecting a metric expression or NUMBER",
            ),
            (
                "$a * * $b",
                (1, 21),
                "syntax error: unexpected *, expecting a metric expression or NUMBER",
            ),
            (
                "$a + on $b",
                (1, 24),
                "syntax error: unexpected rate, expecting (",
            ),
            (
                "$a + on (x y) $b",
                (1, 27),
                "syntax error: unexpected IDENTIFIER, expecting , or )",
            ),
            (
                "$a / group_left $b",
                (1, 21),
                "syntax error: unexpected group_left",
            ),
            (
                "$a + bool on (x) group_left (sum($b))",
                (1, 48),
                "syntax error: unexpected (, expecting , or )",
            ),
            (
                "$a > 5m",
                (1, 21),
                "syntax error: unexpected DURATION, expecting a metric expression or NUMBER",
            ),
            ("$a $b", (1, 19), "syntax error: unexpected rate"),
            (
                "sum(2 * 3)",
                (1, 5),
                "sum cannot aggregate a number; it needs a metric expression such as rate(…)",
            ),
            (
                r#"sum(({a="b"}))"#,
                (1, 5),
                "syntax error: unexpected {, expecting a metric expression such as rate(…) (log queries cannot be aggregated directly)",
            ),
        ];
        for (query, position, message) in cases {
            let e = error(&expand(query));
            assert_eq!(
                ((e.line, e.column), e.message.as_str()),
                (*position, *message),
                "{query}"
            );
        }
    }

    #[test]
    fn the_alerting_rule_of_the_brief_parses_as_loki_reads_it() {
        let query = r#"sum(rate({app="api"} |= "error" [5m])) by (job) / sum(rate({app="api"}[5m])) by (job) > 0.05"#;
        let MetricExpr::Binary(cmp) = metric(query) else {
            panic!("not a comparison")
        };
        assert_eq!((cmp.op, cmp.return_bool), (BinaryOp::Gt, false));
        assert_eq!(*cmp.right, MetricExpr::Literal(0.05));
        let MetricExpr::Binary(ratio) = *cmp.left else {
            panic!("not a ratio")
        };
        assert_eq!(ratio.op, BinaryOp::Div);
        for side in [&ratio.left, &ratio.right] {
            let sum = vector(side);
            assert_eq!(sum.op, VectorOp::Sum);
            assert_eq!(
                sum.grouping.as_ref().map(|g| g.labels.clone()),
                Some(vec!["job".into()])
            );
        }
        assert_eq!(range(&vector(&ratio.left).inner).log.stages.len(), 1);
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let e = error(r#"{é="x"}"#);
        // `é` is not an identifier character: the error is at column 2 although it is 2 bytes.
        assert_eq!(e.column, 2);
        let e = error(r#"{a="é"} xyz"#);
        assert_eq!(e.column, 9);
    }

    mod fuzz {
        use super::super::parse;
        use proptest::prelude::*;

        /// Fragments of real queries, so that random sequences reach deep into the grammar.
        const FRAGMENTS: &[&str] = &[
            "{",
            "}",
            "(",
            ")",
            "[5m]",
            "[",
            "]",
            ",",
            "=",
            "!=",
            "=~",
            "!~",
            "|=",
            "|~",
            "|",
            ">",
            ">=",
            "<",
            "==",
            "\"x\"",
            "\"(\"",
            "`y`",
            "\"",
            "`",
            "a",
            "app",
            "json",
            "logfmt",
            "line_format",
            "\"{{.a}}\"",
            "\"{{\"",
            "sum",
            "by",
            "without",
            "topk",
            "3",
            "-1",
            "1.5",
            "250ms",
            "offset",
            "1h",
            "rate",
            "count_over_time",
            "bytes_rate",
            "and",
            "or",
            "unwrap",
            "#",
            "\n",
            " ",
            "é",
            "\\",
            "0",
            "1e9",
            "10KB",
            "+",
            "-",
            "*",
            "/",
            "%",
            "^",
            "!=",
            "<=",
            "unless",
            "bool",
            "on",
            "ignoring",
            "group_left",
            "group_right",
            "(job)",
            "()",
            "2.5e-3",
            ".5",
            "rate({a=\"b\"}[1m])",
            "sum by (a) (count_over_time({a=\"b\"}[5m]))",
        ];

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn never_panics_on_arbitrary_text(input in "\\PC{0,64}") {
                let _ = parse(&input);
            }

            #[test]
            fn never_panics_on_token_soup(parts in proptest::collection::vec(0..FRAGMENTS.len(), 0..40)) {
                let query: String = parts.iter().map(|&i| FRAGMENTS[i]).collect::<Vec<_>>().join(" ");
                let _ = parse(&query);
                let glued: String = parts.iter().map(|&i| FRAGMENTS[i]).collect();
                if let Err(e) = parse(&glued) {
                    prop_assert!(e.line >= 1 && e.column >= 1);
                }
            }
        }
    }
}
