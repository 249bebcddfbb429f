//! Alerting at load (issue 14), each figure beside the real peer's from the same run:
//!
//! 1. **Rule evaluation**: `--rules` alerting rules (four in five a selector and threshold,
//!    one in five an aggregation) over `--series` active series, evaluated every
//!    `--interval` by Sightline and by Prometheus (2.42, Debian) over the same data,
//!    remote-written to both every interval. The CPU of each process is measured over
//!    `--intervals` intervals without rules and again with them; the difference per
//!    interval is the rules' cost. Target: Sightline ≤ 0.5× Prometheus.
//! 2. **Alert intake**: batches of 100 alerts from a pool of `--alert-pool` distinct alerts
//!    (grouped by `alertname`, so resends merge and dedupe) posted to `/api/v2/alerts` at
//!    `--alert-rate` alerts/s for `--alert-seconds`, to Sightline and to a real Alertmanager
//!    (0.25) in turn: the rate achieved, request latency, CPU per 10,000 alerts, and memory
//!    over the run (bounded once the pool has been seen).
//!
//! ```sh
//! cargo build --release -p sightline-server -p sightline-benches
//! target/release/alerting_load --work /tmp/alerting-bench
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};
use sightline_benches::process::{
    ServerProcess, clock_ticks, cpu_seconds, memory_bytes, percentile,
};
use sightline_benches::remote_write::{self, Label, Sample, TimeSeries, WriteRequest};
use sightline_benches::rng::Rng;

#[derive(Parser, Debug)]
struct Args {
    /// The `sightline` binary (release build).
    #[arg(long, default_value = "target/release/sightline")]
    server: PathBuf,
    #[arg(long, default_value = "/tmp/alerting-bench")]
    work: PathBuf,
    #[arg(long, default_value_t = 100_000)]
    series: usize,
    #[arg(long, default_value_t = 1_000)]
    rules: usize,
    /// Evaluation interval, seconds.
    #[arg(long, default_value_t = 15)]
    interval: u64,
    /// Intervals measured without rules and again with them.
    #[arg(long, default_value_t = 4)]
    intervals: u64,
    #[arg(long, default_value_t = 10_000)]
    alert_rate: u64,
    #[arg(long, default_value_t = 30)]
    alert_seconds: u64,
    #[arg(long, default_value_t = 50_000)]
    alert_pool: usize,
    /// Skip the rule-evaluation part.
    #[arg(long)]
    skip_rules: bool,
    /// Skip the alert-intake part.
    #[arg(long)]
    skip_intake: bool,
}

