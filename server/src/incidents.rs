//! Incidents at run time: every `[incidents] interval` the alert manager's firing alerts
//! (not silenced, not inhibited) of each tenant, each placed on its topology entity, are
//! grouped by `sightline-incidents`; a new or grown incident is analysed for its causes
//! (`crate::root_cause`, the symptom's entity at the first alert's start less `onset_lead`);
//! every change is written to `<data>/incidents/<tenant>.json` (a new file synced, then
//! renamed over the old one) before the API shows it, so a restart keeps incidents, their
//! causes and their notification state.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sightline_alerting::alertmanager::inhibit::Inhibitions;
use sightline_incidents::{Cause, Change, Grouping, Incident, Incidents, Signal, State};
use sightline_model::{Cancellation, TenantId};
use sightline_topology::graph::{Graph, Window};
use sightline_topology::store::read_graph;
use sightline_topology::{EntityId, EntityKind, Topology};

use crate::alertmanager::AlertManager;
use crate::config::IncidentsSection;
use crate::root_cause::{Question, RootCause};

/// The alert name of the one alert each incident posts to the alert manager.
pub const INCIDENT_ALERT: &str = "SightlineIncident";
/// An incident's alert is posted again at least this often while it is unresolved, with an
/// end four times as far ahead (as Prometheus resends firing alerts).
const RESEND_MS: i64 = 60_000;

/// The evidence of a cause ends this long after the incident's first alert: a cause shows
/// before its symptom or with it (a one-minute rate and an export or two behind), and what
/// changes later is its consequence or noise — and a longer window only gives noise more
/// samples in which to look rarer than anything in its history.
const EVIDENCE_AFTER_MS: i64 = 3 * 60_000;
/// An incident is analysed again every `REANALYSE_EVERY_MS` while its evidence window is
/// still filling.
const REANALYSE_EVERY_MS: i64 = 60_000;

/// One tenant's file.
#[derive(Serialize, Deserialize)]
struct TenantFile {
    tenant: String,
    #[serde(flatten)]
    incidents: Incidents,
}

pub struct IncidentsRuntime {
    dir: PathBuf,
    tenants: Mutex<HashMap<TenantId, Incidents>>,
    /// Held by a round of grouping and analysis, and by an operator's change: each works
    /// on a copy and puts it back, so they must not interleave (an acknowledgement would be
    /// lost under a round's older copy).
    writing: Mutex<()>,
    config: IncidentsSection,
    am: Arc<AlertManager>,
    topology: Arc<Topology>,
    root_cause: RootCause,
}

/// Why an operator's request was refused.
#[derive(Debug)]
pub enum Refused {
    NotFound(String),
    Conflict(String),
    Storage(String),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn file_name(tenant: &TenantId) -> String {
    // Tenant ids are free text: the file is named by their bytes in hex.
    let hex: String = tenant
        .as_str()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{hex}.json")
}

impl IncidentsRuntime {
    /// Opens `<data>/incidents`, reading every tenant's incidents.
    pub fn open(
        data_dir: &Path,
        config: IncidentsSection,
        am: Arc<AlertManager>,
        topology: Arc<Topology>,
        root_cause: RootCause,
    ) -> anyhow::Result<Arc<Self>> {
        let dir = data_dir.join("incidents");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let mut tenants = HashMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let file: TenantFile = serde_json::from_slice(&bytes)
                .with_context(|| format!("{}: not an incidents file", path.display()))?;
            let tenant = TenantId::new(&file.tenant)
                .map_err(|e| anyhow::anyhow!("{}: tenant: {e}", path.display()))?;
            tenants.insert(tenant, file.incidents);
        }
        Ok(Arc::new(IncidentsRuntime {
            dir,
            tenants: Mutex::new(tenants),
            writing: Mutex::new(()),
            config,
            am,
            topology,
            root_cause,
        }))
    }

