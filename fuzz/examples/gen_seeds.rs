//! Writes the seed corpora, `fuzz/corpus/<target>/seed-*`: small valid (and a few nearly
//! valid) inputs of every format, in the shape each harness expects (see `src/targets.rs` for
//! the mode bytes). Run from `fuzz/`: `cargo run --example gen_seeds`. The output is
//! committed; rerunning it rewrites the same files.

use std::fs;
use std::path::Path;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, exponential_histogram_data_point, metric, number_data_point,
    summary_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use sightline_collector::loki_push::proto::{
    EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter,
};
use sightline_collector::remote_write::proto::{
    Histogram as RwHistogram, HistogramCount, Label, Sample, TimeSeries, WriteRequest,
};

const T0: u64 = 1_700_000_000_000_000_000;

fn s(v: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(v.into())),
    })
}

fn kv(k: &str, value: Option<AnyValue>) -> KeyValue {
    KeyValue {
        key: k.into(),
        value,
        ..Default::default()
    }
}

fn logs_requests() -> Vec<ExportLogsServiceRequest> {
    let full = LogRecord {
        time_unix_nano: T0,
        observed_time_unix_nano: T0 + 1,
        severity_number: 17,
        severity_text: "ERROR".into(),
        body: s("invoice 42 failed"),
        attributes: vec![
            kv(
                "http.status",
                Some(AnyValue {
                    value: Some(any_value::Value::IntValue(502)),
                }),
            ),
            kv(
                "ok",
                Some(AnyValue {
                    value: Some(any_value::Value::BoolValue(false)),
                }),
            ),
            kv(
                "ratio",
                Some(AnyValue {
                    value: Some(any_value::Value::DoubleValue(0.5)),
                }),
            ),
            kv(
                "raw",
                Some(AnyValue {
                    value: Some(any_value::Value::BytesValue(vec![0, 255])),
                }),
            ),
            kv(
                "list",
                Some(AnyValue {
                    value: Some(any_value::Value::ArrayValue(ArrayValue {
                        values: vec![s("a").unwrap(), s("b").unwrap()],
                    })),
                }),
            ),
            kv(
                "map",
                Some(AnyValue {
                    value: Some(any_value::Value::KvlistValue(KeyValueList {
                        values: vec![kv("inner", s("v"))],
                    })),
                }),
            ),
        ],
        trace_id: (1..=16).collect(),
        span_id: (1..=8).collect(),
        ..Default::default()
    };
    let bad = LogRecord {
        body: s("bad ids"),
        trace_id: vec![1, 2, 3],
        span_id: vec![9],
        ..Default::default()
    };
    let bare = LogRecord::default();
    let resource = Resource {
        attributes: vec![
            kv("service.name", s("billing")),
            kv("deployment.environment", s("prod")),
            kv("host.name", s("web-1")),
            kv("k8s.pod.name", s("")),
        ],
        ..Default::default()
    };
    let scope = InstrumentationScope {
        name: "lib".into(),
        version: "1.0".into(),
        ..Default::default()
    };
    vec![
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(resource.clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(scope.clone()),
                    log_records: vec![full.clone()],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        },
        ExportLogsServiceRequest {
            resource_logs: vec![
                ResourceLogs {
                    resource: None,
                    scope_logs: vec![ScopeLogs {
                        scope: None,
                        log_records: vec![bad, bare],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                ResourceLogs {
                    resource: Some(resource),
                    scope_logs: vec![ScopeLogs {
                        scope: Some(scope),
                        log_records: vec![full],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
        },
    ]
}

fn number(t: u64, v: f64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        time_unix_nano: t,
        start_time_unix_nano: t - 1_000_000_000,
        value: Some(number_data_point::Value::AsDouble(v)),
        attributes: attrs,
        ..Default::default()
    }
}

fn metric(name: &str, unit: &str, data: metric::Data) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(data),
        ..Default::default()
    }
}

fn metrics_requests() -> Vec<ExportMetricsServiceRequest> {
    let gauge = metric(
        "process.memory.usage",
        "By",
        metric::Data::Gauge(Gauge {
            data_points: vec![number(T0, 1.5, vec![kv("state", s("used"))])],
        }),
    );
    let cumulative = metric(
        "http.server.requests",
        "{request}",
        metric::Data::Sum(Sum {
            data_points: vec![NumberDataPoint {
                value: Some(number_data_point::Value::AsInt(7)),
                ..number(T0, 0.0, vec![kv("http.method", s("GET"))])
            }],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        }),
    );
    let delta = metric(
        "jobs.done",
        "1",
        metric::Data::Sum(Sum {
            data_points: vec![
                number(T0, 2.0, vec![]),
                number(T0 + 1_000_000_000, 3.0, vec![]),
            ],
            aggregation_temporality: AggregationTemporality::Delta as i32,
            is_monotonic: true,
        }),
    );
    let histogram = metric(
        "http.server.duration",
        "ms",
        metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                time_unix_nano: T0,
                count: 6,
                sum: Some(21.0),
                bucket_counts: vec![1, 2, 3],
                explicit_bounds: vec![1.0, 5.0],
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Delta as i32,
        }),
    );
    let exponential = metric(
        "rpc.latency",
        "s",
        metric::Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint {
                time_unix_nano: T0,
                count: 5,
                sum: Some(2.5),
                scale: 3,
                zero_count: 1,
                positive: Some(exponential_histogram_data_point::Buckets {
                    offset: -2,
                    bucket_counts: vec![1, 0, 2],
                }),
                negative: Some(exponential_histogram_data_point::Buckets {
                    offset: 1,
                    bucket_counts: vec![1],
                }),
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
    );
    let summary = metric(
        "gc.pause",
        "s",
        metric::Data::Summary(Summary {
            data_points: vec![SummaryDataPoint {
                time_unix_nano: T0,
                count: 3,
                sum: 0.3,
                quantile_values: vec![summary_data_point::ValueAtQuantile {
                    quantile: 0.5,
                    value: 0.1,
                }],
                flags: 1,
                ..Default::default()
            }],
        }),
    );
    let resource = Resource {
        attributes: vec![
            kv("service.name", s("api")),
            kv("service.instance.id", s("i-1")),
            kv("service.namespace", s("shop")),
        ],
        ..Default::default()
    };
    let rm = |metrics: Vec<Metric>| ResourceMetrics {
        resource: Some(resource.clone()),
        scope_metrics: vec![ScopeMetrics {
            metrics,
            ..Default::default()
        }],
        ..Default::default()
    };
    vec![
        ExportMetricsServiceRequest {
            resource_metrics: vec![rm(vec![gauge.clone(), cumulative])],
        },
        ExportMetricsServiceRequest {
            resource_metrics: vec![rm(vec![delta, histogram])],
        },
        ExportMetricsServiceRequest {
            resource_metrics: vec![rm(vec![exponential, summary, gauge])],
        },
    ]
}

fn remote_write_requests() -> Vec<WriteRequest> {
    let series = |labels: &[(&str, &str)], samples: &[(i64, f64)]| TimeSeries {
        labels: labels.iter().map(|(k, v)| Label::new(*k, *v)).collect(),
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
        ..Default::default()
    };
    let mut histogram = series(&[("__name__", "h")], &[]);
    histogram.histograms.push(RwHistogram {
        count: Some(HistogramCount::CountInt(3)),
        sum: 1.0,
        timestamp: 1_700_000_000_000,
        ..Default::default()
    });
    vec![
        WriteRequest {
            timeseries: vec![series(
                &[("__name__", "up"), ("instance", "a:9100"), ("job", "node")],
                &[(1_700_000_000_000, 1.0), (1_700_000_015_000, 0.0)],
            )],
            metadata: vec![],
        },
        WriteRequest {
            timeseries: vec![
                series(
                    &[("__name__", "ok_total"), ("le", "+Inf")],
                    &[(1, f64::NAN)],
                ),
                series(&[("__name__", "bad-name")], &[(1, 1.0)]),
                series(&[("job", "x")], &[(1, 1.0)]),
                series(&[("__name__", "dup"), ("a", "1"), ("a", "2")], &[(1, 1.0)]),
                series(&[("__name__", "empty")], &[]),
                histogram,
            ],
            metadata: vec![],
        },
    ]
}

fn loki_requests() -> Vec<PushRequest> {
    let entry = |ts: Option<(i64, i32)>, line: &str, md: &[(&str, &str)]| EntryAdapter {
        timestamp: ts.map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
        line: line.as_bytes().to_vec(),
        structured_metadata: md
            .iter()
            .map(|(k, v)| LabelPairAdapter {
                name: k.as_bytes().to_vec(),
                value: v.as_bytes().to_vec(),
            })
            .collect(),
    };
    vec![
        PushRequest {
            streams: vec![StreamAdapter {
                labels: br#"{app="checkout", env="prod"}"#.to_vec(),
                entries: vec![entry(
                    Some((1_700_000_000, 5)),
                    "level=error msg=\"payment declined\"",
                    &[("trace_id", "abc")],
                )],
                hash: 0,
            }],
        },
        PushRequest {
            streams: vec![
                StreamAdapter {
                    labels: br#"{job="varlogs", filename="/var/log/syslog"}"#.to_vec(),
                    entries: vec![
                        entry(None, "no timestamp", &[]),
                        entry(Some((1, -1)), "bad nanos", &[]),
                        entry(Some((1_700_000_000, 0)), "fine", &[]),
                    ],
                    hash: 7,
                },
                StreamAdapter {
                    labels: b"{bad label}".to_vec(),
                    entries: vec![entry(Some((1, 0)), "x", &[])],
                    hash: 0,
                },
            ],
        },
    ]
}

const LOKI_JSON: &[&str] = &[
    r#"{"streams":[{"stream":{"service_name":"checkout","env":"prod"},"values":[["1700000000000000000","level=error msg=\"payment declined\" latency=1.2s"]]}]}"#,
    r#"{"streams":[{"stream":{"app":"a"},"values":[["1700000000000000000","line",{"trace_id":"t1"}],["abc","bad ts"],["-1","negative"]]},{"stream":{},"values":[]}]}"#,
    r#"{"streams":[{"labels":"{job=\"x\"}","entries":[{"ts":"2023-11-14T22:13:20Z","line":"old format"}]}]}"#,
];

const OTLP_LOGS_JSON: &str = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing"}}]},"scopeLogs":[{"scope":{"name":"s"},"logRecords":[{"timeUnixNano":"1700000000000000000","severityNumber":17,"severityText":"ERROR","body":{"stringValue":"invoice 42 failed"},"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","attributes":[{"key":"n","value":{"intValue":"3"}},{"key":"b","value":{"boolValue":true}},{"key":"d","value":{"doubleValue":1.5}},{"key":"l","value":{"arrayValue":{"values":[{"stringValue":"x"}]}}},{"key":"m","value":{"kvlistValue":{"values":[{"key":"k","value":{"bytesValue":"AAE="}}]}}}]}]}]}]}"#;

const OTLP_METRICS_JSON: &str = r#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},"scopeMetrics":[{"metrics":[{"name":"requests","unit":"1","sum":{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[{"asInt":"5","timeUnixNano":"1700000000000000000","attributes":[{"key":"code","value":{"stringValue":"200"}}]}]}},{"name":"temp","unit":"Cel","gauge":{"dataPoints":[{"asDouble":21.5,"timeUnixNano":"1700000000000000000"}]}},{"name":"lat","unit":"ms","histogram":{"aggregationTemporality":1,"dataPoints":[{"count":"3","sum":6,"bucketCounts":["1","2"],"explicitBounds":[2],"timeUnixNano":"1700000000000000000"}]}}]}]}]}"#;

/// Syslog streams for the framing harness: limit byte, read-size seed, then the stream.
const SYSLOG_STREAMS: &[(u8, u8, &[u8])] = &[
    (255, 1, b"<34>1 2023-11-14T22:13:20Z host app 1 ID47 - hello\n<13>Nov 14 22:13:20 host app: hi\n"),
    (255, 7, b"58 <165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 - x71 <34>1 2023-11-14T22:13:20.5+01:00 h a - - [ex@1 k=\"v\"] octet\n"),
    (4, 3, b"<13>too long for the limit\r\n<13>ok\n\n\0<13>a\n99999 <13>x"),
    (10, 200, b"30 <13>short\n<13>unterminated at eof"),
];

const SYSLOG_MESSAGES: &[&str] = &[
    "<34>1 2023-11-14T22:13:20.123456Z mymachine.example.com su 1234 ID47 - 'su root' failed for lonvick on /dev/pts/8",
    "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"] \u{feff}An application event log entry...",
    "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
    "<13>1 - - - - - [a@1 k=\"esc\\]aped \\\"q\\\"\"]",
    "<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed for lonvick on /dev/pts/8",
    "<13>Feb  5 17:32:18 10.0.0.99 myapp: Use the BFG!",
    "<191>Nov 14 22:13:20 host kernel: [ 1.0] something\r\n",
    "just a line without a priority",
];

const LOGQL: &[&str] = &[
    r#"{service_name="checkout"}"#,
    r#"{a="x", b!="y", c=~"re.*", d!~"re"} |= "s" != "t" |~ "e(r|x)+" !~ "z""#,
    r#"{service_name="checkout"} | logfmt | latency > 1s and status >= 500 or level="error""#,
    r#"{app="a"} | json | line_format "{{.msg}} {{ .status }}" | pattern_id="12""#,
    r#"{app="a"} | json | __error__="" | bytes > 10KB | duration <= 250ms"#,
    r#"sum by (service_name) (count_over_time({env="prod"}[5m]))"#,
    r#"topk(3, sum without (pod) (rate({app="a"} |= "x" [1m])))"#,
    r#"avg(bytes_over_time({app="a"}[1h] offset 5m))"#,
    r#"bottomk(2, bytes_rate({app="a"} | json [30s]))"#,
    r#"max by (level) (count_over_time({app="a"} | logfmt [1m])) > 5"#,
];

const PROMQL: &[&str] = &[
    "up",
    r#"rate(http_requests_total{job="api", code=~"5.."}[5m] offset 1h)"#,
    r#"sum by (job) (rate(x[1m])) / on (job) group_left(team) max(y) > bool 0.5"#,
    r#"histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))"#,
    r#"topk(5, -x) or absent(y) unless z and w"#,
    r#"max_over_time(deriv(x[5m])[30m:1m] @ 1700000000)"#,
    r#"label_replace(up, "a", "$1", "instance", "(.*):.*")"#,
    r#"{__name__=~"a.*", job!="x"}"#,
    "1 + 2 * 3 ^ 4 % 5 - -6",
    r#"count_values("v", x) # comment"#,
    r#"quantile_over_time(0.5, x[1h]) atan2 y"#,
    r#"sort_desc(sum(x)) + vector(1) - scalar(y) "#,
];

const CONFIG: &[&str] = &[
    "",
    "data_dir = \"/tmp/x\"\n[server]\nhttp_addr = \"127.0.0.1:0\"\n[indexer]\ncommit_interval = \"250ms\"\nretention = \"7d\"\n",
    "[syslog]\ntenant = \"ops\"\nmax_message_bytes = 1024\n[loki_push]\nmax_line_bytes = 100\n[remote_write]\nmax_labels_per_series = 5\n[otlp]\nmax_grpc_message_bytes = 1000\n",
    "[server]\nsyslog_tenant = \"legacy\"\n[limits]\nmax_syslog_message_bytes = 2048\nmax_request_bytes = 4096\n",
    "[indexer]\npatterns = true\npattern_masks = [\"req-[0-9a-f]+\"]\nmax_patterns_per_service = 10\n[self_scrape]\nenabled = true\ninterval = \"15s\"\n",
    "[[scrape_configs]]\njob_name = \"node\"\nscrape_interval = \"15s\"\nscrape_timeout = \"10s\"\nmetrics_path = \"/metrics\"\nhonor_labels = false\nhonor_timestamps = true\ntenant = \"default\"\nsample_limit = 0\nstatic_configs = [{ targets = [\"127.0.0.1:9100\"], labels = { env = \"prod\" } }]\nfile_sd_configs = [{ files = [\"/etc/t/*.json\"], refresh_interval = \"5m\" }]\n\n[[scrape_configs.relabel_configs]]\nsource_labels = [\"__address__\"]\nregex = \"(.*):9100\"\ntarget_label = \"host\"\nreplacement = \"$1\"\naction = \"replace\"\n",
    "[anomaly]\ninterval = \"30s\"\nwarmup = 10\n[[anomaly.rules]]\nname = \"cpu\"\nexpr = \"rate(cpu_seconds_total[5m])\"\ntenant = \"default\"\n",
    "[tsdb]\nblock_duration = \"2h\"\nretention = \"15d\"\n[promql]\nlookback_delta = \"5m\"\n",
];

fn write(target: &str, seeds: impl IntoIterator<Item = Vec<u8>>) {
    let dir = Path::new("corpus").join(target);
    fs::create_dir_all(&dir).unwrap();
    for (i, seed) in seeds.into_iter().enumerate() {
        fs::write(dir.join(format!("seed-{i:02}")), seed).unwrap();
    }
}

fn with_mode(mode: u8, body: Vec<u8>) -> Vec<u8> {
    let mut v = vec![mode];
    v.extend(body);
    v
}

fn main() {
    assert!(
        Path::new("fuzz_targets").is_dir(),
        "run from the fuzz/ directory"
    );
    let logs = logs_requests();
    let metrics = metrics_requests();
    write("otlp_logs_proto", logs.iter().map(Message::encode_to_vec));
    write(
        "otlp_metrics_proto",
        metrics.iter().map(Message::encode_to_vec),
    );

    let mut json: Vec<Vec<u8>> = vec![
        with_mode(0, OTLP_LOGS_JSON.into()),
        with_mode(1, OTLP_METRICS_JSON.into()),
    ];
    json.extend(
        logs.iter()
            .map(|r| with_mode(0, serde_json::to_vec(r).unwrap())),
    );
    json.extend(
        metrics
            .iter()
            .map(|r| with_mode(1, serde_json::to_vec(r).unwrap())),
    );
    write("otlp_json", json);

    let rw = remote_write_requests();
    write(
        "remote_write",
        rw.iter().flat_map(|r| {
            [
                with_mode(
                    0,
                    sightline_collector::remote_write::proto::encode_snappy(r),
                ),
                with_mode(1, r.encode_to_vec()),
            ]
        }),
    );
    let loki = loki_requests();
    write(
        "loki_push_proto",
        loki.iter().flat_map(|r| {
            let raw = r.encode_to_vec();
            [
                with_mode(0, snap::raw::Encoder::new().compress_vec(&raw).unwrap()),
                with_mode(1, raw),
            ]
        }),
    );
    write(
        "loki_push_json",
        LOKI_JSON.iter().map(|s| s.as_bytes().to_vec()),
    );
    write(
        "syslog_framing",
        SYSLOG_STREAMS.iter().map(|(limit, seed, stream)| {
            let mut v = vec![*limit, *seed];
            v.extend_from_slice(stream);
            v
        }),
    );
    write(
        "syslog_parse",
        SYSLOG_MESSAGES.iter().map(|s| s.as_bytes().to_vec()),
    );
    write("logql", LOGQL.iter().map(|s| s.as_bytes().to_vec()));
    write("promql", PROMQL.iter().map(|s| s.as_bytes().to_vec()));
    write("config", CONFIG.iter().map(|s| s.as_bytes().to_vec()));
}
