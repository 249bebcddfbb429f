//! Alertmanager's label matchers: `name="value"`, `!=`, `=~`, `!~`, alone or as a set in
//! braces, as routes (`matchers:`), inhibition rules, silences and `amtool` write them.
//!
//! One parser accepts both of Alertmanager's syntaxes — the UTF-8 one of 0.27+ (quoted
//! names, `{…}` sets, trailing commas) and the classic one it falls back to (unquoted
//! values) — so a file accepted by either is accepted here. Regular expressions are
//! anchored at both ends (`^(?:…)$`), as Alertmanager anchors them.
//!
//! `sightline_model::LabelMatcher` is Prometheus's and Loki's matcher; it stays apart from
//! this one because the semantics differ where it shows: Prometheus compiles `(?s:…)` (`.`
//! matches a newline) where Alertmanager's RE2 does not, and Alertmanager sorts and prints
//! matchers (route keys, `amtool`) in its own way.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One label matcher. A label that is absent matches as the empty string.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    /// The anchored expression, for the two regex operators.
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl PartialOrd for Matcher {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Alertmanager's sort order: by name, then operator, then value.
impl Ord for Matcher {
    fn cmp(&self, other: &Self) -> Ordering {
        (&self.name, self.op, &self.value).cmp(&(&other.name, other.op, &other.value))
    }
}

/// Regular expressions are bounded like Prometheus's (RE2 has no backtracking either;
/// this bounds the compiled size a hostile silence or route can take).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl Matcher {
    /// Builds a matcher, compiling the anchored expression for the regex operators.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, String> {
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                sightline_model::check_fold_work(value)
                    .and_then(|()| {
                        regex::RegexBuilder::new(&format!("^(?:{value})$"))
                            .size_limit(REGEX_SIZE_LIMIT)
                            .build()
                            .map_err(|e| e.to_string())
                    })
                    .map_err(|e| format!("invalid regular expression {value:?}: {e}"))?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name: name.to_owned(),
            op,
            value: value.to_owned(),
            regex,
        })
    }

    /// Whether `value` (a label's value, `""` when absent) satisfies the matcher.
    pub fn matches_value(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// Whether the label set satisfies the matcher.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_value(labels.get(&self.name).map_or("", String::as_str))
    }

    /// Whether the matcher matches the empty string (then it also matches an absent label,
    /// which makes a silence or a route with only such matchers match everything).
    pub fn matches_empty(&self) -> bool {
        self.matches_value("")
    }
}

/// `name="value"`, the name quoted when it is not a classic label name, the value quoted
/// as Go's `%q` does.
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_classic_name(&self.name) {
            f.write_str(&self.name)?;
        } else {
            f.write_str(&go_quote(&self.name))?;
        }
        write!(f, "{}{}", self.op.as_str(), go_quote(&self.value))
    }
}

/// A set of matchers, all of which must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matchers(pub Vec<Matcher>);

impl Matchers {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|m| m.matches(labels))
    }

    /// Sorts as Alertmanager does before printing a route's key.
    pub fn sorted(mut self) -> Matchers {
        self.0.sort();
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `{a="1",b=~"x"}`, as in route keys.
impl fmt::Display for Matchers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str("}")
    }
}

/// Whether `name` is a label name of the classic syntax, `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_classic_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Quotes like Go's `strconv.Quote`: `"`, `\` and control characters escaped.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Parses one matcher or a set: `a="1"`, `{a="1", b!~"x.*"}`, `a=1` (an unquoted value,
/// the classic syntax), `"a b"="1"` (a quoted name). Errors say what is wrong and where.
pub fn parse_matchers(input: &str) -> Result<Matchers, String> {
    let text = input.trim();
    let inner = match (text.strip_prefix('{'), text.ends_with('}')) {
        (Some(rest), true) => &rest[..rest.len() - 1],
        (Some(_), false) => return Err(format!("{input:?}: missing closing '}}'")),
        (None, _) => text,
    };
    let mut matchers = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let (matcher, after) = parse_one(rest).map_err(|e| format!("{input:?}: {e}"))?;
        matchers.push(matcher);
        rest = after.trim_start();
        if let Some(after_comma) = rest.strip_prefix(',') {
            rest = after_comma.trim_start();
        } else if !rest.is_empty() {
            return Err(format!("{input:?}: expected ',' before {rest:?}"));
        }
    }
    if matchers.is_empty() && !text.starts_with('{') {
        return Err(format!("{input:?}: no matcher"));
    }
    Ok(Matchers(matchers))
}

