//! Turning LogQL line filters into Tantivy term queries that select a *superset* of the
//! matching lines.
//!
//! `|= "needle"` is a case-sensitive substring test, while the index holds lower-cased
//! alphanumeric tokens. A token of the needle that has a separator on both sides inside the
//! needle must appear as a whole token in every matching line: an exact term. The needle's
//! first token may be the tail of a longer token in the line (a suffix), its last token the
//! head of one (a prefix), and a needle that is a single bare token may sit anywhere inside a
//! token. Exact terms are cheap, a prefix walks a slice of the term dictionary, a suffix or
//! infix walks all of it; so the cheapest sound clauses are used and the engine verifies
//! every candidate line.
//!
//! `|~ "regex"` pushes down through the literal runs every match must contain (the literal
//! pieces of the pattern's top-level concatenation): each is a substring of every matching
//! line, so its exact terms and prefix ranges are sound clauses. Dictionary walks are not
//! spent on them; verification does the rest.

use regex_syntax::hir::{Hir, HirKind};
use std::ops::Bound;
use tantivy::Term;

use tantivy::query::{Query, RangeQuery, RegexQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::{LowerCaser, SimpleTokenizer, TextAnalyzer, TokenStream};

use crate::schema::MAX_TOKEN_LEN;

/// How a needle token must appear among a line's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TokenMatch {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Infix(String),
}

fn needle_tokens(needle: &str) -> Vec<TokenMatch> {
    let mut analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(LowerCaser)
        .build();
    let mut stream = analyzer.token_stream(needle);
    let mut spans = Vec::new();
    while stream.advance() {
        let t = stream.token();
        spans.push((t.offset_from, t.offset_to, t.text.clone()));
    }
    spans
        .into_iter()
        .filter(|(_, _, text)| text.len() <= MAX_TOKEN_LEN)
        .map(|(from, to, text)| {
            let open_left = from == 0;
            let open_right = to == needle.len();
            match (open_left, open_right) {
                (false, false) => TokenMatch::Exact(text),
                (false, true) => TokenMatch::Prefix(text),
                (true, false) => TokenMatch::Suffix(text),
                (true, true) => TokenMatch::Infix(text),
            }
        })
        .collect()
}

/// Cheap clauses (exact terms, prefix ranges; no dictionary walks) that every line matching
/// the regex `pattern` satisfies; empty when the pattern has no usable literal.
pub fn regex_clauses(field: Field, pattern: &str) -> Vec<Box<dyn Query>> {
    let Ok(hir) = regex_syntax::Parser::new().parse(pattern) else {
        return Vec::new();
    };
    let mut literals = Vec::new();
    required_literals(&hir, &mut literals);
    literals
        .iter()
        .flat_map(|literal| {
            let tokens = needle_tokens(literal);
            let exact: Vec<Box<dyn Query>> = tokens
                .iter()
                .filter_map(|t| match t {
                    TokenMatch::Exact(s) => Some(Box::new(TermQuery::new(
                        Term::from_field_text(field, s),
                        IndexRecordOption::Basic,
                    )) as Box<dyn Query>),
                    _ => None,
                })
                .collect();
            if !exact.is_empty() {
                return exact;
            }
            tokens
                .iter()
                .find_map(|t| match t {
                    TokenMatch::Prefix(s) => Some(vec![prefix_range(field, s)]),
                    _ => None,
                })
                .unwrap_or_default()
        })
        .collect()
}

/// Collects literal strings that every match of `hir` contains.
fn required_literals(hir: &Hir, out: &mut Vec<String>) {
    match hir.kind() {
        HirKind::Literal(lit) => push_literal(&lit.0, out),
        HirKind::Capture(capture) => required_literals(&capture.sub, out),
        HirKind::Repetition(rep) if rep.min >= 1 => required_literals(&rep.sub, out),
        HirKind::Concat(parts) => {
            // Adjacent literals form one contiguous run; anything else ends the run (its
            // own required literals still count, as every part of a concatenation matches).
            let mut run: Vec<u8> = Vec::new();
            for part in parts {
                if let HirKind::Literal(lit) = part.kind() {
                    run.extend_from_slice(&lit.0);
                } else {
                    push_literal(&run, out);
                    run.clear();
                    required_literals(part, out);
                }
            }
            push_literal(&run, out);
        }
        _ => {}
    }
}

fn push_literal(bytes: &[u8], out: &mut Vec<String>) {
    if let Ok(s) = std::str::from_utf8(bytes)
        && !s.is_empty()
    {
        out.push(s.to_string());
    }
}

