//! Baselines: the value each point is expected to have, from the past only.
//!
//! Four predictors run side by side, each O(1) per point:
//!
//! * `LastValue` — the previous value (a random walk; best for smooth, drifting series),
//! * `Level` — an exponentially weighted level (best for white noise around a level),
//! * `Daily` — Holt–Winters-style additive level plus a time-of-day profile (48 half-hour
//!   bins keyed by the timestamp, so irregular sampling and gaps do not shift the phase),
//! * `Weekly` — the same with an hour-of-week profile (168 bins).
//!
//! Period detection is model selection: each predictor keeps an exponentially weighted
//! mean absolute error, and the residual of the one with the lowest error so far is scored.
//! A series without daily or weekly rhythm never lets a seasonal profile win, because the
//! profile then only adds noise to the level's prediction.

use serde::{Deserialize, Serialize};

const DAY_BINS: usize = 48;
const WEEK_BINS: usize = 168;

/// Which baseline produced the expected value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Baseline {
    /// The previous value.
    LastValue,
    /// An exponentially weighted level.
    Level,
    /// Level plus a time-of-day profile.
    Daily,
    /// Level plus an hour-of-week profile.
    Weekly,
}

impl Baseline {
    const ALL: [Baseline; 4] = [
        Baseline::LastValue,
        Baseline::Level,
        Baseline::Daily,
        Baseline::Weekly,
    ];
}

/// An additive seasonal profile over fixed time bins. Unvisited bins are NaN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SeasonalProfile {
    level: f64,
    bins: Vec<f32>,
    bin_seconds: i64,
}

impl SeasonalProfile {
    fn new(bins: usize, bin_seconds: i64) -> Self {
        Self {
            level: f64::NAN,
            bins: vec![f32::NAN; bins],
            bin_seconds,
        }
    }

    fn bin(&self, timestamp: i64) -> usize {
        (timestamp.div_euclid(self.bin_seconds)).rem_euclid(self.bins.len() as i64) as usize
    }

    fn predict(&self, timestamp: i64) -> f64 {
        let season = self.bins[self.bin(timestamp)];
        if self.level.is_nan() {
            f64::NAN
        } else if season.is_nan() {
            self.level
        } else {
            self.level + f64::from(season)
        }
    }

    fn update(&mut self, timestamp: i64, value: f64, alpha: f64, gamma: f64) {
        let b = self.bin(timestamp);
        if self.level.is_nan() {
            self.level = value;
        }
        let season = if self.bins[b].is_nan() {
            0.0
        } else {
            f64::from(self.bins[b])
        };
        self.level += alpha * (value - season - self.level);
        let new_season = if self.bins[b].is_nan() {
            value - self.level
        } else {
            season + gamma * (value - self.level - season)
        };
        self.bins[b] = new_season as f32;
    }
}

/// The baselines of one series and their running errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baselines {
    last: f64,
    level: f64,
    daily: SeasonalProfile,
    weekly: SeasonalProfile,
    /// Exponentially weighted mean absolute error of each baseline, in `Baseline::ALL` order.
    errors: [f64; 4],
    seen: u64,
}

/// What the baselines expect for the next point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expectation {
    /// The chosen baseline.
    pub baseline: Baseline,
    /// Its prediction.
    pub expected: f64,
    /// Its running mean absolute error (the residual scale).
    pub scale: f64,
}

impl Default for Baselines {
    fn default() -> Self {
        Self::new()
    }
}

impl Baselines {
    /// Fresh baselines with nothing learnt.
    pub fn new() -> Self {
        Self {
            last: f64::NAN,
            level: f64::NAN,
            daily: SeasonalProfile::new(DAY_BINS, 86_400 / DAY_BINS as i64),
            weekly: SeasonalProfile::new(WEEK_BINS, 3_600),
            errors: [f64::NAN; 4],
            seen: 0,
        }
    }

    fn predictions(&self, timestamp: i64) -> [f64; 4] {
        [
            self.last,
            self.level,
            self.daily.predict(timestamp),
            self.weekly.predict(timestamp),
        ]
    }

    /// The expectation for a point at `timestamp`, or `None` before the first point.
    pub fn expect(&self, timestamp: i64) -> Option<Expectation> {
        let predictions = self.predictions(timestamp);
        let mut best: Option<Expectation> = None;
        for (k, baseline) in Baseline::ALL.into_iter().enumerate() {
            let (expected, scale) = (predictions[k], self.errors[k]);
            if expected.is_nan() || scale.is_nan() {
                continue;
            }
            if best.is_none_or(|b| scale < b.scale) {
                best = Some(Expectation {
                    baseline,
                    expected,
                    scale,
                });
            }
        }
        best.or_else(|| {
            (!self.last.is_nan()).then_some(Expectation {
                baseline: Baseline::LastValue,
                expected: self.last,
                scale: 0.0,
            })
        })
    }

    /// Learns from a point; `alpha` drives the levels, `gamma` the seasonal bins and
    /// `error_alpha` the running errors.
    pub fn update(&mut self, timestamp: i64, value: f64, alpha: f64, gamma: f64, error_alpha: f64) {
        let predictions = self.predictions(timestamp);
        for (k, prediction) in predictions.into_iter().enumerate() {
            if prediction.is_nan() {
                continue;
            }
            let error = (value - prediction).abs();
            // Average over the first points, then forget exponentially.
            let rate = error_alpha.max(1.0 / (self.seen as f64 + 1.0));
            self.errors[k] = if self.errors[k].is_nan() {
                error
            } else {
                self.errors[k] + rate * (error - self.errors[k])
            };
        }
        self.last = value;
        self.level = if self.level.is_nan() {
            value
        } else {
            self.level + alpha * (value - self.level)
        };
        self.daily.update(timestamp, value, alpha, gamma);
        self.weekly.update(timestamp, value, alpha, gamma);
        self.seen += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daily_rhythm_is_picked_up_by_a_seasonal_profile() {
        let mut baselines = Baselines::new();
        let mut x: u64 = 99;
        let step = 300;
        for i in 0..(288 * 14) {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = 2.0 * ((x >> 11) as f64 / (1u64 << 53) as f64 - 0.5);
            let t = i * step;
            let phase = (t % 86_400) as f64 / 86_400.0 * std::f64::consts::TAU;
            // Noise makes the last value a poor guess; the level misses the rhythm.
            baselines.update(t, 50.0 + 10.0 * phase.sin() + noise, 0.05, 0.2, 0.01);
        }
        let expectation = baselines.expect(288 * 14 * step).unwrap();
        assert!(
            matches!(expectation.baseline, Baseline::Daily | Baseline::Weekly),
            "{expectation:?}"
        );
        assert!((expectation.expected - 50.0).abs() < 1.5, "{expectation:?}");
    }

    #[test]
    fn white_noise_prefers_the_level_over_the_last_value() {
        let mut baselines = Baselines::new();
        let mut x: u64 = 12345;
        for i in 0..3000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            baselines.update(i * 60, 5.0 + noise, 0.05, 0.2, 0.01);
        }
        let expectation = baselines.expect(3000 * 60).unwrap();
        assert_ne!(expectation.baseline, Baseline::LastValue);
        assert!((expectation.expected - 5.0).abs() < 0.3);
    }
}
