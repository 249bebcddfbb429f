//! The TSDB as a sink of the ingest path. It keeps its own write-ahead log (its head holds
//! hours of samples, which would pin the shared log WAL's segments for as long), so it takes
//! the direct path: a group is durable when [`Tsdb::append`] returns.

use sightline_ingest::DurableSink;
use sightline_model::{AppendReport, MetricBatch};

use crate::{Tsdb, TsdbError};

impl DurableSink<MetricBatch, AppendReport> for Tsdb {
    type Error = TsdbError;

    fn name(&self) -> &'static str {
        "metrics"
    }

    fn append_durable(&self, group: &[&MetricBatch]) -> Result<Vec<AppendReport>, TsdbError> {
        self.append(group)
    }
}
