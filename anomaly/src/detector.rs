//! The per-series streaming detector. Each point is scored from the past only, then learnt:
//!
//! 1. **Pattern novelty** ([`Novelty`]): the last `pattern_len` values, scaled into the
//!    range seen so far, are compared with up to `prototypes` remembered patterns; the
//!    distance to the nearest, over the vigilance, is the main score (0.5 at the vigilance).
//!    The vigilance adapts per series towards a target rate of novel patterns (upwards
//!    only), so a noisy series, whose every pattern is a little new, stays calm.
//! 2. **Likelihood of novelty** ([`Likelihood`]): as in Numenta's HTM detector, the novelty
//!    distance is a raw score whose short-window mean is compared with its long-run
//!    distribution; a burst of unusually novel patterns fires even when none alone passes
//!    the vigilance.
//! 3. **Likelihood of the residual**: [`Baselines`] predict the value (last value, level,
//!    daily or weekly profile, whichever has erred least); the residual over the running
//!    error gives a raw score `1 − exp(−z/2)` with its own likelihood. It also provides the
//!    expected value and band of the explanation.
//! 4. **Range break**: a value beyond the range seen so far by `range_break` times that
//!    range alerts at once, so a gross level shift or spike fires on its first point,
//!    before a pattern of `pattern_len` values has moved far enough. The bar is raised by
//!    `1 + range_settle / points seen`: a short history's range is still growing.
//! 5. **Point residual**: one residual of `point_alert_z` typical errors alerts on its own
//!    (off by default: on NAB's heavy-tailed series it costs more false alarms than it
//!    catches).
//! 6. **Hold-off**: after an alert, the rest of the episode is held below the threshold,
//!    except a point scoring `pierce_ratio` times the alert that started the hold-off (as
//!    ARTime lets a much less familiar pattern through its mask): it alerts and restarts it.
//!
//! The score is the maximum of the components; the explanation names the one that won.

use serde::{Deserialize, Serialize};

use crate::baseline::{Baseline, Baselines};
use crate::config::DetectorConfig;
use crate::likelihood::{Likelihood, LikelihoodParams};
use crate::novelty::{Novelty, NoveltyParams};

/// Which part of the detector decided the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Component {
    /// Still learning: the score is 0.
    WarmUp,
    /// The recent pattern is unlike every pattern remembered.
    PatternNovelty,
    /// The value lies far outside the range seen so far.
    RangeBreak,
    /// Recent patterns are novel more often than usual.
    NoveltyLikelihood,
    /// Recent residuals from the expected value are unusually large.
    ResidualLikelihood,
    /// The single point is far from its expected value.
    PointResidual,
    /// Within the hold-off after an alert; [`Explanation::unsuppressed`] has the score.
    HoldOff,
}

/// Why a point got its score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The value the chosen baseline expected.
    pub expected: f64,
    /// The band `expected ± 3 × typical error` of ordinary values.
    pub band: (f64, f64),
    /// The baseline that produced the expectation.
    pub baseline: Baseline,
    /// The component that decided the score.
    pub component: Component,
    /// The score before warm-up and hold-off.
    pub unsuppressed: f64,
}

/// The score of one point: in [0, 1], with its explanation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Anomaly score in [0, 1].
    pub value: f64,
    /// Why.
    pub explanation: Explanation,
}

/// The streaming detector of one series. Its whole state (configuration included) is
/// serialisable: [`Detector::checkpoint`], [`Detector::restore`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detector {
    config: DetectorConfig,
    baselines: Baselines,
    residual_likelihood: Likelihood,
    novelty: Novelty,
    novelty_likelihood: Likelihood,
    /// The range the range break is measured against: the past minimum and maximum.
    /// (Letting old extremes fade was tried and lost on NAB: labelled anomalies are the
    /// extremes of the whole history.)
    break_low: f64,
    break_high: f64,
    /// Log-factor of this series' vigilance over the configured one (≥ 0).
    vigilance_log_gain: f64,
    seen: u64,
    hold_off_left: u32,
    /// Score of the alert that started the current hold-off.
    last_alert: f64,
}

