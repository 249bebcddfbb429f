//! Alertmanager's configuration file (`alertmanager.yml`), parsed and checked as
//! Alertmanager 0.34 checks it, so a file that `amtool check-config` accepts is accepted
//! here and one it refuses is refused — with the field, the line where the YAML parser
//! knows it, and the reason.
//!
//! Receivers may hold any of Alertmanager's integrations; Sightline delivers `email_configs`
//! and `webhook_configs`, checks the others' structure ([`super::integrations`]) and
//! accepts them with a warning naming the integration, which is then not delivered.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

use super::email::{EmailConfig, SmtpGlobal};
use super::integrations;
use super::matchers::{MatchOp, Matcher, Matchers, parse_matchers};
use super::timeinterval::NamedTimeInterval;
use crate::rulefmt::parse_duration;

/// Alertmanager's default for alerts posted without an end (`global.resolve_timeout`).
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(300);

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub resolve_timeout: Duration,
    /// The whole `global:` section, for the integrations' defaults.
    pub global: Mapping,
    pub route: RouteConfig,
    pub inhibit_rules: Vec<InhibitRuleConfig>,
    pub receivers: Vec<ReceiverConfig>,
    /// Template file globs (`templates:`).
    pub templates: Vec<String>,
    /// `time_intervals` and the deprecated `mute_time_intervals`, by name.
    pub time_intervals: BTreeMap<String, NamedTimeInterval>,
    /// What is accepted but not acted on (integrations not delivered, `tracing`, …).
    pub warnings: Vec<String>,
}

/// One node of the route tree, as written (inheritance is resolved by the router).
#[derive(Debug, Clone, Default)]
pub struct RouteConfig {
    pub receiver: Option<String>,
    /// `None` when not set (then inherited); `group_by: [...]` sets `group_by_all`.
    pub group_by: Option<Vec<String>>,
    pub group_by_all: bool,
    /// `match`, `match_re` and `matchers` together.
    pub matchers: Matchers,
    pub continue_matching: bool,
    pub group_wait: Option<Duration>,
    pub group_interval: Option<Duration>,
    pub repeat_interval: Option<Duration>,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
    pub routes: Vec<RouteConfig>,
}

/// An inhibition rule: alerts matching `target` are muted while an alert matching
/// `source` fires with the same values of the `equal` labels.
#[derive(Debug, Clone)]
pub struct InhibitRuleConfig {
    pub source: Matchers,
    pub target: Matchers,
    pub equal: Vec<String>,
}

/// A receiver: its name and the integrations Sightline delivers to.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    pub name: String,
    /// `email_configs` entries, resolved against `global`'s `smtp_*` defaults.
    pub email_configs: Vec<EmailConfig>,
    pub webhook_configs: Vec<WebhookConfig>,
    /// Integrations present but not delivered (`slack_configs`, …).
    pub skipped: Vec<String>,
}

/// `webhook_configs` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    pub send_resolved: bool,
    pub url: WebhookUrl,
    /// At most this many alerts per message; 0 for all.
    pub max_alerts: u64,
    /// The whole request's timeout; `None` for the default.
    pub timeout: Option<Duration>,
    pub http_config: Option<Value>,
}

