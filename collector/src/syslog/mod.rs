//! Syslog receiver: RFC 5424 and RFC 3164 messages over TCP (RFC 6587 framing) and UDP
//! (RFC 5426), turned into [`sightline_model::LogBatch`]es for the ingest path.
//!
//! - [`parser`] reads one message into a [`ParsedSyslog`] and maps it to resource attributes
//!   and a log record;
//! - [`framing`] splits a TCP byte stream into messages, octet-counted or newline-terminated;
//! - [`receiver`] binds the sockets, batches records per stream and hands batches to the
//!   [`crate::IngestHandle`].
//!
//! Syslog has no acknowledgements, so this module's only lever against overload is TCP
//! backpressure (it stops reading); over UDP it counts and drops. Memory per listener and per
//! connection is bounded by the message limit and the batch limits.

mod batch;
pub mod framing;
pub mod parser;
pub mod receiver;
mod timestamp;

pub use parser::{ParsedSyslog, SdElement, SyslogError, SyslogFormat, parse};
pub use receiver::{SyslogConfig, SyslogListeners, start};

#[cfg(test)]
mod tests;
