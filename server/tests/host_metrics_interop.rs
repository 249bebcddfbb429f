//! The agent's host metrics against the real program (issue 17): Debian's
//! `prometheus-node-exporter` runs on the same host with the same collectors, and for every
//! series we export the same name and label set must be in its output, with a value that
//! agrees with its readings taken just before and just after ours.
//!
//! Tolerances: a counter must lie between node_exporter's two readings (it only grows),
//! widened by 0.011 for the two decimals of `/proc/stat`'s USER_HZ ticks; a gauge between
//! them widened by the larger of a share of its value and an absolute slack per family —
//! 5 % or 256 MiB for memory, 1 % or 256 MiB for file systems (builds write beside the
//! test), 0.5 for load averages (they move every 5 s), 64 processes for the process
//! counts, 5 s for the clock, 5 % or 1 for the rest.
//!
//! Needs `prometheus-node-exporter` on the PATH (`scripts/install-test-deps.sh`); built only
//! with `--features interop`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::free_port;
use sightline_collector::host::{self, Collector, HostPaths, Kind};
use sightline_collector::scrape::exposition::{Format, parse};

struct NodeExporter {
    child: Child,
    url: String,
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_node_exporter() -> NodeExporter {
    let port = free_port();
    let mut args = vec![
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--collector.disable-defaults".to_string(),
    ];
    args.extend(
        Collector::ALL
            .iter()
            .map(|c| format!("--collector.{}", c.name())),
    );
    let child = Command::new("prometheus-node-exporter")
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus-node-exporter (scripts/install-test-deps.sh installs it)");
    let exporter = NodeExporter {
        child,
        url: format!("http://127.0.0.1:{port}/metrics"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::blocking::get(&exporter.url).is_err() {
        assert!(Instant::now() < deadline, "node_exporter did not answer");
        std::thread::sleep(Duration::from_millis(100));
    }
    exporter
}

/// Series (name and sorted labels) → value.
type Readings = BTreeMap<(String, Vec<(String, String)>), f64>;

fn readings(text: &str) -> Readings {
    parse(Format::PrometheusText, text)
        .expect("a valid exposition")
        .into_iter()
        .map(|s| {
            let mut labels: Vec<(String, String)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            labels.sort();
            ((s.name.to_string(), labels), s.value)
        })
        .collect()
}

/// What node_exporter says about itself, not about the host.
fn is_exporter_self(name: &str) -> bool {
    name.starts_with("node_scrape_collector_")
        || name.starts_with("node_exporter_")
        || !name.starts_with("node_")
}

fn slack(name: &str, kind: Kind, value: f64) -> f64 {
    const MIB: f64 = 1024.0 * 1024.0;
    if kind == Kind::Counter {
        return 0.011;
    }
    let (share, absolute) = if name.starts_with("node_memory_") {
        (0.05, 256.0 * MIB)
    } else if name.starts_with("node_filesystem_") {
        (0.01, 256.0 * MIB)
    } else if name.starts_with("node_load") {
        (0.0, 0.5)
    } else if name.starts_with("node_procs_") {
        (0.0, 64.0)
    } else if name == "node_time_seconds" {
        (0.0, 5.0)
    } else {
        (0.05, 1.0)
    };
    (share * value.abs()).max(absolute)
}

#[test]
fn host_metrics_match_node_exporter_on_the_same_host() {
    let exporter = start_node_exporter();
    let scrape = || {
        reqwest::blocking::get(&exporter.url)
            .and_then(|r| r.text())
            .expect("scrape node_exporter")
    };
    let before_text = scrape();
    let (families, errors) = host::collect(&HostPaths::default(), &Collector::ALL);
    let after_text = scrape();
    assert!(errors.is_empty(), "collectors failed: {errors:?}");
    let (before, after) = (readings(&before_text), readings(&after_text));
    // Our exposition goes through the same parser: what we serve is what is compared.
    let ours = readings(&host::render(&families));
    let kinds: BTreeMap<&str, Kind> = families.iter().map(|f| (f.name.as_str(), f.kind)).collect();

    let mut problems = Vec::new();
    for (series, &value) in &ours {
        let (Some(&a), Some(&b)) = (before.get(series), after.get(series)) else {
            problems.push(format!("{series:?}: not in node_exporter's output"));
            continue;
        };
        let kind = kinds[series.0.as_str()];
        let (lo, hi) = (a.min(b), a.max(b));
        let slack = slack(&series.0, kind, hi);
        if value < lo - slack || value > hi + slack {
            problems.push(format!(
                "{series:?}: ours {value}, node_exporter {a} then {b} (slack {slack})"
            ));
        }
    }

    let theirs: BTreeSet<&str> = before
        .keys()
        .map(|(name, _)| name.as_str())
        .filter(|n| !is_exporter_self(n))
        .collect();
    let our_names: BTreeSet<&str> = ours.keys().map(|(name, _)| name.as_str()).collect();
    let missing: Vec<&&str> = theirs.difference(&our_names).collect();
    let covered = theirs.intersection(&our_names).count();
    eprintln!(
        "coverage: {covered} of node_exporter's {} metric names for the collectors {:?}; series compared {}; not exported: {missing:?}",
        theirs.len(),
        Collector::ALL.iter().map(|c| c.name()).collect::<Vec<_>>(),
        ours.len(),
    );
    assert!(
        problems.is_empty(),
        "{} disagreements:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        covered * 10 >= theirs.len() * 9,
        "at least 90 % of node_exporter's names for these collectors: {covered} of {}",
        theirs.len()
    );
}