/// Where a webhook posts: the URL, or a file holding it (read at each send, as
/// Alertmanager reads `url_file`).
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookUrl {
    Url(String),
    File(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    global: Option<Mapping>,
    route: Option<RawRoute>,
    inhibit_rules: Option<Vec<RawInhibitRule>>,
    receivers: Option<Vec<Mapping>>,
    templates: Option<Vec<String>>,
    time_intervals: Option<Vec<NamedTimeInterval>>,
    mute_time_intervals: Option<Vec<NamedTimeInterval>>,
    tracing: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    receiver: Option<String>,
    group_by: Option<Vec<String>>,
    #[serde(rename = "match")]
    match_eq: Option<BTreeMap<String, Option<String>>>,
    match_re: Option<BTreeMap<String, Option<String>>>,
    matchers: Option<Vec<String>>,
    #[serde(rename = "continue")]
    continue_matching: Option<bool>,
    group_wait: Option<String>,
    group_interval: Option<String>,
    repeat_interval: Option<String>,
    mute_time_intervals: Option<Vec<String>>,
    active_time_intervals: Option<Vec<String>>,
    routes: Option<Vec<RawRoute>>,
    /// Alertmanager 0.34's route labels (templates); accepted, not yet used.
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInhibitRule {
    source_match: Option<BTreeMap<String, Option<String>>>,
    source_match_re: Option<BTreeMap<String, Option<String>>>,
    source_matchers: Option<Vec<String>>,
    target_match: Option<BTreeMap<String, Option<String>>>,
    target_match_re: Option<BTreeMap<String, Option<String>>>,
    target_matchers: Option<Vec<String>>,
    equal: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    send_resolved: Option<bool>,
    url: Option<String>,
    url_file: Option<String>,
    max_alerts: Option<u64>,
    timeout: Option<String>,
    http_config: Option<Value>,
}

/// `global:` keys typed here; the email integration owns `smtp_*` and
/// [`integrations::check_global`] the rest.
const GLOBAL_OWN: [&str; 2] = ["resolve_timeout", "http_config"];

impl Config {
    /// Parses and checks a configuration. The error names the field (and line when the
    /// YAML parser knows it) and the reason.
    pub fn parse(text: &str) -> Result<Config, String> {
        let raw: RawConfig = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        let mut warnings = Vec::new();
        if raw.tracing.is_some() {
            warnings.push("tracing: accepted, not used (Sightline does not export traces of its notifications)".to_owned());
        }

        let global = raw.global.unwrap_or_default();
        let mut resolve_timeout = DEFAULT_RESOLVE_TIMEOUT;
        let mut others = Mapping::new();
        for (key, value) in &global {
            let name = key.as_str().unwrap_or_default();
            match name {
                "resolve_timeout" => {
                    resolve_timeout = duration_field("global.resolve_timeout", value)?
                        .ok_or("global.resolve_timeout: must be set when present")?;
                }
                "http_config" => {
                    if !value.is_mapping() && !value.is_null() {
                        return Err("global.http_config: must be a mapping".to_owned());
                    }
                }
                n if n.starts_with("smtp_") => {}
                _ => {
                    others.insert(key.clone(), value.clone());
                }
            }
        }
        debug_assert!(GLOBAL_OWN.contains(&"http_config"));
        integrations::check_global(&others)?;
        let smtp: SmtpGlobal = serde_yaml_ng::from_value(Value::Mapping(global.clone()))
            .map_err(|e| format!("global: {e}"))?;
        smtp.validate()?;

        let mut time_intervals = BTreeMap::new();
        for (section, list) in [
            ("time_intervals", raw.time_intervals),
            ("mute_time_intervals", raw.mute_time_intervals),
        ] {
            for interval in list.unwrap_or_default() {
                if interval.name.is_empty() {
                    return Err(format!("{section}: missing name"));
                }
                if time_intervals.contains_key(&interval.name) {
                    return Err(format!(
                        "{section}: time interval {:?} is not unique",
                        interval.name
                    ));
                }
                time_intervals.insert(interval.name.clone(), interval);
            }
        }

        let mut receivers = Vec::new();
        let mut names = BTreeSet::new();
        for (i, mapping) in raw.receivers.unwrap_or_default().into_iter().enumerate() {
            let receiver = parse_receiver(i, &mapping, &global, &smtp, &mut warnings)?;
            if !names.insert(receiver.name.clone()) {
                return Err(format!(
                    "receivers: notification config name {:?} is not unique",
                    receiver.name
                ));
            }
            receivers.push(receiver);
        }

        // A webhook without its own http_config uses the global one, as in Alertmanager.
        if let Some(Value::Mapping(http)) = global.get("http_config") {
            for key in http.keys().filter_map(Value::as_str) {
                if !APPLIED_HTTP_CONFIG.contains(&key) {
                    warnings.push(format!(
                        "global.http_config.{key}: accepted but not applied (webhooks apply basic_auth, authorization and bearer_token)"
                    ));
                }
            }
            for hook in receivers
                .iter_mut()
                .flat_map(|r| r.webhook_configs.iter_mut())
            {
                if hook.http_config.is_none() {
                    hook.http_config = Some(Value::Mapping(http.clone()));
                }
            }
        }

        let raw_route = raw.route.ok_or("route: no route provided in config")?;
        let route = parse_route(raw_route, "route", &mut warnings)?;
        if route.receiver.as_deref().unwrap_or("").is_empty() {
            return Err("route: root route must specify a default receiver".to_owned());
        }
        if !route.matchers.is_empty() {
            return Err("route: root route must not have any matchers".to_owned());
        }
        if !route.mute_time_intervals.is_empty() {
            return Err("route: root route must not have any mute time intervals".to_owned());
        }
        if !route.active_time_intervals.is_empty() {
            return Err("route: root route must not have any active time intervals".to_owned());
        }
        check_route_references(&route, "route", &names, &time_intervals)?;

        let mut inhibit_rules = Vec::new();
        for (i, rule) in raw
            .inhibit_rules
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let at = format!("inhibit_rules[{i}]");
            let source = build_matchers(
                &format!("{at}.source"),
                rule.source_match,
                rule.source_match_re,
                rule.source_matchers,
            )?;
            let target = build_matchers(
                &format!("{at}.target"),
                rule.target_match,
                rule.target_match_re,
                rule.target_matchers,
            )?;
            let equal = rule.equal.unwrap_or_default();
            for label in &equal {
                check_label_name(&format!("{at}.equal"), label)?;
            }
            inhibit_rules.push(InhibitRuleConfig {
                source,
                target,
                equal,
            });
        }

        Ok(Config {
            resolve_timeout,
            global,
            route,
            inhibit_rules,
            receivers,
            templates: raw.templates.unwrap_or_default(),
            time_intervals,
            warnings,
        })
    }

    /// The receiver of that name.
    pub fn receiver(&self, name: &str) -> Option<&ReceiverConfig> {
        self.receivers.iter().find(|r| r.name == name)
    }
}

fn parse_receiver(
    index: usize,
    mapping: &Mapping,
    global: &Mapping,
    smtp: &SmtpGlobal,
    warnings: &mut Vec<String>,
) -> Result<ReceiverConfig, String> {
    let name = match mapping.get("name") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        _ => return Err(format!("receivers[{index}]: missing name in receiver")),
    };
    let mut receiver = ReceiverConfig {
        name: name.clone(),
        email_configs: Vec::new(),
        webhook_configs: Vec::new(),
        skipped: Vec::new(),
    };
    for (key, value) in mapping {
        let key = key.as_str().unwrap_or_default();
        let at = format!("receivers[{index}] ({name}).{key}");
        if key == "name" {
            continue;
        }
        if !integrations::is_receiver_integration(key) {
            return Err(format!(
                "receivers[{index}] ({name}): unknown field {key:?}"
            ));
        }
        let entries = match value {
            Value::Sequence(entries) => entries.clone(),
            Value::Null => Vec::new(),
            _ => return Err(format!("{at}: must be a list")),
        };
        match key {
            "email_configs" => {
                for (i, entry) in entries.into_iter().enumerate() {
                    let mut email: EmailConfig =
                        serde_yaml_ng::from_value(entry).map_err(|e| format!("{at}[{i}]: {e}"))?;
                    email.resolve(smtp, &name)?;
                    receiver.email_configs.push(email);
                }
            }
            "webhook_configs" => {
                for (i, entry) in entries.into_iter().enumerate() {
                    receiver.webhook_configs.push(parse_webhook(
                        &format!("{at}[{i}]"),
                        entry,
                        warnings,
                    )?);
                }
            }
            other => {
                for entry in &entries {
                    integrations::check_entry(&name, other, entry, global)?;
                }
                if !entries.is_empty() {
                    warnings.push(format!(
                        "receiver {name:?}: {other} accepted but not delivered (Sightline delivers email_configs and webhook_configs)"
                    ));
                    receiver.skipped.push(other.to_owned());
                }
            }
        }
    }
    Ok(receiver)
}

