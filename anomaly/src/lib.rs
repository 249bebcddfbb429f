//! Streaming anomaly detection for Sightline: one small, serialisable [`Detector`] per
//! series scores every point on arrival with a value in [0, 1] and an explanation (the
//! expected value and band, the baseline used, the component that fired).
//!
//! This crate owns the detectors and nothing else: it never does I/O, never looks ahead
//! (each point is scored from the past only, before it is learnt), never uses labels or a
//! series' global min/max, and keeps O(1) work and a few KiB of state per series. Wiring to
//! live metrics (PromQL selections, `sightline_anomaly_score` series, the API) belongs to
//! the server and the metrics store.
//!
//! # Design
//!
//! [`detector`] combines, per point, the maximum of a few cheap components and names the
//! winner in the [`Explanation`]:
//!
//! * pattern novelty after adaptive-resonance clustering ([`novelty`], the idea behind
//!   ARTime): the last values, scaled into the range seen so far, against a small set of
//!   remembered prototypes, with a per-series vigilance that adapts upwards for noisy series;
//! * a range break: a value beyond everything seen so far;
//! * anomaly likelihoods ([`likelihood`], after Numenta's HTM likelihood) of the novelty
//!   and of the residual from the best of four [`baseline`]s (last value, level, daily and
//!   weekly profiles keyed by timestamp; picking the one with the lowest running error is
//!   how the seasonal period is detected);
//! * a hold-off after each alert, so one episode raises one alert.
//!
//! # The global configuration
//!
//! [`DetectorConfig::default`] is the only setting, used for every series:
//! patterns of 12 values, 32 prototypes, vigilance 0.12 (adapting upwards towards 2 %
//! novel patterns, step 0.002), prototype rate 0.05, range break at 1 % of the past range,
//! likelihood windows of 15 points against a long run smoothed at 0.002 (deviation floor
//! 0.02), baselines smoothed at 0.01 (levels and errors) and 0.2 (seasonal bins), alert at
//! 0.5 with a hold-off of 100 points, point residual off.
//!
//! It was chosen on the 41 shared NAB files (`../shared/datasets/nab`) with the `nab`
//! harness of `sightline-benches` (standard / low-FP / low-FN: 70.37 / 61.40 / 75.18):
//!
//! 1. Components were added one at a time and kept only when they raised the standard
//!    score: residual likelihoods alone reached about 50, pattern novelty 55, the novelty
//!    likelihood and vigilance adaptation 61.6, the range break 67.9. Tried and dropped:
//!    the single-point residual alerting on its own, records of the residual, scoring
//!    relative to a decaying maximum, letting old range extremes fade, scaling patterns by
//!    running quantiles instead of the range, a second, coarser novelty model, requiring
//!    novelty to persist, weighting recent values in the distance, lowering the vigilance
//!    of calm series, adapting it faster during the warm-up, and letting range breaks
//!    pierce the hold-off.
//! 2. Random searches of about 150 settings each over coarse grids of the numeric
//!    parameters, then moving each parameter one grid step from the best round values; the
//!    last such pass lowered the novelty target rate from 3 % to 2 % and the range break
//!    from 2 % to 1 % (69.4, then 70.4).
//! 3. The neighbourhood is a plateau rather than a spike: range breaks of 0.5–1 % and
//!    target rates of 1–2 % all score 70.0–70.4, single grid steps of the other parameters
//!    cost 1–5 points, and the setting scores 68.3 and 72.9 on the two halves of the files
//!    (alternate files), so it is not fitted to single files. NAB keeps 17 files back for
//!    independent evaluation; expect the score there to be somewhat lower.
//!
//! Nothing depends on a file's name, category, length, labels or global minimum and
//! maximum. The warm-up is the one per-series input NAB's protocol allows: the harness
//! sets it to NAB's probationary period (15 % of the file, at most 750 points); online, the
//! default of 750 points applies.

pub mod baseline;
pub mod config;
pub mod detector;
pub mod likelihood;
pub mod novelty;

pub use baseline::Baseline;
pub use config::DetectorConfig;
pub use detector::{Component, Detector, Explanation, Score};

/// Errors of the anomaly crate.
#[derive(Debug, thiserror::Error)]
pub enum AnomalyError {
    /// The state could not be serialised.
    #[error("cannot checkpoint detector state: {0}")]
    Checkpoint(postcard::Error),
    /// The bytes are not a detector state.
    #[error("cannot restore detector state: {0}")]
    Restore(postcard::Error),
}
