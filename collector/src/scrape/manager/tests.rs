//! Scrapes against a tiny HTTP server on 127.0.0.1:0 serving a fixed (changeable) exposition.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sightline_model::{MetricBatch, is_stale_nan};
use tokio::sync::watch;

use super::*;
use crate::metrics::SourceLabels;
use crate::otlp::body::testing::{RecordedMetrics, accept_all, gzip, metric_ingest};
use crate::scrape::config::StaticConfig;

#[derive(Debug)]
struct Exposed {
    body: String,
    content_type: &'static str,
    status: StatusCode,
    gzip: bool,
    delay: Duration,
    /// `Accept` and timeout headers of the last request.
    last_headers: Option<(String, String)>,
}

type Shared = Arc<Mutex<Exposed>>;

async fn metrics_handler(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let (body, ct, status, gz, delay) = {
        let mut e = shared.lock().unwrap();
        let h = |n: &str| {
            headers
                .get(n)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        e.last_headers = Some((h("accept"), h("x-prometheus-scrape-timeout-seconds")));
        (e.body.clone(), e.content_type, e.status, e.gzip, e.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if gz {
        return (
            status,
            [
                (header::CONTENT_TYPE, ct),
                (header::CONTENT_ENCODING, "gzip"),
            ],
            gzip(body.as_bytes()),
        )
            .into_response();
    }
    (status, [(header::CONTENT_TYPE, ct)], body).into_response()
}

async fn serve(body: &str) -> (SocketAddr, Shared) {
    let shared: Shared = Arc::new(Mutex::new(Exposed {
        body: body.to_string(),
        content_type: "text/plain; version=0.0.4",
        status: StatusCode::OK,
        gzip: false,
        delay: Duration::ZERO,
        last_headers: None,
    }));
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, shared)
}

fn job(addr: SocketAddr) -> ScrapeConfig {
    let mut c = ScrapeConfig::new("test", vec![]);
    c.scrape_interval = Duration::from_millis(100);
    c.static_configs = vec![StaticConfig {
        targets: vec![addr.to_string()],
        labels: [("zone".to_string(), "az1".to_string())].into(),
    }];
    c
}

struct Running {
    handle: ScrapeHandle,
    recorded: RecordedMetrics,
    shutdown: watch::Sender<bool>,
    metrics: CollectorMetrics,
}

fn start(configs: Vec<ScrapeConfig>) -> Running {
    let (ingest, recorded) = metric_ingest(accept_all);
    let (shutdown, rx) = watch::channel(false);
    let metrics = CollectorMetrics::default();
    let handle = ScrapeManager::start(configs, ingest, metrics.clone(), rx).unwrap();
    Running {
        handle,
        recorded,
        shutdown,
        metrics,
    }
}

impl Running {
    fn len(&self) -> usize {
        self.recorded.lock().unwrap().len()
    }

    /// Waits (up to 5 s) for a batch at index `from` or later that satisfies `pred`.
    async fn wait_batch(&self, from: usize, pred: impl Fn(&MetricBatch) -> bool) -> MetricBatch {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            {
                let batches = self.recorded.lock().unwrap();
                if let Some(b) = batches.iter().skip(from).find(|b| pred(b)) {
                    return b.clone();
                }
            }
            assert!(Instant::now() < deadline, "no matching batch in time");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(self) {
        self.shutdown.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.handle.join())
            .await
            .expect("scrape loops stop on shutdown");
    }
}

/// The value of the series with exactly these canonical labels, if present.
fn value(b: &MetricBatch, canonical: &str) -> Option<f64> {
    b.series
        .iter()
        .find(|s| s.labels.to_canonical() == canonical)
        .map(|s| s.samples[0].v)
}

fn named<'a>(b: &'a MetricBatch, name: &str) -> Vec<&'a MetricSeries> {
    b.series
        .iter()
        .filter(|s| s.labels.get("__name__") == Some(name))
        .collect()
}

fn report(b: &MetricBatch, name: &str) -> f64 {
    named(b, name)[0].samples[0].v
}

const BODY: &str = "# TYPE http_requests_total counter\n\
http_requests_total{code=\"200\",job=\"app\"} 10\n\
http_requests_total{code=\"500\",job=\"app\"} 1\n\
temp_celsius 21.5\n";

