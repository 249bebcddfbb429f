//! Root cause at the seed's scale (issue 15): `GET /api/v1/rca` latency per question on an
//! estate of `--apps` business applications (1,000) of 10 services each, declared through
//! the inventory API (each service with its metric selector) and with `--hours` (2) of
//! per-minute metrics remote-written for every service: a latency gauge, a request counter
//! and an error counter (30,000 series for 1,000 applications). In each application,
//! service 0 (its gateway) calls services 1–3, each of those calls two of 4–9, and every
//! gateway calls the shared `sso` service. In each application one leaf service slows down
//! in the last ten minutes, and with it its caller and the gateway. The questions are random
//! gateways at the slowdown's onset; the answer's first cause is checked against the leaf.
//!
//! ```sh
//! cargo build --release -p sightline-server -p sightline-benches
//! target/release/rca_load --work /tmp/rca-load
//! ```

use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};
use sightline_benches::process::{ServerProcess, percentile};
use sightline_benches::remote_write::{self, Label, Sample, TimeSeries, WriteRequest};
use sightline_benches::rng::Rng;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1000)]
    apps: usize,
    #[arg(long, default_value_t = 2)]
    hours: i64,
    /// Questions asked.
    #[arg(long, default_value_t = 200)]
    questions: usize,
    #[arg(long, default_value = "target/release/sightline")]
    bin: PathBuf,
    #[arg(long, default_value = "/tmp/sightline-rca-load")]
    work: PathBuf,
}

const SERVICES: usize = 10;
const STEP_MS: i64 = 60_000;

fn service(app: usize, s: usize) -> String {
    format!("a{app:04}-s{s}")
}

/// The calls inside one application (caller, callee), by service index.
fn calls() -> Vec<(usize, usize)> {
    let mut out = vec![(0, 1), (0, 2), (0, 3)];
    for (i, mid) in [1usize, 2, 3].iter().enumerate() {
        out.push((*mid, 4 + 2 * i));
        out.push((*mid, 5 + 2 * i));
    }
    out
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = fs::remove_dir_all(&args.work);
    fs::create_dir_all(&args.work)?;
    let server = ServerProcess::start(
        &args.bin,
        &args.work.join("data"),
        None,
        &args.work.join("server.log"),
    )?;
    let base = format!("http://{}", server.http);
    let client = reqwest::blocking::Client::new();
    let put = |path: &str, body: Value| -> anyhow::Result<()> {
        let r = client.put(format!("{base}{path}")).json(&body).send()?;
        if !r.status().is_success() {
            bail!("{path}: {} {}", r.status(), r.text()?);
        }
        Ok(())
    };
    let decl = |name: &str| {
        json!({"kind": "service", "name": name,
               "attributes": {"sightline.promql_selector": format!("{{entity={name:?}}}")}})
    };
    let started = Instant::now();
    put(
        "/api/v1/topology/entities",
        json!({"entities": [decl("sso")]}),
    )?;
    for chunk in (0..args.apps).collect::<Vec<_>>().chunks(100) {
        let mut entities = Vec::new();
        let mut relations = Vec::new();
        for &app in chunk {
            for s in 0..SERVICES {
                entities.push(decl(&service(app, s)));
            }
            for (a, b) in calls() {
                relations.push(json!({"from": format!("service:{}", service(app, a)),
                                      "to": format!("service:{}", service(app, b)),
                                      "kind": "calls"}));
            }
            relations.push(json!({"from": format!("service:{}", service(app, 0)),
                                  "to": "service:sso", "kind": "calls"}));
        }
        put("/api/v1/topology/entities", json!({"entities": entities}))?;
        put(
            "/api/v1/topology/relations",
            json!({"relations": relations}),
        )?;
    }
    let declared = started.elapsed().as_secs_f64();

    // Metrics: per service a latency gauge and two counters, one sample a minute.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64
        / STEP_MS
        * STEP_MS;
    let start = now - args.hours * 3_600_000;
    let onset = now - 10 * STEP_MS;
    let mut rng = Rng::new(7);
    let mut names: Vec<(usize, String)> = vec![(usize::MAX, "sso".into())];
    for app in 0..args.apps {
        for s in 0..SERVICES {
            names.push((app, service(app, s)));
        }
    }
    let started = Instant::now();
    let mut samples = 0usize;
    for chunk in names.chunks(200) {
        let mut timeseries = Vec::new();
        for (app, name) in chunk {
            // The faulty service of this application (one of the leaves 4–9), and the
            // callers its slowdown shows in (its caller among 1–3, the gateway).
            let leaf = 4 + app % 6;
            let faulty = *app != usize::MAX
                && [leaf, 1 + (leaf - 4) / 2, 0]
                    .iter()
                    .any(|&s| *name == service(*app, s));
            let level = 0.02 + (rng.below(100) as f64) / 1000.0;
            let (mut lat, mut req, mut err) = (Vec::new(), Vec::new(), Vec::new());
            let (mut reqs, mut errs) = (0.0, 0.0);
            let mut t = start;
            while t <= now {
                let noise = 1.0 + (rng.below(61) as f64 - 30.0) / 1000.0;
                let slow = if faulty && t >= onset { 0.4 } else { 0.0 };
                lat.push(Sample {
                    value: level * noise + slow,
                    timestamp: t,
                });
                reqs += 600.0 + rng.below(60) as f64;
                errs += rng.below(3) as f64;
                req.push(Sample {
                    value: reqs,
                    timestamp: t,
                });
                err.push(Sample {
                    value: errs,
                    timestamp: t,
                });
                t += STEP_MS;
            }
            samples += lat.len() * 3;
            for (metric, s) in [
                ("http_latency_seconds", lat),
                ("http_requests_total", req),
                ("http_errors_total", err),
            ] {
                timeseries.push(TimeSeries {
                    labels: vec![
                        Label::new("__name__", metric),
                        Label::new("entity", name.as_str()),
                    ],
                    samples: s,
                });
            }
        }
        remote_write::post(
            &client,
            &format!("{base}/api/v1/write"),
            remote_write::body(&WriteRequest { timeseries }),
        )?;
    }
    let written = started.elapsed().as_secs_f64();

    let mut latencies = Vec::new();
    let mut top1 = 0usize;
    for _ in 0..args.questions {
        let app = rng.below(args.apps as u64) as usize;
        let t0 = Instant::now();
        let v: Value = client
            .get(format!("{base}/api/v1/rca"))
            .query(&[
                ("entity", format!("service:{}", service(app, 0))),
                ("time", format!("{}", onset / 1000)),
                ("end", format!("{}", now / 1000)),
                ("lookback", format!("{}h", args.hours)),
                ("metric", "http_latency_seconds".into()),
            ])
            .send()?
            .json()
            .context("rca answer")?;
        latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
        if std::env::var_os("RCA_LOAD_DEBUG").is_some() {
            eprintln!("{v:#}");
        }
        let first = v["data"]["causes"][0]["entity"]
            .as_str()
            .unwrap_or_default();
        if first == format!("service:{}", service(app, 4 + app % 6)) {
            top1 += 1;
        }
    }
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!(
        "estate: {} services, {} series, {samples} samples; declared in {declared:.1} s, written in {written:.1} s",
        names.len(),
        names.len() * 3
    );
    println!(
        "rca per question: p50 {p50:.1} ms, p99 {p99:.1} ms over {} questions; injected cause first in {top1}",
        args.questions
    );
    println!(
        "{}",
        json!({"services": names.len(), "series": names.len() * 3, "samples": samples,
               "p50_ms": p50, "p99_ms": p99, "questions": args.questions, "top1": top1})
    );
    Ok(())
}
