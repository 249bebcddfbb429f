//! Remote-write payload → Sightline model, with per-series validation.
//!
//! The body is a `prometheus.WriteRequest` ([`super::proto`]) compressed with snappy's
//! **block** format (`snap::raw`, not the framed stream format). An invalid snappy block, a
//! block announcing more than the decompressed limit, or invalid protobuf refuses the whole
//! request ([`DecodeError`]). Everything else is checked series by series, like Mimir's
//! distributor: a bad series is refused on its own (reason in brackets, as used by the
//! metrics) and the other series of the request are kept.
//!
//! - [`too_many_labels`]: more labels than the limit (default 30, Mimir's
//!   `max_label_names_per_series`);
//! - [`missing_metric_name`]: no `__name__` label, or an empty one;
//! - [`invalid_metric_name`]: `__name__` not `[a-zA-Z_:][a-zA-Z0-9_:]*`;
//! - [`invalid_label_name`]: a name not `[a-zA-Z_][a-zA-Z0-9_]*`;
//! - [`label_name_too_long`] / [`label_value_too_long`]: over 1024 / 2048 bytes (Mimir's
//!   `max_label_name_length` / `max_label_value_length`);
//! - [`duplicate_label_name`]: the same name twice in one series;
//! - [`invalid_utf8`]: a label value that is not UTF-8;
//! - [`native_histogram_unsupported`]: the series carries native histogram samples, which the
//!   store cannot hold. The whole series is refused (its float samples too: a series is
//!   either float or histogram in Prometheus) and named in the answer, rather than dropped
//!   silently, so that a sender configured with `send_native_histograms` learns it.
//!
//! Labels with an empty value are dropped (an empty label equals an absent one). Exemplars and
//! metadata are ignored. NaN and ±Inf are ordinary values; the staleness NaN passes through
//! bit for bit. Sample order within a series is kept as sent: the store judges order.
//!
//! [`too_many_labels`]: REASON_TOO_MANY_LABELS
//! [`missing_metric_name`]: REASON_MISSING_METRIC_NAME
//! [`invalid_metric_name`]: REASON_INVALID_METRIC_NAME
//! [`invalid_label_name`]: REASON_INVALID_LABEL_NAME
//! [`label_name_too_long`]: REASON_LABEL_NAME_TOO_LONG
//! [`label_value_too_long`]: REASON_LABEL_VALUE_TOO_LONG
//! [`duplicate_label_name`]: REASON_DUPLICATE_LABEL_NAME
//! [`invalid_utf8`]: REASON_INVALID_UTF8
//! [`native_histogram_unsupported`]: REASON_NATIVE_HISTOGRAM

use prost::Message;
use sightline_model::{Labels, METRIC_NAME_LABEL, MetricSeries, Sample, is_valid_label_name};

use super::proto::{Label, TimeSeries, WriteRequest};

pub const REASON_TOO_MANY_LABELS: &str = "too_many_labels";
pub const REASON_MISSING_METRIC_NAME: &str = "missing_metric_name";
pub const REASON_INVALID_METRIC_NAME: &str = "invalid_metric_name";
pub const REASON_INVALID_LABEL_NAME: &str = "invalid_label_name";
pub const REASON_LABEL_NAME_TOO_LONG: &str = "label_name_too_long";
pub const REASON_LABEL_VALUE_TOO_LONG: &str = "label_value_too_long";
pub const REASON_DUPLICATE_LABEL_NAME: &str = "duplicate_label_name";
pub const REASON_INVALID_UTF8: &str = "invalid_utf8";
pub const REASON_NATIVE_HISTOGRAM: &str = "native_histogram_unsupported";

/// Longest label text shown in a refusal message; longer label sets are cut.
const SHOWN_LABELS_BYTES: usize = 256;

