//! The topology end to end on the real binary: OTLP logs in, the graph read as of a time (a
//! pod that moved nodes), a version bump in `changes`, the same answers after `kill -9`; a
//! bad inventory file reported by file, line and entity while its good entries are kept;
//! declarations and deploy markers through the API.

mod common;

use std::time::{Duration, Instant};

use common::{PATIENCE, Server, now_ns};
use serde_json::{Value, json};

fn attr(k: &str, v: &str) -> Value {
    json!({"key": k, "value": {"stringValue": v}})
}

/// One OTLP/JSON log record from the budget pod, on `node` at version `version`, at `t_ms`.
fn budget_log(node: &str, zone: &str, version: &str, t_ms: i64) -> Value {
    json!({"resourceLogs": [{
        "resource": {"attributes": [
            attr("service.name", "budget"),
            attr("service.version", version),
            attr("service.instance.id", "budget-1"),
            attr("k8s.cluster.name", "prod"),
            attr("k8s.namespace.name", "fin"),
            attr("k8s.deployment.name", "budget"),
            attr("k8s.pod.name", "budget-1"),
            attr("k8s.node.name", node),
            attr("cloud.availability_zone", zone),
            attr("cloud.region", "region-1"),
        ]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": (t_ms * 1_000_000).to_string(),
            "body": {"stringValue": "budget saved"},
        }]}],
    }]})
}

fn post_logs(server: &Server, body: &Value) {
    let r = server
        .client()
        .post(format!("http://{}/v1/logs", server.otlp_http))
        .json(body)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());
}

