//! `sightline demo`: the server with embedded defaults plus the simulated finance cloud
//! (`sightline-demo`) sending real OTLP to its public ports, its alert rules, and a control
//! API on the main port (`/api/v1/demo/faults`: the ground truth, and faults on command).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde_json::{Value, json};
use sightline_demo::estate::Estate;
use sightline_demo::faults::FaultKind;
use sightline_demo::run::{Control, Options};

use crate::config::Config;

mod evaluate;

/// The alerts the demo evaluates.
const RULES: &str = include_str!("rules.yml");

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    #[command(subcommand)]
    pub command: Option<DemoCommand>,
    /// Where the demo's data lives (a fresh directory is best).
    #[arg(
        long,
        default_value = "sightline-demo-data",
        env = "SIGHTLINE_DATA_DIR"
    )]
    pub data_dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:7070", env = "SIGHTLINE_HTTP_ADDR")]
    pub http_addr: SocketAddr,
    #[arg(
        long,
        default_value = "127.0.0.1:4317",
        env = "SIGHTLINE_OTLP_GRPC_ADDR"
    )]
    pub otlp_grpc_addr: SocketAddr,
    #[arg(
        long,
        default_value = "127.0.0.1:4318",
        env = "SIGHTLINE_OTLP_HTTP_ADDR"
    )]
    pub otlp_http_addr: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:5514", env = "SIGHTLINE_SYSLOG_ADDR")]
    pub syslog_addr: SocketAddr,
    /// Simulated time runs this many times faster (daily and weekly traffic curves: at 10
    /// a day passes in 2.4 hours).
    #[arg(long, default_value_t = 10.0)]
    pub speed: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Copies of the finance cloud (13 services each; 77 ≈ the seed's 1,000 systems).
    #[arg(long, default_value_t = 1)]
    pub copies: usize,
    /// First scheduled fault after this long (the alerts compare with the last half hour:
    /// a few minutes of normal traffic first).
    #[arg(long, default_value = "6m", value_parser = humantime::parse_duration)]
    pub first_fault: Duration,
    /// Then one every so often (every kind in turn).
    #[arg(long, default_value = "7m", value_parser = humantime::parse_duration)]
    pub fault_every: Duration,
    /// How long each fault lasts.
    #[arg(long, default_value = "3m", value_parser = humantime::parse_duration)]
    pub fault_for: Duration,
    /// No scheduled faults: only `sightline demo fault …`.
    #[arg(long)]
    pub no_faults: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum DemoCommand {
    /// Inject a fault into a running demo: node_cpu, memory_leak, slow_db, cache_outage,
    /// bad_deploy, retry_storm, zone_partition, disk_full, pool_exhaustion, noisy_neighbour.
    Fault {
        kind: String,
        /// The node, pod, service or zone (default: one picked at random).
        #[arg(long)]
        target: Option<String>,
        /// How long it lasts.
        #[arg(long = "for", default_value = "3m", value_parser = humantime::parse_duration)]
        duration: Duration,
        #[arg(
            long,
            default_value = "http://127.0.0.1:7070",
            env = "SIGHTLINE_SERVER"
        )]
        server: String,
    },
    /// Runs the demo in simulated time with N faults one after another and scores what
    /// Sightline made of them against their ground truth (detection delay, root cause
    /// top-1/top-3, first action, notifications per incident, false incidents per day);
    /// the last line is JSON.
    Evaluate(evaluate::EvaluateArgs),
    /// The faults injected so far, with their ground truth.
    Faults {
        #[arg(
            long,
            default_value = "http://127.0.0.1:7070",
            env = "SIGHTLINE_SERVER"
        )]
        server: String,
    },
}

/// Runs `sightline demo` (or one of its client commands).
pub fn demo(args: DemoArgs, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    match args.command {
        Some(DemoCommand::Fault {
            kind,
            target,
            duration,
            server,
        }) => {
            let r = reqwest::blocking::Client::new()
                .post(format!(
                    "{}/api/v1/demo/faults",
                    server.trim_end_matches('/')
                ))
                .json(&json!({"kind": kind, "target": target,
                              "duration_seconds": duration.as_secs_f64()}))
                .send()
                .with_context(|| format!("cannot reach a running demo at {server}"))?;
            let status = r.status();
            let text = r.text()?;
            if !status.is_success() {
                bail!("{status}: {}", text.trim());
            }
            writeln!(out, "{text}")?;
            Ok(())
        }
        Some(DemoCommand::Faults { server }) => {
            let text = reqwest::blocking::get(format!(
                "{}/api/v1/demo/faults",
                server.trim_end_matches('/')
            ))
            .with_context(|| format!("cannot reach a running demo at {server}"))?
            .text()?;
            writeln!(out, "{text}")?;
            Ok(())
        }
        Some(DemoCommand::Evaluate(e)) => {
            crate::serve::init_tracing();
            evaluate::evaluate(e, out)
        }
        None => run_demo(args),
    }
}

