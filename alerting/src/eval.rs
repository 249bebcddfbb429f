//! Rule evaluation with Prometheus's semantics (`rules/alerting.go`, `rules/recording.go`).
//!
//! A recording rule's result becomes series named by the rule, with its labels set. An
//! alerting rule's result is a set of alerts, one per output series (its labels minus
//! `__name__`, plus the rule's labels — templates expanded — and `alertname`):
//!
//! * a new alert is **pending** from the evaluation that first saw it (`active_at`), and
//!   **firing** from the first evaluation at least `for` later (at once when `for` is 0);
//! * an alert missing from the result is **resolved** (inactive, `resolved_at`) if it was
//!   firing — unless `keep_firing_for` keeps it firing that long after it first went
//!   missing — and forgotten if it was only pending; resolved alerts are kept 15 minutes
//!   (to be sent as resolved) and then forgotten;
//! * each evaluation writes `ALERTS{alertname, alertstate="pending"|"firing", …} 1` and
//!   `ALERTS_FOR_STATE{alertname, …} <active_at in seconds>` for every pending or firing
//!   alert (the latter is what Prometheus restores `for` state from after a restart; the
//!   restore itself comes with the evaluator's loop);
//! * a result with two series of one label set after the rule's labels is an error, and so
//!   is one with more alerts (or series) than the group's `limit`, which then clears them.
//!
//! Annotations are expanded at every evaluation with `$labels`, `$value`,
//! `$externalLabels` and `$externalURL`; a template that fails to expand gives
//! `<error expanding template: …>` in place of the text, as in Prometheus.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use sightline_model::Labels;
use sightline_promql::{Engine, FloatHistogram, InstantValue, SeriesSource};

use crate::rulefmt::{Rule, RuleKind};
use crate::template::{AlertTemplateData, Funcs, expand_alert_template};

/// An alert's identity: its label set.
type AlertKey = Vec<(String, String)>;
/// One alert as this evaluation saw it: labels, expanded annotations, value.
type Observed = (BTreeMap<String, String>, BTreeMap<String, String>, f64);
/// One sample of a rule's query: labels, float value, native histogram.
type QueriedSample = (Labels, f64, Option<FloatHistogram>);

/// How far back `ALERTS_FOR_STATE` is read when restoring (Prometheus's
/// `--rules.alert.for-outage-tolerance`).
pub const OUTAGE_TOLERANCE: Duration = Duration::from_secs(3600);
/// The least time a restored alert waits before firing again (Prometheus's
/// `--rules.alert.for-grace-period`).
pub const FOR_GRACE_PERIOD: Duration = Duration::from_secs(600);

/// How long resolved alerts are kept (Prometheus's `resolvedRetention`).
pub const RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);

/// The state of one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inactive => "inactive",
            Self::Pending => "pending",
            Self::Firing => "firing",
        }
    }
}

/// One alert of an alerting rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    pub value: f64,
    /// When it became pending (ms).
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    /// When it first went missing while firing, with `keep_firing_for` set.
    pub keep_firing_since: Option<i64>,
    /// When it was last sent to the alert manager (ms).
    pub last_sent_at: Option<i64>,
    /// The end sent with it while firing: the alert manager resolves it then unless it is
    /// sent again (ms).
    pub valid_until: i64,
}

/// How often a firing alert is sent again (Prometheus's `--rules.alert.resend-delay`).
pub const RESEND_DELAY: Duration = Duration::from_secs(60);

/// A rule expression's evaluation in another language: `(expr, t_ms)` → series and values.
pub type RuleQuery<'a> = dyn Fn(&str, i64) -> Result<Vec<(Labels, f64)>, String> + Sync + 'a;

/// Where rules read their data and how templates are expanded.
pub struct EvalContext<'a> {
    pub engine: &'a Engine,
    pub source: &'a dyn SeriesSource,
    /// Evaluates the rule's expression instead of the PromQL engine (LogQL rules): the
    /// expression and the time in ms give the output series and values.
    pub query: Option<&'a RuleQuery<'a>>,
    pub funcs: &'a Funcs,
    pub external_labels: &'a BTreeMap<String, String>,
    pub external_url: &'a str,
}