    fn grouping(&self) -> Grouping {
        Grouping {
            hops: self.config.hops,
            window_ms: self.config.window.as_millis() as i64,
            resolve_after_ms: self.config.resolve_after.as_millis() as i64,
            keep_resolved: self.config.keep_resolved,
        }
    }

    /// Writes a tenant's incidents durably: a new file, synced, renamed over the old.
    fn save(&self, tenant: &TenantId, incidents: &Incidents) -> anyhow::Result<()> {
        let path = self.dir.join(file_name(tenant));
        let tmp = path.with_extension("json.tmp");
        let body = serde_json::to_vec(&TenantFile {
            tenant: tenant.as_str().to_string(),
            incidents: incidents.clone(),
        })?;
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(&body)
            .and_then(|_| f.sync_all())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync {}", self.dir.display()))?;
        Ok(())
    }

    /// The firing, unmuted alerts of every tenant, as signals placed on entities.
    fn signals(&self, now: chrono::DateTime<Utc>) -> Vec<(TenantId, Vec<Signal>)> {
        let mut out = Vec::new();
        for (tenant, state) in self.am.tenants() {
            let st = lock(&state);
            let config = st.dispatcher.config();
            let inhibitions =
                Inhibitions::new(&config.inhibit_rules, st.dispatcher.alerts.values(), now);
            let graph = self.topology.graph_for_reading(&tenant);
            let graph = read_graph(&graph);
            let w = Window::at(now.timestamp_millis());
            let mut signals = Vec::new();
            for alert in st.dispatcher.alerts.values() {
                // Our own incident notifications are not symptoms.
                // Nor are alerts that say nothing is wrong (`severity` `none` or `info`:
                // watchdogs, InfoInhibitor, notices).
                if alert.resolved_at(now)
                    || alert.labels.get("alertname").map(String::as_str) == Some(INCIDENT_ALERT)
                    || matches!(
                        alert.labels.get("severity").map(String::as_str),
                        Some("none" | "info")
                    )
                {
                    continue;
                }
                let (silenced, inhibited) =
                    AlertManager::mute_status(&st, &inhibitions, &alert.labels, now);
                if !silenced.is_empty() || !inhibited.is_empty() {
                    continue;
                }
                signals.push(Signal {
                    key: format!("{:016x}", alert.fingerprint()),
                    name: alert.labels.get("alertname").cloned().unwrap_or_default(),
                    entity: entity_of(&alert.labels, &graph, w).map(|e| e.to_string()),
                    labels: alert.labels.clone(),
                    summary: alert
                        .annotations
                        .get("summary")
                        .or_else(|| alert.annotations.get("description"))
                        .cloned(),
                    starts_at: alert.starts_at.timestamp_millis(),
                });
            }
            signals.sort_by(|a, b| a.starts_at.cmp(&b.starts_at).then(a.key.cmp(&b.key)));
            out.push((tenant, signals));
        }
        out
    }

