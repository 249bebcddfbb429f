//! Native histograms as PromQL sees them (Prometheus's `FloatHistogram`): exponential bucket
//! schemas −4…8 with a zero bucket, and custom bucket bounds (schema −53, "NHCB").
//!
//! Buckets are kept as sorted `(index, count)` lists without zero counts, which is what
//! Prometheus's `Compact(0)` would leave; every operation PromQL needs (add, subtract,
//! scale, reset detection, quantiles, fractions) is defined on that form.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::functions::go_fmt_g;

/// The schema number of histograms with custom bucket bounds.
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// What is known about a counter reset between this histogram and the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CounterResetHint {
    #[default]
    Unknown,
    CounterReset,
    NotCounterReset,
    Gauge,
}

/// A native histogram with float counts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FloatHistogram {
    pub counter_reset_hint: CounterResetHint,
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: f64,
    pub count: f64,
    pub sum: f64,
    /// Positive buckets: `(index, count)`, sorted by index, no zero counts.
    pub positive: Vec<(i32, f64)>,
    /// Negative buckets, same form (index grows away from zero).
    pub negative: Vec<(i32, f64)>,
    /// Upper bounds of the custom buckets (schema −53), strictly increasing.
    pub custom_values: Arc<[f64]>,
}

/// One bucket with its bounds, as Prometheus's `Bucket[float64]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub lower: f64,
    pub upper: f64,
    pub lower_inclusive: bool,
    pub upper_inclusive: bool,
    pub count: f64,
    pub index: i32,
}

impl std::fmt::Display for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{},{}{}:{}",
            if self.lower_inclusive { '[' } else { '(' },
            go_fmt_g(self.lower),
            go_fmt_g(self.upper),
            if self.upper_inclusive { ']' } else { ')' },
            go_fmt_g(self.count)
        )
    }
}

/// Why two histograms cannot be combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistogramError {
    /// One has exponential buckets, the other custom buckets.
    IncompatibleSchema,
}

fn ldexp(x: f64, exp: i64) -> f64 {
    let mut x = x;
    let mut e = exp;
    while e > 1000 {
        x *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        x *= 2f64.powi(-1000);
        e += 1000;
    }
    x * 2f64.powi(e as i32)
}

/// The upper bound of exponential bucket `idx` in `schema` (Prometheus's
/// `getBoundExponential`).
pub(crate) fn exp_bound(idx: i32, schema: i32) -> f64 {
    if schema < 0 {
        let exp = (idx as i64) << (-schema);
        if exp == 1024 {
            return f64::MAX;
        }
        if exp > 1024 {
            return f64::INFINITY;
        }
        return ldexp(1.0, exp);
    }
    let frac_idx = idx & ((1 << schema) - 1);
    let frac = (frac_idx as f64 / (1i64 << schema) as f64).exp2() / 2.0;
    let exp = ((idx as i64) >> schema) + 1;
    if frac == 0.5 && exp == 1025 {
        return f64::MAX;
    }
    if exp > 1024 {
        return f64::INFINITY;
    }
    ldexp(frac, exp)
}

/// The index of `idx` in a lower-resolution schema.
fn target_idx(idx: i32, origin: i32, target: i32) -> i32 {
    ((idx - 1) >> (origin - target)) + 1
}

/// Adds `b` (times `sign`) into `a`, keeping both sorted and dropping zero counts.
fn merge(a: &[(i32, f64)], b: &[(i32, f64)], sign: f64) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let take_a = j >= b.len() || (i < a.len() && a[i].0 < b[j].0);
        let take_b = i >= a.len() || (j < b.len() && b[j].0 < a[i].0);
        let (idx, v) = if take_a {
            i += 1;
            a[i - 1]
        } else if take_b {
            j += 1;
            (b[j - 1].0, sign * b[j - 1].1)
        } else {
            i += 1;
            j += 1;
            (a[i - 1].0, a[i - 1].1 + sign * b[j - 1].1)
        };
        if v != 0.0 {
            out.push((idx, v));
        }
    }
    out
}

