//! [`Tsdb`]: the store as the server sees it — append with group commit, select, series
//! metadata, maintenance and statistics — tying together the head, the WAL, blocks and
//! compaction.
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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use hashbrown::HashTable;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use sightline_model::{
    AppendReport, LabelMatcher, Labels, MetricBatch, MetricSeries, RejectReason, Sample, TenantId,
};
use sightline_wal::{Wal, WalOptions};

use crate::block::{self, Block, BlockWriter};
use crate::compact::{self, Run};
use crate::error::{TsdbError, corrupt, io_err};
use crate::head::{Head, TenantHead, labels_hash};
use crate::postings::{PostingsSource, select_ids};
use crate::series::{MemSeries, PackJob, SeriesData};
use crate::snapshot;
use crate::wal_records::{self, KIND_APPEND};

const HOUR_MS: i64 = 3600 * 1000;

/// Receives the label pairs of one series.
type PairsVisitor<'v> = dyn FnMut(&mut dyn Iterator<Item = (&str, &str)>) + 'v;
/// Series handled per lock acquisition in maintenance.
const MAINTAIN_BATCH: usize = 256;
/// Series truncated per head write-lock acquisition after a cut (re-encoding costs up to
/// ~100 µs a series: the lock is held for a few milliseconds at a time).
const TRUNCATE_BATCH: usize = 32;

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

/// Stores an accepted (or replayed) sample; returns whether it was new.
fn apply_sample(s: &mut MemSeries, t: i64, v: f64) -> Result<bool, String> {
    if s.is_empty() || t > s.max_t {
        s.append(t, v);
        return Ok(true);
    }
    if s.value_at(t).is_some() {
        return Ok(false);
    }
    s.insert(t, v)?;
    Ok(true)
}

/// Validation state of one series during one append call.
struct Pending<'a> {
    tenant: &'a TenantId,
    labels: &'a Labels,
    hash: u64,
    id: u32,
    exists: bool,
    defined: bool,
    max_t: i64,
    last_bits: u64,
    /// Whether `max_t` was accepted in this call (not yet in the head).
    newest_is_pending: bool,
    /// Samples accepted in this call besides the newest (for duplicate checks of
    /// out-of-order ones); empty, so allocation-free, in the usual one-sample case.
    accepted: Vec<(i64, u64)>,
}

/// What one batch will write: new series, then runs of `samples` per series id.
struct Plan<'a> {
    tenant: &'a TenantId,
    new_series: Vec<(u32, &'a Labels)>,
    sets: Vec<(u32, std::ops::Range<usize>)>,
    samples: Vec<Sample>,
}

impl Tsdb {
    /// Opens the store in `options.dir`: loads blocks, restores the head from its snapshot
    /// and replays the WAL written after it.
    pub fn open(options: TsdbOptions) -> Result<Tsdb, TsdbError> {
        if options.block_duration_ms <= 0 {
            return Err(TsdbError::InvalidOptions(
                "block_duration_ms must be positive".into(),
            ));
        }
        if options.retention_ms <= 0 || options.out_of_order_window_ms < 0 {
            return Err(TsdbError::InvalidOptions(
                "retention_ms must be positive and out_of_order_window_ms not negative".into(),
            ));
        }
        let dir = options.dir.clone();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let blocks = load_blocks(&dir.join("blocks"))?;

        let snap_path = dir.join(snapshot::FILE_NAME);
        let _ = fs::remove_file(snap_path.with_extension("snapshot.tmp"));
        let (mut head, snap_seq, mut next_id) = match snapshot::read(&snap_path)? {
            Some(r) => (r.head, r.wal_seq, r.next_id),
            None => (Head::default(), 0, 0),
        };
        for (tenant, list) in &blocks {
            if let Some(maxt) = list.iter().map(|b| b.meta.maxt).max() {
                let th = head.tenant_mut(tenant);
                th.boundary = th.boundary.max(maxt);
            }
        }

        let wal_dir = dir.join("wal");
        let mut replay_error: Option<TsdbError> = None;
        let mut replayed = 0u64;
        let wal = Wal::open(
            &wal_dir,
            WalOptions {
                segment_bytes: options.wal_segment_bytes,
            },
            |rec| {
                if rec.seq <= snap_seq || replay_error.is_some() {
                    return;
                }
                if rec.kind != KIND_APPEND {
                    tracing::warn!(
                        seq = rec.seq,
                        kind = rec.kind,
                        "skipping unknown tsdb wal record kind"
                    );
                    return;
                }
                match wal_records::decode_append(&rec.payload) {
                    Ok(r) => {
                        replayed += 1;
                        if let Err(e) = replay_record(&mut head, r, &mut next_id) {
                            replay_error =
                                Some(corrupt(&wal_dir, format!("record {}: {e}", rec.seq)));
                        }
                    }
                    Err(e) => {
                        replay_error = Some(corrupt(&wal_dir, format!("record {}: {e}", rec.seq)));
                    }
                }
            },
        )?;
        if let Some(e) = replay_error {
            return Err(e);
        }
        tracing::info!(
            dir = %dir.display(),
            replayed,
            series = head.tenants.values().map(|t| t.series.len()).sum::<usize>(),
            blocks = blocks.values().map(Vec::len).sum::<usize>(),
            "tsdb opened"
        );
        Ok(Tsdb {
            options,
            writer: Mutex::new(Writer {
                wal,
                next_id,
                wal_bytes_since_snapshot: 0,
            }),
            head: RwLock::new(head),
            blocks: RwLock::new(blocks),
            maintain_lock: Mutex::new(()),
            appended: AtomicU64::new(0),
            refused: Default::default(),
        })
    }