/// How a `|=` needle narrows the candidates.
pub enum NeedlePushdown {
    /// Cheap clauses, all required (exact terms, or a prefix range); empty when the needle
    /// offers no sound clause (then only verification filters).
    Cheap(Vec<Box<dyn Query>>),
    /// Only a walk over the whole term dictionary is sound: the needle is the tail or the
    /// inside of a token. The walk costs about as much as the dictionary is large, so the
    /// store defers it (see `cursor.rs`).
    Walk(Box<dyn Query>),
}

/// The cheapest sound way to narrow the lines that contain `needle`.
pub fn contains_pushdown(field: Field, needle: &str) -> NeedlePushdown {
    let tokens = needle_tokens(needle);
    let exact: Vec<&String> = tokens
        .iter()
        .filter_map(|t| match t {
            TokenMatch::Exact(s) => Some(s),
            _ => None,
        })
        .collect();
    // Exact terms alone narrow the candidates enough; dictionary walks would only add cost.
    if !exact.is_empty() {
        return NeedlePushdown::Cheap(
            exact
                .into_iter()
                .map(|s| {
                    Box::new(TermQuery::new(
                        Term::from_field_text(field, s),
                        IndexRecordOption::Basic,
                    )) as Box<dyn Query>
                })
                .collect(),
        );
    }
    let cheapest = tokens
        .iter()
        .min_by_key(|t| match t {
            TokenMatch::Exact(_) => 0,
            TokenMatch::Prefix(_) => 1,
            TokenMatch::Suffix(_) => 2,
            TokenMatch::Infix(_) => 3,
        })
        .cloned();
    let pattern = match cheapest {
        None | Some(TokenMatch::Exact(_)) => return NeedlePushdown::Cheap(Vec::new()),
        // A prefix is a key range of the sorted term dictionary: a seek, no automaton.
        Some(TokenMatch::Prefix(s)) => return NeedlePushdown::Cheap(vec![prefix_range(field, &s)]),
        Some(TokenMatch::Suffix(s)) => format!(".*{}", regex_escape(&s)),
        Some(TokenMatch::Infix(s)) => format!(".*{}.*", regex_escape(&s)),
    };
    match RegexQuery::from_pattern(&pattern, field) {
        Ok(q) => NeedlePushdown::Walk(Box::new(q)),
        // An unbuildable automaton only loses the pushdown, never results.
        Err(_) => NeedlePushdown::Cheap(Vec::new()),
    }
}

/// Terms of `field` that start with `prefix`: `[prefix, successor)`, where the successor is
/// the smallest byte string greater than every extension of the prefix.
fn prefix_range(field: Field, prefix: &str) -> Box<dyn Query> {
    let mut upper = prefix.as_bytes().to_vec();
    while upper.last() == Some(&0xff) {
        upper.pop();
    }
    let upper_bound = match upper.last_mut() {
        Some(last) => {
            *last += 1;
            let mut term = Term::from_field_text(field, "");
            term.append_bytes(&upper);
            Bound::Excluded(term)
        }
        None => Bound::Unbounded,
    };
    Box::new(RangeQuery::new(
        Bound::Included(Term::from_field_text(field, prefix)),
        upper_bound,
    ))
}

fn regex_escape(token: &str) -> String {
    let mut out = String::with_capacity(token.len());
    for c in token.chars() {
        if c.is_ascii_alphanumeric() || !c.is_ascii() {
            out.push(c);
        } else {
            out.push('\\');
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_literals_are_the_required_runs() {
        let lits = |p: &str| {
            let mut out = Vec::new();
            required_literals(&regex_syntax::Parser::new().parse(p).unwrap(), &mut out);
            out
        };
        assert_eq!(
            lits("timeout after [0-9]{4,}ms"),
            vec!["timeout after ", "ms"]
        );
        assert_eq!(lits("(GET|POST) /api/(v1)+/x"), vec![" /api/", "v1", "/x"]);
        assert!(lits("error|warn").is_empty());
        assert!(
            lits("(?i)error").is_empty(),
            "case-folded classes are not literals"
        );
        assert_eq!(lits("^status=5[0-9]{2}$"), vec!["status=5"]);
    }

    #[test]
    fn needle_tokens_know_which_ends_are_open() {
        use TokenMatch::*;
        assert_eq!(needle_tokens("error"), vec![Infix("error".into())]);
        assert_eq!(needle_tokens(" Error "), vec![Exact("error".into())]);
        assert_eq!(
            needle_tokens("connection refused by db-1"),
            vec![
                Suffix("connection".into()),
                Exact("refused".into()),
                Exact("by".into()),
                Exact("db".into()),
                Prefix("1".into()),
            ]
        );
        assert_eq!(needle_tokens("user="), vec![Suffix("user".into())]);
        assert!(needle_tokens("=:").is_empty());
    }
}
