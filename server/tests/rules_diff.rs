//! Differential test of rule evaluation against the real peer: the same rule file evaluated
//! by Debian's Prometheus and by Sightline, every second, over the same data remote-written
//! to both as it happens, gives the same `ALERTS` series — the same series (alert name,
//! labels, `alertstate`) present over the same stretches of time, allowing one evaluation
//! interval of phase (the two evaluate at different offsets within the second).
//!
//! The data exercises `for` (pending then firing), alerts that fire at once, resolution,
//! flapping that never outlasts `for`, `keep_firing_for` bridging gaps, a recording rule
//! used by a later alert of the same group, and labels and annotations templated from the
//! value (a label that changes makes a new alert, pending again). Transitions are at least
//! two intervals apart where `for` is involved, so that one interval of phase cannot decide
//! whether an alert fires.
//!
//! Needs `prometheus` on the PATH (`scripts/install-test-deps.sh`); built only with
//! `--features interop`.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{PATIENCE, Server, free_port, now_ns};
use serde_json::Value;

const RULES: &str = r#"groups:
  - name: diff
    interval: 1s
    rules:
      - alert: HighLoad
        expr: load > 5
        for: 5s
        labels:
          severity: page
        annotations:
          summary: "load {{ $value }} on {{ $labels.instance }}"
      - alert: HighLoadNow
        expr: load > 5
      - alert: HighLoadSticky
        expr: load > 5
        keep_firing_for: 5s
      - record: load:sum
        expr: sum(load{instance!="d"})
      - alert: TotalHigh
        expr: load:sum > 25
        for: 2s
        labels:
          level: "{{ if gt $value 35.0 }}high{{ else }}medium{{ end }}"
"#;

/// How long data is sent, in seconds.
const RUN_SECONDS: f64 = 36.0;

/// Quiet seconds first: Prometheus restores `for` state from its second evaluation after
/// start (and writes no `ALERTS` for alerts it is restoring), so transitions wait.
const WARM_UP: f64 = 5.0;

/// The value of each instance `s` seconds into the run (`None`: not sent).
fn script(instance: &str, s: f64) -> Option<f64> {
    if s < WARM_UP {
        return Some(0.0);
    }
    let s = s - WARM_UP;
    Some(match instance {
        "a" => 10.0,
        "b" if s < 10.0 => 0.0,
        "b" => 10.0,
        "c" if s < 16.0 => 10.0,
        "c" => 0.0,
        // Flaps every 3 s: pending never lasts the 5 s of `for`; keep_firing_for bridges.
        "d" if (s / 3.0) as i64 % 2 == 0 => 10.0,
        "d" => 0.0,
        "e" if (8.0..20.0).contains(&s) => 10.0,
        "e" => 0.0,
        _ => return None,
    })
}

