//! Tantivy collectors of the read path. Both read only fast-field columns (the `ts` and
//! `stream` columns of the split's [`SegmentView`]), never the document store:
//! [`TimestampCollector`] gathers the candidates of a log selection, [`BucketCollector`]
//! counts bare-selector matches per stream and time bucket for metric queries.

use std::sync::Arc;

use sightline_model::Buckets;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use crate::split::SegmentView;

/// Counts matching documents per stream ordinal and time bucket, per segment.
pub(crate) struct BucketCollector {
    pub view: Arc<SegmentView>,
    pub buckets: Buckets,
}

pub(crate) struct BucketSegmentCollector {
    segment_ord: SegmentOrdinal,
    ts: Column<i64>,
    stream: Option<StrColumn>,
    buckets: Buckets,
    /// Stream ordinal → counts per bucket, allocated when the stream is first seen.
    counts: Vec<Option<Vec<u32>>>,
}

impl Collector for BucketCollector {
    type Fruit = Vec<(SegmentOrdinal, Vec<Option<Vec<u32>>>)>;
    type Child = BucketSegmentCollector;

    fn for_segment(
        &self,
        segment_ord: SegmentOrdinal,
        _segment: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        Ok(BucketSegmentCollector {
            segment_ord,
            ts: self.view.ts_columns[segment_ord as usize].clone(),
            stream: self.view.stream_columns[segment_ord as usize].clone(),
            buckets: self.buckets,
            counts: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Self::Fruit>) -> tantivy::Result<Self::Fruit> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for BucketSegmentCollector {
    type Fruit = Vec<(SegmentOrdinal, Vec<Option<Vec<u32>>>)>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(bucket) = self.ts.first(doc).and_then(|ts| self.buckets.index(ts)) else {
            return;
        };
        let Some(ord) = self.stream.as_ref().and_then(|c| c.term_ords(doc).next()) else {
            return;
        };
        let ord = ord as usize;
        if self.counts.len() <= ord {
            self.counts.resize(ord + 1, None);
        }
        let count = self.buckets.count;
        self.counts[ord].get_or_insert_with(|| vec![0; count])[bucket] += 1;
    }

    fn harvest(self) -> Self::Fruit {
        vec![(self.segment_ord, self.counts)]
    }
}

/// Collects (timestamp, address) of every matching document from the `ts` fast field.
pub(crate) struct TimestampCollector {
    pub view: Arc<SegmentView>,
}

pub(crate) struct TimestampSegmentCollector {
    segment_ord: SegmentOrdinal,
    ts: Column<i64>,
    hits: Vec<(i64, DocAddress)>,
}

impl Collector for TimestampCollector {
    type Fruit = Vec<(i64, DocAddress)>;
    type Child = TimestampSegmentCollector;

    fn for_segment(
        &self,
        segment_ord: SegmentOrdinal,
        _segment: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        Ok(TimestampSegmentCollector {
            segment_ord,
            ts: self.view.ts_columns[segment_ord as usize].clone(),
            hits: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Self::Fruit>) -> tantivy::Result<Self::Fruit> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for TimestampSegmentCollector {
    type Fruit = Vec<(i64, DocAddress)>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if let Some(ts) = self.ts.first(doc) {
            self.hits.push((ts, DocAddress::new(self.segment_ord, doc)));
        }
    }

    fn harvest(self) -> Self::Fruit {
        self.hits
    }
}
