//! OTLP metrics → Prometheus-style samples, the way Prometheus's own OTLP receiver and the
//! OpenTelemetry Collector's `pkg/translator/prometheus` translate them (the OpenTelemetry
//! "Prometheus and OpenMetrics compatibility" specification), so that PromQL written for
//! Prometheus works on the same data.
//!
//! **Names.** The metric name is split on every character outside `[a-zA-Z0-9:]` and the
//! pieces joined with `_` (so `http.server.duration` is `http_server_duration`, and runs of
//! `_` collapse). The unit becomes a suffix unless the name already has it: `s` →
//! `_seconds`, `ms` → `_milliseconds`, `By` → `_bytes`, `KiBy` → `_kibibytes`, `%` →
//! `_percent`, `Cel` → `_celsius`, `By/s` → `_bytes_per_second`, … (see [`UNITS`]); units in
//! braces (`{request}`) and `1` add nothing, except that a gauge of unit `1` ends in
//! `_ratio`. Monotonic sums end in `_total`. A name starting with a digit gets a `_` prefix.
//!
//! **Labels.** Data-point attributes become labels through
//! [`attribute_to_label_name`]; attributes that map to the same label have their values
//! joined with `;` in key order. From the resource, `job` = `service.namespace/service.name`
//! (or `service.name`) and `instance` = `service.instance.id`; they win over data-point
//! attributes of the same name. The other resource attributes go on one `target_info`
//! series per resource (value 1, at the resource's latest data-point time, with `job` and
//! `instance`), which PromQL joins on `job`/`instance`; no `target_info` when the resource has
//! nothing beyond the identifying attributes.
//!
//! **Points.**
//!
//! | OTLP                                   | Samples                                           |
//! |----------------------------------------|---------------------------------------------------|
//! | gauge                                  | `name` = value                                    |
//! | sum, monotonic, cumulative             | `name_total` (a counter)                          |
//! | sum, non-monotonic, cumulative         | `name` (a gauge)                                  |
//! | sum, delta                             | as cumulative, after [delta → cumulative](DeltaToCumulative) |
//! | histogram                              | `name_bucket{le=…}` (cumulative counts, last `le="+Inf"` = count), `name_sum` (when sent), `name_count` |
//! | exponential histogram                  | the same classic series, buckets converted as below |
//! | summary                                | `name{quantile=…}`, `name_sum`, `name_count`       |
//!
//! Integers become floats; NaN and ±Inf are values. A point flagged
//! `FLAG_NO_RECORDED_VALUE` becomes the staleness marker on every series it would produce.
//! Times are nanoseconds → milliseconds (truncated); a point without a time gets the receive
//! time. `le` and `quantile` values are printed like Go's `FormatFloat(v, 'f', -1, 64)`.
//!
//! **Exponential histograms.** The store has no native histograms, so each point becomes
//! classic buckets. Its buckets are first merged down to at most scale
//! [`DEFAULT_MAX_EXP_SCALE`] (2: boundaries are powers of 2^(1/4), ~19 % apart), so that
//! a series keeps the same `le` values while the SDK changes its scale and the number of
//! series stays near that of a hand-made classic histogram. The upper boundary of positive
//! bucket `i` is `base^(i+1)`, of negative bucket `i` it is `-base^i`, and the zero bucket's
//! is the zero threshold. The approximation: an observation is counted in the bucket whose
//! (exclusive) OTLP bound and (inclusive) `le` differ on the boundary value itself, and
//! quantiles are interpolated within ~19 %-wide buckets instead of the SDK's finer ones.
//!
//! **Refused points** (the rest of the request is kept; reported in `partial_success`,
//! reason in brackets as used by the metrics): a metric whose name normalises to nothing
//! [`invalid_metric_name`]; a number point without a value [`missing_value`]; a sum or
//! histogram of unspecified temporality [`unspecified_temporality`]; a delta point not newer
//! than the previous one of its series [`delta_out_of_order`] (adding it would count twice).
//!
//! [`invalid_metric_name`]: REASON_INVALID_METRIC_NAME
//! [`missing_value`]: REASON_MISSING_VALUE
//! [`unspecified_temporality`]: REASON_UNSPECIFIED_TEMPORALITY
//! [`delta_out_of_order`]: REASON_DELTA_OUT_OF_ORDER

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, DataPointFlags, ExponentialHistogramDataPoint, HistogramDataPoint,
    Metric, NumberDataPoint, SummaryDataPoint,
};
use sightline_model::{
    AppendReport, Labels, METRIC_NAME_LABEL, MetricBatch, MetricSeries, Sample, TenantId,
    attribute_to_label_name, stale_nan,
};

use super::convert::any_value_to_string;
use crate::{CollectorMetrics, IngestError, MetricIngestHandle};

pub const REASON_INVALID_METRIC_NAME: &str = "invalid_metric_name";
pub const REASON_MISSING_VALUE: &str = "missing_value";
pub const REASON_UNSPECIFIED_TEMPORALITY: &str = "unspecified_temporality";
pub const REASON_DELTA_OUT_OF_ORDER: &str = "delta_out_of_order";

/// Detail messages kept in [`Translated::error_message`]; further refusals are only counted.
const MAX_DETAILS: usize = 10;

/// Default finest scale kept from exponential histograms (boundaries 2^(1/4) apart).
pub const DEFAULT_MAX_EXP_SCALE: i32 = 2;

/// Default number of delta series whose running totals are kept.
pub const DEFAULT_MAX_DELTA_SERIES: usize = 100_000;

/// OTLP unit → Prometheus unit suffix (UCUM "c/s" codes; OpenTelemetry's table).
pub const UNITS: &[(&str, &str)] = &[
    ("d", "days"),
    ("h", "hours"),
    ("min", "minutes"),
    ("s", "seconds"),
    ("ms", "milliseconds"),
    ("us", "microseconds"),
    ("ns", "nanoseconds"),
    ("By", "bytes"),
    ("KiBy", "kibibytes"),
    ("MiBy", "mebibytes"),
    ("GiBy", "gibibytes"),
    ("TiBy", "tibibytes"),
    ("KBy", "kilobytes"),
    ("MBy", "megabytes"),
    ("GBy", "gigabytes"),
    ("TBy", "terabytes"),
    ("m", "meters"),
    ("V", "volts"),
    ("A", "amperes"),
    ("J", "joules"),
    ("W", "watts"),
    ("g", "grams"),
    ("Cel", "celsius"),
    ("Hz", "hertz"),
    ("1", ""),
    ("%", "percent"),
];

/// The "per" part of a unit (`/s` → `per_second`).
const PER_UNITS: &[(&str, &str)] = &[
    ("s", "second"),
    ("m", "minute"),
    ("h", "hour"),
    ("d", "day"),
    ("w", "week"),
    ("mo", "month"),
    ("y", "year"),
];

/// The kind of a metric as far as its name is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Gauge,
    /// Monotonic sum: gets `_total`.
    Counter,
    /// Non-monotonic sum.
    UpDownCounter,
    Histogram,
    Summary,
}

