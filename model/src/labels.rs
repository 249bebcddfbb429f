//! Label sets and the mapping from OpenTelemetry attribute names to LogQL/PromQL labels.
//!
//! Attribute names become label names the way Loki and the OpenTelemetry→Prometheus
//! translation do it: every character outside `[a-zA-Z0-9_]` becomes `_` (so `service.name`
//! is `service_name`), and a leading digit gets a `_` prefix.

use serde::{Deserialize, Serialize};

/// A label set, sorted by name, names unique. Identifies one log stream within a tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// Builds a label set; later duplicates of a name replace earlier ones, empty values are
    /// dropped (as in Prometheus, an empty label equals an absent one).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let pairs = pairs.into_iter();
        let mut v: Vec<(String, String)> = Vec::with_capacity(pairs.size_hint().0);
        v.extend(pairs.map(|(k, val)| (k.into(), val.into())));
        // Fast path: names already strictly sorted (as remote_write and our own code send
        // them) cannot hold duplicates.
        if v.windows(2).all(|w| w[0].0 < w[1].0) {
            v.retain(|(_, val)| !val.is_empty());
            return Self(v);
        }
        let mut unique: Vec<(String, String)> = Vec::with_capacity(v.len());
        for (k, val) in v {
            if let Some(slot) = unique.iter_mut().find(|(n, _)| *n == k) {
                slot.1 = val;
            } else {
                unique.push((k, val));
            }
        }
        unique.retain(|(_, val)| !val.is_empty());
        unique.sort();
        Self(unique)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.0
    }

    /// The canonical text form, `{a="1", b="2"}`, as Loki prints a stream. Values are escaped
    /// like Go string literals; [`Labels::parse_canonical`] reverses it.
    pub fn to_canonical(&self) -> String {
        let mut out = String::with_capacity(2 + self.0.len() * 24);
        write_canonical(self.iter(), &mut out);
        out
    }

    /// Parses the output of [`Labels::to_canonical`]. Returns `None` on anything else.
    pub fn parse_canonical(s: &str) -> Option<Self> {
        let inner = s.strip_prefix('{')?.strip_suffix('}')?;
        let mut pairs = Vec::new();
        let mut rest = inner;
        while !rest.is_empty() {
            let eq = rest.find("=\"")?;
            let name = rest[..eq].trim().to_string();
            let mut value = String::new();
            let mut chars = rest[eq + 2..].char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        'r' => value.push('\r'),
                        't' => value.push('\t'),
                        other => value.push(other),
                    },
                    '"' => {
                        end = Some(eq + 2 + i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            pairs.push((name, value));
            rest = rest[end?..].trim_start_matches(',').trim_start();
        }
        Some(Self::from_pairs(pairs))
    }
}

/// Appends the canonical text form of label pairs (already sorted, names unique, values
/// non-empty) to `out`: what [`Labels::to_canonical`] prints, without building a [`Labels`].
pub fn write_canonical<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>, out: &mut String) {
    out.push('{');
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

/// Whether `name` is a valid Prometheus/Loki label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Maps an OpenTelemetry attribute name to a label name (`service.name` → `service_name`).
pub fn attribute_to_label_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    out
}

/// Resource attributes that become index labels of a log stream (after name mapping).
///
/// Loki's default OTLP set, plus `host.name` (syslog's HOSTNAME lands there and on-call
/// engineers filter by host). Every other resource attribute stays queryable as structured
/// metadata through label filters, without multiplying streams.
pub const INDEXED_RESOURCE_ATTRIBUTES: &[&str] = &[
    "service.name",
    "service.namespace",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "cloud.region",
    "cloud.availability_zone",
    "host.name",
    "k8s.cluster.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
    "container.name",
    "k8s.replicaset.name",
    "k8s.deployment.name",
    "k8s.statefulset.name",
    "k8s.daemonset.name",
    "k8s.cronjob.name",
    "k8s.job.name",
];

/// The `service_name` of streams whose resource names no service (OpenTelemetry's default).
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// Index labels for a stream from its resource attributes: the [`INDEXED_RESOURCE_ATTRIBUTES`]
/// present, mapped to label names, and always a `service_name`.
pub fn index_labels_from_resource(resource: &[(String, String)]) -> Labels {
    let mut pairs: Vec<(String, String)> = resource
        .iter()
        .filter(|(k, _)| INDEXED_RESOURCE_ATTRIBUTES.contains(&k.as_str()))
        .map(|(k, v)| (attribute_to_label_name(k), v.clone()))
        .collect();
    if !pairs
        .iter()
        .any(|(k, v)| k == "service_name" && !v.is_empty())
    {
        pairs.push(("service_name".into(), UNKNOWN_SERVICE.into()));
    }
    Labels::from_pairs(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_names_map_like_loki() {
        assert_eq!(attribute_to_label_name("service.name"), "service_name");
        assert_eq!(attribute_to_label_name("k8s.pod.name"), "k8s_pod_name");
        assert_eq!(attribute_to_label_name("1abc-d"), "_1abc_d");
        assert!(is_valid_label_name("service_name"));
        assert!(!is_valid_label_name("service.name"));
        assert!(!is_valid_label_name("9a"));
    }

    #[test]
    fn index_labels_keep_the_default_set_and_name_the_service() {
        let res = vec![
            ("service.name".to_string(), "checkout".to_string()),
            ("k8s.pod.name".to_string(), "checkout-7d9".to_string()),
            ("process.pid".to_string(), "42".to_string()),
        ];
        let l = index_labels_from_resource(&res);
        assert_eq!(l.get("service_name"), Some("checkout"));
        assert_eq!(l.get("k8s_pod_name"), Some("checkout-7d9"));
        assert_eq!(l.get("process_pid"), None);
        assert_eq!(
            index_labels_from_resource(&[]).get("service_name"),
            Some(UNKNOWN_SERVICE)
        );
    }

    #[test]
    fn labels_are_sorted_deduplicated_and_round_trip() {
        let l = Labels::from_pairs([("b", "2"), ("a", "x\"y\\z\n"), ("b", "3"), ("c", "")]);
        assert_eq!(l.len(), 2);
        assert_eq!(l.get("b"), Some("3"));
        let text = l.to_canonical();
        assert_eq!(text, r#"{a="x\"y\\z\n", b="3"}"#);
        assert_eq!(Labels::parse_canonical(&text), Some(l));
        assert_eq!(Labels::parse_canonical("{}"), Some(Labels::default()));
    }
}
