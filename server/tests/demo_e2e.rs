//! `sightline demo` end to end: the simulated finance cloud sends real OTLP to the server it
//! starts; a slow database injected through `sightline demo fault` slows every service that
//! needs it; the alerts they fire become one incident whose first cause is the database and
//! whose first advice is one that helps (shed non-critical callers, rate-limit, circuit
//! -break), and `sightline demo faults` keeps the ground truth. The latency alerts compare
//! with the last minutes, so the test runs about six minutes of traffic: it is built with
//! `--features interop` only. `sightline demo evaluate` is checked on one fault in simulated
//! time.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn sightline(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "sightline {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn a_slow_database_becomes_one_incident_with_its_cause_and_advice() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["demo", "--no-faults", "--data-dir"])
        .arg(dir.path())
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--otlp-http-addr",
            "127.0.0.1:0",
        ])
        .args([
            "--otlp-grpc-addr",
            "127.0.0.1:0",
            "--syslog-addr",
            "127.0.0.1:0",
        ])
        .env("SIGHTLINE_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("http_addr=").nth(1)
                && line.contains("sightline listening")
            {
                let addr: String = rest
                    .chars()
                    .skip_while(|c| !c.is_ascii_digit())
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(common::PATIENCE)
        .expect("the demo's address");
    let base = format!("http://{addr}");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Kill(child);

    // Four minutes of normal traffic (the latency alerts' baseline), then the fault.
    std::thread::sleep(Duration::from_secs(240));
    let injected = sightline(&[
        "demo", "fault", "slow_db", "--for", "10m", "--server", &base,
    ]);
    assert!(
        injected.contains("\"root_cause\":\"database:finance-db\""),
        "{injected}"
    );

    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    let incident = loop {
        let v: Value = client
            .get(format!("{base}/api/v1/incidents"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let list = v["data"].as_array().cloned().unwrap_or_default();
        if let Some(i) = list
            .iter()
            .find(|i| i["cause"]["entity"] == "database:finance-db")
        {
            break i.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no incident names finance-db: {v:#}"
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    let id = incident["id"].as_str().unwrap();
    let whole: Value = client
        .get(format!("{base}/api/v1/incidents/{id}"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let advice = &whole["data"]["advice"];
    let first = advice[0]["kind"].as_str().unwrap_or_default();
    assert!(
        ["degrade", "rate_limit", "circuit_break"].contains(&first),
        "{advice:#}"
    );
    // Every incident open is this one: the slow services above the database joined it.
    let open: Value = client
        .get(format!("{base}/api/v1/incidents?state=open"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(open["data"].as_array().unwrap().len(), 1, "{open:#}");
    let truth = sightline(&["demo", "faults", "--server", &base]);
    assert!(truth.contains("\"kind\":\"slow_db\""), "{truth}");
}

/// `sightline demo evaluate` in simulated time: one slow-database fault after 35 minutes of
/// normal traffic (seed 2 starts the kinds at `slow_db`) is detected, its incident's first
/// cause is the database, its first advice helps, and its owner is notified at most twice
/// (firing, resolved); the last line is the JSON report.
#[test]
fn evaluate_scores_a_slow_database_against_its_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let out = sightline(&[
        "demo",
        "evaluate",
        "--faults",
        "1",
        "--seed",
        "2",
        "--warmup",
        "35m",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    let last = out.lines().last().unwrap();
    let report: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {out}"));
    let slow_db = &report["kinds"]["slow_db"];
    assert_eq!(slow_db["faults"], 1, "{out}");
    assert_eq!(slow_db["detected"], 1.0, "{out}");
    assert_eq!(slow_db["top1"], 1.0, "{out}");
    assert_eq!(slow_db["first_action_right"], 1.0, "{out}");
    let notes = slow_db["notifications_per_incident"].as_f64().unwrap();
    assert!((1.0..=2.0).contains(&notes), "{out}");
    assert!(
        report["median_detection_s"].as_f64().unwrap() > 0.0,
        "{out}"
    );
    assert!(report["false_incidents_per_day"].is_number(), "{out}");
    assert!(
        out.contains("\nslow_db "),
        "the table has a line per kind: {out}"
    );
}
