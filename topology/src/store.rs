//! [`Topology`]: every tenant's graph, fed from the topology WAL as a [`Sink`], kept across
//! restarts in a snapshot.
//!
//! The durable path is the one every signal takes (`sightline-ingest`): facts go through the
//! WAL writer (group commit) and are acknowledged once in the WAL; the sink runner applies
//! them here and commits now and then, which writes the snapshot
//! (`<data>/topology/graph.snapshot`, written aside, fsynced, renamed) with the highest WAL
//! sequence it holds. The WAL is truncated below that; on start, the snapshot is loaded and
//! the WAL replayed after it. Facts are idempotent, so a rollback has nothing to undo: the
//! runner appends the uncommitted batches again and they change nothing twice.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sightline_ingest::Sink;
use sightline_model::TenantId;

use crate::facts::{Fact, FactBatch};
use crate::graph::{CallCounters, Graph};
use crate::model::{Entity, EntityId, RelationKind};

/// How the topology keeps time and memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyConfig {
    /// An entity or relation not seen for this long is no longer live (it stays in history).
    pub stale_after: Duration,
    /// An observation repeating a fact is written again only this long after the last one:
    /// the resolution of last-seen times in the WAL (and so after a crash).
    pub resolution: Duration,
    /// Entities (all tenants) beyond which new ones are refused (counted in `/metrics`).
    pub max_entities: usize,
    /// Change events kept per tenant (the oldest go first).
    pub max_events: usize,
    /// Entities not seen for this long (and not declared) are forgotten.
    pub retention: Duration,
}

impl Default for TopologyConfig {
    fn default() -> Self {
        Self {
            stale_after: Duration::from_secs(10 * 60),
            resolution: Duration::from_secs(60),
            max_entities: 2_000_000,
            max_events: 100_000,
            retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Errors of the topology store.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("cannot write the topology snapshot {path}: {source}")]
    Snapshot {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the topology snapshot {path}: {reason}")]
    Load { path: PathBuf, reason: String },
}

/// The snapshot file's content.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    /// Every WAL record up to here is in it.
    seq: u64,
    tenants: Vec<(String, Vec<u8>)>,
}

/// Sizes for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopologyStats {
    pub tenants: usize,
    pub entities: usize,
    pub relations: usize,
    pub events: usize,
    /// Estimated heap bytes of the graphs.
    pub bytes: usize,
}

/// Every tenant's topology.
pub struct Topology {
    config: TopologyConfig,
    dir: PathBuf,
    tenants: RwLock<HashMap<TenantId, Arc<RwLock<Graph>>>>,
    /// Highest WAL sequence in the snapshot: replay skips up to here.
    snapshot_seq: AtomicU64,
    /// Highest WAL sequence applied.
    applied_seq: AtomicU64,
    dirty: AtomicBool,
    /// Serialises snapshot writes.
    writing: Mutex<()>,
    refused_entities: AtomicU64,
}

impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topology")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

const SNAPSHOT: &str = "graph.snapshot";

impl Topology {
    /// Opens the topology under `dir` (`<data>/topology`), loading its snapshot if any.
    pub fn open(dir: &Path, config: TopologyConfig) -> Result<Self, TopologyError> {
        let path = dir.join(SNAPSHOT);
        let stale = config.stale_after.as_millis() as i64;
        let mut tenants = HashMap::new();
        let mut seq = 0;
        match fs::read(&path) {
            Ok(bytes) => {
                let load_err = |reason: String| TopologyError::Load {
                    path: path.clone(),
                    reason,
                };
                let snap: Snapshot =
                    postcard::from_bytes(&bytes).map_err(|e| load_err(e.to_string()))?;
                for (tenant, graph) in snap.tenants {
                    let tenant = TenantId::new(tenant).map_err(|e| load_err(e.to_string()))?;
                    let graph = Graph::from_bytes(&graph, stale, config.max_events)
                        .map_err(|e| load_err(format!("tenant {tenant}: {e}")))?;
                    tenants.insert(tenant, Arc::new(RwLock::new(graph)));
                }
                seq = snap.seq;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(TopologyError::Load {
                    path,
                    reason: e.to_string(),
                });
            }
        }
        Ok(Topology {
            config,
            dir: dir.to_path_buf(),
            tenants: RwLock::new(tenants),
            snapshot_seq: AtomicU64::new(seq),
            applied_seq: AtomicU64::new(seq),
            dirty: AtomicBool::new(false),
            writing: Mutex::new(()),
            refused_entities: AtomicU64::new(0),
        })
    }

    pub fn config(&self) -> &TopologyConfig {
        &self.config
    }

    /// The tenant's graph (an empty one if it has none yet).
    pub fn graph(&self, tenant: &TenantId) -> Arc<RwLock<Graph>> {
        if let Some(g) = read(&self.tenants).get(tenant) {
            return g.clone();
        }
        write(&self.tenants)
            .entry(tenant.clone())
            .or_insert_with(|| {
                Arc::new(RwLock::new(Graph::new(
                    self.config.stale_after.as_millis() as i64,
                    self.config.max_events,
                )))
            })
            .clone()
    }

