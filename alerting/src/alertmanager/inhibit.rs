//! Inhibition: an alert matching a rule's target is muted while another alert matching its
//! source fires with the same values of the rule's `equal` labels (Alertmanager's
//! `inhibit/inhibit.go`). An alert that matches both sides never inhibits alerts that also
//! match both sides, so a rule cannot make an alert mute itself.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::alerts::{Alert, fingerprint};
use super::config::InhibitRuleConfig;

/// The firing source alerts of every rule, indexed by their `equal` label values, taken at
/// one instant so that checking an alert costs a lookup, not a scan.
#[derive(Debug, Default)]
pub struct Inhibitions<'a> {
    rules: Vec<(&'a InhibitRuleConfig, SourcesByEqual)>,
}

/// A rule's firing source alerts by the values of its `equal` labels.
type SourcesByEqual = HashMap<Vec<String>, Vec<Source>>;

#[derive(Debug, Clone, Copy)]
struct Source {
    fingerprint: u64,
    /// The source alert also matches the rule's target side.
    matches_target: bool,
}

fn equal_values(rule: &InhibitRuleConfig, labels: &BTreeMap<String, String>) -> Vec<String> {
    rule.equal
        .iter()
        .map(|l| labels.get(l).cloned().unwrap_or_default())
        .collect()
}

impl<'a> Inhibitions<'a> {
    /// Indexes the alerts that fire at `now` and match a rule's source side.
    pub fn new<'b>(
        rules: &'a [InhibitRuleConfig],
        alerts: impl Iterator<Item = &'b Alert> + Clone,
        now: DateTime<Utc>,
    ) -> Inhibitions<'a> {
        let rules = rules
            .iter()
            .map(|rule| {
                let mut sources = SourcesByEqual::new();
                for alert in alerts.clone() {
                    if alert.resolved_at(now) || !rule.source.matches(&alert.labels) {
                        continue;
                    }
                    sources
                        .entry(equal_values(rule, &alert.labels))
                        .or_default()
                        .push(Source {
                            fingerprint: fingerprint(&alert.labels),
                            matches_target: rule.target.matches(&alert.labels),
                        });
                }
                (rule, sources)
            })
            .collect();
        Inhibitions { rules }
    }

    /// The fingerprint of an alert that inhibits one with these labels, if any.
    pub fn inhibited_by(&self, labels: &BTreeMap<String, String>) -> Option<u64> {
        let own = fingerprint(labels);
        for (rule, sources) in &self.rules {
            if !rule.target.matches(labels) {
                continue;
            }
            let two_sided = rule.source.matches(labels);
            let Some(candidates) = sources.get(&equal_values(rule, labels)) else {
                continue;
            };
            if let Some(source) = candidates
                .iter()
                .find(|s| s.fingerprint != own && !(two_sided && s.matches_target))
            {
                return Some(source.fingerprint);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alertmanager::matchers::parse_matchers;

    fn alert(pairs: &[(&str, &str)], resolved: bool) -> Alert {
        let now: DateTime<Utc> = "2026-12-07T10:00:00Z".parse().unwrap();
        Alert {
            labels: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: BTreeMap::new(),
            starts_at: now - chrono::Duration::minutes(10),
            ends_at: if resolved {
                now - chrono::Duration::minutes(1)
            } else {
                now + chrono::Duration::minutes(5)
            },
            generator_url: String::new(),
            updated_at: now,
            timeout: false,
        }
    }

    fn rule(source: &str, target: &str, equal: &[&str]) -> InhibitRuleConfig {
        InhibitRuleConfig {
            source: parse_matchers(source).unwrap(),
            target: parse_matchers(target).unwrap(),
            equal: equal.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_firing_critical_alert_mutes_warnings_of_the_same_cluster_only() {
        let rules = [rule("severity=critical", "severity=warning", &["cluster"])];
        let now = "2026-12-07T10:00:00Z".parse().unwrap();
        let alerts = [
            alert(
                &[
                    ("alertname", "Down"),
                    ("severity", "critical"),
                    ("cluster", "a"),
                ],
                false,
            ),
            alert(
                &[
                    ("alertname", "Old"),
                    ("severity", "critical"),
                    ("cluster", "b"),
                ],
                true,
            ),
        ];
        let index = Inhibitions::new(&rules, alerts.iter(), now);
        let warning = |cluster: &str| {
            alert(
                &[
                    ("alertname", "Slow"),
                    ("severity", "warning"),
                    ("cluster", cluster),
                ],
                false,
            )
            .labels
        };
        assert_eq!(
            index.inhibited_by(&warning("a")),
            Some(alerts[0].fingerprint())
        );
        assert_eq!(
            index.inhibited_by(&warning("b")),
            None,
            "the source is resolved"
        );
        assert_eq!(index.inhibited_by(&warning("c")), None);
        assert_eq!(index.inhibited_by(&alerts[0].labels), None);
    }

    #[test]
    fn alerts_matching_both_sides_do_not_inhibit_each_other() {
        let rules = [rule("team=db", "team=db", &[])];
        let now = "2026-12-07T10:00:00Z".parse().unwrap();
        let alerts = [
            alert(&[("alertname", "A"), ("team", "db")], false),
            alert(&[("alertname", "B"), ("team", "db")], false),
        ];
        let index = Inhibitions::new(&rules, alerts.iter(), now);
        assert_eq!(index.inhibited_by(&alerts[0].labels), None);
        assert_eq!(index.inhibited_by(&alerts[1].labels), None);
    }
}
