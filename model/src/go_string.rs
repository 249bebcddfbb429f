//! Go's string literals, as PromQL, LogQL and TraceQL take them (`strconv.Unquote`):
//! backquoted strings are raw; double- (and, in PromQL, single-) quoted ones take Go's
//! escapes, where `\x` and octal escapes are bytes, so the value is checked to be UTF-8.

/// The value of the literal `raw`, quotes included, or why it is not one.
pub fn unquote(raw: &str) -> Result<String, String> {
    let quote = raw.chars().next().ok_or("empty literal")?;
    let inner = raw
        .strip_prefix(quote)
        .and_then(|r| r.strip_suffix(quote))
        .filter(|_| raw.len() >= 2)
        .ok_or("literal not terminated")?;
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
        let e = chars.next().ok_or("literal not terminated")?;
        let mut digits = |n: usize, radix: u32| -> Result<u32, String> {
            let text: String = chars.by_ref().take(n).collect();
            if text.len() != n {
                return Err(format!("invalid escape \\{e}{text}"));
            }
            u32::from_str_radix(&text, radix).map_err(|_| format!("invalid escape \\{e}{text}"))
        };
        let decoded = match e {
            'a' => '\x07',
            'b' => '\x08',
            'f' => '\x0c',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\x0b',
            '\\' => '\\',
            '"' | '\'' if e == quote => e,
            'x' => {
                bytes.push(digits(2, 16)? as u8);
                continue;
            }
            '0'..='7' => {
                let value = e.to_digit(8).unwrap_or(0) * 64 + digits(2, 8)?;
                bytes.push(u8::try_from(value).map_err(|_| "octal escape value > 255")?);
                continue;
            }
            'u' => char::from_u32(digits(4, 16)?).ok_or("invalid Unicode escape")?,
            'U' => char::from_u32(digits(8, 16)?).ok_or("invalid Unicode escape")?,
            other => return Err(format!("invalid escape sequence \\{other} in string")),
        };
        bytes.extend_from_slice(decoded.encode_utf8(&mut utf8).as_bytes());
    }
    String::from_utf8(bytes).map_err(|_| "invalid UTF-8 in string".to_string())
}

#[cfg(test)]
mod tests {
    use super::unquote;

    #[test]
    fn literals_unquote_as_go_does() {
        assert_eq!(
            unquote(r#""a\\b\"c\x41\u00e9\101""#).as_deref(),
            Ok("a\\b\"cAéA")
        );
        assert_eq!(unquote(r#""\xc3\xa9""#).as_deref(), Ok("é"));
        assert_eq!(unquote(r"`a\d`").as_deref(), Ok(r"a\d"));
        assert_eq!(unquote(r"'it\'s'").as_deref(), Ok("it's"));
        assert!(unquote(r#""bad\q""#).is_err());
        assert!(unquote(r#""\xff""#).is_err());
        assert!(unquote(r#"""#).is_err());
    }
}
