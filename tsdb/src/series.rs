//! One series' samples in the head, in three tiers, oldest first:
//!
//! 1. `packed`: the older samples as pco columns ([`crate::columns`]), rebuilt by
//!    [`MemSeries::pack`] during maintenance (never on the append path);
//! 2. `sealed`: full Gorilla chunks waiting to be packed, back to back as
//!    `(len: u16 LE · chunk)*` in one allocation;
//! 3. `open`: the Gorilla chunk being appended to.
//!
//! Tiers never overlap in time and each is sorted, so a series reads out in order without
//! merging. No sample is ever a struct in memory: everything is compressed bytes.
//! Out-of-order samples (inside the window, checked by the caller) are inserted by
//! re-encoding the one tier piece that covers their time: rare, and bounded by a chunk or
//! the packed run.

use std::sync::Arc;

use crate::chunk::{self, ChunkAppender, MAX_SAMPLES};
use crate::columns;

/// Samples in the open Gorilla chunk before it is sealed (and packed by the next
/// maintenance): half of a full chunk, because the open chunk is Gorilla-sized (about 2–3
/// bytes a sample for jittered scrapes) while packed samples cost about 1; measured at
/// 100k series this saves ~60 bytes per series for twice the (small) packing work.
pub const OPEN_CHUNK_SAMPLES: usize = MAX_SAMPLES / 2;

/// A head series.
pub struct MemSeries {
    pub id: u32,
    /// Label symbol ids, `name, value, name, value, …`, in label-name order.
    pub labels: Box<[u32]>,
    packed: Option<Arc<[u8]>>,
    sealed: Box<[u8]>,
    open: ChunkAppender,
    /// Oldest and newest sample time (`i64::MAX`/`i64::MIN` when empty).
    pub min_t: i64,
    pub max_t: i64,
}

/// The inputs of packing one series (see [`MemSeries::pack_job`]).
pub struct PackJob {
    packed: Option<Arc<[u8]>>,
    sealed: Box<[u8]>,
}

impl PackJob {
    /// The new packed run: the old one followed by the sealed chunks.
    pub fn run(&self) -> Result<Arc<[u8]>, String> {
        let (mut ts, mut vs) = match &self.packed {
            Some(p) => columns::decode(p)?,
            None => (Vec::new(), Vec::new()),
        };
        for c in framed(&self.sealed) {
            decode_chunk(c?, &mut ts, &mut vs);
        }
        Ok(Arc::from(columns::encode(&ts, &vs, columns::HEAD_LEVEL)?))
    }
}

/// A copy of the parts of a series that a read needs, taken under the head's read lock and
/// decoded after it is released.
#[derive(Debug, Default, Clone)]
pub struct SeriesData {
    pub packed: Option<Arc<[u8]>>,
    /// Framed Gorilla chunks (`len: u16 LE · chunk`), the open chunk last.
    pub chunks: Vec<u8>,
}

impl SeriesData {
    /// Decodes the samples with `mint <= t <= maxt` into `out`, in time order.
    pub fn decode_into(
        &self,
        mint: i64,
        maxt: i64,
        ts: &mut Vec<i64>,
        vs: &mut Vec<f64>,
    ) -> Result<(), String> {
        if let Some(p) = &self.packed {
            let (t, v) = columns::decode(p)?;
            let start = t.partition_point(|&x| x < mint);
            let end = t.partition_point(|&x| x <= maxt);
            if start < end {
                ts.extend_from_slice(&t[start..end]);
                vs.extend_from_slice(&v[start..end]);
            }
        }
        for c in framed(&self.chunks) {
            for s in chunk::iter_bytes(c?) {
                let (t, v) = s.map_err(|e| e.to_string())?;
                if t > maxt {
                    break;
                }
                if t >= mint {
                    ts.push(t);
                    vs.push(v);
                }
            }
        }
        Ok(())
    }
}

/// Iterates framed chunks (`len: u16 LE · chunk`).
pub fn framed(mut bytes: &[u8]) -> impl Iterator<Item = Result<&[u8], String>> {
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        if bytes.len() < 2 {
            bytes = &[];
            return Some(Err("framed chunk header cut short".to_string()));
        }
        let len = usize::from(u16::from_le_bytes([bytes[0], bytes[1]]));
        if bytes.len() < 2 + len {
            bytes = &[];
            return Some(Err("framed chunk cut short".to_string()));
        }
        let c = &bytes[2..2 + len];
        bytes = &bytes[2 + len..];
        Some(Ok(c))
    })
}

