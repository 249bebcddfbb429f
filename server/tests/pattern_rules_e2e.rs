//! Pattern rules in the real binary: a log pattern seen for the first time, and one whose
//! rate jumps far above its usual, each raise an alert that reaches a webhook through the
//! alert manager, naming the service and the template; a pattern that is neither does not.

mod common;

use std::time::{Duration, Instant};

use common::webhook::WebhookSink;
use common::{PATIENCE, Server, now_ns};
use serde_json::{Value, json};

fn push(server: &Server, service: &str, lines: &[(i64, String)]) {
    let values: Vec<Value> = lines
        .iter()
        .map(|(t, l)| json!([t.to_string(), l]))
        .collect();
    let body = json!({"streams": [{"stream": {"service_name": service}, "values": values}]});
    let (code, text) = common::loki_push_json(server, "default", &body);
    assert_eq!(code, 204, "{text}");
}

#[test]
fn new_and_surging_patterns_alert_through_the_alert_manager() {
    let dir = tempfile::tempdir().unwrap();
    let sink = WebhookSink::start();
    let am = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am,
        format!(
            "route:\n  receiver: team\n  group_by: [alertname, service_name]\n  group_wait: 1s\n  group_interval: 1s\nreceivers:\n  - name: team\n    webhook_configs:\n      - url: {}\n",
            sink.url("/team")
        ),
    )
    .unwrap();
    let config = dir.path().join("sightline.toml");
    std::fs::write(
        &config,
        format!(
            r#"[alerting]
alertmanager_config = {:?}

[[alerting.pattern_rules]]
name = "NewErrorPattern"
selector = '{{service_name="payments"}}'
kind = "new"
template_match = "(?i)error"
window = "2m"
min_count = 2
interval = "1s"
labels = {{ severity = "warning" }}

[[alerting.pattern_rules]]
name = "PatternSurge"
selector = '{{service_name="ledger"}}'
kind = "surge"
window = "1m"
baseline = "5m"
factor = 5.0
min_count = 5
interval = "1s"
"#,
            am.display().to_string()
        ),
    )
    .unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let now = now_ns();
    let minute = 60_000_000_000i64;
    // payments: an ordinary pattern, then a new error pattern.
    let mut lines: Vec<(i64, String)> = (0..5)
        .map(|i| {
            (
                now - 1_000_000 * (10 - i),
                format!("payment {i} accepted in {} ms", 10 + i),
            )
        })
        .collect();
    lines.extend((0..3).map(|i| {
        (
            now - 1_000_000 * (5 - i),
            format!("connection to db-{i} failed with error code 4{i}"),
        )
    }));
    push(&server, "payments", &lines);
    // ledger: one line a minute for five minutes, then twelve in the last minute.
    let mut ledger: Vec<(i64, String)> = (1..=5)
        .map(|m| {
            (
                now - m * minute - 30_000_000_000,
                format!("posted batch {m} to the general ledger"),
            )
        })
        .collect();
    ledger.extend((0..12).map(|i| {
        (
            now - 1_000_000 * (20 - i),
            format!("posted batch {} to the general ledger", 100 + i),
        )
    }));
    push(&server, "ledger", &ledger);

    let deadline = Instant::now() + PATIENCE;
    let (new, surge) = loop {
        let got = sink.received();
        let find = |name: &str| {
            got.iter()
                .find(|(_, b)| b["groupLabels"]["alertname"] == name)
                .map(|(_, b)| b.clone())
        };
        if let (Some(n), Some(s)) = (find("NewErrorPattern"), find("PatternSurge")) {
            break (n, s);
        }
        assert!(
            Instant::now() < deadline,
            "notifications so far: {got:?}\nlog:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let alerts = new["alerts"].as_array().unwrap();
    assert_eq!(
        alerts.len(),
        1,
        "only the error pattern is new and matches: {new}"
    );
    let alert = &alerts[0];
    assert_eq!(alert["labels"]["service_name"], "payments");
    assert_eq!(alert["labels"]["severity"], "warning");
    let summary = alert["annotations"]["summary"].as_str().unwrap();
    assert!(summary.contains("New log pattern in payments"), "{summary}");
    assert!(summary.contains("failed with error code"), "{summary}");

    let alerts = surge["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{surge}");
    assert_eq!(alerts[0]["labels"]["service_name"], "ledger");
    assert!(
        alerts[0]["annotations"]["template"]
            .as_str()
            .unwrap()
            .contains("to the general ledger")
    );
    // The accepted payments never alert: not an error, not a surge.
    assert!(
        sink.received()
            .iter()
            .all(|(_, b)| !b["alerts"].to_string().contains("accepted"))
    );
}
