//! Root cause on demand, from stored data: the entities a symptom depends on (topology:
//! `calls` and `depends_on`, transitively) and each one's metrics through its PromQL selector,
//! over a window before and after the onset, ranked by `sightline-rca`. Serves
//! `/api/v1/rca` and the incidents' analysis.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use sightline_http::ApiError;
use sightline_incidents::advice;
use sightline_model::{Cancellation, METRIC_NAME_LABEL, MetricSeries, TenantId};
use sightline_promql::{Engine, QueryError, TsdbSource, Value as PromValue};
use sightline_rca::{Entity, Params as RcaParams, Problem, Series};
use sightline_topology::graph::Window;
use sightline_topology::model::ChangeEvent;
use sightline_topology::store::read_graph;
use sightline_topology::views::{Renderer, selectors};
use sightline_topology::{EntityId, EntityKind, RelationKind, Topology};
use sightline_tsdb::Tsdb;

/// A topology change as the advice reads a release (a deploy, version, revision or image).
pub(crate) fn release(c: ChangeEvent) -> advice::Change {
    advice::Change {
        kind: c.kind,
        from: c.from,
        to: c.to,
        time: c.time,
    }
}

/// What the analysis reads.
#[derive(Clone)]
pub struct RootCause {
    pub topology: Arc<Topology>,
    pub tsdb: Arc<Tsdb>,
    pub engine: Arc<Engine>,
}

/// Entities below the symptom read at most (the nearest first).
const MAX_ENTITIES: usize = 1_000;
/// Series per entity read at most (histogram buckets are left out first).
const MAX_SERIES_PER_ENTITY: usize = 200;
/// A change this soon after the onset (an alert's onset is approximate) still counts as
/// before it.
const CHANGES_AFTER_MS: i64 = 60_000;
/// Changes this long before the onset are shown with the causes.
const CHANGES_BEFORE_MS: i64 = 3_600_000;

/// What to analyse.
#[derive(Debug, Clone)]
pub struct Question {
    pub symptom: EntityId,
    /// The metric that shows the symptom, when known.
    pub metric: Option<String>,
    /// Onset, history start and end of the data read (ms).
    pub onset: i64,
    pub start: i64,
    pub end: i64,
    pub params: RcaParams,
    /// Causes answered at most.
    pub limit: usize,
    /// When the symptom was first seen (an incident's first alert): a change up to then
    /// came before it, whatever the estimated onset says.
    pub seen: Option<i64>,
}

