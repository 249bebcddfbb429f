//! The log store: Tantivy indexes split by tenant and time window, written from the WAL and
//! searched through the log store's query seam, [`sightline_model::LogSource`].
//!
//! Tantivy types never leave this crate, and it knows no query language: the seam's types
//! (matchers, pushed-down line filters, requests, entries) are the model's, so a store never
//! depends on the engine that reads it. The store is written by one thread (the server's
//! indexing loop: [`LogStore::add_batch`] then [`LogStore::commit`], or
//! [`LogStore::rollback`] after either failed) and read by any number of query threads.
//! Each split's commit carries the highest WAL sequence number it contains, so a WAL replay
//! after a crash adds each record to each split exactly once.
//! Every line gets the id of its log pattern at ingest ([`patterns`]).
//!
//! Modules, from the bottom up (none depends on one above it): `error`, `schema`,
//! `pushdown`, `split` (one Tantivy index), `selection` (streams and time range as
//! clauses), `collectors`, `patterns` (mining at ingest), `store` (the set of splits),
//! then what the store does: `write`, `retention`, `cursor` and `read`,
//! `pattern_summaries`.

mod collectors;
mod cursor;
mod error;
mod pattern_summaries;
mod patterns;
mod pushdown;
mod read;
mod retention;
mod schema;
mod selection;
mod sink;
mod split;
mod split_set;
mod store;
pub mod traces;
mod write;

#[cfg(test)]
mod test_support;

pub use error::IndexerError;
pub use pattern_summaries::PatternSummary;
pub use patterns::PATTERNS_FILE;
pub use store::{LogStore, LogStoreConfig, StoreStats};
pub use traces::{
    AttrScope, Candidate, CandidateQuery, SpanCondition, TagNames, TagSource, TraceStore,
    TraceStoreConfig,
};