    /// One round at `now` (the clock, or a driver's simulated time): group, analyse what
    /// is new, persist. Blocking (reads the TSDB).
    pub fn tick(&self, now: chrono::DateTime<Utc>) {
        let now_ms = now.timestamp_millis();
        let grouping = self.grouping();
        let _writing = lock(&self.writing);
        for (tenant, signals) in self.signals(now) {
            let mut incidents = lock(&self.tenants)
                .get(&tenant)
                .cloned()
                .unwrap_or_default();
            let changes = {
                let graph = self.topology.graph_for_reading(&tenant);
                let graph = read_graph(&graph);
                let w = Window::at(now_ms);
                let mut near = |e: &str| -> HashSet<String> {
                    match EntityId::parse(e) {
                        Ok(id) => graph
                            .near(&id, grouping.hops, w)
                            .into_iter()
                            .map(|x| x.to_string())
                            .collect(),
                        Err(_) => HashSet::from([e.to_string()]),
                    }
                };
                incidents.observe(&signals, &mut near, &grouping, now_ms)
            };
            let events =
                |i: &Incidents| i.incidents.iter().map(|x| x.timeline.len()).sum::<usize>();
            let events_before = lock(&self.tenants).get(&tenant).map_or(0, events);
            for change in &changes {
                if let Change::Opened(id) | Change::Grew(id) = change
                    && let Some(inc) = incidents.get_mut(id)
                {
                    self.analyse(&tenant, inc, now_ms);
                }
            }
            // An incident is analysed again each minute until an analysis has seen its
            // whole evidence window: more of the change is in the data than when it opened.
            for inc in incidents.incidents.iter_mut().filter(|i| {
                !i.is_resolved()
                    && i.analysed_at
                        .is_some_and(|t| t < first_alert(i) + EVIDENCE_AFTER_MS)
                    && i.analysed_at
                        .is_some_and(|t| now_ms - t >= REANALYSE_EVERY_MS)
            }) {
                self.analyse(&tenant, inc, now_ms);
            }
            let notified = self.notify(&tenant, &mut incidents, now);
            if changes.is_empty() && !notified && events(&incidents) == events_before {
                // Only `last_firing` times moved: written with the next change.
                lock(&self.tenants).insert(tenant, incidents);
                continue;
            }
            if let Err(e) = self.save(&tenant, &incidents) {
                tracing::warn!(tenant = %tenant.as_str(), error = %format!("{e:#}"), "cannot write incidents; kept in memory, written at the next change");
            }
            for change in &changes {
                tracing::info!(tenant = %tenant.as_str(), ?change, "incident");
            }
            lock(&self.tenants).insert(tenant, incidents);
        }
    }

    /// Ranks the causes of the incident's symptom (its first signal's entity).
    fn analyse(&self, tenant: &TenantId, inc: &mut Incident, now_ms: i64) {
        let Some(symptom) = inc.symptom.as_deref().and_then(|s| EntityId::parse(s).ok()) else {
            return;
        };
        let first = first_alert(inc);
        let symptom = self.whole_of_first(tenant, inc, first).unwrap_or(symptom);
        let onset = first - self.config.onset_lead.as_millis() as i64;
        let question = Question {
            symptom,
            metric: None,
            onset,
            start: onset - self.config.lookback.as_millis() as i64,
            end: now_ms.min(first + EVIDENCE_AFTER_MS),
            params: sightline_rca::Params::default(),
            limit: 5,
            seen: Some(first),
        };
        match self
            .root_cause
            .analyse(tenant, &question, &Cancellation::new())
        {
            Ok(v) => {
                let before = inc.causes.first().map(|c| c.entity.clone());
                inc.causes = causes(&v);
                inc.advice = self.advise(tenant, inc, first, &v);
                inc.analysed_at = Some(now_ms);
                inc.analysed_signals = inc.signals.len();
                let top = inc
                    .causes
                    .first()
                    .map(|c| format!("{} ({:.0} %)", c.entity, c.confidence * 100.0))
                    .unwrap_or_else(|| "no cause found".into());
                // The timeline says when the likely cause changed, not every analysis.
                if before != inc.causes.first().map(|c| c.entity.clone())
                    || !inc.timeline.iter().any(|e| e.kind == "analysed")
                {
                    inc.timeline.push(sightline_incidents::Event {
                        time: now_ms,
                        kind: "analysed".into(),
                        detail: top,
                    });
                }
            }
            Err(e) => tracing::debug!(error = %e.message, "incident analysis"),
        }
    }

