//! Faults the simulator injects, their effects on the estate, and their ground truth: the
//! entity that is the cause (as the topology names it) and the kind of action that helps.

use serde::Serialize;

use crate::estate::Estate;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    NodeCpu,
    MemoryLeak,
    SlowDb,
    CacheOutage,
    BadDeploy,
    RetryStorm,
    ZonePartition,
    DiskFull,
    PoolExhaustion,
    NoisyNeighbour,
}

impl FaultKind {
    pub const ALL: [FaultKind; 10] = [
        FaultKind::NodeCpu,
        FaultKind::MemoryLeak,
        FaultKind::SlowDb,
        FaultKind::CacheOutage,
        FaultKind::BadDeploy,
        FaultKind::RetryStorm,
        FaultKind::ZonePartition,
        FaultKind::DiskFull,
        FaultKind::PoolExhaustion,
        FaultKind::NoisyNeighbour,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::NodeCpu => "node_cpu",
            FaultKind::MemoryLeak => "memory_leak",
            FaultKind::SlowDb => "slow_db",
            FaultKind::CacheOutage => "cache_outage",
            FaultKind::BadDeploy => "bad_deploy",
            FaultKind::RetryStorm => "retry_storm",
            FaultKind::ZonePartition => "zone_partition",
            FaultKind::DiskFull => "disk_full",
            FaultKind::PoolExhaustion => "pool_exhaustion",
            FaultKind::NoisyNeighbour => "noisy_neighbour",
        }
    }

    pub fn parse(s: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What a target names for this kind: a node, a pod, a service, a zone, or nothing
    /// (the one database, the one cache).
    pub fn target_kind(self) -> &'static str {
        match self {
            FaultKind::NodeCpu | FaultKind::DiskFull | FaultKind::NoisyNeighbour => "node",
            FaultKind::MemoryLeak => "pod",
            FaultKind::BadDeploy | FaultKind::PoolExhaustion | FaultKind::RetryStorm => "service",
            FaultKind::ZonePartition => "zone",
            FaultKind::SlowDb | FaultKind::CacheOutage => "none",
        }
    }

    /// The kinds of action that help, best first (for scoring the advice).
    pub fn right_actions(self) -> &'static [&'static str] {
        match self {
            FaultKind::NodeCpu | FaultKind::DiskFull | FaultKind::NoisyNeighbour => &["drain"],
            FaultKind::MemoryLeak => &["restart", "rollback", "scale_out"],
            FaultKind::SlowDb => &["degrade", "rate_limit", "circuit_break"],
            FaultKind::CacheOutage => &["circuit_break"],
            FaultKind::BadDeploy => &["rollback"],
            FaultKind::RetryStorm => &["circuit_break", "rate_limit"],
            FaultKind::ZonePartition => &["fail_over"],
            FaultKind::PoolExhaustion => &["scale_out", "rate_limit"],
        }
    }
}

/// An injected fault and its ground truth.
#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    pub id: u64,
    pub kind: FaultKind,
    /// The node, pod, service or zone it was injected on (empty for the database/cache).
    pub target: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The topology entity that is the cause.
    pub root_cause: String,
    pub right_actions: &'static [&'static str],
}