/// The Prometheus name of an OTLP metric (see the module documentation); empty when nothing
/// valid is left.
pub fn normalize_metric_name(name: &str, unit: &str, kind: NameKind) -> String {
    let is_valid = |c: char| c.is_ascii_alphanumeric() || c == ':';
    let mut tokens: Vec<String> = name
        .split(|c: char| !is_valid(c))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();

    let (main, per) = unit_suffixes(unit);
    let main = clean_unit(&main);
    let per = clean_unit(&per);
    let mut main = if tokens.contains(&main) {
        String::new()
    } else {
        main
    };
    let per = if per == "per_" {
        String::new()
    } else {
        let p = per.trim_end_matches('_').to_string();
        if tokens.contains(&p) {
            String::new()
        } else {
            p
        }
    };
    if !per.is_empty() {
        main = main.trim_end_matches('_').to_string();
    }
    if !main.is_empty() {
        tokens.push(main);
    }
    if !per.is_empty() {
        tokens.push(per);
    }
    if kind == NameKind::Counter {
        tokens.retain(|t| t != "total");
        tokens.push("total".into());
    }
    if unit == "1" && kind == NameKind::Gauge {
        tokens.retain(|t| t != "ratio");
        tokens.push("ratio".into());
    }
    let mut out = tokens.join("_");
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if out.chars().all(|c| c == '_') {
        out.clear();
    }
    out
}

/// Main and per suffixes of a unit, before cleaning (`By/s` → (`bytes`, `per_second`)).
fn unit_suffixes(unit: &str) -> (String, String) {
    let mut parts = unit.splitn(2, '/');
    let main_otel = parts.next().unwrap_or("").trim();
    let main = if !main_otel.is_empty() && !main_otel.contains(['{', '}']) {
        lookup(UNITS, main_otel).to_string()
    } else {
        String::new()
    };
    let per = match parts.next() {
        Some(p) if !p.is_empty() => {
            let p = p.trim();
            if !p.is_empty() && !p.contains(['{', '}']) {
                format!("per_{}", lookup(PER_UNITS, p))
            } else {
                String::new()
            }
        }
        _ => String::new(),
    };
    (main, per)
}

fn lookup<'a>(table: &[(&str, &'a str)], key: &'a str) -> &'a str {
    table
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(key, |(_, v)| v)
}

/// Invalid characters → `_`, runs of `_` collapsed, a leading `_` removed.
fn clean_unit(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    for c in unit.chars() {
        let c = if c.is_ascii_alphanumeric() || c == ':' {
            c
        } else {
            '_'
        };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    out.strip_prefix('_').map(str::to_string).unwrap_or(out)
}

/// A float as Go's `strconv.FormatFloat(v, 'f', -1, 64)` prints it (and `+Inf`, `-Inf`,
/// `NaN`): the form Prometheus uses in `le` and `quantile`.
pub fn format_bound(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust's Display is the shortest round-trip decimal, never in exponent form.
        format!("{v}")
    }
}

/// Running totals of delta series, so that delta points are stored as the cumulative series
/// PromQL's `rate()` expects.
///
/// One entry per output series (tenant and full label set, `le` included, hashed to 64 bits):
/// the running total and the time of the last point added. Bounded: when a new series would
/// exceed `max_series`, the least recently updated tenth is evicted. An evicted series that
/// comes back restarts from its next delta, which PromQL sees as a counter reset — `rate()`
/// handles that, at the cost of one interval's increase. Totals live in memory only: after a
/// restart every delta series restarts the same way.
#[derive(Debug)]
pub struct DeltaToCumulative {
    series: HashMap<u64, DeltaSeries>,
    max_series: usize,
    clock: u64,
}

#[derive(Debug, Clone, Copy)]
struct DeltaSeries {
    total: f64,
    last_t: i64,
    used: u64,
}

/// One addition made to a [`DeltaToCumulative`], kept to undo it if the batch is not stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeltaUndo {
    key: u64,
    delta: f64,
    t: i64,
    prev_t: i64,
}

impl DeltaToCumulative {
    /// An empty state keeping at most `max_series` running totals (at least 1).
    pub fn new(max_series: usize) -> Self {
        Self {
            series: HashMap::new(),
            max_series: max_series.max(1),
            clock: 0,
        }
    }

    /// Running totals currently kept.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    fn key(tenant: &TenantId, labels: &Labels) -> u64 {
        let mut h = DefaultHasher::new();
        tenant.as_str().hash(&mut h);
        labels.hash(&mut h);
        h.finish()
    }

    /// Whether a point at `t` is newer than the last one added to the series.
    fn accepts(&self, key: u64, t: i64) -> bool {
        self.series.get(&key).is_none_or(|s| t > s.last_t)
    }

    /// Adds `delta` at time `t`; returns the new total.
    fn add(&mut self, key: u64, t: i64, delta: f64, undo: &mut Vec<DeltaUndo>) -> f64 {
        self.clock += 1;
        if !self.series.contains_key(&key) && self.series.len() >= self.max_series {
            self.evict();
        }
        let clock = self.clock;
        let s = self.series.entry(key).or_insert(DeltaSeries {
            total: 0.0,
            last_t: i64::MIN,
            used: clock,
        });
        undo.push(DeltaUndo {
            key,
            delta,
            t,
            prev_t: s.last_t,
        });
        s.total += delta;
        s.last_t = t;
        s.used = clock;
        s.total
    }

    /// Takes back additions whose batch was not stored (the client will resend it).
    pub fn undo(&mut self, undo: &[DeltaUndo]) {
        for u in undo.iter().rev() {
            if let Some(s) = self.series.get_mut(&u.key) {
                s.total -= u.delta;
                if s.last_t == u.t {
                    s.last_t = u.prev_t;
                }
            }
        }
    }

    /// Drops the least recently updated tenth of the series.
    fn evict(&mut self) {
        let mut used: Vec<u64> = self.series.values().map(|s| s.used).collect();
        let n = (used.len() / 10).max(1).min(used.len());
        let (_, nth, _) = used.select_nth_unstable(n - 1);
        let threshold = *nth;
        self.series.retain(|_, s| s.used > threshold);
    }
}

/// The outcome of translating one export request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Translated {
    /// One series per produced sample (points of the same series are not merged).
    pub series: Vec<MetricSeries>,
    /// Data points in the request, accepted or not.
    pub received_points: u64,
    /// Data points refused.
    pub rejected_points: u64,
    /// Refused points per reason (the metrics' `reason` label), in first-seen order.
    pub rejected_by_reason: Vec<(&'static str, u64)>,
    /// Empty when nothing was refused; otherwise names the first refused points.
    pub error_message: String,
    /// Delta additions made while translating, to undo if the batch is not stored.
    pub delta_undo: Vec<DeltaUndo>,
}

impl Translated {
    /// Samples produced (the `target_info` samples included).
    pub fn sample_count(&self) -> u64 {
        self.series.iter().map(|s| s.samples.len() as u64).sum()
    }
}

/// Translation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TranslateOptions {
    /// Exponential histogram buckets are merged down to at most this scale.
    pub max_exp_scale: i32,
    /// A data point whose series would have more labels is refused (remote_write's limit,
    /// Mimir's `max_label_names_per_series`): checked on the attributes before any label is
    /// built, so a point with 100,000 attributes costs a comparison.
    pub max_labels_per_series: usize,
    /// A data point with a longer attribute name or value is refused.
    pub max_label_name_bytes: usize,
    pub max_label_value_bytes: usize,
}

impl Default for TranslateOptions {
    fn default() -> Self {
        Self {
            max_exp_scale: DEFAULT_MAX_EXP_SCALE,
            max_labels_per_series: 30,
            max_label_name_bytes: 1024,
            max_label_value_bytes: 2048,
        }
    }
}

/// Reason for a point whose labels are over a limit.
pub const REASON_LABEL_LIMIT: &str = "label_limit";

