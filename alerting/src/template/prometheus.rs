//! Prometheus's and Alertmanager's template functions, and alert-annotation expansion.
//!
//! Outputs follow Prometheus's `template/template.go` and Alertmanager's
//! `template/template.go`: the humanize family formats with Go's `%.4g`, timestamps print
//! as Go's `time.Time`, and label sets sort with `alertname` first as Alertmanager's `KV` does.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Local, TimeZone, Utc};
use regex::Regex;

use super::functions::{Arity, Funcs, expect_str, wrong_type};
use super::gofmt;
use super::value::Value;
use super::{MissingKey, Template, TemplateError};

/// One sample of an instant query, as the `query` function hands it to templates
/// (a map with `Labels` and `Value`).
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Runs the instant queries of the `query` template function at the evaluation time.
pub trait QueryEngine: Send + Sync {
    /// Returns the samples of `query`, or a message that fails the template.
    fn query(&self, query: &str) -> Result<Vec<QuerySample>, String>;
}

impl<F> QueryEngine for F
where
    F: Fn(&str) -> Result<Vec<QuerySample>, String> + Send + Sync,
{
    fn query(&self, query: &str) -> Result<Vec<QuerySample>, String> {
        self(query)
    }
}

impl QuerySample {
    /// Returns the template view of the sample: `{Labels: map, Value: float}`.
    pub fn to_value(&self) -> Value {
        let mut map = BTreeMap::new();
        map.insert(
            "Labels".to_owned(),
            Value::string_map(self.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        );
        map.insert("Value".to_owned(), Value::Float(self.value));
        Value::Map(map)
    }
}

/// Prometheus's `convertToFloat`: numbers, numeric strings and durations (as seconds).
fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Duration(d) => Ok(*d as f64 / 1e9),
        Value::String(s) => parse_go_float(s).ok_or_else(|| {
            format!(
                "strconv.ParseFloat: parsing {}: invalid syntax",
                gofmt::quote(s)
            )
        }),
        other => Err(format!("can't convert {} to float", other.type_name())),
    }
}

fn parse_go_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    // Go accepts `Inf`, `+Inf`, `infinity` and `NaN`; Rust's parser agrees on those but also
    // takes forms Go rejects, so only plain decimal syntax goes through it otherwise.
    let special = matches!(unsigned, "inf" | "infinity" | "nan");
    let decimal = !unsigned.is_empty()
        && unsigned
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'));
    if special || decimal {
        lower.parse().ok()
    } else {
        None
    }
}

fn go_g4(v: f64) -> String {
    gofmt::format_float_g(v, Some(4))
}

/// Scales by 1000 towards 1 with SI prefixes for values below one (`m u n p f a z y`).
fn small_prefix(mut v: f64) -> (f64, &'static str) {
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    (v, prefix)
}

/// `humanize`: SI prefixes, 4 significant digits.
pub fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return go_g4(v);
    }
    if v.abs() >= 1.0 {
        let mut prefix = "";
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
        return format!("{}{prefix}", go_g4(v));
    }
    let (v, prefix) = small_prefix(v);
    format!("{}{prefix}", go_g4(v))
}

/// `humanize1024`: binary prefixes (`ki Mi Gi …`), 4 significant digits.
pub fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return go_g4(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", go_g4(v))
}

/// `humanizeDuration`: seconds as `1d 2h 3m 4s`, or with SI prefixes below one second.
pub fn humanize_duration(v: f64) -> String {
    if !v.is_finite() {
        return go_g4(v);
    }
    if v == 0.0 {
        return format!("{}s", go_g4(v));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let v = v.abs();
        // Go converts with int64(v): truncation, saturating here instead of wrapping.
        let whole = v as i64;
        let seconds = whole % 60;
        let minutes = whole / 60 % 60;
        let hours = whole / 3600 % 24;
        let days = whole / 86400;
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", go_g4(v));
    }
    let (v, prefix) = small_prefix(v);
    format!("{}{prefix}s", go_g4(v))
}

