//! A realistic load, measured: 100k series scraped every 15 s for 2 h (the brief's
//! reference), appended in remote-write-sized batches; prints the append rate, head memory
//! per series (the store's own estimate and the process RSS growth), and bytes per sample
//! on disk once cut into a block and after compaction.
//!
//! Run: `cargo test -p sightline-tsdb --release --test load -- --ignored --nocapture`
//! (`TSDB_LOAD_SERIES`, `TSDB_LOAD_HOURS` and `TSDB_LOAD_JITTER_MS` change the size and the
//! scrape jitter).

use std::time::Instant;

use sightline_model::{Labels, MetricBatch, MetricSeries, Sample, TenantId};
use sightline_tsdb::{Tsdb, TsdbOptions};

const T0: i64 = 1_699_920_000_000;
const STEP: i64 = 15_000;
/// Series per scrape target (one target's samples share a timestamp, as in a scrape).
const PER_TARGET: usize = 100;

fn env(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// How a series' value moves: the kinds of a typical exporter/application mix.
#[derive(Clone, Copy)]
enum Kind {
    /// Request counters: small integer increments, often none.
    Counter,
    /// CPU-seconds counters: increments in 0.01 steps.
    CpuSeconds,
    /// Memory/byte gauges: multiples of 4096 in a slow random walk.
    Bytes,
    /// `up`, `*_info`, configuration gauges: constant.
    Constant,
    /// Latency/temperature gauges: 3 decimals in a random walk.
    Gauge,
}

fn kind_of(i: usize) -> Kind {
    match i % 20 {
        0..=5 => Kind::Counter,
        6..=8 => Kind::CpuSeconds,
        9..=12 => Kind::Bytes,
        13..=16 => Kind::Constant,
        _ => Kind::Gauge,
    }
}

fn next_value(kind: Kind, v: f64, rng: &mut Rng) -> f64 {
    match kind {
        Kind::Counter => {
            v + if rng.below(3) == 0 {
                0.0
            } else {
                rng.below(20) as f64
            }
        }
        Kind::CpuSeconds => ((v * 100.0).round() + rng.below(150) as f64) / 100.0,
        Kind::Bytes => (v + (rng.below(9) as f64 - 4.0) * 4096.0).max(0.0),
        Kind::Constant => v,
        Kind::Gauge => (((v * 1000.0).round() + rng.below(21) as f64 - 10.0) / 1000.0).max(0.0),
    }
}

fn labels_of(i: usize) -> Labels {
    let names = [
        "http_requests_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "up",
        "http_request_duration_seconds",
    ];
    let kind = kind_of(i) as usize;
    Labels::from_pairs([
        ("__name__", format!("{}_{}", names[kind], i % 40)),
        (
            "instance",
            format!(
                "10.0.{}.{}:9100",
                (i / PER_TARGET) / 250,
                (i / PER_TARGET) % 250
            ),
        ),
        ("job", format!("service-{}", (i / PER_TARGET) % 37)),
        ("namespace", format!("ns-{}", (i / PER_TARGET) % 11)),
        ("handler", format!("/api/v1/h{}", i % PER_TARGET % 13)),
    ])
}

#[test]
#[ignore = "a measurement (a few minutes in release): run with --ignored --nocapture"]
fn realistic_load_memory_and_disk_figures() {
    let n = env("TSDB_LOAD_SERIES", 100_000) as usize;
    let hours = env("TSDB_LOAD_HOURS", 2);
    let jitter = env("TSDB_LOAD_JITTER_MS", 3);
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(TsdbOptions {
        dir: dir.path().to_path_buf(),
        ..TsdbOptions::default()
    })
    .unwrap();
    let tenant = TenantId::default_tenant();
    let labels: Vec<Labels> = (0..n).map(labels_of).collect();
    let mut values: Vec<f64> = (0..n)
        .map(|i| match kind_of(i) {
            Kind::Bytes => 4096.0 * 50_000.0,
            Kind::Constant => 1.0,
            Kind::Gauge => 0.25,
            _ => 0.0,
        })
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // Batches of 1000 series built once and updated in place, so the process's memory
    // growth is the store's, not the load generator's garbage.
    let mut batches: Vec<MetricBatch> = (0..n)
        .step_by(1000)
        .map(|start| MetricBatch {
            tenant: tenant.clone(),
            series: (start..(start + 1000).min(n))
                .map(|i| MetricSeries {
                    labels: labels[i].clone(),
                    samples: vec![Sample { t: 0, v: 0.0 }],
                })
                .collect(),
        })
        .collect();
    // `labels` stays alive: memory it freed would otherwise be reused by the store unseen.
    let rss_start = rss_bytes();
    let steps = hours * 3600 * 1000 / STEP;
    let mut samples = 0u64;
    let mut append_time = std::time::Duration::ZERO;
    let mut maintain_time = std::time::Duration::ZERO;
    for step in 0..steps {
        let base = T0 + step * STEP;
        // Half the targets scrape with a few ms of jitter, half exactly on time (recent
        // Prometheus versions align timestamps within 2 ms).
        for (b, batch) in batches.iter_mut().enumerate() {
            for (k, s) in batch.series.iter_mut().enumerate() {
                let i = b * 1000 + k;
                let target = i / PER_TARGET;
                let j = if target.is_multiple_of(2) && jitter > 0 {
                    ((step as u64 * 7919 + target as u64 * 104_729) % (2 * jitter as u64 + 1))
                        as i64
                        - jitter
                } else {
                    0
                };
                values[i] = next_value(kind_of(i), values[i], &mut rng);
                s.samples[0] = Sample {
                    t: base + j,
                    v: values[i],
                };
            }
        }
        // One append call per 10 batches of 1000 series: the server's group commit.
        let start = Instant::now();
        for group in batches.chunks(10) {
            let refs: Vec<&MetricBatch> = group.iter().collect();
            for r in db.append(&refs).unwrap() {
                assert_eq!(r.rejected_total(), 0, "{r:?}");
                samples += r.accepted;
            }
        }
        append_time += start.elapsed();
        if step % 40 == 39 {
            // Maintenance every 10 simulated minutes (the server runs it every minute).
            let start = Instant::now();
            db.maintain(base).unwrap();
            maintain_time += start.elapsed();
        }
    }
    db.maintain(T0 + steps * STEP).unwrap();
    let st = db.stats();
    let rss = rss_bytes().saturating_sub(rss_start);
    println!(
        "load: {n} series × {hours} h at 15 s (jitter ±{jitter} ms on half the targets) = {samples} samples"
    );
    println!(
        "append: {:.2} M samples/s ({:.1} s in append calls, one fsync per call of 10 000 samples)",
        samples as f64 / append_time.as_secs_f64() / 1e6,
        append_time.as_secs_f64()
    );
    println!(
        "maintain: {:.1} s in total (packing full chunks)",
        maintain_time.as_secs_f64()
    );
    println!(
        "head: {} series, {} samples, {:.2} bytes/sample compressed, estimated memory {:.0} bytes/series, RSS growth {:.0} bytes/series",
        st.head_series,
        st.head_samples,
        st.head_chunk_bytes as f64 / st.head_samples as f64,
        st.head_memory_bytes as f64 / st.head_series as f64,
        rss as f64 / st.head_series as f64
    );
    let start = Instant::now();
    db.flush().unwrap();
    let snapshot = std::fs::metadata(dir.path().join("head.snapshot"))
        .unwrap()
        .len();
    println!(
        "head snapshot: {:.2} s for {:.1} MB ({:.0} bytes/series)",
        start.elapsed().as_secs_f64(),
        snapshot as f64 / 1e6,
        snapshot as f64 / st.head_series as f64
    );
    // Cut everything into blocks (the tenant looks idle 3 h later), then measure disk.
    let rep = db.maintain(T0 + (hours + 4) * 3600 * 1000).unwrap();
    let st = db.stats();
    println!(
        "blocks: {} ({} cut, {} compactions): {} samples in {} bytes = {:.3} bytes/sample on disk",
        st.blocks,
        rep.blocks_cut,
        rep.compactions,
        st.block_samples,
        st.block_bytes,
        st.block_bytes as f64 / st.block_samples as f64
    );
    let start = Instant::now();
    let m = sightline_model::LabelMatcher::new("job", sightline_model::MatchOp::Equal, "service-3")
        .unwrap();
    let got = db
        .select(&tenant, &[m], T0, T0 + hours * 3600 * 1000)
        .unwrap();
    println!(
        "select from blocks: {} series, {} samples in {:.1} ms",
        got.len(),
        got.iter().map(|s| s.samples.len()).sum::<usize>(),
        start.elapsed().as_secs_f64() * 1000.0
    );
}