fn push_framed(out: &mut Vec<u8>, chunk: &[u8]) {
    out.extend_from_slice(&(chunk.len() as u16).to_le_bytes());
    out.extend_from_slice(chunk);
}

fn decode_chunk(bytes: &[u8], ts: &mut Vec<i64>, vs: &mut Vec<f64>) {
    // Head chunks are written by this process: a decoding failure is a bug, and the
    // samples decoded so far are all there is.
    for (t, v) in chunk::iter_bytes(bytes).map_while(Result::ok) {
        ts.push(t);
        vs.push(v);
    }
}

/// Gorilla-encodes samples as framed chunks of at most [`MAX_SAMPLES`].
fn encode_framed(ts: &[i64], vs: &[f64], out: &mut Vec<u8>) {
    for (tc, vc) in ts.chunks(MAX_SAMPLES).zip(vs.chunks(MAX_SAMPLES)) {
        let mut a = ChunkAppender::new();
        for (&t, &v) in tc.iter().zip(vc) {
            a.append(t, v);
        }
        let mut c = Vec::with_capacity(a.encoded_len());
        a.write_to(&mut c);
        push_framed(out, &c);
    }
}

fn appender_of(ts: &[i64], vs: &[f64]) -> ChunkAppender {
    let mut a = ChunkAppender::new();
    for (&t, &v) in ts.iter().zip(vs) {
        a.append(t, v);
    }
    a
}

impl MemSeries {
    pub fn new(id: u32, labels: Box<[u32]>) -> Self {
        Self {
            id,
            labels,
            packed: None,
            sealed: Box::default(),
            open: ChunkAppender::new(),
            min_t: i64::MAX,
            max_t: i64::MIN,
        }
    }

    /// Restores a series from its snapshot parts.
    pub fn from_parts(
        id: u32,
        labels: Box<[u32]>,
        packed: Option<Vec<u8>>,
        sealed: Vec<u8>,
        open: &[u8],
    ) -> Result<Self, String> {
        let mut s = Self::new(id, labels);
        s.packed = packed.map(Arc::from);
        s.sealed = sealed.into_boxed_slice();
        let (mut ts, mut vs) = (Vec::new(), Vec::new());
        for r in chunk::iter_bytes(open) {
            let (t, v) = r.map_err(|e| e.to_string())?;
            ts.push(t);
            vs.push(v);
        }
        s.open = appender_of(&ts, &vs);
        let (all_t, _) = s.decode_all()?;
        s.min_t = all_t.first().copied().unwrap_or(i64::MAX);
        s.max_t = all_t.last().copied().unwrap_or(i64::MIN);
        Ok(s)
    }

    pub fn is_empty(&self) -> bool {
        self.min_t == i64::MAX
    }

    /// Whether full Gorilla chunks wait to be packed.
    pub fn has_sealed(&self) -> bool {
        !self.sealed.is_empty()
    }

    /// The parts a snapshot stores: packed columns, framed sealed chunks, open chunk.
    pub fn parts(&self) -> (Option<&[u8]>, &[u8], Vec<u8>) {
        let mut open = Vec::with_capacity(self.open.encoded_len());
        self.open.write_to(&mut open);
        (self.packed.as_deref(), &self.sealed, open)
    }

    /// Appends a sample newer than every stored one.
    pub fn append(&mut self, t: i64, v: f64) {
        debug_assert!(t > self.max_t || self.is_empty());
        if self.open.len() >= OPEN_CHUNK_SAMPLES {
            self.seal_open();
        }
        self.open.append(t, v);
        self.max_t = t;
        self.min_t = self.min_t.min(t);
    }

    fn seal_open(&mut self) {
        let mut sealed = Vec::with_capacity(self.sealed.len() + 2 + self.open.encoded_len());
        sealed.extend_from_slice(&self.sealed);
        let mut c = Vec::with_capacity(self.open.encoded_len());
        self.open.write_to(&mut c);
        push_framed(&mut sealed, &c);
        self.sealed = sealed.into_boxed_slice();
        self.open = ChunkAppender::new();
    }

    /// The first timestamp of the open chunk, if it has samples.
    fn open_first(&self) -> Option<i64> {
        self.open.first_timestamp()
    }

    /// The value bits stored at exactly `t`, if any.
    pub fn value_at(&self, t: i64) -> Option<u64> {
        if self.is_empty() || t < self.min_t || t > self.max_t {
            return None;
        }
        if let Some((lt, lv)) = self.open.last()
            && lt == t
        {
            return Some(lv.to_bits());
        }
        let (ts, vs) = self.decode_all().ok()?;
        let i = ts.binary_search(&t).ok()?;
        Some(vs[i].to_bits())
    }

