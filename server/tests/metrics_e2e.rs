//! End-to-end tests of the metric path against the real binary: Prometheus remote_write in,
//! the Prometheus query API and the CLI out, bad input, and crash safety.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Series, Server, now_ns, post_write, write_request};
use rand::Rng;
use serde_json::{Value, json};

fn prom_get(server: &Server, tenant: &str, path: &str, params: &[(&str, String)]) -> Value {
    let r = server
        .client()
        .get(server.url(path))
        .header("X-Scope-OrgID", tenant)
        .query(params)
        .send()
        .unwrap();
    let status = r.status();
    let text = r.text().unwrap();
    assert!(status.is_success(), "{path} {params:?}: {status}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn now_ms() -> i64 {
    now_ns() / 1_000_000
}

#[test]
fn remote_write_is_queryable_through_the_prometheus_api_and_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let t0 = (now_ms() - 600_000) / 1000 * 1000;
    let counter: Vec<(i64, f64)> = (0..40)
        .map(|i| (t0 + i * 15_000, i as f64 * 30.0))
        .collect();
    let mut gauge: Vec<(i64, f64)> = (0..40).map(|i| (t0 + i * 15_000, 1.5)).collect();
    gauge[10].1 = f64::NAN;
    gauge[11].1 = f64::INFINITY;
    let body = write_request(&[
        (
            vec![
                ("__name__", "http_requests_total"),
                ("job", "api"),
                ("code", "200"),
            ],
            counter.clone(),
        ),
        (
            vec![
                ("__name__", "http_requests_total"),
                ("job", "api"),
                ("code", "500"),
            ],
            counter.iter().map(|&(t, v)| (t, v / 10.0)).collect(),
        ),
        (vec![("__name__", "temperature"), ("job", "api")], gauge),
    ]);
    let (status, text) = post_write(&server, "team-a", body);
    assert_eq!(status, 204, "{text}");

    let at = t0 + 39 * 15_000;
    let v = prom_get(
        &server,
        "team-a",
        "/api/v1/query",
        &[
            (
                "query",
                "sum by (job) (rate(http_requests_total[5m]))".into(),
            ),
            ("time", (at as f64 / 1000.0).to_string()),
        ],
    );
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "vector");
    let result = &v["data"]["result"][0];
    assert_eq!(result["metric"], json!({"job": "api"}));
    // 2 per second plus 0.2 per second; a perfectly regular counter has no extrapolation error.
    let rate: f64 = result["value"][1].as_str().unwrap().parse().unwrap();
    assert!((rate - 2.2).abs() < 1e-9, "{v}");

    let v = prom_get(
        &server,
        "team-a",
        "/api/v1/query_range",
        &[
            ("query", "temperature".into()),
            ("start", (t0 as f64 / 1000.0).to_string()),
            ("end", (at as f64 / 1000.0).to_string()),
            ("step", "15s".into()),
        ],
    );
    let values = v["data"]["result"][0]["values"].as_array().unwrap();
    assert_eq!(values.len(), 40, "{v}");
    assert_eq!(values[10][1], "NaN");
    assert_eq!(values[11][1], "+Inf");
    assert_eq!(values[12][1], "1.5");

    let v = prom_get(
        &server,
        "team-a",
        "/api/v1/series",
        &[("match[]", "http_requests_total".into())],
    );
    assert_eq!(v["data"].as_array().unwrap().len(), 2, "{v}");
    let v = prom_get(&server, "team-a", "/api/v1/labels", &[]);
    assert_eq!(v["data"], json!(["__name__", "code", "job"]));
    let v = prom_get(&server, "team-a", "/api/v1/label/__name__/values", &[]);
    assert_eq!(v["data"], json!(["http_requests_total", "temperature"]));
    // Tenants are isolated.
    let v = prom_get(&server, "default", "/api/v1/label/__name__/values", &[]);
    assert_eq!(v["data"], json!([]));

    // Errors in Prometheus's shape.
    let r = server
        .client()
        .get(server.url("/api/v1/query"))
        .query(&[("query", "sum(rate(x[5m])")])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let e: Value = r.json().unwrap();
    assert_eq!(e["status"], "error");
    assert_eq!(e["errorType"], "bad_data");
    assert_eq!(
        e["error"], "1:16: parse error: unclosed left parenthesis",
        "{e}"
    );
    // Syntax errors name the token met and where, in Prometheus's words; so does the CLI.
    let r = server
        .client()
        .get(server.url("/api/v1/query"))
        .query(&[("query", "foo bar")])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let e: Value = r.json().unwrap();
    assert_eq!(
        e["error"], "1:5: parse error: unexpected identifier \"bar\"",
        "{e}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["metrics", "query", "sum(rate(x[5m])) by (job) foo"])
        .args(["--server", &server.url("")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("1:27: parse error: unexpected identifier"),
        "{stderr}"
    );

    // Form POST, as promtool and Grafana send it.
    let r = server
        .client()
        .post(server.url("/api/v1/query"))
        .header("X-Scope-OrgID", "team-a")
        .form(&[
            ("query", "count(temperature)".to_string()),
            ("time", (at as f64 / 1000.0).to_string()),
        ])
        .send()
        .unwrap();
    let v: Value = r.json().unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "1", "{v}");

    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["metrics", "query", "http_requests_total{code=\"500\"}"])
        .args(["--time", &(at / 1000).to_string()])
        .args(["--server", &server.url("")])
        .args(["--tenant", "team-a"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("code=\"500\"") && stdout.contains("=> 117"),
        "{stdout}"
    );
}

