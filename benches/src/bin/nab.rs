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
//!
//! `--protocol` runs the generalisation protocol instead (`benches/PROTOCOL.md`): the files
//! are split into folds — stratified by category (`--folds`, `--seed`) and one category
//! held out at a time — and on each fold the configuration (from `--grid`, a JSON array of
//! partial configurations; the default alone if absent) and the threshold are chosen on the
//! training files only and scored on the held-out ones. Prints each fold, the mean and
//! spread of the held-out scores, the held-out scores pooled over the folds, and the
//! all-files figure; the last line is JSON.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use sightline_anomaly::{Detector, DetectorConfig};
use sightline_benches::folds;
use sightline_benches::nab::{self, ScoredFile};

const DETECTOR_NAME: &str = "sightline";

#[derive(Parser, Debug)]
#[command(about = "Score the sightline anomaly detector on a NAB directory")]
struct Args {
    /// NAB directory with `data/`, `labels/combined_windows.json`, `config/profiles.json`.
    #[arg(long)]
    data: PathBuf,
    /// Where the raw scores go (`OUT/<category>/sightline_<file>.csv`); not written
    /// without it.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Detector configuration as JSON (fields not given keep their default).
    #[arg(long)]
    config: Option<String>,
    /// Run the generalisation protocol (folds) instead of the single scoring.
    #[arg(long)]
    protocol: bool,
    /// With `--protocol`: the configurations to choose from, a JSON array of partial
    /// configurations (each over `--config` or the default).
    #[arg(long)]
    grid: Option<String>,
    /// With `--protocol`: stratified folds.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// With `--protocol`: the seed that deals files to the stratified folds.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// The three profiles in the order the summary lines name them; weights come from
/// `config/profiles.json`, NAB's built-in values only if a profile is missing there.
fn named_profiles(
    profiles: &std::collections::BTreeMap<String, nab::CostProfile>,
) -> Vec<(&'static str, nab::CostProfile)> {
    [
        ("standard", nab::CostProfile::STANDARD),
        ("reward_low_FP_rate", nab::CostProfile::REWARD_LOW_FP),
        ("reward_low_FN_rate", nab::CostProfile::REWARD_LOW_FN),
    ]
    .into_iter()
    .map(|(name, fallback)| (name, profiles.get(name).copied().unwrap_or(fallback)))
    .collect()
}

/// Each file through a fresh detector, row by row (scored before it learns the row).
/// Returns the scored files and the largest checkpointed state.
fn run_detector(
    corpus: &[nab::DataFile],
    config: &DetectorConfig,
) -> anyhow::Result<(Vec<ScoredFile>, usize)> {
    let mut max_state = 0usize;
    let mut scored = Vec::with_capacity(corpus.len());
    for file in corpus {
        let mut detector = Detector::new(DetectorConfig {
            warmup: nab::scorer::probationary_period(file.values.len()) as u32,
            ..*config
        });
        let scores: Vec<f64> = file
            .epoch_seconds
            .iter()
            .zip(&file.values)
            .map(|(&t, &v)| detector.observe(t, v).value)
            .collect();
        max_state = max_state.max(detector.checkpoint()?.len());
        scored.push(ScoredFile {
            name: file.relative.clone(),
            scores,
            windows: file.windows.clone(),
        });
    }
    Ok((scored, max_state))
}

/// The first of the highest scores (the grid's order breaks ties) and its index.
fn best_of(results: impl Iterator<Item = nab::SweepResult>) -> (usize, nab::SweepResult) {
    results
        .enumerate()
        .fold(
            None::<(usize, nab::SweepResult)>,
            |best, (i, r)| match best {
                Some((_, b)) if b.normalized >= r.normalized => best,
                _ => Some((i, r)),
            },
        )
        .expect("a grid is never empty")
}

fn pick(files: &[ScoredFile], indices: &[usize]) -> Vec<ScoredFile> {
    indices.iter().map(|&i| files[i].clone()).collect()
}

/// The protocol: per fold scheme and profile, the configuration and threshold chosen on
/// the training files, scored on the held-out ones.
fn protocol(
    args: &Args,
    base: DetectorConfig,
    corpus: &[nab::DataFile],
    profiles: &[(&'static str, nab::CostProfile)],
) -> anyhow::Result<()> {
    let grid = folds::grid(&base, args.grid.as_deref())?;
    let runs: Vec<Vec<ScoredFile>> = grid
        .iter()
        .map(|c| run_detector(corpus, c).map(|(scored, _)| scored))
        .collect::<anyhow::Result<_>>()?;
    let groups: Vec<&str> = corpus.iter().map(|f| f.category.as_str()).collect();
    let schemes = [
        (
            "stratified",
            folds::stratified(&groups, args.folds, args.seed),
        ),
        (
            "leave_one_category_out",
            folds::leave_one_group_out(&groups),
        ),
    ];
    println!(
        "{} files, {} configurations, stratified folds: {} (seed {})",
        corpus.len(),
        grid.len(),
        args.folds,
        args.seed
    );
    let mut summary = serde_json::Map::new();
    let mut all_files = serde_json::Map::new();
    for (name, profile) in profiles {
        // In-sample: the configuration best on all files, scored on them.
        let best = best_of(runs.iter().map(|run| nab::score_corpus(run, profile)));
        println!(
            "all files, {name}: configuration {} score {:.2}",
            best.0, best.1.normalized
        );
        all_files.insert(name.to_string(), serde_json::json!(best.1.normalized));
    }
    summary.insert("all_files".into(), all_files.into());
    for (scheme, folds) in &schemes {
        let mut by_profile = serde_json::Map::new();
        for (name, profile) in profiles {
            let mut held_out = Vec::new();
            let mut pooled_raw = 0.0;
            for fold in folds {
                let (chosen, trained) = best_of(
                    runs.iter()
                        .map(|run| nab::score_corpus(&pick(run, &fold.train), profile)),
                );
                let test = pick(&runs[chosen], &fold.test);
                pooled_raw += test
                    .iter()
                    .map(|f| nab::file_outcome(f, profile, trained.threshold).raw)
                    .sum::<f64>();
                let scored = nab::score_at(&test, profile, trained.threshold);
                println!(
                    "{scheme} {name} {:<24} files {:>2}/{:<2} configuration {chosen} threshold {:.4} training {:.2} held out {}",
                    fold.name,
                    fold.test.len(),
                    fold.train.len(),
                    trained.threshold,
                    trained.normalized,
                    scored.map_or("n/a (no window)".to_string(), |s| format!(
                        "{:.2}",
                        s.normalized
                    )),
                );
                held_out.extend(scored.map(|s| s.normalized));
            }
            // Every file held out once, each at its fold's threshold, normalised as the
            // all-files figure is.
            let whole = nab::score_corpus(&runs[0], profile);
            let pooled = 100.0 * (pooled_raw - whole.null) / (whole.perfect - whole.null);
            let spread = folds::Spread::of(&held_out).expect("a fold with a window");
            println!("{scheme} {name}: held out {spread}, pooled {pooled:.2}");
            by_profile.insert(
                name.to_string(),
                serde_json::json!({"mean": spread.mean, "std": spread.std, "min": spread.min,
                    "max": spread.max, "folds": spread.n, "pooled": pooled}),
            );
        }
        summary.insert(scheme.to_string(), by_profile.into());
    }
    println!("{}", serde_json::Value::Object(summary));
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config: DetectorConfig = match &args.config {
        Some(text) => serde_json::from_str(text).context("parsing --config")?,
        None => DetectorConfig::default(),
    };
    let corpus = nab::read_corpus(&args.data)
        .with_context(|| format!("reading NAB corpus in {}", args.data.display()))?;
    let profiles = named_profiles(&nab::read_profiles(
        &args.data.join("config/profiles.json"),
    )?);
    if args.protocol {
        return protocol(&args, config, &corpus, &profiles);
    }

    let started = Instant::now();
    let (scored, max_state) = run_detector(&corpus, &config)?;
    let points: usize = scored.iter().map(|f| f.scores.len()).sum();
    if let Some(out) = &args.out {
        for (file, run) in corpus.iter().zip(&scored) {
            nab::write_results(out, DETECTOR_NAME, file, &run.scores)?;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();

    let standard = profiles[0].1;
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
    let mut summary = Vec::new();
    for (name, profile) in &profiles {
        let result = nab::score_corpus(&scored, profile);
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
