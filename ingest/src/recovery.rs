//! Start-up: replay the WAL into a sink, commit, and truncate.

use std::path::Path;
use std::time::Instant;

use sightline_wal::{Wal, WalError, WalOptions, WalRecord};

use crate::{Sink, WalCodec};

/// Why replay could not bring a store up to date; the server does not start then.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("undecodable record {seq} in the wal: {source}")]
    Decode {
        seq: u64,
        #[source]
        source: postcard::Error,
    },
    #[error("replaying wal record {seq} into the {sink} store: {source}")]
    Append {
        sink: &'static str,
        seq: u64,
        #[source]
        source: E,
    },
    #[error("committing the {sink} store after replay: {source}")]
    Commit {
        sink: &'static str,
        #[source]
        source: E,
    },
}

/// What replay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Records the sink added (those it had already committed are skipped by the sink).
    pub records: u64,
    /// Every WAL record up to here is committed in the sink: the starting watermark.
    pub durable_seq: u64,
}

/// Opens the WAL in `dir`, appends every record of `B`'s kind to `sink`, commits, and
/// deletes the segments that are now wholly committed. Returns the open WAL.
pub fn recover<B: WalCodec, S: Sink<B>>(
    dir: &Path,
    options: WalOptions,
    sink: &S,
) -> Result<(Wal, Recovered), RecoveryError<S::Error>> {
    let started = Instant::now();
    let mut records = 0u64;
    let mut failure: Option<RecoveryError<S::Error>> = None;
    let mut wal = Wal::open(dir, options, |record: WalRecord| {
        if failure.is_some() || record.kind != B::RECORD_KIND {
            return;
        }
        let seq = record.seq;
        let batch = match B::decode(&record.payload) {
            Ok(batch) => batch,
            Err(source) => {
                failure = Some(RecoveryError::Decode { seq, source });
                return;
            }
        };
        match sink.append(seq, &batch) {
            Ok(n) => records += n as u64,
            Err(source) => {
                failure = Some(RecoveryError::Append {
                    sink: sink.name(),
                    seq,
                    source,
                })
            }
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    sink.commit().map_err(|source| RecoveryError::Commit {
        sink: sink.name(),
        source,
    })?;
    let durable_seq = wal.next_seq() - 1;
    wal.remove_through(durable_seq)?;
    tracing::info!(
        sink = sink.name(),
        records,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "wal replay done"
    );
    Ok((
        wal,
        Recovered {
            records,
            durable_seq,
        },
    ))
}
