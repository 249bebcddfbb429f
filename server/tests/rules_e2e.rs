//! Rule files evaluated by the real binary: a recording rule's series used by the next rule
//! of its group at the same evaluation, an alert pending then firing with its annotations
//! expanded, `ALERTS` in the TSDB, `/api/v1/rules` and `/api/v1/alerts` in Prometheus's
//! shapes; a bad rule file stops the start naming file, line, group and rule.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{PATIENCE, Server, now_ns};
use serde_json::Value;

const RULES: &str = r#"groups:
  - name: always
    interval: 1s
    rules:
      - record: two
        expr: vector(2)
      - alert: AlwaysFiring
        expr: two > 1
        for: 2s
        labels:
          severity: page
        annotations:
          summary: "value {{ $value }} on {{ $externalLabels.cluster }}"
"#;

/// Writes `rules` to `rules.yml` and a configuration loading it (plus `extra` lines of
/// `[alerting]`) into `dir`; the rule file's and the configuration's paths.
fn rule_config(dir: &Path, rules: &str, extra: &str) -> (PathBuf, PathBuf) {
    let file = dir.join("rules.yml");
    std::fs::write(&file, rules).unwrap();
    let config = dir.join("sightline.toml");
    std::fs::write(
        &config,
        format!(
            "[alerting]\nrule_files = [{:?}]\n{extra}",
            file.display().to_string()
        ),
    )
    .unwrap();
    (file, config)
}

