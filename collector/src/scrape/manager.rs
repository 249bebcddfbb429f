//! The scrape loops: one task per job (target discovery) and one per target (scraping), as in
//! Prometheus.
//!
//! **Cadence.** Each target is scraped every `scrape_interval`, starting at an offset within
//! the first interval derived from a hash of its URL and labels (deterministic jitter: the
//! load of many targets is spread, and a target keeps its phase across restarts). A scrape
//! that overruns skips ticks rather than bunching up.
//!
//! **Request.** `GET` with `Accept: application/openmetrics-text;version=1.0.0,
//! text/plain;version=0.0.4;q=0.5`, `Accept-Encoding: gzip`,
//! `X-Prometheus-Scrape-Timeout-Seconds`, the job's timeout over the whole exchange, the body
//! read up to `body_size_limit`, no proxy. Anything but `200 OK` fails the scrape.
//!
//! **Samples.** Each line's labels get the target labels: with `honor_labels`, a scraped
//! label wins a clash; without, the scraped one is renamed `exported_<name>` (more
//! `exported_` prefixes until free) and the target's is set. Then `metric_relabel_configs`.
//! The time is the scrape's start, unless `honor_timestamps` and the line has one. The
//! relabelled labels of each series are cached per target by the series text of the line, as
//! Prometheus does, so a steady target costs one lookup per line.
//!
//! **Per scrape** also: `up` (1/0), `scrape_duration_seconds`, `scrape_samples_scraped`
//! (lines parsed), `scrape_samples_post_metric_relabeling`, `scrape_series_added` (series
//! not in the previous successful scrape of the target: an approximation of Prometheus's
//! "new in the head"), with the target labels, at the scrape time. All of one scrape goes to
//! the ingest queue as one batch.
//!
//! **Failures and staleness.** A series written by the previous scrape and absent now gets a
//! staleness marker at the scrape time. A failed scrape (connection, timeout, status,
//! body too large, parse error, `sample_limit` exceeded) writes `up` 0 and staleness markers
//! for every series of the previous scrape, and nothing else (Prometheus's behaviour: a
//! partial page would make series flap). Series with explicit timestamps are not tracked for
//! staleness. A target that disappears from discovery gets markers for all its series, the
//! report series included; at shutdown no markers are written (the target is not gone).
//!
//! Counters use the signal `metrics`, source `scrape`: received = samples handed to the
//! ingest queue (report series and markers included), accepted / rejected as the store
//! answered.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sightline_model::{Labels, METRIC_NAME_LABEL, MetricBatch, MetricSeries, Sample, stale_nan};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::config::{ConfigError, ScrapeConfig, validate_configs};
use super::discovery::{self, FileDiscovery, Target};
use super::exposition::{self, Format, ParsedSample};
use super::relabel::{relabel, set};
use crate::{CollectorMetrics, MetricIngestHandle};

/// The `source` label of the scraper's counters.
pub const SOURCE: &str = "scrape";

/// What a scrape asks for, preferring OpenMetrics (as Prometheus does).
pub const ACCEPT_HEADER: &str =
    "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";

/// The series every scrape writes about itself.
pub const REPORT_SERIES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// Whether a target's last scrape worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetHealth {
    /// Not scraped yet.
    Unknown,
    Up,
    Down,
}

/// The state of one target, for a targets page or API.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetStatus {
    pub job: String,
    pub url: String,
    /// Final target labels.
    pub labels: Labels,
    pub health: TargetHealth,
    /// Why the last scrape failed.
    pub last_error: Option<String>,
    /// Start of the last scrape, Unix milliseconds.
    pub last_scrape_ms: Option<i64>,
    pub last_scrape_duration: Duration,
    /// Samples written by the last scrape (after metric relabelling).
    pub last_samples: usize,
}

type StatusMap = Arc<Mutex<BTreeMap<(String, u64), TargetStatus>>>;

/// Starts scrape loops.
#[derive(Debug)]
pub struct ScrapeManager;

