//! The graph as the API answers it: entities with their owner, liveness and the selectors of
//! their signals; relations with their call figures; stack, impact and path.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;

use crate::graph::{Graph, Reached, Window};
use crate::model::{CallStats, Criticality, Entity, EntityId, EntityKind, Relation, RelationKind};

/// The PromQL, LogQL and TraceQL selectors that pick an entity's metrics, logs and spans
/// (absent where a signal carries nothing that names it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Selectors {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promql: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logql: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceql: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OwnerView {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub contact: String,
    /// The entity the owner is declared on (itself, its service, its application…).
    pub via: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntityView {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub attributes: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<OwnerView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub criticality: Option<Criticality>,
    /// Milliseconds since the epoch; absent for an entity only declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<i64>,
    /// Seen within the staleness window before the query's end, or declared.
    pub live: bool,
    /// Where it was declared, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared: Option<String>,
    pub selectors: Selectors,
    /// Relations from the entity asked about (stack, impact, path, neighbourhood).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depth: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelationView {
    pub from: String,
    pub to: String,
    pub kind: RelationKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<CallStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphView {
    pub entities: Vec<EntityView>,
    pub relations: Vec<RelationView>,
}

/// What an impact query adds: the business applications and owners hit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImpactView {
    pub entities: Vec<EntityView>,
    pub relations: Vec<RelationView>,
    pub applications: Vec<String>,
    pub owners: Vec<OwnerView>,
}

/// Filters of the graph endpoint.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub kinds: Vec<EntityKind>,
    /// Owner name (effective owner).
    pub owner: Option<String>,
    /// Only the application's stack.
    pub application: Option<EntityId>,
    /// Only within `hops` of an entity.
    pub around: Option<(EntityId, usize)>,
}

/// Renders entities and relations for answers.
pub struct Renderer<'a> {
    pub graph: &'a Graph,
    pub window: Window,
}

