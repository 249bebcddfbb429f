//! One tenant's graph: entities and relations in a `petgraph` `StableGraph`, applied from
//! facts, read as of a time or over a window.
//!
//! `StableGraph` because entities are never renumbered: indices stay valid in the id map and
//! the edge map as the graph grows, and nothing is removed (history stays; entities that stop
//! reporting only stop being *live*).

use std::collections::{HashMap, HashSet, VecDeque};

use petgraph::Direction;
use petgraph::stable_graph::{EdgeIndex, NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use serde::{Deserialize, Serialize};

use crate::facts::Fact;
use crate::identity::is_exclusive;
use crate::model::{
    CallStats, ChangeEvent, Entity, EntityId, EntityKind, Owner, Relation, RelationKind,
};

/// Attribute changes recorded as events, and the event kind each becomes.
const TRACKED_ATTRIBUTES: [(&str, &str); 4] = [
    ("service.version", "version"),
    ("k8s.replicaset.name", "revision"),
    ("container.image.tag", "image"),
    ("container.image.name", "image"),
];

/// Entity kinds whose appearing is recorded as an event (a new pod, instance, node…; not
/// every zone and container).
const APPEARANCES: [EntityKind; 6] = [
    EntityKind::Service,
    EntityKind::Instance,
    EntityKind::Pod,
    EntityKind::Workload,
    EntityKind::Node,
    EntityKind::Host,
];

/// A time window in milliseconds, both ends included; a point in time is a window of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

impl Window {
    pub fn at(t: i64) -> Self {
        Window { start: t, end: t }
    }
}

/// The last cumulative counters of a service-graph edge, to turn the next into rates.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CallCounters {
    /// Sample time (ms).
    pub time: i64,
    pub requests: f64,
    pub failed: f64,
    pub latency_sum: f64,
    pub latency_count: f64,
}

/// One tenant's topology.
#[derive(Debug, Clone)]
pub struct Graph {
    g: StableDiGraph<Entity, Relation>,
    ids: HashMap<EntityId, NodeIndex>,
    edges: HashMap<(NodeIndex, NodeIndex, RelationKind), EdgeIndex>,
    events: VecDeque<ChangeEvent>,
    /// The last counters of each service-graph edge, whether or not its relation exists yet.
    counters: HashMap<(EntityId, EntityId, RelationKind), CallCounters>,
    stale_ms: i64,
    max_events: usize,
}

/// The graph as stored in a snapshot.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    entities: Vec<Entity>,
    relations: Vec<(u32, u32, Relation)>,
    events: Vec<ChangeEvent>,
}

impl Graph {
    /// An empty graph: entities not seen for `stale_ms` are no longer live; at most
    /// `max_events` change events are kept (the oldest go first).
    pub fn new(stale_ms: i64, max_events: usize) -> Self {
        Graph {
            g: StableDiGraph::default(),
            ids: HashMap::new(),
            edges: HashMap::new(),
            events: VecDeque::new(),
            counters: HashMap::new(),
            stale_ms,
            max_events,
        }
    }

    pub fn stale_ms(&self) -> i64 {
        self.stale_ms
    }

    pub fn entity_count(&self) -> usize {
        self.g.node_count()
    }

    pub fn relation_count(&self) -> usize {
        self.g.edge_count()
    }

    pub fn event_count(&self) -> usize {
        self.events.len()
    }

    pub fn entity(&self, id: &EntityId) -> Option<&Entity> {
        self.ids.get(id).map(|&ix| &self.g[ix])
    }

    /// Applies one fact. Idempotent: applying it again changes nothing.
    pub fn apply(&mut self, fact: &Fact) {
        match fact {
            Fact::Seen {
                id,
                name,
                attributes,
                time,
            } => self.seen(id, name, attributes, *time),
            Fact::Related {
                from,
                to,
                kind,
                time,
            } => self.related(from, to, *kind, *time),
            Fact::Declare { id, declared } => {
                let ix = self.node(id);
                self.g[ix].declared = Some(declared.clone());
            }
            Fact::DeclareRelation {
                from,
                to,
                kind,
                source,
            } => {
                let e = self.edge(from, to, *kind);
                self.g[e].declared = Some(source.clone());
            }
            Fact::Undeclare { id } => {
                if let Some(&ix) = self.ids.get(id) {
                    self.g[ix].declared = None;
                }
            }
            Fact::UndeclareRelation { from, to, kind } => {
                if let (Some(&a), Some(&b)) = (self.ids.get(from), self.ids.get(to))
                    && let Some(&e) = self.edges.get(&(a, b, *kind))
                {
                    self.g[e].declared = None;
                }
            }
            Fact::Event(event) => {
                self.node(&event.entity);
                if !self.events.contains(event) {
                    self.push_event(event.clone());
                }
            }
        }
    }

