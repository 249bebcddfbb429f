//! The simulated estate: a provincial finance cloud — business applications of several
//! vendors, their services with instances on pods on nodes in two zones of a region (and a
//! disaster-recovery region on standby), a relational database, a cache and a message queue,
//! each with an owner and a criticality.

/// A business application.
#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    pub owner: &'static str,
    pub contact: &'static str,
    pub core: bool,
    pub services: Vec<String>,
}

/// A service: what it calls and what it depends on, and its own cost.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub app: String,
    pub namespace: String,
    pub calls: Vec<String>,
    /// Names of dependencies (database, cache, queue).
    pub deps: Vec<String>,
    /// Its own work per request (ms) and error share.
    pub base_ms: f64,
    pub base_err: f64,
    pub version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepKind {
    Database,
    Cache,
    Queue,
}

#[derive(Debug, Clone)]
pub struct Dependency {
    pub name: String,
    pub kind: DepKind,
    /// `postgresql`, `redis`, `kafka`.
    pub system: &'static str,
    pub base_ms: f64,
    pub owner: &'static str,
    pub contact: &'static str,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub zone: String,
    pub region: String,
}

#[derive(Debug, Clone)]
pub struct Pod {
    pub name: String,
    pub service: String,
    pub node: String,
    pub zone: String,
    pub region: String,
    pub namespace: String,
}

#[derive(Debug, Clone)]
pub struct Estate {
    pub cluster: String,
    pub apps: Vec<App>,
    pub services: Vec<Service>,
    pub deps: Vec<Dependency>,
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    /// The entry point every user request comes through.
    pub gateway: String,
}

