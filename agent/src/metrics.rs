//! The agent's own metrics, served on its `/metrics` (Prometheus text format): what it
//! collected, what failed, what waits in the buffer, what was dropped and why, and how
//! sending goes.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::buffer::{Kind, Stats};
use crate::forward::Outcome;

type Labels = Vec<(&'static str, String)>;

pub struct AgentMetrics {
    registry: Registry,
    collections: Counter,
    collect_errors: Family<Labels, Counter>,
    samples: Counter,
    collect_seconds: Gauge<f64, AtomicU64>,
    buffer_bytes: Gauge,
    buffer_pending: Gauge,
    dropped: Family<Labels, Counter>,
    requests: Family<Labels, Counter>,
    last_success: Gauge<f64, AtomicU64>,
    /// The buffer's cumulative drop counts already added to `dropped`.
    seen: Mutex<Stats>,
}

impl Default for AgentMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl AgentMetrics {
    pub fn new() -> AgentMetrics {
        let mut registry = Registry::with_prefix("sightline_agent");
        let m = AgentMetrics {
            collections: Counter::default(),
            collect_errors: Family::default(),
            samples: Counter::default(),
            collect_seconds: Gauge::default(),
            buffer_bytes: Gauge::default(),
            buffer_pending: Gauge::default(),
            dropped: Family::default(),
            requests: Family::default(),
            last_success: Gauge::default(),
            seen: Mutex::new(Stats::default()),
            registry: Registry::default(),
        };
        registry.register(
            "host_collections",
            "Host metric collections run",
            m.collections.clone(),
        );
        registry.register(
            "host_collect_errors",
            "Host collectors that failed, by collector (the reason is logged)",
            m.collect_errors.clone(),
        );
        registry.register(
            "host_samples",
            "Host metric samples collected",
            m.samples.clone(),
        );
        registry.register(
            "host_collect_duration_seconds",
            "Wall time of the last host collection",
            m.collect_seconds.clone(),
        );
        registry.register(
            "buffer_bytes",
            "Bytes in the disk buffer, sent or not",
            m.buffer_bytes.clone(),
        );
        registry.register(
            "buffer_pending_records",
            "Records in the disk buffer not yet accepted by the server",
            m.buffer_pending.clone(),
        );
        registry.register(
            "dropped_records",
            "Records dropped, by reason: over_cap (the buffer's size cap), corrupt (damaged on disk), write_error (the buffer could not be written, e.g. a full disk), rejected (the server refused them for good)",
            m.dropped.clone(),
        );
        registry.register(
            "send_requests",
            "Requests to the server, by kind and outcome (delivered, retry, rejected)",
            m.requests.clone(),
        );
        registry.register(
            "last_delivery_timestamp_seconds",
            "When the server last accepted a batch",
            m.last_success.clone(),
        );
        AgentMetrics { registry, ..m }
    }

    pub fn collected(&self, samples: u64, errors: &[&'static str], seconds: f64) {
        self.collections.inc();
        self.samples.inc_by(samples);
        self.collect_seconds.set(seconds);
        for c in errors {
            self.collect_errors
                .get_or_create(&vec![("collector", (*c).to_string())])
                .inc();
        }
    }

    pub fn write_failed(&self) {
        self.dropped
            .get_or_create(&vec![("reason", "write_error".into())])
            .inc();
    }

    pub fn sent(&self, kind: Kind, outcome: &Outcome) {
        let kind = match kind {
            Kind::RemoteWrite => "remote_write",
            Kind::OtlpLogs => "otlp_logs",
        };
        let o = match outcome {
            Outcome::Delivered => "delivered",
            Outcome::Retry(_) => "retry",
            Outcome::Rejected(..) => "rejected",
        };
        self.requests
            .get_or_create(&vec![("kind", kind.into()), ("outcome", o.into())])
            .inc();
        match outcome {
            Outcome::Delivered => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0);
                self.last_success.set(now);
            }
            Outcome::Rejected(..) => {
                self.dropped
                    .get_or_create(&vec![("reason", "rejected".into())])
                    .inc();
            }
            Outcome::Retry(_) => {}
        }
    }

    /// The text exposition, with the buffer's figures as of now.
    pub fn render(&self, buffer: Stats) -> String {
        self.buffer_bytes.set(buffer.bytes as i64);
        self.buffer_pending.set(buffer.pending as i64);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            let over = buffer
                .dropped_over_cap
                .saturating_sub(seen.dropped_over_cap);
            let corrupt = buffer.dropped_corrupt.saturating_sub(seen.dropped_corrupt);
            self.dropped
                .get_or_create(&vec![("reason", "over_cap".into())])
                .inc_by(over);
            self.dropped
                .get_or_create(&vec![("reason", "corrupt".into())])
                .inc_by(corrupt);
            *seen = buffer;
        }
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_counted_by_reason() {
        let m = AgentMetrics::new();
        m.collected(10, &["pressure"], 0.01);
        m.sent(Kind::RemoteWrite, &Outcome::Rejected(400, "bad".into()));
        m.sent(Kind::RemoteWrite, &Outcome::Delivered);
        let s = Stats {
            dropped_over_cap: 3,
            pending: 2,
            ..Stats::default()
        };
        m.render(s);
        let text = m.render(s); // the same figures again: not added twice
        for line in [
            "sightline_agent_host_samples_total 10",
            "sightline_agent_host_collect_errors_total{collector=\"pressure\"} 1",
            "sightline_agent_dropped_records_total{reason=\"over_cap\"} 3",
            "sightline_agent_dropped_records_total{reason=\"rejected\"} 1",
            "sightline_agent_buffer_pending_records 2",
            "sightline_agent_send_requests_total{kind=\"remote_write\",outcome=\"delivered\"} 1",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }
}
