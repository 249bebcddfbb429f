//! Loghub accuracy harness of the log template miner.
//!
//! `cargo run --release -p sightline-benches --bin loghub -- --data DIR [--out OUT]` mines
//! the content of every `DIR/<System>/<System>_2k.log` with one global miner configuration
//! (a fresh miner per system), scores it against `<System>_2k.log_structured_corrected.csv`
//! and, where present, the original `_structured.csv`, prints a table and the miner's
//! single-threaded throughput, and as its last line a JSON object with the corrected-label
//! scores. `--out OUT` writes `OUT/<System>.csv` (`LineId,PatternId,Template`).
//!
//! `--score-only DIR` scores another parser's outputs in that layout instead of running the
//! miner (the drain3 peer run uses it), and `--contents-out DIR` writes the split contents as
//! `DIR/<System>.txt`, one per line, so a peer parses exactly the same input.
//!
//! `--protocol` runs the generalisation protocol instead (`benches/PROTOCOL.md`): one system
//! held out at a time, the configuration (from `--grid`, a JSON array of partial miner
//! configurations; the default alone if absent) chosen by the mean corrected-label GA on
//! the other systems and scored on the held-out one. Prints each fold and the mean and
//! spread of the held-out GA beside the all-systems figure; the last line is JSON.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::json;
use sightline_benches::folds;
use sightline_benches::loghub::{
    Accuracy, ContentSource, Labels, ParsedLine, System, list_systems, read_output, read_system,
    score, write_output,
};
use sightline_patterns::{Miner, MinerConfig};

#[derive(Debug, Parser)]
#[command(about = "Score the log template miner on Loghub 2k samples")]
struct Args {
    /// Folder with one `<System>/` folder per system.
    #[arg(long)]
    data: PathBuf,
    /// Write the miner's assignments as `OUT/<System>.csv`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Score the `<System>.csv` files in this folder instead of running the miner.
    #[arg(long)]
    score_only: Option<PathBuf>,
    /// Write each system's contents as `DIR/<System>.txt`, one per line.
    #[arg(long)]
    contents_out: Option<PathBuf>,
    /// Ablation only: override the similarity threshold of the default configuration.
    #[arg(long)]
    similarity_threshold: Option<f64>,
    /// Ablation only: override the word-variant count of the default configuration.
    #[arg(long)]
    min_word_variants: Option<usize>,
    /// Run the generalisation protocol (leave one system out) instead.
    #[arg(long)]
    protocol: bool,
    /// With `--protocol`: the configurations to choose from, a JSON array of partial
    /// miner configurations (each over the default).
    #[arg(long)]
    grid: Option<String>,
    /// Minimum total time spent in the throughput measurement, in seconds.
    #[arg(long, default_value_t = 2.0)]
    min_seconds: f64,
}

/// Mines every line of one system with a fresh miner; returns each line's pattern and the
/// pattern's final template.
fn mine_system(config: &MinerConfig, contents: &[String]) -> Result<Vec<ParsedLine>> {
    let mut miner = Miner::new(config.clone())?;
    let ids: Vec<_> = contents
        .iter()
        .enumerate()
        .map(|(t, line)| miner.mine(line, t as i64).pattern)
        .collect();
    ids.into_iter()
        .map(|id| {
            let pattern = miner
                .pattern(id)
                .with_context(|| format!("pattern {id} was evicted during the run"))?;
            // The final pattern: an id merged away later resolves to the one that absorbed it.
            Ok(ParsedLine {
                pattern: pattern.id.to_string(),
                template: pattern.template,
            })
        })
        .collect()
}

