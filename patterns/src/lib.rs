//! Log patterns: the online template miner that gives every log line a pattern id.
//!
//! This crate owns turning a log line into a stable [`PatternId`] and its variable parts:
//! variable masking ([`masking`]), the Drain-family miner ([`miner`]), per tenant and service
//! miners with save/load ([`store`]), and the bounds on their memory. It is a pure library:
//! it must never do I/O, read a clock (callers pass times in), spawn threads, or let one
//! tenant's lines reach another tenant's patterns. Ingest, storage and query of pattern ids
//! and counts live in the crates that call it.

pub mod error;
pub mod masking;
pub mod miner;
pub mod store;

pub use error::PatternsError;
pub use masking::{BuiltinMask, MaskRule, WILDCARD, default_masks};
pub use miner::{MineOutcome, Miner, MinerConfig, Pattern, PatternId};
pub use store::PatternStore;
