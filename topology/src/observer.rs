//! [`Observer`]: the ingest [`Tap`] that learns the estate from every signal on its way in.
//!
//! For each batch it looks at what names the estate — the resource of each log stream and
//! span batch, the `target_info`, `up` and `job`/`instance` labels of metric series, the
//! client spans that call a database, cache or queue, and the service graph's edge series —
//! and turns what is new into [`Fact`]s, which go through the topology's WAL before the
//! batch is acknowledged.
//!
//! Cheap when nothing is new, which is nearly always: every resource and every fact is
//! hashed, and one that was written less than `resolution` ago is skipped. A request whose
//! facts another request is still writing waits for that write too, so no acknowledgement
//! runs ahead of its facts. The memory of recent keys is bounded (`MAX_RECENT`; when full it
//! is cleared and facts are written once more).
//!
//! The service graph's counters also feed the call rates, error rates and latencies of the
//! relations, in memory: the TSDB keeps the series themselves.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

use sightline_ingest::{IngestError, IngestHandle, Submission, Tap};
use sightline_model::labels::attribute_to_label_name;
use sightline_model::{AnyValue, Labels, LogBatch, MetricBatch, SpanBatch, SpanKind, TenantId};
use tokio::sync::Notify;

use crate::facts::{Fact, FactBatch};
use crate::graph::CallCounters;
use crate::identity::{self, ResourceView, dependency_of_client_span};
use crate::model::{EntityId, EntityKind, RelationKind};
use crate::store::Topology;

/// Keys remembered before the memory is cleared.
const MAX_RECENT: usize = 1 << 20;

/// Resource attributes that identify or describe entities, looked up in labels (metric
/// series, Loki streams) under their label names and these aliases (Kubernetes service
/// discovery's usual target labels).
const LABEL_ATTRIBUTES: &[(&str, &[&str])] = &[
    ("service.name", &["service"]),
    ("service.namespace", &[]),
    ("service.instance.id", &[]),
    ("service.version", &["version"]),
    ("deployment.environment", &["env", "environment"]),
    ("deployment.environment.name", &[]),
    ("cloud.region", &["region"]),
    ("cloud.availability_zone", &["zone", "availability_zone"]),
    ("cloud.provider", &[]),
    ("cloud.platform", &[]),
    ("host.name", &["hostname", "host"]),
    ("host.id", &[]),
    ("host.type", &[]),
    ("host.arch", &[]),
    ("os.type", &[]),
    ("k8s.cluster.name", &["cluster"]),
    ("k8s.cluster.uid", &[]),
    ("k8s.namespace.name", &["namespace"]),
    ("k8s.node.name", &["node"]),
    ("k8s.node.uid", &[]),
    ("k8s.pod.name", &["pod"]),
    ("k8s.pod.uid", &[]),
    ("k8s.container.name", &["container"]),
    ("k8s.deployment.name", &["deployment"]),
    ("k8s.statefulset.name", &["statefulset"]),
    ("k8s.daemonset.name", &["daemonset"]),
    ("k8s.cronjob.name", &[]),
    ("k8s.job.name", &[]),
    ("k8s.replicaset.name", &[]),
    ("container.id", &[]),
    ("container.name", &[]),
    ("container.image.name", &[]),
    ("container.image.tag", &[]),
    ("application.name", &["application"]),
    ("telemetry.sdk.language", &[]),
];

/// `LABEL_ATTRIBUTES` with the label name of each attribute computed once.
fn label_attributes() -> &'static [(&'static str, String, &'static [&'static str])] {
    static TABLE: OnceLock<Vec<(&'static str, String, &'static [&'static str])>> = OnceLock::new();
    TABLE.get_or_init(|| {
        LABEL_ATTRIBUTES
            .iter()
            .map(|(attr, aliases)| (*attr, attribute_to_label_name(attr), *aliases))
            .collect()
    })
}

/// The attribute `attr` among `labels`, under its label name or an alias.
fn from_labels<'a>(labels: &'a Labels, attr: &str) -> Option<&'a str> {
    let (_, label, aliases) = label_attributes().iter().find(|(a, _, _)| *a == attr)?;
    labels
        .get(label)
        .or_else(|| aliases.iter().find_map(|a| labels.get(a)))
}

