//! `sightline logs …` and `sightline metrics …`: command-line clients of a running server's
//! APIs.
//!
//! Every command writes its results to the `out` it is given (stdout, locked) and
//! propagates write errors, so that a closed pipe (`… | head`) ends the command quietly
//! instead of panicking (see `main`). Times are read in one set of forms ([`TimeArg`]) and
//! printed in RFC 3339, for logs and metrics alike; an empty result says so on stderr.

pub mod alertmanager;
pub mod incidents;
pub mod rules;
pub mod topology;
pub mod traces;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::{Value, json};

/// Which server and tenant a client command talks to.
#[derive(clap::Args, Debug)]
pub struct Endpoint {
    /// Base URL of the Sightline server's HTTP API.
    #[arg(
        long,
        default_value = "http://127.0.0.1:7070",
        env = "SIGHTLINE_SERVER"
    )]
    server: String,
    /// Tenant to read or write as (sent as `X-Scope-OrgID`).
    #[arg(long, default_value = "default")]
    tenant: String,
}

/// How a query command prints its result.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Human-readable lines (a table for patterns).
    Text,
    /// The API's JSON answer as is.
    Json,
}

/// The time forms every `--since`, `--start`, `--end` and `--time` accepts.
const TIME_FORMS: &str = "RFC 3339 (2025-01-31T12:00:00Z), Unix seconds (1738324800), \
                          a duration back from now (1h, 30m, 2d) or `now`";

/// A point in time given on the command line: absolute, or a duration back from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeArg {
    /// Unix nanoseconds.
    At(i64),
    /// This long before the command runs.
    Ago(Duration),
}

impl TimeArg {
    /// Parses RFC 3339, Unix seconds (with a fraction; an integer too large for seconds is
    /// nanoseconds, as in Loki's API), a duration back from now (`1h`, `90s`) or `now`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "now" {
            return Ok(Self::Ago(Duration::ZERO));
        }
        if let Ok(ago) = humantime::parse_duration(text) {
            return Ok(Self::Ago(ago));
        }
        crate::api::params::parse_time_ns(text)
            .map(Self::At)
            .ok_or_else(|| format!("expected {TIME_FORMS}"))
    }

    /// Unix nanoseconds, durations counted back from `now_ns`.
    pub fn resolve(self, now_ns: i64) -> i64 {
        match self {
            Self::At(ns) => ns,
            Self::Ago(ago) => {
                now_ns.saturating_sub(i64::try_from(ago.as_nanos()).unwrap_or(i64::MAX))
            }
        }
    }
}

/// Unix nanoseconds as RFC 3339 in UTC, with as many fraction digits as needed.
fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Prometheus's JSON time (seconds, a number with millisecond precision) as RFC 3339.
fn rfc3339_seconds(t: &Value) -> String {
    match t.as_f64() {
        Some(secs) => rfc3339((secs * 1e3).round() as i64 * 1_000_000),
        None => t.to_string(),
    }
}

