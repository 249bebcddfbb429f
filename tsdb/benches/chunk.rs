//! Chunk encoding and decoding throughput, and bytes per sample, on realistic series: a
//! counter and a gauge scraped every 15 s with a little timestamp jitter.
//!
//! Run: `cargo bench -p sightline-tsdb --bench chunk`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sightline_tsdb::{Chunk, ChunkAppender, chunk::MAX_SAMPLES};

fn series(kind: &str) -> Vec<(i64, f64)> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut t = 1_700_000_000_000i64;
    let mut v = 0.0f64;
    (0..MAX_SAMPLES)
        .map(|_| {
            // Scrapes land within a few ms of the interval.
            t += 15_000 + (next() % 7) as i64 - 3;
            v = match kind {
                "counter" => v + (next() % 50) as f64,
                _ => 40.0 + (next() % 2000) as f64 / 100.0,
            };
            (t, v)
        })
        .collect()
}

fn encode(samples: &[(i64, f64)]) -> Chunk {
    let mut a = ChunkAppender::new();
    for &(t, v) in samples {
        a.append(t, v);
    }
    a.chunk()
}

fn bench_chunks(c: &mut Criterion) {
    let mut group = c.benchmark_group("tsdb/chunk");
    for kind in ["counter", "gauge"] {
        let samples = series(kind);
        let chunk = encode(&samples);
        println!(
            "{kind}: {:.2} bytes per sample ({} samples in {} bytes)",
            chunk.as_bytes().len() as f64 / samples.len() as f64,
            samples.len(),
            chunk.as_bytes().len()
        );
        group.throughput(Throughput::Elements(samples.len() as u64));
        group.bench_function(format!("encode_{kind}"), |b| {
            b.iter(|| encode(std::hint::black_box(&samples)))
        });
        group.bench_function(format!("decode_{kind}"), |b| {
            b.iter(|| {
                chunk
                    .iter()
                    .map(|s| s.map(|(_, v)| v).unwrap_or(0.0))
                    .sum::<f64>()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_chunks);
criterion_main!(benches);
