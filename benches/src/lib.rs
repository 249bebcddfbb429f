//! Benchmarks and load harnesses of Sightline: the deterministic log generator and its
//! random numbers, the accuracy scorers (NAB for anomaly detection, Loghub for log
//! template mining) and the generalisation protocol's folds, shared by the harness
//! binaries (`src/bin/`) and their tests.

pub mod folds;
pub mod loggen;
pub mod loghub;
pub mod metricgen;
pub mod nab;
pub mod process;
pub mod remote_write;
pub mod rng;
