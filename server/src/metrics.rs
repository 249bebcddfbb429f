//! The server's own metric families (`sightline_server_*`), next to the collector's.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    pub endpoint: &'static str,
}

#[derive(Clone, Debug)]
pub struct ServerMetrics {
    pub wal_fsync_seconds: Histogram,
    pub wal_bytes: Counter,
    pub index_commit_seconds: Histogram,
    pub index_documents: Counter,
    pub query_seconds: Family<QueryLabels, Histogram>,
}

impl ServerMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            wal_fsync_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            wal_bytes: Counter::default(),
            index_commit_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            index_documents: Counter::default(),
            query_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 2.0, 16))
            }),
        };
        let wal = registry.sub_registry_with_prefix("sightline_wal");
        wal.register(
            "fsync_seconds",
            "Latency of one WAL group commit fsync",
            m.wal_fsync_seconds.clone(),
        );
        wal.register(
            "written_bytes",
            "Payload bytes appended to the WAL",
            m.wal_bytes.clone(),
        );
        let idx = registry.sub_registry_with_prefix("sightline_indexer");
        idx.register(
            "commit_seconds",
            "Latency of one index commit round",
            m.index_commit_seconds.clone(),
        );
        idx.register(
            "documents_added",
            "Log records added to the index",
            m.index_documents.clone(),
        );
        registry
            .sub_registry_with_prefix("sightline_query")
            .register(
                "seconds",
                "Query latency by endpoint",
                m.query_seconds.clone(),
            );
        m
    }
}
