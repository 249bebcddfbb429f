//! `sightline serve`: bind every listener (port 0 allowed; bound addresses are logged), replay
//! the WAL, run the pipeline, and on SIGTERM/ctrl-c stop accepting, flush, commit and exit.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use sightline_collector::scrape::ScrapeManager;
use sightline_collector::{CollectorMetrics, otlp, remote_write};
use sightline_http::{ConnectionLimits, serve_http};
use sightline_indexer::{LogStore, LogStoreConfig, TraceStore, TraceStoreConfig};
use sightline_ingest::{
    Health, IngestHandle, IngestMetrics, LocalQueue, MetricIngestHandle, SinkProgress,
    SinkRunnerConfig, TappedQueue, WalWriterConfig,
};
use sightline_model::{Cancellation, SpanBatch};
use sightline_topology::facts::FactBatch;
use sightline_topology::{Observer, Topology, TopologyConfig, inventory};
use sightline_tsdb::{Tsdb, TsdbOptions};
use sightline_wal::WalOptions;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::anomalies::{self, Anomalies};
use crate::api;
use crate::api::loki::{self, QueryState};
use crate::api::prom::{self, PromState};
use crate::config::{Config, Overrides, RangeSemantics};
use crate::metrics::{ServerMetrics, TopologyGauges, TsdbGauges};

/// How long listeners wait for requests in flight at shutdown (queries are cancelled first,
/// so what remains is short: answers being written, batches being acknowledged).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

pub fn serve(overrides: Overrides) -> anyhow::Result<()> {
    init_tracing();
    let config = Config::load(&overrides)?;
    runtime()?.block_on(run(config, None))
}

/// Logs to stderr, filtered by `SIGHTLINE_LOG` (default `info`).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SIGHTLINE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sightline")
        // Queries are parsed and evaluated on these threads; PromQL's nesting limits are
        // proven safe for this stack (promql/tests/limits.rs).
        .thread_stack_size(sightline_promql::QUERY_THREAD_STACK_BYTES)
        .build()
        .context("cannot start the async runtime")
}

#[derive(Clone)]
struct HealthState {
    registry: Arc<Registry>,
    /// True once the WAL is replayed and the pipelines run.
    started: Arc<AtomicBool>,
    /// The WALs' health (logs, spans) and every store's, for `/readyz`.
    wals: Vec<Arc<Health>>,
    sinks: Vec<Arc<SinkProgress>>,
    tsdb: Arc<Tsdb>,
    tsdb_gauges: TsdbGauges,
    topology: Arc<Topology>,
    topology_gauges: TopologyGauges,
}

async fn metrics_handler(State(s): State<HealthState>) -> impl IntoResponse {
    s.tsdb_gauges.refresh(&s.tsdb.stats());
    s.topology_gauges
        .refresh(&s.topology.stats(), s.topology.refused_entities());
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &s.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                axum::http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// 200 once started and while every store accepts writes; otherwise 503 saying why.
async fn readyz(State(s): State<HealthState>) -> impl IntoResponse {
    if !s.started.load(Ordering::Acquire) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "replaying wal\n".to_string(),
        );
    }
    let mut parts: Vec<&Health> = s.wals.iter().map(|w| w.as_ref()).collect();
    parts.extend(s.sinks.iter().map(|p| p.health()));
    match sightline_ingest::unready_reason(&parts) {
        None => (StatusCode::OK, "ready\n".to_string()),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        ),
    }
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind the {what} listener on {addr}"))
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// What a program embedding the server (the demo) adds: routes on the main HTTP port, and
/// where to hear the bound addresses (main HTTP, OTLP/HTTP) once listening.
pub struct Embed {
    pub router: Router,
    pub listening: tokio::sync::oneshot::Sender<(SocketAddr, SocketAddr)>,
    /// Shuts the server down when it turns true (as SIGTERM does).
    pub stop: Option<watch::Receiver<bool>>,
    /// Simulated time: rule evaluation, the alert manager's flushes, the incident rounds and
    /// the span connectors' exports do not run on the clock; the embedder drives them at
    /// the instants it chooses through what is sent here once listening.
    pub drive: Option<tokio::sync::oneshot::Sender<Driven>>,
}

