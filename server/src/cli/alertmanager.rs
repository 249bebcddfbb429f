//! `sightline alertmanager …`: Alertmanager configuration files checked as `amtool
//! check-config` checks them, and routes tested as `amtool config routes test` tests them.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use sightline_alerting::alertmanager::config::Config;
use sightline_alerting::alertmanager::email::{EmailNotifier, load_templates};
use sightline_alerting::alertmanager::matchers::parse_matcher;
use sightline_alerting::alertmanager::route::Route;

#[derive(Subcommand, Debug)]
pub enum AlertmanagerCommand {
    /// Check Alertmanager configuration files: structure, matchers, receivers, time
    /// intervals; prints what each holds and its warnings; exits 1 if any is invalid.
    CheckConfig { files: Vec<PathBuf> },
    /// Routing tests (`amtool config routes test`'s arguments).
    Routes {
        #[command(subcommand)]
        command: RoutesCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum RoutesCommand {
    /// Print the receivers an alert with these labels (`name=value` …) is routed to;
    /// with `--verify-receivers`, exit 1 unless they are exactly those.
    Test {
        #[arg(long = "config.file", alias = "config")]
        config_file: PathBuf,
        #[arg(long = "verify.receivers", alias = "verify-receivers")]
        verify_receivers: Option<String>,
        labels: Vec<String>,
    },
}

pub fn run(command: AlertmanagerCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        AlertmanagerCommand::CheckConfig { files } => check_config(&files, out),
        AlertmanagerCommand::Routes {
            command:
                RoutesCommand::Test {
                    config_file,
                    verify_receivers,
                    labels,
                },
        } => {
            let config = load(&config_file)?;
            let mut set = BTreeMap::new();
            for label in &labels {
                let m = parse_matcher(label).map_err(anyhow::Error::msg)?;
                set.insert(m.name, m.value);
            }
            let tree = Route::new(&config.route);
            let receivers: Vec<&str> = tree
                .match_labels(&set)
                .into_iter()
                .map(|r| r.opts.receiver.as_str())
                .collect();
            let joined = receivers.join(",");
            writeln!(out, "{joined}")?;
            if let Some(expected) = verify_receivers
                && expected != joined
            {
                anyhow::bail!("WARNING: Expected receivers did not match resolved receivers.");
            }
            Ok(())
        }
    }
}

/// Reads and checks a configuration, its templates (globs relative to the file, as
/// Alertmanager reads them) and its email integrations' templates.
fn load(file: &PathBuf) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let config = Config::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let base = file.parent().unwrap_or(std::path::Path::new("."));
    let globs: Vec<PathBuf> = config.templates.iter().map(|t| base.join(t)).collect();
    let templates =
        load_templates(&globs).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    for receiver in &config.receivers {
        for (i, email) in receiver.email_configs.iter().enumerate() {
            EmailNotifier::new(email.clone(), &templates).map_err(|e| {
                anyhow::anyhow!(
                    "{}: receiver {:?} email_configs[{i}]: {e}",
                    file.display(),
                    receiver.name
                )
            })?;
        }
    }
    Ok(config)
}

fn check_config(files: &[PathBuf], out: &mut dyn Write) -> anyhow::Result<()> {
    if files.is_empty() {
        anyhow::bail!("no configuration files given");
    }
    let mut failed = 0;
    for file in files {
        writeln!(out, "Checking '{}'", file.display())?;
        match load(file) {
            Ok(config) => {
                writeln!(out, "  SUCCESS")?;
                writeln!(out, "Found:")?;
                writeln!(out, " - global config")?;
                writeln!(out, " - route")?;
                writeln!(out, " - {} inhibit rules", config.inhibit_rules.len())?;
                writeln!(out, " - {} receivers", config.receivers.len())?;
                writeln!(out, " - {} templates", config.templates.len())?;
                for w in &config.warnings {
                    writeln!(out, "  WARNING: {w}")?;
                }
                writeln!(out)?;
            }
            Err(e) => {
                writeln!(out, "  FAILED: {e:#}\n")?;
                failed += 1;
            }
        }
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} configuration files are invalid",
            files.len()
        );
    }
    Ok(())
}
