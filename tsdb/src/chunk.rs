//! Compressed chunks of one series' samples: delta-of-delta timestamps and XOR'd values
//! (Facebook's Gorilla, as Prometheus stores them).
//!
//! ## Format (version 1)
//!
//! ```text
//! chunk   := count:u16 (big-endian) · bits
//! bits    := sample₀ · sample₁ · … (MSB first, zero-padded to a byte)
//! sample₀ := t₀ as zig-zag varint · v₀ as 64 raw bits
//! sample₁ := (t₁ − t₀) as zig-zag varint · value
//! sampleₙ := dod · value              (n ≥ 2, dod = (tₙ − tₙ₋₁) − (tₙ₋₁ − tₙ₋₂))
//! dod     := '0'                                   dod = 0
//!          | '10'   · 14-bit two's complement      −8191 ≤ dod ≤ 8192
//!          | '110'  · 17-bit two's complement      −65535 ≤ dod ≤ 65536
//!          | '1110' · 20-bit two's complement      −524287 ≤ dod ≤ 524288
//!          | '1111' · 64 bits
//! value   := '0'                                   same bits as the previous value
//!          | '10' · meaningful bits                XOR fits the previous leading/trailing window
//!          | '11' · leading:5 · len−1:6 · bits     a new window (len = 64 − leading − trailing)
//! ```
//!
//! Timestamps are milliseconds; a steady scrape interval costs one bit per sample. Values
//! are XOR'd bit patterns, so every NaN payload (Prometheus's staleness marker among them)
//! and ±Inf round-trip exactly. The format is pinned by `testdata/chunk_v1.bin`.

use std::fmt;

/// Samples per chunk at most (Prometheus cuts at 120 for 2 h of 15 s scrapes).
pub const MAX_SAMPLES: usize = 120;

/// A decoding failure: the bytes are not a whole chunk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk is truncated or corrupt at sample {sample} of {count}")]
    Invalid { sample: usize, count: usize },
    #[error("chunk header is missing (needs 2 bytes, has {0})")]
    NoHeader(usize),
}

/// A sealed chunk: its bytes and sample count.
#[derive(Clone, PartialEq, Eq)]
pub struct Chunk {
    bytes: Vec<u8>,
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunk")
            .field("samples", &self.len())
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl Chunk {
    /// Wraps bytes read from storage; [`Chunk::iter`] checks them as it decodes.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, ChunkError> {
        if bytes.len() < 2 {
            return Err(ChunkError::NoHeader(bytes.len()));
        }
        Ok(Self { bytes })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn len(&self) -> usize {
        usize::from(u16::from_be_bytes([self.bytes[0], self.bytes[1]]))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The samples, oldest first.
    pub fn iter(&self) -> ChunkIter<'_> {
        iter_bytes(&self.bytes)
    }
}

/// The timestamp of the first sample of encoded chunk bytes, read without decoding the rest
/// (`None` for an empty or truncated chunk).
pub fn first_timestamp(bytes: &[u8]) -> Option<i64> {
    if bytes.len() < 3 || u16::from_be_bytes([bytes[0], bytes[1]]) == 0 {
        return None;
    }
    BitReader {
        bytes: &bytes[2..],
        bit: 0,
    }
    .read_varint()
}

/// Decodes encoded chunk bytes in place (no copy into a [`Chunk`]); a missing header reads
/// as an empty chunk.
pub fn iter_bytes(bytes: &[u8]) -> ChunkIter<'_> {
    let count = match bytes {
        [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
        _ => 0,
    };
    ChunkIter {
        reader: BitReader {
            bytes: bytes.get(2..).unwrap_or_default(),
            bit: 0,
        },
        count,
        index: 0,
        t: 0,
        delta: 0,
        value: 0,
        leading: 0,
        trailing: 0,
    }
}

/// Appends samples to a chunk being built.
///
/// Small fields are narrow on purpose: one appender lives in every head series.
#[derive(Debug, Clone)]
pub struct ChunkAppender {
    bytes: Vec<u8>,
    t: i64,
    delta: i64,
    value: u64,
    count: u16,
    /// Bits used in the last byte (0 = a new byte is needed).
    used: u8,
    /// The XOR window; `leading == u8::MAX` until the first one opens.
    leading: u8,
    trailing: u8,
}

impl Default for ChunkAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkAppender {
    pub fn new() -> Self {
        Self {
            bytes: Vec::new(),
            count: 0,
            used: 0,
            t: 0,
            delta: 0,
            value: 0,
            // No window yet: the first XOR always opens one.
            leading: u8::MAX,
            trailing: 0,
        }
    }

    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn is_full(&self) -> bool {
        usize::from(self.count) >= MAX_SAMPLES
    }

