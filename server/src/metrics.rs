//! The server's own metric families (`sightline_server_*`), next to the collector's.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    pub endpoint: &'static str,
}

#[derive(Clone, Debug)]
pub struct ServerMetrics {
    pub query_seconds: Family<QueryLabels, Histogram>,
}

impl ServerMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            query_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 2.0, 16))
            }),
        };
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

/// The TSDB's statistics as gauges, refreshed from `Tsdb::stats` when `/metrics` is read.
/// The topology's size, refreshed at each scrape of `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct TopologyGauges {
    entities: Gauge,
    relations: Gauge,
    events: Gauge,
    memory_bytes: Gauge,
    refused_entities: Gauge,
}

impl TopologyGauges {
    pub fn register(registry: &mut Registry) -> Self {
        let g = Self::default();
        let r = registry.sub_registry_with_prefix("sightline_topology");
        r.register(
            "entities",
            "Entities in the topology (all tenants)",
            g.entities.clone(),
        );
        r.register(
            "relations",
            "Relations in the topology",
            g.relations.clone(),
        );
        r.register("events", "Change events kept", g.events.clone());
        r.register(
            "memory_bytes",
            "Estimated heap bytes of the topology graphs",
            g.memory_bytes.clone(),
        );
        r.register(
            "refused_entities",
            "Facts refused because the graph was at topology.max_entities",
            g.refused_entities.clone(),
        );
        g
    }

    pub fn refresh(&self, s: &sightline_topology::TopologyStats, refused: u64) {
        self.entities.set(s.entities as i64);
        self.relations.set(s.relations as i64);
        self.events.set(s.events as i64);
        self.memory_bytes.set(s.bytes as i64);
        self.refused_entities.set(refused as i64);
    }
}

#[derive(Clone, Debug, Default)]
pub struct TsdbGauges {
    head_series: Gauge,
    head_samples: Gauge,
    head_chunk_bytes: Gauge,
    head_memory_bytes: Gauge,
    head_memory_bytes_per_series: Gauge<f64, std::sync::atomic::AtomicU64>,
    blocks: Gauge,
    block_bytes: Gauge,
    block_samples: Gauge,
    block_index_memory_bytes: Gauge,
    samples_appended: Gauge,
    samples_refused: Family<ReasonLabels, Gauge>,
}

impl TsdbGauges {
    pub fn register(registry: &mut Registry) -> Self {
        let g = Self::default();
        let r = registry.sub_registry_with_prefix("sightline_tsdb");
        r.register(
            "head_series",
            "Series in the in-memory head",
            g.head_series.clone(),
        );
        r.register(
            "head_samples",
            "Samples in the head",
            g.head_samples.clone(),
        );
        r.register(
            "head_chunk_bytes",
            "Compressed sample bytes in the head",
            g.head_chunk_bytes.clone(),
        );
        r.register(
            "head_memory_bytes",
            "Estimated heap bytes of the head (samples, series, labels, postings)",
            g.head_memory_bytes.clone(),
        );
        r.register(
            "head_memory_bytes_per_series",
            "Estimated head memory per active series",
            g.head_memory_bytes_per_series.clone(),
        );
        r.register("blocks", "On-disk blocks", g.blocks.clone());
        r.register(
            "block_bytes",
            "Bytes of on-disk blocks",
            g.block_bytes.clone(),
        );
        r.register(
            "block_samples",
            "Samples in on-disk blocks",
            g.block_samples.clone(),
        );
        r.register(
            "block_index_memory_bytes",
            "Heap bytes of block indexes loaded for queries",
            g.block_index_memory_bytes.clone(),
        );
        r.register(
            "samples_appended",
            "Samples accepted since the process started",
            g.samples_appended.clone(),
        );
        r.register(
            "samples_refused",
            "Samples refused since the process started, by reason",
            g.samples_refused.clone(),
        );
        g
    }

    pub fn refresh(&self, stats: &sightline_tsdb::TsdbStats) {
        let set = |g: &Gauge, v: u64| {
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        set(&self.head_series, stats.head_series);
        set(&self.head_samples, stats.head_samples);
        set(&self.head_chunk_bytes, stats.head_chunk_bytes);
        set(&self.head_memory_bytes, stats.head_memory_bytes);
        self.head_memory_bytes_per_series
            .set(stats.head_memory_bytes as f64 / stats.head_series.max(1) as f64);
        set(&self.blocks, stats.blocks);
        set(&self.block_bytes, stats.block_bytes);
        set(&self.block_samples, stats.block_samples);
        set(
            &self.block_index_memory_bytes,
            stats.block_index_memory_bytes,
        );
        set(&self.samples_appended, stats.samples_appended);
        for (reason, n) in &stats.samples_refused {
            set(
                &self.samples_refused.get_or_create(&ReasonLabels {
                    reason: reason.as_str(),
                }),
                *n,
            );
        }
    }
}
