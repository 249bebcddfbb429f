//! Label-set helpers the evaluator needs: shared label sets, Prometheus's "metadata" labels,
//! its text form of a label set, and its label-set hash (used by `limit_ratio`).

use std::sync::Arc;

use sightline_model::{Labels, METRIC_NAME_LABEL};

/// A label set shared between the steps and series that carry it: cloning is a reference
/// count, so evaluating a range query does not copy label sets per step.
pub(crate) type Lbls = Arc<Labels>;

/// Labels that describe the metric rather than the series; PromQL drops them together with
/// the name when an operation changes what the value means (`schema.IsMetadataLabel`).
const METADATA_LABELS: [&str; 3] = [METRIC_NAME_LABEL, "__type__", "__unit__"];

pub(crate) fn metric_name(l: &Labels) -> &str {
    l.get(METRIC_NAME_LABEL).unwrap_or("")
}

/// The label set without `__name__` (and the other metadata labels).
pub(crate) fn drop_metric_name(l: &Labels) -> Labels {
    if !l.iter().any(|(k, _)| METADATA_LABELS.contains(&k)) {
        return l.clone();
    }
    Labels::from_pairs(l.iter().filter(|(k, _)| !METADATA_LABELS.contains(k)))
}

/// The label set with `name` set to `value` (removed when `value` is empty).
pub(crate) fn set(l: &Labels, name: &str, value: &str) -> Labels {
    Labels::from_pairs(
        l.iter()
            .filter(|(k, _)| *k != name)
            .chain(std::iter::once((name, value))),
    )
}

/// Prometheus's text form of a label set (`labels.String()`): `{__name__="up", job="x"}`.
pub(crate) fn to_prom_string(l: &Labels) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in l.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if sightline_model::is_valid_label_name(k) {
            out.push_str(k);
        } else {
            out.push_str(&go_quote(k));
        }
        out.push('=');
        out.push_str(&go_quote(v));
    }
    out.push('}');
    out
}

/// A string quoted like Go's `strconv.Quote`.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Prometheus's `labels.Hash()`: XXH64 of `name 0xff value 0xff …`. `limit_ratio` samples
/// series by this hash, so using the same one selects the same series as Prometheus.
pub(crate) fn prom_hash(l: &Labels) -> u64 {
    let mut buf = Vec::with_capacity(128);
    for (k, v) in l.iter() {
        buf.extend_from_slice(k.as_bytes());
        buf.push(0xff);
        buf.extend_from_slice(v.as_bytes());
        buf.push(0xff);
    }
    xxh64(&buf, 0)
}

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

fn xx_round(acc: u64, input: u64) -> u64 {
    acc.wrapping_add(input.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

fn xx_merge(acc: u64, val: u64) -> u64 {
    (acc ^ xx_round(0, val)).wrapping_mul(P1).wrapping_add(P4)
}

fn read64(d: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(d[i..i + 8].try_into().expect("8 bytes"))
}

fn read32(d: &[u8], i: usize) -> u64 {
    u32::from_le_bytes(d[i..i + 4].try_into().expect("4 bytes")) as u64
}

/// XXH64 (the hash Prometheus uses for label sets).
pub(crate) fn xxh64(d: &[u8], seed: u64) -> u64 {
    let len = d.len();
    let mut i = 0;
    let mut h = if len >= 32 {
        let mut v1 = seed.wrapping_add(P1).wrapping_add(P2);
        let mut v2 = seed.wrapping_add(P2);
        let mut v3 = seed;
        let mut v4 = seed.wrapping_sub(P1);
        while i + 32 <= len {
            v1 = xx_round(v1, read64(d, i));
            v2 = xx_round(v2, read64(d, i + 8));
            v3 = xx_round(v3, read64(d, i + 16));
            v4 = xx_round(v4, read64(d, i + 24));
            i += 32;
        }
        let mut h = v1
            .rotate_left(1)
            .wrapping_add(v2.rotate_left(7))
            .wrapping_add(v3.rotate_left(12))
            .wrapping_add(v4.rotate_left(18));
        h = xx_merge(h, v1);
        h = xx_merge(h, v2);
        h = xx_merge(h, v3);
        xx_merge(h, v4)
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(len as u64);
    while i + 8 <= len {
        h ^= xx_round(0, read64(d, i));
        h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
        i += 8;
    }
    if i + 4 <= len {
        h ^= read32(d, i).wrapping_mul(P1);
        h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
        i += 4;
    }
    while i < len {
        h ^= (d[i] as u64).wrapping_mul(P5);
        h = h.rotate_left(11).wrapping_mul(P1);
        i += 1;
    }
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^= h >> 32;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxh64_matches_reference_vectors() {
        assert_eq!(xxh64(b"", 0), 0xEF46_DB37_51D8_E999);
        assert_eq!(xxh64(b"a", 0), 0xD24E_C4F1_A98C_6E5B);
        assert_eq!(xxh64(b"abc", 0), 0x44BC_2CF5_AD77_0999);
        // Longer than one 32-byte stripe.
        assert_eq!(
            xxh64(b"Nobody inspects the spammish repetition", 0),
            0xFBCE_A83C_8A37_8BF1
        );
    }

    #[test]
    fn prom_string_quotes_like_go() {
        let l = Labels::from_pairs([("__name__", "up"), ("a", "x\"y")]);
        assert_eq!(to_prom_string(&l), r#"{__name__="up", a="x\"y"}"#);
    }
}
