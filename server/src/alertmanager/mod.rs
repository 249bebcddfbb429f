//! The alert manager at run time: one [`Dispatcher`] and one set of silences per tenant,
//! their state made durable in a [`StateLog`] before any change is acknowledged, a loop
//! that flushes due groups, and the deliveries (webhooks; email once the integration
//! lands), retried with backoff until the group's next flush.
//!
//! `[alertmanager] config_file` is an Alertmanager configuration file; without one, a
//! built-in configuration routes every alert to a receiver with no integrations (alerts
//! and silences work, nothing is sent). Sightline's own rule evaluator posts to it as
//! Prometheus posts to an Alertmanager, and so can any Prometheus (`alerting.alertmanagers`
//! pointing at the HTTP port).

pub mod state_log;
mod webhook;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sightline_alerting::alertmanager::alerts::{Alert, PostableAlert, fingerprint};
use sightline_alerting::alertmanager::config::Config;
use sightline_alerting::alertmanager::dispatch::{
    Dispatcher, Flush, GroupId, IntegrationKind, Notification,
};
use sightline_alerting::alertmanager::email::{EmailNotifier, load_templates};
use sightline_alerting::alertmanager::inhibit::Inhibitions;
use sightline_alerting::alertmanager::silence::{Silence, SilenceError, Silences, new_silence_id};
use sightline_model::TenantId;

use state_log::{Record, StateLog};

/// The configuration used when none is given.
pub const BUILTIN_CONFIG: &str = "route:\n  receiver: default\nreceivers:\n  - name: default\n";

/// Alerts a tenant may hold (Alertmanager has per-alertname limits for the same reason): a
/// sender of endless distinct alerts must not take the process's memory.
pub const MAX_ALERTS_PER_TENANT: usize = 500_000;
/// Silences (any state) a tenant may keep (Alertmanager's `--silences.max-silences`).
pub const MAX_SILENCES_PER_TENANT: usize = 10_000;
/// Size of one silence, matchers, comment and author together
/// (Alertmanager's `--silences.max-silence-size-bytes`).
pub const MAX_SILENCE_BYTES: usize = 16 * 1024;

/// How often resolved alerts and expired silences and log entries are forgotten.
const GC_INTERVAL: Duration = Duration::from_secs(60);

/// The longest the loop sleeps, so a clock jump or a missed wake-up costs at most this.
const MAX_SLEEP: Duration = Duration::from_millis(500);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IntegrationLabels {
    pub integration: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub integration: &'static str,
    pub reason: &'static str,
}

/// `sightline_alertmanager_*`.
#[derive(Clone, Debug)]
pub struct AlertManagerMetrics {
    pub alerts_received: Counter,
    pub alerts_invalid: Counter,
    pub notifications: Family<IntegrationLabels, Counter>,
    pub notifications_failed: Family<FailureLabels, Counter>,
    pub notification_requests: Family<IntegrationLabels, Counter>,
    pub notification_latency_seconds: Family<IntegrationLabels, Histogram>,
}

impl AlertManagerMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            alerts_received: Counter::default(),
            alerts_invalid: Counter::default(),
            notifications: Family::default(),
            notifications_failed: Family::default(),
            notification_requests: Family::default(),
            notification_latency_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 2.0, 14))
            }),
        };
        let r = registry.sub_registry_with_prefix("sightline_alertmanager");
        r.register(
            "alerts_received",
            "Alerts received (posted or from the rule evaluator)",
            m.alerts_received.clone(),
        );
        r.register(
            "alerts_invalid",
            "Alerts refused as invalid",
            m.alerts_invalid.clone(),
        );
        r.register(
            "notifications",
            "Notifications delivered, by integration",
            m.notifications.clone(),
        );
        r.register(
            "notifications_failed",
            "Notifications that failed after their retries, by integration and reason",
            m.notifications_failed.clone(),
        );
        r.register(
            "notification_requests",
            "Delivery attempts, retries included, by integration",
            m.notification_requests.clone(),
        );
        r.register(
            "notification_latency_seconds",
            "Time to deliver a notification, retries included, by integration",
            m.notification_latency_seconds.clone(),
        );
        m
    }
}

