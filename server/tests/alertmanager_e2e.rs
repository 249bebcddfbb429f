//! The alert manager in the real binary: alerts posted on Alertmanager's API v2 grouped,
//! routed and delivered to webhooks with Alertmanager's payload; silences muting; state
//! (alerts, silences, notification log) surviving `kill -9` without a second notification;
//! rule alerts delivered; bad requests refused with reasons.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::webhook::WebhookSink;
use common::{PATIENCE, Server};
use serde_json::{Value, json};

/// Writes an Alertmanager configuration and a server configuration using it (plus `extra`
/// lines of `[alerting]`); returns the server configuration's path.
fn configure(dir: &Path, alertmanager_yml: &str, extra: &str) -> PathBuf {
    let am = dir.join("alertmanager.yml");
    std::fs::write(&am, alertmanager_yml).unwrap();
    let config = dir.join("sightline.toml");
    std::fs::write(
        &config,
        format!(
            "[alerting]\nalertmanager_config = {:?}\n{extra}",
            am.display().to_string()
        ),
    )
    .unwrap();
    config
}

fn am_config(sink: &WebhookSink) -> String {
    format!(
        r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: team
    webhook_configs:
      - url: {}
"#,
        sink.url("/team")
    )
}

fn start(dir: &Path, config: &Path) -> Server {
    Server::start_with(&dir.join("data"), &["--config", config.to_str().unwrap()])
}

fn post(server: &Server, path: &str, body: &Value) -> (u16, Value) {
    let r = server
        .client()
        .post(server.url(path))
        .json(body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
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

fn rfc3339(offset_secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(offset_secs)).to_rfc3339()
}

/// Waits until the sink holds at least `n` bodies; returns them.
fn wait_for(sink: &WebhookSink, n: usize) -> Vec<(String, Value)> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = sink.received();
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "only {} notifications: {got:?}",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn alert_summary(body: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["labels"]["instance"].as_str().unwrap_or("").to_owned(),
                a["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn posted_alerts_are_grouped_and_delivered_with_alertmanagers_payload() {
    let dir = tempfile::tempdir().unwrap();
    let sink = WebhookSink::start();
    let config = configure(
        dir.path(),
        &am_config(&sink),
        "external_url = \"http://sightline.example\"\n",
    );
    let server = start(dir.path(), &config);

    let alerts = json!([
        {"labels": {"alertname": "Down", "instance": "a"}, "annotations": {"summary": "a is down"}},
        {"labels": {"alertname": "Down", "instance": "b"}},
        {"labels": {"alertname": "Slow", "instance": "a"}},
    ]);
    assert_eq!(post(&server, "/api/v2/alerts", &alerts).0, 200);
    let got = wait_for(&sink, 2);
    let down = got
        .iter()
        .find(|(_, b)| b["groupLabels"]["alertname"] == "Down")
        .expect("a notification for the Down group");
    let (path, body) = down;
    assert_eq!(path, "/team");
    assert_eq!(body["version"], "4");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["receiver"], "team");
    assert_eq!(body["groupKey"], "{}:{alertname=\"Down\"}");
    assert_eq!(body["externalURL"], "http://sightline.example");
    assert_eq!(body["commonLabels"]["alertname"], "Down");
    assert_eq!(
        alert_summary(body),
        [("a".into(), "firing".into()), ("b".into(), "firing".into())]
    );
    assert_eq!(body["alerts"][0]["annotations"]["summary"], "a is down");
    assert_eq!(body["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");

    // b resolves: the next notification of the group carries it as resolved.
    let resolved = json!([{"labels": {"alertname": "Down", "instance": "b"},
        "startsAt": rfc3339(-60), "endsAt": rfc3339(0)}]);
    assert_eq!(post(&server, "/api/v2/alerts", &resolved).0, 200);
    let got = wait_for(&sink, 3);
    let (_, last) = got.last().unwrap();
    assert_eq!(last["groupLabels"]["alertname"], "Down");
    assert_eq!(
        alert_summary(last),
        [
            ("a".into(), "firing".into()),
            ("b".into(), "resolved".into())
        ]
    );

    // The API lists the unresolved alerts and the groups.
    let listed = get(&server, "/api/v2/alerts");
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["status"]["state"], "active");
    assert_eq!(listed[0]["receivers"][0]["name"], "team");
    let groups = get(&server, "/api/v2/alerts/groups");
    assert_eq!(groups.as_array().unwrap().len(), 2);
    assert_eq!(get(&server, "/api/v2/receivers"), json!([{"name": "team"}]));
    let status = get(&server, "/api/v2/status");
    assert_eq!(status["cluster"]["status"], "disabled");
    assert!(
        status["config"]["original"]
            .as_str()
            .unwrap()
            .contains("webhook_configs")
    );

    // Delivery is visible in /metrics.
    let metrics = server
        .client()
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("sightline_alertmanager_notifications_total{integration=\"webhook\"} 3"),
        "{metrics}"
    );
}

