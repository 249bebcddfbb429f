//! Topology scale benchmark (issue 12): an estate of the seed's size built through the real
//! ingest path of the release server, then the topology's memory, `stack`/`impact` latency,
//! full-graph export time, and its share of the ingest CPU.
//!
//!     cargo build --release -p sightline-server -p sightline-benches
//!     target/release/topology_load --work /tmp/topology-bench
//!
//! The estate: `--apps` business applications (1,000) of `--services-per-app` services (10),
//! `--pods-per-service` pods each (5), on `--nodes` nodes (3,000) spread over three zones of
//! two regions, in one cluster with a namespace per application. Every pod reports one OTLP
//! log record with the resource attributes Kubernetes resource detection gives
//! (`service.*`, `k8s.*`, `cloud.*`). Calls come from OTLP spans (client and server pairs, so
//! the service graph makes the `calls` relations): in each application, service 0 (its
//! gateway) calls services 1–3, each of those calls two of services 4–9, every gateway calls
//! the shared `sso` service; services 4–9 query the application's PostgreSQL database and
//! service 1 its Redis cache. Applications, with owners and criticality, are declared through
//! `PUT /api/v1/topology/entities`.
//!
//! Figures: entities and relations, estimated topology memory per entity (the server's
//! `sightline_topology_memory_bytes`) and the server's RSS growth per entity; `stack` and
//! `impact` latency p50/p99 over random services, instances, pods and nodes (HTTP round trip,
//! JSON included); full-graph export time and size; and the ingest overhead: a log load over
//! the estate's resources (`--lines`, many lines per resource as real services log) run with
//! the topology learning and with `[topology] enabled = false`, server CPU per million lines.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::{Value, json};
use sightline_benches::process::{ServerProcess, memory_bytes, percentile};
use sightline_benches::rng::Rng;

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value_t = 1_000)]
    apps: usize,
    #[arg(long, default_value_t = 10)]
    services_per_app: usize,
    #[arg(long, default_value_t = 5)]
    pods_per_service: usize,
    #[arg(long, default_value_t = 3_000)]
    nodes: usize,
    /// `stack` and `impact` requests measured (each).
    #[arg(long, default_value_t = 2_000)]
    lookups: usize,
    /// Log lines of the ingest-overhead runs.
    #[arg(long, default_value_t = 2_000_000)]
    lines: usize,
    /// Work directory (data directories, logs).
    #[arg(long, default_value = "/tmp/topology-bench")]
    work: PathBuf,
    /// Only the ingest-overhead runs.
    #[arg(long)]
    overhead_only: bool,
    /// The server binary.
    #[arg(long, default_value = "target/release/sightline")]
    server: PathBuf,
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(V::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// One pod of the estate.
struct Pod {
    app: usize,
    service: usize,
    pod: usize,
    node: usize,
}

impl Pod {
    fn service_name(&self) -> String {
        service_name(self.app, self.service)
    }

    fn name(&self) -> String {
        format!("{}-{}", self.service_name(), self.pod)
    }

    fn resource(&self) -> Resource {
        let zone = ZONES[self.node % ZONES.len()];
        let node = format!("node-{:04}", self.node);
        let app = app_name(self.app);
        let pod = self.name();
        Resource {
            attributes: vec![
                kv("service.name", &self.service_name()),
                kv("service.namespace", &app),
                kv("service.version", "1.0.0"),
                kv("service.instance.id", &pod),
                kv("deployment.environment", "production"),
                kv("k8s.cluster.name", "gov-cloud"),
                kv("k8s.namespace.name", &app),
                kv("k8s.deployment.name", &self.service_name()),
                kv("k8s.pod.name", &pod),
                kv("k8s.node.name", &node),
                kv("host.name", &node),
                kv("cloud.provider", "gov-cloud"),
                kv("cloud.region", zone.0),
                kv("cloud.availability_zone", zone.1),
            ],
            ..Default::default()
        }
    }
}

const ZONES: [(&str, &str); 3] = [
    ("region-1", "region-1a"),
    ("region-1", "region-1b"),
    ("region-2", "region-2a"),
];

/// The application's name (also its namespace); the shared services' is `shared`.
fn app_name(app: usize) -> String {
    if app == usize::MAX {
        "shared".into()
    } else {
        format!("app-{app:04}")
    }
}

fn service_name(app: usize, service: usize) -> String {
    if app == usize::MAX {
        "sso".into()
    } else {
        format!("app-{app:04}-svc-{service}")
    }
}

fn estate(args: &Args) -> Vec<Pod> {
    let mut pods = Vec::new();
    let mut next_node = 0;
    let mut add = |app, service, pods: &mut Vec<Pod>| {
        for pod in 0..args.pods_per_service {
            pods.push(Pod {
                app,
                service,
                pod,
                node: next_node % args.nodes,
            });
            next_node += 7;
        }
    };
    for app in 0..args.apps {
        for service in 0..args.services_per_app {
            add(app, service, &mut pods);
        }
    }
    add(usize::MAX, 0, &mut pods);
    pods
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

struct Client {
    http: reqwest::blocking::Client,
    server: String,
    otlp: String,
}

impl Client {
    fn post_protobuf(&self, path: &str, body: Vec<u8>) -> anyhow::Result<()> {
        let r = self
            .http
            .post(format!("{}{path}", self.otlp))
            .header("Content-Type", "application/x-protobuf")
            .body(body)
            .send()?;
        if !r.status().is_success() {
            bail!("{path}: {} {}", r.status(), r.text().unwrap_or_default());
        }
        Ok(())
    }

    fn get(&self, path: &str) -> anyhow::Result<(Duration, usize, Value)> {
        let t = Instant::now();
        let r = self.http.get(format!("{}{path}", self.server)).send()?;
        let status = r.status();
        let body = r.bytes()?;
        let elapsed = t.elapsed();
        if !status.is_success() {
            bail!("{path}: {status} {}", String::from_utf8_lossy(&body));
        }
        Ok((elapsed, body.len(), serde_json::from_slice(&body)?))
    }

    fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.server))
            .send()?
            .text()?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .with_context(|| format!("no {name} in /metrics"))
    }
}

