//! End-to-end trace benchmark (issue 11): OTLP/gRPC span ingest into the release server,
//! freshness, trace-by-id and TraceQL search latency over what was stored, bytes per span on
//! disk, and the CPU cost of span metrics + service graph.
//!
//!     cargo build --release -p sightline-server -p sightline-benches
//!     target/release/traces_load --spans 10000000 --work /tmp/traces-bench
//!
//! Load: traces of ten spans over five services (frontend → checkout → payments →
//! PostgreSQL, plus a cache and a queue), realistic attributes, about 5 % errors. Requests of
//! `--batch` spans are encoded once into a pool and re-sent with fresh trace ids (four id
//! bytes patched in place, no re-encoding), so the client's CPU stays small beside the
//! server's on the shared machine. `--clients` concurrent gRPC requests on one HTTP/2
//! connection, as an OpenTelemetry Collector exporter sends them.
//!
//! Figures: sustained spans/s (first send to last acknowledgement) and server CPU seconds
//! per million spans; freshness (a probe trace sent every 500 ms during the load, time from
//! acknowledgement until `/api/traces/{id}` has it); an exact check (the span-metric call
//! counters must add up to the spans sent); trace-by-id p50/p99 over random stored traces
//! (Grafana's protobuf request); TraceQL search p50/p99; bytes per span of the span
//! splits; and, unless `--skip-connector-cost`, a second shorter run with span metrics off
//! to give the connectors' share of the ingest CPU.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, TracesData};
use prost::Message;
use serde_json::Value;
use sightline_benches::process::{ServerProcess, dir_size, percentile};
use sightline_benches::rng::Rng;

#[derive(Parser, Debug)]
struct Args {
    /// Spans to send in the main run.
    #[arg(long, default_value_t = 10_000_000)]
    spans: u64,
    /// Spans per request.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Trace-by-id lookups measured.
    #[arg(long, default_value_t = 1_000)]
    lookups: usize,
    /// Runs of each TraceQL search.
    #[arg(long, default_value_t = 20)]
    search_runs: usize,
    /// Spans of the second run (span metrics off) that prices the connectors.
    #[arg(long, default_value_t = 2_000_000)]
    cost_spans: u64,
    #[arg(long)]
    skip_connector_cost: bool,
    /// Working directory (data directories, server logs).
    #[arg(long, default_value = "/tmp/sightline-traces-bench")]
    work: PathBuf,
    /// The `sightline` binary (default: beside this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
}

