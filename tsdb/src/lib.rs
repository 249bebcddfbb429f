//! Sightline's time-series store for metric samples.
//!
//! Per tenant, an in-memory **head** holds recent samples compressed per series
//! ([`series`]: Gorilla [`chunk`]s while appending, pco [`columns`] once full), indexed by
//! an inverted index from label pairs to series ids ([`head`], [`postings`], interned
//! strings in `symbols.rs`). Every accepted append is first written to the
//! **write-ahead log** (crate `sightline-wal`, records in [`wal_records`]) and fsynced, one
//! fsync per group of batches. [`Tsdb::maintain`] cuts the head's oldest two hours into
//! immutable on-disk **blocks** ([`block`]: pco columns per series, symbol table, series
//! table and postings in one checksummed file), merges blocks into larger ones
//! ([`compact`]), applies retention, and writes a head [`snapshot`] so the WAL stays short.
//! Queries ([`Tsdb::select`], [`Tsdb::series`], [`Tsdb::label_names`],
//! [`Tsdb::label_values`]) merge head and blocks.
//!
//! Why this shape: memory per active series is the figure that decides how many series a
//! machine can hold, so the head keeps no per-sample structs and no per-series strings, and
//! packs closed chunks with pco (about half of Gorilla's size for scraped data); on disk
//! pco columns over whole blocks bring a scraped counter under a byte a sample. File
//! formats are documented in [`block`], [`snapshot`] and [`wal_records`], and the chunk
//! format in [`chunk`]; `testdata/` pins the chunk and block formats.
//!
//! Measured with `tests/load.rs` (100k series, 15 s scrapes for 2 h, half the targets with
//! ±3 ms jitter, a mix of counters, gauges and constants): the head's own estimate is
//! ~900 bytes per series holding 2 h (process RSS grew ~1.2–1.6 KiB per series, allocator
//! overhead included); blocks cost 0.74 bytes a sample at 2 h and 0.50 once compacted to
//! 24 h; appends run at ~0.9–1.1 M samples/s on one core with one fsync per call. The
//! criterion bench `benches/head.rs` measures append and select.
//!
//! The crate never does network I/O and never depends on a receiver or the server.

pub mod block;
pub mod chunk;
mod codec;
pub mod columns;
pub mod compact;
mod db;
mod error;
pub mod head;
pub mod postings;
pub mod series;
mod sink;
pub mod snapshot;
mod symbols;
pub mod wal_records;

pub use chunk::{Chunk, ChunkAppender, ChunkError, ChunkIter};
pub use db::{MaintainReport, Tsdb, TsdbOptions, TsdbStats};
pub use error::TsdbError;
