//! Loki push receiver: `POST /loki/api/v1/push` ([`receiver::router`]), JSON or
//! snappy-compressed protobuf ([`proto`]), decoded and validated by [`decode`].
//!
//! Like Loki, a push is partially accepted: valid streams and entries are stored, and the
//! client gets a 400 listing what was refused. The answer comes only after the valid part is
//! in the write-ahead log.

pub mod decode;
pub mod proto;
pub mod receiver;

pub use decode::{LokiPushConfig, parse_label_selector};
pub use receiver::{LokiPushState, router};
