//! Prometheus's series notation, shared by the `.test` script harness and rule unit tests:
//! a series description (`metric{label="value", …}`) followed by an expanding value
//! sequence (`1 2+3x4 _ _x2 stale Inf {{schema:0 sum:5 count:4 buckets:[1 2 1]}}x3`), as
//! `promqltest` and `promtool test rules` read it, and the counter reset hints Prometheus's
//! TSDB gives native histograms as they are stored.

use sightline_model::{Labels, METRIC_NAME_LABEL, stale_nan};

use crate::histogram::{CounterResetHint, FloatHistogram};
use crate::source::HistogramSample;

/// The most values one sequence may expand to: `1x99999999999` would otherwise exhaust
/// memory before anything could refuse it.
pub const MAX_VALUES: u64 = 10_000_000;

/// One value of an expanded sequence.
#[derive(Debug, Clone, PartialEq)]
pub enum SeqValue {
    /// `_`: no sample at this step.
    Omitted,
    /// A float; `stale` is the staleness marker NaN.
    Float(f64),
    /// A native histogram, and whether its counter reset hint was written explicitly.
    Histogram(Box<FloatHistogram>, bool),
}

impl SeqValue {
    pub fn is_histogram(&self) -> bool {
        matches!(self, SeqValue::Histogram(..))
    }
}

/// Parses a label set alone, as Prometheus's `ParseMetric`: `metric{a="b"}`, `{a="b"}`, or
/// nothing (the empty set).
pub fn parse_metric(s: &str) -> Result<Labels, String> {
    if s.trim().is_empty() {
        return Ok(Labels::default());
    }
    let (labels, values) = parse_series_desc(s.trim())?;
    if !values.is_empty() {
        return Err(format!("unexpected values after the labels in {s:?}"));
    }
    Ok(labels)
}

/// The counter reset hint Prometheus's TSDB gives a histogram stored after `prev` (the
/// previous sample of its series if that was a histogram of the same chunk, `None` when a
/// float sample, a staleness marker or nothing came before). An explicit gauge or reset
/// hint is kept; the first histogram of a chunk reads back with an unknown hint, later ones
/// say whether a reset was detected (Prometheus issue 15346: a detected reset cuts a new
/// chunk, whose hint is not kept).
pub fn stored_counter_reset_hint(
    prev: Option<&FloatHistogram>,
    h: &FloatHistogram,
) -> CounterResetHint {
    match (h.counter_reset_hint, prev) {
        (CounterResetHint::Gauge, _) => CounterResetHint::Gauge,
        (CounterResetHint::CounterReset, _) => CounterResetHint::CounterReset,
        (_, None) => CounterResetHint::Unknown,
        (_, Some(p)) if p.counter_reset_hint == CounterResetHint::Gauge => {
            CounterResetHint::Unknown
        }
        (_, Some(p)) => {
            let mut probe = h.clone();
            probe.counter_reset_hint = CounterResetHint::Unknown;
            if probe.detect_reset(p) {
                CounterResetHint::Unknown
            } else {
                CounterResetHint::NotCounterReset
            }
        }
    }
}

/// Sets the hints [`stored_counter_reset_hint`] gives each of a series' histograms (sorted
/// by time), given the times of its float samples (staleness markers included), which end
/// a chunk.
pub fn set_counter_reset_hints(float_times: &[i64], hists: &mut [HistogramSample]) {
    let mut prev: Option<FloatHistogram> = None;
    let mut fi = 0;
    for hs in hists {
        while fi < float_times.len() && float_times[fi] < hs.t {
            prev = None;
            fi += 1;
        }
        hs.h.counter_reset_hint = stored_counter_reset_hint(prev.as_ref(), &hs.h);
        prev = Some(hs.h.clone());
    }
}

