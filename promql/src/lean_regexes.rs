//! Matcher regexes kept away from `promql-parser`'s compiler.
//!
//! The parser compiles every `=~`/`!~` regex with `regex::Regex::new`, which builds a literal
//! prefilter; for a regex whose optional characters and classes multiply into a couple of
//! hundred long literals that build costs far more than the rest (a 189-byte regex: 143 ms,
//! found by fuzzing), and nothing in `regex`'s builder turns it off. The query is therefore
//! parsed with each such regex replaced by a cheap stand-in of the same length (so every
//! position the parser reports is the query's) that matches the empty string exactly when
//! the original does (the parser refuses a selector whose matchers all match it), and the
//! originals are put back in the tree. The regexes are compiled where they are used, by
//! [`sightline_model::LabelMatcher`], without the prefilter.

use std::collections::HashMap;

use promql_parser::label::Matcher;
use promql_parser::parser::Expr;
use promql_parser::parser::token::{T_EQL_REGEX, T_NEQ_REGEX, T_STRING};

/// The query with stand-ins, and each stand-in's original regex.
pub(crate) struct Neutral {
    pub text: String,
    pub originals: HashMap<String, String>,
}

/// Replaces the matcher regexes of `query` that compile with stand-ins. A regex that does
/// not compile, or whose string is too short to hold a stand-in, is left for the parser (and
/// its error).
pub(crate) fn neutralise(query: &str) -> Neutral {
    let mut out = Neutral {
        text: query.to_string(),
        originals: HashMap::new(),
    };
    if !query.contains("=~") && !query.contains("!~") {
        return out;
    }
    let Ok(lexer) = promql_parser::parser::lexer(query) else {
        return out;
    };
    use lrpar::{Lexeme, Lexer};
    let mut after_regex_op = false;
    for lexeme in lexer.iter().flatten() {
        let tok = lexeme.tok_id();
        if after_regex_op && tok == T_STRING {
            let span = lexeme.span();
            let inner = span.len().saturating_sub(2);
            if let Ok(re) = sightline_model::go_string::unquote(&query[span.start()..span.end()])
                && let Some(empty) = matches_empty(&re)
                && let Some(stand_in) = stand_in(out.originals.len(), inner, empty)
            {
                out.text
                    .replace_range(span.start() + 1..span.end() - 1, &stand_in);
                out.originals.insert(stand_in, re);
            }
        }
        after_regex_op = tok == T_EQL_REGEX || tok == T_NEQ_REGEX;
    }
    out
}

/// Whether the regex, anchored as the parser anchors it, matches the empty string; `None`
/// if it does not compile (as written or with Go's literal braces escaped, the parser's
/// second try).
fn matches_empty(re: &str) -> Option<bool> {
    let build = |pattern: &str| {
        regex_automata::meta::Builder::new()
            .configure(regex_automata::meta::Config::new().auto_prefilter(false))
            .build(&format!("^(?:{pattern})$"))
            .ok()
    };
    let compiled = build(re).or_else(|| build(&crate::plan::escape_go_only_braces(re)))?;
    Some(compiled.is_match(""))
}

/// A regex of exactly `len` ASCII bytes, unique by `id`, that needs no escaping in any
/// PromQL string and matches the empty string exactly when `empty`.
fn stand_in(id: usize, len: usize, empty: bool) -> Option<String> {
    let core = format!("z{id:06}");
    let mut s = if empty {
        // `(?:z000001)?`, lazy (`??`) when that evens the padding out.
        let base = core.len() + 5;
        if len < base {
            return None;
        }
        if (len - base).is_multiple_of(2) {
            format!("(?:{core})?")
        } else {
            format!("(?:{core})??")
        }
    } else {
        core
    };
    if s.len() > len {
        return None;
    }
    let pad = if empty { "z?" } else { "z" };
    while s.len() < len {
        s.push_str(pad);
    }
    (s.len() == len).then_some(s)
}

/// Puts the original regexes back into the parsed tree's matchers.
pub(crate) fn restore(expr: &mut Expr, originals: &HashMap<String, String>) {
    if originals.is_empty() {
        return;
    }
    let fix = |m: &mut Matcher| {
        if let Some(re) = originals.get(&m.value) {
            m.value = re.clone();
        }
    };
    match expr {
        Expr::Aggregate(a) => {
            restore(&mut a.expr, originals);
            if let Some(p) = a.param.as_mut() {
                restore(p, originals);
            }
        }
        Expr::Unary(u) => restore(&mut u.expr, originals),
        Expr::Binary(b) => {
            restore(&mut b.lhs, originals);
            restore(&mut b.rhs, originals);
        }
        Expr::Paren(p) => restore(&mut p.expr, originals),
        Expr::Subquery(s) => restore(&mut s.expr, originals),
        Expr::VectorSelector(vs) => {
            vs.matchers.matchers.iter_mut().for_each(fix);
            vs.matchers.or_matchers.iter_mut().flatten().for_each(fix);
        }
        Expr::MatrixSelector(ms) => {
            ms.vs.matchers.matchers.iter_mut().for_each(fix);
            ms.vs
                .matchers
                .or_matchers
                .iter_mut()
                .flatten()
                .for_each(fix);
        }
        Expr::Call(c) => c.args.args.iter_mut().for_each(|a| restore(a, originals)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// The parser's message with the stand-ins it quotes turned back into the regexes.
pub(crate) fn restore_message(message: String, originals: &HashMap<String, String>) -> String {
    originals.iter().fold(message, |m, (stand_in, re)| {
        if m.contains(stand_in.as_str()) {
            m.replace(stand_in.as_str(), re)
        } else {
            m
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzzer's finding: the parser must not compile its regex (143 ms in release).
    #[test]
    fn a_regex_of_many_long_literals_never_reaches_the_parser() {
        let query = include_str!("../../fuzz/regressions/promql/regex-literal-expansion-189b");
        let n = neutralise(query);
        assert_eq!(n.originals.len(), 1);
        assert!(n.originals.values().all(|re| re.contains("pjertopk")));
        assert!(!n.text.contains("pjertopk"));
    }

    #[test]
    fn stand_ins_keep_length_and_emptiness() {
        for len in 0..40 {
            for empty in [false, true] {
                if let Some(s) = stand_in(3, len, empty) {
                    assert_eq!(s.len(), len);
                    assert_eq!(matches_empty(&s), Some(empty), "{s}");
                }
            }
        }
        assert!(stand_in(3, 7, false).is_some() && stand_in(3, 12, true).is_some());
    }

    #[test]
    fn the_parser_sees_stand_ins_and_the_tree_gets_the_originals() {
        let query = r#"sum(rate(a{x=~"(?:[a-c]x?y?)+,long-enough", y!~'.*'}[5m])) / b{z=~`q|r`}"#;
        let n = neutralise(query);
        assert_eq!(n.text.len(), query.len());
        assert_eq!(n.originals.len(), 1, "{}", n.text);
        assert!(!n.text.contains("long-enough"));
        let mut expr = promql_parser::parser::parse(&n.text).unwrap();
        restore(&mut expr, &n.originals);
        assert_eq!(
            promql_parser::parser::parse(query).unwrap().to_string(),
            expr.to_string()
        );
    }
}
