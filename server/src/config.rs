//! Configuration: defaults, then a TOML file, then `SIGHTLINE_*` environment variables, then
//! command-line flags (each layer overrides the one before).
//!
//! Each receiver owns its configuration type (`[syslog]`, `[loki_push]`, `[remote_write]`,
//! `[otlp]`, like `[[scrape_configs]]`): this file embeds them and adds only what is the
//! server's (listen addresses, the data directory, the stores' and engines' settings). Keys
//! that used to live elsewhere are still read ([`Config::apply_moved_keys`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use sightline_collector::loki_push::LokiPushConfig;
use sightline_collector::otlp::OtlpConfig;
use sightline_collector::remote_write::RemoteWriteConfig;
use sightline_collector::scrape::ScrapeConfig;
use sightline_collector::syslog::SyslogConfig;
use sightline_model::TenantId;

/// The query APIs' body limit when `limits.max_request_bytes` is not given.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 64 << 20;

/// The whole configuration. Every field has a default, so an empty file is valid.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub wal: WalConfig,
    pub indexer: IndexerConfig,
    pub traces: TracesConfig,
    pub topology: TopologySection,
    pub alerting: AlertingSection,
    pub incidents: IncidentsSection,
    pub limits: LimitsConfig,
    pub tsdb: TsdbConfig,
    pub promql: PromqlConfig,
    pub anomaly: AnomalyConfig,
    /// The syslog receiver (its addresses come from `server.syslog_addr`).
    pub syslog: SyslogConfig,
    /// The Loki push receiver (`/loki/api/v1/push`).
    pub loki_push: LokiPushConfig,
    /// The remote-write receiver (`/api/v1/write`).
    pub remote_write: RemoteWriteConfig,
    /// The OTLP receivers (gRPC and HTTP).
    pub otlp: OtlpConfig,
    /// Prometheus-style scrape jobs (`[[scrape_configs]]`).
    pub scrape_configs: Vec<ScrapeConfig>,
    /// The server scraping its own `/metrics`, as Prometheus does.
    pub self_scrape: SelfScrapeConfig,
}

/// A scrape job, `job="sightline"`, of the server's own `/metrics` on its HTTP address, so
/// that a fresh server has `up` and its own metrics to query. A `[[scrape_configs]]` job
/// named `sightline` takes its place.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SelfScrapeConfig {
    pub enabled: bool,
    /// How often (Prometheus's own example configuration scrapes itself every 15s).
    #[serde(with = "humantime_serde_compat")]
    pub interval: Duration,
}

impl Default for SelfScrapeConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(15),
        }
    }
}

/// The job name of the self-scrape.
pub const SELF_SCRAPE_JOB: &str = "sightline";

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub http_addr: SocketAddr,
    pub otlp_grpc_addr: SocketAddr,
    pub otlp_http_addr: SocketAddr,
    /// Syslog over TCP and UDP on the same address.
    pub syslog_addr: SocketAddr,
    /// Moved to `syslog.tenant`; still read.
    pub syslog_tenant: Option<TenantId>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WalConfig {
    /// Longest time a write waits for others to share its fsync (group commit).
    #[serde(with = "humantime_serde_compat")]
    pub group_commit_delay: Duration,
    pub segment_bytes: u64,
}

/// `[traces]`: the span store. Spans are committed with the logs' `indexer.commit_interval`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TracesConfig {
    /// Time window of one span split (spans go to the split of their start time).
    #[serde(with = "humantime_serde_compat")]
    pub split_window: Duration,
    /// Indexing memory per open span split writer.
    pub writer_memory_bytes: usize,
    pub max_open_writers: usize,
    /// Delete span splits older than this; absent keeps spans forever.
    #[serde(with = "humantime_serde_compat::option")]
    pub retention: Option<Duration>,
    /// Derive span metrics and the service graph from received spans (into the TSDB).
    pub span_metrics: bool,
    /// How often derived series are written (the connectors' `metrics_flush_interval`).
    #[serde(with = "humantime_serde_compat")]
    pub metrics_flush_interval: Duration,
    /// Span-metric dimension sets (service, span name, kind, status) per tenant.
    pub max_span_metric_series: usize,
    /// Service graph: client and server spans waiting for their other side, per tenant.
    pub service_graph_max_items: usize,
    /// Service graph: how long one side waits for the other.
    #[serde(with = "humantime_serde_compat")]
    pub service_graph_wait: Duration,
}

