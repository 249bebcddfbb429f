//! Parsers of what scrape targets expose: the Prometheus text format 0.0.4 and OpenMetrics
//! 1.0 text. Both produce [`ParsedSample`]s borrowing from the body; the first error ends the
//! parse with its line number (and Prometheus then fails the whole scrape: a half-read
//! exposition would make series flap).
//!
//! | | Prometheus text 0.0.4 | OpenMetrics 1.0 |
//! |---|---|---|
//! | comments | `# HELP`, `# TYPE`; other `#` lines ignored | `# HELP`, `# TYPE`, `# UNIT`, `# EOF`; other `#` lines ignored |
//! | types | counter, gauge, histogram, summary, untyped | counter, gauge, histogram, gaugehistogram, summary, info, stateset, unknown |
//! | timestamp | integer milliseconds | seconds (float), converted to milliseconds (truncated) |
//! | end | end of body | `# EOF` required, nothing after it |
//! | `_created` | an ordinary sample | skipped for counters, histograms and summaries |
//! | exemplars | — | ignored (` # {…} value [ts]` after a sample) |
//!
//! Samples: `name{label="value",…} value [timestamp]`. Label values unescape `\\`, `\"` and
//! `\n`; another backslash sequence is kept as written (as Prometheus does). Values parse
//! like Go's `ParseFloat`: `NaN`, `+Inf`, `-Inf` included. Metric names must match
//! `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names `[a-zA-Z_][a-zA-Z0-9_]*`, and a label name may
//! appear once per sample. Blank lines are skipped in both formats.

use std::borrow::Cow;
use std::collections::HashMap;

use sightline_model::is_valid_label_name;

use crate::remote_write::is_valid_metric_name;

/// Which text format a body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    PrometheusText,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// The format named by a `Content-Type`; anything but OpenMetrics is read as the
    /// Prometheus text format (what Prometheus 2 does with unknown or missing types).
    pub fn from_content_type(content_type: Option<&str>) -> Self {
        match content_type {
            Some(ct)
                if ct.split(';').next().is_some_and(|m| {
                    m.trim()
                        .eq_ignore_ascii_case("application/openmetrics-text")
                }) =>
            {
                Self::OpenMetrics
            }
            _ => Self::PrometheusText,
        }
    }
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample<'a> {
    /// The metric name and label set as written (`name{a="1"}`): identifies the series
    /// within one target without building its labels.
    pub series: &'a str,
    pub name: &'a str,
    /// Labels in the order written, values unescaped.
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    pub value: f64,
    /// Milliseconds since the Unix epoch, when the line has a timestamp.
    pub timestamp_ms: Option<i64>,
}

/// Why an exposition could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

/// The metric family types each format allows.
const TEXT_TYPES: &[&str] = &["counter", "gauge", "histogram", "summary", "untyped"];
const OM_TYPES: &[&str] = &[
    "counter",
    "gauge",
    "histogram",
    "gaugehistogram",
    "summary",
    "info",
    "stateset",
    "unknown",
];

/// Parses a whole body.
pub fn parse(format: Format, text: &str) -> Result<Vec<ParsedSample<'_>>, ParseError> {
    let om = format == Format::OpenMetrics;
    let mut samples = Vec::new();
    // Family name → type, from `# TYPE` lines (needed to know which `_created` to skip).
    let mut types: HashMap<&str, &str> = HashMap::new();
    let mut eof_line = None;
    let line_count = text.split('\n').count();
    for (i, line) in text.split('\n').enumerate() {
        let n = i + 1;
        let err = |message: String| ParseError { line: n, message };
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(eof) = eof_line {
            if line.is_empty() && i + 1 == line_count {
                break; // the final newline after `# EOF`
            }
            return Err(err(format!("content after \"# EOF\" (line {eof})")));
        }
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut parts = comment.trim_start().splitn(3, [' ', '\t']);
            let keyword = parts.next().unwrap_or("");
            match keyword {
                "TYPE" => {
                    let name = parts.next().unwrap_or("");
                    let kind = parts.next().unwrap_or("").trim();
                    if !is_valid_metric_name(name) {
                        return Err(err(format!("invalid metric name {name:?} in TYPE line")));
                    }
                    let allowed = if om { OM_TYPES } else { TEXT_TYPES };
                    if !allowed.contains(&kind) {
                        return Err(err(format!(
                            "unknown metric type {kind:?} for {name:?}; expected one of {}",
                            allowed.join(", ")
                        )));
                    }
                    types.insert(name, kind);
                }
                "EOF" if om && comment.trim() == "EOF" => eof_line = Some(n),
                _ => {} // HELP, UNIT and other comments carry nothing we store.
            }
            continue;
        }
        let sample = parse_sample(line, om).map_err(err)?;
        if om && skip_created(sample.name, &types) {
            continue;
        }
        samples.push(sample);
    }
    if om && eof_line.is_none() {
        return Err(ParseError {
            line: line_count,
            message: "missing \"# EOF\" at the end of an OpenMetrics exposition".into(),
        });
    }
    Ok(samples)
}