const JOBS: usize = 100;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A peer process, killed when dropped.
struct Peer {
    child: Child,
    url: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn wait_ready(url: &str) -> anyhow::Result<()> {
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !client
        .get(url)
        .send()
        .is_ok_and(|r| r.status().is_success())
    {
        if Instant::now() > deadline {
            bail!("{url} never became ready");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// The rule file: four in five rules a threshold on one job's series, one in five an
/// aggregation per instance group; about 1 % of the series are above the thresholds.
fn rule_file(rules: usize) -> String {
    let mut out = String::from("groups:\n");
    for g in 0..rules.div_ceil(100) {
        out.push_str(&format!("  - name: bench-{g}\n    rules:\n"));
        for r in g * 100..((g + 1) * 100).min(rules) {
            let job = r % JOBS;
            let expr = if r % 5 == 4 {
                format!("avg by (job, zone) (bench_load{{job=\"j{job}\"}}) > 60")
            } else {
                format!("bench_load{{job=\"j{job}\"}} > {}", 99 - (r / JOBS) % 3)
            };
            out.push_str(&format!(
                "      - alert: Bench{r}\n        expr: '{expr}'\n        for: 1m\n        labels:\n          severity: warning\n        annotations:\n          summary: 'load {{{{ $value }}}} on {{{{ $labels.instance }}}}'\n"
            ));
        }
    }
    out
}

/// One remote-write body per 10,000 series, all at `t`.
fn write_bodies(series: usize, t: i64, rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    for chunk in (0..series).collect::<Vec<_>>().chunks(10_000) {
        let req = WriteRequest {
            timeseries: chunk
                .iter()
                .map(|&i| {
                    // A stable level per series, a little noise per interval.
                    let level = (i * 7919 % 1000) as f64 / 10.0;
                    let value = (level + rng.below(3) as f64 - 1.0).clamp(0.0, 100.0);
                    TimeSeries {
                        labels: vec![
                            Label {
                                name: "__name__".into(),
                                value: "bench_load".into(),
                            },
                            Label {
                                name: "instance".into(),
                                value: format!("i-{i}"),
                            },
                            Label {
                                name: "job".into(),
                                value: format!("j{}", i % JOBS),
                            },
                            Label {
                                name: "zone".into(),
                                value: format!("z{}", i % 3),
                            },
                        ],
                        samples: vec![Sample {
                            value,
                            timestamp: t,
                        }],
                    }
                })
                .collect(),
        };
        bodies.push(remote_write::body(&req));
    }
    bodies
}

fn count_alerts(client: &reqwest::blocking::Client, base: &str) -> anyhow::Result<(usize, usize)> {
    let v: Value = client.get(format!("{base}/api/v1/alerts")).send()?.json()?;
    let alerts = v["data"]["alerts"].as_array().context("no alerts array")?;
    let firing = alerts.iter().filter(|a| a["state"] == "firing").count();
    Ok((alerts.len() - firing, firing))
}

fn rules_part(args: &Args) -> anyhow::Result<()> {
    let dir = args.work.join("rules");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let rules = dir.join("rules.yml");
    fs::write(&rules, "groups: []\n")?;
    let interval = args.interval;

    let port = free_port()?;
    fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  evaluation_interval: {interval}s\nrule_files: [{:?}]\n",
            rules.display().to_string()
        ),
    )?;
    let prometheus = Peer {
        child: Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prom").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .arg("--web.enable-lifecycle")
            .stdout(Stdio::null())
            .stderr(File::create(dir.join("prometheus.log"))?)
            .spawn()
            .context("starting prometheus")?,
        url: format!("http://127.0.0.1:{port}"),
    };
    fs::write(
        dir.join("sightline.toml"),
        format!(
            "[alerting]\nrule_files = [{:?}]\nevaluation_interval = \"{interval}s\"\n\n[limits]\nmax_request_bytes = 268435456\n",
            rules.display().to_string()
        ),
    )?;
    let sightline = ServerProcess::start(
        &args.server,
        &dir.join("data"),
        Some(&dir.join("sightline.toml")),
        &dir.join("sightline.log"),
    )?;
    let ours = format!("http://{}", sightline.http);
    wait_ready(&format!("{}/-/ready", prometheus.url))?;

    // Feed both every interval until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (stop, series, targets) = (
            stop.clone(),
            args.series,
            [
                format!("{}/api/v1/write", prometheus.url),
                format!("{ours}/api/v1/write"),
            ],
        );
        std::thread::spawn(move || -> anyhow::Result<()> {
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()?;
            let mut rng = Rng::new(7);
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let bodies = write_bodies(series, now_ms(), &mut rng);
                for url in &targets {
                    for body in &bodies {
                        remote_write::post(&client, url, body.clone())?;
                    }
                }
                let next = started + Duration::from_secs(interval);
                while Instant::now() < next && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Ok(())
        })
    };
    let ticks = clock_ticks()?;
    let prom_pid = prometheus.child.id();
    let cpu = |label: &str| -> anyhow::Result<(f64, f64)> {
        let s = sightline.cpu_seconds()?;
        let p = cpu_seconds(prom_pid, ticks)?;
        eprintln!("{label}: sightline {s:.2} CPU-s, prometheus {p:.2} CPU-s");
        Ok((s, p))
    };
    let measure = |what: &str| -> anyhow::Result<(f64, f64)> {
        let (s0, p0) = cpu(&format!("{what} start"))?;
        std::thread::sleep(Duration::from_secs(interval * args.intervals));
        let (s1, p1) = cpu(&format!("{what} end"))?;
        Ok((
            (s1 - s0) / args.intervals as f64,
            (p1 - p0) / args.intervals as f64,
        ))
    };
    eprintln!("warming up ({} intervals)", 2);
    std::thread::sleep(Duration::from_secs(2 * interval));
    let (base_ours, base_theirs) = measure("no rules")?;