impl Default for TracesConfig {
    fn default() -> Self {
        Self {
            split_window: Duration::from_secs(3600),
            writer_memory_bytes: 64 << 20,
            max_open_writers: 2,
            retention: None,
            span_metrics: true,
            metrics_flush_interval: Duration::from_secs(15),
            max_span_metric_series: 10_000,
            service_graph_max_items: 100_000,
            service_graph_wait: Duration::from_secs(30),
        }
    }
}

/// `[alerting]`: Prometheus rule files evaluated by the server.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AlertingSection {
    /// Rule files, or directories whose `*.yml` / `*.yaml` files are loaded.
    pub rule_files: Vec<PathBuf>,
    /// Load the rule packs of the repository's `rules/` (hosts, containers, services' RED,
    /// Sightline's own health), built into the binary, besides `rule_files`.
    pub rule_packs: bool,
    /// SLO specs (`sightline rules slo`'s format), compiled into rules at load (files, or
    /// directories of `*.yml` / `*.yaml`).
    pub slo_files: Vec<PathBuf>,
    /// Rule files in Loki's ruler format: the same groups, with LogQL metric queries
    /// evaluated over the `default` tenant's logs (files, or directories).
    pub logql_rule_files: Vec<PathBuf>,
    /// Alerts on log patterns (`[[alerting.pattern_rules]]`): a pattern seen for the first
    /// time, or one whose rate is far above its usual.
    pub pattern_rules: Vec<PatternRuleConfig>,
    /// How often a group without its own `interval` is evaluated (Prometheus's
    /// `evaluation_interval`).
    #[serde(with = "humantime_serde_compat")]
    pub evaluation_interval: Duration,
    /// Labels `$externalLabels` gives templates (Prometheus's `external_labels`).
    pub external_labels: std::collections::BTreeMap<String, String>,
    /// What `$externalURL` gives templates, and notifications' `externalURL`.
    pub external_url: String,
    /// An Alertmanager configuration file (routes, receivers, inhibition, time
    /// intervals) for the built-in alert manager; without one, alerts and silences work
    /// and nothing is sent.
    pub alertmanager_config: Option<PathBuf>,
}

impl Default for AlertingSection {
    fn default() -> Self {
        Self {
            rule_files: Vec::new(),
            rule_packs: true,
            slo_files: Vec::new(),
            logql_rule_files: Vec::new(),
            pattern_rules: Vec::new(),
            evaluation_interval: Duration::from_secs(60),
            external_labels: Default::default(),
            external_url: String::new(),
            alertmanager_config: None,
        }
    }
}

/// What a pattern rule watches for.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PatternRuleKind {
    /// A pattern the miner first saw within `window`.
    New,
    /// A pattern whose rate over `window` is at least `factor` times its rate over the
    /// `baseline` before it.
    Surge,
}

/// `[[alerting.pattern_rules]]`: an alert on the log patterns of the streams a selector
/// picks (`default` tenant), per service and pattern.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PatternRuleConfig {
    /// The alert's name (`alertname`).
    pub name: String,
    /// A LogQL stream selector: `{service_name=~".+"}`.
    pub selector: String,
    pub kind: PatternRuleKind,
    /// Only patterns whose template matches this regex (e.g. `(?i)error|exception`).
    #[serde(default)]
    pub template_match: Option<String>,
    /// The recent window.
    #[serde(with = "humantime_serde_compat", default = "default_pattern_window")]
    pub window: Duration,
    /// The usual, before the window (`surge`).
    #[serde(with = "humantime_serde_compat", default = "default_pattern_baseline")]
    pub baseline: Duration,
    /// How many times its usual rate a surging pattern must reach (`surge`).
    #[serde(default = "default_pattern_factor")]
    pub factor: f64,
    /// Lines of the pattern in the window, at least.
    #[serde(default = "default_pattern_min_count")]
    pub min_count: u64,
    /// How often the rule is evaluated.
    #[serde(with = "humantime_serde_compat", default = "default_pattern_interval")]
    pub interval: Duration,
    /// Labels added to the alerts (e.g. `severity`).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

