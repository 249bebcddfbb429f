//! End-to-end log benchmark: ingest throughput, server CPU per GB, freshness, index size and
//! LogQL query latency, with ripgrep over the raw file as the brute-force peer.
//!
//! ```text
//! cargo build --release -p sightline-server -p sightline-benches
//! target/release/logs_load --bytes 2GB --work /tmp/sightline-logs-bench
//! ```
//!
//! 1. Generates `WORK/raw.log` (skipped when a file from the same settings is there): realistic
//!    application logs from [`sightline_benches::loggen`].
//! 2. Starts the release `sightline serve` (next to this binary, or `--server-bin`) on loopback
//!    port 0 with a fresh data directory, and sends the same records through OTLP/HTTP
//!    (protobuf, one `ResourceLogs` per service/pod/environment in each request) from
//!    `--senders` threads; 429/503 answers are retried after a pause and counted.
//! 3. Meanwhile a probe thread sends one record a second and polls the Loki API until it is
//!    found: freshness is the time from the success answer to the first query that sees it.
//! 4. When every batch is acknowledged and a final marker is searchable, it reads the server's
//!    CPU time from the kernel's accounting of that process (`/proc/PID/stat`: user + system),
//!    which the load generator sharing the machine cannot inflate, and checks that a count
//!    query finds exactly the number of records sent.
//! 5. Times five LogQL queries over the whole range (`--query-runs` each; p50 and p99), and
//!    for each the equivalent `rg -c` over the raw file (median of `--rg-runs`), with the
//!    ratio. `rg -c` must read the whole file, as any brute-force answer must, and it is the
//!    fastest way ripgrep has to do so (counting, no output), so the ratio flatters the peer.
//! 6. Stops the server with SIGTERM (it commits and exits) and measures the index on disk.
//!
//! The last line of output is a JSON object with every figure.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::{Value, json};
use sightline_benches::loggen::{
    GenConfig, LogGenerator, PODS_PER_SERVICE, RARE_ORDER_ID, Record, SERVICES, environment,
    pod_name,
};
use sightline_benches::process::{ServerProcess, dir_size, percentile};

