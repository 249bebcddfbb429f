//! Resource attributes of the host the agent runs on (OpenTelemetry's semantic conventions),
//! so that the topology can place every series: `host.name`, `host.id`, `host.arch`,
//! `os.type`, and inside Kubernetes the downward API's variables as `k8s.*`; `cloud.*` and
//! anything else from the configuration, which wins over what is detected.

use std::collections::BTreeMap;
use std::path::Path;

/// Environment variables a DaemonSet sets from the downward API (`deploy/kubernetes/`), and
/// the attribute each becomes (the names OpenTelemetry's collector documents for them).
const DOWNWARD_API: &[(&str, &str)] = &[
    ("K8S_NODE_NAME", "k8s.node.name"),
    ("K8S_POD_NAME", "k8s.pod.name"),
    ("K8S_POD_UID", "k8s.pod.uid"),
    ("K8S_NAMESPACE_NAME", "k8s.namespace.name"),
    ("K8S_CLUSTER_NAME", "k8s.cluster.name"),
];

/// Detects the attributes: the host's name from `{proc}/sys/kernel/hostname` (the host's
/// `/proc` when it is mounted into a container), its id from `/etc/machine-id`, the
/// architecture, and the downward API's variables; then `configured` over them.
pub fn detect(
    proc: &Path,
    env: impl Fn(&str) -> Option<String>,
    configured: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut attrs = BTreeMap::new();
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    if let Some(name) = read(&proc.join("sys/kernel/hostname")).or_else(|| env("HOSTNAME")) {
        attrs.insert("host.name".to_string(), name);
    }
    if let Some(id) =
        read(Path::new("/etc/machine-id")).or_else(|| read(Path::new("/var/lib/dbus/machine-id")))
    {
        attrs.insert("host.id".to_string(), id);
    }
    // The semantic conventions' values: `amd64`, `arm64`, …
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "x86",
        other => other,
    };
    attrs.insert("host.arch".to_string(), arch.to_string());
    attrs.insert("os.type".to_string(), std::env::consts::OS.to_string());
    for (var, attr) in DOWNWARD_API {
        if let Some(v) = env(var).filter(|v| !v.is_empty()) {
            attrs.insert((*attr).to_string(), v);
        }
    }
    for (k, v) in configured {
        attrs.insert(k.clone(), v.clone());
    }
    attrs
}

/// The labels every series carries: the resource attributes as label names
/// (`host.name` → `host_name`, as the server maps OTLP resources), then `job` and `instance`
/// (node_exporter's, as a Prometheus scrape adds them: `node` and the host's name), then the
/// configured labels over all of them.
pub fn series_labels(
    attrs: &BTreeMap<String, String>,
    configured: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = attrs
        .iter()
        .map(|(k, v)| (sightline_model::attribute_to_label_name(k), v.clone()))
        .collect();
    labels.insert("job".into(), "node".into());
    if let Some(host) = attrs.get("host.name") {
        labels.insert("instance".into(), host.clone());
    }
    for (k, v) in configured {
        labels.insert(k.clone(), v.clone());
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detected_then_configured() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sys/kernel")).unwrap();
        std::fs::write(dir.path().join("sys/kernel/hostname"), "node-7\n").unwrap();
        let env = |k: &str| match k {
            "K8S_NODE_NAME" => Some("worker-3".to_string()),
            "K8S_NAMESPACE_NAME" => Some("monitoring".to_string()),
            _ => None,
        };
        let mut configured = BTreeMap::new();
        configured.insert("cloud.region".to_string(), "east-1".to_string());
        let attrs = detect(dir.path(), env, &configured);
        assert_eq!(attrs["host.name"], "node-7");
        assert_eq!(attrs["k8s.node.name"], "worker-3");
        assert_eq!(attrs["k8s.namespace.name"], "monitoring");
        assert_eq!(attrs["cloud.region"], "east-1");
        assert_eq!(attrs["os.type"], "linux");
        let mut extra = BTreeMap::new();
        extra.insert("job".to_string(), "hosts".to_string());
        let labels = series_labels(&attrs, &extra);
        assert_eq!(labels["instance"], "node-7");
        assert_eq!(labels["job"], "hosts");
        assert_eq!(labels["host_name"], "node-7");
        assert_eq!(labels["k8s_node_name"], "worker-3");
        assert_eq!(labels["cloud_region"], "east-1");
    }
}
