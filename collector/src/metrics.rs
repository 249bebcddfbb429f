//! Counters every receiver keeps, so `/metrics` can prove that nothing was lost:
//! records and bytes received, accepted, and rejected by reason, per signal, source and tenant.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub signal: &'static str,
    pub source: &'static str,
    pub tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    pub signal: &'static str,
    pub source: &'static str,
    pub tenant: String,
    pub reason: &'static str,
}

/// The collector's metric families; cheap to clone (shared counters).
#[derive(Clone, Debug, Default)]
pub struct CollectorMetrics {
    pub records_received: Family<SourceLabels, Counter>,
    pub bytes_received: Family<SourceLabels, Counter>,
    pub records_accepted: Family<SourceLabels, Counter>,
    pub records_rejected: Family<RejectLabels, Counter>,
}

impl CollectorMetrics {
    /// Creates the families and registers them under `sightline_collector_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let sub = registry.sub_registry_with_prefix("sightline_collector");
        sub.register(
            "records_received",
            "Records received from clients, before validation",
            m.records_received.clone(),
        );
        sub.register(
            "bytes_received",
            "Request payload bytes received from clients (after decompression)",
            m.bytes_received.clone(),
        );
        sub.register(
            "records_accepted",
            "Records written to the WAL and acknowledged",
            m.records_accepted.clone(),
        );
        sub.register(
            "records_rejected",
            "Records refused, by reason",
            m.records_rejected.clone(),
        );
        m
    }

    pub fn received(&self, source: &'static str, tenant: &str, records: u64, bytes: u64) {
        self.received_signal("logs", source, tenant, records, bytes);
    }

    pub fn accepted(&self, source: &'static str, tenant: &str, records: u64) {
        self.accepted_signal("logs", source, tenant, records);
    }

    pub fn rejected(&self, source: &'static str, tenant: &str, reason: &'static str, records: u64) {
        self.rejected_signal("logs", source, tenant, reason, records);
    }

    /// [`received`](Self::received) for metric receivers: records are samples.
    pub fn metric_received(&self, source: &'static str, tenant: &str, samples: u64, bytes: u64) {
        self.received_signal("metrics", source, tenant, samples, bytes);
    }

    /// [`accepted`](Self::accepted) for metric receivers: samples the store wrote.
    pub fn metric_accepted(&self, source: &'static str, tenant: &str, samples: u64) {
        self.accepted_signal("metrics", source, tenant, samples);
    }

    /// [`rejected`](Self::rejected) for metric receivers: samples refused, by reason.
    pub fn metric_rejected(
        &self,
        source: &'static str,
        tenant: &str,
        reason: &'static str,
        samples: u64,
    ) {
        self.rejected_signal("metrics", source, tenant, reason, samples);
    }

    /// Counts a request refused as a whole, before its records could be counted, as one
    /// received and one rejected record of `signal` (`logs` or `metrics`), so that the
    /// counters still show it.
    pub fn refused_whole(
        &self,
        signal: &'static str,
        source: &'static str,
        tenant: &str,
        reason: &'static str,
        bytes: u64,
    ) {
        self.received_signal(signal, source, tenant, 1, bytes);
        self.rejected_signal(signal, source, tenant, reason, 1);
    }

    /// Records of any `signal` (`logs`, `metrics`, `traces`) received.
    pub fn received_signal(
        &self,
        signal: &'static str,
        source: &'static str,
        tenant: &str,
        records: u64,
        bytes: u64,
    ) {
        let l = SourceLabels {
            signal,
            source,
            tenant: tenant.to_string(),
        };
        self.records_received.get_or_create(&l).inc_by(records);
        self.bytes_received.get_or_create(&l).inc_by(bytes);
    }

    /// Records of `signal` accepted.
    pub fn accepted_signal(
        &self,
        signal: &'static str,
        source: &'static str,
        tenant: &str,
        n: u64,
    ) {
        let l = SourceLabels {
            signal,
            source,
            tenant: tenant.to_string(),
        };
        self.records_accepted.get_or_create(&l).inc_by(n);
    }

    /// Records of `signal` refused, by reason.
    pub fn rejected_signal(
        &self,
        signal: &'static str,
        source: &'static str,
        tenant: &str,
        reason: &'static str,
        n: u64,
    ) {
        let l = RejectLabels {
            signal,
            source,
            tenant: tenant.to_string(),
            reason,
        };
        self.records_rejected.get_or_create(&l).inc_by(n);
    }
}
