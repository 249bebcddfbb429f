//! Root cause on demand against the real binary: a small estate declared through the
//! inventory API (each entity with its own metric selector), two hours of latency
//! remote-written, a slowdown that starts in a database and shows in the service that calls
//! it and in the gateway above; `GET /api/v1/rca` for the gateway names the database first,
//! with the path, the evidence and the deploy marker recorded just before.

mod common;

use common::{Server, now_ns, post_write, write_request};
use serde_json::{Value, json};

const STEP_MS: i64 = 60_000;

fn get(server: &Server, params: &[(&str, String)]) -> (u16, Value) {
    let r = server
        .client()
        .get(server.url("/api/v1/rca"))
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

#[test]
fn a_slow_database_is_named_as_the_cause_of_a_slow_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
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
    let onset = now - 5 * STEP_MS;
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
    let (status, text) = post_write(&server, "default", write_request(&series));
    assert_eq!(status, 204, "{text}");
    // A deploy of budget just before: shown with its cause entry.
    let r = server
        .client()
        .post(server.url("/api/v1/events"))
        .json(&json!({"service": "budget", "time": (onset - 2 * STEP_MS) / 1000, "version": "2.1"}))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());

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
