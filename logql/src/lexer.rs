//! Splits a query into tokens with their 1-based line and column (in characters).
//!
//! Token names in error messages follow Loki's yacc grammar: literal classes are written as
//! `IDENTIFIER`, `STRING`, `NUMBER`, `DURATION`, `RANGE`, the end as `$end`, and keywords and
//! punctuation as their own text.

use crate::duration::parse_duration_ns;
use crate::parser::ParseError;

/// Words that Loki's lexer treats as keywords; errors print them as themselves.
const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "offset",
    "and",
    "or",
    "unless",
    "json",
    "logfmt",
    "line_format",
    "label_format",
    "unwrap",
    "regexp",
    "pattern",
    "unpack",
    "drop",
    "keep",
    "decolorize",
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "topk",
    "bottomk",
    "stddev",
    "stdvar",
    "sort",
    "sort_desc",
    "count_over_time",
    "rate",
    "bytes_over_time",
    "bytes_rate",
    "bool",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Whether Loki's lexer treats `word` as a keyword rather than an identifier.
pub(crate) fn is_keyword(word: &str) -> bool {
    KEYWORDS.contains(&word)
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    LBrace,
    RBrace,
    LParen,
    RParen,
    Comma,
    /// `=`
    Eq,
    /// `==`
    EqEq,
    /// `!=`
    Neq,
    /// `=~`
    Re,
    /// `!~`
    Nre,
    Gt,
    Ge,
    Lt,
    Le,
    /// `|=`
    PipeExact,
    /// `|~`
    PipeMatch,
    /// `|`
    Pipe,
    /// `+ - * / % ^`. A sign is never part of a number: the parser reads `-1` as `-` and
    /// `1`, as Loki's grammar does, so that `x-1` is a subtraction.
    Arithmetic(char),
    Str(String),
    Number(f64),
    /// A duration literal, in nanoseconds.
    Duration(i64),
    /// `[5m]`, in nanoseconds.
    Range(i64),
    Ident(String),
    Eof,
}

impl TokenKind {
    /// How an error message names the token.
    pub(crate) fn describe(&self) -> String {
        let text = match self {
            TokenKind::LBrace => "{",
            TokenKind::RBrace => "}",
            TokenKind::LParen => "(",
            TokenKind::RParen => ")",
            TokenKind::Comma => ",",
            TokenKind::Eq => "=",
            TokenKind::EqEq => "==",
            TokenKind::Neq => "!=",
            TokenKind::Re => "=~",
            TokenKind::Nre => "!~",
            TokenKind::Gt => ">",
            TokenKind::Ge => ">=",
            TokenKind::Lt => "<",
            TokenKind::Le => "<=",
            TokenKind::PipeExact => "|=",
            TokenKind::PipeMatch => "|~",
            TokenKind::Pipe => "|",
            TokenKind::Arithmetic(c) => return c.to_string(),
            TokenKind::Str(_) => "STRING",
            TokenKind::Number(_) => "NUMBER",
            TokenKind::Duration(_) => "DURATION",
            TokenKind::Range(_) => "RANGE",
            TokenKind::Ident(word) if is_keyword(word) => return word.clone(),
            TokenKind::Ident(_) => "IDENTIFIER",
            TokenKind::Eof => "$end",
        };
        text.to_string()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub line: usize,
    pub column: usize,
}

/// Tokenizes the whole query; the last token is always [`TokenKind::Eof`].
pub(crate) fn tokenize(input: &str) -> Result<Vec<Token>, ParseError> {
    let mut lexer = Lexer {
        chars: input.chars().collect(),
        pos: 0,
        line: 1,
        column: 1,
    };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_blanks_and_comments();
        let (line, column) = (lexer.line, lexer.column);
        let Some(c) = lexer.peek() else {
            tokens.push(Token {
                kind: TokenKind::Eof,
                line,
                column,
            });
            return Ok(tokens);
        };
        let kind = lexer
            .token(c)
            .map_err(|message| ParseError::new(line, column, message))?;
        tokens.push(Token { kind, line, column });
    }
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    column: usize,
}

impl Lexer {
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

