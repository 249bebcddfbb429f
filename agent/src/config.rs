//! The agent's configuration file (TOML). Every key has a default, so an empty file (or none)
//! runs an agent that collects host metrics every 15 s and forwards them to a server on
//! loopback.
//!
//! ```toml
//! [server]
//! url = "http://127.0.0.1:7070"     # remote_write to {url}/api/v1/write, logs to
//!                                   # {url}/loki/api/v1/push; http:// only for now (no TLS)
//! tenant = "default"                # X-Scope-OrgID
//! token_file = "/etc/sightline/agent.token"   # sent as a bearer token when set
//! timeout = "10s"
//!
//! [buffer]
//! dir = "/var/lib/sightline-agent/buffer"
//! max_bytes = 268435456             # oldest data dropped (and counted) beyond this
//!
//! [host]
//! interval = "15s"
//! proc = "/proc"                    # node_exporter's --path.procfs
//! sys = "/sys"                      # --path.sysfs
//! collectors = ["cpu", "meminfo"]   # default: every one the agent implements
//!
//! [labels]                          # added to every series (defaults: job, instance)
//! job = "node"
//!
//! [resource]                        # resource attributes, over what is detected
//! "cloud.region" = "east-1"
//!
//! listen = "127.0.0.1:9109"         # the agent's own /metrics
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use sightline_collector::host::Collector;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: Server,
    pub buffer: BufferConfig,
    pub host: Host,
    /// Labels on every series the agent sends; `job` defaults to `node` and `instance` to
    /// the host's name, as a Prometheus scraping node_exporter would label them.
    pub labels: BTreeMap<String, String>,
    /// Resource attributes (`host.name`, `cloud.region`, …) over the detected ones.
    pub resource: BTreeMap<String, String>,
    /// Where the agent serves its own `/metrics`.
    pub listen: SocketAddr,
    /// Log files to tail (`[[logs]]`); default `/var/log/*.log`, none with `logs = []`.
    pub logs: Vec<crate::tail::LogsConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: Server::default(),
            buffer: BufferConfig::default(),
            host: Host::default(),
            labels: BTreeMap::new(),
            resource: BTreeMap::new(),
            listen: ([127, 0, 0, 1], 9109).into(),
            logs: vec![crate::tail::LogsConfig::default()],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// The server's HTTP base URL.
    pub url: String,
    /// The tenant written to (`X-Scope-OrgID`).
    pub tenant: Option<String>,
    /// A file holding the API token, sent as `Authorization: Bearer …`.
    pub token_file: Option<PathBuf>,
    /// Per request.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            url: "http://127.0.0.1:7070".into(),
            tenant: None,
            token_file: None,
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BufferConfig {
    pub dir: PathBuf,
    /// Bytes on disk at most (about: one segment over); the oldest records go first.
    pub max_bytes: u64,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            dir: PathBuf::from("sightline-agent-data/buffer"),
            max_bytes: 256 << 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Host {
    pub enabled: bool,
    #[serde(deserialize_with = "duration")]
    pub interval: Duration,
    pub proc: PathBuf,
    pub sys: PathBuf,
    /// node_exporter collector names; default all the agent implements.
    pub collectors: Option<Vec<String>>,
}

impl Default for Host {
    fn default() -> Self {
        Host {
            enabled: true,
            interval: Duration::from_secs(15),
            proc: PathBuf::from("/proc"),
            sys: PathBuf::from("/sys"),
            collectors: None,
        }
    }
}

impl Host {
    /// The collectors named, or an error naming the unknown one and the known ones.
    pub fn collectors(&self) -> Result<Vec<Collector>, String> {
        let Some(names) = &self.collectors else {
            return Ok(Collector::ALL.to_vec());
        };
        names
            .iter()
            .map(|n| {
                Collector::ALL
                    .into_iter()
                    .find(|c| c.name() == n)
                    .ok_or_else(|| {
                        let known: Vec<_> = Collector::ALL.iter().map(|c| c.name()).collect();
                        format!(
                            "host.collectors: unknown collector {n:?} (known: {})",
                            known.join(", ")
                        )
                    })
            })
            .collect()
    }
}

pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}")))
}

impl Config {
    /// Reads and checks a file.
    pub fn from_file(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Config::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.server.url.starts_with("https://") {
            // The client is built without a TLS backend yet (issue 17's TLS item).
            return Err(format!(
                "server.url: {:?}: https is not supported by the agent yet; use http:// (on a trusted network or through a local TLS proxy)",
                self.server.url
            ));
        }
        if !self.server.url.starts_with("http://") {
            return Err(format!(
                "server.url: {:?} is not an http:// URL",
                self.server.url
            ));
        }
        if self.host.interval < Duration::from_millis(100) {
            return Err(format!(
                "host.interval: {:?} is under the minimum of 100ms",
                self.host.interval
            ));
        }
        if self.buffer.max_bytes < 1 << 20 {
            return Err(format!(
                "buffer.max_bytes: {} is under the minimum of 1 MiB",
                self.buffer.max_bytes
            ));
        }
        for name in self.labels.keys() {
            if !sightline_model::is_valid_label_name(name) || name.starts_with("__") {
                return Err(format!("labels: {name:?} is not a valid label name"));
            }
        }
        self.host.collectors()?;
        for logs in &self.logs {
            crate::tail::Tailer::new(logs.clone(), std::path::PathBuf::new())?;
        }
        Ok(())
    }

    /// The token, read from `token_file` (trimmed), if one is configured.
    pub fn token(&self) -> Result<Option<String>, String> {
        let Some(path) = &self.server.token_file else {
            return Ok(None);
        };
        let t = std::fs::read_to_string(path)
            .map_err(|e| format!("server.token_file: reading {}: {e}", path.display()))?;
        Ok(Some(t.trim().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_a_working_agent() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.host.interval, Duration::from_secs(15));
        assert_eq!(c.host.collectors().unwrap().len(), Collector::ALL.len());
        assert_eq!(c.server.url, "http://127.0.0.1:7070");
    }

    #[test]
    fn the_shipped_configurations_are_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        Config::from_file(&root.join("deploy/agent.toml")).unwrap();
        // The DaemonSet's ConfigMap.
        let text =
            std::fs::read_to_string(root.join("deploy/kubernetes/agent-daemonset.yaml")).unwrap();
        let mut found = 0;
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let v = serde_yaml_ng::Value::deserialize(doc).unwrap();
            if let Some(toml) = v["data"]["agent.toml"].as_str() {
                let c = Config::parse(toml).unwrap();
                assert_eq!(c.host.proc, Path::new("/host/proc"));
                found += 1;
            }
        }
        assert_eq!(found, 1);
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::parse("[host]\ncollectors = [\"cpu\", \"gpu\"]").unwrap_err();
        assert!(
            e.starts_with("host.collectors: unknown collector \"gpu\""),
            "{e}"
        );
        let e = Config::parse("[host]\ninterval = \"10ms\"").unwrap_err();
        assert!(e.starts_with("host.interval"), "{e}");
        let e = Config::parse("[server]\nurl = \"ftp://x\"").unwrap_err();
        assert!(e.starts_with("server.url"), "{e}");
        let e = Config::parse("[server]\nurl = \"https://x\"").unwrap_err();
        assert!(e.contains("https is not supported by the agent yet"), "{e}");
        let e = Config::parse("[host]\nintervall = \"1s\"").unwrap_err();
        assert!(e.contains("unknown field `intervall`"), "{e}");
        let e = Config::parse("[labels]\n\"a-b\" = \"x\"").unwrap_err();
        assert!(e.starts_with("labels: \"a-b\""), "{e}");
    }
}
