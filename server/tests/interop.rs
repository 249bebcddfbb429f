//! Interoperability with real clients: the OpenTelemetry Python SDK (OTLP/gRPC and
//! OTLP/HTTP log exporters) and util-linux `logger` (RFC 5424 over TCP and UDP, RFC 3164).
//! Needs `python3` with the OTel SDK and `logger`; `scripts/test.sh` installs them. Built only
//! with `--features interop`, so plain `cargo test` stays hermetic.

mod common;

use std::process::Command;

use common::{Server, now_ns};
use serde_json::Value;

fn run_otel(protocol: &str, endpoint: &str, service: &str, count: usize) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/otel_logs.py");
    let out = Command::new("python3")
        .args([
            script,
            protocol,
            endpoint,
            service,
            &count.to_string(),
            "vendor-x",
        ])
        .output()
        .expect("run python3");
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
