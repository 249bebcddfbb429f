//! Duration literals as Go's `time.ParseDuration` and Prometheus write them (`250ms`, `1.5s`,
//! `1h30m`, `7d`), shared by the lexer and by label filters comparing durations.

/// Parses a duration into nanoseconds. Accepts an optional sign, one or more
/// `<number><unit>` groups (units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, `d`, `w`, `y`) and the
/// bare `0`. Returns `None` for anything else or for values beyond ±292 years.
pub(crate) fn parse_duration_ns(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total_ns = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return None;
        }
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3_600e9,
            "d" => 86_400e9,
            "w" => 604_800e9,
            "y" => 31_536_000e9,
            _ => return None,
        };
        total_ns += number * scale;
        rest = &rest[unit_len..];
    }
    // `as` saturates, but a duration past i64 is a typo, not something to clamp silently.
    if !total_ns.is_finite() || total_ns >= i64::MAX as f64 {
        return None;
    }
    let ns = total_ns.round() as i64;
    Some(if negative { -ns } else { ns })
}

#[cfg(test)]
mod tests {
    use super::parse_duration_ns;

    #[test]
    fn parses_go_and_prometheus_durations() {
        assert_eq!(parse_duration_ns("250ms"), Some(250_000_000));
        assert_eq!(parse_duration_ns("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration_ns("5m"), Some(300_000_000_000));
        assert_eq!(parse_duration_ns("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration_ns("2d"), Some(172_800_000_000_000));
        assert_eq!(parse_duration_ns("10µs"), Some(10_000));
        assert_eq!(parse_duration_ns("-1s"), Some(-1_000_000_000));
        assert_eq!(parse_duration_ns("0"), Some(0));
    }

    #[test]
    fn rejects_malformed_durations() {
        for bad in [
            "",
            "5",
            "ms",
            "5x",
            "1.2.3s",
            "-",
            "s5",
            "99999999999y",
            "1e3s",
        ] {
            assert_eq!(parse_duration_ns(bad), None, "{bad}");
        }
    }
}
