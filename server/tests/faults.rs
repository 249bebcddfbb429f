//! The fault suite (issue 10): each finding of the robustness probe reproduced on a real
//! server — a full disk under mixed load, and the others as they are added below.
//!
//! The disk-full case mounts a small tmpfs and needs root (as CI runs); elsewhere it says so
//! and passes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{PATIENCE, Server, now_ns};
use prost::Message;
use serde_json::{Value, json};
use sightline_collector::remote_write::proto::{Label, Sample, TimeSeries, WriteRequest};

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    /// `None` (and a note) when not root; a failed mount as root is a test failure.
    fn mount(bytes: u64) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
            .arg("tmpfs")
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        let root = std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false);
        assert!(
            mounted || !root,
            "running as root but could not mount a tmpfs"
        );
        if !mounted {
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        Some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Fills the filesystem at `dir` with one file until it reports no space left.
fn fill_disk(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![7u8; 256 << 10];
    while f.write_all(&chunk).is_ok() {}
    let small = vec![7u8; 4096];
    while f.write_all(&small).is_ok() {}
    path
}

/// What a writer thread saw: acknowledged requests by id, and refusals by status.
#[derive(Debug, Default)]
struct Outcomes {
    acked: Vec<u64>,
    refused: Vec<(u16, Option<String>, String)>,
}

impl Outcomes {
    fn record(&mut self, id: u64, r: reqwest::blocking::Response) {
        let status = r.status().as_u16();
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let body = r.text().unwrap_or_default();
        if status == 204 || status == 200 {
            self.acked.push(id);
        } else {
            self.refused.push((status, retry, body));
        }
    }
}

/// Pushes 100-line Loki batches until `stop`; line `i` of batch `b` is `line b-i`.
fn log_writer(url: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Outcomes> {
    std::thread::spawn(move || {
        let client = reqwest::blocking::Client::new();
        let mut out = Outcomes::default();
        let base = now_ns();
        for b in 0u64.. {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let values: Vec<Value> = (0..100)
                .map(|i| {
                    json!([
                        (base + (b * 100 + i) as i64 * 1000).to_string(),
                        format!("line {b}-{i} {}", "x".repeat(300))
                    ])
                })
                .collect();
            let body = json!({"streams": [{"stream": {"job": "diskfull"}, "values": values}]});
            match client
                .post(&url)
                .header("X-Scope-OrgID", "full")
                .json(&body)
                .send()
            {
                Ok(r) => out.record(b, r),
                Err(e) => panic!("log push {b} failed to get an answer: {e}"),
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        out
    })
}

/// Remote-writes 20 series, one sample each with value `b`, until `stop`.
fn metric_writer(url: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Outcomes> {
    std::thread::spawn(move || {
        let client = reqwest::blocking::Client::new();
        let mut out = Outcomes::default();
        let base = now_ns() / 1_000_000 - 600_000;
        for b in 0u64.. {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let req = WriteRequest {
                timeseries: (0..20)
                    .map(|i| TimeSeries {
                        labels: [
                            ("__name__", "disk_full_test".to_string()),
                            ("id", i.to_string()),
                        ]
                        .into_iter()
                        .map(|(n, v)| Label {
                            name: n.as_bytes().to_vec(),
                            value: v.into_bytes(),
                        })
                        .collect(),
                        samples: vec![Sample {
                            value: b as f64,
                            timestamp: base + b as i64,
                        }],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            let body = snap::raw::Encoder::new()
                .compress_vec(&req.encode_to_vec())
                .unwrap();
            match client
                .post(&url)
                .header("X-Scope-OrgID", "full")
                .header("Content-Encoding", "snappy")
                .body(body)
                .send()
            {
                Ok(r) => out.record(b, r),
                Err(e) => panic!("remote write {b} failed to get an answer: {e}"),
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        out
    })
}

fn readyz(server: &Server) -> (u16, String) {
    let r = server.client().get(server.url("/readyz")).send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

fn sample_count(server: &Server) -> u64 {
    let r = server
        .client()
        .get(server.url("/api/v1/query"))
        .header("X-Scope-OrgID", "full")
        .query(&[
            (
                "query",
                "sum(count_over_time(disk_full_test[1h]))".to_string(),
            ),
            ("time", (now_ns() as f64 / 1e9).to_string()),
        ])
        .send()
        .unwrap();
    let v: Value = r.json().unwrap();
    v["data"]["result"][0]["value"][1]
        .as_str()
        .map_or(0, |s| s.parse::<f64>().unwrap() as u64)
}

/// Lines and samples acknowledged while the disk fills, stays full and is freed are all
/// there afterwards and after a restart; while full, writes get a retryable answer with a
/// hint and `/readyz` says why it is not ready.
#[test]
fn disk_full_under_mixed_load_loses_no_acknowledged_line_or_sample() {
    let Some(fs) = SmallFs::mount(64 << 20) else {
        return;
    };
    let data = fs.path().join("data");
    let config = fs.path().join("sightline.toml");
    // Small WAL segments so that the logs' WAL rolls (and truncates) while the disk is full.
    std::fs::write(
        &config,
        "[wal]\nsegment_bytes = 4194304\n[indexer]\ncommit_interval = \"200ms\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap().to_string();
    let server = Server::start_with(&data, &["--config", &config]);
    let stop = Arc::new(AtomicBool::new(false));
    let logs = log_writer(server.url("/loki/api/v1/push"), stop.clone());
    let metrics = metric_writer(server.url("/api/v1/write"), stop.clone());
    std::thread::sleep(Duration::from_secs(1));

    let filler = fill_disk(fs.path());
    // While full: not ready, saying why.
    let deadline = Instant::now() + PATIENCE;
    let not_ready = loop {
        let (status, body) = readyz(&server);
        if status == 503 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed 200 on a full disk"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        not_ready.contains("No space left on device"),
        "/readyz does not say why: {not_ready}"
    );
    std::thread::sleep(Duration::from_secs(2));
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + PATIENCE;
    while readyz(&server).0 != 200 {
        assert!(
            Instant::now() < deadline,
            "not ready after the disk was freed: {:?}",
            readyz(&server)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let logs = logs.join().unwrap();
    let metrics = metrics.join().unwrap();

    // Every refusal was retryable, with a hint.
    for (what, out) in [("logs", &logs), ("metrics", &metrics)] {
        let refused = &out.refused;
        eprintln!(
            "{what}: {} acknowledged, {} refused: {:?}",
            out.acked.len(),
            refused.len(),
            refused
                .iter()
                .map(|r| r.0)
                .collect::<std::collections::BTreeSet<_>>()
        );
        for (status, retry, body) in refused {
            assert!(
                matches!(status, 429 | 503) && retry.is_some(),
                "{what}: a refusal without a retry hint: {status} {retry:?} {body}"
            );
        }
    }
    assert!(
        !logs.refused.is_empty() || !metrics.refused.is_empty(),
        "the full disk refused nothing"
    );

    let want_lines = logs.acked.len() as u64 * 100;
    let want_samples = metrics.acked.len() as u64 * 20;
    let check = |server: &Server, when: &str| {
        let lines = server.wait_for_count("full", "{job=\"diskfull\"}", want_lines);
        assert_eq!(
            lines, want_lines,
            "{when}: log lines present vs acknowledged"
        );
        assert_eq!(
            sample_count(server),
            want_samples,
            "{when}: samples present vs acknowledged"
        );
    };
    check(&server, "after the disk was freed");
    assert_eq!(server.terminate(), Some(0), "SIGTERM after a full disk");
    let server = Server::start_with(&data, &["--config", &config]);
    check(&server, "after a restart");
    server.kill9();
}