#[derive(Parser, Debug)]
#[command(about = "End-to-end log ingest and query benchmark against a real sightline server")]
struct Args {
    /// Raw log bytes to generate and ingest (suffixes kB, MB, GB; powers of 1000).
    #[arg(long, default_value = "2GB")]
    bytes: String,
    /// Simulated time the logs cover, in hours.
    #[arg(long, default_value_t = 4)]
    span_hours: u64,
    /// Working directory: raw file, server data directory and server log.
    #[arg(long, default_value = "/tmp/sightline-logs-bench")]
    work: PathBuf,
    /// The sightline binary (default: next to this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// A configuration file for the server (`sightline serve --config`), for experiments;
    /// the defaults otherwise.
    #[arg(long)]
    server_config: Option<PathBuf>,
    /// Concurrent OTLP/HTTP senders.
    #[arg(long, default_value_t = 2)]
    senders: usize,
    /// Records per OTLP request.
    #[arg(long, default_value_t = 2000)]
    batch: usize,
    /// Runs of each query (p50/p99 over these).
    #[arg(long, default_value_t = 20)]
    query_runs: usize,
    /// Runs of each ripgrep command (median).
    #[arg(long, default_value_t = 3)]
    rg_runs: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Skip generation and ingest: query the index a previous run left in WORK/data (after
    /// a query-side change; the ingest figures are then absent).
    #[arg(long)]
    queries_only: bool,
}

fn parse_bytes(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().with_context(|| format!("invalid size {s:?}"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        other => bail!("unknown size unit {other:?} in {s:?}"),
    };
    Ok((n * mult) as u64)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let total_bytes = parse_bytes(&args.bytes)?;
    let server_bin = match &args.server_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("binary has no directory")?
            .join("sightline"),
    };
    if !server_bin.exists() {
        bail!(
            "server binary {} not found: build it with `cargo build --release -p sightline-server` or pass --server-bin",
            server_bin.display()
        );
    }
    fs::create_dir_all(&args.work)?;
    let raw_path = args.work.join("raw.log");
    let gen_config = prepare_raw_file(&args, &raw_path, total_bytes)?;
    let raw_bytes = fs::metadata(&raw_path)?.len();
    let end_ns = gen_config.start_ns + gen_config.span_ns;

    let data_dir = args.work.join("data");
    if args.queries_only {
        if !data_dir.exists() {
            bail!(
                "--queries-only needs the index of an earlier run in {}",
                data_dir.display()
            );
        }
    } else if data_dir.exists() {
        fs::remove_dir_all(&data_dir)?;
    }
    let mut server = ServerProcess::start(
        &server_bin,
        &data_dir,
        args.server_config.as_deref(),
        &args.work.join("server.log"),
    )?;
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let api = Api {
        client: client.clone(),
        http: server.http,
        otlp_http: server.otlp_http,
    };

    let mb = raw_bytes as f64 / 1e6;
    let (records, ingest_figures) = if args.queries_only {
        let meta: Value =
            serde_json::from_str(&fs::read_to_string(args.work.join("raw.meta.json"))?)?;
        let lines = meta["lines"]
            .as_u64()
            .context("raw.meta.json has no line count")?;
        println!("queries only: reusing the index in {}", data_dir.display());
        (lines, json!({}))
    } else {
        ingest_and_measure(&args, &gen_config, &api, &server, raw_bytes)?
    };

    // ---- exact count check ----
    let hours = args.span_hours + 1;
    let count_query =
        format!(r#"sum(count_over_time({{deployment_environment=~"prod|staging"}}[{hours}h]))"#);
    let counted = api.instant_count(&count_query, end_ns)?;
    println!("count check: the index holds {counted} of the {records} records sent");
    if counted != records {
        bail!("count mismatch: sent {records} records, the index holds {counted}");
    }

    // ---- idle freshness ----
    let idle_done = Arc::new(AtomicBool::new(false));
    let idle = {
        let api = api.clone();
        let done = idle_done.clone();
        thread::spawn(move || freshness_probes(&api, &done, "idle"))
    };
    thread::sleep(Duration::from_secs(10));
    idle_done.store(true, Ordering::SeqCst);
    let idle_freshness = idle.join().expect("probe thread")?;
    println!(
        "freshness (ack → searchable) when idle: p50 {:.0} ms max {:.0} ms ({} probes)",
        percentile(&idle_freshness, 0.5) * 1e3,
        percentile(&idle_freshness, 1.0) * 1e3,
        idle_freshness.len()
    );

    // ---- queries vs ripgrep ----
    let rg = which_rg();
    if rg.is_none() {
        println!("rg (ripgrep) not found: the peer column is skipped (apt-get install ripgrep)");
    }
    let mut query_results = Vec::new();
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>12} {:>10}  query",
        "query", "p50 ms", "p99 ms", "result", "rg p50 ms", "rg/ours"
    );
    for q in queries() {
        let mut times = Vec::with_capacity(args.query_runs);
        let mut result_size = 0;
        for _ in 0..args.query_runs {
            let t = Instant::now();
            result_size =
                api.query_range(&q.logql, gen_config.start_ns, end_ns + 1, q.step_secs, 100)?;
            times.push(t.elapsed().as_secs_f64());
        }
        let rg_p50 = match &rg {
            Some(rg) => Some(time_rg(rg, &q.rg, &raw_path, args.rg_runs)?),
            None => None,
        };
        let p50 = percentile(&times, 0.5);
        let p99 = percentile(&times, 0.99);
        let ratio = rg_p50.map(|r| r.0 / p50);
        println!(
            "{:<22} {:>10.2} {:>10.2} {:>10} {:>12} {:>10}  {}",
            q.name,
            p50 * 1e3,
            p99 * 1e3,
            result_size,
            rg_p50.map_or("-".into(), |r| format!("{:.0}", r.0 * 1e3)),
            ratio.map_or("-".into(), |r| format!("{r:.0}×")),
            q.logql
        );
        query_results.push(json!({
            "name": q.name, "logql": q.logql, "p50_ms": p50 * 1e3, "p99_ms": p99 * 1e3,
            "result_size": result_size, "rg_args": q.rg, "rg_matches": rg_p50.map(|r| r.1),
            "rg_p50_ms": rg_p50.map(|r| r.0 * 1e3), "rg_over_ours": ratio,
        }));
    }