/// The series names of the service graph.
const REQUESTS: &str = "traces_service_graph_request_total";
const FAILED: &str = "traces_service_graph_request_failed_total";
const SERVER_SECONDS_SUM: &str = "traces_service_graph_request_server_seconds_sum";
const SERVER_SECONDS_COUNT: &str = "traces_service_graph_request_server_seconds_count";

/// Whether a write of facts is done, and how it ended; shared by every request that waits
/// for it.
#[derive(Default)]
struct Ticket {
    result: OnceLock<Result<(), IngestError>>,
    done: Notify,
}

impl Ticket {
    fn finish(&self, result: Result<(), IngestError>) {
        let _ = self.result.set(result);
        self.done.notify_waiters();
    }

    fn failed(&self) -> bool {
        matches!(self.result.get(), Some(Err(_)))
    }

    async fn wait(&self) -> Result<(), IngestError> {
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(result) = self.result.get() {
                return result.clone();
            }
            notified.await;
        }
    }
}

/// A key written recently: the span of times written and the write.
struct Recent {
    first: i64,
    last: i64,
    ticket: Arc<Ticket>,
}

/// Learns the estate from ingested batches.
pub struct Observer {
    topology: Arc<Topology>,
    facts: IngestHandle<FactBatch>,
    recent: Mutex<HashMap<u64, Recent>>,
    resolution_ms: i64,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer").finish_non_exhaustive()
    }
}

/// The facts one batch taught, being gathered.
struct Learning<'a> {
    observer: &'a Observer,
    tenant: &'a TenantId,
    recent: std::sync::MutexGuard<'a, HashMap<u64, Recent>>,
    facts: Vec<Fact>,
    ticket: Arc<Ticket>,
    wait: Vec<Arc<Ticket>>,
}

impl Learning<'_> {
    fn key(&self, what: impl Hash) -> u64 {
        let mut h = DefaultHasher::new();
        self.tenant.as_str().hash(&mut h);
        what.hash(&mut h);
        h.finish()
    }

    /// Whether `key` at time `t` is new (and is now being written); otherwise the request
    /// waits for the write that has it, if that is still running.
    fn is_new(&mut self, key: u64, t: i64) -> bool {
        let res = self.observer.resolution_ms;
        if let Some(r) = self.recent.get_mut(&key)
            && !r.ticket.failed()
            && t >= r.first.saturating_sub(res)
            && t <= r.last.saturating_add(res)
        {
            if r.ticket.result.get().is_none() && !Arc::ptr_eq(&r.ticket, &self.ticket) {
                self.wait.push(r.ticket.clone());
            }
            return false;
        }
        if self.recent.len() >= MAX_RECENT {
            self.recent.clear();
        }
        let (first, last) = match self.recent.get(&key) {
            Some(r) if !r.ticket.failed() => (r.first.min(t), r.last.max(t)),
            _ => (t, t),
        };
        self.recent.insert(
            key,
            Recent {
                first,
                last,
                ticket: self.ticket.clone(),
            },
        );
        true
    }

    /// Learns what a resource names, seen at `t`; `resource_key` identifies the resource.
    fn resource(&mut self, resource_key: u64, t: i64, view: impl FnOnce() -> ResourceView) {
        if !self.is_new(resource_key, t) {
            return;
        }
        let view = view();
        for e in view.entities {
            if self.is_new(self.key((&e.id, &e.attributes)), t) {
                self.facts.push(Fact::Seen {
                    id: e.id,
                    name: e.name,
                    attributes: e.attributes,
                    time: t,
                });
            }
        }
        for r in view.relations {
            self.relation(r.from, r.to, r.kind, t);
        }
    }

    fn entity(&mut self, id: EntityId, name: &str, attributes: Vec<(String, String)>, t: i64) {
        if self.is_new(self.key((&id, &attributes)), t) {
            self.facts.push(Fact::Seen {
                id,
                name: name.to_string(),
                attributes,
                time: t,
            });
        }
    }

    fn relation(&mut self, from: EntityId, to: EntityId, kind: RelationKind, t: i64) {
        if self.is_new(self.key((&from, &to, kind)), t) {
            self.facts.push(Fact::Related {
                from,
                to,
                kind,
                time: t,
            });
        }
    }

    /// Writes the facts gathered. This batch's ticket — the one its new keys point to —
    /// finishes once they are durable *and* every other write this batch's keys were found
    /// in has finished: a later batch that finds a key here may rely on everything behind
    /// it (a resource key whose facts another request is writing). Tickets only wait for
    /// earlier ones (learning is serialised by the key map's lock), so they cannot wait in
    /// a circle.
    fn finish(self) -> Option<Submission<()>> {
        let Learning {
            observer,
            tenant,
            recent,
            facts,
            ticket,
            wait,
        } = self;
        drop(recent);
        if facts.is_empty() && wait.is_empty() {
            ticket.finish(Ok(()));
            return None;
        }
        let submitted = (!facts.is_empty()).then(|| {
            observer.facts.submit(FactBatch {
                tenant: tenant.clone(),
                facts,
            })
        });
        let done = ticket.clone();
        // The ticket finishes even if this request goes away: others may wait for it.
        tokio::spawn(async move {
            let mut result = match submitted {
                Some(s) => s.await,
                None => Ok(()),
            };
            for t in wait {
                let r = t.wait().await;
                result = result.and(r);
            }
            done.finish(result);
        });
        Some(Box::pin(async move { ticket.wait().await }))
    }
}

