//! One tick of the estate as OTLP: traces of user requests through the call graph (with the
//! dependencies' client spans, so the server's service graph and topology learn the calls),
//! pod and node metrics, and logs — all under the resource attributes Kubernetes resource
//! detection gives. Latency and errors follow from each service's own work, its pod's state
//! and what it calls, so a fault shows where it is and everywhere above it.

use std::collections::{BTreeMap, HashMap};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};

use crate::estate::{DepKind, Estate, Pod};
use crate::faults::{Effects, Fault};

/// splitmix64: small, seedable, good enough for noise.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// One tick's signals.
#[derive(Debug, Default)]
pub struct Batch {
    pub traces: ExportTraceServiceRequest,
    pub metrics: ExportMetricsServiceRequest,
    pub logs: ExportLogsServiceRequest,
}

pub struct Sim {
    pub estate: Estate,
    rng: Rng,
    /// Restarts per pod so far (cumulative counter).
    restarts: HashMap<String, f64>,
    trace_seq: u64,
}

/// The load factor of a moment: a daily curve (quiet at night, busy mid-morning and
/// afternoon) and a weekly one (weekends light); `sim_ms` is the simulated time.
pub fn load(sim_ms: i64) -> f64 {
    let day = (sim_ms.rem_euclid(86_400_000)) as f64 / 86_400_000.0;
    let hour = day * 24.0;
    let daily = 0.25
        + 0.75 * (-((hour - 10.5) / 3.5).powi(2)).exp()
        + 0.6 * (-((hour - 15.5) / 3.0).powi(2)).exp();
    // 1970-01-01 was a Thursday: day 2 and 3 of the week are the weekend.
    let weekday = (sim_ms.div_euclid(86_400_000) + 3).rem_euclid(7);
    let weekly = if weekday >= 5 { 0.35 } else { 1.0 };
    (daily * weekly).max(0.1)
}

struct Call {
    dur_ms: f64,
    error: bool,
}

impl Sim {
    pub fn new(estate: Estate, seed: u64) -> Self {
        Sim {
            estate,
            rng: Rng::new(seed),
            restarts: HashMap::new(),
            trace_seq: seed << 32,
        }
    }

    fn pod_resource(&self, pod: &Pod, version: &str) -> Resource {
        Resource {
            attributes: vec![
                kv("service.name", &pod.service),
                kv("service.instance.id", &pod.name),
                kv("service.version", version),
                kv("k8s.pod.name", &pod.name),
                kv("k8s.namespace.name", &pod.namespace),
                kv("k8s.deployment.name", &pod.service),
                kv("k8s.node.name", &pod.node),
                kv("k8s.cluster.name", &self.estate.cluster),
                kv("cloud.availability_zone", &pod.zone),
                kv("cloud.region", &pod.region),
                kv("deployment.environment", "production"),
            ],
            ..Default::default()
        }
    }

    fn node_resource(&self, node: &crate::estate::Node) -> Resource {
        Resource {
            attributes: vec![
                kv("service.name", "node-exporter"),
                kv("service.instance.id", &node.name),
                kv("k8s.node.name", &node.name),
                kv("k8s.cluster.name", &self.estate.cluster),
                kv("cloud.availability_zone", &node.zone),
                kv("cloud.region", &node.region),
            ],
            ..Default::default()
        }
    }

