//! Degradation advice: for an incident's likely cause, ranked actions that keep the rest of
//! the estate up — roll back the change just before, replace a failing instance, drain or
//! fail over a failing node or zone, scale out a saturated service, degrade the
//! non-critical callers of a failing dependency, circuit-break it, rate-limit the entry
//! point to its measured capacity — each with its rationale, expected effect, cost, and a
//! machine-readable form a platform can apply (Kubernetes, Istio/Envoy, Sentinel, an OpenFeature flag). Core business is never
//! shed to save something else: a core caller is never degraded, and an action that would
//! refuse core traffic says so in its cost.
//!
//! The order follows what removes the cause first and costs least: undoing a change beats
//! working around it; moving off broken infrastructure beats throttling the users of it;
//! shedding non-critical load beats refusing requests at the door.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// An entity as the advice needs it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    /// The entity kind (`service`, `database`, `node`, …).
    pub kind: String,
    pub name: String,
    /// Core business (declared, or a service of a core application).
    pub core: bool,
    /// Changed at the incident's onset.
    pub anomalous: bool,
    /// Kubernetes namespace, when known (for the machine-readable forms).
    pub namespace: Option<String>,
}

/// A change recorded on the cause before the onset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// `version`, `revision`, `image`, `deploy`, …
    pub kind: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub time: i64,
}

/// What is known at the time of the advice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Situation {
    pub cause: Node,
    /// The cause's judged signal: its metric, level before and value after.
    pub metric: Option<String>,
    pub level: Option<f64>,
    pub observed: Option<f64>,
    /// A resource of the cause (its metric) used to its limit since the onset: a
    /// connection pool, memory, a disk.
    pub at_limit: Option<String>,
    /// Changes on the cause (or its workload) shortly before the onset.
    pub changes: Vec<Change>,
    /// Entities that call or depend on the cause directly.
    pub callers: Vec<Node>,
    /// The entry point the symptom showed on, when it is one (nothing calls it), with
    /// the request rate it served before the onset (requests/s), when measured.
    pub entry: Option<Node>,
    pub entry_rate: Option<f64>,
    /// Instances of the cause, when it is a service.
    pub instances: usize,
    /// The requests the cause received in the last minute of the evidence over its rate
    /// in the half hour before the onset, and the same for the entry point (span metrics),
    /// when measured.
    pub load: Option<f64>,
    pub entry_load: Option<f64>,
}

/// Load this many times its usual, while the entry point's is not, is amplified inside
/// the estate (retries, a loop), not demand: more capacity would be eaten by it.
const AMPLIFIED: f64 = 2.0;
/// An entry point whose traffic rose less than this has not brought the load.
const ENTRY_STEADY: f64 = 1.5;

impl Situation {
    /// The cause receives several times its usual requests while the users do not send more.
    fn amplified(&self) -> Option<f64> {
        let load = self.load?;
        (load >= AMPLIFIED && self.entry_load.unwrap_or(1.0) < ENTRY_STEADY).then_some(load)
    }
}

/// Of the changes on an entity, those to undo: the ones since `since`, unless the latest
/// of all put back what ran before (a rollback already done — undoing it would bring back
/// the version it removed; the release it undid may be older than `since`).
pub fn changes_to_undo(history: &[Change], since: i64) -> Vec<Change> {
    let Some(latest) = history.iter().max_by_key(|ch| ch.time) else {
        return Vec::new();
    };
    let undone = history.iter().any(|earlier| {
        earlier.time < latest.time
            && earlier.kind == latest.kind
            && earlier.from.is_some()
            && earlier.from == latest.to
    });
    if undone {
        return Vec::new();
    }
    history
        .iter()
        .filter(|ch| ch.time >= since)
        .cloned()
        .collect()
}

/// One recommended action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// `rollback`, `restart`, `fail_over`, `drain`, `scale_out`, `degrade`,
    /// `circuit_break`, `rate_limit`.
    pub kind: String,
    pub target: String,
    pub rationale: String,
    pub effect: String,
    pub cost: String,
    /// What a platform applies.
    pub spec: Value,
}

fn is_infra(kind: &str) -> bool {
    matches!(kind, "node" | "host")
}

fn is_dependency(kind: &str) -> bool {
    matches!(kind, "database" | "cache" | "queue" | "external")
}