/// The `http_config` keys webhook delivery applies; the others are accepted (their
/// structure is Prometheus's common HTTP client configuration) with a warning.
const APPLIED_HTTP_CONFIG: [&str; 6] = [
    "basic_auth",
    "authorization",
    "bearer_token",
    "bearer_token_file",
    "follow_redirects",
    "enable_http2",
];

fn parse_webhook(
    at: &str,
    entry: Value,
    warnings: &mut Vec<String>,
) -> Result<WebhookConfig, String> {
    let raw: RawWebhook = serde_yaml_ng::from_value(entry).map_err(|e| format!("{at}: {e}"))?;
    let url = match (raw.url, raw.url_file) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{at}: at most one of url & url_file must be configured"
            ));
        }
        (None, None) => return Err(format!("{at}: one of url or url_file must be configured")),
        (Some(url), None) => {
            let ok = (url.starts_with("http://") || url.starts_with("https://"))
                && url.len() > "https://".len();
            if !ok {
                return Err(format!(
                    "{at}.url: {url:?} is not an absolute http or https URL"
                ));
            }
            WebhookUrl::Url(url)
        }
        (None, Some(file)) => WebhookUrl::File(file),
    };
    let timeout = match raw.timeout {
        Some(t) => Some(parse_duration(&t).ok_or(format!("{at}.timeout: bad duration {t:?}"))?),
        None => None,
    };
    if let Some(Value::Mapping(http)) = &raw.http_config {
        for key in http.keys().filter_map(Value::as_str) {
            if !APPLIED_HTTP_CONFIG.contains(&key) {
                warnings.push(format!(
                    "{at}.http_config.{key}: accepted but not applied (webhooks apply basic_auth, authorization and bearer_token)"
                ));
            }
        }
    }
    Ok(WebhookConfig {
        send_resolved: raw.send_resolved.unwrap_or(true),
        url,
        max_alerts: raw.max_alerts.unwrap_or(0),
        timeout: timeout.filter(|t| !t.is_zero()),
        http_config: raw.http_config,
    })
}