    /// Appends a sample (timestamp in ms, not before the previous one: callers order
    /// samples); returns false when the chunk is full.
    pub fn append(&mut self, t: i64, v: f64) -> bool {
        if self.is_full() {
            return false;
        }
        let bits = v.to_bits();
        match self.count {
            0 => {
                self.w().write_varint(t);
                self.w().write_bits(bits, 64);
            }
            1 => {
                self.delta = t.wrapping_sub(self.t);
                let delta = self.delta;
                self.w().write_varint(delta);
                self.write_value(bits);
            }
            _ => {
                let delta = t.wrapping_sub(self.t);
                self.write_dod(delta.wrapping_sub(self.delta));
                self.delta = delta;
                self.write_value(bits);
            }
        }
        self.t = t;
        self.value = bits;
        self.count += 1;
        true
    }

    fn w(&mut self) -> BitWriter<'_> {
        BitWriter {
            bytes: &mut self.bytes,
            used: &mut self.used,
        }
    }

    fn write_dod(&mut self, dod: i64) {
        let mut w = self.w();
        match dod {
            0 => w.write_bits(0, 1),
            -8191..=8192 => {
                w.write_bits(0b10, 2);
                w.write_bits(dod as u64, 14);
            }
            -65535..=65536 => {
                w.write_bits(0b110, 3);
                w.write_bits(dod as u64, 17);
            }
            -524287..=524288 => {
                w.write_bits(0b1110, 4);
                w.write_bits(dod as u64, 20);
            }
            _ => {
                w.write_bits(0b1111, 4);
                w.write_bits(dod as u64, 64);
            }
        }
    }

    fn write_value(&mut self, bits: u64) {
        let xor = bits ^ self.value;
        if xor == 0 {
            self.w().write_bits(0, 1);
            return;
        }
        // Five bits hold at most 31 leading zeros.
        let leading = xor.leading_zeros().min(31);
        let trailing = xor.trailing_zeros();
        if self.leading != u8::MAX
            && leading >= u32::from(self.leading)
            && trailing >= u32::from(self.trailing)
        {
            let len = 64 - u32::from(self.leading) - u32::from(self.trailing);
            self.w().write_bits(0b10, 2);
            let shifted = xor >> self.trailing;
            self.w().write_bits(shifted, len);
        } else {
            let len = 64 - leading - trailing;
            self.w().write_bits(0b11, 2);
            self.w().write_bits(u64::from(leading), 5);
            self.w().write_bits(u64::from(len - 1), 6);
            self.w().write_bits(xor >> trailing, len);
            self.leading = leading as u8;
            self.trailing = trailing as u8;
        }
    }

    /// The oldest sample's timestamp, if any (read from the bytes, no copy).
    pub fn first_timestamp(&self) -> Option<i64> {
        if self.count == 0 {
            return None;
        }
        BitReader {
            bytes: &self.bytes,
            bit: 0,
        }
        .read_varint()
    }

    /// The newest sample appended, if any.
    pub fn last(&self) -> Option<(i64, f64)> {
        (self.count > 0).then(|| (self.t, f64::from_bits(self.value)))
    }