/// Merges buckets into a lower-resolution schema.
fn reduce(buckets: &[(i32, f64)], from: i32, to: i32) -> Vec<(i32, f64)> {
    if from == to {
        return buckets.to_vec();
    }
    let mut out: Vec<(i32, f64)> = Vec::with_capacity(buckets.len());
    for &(idx, c) in buckets {
        let t = target_idx(idx, from, to);
        match out.last_mut() {
            Some(last) if last.0 == t => last.1 += c,
            _ => out.push((t, c)),
        }
    }
    out.retain(|(_, c)| *c != 0.0);
    out
}

impl FloatHistogram {
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// Whether the schema is one Prometheus defines: exponential −4…8 or custom buckets.
    pub fn valid_schema(&self) -> bool {
        (-4..=8).contains(&self.schema) || self.uses_custom_buckets()
    }

    /// Scales all counts and the sum.
    pub fn mul(&mut self, factor: f64) -> &mut Self {
        self.zero_count *= factor;
        self.count *= factor;
        self.sum *= factor;
        for b in self.positive.iter_mut().chain(self.negative.iter_mut()) {
            b.1 *= factor;
        }
        self.drop_zero_buckets();
        self
    }

    /// Divides all counts and the sum; division by zero removes every bucket.
    pub fn div(&mut self, divisor: f64) -> &mut Self {
        self.zero_count /= divisor;
        self.count /= divisor;
        self.sum /= divisor;
        if divisor == 0.0 {
            self.positive.clear();
            self.negative.clear();
            return self;
        }
        for b in self.positive.iter_mut().chain(self.negative.iter_mut()) {
            b.1 /= divisor;
        }
        self
    }

    fn drop_zero_buckets(&mut self) {
        self.positive.retain(|(_, c)| *c != 0.0);
        self.negative.retain(|(_, c)| *c != 0.0);
    }

    /// A copy in a lower-resolution exponential schema.
    pub fn to_schema(&self, target: i32) -> FloatHistogram {
        if target == self.schema || self.uses_custom_buckets() {
            return self.clone();
        }
        let mut c = self.clone();
        c.positive = reduce(&self.positive, self.schema, target);
        c.negative = reduce(&self.negative, self.schema, target);
        c.schema = target;
        c
    }

    /// The bounds of positive bucket `idx` (for custom buckets: between custom values).
    fn positive_bounds(&self, idx: i32) -> (f64, f64) {
        if self.uses_custom_buckets() {
            let cv = &self.custom_values;
            let lower = if idx <= 0 {
                f64::NEG_INFINITY
            } else {
                cv.get(idx as usize - 1).copied().unwrap_or(f64::INFINITY)
            };
            let upper = cv.get(idx as usize).copied().unwrap_or(f64::INFINITY);
            (lower, upper)
        } else {
            (exp_bound(idx - 1, self.schema), exp_bound(idx, self.schema))
        }
    }

    /// Positive buckets, ascending.
    pub fn positive_buckets(&self) -> Vec<Bucket> {
        self.positive
            .iter()
            .map(|&(idx, count)| {
                let (lower, upper) = self.positive_bounds(idx);
                Bucket {
                    lower,
                    upper,
                    lower_inclusive: self.uses_custom_buckets() && lower == f64::NEG_INFINITY,
                    upper_inclusive: true,
                    count,
                    index: idx,
                }
            })
            .collect()
    }

    /// Negative buckets, from zero downwards.
    pub fn negative_buckets(&self) -> Vec<Bucket> {
        self.negative
            .iter()
            .map(|&(idx, count)| Bucket {
                lower: -exp_bound(idx, self.schema),
                upper: -exp_bound(idx - 1, self.schema),
                lower_inclusive: true,
                upper_inclusive: false,
                count,
                index: idx,
            })
            .collect()
    }

    pub fn zero_bucket(&self) -> Bucket {
        Bucket {
            lower: -self.zero_threshold,
            upper: self.zero_threshold,
            lower_inclusive: true,
            upper_inclusive: true,
            count: self.zero_count,
            index: 0,
        }
    }

    /// All buckets in ascending order of value, with the buckets next to the zero bucket
    /// clipped to it (Prometheus's `AllBucketIterator`).
    pub fn all_buckets(&self) -> Vec<Bucket> {
        let zt = self.zero_threshold;
        let clip = |mut b: Bucket| {
            if b.upper < 0.0 && b.upper > -zt {
                b.upper = -zt;
            }
            if b.lower > 0.0 && b.lower < zt {
                b.lower = zt;
            }
            b
        };
        let mut out: Vec<Bucket> = self
            .negative_buckets()
            .into_iter()
            .rev()
            .map(clip)
            .collect();
        if self.zero_count > 0.0 {
            out.push(self.zero_bucket());
        }
        out.extend(self.positive_buckets().into_iter().map(clip));
        out
    }

