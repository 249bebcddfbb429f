//! The alert manager against the real programs (Debian's `prometheus-alertmanager` and
//! `amtool`): amtool manages silences and lists alerts on Sightline; routing agrees with
//! `amtool config routes test`; the same alerts posted to a real Alertmanager and to
//! Sightline, with the same configuration, give the same notifications (receiver, group
//! labels, the alerts and their status) at every step.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::webhook::WebhookSink;
use common::{PATIENCE, Server, free_port};
use serde_json::{Value, json};

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn dataset(path: &str) -> Option<std::path::PathBuf> {
    let relative = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/datasets/alerting")
        .join(path);
    let absolute = Path::new("/work/shared/datasets/alerting").join(path);
    [relative, absolute].into_iter().find(|p| p.exists())
}

fn start_sightline(dir: &Path, alertmanager_yml: &str) -> Server {
    let am = dir.join("sightline-alertmanager.yml");
    std::fs::write(&am, alertmanager_yml).unwrap();
    let config = dir.join("sightline.toml");
    std::fs::write(
        &config,
        format!(
            "[alerting]\nalertmanager_config = {:?}\n",
            am.display().to_string()
        ),
    )
    .unwrap();
    Server::start_with(&dir.join("data"), &["--config", config.to_str().unwrap()])
}

/// A real Alertmanager on loopback, stopped when dropped.
struct RealAlertmanager {
    child: Child,
    url: String,
}

impl RealAlertmanager {
    fn start(dir: &Path, config_yml: &str) -> RealAlertmanager {
        let config = dir.join("alertmanager.yml");
        std::fs::write(&config, config_yml).unwrap();
        let port = free_port();
        let child = Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus-alertmanager");
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::blocking::Client::new();
        let deadline = Instant::now() + PATIENCE;
        while !client
            .get(format!("{url}/-/ready"))
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "alertmanager never became ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        RealAlertmanager { child, url }
    }
}

impl Drop for RealAlertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn amtool(url: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("amtool")
        .arg(format!("--alertmanager.url={url}"))
        .args(args)
        .output()
        .expect("run amtool");
    // stdout only: amtool warns on stderr that the server's version is not its own.
    let text = if out.status.success() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    (out.status.success(), text)
}

#[test]
fn amtool_adds_queries_and_expires_silences_and_lists_alerts() {
    if !have("amtool") {
        eprintln!("amtool not installed: skipped (scripts/install-test-deps.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = start_sightline(
        dir.path(),
        "route:\n  receiver: default\n  group_wait: 1s\nreceivers:\n  - name: default\n",
    );
    let url = server.url("");
    let url = url.trim_end_matches('/');

    let (ok, out) = amtool(
        url,
        &[
            "alert",
            "add",
            "alertname=DiskFull",
            "instance=db1",
            "severity=critical",
            "--annotation=summary=disk full",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = amtool(url, &["alert", "query", "-o", "json"]);
    assert!(ok, "{out}");
    let alerts: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(alerts[0]["labels"]["alertname"], "DiskFull");
    assert_eq!(alerts[0]["annotations"]["summary"], "disk full");

    let (ok, out) = amtool(
        url,
        &[
            "silence",
            "add",
            "--author=ops",
            "--comment=maintenance",
            "--duration=1h",
            "instance=~db.*",
        ],
    );
    assert!(ok, "{out}");
    let id = out.trim().to_owned();
    assert_eq!(id.len(), 36, "{out}");
    let (ok, out) = amtool(url, &["silence", "query", "-q"]);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), id);
    let (ok, out) = amtool(url, &["silence", "query", "-o", "json", "instance=~db.*"]);
    assert!(ok, "{out}");
    let silences: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(silences[0]["createdBy"], "ops");
    assert_eq!(silences[0]["matchers"][0]["isRegex"], true);

    // The alert is silenced: amtool's default query (active only) hides it.
    let (ok, out) = amtool(url, &["alert", "query", "-o", "json", "--silenced"]);
    assert!(ok, "{out}");
    let silenced: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(silenced[0]["status"]["silencedBy"][0], id.as_str());

    let (ok, out) = amtool(url, &["silence", "expire", &id]);
    assert!(ok, "{out}");
    let (ok, out) = amtool(url, &["silence", "query", "-q"]);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "", "expired silences are not listed by default");
    let (ok, out) = amtool(url, &["silence", "query", "-q", "--expired"]);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), id);

    let (ok, out) = amtool(url, &["config", "show"]);
    assert!(ok, "{out}");
    assert!(out.contains("receiver: default"), "{out}");
}

