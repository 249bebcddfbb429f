//! Compaction: merging adjacent blocks of one tenant into larger ones, so that a query over
//! days opens few files and pco sees long runs (a 15 s counter costs ~0.98 bytes a sample
//! in a 2 h block and ~0.8 in a 6 h one).
//!
//! Ranges are the block duration times 1, 3 and 12 (2 h → 6 h → 24 h by default), the
//! larger ones kept only while they are at most a tenth of the retention and at most a
//! day, so that retention still frees space in steps of ≤ 10 %. A window `[w, w + R)`
//! aligned to a range `R` is compacted once the head has moved past it (no block can land
//! in it any more) and it holds at least two blocks, all inside it. Merging reads the
//! inputs series by series in label order (a k-way merge, never a whole block in
//! memory), deduplicates equal timestamps, and writes one block; the inputs are deleted
//! only after the output is durable. A crash in between leaves the inputs inside the
//! output's range: [`crate::Tsdb::open`] removes such contained blocks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sightline_model::Labels;

use crate::block::{Block, BlockMeta, BlockWriter};
use crate::error::TsdbError;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// A time-sorted run of one series' samples: timestamps and values.
pub type Run = (Vec<i64>, Vec<f64>);

/// The block ranges in use for a block duration and a retention.
pub fn ranges(block_ms: i64, retention_ms: i64) -> Vec<i64> {
    let cap = (retention_ms / 10).min(DAY_MS).max(block_ms);
    [1, 3, 12]
        .into_iter()
        .map(|m| block_ms.saturating_mul(m))
        .filter(|&r| r <= cap)
        .collect()
}

/// The positions (in `blocks`, `(mint, maxt)` ranges sorted by `mint`) of the next group
/// to compact, if any.
pub fn plan(blocks: &[(i64, i64)], ranges: &[i64], boundary: i64) -> Option<Vec<usize>> {
    for &range in ranges.iter().skip(1) {
        let mut i = 0;
        while i < blocks.len() {
            let w = blocks[i].0.div_euclid(range) * range;
            let end = w.saturating_add(range);
            let mut j = i;
            while j < blocks.len() && blocks[j].0 >= w && blocks[j].1 <= end {
                j += 1;
            }
            let smaller = blocks[i..j].iter().all(|b| b.1 - b.0 < range);
            if j - i >= 2 && end <= boundary && smaller {
                return Some((i..j).collect());
            }
            i = j.max(i + 1);
        }
    }
    None
}

/// Merges `inputs` (sorted by `mint`) into one block in `dir`; returns its path and meta.
pub fn compact(
    dir: &Path,
    inputs: &[Arc<Block>],
) -> Result<Option<(PathBuf, BlockMeta)>, TsdbError> {
    let mint = inputs.iter().map(|b| b.meta.mint).min().unwrap_or(0);
    let maxt = inputs.iter().map(|b| b.meta.maxt).max().unwrap_or(0);
    let level = inputs.iter().map(|b| b.meta.level).max().unwrap_or(0) + 1;
    let indexes = inputs
        .iter()
        .map(|b| b.index())
        .collect::<Result<Vec<_>, _>>()?;
    let mut cursor = vec![0usize; inputs.len()];
    let mut writer = BlockWriter::create(dir, mint, maxt)?;
    loop {
        // The smallest label set among the cursors.
        let mut least: Option<usize> = None;
        for k in 0..inputs.len() {
            if cursor[k] >= indexes[k].series.len() {
                continue;
            }
            least = match least {
                None => Some(k),
                Some(l) => {
                    let a = indexes[k].pairs(cursor[k]);
                    let b = indexes[l].pairs(cursor[l]);
                    if a.lt(b) { Some(k) } else { Some(l) }
                }
            };
        }
        let Some(l) = least else { break };
        let labels: Labels = indexes[l].labels(cursor[l]);
        let mut runs: Vec<Run> = Vec::new();
        for k in 0..inputs.len() {
            if cursor[k] < indexes[k].series.len() && indexes[k].pairs(cursor[k]).eq(labels.iter())
            {
                runs.push(inputs[k].read_series(&indexes[k], cursor[k])?);
                cursor[k] += 1;
            }
        }
        let (ts, vs) = merge_runs(runs);
        writer.add(&labels, &ts, &vs)?;
    }
    if writer.series_count() == 0 {
        return Ok(None);
    }
    writer.finish(mint, maxt, level).map(Some)
}

