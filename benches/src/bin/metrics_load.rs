//! Metric ingest, storage and PromQL benchmark: the same remote_write load sent to Sightline
//! and to Prometheus (Debian's 2.42, `--web.enable-remote-write-receiver`) in the same run,
//! one after the other, with every figure side by side.
//!
//! ```text
//! cargo build --release -p sightline-server -p sightline-benches
//! target/release/metrics_load --work /tmp/sightline-metrics-bench
//! ```
//!
//! 1. Generates a fleet ([`sightline_benches::metricgen`]): `--services` × 20 targets × 94
//!    series (counters, histograms, gauges; 101,520 series by default) sampled every 15 s
//!    over `--hours` of simulated time ending now.
//! 2. For each system: starts it on loopback with a fresh data directory, sends every
//!    sample with `--senders` threads (each owning a share of the targets, time-major,
//!    `--samples-per-request` per request, snappy protobuf, retrying 429/5xx), the threads
//!    kept within a few intervals of each other so no sample is too old for Prometheus.
//! 3. Reads the server's CPU time from `/proc/PID/stat` (the generator's own CPU is not
//!    counted) and its resident memory once the load is in (`VmRSS`, divided by the series).
//! 4. Waits for on-disk blocks (Prometheus cuts its first 2 h block once the head spans
//!    3 h; Sightline runs its maintenance every few seconds here), and computes bytes per
//!    sample over the blocks: their size on disk divided by the samples they hold (from
//!    Prometheus's `meta.json`, and Sightline's `sightline_tsdb_block_bytes` and
//!    `_block_samples` in `/metrics`, checked against its blocks directory).
//! 5. Times ten representative PromQL queries (instant and range) on both, `--query-runs`
//!    each, p50.
//!
//! The last line of output is a JSON object with every figure.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};
use sightline_benches::metricgen::{Fleet, traffic_factor};
use sightline_benches::process::{
    ServerProcess, clock_ticks, cpu_seconds, dir_size, memory_bytes, percentile,
};
use sightline_benches::rng::Rng;

#[derive(Parser, Debug)]
#[command(about = "remote_write load, storage and PromQL benchmark: Sightline beside Prometheus")]
struct Args {
    /// Services in the fleet (20 targets of 94 series each).
    #[arg(long, default_value_t = 54)]
    services: usize,
    /// Simulated hours of samples (ending now). Prometheus writes its first block once its
    /// head spans 3 h, so at least 3.5 gives both systems a block to measure.
    #[arg(long, default_value_t = 4.0)]
    hours: f64,
    /// Sample interval in seconds.
    #[arg(long, default_value_t = 15)]
    interval: u64,
    #[arg(long, default_value_t = 4)]
    senders: usize,
    #[arg(long, default_value_t = 2000)]
    samples_per_request: usize,
    #[arg(long, default_value_t = 5)]
    query_runs: usize,
    /// Working directory (data of both systems, logs).
    #[arg(long)]
    work: PathBuf,
    /// The sightline binary (default: next to this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// The Prometheus binary.
    #[arg(long, default_value = "prometheus")]
    prometheus_bin: PathBuf,
    /// Only Sightline (no peer figures).
    #[arg(long)]
    skip_prometheus: bool,
}

/// One system under load, as the harness sees it.
trait System {
    fn name(&self) -> &'static str;
    fn base_url(&self) -> String;
    fn pid(&self) -> u32;
    /// Bytes of its blocks on disk and the samples in them, once there is at least one.
    fn blocks(&self) -> anyhow::Result<Option<(u64, u64)>>;
}

struct Sightline {
    process: ServerProcess,
    data: PathBuf,
}

