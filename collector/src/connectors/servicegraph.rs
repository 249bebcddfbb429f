//! The service graph: request, failure and latency series per client → server edge, as the
//! OpenTelemetry Collector's `servicegraph` connector (after Tempo's) makes them.
//!
//! A client span (kind `CLIENT`, or `PRODUCER` for messaging) and the server span (`SERVER`
//! or `CONSUMER`) whose parent it is make one request on the edge from the client's service to
//! the server's. Each side waits in a bounded store (`max_items` entries, `ttl`) for the other.
//! Uninstrumented peers become *virtual nodes*:
//!
//! - a client span with `db.system` (or `db.name`) is a database call, recorded at once on the
//!   edge to the database, `connection_type="database"`;
//! - a client or producer span that expires unpaired is recorded on the edge to its peer when
//!   it names one — `peer.service`, `db.name`, `db.system`, `messaging.system`,
//!   `server.address`, in that order —, `connection_type="virtual_node"` (`messaging_system`
//!   for producers); otherwise it is counted as unpaired;
//! - a server span that expires unpaired is counted as unpaired (a root span is an entry
//!   point, not an edge: no virtual `user` client is made up).
//!
//! A request failed when either side has status `ERROR`. Series (cumulative):
//! `traces_service_graph_request_total`, `traces_service_graph_request_failed_total`,
//! `traces_service_graph_request_server_seconds` and
//! `traces_service_graph_request_client_seconds` (histograms, the connector's default
//! buckets), `traces_service_graph_unpaired_spans_total` and
//! `traces_service_graph_dropped_spans_total` (the store was full), with labels `client`,
//! `server`, `connection_type`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumberValue;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use sightline_model::{SpanId, SpanKind, StatusCode, TraceId};

use super::{SpanFacts, kv};

/// The connector's default latency buckets, in seconds.
pub const LATENCY_BUCKETS_S: [f64; 16] = [
    0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.4, 2.0, 5.0, 10.0, 15.0,
];

/// One side of a request waiting for the other.
#[derive(Clone)]
struct Side {
    service: String,
    failed: bool,
    seconds: f64,
    /// The client's named peer (for a virtual node) and its connection type.
    peer: Option<(String, &'static str)>,
}

#[derive(Default)]
struct Pending {
    client: Option<Side>,
    server: Option<Side>,
    since: Option<Instant>,
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Edge {
    client: String,
    server: String,
    connection_type: &'static str,
}

#[derive(Default)]
struct EdgeStats {
    requests: u64,
    failed: u64,
    server: Hist,
    client: Hist,
}

#[derive(Default)]
struct Hist {
    count: u64,
    sum: f64,
    buckets: [u64; LATENCY_BUCKETS_S.len() + 1],
}

impl Hist {
    fn observe(&mut self, seconds: f64) {
        self.count += 1;
        self.sum += seconds;
        self.buckets[LATENCY_BUCKETS_S.partition_point(|b| *b < seconds)] += 1;
    }
}

/// What a sweep of expired entries found, for self-monitoring.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expired {
    pub virtual_nodes: u64,
    pub unpaired: u64,
}

/// One tenant's service graph.
pub(crate) struct ServiceGraph {
    pending: HashMap<(TraceId, SpanId), Pending>,
    edges: HashMap<Edge, EdgeStats>,
    unpaired: HashMap<Edge, u64>,
    dropped: HashMap<Edge, u64>,
    max_items: usize,
    ttl: Duration,
    start_ns: u64,
}

impl ServiceGraph {
    pub fn new(max_items: usize, ttl: Duration, start_ns: u64) -> Self {
        Self {
            pending: HashMap::new(),
            edges: HashMap::new(),
            unpaired: HashMap::new(),
            dropped: HashMap::new(),
            max_items,
            ttl,
            start_ns,
        }
    }

    /// Entries waiting for their other side.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    pub fn observe(&mut self, span: &SpanFacts, now: Instant) {
        let side = Side {
            service: span.resource.service.clone(),
            failed: span.status == StatusCode::Error,
            seconds: span.duration_ns as f64 / 1e9,
            peer: span.peer.clone(),
        };
        match span.kind {
            SpanKind::Client | SpanKind::Producer => {
                if let Some((name, "database")) = &side.peer {
                    let edge = Edge {
                        client: side.service.clone(),
                        server: name.clone(),
                        connection_type: "database",
                    };
                    let stats = self.edges.entry(edge).or_default();
                    stats.requests += 1;
                    stats.failed += u64::from(side.failed);
                    stats.client.observe(side.seconds);
                    return;
                }
                self.pair((span.trace_id, span.span_id), side, true, span.kind, now);
            }
            SpanKind::Server | SpanKind::Consumer => {
                // A server span without a parent has no client to pair with.
                let Some(parent) = span.parent else {
                    return;
                };
                self.pair((span.trace_id, parent), side, false, span.kind, now);
            }
            SpanKind::Internal | SpanKind::Unspecified => {}
        }
    }

