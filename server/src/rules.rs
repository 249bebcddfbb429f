//! `[alerting] rule_files`: Prometheus rule groups evaluated on their interval, their output
//! (recorded series, `ALERTS`, `ALERTS_FOR_STATE`) written through the metric ingest path
//! (durable, queryable), and their state served on `/api/v1/rules` and `/api/v1/alerts` in
//! Prometheus's JSON shapes (Grafana reads them).
//!
//! Rules are evaluated for the `default` tenant. A group is evaluated at multiples of its
//! interval; its rules run in order, each one's output stored before the next runs, so
//! that a rule can use the series an earlier rule of its group recorded at the same time
//! (as in Prometheus).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use sightline_alerting::alertmanager::alerts::Alert as ManagerAlert;
use sightline_alerting::eval::{AlertState, EvalContext, RuleState};
use sightline_alerting::rulefmt::{self, ParseOptions, RuleKind};
use sightline_alerting::template::{PrometheusFuncsConfig, QueryEngine, QuerySample};
use sightline_alerting::{Funcs, prometheus_funcs};
use sightline_indexer::LogStore;
use sightline_ingest::MetricIngestHandle;
use sightline_model::{Direction, Labels, MetricBatch, MetricSeries, Sample, TenantId};
use sightline_promql::{Engine, TsdbSource, Value as PromValue};
use sightline_tsdb::Tsdb;

use crate::alertmanager::AlertManager;

/// One loaded group and its rules' states.
struct Group {
    file: String,
    /// The expressions are LogQL, evaluated over logs (Loki's ruler format).
    logql: bool,
    name: String,
    interval: Duration,
    limit: usize,
    rules: Vec<RuleState>,
    last_evaluation: Option<i64>,
    evaluation_seconds: f64,
    /// `for` state was restored (after the first evaluation since start).
    restored: bool,
}

/// The rule packs of the repository's `rules/`, built in (`[alerting] rule_packs`).
pub const RULE_PACKS: [(&str, &str); 5] = [
    (
        "builtin:rules/anomaly.yml",
        include_str!("../../rules/anomaly.yml"),
    ),
    (
        "builtin:rules/hosts.yml",
        include_str!("../../rules/hosts.yml"),
    ),
    (
        "builtin:rules/containers.yml",
        include_str!("../../rules/containers.yml"),
    ),
    (
        "builtin:rules/services-red.yml",
        include_str!("../../rules/services-red.yml"),
    ),
    (
        "builtin:rules/sightline.yml",
        include_str!("../../rules/sightline.yml"),
    ),
];

/// The LogQL packs of `rules/logql/` (Loki's ruler format), built in likewise.
pub const LOGQL_RULE_PACKS: [(&str, &str); 1] = [(
    "builtin:rules/logql/logs.yml",
    include_str!("../../rules/logql/logs.yml"),
)];

/// The loaded rule groups.
pub struct Rules {
    groups: Mutex<Vec<Group>>,
    packs: bool,
    paths: Vec<PathBuf>,
    logql_paths: Vec<PathBuf>,
    slo_paths: Vec<PathBuf>,
    default_interval: Duration,
    external_labels: BTreeMap<String, String>,
    external_url: String,
}

impl Rules {
    /// Loads `paths` (files, or directories whose `*.yml`/`*.yaml` files are read); every
    /// problem of every file is reported, and any problem refuses the set.
    pub fn load(
        packs: bool,
        paths: &[PathBuf],
        slo_paths: &[PathBuf],
        logql_paths: &[PathBuf],
        default_interval: Duration,
        external_labels: BTreeMap<String, String>,
        external_url: String,
    ) -> anyhow::Result<Self> {
        Ok(Rules {
            groups: Mutex::new(read_groups(
                packs,
                paths,
                slo_paths,
                logql_paths,
                default_interval,
            )?),
            packs,
            paths: paths.to_vec(),
            logql_paths: logql_paths.to_vec(),
            slo_paths: slo_paths.to_vec(),
            default_interval,
            external_labels,
            external_url,
        })
    }

