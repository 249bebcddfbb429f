//! Scrape configuration: Prometheus's `scrape_configs` with the same field names, read from
//! the server's TOML (`[[scrape_configs]]`). Durations are strings such as `"15s"`, `"1m30s"`.
//!
//! ```toml
//! [[scrape_configs]]
//! job_name = "node"
//! scrape_interval = "15s"
//! tenant = "platform"
//! static_configs = [{ targets = ["127.0.0.1:9100"], labels = { zone = "az1" } }]
//! file_sd_configs = [{ files = ["/etc/sightline/targets/*.json"], refresh_interval = "1m" }]
//!
//! [[scrape_configs.metric_relabel_configs]]
//! source_labels = ["__name__"]
//! regex = "go_.*"
//! action = "drop"
//! ```
//!
//! Only `http` is scraped (the scraper has no TLS). File discovery reads Prometheus's JSON
//! `file_sd` format; YAML files are refused at load time (no YAML parser in the build).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sightline_model::{TenantId, is_valid_label_name};

use super::relabel::RelabelConfig;

/// Prometheus's default scrape interval.
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
/// Prometheus's default scrape timeout (capped at the interval).
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// Prometheus's default file discovery refresh interval.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(300);
/// Default largest scrape body (after decompression): bounded memory per target.
pub const DEFAULT_BODY_SIZE_LIMIT: u64 = 64 << 20;

/// A configuration that cannot be used, naming the job and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scrape_configs: {0}")]
pub struct ConfigError(pub String);

/// One scrape job.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The `job` label of every target of the job; unique among jobs.
    pub job_name: String,
    /// How often each target is scraped. Default 1m.
    #[serde(default = "default_interval", with = "duration_text")]
    pub scrape_interval: Duration,
    /// Per-scrape timeout. Default 10s, or the interval when that is shorter; may not exceed
    /// the interval.
    #[serde(
        default,
        with = "optional_duration_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub scrape_timeout: Option<Duration>,
    /// Default `/metrics`.
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// Default and only supported value `http`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// On a clash between a scraped label and a target label, keep the scraped one (else it
    /// is renamed `exported_<name>`). Default false.
    #[serde(default)]
    pub honor_labels: bool,
    /// Use the timestamps the target exposes (else the scrape time). Default true.
    #[serde(default = "yes")]
    pub honor_timestamps: bool,
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Applied to each target's labels before scraping.
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    /// Applied to each scraped sample's labels.
    #[serde(default)]
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// Tenant the samples are written for. Default `default`.
    #[serde(default)]
    pub tenant: TenantId,
    /// Most samples (after metric relabelling) one scrape may produce; more fails the scrape.
    /// 0 = no limit.
    #[serde(default)]
    pub sample_limit: usize,
    /// Largest response body in bytes, after decompression (an integer, not Prometheus's
    /// size string). Default 64 MiB; 0 = the default.
    #[serde(default)]
    pub body_size_limit: u64,
}

/// Targets listed in the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` of each target.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels added to every target of the group.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Targets read from files in Prometheus's `file_sd` JSON format:
/// `[{"targets": ["host:port", …], "labels": {"name": "value", …}}, …]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// Paths ending in `.json`; the last path segment may contain `*` (any run of characters)
    /// and `?` (one character), e.g. `targets/*.json`.
    pub files: Vec<String>,
    /// How often the files are re-read. Default 5m.
    #[serde(default = "default_refresh", with = "duration_text")]
    pub refresh_interval: Duration,
}

fn default_interval() -> Duration {
    DEFAULT_SCRAPE_INTERVAL
}
fn default_refresh() -> Duration {
    DEFAULT_REFRESH_INTERVAL
}
fn default_metrics_path() -> String {
    "/metrics".into()
}
fn default_scheme() -> String {
    "http".into()
}
fn yes() -> bool {
    true
}

impl ScrapeConfig {
    /// A job with Prometheus's defaults scraping `targets`.
    pub fn new(job_name: impl Into<String>, targets: Vec<String>) -> Self {
        Self {
            job_name: job_name.into(),
            scrape_interval: DEFAULT_SCRAPE_INTERVAL,
            scrape_timeout: None,
            metrics_path: default_metrics_path(),
            scheme: default_scheme(),
            honor_labels: false,
            honor_timestamps: true,
            static_configs: vec![StaticConfig {
                targets,
                labels: BTreeMap::new(),
            }],
            file_sd_configs: Vec::new(),
            relabel_configs: Vec::new(),
            metric_relabel_configs: Vec::new(),
            tenant: TenantId::default_tenant(),
            sample_limit: 0,
            body_size_limit: 0,
        }
    }

