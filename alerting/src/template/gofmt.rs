//! Go's `fmt`, `strconv` and `time` formatting, byte for byte where templates can see it.
//!
//! Alert texts are compared against what Prometheus and Alertmanager produce, so float
//! printing follows `strconv.FormatFloat` (shortest digits, `%e` form when the exponent is
//! below -4 or at least the precision, 6 for the shortest form) rather than Rust's `Display`.

use chrono::{DateTime, Datelike, FixedOffset, Timelike};

use super::value::Value;

/// The decimal digits of a finite float: value = 0.`digits` × 10^`point`.
struct Digits {
    negative: bool,
    digits: Vec<u8>,
    point: i32,
}

/// Splits Rust's exact scientific rendering into digits, trailing zeros dropped.
fn parse_scientific(rendered: &str) -> Digits {
    let (negative, rest) = match rendered.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rendered),
    };
    // Rust always renders `{:e}` as `d[.ddd]e[-]x`.
    let (mantissa, exponent) = rest.split_once('e').unwrap_or((rest, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    let point = if digits == [b'0'] { 1 } else { exponent + 1 };
    Digits {
        negative,
        digits,
        point,
    }
}

fn shortest_digits(v: f64) -> Digits {
    parse_scientific(&format!("{v:e}"))
}

fn rounded_digits(v: f64, significant: usize) -> Digits {
    parse_scientific(&format!("{:.*e}", significant.saturating_sub(1), v))
}

fn non_finite(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("+Inf")
    } else if v == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

/// strconv's `%e` layout: `d.ddde±XX` with `decimals` digits after the point.
fn layout_e(d: &Digits, decimals: usize) -> String {
    let mut s = String::new();
    if d.negative {
        s.push('-');
    }
    s.push(d.digits[0] as char);
    if decimals > 0 {
        s.push('.');
        for i in 1..=decimals {
            s.push(*d.digits.get(i).unwrap_or(&b'0') as char);
        }
    }
    let exp = if d.digits == [b'0'] { 0 } else { d.point - 1 };
    s.push('e');
    s.push(if exp < 0 { '-' } else { '+' });
    s.push_str(&format!("{:02}", exp.abs()));
    s
}

/// strconv's `%f` layout with `decimals` digits after the point.
fn layout_f(d: &Digits, decimals: usize) -> String {
    let mut s = String::new();
    if d.negative {
        s.push('-');
    }
    let digit_at = |i: i32| -> char {
        if i >= 0 && (i as usize) < d.digits.len() {
            d.digits[i as usize] as char
        } else {
            '0'
        }
    };
    if d.point > 0 {
        for i in 0..d.point {
            s.push(digit_at(i));
        }
    } else {
        s.push('0');
    }
    if decimals > 0 {
        s.push('.');
        for i in 0..decimals as i32 {
            s.push(digit_at(d.point + i));
        }
    }
    s
}

/// strconv.FormatFloat(v, 'g', prec, 64); `None` precision is the shortest form.
pub fn format_float_g(v: f64, precision: Option<usize>) -> String {
    if let Some(s) = non_finite(v) {
        return s.to_owned();
    }
    let (d, mut prec, shortest) = match precision {
        None => {
            let d = shortest_digits(v);
            let n = d.digits.len();
            (d, n, true)
        }
        Some(p) => {
            let p = p.max(1);
            (rounded_digits(v, p), p, false)
        }
    };
    let nd = d.digits.len();
    let mut eprec = prec;
    if eprec > nd && nd as i32 >= d.point {
        eprec = nd;
    }
    if shortest {
        eprec = 6;
    }
    let exp = d.point - 1;
    if exp < -4 || exp >= eprec as i32 {
        if prec > nd {
            prec = nd;
        }
        return layout_e(&d, prec - 1);
    }
    if prec as i32 > d.point {
        prec = nd;
    }
    layout_f(&d, (prec as i32 - d.point).max(0) as usize)
}

/// Go's `%v` of a float64 (`fmt.Sprint`): `1e+06`, `0.0001`, `123.456`, `NaN`, `+Inf`.
pub fn format_float_v(v: f64) -> String {
    format_float_g(v, None)
}

/// Go's `%e` with the given number of decimals.
pub fn format_float_e(v: f64, decimals: usize) -> String {
    if let Some(s) = non_finite(v) {
        return s.to_owned();
    }
    layout_e(&rounded_digits(v, decimals + 1), decimals)
}

/// Go's `%f` with the given number of decimals.
pub fn format_float_f(v: f64, decimals: usize) -> String {
    if let Some(s) = non_finite(v) {
        return s.to_owned();
    }
    format!("{v:.decimals$}")
}

/// Go's `strconv.Quote`: double quotes with Go escapes, non-printables as `\x`/`\u`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => {
                if (c as u32) <= 0xffff {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `fmt.Sprint`: a space between operands when neither side is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        let is_string = matches!(arg, Value::String(_));
        if i > 0 && !is_string && !matches!(args[i - 1], Value::String(_)) {
            out.push(' ');
        }
        out.push_str(&arg.to_string());
    }
    out
}

