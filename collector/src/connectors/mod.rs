//! Metrics derived from spans at ingest, as the OpenTelemetry Collector's connectors derive
//! them: span metrics ([`spanmetrics`]) and the service graph ([`servicegraph`]).
//!
//! The receivers pass the facts of every span they got acknowledged ([`facts`]: a few
//! fields, not the batch) to [`Connectors::observe`], which never blocks ingest: a full queue
//! drops the facts and counts them. One task aggregates per tenant and, every
//! `flush_interval`, exports each tenant's cumulative series as the connectors' own OTLP
//! metrics, through the same OTLP → Prometheus translation as any OTLP metric, into the
//! TSDB (source `spanmetrics`). Like the connectors, the counts live in memory: they start
//! from zero when the server restarts, which PromQL's `rate()` reads as a counter reset.

pub mod servicegraph;
pub mod spanmetrics;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue as OtlpValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sightline_model::{AnyValue, SpanBatch, SpanId, SpanKind, StatusCode, TenantId, TraceId};
use tokio::sync::{mpsc, watch};

use crate::CollectorMetrics;
use crate::otlp::metrics::OtlpMetricsIngest;

/// The `source` label of the derived series in the receiver counters.
pub const SOURCE: &str = "spanmetrics";

/// What identifies a resource's series: the attributes the Prometheus translation turns
/// into `job` and `instance`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceKey {
    pub service: String,
    pub namespace: String,
    pub instance: String,
}

/// What the connectors need of one span.
#[derive(Debug, Clone)]
pub struct SpanFacts {
    pub resource: Arc<ResourceKey>,
    pub name: String,
    pub kind: SpanKind,
    pub status: StatusCode,
    pub duration_ns: i64,
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent: Option<SpanId>,
    /// The peer a client or producer span names, and the edge's connection type if it
    /// stays a virtual node: `database` for `db.system`/`db.name`, `messaging_system` for a
    /// producer, `virtual_node` otherwise.
    pub peer: Option<(String, &'static str)>,
}

/// Facts of every span of a batch.
pub fn facts(batch: &SpanBatch) -> Vec<SpanFacts> {
    let mut out = Vec::with_capacity(batch.span_count());
    for r in &batch.resources {
        let text = |k: &str| {
            r.resource
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.to_text())
                .unwrap_or_default()
        };
        let resource = Arc::new(ResourceKey {
            service: r.service_name().to_string(),
            namespace: text("service.namespace"),
            instance: text("service.instance.id"),
        });
        for s in r.scopes.iter().flat_map(|s| &s.spans) {
            out.push(SpanFacts {
                resource: resource.clone(),
                name: s.name.clone(),
                kind: s.kind,
                status: s.status_code,
                duration_ns: s.duration_ns(),
                trace_id: s.trace_id,
                span_id: s.span_id,
                parent: s.parent_span_id,
                peer: peer_of(s.kind, &s.attributes),
            });
        }
    }
    out
}

fn peer_of(kind: SpanKind, attributes: &[(String, AnyValue)]) -> Option<(String, &'static str)> {
    if !matches!(kind, SpanKind::Client | SpanKind::Producer) {
        return None;
    }
    let get = |k: &str| {
        attributes
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.to_text())
            .filter(|v| !v.is_empty())
    };
    let is_database =
        kind == SpanKind::Client && (get("db.system").is_some() || get("db.name").is_some());
    let name = [
        "peer.service",
        "db.name",
        "db.system",
        "messaging.system",
        "server.address",
    ]
    .iter()
    .find_map(|k| get(k))?;
    let connection_type = if is_database {
        "database"
    } else if kind == SpanKind::Producer {
        "messaging_system"
    } else {
        "virtual_node"
    };
    Some((name, connection_type))
}

/// How the connectors run.
#[derive(Debug, Clone, Copy)]
pub struct ConnectorConfig {
    /// How often each tenant's series are exported (the connectors' `metrics_flush_interval`).
    pub flush_interval: Duration,
    /// Span metrics dimension sets per tenant; spans beyond are dropped and counted.
    pub max_series: usize,
    /// Service graph: entries waiting for their other side, per tenant.
    pub max_items: usize,
    /// Service graph: how long one side waits for the other.
    pub ttl: Duration,
    /// Batches of facts queued for the aggregating task; beyond it they are dropped.
    pub queue: usize,
    /// Export only when asked ([`Connectors::flush_at`]), stamped with the time given, which
    /// also clocks the service graph's waits: for a driver that runs the server in
    /// simulated time (`sightline demo evaluate`).
    pub manual_flush: bool,
}

