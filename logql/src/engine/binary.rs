//! Binary operations between evaluated metric expressions, step by step, with Loki's
//! semantics (which are Prometheus' for everything LogQL has, except that a zero divisor
//! gives NaN).
//!
//! - `vector op scalar` and `scalar op vector` apply to every point and keep its labels.
//! - Between two vectors, series are paired at each step by their match group (all labels,
//!   `on (…)` only the listed ones, `ignoring (…)` all but the listed ones). The "one" side
//!   (the right, or the left with `group_right`) must have one series per group at each
//!   step; one-to-one matching also allows one series per group on the other side.
//! - A comparison without `bool` keeps the left side's value where it holds and drops the
//!   point where it does not; with `bool` it is 1 or 0.
//! - `and`, `or` and `unless` compare match groups only and keep the series as they are.

use std::collections::{HashMap, HashSet};

use sightline_model::Labels;

use super::{EvalError, StepSeries};
use crate::ast::{BinaryExpr, BinaryOp, Cardinality, VectorMatching};

/// `left op right` for a comparison or arithmetic operator, or `None` where a comparison
/// without `bool` does not hold. A comparison that holds keeps `kept`: the vector side's
/// value against a scalar, the left side's between vectors.
fn merge(op: BinaryOp, return_bool: bool, left: f64, right: f64, kept: f64) -> Option<f64> {
    let value = op.apply(left, right)?;
    if !op.is_comparison() || return_bool {
        return Some(value);
    }
    (value == 1.0).then_some(kept)
}

/// `vector op scalar` (or `scalar op vector` with `scalar_left`): every point, labels kept.
pub(super) fn with_scalar(
    binary: &BinaryExpr,
    vector: Vec<StepSeries>,
    scalar: f64,
    scalar_left: bool,
) -> Vec<StepSeries> {
    vector
        .into_iter()
        .filter_map(|mut series| {
            series.points.retain_mut(|(_, value)| {
                let (left, right) = if scalar_left {
                    (scalar, *value)
                } else {
                    (*value, scalar)
                };
                match merge(binary.op, binary.return_bool, left, right, *value) {
                    Some(result) => {
                        *value = result;
                        true
                    }
                    None => false,
                }
            });
            (!series.points.is_empty()).then_some(series)
        })
        .collect()
}

/// Small ids for match groups, so that steps compare integers, not label sets.
#[derive(Default)]
struct Groups {
    ids: HashMap<Labels, u32>,
}

impl Groups {
    /// The id of each series' match group.
    fn of(&mut self, matching: &VectorMatching, series: &[StepSeries]) -> Vec<u32> {
        series
            .iter()
            .map(|s| {
                let next = self.ids.len() as u32;
                *self
                    .ids
                    .entry(matching.signature(&s.labels))
                    .or_insert(next)
            })
            .collect()
    }
}

/// `(series index, value)` of every point, by step.
fn by_step(series: &[StepSeries], step_count: usize) -> Vec<Vec<(usize, f64)>> {
    let mut steps = vec![Vec::new(); step_count];
    for (index, s) in series.iter().enumerate() {
        for &(step, value) in &s.points {
            if let Some(at) = steps.get_mut(step) {
                at.push((index, value));
            }
        }
    }
    steps
}

/// `and`, `or`, `unless` between two vectors.
pub(super) fn set_operation(
    op: BinaryOp,
    matching: &VectorMatching,
    left: Vec<StepSeries>,
    right: Vec<StepSeries>,
) -> Vec<StepSeries> {
    let mut groups = Groups::default();
    let left_groups = groups.of(matching, &left);
    let right_groups = groups.of(matching, &right);
    // The (match group, step) pairs a side has a point for.
    let present = |series: &[StepSeries], ids: &[u32]| -> HashSet<(u32, usize)> {
        series
            .iter()
            .zip(ids)
            .flat_map(|(s, &id)| s.points.iter().map(move |&(step, _)| (id, step)))
            .collect()
    };
    let keep_matching =
        |series: Vec<StepSeries>, ids: &[u32], other: &HashSet<(u32, usize)>, wanted: bool| {
            series
                .into_iter()
                .zip(ids)
                .filter_map(|(mut s, &id)| {
                    s.points
                        .retain(|&(step, _)| other.contains(&(id, step)) == wanted);
                    (!s.points.is_empty()).then_some(s)
                })
                .collect::<Vec<_>>()
        };
    match op {
        BinaryOp::And => {
            let right_present = present(&right, &right_groups);
            keep_matching(left, &left_groups, &right_present, true)
        }
        BinaryOp::Unless => {
            let right_present = present(&right, &right_groups);
            keep_matching(left, &left_groups, &right_present, false)
        }
        _ => {
            let left_present = present(&left, &left_groups);
            let added = keep_matching(right, &right_groups, &left_present, false);
            // A right series may carry the labels of a left one (at steps where that one had
            // no point): they are one series.
            let mut index: HashMap<Labels, usize> = HashMap::new();
            let mut out: Vec<StepSeries> = Vec::with_capacity(left.len() + added.len());
            for series in left.into_iter().chain(added) {
                match index.get(&series.labels) {
                    Some(&at) => {
                        out[at].points.extend(series.points);
                        out[at].points.sort_by_key(|&(step, _)| step);
                    }
                    None => {
                        index.insert(series.labels.clone(), out.len());
                        out.push(series);
                    }
                }
            }
            out
        }
    }
}