/// First four bytes of every generated trace id before patching; the patch writes the
/// request's round number there.
const MAGIC: [u8; 4] = [0xa5, 0x5a, 0xa5, 0x5a];
const SPANS_PER_TRACE: usize = 10;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = match &args.server_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("binary has no directory")?
            .join("sightline"),
    };
    if !bin.exists() {
        bail!(
            "{} not found: cargo build --release -p sightline-server",
            bin.display()
        );
    }
    fs::create_dir_all(&args.work)?;
    let pool = Arc::new(Pool::new(args.batch, 64, 42));
    println!(
        "load: {} spans in requests of {} ({} traces of {SPANS_PER_TRACE} spans each), {} in flight, {} request bodies of {:.0} KiB on average",
        args.spans,
        args.batch,
        args.batch / SPANS_PER_TRACE,
        args.clients,
        pool.bodies.len(),
        pool.bodies.iter().map(Vec::len).sum::<usize>() as f64 / pool.bodies.len() as f64 / 1024.0
    );

    // ---- main run ----
    let run = Run::start(&bin, &args.work, "main", true)?;
    let (ingest, freshness) = run.ingest(&pool, &args, args.spans)?;
    let cpu_per_mspan = ingest.cpu_seconds / (ingest.spans as f64 / 1e6);
    println!(
        "ingest (OTLP/gRPC): {} spans in {:.1} s = {:.0} spans/s sustained; server CPU {:.1} s ({:.2} CPU-s per million spans, {:.0} spans per CPU-second); peak RSS {:.0} MiB",
        ingest.spans,
        ingest.seconds,
        ingest.spans as f64 / ingest.seconds,
        ingest.cpu_seconds,
        cpu_per_mspan,
        ingest.spans as f64 / ingest.cpu_seconds,
        run.server.peak_rss_bytes().unwrap_or(0) as f64 / (1 << 20) as f64
    );
    println!(
        "  peer: the OpenTelemetry Collector is published at about 12,000 spans/s per CPU, storing nothing (not run here: no collector binary on this machine)"
    );
    println!(
        "freshness under load (ack → trace by id answers): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} probes)",
        percentile(&freshness, 0.5) * 1e3,
        percentile(&freshness, 0.99) * 1e3,
        percentile(&freshness, 1.0) * 1e3,
        freshness.len()
    );

    // ---- exact check through the span metrics ----
    let counted = run.wait_for_calls(ingest.spans + freshness.len() as u64)?;
    println!(
        "exact check: span-metric calls add up to {counted} of {} spans sent (load + probes)",
        ingest.spans + freshness.len() as u64
    );

    // ---- trace by id ----
    let mut rng = Rng::new(7);
    let rounds = ingest.rounds;
    let mut lookups = Vec::with_capacity(args.lookups);
    for _ in 0..args.lookups {
        let round = rng.below(rounds) as u32;
        let body = rng.below(pool.bodies.len() as u64) as usize;
        // Only bodies sent in that round (round r sends body r % len).
        let round = round - (round % pool.bodies.len() as u32) + body as u32;
        let round = if u64::from(round) >= rounds {
            round.saturating_sub(pool.bodies.len() as u32)
        } else {
            round
        };
        let t = &pool.trace_ids[round as usize % pool.bodies.len()];
        let id = patched(&t[rng.below(t.len() as u64) as usize], round);
        let start = Instant::now();
        let n = run.trace_span_count(&id)?;
        lookups.push(start.elapsed().as_secs_f64());
        if n != SPANS_PER_TRACE {
            bail!(
                "trace {} has {n} spans, expected {SPANS_PER_TRACE}",
                hex(&id)
            );
        }
    }
    println!(
        "trace by id (protobuf, over {} stored spans): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} lookups, every trace complete)",
        ingest.spans,
        percentile(&lookups, 0.5) * 1e3,
        percentile(&lookups, 0.99) * 1e3,
        percentile(&lookups, 1.0) * 1e3,
        lookups.len()
    );

    // ---- TraceQL search ----
    println!(
        "{:<44} {:>9} {:>9} {:>7}",
        "TraceQL search (limit 20, whole run)", "p50 ms", "p99 ms", "traces"
    );
    for q in [
        r#"{ span.http.route = "/api/pay" && status = error }"#,
        r#"{ resource.service.name = "payments" && duration > 250ms }"#,
        r#"{ span.db.system = "postgresql" }"#,
        r#"{ resource.service.name = "frontend" } >> { span.db.system = "postgresql" && status = error }"#,
        r#"{ name = "SELECT accounts" } | count() > 0"#,
    ] {
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..args.search_runs {
            let t = Instant::now();
            found = run.search(q, ingest.start_s, ingest.end_s)?;
            times.push(t.elapsed().as_secs_f64());
        }
        println!(
            "{:<44} {:>9.1} {:>9.1} {:>7}  {q}",
            shorten(q, 44),
            percentile(&times, 0.5) * 1e3,
            percentile(&times, 0.99) * 1e3,
            found
        );
    }

    // ---- bytes per span ----
    let mut run = run;
    run.server.stop()?;
    let traces_bytes = dir_size(&run.data.join("traces"))?;
    let wal_bytes = dir_size(&run.data.join("wal-traces")).unwrap_or(0);
    println!(
        "on disk after a clean stop: span splits {:.1} MiB = {:.1} bytes per span (trace-id filters included); traces WAL {:.1} MiB",
        traces_bytes as f64 / (1 << 20) as f64,
        traces_bytes as f64 / ingest.spans as f64,
        wal_bytes as f64 / (1 << 20) as f64,
    );

    // ---- connector cost ----
    if !args.skip_connector_cost {
        let mut per_mspan = Vec::new();
        for with_connectors in [false, true] {
            let label = if with_connectors {
                "cost-on"
            } else {
                "cost-off"
            };
            let r = Run::start(&bin, &args.work, label, with_connectors)?;
            let (s, _) = r.ingest(&pool, &args, args.cost_spans)?;
            per_mspan.push(s.cpu_seconds / (s.spans as f64 / 1e6));
        }
        let (off, on) = (per_mspan[0], per_mspan[1]);
        println!(
            "span metrics + service graph: {:.2} CPU-s per million spans with, {:.2} without ({} spans each): {:.1} % of ingest CPU",
            on,
            off,
            args.cost_spans,
            (on - off) / on * 100.0
        );
    }
    Ok(())
}

fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// A trace id as sent in round `round`.
fn patched(id: &[u8; 16], round: u32) -> [u8; 16] {
    let mut out = *id;
    out[..4].copy_from_slice(&(round + 1).to_be_bytes());
    out
}