    /// Every sample, in time order.
    pub fn decode_all(&self) -> Result<(Vec<i64>, Vec<f64>), String> {
        let (mut ts, mut vs) = match &self.packed {
            Some(p) => columns::decode(p)?,
            None => (Vec::new(), Vec::new()),
        };
        for c in framed(&self.sealed) {
            decode_chunk(c?, &mut ts, &mut vs);
        }
        let mut open = Vec::with_capacity(self.open.encoded_len());
        self.open.write_to(&mut open);
        decode_chunk(&open, &mut ts, &mut vs);
        Ok((ts, vs))
    }

    /// Inserts a sample older than the newest one and not stored yet (the caller checked
    /// both), re-encoding the tier piece that covers `t`.
    pub fn insert(&mut self, t: i64, v: f64) -> Result<(), String> {
        debug_assert!(t < self.max_t);
        self.min_t = self.min_t.min(t);
        // The open chunk when it starts at or before t.
        if let Some(first) = self.open_first()
            && first <= t
        {
            let mut c = Vec::new();
            self.open.write_to(&mut c);
            let (mut ts, mut vs) = (Vec::new(), Vec::new());
            decode_chunk(&c, &mut ts, &mut vs);
            let i = ts.partition_point(|&x| x < t);
            ts.insert(i, t);
            vs.insert(i, v);
            if ts.len() > MAX_SAMPLES {
                let mut sealed = self.sealed.to_vec();
                encode_framed(&ts[..MAX_SAMPLES], &vs[..MAX_SAMPLES], &mut sealed);
                self.sealed = sealed.into_boxed_slice();
                self.open = appender_of(&ts[MAX_SAMPLES..], &vs[MAX_SAMPLES..]);
            } else {
                self.open = appender_of(&ts, &vs);
            }
            return Ok(());
        }
        // The last sealed chunk starting at or before t; the first one when t precedes
        // them all and nothing is packed.
        let chunks: Vec<&[u8]> = framed(&self.sealed).collect::<Result<_, _>>()?;
        let starts: Vec<i64> = chunks
            .iter()
            .map(|c| chunk::first_timestamp(c).unwrap_or(i64::MIN))
            .collect();
        let covering = starts.iter().rposition(|&s| s <= t);
        let target = match covering {
            Some(i) => Some(i),
            None if self.packed.is_none() && !chunks.is_empty() => Some(0),
            None => None,
        };
        if let Some(i) = target {
            let (mut ts, mut vs) = (Vec::new(), Vec::new());
            decode_chunk(chunks[i], &mut ts, &mut vs);
            let at = ts.partition_point(|&x| x < t);
            ts.insert(at, t);
            vs.insert(at, v);
            let mut sealed = Vec::with_capacity(self.sealed.len() + 32);
            for c in &chunks[..i] {
                push_framed(&mut sealed, c);
            }
            encode_framed(&ts, &vs, &mut sealed);
            for c in &chunks[i + 1..] {
                push_framed(&mut sealed, c);
            }
            self.sealed = sealed.into_boxed_slice();
            return Ok(());
        }
        if self.packed.is_some() {
            let (mut ts, mut vs) = columns::decode(self.packed.as_deref().unwrap_or_default())?;
            let at = ts.partition_point(|&x| x < t);
            ts.insert(at, t);
            vs.insert(at, v);
            self.packed = Some(Arc::from(columns::encode(&ts, &vs, columns::HEAD_LEVEL)?));
            return Ok(());
        }
        // Only an open chunk starting after t (or nothing): t goes first in it.
        let mut c = Vec::new();
        self.open.write_to(&mut c);
        let (mut ts, mut vs) = (vec![t], vec![v]);
        decode_chunk(&c, &mut ts, &mut vs);
        if ts.len() > MAX_SAMPLES {
            let mut sealed = self.sealed.to_vec();
            encode_framed(&ts[..MAX_SAMPLES], &vs[..MAX_SAMPLES], &mut sealed);
            self.sealed = sealed.into_boxed_slice();
            self.open = appender_of(&ts[MAX_SAMPLES..], &vs[MAX_SAMPLES..]);
        } else {
            self.open = appender_of(&ts, &vs);
        }
        Ok(())
    }

