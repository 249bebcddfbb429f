//! The routing tree: which routes (receivers, grouping, timers) an alert goes to, as
//! Alertmanager's `dispatch/route.go` decides it.
//!
//! A route matches when its matchers do; it then tries its children in order and returns
//! the matching ones (stopping after the first that does not say `continue`), or itself
//! when none match. Children inherit the receiver, grouping and timers they do not set;
//! mute and active time intervals are a route's own.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::config::RouteConfig;
use super::matchers::Matchers;

/// Alertmanager's defaults for the root route.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// What a route does with the alerts it takes, after inheritance.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteOpts {
    pub receiver: String,
    pub group_by: BTreeSet<String>,
    /// `group_by: [...]`: every label groups.
    pub group_by_all: bool,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
}

/// One node of the built tree.
#[derive(Debug, Clone)]
pub struct Route {
    pub opts: RouteOpts,
    pub matchers: Matchers,
    pub continue_matching: bool,
    pub routes: Vec<Route>,
    key: String,
    /// Position in the tree (`0`, `0.2`, `0.2.1`), unique even when two siblings have
    /// the same matchers.
    id: String,
}

impl Route {
    /// Builds the tree from the configuration's root route.
    pub fn new(root: &RouteConfig) -> Route {
        let defaults = RouteOpts {
            receiver: String::new(),
            group_by: BTreeSet::new(),
            group_by_all: false,
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
        };
        Route::build(root, &defaults, None, "0".to_owned())
    }

    fn build(
        config: &RouteConfig,
        parent: &RouteOpts,
        parent_key: Option<&str>,
        id: String,
    ) -> Route {
        let mut opts = parent.clone();
        if let Some(receiver) = &config.receiver {
            opts.receiver = receiver.clone();
        }
        if let Some(group_by) = &config.group_by {
            opts.group_by = group_by.iter().cloned().collect();
            opts.group_by_all = config.group_by_all;
        }
        opts.group_wait = config.group_wait.unwrap_or(parent.group_wait);
        opts.group_interval = config.group_interval.unwrap_or(parent.group_interval);
        opts.repeat_interval = config.repeat_interval.unwrap_or(parent.repeat_interval);
        opts.mute_time_intervals = config.mute_time_intervals.clone();
        opts.active_time_intervals = config.active_time_intervals.clone();

        let matchers = config.matchers.clone().sorted();
        let key = match parent_key {
            None => matchers.to_string(),
            Some(parent) => format!("{parent}/{matchers}"),
        };
        let routes = config
            .routes
            .iter()
            .enumerate()
            .map(|(i, child)| Route::build(child, &opts, Some(&key), format!("{id}.{i}")))
            .collect();
        Route {
            opts,
            matchers,
            continue_matching: config.continue_matching,
            routes,
            key,
            id,
        }
    }

    /// The routes that take an alert with these labels, in tree order.
    pub fn match_labels(&self, labels: &BTreeMap<String, String>) -> Vec<&Route> {
        if !self.matchers.matches(labels) {
            return Vec::new();
        }
        let mut all = Vec::new();
        for child in &self.routes {
            let matched = child.match_labels(labels);
            let any = !matched.is_empty();
            all.extend(matched);
            if any && !child.continue_matching {
                break;
            }
        }
        if all.is_empty() {
            all.push(self);
        }
        all
    }