    /// The timeout in force: the configured one, else 10s capped at the interval.
    pub fn effective_timeout(&self) -> Duration {
        self.scrape_timeout
            .unwrap_or(DEFAULT_SCRAPE_TIMEOUT.min(self.scrape_interval))
    }

    /// The body size limit in force.
    pub fn effective_body_size_limit(&self) -> u64 {
        if self.body_size_limit == 0 {
            DEFAULT_BODY_SIZE_LIMIT
        } else {
            self.body_size_limit
        }
    }

    /// Checks what serde cannot: intervals, the scheme, the path, label names, relabelling
    /// rules, file names.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let job = &self.job_name;
        let err = |msg: String| Err(ConfigError(format!("job {job:?}: {msg}")));
        if job.is_empty() {
            return Err(ConfigError("a job has an empty job_name".into()));
        }
        if self.scrape_interval.is_zero() {
            return err("scrape_interval must be positive".into());
        }
        let timeout = self.effective_timeout();
        if timeout.is_zero() {
            return err("scrape_timeout must be positive".into());
        }
        if timeout > self.scrape_interval {
            return err(format!(
                "scrape_timeout {} is greater than scrape_interval {}",
                humantime::format_duration(timeout),
                humantime::format_duration(self.scrape_interval)
            ));
        }
        if self.scheme != "http" {
            return err(format!(
                "scheme {:?} is not supported; only http is scraped",
                self.scheme
            ));
        }
        if !self.metrics_path.starts_with('/') {
            return err(format!(
                "metrics_path {:?} must start with '/'",
                self.metrics_path
            ));
        }
        for (gi, group) in self.static_configs.iter().enumerate() {
            for t in &group.targets {
                if t.is_empty() || t.contains('/') {
                    return err(format!(
                        "static_configs[{gi}]: target {t:?} is not host:port (no scheme, no path)"
                    ));
                }
            }
            for name in group.labels.keys() {
                if !is_valid_label_name(name) {
                    return err(format!("static_configs[{gi}]: invalid label name {name:?}"));
                }
            }
        }
        for (fi, fsd) in self.file_sd_configs.iter().enumerate() {
            if fsd.refresh_interval.is_zero() {
                return err(format!(
                    "file_sd_configs[{fi}]: refresh_interval must be positive"
                ));
            }
            for f in &fsd.files {
                if f.ends_with(".yml") || f.ends_with(".yaml") {
                    return err(format!(
                        "file_sd_configs[{fi}]: {f:?}: YAML file_sd files are not supported, use the JSON format"
                    ));
                }
                if !f.ends_with(".json") {
                    return err(format!("file_sd_configs[{fi}]: {f:?} must end in .json"));
                }
                if let Some(parent) = std::path::Path::new(f).parent()
                    && parent.to_string_lossy().contains(['*', '?'])
                {
                    return err(format!(
                        "file_sd_configs[{fi}]: {f:?}: only the last path segment may contain * or ?"
                    ));
                }
            }
        }
        for (name, rules) in [
            ("relabel_configs", &self.relabel_configs),
            ("metric_relabel_configs", &self.metric_relabel_configs),
        ] {
            for (ri, r) in rules.iter().enumerate() {
                if let Err(e) = r.validate() {
                    return err(format!("{name}[{ri}]: {e}"));
                }
            }
        }
        Ok(())
    }
}

/// Validates every job and checks that job names are unique.
pub fn validate_configs(configs: &[ScrapeConfig]) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for c in configs {
        c.validate()?;
        if !seen.insert(c.job_name.as_str()) {
            return Err(ConfigError(format!(
                "job_name {:?} is used by more than one job",
                c.job_name
            )));
        }
    }
    Ok(())
}

/// Durations as humantime strings (`"15s"`, `"1m30s"`).
mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?}: {e}")))
    }

    pub(super) fn serialize<S: Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*v).to_string())
    }
}