struct Prometheus {
    child: Child,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_body(t_ms: i64, s: f64) -> Vec<u8> {
    let series: Vec<common::Series<'_>> = ["a", "b", "c", "d", "e"]
        .iter()
        .filter_map(|i| script(i, s).map(|v| (i, v)))
        .map(|(instance, value)| {
            (
                vec![
                    ("__name__", "load"),
                    ("instance", *instance),
                    ("job", "node"),
                ],
                vec![(t_ms, value)],
            )
        })
        .collect();
    common::write_request(&series)
}

/// Every `ALERTS` series's sample times (ms) in the last `window` seconds before `at`.
fn alerts_series(
    client: &reqwest::blocking::Client,
    base: &str,
    at: f64,
    window: u64,
) -> BTreeMap<String, Vec<i64>> {
    let r = client
        .get(format!("{base}/api/v1/query"))
        .query(&[
            ("query", format!("ALERTS[{window}s]")),
            ("time", at.to_string()),
        ])
        .send()
        .unwrap();
    let v: Value = r.json().unwrap();
    assert_eq!(v["status"], "success", "{base}: {v}");
    let mut out = BTreeMap::new();
    for series in v["data"]["result"].as_array().unwrap() {
        let key = series["metric"].to_string();
        let times: Vec<i64> = series["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_f64().unwrap() * 1000.0).round() as i64)
            .collect();
        out.insert(key, times);
    }
    out
}

/// Contiguous stretches of presence: (first, last) sample time, split where a gap exceeds
/// 1.5 evaluation intervals.
fn runs(times: &[i64]) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for &t in times {
        match out.last_mut() {
            Some((_, last)) if t - *last <= 1500 => *last = t,
            _ => out.push((t, t)),
        }
    }
    out
}

#[test]
fn alerts_series_equal_prometheus_over_the_same_remote_written_data() {
    let have = Command::new("sh")
        .args(["-c", "command -v prometheus"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        eprintln!("prometheus not installed: skipped (scripts/install-test-deps.sh)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();

    let port = free_port();
    let prom_config = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files: [{:?}]\n",
            rules.display().to_string()
        ),
    )
    .unwrap();
    let prometheus = Prometheus {
        child: Command::new("prometheus")
            .arg(format!("--config.file={}", prom_config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("prom").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        url: format!("http://127.0.0.1:{port}"),
    };
    let config = dir.path().join("sightline.toml");
    std::fs::write(
        &config,
        format!(
            "[alerting]\nrule_files = [{:?}]\nevaluation_interval = \"1s\"\n",
            rules.display().to_string()
        ),
    )
    .unwrap();
    let sightline = Server::start_with(
        &dir.path().join("sightline"),
        &["--config", config.to_str().unwrap()],
    );
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + PATIENCE;
    while !client
        .get(format!("{}/-/ready", prometheus.url))
        .send()
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "prometheus never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }

    let targets = [
        format!("{}/api/v1/write", prometheus.url),
        sightline.url("/api/v1/write"),
    ];
    // Transitions at half past the second: Sightline evaluates on whole seconds, so none
    // falls on one of its evaluations (Prometheus's offset is its own).
    let start_ns = {
        let now = now_ns();
        let half = now - now.rem_euclid(1_000_000_000) + 500_000_000;
        let start = if half > now {
            half
        } else {
            half + 1_000_000_000
        };
        std::thread::sleep(Duration::from_nanos((start - now) as u64));
        start
    };
    loop {
        let t_ns = now_ns();
        let s = (t_ns - start_ns) as f64 / 1e9;
        if s > RUN_SECONDS {
            break;
        }
        let body = write_body(t_ns / 1_000_000, s);
        for url in &targets {
            let r = client
                .post(url)
                .header("Content-Type", "application/x-protobuf")
                .header("Content-Encoding", "snappy")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                .body(body.clone())
                .send()
                .unwrap();
            assert!(r.status().is_success(), "{url}: {}", r.text().unwrap());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // Let both finish their last evaluation, then compare the whole run.
    std::thread::sleep(Duration::from_secs(4));
    let at = now_ns() as f64 / 1e9;
    let window = RUN_SECONDS as u64 + 10;
    let theirs = alerts_series(&client, &prometheus.url, at, window);
    let ours = alerts_series(
        sightline.client(),
        sightline.url("").trim_end_matches('/'),
        at,
        window,
    );

    // The newest evaluations may not be queryable yet on one side: compare up to a cut
    // well before the query.
    let cut = ((at - 3.0) * 1000.0) as i64;
    let before_cut = |m: BTreeMap<String, Vec<i64>>| -> BTreeMap<String, Vec<i64>> {
        m.into_iter()
            .map(|(k, v)| (k, v.into_iter().filter(|t| *t <= cut).collect::<Vec<_>>()))
            .filter(|(_, v)| !v.is_empty())
            .collect()
    };
    let (theirs, ours) = (before_cut(theirs), before_cut(ours));
    let keys = |m: &BTreeMap<String, Vec<i64>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&ours), keys(&theirs), "different ALERTS series");
    assert!(
        theirs.len() >= 12,
        "too few series to compare: {:?}",
        keys(&theirs)
    );
    // The series start at Prometheus's first evaluation; ours may start up to one
    // interval earlier or later, and so may every transition.
    let phase = 1_200;
    for (key, times) in &theirs {
        let (a, b) = (runs(times), runs(&ours[key]));
        assert_eq!(
            a.len(),
            b.len(),
            "{key}: Prometheus present over {a:?}, Sightline over {b:?}"
        );
        for ((s1, e1), (s2, e2)) in a.iter().zip(&b) {
            assert!(
                (s1 - s2).abs() <= phase && (e1 - e2).abs() <= phase,
                "{key}: Prometheus present over {a:?}, Sightline over {b:?} (ms)"
            );
        }
    }
}
