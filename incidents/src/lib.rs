//! Incidents: the firing alerts of a tenant that are related through the topology and close
//! in time, grouped into one incident with a lifecycle (open, acknowledged, resolved) and a
//! timeline. Pure: the server feeds it the active signals and a neighbourhood function, and
//! persists what it returns.
//!
//! Grouping, as an on-call engineer would: a signal joins an unresolved incident when its
//! entity is within `hops` of one of the incident's entities (see the topology's `near`:
//! calls, dependencies, what runs on what) and the incident had a firing signal within
//! `window`; a signal naming no entity joins one with the same alert name under the same
//! conditions. Otherwise it opens a new incident. A signal that joins two incidents' entities
//! merges nothing: it joins the older (the first symptom is usually the most telling, and
//! an incident's id must not change under the people working on it).
//!
//! An incident resolves by itself once none of its signals has fired for `resolve_after`; an
//! operator can acknowledge or resolve it. A signal that fires again after its incident
//! resolved opens a new one.

pub mod advice;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

/// An alert (or anomaly) as the grouping sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    /// Stable identity (the alert's fingerprint).
    pub key: String,
    /// `alertname`.
    pub name: String,
    /// The topology entity it is about, when its labels name one.
    pub entity: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub summary: Option<String>,
    /// When it began (ms).
    pub starts_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Open,
    Acknowledged,
    Resolved,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Acknowledged => "acknowledged",
            State::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        match s {
            "open" => Some(State::Open),
            "acknowledged" => Some(State::Acknowledged),
            "resolved" => Some(State::Resolved),
            _ => None,
        }
    }
}

/// A signal as an incident keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    pub entity: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub summary: Option<String>,
    pub starts_at: i64,
    /// When it was last seen firing (ms).
    pub last_firing: i64,
    pub firing: bool,
}

/// One line of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub time: i64,
    /// `opened`, `signal`, `signal_resolved`, `acknowledged`, `resolved`, `analysed`,
    /// `notified`, …
    pub kind: String,
    pub detail: String,
}

/// A ranked cause as the incident keeps it (from the root-cause analysis).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cause {
    pub entity: String,
    pub confidence: f64,
    pub candidate: bool,
    /// The analysis's whole entry (evidence, path, owner, changes).
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub title: String,
    pub state: State,
    pub opened_at: i64,
    pub updated_at: i64,
    #[serde(default)]
    pub acknowledged_at: Option<i64>,
    #[serde(default)]
    pub acknowledged_by: Option<String>,
    #[serde(default)]
    pub resolved_at: Option<i64>,
    #[serde(default)]
    pub resolved_by: Option<String>,
    /// The entity of the first signal: where the symptom showed first.
    pub symptom: Option<String>,
    /// The entities of its signals.
    pub entities: BTreeSet<String>,
    /// By signal key.
    pub signals: BTreeMap<String, Member>,
    /// Ranked causes, best first (empty until analysed).
    #[serde(default)]
    pub causes: Vec<Cause>,
    /// When the causes were computed (ms), and from how many signals.
    #[serde(default)]
    pub analysed_at: Option<i64>,
    #[serde(default)]
    pub analysed_signals: usize,
    /// Degradation advice for the first cause, best first.
    #[serde(default)]
    pub advice: Vec<advice::Action>,
    pub timeline: Vec<Event>,
    /// What the notifier recorded (receivers, thread ids, times): opaque here.
    #[serde(default)]
    pub notifications: serde_json::Value,
}

impl Incident {
    pub fn is_resolved(&self) -> bool {
        self.state == State::Resolved
    }

    fn event(&mut self, time: i64, kind: &str, detail: impl Into<String>) {
        self.timeline.push(Event {
            time,
            kind: kind.into(),
            detail: detail.into(),
        });
        self.updated_at = self.updated_at.max(time);
    }

    /// The latest time any of its signals fired.
    pub fn last_firing(&self) -> i64 {
        self.signals
            .values()
            .map(|m| m.last_firing)
            .max()
            .unwrap_or(self.opened_at)
    }

    pub fn firing(&self) -> usize {
        self.signals.values().filter(|m| m.firing).count()
    }
}

