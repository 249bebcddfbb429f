//! What the detector's integration tests share.

/// Deterministic noise: the sum of four uniforms (roughly normal), standard deviation ~0.58.
pub struct Noise(pub u64);

impl Noise {
    pub fn next(&mut self) -> f64 {
        let mut sum = 0.0;
        for _ in 0..4 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            sum += (self.0 >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
        }
        sum
    }
}
