//! `sightline agent`: runs on each host and ships the cloud layer under the applications to a
//! Sightline server (issue 17).
//!
//! Threads, each with one job:
//! - **host metrics** ([`host_metrics`]): every `host.interval`, node_exporter's collectors
//!   (`sightline_collector::host`) become one remote-write request, labelled with the host's
//!   resource attributes ([`resource`]), appended to the disk buffer;
//! - **log files** ([`tail`]): every `poll`, new lines of the files the globs match become
//!   Loki push requests labelled like the host metrics plus `filename`, buffered, then
//!   checkpointed;
//! - **sender** ([`forward`]): posts the buffer's records in order, retrying with backoff
//!   while the server is away, so that an outage costs nothing but disk ([`buffer`]: a size
//!   cap, the oldest dropped and counted beyond it);
//! - **own metrics**: a small HTTP server for the agent's `/metrics` ([`metrics`]).
//!
//! Not yet here (issue 17's remaining scope): container (cgroup v2) and per-process metrics,
//! local scraping, journald, TLS client settings.

pub mod buffer;
pub mod config;
pub mod forward;
pub mod host_metrics;
pub mod metrics;
pub mod resource;
pub mod shutdown;
pub mod tail;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sightline_collector::host::{self, HostPaths};

pub use config::Config;

use buffer::Buffer;
use metrics::AgentMetrics;
use shutdown::Shutdown;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Config(String),
    #[error("opening the buffer in {dir}: {source}")]
    Buffer { dir: String, source: std::io::Error },
    #[error("listening on {addr} for /metrics: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running agent; [`Agent::stop`] stops it.
pub struct Agent {
    shutdown: Arc<Shutdown>,
    threads: Vec<JoinHandle<()>>,
    server_stop: Option<tokio::sync::oneshot::Sender<()>>,
    metrics_addr: SocketAddr,
    buffer: Arc<Buffer>,
}

impl Agent {
    /// Starts collecting, sending and serving `/metrics`.
    pub fn start(config: Config) -> Result<Agent, AgentError> {
        config.validate().map_err(AgentError::Config)?;
        let token = config.token().map_err(AgentError::Config)?;
        let collectors = config.host.collectors().map_err(AgentError::Config)?;
        let buffer = Arc::new(
            Buffer::open(&config.buffer.dir, config.buffer.max_bytes).map_err(|source| {
                AgentError::Buffer {
                    dir: config.buffer.dir.display().to_string(),
                    source,
                }
            })?,
        );
        let metrics = Arc::new(AgentMetrics::new());
        let shutdown = Arc::new(Shutdown::default());
        let attrs = resource::detect(
            &config.host.proc,
            |k| std::env::var(k).ok(),
            &config.resource,
        );
        let labels = resource::series_labels(&attrs, &config.labels);
        let labels_for_logs = labels.clone();
        tracing::info!(?attrs, "resource attributes");

        // Own /metrics first: a port in use is a configuration error to report at once.
        let listener =
            std::net::TcpListener::bind(config.listen).map_err(|source| AgentError::Listen {
                addr: config.listen,
                source,
            })?;
        let metrics_addr = listener.local_addr().map_err(|source| AgentError::Listen {
            addr: config.listen,
            source,
        })?;
        let (server_stop, stopped) = tokio::sync::oneshot::channel();
        let mut threads = Vec::new();
        {
            let (buffer, metrics) = (buffer.clone(), metrics.clone());
            threads.push(spawn("agent-http", move || {
                serve_metrics(listener, buffer, metrics, stopped)
            }));
        }
        {
            let target = forward::Target {
                base_url: config.server.url.clone(),
                tenant: config.server.tenant.clone(),
                token,
                timeout: config.server.timeout,
            };
            let (buffer, metrics, shutdown) = (buffer.clone(), metrics.clone(), shutdown.clone());
            threads.push(spawn("agent-send", move || {
                forward::run(buffer, target, metrics, shutdown)
            }));
        }
        if config.host.enabled {
            let paths = HostPaths {
                proc: config.host.proc.clone(),
                sys: config.host.sys.clone(),
                ..HostPaths::default()
            };
            let interval = config.host.interval;
            let (buffer, metrics, shutdown) = (buffer.clone(), metrics.clone(), shutdown.clone());
            threads.push(spawn("agent-host", move || {
                collect_host(
                    &paths,
                    &collectors,
                    &labels,
                    interval,
                    &buffer,
                    &metrics,
                    &shutdown,
                )
            }));
        }
        if !config.logs.is_empty() {
            let data_dir = config
                .buffer
                .dir
                .parent()
                .map(std::path::Path::to_path_buf)
                .unwrap_or_default();
            let mut tailers = Vec::new();
            for (i, logs) in config.logs.iter().enumerate() {
                let positions = data_dir.join(format!("positions-{i}"));
                tailers
                    .push(tail::Tailer::new(logs.clone(), positions).map_err(AgentError::Config)?);
            }
            let labels = labels_for_logs.clone();
            let (buffer, metrics, shutdown) = (buffer.clone(), metrics.clone(), shutdown.clone());
            threads.push(spawn("agent-tail", move || {
                tail_logs(tailers, &labels, &buffer, &metrics, &shutdown)
            }));
        }
        Ok(Agent {
            shutdown,
            threads,
            server_stop: Some(server_stop),
            metrics_addr,
            buffer,
        })
    }