/// One log record from each pod, `per_request` resources a request.
fn send_pod_logs(c: &Client, pods: &[Pod], per_request: usize) -> anyhow::Result<()> {
    for chunk in pods.chunks(per_request) {
        let t = now_ns();
        let req = ExportLogsServiceRequest {
            resource_logs: chunk
                .iter()
                .map(|p| ResourceLogs {
                    resource: Some(p.resource()),
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![LogRecord {
                            time_unix_nano: t,
                            body: Some(AnyValue {
                                value: Some(V::StringValue(format!("{} started", p.name()))),
                            }),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect(),
        };
        c.post_protobuf("/v1/logs", req.encode_to_vec())?;
    }
    Ok(())
}

/// The estate's calls as spans: a client span in a pod of the caller and the server span
/// in a pod of the callee, and database/cache client spans.
fn send_calls(c: &Client, args: &Args, pods: &[Pod]) -> anyhow::Result<usize> {
    let pod_of = |app: usize, service: usize| -> &Pod {
        let base = if app == usize::MAX {
            args.apps * args.services_per_app
        } else {
            app * args.services_per_app + service
        };
        &pods[base * args.pods_per_service]
    };
    let mut resource_spans = Vec::new();
    let mut spans = 0;
    let mut id: u64 = 1;
    let t = now_ns();
    let span = |trace: u64, span_id: u64, parent: u64, kind: i32, attrs: Vec<KeyValue>| Span {
        trace_id: [trace.to_be_bytes(), 1u64.to_be_bytes()].concat(),
        span_id: span_id.to_be_bytes().to_vec(),
        parent_span_id: if parent == 0 {
            vec![]
        } else {
            parent.to_be_bytes().to_vec()
        },
        name: "call".into(),
        kind,
        start_time_unix_nano: t,
        end_time_unix_nano: t + 5_000_000,
        attributes: attrs,
        ..Default::default()
    };
    fn push(out: &mut Vec<ResourceSpans>, pod: &Pod, s: Span) {
        out.push(ResourceSpans {
            resource: Some(pod.resource()),
            scope_spans: vec![ScopeSpans {
                spans: vec![s],
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    for app in 0..args.apps {
        let mut edges = vec![(0, usize::MAX)];
        for s in 1..=3.min(args.services_per_app - 1) {
            edges.push((0, s));
            for k in 0..2 {
                let callee = 4 + (s - 1) * 2 + k;
                if callee < args.services_per_app {
                    edges.push((s, callee));
                }
            }
        }
        for (from, to) in edges {
            let caller = pod_of(app, from);
            let callee = if to == usize::MAX {
                pod_of(usize::MAX, 0)
            } else {
                pod_of(app, to)
            };
            let (client, server) = (id, id + 1);
            push(&mut resource_spans, caller, span(id, client, 0, 3, vec![]));
            push(
                &mut resource_spans,
                callee,
                span(id, server, client, 2, vec![]),
            );
            id += 2;
            spans += 2;
        }
        for s in 4..args.services_per_app {
            let db = format!("app-{app:04}-db");
            push(
                &mut resource_spans,
                pod_of(app, s),
                span(
                    id,
                    id,
                    0,
                    3,
                    vec![kv("db.system", "postgresql"), kv("db.name", &db)],
                ),
            );
            id += 1;
            spans += 1;
        }
        if args.services_per_app > 1 {
            let cache = format!("app-{app:04}-cache");
            push(
                &mut resource_spans,
                pod_of(app, 1),
                span(
                    id,
                    id,
                    0,
                    3,
                    vec![kv("db.system", "redis"), kv("peer.service", &cache)],
                ),
            );
            id += 1;
            spans += 1;
        }
        if resource_spans.len() >= 500 || app + 1 == args.apps {
            let req = ExportTraceServiceRequest {
                resource_spans: std::mem::take(&mut resource_spans),
            };
            c.post_protobuf("/v1/traces", req.encode_to_vec())?;
        }
    }
    Ok(spans)
}

fn declare_apps(c: &Client, args: &Args) -> anyhow::Result<()> {
    for chunk in (0..args.apps).collect::<Vec<_>>().chunks(100) {
        let entities: Vec<Value> = chunk
            .iter()
            .map(|&app| {
                json!({
                    "kind": "application",
                    "name": format!("app-{app:04}"),
                    "owner": {"name": format!("vendor-{}", app % 40), "contact": format!("ops@vendor-{}.example", app % 40)},
                    "criticality": if app % 5 == 0 { "core" } else { "normal" },
                    "services": (0..args.services_per_app).map(|s| service_name(app, s)).collect::<Vec<_>>(),
                })
            })
            .collect();
        let r = c
            .http
            .put(format!("{}/api/v1/topology/entities", c.server))
            .json(&json!({ "entities": entities }))
            .send()?;
        if !r.status().is_success() {
            bail!("declaring applications: {} {}", r.status(), r.text()?);
        }
    }
    Ok(())
}

fn start(args: &Args, name: &str, learn: bool) -> anyhow::Result<(ServerProcess, Client)> {
    let dir = args.work.join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let config = dir.join("sightline.toml");
    fs::write(
        &config,
        format!(
            "[traces]\nmetrics_flush_interval = \"1s\"\n\n[topology]\nenabled = {learn}\n\n[limits]\nmax_request_bytes = 268435456\n"
        ),
    )?;
    let server = ServerProcess::start(
        &args.server,
        &dir.join("data"),
        Some(&config),
        &dir.join("server.log"),
    )?;
    let client = Client {
        http: reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?,
        server: format!("http://{}", server.http),
        otlp: format!("http://{}", server.otlp_http),
    };
    Ok((server, client))
}

fn wait_for(what: &str, mut done: impl FnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !done()? {
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Server CPU seconds for `lines` log lines over the estate's resources in steady state:
/// every pod has reported once before (the estate is known, as it is once a server has run
/// a minute), then requests of 2,000 lines from 40 pods (50 lines each), the pods taken in
/// turn.
fn log_load(
    c: &Client,
    server: &ServerProcess,
    pods: &[Pod],
    lines: usize,
) -> anyhow::Result<(f64, f64)> {
    let resources: Vec<Resource> = pods.iter().map(Pod::resource).collect();
    let cpu_start = server.cpu_seconds()?;
    send_pod_logs(c, pods, 500)?;
    let cpu0 = server.cpu_seconds()?;
    let mut sent = 0;
    let mut next = 0;
    while sent < lines {
        let t = now_ns();
        let req = ExportLogsServiceRequest {
            resource_logs: (0..40)
                .map(|_| {
                    let r = resources[next % resources.len()].clone();
                    next += 1;
                    ResourceLogs {
                        resource: Some(r),
                        scope_logs: vec![ScopeLogs {
                            log_records: (0..50)
                                .map(|i| LogRecord {
                                    time_unix_nano: t + i,
                                    severity_number: 9,
                                    body: Some(AnyValue {
                                        value: Some(V::StringValue(format!(
                                            "request {i} served in {} ms",
                                            i % 17
                                        ))),
                                    }),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }
                })
                .collect(),
        };
        c.post_protobuf("/v1/logs", req.encode_to_vec())?;
        sent += 2_000;
    }
    Ok((cpu0 - cpu_start, server.cpu_seconds()? - cpu0))
}

/// CPU seconds the topology's ingest tap spends on one steady-state request (40 streams
/// from pods it already knows), measured in-process.
fn tap_cost(pods: &[Pod]) -> anyhow::Result<f64> {
    use sightline_ingest::{IngestHandle, Tap};
    use sightline_model::{LogBatch, LogRecord as ModelRecord, LogStream, TenantId};
    use sightline_topology::facts::FactBatch;
    use sightline_topology::{Observer, Topology, TopologyConfig};

    let dir = std::env::temp_dir().join(format!("topology-tap-{}", std::process::id()));
    let runtime = tokio::runtime::Runtime::new()?;
    let topology = std::sync::Arc::new(Topology::open(&dir, TopologyConfig::default())?);
    let stream_of = |p: &Pod, t: i64| {
        let resource: Vec<(String, String)> = p
            .resource()
            .attributes
            .iter()
            .map(|kv| {
                let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(V::StringValue(s)) => s.clone(),
                    _ => String::new(),
                };
                (kv.key.clone(), v)
            })
            .collect();
        LogStream {
            labels: sightline_model::index_labels_from_resource(&resource),
            resource,
            records: (0..50)
                .map(|i| ModelRecord {
                    timestamp_ns: t + i,
                    body: format!("request {i} served"),
                    ..ModelRecord::default()
                })
                .collect(),
            ..LogStream::default()
        }
    };
    let seconds = runtime.block_on(async {
        let (handle, mut rx) = IngestHandle::<FactBatch>::channel(64);
        tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                let _ = req.ack.send(Ok(()));
            }
        });
        let observer = Observer::new(topology, handle);
        let t = now_ns() as i64;
        let batches: Vec<LogBatch> = pods
            .chunks(40)
            .map(|chunk| LogBatch {
                tenant: TenantId::default_tenant(),
                streams: chunk.iter().map(|p| stream_of(p, t)).collect(),
            })
            .collect();
        // Learn the estate first, as a running server has.
        for b in &batches {
            if let Some(f) = observer.observe(b) {
                f.await?;
            }
        }
        let start = Instant::now();
        let mut n = 0;
        for b in &batches {
            assert!(
                observer.observe(b).is_none(),
                "a known estate writes nothing"
            );
            n += 1;
        }
        anyhow::Ok(start.elapsed().as_secs_f64() / n as f64)
    })?;
    let _ = fs::remove_dir_all(&dir);
    Ok(seconds)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    fs::create_dir_all(&args.work)?;
    let pods = estate(&args);
    println!(
        "estate: {} applications, {} services, {} pods on {} nodes, 3 zones of 2 regions",
        args.apps,
        args.apps * args.services_per_app + 1,
        pods.len(),
        args.nodes
    );

    if !args.overhead_only {
        scale(&args, &pods)?;
    }

    // Ingest overhead: the same log load with and without the topology learning, twice
    // each, alternating (the machine's noise is a few per cent).
    let mut first = [0.0f64; 2];
    let mut steady = [0.0f64; 2];
    for round in 0..2 {
        for (i, learn) in [true, false].into_iter().enumerate() {
            let name = format!("load-{}-{round}", if learn { "on" } else { "off" });
            let (mut server, c) = start(&args, &name, learn)?;
            let (warm, cpu) = log_load(&c, &server, &pods, args.lines)?;
            server.stop()?;
            first[i] += warm;
            steady[i] += cpu;
            println!(
                "log load, topology {}: first report of {} pods {warm:.2} s CPU; then {} lines {cpu:.1} s CPU ({:.2} s per million lines)",
                if learn { "on" } else { "off" },
                pods.len(),
                args.lines,
                cpu / (args.lines as f64 / 1e6)
            );
        }
    }
    println!(
        "ingest overhead of the topology, whole server: steady state {:+.1} % of the log ingest CPU (two alternating runs each; the noise is several per cent); learning a new estate {:.0} µs of CPU per new pod ({:.0} % over its first log line)",
        (steady[0] / steady[1] - 1.0) * 100.0,
        (first[0] - first[1]) / 2.0 / pods.len() as f64 * 1e6,
        (first[0] / first[1] - 1.0) * 100.0
    );
    // The tap alone, timed in-process on the same requests: a precise figure where the
    // whole-server difference is within noise.
    let per_request = tap_cost(&pods)?;
    let server_per_request = steady[1] / 2.0 / (args.lines as f64 / 2_000.0);
    println!(
        "the tap per steady-state request of 2,000 lines from 40 known pods: {:.1} µs of CPU = {:.2} % of the server's {:.1} ms per request",
        per_request * 1e6,
        per_request / server_per_request * 100.0,
        server_per_request * 1e3
    );
    Ok(())
}

/// Builds the estate and measures the graph.
fn scale(args: &Args, pods: &[Pod]) -> anyhow::Result<()> {
    let (mut server, c) = start(args, "scale", true)?;
    let rss0 = memory_bytes(server.child.id(), "VmRSS").unwrap_or(0);
    let cpu0 = server.cpu_seconds()?;
    let t = Instant::now();
    declare_apps(&c, args)?;
    send_pod_logs(&c, pods, 500)?;
    let spans = send_calls(&c, args, pods)?;
    let sent = t.elapsed();
    let want_calls = args.apps * 10;
    wait_for("the service graph's calls", || {
        let g = c.get("/api/v1/topology?kind=service")?.2;
        let calls = g["data"]["relations"]
            .as_array()
            .map_or(0, |r| r.iter().filter(|r| r["kind"] == "calls").count());
        Ok(calls >= want_calls)
    })?;
    let built = t.elapsed();
    let ingest_cpu = server.cpu_seconds()? - cpu0;
    let entities = c.metric("sightline_topology_entities")?;
    let relations = c.metric("sightline_topology_relations")?;
    let memory = c.metric("sightline_topology_memory_bytes")?;
    let rss1 = memory_bytes(server.child.id(), "VmRSS").unwrap_or(0);
    println!(
        "built: {entities} entities, {relations} relations ({spans} spans sent) in {:.1} s (sent in {:.1} s), server CPU {ingest_cpu:.1} s",
        built.as_secs_f64(),
        sent.as_secs_f64()
    );
    println!(
        "memory: {:.0} B/entity estimated ({:.1} MiB), RSS growth {:.0} B/entity ({:.1} MiB, log store and span store included)",
        memory / entities,
        memory / 1048576.0,
        rss1.saturating_sub(rss0) as f64 / entities,
        rss1.saturating_sub(rss0) as f64 / 1048576.0
    );

    // Lookups over random services, instances, pods and nodes.
    let mut rng = Rng::new(12);
    let mut targets = Vec::new();
    for _ in 0..args.lookups {
        let p = &pods[rng.below(pods.len() as u64) as usize];
        targets.push(match rng.below(4) {
            0 => format!("service:{}", p.service_name()),
            1 => format!("instance:{}/{}", p.service_name(), p.name()),
            2 => format!("pod:gov-cloud/{}/{}", app_name(p.app), p.name()),
            _ => format!("node:gov-cloud/node-{:04}", p.node),
        });
    }
    for what in ["stack", "impact"] {
        let mut ms = Vec::new();
        let mut bytes = 0;
        let mut counted = 0;
        for target in &targets {
            let (d, n, v) = c.get(&format!("/api/v1/topology/{what}/{target}"))?;
            ms.push(d.as_secs_f64() * 1000.0);
            bytes += n;
            counted += v["data"]["entities"].as_array().map_or(0, Vec::len);
        }
        println!(
            "{what}: p50 {:.2} ms, p99 {:.2} ms over {} random services, instances, pods and nodes (mean {:.0} entities, {:.1} KiB per answer)",
            percentile(&ms, 0.5),
            percentile(&ms, 0.99),
            ms.len(),
            counted as f64 / ms.len() as f64,
            bytes as f64 / ms.len() as f64 / 1024.0
        );
    }
    let shared = c.get("/api/v1/topology/impact/service:sso")?;
    println!(
        "impact of the shared sso service: {:.1} ms, {} entities, {} applications",
        shared.0.as_secs_f64() * 1000.0,
        shared.2["data"]["entities"].as_array().map_or(0, Vec::len),
        shared.2["data"]["applications"]
            .as_array()
            .map_or(0, Vec::len)
    );
    let mut export = Vec::new();
    let mut size = 0;
    for _ in 0..3 {
        let (d, n, _) = c.get("/api/v1/topology")?;
        export.push(d.as_secs_f64());
        size = n;
    }
    println!(
        "full-graph export: {:.2} s best of 3 ({:.1} MiB JSON)",
        export.iter().cloned().fold(f64::INFINITY, f64::min),
        size as f64 / 1048576.0
    );
    server.stop()?;
    Ok(())
}
