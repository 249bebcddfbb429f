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
use crate::tail::TailStats;

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
    log_lines: Counter,
    log_bytes: Counter,
    log_files: Counter,
    log_rotations: Counter,
    log_problems: Family<Labels, Counter>,
    /// The tailers' counts (summed), set by the tailing thread, and what was added so far.
    tail: Mutex<(TailStats, TailStats)>,
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
            log_lines: Counter::default(),
            log_bytes: Counter::default(),
            log_files: Counter::default(),
            log_rotations: Counter::default(),
            log_problems: Family::default(),
            tail: Mutex::new((TailStats::default(), TailStats::default())),
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
        registry.register(
            "log_lines",
            "Log lines (or multi-line records) read from tailed files",
            m.log_lines.clone(),
        );
        registry.register(
            "log_bytes",
            "Bytes of log lines read from tailed files",
            m.log_bytes.clone(),
        );
        registry.register(
            "log_files_opened",
            "Log files opened for tailing",
            m.log_files.clone(),
        );
        registry.register(
            "log_rotations",
            "Log files rotated (renamed away or truncated) while tailed",
            m.log_rotations.clone(),
        );
        registry.register(
            "log_problems",
            "Log input problems, by kind: truncated_line (cut to max_line_bytes), invalid_utf8_line (dropped), binary_file and unreadable_file (skipped; the path is logged)",
            m.log_problems.clone(),
        );
        AgentMetrics { registry, ..m }
    }

    /// The tailers' cumulative counts, summed over `[[logs]]` entries.
    pub fn set_tail(&self, now: TailStats) {
        self.tail.lock().unwrap_or_else(|e| e.into_inner()).0 = now;
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
            Kind::LokiPush => "loki_push",
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
        {
            let mut tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
            let (now, seen) = *tail;
            self.log_lines.inc_by(now.lines.saturating_sub(seen.lines));
            self.log_bytes.inc_by(now.bytes.saturating_sub(seen.bytes));
            self.log_files.inc_by(now.files.saturating_sub(seen.files));
            self.log_rotations
                .inc_by(now.rotations.saturating_sub(seen.rotations));
            for (kind, n, s) in [
                ("truncated_line", now.truncated_lines, seen.truncated_lines),
                (
                    "invalid_utf8_line",
                    now.invalid_utf8_lines,
                    seen.invalid_utf8_lines,
                ),
                (
                    "binary_file",
                    now.skipped_binary_files,
                    seen.skipped_binary_files,
                ),
                (
                    "unreadable_file",
                    now.unreadable_files,
                    seen.unreadable_files,
                ),
            ] {
                self.log_problems
                    .get_or_create(&vec![("kind", kind.into())])
                    .inc_by(n.saturating_sub(s));
            }
            tail.1 = now;
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
