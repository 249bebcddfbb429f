//! Grouping, timers and the decision to notify, as Alertmanager's dispatcher and
//! notification pipeline make them (`dispatch/dispatch.go`, `notify/notify.go`).
//!
//! Every alert goes to the groups of the routes that take it (one group per route and
//! value of its `group_by` labels). A new group waits `group_wait` (or flushes at once if
//! its first alert is older than that), then flushes every `group_interval`. A flush, per
//! integration of the route's receiver: drops silenced and inhibited alerts (and all of
//! them while a mute time interval holds or no active one does), then notifies only if
//! the notification log says something changed — a new firing alert, a newly resolved
//! one for integrations that send resolved, every alert resolved — or `repeat_interval`
//! has passed since the last notification. Resolved alerts leave the group once every
//! integration was notified.
//!
//! The dispatcher is a state machine driven by the caller with explicit instants: it owns
//! no clock, no I/O and no tasks. [`Dispatcher::flush_due`] hands out what to send;
//! the caller sends it and reports with [`Dispatcher::flush_done`], receiving the
//! notification-log records to persist.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::alerts::{Alert, AlertStore, fingerprint};
use super::config::Config;
use super::data::{AlertData, Data, go_zero_time};
use super::inhibit::Inhibitions;
use super::route::{Route, RouteOpts, label_set_string};
use super::silence::Silences;
use super::timeinterval;

/// Which integration of a receiver: `webhook_configs[1]` is `(Webhook, 1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IntegrationKind {
    Email,
    Webhook,
}

impl IntegrationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationKind::Email => "email",
            IntegrationKind::Webhook => "webhook",
        }
    }
}

/// One integration of one receiver.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IntegrationId {
    pub receiver: String,
    pub kind: IntegrationKind,
    pub index: usize,
}

/// The notification log's record of the last notification of a group to an integration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NflogEntry {
    pub group_key: String,
    pub integration: IntegrationId,
    pub firing: BTreeSet<u64>,
    pub resolved: BTreeSet<u64>,
    pub timestamp: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// How long notification-log entries are kept (Alertmanager's `--data.retention`).
pub const NFLOG_RETENTION: chrono::Duration = chrono::Duration::hours(120);

/// A group's identity: its route and the fingerprint of its group labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId {
    pub route: String,
    pub labels: u64,
}

/// One aggregation group.
#[derive(Debug, Clone)]
pub struct Group {
    pub id: GroupId,
    pub opts: RouteOpts,
    pub route_key: String,
    pub labels: BTreeMap<String, String>,
    pub alerts: HashMap<u64, Alert>,
    pub next_flush: DateTime<Utc>,
    pub has_flushed: bool,
}

impl Group {
    /// `{route key}:{group labels}`, as notifications and the log name a group.
    pub fn key(&self) -> String {
        format!("{}:{}", self.route_key, label_set_string(&self.labels))
    }
}

/// What one flush asks the caller to send.
#[derive(Debug, Clone)]
pub struct Notification {
    pub group: GroupId,
    pub group_key: String,
    pub integration: IntegrationId,
    /// The alerts to send (resolved ones only if the integration sends them); empty when
    /// nothing is to be sent but the log must record the state (every alert resolved).
    pub data: Data,
    pub firing: BTreeSet<u64>,
    pub resolved: BTreeSet<u64>,
}

/// A flush: the notifications to send and the resolved alerts to drop from the group
/// once all of them succeeded.
#[derive(Debug, Clone)]
pub struct Flush {
    pub group: GroupId,
    pub notifications: Vec<Notification>,
    resolved: Vec<Alert>,
}

/// Per receiver, its integrations and whether each sends resolved alerts.
type Integrations = BTreeMap<String, Vec<(IntegrationId, bool)>>;

/// The dispatcher of one tenant.
pub struct Dispatcher {
    config: Config,
    tree: Route,
    integrations: Integrations,
    external_url: String,
    pub alerts: AlertStore,
    groups: HashMap<GroupId, Group>,
    nflog: HashMap<(String, IntegrationId), NflogEntry>,
}

