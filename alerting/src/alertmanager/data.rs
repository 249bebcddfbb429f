//! What one notification carries: Alertmanager's template data (`template.Data`), which
//! is also the webhook payload (`version: "4"`).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::template::Value;

/// An alert as a notification shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertData {
    /// `firing` or `resolved` at the time of the notification.
    pub status: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    /// Go's zero time (`0001-01-01T00:00:00Z`) while firing with no end known.
    pub ends_at: DateTime<Utc>,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    /// The label set's fingerprint, 16 hex digits.
    pub fingerprint: String,
}

/// One notification for one group and one receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Data {
    /// The receiver's name with regular-expression metacharacters escaped, as
    /// Alertmanager fills it (`regexp.QuoteMeta`).
    pub receiver: String,
    /// `firing` when any alert in the group fires, else `resolved`.
    pub status: String,
    pub alerts: Vec<AlertData>,
    pub group_labels: BTreeMap<String, String>,
    pub common_labels: BTreeMap<String, String>,
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    pub external_url: String,
}

/// The webhook payload: the data plus the envelope fields of `webhook.Message`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMessage {
    #[serde(flatten)]
    pub data: Data,
    pub version: String,
    pub group_key: String,
    pub truncated_alerts: u64,
}

impl Data {
    /// Builds the data for `alerts` (in the order they will be shown) sent to `receiver`
    /// for a group with `group_labels`.
    pub fn new(
        receiver: &str,
        group_labels: BTreeMap<String, String>,
        alerts: Vec<AlertData>,
        external_url: &str,
    ) -> Data {
        let status = if alerts.iter().any(|a| a.status == "firing") {
            "firing"
        } else {
            "resolved"
        };
        let common = |pick: fn(&AlertData) -> &BTreeMap<String, String>| {
            let mut iter = alerts.iter();
            let mut common = iter.next().map(pick).cloned().unwrap_or_default();
            for alert in iter {
                let other = pick(alert);
                common.retain(|k, v| other.get(k) == Some(v));
            }
            common
        };
        Data {
            receiver: quote_meta(receiver),
            status: status.to_owned(),
            common_labels: common(|a| &a.labels),
            common_annotations: common(|a| &a.annotations),
            group_labels,
            alerts,
            external_url: external_url.to_owned(),
        }
    }

    /// Returns the data as templates see it: `.Receiver`, `.Status`, `.Alerts` (each with
    /// `.Status`, `.Labels`, `.Annotations`, `.StartsAt`, `.EndsAt`, `.GeneratorURL`,
    /// `.Fingerprint`), `.GroupLabels`, `.CommonLabels`, `.CommonAnnotations`,
    /// `.ExternalURL`.
    pub fn to_value(&self) -> Value {
        let strings = |m: &BTreeMap<String, String>| Value::string_map(m.iter());
        let alerts = self
            .alerts
            .iter()
            .map(|a| {
                let mut m = BTreeMap::new();
                m.insert("Status".to_owned(), Value::from(a.status.as_str()));
                m.insert("Labels".to_owned(), strings(&a.labels));
                m.insert("Annotations".to_owned(), strings(&a.annotations));
                m.insert(
                    "StartsAt".to_owned(),
                    Value::Time(a.starts_at.fixed_offset()),
                );
                m.insert("EndsAt".to_owned(), Value::Time(a.ends_at.fixed_offset()));
                m.insert(
                    "GeneratorURL".to_owned(),
                    Value::from(a.generator_url.as_str()),
                );
                m.insert(
                    "Fingerprint".to_owned(),
                    Value::from(a.fingerprint.as_str()),
                );
                Value::Map(m)
            })
            .collect();
        let mut m = BTreeMap::new();
        m.insert("Receiver".to_owned(), Value::from(self.receiver.as_str()));
        m.insert("Status".to_owned(), Value::from(self.status.as_str()));
        m.insert("Alerts".to_owned(), Value::List(alerts));
        m.insert("GroupLabels".to_owned(), strings(&self.group_labels));
        m.insert("CommonLabels".to_owned(), strings(&self.common_labels));
        m.insert(
            "CommonAnnotations".to_owned(),
            strings(&self.common_annotations),
        );
        m.insert(
            "ExternalURL".to_owned(),
            Value::from(self.external_url.as_str()),
        );
        Value::Map(m)
    }
}

/// Go's `regexp.QuoteMeta`: escapes exactly `\.+*?()|[]{}^$`.
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Go's zero `time.Time`, which Alertmanager sends as the end of an alert with none.
pub fn go_zero_time() -> DateTime<Utc> {
    "0001-01-01T00:00:00Z".parse().expect("valid constant")
}

/// Formats an instant as Alertmanager's JSON does (RFC 3339 with nanoseconds trimmed).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(status: &str, labels: &[(&str, &str)]) -> AlertData {
        AlertData {
            status: status.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: BTreeMap::new(),
            starts_at: "2026-12-07T04:00:00Z".parse().unwrap(),
            ends_at: go_zero_time(),
            generator_url: String::new(),
            fingerprint: "0000000000000001".to_owned(),
        }
    }

    #[test]
    fn common_labels_are_those_every_alert_shares_and_status_is_firing_if_any_fires() {
        let data = Data::new(
            "team.a",
            BTreeMap::new(),
            vec![
                alert("resolved", &[("alertname", "X"), ("pod", "a")]),
                alert("firing", &[("alertname", "X"), ("pod", "b")]),
            ],
            "http://sightline",
        );
        assert_eq!(data.status, "firing");
        assert_eq!(data.receiver, r"team\.a");
        assert_eq!(quote_meta("team-a (x)"), r"team-a \(x\)");
        assert_eq!(
            data.common_labels,
            BTreeMap::from([("alertname".to_owned(), "X".to_owned())])
        );
    }

    #[test]
    fn the_webhook_message_has_alertmanagers_field_names() {
        let message = WebhookMessage {
            data: Data::new("r", BTreeMap::new(), vec![alert("firing", &[])], ""),
            version: "4".to_owned(),
            group_key: "{}:{}".to_owned(),
            truncated_alerts: 0,
        };
        let json = serde_json::to_value(&message).unwrap();
        for key in [
            "receiver",
            "status",
            "alerts",
            "groupLabels",
            "commonLabels",
            "commonAnnotations",
            "externalURL",
            "version",
            "groupKey",
            "truncatedAlerts",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        assert_eq!(json["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
        assert!(json["alerts"][0].get("generatorURL").is_some());
    }
}