/// Parses exactly one matcher (as `amtool silence add` arguments and the `matchers:`
/// entries of a config are).
pub fn parse_matcher(input: &str) -> Result<Matcher, String> {
    let mut set = parse_matchers(input)?;
    if set.0.len() != 1 {
        return Err(format!(
            "{input:?}: expected one matcher, found {}",
            set.0.len()
        ));
    }
    Ok(set.0.remove(0))
}

/// Parses a matcher from the start of `s`, returning it and what follows.
fn parse_one(s: &str) -> Result<(Matcher, &str), String> {
    let (name, rest) = if s.starts_with('"') {
        let (name, after) = read_quoted(s)?;
        (name, after.trim_start())
    } else {
        let end = s
            .find(['=', '!', '~', ',', '{', '}', '"'])
            .unwrap_or(s.len());
        let name = s[..end].trim_end();
        if name.is_empty() {
            return Err(format!("missing label name at {s:?}"));
        }
        if name.contains(char::is_whitespace) {
            return Err(format!("label name {name:?} contains whitespace"));
        }
        (name.to_owned(), &s[end..])
    };
    let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
        (MatchOp::Regex, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (MatchOp::NotEqual, r)
    } else if let Some(r) = rest.strip_prefix("!~") {
        (MatchOp::NotRegex, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (MatchOp::Equal, r)
    } else {
        return Err(format!(
            "expected an operator (=, !=, =~, !~) after {name:?}"
        ));
    };
    let rest = rest.trim_start();
    let (value, rest) = if rest.starts_with('"') {
        read_quoted(rest)?
    } else {
        // The classic syntax's unquoted value runs to the next comma (or the end).
        let end = rest.find(',').unwrap_or(rest.len());
        let value = rest[..end].trim_end();
        if value.contains(['"', '{', '}']) {
            return Err(format!("unexpected character in unquoted value {value:?}"));
        }
        (value.to_owned(), &rest[end..])
    };
    Ok((Matcher::new(&name, op, &value)?, rest))
}

/// Reads a double-quoted string with Go's escapes from the start of `s`.
fn read_quoted(s: &str) -> Result<(String, &str), String> {
    let body = &s[1..];
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &body[i + 1..])),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, '\'')) => out.push('\''),
                // Kept as written: `\.` and friends in regex values mean the regex escape.
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(format!("unterminated quoted string {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sets_single_matchers_and_both_syntaxes_parse_alike() {
        let set = parse_matchers(r#"{owner="team-A", level!="critical",}"#).unwrap();
        assert_eq!(set.to_string(), r#"{owner="team-A",level!="critical"}"#);
        assert_eq!(
            set.sorted().to_string(),
            r#"{level!="critical",owner="team-A"}"#
        );
        assert_eq!(
            parse_matchers(r#"env=~"produ.*""#).unwrap().to_string(),
            r#"{env=~"produ.*"}"#
        );
        assert_eq!(
            parse_matchers("severity=page").unwrap().to_string(),
            r#"{severity="page"}"#
        );
        assert_eq!(
            parse_matchers(r#""service name"="a\"b""#)
                .unwrap()
                .to_string(),
            r#"{"service name"="a\"b"}"#
        );
        assert_eq!(parse_matchers("{}").unwrap().0.len(), 0);
    }

    #[test]
    fn bad_matchers_are_refused_with_what_is_wrong() {
        for (input, wanted) in [
            ("foo", "operator"),
            ("=bar", "missing label name"),
            (r#"{a="1""#, "closing"),
            (r#"a="1" b="2""#, "expected ','"),
            (r#"a=~"(""#, "regular expression"),
            (r#"a="x"#, "unterminated"),
            ("", "no matcher"),
        ] {
            let err = parse_matchers(input).unwrap_err();
            assert!(err.contains(wanted), "{input}: {err}");
        }
    }

    #[test]
    fn regexes_are_anchored_and_absent_labels_match_as_empty() {
        let m = parse_matcher(r#"job=~"api|web""#).unwrap();
        assert!(m.matches(&labels(&[("job", "api")])));
        assert!(!m.matches(&labels(&[("job", "api-2")])));
        let not = parse_matcher(r#"baz!~".*quux""#).unwrap();
        assert!(not.matches(&labels(&[])));
        assert!(!not.matches(&labels(&[("baz", "aquux")])));
        let ne = parse_matcher(r#"level!="critical""#).unwrap();
        assert!(ne.matches(&labels(&[])));
        assert!(parse_matcher(r#"a=~".*""#).unwrap().matches_empty());
        assert!(!parse_matcher(r#"a=~".+""#).unwrap().matches_empty());
    }

    #[test]
    fn values_print_quoted_as_go_does() {
        assert_eq!(go_quote("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\x01""#);
    }
}
