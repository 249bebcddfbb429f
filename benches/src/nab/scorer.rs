//! The NAB v1.1 scoring rules (`SCORING.md` §3–§7): per-row weights from the scaled
//! sigmoid, the corpus-wide threshold sweep and the normalisation between the null and the
//! perfect detector.
//!
//! Everything here works on row indices: a file is a list of scores plus its windows as
//! inclusive `[left, right]` row ranges, already mapped from timestamps by
//! [`super::corpus`]. Rows are steps, never times (§1).

use serde::{Deserialize, Serialize};

/// The three weights of a NAB profile that scoring uses (`tnWeight` is ignored, §1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CostProfile {
    /// Reward for the earliest detection at the left edge of a window.
    pub tp_weight: f64,
    /// Penalty scale for a detection outside every window.
    pub fp_weight: f64,
    /// Penalty for a window without any detection.
    pub fn_weight: f64,
}

impl CostProfile {
    /// NAB's `standard` profile.
    pub const STANDARD: CostProfile = CostProfile {
        tp_weight: 1.0,
        fp_weight: 0.11,
        fn_weight: 1.0,
    };
    /// NAB's `reward_low_FP_rate` profile.
    pub const REWARD_LOW_FP: CostProfile = CostProfile {
        tp_weight: 1.0,
        fp_weight: 0.22,
        fn_weight: 1.0,
    };
    /// NAB's `reward_low_FN_rate` profile.
    pub const REWARD_LOW_FN: CostProfile = CostProfile {
        tp_weight: 1.0,
        fp_weight: 0.11,
        fn_weight: 2.0,
    };
}

/// One file as the scorer sees it: a score per row and the labelled windows.
#[derive(Debug, Clone)]
pub struct ScoredFile {
    /// Name used in reports (NAB's relative path, e.g. `realKnownCause/nyc_taxi.csv`).
    pub name: String,
    /// The detector's `anomaly_score` for every row, in file order.
    pub scores: Vec<f64>,
    /// Windows as inclusive row ranges, sorted and non-overlapping.
    pub windows: Vec<(usize, usize)>,
}

/// NAB's probationary period for a file of `rows` rows: `min(floor(0.15 N), 750)` (§3).
pub fn probationary_period(rows: usize) -> usize {
    // 0.15 * 5000 = 750; integer arithmetic gives the same floor.
    (rows * 15 / 100).min(750)
}

/// The scaled sigmoid `A(y)` of §4.
pub fn scaled_sigmoid(y: f64) -> f64 {
    if y > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * y).exp()) - 1.0
    }
}

/// Where a row lies: inside window `k`, or outside every window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RowPlace {
    /// Inside the window with this index into [`ScoredFile::windows`].
    Window(usize),
    /// Outside every window.
    Outside,
}

/// The weight σ(i) of every row of a file with `rows` rows and these windows, and the
/// window each row belongs to (§4). Probationary rows get a weight too; the caller skips
/// them.
pub fn row_weights(
    rows: usize,
    windows: &[(usize, usize)],
    profile: &CostProfile,
) -> Vec<(f64, RowPlace)> {
    let mut out = Vec::with_capacity(rows);
    let mut next_window = 0;
    let mut current: Option<usize> = None;
    // Right edge and width of the most recent window that has ended.
    let mut previous: Option<(usize, usize)> = None;
    let a_minus_one = scaled_sigmoid(-1.0);
    for i in 0..rows {
        if current.is_none() && next_window < windows.len() && windows[next_window].0 == i {
            current = Some(next_window);
            next_window += 1;
        }
        match current {
            Some(k) => {
                let (left, right) = windows[k];
                let width = (right - left + 1) as f64;
                let y = -((right - i + 1) as f64) / width;
                out.push((
                    profile.tp_weight * scaled_sigmoid(y) / a_minus_one,
                    RowPlace::Window(k),
                ));
                if i == right {
                    previous = Some((right, right - left + 1));
                    current = None;
                }
            }
            None => {
                let weight = match previous {
                    None => -profile.fp_weight,
                    Some((right_prev, width_prev)) => {
                        // §4: the divisor is W_prev − 1, not W_prev. A one-row window
                        // would divide by zero; NAB's windows are never that narrow, and
                        // an infinite y saturates the sigmoid at −1 as intended.
                        let y = (i - right_prev) as f64 / (width_prev as f64 - 1.0);
                        profile.fp_weight * scaled_sigmoid(y)
                    }
                };
                out.push((weight, RowPlace::Outside));
            }
        }
    }
    out
}

