//! `GET /api/v1/rca`: the likely causes of a symptom, ranked from data already stored
//! (`docs/api.md`, root cause). The method is `sightline-rca`'s; this module gathers its
//! input: the entities the symptom depends on (topology: `calls` and `depends_on`,
//! transitively) and each one's metrics through its PromQL selector, over a window before and
//! after the onset.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Json;
use axum::routing::get;
use serde_json::{Value, json};
use sightline_model::{Cancellation, METRIC_NAME_LABEL, MetricSeries};
use sightline_promql::{Engine, QueryError, TsdbSource, Value as PromValue};
use sightline_rca::{Entity, Params as RcaParams, Problem, Series};
use sightline_topology::graph::Window;
use sightline_topology::store::read_graph;
use sightline_topology::views::{Renderer, selectors};
use sightline_topology::{EntityId, EntityKind, RelationKind, Topology};
use sightline_tsdb::Tsdb;

use super::params::{Params, parse_duration, tenant};
use super::{ApiError, QueryControl, timed};
use crate::metrics::ServerMetrics;

#[derive(Clone)]
pub struct RcaState {
    pub topology: Arc<Topology>,
    pub tsdb: Arc<Tsdb>,
    pub engine: Arc<Engine>,
    pub metrics: ServerMetrics,
    pub queries: QueryControl,
}

pub fn router(state: RcaState) -> Router {
    Router::new()
        .route("/api/v1/rca", get(rca).post(rca))
        .with_state(state)
}

/// Entities below the symptom read at most (the nearest first).
const MAX_ENTITIES: usize = 1_000;
/// Series per entity read at most (histogram buckets are left out first).
const MAX_SERIES_PER_ENTITY: usize = 200;
/// Changes this long before the onset are shown with the causes.
const CHANGES_BEFORE_MS: i64 = 3_600_000;
/// Candidates answered by default.
const DEFAULT_LIMIT: usize = 20;

fn float(params: &Params, key: &str, default: f64) -> Result<f64, ApiError> {
    match params.get(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid parameter {key:?}: {v:?} is not a non-negative number"
                ))
            }),
    }
}

async fn rca(
    State(s): State<RcaState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(raw.as_deref(), &headers, &body);
    let tenant = tenant(&headers)?;
    let symptom = params
        .get("entity")
        .ok_or_else(|| ApiError::bad_request("missing parameter \"entity\" (the symptom's id)"))?;
    let symptom = EntityId::parse(symptom)
        .map_err(|e| ApiError::bad_request(format!("invalid parameter \"entity\": {e}")))?;
    let now_ms = crate::now_ns() / 1_000_000;
    let onset = params.time_ns("time", now_ns_default(now_ms))? / 1_000_000;
    let end = params.time_ns("end", now_ms * 1_000_000)? / 1_000_000;
    if end < onset {
        return Err(ApiError::bad_request(format!(
            "\"end\" ({end} ms) is before \"time\" ({onset} ms): the analysis needs the data after the onset"
        )));
    }
    let lookback = match params.get("lookback") {
        None => 24 * 3_600_000,
        Some(v) => parse_duration(v)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| ApiError::bad_request(format!("invalid parameter \"lookback\": {v:?}")))?
            .as_millis() as i64,
    };
    let start = onset.saturating_sub(lookback);
    let defaults = RcaParams::default();
    let method = RcaParams {
        alpha: float(&params, "alpha", defaults.alpha)?,
        z: float(&params, "z", defaults.z)?,
        resolution: float(&params, "resolution", defaults.resolution)?,
        recent: params.usize("recent", defaults.recent)?,
    };
    let metric = params.get("metric").map(str::to_string);
    let limit = params.usize("limit", DEFAULT_LIMIT)?;

    let st = s.clone();
    let data = timed(&s.metrics, "rca", &s.queries, move |cancel| {
        analyse(
            &st, &tenant, &symptom, metric, onset, start, end, method, limit, &cancel,
        )
    })
    .await?;
    Ok(Json(json!({"status": "success", "data": data})))
}

/// Default onset: a quarter of an hour ago (an alert's typical look back).
fn now_ns_default(now_ms: i64) -> i64 {
    (now_ms - 15 * 60_000) * 1_000_000
}

#[allow(clippy::too_many_arguments)]
fn analyse(
    s: &RcaState,
    tenant: &sightline_model::TenantId,
    symptom: &EntityId,
    metric: Option<String>,
    onset: i64,
    start: i64,
    end: i64,
    method: RcaParams,
    limit: usize,
    cancel: &Cancellation,
) -> Result<Value, ApiError> {
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
                    e => ApiError::internal(format!("reading the metrics of {id} ({sel}): {e}")),
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