/// `humanizePercentage`: a ratio as a percentage with 4 significant digits.
pub fn humanize_percentage(v: f64) -> String {
    format!("{}%", go_g4(v * 100.0))
}

/// Prometheus's `floatToTime`: seconds to a UTC time at millisecond precision.
fn float_to_time(v: f64) -> Result<DateTime<FixedOffset>, String> {
    if !v.is_finite() {
        return Err("value is NaN or Inf".to_owned());
    }
    let nanos = v * 1e9;
    if nanos >= i64::MAX as f64 || nanos < i64::MIN as f64 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            gofmt::format_float_v(v)
        ));
    }
    let millis = nanos as i64 / 1_000_000;
    Utc.timestamp_millis_opt(millis)
        .single()
        .map(|t| t.fixed_offset())
        .ok_or_else(|| {
            format!(
                "{} is out of the representable time range",
                gofmt::format_float_v(v)
            )
        })
}

/// `humanizeTimestamp`: seconds since the epoch as Go prints a UTC `time.Time`.
pub fn humanize_timestamp(v: f64) -> Result<String, String> {
    if !v.is_finite() {
        return Ok(go_g4(v));
    }
    Ok(gofmt::format_time_default(&float_to_time(v)?))
}

/// Prometheus's duration syntax (`1h30m`, `5m`, `1d`, `2w`, `1y`, `250ms`) in seconds.
pub fn parse_prometheus_duration(s: &str) -> Result<f64, String> {
    let invalid = || format!("not a valid duration string: {s:?}");
    if s == "0" {
        return Ok(0.0);
    }
    if s.is_empty() {
        return Err("empty duration string".to_owned());
    }
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut rest = s;
    let mut millis: u64 = 0;
    let mut last_unit = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let index = UNITS
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(invalid)?;
        // Units must appear from largest to smallest, each at most once.
        if last_unit.is_some_and(|last| index <= last) {
            return Err(invalid());
        }
        last_unit = Some(index);
        millis = n
            .checked_mul(UNITS[index].1)
            .and_then(|m| millis.checked_add(m))
            .ok_or_else(|| "duration out of range".to_owned())?;
    }
    Ok(millis as f64 / 1000.0)
}

/// Capitalises the first letter of each word; `lower_rest` also lowercases the others
/// (Alertmanager's `cases.Title`; Prometheus keeps them as they are).
pub fn title_case(s: &str, lower_rest: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev: Option<char> = None;
    for c in s.chars() {
        let separator = prev.is_none_or(|p| {
            if p.is_ascii() {
                !(p.is_ascii_alphanumeric() || p == '_' || p == '\'')
            } else {
                // Non-ASCII letters and digits join words; only spaces separate them.
                p.is_whitespace()
            }
        });
        if separator {
            out.extend(c.to_uppercase());
        } else if lower_rest {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
        prev = Some(c);
    }
    out
}

/// Go's `net.SplitHostPort`.
fn split_host_port(host_port: &str) -> Option<(String, String)> {
    if let Some(rest) = host_port.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        if port.contains(':') {
            return None;
        }
        return Some((host.to_owned(), port.to_owned()));
    }
    let (host, port) = host_port.rsplit_once(':')?;
    if host.contains(':') || host.contains('[') || host.contains(']') {
        return None;
    }
    Some((host.to_owned(), port.to_owned()))
}

fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `stripPort`: the host of `host:port`, or the input when it has no port.
pub fn strip_port(host_port: &str) -> String {
    split_host_port(host_port).map_or_else(|| host_port.to_owned(), |(host, _)| host)
}

/// `stripDomain`: the first label of a hostname, keeping any port; IPs pass unchanged.
pub fn strip_domain(host_port: &str) -> String {
    let (host, port) =
        split_host_port(host_port).unwrap_or_else(|| (host_port.to_owned(), String::new()));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return host_port.to_owned();
    }
    let first = host.split('.').next().unwrap_or_default();
    if port.is_empty() {
        first.to_owned()
    } else {
        join_host_port(first, &port)
    }
}

fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("error parsing regexp: {e}"))
}

fn sample_map<'v>(v: &'v Value, want: &str) -> Result<&'v BTreeMap<String, Value>, String> {
    match v {
        Value::Map(m) => Ok(m),
        other => Err(wrong_type(want, other)),
    }
}

fn sample_label(sample: &Value, label: &str) -> Result<Value, String> {
    let sample = sample_map(sample, "*template.sample")?;
    Ok(match sample.get("Labels") {
        Some(Value::Map(labels)) => labels
            .get(label)
            .cloned()
            .unwrap_or_else(|| Value::String(String::new())),
        _ => Value::String(String::new()),
    })
}

fn expect_time(v: &Value) -> Result<DateTime<FixedOffset>, String> {
    match v {
        Value::Time(t) => Ok(*t),
        other => Err(wrong_type("time.Time", other)),
    }
}

fn float_arg(args: &[Value]) -> Result<f64, String> {
    to_float(&args[0])
}

fn string_list(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::List(items) => items
            .iter()
            .map(|i| expect_str(i).map(str::to_owned))
            .collect::<Result<_, _>>()
            .map_err(|_| wrong_type("[]string", v)),
        Value::Nil => Ok(Vec::new()),
        other => Err(wrong_type("[]string", other)),
    }
}

/// The string functions Prometheus and Alertmanager share.
fn insert_string_functions(funcs: &mut Funcs, lower_title: bool) {
    funcs.insert("toUpper", Arity::Exact(1), |a| {
        Ok(expect_str(&a[0])?.to_uppercase().into())
    });
    funcs.insert("toLower", Arity::Exact(1), |a| {
        Ok(expect_str(&a[0])?.to_lowercase().into())
    });
    funcs.insert("title", Arity::Exact(1), move |a| {
        Ok(title_case(expect_str(&a[0])?, lower_title).into())
    });
    funcs.insert("trimSpace", Arity::Exact(1), |a| {
        Ok(expect_str(&a[0])?.trim().into())
    });
    funcs.insert("safeHtml", Arity::Exact(1), |a| {
        Ok(expect_str(&a[0])?.into())
    });
    funcs.insert("match", Arity::Exact(2), |a| {
        let re = compile(expect_str(&a[0])?)?;
        Ok(Value::Bool(re.is_match(expect_str(&a[1])?)))
    });
    funcs.insert("reReplaceAll", Arity::Exact(3), |a| {
        let re = compile(expect_str(&a[0])?)?;
        // Go's `$1`/`${name}` expansion is the regex crate's replacement syntax too.
        Ok(re
            .replace_all(expect_str(&a[2])?, expect_str(&a[1])?)
            .into_owned()
            .into())
    });
    funcs.insert("humanizeDuration", Arity::Exact(1), |a| {
        Ok(humanize_duration(float_arg(a)?).into())
    });
}

/// Options for the Prometheus function set.
#[derive(Clone, Default)]
pub struct PrometheusFuncsConfig {
    /// Answers `query`; without one, `query` fails when executed.
    pub query: Option<Arc<dyn QueryEngine>>,
    /// What `externalURL` returns (`--web.external-url`).
    pub external_url: String,
    /// What `pathPrefix` returns (the external URL's path).
    pub path_prefix: String,
    /// The evaluation time in seconds since the epoch, returned by `now`.
    pub now: f64,
}

impl std::fmt::Debug for PrometheusFuncsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusFuncsConfig")
            .field("query", &self.query.is_some())
            .field("external_url", &self.external_url)
            .field("path_prefix", &self.path_prefix)
            .field("now", &self.now)
            .finish()
    }
}

