//! How a batch becomes a WAL record and back.

use sightline_model::LogBatch;

/// A batch type that travels through the write-ahead log.
pub trait WalCodec: Sized + Send + 'static {
    /// The record kind byte that marks this type's records; replay skips other kinds.
    const RECORD_KIND: u8;
    /// The record payload.
    fn encode(&self) -> Vec<u8>;
    /// The batch back from a payload [`WalCodec::encode`] wrote.
    fn decode(payload: &[u8]) -> Result<Self, postcard::Error>;
}

/// Log batches as postcard (kind 1, the format the WAL has always held).
impl WalCodec for LogBatch {
    const RECORD_KIND: u8 = 1;

    fn encode(&self) -> Vec<u8> {
        // Serialising plain owned data into a Vec cannot fail.
        postcard::to_allocvec(self).expect("log batch serialises")
    }

    fn decode(payload: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(payload)
    }
}

/// Span batches as postcard (kind 2), in the traces write-ahead log.
impl WalCodec for sightline_model::SpanBatch {
    const RECORD_KIND: u8 = 2;

    fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("span batch serialises")
    }

    fn decode(payload: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(payload)
    }
}
