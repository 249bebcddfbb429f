//! `sightline agent`: the binary's wiring of `sightline_agent` (configuration file, logging,
//! signals).

use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// The agent's TOML configuration (every key has a default; see `agent/src/config.rs`).
    #[arg(long, env = "SIGHTLINE_AGENT_CONFIG")]
    config: Option<PathBuf>,
}

/// Runs the agent until SIGTERM or Ctrl-C.
pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    crate::serve::init_tracing();
    // The allocator (mimalloc, chosen for the server's ingest) asks for transparent huge
    // pages on its arena: 18 of the agent's 35 MiB of RSS were 2 MiB pages mostly empty. An
    // agent's heap is small and long-lived; 4 KiB pages keep its footprint what it uses.
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!(error = %e, "cannot disable transparent huge pages");
    }
    let config = match &args.config {
        Some(path) => sightline_agent::Config::from_file(path).map_err(anyhow::Error::msg)?,
        None => sightline_agent::Config::default(),
    };
    let agent = sightline_agent::Agent::start(config)?;
    tracing::info!(metrics = %agent.metrics_addr(), "agent running");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal handler")?
        .block_on(crate::serve::shutdown_signal());
    tracing::info!("agent stopping");
    agent.stop();
    Ok(())
}