/// What a driver in simulated time works with (see [`Embed::drive`]).
pub struct Driven {
    pub rules: Arc<crate::rules::Rules>,
    pub rule_deps: crate::rules::RuleDeps,
    pub alertmanager: Arc<crate::alertmanager::AlertManager>,
    pub incidents: Arc<crate::incidents::IncidentsRuntime>,
    pub connectors: Option<sightline_collector::connectors::Connectors>,
}

/// Runs the server until SIGTERM or Ctrl-C.
pub async fn run(config: Config, embed: Option<Embed>) -> anyhow::Result<()> {
    let (extra, listening, embed_stop, drive) = match embed {
        Some(e) => (Some(e.router), Some(e.listening), e.stop, e.drive),
        None => (None, None, None, None),
    };
    let driven = drive.is_some();
    // Held until `run` returns: one server per data directory.
    let data_dir_lock = crate::data_dir::DataDirLock::acquire(&config.data_dir)?;
    tracing::debug!(lock = %data_dir_lock.path().display(), "data dir locked");
    let mut registry = Registry::default();
    let collector_metrics = CollectorMetrics::register(&mut registry);
    let server_metrics = ServerMetrics::register(&mut registry);
    let ingest_metrics = IngestMetrics::register(&mut registry);
    let tsdb_gauges = TsdbGauges::register(&mut registry);
    let topology_gauges = TopologyGauges::register(&mut registry);
    let connector_metrics =
        sightline_collector::connectors::ConnectorMetrics::register(&mut registry);
    let alertmanager_metrics = crate::alertmanager::AlertManagerMetrics::register(&mut registry);
    let registry = Arc::new(registry);

    let mut store_config = LogStoreConfig::new(config.data_dir.join("logs"));
    store_config.split_window = config.indexer.split_window;
    store_config.writer_memory_bytes = config.indexer.writer_memory_bytes;
    store_config.max_open_writers = config.indexer.max_open_writers;
    store_config.writer_threads = config.indexer.writer_threads;
    store_config.retention = config.indexer.retention;
    store_config.patterns = config.indexer.miner_config();
    let store = Arc::new(LogStore::open(store_config).context("cannot open the log store")?);
    let mut trace_config = TraceStoreConfig::new(config.data_dir.join("traces"));
    trace_config.split_window = config.traces.split_window;
    trace_config.writer_memory_bytes = config.traces.writer_memory_bytes;
    trace_config.max_open_writers = config.traces.max_open_writers;
    trace_config.writer_threads = config.indexer.writer_threads;
    trace_config.retention = config.traces.retention;
    let trace_store = Arc::new(
        tokio::task::spawn_blocking(move || TraceStore::open(trace_config))
            .await
            .context("span store open task failed")?
            .context("cannot open the span store")?,
    );

    let tsdb_options = TsdbOptions {
        dir: config.data_dir.join("tsdb"),
        block_duration_ms: config.tsdb.block_duration.as_millis() as i64,
        retention_ms: config.tsdb.retention.as_millis() as i64,
        out_of_order_window_ms: config.tsdb.out_of_order_window.as_millis() as i64,
        max_series_per_tenant: config.tsdb.max_series_per_tenant,
        future_grace_ms: config.tsdb.future_grace.as_millis() as i64,
        wal_segment_bytes: config.wal.segment_bytes,
    };
    // Opening replays the TSDB's WAL into its head; receivers are not listening yet.
    let tsdb = Arc::new(
        tokio::task::spawn_blocking(move || Tsdb::open(tsdb_options))
            .await
            .context("tsdb open task failed")?
            .context("cannot open the metric store")?,
    );
    let engine = Arc::new(sightline_promql::Engine::new(
        sightline_promql::EngineOptions {
            lookback_delta_ms: config.promql.lookback_delta.as_millis() as i64,
            max_samples: config.promql.max_samples,
            prometheus2_ranges: config.promql.range_semantics == RangeSemantics::Prometheus2,
            ..Default::default()
        },
    ));
    // Rule files that do not load stop the start, as in Prometheus.
    let rules = Arc::new(crate::rules::Rules::load(
        config.alerting.rule_packs,
        &config.alerting.rule_files,
        &config.alerting.slo_files,
        &config.alerting.logql_rule_files,
        config.alerting.evaluation_interval,
        config.alerting.external_labels.clone(),
        config.alerting.external_url.clone(),
    )?);
    // A bad Alertmanager configuration stops the start, as it stops Alertmanager's.
    let alertmanager = crate::alertmanager::AlertManager::open(
        &config.data_dir,
        config.alerting.alertmanager_config.clone(),
        config.alerting.external_url.clone(),
        alertmanager_metrics,
    )
    .context("cannot start the alert manager")?;
    let pattern_rules = config
        .alerting
        .pattern_rules
        .iter()
        .cloned()
        .map(crate::pattern_rules::PatternRule::new)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let anomalies = Arc::new(
        Anomalies::open(config.anomaly.clone(), &config.data_dir)
            .context("cannot open the anomaly detectors")?,
    );
    // The topology learns from every batch on its way in (`sightline_topology::Observer`,
    // a tap on each ingest queue) and writes what is new through its own WAL before the
    // batch is acknowledged.
    let topology_config = topology_config(&config);
    let topology_dir = config.data_dir.join("topology");
    let topology = Arc::new(
        tokio::task::spawn_blocking(move || Topology::open(&topology_dir, topology_config))
            .await
            .context("topology open task failed")?
            .context("cannot open the topology")?,
    );
    let root_cause = crate::root_cause::RootCause {
        topology: topology.clone(),
        tsdb: tsdb.clone(),
        engine: engine.clone(),
    };
    let incidents = crate::incidents::IncidentsRuntime::open(
        &config.data_dir,
        config.incidents.clone(),
        alertmanager.clone(),
        topology.clone(),
        root_cause.clone(),
    )
    .context("cannot open the incidents")?;
    let (fact_ingest, fact_ingest_rx) =
        IngestHandle::<FactBatch>::channel(config.limits.ingest_queue_batches * 4);
    let observer = Arc::new(Observer::new(topology.clone(), fact_ingest.clone()));
    let learn = config.topology.enabled;
    let (metric_queue, metric_ingest_rx) = LocalQueue::new(config.tsdb.ingest_queue_batches);
    let metric_ingest = MetricIngestHandle::new(tapped(metric_queue, &observer, learn));
    let (log_queue, ingest_rx) = LocalQueue::new(config.limits.ingest_queue_batches);
    let ingest = IngestHandle::new(tapped(log_queue, &observer, learn));
    let (span_queue, span_ingest_rx) = LocalQueue::new(config.limits.ingest_queue_batches);
    let span_ingest = IngestHandle::<SpanBatch>::new(tapped(span_queue, &observer, learn));
    drop(observer);
    let topology_progress = Arc::new(SinkProgress::new(0));
    let topology_wal_health = Arc::new(Health::default());
    let started = Arc::new(AtomicBool::new(false));
    // Log progress starts at 0 and moves to the replayed watermark once replay has run.
    let log_progress = Arc::new(SinkProgress::new(0));
    let metric_progress = Arc::new(SinkProgress::new(0));
    let wal_health = Arc::new(Health::default());
    let trace_progress = Arc::new(SinkProgress::new(0));
    let trace_wal_health = Arc::new(Health::default());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    // Bind everything first so that a taken port fails fast and port 0 resolves.
    let http_listener = bind(config.server.http_addr, "http").await?;
    let otlp_http_listener = bind(config.server.otlp_http_addr, "otlp http").await?;
    let otlp_grpc_listener = bind(config.server.otlp_grpc_addr, "otlp grpc").await?;
    let syslog = sightline_collector::syslog::start(
        sightline_collector::syslog::SyslogConfig {
            tcp_addr: Some(config.server.syslog_addr),
            udp_addr: Some(config.server.syslog_addr),
            ..config.syslog.clone()
        },
        ingest.clone(),
        collector_metrics.clone(),
        shutdown_rx.clone(),
    )
    .await
    .context("cannot start the syslog listeners")?;

    let http_addr = http_listener.local_addr()?;
    let otlp_http_addr = otlp_http_listener.local_addr()?;
    let otlp_grpc_addr = otlp_grpc_listener.local_addr()?;
    tracing::info!(
        %http_addr,
        %otlp_grpc_addr,
        %otlp_http_addr,
        syslog_tcp_addr = %display_opt(syslog.tcp),
        syslog_udp_addr = %display_opt(syslog.udp),
        data_dir = %config.data_dir.display(),
        "sightline listening"
    );
    if let Some(tx) = listening {
        let _ = tx.send((http_addr, otlp_http_addr));
    }

    let health = HealthState {
        registry: registry.clone(),
        started: started.clone(),
        wals: vec![
            wal_health.clone(),
            trace_wal_health.clone(),
            topology_wal_health.clone(),
        ],
        sinks: vec![
            log_progress.clone(),
            metric_progress.clone(),
            trace_progress.clone(),
            topology_progress.clone(),
        ],
        topology: topology.clone(),
        topology_gauges,
        tsdb: tsdb.clone(),
        tsdb_gauges,
    };
    // Cancelled at shutdown: every running query stops within the grace period.
    // By default one core is left to ingest: a storm of heavy queries then delays
    // acknowledgements by little (benches/RESULTS.md, query_storm).
    let query_threads = match config.limits.max_concurrent_queries {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1)),
        n => n,
    };
    let queries = api::QueryControl {
        shutdown: Cancellation::new(),
        timeout: config.limits.query_timeout,
        pool: crate::query_pool::QueryPool::start(
            query_threads,
            config.limits.max_queued_queries,
            sightline_promql::QUERY_THREAD_STACK_BYTES,
        )
        .context("cannot start the query threads")?,
    };
    let stop_queries = queries.shutdown.clone();
    let trace_api = api::tempo::router(api::tempo::TraceQueryState {
        store: trace_store.clone(),
        metrics: server_metrics.clone(),
        queries: queries.clone(),
    });
    let main_router = Router::new()
        .merge(loki::router(QueryState {
            store: store.clone(),
            metrics: server_metrics.clone(),
            max_series: config.limits.max_query_series,
            queries: queries.clone(),
        }))
        .merge(prom::router(PromState {
            tsdb: tsdb.clone(),
            engine: engine.clone(),
            metrics: server_metrics.clone(),
            queries: queries.clone(),
        }))
        .merge(trace_api)
        .merge(api::rules::router(rules.clone(), alertmanager.clone()))
        .merge(api::alertmanager::router(alertmanager.clone()))
        .merge(api::incidents::router(incidents.clone()))
        .merge(api::rca::router(api::rca::RcaState {
            root_cause: root_cause.clone(),
            metrics: server_metrics.clone(),
            queries: queries.clone(),
        }))
        .merge(api::topology::router(api::topology::TopologyState {
            topology: topology.clone(),
            facts: fact_ingest.clone(),
        }))
        .merge(remote_write::router(
            remote_write::RemoteWriteState::new(metric_ingest.clone(), collector_metrics.clone())
                .with_config(config.remote_write),
        ))
        .merge(
            Router::new()
                .route("/api/v1/anomalies", get(api::anomalies::anomalies))
                .with_state(anomalies.clone()),
        )
        .merge(sightline_collector::loki_push::router(
            sightline_collector::loki_push::LokiPushState::new(
                ingest.clone(),
                collector_metrics.clone(),
            )
            .with_config(config.loki_push),
        ))
        .merge(
            Router::new()
                .route("/metrics", get(metrics_handler))
                .route("/healthz", get(|| async { "ok\n" }))
                .route("/readyz", get(readyz))
                .with_state(health),
        );
    let main_router = match extra {
        Some(extra) => main_router.merge(extra),
        None => main_router,
    };
    let main_router =
        api::with_fallbacks(main_router).layer(DefaultBodyLimit::max(config.max_request_bytes()));
    // One delta→cumulative state for both OTLP transports.
    let otlp_metrics = otlp::OtlpMetricsIngest::with_options(
        metric_ingest.clone(),
        otlp::metrics::DEFAULT_MAX_DELTA_SERIES,
        config.otlp.translate_options(),
    );
    let (connectors, connector_task) = if config.traces.span_metrics {
        let (handle, task) = sightline_collector::connectors::start(
            sightline_collector::connectors::ConnectorConfig {
                flush_interval: config.traces.metrics_flush_interval,
                max_series: config.traces.max_span_metric_series,
                max_items: config.traces.service_graph_max_items,
                ttl: config.traces.service_graph_wait,
                manual_flush: driven,
                ..Default::default()
            },
            otlp_metrics.clone(),
            collector_metrics.clone(),
            connector_metrics,
            shutdown_rx.clone(),
        );
        (Some(handle), Some(task))
    } else {
        (None, None)
    };
    let driven_connectors = connectors.clone();
    let span_sink = {
        let sink = otlp::traces::SpanIngest::new(span_ingest.clone());
        match connectors {
            Some(c) => sink.with_connectors(c),
            None => sink,
        }
    };
    let otlp_http_router = otlp::http::router(
        otlp::http::OtlpHttpState::new(ingest.clone(), collector_metrics.clone())
            .with_config(config.otlp)
            .with_metrics(otlp_metrics.clone())
            .with_traces(span_sink.clone()),
    );

    let connections = ConnectionLimits::new(
        config.limits.max_connections,
        config.limits.idle_timeout,
        config.limits.header_read_timeout,
        config.limits.body_read_timeout,
    );
    let mut servers = tokio::task::JoinSet::new();
    for (listener, router) in [
        (http_listener, main_router),
        (otlp_http_listener, otlp_http_router),
    ] {
        let mut stop = shutdown_rx.clone();
        let connections = connections.clone();
        servers.spawn(async move {
            serve_http(
                listener,
                router,
                connections,
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
                SHUTDOWN_GRACE,
            )
            .await;
            Ok::<(), anyhow::Error>(())
        });
    }
    {
        let mut stop = shutdown_rx.clone();
        let grpc_connections = connections.clone();
        let grpc_max_message_bytes = config.otlp.max_grpc_message_bytes;
        let service = otlp::grpc::logs_service(
            otlp::grpc::OtlpGrpcState::new(ingest.clone(), collector_metrics.clone())
                .with_config(&config.otlp),
        );
        let metrics_service = otlp::grpc::metrics_service(
            otlp::grpc::OtlpGrpcMetricsState::new(otlp_metrics, collector_metrics.clone())
                .with_config(&config.otlp),
        );
        let traces_service = otlp::grpc::traces_service(
            otlp::grpc::OtlpGrpcTracesState::new(span_sink.clone(), collector_metrics.clone())
                .with_config(&config.otlp),
        );
        servers.spawn(async move {
            tonic::transport::Server::builder()
                // Finds peers that vanished without closing (a pulled cable, a dead VM).
                .http2_keepalive_interval(Some(std::time::Duration::from_secs(60)))
                .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
                .layer(tower::util::MapResponseLayer::new(
                    otlp::grpc::decode_errors_as_invalid_argument,
                ))
                // Inside the map: it must see tonic's own INTERNAL answer to invalid UTF-8.
                .layer(otlp::grpc::RepairUtf8Layer {
                    max_message_bytes: grpc_max_message_bytes,
                })
                .add_service(service)
                .add_service(metrics_service)
                .add_service(traces_service)
                .serve_with_incoming_shutdown(
                    grpc_connections.incoming(otlp_grpc_listener),
                    async move {
                        let _ = stop.wait_for(|s| *s).await;
                    },
                )
                .await
                .context("otlp grpc server failed")
        });
    }
    let scrape = ScrapeManager::start(
        config.scrape_jobs(http_addr),
        metric_ingest.clone(),
        collector_metrics.clone(),
        shutdown_rx.clone(),
    )
    .map_err(|e| anyhow::anyhow!("scrape_configs: {e}"))?;
    let anomaly_runner = tokio::spawn(anomalies::run(
        anomalies.clone(),
        tsdb.clone(),
        engine.clone(),
        metric_ingest.clone(),
        shutdown_rx.clone(),
    ));
    let reloader = tokio::spawn(reload_on_sighup(
        rules.clone(),
        alertmanager.clone(),
        shutdown_rx.clone(),
    ));
    let rule_deps = crate::rules::RuleDeps {
        tsdb: tsdb.clone(),
        engine: engine.clone(),
        ingest: metric_ingest.clone(),
        logs: store.clone(),
        alertmanager: alertmanager.clone(),
    };
    let (rule_runner, alert_dispatcher, incident_runner) = match drive {
        Some(tx) => {
            // The driver holds a metric ingest handle: the metric queue closes (and
            // shutdown completes) once it has dropped what it was given.
            let _ = tx.send(Driven {
                rules: rules.clone(),
                rule_deps,
                alertmanager: alertmanager.clone(),
                incidents: incidents.clone(),
                connectors: driven_connectors,
            });
            (None, None, None)
        }
        None => (
            Some(tokio::spawn(crate::rules::run(
                rules.clone(),
                rule_deps,
                shutdown_rx.clone(),
            ))),
            Some(tokio::spawn(crate::alertmanager::run(
                alertmanager.clone(),
                shutdown_rx.clone(),
            ))),
            config.incidents.enabled.then(|| {
                tokio::spawn(crate::incidents::run(
                    incidents.clone(),
                    config.incidents.interval,
                    shutdown_rx.clone(),
                ))
            }),
        ),
    };
    let pattern_rule_runner = tokio::spawn(crate::pattern_rules::run(
        pattern_rules,
        store.clone(),
        alertmanager.clone(),
        shutdown_rx.clone(),
    ));
    drop(ingest);
    drop(span_ingest);
    drop(span_sink);
    drop(metric_ingest);

    // Set at shutdown: a store that keeps failing is then retried only briefly, its batches
    // left in the WAL for the next start.
    let stopping = Arc::new(AtomicBool::new(false));
    let pipeline = |name: &'static str| WalPipeline {
        name,
        wal_options: WalOptions {
            segment_bytes: config.wal.segment_bytes,
        },
        runner_config: SinkRunnerConfig {
            commit_interval: config.indexer.commit_interval,
            ..Default::default()
        },
        group_commit_delay: config.wal.group_commit_delay,
        stopping: stopping.clone(),
        metrics: ingest_metrics.clone(),
    };
    let logs = pipeline("logs")
        .start(
            config.data_dir.join("wal"),
            store.clone(),
            ingest_rx,
            log_progress.clone(),
            wal_health.clone(),
        )
        .await?;
    let spans = pipeline("traces")
        .start(
            config.data_dir.join("wal-traces"),
            trace_store.clone(),
            span_ingest_rx,
            trace_progress.clone(),
            trace_wal_health.clone(),
        )
        .await?;
    let facts = WalPipeline {
        runner_config: SinkRunnerConfig {
            commit_interval: config.topology.snapshot_interval,
            ..Default::default()
        },
        ..pipeline("topology")
    }
    .start(
        config.data_dir.join("wal-topology"),
        topology.clone(),
        fact_ingest_rx,
        topology_progress.clone(),
        topology_wal_health.clone(),
    )
    .await?;
    if let Some(path) = &config.topology.inventory {
        load_inventory(path, &topology, &fact_ingest).await;
    }
    drop(fact_ingest);
    let metric_writer = tokio::spawn(sightline_ingest::run_direct_writer(
        tsdb.clone(),
        metric_ingest_rx,
        metric_progress.clone(),
        config.wal.group_commit_delay,
        ingest_metrics.clone(),
    ));
    let maintenance = tokio::spawn(run_tsdb_maintenance(
        tsdb.clone(),
        config.tsdb.maintain_interval,
        shutdown_rx.clone(),
    ));
    started.store(true, Ordering::Release);
    tracing::info!("sightline ready");

    let embed_stopped = async move {
        match embed_stop {
            Some(mut rx) => {
                let _ = rx.wait_for(|s| *s).await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = shutdown_signal() => tracing::info!("shutting down"),
        _ = embed_stopped => tracing::info!("shutting down"),
        Some(result) = servers.join_next() => {
            // A server that stops on its own is a failure; bring the rest down cleanly.
            tracing::error!(?result, "a listener stopped unexpectedly");
        }
    }
    let _ = shutdown_tx.send(true);
    stop_queries.cancel();
    stopping.store(true, Ordering::Release);
    while let Some(result) = servers.join_next().await {
        if let Ok(Err(e)) = result {
            tracing::warn!(error = %e, "listener ended with an error");
        }
    }
    syslog.join().await;
    // Scrapers and the anomaly runner hold metric ingest handles: the metric queue closes
    // when they are done.
    scrape.join().await;
    anomaly_runner.await.context("anomaly runner failed")?;
    if let Some(task) = rule_runner {
        task.await.context("rule evaluation failed")?;
    }
    if let Some(task) = alert_dispatcher {
        task.await.context("the alert dispatcher failed")?;
    }
    pattern_rule_runner
        .await
        .context("pattern rule evaluation failed")?;
    if let Some(task) = incident_runner {
        task.await.context("the incident runner failed")?;
    }
    reloader.await.context("the SIGHUP handler failed")?;
    // Its last export goes through the metric queue, which closes after it.
    if let Some(task) = connector_task {
        task.await.context("span connectors failed")?;
    }
    // Every ingest handle is gone now: the writer drains the queue and closes the indexer's.
    logs.writer.await.context("wal writer failed")?;
    spans.writer.await.context("traces wal writer failed")?;
    // The taps on the queues above held the last fact handles.
    facts.writer.await.context("topology wal writer failed")?;
    metric_writer.await.context("metric writer failed")?;
    maintenance.await.context("tsdb maintenance failed")?;
    // A head snapshot only shortens the next start's replay: if it cannot be written (a full
    // disk), the TSDB's WAL still holds every acknowledged sample, so shutdown goes on.
    match tokio::task::spawn_blocking(move || tsdb.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "tsdb head snapshot failed; the next start replays its wal")
        }
        Err(e) => tracing::error!(error = %e, "tsdb flush task failed"),
    }
    for (name, thread) in [
        ("indexer", logs.indexer),
        ("trace indexer", spans.indexer),
        ("topology", facts.indexer),
    ] {
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .with_context(|| format!("{name} join failed"))?
            .map_err(|_| anyhow::anyhow!("{name} thread panicked"))?;
    }
    tracing::info!("sightline stopped");
    Ok(())
}