/// Labels shared by every series of one resource.
struct ResourceCtx {
    job: Option<String>,
    instance: Option<String>,
}

/// Accumulates the output of one request.
struct Translator<'a> {
    tenant: &'a TenantId,
    now_ms: i64,
    options: TranslateOptions,
    delta: &'a mut DeltaToCumulative,
    out: Translated,
    details: Vec<String>,
}

/// One sample to produce: name suffix, extra label, value.
struct Out {
    suffix: &'static str,
    extra: Option<(&'static str, String)>,
    value: f64,
}

impl Out {
    fn new(suffix: &'static str, value: f64) -> Self {
        Self {
            suffix,
            extra: None,
            value,
        }
    }
}

/// Translates an export request for one tenant. `now_ms` is the receive time, used for points
/// without a time; delta points update `delta`.
pub fn translate_request(
    request: ExportMetricsServiceRequest,
    tenant: &TenantId,
    now_ms: i64,
    options: TranslateOptions,
    delta: &mut DeltaToCumulative,
) -> Translated {
    let mut tr = Translator {
        tenant,
        now_ms,
        options,
        delta,
        out: Translated::default(),
        details: Vec::new(),
    };
    for (ri, rm) in request.resource_metrics.into_iter().enumerate() {
        let attrs: Vec<(String, String)> =
            rm.resource.map(|r| pairs(r.attributes)).unwrap_or_default();
        let get = |k: &str| {
            attrs
                .iter()
                .find(|(n, v)| n == k && !v.is_empty())
                .map(|(_, v)| v.clone())
        };
        let job = get("service.name").map(|name| match get("service.namespace") {
            Some(ns) => format!("{ns}/{name}"),
            None => name,
        });
        let ctx = ResourceCtx {
            job,
            instance: get("service.instance.id"),
        };
        let mut latest: Option<i64> = None;
        for (si, sm) in rm.scope_metrics.into_iter().enumerate() {
            for (mi, metric) in sm.metrics.into_iter().enumerate() {
                let at = format!(
                    "resource_metrics[{ri}].scope_metrics[{si}].metrics[{mi}] ({:?})",
                    metric.name
                );
                if let Some(t) = tr.metric(&ctx, metric, &at) {
                    latest = Some(latest.map_or(t, |l| l.max(t)));
                }
            }
        }
        if let Some(t) = latest {
            tr.target_info(&ctx, &attrs, t);
        }
    }
    let Translator {
        mut out, details, ..
    } = tr;
    if out.rejected_points > 0 {
        let mut msg = format!(
            "rejected {} of {} data points: {}",
            out.rejected_points,
            out.received_points,
            details.join("; ")
        );
        let unnamed = out.rejected_points - details.len() as u64;
        if unnamed > 0 {
            msg.push_str(&format!("; and {unnamed} more"));
        }
        out.error_message = msg;
    }
    out
}

/// Attribute list → `(name, value-as-string)` pairs.
fn pairs(kvs: Vec<KeyValue>) -> Vec<(String, String)> {
    kvs.into_iter()
        .map(|kv| (kv.key, any_value_to_string(kv.value)))
        .collect()
}

fn is_stale(flags: u32) -> bool {
    flags & DataPointFlags::NoRecordedValueMask as u32 != 0
}

impl Translator<'_> {
    /// Whether a sum or histogram is delta (`Some(true)`) or cumulative; an unspecified
    /// temporality refuses its `points` and gives `None`.
    fn is_delta(
        &mut self,
        temporality: i32,
        what: &str,
        points: usize,
        at: &dyn std::fmt::Display,
    ) -> Option<bool> {
        match AggregationTemporality::try_from(temporality).unwrap_or_default() {
            AggregationTemporality::Delta => Some(true),
            AggregationTemporality::Cumulative => Some(false),
            AggregationTemporality::Unspecified => {
                self.refuse(points as u64, REASON_UNSPECIFIED_TEMPORALITY, || {
                    format!("{at}: {what} with unspecified aggregation temporality")
                });
                None
            }
        }
    }

    /// Why a point with these attributes cannot be stored, if it cannot: over the label
    /// count (with `__name__`, `job`, `instance` and a suffix label) or a length limit.
    fn over_label_limits(&self, attributes: &[KeyValue]) -> Option<String> {
        let o = &self.options;
        let labels = attributes.len() + 4;
        if labels > o.max_labels_per_series {
            return Some(format!(
                "{} attributes make a series of up to {labels} labels, the limit is {} (max_labels_per_series)",
                attributes.len(),
                o.max_labels_per_series
            ));
        }
        for kv in attributes {
            if kv.key.len() > o.max_label_name_bytes {
                return Some(format!(
                    "attribute name of {} bytes, the limit is {} (max_label_name_bytes)",
                    kv.key.len(),
                    o.max_label_name_bytes
                ));
            }
            let value_len = attribute_text_len(kv);
            if value_len > o.max_label_value_bytes {
                return Some(format!(
                    "attribute {:?} has a value of {} bytes, the limit is {} (max_label_value_bytes)",
                    kv.key, value_len, o.max_label_value_bytes
                ));
            }
        }
        None
    }

    fn refuse(&mut self, points: u64, reason: &'static str, what: impl FnOnce() -> String) {
        if points == 0 {
            return;
        }
        self.out.rejected_points += points;
        match self
            .out
            .rejected_by_reason
            .iter_mut()
            .find(|(r, _)| *r == reason)
        {
            Some((_, n)) => *n += points,
            None => self.out.rejected_by_reason.push((reason, points)),
        }
        if self.details.len() < MAX_DETAILS {
            self.details.push(what());
        }
    }

    fn time_ms(&self, ns: u64) -> i64 {
        if ns == 0 {
            self.now_ms
        } else {
            // u64 nanoseconds / 10^6 always fits in i64.
            (ns / 1_000_000) as i64
        }
    }