    fs::write(&rules, rule_file(args.rules))?;
    let client = reqwest::blocking::Client::new();
    for base in [&prometheus.url, &ours] {
        let r = client.post(format!("{base}/-/reload")).send()?;
        if !r.status().is_success() {
            bail!("{base}/-/reload: {}", r.text()?);
        }
    }
    std::thread::sleep(Duration::from_secs(interval + 2));
    let (with_ours, with_theirs) = measure("with rules")?;
    let (pending_o, firing_o) = count_alerts(&client, &ours)?;
    let (pending_t, firing_t) = count_alerts(&client, &prometheus.url)?;
    stop.store(true, Ordering::Relaxed);
    feeder
        .join()
        .map_err(|_| anyhow::anyhow!("feeder panicked"))??;

    let ours_rules = with_ours - base_ours;
    let theirs_rules = with_theirs - base_theirs;
    println!(
        "## Rule evaluation: {} rules over {} series, every {interval} s",
        args.rules, args.series
    );
    println!("| figure | Sightline | Prometheus 2.42 |");
    println!("| --- | ---: | ---: |");
    println!("| CPU-s per interval, ingest only | {base_ours:.3} | {base_theirs:.3} |");
    println!("| CPU-s per interval, ingest + rules | {with_ours:.3} | {with_theirs:.3} |");
    println!("| **rules' CPU-s per interval** | **{ours_rules:.3}** | **{theirs_rules:.3}** |");
    println!(
        "| alerts at the end (pending / firing) | {pending_o} / {firing_o} | {pending_t} / {firing_t} |"
    );
    println!(
        "| peak RSS | {} MiB | {} MiB |",
        sightline.peak_rss_bytes().unwrap_or(0) >> 20,
        memory_bytes(prom_pid, "VmHWM").unwrap_or(0) >> 20
    );
    println!(
        "ratio (Sightline / Prometheus rules' CPU): {:.2} (target ≤ 0.5)",
        ours_rules / theirs_rules
    );
    drop(prometheus);
    Ok(())
}

use std::fs::File;

/// Posts alerts at `rate` per second for `seconds` to `base`; returns (alerts posted,
/// seconds, request latencies in ms, RSS samples in MiB).
fn post_alerts(
    base: &str,
    rate: u64,
    seconds: u64,
    pool: usize,
    pid: u32,
) -> anyhow::Result<(u64, f64, Vec<f64>, Vec<u64>)> {
    const BATCH: usize = 100;
    const THREADS: usize = 4;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut handles = Vec::new();
    for thread in 0..THREADS {
        let (base, stop) = (base.to_owned(), stop.clone());
        let per_thread = rate as f64 / THREADS as f64;
        handles.push(std::thread::spawn(move || -> anyhow::Result<(u64, Vec<f64>)> {
            let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build()?;
            let mut rng = Rng::new(thread as u64 + 1);
            let mut sent = 0u64;
            let mut latencies = Vec::new();
            let t0 = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                // Pace: this thread's share of the rate.
                let due = t0 + Duration::from_secs_f64(sent as f64 / per_thread);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let ends = (chrono::Utc::now() + chrono::Duration::minutes(5)).to_rfc3339();
                let batch: Vec<Value> = (0..BATCH)
                    .map(|_| {
                        let i = rng.below(pool as u64) as usize;
                        json!({
                            "labels": {"alertname": format!("Bench{}", i % 100), "instance": format!("i-{i}"), "severity": "warning"},
                            "annotations": {"summary": format!("instance i-{i} is slow")},
                            "endsAt": ends,
                        })
                    })
                    .collect();
                let t = Instant::now();
                let r = client.post(format!("{base}/api/v2/alerts")).json(&batch).send()?;
                if !r.status().is_success() {
                    bail!("{base}: {} {}", r.status(), r.text().unwrap_or_default());
                }
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                sent += BATCH as u64;
            }
            Ok((sent, latencies))
        }));
    }
    let mut rss = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(5));
        rss.push(memory_bytes(pid, "VmRSS").unwrap_or(0) >> 20);
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    let mut latencies = Vec::new();
    for h in handles {
        let (sent, l) = h.join().map_err(|_| anyhow::anyhow!("poster panicked"))??;
        total += sent;
        latencies.extend(l);
    }
    Ok((total, started.elapsed().as_secs_f64(), latencies, rss))
}

