//! Benchmarks and load harnesses of Sightline: the deterministic log generator and its
//! random numbers, and the accuracy scorers (NAB for anomaly detection, Loghub for log
//! template mining), shared by the harness binaries (`src/bin/`) and their tests.

pub mod loggen;
pub mod loghub;
pub mod metricgen;
pub mod nab;
pub mod process;
pub mod remote_write;
pub mod rng;
