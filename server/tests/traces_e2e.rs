//! Traces end to end on the real binary: OTLP/HTTP in (protobuf and JSON), Tempo's
//! trace-by-id API out (JSON v1 and v2, protobuf), bad spans refused one by one, and nothing
//! acknowledged lost across `kill -9`.

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{PATIENCE, Server, now_ns};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, TracesData};
use prost::Message;
use serde_json::{Value, json};

fn kv(k: &str, v: V) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn span(trace: [u8; 16], id: u8, parent: Option<u8>, name: &str, start: i64, ms: i64) -> Span {
    Span {
        trace_id: trace.to_vec(),
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: name.into(),
        kind: if parent.is_some() { 3 } else { 2 },
        start_time_unix_nano: start as u64,
        end_time_unix_nano: (start + ms * 1_000_000) as u64,
        attributes: vec![kv("http.response.status_code", V::IntValue(200))],
        ..Default::default()
    }
}

fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", V::StringValue(service.into()))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}

fn post_protobuf(server: &Server, tenant: &str, req: &ExportTraceServiceRequest) -> (u16, Vec<u8>) {
    let r = server
        .client()
        .post(format!("http://{}/v1/traces", server.otlp_http))
        .header("Content-Type", "application/x-protobuf")
        .header("X-Scope-OrgID", tenant)
        .body(req.encode_to_vec())
        .send()
        .unwrap();
    (r.status().as_u16(), r.bytes().unwrap().to_vec())
}

