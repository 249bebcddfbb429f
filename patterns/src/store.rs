//! Miners kept per tenant and service, saved and restored together.
//!
//! Patterns never cross a tenant boundary: each (tenant, service) stream has its own
//! [`Miner`], so one tenant's lines can neither shape nor reveal another's templates, and
//! the pattern cap bounds each service separately.

use std::collections::HashMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::error::PatternsError;
use crate::masking::Masker;
use crate::miner::{MineOutcome, Miner, MinerConfig, MinerSnapshot, STATE_FORMAT_VERSION};

/// All miners of a node, keyed by tenant and then service.
#[derive(Debug)]
pub struct PatternStore {
    config: MinerConfig,
    masker: Masker,
    miners: HashMap<String, HashMap<String, Miner>>,
}

impl PatternStore {
    /// Creates an empty store whose miners all use `config`.
    pub fn new(config: MinerConfig) -> Result<Self, PatternsError> {
        let masker = Masker::new(&config.masks)?;
        // Validates the rest of the configuration once, up front.
        Miner::with_masker(config.clone(), masker.clone())?;
        Ok(PatternStore {
            config,
            masker,
            miners: HashMap::new(),
        })
    }

    /// Mines one line of `service` in `tenant`, creating the stream's miner on first use.
    pub fn mine(
        &mut self,
        tenant: &str,
        service: &str,
        line: &str,
        seen_at_ms: i64,
    ) -> MineOutcome {
        self.miner_mut(tenant, service).mine(line, seen_at_ms)
    }

    /// Like [`PatternStore::mine`], also filling the variables' byte ranges.
    pub fn mine_with_variables(
        &mut self,
        tenant: &str,
        service: &str,
        line: &str,
        seen_at_ms: i64,
        variables: &mut Vec<Range<usize>>,
    ) -> MineOutcome {
        self.miner_mut(tenant, service)
            .mine_with_variables(line, seen_at_ms, variables)
    }

    /// The miner of one stream, if it has seen a line.
    pub fn miner(&self, tenant: &str, service: &str) -> Option<&Miner> {
        self.miners.get(tenant)?.get(service)
    }

    /// The services of `tenant` that have a miner.
    pub fn services(&self, tenant: &str) -> impl Iterator<Item = &str> {
        self.miners
            .get(tenant)
            .into_iter()
            .flat_map(|services| services.keys().map(String::as_str))
    }

    fn miner_mut(&mut self, tenant: &str, service: &str) -> &mut Miner {
        // Two lookups on the first line of a stream only; the common path allocates nothing.
        if !self
            .miners
            .get(tenant)
            .is_some_and(|services| services.contains_key(service))
        {
            let miner = Miner::with_masker(self.config.clone(), self.masker.clone())
                .expect("configuration validated in PatternStore::new");
            self.miners
                .entry(tenant.to_owned())
                .or_default()
                .insert(service.to_owned(), miner);
        }
        self.miners
            .get_mut(tenant)
            .and_then(|services| services.get_mut(service))
            .expect("inserted above")
    }

    /// Serialises every miner's state (not the configuration).
    pub fn save(&self) -> Result<Vec<u8>, PatternsError> {
        let mut streams: Vec<StreamSnapshot> = self
            .miners
            .iter()
            .flat_map(|(tenant, services)| {
                services.iter().map(move |(service, miner)| StreamSnapshot {
                    tenant: tenant.clone(),
                    service: service.clone(),
                    miner: miner.snapshot(),
                })
            })
            .collect();
        // Deterministic bytes for the same state.
        streams.sort_by(|a, b| (&a.tenant, &a.service).cmp(&(&b.tenant, &b.service)));
        let snapshot = StoreSnapshot {
            format_version: STATE_FORMAT_VERSION,
            streams,
        };
        postcard::to_allocvec(&snapshot).map_err(PatternsError::Encode)
    }

    /// Restores a store saved by [`PatternStore::save`], running with `config`.
    pub fn load(config: MinerConfig, bytes: &[u8]) -> Result<Self, PatternsError> {
        let snapshot: StoreSnapshot = postcard::from_bytes(bytes).map_err(PatternsError::Decode)?;
        if snapshot.format_version != STATE_FORMAT_VERSION {
            return Err(PatternsError::UnsupportedVersion {
                found: snapshot.format_version,
                expected: STATE_FORMAT_VERSION,
            });
        }
        let mut store = Self::new(config)?;
        for stream in snapshot.streams {
            let miner =
                Miner::from_snapshot(store.config.clone(), store.masker.clone(), stream.miner)?;
            store
                .miners
                .entry(stream.tenant)
                .or_default()
                .insert(stream.service, miner);
        }
        Ok(store)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct StoreSnapshot {
    format_version: u32,
    streams: Vec<StreamSnapshot>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StreamSnapshot {
    tenant: String,
    service: String,
    miner: MinerSnapshot,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_mined_separately_and_survive_a_restart() {
        let mut store = PatternStore::new(MinerConfig::default()).unwrap();
        let a = store.mine("acme", "payments", "charge 12 ok", 0);
        let b = store.mine("acme", "ledger", "charge 13 ok", 0);
        let c = store.mine("globex", "payments", "charge 14 ok", 0);
        // Same text in three streams: three first-seen events, ids counted per stream.
        assert!(a.first_seen && b.first_seen && c.first_seen);
        assert_eq!(store.miner("acme", "payments").unwrap().len(), 1);
        let x = store.mine("acme", "payments", "refund 7 failed: card expired", 1);

        let mut restored =
            PatternStore::load(MinerConfig::default(), &store.save().unwrap()).unwrap();
        let mut services: Vec<&str> = restored.services("acme").collect();
        services.sort_unstable();
        assert_eq!(services, ["ledger", "payments"]);
        let again = restored.mine("acme", "payments", "refund 8 failed: card expired", 2);
        assert_eq!(again.pattern, x.pattern);
        assert!(!again.first_seen);
        let other = restored.mine("globex", "payments", "charge 99 ok", 2);
        assert_eq!(other.pattern, c.pattern);
        assert!(restored.miner("initech", "payments").is_none());
    }

    #[test]
    fn save_is_deterministic() {
        let mut store = PatternStore::new(MinerConfig::default()).unwrap();
        for tenant in ["t1", "t2", "t3"] {
            for service in ["s1", "s2"] {
                store.mine(tenant, service, "hello 1 world", 5);
            }
        }
        assert_eq!(store.save().unwrap(), store.save().unwrap());
    }
}