    /// Routing: each analysed incident is one alert in the alert manager —
    /// `alertname="SightlineIncident"`, `incident`, `owner` (of its first cause: the
    /// platform team for a node or a database, the vendor for its service), `severity` —
    /// whose labels are fixed when first posted, so that the route tree sends one
    /// notification per incident and its updates (new causes, signals, resolution) go to
    /// the same group (the same email thread). Annotations carry the causes, the impacted
    /// core services and, in `cc`, their owners' contacts. Answers whether anything was
    /// posted (the notification state is persisted with the incident).
    fn notify(
        &self,
        tenant: &TenantId,
        incidents: &mut Incidents,
        now: chrono::DateTime<Utc>,
    ) -> bool {
        let now_ms = now.timestamp_millis();
        let mut posted = Vec::new();
        let graph = self.topology.graph_for_reading(tenant);
        let graph = read_graph(&graph);
        let renderer = sightline_topology::views::Renderer {
            graph: &graph,
            window: Window::at(now_ms),
        };
        for inc in incidents.incidents.iter_mut() {
            let state = &inc.notifications;
            let was_posted = state["labels"].is_object();
            if inc.is_resolved() {
                if was_posted && state["resolved_posted"] != true {
                    posted.push(incident_alert(
                        inc,
                        &state["labels"],
                        &state["annotations"],
                        now,
                        true,
                    ));
                    inc.notifications["resolved_posted"] = true.into();
                    inc.timeline.push(sightline_incidents::Event {
                        time: now_ms,
                        kind: "notified".into(),
                        detail: "resolved".into(),
                    });
                }
                continue;
            }
            if inc.analysed_at.is_none() {
                continue;
            }
            let annotations = annotations(inc, &renderer, &graph);
            let due = now_ms - state["posted_at"].as_i64().unwrap_or(i64::MIN / 2) >= RESEND_MS;
            if was_posted && !due && state["annotations"] == annotations {
                continue;
            }
            let labels = if was_posted {
                state["labels"].clone()
            } else {
                let owner = inc
                    .causes
                    .first()
                    .and_then(|c| c.detail["owner"]["name"].as_str())
                    .unwrap_or("unowned");
                serde_json::json!({
                    "alertname": INCIDENT_ALERT,
                    "incident": inc.id,
                    "owner": owner,
                    "severity": severity(inc),
                })
            };
            posted.push(incident_alert(inc, &labels, &annotations, now, false));
            if !was_posted || state["annotations"] != annotations {
                inc.timeline.push(sightline_incidents::Event {
                    time: now_ms,
                    kind: "notified".into(),
                    detail: format!(
                        "{} to owner {}",
                        if was_posted { "update" } else { "opened" },
                        labels["owner"].as_str().unwrap_or("")
                    ),
                });
            }
            inc.notifications = serde_json::json!({
                "labels": labels,
                "annotations": annotations,
                "posted_at": now_ms,
            });
        }
        drop(graph);
        if posted.is_empty() {
            return false;
        }
        if let Err(e) = self.am.insert_alerts(tenant, posted, now) {
            tracing::warn!(tenant = %tenant.as_str(), error = ?e, "cannot post incident notifications");
        }
        true
    }

