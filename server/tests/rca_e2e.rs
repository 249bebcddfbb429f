//! Root cause on demand against the real binary: a small estate declared through the
//! inventory API (each entity with its own metric selector), two hours of latency
//! remote-written, a slowdown that starts in a database and shows in the service that calls
//! it and in the gateway above; `GET /api/v1/rca` for the gateway names the database first,
//! with the path, the evidence and the deploy marker recorded just before.

mod common;

use common::webhook::WebhookSink;
use common::{Server, now_ns, post_write, write_request};
use serde_json::{Value, json};

const STEP_MS: i64 = 60_000;

fn get(server: &Server, params: &[(&str, String)]) -> (u16, Value) {
    get_at(server, "/api/v1/rca", params)
}

/// GET: the status and the body as JSON (a plain-text error as a JSON string).
fn get_at(server: &Server, path: &str, params: &[(&str, String)]) -> (u16, Value) {
    let r = server
        .client()
        .get(server.url(path))
        .query(params)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| json!(text)),
    )
}

/// Declares gateway → budget → ledger (a database) and gateway → auth, each with its own
/// selector, and remote-writes two hours of latency, one sample a minute, in which ledger
/// and everything above it slow by 300 ms from `onset` on. Answers (now, onset) in ms.
fn slow_ledger_estate(server: &Server, slow_for_minutes: i64) -> (i64, i64) {
    let put = |path: &str, body: Value| {
        let r = server
            .client()
            .put(server.url(path))
            .json(&body)
            .send()
            .unwrap();
        let status = r.status();
        let v: Value = r.json().unwrap();
        assert!(status.is_success(), "{path}: {status} {v}");
        assert_eq!(v["data"]["errors"], json!([]), "{v}");
    };
    let entity = |kind: &str, name: &str| {
        json!({"kind": kind, "name": name,
               "attributes": {"sightline.promql_selector": format!("{{entity=\"{name}\"}}")}})
    };
    put(
        "/api/v1/topology/entities",
        json!({"entities": [
            entity("service", "gateway"), entity("service", "budget"),
            entity("service", "auth"), entity("database", "ledger"),
        ]}),
    );
    put(
        "/api/v1/topology/relations",
        json!({"relations": [
            {"from": "service:gateway", "to": "service:budget", "kind": "calls"},
            {"from": "service:gateway", "to": "service:auth", "kind": "calls"},
            {"from": "service:budget", "to": "database:ledger", "kind": "depends_on"},
        ]}),
    );

    // Two hours at one sample a minute; the database slows by 300 ms from `onset` on, and
    // the services above it by as much plus their own noise.
    let now = now_ns() / 1_000_000 / STEP_MS * STEP_MS;
    let start = now - 120 * STEP_MS;
    let onset = now - slow_for_minutes * STEP_MS;
    let base = [
        ("gateway", 0.120),
        ("budget", 0.080),
        ("auth", 0.020),
        ("ledger", 0.010),
    ];
    let mut series = Vec::new();
    for (i, (name, level)) in base.iter().enumerate() {
        let mut samples = Vec::new();
        let mut t = start;
        let mut k = 0u64;
        while t <= now {
            // Deterministic noise of ±3 % of the level.
            k = k
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407 + i as u64);
            let noise = ((k >> 33) % 61) as f64 / 1000.0 - 0.03;
            let slow = if t >= onset && *name != "auth" {
                0.3
            } else {
                0.0
            };
            samples.push((t, level * (1.0 + noise) + slow));
            t += STEP_MS;
        }
        series.push((
            vec![("__name__", "http_latency_seconds"), ("entity", *name)],
            samples,
        ));
    }
    let (status, text) = post_write(server, "default", write_request(&series));
    assert_eq!(status, 204, "{text}");
    (now, onset)
}

