//! The agent's footprint (issue 17): CPU and memory of `sightline agent` collecting host
//! metrics and forwarding them to a release server, beside Debian's
//! `prometheus-node-exporter` with the same collectors scraped on the same schedule, in the
//! same run.
//!
//!     cargo build --release -p sightline-server -p sightline-benches
//!     target/release/agent_footprint --work /tmp/agent-footprint
//!
//! Both run for `--duration` (300 s) after one interval of warm-up; figures: CPU as a share of
//! one core (user + system time over wall time), RSS at the end and at peak, collections and
//! bytes sent. node_exporter collects when scraped, so this bench scrapes it every
//! `--interval` (its scrape-side cost, reading the body, is ours, not its). The agent tails
//! no log file in this phase.
//!
//! Then log tailing: a second agent tails a file of `--log-lines` lines (~120 bytes each,
//! written before it starts) and forwards them to the server; figures: lines per second
//! read (until its `log_lines` counter has them all) and delivered (until its buffer is
//! empty), and the agent's CPU-seconds per GB read.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use sightline_benches::process::{ServerProcess, clock_ticks, cpu_seconds, memory_bytes};

#[derive(Parser, Debug)]
struct Args {
    /// The `sightline` binary (release).
    #[arg(long, default_value = "target/release/sightline")]
    bin: PathBuf,
    #[arg(long, default_value = "/tmp/agent-footprint")]
    work: PathBuf,
    /// Measured time, after one interval of warm-up.
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    duration: Duration,
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Lines of the log-tailing phase (0: skip it).
    #[arg(long, default_value_t = 1_000_000)]
    log_lines: u64,
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_agent(bin: &std::path::Path, config: &std::path::Path) -> anyhow::Result<Killed> {
    Ok(Killed(
        Command::new(bin)
            .args(["agent", "--config"])
            .arg(config)
            .env("SIGHTLINE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the agent")?,
    ))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn metric(url: &str, name: &str) -> Option<f64> {
    let text = reqwest::blocking::get(url).ok()?.text().ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = std::fs::remove_dir_all(&args.work);
    std::fs::create_dir_all(&args.work)?;
    let ticks = clock_ticks()?;
    let mut server = ServerProcess::start(
        &args.bin,
        &args.work.join("server"),
        None,
        &args.work.join("server.log"),
    )?;

    let agent_port = free_port()?;
    let config = args.work.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{agent_port}\"\nlogs = []\n[server]\nurl = \"http://{}\"\n\
             [buffer]\ndir = \"{}\"\n[host]\ninterval = \"{}ms\"\n",
            server.http,
            args.work.join("buffer").display(),
            args.interval.as_millis()
        ),
    )?;
    let agent = start_agent(&args.bin, &config)?;
    let ne_port = free_port()?;
    let mut ne_args = vec![
        format!("--web.listen-address=127.0.0.1:{ne_port}"),
        "--collector.disable-defaults".to_string(),
    ];
    for c in sightline_collector::host::Collector::ALL {
        ne_args.push(format!("--collector.{}", c.name()));
    }
    let node_exporter = Killed(
        Command::new("prometheus-node-exporter")
            .args(&ne_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting prometheus-node-exporter (scripts/install-test-deps.sh)")?,
    );
    let agent_metrics = format!("http://127.0.0.1:{agent_port}/metrics");
    let ne_url = format!("http://127.0.0.1:{ne_port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&agent_metrics, "sightline_agent_host_collections_total").is_none()
        || reqwest::blocking::get(&ne_url).is_err()
    {
        if Instant::now() > deadline {
            bail!("the agent or node_exporter did not start");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let scrape =
        || -> anyhow::Result<usize> { Ok(reqwest::blocking::get(&ne_url)?.bytes()?.len()) };
    // Warm-up: one interval, both collecting once.
    scrape()?;
    std::thread::sleep(args.interval);
    let (a_pid, n_pid) = (agent.0.id(), node_exporter.0.id());
    let a0 = cpu_seconds(a_pid, ticks)?;
    let n0 = cpu_seconds(n_pid, ticks)?;
    let c0 = metric(&agent_metrics, "sightline_agent_host_collections_total").unwrap_or(0.0);
    let start = Instant::now();
    let mut next = start;
    let mut scrapes = 0;
    let mut body_bytes = 0;
    while start.elapsed() < args.duration {
        body_bytes = scrape()?;
        scrapes += 1;
        next += args.interval;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d.min(args.duration.saturating_sub(start.elapsed())));
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let a_cpu = cpu_seconds(a_pid, ticks)? - a0;
    let n_cpu = cpu_seconds(n_pid, ticks)? - n0;
    let collections =
        metric(&agent_metrics, "sightline_agent_host_collections_total").unwrap_or(0.0) - c0;
    let samples = metric(&agent_metrics, "sightline_agent_host_samples_total").unwrap_or(0.0);
    let pending = metric(&agent_metrics, "sightline_agent_buffer_pending_records").unwrap_or(-1.0);
    let mib = |b: Option<u64>| b.map_or(f64::NAN, |b| b as f64 / (1 << 20) as f64);
    println!(
        "agent_footprint: {wall:.0} s, every {:?}; {collections:.0} agent collections \
         ({samples:.0} samples in all, {pending:.0} pending at the end), {scrapes} node_exporter scrapes ({body_bytes} bytes each)",
        args.interval
    );
    println!(
        "agent:         CPU {a_cpu:.2} s = {:.3} % of a core; RSS {:.1} MiB (peak {:.1} MiB)",
        100.0 * a_cpu / wall,
        mib(memory_bytes(a_pid, "VmRSS")),
        mib(memory_bytes(a_pid, "VmHWM")),
    );
    println!(
        "node_exporter: CPU {n_cpu:.2} s = {:.3} % of a core; RSS {:.1} MiB (peak {:.1} MiB)",
        100.0 * n_cpu / wall,
        mib(memory_bytes(n_pid, "VmRSS")),
        mib(memory_bytes(n_pid, "VmHWM")),
    );
    println!(
        "agent / node_exporter CPU: {:.2}",
        if n_cpu > 0.0 { a_cpu / n_cpu } else { f64::NAN }
    );
    drop(agent);
    drop(node_exporter);
    if args.log_lines > 0 {
        log_phase(&args, &server, ticks)?;
    }
    server.stop()?;
    Ok(())
}

fn log_phase(args: &Args, server: &ServerProcess, ticks: f64) -> anyhow::Result<()> {
    use std::io::Write;
    let logs = args.work.join("logs");
    std::fs::create_dir_all(&logs)?;
    let mut file = std::io::BufWriter::new(std::fs::File::create(logs.join("app.log"))?);
    let mut bytes = 0u64;
    for i in 0..args.log_lines {
        let line = format!(
            "2026-12-07T10:00:00.{:06}Z level=info service=payments trace_id={:016x} msg=\"payment accepted\" amount={}\n",
            i % 1_000_000,
            i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            i % 9973
        );
        bytes += line.len() as u64;
        file.write_all(line.as_bytes())?;
    }
    file.flush()?;
    drop(file);
    let port = free_port()?;
    let config = args.work.join("agent-logs.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\n[server]\nurl = \"http://{}\"\n\
             [buffer]\ndir = \"{}\"\nmax_bytes = 4294967296\n[host]\nenabled = false\n\
             [[logs]]\ninclude = [\"{}/*.log\"]\n",
            server.http,
            args.work.join("buffer-logs").display(),
            logs.display()
        ),
    )?;
    let started = Instant::now();
    let agent = start_agent(&args.bin, &config)?;
    let url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(3600);
    let mut read_at = None;
    loop {
        let lines = metric(&url, "sightline_agent_log_lines_total").unwrap_or(0.0) as u64;
        if read_at.is_none() && lines >= args.log_lines {
            read_at = Some((started.elapsed(), cpu_seconds(agent.0.id(), ticks)?));
        }
        let pending = metric(&url, "sightline_agent_buffer_pending_records").unwrap_or(1.0);
        if read_at.is_some() && pending == 0.0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("the log phase did not finish in an hour");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let delivered = started.elapsed();
    let cpu = cpu_seconds(agent.0.id(), ticks)?;
    let (read, read_cpu) = read_at.expect("read");
    let gb = bytes as f64 / 1e9;
    println!(
        "log tailing: {} lines, {:.1} MB; read in {:.1} s = {:.0} lines/s (agent CPU {:.1} s = {:.1} CPU-s/GB); \
         delivered to the server in {:.1} s = {:.0} lines/s (agent CPU {:.1} s = {:.1} CPU-s/GB); agent RSS peak {:.1} MiB",
        args.log_lines,
        bytes as f64 / 1e6,
        read.as_secs_f64(),
        args.log_lines as f64 / read.as_secs_f64(),
        read_cpu,
        read_cpu / gb,
        delivered.as_secs_f64(),
        args.log_lines as f64 / delivered.as_secs_f64(),
        cpu,
        cpu / gb,
        memory_bytes(agent.0.id(), "VmHWM").unwrap_or(0) as f64 / (1 << 20) as f64,
    );
    Ok(())
}
