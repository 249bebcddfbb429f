//! Prometheus remote-write 1.0 protobuf messages (`prometheus.WriteRequest`), written by hand
//! with prost. Public so that load generators can *encode* requests with the same structs.
//!
//! Field numbers follow Prometheus's `prompb/remote.proto` and `prompb/types.proto`:
//!
//! ```proto
//! message WriteRequest   { repeated TimeSeries timeseries = 1; reserved 2;
//!                          repeated MetricMetadata metadata = 3; }
//! message TimeSeries     { repeated Label labels = 1; repeated Sample samples = 2;
//!                          repeated Exemplar exemplars = 3; repeated Histogram histograms = 4; }
//! message Label          { string name = 1; string value = 2; }
//! message Sample         { double value = 1; int64 timestamp = 2; }        // ms
//! message Exemplar       { repeated Label labels = 1; double value = 2; int64 timestamp = 3; }
//! message MetricMetadata { MetricType type = 1; string metric_family_name = 2;
//!                          string help = 4; string unit = 5; }
//! message Histogram      { oneof count { uint64 count_int = 1; double count_float = 2; }
//!                          double sum = 3; sint32 schema = 4; double zero_threshold = 5;
//!                          oneof zero_count { uint64 zero_count_int = 6; double zero_count_float = 7; }
//!                          repeated BucketSpan negative_spans = 8; repeated sint64 negative_deltas = 9;
//!                          repeated double negative_counts = 10; repeated BucketSpan positive_spans = 11;
//!                          repeated sint64 positive_deltas = 12; repeated double positive_counts = 13;
//!                          ResetHint reset_hint = 14; int64 timestamp = 15;
//!                          repeated double custom_values = 16; }
//! message BucketSpan     { sint32 offset = 1; uint32 length = 2; }
//! ```
//!
//! Label names and values are declared as `bytes`: the wire format is the same as `string`,
//! and it lets one series with invalid UTF-8 be refused on its own instead of prost failing
//! the whole request (the receiver checks UTF-8 per series, as Mimir does).

/// One remote-write request: series with their samples, and optional metric metadata.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Metric metadata (type, help, unit); ignored by the receiver.
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// One series: its labels (including `__name__`) and samples.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Ignored by the receiver.
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
    /// Native histogram samples; refused by the receiver (not supported by the store).
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

/// One label pair; UTF-8 text in both fields.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Label {
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

impl Label {
    /// A label from text.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into().into_bytes(),
            value: value.into().into_bytes(),
        }
    }
}

/// One float sample: value and time in milliseconds since the Unix epoch.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// An exemplar (a traced observation); ignored by the receiver.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(double, tag = "2")]
    pub value: f64,
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// Metric family metadata; ignored by the receiver.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    /// `MetricType`: 0 unknown, 1 counter, 2 gauge, 3 histogram, 4 gaugehistogram,
    /// 5 summary, 6 info, 7 stateset.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    #[prost(string, tag = "4")]
    pub help: String,
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// A native histogram sample. Decoded only so that it can be named in the refusal.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    #[prost(oneof = "HistogramCount", tags = "1, 2")]
    pub count: Option<HistogramCount>,
    #[prost(double, tag = "3")]
    pub sum: f64,
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    #[prost(oneof = "HistogramZeroCount", tags = "6, 7")]
    pub zero_count: Option<HistogramZeroCount>,
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    /// `ResetHint`: 0 unknown, 1 yes, 2 no, 3 gauge.
    #[prost(int32, tag = "14")]
    pub reset_hint: i32,
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
}

/// The `count` oneof of [`Histogram`].
#[derive(Clone, Copy, PartialEq, prost::Oneof)]
pub enum HistogramCount {
    #[prost(uint64, tag = "1")]
    CountInt(u64),
    #[prost(double, tag = "2")]
    CountFloat(f64),
}

/// The `zero_count` oneof of [`Histogram`].
#[derive(Clone, Copy, PartialEq, prost::Oneof)]
pub enum HistogramZeroCount {
    #[prost(uint64, tag = "6")]
    ZeroCountInt(u64),
    #[prost(double, tag = "7")]
    ZeroCountFloat(f64),
}

/// A run of consecutive native-histogram buckets.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct BucketSpan {
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

/// Encodes a request as a remote-write body: protobuf compressed with snappy's block format.
pub fn encode_snappy(request: &WriteRequest) -> Vec<u8> {
    use prost::Message;
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .expect("snappy block compression of an in-memory buffer cannot fail")
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    /// The same messages with `string` fields, as Prometheus's generated code declares them.
    mod strict {
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct WriteRequest {
            #[prost(message, repeated, tag = "1")]
            pub timeseries: Vec<TimeSeries>,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct TimeSeries {
            #[prost(message, repeated, tag = "1")]
            pub labels: Vec<Label>,
            #[prost(message, repeated, tag = "2")]
            pub samples: Vec<super::Sample>,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct Label {
            #[prost(string, tag = "1")]
            pub name: String,
            #[prost(string, tag = "2")]
            pub value: String,
        }
    }

    #[test]
    fn bytes_labels_are_wire_compatible_with_strings() {
        let sent = strict::WriteRequest {
            timeseries: vec![strict::TimeSeries {
                labels: vec![strict::Label {
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                samples: vec![Sample {
                    value: 1.5,
                    timestamp: 1_700_000_000_123,
                }],
            }],
        };
        let got = WriteRequest::decode(sent.encode_to_vec().as_slice()).unwrap();
        assert_eq!(got.timeseries[0].labels, vec![Label::new("__name__", "up")]);
        assert_eq!(got.timeseries[0].samples[0].timestamp, 1_700_000_000_123);
        let back = strict::WriteRequest::decode(got.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back, sent);
    }

    #[test]
    fn snappy_encoding_round_trips() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label::new("__name__", "x")],
                samples: vec![Sample {
                    value: f64::NAN,
                    timestamp: 1,
                }],
                histograms: vec![Histogram {
                    count: Some(HistogramCount::CountInt(3)),
                    positive_spans: vec![BucketSpan {
                        offset: -2,
                        length: 1,
                    }],
                    positive_deltas: vec![3],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&encode_snappy(&req))
            .unwrap();
        let got = WriteRequest::decode(raw.as_slice()).unwrap();
        assert!(got.timeseries[0].samples[0].value.is_nan());
        assert_eq!(got.timeseries[0].histograms, req.timeseries[0].histograms);
    }
}