/// Picks a target for `kind` (deterministically from `pick`), or checks a given one.
pub fn target(
    e: &Estate,
    kind: FaultKind,
    given: Option<&str>,
    pick: u64,
) -> Result<String, String> {
    let choose = |names: Vec<String>| -> Result<String, String> {
        if names.is_empty() {
            return Err(format!("no target for {}", kind.as_str()));
        }
        match given {
            Some(g) if names.iter().any(|n| n == g) => Ok(g.to_string()),
            Some(g) => Err(format!(
                "{g:?} is not a {} target of {} (one of: {})",
                kind.target_kind(),
                kind.as_str(),
                names.join(", ")
            )),
            None => Ok(names[(pick % names.len() as u64) as usize].clone()),
        }
    };
    let regional_nodes = || {
        e.nodes
            .iter()
            .filter(|n| n.region == "gd-east")
            .map(|n| n.name.clone())
            .collect::<Vec<_>>()
    };
    match kind {
        FaultKind::NodeCpu | FaultKind::DiskFull | FaultKind::NoisyNeighbour => {
            choose(regional_nodes())
        }
        FaultKind::MemoryLeak => choose(
            e.pods
                .iter()
                .filter(|p| p.region == "gd-east")
                .map(|p| p.name.clone())
                .collect(),
        ),
        FaultKind::BadDeploy => choose(
            e.services
                .iter()
                .filter(|s| s.name != e.gateway)
                .map(|s| s.name.clone())
                .collect(),
        ),
        // Only a service that holds a pool of database connections can exhaust one.
        FaultKind::PoolExhaustion => choose(
            e.services
                .iter()
                .filter(|s| {
                    s.name != e.gateway
                        && s.deps.iter().any(|d| {
                            e.dep(d)
                                .is_some_and(|d| d.kind == crate::estate::DepKind::Database)
                        })
                })
                .map(|s| s.name.clone())
                .collect(),
        ),
        // A storm needs a callee whose callers retry.
        FaultKind::RetryStorm => choose(
            e.services
                .iter()
                .filter(|s| e.services.iter().any(|c| c.calls.contains(&s.name)))
                .map(|s| s.name.clone())
                .collect(),
        ),
        FaultKind::ZonePartition => choose(vec!["zone-b".into()]),
        FaultKind::SlowDb | FaultKind::CacheOutage => Ok(String::new()),
    }
}

/// The topology id of the cause of a fault on `target`.
pub fn root_cause(e: &Estate, kind: FaultKind, target: &str) -> String {
    match kind {
        FaultKind::NodeCpu | FaultKind::DiskFull | FaultKind::NoisyNeighbour => {
            format!("node:{}/{target}", e.cluster)
        }
        FaultKind::MemoryLeak => {
            let pod = e.pods.iter().find(|p| p.name == target).expect("pod");
            format!("instance:{}/{}", pod.service, pod.name)
        }
        FaultKind::BadDeploy | FaultKind::PoolExhaustion | FaultKind::RetryStorm => {
            format!("service:{target}")
        }
        FaultKind::ZonePartition => format!("zone:{target}"),
        FaultKind::SlowDb => "database:finance-db".into(),
        FaultKind::CacheOutage => "cache:session-cache".into(),
    }
}

/// What the active faults do, as the simulator applies it.
#[derive(Debug, Clone, Default)]
pub struct Effects<'a> {
    pub faults: Vec<&'a Fault>,
}

impl<'a> Effects<'a> {
    pub fn at(faults: &'a [Fault], t: i64) -> Self {
        Effects {
            faults: faults
                .iter()
                .filter(|f| f.start_ms <= t && t < f.end_ms)
                .collect(),
        }
    }