impl Dispatcher {
    pub fn new(config: Config, external_url: &str) -> Dispatcher {
        let tree = Route::new(&config.route);
        let integrations = config
            .receivers
            .iter()
            .map(|r| {
                let mut list = Vec::new();
                for (index, email) in r.email_configs.iter().enumerate() {
                    let send_resolved = email.send_resolved;
                    list.push((
                        IntegrationId {
                            receiver: r.name.clone(),
                            kind: IntegrationKind::Email,
                            index,
                        },
                        send_resolved,
                    ));
                }
                for (index, hook) in r.webhook_configs.iter().enumerate() {
                    list.push((
                        IntegrationId {
                            receiver: r.name.clone(),
                            kind: IntegrationKind::Webhook,
                            index,
                        },
                        hook.send_resolved,
                    ));
                }
                (r.name.clone(), list)
            })
            .collect();
        Dispatcher {
            config,
            tree,
            integrations,
            external_url: external_url.to_owned(),
            alerts: AlertStore::default(),
            groups: HashMap::new(),
            nflog: HashMap::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn tree(&self) -> &Route {
        &self.tree
    }

    /// Replaces the configuration (a reload): alerts are kept and regrouped under the new
    /// tree, the notification log is kept, so unchanged groups are not notified again.
    pub fn reload(&mut self, config: Config, now: DateTime<Utc>) {
        let alerts: Vec<Alert> = self.alerts.iter().map(|(_, a)| a.clone()).collect();
        let external_url = std::mem::take(&mut self.external_url);
        let nflog = std::mem::take(&mut self.nflog);
        *self = Dispatcher::new(config, &external_url);
        self.nflog = nflog;
        for alert in alerts {
            self.insert(alert, now);
        }
    }

    /// Takes an alert (posted, or resent by a rule evaluator) into the store and the
    /// groups of every route that takes it.
    pub fn insert(&mut self, alert: Alert, now: DateTime<Utc>) {
        let held = self.alerts.put(alert, now).clone();
        let fp = fingerprint(&held.labels);
        for route in self.tree.match_labels(&held.labels) {
            let labels = route.group_labels(&held.labels);
            let id = GroupId {
                route: route.id().to_owned(),
                labels: fingerprint(&labels),
            };
            let group = self.groups.entry(id.clone()).or_insert_with(|| Group {
                id,
                opts: route.opts.clone(),
                route_key: route.key().to_owned(),
                labels,
                alerts: HashMap::new(),
                next_flush: now + to_chrono(route.opts.group_wait),
                has_flushed: false,
            });
            // An alert older than the group's wait is not held back (a restart, a late
            // sender): the group flushes at once.
            if !group.has_flushed && held.starts_at + to_chrono(group.opts.group_wait) < now {
                group.next_flush = now;
            }
            group.alerts.insert(fp, held.clone());
        }
    }

    /// The groups, for the API.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// The earliest instant a group is due, to sleep until.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.groups.values().map(|g| g.next_flush).min()
    }

    /// Flushes every group due at `now`, except those in `busy` (whose previous flush is
    /// still being sent: they stay due), and returns what to send. Silences and
    /// inhibitions are judged at `now`.
    pub fn flush_due(
        &mut self,
        silences: &Silences,
        now: DateTime<Utc>,
        busy: &HashSet<GroupId>,
    ) -> Vec<Flush> {
        let due: Vec<GroupId> = self
            .groups
            .values()
            .filter(|g| g.next_flush <= now && !busy.contains(&g.id))
            .map(|g| g.id.clone())
            .collect();
        if due.is_empty() {
            return Vec::new();
        }
        let inhibitions = Inhibitions::new(&self.config.inhibit_rules, self.alerts.values(), now);
        let mut flushes = Vec::new();
        for id in due {
            let Some(group) = self.groups.get_mut(&id) else {
                continue;
            };
            group.next_flush = now + to_chrono(group.opts.group_interval);
            group.has_flushed = true;
            if group.alerts.is_empty() {
                self.groups.remove(&id);
                continue;
            }
            let group = &self.groups[&id];
            flushes.push(self.flush_group(group, silences, &inhibitions, now));
        }
        flushes
    }

    fn flush_group(
        &self,
        group: &Group,
        silences: &Silences,
        inhibitions: &Inhibitions<'_>,
        now: DateTime<Utc>,
    ) -> Flush {
        let mut alerts: Vec<&Alert> = group.alerts.values().collect();
        alerts.sort_by(|a, b| alert_order(&a.labels, &b.labels));
        let resolved: Vec<Alert> = alerts
            .iter()
            .filter(|a| a.resolved_at(now))
            .map(|a| (*a).clone())
            .collect();
        let mut flush = Flush {
            group: group.id.clone(),
            notifications: Vec::new(),
            resolved,
        };
        if self.time_muted(&group.opts, now) {
            return flush;
        }
        // Muted alerts are left out of what is sent and of the log, as Alertmanager's
        // mute stages drop them before dedup.
        let unmuted: Vec<&Alert> = alerts
            .into_iter()
            .filter(|a| {
                silences.mutes(&a.labels, now).is_empty()
                    && inhibitions.inhibited_by(&a.labels).is_none()
            })
            .collect();
        let firing: BTreeSet<u64> = unmuted
            .iter()
            .filter(|a| !a.resolved_at(now))
            .map(|a| a.fingerprint())
            .collect();
        let resolved: BTreeSet<u64> = unmuted
            .iter()
            .filter(|a| a.resolved_at(now))
            .map(|a| a.fingerprint())
            .collect();
        let group_key = group.key();
        let integrations = self
            .integrations
            .get(&group.opts.receiver)
            .cloned()
            .unwrap_or_default();
        for (integration, send_resolved) in integrations {
            let entry = self.nflog.get(&(group_key.clone(), integration.clone()));
            if !needs_update(
                entry,
                &firing,
                &resolved,
                send_resolved,
                group.opts.repeat_interval,
                now,
            ) {
                continue;
            }
            let sent: Vec<AlertData> = unmuted
                .iter()
                .filter(|a| send_resolved || !a.resolved_at(now))
                .map(|a| alert_data(a, now))
                .collect();
            flush.notifications.push(Notification {
                group: group.id.clone(),
                group_key: group_key.clone(),
                data: Data::new(
                    &group.opts.receiver,
                    group.labels.clone(),
                    sent,
                    &self.external_url,
                ),
                integration,
                firing: firing.clone(),
                resolved: resolved.clone(),
            });
        }
        flush
    }

    fn time_muted(&self, opts: &RouteOpts, now: DateTime<Utc>) -> bool {
        let holds = |name: &String| {
            self.config
                .time_intervals
                .get(name)
                .is_some_and(|named| timeinterval::any_contains(&named.time_intervals, now))
        };
        opts.mute_time_intervals.iter().any(holds)
            || (!opts.active_time_intervals.is_empty()
                && !opts.active_time_intervals.iter().any(holds))
    }

    /// Records the outcome of a flush: the log entries of the notifications that
    /// succeeded (returned, to persist), and — when all did — the resolved alerts leave
    /// the group unless they changed meanwhile; an emptied group is dropped.
    pub fn flush_done(
        &mut self,
        flush: Flush,
        succeeded: &[bool],
        now: DateTime<Utc>,
    ) -> Vec<NflogEntry> {
        let mut records = Vec::new();
        for (notification, ok) in flush.notifications.iter().zip(succeeded) {
            if !ok {
                continue;
            }
            let entry = NflogEntry {
                group_key: notification.group_key.clone(),
                integration: notification.integration.clone(),
                firing: notification.firing.clone(),
                resolved: notification.resolved.clone(),
                timestamp: now,
                expires_at: now + NFLOG_RETENTION,
            };
            self.nflog.insert(
                (entry.group_key.clone(), entry.integration.clone()),
                entry.clone(),
            );
            records.push(entry);
        }
        let all_ok = succeeded.len() == flush.notifications.len() && succeeded.iter().all(|ok| *ok);
        if all_ok {
            if let Some(group) = self.groups.get_mut(&flush.group) {
                for alert in &flush.resolved {
                    let fp = alert.fingerprint();
                    if group.alerts.get(&fp) == Some(alert) {
                        group.alerts.remove(&fp);
                    }
                }
                if group.alerts.is_empty() {
                    self.groups.remove(&flush.group);
                }
            }
            for alert in &flush.resolved {
                let fp = alert.fingerprint();
                let still_grouped = self.groups.values().any(|g| g.alerts.contains_key(&fp));
                if !still_grouped {
                    self.alerts.delete_if_unchanged(fp, alert);
                }
            }
        }
        records
    }

    /// Restores notification-log records (after a restart); later records replace
    /// earlier ones, expired ones are dropped.
    pub fn restore_nflog(
        &mut self,
        records: impl IntoIterator<Item = NflogEntry>,
        now: DateTime<Utc>,
    ) {
        for entry in records {
            if entry.expires_at > now {
                self.nflog
                    .insert((entry.group_key.clone(), entry.integration.clone()), entry);
            }
        }
    }

    /// The notification log as a whole, to persist compactly.
    pub fn nflog_snapshot(&self, now: DateTime<Utc>) -> Vec<NflogEntry> {
        self.nflog
            .values()
            .filter(|e| e.expires_at > now)
            .cloned()
            .collect()
    }

    /// Forgets resolved alerts that no group holds (they were notified, or no route's
    /// receiver needed them) and expired log entries.
    pub fn gc(&mut self, now: DateTime<Utc>) {
        let grouped: BTreeSet<u64> = self
            .groups
            .values()
            .flat_map(|g| g.alerts.keys().copied())
            .collect();
        let stale: Vec<(u64, Alert)> = self
            .alerts
            .iter()
            .filter(|(fp, a)| a.resolved_at(now) && !grouped.contains(fp))
            .map(|(fp, a)| (*fp, a.clone()))
            .collect();
        for (fp, alert) in stale {
            self.alerts.delete_if_unchanged(fp, &alert);
        }
        self.nflog.retain(|_, e| e.expires_at > now);
    }
}

/// Alertmanager's `DedupStage.needsUpdate`.
fn needs_update(
    entry: Option<&NflogEntry>,
    firing: &BTreeSet<u64>,
    resolved: &BTreeSet<u64>,
    send_resolved: bool,
    repeat: Duration,
    now: DateTime<Utc>,
) -> bool {
    let Some(entry) = entry else {
        // Never notified: only if something fires.
        return !firing.is_empty();
    };
    if !firing.is_subset(&entry.firing) {
        return true;
    }
    if firing.is_empty() {
        // All resolved: notify (to clear the log) only if the last notice had firing
        // alerts; alerts that fired and resolved in between were never announced.
        return !entry.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&entry.resolved) {
        return true;
    }
    entry.timestamp + to_chrono(repeat) <= now
}

/// Alertmanager's `AlertSlice` order: by `job`, then `instance` (alerts with the label
/// first), then by the whole label set.
fn alert_order(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Ordering {
    for key in ["job", "instance"] {
        match (a.get(key), b.get(key)) {
            (None, None) => continue,
            (None, Some(_)) => return Ordering::Greater,
            (Some(_), None) => return Ordering::Less,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    a.iter().cmp(b.iter())
}

/// The alert as a notification shows it at `now`.
pub fn alert_data(alert: &Alert, now: DateTime<Utc>) -> AlertData {
    let resolved = alert.resolved_at(now);
    AlertData {
        status: if resolved { "resolved" } else { "firing" }.to_owned(),
        labels: alert.labels.clone(),
        annotations: alert.annotations.clone(),
        starts_at: alert.starts_at,
        // A firing alert's end is its (timeout) estimate; Alertmanager sends the zero
        // time for alerts that are still firing.
        ends_at: if resolved {
            alert.ends_at
        } else {
            go_zero_time()
        },
        generator_url: alert.generator_url.clone(),
        fingerprint: format!("{:016x}", alert.fingerprint()),
    }
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alertmanager::silence::{ApiMatcher, Silence, new_silence_id};

    const CONFIG: &str = r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: team
    webhook_configs:
      - url: http://127.0.0.1:9/hook
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [alertname]
"#;

    fn t(s: &str) -> DateTime<Utc> {
        format!("2026-12-07T{s}Z").parse().unwrap()
    }

    fn alert(name: &str, instance: &str, severity: &str, start: &str, end: &str) -> Alert {
        Alert {
            labels: [
                ("alertname", name),
                ("instance", instance),
                ("severity", severity),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            annotations: BTreeMap::new(),
            starts_at: t(start),
            ends_at: t(end),
            generator_url: String::new(),
            updated_at: t(start),
            timeout: false,
        }
    }

    fn dispatcher() -> Dispatcher {
        Dispatcher::new(Config::parse(CONFIG).unwrap(), "http://sightline")
    }

    /// Flushes at `now` and reports every notification as delivered; returns the alert
    /// instances each notification carried.
    fn flush(d: &mut Dispatcher, silences: &Silences, now: DateTime<Utc>) -> Vec<Vec<String>> {
        let mut sent = Vec::new();
        for f in d.flush_due(silences, now, &HashSet::new()) {
            for n in &f.notifications {
                sent.push(
                    n.data
                        .alerts
                        .iter()
                        .map(|a| format!("{}:{}", a.labels["instance"], a.status))
                        .collect(),
                );
            }
            let ok = vec![true; f.notifications.len()];
            d.flush_done(f, &ok, now);
        }
        sent
    }

    #[test]
    fn a_group_waits_then_notifies_changes_and_repeats_only_after_repeat_interval() {
        let mut d = dispatcher();
        let none = Silences::default();
        d.insert(
            alert("Down", "a", "page", "10:00:00", "11:00:00"),
            t("10:00:00"),
        );
        assert!(flush(&mut d, &none, t("10:00:10")).is_empty(), "group_wait");
        d.insert(
            alert("Down", "b", "page", "10:00:20", "11:00:00"),
            t("10:00:20"),
        );
        assert_eq!(
            flush(&mut d, &none, t("10:00:30")),
            [["a:firing", "b:firing"]]
        );
        // Nothing changed at the next interval: no notification.
        assert!(flush(&mut d, &none, t("10:05:30")).is_empty());
        // b resolves: webhooks send resolved, so the next interval notifies.
        d.insert(
            alert("Down", "b", "page", "10:00:20", "10:06:00"),
            t("10:06:00"),
        );
        assert_eq!(
            flush(&mut d, &none, t("10:10:30")),
            [["a:firing", "b:resolved"]]
        );
        // The resolved alert left the group after the successful notification.
        assert_eq!(d.groups().next().unwrap().alerts.len(), 1);
        assert!(flush(&mut d, &none, t("10:15:30")).is_empty());
        // Four hours after the last notice, it repeats.
        let mut at = t("10:15:30");
        let mut repeats = 0;
        while at < t("14:16:00") {
            at += chrono::Duration::minutes(5);
            repeats += flush(&mut d, &none, at).len();
        }
        assert_eq!(repeats, 1);
    }

    #[test]
    fn silenced_and_inhibited_alerts_are_left_out() {
        let mut d = dispatcher();
        let mut silences = Silences::default();
        silences
            .set(
                Silence {
                    id: String::new(),
                    matchers: vec![ApiMatcher {
                        name: "instance".into(),
                        value: "b".into(),
                        is_regex: false,
                        is_equal: true,
                    }],
                    starts_at: t("09:00:00"),
                    ends_at: t("12:00:00"),
                    updated_at: t("09:00:00"),
                    created_by: "me".into(),
                    comment: "c".into(),
                },
                t("09:00:00"),
                new_silence_id,
            )
            .unwrap();
        d.insert(
            alert("Disk", "a", "critical", "10:00:00", "11:00:00"),
            t("10:00:00"),
        );
        d.insert(
            alert("Disk", "b", "critical", "10:00:00", "11:00:00"),
            t("10:00:00"),
        );
        d.insert(
            alert("Disk", "c", "warning", "10:00:00", "11:00:00"),
            t("10:00:00"),
        );
        assert_eq!(flush(&mut d, &silences, t("10:00:30")), [["a:firing"]]);
    }

    #[test]
    fn an_old_alert_flushes_at_once_and_fully_resolved_groups_notify_once_then_go() {
        let mut d = dispatcher();
        let none = Silences::default();
        d.insert(
            alert("Old", "a", "page", "09:00:00", "11:00:00"),
            t("10:00:00"),
        );
        assert_eq!(flush(&mut d, &none, t("10:00:00")), [["a:firing"]]);
        d.insert(
            alert("Old", "a", "page", "09:00:00", "10:01:00"),
            t("10:01:00"),
        );
        assert_eq!(flush(&mut d, &none, t("10:05:00")), [["a:resolved"]]);
        assert_eq!(d.groups().count(), 0);
        d.gc(t("10:06:00"));
        assert!(d.alerts.is_empty());
    }

    #[test]
    fn a_failed_delivery_is_retried_at_the_next_flush_and_the_log_survives_a_restart() {
        let mut d = dispatcher();
        let none = Silences::default();
        d.insert(
            alert("X", "a", "page", "10:00:00", "11:00:00"),
            t("10:00:00"),
        );
        let flushes = d.flush_due(&none, t("10:00:30"), &HashSet::new());
        assert_eq!(flushes.len(), 1);
        for f in flushes {
            let failed = vec![false; f.notifications.len()];
            assert!(d.flush_done(f, &failed, t("10:00:31")).is_empty());
        }
        assert_eq!(flush(&mut d, &none, t("10:05:30")).len(), 1, "retried");
        // A restarted dispatcher with the log restored does not notify again.
        let log = d.nflog_snapshot(t("10:05:31"));
        let mut restarted = dispatcher();
        restarted.restore_nflog(log, t("10:06:00"));
        restarted.insert(
            alert("X", "a", "page", "10:00:00", "11:00:00"),
            t("10:06:00"),
        );
        assert!(flush(&mut restarted, &none, t("10:06:00")).is_empty());
    }

    #[test]
    fn mute_and_active_time_intervals_hold_notifications_back() {
        let config = Config::parse(
            r#"
route:
  receiver: team
  group_wait: 0s
  group_interval: 1m
  routes:
    - matchers: [team="night-muted"]
      receiver: team
      mute_time_intervals: [night]
    - matchers: [team="office-only"]
      receiver: team
      active_time_intervals: [office]
receivers:
  - name: team
    webhook_configs:
      - url: http://127.0.0.1:9/hook
time_intervals:
  - name: night
    time_intervals:
      - times: [{start_time: "22:00", end_time: "24:00"}, {start_time: "00:00", end_time: "06:00"}]
  - name: office
    time_intervals:
      - weekdays: ["monday:friday"]
        times: [{start_time: "09:00", end_time: "17:00"}]
"#,
        )
        .unwrap();
        let none = Silences::default();
        let labelled = |team: &str, start: DateTime<Utc>| Alert {
            labels: [("alertname", "X"), ("team", team), ("instance", team)]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: BTreeMap::new(),
            starts_at: start,
            ends_at: start + chrono::Duration::hours(24),
            generator_url: String::new(),
            updated_at: start,
            timeout: false,
        };
        // 2026-12-07 is a Monday. At 23:00 the night mute holds and the office is closed.
        let night: DateTime<Utc> = "2026-12-07T23:00:00Z".parse().unwrap();
        let mut d = Dispatcher::new(config.clone(), "");
        d.insert(labelled("night-muted", night), night);
        d.insert(labelled("office-only", night), night);
        assert!(flush(&mut d, &none, night).is_empty());
        // At 10:00 the next day both are notified.
        let day: DateTime<Utc> = "2026-12-08T10:00:00Z".parse().unwrap();
        assert_eq!(flush(&mut d, &none, day).len(), 2);
    }

    #[test]
    fn alerts_are_ordered_by_job_then_instance_then_labels() {
        let l = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            alert_order(&l(&[("job", "a")]), &l(&[("job", "b")])),
            Ordering::Less
        );
        assert_eq!(
            alert_order(&l(&[("x", "a")]), &l(&[("job", "b")])),
            Ordering::Greater
        );
        assert_eq!(
            alert_order(&l(&[("instance", "2")]), &l(&[("instance", "10")])),
            Ordering::Greater
        );
    }
}
