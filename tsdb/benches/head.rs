//! Head append throughput and select latency with 100k series.
//!
//! Run: `cargo bench -p sightline-tsdb --bench head`. Appends are grouped as the server
//! groups them (batches of 1000 series, one WAL fsync per call); the fsync is part of the
//! figure, so the disk matters.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sightline_model::{LabelMatcher, Labels, MatchOp, MetricBatch, MetricSeries, Sample, TenantId};
use sightline_tsdb::{Tsdb, TsdbOptions};

const SERIES: usize = 100_000;
const STEP: i64 = 15_000;
const T0: i64 = 1_699_920_000_000;

fn labels(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", format!("metric_{}", i % 50)),
        ("instance", format!("host-{}", i / 100)),
        ("job", format!("service-{}", (i / 100) % 37)),
        ("handler", format!("/h{}", i % 13)),
    ])
}

/// One scrape of every series at `t`, as batches of 1000 series.
fn scrape(all: &[Labels], t: i64) -> Vec<MetricBatch> {
    all.chunks(1000)
        .map(|chunk| MetricBatch {
            tenant: TenantId::default_tenant(),
            series: chunk
                .iter()
                .enumerate()
                .map(|(i, l)| MetricSeries {
                    labels: l.clone(),
                    samples: vec![Sample {
                        t,
                        v: ((t - T0) / STEP) as f64 * (i % 7) as f64,
                    }],
                })
                .collect(),
        })
        .collect()
}

fn append_all(db: &Tsdb, batches: &[MetricBatch], per_call: usize) {
    for group in batches.chunks(per_call) {
        let refs: Vec<&MetricBatch> = group.iter().collect();
        for r in db.append(&refs).unwrap() {
            assert_eq!(r.rejected_total(), 0);
        }
    }
}

fn bench(c: &mut Criterion) {
    let all: Vec<Labels> = (0..SERIES).map(labels).collect();
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(TsdbOptions {
        dir: dir.path().to_path_buf(),
        ..TsdbOptions::default()
    })
    .unwrap();
    // Warm: every series exists and has 10 min of samples.
    let mut t = T0;
    for _ in 0..40 {
        append_all(&db, &scrape(&all, t), 100);
        t += STEP;
    }

    let mut group = c.benchmark_group("tsdb/head");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(SERIES as u64));
    for per_call in [100usize, 10] {
        let name = format!("append 100k series, {} samples per call", per_call * 1000);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let batches = scrape(&all, t);
                    t += STEP;
                    let start = Instant::now();
                    append_all(&db, &batches, per_call);
                    spent += start.elapsed();
                }
                spent
            })
        });
    }
    group.throughput(Throughput::Elements(1));
    let tenant = TenantId::default_tenant();
    let m = |n: &str, op, v: &str| LabelMatcher::new(n, op, v).unwrap();
    let one = [
        m("__name__", MatchOp::Equal, "metric_7"),
        m("instance", MatchOp::Equal, "host-7"),
    ];
    group.bench_function("select 1 series, last 1 h", |b| {
        b.iter(|| db.select(&tenant, &one, t - 3_600_000, t).unwrap())
    });
    let job = [m("job", MatchOp::Equal, "service-3")];
    group.bench_function("select 2.7k series (job), last 5 min", |b| {
        b.iter(|| db.select(&tenant, &job, t - 300_000, t).unwrap())
    });
    let re = [
        m("__name__", MatchOp::Regex, "metric_1.*"),
        m("handler", MatchOp::NotEqual, "/h3"),
    ];
    group.bench_function("select regex 20k series, last 5 min", |b| {
        b.iter(|| db.select(&tenant, &re, t - 300_000, t).unwrap())
    });
    group.finish();
    let st = db.stats();
    println!(
        "head: {} series, {} samples, estimated {} bytes/series",
        st.head_series,
        st.head_samples,
        st.head_memory_bytes / st.head_series.max(1)
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
