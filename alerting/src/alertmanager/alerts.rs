//! Alerts as the alert manager holds them: posted by Prometheus (or Sightline's own rule
//! evaluator), merged by fingerprint as Alertmanager merges them, resolved by their end
//! time, and forgotten once resolved and notified.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub generator_url: String,
    pub updated_at: DateTime<Utc>,
    /// The end was set by `resolve_timeout`, not by the sender.
    pub timeout: bool,
}

impl Alert {
    /// Whether the alert is resolved at `now` (its end has passed).
    pub fn resolved_at(&self, now: DateTime<Utc>) -> bool {
        self.ends_at <= now
    }

    pub fn fingerprint(&self) -> u64 {
        fingerprint(&self.labels)
    }

    /// Alertmanager's `Alert.Merge`: `self` is the alert held, `newer` the one posted.
    /// The earliest start wins; an explicit end from the sender beats a timeout.
    pub fn merge(&self, newer: &Alert, now: DateTime<Utc>) -> Alert {
        if newer.updated_at < self.updated_at {
            return newer.merge(self, now);
        }
        let mut out = newer.clone();
        if self.starts_at < newer.starts_at {
            out.starts_at = self.starts_at;
        }
        if newer.resolved_at(now) {
            if self.resolved_at(now) && self.ends_at > newer.ends_at {
                out.ends_at = self.ends_at;
            }
        } else if self.ends_at > newer.ends_at && !self.timeout {
            out.ends_at = self.ends_at;
        }
        out
    }
}

/// Prometheus's label-set fingerprint (`model.LabelSet.Fingerprint`): FNV-1a 64 over the
/// sorted names and values, each followed by the byte 0xff. Alertmanager's API prints it
/// as 16 hex digits.
pub fn fingerprint(labels: &BTreeMap<String, String>) -> u64 {
    const OFFSET: u64 = 14695981039346656037;
    const PRIME: u64 = 1099511628211;
    let mut hash = OFFSET;
    let mut add = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[0xff]);
        add(value.as_bytes());
        add(&[0xff]);
    }
    hash
}

/// An alert as `POST /api/v2/alerts` receives it (`postableAlert`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostableAlert {
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
}

impl PostableAlert {
    /// Turns a posted alert into one held, as Alertmanager's API does: no start means
    /// now; no end means now plus `resolve_timeout` (a timeout, which a later explicit
    /// end overrides). Errors (Alertmanager's `Validate`) name the alert.
    pub fn into_alert(
        self,
        now: DateTime<Utc>,
        resolve_timeout: ChronoDuration,
    ) -> Result<Alert, String> {
        let zero = |t: Option<DateTime<Utc>>| t.filter(|t| *t > super::data::go_zero_time());
        let starts_at = zero(self.starts_at);
        let ends_at = zero(self.ends_at);
        let name = || super::route::label_set_string(&self.labels);
        if self.labels.is_empty() {
            return Err("alert without labels: at least one label pair required".to_owned());
        }
        for (k, v) in &self.labels {
            if k.is_empty() {
                return Err(format!("{}: invalid label name \"\"", name()));
            }
            if v.is_empty() {
                return Err(format!("{}: empty value of label {k:?}", name()));
            }
        }
        for k in self.annotations.keys() {
            if k.is_empty() {
                return Err(format!("{}: invalid annotation name \"\"", name()));
            }
        }
        // As Alertmanager's API: no start means the end, or now when there is no end.
        let starts = starts_at.or(ends_at).unwrap_or(now);
        let (ends, timeout) = match ends_at {
            Some(end) => (end, false),
            None => (now + resolve_timeout, true),
        };
        if ends < starts {
            return Err(format!("{}: start time must be before end time", name()));
        }
        Ok(Alert {
            labels: self.labels,
            annotations: self.annotations,
            starts_at: starts,
            ends_at: ends,
            generator_url: self.generator_url,
            updated_at: now,
            timeout,
        })
    }
}

/// The alerts held, by fingerprint.
#[derive(Debug, Clone, Default)]
pub struct AlertStore {
    alerts: HashMap<u64, Alert>,
}

impl AlertStore {
    /// Puts an alert, merging it with the one held when their activity overlaps (as
    /// Alertmanager's store does); returns the alert now held.
    pub fn put(&mut self, alert: Alert, now: DateTime<Utc>) -> &Alert {
        let fp = alert.fingerprint();
        let merged = match self.alerts.get(&fp) {
            Some(old)
                if (alert.ends_at > old.starts_at && alert.ends_at < old.ends_at)
                    || (alert.starts_at > old.starts_at && alert.starts_at < old.ends_at) =>
            {
                old.merge(&alert, now)
            }
            _ => alert,
        };
        self.alerts.insert(fp, merged);
        &self.alerts[&fp]
    }

