//! Quantiles: `quantile()`/`quantile_over_time()` over plain values, and
//! `histogram_quantile()`/`histogram_fraction()` over classic `le` buckets, as Prometheus's
//! `quantile.go` computes them.

/// One classic bucket: cumulative count of observations `<= upper`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    pub upper: f64,
    pub count: f64,
}

/// Relative difference below which neighbouring bucket counts are treated as equal (float
/// noise from rate and sum), as Prometheus's `smallDeltaTolerance`.
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// Prometheus's `almost.Equal`: relative comparison, NaN equals NaN.
pub(crate) fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE; // 2.2250738585072014e-308
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

fn sort_and_coalesce(buckets: &mut Vec<Bucket>) {
    buckets.sort_by(|a, b| {
        a.upper
            .partial_cmp(&b.upper)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.drain(..) {
        match out.last_mut() {
            Some(last) if last.upper == b.upper => last.count += b.count,
            _ => out.push(b),
        }
    }
    *buckets = out;
}

/// What `bucket_quantile` had to repair in its input.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct BucketFixes {
    pub forced_monotonic: bool,
    pub fixed_precision: bool,
}

/// Removes decreases between successive cumulative counts (after ignoring differences that
/// are only float noise), Prometheus's `ensureMonotonicAndIgnoreSmallDeltas`.
fn ensure_monotonic(buckets: &mut [Bucket]) -> BucketFixes {
    let mut fixes = BucketFixes::default();
    let Some(first) = buckets.first() else {
        return fixes;
    };
    let mut prev = first.count;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.count;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, SMALL_DELTA_TOLERANCE) {
            b.count = prev;
            fixes.fixed_precision = true;
            continue;
        }
        if curr < prev {
            b.count = prev;
            fixes.forced_monotonic = true;
            continue;
        }
        prev = curr;
    }
    fixes
}

/// The φ-quantile of classic buckets (Prometheus's `BucketQuantile`): linear interpolation
/// within the bucket holding the rank, a lower bound of 0 for the first bucket when its upper
/// bound is positive, the second-highest bound when the rank falls in the `+Inf` bucket.
pub(crate) fn bucket_quantile(q: f64, mut buckets: Vec<Bucket>) -> (f64, BucketFixes) {
    let none = BucketFixes::default();
    if q.is_nan() {
        return (f64::NAN, none);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, none);
    }
    if q > 1.0 {
        return (f64::INFINITY, none);
    }
    sort_and_coalesce(&mut buckets);
    match buckets.last() {
        Some(b) if b.upper == f64::INFINITY => {}
        _ => return (f64::NAN, none),
    }
    let fixes = ensure_monotonic(&mut buckets);
    if buckets.len() < 2 {
        return (f64::NAN, none);
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return (f64::NAN, none);
    }
    let mut rank = q * observations;
    let n = buckets.len() - 1;
    let b = buckets[..n].partition_point(|x| x.count < rank);
    if b == n {
        return (buckets[n - 1].upper, fixes);
    }
    if b == 0 && buckets[0].upper <= 0.0 {
        return (buckets[0].upper, fixes);
    }
    let mut start = 0.0;
    let end = buckets[b].upper;
    let mut count = buckets[b].count;
    if b > 0 {
        start = buckets[b - 1].upper;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    (start + (end - start) * (rank / count), fixes)
}