    /// Reads the rule files again (SIGHUP, `POST /-/reload`). A set with problems is refused
    /// and the running rules are kept; otherwise the new set replaces them, and each rule
    /// that is the same as before (same file, group, name and expression) keeps its alerts
    /// and its group its schedule, as in Prometheus. Returns how many rules are loaded.
    pub fn reload(&self) -> anyhow::Result<usize> {
        let mut fresh = read_groups(
            self.packs,
            &self.paths,
            &self.slo_paths,
            &self.logql_paths,
            self.default_interval,
        )?;
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        for g in &mut fresh {
            let Some(old) = groups
                .iter_mut()
                .find(|o| o.file == g.file && o.name == g.name)
            else {
                continue;
            };
            g.last_evaluation = old.last_evaluation;
            g.restored = old.restored;
            for r in &mut g.rules {
                if let Some(prev) = old
                    .rules
                    .iter_mut()
                    .find(|p| p.rule.name() == r.rule.name() && p.rule.expr == r.rule.expr)
                {
                    r.alerts = std::mem::take(&mut prev.alerts);
                    r.last_evaluation = prev.last_evaluation;
                }
            }
        }
        let count = fresh.iter().map(|g| g.rules.len()).sum();
        *groups = fresh;
        Ok(count)
    }

    /// The shortest group interval (how often [`run`] looks for due groups).
    fn tick(&self) -> Duration {
        self.groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|g| g.interval)
            .min()
            .unwrap_or(Duration::from_secs(60))
            .min(Duration::from_secs(1))
    }

    /// `/api/v1/rules`'s data, Prometheus's shape.
    pub fn rules_json(&self, kind: Option<&str>) -> Value {
        let groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        let groups: Vec<Value> = groups
            .iter()
            .map(|g| {
                let rules: Vec<Value> = g
                    .rules
                    .iter()
                    .filter(|r| {
                        !matches!(
                            (kind, &r.rule.kind),
                            (Some("alert"), RuleKind::Record { .. })
                                | (Some("record"), RuleKind::Alert { .. })
                        )
                    })
                    .map(rule_json)
                    .collect();
                json!({
                    "name": g.name,
                    "file": g.file,
                    "rules": rules,
                    "interval": g.interval.as_secs_f64(),
                    "limit": g.limit,
                    "evaluationTime": g.evaluation_seconds,
                    "lastEvaluation": time_json(g.last_evaluation),
                })
            })
            .collect();
        json!({ "groups": groups })
    }

    /// `/api/v1/alerts`'s data: every pending or firing alert.
    pub fn alerts_json(&self) -> Value {
        let groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        let alerts: Vec<Value> = groups
            .iter()
            .flat_map(|g| g.rules.iter())
            .flat_map(alerts_of)
            .collect();
        json!({ "alerts": alerts })
    }
}

/// Every group of the rule files `paths` names and of the rules compiled from the SLO specs
/// `slo_paths` names, or every problem found in them.
fn read_groups(
    packs: bool,
    paths: &[PathBuf],
    slo_paths: &[PathBuf],
    logql_paths: &[PathBuf],
    default_interval: Duration,
) -> anyhow::Result<Vec<Group>> {
    let mut groups = Vec::new();
    let mut problems = Vec::new();
    let mut sources = Vec::new();
    if packs {
        sources.extend(
            RULE_PACKS
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string())),
        );
    }
    for file in rule_files(paths)? {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read rule file {name}"))?;
        sources.push((name, text));
    }
    for file in rule_files(slo_paths)? {
        let name = file.display().to_string();
        let spec = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read SLO file {name}"))?;
        match sightline_alerting::slo::compile(&name, &spec) {
            Ok(text) => sources.push((name, text)),
            Err(e) => problems.push(e),
        }
    }
    let mut logql_sources = Vec::new();
    if packs {
        logql_sources.extend(
            LOGQL_RULE_PACKS
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string())),
        );
    }
    for file in rule_files(logql_paths)? {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read LogQL rule file {name}"))?;
        logql_sources.push((name, text));
    }
    let all = sources
        .into_iter()
        .map(|s| (s, false))
        .chain(logql_sources.into_iter().map(|s| (s, true)));
    for ((name, text), logql) in all {
        let options = ParseOptions {
            logql,
            ..ParseOptions::default()
        };
        match rulefmt::parse(&name, &text, options) {
            Ok(parsed) => groups.extend(parsed.groups.into_iter().map(|g| Group {
                file: name.clone(),
                logql,
                interval: g.interval.unwrap_or(default_interval),
                name: g.name,
                limit: g.limit,
                rules: g.rules.into_iter().map(RuleState::new).collect(),
                last_evaluation: None,
                evaluation_seconds: 0.0,
                restored: false,
            })),
            Err(errors) => problems.extend(errors.iter().map(ToString::to_string)),
        }
    }
    if !problems.is_empty() {
        anyhow::bail!("invalid rule files:\n{}", problems.join("\n"));
    }
    Ok(groups)
}