/// Grouping parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grouping {
    /// Relations between a signal's entity and an incident's at most.
    pub hops: usize,
    /// A signal joins an incident that had a firing signal this recently (ms).
    pub window_ms: i64,
    /// An incident none of whose signals fired for this long resolves (ms).
    pub resolve_after_ms: i64,
    /// Resolved incidents kept at most (the oldest are forgotten first).
    pub keep_resolved: usize,
}

impl Default for Grouping {
    fn default() -> Self {
        Grouping {
            hops: 2,
            window_ms: 15 * 60_000,
            resolve_after_ms: 5 * 60_000,
            keep_resolved: 1_000,
        }
    }
}

/// What an observation changed, for the server to act on (analyse, notify, persist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Opened(String),
    /// New signals or entities joined.
    Grew(String),
    Resolved(String),
}

/// One tenant's incidents.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Incidents {
    pub incidents: Vec<Incident>,
    /// For ids: incidents ever opened.
    pub opened: u64,
}

impl Incidents {
    pub fn get(&self, id: &str) -> Option<&Incident> {
        self.incidents.iter().find(|i| i.id == id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Incident> {
        self.incidents.iter_mut().find(|i| i.id == id)
    }

    /// Takes the signals firing `now` (all of them, every time: a signal absent is not
    /// firing) and updates the incidents. `near(entity)` gives the entities within the
    /// grouping's hops of it.
    pub fn observe(
        &mut self,
        firing: &[Signal],
        near: &mut dyn FnMut(&str) -> HashSet<String>,
        g: &Grouping,
        now: i64,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        let firing_keys: HashSet<&str> = firing.iter().map(|s| s.key.as_str()).collect();
        // Signals that stopped firing.
        for inc in self.incidents.iter_mut().filter(|i| !i.is_resolved()) {
            let stopped: Vec<String> = inc
                .signals
                .iter()
                .filter(|(k, m)| m.firing && !firing_keys.contains(k.as_str()))
                .map(|(k, _)| k.clone())
                .collect();
            for k in stopped {
                let m = inc.signals.get_mut(&k).expect("member");
                m.firing = false;
                let detail = describe(&m.name, m.entity.as_deref());
                inc.event(now, "signal_resolved", detail);
            }
        }
        for s in firing {
            // Already a member of an unresolved incident: still firing.
            if let Some(inc) = self
                .incidents
                .iter_mut()
                .find(|i| !i.is_resolved() && i.signals.contains_key(&s.key))
            {
                let m = inc.signals.get_mut(&s.key).expect("member");
                let again = !m.firing;
                m.firing = true;
                m.last_firing = now;
                if again {
                    inc.event(now, "signal", describe(&s.name, s.entity.as_deref()));
                }
                continue;
            }
            let neighbours = s.entity.as_deref().map(&mut *near);
            let joins = self
                .incidents
                .iter()
                .enumerate()
                .filter(|(_, i)| !i.is_resolved() && now - i.last_firing() <= g.window_ms)
                .find(|(_, i)| match (&s.entity, &neighbours) {
                    (Some(e), Some(n)) => {
                        i.entities.contains(e) || i.entities.iter().any(|x| n.contains(x))
                    }
                    _ => i
                        .signals
                        .values()
                        .any(|m| m.name == s.name && m.entity.is_none()),
                })
                .map(|(ix, _)| ix);
            let member = Member {
                name: s.name.clone(),
                entity: s.entity.clone(),
                labels: s.labels.clone(),
                summary: s.summary.clone(),
                starts_at: s.starts_at,
                last_firing: now,
                firing: true,
            };
            match joins {
                Some(ix) => {
                    let inc = &mut self.incidents[ix];
                    inc.signals.insert(s.key.clone(), member);
                    if let Some(e) = &s.entity {
                        inc.entities.insert(e.clone());
                    }
                    inc.event(now, "signal", describe(&s.name, s.entity.as_deref()));
                    if !changes.contains(&Change::Grew(inc.id.clone()))
                        && !changes.contains(&Change::Opened(inc.id.clone()))
                    {
                        changes.push(Change::Grew(inc.id.clone()));
                    }
                }
                None => {
                    self.opened += 1;
                    let id = format!("inc-{}", self.opened);
                    let mut inc = Incident {
                        id: id.clone(),
                        title: describe(&s.name, s.entity.as_deref()),
                        state: State::Open,
                        opened_at: now,
                        updated_at: now,
                        acknowledged_at: None,
                        acknowledged_by: None,
                        resolved_at: None,
                        resolved_by: None,
                        symptom: s.entity.clone(),
                        entities: s.entity.iter().cloned().collect(),
                        signals: BTreeMap::from([(s.key.clone(), member)]),
                        causes: Vec::new(),
                        analysed_at: None,
                        analysed_signals: 0,
                        advice: Vec::new(),
                        timeline: Vec::new(),
                        notifications: serde_json::Value::Null,
                    };
                    inc.event(
                        s.starts_at.min(now),
                        "first_symptom",
                        describe(&s.name, s.entity.as_deref()),
                    );
                    inc.event(now, "opened", "");
                    self.incidents.push(inc);
                    changes.push(Change::Opened(id));
                }
            }
        }
        // Quiet for long enough: resolved.
        for inc in self.incidents.iter_mut().filter(|i| !i.is_resolved()) {
            if inc.firing() == 0 && now - inc.last_firing() >= g.resolve_after_ms {
                inc.state = State::Resolved;
                inc.resolved_at = Some(now);
                inc.resolved_by = Some("sightline (no signal firing)".into());
                inc.event(now, "resolved", "no signal fired for the resolve delay");
                changes.push(Change::Resolved(inc.id.clone()));
            }
        }
        self.forget(g.keep_resolved);
        changes
    }

    /// An operator acknowledges an open incident.
    pub fn acknowledge(&mut self, id: &str, by: &str, now: i64) -> Result<&Incident, String> {
        let inc = self
            .get_mut(id)
            .ok_or_else(|| format!("no incident {id}"))?;
        match inc.state {
            State::Resolved => Err(format!("incident {id} is resolved")),
            State::Acknowledged => Ok(inc),
            State::Open => {
                inc.state = State::Acknowledged;
                inc.acknowledged_at = Some(now);
                inc.acknowledged_by = Some(by.to_string());
                inc.event(now, "acknowledged", by);
                Ok(inc)
            }
        }
    }

    /// An operator resolves an incident; its signals, should they keep firing, open a new
    /// one.
    pub fn resolve(&mut self, id: &str, by: &str, now: i64) -> Result<&Incident, String> {
        let inc = self
            .get_mut(id)
            .ok_or_else(|| format!("no incident {id}"))?;
        if inc.state != State::Resolved {
            inc.state = State::Resolved;
            inc.resolved_at = Some(now);
            inc.resolved_by = Some(by.to_string());
            inc.event(now, "resolved", by);
        }
        Ok(inc)
    }

    /// Keeps at most `keep` resolved incidents (the most recently resolved).
    fn forget(&mut self, keep: usize) {
        let resolved = self.incidents.iter().filter(|i| i.is_resolved()).count();
        if resolved <= keep {
            return;
        }
        let mut ends: Vec<i64> = self
            .incidents
            .iter()
            .filter_map(|i| i.is_resolved().then_some(i.resolved_at.unwrap_or(0)))
            .collect();
        ends.sort_unstable();
        let cutoff = ends[resolved - keep - 1];
        let mut dropped = 0;
        let excess = resolved - keep;
        self.incidents.retain(|i| {
            let drop = i.is_resolved() && i.resolved_at.unwrap_or(0) <= cutoff && dropped < excess;
            dropped += usize::from(drop);
            !drop
        });
    }
}

fn describe(name: &str, entity: Option<&str>) -> String {
    match entity {
        Some(e) => format!("{name} on {e}"),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(key: &str, name: &str, entity: Option<&str>) -> Signal {
        Signal {
            key: key.into(),
            name: name.into(),
            entity: entity.map(str::to_string),
            labels: BTreeMap::new(),
            summary: None,
            starts_at: 0,
        }
    }

    /// gateway → budget → ledger; auth alone.
    fn near(e: &str) -> HashSet<String> {
        let graph = [
            ("service:gateway", "service:budget"),
            ("service:budget", "database:ledger"),
        ];
        let mut out = HashSet::from([e.to_string()]);
        for _ in 0..2 {
            for (a, b) in graph {
                if out.contains(a) {
                    out.insert(b.to_string());
                }
                if out.contains(b) {
                    out.insert(a.to_string());
                }
            }
        }
        out
    }

    #[test]
    fn related_signals_group_and_unrelated_ones_do_not() {
        let mut inc = Incidents::default();
        let g = Grouping::default();
        let c = inc.observe(
            &[signal("a", "SlowDB", Some("database:ledger"))],
            &mut near,
            &g,
            1_000,
        );
        assert_eq!(c, [Change::Opened("inc-1".into())]);
        let firing = [
            signal("a", "SlowDB", Some("database:ledger")),
            signal("b", "HighLatency", Some("service:gateway")),
            signal("c", "AuthErrors", Some("service:auth")),
        ];
        let c = inc.observe(&firing, &mut near, &g, 61_000);
        assert_eq!(
            c,
            [Change::Grew("inc-1".into()), Change::Opened("inc-2".into())]
        );
        let one = inc.get("inc-1").unwrap();
        assert_eq!(one.symptom.as_deref(), Some("database:ledger"));
        assert_eq!(one.signals.len(), 2);
        assert!(one.entities.contains("service:gateway"));
        assert_eq!(inc.get("inc-2").unwrap().signals.len(), 1);
    }

    #[test]
    fn quiet_incidents_resolve_and_a_signal_firing_again_opens_a_new_one() {
        let mut inc = Incidents::default();
        let g = Grouping::default();
        let s = [signal("a", "SlowDB", Some("database:ledger"))];
        inc.observe(&s, &mut near, &g, 0);
        inc.observe(&[], &mut near, &g, 60_000);
        let i = inc.get("inc-1").unwrap();
        assert_eq!(i.state, State::Open);
        assert_eq!(i.firing(), 0);
        let c = inc.observe(&[], &mut near, &g, 60_000 + g.resolve_after_ms);
        assert_eq!(c, [Change::Resolved("inc-1".into())]);
        let c = inc.observe(&s, &mut near, &g, 10 * 60_000);
        assert_eq!(c, [Change::Opened("inc-2".into())]);
    }

    #[test]
    fn operators_acknowledge_and_resolve() {
        let mut inc = Incidents::default();
        let g = Grouping::default();
        inc.observe(&[signal("a", "X", None)], &mut near, &g, 0);
        assert_eq!(
            inc.acknowledge("inc-1", "ana", 5).unwrap().state,
            State::Acknowledged
        );
        assert!(inc.acknowledge("inc-9", "ana", 5).is_err());
        assert_eq!(
            inc.resolve("inc-1", "ana", 6).unwrap().state,
            State::Resolved
        );
        assert!(inc.acknowledge("inc-1", "ana", 7).is_err());
        let kinds: Vec<&str> = inc
            .get("inc-1")
            .unwrap()
            .timeline
            .iter()
            .map(|e| e.kind.as_str())
            .collect();
        assert_eq!(
            kinds,
            ["first_symptom", "opened", "acknowledged", "resolved"]
        );
        // Signals without an entity group by name.
        let c = inc.observe(
            &[
                signal("a", "X", None),
                signal("b", "X", None),
                signal("c", "Y", None),
            ],
            &mut near,
            &g,
            10,
        );
        assert_eq!(
            c,
            [
                Change::Opened("inc-2".into()),
                Change::Opened("inc-3".into())
            ]
        );
        assert_eq!(inc.get("inc-2").unwrap().signals.len(), 2);
    }

    #[test]
    fn resolved_incidents_are_forgotten_oldest_first() {
        let mut inc = Incidents::default();
        let g = Grouping {
            keep_resolved: 2,
            ..Grouping::default()
        };
        for i in 0..4 {
            let key = format!("k{i}");
            inc.observe(
                &[signal(&key, "X", Some(&format!("service:s{i}")))],
                &mut near,
                &g,
                i,
            );
            inc.resolve(&format!("inc-{}", i + 1), "ana", 100 + i)
                .unwrap();
        }
        inc.observe(&[], &mut near, &g, 200);
        let ids: Vec<&str> = inc.incidents.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["inc-3", "inc-4"]);
    }
}
