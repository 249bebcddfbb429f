//! The log store: Tantivy indexes split by tenant and time window, written from the WAL and
//! searched through the log store's query seam, [`sightline_model::LogSource`].
//!
//! Tantivy types never leave this crate. The store is written by one thread (the server's
//! indexing loop: [`LogStore::add_batch`] then [`LogStore::commit`]) and read by any number of
//! query threads. Each split's commit carries the highest WAL sequence number it contains, so
//! a WAL replay after a crash adds each record to each split exactly once. Every line gets
//! the id of its log pattern at ingest ([`patterns`]).

mod patterns;
mod pushdown;
mod schema;
mod split;
mod store;

pub use patterns::PATTERNS_FILE;
pub use store::{IndexerError, LogStore, LogStoreConfig, PatternSummary, StoreStats};