    /// Bytes of the encoded chunk so far (header included), without copying it.
    pub fn encoded_len(&self) -> usize {
        2 + self.bytes.len()
    }

    /// Heap bytes held (capacity, not length): for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// Writes the chunk so far into `out` (what [`ChunkAppender::chunk`] returns, without a
    /// new allocation per call).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.bytes);
    }

    /// Gives back spare capacity (a closed-over appender that will not grow soon).
    pub fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
    }

    /// The chunk so far (the appender can go on).
    pub fn chunk(&self) -> Chunk {
        let mut bytes = Vec::with_capacity(2 + self.bytes.len());
        bytes.extend_from_slice(&self.count.to_be_bytes());
        bytes.extend_from_slice(&self.bytes);
        Chunk { bytes }
    }
}

/// Decodes a chunk's samples.
#[derive(Debug)]
pub struct ChunkIter<'a> {
    reader: BitReader<'a>,
    count: usize,
    index: usize,
    t: i64,
    delta: i64,
    value: u64,
    leading: u32,
    trailing: u32,
}

impl ChunkIter<'_> {
    fn decode(&mut self) -> Option<(i64, f64)> {
        let r = &mut self.reader;
        match self.index {
            0 => {
                self.t = r.read_varint()?;
                self.value = r.read_bits(64)?;
            }
            1 => {
                self.delta = r.read_varint()?;
                self.t = self.t.wrapping_add(self.delta);
                self.read_value()?;
            }
            _ => {
                let dod = match r.read_prefix()? {
                    0 => 0,
                    1 => from_bucket(r.read_bits(14)?, 14),
                    2 => from_bucket(r.read_bits(17)?, 17),
                    3 => from_bucket(r.read_bits(20)?, 20),
                    _ => r.read_bits(64)? as i64,
                };
                self.delta = self.delta.wrapping_add(dod);
                self.t = self.t.wrapping_add(self.delta);
                self.read_value()?;
            }
        }
        Some((self.t, f64::from_bits(self.value)))
    }

    fn read_value(&mut self) -> Option<()> {
        let r = &mut self.reader;
        if r.read_bits(1)? == 0 {
            return Some(());
        }
        if r.read_bits(1)? == 1 {
            self.leading = r.read_bits(5)? as u32;
            let len = r.read_bits(6)? as u32 + 1;
            self.trailing = 64u32.checked_sub(self.leading + len)?;
        }
        let len = 64 - self.leading - self.trailing;
        self.value ^= r.read_bits(len)? << self.trailing;
        Some(())
    }
}

impl Iterator for ChunkIter<'_> {
    type Item = Result<(i64, f64), ChunkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.index >= self.count {
            return None;
        }
        let sample = self.decode().ok_or(ChunkError::Invalid {
            sample: self.index,
            count: self.count,
        });
        // After a failure the iterator ends.
        self.index = if sample.is_ok() {
            self.index + 1
        } else {
            self.count
        };
        Some(sample)
    }
}

/// A delta-of-delta from its `bits`-wide field: the buckets hold −(2ⁿ⁻¹ − 1) ..= 2ⁿ⁻¹, so
/// the pattern of 2ⁿ⁻¹ is positive (as in Prometheus), not two's complement's minimum.
fn from_bucket(v: u64, bits: u32) -> i64 {
    let v = v as i64;
    if v > 1 << (bits - 1) {
        v - (1 << bits)
    } else {
        v
    }
}

/// Bit-level writing into an appender's bytes.
struct BitWriter<'a> {
    bytes: &'a mut Vec<u8>,
    /// Bits used in the last byte (0 = a new byte is needed).
    used: &'a mut u8,
}