/// The remote-write receiver's configuration, `[remote_write]` in the server's TOML: the
/// limits applied to each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// Largest body accepted as sent (snappy-compressed), in bytes. Default 64 MiB.
    pub max_body_bytes: usize,
    /// Largest protobuf after snappy decompression, in bytes. Default 64 MiB.
    pub max_decompressed_bytes: usize,
    /// Most labels in one series, `__name__` included. Default 30.
    pub max_labels_per_series: usize,
    /// Longest label name, in bytes. Default 1024.
    pub max_label_name_bytes: usize,
    /// Longest label value, in bytes. Default 2048.
    pub max_label_value_bytes: usize,
}

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        Self {
            // The server's limit before the receiver owned its configuration (its
            // `limits.max_request_bytes`), kept so that senders see no change.
            max_body_bytes: 64 << 20,
            max_decompressed_bytes: 64 << 20,
            max_labels_per_series: 30,
            max_label_name_bytes: 1024,
            max_label_value_bytes: 2048,
        }
    }
}

/// Why a payload could not be decoded at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid snappy block: {0}")]
    Snappy(String),
    #[error("snappy block decompresses to {len} bytes, the limit is {limit}")]
    TooLarge { len: usize, limit: usize },
    #[error("invalid protobuf WriteRequest: {0}")]
    Protobuf(String),
}

/// One series refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The metrics reason, e.g. `invalid_label_name`.
    pub reason: &'static str,
    /// Samples (float and histogram) the series carried.
    pub samples: u64,
    /// What and where, e.g. `series 3 {__name__="up", a-b="x"}: invalid label name "a-b"`.
    pub message: String,
}

/// A decoded and validated write request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    /// Valid series that carry samples.
    pub series: Vec<MetricSeries>,
    /// Samples in the request (float and histogram), accepted or not.
    pub received_samples: u64,
    /// Samples in [`Decoded::series`].
    pub valid_samples: u64,
    /// Refused series, in request order.
    pub rejections: Vec<Rejection>,
}

/// Decompresses, decodes and validates a remote-write body.
pub fn decode_write_request(
    body: &[u8],
    limits: &RemoteWriteConfig,
) -> Result<Decoded, DecodeError> {
    let len = snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if len > limits.max_decompressed_bytes {
        return Err(DecodeError::TooLarge {
            len,
            limit: limits.max_decompressed_bytes,
        });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| DecodeError::Snappy(e.to_string()))?;
    let request =
        WriteRequest::decode(raw.as_slice()).map_err(|e| DecodeError::Protobuf(e.to_string()))?;
    drop(raw);
    Ok(validate_request(request, limits))
}

/// Validates a decoded request series by series.
pub fn validate_request(request: WriteRequest, limits: &RemoteWriteConfig) -> Decoded {
    let mut out = Decoded::default();
    out.series.reserve(request.timeseries.len());
    for (index, ts) in request.timeseries.into_iter().enumerate() {
        let samples = (ts.samples.len() + ts.histograms.len()) as u64;
        out.received_samples += samples;
        match convert_series(ts, limits) {
            Ok(Some(series)) => {
                out.valid_samples += samples;
                out.series.push(series);
            }
            Ok(None) => {}
            Err((reason, labels, what)) => out.rejections.push(Rejection {
                reason,
                samples,
                message: format!("series {index} {labels}: {what}"),
            }),
        }
    }
    out
}

