//! Targets of a job: static groups and `file_sd` groups, turned into scrapeable targets with
//! their labels the way Prometheus does it (`PopulateLabels`):
//!
//! 1. the group's labels, `__address__` = the target, and — unless the group sets them —
//!    `job`, `__scheme__`, `__metrics_path__`, `__scrape_interval__`, `__scrape_timeout__`;
//!    file groups also get `__meta_filepath`;
//! 2. `relabel_configs` (a dropped set is a target not scraped);
//! 3. `instance` = `__address__` unless set; the URL is
//!    `__scheme__://__address__` + `__metrics_path__`, with `__param_<name>` labels as query
//!    parameters;
//! 4. every label starting with `__` is removed, and empty ones.
//!
//! Files are re-read every `refresh_interval` (polling, no file watching). A file that can no
//! longer be read or parsed keeps its previous targets (and the error is logged); a file that
//! is gone, or no longer matches the pattern, loses them.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sightline_model::Labels;

use super::config::{FileSdConfig, ScrapeConfig};
use super::relabel::{relabel, set};

/// Targets sharing labels, as in a static config or a `file_sd` file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A target ready to scrape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// `http://host:port/metrics?…`
    pub url: String,
    /// Final target labels (`job`, `instance`, static and relabelled ones; no `__` labels).
    pub labels: Labels,
}

impl Target {
    /// Identity of the target within its job: URL and labels.
    pub fn key(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }
}

/// Builds the target for `address` in a group with `group_labels`; `Ok(None)` when relabelling
/// drops it.
pub fn populate_target(
    cfg: &ScrapeConfig,
    group_labels: &BTreeMap<String, String>,
    address: &str,
) -> Result<Option<Target>, String> {
    let mut labels: Vec<(String, String)> = group_labels
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    set(&mut labels, "__address__", address.to_string());
    let defaults = [
        ("job", cfg.job_name.clone()),
        ("__scheme__", cfg.scheme.clone()),
        ("__metrics_path__", cfg.metrics_path.clone()),
        (
            "__scrape_interval__",
            humantime::format_duration(cfg.scrape_interval).to_string(),
        ),
        (
            "__scrape_timeout__",
            humantime::format_duration(cfg.effective_timeout()).to_string(),
        ),
    ];
    for (name, value) in defaults {
        if !labels.iter().any(|(n, _)| n == name) {
            set(&mut labels, name, value);
        }
    }
    if !relabel(&mut labels, &cfg.relabel_configs) {
        return Ok(None);
    }
    let get = |labels: &[(String, String)], name: &str| {
        labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let addr = get(&labels, "__address__");
    if addr.is_empty() {
        return Err("no __address__ label after relabelling".into());
    }
    if addr.contains('/') {
        return Err(format!("{addr:?} is not a valid host:port"));
    }
    if get(&labels, "instance").is_empty() {
        set(&mut labels, "instance", addr.clone());
    }
    let mut url = format!(
        "{}://{}{}",
        get(&labels, "__scheme__"),
        addr,
        get(&labels, "__metrics_path__")
    );
    let mut params: Vec<(&str, &str)> = labels
        .iter()
        .filter_map(|(n, v)| n.strip_prefix("__param_").map(|p| (p, v.as_str())))
        .collect();
    params.sort();
    for (i, (k, v)) in params.iter().enumerate() {
        url.push(if i == 0 && !url.contains('?') {
            '?'
        } else {
            '&'
        });
        url.push_str(&percent_encode(k));
        url.push('=');
        url.push_str(&percent_encode(v));
    }
    labels.retain(|(n, v)| !n.starts_with("__") && !v.is_empty());
    Ok(Some(Target {
        url,
        labels: Labels::from_pairs(labels),
    }))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `file_sd` state of one job: the last good groups of every file.
#[derive(Debug, Default)]
pub struct FileDiscovery {
    configs: Vec<FileSdConfig>,
    last_good: HashMap<PathBuf, Vec<TargetGroup>>,
}

impl FileDiscovery {
    pub fn new(configs: Vec<FileSdConfig>) -> Self {
        Self {
            configs,
            last_good: HashMap::new(),
        }
    }

    /// How often to re-read the files: the shortest refresh interval; `None` without files.
    pub fn refresh_interval(&self) -> Option<Duration> {
        self.configs.iter().map(|c| c.refresh_interval).min()
    }

    /// Re-reads every file; returns each group with its `__meta_filepath`. Blocking I/O.
    pub fn refresh(&mut self, job: &str) -> Vec<TargetGroup> {
        let mut current: HashMap<PathBuf, Vec<TargetGroup>> = HashMap::new();
        for cfg in &self.configs {
            for pattern in &cfg.files {
                for path in expand(pattern) {
                    if current.contains_key(&path) {
                        continue;
                    }
                    match read_groups(&path) {
                        Ok(groups) => {
                            current.insert(path, groups);
                        }
                        Err(e) => {
                            tracing::warn!(job, file = %path.display(), error = %e, "file_sd: cannot use the file, keeping its previous targets");
                            if let Some(prev) = self.last_good.get(&path) {
                                current.insert(path, prev.clone());
                            }
                        }
                    }
                }
            }
        }
        self.last_good = current;
        let mut paths: Vec<&PathBuf> = self.last_good.keys().collect();
        paths.sort();
        let mut out = Vec::new();
        for path in paths {
            for g in &self.last_good[path] {
                let mut g = g.clone();
                g.labels
                    .entry("__meta_filepath".into())
                    .or_insert_with(|| path.display().to_string());
                out.push(g);
            }
        }
        out
    }
}

/// Reads one `file_sd` JSON file.
fn read_groups(path: &Path) -> Result<Vec<TargetGroup>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "invalid file_sd JSON at line {}, column {}: {e}",
            e.line(),
            e.column()
        )
    })
}