/// Milliseconds from nanoseconds, 0 staying "unknown".
fn ms(ns: i64) -> i64 {
    ns / 1_000_000
}

impl Observer {
    /// An observer writing facts through `facts` (the topology WAL's queue), with keys
    /// written again after `resolution`.
    pub fn new(topology: Arc<Topology>, facts: IngestHandle<FactBatch>) -> Self {
        let resolution_ms = topology.config().resolution.as_millis() as i64;
        Observer {
            topology,
            facts,
            recent: Mutex::new(HashMap::new()),
            resolution_ms,
        }
    }

    fn learning<'a>(&'a self, tenant: &'a TenantId) -> Learning<'a> {
        Learning {
            observer: self,
            tenant,
            recent: self.recent.lock().unwrap_or_else(|p| p.into_inner()),
            facts: Vec::new(),
            ticket: Arc::new(Ticket::default()),
            wait: Vec::new(),
        }
    }

    /// When an observation with no usable time happened: now.
    fn now_ms() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }

    /// Data times are trusted up to a little in the future (clock skew).
    fn clamp(t: i64) -> i64 {
        let now = Self::now_ms();
        if t <= 0 { now } else { t.min(now + 5 * 60_000) }
    }

    fn learn_logs(&self, batch: &LogBatch) -> Option<Submission<()>> {
        let mut l = self.learning(&batch.tenant);
        for stream in &batch.streams {
            let Some(t) = stream.records.iter().map(|r| ms(r.timestamp_ns)).max() else {
                continue;
            };
            let t = Self::clamp(t);
            if stream.resource.is_empty() {
                let key = l.key(("labels", stream.labels.to_canonical()));
                l.resource(key, t, || {
                    identity::from_resource(|a| from_labels(&stream.labels, a))
                });
            } else {
                let key = l.key(("resource", &stream.resource));
                l.resource(key, t, || {
                    identity::from_resource(|a| {
                        stream
                            .resource
                            .iter()
                            .find(|(k, _)| k == a)
                            .map(|(_, v)| v.as_str())
                    })
                });
            }
        }
        l.finish()
    }

    fn learn_spans(&self, batch: &SpanBatch) -> Option<Submission<()>> {
        let mut l = self.learning(&batch.tenant);
        for rs in &batch.resources {
            let spans = || rs.scopes.iter().flat_map(|s| &s.spans);
            let Some(t) = spans().map(|s| ms(s.end_ns.max(s.start_ns))).max() else {
                continue;
            };
            let t = Self::clamp(t);
            let get = |a: &str| {
                rs.resource
                    .iter()
                    .find(|(k, _)| k == a)
                    .and_then(|(_, v)| match v {
                        AnyValue::String(s) => Some(s.as_str()),
                        _ => None,
                    })
            };
            let mut h = DefaultHasher::new();
            for (k, v) in &rs.resource {
                k.hash(&mut h);
                v.to_text().hash(&mut h);
            }
            let key = l.key(("spans", h.finish()));
            l.resource(key, t, || identity::from_resource(get));
            let Some(service) = get("service.name").filter(|s| !identity::is_unknown_service(s))
            else {
                continue;
            };
            let service_id = EntityId::new(EntityKind::Service, [service]);
            for span in spans() {
                if !matches!(span.kind, SpanKind::Client | SpanKind::Producer) {
                    continue;
                }
                let attr = |a: &str| {
                    span.attributes
                        .iter()
                        .find(|(k, _)| k == a)
                        .and_then(|(_, v)| match v {
                            AnyValue::String(s) => Some(s.as_str()),
                            _ => None,
                        })
                };
                let Some((kind, name, _)) = dependency_of_client_span(attr) else {
                    continue;
                };
                let t = Self::clamp(ms(span.end_ns.max(span.start_ns)));
                let dep = EntityId::new(kind, [name]);
                let key = l.key(("dependency", &service_id, &dep));
                if !l.is_new(key, t) {
                    continue;
                }
                let attributes: Vec<(String, String)> = [
                    "db.system",
                    "db.name",
                    "messaging.system",
                    "messaging.destination.name",
                    "server.address",
                    "peer.service",
                ]
                .into_iter()
                .filter_map(|a| attr(a).map(|v| (a.to_string(), v.to_string())))
                .collect();
                l.entity(dep.clone(), name, attributes, t);
                l.relation(service_id.clone(), dep, RelationKind::DependsOn, t);
            }
        }
        l.finish()
    }

    fn learn_metrics(&self, batch: &MetricBatch) -> Option<Submission<()>> {
        let mut l = self.learning(&batch.tenant);
        let mut edges: HashMap<(&str, &str, &str), CallCounters> = HashMap::new();
        for series in &batch.series {
            let Some(last) = series.samples.last() else {
                continue;
            };
            let t = Self::clamp(last.t);
            let labels = &series.labels;
            let name = labels.get("__name__").unwrap_or_default();
            if name.starts_with("traces_service_graph_request") {
                let (Some(client), Some(server)) = (labels.get("client"), labels.get("server"))
                else {
                    continue;
                };
                let ctype = labels.get("connection_type").unwrap_or_default();
                let c = edges.entry((client, server, ctype)).or_default();
                c.time = c.time.max(last.t);
                match name {
                    REQUESTS => c.requests = last.v,
                    FAILED => c.failed = last.v,
                    SERVER_SECONDS_SUM => c.latency_sum = last.v,
                    SERVER_SECONDS_COUNT => c.latency_count = last.v,
                    _ => {}
                }
                continue;
            }
            let job = labels.get("job");
            let instance = labels.get("instance");
            match name {
                "target_info" => {
                    let key = l.key(("target_info", labels.to_canonical()));
                    l.resource(key, t, || {
                        identity::from_resource(|a| job_instance(labels, a))
                    });
                }
                "up" => {
                    let key = l.key(("up", labels.to_canonical()));
                    l.resource(key, t, || {
                        identity::from_resource(|a| job_instance(labels, a))
                    });
                }
                _ if job.is_some() => {
                    let key = l.key(("job", job, instance));
                    l.resource(key, t, || {
                        identity::from_resource(|a| match a {
                            "service.name" | "service.namespace" | "service.instance.id" => {
                                job_instance(labels, a)
                            }
                            _ => None,
                        })
                    });
                }
                _ => {}
            }
        }
        let mut calls = Vec::new();
        for ((client, server, ctype), counters) in edges {
            if client.is_empty() || server.is_empty() {
                continue;
            }
            let from = EntityId::new(EntityKind::Service, [client]);
            let t = Self::clamp(counters.time);
            let (to, kind) = match ctype {
                "" => {
                    let to = EntityId::new(EntityKind::Service, [server]);
                    l.entity(from.clone(), client, vec![], t);
                    l.entity(to.clone(), server, vec![], t);
                    (to, RelationKind::Calls)
                }
                _ => {
                    let to = self
                        .topology
                        .dependency_named(&batch.tenant, &from, server)
                        .unwrap_or_else(|| {
                            let kind = match ctype {
                                "database" => EntityKind::Database,
                                "messaging_system" => EntityKind::Queue,
                                _ => EntityKind::External,
                            };
                            EntityId::new(kind, [server])
                        });
                    l.entity(to.clone(), server, vec![], t);
                    (to, RelationKind::DependsOn)
                }
            };
            l.relation(from.clone(), to.clone(), kind, t);
            calls.push((from, to, kind, counters));
        }
        let learned = l.finish();
        for (from, to, kind, counters) in calls {
            self.topology
                .record_calls(&batch.tenant, &from, &to, kind, counters);
        }
        learned
    }
}