impl Default for ConnectorConfig {
    fn default() -> Self {
        Self {
            flush_interval: Duration::from_secs(15),
            max_series: 10_000,
            max_items: 100_000,
            ttl: Duration::from_secs(30),
            queue: 1024,
            manual_flush: false,
        }
    }
}

/// The connectors' self-monitoring, in `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct ConnectorMetrics {
    pub dropped_batches: Counter,
    pub dropped_spans: Counter,
    pub expired_virtual: Counter,
    pub expired_unpaired: Counter,
    pub pending: Gauge,
}

impl ConnectorMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "sightline_span_connectors_dropped_batches",
            "Span batches the connectors dropped because their queue was full",
            m.dropped_batches.clone(),
        );
        registry.register(
            "sightline_spanmetrics_dropped_spans",
            "Spans not counted because their tenant reached its span-metric series limit",
            m.dropped_spans.clone(),
        );
        registry.register(
            "sightline_servicegraph_expired_virtual_node",
            "Client spans that expired unpaired and were recorded on an edge to a virtual node",
            m.expired_virtual.clone(),
        );
        registry.register(
            "sightline_servicegraph_expired_unpaired",
            "Spans that expired in the service-graph store without their other side",
            m.expired_unpaired.clone(),
        );
        registry.register(
            "sightline_servicegraph_pending_edges",
            "Service-graph entries waiting for their other side",
            m.pending.clone(),
        );
        m
    }
}

/// Where receivers send span facts. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Connectors {
    tx: mpsc::Sender<Message>,
    metrics: ConnectorMetrics,
}

enum Message {
    Facts(TenantId, Vec<SpanFacts>),
    /// Export now, stamped `at_ns`; answer when stored.
    Flush(u64, tokio::sync::oneshot::Sender<()>),
}

impl Connectors {
    /// Queues the facts of acknowledged spans; never waits.
    pub fn observe(&self, tenant: &TenantId, facts: Vec<SpanFacts>) {
        if facts.is_empty() {
            return;
        }
        if self
            .tx
            .try_send(Message::Facts(tenant.clone(), facts))
            .is_err()
        {
            self.metrics.dropped_batches.inc();
        }
    }

    /// Exports every tenant's series now, stamped `at_ns`, after the facts queued before
    /// (one queue keeps the order); returns once they are stored. False if the task ended.
    pub async fn flush_at(&self, at_ns: u64) -> bool {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.tx.send(Message::Flush(at_ns, done)).await.is_err() {
            return false;
        }
        wait.await.is_ok()
    }
}

struct Tenant {
    spans: spanmetrics::SpanMetrics,
    graph: servicegraph::ServiceGraph,
}

