//! Label matchers: `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`, the one type both
//! query languages use to select series and streams and both stores use to answer them.
//!
//! Semantics are Prometheus's and Loki's (they agree): an absent label matches as the empty
//! string, and regexes are fully anchored (`^(?s:re)$`). The regex is compiled once, when
//! the matcher is built, so matching never fails and never recompiles.

use crate::Labels;

/// Compiled size at most of a matcher's regex (the `regex` crate's `size_limit`): a
/// selector is user input, and a pathological regex must fail to build rather than take a
/// query thread's memory.
const REGEX_SIZE_LIMIT: usize = 1 << 22;

/// RE2's `maxRepeat` (Go's `regexp/syntax`): Prometheus and Loki refuse a regex repeating
/// anything more often (`invalid repeat count`). Rust's `regex` compiles far larger counts
/// up to its size limit, at a cost of tens of milliseconds each (found by fuzzing).
pub const MAX_REPEAT: u32 = 1000;

/// The largest repetition count in `re` (0 if none), or `None` if it does not parse (the
/// compiler will say why). A regex that parses only once its literal braces are escaped
/// is read that way, as Go's RE2 reads it and as `promql-parser` compiles it: `x{{.{9999}`
/// passed this check unread and cost 300 ms to compile (found by fuzzing).
pub fn largest_repeat(re: &str) -> Option<u32> {
    // Read as the callers compile it, inside a group (`^(?s:re)$`): `a){99999}(` is valid
    // there and nowhere else (found by fuzzing).
    let parse = |re: &str| {
        regex_syntax::ast::parse::Parser::new()
            .parse(&format!("(?:{re})"))
            .ok()
    };
    let ast = parse(re).or_else(|| parse(&escape_literal_braces(re)))?;
    struct Largest(u32);
    impl regex_syntax::ast::Visitor for Largest {
        type Output = u32;
        type Err = ();
        fn finish(self) -> Result<u32, ()> {
            Ok(self.0)
        }
        fn visit_pre(&mut self, ast: &regex_syntax::ast::Ast) -> Result<(), ()> {
            if let regex_syntax::ast::Ast::Repetition(r) = ast
                && let regex_syntax::ast::RepetitionKind::Range(range) = &r.op.kind
            {
                let n = match *range {
                    regex_syntax::ast::RepetitionRange::Exactly(n)
                    | regex_syntax::ast::RepetitionRange::AtLeast(n) => n,
                    regex_syntax::ast::RepetitionRange::Bounded(a, b) => a.max(b),
                };
                self.0 = self.0.max(n);
            }
            Ok(())
        }
    }
    regex_syntax::ast::visit(&ast, Largest(0)).ok()
}

/// `re` with every `{` that does not open a counted repetition (`{n}`, `{n,}`, `{n,m}`)
/// escaped: RE2 reads such a brace as a literal, Rust's regex parser refuses it.
pub(crate) fn escape_literal_braces(re: &str) -> String {
    let mut out = String::with_capacity(re.len() + 8);
    let mut chars = re.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some((_, next)) = chars.next() {
                    out.push(next);
                }
            }
            '{' if !opens_repetition(&re[i + 1..]) => out.push_str("\\{"),
            _ => out.push(c),
        }
    }
    out
}

/// Whether `rest` (what follows a `{`) is `n}`, `n,}` or `n,m}` with decimal `n`, `m`.
fn opens_repetition(rest: &str) -> bool {
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let n = digits(rest);
    if n == 0 {
        return false;
    }
    let rest = &rest[n..];
    if rest.starts_with('}') {
        return true;
    }
    let Some(rest) = rest.strip_prefix(',') else {
        return false;
    };
    rest[digits(rest)..].starts_with('}')
}

/// How a [`LabelMatcher`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl MatchOp {
    /// The operator as written in a query.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One label matcher of a selector (`name="v"`, `!=`, `=~`, `!~`), also LogQL's string label
/// filter. Equality compares name, operator and value as written, not the compiled regex.
#[derive(Debug, Clone)]
pub struct LabelMatcher {
    /// The label name.
    pub name: String,
    pub op: MatchOp,
    /// The value or, for `=~`/`!~`, the regex as written.
    pub value: String,
    /// Compiled for `=~`/`!~`, fully anchored.
    regex: Option<Compiled>,
}

/// A matcher's compiled regex. Without the `regex` crate's literal prefilter: a label value
/// is matched whole (anchored), where a prefilter saves little, and building one can cost
/// far more than the rest: a 189-byte regex whose optional characters multiply into 196
/// long literals took 143 ms to build its Aho-Corasick DFA, 0.3 ms without (found by
/// fuzzing).
#[derive(Debug, Clone)]
enum Compiled {
    Lean(regex_automata::meta::Regex),
    /// Should the lean build refuse a regex that `regex` accepts.
    Full(regex::Regex),
}

