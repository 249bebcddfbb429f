//! PromQL conformance: runs Prometheus's own PromQL test scripts (`promql/promqltest`
//! `.test` files) against `sightline-promql` and prints, per file, the evaluation statements,
//! passes and failures (the first few with a one-line reason), then the totals over the files
//! that ran, the failures by cause and the skipped files.
//!
//! ```text
//! cargo run --release -p sightline-benches --bin promql_conformance -- \
//!     --data ../shared/datasets/promql [--verbose] [--include-skipped]
//! ```
//!
//! `--include-skipped` also runs the skipped files and reports them separately, outside the
//! conformance figure.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use sightline_promql::promqltest::{self, FileReport};

#[derive(Parser, Debug)]
#[command(about = "Run Prometheus's PromQL test scripts against sightline-promql")]
struct Args {
    /// Directory with the `*.test` files.
    #[arg(long)]
    data: PathBuf,
    /// Print every failure (default: the first five per file).
    #[arg(long)]
    verbose: bool,
    /// Also run the skipped files (reported separately, not in the totals).
    #[arg(long)]
    include_skipped: bool,
}

fn one_line(s: &str, max: usize) -> String {
    let s = s.replace('\n', " ");
    if s.chars().count() <= max {
        s
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}

fn print_file(f: &FileReport, verbose: bool) {
    let shown = if verbose { usize::MAX } else { 5 };
    println!(
        "{:<28} evals {:>4}  passed {:>4}  failed {:>4}",
        f.name,
        f.evals,
        f.passed,
        f.failures.len()
    );
    for fail in f.failures.iter().take(shown) {
        println!(
            "    line {:>4} [{}] {}\n               {}",
            fail.line,
            fail.cause,
            one_line(&fail.expr, 110),
            one_line(&fail.reason, if verbose { 400 } else { 160 })
        );
    }
    if f.failures.len() > shown {
        println!(
            "    … {} more (--verbose shows all)",
            f.failures.len() - shown
        );
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let report = promqltest::run_dir(&args.data)
        .with_context(|| format!("reading test scripts in {}", args.data.display()))?;
    for f in &report.files {
        print_file(f, args.verbose);
    }
    let (evals, passed) = report.totals();
    println!();
    println!(
        "total over {} files: evals {evals}  passed {passed}  failed {}  pass rate {:.1}%",
        report.files.len(),
        evals - passed,
        report.pass_rate()
    );
    for (cause, n) in report.failures_by_cause() {
        println!("  failures from {cause}: {n}");
    }
    for (name, why) in &report.skipped {
        println!("skipped {name}: {why}");
    }
    if args.include_skipped {
        println!();
        println!("skipped files, for information (not in the totals above):");
        let extra = promqltest::run_skipped(&args.data)?;
        for f in &extra {
            print_file(f, args.verbose);
        }
        let (e, p) = extra
            .iter()
            .fold((0, 0), |(e, p), f| (e + f.evals, p + f.passed));
        println!("skipped files: evals {e}  passed {p}");
    }
    println!("elapsed {:.2}s", started.elapsed().as_secs_f64());
    Ok(())
}