    /// Copies what a read of `[mint, maxt]` needs (whole tier pieces; the decoder filters).
    pub fn read(&self, mint: i64, maxt: i64) -> SeriesData {
        let mut data = SeriesData::default();
        if self.is_empty() || self.max_t < mint || self.min_t > maxt {
            return data;
        }
        let open_first = self.open_first();
        // Each piece ends before the next one starts.
        let mut pieces = framed(&self.sealed)
            .map_while(Result::ok)
            .map(|c| (chunk::first_timestamp(c).unwrap_or(i64::MIN), c))
            .peekable();
        let first_unpacked = pieces.peek().map(|p| p.0).or(open_first);
        if self.packed.is_some() && first_unpacked.unwrap_or(i64::MAX) > mint {
            data.packed.clone_from(&self.packed);
        }
        while let Some((start, c)) = pieces.next() {
            let next = pieces
                .peek()
                .map(|p| p.0)
                .or(open_first)
                .unwrap_or(i64::MAX);
            if start <= maxt && next > mint {
                push_framed(&mut data.chunks, c);
            }
        }
        if let Some(first) = open_first
            && first <= maxt
        {
            data.chunks.reserve(2 + self.open.encoded_len());
            data.chunks
                .extend_from_slice(&(self.open.encoded_len() as u16).to_le_bytes());
            self.open.write_to(&mut data.chunks);
        }
        data
    }

    /// Moves sealed Gorilla chunks into the packed columns. Returns whether it did work.
    pub fn pack(&mut self) -> Result<bool, String> {
        let Some(job) = self.pack_job() else {
            return Ok(false);
        };
        let packed = job.run()?;
        Ok(self.commit_pack(&job, packed))
    }

    /// What packing needs, copied (cheaply: the packed run is shared) so that the
    /// compression runs without the head lock.
    pub fn pack_job(&self) -> Option<PackJob> {
        (!self.sealed.is_empty()).then(|| PackJob {
            packed: self.packed.clone(),
            sealed: self.sealed.clone(),
        })
    }

    /// Installs the result of a [`PackJob`] unless the series changed underneath in a way
    /// that invalidates it (an out-of-order insert into the packed run or the chunks it
    /// packed); chunks sealed meanwhile stay sealed. Returns whether it was installed.
    pub fn commit_pack(&mut self, job: &PackJob, packed: Arc<[u8]>) -> bool {
        let same_packed = match (&self.packed, &job.packed) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same_packed || !self.sealed.starts_with(&job.sealed) {
            return false;
        }
        self.packed = Some(packed);
        self.sealed = self.sealed[job.sealed.len()..].into();
        true
    }

    /// The samples before `cut` (what a block of the head's oldest range receives).
    pub fn read_before(&self, cut: i64) -> Result<(Vec<i64>, Vec<f64>), String> {
        let (mut ts, mut vs) = (Vec::new(), Vec::new());
        if self.min_t < cut {
            self.read(i64::MIN, cut - 1)
                .decode_into(i64::MIN, cut - 1, &mut ts, &mut vs)?;
        }
        Ok((ts, vs))
    }

    /// Drops the samples before `cut` (they are in a block now).
    pub fn truncate_before(&mut self, cut: i64) -> Result<(), String> {
        if self.is_empty() || self.min_t >= cut {
            return Ok(());
        }
        if self.max_t < cut {
            self.packed = None;
            self.sealed = Box::default();
            self.open = ChunkAppender::new();
            self.min_t = i64::MAX;
            return Ok(());
        }
        if let Some(p) = &self.packed {
            let (ts, vs) = columns::decode(p)?;
            let keep = ts.partition_point(|&t| t < cut);
            self.packed = if keep == ts.len() {
                None
            } else {
                Some(Arc::from(columns::encode(
                    &ts[keep..],
                    &vs[keep..],
                    columns::HEAD_LEVEL,
                )?))
            };
        }
        if !self.sealed.is_empty() {
            let mut sealed = Vec::with_capacity(self.sealed.len());
            for c in framed(&self.sealed) {
                let c = c?;
                let (mut ts, mut vs) = (Vec::new(), Vec::new());
                decode_chunk(c, &mut ts, &mut vs);
                if ts.first().is_some_and(|&t| t >= cut) {
                    push_framed(&mut sealed, c);
                    continue;
                }
                let keep = ts.partition_point(|&t| t < cut);
                if keep < ts.len() {
                    encode_framed(&ts[keep..], &vs[keep..], &mut sealed);
                }
            }
            self.sealed = sealed.into_boxed_slice();
        }
        if self.open_first().is_some_and(|f| f < cut) {
            let mut c = Vec::new();
            self.open.write_to(&mut c);
            let (mut ts, mut vs) = (Vec::new(), Vec::new());
            decode_chunk(&c, &mut ts, &mut vs);
            let keep = ts.partition_point(|&t| t < cut);
            self.open = appender_of(&ts[keep..], &vs[keep..]);
        }
        let (ts, _) = self.decode_all()?;
        self.min_t = ts.first().copied().unwrap_or(i64::MAX);
        Ok(())
    }

