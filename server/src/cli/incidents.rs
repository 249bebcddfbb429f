//! `sightline incidents …`: the incidents API from the command line.

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;
use serde_json::Value;

use super::{Endpoint, Output, get_api, no_results};

#[derive(Subcommand, Debug)]
pub enum IncidentsCommand {
    /// List incidents, unresolved first, newest first.
    List {
        /// Only incidents in this state (open, acknowledged, resolved).
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        at: Endpoint,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// One incident: its signals, causes with evidence, and timeline.
    Show {
        id: String,
        #[command(flatten)]
        at: Endpoint,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Acknowledge an open incident.
    Ack {
        id: String,
        /// Who acknowledges (default: $USER).
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        at: Endpoint,
    },
    /// Resolve an incident.
    Resolve {
        id: String,
        /// Who resolves (default: $USER).
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        at: Endpoint,
    },
}

fn time(ms: &Value) -> String {
    ms.as_i64()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "-".into())
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

pub fn run(command: IncidentsCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        IncidentsCommand::List { state, at, output } => {
            let params: Vec<(&str, String)> = state.map(|s| ("state", s)).into_iter().collect();
            let Some(v) = get_api(&at, "/api/v1/incidents", &params, output, out)? else {
                return Ok(());
            };
            let list = v["data"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                no_results();
            }
            for i in &list {
                let cause = match i["cause"]["entity"].as_str() {
                    Some(e) => format!(
                        "cause {e} ({:.0} %)",
                        i["cause"]["confidence"].as_f64().unwrap_or(0.0) * 100.0
                    ),
                    None => "cause not found yet".into(),
                };
                writeln!(
                    out,
                    "{}  {:<12}  {}  {}  ({} firing of {} signals; {})",
                    s(&i["id"]),
                    s(&i["state"]),
                    time(&i["opened_at"]),
                    s(&i["title"]),
                    i["firing"],
                    i["signals"],
                    cause
                )?;
            }
            Ok(())
        }
        IncidentsCommand::Show { id, at, output } => {
            let path = format!("/api/v1/incidents/{id}");
            let Some(v) = get_api(&at, &path, &[], output, out)? else {
                return Ok(());
            };
            print_incident(&v["data"], out)
        }
        IncidentsCommand::Ack { id, by, at } => operate(&at, &id, "acknowledge", by, out),
        IncidentsCommand::Resolve { id, by, at } => operate(&at, &id, "resolve", by, out),
    }
}

fn print_incident(i: &Value, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "{}  {}  {}",
        s(&i["id"]),
        s(&i["state"]),
        s(&i["title"])
    )?;
    writeln!(
        out,
        "opened {}  symptom {}",
        time(&i["opened_at"]),
        s(&i["symptom"])
    )?;
    writeln!(out, "signals:")?;
    for (_, m) in i["signals"].as_object().into_iter().flatten() {
        writeln!(
            out,
            "  {} {} on {}  since {}  {}",
            if m["firing"] == true {
                "FIRING  "
            } else {
                "resolved"
            },
            s(&m["name"]),
            s(&m["entity"]),
            time(&m["starts_at"]),
            m["summary"].as_str().unwrap_or("")
        )?;
    }
    writeln!(out, "likely causes:")?;
    for (n, c) in i["causes"].as_array().into_iter().flatten().enumerate() {
        let d = &c["detail"];
        let path: Vec<&str> = d["path"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        writeln!(
            out,
            "  {}. {}  confidence {:.0} %{}  path {}",
            n + 1,
            s(&c["entity"]),
            c["confidence"].as_f64().unwrap_or(0.0) * 100.0,
            if c["candidate"] == true {
                ""
            } else {
                " (not a candidate)"
            },
            path.join(" → ")
        )?;
        for e in d["evidence"].as_array().into_iter().flatten().take(2) {
            writeln!(
                out,
                "       {} {}: {} before, {} at {} (z {:.1}, rarity {:.3})",
                s(&e["metric"]),
                e["labels"].as_str().unwrap_or(""),
                e["level"],
                e["observed"],
                time(&e["observed_at"]),
                e["z"].as_f64().unwrap_or(0.0),
                e["rarity"].as_f64().unwrap_or(1.0)
            )?;
        }
        for ch in d["changes"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "       change: {} {} at {}",
                s(&ch["kind"]),
                ch["to"].as_str().unwrap_or(""),
                time(&ch["time"])
            )?;
        }
    }
    writeln!(out, "advice:")?;
    for (n, a) in i["advice"].as_array().into_iter().flatten().enumerate() {
        writeln!(
            out,
            "  {}. {} {}: {}\n       effect: {}\n       cost: {}",
            n + 1,
            s(&a["kind"]),
            s(&a["target"]),
            s(&a["rationale"]),
            s(&a["effect"]),
            s(&a["cost"])
        )?;
        writeln!(out, "       apply: {}", a["spec"])?;
    }
    writeln!(out, "timeline:")?;
    for e in i["timeline"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "  {}  {:<16} {}",
            time(&e["time"]),
            s(&e["kind"]),
            e["detail"].as_str().unwrap_or("")
        )?;
    }
    Ok(())
}

fn operate(
    at: &Endpoint,
    id: &str,
    action: &str,
    by: Option<String>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let by = by
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cli".into());
    let url = format!(
        "{}/api/v1/incidents/{id}/{action}",
        at.server.trim_end_matches('/')
    );
    let text = super::answer_text(
        at,
        reqwest::blocking::Client::new()
            .post(&url)
            .header("X-Scope-OrgID", &at.tenant)
            .json(&serde_json::json!({ "by": by }))
            .send(),
    )?;
    let v: Value = serde_json::from_str(&text).context("answer is not JSON")?;
    writeln!(out, "{} {}", s(&v["data"]["id"]), s(&v["data"]["state"]))?;
    Ok(())
}
