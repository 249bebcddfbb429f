//! Deterministic generator of realistic metric series for the remote_write load harness:
//! a fleet of service instances, each exposing what a typical Go/Java service does —
//! request counters by route and status, request-duration histograms, process and runtime
//! gauges, `up` — sampled every interval with Prometheus-like scrape offsets and jitter.
//!
//! Requests are written straight to the remote_write wire format (`prometheus.WriteRequest`
//! protobuf, then snappy): each series' labels are encoded once, so the generator costs
//! little next to the servers it loads. The format is checked against prost structs in the
//! tests.

use prost::encoding::{WireType, encode_key, encode_varint};

use crate::rng::Rng;

/// Routes of every service, with their share of traffic and median latency (seconds).
const ROUTES: &[(&str, f64, f64)] = &[
    ("/api/orders", 0.35, 0.045),
    ("/api/payments", 0.15, 0.120),
    ("/api/users", 0.25, 0.020),
    ("/api/search", 0.20, 0.250),
    ("/healthz", 0.05, 0.002),
];
/// Histogram bucket bounds (Prometheus client defaults).
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Targets per service.
pub const INSTANCES_PER_SERVICE: usize = 20;

/// How a series' value moves from one sample to the next.
#[derive(Debug, Clone)]
enum Kind {
    /// Requests counted per interval: mean count per interval.
    Counter { per_interval: f64 },
    /// A cumulative bucket of a latency histogram: fraction of requests at or below `le`.
    Bucket {
        per_interval: f64,
        fraction: f64,
        bucket: usize,
    },
    /// Sum of latencies: requests times mean latency.
    Sum { mean: f64 },
    /// Memory in pages of 4 KiB, a slow random walk.
    Memory,
    /// CPU seconds, a counter growing by up to `per_interval`, in hundredths.
    Cpu { per_interval: f64 },
    /// An integer gauge wandering around a level.
    Goroutines { level: f64 },
    /// `up`: always 1.
    Up,
}

/// One series: its encoded labels (protobuf `Label` fields of a `TimeSeries`), its target
/// and how it evolves.
#[derive(Debug, Clone)]
pub struct GenSeries {
    labels_pb: Vec<u8>,
    pub target: usize,
    kind: Kind,
    value: f64,
}

/// The whole fleet.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub series: Vec<GenSeries>,
    pub targets: usize,
    /// Scrape offset of each target within the interval, in ms.
    offsets: Vec<i64>,
}

fn encode_label(out: &mut Vec<u8>, name: &str, value: &str) {
    let inner_len =
        1 + varint_len(name.len()) + name.len() + 1 + varint_len(value.len()) + value.len();
    encode_key(1, WireType::LengthDelimited, out);
    encode_varint(inner_len as u64, out);
    encode_key(1, WireType::LengthDelimited, out);
    encode_varint(name.len() as u64, out);
    out.extend_from_slice(name.as_bytes());
    encode_key(2, WireType::LengthDelimited, out);
    encode_varint(value.len() as u64, out);
    out.extend_from_slice(value.as_bytes());
}

fn varint_len(v: usize) -> usize {
    prost::encoding::encoded_len_varint(v as u64)
}

/// Labels sorted by name (Prometheus sends them sorted), encoded.
fn labels_pb(pairs: &mut [(&str, String)]) -> Vec<u8> {
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::with_capacity(pairs.len() * 24);
    for (n, v) in pairs.iter() {
        encode_label(&mut out, n, v);
    }
    out
}

/// Standard normal CDF (Abramowitz–Stegun 7.1.26 erf approximation; plenty for shaping).
fn normal_cdf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs() / std::f64::consts::SQRT_2);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-(x * x) / 2.0).exp();
    let erf = if x >= 0.0 { y } else { -y };
    0.5 * (1.0 + erf)
}