    /// Number of samples held.
    pub fn sample_count(&self) -> usize {
        let packed = self
            .packed
            .as_deref()
            .map_or(0, |p| columns::count(p).unwrap_or(0));
        let sealed: usize = framed(&self.sealed)
            .map_while(Result::ok)
            .map(|c| {
                c.get(..2)
                    .map_or(0, |h| usize::from(u16::from_be_bytes([h[0], h[1]])))
            })
            .sum();
        packed + sealed + self.open.len()
    }

    /// Bytes of encoded sample data (packed, sealed and open).
    pub fn data_bytes(&self) -> usize {
        self.packed.as_deref().map_or(0, <[u8]>::len) + self.sealed.len() + self.open.encoded_len()
    }

    /// Heap bytes this series holds, allocator overhead estimated at 16 bytes a block.
    pub fn heap_bytes(&self) -> usize {
        const MALLOC: usize = 16;
        let mut n = self.labels.len() * 4 + MALLOC;
        if let Some(p) = &self.packed {
            n += p.len() + 16 + MALLOC;
        }
        if !self.sealed.is_empty() {
            n += self.sealed.len() + MALLOC;
        }
        if self.open.heap_bytes() > 0 {
            n += self.open.heap_bytes() + MALLOC;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(s: &MemSeries) -> Vec<(i64, u64)> {
        let (ts, vs) = s.decode_all().unwrap();
        ts.into_iter().zip(vs.iter().map(|v| v.to_bits())).collect()
    }

    #[test]
    fn tiers_append_insert_pack_and_truncate_keep_order() {
        let mut s = MemSeries::new(1, Box::new([]));
        let mut want = Vec::new();
        for i in 0..400i64 {
            s.append(i * 10, i as f64);
            want.push((i * 10, (i as f64).to_bits()));
        }
        assert!(!s.sealed.is_empty());
        // Out-of-order inserts into the open chunk, a sealed chunk and (after packing) the
        // packed run.
        for t in [3985, 1505, 5] {
            s.insert(t, -1.0).unwrap();
            want.push((t, (-1.0f64).to_bits()));
        }
        want.sort_by_key(|x| x.0);
        assert_eq!(samples(&s), want);
        assert!(s.pack().unwrap());
        assert!(s.sealed.is_empty());
        s.insert(7, -2.0).unwrap();
        want.push((7, (-2.0f64).to_bits()));
        want.sort_by_key(|x| x.0);
        assert_eq!(samples(&s), want);
        assert_eq!(s.value_at(1505), Some((-1.0f64).to_bits()));
        assert_eq!(s.value_at(1506), None);
        assert_eq!(s.sample_count(), want.len());

        let (bt, _) = s.read_before(2000).unwrap();
        assert_eq!(bt.len(), want.iter().filter(|x| x.0 < 2000).count());
        s.truncate_before(2000).unwrap();
        want.retain(|x| x.0 >= 2000);
        assert_eq!(samples(&s), want);
        assert_eq!(s.min_t, 2000);

        let mut ts = Vec::new();
        let mut vs = Vec::new();
        s.read(3000, 3100)
            .decode_into(3000, 3100, &mut ts, &mut vs)
            .unwrap();
        assert_eq!(ts, (300..=310).map(|i| i * 10).collect::<Vec<_>>());

        let (p, sealed, open) = s.parts();
        let r = MemSeries::from_parts(
            1,
            Box::new([]),
            p.map(<[u8]>::to_vec),
            sealed.to_vec(),
            &open,
        )
        .unwrap();
        assert_eq!(samples(&r), want);
        assert_eq!((r.min_t, r.max_t), (s.min_t, s.max_t));
        s.truncate_before(i64::MAX).unwrap();
        assert!(s.is_empty());
    }

    #[test]
    fn insert_before_everything_with_only_an_open_chunk() {
        let mut s = MemSeries::new(1, Box::new([]));
        s.append(100, 1.0);
        s.append(200, 2.0);
        s.insert(50, 0.5).unwrap();
        assert_eq!(
            samples(&s).iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![50, 100, 200]
        );
        assert_eq!(s.min_t, 50);
    }
}

#[cfg(test)]
mod size_tests {
    /// The fixed part of every head series: keep it small (it is ~15 % of the memory per
    /// series at 100k series).
    #[test]
    fn head_series_struct_stays_small() {
        assert!(std::mem::size_of::<super::MemSeries>() <= 128);
        assert!(std::mem::size_of::<crate::chunk::ChunkAppender>() <= 56);
    }
}