/// Label sets drawn from the values the routing trees test, deterministic.
fn label_cases(values: &[(&str, &[&str])], count: usize) -> Vec<BTreeMap<String, String>> {
    let mut state: u64 = 0x9e3779b97f4a7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let mut set = BTreeMap::new();
            for (name, choices) in values {
                let v = choices[(next() % choices.len() as u64) as usize];
                if !v.is_empty() {
                    set.insert(name.to_string(), v.to_string());
                }
            }
            if set.is_empty() {
                set.insert("alertname".to_owned(), "Any".to_owned());
            }
            set
        })
        .collect()
}

#[test]
fn routing_agrees_with_amtool_config_routes_test() {
    if !have("amtool") {
        eprintln!("amtool not installed: skipped");
        return;
    }
    let trees = [
        "derived/alertmanager/route_test/TestRouteMatch.yml",
        "derived/alertmanager/route_test/TestRouteMatchers.yml",
        "alertmanager/cli/testdata/conf.routing.yml",
        "alertmanager/config/testdata/conf.good.yml",
    ];
    let values: &[(&str, &[&str])] = &[
        (
            "owner",
            &["team-A", "team-B", "team-C", "team-X", "team-Y", ""],
        ),
        ("owner2", &["team-X", ""]),
        ("env", &["testing", "production", "produce", ""]),
        ("job", &["api", ""]),
        ("level", &["critical", "warning", ""]),
        ("baz", &["quux", "aquux", ""]),
        ("group_by", &["role", ""]),
        ("wait", &["long", ""]),
        ("test", &["1", "2", ""]),
        ("service", &["foo1", "files", "database", "baz", ""]),
        ("severity", &["critical", "warning", ""]),
    ];
    let cases = label_cases(values, 60);
    let mut compared = 0;
    for tree in trees {
        let Some(file) = dataset(tree) else {
            eprintln!("{tree} not found: skipped");
            continue;
        };
        let file = file.to_str().unwrap();
        for labels in &cases {
            let args: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let theirs = Command::new("amtool")
                .args(["config", "routes", "test", &format!("--config.file={file}")])
                .args(&args)
                .output()
                .unwrap();
            let ours = Command::new(env!("CARGO_BIN_EXE_sightline"))
                .args([
                    "alertmanager",
                    "routes",
                    "test",
                    &format!("--config.file={file}"),
                ])
                .args(&args)
                .output()
                .unwrap();
            let theirs = String::from_utf8_lossy(&theirs.stdout).trim().to_owned();
            let ours = String::from_utf8_lossy(&ours.stdout).trim().to_owned();
            assert_eq!(ours, theirs, "{tree} {args:?}");
            compared += 1;
        }
    }
    assert!(compared >= 180, "only {compared} cases compared");
}

/// A notification reduced to what must agree: the receiver (the sink path), the group
/// labels, the status and every alert's labels and status.
fn reduce(path: &str, body: &Value) -> String {
    let mut alerts: Vec<String> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}:{}", a["labels"], a["status"]))
        .collect();
    alerts.sort();
    format!(
        "{path} {} {} [{}]",
        body["groupLabels"],
        body["status"],
        alerts.join(", ")
    )
}

fn reduced(sink: &WebhookSink) -> Vec<String> {
    let mut all: Vec<String> = sink.received().iter().map(|(p, b)| reduce(p, b)).collect();
    all.sort();
    all
}

