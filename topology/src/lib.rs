//! The topology service: every application mapped to the services, instances, pods, nodes,
//! zones and cloud services under it, kept over time.
//!
//! * [`model`]: entity and relation kinds, stable ids, presence over time, owners.
//! * [`identity`]: entities and relations from resource attributes (OpenTelemetry semantic
//!   conventions) and from client spans.
//! * [`inventory`]: the declared inventory (a TOML file, the API), checked with errors and
//!   warnings that name file, line and entity.
//! * [`facts`]: what the graph learns, as WAL records.
//! * [`graph`]: one tenant's graph (`petgraph`), applied from facts, read as of a time:
//!   stack, impact, path, neighbourhood, changes.
//! * [`observer`]: the ingest tap that turns what every signal says about the estate into
//!   facts, before the signal is acknowledged.
//! * [`store`]: every tenant's graph as a sink of the topology WAL, with its snapshot.
//! * [`views`]: the API's answers: entities with owners and the selectors of their signals.

pub mod facts;
pub mod graph;
pub mod identity;
pub mod inventory;
pub mod model;
pub mod observer;
pub mod store;
pub mod views;

pub use facts::{Fact, FactBatch};
pub use graph::{Graph, Window};
pub use model::{EntityId, EntityKind, RelationKind};
pub use observer::Observer;
pub use store::{Topology, TopologyConfig, TopologyStats};