/// The result of the threshold sweep for one profile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SweepResult {
    /// The optimal threshold θ* (1.1 means "detect nothing").
    pub threshold: f64,
    /// `S(θ*)`, the raw score summed over files.
    pub raw: f64,
    /// The raw score of the null detector (constant 0.5) over the same files.
    pub null: f64,
    /// The raw score of the perfect detector: `tpWeight × windows`.
    pub perfect: f64,
    /// `100 (raw − null) / (perfect − null)`.
    pub normalized: f64,
}

/// Per-file counts at a given threshold, for the report (NAB gives these for information).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct FileOutcome {
    /// Windows with at least one detection.
    pub windows_detected: usize,
    /// Windows of the file.
    pub windows: usize,
    /// Detected rows outside every window.
    pub false_positive_rows: usize,
    /// This file's contribution to `S(θ)`.
    pub raw: f64,
}

/// One scorable row, flattened over the corpus for the sweep.
struct SweepRow {
    score: f64,
    weight: f64,
    /// Corpus-wide window index, or `None` outside every window.
    window: Option<usize>,
}

fn scorable_rows(files: &[ScoredFile], profile: &CostProfile) -> (Vec<SweepRow>, usize) {
    let mut rows = Vec::new();
    let mut window_base = 0;
    for file in files {
        let probation = probationary_period(file.scores.len());
        let weights = row_weights(file.scores.len(), &file.windows, profile);
        for (i, (&score, &(weight, place))) in file.scores.iter().zip(&weights).enumerate() {
            if i < probation {
                continue;
            }
            rows.push(SweepRow {
                score,
                weight,
                window: match place {
                    RowPlace::Window(k) => Some(window_base + k),
                    RowPlace::Outside => None,
                },
            });
        }
        window_base += file.windows.len();
    }
    (rows, window_base)
}

/// Sweeps every distinct score (plus 1.1) and returns the best `(threshold, S)`; ties go
/// to the highest threshold, as NAB's stable sort does (§6).
fn sweep_raw(files: &[ScoredFile], profile: &CostProfile) -> (f64, f64) {
    let (mut rows, windows) = scorable_rows(files, profile);
    rows.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut best_max: Vec<Option<f64>> = vec![None; windows];
    let mut total = -profile.fn_weight * windows as f64;
    let mut best = (1.1, total);
    let mut i = 0;
    while i < rows.len() {
        let threshold = rows[i].score;
        // Include every row with this exact score before recording S(threshold).
        while i < rows.len() && rows[i].score == threshold {
            let row = &rows[i];
            match row.window {
                Some(k) => match best_max[k] {
                    None => {
                        total += profile.fn_weight + row.weight;
                        best_max[k] = Some(row.weight);
                    }
                    Some(current) if row.weight > current => {
                        total += row.weight - current;
                        best_max[k] = Some(row.weight);
                    }
                    Some(_) => {}
                },
                None => total += row.weight,
            }
            i += 1;
        }
        // Strictly greater: on a tie the earlier (higher) threshold stays.
        if total > best.1 {
            best = (threshold, total);
        }
    }
    best
}

/// The raw scores of the null detector (a constant 0.5, at its best threshold) and of the
/// perfect one (`tpWeight × windows`) over `files`: the ends of the normalisation (§7).
fn null_and_perfect(files: &[ScoredFile], profile: &CostProfile) -> (f64, f64) {
    let null_files: Vec<ScoredFile> = files
        .iter()
        .map(|f| ScoredFile {
            name: f.name.clone(),
            scores: vec![0.5; f.scores.len()],
            windows: f.windows.clone(),
        })
        .collect();
    let (_, null) = sweep_raw(&null_files, profile);
    let windows: usize = files.iter().map(|f| f.windows.len()).sum();
    (null, profile.tp_weight * windows as f64)
}

/// Scores a detector's output over a corpus for one profile (§5–§7).
pub fn score_corpus(files: &[ScoredFile], profile: &CostProfile) -> SweepResult {
    let (threshold, raw) = sweep_raw(files, profile);
    let (null, perfect) = null_and_perfect(files, profile);
    let normalized = if perfect > null {
        100.0 * (raw - null) / (perfect - null)
    } else {
        0.0
    };
    SweepResult {
        threshold,
        raw,
        null,
        perfect,
        normalized,
    }
}

/// Scores files at a threshold chosen elsewhere (on other files: the generalisation
/// protocol's held-out fold), normalised between the null and the perfect detector on
/// these files as [`score_corpus`] does. `None` when the files hold no window, where the
/// normalisation is undefined.
pub fn score_at(
    files: &[ScoredFile],
    profile: &CostProfile,
    threshold: f64,
) -> Option<SweepResult> {
    let raw: f64 = files
        .iter()
        .map(|f| file_outcome(f, profile, threshold).raw)
        .sum();
    let (null, perfect) = null_and_perfect(files, profile);
    (perfect > 0.0 && perfect > null).then(|| SweepResult {
        threshold,
        raw,
        null,
        perfect,
        normalized: 100.0 * (raw - null) / (perfect - null),
    })
}

