//! The topology API (`docs/api.md`, topology): the graph, an entity, its stack and impact, a
//! path between two entities, changes in a window; declarations (`PUT`) and deploy markers
//! (`POST /api/v1/events`). Answers are `{"status":"success","data":…}` as Prometheus's.
//!
//! Times (`time`, `start`, `end`) take Unix seconds, nanoseconds or RFC 3339, as the other
//! APIs; `time` (default now) reads the graph as it was then, `start`/`end` over a window.
//! Entity ids are `kind:key` and sit in the path as they are
//! (`/api/v1/topology/stack/pod:prod/finance/budget-1`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Json;
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};
use sightline_ingest::{IngestError, IngestHandle};
use sightline_model::TenantId;
use sightline_topology::facts::{Fact, FactBatch};
use sightline_topology::graph::{Graph, Reached, Window};
use sightline_topology::inventory::{self, EntityDecl, RelationDecl, Severity};
use sightline_topology::model::ChangeEvent;
use sightline_topology::store::read_graph;
use sightline_topology::views::{Filter, Renderer};
use sightline_topology::{EntityId, EntityKind, Topology};

use super::ApiError;
use super::params::{Params, tenant};

#[derive(Clone)]
pub struct TopologyState {
    pub topology: Arc<Topology>,
    /// The topology WAL's queue: declarations and events are durable before the answer.
    pub facts: IngestHandle<FactBatch>,
}

pub fn router(state: TopologyState) -> Router {
    Router::new()
        .route("/api/v1/topology", get(graph))
        .route(
            "/api/v1/topology/entities",
            put(put_entities).get(list_entities),
        )
        .route("/api/v1/topology/entities/{*id}", get(entity))
        .route("/api/v1/topology/relations", put(put_relations))
        .route("/api/v1/topology/stack/{*id}", get(stack))
        .route("/api/v1/topology/impact/{*id}", get(impact))
        .route("/api/v1/topology/path", get(path))
        .route("/api/v1/topology/changes", get(changes))
        .route("/api/v1/events", post(post_event))
        .with_state(state)
}

fn ok(data: impl serde::Serialize) -> Json<Value> {
    Json(json!({"status": "success", "data": data}))
}

/// The window a request reads: `start`/`end` when given, else the instant `time` (now).
fn window(params: &Params) -> Result<Window, ApiError> {
    let now = crate::now_ns();
    if params.get("start").is_some() || params.get("end").is_some() {
        let (start, end) = params.range_ns(3_600_000_000_000)?;
        return Ok(Window {
            start: start / 1_000_000,
            end: end / 1_000_000,
        });
    }
    Ok(Window::at(params.time_ns("time", now)? / 1_000_000))
}

/// What every read takes: its parameters, tenant and window.
fn read_request(
    headers: &HeaderMap,
    raw: Option<&str>,
) -> Result<(Params, TenantId, Window), ApiError> {
    let params = Params::parse(raw, headers, b"");
    let tenant = tenant(headers)?;
    let w = window(&params)?;
    Ok((params, tenant, w))
}

fn entity_id(raw: &str) -> Result<EntityId, ApiError> {
    EntityId::parse(raw).map_err(|e| ApiError::bad_request(format!("entity: {e}")))
}

fn not_found(id: &EntityId, w: Window) -> ApiError {
    ApiError::not_found(format!(
        "no entity {id} in the topology at the time asked ({}..{} ms)",
        w.start, w.end
    ))
}

async fn graph(
    State(s): State<TopologyState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (params, tenant, w) = read_request(&headers, raw.as_deref())?;
    let mut filter = Filter::default();
    for k in params.all("kind").flat_map(|k| k.split(',')) {
        filter.kinds.push(EntityKind::parse(k).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown kind {k:?} (known: {})",
                EntityKind::ALL.map(EntityKind::as_str).join(", ")
            ))
        })?);
    }
    filter.owner = params.get("owner").map(str::to_string);
    if let Some(app) = params.get("application") {
        filter.application = Some(if app.contains(':') {
            entity_id(app)?
        } else {
            EntityId::new(EntityKind::Application, [app])
        });
    }
    if let Some(id) = params.get("entity") {
        filter.around = Some((entity_id(id)?, params.usize("hops", 1)?));
    }
    let g = s.topology.graph_for_reading(&tenant);
    let g = read_graph(&g);
    Ok(ok(Renderer {
        graph: &g,
        window: w,
    }
    .graph(&filter)))
}

