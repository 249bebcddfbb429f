//! `sightline rules …`: rule files checked as `promtool check rules` checks them, and rule
//! unit tests run as `promtool test rules` runs them.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use sightline_alerting::rulefmt::{self, ParseOptions};
use sightline_alerting::unittest;

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// Check Prometheus rule files: syntax, fields, PromQL, names. Prints each file's
    /// outcome as promtool does; exits 1 if any file has problems.
    Check {
        files: Vec<PathBuf>,
        /// Accept fields the format does not know (promtool's flag of the same name).
        #[arg(long)]
        ignore_unknown_fields: bool,
        /// The files are in Loki's ruler format: LogQL metric queries.
        #[arg(long)]
        logql: bool,
    },
    /// Run rule unit tests written for `promtool test rules`: input series, alerts expected
    /// at given times, PromQL results. Prints each file's outcome as promtool does; exits 1
    /// if any test fails.
    Test {
        files: Vec<PathBuf>,
        /// Run only the test groups whose name matches this regular expression (repeatable;
        /// promtool's flag of the same name).
        #[arg(long = "run", value_name = "REGEX")]
        run: Vec<String>,
        /// Accept fields the rule-file format does not know (promtool's flag of the same
        /// name).
        #[arg(long)]
        ignore_unknown_fields: bool,
    },
    /// Compile SLO specs into a Prometheus rule file (multi-window, multi-burn-rate alerts
    /// and their recording rules) on standard output.
    Slo { file: PathBuf },
}

pub fn run(command: RulesCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        RulesCommand::Slo { file } => {
            let name = file.display().to_string();
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {name}: {e}"))?;
            let rules =
                sightline_alerting::slo::compile(&name, &text).map_err(anyhow::Error::msg)?;
            write!(out, "{rules}")?;
            Ok(())
        }
        RulesCommand::Test {
            files,
            run,
            ignore_unknown_fields,
        } => {
            if files.is_empty() {
                anyhow::bail!("no test files given");
            }
            let options = unittest::Options::new(&run, ignore_unknown_fields)
                .map_err(|e| anyhow::anyhow!("invalid --run pattern: {e}"))?;
            let mut failed = 0;
            for file in &files {
                let report = unittest::run_file(file, &options);
                write!(out, "{report}")?;
                if !report.passed() {
                    failed += 1;
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} of {} unit test files failed", files.len());
            }
            Ok(())
        }
        RulesCommand::Check {
            files,
            ignore_unknown_fields,
            logql,
        } => {
            if files.is_empty() {
                anyhow::bail!("no rule files given");
            }
            let mut failed = 0;
            for file in &files {
                let name = file.display().to_string();
                writeln!(out, "Checking {name}")?;
                let text = match std::fs::read_to_string(file) {
                    Ok(t) => t,
                    Err(e) => {
                        writeln!(out, "  FAILED:\n{name}: {e}\n")?;
                        failed += 1;
                        continue;
                    }
                };
                match rulefmt::parse(
                    &name,
                    &text,
                    ParseOptions {
                        ignore_unknown_fields,
                        logql,
                    },
                ) {
                    Ok(parsed) => {
                        let rules: usize = parsed.groups.iter().map(|g| g.rules.len()).sum();
                        writeln!(out, "  SUCCESS: {rules} rules found\n")?;
                    }
                    Err(errors) => {
                        writeln!(out, "  FAILED:")?;
                        for e in errors {
                            writeln!(out, "{e}")?;
                        }
                        writeln!(out)?;
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} of {} rule files have problems", files.len());
            }
            Ok(())
        }
    }
}
