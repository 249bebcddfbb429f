//! [`Tsdb::append`], in three steps under the writer lock (see the locking notes in
//! [`super`]): validate every batch against the head into a [`Plan`] ([`Validation`]),
//! write the plans to the WAL and fsync once ([`write_wal`]), then apply them to the head
//! ([`Tsdb::apply_to_head`]). The WAL order is therefore the head's order, and replay
//! reproduces it.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::Ordering;

use hashbrown::HashTable;
use sightline_model::{
    AppendReport, Labels, MetricBatch, MetricSeries, RejectReason, Sample, TenantId,
};

use super::{Tsdb, TsdbOptions, Writer, lock, read, reason_index, write};
use crate::error::TsdbError;
use crate::head::{Head, TenantHead, labels_hash};
use crate::series::MemSeries;
use crate::wal_records::{self, KIND_APPEND};

/// Bytes a WAL record costs beyond its payload (the segment's record header: length, CRC,
/// sequence number, kind), counted towards the snapshot trigger.
const WAL_RECORD_OVERHEAD: u64 = 17;

impl Tsdb {
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
        let mut writer = lock(&self.writer);
        let plans = {
            let head = read(&self.head);
            let mut validation = Validation::new(&head, &self.options, writer.next_id, batches);
            let mut plans = Vec::with_capacity(batches.len());
            for (batch, report) in batches.iter().zip(&mut reports) {
                plans.push(validation.plan_batch(batch, report)?);
            }
            // Ids handed out are never handed out again, even if the WAL write fails below
            // (a partly written record may name them).
            writer.next_id = validation.next_id;
            plans
        };
        if write_wal(&mut writer, &plans)? {
            self.apply_to_head(plans);
        }
        drop(writer);
        self.count_outcomes(&reports);
        Ok(reports)
    }

    /// Applies fsynced plans to the head, under its write lock. The caller holds the writer
    /// lock, so no validation runs between the WAL write and this.
    fn apply_to_head(&self, plans: Vec<Plan<'_>>) {
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

    /// Adds the reports' accepted and refused samples to the totals of [`Tsdb::stats`].
    fn count_outcomes(&self, reports: &[AppendReport]) {
        for r in reports {
            self.appended.fetch_add(r.accepted, Ordering::Relaxed);
            for &(reason, n) in &r.rejected {
                self.refused[reason_index(reason)].fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

/// Stores an accepted (or replayed) sample; returns whether it was new.
pub(super) fn apply_sample(s: &mut MemSeries, t: i64, v: f64) -> Result<bool, String> {
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

/// Free space a failed WAL must find before it takes appends again.
const WAL_REPAIR_PROBE_BYTES: u64 = 1 << 20;

/// Writes one WAL record per plan that accepted samples and fsyncs them together; returns
/// whether anything was written.
fn write_wal(writer: &mut Writer, plans: &[Plan<'_>]) -> Result<bool, TsdbError> {
    // After a failed write (a full disk) the WAL refuses appends until it is cut back to
    // what was synced and space is free again; until then every append fails, retryably.
    writer.wal.repair(WAL_REPAIR_PROBE_BYTES)?;
    let mut written = false;
    for plan in plans {
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
        writer.wal_bytes_since_snapshot += payload.len() as u64 + WAL_RECORD_OVERHEAD;
        written = true;
    }
    if written {
        writer.wal.sync()?;
    }
    Ok(written)
}

/// What one batch will write: new series, then runs of `samples` per series id.
struct Plan<'b> {
    tenant: &'b TenantId,
    new_series: Vec<(u32, &'b Labels)>,
    sets: Vec<(u32, Range<usize>)>,
    samples: Vec<Sample>,
}

/// The validation of one append call: the state of every series it touches, so that
/// samples of a series sent twice in a group are checked against each other as well as
/// against the head, and the series ids and per-tenant series counts handed out so far.
struct Validation<'h, 'b> {
    head: &'h Head,
    out_of_order_window: i64,
    /// Samples after this (wall clock + grace) are refused.
    future_limit: i64,
    max_series_per_tenant: usize,
    /// The next unused series id.
    next_id: u32,
    series: Vec<Pending<'b>>,
    /// (tenant, labels) → position in `series`, hashed by the labels' hash.
    by_key: HashTable<usize>,
    new_per_tenant: HashMap<&'b TenantId, usize>,
}

impl<'h, 'b> Validation<'h, 'b> {
    fn new(
        head: &'h Head,
        options: &TsdbOptions,
        next_id: u32,
        batches: &[&'b MetricBatch],
    ) -> Self {
        Validation {
            head,
            out_of_order_window: options.out_of_order_window_ms,
            future_limit: crate::head::wall_ms().saturating_add(options.future_grace_ms),
            max_series_per_tenant: options.max_series_per_tenant,
            next_id,
            series: Vec::new(),
            by_key: HashTable::with_capacity(batches.iter().map(|b| b.series.len()).sum()),
            new_per_tenant: HashMap::new(),
        }
    }

    /// Checks every sample of `batch`, recording refusals and idempotent re-sends in
    /// `report`; returns what is to be written.
    fn plan_batch(
        &mut self,
        batch: &'b MetricBatch,
        report: &mut AppendReport,
    ) -> Result<Plan<'b>, TsdbError> {
        let tenant = &batch.tenant;
        let th = self.head.tenants.get(tenant);
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
            let Some(si) = self.series_state(tenant, th, ms, report)? else {
                continue;
            };
            let st = &mut self.series[si];
            let head_series = if st.exists {
                th.and_then(|t| t.get(st.id))
            } else {
                None
            };
            let run_start = plan.samples.len();
            for &sample in &ms.samples {
                if sample.t > self.future_limit {
                    let limit = self.future_limit;
                    report.reject(RejectReason::TooFarInFuture, || {
                        format!(
                            "sample for series {} is too far in the future: timestamp {} is after {limit} (now + future_grace)",
                            st.labels.to_canonical(),
                            sample.t
                        )
                    });
                    continue;
                }
                if st.admit(
                    sample,
                    boundary,
                    self.out_of_order_window,
                    head_series,
                    report,
                ) {
                    plan.samples.push(sample);
                    report.accepted += 1;
                }
            }
            if plan.samples.len() > run_start {
                if !st.defined {
                    plan.new_series.push((st.id, st.labels));
                    st.defined = true;
                }
                plan.sets.push((st.id, run_start..plan.samples.len()));
            }
        }
        Ok(plan)
    }

    /// The position in `self.series` of `ms`'s series: one seen earlier in this call, else
    /// one in the head, else a new series with a fresh id. `None` when the series is new
    /// and the tenant is at its series limit: all its samples are then refused.
    fn series_state(
        &mut self,
        tenant: &'b TenantId,
        th: Option<&TenantHead>,
        ms: &'b MetricSeries,
        report: &mut AppendReport,
    ) -> Result<Option<usize>, TsdbError> {
        let hash = labels_hash(&ms.labels);
        let series = &self.series;
        let seen = self.by_key.find(hash, |&i| {
            series[i].tenant == tenant && *series[i].labels == ms.labels
        });
        if let Some(&i) = seen {
            return Ok(Some(i));
        }
        let existing = th.and_then(|t| t.find_hashed(hash, &ms.labels).map(|id| (t, id)));
        let state = match existing {
            Some((t, id)) => {
                let s = t.get(id).expect("found series exists");
                Pending::in_head(tenant, &ms.labels, hash, id, s)
            }
            None => {
                let have = th.map_or(0, |t| t.series.len())
                    + self.new_per_tenant.get(tenant).copied().unwrap_or(0);
                let limit = self.max_series_per_tenant;
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
                    return Ok(None);
                }
                let id = self.next_id;
                self.next_id = id.checked_add(1).ok_or(TsdbError::SeriesIdsExhausted)?;
                *self.new_per_tenant.entry(tenant).or_default() += 1;
                Pending::new_series(tenant, &ms.labels, hash, id)
            }
        };
        self.series.push(state);
        let i = self.series.len() - 1;
        let series = &self.series;
        self.by_key.insert_unique(hash, i, |&j| series[j].hash);
        Ok(Some(i))
    }
}

/// Validation state of one series during one append call.
struct Pending<'b> {
    tenant: &'b TenantId,
    labels: &'b Labels,
    hash: u64,
    id: u32,
    /// Whether the series is in the head (else it is created by this call).
    exists: bool,
    /// Whether its definition is in a plan already (or it is in the head).
    defined: bool,
    max_t: i64,
    last_bits: u64,
    /// Whether `max_t` was accepted in this call (not yet in the head).
    newest_is_pending: bool,
    /// Samples accepted in this call besides the newest (for duplicate checks of
    /// out-of-order ones); empty, so allocation-free, in the usual one-sample case.
    accepted: Vec<(i64, u64)>,
}

impl<'b> Pending<'b> {
    fn in_head(
        tenant: &'b TenantId,
        labels: &'b Labels,
        hash: u64,
        id: u32,
        s: &MemSeries,
    ) -> Self {
        let (max_t, last_bits) = if s.is_empty() {
            (i64::MIN, 0)
        } else {
            (s.max_t, s.value_at(s.max_t).unwrap_or(0))
        };
        Pending {
            tenant,
            labels,
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

    fn new_series(tenant: &'b TenantId, labels: &'b Labels, hash: u64, id: u32) -> Self {
        Pending {
            tenant,
            labels,
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

    /// Checks one sample against the tenant's boundary, the out-of-order window and what
    /// is stored at its timestamp (in the head or earlier in this call). Returns whether
    /// it is to be written, and then remembers it for the checks of later samples;
    /// refusals and idempotent re-sends are counted in `report` here.
    fn admit(
        &mut self,
        Sample { t, v }: Sample,
        boundary: i64,
        window: i64,
        head_series: Option<&MemSeries>,
        report: &mut AppendReport,
    ) -> bool {
        let bits = v.to_bits();
        if t < boundary {
            report.reject(RejectReason::TooOld, || {
                format!(
                    "too old sample for series {}: timestamp {t} is before the head's minimum time {boundary} (older data is already in blocks)",
                    self.labels.to_canonical()
                )
            });
            return false;
        }
        if self.max_t != i64::MIN && t < self.max_t.saturating_sub(window) {
            let newest = self.max_t;
            report.reject(RejectReason::OutOfOrder, || {
                format!(
                    "out of order sample for series {}: timestamp {t} is {} ms older than the newest sample {newest} (out-of-order window {window} ms)",
                    self.labels.to_canonical(),
                    newest - t
                )
            });
            return false;
        }
        match self.stored_bits(t, head_series) {
            Some(b) if b == bits => {
                // Idempotent re-send: counted, not written again.
                report.accepted += 1;
                return false;
            }
            Some(b) => {
                report.reject(RejectReason::DuplicateTimestamp, || {
                    format!(
                        "duplicate sample for series {}: timestamp {t} already has value {} and got {v}",
                        self.labels.to_canonical(),
                        f64::from_bits(b)
                    )
                });
                return false;
            }
            None => {}
        }
        if self.max_t == i64::MIN || t > self.max_t {
            if self.newest_is_pending {
                // The previous newest stays findable for duplicate checks.
                self.accepted.push((self.max_t, self.last_bits));
            }
            self.max_t = t;
            self.last_bits = bits;
            self.newest_is_pending = true;
        } else {
            self.accepted.push((t, bits));
        }
        true
    }

    /// The value bits already stored (or accepted in this call) at `t`, if any.
    fn stored_bits(&self, t: i64, head_series: Option<&MemSeries>) -> Option<u64> {
        if self.max_t == i64::MIN || t > self.max_t {
            None
        } else if t == self.max_t {
            Some(self.last_bits)
        } else {
            self.accepted
                .iter()
                .find(|a| a.0 == t)
                .map(|a| a.1)
                .or_else(|| head_series.and_then(|s| s.value_at(t)))
        }
    }
}