    fn push_event(&mut self, event: ChangeEvent) {
        if self.events.len() >= self.max_events {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// The node for `id`, made (unseen, without attributes) if new.
    fn node(&mut self, id: &EntityId) -> NodeIndex {
        if let Some(&ix) = self.ids.get(id) {
            return ix;
        }
        let ix = self.g.add_node(Entity {
            id: id.clone(),
            kind: id.kind(),
            name: id.key().rsplit('/').next().unwrap_or_default().to_string(),
            ..Entity::default()
        });
        self.ids.insert(id.clone(), ix);
        ix
    }

    fn edge(&mut self, from: &EntityId, to: &EntityId, kind: RelationKind) -> EdgeIndex {
        let (a, b) = (self.node(from), self.node(to));
        if let Some(&e) = self.edges.get(&(a, b, kind)) {
            return e;
        }
        let e = self.g.add_edge(
            a,
            b,
            Relation {
                kind: Some(kind),
                ..Relation::default()
            },
        );
        self.edges.insert((a, b, kind), e);
        e
    }

    fn seen(&mut self, id: &EntityId, name: &str, attributes: &[(String, String)], t: i64) {
        let ix = self.node(id);
        let stale = self.stale_ms;
        let mut events = Vec::new();
        let entity = &mut self.g[ix];
        if !name.is_empty() {
            entity.name = name.to_string();
        }
        let was_seen = !entity.presence.intervals.is_empty();
        let new_interval = entity.presence.observe(t, stale);
        if new_interval
            && entity.kind.is_some_and(|k| APPEARANCES.contains(&k))
            && (!was_seen || entity.presence.last_seen() == Some(t))
        {
            events.push(ChangeEvent {
                time: t,
                entity: id.clone(),
                kind: "appeared".into(),
                from: None,
                to: None,
                detail: String::new(),
            });
        }
        let newest = t >= entity.attributes_at;
        for (k, v) in attributes {
            match entity.attributes.get(k) {
                Some(old) if old == v => {}
                Some(old) if newest => {
                    if let Some((_, kind)) = TRACKED_ATTRIBUTES.iter().find(|(a, _)| a == k) {
                        events.push(ChangeEvent {
                            time: t,
                            entity: id.clone(),
                            kind: kind.to_string(),
                            from: Some(old.clone()),
                            to: Some(v.clone()),
                            detail: k.clone(),
                        });
                    }
                    entity.attributes.insert(k.clone(), v.clone());
                }
                Some(_) => {}
                None => {
                    entity.attributes.insert(k.clone(), v.clone());
                }
            }
        }
        if newest {
            entity.attributes_at = t;
        }
        for e in events {
            self.push_event(e);
        }
    }

    fn related(&mut self, from: &EntityId, to: &EntityId, kind: RelationKind, t: i64) {
        let e = self.edge(from, to, kind);
        let stale = self.stale_ms;
        let was_live = self.g[e].presence.at(t, stale);
        let new_interval = self.g[e].presence.observe(t, stale);
        if !(is_exclusive(kind) && new_interval && !was_live) {
            return;
        }
        // A new exclusive relation replaces the one live at `t` (the pod moved nodes).
        let a = self.ids[from];
        let b = self.ids[to];
        let replaced: Vec<EdgeIndex> = self
            .g
            .edges_directed(a, Direction::Outgoing)
            .filter(|r| {
                r.target() != b
                    && r.weight().kind == Some(kind)
                    && r.weight().declared.is_none()
                    && r.weight().presence.at(t, stale)
                    && r.weight().presence.first_seen().is_some_and(|f| f < t)
            })
            .map(|r| r.id())
            .collect();
        for old in replaced {
            let target = self.g.edge_endpoints(old).map(|(_, t)| t).expect("edge");
            self.g[old].presence.end_at(t);
            let event = ChangeEvent {
                time: t,
                entity: from.clone(),
                kind: "moved".into(),
                from: Some(self.g[target].id.to_string()),
                to: Some(to.to_string()),
                detail: kind.as_str().into(),
            };
            self.push_event(event);
        }
    }

    /// Feeds one observation of a service-graph edge's cumulative counters: the rates since
    /// the previous observation become the relation's [`CallStats`]. `None` when the
    /// relation does not exist (yet).
    pub fn record_calls(
        &mut self,
        from: &EntityId,
        to: &EntityId,
        kind: RelationKind,
        now: CallCounters,
    ) -> Option<()> {
        let prev = self.counters.insert((from.clone(), to.clone(), kind), now);
        let a = *self.ids.get(from)?;
        let b = *self.ids.get(to)?;
        let e = *self.edges.get(&(a, b, kind))?;
        if let Some(prev) = prev.filter(|p| now.time > p.time && now.requests >= p.requests) {
            let dt = (now.time - prev.time) as f64 / 1000.0;
            let requests = now.requests - prev.requests;
            let count = now.latency_count - prev.latency_count;
            self.g[e].stats = Some(CallStats {
                request_rate: requests / dt,
                error_rate: if requests > 0.0 {
                    ((now.failed - prev.failed) / requests).clamp(0.0, 1.0)
                } else {
                    0.0
                },
                latency_seconds: if count > 0.0 {
                    (now.latency_sum - prev.latency_sum) / count
                } else {
                    0.0
                },
                at: now.time,
            });
        }
        Some(())
    }

    /// The target of `from`'s `depends_on` relation to an entity named `name`.
    pub fn dependency_named(&self, from: &EntityId, name: &str) -> Option<EntityId> {
        let a = *self.ids.get(from)?;
        self.g
            .edges_directed(a, Direction::Outgoing)
            .filter(|r| r.weight().kind == Some(RelationKind::DependsOn))
            .map(|r| &self.g[r.target()])
            .find(|t| t.name == name || t.display_name() == name)
            .map(|t| t.id.clone())
    }

    // ---- reading ----------------------------------------------------------------------

    /// Whether the entity exists in `w`: declared, or seen then.
    pub fn entity_in(&self, e: &Entity, w: Window) -> bool {
        e.declared.is_some() || e.presence.overlaps(w.start, w.end, self.stale_ms)
    }

    fn node_in(&self, ix: NodeIndex, w: Window) -> bool {
        self.entity_in(&self.g[ix], w)
    }

    fn edge_in(&self, e: EdgeIndex, w: Window) -> bool {
        let r = &self.g[e];
        let (a, b) = self.g.edge_endpoints(e).expect("edge");
        (r.declared.is_some() || r.presence.overlaps(w.start, w.end, self.stale_ms))
            && self.node_in(a, w)
            && self.node_in(b, w)
    }

    /// Live: seen within the staleness window before `now`, or declared.
    pub fn is_live(&self, e: &Entity, now: i64) -> bool {
        self.entity_in(e, Window::at(now))
    }

    /// Every entity of the window.
    pub fn entities_in(&self, w: Window) -> impl Iterator<Item = &Entity> + '_ {
        self.g
            .node_indices()
            .filter(move |&ix| self.node_in(ix, w))
            .map(|ix| &self.g[ix])
    }

    /// Every relation of the window, with its endpoints.
    pub fn relations_in(
        &self,
        w: Window,
    ) -> impl Iterator<Item = (&EntityId, &EntityId, &Relation)> + '_ {
        self.g
            .edge_indices()
            .filter(move |&e| self.edge_in(e, w))
            .map(|e| {
                let (a, b) = self.g.edge_endpoints(e).expect("edge");
                (&self.g[a].id, &self.g[b].id, &self.g[e])
            })
    }

