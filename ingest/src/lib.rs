//! The durable path every signal takes from a receiver to a store, as a library.
//!
//! ```text
//! receiver ─IngestHandle─► queue ─► WAL writer (group commit, fsync) ─► ack to the client
//!                                        │ (seq, batch)
//!                                        ▼
//!                     sink runner: Sink::append … Sink::commit ─► durable watermark
//!                                        │                              │
//!                                        └── retry / rollback ◄─ failure └─► WAL truncation
//! ```
//!
//! * [`queue`]: the bounded hand-off from receivers ([`IngestHandle`] over the
//!   [`IngestQueue`] trait; [`LocalQueue`], a channel, is the single-node implementation; a
//!   NATS JetStream queue can replace it without receivers or stores changing).
//! * [`wal_writer`]: appends queued batches to the write-ahead log in groups that share one
//!   fsync, acknowledges them, hands them on with their sequence numbers, and deletes WAL
//!   segments below the durable watermark.
//! * [`sink`]: the contract a store implements — append a batch with its WAL sequence,
//!   commit, roll back what is not committed — and [`sink_runner`], which drives one sink and
//!   keeps the watermark bookkeeping in one place: the watermark never passes a batch the
//!   sink has not committed, a failed append or commit is rolled back and retried, and a
//!   failing sink is reported unhealthy ([`SinkProgress`]) until it recovers.
//! * [`recovery`]: replays the WAL into a sink at start.
//! * [`tap`]: something that learns from every batch before it is acknowledged (the
//!   topology), durably, as a wrapper around any queue.
//! * [`direct`]: the path of stores that keep their own write-ahead log (the TSDB): queued
//!   batches are appended in groups and acknowledged with the store's report.
//!
//! This crate knows nothing of log or metric storage engines, query languages or protocols:
//! it depends on `wal` and `model` only, and stores depend on it for the contract.

pub mod direct;
pub mod error;
pub mod metrics;
pub mod queue;
pub mod recovery;
pub mod sink;
pub mod sink_runner;
pub mod tap;
pub mod wal_codec;
pub mod wal_writer;

pub use direct::{DurableSink, run_direct_writer};
pub use error::IngestError;
pub use metrics::IngestMetrics;
pub use queue::{
    IngestHandle, IngestQueue, IngestRequest, LocalQueue, MetricIngestHandle, MetricIngestRequest,
    QueueReceiver, Submission,
};
pub use recovery::{Recovered, RecoveryError, recover};
pub use sink::{Health, Sink, SinkProgress, unready_reason};
pub use sink_runner::{SinkRunnerConfig, run_sink};
pub use tap::{Tap, TappedQueue};
pub use wal_codec::WalCodec;
pub use wal_writer::{Sequenced, WalWriterConfig, run_wal_writer, sequenced_channel};