impl ScrapeManager {
    /// Validates `configs` and starts one task per job, each starting one task per target;
    /// they run until `shutdown` turns `true` (or its sender is dropped). Must be called
    /// within a Tokio runtime. Fails only on an invalid configuration (the error names the
    /// job and field) or if the HTTP client cannot be built.
    pub fn start(
        configs: Vec<ScrapeConfig>,
        ingest: MetricIngestHandle,
        metrics: CollectorMetrics,
        shutdown: watch::Receiver<bool>,
    ) -> Result<ScrapeHandle, ConfigError> {
        validate_configs(&configs)?;
        let status: StatusMap = Arc::default();
        let mut tasks = Vec::with_capacity(configs.len());
        for cfg in configs {
            let client = reqwest::Client::builder()
                .no_proxy()
                .gzip(true)
                .user_agent(concat!("Sightline/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| ConfigError(format!("cannot build the HTTP client: {e}")))?;
            let job = Arc::new(JobCtx {
                cfg,
                client,
                ingest: ingest.clone(),
                metrics: metrics.clone(),
                status: status.clone(),
            });
            tasks.push(tokio::spawn(run_job(job, shutdown.clone())));
        }
        Ok(ScrapeHandle { tasks, status })
    }
}

/// The running scrape loops.
#[derive(Debug)]
pub struct ScrapeHandle {
    tasks: Vec<JoinHandle<()>>,
    status: StatusMap,
}

impl ScrapeHandle {
    /// The current targets with the outcome of their last scrape, by job and URL.
    pub fn targets(&self) -> Vec<TargetStatus> {
        let map = self.status.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<TargetStatus> = map.values().cloned().collect();
        out.sort_by(|a, b| (&a.job, &a.url).cmp(&(&b.job, &b.url)));
        out
    }

    /// Waits until every loop has stopped (after `shutdown`).
    pub async fn join(self) {
        for t in self.tasks {
            if let Err(e) = t.await
                && e.is_panic()
            {
                tracing::error!(error = %e, "a scrape job task panicked");
            }
        }
    }
}

/// What every task of a job shares.
#[derive(Debug)]
struct JobCtx {
    cfg: ScrapeConfig,
    client: reqwest::Client,
    ingest: MetricIngestHandle,
    metrics: CollectorMetrics,
    status: StatusMap,
}

/// Resolves when shutdown is requested or its sender is gone.
async fn shutdown_requested(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

struct RunningTarget {
    stop: oneshot::Sender<()>,
    handle: JoinHandle<()>,
}

/// Discovers the job's targets (again every file refresh interval) and keeps one scrape loop
/// per target.
async fn run_job(job: Arc<JobCtx>, mut shutdown: watch::Receiver<bool>) {
    let mut files = Some(FileDiscovery::new(job.cfg.file_sd_configs.clone()));
    let refresh = files.as_ref().and_then(FileDiscovery::refresh_interval);
    let mut running: HashMap<u64, RunningTarget> = HashMap::new();
    let mut retiring: Vec<JoinHandle<()>> = Vec::new();
    loop {
        let mut fd = files.take().unwrap_or_default();
        let name = job.cfg.job_name.clone();
        // File reads are blocking I/O.
        let (groups, fd) = match tokio::task::spawn_blocking(move || {
            let g = fd.refresh(&name);
            (g, fd)
        })
        .await
        {
            Ok(ok) => ok,
            Err(e) => {
                tracing::error!(job = %job.cfg.job_name, error = %e, "file_sd refresh failed");
                (
                    Vec::new(),
                    FileDiscovery::new(job.cfg.file_sd_configs.clone()),
                )
            }
        };
        files = Some(fd);
        let wanted = discovery::targets(&job.cfg, &groups);
        let wanted_keys: HashSet<u64> = wanted.iter().map(Target::key).collect();
        let gone: Vec<u64> = running
            .keys()
            .filter(|k| !wanted_keys.contains(k))
            .copied()
            .collect();
        for key in gone {
            if let Some(r) = running.remove(&key) {
                // Gone from discovery: its loop writes staleness markers and ends.
                let _ = r.stop.send(());
                retiring.push(r.handle);
            }
        }
        for target in wanted {
            let key = target.key();
            if running.contains_key(&key) {
                continue;
            }
            let (stop, stopped) = oneshot::channel();
            let handle = tokio::spawn(run_target(job.clone(), target, stopped, shutdown.clone()));
            running.insert(key, RunningTarget { stop, handle });
        }
        retiring.retain(|h| !h.is_finished());
        match refresh {
            Some(every) => {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown_requested(&mut shutdown) => break,
                }
            }
            None => {
                shutdown_requested(&mut shutdown).await;
                break;
            }
        }
    }
    // Shutdown: the target loops see it too and end without markers.
    for (_, r) in running {
        let _ = r.handle.await;
    }
    for h in retiring {
        let _ = h.await;
    }
}

/// Scrapes one target every interval until it is removed or shutdown.
async fn run_target(
    job: Arc<JobCtx>,
    target: Target,
    mut stop: oneshot::Receiver<()>,
    mut shutdown: watch::Receiver<bool>,
) {
    let interval = job.cfg.scrape_interval;
    let offset =
        Duration::from_nanos((u128::from(target.key()) % interval.as_nanos().max(1)) as u64);
    let mut scraper = TargetScraper::new(job, target);
    scraper.set_status(|_| {});
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + offset, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut stop => {
                scraper.end_of_run().await;
                return;
            }
            _ = shutdown_requested(&mut shutdown) => {
                scraper.remove_status();
                return;
            }
        }
        tokio::select! {
            _ = scraper.scrape_once() => {}
            _ = shutdown_requested(&mut shutdown) => {
                scraper.remove_status();
                return;
            }
        }
    }
}