/// The fraction of observations in `(lower, upper]` (Prometheus's `BucketFraction`):
/// linear interpolation inside finite buckets; a boundary inside an infinite bucket takes
/// none of that bucket's observations.
pub(crate) fn bucket_fraction(lower: f64, upper: f64, mut buckets: Vec<Bucket>) -> f64 {
    sort_and_coalesce(&mut buckets);
    match buckets.last() {
        Some(b) if b.upper == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    ensure_monotonic(&mut buckets);
    let total = buckets[buckets.len() - 1].count;
    if total == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for (i, b) in buckets.iter().enumerate() {
        let lo = if i == 0 {
            if b.upper > 0.0 {
                0.0
            } else {
                f64::NEG_INFINITY
            }
        } else {
            buckets[i - 1].upper
        };
        let hi = b.upper;
        let count = b.count - rank;
        let interpolate = |v: f64| {
            if lo == f64::NEG_INFINITY {
                rank + count
            } else if hi == f64::INFINITY {
                rank
            } else {
                rank + count * (v - lo) / (hi - lo)
            }
        };
        if !lower_set && lo >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lo >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lo < lower && hi > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lo < upper && hi > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = b.count;
    }
    if !lower_set || lower_rank > total {
        lower_rank = total;
    }
    if !upper_set || upper_rank > total {
        upper_rank = total;
    }
    (upper_rank - lower_rank) / total
}

/// Go's sort order for `quantile`: ascending, NaN first.
fn less_nan_first(a: f64, b: f64) -> bool {
    a.is_nan() || a < b
}

/// The φ-quantile of values (Prometheus's `quantile`): weighted average of the two nearest
/// ranks. Sorts `values`.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    crate::aggregate::go_sort(values, |a, b| less_nan_first(*a, *b));
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(upper: f64, count: f64) -> Bucket {
        Bucket { upper, count }
    }

    #[test]
    fn interpolates_within_bucket() {
        let bs = vec![
            b(0.1, 50.0),
            b(0.2, 70.0),
            b(1.0, 110.0),
            b(f64::INFINITY, 120.0),
        ];
        let (q, fixes) = bucket_quantile(0.5, bs.clone());
        assert!((q - 0.1 * 10.0 / 20.0 - 0.1).abs() < 1e-12, "{q}");
        assert_eq!(fixes, BucketFixes::default());
        // Rank in the +Inf bucket: the second-highest bound.
        assert_eq!(bucket_quantile(0.99, bs).0, 1.0);
    }

    #[test]
    fn forces_monotonicity_and_normalises_bounds() {
        // Unsorted input with a decrease: sorted, then the envelope is taken.
        let bs = vec![b(f64::INFINITY, 10.0), b(1.0, 8.0), b(0.5, 9.0)];
        let (q, fixes) = bucket_quantile(0.5, bs);
        assert!(fixes.forced_monotonic);
        assert!((q - 0.5 * 5.0 / 9.0).abs() < 1e-12, "{q}");
        // Same upper bound written twice ("0.2" and "2e-1") is one bucket.
        let bs = vec![b(0.2, 1.0), b(0.2, 1.0), b(f64::INFINITY, 4.0)];
        assert_eq!(bucket_quantile(1.0, bs).0, 0.2);
    }

    #[test]
    fn special_cases() {
        assert!(
            bucket_quantile(0.5, vec![b(1.0, 1.0)]).0.is_nan(),
            "no +Inf bucket"
        );
        assert!(
            bucket_quantile(0.5, vec![b(f64::INFINITY, 0.0), b(1.0, 0.0)])
                .0
                .is_nan()
        );
        assert_eq!(bucket_quantile(-1.0, vec![]).0, f64::NEG_INFINITY);
        assert_eq!(
            bucket_quantile(0.1, vec![b(-1.0, 5.0), b(f64::INFINITY, 9.0)]).0,
            -1.0
        );
    }

    #[test]
    fn fraction_follows_bucket_boundaries() {
        let bs = vec![
            b(1.0, 1.0),
            b(2.0, 3.0),
            b(3.0, 6.0),
            b(f64::INFINITY, 100.0),
        ];
        assert!((bucket_fraction(0.0, 1.5, bs.clone()) - 0.02).abs() < 1e-12);
        assert!((bucket_fraction(2.0, 5.0, bs.clone()) - 0.03).abs() < 1e-12);
        assert!((bucket_fraction(400.0, f64::INFINITY, bs.clone()) - 0.94).abs() < 1e-12);
        assert_eq!(bucket_fraction(3.0, 2.0, bs), 0.0);
        let neg = vec![
            b(-3.0, 10.0),
            b(-2.0, 12.0),
            b(-1.0, 15.0),
            b(f64::INFINITY, 100.0),
        ];
        assert!((bucket_fraction(-4.0, -2.0, neg.clone()) - 0.02).abs() < 1e-12);
        assert!((bucket_fraction(f64::NEG_INFINITY, -1.5, neg) - 0.135).abs() < 1e-12);
    }

    #[test]
    fn value_quantile_interpolates() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(0.5, &mut v), 2.5);
        assert!(quantile(0.5, &mut []).is_nan());
    }
}