/// Rule files named by `paths`: files as given, directories' `*.yml` and `*.yaml` in name
/// order.
fn rule_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot list rule directory {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "yml" || x == "yaml"))
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// A time for the API: RFC 3339 with nanoseconds (Prometheus's form), or Go's zero time.
fn time_json(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            .unwrap_or_default(),
        None => "0001-01-01T00:00:00Z".into(),
    }
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: `1e+00`, `2.5e-03`.
fn go_e(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!(
        "{mantissa}e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    )
}

fn alerts_of(r: &RuleState) -> Vec<Value> {
    let mut alerts: Vec<&sightline_alerting::eval::Alert> = r
        .alerts
        .values()
        .filter(|a| a.state != AlertState::Inactive)
        .collect();
    alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
    alerts
        .into_iter()
        .map(|a| {
            let mut v = json!({
                "labels": a.labels,
                "annotations": a.annotations,
                "state": a.state.as_str(),
                "activeAt": time_json(Some(a.active_at)),
                "value": go_e(a.value),
            });
            if let Some(since) = a.keep_firing_since {
                v["keepFiringSince"] = json!(time_json(Some(since)));
            }
            v
        })
        .collect()
}

fn rule_json(r: &RuleState) -> Value {
    let health = match (&r.last_error, r.last_evaluation) {
        (Some(_), _) => "err",
        (None, Some(_)) => "ok",
        (None, None) => "unknown",
    };
    let mut v = json!({
        "name": r.rule.name(),
        "query": r.rule.expr,
        "labels": r.rule.labels,
        "health": health,
        "lastError": r.last_error.clone().unwrap_or_default(),
        "evaluationTime": r.evaluation_seconds,
        "lastEvaluation": time_json(r.last_evaluation),
    });
    match &r.rule.kind {
        RuleKind::Alert {
            for_,
            keep_firing_for,
            annotations,
            ..
        } => {
            let active: Vec<AlertState> = r.alerts.values().map(|a| a.state).collect();
            let state = if active.contains(&AlertState::Firing) {
                "firing"
            } else if active.contains(&AlertState::Pending) {
                "pending"
            } else {
                "inactive"
            };
            v["type"] = json!("alerting");
            v["state"] = json!(state);
            v["duration"] = json!(for_.as_secs_f64());
            v["keepFiringFor"] = json!(keep_firing_for.as_secs_f64());
            v["annotations"] = json!(annotations);
            v["alerts"] = json!(alerts_of(r));
        }
        RuleKind::Record { .. } => v["type"] = json!("recording"),
    }
    v
}

/// The `query` template function over the TSDB.
struct TsdbQuery {
    tsdb: Arc<Tsdb>,
    engine: Arc<Engine>,
    tenant: TenantId,
}

impl QueryEngine for TsdbQuery {
    fn query(&self, q: &str) -> Result<Vec<QuerySample>, String> {
        let now = crate::now_ns() / 1_000_000;
        let source = TsdbSource::new(&self.tsdb, &self.tenant);
        let result = self
            .engine
            .instant_query(&source, q, now)
            .map_err(|e| e.to_string())?;
        Ok(match result.value {
            PromValue::Vector(v) => v
                .into_iter()
                .map(|s| QuerySample {
                    labels: s
                        .labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    value: s.v,
                })
                .collect(),
            PromValue::Scalar { v, .. } => vec![QuerySample {
                labels: BTreeMap::new(),
                value: v,
            }],
            _ => vec![],
        })
    }
}

/// The last `ALERTS_FOR_STATE` sample of exactly this alert's label set before `t`, within
/// the outage tolerance: its time and value.
fn last_for_state(
    source: &TsdbSource<'_>,
    labels: &BTreeMap<String, String>,
    t: i64,
) -> Option<(i64, f64)> {
    use sightline_model::{LabelMatcher, MatchOp};
    use sightline_promql::SeriesSource;
    let mut matchers =
        vec![LabelMatcher::new("__name__", MatchOp::Equal, "ALERTS_FOR_STATE").ok()?];
    for (k, v) in labels {
        matchers.push(LabelMatcher::new(k.clone(), MatchOp::Equal, v.clone()).ok()?);
    }
    let tolerance = sightline_alerting::eval::OUTAGE_TOLERANCE.as_millis() as i64;
    let series = source.select(&matchers, t - tolerance, t - 1).ok()?;
    series
        .into_iter()
        // Exactly this label set, not a superset.
        .filter(|s| s.labels.len() == labels.len() + 1)
        .filter_map(|s| s.samples.last().map(|x| (x.t, x.v)))
        .max_by_key(|(t, _)| *t)
}

/// Evaluates the groups that are due at `now_ms` (the clock, or a driver's simulated time),
/// writing each rule's output before the next rule runs; their alerts reach the alert
/// manager stamped with that time.
pub async fn evaluate_due(rules: &Arc<Rules>, deps: &RuleDeps, funcs: &Arc<Funcs>, now_ms: i64) {
    let RuleDeps {
        tsdb,
        engine,
        ingest,
        logs,
        alertmanager,
    } = deps;
    let tenant = TenantId::default_tenant();
    let due: Vec<(usize, i64)> = {
        let groups = rules.groups.lock().unwrap_or_else(|p| p.into_inner());
        groups
            .iter()
            .enumerate()
            .filter_map(|(i, g)| {
                let every = (g.interval.as_millis() as i64).max(1);
                let t = now_ms - now_ms.rem_euclid(every);
                g.last_evaluation
                    .is_none_or(|last| t > last)
                    .then_some((i, t))
            })
            .collect()
    };
    for (gi, t) in due {
        let count = rules.groups.lock().unwrap_or_else(|p| p.into_inner())[gi]
            .rules
            .len();
        let started = std::time::Instant::now();
        for ri in 0..count {
            let (r, tsdb, engine, funcs, t_, logs) = (
                rules.clone(),
                tsdb.clone(),
                engine.clone(),
                funcs.clone(),
                tenant.clone(),
                logs.clone(),
            );
            let output = tokio::task::spawn_blocking(move || {
                let mut groups = r.groups.lock().unwrap_or_else(|p| p.into_inner());
                let limit = groups[gi].limit;
                let source = TsdbSource::new(&tsdb, &t_);
                // A LogQL group's expressions run over the tenant's logs.
                let logql = |expr: &str, t_ms: i64| -> Result<Vec<(Labels, f64)>, String> {
                    let parsed = sightline_logql::parse(expr).map_err(|e| e.to_string())?;
                    let result = sightline_logql::query_instant(
                        logs.as_ref(),
                        &t_,
                        &parsed,
                        t_ms.saturating_mul(1_000_000),
                        0,
                        Direction::Backward,
                    )
                    .map_err(|e| e.to_string())?;
                    match result {
                        sightline_logql::QueryResult::Vector(v) => {
                            Ok(v.into_iter().map(|s| (s.labels, s.value)).collect())
                        }
                        _ => Err("a LogQL rule needs a metric query".to_owned()),
                    }
                };
                let ctx = EvalContext {
                    engine: &engine,
                    source: &source,
                    query: if groups[gi].logql { Some(&logql) } else { None },
                    funcs: &funcs,
                    external_labels: &r.external_labels,
                    external_url: &r.external_url,
                };
                let restore = !groups[gi].restored;
                let rule = &mut groups[gi].rules[ri];
                let out = rule.eval(t, limit, &ctx);
                if restore && out.is_ok() {
                    rule.restore_for_state(t, |labels| last_for_state(&source, labels, t));
                }
                out
            })
            .await;
            let samples = match output {
                Ok(Ok(out)) => out.samples,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "rule evaluation failed");
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "rule evaluation task failed");
                    continue;
                }
            };
            if samples.is_empty() {
                continue;
            }
            let batch = MetricBatch {
                tenant: tenant.clone(),
                series: samples
                    .into_iter()
                    .map(|(labels, v)| MetricSeries {
                        labels,
                        samples: vec![Sample { t, v }],
                    })
                    .collect(),
            };
            match ingest.ingest(batch).await {
                Ok(report) if report.rejected_total() > 0 => tracing::warn!(
                    rejected = report.rejected_total(),
                    first = ?report.first_rejection,
                    "rule output refused by the store"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot write rule output"),
            }
        }
        let to_send = {
            let mut groups = rules.groups.lock().unwrap_or_else(|p| p.into_inner());
            groups[gi].restored = true;
            groups[gi].last_evaluation = Some(t);
            groups[gi].evaluation_seconds = started.elapsed().as_secs_f64();
            let interval = groups[gi].interval;
            groups[gi]
                .rules
                .iter_mut()
                .flat_map(|r| {
                    let expr = r.rule.expr.clone();
                    r.alerts_to_send(t, interval)
                        .into_iter()
                        .map(move |a| (expr.clone(), a))
                })
                .collect::<Vec<_>>()
        };
        if !to_send.is_empty() {
            let now = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
            let alerts: Vec<_> = to_send
                .into_iter()
                .map(|(expr, a)| to_manager_alert(rules, &expr, a, now))
                .collect();
            let (am, tenant) = (alertmanager.clone(), tenant.clone());
            let sent =
                tokio::task::spawn_blocking(move || am.insert_alerts(&tenant, alerts, now)).await;
            if let Ok(Err(e)) = sent {
                tracing::warn!(error = ?e, "cannot hand alerts to the alert manager");
            }
        }
    }
}

