//! Splits a query into tokens with their 1-based line and column (in characters).
//!
//! The lexer follows Tempo's: attribute names after `.`, `span.`, `resource.`, … run until a
//! blank or one of `{}()=~!<>&|^,` (so `.http.status_code` is one name, `."a b"` a quoted
//! one); a number directly followed by a unit (`1.5s`, `1h30m`) is a duration; `span:`,
//! `trace:`, `event:`, `link:` and `instrumentation:` introduce scoped intrinsics.

use crate::error::{Pos, TraceQlError};

/// Where an attribute name was written to be looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttrScope {
    Unscoped,
    Span,
    Resource,
    Instrumentation,
    Event,
    Link,
    /// `parent.x`, `parent.span.x`, `parent.resource.x`.
    Parent,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    LBrace,
    RBrace,
    LParen,
    RParen,
    Comma,
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `=~`
    Re,
    /// `!~`: not-regex inside braces, not-sibling between spansets.
    Nre,
    Gt,
    Ge,
    Lt,
    Le,
    /// `>>`
    Desc,
    /// `<<`
    Ance,
    /// `~`
    Tilde,
    /// `!>`
    NotChild,
    /// `!<`
    NotParent,
    /// `!>>`
    NotDesc,
    /// `!<<`
    NotAnce,
    /// `&>`
    UnionChild,
    /// `&<`
    UnionParent,
    /// `&>>`
    UnionDesc,
    /// `&<<`
    UnionAnce,
    /// `&~`
    UnionSibling,
    /// `&&`
    And,
    /// `||`
    Or,
    /// `|`
    Pipe,
    /// `!`
    Not,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Int(i64),
    Float(f64),
    /// In nanoseconds.
    Duration(i64),
    Str(String),
    Ident(String),
    Attribute {
        scope: AttrScope,
        name: String,
    },
    /// `span:id`: the scope word and the intrinsic's name.
    ScopedIntrinsic {
        scope: String,
        name: String,
    },
    Eof,
}