/// A resource attribute among a metric series' labels: `job` is
/// `service.namespace/service.name` and `instance` is `service.instance.id` (Prometheus's
/// OpenTelemetry mapping), the rest by label name.
fn job_instance<'a>(labels: &'a Labels, attr: &str) -> Option<&'a str> {
    let job = labels.get("job");
    match attr {
        "service.name" => job.map(|j| j.rsplit_once('/').map_or(j, |(_, name)| name)),
        "service.namespace" => job
            .and_then(|j| j.rsplit_once('/'))
            .map(|(ns, _)| ns)
            .or_else(|| from_labels(labels, attr)),
        "service.instance.id" => labels.get("instance"),
        _ => from_labels(labels, attr),
    }
}

impl Tap<LogBatch> for Observer {
    fn observe(&self, batch: &LogBatch) -> Option<Submission<()>> {
        self.learn_logs(batch)
    }
}

impl Tap<SpanBatch> for Observer {
    fn observe(&self, batch: &SpanBatch) -> Option<Submission<()>> {
        self.learn_spans(batch)
    }
}

impl Tap<MetricBatch> for Observer {
    fn observe(&self, batch: &MetricBatch) -> Option<Submission<()>> {
        self.learn_metrics(batch)
    }
}

#[cfg(test)]
mod tests {
    use sightline_ingest::Sink;
    use sightline_model::{LogRecord, LogStream, MetricSeries, Sample};