/// Encoded requests, the offsets of their trace ids' first four bytes, and the ids.
struct Pool {
    bodies: Vec<Vec<u8>>,
    offsets: Vec<Vec<usize>>,
    trace_ids: Vec<Vec<[u8; 16]>>,
}

impl Pool {
    fn new(batch: usize, n: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let mut bodies = Vec::new();
        let mut offsets = Vec::new();
        let mut trace_ids = Vec::new();
        for _ in 0..n {
            let (request, ids) = generate(&mut rng, batch, now);
            let body = request.encode_to_vec();
            let pattern = [[0x0a, 0x10].as_slice(), MAGIC.as_slice()].concat();
            let found: Vec<usize> = body
                .windows(pattern.len())
                .enumerate()
                .filter(|(_, w)| *w == pattern.as_slice())
                .map(|(i, _)| i + 2)
                .collect();
            bodies.push(body);
            offsets.push(found);
            trace_ids.push(ids);
        }
        Self {
            bodies,
            offsets,
            trace_ids,
        }
    }

    /// Request body `round % len` with its trace ids made unique to `round`.
    fn body(&self, round: u32) -> Vec<u8> {
        let i = round as usize % self.bodies.len();
        let mut body = self.bodies[i].clone();
        let stamp = (round + 1).to_be_bytes();
        for &o in &self.offsets[i] {
            body[o..o + 4].copy_from_slice(&stamp);
        }
        body
    }
}

fn kv(k: &str, v: V) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(v: &str) -> V {
    V::StringValue(v.into())
}

/// `batch` spans of ten-span traces, grouped by service as an SDK exports them.
fn generate(rng: &mut Rng, batch: usize, now: u64) -> (ExportTraceServiceRequest, Vec<[u8; 16]>) {
    let services = ["frontend", "checkout", "payments", "inventory", "notifier"];
    let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); services.len()];
    let mut ids = Vec::new();
    let routes = ["/api/pay", "/api/cart", "/api/order", "/api/refund"];
    for _ in 0..batch / SPANS_PER_TRACE {
        let mut trace = [0u8; 16];
        trace[..4].copy_from_slice(&MAGIC);
        trace[4..12].copy_from_slice(&rng.next_u64().to_be_bytes());
        trace[12..].copy_from_slice(&(rng.next_u64() as u32).to_be_bytes());
        ids.push(trace);
        let failed = rng.chance(0.05);
        let start = now - rng.below(1_000_000_000);
        let route = *rng.pick(&routes);
        // (service index, name, kind, parent index in this trace, duration ms, attributes)
        let shape: [(usize, &str, i32, Option<usize>, u64); SPANS_PER_TRACE] = [
            (0, "GET /checkout", 2, None, 450),
            (0, "POST /api/pay", 3, Some(0), 400),
            (1, "POST /api/pay", 2, Some(1), 380),
            (1, "GET cart", 3, Some(2), 20),
            (3, "GET cart", 2, Some(3), 15),
            (3, "redis GET", 3, Some(4), 2),
            (1, "charge", 1, Some(2), 300),
            (2, "POST /charge", 2, Some(6), 280),
            (2, "SELECT accounts", 3, Some(7), 200),
            (4, "publish receipt", 4, Some(2), 5),
        ];
        let mut span_ids: Vec<Vec<u8>> = Vec::new();
        for (i, (svc, name, kind, parent, ms)) in shape.iter().enumerate() {
            let mut id = rng.next_u64().to_be_bytes();
            // Never all zero, whatever the generator gives.
            id[7] = i as u8 + 1;
            let id = id.to_vec();
            span_ids.push(id.clone());
            let jitter = rng.below(*ms * 1_000_000 / 2 + 1);
            let offset = (i as u64) * 1_000_000;
            let mut attributes = vec![kv("http.request.method", s("POST"))];
            match *name {
                "GET /checkout" | "POST /api/pay" | "POST /charge" => {
                    attributes.push(kv("http.route", s(route)));
                    attributes.push(kv(
                        "http.response.status_code",
                        V::IntValue(if failed { 500 } else { 200 }),
                    ));
                }
                "SELECT accounts" => {
                    attributes = vec![
                        kv("db.system", s("postgresql")),
                        kv("db.name", s("ledger")),
                        kv(
                            "db.statement",
                            s("SELECT balance FROM accounts WHERE id = $1"),
                        ),
                    ];
                }
                "redis GET" => {
                    attributes = vec![
                        kv("db.system", s("redis")),
                        kv("peer.service", s("cart-cache")),
                    ]
                }
                "publish receipt" => {
                    attributes = vec![
                        kv("messaging.system", s("kafka")),
                        kv("messaging.destination.name", s("receipts")),
                    ];
                }
                _ => {}
            }
            let error = failed
                && matches!(
                    *name,
                    "SELECT accounts"
                        | "POST /charge"
                        | "charge"
                        | "POST /api/pay"
                        | "GET /checkout"
                );
            by_service[*svc].push(Span {
                trace_id: trace.to_vec(),
                span_id: id,
                parent_span_id: parent.map(|p| span_ids[p].clone()).unwrap_or_default(),
                name: (*name).into(),
                kind: *kind,
                start_time_unix_nano: start + offset,
                end_time_unix_nano: start + offset + ms * 1_000_000 / 2 + jitter,
                attributes,
                status: error.then(|| Status {
                    code: 2,
                    message: "deadlock detected".into(),
                }),
                ..Default::default()
            });
        }
    }
    let resource_spans = services
        .iter()
        .zip(by_service)
        .map(|(svc, spans)| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s(svc)),
                    kv("service.namespace", s("finance")),
                    kv("k8s.pod.name", s(&format!("{svc}-7d9f-0"))),
                    kv("host.name", s("node-a")),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "bench".into(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        })
        .collect();
    (ExportTraceServiceRequest { resource_spans }, ids)
}