/// How one signal's durable path is started: WAL replay into the store, then the store's
/// indexing thread and the WAL writer (group commit) that feeds it.
struct WalPipeline {
    name: &'static str,
    wal_options: WalOptions,
    runner_config: SinkRunnerConfig,
    group_commit_delay: std::time::Duration,
    stopping: Arc<AtomicBool>,
    metrics: IngestMetrics,
}

/// A started pipeline: the writer ends once every ingest handle is dropped and its queue
/// drained, and then the indexing thread once it has committed what it was sent.
struct RunningPipeline {
    writer: tokio::task::JoinHandle<()>,
    indexer: std::thread::JoinHandle<()>,
}

impl WalPipeline {
    async fn start<B, S>(
        self,
        wal_dir: std::path::PathBuf,
        store: Arc<S>,
        rx: sightline_ingest::QueueReceiver<B>,
        progress: Arc<SinkProgress>,
        wal_health: Arc<Health>,
    ) -> anyhow::Result<RunningPipeline>
    where
        B: sightline_ingest::WalCodec + Send + Sync + 'static,
        S: sightline_ingest::Sink<B> + 'static,
    {
        let name = self.name;
        // Replay before the writer starts: requests that arrive meanwhile wait in the queue.
        let replay_store = store.clone();
        let options = self.wal_options;
        let (wal, recovered) = tokio::task::spawn_blocking(move || {
            sightline_ingest::recover::<B, _>(&wal_dir, options, replay_store.as_ref())
        })
        .await
        .with_context(|| format!("{name} wal replay task failed"))?
        .with_context(|| format!("cannot replay the {name} wal"))?;
        progress.set_durable(recovered.durable_seq);

        let (to_sink, sink_rx) = sightline_ingest::sequenced_channel();
        let indexer = {
            let progress = progress.clone();
            let metrics = self.metrics.clone();
            let stopping = self.stopping.clone();
            let runner_config = self.runner_config.clone();
            std::thread::Builder::new()
                .name(format!("indexer-{name}"))
                .spawn(move || {
                    sightline_ingest::run_sink(
                        store.as_ref(),
                        sink_rx,
                        &progress,
                        &runner_config,
                        stopping,
                        &metrics,
                        crate::now_ns,
                    )
                })
                .with_context(|| format!("cannot start the {name} indexer thread"))?
        };
        let writer = tokio::spawn(sightline_ingest::run_wal_writer(
            wal,
            rx,
            to_sink,
            progress,
            wal_health,
            WalWriterConfig::new(self.group_commit_delay),
            self.metrics,
        ));
        Ok(RunningPipeline { writer, indexer })
    }
}