fn default_pattern_window() -> Duration {
    Duration::from_secs(300)
}
fn default_pattern_baseline() -> Duration {
    Duration::from_secs(3600)
}
fn default_pattern_factor() -> f64 {
    5.0
}
fn default_pattern_min_count() -> u64 {
    3
}
fn default_pattern_interval() -> Duration {
    Duration::from_secs(60)
}

/// `[topology]`: the graph of the estate (`docs/api.md`, topology).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TopologySection {
    /// Learn the topology from ingested signals (the API and declarations work either way).
    pub enabled: bool,
    /// The declared inventory (TOML), read at start; its problems are logged and the good
    /// entries kept.
    pub inventory: Option<PathBuf>,
    /// An entity not seen for this long is no longer live (it stays in history).
    #[serde(with = "humantime_serde_compat")]
    pub stale_after: Duration,
    /// A repeated observation is written again this long after the last: the resolution
    /// of last-seen times.
    #[serde(with = "humantime_serde_compat")]
    pub resolution: Duration,
    /// How often the graph's snapshot is written (the WAL holds what came after).
    #[serde(with = "humantime_serde_compat")]
    pub snapshot_interval: Duration,
    /// Entities (all tenants) beyond which new ones are refused.
    pub max_entities: usize,
    /// Change events kept per tenant.
    pub max_events: usize,
    /// Entities not seen for this long are forgotten (declared ones stay).
    #[serde(with = "humantime_serde_compat")]
    pub retention: Duration,
}

/// `[incidents]`: firing alerts grouped into incidents through the topology
/// (`docs/api.md`, incidents).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IncidentsSection {
    pub enabled: bool,
    /// How often the firing alerts are grouped.
    #[serde(with = "humantime_serde_compat")]
    pub interval: Duration,
    /// Relations between an alert's entity and an incident's at most.
    pub hops: usize,
    /// An alert joins an incident that had a firing alert this recently.
    #[serde(with = "humantime_serde_compat")]
    pub window: Duration,
    /// An incident none of whose alerts fired for this long resolves.
    #[serde(with = "humantime_serde_compat")]
    pub resolve_after: Duration,
    /// Resolved incidents kept per tenant.
    pub keep_resolved: usize,
    /// The analysis takes the symptom's onset this long before its first alert began (an
    /// alert fires after its `for`).
    #[serde(with = "humantime_serde_compat")]
    pub onset_lead: Duration,
    /// History the analysis compares with.
    #[serde(with = "humantime_serde_compat")]
    pub lookback: Duration,
}

impl Default for IncidentsSection {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(10),
            hops: 2,
            window: Duration::from_secs(15 * 60),
            resolve_after: Duration::from_secs(5 * 60),
            keep_resolved: 1_000,
            onset_lead: Duration::from_secs(5 * 60),
            lookback: Duration::from_secs(24 * 3600),
        }
    }
}