    /// Translates one metric; returns the latest time of its accepted points.
    fn metric(&mut self, ctx: &ResourceCtx, metric: Metric, at: &str) -> Option<i64> {
        let Metric {
            name, unit, data, ..
        } = metric;
        let data = data?;
        let (kind, points) = match &data {
            Data::Gauge(g) => (NameKind::Gauge, g.data_points.len()),
            Data::Sum(s) if s.is_monotonic => (NameKind::Counter, s.data_points.len()),
            Data::Sum(s) => (NameKind::UpDownCounter, s.data_points.len()),
            Data::Histogram(h) => (NameKind::Histogram, h.data_points.len()),
            Data::ExponentialHistogram(h) => (NameKind::Histogram, h.data_points.len()),
            Data::Summary(s) => (NameKind::Summary, s.data_points.len()),
        };
        self.out.received_points += points as u64;
        let prom_name = normalize_metric_name(&name, &unit, kind);
        if prom_name.is_empty() {
            self.refuse(points as u64, REASON_INVALID_METRIC_NAME, || {
                format!("{at}: the name normalises to nothing valid")
            });
            return None;
        }
        let mut latest = None;
        let mut seen = |t: i64| latest = Some(latest.map_or(t, |l: i64| l.max(t)));
        match data {
            Data::Gauge(g) => {
                for (pi, p) in g.data_points.into_iter().enumerate() {
                    if let Some(t) = self.number_point(ctx, &prom_name, p, false, at, pi) {
                        seen(t);
                    }
                }
            }
            Data::Sum(s) => {
                let delta = self.is_delta(s.aggregation_temporality, "sum", points, &at)?;
                for (pi, p) in s.data_points.into_iter().enumerate() {
                    if let Some(t) = self.number_point(ctx, &prom_name, p, delta, at, pi) {
                        seen(t);
                    }
                }
            }
            Data::Histogram(h) => {
                let delta = self.is_delta(h.aggregation_temporality, "histogram", points, &at)?;
                for (pi, p) in h.data_points.into_iter().enumerate() {
                    let t = self.time_ms(p.time_unix_nano);
                    let outs = histogram_outputs(&p);
                    if self.emit(
                        ctx,
                        &prom_name,
                        &p.attributes,
                        t,
                        outs,
                        p.flags,
                        delta,
                        at,
                        pi,
                    ) {
                        seen(t);
                    }
                }
            }
            Data::ExponentialHistogram(h) => {
                let delta = self.is_delta(
                    h.aggregation_temporality,
                    "exponential histogram",
                    points,
                    &at,
                )?;
                for (pi, p) in h.data_points.into_iter().enumerate() {
                    let t = self.time_ms(p.time_unix_nano);
                    let outs = exp_histogram_outputs(&p, self.options.max_exp_scale);
                    if self.emit(
                        ctx,
                        &prom_name,
                        &p.attributes,
                        t,
                        outs,
                        p.flags,
                        delta,
                        at,
                        pi,
                    ) {
                        seen(t);
                    }
                }
            }
            Data::Summary(s) => {
                for (pi, p) in s.data_points.into_iter().enumerate() {
                    let t = self.time_ms(p.time_unix_nano);
                    let outs = summary_outputs(&p);
                    if self.emit(
                        ctx,
                        &prom_name,
                        &p.attributes,
                        t,
                        outs,
                        p.flags,
                        false,
                        at,
                        pi,
                    ) {
                        seen(t);
                    }
                }
            }
        }
        latest
    }

    fn number_point(
        &mut self,
        ctx: &ResourceCtx,
        name: &str,
        p: NumberDataPoint,
        delta: bool,
        at: &str,
        pi: usize,
    ) -> Option<i64> {
        let t = self.time_ms(p.time_unix_nano);
        let value = match p.value {
            Some(Value::AsDouble(v)) => v,
            Some(Value::AsInt(i)) => i as f64,
            None if is_stale(p.flags) => stale_nan(),
            None => {
                self.refuse(1, REASON_MISSING_VALUE, || {
                    format!("{at}.data_points[{pi}]: no value")
                });
                return None;
            }
        };
        let outs = vec![Out::new("", value)];
        self.emit(ctx, name, &p.attributes, t, outs, p.flags, delta, at, pi)
            .then_some(t)
    }

    /// Adds the samples of one data point; `false` when the point was refused.
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        ctx: &ResourceCtx,
        name: &str,
        attributes: &[KeyValue],
        t: i64,
        outs: Vec<Out>,
        flags: u32,
        delta: bool,
        at: &str,
        pi: usize,
    ) -> bool {
        if let Some(why) = self.over_label_limits(attributes) {
            self.refuse(1, REASON_LABEL_LIMIT, || {
                format!("{at}.data_points[{pi}]: {why}")
            });
            return false;
        }
        let base = point_labels(attributes, ctx);
        let stale = is_stale(flags);
        let series: Vec<(Labels, f64)> = outs
            .into_iter()
            .map(|o| {
                let mut pairs = base.clone();
                if let Some(extra) = o.extra {
                    pairs.push((extra.0.to_string(), extra.1));
                }
                pairs.push((METRIC_NAME_LABEL.to_string(), format!("{name}{}", o.suffix)));
                (Labels::from_pairs(pairs), o.value)
            })
            .collect();
        if delta && !stale {
            let keys: Vec<u64> = series
                .iter()
                .map(|(l, _)| DeltaToCumulative::key(self.tenant, l))
                .collect();
            if !keys.iter().all(|k| self.delta.accepts(*k, t)) {
                self.refuse(1, REASON_DELTA_OUT_OF_ORDER, || {
                    format!(
                        "{at}.data_points[{pi}]: delta point at {t} ms is not newer than the previous point of its series"
                    )
                });
                return false;
            }
            for ((labels, v), key) in series.into_iter().zip(keys) {
                let value = if v.is_nan() {
                    v
                } else {
                    self.delta.add(key, t, v, &mut self.out.delta_undo)
                };
                self.push(labels, t, value);
            }
        } else {
            for (labels, v) in series {
                self.push(labels, t, if stale { stale_nan() } else { v });
            }
        }
        true
    }

    fn push(&mut self, labels: Labels, t: i64, v: f64) {
        self.out.series.push(MetricSeries {
            labels,
            samples: vec![Sample { t, v }],
        });
    }

    /// The resource's `target_info` sample, unless it has only identifying attributes.
    fn target_info(&mut self, ctx: &ResourceCtx, attrs: &[(String, String)], t: i64) {
        const IDENTIFYING: [&str; 3] = ["service.name", "service.namespace", "service.instance.id"];
        let others: Vec<(String, String)> = attrs
            .iter()
            .filter(|(k, _)| !IDENTIFYING.contains(&k.as_str()))
            .cloned()
            .collect();
        if others.is_empty() {
            return;
        }
        // Resource attributes over the label limits make no `target_info` (the data points
        // are kept: the limit is the series', and theirs carry only job and instance).
        let o = &self.options;
        if others.len() + 3 > o.max_labels_per_series
            || others
                .iter()
                .any(|(k, v)| k.len() > o.max_label_name_bytes || v.len() > o.max_label_value_bytes)
        {
            tracing::debug!(
                attributes = others.len(),
                "resource attributes over the label limits: no target_info"
            );
            return;
        }
        let mut pairs = merge_attributes(others);
        push_identity(&mut pairs, ctx);
        pairs.push((METRIC_NAME_LABEL.to_string(), "target_info".to_string()));
        self.push(Labels::from_pairs(pairs), t, 1.0);
    }
}

/// The length of an attribute's label text. Checked for every attribute of every point
/// before its labels are built, so strings (nearly all attributes) are measured where they
/// are, not copied; other values are rendered as the labels will render them.
fn attribute_text_len(kv: &KeyValue) -> usize {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Any::StringValue(s)) => s.len(),
        _ => any_value_to_string(kv.value.clone()).len(),
    }
}

/// Data-point attributes as label pairs, then `job` and `instance` (which win).
fn point_labels(attributes: &[KeyValue], ctx: &ResourceCtx) -> Vec<(String, String)> {
    let attrs = attributes
        .iter()
        .map(|kv| (kv.key.clone(), any_value_to_string(kv.value.clone())))
        .collect();
    let mut pairs = merge_attributes(attrs);
    push_identity(&mut pairs, ctx);
    pairs
}

fn push_identity(pairs: &mut Vec<(String, String)>, ctx: &ResourceCtx) {
    if let Some(job) = &ctx.job {
        pairs.push(("job".into(), job.clone()));
    }
    if let Some(instance) = &ctx.instance {
        pairs.push(("instance".into(), instance.clone()));
    }
}

/// Attributes → label pairs: names mapped, sorted by original key, values of attributes that
/// map to the same label joined with `;` (as Prometheus does). Empty keys are dropped.
fn merge_attributes(mut attrs: Vec<(String, String)>) -> Vec<(String, String)> {
    attrs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(String, String)> = Vec::with_capacity(attrs.len());
    for (k, v) in attrs {
        if k.is_empty() {
            continue;
        }
        let name = attribute_to_label_name(&k);
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => {
                existing.push(';');
                existing.push_str(&v);
            }
            None => out.push((name, v)),
        }
    }
    out
}