/// Optional durations as humantime strings.
mod optional_duration_text {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::duration_text::deserialize(d).map(Some)
    }

    pub(super) fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::duration_text::serialize(v, s),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::relabel::RelabelAction;
    use super::*;

    #[derive(Deserialize)]
    struct File {
        scrape_configs: Vec<ScrapeConfig>,
    }

    fn load(text: &str) -> Result<Vec<ScrapeConfig>, String> {
        let f: File = toml::from_str(text).map_err(|e| e.to_string())?;
        validate_configs(&f.scrape_configs).map_err(|e| e.to_string())?;
        Ok(f.scrape_configs)
    }

    #[test]
    fn toml_with_prometheus_names_and_defaults() {
        let c = load(
            r#"
            [[scrape_configs]]
            job_name = "node"
            scrape_interval = "1m30s"
            tenant = "platform"
            static_configs = [{ targets = ["127.0.0.1:9100"], labels = { zone = "az1" } }]
            file_sd_configs = [{ files = ["targets/*.json"] }]

            [[scrape_configs.metric_relabel_configs]]
            source_labels = ["__name__"]
            regex = "go_.*"
            action = "drop"

            [[scrape_configs]]
            job_name = "app"
            scrape_interval = "5s"
            honor_labels = true
            honor_timestamps = false
            metrics_path = "/m"
            sample_limit = 1000
            "#,
        )
        .unwrap();
        let node = &c[0];
        assert_eq!(node.scrape_interval, Duration::from_secs(90));
        assert_eq!(node.effective_timeout(), Duration::from_secs(10));
        assert_eq!(node.metrics_path, "/metrics");
        assert!(node.honor_timestamps && !node.honor_labels);
        assert_eq!(node.tenant.as_str(), "platform");
        assert_eq!(node.static_configs[0].labels["zone"], "az1");
        assert_eq!(
            node.file_sd_configs[0].refresh_interval,
            DEFAULT_REFRESH_INTERVAL
        );
        assert_eq!(node.metric_relabel_configs[0].action, RelabelAction::Drop);
        assert_eq!(node.effective_body_size_limit(), DEFAULT_BODY_SIZE_LIMIT);
        let app = &c[1];
        assert_eq!(
            app.effective_timeout(),
            Duration::from_secs(5),
            "capped at the interval"
        );
        assert!(app.honor_labels && !app.honor_timestamps);
        assert_eq!(app.tenant.as_str(), "default");
        assert_eq!(app.sample_limit, 1000);
    }

    #[test]
    fn bad_configurations_are_named() {
        let bad = |body: &str| {
            load(&format!("[[scrape_configs]]\njob_name = \"j\"\n{body}")).unwrap_err()
        };
        assert!(bad("scrape_interval = \"soon\"").contains("invalid duration \"soon\""));
        assert!(
            bad("scrape_interval = \"5s\"\nscrape_timeout = \"10s\"")
                .contains("job \"j\": scrape_timeout 10s is greater than scrape_interval 5s")
        );
        assert!(bad("scheme = \"https\"").contains("only http is scraped"));
        assert!(bad("metrics_path = \"metrics\"").contains("must start with '/'"));
        assert!(
            bad("static_configs = [{ targets = [\"http://h:1/x\"] }]").contains("is not host:port")
        );
        assert!(
            bad("static_configs = [{ targets = [\"h:1\"], labels = { \"a.b\" = \"x\" } }]")
                .contains("invalid label name \"a.b\"")
        );
        assert!(
            bad("file_sd_configs = [{ files = [\"t.yml\"] }]")
                .contains("YAML file_sd files are not supported")
        );
        assert!(
            bad("file_sd_configs = [{ files = [\"*/t.json\"] }]")
                .contains("only the last path segment")
        );
        assert!(bad("tenant = \"a/b\"").contains("illegal character '/'"));
        assert!(
            bad("relabel_configs = [{ action = \"hashmod\", target_label = \"x\" }]").contains(
                "relabel_configs[0]: relabel configuration for hashmod requires non-zero modulus"
            )
        );
        assert!(bad("scrape_intervall = \"1s\"").contains("unknown field"));
        let dup =
            load("[[scrape_configs]]\njob_name = \"a\"\n[[scrape_configs]]\njob_name = \"a\"\n")
                .unwrap_err();
        assert!(dup.contains("used by more than one job"), "{dup}");
    }

    #[test]
    fn round_trips_through_toml() {
        let mut c = ScrapeConfig::new("j", vec!["h:1".into()]);
        c.scrape_timeout = Some(Duration::from_secs(3));
        let text = toml::to_string(&File2 {
            scrape_configs: vec![c.clone()],
        })
        .unwrap();
        let back: File = toml::from_str(&text).unwrap();
        assert_eq!(back.scrape_configs, vec![c]);

        #[derive(Serialize)]
        struct File2 {
            scrape_configs: Vec<ScrapeConfig>,
        }
    }
}