    pub fn get(&self, fp: u64) -> Option<&Alert> {
        self.alerts.get(&fp)
    }

    pub fn iter(&self) -> std::collections::hash_map::Iter<'_, u64, Alert> {
        self.alerts.iter()
    }

    pub fn values(&self) -> std::collections::hash_map::Values<'_, u64, Alert> {
        self.alerts.values()
    }

    /// Removes the alert if it is still the one given (not updated since).
    pub fn delete_if_unchanged(&mut self, fp: u64, seen: &Alert) -> bool {
        if self.alerts.get(&fp) == Some(seen) {
            self.alerts.remove(&fp);
            true
        } else {
            false
        }
    }

    /// Forgets alerts resolved before `before`; returns their fingerprints.
    pub fn gc(&mut self, before: DateTime<Utc>) -> Vec<u64> {
        let gone: Vec<u64> = self
            .alerts
            .iter()
            .filter(|(_, a)| a.ends_at < before)
            .map(|(fp, _)| *fp)
            .collect();
        for fp in &gone {
            self.alerts.remove(fp);
        }
        gone
    }

    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        format!("2026-12-07T{s}Z").parse().unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fingerprints_are_prometheus_label_set_fingerprints() {
        // The empty set hashes to FNV-1a's offset basis; the rest is checked against a
        // real Alertmanager's `/api/v2/alerts` in the interop tests.
        assert_eq!(fingerprint(&BTreeMap::new()), 14695981039346656037);
        let one = fingerprint(&labels(&[("a", "b")]));
        assert_ne!(one, fingerprint(&labels(&[("a", "c")])));
        assert_ne!(one, fingerprint(&labels(&[("ab", "")])));
    }

    #[test]
    fn posted_alerts_get_defaults_and_bad_ones_are_refused_by_name() {
        let now = at("10:00:00");
        let timeout = ChronoDuration::minutes(5);
        let post = |json: &str| {
            serde_json::from_str::<PostableAlert>(json)
                .unwrap()
                .into_alert(now, timeout)
        };
        let a = post(r#"{"labels":{"alertname":"X"}}"#).unwrap();
        assert_eq!(a.starts_at, now);
        assert_eq!(a.ends_at, at("10:05:00"));
        assert!(a.timeout);
        assert!(
            post(r#"{"labels":{}}"#)
                .unwrap_err()
                .contains("at least one label")
        );
        assert!(
            post(r#"{"labels":{"a":""}}"#)
                .unwrap_err()
                .contains("empty value")
        );
        let err = post(r#"{"labels":{"a":"1"},"startsAt":"2026-12-07T10:00:00Z","endsAt":"2026-12-07T09:00:00Z"}"#)
            .unwrap_err();
        assert!(err.contains(r#"{a="1"}: start time"#), "{err}");
        assert!(serde_json::from_str::<PostableAlert>(r#"{"labels":{},"colour":1}"#).is_err());
    }

    #[test]
    fn merging_keeps_the_earliest_start_and_an_explicit_end_beats_a_timeout() {
        let now = at("10:10:00");
        let mut store = AlertStore::default();
        let first = Alert {
            labels: labels(&[("alertname", "X")]),
            annotations: BTreeMap::new(),
            starts_at: at("10:00:00"),
            ends_at: at("10:15:00"),
            generator_url: String::new(),
            updated_at: at("10:00:00"),
            timeout: true,
        };
        store.put(first.clone(), at("10:00:00"));
        let mut resent = first.clone();
        resent.starts_at = at("10:05:00");
        resent.ends_at = at("10:14:00");
        resent.updated_at = now;
        resent.timeout = false;
        let held = store.put(resent, now).clone();
        assert_eq!(held.starts_at, at("10:00:00"));
        assert_eq!(held.ends_at, at("10:14:00"), "the older end was a timeout");
        let mut resolved = held.clone();
        resolved.ends_at = at("10:11:00");
        resolved.updated_at = at("10:12:00");
        let held = store.put(resolved, at("10:12:00")).clone();
        assert!(held.resolved_at(at("10:12:00")));
        assert!(store.delete_if_unchanged(held.fingerprint(), &held));
        assert!(store.is_empty());
    }
}
