//! The read side: [`Tsdb::select`] (samples) and the series metadata behind `/series`,
//! `/labels` and `/label/<name>/values`. Each reads the head under its read lock, then the
//! blocks overlapping the range (see the locking notes in [`super`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sightline_model::{LabelMatcher, Labels, MetricSeries, Sample, TenantId};

use super::{Tsdb, read};
use crate::block::Block;
use crate::compact::{self, Run};
use crate::error::{TsdbError, corrupt};
use crate::postings::{PostingsSource, select_ids};
use crate::series::SeriesData;

/// Receives the label pairs of one series.
type PairsVisitor<'v> = dyn FnMut(&mut dyn Iterator<Item = (&str, &str)>) + 'v;

impl Tsdb {
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
}