fn get(server: &Server, path: &str) -> (u16, Value) {
    let r = server.client().get(server.url(path)).send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// GETs `path` until `done` holds of the answer (facts are applied to the graph just after
/// they are acknowledged).
fn get_until(server: &Server, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, v) = get(server, path);
        if status == 200 && done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{path}: {status} {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ids(v: &Value, kind: &str) -> Vec<String> {
    let mut out: Vec<String> = v["data"]["entities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| kind.is_empty() || e["kind"] == kind)
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn a_moved_pod_is_on_each_node_in_its_time_and_answers_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    // An hour ago: four reports on node-a, then the pod moves to node-b with a new version.
    let t0 = now_ns() / 1_000_000 - 3_600_000;
    for i in 0..4 {
        post_logs(
            &server,
            &budget_log("node-a", "zone-a", "1.0", t0 + i * 90_000),
        );
    }
    let moved = t0 + 400_000;
    for i in 0..4 {
        post_logs(
            &server,
            &budget_log("node-b", "zone-b", "1.1", moved + i * 90_000),
        );
    }
    let pod = "pod:prod/fin/budget-1";
    let stack_at = |server: &Server, t_ms: i64| {
        let (status, v) = get(
            server,
            &format!("/api/v1/topology/stack/{pod}?time={}", t_ms as f64 / 1000.0),
        );
        assert_eq!(status, 200, "{v}");
        v
    };
    let last = (moved + 270_000) / 1000;
    get_until(
        &server,
        &format!("/api/v1/topology/stack/{pod}?time={last}"),
        |v| ids(v, "node") == ["node:prod/node-b"],
    );
    let before = stack_at(&server, t0 + 200_000);
    assert_eq!(ids(&before, "node"), ["node:prod/node-a"]);
    assert_eq!(ids(&before, "zone"), ["zone:zone-a"]);
    let after = stack_at(&server, moved + 100_000);
    assert_eq!(ids(&after, "node"), ["node:prod/node-b"]);
    assert_eq!(ids(&after, "zone"), ["zone:zone-b"]);
    assert_eq!(ids(&after, "region"), ["region:region-1"]);

    let changes_path = format!(
        "/api/v1/topology/changes?start={}&end={}",
        t0 as f64 / 1000.0,
        (moved + 600_000) as f64 / 1000.0
    );
    let (_, changes) = get(&server, &changes_path);
    let events = changes["data"].as_array().unwrap();
    let version = events
        .iter()
        .find(|e| e["kind"] == "version")
        .unwrap_or_else(|| panic!("no version change in {changes}"));
    assert_eq!(version["entity"], "instance:budget/budget-1");
    assert_eq!(version["time"], moved);
    assert_eq!(
        (version["from"].as_str(), version["to"].as_str()),
        (Some("1.0"), Some("1.1"))
    );
    let move_event = events
        .iter()
        .find(|e| e["kind"] == "moved" && e["entity"] == pod)
        .unwrap_or_else(|| panic!("no move in {changes}"));
    assert_eq!(move_event["from"], "node:prod/node-a");
    assert_eq!(move_event["to"], "node:prod/node-b");
    assert_eq!(move_event["time"], moved);

    let impact_path = "/api/v1/topology/impact/node:prod/node-b";
    let (_, impact) = get(
        &server,
        &format!("{impact_path}?time={}", (moved + 100_000) / 1000),
    );
    assert_eq!(
        ids(&impact, ""),
        [
            "instance:budget/budget-1",
            "node:prod/node-b",
            "pod:prod/fin/budget-1",
            "service:budget",
            "workload:prod/fin/budget",
        ]
    );

    // The same answers after kill -9 (acknowledged facts come back from the WAL).
    let snapshot = |server: &Server| {
        [
            stack_at(server, t0 + 200_000),
            stack_at(server, moved + 100_000),
            get(server, &changes_path).1,
            get(
                server,
                &format!("{impact_path}?time={}", (moved + 100_000) / 1000),
            )
            .1,
        ]
    };
    let answers = snapshot(&server);
    server.kill9();
    let server = Server::start(dir.path());
    assert_eq!(snapshot(&server), answers);
}

const INVENTORY: &str = r#"# The finance cloud's declared inventory.
[[application]]
name = "budget-system"
owner = { name = "Vendor A", contact = "ops@vendor-a.example" }
criticality = "core"
services = ["budget"]

[[entity]]
kind = "servce"
name = "typo"

[[entity]]
id = "database:ledger"
owner = { name = "DBA team" }

[[relation]]
from = "service:budget"
to = "database:ledger"
kind = "depends_on"

[[relation]]
from = "database:ledger"
to = "service:budget"
kind = "depends_on"

[[relation]]
from = "service:budget"
to = "cache:nowhere"
kind = "depends_on"

[[entity]]
id = "database:ledger"
owner = { name = "Vendor B" }
"#;

#[test]
fn a_bad_inventory_is_reported_by_file_line_and_entity_and_its_good_entries_kept() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory.toml");
    std::fs::write(&inventory, INVENTORY).unwrap();
    let config = dir.path().join("sightline.toml");
    std::fs::write(
        &config,
        format!(
            "[topology]\ninventory = {:?}\n",
            inventory.display().to_string()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()]);
    let name = inventory.display().to_string();
    let deadline = Instant::now() + PATIENCE;
    while !server.log_text().contains("topology inventory loaded") {
        assert!(Instant::now() < deadline, "{}", server.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = server.log_text();
    for expected in [
        format!("{name}:8: error: typo: unknown entity kind \"servce\""),
        format!(
            "{name}:21: error: relation database:ledger depends_on service:budget: closes a depends_on cycle"
        ),
        format!(
            "{name}:26: warning: relation service:budget depends_on cache:nowhere: cache:nowhere is not declared here"
        ),
        format!(
            "{name}:31: warning: database:ledger: also declared at line 12 and contradicts it: owner is \"DBA team\" there, \"Vendor B\" here"
        ),
    ] {
        assert!(
            log.contains(&expected),
            "{expected:?} not in the log:\n{log}"
        );
    }

    // The good entries are there; the service's owner comes from its application.
    post_logs(
        &server,
        &budget_log("node-a", "zone-a", "1.0", now_ns() / 1_000_000),
    );
    let app = get_until(
        &server,
        "/api/v1/topology/stack/application:budget-system",
        |v| !ids(v, "service").is_empty(),
    );
    assert_eq!(
        ids(&app, "service")
            .iter()
            .chain(&ids(&app, "database"))
            .collect::<Vec<_>>(),
        ["service:budget", "database:ledger"]
    );
    let (_, service) = get(&server, "/api/v1/topology/entities/service:budget");
    let owner = &service["data"]["entity"]["owner"];
    assert_eq!(owner["name"], "Vendor A");
    assert_eq!(owner["via"], "application:budget-system");
    assert_eq!(service["data"]["entity"]["criticality"], "core");
    let (_, ledger) = get(&server, "/api/v1/topology/entities/database:ledger");
    assert_eq!(ledger["data"]["entity"]["owner"]["name"], "DBA team");
    // Impact of the database ends in the application and its owners.
    let (_, impact) = get(&server, "/api/v1/topology/impact/database:ledger");
    assert_eq!(
        impact["data"]["applications"],
        json!(["application:budget-system"])
    );
    let owners: Vec<&str> = impact["data"]["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(owners, ["DBA team", "Vendor A"]);

    // The API refuses what is wrong by entry and keeps the rest.
    let r = server
        .client()
        .put(server.url("/api/v1/topology/entities"))
        .json(&json!({"entities": [
            {"id": "service:notify", "owner": {"name": "Vendor C"}, "criticality": "normal"},
            {"kind": "vm", "name": "x"},
        ]}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().unwrap();
    assert_eq!(body["data"]["declared"], 1);
    assert!(
        body["data"]["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("request:1: error: x: unknown entity kind \"vm\""),
        "{body}"
    );
    let r = server
        .client()
        .put(server.url("/api/v1/topology/relations"))
        .json(&json!([{"from": "service:notify", "to": "service:budget", "kind": "calls_to"}]))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // A deploy marker from CI/CD is a change on the service.
    let r = server
        .client()
        .post(server.url("/api/v1/events"))
        .json(&json!({"service": "budget", "version": "1.2", "description": "pipeline 88"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());
    let changes = get_until(&server, "/api/v1/topology/changes?kind=deploy", |v| {
        v["data"].as_array().is_some_and(|a| !a.is_empty())
    });
    let deploys = changes["data"].as_array().unwrap();
    assert_eq!(deploys.len(), 1, "{changes}");
    assert_eq!(deploys[0]["entity"], "service:budget");
    assert_eq!(deploys[0]["to"], "1.2");
    assert_eq!(deploys[0]["detail"], "pipeline 88");
    let (status, _) = get(&server, "/api/v1/topology/stack/service:nosuch");
    assert_eq!(status, 404);
    assert_eq!(server.terminate(), Some(0));
}
