//! Continuous anomaly scoring of metric series: the `[anomaly]` rules of the config name
//! PromQL expressions; every `interval` each is evaluated (like a recording rule) and every
//! series of its result feeds its own streaming [`Detector`]. Scores and expected bands are
//! written back to the TSDB through the metric ingest path (so they are durable and
//! queryable: `sightline_anomaly_score`, `sightline_anomaly_expected`,
//! `sightline_anomaly_lower`, `sightline_anomaly_upper`) and the latest of each series is
//! listed at `/api/v1/anomalies`.
//!
//! Detector states are checkpointed to `<data>/anomaly/detectors.bin` every few minutes and
//! at shutdown, so a restart does not re-learn from zero.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sightline_anomaly::{Detector, DetectorConfig, Score};
use sightline_collector::MetricIngestHandle;
use sightline_model::{Labels, METRIC_NAME_LABEL, MetricBatch, MetricSeries, Sample, TenantId};
use sightline_promql::{Engine, TsdbSource, Value};
use sightline_tsdb::Tsdb;

use crate::config::AnomalyConfig;

/// Label naming the rule on the output series.
pub const RULE_LABEL: &str = "anomaly_rule";
/// Label keeping the input series' metric name (the output has its own `__name__`).
pub const METRIC_LABEL: &str = "anomaly_metric";
const CHECKPOINT_EVERY: Duration = Duration::from_secs(300);

/// The latest scored point of one series.
#[derive(Debug, Clone, Serialize)]
pub struct Latest {
    pub rule: String,
    pub tenant: String,
    pub labels: Labels,
    pub timestamp_ms: i64,
    pub value: f64,
    pub score: Score,
    pub seen: u64,
    /// When this series last scored at or above the alert threshold.
    pub last_alert_ms: Option<i64>,
}

struct Tracked {
    detector: Detector,
    latest: Option<Latest>,
}

/// Key of one scored series: rule index and the series' labels.
type Key = (usize, Labels);

/// What the runner and the API share.
pub struct Anomalies {
    config: AnomalyConfig,
    tenants: Vec<TenantId>,
    detector_config: DetectorConfig,
    tracked: Mutex<HashMap<Key, Tracked>>,
    path: PathBuf,
}

/// One saved detector: which rule and series it belongs to.
#[derive(Serialize, Deserialize)]
struct Saved {
    rule: String,
    expr: String,
    tenant: String,
    labels: Labels,
    state: Vec<u8>,
}

