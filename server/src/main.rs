//! `sightline`: the all-in-one server and its command-line clients.
//!
//! This binary is glue: it reads configuration and the environment, installs tracing, wires
//! the collector's receivers to the WAL and the indexer, and serves the query APIs. It is the
//! only crate that returns `anyhow` errors.

mod agent;
mod alertmanager;
mod anomalies;
mod api;
mod cli;
mod config;
mod data_dir;
mod demo;
mod incidents;
mod metrics;
mod pattern_rules;
mod query_pool;
mod root_cause;
mod rules;
mod serve;

use std::io::Write;

use clap::{Parser, Subcommand};

/// Batches are built on the receiving threads and freed on the writer's: mimalloc handles
/// those cross-thread frees and many small label strings far better than glibc's malloc
/// (which took half the CPU of the remote_write path).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Unix time now in nanoseconds.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[derive(Parser, Debug)]
#[command(
    name = "sightline",
    version,
    about = "Observability and intelligent operations in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the all-in-one server.
    Serve(config::Overrides),
    /// Run the host agent: host metrics (node_exporter's names) forwarded to a server
    /// through a disk buffer that outlasts an outage.
    Agent(agent::AgentArgs),
    /// Configuration utilities.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Query and load logs through a running server.
    Logs {
        #[command(subcommand)]
        command: cli::LogsCommand,
    },
    /// Query metrics through a running server.
    Metrics {
        #[command(subcommand)]
        command: cli::MetricsCommand,
    },
    /// Look up and search traces through a running server; check TraceQL.
    Traces {
        #[command(subcommand)]
        command: cli::traces::TracesCommand,
    },
    /// Check Alertmanager configuration files and test their routes (amtool's checks).
    Alertmanager {
        #[command(subcommand)]
        command: cli::alertmanager::AlertmanagerCommand,
    },
    /// Check Prometheus rule files.
    Rules {
        #[command(subcommand)]
        command: cli::rules::RulesCommand,
    },
    /// Read the topology through a running server (graph, stack, impact, path, changes);
    /// check an inventory file.
    Topology {
        #[command(subcommand)]
        command: cli::topology::TopologyCommand,
    },
    /// Run the server with a simulated provincial finance cloud that misbehaves (faults on
    /// a schedule or on command); `demo fault KIND`, `demo faults` talk to a running one.
    Demo(demo::DemoArgs),
    /// Incidents through a running server: list, show (causes, evidence, timeline),
    /// acknowledge, resolve.
    Incidents {
        #[command(subcommand)]
        command: cli::incidents::IncidentsCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Validate a configuration file and print the effective configuration.
    Check {
        /// The TOML file to check (see the README for every key).
        file: std::path::PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    let result = match Cli::parse().command {
        Command::Serve(overrides) => serve::serve(overrides),
        Command::Agent(args) => agent::run(args),
        client => run_client(client),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The reader went away (`… | head`): what it wanted it has; stop quietly, as
        // `cat` and ripgrep do.
        Err(e) if is_broken_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The commands that print: through a locked stdout whose write errors they return
/// instead of panicking in `println!`.
fn run_client(command: Command) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let out = &mut stdout.lock();
    match command {
        Command::Serve(_) | Command::Agent(_) => {
            unreachable!("`serve` and `agent` print nothing and are run by main")
        }
        Command::Config {
            command: ConfigCommand::Check { file },
        } => {
            let config = config::Config::from_file(&file)?;
            writeln!(out, "{}: ok", file.display())?;
            writeln!(out, "{config:#?}")?;
        }
        Command::Logs { command } => cli::run(command, out)?,
        Command::Metrics { command } => cli::run_metrics(command, out)?,
        Command::Traces { command } => cli::traces::run(command, out)?,
        Command::Topology { command } => cli::topology::run(command, out)?,
        Command::Incidents { command } => cli::incidents::run(command, out)?,
        Command::Demo(args) => demo::demo(args, out)?,
        Command::Rules { command } => cli::rules::run(command, out)?,
        Command::Alertmanager { command } => cli::alertmanager::run(command, out)?,
    }
    out.flush()?;
    Ok(())
}

/// True when an error comes from writing to a pipe whose reader has closed it.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