#[tokio::test]
async fn scrape_labels_up_and_staleness() {
    let (addr, shared) = serve(BODY).await;
    let run = start(vec![job(addr)]);
    let inst = addr.to_string();
    let first = run.wait_batch(0, |_| true).await;
    let up = named(&first, "up");
    assert_eq!(
        up[0].labels.to_canonical(),
        format!(r#"{{__name__="up", instance="{inst}", job="test", zone="az1"}}"#)
    );
    assert_eq!(up[0].samples[0].v, 1.0);
    // The scraped `job` clashes with the target's: kept as `exported_job`.
    assert_eq!(
        value(
            &first,
            &format!(
                r#"{{__name__="http_requests_total", code="200", exported_job="app", instance="{inst}", job="test", zone="az1"}}"#
            )
        ),
        Some(10.0)
    );
    assert_eq!(report(&first, "scrape_samples_scraped"), 3.0);
    assert_eq!(report(&first, "scrape_samples_post_metric_relabeling"), 3.0);
    assert_eq!(report(&first, "scrape_series_added"), 3.0);
    assert!(report(&first, "scrape_duration_seconds") > 0.0);
    // All samples of a scrape share its start time.
    let t0 = first.series[0].samples[0].t;
    assert!(first.series.iter().all(|s| s.samples[0].t == t0));
    let (accept, timeout) = shared.lock().unwrap().last_headers.clone().unwrap();
    assert_eq!(accept, ACCEPT_HEADER);
    assert_eq!(timeout, "0.1");
    let status = run.handle.targets();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].url, format!("http://{inst}/metrics"));

    // A series disappears: one staleness marker, the others keep their values.
    let n = run.len();
    shared.lock().unwrap().body = BODY.replace("temp_celsius 21.5\n", "");
    let temp = format!(r#"{{__name__="temp_celsius", instance="{inst}", job="test", zone="az1"}}"#);
    let b = run
        .wait_batch(n, |b| value(b, &temp).is_some_and(is_stale_nan))
        .await;
    assert_eq!(report(&b, "up"), 1.0);
    assert_eq!(report(&b, "scrape_samples_scraped"), 2.0);
    assert_eq!(report(&b, "scrape_series_added"), 0.0);
    assert_eq!(named(&b, "http_requests_total").len(), 2);
    // Later scrapes do not repeat the marker.
    let n = run.len();
    let later = run.wait_batch(n, |_| true).await;
    assert_eq!(value(&later, &temp), None);

    // A failing target: up 0, markers for everything, nothing else.
    let n = run.len();
    shared.lock().unwrap().status = StatusCode::INTERNAL_SERVER_ERROR;
    let b = run.wait_batch(n, |b| report(b, "up") == 0.0).await;
    let requests = named(&b, "http_requests_total");
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|s| is_stale_nan(s.samples[0].v)));
    assert_eq!(b.series.len(), 2 + REPORT_SERIES.len());
    assert_eq!(report(&b, "scrape_samples_scraped"), 0.0);
    let status = run.handle.targets();
    assert_eq!(status[0].health, TargetHealth::Down);
    assert_eq!(
        status[0].last_error.as_deref(),
        Some("server returned HTTP status 500 Internal Server Error")
    );

    // Back up: the series come back.
    let n = run.len();
    shared.lock().unwrap().status = StatusCode::OK;
    let b = run.wait_batch(n, |b| report(b, "up") == 1.0).await;
    assert_eq!(named(&b, "http_requests_total").len(), 2);
    assert_eq!(
        report(&b, "scrape_series_added"),
        0.0,
        "cache kept through the failure"
    );

    let l = SourceLabels {
        signal: "metrics",
        source: SOURCE,
        tenant: "default".into(),
    };
    assert!(run.metrics.records_accepted.get_or_create(&l).get() > 0);
    run.stop().await;
}

#[tokio::test]
async fn openmetrics_gzip_honor_labels_timestamps_and_relabelling() {
    let body = "# TYPE build info\n\
build_info{version=\"1.2\",job=\"mine\"} 1\n\
# TYPE jobs counter\n\
jobs_total 5 1700000000.5\n\
jobs_created 1600000000\n\
go_gc_count 3\n\
# EOF\n";
    let (addr, shared) = serve(body).await;
    {
        let mut e = shared.lock().unwrap();
        e.content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
        e.gzip = true;
    }
    let mut c = job(addr);
    c.honor_labels = true;
    c.metric_relabel_configs = vec![
        toml::from_str("source_labels = [\"__name__\"]\nregex = \"go_.*\"\naction = \"drop\"")
            .unwrap(),
    ];
    let run = start(vec![c]);
    let b = run.wait_batch(0, |_| true).await;
    assert_eq!(report(&b, "up"), 1.0, "{b:?}");
    let build = named(&b, "build_info");
    assert_eq!(
        build[0].labels.get("job"),
        Some("mine"),
        "honor_labels keeps the scraped job"
    );
    assert_eq!(build[0].labels.get("exported_job"), None);
    let jobs = named(&b, "jobs_total");
    assert_eq!(
        jobs[0].samples[0].t, 1_700_000_000_500,
        "honor_timestamps, seconds → ms"
    );
    assert!(named(&b, "jobs_created").is_empty());
    assert!(
        named(&b, "go_gc_count").is_empty(),
        "dropped by metric relabelling"
    );
    assert_eq!(report(&b, "scrape_samples_scraped"), 3.0);
    assert_eq!(report(&b, "scrape_samples_post_metric_relabeling"), 2.0);
    run.stop().await;
}