impl Renderer<'_> {
    pub fn entity(&self, e: &Entity, depth: Option<usize>) -> EntityView {
        let g = self.graph;
        let declared = e.declared.as_ref();
        EntityView {
            id: e.id.to_string(),
            kind: e.kind.map_or("unknown", EntityKind::as_str).to_string(),
            name: e.display_name().to_string(),
            attributes: e.merged_attributes(),
            owner: g.owner_of(&e.id).map(|(o, via)| OwnerView {
                name: o.name.clone(),
                contact: o.contact.clone(),
                via: via.to_string(),
            }),
            criticality: self.criticality(e),
            first_seen: e.presence.first_seen(),
            last_seen: e.presence.last_seen(),
            live: g.is_live(e, self.window.end),
            declared: declared.map(|d| d.source.clone()),
            selectors: selectors(g, e),
            depth,
        }
    }

    /// Declared, else the application's (a service of a core application is core).
    fn criticality(&self, e: &Entity) -> Option<Criticality> {
        e.criticality().or_else(|| {
            if e.kind != Some(EntityKind::Service) {
                return None;
            }
            self.graph
                .neighbours(&e.id, RelationKind::PartOf, true)
                .filter_map(Entity::criticality)
                .min_by_key(|c| *c != Criticality::Core)
        })
    }

    pub fn relation(&self, from: &EntityId, to: &EntityId, r: &Relation) -> RelationView {
        RelationView {
            from: from.to_string(),
            to: to.to_string(),
            kind: r.kind.unwrap_or(RelationKind::DependsOn),
            first_seen: r.presence.first_seen(),
            last_seen: r.presence.last_seen(),
            declared: r.declared.clone(),
            stats: r.stats,
        }
    }

    pub fn reached(&self, r: &Reached) -> GraphView {
        GraphView {
            entities: r
                .entities
                .iter()
                .map(|&(ix, depth)| self.entity(self.graph.ix_entity(ix), Some(depth)))
                .collect(),
            relations: r
                .relations
                .iter()
                .map(|&e| {
                    let (a, b, rel) = self.graph.ix_relation(e);
                    self.relation(a, b, rel)
                })
                .collect(),
        }
    }

    /// The graph in the window, filtered.
    pub fn graph(&self, filter: &Filter) -> GraphView {
        let g = self.graph;
        let w = self.window;
        let mut keep: Option<HashSet<EntityId>> = None;
        let mut narrow = |ids: HashSet<EntityId>| {
            keep = Some(match keep.take() {
                None => ids,
                Some(k) => k.intersection(&ids).cloned().collect(),
            });
        };
        if let Some(app) = &filter.application {
            let ids = g.stack(app, w).map(|r| ids_of(g, &r)).unwrap_or_default();
            narrow(ids);
        }
        if let Some((id, hops)) = &filter.around {
            let ids = g
                .around(id, *hops, w)
                .map(|r| ids_of(g, &r))
                .unwrap_or_default();
            narrow(ids);
        }
        let entities: Vec<&Entity> =
            g.entities_in(w)
                .filter(|e| keep.as_ref().is_none_or(|k| k.contains(&e.id)))
                .filter(|e| {
                    filter.kinds.is_empty() || e.kind.is_some_and(|k| filter.kinds.contains(&k))
                })
                .filter(|e| {
                    filter.owner.as_ref().is_none_or(|o| {
                        g.owner_of(&e.id).is_some_and(|(owner, _)| &owner.name == o)
                    })
                })
                .collect();
        let ids: HashSet<&EntityId> = entities.iter().map(|e| &e.id).collect();
        let relations = g
            .relations_in(w)
            .filter(|(a, b, _)| ids.contains(a) && ids.contains(b))
            .map(|(a, b, r)| self.relation(a, b, r))
            .collect();
        GraphView {
            entities: entities.into_iter().map(|e| self.entity(e, None)).collect(),
            relations,
        }
    }

    pub fn impact(&self, r: &Reached) -> ImpactView {
        let view = self.reached(r);
        let applications: BTreeSet<String> = view
            .entities
            .iter()
            .filter(|e| e.kind == EntityKind::Application.as_str())
            .map(|e| e.id.clone())
            .collect();
        let mut owners: Vec<OwnerView> = Vec::new();
        for e in &view.entities {
            if let Some(o) = &e.owner
                && !owners.iter().any(|x| x.name == o.name && x.via == o.via)
            {
                owners.push(o.clone());
            }
        }
        owners.sort_by(|a, b| (&a.name, &a.via).cmp(&(&b.name, &b.via)));
        ImpactView {
            entities: view.entities,
            relations: view.relations,
            applications: applications.into_iter().collect(),
            owners,
        }
    }
}

fn ids_of(g: &Graph, r: &Reached) -> HashSet<EntityId> {
    r.entities
        .iter()
        .map(|&(ix, _)| g.ix_entity(ix).id.clone())
        .collect()
}

/// A string literal for PromQL, LogQL and TraceQL (all take Go's double-quoted escapes).
fn q(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// A regular expression matching any of `names` exactly, as a string literal.
fn any_of<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let alternatives: Vec<String> = names
        .map(|n| {
            n.chars()
                .flat_map(|c| {
                    let meta = "\\.+*?()|[]{}^$".contains(c);
                    meta.then_some('\\').into_iter().chain([c])
                })
                .collect()
        })
        .collect();
    q(&alternatives.join("|"))
}

/// The selectors of an entity's signals. Metrics follow Prometheus's OpenTelemetry mapping
/// (`job` = `service.namespace/service.name`, `instance` = `service.instance.id`, the rest on
/// `target_info`); logs use the stream labels every log receiver indexes
/// (`service_name`, `k8s_pod_name`, …); spans use TraceQL's resource and span scopes.
///
/// An entity may declare its own PromQL selector in the attribute [`PROMQL_SELECTOR`], for
/// metrics that follow no convention naming it (a cloud provider's export, a database's
/// exporter): it replaces the derived one.
pub fn selectors(g: &Graph, e: &Entity) -> Selectors {
    let mut s = derived_selectors(g, e);
    if let Some(declared) = e.attribute(PROMQL_SELECTOR) {
        s.promql = Some(declared.to_string());
    }
    s
}

