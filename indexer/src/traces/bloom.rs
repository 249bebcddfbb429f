//! Trace-id filters: which splits may hold a trace, answered without opening them.
//!
//! A trace-by-id lookup would otherwise search every split of the tenant (each a term
//! lookup in each of its segments). Each split keeps a scalable Bloom filter of the trace
//! ids it holds: layers of growing capacity (64 Ki ids, then twice the previous), each sized
//! for a 1 % false-positive rate, so a split costs 1.25 to 2.5 bytes per distinct trace id (the last layer is partly empty) and
//! a lookup tests a few bits per layer. A false positive only costs the search of one split.
//!
//! Filters are saved beside the split (`trace_ids.bloom`) when its writer closes, stamped
//! with the split's committed WAL sequence number; a split opened with no filter, or one
//! whose stamp does not match (the process died before saving it), has its filter rebuilt
//! from the split's trace-id terms.

use sightline_model::TraceId;

const FIRST_CAPACITY: u64 = 64 * 1024;
/// Bits per id for 1 % false positives with [`HASHES`] hash functions.
const BITS_PER_ID: u64 = 10;
const HASHES: u64 = 7;
const MAGIC: &[u8; 8] = b"SLBLOOM1";

#[derive(Debug, Clone, PartialEq)]
struct Layer {
    capacity: u64,
    len: u64,
    bits: Vec<u64>,
}

impl Layer {
    fn new(capacity: u64) -> Self {
        let words = (capacity * BITS_PER_ID).div_ceil(64) as usize;
        Self {
            capacity,
            len: 0,
            bits: vec![0; words],
        }
    }

    fn positions(&self, (h1, h2): (u64, u64)) -> impl Iterator<Item = usize> + '_ {
        let m = self.bits.len() as u64 * 64;
        (0..HASHES).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % m) as usize)
    }

    fn contains(&self, h: (u64, u64)) -> bool {
        self.positions(h)
            .all(|p| self.bits[p / 64] & (1 << (p % 64)) != 0)
    }

    fn insert(&mut self, h: (u64, u64)) {
        let positions: Vec<usize> = self.positions(h).collect();
        for p in positions {
            self.bits[p / 64] |= 1 << (p % 64);
        }
        self.len += 1;
    }
}

/// A scalable Bloom filter of trace ids.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct TraceIdFilter {
    layers: Vec<Layer>,
}

/// Two independent 64-bit hashes of an id. Ids are meant to be random, but clients that
/// make them from counters exist, so the halves are mixed (SplitMix64's finaliser).
fn hashes(id: &TraceId) -> (u64, u64) {
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let hi = u64::from_le_bytes(id.0[..8].try_into().expect("8 bytes"));
    let lo = u64::from_le_bytes(id.0[8..].try_into().expect("8 bytes"));
    let h1 = mix(hi ^ mix(lo));
    let h2 = mix(lo ^ 0x9e37_79b9_7f4a_7c15 ^ h1) | 1;
    (h1, h2)
}

impl TraceIdFilter {
    pub fn may_contain(&self, id: &TraceId) -> bool {
        let h = hashes(id);
        self.layers.iter().any(|l| l.contains(h))
    }

    /// Adds an id (a repeated id is not counted again when the filter already holds it).
    pub fn insert(&mut self, id: &TraceId) {
        let h = hashes(id);
        if self.layers.iter().any(|l| l.contains(h)) {
            return;
        }
        let full = self.layers.last().is_none_or(|l| l.len >= l.capacity);
        if full {
            let capacity = self
                .layers
                .last()
                .map_or(FIRST_CAPACITY, |l| l.capacity * 2);
            self.layers.push(Layer::new(capacity));
        }
        self.layers.last_mut().expect("a layer").insert(h);
    }

    /// Bytes of filter memory.
    pub fn memory_bytes(&self) -> usize {
        self.layers.iter().map(|l| l.bits.len() * 8).sum()
    }

    /// The file form: magic, the stamp, the layer count, then per layer capacity, length,
    /// word count and words, all little-endian.
    pub fn to_bytes(&self, stamp: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + self.memory_bytes() + self.layers.len() * 24);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&stamp.to_le_bytes());
        out.extend_from_slice(&(self.layers.len() as u64).to_le_bytes());
        for l in &self.layers {
            out.extend_from_slice(&l.capacity.to_le_bytes());
            out.extend_from_slice(&l.len.to_le_bytes());
            out.extend_from_slice(&(l.bits.len() as u64).to_le_bytes());
            for w in &l.bits {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        out
    }

    /// The filter and its stamp from [`TraceIdFilter::to_bytes`]; `None` when the bytes are
    /// not such a file (then the filter is rebuilt).
    pub fn from_bytes(bytes: &[u8]) -> Option<(Self, u64)> {
        let mut rest = bytes.strip_prefix(MAGIC.as_slice())?;
        let mut next = || -> Option<u64> {
            let (word, tail) = rest.split_first_chunk::<8>()?;
            rest = tail;
            Some(u64::from_le_bytes(*word))
        };
        let stamp = next()?;
        let layers = next()?;
        let mut out = Self::default();
        for _ in 0..layers {
            let capacity = next()?;
            let len = next()?;
            let words = next()?;
            if capacity == 0 || words != (capacity * BITS_PER_ID).div_ceil(64) {
                return None;
            }
            let bits = (0..words).map(|_| next()).collect::<Option<Vec<u64>>>()?;
            out.layers.push(Layer {
                capacity,
                len,
                bits,
            });
        }
        Some((out, stamp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> TraceId {
        let mut b = [0u8; 16];
        b[8..].copy_from_slice(&n.to_be_bytes());
        TraceId(b)
    }

    #[test]
    fn holds_every_inserted_id_and_few_others() {
        let mut f = TraceIdFilter::default();
        let n = 200_000;
        for i in 0..n {
            f.insert(&id(i));
        }
        assert!((0..n).all(|i| f.may_contain(&id(i))));
        let false_positives = (n..n + 100_000).filter(|i| f.may_contain(&id(*i))).count();
        // Three layers at 1 % each: at most about 3 %.
        assert!(false_positives < 3_500, "{false_positives} false positives");
        // Layers of 64 Ki, 128 Ki and 256 Ki ids at 10 bits each: under 3 bytes an id.
        assert!(
            f.memory_bytes() < 3 * n as usize,
            "{} bytes",
            f.memory_bytes()
        );
    }

    #[test]
    fn round_trips_through_bytes_and_refuses_garbage() {
        let mut f = TraceIdFilter::default();
        for i in 0..1000 {
            f.insert(&id(i));
        }
        let (back, stamp) = TraceIdFilter::from_bytes(&f.to_bytes(42)).unwrap();
        assert_eq!((back, stamp), (f.clone(), 42));
        let bytes = f.to_bytes(1);
        assert!(TraceIdFilter::from_bytes(&bytes[..bytes.len() - 1]).is_none());
        assert!(TraceIdFilter::from_bytes(b"nonsense").is_none());
    }
}
