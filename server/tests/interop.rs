//! Interoperability with real clients: the OpenTelemetry Python SDK (OTLP/gRPC and
//! OTLP/HTTP log and metric exporters) and util-linux `logger` (RFC 5424 over TCP and UDP,
//! RFC 3164). The Prometheus peer has its own file, `promql_diff.rs`.
//! Needs Python with the OTel SDK and `logger`; `scripts/test.sh` installs them (the SDK in a
//! virtual environment whose interpreter it passes as `SIGHTLINE_PYTHON`; without it,
//! `python3`). Built only with `--features interop`, so plain `cargo test` stays hermetic.

mod common;

use std::process::Command;

use common::{Server, now_ns};
use serde_json::Value;

fn run_otel(protocol: &str, endpoint: &str, service: &str, count: usize) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/otel_logs.py");
    let out = Command::new(common::python())
        .args([
            script,
            protocol,
            endpoint,
            service,
            &count.to_string(),
            "vendor-x",
        ])
        .output()
        .expect("run the Python interpreter (SIGHTLINE_PYTHON or python3)");
    assert!(
        out.status.success(),
        "otel sdk ({protocol}) failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn series_of(server: &Server, tenant: &str, selector: &str) -> Vec<Value> {
    let v: Value = server
        .client()
        .get(server.url("/loki/api/v1/series"))
        .header("X-Scope-OrgID", tenant)
        .query(&[("match[]", selector)])
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["data"].as_array().cloned().unwrap_or_default()
}