/// `_bucket{le}` (cumulative), `_sum` (when sent) and `_count` of an explicit histogram.
fn histogram_outputs(p: &HistogramDataPoint) -> Vec<Out> {
    let mut outs = Vec::with_capacity(p.explicit_bounds.len() + 3);
    let mut cumulative = 0u64;
    for (bound, count) in p.explicit_bounds.iter().zip(&p.bucket_counts) {
        cumulative = cumulative.saturating_add(*count);
        outs.push(bucket(*bound, cumulative as f64));
    }
    outs.push(bucket(f64::INFINITY, p.count as f64));
    if let Some(sum) = p.sum {
        outs.push(Out::new("_sum", sum));
    }
    outs.push(Out::new("_count", p.count as f64));
    outs
}

fn bucket(le: f64, cumulative: f64) -> Out {
    Out {
        suffix: "_bucket",
        extra: Some(("le", format_bound(le))),
        value: cumulative,
    }
}

/// Classic buckets of an exponential histogram (see the module documentation), `_sum` (when
/// sent) and `_count`.
fn exp_histogram_outputs(p: &ExponentialHistogramDataPoint, max_scale: i32) -> Vec<Out> {
    let scale = p.scale.min(max_scale);
    let shift = (p.scale - scale).clamp(0, 63) as u32;
    // Counts per bucket index at the target scale, in ascending index order.
    let downscale = |b: &Option<Buckets>| -> Vec<(i64, u64)> {
        let mut merged: Vec<(i64, u64)> = Vec::new();
        if let Some(b) = b {
            for (k, count) in b.bucket_counts.iter().enumerate() {
                let index = (i64::from(b.offset) + k as i64) >> shift;
                match merged.last_mut() {
                    Some((i, c)) if *i == index => *c = c.saturating_add(*count),
                    _ => merged.push((index, *count)),
                }
            }
        }
        merged
    };
    let positive = downscale(&p.positive);
    let negative = downscale(&p.negative);
    // Upper boundary of bucket `index` at `scale`: base^(index+1) = 2^((index+1) / 2^scale).
    let bound = |index: i64| ((index as f64) * (-f64::from(scale)).exp2()).exp2();

    let mut les: Vec<(f64, u64)> = Vec::new();
    let mut cumulative = 0u64;
    let mut add = |le: f64, count: u64, les: &mut Vec<(f64, u64)>| {
        cumulative = cumulative.saturating_add(count);
        match les.last_mut() {
            // Boundaries that do not increase (overflow, a zero threshold above the first
            // positive boundary) are merged into the previous bucket.
            Some((last, c)) if le <= *last => *c = cumulative,
            _ => les.push((le, cumulative)),
        }
    };
    // Negative buckets, most negative first: bucket i holds values in [-base^(i+1), -base^i).
    for (index, count) in negative.iter().rev() {
        add(-bound(*index), *count, &mut les);
    }
    add(p.zero_threshold.max(0.0), p.zero_count, &mut les);
    for (index, count) in &positive {
        add(bound(index + 1), *count, &mut les);
    }
    let mut outs: Vec<Out> = les
        .into_iter()
        .filter(|(le, _)| le.is_finite())
        .map(|(le, c)| bucket(le, c as f64))
        .collect();
    outs.push(bucket(f64::INFINITY, p.count as f64));
    if let Some(sum) = p.sum {
        outs.push(Out::new("_sum", sum));
    }
    outs.push(Out::new("_count", p.count as f64));
    outs
}

/// `{quantile}`, `_sum` and `_count` of a summary.
fn summary_outputs(p: &SummaryDataPoint) -> Vec<Out> {
    let mut outs: Vec<Out> = p
        .quantile_values
        .iter()
        .map(|q| Out {
            suffix: "",
            extra: Some(("quantile", format_bound(q.quantile))),
            value: q.value,
        })
        .collect();
    outs.push(Out::new("_sum", p.sum));
    outs.push(Out::new("_count", p.count as f64));
    outs
}

/// Whether any metric of the request has delta temporality.
fn has_delta(request: &ExportMetricsServiceRequest) -> bool {
    let delta = AggregationTemporality::Delta as i32;
    request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .any(|m| match &m.data {
            Some(Data::Sum(s)) => s.aggregation_temporality == delta,
            Some(Data::Histogram(h)) => h.aggregation_temporality == delta,
            Some(Data::ExponentialHistogram(h)) => h.aggregation_temporality == delta,
            _ => false,
        })
}

/// What the OTLP metrics receivers (HTTP and gRPC) share: the metric ingest queue and the
/// delta → cumulative state. Cheap to clone; give the same value to both receivers so that a
/// delta series keeps one running total whichever protocol it arrives on.
#[derive(Debug, Clone)]
pub struct OtlpMetricsIngest {
    ingest: MetricIngestHandle,
    delta: Arc<Mutex<DeltaToCumulative>>,
    options: TranslateOptions,
}

/// What one export produced, for the response and the counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ExportOutcome {
    pub(crate) rejected_points: u64,
    pub(crate) error_message: String,
}

impl OtlpMetricsIngest {
    /// Receivers writing to `ingest`, keeping up to [`DEFAULT_MAX_DELTA_SERIES`] delta totals.
    pub fn new(ingest: MetricIngestHandle) -> Self {
        Self::with_options(
            ingest,
            DEFAULT_MAX_DELTA_SERIES,
            TranslateOptions::default(),
        )
    }

    /// Receivers with a delta-state bound and translation options of your choice.
    pub fn with_options(
        ingest: MetricIngestHandle,
        max_delta_series: usize,
        options: TranslateOptions,
    ) -> Self {
        Self {
            ingest,
            delta: Arc::new(Mutex::new(DeltaToCumulative::new(max_delta_series))),
            options,
        }
    }

    /// Translates a request (CPU work: call it off the async workers for large requests).
    pub fn translate(
        &self,
        request: ExportMetricsServiceRequest,
        tenant: &TenantId,
        now_ms: i64,
    ) -> Translated {
        // Only delta points touch the shared state: requests without any (the usual,
        // cumulative case) are translated without taking the lock, so they run in parallel.
        if has_delta(&request) {
            let mut delta = self.delta.lock().unwrap_or_else(|e| e.into_inner());
            translate_request(request, tenant, now_ms, self.options, &mut delta)
        } else {
            let mut unused = DeltaToCumulative::new(1);
            translate_request(request, tenant, now_ms, self.options, &mut unused)
        }
    }