#[test]
fn a_slow_database_is_named_as_the_cause_of_a_slow_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (now, onset) = slow_ledger_estate(&server, 5);
    // A deploy of budget just before: shown with its cause entry.
    let r = server
        .client()
        .post(server.url("/api/v1/events"))
        .json(&json!({"service": "budget", "time": (onset - 2 * STEP_MS) / 1000, "version": "2.1"}))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    // Durable at the answer, applied to the graph just after.
    let deadline = std::time::Instant::now() + common::PATIENCE;
    loop {
        let v: Value = server
            .client()
            .get(server.url("/api/v1/topology/changes"))
            .query(&[("start", ((onset - 10 * STEP_MS) / 1000).to_string())])
            .send()
            .unwrap()
            .json()
            .unwrap();
        if v["data"].as_array().is_some_and(|c| !c.is_empty()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "deploy not applied: {v}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let params = vec![
        ("entity", "service:gateway".to_string()),
        ("time", (onset / 1000).to_string()),
        ("end", (now / 1000).to_string()),
        ("lookback", "3h".to_string()),
        ("metric", "http_latency_seconds".to_string()),
    ];
    let (status, v) = get(&server, &params);
    assert_eq!(status, 200, "{v}");
    let causes = v["data"]["causes"].as_array().unwrap();
    let first = &causes[0];
    assert_eq!(first["entity"], "database:ledger", "{v:#}");
    assert_eq!(first["candidate"], true);
    assert_eq!(first["kind"], "database");
    assert_eq!(
        first["path"],
        json!(["service:gateway", "service:budget", "database:ledger"])
    );
    assert_eq!(
        first["explains"],
        json!(["service:budget", "service:gateway"])
    );
    let evidence = &first["evidence"][0];
    assert_eq!(evidence["metric"], "http_latency_seconds");
    assert!(evidence["anomalous"].as_bool().unwrap(), "{evidence}");
    assert!(evidence["observed"].as_f64().unwrap() > 0.29, "{evidence}");
    // The services above follow; auth, unchanged, is not anomalous.
    let order: Vec<&str> = causes
        .iter()
        .map(|c| c["entity"].as_str().unwrap())
        .collect();
    assert_eq!(order.len(), 4, "{order:?}");
    let auth = causes
        .iter()
        .find(|c| c["entity"] == "service:auth")
        .unwrap();
    assert_eq!(auth["anomalous"], false, "{auth}");
    let budget = causes
        .iter()
        .find(|c| c["entity"] == "service:budget")
        .unwrap();
    assert_eq!(budget["changes"][0]["kind"], "deploy", "{budget}");
    assert_eq!(v["data"]["series"], 4);

    // Bad requests name what is wrong.
    let (status, v) = get(&server, &[("time", "1".into())]);
    assert_eq!(status, 400, "{v}");
    assert!(v.to_string().contains("entity"), "{v}");
    let (status, v) = get(&server, &[("entity", "service:nope".into())]);
    assert_eq!(status, 404, "{v}");
    let mut bad = params.clone();
    bad.push(("z", "-1".into()));
    let (status, v) = get(&server, &bad);
    assert_eq!(status, 400, "{v}");
}

