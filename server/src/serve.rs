//! `sightline serve`: bind every listener (port 0 allowed; bound addresses are logged), replay
//! the WAL, run the pipeline, and on SIGTERM/ctrl-c stop accepting, flush, commit and exit.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use sightline_collector::{CollectorMetrics, IngestHandle};
use sightline_indexer::{LogStore, LogStoreConfig};
use sightline_model::TenantId;
use sightline_wal::WalOptions;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::loki::{self, QueryState};
use crate::config::{Config, Overrides};
use crate::metrics::ServerMetrics;
use crate::pipeline::{self, Watermarks};

pub fn serve(overrides: Overrides) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SIGHTLINE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = Config::load(&overrides)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sightline")
        .build()
        .context("cannot start the async runtime")?
        .block_on(run(config))
}

#[derive(Clone)]
struct HealthState {
    registry: Arc<Registry>,
    watermarks: Arc<Watermarks>,
}

async fn metrics_handler(State(s): State<HealthState>) -> impl IntoResponse {
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

async fn readyz(State(s): State<HealthState>) -> impl IntoResponse {
    if s.watermarks.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "replaying wal\n")
    }
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind the {what} listener on {addr}"))
}

async fn shutdown_signal() {
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

async fn run(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let mut registry = Registry::default();
    let collector_metrics = CollectorMetrics::register(&mut registry);
    let server_metrics = ServerMetrics::register(&mut registry);
    let registry = Arc::new(registry);

    let mut store_config = LogStoreConfig::new(config.data_dir.join("logs"));
    store_config.split_window = config.indexer.split_window;
    store_config.writer_memory_bytes = config.indexer.writer_memory_bytes;
    store_config.max_open_writers = config.indexer.max_open_writers;
    store_config.writer_threads = config.indexer.writer_threads;
    store_config.retention = config.indexer.retention;
    store_config.patterns = config.indexer.miner_config();
    let store = Arc::new(LogStore::open(store_config).context("cannot open the log store")?);

    let (ingest, ingest_rx) = IngestHandle::channel(config.limits.ingest_queue_batches);
    let watermarks = Arc::new(Watermarks::default());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    // Bind everything first so that a taken port fails fast and port 0 resolves.
    let http_listener = bind(config.server.http_addr, "http").await?;
    let otlp_http_listener = bind(config.server.otlp_http_addr, "otlp http").await?;
    let otlp_grpc_listener = bind(config.server.otlp_grpc_addr, "otlp grpc").await?;
    let syslog_tenant = TenantId::new(config.server.syslog_tenant.clone())?;
    let syslog = sightline_collector::syslog::start(
        sightline_collector::syslog::SyslogConfig {
            tcp_addr: Some(config.server.syslog_addr),
            udp_addr: Some(config.server.syslog_addr),
            default_tenant: syslog_tenant,
            max_message_bytes: config.limits.max_syslog_message_bytes,
            ..Default::default()
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

    let health = HealthState {
        registry: registry.clone(),
        watermarks: watermarks.clone(),
    };
    let main_router = Router::new()
        .merge(loki::router(QueryState {
            store: store.clone(),
            metrics: server_metrics.clone(),
            max_series: config.limits.max_query_series,
        }))
        .merge(sightline_collector::loki_push::router(
            sightline_collector::loki_push::LokiPushState::new(
                ingest.clone(),
                collector_metrics.clone(),
            ),
        ))
        .merge(
            Router::new()
                .route("/metrics", get(metrics_handler))
                .route("/healthz", get(|| async { "ok\n" }))
                .route("/readyz", get(readyz))
                .with_state(health),
        )
        .layer(DefaultBodyLimit::max(config.limits.max_request_bytes));
    let otlp_http_router = sightline_collector::otlp::http::router(
        sightline_collector::otlp::http::OtlpHttpState::new(
            ingest.clone(),
            collector_metrics.clone(),
        ),
    )
    .layer(DefaultBodyLimit::max(config.limits.max_request_bytes));

    let mut servers = tokio::task::JoinSet::new();
    for (name, listener, router) in [
        ("http", http_listener, main_router),
        ("otlp http", otlp_http_listener, otlp_http_router),
    ] {
        let mut stop = shutdown_rx.clone();
        servers.spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
                .with_context(|| format!("{name} server failed"))
        });
    }
    {
        let mut stop = shutdown_rx.clone();
        let service = sightline_collector::otlp::grpc::logs_service(
            sightline_collector::otlp::grpc::OtlpGrpcState::new(
                ingest.clone(),
                collector_metrics.clone(),
            ),
        );
        servers.spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(otlp_grpc_listener),
                    async move {
                        let _ = stop.wait_for(|s| *s).await;
                    },
                )
                .await
                .context("otlp grpc server failed")
        });
    }
    drop(ingest);

    // Replay before the writer starts: requests that arrive meanwhile wait in the queue.
    let wal_dir = config.data_dir.join("wal");
    let wal_options = WalOptions {
        segment_bytes: config.wal.segment_bytes,
    };
    let replay_store = store.clone();
    let wal = tokio::task::spawn_blocking(move || {
        pipeline::recover(&wal_dir, wal_options, &replay_store)
    })
    .await
    .context("wal replay task failed")??;
    watermarks
        .durable_seq
        .store(wal.next_seq() - 1, Ordering::Release);

    let (to_indexer, indexer_rx) = pipeline::indexer_queue();
    let indexer = {
        let store = store.clone();
        let watermarks = watermarks.clone();
        let metrics = server_metrics.clone();
        let interval = config.indexer.commit_interval;
        std::thread::Builder::new()
            .name("indexer".into())
            .spawn(move || pipeline::run_indexer(store, indexer_rx, interval, watermarks, metrics))
            .context("cannot start the indexer thread")?
    };
    let wal_writer = tokio::spawn(pipeline::run_wal_writer(
        wal,
        ingest_rx,
        to_indexer,
        config.wal.group_commit_delay,
        watermarks.clone(),
        server_metrics.clone(),
    ));
    watermarks.ready.store(true, Ordering::Release);
    tracing::info!("sightline ready");

    tokio::select! {
        _ = shutdown_signal() => tracing::info!("shutting down"),
        Some(result) = servers.join_next() => {
            // A server that stops on its own is a failure; bring the rest down cleanly.
            tracing::error!(?result, "a listener stopped unexpectedly");
        }
    }
    let _ = shutdown_tx.send(true);
    while let Some(result) = servers.join_next().await {
        if let Ok(Err(e)) = result {
            tracing::warn!(error = %e, "listener ended with an error");
        }
    }
    syslog.join().await;
    // Every ingest handle is gone now: the writer drains the queue and closes the indexer's.
    wal_writer.await.context("wal writer failed")?;
    tokio::task::spawn_blocking(move || indexer.join())
        .await
        .context("indexer join failed")?
        .map_err(|_| anyhow::anyhow!("indexer thread panicked"))?;
    tracing::info!("sightline stopped");
    Ok(())
}

fn display_opt(addr: Option<SocketAddr>) -> String {
    addr.map_or_else(|| "off".to_string(), |a| a.to_string())
}