#[derive(Subcommand, Debug)]
pub enum LogsCommand {
    /// Run a LogQL query over `--since` until now and print the result.
    Query {
        /// The LogQL expression, e.g. `{service_name="checkout"} |= "error"`.
        query: String,
        /// Start of the range: RFC 3339, Unix seconds, or a duration back from now.
        #[arg(long, default_value = "1h", value_parser = TimeArg::parse)]
        since: TimeArg,
        /// Most log lines to return.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Step of metric queries, e.g. `1m` (default: Loki's, about 250 points).
        #[arg(long, value_parser = humantime::parse_duration)]
        step: Option<Duration>,
        /// Oldest first instead of newest first.
        #[arg(long)]
        forward: bool,
        #[command(flatten)]
        at: Endpoint,
        /// How to print the result.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// List the log patterns of the streams a selector picks, most frequent first.
    Patterns {
        /// A LogQL stream selector, e.g. `{service_name="checkout"}`.
        selector: String,
        /// Start of the range: RFC 3339, Unix seconds, or a duration back from now.
        #[arg(long, default_value = "1h", value_parser = TimeArg::parse)]
        since: TimeArg,
        #[command(flatten)]
        at: Endpoint,
        /// How to print the result.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Load log files (JSON lines or plain text) through the server's Loki push endpoint.
    Import {
        /// Files to load: JSON lines (a `timestamp`, `time`, `ts` or `@timestamp` field is
        /// the line's time) or plain text (lines get the import time).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// `service_name` of the imported lines (default: the file's stem).
        #[arg(long)]
        service: Option<String>,
        #[command(flatten)]
        at: Endpoint,
        /// Lines per request.
        #[arg(long, default_value_t = 2000)]
        batch_lines: usize,
    },
}

#[derive(Subcommand, Debug)]
pub enum MetricsCommand {
    /// Run a PromQL query: instant (at `--time`, default now) or, with `--start`, a range
    /// query from `--start` to `--end` (default now) every `--step`.
    Query {
        /// The PromQL expression, e.g. `sum by (job) (rate(http_requests_total[5m]))`.
        query: String,
        /// Evaluation time of an instant query: RFC 3339, Unix seconds, or a duration back
        /// from now (default now).
        #[arg(long, value_parser = TimeArg::parse, conflicts_with_all = ["start", "end"])]
        time: Option<TimeArg>,
        /// Start of a range query: RFC 3339, Unix seconds, or a duration back from now.
        #[arg(long, value_parser = TimeArg::parse)]
        start: Option<TimeArg>,
        /// End of a range query, in the same forms (default now).
        #[arg(long, value_parser = TimeArg::parse, requires = "start")]
        end: Option<TimeArg>,
        /// Resolution of a range query, e.g. `1m` (default: about 250 points).
        #[arg(long, value_parser = humantime::parse_duration, requires = "start")]
        step: Option<Duration>,
        #[command(flatten)]
        at: Endpoint,
        /// How to print the result.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// Prometheus's JSON seconds of Unix nanoseconds (millisecond precision, as it keeps).
fn prom_seconds(ns: i64) -> String {
    format!("{:.3}", ns.div_euclid(1_000_000) as f64 / 1000.0)
}

pub fn run_metrics(command: MetricsCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    let MetricsCommand::Query {
        query,
        time,
        start,
        end,
        step,
        at,
        output,
    } = command;
    let now = crate::now_ns();
    let (path, mut params) = match start {
        None => {
            let time = time.map_or(now, |t| t.resolve(now));
            ("/api/v1/query", vec![("time", prom_seconds(time))])
        }
        Some(start) => {
            let start = start.resolve(now);
            let end = end.map_or(now, |e| e.resolve(now));
            if end < start {
                bail!(
                    "--end ({}) is before --start ({})",
                    rfc3339(end),
                    rfc3339(start)
                );
            }
            let step = step.map_or_else(
                || ((end - start) as f64 / 1e9 / 250.0).max(1.0).round(),
                |d| d.as_secs_f64(),
            );
            (
                "/api/v1/query_range",
                vec![
                    ("start", prom_seconds(start)),
                    ("end", prom_seconds(end)),
                    ("step", step.to_string()),
                ],
            )
        }
    };
    params.push(("query", query));
    let Some(v) = get_api(&at, path, &params, output, out)? else {
        return Ok(());
    };
    print_text(&v, out)
}

pub fn run(command: LogsCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        LogsCommand::Query {
            query,
            since,
            limit,
            step,
            forward,
            at,
            output,
        } => {
            let end = crate::now_ns();
            let start = since.resolve(end);
            let mut params = vec![
                ("query", query),
                ("start", start.to_string()),
                ("end", end.to_string()),
                ("limit", limit.to_string()),
                (
                    "direction",
                    if forward { "forward" } else { "backward" }.to_string(),
                ),
            ];
            if let Some(step) = step {
                params.push(("step", format!("{}", step.as_secs_f64())));
            }
            let Some(v) = get_api(&at, "/loki/api/v1/query_range", &params, output, out)? else {
                return Ok(());
            };
            print_text(&v, out)
        }
        LogsCommand::Patterns {
            selector,
            since,
            at,
            output,
        } => run_patterns(&selector, since, &at, output, out),
        LogsCommand::Import {
            files,
            service,
            at,
            batch_lines,
        } => run_import(&files, service.as_deref(), &at, batch_lines.max(1), out),
    }
}

/// The error of a request that never got an answer: the server named, and the innermost
/// cause only (the library's chain repeats the URL at every level).
fn unreachable(server: &str, e: &reqwest::Error) -> anyhow::Error {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    anyhow::anyhow!("cannot reach the server at {server}: {cause}")
}

/// The message of an error answer: the `error` of Prometheus's JSON, the body of the
/// others (plain text, or JSON with a `message`).
fn answer_message(text: &str) -> String {
    let text = text.trim();
    match serde_json::from_str::<Value>(text) {
        Ok(v) => v["error"]
            .as_str()
            .or_else(|| v["message"].as_str())
            .map_or_else(|| text.to_string(), str::to_string),
        Err(_) => text.to_string(),
    }
}

/// GETs an API path of the server; with [`Output::Json`] prints the answer as is and returns
/// `None`, else returns it parsed. A non-success status is an error with the server's
/// message.
fn get_api(
    at: &Endpoint,
    path: &str,
    params: &[(&str, String)],
    output: Output,
    out: &mut dyn Write,
) -> anyhow::Result<Option<Value>> {
    let url = format!("{}{path}", at.server.trim_end_matches('/'));
    let text = answer_text(
        at,
        reqwest::blocking::Client::new()
            .get(&url)
            .header("X-Scope-OrgID", &at.tenant)
            .query(params)
            .send(),
    )?;
    if output == Output::Json {
        writeln!(out, "{text}")?;
        return Ok(None);
    }
    serde_json::from_str(&text)
        .map(Some)
        .context("answer is not JSON")
}

/// The body of a successful answer; otherwise an error that says whether the server was
/// unreachable or what it refused.
fn answer_text(
    at: &Endpoint,
    sent: reqwest::Result<reqwest::blocking::Response>,
) -> anyhow::Result<String> {
    let resp = sent.map_err(|e| unreachable(&at.server, &e))?;
    let status = resp.status();
    let text = resp.text().context("cannot read the answer")?;
    if !status.is_success() {
        bail!("the server answered {status}: {}", answer_message(&text));
    }
    Ok(text)
}

/// Says on stderr that a query matched nothing (stdout stays empty for scripts).
fn no_results() {
    eprintln!("no results");
}

fn run_patterns(
    selector: &str,
    since: TimeArg,
    at: &Endpoint,
    output: Output,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let end = crate::now_ns();
    let start = since.resolve(end);
    let params = [
        ("query", selector.to_string()),
        ("start", start.to_string()),
        ("end", end.to_string()),
    ];
    let Some(v) = get_api(at, "/api/v1/patterns", &params, output, out)? else {
        return Ok(());
    };
    let rows: Vec<[String; 5]> = v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            [
                p["count"].to_string(),
                p["service_name"].as_str().unwrap_or("").to_string(),
                p["pattern_id"].as_str().unwrap_or("").to_string(),
                p["first_seen"].as_str().unwrap_or("-").to_string(),
                p["template"]
                    .as_str()
                    .unwrap_or_else(|| p["sample"]["line"].as_str().unwrap_or(""))
                    .to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        no_results();
        return Ok(());
    }
    write_table(
        out,
        ["lines", "service", "id", "first seen", "template"],
        &rows,
    )
}

/// A table whose columns are as wide as their widest cell: counts and ids right-aligned,
/// the last column (free text) not padded.
fn write_table(out: &mut dyn Write, header: [&str; 5], rows: &[[String; 5]]) -> anyhow::Result<()> {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header = header.map(str::to_string);
    for row in std::iter::once(&header).chain(rows) {
        writeln!(
            out,
            "{:>w0$}  {:<w1$}  {:>w2$}  {:<w3$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        )?;
    }
    Ok(())
}

fn labels_text(v: &Value) -> String {
    let pairs: Vec<String> = v
        .as_object()
        .map(|o| o.iter().map(|(k, v)| format!("{k}={v}")).collect())
        .unwrap_or_default();
    format!("{{{}}}", pairs.join(", "))
}

/// Prints a Loki or Prometheus query answer, times in RFC 3339; "no results" on stderr
/// when it holds nothing.
fn print_text(v: &Value, out: &mut dyn Write) -> anyhow::Result<()> {
    let data = &v["data"];
    let empty = Vec::new();
    let result = data["result"].as_array().unwrap_or(&empty);
    match data["resultType"].as_str() {
        Some("streams" | "matrix" | "vector") if result.is_empty() => no_results(),
        Some("streams") => {
            for stream in result {
                let labels = labels_text(&stream["stream"]);
                for entry in stream["values"].as_array().unwrap_or(&empty) {
                    let ts: i64 = entry[0].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
                    let line = entry[1].as_str().unwrap_or("");
                    writeln!(out, "{} {labels} {line}", rfc3339(ts))?;
                }
            }
        }
        Some("matrix") => {
            for series in result {
                writeln!(out, "{}", labels_text(&series["metric"]))?;
                for p in series["values"].as_array().unwrap_or(&empty) {
                    let value = p[1].as_str().unwrap_or("");
                    writeln!(out, "  {} {value}", rfc3339_seconds(&p[0]))?;
                }
            }
        }
        Some("vector") => {
            for sample in result {
                writeln!(
                    out,
                    "{} => {} @{}",
                    labels_text(&sample["metric"]),
                    sample["value"][1].as_str().unwrap_or(""),
                    rfc3339_seconds(&sample["value"][0])
                )?;
            }
        }
        Some("scalar" | "string") => {
            let value = data["result"][1].as_str().unwrap_or("");
            writeln!(out, "{value} @{}", rfc3339_seconds(&data["result"][0]))?;
        }
        _ => writeln!(out, "{}", serde_json::to_string_pretty(data)?)?,
    }
    Ok(())
}

/// A JSON line's own timestamp (`timestamp`, `time`, `ts`, `@timestamp`: RFC 3339 or Unix
/// seconds/milliseconds/nanoseconds), if it has one.
fn json_timestamp(line: &str) -> Option<i64> {
    let v: Value = serde_json::from_str(line).ok()?;
    let obj = v.as_object()?;
    let t = ["timestamp", "time", "ts", "@timestamp"]
        .iter()
        .find_map(|k| obj.get(*k))?;
    match t {
        Value::String(s) => crate::api::params::parse_time_ns(s),
        Value::Number(n) if n.is_i64() => {
            let i = n.as_i64()?;
            Some(if i < 100_000_000_000 {
                i * 1_000_000_000
            } else if i < 100_000_000_000_000 {
                i * 1_000_000
            } else {
                i
            })
        }
        Value::Number(n) => {
            let f = n.as_f64()?;
            Some(if f < 1e11 {
                (f * 1e9) as i64
            } else if f < 1e14 {
                (f * 1e6) as i64
            } else {
                f as i64
            })
        }
        _ => None,
    }
}

fn run_import(
    files: &[PathBuf],
    service: Option<&str>,
    at: &Endpoint,
    batch_lines: usize,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if files.is_empty() {
        bail!("no files given");
    }
    let url = format!("{}/loki/api/v1/push", at.server.trim_end_matches('/'));
    let client = reqwest::blocking::Client::new();
    let total_bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let bar = indicatif::ProgressBar::new(total_bytes);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let (mut lines, mut bytes, mut rejected) = (0u64, 0u64, 0u64);
    // Lines without their own time get the import time, one nanosecond apart, so their order
    // survives.
    let mut clock = crate::now_ns();
    for file in files {
        let service_name = service.map(str::to_string).unwrap_or_else(|| {
            file.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "import".into())
        });
        let reader = BufReader::new(
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
        );
        let mut values: Vec<Value> = Vec::with_capacity(batch_lines);
        let send = |values: &mut Vec<Value>| -> anyhow::Result<u64> {
            if values.is_empty() {
                return Ok(0);
            }
            let body = json!({"streams": [{
                "stream": {"service_name": service_name, "source": "import"},
                "values": std::mem::take(values),
            }]});
            let mut attempt = 0;
            loop {
                let resp = client
                    .post(&url)
                    .header("X-Scope-OrgID", &at.tenant)
                    .json(&body)
                    .send()
                    .map_err(|e| unreachable(&at.server, &e))?;
                let status = resp.status();
                if status.is_success() {
                    return Ok(0);
                }
                // Overload is retryable; back off and send the same batch again.
                if status.as_u16() == 429 || status.as_u16() == 503 {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(50 * attempt.min(20)));
                    continue;
                }
                let text = resp.text().unwrap_or_default();
                if status.as_u16() == 400 {
                    // Partial acceptance: the answer names each rejected entry.
                    bar.println(format!("rejected: {}", text.trim()));
                    return Ok(text.lines().filter(|l| l.contains("entry")).count().max(1) as u64);
                }
                bail!("the server answered {status}: {}", answer_message(&text));
            }
        };
        for line in reader.lines() {
            let line = line.with_context(|| format!("cannot read {}", file.display()))?;
            bar.inc(line.len() as u64 + 1);
            if line.trim().is_empty() {
                continue;
            }
            let ts = json_timestamp(&line).unwrap_or_else(|| {
                clock += 1;
                clock
            });
            bytes += line.len() as u64;
            lines += 1;
            values.push(json!([ts.to_string(), line]));
            if values.len() >= batch_lines {
                rejected += send(&mut values)?;
            }
        }
        rejected += send(&mut values)?;
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    writeln!(
        out,
        "imported {lines} lines ({:.1} MB) from {} file(s) in {secs:.2}s: {:.0} lines/s, {:.1} MB/s; rejected {rejected}",
        bytes as f64 / 1e6,
        files.len(),
        lines as f64 / secs,
        bytes as f64 / 1e6 / secs,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_keep_their_own_time() {
        assert_eq!(
            json_timestamp(r#"{"ts":"2023-11-14T22:13:20Z","msg":"x"}"#),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(
            json_timestamp(r#"{"time":1700000000}"#),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(
            json_timestamp(r#"{"time":1700000000123}"#),
            Some(1_700_000_000_123_000_000)
        );
        assert_eq!(json_timestamp("plain text"), None);
    }

    /// Regression: `logs query --since` took only durations and `metrics query --start`
    /// only absolute times.
    #[test]
    fn times_take_rfc3339_unix_seconds_and_durations_back_from_now() {
        let now = 1_700_000_000_000_000_000;
        let parse = |t: &str| TimeArg::parse(t).map(|t| t.resolve(now));
        assert_eq!(parse("2023-11-14T22:13:20Z"), Ok(now));
        assert_eq!(parse("1700000000"), Ok(now));
        assert_eq!(parse("1699999999.5"), Ok(now - 500_000_000));
        assert_eq!(parse("1h"), Ok(now - 3_600_000_000_000));
        assert_eq!(parse("1h30m"), Ok(now - 5_400_000_000_000));
        assert_eq!(parse("now"), Ok(now));
        let err = parse("yesterday").unwrap_err();
        assert!(err.contains("RFC 3339") && err.contains("1h"), "{err}");
    }

    /// Regression: metric results printed raw float Unix times while logs printed RFC 3339.
    #[test]
    fn metric_and_log_times_print_as_rfc3339() {
        assert_eq!(rfc3339(1_700_000_000_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(
            rfc3339_seconds(&json!(1_700_000_000.25)),
            "2023-11-14T22:13:20.250Z"
        );
        let mut out = Vec::new();
        let answer = json!({"data": {"resultType": "vector", "result": [
            {"metric": {"job": "a"}, "value": [1_700_000_000, "1"]}]}});
        print_text(&answer, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{job=\"a\"} => 1 @2023-11-14T22:13:20Z\n"
        );
    }

    /// Regression: the `logs patterns` table was misaligned (JSON numbers ignore widths).
    #[test]
    fn pattern_table_columns_line_up() {
        let row = |n: &str, service: &str, id: &str| {
            [
                n.to_string(),
                service.to_string(),
                id.to_string(),
                "2023-11-14T22:13:20.000Z".to_string(),
                "user <*> logged in".to_string(),
            ]
        };
        let rows = [
            row("7", "a-very-long-service-name-indeed", "3"),
            row("1234567", "api", "12345"),
        ];
        let mut out = Vec::new();
        write_table(
            &mut out,
            ["lines", "service", "id", "first seen", "template"],
            &rows,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let starts: Vec<usize> = text
            .lines()
            .map(|l| l.find("20").unwrap_or_else(|| l.find("first").unwrap()))
            .collect();
        assert!(starts.windows(2).all(|w| w[0] == w[1]), "{text}");
        let ids: Vec<usize> = text
            .lines()
            .map(|l| {
                l.find("  2023")
                    .unwrap_or_else(|| l.find("  first").unwrap())
            })
            .collect();
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "{text}");
    }
}