/// Returns Go's built-ins plus Prometheus's alerting-template functions.
pub fn prometheus_funcs(config: PrometheusFuncsConfig) -> Funcs {
    let mut funcs = Funcs::builtins();
    insert_string_functions(&mut funcs, false);
    let engine = config.query.clone();
    funcs.insert("query", Arity::Exact(1), move |a| {
        let q = expect_str(&a[0])?;
        let engine = engine
            .as_ref()
            .ok_or_else(|| "no query engine configured".to_owned())?;
        let samples = engine.query(q)?;
        Ok(Value::List(
            samples.iter().map(QuerySample::to_value).collect(),
        ))
    });
    funcs.insert("first", Arity::Exact(1), |a| match &a[0] {
        Value::List(l) => l
            .first()
            .cloned()
            .ok_or_else(|| "first() called on vector with no elements".to_owned()),
        Value::Nil => Err("first() called on vector with no elements".to_owned()),
        other => Err(wrong_type("template.queryResult", other)),
    });
    funcs.insert("label", Arity::Exact(2), |a| {
        sample_label(&a[1], expect_str(&a[0])?)
    });
    funcs.insert("value", Arity::Exact(1), |a| {
        Ok(sample_map(&a[0], "*template.sample")?
            .get("Value")
            .cloned()
            .unwrap_or_default())
    });
    funcs.insert("strvalue", Arity::Exact(1), |a| {
        sample_label(&a[0], "__value__")
    });
    funcs.insert("sortByLabel", Arity::Exact(2), |a| {
        let label = expect_str(&a[0])?;
        let Value::List(samples) = &a[1] else {
            return Err(wrong_type("template.queryResult", &a[1]));
        };
        let mut keyed = Vec::with_capacity(samples.len());
        for s in samples {
            let key = sample_label(s, label)?
                .as_str()
                .unwrap_or_default()
                .to_owned();
            keyed.push((key, s.clone()));
        }
        // Stable, as Prometheus's sort.Stable.
        keyed.sort_by(|x, y| x.0.cmp(&y.0));
        Ok(Value::List(keyed.into_iter().map(|(_, s)| s).collect()))
    });
    funcs.insert("humanize", Arity::Exact(1), |a| {
        Ok(humanize(float_arg(a)?).into())
    });
    funcs.insert("humanize1024", Arity::Exact(1), |a| {
        Ok(humanize1024(float_arg(a)?).into())
    });
    funcs.insert("humanizePercentage", Arity::Exact(1), |a| {
        Ok(humanize_percentage(float_arg(a)?).into())
    });
    funcs.insert("humanizeTimestamp", Arity::Exact(1), |a| {
        Ok(humanize_timestamp(float_arg(a)?)?.into())
    });
    funcs.insert("toTime", Arity::Exact(1), |a| {
        Ok(Value::Time(float_to_time(float_arg(a)?)?))
    });
    funcs.insert("toDuration", Arity::Exact(1), |a| {
        let v = float_arg(a)?;
        if !v.is_finite() {
            return Err("value is NaN or Inf".to_owned());
        }
        let nanos = v * 1e9;
        if nanos >= i64::MAX as f64 || nanos < i64::MIN as f64 {
            return Err(format!(
                "{} cannot be represented as a nanoseconds duration since it overflows int64",
                gofmt::format_float_v(v)
            ));
        }
        Ok(Value::Duration(nanos as i64))
    });
    funcs.insert("parseDuration", Arity::Exact(1), |a| {
        Ok(Value::Float(parse_prometheus_duration(expect_str(&a[0])?)?))
    });
    funcs.insert("stripPort", Arity::Exact(1), |a| {
        Ok(strip_port(expect_str(&a[0])?).into())
    });
    funcs.insert("stripDomain", Arity::Exact(1), |a| {
        Ok(strip_domain(expect_str(&a[0])?).into())
    });
    funcs.insert("urlQueryEscape", Arity::Exact(1), |a| {
        Ok(gofmt::query_escape(expect_str(&a[0])?).into())
    });
    funcs.insert("graphLink", Arity::Exact(1), |a| {
        Ok(format!(
            "/graph?g0.expr={}&g0.tab=0",
            gofmt::query_escape(expect_str(&a[0])?)
        )
        .into())
    });
    funcs.insert("tableLink", Arity::Exact(1), |a| {
        Ok(format!(
            "/graph?g0.expr={}&g0.tab=1",
            gofmt::query_escape(expect_str(&a[0])?)
        )
        .into())
    });
    funcs.insert("args", Arity::AtLeast(0), |a| {
        Ok(Value::Map(
            a.iter()
                .enumerate()
                .map(|(i, v)| (format!("arg{i}"), v.clone()))
                .collect(),
        ))
    });
    let external_url = config.external_url.clone();
    funcs.insert("externalURL", Arity::Exact(0), move |_| {
        Ok(external_url.clone().into())
    });
    let path_prefix = config.path_prefix.clone();
    funcs.insert("pathPrefix", Arity::Exact(0), move |_| {
        Ok(path_prefix.clone().into())
    });
    let now = config.now;
    funcs.insert("now", Arity::Exact(0), move |_| Ok(Value::Float(now)));
    insert_time_methods(&mut funcs);
    funcs
}