impl Tok {
    /// How an error message names the token.
    pub(crate) fn describe(&self) -> String {
        let text = match self {
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Comma => ",",
            Tok::Eq => "=",
            Tok::Neq => "!=",
            Tok::Re => "=~",
            Tok::Nre => "!~",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Desc => ">>",
            Tok::Ance => "<<",
            Tok::Tilde => "~",
            Tok::NotChild => "!>",
            Tok::NotParent => "!<",
            Tok::NotDesc => "!>>",
            Tok::NotAnce => "!<<",
            Tok::UnionChild => "&>",
            Tok::UnionParent => "&<",
            Tok::UnionDesc => "&>>",
            Tok::UnionAnce => "&<<",
            Tok::UnionSibling => "&~",
            Tok::And => "&&",
            Tok::Or => "||",
            Tok::Pipe => "|",
            Tok::Not => "!",
            Tok::Add => "+",
            Tok::Sub => "-",
            Tok::Mul => "*",
            Tok::Div => "/",
            Tok::Mod => "%",
            Tok::Pow => "^",
            Tok::Int(_) => "integer",
            Tok::Float(_) => "float",
            Tok::Duration(_) => "duration",
            Tok::Str(_) => "string",
            Tok::Ident(word) => return format!("`{word}`"),
            Tok::Attribute { .. } => "attribute",
            Tok::ScopedIntrinsic { scope, name } => return format!("`{scope}:{name}`"),
            Tok::Eof => "end of query",
        };
        text.to_string()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: Pos,
}

/// Whether `c` may continue an unquoted attribute name (Tempo's rule).
pub(crate) fn is_attribute_char(c: char) -> bool {
    !c.is_whitespace()
        && !matches!(
            c,
            '{' | '}' | '(' | ')' | '=' | '~' | '!' | '<' | '>' | '&' | '|' | '^' | ',' | '"'
        )
}

/// Tokenizes the whole query; the last token is always [`Tok::Eof`].
pub(crate) fn tokenize(input: &str) -> Result<Vec<Token>, TraceQlError> {
    let mut lexer = Lexer {
        chars: input.chars().collect(),
        pos: 0,
        line: 1,
        column: 1,
    };
    let mut tokens = Vec::new();
    loop {
        while lexer.peek().is_some_and(char::is_whitespace) {
            lexer.bump();
        }
        let pos = lexer.position();
        let Some(c) = lexer.peek() else {
            tokens.push(Token { tok: Tok::Eof, pos });
            return Ok(tokens);
        };
        let tok = lexer
            .token(c)
            .map_err(|message| TraceQlError::syntax(pos, message))?;
        tokens.push(Token { tok, pos });
    }
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    column: usize,
}

impl Lexer {
    fn position(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn token(&mut self, c: char) -> Result<Tok, String> {
        let next = self.peek_at(1);
        let after = self.peek_at(2);
        let (tok, len) = match (c, next, after) {
            ('{', _, _) => (Tok::LBrace, 1),
            ('}', _, _) => (Tok::RBrace, 1),
            ('(', _, _) => (Tok::LParen, 1),
            (')', _, _) => (Tok::RParen, 1),
            (',', _, _) => (Tok::Comma, 1),
            ('=', Some('~'), _) => (Tok::Re, 2),
            ('=', _, _) => (Tok::Eq, 1),
            ('!', Some('='), _) => (Tok::Neq, 2),
            ('!', Some('~'), _) => (Tok::Nre, 2),
            ('!', Some('>'), Some('>')) => (Tok::NotDesc, 3),
            ('!', Some('>'), _) => (Tok::NotChild, 2),
            ('!', Some('<'), Some('<')) => (Tok::NotAnce, 3),
            ('!', Some('<'), _) => (Tok::NotParent, 2),
            ('!', _, _) => (Tok::Not, 1),
            ('&', Some('&'), _) => (Tok::And, 2),
            ('&', Some('>'), Some('>')) => (Tok::UnionDesc, 3),
            ('&', Some('>'), _) => (Tok::UnionChild, 2),
            ('&', Some('<'), Some('<')) => (Tok::UnionAnce, 3),
            ('&', Some('<'), _) => (Tok::UnionParent, 2),
            ('&', Some('~'), _) => (Tok::UnionSibling, 2),
            ('|', Some('|'), _) => (Tok::Or, 2),
            ('|', _, _) => (Tok::Pipe, 1),
            ('>', Some('='), _) => (Tok::Ge, 2),
            ('>', Some('>'), _) => (Tok::Desc, 2),
            ('>', _, _) => (Tok::Gt, 1),
            ('<', Some('='), _) => (Tok::Le, 2),
            ('<', Some('<'), _) => (Tok::Ance, 2),
            ('<', _, _) => (Tok::Lt, 1),
            ('~', _, _) => (Tok::Tilde, 1),
            ('+', _, _) => (Tok::Add, 1),
            ('-', _, _) => (Tok::Sub, 1),
            ('*', _, _) => (Tok::Mul, 1),
            ('/', _, _) => (Tok::Div, 1),
            ('%', _, _) => (Tok::Mod, 1),
            ('^', _, _) => (Tok::Pow, 1),
            ('"' | '`', _, _) => return self.string().map(Tok::Str),
            ('.', Some(d), _) if d.is_ascii_digit() => return self.number(),
            ('.', _, _) => {
                self.bump();
                return self.attribute_name(AttrScope::Unscoped);
            }
            (d, _, _) if d.is_ascii_digit() => return self.number(),
            (a, _, _) if a.is_alphabetic() || a == '_' => return self.word(),
            _ => return Err(format!("syntax error: unexpected character {c:?}")),
        };
        for _ in 0..len {
            self.bump();
        }
        Ok(tok)
    }

    fn identifier(&mut self) -> String {
        let mut word = String::new();
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            word.push(c);
            self.bump();
        }
        word
    }