/// What one evaluation of a rule produced: the samples to store at the evaluation time
/// (recorded series, or `ALERTS`/`ALERTS_FOR_STATE`).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Output {
    pub samples: Vec<(Labels, f64)>,
    /// The native histograms a recording rule produced (stores without native histograms
    /// drop them).
    pub histograms: Vec<(Labels, FloatHistogram)>,
}

/// A rule with its alerts (for alerting rules) between evaluations.
#[derive(Debug, Clone)]
pub struct RuleState {
    pub rule: Rule,
    /// Alerts by label set.
    pub alerts: HashMap<AlertKey, Alert>,
    pub last_error: Option<String>,
    pub last_evaluation: Option<i64>,
    pub evaluation_seconds: f64,
}

impl RuleState {
    pub fn new(rule: Rule) -> Self {
        RuleState {
            rule,
            alerts: HashMap::new(),
            last_error: None,
            last_evaluation: None,
            evaluation_seconds: 0.0,
        }
    }

    /// The alerts to send to the alert manager after the evaluation at `t` (ms), as
    /// Prometheus's `sendAlerts`: firing alerts every [`RESEND_DELAY`], a resolved alert
    /// at once and then as often while it is retained; each firing one valid until
    /// `t + 4 × max(resend delay, interval)`, so two failed evaluations or sends do not
    /// resolve it.
    pub fn alerts_to_send(&mut self, t: i64, interval: Duration) -> Vec<Alert> {
        let resend = RESEND_DELAY.as_millis() as i64;
        let delta = resend.max(interval.as_millis() as i64);
        let mut out = Vec::new();
        for a in self.alerts.values_mut() {
            if a.state == AlertState::Pending {
                continue;
            }
            let resolved_since_sent = match (a.resolved_at, a.last_sent_at) {
                (Some(r), Some(s)) => r > s,
                (Some(_), None) => true,
                _ => false,
            };
            if !resolved_since_sent && a.last_sent_at.is_some_and(|s| s + resend >= t) {
                continue;
            }
            a.last_sent_at = Some(t);
            a.valid_until = t + 4 * delta;
            out.push(a.clone());
        }
        out
    }

    /// Evaluates the rule at `t` (ms); `limit` is the group's (0: none).
    pub fn eval(&mut self, t: i64, limit: usize, ctx: &EvalContext<'_>) -> Result<Output, String> {
        let started = std::time::Instant::now();
        let result = match self.rule.kind.clone() {
            RuleKind::Record { name } => self.eval_record(&name, t, limit, ctx),
            RuleKind::Alert {
                name,
                for_,
                keep_firing_for,
                annotations,
            } => self.eval_alert(&name, for_, keep_firing_for, &annotations, t, limit, ctx),
        };
        self.last_evaluation = Some(t);
        self.evaluation_seconds = started.elapsed().as_secs_f64();
        self.last_error = result.as_ref().err().cloned();
        result
    }

    /// Restores `for` state after a restart, as Prometheus's `RestoreForState` does, right
    /// after the first evaluation at `t`: for each pending or firing alert, the last
    /// `ALERTS_FOR_STATE` sample of its label set before `t` and within the outage tolerance
    /// (`last`: its time and value, the stored `active_at` in seconds) says when it became
    /// active and when the server went down. An alert whose `for` is within the grace period
    /// keeps that time; one that was already firing fires again at once; one with less than
    /// the grace period left waits the grace period; any other has its pending time shifted
    /// by the outage.
    pub fn restore_for_state(
        &mut self,
        t: i64,
        last: impl Fn(&BTreeMap<String, String>) -> Option<(i64, f64)>,
    ) {
        let RuleKind::Alert { for_, .. } = &self.rule.kind else {
            return;
        };
        let hold = for_.as_millis() as i64;
        let grace = FOR_GRACE_PERIOD.as_millis() as i64;
        let tolerance = OUTAGE_TOLERANCE.as_millis() as i64;
        for a in self.alerts.values_mut() {
            if a.state == AlertState::Inactive {
                continue;
            }
            let Some((down_at, value)) = last(&a.labels) else {
                continue;
            };
            if down_at >= t || t - down_at > tolerance || !value.is_finite() {
                continue;
            }
            let active_at = (value * 1000.0).round() as i64;
            let remaining = hold - (down_at - active_at);
            a.active_at = if hold <= grace || remaining <= 0 {
                active_at
            } else if remaining < grace {
                t + grace - hold
            } else {
                active_at + (t - down_at)
            };
        }
    }

