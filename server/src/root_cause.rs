//! Root cause on demand, from stored data: the entities a symptom depends on (topology:
//! `calls` and `depends_on`, transitively) and each one's metrics through its PromQL selector,
//! over a window before and after the onset, ranked by `sightline-rca`. Serves
//! `/api/v1/rca` and the incidents' analysis.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use sightline_http::ApiError;
use sightline_model::{Cancellation, METRIC_NAME_LABEL, MetricSeries, TenantId};
use sightline_promql::{Engine, QueryError, TsdbSource, Value as PromValue};
use sightline_rca::{Entity, Params as RcaParams, Problem, Series};
use sightline_topology::graph::Window;
use sightline_topology::store::read_graph;
use sightline_topology::views::{Renderer, selectors};
use sightline_topology::{EntityId, EntityKind, RelationKind, Topology};
use sightline_tsdb::Tsdb;

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
        let (order, calls, selectors_of, views, mut changes) = {
            let g = s.topology.graph_for_reading(tenant);
            let g = read_graph(&g);
            if g.entity(symptom).is_none_or(|e| !g.entity_in(e, window)) {
                return Err(ApiError::not_found(format!(
                    "no entity {symptom} in the topology between {start} and {end} ms"
                )));
            }
            let mut out: HashMap<&EntityId, Vec<&EntityId>> = HashMap::new();
            for (a, b, r) in g.relations_in(window) {
                if matches!(r.kind, Some(RelationKind::Calls | RelationKind::DependsOn)) {
                    out.entry(a).or_default().push(b);
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
            (order, calls, selectors_of, views, changes)
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
            });
        }
        let problem = Problem {
            symptom: symptom.as_str(),
            symptom_metric: metric.as_deref(),
            onset_ms: onset,
            entities: &entities,
            calls: &calls,
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

/// Matrix series as the method's, histogram buckets last and at most
/// [`MAX_SERIES_PER_ENTITY`].
fn to_series(mut m: Vec<MetricSeries>) -> Vec<Series> {
    let name = |s: &MetricSeries| s.labels.get(METRIC_NAME_LABEL).unwrap_or("").to_string();
    m.sort_by_key(|s| name(s).ends_with("_bucket"));
    m.truncate(MAX_SERIES_PER_ENTITY);
    m.into_iter()
        .map(|s| Series {
            metric: name(&s),
            labels: s
                .labels
                .iter()
                .filter(|(k, _)| *k != METRIC_NAME_LABEL)
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join(","),
            samples: s.samples.iter().map(|p| (p.t, p.v)).collect(),
        })
        .collect()
}