impl Estate {
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn pods_of<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a Pod> + 'a {
        self.pods.iter().filter(move |p| p.service == service)
    }

    pub fn dep(&self, name: &str) -> Option<&Dependency> {
        self.deps.iter().find(|d| d.name == name)
    }

    /// Is the service part of a core application?
    pub fn core(&self, service: &str) -> bool {
        self.apps
            .iter()
            .any(|a| a.core && a.services.iter().any(|s| s == service))
    }

    /// The finance cloud, `copies` times (each copy its own applications and namespaces,
    /// sharing the platform: nodes, database, cache, queue). One copy has 13 services.
    pub fn finance(copies: usize) -> Estate {
        let copies = copies.max(1);
        let region = "gd-east";
        let mut nodes = Vec::new();
        for zone in ["zone-a", "zone-b"] {
            for i in 1..=3 * copies.div_ceil(4).max(1) {
                nodes.push(Node {
                    name: format!("{zone}-node-{i}"),
                    zone: zone.into(),
                    region: region.into(),
                });
            }
        }
        for i in 1..=2 {
            nodes.push(Node {
                name: format!("dr-node-{i}"),
                zone: "dr-a".into(),
                region: "gd-west".into(),
            });
        }
        let deps = vec![
            Dependency {
                name: "finance-db".into(),
                kind: DepKind::Database,
                system: "postgresql",
                base_ms: 6.0,
                owner: "DBA team",
                contact: "dba@finance-cloud.example.gov",
            },
            Dependency {
                name: "session-cache".into(),
                kind: DepKind::Cache,
                system: "redis",
                base_ms: 0.8,
                owner: "Platform team",
                contact: "platform@finance-cloud.example.gov",
            },
            Dependency {
                name: "payment-mq".into(),
                kind: DepKind::Queue,
                system: "kafka",
                base_ms: 2.0,
                owner: "Platform team",
                contact: "platform@finance-cloud.example.gov",
            },
        ];
        // (app, owner, contact, core, [(service, calls, deps, base ms)])
        type Spec = (
            &'static str,
            &'static str,
            &'static str,
            bool,
            Vec<(&'static str, Vec<&'static str>, Vec<&'static str>, f64)>,
        );
        let specs: Vec<Spec> = vec![
            (
                "portal",
                "Platform team",
                "platform@finance-cloud.example.gov",
                true,
                vec![
                    (
                        "gateway",
                        vec![
                            "auth-sso",
                            "budget-prep",
                            "budget-approval",
                            "treasury-payment",
                            "reporting",
                            "search",
                            "file-service",
                        ],
                        vec![],
                        4.0,
                    ),
                    ("auth-sso", vec![], vec!["session-cache", "finance-db"], 5.0),
                ],
            ),
            (
                "budget",
                "Vendor A (budget systems)",
                "support@vendor-a.example.com",
                true,
                vec![
                    (
                        "budget-prep",
                        vec!["indicator-mgmt"],
                        vec!["finance-db"],
                        25.0,
                    ),
                    (
                        "budget-approval",
                        vec!["budget-prep", "notification"],
                        vec!["finance-db"],
                        20.0,
                    ),
                    ("indicator-mgmt", vec![], vec!["finance-db"], 12.0),
                ],
            ),
            (
                "treasury",
                "Vendor B (treasury)",
                "oncall@vendor-b.example.com",
                true,
                vec![
                    (
                        "treasury-payment",
                        vec!["accounting"],
                        vec!["payment-mq", "finance-db"],
                        30.0,
                    ),
                    ("accounting", vec![], vec!["finance-db"], 15.0),
                ],
            ),
            (
                "analytics",
                "Vendor C (reporting)",
                "help@vendor-c.example.com",
                false,
                vec![
                    ("reporting", vec!["search"], vec!["finance-db"], 60.0),
                    ("search", vec![], vec![], 18.0),
                ],
            ),
            (
                "common",
                "Platform team",
                "platform@finance-cloud.example.gov",
                false,
                vec![
                    ("notification", vec![], vec!["payment-mq"], 8.0),
                    ("file-service", vec![], vec![], 10.0),
                    ("scheduler", vec!["reporting", "notification"], vec![], 3.0),
                ],
            ),
        ];
        let suffix = |c: usize| {
            if c == 0 {
                String::new()
            } else {
                format!("-{}", c + 1)
            }
        };
        let mut apps = Vec::new();
        let mut services = Vec::new();
        for c in 0..copies {
            let sfx = suffix(c);
            for (app, owner, contact, core, svcs) in &specs {
                let app_name = format!("{app}{sfx}");
                let namespace = format!("fin-{app}{sfx}");
                apps.push(App {
                    name: app_name.clone(),
                    owner,
                    contact,
                    core: *core,
                    services: svcs.iter().map(|s| format!("{}{sfx}", s.0)).collect(),
                });
                for (name, calls, ds, base_ms) in svcs {
                    services.push(Service {
                        name: format!("{name}{sfx}"),
                        app: app_name.clone(),
                        namespace: namespace.clone(),
                        calls: calls.iter().map(|x| format!("{x}{sfx}")).collect(),
                        deps: ds.iter().map(|d| d.to_string()).collect(),
                        base_ms: *base_ms,
                        base_err: 0.001,
                        version: "1.4.2".into(),
                    });
                }
            }
        }
        // Two pods per service, one in each zone of the region, spread over the nodes.
        let mut pods = Vec::new();
        let regional: Vec<&Node> = nodes.iter().filter(|n| n.region == region).collect();
        let per_zone = regional.len() / 2;
        for (i, s) in services.iter().enumerate() {
            for z in 0..2 {
                let node = regional[z * per_zone + (i + z) % per_zone];
                pods.push(Pod {
                    name: format!("{}-{}", s.name, ["7c9f4-a", "7c9f4-b"][z]),
                    service: s.name.clone(),
                    node: node.name.clone(),
                    zone: node.zone.clone(),
                    region: node.region.clone(),
                    namespace: s.namespace.clone(),
                });
            }
        }
        // The disaster-recovery standby of the core entry points.
        for (i, name) in ["gateway", "auth-sso"].iter().enumerate() {
            let s = services.iter().find(|s| s.name == *name).expect("service");
            pods.push(Pod {
                name: format!("{name}-dr-0"),
                service: s.name.clone(),
                node: format!("dr-node-{}", i + 1),
                zone: "dr-a".into(),
                region: "gd-west".into(),
                namespace: s.namespace.clone(),
            });
        }
        Estate {
            cluster: "fin-prod".into(),
            apps,
            services,
            deps,
            nodes,
            pods,
            gateway: "gateway".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_finance_cloud_has_what_the_issue_asks() {
        let e = Estate::finance(1);
        assert!(e.services.len() >= 12);
        assert!(e.apps.iter().any(|a| a.core) && e.apps.iter().any(|a| !a.core));
        let zones: std::collections::BTreeSet<&str> =
            e.nodes.iter().map(|n| n.zone.as_str()).collect();
        assert_eq!(zones.len(), 3, "two zones and a DR zone");
        for s in &e.services {
            assert_eq!(
                e.pods_of(&s.name).filter(|p| p.region == "gd-east").count(),
                2
            );
            for c in &s.calls {
                assert!(e.service(c).is_some(), "{} calls unknown {c}", s.name);
            }
            for d in &s.deps {
                assert!(e.dep(d).is_some(), "{} needs unknown {d}", s.name);
            }
        }
        assert!(Estate::finance(3).services.len() == 3 * e.services.len());
    }
}
