//! A limit on how deeply a query nests, checked on the text before it is parsed.
//!
//! The parser builds, and the planner, evaluator and `Drop` walk, the syntax tree
//! recursively; a few kilobytes of `((((…))))`, `abs(abs(…))` or `up or up or …` used to
//! overflow the thread's stack and abort the whole server, ingest included. The tree's depth
//! is at most the bracket depth plus the number of operators, both of which a single pass
//! over the text bounds without building anything, so a query over the limits is refused
//! with a parse error naming the limit and where it was passed.

use crate::ParseError;
use crate::parse_error::Position;

/// The stack the server gives the threads that parse and evaluate queries (its runtime's
/// worker and blocking threads). The limits below are checked against it by
/// `tests/limits.rs`, in debug builds, whose frames are several times larger: a 256-operator
/// chain needs about 2 MiB there, tokio's default for a whole thread.
pub const QUERY_THREAD_STACK_BYTES: usize = 8 << 20;

/// Most brackets (`(`, `[`, `{`) open at once. LogQL's limit is the same.
pub const MAX_NESTING_DEPTH: usize = 64;
/// Most operators (binary, unary and set operators) in one query: each may add a level to the
/// syntax tree, e.g. a chain `a + b + c + …` is as deep as it is long.
pub const MAX_OPERATORS: usize = 256;

/// Refuses a query whose syntax tree could be deeper than the limits allow.
pub(crate) fn check(query: &str) -> Result<(), ParseError> {
    let bytes = query.as_bytes();
    let mut depth = 0usize;
    let mut brace_depth = 0usize;
    let mut operators = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'"' | b'\'' | b'`' => {
                i = skip_string(bytes, i);
                continue;
            }
            b'#' => {
                // A comment runs to the end of its line.
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if b == b'{' {
                    brace_depth += 1;
                }
                if depth > MAX_NESTING_DEPTH {
                    return Err(refusal(
                        query,
                        i,
                        format!(
                            "query nests more than {MAX_NESTING_DEPTH} brackets deep (the limit)"
                        ),
                    ));
                }
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if b == b'}' {
                    brace_depth = brace_depth.saturating_sub(1);
                }
            }
            // Outside label matchers these are operators (or a sign, which is a unary operator;
            // an exponent's sign is counted too, which only makes the bound looser).
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'<' | b'>' if brace_depth == 0 => {
                operators += 1;
                if bytes.get(i + 1) == Some(&b'=') {
                    i += 1;
                }
            }
            b'=' | b'!' if brace_depth == 0 && bytes.get(i + 1) == Some(&b'=') => {
                operators += 1;
                i += 1;
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':')
                {
                    i += 1;
                }
                let word = &query[start..i];
                if brace_depth == 0
                    && ["and", "or", "unless", "atan2"]
                        .iter()
                        .any(|op| word.eq_ignore_ascii_case(op))
                {
                    operators += 1;
                }
                if operators > MAX_OPERATORS {
                    return Err(operator_refusal(query, start));
                }
                continue;
            }
            _ => {}
        }
        if operators > MAX_OPERATORS {
            return Err(operator_refusal(query, i));
        }
        i += 1;
    }
    Ok(())
}

fn operator_refusal(query: &str, offset: usize) -> ParseError {
    refusal(
        query,
        offset,
        format!("query has more than {MAX_OPERATORS} operators (the limit)"),
    )
}

fn refusal(query: &str, offset: usize, message: String) -> ParseError {
    let mut error = ParseError::new(message);
    error.position = Some(Position::at(query, offset, 1));
    error
}

/// The index just past the string literal starting at `start` (or the end of the text).
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            // Backquoted strings are raw: no escapes.
            b'\\' if quote != b'`' => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(query: &str) -> String {
        check(query).expect_err(query).to_string()
    }

    #[test]
    fn everyday_queries_pass() {
        for q in [
            r#"sum by (job) (rate(http_requests_total{code=~"5..", path!="/a(b"}[5m])) / sum by (job) (rate(http_requests_total[5m])) > 0.05"#,
            "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))",
            r#"up{job="((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((("}"#,
            "1e-3 * -foo + bar # a comment with ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((",
        ] {
            check(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        }
    }

    #[test]
    fn deep_nesting_is_refused_where_it_passes_the_limit() {
        let q = format!("{}1{}", "(".repeat(2500), ")".repeat(2500));
        let e = check(&q).unwrap_err();
        assert_eq!(e.position.as_ref().unwrap().column, MAX_NESTING_DEPTH + 1);
        assert!(e.to_string().contains("more than 64 brackets"), "{e}");
        assert!(
            refused(&format!("{}up{}", "abs(".repeat(2000), ")".repeat(2000))).contains("brackets")
        );
    }

    #[test]
    fn long_operator_chains_are_refused() {
        assert!(refused(&vec!["1"; 2000].join("+")).contains("more than 256 operators"));
        assert!(refused(&vec!["up"; 3000].join(" or ")).contains("operators"));
        assert!(check(&vec!["up"; MAX_OPERATORS + 1].join(" or ")).is_ok());
    }
}