/// Alertmanager's `KV.SortedPairs` order: `alertname` first, then by name.
fn sorted_pairs(map: &BTreeMap<String, Value>) -> Vec<(String, Value)> {
    let mut pairs: Vec<(String, Value)> = Vec::with_capacity(map.len());
    if let Some(v) = map.get("alertname") {
        pairs.push(("alertname".to_owned(), v.clone()));
    }
    pairs.extend(
        map.iter()
            .filter(|(k, _)| *k != "alertname")
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    pairs
}

fn pair_field(pairs: &[Value], field: &str) -> Option<Value> {
    let mut out = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let Value::Map(m) = pair else {
            return None;
        };
        out.push(m.get(field)?.clone());
    }
    Some(Value::List(out))
}

fn alerts_with_status(alerts: &[Value], status: &str) -> Option<Value> {
    let mut out = Vec::new();
    for alert in alerts {
        let Value::Map(m) = alert else {
            return None;
        };
        if m.get("Status").and_then(Value::as_str) == Some(status) {
            out.push(alert.clone());
        }
    }
    Some(Value::List(out))
}

/// Methods of Go's `time.Time` and `time.Duration` that templates call.
fn insert_time_methods(funcs: &mut Funcs) {
    funcs.insert_method("Format", |recv, args| match (recv, args) {
        (Value::Time(t), [Value::String(layout)]) => {
            Some(Ok(gofmt::format_go_layout(t, layout).into()))
        }
        (Value::Time(_), _) => Some(Err("Format takes one string layout".to_owned())),
        _ => None,
    });
    funcs.insert_method("Unix", |recv, _| match recv {
        Value::Time(t) => Some(Ok(Value::Int(t.timestamp()))),
        _ => None,
    });
    funcs.insert_method("UTC", |recv, _| match recv {
        Value::Time(t) => Some(Ok(Value::Time(t.with_timezone(&Utc).fixed_offset()))),
        _ => None,
    });
    funcs.insert_method("Seconds", |recv, _| match recv {
        Value::Duration(d) => Some(Ok(Value::Float(*d as f64 / 1e9))),
        _ => None,
    });
}