#[test]
fn bad_remote_writes_get_a_clear_4xx_and_good_series_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[tsdb]\nmax_series_per_tenant = 50\nout_of_order_window = \"10m\"\n",
    )
    .unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let t = now_ms();
    let good = || {
        (
            vec![("__name__", "ok_metric"), ("job", "a")],
            vec![(t, 1.0)],
        )
    };

    let (status, text) = post_write(&server, "default", b"definitely not snappy".to_vec());
    assert_eq!(status, 400, "{text}");
    assert!(text.to_lowercase().contains("snappy"), "{text}");

    let garbage = snap::raw::Encoder::new()
        .compress_vec(&[0xff, 0xff, 0xff, 0x01, 0x02])
        .unwrap();
    let (status, text) = post_write(&server, "default", garbage);
    assert_eq!(status, 400, "{text}");
    assert!(
        text.to_lowercase().contains("protobuf") || text.contains("decode"),
        "{text}"
    );

    let (status, text) = post_write(
        &server,
        "default",
        write_request(&[
            (vec![("__name__", "x"), ("bad-name", "v")], vec![(t, 1.0)]),
            good(),
        ]),
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("bad-name"), "{text}");

    let (status, text) = post_write(
        &server,
        "default",
        write_request(&[(
            vec![("__name__", "x"), ("a", "1"), ("a", "2")],
            vec![(t, 1.0)],
        )]),
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.to_lowercase().contains("duplicate"), "{text}");

    let long = "v".repeat(5000);
    let (status, text) = post_write(
        &server,
        "default",
        write_request(&[(
            vec![("__name__", "x"), ("a", long.as_str())],
            vec![(t, 1.0)],
        )]),
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("2048"), "names the limit: {text}");

    // Far out of order: an hour older than the series' newest sample.
    let (status, text) = post_write(
        &server,
        "default",
        write_request(&[(vec![("__name__", "ooo"), ("job", "a")], vec![(t, 1.0)])]),
    );
    assert_eq!(status, 204, "{text}");
    let (status, text) = post_write(
        &server,
        "default",
        write_request(&[(
            vec![("__name__", "ooo"), ("job", "a")],
            vec![(t - 3_600_000, 1.0)],
        )]),
    );
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("out of order") || text.contains("out_of_order"),
        "{text}"
    );

    // A cardinality bomb beyond the tenant's 50 series.
    let ids: Vec<String> = (0..200).map(|i| i.to_string()).collect();
    let bomb: Vec<Series<'_>> = ids
        .iter()
        .map(|id| {
            (
                vec![("__name__", "bomb"), ("id", id.as_str())],
                vec![(t, 1.0)],
            )
        })
        .collect();
    let (status, text) = post_write(&server, "default", write_request(&bomb));
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("50") && text.contains("series"),
        "names the limit: {text}"
    );

    // NaN and infinities are values, not errors.
    let (status, text) = post_write(
        &server,
        "team-b",
        write_request(&[(
            vec![("__name__", "odd"), ("job", "a")],
            vec![
                (t - 2000, f64::NAN),
                (t - 1000, f64::NEG_INFINITY),
                (t, 2.0),
            ],
        )]),
    );
    assert_eq!(status, 204, "{text}");

    // The good series of the mixed request was written.
    let v = prom_get(
        &server,
        "default",
        "/api/v1/query",
        &[
            ("query", "ok_metric".into()),
            ("time", (t as f64 / 1000.0).to_string()),
        ],
    );
    assert_eq!(v["data"]["result"][0]["value"][1], "1", "{v}");
    let v = prom_get(
        &server,
        "default",
        "/api/v1/query",
        &[
            ("query", "count(bomb)".into()),
            ("time", (t as f64 / 1000.0).to_string()),
        ],
    );
    let n: f64 = v["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n < 50.0, "the series limit held: {v}");
}

