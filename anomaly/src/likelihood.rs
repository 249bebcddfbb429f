//! Anomaly likelihood after Numenta's HTM detector (Ahmad et al., 2017): a raw score in
//! [0, 1] is averaged over a short window, and that average is compared with the long-run
//! distribution of the average. The Gaussian tail probability `q` of the gap becomes the
//! score `−log10(q) / 10`, so 0.5 means `q = 1e-5` (NuPIC's log-likelihood).
//!
//! NuPIC keeps 8,640 past raw scores and re-fits every 100 points; here the long-run mean
//! and variance are exponentially weighted, which is O(1) per point and a few bytes.

use serde::{Deserialize, Serialize};

/// Longest short window the state allows.
pub const MAX_SHORT_WINDOW: usize = 32;

/// Upper tail of the standard normal distribution, `P(Z > z)`.
pub fn normal_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Maps a tail probability to a score: `−log10(q) / 10`, clamped to [0, 1].
pub fn surprise_score(tail: f64) -> f64 {
    (-(tail.max(1e-300)).log10() / 10.0).clamp(0.0, 1.0)
}

/// The likelihood state of one raw-score stream.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Likelihood {
    short: Vec<f32>,
    next: usize,
    short_sum: f64,
    long_mean: f64,
    long_var: f64,
    seen: u64,
}

/// Settings shared by every likelihood of a detector.
#[derive(Debug, Clone, Copy)]
pub struct LikelihoodParams {
    /// Points in the short window.
    pub short_window: usize,
    /// Smoothing of the long-run mean and variance.
    pub long_alpha: f64,
    /// Lower bound of the long-run standard deviation.
    pub min_long_std: f64,
}

impl Likelihood {
    /// Scores `raw` (in [0, 1]) against the past, then learns it.
    pub fn observe(&mut self, raw: f64, params: LikelihoodParams) -> f64 {
        let window = params.short_window.clamp(1, MAX_SHORT_WINDOW);
        if self.short.len() < window {
            self.short.push(raw as f32);
            self.short_sum += raw;
        } else {
            let slot = self.next % window;
            self.short_sum += raw - f64::from(self.short[slot]);
            self.short[slot] = raw as f32;
        }
        self.next = (self.next + 1) % window;
        let short_mean = self.short_sum / self.short.len() as f64;
        let long_std = self.long_var.sqrt().max(params.min_long_std);
        let score = surprise_score(normal_tail((short_mean - self.long_mean) / long_std));
        let rate = params.long_alpha.max(1.0 / (self.seen as f64 + 1.0));
        let delta = short_mean - self.long_mean;
        self.long_mean += rate * delta;
        self.long_var = (1.0 - rate) * (self.long_var + rate * delta * delta);
        self.seen += 1;
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_matches_known_values() {
        assert!((erfc(0.0) - 1.0).abs() < 1e-6);
        assert!((erfc(1.0) - 0.157_299_2).abs() < 1e-6);
        assert!((erfc(-1.0) - 1.842_700_8).abs() < 1e-6);
        assert!((normal_tail(4.264_890_8) - 1e-5).abs() < 1e-8);
        assert!((surprise_score(1e-5) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn a_burst_of_high_raw_scores_is_unlikely_after_a_calm_history() {
        let params = LikelihoodParams {
            short_window: 10,
            long_alpha: 0.001,
            min_long_std: 0.02,
        };
        let mut likelihood = Likelihood::default();
        for i in 0..2000 {
            let calm = likelihood.observe(if i % 7 == 0 { 0.2 } else { 0.05 }, params);
            if i > 100 {
                assert!(calm < 0.3, "point {i}: {calm}");
            }
        }
        let mut peak: f64 = 0.0;
        for _ in 0..10 {
            peak = peak.max(likelihood.observe(0.9, params));
        }
        assert!(peak > 0.9, "{peak}");
    }
}
