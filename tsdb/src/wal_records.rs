//! The records the store writes to its write-ahead log (crate `sightline-wal`, which frames,
//! checksums and numbers them; see its segment format).
//!
//! One record per appended batch, kind [`KIND_APPEND`]:
//!
//! ```text
//! payload    := version:u8 (= 1) · tenant:str · nseries:uvarint · series_def* · nsets:uvarint · set*
//! series_def := id:uvarint · nlabels:uvarint · (name:str · value:str)*      a series created by this batch
//! set        := id:uvarint · n:uvarint · (dt:svarint · v:u64 LE)ⁿ           accepted samples of one series
//! str        := len:uvarint · UTF-8 bytes
//! ```
//!
//! Varints are LEB128, signed ones zig-zag. `dt` is the timestamp minus the previous one of
//! the set (the first is absolute), so a run of 15 s samples costs 3 bytes of time each;
//! values are the raw `f64` bits, so staleness markers replay bit for bit. Series ids are
//! the head's (global, never reused while a head snapshot or WAL refers to them); a
//! series is always defined in the same or an earlier record than its samples. Only
//! accepted samples are written: replay re-applies them without re-validating limits.

use sightline_model::{Labels, Sample, TenantId};

use crate::codec::{Reader, put_str, put_svarint, put_uvarint};

/// Record kind of an appended batch.
pub const KIND_APPEND: u8 = 1;
const VERSION: u8 = 1;

/// Encodes one batch's record.
pub fn encode_append(
    tenant: &TenantId,
    new_series: &[(u32, &Labels)],
    sets: &[(u32, &[Sample])],
) -> Vec<u8> {
    let samples: usize = sets.iter().map(|(_, s)| s.len()).sum();
    let mut out = Vec::with_capacity(32 + new_series.len() * 64 + sets.len() * 4 + samples * 12);
    out.push(VERSION);
    put_str(&mut out, tenant.as_str());
    put_uvarint(&mut out, new_series.len() as u64);
    for (id, labels) in new_series {
        put_uvarint(&mut out, u64::from(*id));
        put_uvarint(&mut out, labels.len() as u64);
        for (k, v) in labels.iter() {
            put_str(&mut out, k);
            put_str(&mut out, v);
        }
    }
    put_uvarint(&mut out, sets.len() as u64);
    for (id, samples) in sets {
        put_uvarint(&mut out, u64::from(*id));
        put_uvarint(&mut out, samples.len() as u64);
        let mut prev = 0i64;
        for s in samples.iter() {
            put_svarint(&mut out, s.t.wrapping_sub(prev));
            prev = s.t;
            out.extend_from_slice(&s.v.to_bits().to_le_bytes());
        }
    }
    out
}

/// A decoded append record.
#[derive(Debug, PartialEq)]
pub struct AppendRecord {
    pub tenant: TenantId,
    pub new_series: Vec<(u32, Labels)>,
    pub sets: Vec<(u32, Vec<Sample>)>,
}

pub fn decode_append(payload: &[u8]) -> Result<AppendRecord, String> {
    let mut r = Reader::new(payload);
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(format!("unknown append record version {version}"));
    }
    let tenant = TenantId::new(r.str("tenant")?).map_err(|e| format!("tenant: {e}"))?;
    let limit = payload.len();
    let n = r.len("series count", limit)?;
    let mut new_series = Vec::with_capacity(n);
    for _ in 0..n {
        let id = r.u32_varint("series id")?;
        let nl = r.len("label count", limit)?;
        let mut pairs = Vec::with_capacity(nl);
        for _ in 0..nl {
            pairs.push((r.str("label name")?, r.str("label value")?));
        }
        new_series.push((id, Labels::from_pairs(pairs)));
    }
    let n = r.len("sample set count", limit)?;
    let mut sets = Vec::with_capacity(n);
    for _ in 0..n {
        let id = r.u32_varint("series id")?;
        let ns = r.len("sample count", limit / 9)?;
        let mut samples = Vec::with_capacity(ns);
        let mut t = 0i64;
        for _ in 0..ns {
            t = t.wrapping_add(r.svarint("timestamp")?);
            let v = f64::from_bits(r.u64_le("value")?);
            samples.push(Sample { t, v });
        }
        sets.push((id, samples));
    }
    if !r.is_empty() {
        return Err(format!("{} trailing bytes", payload.len() - r.pos()));
    }
    Ok(AppendRecord {
        tenant,
        new_series,
        sets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_model::stale_nan;

    #[test]
    fn append_record_round_trips() {
        let tenant = TenantId::new("team-a").unwrap();
        let labels = Labels::from_pairs([("__name__", "up"), ("job", "x")]);
        let sets = [
            (
                7,
                vec![
                    Sample { t: 1_000, v: 1.0 },
                    Sample {
                        t: 16_000,
                        v: stale_nan(),
                    },
                    Sample {
                        t: -5,
                        v: f64::INFINITY,
                    },
                ],
            ),
            (8, vec![]),
        ];
        let refs: Vec<(u32, &[Sample])> = sets.iter().map(|(id, s)| (*id, s.as_slice())).collect();
        let bytes = encode_append(&tenant, &[(7, &labels)], &refs);
        let rec = decode_append(&bytes).unwrap();
        assert_eq!(rec.tenant, tenant);
        assert_eq!(rec.new_series, vec![(7, labels)]);
        assert_eq!(rec.sets.len(), 2);
        assert_eq!(rec.sets[0].1[1].v.to_bits(), stale_nan().to_bits());
        assert_eq!(rec.sets[0].1[2].t, -5);
        assert!(decode_append(&bytes[..bytes.len() - 3]).is_err());
    }
}