    fn pair(
        &mut self,
        key: (TraceId, SpanId),
        side: Side,
        is_client: bool,
        kind: SpanKind,
        now: Instant,
    ) {
        let messaging = matches!(kind, SpanKind::Producer | SpanKind::Consumer);
        if !self.pending.contains_key(&key) && self.pending.len() >= self.max_items {
            let edge = if is_client {
                Edge {
                    client: side.service,
                    server: String::new(),
                    connection_type: if messaging { "messaging_system" } else { "" },
                }
            } else {
                Edge {
                    client: String::new(),
                    server: side.service,
                    connection_type: if messaging { "messaging_system" } else { "" },
                }
            };
            *self.dropped.entry(edge).or_default() += 1;
            return;
        }
        let entry = self.pending.entry(key).or_default();
        entry.since.get_or_insert(now);
        if is_client {
            entry.client = Some(side);
        } else {
            entry.server = Some(side);
        }
        if let (Some(c), Some(s)) = (&entry.client, &entry.server) {
            let edge = Edge {
                client: c.service.clone(),
                server: s.service.clone(),
                connection_type: if messaging { "messaging_system" } else { "" },
            };
            let (client_seconds, server_seconds) = (c.seconds, s.seconds);
            let failed = c.failed || s.failed;
            self.pending.remove(&key);
            let stats = self.edges.entry(edge).or_default();
            stats.requests += 1;
            stats.failed += u64::from(failed);
            stats.client.observe(client_seconds);
            stats.server.observe(server_seconds);
        }
    }

    /// Settles entries older than the TTL: clients naming a peer become requests to a
    /// virtual node, the rest are counted as unpaired.
    pub fn expire(&mut self, now: Instant) -> Expired {
        let ttl = self.ttl;
        let expired: Vec<(TraceId, SpanId)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.since.is_some_and(|t| now.duration_since(t) >= ttl))
            .map(|(k, _)| *k)
            .collect();
        let mut out = Expired::default();
        for key in expired {
            let Some(p) = self.pending.remove(&key) else {
                continue;
            };
            match (p.client, p.server) {
                (Some(c), None) => match c.peer.clone() {
                    Some((peer, connection_type)) => {
                        let edge = Edge {
                            client: c.service,
                            server: peer,
                            connection_type,
                        };
                        let stats = self.edges.entry(edge).or_default();
                        stats.requests += 1;
                        stats.failed += u64::from(c.failed);
                        stats.client.observe(c.seconds);
                        out.virtual_nodes += 1;
                    }
                    None => {
                        let edge = Edge {
                            client: c.service,
                            server: String::new(),
                            connection_type: "",
                        };
                        *self.unpaired.entry(edge).or_default() += 1;
                        out.unpaired += 1;
                    }
                },
                (None, Some(s)) => {
                    let edge = Edge {
                        client: String::new(),
                        server: s.service,
                        connection_type: "",
                    };
                    *self.unpaired.entry(edge).or_default() += 1;
                    out.unpaired += 1;
                }
                _ => {}
            }
        }
        out
    }

    /// The edges as `(client, server, connection_type, requests, failed)`, sorted.
    #[cfg(test)]
    pub fn edges(&self) -> Vec<(String, String, &'static str, u64, u64)> {
        let mut v: Vec<_> = self
            .edges
            .iter()
            .map(|(e, s)| {
                (
                    e.client.clone(),
                    e.server.clone(),
                    e.connection_type,
                    s.requests,
                    s.failed,
                )
            })
            .collect();
        v.sort();
        v
    }

    pub fn is_empty(&self) -> bool {
        self.edges.is_empty() && self.unpaired.is_empty() && self.dropped.is_empty()
    }

    /// Every series as the connector would export it at `now_ns`.
    pub fn export(&self, now_ns: u64) -> ExportMetricsServiceRequest {
        let attributes = |e: &Edge| {
            vec![
                kv("client", &e.client),
                kv("server", &e.server),
                kv("connection_type", e.connection_type),
            ]
        };
        let counter = |name: &str, points: Vec<(&Edge, u64)>| Metric {
            name: name.into(),
            data: Some(Data::Sum(Sum {
                data_points: points
                    .into_iter()
                    .map(|(e, n)| NumberDataPoint {
                        attributes: attributes(e),
                        start_time_unix_nano: self.start_ns,
                        time_unix_nano: now_ns,
                        value: Some(NumberValue::AsInt(n as i64)),
                        ..Default::default()
                    })
                    .collect(),
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        };
        let histogram = |name: &str, pick: fn(&EdgeStats) -> &Hist| Metric {
            name: name.into(),
            unit: "s".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: self
                    .edges
                    .iter()
                    .filter(|(_, s)| pick(s).count > 0)
                    .map(|(e, s)| {
                        let h = pick(s);
                        HistogramDataPoint {
                            attributes: attributes(e),
                            start_time_unix_nano: self.start_ns,
                            time_unix_nano: now_ns,
                            count: h.count,
                            sum: Some(h.sum),
                            bucket_counts: h.buckets.to_vec(),
                            explicit_bounds: LATENCY_BUCKETS_S.to_vec(),
                            ..Default::default()
                        }
                    })
                    .collect(),
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
            ..Default::default()
        };
        let mut metrics = vec![
            counter(
                "traces_service_graph_request_total",
                self.edges.iter().map(|(e, s)| (e, s.requests)).collect(),
            ),
            counter(
                "traces_service_graph_request_failed_total",
                self.edges.iter().map(|(e, s)| (e, s.failed)).collect(),
            ),
            histogram("traces_service_graph_request_server_seconds", |s| &s.server),
            histogram("traces_service_graph_request_client_seconds", |s| &s.client),
        ];
        if !self.unpaired.is_empty() {
            metrics.push(counter(
                "traces_service_graph_unpaired_spans_total",
                self.unpaired.iter().map(|(e, n)| (e, *n)).collect(),
            ));
        }
        if !self.dropped.is_empty() {
            metrics.push(counter(
                "traces_service_graph_dropped_spans_total",
                self.dropped.iter().map(|(e, n)| (e, *n)).collect(),
            ));
        }
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: None,
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "servicegraphconnector".into(),
                        ..Default::default()
                    }),
                    metrics,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }
}