/// Callers of the cause fail fast (at most one retry, failing instances ejected) instead of
/// waiting on it.
fn circuit_break(s: &Situation, rationale: String) -> Action {
    let c = &s.cause;
    let ns = c.namespace.as_deref().unwrap_or("default");
    let core_callers: Vec<&str> = s
        .callers
        .iter()
        .filter(|x| x.core)
        .map(|x| x.name.as_str())
        .collect();
    let cost = if core_callers.is_empty() {
        format!("requests needing {} fail fast instead of waiting", c.name)
    } else {
        format!(
            "core callers ({}) get fast errors for the part needing {} — apply only where they have a fallback",
            core_callers.join(", "),
            c.name
        )
    };
    Action {
        kind: "circuit_break".into(),
        target: c.id.clone(),
        rationale,
        effect: "callers fail fast (or use their fallback) instead of exhausting their threads, connections and retries".into(),
        cost,
        spec: json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": format!("{}-circuit-breaker", c.name), "namespace": ns},
            "spec": {"host": c.name, "trafficPolicy": {
                "connectionPool": {"tcp": {"maxConnections": 100},
                                   "http": {"http1MaxPendingRequests": 50, "maxRetries": 1}},
                "outlierDetection": {"consecutive5xxErrors": 5, "consecutiveGatewayErrors": 5,
                                     "interval": "10s", "baseEjectionTime": "30s",
                                     "maxEjectionPercent": 50}}},
        }),
    }
}