    /// Stores a translated request and counts it under `source` (`bytes`: the request's
    /// decoded size). On an ingest error the delta
    /// additions are undone (the client will resend) and the error is returned.
    pub(crate) async fn store(
        &self,
        tenant: &TenantId,
        translated: Translated,
        source: &'static str,
        bytes: u64,
        metrics: &CollectorMetrics,
    ) -> Result<ExportOutcome, IngestError> {
        let t = tenant.as_str();
        let samples = translated.sample_count();
        metrics.metric_received(source, t, samples + translated.rejected_points, bytes);
        for (reason, n) in &translated.rejected_by_reason {
            metrics.metric_rejected(source, t, reason, *n);
        }
        let Translated {
            series,
            rejected_points,
            mut error_message,
            delta_undo,
            ..
        } = translated;
        let mut report = AppendReport::default();
        if !series.is_empty() {
            let batch = MetricBatch {
                tenant: tenant.clone(),
                series,
            };
            match self.ingest.ingest(batch).await {
                Ok(r) => report = r,
                Err(e) => {
                    if !delta_undo.is_empty() {
                        let mut delta = self.delta.lock().unwrap_or_else(|e| e.into_inner());
                        delta.undo(&delta_undo);
                    }
                    let reason = match e {
                        IngestError::Overloaded => "overloaded",
                        IngestError::ShuttingDown => "shutting_down",
                        IngestError::Storage(_) => "storage_error",
                    };
                    metrics.metric_rejected(source, t, reason, samples);
                    return Err(e);
                }
            }
            metrics.metric_accepted(source, t, report.accepted);
            for (reason, n) in &report.rejected {
                metrics.metric_rejected(source, t, reason.as_str(), *n);
            }
        }
        let store_refused = report.rejected_total();
        if store_refused > 0 {
            let counts: Vec<String> = report
                .rejected
                .iter()
                .map(|(r, n)| format!("{}: {n}", r.as_str()))
                .collect();
            if !error_message.is_empty() {
                error_message.push_str("; ");
            }
            error_message.push_str(&format!(
                "the store refused {store_refused} samples ({}); first: {}",
                counts.join(", "),
                report.first_rejection.as_deref().unwrap_or("not described")
            ));
        }
        Ok(ExportOutcome {
            rejected_points: rejected_points + store_refused,
            error_message,
        })
    }
}

