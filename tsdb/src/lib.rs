//! Sightline's time-series store for metric samples (being built: see issue 3).
//!
//! This crate will own the series index, the in-memory head, on-disk blocks, compaction and
//! retention. So far it holds the sample chunk encoding ([`chunk`]), the unit every other
//! part stores. It never does network I/O and never depends on a receiver or the server.

pub mod chunk;

pub use chunk::{Chunk, ChunkAppender, ChunkError, ChunkIter};