/// Go's `strconv.Unquote` for `"…"`, `'…'` and `` `…` `` strings.
pub(crate) fn unquote(s: &str) -> Option<String> {
    let q = s.chars().next()?;
    if !matches!(q, '"' | '\'' | '`') || s.len() < 2 || !s.ends_with(q) {
        return None;
    }
    let body = &s[1..s.len() - 1];
    if q == '`' {
        return Some(body.to_string());
    }
    let mut out = String::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'x' => {
                let h: String = (0..2).filter_map(|_| chars.next()).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            'u' => {
                let h: String = (0..4).filter_map(|_| chars.next()).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            'U' => {
                let h: String = (0..8).filter_map(|_| chars.next()).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            d @ '0'..='7' => {
                let mut o = String::from(d);
                for _ in 0..2 {
                    o.push(chars.next()?);
                }
                out.push(char::from_u32(u32::from_str_radix(&o, 8).ok()?)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Parses `metric{label="value", …} <values>` (Prometheus's `ParseSeriesDesc`).
pub fn parse_series_desc(line: &str) -> Result<(Labels, Vec<SeqValue>), String> {
    let b = line.as_bytes();
    let mut i = 0;
    let mut pairs: Vec<(String, String)> = Vec::new();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    if b.first().is_some_and(u8::is_ascii_digit) {
        return Err(format!("expected a series description, got {line:?}"));
    }
    while i < b.len() && is_ident(b[i]) {
        i += 1;
    }
    if i > 0 {
        pairs.push((METRIC_NAME_LABEL.to_string(), line[..i].to_string()));
    }
    if i < b.len() && b[i] == b'{' {
        i += 1;
        loop {
            while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
                i += 1;
            }
            if i >= b.len() {
                return Err("unterminated label set".into());
            }
            if b[i] == b'}' {
                i += 1;
                break;
            }
            let quoted = matches!(b[i], b'"' | b'\'' | b'`');
            let name = if quoted {
                let (s, next) = read_quoted(line, i)?;
                i = next;
                s
            } else {
                let start = i;
                while i < b.len() && is_ident(b[i]) && b[i] != b':' {
                    i += 1;
                }
                if start == i || b[start].is_ascii_digit() {
                    return Err(format!("unexpected character in labels at {}", start + 1));
                }
                line[start..i].to_string()
            };
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && b[i] == b'=' {
                i += 1;
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                let (value, next) = read_quoted(line, i)?;
                i = next;
                pairs.push((name, value));
            } else if quoted {
                // A bare quoted name is the metric name.
                pairs.push((METRIC_NAME_LABEL.to_string(), name));
            } else {
                return Err(format!("expected '=' after label name {name:?}"));
            }
        }
    }
    if i == 0 {
        return Err(format!("expected a series description, got {line:?}"));
    }
    let values = parse_values(&line[i..])?;
    Ok((Labels::from_pairs(pairs), values))
}

fn read_quoted(line: &str, i: usize) -> Result<(String, usize), String> {
    let b = line.as_bytes();
    let q = *b.get(i).ok_or("expected a quoted string")?;
    if !matches!(q, b'"' | b'\'' | b'`') {
        return Err(format!("expected a quoted string at {}", i + 1));
    }
    let mut j = i + 1;
    while j < b.len() {
        if b[j] == b'\\' && q != b'`' {
            j += 2;
            continue;
        }
        if b[j] == q {
            let s = unquote(&line[i..=j]).ok_or("invalid quoted string")?;
            return Ok((s, j + 1));
        }
        j += 1;
    }
    Err("unterminated string".into())
}

/// Expands a value sequence: `1 2+3x4 _ _x2 stale Inf {{…}}x3`.
pub fn parse_values(s: &str) -> Result<Vec<SeqValue>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let times = |i: &mut usize| -> Result<Option<u64>, String> {
        if *i < b.len() && b[*i] == b'x' {
            *i += 1;
            let start = *i;
            while *i < b.len() && b[*i].is_ascii_digit() {
                *i += 1;
            }
            return s[start..*i]
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("invalid repetition in {s:?}"));
        }
        Ok(None)
    };
    let room = |have: usize, more: u64| -> Result<(), String> {
        if (have as u64).saturating_add(more) > MAX_VALUES {
            return Err(format!("{s:?} expands to more than {MAX_VALUES} values"));
        }
        Ok(())
    };
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if s[i..].starts_with("{{") {
            let (first, next) = read_histogram(s, i)?;
            i = next;
            let mut inc: Option<(FloatHistogram, f64)> = None;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') && s[i + 1..].starts_with("{{") {
                let sign = if b[i] == b'+' { 1.0 } else { -1.0 };
                let (d, next) = read_histogram(s, i + 1)?;
                inc = Some((d.0, sign));
                i = next;
            }
            let n = times(&mut i)?.unwrap_or(0);
            room(out.len(), n + 1)?;
            let (mut cur, hint_set) = first;
            out.push(SeqValue::Histogram(Box::new(cur.clone()), hint_set));
            for _ in 0..n {
                if let Some((d, sign)) = &inc {
                    let r = if *sign > 0.0 { cur.add(d) } else { cur.sub(d) };
                    r.map_err(|_| format!("cannot combine histograms in {s:?}"))?;
                }
                out.push(SeqValue::Histogram(Box::new(cur.clone()), hint_set));
            }
            continue;
        }
        if b[i] == b'_' {
            i += 1;
            let n = times(&mut i)?.unwrap_or(1);
            room(out.len(), n)?;
            out.extend((0..n).map(|_| SeqValue::Omitted));
            continue;
        }
        let (first, next) = read_number(s, i)?;
        i = next;
        let mut delta = 0.0;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            let (d, next) = read_number(s, i)?;
            delta = match d {
                SeqValue::Float(f) => f,
                _ => return Err(format!("invalid increment in {s:?}")),
            };
            i = next;
        }
        match times(&mut i)? {
            None => {
                room(out.len(), 1)?;
                out.push(first);
            }
            Some(n) => {
                let SeqValue::Float(mut v) = first else {
                    return Err(format!("cannot repeat {s:?}"));
                };
                room(out.len(), n.saturating_add(1))?;
                for _ in 0..=n {
                    out.push(SeqValue::Float(v));
                    v += delta;
                }
            }
        }
    }
    Ok(out)
}

/// Reads a `{{schema:0 sum:5 count:4 buckets:[1 2 1] …}}` histogram starting at `i`.
fn read_histogram(s: &str, i: usize) -> Result<((FloatHistogram, bool), usize), String> {
    let end = s[i..].find("}}").ok_or("unterminated histogram")? + i;
    let body = &s[i + 2..end];
    let mut h = FloatHistogram::default();
    let mut hint_set = false;
    let mut positive: Vec<f64> = Vec::new();
    let mut negative: Vec<f64> = Vec::new();
    let (mut offset, mut n_offset) = (0i32, 0i32);
    let mut rest = body.trim();
    while !rest.is_empty() {
        let colon = rest
            .find(':')
            .ok_or_else(|| format!("invalid histogram {body:?}"))?;
        let key = rest[..colon].trim();
        rest = rest[colon + 1..].trim_start();
        let value = if rest.starts_with('[') {
            let close = rest
                .find(']')
                .ok_or_else(|| format!("invalid histogram {body:?}"))?;
            let v = &rest[1..close];
            rest = rest[close + 1..].trim_start();
            v
        } else {
            let stop = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let v = &rest[..stop];
            rest = rest[stop..].trim_start();
            v
        };
        let num = |v: &str| {
            crate::functions::go_parse_float(v).ok_or_else(|| format!("invalid number {v:?}"))
        };
        let list =
            |v: &str| -> Result<Vec<f64>, String> { v.split_whitespace().map(num).collect() };
        match key {
            "schema" => h.schema = num(value)? as i32,
            "sum" => h.sum = num(value)?,
            "count" => h.count = num(value)?,
            "z_bucket" => h.zero_count = num(value)?,
            "z_bucket_w" => h.zero_threshold = num(value)?,
            "offset" => offset = num(value)? as i32,
            "n_offset" => n_offset = num(value)? as i32,
            "buckets" => positive = list(value)?,
            "n_buckets" => negative = list(value)?,
            "custom_values" => h.custom_values = list(value)?.into(),
            "counter_reset_hint" => {
                hint_set = true;
                h.counter_reset_hint = match value {
                    "reset" => CounterResetHint::CounterReset,
                    "not_reset" => CounterResetHint::NotCounterReset,
                    "gauge" => CounterResetHint::Gauge,
                    _ => CounterResetHint::Unknown,
                };
            }
            other => return Err(format!("unknown histogram field {other:?}")),
        }
    }
    let index = |start: i32, v: Vec<f64>| -> Vec<(i32, f64)> {
        v.into_iter()
            .enumerate()
            .map(|(k, c)| (start + k as i32, c))
            .filter(|(_, c)| *c != 0.0)
            .collect()
    };
    h.positive = index(offset, positive);
    h.negative = index(n_offset, negative);
    Ok(((h, hint_set), end + 2))
}

fn read_number(s: &str, mut i: usize) -> Result<(SeqValue, usize), String> {
    let b = s.as_bytes();
    let start = i;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let body = i;
    if i < b.len() && b[i].is_ascii_alphabetic() {
        while i < b.len() && b[i].is_ascii_alphabetic() && b[i] != b'x' {
            i += 1;
        }
        let word = &s[body..i];
        if word.eq_ignore_ascii_case("stale") && start == body {
            return Ok((SeqValue::Float(stale_nan()), i));
        }
    } else {
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            let mut k = i + 1;
            if k < b.len() && (b[k] == b'+' || b[k] == b'-') {
                k += 1;
            }
            if k < b.len() && b[k].is_ascii_digit() {
                i = k;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
        }
    }
    let text = &s[start..i];
    crate::functions::go_parse_float(text)
        .map(|f| (SeqValue::Float(f), i))
        .ok_or_else(|| format!("invalid value {text:?} in {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_value_sequences() {
        let (l, v) = parse_series_desc(
            r#"foo{a="b", c="d\"e"} 1+2x2 _ stale -1-1x1 _x2 {{schema:0 count:1}}x1"#,
        )
        .unwrap();
        assert_eq!(
            l,
            Labels::from_pairs([("__name__", "foo"), ("a", "b"), ("c", "d\"e")])
        );
        assert_eq!(
            v[..3],
            [
                SeqValue::Float(1.0),
                SeqValue::Float(3.0),
                SeqValue::Float(5.0)
            ]
        );
        assert_eq!(v[3], SeqValue::Omitted);
        assert!(matches!(v[4], SeqValue::Float(f) if sightline_model::is_stale_nan(f)));
        assert_eq!(v[5..7], [SeqValue::Float(-1.0), SeqValue::Float(-2.0)]);
        assert_eq!(v[7..9], [SeqValue::Omitted, SeqValue::Omitted]);
        assert!(v[9..].iter().all(SeqValue::is_histogram) && v.len() == 11);
        let (l, v) = parse_series_desc(r#"{"some.metric", job="x"} 1e-3 Inf -Inf NaN"#).unwrap();
        assert_eq!(l.get("__name__"), Some("some.metric"));
        assert_eq!(v.len(), 4);
    }

    #[test]
    fn refuses_malformed_series_and_runaway_expansions() {
        assert!(parse_series_desc(r#"up{job="prometheus", instance="x" 0+0x1440"#).is_err());
        assert!(parse_series_desc(r#"up{job} 1"#).is_err());
        assert!(parse_series_desc(r#"up{0a="b"} 1"#).is_err());
        assert!(parse_series_desc("1abc 1").is_err());
        assert!(parse_values("1x99999999999").is_err());
        assert!(parse_values("_x99999999999").is_err());
        assert!(parse_values("1 2 abc").is_err());
    }

    #[test]
    fn parses_a_label_set_alone() {
        assert_eq!(parse_metric("").unwrap(), Labels::default());
        assert_eq!(
            parse_metric(r#"{job="test"}"#).unwrap(),
            Labels::from_pairs([("job", "test")])
        );
        assert_eq!(
            parse_metric("test").unwrap(),
            Labels::from_pairs([("__name__", "test")])
        );
        assert!(parse_metric("test{").is_err());
        assert!(parse_metric("test 1").is_err());
    }
}