/// Polls the incident list until `done` holds for one, and answers it.
fn wait_for_incident(server: &Server, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + common::PATIENCE;
    loop {
        let v: Value = server
            .client()
            .get(server.url("/api/v1/incidents"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        if let Some(i) = v["data"].as_array().unwrap().iter().find(|i| done(i)) {
            return i.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no incident as wanted: {v:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn incident(server: &Server, id: &str) -> (u16, Value) {
    get_at(server, &format!("/api/v1/incidents/{id}"), &[])
}

/// Two alerts on related entities (the slow database and the gateway above it) become one
/// incident with the database as its first cause; an operator acknowledges it; `kill -9`
/// keeps it, its causes and its state; resolving ends it.
#[test]
fn related_alerts_become_one_incident_with_its_cause_and_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        r#"groups:
- name: latency
  rules:
  - alert: GatewaySlow
    expr: http_latency_seconds{entity="gateway"} > 0.3
    labels: {service: gateway, severity: page}
    annotations: {summary: "gateway answers slowly"}
  - alert: LedgerSlow
    expr: http_latency_seconds{entity="ledger"} > 0.2
    labels: {entity: "database:ledger", severity: ticket}
  - alert: AuthSlow
    expr: http_latency_seconds{entity="auth"} > 0.2
    labels: {service: auth}
"#,
    )
    .unwrap();
    // The raw alerts go nowhere; each incident goes to its cause's owner.
    let sink = WebhookSink::start();
    let am = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am,
        format!(
            r#"
route:
  receiver: blackhole
  group_by: [incident]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['alertname="SightlineIncident"', 'owner="DBA team"']
      receiver: dba
receivers:
  - name: blackhole
  - name: dba
    webhook_configs:
      - url: {}
        send_resolved: true
"#,
            sink.url("/dba")
        ),
    )
    .unwrap();
    let config = dir.path().join("sightline.toml");
    std::fs::write(
        &config,
        format!(
            "[alerting]\nrule_files = [{:?}]\nevaluation_interval = \"1s\"\nalertmanager_config = {:?}\n[incidents]\ninterval = \"1s\"\nonset_lead = \"5m\"\nlookback = \"3h\"\n",
            rules.to_str().unwrap(),
            am.to_str().unwrap()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let args = ["--config", config.to_str().unwrap()];
    let server = Server::start_with(&data, &args);
    // Slow for the last four minutes: the analysis's onset (five minutes before the first
    // alert) falls just before it.
    slow_ledger_estate(&server, 4);
    // Owners: the DBA team for the database, a vendor for the gateway (core business).
    let r = server
        .client()
        .put(server.url("/api/v1/topology/entities"))
        .json(&json!({"entities": [
            {"id": "database:ledger", "owner": {"name": "DBA team", "contact": "dba@example.gov"},
             "attributes": {"sightline.promql_selector": "{entity=\"ledger\"}"}},
            {"id": "service:gateway", "owner": {"name": "Gateway vendor", "contact": "gw@vendor.example"},
             "criticality": "core",
             "attributes": {"sightline.promql_selector": "{entity=\"gateway\"}"}},
        ]}))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());

    let found = wait_for_incident(&server, |i| {
        i["signals"] == 2 && i["cause"]["entity"] == "database:ledger"
    });
    let id = found["id"].as_str().unwrap().to_string();
    assert_eq!(found["state"], "open", "{found}");
    let (status, inc) = incident(&server, &id);
    assert_eq!(status, 200, "{inc}");
    let inc = &inc["data"];
    assert_eq!(
        inc["entities"],
        json!(["database:ledger", "service:gateway"]),
        "{inc:#}"
    );
    assert_eq!(inc["causes"][0]["candidate"], true);
    // Advice: shed the non-critical caller of the slow database first, then cut it off.
    assert_eq!(inc["advice"][0]["kind"], "degrade", "{:#}", inc["advice"]);
    assert_eq!(inc["advice"][0]["target"], "service:budget");
    assert_eq!(inc["advice"][1]["kind"], "circuit_break");
    assert_eq!(inc["advice"][1]["spec"]["kind"], "DestinationRule");
    assert_eq!(
        inc["causes"][0]["detail"]["path"],
        json!(["service:gateway", "service:budget", "database:ledger"])
    );
    let kinds: Vec<&str> = inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"opened") && kinds.contains(&"analysed"),
        "{kinds:?}"
    );
    // One notification group, the incident's, to the database's owner, copied to the
    // gateway's.
    let deadline = std::time::Instant::now() + common::PATIENCE;
    while sink.received().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no notification");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (path, first) = sink.received()[0].clone();
    assert_eq!(path, "/dba");
    assert_eq!(first["groupLabels"], json!({"incident": id}), "{first:#}");
    let alert = &first["alerts"][0];
    assert_eq!(alert["labels"]["owner"], "DBA team");
    assert_eq!(alert["annotations"]["cc"], "gw@vendor.example", "{alert:#}");
    assert_eq!(alert["annotations"]["impacted_core"], "service:gateway");
    assert!(
        alert["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("likely cause database:ledger"),
        "{alert:#}"
    );
    // Auth did not slow down: no second incident.
    let all: Value = server
        .client()
        .get(server.url("/api/v1/incidents"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(all["data"].as_array().unwrap().len(), 1, "{all:#}");

    let r = server
        .client()
        .post(server.url(&format!("/api/v1/incidents/{id}/acknowledge")))
        .json(&json!({"by": "ana"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let acked: Value = r.json().unwrap();
    assert_eq!(acked["data"]["state"], "acknowledged");
    assert_eq!(acked["data"]["acknowledged_by"], "ana");

    // The CLI shows the same.
    let cli = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_sightline"))
            .args(args)
            .args(["--server", &server.url("")])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let shown = cli(&["incidents", "show", &id]);
    assert!(shown.contains("1. database:ledger"), "{shown}");
    assert!(shown.contains("1. degrade service:budget"), "{shown}");
    assert!(shown.contains("acknowledged"), "{shown}");
    let listed = cli(&["incidents", "list"]);
    assert!(
        listed.contains(&id) && listed.contains("cause database:ledger"),
        "{listed}"
    );

    server.kill9();
    let server = Server::start_with(&data, &args);
    let (status, after) = incident(&server, &id);
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["data"]["state"], "acknowledged");
    assert_eq!(after["data"]["causes"], inc["causes"]);

    let r = server
        .client()
        .post(server.url(&format!("/api/v1/incidents/{id}/resolve?by=ana")))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, resolved) = incident(&server, &id);
    assert_eq!(resolved["data"]["state"], "resolved");
    assert_eq!(resolved["data"]["resolved_by"], "ana");
    // The resolution goes to the same group. (The alerts still fire: they open a new
    // incident, notified in its own group.)
    let deadline = std::time::Instant::now() + common::PATIENCE;
    while !sink
        .received()
        .iter()
        .any(|(_, p)| p["status"] == "resolved" && p["groupLabels"]["incident"] == id.as_str())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no resolved notification"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for (_, p) in sink.received() {
        assert!(p["groupLabels"]["incident"].is_string(), "{p:#}");
        assert_eq!(p["alerts"].as_array().unwrap().len(), 1, "{p:#}");
    }

    // Bad requests name what is wrong.
    let (status, _) = incident(&server, "inc-999");
    assert_eq!(status, 404);
    let r = server
        .client()
        .get(server.url("/api/v1/incidents?state=bogus"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = server
        .client()
        .post(server.url(&format!("/api/v1/incidents/{id}/acknowledge")))
        .send()
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        400,
        "a resolved incident cannot be acknowledged"
    );
}
