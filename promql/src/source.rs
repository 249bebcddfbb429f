//! Where the engine reads samples: the [`SeriesSource`] trait and an in-memory implementation.

use std::collections::BTreeMap;

use sightline_model::{LabelMatcher, Labels, MetricSeries, Sample, StoreError};

use crate::histogram::FloatHistogram;

/// Where the engine reads samples. Implemented by [`TsdbSource`](crate::TsdbSource) over
/// the TSDB and by [`MemorySource`] here. The tenant is bound inside the implementation.
/// A store's failure is passed through as a [`StoreError`] that keeps the store's error.
pub trait SeriesSource: Send + Sync {
    /// Every series matching all `matchers` that has samples in `[mint, maxt]` (ms, inclusive),
    /// with those samples in time order, staleness markers included (the engine handles them).
    fn select(
        &self,
        matchers: &[LabelMatcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<MetricSeries>, StoreError>;

    /// The native histogram samples of the series matching all `matchers` in `[mint, maxt]`,
    /// in time order. A series may have both float samples (from [`SeriesSource::select`],
    /// staleness markers included) and histogram samples. Stores without native histograms
    /// keep this default.
    fn select_histograms(
        &self,
        matchers: &[LabelMatcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<HistogramSeries>, StoreError> {
        let _ = (matchers, mint, maxt);
        Ok(Vec::new())
    }
}

/// One native histogram sample.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSample {
    pub t: i64,
    pub h: FloatHistogram,
}

/// The native histogram samples of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSeries {
    pub labels: Labels,
    pub samples: Vec<HistogramSample>,
}

/// An in-memory [`SeriesSource`]: series kept sorted by labels (so selections come back in the
/// order Prometheus's TSDB returns them), samples sorted by time.
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    series: BTreeMap<Labels, Vec<Sample>>,
    histograms: BTreeMap<Labels, Vec<HistogramSample>>,
}

impl MemorySource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds samples to the series with these labels (creating it). A sample at a time the
    /// series already has replaces the stored one.
    pub fn add(&mut self, labels: Labels, samples: Vec<Sample>) {
        let stored = self.series.entry(labels).or_default();
        let in_order = stored
            .last()
            .zip(samples.first())
            .is_none_or(|(last, first)| last.t < first.t)
            && samples.windows(2).all(|w| w[0].t < w[1].t);
        stored.extend(samples);
        if !in_order {
            // Stable sort, then keep the last of equal timestamps: the newest write wins.
            stored.sort_by_key(|s| s.t);
            let mut deduped: Vec<Sample> = Vec::with_capacity(stored.len());
            for s in stored.drain(..) {
                match deduped.last_mut() {
                    Some(last) if last.t == s.t => *last = s,
                    _ => deduped.push(s),
                }
            }
            *stored = deduped;
        }
    }

    /// Adds native histogram samples to the series with these labels; a sample at a time
    /// the series already has replaces the stored one.
    pub fn add_histograms(&mut self, labels: Labels, samples: Vec<HistogramSample>) {
        let stored = self.histograms.entry(labels).or_default();
        stored.extend(samples);
        stored.sort_by_key(|s| s.t);
        let mut deduped: Vec<HistogramSample> = Vec::with_capacity(stored.len());
        for s in stored.drain(..) {
            match deduped.last_mut() {
                Some(last) if last.t == s.t => *last = s,
                _ => deduped.push(s),
            }
        }
        *stored = deduped;
    }

    /// Removes every series.
    pub fn clear(&mut self) {
        self.series.clear();
        self.histograms.clear();
    }

    /// The number of series with float samples.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty() && self.histograms.is_empty()
    }

    /// Every series with its samples, sorted by labels.
    pub fn iter(&self) -> impl Iterator<Item = (&Labels, &[Sample])> {
        self.series.iter().map(|(l, s)| (l, s.as_slice()))
    }
}

impl SeriesSource for MemorySource {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<MetricSeries>, StoreError> {
        let mut out = Vec::new();
        for (labels, samples) in &self.series {
            if !matchers.iter().all(|m| m.matches_labels(labels)) {
                continue;
            }
            let lo = samples.partition_point(|s| s.t < mint);
            let hi = samples.partition_point(|s| s.t <= maxt);
            if lo < hi {
                out.push(MetricSeries {
                    labels: labels.clone(),
                    samples: samples[lo..hi].to_vec(),
                });
            }
        }
        Ok(out)
    }

    fn select_histograms(
        &self,
        matchers: &[LabelMatcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<HistogramSeries>, StoreError> {
        let mut out = Vec::new();
        for (labels, samples) in &self.histograms {
            if !matchers.iter().all(|m| m.matches_labels(labels)) {
                continue;
            }
            let lo = samples.partition_point(|s| s.t < mint);
            let hi = samples.partition_point(|s| s.t <= maxt);
            if lo < hi {
                out.push(HistogramSeries {
                    labels: labels.clone(),
                    samples: samples[lo..hi].to_vec(),
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_model::MatchOp;

    #[test]
    fn select_filters_by_matchers_and_time() {
        let mut src = MemorySource::new();
        let s = |t, v| Sample { t, v };
        src.add(
            Labels::from_pairs([("__name__", "a"), ("job", "x")]),
            vec![s(0, 1.0), s(10, 2.0)],
        );
        src.add(Labels::from_pairs([("__name__", "b")]), vec![s(5, 3.0)]);
        src.add(
            Labels::from_pairs([("__name__", "a"), ("job", "x")]),
            vec![s(10, 9.0), s(20, 4.0)],
        );
        let m = LabelMatcher::new("__name__", MatchOp::Equal, "a").unwrap();
        let got = src.select(&[m], 1, 20).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].samples, vec![s(10, 9.0), s(20, 4.0)]);
        assert!(src.select(&[], 30, 40).unwrap().is_empty());
    }

    /// A source whose store fails with an error of its own type.
    struct FailingSource;

    impl SeriesSource for FailingSource {
        fn select(
            &self,
            _: &[LabelMatcher],
            _: i64,
            _: i64,
        ) -> Result<Vec<MetricSeries>, StoreError> {
            Err(StoreError::new(std::io::Error::other("disk on fire")))
        }
    }

    #[test]
    fn a_store_failure_reaches_the_caller_with_its_error() {
        let err = crate::Engine::default()
            .instant_query(&FailingSource, "sum(up)", 0)
            .unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
        match &err {
            crate::QueryError::Storage(e) => {
                assert!(e.store_error().downcast_ref::<std::io::Error>().is_some());
            }
            other => panic!("{other:?}"),
        }
    }
}