impl RootCause {
    /// Ranks the causes of `q.symptom` from the stored data: the answer of `/api/v1/rca`.
    pub fn analyse(
        &self,
        tenant: &TenantId,
        q: &Question,
        cancel: &Cancellation,
    ) -> Result<Value, ApiError> {
        let s = self;
        let (symptom, metric, onset, start, end, method, limit) = (
            &q.symptom,
            q.metric.clone(),
            q.onset,
            q.start,
            q.end,
            q.params,
            q.limit,
        );
        let window = Window { start, end };
        // The graph below the symptom, breadth first, and each entity's selector.
        let (order, calls, groups, places, selectors_of, views, mut changes, changed_before) = {
            let g = s.topology.graph_for_reading(tenant);
            let g = read_graph(&g);
            if g.entity(symptom).is_none_or(|e| !g.entity_in(e, window)) {
                return Err(ApiError::not_found(format!(
                    "no entity {symptom} in the topology between {start} and {end} ms"
                )));
            }
            // What each entity needs: what it calls and depends on, a service its
            // instances, an instance or pod what it runs on, a node or host its zone.
            let mut out: HashMap<&EntityId, Vec<&EntityId>> = HashMap::new();
            // And what is located in or runs on each entity (for the places below).
            let mut contains: HashMap<&EntityId, Vec<&EntityId>> = HashMap::new();
            for (a, b, r) in g.relations_in(window) {
                if matches!(r.kind, Some(RelationKind::RunsOn | RelationKind::LocatedIn)) {
                    contains.entry(b).or_default().push(a);
                }
                match r.kind {
                    Some(RelationKind::Calls | RelationKind::DependsOn | RelationKind::RunsOn) => {
                        out.entry(a).or_default().push(b)
                    }
                    Some(RelationKind::LocatedIn)
                        if matches!(a.kind(), Some(EntityKind::Node | EntityKind::Host)) =>
                    {
                        out.entry(a).or_default().push(b)
                    }
                    Some(RelationKind::MemberOf) if b.kind() == Some(EntityKind::Service) => {
                        out.entry(b).or_default().push(a)
                    }
                    _ => {}
                }
            }
            // An instance calls what its service calls (the service graph knows calls
            // between services only).
            let services_needs: Vec<(&EntityId, Vec<&EntityId>)> = out
                .iter()
                .filter(|(s, _)| s.kind() == Some(EntityKind::Service))
                .map(|(s, needs)| (*s, needs.clone()))
                .collect();
            for (service, needs) in services_needs {
                let instances: Vec<&EntityId> = needs
                    .iter()
                    .copied()
                    .filter(|x| x.kind() == Some(EntityKind::Instance))
                    .collect();
                let called: Vec<&EntityId> = needs
                    .iter()
                    .copied()
                    .filter(|x| x.kind() != Some(EntityKind::Instance))
                    .collect();
                let _ = service;
                for i in instances {
                    out.entry(i).or_default().extend(called.iter().copied());
                }
            }
            let mut order = vec![symptom.clone()];
            let mut seen = HashSet::from([symptom.clone()]);
            let mut calls = Vec::new();
            let mut queue = VecDeque::from([symptom.clone()]);
            while let Some(x) = queue.pop_front() {
                for &y in out.get(&x).into_iter().flatten() {
                    calls.push((x.to_string(), y.to_string()));
                    if seen.len() < MAX_ENTITIES && seen.insert(y.clone()) {
                        order.push(y.clone());
                        queue.push_back(y.clone());
                    }
                }
            }
            // Nothing known below the symptom (no call graph): every entity of the window is
            // a suspect, judged by its change alone.
            if order.len() == 1 {
                for e in g.entities_in(window) {
                    if seen.len() < MAX_ENTITIES && seen.insert(e.id.clone()) {
                        order.push(e.id.clone());
                    }
                }
            }
            calls.retain(|(a, b)| {
                seen.contains(&EntityId::parse(a).expect("id"))
                    && seen.contains(&EntityId::parse(b).expect("id"))
            });
            let renderer = Renderer { graph: &g, window };
            let mut selectors_of = HashMap::new();
            let mut views = HashMap::new();
            for id in &order {
                if let Some(e) = g.entity(id) {
                    let sel = selectors(&g, e).promql;
                    // A selector on `target_info` picks an entity's resource, not its metrics.
                    if let Some(sel) = sel.filter(|s| !s.starts_with("target_info")) {
                        selectors_of.insert(id.clone(), sel);
                    }
                    views.insert(id.to_string(), renderer.entity(e, None));
                }
            }
            // What changed on them from a while before the onset: a deploy just before is
            // evidence.
            let mut changes: HashMap<String, Vec<Value>> = HashMap::new();
            for c in g.changes(
                Window {
                    start: onset.saturating_sub(CHANGES_BEFORE_MS),
                    end,
                },
                end,
            ) {
                if seen.contains(&c.entity) {
                    changes
                        .entry(c.entity.to_string())
                        .or_default()
                        .push(serde_json::to_value(&c).expect("serialises"));
                }
            }
            // Changed shortly before the onset (a deploy, a version, a revision, an image),
            // an instance's change counting for its service too — unless its latest change
            // put back what ran before (a rollback done: the entity runs what it ran).
            let mut changed_before: HashSet<EntityId> = HashSet::new();
            let mut releases: HashMap<EntityId, Vec<ChangeEvent>> = HashMap::new();
            // (From twice as long before, to tell a rollback of an older release.)
            for c in g.changes(
                Window {
                    start: onset.saturating_sub(2 * CHANGES_BEFORE_MS),
                    end: onset
                        .saturating_add(CHANGES_AFTER_MS)
                        .max(q.seen.unwrap_or(i64::MIN)),
                },
                end,
            ) {
                if matches!(c.kind.as_str(), "deploy" | "version" | "revision" | "image") {
                    releases.entry(c.entity.clone()).or_default().push(c);
                }
            }
            for (entity, cs) in releases {
                let history: Vec<advice::Change> = cs.into_iter().map(release).collect();
                let since = onset.saturating_sub(CHANGES_BEFORE_MS);
                if !advice::changes_to_undo(&history, since).is_empty() {
                    for s in g.neighbours(&entity, RelationKind::MemberOf, true) {
                        changed_before.insert(s.id.clone());
                    }
                    changed_before.insert(entity);
                }
            }
            // Each service with its instances among the suspects.
            let groups: Vec<(String, Vec<String>)> = order
                .iter()
                .filter(|id| id.kind() == Some(EntityKind::Service))
                .map(|s| {
                    let members = out
                        .get(s)
                        .into_iter()
                        .flatten()
                        .filter(|x| x.kind() == Some(EntityKind::Instance) && seen.contains(*x))
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>();
                    (s.to_string(), members)
                })
                .filter(|(_, m)| !m.is_empty())
                .collect();
            // Each zone, region, node or host among the suspects with what is located in it
            // or runs on it, transitively, among the suspects.
            let places: Vec<(String, Vec<String>)> = order
                .iter()
                .filter(|id| {
                    matches!(
                        id.kind(),
                        Some(
                            EntityKind::Zone
                                | EntityKind::Region
                                | EntityKind::Node
                                | EntityKind::Host
                        )
                    )
                })
                .map(|place| {
                    let mut members = Vec::new();
                    let mut inside = HashSet::from([place]);
                    let mut stack = vec![place];
                    while let Some(x) = stack.pop() {
                        for &m in contains.get(x).into_iter().flatten() {
                            if inside.insert(m) {
                                stack.push(m);
                                if seen.contains(m) {
                                    members.push(m.to_string());
                                }
                            }
                        }
                    }
                    (place.to_string(), members)
                })
                .filter(|(_, m)| m.len() >= 2)
                .collect();
            (
                order,
                calls,
                groups,
                places,
                selectors_of,
                views,
                changes,
                changed_before,
            )
        };

        let source = TsdbSource::new(&s.tsdb, tenant);
        let range_ms = (end - start).max(1);
        let mut entities = Vec::with_capacity(order.len());
        for id in &order {
            let mut series = Vec::new();
            if let Some(sel) = selectors_of.get(id) {
                let query = format!("{sel}[{range_ms}ms]");
                let result = s
                    .engine
                    .instant_query_until(&source, &query, end, cancel)
                    .map_err(|e| match e {
                        QueryError::Stopped(why) => ApiError::from(why),
                        e => {
                            ApiError::internal(format!("reading the metrics of {id} ({sel}): {e}"))
                        }
                    })?;
                if let PromValue::Matrix(m) = result.value {
                    series = to_series(m);
                }
            }
            entities.push(Entity {
                id: id.to_string(),
                series,
                external: id.kind() == Some(EntityKind::External),
                changed: changed_before.contains(id),
            });
        }
        let problem = Problem {
            symptom: symptom.as_str(),
            symptom_metric: metric.as_deref(),
            onset_ms: onset,
            entities: &entities,
            calls: &calls,
            groups: &groups,
            places: &places,
        };
        let ranked = sightline_rca::rank(&problem, &method);
        let read: usize = entities.iter().map(|e| e.series.len()).sum();
        let causes: Vec<Value> = ranked
            .into_iter()
            .take(limit)
            .map(|r| {
                let mut v = serde_json::to_value(&r).expect("serialises");
                if let Some(view) = views.get(&r.entity) {
                    v["name"] = json!(view.name);
                    v["kind"] = json!(view.kind);
                    v["owner"] = json!(view.owner);
                    v["criticality"] = json!(view.criticality);
                }
                v["changes"] = json!(changes.remove(&r.entity).unwrap_or_default());
                v
            })
            .collect();
        Ok(json!({
            "symptom": symptom.as_str(),
            "metric": metric,
            "onset": onset,
            "start": start,
            "end": end,
            "params": method,
            "entities": order.len(),
            "series": read,
            "causes": causes,
        }))
    }
}