async fn list_entities(
    State(s): State<TopologyState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    graph(State(s), headers, RawQuery(raw))
        .await
        .map(|Json(mut v)| {
            let entities = v["data"]["entities"].take();
            v["data"] = entities;
            Json(v)
        })
}

async fn entity(
    State(s): State<TopologyState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (_, tenant, w) = read_request(&headers, raw.as_deref())?;
    let id = entity_id(&id)?;
    let g = s.topology.graph_for_reading(&tenant);
    let g = read_graph(&g);
    let r = Renderer {
        graph: &g,
        window: w,
    };
    let around = g.around(&id, 1, w).ok_or_else(|| not_found(&id, w))?;
    let mut view = r.reached(&around);
    let this = view.entities.remove(0);
    let changes: Vec<ChangeEvent> = g
        .changes(
            Window {
                start: i64::MIN,
                end: w.end,
            },
            w.end,
        )
        .into_iter()
        .filter(|c| c.entity == id)
        .collect();
    Ok(ok(json!({
        "entity": this,
        "neighbours": view.entities,
        "relations": view.relations,
        "changes": changes,
    })))
}

/// A walk from one entity (`stack`, `impact`), answered by `render`.
fn walk_from(
    s: &TopologyState,
    id: &str,
    headers: &HeaderMap,
    raw: Option<&str>,
    walk: impl Fn(&Graph, &EntityId, Window) -> Option<Reached>,
    render: impl Fn(&Renderer<'_>, &Reached) -> Value,
) -> Result<Json<Value>, ApiError> {
    let (_, tenant, w) = read_request(headers, raw)?;
    let id = entity_id(id)?;
    let g = s.topology.graph_for_reading(&tenant);
    let g = read_graph(&g);
    let reached = walk(&g, &id, w).ok_or_else(|| not_found(&id, w))?;
    let renderer = Renderer {
        graph: &g,
        window: w,
    };
    Ok(ok(render(&renderer, &reached)))
}

async fn stack(
    State(s): State<TopologyState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    walk_from(&s, &id, &headers, raw.as_deref(), Graph::stack, |r, x| {
        json!(r.reached(x))
    })
}

async fn impact(
    State(s): State<TopologyState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    walk_from(&s, &id, &headers, raw.as_deref(), Graph::impact, |r, x| {
        json!(r.impact(x))
    })
}

async fn path(
    State(s): State<TopologyState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (params, tenant, w) = read_request(&headers, raw.as_deref())?;
    let end = |k: &str| {
        params
            .get(k)
            .ok_or_else(|| ApiError::bad_request(format!("missing {k} (an entity id)")))
            .and_then(entity_id)
    };
    let (from, to) = (end("from")?, end("to")?);
    let g = s.topology.graph_for_reading(&tenant);
    let g = read_graph(&g);
    for id in [&from, &to] {
        if !g.entity(id).is_some_and(|e| g.entity_in(e, w)) {
            return Err(not_found(id, w));
        }
    }
    let reached = g.path(&from, &to, w).ok_or_else(|| {
        ApiError::not_found(format!("no path between {from} and {to} at the time asked"))
    })?;
    Ok(ok(Renderer {
        graph: &g,
        window: w,
    }
    .reached(&reached)))
}

async fn changes(
    State(s): State<TopologyState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(raw.as_deref(), &headers, b"");
    let tenant = tenant(&headers)?;
    let (start, end) = params.range_ns(3_600_000_000_000)?;
    let w = Window {
        start: start / 1_000_000,
        end: end / 1_000_000,
    };
    let only = params.get("entity").map(entity_id).transpose()?;
    let kinds: Vec<&str> = params.all("kind").flat_map(|k| k.split(',')).collect();
    let g = s.topology.graph_for_reading(&tenant);
    let g = read_graph(&g);
    let changes: Vec<ChangeEvent> = g
        .changes(w, crate::now_ns() / 1_000_000)
        .into_iter()
        .filter(|c| only.as_ref().is_none_or(|id| &c.entity == id))
        .filter(|c| kinds.is_empty() || kinds.contains(&c.kind.as_str()))
        .collect();
    Ok(ok(changes))
}

/// Writes facts through the topology WAL and waits until they are durable.
async fn write_facts(
    s: &TopologyState,
    tenant: TenantId,
    facts: Vec<Fact>,
) -> Result<(), ApiError> {
    if facts.is_empty() {
        return Ok(());
    }
    s.facts
        .ingest(FactBatch { tenant, facts })
        .await
        .map_err(|e| match e {
            IngestError::Overloaded => ApiError::overloaded(e.to_string()),
            _ => ApiError::unavailable(e.to_string()),
        })
}

#[derive(Deserialize)]
#[serde(untagged)]
enum EntitiesBody {
    Wrapped { entities: Vec<EntityDecl> },
    List(Vec<EntityDecl>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RelationsBody {
    Wrapped { relations: Vec<RelationDecl> },
    List(Vec<RelationDecl>),
}

async fn declare(
    s: TopologyState,
    headers: HeaderMap,
    entities: Vec<EntityDecl>,
    relations: Vec<RelationDecl>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&headers)?;
    let checked = {
        let g = s.topology.graph_for_reading(&tenant);
        let g = read_graph(&g);
        inventory::check_request(entities, relations, &|id| g.entity(id).is_some())
    };
    let problems = |severity| -> Vec<String> {
        checked
            .diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .map(ToString::to_string)
            .collect()
    };
    let (errors, warnings) = (problems(Severity::Error), problems(Severity::Warning));
    if checked.facts.is_empty() && !errors.is_empty() {
        return Err(ApiError::bad_request(errors.join("; ")));
    }
    let declared = checked.facts.len();
    write_facts(&s, tenant, checked.facts).await?;
    Ok(ok(
        json!({"declared": declared, "errors": errors, "warnings": warnings}),
    ))
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("{what}: {e}")))
}

