//! `sightline logs …` and `sightline metrics …`: command-line clients of a running server's
//! APIs.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::{Value, json};

/// Which server and tenant a client command talks to.
#[derive(clap::Args, Debug)]
pub struct Endpoint {
    #[arg(
        long,
        default_value = "http://127.0.0.1:7070",
        env = "SIGHTLINE_SERVER"
    )]
    server: String,
    #[arg(long, default_value = "default")]
    tenant: String,
}

#[derive(Subcommand, Debug)]
pub enum LogsCommand {
    /// Run a LogQL query over the last `--since` and print the result.
    Query {
        /// The LogQL expression.
        query: String,
        /// How far back from now.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        since: Duration,
        /// Most log lines to return.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Step of metric queries (default: Loki's, about 250 points).
        #[arg(long, value_parser = humantime::parse_duration)]
        step: Option<Duration>,
        /// Oldest first instead of newest first.
        #[arg(long)]
        forward: bool,
        #[command(flatten)]
        at: Endpoint,
        /// `text` (human-readable) or `json` (the API's answer as is).
        #[arg(long, default_value = "text")]
        output: String,
    },
    /// List the log patterns of the streams a selector picks, most frequent first.
    Patterns {
        /// A LogQL stream selector, e.g. `{service_name="checkout"}`.
        selector: String,
        /// How far back from now.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        since: Duration,
        #[command(flatten)]
        at: Endpoint,
        /// `text` (a table) or `json` (the API's answer as is).
        #[arg(long, default_value = "text")]
        output: String,
    },
    /// Load log files (JSON lines or plain text) through the server's Loki push endpoint.
    Import {
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
        /// The PromQL expression.
        query: String,
        /// Evaluation time of an instant query (RFC 3339 or Unix seconds).
        #[arg(long, conflicts_with_all = ["start", "end"])]
        time: Option<String>,
        /// Start of a range query (RFC 3339 or Unix seconds).
        #[arg(long)]
        start: Option<String>,
        /// End of a range query (default now).
        #[arg(long, requires = "start")]
        end: Option<String>,
        /// Resolution of a range query (default: about 250 points).
        #[arg(long, value_parser = humantime::parse_duration, requires = "start")]
        step: Option<Duration>,
        #[command(flatten)]
        at: Endpoint,
        /// `text` (human-readable) or `json` (the API's answer as is).
        #[arg(long, default_value = "text")]
        output: String,
    },
}

pub fn run_metrics(command: MetricsCommand) -> anyhow::Result<()> {
    let MetricsCommand::Query {
        query,
        time,
        start,
        end,
        step,
        at,
        output,
    } = command;
    let now_s = (crate::now_ns() / 1_000_000) as f64 / 1000.0;
    let parse = |what: &str, v: &str| {
        crate::api::prom::parse_time_ms(v)
            .map(|ms| ms as f64 / 1000.0)
            .with_context(|| format!("invalid --{what} {v:?}: expected RFC 3339 or Unix seconds"))
    };
    let (path, mut params) = match &start {
        None => {
            let at = time.as_deref().map(|t| parse("time", t)).transpose()?;
            (
                "/api/v1/query",
                vec![("time", at.unwrap_or(now_s).to_string())],
            )
        }
        Some(start) => {
            let start = parse("start", start)?;
            let end = end.as_deref().map(|e| parse("end", e)).transpose()?;
            let end = end.unwrap_or(now_s);
            let step = step.map_or_else(
                || ((end - start) / 250.0).max(1.0).round(),
                |d| d.as_secs_f64(),
            );
            (
                "/api/v1/query_range",
                vec![
                    ("start", start.to_string()),
                    ("end", end.to_string()),
                    ("step", step.to_string()),
                ],
            )
        }
    };
    params.push(("query", query));
    let Some(v) = get_api(&at.server, path, &at.tenant, &params, &output)? else {
        return Ok(());
    };
    print_text(&v);
    Ok(())
}