/// Ranked actions for the situation, best first.
pub fn advise(s: &Situation) -> Vec<Action> {
    let c = &s.cause;
    let mut out = Vec::new();
    let ns = c.namespace.as_deref().unwrap_or("default");

    // A change just before the onset: undo it.
    if let Some(ch) = s.changes.iter().max_by_key(|ch| ch.time) {
        let to = ch
            .from
            .clone()
            .unwrap_or_else(|| "the previous revision".into());
        out.push(Action {
            kind: "rollback".into(),
            target: c.id.clone(),
            rationale: format!(
                "{} changed ({} {} → {}) shortly before the symptoms began",
                c.id,
                ch.kind,
                ch.from.as_deref().unwrap_or("?"),
                ch.to.as_deref().unwrap_or("?")
            ),
            effect: format!(
                "{} runs {} again; the regression it brought goes",
                c.name, to
            ),
            cost: "the changed version's features are withdrawn until it is fixed".into(),
            spec: json!({
                "action": "rollback",
                "kubectl": format!("kubectl -n {ns} rollout undo deployment/{}", c.name),
                "to_version": ch.from,
            }),
        });
    }

    // One instance (or pod) failing while its service's others serve: replace it.
    if c.kind == "instance" || c.kind == "pod" {
        out.push(Action {
            kind: "restart".into(),
            target: c.id.clone(),
            rationale: format!(
                "the cause is the {} {} alone, not its whole service",
                c.kind, c.name
            ),
            effect: "its controller starts a fresh one; the others serve meanwhile".into(),
            cost: "its in-flight requests fail; a leak or a bad state it built up returns if \
                   its cause stays"
                .into(),
            spec: json!({
                "action": "restart",
                "kubectl": format!("kubectl -n {ns} delete pod {}", c.name),
            }),
        });
    }

    // Broken infrastructure: move what runs there.
    if c.kind == "zone" || c.kind == "region" {
        out.push(Action {
            kind: "fail_over".into(),
            target: c.id.clone(),
            rationale: format!("the cause is the {} {} itself", c.kind, c.name),
            effect: "traffic is served from the other zone (or the disaster-recovery region)"
                .into(),
            cost: "the remaining capacity serves everyone: latency rises if it is short; \
                   cross-zone traffic costs more"
                .into(),
            spec: json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "spec": {"trafficPolicy": {"loadBalancer": {"localityLbSetting": {
                    "enabled": true,
                    "failover": [{"from": c.name, "to": "*"}]}},
                    "outlierDetection": {"consecutive5xxErrors": 5, "interval": "10s",
                                         "baseEjectionTime": "30s"}}},
            }),
        });
    }
    if is_infra(&c.kind) {
        out.push(Action {
            kind: "drain".into(),
            target: c.id.clone(),
            rationale: format!("the cause is the {} {}; what runs on it suffers", c.kind, c.name),
            effect: "its pods are rescheduled on healthy nodes; the node takes no new ones".into(),
            cost: "a restart of each pod moved; the cluster needs the spare capacity".into(),
            spec: json!({
                "action": "drain",
                "kubectl": [format!("kubectl cordon {}", c.name),
                            format!("kubectl drain {} --ignore-daemonsets --delete-emptydir-data", c.name)],
            }),
        });
    }

    // Its callers' retries multiply its load: stop them, fail fast. Scaling out would feed
    // the storm.
    let amplified = s
        .amplified()
        .filter(|_| c.kind == "service" && s.changes.is_empty());
    if let Some(load) = amplified {
        out.push(circuit_break(
            s,
            format!(
                "{} receives {load:.1}× its usual requests while the entry point's traffic \
                 did not grow: its callers' retries (or a loop) multiply its load",
                c.name
            ),
        ));
    }

    // A saturated service: more instances.
    if c.kind == "service" && s.changes.is_empty() && amplified.is_none() {
        let saturated = s.at_limit.is_some()
            || s.metric.as_deref().is_some_and(|m| {
                m.contains("cpu")
                    || m.contains("memory")
                    || m.contains("latency")
                    || m.contains("duration")
            });
        if saturated && s.instances > 0 {
            let ratio = match (s.level, s.observed) {
                (Some(l), Some(o)) if l > 0.0 && o > l => (o / l).min(3.0),
                _ => 1.5,
            };
            let replicas = ((s.instances as f64) * ratio).ceil() as usize;
            let replicas = replicas.max(s.instances + 1);
            out.push(Action {
                kind: "scale_out".into(),
                target: c.id.clone(),
                rationale: match &s.at_limit {
                    Some(m) => format!("{} is saturated: {m} reached its limit", c.name),
                    None => format!(
                        "{} is saturated: {} went from {} to {}",
                        c.name,
                        s.metric.as_deref().unwrap_or("its signal"),
                        s.level.map_or("?".into(), |v| format!("{v:.3}")),
                        s.observed.map_or("?".into(), |v| format!("{v:.3}"))
                    ),
                },
                effect: format!(
                    "{} → {replicas} instances: the same load over more capacity",
                    s.instances
                ),
                cost: format!("{} more instances' resources", replicas - s.instances),
                spec: json!({
                    "action": "scale",
                    "kubectl": format!("kubectl -n {ns} scale deployment/{} --replicas={replicas}", c.name),
                    "replicas": replicas,
                }),
            });
        }
    }

    // Shed non-critical load on the failing dependency or service.
    for caller in s.callers.iter().filter(|x| !x.core) {
        out.push(Action {
            kind: "degrade".into(),
            target: caller.id.clone(),
            rationale: format!(
                "{} is not core business and adds load to {}",
                caller.name, c.name
            ),
            effect: format!(
                "{} stops calling {} (its feature answers a degraded result); the capacity left goes to core callers",
                caller.name, c.name
            ),
            cost: format!("{}'s feature is degraded until the flag is turned back", caller.name),
            spec: json!({
                "flags": {format!("{}.{}.enabled", caller.name, c.name): {
                    "state": "ENABLED", "variants": {"on": true, "off": false},
                    "defaultVariant": "off"}},
            }),
        });
    }

    // Cut off a failing dependency so callers fail fast (caches and externals have a
    // fallback: the database, a default).
    if amplified.is_none()
        && (is_dependency(&c.kind) || (c.kind == "service" && !s.callers.is_empty()))
    {
        out.push(circuit_break(
            s,
            format!(
                "{} is failing or slow; callers pile up waiting on it",
                c.name
            ),
        ));
    }

    // Admit no more than the entry point served before the incident.
    if let (Some(entry), Some(rate)) = (&s.entry, s.entry_rate)
        && rate > 0.0
    {
        let limit = rate.ceil() as u64;
        out.push(Action {
            kind: "rate_limit".into(),
            target: entry.id.clone(),
            rationale: format!(
                "{} served {rate:.1} requests/s at normal latency before the incident: the capacity measured",
                entry.name
            ),
            effect: format!("at most {limit} requests/s are admitted; the rest get 429 and retry later"),
            cost: if entry.core {
                "core requests beyond the limit are refused (429): only while capacity is short".into()
            } else {
                "requests beyond the limit are refused (429)".into()
            },
            spec: json!({
                "envoy": {"name": "envoy.filters.http.local_ratelimit", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
                    "stat_prefix": "http_local_rate_limiter",
                    "token_bucket": {"max_tokens": limit, "tokens_per_fill": limit, "fill_interval": "1s"},
                    "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
                    "filter_enforced": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}}},
                "sentinel": [{"resource": entry.name, "grade": 1, "count": limit,
                              "controlBehavior": 0}],
            }),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, core: bool) -> Node {
        let (kind, name) = id.split_once(':').unwrap();
        Node {
            id: id.into(),
            kind: kind.into(),
            name: name.into(),
            core,
            anomalous: true,
            namespace: Some("fin".into()),
        }
    }

    #[test]
    fn a_change_before_the_onset_is_rolled_back_first() {
        let s = Situation {
            cause: node("service:budget", true),
            changes: vec![Change {
                kind: "version".into(),
                from: Some("1.0".into()),
                to: Some("1.1".into()),
                time: 5,
            }],
            callers: vec![node("service:gateway", true)],
            ..Situation::default()
        };
        let a = advise(&s);
        assert_eq!(a[0].kind, "rollback");
        assert_eq!(a[0].spec["to_version"], "1.0");
        assert!(
            a[0].spec["kubectl"]
                .as_str()
                .unwrap()
                .contains("rollout undo deployment/budget")
        );
        // A core caller is never degraded.
        assert!(a.iter().all(|x| x.kind != "degrade"), "{a:#?}");
        // Once 1.1 was rolled back to 1.0, undoing that would bring 1.1 back, though 1.1
        // went out before the window.
        let history = vec![
            s.changes[0].clone(),
            Change {
                kind: "version".into(),
                from: Some("1.1".into()),
                to: Some("1.0".into()),
                time: 9,
            },
        ];
        assert!(changes_to_undo(&history, 7).is_empty());
        assert_eq!(changes_to_undo(&history[..1], 5), history[..1]);
        assert!(changes_to_undo(&history[..1], 6).is_empty());
    }

    #[test]
    fn a_slow_database_sheds_non_critical_callers_then_breaks_and_limits() {
        let s = Situation {
            cause: node("database:ledger", false),
            callers: vec![
                node("service:reporting", false),
                node("service:treasury", true),
            ],
            entry: Some(node("service:gateway", true)),
            entry_rate: Some(41.2),
            ..Situation::default()
        };
        let a = advise(&s);
        let kinds: Vec<&str> = a.iter().map(|x| x.kind.as_str()).collect();
        assert_eq!(kinds, ["degrade", "circuit_break", "rate_limit"]);
        assert_eq!(a[0].target, "service:reporting");
        assert!(a[1].cost.contains("treasury"), "{}", a[1].cost);
        assert_eq!(
            a[2].spec["envoy"]["typed_config"]["token_bucket"]["max_tokens"],
            42
        );
        assert_eq!(a[2].spec["sentinel"][0]["count"], 42);
    }

    #[test]
    fn broken_infrastructure_is_left() {
        let a = advise(&Situation {
            cause: node("node:prod/node-3", false),
            ..Situation::default()
        });
        assert_eq!(a[0].kind, "drain");
        let a = advise(&Situation {
            cause: node("zone:zone-a", false),
            ..Situation::default()
        });
        assert_eq!(a[0].kind, "fail_over");
    }

    #[test]
    fn one_failing_instance_is_replaced() {
        let mut cause = node("instance:search/search-7c9f4-a", false);
        cause.kind = "instance".into();
        cause.name = "search-7c9f4-a".into();
        cause.namespace = Some("fin".into());
        let a = advise(&Situation {
            cause,
            ..Situation::default()
        });
        assert_eq!(a[0].kind, "restart");
        assert_eq!(
            a[0].spec["kubectl"],
            "kubectl -n fin delete pod search-7c9f4-a"
        );
    }

    #[test]
    fn a_saturated_service_scales_out_by_its_overload() {
        let a = advise(&Situation {
            cause: node("service:search", false),
            metric: Some("container_cpu_usage".into()),
            level: Some(0.4),
            observed: Some(0.9),
            instances: 2,
            ..Situation::default()
        });
        assert_eq!(a[0].kind, "scale_out");
        assert_eq!(a[0].spec["replicas"], 5);
        // Judged on its errors, with its connection pool used up: saturated too.
        let a = advise(&Situation {
            cause: node("service:accounting", true),
            metric: Some("service:errors:rate5m".into()),
            level: Some(0.0),
            observed: Some(0.1),
            at_limit: Some("db_client_connections_utilization_ratio".into()),
            instances: 2,
            callers: vec![node("service:gateway", true)],
            ..Situation::default()
        });
        assert_eq!(a[0].kind, "scale_out", "{a:#?}");
        assert!(a[0].rationale.contains("db_client_connections"));
    }

    /// Three times its usual requests while the users send no more: its callers retry.
    /// Fail fast rather than feed the storm with more instances.
    #[test]
    fn amplified_load_is_cut_not_scaled() {
        let storm = Situation {
            cause: node("service:search", false),
            metric: Some("latency_ms".into()),
            level: Some(40.0),
            observed: Some(320.0),
            callers: vec![node("service:gateway", true)],
            instances: 2,
            load: Some(2.9),
            entry_load: Some(1.02),
            ..Situation::default()
        };
        let a = advise(&storm);
        assert_eq!(a[0].kind, "circuit_break", "{a:#?}");
        assert!(a[0].rationale.contains("2.9×"), "{}", a[0].rationale);
        assert!(a.iter().all(|x| x.kind != "scale_out"), "{a:#?}");
        assert_eq!(a.iter().filter(|x| x.kind == "circuit_break").count(), 1);
        // The users brought the load: scale out.
        let demand = Situation {
            entry_load: Some(2.8),
            ..storm
        };
        assert_eq!(advise(&demand)[0].kind, "scale_out");
    }
}
