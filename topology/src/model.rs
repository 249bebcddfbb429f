//! What the graph holds: entities of a fixed set of kinds, relations between them, and when
//! each was seen.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// What an entity is. The names are the API's (`/api/v1/topology?kind=pod`) and the first
/// part of every [`EntityId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Region,
    Zone,
    Host,
    Cluster,
    Namespace,
    Node,
    Workload,
    Pod,
    Container,
    Service,
    Instance,
    Application,
    Database,
    Cache,
    Queue,
    External,
}

impl EntityKind {
    pub const ALL: [EntityKind; 16] = [
        Self::Region,
        Self::Zone,
        Self::Host,
        Self::Cluster,
        Self::Namespace,
        Self::Node,
        Self::Workload,
        Self::Pod,
        Self::Container,
        Self::Service,
        Self::Instance,
        Self::Application,
        Self::Database,
        Self::Cache,
        Self::Queue,
        Self::External,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Region => "region",
            Self::Zone => "zone",
            Self::Host => "host",
            Self::Cluster => "cluster",
            Self::Namespace => "namespace",
            Self::Node => "node",
            Self::Workload => "workload",
            Self::Pod => "pod",
            Self::Container => "container",
            Self::Service => "service",
            Self::Instance => "instance",
            Self::Application => "application",
            Self::Database => "database",
            Self::Cache => "cache",
            Self::Queue => "queue",
            Self::External => "external",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the entity is something a service depends on rather than runs on: a
    /// database, cache, queue or external endpoint.
    pub fn is_dependency(self) -> bool {
        matches!(
            self,
            Self::Database | Self::Cache | Self::Queue | Self::External
        )
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stable entity id: `kind:key`, the key made of the identifying attributes joined with
/// `/` (`pod:prod-a/finance/budget-7c9f-x2`, `service:budget`). The same attributes give the
/// same id in every signal, on every restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntityId(String);

impl EntityId {
    /// The id of the `kind` entity identified by `parts` (empty parts are left out).
    pub fn new<'a>(kind: EntityKind, parts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut id = String::from(kind.as_str());
        id.push(':');
        let mut first = true;
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            if !first {
                id.push('/');
            }
            id.push_str(part);
            first = false;
        }
        EntityId(id)
    }

    /// Parses `kind:key`: the kind must be known and the key not empty.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (kind, key) = s
            .split_once(':')
            .ok_or_else(|| format!("entity id {s:?} is not kind:name"))?;
        if EntityKind::parse(kind).is_none() {
            return Err(format!(
                "unknown entity kind {kind:?} in {s:?} (known: {})",
                EntityKind::ALL.map(EntityKind::as_str).join(", ")
            ));
        }
        if key.is_empty() {
            return Err(format!("entity id {s:?} has no name after the kind"));
        }
        Ok(EntityId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The kind named by the id's prefix.
    pub fn kind(&self) -> Option<EntityKind> {
        EntityKind::parse(self.0.split_once(':')?.0)
    }

    /// The key after `kind:`.
    pub fn key(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, k)| k)
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How two entities are related. Every relation points from the dependent entity to what it
/// needs: an instance `runs_on` a pod, a pod `member_of` a workload, a service `part_of` an
/// application, a service `calls` another, a service `depends_on` a database, a node
/// `located_in` a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationKind {
    RunsOn,
    MemberOf,
    PartOf,
    Calls,
    DependsOn,
    LocatedIn,
}

impl RelationKind {
    pub const ALL: [RelationKind; 6] = [
        Self::RunsOn,
        Self::MemberOf,
        Self::PartOf,
        Self::Calls,
        Self::DependsOn,
        Self::LocatedIn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RunsOn => "runs_on",
            Self::MemberOf => "member_of",
            Self::PartOf => "part_of",
            Self::Calls => "calls",
            Self::DependsOn => "depends_on",
            Self::LocatedIn => "located_in",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for RelationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who answers for an entity: a team or a vendor, and how to reach them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Owner {
    pub name: String,
    pub contact: String,
}

/// Whether an entity carries core business (kept up at the expense of the rest when
/// degrading) or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criticality {
    Core,
    Normal,
}

impl Criticality {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "core" => Some(Self::Core),
            "normal" => Some(Self::Normal),
            _ => None,
        }
    }
}

/// When something was seen: a list of intervals, each from its first observation to its
/// last, ended early when something replaced it (a pod seen on another node). A gap longer
/// than the staleness window starts a new interval, so history keeps the absences.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Presence {
    pub intervals: Vec<Interval>,
}

/// One stretch of presence, in milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    pub first: i64,
    pub last: i64,
    /// Replaced at this time (exclusive): absent from then on even within the staleness
    /// window.
    pub ended: Option<i64>,
}

impl Presence {
    /// Records an observation at `t`: extends the interval it falls in or next to (within
    /// `stale_ms`), else starts a new one. An ended interval is reopened only by an
    /// observation after its end. Returns whether a new interval started.
    pub fn observe(&mut self, t: i64, stale_ms: i64) -> bool {
        for iv in self.intervals.iter_mut().rev() {
            let reach_end = match iv.ended {
                Some(end) => end.min(iv.last.saturating_add(stale_ms)),
                None => iv.last.saturating_add(stale_ms),
            };
            if t >= iv.first.saturating_sub(stale_ms) && t <= reach_end {
                if iv.ended.is_some_and(|end| t >= end) {
                    break;
                }
                iv.first = iv.first.min(t);
                iv.last = iv.last.max(t);
                return false;
            }
        }
        self.intervals.push(Interval {
            first: t,
            last: t,
            ended: None,
        });
        self.intervals.sort_by_key(|iv| iv.first);
        true
    }

