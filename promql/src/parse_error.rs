//! [`ParseError`]: why a query is not valid PromQL, and where.
//!
//! `promql-parser` 0.11 says *what* is wrong but never *where*: a syntax error comes back as
//! the bare "invalid promql query" (its LR parser's errors, which hold the failing lexeme,
//! are dropped), a lexer error as a message without a position, and an error raised by a
//! grammar action ("unknown function with name …", "expected type … in call to
//! function …") names the fault but not its place. [`locate`] finds the place after the
//! parser has failed, and only then:
//!
//! * **Syntax errors.** The crate's public lexer tokenises the query and the crate's own
//!   grammar (`grammar/promql-parser-0.11.1.y`, a verbatim copy of its
//!   `src/parser/promql.y`; the dependency is pinned to that version) runs through
//!   `lrpar`'s run-time parser without error recovery, as the crate's compile-time parser
//!   does: both stop at the same lexeme, which the error names.
//! * **Lexer errors.** Lexing stops at the offending character, so every prefix of the query
//!   that contains it fails with the same message and the shortest such prefix ends at it
//!   (messages about the end of the input point there).
//! * **Errors of grammar actions.** The innermost sub-expression that fails alone with the
//!   same message is where the fault is.
//!
//! Positions are Prometheus's: line and column, 1-based, the column counted in bytes; the
//! message reads `1:5: parse error: unexpected identifier "bar"` as Prometheus's does.

use std::cell::RefCell;
use std::fmt;
use std::sync::OnceLock;

use cfgrammar::yacc::{YaccGrammar, YaccKind};
use cfgrammar::{RIdx, Span, TIdx};
use lrpar::{LexParseError, Lexeme, Lexer, RTParserBuilder, RecoveryKind};
use lrtable::{Minimiser, StateTable};

/// The grammar `promql-parser` is generated from, for the version the workspace pins.
const GRAMMAR: &str = include_str!("../grammar/promql-parser-0.11.1.y");

/// Longest query [`locate`] places errors in. Only failed queries are searched, but the
/// lexer and action searches re-lex or re-parse pieces of the query: quadratic in its
/// length (a few milliseconds at this size).
const MAX_LOCATED_BYTES: usize = 4 * 1024;
/// Most sub-expressions re-parsed to place an action's error (innermost first).
const MAX_REPARSED_EXPRESSIONS: usize = 256;

/// Why a query is not valid PromQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What is wrong, in Prometheus's words where it has them.
    pub message: String,
    /// Where, for faults in the query's text; `None` for faults of the query as a whole
    /// (an evaluation time out of range, a selector where a series selector is required)
    /// and where the position could not be found.
    pub position: Option<Position>,
}

/// Where in a query's text a parse error is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Byte offset of the offending text.
    pub offset: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in bytes from the start of the line (as Prometheus counts).
    pub column: usize,
    /// The offending token or sub-expression (empty at the end of the input).
    pub near: String,
}

