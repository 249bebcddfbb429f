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
//!   remembered prototypes, with a per-series vigilance that adapts upwards for noisy series
//!   and values near the running median snapped to it (ARTime's "chomp");
//! * a range break: a value beyond everything seen so far (by a margin that shrinks as the
//!   history grows);
//! * anomaly likelihoods ([`likelihood`], after Numenta's HTM likelihood) of the novelty
//!   and of the residual from the best of four [`baseline`]s (last value, level, daily and
//!   weekly profiles keyed by timestamp; picking the one with the lowest running error is
//!   how the seasonal period is detected);
//! * a hold-off after each alert, so one episode raises one alert, which only a much
//!   stronger score pierces.
//!
//! # The global configuration
//!
//! [`DetectorConfig::default`] is the only setting, used for every series:
//! patterns of 12 values, 32 prototypes, vigilance 0.12 (adapting upwards towards 2 %
//! novel patterns, step 0.002), prototype rate 0.05, pattern values within 0.03 of the
//! running median snapped to it ("chomp"), range break at 1 % of the past range with the
//! bar raised by `1 + 2000 / points seen`, likelihood windows of 15 points against a long
//! run smoothed at 0.002 (deviation floor 0.03), baselines smoothed at 0.01 (levels and
//! errors) and 0.2 (seasonal bins), alert at 0.5 with a hold-off of 160 points that a
//! score 1.8 times the holding alert's still pierces, point residual off.
//!
//! It was chosen on the 41 shared NAB files (`../shared/datasets/nab`) with the `nab`
//! harness of `sightline-benches` (standard / low-FP / low-FN: 72.13 / 63.39 / 77.20;
//! on the two alternate halves of the files 68.70 / 76.12 standard, 61.28 / 68.04 low-FP,
//! 73.87 / 80.83 low-FN):
//!
//! 1. Components were added one at a time and kept only when they raised the standard
//!    score: residual likelihoods alone reached about 50, pattern novelty 55, the novelty
//!    likelihood and vigilance adaptation 61.6, the range break 67.9. Tried and dropped:
//!    the single-point residual alerting on its own, records of the residual, scoring
//!    relative to a decaying maximum, letting old range extremes fade, scaling patterns by
//!    running quantiles instead of the range, a second, coarser novelty model, requiring
//!    novelty to persist, weighting recent values in the distance, lowering the vigilance
//!    of calm series, adapting it faster during the warm-up, and letting range breaks
//!    pierce the hold-off unconditionally.
//! 2. Random searches of about 150 settings each over coarse grids of the numeric
//!    parameters, then moving each parameter one grid step from the best round values; the
//!    last such pass lowered the novelty target rate from 3 % to 2 % and the range break
//!    from 2 % to 1 % (69.4, then 70.4).
//! 3. The score is chaotic in the hold-off (one alert more or less shifts every later
//!    one), so single settings differ by ±1–2 points by luck. From here on every change
//!    was judged by the mean over a 3 × 3 grid around it (hold-off × 0.8 / 1 / 1.25,
//!    vigilance × 0.92 / 1 / 1.08) and on both halves; the old setting's grid mean was
//!    68.6 (worst cell 66.7). Three mechanisms, each after ARTime or record statistics,
//!    raised it: ARTime's chomp (0.03; 69.3), the settling range break (1,500–2,500 all
//!    equal; with chomp 69.9), and the piercing hold-off, which pays only together with
//!    a longer hold-off (ratio 1.8, hold-off 150: 70.4; ratios 1.5 and 2.0 lose 1–2
//!    points). A last one-step pass over the other parameters raised the deviation floor
//!    from 0.02 to 0.03 (70.8) and the hold-off to 160; the grid mean of the setting is
//!    71.0 (worst cell 70.0, best 72.3), and it scores higher than the old one on both
//!    halves. Tried and dropped in this round: a CUSUM of standardised residuals (never
//!    fired above the likelihoods, or cost 1.3 points), extending the hold-off while
//!    alerts keep coming (−0.3 to −1), running the hold-off during the warm-up (no
//!    change), soft chomping (shrinking towards the median: −4), chomp 0.05–0.1 and
//!    faster or slower median trackers, and one-step moves of the likelihood window,
//!    pattern length, prototype rate, target rate, smoothing and alert threshold. NAB
//!    keeps 17 files back for independent evaluation; expect the score there to be
//!    somewhat lower.
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
