//! Loki's push protobuf messages (`logproto.PushRequest`), written by hand with prost.
//!
//! Field numbers follow Loki's `pkg/push/push.proto`:
//!
//! ```proto
//! message PushRequest      { repeated StreamAdapter streams = 1; }
//! message StreamAdapter    { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
//! message EntryAdapter     { google.protobuf.Timestamp timestamp = 1; string line = 2;
//!                            repeated LabelPairAdapter structuredMetadata = 3; }
//! message LabelPairAdapter { string name = 1; string value = 2; }
//! ```
//!
//! The `string` fields are declared as `bytes` here: the wire format is the same, and it lets
//! one entry with invalid UTF-8 be handled on its own (lines and metadata are converted
//! lossily, a labels string that is not UTF-8 rejects only its stream) instead of failing the
//! whole request, as prost's UTF-8 check on `string` fields would.

/// A push request: the streams of one tenant.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// One stream: its labels as a selector string (`{app="x", env="prod"}`) and its entries.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    /// UTF-8 text of the label selector.
    #[prost(bytes = "vec", tag = "1")]
    pub labels: Vec<u8>,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    /// Label hash some clients fill in; ignored.
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// One log line.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<prost_types::Timestamp>,
    /// UTF-8 text of the line.
    #[prost(bytes = "vec", tag = "2")]
    pub line: Vec<u8>,
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

/// One structured-metadata pair.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPairAdapter {
    /// UTF-8 text of the name.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    /// UTF-8 text of the value.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    /// The same messages with `string` fields, as Loki's generated code declares them.
    mod strict {
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct PushRequest {
            #[prost(message, repeated, tag = "1")]
            pub streams: Vec<StreamAdapter>,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct StreamAdapter {
            #[prost(string, tag = "1")]
            pub labels: String,
            #[prost(message, repeated, tag = "2")]
            pub entries: Vec<EntryAdapter>,
            #[prost(uint64, tag = "3")]
            pub hash: u64,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct EntryAdapter {
            #[prost(message, optional, tag = "1")]
            pub timestamp: Option<prost_types::Timestamp>,
            #[prost(string, tag = "2")]
            pub line: String,
            #[prost(message, repeated, tag = "3")]
            pub structured_metadata: Vec<LabelPairAdapter>,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct LabelPairAdapter {
            #[prost(string, tag = "1")]
            pub name: String,
            #[prost(string, tag = "2")]
            pub value: String,
        }
    }

    #[test]
    fn bytes_fields_are_wire_compatible_with_strings() {
        let sent = strict::PushRequest {
            streams: vec![strict::StreamAdapter {
                labels: r#"{app="x"}"#.into(),
                entries: vec![strict::EntryAdapter {
                    timestamp: Some(prost_types::Timestamp {
                        seconds: 1,
                        nanos: 2,
                    }),
                    line: "hello".into(),
                    structured_metadata: vec![strict::LabelPairAdapter {
                        name: "trace_id".into(),
                        value: "abc".into(),
                    }],
                }],
                hash: 7,
            }],
        };
        let got = PushRequest::decode(sent.encode_to_vec().as_slice()).unwrap();
        let s = &got.streams[0];
        assert_eq!(s.labels, br#"{app="x"}"#);
        assert_eq!(s.hash, 7);
        assert_eq!(s.entries[0].line, b"hello");
        assert_eq!(
            s.entries[0].timestamp,
            Some(prost_types::Timestamp {
                seconds: 1,
                nanos: 2
            })
        );
        assert_eq!(s.entries[0].structured_metadata[0].name, b"trace_id");
        assert_eq!(s.entries[0].structured_metadata[0].value, b"abc");
    }
}
