//! Prometheus's limit on counted repetitions in regular expressions, checked before the
//! parser compiles them.
//!
//! Prometheus compiles matcher regexes with Go's RE2 syntax, which refuses a repetition count
//! above 1000 (`invalid repeat count`). Rust's `regex` accepts far larger ones and compiles
//! them until its size limit: a 55-byte selector `{a=~".{55517}"}` cost hundreds of
//! milliseconds of CPU, several times over (found by fuzzing). The matchers' strings are
//! read from the lexer, unescaped as PromQL strings are (Go's rules), and parsed — not
//! compiled — with `regex-syntax`; a count over the limit is the parse error Prometheus
//! gives, placed at the string.

use promql_parser::parser::token::{T_EQL_REGEX, T_NEQ_REGEX, T_STRING};
use sightline_model::largest_repeat;

use crate::ParseError;
use crate::parse_error::Position;

pub use sightline_model::MAX_REPEAT;

/// Refuses a query whose regex matchers repeat something more than [`MAX_REPEAT`] times, or
/// whose case-insensitive classes together cost more to fold than the query's length buys
/// ([`sightline_model::FoldBudget`]: `(?i)[a[^b]]` walks all of Unicode, and 400 of them in
/// one selector took seconds to parse; found by fuzzing). Queries the lexer refuses pass:
/// the parser says why.
pub(crate) fn check(query: &str) -> Result<(), ParseError> {
    // Cheap exit: no counted repetition can be there without a digit after a brace.
    if !query.contains("=~") && !query.contains("!~") {
        return Ok(());
    }
    let Ok(lexer) = promql_parser::parser::lexer(query) else {
        return Ok(());
    };
    use lrpar::{Lexeme, Lexer};
    let mut fold_budget = sightline_model::FoldBudget::for_query(query.len());
    let mut after_regex_op = false;
    for lexeme in lexer.iter().flatten() {
        let tok = lexeme.tok_id();
        if after_regex_op && tok == T_STRING {
            let span = lexeme.span();
            let raw = &query[span.start()..span.end()];
            if let Ok(re) = sightline_model::go_string::unquote(raw)
                && let Some(count) = largest_repeat(&re)
                && count > MAX_REPEAT
            {
                return Err(ParseError {
                    message: format!(
                        "invalid regular expression {re:?}: invalid repeat count {count} (at most {MAX_REPEAT}, as in Prometheus)"
                    ),
                    position: Some(Position::at(query, span.start(), span.len())),
                });
            }
            if let Ok(re) = sightline_model::go_string::unquote(raw)
                && let Err(e) = fold_budget.charge(&re)
            {
                return Err(ParseError {
                    message: format!("invalid regular expression {re:?}: {e}"),
                    position: Some(Position::at(query, span.start(), span.len())),
                });
            }
        }
        after_regex_op = tok == T_EQL_REGEX || tok == T_NEQ_REGEX;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetitions_over_re2s_limit_are_parse_errors_at_the_string() {
        let e = check(r#"up{job=~"a.{1001}"}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "1:9: parse error: invalid regular expression \"a.{1001}\": invalid repeat count 1001 (at most 1000, as in Prometheus)"
        );
        assert!(check(r#"up{job=~"a.{1000}", x!~'b{2,1000}'}"#).is_ok());
        assert!(check(r#"{x!~`.{3,5000}`}"#).is_err());
        assert!(check(r#"{x!~".{0,1001}"}"#).is_err());
        // Escaped braces are literal; equality matchers are not regexes.
        assert!(check(r#"up{job=~"a\\{5000}"}"#).is_ok());
        assert!(check(r#"up{job="a.{5000}"}"#).is_ok());
        // The fuzzer's input: a count followed by carriage returns inside the braces.
        assert!(check("{__am=~\"Infa.{55517\r\r\r\r\r\r}\r\u{16}\rm\r]\"}").is_err());
        // And one whose literal braces (RE2 reads `{{` as text) kept it from parsing: the
        // parser escapes them and compiles the count (300 ms in release).
        assert!(check(r#"{ie__=~"66:6{{{{.{66666}{{{x"}"#).is_err());
        // And one valid only inside the group the matcher compiles it in (fuzzing again).
        assert!(check(r#"{me__=~"e)3{33333333}(x"}"#).is_err());
    }

    #[test]
    fn case_insensitive_classes_that_walk_all_of_unicode_are_refused_past_the_budget() {
        // Found by fuzzing: each `[a[^b]]` under (?i) walks 1.1 M code points to compile.
        let many = format!(r#"{{a=~"(?i){}"}}"#, "[a[^b]]".repeat(400));
        let e = check(&many).unwrap_err();
        assert!(
            e.message
                .contains("case-insensitive character classes too large"),
            "{e}"
        );
        assert_eq!(e.position.map(|p| p.column), Some(5));
        // Spread over matchers, they share one budget.
        let spread: Vec<String> = (0..10)
            .map(|i| format!(r#"l{i}=~"(?i)[\\s\\S]""#))
            .collect();
        assert!(check(&format!("{{{}}}", spread.join(","))).is_err());
        // Two are within it, and the usual case-insensitive matchers cost nothing.
        assert!(check(r#"{a=~"(?i)[\\s\\S]", b=~"(?i)[a[^b]]"}"#).is_ok());
        assert!(check(r#"up{job=~"(?i)api-.*|[^x]+", code!~"(?i:5..)"}"#).is_ok());
    }
}