impl System for Sightline {
    fn name(&self) -> &'static str {
        "sightline"
    }
    fn base_url(&self) -> String {
        format!("http://{}", self.process.http)
    }
    fn pid(&self) -> u32 {
        self.process.child.id()
    }
    fn blocks(&self) -> anyhow::Result<Option<(u64, u64)>> {
        // The store reports its blocks' bytes and samples in /metrics.
        let text = reqwest::blocking::get(format!("{}/metrics", self.base_url()))?.text()?;
        let gauge = |name: &str| -> u64 {
            text.lines()
                .find_map(|l| {
                    l.strip_prefix(name)?
                        .strip_prefix(' ')?
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
                .unwrap_or(0.0) as u64
        };
        let (bytes, samples) = (
            gauge("sightline_tsdb_block_bytes"),
            gauge("sightline_tsdb_block_samples"),
        );
        let on_disk = dir_size(&self.data.join("tsdb").join("blocks")).unwrap_or(0);
        if samples > 0 && on_disk < bytes {
            bail!("block bytes in /metrics ({bytes}) exceed the blocks directory ({on_disk})");
        }
        Ok((samples > 0).then_some((bytes, samples)))
    }
}

struct Prometheus {
    child: Child,
    port: u16,
    data: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl System for Prometheus {
    fn name(&self) -> &'static str {
        "prometheus"
    }
    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
    fn blocks(&self) -> anyhow::Result<Option<(u64, u64)>> {
        block_dirs(&self.data)
    }
}

/// Sums Prometheus's block directories under `root` (those with a `meta.json` holding
/// `stats.numSamples`): (bytes, samples).
fn block_dirs(root: &Path) -> anyhow::Result<Option<(u64, u64)>> {
    let Ok(entries) = fs::read_dir(root) else {
        return Ok(None);
    };
    let (mut bytes, mut samples) = (0u64, 0u64);
    for entry in entries {
        let path = entry?.path();
        let Ok(meta) = fs::read_to_string(path.join("meta.json")) else {
            continue;
        };
        let meta: Value =
            serde_json::from_str(&meta).with_context(|| format!("{}/meta.json", path.display()))?;
        let n = meta["stats"]["numSamples"].as_u64().unwrap_or(0);
        if n > 0 {
            samples += n;
            bytes += dir_size(&path)?;
        }
    }
    Ok((samples > 0).then_some((bytes, samples)))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn start_prometheus(args: &Args, dir: &Path) -> anyhow::Result<Prometheus> {
    fs::create_dir_all(dir)?;
    let port = free_port()?;
    let config = dir.join("prometheus.yml");
    fs::write(&config, "global:\n  scrape_interval: 15s\n")?;
    let data = dir.join("data");
    let log = fs::File::create(dir.join("prometheus.log"))?;
    let child = Command::new(&args.prometheus_bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", args.prometheus_bin.display()))?;
    let prom = Prometheus { child, port, data };
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !client
        .get(format!("{}/-/ready", prom.base_url()))
        .send()
        .is_ok_and(|r| r.status().is_success())
    {
        if Instant::now() > deadline {
            bail!(
                "prometheus not ready after 60 s (see {}/prometheus.log)",
                dir.display()
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
    Ok(prom)
}

fn start_sightline(args: &Args, dir: &Path) -> anyhow::Result<Sightline> {
    fs::create_dir_all(dir)?;
    let bin = match &args.server_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("binary has no directory")?
            .join("sightline"),
    };
    let config = dir.join("sightline.toml");
    // Frequent maintenance, so blocks are cut soon after the load instead of within a minute.
    fs::write(&config, "[tsdb]\nmaintain_interval = \"5s\"\n")?;
    let data = dir.join("data");
    let process = ServerProcess::start(&bin, &data, Some(&config), &dir.join("sightline.log"))?;
    let client = reqwest::blocking::Client::new();
    let url = format!("http://{}/readyz", process.http);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !client
        .get(&url)
        .send()
        .is_ok_and(|r| r.status().is_success())
    {
        if Instant::now() > deadline {
            bail!("sightline not ready after 60 s");
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(Sightline { process, data })
}

#[derive(Debug, Default)]
struct LoadStats {
    samples: u64,
    requests: u64,
    retries: u64,
    seconds: f64,
}

/// Sends the whole simulated span to `url` and returns what was acknowledged.
fn load(
    args: &Args,
    fleet: &Fleet,
    start_ms: i64,
    steps: u64,
    url: &str,
) -> anyhow::Result<LoadStats> {
    let interval_ms = args.interval as i64 * 1000;
    // The slowest sender's step; the others wait when they are more than LEAD steps ahead.
    let progress: Arc<Vec<AtomicU64>> =
        Arc::new((0..args.senders).map(|_| AtomicU64::new(0)).collect());
    const LEAD: u64 = 4;
    let samples = AtomicU64::new(0);
    let requests = AtomicU64::new(0);
    let retries = AtomicU64::new(0);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let started = Instant::now();
    thread::scope(|scope| {
        for sender in 0..args.senders {
            let progress = progress.clone();
            let (samples, requests, retries, failure) = (&samples, &requests, &retries, &failure);
            let mut mine: Vec<_> = fleet
                .series
                .iter()
                .filter(|s| s.target % args.senders == sender)
                .cloned()
                .collect();
            scope.spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .expect("http client");
                let mut rng = Rng::new(1000 + sender as u64);
                let mut body = Vec::with_capacity(args.samples_per_request * 120);
                let mut in_body = 0usize;
                let send = |body: &mut Vec<u8>, n: usize| -> anyhow::Result<()> {
                    let compressed = snap::raw::Encoder::new().compress_vec(body)?;
                    body.clear();
                    loop {
                        let r = client
                            .post(url)
                            .header("Content-Encoding", "snappy")
                            .header("Content-Type", "application/x-protobuf")
                            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                            .body(compressed.clone())
                            .send()
                            .context("remote write request")?;
                        let status = r.status();
                        if status.is_success() {
                            samples.fetch_add(n as u64, Ordering::Relaxed);
                            requests.fetch_add(1, Ordering::Relaxed);
                            return Ok(());
                        }
                        if status.as_u16() == 429 || status.is_server_error() {
                            retries.fetch_add(1, Ordering::Relaxed);
                            thread::sleep(Duration::from_millis(100));
                            continue;
                        }
                        bail!("{url}: {status}: {}", r.text().unwrap_or_default());
                    }
                };
                let mut run = || -> anyhow::Result<()> {
                    for step in 0..steps {
                        while progress
                            .iter()
                            .map(|p| p.load(Ordering::Acquire))
                            .min()
                            .unwrap_or(0)
                            + LEAD
                            < step
                        {
                            if failure.lock().map(|f| f.is_some()).unwrap_or(true) {
                                return Ok(());
                            }
                            thread::sleep(Duration::from_millis(1));
                        }
                        let mut noise = [1.0, 0.0];
                        let mut current_target = usize::MAX;
                        let mut t = 0;
                        for s in mine.iter_mut() {
                            if s.target != current_target {
                                current_target = s.target;
                                t = fleet.timestamp(
                                    start_ms,
                                    interval_ms,
                                    step,
                                    s.target,
                                    &mut rng,
                                );
                                noise[0] = traffic_factor(t, &mut rng);
                            }
                            let v = Fleet::advance(s, &mut rng, &mut noise);
                            Fleet::encode_sample(&mut body, s, t, v);
                            in_body += 1;
                            if in_body == args.samples_per_request {
                                send(&mut body, in_body)?;
                                in_body = 0;
                            }
                        }
                        progress[sender].store(step + 1, Ordering::Release);
                    }
                    if in_body > 0 {
                        send(&mut body, in_body)?;
                    }
                    Ok(())
                };
                if let Err(e) = run()
                    && let Ok(mut f) = failure.lock()
                {
                    f.get_or_insert(e);
                }
                // Done (or failed): no longer holds the others back.
                progress[sender].store(u64::MAX / 2, Ordering::Release);
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    Ok(LoadStats {
        samples: samples.into_inner(),
        requests: requests.into_inner(),
        retries: retries.into_inner(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

struct BenchQuery {
    name: &'static str,
    expr: &'static str,
    /// Range over the last hour at one-minute steps; instant at the end otherwise.
    range: bool,
}

const QUERIES: &[BenchQuery] = &[
    BenchQuery {
        name: "total request rate",
        expr: "sum(rate(http_requests_total[5m]))",
        range: false,
    },
    BenchQuery {
        name: "rate by job (1h range)",
        expr: "sum by (job) (rate(http_requests_total[5m]))",
        range: true,
    },
    BenchQuery {
        name: "p99 latency by job (1h range)",
        expr: "histogram_quantile(0.99, sum by (job, le) (rate(http_request_duration_seconds_bucket[5m])))",
        range: true,
    },
    BenchQuery {
        name: "top 10 instances",
        expr: "topk(10, sum by (instance) (rate(http_requests_total[5m])))",
        range: false,
    },
    BenchQuery {
        name: "one job's memory, 1h average",
        expr: "avg_over_time(process_resident_memory_bytes{job=\"svc-003\"}[1h])",
        range: false,
    },
    BenchQuery {
        name: "max goroutines by job (1h range)",
        expr: "max by (job) (go_goroutines)",
        range: true,
    },
    BenchQuery {
        name: "instances per job",
        expr: "count by (job) (up)",
        range: false,
    },
    BenchQuery {
        name: "raw series of one job (1h range)",
        expr: "http_requests_total{job=\"svc-007\", code=\"500\"}",
        range: true,
    },
    BenchQuery {
        name: "error ratio (1h range)",
        expr: "sum(rate(http_requests_total{code=~\"5..\"}[5m])) / sum(rate(http_requests_total[5m]))",
        range: true,
    },
    BenchQuery {
        name: "one instance's CPU rate",
        expr: "rate(process_cpu_seconds_total{instance=\"10.0.0.1:8080\"}[1m])",
        range: false,
    },
];

/// p50 latency (ms) of each query on one system, and a digest of each answer.
fn time_queries(
    args: &Args,
    system: &dyn System,
    end_ms: i64,
) -> anyhow::Result<Vec<(f64, String)>> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let end_s = end_ms as f64 / 1000.0;
    let mut out = Vec::new();
    for q in QUERIES {
        let (path, params): (&str, Vec<(&str, String)>) = if q.range {
            (
                "/api/v1/query_range",
                vec![
                    ("query", q.expr.to_string()),
                    ("start", (end_s - 3600.0).to_string()),
                    ("end", end_s.to_string()),
                    ("step", "60".to_string()),
                ],
            )
        } else {
            (
                "/api/v1/query",
                vec![("query", q.expr.to_string()), ("time", end_s.to_string())],
            )
        };
        let url = format!("{}{path}", system.base_url());
        let mut times = Vec::new();
        let mut digest = String::new();
        for _ in 0..args.query_runs.max(1) {
            let started = Instant::now();
            let r = client.post(&url).form(&params).send()?;
            let status = r.status();
            let text = r.text()?;
            times.push(started.elapsed().as_secs_f64() * 1e3);
            if !status.is_success() {
                bail!("{} {}: {status}: {text}", system.name(), q.expr);
            }
            let v: Value = serde_json::from_str(&text)?;
            digest = format!(
                "{} series",
                v["data"]["result"].as_array().map_or(0, |a| a.len())
            );
        }
        out.push((percentile(&times, 0.5), digest));
    }
    Ok(out)
}

/// Everything measured on one system.
struct Figures {
    load: LoadStats,
    cpu_seconds: f64,
    rss_bytes: u64,
    block_bytes: u64,
    block_samples: u64,
    queries: Vec<(f64, String)>,
}

fn measure(
    args: &Args,
    system: &dyn System,
    fleet: &Fleet,
    start_ms: i64,
    steps: u64,
    end_ms: i64,
) -> anyhow::Result<Figures> {
    let ticks = clock_ticks()?;
    let cpu_before = cpu_seconds(system.pid(), ticks)?;
    eprintln!(
        "{}: sending {} steps of {} series…",
        system.name(),
        steps,
        fleet.series.len()
    );
    let load = load(
        args,
        fleet,
        start_ms,
        steps,
        &format!("{}/api/v1/write", system.base_url()),
    )?;
    let cpu_seconds = cpu_seconds(system.pid(), ticks)? - cpu_before;
    let rss_bytes = memory_bytes(system.pid(), "VmRSS").unwrap_or(0);
    eprintln!(
        "{}: {} samples in {:.1} s ({:.0}/s), {:.1} CPU-s, RSS {} MiB; waiting for blocks…",
        system.name(),
        load.samples,
        load.seconds,
        load.samples as f64 / load.seconds,
        cpu_seconds,
        rss_bytes >> 20
    );
    let deadline = Instant::now() + Duration::from_secs(600);
    let (block_bytes, block_samples) = loop {
        if let Some(b) = system.blocks()? {
            // Give a compaction in flight a moment to finish its directory.
            thread::sleep(Duration::from_secs(5));
            break system.blocks()?.unwrap_or(b);
        }
        if Instant::now() > deadline {
            bail!(
                "{}: no block on disk 10 minutes after the load",
                system.name()
            );
        }
        thread::sleep(Duration::from_secs(1));
    };
    let queries = time_queries(args, system, end_ms)?;
    Ok(Figures {
        load,
        cpu_seconds,
        rss_bytes,
        block_bytes,
        block_samples,
        queries,
    })
}

fn figures_json(f: &Figures, series: usize) -> Value {
    json!({
        "samples": f.load.samples,
        "requests": f.load.requests,
        "retries": f.load.retries,
        "load_seconds": f.load.seconds,
        "samples_per_second": f.load.samples as f64 / f.load.seconds,
        "cpu_seconds": f.cpu_seconds,
        "samples_per_cpu_second": f.load.samples as f64 / f.cpu_seconds,
        "cpu_seconds_per_million_samples": f.cpu_seconds / (f.load.samples as f64 / 1e6),
        "rss_bytes": f.rss_bytes,
        "rss_bytes_per_series": f.rss_bytes as f64 / series as f64,
        "block_bytes": f.block_bytes,
        "block_samples": f.block_samples,
        "bytes_per_sample": f.block_bytes as f64 / f.block_samples as f64,
        "query_p50_ms": f.queries.iter().map(|q| q.0).collect::<Vec<_>>(),
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    fs::create_dir_all(&args.work)?;
    let fleet = Fleet::new(args.services, 42);
    let interval_ms = args.interval as i64 * 1000;
    let steps = (args.hours * 3600.0 / args.interval as f64) as u64;
    // The span ends a little before now, so every sample is in the past for both systems.
    let end_ms = (now_ms() - 60_000) / interval_ms * interval_ms;
    let start_ms = end_ms - steps as i64 * interval_ms;
    let query_end = end_ms;
    println!(
        "fleet: {} targets, {} series, {} steps of {} s ({:.1} h), {} samples",
        fleet.targets,
        fleet.series.len(),
        steps,
        args.interval,
        args.hours,
        fleet.series.len() as u64 * steps
    );

    let ours = {
        let dir = args.work.join("sightline");
        let _ = fs::remove_dir_all(&dir);
        let mut system = start_sightline(&args, &dir)?;
        let figures = measure(&args, &system, &fleet, start_ms, steps, query_end)?;
        system.process.stop()?;
        figures
    };
    let theirs = if args.skip_prometheus {
        None
    } else {
        let dir = args.work.join("prometheus");
        let _ = fs::remove_dir_all(&dir);
        let system = start_prometheus(&args, &dir)?;
        Some(measure(&args, &system, &fleet, start_ms, steps, query_end)?)
    };

    let series = fleet.series.len();
    let row = |name: &str, ours: f64, theirs: Option<f64>, better_high: bool| match theirs {
        Some(t) => {
            let ratio = if better_high { ours / t } else { t / ours };
            println!("{name:<40} {ours:>14.2} {t:>14.2} {ratio:>8.2}×");
        }
        None => println!("{name:<40} {ours:>14.2}"),
    };
    println!(
        "\n{:<40} {:>14} {:>14} {:>9}",
        "figure", "sightline", "prometheus", "ours/peer"
    );
    let t = theirs.as_ref();
    row(
        "samples/s (wall)",
        ours.load.samples as f64 / ours.load.seconds,
        t.map(|f| f.load.samples as f64 / f.load.seconds),
        true,
    );
    row(
        "samples per CPU-second",
        ours.load.samples as f64 / ours.cpu_seconds,
        t.map(|f| f.load.samples as f64 / f.cpu_seconds),
        true,
    );
    row(
        "CPU-s per million samples",
        ours.cpu_seconds / (ours.load.samples as f64 / 1e6),
        t.map(|f| f.cpu_seconds / (f.load.samples as f64 / 1e6)),
        false,
    );
    row(
        "RSS bytes per active series",
        ours.rss_bytes as f64 / series as f64,
        t.map(|f| f.rss_bytes as f64 / series as f64),
        false,
    );
    row(
        "bytes per sample in blocks",
        ours.block_bytes as f64 / ours.block_samples as f64,
        t.map(|f| f.block_bytes as f64 / f.block_samples as f64),
        false,
    );
    println!("\nquery p50 ms ({} runs)", args.query_runs);
    for (i, q) in QUERIES.iter().enumerate() {
        let o = &ours.queries[i];
        match t {
            Some(f) => {
                let p = &f.queries[i];
                println!(
                    "{:<40} {:>10.2} {:>10.2}  latency ratio {:.2} ({} / {})",
                    q.name,
                    o.0,
                    p.0,
                    o.0 / p.0,
                    o.1,
                    p.1
                );
            }
            None => println!("{:<40} {:>10.2}  ({})", q.name, o.0, o.1),
        }
    }
    let summary = json!({
        "series": series,
        "steps": steps,
        "sightline": figures_json(&ours, series),
        "prometheus": t.map(|f| figures_json(f, series)),
        "queries": QUERIES.iter().map(|q| q.expr).collect::<Vec<_>>(),
    });
    println!("{summary}");
    Ok(())
}