#[test]
fn sigkill_during_remote_write_loses_no_acknowledged_sample() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rng();
    let base = now_ms() - 3_600_000;
    let mut acked_per_round: Vec<u64> = Vec::new();
    for round in 0..5u64 {
        let server = Server::start(dir.path());
        let url = server.url("/api/v1/write");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let writer = std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let mut acked = 0u64;
            let round_label = round.to_string();
            for batch in 0u64.. {
                if stop2.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                // 20 series per request, one sample each, at the batch's own time.
                let t = base + (round * 100_000 + batch) as i64 * 10;
                let ids: Vec<String> = (0..20).map(|i| i.to_string()).collect();
                let series: Vec<Series<'_>> = ids
                    .iter()
                    .map(|id| {
                        (
                            vec![
                                ("__name__", "crash_test"),
                                ("round", round_label.as_str()),
                                ("id", id.as_str()),
                            ],
                            vec![(t, batch as f64)],
                        )
                    })
                    .collect();
                match client
                    .post(&url)
                    .header("Content-Encoding", "snappy")
                    .body(write_request(&series))
                    .send()
                {
                    Ok(r) if r.status().as_u16() == 204 => acked = batch + 1,
                    _ => break,
                }
            }
            acked
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(100..1500)));
        server.kill9();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let acked = writer.join().unwrap();
        assert!(
            acked > 0,
            "round {round}: nothing acknowledged before the kill"
        );
        acked_per_round.push(acked);

        let server = Server::start(dir.path());
        for (r, &acked) in acked_per_round.iter().enumerate() {
            // Every acknowledged batch b wrote sample value b at its time for 20 series:
            // count_over_time over the round's whole span counts them.
            let end = base + ((r as u64) * 100_000 + acked) as i64 * 10;
            let v = prom_get(
                &server,
                "default",
                "/api/v1/query",
                &[
                    (
                        "query",
                        format!("sum(count_over_time(crash_test{{round=\"{r}\"}}[1h]))"),
                    ),
                    ("time", (end as f64 / 1000.0).to_string()),
                ],
            );
            let n: f64 = v["data"]["result"][0]["value"][1]
                .as_str()
                .map(|s| s.parse().unwrap())
                .unwrap_or(0.0);
            assert!(
                n >= (acked * 20) as f64,
                "round {r} after restart {round}: {n} samples, {acked} batches of 20 acknowledged"
            );
        }
        eprintln!("round {round}: {acked} write requests acknowledged before SIGKILL, all found");
        server.kill9();
    }
}