/// Matrix series as the method's. Following Prometheus's naming conventions, cumulative
/// series (`_total`, `_count`, `_sum`) are judged by their rate (a counter grows after any
/// onset); a histogram's or summary's `_sum` and `_count` of the same labels also give its
/// mean (`X_mean`: the mean latency an operator looks at); bucket series are left out (the
/// mean and the counts carry their change). At most [`MAX_SERIES_PER_ENTITY`].
fn to_series(m: Vec<MetricSeries>) -> Vec<Series> {
    let name = |s: &MetricSeries| s.labels.get(METRIC_NAME_LABEL).unwrap_or("").to_string();
    let others = |s: &MetricSeries| {
        s.labels
            .iter()
            .filter(|(k, _)| *k != METRIC_NAME_LABEL)
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut out = Vec::new();
    type Increases = Vec<(i64, f64, f64)>;
    let mut sums: HashMap<(String, String), Increases> = HashMap::new();
    let mut counts: HashMap<(String, String), Increases> = HashMap::new();
    for s in &m {
        let n = name(s);
        if n.ends_with("_bucket") {
            continue;
        }
        let labels = others(s);
        let raw: Vec<(i64, f64)> = s.samples.iter().map(|p| (p.t, p.v)).collect();
        let cumulative = ["_total", "_count", "_sum"].iter().any(|x| n.ends_with(x));
        if cumulative {
            let increases = increases(&raw);
            if let Some(base) = n.strip_suffix("_sum") {
                sums.insert((base.to_string(), labels.clone()), increases.clone());
            } else if let Some(base) = n.strip_suffix("_count") {
                counts.insert((base.to_string(), labels.clone()), increases.clone());
            }
            out.push(Series {
                metric: format!("rate({n})"),
                labels,
                samples: increases.iter().map(|&(t, d, dt)| (t, d / dt)).collect(),
            });
        } else {
            out.push(Series {
                metric: n,
                labels,
                samples: raw,
            });
        }
    }
    for (key, sum) in &sums {
        let Some(count) = counts.get(key) else {
            continue;
        };
        let by_time: HashMap<i64, f64> = count.iter().map(|&(t, d, _)| (t, d)).collect();
        let samples: Vec<(i64, f64)> = sum
            .iter()
            .filter_map(|&(t, ds, _)| {
                by_time
                    .get(&t)
                    .filter(|&&dc| dc > 0.0)
                    .map(|dc| (t, ds / dc))
            })
            .collect();
        out.push(Series {
            metric: format!("{}_mean", key.0),
            labels: key.1.clone(),
            samples,
        });
    }
    out.sort_by(|a, b| (&a.metric, &a.labels).cmp(&(&b.metric, &b.labels)));
    out.truncate(MAX_SERIES_PER_ENTITY);
    out
}

/// A cumulative series' increases between consecutive samples: `(t, increase, seconds)`,
/// a reset (a fall) counting as an increase from zero.
fn increases(raw: &[(i64, f64)]) -> Vec<(i64, f64, f64)> {
    raw.windows(2)
        .filter(|w| w[1].0 > w[0].0)
        .map(|w| {
            let d = if w[1].1 >= w[0].1 {
                w[1].1 - w[0].1
            } else {
                w[1].1
            };
            (w[1].0, d, (w[1].0 - w[0].0) as f64 / 1000.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_model::{Labels, Sample};

    fn series(name: &str, points: &[(i64, f64)]) -> MetricSeries {
        MetricSeries {
            labels: Labels::from_pairs([("__name__", name), ("job", "budget")]),
            samples: points.iter().map(|&(t, v)| Sample { t, v }).collect(),
        }
    }

    #[test]
    fn counters_become_rates_and_sum_count_pairs_their_mean() {
        let out = to_series(vec![
            series(
                "http_requests_total",
                &[(0, 10.0), (10_000, 30.0), (20_000, 5.0)],
            ),
            series(
                "latency_seconds_sum",
                &[(0, 1.0), (10_000, 3.0), (20_000, 7.0)],
            ),
            series(
                "latency_seconds_count",
                &[(0, 10.0), (10_000, 20.0), (20_000, 30.0)],
            ),
            series("latency_seconds_bucket", &[(0, 1.0)]),
            series("up", &[(0, 1.0)]),
        ]);
        let get = |m: &str| {
            out.iter()
                .find(|s| s.metric == m)
                .map(|s| s.samples.clone())
        };
        assert_eq!(
            get("rate(http_requests_total)"),
            Some(vec![(10_000, 2.0), (20_000, 0.5)])
        );
        assert_eq!(
            get("latency_seconds_mean"),
            Some(vec![(10_000, 0.2), (20_000, 0.4)])
        );
        assert_eq!(get("up"), Some(vec![(0, 1.0)]));
        assert!(out.iter().all(|s| !s.metric.contains("bucket")));
    }
}
