//! `sightline traces …`: trace lookups and searches through a running server's Tempo API,
//! and TraceQL checks without one.

use std::collections::HashMap;
use std::io::Write;

use base64::Engine as _;
use clap::Subcommand;
use serde_json::Value;

use super::{Endpoint, Output, TimeArg, get_api, no_results, rfc3339, write_table};

#[derive(Subcommand, Debug)]
pub enum TracesCommand {
    /// Print a trace by id: its spans as a tree (service, name, start offset, duration,
    /// status).
    Get {
        /// The trace id, hex (leading zeros may be left out).
        id: String,
        #[command(flatten)]
        at: Endpoint,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Search traces with TraceQL over `--since` until now, newest first.
    Search {
        /// The TraceQL query, e.g. `{ resource.service.name = "pay" && status = error }`.
        query: String,
        /// Start of the range: RFC 3339, Unix seconds, or a duration back from now.
        #[arg(long, value_parser = TimeArg::parse, default_value = "1h")]
        since: TimeArg,
        /// Traces at most.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        at: Endpoint,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Check a TraceQL query without running it: exit 0 and print its canonical form when
    /// it is valid and supported; otherwise say why (with the position) and exit 1.
    Check {
        /// The TraceQL query.
        query: String,
    },
}

pub fn run(command: TracesCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        TracesCommand::Check { query } => match sightline_traceql::parse(&query) {
            Ok(q) => {
                writeln!(out, "ok: {q}")?;
                Ok(())
            }
            Err(e) => anyhow::bail!("{}", crate::api::trace_search::describe_error(&e)),
        },
        TracesCommand::Get { id, at, output } => {
            let path = format!("/api/v2/traces/{id}");
            let Some(v) = get_api(&at, &path, &[], output, out)? else {
                return Ok(());
            };
            print_tree(&v["trace"]["resourceSpans"], out)
        }
        TracesCommand::Search {
            query,
            since,
            limit,
            at,
            output,
        } => {
            let now = crate::now_ns();
            let start = since.resolve(now);
            let params = [
                ("q", query),
                ("start", (start / 1_000_000_000).to_string()),
                ("end", (now / 1_000_000_000).to_string()),
                ("limit", limit.to_string()),
            ];
            let Some(v) = get_api(&at, "/api/search", &params, output, out)? else {
                return Ok(());
            };
            let traces = v["traces"].as_array().cloned().unwrap_or_default();
            if traces.is_empty() {
                no_results();
                return Ok(());
            }
            let rows: Vec<[String; 5]> = traces
                .iter()
                .map(|t| {
                    let start: i64 = t["startTimeUnixNano"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or_default();
                    [
                        t["traceID"].as_str().unwrap_or_default().to_string(),
                        rfc3339(start),
                        format!("{} ms", t["durationMs"].as_i64().unwrap_or_default()),
                        format!(
                            "{}: {}",
                            t["rootServiceName"].as_str().unwrap_or_default(),
                            t["rootTraceName"].as_str().unwrap_or_default()
                        ),
                        t["spanSet"]["matched"]
                            .as_u64()
                            .unwrap_or_default()
                            .to_string(),
                    ]
                })
                .collect();
            write_table(
                out,
                ["TRACE", "START", "DURATION", "ROOT", "MATCHED"],
                &rows,
            )
        }
    }
}

struct Node {
    service: String,
    name: String,
    start: i64,
    end: i64,
    error: bool,
    parent: Option<String>,
}

/// The spans of Tempo's JSON (`resourceSpans`) as an indented tree, children in start order.
fn print_tree(resource_spans: &Value, out: &mut dyn Write) -> anyhow::Result<()> {
    let b64 = |v: &Value| -> Option<String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v.as_str()?)
            .ok()?;
        Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
    };
    let mut nodes: HashMap<String, Node> = HashMap::new();
    for rs in resource_spans.as_array().into_iter().flatten() {
        let service = rs["resource"]["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["key"] == "service.name")
            .and_then(|a| a["value"]["stringValue"].as_str())
            .unwrap_or("unknown_service")
            .to_string();
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for s in ss["spans"].as_array().into_iter().flatten() {
                let Some(id) = b64(&s["spanId"]) else {
                    continue;
                };
                let time = |k: &str| -> i64 {
                    s[k].as_str()
                        .and_then(|t| t.parse().ok())
                        .unwrap_or_default()
                };
                nodes.insert(
                    id,
                    Node {
                        service: service.clone(),
                        name: s["name"].as_str().unwrap_or_default().to_string(),
                        start: time("startTimeUnixNano"),
                        end: time("endTimeUnixNano"),
                        error: s["status"]["code"] == "STATUS_CODE_ERROR",
                        parent: s.get("parentSpanId").and_then(b64),
                    },
                );
            }
        }
    }
    if nodes.is_empty() {
        no_results();
        return Ok(());
    }
    let t0 = nodes.values().map(|n| n.start).min().unwrap_or_default();
    let mut children: HashMap<Option<&str>, Vec<&str>> = HashMap::new();
    for (id, n) in &nodes {
        // A parent that is not in the trace (not received yet) makes its child a root.
        let parent = n.parent.as_deref().filter(|p| nodes.contains_key(*p));
        children.entry(parent).or_default().push(id);
    }
    for list in children.values_mut() {
        list.sort_by_key(|id| (nodes[*id].start, id.to_string()));
    }
    let mut stack: Vec<(&str, usize)> = children
        .get(&None)
        .map(|roots| roots.iter().rev().map(|r| (*r, 0)).collect())
        .unwrap_or_default();
    while let Some((id, depth)) = stack.pop() {
        let n = &nodes[id];
        writeln!(
            out,
            "{:indent$}{} {}  +{:.3} ms  {:.3} ms{}",
            "",
            n.service,
            n.name,
            (n.start - t0) as f64 / 1e6,
            (n.end - n.start) as f64 / 1e6,
            if n.error { "  ERROR" } else { "" },
            indent = depth * 2
        )?;
        if let Some(kids) = children.get(&Some(id)) {
            stack.extend(kids.iter().rev().map(|k| (*k, depth + 1)));
        }
    }
    Ok(())
}