    fn active(&self, kind: FaultKind) -> impl Iterator<Item = &&'a Fault> {
        self.faults.iter().filter(move |f| f.kind == kind)
    }

    /// Extra CPU share on a node (0..1) and whether its disk is full.
    pub fn node(&self, node: &str) -> (f64, bool) {
        let cpu = self
            .faults
            .iter()
            .filter(|f| f.target == node)
            .map(|f| match f.kind {
                FaultKind::NodeCpu => 0.9,
                FaultKind::NoisyNeighbour => 0.7,
                _ => 0.0,
            })
            .sum::<f64>();
        let full = self.active(FaultKind::DiskFull).any(|f| f.target == node);
        (cpu, full)
    }

    /// How a pod's requests are slowed (×), how much more CPU each takes (×: waiting for a
    /// core, a connection or a queue takes time, not CPU), how they fail (+), its memory
    /// share, whether it is restarting (out of memory), and its node's extra CPU.
    pub fn pod(&self, e: &Estate, pod: &crate::estate::Pod, t: i64) -> PodEffect {
        let mut out = PodEffect {
            slow: 1.0,
            work: 1.0,
            ..PodEffect::default()
        };
        let (node_cpu, disk_full) = self.node(&pod.node);
        if node_cpu > 0.0 {
            out.slow *= 1.0 + 4.0 * node_cpu;
        }
        if disk_full {
            out.err += 0.25;
        }
        for f in self
            .active(FaultKind::MemoryLeak)
            .filter(|f| f.target == pod.name)
        {
            // Memory climbs to the limit in a minute, then the pod is killed and restarts
            // (in the last tenth of the minute, so that a 5 s tick always sees it).
            let phase = ((t - f.start_ms) % 60_000) as f64 / 60_000.0;
            out.memory = 0.45 + 0.55 * phase;
            out.oom = phase >= 0.9;
            // Garbage collection: slower and busier.
            out.slow *= 1.0 + 2.0 * phase;
            out.work *= 1.0 + 2.0 * phase;
            if out.oom {
                out.err += 0.5;
            }
        }
        for f in self
            .active(FaultKind::BadDeploy)
            .filter(|f| f.target == pod.service)
        {
            let _ = f;
            // The new version does more work per request.
            out.err += 0.2;
            out.slow *= 2.0;
            out.work *= 2.0;
        }
        for f in self
            .active(FaultKind::PoolExhaustion)
            .filter(|f| f.target == pod.service)
        {
            let _ = f;
            out.pool_full = true;
            out.slow *= 6.0;
            out.err += 0.08;
        }
        // A retry storm overwhelms its target: it serves each call up to three times and
        // queues its own requests too.
        if self.storm(&pod.service).is_some() {
            out.slow *= 8.0;
            out.work *= 3.0;
            out.err += 0.2;
        }
        out.unreachable = self.cut_off(&pod.zone);
        let _ = e;
        out.cpu = node_cpu;
        out
    }

    /// The version a service runs (a bad deploy brings a new one).
    pub fn version<'s>(&self, service: &'s crate::estate::Service) -> &'s str {
        if self
            .active(FaultKind::BadDeploy)
            .any(|f| f.target == service.name)
        {
            "1.5.0"
        } else {
            &service.version
        }
    }

    /// Extra latency (ms) and failure share of a dependency.
    pub fn dependency(&self, name: &str) -> (f64, f64) {
        let mut add = 0.0;
        let mut err = 0.0;
        if name == "finance-db" && self.active(FaultKind::SlowDb).next().is_some() {
            add += 250.0;
        }
        if name == "session-cache" && self.active(FaultKind::CacheOutage).next().is_some() {
            err += 1.0;
        }
        (add, err)
    }

    /// Whether `zone` is cut off from the rest of the region (and from the server).
    pub fn cut_off(&self, zone: &str) -> bool {
        self.active(FaultKind::ZonePartition)
            .any(|f| f.target == zone)
    }

    /// A retry storm on `callee`: it times out, and its callers call it this many times.
    pub fn storm(&self, callee: &str) -> Option<f64> {
        self.active(FaultKind::RetryStorm)
            .any(|f| f.target == callee)
            .then_some(3.0)
    }
}

#[derive(Debug, Clone, Default)]
pub struct PodEffect {
    pub slow: f64,
    pub work: f64,
    pub err: f64,
    pub memory: f64,
    pub oom: bool,
    pub pool_full: bool,
    pub unreachable: bool,
    pub cpu: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estate::DepKind;

    #[test]
    fn a_pool_is_exhausted_only_where_a_service_holds_one() {
        let e = Estate::finance(1);
        for pick in 0..64 {
            let t = target(&e, FaultKind::PoolExhaustion, None, pick).unwrap();
            let s = e.service(&t).unwrap();
            assert!(
                s.deps
                    .iter()
                    .any(|d| e.dep(d).unwrap().kind == DepKind::Database),
                "{t} has no database pool"
            );
        }
        let without = e
            .services
            .iter()
            .find(|s| s.deps.is_empty() && s.name != e.gateway)
            .unwrap();
        let err = target(&e, FaultKind::PoolExhaustion, Some(&without.name), 0).unwrap_err();
        assert!(err.contains(&without.name), "{err}");
    }
}
