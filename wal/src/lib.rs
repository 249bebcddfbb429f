//! The write-ahead log: every accepted batch is appended and fsynced here before its client
//! gets a success answer, and replayed into the stores on start.
//!
//! The WAL stores opaque records (a kind byte and a payload); it never interprets payloads
//! and never knows about tenants, indexes or the network. One log serves the whole server so
//! that one fsync commits the batches of every tenant and source that arrived together
//! (group commit); each payload names its own tenant.
//!
//! # Segment format (version 1)
//!
//! A log is a directory of segment files named `<first sequence number, 20 digits>.wal`.
//! Each segment starts with the 8-byte magic `SLWAL\x00\x00\x01` and holds records:
//!
//! ```text
//! +-----------+-----------+-----------+--------+-----------------+
//! | len: u32  | crc: u32  | seq: u64  | kind:u8| payload: len B  |
//! +-----------+-----------+-----------+--------+-----------------+
//! ```
//!
//! All integers are little-endian. `crc` is CRC-32 (IEEE) over `seq`, `kind` and `payload`.
//! Sequence numbers start at 1 and increase by one per record across segments.
//! A record that is cut short or fails its CRC at the end of the *last* segment is a torn
//! write from a crash (it was never acknowledged, because acknowledgement follows fsync): the
//! segment is truncated there. The same fault anywhere else is corruption and is reported.
//! `testdata/segment_v1.wal` pins the format (see `tests::golden_segment`).

mod segment;

pub use segment::{Wal, WalError, WalOptions, WalRecord};