impl Fleet {
    /// A fleet of `services` × [`INSTANCES_PER_SERVICE`] targets, 94 series each.
    pub fn new(services: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut series = Vec::new();
        let targets = services * INSTANCES_PER_SERVICE;
        let mut offsets = Vec::with_capacity(targets);
        for target in 0..targets {
            let service = format!("svc-{:03}", target / INSTANCES_PER_SERVICE);
            let instance = format!(
                "10.{}.{}.{}:8080",
                target / 65536,
                (target / 256) % 256,
                target % 256
            );
            offsets.push(rng.below(15_000) as i64);
            // Requests per second of this instance: a few busy services, many quiet ones.
            let rps = 200.0 / (1.0 + (target / INSTANCES_PER_SERVICE) as f64 * 0.3) + rng.unit();
            let base = |name: &str| -> Vec<(&str, String)> {
                vec![
                    ("__name__", name.to_string()),
                    ("job", service.clone()),
                    ("instance", instance.clone()),
                    ("env", "prod".to_string()),
                ]
            };
            let mut push = |mut pairs: Vec<(&str, String)>, kind: Kind| {
                series.push(GenSeries {
                    labels_pb: labels_pb(&mut pairs),
                    target,
                    kind,
                    value: 0.0,
                });
            };
            for &(route, share, median) in ROUTES {
                let per_interval = rps * share * 15.0;
                for (method, code, frac) in [
                    ("GET", "200", 0.70),
                    ("POST", "200", 0.27),
                    ("GET", "500", 0.01),
                    ("POST", "503", 0.02),
                ] {
                    let mut l = base("http_requests_total");
                    l.push(("route", route.to_string()));
                    l.push(("method", method.to_string()));
                    l.push(("code", code.to_string()));
                    push(
                        l,
                        Kind::Counter {
                            per_interval: per_interval * frac,
                        },
                    );
                }
                for (i, &le) in BUCKETS.iter().enumerate() {
                    let mut l = base("http_request_duration_seconds_bucket");
                    l.push(("route", route.to_string()));
                    l.push(("le", format!("{le}")));
                    // Log-normal latency around the route's median (sigma 0.8).
                    let fraction = normal_cdf((le / median).ln() / 0.8);
                    push(
                        l,
                        Kind::Bucket {
                            per_interval,
                            fraction,
                            bucket: i,
                        },
                    );
                }
                let mut l = base("http_request_duration_seconds_bucket");
                l.push(("route", route.to_string()));
                l.push(("le", "+Inf".to_string()));
                push(
                    l,
                    Kind::Bucket {
                        per_interval,
                        fraction: 1.0,
                        bucket: BUCKETS.len(),
                    },
                );
                let mut l = base("http_request_duration_seconds_count");
                l.push(("route", route.to_string()));
                push(
                    l,
                    Kind::Bucket {
                        per_interval,
                        fraction: 1.0,
                        bucket: BUCKETS.len(),
                    },
                );
                let mut l = base("http_request_duration_seconds_sum");
                l.push(("route", route.to_string()));
                push(
                    l,
                    Kind::Sum {
                        // Mean of the log-normal: median × e^(σ²/2), σ = 0.8.
                        mean: median * 1.377,
                    },
                );
            }
            push(base("process_resident_memory_bytes"), Kind::Memory);
            push(
                base("process_cpu_seconds_total"),
                Kind::Cpu {
                    per_interval: 0.5 + rng.unit() * 3.0,
                },
            );
            push(
                base("go_goroutines"),
                Kind::Goroutines {
                    level: 20.0 + rng.below(200) as f64,
                },
            );
            push(base("up"), Kind::Up);
        }
        let mut fleet = Self {
            series,
            targets,
            offsets,
        };
        // Starting values: counters from zero, memory at a plausible size.
        for s in &mut fleet.series {
            s.value = match s.kind {
                Kind::Memory => (50_000 + rng.below(400_000)) as f64 * 4096.0,
                Kind::Goroutines { level } => level,
                Kind::Up => 1.0,
                _ => 0.0,
            };
        }
        fleet
    }

    /// Timestamp of step `step` of `target`: the interval grid, the target's offset and a
    /// millisecond or two of scheduling jitter, as real scrapes have.
    pub fn timestamp(
        &self,
        start_ms: i64,
        interval_ms: i64,
        step: u64,
        target: usize,
        rng: &mut Rng,
    ) -> i64 {
        start_ms + step as i64 * interval_ms + self.offsets[target] + rng.below(3) as i64
    }