/// Go's `fmt.Sprintln`: always a space between operands, and a final newline.
pub fn sprintln(args: &[Value]) -> String {
    let parts: Vec<String> = args.iter().map(Value::to_string).collect();
    let mut out = parts.join(" ");
    out.push('\n');
    out
}

/// The largest width or precision `sprintf` honours.
const MAX_WIDTH: usize = 4096;

#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    sharp: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

fn bad_verb(verb: char, arg: &Value) -> String {
    match arg {
        Value::Nil => format!("%!{verb}(<nil>)"),
        other => format!("%!{verb}({}={other})", other.type_name()),
    }
}

fn pad(s: String, spec: &Spec, numeric: bool) -> String {
    let len = s.chars().count();
    let Some(width) = spec.width.filter(|w| *w > len) else {
        return s;
    };
    let fill = width - len;
    if spec.minus {
        return s + &" ".repeat(fill);
    }
    if spec.zero && numeric {
        // Zero padding goes between the sign and the digits.
        let (sign, digits) = match s.chars().next() {
            Some(c @ ('-' | '+' | ' ')) => (c.to_string(), s[1..].to_owned()),
            _ => (String::new(), s),
        };
        return sign + &"0".repeat(fill) + &digits;
    }
    " ".repeat(fill) + &s
}

fn signed(s: String, spec: &Spec) -> String {
    if s.starts_with('-') || s.starts_with('+') {
        s
    } else if spec.plus {
        format!("+{s}")
    } else if spec.space {
        format!(" {s}")
    } else {
        s
    }
}