/// An arithmetic or comparison operator between two vectors of `step_count` steps;
/// `check_cancel` is polled at every step.
pub(super) fn vector_operation(
    binary: &BinaryExpr,
    left: Vec<StepSeries>,
    right: Vec<StepSeries>,
    step_count: usize,
    check_cancel: &dyn Fn() -> Result<(), EvalError>,
) -> Result<Vec<StepSeries>, EvalError> {
    let matching = &binary.matching;
    let swapped = matching.card == Cardinality::OneToMany;
    let (many, one) = if swapped {
        (right, left)
    } else {
        (left, right)
    };
    let mut groups = Groups::default();
    let many_groups = groups.of(matching, &many);
    let one_groups = groups.of(matching, &one);
    let many_by_step = by_step(&many, step_count);
    let one_by_step = by_step(&one, step_count);

    let mut out: Vec<StepSeries> = Vec::new();
    let mut out_index: HashMap<Labels, usize> = HashMap::new();
    // The result series of a (many, one) pair, computed once for all steps.
    let mut pairs: HashMap<(usize, usize), usize> = HashMap::new();
    // Per step: the "one" series of each group, the groups matched so far (one-to-one) and
    // the result series written.
    let mut one_at: HashMap<u32, (usize, f64)> = HashMap::new();
    let mut matched: HashSet<u32> = HashSet::new();
    let mut written: HashSet<usize> = HashSet::new();
    for (step, (many_points, one_points)) in many_by_step.iter().zip(&one_by_step).enumerate() {
        check_cancel()?;
        one_at.clear();
        matched.clear();
        written.clear();
        for &(j, value) in one_points {
            if let Some(&(other, _)) = one_at.get(&one_groups[j]) {
                return Err(EvalError::VectorMatching(format!(
                    "found duplicate series for the match group {} on the {} hand-side of the \
                     operation: [{}, {}];many-to-many matching not allowed: matching labels \
                     must be unique on one side",
                    matching.signature(&one[j].labels).to_canonical(),
                    if swapped { "left" } else { "right" },
                    one[j].labels.to_canonical(),
                    one[other].labels.to_canonical(),
                )));
            }
            one_at.insert(one_groups[j], (j, value));
        }
        for &(i, many_value) in many_points {
            let group = many_groups[i];
            let Some(&(j, one_value)) = one_at.get(&group) else {
                continue;
            };
            if matching.card == Cardinality::OneToOne && !matched.insert(group) {
                return Err(EvalError::VectorMatching(
                    "multiple matches for labels: many-to-one matching must be explicit \
                     (group_left/group_right)"
                        .to_string(),
                ));
            }
            let at = *pairs.entry((i, j)).or_insert_with(|| {
                let labels = matching.result_labels(&many[i].labels, &one[j].labels);
                *out_index.entry(labels.clone()).or_insert_with(|| {
                    out.push(StepSeries {
                        labels,
                        points: Vec::new(),
                    });
                    out.len() - 1
                })
            });
            if !written.insert(at) {
                return Err(EvalError::VectorMatching(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                        .to_string(),
                ));
            }
            let (l, r) = if swapped {
                (one_value, many_value)
            } else {
                (many_value, one_value)
            };
            if let Some(value) = merge(binary.op, binary.return_bool, l, r, l) {
                out[at].points.push((step, value));
            }
        }
    }
    out.retain(|s| !s.points.is_empty());
    Ok(out)
}