/// What the previous scrapes left for one series text.
#[derive(Debug, Clone)]
struct CacheEntry {
    /// Labels after target labels and metric relabelling; `None` when relabelling drops it.
    labels: Option<Labels>,
    /// Written by the last successful scrape at the scrape time (so tracked for staleness).
    tracked: bool,
}

/// The result of reading one scrape's body.
struct Processed {
    series: Vec<MetricSeries>,
    stale: Vec<Labels>,
    scraped: usize,
    added: usize,
}

/// One target's scrape state.
struct TargetScraper {
    job: Arc<JobCtx>,
    target: Target,
    status_key: (String, u64),
    /// Series text of the last successful scrape → its labels.
    cache: HashMap<Box<str>, CacheEntry>,
    was_up: Option<bool>,
}

impl TargetScraper {
    fn new(job: Arc<JobCtx>, target: Target) -> Self {
        let status_key = (job.cfg.job_name.clone(), target.key());
        Self {
            job,
            target,
            status_key,
            cache: HashMap::new(),
            was_up: None,
        }
    }

    fn set_status(&self, update: impl FnOnce(&mut TargetStatus)) {
        let mut map = self.job.status.lock().unwrap_or_else(|e| e.into_inner());
        let st = map
            .entry(self.status_key.clone())
            .or_insert_with(|| TargetStatus {
                job: self.job.cfg.job_name.clone(),
                url: self.target.url.clone(),
                labels: self.target.labels.clone(),
                health: TargetHealth::Unknown,
                last_error: None,
                last_scrape_ms: None,
                last_scrape_duration: Duration::ZERO,
                last_samples: 0,
            });
        update(st);
    }