    /// Advances one series by one interval and returns its new value.
    pub fn advance(series: &mut GenSeries, rng: &mut Rng, noise: &mut [f64; 2]) -> f64 {
        // noise[0]: this target's traffic factor this interval (shared by its routes).
        match series.kind {
            Kind::Counter { per_interval } => {
                let mean = per_interval * noise[0];
                series.value += (mean + (rng.unit() - 0.5) * mean.sqrt() * 2.0)
                    .max(0.0)
                    .round();
            }
            Kind::Bucket {
                per_interval,
                fraction,
                bucket,
            } => {
                // The same request count for every bucket of a route this interval, so the
                // buckets stay cumulative: drawn once per route into noise[1] at bucket 0.
                if bucket == 0 {
                    let mean = per_interval * noise[0];
                    noise[1] = (mean + (rng.unit() - 0.5) * mean.sqrt() * 2.0)
                        .max(0.0)
                        .round();
                }
                series.value += (noise[1] * fraction).round();
            }
            Kind::Sum { mean, .. } => {
                series.value += noise[1] * mean * (0.9 + rng.unit() * 0.2);
            }
            Kind::Memory => {
                let pages = (rng.below(201) as f64 - 100.0) * 4096.0;
                series.value = (series.value + pages).max(4096.0 * 10_000.0);
            }
            Kind::Cpu { per_interval } => {
                series.value += (rng.unit() * per_interval * 100.0).round() / 100.0;
            }
            Kind::Goroutines { level } => {
                series.value = (level + rng.below(11) as f64 - 5.0).max(1.0);
            }
            Kind::Up => {}
        }
        series.value
    }

    /// Appends one `TimeSeries` with one sample to a `WriteRequest` body being built.
    pub fn encode_sample(out: &mut Vec<u8>, series: &GenSeries, t: i64, v: f64) {
        let sample_len = 1 + 8 + 1 + prost::encoding::encoded_len_varint(t as u64);
        let ts_len = series.labels_pb.len() + 1 + varint_len(sample_len) + sample_len;
        encode_key(1, WireType::LengthDelimited, out);
        encode_varint(ts_len as u64, out);
        out.extend_from_slice(&series.labels_pb);
        encode_key(2, WireType::LengthDelimited, out);
        encode_varint(sample_len as u64, out);
        encode_key(1, WireType::SixtyFourBit, out);
        out.extend_from_slice(&v.to_le_bytes());
        encode_key(2, WireType::Varint, out);
        encode_varint(t as u64, out);
    }
}

/// A per-target traffic factor for one interval: slow daily swing plus noise.
pub fn traffic_factor(t_ms: i64, rng: &mut Rng) -> f64 {
    let day = (t_ms as f64 / 86_400_000.0) * std::f64::consts::TAU;
    (1.0 + 0.3 * day.sin()) * (0.9 + rng.unit() * 0.2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[derive(Clone, PartialEq, prost::Message)]
    struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        timeseries: Vec<TimeSeries>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        samples: Vec<Sample>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Label {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(string, tag = "2")]
        value: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Sample {
        #[prost(double, tag = "1")]
        value: f64,
        #[prost(int64, tag = "2")]
        timestamp: i64,
    }

    #[test]
    fn hand_encoded_requests_decode_as_write_requests() {
        let mut fleet = Fleet::new(1, 7);
        assert_eq!(fleet.series.len(), INSTANCES_PER_SERVICE * 94);
        let mut rng = Rng::new(1);
        let mut body = Vec::new();
        let mut noise = [1.0, 0.0];
        for s in fleet.series.iter_mut().take(20) {
            let v = Fleet::advance(s, &mut rng, &mut noise);
            Fleet::encode_sample(&mut body, s, 1_700_000_000_123, v);
        }
        let req = WriteRequest::decode(body.as_slice()).unwrap();
        assert_eq!(req.timeseries.len(), 20);
        let first = &req.timeseries[0];
        assert_eq!(first.samples[0].timestamp, 1_700_000_000_123);
        let names: Vec<&str> = first.labels.iter().map(|l| l.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "labels sorted");
        assert!(
            first
                .labels
                .iter()
                .any(|l| l.name == "__name__" && l.value == "http_requests_total")
        );
    }

    #[test]
    fn buckets_stay_cumulative() {
        let mut fleet = Fleet::new(1, 3);
        let mut rng = Rng::new(2);
        let route_series = &mut fleet.series[4..4 + BUCKETS.len() + 3];
        for _ in 0..50 {
            let mut noise = [1.0, 0.0];
            let values: Vec<f64> = route_series
                .iter_mut()
                .map(|s| Fleet::advance(s, &mut rng, &mut noise))
                .collect();
            for w in values[..BUCKETS.len() + 1].windows(2) {
                assert!(w[0] <= w[1], "{values:?}");
            }
            assert_eq!(
                values[BUCKETS.len()],
                values[BUCKETS.len() + 1],
                "+Inf = count"
            );
        }
    }
}