fn format_one(verb: char, spec: &Spec, arg: &Value) -> String {
    match verb {
        'v' => match arg {
            Value::Float(f) => pad(signed(format_float_v(*f), spec), spec, true),
            Value::Int(i) => pad(signed(i.to_string(), spec), spec, true),
            Value::String(s) if spec.sharp => pad(quote(s), spec, false),
            other => pad(other.to_string(), spec, false),
        },
        's' => match arg {
            Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Nil => bad_verb(verb, arg),
            other => {
                let s = other.to_string();
                let s = match spec.precision {
                    Some(p) => s.chars().take(p).collect(),
                    None => s,
                };
                pad(s, spec, false)
            }
        },
        'q' => match arg {
            Value::String(s) => pad(quote(s), spec, false),
            Value::Int(i) => match char::from_u32(*i as u32) {
                Some(c) => pad(format!("'{c}'"), spec, false),
                None => bad_verb(verb, arg),
            },
            _ => bad_verb(verb, arg),
        },
        'd' => match arg {
            Value::Int(i) => pad(signed(i.to_string(), spec), spec, true),
            Value::Duration(d) => pad(signed(d.to_string(), spec), spec, true),
            _ => bad_verb(verb, arg),
        },
        'c' => match arg {
            Value::Int(i) => match char::from_u32(*i as u32) {
                Some(c) => pad(c.to_string(), spec, false),
                None => bad_verb(verb, arg),
            },
            _ => bad_verb(verb, arg),
        },
        'x' | 'X' => {
            let s = match arg {
                Value::Int(i) if *i < 0 => format!("-{:x}", i.unsigned_abs()),
                Value::Int(i) => format!("{i:x}"),
                Value::String(s) => s.bytes().map(|b| format!("{b:02x}")).collect(),
                _ => return bad_verb(verb, arg),
            };
            let s = if spec.sharp && matches!(arg, Value::Int(_)) {
                format!("0x{s}")
            } else {
                s
            };
            let s = if verb == 'X' { s.to_uppercase() } else { s };
            pad(signed(s, spec), spec, matches!(arg, Value::Int(_)))
        }
        'o' | 'b' => match arg {
            Value::Int(i) => {
                let magnitude = i.unsigned_abs();
                let body = if verb == 'o' {
                    format!("{magnitude:o}")
                } else {
                    format!("{magnitude:b}")
                };
                let s = if *i < 0 { format!("-{body}") } else { body };
                pad(signed(s, spec), spec, true)
            }
            _ => bad_verb(verb, arg),
        },
        'f' | 'F' | 'e' | 'E' | 'g' | 'G' => {
            let Value::Float(f) = arg else {
                return bad_verb(verb, arg);
            };
            let s = match verb {
                'f' | 'F' => format_float_f(*f, spec.precision.unwrap_or(6)),
                'e' => format_float_e(*f, spec.precision.unwrap_or(6)),
                'E' => format_float_e(*f, spec.precision.unwrap_or(6)).to_uppercase(),
                'g' => format_float_g(*f, spec.precision),
                _ => format_float_g(*f, spec.precision).to_uppercase(),
            };
            // Go pads infinities and NaN with spaces even under the zero flag.
            let numeric = f.is_finite();
            pad(signed(s, spec), spec, numeric)
        }
        't' => match arg {
            Value::Bool(b) => pad(b.to_string(), spec, false),
            _ => bad_verb(verb, arg),
        },
        _ => bad_verb(verb, arg),
    }
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%s %d %f %e %g %v %q %x %X %o %b %c %t %%`,
/// with flags `-+ 0#`, width and precision (`*` takes them from the arguments).
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next_arg = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&flag) = chars.peek() {
            match flag {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            chars.next();
        }
        let mut read_number = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            if chars.peek() == Some(&'*') {
                chars.next();
                let n = match args.get(next_arg) {
                    Some(Value::Int(i)) => usize::try_from(*i).ok(),
                    _ => None,
                };
                next_arg += 1;
                return n;
            }
            let mut n: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
                chars.next();
            }
            n
        };
        // Widths and precisions are capped so a template cannot allocate unbounded padding.
        spec.width = read_number(&mut chars).map(|w| w.min(MAX_WIDTH));
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision = Some(read_number(&mut chars).unwrap_or(0).min(MAX_WIDTH));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(next_arg) {
            Some(arg) => out.push_str(&format_one(verb, &spec, arg)),
            None => out.push_str(&format!("%!{verb}(MISSING)")),
        }
        next_arg += 1;
    }
    if next_arg < args.len() {
        let extra: Vec<String> = args[next_arg..]
            .iter()
            .map(|a| match a {
                Value::Nil => "<nil>".to_owned(),
                other => format!("{}={other}", other.type_name()),
            })
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

/// Go's `template.HTMLEscapeString`.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
pub fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 || c.is_control() => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `time.Duration.String`: `1h2m3.5s`, `1.5ms`, `0s`.
pub fn format_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_owned();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let fraction = |value: u64, scale: u64| -> String {
        let whole = value / scale;
        let rest = value % scale;
        if rest == 0 {
            return whole.to_string();
        }
        let width = scale.ilog10() as usize;
        let digits = format!("{rest:0width$}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    };
    if n < 1_000 {
        return format!("{sign}{n}ns");
    }
    if n < 1_000_000 {
        return format!("{sign}{}µs", fraction(n, 1_000));
    }
    if n < 1_000_000_000 {
        return format!("{sign}{}ms", fraction(n, 1_000_000));
    }
    let seconds = fraction(n % 60_000_000_000, 1_000_000_000);
    let total_minutes = n / 60_000_000_000;
    let hours = total_minutes / 60;
    let minutes = total_minutes % 60;
    if hours > 0 {
        format!("{sign}{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{sign}{minutes}m{seconds}s")
    } else {
        format!("{sign}{seconds}s")
    }
}

/// The default `time.Time.String` layout: `2006-01-02 15:04:05.999999999 -0700 MST`.
pub fn format_time_default(t: &DateTime<FixedOffset>) -> String {
    format_go_layout(t, "2006-01-02 15:04:05.999999999 -0700 MST")
}

const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// The Go layout elements, longest first so `January` wins over `Jan` and `2006` over `2`.
const LAYOUT_TOKENS: [&str; 38] = [
    "January",
    "Monday",
    "Z07:00:00",
    "-07:00:00",
    "Z070000",
    "-070000",
    "Z07:00",
    "-07:00",
    "Z0700",
    "-0700",
    "2006",
    "Jan",
    "Mon",
    "MST",
    "Z07",
    "-07",
    "002",
    "__2",
    "_2",
    "01",
    "02",
    "03",
    "04",
    "05",
    "06",
    "15",
    "PM",
    "pm",
    ".000",
    ".999",
    ",000",
    ",999",
    "1",
    "2",
    "3",
    "4",
    "5",
    ".0",
];

fn zone_name(t: &DateTime<FixedOffset>) -> String {
    let secs = t.offset().local_minus_utc();
    if secs == 0 {
        "UTC".to_owned()
    } else {
        // Go prints an unnamed fixed zone as its numeric offset.
        offset_string(secs, false, false, "")
    }
}

fn offset_string(secs: i32, colon: bool, with_seconds: bool, zulu: &str) -> String {
    if secs == 0 && !zulu.is_empty() {
        return zulu.to_owned();
    }
    let sign = if secs < 0 { '-' } else { '+' };
    let abs = secs.unsigned_abs();
    let sep = if colon { ":" } else { "" };
    let mut s = format!("{sign}{:02}{sep}{:02}", abs / 3600, abs / 60 % 60);
    if with_seconds {
        s.push_str(&format!("{sep}{:02}", abs % 60));
    }
    s
}

/// Formats a time with a Go reference layout (`Mon Jan 2 15:04:05 MST 2006`), the
/// language of Alertmanager's `date` function and `.Format`.
pub fn format_go_layout(t: &DateTime<FixedOffset>, layout: &str) -> String {
    let mut out = String::new();
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        for token in LAYOUT_TOKENS {
            let Some(after) = rest.strip_prefix(token) else {
                continue;
            };
            // Fractional seconds take every following 0 or 9, as Go does.
            if token.len() >= 2 && (token.starts_with('.') || token.starts_with(',')) {
                let digit = token.as_bytes()[1];
                let extra = after.bytes().take_while(|b| *b == digit).count();
                let count = token.len() - 1 + extra;
                if after[extra..].starts_with(|c: char| c.is_ascii_digit()) {
                    out.push_str(&rest[..1]);
                    rest = &rest[1..];
                    continue 'outer;
                }
                let digits = format!("{:09}", t.nanosecond() % 1_000_000_000);
                let digits = &digits[..count.min(9)];
                if digit == b'9' {
                    let trimmed = digits.trim_end_matches('0');
                    if !trimmed.is_empty() {
                        out.push_str(&token[..1]);
                        out.push_str(trimmed);
                    }
                } else {
                    out.push_str(&token[..1]);
                    out.push_str(digits);
                }
                rest = &after[extra..];
                continue 'outer;
            }
            let secs = t.offset().local_minus_utc();
            let piece = match token {
                "January" => LONG_MONTHS[t.month0() as usize].to_owned(),
                "Jan" => LONG_MONTHS[t.month0() as usize][..3].to_owned(),
                "Monday" => LONG_DAYS[t.weekday().num_days_from_monday() as usize].to_owned(),
                "Mon" => LONG_DAYS[t.weekday().num_days_from_monday() as usize][..3].to_owned(),
                "MST" => zone_name(t),
                "2006" => format!("{:04}", t.year()),
                "06" => format!("{:02}", t.year().rem_euclid(100)),
                "01" => format!("{:02}", t.month()),
                "1" => t.month().to_string(),
                "02" => format!("{:02}", t.day()),
                "2" => t.day().to_string(),
                "_2" => format!("{:>2}", t.day()),
                "__2" => format!("{:>3}", t.ordinal()),
                "002" => format!("{:03}", t.ordinal()),
                "15" => format!("{:02}", t.hour()),
                "03" => format!("{:02}", t.hour12().1),
                "3" => t.hour12().1.to_string(),
                "04" => format!("{:02}", t.minute()),
                "4" => t.minute().to_string(),
                "05" => format!("{:02}", t.second()),
                "5" => t.second().to_string(),
                "PM" => (if t.hour() >= 12 { "PM" } else { "AM" }).to_owned(),
                "pm" => (if t.hour() >= 12 { "pm" } else { "am" }).to_owned(),
                "-0700" => offset_string(secs, false, false, ""),
                "-07:00" => offset_string(secs, true, false, ""),
                "-070000" => offset_string(secs, false, true, ""),
                "-07:00:00" => offset_string(secs, true, true, ""),
                "-07" => offset_string(secs, false, false, "")[..3].to_owned(),
                "Z0700" => offset_string(secs, false, false, "Z"),
                "Z07:00" => offset_string(secs, true, false, "Z"),
                "Z070000" => offset_string(secs, false, true, "Z"),
                "Z07:00:00" => offset_string(secs, true, true, "Z"),
                "Z07" => {
                    let s = offset_string(secs, false, false, "Z");
                    s[..s.len().min(3)].to_owned()
                }
                _ => token.to_owned(),
            };
            out.push_str(&piece);
            rest = after;
            continue 'outer;
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn float_v_matches_go() {
        let cases = [
            (0.0, "0"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (123.456, "123.456"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (100000.0, "100000"),
            (1000000.0, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (1e21, "1e+21"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (v, want) in cases {
            assert_eq!(format_float_v(v), want, "{v}");
        }
    }

    #[test]
    fn float_g_precision_matches_go() {
        let cases = [
            (1.0, "1"),
            (1.5, "1.5"),
            (10.0, "10"),
            (1234.0, "1234"),
            (12345.0, "1.234e+04"),
            (100000.0, "1e+05"),
            (1.2345678, "1.235"),
            (0.00012346, "0.0001235"),
            (0.000012345, "1.234e-05"),
        ];
        for (v, want) in cases {
            assert_eq!(format_float_g(v, Some(4)), want, "{v}");
        }
    }

    #[test]
    fn sprintf_verbs() {
        let s = |f: &str, args: &[Value]| sprintf(f, args);
        assert_eq!(s("%s-%d", &["a".into(), 3i64.into()]), "a-3");
        assert_eq!(s("%.2f", &[1.005f64.into()]), format!("{:.2}", 1.005f64));
        assert_eq!(s("%f", &[1.5f64.into()]), "1.500000");
        assert_eq!(s("%e", &[123456.0f64.into()]), "1.234560e+05");
        assert_eq!(s("%g", &[1e-7f64.into()]), "1e-07");
        assert_eq!(s("%v|%v", &[1.5f64.into(), Value::Nil]), "1.5|<nil>");
        assert_eq!(s("%q", &["a\"b\n".into()]), r#""a\"b\n""#);
        assert_eq!(s("%x %X", &[255i64.into(), "hi".into()]), "ff 6869");
        assert_eq!(s("%t %%", &[true.into()]), "true %");
        assert_eq!(
            s(
                "%5d|%-5d|%05d",
                &[42i64.into(), 42i64.into(), (-42i64).into()]
            ),
            "   42|42   |-0042"
        );
        assert_eq!(
            s("%8.3f|%+d", &[1.23456f64.into(), 5i64.into()]),
            "   1.235|+5"
        );
        assert_eq!(s("%.3s", &["abcdef".into()]), "abc");
        assert_eq!(s("%d", &[1.5f64.into()]), "%!d(float64=1.5)");
        assert_eq!(s("%f", &[5i64.into()]), "%!f(int=5)");
        assert_eq!(s("%d %d", &[1i64.into()]), "1 %!d(MISSING)");
        assert_eq!(s("%d", &[1i64.into(), "x".into()]), "1%!(EXTRA string=x)");
        assert_eq!(s("%*d", &[4i64.into(), 7i64.into()]), "   7");
    }

    #[test]
    fn sprint_spacing_follows_go() {
        assert_eq!(
            sprint(&["a".into(), 1i64.into(), 2i64.into(), "b".into()]),
            "a1 2b"
        );
        assert_eq!(sprintln(&["a".into(), 1i64.into()]), "a 1\n");
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(1_500_000), "1.5ms");
        assert_eq!(format_duration(2_000), "2µs");
        assert_eq!(format_duration(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(format_duration(60_000_000_000), "1m0s");
        assert_eq!(format_duration(-1_000_000_000), "-1s");
    }

    #[test]
    fn times_print_like_go() {
        let utc = FixedOffset::east_opt(0).unwrap();
        let t = utc.timestamp_opt(1435065584, 128_000_000).unwrap();
        assert_eq!(format_time_default(&t), "2015-06-23 13:19:44.128 +0000 UTC");
        assert_eq!(
            format_go_layout(&t, "Mon Jan _2 15:04:05.000 2006 Z07:00"),
            "Tue Jun 23 13:19:44.128 2015 Z"
        );
        assert_eq!(
            format_go_layout(&t, "3:04PM January 2, 06"),
            "1:19PM June 23, 15"
        );
        let plus2 = FixedOffset::east_opt(7200).unwrap();
        let t2 = plus2.timestamp_opt(0, 0).unwrap();
        assert_eq!(format_time_default(&t2), "1970-01-01 02:00:00 +0200 +0200");
        assert_eq!(
            format_go_layout(&t2, time_rfc3339()),
            "1970-01-01T02:00:00+02:00"
        );
    }

    fn time_rfc3339() -> &'static str {
        "2006-01-02T15:04:05Z07:00"
    }

    #[test]
    fn escapes_match_go() {
        assert_eq!(
            html_escape(r#"<a href="x">&'"#),
            "&lt;a href=&#34;x&#34;&gt;&amp;&#39;"
        );
        assert_eq!(
            js_escape("a'b\"<=>\n"),
            "a\\'b\\\"\\u003C\\u003D\\u003E\\u000A"
        );
        assert_eq!(query_escape("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }
}
