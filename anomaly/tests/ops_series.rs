//! The default detector on the kind of series an estate sends (issue 13): a request rate
//! with daily and weekly seasonality (quiet weekends), then a slow leak, then a step. The
//! expectations are an operator's, not a benchmark's: a clean week including its weekend
//! raises nothing, a leak is flagged before it has added half the daily swing, and a step
//! of a third of the level is flagged within three points.

mod common;

use common::Noise;
use sightline_anomaly::{Detector, DetectorConfig};

const STEP: i64 = 300; // five-minute samples
const PER_DAY: usize = 288;
const PER_WEEK: usize = 7 * PER_DAY;
/// Monday 2026-01-05 00:00 UTC, so that days 5 and 6 of each week are the weekend.
const T0: i64 = 1_767_571_200;

/// Busy weekdays (level 50, swing ±10 over the day), quiet weekends (level 30, ±5).
fn usual(i: usize) -> f64 {
    let day = (i / PER_DAY) % 7;
    let phase = (i % PER_DAY) as f64 / PER_DAY as f64 * std::f64::consts::TAU;
    if day >= 5 {
        30.0 + 5.0 * phase.sin()
    } else {
        50.0 + 10.0 * phase.sin()
    }
}

#[test]
fn seasonal_weeks_stay_quiet_and_a_leak_and_a_step_are_flagged() {
    let config = DetectorConfig::default();
    let mut detector = Detector::new(config);
    let mut noise = Noise(7);
    let clean_week = 3 * PER_WEEK..4 * PER_WEEK;
    // A leak from Tuesday 00:00 of week 5 adding 0.02 a point (5.8 a day); it is fixed
    // (the value is back to usual) on Thursday 00:00; a step of +17 on Friday 06:00 (a
    // third of the weekday level).
    let leak = 4 * PER_WEEK + PER_DAY..4 * PER_WEEK + 3 * PER_DAY;
    let step_at = 4 * PER_WEEK + 4 * PER_DAY + 72;
    let mut leak_flagged = None;
    let mut step_flagged = None;
    for i in 0..step_at + 20 {
        let added = if leak.contains(&i) {
            0.02 * (i - leak.start) as f64
        } else if i >= step_at {
            17.0
        } else {
            0.0
        };
        let value = usual(i) + added + noise.next();
        let score = detector.observe(T0 + i as i64 * STEP, value);
        assert!((0.0..=1.0).contains(&score.value));
        let alert = score.value >= config.alert_threshold;
        if clean_week.contains(&i) {
            assert!(
                !alert,
                "alert in the clean week at point {i} (day {}): {score:?}",
                (i / PER_DAY) % 7
            );
        }
        if alert && leak.contains(&i) {
            leak_flagged.get_or_insert((i - leak.start, added));
        }
        if alert && i >= step_at {
            step_flagged.get_or_insert(i - step_at);
        }
    }
    let (after, added) = leak_flagged.expect("the leak raised no alert");
    eprintln!(
        "leak flagged {after} points in (+{added:.1}); step flagged {step_flagged:?} points after"
    );
    assert!(
        added < 10.0,
        "the leak was flagged {after} points in, having added {added:.1} (half the daily swing is 10)"
    );
    let after = step_flagged.expect("the step raised no alert");
    assert!(after <= 3, "the step was flagged {after} points late");
}