    /// Signals of the tick ending at `t_ms` (`step_ms` long) with the faults in force.
    pub fn tick(&mut self, t_ms: i64, step_ms: i64, sim_ms: i64, faults: &[Fault]) -> Batch {
        // The tick reports the `step_ms` before `t_ms`: what happened in it follows the faults
        // active from its start (none shows before it began).
        let fx = Effects::at(faults, t_ms - step_ms);
        let l = load(sim_ms);
        let mut spans: BTreeMap<String, Vec<Span>> = BTreeMap::new();
        let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut served: BTreeMap<String, f64> = BTreeMap::new();
        // User requests through the gateway, and the scheduler's jobs.
        let requests = (4.0 + 8.0 * l).round() as usize;
        let mut entries: Vec<&str> = vec![self.estate.gateway.as_str(); requests];
        for s in &self.estate.services {
            if s.name.starts_with("scheduler")
                || (s.name.starts_with("gateway") && s.name != self.estate.gateway)
            {
                entries.push(s.name.as_str());
            }
        }
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        for entry in entries {
            self.trace_seq += 1;
            let trace_id = [self.trace_seq.to_be_bytes(), 0x5167_6874u64.to_be_bytes()].concat();
            let start_ns = (t_ms - step_ms + self.rng.below(step_ms as u64 / 2) as i64) * 1_000_000;
            self.request(
                &entry,
                None,
                &trace_id,
                None,
                start_ns,
                &fx,
                t_ms,
                &mut spans,
                &mut errors,
                &mut served,
            );
        }
        let mut batch = Batch::default();
        for (pod_name, spans) in spans {
            let pod = self
                .estate
                .pods
                .iter()
                .find(|p| p.name == pod_name)
                .expect("pod");
            let svc = self.estate.service(&pod.service).expect("service");
            batch.traces.resource_spans.push(ResourceSpans {
                resource: Some(self.pod_resource(pod, fx.version(svc))),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        self.metrics(&mut batch, &fx, l, t_ms);
        self.logs(&mut batch, &fx, &errors, &served, t_ms);
        // A partitioned zone's telemetry cannot reach the server (it runs in the other zone
        // of the region): nothing from its nodes and pods arrives while the partition lasts.
        let reaches = |r: &Option<Resource>| {
            !r.as_ref().is_some_and(|r| {
                r.attributes.iter().any(|a| {
                    a.key == "cloud.availability_zone"
                        && matches!(
                            a.value.as_ref().and_then(|v| v.value.as_ref()),
                            Some(any_value::Value::StringValue(z)) if fx.cut_off(z)
                        )
                })
            })
        };
        batch.traces.resource_spans.retain(|r| reaches(&r.resource));
        batch
            .metrics
            .resource_metrics
            .retain(|r| reaches(&r.resource));
        batch.logs.resource_logs.retain(|r| reaches(&r.resource));
        batch
    }

    /// One request to `service` (from `caller`'s pod, when called): its spans, its duration
    /// and whether it failed.
    #[allow(clippy::too_many_arguments)]
    fn request(
        &mut self,
        service: &str,
        caller_zone: Option<&str>,
        trace_id: &[u8],
        parent: Option<Vec<u8>>,
        start_ns: i64,
        fx: &Effects<'_>,
        t_ms: i64,
        spans: &mut BTreeMap<String, Vec<Span>>,
        errors: &mut BTreeMap<String, Vec<String>>,
        served: &mut BTreeMap<String, f64>,
    ) -> Call {
        let svc = self.estate.service(service).expect("service").clone();
        // Requests go to the pods of the region (the DR standby takes none); a caller
        // prefers its own zone's pod.
        let pods: Vec<Pod> = self
            .estate
            .pods_of(service)
            .filter(|p| p.region == "gd-east")
            .cloned()
            .collect();
        let pod = match caller_zone {
            Some(z) if self.rng.unit() < 0.7 => {
                pods.iter().find(|p| p.zone == z).unwrap_or(&pods[0])
            }
            _ => &pods[self.rng.below(pods.len() as u64) as usize],
        }
        .clone();
        *served.entry(pod.name.clone()).or_default() += 1.0;
        let pe = fx.pod(&self.estate, &pod, t_ms);
        let span_id = self.rng.next_u64().to_be_bytes().to_vec();
        // A pod cut off by a partition: the call times out.
        if pe.unreachable && caller_zone.is_some_and(|z| z != pod.zone) {
            errors
                .entry(pod.name.clone())
                .or_default()
                .push("connection reset by peer".into());
            return Call {
                dur_ms: 1_000.0,
                error: true,
            };
        }
        let jitter = 0.85 + 0.3 * self.rng.unit();
        let own = svc.base_ms * pe.slow * jitter;
        let mut cursor = start_ns + (own / 2.0 * 1e6) as i64;
        let mut failed = self.rng.unit() < svc.base_err + pe.err;
        if failed {
            let why = if pe.oom {
                "java.lang.OutOfMemoryError: Java heap space; container OOMKilled, restarting"
            } else if pe.pool_full {
                "HikariPool-1 - Connection is not available, request timed out after 30000ms"
            } else if fx.node(&pod.node).1 {
                "write /var/lib/app/tmp/upload.part: No space left on device"
            } else {
                "internal error handling request: NullPointerException at BudgetService.java:214"
            };
            errors.entry(pod.name.clone()).or_default().push(why.into());
        }
        let mut child_spans = Vec::new();
        for callee in &svc.calls {
            let tries = if fx.storm(callee).is_some() { 3 } else { 1 };
            for attempt in 0..tries {
                let client_id = self.rng.next_u64().to_be_bytes().to_vec();
                let answered = self.request(
                    callee,
                    Some(&pod.zone),
                    trace_id,
                    Some(client_id.clone()),
                    cursor,
                    fx,
                    t_ms,
                    spans,
                    errors,
                    served,
                );
                // In a storm the callee is overwhelmed: every attempt times out.
                let c = if tries > 1 {
                    Call {
                        dur_ms: 800.0,
                        error: true,
                    }
                } else {
                    answered
                };
                let end = cursor + (c.dur_ms * 1e6) as i64;
                child_spans.push(client_span(
                    trace_id,
                    &client_id,
                    &span_id,
                    &format!("GET /{callee}"),
                    cursor,
                    end,
                    vec![
                        kv("peer.service", callee),
                        kv("rpc.attempt", &attempt.to_string()),
                    ],
                    c.error,
                ));
                cursor = end;
                if c.error && attempt + 1 == tries {
                    if self.rng.unit() < 0.7 {
                        failed = true;
                    }
                    errors.entry(pod.name.clone()).or_default().push(format!(
                        "upstream {callee} failed after {tries} attempt(s): timeout"
                    ));
                }
            }
        }
        for dep in &svc.deps {
            let d = self.estate.dep(dep).expect("dependency").clone();
            let (add, err) = fx.dependency(dep);
            let mut dur = d.base_ms * (0.8 + 0.4 * self.rng.unit()) + add;
            let dep_failed = self.rng.unit() < err;
            if pe.pool_full && d.kind == DepKind::Database {
                dur += 150.0;
            }
            let client_id = self.rng.next_u64().to_be_bytes().to_vec();
            let mut attrs = vec![kv("peer.service", dep)];
            match d.kind {
                DepKind::Database | DepKind::Cache => {
                    attrs.push(kv("db.system", d.system));
                    attrs.push(kv("db.name", dep));
                }
                DepKind::Queue => {
                    attrs.push(kv("messaging.system", d.system));
                    attrs.push(kv("messaging.destination.name", dep));
                }
            }
            let end = cursor + (dur * 1e6) as i64;
            let name = match d.kind {
                DepKind::Database => "SELECT finance",
                DepKind::Cache => "GET session",
                DepKind::Queue => "publish payments",
            };
            child_spans.push(client_span(
                trace_id, &client_id, &span_id, name, cursor, end, attrs, dep_failed,
            ));
            cursor = end;
            if dep_failed {
                // A cache that fails is read through to the database.
                let fallback = 8.0 + fx.dependency("finance-db").0;
                cursor += (fallback * 1e6) as i64;
                errors.entry(pod.name.clone()).or_default().push(format!(
                    "{dep} unavailable (connection refused); falling back to finance-db"
                ));
            }
        }
        let end_ns = cursor + (own / 2.0 * 1e6) as i64;
        let mut server = client_span(
            trace_id,
            &span_id,
            parent.as_deref().unwrap_or(&[]),
            &format!("GET /{service}"),
            start_ns,
            end_ns,
            vec![kv("http.route", &format!("/{service}"))],
            failed,
        );
        server.kind = span::SpanKind::Server as i32;
        let list = spans.entry(pod.name.clone()).or_default();
        list.push(server);
        list.extend(child_spans);
        Call {
            dur_ms: (end_ns - start_ns) as f64 / 1e6,
            error: failed,
        }
    }

    fn metrics(&mut self, batch: &mut Batch, fx: &Effects<'_>, l: f64, t_ms: i64) {
        let t_ns = (t_ms * 1_000_000) as u64;
        let gauge = |name: &str, unit: &str, v: f64| Metric {
            name: name.into(),
            unit: unit.into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    time_unix_nano: t_ns,
                    value: Some(number_data_point::Value::AsDouble(v)),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        };
        let pods = self.estate.pods.clone();
        let mut node_cpu: HashMap<String, f64> = HashMap::new();
        for pod in &pods {
            let svc = self.estate.service(&pod.service).expect("service").clone();
            let pe = fx.pod(&self.estate, pod, t_ms);
            let standby = pod.region != "gd-east";
            let cpu = if standby {
                0.02
            } else {
                (0.15 + 0.35 * l) * pe.work.min(3.0) / 1.5 + 0.02 * self.rng.unit()
            };
            *node_cpu.entry(pod.node.clone()).or_default() += cpu / 4.0;
            if pe.oom {
                *self.restarts.entry(pod.name.clone()).or_default() += 1.0;
            }
            let restarts = self.restarts.get(&pod.name).copied().unwrap_or(0.0);
            let mut metrics = vec![
                gauge("container.cpu.utilization", "1", cpu.min(1.0)),
                gauge(
                    "container.memory.utilization",
                    "1",
                    if pe.memory > 0.0 {
                        pe.memory
                    } else {
                        0.42 + 0.03 * self.rng.unit()
                    },
                ),
                Metric {
                    name: "k8s.container.restarts".into(),
                    unit: "{restart}".into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: vec![NumberDataPoint {
                            time_unix_nano: t_ns,
                            value: Some(number_data_point::Value::AsDouble(restarts)),
                            ..Default::default()
                        }],
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                },
            ];
            if svc.deps.iter().any(|d| d == "finance-db") {
                let used = if pe.pool_full {
                    1.0
                } else {
                    (0.2 + 0.3 * l).min(0.9)
                };
                metrics.push(gauge("db.client.connections.utilization", "1", used));
            }
            if svc.deps.iter().any(|d| d == "payment-mq") {
                let depth = 20.0 * l
                    + 5.0 * self.rng.unit()
                    + if fx.storm(&svc.name).is_some() {
                        400.0
                    } else {
                        0.0
                    };
                metrics.push(gauge("messaging.queue.depth", "{message}", depth));
            }
            batch.metrics.resource_metrics.push(ResourceMetrics {
                resource: Some(self.pod_resource(pod, fx.version(&svc))),
                scope_metrics: vec![ScopeMetrics {
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        for node in self.estate.nodes.clone() {
            let (extra, full) = fx.node(&node.name);
            let cpu = (0.1 + node_cpu.get(&node.name).copied().unwrap_or(0.0) + extra).min(0.99);
            let disk = if full {
                1.0
            } else {
                0.55 + 0.01 * self.rng.unit()
            };
            batch.metrics.resource_metrics.push(ResourceMetrics {
                resource: Some(self.node_resource(&node)),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        gauge("system.cpu.utilization", "1", cpu),
                        gauge("system.filesystem.utilization", "1", disk),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
    }

    fn logs(
        &mut self,
        batch: &mut Batch,
        fx: &Effects<'_>,
        errors: &BTreeMap<String, Vec<String>>,
        served: &BTreeMap<String, f64>,
        t_ms: i64,
    ) {
        let t_ns = (t_ms * 1_000_000) as u64;
        let record = |severity: i32, text: &str, body: String| LogRecord {
            time_unix_nano: t_ns,
            observed_time_unix_nano: t_ns,
            severity_number: severity,
            severity_text: text.into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(body)),
            }),
            ..Default::default()
        };
        for (pod_name, n) in served {
            let pod = self
                .estate
                .pods
                .iter()
                .find(|p| &p.name == pod_name)
                .expect("pod")
                .clone();
            let svc = self.estate.service(&pod.service).expect("service").clone();
            let mut records = vec![record(
                9,
                "INFO",
                format!(
                    "handled {} requests for /{} in this interval",
                    *n as u64, pod.service
                ),
            )];
            for e in errors.get(pod_name).into_iter().flatten().take(20) {
                records.push(record(17, "ERROR", e.clone()));
            }
            batch.logs.resource_logs.push(ResourceLogs {
                resource: Some(self.pod_resource(&pod, fx.version(&svc))),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn client_span(
    trace_id: &[u8],
    span_id: &[u8],
    parent: &[u8],
    name: &str,
    start_ns: i64,
    end_ns: i64,
    attributes: Vec<KeyValue>,
    error: bool,
) -> Span {
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        parent_span_id: parent.to_vec(),
        name: name.into(),
        kind: span::SpanKind::Client as i32,
        start_time_unix_nano: start_ns.max(0) as u64,
        end_time_unix_nano: end_ns.max(start_ns).max(0) as u64,
        attributes,
        status: Some(Status {
            code: if error {
                status::StatusCode::Error as i32
            } else {
                status::StatusCode::Ok as i32
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{FaultKind, root_cause};

    fn fault(e: &Estate, kind: FaultKind, target: &str) -> Fault {
        Fault {
            id: 1,
            kind,
            target: target.into(),
            start_ms: 0,
            end_ms: i64::MAX,
            root_cause: root_cause(e, kind, target),
            right_actions: kind.right_actions(),
        }
    }

    /// Mean duration of the gateway's server spans over a few ticks.
    fn gateway_ms(sim: &mut Sim, faults: &[Fault]) -> f64 {
        let mut total = 0.0;
        let mut n = 0.0;
        for i in 1..=5 {
            let b = sim.tick(i * 5_000, 5_000, 10 * 3_600_000, faults);
            for rs in &b.traces.resource_spans {
                for s in &rs.scope_spans[0].spans {
                    if s.kind == span::SpanKind::Server as i32 && s.name == "GET /gateway" {
                        total += (s.end_time_unix_nano - s.start_time_unix_nano) as f64 / 1e6;
                        n += 1.0;
                    }
                }
            }
        }
        total / n
    }

    #[test]
    fn a_slow_database_slows_the_entry_point() {
        let e = Estate::finance(1);
        let mut sim = Sim::new(e.clone(), 1);
        let normal = gateway_ms(&mut sim, &[]);
        let slow = gateway_ms(&mut sim, &[fault(&e, FaultKind::SlowDb, "")]);
        assert!(slow > normal + 500.0, "{normal} → {slow}");
    }

    #[test]
    fn every_kind_changes_what_the_estate_reports() {
        let e = Estate::finance(1);
        for kind in FaultKind::ALL {
            let target = crate::faults::target(&e, kind, None, 3).unwrap();
            let f = [fault(&e, kind, &target)];
            let a = Sim::new(e.clone(), 2).tick(5_000, 5_000, 0, &[]);
            let b = Sim::new(e.clone(), 2).tick(5_000, 5_000, 0, &f);
            let (a, b) = (
                format!("{:?}{:?}{:?}", a.traces, a.metrics, a.logs),
                format!("{:?}{:?}{:?}", b.traces, b.metrics, b.logs),
            );
            assert!(a != b, "{} changes nothing", kind.as_str());
        }
        assert!(
            load(10 * 3_600_000) > 2.0 * load(3 * 3_600_000),
            "busy morning, quiet night"
        );
    }
}