fn get(server: &Server, path: &str) -> Value {
    server
        .client()
        .get(server.url(path))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn rules_record_and_alert_with_prometheus_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = rule_config(
        dir.path(),
        RULES,
        "external_labels = { cluster = \"c1\" }\n",
    );
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );

    // Pending first, firing from the first evaluation at least 2 s after it became active.
    let deadline = Instant::now() + PATIENCE;
    let mut seen_pending = false;
    let alert = loop {
        let v = get(&server, "/api/v1/alerts");
        let alerts = v["data"]["alerts"].as_array().unwrap().clone();
        if let Some(a) = alerts.first() {
            match a["state"].as_str() {
                Some("pending") => seen_pending = true,
                Some("firing") => break a.clone(),
                _ => {}
            }
        }
        assert!(Instant::now() < deadline, "never firing: {v}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(seen_pending, "the alert was never seen pending");
    assert_eq!(alert["labels"]["alertname"], "AlwaysFiring");
    assert_eq!(alert["labels"]["severity"], "page");
    assert_eq!(alert["annotations"]["summary"], "value 2 on c1");
    assert_eq!(alert["value"], "2e+00");

    let rules = get(&server, "/api/v1/rules");
    let group = &rules["data"]["groups"][0];
    assert_eq!(group["name"], "always");
    assert_eq!(group["interval"], 1.0);
    assert_eq!(group["rules"][0]["type"], "recording");
    assert_eq!(group["rules"][0]["health"], "ok");
    assert_eq!(group["rules"][1]["type"], "alerting");
    assert_eq!(group["rules"][1]["state"], "firing");
    assert_eq!(group["rules"][1]["duration"], 2.0);
    let only_alerts = get(&server, "/api/v1/rules?type=alert");
    assert_eq!(
        only_alerts["data"]["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The outputs are series like any other.
    let t = now_ns() as f64 / 1e9;
    let query = |q: &str| {
        get(
            &server,
            &format!("/api/v1/query?query={}&time={t}", urlencode(q)),
        )["data"]["result"]
            .clone()
    };
    let firing = query(r#"ALERTS{alertname="AlwaysFiring",alertstate="firing"}"#);
    assert_eq!(firing.as_array().unwrap().len(), 1, "{firing}");
    assert_eq!(firing[0]["metric"]["severity"], "page");
    let two = query("two");
    assert_eq!(two[0]["value"][1], "2");
    let for_state = query("ALERTS_FOR_STATE");
    assert_eq!(for_state.as_array().unwrap().len(), 1, "{for_state}");
    assert_eq!(server.terminate(), Some(0));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_bad_rule_file_stops_the_start_naming_where() {
    let dir = tempfile::tempdir().unwrap();
    let (rules, config) = rule_config(
        dir.path(),
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: rate(x)\n",
        "",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["serve", "--config", config.to_str().unwrap(), "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--otlp-grpc-addr",
            "127.0.0.1:0",
        ])
        .args([
            "--otlp-http-addr",
            "127.0.0.1:0",
            "--syslog-addr",
            "127.0.0.1:0",
        ])
        .env_remove("SIGHTLINE_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:4: group \"g\", rule 1, \"A\": could not parse expression",
            rules.display()
        )),
        "{stderr}"
    );
}

/// `for` state survives a restart: the alert keeps the time it became active (restored
/// from `ALERTS_FOR_STATE`, as Prometheus does), so it fires `for` after that time, not
/// `for` after the restart.
#[test]
fn pending_time_survives_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = rule_config(
        dir.path(),
        "groups:\n  - name: slow\n    interval: 1s\n    rules:\n      - alert: SlowBurn\n        expr: vector(1)\n        for: 1m\n",
        "",
    );
    let data = dir.path().join("data");
    let args = ["--config", config.to_str().unwrap()];
    let active_at = |server: &Server| {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let v = get(server, "/api/v1/alerts");
            if let Some(a) = v["data"]["alerts"].as_array().unwrap().first() {
                return a["activeAt"].as_str().unwrap().to_string();
            }
            assert!(Instant::now() < deadline, "no alert: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let server = Server::start_with(&data, &args);
    let first = active_at(&server);
    // A few evaluations later, so that the restart is clearly later than the first one.
    std::thread::sleep(Duration::from_millis(2500));
    server.kill9();
    let server = Server::start_with(&data, &args);
    // The first evaluation after the start makes it pending at its own time; the restore
    // right after it puts back the stored one.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = active_at(&server);
        if now == first {
            break;
        }
        assert!(Instant::now() < deadline, "active since {now}, was {first}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `POST /-/reload` and SIGHUP read the rule files again: a bad set is refused naming the
/// problem and the running rules kept (their alerts too); a good one replaces them, rules
/// that did not change keeping their alerts.
#[test]
fn reload_keeps_running_rules_on_a_bad_file_and_their_state_on_a_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let one = "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: A\n        expr: vector(1)\n        for: 1h\n";
    let (rules, config) = rule_config(dir.path(), one, "");
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let active_at = |server: &Server| -> Option<String> {
        let v = get(server, "/api/v1/alerts");
        v["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["labels"]["alertname"] == "A")
            .map(|a| a["activeAt"].as_str().unwrap().to_string())
    };
    let deadline = Instant::now() + PATIENCE;
    let first = loop {
        if let Some(t) = active_at(&server) {
            break t;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    };
    let names = |server: &Server| -> Vec<String> {
        get(server, "/api/v1/rules")["data"]["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    let reload = |server: &Server| {
        let r = server
            .client()
            .post(server.url("/-/reload"))
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };

    std::fs::write(
        &rules,
        format!("{one}      - record: r\n        expr: rate(x)\n"),
    )
    .unwrap();
    let (status, body) = reload(&server);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("could not parse expression"), "{body}");
    assert_eq!(names(&server), ["A"]);
    assert_eq!(active_at(&server).as_deref(), Some(first.as_str()));

    std::fs::write(
        &rules,
        format!("{one}      - record: r\n        expr: vector(2)\n"),
    )
    .unwrap();
    let (status, body) = reload(&server);
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&server), ["A", "r"]);
    assert_eq!(active_at(&server).as_deref(), Some(first.as_str()));

    // SIGHUP does the same.
    std::fs::write(
        &rules,
        format!("{one}      - record: s\n        expr: vector(3)\n"),
    )
    .unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + PATIENCE;
    while names(&server) != ["A", "s"] {
        assert!(Instant::now() < deadline, "{:?}", names(&server));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(active_at(&server).as_deref(), Some(first.as_str()));
    assert_eq!(server.terminate(), Some(0));
}

/// `[alerting] slo_files`: SLO specs compiled into rules at load, evaluated like any group.
#[test]
fn slo_specs_are_loaded_as_rule_groups() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("slo.yml");
    std::fs::write(
        &spec,
        "slos:\n  - name: api\n    objective: 99.5\n    sli:\n      good: sum(rate(ok_total[{{window}}]))\n      total: sum(rate(all_total[{{window}}]))\n",
    )
    .unwrap();
    let config = dir.path().join("sightline.toml");
    std::fs::write(
        &config,
        format!(
            "[alerting]\nslo_files = [{:?}]\nevaluation_interval = \"1s\"\n",
            spec.display().to_string()
        ),
    )
    .unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        let v = get(&server, "/api/v1/rules");
        let group = &v["data"]["groups"][0];
        if group["lastEvaluation"] != "0001-01-01T00:00:00Z" {
            assert_eq!(group["name"], "slo-api");
            assert_eq!(group["rules"].as_array().unwrap().len(), 11);
            assert_eq!(group["rules"][7]["name"], "slo:objective:ratio");
            assert_eq!(group["rules"][7]["health"], "ok");
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(server.terminate(), Some(0));
}

/// A rule file in Loki's ruler format: LogQL metric queries over the `default` tenant's
/// logs, alerting like PromQL rules (`ALERTS` in the TSDB, `/api/v1/alerts`); a log query
/// where a metric query belongs is refused at start, naming the rule.
#[test]
fn logql_rules_alert_on_log_error_rates() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("loki-rules.yml");
    std::fs::write(
        &rules,
        r#"groups:
  - name: logs
    interval: 1s
    rules:
      - record: app:errors:count1m
        expr: sum by (app) (count_over_time({app="api"} |= "error" [1m]))
      - alert: ApiErrors
        expr: sum by (app) (count_over_time({app="api"} |= "error" [1m])) / sum by (app) (count_over_time({app="api"} [1m])) > 0.2
        labels:
          severity: warning
        annotations:
          summary: "{{ $labels.app }}: {{ humanizePercentage $value }} of lines are errors"
"#,
    )
    .unwrap();
    let config = dir.path().join("sightline.toml");
    std::fs::write(
        &config,
        format!(
            "[alerting]\nlogql_rule_files = [{:?}]\n",
            rules.display().to_string()
        ),
    )
    .unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let now = now_ns();
    let lines: Vec<Value> = (0..10)
        .map(|i| {
            let line = if i < 4 {
                "GET /pay error: timeout"
            } else {
                "GET /pay ok"
            };
            serde_json::json!([(now - 1_000_000_000 + i * 1_000_000).to_string(), line])
        })
        .collect();
    let body = serde_json::json!({"streams": [{"stream": {"app": "api"}, "values": lines}]});
    let (code, text) = common::loki_push_json(&server, "default", &body);
    assert_eq!(code, 204, "{text}");

    let deadline = Instant::now() + PATIENCE;
    let alert = loop {
        let v = get(&server, "/api/v1/alerts");
        if let Some(a) = v["data"]["alerts"].as_array().unwrap().first() {
            break a.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no alert from the LogQL rule: {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(alert["labels"]["alertname"], "ApiErrors");
    assert_eq!(alert["labels"]["app"], "api");
    assert_eq!(
        alert["annotations"]["summary"],
        "api: 40% of lines are errors"
    );
    // The recorded series is in the TSDB.
    let v = get(&server, "/api/v1/query?query=app:errors:count1m");
    assert_eq!(v["data"]["result"][0]["value"][1], "4", "{v}");
    drop(server);

    std::fs::write(
        &rules,
        "groups:\n  - name: bad\n    rules:\n      - alert: NotAMetric\n        expr: '{app=\"api\"} |= \"error\"'\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["serve", "--rule-packs", "false", "--data-dir"])
        .arg(dir.path().join("data2"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "--http-addr",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("NotAMetric") && stderr.contains("metric query"),
        "{stderr}"
    );
}
