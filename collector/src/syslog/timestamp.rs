//! Syslog timestamps to Unix nanoseconds: RFC 5424's RFC 3339 profile and RFC 3164's
//! zone-less, year-less `Mmm dd hh:mm:ss`.
//!
//! Calendar arithmetic is done here by hand (proleptic Gregorian, days since the epoch) so the
//! parser needs no date crate and no clock: the caller passes "now" for year inference.

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;
const NANOS_PER_DAY: i64 = SECONDS_PER_DAY * NANOS_PER_SECOND;

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian calendar).
///
/// Howard Hinnant's `days_from_civil`; exact for every year an `i64` can hold here.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil year of a Unix-nanosecond instant, in UTC.
pub(crate) fn year_of(unix_ns: i64) -> i64 {
    let days = unix_ns.div_euclid(NANOS_PER_DAY);
    // Inverse of `days_from_civil`, keeping only what the year needs.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(month <= 2)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// A civil date and time of day, before its zone is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CivilTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
}

impl CivilTime {
    /// Unix nanoseconds of this time at `offset_seconds` east of UTC; `None` when the date
    /// does not exist or the instant does not fit in an `i64` (years ~1678..2262).
    pub(crate) fn to_unix_ns(self, offset_seconds: i64) -> Option<i64> {
        if !(1..=12).contains(&self.month)
            || self.day == 0
            || self.day > days_in_month(self.year, self.month)
            || self.hour > 23
            || self.minute > 59
            // RFC 5424 §6.2.3.1 forbids leap seconds, but RFC 3339 allows `60`; accept it as
            // the first second of the next minute rather than losing the record.
            || self.second > 60
            || self.nanos >= 1_000_000_000
        {
            return None;
        }
        let days = days_from_civil(self.year, self.month, self.day);
        let seconds = days
            .checked_mul(SECONDS_PER_DAY)?
            .checked_add(i64::from(self.hour * 3600 + self.minute * 60 + self.second))?
            .checked_sub(offset_seconds)?;
        seconds
            .checked_mul(NANOS_PER_SECOND)?
            .checked_add(i64::from(self.nanos))
    }
}

