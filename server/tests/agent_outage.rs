//! `sightline agent` through a server outage and its own `kill -9` (issue 17): the real
//! binary as agent and as server, host metrics every 500 ms and a log file written at
//! 50 lines a second (rotated by rename once) throughout.
//!
//! 1. The agent runs; the server is stopped (SIGTERM) for `SIGHTLINE_AGENT_OUTAGE_SECS`
//!    (default 120: the issue's two minutes) and started again on the same port and data.
//! 2. The agent is killed with SIGKILL and started again on the same buffer.
//!
//! Every collection is one `node_load1` sample (and ~190 others) at the collection's
//! timestamp, on a fixed schedule: so within each agent run the samples in the server must
//! be `interval` apart (± 200 ms of scheduling) from the first to the last, with none
//! missing — including the ones taken while the server was down. (A repeat cannot be seen
//! here: the same sample twice is one sample in the store. The buffer's own test bounds it
//! at the one record in flight when the agent was killed.) Every log line written is in the
//! server (distinct sequence numbers counted with LogQL), and lines are repeated at most by
//! the documented bound (one batch, `tail::MAX_BATCH_LINES`).
//! Built only with `--features interop` (it takes the outage's length).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{PATIENCE, Server, free_port};

const INTERVAL_MS: i64 = 500;

struct Agent {
    child: Child,
    metrics_url: String,
}

impl Agent {
    fn start(config: &Path, metrics_port: u16) -> Agent {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sightline"))
            .args(["agent", "--config"])
            .arg(config)
            .env("SIGHTLINE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sightline agent");
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("agent: {line}");
            }
        });
        let agent = Agent {
            child,
            metrics_url: format!("http://127.0.0.1:{metrics_port}/metrics"),
        };
        let deadline = Instant::now() + PATIENCE;
        while agent
            .metric("sightline_agent_host_collections_total")
            .is_none()
        {
            assert!(Instant::now() < deadline, "the agent never served /metrics");
            std::thread::sleep(Duration::from_millis(50));
        }
        agent
    }

    fn metric(&self, name: &str) -> Option<f64> {
        let text = reqwest::blocking::get(&self.metrics_url)
            .ok()?
            .text()
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn terminate(mut self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "agent exited with {status}");
    }
}

/// A failed test must not leave the agent running.
impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `node_load1`'s sample timestamps (ms) in the server, oldest first.
fn load1_timestamps(server: &Server) -> Vec<i64> {
    let v: serde_json::Value = server
        .client()
        .get(server.url("/api/v1/query"))
        .query(&[("query", "node_load1[1h]")])
        .send()
        .unwrap()
        .json()
        .unwrap();
    let result = v["data"]["result"].as_array().expect("a matrix");
    assert_eq!(result.len(), 1, "one node_load1 series: {v}");
    result[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_f64().unwrap() * 1000.0).round() as i64)
        .collect()
}