    pub fn options(&self) -> &TsdbOptions {
        &self.options
    }

    /// Validates and appends a group of batches with one WAL fsync for the group; returns
    /// one report per batch, in order. Accepted samples are durable and visible to
    /// [`Tsdb::select`] when this returns.
    ///
    /// Rules, per sample: before the tenant's head minimum time (data already in blocks)
    /// → `TooOld`; older than its series' newest sample by more than the out-of-order
    /// window → `OutOfOrder`; an existing timestamp with the same value bits is an
    /// idempotent no-op (counted accepted), with other bits `DuplicateTimestamp`; a new
    /// series beyond the tenant's limit → `SeriesLimit` for all its samples.
    pub fn append(&self, batches: &[&MetricBatch]) -> Result<Vec<AppendReport>, TsdbError> {
        let mut reports = vec![AppendReport::default(); batches.len()];
        if batches.is_empty() {
            return Ok(reports);
        }
        let window = self.options.out_of_order_window_ms;
        let limit = self.options.max_series_per_tenant;
        let mut writer = lock(&self.writer);
        let mut plans: Vec<Plan<'_>> = Vec::with_capacity(batches.len());
        let mut next_id = writer.next_id;
        {
            let head = read(&self.head);
            let mut states: Vec<Pending<'_>> = Vec::new();
            // (tenant, labels) → position in `states`, hashed by the labels' hash.
            let mut by_key: HashTable<usize> =
                HashTable::with_capacity(batches.iter().map(|b| b.series.len()).sum());
            let mut new_per_tenant: HashMap<&TenantId, usize> = HashMap::new();
            for (batch, report) in batches.iter().zip(&mut reports) {
                let tenant = &batch.tenant;
                let th = head.tenants.get(tenant);
                let boundary = th.map_or(i64::MIN, |t| t.boundary);
                let mut plan = Plan {
                    tenant,
                    new_series: Vec::new(),
                    sets: Vec::new(),
                    samples: Vec::with_capacity(batch.sample_count()),
                };
                for ms in &batch.series {
                    if ms.samples.is_empty() {
                        continue;
                    }
                    let hash = labels_hash(&ms.labels);
                    let found = by_key
                        .find(hash, |&i| {
                            states[i].tenant == tenant && *states[i].labels == ms.labels
                        })
                        .copied();
                    let si = match found {
                        Some(i) => i,
                        None => {
                            let existing =
                                th.and_then(|t| t.find_hashed(hash, &ms.labels).map(|id| (t, id)));
                            let state = match existing {
                                Some((t, id)) => {
                                    let s = t.get(id).expect("found series exists");
                                    let (max_t, last_bits) = if s.is_empty() {
                                        (i64::MIN, 0)
                                    } else {
                                        (s.max_t, s.value_at(s.max_t).unwrap_or(0))
                                    };
                                    Pending {
                                        tenant,
                                        labels: &ms.labels,
                                        hash,
                                        id,
                                        exists: true,
                                        defined: true,
                                        max_t,
                                        last_bits,
                                        newest_is_pending: false,
                                        accepted: Vec::new(),
                                    }
                                }
                                None => {
                                    let have = th.map_or(0, |t| t.series.len())
                                        + new_per_tenant.get(tenant).copied().unwrap_or(0);
                                    if have >= limit {
                                        for _ in &ms.samples {
                                            report.reject(RejectReason::SeriesLimit, || {
                                                format!(
                                                    "series limit reached for tenant {:?}: new series {} would exceed the limit of {limit} series",
                                                    tenant.as_str(),
                                                    ms.labels.to_canonical()
                                                )
                                            });
                                        }
                                        continue;
                                    }
                                    let id = next_id;
                                    next_id = next_id
                                        .checked_add(1)
                                        .ok_or(TsdbError::SeriesIdsExhausted)?;
                                    *new_per_tenant.entry(tenant).or_default() += 1;
                                    Pending {
                                        tenant,
                                        labels: &ms.labels,
                                        hash,
                                        id,
                                        exists: false,
                                        defined: false,
                                        max_t: i64::MIN,
                                        last_bits: 0,
                                        newest_is_pending: false,
                                        accepted: Vec::new(),
                                    }
                                }
                            };
                            states.push(state);
                            let i = states.len() - 1;
                            by_key.insert_unique(hash, i, |&j| states[j].hash);
                            i
                        }
                    };
                    let st = &mut states[si];
                    let head_series = if st.exists {
                        th.and_then(|t| t.get(st.id))
                    } else {
                        None
                    };
                    let run_start = plan.samples.len();
                    for &Sample { t, v } in &ms.samples {
                        let bits = v.to_bits();
                        if t < boundary {
                            report.reject(RejectReason::TooOld, || {
                                format!(
                                    "too old sample for series {}: timestamp {t} is before the head's minimum time {boundary} (older data is already in blocks)",
                                    st.labels.to_canonical()
                                )
                            });
                            continue;
                        }
                        if st.max_t != i64::MIN && t < st.max_t.saturating_sub(window) {
                            let newest = st.max_t;
                            report.reject(RejectReason::OutOfOrder, || {
                                format!(
                                    "out of order sample for series {}: timestamp {t} is {} ms older than the newest sample {newest} (out-of-order window {window} ms)",
                                    st.labels.to_canonical(),
                                    newest - t
                                )
                            });
                            continue;
                        }
                        let stored = if st.max_t == i64::MIN || t > st.max_t {
                            None
                        } else if t == st.max_t {
                            Some(st.last_bits)
                        } else {
                            st.accepted
                                .iter()
                                .find(|a| a.0 == t)
                                .map(|a| a.1)
                                .or_else(|| head_series.and_then(|s| s.value_at(t)))
                        };
                        match stored {
                            Some(b) if b == bits => {
                                // Idempotent re-send: counted, not written again.
                                report.accepted += 1;
                                continue;
                            }
                            Some(b) => {
                                report.reject(RejectReason::DuplicateTimestamp, || {
                                    format!(
                                        "duplicate sample for series {}: timestamp {t} already has value {} and got {v}",
                                        st.labels.to_canonical(),
                                        f64::from_bits(b)
                                    )
                                });
                                continue;
                            }
                            None => {}
                        }
                        if st.max_t == i64::MIN || t > st.max_t {
                            if st.newest_is_pending {
                                // The previous newest stays findable for duplicate checks.
                                st.accepted.push((st.max_t, st.last_bits));
                            }
                            st.max_t = t;
                            st.last_bits = bits;
                            st.newest_is_pending = true;
                        } else {
                            st.accepted.push((t, bits));
                        }
                        plan.samples.push(Sample { t, v });
                        report.accepted += 1;
                    }
                    if plan.samples.len() > run_start {
                        if !st.defined {
                            plan.new_series.push((st.id, st.labels));
                            st.defined = true;
                        }
                        plan.sets.push((st.id, run_start..plan.samples.len()));
                    }
                }
                plans.push(plan);
            }
        }
        // Ids handed out are never handed out again, even if the WAL write fails below
        // (a partly written record may name them).
        writer.next_id = next_id;

        let mut written = false;
        for plan in &plans {
            if plan.sets.is_empty() {
                continue;
            }
            let sets: Vec<(u32, &[Sample])> = plan
                .sets
                .iter()
                .map(|(id, r)| (*id, &plan.samples[r.clone()]))
                .collect();
            let payload = wal_records::encode_append(plan.tenant, &plan.new_series, &sets);
            writer.wal.append(KIND_APPEND, &payload)?;
            writer.wal_bytes_since_snapshot += payload.len() as u64 + 17;
            written = true;
        }
        if written {
            writer.wal.sync()?;
            let mut head = write(&self.head);
            let now_wall = crate::head::wall_ms();
            for plan in plans {
                if plan.sets.is_empty() {
                    continue;
                }
                let th = head.tenant_mut(plan.tenant);
                th.last_append_wall_ms = now_wall;
                for (id, labels) in plan.new_series {
                    th.create(id, labels);
                }
                for (id, range) in plan.sets {
                    let s = th.get_mut(id).expect("validated series exists");
                    for &Sample { t, v } in &plan.samples[range] {
                        if let Err(e) = apply_sample(s, t, v) {
                            // Head data is written by this process; a failure to re-encode
                            // is a bug, reported loudly, never a silent loss.
                            tracing::error!(series = id, error = %e, "tsdb head sample insert failed");
                        }
                    }
                }
            }
        }
        drop(writer);
        for r in &reports {
            self.appended.fetch_add(r.accepted, Ordering::Relaxed);
            for &(reason, n) in &r.rejected {
                self.refused[reason_index(reason)].fetch_add(n, Ordering::Relaxed);
            }
        }
        Ok(reports)
    }