    /// Whitespace and `#` comments (to the end of the line), which Loki also accepts.
    fn skip_blanks_and_comments(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.bump();
            } else if c == '#' {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.bump();
                }
            } else {
                break;
            }
        }
    }

    /// Lexes one token starting at `c`; the error message is positioned at its start.
    fn token(&mut self, c: char) -> Result<TokenKind, String> {
        let next = self.peek_at(1);
        let (kind, len) = match (c, next) {
            ('{', _) => (TokenKind::LBrace, 1),
            ('}', _) => (TokenKind::RBrace, 1),
            ('(', _) => (TokenKind::LParen, 1),
            (')', _) => (TokenKind::RParen, 1),
            (',', _) => (TokenKind::Comma, 1),
            ('=', Some('=')) => (TokenKind::EqEq, 2),
            ('=', Some('~')) => (TokenKind::Re, 2),
            ('=', _) => (TokenKind::Eq, 1),
            ('!', Some('=')) => (TokenKind::Neq, 2),
            ('!', Some('~')) => (TokenKind::Nre, 2),
            ('|', Some('=')) => (TokenKind::PipeExact, 2),
            ('|', Some('~')) => (TokenKind::PipeMatch, 2),
            ('|', _) => (TokenKind::Pipe, 1),
            ('>', Some('=')) => (TokenKind::Ge, 2),
            ('>', _) => (TokenKind::Gt, 1),
            ('<', Some('=')) => (TokenKind::Le, 2),
            ('<', _) => (TokenKind::Lt, 1),
            ('"' | '`', _) => return self.string(),
            ('[', _) => return self.range(),
            ('.', Some(d)) if d.is_ascii_digit() => return self.number_or_duration(),
            (d, _) if d.is_ascii_digit() => return self.number_or_duration(),
            ('+' | '-' | '*' | '/' | '%' | '^', _) => (TokenKind::Arithmetic(c), 1),
            (a, _) if a.is_ascii_alphabetic() || a == '_' => return Ok(self.identifier()),
            _ => return Err(format!("syntax error: unexpected character {c:?}")),
        };
        for _ in 0..len {
            self.bump();
        }
        Ok(kind)
    }

    fn identifier(&mut self) -> TokenKind {
        let mut word = String::new();
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        {
            word.push(c);
            self.bump();
        }
        TokenKind::Ident(word)
    }

    /// A number (`42`, `1.5`, `.5`, `1e-3`, `2.5E+6`) or a duration (`250ms`, `1h30m`).
    fn number_or_duration(&mut self) -> Result<TokenKind, String> {
        let mut text = String::new();
        let mut has_unit = false;
        let mut has_exponent = false;
        while let Some(c) = self.peek() {
            // An exponent: `e` or `E`, an optional sign, a digit (no duration unit is `e…`).
            if matches!(c, 'e' | 'E') && !has_unit && !has_exponent {
                let digit_at = match self.peek_at(1) {
                    Some('+' | '-') => 2,
                    _ => 1,
                };
                if self.peek_at(digit_at).is_some_and(|d| d.is_ascii_digit()) {
                    for _ in 0..digit_at {
                        text.push(self.bump().unwrap_or('e'));
                    }
                    has_exponent = true;
                    continue;
                }
            }
            let is_unit = c.is_alphabetic() || c == 'µ' || c == 'μ';
            if !(c.is_ascii_digit() || c == '.' || is_unit) {
                break;
            }
            has_unit |= is_unit;
            text.push(c);
            self.bump();
        }
        if !has_unit {
            return text
                .parse::<f64>()
                .map(TokenKind::Number)
                .map_err(|_| format!("syntax error: invalid number {text:?}"));
        }
        if let Some(ns) = parse_duration_ns(&text) {
            return Ok(TokenKind::Duration(ns));
        }
        let unit = text.trim_start_matches(|c: char| c == '-' || c.is_ascii_digit() || c == '.');
        let byte_units = [
            "b", "kb", "kib", "mb", "mib", "gb", "gib", "tb", "tib", "pb", "pib",
        ];
        if byte_units.contains(&unit.to_ascii_lowercase().as_str()) {
            Err(format!(
                "byte size literals like {text:?} are not supported"
            ))
        } else {
            Err(format!("syntax error: invalid duration {text:?}"))
        }
    }

    /// `[5m]`, lexed as one token as Loki does. `[5m:1m]` subqueries are rejected here.
    fn range(&mut self) -> Result<TokenKind, String> {
        self.bump();
        let mut text = String::new();
        loop {
            match self.bump() {
                Some(']') => break,
                Some(c) => text.push(c),
                None => return Err("syntax error: unclosed range, expecting ]".to_string()),
            }
        }
        let text = text.trim();
        if text.contains(':') {
            return Err("subqueries are not supported".to_string());
        }
        match parse_duration_ns(text) {
            Some(ns) if ns > 0 => Ok(TokenKind::Range(ns)),
            Some(_) => Err(format!("range [{text}] must be greater than zero")),
            None => Err(format!("syntax error: invalid range duration {text:?}")),
        }
    }

    /// A string literal (double-quoted with Go's escapes, or backquoted and raw), read
    /// whole and unquoted by `sightline_model::go_string`.
    fn string(&mut self) -> Result<TokenKind, String> {
        let len = sightline_model::go_string::literal_len(&self.chars[self.pos..])
            .ok_or("literal not terminated")?;
        let raw: String = self.chars[self.pos..self.pos + len].iter().collect();
        for _ in 0..len {
            self.bump();
        }
        sightline_model::go_string::unquote(&raw).map(TokenKind::Str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<TokenKind> {
        tokenize(input)
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    #[test]
    fn lexes_operators_literals_and_positions() {
        use TokenKind::*;
        assert_eq!(
            kinds(r#"{a=~"x"} |= `y\d` != "z" | n >= -1.5 [5m] # comment"#),
            vec![
                LBrace,
                Ident("a".into()),
                Re,
                Str("x".into()),
                RBrace,
                PipeExact,
                Str(r"y\d".into()),
                Neq,
                Str("z".into()),
                Pipe,
                Ident("n".into()),
                Ge,
                Arithmetic('-'),
                Number(1.5),
                Range(300_000_000_000),
                Eof
            ]
        );
        let tokens = tokenize("{\n  ab=\"c\"}").unwrap();
        assert_eq!((tokens[1].line, tokens[1].column), (2, 3));
        assert_eq!((tokens[2].line, tokens[2].column), (2, 5));
    }

    #[test]
    fn numbers_take_exponents_and_never_a_sign() {
        use TokenKind::*;
        assert_eq!(
            kinds("1e3 2.5E-2 .5 7e+1 x-1"),
            vec![
                Number(1000.0),
                Number(0.025),
                Number(0.5),
                Number(70.0),
                Ident("x".into()),
                Arithmetic('-'),
                Number(1.0),
                Eof
            ]
        );
        // An `e` without digits is a (bad) duration unit, not an exponent.
        assert!(
            tokenize("1.5e")
                .unwrap_err()
                .message
                .contains("invalid duration")
        );
        assert!(tokenize("1e3s").is_err());
    }

    #[test]
    fn decodes_go_escapes() {
        assert_eq!(
            kinds(r#""a\"b\\c\n\t\x41\101\u00e9\U0001F600""#)[0],
            TokenKind::Str("a\"b\\c\n\tAAé😀".into())
        );
        assert!(tokenize(r#""\q""#).is_err());
        assert!(tokenize(r#""\xff""#).is_err());
        assert!(tokenize(r#""abc"#).is_err());
    }

    #[test]
    fn lexes_durations_and_rejects_bytes() {
        assert_eq!(kinds("250ms")[0], TokenKind::Duration(250_000_000));
        assert_eq!(kinds("1h30m")[0], TokenKind::Duration(5_400_000_000_000));
        let err = tokenize("| size > 10KB").unwrap_err();
        assert!(err.message.contains("not supported"), "{err}");
        assert_eq!(err.column, 10);
        assert!(
            tokenize("[5m:1m]")
                .unwrap_err()
                .message
                .contains("subqueries")
        );
        assert!(tokenize("[0s]").is_err());
        assert!(tokenize("[5m").is_err());
    }
}