/// One tenant's state.
pub struct TenantState {
    pub dispatcher: Dispatcher,
    pub silences: Silences,
    log: StateLog,
    /// Groups whose flush is being delivered.
    busy: HashSet<GroupId>,
}

/// A request the alert manager refused.
#[derive(Debug)]
pub enum AmError {
    /// Bad input (400), with the reason.
    Invalid(String),
    NotFound(String),
    /// A per-tenant limit (429, retryable once alerts resolve or silences expire).
    Limited(String),
    /// The state could not be made durable (500; nothing was acknowledged).
    Storage(String),
}

impl From<SilenceError> for AmError {
    fn from(e: SilenceError) -> Self {
        match e {
            SilenceError::Invalid(m) => AmError::Invalid(m),
            SilenceError::NotFound(_) => AmError::NotFound(e.to_string()),
        }
    }
}

/// A loaded configuration.
struct Loaded {
    config: Arc<Config>,
    text: String,
    /// By receiver and index of `email_configs`.
    emails: Arc<HashMap<(String, usize), EmailNotifier>>,
}

pub struct AlertManager {
    dir: PathBuf,
    config_path: Option<PathBuf>,
    /// The configuration in force, its text (for `/api/v2/status`) and its email
    /// notifiers.
    config: Mutex<Loaded>,
    external_url: String,
    tenants: Mutex<HashMap<TenantId, Arc<Mutex<TenantState>>>>,
    wake: tokio::sync::Notify,
    /// Alerts not seen before (a rule's alert that starts firing), counted and signalled:
    /// the incident round runs at once rather than at its next tick.
    news: tokio::sync::Notify,
    new_alerts: std::sync::atomic::AtomicU64,
    http: reqwest::Client,
    pub metrics: AlertManagerMetrics,
    pub started: DateTime<Utc>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AlertManager {
    /// Loads the configuration (refusing a bad one, as Alertmanager refuses to start) and
    /// restores every tenant's state found under `<data>/alertmanager`.
    pub fn open(
        data_dir: &std::path::Path,
        config_path: Option<PathBuf>,
        external_url: String,
        metrics: AlertManagerMetrics,
    ) -> anyhow::Result<Arc<AlertManager>> {
        let loaded = load_config(config_path.as_deref())?;
        let am = Arc::new(AlertManager {
            dir: data_dir.join("alertmanager"),
            config_path,
            config: Mutex::new(loaded),
            external_url,
            tenants: Mutex::new(HashMap::new()),
            wake: tokio::sync::Notify::new(),
            news: tokio::sync::Notify::new(),
            new_alerts: std::sync::atomic::AtomicU64::new(0),
            http: reqwest::Client::builder()
                .user_agent(concat!("Sightline/", env!("CARGO_PKG_VERSION")))
                .build()
                .context("cannot build the notification HTTP client")?,
            metrics,
            started: Utc::now(),
        });
        if let Ok(entries) = std::fs::read_dir(&am.dir) {
            for entry in entries.flatten() {
                if let Some(name) = entry.file_name().to_str()
                    && let Ok(tenant) = TenantId::new(name)
                {
                    am.tenant(&tenant)?;
                }
            }
        }
        Ok(am)
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        lock(&self.config).config.clone()
    }

    /// The configuration's text, as loaded (for `/api/v2/status`).
    pub fn config_text(&self) -> String {
        lock(&self.config).text.clone()
    }

    fn emails(&self) -> Arc<HashMap<(String, usize), EmailNotifier>> {
        lock(&self.config).emails.clone()
    }

    /// Reads the configuration file again; a bad one is refused and the running one kept.
    pub fn reload(&self) -> anyhow::Result<()> {
        let loaded = load_config(self.config_path.as_deref())?;
        let now = Utc::now();
        for state in lock(&self.tenants).values() {
            lock(state).dispatcher.reload((*loaded.config).clone(), now);
        }
        *lock(&self.config) = loaded;
        self.wake.notify_one();
        Ok(())
    }

    /// The tenant's state, restored from its log on first use.
    pub fn tenant(&self, tenant: &TenantId) -> anyhow::Result<Arc<Mutex<TenantState>>> {
        if let Some(state) = lock(&self.tenants).get(tenant) {
            return Ok(state.clone());
        }
        let dir = self.dir.join(tenant.as_str());
        let (mut log, replayed) = StateLog::open(&dir)?;
        if let Some(line) = replayed.torn_at {
            tracing::warn!(tenant = %tenant, line, "alert manager state log ends in a torn record (never acknowledged); cut there");
        }
        let now = Utc::now();
        let mut alerts: HashMap<u64, Alert> = HashMap::new();
        let mut silences: BTreeMap<String, Silence> = BTreeMap::new();
        let mut nflog = Vec::new();
        for record in replayed.records {
            match record {
                Record::Alert(a) => {
                    alerts.insert(fingerprint(&a.labels), a);
                }
                Record::Silence(s) => {
                    silences.insert(s.id.clone(), s);
                }
                Record::Nflog(e) => nflog.push(e),
            }
        }
        let config = self.config();
        let mut dispatcher = Dispatcher::new((*config).clone(), &self.external_url);
        dispatcher.restore_nflog(nflog, now);
        for alert in alerts.into_values() {
            dispatcher.insert(alert, now);
        }
        let (mut silences, problems) = Silences::restore(silences.into_values());
        for p in problems {
            tracing::warn!(tenant = %tenant, problem = %p, "silence not restored");
        }
        silences.gc(now);
        dispatcher.gc(now);
        log.compact(&live_records(&dispatcher, &silences, now))?;
        let state = Arc::new(Mutex::new(TenantState {
            dispatcher,
            silences,
            log,
            busy: HashSet::new(),
        }));
        lock(&self.tenants)
            .entry(tenant.clone())
            .or_insert(state.clone());
        self.wake.notify_one();
        Ok(state)
    }

    /// Takes posted alerts: the valid ones are stored durably and dispatched; the errors of
    /// the others are returned (Alertmanager answers 400 naming them, having kept the
    /// valid ones).
    pub fn post_alerts(
        &self,
        tenant: &TenantId,
        posted: Vec<PostableAlert>,
    ) -> Result<Vec<String>, AmError> {
        let now = Utc::now();
        let resolve_timeout = chrono::Duration::from_std(self.config().resolve_timeout)
            .unwrap_or(chrono::Duration::minutes(5));
        let mut errors = Vec::new();
        let mut alerts = Vec::new();
        for p in posted {
            match p.into_alert(now, resolve_timeout) {
                Ok(a) => alerts.push(a),
                Err(e) => errors.push(e),
            }
        }
        self.metrics.alerts_invalid.inc_by(errors.len() as u64);
        self.insert_alerts(tenant, alerts, now)?;
        Ok(errors)
    }

    /// Stores and dispatches alerts that are already valid (the rule evaluator's).
    pub fn insert_alerts(
        &self,
        tenant: &TenantId,
        alerts: Vec<Alert>,
        now: DateTime<Utc>,
    ) -> Result<(), AmError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let state = self
            .tenant(tenant)
            .map_err(|e| AmError::Storage(format!("{e:#}")))?;
        let mut st = lock(&state);
        let unknown: HashSet<u64> = alerts
            .iter()
            .map(|a| fingerprint(&a.labels))
            .filter(|fp| st.dispatcher.alerts.get(*fp).is_none())
            .collect();
        if st.dispatcher.alerts.len() + unknown.len() > MAX_ALERTS_PER_TENANT {
            return Err(AmError::Limited(format!(
                "tenant {tenant} holds {} alerts; {} new ones would pass the limit of {MAX_ALERTS_PER_TENANT}",
                st.dispatcher.alerts.len(),
                unknown.len()
            )));
        }
        self.metrics.alerts_received.inc_by(alerts.len() as u64);
        let records: Vec<Record> = alerts.iter().cloned().map(Record::Alert).collect();
        st.log
            .append(&records)
            .map_err(|e| AmError::Storage(format!("{e:#}")))?;
        for alert in alerts {
            st.dispatcher.insert(alert, now);
        }
        self.maybe_compact(&mut st, now);
        drop(st);
        self.wake.notify_one();
        if !unknown.is_empty() {
            self.new_alerts
                .fetch_add(unknown.len() as u64, std::sync::atomic::Ordering::Relaxed);
            self.news.notify_one();
        }
        Ok(())
    }