/// Returns Go's built-ins plus Alertmanager's notification-template functions, and the
/// methods of its template data (`SortedPairs`, `Names`, `Values`, `Remove` on label
/// sets, `Firing` and `Resolved` on alert lists).
pub fn alertmanager_funcs() -> Funcs {
    let mut funcs = Funcs::builtins();
    insert_string_functions(&mut funcs, true);
    funcs.insert("join", Arity::Exact(2), |a| {
        let sep = expect_str(&a[0])?;
        Ok(string_list(&a[1])?.join(sep).into())
    });
    funcs.insert("stringSlice", Arity::AtLeast(0), |a| {
        for v in a {
            expect_str(v)?;
        }
        Ok(Value::List(a.to_vec()))
    });
    funcs.insert("date", Arity::Exact(2), |a| {
        Ok(gofmt::format_go_layout(&expect_time(&a[1])?, expect_str(&a[0])?).into())
    });
    funcs.insert("tz", Arity::Exact(2), |a| {
        let t = expect_time(&a[1])?;
        // Only the zones that need no tz database; others fail as Go does for unknown names.
        match expect_str(&a[0])? {
            "" | "UTC" => Ok(Value::Time(t.with_timezone(&Utc).fixed_offset())),
            "Local" => Ok(Value::Time(t.with_timezone(&Local).fixed_offset())),
            other => Err(format!("unknown time zone {other}")),
        }
    });
    funcs.insert("since", Arity::Exact(1), |a| {
        let t = expect_time(&a[0])?;
        let elapsed = Utc::now().fixed_offset().signed_duration_since(t);
        Ok(Value::Duration(
            elapsed.num_nanoseconds().unwrap_or(i64::MAX),
        ))
    });
    funcs.insert_method("SortedPairs", |recv, _| match recv {
        Value::Map(m) => Some(Ok(Value::List(
            sorted_pairs(m)
                .into_iter()
                .map(|(k, v)| {
                    let mut pair = BTreeMap::new();
                    pair.insert("Name".to_owned(), Value::String(k));
                    pair.insert("Value".to_owned(), v);
                    Value::Map(pair)
                })
                .collect(),
        ))),
        _ => None,
    });
    funcs.insert_method("Names", |recv, _| match recv {
        Value::Map(m) => Some(Ok(Value::List(
            sorted_pairs(m)
                .into_iter()
                .map(|(k, _)| Value::String(k))
                .collect(),
        ))),
        Value::List(pairs) => pair_field(pairs, "Name").map(Ok),
        _ => None,
    });
    funcs.insert_method("Values", |recv, _| match recv {
        Value::Map(m) => Some(Ok(Value::List(
            sorted_pairs(m).into_iter().map(|(_, v)| v).collect(),
        ))),
        Value::List(pairs) => pair_field(pairs, "Value").map(Ok),
        _ => None,
    });
    funcs.insert_method("Remove", |recv, args| match (recv, args) {
        (Value::Map(m), [names]) => Some(string_list(names).map(|names| {
            let mut kept = m.clone();
            for name in names {
                kept.remove(&name);
            }
            Value::Map(kept)
        })),
        (Value::Map(_), _) => Some(Err("Remove takes one list of label names".to_owned())),
        _ => None,
    });
    funcs.insert_method("Firing", |recv, _| match recv {
        Value::List(alerts) => alerts_with_status(alerts, "firing").map(Ok),
        _ => None,
    });
    funcs.insert_method("Resolved", |recv, _| match recv {
        Value::List(alerts) => alerts_with_status(alerts, "resolved").map(Ok),
        _ => None,
    });
    insert_time_methods(&mut funcs);
    funcs
}

/// What an alerting rule's annotation and label templates see.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertTemplateData {
    pub labels: BTreeMap<String, String>,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    pub value: f64,
}

