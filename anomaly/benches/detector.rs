//! Throughput of the default detector (points per second on one core) and its state size.
//!
//! ```text
//! cargo bench -p sightline-anomaly --bench detector
//! ```

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sightline_anomaly::{Detector, DetectorConfig};

/// A daily-seasonal series with noise, five-minute steps, generated without I/O.
fn series(points: usize) -> Vec<(i64, f64)> {
    let mut x: u64 = 42;
    (0..points)
        .map(|i| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let t = i as i64 * 300;
            let phase = (t % 86_400) as f64 / 86_400.0 * std::f64::consts::TAU;
            (t, 100.0 + 20.0 * phase.sin() + 3.0 * noise)
        })
        .collect()
}

fn observe(c: &mut Criterion) {
    let points = series(100_000);
    let mut group = c.benchmark_group("anomaly/detector");
    group.throughput(Throughput::Elements(points.len() as u64));
    group.bench_function("observe_default", |b| {
        b.iter(|| {
            let mut detector = Detector::new(DetectorConfig::default());
            let mut sum = 0.0;
            for &(t, v) in &points {
                sum += detector.observe(t, v).value;
            }
            black_box(sum)
        })
    });
    group.finish();

    let mut detector = Detector::new(DetectorConfig::default());
    for &(t, v) in &points {
        detector.observe(t, v);
    }
    let bytes = detector.checkpoint().map(|b| b.len()).unwrap_or(0);
    println!("anomaly/detector/state_bytes: {bytes} (postcard checkpoint)");
}

criterion_group!(benches, observe);
criterion_main!(benches);
