//! `[[alerting.pattern_rules]]`: alerts on log patterns, from the pattern ids the log store
//! keeps for every line (the miner's templates), for the `default` tenant.
//!
//! Every `interval` a rule reads its selector's pattern counts in buckets of `window`
//! ending now: the last bucket is the recent window, the ones before it (`baseline` long)
//! the usual. A `new` rule fires for each pattern the miner first saw within the window
//! with at least `min_count` lines there; a `surge` rule for each pattern with at least
//! `min_count` lines in the window at `factor` times its baseline rate or more (a pattern
//! absent from the baseline surges from zero). Alerts (labels `alertname`, `service_name`,
//! `pattern_id` and the rule's) go to the alert manager as a rule's do: sent every
//! interval while the condition holds, valid for four intervals, so they resolve on their
//! own once it stops holding.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use regex::Regex;
use sightline_alerting::alertmanager::alerts::Alert;
use sightline_indexer::LogStore;
use sightline_model::{Buckets, LabelMatcher, TenantId};

use crate::alertmanager::AlertManager;
use crate::config::{PatternRuleConfig, PatternRuleKind};

/// A checked rule.
pub struct PatternRule {
    config: PatternRuleConfig,
    matchers: Vec<LabelMatcher>,
    template_match: Option<Regex>,
}

impl PatternRule {
    /// Checks a rule: the selector must be a stream selector, the regex valid, the
    /// windows sensible.
    pub fn new(config: PatternRuleConfig) -> anyhow::Result<PatternRule> {
        let at = format!("alerting.pattern_rules {:?}", config.name);
        if config.name.is_empty() {
            anyhow::bail!("alerting.pattern_rules: a rule without a name");
        }
        let matchers = match sightline_logql::parse(&config.selector)
            .map_err(|e| anyhow::anyhow!("{at}: selector: {e}"))?
        {
            sightline_logql::Expr::Log(log) if log.stages.is_empty() => log.matchers,
            _ => anyhow::bail!(
                "{at}: selector {:?} is not a stream selector",
                config.selector
            ),
        };
        let template_match = config
            .template_match
            .as_deref()
            .map(Regex::new)
            .transpose()
            .with_context(|| format!("{at}: template_match"))?;
        if config.window < Duration::from_secs(1) || config.interval < Duration::from_secs(1) {
            anyhow::bail!("{at}: window and interval must be at least 1s");
        }
        if config.kind == PatternRuleKind::Surge
            && (config.baseline < config.window || config.factor <= 1.0)
        {
            anyhow::bail!(
                "{at}: a surge needs a baseline at least the window and a factor above 1"
            );
        }
        Ok(PatternRule {
            config,
            matchers,
            template_match,
        })
    }

    /// The alerts this rule raises at `now_ms` over `store`.
    pub fn evaluate(
        &self,
        store: &LogStore,
        tenant: &TenantId,
        now_ms: i64,
    ) -> anyhow::Result<Vec<Alert>> {
        let c = &self.config;
        let window_ns = c.window.as_nanos() as i64;
        let baseline_buckets = match c.kind {
            PatternRuleKind::New => 0,
            PatternRuleKind::Surge => (c.baseline.as_nanos() as i64 / window_ns).max(1) as usize,
        };
        let now_ns = now_ms.saturating_mul(1_000_000);
        let count = baseline_buckets + 1;
        let buckets = Buckets {
            start_ns: now_ns - window_ns * count as i64,
            width_ns: window_ns,
            count,
        };
        let summaries = store
            .pattern_summaries(tenant, &self.matchers, buckets)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let window_start_ms = now_ms - c.window.as_millis() as i64;
        let now = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        let valid =
            chrono::Duration::from_std(c.interval * 4).unwrap_or(chrono::Duration::minutes(4));
        let mut alerts = Vec::new();
        for p in summaries {
            let Some(template) = &p.template else {
                continue;
            };
            if p.pattern == 0
                || self
                    .template_match
                    .as_ref()
                    .is_some_and(|re| !re.is_match(template))
            {
                continue;
            }
            let recent = p.counts.last().copied().unwrap_or(0);
            if recent < c.min_count {
                continue;
            }
            let (fires, detail) = match c.kind {
                PatternRuleKind::New => (
                    p.first_seen_ms.is_some_and(|t| t >= window_start_ms),
                    format!("first seen {}", p.first_seen_ms.unwrap_or(0)),
                ),
                PatternRuleKind::Surge => {
                    let usual: u64 = p.counts[..baseline_buckets].iter().sum();
                    // Rates per window: the baseline's average bucket against the last.
                    let usual_rate = usual as f64 / baseline_buckets as f64;
                    (
                        recent as f64 >= c.factor * usual_rate,
                        format!("{recent} lines in the window, {usual_rate:.1} usually"),
                    )
                }
            };
            if !fires {
                continue;
            }
            let mut labels: BTreeMap<String, String> = c.labels.clone();
            labels.insert("alertname".into(), c.name.clone());
            labels.insert("service_name".into(), p.service.clone());
            labels.insert("pattern_id".into(), p.pattern.to_string());
            let mut annotations = BTreeMap::new();
            let what = match c.kind {
                PatternRuleKind::New => "New log pattern",
                PatternRuleKind::Surge => "Log pattern surging",
            };
            annotations.insert(
                "summary".into(),
                format!("{what} in {}: {template}", p.service),
            );
            annotations.insert(
                "description".into(),
                format!(
                    "{recent} lines in the last {:?} ({detail}); latest: {}",
                    c.window, p.sample.1
                ),
            );
            annotations.insert("template".into(), template.clone());
            alerts.push(Alert {
                labels,
                annotations,
                starts_at: now,
                ends_at: now + valid,
                generator_url: String::new(),
                updated_at: now,
                timeout: false,
            });
        }
        Ok(alerts)
    }
}

/// Evaluates the rules on their intervals until `stop`.
pub async fn run(
    rules: Vec<PatternRule>,
    store: Arc<LogStore>,
    alertmanager: Arc<AlertManager>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if rules.is_empty() {
        return;
    }
    let rules = Arc::new(rules);
    let mut last: Vec<i64> = vec![i64::MIN; rules.len()];
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        let now_ms = crate::now_ns() / 1_000_000;
        for (i, rule) in rules.iter().enumerate() {
            let every = rule.config.interval.as_millis() as i64;
            let t = now_ms - now_ms.rem_euclid(every.max(1));
            if t <= last[i] {
                continue;
            }
            last[i] = t;
            let (rules, store, am) = (rules.clone(), store.clone(), alertmanager.clone());
            let outcome = tokio::task::spawn_blocking(move || {
                let tenant = TenantId::default_tenant();
                let alerts = rules[i].evaluate(&store, &tenant, t)?;
                am.insert_alerts(&tenant, alerts, chrono::Utc::now())
                    .map_err(|e| anyhow::anyhow!("{e:?}"))
            })
            .await;
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(rule = %rule.config.name, error = %format!("{e:#}"), "pattern rule failed")
                }
                Err(e) => {
                    tracing::error!(rule = %rule.config.name, error = %e, "pattern rule task failed")
                }
            }
        }
    }
}