    /// The zero count this histogram would have with a larger zero threshold, and the
    /// threshold actually needed so it does not cut a populated bucket.
    fn zero_count_for_larger_threshold(&self, mut larger: f64) -> (f64, f64) {
        if larger == self.zero_threshold {
            return (self.zero_count, larger);
        }
        'outer: loop {
            let mut count = self.zero_count;
            for b in self.positive_buckets() {
                if b.lower >= larger {
                    break;
                }
                count += b.count;
                if b.upper > larger {
                    if b.count != 0.0 {
                        larger = b.upper;
                    }
                    break;
                }
            }
            for b in self.negative_buckets() {
                if b.upper <= -larger {
                    break;
                }
                count += b.count;
                if b.lower < -larger {
                    if b.count != 0.0 {
                        larger = -b.lower;
                        continue 'outer;
                    }
                    break;
                }
            }
            return (count, larger);
        }
    }

    /// Removes the buckets inside the zero bucket (their counts are already in it).
    fn trim_buckets_in_zero_bucket(&mut self) {
        let zt = self.zero_threshold;
        let schema = self.schema;
        self.positive
            .retain(|&(idx, _)| exp_bound(idx - 1, schema) >= zt);
        self.negative
            .retain(|&(idx, _)| -exp_bound(idx - 1, schema) <= -zt);
    }

    /// Makes both zero buckets equal; returns the other's zero count at that threshold.
    fn reconcile_zero_buckets(&mut self, other: &FloatHistogram) -> f64 {
        let mut other_count = other.zero_count;
        let mut other_threshold = other.zero_threshold;
        while other_threshold != self.zero_threshold {
            if self.zero_threshold > other_threshold {
                (other_count, other_threshold) =
                    other.zero_count_for_larger_threshold(self.zero_threshold);
            }
            if other_threshold > self.zero_threshold {
                (self.zero_count, self.zero_threshold) =
                    self.zero_count_for_larger_threshold(other_threshold);
                self.trim_buckets_in_zero_bucket();
            }
        }
        other_count
    }

    /// Buckets of `b` whose absolute upper bound is above `threshold` (the others are in the
    /// zero bucket).
    fn above_threshold(b: &[(i32, f64)], schema: i32, threshold: f64) -> Vec<(i32, f64)> {
        b.iter()
            .copied()
            .filter(|&(idx, _)| exp_bound(idx, schema) > threshold)
            .collect()
    }

    /// Re-buckets custom-bucket histograms with different bounds onto their common bounds.
    /// Returns whether anything had to be reconciled.
    fn reconcile_custom(&mut self, other: &FloatHistogram) -> (bool, FloatHistogram) {
        if self.custom_values == other.custom_values {
            return (false, other.clone());
        }
        let common: Vec<f64> = self
            .custom_values
            .iter()
            .copied()
            .filter(|v| other.custom_values.contains(v))
            .collect();
        let rebucket = |h: &FloatHistogram| -> Vec<(i32, f64)> {
            let mut out: Vec<(i32, f64)> = Vec::new();
            for &(idx, c) in &h.positive {
                let upper = h
                    .custom_values
                    .get(idx as usize)
                    .copied()
                    .unwrap_or(f64::INFINITY);
                let t = common.partition_point(|b| *b < upper) as i32;
                match out.last_mut() {
                    Some(last) if last.0 == t => last.1 += c,
                    _ => out.push((t, c)),
                }
            }
            out
        };
        let mut o = other.clone();
        o.positive = rebucket(other);
        o.custom_values = common.clone().into();
        self.positive = rebucket(self);
        self.custom_values = common.into();
        (true, o)
    }

    fn combine(&mut self, other: &FloatHistogram, sign: f64) -> Result<bool, HistogramError> {
        if self.uses_custom_buckets() != other.uses_custom_buckets() {
            return Err(HistogramError::IncompatibleSchema);
        }
        if self.uses_custom_buckets() {
            let (reconciled, o) = self.reconcile_custom(other);
            self.count += sign * o.count;
            self.sum += sign * o.sum;
            self.positive = merge(&self.positive, &o.positive, sign);
            return Ok(reconciled);
        }
        let other_zero = self.reconcile_zero_buckets(other);
        self.zero_count += sign * other_zero;
        self.count += sign * other.count;
        self.sum += sign * other.sum;
        let schema = self.schema.min(other.schema);
        let mine_p = reduce(&self.positive, self.schema, schema);
        let mine_n = reduce(&self.negative, self.schema, schema);
        let zt = self.zero_threshold;
        let theirs_p =
            Self::above_threshold(&reduce(&other.positive, other.schema, schema), schema, zt);
        let theirs_n =
            Self::above_threshold(&reduce(&other.negative, other.schema, schema), schema, zt);
        self.schema = schema;
        self.positive = merge(&mine_p, &theirs_p, sign);
        self.negative = merge(&mine_n, &theirs_n, sign);
        Ok(false)
    }

    /// Adds `other`; returns whether custom bounds had to be reconciled. Combines counter
    /// reset hints as Prometheus does.
    pub fn add(&mut self, other: &FloatHistogram) -> Result<bool, HistogramError> {
        use CounterResetHint::*;
        let hint = match (self.counter_reset_hint, other.counter_reset_hint) {
            (a, b) if a == b => a,
            (Gauge, _) | (_, Gauge) => Gauge,
            _ => Unknown,
        };
        let r = self.combine(other, 1.0)?;
        self.counter_reset_hint = hint;
        Ok(r)
    }

    /// Subtracts `other`; returns whether custom bounds had to be reconciled.
    pub fn sub(&mut self, other: &FloatHistogram) -> Result<bool, HistogramError> {
        self.combine(other, -1.0)
    }

    /// Whether the two histograms are the same, bit for bit (Prometheus's `Equals`).
    pub fn equals(&self, o: &FloatHistogram) -> bool {
        let bits = |a: f64, b: f64| a.to_bits() == b.to_bits();
        self.schema == o.schema
            && bits(self.count, o.count)
            && bits(self.sum, o.sum)
            && (!self.uses_custom_buckets() || self.custom_values == o.custom_values)
            && self.zero_threshold == o.zero_threshold
            && bits(self.zero_count, o.zero_count)
            && self.positive.len() == o.positive.len()
            && self.negative.len() == o.negative.len()
            && self
                .positive
                .iter()
                .zip(&o.positive)
                .chain(self.negative.iter().zip(&o.negative))
                .all(|(a, b)| a.0 == b.0 && bits(a.1, b.1))
    }

    /// Whether `self` follows `prev` only through a counter reset (Prometheus's
    /// `DetectReset`).
    pub fn detect_reset(&self, prev: &FloatHistogram) -> bool {
        match self.counter_reset_hint {
            CounterResetHint::CounterReset => return true,
            CounterResetHint::NotCounterReset => return false,
            _ => {}
        }
        if self.count < prev.count {
            return true;
        }
        if self.uses_custom_buckets() != prev.uses_custom_buckets() {
            return true;
        }
        if self.uses_custom_buckets() && self.custom_values != prev.custom_values {
            // Compare on the bounds both have.
            let mut cur = self.clone();
            let (_, prev) = cur.reconcile_custom(prev);
            return prev.positive.iter().any(|&(idx, c)| {
                cur.positive
                    .iter()
                    .find(|b| b.0 == idx)
                    .map_or(0.0, |b| b.1)
                    < c
            });
        }
        if self.schema > prev.schema {
            return true;
        }
        if self.zero_threshold < prev.zero_threshold {
            return true;
        }
        let (prev_zero, threshold) = prev.zero_count_for_larger_threshold(self.zero_threshold);
        if threshold != self.zero_threshold {
            return true;
        }
        if self.zero_count < prev_zero {
            return true;
        }
        let zt = self.zero_threshold;
        let cur_p = Self::above_threshold(&self.positive, self.schema, zt);
        let cur_n = Self::above_threshold(&self.negative, self.schema, zt);
        let prev_p = Self::above_threshold(
            &reduce(&prev.positive, prev.schema, self.schema),
            self.schema,
            zt,
        );
        let prev_n = Self::above_threshold(
            &reduce(&prev.negative, prev.schema, self.schema),
            self.schema,
            zt,
        );
        let decreased = |cur: &[(i32, f64)], prev: &[(i32, f64)]| {
            prev.iter().any(|&(idx, c)| {
                let now = cur.iter().find(|b| b.0 == idx).map_or(0.0, |b| b.1);
                now < c
            })
        };
        decreased(&cur_p, &prev_p) || decreased(&cur_n, &prev_n)
    }

    /// Prometheus's `String()`, the label value `count_values` uses for histograms.
    pub fn prom_string(&self) -> String {
        let mut s = format!(
            "{{count:{}, sum:{}",
            go_fmt_g(self.count),
            go_fmt_g(self.sum)
        );
        for b in self.negative_buckets().iter().rev() {
            let _ = write!(s, ", {b}");
        }
        if self.zero_count != 0.0 {
            let _ = write!(s, ", {}", self.zero_bucket());
        }
        for b in self.positive_buckets() {
            let _ = write!(s, ", {b}");
        }
        s.push('}');
        s
    }

    /// The histogram in the test scripts' `{{…}}` notation.
    pub fn test_expression(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if self.schema != 0 {
            parts.push(format!("schema:{}", self.schema));
        }
        if self.count != 0.0 {
            parts.push(format!("count:{}", go_fmt_g(self.count)));
        }
        if self.sum != 0.0 {
            parts.push(format!("sum:{}", go_fmt_g(self.sum)));
        }
        if self.zero_count != 0.0 {
            parts.push(format!("z_bucket:{}", go_fmt_g(self.zero_count)));
        }
        if self.zero_threshold != 0.0 {
            parts.push(format!("z_bucket_w:{}", go_fmt_g(self.zero_threshold)));
        }
        if self.uses_custom_buckets() {
            let cv: Vec<String> = self.custom_values.iter().map(|v| go_fmt_g(*v)).collect();
            parts.push(format!("custom_values:[{}]", cv.join(" ")));
        }
        match self.counter_reset_hint {
            CounterResetHint::Unknown => {}
            CounterResetHint::CounterReset => parts.push("counter_reset_hint:reset".into()),
            CounterResetHint::NotCounterReset => parts.push("counter_reset_hint:not_reset".into()),
            CounterResetHint::Gauge => parts.push("counter_reset_hint:gauge".into()),
        }
        let mut side = |name: &str, offset: &str, b: &[(i32, f64)]| {
            if let (Some(first), Some(last)) = (b.first(), b.last()) {
                if first.0 != 0 {
                    parts.push(format!("{offset}:{}", first.0));
                }
                let vals: Vec<String> = (first.0..=last.0)
                    .map(|i| go_fmt_g(b.iter().find(|x| x.0 == i).map_or(0.0, |x| x.1)))
                    .collect();
                parts.push(format!("{name}:[{}]", vals.join(" ")));
            }
        };
        side("buckets", "offset", &self.positive);
        side("n_buckets", "n_offset", &self.negative);
        format!("{{{{{}}}}}", parts.join(" "))
    }

    /// The φ-quantile (Prometheus's `HistogramQuantile`).
    pub fn quantile(&self, q: f64) -> f64 {
        if q < 0.0 {
            return f64::NEG_INFINITY;
        }
        if q > 1.0 {
            return f64::INFINITY;
        }
        if self.count == 0.0 || q.is_nan() {
            return f64::NAN;
        }
        let forward = self.sum.is_nan() || q < 0.5;
        let buckets = self.all_buckets();
        let (mut rank, iter): (f64, Box<dyn Iterator<Item = &Bucket>>) = if forward {
            (q * self.count, Box::new(buckets.iter()))
        } else {
            ((1.0 - q) * self.count, Box::new(buckets.iter().rev()))
        };
        let mut bucket = Bucket {
            lower: 0.0,
            upper: 0.0,
            lower_inclusive: false,
            upper_inclusive: false,
            count: 0.0,
            index: 0,
        };
        let mut count = 0.0;
        for b in iter {
            if b.count == 0.0 {
                continue;
            }
            bucket = *b;
            count += b.count;
            if count >= rank {
                break;
            }
        }
        if !self.uses_custom_buckets() && bucket.lower < 0.0 && bucket.upper > 0.0 {
            if self.negative.is_empty() && !self.positive.is_empty() {
                bucket.lower = 0.0;
            } else if self.positive.is_empty() && !self.negative.is_empty() {
                bucket.upper = 0.0;
            }
        } else if self.uses_custom_buckets() {
            if bucket.lower == f64::NEG_INFINITY {
                if bucket.upper <= 0.0 {
                    return bucket.upper;
                }
                bucket.lower = 0.0;
            } else if bucket.upper == f64::INFINITY {
                return bucket.lower;
            }
        }
        if count > self.count {
            count = self.count;
        }
        if count < rank {
            return bucket.upper;
        }
        if forward {
            rank -= count - bucket.count;
        } else {
            rank = count - rank;
        }
        let fraction = rank / bucket.count;
        if self.uses_custom_buckets() || (bucket.lower <= 0.0 && bucket.upper >= 0.0) {
            return bucket.lower + (bucket.upper - bucket.lower) * fraction;
        }
        let log_lower = bucket.lower.abs().log2();
        let log_upper = bucket.upper.abs().log2();
        if bucket.lower > 0.0 {
            return (log_lower + (log_upper - log_lower) * fraction).exp2();
        }
        -(log_upper + (log_lower - log_upper) * (1.0 - fraction)).exp2()
    }

    /// The cumulative classic buckets of a custom-bucket histogram.
    pub(crate) fn as_classic_buckets(&self) -> Vec<crate::quantile::Bucket> {
        let mut out = Vec::with_capacity(self.custom_values.len() + 1);
        let mut cum = 0.0;
        let mut it = self.positive.iter().peekable();
        for i in 0..=self.custom_values.len() as i32 {
            while let Some(&&(idx, c)) = it.peek() {
                if idx > i {
                    break;
                }
                if idx == i {
                    cum += c;
                }
                it.next();
            }
            let upper = self
                .custom_values
                .get(i as usize)
                .copied()
                .unwrap_or(f64::INFINITY);
            out.push(crate::quantile::Bucket { upper, count: cum });
        }
        out
    }

    /// The fraction of observations between `lower` and `upper` (Prometheus's
    /// `HistogramFraction`).
    pub fn fraction(&self, lower: f64, upper: f64) -> f64 {
        if self.count == 0.0 || lower.is_nan() || upper.is_nan() {
            return f64::NAN;
        }
        if lower >= upper {
            return 0.0;
        }
        if self.uses_custom_buckets() {
            let f = crate::quantile::bucket_fraction(lower, upper, self.as_classic_buckets());
            let total = self.as_classic_buckets().last().map_or(0.0, |b| b.count);
            return if total == 0.0 {
                f64::NAN
            } else {
                f * total / self.count
            };
        }
        let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
        let (mut lower_set, mut upper_set) = (false, false);
        for mut b in self.all_buckets() {
            let mut zero_bucket = false;
            if b.lower <= 0.0 && b.upper >= 0.0 {
                zero_bucket = true;
                if self.negative.is_empty() && !self.positive.is_empty() {
                    b.lower = 0.0;
                } else if self.positive.is_empty() && !self.negative.is_empty() {
                    b.upper = 0.0;
                }
            }
            let interpolate = |v: f64| -> f64 {
                if zero_bucket {
                    return rank + b.count * (v - b.lower) / (b.upper - b.lower);
                }
                let log_lower = b.lower.abs().log2();
                let log_upper = b.upper.abs().log2();
                let log_v = v.abs().log2();
                let fraction = if v > 0.0 {
                    (log_v - log_lower) / (log_upper - log_lower)
                } else {
                    1.0 - ((log_v - log_upper) / (log_lower - log_upper))
                };
                rank + b.count * fraction
            };
            if !lower_set && b.lower >= lower {
                lower_rank = rank;
                lower_set = true;
            }
            if !upper_set && b.lower >= upper {
                upper_rank = rank;
                upper_set = true;
            }
            if lower_set && upper_set {
                break;
            }
            if !lower_set && b.lower < lower && b.upper > lower {
                lower_rank = interpolate(lower);
                lower_set = true;
            }
            if !upper_set && b.lower < upper && b.upper > upper {
                upper_rank = interpolate(upper);
                upper_set = true;
            }
            if lower_set && upper_set {
                break;
            }
            rank += b.count;
        }
        if !lower_set || lower_rank > self.count {
            lower_rank = self.count;
        }
        if !upper_set || upper_rank > self.count {
            upper_rank = self.count;
        }
        (upper_rank - lower_rank) / self.count
    }

    /// The variance of the observations, estimated from bucket midpoints.
    pub fn variance(&self) -> f64 {
        let mean = self.sum / self.count;
        let (mut var, mut c) = (0.0, 0.0);
        for b in self.all_buckets() {
            if b.count == 0.0 {
                continue;
            }
            let val = if self.uses_custom_buckets() {
                (b.upper + b.lower) / 2.0
            } else if b.lower <= 0.0 && b.upper >= 0.0 {
                0.0
            } else {
                let v = (b.upper * b.lower).sqrt();
                if b.upper < 0.0 { -v } else { v }
            };
            let delta = val - mean;
            (var, c) = crate::functions::kahan_inc(b.count * delta * delta, var, c);
        }
        (var + c) / self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(schema: i32, pos: &[(i32, f64)]) -> FloatHistogram {
        FloatHistogram {
            schema,
            count: pos.iter().map(|b| b.1).sum(),
            positive: pos.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn bounds_follow_schema() {
        assert_eq!(exp_bound(0, 0), 1.0);
        assert_eq!(exp_bound(1, 0), 2.0);
        assert_eq!(exp_bound(-1, 0), 0.5);
        assert!((exp_bound(1, 1) - 2f64.sqrt()).abs() < 1e-15);
        assert_eq!(exp_bound(1, -1), 4.0);
    }

    #[test]
    fn add_reduces_to_the_lower_schema() {
        let mut a = h(1, &[(1, 1.0), (2, 2.0)]);
        let b = h(0, &[(1, 3.0)]);
        a.add(&b).unwrap();
        assert_eq!(a.schema, 0);
        // Schema-1 buckets 1 and 2 both fall into schema-0 bucket 1.
        assert_eq!(a.positive, vec![(1, 6.0)]);
        a.sub(&b).unwrap();
        assert_eq!(a.positive, vec![(1, 3.0)]);
    }

    #[test]
    fn custom_bounds_are_reconciled() {
        let mut a = FloatHistogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            custom_values: vec![1.0, 2.0].into(),
            positive: vec![(0, 1.0), (1, 1.0), (2, 1.0)],
            count: 3.0,
            ..Default::default()
        };
        let b = FloatHistogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            custom_values: vec![2.0].into(),
            positive: vec![(0, 5.0)],
            count: 5.0,
            ..Default::default()
        };
        assert_eq!(a.add(&b), Ok(true));
        assert_eq!(&*a.custom_values, &[2.0]);
        assert_eq!(a.positive, vec![(0, 7.0), (1, 1.0)]);
    }

    #[test]
    fn quantile_interpolates_exponentially() {
        // One bucket (1, 2]: the median is at sqrt(2).
        let x = h(0, &[(1, 4.0)]);
        assert!((x.quantile(0.5) - 2f64.sqrt()).abs() < 1e-12);
        assert!((x.fraction(1.0, 2f64.sqrt()) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn reset_detection() {
        let prev = h(0, &[(1, 4.0), (2, 1.0)]);
        let mut cur = h(0, &[(1, 5.0)]);
        cur.count = 6.0;
        assert!(cur.detect_reset(&prev), "bucket 2 vanished");
        let cur = h(0, &[(1, 5.0), (2, 1.0)]);
        assert!(!cur.detect_reset(&prev));
    }

    #[test]
    fn string_forms() {
        let x = FloatHistogram {
            count: 3.0,
            sum: 1.5,
            zero_threshold: 0.001,
            zero_count: 1.0,
            positive: vec![(0, 2.0)],
            ..Default::default()
        };
        assert_eq!(
            x.prom_string(),
            "{count:3, sum:1.5, [-0.001,0.001]:1, (0.5,1]:2}"
        );
        assert_eq!(
            x.test_expression(),
            "{{count:3 sum:1.5 z_bucket:1 z_bucket_w:0.001 buckets:[2]}}"
        );
    }
}
