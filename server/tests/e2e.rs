//! End-to-end tests against the real binary: ingest over each HTTP protocol, query through the
//! Loki API, bad input, graceful shutdown and crash safety.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{Server, loki_push_json, now_ns};
use prost::Message;
use rand::Rng;
use serde_json::{Value, json};

fn loki_values(n: usize, prefix: &str, base_ns: i64) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!([
                (base_ns + i as i64).to_string(),
                format!("{prefix} line {i} status=200")
            ])
        })
        .collect()
}

#[test]
fn loki_push_json_and_snappy_protobuf_are_queryable_with_labels() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let base = now_ns() - 60_000_000_000;
    let body = json!({"streams": [
        {"stream": {"service_name": "checkout", "env": "prod"}, "values": loki_values(300, "json", base)},
        {"stream": {"service_name": "billing", "env": "prod"},
         "values": [[base.to_string(), "with metadata", {"trace_id": "abc123"}]]},
    ]});
    let (status, text) = loki_push_json(&server, "team-a", &body);
    assert_eq!(status, 204, "{text}");

    use sightline_collector::loki_push::proto::{EntryAdapter, PushRequest, StreamAdapter};
    let req = PushRequest {
        streams: vec![StreamAdapter {
            labels: br#"{service_name="inventory", env="dev"}"#.to_vec(),
            entries: (0..200)
                .map(|i| EntryAdapter {
                    timestamp: Some(prost_types::Timestamp {
                        seconds: base / 1_000_000_000,
                        nanos: (base % 1_000_000_000) as i32 + i,
                    }),
                    line: format!("proto line {i}").into_bytes(),
                    structured_metadata: vec![],
                })
                .collect(),
            hash: 0,
        }],
    };
    let compressed = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let r = server
        .client()
        .post(server.url("/loki/api/v1/push"))
        .header("X-Scope-OrgID", "team-a")
        .header("Content-Type", "application/x-protobuf")
        .body(compressed)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204, "{}", r.text().unwrap());

    assert_eq!(
        server.wait_for_count("team-a", r#"{service_name="checkout"}"#, 300),
        300
    );
    assert_eq!(
        server.wait_for_count("team-a", r#"{service_name="inventory"}"#, 200),
        200
    );
    assert_eq!(server.count("team-a", r#"{env="prod"}"#), 301);
    // Tenants are isolated.
    assert_eq!(server.count("default", r#"{env="prod"}"#), 0);

    // Log query: limit, direction, line filters and label filter on structured metadata.
    let end = now_ns() + 1_000_000_000;
    let v = server.query_range(
        "team-a",
        r#"{service_name="checkout"} |= "line 29""#,
        base - 1,
        end,
        1000,
    );
    let values = v["data"]["result"][0]["values"].as_array().unwrap();
    // "line 29" and "line 290".."line 299".
    assert_eq!(values.len(), 11, "{v}");
    assert_eq!(v["data"]["result"][0]["stream"]["service_name"], "checkout");
    let v = server.query_range(
        "team-a",
        r#"{env="prod"} | trace_id="abc123""#,
        base - 1,
        end,
        1000,
    );
    assert_eq!(
        v["data"]["result"][0]["values"][0][1], "with metadata",
        "{v}"
    );
    let v = server.query_range("team-a", r#"{service_name="checkout"}"#, base - 1, end, 5);
    let values = v["data"]["result"][0]["values"].as_array().unwrap();
    assert_eq!(values.len(), 5);
    assert_eq!(
        values[0][1], "json line 299 status=200",
        "backward is newest first"
    );

    let labels: Value = server
        .client()
        .get(server.url("/loki/api/v1/labels"))
        .header("X-Scope-OrgID", "team-a")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(labels["data"], json!(["env", "service_name"]));
    let values: Value = server
        .client()
        .get(server.url("/loki/api/v1/label/service_name/values"))
        .header("X-Scope-OrgID", "team-a")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(values["data"], json!(["billing", "checkout", "inventory"]));
    let series: Value = server
        .client()
        .get(server.url("/loki/api/v1/series"))
        .header("X-Scope-OrgID", "team-a")
        .query(&[("match[]", r#"{env="prod"}"#)])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(series["data"].as_array().unwrap().len(), 2, "{series}");
}

fn otlp_request(
    service: &str,
    n: usize,
    base_ns: i64,
) -> opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", service), kv("k8s.pod.name", "pod-1")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: (0..n)
                    .map(|i| LogRecord {
                        time_unix_nano: (base_ns + i as i64) as u64,
                        severity_number: 9,
                        severity_text: "INFO".into(),
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(format!("otlp record {i}"))),
                        }),
                        attributes: vec![kv("http.method", "GET")],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn otlp_http_protobuf_json_and_gzip_are_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let base = now_ns() - 30_000_000_000;
    let url = format!("http://{}/v1/logs", server.otlp_http);
    let proto = otlp_request("otlp-proto", 250, base).encode_to_vec();
    let r = server
        .client()
        .post(&url)
        .header("Content-Type", "application/x-protobuf")
        .body(proto.clone())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&otlp_request("otlp-gzip", 100, base).encode_to_vec())
        .unwrap();
    let r = server
        .client()
        .post(&url)
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());

    let json_body = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "otlp-json"}}]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": base.to_string(),
            "severityNumber": 17,
            "severityText": "ERROR",
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": "eee19b7ec3c1b174",
            "body": {"stringValue": "payment failed"}
        }]}]
    }]});
    let r = server
        .client()
        .post(&url)
        .header("Content-Type", "application/json")
        .body(json_body.to_string())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());

    assert_eq!(
        server.wait_for_count("default", r#"{service_name="otlp-proto"}"#, 250),
        250
    );
    assert_eq!(
        server.wait_for_count("default", r#"{service_name="otlp-gzip"}"#, 100),
        100
    );
    assert_eq!(
        server.wait_for_count("default", r#"{service_name="otlp-json"}"#, 1),
        1
    );
    let end = now_ns() + 1_000_000_000;
    let v = server.query_range(
        "default",
        r#"{service_name="otlp-json"} | trace_id="5b8efff798038103d269b633813fc60c" | severity_text="ERROR""#,
        base - 1,
        end,
        10,
    );
    assert_eq!(
        v["data"]["result"][0]["values"][0][1], "payment failed",
        "{v}"
    );
    let v = server.query_range(
        "default",
        r#"{k8s_pod_name="pod-1", service_name="otlp-proto"}"#,
        base - 1,
        end,
        1,
    );
    assert_eq!(
        v["data"]["result"][0]["stream"]["k8s_pod_name"], "pod-1",
        "{v}"
    );
}

#[test]
fn bad_input_gets_clear_4xx_and_good_requests_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let base = now_ns() - 10_000_000_000;
    // Good traffic in parallel with every bad request below.
    let good = {
        let url = server.url("/loki/api/v1/push");
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            for b in 0..40 {
                let body = json!({"streams": [{"stream": {"service_name": "good"},
                    "values": loki_values(50, &format!("good {b}"), base + b * 1000)}]});
                let r = client.post(&url).json(&body).send().unwrap();
                assert_eq!(r.status().as_u16(), 204);
            }
        })
    };
    let post =
        |url: String, ctype: &str, encoding: Option<&str>, body: Vec<u8>, tenant: Option<&str>| {
            let mut req = server
                .client()
                .post(url)
                .header("Content-Type", ctype)
                .body(body);
            if let Some(e) = encoding {
                req = req.header("Content-Encoding", e);
            }
            if let Some(t) = tenant {
                req = req.header("X-Scope-OrgID", t);
            }
            let r = req.send().unwrap();
            (r.status().as_u16(), r.text().unwrap_or_default())
        };
    let otlp = format!("http://{}/v1/logs", server.otlp_http);
    let loki = server.url("/loki/api/v1/push");

    let (s, t) = post(
        otlp.clone(),
        "application/x-protobuf",
        None,
        vec![0xff, 0xff, 0xff, 0x01, 0x02],
        None,
    );
    assert_eq!(s, 400, "{t}");
    assert!(t.to_lowercase().contains("protobuf"), "{t}");

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&otlp_request("x", 100, base).encode_to_vec())
        .unwrap();
    let mut truncated = gz.finish().unwrap();
    truncated.truncate(truncated.len() / 2);
    let (s, t) = post(
        otlp.clone(),
        "application/x-protobuf",
        Some("gzip"),
        truncated,
        None,
    );
    assert_eq!(s, 400, "{t}");
    assert!(t.to_lowercase().contains("gzip"), "{t}");

    let (s, t) = post(
        loki.clone(),
        "application/x-protobuf",
        None,
        b"definitely not snappy".to_vec(),
        None,
    );
    assert_eq!(s, 400, "{t}");
    assert!(t.to_lowercase().contains("snappy"), "{t}");

    let (s, t) = post(
        loki.clone(),
        "application/json",
        None,
        br#"{"streams": [ {"stream": }"#.to_vec(),
        None,
    );
    assert_eq!(s, 400, "{t}");
    assert!(t.contains("JSON") && t.contains("column"), "{t}");

    let (s, t) = post(
        loki.clone(),
        "application/json",
        None,
        br#"{"streams": []}"#.to_vec(),
        Some("bad/tenant"),
    );
    assert_eq!(s, 400, "{t}");
    assert!(t.contains("'/'"), "{t}");

    // Partial acceptance: the valid entries are stored, the answer names the rejected ones.
    let body = json!({"streams": [
        {"stream": {"service_name": "partial"}, "values": [
            [base.to_string(), "valid one"], ["not-a-time", "bad ts"], [(base + 1).to_string(), "valid two"]]},
        {"stream": {"bad-label": "x"}, "values": [[base.to_string(), "bad labels"]]},
    ]});
    let (s, t) = loki_push_json(&server, "default", &body);
    assert_eq!(s, 400, "{t}");
    assert!(t.contains("not-a-time") && t.contains("bad-label"), "{t}");

    // LogQL syntax errors name line and column.
    let r = server
        .client()
        .get(server.url("/loki/api/v1/query_range"))
        .query(&[("query", "{service_name=\"x\"} |= ")])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let t = r.text().unwrap();
    assert!(t.contains("parse error at line 1, col"), "{t}");

    // A 1 MiB syslog line is refused; the next line on the same connection is stored.
    let mut tcp = std::net::TcpStream::connect(server.syslog_tcp).unwrap();
    let mut huge = b"<13>1 2024-01-01T00:00:00Z host app - - - ".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 1 << 20));
    huge.push(b'\n');
    tcp.write_all(&huge).unwrap();
    tcp.write_all(b"<13>1 - host syslog-after-huge - - - still here\n")
        .unwrap();
    drop(tcp);

    good.join().unwrap();
    assert_eq!(
        server.wait_for_count("default", r#"{service_name="good"}"#, 2000),
        2000
    );
    assert_eq!(
        server.wait_for_count("default", r#"{service_name="partial"}"#, 2),
        2
    );
    assert_eq!(
        server.wait_for_count("default", r#"{service_name="syslog-after-huge"}"#, 1),
        1
    );
    let metrics = server
        .client()
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("sightline_collector_records_rejected_total"),
        "{metrics}"
    );
    assert!(metrics.contains("message_too_long"), "{metrics}");
    // Still alive after all of it.
    assert_eq!(
        server
            .client()
            .get(server.url("/healthz"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

/// Regression: unknown paths answered 404 with an empty body.
#[test]
fn unknown_paths_answer_404_naming_the_path_in_the_api_shape() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let get = |url: String| {
        let r = server.client().get(url).send().unwrap();
        let status = r.status().as_u16();
        let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
        (status, ctype, r.text().unwrap())
    };
    let (status, ctype, body) = get(server.url("/api/v1/qeury?query=up"));
    assert_eq!(
        (status, ctype.as_str()),
        (404, "application/json"),
        "{body}"
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "not_found");
    assert!(
        v["error"].as_str().unwrap().contains("/api/v1/qeury"),
        "{v}"
    );

    let (status, ctype, body) = get(server.url("/loki/api/v1/qeury_range"));
    assert_eq!(status, 404);
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    assert!(body.contains("/loki/api/v1/qeury_range"), "{body}");

    let (status, ctype, body) = get(server.url("/nothing/here"));
    assert_eq!(
        (status, ctype.as_str()),
        (404, "application/json"),
        "{body}"
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("/nothing/here"),
        "{v}"
    );

    // A route that exists for other methods: 405 in the same shape.
    let (status, _, body) = get(server.url("/api/v1/write"));
    assert_eq!(status, 405, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["error"].as_str().unwrap().contains("GET"), "{v}");

    // The OTLP/HTTP port: google.rpc.Status in JSON, code NOT_FOUND (5).
    let (status, ctype, body) = get(format!("http://{}/v1/log", server.otlp_http));
    assert_eq!(
        (status, ctype.as_str()),
        (404, "application/json"),
        "{body}"
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], 5);
    assert!(v["message"].as_str().unwrap().contains("/v1/log"), "{v}");
}

#[test]
fn sigterm_flushes_and_data_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let base = now_ns() - 5_000_000_000;
    let body = json!({"streams": [{"stream": {"service_name": "restart"}, "values": loki_values(123, "r", base)}]});
    assert_eq!(loki_push_json(&server, "default", &body).0, 204);
    assert_eq!(server.terminate(), Some(0));
    let server = Server::start(dir.path());
    assert_eq!(server.count("default", r#"{service_name="restart"}"#), 123);
}

/// Streams batches, SIGKILLs the server at a random moment, restarts it, and checks every
/// acknowledged batch; five rounds on the same data directory.
#[test]
fn sigkill_loses_no_acknowledged_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rng();
    let mut acked_per_round: Vec<Vec<u64>> = Vec::new();
    for round in 0..5 {
        let server = Server::start(dir.path());
        // Everything acknowledged in earlier rounds is still there.
        for (r, acked) in acked_per_round.iter().enumerate() {
            let n = server.count("default", &format!(r#"{{job="crash-{r}"}}"#));
            // Batches written but not yet acknowledged at the kill may be there too.
            assert!(
                n >= acked.len() as u64 * 50,
                "round {r} after restart {round}: {n}"
            );
        }
        let url = server.url("/loki/api/v1/push");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let client = std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let mut acked = Vec::new();
            let base = now_ns() - 60_000_000_000;
            for batch in 0u64.. {
                if stop2.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let body = json!({"streams": [{"stream": {"job": format!("crash-{round}"), "batch": batch.to_string()},
                    "values": loki_values(50, &format!("b{batch}"), base + batch as i64 * 100)}]});
                match client.post(&url).json(&body).send() {
                    Ok(r) if r.status().as_u16() == 204 => acked.push(batch),
                    _ => break,
                }
            }
            acked
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(100..1500)));
        server.kill9();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let acked = client.join().unwrap();
        assert!(
            !acked.is_empty(),
            "round {round}: nothing was acknowledged before the kill"
        );
        let server = Server::start(dir.path());
        let v = server.query(
            "default",
            &format!(r#"sum by (batch) (count_over_time({{job="crash-{round}"}}[1d]))"#),
            now_ns(),
        );
        let mut counts = std::collections::HashMap::new();
        for s in v["data"]["result"].as_array().unwrap() {
            let batch: u64 = s["metric"]["batch"].as_str().unwrap().parse().unwrap();
            counts.insert(
                batch,
                s["value"][1].as_str().unwrap().parse::<f64>().unwrap() as u64,
            );
        }
        for b in &acked {
            assert_eq!(
                counts.get(b),
                Some(&50),
                "round {round}: acknowledged batch {b} lost"
            );
        }
        eprintln!(
            "round {round}: {} batches acknowledged before SIGKILL, all found",
            acked.len()
        );
        acked_per_round.push(acked);
        server.kill9();
    }
}

/// Patterns at ingest: the patterns API counts like brute force, `| pattern_id` selects a
/// pattern's lines, ids survive a restart, and a shape new after a deploy is first seen then.
#[test]
fn log_patterns_are_counted_filterable_and_stable_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sec = 1_000_000_000i64;
    let base = now_ns() - 600 * sec;
    let lines = |from: i64, n: i64, shape: fn(i64) -> String| -> Vec<Value> {
        (0..n)
            .map(|i| json!([(from + i * 1_000_000).to_string(), shape(from / sec + i)]))
            .collect()
    };
    let orders = |i: i64| format!("GET /orders/{i} status=200 took {}ms", i % 90);
    let logins = |i: i64| format!("user u{i} logged in from 10.1.0.{}", i % 200);
    let warmup = |i: i64| format!("cache warmup of shard {} failed: timeout", i % 16);
    let push = |server: &Server, values: Vec<Value>| {
        let body = json!({"streams": [{"stream": {"service_name": "shop"}, "values": values}]});
        assert_eq!(loki_push_json(server, "default", &body).0, 204);
    };
    let patterns = |server: &Server| -> Vec<Value> {
        let v: Value = server
            .client()
            .get(server.url("/api/v1/patterns"))
            .query(&[
                ("query", r#"{service_name="shop"}"#.to_string()),
                ("start", (base - sec).to_string()),
                ("end", now_ns().to_string()),
                ("step", "60s".to_string()),
            ])
            .send()
            .unwrap()
            .json()
            .unwrap();
        v["data"].as_array().unwrap().clone()
    };
    let find = |ps: &[Value], needle: &str| -> Value {
        ps.iter()
            .find(|p| p["sample"]["line"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no pattern for {needle} in {ps:?}"))
            .clone()
    };

    let server = Server::start(dir.path());
    push(&server, lines(base, 60, orders));
    push(&server, lines(base + 100 * sec, 30, logins));
    assert_eq!(
        server.wait_for_count("default", r#"{service_name="shop"}"#, 90),
        90
    );
    let ps = patterns(&server);
    assert_eq!(ps.len(), 2, "{ps:?}");
    let order_pattern = find(&ps, "GET /orders/");
    assert_eq!(order_pattern["count"], 60);
    assert_eq!(find(&ps, "logged in")["count"], 30);
    let series_total: u64 = order_pattern["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_str().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(series_total, 60);
    let order_id = order_pattern["pattern_id"].as_str().unwrap().to_string();
    let filtered = server.query_range(
        "default",
        &format!(r#"{{service_name="shop"}} | pattern_id="{order_id}""#),
        base - sec,
        now_ns(),
        1000,
    );
    let filtered_lines: usize = filtered["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["values"].as_array().unwrap().len())
        .sum();
    assert_eq!(filtered_lines, 60);
    assert_eq!(server.terminate(), Some(0));

    // Restart, then a deploy brings a new shape alongside the old ones.
    let server = Server::start(dir.path());
    let deploy_ms = (now_ns() - 60 * sec) / 1_000_000;
    push(&server, lines(base + 300 * sec, 10, orders));
    push(&server, lines(now_ns() - 60 * sec, 5, warmup));
    assert_eq!(
        server.wait_for_count("default", r#"{service_name="shop"}"#, 105),
        105
    );
    let ps = patterns(&server);
    let order_pattern = find(&ps, "GET /orders/");
    assert_eq!(order_pattern["pattern_id"].as_str().unwrap(), order_id);
    assert_eq!(order_pattern["count"], 70);
    let new = find(&ps, "cache warmup");
    assert_eq!(new["count"], 5);
    assert_ne!(new["pattern_id"], order_pattern["pattern_id"]);
    let first_seen = chrono::DateTime::parse_from_rfc3339(new["first_seen"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    assert!(first_seen >= deploy_ms, "{first_seen} < {deploy_ms}");
}

/// Two servers on one data directory used to both come up and write one WAL.
#[test]
fn second_server_on_the_same_data_dir_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let first = Server::start(dir.path());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sightline"))
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--http-addr", "127.0.0.1:0"])
        .args(["--otlp-grpc-addr", "127.0.0.1:0"])
        .args(["--otlp-http-addr", "127.0.0.1:0"])
        .args(["--syslog-addr", "127.0.0.1:0"])
        .args(["--self-scrape", "false"])
        .env_remove("SIGHTLINE_CONFIG")
        .output()
        .expect("run a second sightline");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "second server started: {stderr}");
    let holder = format!("is in use by sightline (pid {}", first.pid());
    assert!(stderr.contains(&holder), "{stderr}");
    // The first one is unharmed.
    assert!(
        first
            .client()
            .get(first.url("/readyz"))
            .send()
            .unwrap()
            .status()
            .is_success()
    );
    assert_eq!(first.terminate(), Some(0));
}