impl Detector {
    /// A fresh detector.
    pub fn new(config: DetectorConfig) -> Self {
        Self {
            config,
            baselines: Baselines::new(),
            residual_likelihood: Likelihood::default(),
            novelty: Novelty::new(),
            novelty_likelihood: Likelihood::default(),
            break_low: f64::INFINITY,
            break_high: f64::NEG_INFINITY,
            vigilance_log_gain: 0.0,
            seen: 0,
            hold_off_left: 0,
            last_alert: 0.0,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Points observed so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Scores the point `(timestamp, value)` (seconds since the epoch) from the past only,
    /// then learns from it. Points need not be evenly spaced or strictly ordered; a
    /// non-finite value scores 0 and is not learnt.
    pub fn observe(&mut self, timestamp: i64, value: f64) -> Score {
        let cfg = self.config;
        let params = LikelihoodParams {
            short_window: cfg.short_window as usize,
            long_alpha: cfg.long_alpha,
            min_long_std: cfg.min_long_std,
        };
        let (expected, scale, baseline) = match self.baselines.expect(timestamp) {
            Some(e) => (e.expected, e.scale, e.baseline),
            None => (value, 0.0, Baseline::LastValue),
        };
        let mut best = (0.0, Component::ResidualLikelihood);
        let mut offer = |score: f64, component: Component| {
            if score > best.0 {
                best = (score.min(1.0), component);
            }
        };

        if value.is_finite() {
            // A floor on the scale keeps constant series finite: any change from a flat
            // line is then a huge (but finite) residual.
            let unit = scale.max(1e-9 + 1e-6 * expected.abs());
            let z = (value - expected).abs() / unit;
            let raw = 1.0 - (-z / 2.0).exp();
            offer(
                self.residual_likelihood.observe(raw, params),
                Component::ResidualLikelihood,
            );
            if cfg.point_alert_z > 0.0 {
                // Scaled so that a residual of `point_alert_z` typical errors scores 0.5.
                offer(0.5 * z / cfg.point_alert_z, Component::PointResidual);
            }

            if cfg.range_break > 0.0 {
                let range = self.break_high - self.break_low;
                if range > 0.0 {
                    let excess = (value - self.break_high)
                        .max(self.break_low - value)
                        .max(0.0);
                    let bar = cfg.range_break * (1.0 + cfg.range_settle / (self.seen as f64 + 1.0));
                    offer(0.5 * excess / range / bar, Component::RangeBreak);
                }
                self.break_low = self.break_low.min(value);
                self.break_high = self.break_high.max(value);
            }

            if cfg.novelty_weight > 0.0 {
                let vigilance = (cfg.vigilance * self.vigilance_log_gain.exp()).max(1e-9);
                let novelty_params = NoveltyParams {
                    pattern_len: cfg.pattern_len as usize,
                    prototypes: cfg.prototypes as usize,
                    vigilance,
                    rate: cfg.prototype_rate,
                    chomp: cfg.chomp,
                };
                if let Some(distance) = self.novelty.observe(value, novelty_params) {
                    offer(
                        cfg.novelty_weight * 0.5 * distance / vigilance,
                        Component::PatternNovelty,
                    );
                    if cfg.novelty_likelihood_weight > 0.0 {
                        let raw_novelty = (distance / vigilance).min(1.0);
                        offer(
                            cfg.novelty_likelihood_weight
                                * self.novelty_likelihood.observe(raw_novelty, params),
                            Component::NoveltyLikelihood,
                        );
                    }
                    if cfg.vigilance_target_rate > 0.0 {
                        let novel = if distance > vigilance { 1.0 } else { 0.0 };
                        self.vigilance_log_gain = (self.vigilance_log_gain
                            + cfg.vigilance_adapt * (novel - cfg.vigilance_target_rate))
                            .clamp(0.0, 3.0);
                    }
                }
            }
            // Learn after scoring: the point never predicts itself.
            self.baselines.update(
                timestamp,
                value,
                cfg.level_alpha,
                cfg.season_gamma,
                cfg.error_alpha,
            );
        }
        self.seen += 1;

        let (unsuppressed, mut component) = best;
        let mut score = unsuppressed;
        if self.seen <= u64::from(cfg.warmup) {
            score = 0.0;
            component = Component::WarmUp;
        } else if self.hold_off_left > 0
            && !(cfg.pierce_ratio > 0.0
                && score >= cfg.alert_threshold
                && score >= self.last_alert * cfg.pierce_ratio)
        {
            self.hold_off_left -= 1;
            score = score.min(cfg.alert_threshold * 0.5);
            component = Component::HoldOff;
        } else if score >= cfg.alert_threshold {
            self.hold_off_left = cfg.hold_off;
            self.last_alert = score;
        }
        let band_half = 3.0 * scale;
        Score {
            value: score,
            explanation: Explanation {
                expected,
                band: (expected - band_half, expected + band_half),
                baseline,
                component,
                unsuppressed,
            },
        }
    }

    /// Serialises the whole state (configuration included) with postcard.
    pub fn checkpoint(&self) -> Result<Vec<u8>, crate::AnomalyError> {
        postcard::to_allocvec(self).map_err(crate::AnomalyError::Checkpoint)
    }

    /// Restores a detector from [`Detector::checkpoint`]'s bytes.
    pub fn restore(bytes: &[u8]) -> Result<Self, crate::AnomalyError> {
        postcard::from_bytes(bytes).map_err(crate::AnomalyError::Restore)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_stay_in_unit_interval_even_for_wild_input() {
        let mut detector = Detector::new(DetectorConfig {
            warmup: 5,
            ..DetectorConfig::default()
        });
        let values = [1.0, 1.0, f64::NAN, 1e300, -1e300, 0.0, f64::INFINITY, 3.0];
        for (i, &v) in values.iter().cycle().take(200).enumerate() {
            let s = detector.observe(i as i64 * 60, v);
            assert!((0.0..=1.0).contains(&s.value), "{s:?}");
        }
    }

    #[test]
    fn warm_up_scores_zero() {
        let mut detector = Detector::new(DetectorConfig {
            warmup: 10,
            ..DetectorConfig::default()
        });
        for i in 0..10 {
            let s = detector.observe(i * 60, if i == 9 { 1e6 } else { 1.0 });
            assert_eq!(s.value, 0.0);
            assert_eq!(s.explanation.component, Component::WarmUp);
        }
    }

    #[test]
    fn a_spike_fires_once_and_the_hold_off_silences_its_echo() {
        let mut detector = Detector::new(DetectorConfig {
            warmup: 500,
            ..DetectorConfig::default()
        });
        let mut x: u64 = 7;
        let mut signal = |i: i64| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            let noise = (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            10.0 + 3.0 * (i as f64 / 20.0).sin() + 0.3 * noise
        };
        for i in 0..1000 {
            let value = signal(i);
            let s = detector.observe(i * 60, value);
            if i >= 500 {
                assert!(s.value < 0.5, "point {i}: {s:?}");
            }
        }
        let spike = detector.observe(1000 * 60, 40.0);
        assert!(spike.value >= 0.5, "{spike:?}");
        assert!(spike.explanation.band.1 < 40.0, "{spike:?}");
        let echo = detector.observe(1001 * 60, 40.0);
        assert!(echo.value < 0.5, "{echo:?}");
        assert_eq!(echo.explanation.component, Component::HoldOff);
    }

    #[test]
    fn checkpoint_and_restore_continue_identically() {
        let mut a = Detector::new(DetectorConfig {
            warmup: 20,
            ..DetectorConfig::default()
        });
        for i in 0..300 {
            a.observe(i * 300, (i as f64 / 10.0).sin());
        }
        let bytes = a.checkpoint().unwrap();
        assert!(bytes.len() < 4096, "state is {} bytes", bytes.len());
        let mut b = Detector::restore(&bytes).unwrap();
        for i in 300..400 {
            let v = (i as f64 / 10.0).sin() + if i == 350 { 5.0 } else { 0.0 };
            assert_eq!(a.observe(i * 300, v), b.observe(i * 300, v));
        }
        assert!(Detector::restore(&bytes[..bytes.len() / 2]).is_err());
    }
}
