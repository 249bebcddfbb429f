//! [`Tsdb`]: the store as the server sees it — append with group commit, select, series
//! metadata, maintenance and statistics — tying together the head, the WAL, blocks and
//! compaction.
//!
//! This module holds the type, its options, its statistics and the notes below that every
//! part relies on; the parts live beside it: `open.rs` (loading blocks, the snapshot and
//! WAL replay), `append.rs` (validation, WAL write, head update), `query.rs` (select and
//! series metadata) and `maintain.rs` (cuts, compaction, retention, snapshots).
//!
//! # Layout on disk
//!
//! ```text
//! <dir>/wal/                      sightline-wal segments (records: `wal_records`)
//! <dir>/head.snapshot             the head at some WAL position (`snapshot`)
//! <dir>/blocks/<tenant>/<mint>_<maxt>.blk   immutable blocks (`block`)
//! ```
//!
//! # Locking
//!
//! * `writer` (a mutex around the WAL) serialises appends: validation, the WAL write and
//!   fsync, and applying to the head happen in that order under it, so the WAL order is the
//!   head's order and replay reproduces it. Maintenance takes it only for the few changes
//!   that would invalidate a validation in flight (raising a tenant's minimum time,
//!   dropping series) and to snapshot.
//! * `head` (a read-write lock) is held for reading while validating and while a query
//!   copies the compressed pieces it needs (decoding happens after release), and for
//!   writing only while accepted samples are applied and, in batches of a few hundred
//!   series, while maintenance packs or truncates series. Nobody holds it across an
//!   fsync.
//! * `blocks` (a read-write lock) is held only to clone the list of `Arc<Block>`s or swap
//!   entries in it. Queries read the head first and the block list second, so data moving
//!   from the head into a block is seen at least once (duplicates merge away).
//!
//! # Durability
//!
//! An append returns only after its WAL records are fsynced. A cut writes the block
//! (fsync, rename, directory fsync) before the head drops the samples; the snapshot is
//! written the same way before WAL segments are deleted. On open, blocks are loaded first,
//! then the snapshot, then the WAL after the snapshot's position is replayed, skipping
//! samples older than a tenant's newest block (they are in it).

mod append;
mod maintain;
mod open;
mod query;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use sightline_model::{RejectReason, TenantId};
use sightline_wal::Wal;

use crate::block::Block;
use crate::head::Head;

const HOUR_MS: i64 = 3600 * 1000;

/// Tunables of the store.
#[derive(Debug, Clone)]
pub struct TsdbOptions {
    /// `<data>/tsdb`: holds `wal/`, `blocks/` and the head snapshot.
    pub dir: PathBuf,
    /// The time range of a block cut from the head (default 2 h).
    pub block_duration_ms: i64,
    /// Blocks whose whole range is older than now − retention are deleted (default 15 d).
    pub retention_ms: i64,
    /// How much older than its series' newest sample a sample may be and still be accepted
    /// (default 10 min).
    pub out_of_order_window_ms: i64,
    /// Most head series a tenant may have; new series beyond it are refused.
    pub max_series_per_tenant: usize,
    /// Samples more than this ahead of the wall clock are refused (Mimir's
    /// `creation_grace_period`, default 10 min).
    pub future_grace_ms: i64,
    /// Size at which a WAL segment is closed and a new one started.
    pub wal_segment_bytes: u64,
}

impl Default for TsdbOptions {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("data/tsdb"),
            block_duration_ms: 2 * HOUR_MS,
            retention_ms: 15 * 24 * HOUR_MS,
            out_of_order_window_ms: 10 * 60 * 1000,
            max_series_per_tenant: 1_000_000,
            future_grace_ms: 10 * 60 * 1000,
            wal_segment_bytes: 32 << 20,
        }
    }
}

/// Figures for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TsdbStats {
    pub head_series: u64,
    /// Head series per tenant, sorted by tenant.
    pub head_series_by_tenant: Vec<(TenantId, u64)>,
    pub head_samples: u64,
    /// Bytes of compressed sample data in the head.
    pub head_chunk_bytes: u64,
    /// Estimated heap bytes of the head: sample data, series structs, labels, symbols,
    /// postings and lookup tables (allocator overhead estimated). Divide by `head_series`
    /// for the memory per active series.
    pub head_memory_bytes: u64,
    pub blocks: u64,
    pub block_bytes: u64,
    pub block_samples: u64,
    /// Heap bytes of block indexes currently loaded (they are loaded on demand).
    pub block_index_memory_bytes: u64,
    /// Samples accepted since open (idempotent re-sends included).
    pub samples_appended: u64,
    /// Samples refused since open, for every reason (zeros included).
    pub samples_refused: Vec<(RejectReason, u64)>,
}

/// What one [`Tsdb::maintain`] call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintainReport {
    /// Blocks written from the head.
    pub blocks_cut: usize,
    /// Compactions done (each writes one block from several).
    pub compactions: usize,
    /// Blocks deleted because their range is past retention.
    pub blocks_deleted: usize,
    /// Head series dropped because no samples were left in them.
    pub series_dropped: usize,
    /// Head series whose full chunks were packed into pco columns.
    pub series_packed: usize,
    pub snapshot_written: bool,
    pub wal_segments_removed: usize,
}

struct Writer {
    wal: Wal,
    next_id: u32,
    wal_bytes_since_snapshot: u64,
}

const REASONS: [RejectReason; 4] = [
    RejectReason::OutOfOrder,
    RejectReason::TooOld,
    RejectReason::DuplicateTimestamp,
    RejectReason::SeriesLimit,
];

fn reason_index(r: RejectReason) -> usize {
    REASONS.iter().position(|&x| x == r).unwrap_or(0)
}

/// The time-series store. `Send + Sync`; share it as `Arc<Tsdb>`.
pub struct Tsdb {
    options: TsdbOptions,
    writer: Mutex<Writer>,
    head: RwLock<Head>,
    /// Per tenant, sorted by `mint`.
    blocks: RwLock<BTreeMap<TenantId, Vec<Arc<Block>>>>,
    maintain_lock: Mutex<()>,
    appended: AtomicU64,
    refused: [AtomicU64; 4],
}

impl std::fmt::Debug for Tsdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tsdb")
            .field("options", &self.options)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl Tsdb {
    pub fn options(&self) -> &TsdbOptions {
        &self.options
    }

    /// Figures for `/metrics` (walks the head: about a millisecond per 100k series).
    pub fn stats(&self) -> TsdbStats {
        let mut st = TsdbStats::default();
        {
            let head = read(&self.head);
            for (tenant, th) in &head.tenants {
                st.head_series += th.series.len() as u64;
                st.head_series_by_tenant
                    .push((tenant.clone(), th.series.len() as u64));
                st.head_memory_bytes += th.index_heap_bytes() as u64;
                for s in &th.series {
                    st.head_samples += s.sample_count() as u64;
                    st.head_chunk_bytes += s.data_bytes() as u64;
                    st.head_memory_bytes += s.heap_bytes() as u64;
                }
            }
        }
        for list in read(&self.blocks).values() {
            for b in list {
                st.blocks += 1;
                st.block_bytes += b.file_bytes;
                st.block_samples += b.meta.num_samples;
                st.block_index_memory_bytes += b.loaded_index_bytes() as u64;
            }
        }
        st.samples_appended = self.appended.load(Ordering::Relaxed);
        st.samples_refused = REASONS
            .iter()
            .map(|&r| (r, self.refused[reason_index(r)].load(Ordering::Relaxed)))
            .collect();
        st
    }
}