#[test]
fn opentelemetry_python_sdk_over_grpc_and_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    run_otel(
        "grpc",
        &format!("http://{}", server.otlp_grpc),
        "otel-grpc",
        10_000,
    );
    run_otel(
        "http",
        &format!("http://{}/v1/logs", server.otlp_http),
        "otel-http",
        10_000,
    );
    for service in ["otel-grpc", "otel-http"] {
        let selector = format!(r#"{{service_name="{service}"}}"#);
        assert_eq!(
            server.wait_for_count("vendor-x", &selector, 10_000),
            10_000,
            "{service}"
        );
        // Exactly the ERROR records (every tenth), via structured metadata.
        let errors = server.query(
            "vendor-x",
            &format!(r#"sum(count_over_time({selector} | severity_text="ERROR" [1d]))"#),
            now_ns(),
        );
        assert_eq!(errors["data"]["result"][0]["value"][1], "1000", "{errors}");
        let series = series_of(&server, "vendor-x", &selector);
        assert_eq!(series.len(), 1, "{series:?}");
        let labels = &series[0];
        assert_eq!(labels["service_name"], service);
        assert_eq!(labels["service_namespace"], "finance");
        assert_eq!(labels["deployment_environment"], "test");
        assert_eq!(labels["k8s_pod_name"], format!("{service}-pod-0"));
        assert_eq!(labels["host_name"], "node-a");
        // Not an index label, but kept as structured metadata.
        let v = server.query_range(
            "vendor-x",
            &format!(r#"{selector} | process_pid="4242" | order_id="ord-7""#),
            now_ns() - 3_600_000_000_000,
            now_ns() + 1_000_000_000,
            10,
        );
        let lines = v["data"]["result"][0]["values"].as_array().unwrap();
        assert_eq!(lines.len(), 1, "{v}");
        assert_eq!(lines[0][1], "request 7 served in 7ms");
    }
    // Nothing leaks into other tenants.
    assert_eq!(server.count("default", r#"{service_name=~"otel-.*"}"#), 0);
}

fn logger(args: &[&str], port: u16, message: &str) {
    let status = Command::new("logger")
        .args(args)
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            message,
        ])
        .status()
        .expect("run logger (util-linux)");
    assert!(status.success(), "logger {args:?} failed");
}

#[test]
fn util_linux_logger_rfc5424_tcp_udp_and_rfc3164() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let tcp = server.syslog_tcp.port();
    let udp = server.syslog_udp.port();
    for i in 0..20 {
        logger(
            &[
                "--tcp",
                "--octet-count",
                "--rfc5424",
                "--tag",
                "app-tcp",
                "--sd-id",
                "order@32473",
                "--sd-param",
                "id=\"o-1\"",
                "-p",
                "local0.err",
            ],
            tcp,
            &format!("tcp octet message {i}"),
        );
        logger(
            &["--tcp", "--rfc5424", "--tag", "app-tcp-lf"],
            tcp,
            &format!("tcp newline message {i}"),
        );
        logger(
            &[
                "--udp",
                "--rfc5424",
                "--tag",
                "app-udp",
                "-p",
                "auth.warning",
            ],
            udp,
            &format!("udp message {i}"),
        );
        logger(
            &["--udp", "--rfc3164", "--tag", "app-bsd"],
            udp,
            &format!("bsd message {i}"),
        );
    }
    for app in ["app-tcp", "app-tcp-lf", "app-udp", "app-bsd"] {
        let selector = format!(r#"{{service_name="{app}"}}"#);
        assert_eq!(server.wait_for_count("default", &selector, 20), 20, "{app}");
        let series = series_of(&server, "default", &selector);
        assert_eq!(series.len(), 1, "{series:?}");
        assert!(
            series[0]["host_name"]
                .as_str()
                .is_some_and(|h| !h.is_empty()),
            "{series:?}"
        );
    }
    let end = now_ns() + 1_000_000_000;
    let start = now_ns() - 3_600_000_000_000;
    let v = server.query_range(
        "default",
        r#"{service_name="app-tcp"} | syslog_facility="local0" | syslog_severity="err" | syslog_sd_order_32473_id="o-1""#,
        start,
        end,
        100,
    );
    assert_eq!(
        v["data"]["result"][0]["values"].as_array().map(Vec::len),
        Some(20),
        "{v}"
    );
    let v = server.query_range(
        "default",
        r#"{service_name="app-bsd"} |= "bsd message 7""#,
        start,
        end,
        100,
    );
    assert_eq!(
        v["data"]["result"][0]["values"][0][1], "bsd message 7",
        "{v}"
    );
}

fn prom_instant(server: &Server, tenant: &str, query: &str) -> Vec<Value> {
    let v: Value = server
        .client()
        .get(server.url("/api/v1/query"))
        .header("X-Scope-OrgID", tenant)
        .query(&[("query", query)])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["status"], "success", "{query}: {v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn value_of(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

/// OpenTelemetry Python SDK metrics (counter, up-down counter, histogram, observable gauge)
/// over OTLP/gRPC and OTLP/HTTP arrive under the names Prometheus users expect.
#[test]
fn opentelemetry_python_sdk_metrics_arrive_under_prometheus_names() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/otel_metrics.py");
    for (protocol, endpoint, service) in [
        (
            "grpc",
            format!("http://{}", server.otlp_grpc),
            "metrics-grpc",
        ),
        (
            "http",
            format!("http://{}/v1/metrics", server.otlp_http),
            "metrics-http",
        ),
    ] {
        let out = Command::new(common::python())
            .args([script, protocol, &endpoint, service, "vendor-m"])
            .output()
            .expect("run the Python interpreter (SIGHTLINE_PYTHON or python3)");
        assert!(
            out.status.success(),
            "otel sdk metrics ({protocol}) failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let job = format!("shop/{service}");
        let sel = |name: &str| format!("{name}{{job=\"{job}\"}}");

        // Counter: cumulative, `_total`; 3 rounds of 5 (card) and 2 (cash).
        let orders = prom_instant(&server, "vendor-m", &sel("shop_orders_total"));
        assert_eq!(orders.len(), 2, "{orders:?}");
        for s in &orders {
            assert_eq!(s["metric"]["instance"], "pod-1");
            let want = if s["metric"]["payment"] == "card" {
                15.0
            } else {
                6.0
            };
            assert_eq!(value_of(s), want, "{s}");
        }
        // Up-down counter: a gauge without `_total`; annotation units dropped.
        let queue = prom_instant(&server, "vendor-m", &sel("shop_queue_depth"));
        assert_eq!(queue.len(), 1, "{queue:?}");
        assert_eq!(value_of(&queue[0]), 6.0);
        // Histogram in seconds: classic buckets, sum and count.
        let count = prom_instant(
            &server,
            "vendor-m",
            &sel("http_server_request_duration_seconds_count"),
        );
        assert_eq!(value_of(&count[0]), 12.0, "{count:?}");
        let inf = prom_instant(
            &server,
            "vendor-m",
            &format!("http_server_request_duration_seconds_bucket{{job=\"{job}\", le=\"+Inf\"}}"),
        );
        assert_eq!(value_of(&inf[0]), 12.0, "{inf:?}");
        let buckets = prom_instant(
            &server,
            "vendor-m",
            &sel("http_server_request_duration_seconds_bucket"),
        );
        assert!(buckets.len() > 2, "{buckets:?}");
        let sum = prom_instant(
            &server,
            "vendor-m",
            &sel("http_server_request_duration_seconds_sum"),
        );
        assert!((value_of(&sum[0]) - 3.0 * 2.024).abs() < 1e-9, "{sum:?}");
        // Observable gauge in bytes.
        let memory = prom_instant(&server, "vendor-m", &sel("node_memory_usage_bytes"));
        assert_eq!(value_of(&memory[0]), 43e6, "{memory:?}");
        assert_eq!(memory[0]["metric"]["state"], "used");
        // Other resource attributes on target_info.
        let info = prom_instant(&server, "vendor-m", &sel("target_info"));
        assert_eq!(info[0]["metric"]["host_name"], "node-7", "{info:?}");
    }
}

/// Issue 11's real client: a three-hop chain (frontend → payments → PostgreSQL) traced with
/// the OpenTelemetry Python SDK over both exporters; every span comes back from the Tempo API
/// with its parent links, and the v2 JSON parses into OTLP `TracesData` with the Python
/// `opentelemetry-proto` package.
#[test]
fn opentelemetry_python_sdk_traces_come_back_with_their_structure() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sightline.toml");
    std::fs::write(&config, "[traces]\nmetrics_flush_interval = \"500ms\"\n").unwrap();
    let data = dir.path().join("data");
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/otel_traces.py");
    let python = |args: &[&str]| -> Value {
        let out = Command::new(common::python())
            .arg(script)
            .args(args)
            .output()
            .expect("run the Python interpreter (SIGHTLINE_PYTHON or python3)");
        assert!(
            out.status.success(),
            "otel_traces.py {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let grpc = python(&[
        "send",
        "grpc",
        &format!("http://{}", server.otlp_grpc),
        "vendor-t",
        "6",
    ]);
    let http = python(&[
        "send",
        "http",
        &format!("http://{}/v1/traces", server.otlp_http),
        "vendor-t",
        "6",
    ]);
    let mut traces: Vec<String> = Vec::new();
    for sent in [&grpc, &http] {
        assert_eq!(sent["spans"], 24);
        assert_eq!(sent["failed"], 2);
        traces.extend(
            sent["traces"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string()),
        );
    }
    assert_eq!(traces.len(), 12);
    let deadline = std::time::Instant::now() + common::PATIENCE;
    for (i, id) in traces.iter().enumerate() {
        let url = server.url(&format!("/api/v2/traces/{id}"));
        let spans = loop {
            let ready = server
                .client()
                .get(&url)
                .header("X-Scope-OrgID", "vendor-t")
                .send()
                .unwrap()
                .status()
                .is_success();
            if ready {
                let got = python(&["check", &url, "vendor-t"]);
                let spans = got["spans"].as_array().unwrap().clone();
                if spans.len() == 4 {
                    break spans;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "trace {id} incomplete"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let find = |name: &str, service: &str| {
            spans
                .iter()
                .find(|s| s["name"] == name && s["service"] == service)
                .unwrap_or_else(|| panic!("no {name} of {service} in {spans:?}"))
                .clone()
        };
        let root = find("GET /checkout", "frontend");
        let call = find("POST /pay", "frontend");
        let server_span = find("POST /pay", "payments");
        let db = find("SELECT accounts", "payments");
        assert_eq!(root["parent_span_id"], "");
        assert_eq!(call["parent_span_id"], root["span_id"]);
        assert_eq!(server_span["parent_span_id"], call["span_id"]);
        assert_eq!(db["parent_span_id"], server_span["span_id"]);
        assert!(spans.iter().all(|s| s["trace_id"] == id.as_str()));
        // Status codes survive: STATUS_CODE_ERROR is 2, on every third request's database
        // span and payments' server span.
        let failed = i % 6 == 2 || i % 6 == 5;
        assert_eq!(db["status"], if failed { 2 } else { 0 }, "trace {i}");
        assert_eq!(server_span["status"], if failed { 2 } else { 0 });
        assert_eq!(db["kind"], 3, "SPAN_KIND_CLIENT");
    }

    // TraceQL finds them by attribute, status, duration and structure.
    let search = |q: &str| -> usize {
        let v: Value = server
            .client()
            .get(server.url("/api/search"))
            .header("X-Scope-OrgID", "vendor-t")
            .query(&[("q", q), ("limit", "100")])
            .send()
            .unwrap()
            .json()
            .unwrap();
        v["traces"].as_array().map_or(0, Vec::len)
    };
    assert_eq!(search(r#"{ span.db.system = "postgresql" }"#), 12);
    assert_eq!(search("{ status = error }"), 4);
    assert_eq!(
        search(r#"{ resource.service.name = "payments" && status = error }"#),
        4
    );
    assert_eq!(search("{ duration >= 0ms }"), 12);
    assert_eq!(search("{ duration > 1h }"), 0);
    assert_eq!(
        search(
            r#"{ resource.service.name = "frontend" && kind = client } > { resource.service.name = "payments" && kind = server }"#
        ),
        12
    );
    assert_eq!(
        search(
            r#"{ resource.service.name = "payments" } > { resource.service.name = "frontend" }"#
        ),
        0
    );

    // Span metrics: one call per span sent, labelled as the spanmetrics connector labels.
    let deadline = std::time::Instant::now() + common::PATIENCE;
    let total = |q: &str| -> f64 {
        prom_instant(&server, "vendor-t", q)
            .first()
            .map_or(0.0, value_of)
    };
    while total("sum(traces_span_metrics_calls_total)") < 48.0
        || total("sum(traces_service_graph_request_total)") < 24.0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "derived series incomplete"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(total("sum(traces_span_metrics_calls_total)"), 48.0);
    assert_eq!(
        total(
            r#"sum(traces_span_metrics_calls_total{service_name="payments", span_name="SELECT accounts", span_kind="SPAN_KIND_CLIENT", status_code="STATUS_CODE_ERROR"})"#
        ),
        4.0
    );
    assert_eq!(
        total(r#"sum(traces_span_metrics_duration_milliseconds_count{service_name="frontend"})"#),
        24.0
    );
    // The service graph: exactly frontend → payments and payments → the database, the
    // failures on both (payments answered 500 when its query failed).
    let edges = prom_instant(&server, "vendor-t", "traces_service_graph_request_total");
    let mut seen: Vec<(String, String, String, f64)> = edges
        .iter()
        .map(|e| {
            let m = &e["metric"];
            let label = |k: &str| m[k].as_str().unwrap_or_default().to_string();
            (
                label("client"),
                label("server"),
                label("connection_type"),
                value_of(e),
            )
        })
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        vec![
            ("frontend".into(), "payments".into(), String::new(), 12.0),
            ("payments".into(), "ledger".into(), "database".into(), 12.0),
        ]
    );
    assert_eq!(
        total(
            r#"sum(traces_service_graph_request_failed_total{client="payments", server="ledger"})"#
        ),
        4.0
    );
    assert_eq!(
        total(
            r#"sum(traces_service_graph_request_failed_total{client="frontend", server="payments"})"#
        ),
        4.0
    );
}