    // ---- the server's own account of commits, then index size after a clean stop ----
    let metrics = api.metrics_text()?;
    let mean = |name: &str, labels: &str| -> (f64, f64) {
        let value = |suffix: &str| {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}_{suffix}{labels} ")))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        let (sum, count) = (value("sum"), value("count"));
        (sum / count, count)
    };
    let (commit_mean, commits) = mean("sightline_ingest_sink_commit_seconds", r#"{sink="logs"}"#);
    let (fsync_mean, fsyncs) = mean("sightline_wal_fsync_seconds", "");
    println!(
        "server: {commits} index commits, mean {:.0} ms; {fsyncs} WAL fsyncs, mean {:.1} ms",
        commit_mean * 1e3,
        fsync_mean * 1e3
    );
    server.stop()?;
    let index_bytes = dir_size(&data_dir.join("logs"))?;
    let wal_bytes = dir_size(&data_dir.join("wal")).unwrap_or(0);
    println!(
        "index {:.1} MB for {:.1} MB raw: {:.3} × raw (WAL left after stop: {:.1} MB)",
        index_bytes as f64 / 1e6,
        mb,
        index_bytes as f64 / raw_bytes as f64,
        wal_bytes as f64 / 1e6
    );

    let mut summary = json!({
        "raw_bytes": raw_bytes,
        "records": records,
        "freshness_idle_p50_ms": percentile(&idle_freshness, 0.5) * 1e3,
        "freshness_idle_max_ms": percentile(&idle_freshness, 1.0) * 1e3,
        "index_commit_mean_ms": commit_mean * 1e3,
        "wal_fsync_mean_ms": fsync_mean * 1e3,
        "index_bytes": index_bytes,
        "index_over_raw": index_bytes as f64 / raw_bytes as f64,
        "queries": query_results,
    });
    if let (Some(out), Value::Object(figures)) = (summary.as_object_mut(), ingest_figures) {
        out.extend(figures);
    }
    println!("{summary}");
    Ok(())
}

/// Sends the records with freshness probes alongside; returns the count acknowledged and the
/// ingest figures.
fn ingest_and_measure(
    args: &Args,
    gen_config: &GenConfig,
    api: &Api,
    server: &ServerProcess,
    raw_bytes: u64,
) -> anyhow::Result<(u64, Value)> {
    println!(
        "ingesting {:.2} GB through OTLP/HTTP ({} senders, {} records per request)",
        raw_bytes as f64 / 1e9,
        args.senders,
        args.batch
    );
    let cpu_before = server.cpu_seconds()?;
    let started = Instant::now();
    let ingest_done = Arc::new(AtomicBool::new(false));
    let probe_api = api.clone();
    let probe_done = ingest_done.clone();
    let probes = thread::spawn(move || freshness_probes(&probe_api, &probe_done, "load"));
    let stats = ingest(args, gen_config.clone(), api)?;
    let acked_after = started.elapsed();
    ingest_done.store(true, Ordering::SeqCst);
    let load_freshness = probes.join().expect("probe thread")?;
    // Every acknowledged batch is visible once a marker sent after them is.
    let marker = format!("marker{}", now_ns());
    api.send_probe(&marker)?;
    api.wait_visible(&marker, Duration::from_secs(300))?;
    let searchable_after = started.elapsed();
    let cpu_seconds = server.cpu_seconds()? - cpu_before;
    let rss_peak = server.peak_rss_bytes().unwrap_or(0);

    let mb = raw_bytes as f64 / 1e6;
    let ingest_secs = acked_after.as_secs_f64();
    println!(
        "acked {} records ({:.1} MB) in {:.1} s: {:.1} MB/s, {:.0} lines/s; all searchable after {:.1} s; {} retries after 429/503",
        stats.records,
        mb,
        ingest_secs,
        mb / ingest_secs,
        stats.records as f64 / ingest_secs,
        searchable_after.as_secs_f64(),
        stats.retries
    );
    println!(
        "server CPU {:.1} s: {:.1} CPU-s per GB, {:.1} MB per CPU-second; peak RSS {:.0} MiB",
        cpu_seconds,
        cpu_seconds / (raw_bytes as f64 / 1e9),
        mb / cpu_seconds,
        rss_peak as f64 / (1 << 20) as f64
    );
    println!(
        "freshness (ack → searchable) under load: p50 {:.0} ms p99 {:.0} ms max {:.0} ms ({} probes)",
        percentile(&load_freshness, 0.5) * 1e3,
        percentile(&load_freshness, 0.99) * 1e3,
        percentile(&load_freshness, 1.0) * 1e3,
        load_freshness.len()
    );
    let load_figures = json!({
        "requests": stats.requests,
        "retries": stats.retries,
        "ingest_seconds": ingest_secs,
        "mb_per_s": mb / ingest_secs,
        "lines_per_s": stats.records as f64 / ingest_secs,
        "all_searchable_seconds": searchable_after.as_secs_f64(),
        "server_cpu_seconds": cpu_seconds,
        "server_cpu_seconds_per_gb": cpu_seconds / (raw_bytes as f64 / 1e9),
        "mb_per_server_cpu_second": mb / cpu_seconds,
        "server_peak_rss_bytes": rss_peak,
        "freshness_load_p50_ms": percentile(&load_freshness, 0.5) * 1e3,
        "freshness_load_p99_ms": percentile(&load_freshness, 0.99) * 1e3,
        "freshness_load_max_ms": percentile(&load_freshness, 1.0) * 1e3,
    });
    Ok((stats.records, load_figures))
}

/// Writes the raw file unless one from the same settings is there; returns the settings.
fn prepare_raw_file(args: &Args, raw_path: &Path, total_bytes: u64) -> anyhow::Result<GenConfig> {
    let meta_path = args.work.join("raw.meta.json");
    if let (Ok(meta), Ok(file)) = (fs::read_to_string(&meta_path), fs::metadata(raw_path)) {
        let meta: Value = serde_json::from_str(&meta)?;
        if meta["seed"] == args.seed
            && meta["total_bytes"] == total_bytes
            && meta["span_ns"] == args.span_hours * 3_600_000_000_000
            && meta["file_bytes"] == file.len()
        {
            println!("reusing {} ({} bytes)", raw_path.display(), file.len());
            return Ok(GenConfig {
                seed: args.seed,
                total_bytes,
                start_ns: meta["start_ns"].as_u64().context("start_ns")?,
                span_ns: args.span_hours * 3_600_000_000_000,
            });
        }
    }
    // The span ends ten minutes before now, so every record is in the past.
    let span_ns = args.span_hours * 3_600_000_000_000;
    let config = GenConfig {
        seed: args.seed,
        total_bytes,
        start_ns: now_ns() - span_ns - 600_000_000_000,
        span_ns,
    };
    let started = Instant::now();
    let mut out = BufWriter::with_capacity(1 << 20, File::create(raw_path)?);
    let mut lines = 0u64;
    for record in LogGenerator::new(config.clone()) {
        out.write_all(record.line.as_bytes())?;
        out.write_all(b"\n")?;
        lines += 1;
    }
    out.flush()?;
    drop(out);
    let file_bytes = fs::metadata(raw_path)?.len();
    println!(
        "generated {} lines, {:.2} GB in {:.1} s ({} services, {} pods each, JSON and plain)",
        lines,
        file_bytes as f64 / 1e9,
        started.elapsed().as_secs_f64(),
        SERVICES.len(),
        PODS_PER_SERVICE
    );
    fs::write(
        &meta_path,
        json!({"seed": config.seed, "total_bytes": total_bytes, "start_ns": config.start_ns,
               "span_ns": span_ns, "file_bytes": file_bytes, "lines": lines})
        .to_string(),
    )?;
    Ok(config)
}

#[derive(Debug, Default)]
struct IngestStats {
    records: u64,
    requests: u64,
    retries: u64,
}

/// Generates the records again (bit-identical to the raw file) and sends them.
fn ingest(args: &Args, config: GenConfig, api: &Api) -> anyhow::Result<IngestStats> {
    let (tx, rx) = mpsc::sync_channel::<(Vec<u8>, u64)>(args.senders * 2);
    let rx = Arc::new(Mutex::new(rx));
    let batch = args.batch;
    let producer = thread::spawn(move || {
        let mut generator = LogGenerator::new(config);
        loop {
            let records: Vec<Record> = generator.by_ref().take(batch).collect();
            if records.is_empty() {
                break;
            }
            let n = records.len() as u64;
            if tx.send((encode_request(records), n)).is_err() {
                break;
            }
        }
    });
    let records = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let senders: Vec<_> = (0..args.senders)
        .map(|_| {
            let rx = rx.clone();
            let api = api.clone();
            let (records, requests, retries) = (records.clone(), requests.clone(), retries.clone());
            thread::spawn(move || -> anyhow::Result<()> {
                loop {
                    let next = rx.lock().expect("receiver lock").recv();
                    let Ok((body, n)) = next else { return Ok(()) };
                    retries.fetch_add(api.export(body)?, Ordering::Relaxed);
                    records.fetch_add(n, Ordering::Relaxed);
                    requests.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for s in senders {
        s.join().expect("sender thread")?;
    }
    producer.join().expect("producer thread");
    Ok(IngestStats {
        records: records.load(Ordering::Relaxed),
        requests: requests.load(Ordering::Relaxed),
        retries: retries.load(Ordering::Relaxed),
    })
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// One OTLP request, records grouped by resource (service, pod, environment) as an SDK or a
/// collector batches them.
fn encode_request(records: Vec<Record>) -> Vec<u8> {
    let mut groups: Vec<((usize, usize, bool), Vec<LogRecord>)> = Vec::new();
    for r in records {
        let key = (r.service, r.pod, r.prod);
        let log = LogRecord {
            time_unix_nano: r.timestamp_ns,
            observed_time_unix_nano: r.timestamp_ns,
            severity_number: r.severity_number,
            severity_text: r.severity_text.into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(r.line)),
            }),
            trace_id: r.trace_id.map(|t| t.to_vec()).unwrap_or_default(),
            ..Default::default()
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, logs)) => logs.push(log),
            None => groups.push((key, vec![log])),
        }
    }
    let resource_logs = groups
        .into_iter()
        .map(|((service, pod, prod), log_records)| ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", SERVICES[service]),
                    kv("k8s.pod.name", &pod_name(service, pod)),
                    kv("deployment.environment", environment(prod)),
                    kv("k8s.namespace.name", "finance"),
                    kv("telemetry.sdk.language", "java"),
                ],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "com.finance".into(),
                    ..Default::default()
                }),
                log_records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        })
        .collect();
    ExportLogsServiceRequest { resource_logs }.encode_to_vec()
}

