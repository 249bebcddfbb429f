//! The ingest path's own metric families: `sightline_wal_*` for the write-ahead log and
//! `sightline_ingest_sink_*` per sink.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    pub sink: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkOperationLabels {
    pub sink: &'static str,
    /// `append`, `commit`, `rollback` or `maintain`.
    pub operation: &'static str,
}

/// Cheap to clone; every clone updates the same series.
#[derive(Clone, Debug)]
pub struct IngestMetrics {
    pub wal_fsync_seconds: Histogram,
    pub wal_written_bytes: Counter,
    pub sink_append_seconds: Family<SinkLabels, Histogram>,
    pub sink_commit_seconds: Family<SinkLabels, Histogram>,
    pub sink_records: Family<SinkLabels, Counter>,
    pub sink_failures: Family<SinkOperationLabels, Counter>,
    pub sink_durable_seq: Family<SinkLabels, Gauge>,
    pub sink_healthy: Family<SinkLabels, Gauge>,
}

impl Default for IngestMetrics {
    /// Families not registered anywhere (tests, tools).
    fn default() -> Self {
        Self {
            wal_fsync_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            wal_written_bytes: Counter::default(),
            sink_append_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 2.0, 16))
            }),
            sink_commit_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 14))
            }),
            sink_records: Family::default(),
            sink_failures: Family::default(),
            sink_durable_seq: Family::default(),
            sink_healthy: Family::default(),
        }
    }
}

impl IngestMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let wal = registry.sub_registry_with_prefix("sightline_wal");
        wal.register(
            "fsync_seconds",
            "Latency of one WAL group commit fsync",
            m.wal_fsync_seconds.clone(),
        );
        wal.register(
            "written_bytes",
            "Payload bytes appended to the WAL",
            m.wal_written_bytes.clone(),
        );
        let sink = registry.sub_registry_with_prefix("sightline_ingest_sink");
        sink.register(
            "append_seconds",
            "Latency of appending one group to a store (its own WAL fsync included for stores that keep one)",
            m.sink_append_seconds.clone(),
        );
        sink.register(
            "commit_seconds",
            "Latency of one store commit",
            m.sink_commit_seconds.clone(),
        );
        sink.register("records", "Records a store added", m.sink_records.clone());
        sink.register(
            "failures",
            "Failed store operations, by operation; the data stays in the WAL and is retried",
            m.sink_failures.clone(),
        );
        sink.register(
            "durable_seq",
            "Highest WAL sequence number at or below which everything is committed in the store",
            m.sink_durable_seq.clone(),
        );
        sink.register(
            "healthy",
            "1 while the store accepts writes, 0 while it keeps failing",
            m.sink_healthy.clone(),
        );
        m
    }

    /// One sink's series, looked up once so that the per-batch path does not consult the
    /// families' maps.
    pub fn sink(&self, sink: &'static str) -> SinkMetrics {
        let labels = SinkLabels { sink };
        SinkMetrics {
            sink,
            failures: self.sink_failures.clone(),
            append_seconds: self.sink_append_seconds.get_or_create(&labels).clone(),
            commit_seconds: self.sink_commit_seconds.get_or_create(&labels).clone(),
            records: self.sink_records.get_or_create(&labels).clone(),
            durable_seq: self.sink_durable_seq.get_or_create(&labels).clone(),
            healthy: self.sink_healthy.get_or_create(&labels).clone(),
        }
    }
}

/// The series of one sink (clones share their values with the registered families).
#[derive(Clone, Debug)]
pub struct SinkMetrics {
    sink: &'static str,
    failures: Family<SinkOperationLabels, Counter>,
    pub append_seconds: Histogram,
    pub commit_seconds: Histogram,
    pub records: Counter,
    pub durable_seq: Gauge,
    pub healthy: Gauge,
}

impl SinkMetrics {
    /// Counts a failed `operation` (rare: the family's map is fine here).
    pub(crate) fn count_failure(&self, operation: &'static str) {
        self.failures
            .get_or_create(&SinkOperationLabels {
                sink: self.sink,
                operation,
            })
            .inc();
    }
}