/// GET a trace by id until it has `want` spans (spans are searchable after the next commit).
fn wait_for_trace(server: &Server, tenant: &str, path: &str, want: usize) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let r = server
            .client()
            .get(server.url(path))
            .header("X-Scope-OrgID", tenant)
            .send()
            .unwrap();
        if r.status().is_success() {
            let v: Value = r.json().unwrap();
            let batches = v
                .get("batches")
                .or_else(|| v.pointer("/trace/resourceSpans"))
                .cloned()
                .unwrap_or(json!([]));
            let n: usize = batches
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|b| b["scopeSpans"].as_array().unwrap().clone())
                .map(|s| s["spans"].as_array().unwrap().len())
                .sum();
            if n >= want {
                return v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "trace {path} never had {want} spans"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn spans_sent_over_otlp_come_back_from_the_tempo_api_whole() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let t0 = now_ns();
    let trace = [0xab; 16];
    let hex = "ab".repeat(16);

    // Service A over protobuf, with one bad span that must not take the others down.
    let mut root = span(trace, 1, None, "GET /pay", t0, 30);
    root.status = Some(Status {
        code: 2,
        message: "downstream failed".into(),
    });
    let mut bad = span(trace, 9, Some(1), "end before start", t0, 1);
    bad.end_time_unix_nano = bad.start_time_unix_nano - 1;
    let (status, body) = post_protobuf(
        &server,
        "acme",
        &request(
            "svc-a",
            vec![
                root,
                span(trace, 2, Some(1), "call b", t0 + 1_000_000, 20),
                bad,
            ],
        ),
    );
    assert_eq!(status, 200);
    let answer = ExportTraceServiceResponse::decode(body.as_slice()).unwrap();
    let partial = answer.partial_success.expect("a partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial
            .error_message
            .contains("spans[2]: end_time_unix_nano"),
        "{}",
        partial.error_message
    );

    // Service B over OTLP/JSON (hex ids, as the OTLP/JSON encoding has them).
    let json_body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc-b"}}]},
        "scopeSpans": [{"scope": {"name": "b-lib"}, "spans": [{
            "traceId": hex, "spanId": "0303030303030303", "parentSpanId": "0202020202020202",
            "name": "SELECT accounts", "kind": 3,
            "startTimeUnixNano": (t0 + 2_000_000).to_string(),
            "endTimeUnixNano": (t0 + 12_000_000).to_string(),
            "attributes": [{"key": "db.system", "value": {"stringValue": "postgresql"}}]
        }]}]
    }]});
    let r = server
        .client()
        .post(format!("http://{}/v1/traces", server.otlp_http))
        .header("X-Scope-OrgID", "acme")
        .json(&json_body)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().unwrap(), json!({}));

    // v1 JSON: every span, parent links intact, ids base64 as Tempo renders them.
    let v1 = wait_for_trace(&server, "acme", &format!("/api/traces/{hex}"), 3);
    let spans: Vec<Value> = v1["batches"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["scopeSpans"].as_array().unwrap().clone())
        .flat_map(|s| s["spans"].as_array().unwrap().clone())
        .collect();
    assert_eq!(spans.len(), 3);
    let by_name = |n: &str| spans.iter().find(|s| s["name"] == n).unwrap().clone();
    assert_eq!(by_name("GET /pay")["traceId"], b64(&trace));
    assert!(by_name("GET /pay").get("parentSpanId").is_none());
    assert_eq!(by_name("call b")["parentSpanId"], b64(&[1; 8]));
    assert_eq!(by_name("SELECT accounts")["parentSpanId"], b64(&[2; 8]));
    assert_eq!(by_name("GET /pay")["status"]["code"], "STATUS_CODE_ERROR");
    assert_eq!(by_name("SELECT accounts")["kind"], "SPAN_KIND_CLIENT");

    // v2 JSON and protobuf carry the same trace.
    let v2 = wait_for_trace(&server, "acme", &format!("/api/v2/traces/{hex}"), 3);
    assert_eq!(v2["trace"]["resourceSpans"], v1["batches"]);
    let proto = server
        .client()
        .get(server.url(&format!("/api/traces/{hex}")))
        .header("X-Scope-OrgID", "acme")
        .header("Accept", "application/protobuf")
        .send()
        .unwrap();
    assert_eq!(proto.headers()["content-type"], "application/protobuf");
    let data = TracesData::decode(proto.bytes().unwrap()).unwrap();
    let names: Vec<String> = data
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");

    // Another tenant does not see the trace; bad and unknown ids are clear 4xx.
    let get = |path: &str, tenant: &str| {
        let r = server
            .client()
            .get(server.url(path))
            .header("X-Scope-OrgID", tenant)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(get(&format!("/api/traces/{hex}"), "other").0, 404);
    let (code, text) = get("/api/traces/not-hex", "acme");
    assert_eq!(code, 400);
    assert!(text.contains("invalid trace id \"not-hex\""), "{text}");
    let (code, text) = get(&format!("/api/traces/{}", "cd".repeat(16)), "acme");
    assert_eq!(
        (code, text.trim()),
        (
            404,
            format!("trace not found: {}", "cd".repeat(16)).as_str()
        )
    );
    assert_eq!(get("/api/echo", "acme"), (200, "echo".to_string()));

    // Search: TraceQL by status, attribute, duration and structure; tags; bad queries.
    let search = |q: &str| -> Value {
        let r = server
            .client()
            .get(server.url("/api/search"))
            .header("X-Scope-OrgID", "acme")
            .query(&[("q", q), ("start", &(t0 / 1_000_000_000 - 60).to_string())])
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{q}");
        r.json().unwrap()
    };
    let found = |q: &str| -> Vec<String> {
        search(q)["traces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["traceID"].as_str().unwrap().to_string())
            .collect()
    };
    let ours = vec![hex.clone()];
    assert_eq!(found("{ status = error }"), ours);
    assert_eq!(
        found(r#"{ resource.service.name = "svc-b" && span.db.system = "postgresql" }"#),
        ours
    );
    assert_eq!(found("{ duration > 25ms }"), ours);
    assert!(found("{ duration > 1h }").is_empty());
    assert_eq!(
        found(r#"{ name = "GET /pay" } > { name = "call b" }"#),
        ours
    );
    assert!(found(r#"{ name = "call b" } > { name = "GET /pay" }"#).is_empty());
    assert_eq!(
        found(r#"{ .db.system = "postgresql" } | count() = 1"#),
        ours
    );
    assert_eq!(found(r#"{ rootServiceName = "svc-a" }"#), ours);
    let answer = search("{ kind = client }");
    let t = &answer["traces"][0];
    assert_eq!(t["rootServiceName"], "svc-a");
    assert_eq!(t["rootTraceName"], "GET /pay");
    assert_eq!(t["durationMs"], 30);
    assert_eq!(t["spanSet"]["matched"], 2, "{answer}");
    let tags = server
        .client()
        .get(server.url("/api/search"))
        .header("X-Scope-OrgID", "acme")
        .query(&[
            ("tags", "db.system=postgresql service.name=svc-b"),
            ("start", &(t0 / 1_000_000_000 - 60).to_string()),
        ])
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    assert_eq!(tags["traces"][0]["traceID"], hex.as_str(), "{tags}");
    let r = server
        .client()
        .get(server.url("/api/search"))
        .header("X-Scope-OrgID", "acme")
        .query(&[("q", "{ .a = }")])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let text = r.text().unwrap();
    assert!(text.contains("line 1, column"), "{text}");

    // TraceQL metrics: spans counted per service over the window, and refused on /api/search.
    let metrics = |q: &str| -> Value {
        server
            .client()
            .get(server.url("/api/metrics/query_range"))
            .header("X-Scope-OrgID", "acme")
            .query(&[
                ("q", q),
                ("start", &(t0 / 1_000_000_000 - 60).to_string()),
                ("end", &(t0 / 1_000_000_000 + 60).to_string()),
                ("step", "60s"),
            ])
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let by_service = metrics("{ } | count_over_time() by (resource.service.name)");
    let mut totals: Vec<(String, f64)> = by_service["series"]
        .as_array()
        .unwrap_or_else(|| panic!("{by_service}"))
        .iter()
        .map(|s| {
            let total: f64 = s["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["value"].as_f64().unwrap())
                .sum();
            (
                s["labels"][0]["value"]["stringValue"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                total,
            )
        })
        .collect();
    totals.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        totals,
        vec![("svc-a".into(), 2.0), ("svc-b".into(), 1.0)],
        "{by_service}"
    );
    let errors = metrics("{ status = error } | count_over_time()");
    let n: f64 = errors["series"][0]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .sum();
    assert_eq!(n, 1.0, "{errors}");
    let r = server
        .client()
        .get(server.url("/api/search"))
        .query(&[("q", "{ } | rate()")])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    let json_of = |path: &str| -> Value {
        server
            .client()
            .get(server.url(path))
            .header("X-Scope-OrgID", "acme")
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let v1 = json_of("/api/search/tags");
    let names: Vec<&str> = v1["tagNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"db.system") && names.contains(&"service.name"),
        "{v1}"
    );
    let v2 = json_of("/api/v2/search/tags?scope=resource");
    assert_eq!(v2["scopes"][0]["name"], "resource");
    assert_eq!(v2["scopes"].as_array().unwrap().len(), 1);
    let services = json_of("/api/v2/search/tag/resource.service.name/values");
    assert_eq!(
        services["tagValues"],
        json!([{"type": "string", "value": "svc-a"}, {"type": "string", "value": "svc-b"}])
    );
    let codes = json_of("/api/search/tag/http.response.status_code/values");
    assert_eq!(codes["tagValues"], json!(["200"]));
    let status = json_of("/api/v2/search/tag/status/values");
    assert_eq!(
        status["tagValues"][0],
        json!({"type": "keyword", "value": "error"})
    );

    // Logs ↔ traces: a log line written inside the trace is one LogQL query away, and the
    // trace id it carries opens the trace.
    let log = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc-b"}}]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": (t0 + 3_000_000).to_string(),
            "severityText": "ERROR",
            "body": {"stringValue": format!("deadlock detected on accounts trace_id={hex}")},
            "traceId": hex, "spanId": "0303030303030303"
        }]}]
    }]});
    let r = server
        .client()
        .post(format!("http://{}/v1/logs", server.otlp_http))
        .header("X-Scope-OrgID", "acme")
        .json(&log)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        server.wait_for_count(
            "acme",
            &format!(r#"{{service_name="svc-b"}} | trace_id="{hex}""#),
            1
        ),
        1
    );
    let lines = server.query_range(
        "acme",
        &format!(r#"{{service_name="svc-b"}} | trace_id="{hex}" | span_id="0303030303030303""#),
        t0 - 1_000_000_000,
        t0 + 60_000_000_000,
        10,
    );
    let stream = &lines["data"]["result"][0];
    let line = stream["values"][0][1].as_str().unwrap();
    let carried = line
        .split_once("trace_id=")
        .map(|(_, id)| id)
        .unwrap_or_else(|| panic!("no trace_id in the line: {lines}"));
    assert_eq!(get(&format!("/api/traces/{carried}"), "acme").0, 200);

    // The CLI: a trace as a tree, a search as a table, a query checked offline.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sightline"))
            .args(args)
            .args(["--server", &server.url(""), "--tenant", "acme"])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, tree) = cli(&["traces", "get", &hex]);
    assert!(ok, "{tree}");
    let lines: Vec<&str> = tree.lines().collect();
    assert!(
        lines[0].starts_with("svc-a GET /pay  +0.000 ms  30.000 ms  ERROR"),
        "{tree}"
    );
    assert!(lines[1].starts_with("  svc-a call b"), "{tree}");
    assert!(lines[2].starts_with("    svc-b SELECT accounts"), "{tree}");
    let (ok, table) = cli(&["traces", "search", "{ status = error }", "--since", "1h"]);
    assert!(
        ok && table.contains(&hex) && table.contains("svc-a: GET /pay"),
        "{table}"
    );
    let check = |q: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sightline"))
            .args(["traces", "check", q])
            .output()
            .unwrap()
    };
    let good = check("{ span.http.route = \"/pay\" } >> { status = error }");
    assert!(good.status.success());
    let bad = check("{ .a = }");
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("syntax error at line 1, column 8"), "{err}");
}

#[test]
fn kill_9_during_trace_ingest_loses_no_acknowledged_span() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let t0 = now_ns();
    let mut acked = Vec::new();
    for i in 0..200u32 {
        let mut trace = [0u8; 16];
        trace[..4].copy_from_slice(&i.to_be_bytes());
        trace[15] = 1;
        let spans = (1..=5u8)
            .map(|j| span(trace, j, (j > 1).then_some(1), "op", t0 + i64::from(j), 1))
            .collect();
        let (status, _) = post_protobuf(&server, "t", &request("svc", spans));
        assert_eq!(status, 200);
        acked.push(trace);
    }
    server.kill9();
    let server = Server::start(dir.path());
    for trace in &acked {
        let hex: String = trace.iter().map(|b| format!("{b:02x}")).collect();
        let v = wait_for_trace(&server, "t", &format!("/api/traces/{hex}"), 5);
        let n: usize = v["batches"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(n, 5, "trace {hex}");
    }
}

#[test]
fn bad_trace_input_gets_clear_answers_and_good_spans_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let t0 = now_ns();
    let post = |content_type: &str, body: Vec<u8>| {
        let r = server
            .client()
            .post(format!("http://{}/v1/traces", server.otlp_http))
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };

    // Malformed protobuf and JSON: 400 naming what and where.
    let (code, text) = post("application/x-protobuf", vec![0x0a, 0xff, 0xff, 0x01]);
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("invalid protobuf"), "{text}");
    let (code, text) = post(
        "application/json",
        br#"{"resourceSpans": [{"scopeSpans": [}"#.to_vec(),
    );
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("line 1, column"), "{text}");

    // Bad ids and a 1 MiB attribute value: refused one by one, the good span kept.
    let good_trace = [0x11; 16];
    let mut zero_id = span([0; 16], 1, None, "zero trace id", t0, 1);
    zero_id.trace_id = vec![0; 16];
    let mut short = span(good_trace, 2, None, "short span id", t0, 1);
    short.span_id = vec![1, 2, 3];
    let mut huge = span(good_trace, 3, None, "huge attribute", t0, 1);
    huge.attributes
        .push(kv("payload", V::StringValue("x".repeat(1 << 20))));
    let good = span(good_trace, 4, None, "good", t0, 1);
    let (code, body) = {
        let r = server
            .client()
            .post(format!("http://{}/v1/traces", server.otlp_http))
            .header("Content-Type", "application/x-protobuf")
            .body(request("svc", vec![zero_id, short, huge, good]).encode_to_vec())
            .send()
            .unwrap();
        (r.status().as_u16(), r.bytes().unwrap())
    };
    assert_eq!(code, 200);
    let partial = ExportTraceServiceResponse::decode(body)
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_spans, 3);
    let m = &partial.error_message;
    assert!(m.contains("spans[0]: trace_id is all zero"), "{m}");
    assert!(m.contains("spans[1]: span_id is 3 bytes long"), "{m}");
    assert!(m.contains("spans[2]: attributes of 1048"), "{m}");
    let hex: String = good_trace.iter().map(|b| format!("{b:02x}")).collect();
    let v = wait_for_trace(&server, "default", &format!("/api/traces/{hex}"), 1);
    assert_eq!(v["batches"][0]["scopeSpans"][0]["spans"][0]["name"], "good");

    // A 20,000-span trace (in four requests) is stored and given back whole.
    let big = [0x22; 16];
    for chunk in 0..4u32 {
        let spans = (0..5_000u32)
            .map(|i| {
                let n = chunk * 5_000 + i;
                let mut s = span(big, 0, (n > 0).then_some(0), "step", t0 + i64::from(n), 1);
                s.span_id = (u64::from(n) + 1).to_be_bytes().to_vec();
                s.parent_span_id = if n == 0 {
                    vec![]
                } else {
                    1u64.to_be_bytes().to_vec()
                };
                s
            })
            .collect();
        let (status, _) = post_protobuf(&server, "default", &request("big", spans));
        assert_eq!(status, 200);
    }
    let hex: String = big.iter().map(|b| format!("{b:02x}")).collect();
    wait_for_trace(&server, "default", &format!("/api/traces/{hex}"), 20_000);
    let proto = server
        .client()
        .get(server.url(&format!("/api/traces/{hex}")))
        .header("Accept", "application/protobuf")
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let n: usize = TracesData::decode(proto)
        .unwrap()
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    assert_eq!(n, 20_000);

    // Malformed TraceQL: 400 with the position; too deep a nesting is refused by its limit.
    let r = server
        .client()
        .get(server.url("/api/search"))
        .query(&[("q", "{ status = }")])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().unwrap().contains("line 1, column 12"));
    let r = server
        .client()
        .get(server.url("/api/search"))
        .query(&[(
            "q",
            format!("{{ {}true{} }}", "(".repeat(2_000), ")".repeat(2_000)),
        )])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let text = r.text().unwrap();
    assert!(
        text.contains("invalid TraceQL") && text.contains("64"),
        "{}",
        &text[..text.len().min(300)]
    );
    // The server is still up.
    assert_eq!(
        server
            .client()
            .get(server.url("/readyz"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}