/// Reloads the rule files and the Alertmanager configuration on SIGHUP (as Prometheus and
/// Alertmanager do) until `stop`; a set with problems is logged and the running one kept.
async fn reload_on_sighup(
    rules: Arc<crate::rules::Rules>,
    alertmanager: Arc<crate::alertmanager::AlertManager>,
    mut stop: watch::Receiver<bool>,
) {
    #[cfg(unix)]
    {
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let r = rules.clone();
            match tokio::task::spawn_blocking(move || r.reload()).await {
                Ok(Ok(n)) => tracing::info!(rules = n, "rules reloaded on SIGHUP"),
                Ok(Err(e)) => {
                    tracing::error!(error = %format!("{e:#}"), "rules not reloaded; the running ones are kept")
                }
                Err(e) => tracing::error!(error = %e, "rule reload task failed"),
            }
            let am = alertmanager.clone();
            match tokio::task::spawn_blocking(move || am.reload()).await {
                Ok(Ok(())) => tracing::info!("alertmanager configuration reloaded on SIGHUP"),
                Ok(Err(e)) => {
                    tracing::error!(error = %format!("{e:#}"), "alertmanager configuration not reloaded; the running one is kept")
                }
                Err(e) => tracing::error!(error = %e, "alertmanager reload task failed"),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = stop.wait_for(|s| *s).await;
}

/// `queue` with the topology's tap in front when the topology learns from ingest.
fn tapped<B, R>(
    queue: LocalQueue<B, R>,
    observer: &Arc<Observer>,
    learn: bool,
) -> Arc<dyn sightline_ingest::IngestQueue<B, R>>
where
    B: Send + std::fmt::Debug + 'static,
    R: Send + std::fmt::Debug + 'static,
    Observer: sightline_ingest::Tap<B>,
{
    if learn {
        Arc::new(TappedQueue::new(Arc::new(queue), observer.clone()))
    } else {
        Arc::new(queue)
    }
}

/// The topology store's settings from `[topology]`.
fn topology_config(config: &Config) -> TopologyConfig {
    let t = &config.topology;
    TopologyConfig {
        stale_after: t.stale_after,
        resolution: t.resolution,
        max_entities: t.max_entities,
        max_events: t.max_events,
        retention: t.retention,
    }
}

/// Reads the declared inventory, logs its problems (each names file, line and entity) and
/// writes its good entries through the topology WAL, withdrawing what an earlier version of
/// the file declared and this one does not. A file that cannot be read is logged and the
/// graph keeps what it had: the server runs on.
async fn load_inventory(
    path: &std::path::Path,
    topology: &Topology,
    facts: &IngestHandle<FactBatch>,
) {
    let text = match tokio::fs::read_to_string(path).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot read the topology inventory");
            return;
        }
    };
    let name = path.display().to_string();
    let tenant = sightline_model::TenantId::default_tenant();
    let graph = topology.graph(&tenant);
    let (checked, withdrawn) = {
        let g = sightline_topology::store::read_graph(&graph);
        let checked = inventory::check_file(&name, &text, &|id| g.entity(id).is_some());
        let withdrawn = inventory::withdrawn(&g, &format!("file:{name}"), &checked.facts);
        (checked, withdrawn)
    };
    for d in &checked.diagnostics {
        match d.severity {
            inventory::Severity::Error => tracing::error!("topology inventory: {d}"),
            inventory::Severity::Warning => tracing::warn!("topology inventory: {d}"),
        }
    }
    let declared = checked.facts.len();
    let mut all = withdrawn;
    all.extend(checked.facts);
    if all.is_empty() {
        return;
    }
    match facts.ingest(FactBatch { tenant, facts: all }).await {
        Ok(()) => tracing::info!(path = %name, declared, "topology inventory loaded"),
        Err(e) => tracing::error!(path = %name, error = %e, "cannot write the topology inventory"),
    }
}

/// TSDB housekeeping every `interval` until `stop` turns true: head → blocks, compaction,
/// retention, WAL truncation (the work itself is `Tsdb::maintain`).
async fn run_tsdb_maintenance(
    tsdb: Arc<Tsdb>,
    interval: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let tsdb = tsdb.clone();
        let now_ms = crate::now_ns() / 1_000_000;
        match tokio::task::spawn_blocking(move || tsdb.maintain(now_ms)).await {
            Ok(Ok(report)) => tracing::debug!(?report, "tsdb maintenance done"),
            Ok(Err(e)) => tracing::warn!(error = %e, "tsdb maintenance failed"),
            Err(e) => tracing::error!(error = %e, "tsdb maintenance task failed"),
        }
    }
}

fn display_opt(addr: Option<SocketAddr>) -> String {
    addr.map_or_else(|| "off".to_string(), |a| a.to_string())
}
