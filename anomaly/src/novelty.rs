//! Pattern novelty after adaptive-resonance (ART) clustering, the idea behind ARTime:
//! the last few values, scaled into the range seen so far, form a pattern; a small set of
//! prototypes remembers the patterns seen; a pattern farther than the vigilance from every
//! prototype is novel and becomes a prototype itself (replacing the least recently matched
//! one when the set is full), so a new regime is learnt after it has been reported.
//!
//! The range is the running minimum and maximum of the *past* (never the file's): a value
//! outside everything seen so far is itself far from every prototype. As in ARTime, scaled
//! values within `chomp` of a running median (a sign-step tracker of the past values) are
//! snapped to it, so ripples around the usual level never make a pattern novel. Work per
//! point is `prototypes × pattern_len`, a constant; the state is a few hundred floats.

use serde::{Deserialize, Serialize};

/// Longest pattern the state allows.
pub const MAX_PATTERN: usize = 16;
/// Largest prototype set the state allows.
pub const MAX_PROTOTYPES: usize = 32;
/// Step of the running-median tracker per point, in units of the past range.
const MEDIAN_STEP: f64 = 0.01;

/// Settings of the novelty model.
#[derive(Debug, Clone, Copy)]
pub struct NoveltyParams {
    /// Values per pattern.
    pub pattern_len: usize,
    /// Prototypes kept.
    pub prototypes: usize,
    /// Distance (mean absolute difference in range units) within which a pattern matches.
    pub vigilance: f64,
    /// How far a matched prototype moves towards the pattern.
    pub rate: f64,
    /// Scaled values within this distance of the running median are snapped to it.
    pub chomp: f64,
}

/// The novelty model of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Novelty {
    low: f64,
    high: f64,
    /// The last raw values, a ring buffer of `pattern_len`.
    recent: Vec<f64>,
    next: usize,
    /// Prototypes, flattened `pattern_len` floats each, in range-scaled units.
    prototypes: Vec<f32>,
    /// Last point at which each prototype matched (for replacement).
    last_used: Vec<u64>,
    clock: u64,
    /// Running median of the values (sign-step tracker), in value units.
    median: f64,
}

impl Default for Novelty {
    fn default() -> Self {
        Self::new()
    }
}

impl Novelty {
    /// An empty model.
    pub fn new() -> Self {
        Self {
            low: f64::INFINITY,
            high: f64::NEG_INFINITY,
            recent: Vec::new(),
            next: 0,
            prototypes: Vec::new(),
            last_used: Vec::new(),
            clock: 0,
            median: f64::NAN,
        }
    }

    /// Scores `value` as the next point and learns it. Returns the distance from the new
    /// pattern to its nearest prototype (mean absolute difference in range units), or
    /// `None` while the first pattern is still filling.
    pub fn observe(&mut self, value: f64, params: NoveltyParams) -> Option<f64> {
        let pattern_len = params.pattern_len.clamp(1, MAX_PATTERN);
        let capacity = params.prototypes.clamp(1, MAX_PROTOTYPES);
        self.clock += 1;
        if self.recent.len() < pattern_len {
            self.recent.push(value);
        } else {
            self.recent[self.next] = value;
        }
        self.next = (self.next + 1) % pattern_len;
        // Scale by the past range: the current value may fall outside it.
        let (scale_low, scale_high) = if self.low.is_finite() {
            (self.low, self.high)
        } else {
            (value, value)
        };
        let range = (scale_high - scale_low).max(1e-9 * (1.0 + scale_high.abs()));
        if self.median.is_nan() {
            self.median = value;
        }
        let median = (self.median - scale_low) / range;
        // The median of the past (before this value moves it), tracked by signed steps.
        let step = MEDIAN_STEP * range;
        if value > self.median {
            self.median += step;
        } else if value < self.median {
            self.median -= step;
        }
        self.low = self.low.min(value);
        self.high = self.high.max(value);
        if self.recent.len() < pattern_len {
            return None;
        }
        let mut pattern = [0.0f64; MAX_PATTERN];
        for (k, slot) in pattern.iter_mut().take(pattern_len).enumerate() {
            let v = self.recent[(self.next + k) % pattern_len];
            let x = (v - scale_low) / range;
            *slot = if (x - median).abs() < params.chomp {
                median
            } else {
                x
            };
        }
        let pattern = &pattern[..pattern_len];
        let mut best = (f64::INFINITY, 0);
        for (p, proto) in self.prototypes.chunks_exact(pattern_len).enumerate() {
            let mut distance = 0.0;
            for (a, &b) in pattern.iter().zip(proto) {
                distance += (a - f64::from(b)).abs();
            }
            distance /= pattern_len as f64;
            if distance < best.0 {
                best = (distance, p);
            }
        }
        if best.0 <= params.vigilance {
            let p = best.1;
            let proto = &mut self.prototypes[p * pattern_len..(p + 1) * pattern_len];
            for (slot, &target) in proto.iter_mut().zip(pattern) {
                *slot += (params.rate * (target - f64::from(*slot))) as f32;
            }
            self.last_used[p] = self.clock;
        } else if self.last_used.len() < capacity {
            self.prototypes.extend(pattern.iter().map(|&v| v as f32));
            self.last_used.push(self.clock);
        } else {
            // Replace the prototype that matched least recently.
            let oldest = (0..self.last_used.len())
                .min_by_key(|&p| self.last_used[p])
                .unwrap_or(0);
            for (slot, &v) in self.prototypes[oldest * pattern_len..(oldest + 1) * pattern_len]
                .iter_mut()
                .zip(pattern)
            {
                *slot = v as f32;
            }
            self.last_used[oldest] = self.clock;
        }
        Some(if best.0.is_finite() { best.0 } else { 0.0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: NoveltyParams = NoveltyParams {
        pattern_len: 4,
        prototypes: 8,
        vigilance: 0.1,
        rate: 0.1,
        chomp: 0.0,
    };

    #[test]
    fn a_repeating_shape_becomes_familiar_and_a_new_one_is_novel() {
        let mut novelty = Novelty::new();
        let shape = [0.0, 1.0, 2.0, 3.0, 2.0, 1.0];
        let mut last = None;
        for i in 0..600 {
            last = novelty.observe(shape[i % shape.len()], PARAMS);
        }
        assert!(last.unwrap() < 0.05, "{last:?}");
        // A value far outside the past range: far from every prototype.
        let novel = novelty.observe(9.0, PARAMS).unwrap();
        assert!(novel > PARAMS.vigilance, "{novel}");
    }
}