    /// The series matching all `matchers` with their samples in `[mint, maxt]`, merged
    /// across blocks and head, deduplicated, sorted by labels. Series without samples in
    /// the range are left out.
    pub fn select(
        &self,
        tenant: &TenantId,
        matchers: &[LabelMatcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<MetricSeries>, TsdbError> {
        if mint > maxt {
            return Ok(Vec::new());
        }
        let mut head_data: Vec<(Labels, SeriesData)> = Vec::new();
        {
            let head = read(&self.head);
            if let Some(th) = head.tenants.get(tenant) {
                for id in select_ids(th, matchers) {
                    let Some(s) = th.get(id) else { continue };
                    if s.is_empty() || s.max_t < mint || s.min_t > maxt {
                        continue;
                    }
                    head_data.push((th.labels_of(s), s.read(mint, maxt)));
                }
            }
        }
        let blocks = self.blocks_overlapping(tenant, mint, maxt);
        let mut runs: BTreeMap<Labels, Vec<Run>> = BTreeMap::new();
        for b in &blocks {
            let index = b.index()?;
            for id in select_ids(&*index, matchers) {
                let i = id as usize;
                let entry = index.series[i];
                if entry.maxt < mint || entry.mint > maxt {
                    continue;
                }
                let (ts, vs) = b.read_series(&index, i)?;
                let start = ts.partition_point(|&t| t < mint);
                let end = ts.partition_point(|&t| t <= maxt);
                if start < end {
                    runs.entry(index.labels(i))
                        .or_default()
                        .push((ts[start..end].to_vec(), vs[start..end].to_vec()));
                }
            }
        }
        for (labels, data) in head_data {
            let (mut ts, mut vs) = (Vec::new(), Vec::new());
            data.decode_into(mint, maxt, &mut ts, &mut vs)
                .map_err(|e| {
                    corrupt(
                        &self.options.dir,
                        format!("head series {}: {e}", labels.to_canonical()),
                    )
                })?;
            if !ts.is_empty() {
                runs.entry(labels).or_default().push((ts, vs));
            }
        }
        Ok(runs
            .into_iter()
            .map(|(labels, r)| {
                let (ts, vs) = compact::merge_runs(r);
                MetricSeries {
                    labels,
                    samples: ts
                        .into_iter()
                        .zip(vs)
                        .map(|(t, v)| Sample { t, v })
                        .collect(),
                }
            })
            .filter(|s| !s.samples.is_empty())
            .collect())
    }

    fn blocks_overlapping(&self, tenant: &TenantId, mint: i64, maxt: i64) -> Vec<Arc<Block>> {
        read(&self.blocks)
            .get(tenant)
            .map(|l| {
                l.iter()
                    .filter(|b| b.overlaps(mint, maxt))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Calls `visit` with the label pairs of every series (head and blocks, possibly more
    /// than once) that matches any matcher set and has data in `[mint, maxt]`.
    fn visit_series(
        &self,
        tenant: &TenantId,
        matcher_sets: &[Vec<LabelMatcher>],
        mint: i64,
        maxt: i64,
        visit: &mut PairsVisitor<'_>,
    ) -> Result<(), TsdbError> {
        fn ids(index: &dyn PostingsSource, sets: &[Vec<LabelMatcher>]) -> Vec<u32> {
            if sets.is_empty() {
                return index.all_ids();
            }
            let mut all: Vec<u32> = sets.iter().flat_map(|m| select_ids(index, m)).collect();
            all.sort_unstable();
            all.dedup();
            all
        }
        {
            let head = read(&self.head);
            if let Some(th) = head.tenants.get(tenant) {
                for id in ids(th, matcher_sets) {
                    if let Some(s) = th.get(id)
                        && !s.is_empty()
                        && s.max_t >= mint
                        && s.min_t <= maxt
                    {
                        visit(&mut th.pairs(s));
                    }
                }
            }
        }
        for b in self.blocks_overlapping(tenant, mint, maxt) {
            let index = b.index()?;
            for id in ids(&*index, matcher_sets) {
                let e = index.series[id as usize];
                if e.maxt >= mint && e.mint <= maxt {
                    visit(&mut index.pairs(id as usize));
                }
            }
        }
        Ok(())
    }

    /// Label sets of the series with samples in `[mint, maxt]` (by their time bounds)
    /// matching any of the matcher sets (none = all series), sorted.
    pub fn series(
        &self,
        tenant: &TenantId,
        matcher_sets: &[Vec<LabelMatcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Labels>, TsdbError> {
        let mut out = BTreeSet::new();
        self.visit_series(tenant, matcher_sets, mint, maxt, &mut |pairs| {
            out.insert(Labels::from_pairs(pairs));
        })?;
        Ok(out.into_iter().collect())
    }

    /// Label names of those series, sorted.
    pub fn label_names(
        &self,
        tenant: &TenantId,
        matcher_sets: &[Vec<LabelMatcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, TsdbError> {
        let mut out: BTreeSet<String> = BTreeSet::new();
        self.visit_series(tenant, matcher_sets, mint, maxt, &mut |pairs| {
            for (k, _) in pairs {
                if !out.contains(k) {
                    out.insert(k.to_string());
                }
            }
        })?;
        Ok(out.into_iter().collect())
    }

    /// Values of label `name` among those series, sorted.
    pub fn label_values(
        &self,
        tenant: &TenantId,
        name: &str,
        matcher_sets: &[Vec<LabelMatcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, TsdbError> {
        let mut out: BTreeSet<String> = BTreeSet::new();
        self.visit_series(tenant, matcher_sets, mint, maxt, &mut |pairs| {
            for (k, v) in pairs {
                if k == name {
                    if !out.contains(v) {
                        out.insert(v.to_string());
                    }
                    break;
                }
            }
        })?;
        Ok(out.into_iter().collect())
    }

    /// Housekeeping (call about every minute):
    ///
    /// 1. cut: while a tenant's head spans more than 1.5 block durations (Prometheus's
    ///    rule; samples more than half a block after `now_ms` do not count), or its newest
    ///    sample is that old relative to `now_ms` and nothing was appended for as long by
    ///    the wall clock (an idle tenant; a backfill of old samples is not idle), its
    ///    oldest aligned block range is written to a block and dropped from the head;
    /// 2. series left without samples are dropped;
    /// 3. full Gorilla chunks are packed into pco columns (memory);
    /// 4. compaction (see [`crate::compact`]) and retention (blocks whose range ended
    ///    before `now_ms − retention`);
    /// 5. after a cut, or once the WAL since the last snapshot outgrows the head, a head
    ///    snapshot is written and the WAL segments it covers are deleted;
    /// 6. block indexes unused since the previous call are unloaded.
    pub fn maintain(&self, now_ms: i64) -> Result<MaintainReport, TsdbError> {
        let _one = lock(&self.maintain_lock);
        let mut report = MaintainReport::default();
        let block = self.options.block_duration_ms;
        let tenants: Vec<TenantId> = read(&self.head).tenants.keys().cloned().collect();
        for tenant in &tenants {
            let last_append = read(&self.head)
                .tenants
                .get(tenant)
                .map_or(i64::MIN, |t| t.last_append_wall_ms);
            // `now_ms` is the wall clock in the server (tests may run it ahead).
            let appended_lately = now_ms.saturating_sub(last_append) <= block / 2 * 3;
            while let Some((min, max)) = self.head_range(tenant) {
                let span_limit = block / 2 * 3;
                // A sample stamped far in the future must not push the head's recent data
                // into blocks (which would refuse everything on time as too old): the span
                // counts only up to half a block past now.
                let max_counted = max.min(now_ms.saturating_add(block / 2));
                let idle = now_ms.saturating_sub(max) > span_limit && !appended_lately;
                if max_counted - min <= span_limit && !idle {
                    break;
                }
                let start = min.div_euclid(block) * block;
                let cut = start + block;
                self.cut_block(tenant, start, cut)?;
                report.blocks_cut += 1;
            }
            report.series_dropped += self.drop_empty_series(tenant);
            report.series_packed += self.pack_series(tenant)?;
        }

        let ranges = compact::ranges(block, self.options.retention_ms);
        let block_tenants: Vec<TenantId> = read(&self.blocks).keys().cloned().collect();
        for tenant in &block_tenants {
            let boundary = read(&self.head)
                .tenants
                .get(tenant)
                .map_or(i64::MIN, |t| t.boundary);
            loop {
                let list: Vec<Arc<Block>> =
                    read(&self.blocks).get(tenant).cloned().unwrap_or_default();
                let metas: Vec<(i64, i64)> =
                    list.iter().map(|b| (b.meta.mint, b.meta.maxt)).collect();
                let Some(group) = compact::plan(&metas, &ranges, boundary) else {
                    break;
                };
                let inputs: Vec<Arc<Block>> = group.iter().map(|&i| list[i].clone()).collect();
                let out = compact::compact(&self.tenant_block_dir(tenant), &inputs)?;
                let new = match out {
                    Some((path, _)) => Some(Arc::new(Block::open(&path)?)),
                    None => None,
                };
                self.replace_blocks(tenant, &inputs, new);
                report.compactions += 1;
            }
            let cutoff = now_ms.saturating_sub(self.options.retention_ms);
            let expired: Vec<Arc<Block>> = read(&self.blocks)
                .get(tenant)
                .map(|l| {
                    l.iter()
                        .filter(|b| b.meta.maxt <= cutoff)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            if !expired.is_empty() {
                report.blocks_deleted += expired.len();
                self.replace_blocks(tenant, &expired, None);
            }
        }

        let wal_grown = {
            let w = lock(&self.writer);
            let floor = self.options.wal_segment_bytes.saturating_mul(4);
            w.wal_bytes_since_snapshot > floor.max(self.head_data_bytes().saturating_mul(2))
        };
        if report.blocks_cut > 0 || report.series_dropped > 0 || wal_grown {
            report.wal_segments_removed = self.write_snapshot()?;
            report.snapshot_written = true;
        }
        for list in read(&self.blocks).values() {
            for b in list {
                b.evict_if_idle();
            }
        }
        Ok(report)
    }

    fn tenant_block_dir(&self, tenant: &TenantId) -> PathBuf {
        self.options.dir.join("blocks").join(tenant.as_str())
    }

    /// Oldest and newest sample time of a tenant's head.
    fn head_range(&self, tenant: &TenantId) -> Option<(i64, i64)> {
        let head = read(&self.head);
        let th = head.tenants.get(tenant)?;
        let mut range: Option<(i64, i64)> = None;
        for s in th.series.iter().filter(|s| !s.is_empty()) {
            range = Some(match range {
                None => (s.min_t, s.max_t),
                Some((a, b)) => (a.min(s.min_t), b.max(s.max_t)),
            });
        }
        range
    }

    /// Writes the head's samples in `[start, cut)` of a tenant to a block and drops them
    /// from the head.
    fn cut_block(&self, tenant: &TenantId, start: i64, cut: i64) -> Result<(), TsdbError> {
        // From here on no append can add samples before `cut`: the data to write is fixed.
        {
            let _w = lock(&self.writer);
            let mut head = write(&self.head);
            let th = head.tenant_mut(tenant);
            th.boundary = th.boundary.max(cut);
        }
        let mut order: Vec<(Labels, u32)> = {
            let head = read(&self.head);
            let Some(th) = head.tenants.get(tenant) else {
                return Ok(());
            };
            th.series
                .iter()
                .filter(|s| !s.is_empty() && s.min_t < cut)
                .map(|s| (th.labels_of(s), s.id))
                .collect()
        };
        order.sort_unstable();
        let mut writer = BlockWriter::create(&self.tenant_block_dir(tenant), start, cut)?;
        for part in order.chunks(MAINTAIN_BATCH) {
            let data: Vec<Result<Run, String>> = {
                let head = read(&self.head);
                let th = head.tenants.get(tenant);
                part.iter()
                    .map(|(_, id)| {
                        th.and_then(|t| t.get(*id))
                            .map_or(Ok((Vec::new(), Vec::new())), |s| s.read_before(cut))
                    })
                    .collect()
            };
            for ((labels, _), d) in part.iter().zip(data) {
                let (ts, vs) = d.map_err(|e| {
                    corrupt(
                        &self.options.dir,
                        format!("head series {}: {e}", labels.to_canonical()),
                    )
                })?;
                writer.add(labels, &ts, &vs)?;
            }
        }
        if writer.series_count() > 0 {
            let (path, _) = writer.finish(start, cut, 1)?;
            let b = Arc::new(Block::open(&path)?);
            self.replace_blocks(tenant, &[], Some(b));
        }
        for part in order.chunks(TRUNCATE_BATCH) {
            let mut head = write(&self.head);
            let th = head.tenant_mut(tenant);
            for (labels, id) in part {
                if let Some(s) = th.get_mut(*id) {
                    s.truncate_before(cut).map_err(|e| {
                        corrupt(
                            &self.options.dir,
                            format!("head series {}: {e}", labels.to_canonical()),
                        )
                    })?;
                }
            }
        }
        Ok(())
    }

    fn drop_empty_series(&self, tenant: &TenantId) -> usize {
        let _w = lock(&self.writer);
        let mut head = write(&self.head);
        let th = head.tenant_mut(tenant);
        let empty: Vec<u32> = th
            .series
            .iter()
            .filter(|s| s.is_empty())
            .map(|s| s.id)
            .collect();
        th.remove(&empty);
        empty.len()
    }

    /// Packs full chunks into pco columns: jobs are copied under the read lock, compressed
    /// without any lock (~50–100 µs a series), and installed under the write lock.
    fn pack_series(&self, tenant: &TenantId) -> Result<usize, TsdbError> {
        let ids: Vec<u32> = {
            let head = read(&self.head);
            let Some(th) = head.tenants.get(tenant) else {
                return Ok(0);
            };
            th.series
                .iter()
                .filter(|s| s.has_sealed())
                .map(|s| s.id)
                .collect()
        };
        let mut packed = 0;
        for part in ids.chunks(MAINTAIN_BATCH) {
            let jobs: Vec<(u32, PackJob)> = {
                let head = read(&self.head);
                let Some(th) = head.tenants.get(tenant) else {
                    return Ok(packed);
                };
                part.iter()
                    .filter_map(|&id| th.get(id).and_then(|s| s.pack_job()).map(|j| (id, j)))
                    .collect()
            };
            let done: Vec<(u32, PackJob, Arc<[u8]>)> = jobs
                .into_iter()
                .map(|(id, job)| job.run().map(|p| (id, job, p)))
                .collect::<Result<_, _>>()
                .map_err(TsdbError::Encode)?;
            let mut head = write(&self.head);
            let th = head.tenant_mut(tenant);
            for (id, job, p) in done {
                if let Some(s) = th.get_mut(id)
                    && s.commit_pack(&job, p)
                {
                    packed += 1;
                }
            }
        }
        Ok(packed)
    }

    /// Swaps blocks of a tenant: removes `old` (deleting their files) and adds `new`.
    fn replace_blocks(&self, tenant: &TenantId, old: &[Arc<Block>], new: Option<Arc<Block>>) {
        {
            let mut blocks = write(&self.blocks);
            let list = blocks.entry(tenant.clone()).or_default();
            list.retain(|b| !old.iter().any(|o| Arc::ptr_eq(o, b)));
            if let Some(n) = new {
                list.push(n);
                list.sort_by_key(|b| (b.meta.mint, b.meta.maxt));
            }
        }
        for b in old {
            // Readers holding the block keep reading through its open file.
            if let Err(e) = fs::remove_file(&b.path) {
                tracing::warn!(path = %b.path.display(), error = %e, "could not delete block");
            }
        }
    }

    fn head_data_bytes(&self) -> u64 {
        read(&self.head)
            .tenants
            .values()
            .flat_map(|t| t.series.iter())
            .map(|s| s.data_bytes() as u64)
            .sum()
    }

    /// Writes a head snapshot and deletes the WAL segments it covers; returns how many.
    fn write_snapshot(&self) -> Result<usize, TsdbError> {
        let path = self.options.dir.join(snapshot::FILE_NAME);
        let tmp = path.with_extension("snapshot.tmp");
        let file = fs::File::create(&tmp).map_err(io_err(&tmp))?;
        let seq = {
            let mut w = lock(&self.writer);
            let head = read(&self.head);
            let seq = w.wal.next_seq() - 1;
            snapshot::write(&head, seq, w.next_id, &file, &tmp)?;
            w.wal_bytes_since_snapshot = 0;
            seq
        };
        file.sync_all().map_err(io_err(&tmp))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        block::sync_dir(&self.options.dir)?;
        let removed = lock(&self.writer).wal.remove_through(seq)?;
        Ok(removed)
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

    /// On shutdown: writes a head snapshot (a faster restart: no WAL to replay) and
    /// deletes the WAL segments it covers.
    pub fn flush(&self) -> Result<(), TsdbError> {
        let _one = lock(&self.maintain_lock);
        self.write_snapshot().map(|_| ())
    }
}

/// Applies one replayed WAL record.
fn replay_record(
    head: &mut Head,
    rec: wal_records::AppendRecord,
    next_id: &mut u32,
) -> Result<(), String> {
    let th: &mut TenantHead = head.tenant_mut(&rec.tenant);
    let mut remap: HashMap<u32, u32> = HashMap::new();
    for (id, labels) in &rec.new_series {
        *next_id = (*next_id).max(id.saturating_add(1));
        match th.find(labels) {
            Some(existing) if existing != *id => {
                remap.insert(*id, existing);
            }
            Some(_) => {}
            None if th.get(*id).is_some() => {
                return Err(format!("series id {id} is defined twice"));
            }
            None => th.create(*id, labels),
        }
    }
    let boundary = th.boundary;
    for (id, samples) in rec.sets {
        let id = remap.get(&id).copied().unwrap_or(id);
        let Some(s) = th.get_mut(id) else {
            // A series dropped from the head (all its samples are in blocks) while this
            // record was still in the WAL: its samples are older than the boundary.
            if samples.iter().any(|x| x.t >= boundary) {
                return Err(format!("samples for unknown series id {id}"));
            }
            continue;
        };
        for Sample { t, v } in samples {
            if t >= boundary {
                apply_sample(s, t, v)?;
            }
        }
    }
    Ok(())
}

/// Opens every tenant's blocks, removing unfinished (`.tmp`) files and blocks that lie
/// inside another block's range (inputs of a compaction that finished before a crash).
fn load_blocks(dir: &Path) -> Result<BTreeMap<TenantId, Vec<Arc<Block>>>, TsdbError> {
    let mut out = BTreeMap::new();
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let tdir = entry.path();
        if !tdir.is_dir() {
            continue;
        }
        let Some(tenant) = entry
            .file_name()
            .to_str()
            .and_then(|n| TenantId::new(n).ok())
        else {
            tracing::warn!(path = %tdir.display(), "ignoring a directory that is not a tenant id");
            continue;
        };
        let mut list: Vec<Arc<Block>> = Vec::new();
        for f in fs::read_dir(&tdir).map_err(io_err(&tdir))? {
            let path = f.map_err(io_err(&tdir))?.path();
            match path.extension().and_then(|e| e.to_str()) {
                Some("tmp") => {
                    let _ = fs::remove_file(&path);
                }
                Some(block::EXTENSION) => list.push(Arc::new(Block::open(&path)?)),
                _ => {}
            }
        }
        list.sort_by(|a, b| {
            (
                a.meta.mint,
                std::cmp::Reverse(a.meta.maxt),
                std::cmp::Reverse(a.meta.level),
                &a.path,
            )
                .cmp(&(
                    b.meta.mint,
                    std::cmp::Reverse(b.meta.maxt),
                    std::cmp::Reverse(b.meta.level),
                    &b.path,
                ))
        });
        let mut kept: Vec<Arc<Block>> = Vec::new();
        for b in list {
            if let Some(outer) = kept
                .iter()
                .find(|k| k.meta.mint <= b.meta.mint && b.meta.maxt <= k.meta.maxt)
            {
                tracing::info!(
                    path = %b.path.display(),
                    inside = %outer.path.display(),
                    "removing a block already compacted into another"
                );
                fs::remove_file(&b.path).map_err(io_err(&b.path))?;
                continue;
            }
            kept.push(b);
        }
        kept.sort_by_key(|b| (b.meta.mint, b.meta.maxt));
        if !kept.is_empty() {
            out.insert(tenant, kept);
        }
    }
    Ok(out)
}
