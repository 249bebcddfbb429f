//! Ingest latency under an abandoned-query storm (issue 10): is ingest hurt by heavy queries
//! whose clients have given up?
//!
//! ```text
//! cargo build --release -p sightline-server -p sightline-benches
//! target/release/query_storm --seconds 20 --storm-clients 4
//! ```
//!
//! Starts the release server (next to this binary, or `--server-bin`), then one sender pushes
//! 100-line Loki batches back to back and records each request's latency. Quiet phase:
//! nothing else runs. Storm phase: `--storm-clients` threads each send a heavy PromQL range
//! query (a median over 3.6 M points at each of 1,000 steps, minutes of CPU) and give up
//! after `--abandon-ms`, again and again. Prints ingest p50/p99 in both phases, their ratio,
//! and the server's CPU use; the acceptance bound is a p99 ratio within 2.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use serde_json::json;
use sightline_benches::process::{ServerProcess, percentile};

#[derive(Parser, Debug)]
#[command(about = "Ingest latency while clients abandon heavy queries")]
struct Args {
    /// Length of each phase.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Threads sending and abandoning heavy queries in the storm phase.
    #[arg(long, default_value_t = 4)]
    storm_clients: usize,
    /// How long a storm client waits before giving up on its query.
    #[arg(long, default_value_t = 200)]
    abandon_ms: u64,
    #[arg(long, default_value = "/tmp/sightline-query-storm")]
    work: PathBuf,
    /// The server binary (default: `sightline` next to this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
}

const HEAVY: &str = "quantile_over_time(0.5, vector(1)[1h:1ms])";

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Pushes batches until `stop`; returns each request's latency in seconds.
fn ingest(url: String, seconds: u64, counter: Arc<AtomicU64>) -> Vec<f64> {
    let client = reqwest::blocking::Client::new();
    let mut latencies = Vec::new();
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        let b = counter.fetch_add(1, Ordering::Relaxed);
        let base = now_ns();
        let values: Vec<_> = (0..100)
            .map(|i| {
                json!([
                    (base + i).to_string(),
                    format!(
                        "batch {b} line {i} user=u{i} status=200 latency_ms={}",
                        i * 3
                    )
                ])
            })
            .collect();
        let body = json!({"streams": [{"stream": {"job": "storm"}, "values": values}]});
        let started = Instant::now();
        let r = client.post(&url).json(&body).send();
        let took = started.elapsed().as_secs_f64();
        match r {
            Ok(r) if r.status().is_success() => latencies.push(took),
            Ok(r) => eprintln!("push answered {}", r.status()),
            Err(e) => eprintln!("push failed: {e}"),
        }
    }
    latencies
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = match &args.server_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("sightline"),
    };
    let _ = std::fs::remove_dir_all(&args.work);
    std::fs::create_dir_all(&args.work)?;
    let mut server = ServerProcess::start(
        &bin,
        &args.work.join("data"),
        None,
        &args.work.join("server.log"),
    )?;
    let push = format!("http://{}/loki/api/v1/push", server.http);
    let counter = Arc::new(AtomicU64::new(0));
    // Warm up, then the quiet phase.
    ingest(push.clone(), 2, counter.clone());
    let cpu0 = server.cpu_seconds()?;
    let quiet = ingest(push.clone(), args.seconds, counter.clone());
    let cpu_quiet = server.cpu_seconds()? - cpu0;

    let storming = Arc::new(AtomicBool::new(true));
    let abandoned = Arc::new(AtomicU64::new(0));
    let storm: Vec<_> = (0..args.storm_clients)
        .map(|_| {
            let (storming, abandoned) = (storming.clone(), abandoned.clone());
            let url = format!("http://{}/api/v1/query_range", server.http);
            let abandon = Duration::from_millis(args.abandon_ms);
            thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(abandon)
                    .build()
                    .unwrap();
                while storming.load(Ordering::Relaxed) {
                    let now = now_ns() / 1_000_000_000;
                    let r = client
                        .get(&url)
                        .query(&[
                            ("query", HEAVY.to_string()),
                            ("start", (now - 1000).to_string()),
                            ("end", now.to_string()),
                            ("step", "1".to_string()),
                        ])
                        .send();
                    if r.is_err() {
                        abandoned.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let cpu1 = server.cpu_seconds()?;
    let stormy = ingest(push, args.seconds, counter);
    let cpu_storm = server.cpu_seconds()? - cpu1;
    storming.store(false, Ordering::Relaxed);
    for t in storm {
        let _ = t.join();
    }
    server.stop()?;

    let (q50, q99) = (percentile(&quiet, 0.5), percentile(&quiet, 0.99));
    let (s50, s99) = (percentile(&stormy, 0.5), percentile(&stormy, 0.99));
    let secs = args.seconds as f64;
    println!(
        "quiet: {} pushes, p50 {:.1} ms, p99 {:.1} ms, server CPU {:.2} cores",
        quiet.len(),
        q50 * 1e3,
        q99 * 1e3,
        cpu_quiet / secs
    );
    println!(
        "storm ({} clients, {} queries abandoned after {} ms): {} pushes, p50 {:.1} ms, p99 {:.1} ms, server CPU {:.2} cores",
        args.storm_clients,
        abandoned.load(Ordering::Relaxed),
        args.abandon_ms,
        stormy.len(),
        s50 * 1e3,
        s99 * 1e3,
        cpu_storm / secs
    );
    println!("ingest p99 storm/quiet: {:.2} (bound: 2)", s99 / q99);
    println!(
        "{}",
        json!({
            "quiet_p50_ms": q50 * 1e3, "quiet_p99_ms": q99 * 1e3,
            "storm_p50_ms": s50 * 1e3, "storm_p99_ms": s99 * 1e3,
            "p99_ratio": s99 / q99,
            "abandoned_queries": abandoned.load(Ordering::Relaxed),
            "server_cores_quiet": cpu_quiet / secs, "server_cores_storm": cpu_storm / secs,
        })
    );
    Ok(())
}