    /// Entities reached from `id` (inclusive) by `step`, breadth first, with their depth
    /// and the relations walked; at most `max_depth` steps.
    fn walk(
        &self,
        id: &EntityId,
        w: Window,
        max_depth: usize,
        step: impl Fn(&Entity, NodeIndex) -> Vec<(EdgeIndex, NodeIndex)>,
    ) -> Option<Reached> {
        let start = *self.ids.get(id)?;
        if !self.node_in(start, w) {
            return None;
        }
        let mut reached = Reached::default();
        let mut seen = HashSet::from([start]);
        let mut edges_seen = HashSet::new();
        let mut queue = VecDeque::from([(start, 0usize)]);
        while let Some((ix, depth)) = queue.pop_front() {
            reached.entities.push((ix, depth));
            if depth >= max_depth {
                continue;
            }
            for (e, next) in step(&self.g[ix], ix) {
                if !self.edge_in(e, w) {
                    continue;
                }
                if edges_seen.insert(e) {
                    reached.relations.push(e);
                }
                if seen.insert(next) {
                    queue.push_back((next, depth + 1));
                }
            }
        }
        Some(reached)
    }

    fn out_edges(&self, ix: NodeIndex, kinds: &[RelationKind]) -> Vec<(EdgeIndex, NodeIndex)> {
        self.g
            .edges_directed(ix, Direction::Outgoing)
            .filter(|r| r.weight().kind.is_some_and(|k| kinds.contains(&k)))
            .map(|r| (r.id(), r.target()))
            .collect()
    }