    /// The tenant's graph for reading: an empty one, not kept, if it has none (a query
    /// naming any tenant must not make one).
    pub fn graph_for_reading(&self, tenant: &TenantId) -> Arc<RwLock<Graph>> {
        read(&self.tenants).get(tenant).cloned().unwrap_or_else(|| {
            Arc::new(RwLock::new(Graph::new(
                self.config.stale_after.as_millis() as i64,
                self.config.max_events,
            )))
        })
    }

    /// Whether the tenant has an entity `id`.
    pub fn contains(&self, tenant: &TenantId, id: &EntityId) -> bool {
        read(&self.tenants)
            .get(tenant)
            .is_some_and(|g| read(g).entity(id).is_some())
    }

    /// Applies facts outside the WAL (tests, benchmarks). The server applies them through
    /// the WAL only.
    pub fn apply(&self, batch: &FactBatch) -> usize {
        let total: usize = read(&self.tenants)
            .values()
            .map(|g| read(g).entity_count())
            .sum();
        let graph = self.graph(&batch.tenant);
        let mut g = write(&graph);
        let mut room = self.config.max_entities.saturating_sub(total);
        let mut applied = 0;
        for fact in &batch.facts {
            // New entities past the bound are refused; facts about known ones still apply.
            let new_entities = match fact {
                Fact::Seen { id, .. } => usize::from(g.entity(id).is_none()),
                Fact::Related { from, to, .. } | Fact::DeclareRelation { from, to, .. } => {
                    usize::from(g.entity(from).is_none()) + usize::from(g.entity(to).is_none())
                }
                Fact::Declare { id, .. } => usize::from(g.entity(id).is_none()),
                Fact::Event(e) => usize::from(g.entity(&e.entity).is_none()),
                Fact::Undeclare { .. } | Fact::UndeclareRelation { .. } => 0,
            };
            if new_entities > room {
                self.refused_entities.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            room -= new_entities;
            g.apply(fact);
            applied += 1;
        }
        applied
    }

    /// Feeds a service-graph counter observation to a relation (in memory: the rates are
    /// derived from series the TSDB keeps).
    pub fn record_calls(
        &self,
        tenant: &TenantId,
        from: &EntityId,
        to: &EntityId,
        kind: RelationKind,
        counters: CallCounters,
    ) -> bool {
        let graph = self.graph(tenant);
        let mut g = write(&graph);
        g.record_calls(from, to, kind, counters).is_some()
    }

    /// The `depends_on` target of `from` named `name`, if any.
    pub fn dependency_named(
        &self,
        tenant: &TenantId,
        from: &EntityId,
        name: &str,
    ) -> Option<EntityId> {
        let graph = read(&self.tenants).get(tenant).cloned()?;
        read(&graph).dependency_named(from, name)
    }

    /// Tenants with a graph.
    pub fn tenants(&self) -> Vec<TenantId> {
        let mut v: Vec<TenantId> = read(&self.tenants).keys().cloned().collect();
        v.sort();
        v
    }

    /// Sizes, for `/metrics`.
    pub fn stats(&self) -> TopologyStats {
        let tenants = read(&self.tenants);
        let mut s = TopologyStats {
            tenants: tenants.len(),
            ..Default::default()
        };
        for g in tenants.values() {
            let g = read(g);
            s.entities += g.entity_count();
            s.relations += g.relation_count();
            s.events += g.event_count();
            s.bytes += estimate_bytes(&g);
        }
        s
    }

    /// Entities refused because the graph was at its size bound.
    pub fn refused_entities(&self) -> u64 {
        self.refused_entities.load(Ordering::Relaxed)
    }

    /// Writes the snapshot if anything was applied since the last one.
    pub fn snapshot(&self) -> Result<(), TopologyError> {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let seq = self.applied_seq.load(Ordering::Acquire);
        let graphs: Vec<(TenantId, Arc<RwLock<Graph>>)> = read(&self.tenants)
            .iter()
            .map(|(t, g)| (t.clone(), g.clone()))
            .collect();
        let tenants = graphs
            .iter()
            .map(|(t, g)| (t.as_str().to_string(), read(g).to_bytes()))
            .collect();
        let bytes = postcard::to_allocvec(&Snapshot { seq, tenants }).expect("serialises");
        let path = self.dir.join(SNAPSHOT);
        let tmp = self.dir.join(format!("{SNAPSHOT}.tmp"));
        let result = (|| {
            fs::create_dir_all(&self.dir)?;
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            fs::File::open(&self.dir)?.sync_all()
        })();
        if let Err(source) = result {
            let _ = fs::remove_file(&tmp);
            self.dirty.store(true, Ordering::Release);
            return Err(TopologyError::Snapshot { path, source });
        }
        self.snapshot_seq.store(seq, Ordering::Release);
        Ok(())
    }

    /// Forgets entities not seen within the retention before `now_ms` (declared ones stay).
    pub fn forget_old(&self, now_ms: i64) -> usize {
        let horizon = now_ms - self.config.retention.as_millis() as i64;
        let graphs: Vec<Arc<RwLock<Graph>>> = read(&self.tenants).values().cloned().collect();
        let mut removed = 0;
        for g in graphs {
            let n = write(&g).forget_before(horizon);
            if n > 0 {
                removed += n;
                self.dirty.store(true, Ordering::Release);
            }
        }
        removed
    }
}

/// A rough count of the heap bytes a graph holds: its strings, maps and intervals.
fn estimate_bytes(g: &Graph) -> usize {
    let entity = |e: &Entity| {
        std::mem::size_of::<Entity>()
            + e.id.as_str().len()
            + e.name.len()
            + e.attributes
                .iter()
                .map(|(k, v)| k.len() + v.len() + 64)
                .sum::<usize>()
            + e.presence.intervals.len() * 24
            + e.declared.as_ref().map_or(0, |d| {
                d.attributes
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 64)
                    .sum::<usize>()
                    + 128
            })
            // The id map's entry and key.
            + e.id.as_str().len() + 48
    };
    let entities: usize = g.all_entities().map(entity).sum();
    // An edge: its weight, its intervals, the edge map's entry.
    let relations = g.relation_count() * (std::mem::size_of::<crate::model::Relation>() + 24 + 48);
    entities + relations + g.event_count() * 160
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// Read access to a tenant graph, poison-tolerant.
pub fn read_graph(g: &RwLock<Graph>) -> std::sync::RwLockReadGuard<'_, Graph> {
    read(g)
}