    /// Degradation advice for the incident's first cause, from the topology around it, the
    /// changes before `first` (the first alert's start), the load a service cause received
    /// against its usual and, for an entry-point symptom, the same and the request rate it
    /// served before (span metrics).
    fn advise(
        &self,
        tenant: &TenantId,
        inc: &Incident,
        first: i64,
        analysis: &Value,
    ) -> Vec<sightline_incidents::advice::Action> {
        use sightline_incidents::advice::{self, Node, Situation};
        use sightline_topology::RelationKind;
        let Some(cause) = inc.causes.first() else {
            return Vec::new();
        };
        let Ok(cause_id) = EntityId::parse(&cause.entity) else {
            return Vec::new();
        };
        let anomalous: HashSet<&str> = analysis["causes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["anomalous"] == true)
            .filter_map(|c| c["entity"].as_str())
            .collect();
        let graph = self.topology.graph_for_reading(tenant);
        let g = read_graph(&graph);
        let w = Window::at(first);
        let renderer = sightline_topology::views::Renderer {
            graph: &g,
            window: w,
        };
        let node = |e: &sightline_topology::model::Entity| {
            let view = renderer.entity(e, None);
            Node {
                id: e.id.to_string(),
                kind: view.kind.clone(),
                name: view.name.clone(),
                core: view.criticality == Some(sightline_topology::model::Criticality::Core),
                anomalous: anomalous.contains(e.id.as_str()),
                namespace: e.attribute("k8s.namespace.name").map(str::to_string),
            }
        };
        let Some(entity) = g.entity(&cause_id) else {
            return Vec::new();
        };
        let members: Vec<EntityId> = g
            .neighbours(&cause_id, RelationKind::MemberOf, false)
            .map(|e| e.id.clone())
            .collect();
        // The hour before, and the hour before that to tell a rollback already done (its
        // release may have gone out more than an hour ago).
        let history: Vec<advice::Change> = g
            .changes(
                Window {
                    start: first - 2 * 3_600_000,
                    end: first,
                },
                first,
            )
            .into_iter()
            .filter(|c| c.entity == cause_id || members.contains(&c.entity))
            .filter(|c| matches!(c.kind.as_str(), "version" | "revision" | "image" | "deploy"))
            .map(crate::root_cause::release)
            .collect();
        let changes = advice::changes_to_undo(&history, first - 3_600_000);
        let mut callers: Vec<Node> = g
            .neighbours(&cause_id, RelationKind::Calls, false)
            .chain(g.neighbours(&cause_id, RelationKind::DependsOn, false))
            .map(node)
            .collect();
        callers.dedup_by(|a, b| a.id == b.id);
        let entry = inc
            .symptom
            .as_deref()
            .and_then(|s| EntityId::parse(s).ok())
            .filter(|s| {
                g.neighbours(s, RelationKind::Calls, false).next().is_none()
                    && g.neighbours(s, RelationKind::DependsOn, false)
                        .next()
                        .is_none()
            })
            .and_then(|s| g.entity(&s).map(node));
        let ev = &cause.detail["evidence"][0];
        // A resource of the cause used to its limit (a utilization, OpenTelemetry's ratio of
        // a limit, that reached 95 %).
        let at_limit = cause.detail["evidence"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["anomalous"] == true)
            .find(|e| {
                let m = e["metric"].as_str().unwrap_or("");
                m.contains("utilization")
                    && e["observed"].as_f64().is_some_and(|o| o >= 0.95)
                    && e["level"].as_f64().is_some_and(|l| l < 0.95)
            })
            .and_then(|e| e["metric"].as_str().map(str::to_string));
        let cause_node = node(entity);
        let end = analysis["end"].as_i64().unwrap_or(first);
        let situation = Situation {
            cause: cause_node.clone(),
            metric: ev["metric"].as_str().map(str::to_string),
            level: ev["level"].as_f64(),
            observed: ev["observed"].as_f64(),
            at_limit,
            changes,
            callers,
            entry_rate: entry
                .as_ref()
                .filter(|e| e.kind == "service")
                .and_then(|e| self.served_rate(tenant, &e.name, first)),
            instances: members.len(),
            load: Some(&cause_node)
                .filter(|c| c.kind == "service")
                .and_then(|c| self.load(tenant, &c.name, first, end)),
            entry_load: entry
                .as_ref()
                .filter(|e| e.kind == "service")
                .and_then(|e| self.load(tenant, &e.name, first, end)),
            entry,
        };
        drop(g);
        advice::advise(&situation)
    }

    /// The request rate (per second) a service served over the half hour before `t`, from
    /// the span metrics of its server spans.
    fn served_rate(&self, tenant: &TenantId, service: &str, t: i64) -> Option<f64> {
        self.served(tenant, service, "30m", t)
    }

    /// The requests a service received in the last minute up to `end` over its rate in the
    /// half hour before the onset (`first` less the rules' one-minute windows and `for`).
    fn load(&self, tenant: &TenantId, service: &str, first: i64, end: i64) -> Option<f64> {
        let now = self.served(tenant, service, "1m", end)?;
        let before = self.served(tenant, service, "30m", first - 3 * 60_000)?;
        Some(now / before)
    }

    /// A service's request rate (per second) over `range` up to `t`.
    fn served(&self, tenant: &TenantId, service: &str, range: &str, t: i64) -> Option<f64> {
        let query = format!(
            "sum(rate(traces_span_metrics_calls_total{{service_name={}, span_kind=\"SPAN_KIND_SERVER\"}}[{range}]))",
            serde_json::to_string(service).ok()?
        );
        let source = sightline_promql::TsdbSource::new(&self.root_cause.tsdb, tenant);
        let result = self
            .root_cause
            .engine
            .instant_query_until(&source, &query, t, &Cancellation::new())
            .ok()?;
        match result.value {
            sightline_promql::Value::Vector(v) => v.first().map(|s| s.v).filter(|v| *v > 0.0),
            _ => None,
        }
    }

    pub fn list(&self, tenant: &TenantId, state: Option<State>) -> Vec<Incident> {
        let mut out: Vec<Incident> = lock(&self.tenants)
            .get(tenant)
            .map(|t| {
                t.incidents
                    .iter()
                    .filter(|i| state.is_none_or(|s| i.state == s))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        // Unresolved first, newest first.
        out.sort_by(|a, b| {
            a.is_resolved()
                .cmp(&b.is_resolved())
                .then(b.opened_at.cmp(&a.opened_at))
        });
        out
    }

    pub fn get(&self, tenant: &TenantId, id: &str) -> Option<Incident> {
        lock(&self.tenants).get(tenant)?.get(id).cloned()
    }

    /// Acknowledges (`resolve` false) or resolves an incident, durably before answering.
    pub fn operate(
        &self,
        tenant: &TenantId,
        id: &str,
        by: &str,
        resolve: bool,
    ) -> Result<Incident, Refused> {
        let _writing = lock(&self.writing);
        let now = Utc::now().timestamp_millis();
        let mut tenants = lock(&self.tenants);
        let incidents = tenants
            .get_mut(tenant)
            .ok_or_else(|| Refused::NotFound(format!("no incident {id}")))?;
        let mut next = incidents.clone();
        let result = if resolve {
            next.resolve(id, by, now)
        } else {
            next.acknowledge(id, by, now)
        };
        let inc = match result {
            Ok(inc) => inc.clone(),
            Err(m) if m.starts_with("no incident") => return Err(Refused::NotFound(m)),
            Err(m) => return Err(Refused::Conflict(m)),
        };
        self.save(tenant, &next)
            .map_err(|e| Refused::Storage(format!("{e:#}")))?;
        *incidents = next;
        Ok(inc)
    }
}

/// The worst severity among the incident's signals (`critical` above `warning` above the
/// rest), `warning` when none says.
fn severity(inc: &Incident) -> &'static str {
    let sev: Vec<&str> = inc
        .signals
        .values()
        .filter_map(|m| m.labels.get("severity").map(String::as_str))
        .collect();
    if sev
        .iter()
        .any(|s| matches!(*s, "critical" | "page" | "error"))
    {
        "critical"
    } else {
        "warning"
    }
}

/// What the notification says: the causes, the impacted core services and their owners.
fn annotations(
    inc: &Incident,
    renderer: &sightline_topology::views::Renderer<'_>,
    graph: &Graph,
) -> Value {
    let mut causes = Vec::new();
    for (n, c) in inc.causes.iter().take(3).enumerate() {
        let ev = &c.detail["evidence"][0];
        let path: Vec<&str> = c.detail["path"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        causes.push(format!(
            "{}. {} ({:.0} %): {} {} before, {} after; path {}",
            n + 1,
            c.entity,
            c.confidence * 100.0,
            ev["metric"].as_str().unwrap_or("-"),
            ev["level"],
            ev["observed"],
            path.join(" -> ")
        ));
    }
    // Impacted core services: the incident's entities and what its first cause explains.
    let mut impacted: Vec<String> = inc.entities.iter().cloned().collect();
    if let Some(c) = inc.causes.first() {
        impacted.extend(
            c.detail["explains"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e.as_str().map(str::to_string)),
        );
    }
    impacted.sort();
    impacted.dedup();
    let owner_contact = inc
        .causes
        .first()
        .and_then(|c| c.detail["owner"]["contact"].as_str())
        .unwrap_or("");
    let mut core = Vec::new();
    let mut cc: Vec<String> = Vec::new();
    for id in &impacted {
        let Some(e) = EntityId::parse(id)
            .ok()
            .and_then(|id| graph.entity(&id).cloned())
        else {
            continue;
        };
        let view = renderer.entity(&e, None);
        if view.criticality == Some(sightline_topology::model::Criticality::Core) {
            core.push(id.clone());
            if let Some(o) = &view.owner
                && !o.contact.is_empty()
                && o.contact != owner_contact
                && !cc.contains(&o.contact)
            {
                cc.push(o.contact.clone());
            }
        }
    }
    let top = inc
        .causes
        .first()
        .map(|c| format!(" — likely cause {}", c.entity))
        .unwrap_or_default();
    serde_json::json!({
        "summary": format!("{}{top}", inc.title),
        "description": causes.join("\n"),
        "impacted_core": core.join(", "),
        "owner_contact": owner_contact,
        "cc": cc.join(", "),
        "signals": inc.signals.len().to_string(),
        "advice": inc
            .advice
            .first()
            .map(|a| format!("{} {}: {} (cost: {})", a.kind, a.target, a.effect, a.cost))
            .unwrap_or_default(),
    })
}

/// The incident's alert for the alert manager.
fn incident_alert(
    inc: &Incident,
    labels: &Value,
    annotations: &Value,
    now: chrono::DateTime<Utc>,
    resolved: bool,
) -> sightline_alerting::alertmanager::alerts::Alert {
    let strings = |v: &Value| -> BTreeMap<String, String> {
        v.as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect()
    };
    let starts_at = chrono::DateTime::from_timestamp_millis(inc.opened_at).unwrap_or(now);
    let ends_at = if resolved {
        now
    } else {
        now + chrono::Duration::milliseconds(4 * RESEND_MS)
    };
    sightline_alerting::alertmanager::alerts::Alert {
        labels: strings(labels),
        annotations: strings(annotations),
        starts_at,
        ends_at,
        generator_url: format!("/api/v1/incidents/{}", inc.id),
        updated_at: now,
        timeout: false,
    }
}

/// The analysis's causes as the incident keeps them.
fn causes(v: &Value) -> Vec<Cause> {
    v["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| Cause {
            entity: c["entity"].as_str().unwrap_or_default().to_string(),
            confidence: c["confidence"].as_f64().unwrap_or(0.0),
            candidate: c["candidate"].as_bool().unwrap_or(false),
            detail: c.clone(),
        })
        .collect()
}

/// When the incident's first alert started firing.
impl IncidentsRuntime {
    /// The service two or more of whose instances (or pods) alerted first, together: the
    /// symptom is the whole's (as the analysis holds a fault shared by every member to be
    /// the whole's, not one member's).
    fn whole_of_first(&self, tenant: &TenantId, inc: &Incident, first: i64) -> Option<EntityId> {
        use sightline_topology::RelationKind;
        let graph = self.topology.graph_for_reading(tenant);
        let g = read_graph(&graph);
        let mut members: HashMap<EntityId, HashSet<String>> = HashMap::new();
        for m in inc.signals.values().filter(|m| m.starts_at == first) {
            let Some(id) = m.entity.as_deref().and_then(|e| EntityId::parse(e).ok()) else {
                continue;
            };
            if !matches!(id.kind(), Some(EntityKind::Instance | EntityKind::Pod)) {
                continue;
            }
            // A pod's service is its instance's.
            let instances: Vec<EntityId> = if id.kind() == Some(EntityKind::Pod) {
                g.neighbours(&id, RelationKind::RunsOn, false)
                    .map(|e| e.id.clone())
                    .collect()
            } else {
                vec![id.clone()]
            };
            for i in instances {
                for s in g.neighbours(&i, RelationKind::MemberOf, true) {
                    if s.id.kind() == Some(EntityKind::Service) {
                        members
                            .entry(s.id.clone())
                            .or_default()
                            .insert(id.to_string());
                    }
                }
            }
        }
        members
            .into_iter()
            .filter(|(_, m)| m.len() >= 2)
            .max_by_key(|(s, m)| (m.len(), std::cmp::Reverse(s.to_string())))
            .map(|(s, _)| s)
    }
}

fn first_alert(inc: &Incident) -> i64 {
    inc.signals
        .values()
        .map(|m| m.starts_at)
        .min()
        .unwrap_or(inc.opened_at)
}

/// The entity an alert is about, from its labels: an explicit `entity` id, else the labels
/// of the conventions (service, pod, node, host, database), each looked up in the graph.
pub fn entity_of(labels: &BTreeMap<String, String>, g: &Graph, w: Window) -> Option<EntityId> {
    let exists = |id: &EntityId| g.entity(id).is_some_and(|e| g.entity_in(e, w));
    if let Some(id) = labels.get("entity").and_then(|v| EntityId::parse(v).ok())
        && exists(&id)
    {
        return Some(id);
    }
    let service = |name: &str| Some(EntityId::new(EntityKind::Service, [name])).filter(exists);
    for key in ["service_name", "service", "service.name"] {
        if let Some(id) = labels.get(key).and_then(|v| service(v)) {
            return Some(id);
        }
    }
    // Named entities of a kind: the first of that kind and name in the window.
    let named = |kind: EntityKind, name: &str| {
        g.entities_in(w)
            .find(|e| e.kind == Some(kind) && e.name == name)
            .map(|e| e.id.clone())
    };
    for (key, kind) in [
        ("k8s_pod_name", EntityKind::Pod),
        ("pod", EntityKind::Pod),
        ("k8s_node_name", EntityKind::Node),
        ("node", EntityKind::Node),
        ("db_name", EntityKind::Database),
        ("database", EntityKind::Database),
        ("host_name", EntityKind::Host),
        ("hostname", EntityKind::Host),
    ] {
        if let Some(id) = labels.get(key).and_then(|v| named(kind, v)) {
            return Some(id);
        }
    }
    // The callee of a service-graph edge (Tempo's `server` label): a service, or a
    // database, cache, queue or external system of that name.
    if let Some(server) = labels.get("server") {
        if let Some(id) = service(server) {
            return Some(id);
        }
        for kind in [
            EntityKind::Database,
            EntityKind::Cache,
            EntityKind::Queue,
            EntityKind::External,
        ] {
            if let Some(id) = named(kind, server) {
                return Some(id);
            }
        }
    }
    // `instance` naming a node or host (node_exporter's series), else one instance of the
    // `job`'s service, else the service.
    if let Some(instance) = labels.get("instance") {
        let host = instance
            .rsplit_once(':')
            .map_or(instance.as_str(), |(h, _)| h);
        for kind in [EntityKind::Node, EntityKind::Host] {
            if let Some(id) = named(kind, host) {
                return Some(id);
            }
        }
    }
    if let Some(job) = labels.get("job") {
        let name = job.rsplit('/').next().unwrap_or(job);
        if let Some(instance) = labels.get("instance")
            && let Some(id) = Some(EntityId::new(
                EntityKind::Instance,
                [name, instance.as_str()],
            ))
            .filter(exists)
        {
            return Some(id);
        }
        if let Some(id) = service(name) {
            return Some(id);
        }
    }
    None
}

/// Runs [`IncidentsRuntime::tick`] every `interval`, and at once when alerts not seen before
/// arrive (a rule's alert starts firing: the incident opens within the evaluation that
/// fired it, not up to an interval later), until `stop`.
pub async fn run(
    rt: Arc<IncidentsRuntime>,
    interval: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = rt.am.news().notified() => {}
            _ = stop.changed() => return,
        }
        let rt = rt.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || rt.tick(Utc::now())).await {
            tracing::warn!(error = %e, "incident round failed");
        }
    }
}