    fn in_edges(&self, ix: NodeIndex, kinds: &[RelationKind]) -> Vec<(EdgeIndex, NodeIndex)> {
        self.g
            .edges_directed(ix, Direction::Incoming)
            .filter(|r| r.weight().kind.is_some_and(|k| kinds.contains(&k)))
            .map(|r| (r.id(), r.source()))
            .collect()
    }

    /// Everything under `id`: an application's services; a service's instances and the
    /// databases, caches and queues it depends on; down `runs_on` and `located_in` to the
    /// region.
    pub fn stack(&self, id: &EntityId, w: Window) -> Option<Reached> {
        use RelationKind::*;
        self.walk(id, w, 32, |e, ix| {
            let mut next = self.out_edges(ix, &[RunsOn, LocatedIn, DependsOn]);
            match e.kind {
                Some(EntityKind::Container) => next.extend(self.out_edges(ix, &[PartOf])),
                Some(EntityKind::Service | EntityKind::Workload) => {
                    next.extend(self.in_edges(ix, &[MemberOf]))
                }
                Some(EntityKind::Application) => next.extend(self.in_edges(ix, &[PartOf])),
                _ => {}
            }
            next
        })
    }

    /// Everything that depends on `id`: up `runs_on` and `located_in` (what runs there), up
    /// the call graph (callers) and `depends_on`, from instances and pods to their services
    /// and workloads, from services to their applications.
    pub fn impact(&self, id: &EntityId, w: Window) -> Option<Reached> {
        use RelationKind::*;
        self.walk(id, w, 64, |e, ix| {
            let mut next = self.in_edges(ix, &[RunsOn, LocatedIn, DependsOn, Calls]);
            match e.kind {
                Some(EntityKind::Instance) => next.extend(self.out_edges(ix, &[MemberOf])),
                Some(EntityKind::Pod) => {
                    // Its workload, not its namespace.
                    next.extend(
                        self.out_edges(ix, &[MemberOf])
                            .into_iter()
                            .filter(|&(_, t)| self.g[t].kind == Some(EntityKind::Workload)),
                    );
                    next.extend(self.in_edges(ix, &[PartOf]));
                }
                Some(EntityKind::Service) => next.extend(self.out_edges(ix, &[PartOf])),
                _ => {}
            }
            next
        })
    }

    /// Entities within `hops` relations of `id`, either direction.
    pub fn around(&self, id: &EntityId, hops: usize, w: Window) -> Option<Reached> {
        self.walk(id, w, hops, |_, ix| self.both_edges(ix))
    }

