//! The simulator's own cost (issue 15: the demo must not starve the server on 2 cores): CPU
//! time to build and encode one tick of the estate's OTLP (traces, metrics, logs) at
//! `--copies` copies of the finance cloud, over `--ticks` ticks at the busiest hour, and
//! what share of one core that is at the demo's tick of 5 s. Process CPU time (user +
//! system, from `/proc/self/stat`), so other load on the machine does not count.
//!
//! ```sh
//! cargo run --release -p sightline-benches --bin demo_cost -- --copies 1
//! ```

use clap::Parser;
use prost::Message;
use sightline_benches::process::{clock_ticks, cpu_seconds};
use sightline_demo::estate::Estate;
use sightline_demo::sim::Sim;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1)]
    copies: usize,
    #[arg(long, default_value_t = 200)]
    ticks: i64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let estate = Estate::finance(args.copies);
    let services = estate.services.len();
    let mut sim = Sim::new(estate, 1);
    let ticks = clock_ticks()?;
    let pid = std::process::id();
    let before = cpu_seconds(pid, ticks)?;
    let mut bytes = 0usize;
    let step = 5_000;
    for i in 1..=args.ticks {
        // 10:30, the busiest time of the daily curve.
        let b = sim.tick(i * step, step, 37_800_000, &[]);
        bytes += b.traces.encode_to_vec().len()
            + b.metrics.encode_to_vec().len()
            + b.logs.encode_to_vec().len();
    }
    let cpu = cpu_seconds(pid, ticks)? - before;
    let per_tick_ms = cpu * 1000.0 / args.ticks as f64;
    let share = per_tick_ms / step as f64 * 100.0;
    println!(
        "{services} services: {per_tick_ms:.2} ms of CPU per tick ({} KiB of OTLP), {share:.2} % of one core at one tick per 5 s",
        bytes / args.ticks as usize / 1024
    );
    println!(
        "{}",
        serde_json::json!({"services": services, "cpu_ms_per_tick": per_tick_ms,
                           "core_share_percent": share, "otlp_bytes_per_tick": bytes / args.ticks as usize})
    );
    Ok(())
}