/// The attribute in which an entity declares the PromQL selector of its metrics.
pub const PROMQL_SELECTOR: &str = "sightline.promql_selector";

fn derived_selectors(g: &Graph, e: &Entity) -> Selectors {
    let attr = |k: &str| e.attribute(k);
    let name = e.name.as_str();
    let job = |service: &str, namespace: Option<&str>| match namespace {
        Some(ns) => format!("{ns}/{service}"),
        None => service.to_string(),
    };
    let resource = |label: &str, attr: &str, v: &str| Selectors {
        promql: Some(format!("target_info{{{label}={}}}", q(v))),
        logql: Some(format!("{{{label}={}}}", q(v))),
        traceql: Some(format!("{{resource.{attr}={}}}", q(v))),
    };
    match e.kind {
        Some(EntityKind::Service) => Selectors {
            promql: Some(format!(
                "{{job={}}}",
                q(&job(name, attr("service.namespace")))
            )),
            logql: Some(format!("{{service_name={}}}", q(name))),
            traceql: Some(format!("{{resource.service.name={}}}", q(name))),
        },
        Some(EntityKind::Instance) => {
            let service = attr("service.name")
                .unwrap_or_else(|| e.id.key().split('/').next().unwrap_or_default());
            let namespace = g
                .neighbours(&e.id, RelationKind::MemberOf, true)
                .find_map(|s| s.attribute("service.namespace"));
            match attr("service.instance.id") {
                Some(iid) => Selectors {
                    promql: Some(format!(
                        "{{job={}, instance={}}}",
                        q(&job(service, namespace)),
                        q(iid)
                    )),
                    logql: Some(format!(
                        "{{service_name={}, service_instance_id={}}}",
                        q(service),
                        q(iid)
                    )),
                    traceql: Some(format!(
                        "{{resource.service.name={} && resource.service.instance.id={}}}",
                        q(service),
                        q(iid)
                    )),
                },
                None => Selectors {
                    promql: None,
                    logql: Some(format!(
                        "{{service_name={}, k8s_pod_name={}}}",
                        q(service),
                        q(name)
                    )),
                    traceql: Some(format!(
                        "{{resource.service.name={} && resource.k8s.pod.name={}}}",
                        q(service),
                        q(name)
                    )),
                },
            }
        }
        Some(EntityKind::Pod) => resource("k8s_pod_name", "k8s.pod.name", name),
        Some(EntityKind::Namespace) => resource("k8s_namespace_name", "k8s.namespace.name", name),
        Some(EntityKind::Cluster) => resource("k8s_cluster_name", "k8s.cluster.name", name),
        Some(EntityKind::Zone) => {
            resource("cloud_availability_zone", "cloud.availability_zone", name)
        }
        Some(EntityKind::Region) => resource("cloud_region", "cloud.region", name),
        Some(EntityKind::Workload) => {
            let (label, attr_name) = match attr("k8s.workload.kind") {
                Some("statefulset") => ("k8s_statefulset_name", "k8s.statefulset.name"),
                Some("daemonset") => ("k8s_daemonset_name", "k8s.daemonset.name"),
                Some("cronjob") => ("k8s_cronjob_name", "k8s.cronjob.name"),
                Some("job") => ("k8s_job_name", "k8s.job.name"),
                _ => ("k8s_deployment_name", "k8s.deployment.name"),
            };
            resource(label, attr_name, name)
        }
        Some(EntityKind::Container) => match attr("container.id") {
            Some(id) => Selectors {
                promql: Some(format!("target_info{{container_id={}}}", q(id))),
                logql: None,
                traceql: Some(format!("{{resource.container.id={}}}", q(id))),
            },
            None => resource("k8s_container_name", "k8s.container.name", name),
        },
        Some(EntityKind::Node) => Selectors {
            // node_exporter on the node, scraped by its name.
            promql: Some(format!(
                "{{instance=~{}}}",
                q(&format!("{}(:[0-9]+)?", regex_text(name)))
            )),
            logql: None,
            traceql: Some(format!("{{resource.k8s.node.name={}}}", q(name))),
        },
        Some(EntityKind::Host) => Selectors {
            promql: Some(format!(
                "{{instance=~{}}}",
                q(&format!("{}(:[0-9]+)?", regex_text(name)))
            )),
            logql: Some(format!("{{host_name={}}}", q(name))),
            traceql: Some(format!("{{resource.host.name={}}}", q(name))),
        },
        Some(EntityKind::Application) => {
            let services: Vec<&Entity> = g
                .neighbours(&e.id, RelationKind::PartOf, false)
                .filter(|s| s.kind == Some(EntityKind::Service))
                .collect();
            if services.is_empty() {
                return Selectors::default();
            }
            let names = || services.iter().map(|s| s.name.as_str());
            Selectors {
                promql: Some(format!(
                    "{{job=~{}}}",
                    q(&format!("(.+/)?({})", unquote(&any_of(names()))))
                )),
                logql: Some(format!("{{service_name=~{}}}", any_of(names()))),
                traceql: Some(format!("{{resource.service.name=~{}}}", any_of(names()))),
            }
        }
        Some(
            EntityKind::Database | EntityKind::Cache | EntityKind::Queue | EntityKind::External,
        ) => {
            let by = [
                "peer.service",
                "db.name",
                "db.system",
                "messaging.system",
                "server.address",
            ]
            .into_iter()
            .find(|a| attr(a) == Some(name));
            Selectors {
                // The service graph's series of calls to it: counts, failures, latencies.
                promql: Some(format!(
                    "{{__name__=~\"traces_service_graph_request_.+\", server={}}}",
                    q(name)
                )),
                logql: None,
                traceql: by.map(|a| format!("{{kind=client && span.{a}={}}}", q(name))),
            }
        }
        None => Selectors::default(),
    }
}