fn parse_route(raw: RawRoute, at: &str, warnings: &mut Vec<String>) -> Result<RouteConfig, String> {
    let matchers = build_matchers(at, raw.match_eq, raw.match_re, raw.matchers)?;
    let (group_by, group_by_all) = match raw.group_by {
        None => (None, false),
        Some(labels) => {
            let all = labels.iter().any(|l| l == "...");
            if all && labels.len() > 1 {
                return Err(format!(
                    "{at}.group_by: cannot have wildcard group_by (`...`) and other labels at the same time"
                ));
            }
            let mut seen = BTreeSet::new();
            for label in labels.iter().filter(|l| *l != "...") {
                check_label_name(&format!("{at}.group_by"), label)?;
                if !seen.insert(label) {
                    return Err(format!("{at}.group_by: duplicated label {label:?}"));
                }
            }
            (Some(if all { Vec::new() } else { labels }), all)
        }
    };
    let duration = |field: &str, value: Option<String>| -> Result<Option<Duration>, String> {
        match value {
            None => Ok(None),
            Some(text) => parse_duration(&text)
                .map(Some)
                .ok_or(format!("{at}.{field}: bad duration {text:?}")),
        }
    };
    let group_wait = duration("group_wait", raw.group_wait)?;
    let group_interval = duration("group_interval", raw.group_interval)?;
    let repeat_interval = duration("repeat_interval", raw.repeat_interval)?;
    if group_interval.is_some_and(|d| d.is_zero()) {
        return Err(format!(
            "{at}.group_interval: group_interval cannot be zero"
        ));
    }
    if repeat_interval.is_some_and(|d| d.is_zero()) {
        return Err(format!(
            "{at}.repeat_interval: repeat_interval cannot be zero"
        ));
    }
    if raw.labels.is_some() {
        warnings.push(format!(
            "{at}.labels: route labels are accepted but not yet added to notifications"
        ));
    }
    let mut routes = Vec::new();
    for (i, child) in raw.routes.unwrap_or_default().into_iter().enumerate() {
        routes.push(parse_route(child, &format!("{at}.routes[{i}]"), warnings)?);
    }
    Ok(RouteConfig {
        receiver: raw.receiver.filter(|r| !r.is_empty()),
        group_by,
        group_by_all,
        matchers,
        continue_matching: raw.continue_matching.unwrap_or(false),
        group_wait,
        group_interval,
        repeat_interval,
        mute_time_intervals: raw.mute_time_intervals.unwrap_or_default(),
        active_time_intervals: raw.active_time_intervals.unwrap_or_default(),
        routes,
    })
}