    /// The route's key as Alertmanager prints it: its ancestors' and its own matchers
    /// (`{}/{owner="team-A"}/{env="testing"}`); the first part of group keys.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The route's position in the tree, unique per route.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The labels an alert is grouped by on this route: all of them with `[...]`, else
    /// those of `group_by` it has.
    pub fn group_labels(&self, labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        labels
            .iter()
            .filter(|(k, v)| {
                !v.is_empty() && (self.opts.group_by_all || self.opts.group_by.contains(*k))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Every route of the tree, depth first.
    pub fn walk(&self) -> Vec<&Route> {
        let mut out = vec![self];
        for child in &self.routes {
            out.extend(child.walk());
        }
        out
    }
}

/// A label set as Prometheus's `model.LabelSet` prints it: `{a="1", b="2"}`.
pub fn label_set_string(labels: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", super::matchers::go_quote(v)))
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alertmanager::config::Config;

    fn dataset(path: &str) -> Option<std::path::PathBuf> {
        let relative = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/datasets/alerting")
            .join(path);
        let absolute = std::path::Path::new("/work/shared/datasets/alerting").join(path);
        [relative, absolute].into_iter().find(|p| p.exists())
    }

    /// The routing tables transcribed from upstream's `dispatch/route_test.go`: every
    /// case gets the expected receivers and route keys.
    #[test]
    fn upstream_routing_tables_give_the_expected_receivers_and_keys() {
        let Some(dir) = dataset("derived/alertmanager/route_test") else {
            eprintln!("no routing tables: skipped");
            return;
        };
        let mut cases_run = 0;
        for table in ["TestRouteMatch", "TestRouteMatchers"] {
            let config = std::fs::read_to_string(dir.join(format!("{table}.yml"))).unwrap();
            let config = Config::parse(&config).unwrap_or_else(|e| panic!("{table}: {e}"));
            let tree = Route::new(&config.route);
            let cases: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(dir.join(format!("{table}.cases.json"))).unwrap(),
            )
            .unwrap();
            for case in cases.as_array().unwrap() {
                let labels: BTreeMap<String, String> =
                    serde_json::from_value(case["input"].clone()).unwrap();
                let routes = tree.match_labels(&labels);
                let receivers: Vec<&str> =
                    routes.iter().map(|r| r.opts.receiver.as_str()).collect();
                let keys: Vec<&str> = routes.iter().map(|r| r.key()).collect();
                let want_receivers: Vec<&str> = case["receivers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                let want_keys: Vec<&str> = case["keys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                assert_eq!(receivers, want_receivers, "{table} {labels:?}");
                assert_eq!(keys, want_keys, "{table} {labels:?}");
                cases_run += 1;
            }
        }
        assert_eq!(cases_run, 16);
    }

    #[test]
    fn children_inherit_what_they_do_not_set_but_not_time_intervals() {
        let config = Config::parse(
            "route:\n  receiver: root\n  group_by: [alertname]\n  group_wait: 10s\n  routes:\n    - match: {team: a}\n      receiver: a\n      group_interval: 1m\n      mute_time_intervals: [night]\n      routes:\n        - match: {severity: page}\n          group_by: ['...']\nreceivers:\n  - name: root\n  - name: a\ntime_intervals:\n  - name: night\n",
        )
        .unwrap();
        let tree = Route::new(&config.route);
        let labels: BTreeMap<String, String> =
            [("team", "a"), ("severity", "page"), ("alertname", "X")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let routes = tree.match_labels(&labels);
        assert_eq!(routes.len(), 1);
        let leaf = routes[0];
        assert_eq!(leaf.opts.receiver, "a");
        assert_eq!(leaf.opts.group_wait, Duration::from_secs(10));
        assert_eq!(leaf.opts.group_interval, Duration::from_secs(60));
        assert_eq!(leaf.opts.repeat_interval, DEFAULT_REPEAT_INTERVAL);
        assert!(leaf.opts.mute_time_intervals.is_empty());
        assert_eq!(tree.routes[0].opts.mute_time_intervals, ["night"]);
        assert_eq!(leaf.group_labels(&labels), labels);
        assert_eq!(leaf.id(), "0.0.0");
        let other: BTreeMap<String, String> = [("alertname".to_owned(), "Y".to_owned())].into();
        let routes = tree.match_labels(&other);
        assert_eq!(routes[0].opts.receiver, "root");
        assert_eq!(
            label_set_string(&routes[0].group_labels(&other)),
            r#"{alertname="Y"}"#
        );
    }
}
