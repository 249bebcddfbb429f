//! Prometheus remote-write 1.0 receiver: `POST /api/v1/write` ([`receiver::router`]),
//! snappy-compressed `prometheus.WriteRequest` protobuf ([`proto`], public so that load
//! generators encode with the same structs), decoded and validated series by series by
//! [`decode`].
//!
//! Like Mimir, a write is partially accepted: valid series are stored and the client gets a
//! 400 naming what was refused. The answer comes only after the valid part is in the TSDB's
//! write-ahead log; samples the store refuses (out of order, too old, …) are reported the
//! same way.

pub mod decode;
pub mod proto;
pub mod receiver;

pub use decode::{RemoteWriteConfig, is_valid_metric_name};
pub use receiver::{RemoteWriteState, router};