impl Compiled {
    fn new(value: &str) -> Result<Compiled, regex::Error> {
        if let Some(n) = largest_repeat(value).filter(|&n| n > MAX_REPEAT) {
            return Err(regex::Error::Syntax(format!(
                "regex parse error:\n    {value}\nerror: invalid repeat count {n} (at most {MAX_REPEAT}, as in Prometheus and Loki)"
            )));
        }
        crate::regex_cost::check_fold_work(value).map_err(|e| {
            regex::Error::Syntax(format!("regex parse error:\n    {value}\nerror: {e}"))
        })?;
        let pattern = &format!("^(?s:{value})$");
        let lean = regex_automata::meta::Builder::new()
            .configure(
                regex_automata::meta::Config::new()
                    .auto_prefilter(false)
                    .nfa_size_limit(Some(REGEX_SIZE_LIMIT)),
            )
            .build(pattern);
        match lean {
            Ok(re) => Ok(Compiled::Lean(re)),
            // Over the size limit: compiling again would cost as much.
            Err(e) if e.size_limit().is_some() => Err(regex::Error::CompiledTooBig(
                e.size_limit().unwrap_or(REGEX_SIZE_LIMIT),
            )),
            // `regex`'s own error, as users of `regex` expect it (a build that fails
            // does so before any prefilter is made).
            Err(_) => regex::RegexBuilder::new(pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map(Compiled::Full),
        }
    }

    fn is_match(&self, value: &str) -> bool {
        match self {
            Compiled::Lean(re) => re.is_match(value),
            Compiled::Full(re) => re.is_match(value),
        }
    }
}

impl LabelMatcher {
    /// A matcher; fails only on an invalid (or too large) regex.
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Self, regex::Error> {
        let value = value.into();
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(Compiled::new(&value)?),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Self {
            name: name.into(),
            op,
            value,
            regex,
        })
    }

    /// Whether a label value (`""` when the label is absent) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// Whether the matcher accepts the empty string (so it also selects series without the
    /// label).
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// Whether a label set satisfies the matcher (an absent label counts as empty).
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }
}

impl PartialEq for LabelMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl std::fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_counted_where_literal_braces_keep_the_regex_from_parsing() {
        assert_eq!(largest_repeat("a{2,5}b{7}"), Some(7));
        // RE2 reads the first braces as literals; the counted one still counts.
        assert_eq!(largest_repeat("x{{{.{66666}{{"), Some(66666));
        assert_eq!(largest_repeat("a{b}c{,2}d{3,}"), Some(3));
        assert_eq!(largest_repeat(r"\{9999}"), Some(0));
        assert_eq!(largest_repeat("(unclosed"), None);
        // Valid only inside the group the matcher compiles it in (found by fuzzing).
        assert_eq!(largest_repeat("a)3{33333333}(b"), Some(33333333));
        assert_eq!(escape_literal_braces("a{1,2}{x}{"), r"a{1,2}\{x}\{");
    }

    fn m(name: &str, op: MatchOp, value: &str) -> LabelMatcher {
        LabelMatcher::new(name, op, value).unwrap()
    }

    #[test]
    fn matchers_follow_prometheus() {
        let l = Labels::from_pairs([("job", "api"), ("__name__", "up")]);
        assert!(m("job", MatchOp::Regex, "a.*").matches_labels(&l));
        assert!(
            !m("job", MatchOp::Regex, "p").matches_labels(&l),
            "anchored"
        );
        assert!(
            m("zone", MatchOp::Equal, "").matches_labels(&l),
            "absent is empty"
        );
        assert!(m("zone", MatchOp::NotRegex, ".+").matches_labels(&l));
        assert!(!m("job", MatchOp::NotEqual, "api").matches_labels(&l));
        assert!(LabelMatcher::new("a", MatchOp::Regex, "(").is_err());
    }

    #[test]
    fn regexes_are_fully_anchored_and_absent_is_empty() {
        let re = m("app", MatchOp::Regex, "api|web");
        assert!(re.matches("api"));
        assert!(!re.matches("api2"));
        assert!(!re.matches("my-api"));
        let nre = m("app", MatchOp::NotRegex, "a.*");
        assert!(nre.matches("b"));
        assert!(!nre.matches("abc"));
        assert!(m("env", MatchOp::NotEqual, "prod").matches_labels(&Labels::default()));
        assert!(m("env", MatchOp::Equal, "").matches_labels(&Labels::from_pairs([("app", "x")])));
        assert!(
            m("msg", MatchOp::Regex, "a.b").matches("a\nb"),
            "dot matches newline"
        );
    }

    #[test]
    fn display_is_the_query_text() {
        assert_eq!(
            m("job", MatchOp::NotRegex, "a\"b").to_string(),
            r#"job!~"a\"b""#
        );
        assert_eq!(MatchOp::Equal.as_str(), "=");
    }
}
