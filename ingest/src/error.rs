//! Why a batch was not accepted, as receivers see it.

/// Why a batch was not accepted. Receivers turn each kind into the protocol's answer:
/// all are retryable: `Overloaded` soon, `ShuttingDown` and `Storage` (the WAL or a store
/// cannot persist, as on a full disk) after a longer wait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("ingest queue is full, retry later")]
    Overloaded,
    #[error("server is shutting down")]
    ShuttingDown,
    /// The batch could not be made durable; the message is the store's or the WAL's error,
    /// kept as text because it is only ever shown to the client and logged.
    #[error("cannot persist the batch, retry later: {0}")]
    Storage(String),
}