/// `v` with regular-expression metacharacters escaped.
fn regex_text(v: &str) -> String {
    v.chars()
        .flat_map(|c| {
            let meta = "\\.+*?()|[]{}^$".contains(c);
            meta.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// The text inside a literal made by [`q`] (for nesting in a larger pattern).
fn unquote(literal: &str) -> String {
    literal[1..literal.len() - 1].replace("\\\\", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Fact;

    #[test]
    fn selectors_quote_and_escape() {
        let mut g = Graph::new(60_000, 10);
        let seen = |id: &str, attrs: &[(&str, &str)]| Fact::Seen {
            id: EntityId::parse(id).unwrap(),
            name: id
                .split_once(':')
                .unwrap()
                .1
                .rsplit('/')
                .next()
                .unwrap()
                .into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            time: 1,
        };
        g.apply(&seen("service:budget", &[("service.namespace", "fin")]));
        g.apply(&seen(
            "instance:budget/i-1",
            &[("service.name", "budget"), ("service.instance.id", "i-1")],
        ));
        g.apply(&Fact::Related {
            from: EntityId::parse("instance:budget/i-1").unwrap(),
            to: EntityId::parse("service:budget").unwrap(),
            kind: RelationKind::MemberOf,
            time: 1,
        });
        g.apply(&seen("host:vm.1", &[]));
        // A declared selector replaces the derived one.
        g.apply(&seen(
            "database:orders",
            &[(PROMQL_SELECTOR, r#"{entity="orders"}"#)],
        ));
        let sel = |id: &str| selectors(&g, g.entity(&EntityId::parse(id).unwrap()).unwrap());
        assert_eq!(
            sel("service:budget").promql.as_deref(),
            Some(r#"{job="fin/budget"}"#)
        );
        assert_eq!(
            sel("instance:budget/i-1").logql.as_deref(),
            Some(r#"{service_name="budget", service_instance_id="i-1"}"#)
        );
        assert_eq!(
            sel("instance:budget/i-1").promql.as_deref(),
            Some(r#"{job="fin/budget", instance="i-1"}"#)
        );
        assert_eq!(
            sel("host:vm.1").promql.as_deref(),
            Some(r#"{instance=~"vm\\.1(:[0-9]+)?"}"#)
        );
        assert_eq!(
            sel("database:orders").promql.as_deref(),
            Some(r#"{entity="orders"}"#)
        );
    }
}