    /// The entities within `hops` of `id` through what can carry a fault from one to
    /// another — calls, dependencies, what runs on what, the members of a service or a
    /// workload — either way; not through `part_of`, `located_in` or membership of a
    /// namespace or cluster, which would make every service of an application, everything
    /// in a zone or every node of a cluster neighbours. An instance and the container or
    /// pod it runs in are one running process seen from the service's side and the
    /// platform's: the step between them is free (a service's alert and its node's are
    /// then two hops apart, service → instance → node, as they are where nothing
    /// declares pods). Empty when `id` is unknown.
    pub fn near(&self, id: &EntityId, hops: usize, w: Window) -> HashSet<EntityId> {
        use RelationKind::*;
        let kinds = [Calls, DependsOn, RunsOn, MemberOf];
        let carries = |(e, _): &(EdgeIndex, NodeIndex)| {
            let r = &self.g[*e];
            let (_, to) = self.g.edge_endpoints(*e).expect("edge");
            r.kind != Some(MemberOf)
                || matches!(
                    self.g[to].kind,
                    Some(EntityKind::Service | EntityKind::Workload)
                )
        };
        let process = |ix: NodeIndex| {
            matches!(
                self.g[ix].kind,
                Some(EntityKind::Instance | EntityKind::Container | EntityKind::Pod)
            )
        };
        let Some(&start) = self.ids.get(id) else {
            return HashSet::new();
        };
        if !self.node_in(start, w) {
            return HashSet::new();
        }
        // Breadth first with free steps (0-1 BFS: a free step goes to the front).
        let mut best: HashMap<NodeIndex, usize> = HashMap::from([(start, 0)]);
        let mut queue = VecDeque::from([(start, 0usize)]);
        while let Some((ix, depth)) = queue.pop_front() {
            if best.get(&ix).is_some_and(|&b| b < depth) {
                continue;
            }
            let mut next = self.out_edges(ix, &kinds);
            next.extend(self.in_edges(ix, &kinds));
            next.retain(carries);
            for (e, to) in next {
                if !self.edge_in(e, w) {
                    continue;
                }
                let free = process(ix) && process(to) && self.g[e].kind == Some(RunsOn);
                let d = depth + usize::from(!free);
                if d > hops || best.get(&to).is_some_and(|&b| b <= d) {
                    continue;
                }
                best.insert(to, d);
                if free {
                    queue.push_front((to, d));
                } else {
                    queue.push_back((to, d));
                }
            }
        }
        best.into_keys().map(|ix| self.g[ix].id.clone()).collect()
    }

    fn both_edges(&self, ix: NodeIndex) -> Vec<(EdgeIndex, NodeIndex)> {
        let mut next: Vec<_> = self
            .g
            .edges_directed(ix, Direction::Outgoing)
            .map(|r| (r.id(), r.target()))
            .collect();
        next.extend(
            self.g
                .edges_directed(ix, Direction::Incoming)
                .map(|r| (r.id(), r.source())),
        );
        next
    }

    /// A shortest chain of relations between two entities, either direction: the entities
    /// in order and the relations between them.
    pub fn path(&self, from: &EntityId, to: &EntityId, w: Window) -> Option<Reached> {
        let start = *self.ids.get(from)?;
        let goal = *self.ids.get(to)?;
        if !self.node_in(start, w) || !self.node_in(goal, w) {
            return None;
        }
        let mut back: HashMap<NodeIndex, (NodeIndex, EdgeIndex)> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        let mut seen = HashSet::from([start]);
        while let Some(ix) = queue.pop_front() {
            if ix == goal {
                let mut reached = Reached::default();
                let mut cur = goal;
                let mut chain = vec![goal];
                while let Some(&(prev, e)) = back.get(&cur) {
                    reached.relations.push(e);
                    chain.push(prev);
                    cur = prev;
                }
                chain.reverse();
                reached.relations.reverse();
                reached.entities = chain.into_iter().enumerate().map(|(i, n)| (n, i)).collect();
                return Some(reached);
            }
            for (e, next) in self.both_edges(ix) {
                if self.edge_in(e, w) && seen.insert(next) {
                    back.insert(next, (ix, e));
                    queue.push_back(next);
                }
            }
        }
        None
    }

    /// The owner answering for an entity: its own declared owner, else the first one up its
    /// `member_of` / `part_of` chain (an instance's service's, a service's application's),
    /// with the entity it comes from.
    pub fn owner_of(&self, id: &EntityId) -> Option<(&Owner, &EntityId)> {
        let mut ix = *self.ids.get(id)?;
        for _ in 0..8 {
            let e = &self.g[ix];
            if let Some(owner) = e.owner() {
                return Some((owner, &e.id));
            }
            ix = self
                .g
                .edges_directed(ix, Direction::Outgoing)
                .find(|r| {
                    matches!(
                        r.weight().kind,
                        Some(RelationKind::MemberOf | RelationKind::PartOf)
                    )
                })?
                .target();
        }
        None
    }