#[test]
fn the_same_alerts_give_the_same_notifications_as_a_real_alertmanager() {
    if !have("prometheus-alertmanager") {
        eprintln!("prometheus-alertmanager not installed: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let theirs_sink = WebhookSink::start();
    let ours_sink = WebhookSink::start();
    let config = |sink: &WebhookSink| {
        format!(
            r#"
route:
  receiver: default
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
  routes:
    - matchers: [team="db"]
      receiver: db
      group_by: [alertname, cluster]
      continue: true
    - matchers: [severity="page"]
      receiver: pager
      group_by: ['...']
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [cluster]
receivers:
  - name: default
    webhook_configs: [{{url: "{}"}}]
  - name: db
    webhook_configs: [{{url: "{}", send_resolved: true}}]
  - name: pager
    webhook_configs: [{{url: "{}", send_resolved: false}}]
"#,
            sink.url("/default"),
            sink.url("/db"),
            sink.url("/pager")
        )
    };
    let real = RealAlertmanager::start(dir.path(), &config(&theirs_sink));
    let ours = start_sightline(dir.path(), &config(&ours_sink));
    let targets = [
        real.url.clone(),
        ours.url("").trim_end_matches('/').to_owned(),
    ];
    let client = reqwest::blocking::Client::new();
    let post = |path: &str, body: &Value| {
        for base in &targets {
            let r = client
                .post(format!("{base}{path}"))
                .json(body)
                .send()
                .unwrap();
            assert!(
                r.status().is_success(),
                "{base}{path}: {}",
                r.text().unwrap()
            );
        }
    };
    let now = |offset: i64| (chrono::Utc::now() + chrono::Duration::seconds(offset)).to_rfc3339();
    // Starting now: an alert older than group_wait makes Alertmanager flush its group at
    // once, racing its own inhibitor (which may not have seen the source alert yet).
    let alert = |labels: Value| json!({"labels": labels, "startsAt": now(0), "endsAt": now(3600)});

    let settle = || std::thread::sleep(Duration::from_secs(6));
    let mut steps = Vec::new();

    // Step 1: a critical and two warnings of one team in two clusters (one inhibited), two
    // paging alerts each their own group, and an alert only the root takes.
    post(
        "/api/v2/alerts",
        &json!([
            alert(
                json!({"alertname": "DiskFull", "cluster": "a", "severity": "critical", "team": "db", "instance": "db1"})
            ),
            alert(
                json!({"alertname": "DiskFull", "cluster": "a", "severity": "warning", "team": "db", "instance": "db2"})
            ),
            alert(
                json!({"alertname": "DiskFull", "cluster": "b", "severity": "warning", "team": "db", "instance": "db3"})
            ),
            alert(
                json!({"alertname": "HighLatency", "cluster": "a", "severity": "page", "service": "api", "instance": "api1"})
            ),
            alert(
                json!({"alertname": "HighLatency", "cluster": "b", "severity": "page", "service": "api", "instance": "api2"})
            ),
            alert(json!({"alertname": "Misc", "instance": "x1"})),
        ]),
    );
    settle();
    steps.push((reduced(&theirs_sink), reduced(&ours_sink)));

    // Step 2: the critical resolves (the inhibited warning comes through), a paging alert
    // resolves (its receiver does not send resolved), a second Misc alert joins its group.
    post(
        "/api/v2/alerts",
        &json!([
            {"labels": {"alertname": "DiskFull", "cluster": "a", "severity": "critical", "team": "db", "instance": "db1"}, "endsAt": now(-1)},
            {"labels": {"alertname": "HighLatency", "cluster": "a", "severity": "page", "service": "api", "instance": "api1"}, "endsAt": now(-1)},
            alert(json!({"alertname": "Misc", "instance": "x2"})),
        ]),
    );
    settle();
    steps.push((reduced(&theirs_sink), reduced(&ours_sink)));

    // Step 3: a silence on x1, then a third Misc alert: the group is notified without x1.
    post(
        "/api/v2/silences",
        &json!({"matchers": [{"name": "instance", "value": "x1", "isRegex": false, "isEqual": true}],
                "startsAt": now(0), "endsAt": now(3600), "createdBy": "test", "comment": "differential"}),
    );
    post(
        "/api/v2/alerts",
        &json!([alert(json!({"alertname": "Misc", "instance": "x3"}))]),
    );
    settle();
    steps.push((reduced(&theirs_sink), reduced(&ours_sink)));

    for (i, (theirs, ours)) in steps.iter().enumerate() {
        assert_eq!(
            ours,
            theirs,
            "step {}: Sightline's notifications differ from Alertmanager's",
            i + 1
        );
    }
    assert!(
        steps[2].0.len() >= 8,
        "too few notifications to compare: {:?}",
        steps[2].0
    );

    // The alerts listed agree too: same fingerprints, same silenced/inhibited state.
    let list = |base: &str| -> Vec<(String, String, String)> {
        let v: Value = client
            .get(format!("{base}/api/v2/alerts"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let mut out: Vec<(String, String, String)> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["fingerprint"].as_str().unwrap().to_owned(),
                    a["labels"].to_string(),
                    a["status"]["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    };
    assert_eq!(list(&targets[1]), list(&targets[0]));
}

/// The subject and decoded text parts of every mail in a maildir, read with Python's
/// `email` package (the same interpreter that runs aiosmtpd).
fn read_maildir(dir: &Path) -> Vec<String> {
    let script = r#"
import email, email.policy, mailbox, sys
for key, msg in mailbox.Maildir(sys.argv[1], create=False).items():
    m = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    parts = [p.get_content() for p in m.walk() if not p.is_multipart()]
    print("SUBJECT: " + str(m["Subject"]) + "\n" + "\n".join(parts) + "\n=====")
"#;
    let out = Command::new(common::python())
        .args(["-c", script])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split("=====")
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

#[test]
fn a_real_prometheus_alerts_through_sightline_to_a_real_smtp_server() {
    if !have("prometheus") {
        eprintln!("prometheus not installed: skipped");
        return;
    }
    let python = common::python();
    let has_aiosmtpd = Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_aiosmtpd {
        eprintln!("aiosmtpd not importable by {python}: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let smtp_port = free_port();
    let mut smtp = Command::new(&python)
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{smtp_port}"),
        ])
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(&maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    while std::net::TcpStream::connect(("127.0.0.1", smtp_port)).is_err() {
        assert!(Instant::now() < deadline, "aiosmtpd never listened");
        std::thread::sleep(Duration::from_millis(50));
    }

    let sightline = start_sightline(
        dir.path(),
        &format!(
            r#"
global:
  smtp_smarthost: 127.0.0.1:{smtp_port}
  smtp_from: sightline@example.org
  smtp_require_tls: false
route:
  receiver: oncall
  group_by: [alertname]
  group_wait: 1s
receivers:
  - name: oncall
    email_configs:
      - to: oncall@example.org
"#
        ),
    );

    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: g\n    rules:\n      - alert: LedgerWritesFailing\n        expr: vector(3)\n        labels:\n          severity: page\n          service: ledger\n        annotations:\n          summary: 'ledger writes failing ({{ $value }} per second)'\n          runbook_url: https://runbooks.example/ledger\n",
    )
    .unwrap();
    let prom_config = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files: [{:?}]\nalerting:\n  alertmanagers:\n    - api_version: v2\n      static_configs:\n        - targets: [{:?}]\n",
            rules.display().to_string(),
            sightline.http.to_string()
        ),
    )
    .unwrap();
    let prom_port = free_port();
    let mut prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", prom_config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("prom").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        // Prometheus sends firing alerts again only every resend delay (1m by default),
        // and its first send can precede the discovery of its static Alertmanager.
        .arg("--rules.alert.resend-delay=1s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + PATIENCE;
    let mails = loop {
        let mails = if maildir.join("new").exists() {
            read_maildir(&maildir)
        } else {
            Vec::new()
        };
        if !mails.is_empty() {
            break mails;
        }
        assert!(
            Instant::now() < deadline,
            "no mail arrived; sightline log:\n{}",
            sightline.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    let _ = smtp.kill();
    let _ = smtp.wait();

    let mail = &mails[0];
    let subject = mail.lines().next().unwrap();
    assert!(subject.contains("[FIRING:1] LedgerWritesFailing"), "{mail}");
    assert!(
        subject.contains("ledger") && subject.contains("page"),
        "{mail}"
    );
    for needle in [
        "severity",
        "page",
        "service",
        "ledger writes failing (3 per second)",
        "https://runbooks.example/ledger",
    ] {
        assert!(
            mail.contains(needle),
            "{needle:?} missing from the mail:\n{mail}"
        );
    }
}