    /// The rule's query at `t`: each sample's labels, float value (0 for a histogram, as
    /// Prometheus's `F`) and native histogram. LogQL rules give floats only.
    fn query(&self, t: i64, ctx: &EvalContext<'_>) -> Result<Vec<QueriedSample>, String> {
        if let Some(query) = ctx.query {
            return Ok(query(&self.rule.expr, t)?
                .into_iter()
                .map(|(labels, v)| (labels, v, None))
                .collect());
        }
        let value = ctx
            .engine
            .instant_query_value(ctx.source, &self.rule.expr, t)
            .map_err(|e| e.to_string())?;
        Ok(match value {
            InstantValue::Vector(v) => v.into_iter().map(|s| (s.labels, s.v, s.h)).collect(),
            InstantValue::Scalar(v) => vec![(Labels::default(), v, None)],
            InstantValue::String(_) | InstantValue::Matrix => {
                return Err("rule result is not a vector or scalar".into());
            }
        })
    }

    fn eval_record(
        &mut self,
        name: &str,
        t: i64,
        limit: usize,
        ctx: &EvalContext<'_>,
    ) -> Result<Output, String> {
        let mut seen = std::collections::HashSet::new();
        let mut samples = Vec::new();
        let mut histograms = Vec::new();
        for (labels, v, h) in self.query(t, ctx)? {
            let mut map: BTreeMap<String, String> = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            map.insert("__name__".into(), name.to_string());
            for (k, v) in &self.rule.labels {
                if v.is_empty() {
                    map.remove(k);
                } else {
                    map.insert(k.clone(), v.clone());
                }
            }
            let labels = Labels::from_pairs(map);
            if !seen.insert(labels.to_canonical()) {
                return Err(
                    "vector contains metrics with the same labelset after applying rule labels"
                        .into(),
                );
            }
            match h {
                Some(h) => histograms.push((labels, h)),
                None => samples.push((labels, v)),
            }
        }
        let series = samples.len() + histograms.len();
        if limit > 0 && series > limit {
            return Err(format!("exceeded limit of {limit} with {series} series"));
        }
        Ok(Output {
            samples,
            histograms,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_alert(
        &mut self,
        name: &str,
        for_: Duration,
        keep_firing_for: Duration,
        annotations: &BTreeMap<String, String>,
        t: i64,
        limit: usize,
        ctx: &EvalContext<'_>,
    ) -> Result<Output, String> {
        let result = self.query(t, ctx)?;
        let template_name = format!("__alert_{name}");
        let expand = |text: &str, labels: &BTreeMap<String, String>, value: f64| -> String {
            let data = AlertTemplateData {
                labels: labels.clone(),
                external_labels: ctx.external_labels.clone(),
                external_url: ctx.external_url.to_string(),
                value,
            };
            expand_alert_template(&template_name, text, &data, ctx.funcs)
                .unwrap_or_else(|e| format!("<error expanding template: {e}>"))
        };
        let mut current: HashMap<AlertKey, Observed> = HashMap::new();
        for (labels, v, _) in result {
            let mut map: BTreeMap<String, String> = labels
                .iter()
                .filter(|(k, _)| *k != "__name__")
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let series_labels = map.clone();
            for (k, text) in &self.rule.labels {
                let value = expand(text, &series_labels, v);
                if value.is_empty() {
                    map.remove(k);
                } else {
                    map.insert(k.clone(), value);
                }
            }
            map.insert("alertname".into(), name.to_string());
            let expanded: BTreeMap<String, String> = annotations
                .iter()
                .map(|(k, text)| (k.clone(), expand(text, &series_labels, v)))
                .collect();
            let key: Vec<(String, String)> = map.clone().into_iter().collect();
            if current.insert(key, (map, expanded, v)).is_some() {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                );
            }
        }
        for (key, (labels, annotations, value)) in &current {
            match self.alerts.get_mut(key) {
                Some(a) if a.state != AlertState::Inactive => {
                    a.value = *value;
                    a.annotations = annotations.clone();
                    a.labels = labels.clone();
                }
                _ => {
                    self.alerts.insert(
                        key.clone(),
                        Alert {
                            labels: labels.clone(),
                            annotations: annotations.clone(),
                            state: AlertState::Pending,
                            value: *value,
                            active_at: t,
                            fired_at: None,
                            resolved_at: None,
                            keep_firing_since: None,
                            last_sent_at: None,
                            valid_until: 0,
                        },
                    );
                }
            }
        }
        let hold = for_.as_millis() as i64;
        let keep = keep_firing_for.as_millis() as i64;
        let retention = RESOLVED_RETENTION.as_millis() as i64;
        self.alerts.retain(|key, a| {
            if !current.contains_key(key) {
                if a.state == AlertState::Firing && keep > 0 {
                    let since = *a.keep_firing_since.get_or_insert(t);
                    if t - since < keep {
                        return true;
                    }
                }
                if a.state == AlertState::Pending
                    || a.resolved_at.is_some_and(|r| t - r > retention)
                {
                    return false;
                }
                if a.state != AlertState::Inactive {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(t);
                }
                return true;
            }
            if a.state == AlertState::Firing {
                a.keep_firing_since = None;
            }
            if a.state == AlertState::Pending && t - a.active_at >= hold {
                a.state = AlertState::Firing;
                a.fired_at = Some(t);
            }
            true
        });
        let active = self
            .alerts
            .values()
            .filter(|a| a.state != AlertState::Inactive)
            .count();
        if limit > 0 && active > limit {
            self.alerts.clear();
            return Err(format!("exceeded limit of {limit} with {active} alerts"));
        }
        let mut samples = Vec::new();
        for a in self.alerts.values() {
            if a.state == AlertState::Inactive {
                continue;
            }
            let mut labels = a.labels.clone();
            labels.insert("__name__".into(), "ALERTS".into());
            labels.insert("alertstate".into(), a.state.as_str().into());
            samples.push((Labels::from_pairs(labels), 1.0));
            let mut labels = a.labels.clone();
            labels.insert("__name__".into(), "ALERTS_FOR_STATE".into());
            // Whole seconds, as Prometheus stores `ActiveAt.Unix()`.
            let active_at = a.active_at.div_euclid(1000) as f64;
            samples.push((Labels::from_pairs(labels), active_at));
        }
        samples.sort_by_key(|(labels, _)| labels.to_canonical());
        Ok(Output {
            samples,
            histograms: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use sightline_model::Sample;
    use sightline_promql::{EngineOptions, MemorySource};

    use super::*;
    use crate::rulefmt::{ParseOptions, parse};
    use crate::template::{PrometheusFuncsConfig, prometheus_funcs};

    fn rule(yaml_rule: &str) -> Rule {
        let text = format!("groups:\n  - name: g\n    rules:\n{yaml_rule}");
        let mut f = parse("r.yml", &text, ParseOptions::default()).unwrap();
        f.groups.remove(0).rules.remove(0)
    }

    struct World {
        engine: Engine,
        source: MemorySource,
        funcs: Funcs,
        external: BTreeMap<String, String>,
    }

    impl World {
        fn new() -> Self {
            World {
                engine: Engine::new(EngineOptions::default()),
                source: MemorySource::new(),
                funcs: prometheus_funcs(PrometheusFuncsConfig::default()),
                external: BTreeMap::from([("cluster".to_string(), "c1".to_string())]),
            }
        }

        /// `up{instance=i}` with one sample a minute from `values`.
        fn up(&mut self, instance: &str, values: &[f64]) {
            let samples = values
                .iter()
                .enumerate()
                .map(|(i, v)| Sample {
                    t: i as i64 * 60_000,
                    v: *v,
                })
                .collect();
            self.source.add(
                Labels::from_pairs([("__name__", "up"), ("job", "node"), ("instance", instance)]),
                samples,
            );
        }

        fn eval(&self, r: &mut RuleState, minute: i64) -> Result<Output, String> {
            let ctx = EvalContext {
                engine: &self.engine,
                source: &self.source,
                query: None,
                funcs: &self.funcs,
                external_labels: &self.external,
                external_url: "http://sightline:7070",
            };
            r.eval(minute * 60_000, 0, &ctx)
        }
    }

    fn states(r: &RuleState) -> Vec<(String, &'static str)> {
        let mut v: Vec<_> = r
            .alerts
            .values()
            .map(|a| (a.labels["instance"].clone(), a.state.as_str()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn pending_then_firing_after_for_then_resolved() {
        let mut w = World::new();
        w.up("a", &[1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]);
        let mut r = RuleState::new(rule(
            "      - alert: Down\n        expr: up == 0\n        for: 2m\n        labels: {severity: page}\n        annotations:\n          summary: '{{ $labels.instance }} of {{ $externalLabels.cluster }} is down ({{ $value }})'\n",
        ));
        assert!(w.eval(&mut r, 0).unwrap().samples.is_empty());
        let out = w.eval(&mut r, 1).unwrap();
        assert_eq!(states(&r), [("a".to_string(), "pending")]);
        let alerts: Vec<String> = out
            .samples
            .iter()
            .map(|(l, v)| format!("{} {v}", l.to_canonical()))
            .collect();
        assert_eq!(
            alerts,
            [
                "{__name__=\"ALERTS\", alertname=\"Down\", alertstate=\"pending\", instance=\"a\", job=\"node\", severity=\"page\"} 1",
                "{__name__=\"ALERTS_FOR_STATE\", alertname=\"Down\", instance=\"a\", job=\"node\", severity=\"page\"} 60",
            ]
        );
        w.eval(&mut r, 2).unwrap();
        assert_eq!(states(&r), [("a".to_string(), "pending")]);
        w.eval(&mut r, 3).unwrap();
        assert_eq!(states(&r), [("a".to_string(), "firing")]);
        let a = r.alerts.values().next().unwrap();
        assert_eq!(a.fired_at, Some(180_000));
        assert_eq!(a.annotations["summary"], "a of c1 is down (0)");
        w.eval(&mut r, 5).unwrap();
        assert_eq!(states(&r), [("a".to_string(), "inactive")]);
        assert_eq!(r.alerts.values().next().unwrap().resolved_at, Some(300_000));
        // Resolved alerts stay 15 minutes, then go.
        w.eval(&mut r, 20).unwrap();
        assert_eq!(states(&r), [("a".to_string(), "inactive")]);
        w.eval(&mut r, 21).unwrap();
        assert!(r.alerts.is_empty());
    }

    #[test]
    fn for_state_is_restored_as_prometheus_restores_it() {
        let mut w = World::new();
        w.up("a", &[0.0; 120]);
        let restored = |hold: &str, active_min: i64, down_min: i64, now_min: i64| {
            let mut r = RuleState::new(rule(&format!(
                "      - alert: Down\n        expr: up == 0\n        for: {hold}\n"
            )));
            w.eval(&mut r, now_min).unwrap();
            r.restore_for_state(now_min * 60_000, |_| {
                Some((down_min * 60_000, (active_min * 60) as f64))
            });
            r.alerts.values().next().unwrap().active_at / 60_000
        };
        // Within the grace period: the old time.
        assert_eq!(restored("5m", 10, 12, 14), 10);
        // Already firing when the server went down: the old time (fires again at once).
        assert_eq!(restored("20m", 10, 40, 45), 10);
        // Less than the grace period left: waits the grace period from now.
        assert_eq!(restored("20m", 10, 25, 30), 30 + 10 - 20);
        // Otherwise shifted by the outage.
        assert_eq!(restored("60m", 10, 20, 30), 20);
        // Older than the outage tolerance: not restored.
        assert_eq!(restored("5m", 0, 1, 119), 119);
    }

    #[test]
    fn a_pending_alert_that_goes_away_is_forgotten_and_for_zero_fires_at_once() {
        let mut w = World::new();
        w.up("a", &[0.0, 1.0]);
        let mut pending = RuleState::new(rule(
            "      - alert: Down\n        expr: up == 0\n        for: 5m\n",
        ));
        w.eval(&mut pending, 0).unwrap();
        assert_eq!(states(&pending), [("a".to_string(), "pending")]);
        w.eval(&mut pending, 1).unwrap();
        assert!(pending.alerts.is_empty());
        let mut now = RuleState::new(rule("      - alert: Down\n        expr: up == 0\n"));
        w.eval(&mut now, 0).unwrap();
        assert_eq!(states(&now), [("a".to_string(), "firing")]);
    }

    #[test]
    fn keep_firing_for_holds_a_firing_alert() {
        let mut w = World::new();
        w.up("a", &[0.0, 1.0, 1.0, 1.0, 1.0]);
        let mut r = RuleState::new(rule(
            "      - alert: Down\n        expr: up == 0\n        keep_firing_for: 2m\n",
        ));
        w.eval(&mut r, 0).unwrap();
        w.eval(&mut r, 1).unwrap();
        assert_eq!(states(&r), [("a".to_string(), "firing")]);
        w.eval(&mut r, 2).unwrap();
        assert_eq!(states(&r), [("a".to_string(), "firing")]);
        w.eval(&mut r, 3).unwrap();
        assert_eq!(states(&r), [("a".to_string(), "inactive")]);
    }

    #[test]
    fn recording_rules_name_their_series_and_duplicates_are_errors() {
        let mut w = World::new();
        w.up("a", &[1.0]);
        w.up("b", &[0.0]);
        let mut r = RuleState::new(rule(
            "      - record: job:up:sum\n        expr: sum by (job) (up)\n        labels: {team: ops}\n",
        ));
        let out = w.eval(&mut r, 0).unwrap();
        assert_eq!(out.samples.len(), 1);
        assert_eq!(
            out.samples[0].0.to_canonical(),
            "{__name__=\"job:up:sum\", job=\"node\", team=\"ops\"}"
        );
        assert_eq!(out.samples[0].1, 1.0);
        let mut dup = RuleState::new(rule(
            "      - record: x\n        expr: up\n        labels: {instance: same}\n",
        ));
        let e = w.eval(&mut dup, 0).unwrap_err();
        assert_eq!(
            e,
            "vector contains metrics with the same labelset after applying rule labels"
        );
        assert_eq!(dup.last_error.as_deref(), Some(e.as_str()));
    }

    #[test]
    fn the_limit_clears_alerts_and_is_an_error() {
        let mut w = World::new();
        w.up("a", &[0.0]);
        w.up("b", &[0.0]);
        let mut r = RuleState::new(rule("      - alert: Down\n        expr: up == 0\n"));
        let ctx = EvalContext {
            engine: &w.engine,
            source: &w.source,
            query: None,
            funcs: &w.funcs,
            external_labels: &w.external,
            external_url: "",
        };
        let e = r.eval(0, 1, &ctx).unwrap_err();
        assert_eq!(e, "exceeded limit of 1 with 2 alerts");
        assert!(r.alerts.is_empty());
    }

    #[test]
    fn a_template_that_fails_leaves_its_error_in_the_text() {
        let mut w = World::new();
        w.up("a", &[0.0]);
        let mut r = RuleState::new(rule(
            "      - alert: Down\n        expr: up == 0\n        annotations:\n          summary: '{{ $labels.instance.foo }}'\n",
        ));
        w.eval(&mut r, 0).unwrap();
        let summary = &r.alerts.values().next().unwrap().annotations["summary"];
        assert!(
            summary.starts_with("<error expanding template: "),
            "{summary}"
        );
    }
}