pub fn run(command: LogsCommand) -> anyhow::Result<()> {
    match command {
        LogsCommand::Query {
            query,
            since,
            limit,
            step,
            forward,
            at,
            output,
        } => run_query(
            &query, since, limit, step, forward, &at.server, &at.tenant, &output,
        ),
        LogsCommand::Patterns {
            selector,
            since,
            at,
            output,
        } => run_patterns(&selector, since, &at.server, &at.tenant, &output),
        LogsCommand::Import {
            files,
            service,
            at,
            batch_lines,
        } => run_import(
            &files,
            service.as_deref(),
            &at.server,
            &at.tenant,
            batch_lines.max(1),
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn run_query(
    query: &str,
    since: Duration,
    limit: usize,
    step: Option<Duration>,
    forward: bool,
    server: &str,
    tenant: &str,
    output: &str,
) -> anyhow::Result<()> {
    let end = crate::now_ns();
    let start = end - since.as_nanos() as i64;
    let mut params = vec![
        ("query", query.to_string()),
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
    let Some(v) = get_api(server, "/loki/api/v1/query_range", tenant, &params, output)? else {
        return Ok(());
    };
    print_text(&v);
    Ok(())
}

/// GETs an API path of the server; with `output` `json` prints the answer as is and returns
/// `None`, else returns it parsed. A non-success status is an error with the server's text.
fn get_api(
    server: &str,
    path: &str,
    tenant: &str,
    params: &[(&str, String)],
    output: &str,
) -> anyhow::Result<Option<Value>> {
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let resp = reqwest::blocking::Client::new()
        .get(&url)
        .header("X-Scope-OrgID", tenant)
        .query(params)
        .send()
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let text = resp.text().context("cannot read the answer")?;
    if !status.is_success() {
        bail!("{status}: {}", text.trim());
    }
    if output == "json" {
        println!("{text}");
        return Ok(None);
    }
    serde_json::from_str(&text)
        .map(Some)
        .context("answer is not JSON")
}

fn run_patterns(
    selector: &str,
    since: Duration,
    server: &str,
    tenant: &str,
    output: &str,
) -> anyhow::Result<()> {
    let end = crate::now_ns();
    let start = end - since.as_nanos() as i64;
    let params = [
        ("query", selector.to_string()),
        ("start", start.to_string()),
        ("end", end.to_string()),
    ];
    let Some(v) = get_api(server, "/api/v1/patterns", tenant, &params, output)? else {
        return Ok(());
    };
    println!(
        "{:>10}  {:<20} {:>8}  {:<24}  template",
        "lines", "service", "id", "first seen"
    );
    for p in v["data"].as_array().into_iter().flatten() {
        println!(
            "{:>10}  {:<20} {:>8}  {:<24}  {}",
            p["count"],
            p["service_name"].as_str().unwrap_or(""),
            p["pattern_id"].as_str().unwrap_or(""),
            p["first_seen"].as_str().unwrap_or("-"),
            p["template"]
                .as_str()
                .unwrap_or_else(|| p["sample"]["line"].as_str().unwrap_or(""))
        );
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

fn print_text(v: &Value) {
    let data = &v["data"];
    let empty = Vec::new();
    let result = data["result"].as_array().unwrap_or(&empty);
    match data["resultType"].as_str() {
        Some("streams") => {
            for stream in result {
                let labels = labels_text(&stream["stream"]);
                for entry in stream["values"].as_array().unwrap_or(&empty) {
                    let ts: i64 = entry[0].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
                    let when = chrono::DateTime::from_timestamp_nanos(ts).to_rfc3339();
                    println!("{when} {labels} {}", entry[1].as_str().unwrap_or(""));
                }
            }
        }
        Some("matrix") => {
            for series in result {
                println!("{}", labels_text(&series["metric"]));
                for p in series["values"].as_array().unwrap_or(&empty) {
                    println!("  {} {}", p[0], p[1].as_str().unwrap_or(""));
                }
            }
        }
        Some("vector") => {
            for sample in result {
                println!(
                    "{} => {} @{}",
                    labels_text(&sample["metric"]),
                    sample["value"][1].as_str().unwrap_or(""),
                    sample["value"][0]
                );
            }
        }
        Some("scalar") | Some("string") => {
            println!("{} @{}", data["result"][1], data["result"][0]);
        }
        _ => println!("{}", serde_json::to_string_pretty(data).unwrap_or_default()),
    }
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
    server: &str,
    tenant: &str,
    batch_lines: usize,
) -> anyhow::Result<()> {
    if files.is_empty() {
        bail!("no files given");
    }
    let url = format!("{}/loki/api/v1/push", server.trim_end_matches('/'));
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
                    .header("X-Scope-OrgID", tenant)
                    .json(&body)
                    .send()
                    .with_context(|| format!("cannot reach {url}"))?;
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
                bail!("{status}: {}", text.trim());
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
    println!(
        "imported {lines} lines ({:.1} MB) from {} file(s) in {secs:.2}s: {:.0} lines/s, {:.1} MB/s; rejected {rejected}",
        bytes as f64 / 1e6,
        files.len(),
        lines as f64 / secs,
        bytes as f64 / 1e6 / secs,
    );
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
}
