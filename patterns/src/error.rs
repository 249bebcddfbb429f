//! The crate's error type.

/// Errors of the template miner.
#[derive(Debug, thiserror::Error)]
pub enum PatternsError {
    /// A regex mask rule does not compile.
    #[error("mask rule {name:?} is not a valid regex")]
    InvalidMask {
        /// The rule's name.
        name: String,
        /// Why the regex was rejected.
        #[source]
        source: Box<regex::Error>,
    },
    /// A configuration value is out of range.
    #[error("invalid miner configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// A saved state could not be encoded.
    #[error("cannot encode miner state")]
    Encode(#[source] postcard::Error),
    /// A saved state could not be decoded.
    #[error("cannot decode miner state")]
    Decode(#[source] postcard::Error),
    /// A saved state has a format version this build does not read.
    #[error("miner state has format version {found}, expected {expected}")]
    UnsupportedVersion {
        /// The version in the state.
        found: u32,
        /// The version this build writes.
        expected: u32,
    },
}