/// Sends pre-encoded request bodies over gRPC without re-encoding them.
#[derive(Clone, Copy, Default)]
struct RawCodec;

struct RawEncoder;
struct ResponseDecoder;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = ExportTraceServiceResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ResponseDecoder
    }
}

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for ResponseDecoder {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<ExportTraceServiceResponse>, tonic::Status> {
        ExportTraceServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

struct IngestStats {
    spans: u64,
    rounds: u64,
    seconds: f64,
    cpu_seconds: f64,
    start_s: i64,
    end_s: i64,
}

struct Run {
    server: ServerProcess,
    data: PathBuf,
    client: reqwest::blocking::Client,
}

impl Run {
    fn start(bin: &Path, work: &Path, name: &str, span_metrics: bool) -> anyhow::Result<Self> {
        let data = work.join(format!("data-{name}"));
        if data.exists() {
            fs::remove_dir_all(&data)?;
        }
        let config = work.join(format!("{name}.toml"));
        fs::write(
            &config,
            format!("[traces]\nspan_metrics = {span_metrics}\nmetrics_flush_interval = \"2s\"\n"),
        )?;
        let server =
            ServerProcess::start(bin, &data, Some(&config), &work.join(format!("{name}.log")))?;
        Ok(Self {
            server,
            data,
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()?,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.http)
    }

    /// Sends `spans` spans over gRPC with probes alongside; returns the figures and the
    /// probes' freshness in seconds.
    fn ingest(
        &self,
        pool: &Arc<Pool>,
        args: &Args,
        spans: u64,
    ) -> anyhow::Result<(IngestStats, Vec<f64>)> {
        let rounds = spans.div_ceil(args.batch as u64);
        let addr = self.server.otlp_grpc;
        let done = Arc::new(AtomicBool::new(false));
        let probes = {
            let done = done.clone();
            let client = self.client.clone();
            let otlp_http = self.server.otlp_http;
            let http = self.server.http;
            thread::spawn(move || probe_freshness(&client, otlp_http, http, &done))
        };
        let cpu0 = self.server.cpu_seconds()?;
        let started = Instant::now();
        let start_s = unix_s() - 5;
        let sent = Arc::new(AtomicU64::new(0));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
                .connect()
                .await?;
            let next = Arc::new(AtomicU64::new(0));
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..args.clients {
                let channel = channel.clone();
                let next = next.clone();
                let sent = sent.clone();
                let pool = pool.clone();
                tasks.spawn(async move {
                    let mut grpc = tonic::client::Grpc::new(channel);
                    loop {
                        let round = next.fetch_add(1, Ordering::Relaxed);
                        if round >= rounds {
                            return Ok::<(), anyhow::Error>(());
                        }
                        let body = pool.body(round as u32);
                        grpc.ready().await?;
                        let path = tonic::codegen::http::uri::PathAndQuery::from_static(
                            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                        );
                        let answer = grpc
                            .unary(tonic::Request::new(body), path, RawCodec)
                            .await?
                            .into_inner();
                        if let Some(p) = answer.partial_success
                            && p.rejected_spans > 0
                        {
                            bail!("spans refused: {}", p.error_message);
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            while let Some(result) = tasks.join_next().await {
                result??;
            }
            Ok::<(), anyhow::Error>(())
        })?;
        let seconds = started.elapsed().as_secs_f64();
        let cpu_seconds = self.server.cpu_seconds()? - cpu0;
        done.store(true, Ordering::SeqCst);
        let freshness = probes.join().expect("probe thread")?;
        let spans = rounds * args.batch as u64 / SPANS_PER_TRACE as u64 * SPANS_PER_TRACE as u64;
        Ok((
            IngestStats {
                spans,
                rounds,
                seconds,
                cpu_seconds,
                start_s,
                end_s: unix_s() + 5,
            },
            freshness,
        ))
    }

    fn wait_for_calls(&self, want: u64) -> anyhow::Result<u64> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let v: Value = self
                .client
                .get(self.url("/api/v1/query"))
                .query(&[("query", "sum(traces_span_metrics_calls_total)")])
                .send()?
                .json()?;
            let n = v["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(0.0) as u64;
            if n >= want || Instant::now() > deadline {
                if n != want {
                    bail!("span metrics count {n} calls, {want} spans were sent");
                }
                return Ok(n);
            }
            thread::sleep(Duration::from_millis(500));
        }
    }

    fn trace_span_count(&self, id: &[u8; 16]) -> anyhow::Result<usize> {
        let r = self
            .client
            .get(self.url(&format!("/api/v2/traces/{}", hex(id))))
            .header("Accept", "application/protobuf")
            .send()?;
        if !r.status().is_success() {
            bail!("trace {} answered {}", hex(id), r.status());
        }
        // v2 protobuf: TraceByIDResponse { Trace trace = 1 }, Trace wire-identical to TracesData.
        let bytes = r.bytes()?;
        let wrapper = TraceByIdResponse::decode(bytes)?;
        Ok(wrapper
            .trace
            .map(|t| {
                t.resource_spans
                    .iter()
                    .flat_map(|r| &r.scope_spans)
                    .map(|s| s.spans.len())
                    .sum()
            })
            .unwrap_or(0))
    }

    fn search(&self, q: &str, start_s: i64, end_s: i64) -> anyhow::Result<usize> {
        let r = self
            .client
            .get(self.url("/api/search"))
            .query(&[
                ("q", q.to_string()),
                ("start", start_s.to_string()),
                ("end", end_s.to_string()),
                ("limit", "20".to_string()),
            ])
            .send()?;
        if !r.status().is_success() {
            bail!("search {q} answered {}: {}", r.status(), r.text()?);
        }
        let v: Value = r.json()?;
        Ok(v["traces"].as_array().map_or(0, Vec::len))
    }
}

#[derive(Clone, PartialEq, prost::Message)]
struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    trace: Option<TracesData>,
}

fn unix_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Every 500 ms until `done`: one small trace over OTLP/HTTP, then polls trace-by-id until
/// it answers; the seconds from acknowledgement to answer.
fn probe_freshness(
    client: &reqwest::blocking::Client,
    otlp_http: std::net::SocketAddr,
    http: std::net::SocketAddr,
    done: &AtomicBool,
) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::new();
    let mut n = 0u64;
    while !done.load(Ordering::SeqCst) {
        n += 1;
        let mut trace = [0x77u8; 16];
        trace[8..].copy_from_slice(&n.to_be_bytes());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as u64;
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", s("probe"))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: trace.to_vec(),
                        span_id: n.to_be_bytes().to_vec(),
                        name: "probe".into(),
                        start_time_unix_nano: now,
                        end_time_unix_nano: now + 1_000,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                schema_url: String::new(),
            }],
        };
        let r = client
            .post(format!("http://{otlp_http}/v1/traces"))
            .header("Content-Type", "application/x-protobuf")
            .body(request.encode_to_vec())
            .send()?;
        if !r.status().is_success() {
            bail!("probe refused: {}", r.status());
        }
        let acked = Instant::now();
        let url = format!("http://{http}/api/traces/{}", hex(&trace));
        loop {
            if client.get(&url).send()?.status().is_success() {
                out.push(acked.elapsed().as_secs_f64());
                break;
            }
            if acked.elapsed() > Duration::from_secs(60) {
                bail!("probe trace {} not found after 60 s", hex(&trace));
            }
            thread::sleep(Duration::from_millis(5));
        }
        thread::sleep(Duration::from_millis(500));
    }
    Ok(out)
}