    /// Signalled when alerts not seen before arrive.
    pub fn news(&self) -> &tokio::sync::Notify {
        &self.news
    }

    /// Alerts not seen before received since start.
    pub fn new_alerts(&self) -> u64 {
        self.new_alerts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Creates or updates a silence; returns its id once it is durable.
    pub fn set_silence(&self, tenant: &TenantId, silence: Silence) -> Result<String, AmError> {
        let size = silence.comment.len()
            + silence.created_by.len()
            + silence
                .matchers
                .iter()
                .map(|m| m.name.len() + m.value.len())
                .sum::<usize>();
        if size > MAX_SILENCE_BYTES {
            return Err(AmError::Invalid(format!(
                "silence of {size} bytes exceeds the limit of {MAX_SILENCE_BYTES} bytes"
            )));
        }
        let state = self
            .tenant(tenant)
            .map_err(|e| AmError::Storage(format!("{e:#}")))?;
        let mut st = lock(&state);
        let now = Utc::now();
        if silence.id.is_empty() && st.silences.len() >= MAX_SILENCES_PER_TENANT {
            return Err(AmError::Limited(format!(
                "tenant {tenant} keeps {} silences, the limit; expired ones are forgotten after 120 h",
                st.silences.len()
            )));
        }
        // Applied to a copy first: nothing changes unless the log took it.
        let mut next = st.silences.clone();
        let (id, changed) = next.set(silence, now, new_silence_id)?;
        let records: Vec<Record> = changed.into_iter().map(Record::Silence).collect();
        st.log
            .append(&records)
            .map_err(|e| AmError::Storage(format!("{e:#}")))?;
        st.silences = next;
        drop(st);
        self.wake.notify_one();
        Ok(id)
    }

    /// Expires a silence, durably.
    pub fn expire_silence(&self, tenant: &TenantId, id: &str) -> Result<(), AmError> {
        let state = self
            .tenant(tenant)
            .map_err(|e| AmError::Storage(format!("{e:#}")))?;
        let mut st = lock(&state);
        let mut next = st.silences.clone();
        let expired = next.expire(id, Utc::now())?;
        st.log
            .append(&[Record::Silence(expired)])
            .map_err(|e| AmError::Storage(format!("{e:#}")))?;
        st.silences = next;
        Ok(())
    }

    /// Every tenant known.
    pub fn tenants(&self) -> Vec<(TenantId, Arc<Mutex<TenantState>>)> {
        lock(&self.tenants)
            .iter()
            .map(|(t, s)| (t.clone(), s.clone()))
            .collect()
    }

    fn maybe_compact(&self, st: &mut TenantState, now: DateTime<Utc>) {
        let live = st.dispatcher.alerts.len() + st.silences.len() + 64;
        if st.log.wants_compaction(live) {
            let records = live_records(&st.dispatcher, &st.silences, now);
            if let Err(e) = st.log.compact(&records) {
                tracing::warn!(error = %format!("{e:#}"), "cannot compact the alert manager state log");
            }
        }
    }

    /// The status of an alert at `now` for the API: the silences and alerts muting it.
    pub fn mute_status(
        st: &TenantState,
        inhibitions: &Inhibitions<'_>,
        labels: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> (Vec<String>, Vec<String>) {
        let silenced = st.silences.mutes(labels, now);
        let inhibited = inhibitions
            .inhibited_by(labels)
            .map(|fp| vec![format!("{fp:016x}")])
            .unwrap_or_default();
        (silenced, inhibited)
    }

    /// Delivers one notification, retrying with backoff until `deadline`.
    async fn deliver(
        &self,
        config: &Config,
        emails: &HashMap<(String, usize), EmailNotifier>,
        n: &Notification,
        deadline: Instant,
    ) -> bool {
        let kind = n.integration.kind.as_str();
        let labels = IntegrationLabels { integration: kind };
        // Only resolved alerts, to an integration that does not send them: nothing to
        // send, and the log records the group as notified (as Alertmanager does).
        if n.data.alerts.is_empty() {
            return true;
        }
        let started = Instant::now();
        let mut backoff = Duration::from_millis(200);
        let outcome = loop {
            self.metrics
                .notification_requests
                .get_or_create(&labels)
                .inc();
            let attempt = match n.integration.kind {
                IntegrationKind::Webhook => {
                    let hook = config
                        .receiver(&n.integration.receiver)
                        .and_then(|r| r.webhook_configs.get(n.integration.index));
                    match hook {
                        Some(hook) => {
                            webhook::send(
                                &self.http,
                                hook,
                                n,
                                deadline.saturating_duration_since(Instant::now()),
                            )
                            .await
                        }
                        None => Err(webhook::Failure::permanent("receiver no longer configured")),
                    }
                }
                IntegrationKind::Email => {
                    match emails.get(&(n.integration.receiver.clone(), n.integration.index)) {
                        Some(email) => {
                            let budget = deadline.saturating_duration_since(Instant::now());
                            match tokio::time::timeout(
                                budget,
                                email.notify_group(&n.data, &n.group_key),
                            )
                            .await
                            {
                                Ok(Ok(())) => Ok(()),
                                Ok(Err(e)) => Err(webhook::Failure {
                                    retryable: e.is_retryable(),
                                    reason: if e.is_retryable() {
                                        "retryable"
                                    } else {
                                        "permanent"
                                    },
                                    message: e.to_string(),
                                }),
                                Err(_) => Err(webhook::Failure {
                                    message: "timed out".to_owned(),
                                    retryable: true,
                                    reason: "timeout",
                                }),
                            }
                        }
                        None => Err(webhook::Failure::permanent("receiver no longer configured")),
                    }
                }
            };
            match attempt {
                Ok(()) => break Ok(()),
                Err(f) if !f.retryable => break Err(f),
                Err(f) => {
                    if Instant::now() + backoff >= deadline {
                        break Err(f);
                    }
                    tracing::debug!(integration = kind, error = %f.message, "notification failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        };
        self.metrics
            .notification_latency_seconds
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        match outcome {
            Ok(()) => {
                self.metrics.notifications.get_or_create(&labels).inc();
                true
            }
            Err(f) => {
                tracing::warn!(
                    receiver = %n.integration.receiver,
                    integration = kind,
                    group = %n.group_key,
                    error = %f.message,
                    "notification failed"
                );
                self.metrics
                    .notifications_failed
                    .get_or_create(&FailureLabels {
                        integration: kind,
                        reason: f.reason,
                    })
                    .inc();
                false
            }
        }
    }

    /// Sends a flush's notifications and records the outcome.
    async fn send_flush(
        self: Arc<Self>,
        tenant: TenantId,
        state: Arc<Mutex<TenantState>>,
        flush: Flush,
    ) {
        let config = self.config();
        let emails = self.emails();
        // A delivery gives up before the group's next flush (Alertmanager's notify timeout).
        let interval = lock(&state)
            .dispatcher
            .groups()
            .find(|g| g.id == flush.group)
            .map(|g| g.opts.group_interval)
            .unwrap_or(Duration::from_secs(60));
        let deadline = Instant::now() + interval.mul_f64(0.9).max(Duration::from_secs(1));
        let mut results = Vec::with_capacity(flush.notifications.len());
        for n in &flush.notifications {
            results.push(self.deliver(&config, &emails, n, deadline).await);
        }
        let mut st = lock(&state);
        st.busy.remove(&flush.group);
        let now = Utc::now();
        record_flush(&tenant, &mut st, flush, &results, now);
        self.maybe_compact(&mut st, now);
    }
}

/// Records a flush's outcome in the dispatcher and, for a restart, in the state log.
fn record_flush(
    tenant: &TenantId,
    st: &mut TenantState,
    flush: Flush,
    succeeded: &[bool],
    now: DateTime<Utc>,
) {
    let records: Vec<Record> = st
        .dispatcher
        .flush_done(flush, succeeded, now)
        .into_iter()
        .map(Record::Nflog)
        .collect();
    if let Err(e) = st.log.append(&records) {
        tracing::error!(tenant = %tenant, error = %format!("{e:#}"), "cannot record notifications; they may be repeated after a restart");
    }
}

/// Every live record, for a compaction.
fn live_records(dispatcher: &Dispatcher, silences: &Silences, now: DateTime<Utc>) -> Vec<Record> {
    dispatcher
        .alerts
        .values()
        .cloned()
        .map(Record::Alert)
        .chain(silences.snapshot().into_iter().map(Record::Silence))
        .chain(
            dispatcher
                .nflog_snapshot(now)
                .into_iter()
                .map(Record::Nflog),
        )
        .collect()
}

/// Reads and checks the configuration, loads its templates (globs relative to the file's
/// directory, as Alertmanager reads them) and builds the email notifiers.
fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<Loaded> {
    let text = match path {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?
        }
        None => BUILTIN_CONFIG.to_owned(),
    };
    let name = path.map_or("built-in configuration".to_owned(), |p| {
        p.display().to_string()
    });
    let config = Config::parse(&text).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    for w in &config.warnings {
        tracing::warn!(warning = %w, "alertmanager configuration");
    }
    let base = path
        .and_then(|p| p.parent())
        .unwrap_or(std::path::Path::new("."));
    let globs: Vec<PathBuf> = config.templates.iter().map(|t| base.join(t)).collect();
    let templates = load_templates(&globs).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let mut emails = HashMap::new();
    for receiver in &config.receivers {
        for (i, email) in receiver.email_configs.iter().enumerate() {
            let notifier = EmailNotifier::new(email.clone(), &templates).map_err(|e| {
                anyhow::anyhow!(
                    "{name}: receiver {:?} email_configs[{i}]: {e}",
                    receiver.name
                )
            })?;
            emails.insert((receiver.name.clone(), i), notifier);
        }
    }
    Ok(Loaded {
        config: Arc::new(config),
        text,
        emails: Arc::new(emails),
    })
}

impl AlertManager {
    /// One round of [`run`] at `now` without delivering anything: the groups due are
    /// flushed and their notifications recorded as sent, and returned (a driver in
    /// simulated time counts what would have gone out; a notification without alerts only
    /// records that its group resolved). Forgets what has expired at `now`.
    pub fn flush_undelivered(&self, now: DateTime<Utc>) -> Vec<(TenantId, Notification)> {
        let mut out = Vec::new();
        for (tenant, state) in self.tenants() {
            let mut st = lock(&state);
            let st = &mut *st;
            let flushes = st.dispatcher.flush_due(&st.silences, now, &st.busy);
            for flush in flushes {
                let ok = vec![true; flush.notifications.len()];
                let sent = flush.notifications.clone();
                record_flush(&tenant, st, flush, &ok, now);
                out.extend(sent.into_iter().map(|n| (tenant.clone(), n)));
            }
            st.dispatcher.gc(now);
            st.silences.gc(now);
        }
        out
    }
}

/// Flushes due groups and sends their notifications until `stop`.
pub async fn run(am: Arc<AlertManager>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut last_gc = Instant::now();
    loop {
        let now = Utc::now();
        let mut next = now + chrono::Duration::from_std(MAX_SLEEP).unwrap_or_default();
        for (tenant, state) in am.tenants() {
            let flushes = {
                let mut st = lock(&state);
                let st = &mut *st;
                let flushes = st.dispatcher.flush_due(&st.silences, now, &st.busy);
                for f in &flushes {
                    st.busy.insert(f.group.clone());
                }
                if let Some(due) = st.dispatcher.next_due() {
                    next = next.min(due);
                }
                flushes
            };
            for flush in flushes {
                tokio::spawn(am.clone().send_flush(tenant.clone(), state.clone(), flush));
            }
        }
        if last_gc.elapsed() >= GC_INTERVAL {
            last_gc = Instant::now();
            for (_, state) in am.tenants() {
                let mut st = lock(&state);
                st.dispatcher.gc(now);
                st.silences.gc(now);
            }
        }
        let sleep = (next - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .clamp(Duration::from_millis(10), MAX_SLEEP);
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = am.wake.notified() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
}