fn run_demo(args: DemoArgs) -> anyhow::Result<()> {
    crate::serve::init_tracing();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let rules = args.data_dir.join("demo-rules.yml");
    std::fs::write(&rules, RULES).with_context(|| format!("cannot write {}", rules.display()))?;
    let mut config = Config {
        data_dir: args.data_dir.clone(),
        ..Config::default()
    };
    config.server.http_addr = args.http_addr;
    config.server.otlp_grpc_addr = args.otlp_grpc_addr;
    config.server.otlp_http_addr = args.otlp_http_addr;
    config.server.syslog_addr = args.syslog_addr;
    config.alerting.rule_files = vec![rules];
    config.alerting.evaluation_interval = Duration::from_secs(15);
    // The demo's alerts fire within two minutes of a change (a one-minute rate, 30 s `for`).
    config.incidents.onset_lead = Duration::from_secs(120);
    config.validate()?;

    let control = Control::new(Estate::finance(args.copies), args.seed);
    let mut opts = Options {
        seed: args.seed,
        speed: args.speed,
        copies: args.copies,
        tick: Duration::from_secs(5),
        first_fault_after: (!args.no_faults).then_some(args.first_fault),
        fault_every: args.fault_every,
        fault_for: args.fault_for,
        ..Options::default()
    };
    let rt = crate::serve::runtime()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (listening_tx, listening_rx) = tokio::sync::oneshot::channel::<(SocketAddr, SocketAddr)>();
    let sim_control = control.clone();
    let sim = rt.spawn(async move {
        // The ports as bound (port 0 resolved).
        let Ok((http, otlp)) = listening_rx.await else {
            return Ok(());
        };
        opts.http = format!("http://{http}");
        opts.otlp = format!("http://{otlp}");
        eprintln!(
            "sightline demo: a simulated finance cloud ({} services, {} pods, {} nodes) sends OTLP to {otlp}; \
             the first fault comes in {}.\n\
             Watch:  sightline incidents list --server http://{http}   (then `sightline incidents show inc-1`)\n\
             Truth:  sightline demo faults --server http://{http}      (`sightline demo fault slow_db` injects one)\n\
             APIs:   http://{http}/api/v1/incidents, /api/v1/topology; Grafana's Prometheus, Loki and Tempo data sources on http://{http}",
            sim_control.estate.services.len(),
            sim_control.estate.pods.len(),
            sim_control.estate.nodes.len(),
            opts.first_fault_after
                .map_or("never (--no-faults)".to_string(), |d| humantime::format_duration(d).to_string()),
        );
        sightline_demo::run::run(opts, sim_control, stop_rx).await
    });
    let embed = crate::serve::Embed {
        router: router(control),
        listening: listening_tx,
        stop: None,
        drive: None,
    };
    let result = rt.block_on(crate::serve::run(config, Some(embed)));
    let _ = stop_tx.send(true);
    if let Ok(Ok(Err(e))) =
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), sim).await })
    {
        tracing::warn!(error = %format!("{e:#}"), "the simulator stopped");
    }
    result
}

fn router(control: Arc<Control>) -> Router {
    Router::new()
        .route("/api/v1/demo/faults", get(list).post(inject))
        .with_state(control)
}

async fn list(State(c): State<Arc<Control>>) -> Json<Value> {
    Json(json!({"status": "success", "data": c.faults()}))
}

async fn inject(State(c): State<Arc<Control>>, Json(body): Json<Value>) -> Response {
    let Some(kind) = body["kind"].as_str().and_then(FaultKind::parse) else {
        let known: Vec<&str> = FaultKind::ALL.iter().map(|k| k.as_str()).collect();
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "unknown fault kind {} (known: {})\n",
                body["kind"],
                known.join(", ")
            ),
        )
            .into_response();
    };
    let duration = Duration::from_secs_f64(
        body["duration_seconds"]
            .as_f64()
            .unwrap_or(180.0)
            .clamp(1.0, 86_400.0),
    );
    match c.inject(kind, body["target"].as_str(), duration) {
        Ok(f) => Json(json!({"status": "success", "data": f})).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}