impl Default for TopologySection {
    fn default() -> Self {
        Self {
            enabled: true,
            inventory: None,
            stale_after: Duration::from_secs(600),
            resolution: Duration::from_secs(60),
            snapshot_interval: Duration::from_secs(30),
            max_entities: 2_000_000,
            max_events: 100_000,
            retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IndexerConfig {
    /// How often new documents are committed (and become searchable).
    #[serde(with = "humantime_serde_compat")]
    pub commit_interval: Duration,
    #[serde(with = "humantime_serde_compat")]
    pub split_window: Duration,
    /// Indexing memory per open split writer.
    pub writer_memory_bytes: usize,
    pub max_open_writers: usize,
    pub writer_threads: usize,
    /// Delete splits older than this; absent keeps logs forever.
    #[serde(with = "humantime_serde_compat::option")]
    pub retention: Option<Duration>,
    /// Mine each line's log pattern at ingest (`/api/v1/patterns`, `| pattern_id="…"`).
    pub patterns: bool,
    /// Extra variable masks for pattern mining (regexes, `regex` crate syntax), applied
    /// after the built-in ones (numbers, hex, IPs, UUIDs, paths, durations, sizes, dates).
    pub pattern_masks: Vec<String>,
    /// Patterns kept per tenant and service; beyond it lines merge into the most similar
    /// pattern or the least recently seen one is evicted.
    pub max_patterns_per_service: usize,
}

impl IndexerConfig {
    /// The miner configuration, `None` when mining is off.
    pub fn miner_config(&self) -> Option<sightline_patterns::MinerConfig> {
        if !self.patterns {
            return None;
        }
        let mut config = sightline_patterns::MinerConfig {
            max_patterns: self.max_patterns_per_service,
            ..Default::default()
        };
        config
            .masks
            .extend(self.pattern_masks.iter().enumerate().map(|(i, pattern)| {
                sightline_patterns::MaskRule::Regex {
                    name: format!("indexer.pattern_masks[{i}]"),
                    pattern: pattern.clone(),
                }
            }));
        Some(config)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Batches waiting for the WAL at most; beyond it clients get 429/RESOURCE_EXHAUSTED.
    pub ingest_queue_batches: usize,
    /// Largest form body of a query request (each receiver has its own limits in its
    /// section). Also sets `remote_write.max_body_bytes` when given, as it always did.
    pub max_request_bytes: Option<usize>,
    /// Moved to `syslog.max_message_bytes`; still read.
    pub max_syslog_message_bytes: Option<usize>,
    /// Most series a metric query may return.
    pub max_query_series: usize,
    /// A query (LogQL or PromQL) running longer is stopped with a timeout error
    /// (Prometheus's `--query.timeout`).
    #[serde(with = "humantime_serde_compat")]
    pub query_timeout: Duration,
    /// Queries evaluated at once (Prometheus `--query.max-concurrency`); 0: one per core
    /// but one (at least one), leaving a core to ingest. They run at a lower priority than
    /// ingest.
    pub max_concurrent_queries: usize,
    /// Queries waiting for a turn at most; beyond it 429.
    pub max_queued_queries: usize,
    /// Open connections across every TCP listener at most (Prometheus's
    /// `--web.max-connections` is per listener); beyond it new connections are closed.
    pub max_connections: usize,
    /// A connection silent this long is closed. Must exceed `query_timeout`: a connection
    /// waiting for its query's answer is silent.
    #[serde(with = "humantime_serde_compat")]
    pub idle_timeout: Duration,
    /// An HTTP/1 request head must arrive within this (Loki's `http_server_read_timeout`).
    #[serde(with = "humantime_serde_compat")]
    pub header_read_timeout: Duration,
    /// A request body that sends nothing for this long fails the request.
    #[serde(with = "humantime_serde_compat")]
    pub body_read_timeout: Duration,
}

/// The metric store (`<data_dir>/tsdb`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TsdbConfig {
    /// Time span of one on-disk block cut from the head (Prometheus: 2h).
    #[serde(with = "humantime_serde_compat")]
    pub block_duration: Duration,
    /// Blocks entirely older than this are deleted.
    #[serde(with = "humantime_serde_compat")]
    pub retention: Duration,
    /// A sample up to this much older than its series' newest is still accepted.
    #[serde(with = "humantime_serde_compat")]
    pub out_of_order_window: Duration,
    /// Samples further ahead of the clock are refused (Mimir's `creation_grace_period`).
    #[serde(with = "humantime_serde_compat")]
    pub future_grace: Duration,
    /// Series per tenant at most; samples of new series beyond it are refused (400).
    pub max_series_per_tenant: usize,
    /// Metric write requests waiting for the TSDB's WAL at most (then 429).
    pub ingest_queue_batches: usize,
    /// How often head data is cut into blocks, blocks compacted and retention applied.
    #[serde(with = "humantime_serde_compat")]
    pub maintain_interval: Duration,
}

/// The PromQL engine.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PromqlConfig {
    /// How far back an instant selector looks for a sample (Prometheus: 5m).
    #[serde(with = "humantime_serde_compat")]
    pub lookback_delta: Duration,
    /// Samples one query may hold at most (Prometheus's `--query.max-samples`).
    pub max_samples: usize,
    /// `prometheus3` (default): Prometheus 3 — range selectors and lookback exclude their
    /// start, rates extrapolate as since 2.51; `prometheus2`: Prometheus 2.42 — they include
    /// it, and rates of counters starting inside the window extrapolate as before 2.51
    /// (`docs/metrics.md`).
    pub range_semantics: RangeSemantics,
}

/// Continuous anomaly scoring of metric series.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalyConfig {
    /// How often every rule is evaluated (each evaluation is one point per series).
    #[serde(with = "humantime_serde_compat")]
    pub interval: Duration,
    /// Points a new series only learns from before it is scored (NAB's probationary
    /// period; the detector's default is 750).
    pub warmup: u32,
    pub rules: Vec<AnomalyRule>,
}

/// One watched expression: every series of its instant result gets its own detector.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnomalyRule {
    /// Unique name, the `anomaly_rule` label of the output series.
    pub name: String,
    /// A PromQL expression giving an instant vector (or a scalar).
    pub expr: String,
    #[serde(default = "default_tenant")]
    pub tenant: String,
}