/// Starts the aggregating task; it exports once more and ends when `stop` turns true.
pub fn start(
    config: ConnectorConfig,
    ingest: OtlpMetricsIngest,
    receiver_metrics: CollectorMetrics,
    metrics: ConnectorMetrics,
    mut stop: watch::Receiver<bool>,
) -> (Connectors, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Message>(config.queue.max(1));
    let handle = Connectors {
        tx,
        metrics: metrics.clone(),
    };
    let task = tokio::spawn(async move {
        let start_ns = unix_now_ns();
        let mut tenants: HashMap<TenantId, Tenant> = HashMap::new();
        let mut ticker = tokio::time::interval(config.flush_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        // The service graph's waits run on the clock; flushed by hand at given times (a
        // driver in simulated time), on those times instead, so that its `ttl` is simulated
        // seconds too.
        let base = Instant::now();
        let mut manual: Option<(u64, u64)> = None;
        let now_of = |manual: &Option<(u64, u64)>| match manual {
            Some((first, last)) => base + Duration::from_nanos(last.saturating_sub(*first)),
            None => Instant::now(),
        };
        loop {
            tokio::select! {
                received = rx.recv() => {
                    let (tenant, facts) = match received {
                        None => break,
                        Some(Message::Facts(tenant, facts)) => (tenant, facts),
                        Some(Message::Flush(at_ns, done)) => {
                            let first = manual.map_or(at_ns, |(first, _)| first);
                            manual = Some((first, at_ns.max(first)));
                            let now = now_of(&manual);
                            flush(&mut tenants, &ingest, &receiver_metrics, &metrics, at_ns, now).await;
                            let _ = done.send(());
                            continue;
                        }
                    };
                    let t = tenants.entry(tenant).or_insert_with(|| Tenant {
                        spans: spanmetrics::SpanMetrics::new(config.max_series, start_ns),
                        graph: servicegraph::ServiceGraph::new(config.max_items, config.ttl, start_ns),
                    });
                    let now = now_of(&manual);
                    for f in &facts {
                        if !t.spans.observe(f) {
                            metrics.dropped_spans.inc();
                        }
                        t.graph.observe(f, now);
                    }
                }
                _ = ticker.tick(), if !config.manual_flush => {
                    flush(&mut tenants, &ingest, &receiver_metrics, &metrics, unix_now_ns(), Instant::now()).await;
                }
                () = async { let _ = stop.wait_for(|s| *s).await; } => break,
            }
        }
        if !config.manual_flush {
            flush(
                &mut tenants,
                &ingest,
                &receiver_metrics,
                &metrics,
                unix_now_ns(),
                Instant::now(),
            )
            .await;
        }
    });
    (handle, task)
}

async fn flush(
    tenants: &mut HashMap<TenantId, Tenant>,
    ingest: &OtlpMetricsIngest,
    receiver_metrics: &CollectorMetrics,
    metrics: &ConnectorMetrics,
    now_ns: u64,
    now: Instant,
) {
    let mut pending = 0;
    for (tenant, t) in tenants.iter_mut() {
        let expired = t.graph.expire(now);
        metrics.expired_virtual.inc_by(expired.virtual_nodes);
        metrics.expired_unpaired.inc_by(expired.unpaired);
        pending += t.graph.pending();
        for request in [
            (!t.spans.is_empty()).then(|| t.spans.export(now_ns)),
            (!t.graph.is_empty()).then(|| t.graph.export(now_ns)),
        ]
        .into_iter()
        .flatten()
        {
            let translated = ingest.translate(request, tenant, (now_ns / 1_000_000) as i64);
            if let Err(e) = ingest
                .store(tenant, translated, SOURCE, 0, receiver_metrics)
                .await
            {
                // The next flush exports the same cumulative values again.
                tracing::warn!(tenant = %tenant, error = %e, "span metrics not stored");
            }
        }
    }
    metrics.pending.set(pending as i64);
}

fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

pub(crate) fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(OtlpValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

pub(crate) fn resource(key: &ResourceKey) -> Resource {
    let mut attributes = vec![kv("service.name", &key.service)];
    if !key.namespace.is_empty() {
        attributes.push(kv("service.namespace", &key.namespace));
    }
    if !key.instance.is_empty() {
        attributes.push(kv("service.instance.id", &key.instance));
    }
    Resource {
        attributes,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use sightline_model::{ResourceSpans, ScopeSpans, Span};

    use super::*;
    use crate::otlp::metrics::{DeltaToCumulative, TranslateOptions, translate_request};

    fn span(id: u8, parent: Option<u8>, kind: SpanKind, name: &str, ms: i64) -> Span {
        Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: parent.map(|p| SpanId([p; 8])),
            name: name.into(),
            kind,
            start_ns: 1_000,
            end_ns: 1_000 + ms * 1_000_000,
            ..Default::default()
        }
    }

    fn resource(service: &str, spans: Vec<Span>) -> ResourceSpans {
        ResourceSpans {
            labels: sightline_model::index_labels_from_resource(&[(
                "service.name".to_string(),
                service.to_string(),
            )]),
            resource: vec![("service.name".into(), AnyValue::String(service.into()))],
            scopes: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
        }
    }

    /// frontend (server root → client) → payments (server → database client, failing).
    fn chain() -> SpanBatch {
        let mut db = span(4, Some(3), SpanKind::Client, "SELECT", 3);
        db.attributes = vec![
            ("db.system".into(), AnyValue::String("postgresql".into())),
            ("db.name".into(), AnyValue::String("ledger".into())),
        ];
        db.status_code = StatusCode::Error;
        SpanBatch {
            tenant: TenantId::default(),
            resources: vec![
                resource(
                    "frontend",
                    vec![
                        span(1, None, SpanKind::Server, "GET /checkout", 30),
                        span(2, Some(1), SpanKind::Client, "POST /pay", 20),
                    ],
                ),
                resource(
                    "payments",
                    vec![span(3, Some(2), SpanKind::Server, "POST /pay", 10), db],
                ),
            ],
        }
    }

    #[test]
    fn the_graph_has_one_edge_per_call_and_the_failure_on_the_database_edge() {
        let now = Instant::now();
        let mut g = servicegraph::ServiceGraph::new(100, Duration::from_secs(30), 0);
        for f in facts(&chain()) {
            g.observe(&f, now);
        }
        assert_eq!(
            g.edges(),
            vec![
                ("frontend".into(), "payments".into(), "", 1, 0),
                ("payments".into(), "ledger".into(), "database", 1, 1),
            ]
        );
        assert_eq!(g.pending(), 0, "every side paired");
        assert_eq!(
            g.expire(now + Duration::from_secs(60)),
            servicegraph::Expired::default()
        );
    }

    #[test]
    fn unpaired_sides_expire_into_virtual_nodes_or_unpaired_counts() {
        let now = Instant::now();
        let mut g = servicegraph::ServiceGraph::new(100, Duration::from_secs(30), 0);
        let mut to_cache = span(5, Some(1), SpanKind::Client, "GET", 1);
        to_cache.attributes = vec![("peer.service".into(), AnyValue::String("redis".into()))];
        let anonymous = span(6, Some(1), SpanKind::Client, "GET", 1);
        let orphan_server = span(7, Some(9), SpanKind::Server, "GET", 1);
        let batch = SpanBatch {
            tenant: TenantId::default(),
            resources: vec![resource(
                "frontend",
                vec![to_cache, anonymous, orphan_server],
            )],
        };
        for f in facts(&batch) {
            g.observe(&f, now);
        }
        assert_eq!(g.pending(), 3);
        assert_eq!(
            g.expire(now + Duration::from_secs(1)),
            servicegraph::Expired::default()
        );
        let expired = g.expire(now + Duration::from_secs(31));
        assert_eq!((expired.virtual_nodes, expired.unpaired), (1, 2));
        assert_eq!(
            g.edges(),
            vec![("frontend".into(), "redis".into(), "virtual_node", 1, 0)]
        );
    }

    #[test]
    fn a_full_store_drops_and_counts_new_sides() {
        let now = Instant::now();
        let mut g = servicegraph::ServiceGraph::new(1, Duration::from_secs(30), 0);
        for f in facts(&SpanBatch {
            tenant: TenantId::default(),
            resources: vec![resource(
                "a",
                vec![
                    span(2, Some(1), SpanKind::Client, "x", 1),
                    span(3, Some(1), SpanKind::Client, "y", 1),
                ],
            )],
        }) {
            g.observe(&f, now);
        }
        assert_eq!(g.pending(), 1);
        let names = metric_names(g.export(0));
        assert!(
            names.contains(&"traces_service_graph_dropped_spans_total".to_string()),
            "{names:?}"
        );
    }

    fn metric_names(
        request: opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest,
    ) -> Vec<String> {
        let translated = translate_request(
            request,
            &TenantId::default(),
            1_000,
            TranslateOptions::default(),
            &mut DeltaToCumulative::new(10),
        );
        let mut names: Vec<String> = translated
            .series
            .iter()
            .map(|s| s.labels.get("__name__").unwrap().to_string())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    #[test]
    fn exported_series_have_the_connectors_prometheus_names_and_labels() {
        let mut m = spanmetrics::SpanMetrics::new(100, 0);
        let mut g = servicegraph::ServiceGraph::new(100, Duration::from_secs(30), 0);
        for f in facts(&chain()) {
            assert!(m.observe(&f));
            g.observe(&f, Instant::now());
        }
        let translated = translate_request(
            m.export(2_000_000_000),
            &TenantId::default(),
            2_000,
            TranslateOptions::default(),
            &mut DeltaToCumulative::new(10),
        );
        let calls: Vec<_> = translated
            .series
            .iter()
            .filter(|s| s.labels.get("__name__") == Some("traces_span_metrics_calls_total"))
            .collect();
        assert_eq!(
            calls.len(),
            4,
            "one series per service, name, kind and status"
        );
        let total: f64 = calls.iter().map(|s| s.samples[0].v).sum();
        assert_eq!(total, 4.0, "calls add up to the spans");
        let db = calls
            .iter()
            .find(|s| s.labels.get("span_name") == Some("SELECT"))
            .unwrap();
        assert_eq!(db.labels.get("service_name"), Some("payments"));
        assert_eq!(db.labels.get("span_kind"), Some("SPAN_KIND_CLIENT"));
        assert_eq!(db.labels.get("status_code"), Some("STATUS_CODE_ERROR"));
        assert_eq!(db.labels.get("job"), Some("payments"));
        let names = metric_names(m.export(2_000_000_000));
        assert_eq!(
            names,
            [
                "traces_span_metrics_calls_total",
                "traces_span_metrics_duration_milliseconds_bucket",
                "traces_span_metrics_duration_milliseconds_count",
                "traces_span_metrics_duration_milliseconds_sum",
            ]
        );
        let names = metric_names(g.export(2_000_000_000));
        assert_eq!(
            names,
            [
                "traces_service_graph_request_client_seconds_bucket",
                "traces_service_graph_request_client_seconds_count",
                "traces_service_graph_request_client_seconds_sum",
                "traces_service_graph_request_failed_total",
                "traces_service_graph_request_server_seconds_bucket",
                "traces_service_graph_request_server_seconds_count",
                "traces_service_graph_request_server_seconds_sum",
                "traces_service_graph_request_total",
            ]
        );
    }
}
