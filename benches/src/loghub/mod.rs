//! The Loghub accuracy harness: reading the Loghub 2k samples, splitting each raw line's
//! header off by its system's log format, and scoring a template miner with GA, PA, FGA and
//! FTA as `../shared/datasets/loghub/METRICS.md` defines them.
//!
//! * [`format`] holds the log formats as data (logparser-style format strings) and the one
//!   generic function that applies them.
//! * [`metrics`] holds the metrics and the template correction rules; it knows nothing about
//!   files.
//! * [`dataset`] reads the data layout and reads and writes parser outputs
//!   (`<System>.csv` with `LineId,PatternId,Template`), so any parser (ours, drain3) is scored
//!   by the same code.
//!
//! The miner itself lives in `sightline-patterns`; the `loghub` binary glues the two.

pub mod dataset;
pub mod format;
pub mod metrics;

use std::path::PathBuf;

pub use dataset::{
    ContentSource, GroundTruth, Labels, ParsedLine, System, list_systems, read_output, read_system,
    score, write_output,
};
pub use format::{LOG_FORMATS, LogFormat, format_of};
pub use metrics::{Accuracy, ScoredLine, accuracy, correct_template};

/// Errors of the Loghub harness.
#[derive(Debug, thiserror::Error)]
pub enum LoghubError {
    /// A file or folder could not be read or written.
    #[error("cannot access {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A CSV file is malformed.
    #[error("malformed csv {path}")]
    Csv {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: csv::Error,
    },
    /// A CSV file lacks a column.
    #[error("{path} has no column {column:?}")]
    MissingColumn {
        /// The path.
        path: PathBuf,
        /// The missing column.
        column: String,
    },
    /// A CSV row holds a bad value.
    #[error("{path} row {row}: {reason}")]
    BadRow {
        /// The path.
        path: PathBuf,
        /// 1-based row number, counting the header.
        row: usize,
        /// What is wrong.
        reason: String,
    },
    /// A log format string is invalid.
    #[error("invalid log format {format:?}: {reason}")]
    Format {
        /// The format string.
        format: String,
        /// What is wrong.
        reason: String,
    },
    /// A system has neither a shipped format nor a structured CSV to take contents from.
    #[error("system {system} has no log format and no structured csv")]
    NoGroundTruth {
        /// The system.
        system: String,
    },
}