/// Sends probes once a second until `done`, returning each probe's ack → searchable time.
fn freshness_probes(api: &Api, done: &AtomicBool, tag: &str) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::new();
    let mut n = 0;
    while !done.load(Ordering::SeqCst) {
        let token = format!("probe{tag}{n}x{}", now_ns());
        n += 1;
        let acked = api.send_probe(&token)?;
        let seen = api.wait_visible(&token, Duration::from_secs(60))?;
        out.push(seen.duration_since(acked).as_secs_f64());
        thread::sleep(Duration::from_millis(1000));
    }
    Ok(out)
}

#[derive(Clone)]
struct Api {
    client: reqwest::blocking::Client,
    http: SocketAddr,
    otlp_http: SocketAddr,
}

impl Api {
    /// Posts one OTLP request until it is accepted; returns the number of retries.
    fn export(&self, body: Vec<u8>) -> anyhow::Result<u64> {
        let url = format!("http://{}/v1/logs", self.otlp_http);
        let mut retries = 0;
        loop {
            let resp = self
                .client
                .post(&url)
                .header("Content-Type", "application/x-protobuf")
                .body(body.clone())
                .send()?;
            let status = resp.status();
            if status.is_success() {
                return Ok(retries);
            }
            if status.as_u16() == 429 || status.as_u16() == 503 {
                retries += 1;
                thread::sleep(Duration::from_millis(20));
                continue;
            }
            bail!(
                "export failed: {status}: {}",
                resp.text().unwrap_or_default()
            );
        }
    }