/// The existing files a pattern names: itself, or for a last segment with `*`/`?`, the
/// matching entries of its directory, sorted.
fn expand(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let file_pattern = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !file_pattern.contains(['*', '?']) {
        return if path.is_file() {
            vec![path.to_path_buf()]
        } else {
            Vec::new()
        };
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter(|e| wildcard_match(&file_pattern, &e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Shell-style match of a whole name: `*` any run of characters, `?` one character.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// All targets of a job (static groups, then file groups), without duplicates. Targets that
/// cannot be built are logged and skipped.
pub fn targets(cfg: &ScrapeConfig, file_groups: &[TargetGroup]) -> Vec<Target> {
    let static_groups = cfg.static_configs.iter().map(|s| TargetGroup {
        targets: s.targets.clone(),
        labels: s.labels.clone(),
    });
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for group in static_groups.chain(file_groups.iter().cloned()) {
        for addr in &group.targets {
            match populate_target(cfg, &group.labels, addr) {
                Ok(Some(t)) => {
                    if seen.insert(t.key()) {
                        out.push(t);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(job = %cfg.job_name, target = %addr, error = %e, "target skipped");
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::config::StaticConfig;
    use super::super::relabel::RelabelConfig;
    use super::*;

    fn cfg(relabel: &str) -> ScrapeConfig {
        let mut c = ScrapeConfig::new("node", vec![]);
        if !relabel.is_empty() {
            #[derive(Deserialize)]
            struct R {
                r: Vec<RelabelConfig>,
            }
            c.relabel_configs = toml::from_str::<R>(relabel).unwrap().r;
        }
        c
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn default_target_labels_and_url() {
        let t = populate_target(&cfg(""), &labels(&[("zone", "az1")]), "10.0.0.1:9100")
            .unwrap()
            .unwrap();
        assert_eq!(t.url, "http://10.0.0.1:9100/metrics");
        assert_eq!(
            t.labels.to_canonical(),
            r#"{instance="10.0.0.1:9100", job="node", zone="az1"}"#
        );
    }

    #[test]
    fn relabelling_changes_address_path_params_and_drops() {
        let c = cfg(r#"
            [[r]]
            source_labels = ["__address__"]
            regex = "(.*):9100"
            target_label = "__address__"
            replacement = "$1:9200"
            [[r]]
            target_label = "__metrics_path__"
            replacement = "/probe"
            [[r]]
            target_label = "__param_module"
            replacement = "http 2xx"
            [[r]]
            source_labels = ["__address__"]
            target_label = "host"
            regex = "(.*):.*"
            [[r]]
            source_labels = ["zone"]
            regex = "az9"
            action = "drop"
        "#);
        let t = populate_target(&c, &labels(&[("zone", "az1")]), "h:9100")
            .unwrap()
            .unwrap();
        assert_eq!(t.url, "http://h:9200/probe?module=http%202xx");
        assert_eq!(
            t.labels.to_canonical(),
            r#"{host="h", instance="h:9200", job="node", zone="az1"}"#
        );
        assert_eq!(
            populate_target(&c, &labels(&[("zone", "az9")]), "h:9100"),
            Ok(None)
        );
        // A group label wins over the default job; instance can be set by relabelling.
        let c = cfg("[[r]]\ntarget_label = \"instance\"\nreplacement = \"db-1\"");
        let t = populate_target(&c, &labels(&[("job", "custom")]), "h:1")
            .unwrap()
            .unwrap();
        assert_eq!(
            t.labels.to_canonical(),
            r#"{instance="db-1", job="custom"}"#
        );
        let c = cfg("[[r]]\ntarget_label = \"__address__\"\nreplacement = \"\"");
        assert!(
            populate_target(&c, &labels(&[]), "h:1")
                .unwrap_err()
                .contains("no __address__")
        );
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*.json", "a.json"));
        assert!(wildcard_match("tg_*.json", "tg_web.json"));
        assert!(!wildcard_match("tg_*.json", "tg_web.yml"));
        assert!(wildcard_match("t?.json", "t1.json"));
        assert!(!wildcard_match("t?.json", "t12.json"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*b*c", "aXbYc"));
    }

    #[test]
    fn file_sd_reads_json_keeps_last_good_and_forgets_removed_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("tg_a.json");
        let b = dir.path().join("tg_b.json");
        std::fs::write(
            &a,
            r#"[{"targets": ["h1:1", "h2:1"], "labels": {"env": "prod"}}]"#,
        )
        .unwrap();
        std::fs::write(&b, r#"[{"targets": ["h3:1"]}]"#).unwrap();
        std::fs::write(dir.path().join("other.txt"), "x").unwrap();
        let pattern = dir.path().join("tg_*.json").display().to_string();
        let mut fd = FileDiscovery::new(vec![FileSdConfig {
            files: vec![pattern],
            refresh_interval: Duration::from_secs(30),
        }]);
        assert_eq!(fd.refresh_interval(), Some(Duration::from_secs(30)));
        let groups = fd.refresh("node");
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].labels["__meta_filepath"], a.display().to_string());
        let mut c = cfg("");
        c.static_configs = vec![StaticConfig {
            targets: vec!["h1:1".into()],
            labels: labels(&[("env", "prod")]),
        }];
        let t = targets(&c, &groups);
        // h1:1 appears statically and in the file with the same labels: one target.
        let urls: Vec<&str> = t.iter().map(|t| t.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "http://h1:1/metrics",
                "http://h2:1/metrics",
                "http://h3:1/metrics"
            ]
        );

        // A broken file keeps its targets; a removed one loses them.
        std::fs::write(&a, "[{").unwrap();
        std::fs::remove_file(&b).unwrap();
        let groups = fd.refresh("node");
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].targets, ["h1:1", "h2:1"]);
        assert!(
            read_groups(&a)
                .unwrap_err()
                .starts_with("invalid file_sd JSON at line 1")
        );
    }
}