fn intake_part(args: &Args) -> anyhow::Result<()> {
    let dir = args.work.join("intake");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let am_config = "route:\n  receiver: blackhole\n  group_by: [alertname]\n  group_wait: 30s\n  group_interval: 5m\nreceivers:\n  - name: blackhole\n";
    fs::write(dir.join("alertmanager.yml"), am_config)?;
    fs::write(
        dir.join("sightline.toml"),
        format!(
            "[alerting]\nalertmanager_config = {:?}\n",
            dir.join("alertmanager.yml").display().to_string()
        ),
    )?;
    let ticks = clock_ticks()?;
    let mut rows = Vec::new();

    let sightline = ServerProcess::start(
        &args.server,
        &dir.join("data"),
        Some(&dir.join("sightline.toml")),
        &dir.join("sightline.log"),
    )?;
    let c0 = sightline.cpu_seconds()?;
    let ours = post_alerts(
        &format!("http://{}", sightline.http),
        args.alert_rate,
        args.alert_seconds,
        args.alert_pool,
        sightline.child.id(),
    )?;
    let ours_cpu = sightline.cpu_seconds()? - c0;
    let groups: Value =
        reqwest::blocking::get(format!("http://{}/api/v2/alerts/groups", sightline.http))?
            .json()?;
    rows.push((
        "Sightline",
        ours,
        ours_cpu,
        groups.as_array().map_or(0, Vec::len),
    ));
    drop(sightline);

    let port = free_port()?;
    let am = Peer {
        child: Command::new("prometheus-alertmanager")
            .arg(format!(
                "--config.file={}",
                dir.join("alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", dir.join("am").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting prometheus-alertmanager")?,
        url: format!("http://127.0.0.1:{port}"),
    };
    wait_ready(&format!("{}/-/ready", am.url))?;
    let pid = am.child.id();
    let c0 = cpu_seconds(pid, ticks)?;
    let theirs = post_alerts(
        &am.url,
        args.alert_rate,
        args.alert_seconds,
        args.alert_pool,
        pid,
    )?;
    let theirs_cpu = cpu_seconds(pid, ticks)? - c0;
    let groups: Value =
        reqwest::blocking::get(format!("{}/api/v2/alerts/groups", am.url))?.json()?;
    rows.push((
        "Alertmanager 0.25",
        theirs,
        theirs_cpu,
        groups.as_array().map_or(0, Vec::len),
    ));

    println!(
        "## Alert intake: batches of 100 from a pool of {} alerts, target {} alerts/s for {} s",
        args.alert_pool, args.alert_rate, args.alert_seconds
    );
    println!("| figure | {} | {} |", rows[0].0, rows[1].0);
    println!("| --- | ---: | ---: |");
    let rate = |r: &(u64, f64, Vec<f64>, Vec<u64>)| r.0 as f64 / r.1;
    println!(
        "| alerts/s achieved | {:.0} | {:.0} |",
        rate(&rows[0].1),
        rate(&rows[1].1)
    );
    println!(
        "| request p50 / p99, ms | {:.1} / {:.1} | {:.1} / {:.1} |",
        percentile(&rows[0].1.2, 0.5),
        percentile(&rows[0].1.2, 0.99),
        percentile(&rows[1].1.2, 0.5),
        percentile(&rows[1].1.2, 0.99)
    );
    println!(
        "| CPU-s per 10,000 alerts | {:.3} | {:.3} |",
        rows[0].2 / rows[0].1.0 as f64 * 10_000.0,
        rows[1].2 / rows[1].1.0 as f64 * 10_000.0
    );
    println!(
        "| RSS every 5 s, MiB | {:?} | {:?} |",
        rows[0].1.3, rows[1].1.3
    );
    println!("| groups at the end | {} | {} |", rows[0].3, rows[1].3);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !Path::new(&args.server).exists() {
        bail!(
            "{} not found: build it with cargo build --release -p sightline-server",
            args.server.display()
        );
    }
    fs::create_dir_all(&args.work)?;
    if !args.skip_intake {
        intake_part(&args)?;
    }
    if !args.skip_rules {
        rules_part(&args)?;
    }
    Ok(())
}
