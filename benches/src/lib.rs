//! Benchmarks and load harnesses of Sightline: the deterministic log generator and its
//! random numbers live here so the harness binaries (`src/bin/`) and their tests share them.

pub mod loggen;
pub mod rng;
