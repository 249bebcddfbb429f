//! Host metrics as remote-write requests: one collection of `sightline_collector::host`
//! (node_exporter's names) becomes one snappy-compressed `WriteRequest`, every series
//! carrying the agent's labels, every sample the collection's timestamp.

use std::collections::BTreeMap;

use prost::Message;
use sightline_collector::host::Family;
use sightline_collector::remote_write::proto::{Label, Sample, TimeSeries, WriteRequest};

/// The request for one collection: `families` at `timestamp_ms`, with `labels` on every
/// series (a series' own label of the same name wins, as `honor_labels` would have it).
pub fn write_request(
    families: &[Family],
    labels: &BTreeMap<String, String>,
    timestamp_ms: i64,
) -> WriteRequest {
    let mut timeseries = Vec::new();
    for family in families {
        for (own, value) in &family.samples {
            let mut all: BTreeMap<&str, &str> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            for (k, v) in own {
                all.insert(k, v);
            }
            all.insert("__name__", &family.name);
            timeseries.push(TimeSeries {
                labels: all.into_iter().map(|(k, v)| Label::new(k, v)).collect(),
                samples: vec![Sample {
                    value: *value,
                    timestamp: timestamp_ms,
                }],
                exemplars: Vec::new(),
                histograms: Vec::new(),
            });
        }
    }
    WriteRequest {
        timeseries,
        metadata: Vec::new(),
    }
}

/// The body remote write sends: the protobuf, snappy block-compressed.
pub fn encode(request: &WriteRequest) -> Vec<u8> {
    let raw = request.encode_to_vec();
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .expect("snappy compresses any input under 4 GiB")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_collector::host::Kind;

    #[test]
    fn every_series_has_the_name_the_agent_labels_and_its_own() {
        let mut f = Family::new("node_load1", "1m load average.", Kind::Gauge);
        f.push(vec![], 0.5);
        let mut g = Family::new("node_cpu_seconds_total", "Seconds.", Kind::Counter);
        g.push(vec![("cpu", "0".into()), ("mode", "idle".into())], 12.0);
        let mut labels = BTreeMap::new();
        labels.insert("job".to_string(), "node".to_string());
        labels.insert("instance".to_string(), "h1".to_string());
        let req = write_request(&[f, g], &labels, 1_700_000_000_000);
        let text = |ts: &TimeSeries| {
            ts.labels
                .iter()
                .map(|l| {
                    format!(
                        "{}={}",
                        String::from_utf8_lossy(&l.name),
                        String::from_utf8_lossy(&l.value)
                    )
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(
            text(&req.timeseries[0]),
            "__name__=node_load1,instance=h1,job=node"
        );
        assert_eq!(
            text(&req.timeseries[1]),
            "__name__=node_cpu_seconds_total,cpu=0,instance=h1,job=node,mode=idle"
        );
        assert_eq!(req.timeseries[1].samples[0].timestamp, 1_700_000_000_000);
        let body = encode(&req);
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        assert_eq!(WriteRequest::decode(raw.as_slice()).unwrap(), req);
    }
}