/// Every receiver and time interval a route names must be defined.
fn check_route_references(
    route: &RouteConfig,
    at: &str,
    receivers: &BTreeSet<String>,
    intervals: &BTreeMap<String, NamedTimeInterval>,
) -> Result<(), String> {
    if let Some(receiver) = &route.receiver
        && !receivers.contains(receiver)
    {
        return Err(format!(
            "{at}: undefined receiver {receiver:?} used in route"
        ));
    }
    for name in route
        .mute_time_intervals
        .iter()
        .chain(&route.active_time_intervals)
    {
        if !intervals.contains_key(name) {
            return Err(format!(
                "{at}: undefined time interval {name:?} used in route"
            ));
        }
    }
    for (i, child) in route.routes.iter().enumerate() {
        check_route_references(child, &format!("{at}.routes[{i}]"), receivers, intervals)?;
    }
    Ok(())
}

/// Builds one matcher set from the legacy `match` (equality) and `match_re` (anchored
/// regex) maps and the `matchers` strings, in that order.
fn build_matchers(
    at: &str,
    match_eq: Option<BTreeMap<String, Option<String>>>,
    match_re: Option<BTreeMap<String, Option<String>>>,
    strings: Option<Vec<String>>,
) -> Result<Matchers, String> {
    let mut out = Vec::new();
    for (name, value) in match_eq.unwrap_or_default() {
        check_label_name(&format!("{at} match"), &name)?;
        // Go reads a null into a string map as "".
        out.push(Matcher::new(
            &name,
            MatchOp::Equal,
            &value.unwrap_or_default(),
        )?);
    }
    for (name, value) in match_re.unwrap_or_default() {
        check_label_name(&format!("{at} match_re"), &name)?;
        let value = value.ok_or(format!(
            "{at} match_re: {name}: empty regular expression (null)"
        ))?;
        // As Alertmanager's config.Regexp: the anchored text is the matcher's value.
        let anchored = format!("^(?:{value})$");
        out.push(
            Matcher::new(&name, MatchOp::Regex, &anchored)
                .map_err(|e| format!("{at} match_re: {name}: {e}"))?,
        );
    }
    for (i, text) in strings.unwrap_or_default().iter().enumerate() {
        let set = parse_matchers(text).map_err(|e| format!("{at} matchers[{i}]: {e}"))?;
        out.extend(set.0);
    }
    Ok(Matchers(out))
}

fn check_label_name(at: &str, name: &str) -> Result<(), String> {
    // Alertmanager 0.34 validates names as UTF-8 (common/model's default scheme).
    if name.is_empty() {
        return Err(format!("{at}: empty label name"));
    }
    Ok(())
}

