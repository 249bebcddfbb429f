//! Go's string literals, as PromQL, LogQL and TraceQL take them (Go's `strconv.Unquote`):
//! backquoted strings are raw; double- (and, in PromQL, single-) quoted ones take Go's
//! escapes, where `\x` and octal escapes are bytes, so the value is checked to be UTF-8.
//! Both `\"` and `\'` are accepted in either kind of quoted string (the query languages'
//! lexers always did).

/// The value of the literal `raw`, quotes included, or why it is not one.
pub fn unquote(raw: &str) -> Result<String, String> {
    const UNTERMINATED: &str = "literal not terminated";
    let quote = raw.chars().next().ok_or(UNTERMINATED)?;
    let inner = raw
        .strip_prefix(quote)
        .and_then(|r| r.strip_suffix(quote))
        .filter(|_| raw.len() >= 2)
        .ok_or(UNTERMINATED)?;
    if quote == '`' {
        return Ok(inner.to_string());
    }
    let mut bytes: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.chars();
    let mut utf8 = [0u8; 4];
    while let Some(c) = chars.next() {
        if c != '\\' {
            bytes.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            continue;
        }
        let Some(e) = chars.next() else {
            return Err(UNTERMINATED.into());
        };
        let mut digits = |n: usize, radix: u32| -> Result<u32, String> {
            let mut value = 0u32;
            for _ in 0..n {
                let digit = chars
                    .next()
                    .and_then(|c| c.to_digit(radix))
                    .ok_or("invalid escape sequence in string")?;
                value = value * radix + digit;
            }
            Ok(value)
        };
        let decoded = match e {
            'a' => '\x07',
            'b' => '\x08',
            'f' => '\x0c',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\x0b',
            '\\' | '"' | '\'' => e,
            'x' => {
                bytes.push(digits(2, 16)? as u8);
                continue;
            }
            '0'..='7' => {
                let value = e.to_digit(8).unwrap_or(0) * 64 + digits(2, 8)?;
                bytes.push(u8::try_from(value).map_err(|_| "octal escape value > 255")?);
                continue;
            }
            'u' | 'U' => {
                let value = digits(if e == 'u' { 4 } else { 8 }, 16)?;
                char::from_u32(value)
                    .ok_or_else(|| format!("invalid unicode escape U+{value:X}"))?
            }
            other => return Err(format!("invalid escape sequence \\{other} in string")),
        };
        bytes.extend_from_slice(decoded.encode_utf8(&mut utf8).as_bytes());
    }
    String::from_utf8(bytes).map_err(|_| "string literal is not valid UTF-8".to_string())
}

/// The length in chars of the quoted literal starting at `chars[0]` (its quote), quotes
/// included, or `None` if it is not terminated: what a lexer hands to [`unquote`].
pub fn literal_len(chars: &[char]) -> Option<usize> {
    let quote = *chars.first()?;
    let mut i = 1;
    while i < chars.len() {
        match chars[i] {
            '\\' if quote != '`' => i += 2,
            c if c == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{literal_len, unquote};

    #[test]
    fn literals_unquote_as_go_does() {
        assert_eq!(
            unquote(r#""a\\b\"c\x41\u00e9\101""#).as_deref(),
            Ok("a\\b\"cAéA")
        );
        assert_eq!(unquote(r#""\xc3\xa9""#).as_deref(), Ok("é"));
        assert_eq!(unquote(r"`a\d`").as_deref(), Ok(r"a\d"));
        assert_eq!(unquote(r"'it\'s'").as_deref(), Ok("it's"));
        assert_eq!(
            unquote(r#""bad\q""#),
            Err("invalid escape sequence \\q in string".into())
        );
        assert_eq!(
            unquote(r#""\xff""#),
            Err("string literal is not valid UTF-8".into())
        );
        assert_eq!(unquote(r#"""#), Err("literal not terminated".into()));
        assert_eq!(
            unquote(r#""\x4""#),
            Err("invalid escape sequence in string".into())
        );
    }

    #[test]
    fn literal_lengths_skip_escaped_quotes() {
        let chars: Vec<char> = r#""a\"b" rest"#.chars().collect();
        assert_eq!(literal_len(&chars), Some(6));
        let chars: Vec<char> = r"`a\` rest".chars().collect();
        assert_eq!(literal_len(&chars), Some(4));
        let chars: Vec<char> = r#""open\""#.chars().collect();
        assert_eq!(literal_len(&chars), None);
    }
}
