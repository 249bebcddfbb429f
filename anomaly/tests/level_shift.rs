//! Integration test of the default detector on a synthetic metric: daily seasonality plus
//! noise, a clean week that must raise no alert, then a level shift that must raise one
//! within three points.

mod common;

use common::Noise;
use sightline_anomaly::{Detector, DetectorConfig};

const STEP: i64 = 300; // five-minute samples
const PER_DAY: usize = 288;
const PER_WEEK: usize = 7 * PER_DAY;

fn daily(i: usize) -> f64 {
    let t = i as i64 * STEP;
    let phase = (t % 86_400) as f64 / 86_400.0 * std::f64::consts::TAU;
    50.0 + 10.0 * phase.sin()
}

#[test]
fn a_level_shift_fires_within_three_points_and_a_clean_week_stays_quiet() {
    let config = DetectorConfig::default();
    let mut detector = Detector::new(config);
    let mut noise = Noise(2024);
    // Two weeks of history (the first 750 points are the warm-up), then the clean week.
    let clean_week = 2 * PER_WEEK..3 * PER_WEEK;
    let shift_at = 3 * PER_WEEK + 100;
    let shift = 15.0;
    let mut first_alert_after_shift = None;
    for i in 0..shift_at + 50 {
        let level = if i >= shift_at { shift } else { 0.0 };
        let value = daily(i) + level + noise.next();
        let score = detector.observe(i as i64 * STEP, value);
        assert!((0.0..=1.0).contains(&score.value));
        if clean_week.contains(&i) {
            assert!(
                score.value < config.alert_threshold,
                "alert in the clean week at point {i}: {score:?}"
            );
        }
        if i >= shift_at && score.value >= config.alert_threshold {
            first_alert_after_shift.get_or_insert((i, score));
        }
    }
    let (at, score) = first_alert_after_shift.expect("the level shift raised no alert");
    assert!(
        at - shift_at <= 3,
        "first alert {} points after the shift: {score:?}",
        at - shift_at
    );
    // The explanation names the expectation the shifted value broke.
    assert!(score.explanation.band.1 < daily(at) + shift, "{score:?}");
}