#[test]
fn silences_mute_and_state_survives_kill_9_without_a_second_notification() {
    let dir = tempfile::tempdir().unwrap();
    let sink = WebhookSink::start();
    let config = configure(dir.path(), &am_config(&sink), "");
    let server = start(dir.path(), &config);

    let silence = json!({
        "matchers": [{"name": "instance", "value": "b", "isRegex": false, "isEqual": true}],
        "startsAt": rfc3339(0), "endsAt": rfc3339(3600),
        "createdBy": "ops", "comment": "maintenance"
    });
    let (code, body) = post(&server, "/api/v2/silences", &silence);
    assert_eq!(code, 200, "{body}");
    let id = body["silenceID"].as_str().unwrap().to_owned();

    let alerts = json!([
        {"labels": {"alertname": "Down", "instance": "a"}},
        {"labels": {"alertname": "Down", "instance": "b"}},
    ]);
    assert_eq!(post(&server, "/api/v2/alerts", &alerts).0, 200);
    let got = wait_for(&sink, 1);
    assert_eq!(alert_summary(&got[0].1), [("a".into(), "firing".into())]);
    let listed = get(&server, "/api/v2/alerts?silenced=false");
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let all = get(&server, "/api/v2/alerts");
    let b = all
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["instance"] == "b")
        .unwrap();
    assert_eq!(b["status"]["state"], "suppressed");
    assert_eq!(b["status"]["silencedBy"][0], id.as_str());

    // kill -9: the silence, the alerts and the notification log come back; the group is
    // not notified again (nothing changed, repeat_interval is an hour).
    server.kill9();
    let server = start(dir.path(), &config);
    let silences = get(&server, "/api/v2/silences");
    assert_eq!(silences[0]["id"], id.as_str());
    assert_eq!(silences[0]["status"]["state"], "active");
    assert_eq!(get(&server, "/api/v2/alerts").as_array().unwrap().len(), 2);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(sink.received().len(), 1, "notified again after the restart");

    // Expiring the silence lets b through at the next flush.
    let r = server
        .client()
        .delete(server.url(&format!("/api/v2/silence/{id}")))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let got = wait_for(&sink, 2);
    assert_eq!(
        alert_summary(&got[1].1),
        [("a".into(), "firing".into()), ("b".into(), "firing".into())]
    );
    assert_eq!(
        get(&server, &format!("/api/v2/silence/{id}"))["status"]["state"],
        "expired"
    );
}