impl Sink<FactBatch> for Topology {
    type Error = TopologyError;

    fn name(&self) -> &'static str {
        "topology"
    }

    fn append(&self, seq: u64, batch: &FactBatch) -> Result<usize, Self::Error> {
        if seq <= self.snapshot_seq.load(Ordering::Acquire) {
            return Ok(0);
        }
        let n = self.apply(batch);
        self.applied_seq.fetch_max(seq, Ordering::AcqRel);
        self.dirty.store(true, Ordering::Release);
        Ok(n)
    }

    fn commit(&self) -> Result<(), Self::Error> {
        self.snapshot()
    }

    fn rollback(&self) -> Result<(), Self::Error> {
        // Facts are idempotent: appending the uncommitted batches again is enough.
        Ok(())
    }

    fn maintain(&self, now_ns: i64) -> Result<(), Self::Error> {
        let removed = self.forget_old(now_ns / 1_000_000);
        if removed > 0 {
            tracing::info!(removed, "forgot entities past the topology retention");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Declared;

    fn batch(facts: Vec<Fact>) -> FactBatch {
        FactBatch {
            tenant: TenantId::default_tenant(),
            facts,
        }
    }

    fn seen(id: &str, t: i64) -> Fact {
        Fact::Seen {
            id: EntityId::parse(id).unwrap(),
            name: String::new(),
            attributes: vec![],
            time: t,
        }
    }

    #[test]
    fn the_snapshot_holds_what_was_committed_and_replay_skips_it() {
        let dir = tempfile::tempdir().unwrap();
        let topo = Topology::open(dir.path(), TopologyConfig::default()).unwrap();
        topo.append(1, &batch(vec![seen("service:a", 1_000)]))
            .unwrap();
        topo.append(
            2,
            &batch(vec![Fact::Declare {
                id: EntityId::parse("service:a").unwrap(),
                declared: Declared {
                    source: "api".into(),
                    ..Declared::default()
                },
            }]),
        )
        .unwrap();
        topo.commit().unwrap();
        topo.append(3, &batch(vec![seen("service:b", 2_000)]))
            .unwrap();
        // Not committed: lost with the process, but still in the WAL.
        drop(topo);
        let topo = Topology::open(dir.path(), TopologyConfig::default()).unwrap();
        let t = TenantId::default_tenant();
        assert!(topo.contains(&t, &EntityId::parse("service:a").unwrap()));
        assert!(!topo.contains(&t, &EntityId::parse("service:b").unwrap()));
        assert_eq!(
            topo.append(2, &batch(vec![seen("service:c", 1)])).unwrap(),
            0
        );
        assert_eq!(
            topo.append(3, &batch(vec![seen("service:b", 2_000)]))
                .unwrap(),
            1
        );
        assert!(topo.contains(&t, &EntityId::parse("service:b").unwrap()));
    }

    #[test]
    fn new_entities_past_the_bound_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = TopologyConfig {
            max_entities: 2,
            ..TopologyConfig::default()
        };
        let topo = Topology::open(dir.path(), config).unwrap();
        let n = topo.apply(&batch(vec![
            seen("service:a", 1),
            seen("service:b", 1),
            seen("service:c", 1),
            seen("service:a", 2),
        ]));
        assert_eq!(n, 3);
        assert_eq!(topo.stats().entities, 2);
        assert_eq!(topo.refused_entities(), 1);
        assert!(topo.stats().bytes > 0);
    }
}