fn default_tenant() -> String {
    "default".into()
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(15),
            warmup: sightline_anomaly::DetectorConfig::default().warmup,
            rules: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RangeSemantics {
    Prometheus3,
    Prometheus2,
}

impl Default for TsdbConfig {
    fn default() -> Self {
        Self {
            block_duration: Duration::from_secs(2 * 3600),
            retention: Duration::from_secs(15 * 86400),
            out_of_order_window: Duration::from_secs(600),
            future_grace: Duration::from_secs(600),
            max_series_per_tenant: 1_000_000,
            ingest_queue_batches: 256,
            maintain_interval: Duration::from_secs(60),
        }
    }
}

impl Default for PromqlConfig {
    fn default() -> Self {
        Self {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            range_semantics: RangeSemantics::Prometheus3,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./sightline-data"),
            server: ServerConfig::default(),
            wal: WalConfig::default(),
            indexer: IndexerConfig::default(),
            traces: TracesConfig::default(),
            topology: TopologySection::default(),
            alerting: AlertingSection::default(),
            incidents: IncidentsSection::default(),
            limits: LimitsConfig::default(),
            tsdb: TsdbConfig::default(),
            promql: PromqlConfig::default(),
            anomaly: AnomalyConfig::default(),
            syslog: SyslogConfig::default(),
            loki_push: LokiPushConfig::default(),
            remote_write: RemoteWriteConfig::default(),
            otlp: OtlpConfig::default(),
            scrape_configs: Vec::new(),
            self_scrape: SelfScrapeConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            http_addr: ([127, 0, 0, 1], 7070).into(),
            otlp_grpc_addr: ([127, 0, 0, 1], 4317).into(),
            otlp_http_addr: ([127, 0, 0, 1], 4318).into(),
            syslog_addr: ([127, 0, 0, 1], 5514).into(),
            syslog_tenant: None,
        }
    }
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            group_commit_delay: Duration::from_millis(2),
            segment_bytes: 64 << 20,
        }
    }
}