    fn remove_status(&self) {
        let mut map = self.job.status.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&self.status_key);
    }

    /// One scrape: fetch, parse, write samples, markers and report series.
    async fn scrape_once(&mut self) {
        let start_ms = unix_ms(SystemTime::now());
        let started = Instant::now();
        let fetched = self.fetch().await;
        let (body_bytes, outcome) = match fetched {
            Ok((format, body)) => (body.len(), self.process(format, &body, start_ms)),
            Err(e) => (0, Err(e)),
        };
        let duration = started.elapsed();
        let mut batch: Vec<MetricSeries>;
        let (up, scraped, post, added, error) = match outcome {
            Ok(p) => {
                let post = p.series.len();
                batch = p.series;
                batch.extend(p.stale.into_iter().map(|l| stale_series(l, start_ms)));
                (1.0, p.scraped, post, p.added, None)
            }
            Err(e) => {
                batch = self.stale_all(start_ms);
                (0.0, 0, 0, 0, Some(e))
            }
        };
        for (name, value) in [
            ("up", up),
            ("scrape_duration_seconds", duration.as_secs_f64()),
            ("scrape_samples_scraped", scraped as f64),
            ("scrape_samples_post_metric_relabeling", post as f64),
            ("scrape_series_added", added as f64),
        ] {
            batch.push(MetricSeries {
                labels: self.report_labels(name),
                samples: vec![Sample {
                    t: start_ms,
                    v: value,
                }],
            });
        }
        self.log_health(error.as_deref());
        self.set_status(|st| {
            st.health = if error.is_none() {
                TargetHealth::Up
            } else {
                TargetHealth::Down
            };
            st.last_error = error.clone();
            st.last_scrape_ms = Some(start_ms);
            st.last_scrape_duration = duration;
            st.last_samples = post;
        });
        self.write(batch, body_bytes as u64).await;
    }

    /// The target is gone: markers for all its series and its report series.
    async fn end_of_run(&mut self) {
        let now = unix_ms(SystemTime::now());
        let mut batch = self.stale_all(now);
        for name in REPORT_SERIES {
            batch.push(stale_series(self.report_labels(name), now));
        }
        self.remove_status();
        self.write(batch, 0).await;
    }

    /// Markers for every tracked series of the last successful scrape, which then counts as
    /// empty.
    fn stale_all(&mut self, t: i64) -> Vec<MetricSeries> {
        let mut out = Vec::new();
        for entry in self.cache.values_mut() {
            if entry.tracked
                && let Some(l) = &entry.labels
            {
                out.push(stale_series(l.clone(), t));
            }
            entry.tracked = false;
        }
        out
    }

    fn report_labels(&self, name: &str) -> Labels {
        let mut pairs: Vec<(String, String)> = self
            .target
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        pairs.push((METRIC_NAME_LABEL.to_string(), name.to_string()));
        Labels::from_pairs(pairs)
    }

    fn log_health(&mut self, error: Option<&str>) {
        let (job, url) = (&self.job.cfg.job_name, &self.target.url);
        match (self.was_up, error) {
            (Some(false), None) => {
                tracing::info!(job = %job, target = %url, "scrape target is up again")
            }
            (Some(true) | None, Some(e)) => {
                tracing::warn!(job = %job, target = %url, error = %e, "scrape failed")
            }
            (Some(false), Some(e)) => {
                tracing::debug!(job = %job, target = %url, error = %e, "scrape failed")
            }
            _ => {}
        }
        self.was_up = Some(error.is_none());
    }

    async fn write(&self, series: Vec<MetricSeries>, bytes: u64) {
        if series.is_empty() {
            return;
        }
        let m = &self.job.metrics;
        let tenant = &self.job.cfg.tenant;
        let t = tenant.as_str();
        let n = series.len() as u64;
        m.metric_received(SOURCE, t, n, bytes);
        let batch = MetricBatch {
            tenant: tenant.clone(),
            series,
        };
        match self.job.ingest.ingest(batch).await {
            Ok(report) => {
                m.metric_accepted(SOURCE, t, report.accepted);
                for (reason, k) in &report.rejected {
                    m.metric_rejected(SOURCE, t, reason.as_str(), *k);
                }
                if let Some(first) = &report.first_rejection {
                    tracing::debug!(job = %self.job.cfg.job_name, target = %self.target.url, rejected = report.rejected_total(), first = %first, "the store refused scraped samples");
                }
            }
            Err(e) => {
                let reason = match e {
                    crate::IngestError::Overloaded => "overloaded",
                    crate::IngestError::ShuttingDown => "shutting_down",
                    crate::IngestError::Storage(_) => "storage_error",
                };
                m.metric_rejected(SOURCE, t, reason, n);
                tracing::warn!(job = %self.job.cfg.job_name, target = %self.target.url, error = %e, "scraped samples not stored");
            }
        }
    }

    /// GETs the target: its format and body, or why not.
    async fn fetch(&self) -> Result<(Format, String), String> {
        let cfg = &self.job.cfg;
        let timeout = cfg.effective_timeout();
        let mut resp = self
            .job
            .client
            .get(&self.target.url)
            .header(reqwest::header::ACCEPT, ACCEPT_HEADER)
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", timeout.as_secs_f64()),
            )
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| describe(&e, timeout))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(format!("server returned HTTP status {}", resp.status()));
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let limit = cfg.effective_body_size_limit();
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e, timeout))? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(format!("body size limit of {limit} bytes exceeded"));
            }
            body.extend_from_slice(&chunk);
        }
        let text = match String::from_utf8(body) {
            Ok(t) => t,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        Ok((Format::from_content_type(content_type.as_deref()), text))
    }

    /// Parses a body and resolves labels; updates the series cache only on success.
    fn process(&mut self, format: Format, body: &str, start_ms: i64) -> Result<Processed, String> {
        let samples = exposition::parse(format, body).map_err(|e| e.to_string())?;
        let cfg = &self.job.cfg;
        let mut series = Vec::with_capacity(samples.len());
        let mut new_entries: HashMap<&str, Option<Labels>> = HashMap::new();
        // (series text, tracked) of every line, in order.
        let mut seen: Vec<(&str, bool)> = Vec::with_capacity(samples.len());
        for s in &samples {
            let labels = match self.cache.get(s.series) {
                Some(e) => e.labels.clone(),
                None => match new_entries.get(s.series) {
                    Some(l) => l.clone(),
                    None => {
                        let l = self.sample_labels(s)?;
                        new_entries.insert(s.series, l.clone());
                        l
                    }
                },
            };
            let explicit = cfg.honor_timestamps && s.timestamp_ms.is_some();
            seen.push((s.series, !explicit));
            let Some(labels) = labels else {
                continue;
            };
            let t = match s.timestamp_ms {
                Some(ts) if explicit => ts,
                _ => start_ms,
            };
            series.push(MetricSeries {
                labels,
                samples: vec![Sample { t, v: s.value }],
            });
        }
        if cfg.sample_limit > 0 && series.len() > cfg.sample_limit {
            return Err(format!(
                "sample_limit exceeded: {} samples after metric relabelling, the limit is {}",
                series.len(),
                cfg.sample_limit
            ));
        }
        let added = new_entries.values().filter(|l| l.is_some()).count();
        let mut prev = std::mem::take(&mut self.cache);
        let mut next: HashMap<Box<str>, CacheEntry> = HashMap::with_capacity(seen.len());
        for (text, tracked) in seen {
            if let Some(e) = next.get_mut(text) {
                e.tracked |= tracked;
                continue;
            }
            let labels = match prev.remove(text) {
                Some(e) => e.labels,
                None => new_entries.remove(text).flatten(),
            };
            next.insert(text.into(), CacheEntry { labels, tracked });
        }
        // What the previous scrape wrote and this one did not.
        let mut stale: Vec<Labels> = prev
            .into_values()
            .filter(|e| e.tracked)
            .filter_map(|e| e.labels)
            .collect();
        if !stale.is_empty() {
            let current: HashSet<&Labels> = series.iter().map(|s| &s.labels).collect();
            stale.retain(|l| !current.contains(l));
        }
        self.cache = next;
        Ok(Processed {
            series,
            stale,
            scraped: samples.len(),
            added,
        })
    }

    /// A line's final labels: scraped labels, target labels (honor_labels rules), metric
    /// relabelling. `None` when relabelling drops it.
    fn sample_labels(&self, s: &ParsedSample<'_>) -> Result<Option<Labels>, String> {
        let cfg = &self.job.cfg;
        let mut pairs: Vec<(String, String)> = Vec::with_capacity(s.labels.len() + 8);
        pairs.push((METRIC_NAME_LABEL.to_string(), s.name.to_string()));
        for (k, v) in &s.labels {
            if !v.is_empty() {
                set(&mut pairs, k, v.to_string());
            }
        }
        let value_of = |pairs: &[(String, String)], name: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        if cfg.honor_labels {
            for (k, v) in self.target.labels.iter() {
                if value_of(&pairs, k).is_none() {
                    pairs.push((k.to_string(), v.to_string()));
                }
            }
        } else {
            let mut conflicts: Vec<(String, String)> = Vec::new();
            for (k, v) in self.target.labels.iter() {
                if let Some(existing) = value_of(&pairs, k) {
                    conflicts.push((k.to_string(), existing));
                }
                set(&mut pairs, k, v.to_string());
            }
            conflicts.sort_by_key(|(k, _)| k.len());
            for (name, value) in conflicts {
                let mut new_name = name;
                loop {
                    new_name = format!("exported_{new_name}");
                    if value_of(&pairs, &new_name).is_none() {
                        pairs.push((new_name, value));
                        break;
                    }
                }
            }
        }
        if !relabel(&mut pairs, &cfg.metric_relabel_configs) {
            return Ok(None);
        }
        if value_of(&pairs, METRIC_NAME_LABEL).is_none_or(|v| v.is_empty()) {
            return Err(format!(
                "series {} has no __name__ after metric_relabel_configs",
                s.series
            ));
        }
        Ok(Some(Labels::from_pairs(pairs)))
    }
}

fn stale_series(labels: Labels, t: i64) -> MetricSeries {
    MetricSeries {
        labels,
        samples: vec![Sample { t, v: stale_nan() }],
    }
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A reqwest error with its causes, and timeouts named as such.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!(
            "scrape timed out after {}",
            humantime::format_duration(timeout)
        );
    }
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests;
