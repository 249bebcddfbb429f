//! Facts: the graph's durable input. Everything the graph learns — an entity or relation seen
//! at a time, a declaration, an event — is a fact written to the topology's WAL before the
//! request that taught it is acknowledged, and applied to the graph from there (at once, and
//! again on replay after a crash). Applying a fact twice changes nothing.

use serde::{Deserialize, Serialize};
use sightline_model::TenantId;

use crate::model::{ChangeEvent, Declared, EntityId, RelationKind};

/// One thing learned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Fact {
    /// The entity was seen at `time` (ms) with these attributes.
    Seen {
        id: EntityId,
        name: String,
        attributes: Vec<(String, String)>,
        time: i64,
    },
    /// The relation was seen at `time`.
    Related {
        from: EntityId,
        to: EntityId,
        kind: RelationKind,
        time: i64,
    },
    /// An entity declared by an inventory or the API; replaces that source's earlier
    /// declaration of it.
    Declare { id: EntityId, declared: Declared },
    /// A relation declared by an inventory or the API (`source`).
    DeclareRelation {
        from: EntityId,
        to: EntityId,
        kind: RelationKind,
        source: String,
    },
    /// An external event (a deploy marker).
    Event(ChangeEvent),
    /// The entity is no longer declared (it left the inventory file).
    Undeclare { id: EntityId },
    /// The relation is no longer declared.
    UndeclareRelation {
        from: EntityId,
        to: EntityId,
        kind: RelationKind,
    },
}

/// The facts one request taught, for one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactBatch {
    pub tenant: TenantId,
    pub facts: Vec<Fact>,
}

impl sightline_ingest::WalCodec for FactBatch {
    const RECORD_KIND: u8 = 3;

    fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("fact batch serialises")
    }

    fn decode(payload: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(payload)
    }
}