/// Whether `name` is the `_created` series of a counter, histogram or summary family.
fn skip_created(name: &str, types: &HashMap<&str, &str>) -> bool {
    name.strip_suffix("_created")
        .and_then(|family| types.get(family))
        .is_some_and(|t| matches!(*t, "counter" | "histogram" | "summary"))
}

/// Parses one sample line; the error is the message (the caller adds the line number).
fn parse_sample(line: &str, om: bool) -> Result<ParsedSample<'_>, String> {
    let bytes = line.as_bytes();
    let name_end = bytes
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_' || c == b':'))
        .unwrap_or(bytes.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return Err(format!(
            "expected a metric name at column 1, found {:?}",
            line.chars().next().unwrap_or(' ')
        ));
    }
    if !is_valid_metric_name(name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    // The text format allows blanks between the name and `{`; OpenMetrics does not.
    let brace = if om {
        name_end
    } else {
        skip_ws(bytes, name_end)
    };
    let mut pos = name_end;
    let mut labels: Vec<(&str, Cow<'_, str>)> = Vec::new();
    let mut series_end = name_end;
    if bytes.get(brace) == Some(&b'{') {
        pos = brace + 1;
        loop {
            pos = skip_ws(bytes, pos);
            if bytes.get(pos) == Some(&b'}') {
                pos += 1;
                break;
            }
            let start = pos;
            while pos < bytes.len() && (bytes[pos].is_ascii_alphanumeric() || bytes[pos] == b'_') {
                pos += 1;
            }
            let lname = &line[start..pos];
            if lname.is_empty() || !is_valid_label_name(lname) {
                return Err(format!(
                    "invalid label name at column {}: {:?}",
                    start + 1,
                    if lname.is_empty() {
                        line[start..]
                            .chars()
                            .next()
                            .map(String::from)
                            .unwrap_or_default()
                    } else {
                        lname.to_string()
                    }
                ));
            }
            pos = skip_ws(bytes, pos);
            if bytes.get(pos) != Some(&b'=') {
                return Err(format!(
                    "expected '=' after label name {lname:?} at column {}",
                    pos + 1
                ));
            }
            pos = skip_ws(bytes, pos + 1);
            if bytes.get(pos) != Some(&b'"') {
                return Err(format!(
                    "expected '\"' to open the value of label {lname:?} at column {}",
                    pos + 1
                ));
            }
            let (value, after) = label_value(line, pos + 1)
                .ok_or_else(|| format!("unterminated value of label {lname:?}"))?;
            if labels.iter().any(|(n, _)| *n == lname) {
                return Err(format!("duplicate label name {lname:?}"));
            }
            labels.push((lname, value));
            pos = skip_ws(bytes, after);
            match bytes.get(pos) {
                Some(b',') => pos += 1,
                Some(b'}') => {
                    pos += 1;
                    break;
                }
                _ => {
                    return Err(format!(
                        "expected ',' or '}}' after the value of label {lname:?} at column {}",
                        pos + 1
                    ));
                }
            }
        }
        series_end = pos;
    }
    let series = &line[..series_end];
    if !matches!(bytes.get(pos), Some(b' ' | b'\t')) {
        return Err(format!(
            "expected a space and a value after {:?} at column {}",
            shorten(series),
            pos + 1
        ));
    }
    let rest = &line[pos..];
    // OpenMetrics exemplar: everything from " # " on is ignored.
    let rest = if om {
        rest.split_once(" # ").map_or(rest, |(before, _)| before)
    } else {
        rest
    };
    let mut fields = rest.split_ascii_whitespace();
    let value_text = fields.next().ok_or("missing value")?;
    let value = parse_value(value_text)
        .ok_or_else(|| format!("invalid value {value_text:?} for {:?}", shorten(series)))?;
    let timestamp_ms = match fields.next() {
        None => None,
        Some(ts) if om => {
            let secs: f64 = ts
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite())
                .ok_or_else(|| format!("invalid timestamp {ts:?} (OpenMetrics: seconds)"))?;
            Some((secs * 1000.0) as i64)
        }
        Some(ts) => Some(
            ts.parse::<i64>()
                .map_err(|_| format!("invalid timestamp {ts:?} (integer milliseconds)"))?,
        ),
    };
    if let Some(extra) = fields.next() {
        return Err(format!("unexpected {extra:?} after the timestamp"));
    }
    Ok(ParsedSample {
        series,
        name,
        labels,
        value,
        timestamp_ms,
    })
}

fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while matches!(bytes.get(pos), Some(b' ' | b'\t')) {
        pos += 1;
    }
    pos
}

/// The unescaped label value starting at byte `start` (just after the opening quote) and the
/// position after its closing quote; `None` if it never closes.
fn label_value(line: &str, start: usize) -> Option<(Cow<'_, str>, usize)> {
    let bytes = line.as_bytes();
    let mut pos = start;
    let mut escaped = false;
    while pos < bytes.len() {
        match bytes[pos] {
            b'\\' => {
                escaped = true;
                pos += 2;
            }
            b'"' => break,
            _ => pos += 1,
        }
    }
    if pos >= bytes.len() {
        return None;
    }
    let raw = &line[start..pos];
    let value = if escaped {
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('n') => out.push('\n'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        }
        Cow::Owned(out)
    } else {
        Cow::Borrowed(raw)
    };
    Some((value, pos + 1))
}

/// A sample value, as Go's `strconv.ParseFloat` reads it (`NaN`, `+Inf`, `-Inf`, `Inf`,
/// any case).
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

fn shorten(s: &str) -> &str {
    let mut end = s.len().min(120);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Name, labels, value and timestamp of a sample, owned.
    type Owned = (String, Vec<(String, String)>, f64, Option<i64>);

    fn summary(samples: &[ParsedSample<'_>]) -> Vec<Owned> {
        samples
            .iter()
            .map(|s| {
                (
                    s.name.to_string(),
                    s.labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    s.value,
                    s.timestamp_ms,
                )
            })
            .collect()
    }

    const TEXT: &str = "# HELP http_requests_total The total number of HTTP requests.\n\
# TYPE http_requests_total counter\n\
http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\
\n\
# Escaping in label values:\n\
msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
\n\
# Minimalistic line:\n\
metric_without_timestamp_and_labels 12.47\n\
\n\
# A weird metric from before the epoch:\n\
something_weird{problem=\"division by zero\"} +Inf -3982045\n\
\n\
# A histogram, which has a pretty complex representation in the text format:\n\
# TYPE http_request_duration_seconds histogram\n\
http_request_duration_seconds_bucket{le=\"0.05\"} 24054\n\
http_request_duration_seconds_bucket{le=\"+Inf\"} 144320\n\
http_request_duration_seconds_sum 53423\n\
http_request_duration_seconds_count 144320\n\
\n\
# Finally a summary, which has a complex representation, too:\n\
# TYPE rpc_duration_seconds summary\n\
rpc_duration_seconds{quantile=\"0.01\"} 3102\n\
rpc_duration_seconds{quantile=\"0.99\"} NaN\n\
rpc_duration_seconds_sum 1.7560473e+07\n\
rpc_duration_seconds_count 2693\n\
trailing_comma{a=\"1\",} -Inf\n\
spaced { a = \"x\" } 1\n";

    #[test]
    fn prometheus_text_format_example() {
        let samples = parse(Format::PrometheusText, TEXT).unwrap();
        let s = summary(&samples);
        assert_eq!(s.len(), 15);
        assert_eq!(
            s[0],
            (
                "http_requests_total".into(),
                vec![
                    ("method".into(), "post".into()),
                    ("code".into(), "200".into())
                ],
                1027.0,
                Some(1_395_066_363_000)
            )
        );
        assert_eq!(
            samples[0].series,
            "http_requests_total{method=\"post\",code=\"200\"}"
        );
        assert_eq!(s[1].2, 3.0);
        assert_eq!(
            s[2].1,
            vec![
                ("path".into(), r"C:\DIR\FILE.TXT".into()),
                ("error".into(), "Cannot find file:\n\"FILE.TXT\"".into())
            ]
        );
        assert_eq!(s[2].2, 1.458255915e9);
        assert_eq!(
            (s[3].0.as_str(), s[3].1.len(), s[3].3),
            ("metric_without_timestamp_and_labels", 0, None)
        );
        assert_eq!((s[4].2, s[4].3), (f64::INFINITY, Some(-3_982_045)));
        assert_eq!(s[6].1, vec![("le".into(), "+Inf".into())]);
        assert!(s[10].2.is_nan());
        assert_eq!(s[11].2, 1.7560473e7);
        assert_eq!(s[13].2, f64::NEG_INFINITY);
        assert_eq!(s[14].1, vec![("a".into(), "x".into())]);
        assert_eq!(samples[14].series, "spaced { a = \"x\" }");
    }

    const OM: &str = "# TYPE acme_http_router_request_seconds summary\n\
# UNIT acme_http_router_request_seconds seconds\n\
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.\n\
acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} 9036.32\n\
acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283.0\n\
acme_http_router_request_seconds_created{path=\"/api/v1\",method=\"GET\"} 1605281325.0\n\
# TYPE foo counter\n\
foo_total 17.0 1520879607.789 # {id=\"counter-test\"} 5\n\
foo_created 1520430000.123\n\
# TYPE build info\n\
build_info{version=\"1.2\"} 1\n\
# TYPE door stateset\n\
door{door=\"open\"} 1\n\
# TYPE temp gauge\n\
temp_created 3\n\
# EOF\n";

    #[test]
    fn openmetrics_example() {
        let samples = parse(Format::OpenMetrics, OM).unwrap();
        let names: Vec<&str> = samples.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "acme_http_router_request_seconds_sum",
                "acme_http_router_request_seconds_count",
                "foo_total",
                "build_info",
                "door",
                "temp_created"
            ],
            "_created of counters and summaries are skipped, a gauge's is not"
        );
        assert_eq!(samples[2].value, 17.0);
        assert_eq!(samples[2].timestamp_ms, Some(1_520_879_607_789));
        assert_eq!(samples[1].value, 807_283.0);
    }

    #[test]
    fn openmetrics_requires_eof_and_nothing_after() {
        let err = parse(Format::OpenMetrics, "a 1\n").unwrap_err();
        assert!(err.message.contains("missing \"# EOF\""), "{err}");
        let err = parse(Format::OpenMetrics, "a 1\n# EOF\nb 2\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(
            err.message.contains("content after \"# EOF\" (line 2)"),
            "{err}"
        );
        assert!(parse(Format::OpenMetrics, "a 1\n# EOF").is_ok());
        assert!(parse(Format::OpenMetrics, "# EOF\n").unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_line_and_what() {
        let cases = [
            ("ok 1\n9bad 1\n", 2, "invalid metric name \"9bad\""),
            ("{a=\"b\"} 1\n", 1, "expected a metric name at column 1"),
            ("m{a-b=\"x\"} 1\n", 1, "expected '=' after label name \"a\""),
            ("m{=\"x\"} 1\n", 1, "invalid label name at column 3"),
            (
                "m{a=x} 1\n",
                1,
                "expected '\"' to open the value of label \"a\"",
            ),
            ("m{a=\"x} 1\n", 1, "unterminated value of label \"a\""),
            (
                "m{a=\"x\" b=\"y\"} 1\n",
                1,
                "expected ',' or '}' after the value of label \"a\"",
            ),
            ("m{a=\"1\",a=\"2\"} 1\n", 1, "duplicate label name \"a\""),
            ("m\n", 1, "expected a space and a value after \"m\""),
            ("m abc\n", 1, "invalid value \"abc\" for \"m\""),
            (
                "m 1 1.5\n",
                1,
                "invalid timestamp \"1.5\" (integer milliseconds)",
            ),
            ("m 1 2 3\n", 1, "unexpected \"3\" after the timestamp"),
            (
                "# TYPE m histogramm\n",
                1,
                "unknown metric type \"histogramm\"",
            ),
        ];
        for (text, line, needle) in cases {
            let err = parse(Format::PrometheusText, text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert!(err.message.contains(needle), "{text:?}: {err}");
            assert!(err.to_string().starts_with(&format!("line {line}: ")));
        }
        let err = parse(Format::OpenMetrics, "m 1 abc\n# EOF\n").unwrap_err();
        assert!(err.message.contains("(OpenMetrics: seconds)"), "{err}");
        let err = parse(Format::OpenMetrics, "# TYPE m untyped\n# EOF\n").unwrap_err();
        assert!(
            err.message.contains("unknown metric type \"untyped\""),
            "{err}"
        );
    }

    #[test]
    fn unknown_escapes_are_kept_and_crlf_is_accepted() {
        let s = parse(Format::PrometheusText, "m{a=\"x\\ty\"} 1\r\n").unwrap();
        assert_eq!(s[0].labels[0].1, "x\\ty");
        assert_eq!(s[0].value, 1.0);
    }

    #[test]
    fn content_types() {
        assert_eq!(
            Format::from_content_type(Some(
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            )),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_content_type(Some("text/plain; version=0.0.4")),
            Format::PrometheusText
        );
        assert_eq!(Format::from_content_type(None), Format::PrometheusText);
    }
}
