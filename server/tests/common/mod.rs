//! Test harness: runs the real `sightline` binary on loopback port 0 and talks to it over HTTP.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod webhook;

/// A running server process.
pub struct Server {
    child: Child,
    pub data_dir: PathBuf,
    pub http: SocketAddr,
    pub otlp_http: SocketAddr,
    pub otlp_grpc: SocketAddr,
    pub syslog_tcp: SocketAddr,
    pub syslog_udp: SocketAddr,
    pub log: Arc<Mutex<String>>,
    client: reqwest::blocking::Client,
}

/// Generous upper bound for anything a test waits on, so a bug fails instead of hanging.
pub const PATIENCE: Duration = Duration::from_secs(60);

impl Server {
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    /// Starts the server with `extra` flags. Its scrape of itself is off (tests count series
    /// and expect empty tenants) unless `extra` sets `--self-scrape`.
    pub fn start_with(data_dir: &Path, extra: &[&str]) -> Self {
        let self_scrape: &[&str] = if extra.contains(&"--self-scrape") {
            &[]
        } else {
            &["--self-scrape", "false"]
        };
        // The built-in rule packs would add rules and alerts (a watchdog always fires) to
        // every test; tests that want them say so.
        let rule_packs: &[&str] = if extra.contains(&"--rule-packs") {
            &[]
        } else {
            &["--rule-packs", "false"]
        };
        // Port 0 for every listener `extra` does not place (a restart on the same port does).
        let addrs: Vec<&str> = [
            "--http-addr",
            "--otlp-grpc-addr",
            "--otlp-http-addr",
            "--syslog-addr",
        ]
        .into_iter()
        .filter(|flag| !extra.contains(flag))
        .flat_map(|flag| [flag, "127.0.0.1:0"])
        .collect();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sightline"))
            .arg("serve")
            .args(self_scrape)
            .args(rule_packs)
            .arg("--data-dir")
            .arg(data_dir)
            .args(addrs)
            .args(extra)
            .env("SIGHTLINE_LOG", "info")
            .env_remove("SIGHTLINE_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sightline");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("sightline listening") {
                    let _ = tx.send(line.clone());
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let line = rx
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("server did not start; log:\n{}", log.lock().unwrap()));
        let fields: HashMap<&str, &str> = line
            .split_whitespace()
            .filter_map(|t| t.split_once('='))
            .collect();
        let addr = |k: &str| -> SocketAddr {
            fields
                .get(k)
                .unwrap_or_else(|| panic!("no {k} in {line}"))
                .parse()
                .unwrap()
        };
        let server = Self {
            http: addr("http_addr"),
            otlp_http: addr("otlp_http_addr"),
            otlp_grpc: addr("otlp_grpc_addr"),
            syslog_tcp: addr("syslog_tcp_addr"),
            syslog_udp: addr("syslog_udp_addr"),
            child,
            data_dir: data_dir.to_path_buf(),
            log,
            client: reqwest::blocking::Client::builder()
                .timeout(PATIENCE)
                .build()
                .unwrap(),
        };
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(r) = server.client.get(server.url("/readyz")).send()
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "server never became ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    pub fn client(&self) -> &reqwest::blocking::Client {
        &self.client
    }

    /// SIGKILL: no flush, no commit.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait; returns the exit status code.
    pub fn terminate(mut self) -> Option<i32> {
        unsafe_free_sigterm(self.child.id());
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "server ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Loki query_range (GET), panicking on a non-2xx answer.
    pub fn query_range(
        &self,
        tenant: &str,
        query: &str,
        start_ns: i64,
        end_ns: i64,
        limit: usize,
    ) -> Value {
        let r = self
            .client
            .get(self.url("/loki/api/v1/query_range"))
            .header("X-Scope-OrgID", tenant)
            .query(&[
                ("query", query.to_string()),
                ("start", start_ns.to_string()),
                ("end", end_ns.to_string()),
                ("limit", limit.to_string()),
            ])
            .send()
            .unwrap();
        let status = r.status();
        let text = r.text().unwrap();
        assert!(status.is_success(), "{query}: {status}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// Loki instant query (GET).
    pub fn query(&self, tenant: &str, query: &str, time_ns: i64) -> Value {
        let r = self
            .client
            .get(self.url("/loki/api/v1/query"))
            .header("X-Scope-OrgID", tenant)
            .query(&[("query", query.to_string()), ("time", time_ns.to_string())])
            .send()
            .unwrap();
        let status = r.status();
        let text = r.text().unwrap();
        assert!(status.is_success(), "{query}: {status}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// The value of `sum(count_over_time(<selector>[window]))` now, 0 when empty.
    pub fn count(&self, tenant: &str, selector: &str) -> u64 {
        let v = self.query(
            tenant,
            &format!("sum(count_over_time({selector}[30d]))"),
            now_ns() + 60_000_000_000,
        );
        v["data"]["result"]
            .as_array()
            .and_then(|r| r.first())
            .and_then(|s| s["value"][1].as_str())
            .map(|s| s.parse::<f64>().unwrap() as u64)
            .unwrap_or(0)
    }

    /// Polls `count` until it reaches `want` (searchability takes up to a commit interval).
    pub fn wait_for_count(&self, tenant: &str, selector: &str, want: u64) -> u64 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let n = self.count(tenant, selector);
            if n >= want || Instant::now() > deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unsafe_free_sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// The Python interpreter that has the OpenTelemetry SDK: `SIGHTLINE_PYTHON` (set by
/// `scripts/test.sh` to its virtual environment), else `python3` from the PATH.
pub fn python() -> String {
    std::env::var("SIGHTLINE_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".to_string())
}

/// A loopback port free at the time of asking, for a peer the test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// POSTs a Loki push JSON body; returns (status, body).
pub fn loki_push_json(server: &Server, tenant: &str, body: &Value) -> (u16, String) {
    let r = server
        .client()
        .post(server.url("/loki/api/v1/push"))
        .header("X-Scope-OrgID", tenant)
        .json(body)
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

/// A remote_write body (protobuf, snappy) of these series: label pairs and `(ms, value)`.
pub type Series<'a> = (Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);

pub fn write_request(series: &[Series<'_>]) -> Vec<u8> {
    use prost::Message;
    use sightline_collector::remote_write::proto::{Label, Sample, TimeSeries, WriteRequest};
    let req = WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| Label {
                        name: n.as_bytes().to_vec(),
                        value: v.as_bytes().to_vec(),
                    })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|&(timestamp, value)| Sample { value, timestamp })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

/// POSTs a remote_write body for `tenant`; answers status and body.
pub fn post_write(server: &Server, tenant: &str, body: Vec<u8>) -> (u16, String) {
    let r = server
        .client()
        .post(server.url("/api/v1/write"))
        .header("X-Scope-OrgID", tenant)
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap())
}