    /// Ends the interval running at `t` there (something replaced this at `t`).
    pub fn end_at(&mut self, t: i64) {
        for iv in self.intervals.iter_mut() {
            if iv.first < t && iv.ended.is_none_or(|end| end > t) {
                iv.ended = Some(t);
                iv.last = iv.last.min(t);
            }
        }
    }

    pub fn first_seen(&self) -> Option<i64> {
        self.intervals.iter().map(|iv| iv.first).min()
    }

    pub fn last_seen(&self) -> Option<i64> {
        self.intervals.iter().map(|iv| iv.last).max()
    }

    /// Present at `t`: seen at or before it, not longer than `stale_ms` before, and not
    /// replaced by then.
    pub fn at(&self, t: i64, stale_ms: i64) -> bool {
        self.overlaps(t, t, stale_ms)
    }

    /// Present at some time in `[start, end]`.
    pub fn overlaps(&self, start: i64, end: i64, stale_ms: i64) -> bool {
        self.intervals.iter().any(|iv| {
            let until = match iv.ended {
                Some(e) => e.saturating_sub(1),
                None => iv.last.saturating_add(stale_ms),
            };
            iv.first <= end && until >= start
        })
    }
}

/// An entity: what it is, what it is called, what is known of it and when it was seen.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Entity {
    pub id: EntityId,
    pub kind: Option<EntityKind>,
    /// A short display name (the service name, the pod name).
    pub name: String,
    /// Attributes discovered in telemetry (OpenTelemetry names), latest value each.
    pub attributes: BTreeMap<String, String>,
    /// Time of the newest observation the discovered attributes come from.
    pub attributes_at: i64,
    /// Declared facts (inventory file or API); they win over discovered ones.
    pub declared: Option<Declared>,
    pub presence: Presence,
}

/// What an inventory or the API declares about an entity.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Declared {
    pub name: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub owner: Option<Owner>,
    pub criticality: Option<Criticality>,
    /// Where it was declared: `file:inventory.toml:12` or `api`.
    pub source: String,
}

impl Entity {
    /// The attribute's value, declared first.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.declared
            .as_ref()
            .and_then(|d| d.attributes.get(name))
            .or_else(|| self.attributes.get(name))
            .map(String::as_str)
    }

    /// Discovered attributes overlaid with declared ones.
    pub fn merged_attributes(&self) -> BTreeMap<String, String> {
        let mut out = self.attributes.clone();
        if let Some(d) = &self.declared {
            out.extend(d.attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        out
    }

    pub fn display_name(&self) -> &str {
        self.declared
            .as_ref()
            .and_then(|d| d.name.as_deref())
            .unwrap_or(&self.name)
    }

    pub fn owner(&self) -> Option<&Owner> {
        self.declared.as_ref().and_then(|d| d.owner.as_ref())
    }

    pub fn criticality(&self) -> Option<Criticality> {
        self.declared.as_ref().and_then(|d| d.criticality)
    }
}

/// Request, error and latency figures of a `calls` (or `depends_on`) relation, from the
/// service graph's counters: rates over the last two observations.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CallStats {
    /// Requests per second.
    pub request_rate: f64,
    /// Failed requests as a fraction of all.
    pub error_rate: f64,
    /// Mean server-side latency, seconds (client side when the server is not traced).
    pub latency_seconds: f64,
    /// When these figures were computed (ms).
    pub at: i64,
}

/// A relation between two entities.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Relation {
    pub kind: Option<RelationKind>,
    pub presence: Presence,
    /// Declared (inventory file or API) rather than discovered: `file:…:line` or `api`.
    pub declared: Option<String>,
    pub stats: Option<CallStats>,
}

/// A change recorded on an entity: root cause analysis asks what changed just before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// When (ms).
    pub time: i64,
    pub entity: EntityId,
    /// `version` (a new `service.version`), `revision` (a new workload revision),
    /// `appeared`, `disappeared`, `moved` (runs on something else now), `deploy` (an
    /// external marker), or the name of an attribute that changed.
    pub kind: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_kind_and_identifying_parts() {
        let id = EntityId::new(EntityKind::Pod, ["c1", "", "finance", "budget-1"]);
        assert_eq!(id.as_str(), "pod:c1/finance/budget-1");
        assert_eq!(id.kind(), Some(EntityKind::Pod));
        assert_eq!(id.key(), "c1/finance/budget-1");
        assert!(
            EntityId::parse("servce:x")
                .unwrap_err()
                .contains("unknown entity kind")
        );
        assert!(EntityId::parse("service:").is_err());
        assert!(EntityId::parse("service").is_err());
    }

    #[test]
    fn presence_keeps_gaps_and_replacements() {
        let stale = 100;
        let mut p = Presence::default();
        assert!(p.observe(1_000, stale));
        assert!(!p.observe(1_050, stale));
        assert!(!p.observe(1_120, stale));
        assert!(p.at(1_200, stale));
        assert!(!p.at(1_300, stale));
        assert!(!p.at(900, stale));
        // A long gap starts a new interval.
        assert!(p.observe(5_000, stale));
        assert_eq!(p.intervals.len(), 2);
        assert!(!p.at(3_000, stale));
        // Replaced at 5_010: gone from then on, though within the staleness window.
        p.end_at(5_010);
        assert!(p.at(5_005, stale));
        assert!(!p.at(5_010, stale));
        // A late observation before the end still counts; one after reopens.
        assert!(!p.observe(5_008, stale));
        assert!(p.observe(6_000, stale));
        assert!(p.at(6_050, stale));
        assert_eq!(p.first_seen(), Some(1_000));
        assert_eq!(p.last_seen(), Some(6_000));
    }
}
