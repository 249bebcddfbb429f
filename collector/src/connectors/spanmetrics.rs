//! Span metrics: request, error and duration (RED) series from spans, as the OpenTelemetry
//! Collector's `spanmetrics` connector makes them with its defaults, so that dashboards and
//! alert rules written for it work unchanged.
//!
//! Per resource (`service.name`, `service.namespace`, `service.instance.id`) and per span
//! name, kind and status code, cumulative since the server started (as the connector's
//! default temporality):
//!
//! | OTLP metric (namespace `traces.span.metrics`) | Prometheus series (after our OTLP translation) |
//! |---|---|
//! | `traces.span.metrics.calls`, monotonic sum | `traces_span_metrics_calls_total` |
//! | `traces.span.metrics.duration`, histogram, unit `ms`, the connector's default buckets | `traces_span_metrics_duration_milliseconds_bucket`, `_sum`, `_count` |
//!
//! Labels: `service_name`, `span_name`, `span_kind` (`SPAN_KIND_SERVER`, …), `status_code`
//! (`STATUS_CODE_ERROR`, …), and `job`/`instance` from the resource. A tenant keeps at most
//! `max_series` dimension sets; spans beyond it are counted as dropped, not stored.

use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumberValue;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use sightline_model::{SpanKind, StatusCode};

use super::{ResourceKey, SpanFacts, kv, resource};

/// The connector's default histogram buckets, in milliseconds.
pub const DURATION_BUCKETS_MS: [f64; 16] = [
    2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0, 5000.0,
    10000.0, 15000.0,
];

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    resource: Arc<ResourceKey>,
    name: String,
    kind: SpanKind,
    status: StatusCode,
}

struct Aggregate {
    calls: u64,
    /// One per bucket plus the overflow (+Inf).
    buckets: [u64; DURATION_BUCKETS_MS.len() + 1],
    sum_ms: f64,
}

/// One tenant's span metrics.
pub(crate) struct SpanMetrics {
    series: HashMap<Key, Aggregate>,
    max_series: usize,
    start_ns: u64,
}

impl SpanMetrics {
    pub fn new(max_series: usize, start_ns: u64) -> Self {
        Self {
            series: HashMap::new(),
            max_series,
            start_ns,
        }
    }

    /// Counts a span; false when it was dropped (the tenant is at its series limit).
    pub fn observe(&mut self, span: &SpanFacts) -> bool {
        let key = Key {
            resource: span.resource.clone(),
            name: span.name.clone(),
            kind: span.kind,
            status: span.status,
        };
        let full = self.series.len() >= self.max_series;
        let aggregate = match self.series.get_mut(&key) {
            Some(a) => a,
            None if full => return false,
            None => self.series.entry(key).or_insert(Aggregate {
                calls: 0,
                buckets: [0; DURATION_BUCKETS_MS.len() + 1],
                sum_ms: 0.0,
            }),
        };
        let ms = span.duration_ns as f64 / 1e6;
        aggregate.calls += 1;
        aggregate.sum_ms += ms;
        // Buckets are upper-inclusive, as OTLP explicit bounds are.
        let i = DURATION_BUCKETS_MS.partition_point(|b| *b < ms);
        aggregate.buckets[i] += 1;
        true
    }

    /// Every series as the connector would export it at `now_ns`.
    pub fn export(&self, now_ns: u64) -> ExportMetricsServiceRequest {
        let mut by_resource: HashMap<Arc<ResourceKey>, Vec<(&Key, &Aggregate)>> = HashMap::new();
        for (k, a) in &self.series {
            by_resource
                .entry(k.resource.clone())
                .or_default()
                .push((k, a));
        }
        let resource_metrics = by_resource
            .into_iter()
            .map(|(res, series)| {
                let attributes = |k: &Key| {
                    vec![
                        kv("service.name", &res.service),
                        kv("span.name", &k.name),
                        kv("span.kind", k.kind.otlp_name()),
                        kv("status.code", k.status.otlp_name()),
                    ]
                };
                let calls = series
                    .iter()
                    .map(|(k, a)| NumberDataPoint {
                        attributes: attributes(k),
                        start_time_unix_nano: self.start_ns,
                        time_unix_nano: now_ns,
                        value: Some(NumberValue::AsInt(a.calls as i64)),
                        ..Default::default()
                    })
                    .collect();
                let durations = series
                    .iter()
                    .map(|(k, a)| HistogramDataPoint {
                        attributes: attributes(k),
                        start_time_unix_nano: self.start_ns,
                        time_unix_nano: now_ns,
                        count: a.calls,
                        sum: Some(a.sum_ms),
                        bucket_counts: a.buckets.to_vec(),
                        explicit_bounds: DURATION_BUCKETS_MS.to_vec(),
                        ..Default::default()
                    })
                    .collect();
                ResourceMetrics {
                    resource: Some(resource(&res)),
                    scope_metrics: vec![ScopeMetrics {
                        scope: Some(InstrumentationScope {
                            name: "spanmetricsconnector".into(),
                            ..Default::default()
                        }),
                        metrics: vec![
                            Metric {
                                name: "traces.span.metrics.calls".into(),
                                data: Some(Data::Sum(Sum {
                                    data_points: calls,
                                    aggregation_temporality: AggregationTemporality::Cumulative
                                        as i32,
                                    is_monotonic: true,
                                })),
                                ..Default::default()
                            },
                            Metric {
                                name: "traces.span.metrics.duration".into(),
                                unit: "ms".into(),
                                data: Some(Data::Histogram(Histogram {
                                    data_points: durations,
                                    aggregation_temporality: AggregationTemporality::Cumulative
                                        as i32,
                                })),
                                ..Default::default()
                            },
                        ],
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                }
            })
            .collect();
        ExportMetricsServiceRequest { resource_metrics }
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}