impl Default for IndexerConfig {
    fn default() -> Self {
        Self {
            commit_interval: Duration::from_millis(500),
            split_window: Duration::from_secs(3600),
            writer_memory_bytes: 64 << 20,
            max_open_writers: 4,
            writer_threads: 1,
            retention: None,
            patterns: true,
            pattern_masks: Vec::new(),
            max_patterns_per_service: 2_000,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            ingest_queue_batches: 256,
            max_request_bytes: None,
            max_syslog_message_bytes: None,
            max_query_series: 10_000,
            query_timeout: Duration::from_secs(120),
            max_concurrent_queries: 0,
            max_queued_queries: 256,
            max_connections: 4096,
            idle_timeout: Duration::from_secs(180),
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Command-line and environment overrides of the most used settings.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// Configuration file (TOML).
    #[arg(long, short = 'c', env = "SIGHTLINE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where all data lives.
    #[arg(long, env = "SIGHTLINE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Main HTTP address (query APIs, Loki push, /metrics).
    #[arg(long, env = "SIGHTLINE_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// OTLP over gRPC.
    #[arg(long, env = "SIGHTLINE_OTLP_GRPC_ADDR")]
    pub otlp_grpc_addr: Option<SocketAddr>,
    /// OTLP over HTTP.
    #[arg(long, env = "SIGHTLINE_OTLP_HTTP_ADDR")]
    pub otlp_http_addr: Option<SocketAddr>,
    /// Syslog over TCP and UDP.
    #[arg(long, env = "SIGHTLINE_SYSLOG_ADDR")]
    pub syslog_addr: Option<SocketAddr>,
    /// Scrape the server's own /metrics as job "sightline" (`self_scrape.enabled`).
    #[arg(long, env = "SIGHTLINE_SELF_SCRAPE", value_name = "BOOL")]
    pub self_scrape: Option<bool>,
    /// Load the built-in rule packs of `rules/` (`alerting.rule_packs`).
    #[arg(long, env = "SIGHTLINE_RULE_PACKS", value_name = "BOOL")]
    pub rule_packs: Option<bool>,
}

impl Config {
    /// Parses and validates a TOML file.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let mut config: Config =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        config.apply_moved_keys();
        config.validate()?;
        Ok(config)
    }

    /// Applies the keys that moved into a receiver's section, so that files written for an
    /// earlier version keep their meaning: `server.syslog_tenant` → `syslog.tenant`,
    /// `limits.max_syslog_message_bytes` → `syslog.max_message_bytes`, and
    /// `limits.max_request_bytes`, which also limited remote write bodies.
    pub fn apply_moved_keys(&mut self) {
        if let Some(tenant) = self.server.syslog_tenant.take() {
            self.syslog.default_tenant = tenant;
        }
        if let Some(bytes) = self.limits.max_syslog_message_bytes.take() {
            self.syslog.max_message_bytes = bytes;
        }
        if let Some(bytes) = self.limits.max_request_bytes {
            self.remote_write.max_body_bytes = bytes;
        }
    }

    /// The scrape jobs to run: `[[scrape_configs]]`, and the self-scrape of `http_addr` (the
    /// bound address: port 0 resolved) when enabled and no job of that name is configured.
    pub fn scrape_jobs(&self, http_addr: SocketAddr) -> Vec<ScrapeConfig> {
        let mut jobs = self.scrape_configs.clone();
        let taken = jobs.iter().any(|j| j.job_name == SELF_SCRAPE_JOB);
        if self.self_scrape.enabled && !taken {
            // A wildcard listen address is not one to connect to; loopback reaches it.
            let mut target = http_addr;
            if target.ip().is_unspecified() {
                target.set_ip(match target {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            let mut job = ScrapeConfig::new(SELF_SCRAPE_JOB, vec![target.to_string()]);
            job.scrape_interval = self.self_scrape.interval;
            jobs.push(job);
        }
        jobs
    }

    /// The body limit of the query APIs.
    pub fn max_request_bytes(&self) -> usize {
        self.limits
            .max_request_bytes
            .unwrap_or(DEFAULT_MAX_REQUEST_BYTES)
    }

    /// Defaults or the file, then environment and flags (clap merges those two, flags first).
    pub fn load(overrides: &Overrides) -> anyhow::Result<Self> {
        let mut config = match &overrides.config {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        if let Some(v) = &overrides.data_dir {
            config.data_dir = v.clone();
        }
        if let Some(v) = overrides.http_addr {
            config.server.http_addr = v;
        }
        if let Some(v) = overrides.otlp_grpc_addr {
            config.server.otlp_grpc_addr = v;
        }
        if let Some(v) = overrides.otlp_http_addr {
            config.server.otlp_http_addr = v;
        }
        if let Some(v) = overrides.syslog_addr {
            config.server.syslog_addr = v;
        }
        if let Some(v) = overrides.rule_packs {
            config.alerting.rule_packs = v;
        }
        if let Some(v) = overrides.self_scrape {
            config.self_scrape.enabled = v;
        }
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.indexer.commit_interval.is_zero() {
            bail!("indexer.commit_interval must be greater than zero");
        }
        if self.indexer.split_window < Duration::from_secs(60) {
            bail!("indexer.split_window must be at least 1m");
        }
        if self.indexer.writer_memory_bytes < 15_000_000 {
            bail!("indexer.writer_memory_bytes must be at least 15000000 (Tantivy's minimum)");
        }
        if let Some(miner) = self.indexer.miner_config() {
            sightline_patterns::PatternStore::new(miner)
                .map_err(|e| anyhow::anyhow!("indexer pattern settings: {e}"))?;
        }
        if self.tsdb.block_duration < Duration::from_secs(60) {
            bail!("tsdb.block_duration must be at least 1m");
        }
        if self.tsdb.ingest_queue_batches == 0 {
            bail!("tsdb.ingest_queue_batches must be at least 1");
        }
        if self.tsdb.maintain_interval.is_zero() {
            bail!("tsdb.maintain_interval must be greater than zero");
        }
        sightline_collector::scrape::validate_configs(&self.scrape_configs)
            .map_err(|e| anyhow::anyhow!("scrape_configs: {e}"))?;
        if self.alerting.evaluation_interval < Duration::from_secs(1) {
            bail!("alerting.evaluation_interval must be at least 1s");
        }
        if self.topology.snapshot_interval.is_zero() {
            bail!("topology.snapshot_interval must be greater than zero");
        }
        if self.topology.stale_after < self.topology.resolution {
            bail!("topology.stale_after must be at least topology.resolution");
        }
        if self.self_scrape.interval < Duration::from_secs(1) {
            bail!("self_scrape.interval must be at least 1s");
        }
        if self.anomaly.interval.is_zero() {
            bail!("anomaly.interval must be greater than zero");
        }
        let mut names = std::collections::HashSet::new();
        for (i, rule) in self.anomaly.rules.iter().enumerate() {
            if rule.name.is_empty() || !names.insert(rule.name.as_str()) {
                bail!(
                    "anomaly.rules[{i}]: name {:?} is empty or not unique",
                    rule.name
                );
            }
            sightline_model::TenantId::new(rule.tenant.clone())
                .with_context(|| format!("anomaly.rules[{i}].tenant"))?;
            sightline_promql::parse_expr(&rule.expr)
                .map_err(|e| anyhow::anyhow!("anomaly.rules[{i}].expr: {e}"))?;
        }
        if self.promql.lookback_delta.is_zero() {
            bail!("promql.lookback_delta must be greater than zero");
        }
        if self.limits.ingest_queue_batches == 0 {
            bail!("limits.ingest_queue_batches must be at least 1");
        }
        Ok(())
    }
}

/// `Duration` fields written as humantime strings (`"500ms"`, `"7d"`).
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }

    pub mod option {
        use super::*;

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            let s = String::deserialize(d)?;
            humantime::parse_duration(&s)
                .map(Some)
                .map_err(serde::de::Error::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_override_defaults_and_flags_override_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "data_dir = \"/tmp/x\"\n[server]\nhttp_addr = \"127.0.0.1:0\"\n[indexer]\ncommit_interval = \"250ms\"\nretention = \"7d\"\n",
        )
        .unwrap();
        let mut o = Overrides {
            config: Some(path),
            ..Default::default()
        };
        let c = Config::load(&o).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.indexer.commit_interval, Duration::from_millis(250));
        assert_eq!(c.indexer.retention, Some(Duration::from_secs(7 * 86400)));
        assert_eq!(c.server.otlp_http_addr.port(), 4318);
        o.http_addr = Some("127.0.0.1:9999".parse().unwrap());
        assert_eq!(Config::load(&o).unwrap().server.http_addr.port(), 9999);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[server]\nhttp_adr = \"x\"\n").unwrap();
        let err = Config::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("http_adr"), "{err}");
        std::fs::write(&path, "[indexer]\ncommit_interval = \"soon\"\n").unwrap();
        let err = Config::from_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("commit_interval") || err.contains("soon"),
            "{err}"
        );
    }

    #[test]
    fn receiver_sections_are_the_receivers_own_configs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[syslog]\ntenant = \"ops\"\nmax_message_bytes = 1024\n\
             [loki_push]\nmax_line_bytes = 100\n\
             [remote_write]\nmax_labels_per_series = 5\n\
             [otlp]\nmax_grpc_message_bytes = 1000\n",
        )
        .unwrap();
        let c = Config::from_file(&path).unwrap();
        assert_eq!(c.syslog.default_tenant.as_str(), "ops");
        assert_eq!(c.syslog.max_message_bytes, 1024);
        assert_eq!(c.loki_push.max_line_bytes, 100);
        assert_eq!(c.remote_write.max_labels_per_series, 5);
        assert_eq!(c.otlp.max_grpc_message_bytes, 1000);
        // Defaults are the receivers' own, and what the server used before.
        let d = Config::default();
        assert_eq!(d.remote_write.max_body_bytes, 64 << 20);
        assert_eq!(d.max_request_bytes(), 64 << 20);
        assert_eq!(d.syslog.max_message_bytes, 64 << 10);

        std::fs::write(&path, "[syslog]\ntenant = \"a/b\"\n").unwrap();
        let err = Config::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("tenant"), "{err}");
    }

    #[test]
    fn moved_receiver_keys_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[server]\nsyslog_tenant = \"legacy\"\n\
             [limits]\nmax_syslog_message_bytes = 2048\nmax_request_bytes = 4096\n",
        )
        .unwrap();
        let c = Config::from_file(&path).unwrap();
        assert_eq!(c.syslog.default_tenant.as_str(), "legacy");
        assert_eq!(c.syslog.max_message_bytes, 2048);
        assert_eq!(c.remote_write.max_body_bytes, 4096);
        assert_eq!(c.max_request_bytes(), 4096);
    }

    #[test]
    fn the_server_scrapes_itself_unless_disabled_or_replaced() {
        let mut config = Config::default();
        let jobs = config.scrape_jobs("0.0.0.0:7070".parse().unwrap());
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].job_name, "sightline");
        assert_eq!(jobs[0].static_configs[0].targets, ["127.0.0.1:7070"]);
        assert_eq!(jobs[0].scrape_interval, Duration::from_secs(15));
        sightline_collector::scrape::validate_configs(&jobs).unwrap();

        config.scrape_configs = vec![ScrapeConfig::new("sightline", vec!["h:1".into()])];
        let jobs = config.scrape_jobs("127.0.0.1:7070".parse().unwrap());
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].static_configs[0].targets, ["h:1"]);

        config.scrape_configs.clear();
        let o = Overrides {
            self_scrape: Some(false),
            ..Default::default()
        };
        let config = Config::load(&o).unwrap();
        assert!(
            config
                .scrape_jobs("127.0.0.1:1".parse().unwrap())
                .is_empty()
        );
    }

    #[test]
    fn pattern_masks_extend_the_builtin_ones_and_bad_regexes_are_named() {
        let mut config = Config::default();
        config.indexer.pattern_masks = vec![r"ORD-\d+".into()];
        let miner = config.indexer.miner_config().unwrap();
        assert_eq!(
            miner.masks.len(),
            sightline_patterns::default_masks().len() + 1
        );
        assert!(config.validate().is_ok());
        config.indexer.pattern_masks = vec!["(unclosed".into()];
        let err = format!("{:#}", config.validate().unwrap_err());
        assert!(err.contains("pattern_masks[0]"), "{err}");
        config.indexer.patterns = false;
        assert!(config.indexer.miner_config().is_none());
    }
}