    /// Change events in `w` (recorded, and entities that stopped reporting in it, as of
    /// `now`), oldest first.
    pub fn changes(&self, w: Window, now: i64) -> Vec<ChangeEvent> {
        let mut out: Vec<ChangeEvent> = self
            .events
            .iter()
            .filter(|e| e.time >= w.start && e.time <= w.end)
            .cloned()
            .collect();
        for e in self.g.node_weights() {
            if !e.kind.is_some_and(|k| APPEARANCES.contains(&k)) || e.declared.is_some() {
                continue;
            }
            for iv in &e.presence.intervals {
                // Gone when the staleness window after its last report has passed.
                let gone = iv.ended.unwrap_or(iv.last + self.stale_ms);
                if gone >= w.start && gone <= w.end && gone <= now {
                    out.push(ChangeEvent {
                        time: gone,
                        entity: e.id.clone(),
                        kind: "disappeared".into(),
                        from: None,
                        to: None,
                        detail: format!("last seen at {}", iv.last),
                    });
                }
            }
        }
        out.sort_by(|a, b| (a.time, &a.entity).cmp(&(b.time, &b.entity)));
        out
    }

    /// Every relation, whenever seen.
    pub fn all_relations(&self) -> impl Iterator<Item = (&EntityId, &EntityId, &Relation)> + '_ {
        self.g.edge_indices().map(|e| self.ix_relation(e))
    }

    /// Every entity, whenever seen.
    pub fn all_entities(&self) -> impl Iterator<Item = &Entity> + '_ {
        self.g.node_weights()
    }

    /// Forgets entities (and their relations) last seen before `horizon` and never
    /// declared, and events before it. Returns how many entities went.
    pub fn forget_before(&mut self, horizon: i64) -> usize {
        let old: Vec<NodeIndex> = self
            .g
            .node_indices()
            .filter(|&ix| {
                let e = &self.g[ix];
                e.declared.is_none() && e.presence.last_seen().is_some_and(|l| l < horizon)
            })
            .collect();
        for &ix in &old {
            let edges: Vec<(EdgeIndex, NodeIndex, NodeIndex)> = self
                .g
                .edges_directed(ix, Direction::Outgoing)
                .chain(self.g.edges_directed(ix, Direction::Incoming))
                .map(|r| (r.id(), r.source(), r.target()))
                .collect();
            for (e, a, b) in edges {
                if let Some(kind) = self.g[e].kind {
                    self.edges.remove(&(a, b, kind));
                    let key = (self.g[a].id.clone(), self.g[b].id.clone(), kind);
                    self.counters.remove(&key);
                }
            }
            let entity = self.g.remove_node(ix).expect("node");
            self.ids.remove(&entity.id);
        }
        while self.events.front().is_some_and(|e| e.time < horizon) {
            self.events.pop_front();
        }
        old.len()
    }

    pub fn ix_entity(&self, ix: NodeIndex) -> &Entity {
        &self.g[ix]
    }

    pub fn ix_relation(&self, e: EdgeIndex) -> (&EntityId, &EntityId, &Relation) {
        let (a, b) = self.g.edge_endpoints(e).expect("edge");
        (&self.g[a].id, &self.g[b].id, &self.g[e])
    }

    /// The entities related to `id` by `kind`, outgoing (`true`) or incoming.
    pub fn neighbours(
        &self,
        id: &EntityId,
        kind: RelationKind,
        outgoing: bool,
    ) -> impl Iterator<Item = &Entity> + '_ {
        let ix = self.ids.get(id).copied();
        let dir = if outgoing {
            Direction::Outgoing
        } else {
            Direction::Incoming
        };
        ix.into_iter().flat_map(move |ix| {
            self.g
                .edges_directed(ix, dir)
                .filter(move |r| r.weight().kind == Some(kind))
                .map(move |r| {
                    let other = if outgoing { r.target() } else { r.source() };
                    &self.g[other]
                })
        })
    }

    // ---- snapshots --------------------------------------------------------------------

    /// The graph as bytes (postcard).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Node indices are renumbered densely in the snapshot.
        let mut dense = HashMap::with_capacity(self.g.node_count());
        let mut entities = Vec::with_capacity(self.g.node_count());
        for ix in self.g.node_indices() {
            dense.insert(ix, entities.len() as u32);
            entities.push(self.g[ix].clone());
        }
        let relations = self
            .g
            .edge_indices()
            .map(|e| {
                let (a, b) = self.g.edge_endpoints(e).expect("edge");
                (dense[&a], dense[&b], self.g[e].clone())
            })
            .collect();
        let stored = Stored {
            entities,
            relations,
            events: self.events.iter().cloned().collect(),
        };
        postcard::to_allocvec(&stored).expect("graph serialises")
    }

    /// A graph from [`Graph::to_bytes`].
    pub fn from_bytes(bytes: &[u8], stale_ms: i64, max_events: usize) -> Result<Self, String> {
        let stored: Stored = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
        let mut graph = Graph::new(stale_ms, max_events);
        let mut nodes = Vec::with_capacity(stored.entities.len());
        for entity in stored.entities {
            let id = entity.id.clone();
            let ix = graph.g.add_node(entity);
            graph.ids.insert(id, ix);
            nodes.push(ix);
        }
        for (a, b, relation) in stored.relations {
            let (Some(&a), Some(&b)) = (nodes.get(a as usize), nodes.get(b as usize)) else {
                return Err("relation to a missing entity".into());
            };
            let Some(kind) = relation.kind else {
                return Err("relation without a kind".into());
            };
            let e = graph.g.add_edge(a, b, relation);
            graph.edges.insert((a, b, kind), e);
        }
        graph.events = stored.events.into();
        Ok(graph)
    }
}