    /// Where `/metrics` is served (the configured address, its port resolved).
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    pub fn buffer_stats(&self) -> buffer::Stats {
        self.buffer.stats()
    }

    /// Stops every thread; what is buffered stays on disk for the next start.
    pub fn stop(mut self) {
        self.shutdown.set();
        if let Some(s) = self.server_stop.take() {
            let _ = s.send(());
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .expect("spawning a thread")
}

/// The host-metrics loop: collect, encode, buffer; on a fixed schedule (a slow collection
/// delays the next one, it does not make collections pile up).
fn collect_host(
    paths: &HostPaths,
    collectors: &[host::Collector],
    labels: &std::collections::BTreeMap<String, String>,
    interval: Duration,
    buffer: &Buffer,
    metrics: &AgentMetrics,
    shutdown: &Shutdown,
) {
    let mut next = Instant::now();
    loop {
        let started = Instant::now();
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let (families, errors) = host::collect(paths, collectors);
        for e in &errors {
            tracing::debug!(error = %e, "host collector failed");
        }
        let request = host_metrics::write_request(&families, labels, ts);
        let samples = request.timeseries.len() as u64;
        let body = host_metrics::encode(&request);
        if let Err(e) = buffer.push(buffer::Kind::RemoteWrite, &body) {
            tracing::warn!(error = %e, "buffering host metrics failed; this collection is dropped");
            metrics.write_failed();
        }
        let names: Vec<&'static str> = errors.iter().map(|e| e.collector).collect();
        metrics.collected(samples, &names, started.elapsed().as_secs_f64());
        next += interval;
        let now = Instant::now();
        if next < now {
            next = now; // behind (a suspended host): start again from now
        }
        if shutdown.wait(next - now) {
            return;
        }
    }
}

/// The log loop: each tailer polled, each batch buffered then checkpointed.
fn tail_logs(
    mut tailers: Vec<tail::Tailer>,
    labels: &std::collections::BTreeMap<String, String>,
    buffer: &Buffer,
    metrics: &AgentMetrics,
    shutdown: &Shutdown,
) {
    let poll = tailers
        .iter()
        .map(|t| t.poll_interval())
        .min()
        .unwrap_or(Duration::from_millis(250));
    loop {
        for tailer in &mut tailers {
            for (batch, positions) in tailer.poll() {
                if batch.lines > 0 {
                    let body = batch.to_loki_json(labels);
                    if let Err(e) = buffer.push(buffer::Kind::LokiPush, &body) {
                        tracing::warn!(error = %e, lines = batch.lines,
                            "buffering log lines failed; they are dropped");
                        metrics.write_failed();
                    }
                }
                if let Err(e) = tailer.checkpoint(&positions) {
                    tracing::warn!(error = %e, "writing the log positions");
                }
            }
        }
        let mut sum = tail::TailStats::default();
        for t in &tailers {
            let s = t.stats;
            sum.files += s.files;
            sum.lines += s.lines;
            sum.bytes += s.bytes;
            sum.truncated_lines += s.truncated_lines;
            sum.invalid_utf8_lines += s.invalid_utf8_lines;
            sum.skipped_binary_files += s.skipped_binary_files;
            sum.unreadable_files += s.unreadable_files;
            sum.rotations += s.rotations;
        }
        metrics.set_tail(sum);
        if shutdown.wait(poll) {
            return;
        }
    }
}

fn serve_metrics(
    listener: std::net::TcpListener,
    buffer: Arc<Buffer>,
    metrics: Arc<AgentMetrics>,
    stopped: tokio::sync::oneshot::Receiver<()>,
) {
    use axum::routing::get;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the /metrics server");
            return;
        }
    };
    runtime.block_on(async move {
        let app = axum::Router::new()
            .route(
                "/metrics",
                get(move || {
                    let (buffer, metrics) = (buffer.clone(), metrics.clone());
                    async move {
                        (
                            [(
                                "content-type",
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )],
                            metrics.render(buffer.stats()),
                        )
                    }
                }),
            )
            .route("/healthz", get(|| async { "ok\n" }));
        let _ = listener.set_nonblocking(true);
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            tracing::error!("cannot serve /metrics on the bound socket");
            return;
        };
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
}