impl BitWriter<'_> {
    /// Writes the low `n` bits of `v` (n ≤ 64), most significant first.
    fn write_bits(&mut self, v: u64, n: u32) {
        let mut left = n;
        while left > 0 {
            if *self.used == 0 {
                // Grow by a quarter (at least 16 bytes), not double: an open chunk is a
                // large share of a head series' memory and mostly stays small.
                if self.bytes.len() == self.bytes.capacity() {
                    self.bytes
                        .reserve_exact((self.bytes.len() / 4).clamp(16, 256));
                }
                self.bytes.push(0);
            }
            let room = 8 - u32::from(*self.used);
            let take = room.min(left);
            let chunk = ((v >> (left - take)) & ((1u64 << take) - 1)) as u8;
            let last = self.bytes.len() - 1;
            self.bytes[last] |= chunk << (room - take);
            *self.used = ((u32::from(*self.used) + take) % 8) as u8;
            left -= take;
        }
    }

    /// A zig-zag varint in whole bytes' worth of bits (7 bits a group, high bit: more).
    fn write_varint(&mut self, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            let group = z & 0x7f;
            z >>= 7;
            if z == 0 {
                self.write_bits(group, 8);
                return;
            }
            self.write_bits(group | 0x80, 8);
        }
    }
}

#[derive(Debug)]
struct BitReader<'a> {
    bytes: &'a [u8],
    bit: usize,
}