impl Anomalies {
    /// Validates the rules and restores saved detector states.
    pub fn open(config: AnomalyConfig, data_dir: &std::path::Path) -> anyhow::Result<Self> {
        let tenants = config
            .rules
            .iter()
            .map(|r| {
                TenantId::new(r.tenant.clone())
                    .with_context(|| format!("anomaly rule {:?}: tenant", r.name))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let detector_config = DetectorConfig {
            warmup: config.warmup,
            ..DetectorConfig::default()
        };
        let path = data_dir.join("anomaly").join("detectors.bin");
        let mut tracked = HashMap::new();
        if let Ok(bytes) = std::fs::read(&path) {
            let saved: Vec<Saved> = postcard::from_bytes(&bytes)
                .with_context(|| format!("cannot read {}", path.display()))?;
            for s in saved {
                // A rule whose name, expression or tenant changed starts afresh.
                let Some(i) = config
                    .rules
                    .iter()
                    .position(|r| r.name == s.rule && r.expr == s.expr && r.tenant == s.tenant)
                else {
                    continue;
                };
                match Detector::restore(&s.state) {
                    Ok(detector) => {
                        tracked.insert(
                            (i, s.labels),
                            Tracked {
                                detector,
                                latest: None,
                            },
                        );
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, rule = %s.rule, "dropping unreadable detector state")
                    }
                }
            }
            tracing::info!(detectors = tracked.len(), "anomaly detectors restored");
        }
        Ok(Self {
            config,
            tenants,
            detector_config,
            tracked: Mutex::new(tracked),
            path,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.config.rules.is_empty()
    }

    /// The latest point of every series of `tenant`, highest score first.
    pub fn latest(&self, tenant: &TenantId) -> Vec<Latest> {
        let tracked = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<Latest> = tracked
            .values()
            .filter_map(|t| t.latest.clone())
            .filter(|l| l.tenant == tenant.as_str())
            .collect();
        out.sort_by(|a, b| {
            b.score
                .value
                .total_cmp(&a.score.value)
                .then_with(|| a.rule.cmp(&b.rule))
                .then_with(|| a.labels.cmp(&b.labels))
        });
        out
    }

    /// Evaluates every rule at `now_ms`, scores each result series and returns the output
    /// samples to write, per tenant.
    pub fn evaluate(&self, tsdb: &Tsdb, engine: &Engine, now_ms: i64) -> Vec<MetricBatch> {
        let mut batches: HashMap<usize, Vec<MetricSeries>> = HashMap::new();
        for (i, rule) in self.config.rules.iter().enumerate() {
            let tenant = &self.tenants[i];
            let source = TsdbSource::new(tsdb, tenant);
            let points: Vec<(Labels, f64)> = match engine.instant_query(&source, &rule.expr, now_ms)
            {
                Ok(result) => match result.value {
                    Value::Vector(samples) => {
                        samples.into_iter().map(|s| (s.labels, s.v)).collect()
                    }
                    Value::Scalar { v, .. } => vec![(Labels::default(), v)],
                    Value::Matrix(_) | Value::String { .. } => {
                        tracing::warn!(rule = %rule.name, "anomaly rule must give an instant vector or scalar");
                        continue;
                    }
                },
                Err(e) => {
                    tracing::warn!(rule = %rule.name, error = %e, "anomaly rule evaluation failed");
                    continue;
                }
            };
            let mut tracked = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
            for (labels, v) in points {
                let entry = tracked
                    .entry((i, labels.clone()))
                    .or_insert_with(|| Tracked {
                        detector: Detector::new(self.detector_config),
                        latest: None,
                    });
                let score = entry.detector.observe(now_ms.div_euclid(1000), v);
                let alerting = score.value >= self.detector_config.alert_threshold;
                let last_alert_ms = if alerting {
                    Some(now_ms)
                } else {
                    entry.latest.as_ref().and_then(|l| l.last_alert_ms)
                };
                entry.latest = Some(Latest {
                    rule: rule.name.clone(),
                    tenant: rule.tenant.clone(),
                    labels: labels.clone(),
                    timestamp_ms: now_ms,
                    value: v,
                    score,
                    seen: entry.detector.seen(),
                    last_alert_ms,
                });
                let out = batches.entry(i).or_default();
                let (lo, hi) = score.explanation.band;
                for (name, value) in [
                    ("sightline_anomaly_score", score.value),
                    ("sightline_anomaly_expected", score.explanation.expected),
                    ("sightline_anomaly_lower", lo),
                    ("sightline_anomaly_upper", hi),
                ] {
                    out.push(MetricSeries {
                        labels: output_labels(&labels, name, &rule.name),
                        samples: vec![Sample {
                            t: now_ms,
                            v: value,
                        }],
                    });
                }
            }
        }
        // One batch per tenant.
        let mut per_tenant: HashMap<TenantId, Vec<MetricSeries>> = HashMap::new();
        for (i, series) in batches {
            per_tenant
                .entry(self.tenants[i].clone())
                .or_default()
                .extend(series);
        }
        per_tenant
            .into_iter()
            .map(|(tenant, series)| MetricBatch { tenant, series })
            .collect()
    }

    /// Writes every detector's state (atomically: a temporary file, then a rename).
    pub fn checkpoint(&self) -> anyhow::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let saved: Vec<Saved> = {
            let tracked = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
            tracked
                .iter()
                .filter_map(|((i, labels), t)| {
                    let rule = &self.config.rules[*i];
                    Some(Saved {
                        rule: rule.name.clone(),
                        expr: rule.expr.clone(),
                        tenant: rule.tenant.clone(),
                        labels: labels.clone(),
                        state: t.detector.checkpoint().ok()?,
                    })
                })
                .collect()
        };
        let dir = self
            .path
            .parent()
            .context("checkpoint path has a directory")?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, postcard::to_allocvec(&saved)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("cannot rename to {}", self.path.display()))?;
        Ok(())
    }
}

/// The input series' labels, its metric name moved to [`METRIC_LABEL`], plus the output
/// name and the rule.
fn output_labels(input: &Labels, name: &str, rule: &str) -> Labels {
    Labels::from_pairs(
        input
            .iter()
            .map(|(k, v)| {
                if k == METRIC_NAME_LABEL {
                    (METRIC_LABEL, v)
                } else {
                    (k, v)
                }
            })
            .chain([(METRIC_NAME_LABEL, name), (RULE_LABEL, rule)]),
    )
}

/// Runs the rules every `interval` until `stop`, writing the scores through `ingest`;
/// checkpoints now and then and once more at the end.
pub async fn run(
    anomalies: Arc<Anomalies>,
    tsdb: Arc<Tsdb>,
    engine: Arc<Engine>,
    ingest: MetricIngestHandle,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(anomalies.config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_checkpoint = Instant::now();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        let (a, t, e) = (anomalies.clone(), tsdb.clone(), engine.clone());
        let now_ms = crate::now_ns() / 1_000_000;
        let batches = match tokio::task::spawn_blocking(move || a.evaluate(&t, &e, now_ms)).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "anomaly evaluation task failed");
                continue;
            }
        };
        for batch in batches {
            match ingest.ingest(batch).await {
                Ok(report) if report.rejected_total() > 0 => tracing::warn!(
                    rejected = report.rejected_total(),
                    first = ?report.first_rejection,
                    "anomaly scores refused by the store"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot write anomaly scores"),
            }
        }
        if last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
            checkpoint(&anomalies).await;
            last_checkpoint = Instant::now();
        }
    }
    checkpoint(&anomalies).await;
}

async fn checkpoint(anomalies: &Arc<Anomalies>) {
    let a = anomalies.clone();
    match tokio::task::spawn_blocking(move || a.checkpoint()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "anomaly checkpoint failed"),
        Err(e) => tracing::error!(error = %e, "anomaly checkpoint task failed"),
    }
}
