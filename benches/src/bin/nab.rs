//! NAB evaluation harness: runs the default `sightline-anomaly` detector over a NAB
//! directory, writes the raw scores in NAB's results layout and scores them with the
//! re-implemented NAB scorer.
//!
//! ```text
//! cargo run --release -p sightline-benches --bin nab -- \
//!     --data ../shared/datasets/nab --out /tmp/nab-results
//! ```
//!
//! Each file gets a fresh detector, fed row by row (scored before it learns the row); its
//! warm-up is NAB's probationary period, the only per-file input NAB's protocol gives a
//! detector. Prints one line per file (windows detected, false-positive rows and raw score
//! at the standard profile's threshold), one line per profile, and as the last line a JSON
//! object `{"standard": S, "reward_low_FP_rate": S, "reward_low_FN_rate": S}`.
//! `--config` overrides the detector configuration (JSON, for exploring settings; the
//! reported figures use the default).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use sightline_anomaly::{Detector, DetectorConfig};
use sightline_benches::nab::{self, ScoredFile};

const DETECTOR_NAME: &str = "sightline";

#[derive(Parser, Debug)]
#[command(about = "Score the sightline anomaly detector on a NAB directory")]
struct Args {
    /// NAB directory with `data/`, `labels/combined_windows.json`, `config/profiles.json`.
    #[arg(long)]
    data: PathBuf,
    /// Where the raw scores go (`OUT/<category>/sightline_<file>.csv`).
    #[arg(long)]
    out: PathBuf,
    /// Detector configuration as JSON (fields not given keep their default).
    #[arg(long)]
    config: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config: DetectorConfig = match &args.config {
        Some(text) => serde_json::from_str(text).context("parsing --config")?,
        None => DetectorConfig::default(),
    };
    let corpus = nab::read_corpus(&args.data)
        .with_context(|| format!("reading NAB corpus in {}", args.data.display()))?;
    let profiles = nab::read_profiles(&args.data.join("config/profiles.json"))?;

    let started = Instant::now();
    let mut points = 0usize;
    let mut scored = Vec::with_capacity(corpus.len());
    let mut max_state = 0usize;
    for file in &corpus {
        let mut detector = Detector::new(DetectorConfig {
            warmup: nab::scorer::probationary_period(file.values.len()) as u32,
            ..config
        });
        let scores: Vec<f64> = file
            .epoch_seconds
            .iter()
            .zip(&file.values)
            .map(|(&t, &v)| detector.observe(t, v).value)
            .collect();
        points += scores.len();
        max_state = max_state.max(detector.checkpoint()?.len());
        nab::write_results(&args.out, DETECTOR_NAME, file, &scores)?;
        scored.push(ScoredFile {
            name: file.relative.clone(),
            scores,
            windows: file.windows.clone(),
        });
    }
    let elapsed = started.elapsed().as_secs_f64();

    let standard = profiles
        .get("standard")
        .copied()
        .unwrap_or(nab::CostProfile::STANDARD);
    let standard_result = nab::score_corpus(&scored, &standard);
    println!(
        "{:<60} {:>6} {:>9} {:>8} {:>9}",
        "file", "rows", "detected", "fp_rows", "raw"
    );
    for file in &scored {
        let outcome = nab::file_outcome(file, &standard, standard_result.threshold);
        println!(
            "{:<60} {:>6} {:>5}/{:<3} {:>8} {:>9.3}",
            file.name,
            file.scores.len(),
            outcome.windows_detected,
            outcome.windows,
            outcome.false_positive_rows,
            outcome.raw
        );
    }
    println!(
        "{} files, {points} points, detector {:.2} s ({:.0} points/s incl. result writing), largest state {max_state} bytes",
        scored.len(),
        elapsed,
        points as f64 / elapsed.max(1e-9),
    );
    // The three profiles in the order the summary line names them; weights come from
    // `config/profiles.json`, NAB's built-in values only if a profile is missing there.
    let named = [
        ("standard", nab::CostProfile::STANDARD),
        ("reward_low_FP_rate", nab::CostProfile::REWARD_LOW_FP),
        ("reward_low_FN_rate", nab::CostProfile::REWARD_LOW_FN),
    ];
    let mut summary = Vec::new();
    for (name, fallback) in named {
        let profile = profiles.get(name).copied().unwrap_or(fallback);
        let result = nab::score_corpus(&scored, &profile);
        println!(
            "profile {name}: threshold {:.6} raw {:.4} null {:.1} perfect {:.1} score {:.2}",
            result.threshold, result.raw, result.null, result.perfect, result.normalized
        );
        summary.push(format!(
            "{}: {}",
            serde_json::json!(name),
            serde_json::json!(result.normalized)
        ));
    }
    println!("{{{}}}", summary.join(", "));
    Ok(())
}
