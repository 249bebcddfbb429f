//! A hand-written recursive-descent parser for the supported LogQL subset.
//!
//! Grammar (informally):
//!
//! ```text
//! expr        := log_expr | metric_expr | "(" expr ")"
//! log_expr    := selector stage* | "(" log_expr ")"
//! selector    := "{" matcher ("," matcher)* ","? "}"
//! matcher     := IDENTIFIER ("=" | "!=" | "=~" | "!~") STRING
//! stage       := ("|=" | "!=" | "|~" | "!~") STRING
//!              | "|" ("json" | "logfmt" | "line_format" STRING | label_filter)
//! label_filter:= and_filter ("or" and_filter)*
//! and_filter  := primary (("and" | ",")? primary)*
//! primary     := "(" label_filter ")" | IDENTIFIER op (STRING | NUMBER | DURATION)
//! metric_expr := range_fn "(" log_range ")" | vector_op grouping? "(" (NUMBER ",")? metric_expr ")" grouping?
//! log_range   := selector RANGE? stage* RANGE? ("offset" DURATION)?     (exactly one RANGE)
//!              | "(" log_expr ")" RANGE ("offset" DURATION)?
//! grouping    := ("by" | "without") "(" (IDENTIFIER ("," IDENTIFIER)*)? ")"
//! ```
//!
//! Errors carry the 1-based line and column (in characters) of the offending token and print
//! like Loki's: `parse error at line 1, col 15: syntax error: unexpected IDENTIFIER, expecting {`.

use sightline_model::{LabelMatcher, LineFilter, LineFilterOp, MatchOp};

use crate::ast::{
    Expr, Grouping, LabelFilter, LineTemplate, LogExpr, MetricExpr, NumericOp, RangeAggregation,
    RangeOp, Stage, VectorAggregation, VectorOp,
};
use crate::lexer::{Token, TokenKind, tokenize};

/// Deepest nesting of parentheses accepted; bounds the parser's recursion on hostile input.
const MAX_DEPTH: usize = 64;

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
    };
    let expr = parser.expr()?;
    let token = parser.peek();
    match &token.kind {
        TokenKind::Eof => Ok(expr),
        kind if matches!(expr, Expr::Metric(_)) && is_binary_operator(kind) => Err(ParseError::at(
            token,
            "binary operations between expressions are not supported",
        )),
        _ => Err(parser.unexpected(token, None)),
    }
}

fn is_binary_operator(kind: &TokenKind) -> bool {
    match kind {
        TokenKind::Arithmetic(_)
        | TokenKind::EqEq
        | TokenKind::Neq
        | TokenKind::Gt
        | TokenKind::Ge
        | TokenKind::Lt
        | TokenKind::Le => true,
        TokenKind::Ident(word) => matches!(word.as_str(), "and" | "or" | "unless"),
        _ => false,
    }
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
}

impl Parser {
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

    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.nested(|p| match &p.peek().kind {
            TokenKind::LBrace => Ok(Expr::Log(p.log_expr()?)),
            TokenKind::LParen => {
                p.next();
                let expr = p.expr()?;
                p.expect(TokenKind::RParen, ")")?;
                Ok(expr)
            }
            TokenKind::Ident(_) => Ok(Expr::Metric(p.metric_call()?)),
            _ => {
                let token = p.peek().clone();
                Err(p.unexpected(&token, Some("{ or (")))
            }
        })
    }

    fn metric_expr(&mut self) -> Result<MetricExpr, ParseError> {
        self.nested(|p| match &p.peek().kind {
            TokenKind::LParen => {
                p.next();
                let expr = p.metric_expr()?;
                p.expect(TokenKind::RParen, ")")?;
                Ok(expr)
            }
            TokenKind::Ident(_) => p.metric_call(),
            TokenKind::LBrace => Err(ParseError::at(
                p.peek(),
                "syntax error: unexpected {, expecting a metric expression such as rate(…) \
                 (log queries cannot be aggregated directly)",
            )),
            _ => {
                let token = p.peek().clone();
                Err(p.unexpected(&token, Some("a metric expression")))
            }
        })
    }

    fn metric_call(&mut self) -> Result<MetricExpr, ParseError> {
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
            return Ok(MetricExpr::Range(agg));
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
            return self.vector_aggregation(name, op);
        }
        if UNSUPPORTED_FUNCTIONS.contains(&name.as_str()) {
            return Err(ParseError::at(&token, format!("{name} is not supported")));
        }
        if self.peek().kind == TokenKind::LParen && !crate::lexer::is_keyword(name) {
            return Err(ParseError::at(&token, format!("unknown function {name}")));
        }
        Err(self.unexpected(&token, None))
    }

    fn vector_aggregation(&mut self, name: &str, op: VectorOp) -> Result<MetricExpr, ParseError> {
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
        let inner = self.metric_expr()?;
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
        Ok(MetricExpr::Vector(VectorAggregation {
            op,
            grouping,
            inner: Box::new(inner),
        }))
    }

    fn k_parameter(&mut self, name: &str) -> Result<usize, ParseError> {
        let token = self.next();
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
        self.expect(TokenKind::LParen, "(")?;
        let mut labels = Vec::new();
        if self.peek().kind == TokenKind::RParen {
            self.next();
        } else {
            loop {
                labels.push(self.expect_ident()?);
                let token = self.next();
                match token.kind {
                    TokenKind::Comma => continue,
                    TokenKind::RParen => break,
                    _ => return Err(self.unexpected(&token, Some(", or )"))),
                }
            }
        }
        Ok(Some(Grouping { without, labels }))
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
            let token = self.next();
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
        let value_token = self.next();
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
            MetricExpr::Vector(v) => panic!("not a range aggregation: {v:?}"),
        }
    }

    fn vector(agg: &MetricExpr) -> &VectorAggregation {
        match agg {
            MetricExpr::Vector(v) => v,
            MetricExpr::Range(r) => panic!("not a vector aggregation: {r:?}"),
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
                r#"sum(rate({a="b"}[1m])) / 2"#,
                24,
                "binary operations between expressions are not supported",
            ),
            (
                r#"rate({a="b"}[1m]) > 0"#,
                19,
                "binary operations between expressions are not supported",
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