    /// A keyword or name; `span.` and friends start an attribute, `span:` and friends a
    /// scoped intrinsic.
    fn word(&mut self) -> Result<Tok, String> {
        let word = self.identifier();
        match (word.as_str(), self.peek()) {
            ("span" | "resource" | "instrumentation" | "event" | "link" | "parent", Some('.')) => {
                self.bump();
                let scope = match word.as_str() {
                    "span" => AttrScope::Span,
                    "resource" => AttrScope::Resource,
                    "instrumentation" => AttrScope::Instrumentation,
                    "event" => AttrScope::Event,
                    "link" => AttrScope::Link,
                    _ => {
                        // `parent.span.x` and `parent.resource.x` name the parent's scope.
                        for prefix in ["span.", "resource."] {
                            let ahead: String =
                                (0..prefix.len()).filter_map(|i| self.peek_at(i)).collect();
                            if ahead == prefix {
                                for _ in 0..prefix.len() {
                                    self.bump();
                                }
                            }
                        }
                        AttrScope::Parent
                    }
                };
                self.attribute_name(scope)
            }
            ("span" | "trace" | "event" | "link" | "instrumentation", Some(':')) => {
                self.bump();
                let name = self.identifier();
                if name.is_empty() {
                    return Err(format!(
                        "syntax error: expecting an intrinsic after {word}:"
                    ));
                }
                Ok(Tok::ScopedIntrinsic { scope: word, name })
            }
            _ => Ok(Tok::Ident(word)),
        }
    }

    /// The name after `.` or a scope: quoted, or up to the first character that ends it.
    fn attribute_name(&mut self, scope: AttrScope) -> Result<Tok, String> {
        let name = if self.peek() == Some('"') {
            self.string()?
        } else {
            let mut name = String::new();
            while let Some(c) = self.peek().filter(|c| is_attribute_char(*c)) {
                name.push(c);
                self.bump();
            }
            name
        };
        if name.is_empty() {
            return Err("syntax error: expecting an attribute name after `.`".to_string());
        }
        Ok(Tok::Attribute { scope, name })
    }

    /// An integer, a float, or (directly followed by a unit) a duration.
    fn number(&mut self) -> Result<Tok, String> {
        let mut text = String::new();
        let mut is_float = false;
        while let Some(c) = self.peek() {
            let exponent_sign =
                (c == '+' || c == '-') && text.ends_with(['e', 'E']) && !text.starts_with("0x");
            if c.is_ascii_digit() || exponent_sign {
                text.push(c);
            } else if (c == '.' && !is_float)
                || ((c == 'e' || c == 'E')
                    && !text.contains(['e', 'E'])
                    && self
                        .peek_at(1)
                        .is_some_and(|n| n.is_ascii_digit() || n == '+' || n == '-'))
            {
                is_float = true;
                text.push(c);
            } else {
                break;
            }
            self.bump();
        }
        if self.peek().is_some_and(is_duration_char) {
            while let Some(c) = self
                .peek()
                .filter(|c| c.is_ascii_digit() || *c == '.' || is_duration_char(*c))
            {
                text.push(c);
                self.bump();
            }
            return parse_duration_ns(&text)
                .map(Tok::Duration)
                .ok_or_else(|| format!("syntax error: invalid duration {text:?}"));
        }
        if is_float {
            match text.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Tok::Float(v)),
                _ => Err(format!("syntax error: invalid number {text:?}")),
            }
        } else {
            text.parse::<i64>()
                .map(Tok::Int)
                .map_err(|_| format!("syntax error: integer {text} is out of range"))
        }
    }

    /// A string literal (double-quoted with Go's escapes, or backquoted and raw), read
    /// whole and unquoted by `sightline_model::go_string`.
    fn string(&mut self) -> Result<String, String> {
        let len = sightline_model::go_string::literal_len(&self.chars[self.pos..])
            .ok_or("syntax error: string literal not terminated")?;
        let raw: String = self.chars[self.pos..self.pos + len].iter().collect();
        for _ in 0..len {
            self.bump();
        }
        sightline_model::go_string::unquote(&raw).map_err(|e| format!("syntax error: {e}"))
    }
}

fn is_duration_char(c: char) -> bool {
    matches!(c, 'n' | 's' | 'u' | 'm' | 'h' | 'µ' | 'μ' | 'd' | 'w' | 'y')
}

