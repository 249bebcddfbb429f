//! Single-threaded mining throughput on a mixed corpus: the `Content` column of every
//! Loghub 2k sample, interleaved line by line across systems, fed to one miner.
//!
//! Run: `cargo bench -p sightline-patterns --bench miner`. The data directory defaults to
//! `../shared/datasets/loghub` beside the workspace; override it with `LOGHUB_DIR`.

use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sightline_patterns::{Miner, MinerConfig};

fn loghub_dir() -> PathBuf {
    std::env::var_os("LOGHUB_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/loghub"),
        PathBuf::from,
    )
}

/// The contents of every system, interleaved so consecutive lines come from different logs;
/// `None` when the data set is not there.
fn mixed_corpus() -> Option<Vec<String>> {
    let dir = loghub_dir();
    let mut systems: Vec<Vec<String>> = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| eprintln!("skipping: cannot read {}: {e}", dir.display()))
        .ok()?
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry
            .path()
            .join(format!("{name}_2k.log_structured_corrected.csv"));
        let Ok(mut reader) = csv::Reader::from_path(&path) else {
            continue;
        };
        let headers = reader.headers().unwrap().clone();
        let content = headers.iter().position(|h| h == "Content").unwrap();
        let lines: Vec<String> = reader
            .records()
            .map(|r| r.unwrap()[content].to_owned())
            .collect();
        systems.push(lines);
    }
    assert!(
        !systems.is_empty(),
        "no Loghub systems under {}",
        dir.display()
    );
    let longest = systems.iter().map(Vec::len).max().unwrap_or(0);
    let mut corpus = Vec::new();
    for i in 0..longest {
        for system in &systems {
            if let Some(line) = system.get(i) {
                corpus.push(line.clone());
            }
        }
    }
    Some(corpus)
}

fn bench_miner(c: &mut Criterion) {
    let Some(corpus) = mixed_corpus() else {
        return;
    };
    let mut group = c.benchmark_group("patterns/mine");
    group.throughput(Throughput::Elements(corpus.len() as u64));
    // A warm miner: the steady state of a long-running stream, where patterns exist.
    group.bench_function("loghub_mixed_warm", |b| {
        let mut miner = Miner::new(MinerConfig::default()).unwrap();
        for line in &corpus {
            miner.mine(line, 0);
        }
        b.iter(|| {
            for (t, line) in corpus.iter().enumerate() {
                std::hint::black_box(miner.mine(line, t as i64));
            }
        });
    });
    // A cold miner each time: includes creating every pattern.
    group.bench_function("loghub_mixed_cold", |b| {
        b.iter(|| {
            let mut miner = Miner::new(MinerConfig::default()).unwrap();
            for (t, line) in corpus.iter().enumerate() {
                std::hint::black_box(miner.mine(line, t as i64));
            }
            miner.len()
        });
    });
    group.finish();
}

criterion_group!(benches, bench_miner);
criterion_main!(benches);
