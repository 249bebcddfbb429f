//! `sightline`: the all-in-one server and its command-line clients.
//!
//! This binary is glue: it reads configuration and the environment, installs tracing, wires
//! the collector's receivers to the WAL and the indexer, and serves the query APIs. It is the
//! only crate that returns `anyhow` errors.

mod anomalies;
mod api;
mod cli;
mod config;
mod metrics;
mod serve;

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
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Validate a configuration file and print the effective configuration.
    Check { file: std::path::PathBuf },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(overrides) => serve::serve(overrides),
        Command::Config {
            command: ConfigCommand::Check { file },
        } => config::Config::from_file(&file).map(|c| {
            println!("{}: ok", file.display());
            println!("{c:#?}");
        }),
        Command::Logs { command } => cli::run(command),
        Command::Metrics { command } => cli::run_metrics(command),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