async fn put_entities(
    State(s): State<TopologyState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let entities = match json_body(&body, "entities")? {
        EntitiesBody::Wrapped { entities } | EntitiesBody::List(entities) => entities,
    };
    declare(s, headers, entities, vec![]).await
}

async fn put_relations(
    State(s): State<TopologyState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let relations = match json_body(&body, "relations")? {
        RelationsBody::Wrapped { relations } | RelationsBody::List(relations) => relations,
    };
    declare(s, headers, vec![], relations).await
}

/// A change marker from outside (a CI/CD deploy), as Grafana annotations are posted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventBody {
    /// An entity id, or …
    #[serde(default)]
    entity: Option<String>,
    /// … a service name.
    #[serde(default)]
    service: Option<String>,
    /// `deploy` by default.
    #[serde(default)]
    kind: Option<String>,
    /// Unix seconds (with a fraction) or RFC 3339; now by default.
    #[serde(default)]
    time: Option<Value>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    previous_version: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

async fn post_event(
    State(s): State<TopologyState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&headers)?;
    let e: EventBody = json_body(&body, "event")?;
    let entity = match (&e.entity, &e.service) {
        (Some(id), _) => entity_id(id)?,
        (None, Some(service)) if !service.is_empty() => {
            EntityId::new(EntityKind::Service, [service.as_str()])
        }
        _ => return Err(ApiError::bad_request("event: give entity or service")),
    };
    let time_ms = match &e.time {
        None => crate::now_ns() / 1_000_000,
        Some(v) => {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => other.to_string(),
            };
            super::params::parse_time_ns(&text).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "event: invalid time {text}: expected Unix seconds or RFC 3339"
                ))
            })? / 1_000_000
        }
    };
    let kind = e.kind.unwrap_or_else(|| "deploy".into());
    if kind.is_empty() || kind.len() > 64 {
        return Err(ApiError::bad_request("event: kind must be 1 to 64 bytes"));
    }
    let event = ChangeEvent {
        time: time_ms,
        entity,
        kind,
        from: e.previous_version,
        to: e.version,
        detail: e.description.unwrap_or_default(),
    };
    write_facts(&s, tenant, vec![Fact::Event(event.clone())]).await?;
    Ok(ok(event))
}