/// Parses the `n` ASCII digits at `start` in `bytes`; `None` if any is missing or not a digit.
fn digits(bytes: &[u8], start: usize, n: usize) -> Option<u32> {
    let field = bytes.get(start..start.checked_add(n)?)?;
    field.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// Parses an RFC 5424 §6.2.3 timestamp (RFC 3339 `full-date "T" full-time`) that spans all
/// of `token` into Unix nanoseconds. The error names what was expected and the offset in
/// `token` where it was not found.
///
/// Lenient where RFC 3339 is: a lower-case `t`/`z`, and up to 9 fraction digits (RFC 5424
/// allows 6; more precision is simply kept).
pub(crate) fn parse_rfc3339(token: &[u8]) -> Result<i64, (usize, &'static str)> {
    // RFC 5424 §6.2.3: FULL-DATE = DATE-FULLYEAR "-" DATE-MONTH "-" DATE-MDAY
    let year = digits(token, 0, 4).ok_or((0, "expected a 4-digit year"))?;
    expect_byte(token, 4, b'-', "expected '-' after the year")?;
    let month = digits(token, 5, 2).ok_or((5, "expected a 2-digit month"))?;
    expect_byte(token, 7, b'-', "expected '-' after the month")?;
    let day = digits(token, 8, 2).ok_or((8, "expected a 2-digit day"))?;
    match token.get(10) {
        Some(b'T' | b't') => {}
        _ => return Err((10, "expected 'T' between date and time")),
    }
    // FULL-TIME = PARTIAL-TIME TIME-OFFSET; PARTIAL-TIME = HH ":" MM ":" SS [TIME-SECFRAC]
    let hour = digits(token, 11, 2).ok_or((11, "expected a 2-digit hour"))?;
    expect_byte(token, 13, b':', "expected ':' after the hour")?;
    let minute = digits(token, 14, 2).ok_or((14, "expected 2-digit minutes"))?;
    expect_byte(token, 16, b':', "expected ':' after the minutes")?;
    let second = digits(token, 17, 2).ok_or((17, "expected 2-digit seconds"))?;
    let mut pos = 19;
    let mut nanos = 0u32;
    if token.get(pos) == Some(&b'.') {
        // TIME-SECFRAC = "." 1*6DIGIT
        pos += 1;
        let start = pos;
        while let Some(b) = token.get(pos).filter(|b| b.is_ascii_digit()) {
            if pos - start == 9 {
                return Err((pos, "more than 9 fraction digits"));
            }
            nanos = nanos * 10 + u32::from(b - b'0');
            pos += 1;
        }
        if pos == start {
            return Err((pos, "expected a digit after '.'"));
        }
        nanos *= 10u32.pow(9 - (pos - start) as u32);
    }
    // TIME-OFFSET = "Z" / TIME-NUMOFFSET; TIME-NUMOFFSET = ("+" / "-") TIME-HOUR ":" TIME-MINUTE
    let offset_seconds = match token.get(pos) {
        Some(b'Z' | b'z') => {
            pos += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh =
                digits(token, pos + 1, 2).ok_or((pos + 1, "expected a 2-digit offset hour"))?;
            expect_byte(token, pos + 3, b':', "expected ':' in the offset")?;
            let om =
                digits(token, pos + 4, 2).ok_or((pos + 4, "expected 2-digit offset minutes"))?;
            if oh > 23 || om > 59 {
                return Err((pos + 1, "offset out of range"));
            }
            pos += 6;
            let magnitude = i64::from(oh * 3600 + om * 60);
            if sign == b'-' { -magnitude } else { magnitude }
        }
        _ => return Err((pos, "expected 'Z' or a '+hh:mm'/'-hh:mm' offset")),
    };
    if pos != token.len() {
        return Err((pos, "unexpected characters after the timestamp"));
    }
    CivilTime {
        year: i64::from(year),
        month,
        day,
        hour,
        minute,
        second,
        nanos,
    }
    .to_unix_ns(offset_seconds)
    .ok_or((0, "date or time out of range"))
}

fn expect_byte(
    token: &[u8],
    pos: usize,
    want: u8,
    reason: &'static str,
) -> Result<(), (usize, &'static str)> {
    if token.get(pos) == Some(&want) {
        Ok(())
    } else {
        Err((pos, reason))
    }
}

/// An RFC 3164 §4.1.2 timestamp, `Mmm dd hh:mm:ss`, with the year when the sender added one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BsdTimestamp {
    pub year: Option<i64>,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Recognises a BSD timestamp at the start of `bytes`; returns it and the bytes it spans.
///
/// RFC 3164 §4.1.2 says `Mmm dd hh:mm:ss` with the day space-padded (`Oct  1`). Accepted as
/// well, as rsyslog does: a single space before a one-digit day, a fraction after the seconds
/// (`22:14:15.003`) and a year between day and time (`Oct 11 2024 22:14:15`).
pub(crate) fn parse_bsd(bytes: &[u8]) -> Option<(BsdTimestamp, usize)> {
    let name = bytes.get(..3)?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(name))? as u32 + 1;
    let mut pos = 3;
    if bytes.get(pos) != Some(&b' ') {
        return None;
    }
    pos += 1;
    if bytes.get(pos) == Some(&b' ') {
        pos += 1; // space-padded day
    }
    let day = if let Some(d) = digits(bytes, pos, 2) {
        pos += 2;
        d
    } else {
        let d = digits(bytes, pos, 1)?;
        pos += 1;
        d
    };
    if bytes.get(pos) != Some(&b' ') {
        return None;
    }
    pos += 1;
    let mut year = None;
    if let (Some(y), Some(b' ')) = (digits(bytes, pos, 4), bytes.get(pos + 4)) {
        year = Some(i64::from(y));
        pos += 5;
    }
    let hour = digits(bytes, pos, 2)?;
    let minute = digits(bytes, pos + 3, 2)?;
    let second = digits(bytes, pos + 6, 2)?;
    if bytes.get(pos + 2) != Some(&b':') || bytes.get(pos + 5) != Some(&b':') {
        return None;
    }
    pos += 8;
    let mut nanos = 0;
    if bytes.get(pos) == Some(&b'.') {
        let start = pos + 1;
        let mut end = start;
        while end - start < 9 && bytes.get(end).is_some_and(u8::is_ascii_digit) {
            nanos = nanos * 10 + u32::from(bytes[end] - b'0');
            end += 1;
        }
        if end > start {
            nanos *= 10u32.pow(9 - (end - start) as u32);
            pos = end;
        }
    }
    let ts = BsdTimestamp {
        year,
        month,
        day,
        hour,
        minute,
        second,
        nanos,
    };
    Some((ts, pos))
}

