//! Differential test against the real peer: Debian's Prometheus (2.42) scrapes itself every
//! second and remote-writes everything to Sightline; the same PromQL expressions, evaluated
//! at the same times by Prometheus (over its own TSDB) and by Sightline (over the
//! remote-written copy), must give the same series with values equal within 1e-9 relative
//! (or both NaN). Then `promtool query instant|range` runs against Sightline's URL.
//!
//! Sightline runs with `[promql] range_semantics = "prometheus2"`: Prometheus 2.x includes a
//! range's start sample, 3.x (our default) excludes it. Needs `prometheus` and `promtool` on
//! the PATH (`scripts/install-test-deps.sh`); built only with `--features interop`.

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{PATIENCE, Server};
use serde_json::Value;

/// Expressions compared instant by instant and over ranges: rates, histogram quantiles,
/// aggregations, joins, subqueries, offsets, functions of every family.
const EXPRESSIONS: &[&str] = &[
    "up",
    "prometheus_http_requests_total",
    "rate(prometheus_http_requests_total[1m])",
    "sum by (handler) (rate(prometheus_http_requests_total[1m]))",
    "irate(process_cpu_seconds_total[1m])",
    "increase(prometheus_tsdb_head_samples_appended_total[1m])",
    "histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[1m])))",
    "histogram_quantile(0.5, rate(prometheus_http_response_size_bytes_bucket[1m]))",
    "avg_over_time(go_goroutines[1m])",
    "max_over_time(process_resident_memory_bytes[1m])",
    "min_over_time(go_memstats_heap_alloc_bytes[30s])",
    "count by (job) (up)",
    "topk(3, prometheus_http_requests_total)",
    "bottomk(2, rate(prometheus_http_requests_total[1m]))",
    "sum(go_memstats_alloc_bytes) / sum(go_memstats_sys_bytes)",
    "rate(prometheus_http_requests_total[1m]) * on (instance) group_left (version) prometheus_build_info",
    "go_goroutines offset 30s",
    "rate(prometheus_http_requests_total[1m] offset 20s)",
    "delta(go_goroutines[1m])",
    "deriv(process_resident_memory_bytes[1m])",
    "predict_linear(go_memstats_heap_alloc_bytes[1m], 60)",
    "max_over_time(rate(prometheus_http_requests_total[30s])[1m:10s])",
    "avg_over_time(up[1m:5s])",
    "quantile(0.5, rate(prometheus_http_requests_total[1m]))",
    "stddev(go_memstats_alloc_bytes)",
    "stdvar by (job) (go_memstats_heap_inuse_bytes)",
    "count_values(\"value\", up)",
    "label_replace(up, \"port\", \"$1\", \"instance\", \".*:(.*)\")",
    "label_join(up, \"combo\", \"-\", \"job\", \"instance\")",
    "absent(no_such_metric_anywhere)",
    "sum without (handler, code) (prometheus_http_requests_total)",
    "prometheus_http_requests_total > bool 1",
    "prometheus_http_requests_total > 0 and on (handler) rate(prometheus_http_requests_total[1m]) > 0",
    "prometheus_http_requests_total unless on (handler) prometheus_http_requests_total{handler=\"/metrics\"}",
    "changes(go_goroutines[1m])",
    "resets(prometheus_http_requests_total[1m])",
    "scalar(sum(up)) * 2",
    "timestamp(up)",
    "sort_desc(sum by (handler) (prometheus_http_requests_total))",
    "clamp_max(go_goroutines, 50)",
    "go_gc_duration_seconds{quantile=\"0.5\"}",
    "rate(prometheus_http_request_duration_seconds_sum[1m]) / rate(prometheus_http_request_duration_seconds_count[1m])",
    "time() - process_start_time_seconds",
    "sum by (handler) (rate(prometheus_http_request_duration_seconds_bucket{le=\"0.1\"}[1m])) / ignoring (le) group_left sum by (handler) (rate(prometheus_http_request_duration_seconds_count[1m]))",
    "count(count by (__name__) ({job=\"prometheus\"}))",
    "{__name__=~\"prometheus_tsdb_head_(series|chunks)\"}",
    "abs(deriv(go_memstats_heap_alloc_bytes[1m])) + ln(go_goroutines) - sqrt(go_threads)",
    "max by (job) (rate(prometheus_http_requests_total[1m] @ end()))",
];

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Prometheus {
    child: Child,
    port: u16,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_prometheus(dir: &Path, remote_write: &str) -> Prometheus {
    let port = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n\
             remote_write:\n  - url: {remote_write}\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n      max_backoff: 1s\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus (scripts/install-test-deps.sh installs it)");
    Prometheus { child, port }
}

fn get_json(client: &reqwest::blocking::Client, url: &str, params: &[(&str, String)]) -> Value {
    let r = client.get(url).query(params).send().unwrap();
    let status = r.status();
    let text = r.text().unwrap();
    assert!(status.is_success(), "{url} {params:?}: {status}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// A result as comparable data: series (label set → points) in label order.
fn normalise(v: &Value) -> (String, BTreeMap<String, Vec<(f64, String)>>) {
    let data = &v["data"];
    let kind = data["resultType"].as_str().unwrap().to_string();
    let mut out = BTreeMap::new();
    let point = |p: &Value| (p[0].as_f64().unwrap(), p[1].as_str().unwrap().to_string());
    match kind.as_str() {
        "scalar" | "string" => {
            out.insert(String::new(), vec![point(&data["result"])]);
        }
        _ => {
            for s in data["result"].as_array().unwrap() {
                let key = serde_json::to_string(&s["metric"]).unwrap();
                let points = match s.get("values") {
                    Some(values) => values.as_array().unwrap().iter().map(point).collect(),
                    None => vec![point(&s["value"])],
                };
                assert!(out.insert(key, points).is_none(), "duplicate series in {v}");
            }
        }
    }
    (kind, out)
}

fn values_equal(a: &str, b: &str) -> bool {
    let (x, y): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
    if x.is_nan() || y.is_nan() {
        return x.is_nan() && y.is_nan();
    }
    x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
}

/// Compares the two answers; returns a description of the first difference.
fn diff(ours: &Value, theirs: &Value) -> Option<String> {
    let (ok, o) = normalise(ours);
    let (tk, t) = normalise(theirs);
    if ok != tk {
        return Some(format!("result type {ok} vs {tk}"));
    }
    if o.keys().ne(t.keys()) {
        return Some(format!(
            "series differ:\n  ours:   {:?}\n  theirs: {:?}",
            o.keys().collect::<Vec<_>>(),
            t.keys().collect::<Vec<_>>()
        ));
    }
    for (key, op) in &o {
        let tp = &t[key];
        if op.len() != tp.len() {
            return Some(format!("{key}: {} points vs {}", op.len(), tp.len()));
        }
        for (a, b) in op.iter().zip(tp) {
            if (a.0 - b.0).abs() > 1e-6 || !values_equal(&a.1, &b.1) {
                return Some(format!("{key}: point {a:?} vs {b:?}"));
            }
        }
    }
    None
}

#[test]
fn promql_over_remote_written_data_equals_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sightline.toml");
    std::fs::write(&config, "[promql]\nrange_semantics = \"prometheus2\"\n").unwrap();
    let server = Server::start_with(
        &dir.path().join("sightline"),
        &["--config", config.to_str().unwrap()],
    );
    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let prom = start_prometheus(&prom_dir, &server.url("/api/v1/write"));
    let prom_url = format!("http://127.0.0.1:{}", prom.port);
    let client = reqwest::blocking::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();

    // 75 s of one-second scrapes: enough for the 1m windows and subqueries.
    std::thread::sleep(Duration::from_secs(75));
    let now = (common::now_ns() / 1_000_000) as f64 / 1000.0;
    let at = (now - 5.0).floor();
    // Wait until Sightline has everything up to `at` (remote write lags by up to a batch
    // deadline).
    let deadline = Instant::now() + PATIENCE;
    loop {
        let v = get_json(
            server.client(),
            &server.url("/api/v1/query"),
            &[
                ("query", "max(timestamp(up))".into()),
                ("time", (at + 3.0).to_string()),
            ],
        );
        let latest: f64 = v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0);
        if latest >= at + 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "remote write never caught up: latest {latest}, want {at}; prometheus log:\n{}",
            std::fs::read_to_string(prom_dir.join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let mut failures = Vec::new();
    let mut compared = 0;
    let mut non_empty = 0;
    for expr in EXPRESSIONS {
        for t in [at, at - 7.5, at - 20.0] {
            let params = [("query", expr.to_string()), ("time", t.to_string())];
            let ours = get_json(server.client(), &server.url("/api/v1/query"), &params);
            let theirs = get_json(&client, &format!("{prom_url}/api/v1/query"), &params);
            compared += 1;
            if !normalise(&theirs).1.is_empty() {
                non_empty += 1;
            }
            if let Some(d) = diff(&ours, &theirs) {
                failures.push(format!("instant {expr} at {t}: {d}"));
            }
        }
        let params = [
            ("query", expr.to_string()),
            ("start", (at - 40.0).to_string()),
            ("end", at.to_string()),
            ("step", "5".to_string()),
        ];
        let ours = get_json(server.client(), &server.url("/api/v1/query_range"), &params);
        let theirs = get_json(&client, &format!("{prom_url}/api/v1/query_range"), &params);
        compared += 1;
        if !normalise(&theirs).1.is_empty() {
            non_empty += 1;
        }
        if let Some(d) = diff(&ours, &theirs) {
            failures.push(format!("range {expr}: {d}"));
        }
    }
    eprintln!(
        "{compared} comparisons of {} expressions, {non_empty} with a non-empty answer, {} differ",
        EXPRESSIONS.len(),
        failures.len()
    );
    // `absent(…)` of a present series is the only expression expected to be empty.
    assert!(
        non_empty >= compared - 4,
        "too many empty answers ({non_empty} of {compared} non-empty): the comparison says little"
    );
    assert!(
        failures.is_empty(),
        "{} of {compared} comparisons differ:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // promtool, Prometheus's own client, against Sightline's URL.
    let out = Command::new("promtool")
        .args(["query", "instant", &server.url(""), "up"])
        .args(["--time", &format!("{at}")])
        .output()
        .expect("run promtool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("up{") && stdout.contains("=> 1 @["),
        "promtool query instant: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("promtool")
        .args(["query", "range", &server.url("")])
        .args(["--start", &format!("{}", at - 30.0)])
        .args(["--end", &format!("{at}")])
        .args(["--step", "10s"])
        .arg("sum(rate(prometheus_http_requests_total[1m]))")
        .output()
        .expect("run promtool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(" =>") && stdout.lines().count() >= 4,
        "promtool query range: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(prom);
}