/// Merges time-sorted runs into one, keeping the first run's sample on equal timestamps.
pub fn merge_runs(mut runs: Vec<Run>) -> Run {
    runs.retain(|r| !r.0.is_empty());
    if runs.len() <= 1 {
        return runs.pop().unwrap_or_default();
    }
    // Runs that follow each other in time (the usual case: adjacent blocks, then the
    // head) just concatenate.
    runs.sort_by_key(|r| r.0[0]);
    if runs
        .windows(2)
        .all(|w| w[0].0[w[0].0.len() - 1] < w[1].0[0])
    {
        let mut ts = Vec::with_capacity(runs.iter().map(|r| r.0.len()).sum());
        let mut vs = Vec::with_capacity(ts.capacity());
        for (t, v) in runs {
            ts.extend(t);
            vs.extend(v);
        }
        return (ts, vs);
    }
    let mut all: Vec<(i64, usize, f64)> = Vec::new();
    for (k, (t, v)) in runs.into_iter().enumerate() {
        all.extend(t.into_iter().zip(v).map(|(t, v)| (t, k, v)));
    }
    all.sort_by_key(|&(t, k, _)| (t, k));
    all.dedup_by_key(|s| s.0);
    all.into_iter().map(|(t, _, v)| (t, v)).unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600 * 1000;

    #[test]
    fn ranges_follow_retention() {
        assert_eq!(ranges(2 * H, 15 * DAY_MS), vec![2 * H, 6 * H, 24 * H]);
        assert_eq!(ranges(2 * H, 3 * DAY_MS), vec![2 * H, 6 * H]);
        assert_eq!(ranges(2 * H, H), vec![2 * H]);
    }

    #[test]
    fn plan_waits_for_complete_windows() {
        let r = ranges(2 * H, 15 * DAY_MS);
        let two = |i: i64| (i * 2 * H, (i + 1) * 2 * H);
        // [0, 6 h) is complete once the head is past 6 h.
        let blocks = vec![two(0), two(1), two(2), two(3)];
        assert_eq!(plan(&blocks, &r, 6 * H), Some(vec![0, 1, 2]));
        assert_eq!(plan(&blocks, &r, 5 * H), None);
        // A lone 6 h block and a 2 h block in the next window: nothing yet.
        let blocks = vec![(0, 6 * H), two(3)];
        assert_eq!(plan(&blocks, &r, 8 * H), None);
        // Four 6 h blocks of one day: merged into 24 h when the day is over.
        let six = |i: i64| (i * 6 * H, (i + 1) * 6 * H);
        let blocks = vec![six(0), six(1), six(2), six(3)];
        assert_eq!(plan(&blocks, &r, 24 * H), Some(vec![0, 1, 2, 3]));
    }

    #[test]
    fn runs_merge_and_deduplicate() {
        let r = merge_runs(vec![
            (vec![5, 6], vec![5.0, 6.0]),
            (vec![1, 2], vec![1.0, 2.0]),
        ]);
        assert_eq!(r.0, vec![1, 2, 5, 6]);
        let r = merge_runs(vec![
            (vec![1, 3, 5], vec![1.0, 3.0, 5.0]),
            (vec![3, 4], vec![-3.0, 4.0]),
        ]);
        assert_eq!(r.0, vec![1, 3, 4, 5]);
        assert_eq!(r.1, vec![1.0, 3.0, 4.0, 5.0]);
    }
}
