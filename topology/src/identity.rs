//! Entities and relations from resource attributes, by OpenTelemetry's semantic conventions.
//!
//! One resource (the attributes of a log stream, a span batch's resource, a metric target)
//! names a chain: the service and its instance, the container, pod, workload and namespace,
//! the node, cluster and host, the zone and region. Each entity's id is made of the
//! attributes that identify it — and of nothing else, so that every signal and every restart
//! names the same thing alike:
//!
//! | kind | identified by | id |
//! | --- | --- | --- |
//! | service | `service.name` | `service:{name}` (the service graph knows services by name) |
//! | instance | `service.instance.id`, else `k8s.pod.name`, else `host.name` | `instance:{service}/{id}` |
//! | region | `cloud.region` | `region:{region}` |
//! | zone | `cloud.availability_zone` | `zone:{zone}` |
//! | host | `host.id`, else `host.name` | `host:{id}` |
//! | cluster | `k8s.cluster.name`, else `k8s.cluster.uid` | `cluster:{name}` |
//! | namespace | cluster, `k8s.namespace.name` | `namespace:{cluster}/{namespace}` |
//! | node | cluster, `k8s.node.name` | `node:{cluster}/{node}` |
//! | workload | cluster, namespace, `k8s.{deployment,statefulset,daemonset,cronjob,job}.name` | `workload:{cluster}/{namespace}/{name}` |
//! | pod | cluster, namespace, `k8s.pod.name` | `pod:{cluster}/{namespace}/{pod}` |
//! | container | `container.id`, else the pod and `k8s.container.name` | `container:{id}` |
//! | application | `application.name` (not a semantic convention; usually declared) | `application:{name}` |
//!
//! Relations: instance `member_of` service, service `part_of` application; instance
//! `runs_on` its container, else its pod, else its host; container `part_of` pod; pod
//! `runs_on` node and `member_of` workload (else namespace); workload `member_of`
//! namespace; namespace `part_of` cluster; node `member_of` cluster, `runs_on` its host
//! (when `host.name` is set beside `k8s.node.name`) and `located_in` zone; host
//! `located_in` zone; zone `located_in` region.

use crate::model::{EntityId, EntityKind, RelationKind};

/// The attributes kept on an entity of each kind, beside the identifying ones.
const DESCRIPTIVE: &[(EntityKind, &[&str])] = &[
    (
        EntityKind::Service,
        &[
            "service.name",
            "service.namespace",
            "deployment.environment",
            "deployment.environment.name",
        ],
    ),
    (
        EntityKind::Instance,
        &[
            "service.name",
            "service.instance.id",
            "service.version",
            "telemetry.sdk.language",
            "process.pid",
            "process.runtime.name",
        ],
    ),
    (EntityKind::Region, &["cloud.region", "cloud.provider"]),
    (
        EntityKind::Zone,
        &["cloud.availability_zone", "cloud.region"],
    ),
    (
        EntityKind::Host,
        &[
            "host.name",
            "host.id",
            "host.type",
            "host.arch",
            "os.type",
            "cloud.platform",
        ],
    ),
    (
        EntityKind::Cluster,
        &["k8s.cluster.name", "k8s.cluster.uid"],
    ),
    (EntityKind::Namespace, &["k8s.namespace.name"]),
    (EntityKind::Node, &["k8s.node.name", "k8s.node.uid"]),
    (
        EntityKind::Workload,
        &[
            "k8s.namespace.name",
            "k8s.deployment.name",
            "k8s.statefulset.name",
            "k8s.daemonset.name",
            "k8s.cronjob.name",
            "k8s.job.name",
            "k8s.replicaset.name",
        ],
    ),
    (
        EntityKind::Pod,
        &["k8s.namespace.name", "k8s.pod.name", "k8s.pod.uid"],
    ),
    (
        EntityKind::Container,
        &[
            "container.id",
            "container.name",
            "k8s.container.name",
            "container.image.name",
            "container.image.tag",
        ],
    ),
    (EntityKind::Application, &["application.name"]),
];