/// Median lines per second of whole passes (a fresh miner per system, every line mined),
/// repeated until `min_seconds` have passed and at least three passes ran.
fn measure_throughput(config: &MinerConfig, systems: &[System], min_seconds: f64) -> Result<f64> {
    let total_lines: usize = systems.iter().map(|s| s.contents.len()).sum();
    let mut rates = Vec::new();
    let started = Instant::now();
    while rates.len() < 3 || started.elapsed().as_secs_f64() < min_seconds {
        let mut miners = systems
            .iter()
            .map(|_| Miner::new(config.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let pass = Instant::now();
        for (system, miner) in systems.iter().zip(&mut miners) {
            for (t, line) in system.contents.iter().enumerate() {
                std::hint::black_box(miner.mine(line, t as i64));
            }
        }
        rates.push(total_lines as f64 / pass.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    Ok(rates[rates.len() / 2])
}

fn write_contents(dir: &Path, system: &System) -> Result<()> {
    let path = dir.join(format!("{}.txt", system.name));
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
    );
    for line in &system.contents {
        // Contents never hold a newline: they come from `lines()` or a CSV cell of one line.
        writeln!(file, "{}", line.replace(['\n', '\r'], " "))?;
    }
    file.flush()?;
    Ok(())
}

struct Row {
    name: String,
    lines: usize,
    parser_groups: usize,
    corrected: Option<Accuracy>,
    original: Option<Accuracy>,
    note: String,
}

fn fmt_accuracy(accuracy: Option<&Accuracy>) -> String {
    accuracy.map_or_else(
        || format!("{:>6} {:>6} {:>6} {:>6}", "-", "-", "-", "-"),
        |a| format!("{:>6.4} {:>6.4} {:>6.4} {:>6.4}", a.ga, a.pa, a.fga, a.fta),
    )
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<12} {:>5} {:>6} {:>6} | {:^27} | {:^27} | notes",
        "system", "lines", "groups", "truth", "corrected: GA PA FGA FTA", "original: GA PA FGA FTA"
    );
    for row in rows {
        println!(
            "{:<12} {:>5} {:>6} {:>6} | {} | {} | {}",
            row.name,
            row.lines,
            row.parser_groups,
            row.corrected.map_or(0, |a| a.truth_groups),
            fmt_accuracy(row.corrected.as_ref()),
            fmt_accuracy(row.original.as_ref()),
            row.note
        );
    }
    let mean = |pick: fn(&Row) -> Option<Accuracy>| -> Option<Accuracy> {
        let scored: Vec<Accuracy> = rows.iter().filter_map(pick).collect();
        if scored.is_empty() {
            return None;
        }
        let n = scored.len() as f64;
        Some(Accuracy {
            ga: scored.iter().map(|a| a.ga).sum::<f64>() / n,
            pa: scored.iter().map(|a| a.pa).sum::<f64>() / n,
            fga: scored.iter().map(|a| a.fga).sum::<f64>() / n,
            fta: scored.iter().map(|a| a.fta).sum::<f64>() / n,
            ..Accuracy::default()
        })
    };
    println!(
        "{:<12} {:>5} {:>6} {:>6} | {} | {} |",
        "average",
        "",
        "",
        "",
        fmt_accuracy(mean(|r| r.corrected).as_ref()),
        fmt_accuracy(mean(|r| r.original).as_ref())
    );
}

fn summary_json(rows: &[Row]) -> serde_json::Value {
    let mut systems = BTreeMap::new();
    let mut sums = [0.0; 4];
    let mut count = 0usize;
    for row in rows {
        let Some(a) = row.corrected else { continue };
        systems.insert(
            row.name.clone(),
            json!({"GA": a.ga, "PA": a.pa, "FGA": a.fga, "FTA": a.fta}),
        );
        for (sum, value) in sums.iter_mut().zip([a.ga, a.pa, a.fga, a.fta]) {
            *sum += value;
        }
        count += 1;
    }
    let mean = |i: usize| {
        if count == 0 {
            0.0
        } else {
            sums[i] / count as f64
        }
    };
    json!({
        "systems": systems,
        "average": {"GA": mean(0), "PA": mean(1), "FGA": mean(2), "FTA": mean(3)},
    })
}

/// Leave one system out: on each fold the configuration with the highest mean GA on the
/// other systems (the grid's order breaks ties), scored on the held-out system.
fn protocol(grid_text: Option<&str>, systems: &[System]) -> Result<()> {
    let grid = folds::grid(&MinerConfig::default(), grid_text)?;
    let scored: Vec<&System> = systems.iter().filter(|s| s.corrected.is_some()).collect();
    // GA of every configuration on every system: the folds only choose among them.
    let mut ga = vec![vec![0.0; scored.len()]; grid.len()];
    for (c, config) in grid.iter().enumerate() {
        for (s, system) in scored.iter().enumerate() {
            let output: Vec<Option<ParsedLine>> = mine_system(config, &system.contents)?
                .into_iter()
                .map(Some)
                .collect();
            let truth = system.corrected.as_ref().expect("filtered on labels");
            ga[c][s] = score(truth, &output, Labels::Corrected).ga;
        }
    }
    let mean_over = |c: usize, systems: &[usize]| {
        systems.iter().map(|&s| ga[c][s]).sum::<f64>() / systems.len().max(1) as f64
    };
    let best = |systems: &[usize]| {
        (0..grid.len()).fold(0, |best, c| {
            if mean_over(c, systems) > mean_over(best, systems) {
                c
            } else {
                best
            }
        })
    };
    let names: Vec<&str> = scored.iter().map(|s| s.name.as_str()).collect();
    let all: Vec<usize> = (0..scored.len()).collect();
    let in_sample = best(&all);
    println!(
        "{} systems, {} configurations; all systems: configuration {in_sample} GA {:.4}",
        scored.len(),
        grid.len(),
        mean_over(in_sample, &all)
    );
    let mut held_out = Vec::new();
    let mut per_system = BTreeMap::new();
    for fold in folds::leave_one_group_out(&names) {
        let chosen = best(&fold.train);
        let figure = mean_over(chosen, &fold.test);
        println!(
            "held out {:<12} configuration {chosen} training GA {:.4} held-out GA {figure:.4}",
            fold.name,
            mean_over(chosen, &fold.train)
        );
        held_out.push(figure);
        per_system.insert(fold.name, figure);
    }
    let spread = folds::Spread::of(&held_out).context("no system with corrected labels")?;
    println!("leave one system out: held-out GA {spread:.4}");
    println!(
        "{}",
        json!({"all_systems": mean_over(in_sample, &all), "leave_one_system_out": {
            "mean": spread.mean, "std": spread.std, "min": spread.min, "max": spread.max,
            "systems": per_system}})
    );
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let names = list_systems(&args.data)
        .with_context(|| format!("listing systems in {}", args.data.display()))?;
    if names.is_empty() {
        bail!("no <System>/<System>_2k.log under {}", args.data.display());
    }
    let systems: Vec<System> = names
        .iter()
        .map(|name| read_system(&args.data, name).with_context(|| format!("reading {name}")))
        .collect::<Result<_>>()?;
    for dir in [&args.out, &args.contents_out].into_iter().flatten() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if let Some(dir) = &args.contents_out {
        for system in &systems {
            write_contents(dir, system)?;
        }
    }

    if args.protocol {
        return protocol(args.grid.as_deref(), &systems);
    }

    let mut config = MinerConfig::default();
    if let Some(threshold) = args.similarity_threshold {
        config.similarity_threshold = threshold;
    }
    if let Some(variants) = args.min_word_variants {
        config.min_word_variants = variants;
    }
    let mut rows = Vec::new();
    for system in &systems {
        let output: Vec<Option<ParsedLine>> = match &args.score_only {
            Some(dir) => {
                let path = dir.join(format!("{}.csv", system.name));
                read_output(&path).with_context(|| format!("reading {}", path.display()))?
            }
            None => {
                let parsed = mine_system(&config, &system.contents)?;
                if let Some(dir) = &args.out {
                    write_output(&dir.join(format!("{}.csv", system.name)), &parsed)?;
                }
                parsed.into_iter().map(Some).collect()
            }
        };
        let parser_groups = output
            .iter()
            .flatten()
            .map(|l| l.pattern.as_str())
            .collect::<std::collections::HashSet<_>>()
            .len();
        let mut note = String::new();
        if system.source == ContentSource::StructuredCsv {
            note.push_str("no shipped format: contents from the structured csv; ");
        }
        if system.content_mismatches > 0 {
            note.push_str(&format!(
                "{} contents differ from the csv's Content; ",
                system.content_mismatches
            ));
        }
        rows.push(Row {
            name: system.name.clone(),
            lines: system.contents.len(),
            parser_groups,
            corrected: system
                .corrected
                .as_ref()
                .map(|truth| score(truth, &output, Labels::Corrected)),
            original: system
                .original
                .as_ref()
                .map(|truth| score(truth, &output, Labels::Original)),
            note,
        });
    }

    match &args.score_only {
        Some(dir) => println!("scored outputs in {}", dir.display()),
        None => println!(
            "miner configuration (one for all systems): {}",
            serde_json::to_string(&config)?
        ),
    }
    print_table(&rows);
    if args.score_only.is_none() {
        let rate = measure_throughput(&config, &systems, args.min_seconds)?;
        let total: usize = systems.iter().map(|s| s.contents.len()).sum();
        println!(
            "miner throughput (single thread, fresh miner per system, median pass over {total} lines): {rate:.0} lines/s"
        );
        println!("throughput_lines_per_sec: {rate:.0}");
    }
    println!("{}", serde_json::to_string(&summary_json(&rows))?);
    Ok(())
}
