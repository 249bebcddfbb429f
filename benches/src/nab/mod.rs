//! A faithful re-implementation of the Numenta Anomaly Benchmark (NAB v1.1) scorer, written
//! from `../shared/datasets/nab/SCORING.md`, plus reading and writing NAB's directory layout.
//!
//! * [`scorer`] holds the rules: probationary period, per-row weights from the scaled
//!   sigmoid, the corpus-wide threshold sweep and the normalisation between the null and
//!   the perfect detector. It knows nothing about files or detectors.
//! * [`corpus`] reads `data/`, `labels/combined_windows.json` and `config/profiles.json`,
//!   maps window edges to rows, and writes the raw scores in NAB's results layout so any
//!   NAB scorer can re-check them.
//!
//! The detectors themselves live in `sightline-anomaly`; the `nab` binary glues the two.

pub mod corpus;
pub mod scorer;

pub use corpus::{DataFile, NabError, read_corpus, read_profiles, write_results};
pub use scorer::{CostProfile, ScoredFile, SweepResult, file_outcome, score_at, score_corpus};