#[tokio::test]
async fn parse_errors_timeouts_and_sample_limits_fail_the_scrape() {
    let (addr, shared) = serve(BODY).await;
    let mut c = job(addr);
    c.sample_limit = 2;
    let run = start(vec![c]);
    let b = run.wait_batch(0, |_| true).await;
    assert_eq!(report(&b, "up"), 0.0);
    assert_eq!(b.series.len(), REPORT_SERIES.len());
    let err = run.handle.targets()[0].last_error.clone().unwrap();
    assert_eq!(
        err,
        "sample_limit exceeded: 3 samples after metric relabelling, the limit is 2"
    );

    shared.lock().unwrap().body = "ok 1\nbad{ 1\n".into();
    let n = run.len();
    run.wait_batch(n, |b| report(b, "up") == 0.0).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let err = run.handle.targets()[0]
            .last_error
            .clone()
            .unwrap_or_default();
        if err.starts_with("line 2: ") {
            assert!(
                err.contains("invalid label name at column 6: \"1\""),
                "{err}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{err}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    shared.lock().unwrap().body = "ok 1\n".into();
    shared.lock().unwrap().delay = Duration::from_millis(300);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let err = run.handle.targets()[0]
            .last_error
            .clone()
            .unwrap_or_default();
        if err.starts_with("scrape timed out") {
            assert_eq!(err, "scrape timed out after 100ms");
            break;
        }
        assert!(Instant::now() < deadline, "{err}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    run.stop().await;
}

#[tokio::test]
async fn targets_removed_from_file_sd_get_staleness_markers() {
    let (addr, _shared) = serve("a 1\n").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.json");
    std::fs::write(
        &file,
        format!(r#"[{{"targets": ["{addr}"], "labels": {{"team": "pay"}}}}]"#),
    )
    .unwrap();
    let mut c = ScrapeConfig::new("fsd", vec![]);
    c.static_configs.clear();
    c.scrape_interval = Duration::from_millis(100);
    c.file_sd_configs = vec![super::super::config::FileSdConfig {
        files: vec![file.display().to_string()],
        refresh_interval: Duration::from_millis(100),
    }];
    let run = start(vec![c]);
    let b = run.wait_batch(0, |_| true).await;
    let a = named(&b, "a");
    assert_eq!(
        a[0].labels.to_canonical(),
        format!(r#"{{__name__="a", instance="{addr}", job="fsd", team="pay"}}"#)
    );

    let n = run.len();
    std::fs::write(&file, "[]").unwrap();
    let gone = run
        .wait_batch(n, |b| {
            named(b, "a")
                .first()
                .is_some_and(|s| is_stale_nan(s.samples[0].v))
        })
        .await;
    // Markers for the scraped series and for every report series.
    assert_eq!(gone.series.len(), 1 + REPORT_SERIES.len());
    assert!(gone.series.iter().all(|s| is_stale_nan(s.samples[0].v)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !run.handle.targets().is_empty() {
        assert!(Instant::now() < deadline, "target status removed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    run.stop().await;
}

#[tokio::test]
async fn invalid_configurations_are_refused_at_start() {
    let (ingest, _) = metric_ingest(accept_all);
    let (_tx, rx) = watch::channel(false);
    let mut c = ScrapeConfig::new("j", vec!["h:1".into()]);
    c.scrape_interval = Duration::from_secs(1);
    c.scrape_timeout = Some(Duration::from_secs(2));
    let err = ScrapeManager::start(vec![c], ingest, CollectorMetrics::default(), rx).unwrap_err();
    assert!(
        err.to_string().contains("greater than scrape_interval"),
        "{err}"
    );
}
