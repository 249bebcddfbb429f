//! Processes under test: the release `sightline serve` started on loopback port 0 (its
//! addresses read from its log), any peer process's CPU time and memory from the kernel's
//! accounting (`/proc/PID/stat`, `/proc/PID/status`), and small measuring helpers shared by
//! the load harnesses.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, bail};

/// Nearest-rank percentile of `q` in [0, 1].
pub fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

pub fn dir_size(path: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(path).with_context(|| format!("reading {}", path.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// The server under test.
pub struct ServerProcess {
    pub child: Child,
    pub http: SocketAddr,
    pub otlp_http: SocketAddr,
    pub otlp_grpc: SocketAddr,
    clock_ticks: f64,
}

impl ServerProcess {
    pub fn start(
        bin: &Path,
        data_dir: &Path,
        config: Option<&Path>,
        log_path: &Path,
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(bin);
        command.arg("serve");
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let mut child = command
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--http-addr", "127.0.0.1:0"])
            .args(["--otlp-grpc-addr", "127.0.0.1:0"])
            .args(["--otlp-http-addr", "127.0.0.1:0"])
            .args(["--syslog-addr", "127.0.0.1:0"])
            // The measured load only: the server's scrape of itself stays out of the figures.
            .args(["--self-scrape", "false"])
            // Nor the built-in rule packs' evaluations.
            .args(["--rule-packs", "false"])
            .env("SIGHTLINE_LOG", "info")
            .env_remove("SIGHTLINE_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stderr = child.stderr.take().context("piped stderr")?;
        let mut log = BufWriter::new(File::create(log_path)?);
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("sightline listening") {
                    let _ = tx.send(line.clone());
                }
                let _ = writeln!(log, "{line}");
                let _ = log.flush();
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .context("server did not log its addresses within 60 s")?;
        let field = |name: &str| -> anyhow::Result<SocketAddr> {
            line.split_whitespace()
                .filter_map(|t| t.split_once('='))
                .find(|(k, _)| k.trim_start_matches("\u{1b}[3m") == name || k.ends_with(name))
                .with_context(|| format!("no {name} in {line:?}"))?
                .1
                .trim_matches(|c: char| !c.is_ascii_digit() && c != '.' && c != ':')
                .parse()
                .with_context(|| format!("bad {name} in {line:?}"))
        };
        Ok(Self {
            http: field("http_addr")?,
            otlp_http: field("otlp_http_addr")?,
            otlp_grpc: field("otlp_grpc_addr")?,
            clock_ticks: clock_ticks()?,
            child,
        })
    }

    /// User plus system CPU time of the server process so far (all its threads).
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(self.child.id(), self.clock_ticks)
    }

    pub fn peak_rss_bytes(&self) -> Option<u64> {
        memory_bytes(self.child.id(), "VmHWM")
    }

    /// SIGTERM, then wait for the clean exit (the server commits before it exits).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        let status = self.child.wait()?;
        if !status.success() {
            bail!("server exited with {status}");
        }
        Ok(())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`), the unit of `/proc/PID/stat`.
pub fn clock_ticks() -> anyhow::Result<f64> {
    let ticks = Command::new("getconf").arg("CLK_TCK").output()?;
    Ok(String::from_utf8_lossy(&ticks.stdout).trim().parse()?)
}

/// User plus system CPU time of a process so far (all its threads), in seconds.
pub fn cpu_seconds(pid: u32, clock_ticks: f64) -> anyhow::Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = &stat[stat.rfind(')').context("malformed stat")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields[11].parse()?;
    let stime: f64 = fields[12].parse()?;
    Ok((utime + stime) / clock_ticks)
}

/// A memory figure of `/proc/PID/status` in bytes: `VmRSS` (now) or `VmHWM` (peak).
pub fn memory_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&v, 0.5), 3.0);
        assert_eq!(percentile(&v, 0.99), 5.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
    }

    #[test]
    fn own_process_has_cpu_time_and_memory() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid, clock_ticks().unwrap()).unwrap() >= 0.0);
        assert!(memory_bytes(pid, "VmRSS").unwrap() > 0);
    }
}