impl AlertTemplateData {
    /// Returns the data value: `{Labels, ExternalLabels, ExternalURL, Value}`.
    pub fn to_value(&self) -> Value {
        let mut map = BTreeMap::new();
        let strings = |m: &BTreeMap<String, String>| {
            Value::string_map(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        };
        map.insert("Labels".to_owned(), strings(&self.labels));
        map.insert("ExternalLabels".to_owned(), strings(&self.external_labels));
        map.insert(
            "ExternalURL".to_owned(),
            Value::String(self.external_url.clone()),
        );
        map.insert("Value".to_owned(), Value::Float(self.value));
        Value::Map(map)
    }
}

/// The variable definitions Prometheus prepends to every alert template.
pub const ALERT_TEMPLATE_PREFIX: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// Expands an alert annotation or label template as Prometheus does: with `$labels`,
/// `$externalLabels`, `$externalURL` and `$value` defined, and missing label keys
/// printing as empty (`missingkey=zero`). Prometheus names the template `__alert_<rule>`;
/// callers render a failure as `<error expanding template: …>`.
pub fn expand_alert_template(
    name: &str,
    text: &str,
    data: &AlertTemplateData,
    funcs: &Funcs,
) -> Result<String, TemplateError> {
    let source = format!("{ALERT_TEMPLATE_PREFIX}{text}");
    Template::parse(name, &source, funcs)?
        .with_missing_key(MissingKey::Zero)
        .execute(&data.to_value())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanize_matches_prometheus() {
        let cases = [
            (0.0, "0"),
            (1.0, "1"),
            (1234567.0, "1.235M"),
            (1e12, "1T"),
            (0.0012, "1.2m"),
            (0.0000012, "1.2u"),
            (12.5, "12.5"),
            (-1234.0, "-1.234k"),
            (1e30, "1e+06Y"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (v, want) in cases {
            assert_eq!(humanize(v), want, "{v}");
        }
    }

    #[test]
    fn humanize1024_matches_prometheus() {
        let cases = [
            (0.0, "0"),
            (1.0, "1"),
            (1024.0, "1ki"),
            (1048576.0, "1Mi"),
            (1536.0, "1.5ki"),
            (2f64.powi(60), "1Ei"),
            (-2048.0, "-2ki"),
            (f64::NAN, "NaN"),
        ];
        for (v, want) in cases {
            assert_eq!(humanize1024(v), want, "{v}");
        }
    }

    #[test]
    fn humanize_duration_matches_prometheus() {
        let cases = [
            (0.0, "0s"),
            (1.0, "1s"),
            (60.0, "1m 0s"),
            (3600.0, "1h 0m 0s"),
            (86400.0, "1d 0h 0m 0s"),
            (86400.0 + 3600.0 + 61.0, "1d 1h 1m 1s"),
            (1234.5, "20m 34s"),
            (-1234.5, "-20m 34s"),
            (0.0123, "12.3ms"),
            (0.000_001_5, "1.5us"),
            (1.2345, "1.234s"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
        ];
        for (v, want) in cases {
            assert_eq!(humanize_duration(v), want, "{v}");
        }
    }

    #[test]
    fn humanize_percentage_and_timestamp() {
        assert_eq!(humanize_percentage(0.1234), "12.34%");
        assert_eq!(humanize_percentage(0.0), "0%");
        assert_eq!(humanize_percentage(-0.22222), "-22.22%");
        assert_eq!(
            humanize_timestamp(1435065584.128).unwrap(),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(
            humanize_timestamp(0.0).unwrap(),
            "1970-01-01 00:00:00 +0000 UTC"
        );
        assert_eq!(humanize_timestamp(f64::NAN).unwrap(), "NaN");
        assert!(
            humanize_timestamp(1e300)
                .unwrap_err()
                .contains("overflows int64")
        );
    }

    #[test]
    fn durations_parse_like_prometheus() {
        assert_eq!(parse_prometheus_duration("1h30m"), Ok(5400.0));
        assert_eq!(parse_prometheus_duration("250ms"), Ok(0.25));
        assert_eq!(parse_prometheus_duration("1y"), Ok(31_536_000.0));
        assert_eq!(parse_prometheus_duration("0"), Ok(0.0));
        assert!(parse_prometheus_duration("30m1h").is_err());
        assert!(parse_prometheus_duration("5x").is_err());
    }

    #[test]
    fn host_helpers_follow_go_net() {
        assert_eq!(strip_port("foo.example.com:9090"), "foo.example.com");
        assert_eq!(strip_port("[::1]:9090"), "::1");
        assert_eq!(strip_port("foo"), "foo");
        assert_eq!(strip_domain("foo.example.com:9090"), "foo:9090");
        assert_eq!(strip_domain("foo.example.com"), "foo");
        assert_eq!(strip_domain("192.168.0.1:9090"), "192.168.0.1:9090");
        assert_eq!(strip_domain("[2001:db8::1]:80"), "[2001:db8::1]:80");
    }

    #[test]
    fn title_cases() {
        assert_eq!(
            title_case("hello world-foo_bar", false),
            "Hello World-Foo_bar"
        );
        assert_eq!(title_case("hELLO wORLD", false), "HELLO WORLD");
        assert_eq!(title_case("hELLO wORLD", true), "Hello World");
    }
}
