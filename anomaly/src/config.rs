//! The detector's hyper-parameters: one global setting, the same for every series.

use serde::{Deserialize, Serialize};

/// Hyper-parameters of [`crate::Detector`]. [`DetectorConfig::default`] is the one global
/// setting used everywhere (the crate docs say how it was chosen). Fields missing from a
/// serialised configuration take their default.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DetectorConfig {
    /// Points that only train the model; their score is 0. NAB's protocol allows its
    /// probationary period (15 % of the file, at most 750 points) here.
    pub warmup: u32,

    /// Smoothing of the baselines' levels (per point).
    pub level_alpha: f64,
    /// Smoothing of each seasonal bin (per visit).
    pub season_gamma: f64,
    /// Smoothing of the baselines' mean absolute errors (the residual scale).
    pub error_alpha: f64,

    /// Points averaged in the short window of the anomaly likelihoods (at most 32).
    pub short_window: u32,
    /// Smoothing of the long-run mean and variance in the anomaly likelihoods.
    pub long_alpha: f64,
    /// Lower bound of the long-run standard deviation in the anomaly likelihoods, so a
    /// very calm history does not turn every ripple into certainty.
    pub min_long_std: f64,
    /// Residual, in units of the running mean absolute error, at which a single point
    /// alerts on its own (score 0.5; 0 turns the point component off).
    pub point_alert_z: f64,

    /// Weight of the pattern-novelty score (0 turns novelty off).
    pub novelty_weight: f64,
    /// Weight of the likelihood of the novelty distance (0 turns it off).
    pub novelty_likelihood_weight: f64,
    /// Values per pattern (at most 16).
    pub pattern_len: u32,
    /// Prototypes kept (at most 32).
    pub prototypes: u32,
    /// Distance, in units of the past range, within which a pattern matches a prototype.
    pub vigilance: f64,
    /// How far a matched prototype moves towards the pattern.
    pub prototype_rate: f64,
    /// Target fraction of points whose pattern is novel: a series above it raises its own
    /// vigilance, never lowers it below `vigilance` (0 turns the adaptation off).
    pub vigilance_target_rate: f64,
    /// Step of that adaptation, in log units per point.
    pub vigilance_adapt: f64,
    /// Pattern values within this distance (in range units) of the running median are
    /// snapped to it before matching, so small ripples around the usual level are never
    /// novel (0 turns it off; ARTime's "chomp").
    pub chomp: f64,

    /// Excess beyond the past range, in units of that range, at which a value alerts on
    /// its own (score 0.5; 0 turns the range break off).
    pub range_break: f64,
    /// The range break's threshold is `range_break × (1 + range_settle / points seen)`:
    /// a short history's range is still growing, so its records surprise less.
    pub range_settle: f64,

    /// Score at and above which a point is an alert.
    pub alert_threshold: f64,
    /// After an alert, the next this many points are held below half the threshold, so
    /// one incident raises one alert (unless `pierce_ratio` lets a much stronger one out).
    pub hold_off: u32,
    /// Within the hold-off, a point still alerts (and restarts the hold-off) when its score
    /// is at least this many times the score of the alert that started the hold-off, so a
    /// weak alert cannot mask a gross anomaly that follows it (0 turns this off).
    pub pierce_ratio: f64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            warmup: 750,
            level_alpha: 0.01,
            season_gamma: 0.2,
            error_alpha: 0.01,
            short_window: 15,
            long_alpha: 0.002,
            min_long_std: 0.03,
            point_alert_z: 0.0,
            novelty_weight: 1.0,
            novelty_likelihood_weight: 1.0,
            pattern_len: 12,
            prototypes: 32,
            vigilance: 0.12,
            prototype_rate: 0.05,
            vigilance_target_rate: 0.02,
            vigilance_adapt: 0.002,
            chomp: 0.03,
            range_break: 0.01,
            range_settle: 2000.0,
            alert_threshold: 0.5,
            hold_off: 160,
            pierce_ratio: 1.8,
        }
    }
}