fn duration_field(at: &str, value: &Value) -> Result<Option<Duration>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => parse_duration(text)
            .map(Some)
            .ok_or(format!("{at}: bad duration {text:?}")),
        other => Err(format!("{at}: expected a duration, found {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "route:\n  receiver: a\nreceivers:\n  - name: a\n";

    #[test]
    fn a_minimal_configuration_gets_alertmanagers_defaults() {
        let config = Config::parse(MINIMAL).unwrap();
        assert_eq!(config.resolve_timeout, DEFAULT_RESOLVE_TIMEOUT);
        assert_eq!(config.route.receiver.as_deref(), Some("a"));
        assert!(config.warnings.is_empty());
    }

    #[test]
    fn structural_mistakes_are_refused_naming_the_field() {
        for (text, wanted) in [
            (
                "route:\n  receiver: a\n  colour: red\nreceivers:\n  - name: a\n",
                "unknown field `colour`",
            ),
            ("receivers:\n  - name: a\n", "no route"),
            (
                "route:\n  group_by: [x]\nreceivers:\n  - name: a\n",
                "default receiver",
            ),
            (
                "route:\n  receiver: b\nreceivers:\n  - name: a\n",
                "undefined receiver \"b\"",
            ),
            (
                "route:\n  receiver: a\n  match:\n    x: y\nreceivers:\n  - name: a\n",
                "must not have any matchers",
            ),
            (
                "route:\n  receiver: a\nreceivers:\n  - name: a\n  - name: a\n",
                "not unique",
            ),
            (
                "route:\n  receiver: a\n  group_by: ['...', x]\nreceivers:\n  - name: a\n",
                "wildcard",
            ),
            (
                "route:\n  receiver: a\n  group_by: [x, x]\nreceivers:\n  - name: a\n",
                "duplicated label",
            ),
            (
                "route:\n  receiver: a\n  routes:\n    - matchers: ['a=~\"(\"']\nreceivers:\n  - name: a\n",
                "routes[0] matchers[0]",
            ),
            (
                "route:\n  receiver: a\n  routes:\n    - mute_time_intervals: [night]\nreceivers:\n  - name: a\n",
                "undefined time interval",
            ),
            (
                "route:\n  receiver: a\n  group_interval: 0s\nreceivers:\n  - name: a\n",
                "cannot be zero",
            ),
            (
                "route:\n  receiver: a\nreceivers:\n  - name: a\n    webhook_configs:\n      - send_resolved: true\n",
                "one of url or url_file",
            ),
            (
                "route:\n  receiver: a\nreceivers:\n  - name: a\n    webhook_configs:\n      - url: x\n",
                "absolute",
            ),
            (
                "route:\n  receiver: a\nreceivers:\n  - name: a\n    carrier_pigeon_configs: []\n",
                "unknown field \"carrier_pigeon_configs\"",
            ),
            (
                "route:\n  receiver: a\nreceivers:\n  - name: a\ninhibit_rules:\n  - source_match_re:\n      x:\n",
                "null",
            ),
        ] {
            let err = Config::parse(text).unwrap_err();
            assert!(err.contains(wanted), "wanted {wanted:?} in {err:?}");
        }
    }

    /// Every Alertmanager configuration of the shared conformance set: accepted or refused
    /// as upstream's own tests expect (`MANIFEST.md`).
    #[test]
    fn upstream_configurations_are_accepted_or_refused_as_upstream_expects() {
        let root = [
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/alerting"),
            std::path::PathBuf::from("/work/shared/datasets/alerting"),
        ]
        .into_iter()
        .find(|p| p.join("MANIFEST.md").exists());
        let Some(root) = root else {
            eprintln!("no conformance set: skipped");
            return;
        };
        let manifest = std::fs::read_to_string(root.join("MANIFEST.md")).unwrap();
        let mut checked = 0;
        for line in manifest.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() < 4 || !cells[2].starts_with("AM ") || !cells[2].contains("config") {
                continue;
            }
            let path = cells[1].trim_matches('`');
            let expected_good = match cells[3] {
                "good" => true,
                "bad" => false,
                _ => continue,
            };
            let text = std::fs::read_to_string(root.join(path)).unwrap();
            let outcome = Config::parse(&text);
            assert_eq!(
                outcome.is_ok(),
                expected_good,
                "{path}: expected {}, got {:?}",
                cells[3],
                outcome.err()
            );
            checked += 1;
        }
        assert!(checked >= 35, "only {checked} configurations checked");
    }

    #[test]
    fn webhook_http_settings_that_are_not_applied_are_named_in_a_warning() {
        let config = Config::parse(
            "route:\n  receiver: a\nreceivers:\n  - name: a\n    webhook_configs:\n      - url: http://127.0.0.1:9/\n        http_config:\n          proxy_url: http://proxy:3128\n          basic_auth: {username: u, password: p}\n",
        )
        .unwrap();
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
        assert!(config.warnings[0].contains("http_config.proxy_url"));
        let inherited = Config::parse(
            "global:\n  http_config:\n    authorization: {credentials: t}\nroute:\n  receiver: a\nreceivers:\n  - name: a\n    webhook_configs:\n      - url: http://127.0.0.1:9/\n",
        )
        .unwrap();
        assert!(inherited.warnings.is_empty());
        assert!(
            inherited.receivers[0].webhook_configs[0]
                .http_config
                .is_some()
        );
    }

    #[test]
    fn legacy_match_re_is_anchored_into_the_matchers_value() {
        let config = Config::parse(
            "route:\n  receiver: a\n  routes:\n    - match_re:\n        owner: team-(B|C)\n      match:\n        env: prod\nreceivers:\n  - name: a\n",
        )
        .unwrap();
        assert_eq!(
            config.route.routes[0].matchers.to_string(),
            r#"{env="prod",owner=~"^(?:team-(B|C))$"}"#
        );
    }
}
