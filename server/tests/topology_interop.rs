//! The topology from a real client: a three-tier estate (gateway → budget and treasury → a
//! PostgreSQL database and a Redis cache) on four pods, two nodes, two zones, reporting logs,
//! metrics and traces through the OpenTelemetry Python SDK; a legacy service on a VM scraped
//! with target labels; a declared inventory with owners and one application. `stack`,
//! `impact`, `path` and the graph must return exactly the expected entities and relations; a
//! version bump must appear in `changes` at its time; and after `kill -9` the answers must be
//! the same. Built only with `--features interop` (needs `SIGHTLINE_PYTHON`, see
//! `scripts/test.sh`).

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{PATIENCE, Server, now_ns};
use serde_json::Value;

const INVENTORY: &str = r#"
[[application]]
name = "finance-core"
owner = { name = "Finance Platform Team", contact = "finance-platform@example.gov" }
criticality = "core"
services = ["gateway", "budget", "treasury"]

[[entity]]
id = "service:treasury"
owner = { name = "Vendor T", contact = "support@vendor-t.example" }

[[entity]]
id = "database:ledger"
owner = { name = "DBA team" }
criticality = "core"

[[entity]]
id = "service:legacy-billing"
owner = { name = "Vendor L" }
"#;

/// A scrape target: a legacy service's `/metrics`, served until the test ends.
fn legacy_target() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let body = "# TYPE billing_runs_total counter\nbilling_runs_total 42\n";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

fn send(server: &Server, budget_b_version: &str) -> Value {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/otel_topology.py"
    );
    let out = Command::new(common::python())
        .args([
            script,
            "send",
            &format!("http://{}", server.otlp_http),
            budget_b_version,
        ])
        .output()
        .expect("run the Python interpreter (SIGHTLINE_PYTHON or python3)");
    assert!(
        out.status.success(),
        "otel_topology.py failed: {}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn get(server: &Server, path: &str) -> Value {
    let r = server.client().get(server.url(path)).send().unwrap();
    assert_eq!(r.status().as_u16(), 200, "{path}");
    r.json().unwrap()
}