/// A rule's alert as Prometheus's notifier sends it: starting when it fired, ending when
/// it resolved or else when it stops being valid, with the external labels and a link to
/// the expression.
fn to_manager_alert(
    rules: &Rules,
    expr: &str,
    a: sightline_alerting::eval::Alert,
    now: chrono::DateTime<chrono::Utc>,
) -> ManagerAlert {
    let at = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    let mut labels = a.labels;
    for (k, v) in &rules.external_labels {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("g0.expr", expr)
        .append_pair("g0.tab", "1")
        .finish();
    ManagerAlert {
        labels,
        annotations: a.annotations,
        starts_at: at(a.fired_at.unwrap_or(a.active_at)),
        ends_at: at(a.resolved_at.unwrap_or(a.valid_until)),
        generator_url: format!("{}/graph?{query}", rules.external_url.trim_end_matches('/')),
        updated_at: now,
        timeout: false,
    }
}

/// What rule evaluation reads (metrics, logs) and writes to (the metric ingest path, the
/// alert manager).
pub struct RuleDeps {
    pub tsdb: Arc<Tsdb>,
    pub engine: Arc<Engine>,
    pub ingest: MetricIngestHandle,
    pub logs: Arc<LogStore>,
    pub alertmanager: Arc<AlertManager>,
}

/// Evaluates the rules until `stop`. It keeps ticking with no rules loaded, since a reload
/// may bring some.
pub async fn run(rules: Arc<Rules>, deps: RuleDeps, mut stop: tokio::sync::watch::Receiver<bool>) {
    let funcs = template_funcs(&rules, &deps);
    let mut ticker = tokio::time::interval(rules.tick());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        let now_ms = crate::now_ns() / 1_000_000;
        evaluate_due(&rules, &deps, &funcs, now_ms).await;
    }
}

/// The template functions of alert annotations (`query` over the TSDB among them).
pub fn template_funcs(rules: &Rules, deps: &RuleDeps) -> Arc<Funcs> {
    Arc::new(prometheus_funcs(PrometheusFuncsConfig {
        query: Some(Arc::new(TsdbQuery {
            tsdb: deps.tsdb.clone(),
            engine: deps.engine.clone(),
            tenant: TenantId::default_tenant(),
        })),
        external_url: rules.external_url.clone(),
        ..PrometheusFuncsConfig::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::go_e;

    #[test]
    fn values_print_as_go_e() {
        assert_eq!(go_e(1.0), "1e+00");
        assert_eq!(go_e(0.0025), "2.5e-03");
        assert_eq!(go_e(123456.0), "1.23456e+05");
        assert_eq!(go_e(f64::NAN), "NaN");
    }
}