#[test]
fn bad_requests_are_refused_with_reasons_and_good_alerts_in_the_batch_kept() {
    let dir = tempfile::tempdir().unwrap();
    let sink = WebhookSink::start();
    let config = configure(dir.path(), &am_config(&sink), "");
    let server = start(dir.path(), &config);

    let (code, body) = post(
        &server,
        "/api/v2/alerts",
        &json!([{"labels": {}}, {"labels": {"alertname": "Kept"}}]),
    );
    assert_eq!(code, 400);
    assert!(
        body.as_str().unwrap().contains("at least one label pair"),
        "{body}"
    );
    assert_eq!(get(&server, "/api/v2/alerts").as_array().unwrap().len(), 1);

    let r = server
        .client()
        .post(server.url("/api/v2/alerts"))
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().unwrap().contains("expected a JSON array"));

    for (silence, wanted) in [
        (
            json!({"matchers": [], "startsAt": rfc3339(0), "endsAt": rfc3339(60), "createdBy": "a", "comment": "c"}),
            "at least one matcher",
        ),
        (
            json!({"matchers": [{"name": "a", "value": ".*", "isRegex": true}], "startsAt": rfc3339(0), "endsAt": rfc3339(60), "createdBy": "a", "comment": "c"}),
            "empty string",
        ),
        (
            json!({"matchers": [{"name": "a", "value": "1", "isRegex": false}], "startsAt": rfc3339(0), "endsAt": rfc3339(60), "createdBy": "a", "comment": ""}),
            "comment",
        ),
        (
            json!({"matchers": [{"name": "a", "value": "1", "isRegex": false}], "startsAt": rfc3339(0), "endsAt": rfc3339(60), "createdBy": "a", "comment": "c", "id": "nope"}),
            "not found",
        ),
        (
            json!({"matchers": [{"name": "a", "value": "1", "isRegex": false}], "startsAt": rfc3339(0), "endsAt": rfc3339(60), "createdBy": "a", "comment": "x".repeat(20_000)}),
            "exceeds the limit",
        ),
    ] {
        let (code, body) = post(&server, "/api/v2/silences", &silence);
        assert!(code == 400 || code == 404, "{code} {body}");
        assert!(body.as_str().unwrap().contains(wanted), "{wanted}: {body}");
    }
    let r = server
        .client()
        .get(server.url("/api/v2/alerts?filter=%7Ba%3D"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = server
        .client()
        .delete(server.url("/api/v2/silence/unknown"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[test]
fn a_bad_alertmanager_configuration_stops_the_start_and_a_bad_reload_keeps_the_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let sink = WebhookSink::start();
    let config = configure(
        dir.path(),
        "route:\n  receiver: nobody\nreceivers: []\n",
        "",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["serve", "--data-dir"])
        .arg(dir.path().join("data"))
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
    assert!(stderr.contains("undefined receiver \"nobody\""), "{stderr}");

    let config = configure(dir.path(), &am_config(&sink), "");
    let server = start(dir.path(), &config);
    std::fs::write(dir.path().join("alertmanager.yml"), "route: [").unwrap();
    let r = server
        .client()
        .post(server.url("/-/reload"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 500);
    assert!(r.text().unwrap().contains("alertmanager.yml"));
    assert_eq!(get(&server, "/api/v2/receivers"), json!([{"name": "team"}]));
}

#[test]
fn firing_rules_reach_the_webhook_through_the_alert_manager() {
    let dir = tempfile::tempdir().unwrap();
    let sink = WebhookSink::start();
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: AlwaysFiring\n        expr: vector(1)\n        labels:\n          severity: page\n        annotations:\n          summary: 'value {{ $value }}'\n",
    )
    .unwrap();
    let config = configure(
        dir.path(),
        &am_config(&sink),
        &format!(
            "rule_files = [{:?}]\nexternal_labels = {{ cluster = \"c1\" }}\nexternal_url = \"http://sl\"\n",
            rules.display().to_string()
        ),
    );
    let server = start(dir.path(), &config);
    let got = wait_for(&sink, 1);
    let body = &got[0].1;
    assert_eq!(body["groupLabels"]["alertname"], "AlwaysFiring");
    let alert = &body["alerts"][0];
    assert_eq!(alert["labels"]["severity"], "page");
    assert_eq!(alert["labels"]["cluster"], "c1");
    assert_eq!(alert["annotations"]["summary"], "value 1");
    assert!(
        alert["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with("http://sl/graph?g0.expr=vector%281%29"),
        "{alert}"
    );
    drop(server);
}