impl ExportOutcome {
    /// The OTLP response: `partial_success` set when anything was refused. Store refusals are
    /// counted in samples (a histogram point is several samples).
    pub(crate) fn response(self) -> ExportMetricsServiceResponse {
        ExportMetricsServiceResponse {
            partial_success: (self.rejected_points > 0 || !self.error_message.is_empty()).then(
                || ExportMetricsPartialSuccess {
                    rejected_data_points: i64::try_from(self.rejected_points).unwrap_or(i64::MAX),
                    error_message: self.error_message,
                },
            ),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
    use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
    use opentelemetry_proto::tonic::metrics::v1::{
        ExponentialHistogram, Gauge, Histogram, ResourceMetrics, ScopeMetrics, Sum, Summary,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use sightline_model::is_stale_nan;

    use super::*;

    pub(crate) const T0: u64 = 1_700_000_000_000_000_000;
    pub(crate) const T0_MS: i64 = 1_700_000_000_000;

    pub(crate) fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    pub(crate) fn metrics_request(
        resource: Vec<KeyValue>,
        metrics: Vec<Metric>,
    ) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    pub(crate) fn gauge(name: &str, unit: &str, points: Vec<NumberDataPoint>) -> Metric {
        Metric {
            name: name.into(),
            unit: unit.into(),
            data: Some(Data::Gauge(Gauge {
                data_points: points,
            })),
            ..Default::default()
        }
    }

    fn sum(
        name: &str,
        unit: &str,
        monotonic: bool,
        temporality: AggregationTemporality,
        points: Vec<NumberDataPoint>,
    ) -> Metric {
        Metric {
            name: name.into(),
            unit: unit.into(),
            data: Some(Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: temporality as i32,
                is_monotonic: monotonic,
            })),
            ..Default::default()
        }
    }

    pub(crate) fn point(t_ns: u64, v: f64, attrs: Vec<KeyValue>) -> NumberDataPoint {
        NumberDataPoint {
            attributes: attrs,
            time_unix_nano: t_ns,
            value: Some(Value::AsDouble(v)),
            ..Default::default()
        }
    }

    fn translate(req: ExportMetricsServiceRequest) -> Translated {
        let mut d = DeltaToCumulative::new(100);
        translate_with(req, &mut d)
    }

    fn translate_with(req: ExportMetricsServiceRequest, d: &mut DeltaToCumulative) -> Translated {
        translate_request(
            req,
            &TenantId::default_tenant(),
            42,
            TranslateOptions::default(),
            d,
        )
    }

    /// `(canonical labels, t, v)` of every sample.
    fn samples(t: &Translated) -> Vec<(String, i64, f64)> {
        t.series
            .iter()
            .flat_map(|s| {
                s.samples
                    .iter()
                    .map(|x| (s.labels.to_canonical(), x.t, x.v))
            })
            .collect()
    }

    fn values_of(t: &Translated, name: &str) -> Vec<(String, f64)> {
        t.series
            .iter()
            .filter(|s| s.labels.get("__name__") == Some(name))
            .map(|s| (s.labels.to_canonical(), s.samples[0].v))
            .collect()
    }

    #[test]
    fn metric_names_follow_the_otel_prometheus_translation() {
        use NameKind::*;
        let cases = [
            (
                "http.server.duration",
                "s",
                Histogram,
                "http_server_duration_seconds",
            ),
            (
                "http.server.request.duration",
                "ms",
                Histogram,
                "http_server_request_duration_milliseconds",
            ),
            (
                "system.memory.usage",
                "By",
                Gauge,
                "system_memory_usage_bytes",
            ),
            (
                "system.cpu.utilization",
                "1",
                Gauge,
                "system_cpu_utilization_ratio",
            ),
            ("items", "1", Counter, "items_total"),
            ("http.requests", "{request}", Counter, "http_requests_total"),
            ("requests_total", "", Counter, "requests_total"),
            ("total.requests", "", Counter, "requests_total"),
            ("net.io", "By/s", Gauge, "net_io_bytes_per_second"),
            ("queue.depth", "{item}", UpDownCounter, "queue_depth"),
            ("duration_seconds", "s", Histogram, "duration_seconds"),
            ("a..b__c", "", Gauge, "a_b_c"),
            ("temp", "Cel", Gauge, "temp_celsius"),
            ("disk.ratio", "1", Gauge, "disk_ratio"),
            ("rate", "1/s", Gauge, "rate_per_second"),
            ("weird", "foo bar", Gauge, "weird_foo_bar"),
            ("2xx.count", "", Counter, "_2xx_count_total"),
            ("ns:metric", "", Gauge, "ns:metric"),
            ("jobs", "{job}/min", Gauge, "jobs_per_min"),
            ("...", "", Gauge, ""),
        ];
        for (name, unit, kind, want) in cases {
            assert_eq!(
                normalize_metric_name(name, unit, kind),
                want,
                "{name} [{unit}]"
            );
        }
    }

    #[test]
    fn bounds_print_like_go() {
        assert_eq!(format_bound(0.005), "0.005");
        assert_eq!(format_bound(1.0), "1");
        assert_eq!(format_bound(1e-7), "0.0000001");
        assert_eq!(format_bound(2.5e6), "2500000");
        assert_eq!(format_bound(f64::INFINITY), "+Inf");
        assert_eq!(format_bound(f64::NEG_INFINITY), "-Inf");
    }

    /// A point with 100,001 attributes used to become a 100,001-label series at a cost that
    /// grew faster than linearly; now it is refused by count before any label is built.
    #[test]
    fn points_over_the_label_limits_are_refused_and_the_rest_kept() {
        let many: Vec<KeyValue> = (0..100_001).map(|i| kv(&format!("a{i}"), "v")).collect();
        let long = vec![kv("path", &"x".repeat(2049))];
        let req = metrics_request(
            vec![],
            vec![gauge(
                "g",
                "",
                vec![
                    point(1_000_000, 1.0, many),
                    point(1_000_000, 2.0, long),
                    point(1_000_000, 3.0, vec![kv("ok", "yes")]),
                ],
            )],
        );
        let t = translate(req);
        assert_eq!(t.rejected_points, 2);
        assert_eq!(t.rejected_by_reason, vec![(REASON_LABEL_LIMIT, 2)]);
        assert!(
            t.error_message
                .contains("100001 attributes make a series of up to 100005 labels, the limit is 30 (max_labels_per_series)"),
            "{}",
            t.error_message
        );
        assert!(
            t.error_message
                .contains("value of 2049 bytes, the limit is 2048 (max_label_value_bytes)"),
            "{}",
            t.error_message
        );
        assert_eq!(samples(&t).len(), 1);
    }

    #[test]
    fn gauge_with_job_instance_and_target_info() {
        let req = metrics_request(
            vec![
                kv("service.name", "checkout"),
                kv("service.namespace", "shop"),
                kv("service.instance.id", "pod-1"),
                kv("k8s.pod.name", "checkout-7d9"),
                kv("host.name", "node-3"),
            ],
            vec![gauge(
                "process.runtime.memory",
                "By",
                vec![
                    point(T0, 512.0, vec![kv("pool", "heap"), kv("job", "shadowed")]),
                    point(T0 + 5_000_000_000, 1024.5, vec![kv("pool", "heap")]),
                ],
            )],
        );
        let t = translate(req);
        assert_eq!(t.received_points, 2);
        assert_eq!(t.rejected_points, 0);
        assert_eq!(
            samples(&t),
            vec![
                (
                    r#"{__name__="process_runtime_memory_bytes", instance="pod-1", job="shop/checkout", pool="heap"}"#.to_string(),
                    T0_MS,
                    512.0
                ),
                (
                    r#"{__name__="process_runtime_memory_bytes", instance="pod-1", job="shop/checkout", pool="heap"}"#.to_string(),
                    T0_MS + 5000,
                    1024.5
                ),
                (
                    r#"{__name__="target_info", host_name="node-3", instance="pod-1", job="shop/checkout", k8s_pod_name="checkout-7d9"}"#.to_string(),
                    T0_MS + 5000,
                    1.0
                ),
            ]
        );
    }

    #[test]
    fn no_target_info_without_extra_resource_attributes() {
        let t = translate(metrics_request(
            vec![kv("service.name", "api")],
            vec![gauge("g", "", vec![point(T0, 1.0, vec![])])],
        ));
        assert_eq!(
            samples(&t),
            vec![(r#"{__name__="g", job="api"}"#.to_string(), T0_MS, 1.0)]
        );
    }

    #[test]
    fn colliding_attributes_are_joined_and_ints_become_floats() {
        let mut p = point(0, 0.0, vec![kv("a.b", "1"), kv("a_b", "2")]);
        p.value = Some(Value::AsInt(7));
        let t = translate(metrics_request(vec![], vec![gauge("g", "", vec![p])]));
        // A point without a time gets the receive time.
        assert_eq!(
            samples(&t),
            vec![(r#"{__name__="g", a_b="1;2"}"#.to_string(), 42, 7.0)]
        );
    }

    #[test]
    fn sums_counters_and_gauges() {
        use AggregationTemporality::*;
        let t = translate(metrics_request(
            vec![],
            vec![
                sum(
                    "http.requests",
                    "{request}",
                    true,
                    Cumulative,
                    vec![point(T0, 10.0, vec![])],
                ),
                sum(
                    "queue.size",
                    "{item}",
                    false,
                    Cumulative,
                    vec![point(T0, -3.0, vec![])],
                ),
                sum("bad", "", true, Unspecified, vec![point(T0, 1.0, vec![])]),
            ],
        ));
        assert_eq!(values_of(&t, "http_requests_total").len(), 1);
        assert_eq!(values_of(&t, "queue_size")[0].1, -3.0);
        assert_eq!(t.rejected_points, 1);
        assert_eq!(
            t.rejected_by_reason,
            vec![(REASON_UNSPECIFIED_TEMPORALITY, 1)]
        );
        assert!(
            t.error_message.starts_with(
                "rejected 1 of 3 data points: resource_metrics[0].scope_metrics[0].metrics[2] (\"bad\"): sum with unspecified"
            ),
            "{}",
            t.error_message
        );
    }

    #[test]
    fn delta_sums_become_cumulative_and_undo_works() {
        use AggregationTemporality::*;
        let mut d = DeltaToCumulative::new(100);
        let req = |t: u64, v: f64| {
            metrics_request(
                vec![kv("service.name", "svc")],
                vec![sum(
                    "jobs.done",
                    "",
                    true,
                    Delta,
                    vec![point(t, v, vec![kv("q", "a")])],
                )],
            )
        };
        let a = translate_with(req(T0, 5.0), &mut d);
        let b = translate_with(req(T0 + 1_000_000_000, 2.0), &mut d);
        assert_eq!(values_of(&a, "jobs_done_total")[0].1, 5.0);
        assert_eq!(values_of(&b, "jobs_done_total")[0].1, 7.0);
        // Out of order (not newer): refused, the total is unchanged.
        let c = translate_with(req(T0 + 1_000_000_000, 100.0), &mut d);
        assert_eq!(c.rejected_by_reason, vec![(REASON_DELTA_OUT_OF_ORDER, 1)]);
        assert!(values_of(&c, "jobs_done_total").is_empty());
        // A batch that was not stored is undone: resending it counts once.
        let e = translate_with(req(T0 + 2_000_000_000, 3.0), &mut d);
        assert_eq!(values_of(&e, "jobs_done_total")[0].1, 10.0);
        d.undo(&e.delta_undo);
        let e2 = translate_with(req(T0 + 2_000_000_000, 3.0), &mut d);
        assert_eq!(values_of(&e2, "jobs_done_total")[0].1, 10.0);
        // Other tenants have their own totals.
        let other = translate_request(
            req(T0 + 3_000_000_000, 1.0),
            &TenantId::new("other").unwrap(),
            0,
            TranslateOptions::default(),
            &mut d,
        );
        assert_eq!(values_of(&other, "jobs_done_total")[0].1, 1.0);
    }

    #[test]
    fn delta_state_is_bounded() {
        let mut d = DeltaToCumulative::new(10);
        let mut undo = Vec::new();
        for k in 0..25u64 {
            d.add(k, 1, 1.0, &mut undo);
            assert!(d.len() <= 10);
        }
        // The most recent keys survive; an evicted one restarts from zero.
        assert!(d.accepts(0, 1));
        assert_eq!(d.add(24, 2, 1.0, &mut undo), 2.0);
        assert_eq!(d.add(0, 2, 1.0, &mut undo), 1.0);
    }

    #[test]
    fn explicit_histogram_to_classic_buckets() {
        let p = HistogramDataPoint {
            attributes: vec![kv("route", "/pay")],
            time_unix_nano: T0,
            count: 10,
            sum: Some(4.2),
            bucket_counts: vec![2, 3, 0, 5],
            explicit_bounds: vec![0.005, 0.1, 1.0],
            ..Default::default()
        };
        let m = Metric {
            name: "http.server.duration".into(),
            unit: "s".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![p],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
            ..Default::default()
        };
        let t = translate(metrics_request(vec![], vec![m]));
        let got: Vec<(String, f64)> = t
            .series
            .iter()
            .map(|s| (s.labels.to_canonical(), s.samples[0].v))
            .collect();
        let b = |le: &str, v: f64| {
            (
                format!(
                    r#"{{__name__="http_server_duration_seconds_bucket", le="{le}", route="/pay"}}"#
                ),
                v,
            )
        };
        assert_eq!(
            got,
            vec![
                b("0.005", 2.0),
                b("0.1", 5.0),
                b("1", 5.0),
                b("+Inf", 10.0),
                (
                    r#"{__name__="http_server_duration_seconds_sum", route="/pay"}"#.into(),
                    4.2
                ),
                (
                    r#"{__name__="http_server_duration_seconds_count", route="/pay"}"#.into(),
                    10.0
                ),
            ]
        );
    }

    #[test]
    fn delta_histograms_accumulate_per_bucket() {
        let mut d = DeltaToCumulative::new(100);
        let req = |t: u64, counts: Vec<u64>| {
            let count = counts.iter().sum();
            metrics_request(
                vec![],
                vec![Metric {
                    name: "lat".into(),
                    unit: "ms".into(),
                    data: Some(Data::Histogram(Histogram {
                        data_points: vec![HistogramDataPoint {
                            time_unix_nano: t,
                            count,
                            sum: Some(count as f64),
                            bucket_counts: counts,
                            explicit_bounds: vec![10.0],
                            ..Default::default()
                        }],
                        aggregation_temporality: AggregationTemporality::Delta as i32,
                    })),
                    ..Default::default()
                }],
            )
        };
        translate_with(req(T0, vec![1, 2]), &mut d);
        let t = translate_with(req(T0 + 1_000_000_000, vec![4, 0]), &mut d);
        let v: Vec<f64> = t.series.iter().map(|s| s.samples[0].v).collect();
        // le=10: 1+4, +Inf: 3+4, sum: 3+4, count: 3+4.
        assert_eq!(v, vec![5.0, 7.0, 7.0, 7.0]);
    }

    fn exp_point(
        scale: i32,
        offset: i32,
        counts: Vec<u64>,
        zero: u64,
    ) -> ExponentialHistogramDataPoint {
        let count = counts.iter().sum::<u64>() + zero;
        ExponentialHistogramDataPoint {
            time_unix_nano: T0,
            count,
            sum: Some(1.0),
            scale,
            zero_count: zero,
            positive: Some(Buckets {
                offset,
                bucket_counts: counts,
            }),
            ..Default::default()
        }
    }

    fn les(outs: &[Out]) -> Vec<(String, f64)> {
        outs.iter()
            .filter(|o| o.suffix == "_bucket")
            .map(|o| (o.extra.clone().unwrap().1, o.value))
            .collect()
    }

    #[test]
    fn exponential_histogram_buckets_at_their_own_scale() {
        // Scale 0: base 2. Bucket i holds (2^i, 2^(i+1)].
        let p = exp_point(0, 0, vec![1, 2, 3], 4);
        let got = les(&exp_histogram_outputs(&p, 2));
        assert_eq!(
            got,
            vec![
                ("0".to_string(), 4.0),
                ("2".to_string(), 5.0),
                ("4".to_string(), 7.0),
                ("8".to_string(), 10.0),
                ("+Inf".to_string(), 10.0),
            ]
        );
        // Negative scale -1: base 4.
        let p = exp_point(-1, 1, vec![1], 0);
        assert_eq!(
            les(&exp_histogram_outputs(&p, 2))[1],
            ("16".to_string(), 1.0)
        );
    }

    #[test]
    fn exponential_histogram_is_downscaled_and_handles_negatives() {
        // Scale 4 (base 2^(1/16)); buckets 0..=15 cover (1, 2], 16..=31 cover (2, 4].
        // Merged to scale 0 they are buckets 0 and 1: le 2 and 4.
        let mut p = exp_point(4, 0, vec![1; 32], 0);
        p.negative = Some(Buckets {
            offset: 16,
            bucket_counts: vec![5],
        });
        p.count += 5;
        let got = les(&exp_histogram_outputs(&p, 0));
        assert_eq!(
            got,
            vec![
                // Negative bucket 16 at scale 4 → bucket 1 at scale 0: [-4, -2), le = -2.
                ("-2".to_string(), 5.0),
                ("0".to_string(), 5.0),
                ("2".to_string(), 21.0),
                ("4".to_string(), 37.0),
                ("+Inf".to_string(), 37.0),
            ]
        );
        // Default max scale 2: boundaries are powers of 2^(1/4).
        let p = exp_point(8, 64, vec![1], 0);
        let got = les(&exp_histogram_outputs(&p, DEFAULT_MAX_EXP_SCALE));
        // Index 64 at scale 8 is index 1 at scale 2: upper bound 2^(2/4).
        assert_eq!(got[1].0, format_bound(2f64.sqrt()));
    }

    #[test]
    fn exponential_and_summary_through_the_translator() {
        let exp = Metric {
            name: "rpc.duration".into(),
            unit: "ms".into(),
            data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![exp_point(0, 0, vec![1], 0)],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
            ..Default::default()
        };
        let summary = Metric {
            name: "gc.pause".into(),
            unit: "s".into(),
            data: Some(Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    time_unix_nano: T0,
                    count: 3,
                    sum: 0.3,
                    quantile_values: vec![
                        ValueAtQuantile {
                            quantile: 0.5,
                            value: 0.1,
                        },
                        ValueAtQuantile {
                            quantile: 0.99,
                            value: 0.2,
                        },
                    ],
                    ..Default::default()
                }],
            })),
            ..Default::default()
        };
        let t = translate(metrics_request(vec![], vec![exp, summary]));
        let names: Vec<String> = t.series.iter().map(|s| s.labels.to_canonical()).collect();
        assert_eq!(
            names,
            vec![
                r#"{__name__="rpc_duration_milliseconds_bucket", le="0"}"#,
                r#"{__name__="rpc_duration_milliseconds_bucket", le="2"}"#,
                r#"{__name__="rpc_duration_milliseconds_bucket", le="+Inf"}"#,
                r#"{__name__="rpc_duration_milliseconds_sum"}"#,
                r#"{__name__="rpc_duration_milliseconds_count"}"#,
                r#"{__name__="gc_pause_seconds", quantile="0.5"}"#,
                r#"{__name__="gc_pause_seconds", quantile="0.99"}"#,
                r#"{__name__="gc_pause_seconds_sum"}"#,
                r#"{__name__="gc_pause_seconds_count"}"#,
            ]
        );
        assert_eq!(t.received_points, 2);
    }

    #[test]
    fn no_recorded_value_is_a_stale_marker_everywhere() {
        let mut p = point(T0, 0.0, vec![]);
        p.value = None;
        p.flags = DataPointFlags::NoRecordedValueMask as u32;
        let h = HistogramDataPoint {
            time_unix_nano: T0,
            flags: DataPointFlags::NoRecordedValueMask as u32,
            bucket_counts: vec![0, 0],
            explicit_bounds: vec![1.0],
            ..Default::default()
        };
        let mut missing = point(T0, 0.0, vec![]);
        missing.value = None;
        let t = translate(metrics_request(
            vec![],
            vec![
                gauge("g", "", vec![p, missing]),
                Metric {
                    name: "h".into(),
                    data: Some(Data::Histogram(Histogram {
                        data_points: vec![h],
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    })),
                    ..Default::default()
                },
            ],
        ));
        assert_eq!(t.series.len(), 1 + 3);
        assert!(t.series.iter().all(|s| is_stale_nan(s.samples[0].v)));
        assert_eq!(t.rejected_by_reason, vec![(REASON_MISSING_VALUE, 1)]);
        assert!(
            t.error_message
                .contains("metrics[0] (\"g\").data_points[1]: no value"),
            "{}",
            t.error_message
        );
    }
}