/// Nanoseconds in each unit, longest spelling first so that `ms` wins over `m`.
const UNITS: &[(&str, i128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
    ("w", 604_800_000_000_000),
    ("y", 31_536_000_000_000_000),
];

/// Go's and Prometheus's duration syntax together: one or more `<number><unit>` with
/// `ns us µs ms s m h d w y`, fractions allowed (`1.5s`, `1h30m`). `None` when malformed or
/// beyond the range of `i64` nanoseconds.
pub(crate) fn parse_duration_ns(text: &str) -> Option<i64> {
    let mut rest = text;
    let mut total: i128 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let (unit, scale) = UNITS
            .iter()
            .filter(|(unit, _)| after.starts_with(unit))
            .max_by_key(|(unit, _)| unit.len())?;
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut value = whole.checked_mul(*scale)?;
        if !fraction.is_empty() {
            // Digits past the 18th are below a nanosecond at every unit (the largest scale
            // is an hour, 3.6e12 ns), and 18 digits times that scale fits an i128.
            let digits = fraction.len().min(18) as u32;
            let fraction_value: i128 = fraction[..digits as usize].parse().ok()?;
            value += fraction_value.checked_mul(*scale)? / 10i128.checked_pow(digits)?;
        }
        total = total.checked_add(value)?;
        rest = &after[unit.len()..];
    }
    i64::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(input: &str) -> Vec<Tok> {
        tokenize(input)
            .unwrap()
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn lexes_attributes_operators_and_literals() {
        use Tok::*;
        assert_eq!(
            toks(r#"{ .http.status_code >= 500 && span."a b" =~ "x" } !>> { resource.k != 1.5 }"#),
            vec![
                LBrace,
                Attribute {
                    scope: AttrScope::Unscoped,
                    name: "http.status_code".into()
                },
                Ge,
                Int(500),
                And,
                Attribute {
                    scope: AttrScope::Span,
                    name: "a b".into()
                },
                Re,
                Str("x".into()),
                RBrace,
                NotDesc,
                LBrace,
                Attribute {
                    scope: AttrScope::Resource,
                    name: "k".into()
                },
                Neq,
                Float(1.5),
                RBrace,
                Eof
            ]
        );
        assert_eq!(
            toks("span:id trace:duration &~ &<< | ||"),
            vec![
                ScopedIntrinsic {
                    scope: "span".into(),
                    name: "id".into()
                },
                ScopedIntrinsic {
                    scope: "trace".into(),
                    name: "duration".into()
                },
                UnionSibling,
                UnionAnce,
                Pipe,
                Or,
                Eof
            ]
        );
        let tokens = tokenize("{\n  name = \"x\" }").unwrap();
        assert_eq!((tokens[1].pos.line, tokens[1].pos.column), (2, 3));
    }

    #[test]
    fn lexes_durations_in_every_unit() {
        assert_eq!(toks("1ms")[0], Tok::Duration(1_000_000));
        assert_eq!(toks("1.5s")[0], Tok::Duration(1_500_000_000));
        assert_eq!(toks("1h30m")[0], Tok::Duration(5_400_000_000_000));
        assert_eq!(toks("3µs")[0], Tok::Duration(3_000));
        assert_eq!(toks("3us")[0], Tok::Duration(3_000));
        assert_eq!(toks("7ns")[0], Tok::Duration(7));
        assert_eq!(toks("2m")[0], Tok::Duration(120_000_000_000));
        assert!(tokenize("3mh5").is_err());
    }

    #[test]
    fn refuses_bad_literals_with_their_position() {
        let err = tokenize("{ .a = 100000000000000000000000 }").unwrap_err();
        assert_eq!(err.column, 8);
        assert!(tokenize(r#"{ .a = "abc }"#).is_err());
        assert!(tokenize("{ . }").is_err());
        assert!(tokenize("[ true ]").is_err());
        assert_eq!(
            toks(r#""a\"b\\c\n\x41\u00e9""#)[0],
            Tok::Str("a\"b\\c\nAé".into())
        );
    }
}