/// Workload kinds by the attribute that names them, most specific first (a job's pods also
/// carry their cronjob's name).
const WORKLOADS: [(&str, &str); 5] = [
    ("k8s.deployment.name", "deployment"),
    ("k8s.statefulset.name", "statefulset"),
    ("k8s.daemonset.name", "daemonset"),
    ("k8s.cronjob.name", "cronjob"),
    ("k8s.job.name", "job"),
];

/// An entity a resource names, with the attributes it carries there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenEntity {
    pub id: EntityId,
    pub name: String,
    pub attributes: Vec<(String, String)>,
}

/// A relation a resource implies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRelation {
    pub from: EntityId,
    pub to: EntityId,
    pub kind: RelationKind,
}

/// What one resource says about the estate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceView {
    pub entities: Vec<SeenEntity>,
    pub relations: Vec<SeenRelation>,
}

/// A `service.name` that names no service: the SDKs' default (`unknown_service`,
/// `unknown_service:java`).
pub fn is_unknown_service(name: &str) -> bool {
    name.is_empty() || name.starts_with("unknown_service")
}

/// The entities and relations named by a resource whose attributes `get` looks up under
/// their OpenTelemetry names.
pub fn from_resource<'a>(get: impl Fn(&str) -> Option<&'a str>) -> ResourceView {
    let attr = |name: &str| get(name).filter(|v| !v.is_empty());
    let mut view = ResourceView::default();
    let workload_name = WORKLOADS
        .iter()
        .find_map(|(a, kind)| attr(a).map(|name| (name, *kind)));
    let mut add = |kind: EntityKind, parts: &[&str], name: &str| -> EntityId {
        let id = EntityId::new(kind, parts.iter().copied());
        let keep = DESCRIPTIVE
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(&[][..], |(_, names)| *names);
        let mut attributes: Vec<(String, String)> = keep
            .iter()
            .filter_map(|n| attr(n).map(|v| (n.to_string(), v.to_string())))
            .collect();
        if let (EntityKind::Workload, Some((_, workload_kind))) = (kind, workload_name) {
            attributes.push(("k8s.workload.kind".into(), workload_kind.into()));
        }
        view.entities.push(SeenEntity {
            id: id.clone(),
            name: name.to_string(),
            attributes,
        });
        id
    };

    let region = attr("cloud.region").map(|r| add(EntityKind::Region, &[r], r));
    let zone = attr("cloud.availability_zone").map(|z| add(EntityKind::Zone, &[z], z));
    let host_key = attr("host.id").or_else(|| attr("host.name"));
    let host = host_key.map(|h| add(EntityKind::Host, &[h], attr("host.name").unwrap_or(h)));
    let cluster_name = attr("k8s.cluster.name").or_else(|| attr("k8s.cluster.uid"));
    let cluster = cluster_name.map(|c| add(EntityKind::Cluster, &[c], c));
    let c = cluster_name.unwrap_or("");
    let ns_name = attr("k8s.namespace.name");
    let namespace = ns_name.map(|n| add(EntityKind::Namespace, &[c, n], n));
    let ns = ns_name.unwrap_or("");
    let node = attr("k8s.node.name").map(|n| add(EntityKind::Node, &[c, n], n));
    let workload = workload_name.map(|(name, _)| add(EntityKind::Workload, &[c, ns, name], name));
    let pod = attr("k8s.pod.name").map(|p| add(EntityKind::Pod, &[c, ns, p], p));
    let container = match (attr("container.id"), attr("k8s.container.name")) {
        (Some(id), _) => Some(add(
            EntityKind::Container,
            &[id],
            attr("k8s.container.name")
                .or_else(|| attr("container.name"))
                .unwrap_or(id),
        )),
        (None, Some(name)) => pod.as_ref().map(|p| {
            let key = format!("{}/{name}", p.key());
            add(EntityKind::Container, &[key.as_str()], name)
        }),
        (None, None) => None,
    };
    let service_name = attr("service.name").filter(|s| !is_unknown_service(s));
    let service = service_name.map(|s| add(EntityKind::Service, &[s], s));
    let instance = service_name.and_then(|s| {
        let key = attr("service.instance.id")
            .or_else(|| attr("k8s.pod.name"))
            .or_else(|| attr("host.name"))?;
        Some(add(EntityKind::Instance, &[s, key], key))
    });
    let application = attr("application.name").map(|a| add(EntityKind::Application, &[a], a));

    let mut rel = |from: &Option<EntityId>, to: &Option<EntityId>, kind| {
        if let (Some(from), Some(to)) = (from, to) {
            view.relations.push(SeenRelation {
                from: from.clone(),
                to: to.clone(),
                kind,
            });
        }
    };
    use RelationKind::*;
    rel(&instance, &service, MemberOf);
    rel(&service, &application, PartOf);
    let instance_host = container.clone().or(pod.clone()).or(host.clone());
    rel(&instance, &instance_host, RunsOn);
    rel(&container, &pod, PartOf);
    if pod.is_none() {
        rel(&container, &host, RunsOn);
    }
    if node.is_some() {
        rel(&pod, &node, RunsOn);
    } else {
        rel(&pod, &host, RunsOn);
    }
    if workload.is_some() {
        rel(&pod, &workload, MemberOf);
    } else {
        rel(&pod, &namespace, MemberOf);
    }
    rel(&workload, &namespace, MemberOf);
    rel(&namespace, &cluster, PartOf);
    rel(&node, &cluster, MemberOf);
    if node.is_some() {
        rel(&node, &host, RunsOn);
        rel(&node, &zone, LocatedIn);
    }
    rel(&host, &zone, LocatedIn);
    rel(&zone, &region, LocatedIn);
    view
}