#[test]
fn an_outage_and_a_kill_lose_no_sample() {
    let outage = Duration::from_secs(
        std::env::var("SIGHTLINE_AGENT_OUTAGE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(120),
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let addr = format!("127.0.0.1:{port}");
    let start_server = || Server::start_with(&dir.path().join("server"), &["--http-addr", &addr]);
    let server = start_server();

    let metrics_port = free_port();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{metrics_port}\"\n\
             [server]\nurl = \"http://{addr}\"\n\
             [buffer]\ndir = \"{}\"\n\
             [host]\ninterval = \"{INTERVAL_MS}ms\"\n\
             [[logs]]\ninclude = [\"{}/*.log\"]\npoll = \"100ms\"\n",
            dir.path().join("buffer").display(),
            dir.path().join("logs").display(),
        ),
    )
    .unwrap();
    // The log writer: `seq=N` lines at 50 a second, the file renamed away once.
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    let (stop, written) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let writer = {
        let (stop, written) = (stop.clone(), written.clone());
        let logs = dir.path().join("logs");
        std::thread::spawn(move || {
            use std::io::Write;
            let open = || {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(logs.join("app.log"))
                    .unwrap()
            };
            let mut file = open();
            let mut seq = 0u64;
            while !stop.load(Ordering::SeqCst) {
                writeln!(file, "seq={seq:06} level=info msg=\"payment accepted\"").unwrap();
                seq += 1;
                written.store(seq, Ordering::SeqCst);
                if seq == 1_000 {
                    std::fs::rename(logs.join("app.log"), logs.join("app.log.1")).unwrap();
                    file = open();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let agent = Agent::start(&config, metrics_port);
    std::thread::sleep(Duration::from_secs(3));

    // The server goes away; the agent keeps collecting into its buffer.
    server.terminate();
    std::thread::sleep(outage);
    let pending = agent
        .metric("sightline_agent_buffer_pending_records")
        .unwrap();
    let expected = outage.as_millis() as f64 / INTERVAL_MS as f64;
    assert!(
        pending >= expected * 0.9,
        "{pending} records buffered during a {outage:?} outage, expected ~{expected}"
    );
    let server = start_server();
    // Caught up: the buffer drains.
    let deadline = Instant::now() + PATIENCE;
    while agent.metric("sightline_agent_buffer_pending_records") > Some(1.0) {
        assert!(Instant::now() < deadline, "the agent never caught up");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));

    // SIGKILL, then a new agent on the same buffer.
    agent.kill9();
    let killed_at = common::now_ns() / 1_000_000;
    std::thread::sleep(Duration::from_secs(2));
    let agent = Agent::start(&config, metrics_port);
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let lines = written.load(Ordering::SeqCst);
    let logql = |q: &str| -> u64 {
        let v = server.query("default", q, common::now_ns());
        v["data"]["result"][0]["value"][1]
            .as_str()
            .map_or(0, |s| s.parse::<f64>().unwrap() as u64)
    };
    let distinct = "count(sum by (seq) (count_over_time({filename=~\".*app.log\"} | logfmt [1h])))";
    let deadline = Instant::now() + PATIENCE;
    while logql(distinct) < lines {
        assert!(
            Instant::now() < deadline,
            "log lines missing: {} of {lines}",
            logql(distinct)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    while agent.metric("sightline_agent_buffer_pending_records") > Some(1.0) {
        assert!(Instant::now() < deadline, "the agent never caught up");
        std::thread::sleep(Duration::from_millis(100));
    }
    agent.terminate();
    let total = logql("sum(count_over_time({filename=~\".*app.log\"}[1h]))");
    assert_eq!(logql(distinct), lines, "every line written, once at least");
    assert!(
        total - lines <= sightline_agent::tail::MAX_BATCH_LINES as u64,
        "{} lines repeated, over the bound of one batch",
        total - lines
    );

    let ts = load1_timestamps(&server);
    // Two runs: split at the kill (the gap is the ~2 s the agent was dead).
    let split = ts
        .iter()
        .position(|&t| t > killed_at)
        .expect("samples after the kill");
    let (first, second) = ts.split_at(split);
    for (run, samples) in [("before the kill", first), ("after the kill", second)] {
        assert!(samples.len() > 4, "{run}: {samples:?}");
        for w in samples.windows(2) {
            let step = w[1] - w[0];
            assert!(
                (INTERVAL_MS - 200..=INTERVAL_MS + 200).contains(&step),
                "{run}: samples {} and {} are {step} ms apart, not {INTERVAL_MS}: \
                 lost or repeated collections ({} samples)",
                w[0],
                w[1],
                samples.len()
            );
        }
    }
    eprintln!(
        "outage {outage:?}: {} samples of node_load1 before the kill, {} after, none missing; \
         {lines} log lines written, all in the server, {} repeated",
        first.len(),
        second.len(),
        total - lines
    );
    server.terminate();
}

/// A batch the server answers 400 to (a line over its 256 KiB limit, the agent's own limit
/// set higher): logged and counted as rejected, the server keeps the batch's valid lines,
/// and the agent goes on.
#[test]
fn a_batch_refused_with_400_is_dropped_and_counted_and_nothing_else_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let metrics_port = free_port();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{metrics_port}\"\n\
             [server]\nurl = \"http://{}\"\n\
             [buffer]\ndir = \"{}\"\n\
             [host]\nenabled = false\n\
             [[logs]]\ninclude = [\"{}/*.log\"]\npoll = \"100ms\"\nmax_line_bytes = 1048576\n",
            server.http,
            dir.path().join("buffer").display(),
            logs.display(),
        ),
    )
    .unwrap();
    let agent = Agent::start(&config, metrics_port);
    let app = logs.join("app.log");
    std::fs::write(&app, "first line\n").unwrap();
    assert_eq!(
        server.wait_for_count("default", r#"{filename=~".*app.log"}"#, 1),
        1
    );
    // One write, so one batch: a good line, one too long for the server, another good one.
    let huge = "x".repeat(300 << 10);
    let mut f = std::fs::OpenOptions::new().append(true).open(&app).unwrap();
    use std::io::Write;
    write!(f, "good before\n{huge}\ngood after\n").unwrap();
    drop(f);
    let deadline = Instant::now() + PATIENCE;
    while agent.metric("sightline_agent_dropped_records_total{reason=\"rejected\"}") != Some(1.0) {
        assert!(Instant::now() < deadline, "the 400 was never counted");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        server.wait_for_count("default", r#"{filename=~".*app.log"} |= "good""#, 2),
        2,
        "the valid lines are kept"
    );
    // The agent goes on.
    let mut f = std::fs::OpenOptions::new().append(true).open(&app).unwrap();
    writeln!(f, "later").unwrap();
    drop(f);
    assert_eq!(
        server.wait_for_count("default", r#"{filename=~".*app.log"}"#, 4),
        4
    );
    agent.terminate();
    server.terminate();
}