impl ParseError {
    /// An error about the query as a whole, without a position.
    pub fn new(message: impl Into<String>) -> Self {
        ParseError {
            message: message.into(),
            position: None,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.position {
            Some(p) => write!(f, "{}:{}: parse error: {}", p.line, p.column, self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ParseError {}

impl Position {
    pub(crate) fn at(query: &str, offset: usize, len: usize) -> Self {
        let offset = offset.min(query.len());
        let before = &query[..offset];
        let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
        let near = query.get(offset..offset + len).unwrap_or_default();
        Position {
            offset,
            line: 1 + before.matches('\n').count(),
            column: offset - line_start + 1,
            near: near.to_string(),
        }
    }
}

/// The error for `query`, which `promql-parser` refused with `message`: the message made
/// specific (a syntax error names the token it met) and placed where the fault is.
#[cfg(test)]
pub fn locate(query: &str, message: &str) -> ParseError {
    locate_in(query, query, message)
}

/// [`locate`], re-parsing from `searched`: `query` with some of its regexes replaced by
/// stand-ins of the same length that give the same errors (`lean_regexes`), so that placing
/// an error never compiles the costly ones.
pub(crate) fn locate_in(query: &str, searched: &str, message: &str) -> ParseError {
    debug_assert_eq!(query.len(), searched.len());
    let unplaced = || ParseError::new(format!("parse error: {message}"));
    if query.len() > MAX_LOCATED_BYTES {
        return unplaced();
    }
    let lexemes = match promql_parser::parser::lexer(query) {
        Ok(lexer) => lexer,
        Err(_) => {
            return match locate_lexer_error(query, message) {
                Some(position) => ParseError {
                    message: message.to_string(),
                    position: Some(position),
                },
                None => unplaced(),
            };
        }
    };
    let Some(grammar) = Grammar::get() else {
        return unplaced();
    };
    let exprs = RefCell::new(Vec::new());
    let parser = RTParserBuilder::new(&grammar.grm, &grammar.table).recoverer(RecoveryKind::None);
    let (_, errors) =
        parser.parse_map(&lexemes, &|lexeme| Some(lexeme.span()), &|ridx,
                                                                    children: Vec<
            Option<Span>,
        >| {
            let span = covering(&children);
            if ridx == grammar.expr
                && let Some(s) = span
            {
                exprs.borrow_mut().push(s);
            }
            span
        });
    match errors.first() {
        Some(LexParseError::ParseError(e)) => {
            let lexeme = e.lexeme();
            let span = lexeme.span();
            let found = grammar.describe(lexeme.tok_id(), &query[span.start()..span.end()]);
            ParseError {
                message: format!("unexpected {found}"),
                position: Some(Position::at(query, span.start(), span.len())),
            }
        }
        // The lexer already succeeded once; it cannot fail here.
        Some(LexParseError::LexError(_)) => unplaced(),
        // The grammar accepts the query: an action refused it.
        None => match locate_action_error(
            query,
            &grammar.without_regexes(
                searched,
                lexemes.iter().flatten().map(|l| (l.tok_id(), l.span())),
                message,
            ),
            message,
            exprs.into_inner(),
        ) {
            Some(position) => ParseError {
                message: message.to_string(),
                position: Some(position),
            },
            None => unplaced(),
        },
    }
}

/// The smallest span covering `children`' spans.
fn covering(children: &[Option<Span>]) -> Option<Span> {
    let mut spans = children.iter().flatten();
    let first = spans.next()?;
    let (start, end) = spans.fold((first.start(), first.end()), |(a, b), s| {
        (a.min(s.start()), b.max(s.end()))
    });
    Some(Span::new(start, end))
}

/// Where lexing `query` fails with `message`: the last character of the shortest prefix
/// from which every longer prefix fails alike (a prefix ending before the fault lexes, or
/// fails otherwise, e.g. inside an unclosed brace), or the end for faults found there
/// (an unclosed parenthesis is one, as in Prometheus).
fn locate_lexer_error(query: &str, message: &str) -> Option<Position> {
    if message.contains("end of input")
        || message.contains("at the end")
        || message.contains("not terminated")
        || message == "unclosed left parenthesis"
    {
        return Some(end_of_input(query));
    }
    let fails_alike =
        |end: usize| matches!(promql_parser::parser::lexer(&query[..end]), Err(m) if m == message);
    let chars: Vec<(usize, char)> = query.char_indices().collect();
    // `fails(i)`: the prefix through character `i` fails alike. It holds from the fault to
    // the end, so the fault is found by galloping back from the end and then bisecting:
    // O(log n) lexes of the query, not one per character (an unterminated string 4 KiB
    // long cost 21 ms that way, a 500-fold amplification; found by fuzzing).
    let fails = |i: usize| {
        let (start, c) = chars[i];
        fails_alike(start + c.len_utf8())
    };
    let n = chars.len();
    // Invariant: every index in (hi, n) fails; `lo` is an index that does not (or -1).
    let mut hi = n;
    let mut step = 1;
    let lo = loop {
        let probe = n.saturating_sub(step);
        if step > n {
            break None;
        }
        if !fails(probe) {
            break Some(probe);
        }
        hi = probe;
        step *= 2;
    };
    // Bisect (lo, hi): find the first failing index after the last non-failing one.
    let mut low = lo.map_or(0, |l| l + 1);
    let mut high = hi;
    while low < high {
        let mid = low + (high - low) / 2;
        if fails(mid) {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    let first_failing = low;
    let &(offset, c) = chars.get(first_failing)?;
    Some(Position::at(query, offset, c.len_utf8()))
}

/// Where a grammar action refused `query` with `message`: the end for the grammar's own
/// end-of-input errors (`foo offset`), else the innermost of the sub-expressions `exprs`
/// that fails alone with the same message, re-parsed from `searched`: `query` or the same
/// with its regular expressions neutralised ([`Grammar::without_regexes`]; same offsets,
/// same errors).
fn locate_action_error(
    query: &str,
    searched: &str,
    message: &str,
    mut exprs: Vec<Span>,
) -> Option<Position> {
    if message.contains("end of input") {
        return Some(end_of_input(query));
    }
    exprs.sort_by_key(|s| (s.len(), s.start()));
    exprs.dedup();
    exprs
        .into_iter()
        .take(MAX_REPARSED_EXPRESSIONS)
        .find(|s| {
            matches!(
                crate::upstream_parse(&searched[s.start()..s.end()]),
                Err(m) if m == message
            )
        })
        .map(|s| Position::at(query, s.start(), s.len()))
}

/// Just after the query's last token.
fn end_of_input(query: &str) -> Position {
    Position::at(query, query.trim_end().len(), 0)
}

/// `promql-parser`'s grammar, built for `lrpar`'s run-time parser once per process.
struct Grammar {
    grm: YaccGrammar<u16>,
    table: StateTable<u16>,
    /// The `expr` rule: its nodes are the sub-expressions.
    expr: RIdx<u16>,
}

impl Grammar {
    /// The grammar, or `None` if it cannot be built (then errors go without positions;
    /// `grammar_matches_the_parser` guards against it).
    fn get() -> Option<&'static Grammar> {
        static GRAMMAR_TABLES: OnceLock<Option<Grammar>> = OnceLock::new();
        GRAMMAR_TABLES.get_or_init(Grammar::build).as_ref()
    }

    fn build() -> Option<Grammar> {
        let grm = YaccGrammar::<u16>::new_with_storaget(YaccKind::Grmtools, GRAMMAR).ok()?;
        let (_, table) = lrtable::from_yacc(&grm, Minimiser::Pager).ok()?;
        let expr = grm.rule_idx("expr")?;
        Some(Grammar { grm, table, expr })
    }

    /// `query` with the text of every regular expression in a matcher (`=~"…"`, `!~"…"`)
    /// replaced by as many `a`s, unless `message` may depend on one (an invalid regular
    /// expression; a matcher set that matches the empty string). Every re-parse of a
    /// sub-expression compiles its regular expressions again, and compiling one can take
    /// milliseconds whatever its length (`\\w{50}` expands Unicode classes up to the `regex`
    /// crate's size limit): a 200-byte query with a few of them took 30–90 ms to place its
    /// error (found by fuzzing). `aaa` compiles at once, matches no empty string (so it
    /// cannot add a "non-empty matcher" error) and cannot fail: the sub-expression that
    /// fails with `message` is the same, at the same offsets.
    fn without_regexes<'q>(
        &self,
        query: &'q str,
        lexemes: impl Iterator<Item = (u16, Span)>,
        message: &str,
    ) -> std::borrow::Cow<'q, str> {
        if message.contains("regex") || message.contains("non-empty matcher") {
            return query.into();
        }
        let id = |name| self.grm.token_idx(name).map(|t: TIdx<u16>| t.0);
        let (Some(eql_regex), Some(neq_regex), Some(string)) =
            (id("EQL_REGEX"), id("NEQ_REGEX"), id("STRING"))
        else {
            return query.into();
        };
        let mut bytes = query.as_bytes().to_vec();
        let mut after_regex_op = false;
        for (tok, span) in lexemes {
            if after_regex_op && tok == string {
                // Between the quotes; the quotes are one byte each (", ' or `).
                if span.len() >= 2 {
                    bytes[span.start() + 1..span.end() - 1].fill(b'a');
                }
            }
            after_regex_op = tok == eql_regex || tok == neq_regex;
        }
        // Whole characters between ASCII quotes became ASCII: still UTF-8.
        String::from_utf8(bytes).map_or(query.into(), Into::into)
    }

    /// A lexeme the way Prometheus names one in "unexpected …" (its `Item.desc`):
    /// `identifier "bar"`, `<by>`, `<aggr:sum>`, `<op:+>`, `"("`, `end of input`.
    fn describe(&self, token: u16, text: &str) -> String {
        let name = self.grm.token_name(TIdx(token)).unwrap_or_default();
        let kind = match name {
            // The lexer ends its lexemes with the grammar's own `EOF` token; the parser's
            // end marker is another.
            "EOF" => return "end of input".into(),
            _ if TIdx(token) == self.grm.eof_token_idx() => return "end of input".into(),
            "IDENTIFIER" => "identifier",
            "METRIC_IDENTIFIER" => "metric identifier",
            "NUMBER" => "number",
            "STRING" => "string",
            "DURATION" => "duration",
            _ if self.is_between(token, "KEYWORDS_START", "KEYWORDS_END")
                || self.is_between(token, "PREPROCESSOR_START", "PREPROCESSOR_END") =>
            {
                return format!("<{text}>");
            }
            _ if self.is_between(token, "AGGREGATORS_START", "AGGREGATORS_END") => {
                return format!("<aggr:{text}>");
            }
            _ if self.is_between(token, "OPERATORS_START", "OPERATORS_END") => {
                return format!("<op:{text}>");
            }
            _ => return format!("{text:?}"),
        };
        format!("{kind} {text:?}")
    }

    /// Whether `token` is declared between the marker tokens `start` and `end` (the
    /// grammar groups operators, aggregators and keywords that way, as Prometheus's does).
    fn is_between(&self, token: u16, start: &str, end: &str) -> bool {
        match (self.grm.token_idx(start), self.grm.token_idx(end)) {
            (Some(a), Some(b)) => a < TIdx(token) && TIdx(token) < b,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(query: &str) -> ParseError {
        match promql_parser::parser::parse(query) {
            Ok(_) => panic!("{query:?} parses"),
            Err(m) => locate(query, &m),
        }
    }

    fn at(query: &str) -> (usize, usize, String) {
        let p = error(query).position.expect("a position");
        (p.line, p.column, p.near)
    }

    #[test]
    fn syntax_errors_name_the_token_and_its_place() {
        assert_eq!(
            error("foo bar").to_string(),
            "1:5: parse error: unexpected identifier \"bar\""
        );
        assert_eq!(at("up{job=\"a\"} +"), (1, 14, String::new()));
        assert_eq!(error("up{job=\"a\"} +").message, "unexpected end of input");
        assert_eq!(at("rate(x[5m]) offset  "), (1, 19, String::new()));
        assert_eq!(error("sum by (a) by (b) (x)").message, "unexpected <by>");
        assert_eq!(error("x sum").message, "unexpected <aggr:sum>");
        assert_eq!(error("x + * y").message, "unexpected <op:*>");
        assert_eq!(error("(x +) y").message, "unexpected \")\"");
        assert_eq!(
            error("x y:z").message,
            "unexpected metric identifier \"y:z\""
        );
        assert_eq!(at("x + 1 2"), (1, 7, "2".into()));
        assert_eq!(error("x + 1 2").message, "unexpected number \"2\"");
    }

    #[test]
    fn positions_count_lines_and_bytes() {
        assert_eq!(at("sum(\n  rate(x[5m])\n) foo"), (3, 3, "foo".into()));
        // Columns count bytes, as Prometheus's do: "é" is two.
        assert_eq!(at("{a=\"é\"} b"), (1, 10, "b".into()));
    }

    #[test]
    fn lexer_errors_point_at_the_character() {
        let e = error("foo $ bar");
        assert_eq!(e.to_string(), "1:5: parse error: unexpected character: '$'");
        // An unclosed parenthesis is found at the end, as Prometheus reports it.
        assert_eq!(
            error("sum(rate(x[5m])").to_string(),
            "1:16: parse error: unclosed left parenthesis"
        );
        // An unterminated string starts at its quote.
        assert_eq!(at("foo{a=\"b}"), (1, 7, "\"".into()));
        // End-of-input faults are just after the last token.
        assert_eq!(at("foo{a=\"b\" \n"), (1, 10, String::new()));
    }

    #[test]
    fn action_errors_point_at_the_sub_expression() {
        let e = error("sum(rate(foo)) + 1");
        let p = e.position.as_ref().expect("a position");
        assert_eq!((p.line, p.column, p.near.as_str()), (1, 5, "rate(foo)"));
        assert!(e.message.contains("rate"), "{e}");
        assert_eq!(at("1 + nosuchfunc(x)"), (1, 5, "nosuchfunc(x)".into()));
        assert_eq!(
            at("sum(x offset 5m offset 1m)"),
            (1, 5, "x offset 5m offset 1m".into())
        );
    }

    #[test]
    fn action_errors_beside_regular_expressions_are_placed_without_compiling_them_again() {
        let query = r#"sum(rate(a{x=~"\\w{60}", y!~'é.*'}[5m])) + nosuchfunc(b{z=~`(a+)+b`})"#;
        let grammar = Grammar::get().expect("the grammar");
        let lexemes = promql_parser::parser::lexer(query).expect("lexes");
        let tokens = || lexemes.iter().flatten().map(|l| (l.tok_id(), l.span()));
        let neutral = grammar.without_regexes(query, tokens(), "unknown function");
        assert_eq!(
            neutral,
            r#"sum(rate(a{x=~"aaaaaaa", y!~'aaaa'}[5m])) + nosuchfunc(b{z=~`aaaaaa`})"#
        );
        assert_eq!(neutral.len(), query.len());
        // Errors that may depend on a regular expression keep them.
        let kept = grammar.without_regexes(query, tokens(), "illegal regex for (");
        assert_eq!(kept, query);
        let column = query.find("nosuchfunc").unwrap() + 1;
        assert_eq!(at(query).0..at(query).1, 1..column);
        assert_eq!(at(query).2, "nosuchfunc(b{z=~`(a+)+b`})");
        // A matcher set matching the empty string is found with its regular expression.
        assert_eq!(at(r#"1 + {a=~".*"}"#), (1, 5, r#"{a=~".*"}"#.into()));
    }

    #[test]
    fn errors_about_the_whole_query_have_no_position() {
        assert_eq!(
            ParseError::new("end time out of range").to_string(),
            "end time out of range"
        );
    }

    /// The copy of the grammar must be the one the parser was generated from: its token
    /// numbers are the lexer's, and it accepts what the parser accepts.
    #[test]
    fn grammar_matches_the_parser() {
        use promql_parser::parser::token::*;
        let g = Grammar::get().expect("the grammar builds");
        let tokens = [
            ("EQL", T_EQL),
            ("COLON", T_COLON),
            ("COMMA", T_COMMA),
            ("DURATION", T_DURATION),
            ("EOF", T_EOF),
            ("IDENTIFIER", T_IDENTIFIER),
            ("LEFT_BRACE", T_LEFT_BRACE),
            ("LEFT_BRACKET", T_LEFT_BRACKET),
            ("LEFT_PAREN", T_LEFT_PAREN),
            ("METRIC_IDENTIFIER", T_METRIC_IDENTIFIER),
            ("NUMBER", T_NUMBER),
            ("RIGHT_BRACE", T_RIGHT_BRACE),
            ("RIGHT_BRACKET", T_RIGHT_BRACKET),
            ("RIGHT_PAREN", T_RIGHT_PAREN),
            ("STRING", T_STRING),
            ("ADD", T_ADD),
            ("DIV", T_DIV),
            ("EQLC", T_EQLC),
            ("EQL_REGEX", T_EQL_REGEX),
            ("GTE", T_GTE),
            ("GTR", T_GTR),
            ("LAND", T_LAND),
            ("LOR", T_LOR),
            ("LSS", T_LSS),
            ("LTE", T_LTE),
            ("LUNLESS", T_LUNLESS),
            ("MOD", T_MOD),
            ("MUL", T_MUL),
            ("NEQ", T_NEQ),
            ("NEQ_REGEX", T_NEQ_REGEX),
            ("POW", T_POW),
            ("SUB", T_SUB),
            ("AT", T_AT),
            ("ATAN2", T_ATAN2),
            ("AVG", T_AVG),
            ("BOTTOMK", T_BOTTOMK),
            ("COUNT", T_COUNT),
            ("COUNT_VALUES", T_COUNT_VALUES),
            ("GROUP", T_GROUP),
            ("MAX", T_MAX),
            ("MIN", T_MIN),
            ("QUANTILE", T_QUANTILE),
            ("STDDEV", T_STDDEV),
            ("STDVAR", T_STDVAR),
            ("SUM", T_SUM),
            ("TOPK", T_TOPK),
            ("LIMITK", T_LIMITK),
            ("LIMIT_RATIO", T_LIMIT_RATIO),
            ("BOOL", T_BOOL),
            ("BY", T_BY),
            ("GROUP_LEFT", T_GROUP_LEFT),
            ("GROUP_RIGHT", T_GROUP_RIGHT),
            ("FILL", T_FILL),
            ("FILL_LEFT", T_FILL_LEFT),
            ("FILL_RIGHT", T_FILL_RIGHT),
            ("IGNORING", T_IGNORING),
            ("OFFSET", T_OFFSET),
            ("ON", T_ON),
            ("WITHOUT", T_WITHOUT),
            ("START", T_START),
            ("END", T_END),
            ("STEP", T_STEP),
        ];
        for (name, id) in tokens {
            assert_eq!(
                g.grm.token_idx(name),
                Some(TIdx(id)),
                "token {name}: the grammar copy is not the parser's"
            );
        }
        // Syntax errors found by the copy are the parser's, and what it accepts the parser
        // accepts unless an action refuses it.
        for q in [
            "up",
            "sum by (job) (rate(http_requests_total{code=~\"5..\"}[5m] offset 1m))",
            "histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))",
            "a + on (b) group_left (c) d",
            "max_over_time(rate(x[1m])[10m:30s] @ end())",
            "-x ^ 2 % 3 atan2 y",
            "topk(3, x) unless bottomk(2, y)",
            "count_values(\"v\", x) > bool 1",
            "{__name__=~\"a.*\", job!=\"\"}",
            "x[5m:]",
        ] {
            assert!(promql_parser::parser::parse(q).is_ok(), "{q}");
            let lexer = promql_parser::parser::lexer(q).unwrap();
            let parser = RTParserBuilder::new(&g.grm, &g.table).recoverer(RecoveryKind::None);
            let (_, errors) = parser.parse_map(&lexer, &|_| (), &|_, _: Vec<()>| ());
            assert!(errors.is_empty(), "{q}: {errors:?}");
        }
    }
}
