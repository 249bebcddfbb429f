//! `sightline agent` through a server outage and its own `kill -9` (issue 17): the real
//! binary as agent and as server, host metrics every 500 ms.
//!
//! 1. The agent runs; the server is stopped (SIGTERM) for `SIGHTLINE_AGENT_OUTAGE_SECS`
//!    (default 120: the two minutes) and started again on the same port and data.
//! 2. The agent is killed with SIGKILL and started again on the same buffer.
//!
//! Every collection is one `node_load1` sample (and ~190 others) at the collection's
//! timestamp, on a fixed schedule: so within each agent run the samples in the server must
//! be `interval` apart (± 200 ms of scheduling) from the first to the last, with none
//! missing — including the ones taken while the server was down. (A repeat cannot be seen
//! here: the same sample twice is one sample in the store. The buffer's own test bounds it
//! at the one record in flight when the agent was killed.)
//! Built only with `--features interop` (it takes the outage's length).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
             [host]\ninterval = \"{INTERVAL_MS}ms\"\n",
            dir.path().join("buffer").display()
        ),
    )
    .unwrap();
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
    let deadline = Instant::now() + PATIENCE;
    while agent.metric("sightline_agent_buffer_pending_records") > Some(1.0) {
        assert!(Instant::now() < deadline, "the agent never caught up");
        std::thread::sleep(Duration::from_millis(100));
    }
    agent.terminate();

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
        "outage {outage:?}: {} samples of node_load1 before the kill, {} after, none missing",
        first.len(),
        second.len()
    );
    server.terminate();
}