/// A refused series: reason, its labels as shown to the client, what is wrong.
type Refusal = (&'static str, String, String);

/// Validates one series; `None` when it is valid but carries no sample.
fn convert_series(
    ts: TimeSeries,
    limits: &RemoteWriteConfig,
) -> Result<Option<MetricSeries>, Refusal> {
    let refuse = |reason, what: String| (reason, show_labels(&ts.labels), what);
    if ts.labels.len() > limits.max_labels_per_series {
        return Err(refuse(
            REASON_TOO_MANY_LABELS,
            format!(
                "{} labels, the limit is {} (max_labels_per_series)",
                ts.labels.len(),
                limits.max_labels_per_series
            ),
        ));
    }
    match ts
        .labels
        .iter()
        .find(|l| l.name == METRIC_NAME_LABEL.as_bytes())
    {
        None => {
            return Err(refuse(
                REASON_MISSING_METRIC_NAME,
                "no __name__ label".into(),
            ));
        }
        Some(l) if l.value.is_empty() => {
            return Err(refuse(
                REASON_MISSING_METRIC_NAME,
                "empty __name__ label".into(),
            ));
        }
        Some(l) if !std::str::from_utf8(&l.value).is_ok_and(is_valid_metric_name) => {
            return Err(refuse(
                REASON_INVALID_METRIC_NAME,
                format!(
                    "invalid metric name {:?}: must match [a-zA-Z_:][a-zA-Z0-9_:]*",
                    String::from_utf8_lossy(&l.value)
                ),
            ));
        }
        Some(_) => {}
    }
    for l in &ts.labels {
        // One UTF-8 check per name (this loop is the hot path of every write).
        let Some(name) = std::str::from_utf8(&l.name)
            .ok()
            .filter(|n| is_valid_label_name(n))
        else {
            return Err(refuse(
                REASON_INVALID_LABEL_NAME,
                format!(
                    "invalid label name {:?}: must match [a-zA-Z_][a-zA-Z0-9_]*",
                    String::from_utf8_lossy(&l.name)
                ),
            ));
        };
        if l.name.len() > limits.max_label_name_bytes {
            return Err(refuse(
                REASON_LABEL_NAME_TOO_LONG,
                format!(
                    "label name {}… is {} bytes long, the limit is {} (max_label_name_length)",
                    shorten(name, 64),
                    l.name.len(),
                    limits.max_label_name_bytes
                ),
            ));
        }
        if std::str::from_utf8(&l.value).is_err() {
            return Err(refuse(
                REASON_INVALID_UTF8,
                format!("value of label {name:?} is not valid UTF-8"),
            ));
        }
        if l.value.len() > limits.max_label_value_bytes {
            return Err(refuse(
                REASON_LABEL_VALUE_TOO_LONG,
                format!(
                    "value of label {name:?} is {} bytes long, the limit is {} (max_label_value_length)",
                    l.value.len(),
                    limits.max_label_value_bytes
                ),
            ));
        }
    }
    if let Some(dup) = duplicate_name(&ts.labels) {
        return Err(refuse(
            REASON_DUPLICATE_LABEL_NAME,
            format!("duplicate label name {:?}", String::from_utf8_lossy(dup)),
        ));
    }
    if !ts.histograms.is_empty() {
        return Err(refuse(
            REASON_NATIVE_HISTOGRAM,
            format!(
                "{} native histogram samples: native histograms are not supported, send classic histograms",
                ts.histograms.len()
            ),
        ));
    }
    if ts.samples.is_empty() {
        return Ok(None);
    }
    let pairs = ts.labels.into_iter().map(|l| {
        // Both checked above: cannot fail.
        let name = String::from_utf8(l.name).unwrap_or_default();
        let value = String::from_utf8(l.value).unwrap_or_default();
        (name, value)
    });
    Ok(Some(MetricSeries {
        labels: Labels::from_pairs(pairs),
        samples: ts
            .samples
            .iter()
            .map(|s| Sample {
                t: s.timestamp,
                v: s.value,
            })
            .collect(),
    }))
}

/// Whether `name` is a valid Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && bytes.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// The first label name that appears twice, if any.
fn duplicate_name(labels: &[Label]) -> Option<&[u8]> {
    let mut names: Vec<&[u8]> = labels.iter().map(|l| l.name.as_slice()).collect();
    names.sort_unstable();
    names.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

/// The labels of a series as sent, `{a="1", b="2"}`, cut to a readable length.
fn show_labels(labels: &[Label]) -> String {
    let mut out = String::from("{");
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&String::from_utf8_lossy(&l.name));
        out.push('=');
        out.push_str(&format!("{:?}", String::from_utf8_lossy(&l.value)));
        if out.len() > SHOWN_LABELS_BYTES {
            return format!("{}…}}", shorten(&out, SHOWN_LABELS_BYTES));
        }
    }
    out.push('}');
    out
}