/// The outcome of one file at a fixed threshold (for per-file reports).
pub fn file_outcome(file: &ScoredFile, profile: &CostProfile, threshold: f64) -> FileOutcome {
    let probation = probationary_period(file.scores.len());
    let weights = row_weights(file.scores.len(), &file.windows, profile);
    let mut best: Vec<Option<f64>> = vec![None; file.windows.len()];
    let mut outcome = FileOutcome {
        windows: file.windows.len(),
        ..FileOutcome::default()
    };
    let mut outside = 0.0;
    for (i, (&score, &(weight, place))) in file.scores.iter().zip(&weights).enumerate() {
        if i < probation || score < threshold {
            continue;
        }
        match place {
            RowPlace::Window(k) => {
                best[k] = Some(best[k].map_or(weight, |b: f64| b.max(weight)));
            }
            RowPlace::Outside => {
                outcome.false_positive_rows += 1;
                outside += weight;
            }
        }
    }
    outcome.windows_detected = best.iter().filter(|b| b.is_some()).count();
    outcome.raw = outside
        + best
            .iter()
            .map(|b| b.unwrap_or(-profile.fn_weight))
            .sum::<f64>();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(rows: usize, windows: Vec<(usize, usize)>, scores: Vec<f64>) -> ScoredFile {
        assert_eq!(scores.len(), rows);
        ScoredFile {
            name: "t.csv".into(),
            scores,
            windows,
        }
    }

    #[test]
    fn sigmoid_matches_the_reference_values() {
        assert!((scaled_sigmoid(-1.0) - 0.986614).abs() < 1e-6);
        assert!((scaled_sigmoid(-0.5) - 0.848284).abs() < 1e-6);
        assert_eq!(scaled_sigmoid(0.0), 0.0);
        assert!((scaled_sigmoid(1.0) + 0.986614).abs() < 1e-6);
        assert_eq!(scaled_sigmoid(3.5), -1.0);
    }

    #[test]
    fn probation_is_fifteen_percent_capped_at_750() {
        assert_eq!(probationary_period(1000), 150);
        assert_eq!(probationary_period(1127), 169);
        assert_eq!(probationary_period(10_000), 750);
    }

    #[test]
    fn row_weights_follow_the_window_geometry() {
        let weights = row_weights(70, &[(20, 29)], &CostProfile::STANDARD);
        // Before the first window: −fpWeight.
        assert_eq!(weights[0].0, -0.11);
        // The first row of a window scores exactly tpWeight; the last one A(−1/W)/A(−1).
        assert!((weights[20].0 - 1.0).abs() < 1e-12);
        let last = scaled_sigmoid(-0.1) / scaled_sigmoid(-1.0);
        assert!((weights[29].0 - last).abs() < 1e-12);
        assert_eq!(weights[29].1, RowPlace::Window(0));
        // Just after: y = 1/(W−1), small and negative.
        let after = 0.11 * scaled_sigmoid(1.0 / 9.0);
        assert!((weights[30].0 - after).abs() < 1e-12);
        assert_eq!(weights[30].1, RowPlace::Outside);
        // Ten rows later y = 10/9: still just short of −fpWeight.
        let later = 0.11 * scaled_sigmoid(10.0 / 9.0);
        assert!((weights[39].0 - later).abs() < 1e-12 && later > -0.11);
        // Once y > 3 (more than 27 rows after the edge) it is exactly −fpWeight.
        assert_eq!(weights[57].0, -0.11);
    }

    fn perfect_scores(rows: usize, windows: &[(usize, usize)]) -> Vec<f64> {
        let mut scores = vec![0.0; rows];
        for &(left, _) in windows {
            scores[left] = 1.0;
        }
        scores
    }

    #[test]
    fn perfect_detector_scores_100_in_every_profile() {
        let windows_a = vec![(300, 340), (700, 760)];
        let windows_b = vec![(500, 560)];
        let files = vec![
            file(1000, windows_a.clone(), perfect_scores(1000, &windows_a)),
            file(800, windows_b.clone(), perfect_scores(800, &windows_b)),
            file(600, vec![], vec![0.0; 600]),
        ];
        for profile in [
            CostProfile::STANDARD,
            CostProfile::REWARD_LOW_FP,
            CostProfile::REWARD_LOW_FN,
        ] {
            let result = score_corpus(&files, &profile);
            assert!((result.normalized - 100.0).abs() < 1e-9, "{result:?}");
            assert_eq!(result.threshold, 1.0);
        }
    }

    #[test]
    fn null_detector_scores_0() {
        let files = vec![
            file(1000, vec![(300, 340)], vec![0.5; 1000]),
            file(900, vec![], vec![0.5; 900]),
        ];
        let result = score_corpus(&files, &CostProfile::STANDARD);
        assert_eq!(result.normalized, 0.0);
        assert_eq!(result.raw, -1.0);
        assert_eq!(result.threshold, 1.1);
        let low_fn = score_corpus(&files, &CostProfile::REWARD_LOW_FN);
        assert_eq!(low_fn.null, -2.0);
    }

    #[test]
    fn late_detection_scores_less_than_early_detection() {
        let windows = vec![(300, 399)];
        let mut early = vec![0.0; 1000];
        early[310] = 1.0;
        let mut late = vec![0.0; 1000];
        late[390] = 1.0;
        let early = score_corpus(
            &[file(1000, windows.clone(), early)],
            &CostProfile::STANDARD,
        );
        let late = score_corpus(&[file(1000, windows, late)], &CostProfile::STANDARD);
        assert!(early.normalized > late.normalized, "{early:?} {late:?}");
        assert!(late.normalized > 50.0);
    }

    #[test]
    fn probationary_detections_cost_nothing_and_count_for_nothing() {
        // 1000 rows: probation 150. A window inside it would be dropped by NAB's labeller;
        // here a detection in the probation is simply ignored.
        let mut scores = vec![0.0; 1000];
        scores[10] = 1.0;
        scores[400] = 1.0;
        let result = score_corpus(
            &[file(1000, vec![(400, 450)], scores)],
            &CostProfile::STANDARD,
        );
        assert!((result.normalized - 100.0).abs() < 1e-9);
    }

    #[test]
    fn false_positives_are_charged_per_row_and_the_sweep_picks_the_best_threshold() {
        let windows = vec![(500, 549)];
        let mut scores = vec![0.0; 1000];
        scores[520] = 0.6; // a true detection at a middling score
        // Three false alarms above it: detecting at 0.6 costs 3 × 0.11.
        scores[200] = 0.9;
        scores[201] = 0.9;
        scores[202] = 0.9;
        let f = file(1000, windows.clone(), scores);
        let result = score_corpus(std::slice::from_ref(&f), &CostProfile::STANDARD);
        assert_eq!(result.threshold, 0.6);
        let weights = row_weights(1000, &windows, &CostProfile::STANDARD);
        let expected = weights[520].0 - 3.0 * 0.11;
        assert!((result.raw - expected).abs() < 1e-12);
        // With fpWeight 0.22 the sweep keeps whichever of S(0.6) and S(1.1) = −1 is larger.
        let low_fp = score_corpus(std::slice::from_ref(&f), &CostProfile::REWARD_LOW_FP);
        let s_low = weights[520].0 - 3.0 * 0.22;
        assert!((low_fp.raw - s_low.max(-1.0)).abs() < 1e-12);
        let outcome = file_outcome(&f, &CostProfile::STANDARD, 0.6);
        assert_eq!(outcome.windows_detected, 1);
        assert_eq!(outcome.false_positive_rows, 3);
        assert!((outcome.raw - expected).abs() < 1e-12);
    }

    #[test]
    fn ties_go_to_the_highest_threshold() {
        // Two thresholds give the same S: the row at 0.4 lies in a window already detected
        // at a larger weight, so including it changes nothing.
        let windows = vec![(500, 549)];
        let mut scores = vec![0.0; 1000];
        scores[500] = 0.8;
        scores[540] = 0.4;
        let result = score_corpus(&[file(1000, windows, scores)], &CostProfile::STANDARD);
        assert_eq!(result.threshold, 0.8);
    }

    #[test]
    fn scoring_at_the_sweeps_threshold_is_the_sweeps_score() {
        let mut scores = vec![0.0; 1000];
        scores[300] = 0.7; // a false positive
        scores[520] = 0.9; // inside the window
        let files = [file(1000, vec![(500, 600)], scores)];
        let swept = score_corpus(&files, &CostProfile::STANDARD);
        let fixed = score_at(&files, &CostProfile::STANDARD, swept.threshold).unwrap();
        assert_eq!(fixed.threshold, swept.threshold);
        assert!((fixed.raw - swept.raw).abs() < 1e-12, "{fixed:?} {swept:?}");
        assert!((fixed.normalized - swept.normalized).abs() < 1e-9);
        // A threshold chosen elsewhere, lower, pays the false positive here.
        let lower = score_at(&files, &CostProfile::STANDARD, 0.5).unwrap();
        assert!(lower.normalized < swept.normalized);
        // No window: nothing to normalise against.
        assert!(
            score_at(
                &[file(1000, vec![], vec![0.0; 1000])],
                &CostProfile::STANDARD,
                0.5
            )
            .is_none()
        );
    }
}