/// `[anomaly]` rules: a watched series' level jump is scored high, listed at
/// `/api/v1/anomalies` with its expected band, and written back as PromQL series.
#[test]
fn anomaly_rules_score_watched_series_continuously() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[anomaly]\ninterval = \"50ms\"\nwarmup = 100\n\n[[anomaly.rules]]\nname = \"level\"\nexpr = \"watched_level\"\n",
    )
    .unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let mut rng = rand::rng();
    let push = |v: f64| {
        let (status, text) = post_write(
            &server,
            "default",
            write_request(&[(
                vec![("__name__", "watched_level"), ("job", "w")],
                vec![(now_ms(), v)],
            )]),
        );
        assert_eq!(status, 204, "{text}");
    };
    let anomalies = || -> Vec<Value> {
        prom_get(&server, "default", "/api/v1/anomalies", &[])["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    // Past the warm-up with a steady cycle, and out of any hold-off an early alert began.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut i = 0u32;
    let mut level = || {
        i += 1;
        10.0 + (f64::from(i) * std::f64::consts::TAU / 20.0).sin() + rng.random_range(-0.01..0.01)
    };
    loop {
        push(level());
        std::thread::sleep(Duration::from_millis(25));
        let now = anomalies();
        let settled = now.first().is_some_and(|a| {
            a["points_seen"].as_u64().unwrap_or(0) > 300
                && a["component"] != "HoldOff"
                && a["component"] != "WarmUp"
        });
        if settled {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rule never settled: {now:?}"
        );
    }
    let before = anomalies();
    assert_eq!(before[0]["rule"], "level");
    assert_eq!(before[0]["labels"]["job"], "w");
    let expected = before[0]["expected"].as_f64().unwrap();
    assert!((expected - 10.0).abs() < 2.0, "{before:?}");

    // The level jumps a hundredfold: an alert within a few evaluations.
    let jumped_at = now_ms() as f64 / 1000.0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let alert = loop {
        push(1000.0);
        std::thread::sleep(Duration::from_millis(50));
        let now = anomalies();
        if now[0]["last_alert"]
            .as_f64()
            .is_some_and(|t| t >= jumped_at)
        {
            break now[0].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "jump never scored high: {now:?}"
        );
    };
    assert_ne!(alert["component"], "WarmUp");
    let band = alert["band"].as_array().unwrap();
    assert!(
        band[1].as_f64().unwrap() < 1000.0,
        "1000 is outside the band: {alert}"
    );

    // The scores are series too.
    let v = prom_get(
        &server,
        "default",
        "/api/v1/query",
        &[(
            "query",
            "max_over_time(sightline_anomaly_score{anomaly_rule=\"level\", anomaly_metric=\"watched_level\"}[1m])".into(),
        )],
    );
    let max: f64 = v["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(max >= 0.5, "{v}");
    let v = prom_get(
        &server,
        "default",
        "/api/v1/query",
        &[(
            "query",
            "count(sightline_anomaly_upper{anomaly_rule=\"level\"})".into(),
        )],
    );
    assert_eq!(v["data"]["result"][0]["value"][1], "1", "{v}");
}

/// Regression: on a fresh server `up` stayed empty (nothing was scraped); it scrapes its
/// own `/metrics` now, as Prometheus does.
#[test]
fn a_fresh_server_scrapes_itself_so_up_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[self_scrape]\ninterval = \"1s\"\n").unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--self-scrape",
            "true",
        ],
    );
    let deadline = std::time::Instant::now() + common::PATIENCE;
    loop {
        let v = prom_get(
            &server,
            "default",
            "/api/v1/query",
            &[("query", r#"up{job="sightline"}"#.into())],
        );
        let result = &v["data"]["result"];
        if result.as_array().is_some_and(|r| !r.is_empty()) {
            assert_eq!(result[0]["value"][1], "1", "{v}");
            assert_eq!(
                result[0]["metric"]["instance"],
                server.http.to_string(),
                "{v}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never scraped: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Its own metrics are there too.
    let v = prom_get(
        &server,
        "default",
        "/api/v1/query",
        &[(
            "query",
            r#"count({job="sightline", __name__=~"sightline_.+"})"#.into(),
        )],
    );
    let count: f64 = v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0.0);
    assert!(count > 0.0, "{v}");
}

/// A 5 KB query used to overflow the stack and abort the server, ingest included.
#[test]
fn deeply_nested_promql_is_a_400_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let deep_parens = format!("{}1{}", "(".repeat(2500), ")".repeat(2500));
    let nested_calls = format!("{}up{}", "abs(".repeat(2000), ")".repeat(2000));
    let long_sum = vec!["1"; 2000].join("+");
    let long_or = vec!["up"; 3000].join(" or ");
    for query in [deep_parens, nested_calls, long_sum, long_or] {
        let r = server
            .client()
            .get(server.url("/api/v1/query"))
            .query(&[("query", query.as_str())])
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let e: Value = r.json().unwrap();
        assert_eq!(e["errorType"], "bad_data");
        assert!(e["error"].as_str().unwrap().contains("(the limit)"), "{e}");
    }
    // A 1 MiB POST of `x+x+…`.
    let huge = vec!["x"; 1 << 19].join("+");
    let r = server
        .client()
        .post(server.url("/api/v1/query"))
        .form(&[("query", huge.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "{}", r.text().unwrap_or_default());
    let ready = server.client().get(server.url("/readyz")).send().unwrap();
    assert!(
        ready.status().is_success(),
        "server not ready after the queries"
    );
    assert_eq!(server.terminate(), Some(0));
}