/// `s` cut to at most `max` bytes on a character boundary.
fn shorten(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::proto::{Histogram, HistogramCount, Sample as PbSample, encode_snappy};
    use super::*;

    pub(crate) fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
        TimeSeries {
            labels: labels.iter().map(|(k, v)| Label::new(*k, *v)).collect(),
            samples: samples
                .iter()
                .map(|&(t, v)| PbSample {
                    value: v,
                    timestamp: t,
                })
                .collect(),
            ..Default::default()
        }
    }

    pub(crate) fn body(series: Vec<TimeSeries>) -> Vec<u8> {
        encode_snappy(&WriteRequest {
            timeseries: series,
            ..Default::default()
        })
    }

    fn decode(series: Vec<TimeSeries>) -> Decoded {
        decode_write_request(&body(series), &RemoteWriteConfig::default()).unwrap()
    }

    #[test]
    fn valid_series_become_model_series() {
        let d = decode(vec![
            series(
                &[
                    ("__name__", "http_requests_total"),
                    ("job", "api"),
                    ("empty", ""),
                ],
                &[(1000, 1.0), (2000, f64::INFINITY)],
            ),
            series(
                &[("__name__", "up")],
                &[(1000, sightline_model::stale_nan())],
            ),
            series(&[("__name__", "no_samples")], &[]),
        ]);
        assert!(d.rejections.is_empty());
        assert_eq!((d.received_samples, d.valid_samples), (3, 3));
        assert_eq!(d.series.len(), 2, "series without samples are skipped");
        assert_eq!(
            d.series[0].labels.to_canonical(),
            r#"{__name__="http_requests_total", job="api"}"#
        );
        assert_eq!(
            d.series[0].samples[1],
            Sample {
                t: 2000,
                v: f64::INFINITY
            }
        );
        assert!(sightline_model::is_stale_nan(d.series[1].samples[0].v));
    }

    #[test]
    fn every_bad_series_is_refused_alone_with_what_and_where() {
        let long = "x".repeat(2049);
        let many: Vec<(String, String)> = (0..31)
            .map(|i| (format!("l{i}"), "v".to_string()))
            .collect();
        let mut many_ref: Vec<(&str, &str)> =
            many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        many_ref[0] = ("__name__", "m");
        let mut bad_utf8 = series(&[("__name__", "m"), ("a", "")], &[(1, 1.0)]);
        bad_utf8.labels[1].value = vec![0xff, 0xfe];
        let mut hist = series(&[("__name__", "h")], &[]);
        hist.histograms.push(Histogram {
            count: Some(HistogramCount::CountInt(1)),
            ..Default::default()
        });
        let d = decode(vec![
            series(&[("__name__", "ok")], &[(1, 1.0)]),
            series(&[("job", "x")], &[(1, 1.0)]),
            series(&[("__name__", "1bad")], &[(1, 1.0)]),
            series(&[("__name__", "m"), ("a-b", "x")], &[(1, 1.0), (2, 2.0)]),
            series(&[("__name__", "m"), ("a", "1"), ("a", "2")], &[(1, 1.0)]),
            series(&[("__name__", "m"), ("a", &long)], &[(1, 1.0)]),
            series(&many_ref, &[(1, 1.0)]),
            bad_utf8,
            hist,
            series(&[("__name__", "")], &[(1, 1.0)]),
        ]);
        assert_eq!(d.series.len(), 1);
        assert_eq!(d.valid_samples, 1);
        assert_eq!(d.received_samples, 11);
        let got: Vec<(&str, &str)> = d
            .rejections
            .iter()
            .map(|r| (r.reason, r.message.as_str()))
            .collect();
        assert_eq!(
            got[0],
            (
                REASON_MISSING_METRIC_NAME,
                r#"series 1 {job="x"}: no __name__ label"#
            )
        );
        assert_eq!(
            got[1],
            (
                REASON_INVALID_METRIC_NAME,
                r#"series 2 {__name__="1bad"}: invalid metric name "1bad": must match [a-zA-Z_:][a-zA-Z0-9_:]*"#
            )
        );
        assert_eq!(
            got[2],
            (
                REASON_INVALID_LABEL_NAME,
                r#"series 3 {__name__="m", a-b="x"}: invalid label name "a-b": must match [a-zA-Z_][a-zA-Z0-9_]*"#
            )
        );
        assert_eq!(d.rejections[2].samples, 2);
        assert_eq!(
            got[3],
            (
                REASON_DUPLICATE_LABEL_NAME,
                r#"series 4 {__name__="m", a="1", a="2"}: duplicate label name "a""#
            )
        );
        assert_eq!(got[4].0, REASON_LABEL_VALUE_TOO_LONG);
        assert!(
            got[4].1.starts_with("series 5 {__name__=\"m\", a=\"xxx")
                && got[4].1.ends_with(
                    "value of label \"a\" is 2049 bytes long, the limit is 2048 (max_label_value_length)"
                ),
            "{}",
            got[4].1
        );
        assert!(got[4].1.len() < 400, "labels are shortened");
        assert_eq!(got[5].0, REASON_TOO_MANY_LABELS);
        assert!(
            got[5]
                .1
                .ends_with(": 31 labels, the limit is 30 (max_labels_per_series)")
        );
        assert_eq!(
            got[6],
            (
                REASON_INVALID_UTF8,
                "series 7 {__name__=\"m\", a=\"\u{fffd}\u{fffd}\"}: value of label \"a\" is not valid UTF-8"
            )
        );
        assert_eq!(got[7].0, REASON_NATIVE_HISTOGRAM);
        assert!(got[7].1.contains("native histograms are not supported"));
        assert_eq!(
            got[8],
            (
                REASON_MISSING_METRIC_NAME,
                r#"series 9 {__name__=""}: empty __name__ label"#
            )
        );
    }

    #[test]
    fn label_name_limit_is_configurable() {
        let limits = RemoteWriteConfig {
            max_label_name_bytes: 3,
            max_labels_per_series: 2,
            ..Default::default()
        };
        let d = decode_write_request(
            &body(vec![series(
                &[("__name__", "m"), ("abcd", "x")],
                &[(1, 1.0)],
            )]),
            &limits,
        )
        .unwrap();
        assert_eq!(d.rejections[0].reason, REASON_LABEL_NAME_TOO_LONG);
        // `__name__` itself is longer than 3 bytes: checked after the name rules, so the
        // first offender named is `__name__`.
        assert!(
            d.rejections[0].message.contains("the limit is 3"),
            "{:?}",
            d.rejections
        );
    }

    #[test]
    fn undecodable_payloads_fail_whole() {
        let limits = RemoteWriteConfig::default();
        let err = decode_write_request(&[0xff; 10], &limits).unwrap_err();
        assert!(matches!(err, DecodeError::Snappy(_)), "{err}");
        assert!(err.to_string().starts_with("invalid snappy block: "));
        let not_proto = snap::raw::Encoder::new()
            .compress_vec(&[0x0a, 0xff, 0xff, 0xff])
            .unwrap();
        let err = decode_write_request(&not_proto, &limits).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid protobuf WriteRequest: "),
            "{err}"
        );
        let big = snap::raw::Encoder::new().compress_vec(&[0u8; 100]).unwrap();
        let small = RemoteWriteConfig {
            max_decompressed_bytes: 99,
            ..limits
        };
        assert_eq!(
            decode_write_request(&big, &small).unwrap_err(),
            DecodeError::TooLarge {
                len: 100,
                limit: 99
            }
        );
    }

    #[test]
    fn metric_names() {
        for ok in ["up", "a:b_c", "_x", ":x", "X9"] {
            assert!(is_valid_metric_name(ok), "{ok}");
        }
        for bad in ["", "9x", "a-b", "a.b", "é"] {
            assert!(!is_valid_metric_name(bad), "{bad}");
        }
    }
}