/// The result of a walk: entities (with their distance from the start) and relations.
#[derive(Debug, Default, Clone)]
pub struct Reached {
    pub entities: Vec<(NodeIndex, usize)>,
    pub relations: Vec<EdgeIndex>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::from_resource;

    fn id(s: &str) -> EntityId {
        EntityId::parse(s).unwrap()
    }

    fn observe(g: &mut Graph, pairs: &[(&str, &str)], t: i64) {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        let view = from_resource(|k| map.get(k).copied());
        for e in view.entities {
            g.apply(&Fact::Seen {
                id: e.id,
                name: e.name,
                attributes: e.attributes,
                time: t,
            });
        }
        for r in view.relations {
            g.apply(&Fact::Related {
                from: r.from,
                to: r.to,
                kind: r.kind,
                time: t,
            });
        }
    }

    fn pod_on(node: &str, version: &str) -> Vec<(&'static str, String)> {
        vec![
            ("service.name", "budget".into()),
            ("service.version", version.into()),
            ("k8s.cluster.name", "prod".into()),
            ("k8s.namespace.name", "fin".into()),
            ("k8s.pod.name", "budget-1".into()),
            ("k8s.node.name", node.into()),
            ("cloud.availability_zone", format!("zone-{node}")),
        ]
    }

    fn observe_owned(g: &mut Graph, pairs: &[(&'static str, String)], t: i64) {
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        observe(g, &refs, t);
    }

    fn names(g: &Graph, r: &Reached) -> Vec<String> {
        let mut v: Vec<String> = r
            .entities
            .iter()
            .map(|(ix, _)| g.ix_entity(*ix).id.to_string())
            .collect();
        v.sort();
        v
    }

    /// A service's node is two hops away, service → instance → node: the instance and its
    /// pod are one process.
    #[test]
    fn near_steps_from_an_instance_to_its_pod_for_free() {
        let mut g = Graph::new(60_000, 1000);
        let mut pairs = pod_on("a", "1");
        pairs.push(("service.instance.id", "budget-1".into()));
        observe_owned(&mut g, &pairs, 0);
        let w = Window::at(0);
        let near = |hops| {
            let mut v: Vec<String> = g
                .near(&id("service:budget"), hops, w)
                .iter()
                .map(|x| x.to_string())
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            near(1),
            [
                "instance:budget/budget-1",
                "pod:prod/fin/budget-1",
                "service:budget"
            ]
        );
        assert!(
            near(2).contains(&"node:prod/a".to_string()),
            "{:?}",
            near(2)
        );
        assert!(
            !near(2).iter().any(|x| x.starts_with("zone:")),
            "{:?}",
            near(2)
        );
        assert!(g.near(&id("service:nothing"), 2, w).is_empty());
    }

    #[test]
    fn a_pod_that_moved_is_on_the_old_node_before_and_the_new_one_after() {
        let mut g = Graph::new(60_000, 1000);
        for t in (0..300_000).step_by(15_000) {
            observe_owned(&mut g, &pod_on("a", "1"), t);
        }
        for t in (300_000..600_000).step_by(15_000) {
            observe_owned(&mut g, &pod_on("b", "1"), t);
        }
        let pod = id("pod:prod/fin/budget-1");
        let on = |t| {
            let s = g.stack(&pod, Window::at(t)).unwrap();
            names(&g, &s)
                .into_iter()
                .filter(|n| n.starts_with("node:"))
                .collect::<Vec<_>>()
        };
        assert_eq!(on(200_000), ["node:prod/a"]);
        assert_eq!(on(299_000), ["node:prod/a"]);
        assert_eq!(on(300_000), ["node:prod/b"]);
        assert_eq!(on(500_000), ["node:prod/b"]);
        let changes = g.changes(
            Window {
                start: 0,
                end: 600_000,
            },
            600_000,
        );
        let moved: Vec<_> = changes.iter().filter(|c| c.kind == "moved").collect();
        assert_eq!(moved.len(), 1, "{changes:?}");
        assert_eq!(moved[0].time, 300_000);
        assert_eq!(moved[0].from.as_deref(), Some("node:prod/a"));
        // The old node, no longer reporting, disappears a staleness window after its last
        // report.
        assert!(
            changes
                .iter()
                .any(|c| c.kind == "disappeared" && c.entity == id("node:prod/a")),
            "{changes:?}"
        );
    }

    #[test]
    fn a_version_bump_is_an_event_and_replays_change_nothing() {
        let mut g = Graph::new(60_000, 1000);
        observe_owned(&mut g, &pod_on("a", "1.0"), 1_000);
        observe_owned(&mut g, &pod_on("a", "1.1"), 2_000);
        // Late data from before the bump does not turn the version back.
        observe_owned(&mut g, &pod_on("a", "1.0"), 1_500);
        let before = g.to_bytes();
        observe_owned(&mut g, &pod_on("a", "1.1"), 2_000);
        assert_eq!(g.to_bytes(), before);
        let versions: Vec<_> = g
            .changes(
                Window {
                    start: 0,
                    end: 10_000,
                },
                10_000,
            )
            .into_iter()
            .filter(|c| c.kind == "version")
            .collect();
        assert_eq!(versions.len(), 1);
        assert_eq!(versions[0].time, 2_000);
        assert_eq!(versions[0].entity, id("instance:budget/budget-1"));
        assert_eq!(
            (versions[0].from.as_deref(), versions[0].to.as_deref()),
            (Some("1.0"), Some("1.1"))
        );
        let restored = Graph::from_bytes(&before, 60_000, 1000).unwrap();
        assert_eq!(restored.to_bytes(), before);
    }

    #[test]
    fn stack_and_impact_walk_opposite_ways() {
        let mut g = Graph::new(60_000, 1000);
        observe_owned(&mut g, &pod_on("a", "1"), 1_000);
        g.apply(&Fact::Related {
            from: id("service:gateway"),
            to: id("service:budget"),
            kind: RelationKind::Calls,
            time: 1_000,
        });
        g.apply(&Fact::Seen {
            id: id("service:gateway"),
            name: "gateway".into(),
            attributes: vec![],
            time: 1_000,
        });
        let w = Window::at(1_000);
        let stack = g.stack(&id("service:budget"), w).unwrap();
        assert_eq!(
            names(&g, &stack),
            [
                "instance:budget/budget-1",
                "node:prod/a",
                "pod:prod/fin/budget-1",
                "service:budget",
                "zone:zone-a"
            ]
        );
        let impact = g.impact(&id("node:prod/a"), w).unwrap();
        assert_eq!(
            names(&g, &impact),
            [
                "instance:budget/budget-1",
                "node:prod/a",
                "pod:prod/fin/budget-1",
                "service:budget",
                "service:gateway",
            ]
        );
        let path = g
            .path(&id("service:gateway"), &id("zone:zone-a"), w)
            .unwrap();
        assert_eq!(path.entities.len(), 6);
        assert_eq!(path.relations.len(), 5);
    }
}