fn entities(v: &Value) -> BTreeSet<String> {
    v["data"]["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

fn relations(v: &Value) -> BTreeSet<String> {
    v["data"]["relations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["from"].as_str().unwrap(),
                r["kind"].as_str().unwrap(),
                r["to"].as_str().unwrap()
            )
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn an_estate_reported_by_the_opentelemetry_sdk_maps_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let port = legacy_target();
    std::fs::write(dir.path().join("inventory.toml"), INVENTORY).unwrap();
    let config = dir.path().join("sightline.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[traces]
metrics_flush_interval = "1s"

[topology]
inventory = {inventory:?}

[[scrape_configs]]
job_name = "legacy-billing"
scrape_interval = "1s"
static_configs = [{{ targets = ["127.0.0.1:{port}"], labels = {{ hostname = "vm-legacy-1", zone = "zone-b" }} }}]
"#,
            inventory = dir.path().join("inventory.toml").display().to_string()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let args = ["--config", config.to_str().unwrap()];
    let server = Server::start_with(&data, &args);

    let sent = send(&server, "1.0");
    assert_eq!(sent["spans"], 24, "{sent}");
    assert_eq!(sent["logs"], 4, "{sent}");

    let target = format!("127.0.0.1:{port}");
    let pods = [
        ("gateway", "gateway-7d4-a", "node-1", "zone-a"),
        ("budget", "budget-5c8-a", "node-1", "zone-a"),
        ("budget", "budget-5c8-b", "node-2", "zone-b"),
        ("treasury", "treasury-6f9-a", "node-2", "zone-b"),
    ];
    let mut want_entities = set(&[
        "application:finance-core",
        "cache:redis",
        "cluster:prod",
        "database:ledger",
        "host:vm-legacy-1",
        "namespace:prod/fin",
        "node:prod/node-1",
        "node:prod/node-2",
        "region:region-1",
        "service:budget",
        "service:gateway",
        "service:legacy-billing",
        "service:treasury",
        "zone:zone-a",
        "zone:zone-b",
    ]);
    want_entities.insert(format!("instance:legacy-billing/{target}"));
    let mut want_relations = set(&[
        "namespace:prod/fin part_of cluster:prod",
        "node:prod/node-1 located_in zone:zone-a",
        "node:prod/node-1 member_of cluster:prod",
        "node:prod/node-2 located_in zone:zone-b",
        "node:prod/node-2 member_of cluster:prod",
        "zone:zone-a located_in region:region-1",
        "zone:zone-b located_in region:region-1",
        "service:gateway calls service:budget",
        "service:gateway calls service:treasury",
        "service:budget depends_on database:ledger",
        "service:budget depends_on cache:redis",
        "service:treasury depends_on database:ledger",
        "service:gateway part_of application:finance-core",
        "service:budget part_of application:finance-core",
        "service:treasury part_of application:finance-core",
        "host:vm-legacy-1 located_in zone:zone-b",
    ]);
    want_relations.insert(format!(
        "instance:legacy-billing/{target} member_of service:legacy-billing"
    ));
    want_relations.insert(format!(
        "instance:legacy-billing/{target} runs_on host:vm-legacy-1"
    ));
    for (service, pod, node, _) in pods {
        let instance = format!("instance:{service}/{pod}");
        let pod_id = format!("pod:prod/fin/{pod}");
        let workload = format!("workload:prod/fin/{service}");
        want_entities.extend([instance.clone(), pod_id.clone(), workload.clone()]);
        want_relations.extend([
            format!("{instance} member_of service:{service}"),
            format!("{instance} runs_on {pod_id}"),
            format!("{pod_id} runs_on node:prod/{node}"),
            format!("{pod_id} member_of {workload}"),
            format!("{workload} member_of namespace:prod/fin"),
        ]);
    }

    // The service graph's edges come with its next flush; the scrape with its first scrape.
    let deadline = Instant::now() + PATIENCE;
    let graph = loop {
        let g = get(&server, "/api/v1/topology");
        if relations(&g) == want_relations && entities(&g) == want_entities {
            break g;
        }
        assert!(
            Instant::now() < deadline,
            "the graph never matched.\nmissing entities: {:?}\nextra entities: {:?}\nmissing relations: {:?}\nextra relations: {:?}",
            want_entities.difference(&entities(&g)).collect::<Vec<_>>(),
            entities(&g).difference(&want_entities).collect::<Vec<_>>(),
            want_relations
                .difference(&relations(&g))
                .collect::<Vec<_>>(),
            relations(&g)
                .difference(&want_relations)
                .collect::<Vec<_>>(),
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Call figures on the edges: three requests each way.
    let calls = graph["data"]["relations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["from"] == "service:gateway" && r["to"] == "service:budget")
        .unwrap()
        .clone();
    assert!(calls["first_seen"].as_i64().unwrap() > 0, "{calls}");

    let stack = get(&server, "/api/v1/topology/stack/service:budget");
    assert_eq!(
        entities(&stack),
        set(&[
            "service:budget",
            "instance:budget/budget-5c8-a",
            "instance:budget/budget-5c8-b",
            "pod:prod/fin/budget-5c8-a",
            "pod:prod/fin/budget-5c8-b",
            "node:prod/node-1",
            "node:prod/node-2",
            "zone:zone-a",
            "zone:zone-b",
            "region:region-1",
            "database:ledger",
            "cache:redis",
        ])
    );
    let impact = get(&server, "/api/v1/topology/impact/database:ledger");
    assert_eq!(
        entities(&impact),
        set(&[
            "database:ledger",
            "service:budget",
            "service:treasury",
            "service:gateway",
            "application:finance-core",
        ])
    );
    assert_eq!(
        impact["data"]["applications"],
        serde_json::json!(["application:finance-core"])
    );
    let owners: BTreeSet<String> = impact["data"]["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{} via {}",
                o["name"].as_str().unwrap(),
                o["via"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        owners,
        set(&[
            "DBA team via database:ledger",
            "Finance Platform Team via application:finance-core",
            "Vendor T via service:treasury",
        ])
    );
    let path = get(
        &server,
        "/api/v1/topology/path?from=service:gateway&to=cache:redis",
    );
    let chain: Vec<&str> = path["data"]["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(chain, ["service:gateway", "service:budget", "cache:redis"]);
    assert_eq!(
        relations(&path),
        set(&[
            "service:gateway calls service:budget",
            "service:budget depends_on cache:redis"
        ])
    );
    // The signals of an entity: its selectors find its data.
    let instance = get(
        &server,
        "/api/v1/topology/entities/instance:budget/budget-5c8-b",
    );
    let selectors = &instance["data"]["entity"]["selectors"];
    assert_eq!(
        selectors["logql"],
        r#"{service_name="budget", service_instance_id="budget-5c8-b"}"#
    );
    assert_eq!(
        selectors["promql"],
        r#"{job="budget", instance="budget-5c8-b"}"#
    );

    // A new version of one budget instance is a change at its time.
    let before_bump = now_ns() / 1_000_000;
    send(&server, "1.1");
    let after_bump = now_ns() / 1_000_000;
    let deadline = Instant::now() + PATIENCE;
    let bump = loop {
        let changes = get(
            &server,
            &format!(
                "/api/v1/topology/changes?kind=version&start={}",
                before_bump / 1000 - 1
            ),
        );
        if let Some(c) = changes["data"].as_array().unwrap().first() {
            break c.clone();
        }
        assert!(Instant::now() < deadline, "no version change: {changes}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(bump["entity"], "instance:budget/budget-5c8-b");
    assert_eq!(
        (bump["from"].as_str(), bump["to"].as_str()),
        (Some("1.0"), Some("1.1"))
    );
    let t = bump["time"].as_i64().unwrap();
    assert!(
        (before_bump..=after_bump).contains(&t),
        "{t} not in {before_bump}..={after_bump}"
    );

    // After kill -9, the same answers at the same time.
    let at = format!("time={}", after_bump as f64 / 1000.0);
    let answers = |server: &Server| {
        let g = get(server, &format!("/api/v1/topology?{at}"));
        let changes = get(
            server,
            &format!(
                "/api/v1/topology/changes?kind=version&start={}&end={}",
                before_bump / 1000 - 1,
                after_bump / 1000 + 1
            ),
        );
        (
            entities(&g),
            relations(&g),
            entities(&get(
                server,
                &format!("/api/v1/topology/stack/service:budget?{at}"),
            )),
            get(
                server,
                &format!("/api/v1/topology/impact/database:ledger?{at}"),
            )["data"]["owners"]
                .clone(),
            changes["data"].clone(),
        )
    };
    let before = answers(&server);
    assert_eq!(before.0, want_entities);
    server.kill9();
    let server = Server::start_with(&data, &args);
    assert_eq!(answers(&server), before);
}