    use super::*;
    use crate::graph::Window;
    use crate::store::TopologyConfig;

    /// An observer whose facts are applied as the WAL writer would hand them on; the
    /// number of fact batches written so far.
    fn observer(dir: &std::path::Path) -> (Observer, Arc<Topology>, Arc<Mutex<usize>>) {
        let topology = Arc::new(Topology::open(dir, TopologyConfig::default()).unwrap());
        let (handle, mut rx) = IngestHandle::<FactBatch>::channel(16);
        let written = Arc::new(Mutex::new(0));
        let (t, w) = (topology.clone(), written.clone());
        tokio::spawn(async move {
            let mut seq = 0;
            while let Some(req) = rx.recv().await {
                seq += 1;
                t.append(seq, &req.batch).unwrap();
                *w.lock().unwrap() += 1;
                let _ = req.ack.send(Ok(()));
            }
        });
        (Observer::new(topology.clone(), handle), topology, written)
    }

    fn logs(pod: &str, t_ms: i64) -> LogBatch {
        let resource: Vec<(String, String)> = [
            ("service.name", "budget"),
            ("k8s.namespace.name", "fin"),
            ("k8s.pod.name", pod),
            ("k8s.node.name", "node-1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        LogBatch {
            tenant: TenantId::default_tenant(),
            streams: vec![LogStream {
                labels: sightline_model::index_labels_from_resource(&resource),
                resource,
                records: vec![LogRecord {
                    timestamp_ns: t_ms * 1_000_000,
                    body: "started".into(),
                    ..LogRecord::default()
                }],
                ..LogStream::default()
            }],
        }
    }

    fn graph_series(client: &str, server: &str, values: [f64; 4], t: i64) -> Vec<MetricSeries> {
        [REQUESTS, FAILED, SERVER_SECONDS_SUM, SERVER_SECONDS_COUNT]
            .iter()
            .zip(values)
            .map(|(name, v)| MetricSeries {
                labels: Labels::from_pairs([
                    ("__name__", *name),
                    ("client", client),
                    ("server", server),
                    ("connection_type", ""),
                ]),
                samples: vec![Sample { t, v }],
            })
            .collect()
    }

    #[tokio::test]
    async fn repeated_resources_write_nothing_new_until_the_resolution_passes() {
        let dir = tempfile::tempdir().unwrap();
        let (obs, topo, written) = observer(dir.path());
        let t0 = Observer::now_ms() - 600_000;
        obs.observe(&logs("budget-1", t0)).unwrap().await.unwrap();
        assert_eq!(*written.lock().unwrap(), 1);
        assert!(obs.observe(&logs("budget-1", t0 + 1_000)).is_none());
        // A new pod: only its own facts.
        obs.observe(&logs("budget-2", t0 + 2_000))
            .unwrap()
            .await
            .unwrap();
        // Past the resolution the resource is written again (last seen moves on).
        obs.observe(&logs("budget-1", t0 + 120_000))
            .unwrap()
            .await
            .unwrap();
        assert_eq!(*written.lock().unwrap(), 3);
        let g = topo.graph(&TenantId::default_tenant());
        let g = g.read().unwrap();
        let instance = EntityId::parse("instance:budget/budget-1").unwrap();
        assert_eq!(
            g.entity(&instance).unwrap().presence.last_seen(),
            Some(t0 + 120_000)
        );
        let stack = g.stack(
            &EntityId::parse("service:budget").unwrap(),
            Window::at(t0 + 2_000),
        );
        assert_eq!(
            stack.unwrap().entities.len(),
            6,
            "service, 2 instances, 2 pods, node"
        );
    }

    /// The same resource through another signal: its own key is new but every fact it
    /// names was written already. A later batch finding that key must not wait for a
    /// write that never happens (found by the interop test: exports hung).
    #[tokio::test]
    async fn a_resource_whose_facts_another_signal_wrote_never_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let (obs, _, written) = observer(dir.path());
        let t0 = Observer::now_ms() - 600_000;
        let logs_batch = logs("budget-1", t0);
        let stream = &logs_batch.streams[0];
        // The same resource, as a Loki stream (labels only): another resource key.
        let mut loki = logs_batch.clone();
        loki.streams[0].resource.clear();
        loki.streams[0].labels = stream.labels.clone();
        let first = obs.observe(&logs_batch).unwrap();
        // Observed while the first write may still be running: waits for it.
        let second = obs.observe(&loki);
        let third = obs.observe(&loki);
        let done = async {
            first.await.unwrap();
            if let Some(s) = second {
                s.await.unwrap();
            }
            if let Some(t) = third {
                t.await.unwrap();
            }
            if let Some(f) = obs.observe(&loki) {
                f.await.unwrap();
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), done)
            .await
            .expect("no batch waits for a write that never happens");
        assert_eq!(*written.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn the_service_graph_makes_calls_relations_with_rates() {
        let dir = tempfile::tempdir().unwrap();
        let (obs, topo, _) = observer(dir.path());
        let t0 = Observer::now_ms() - 60_000;
        let batch = |values, t| MetricBatch {
            tenant: TenantId::default_tenant(),
            series: graph_series("gateway", "budget", values, t),
        };
        obs.observe(&batch([100.0, 0.0, 5.0, 100.0], t0))
            .unwrap()
            .await
            .unwrap();
        // The second flush: 150 requests in 15 s, 15 failed, 0.02 s each.
        let second = obs.observe(&batch([250.0, 15.0, 8.0, 250.0], t0 + 15_000));
        if let Some(f) = second {
            f.await.unwrap();
        }
        let g = topo.graph(&TenantId::default_tenant());
        let g = g.read().unwrap();
        let (_, _, rel) = g
            .relations_in(Window::at(t0 + 15_000))
            .find(|(_, _, r)| r.kind == Some(RelationKind::Calls))
            .unwrap();
        let stats = rel.stats.unwrap();
        assert_eq!(stats.request_rate, 10.0);
        assert!((stats.error_rate - 0.1).abs() < 1e-9);
        assert!((stats.latency_seconds - 0.02).abs() < 1e-9);
    }
}