    /// Sends one probe record now, its token as the `service.instance.id` resource
    /// attribute (an index label); returns when the server answered success.
    fn send_probe(&self, token: &str) -> anyhow::Result<Instant> {
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", "freshness-probe"),
                        kv("service.instance.id", token),
                    ],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord {
                        time_unix_nano: now_ns(),
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(format!(
                                "freshness probe {token}"
                            ))),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                schema_url: String::new(),
            }],
        };
        self.export(req.encode_to_vec())?;
        Ok(Instant::now())
    }

    /// Polls every 10 ms until the probe `token` is returned by a query, as a live tail of
    /// its stream would see it; returns when it was first seen.
    fn wait_visible(&self, token: &str, patience: Duration) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + patience;
        let query = format!(r#"{{service_name="freshness-probe", service_instance_id="{token}"}}"#);
        let now = now_ns();
        loop {
            let found =
                self.query_range(&query, now - 600_000_000_000, now + 600_000_000_000, 0, 1)?;
            if found > 0 {
                return Ok(Instant::now());
            }
            if Instant::now() > deadline {
                bail!("probe {token} not searchable after {patience:?}");
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Runs a query_range; returns the number of log lines (streams result) or series
    /// (matrix result).
    fn query_range(
        &self,
        logql: &str,
        start_ns: u64,
        end_ns: u64,
        step_secs: u64,
        limit: usize,
    ) -> anyhow::Result<usize> {
        let mut params = vec![
            ("query", logql.to_string()),
            ("start", start_ns.to_string()),
            ("end", end_ns.to_string()),
            ("limit", limit.to_string()),
            ("direction", "backward".to_string()),
        ];
        if step_secs > 0 {
            params.push(("step", step_secs.to_string()));
        }
        let resp = self
            .client
            .get(format!("http://{}/loki/api/v1/query_range", self.http))
            .query(&params)
            .send()?;
        let status = resp.status();
        let body: Value = resp.json()?;
        if !status.is_success() {
            bail!("query {logql:?} failed: {status}: {body}");
        }
        let result = body["data"]["result"]
            .as_array()
            .context("no data.result array")?;
        Ok(match body["data"]["resultType"].as_str() {
            Some("streams") => result
                .iter()
                .map(|s| s["values"].as_array().map_or(0, Vec::len))
                .sum(),
            _ => result.len(),
        })
    }

    fn metrics_text(&self) -> anyhow::Result<String> {
        Ok(self
            .client
            .get(format!("http://{}/metrics", self.http))
            .send()?
            .text()?)
    }

    /// An instant query whose result is one sample; returns its value.
    fn instant_count(&self, logql: &str, time_ns: u64) -> anyhow::Result<u64> {
        let resp = self
            .client
            .get(format!("http://{}/loki/api/v1/query", self.http))
            .query(&[("query", logql.to_string()), ("time", time_ns.to_string())])
            .send()?;
        let body: Value = resp.json()?;
        let value = body["data"]["result"][0]["value"][1]
            .as_str()
            .with_context(|| format!("no sample in {body}"))?;
        Ok(value.parse::<f64>()? as u64)
    }
}

struct BenchQuery {
    name: &'static str,
    logql: String,
    step_secs: u64,
    rg: Vec<&'static str>,
}

fn queries() -> Vec<BenchQuery> {
    vec![
        BenchQuery {
            name: "rare term",
            logql: format!(r#"{{service_name=~".+"}} |= "{RARE_ORDER_ID}""#),
            step_secs: 0,
            rg: vec!["-F", RARE_ORDER_ID],
        },
        BenchQuery {
            name: "common term",
            logql: r#"{service_name=~".+"} |= "GET""#.into(),
            step_secs: 0,
            rg: vec!["-F", "GET"],
        },
        BenchQuery {
            name: "selector + phrase",
            logql: r#"{service_name="treasury-payment"} |= "payment declined""#.into(),
            step_secs: 0,
            rg: vec!["treasury-payment.*payment declined"],
        },
        BenchQuery {
            name: "regex line filter",
            logql: r#"{deployment_environment="prod"} |~ "timeout after [0-9]{4,}ms""#.into(),
            step_secs: 0,
            rg: vec!["timeout after [0-9]{4,}ms"],
        },
        BenchQuery {
            name: "count by service",
            logql: r#"sum by (service_name) (count_over_time({deployment_environment=~"prod|staging"}[5m]))"#.into(),
            step_secs: 300,
            // Counting every line is the least a brute-force answer must do (it would also
            // parse timestamps and group by service): this flatters the peer.
            rg: vec!["^"],
        },
    ]
}

fn which_rg() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("rg"))
            .find(|p| p.is_file())
    })
}

/// Median wall time of `rg -c ARGS FILE` and the count it printed.
fn time_rg(rg: &Path, args: &[&str], file: &Path, runs: usize) -> anyhow::Result<(f64, u64)> {
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let out = Command::new(rg)
            .arg("-c")
            .args(args)
            .arg(file)
            .stderr(Stdio::inherit())
            .output()?;
        times.push(t.elapsed().as_secs_f64());
        count = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
    }
    Ok((percentile(&times, 0.5), count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_percentiles() {
        assert_eq!(parse_bytes("2GB").unwrap(), 2_000_000_000);
        assert_eq!(parse_bytes("1.5 MB").unwrap(), 1_500_000);
        assert!(parse_bytes("3 parsecs").is_err());
    }
}