/// Relations of which an entity has one at a time: a new one replaces the old (a pod on a
/// new node has left the old one).
pub fn is_exclusive(kind: RelationKind) -> bool {
    matches!(kind, RelationKind::RunsOn | RelationKind::LocatedIn)
}

/// Cache systems by `db.system`: the others are databases.
const CACHE_SYSTEMS: [&str; 5] = ["redis", "memcached", "hazelcast", "valkey", "geode"];

/// The dependency a client span names, if it calls something uninstrumented: its kind, its
/// name (as the service graph names its virtual node: `peer.service`, `db.name`,
/// `db.system`, `messaging.system`, `server.address`, the first set) and the attribute the
/// name came from. `messaging.destination.name`, `db.system` and `server.address` are kept as
/// attributes by the caller.
pub fn dependency_of_client_span<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
) -> Option<(EntityKind, &'a str, &'static str)> {
    let attr = |name: &str| get(name).filter(|v| !v.is_empty());
    let kind = if let Some(system) = attr("db.system") {
        if CACHE_SYSTEMS.contains(&system.to_ascii_lowercase().as_str()) {
            EntityKind::Cache
        } else {
            EntityKind::Database
        }
    } else if attr("db.name").is_some() {
        EntityKind::Database
    } else if attr("messaging.system").is_some() {
        EntityKind::Queue
    } else {
        return None;
    };
    [
        "peer.service",
        "db.name",
        "db.system",
        "messaging.system",
        "server.address",
    ]
    .into_iter()
    .find_map(|a| attr(a).map(|v| (kind, v, a)))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn view(pairs: &[(&str, &str)]) -> ResourceView {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        from_resource(|k| map.get(k).copied())
    }

    fn ids(v: &ResourceView) -> Vec<&str> {
        v.entities.iter().map(|e| e.id.as_str()).collect()
    }

    fn rels(v: &ResourceView) -> Vec<String> {
        v.relations
            .iter()
            .map(|r| format!("{} {} {}", r.from, r.kind, r.to))
            .collect()
    }

    #[test]
    fn a_kubernetes_resource_names_the_whole_chain() {
        let v = view(&[
            ("service.name", "budget"),
            ("service.version", "1.4.2"),
            ("service.instance.id", "budget-7c9f-x2"),
            ("k8s.cluster.name", "prod"),
            ("k8s.namespace.name", "finance"),
            ("k8s.deployment.name", "budget"),
            ("k8s.replicaset.name", "budget-7c9f"),
            ("k8s.pod.name", "budget-7c9f-x2"),
            ("k8s.container.name", "app"),
            ("k8s.node.name", "node-3"),
            ("host.name", "node-3"),
            ("cloud.availability_zone", "zone-a"),
            ("cloud.region", "region-1"),
        ]);
        assert_eq!(
            ids(&v),
            [
                "region:region-1",
                "zone:zone-a",
                "host:node-3",
                "cluster:prod",
                "namespace:prod/finance",
                "node:prod/node-3",
                "workload:prod/finance/budget",
                "pod:prod/finance/budget-7c9f-x2",
                "container:prod/finance/budget-7c9f-x2/app",
                "service:budget",
                "instance:budget/budget-7c9f-x2",
            ]
        );
        assert_eq!(
            rels(&v),
            [
                "instance:budget/budget-7c9f-x2 member_of service:budget",
                "instance:budget/budget-7c9f-x2 runs_on container:prod/finance/budget-7c9f-x2/app",
                "container:prod/finance/budget-7c9f-x2/app part_of pod:prod/finance/budget-7c9f-x2",
                "pod:prod/finance/budget-7c9f-x2 runs_on node:prod/node-3",
                "pod:prod/finance/budget-7c9f-x2 member_of workload:prod/finance/budget",
                "workload:prod/finance/budget member_of namespace:prod/finance",
                "namespace:prod/finance part_of cluster:prod",
                "node:prod/node-3 member_of cluster:prod",
                "node:prod/node-3 runs_on host:node-3",
                "node:prod/node-3 located_in zone:zone-a",
                "host:node-3 located_in zone:zone-a",
                "zone:zone-a located_in region:region-1",
            ]
        );
        let workload = &v.entities[6];
        assert!(
            workload
                .attributes
                .contains(&("k8s.workload.kind".into(), "deployment".into()))
        );
        let instance = v.entities.last().unwrap();
        assert!(
            instance
                .attributes
                .contains(&("service.version".into(), "1.4.2".into()))
        );
    }

    #[test]
    fn a_vm_resource_runs_the_instance_on_its_host() {
        let v = view(&[
            ("service.name", "treasury"),
            ("host.name", "vm-12"),
            ("cloud.availability_zone", "zone-b"),
        ]);
        assert_eq!(
            ids(&v),
            [
                "zone:zone-b",
                "host:vm-12",
                "service:treasury",
                "instance:treasury/vm-12"
            ]
        );
        assert_eq!(
            rels(&v),
            [
                "instance:treasury/vm-12 member_of service:treasury",
                "instance:treasury/vm-12 runs_on host:vm-12",
                "host:vm-12 located_in zone:zone-b",
            ]
        );
    }

    #[test]
    fn unknown_services_are_not_services() {
        let v = view(&[("service.name", "unknown_service:java"), ("host.name", "h")]);
        assert_eq!(ids(&v), ["host:h"]);
    }

    #[test]
    fn client_spans_name_databases_caches_and_queues() {
        let dep = |pairs: &[(&'static str, &'static str)]| {
            let map: HashMap<&str, &str> = pairs.iter().copied().collect();
            dependency_of_client_span(|k| map.get(k).copied())
        };
        assert_eq!(
            dep(&[("db.system", "postgresql"), ("db.name", "ledger")]),
            Some((EntityKind::Database, "ledger", "db.name"))
        );
        assert_eq!(
            dep(&[("db.system", "redis"), ("server.address", "cache-1")]),
            Some((EntityKind::Cache, "redis", "db.system"))
        );
        assert_eq!(
            dep(&[("messaging.system", "kafka")]),
            Some((EntityKind::Queue, "kafka", "messaging.system"))
        );
        assert_eq!(dep(&[("peer.service", "sso")]), None);
    }
}