impl BitReader<'_> {
    fn read_bits(&mut self, n: u32) -> Option<u64> {
        if self.bit + n as usize > self.bytes.len() * 8 {
            return None;
        }
        let mut v = 0u64;
        let mut left = n;
        while left > 0 {
            let byte = self.bytes[self.bit / 8];
            let offset = (self.bit % 8) as u32;
            let room = 8 - offset;
            let take = room.min(left);
            let chunk = (u64::from(byte) >> (room - take)) & ((1u64 << take) - 1);
            v = (v << take) | chunk;
            self.bit += take as usize;
            left -= take;
        }
        Some(v)
    }

    /// The number of leading one bits of a delta-of-delta prefix, at most 4.
    fn read_prefix(&mut self) -> Option<u8> {
        let mut ones = 0;
        while ones < 4 {
            if self.read_bits(1)? == 0 {
                break;
            }
            ones += 1;
        }
        Some(ones)
    }

    fn read_varint(&mut self) -> Option<i64> {
        let mut z = 0u64;
        for shift in (0..70).step_by(7) {
            let group = self.read_bits(8)?;
            z |= (group & 0x7f).checked_shl(shift).unwrap_or(0);
            if group & 0x80 == 0 {
                return Some(((z >> 1) as i64) ^ -((z & 1) as i64));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(samples: &[(i64, f64)]) -> Chunk {
        let mut a = ChunkAppender::new();
        for &(t, v) in samples {
            assert!(a.append(t, v));
        }
        a.chunk()
    }

    fn decode(chunk: &Chunk) -> Vec<(i64, u64)> {
        chunk
            .iter()
            .map(|s| s.map(|(t, v)| (t, v.to_bits())).unwrap())
            .collect()
    }

    /// Prometheus's staleness marker.
    const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

    /// A 15 s scrape of a counter with jitter, a gauge, a staleness marker and ±Inf.
    fn golden_samples() -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        let mut t = 1_700_000_000_000i64;
        let mut counter = 1000.0;
        for i in 0..40 {
            t += 15_000 + [0, 1, -1, 3, 0][i % 5];
            counter += f64::from((i as u32 * 7) % 11);
            out.push((t, counter));
        }
        out.push((t + 15_000, f64::from_bits(STALE_NAN)));
        out.push((t + 30_000, f64::INFINITY));
        out.push((t + 45_000, f64::NEG_INFINITY));
        out.push((t + 9_000_000_000, 0.25));
        out
    }

    #[test]
    fn round_trips_bit_exactly_with_stale_markers_and_infinities() {
        let samples = golden_samples();
        let chunk = encode(&samples);
        let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(decode(&chunk), want);
        // A steady counter costs a few bits a sample, not 16 bytes.
        let per_sample = chunk.as_bytes().len() as f64 / samples.len() as f64;
        assert!(per_sample < 4.0, "{per_sample} bytes per sample");
    }

    #[test]
    fn golden_file_pins_the_format() {
        // Regenerate by deleting testdata/chunk_v1.bin and running this test once.
        let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/chunk_v1.bin");
        let chunk = encode(&golden_samples());
        if !golden.exists() {
            std::fs::write(&golden, chunk.as_bytes()).unwrap();
        }
        let stored = Chunk::from_bytes(std::fs::read(&golden).unwrap()).unwrap();
        assert_eq!(stored.as_bytes(), chunk.as_bytes(), "chunk format changed");
        assert_eq!(decode(&stored).len(), golden_samples().len());
    }

    #[test]
    fn truncated_and_garbage_chunks_fail_cleanly() {
        let bytes = encode(&golden_samples()).as_bytes().to_vec();
        for cut in [2, 3, 10, bytes.len() / 2, bytes.len() - 1] {
            let chunk = Chunk::from_bytes(bytes[..cut].to_vec()).unwrap();
            let results: Vec<_> = chunk.iter().collect();
            assert!(
                matches!(results.last(), Some(Err(ChunkError::Invalid { .. }))),
                "cut at {cut}"
            );
        }
        assert_eq!(Chunk::from_bytes(vec![0]), Err(ChunkError::NoHeader(1)));
        let garbage = Chunk::from_bytes(vec![0, 50, 0xff, 0xff, 0xff, 0xff]).unwrap();
        assert!(garbage.iter().any(|s| s.is_err()));
    }

    #[test]
    fn delta_of_delta_bucket_edges_round_trip() {
        for dod in [
            8192,
            -8191,
            8193,
            -8192,
            65536,
            -65535,
            65537,
            -65536,
            524288,
            -524287,
            524289,
            -524288,
            i64::MAX / 4,
        ] {
            let samples: [(i64, f64); 4] =
                [(0, 1.0), (1000, 2.0), (2000 + dod, 3.0), (3000 + dod, 4.0)];
            let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
            assert_eq!(decode(&encode(&samples)), want, "dod {dod}");
        }
    }

    #[test]
    fn a_full_chunk_refuses_more() {
        let mut a = ChunkAppender::new();
        for i in 0..MAX_SAMPLES as i64 {
            assert!(a.append(i * 1000, 1.0));
        }
        assert!(a.is_full());
        assert!(!a.append(1_000_000, 1.0));
        assert_eq!(a.chunk().len(), MAX_SAMPLES);
    }

    proptest! {
        #[test]
        fn any_samples_round_trip(
            start in any::<i64>(),
            deltas in proptest::collection::vec(any::<i64>(), 0..MAX_SAMPLES),
            values in proptest::collection::vec(any::<u64>(), MAX_SAMPLES),
        ) {
            let mut t = start;
            let mut samples = Vec::new();
            for (i, d) in std::iter::once(0).chain(deltas).enumerate() {
                t = t.wrapping_add(d);
                samples.push((t, f64::from_bits(values[i])));
            }
            let chunk = encode(&samples);
            let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
            prop_assert_eq!(decode(&chunk), want);
        }

        #[test]
        fn regular_scrapes_round_trip(
            start in 0i64..4_000_000_000_000,
            interval in 1i64..120_000,
            jitter in proptest::collection::vec(-50i64..50, MAX_SAMPLES),
            steps in proptest::collection::vec(0u32..1000, MAX_SAMPLES),
        ) {
            let mut samples = Vec::new();
            let mut v = 0.0;
            for i in 0..MAX_SAMPLES {
                v += f64::from(steps[i]) * 0.5;
                samples.push((start + i as i64 * interval + jitter[i], v));
            }
            let chunk = encode(&samples);
            let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
            prop_assert_eq!(decode(&chunk), want);
        }
    }
}
