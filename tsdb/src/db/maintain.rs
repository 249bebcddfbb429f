//! Housekeeping: [`Tsdb::maintain`] (cuts the head into blocks, drops empty series, packs
//! full chunks, compacts, applies retention, snapshots the head and truncates the WAL) and
//! [`Tsdb::flush`] on shutdown.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sightline_model::{Labels, TenantId};

use super::{MaintainReport, Tsdb, lock, read, write};
use crate::block::{self, Block, BlockWriter};
use crate::compact::{self, Run};
use crate::error::{TsdbError, corrupt, io_err};
use crate::series::PackJob;
use crate::snapshot;

/// Series handled per lock acquisition in maintenance.
const MAINTAIN_BATCH: usize = 256;
/// Series truncated per head write-lock acquisition after a cut (re-encoding costs up to
/// ~100 µs a series: the lock is held for a few milliseconds at a time).
const TRUNCATE_BATCH: usize = 32;

impl Tsdb {
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
        let written = self.write_snapshot_via(&path, &tmp);
        if written.is_err() {
            // A half-written snapshot (a full disk) must not keep holding the space.
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    fn write_snapshot_via(&self, path: &Path, tmp: &Path) -> Result<usize, TsdbError> {
        let file = fs::File::create(tmp).map_err(io_err(tmp))?;
        let seq = {
            let mut w = lock(&self.writer);
            let head = read(&self.head);
            let seq = w.wal.next_seq() - 1;
            snapshot::write(&head, seq, w.next_id, &file, tmp)?;
            w.wal_bytes_since_snapshot = 0;
            seq
        };
        file.sync_all().map_err(io_err(tmp))?;
        drop(file);
        fs::rename(tmp, path).map_err(io_err(path))?;
        block::sync_dir(&self.options.dir)?;
        let removed = lock(&self.writer).wal.remove_through(seq)?;
        Ok(removed)
    }

    /// On shutdown: writes a head snapshot (a faster restart: no WAL to replay) and
    /// deletes the WAL segments it covers.
    pub fn flush(&self) -> Result<(), TsdbError> {
        let _one = lock(&self.maintain_lock);
        self.write_snapshot().map(|_| ())
    }
}