impl BsdTimestamp {
    /// Unix nanoseconds, reading the time as UTC (RFC 3164 carries no zone). Without a year,
    /// the current year of `now_ns` is assumed, or the previous one when that would put the
    /// message more than a day in the future (a December message read in January). `None`
    /// when the date does not exist (e.g. Feb 29 in a common year) or is out of range.
    pub(crate) fn to_unix_ns(self, now_ns: i64) -> Option<i64> {
        let at = |year| {
            CivilTime {
                year,
                month: self.month,
                day: self.day,
                hour: self.hour,
                minute: self.minute,
                second: self.second,
                nanos: self.nanos,
            }
            .to_unix_ns(0)
        };
        if let Some(year) = self.year {
            return at(year);
        }
        let this_year = year_of(now_ns);
        match at(this_year) {
            Some(ns) if ns <= now_ns.saturating_add(NANOS_PER_DAY) => Some(ns),
            _ => at(this_year - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-03-04T05:06:07Z
    const NOW: i64 = 1_741_064_767 * NANOS_PER_SECOND;

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        for ns in [0, NOW, -NANOS_PER_DAY, 951_782_400 * NANOS_PER_SECOND] {
            let y = year_of(ns);
            assert!(days_from_civil(y, 1, 1) * NANOS_PER_DAY <= ns);
            assert!(days_from_civil(y + 1, 1, 1) * NANOS_PER_DAY > ns);
        }
        assert_eq!(year_of(NOW), 2025);
    }

    #[test]
    fn rfc3339_with_fraction_and_offsets() {
        // RFC 5424 §6.2.3.1 examples.
        assert_eq!(
            parse_rfc3339(b"1985-04-12T23:20:50.52Z"),
            Ok(482_196_050 * NANOS_PER_SECOND + 520_000_000)
        );
        assert_eq!(
            parse_rfc3339(b"1985-04-12T19:20:50.52-04:00"),
            parse_rfc3339(b"1985-04-12T23:20:50.52Z")
        );
        assert_eq!(
            parse_rfc3339(b"2003-10-11T22:14:15.003Z"),
            Ok(1_065_910_455 * NANOS_PER_SECOND + 3_000_000)
        );
        assert_eq!(
            parse_rfc3339(b"2003-08-24T05:14:15.000003-07:00"),
            Ok(1_061_727_255 * NANOS_PER_SECOND + 3_000)
        );
        assert_eq!(
            parse_rfc3339(b"2003-10-11T22:14:15+01:30"),
            Ok((1_065_910_455 - 5400) * NANOS_PER_SECOND)
        );
    }

    #[test]
    fn rfc3339_errors_name_the_offset() {
        // RFC 5424 §6.2.3.1: invalid examples.
        assert_eq!(
            parse_rfc3339(b"1985-04-12T23:20:50"),
            Err((19, "expected 'Z' or a '+hh:mm'/'-hh:mm' offset"))
        );
        assert_eq!(
            parse_rfc3339(b"2003-08-24T05:14:15.000000003-07:00"),
            Ok(1_061_727_255 * NANOS_PER_SECOND + 3)
        );
        assert_eq!(
            parse_rfc3339(b"2003-08-24T05:14:15.0000000003-07:00").map_err(|e| e.0),
            Err(29)
        );
        assert_eq!(
            parse_rfc3339(b"2003-13-24T05:14:15Z").map_err(|e| e.1),
            Err("date or time out of range")
        );
        assert_eq!(
            parse_rfc3339(b"2003-02-29T05:14:15Z").map_err(|e| e.1),
            Err("date or time out of range")
        );
        assert_eq!(
            parse_rfc3339(b"9999-01-01T00:00:00Z").map_err(|e| e.1),
            Err("date or time out of range")
        );
        assert_eq!(
            parse_rfc3339(b"2003-08-24 05:14:15Z").map_err(|e| e.0),
            Err(10)
        );
        assert_eq!(parse_rfc3339(b"20").map_err(|e| e.0), Err(0));
        assert_eq!(
            parse_rfc3339(b"2003-08-24T05:14:15Zjunk").map_err(|e| e.0),
            Err(20)
        );
    }

    #[test]
    fn bsd_variants() {
        let (ts, n) = parse_bsd(b"Oct 11 22:14:15 host").unwrap();
        assert_eq!(
            (ts.month, ts.day, ts.hour, ts.minute, ts.second, n),
            (10, 11, 22, 14, 15, 15)
        );
        let (ts, n) = parse_bsd(b"Oct  1 22:14:15 host").unwrap();
        assert_eq!((ts.day, n), (1, 15));
        let (ts, n) = parse_bsd(b"Oct 1 22:14:15").unwrap();
        assert_eq!((ts.day, n), (1, 14));
        let (ts, n) = parse_bsd(b"Oct 11 2024 22:14:15.25 x").unwrap();
        assert_eq!((ts.year, ts.nanos, n), (Some(2024), 250_000_000, 23));
        assert!(parse_bsd(b"Foo 11 22:14:15").is_none());
        assert!(parse_bsd(b"Oct 11 22:14").is_none());
        assert!(parse_bsd(b"Oct 11 22-14-15").is_none());
        assert!(parse_bsd(b"Oct").is_none());
    }

    #[test]
    fn bsd_year_inference_rolls_back_for_future_dates() {
        // Now is 2025-03-04; "Mar  4" is this year, "Mar  5 06:00" (within a day) too.
        let ts = |b: &[u8]| parse_bsd(b).unwrap().0.to_unix_ns(NOW).unwrap();
        assert_eq!(year_of(ts(b"Mar  4 05:00:00")), 2025);
        assert_eq!(year_of(ts(b"Mar  5 05:00:00")), 2025);
        // December read in March: last year.
        assert_eq!(year_of(ts(b"Dec 31 23:59:59")), 2024);
        assert_eq!(year_of(ts(b"Mar  6 05:00:00")), 2024);
        // Feb 29 exists neither in 2025 nor in 2024? 2024 is a leap year: falls back there.
        assert_eq!(year_of(ts(b"Feb 29 00:00:00")), 2024);
        let explicit = parse_bsd(b"Feb 29 2023 00:00:00").unwrap().0;
        assert_eq!(explicit.to_unix_ns(NOW), None);
    }
}
