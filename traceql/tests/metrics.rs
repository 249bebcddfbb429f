//! Metrics queries on small traces built by hand: each function, grouping, second stages,
//! arithmetic, the time window, and the evaluator's bounds.
//!
//! The window is `[T0, T0 + 60 s)` in steps of 10 s unless a test says otherwise.

use proptest::prelude::*;
use sightline_model::{
    AnyValue, Labels, ResourceSpans, ScopeSpans, Span, SpanBatch, SpanId, StatusCode, TraceId,
};
use sightline_traceql::{
    CmpOp, Condition, ErrorKind, Field, Intrinsic, MAX_METRICS_POINTS, MAX_METRICS_SERIES,
    MetricsEvaluator, MetricsSeries, SpanRef, Static, TraceQlError, parse,
};

const S: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;
const T0: i64 = 1_700_000_000 * S;
const END: i64 = T0 + 60 * S;
const STEP: i64 = 10 * S;

/// A span of service `service`, starting `start` ns after T0 and lasting `duration` ns.
struct Spec {
    service: &'static str,
    name: &'static str,
    start: i64,
    duration: i64,
    error: bool,
    attributes: Vec<(&'static str, AnyValue)>,
}

fn spec(service: &'static str, name: &'static str, start: i64, duration: i64) -> Spec {
    Spec {
        service,
        name,
        start,
        duration,
        error: false,
        attributes: Vec::new(),
    }
}

/// One trace: the first span is the root, the others its children.
fn trace(trace_id: u8, specs: Vec<Spec>) -> SpanBatch {
    let mut resources: Vec<ResourceSpans> = Vec::new();
    for (i, s) in specs.into_iter().enumerate() {
        let id = u8::try_from(i + 1).unwrap();
        let span = Span {
            trace_id: TraceId([trace_id; 16]),
            span_id: SpanId([trace_id, id, 0, 0, 0, 0, 0, 1]),
            parent_span_id: (i > 0).then_some(SpanId([trace_id, 1, 0, 0, 0, 0, 0, 1])),
            name: s.name.to_string(),
            start_ns: T0 + s.start,
            end_ns: T0 + s.start + s.duration,
            status_code: if s.error {
                StatusCode::Error
            } else {
                StatusCode::Ok
            },
            attributes: s
                .attributes
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            ..Span::default()
        };
        match resources.iter_mut().find(|r| r.service_name() == s.service) {
            Some(r) => r.scopes[0].spans.push(span),
            None => resources.push(ResourceSpans {
                labels: Labels::from_pairs([("service_name", s.service)]),
                resource: vec![(
                    "service.name".to_string(),
                    AnyValue::String(s.service.to_string()),
                )],
                scopes: vec![ScopeSpans {
                    scope_name: "lib".to_string(),
                    spans: vec![span],
                    ..ScopeSpans::default()
                }],
            }),
        }
    }
    SpanBatch {
        resources,
        ..SpanBatch::default()
    }
}

fn refs(batch: &SpanBatch) -> Vec<SpanRef<'_>> {
    batch.spans().map(SpanRef::from).collect()
}

fn run_window(
    query: &str,
    traces: &[SpanBatch],
    start: i64,
    end: i64,
    step: i64,
) -> Result<Vec<MetricsSeries>, TraceQlError> {
    let q = parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    let mut evaluator = MetricsEvaluator::new(&q, start, end, step)?;
    for t in traces {
        evaluator.observe(&refs(t))?;
    }
    evaluator.finish()
}

fn run(query: &str, traces: &[SpanBatch]) -> Vec<MetricsSeries> {
    run_window(query, traces, T0, END, STEP).unwrap_or_else(|e| panic!("{query}: {e}"))
}

fn label(name: &str, value: Static) -> (String, Static) {
    (name.to_string(), value)
}

fn name_label(function: &str) -> Vec<(String, Static)> {
    vec![label("__name__", Static::Str(function.to_string()))]
}

fn str_label(name: &str, value: &str) -> (String, Static) {
    label(name, Static::Str(value.to_string()))
}

/// The values of a series at every step, `None` where it has no point.
fn values(series: &MetricsSeries) -> Vec<Option<f64>> {
    (0..6)
        .map(|i| {
            let ts = T0 + i * STEP;
            series
                .points
                .iter()
                .find(|(t, _)| *t == ts)
                .map(|(_, v)| *v)
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

fn assert_values(series: &MetricsSeries, expected: &[Option<f64>]) {
    let got = values(series);
    let same = got.len() == expected.len()
        && got.iter().zip(expected).all(|(g, e)| match (g, e) {
            (Some(g), Some(e)) => close(*g, *e),
            (None, None) => true,
            _ => false,
        });
    assert!(
        same,
        "{:?}: got {got:?}, expected {expected:?}",
        series.labels
    );
}

/// Three services over two traces: spans in steps 0, 0, 2 and 5, plus spans outside the
/// window (before it, and at its end).
fn traffic() -> Vec<SpanBatch> {
    let mut get = spec("frontend", "GET", 2 * S, 100 * MS);
    get.attributes = vec![
        ("http.method", AnyValue::String("GET".into())),
        ("bytes", AnyValue::Int(300)),
    ];
    let mut db = spec("backend", "query", 3 * S, 20 * MS);
    db.error = true;
    db.attributes = vec![("bytes", AnyValue::Int(100))];
    let mut post = spec("frontend", "POST", 25 * S, 400 * MS);
    post.attributes = vec![
        ("http.method", AnyValue::String("POST".into())),
        ("bytes", AnyValue::Double(50.5)),
    ];
    let late = spec("backend", "late", 59 * S, MS);
    let at_end = spec("backend", "at-end", 60 * S, MS);
    let before = spec("frontend", "before", -S, 10 * MS);
    vec![
        trace(1, vec![get, db]),
        trace(2, vec![post, late, at_end, before]),
    ]
}

#[test]
fn rate_is_spans_per_second_of_step_from_the_start_of_each_step() {
    let series = run("{ } | rate()", &traffic());
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].labels, name_label("rate"));
    // Two spans in [T0, T0+10s), one in step 2, one in step 5; the span starting at the
    // window's end and the one before it count nowhere. Empty steps are 0.
    assert_values(
        &series[0],
        &[
            Some(0.2),
            Some(0.0),
            Some(0.1),
            Some(0.0),
            Some(0.0),
            Some(0.1),
        ],
    );
    assert_eq!(series[0].points[0].0, T0);
    assert_eq!(series[0].points[5].0, T0 + 50 * S);
}

#[test]
fn count_over_time_counts_per_step_and_filters_spans_first() {
    let series = run("{ status = error } | count_over_time()", &traffic());
    assert_eq!(series[0].labels, name_label("count_over_time"));
    assert_values(
        &series[0],
        &[
            Some(1.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
        ],
    );
    // Structure: only the root's children (the root itself is not one).
    let series = run("{ } > { } | count_over_time()", &traffic());
    assert_values(
        &series[0],
        &[
            Some(1.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(1.0),
        ],
    );
    // A trace matching nothing yields no series at all.
    assert!(run("{ name = \"nothing\" } | rate()", &traffic()).is_empty());
}

#[test]
fn by_groups_series_and_labels_a_missing_value_nil() {
    let series = run(
        "{ } | count_over_time() by (resource.service.name)",
        &traffic(),
    );
    let labels: Vec<_> = series.iter().map(|s| s.labels.clone()).collect();
    assert_eq!(
        labels,
        vec![
            vec![str_label("resource.service.name", "backend")],
            vec![str_label("resource.service.name", "frontend")],
        ]
    );
    assert_values(
        &series[0],
        &[
            Some(1.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(1.0),
        ],
    );

    // Spans without the attribute form one series labelled nil, as Tempo does.
    let series = run("{ } | rate() by (span.http.method)", &traffic());
    let nil = series
        .iter()
        .find(|s| s.labels == vec![label("span.http.method", Static::Nil)])
        .expect("a nil series");
    assert_values(
        nil,
        &[
            Some(0.1),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(0.1),
        ],
    );
    assert!(
        series
            .iter()
            .any(|s| s.labels == vec![str_label("span.http.method", "GET")])
    );

    // With several fields, the nil ones are left out of the labels.
    let series = run(
        "{ } | count_over_time() by (span.http.method, resource.service.name)",
        &traffic(),
    );
    assert!(series.iter().any(|s| s.labels
        == vec![
            str_label("span.http.method", "GET"),
            str_label("resource.service.name", "frontend"),
        ]));
    assert!(
        series
            .iter()
            .any(|s| s.labels == vec![str_label("resource.service.name", "backend")])
    );
}

#[test]
fn over_time_functions_measure_durations_in_seconds_and_skip_missing_values() {
    let t = traffic();
    let min = run("{ } | min_over_time(duration)", &t);
    assert_eq!(min[0].labels, name_label("min_over_time"));
    // Steps without spans have no point.
    assert_values(
        &min[0],
        &[Some(0.02), None, Some(0.4), None, None, Some(0.001)],
    );
    let max = run("{ } | max_over_time(duration)", &t);
    assert_values(
        &max[0],
        &[Some(0.1), None, Some(0.4), None, None, Some(0.001)],
    );
    let avg = run("{ } | avg_over_time(duration)", &t);
    assert_values(
        &avg[0],
        &[Some(0.06), None, Some(0.4), None, None, Some(0.001)],
    );
    let sum = run(
        "{ } | sum_over_time(duration) by (resource.service.name)",
        &t,
    );
    assert_eq!(
        sum[0].labels,
        vec![str_label("resource.service.name", "backend")]
    );
    assert_values(&sum[0], &[Some(0.02), None, None, None, None, Some(0.001)]);
    assert_values(&sum[1], &[Some(0.1), None, Some(0.4), None, None, None]);
    // Attributes: ints and floats; spans without the attribute are skipped.
    let bytes = run("{ } | sum_over_time(span.bytes)", &t);
    assert_values(
        &bytes[0],
        &[Some(400.0), None, Some(50.5), None, None, None],
    );
    // Strings are not numbers: no value, no series.
    assert!(run("{ } | max_over_time(name)", &t).is_empty());
}

/// Spans in step 0 with the given durations, one trace.
fn durations(ns: &[i64]) -> Vec<SpanBatch> {
    let specs = ns
        .iter()
        .map(|d| spec("svc", "op", S, *d))
        .collect::<Vec<_>>();
    vec![trace(9, specs)]
}

#[test]
fn quantile_over_time_interpolates_log2_buckets_and_labels_each_quantile() {
    // Each duration is a power of two nanoseconds: exactly its bucket's upper bound.
    let t = durations(&[1 << 20, 1 << 21, 1 << 22, 1 << 23]);
    let series = run("{ } | quantile_over_time(duration, 0.25, 0.5, 1)", &t);
    let at = |q: f64| {
        series
            .iter()
            .find(|s| s.labels == vec![label("p", Static::Float(q))])
            .map(|s| values(s)[0].unwrap())
            .unwrap()
    };
    assert!(close(at(0.25), (1 << 20) as f64 / 1e9));
    assert!(close(at(0.5), (1 << 21) as f64 / 1e9));
    assert!(close(at(1.0), (1 << 23) as f64 / 1e9));
    // Steps without spans have no quantile.
    assert_eq!(values(&series[0])[1], None);

    // Three values in one bucket (2^20, 2^21]: the median is two thirds of the way up, on
    // a log scale, from half the bucket's bound.
    let t = durations(&[(1 << 20) + 1, 1_500_000, 1 << 21]);
    let series = run("{ } | quantile_over_time(duration, 0.5) by (name)", &t);
    assert_eq!(
        series[0].labels,
        vec![str_label("name", "op"), label("p", Static::Float(0.5))]
    );
    let expected = 2f64.powf(20.0 + 2.0 / 3.0) / 1e9;
    assert!(close(values(&series[0])[0].unwrap(), expected));
}

#[test]
fn histogram_over_time_counts_spans_per_log2_bucket() {
    let t = durations(&[3_000, 4_000, 5_000, 1]);
    let series = run("{ } | histogram_over_time(duration)", &t);
    // 3 µs and 4 µs fall in (2^11, 2^12] ns, 5 µs in (2^12, 2^13]; 1 ns has no bucket.
    let labels: Vec<_> = series.iter().map(|s| s.labels.clone()).collect();
    assert_eq!(
        labels,
        vec![
            vec![label("__bucket", Static::Float(4096.0 / 1e9))],
            vec![label("__bucket", Static::Float(8192.0 / 1e9))],
        ]
    );
    assert_values(
        &series[0],
        &[
            Some(2.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
        ],
    );
    assert_values(
        &series[1],
        &[
            Some(1.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
        ],
    );
}

/// Service `a` busy in step 0, service `b` in step 1, `c` a little in both.
fn contest() -> Vec<SpanBatch> {
    let mut specs = Vec::new();
    for i in 0..3 {
        specs.push(spec("a", "x", i * MS, MS));
    }
    for i in 0..3 {
        specs.push(spec("b", "x", 10 * S + i * MS, MS));
    }
    specs.push(spec("c", "x", 2 * S, MS));
    specs.push(spec("c", "x", 12 * S, MS));
    specs.push(spec("c", "x", 13 * S, MS));
    vec![trace(5, specs)]
}

#[test]
fn topk_and_bottomk_choose_series_at_each_step() {
    let series = run(
        "{ } | count_over_time() by (resource.service.name) | topk(1)",
        &contest(),
    );
    let names: Vec<_> = series.iter().map(|s| s.labels[0].1.clone()).collect();
    assert_eq!(
        names,
        vec![Static::Str("a".into()), Static::Str("b".into())]
    );
    // From step 2 on all are 0: ties go to the series whose labels sort first.
    assert_values(
        &series[0],
        &[Some(3.0), None, Some(0.0), Some(0.0), Some(0.0), Some(0.0)],
    );
    assert_values(&series[1], &[None, Some(3.0), None, None, None, None]);
    assert_eq!(series.len(), 2);

    let series = run(
        "{ } | count_over_time() by (resource.service.name) | bottomk(1)",
        &contest(),
    );
    let a = &series[0];
    assert_eq!(a.labels[0].1, Static::Str("a".into()));
    // a is lowest (0) in step 1 and tied lowest from step 2 on.
    assert_values(
        a,
        &[None, Some(0.0), Some(0.0), Some(0.0), Some(0.0), Some(0.0)],
    );
    let b = &series[1];
    assert_values(b, &[Some(0.0), None, None, None, None, None]);
    assert_eq!(series.len(), 2);
}

#[test]
fn comparisons_keep_only_the_points_that_satisfy_them() {
    let series = run(
        "{ } | count_over_time() by (resource.service.name) > 2",
        &contest(),
    );
    assert_eq!(series.len(), 2, "c never exceeds 2");
    assert_values(&series[0], &[Some(3.0), None, None, None, None, None]);
    let series = run("({ } | count_over_time()) <= 0", &contest());
    assert_values(
        &series[0],
        &[None, None, Some(0.0), Some(0.0), Some(0.0), Some(0.0)],
    );
    // A comparison after topk filters what topk chose.
    let series = run(
        "{ } | count_over_time() by (resource.service.name) | topk(2) < 3",
        &contest(),
    );
    let c = series
        .iter()
        .find(|s| s.labels[0].1 == Static::Str("c".into()))
        .unwrap();
    assert_values(c, &[Some(1.0), Some(2.0), None, None, None, None]);
}

#[test]
fn arithmetic_with_numbers_applies_to_every_point() {
    let t = contest();
    let series = run("({ } | count_over_time()) * 100", &t);
    assert_eq!(series[0].labels, name_label("count_over_time"));
    assert_values(
        &series[0],
        &[
            Some(400.0),
            Some(500.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
        ],
    );
    let series = run("1 - ({ } | count_over_time()) / 4", &t);
    assert_values(
        &series[0],
        &[
            Some(0.0),
            Some(-0.25),
            Some(1.0),
            Some(1.0),
            Some(1.0),
            Some(1.0),
        ],
    );
    // Dividing by zero leaves no point.
    let series = run("10 / ({ } | count_over_time())", &t);
    assert_values(&series[0], &[Some(2.5), Some(2.0), None, None, None, None]);
}

#[test]
fn arithmetic_between_metrics_matches_series_by_labels() {
    let t = traffic();
    // Error ratio: both sides are ungrouped; the names combine.
    let series = run("({ status = error } | rate()) / ({ } | rate())", &t);
    assert_eq!(series[0].labels, name_label("(rate / rate)"));
    assert_values(
        &series[0],
        &[Some(0.5), None, Some(0.0), None, None, Some(0.0)],
    );

    // An ungrouped side applies to every series of the other; the name is dropped.
    let series = run(
        "({ } | count_over_time() by (resource.service.name)) / ({ } | count_over_time())",
        &t,
    );
    assert_eq!(series.len(), 2);
    assert_eq!(
        series[0].labels,
        vec![str_label("resource.service.name", "backend")]
    );
    assert_values(
        &series[0],
        &[Some(0.5), None, Some(0.0), None, None, Some(1.0)],
    );

    // Grouped on both sides: only equal label sets pair up.
    let series = run(
        "({ status = error } | count_over_time() by (resource.service.name)) + ({ } | count_over_time() by (resource.service.name))",
        &t,
    );
    assert_eq!(series.len(), 1);
    assert_eq!(
        series[0].labels,
        vec![str_label("resource.service.name", "backend")]
    );
    assert_values(
        &series[0],
        &[
            Some(2.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(1.0),
        ],
    );
}

#[test]
fn spans_are_counted_once_across_traces_fed_one_at_a_time() {
    // Several spansets of one trace share no span; each matched span counts once.
    let t = traffic();
    let grouped = run("{ } | by(resource.service.name) | count_over_time()", &t);
    let plain = run("{ } | count_over_time()", &t);
    assert_eq!(grouped, plain);
    // Feeding the same data split differently gives the same answer.
    let whole = run("{ } | rate() by (name)", &contest());
    let q = parse("{ } | rate() by (name)").unwrap();
    let mut evaluator = MetricsEvaluator::new(&q, T0, END, STEP).unwrap();
    for batch in contest() {
        let spans = refs(&batch);
        let (first, second) = spans.split_at(4);
        evaluator.observe(first).unwrap();
        evaluator.observe(second).unwrap();
    }
    assert_eq!(evaluator.finish().unwrap(), whole);
}

#[test]
fn an_instant_query_is_one_step_over_the_whole_range() {
    let series = run_window("{ } | rate()", &traffic(), T0, END, END - T0).unwrap();
    assert_eq!(series[0].points, vec![(T0, 4.0 / 60.0)]);
}

#[test]
fn bad_windows_and_too_many_series_are_refused() {
    let q = parse("{ } | rate()").unwrap();
    let kind = |start, end, step| {
        MetricsEvaluator::new(&q, start, end, step)
            .unwrap_err()
            .kind
    };
    assert_eq!(kind(T0, END, 0), ErrorKind::Invalid);
    assert_eq!(kind(T0, END, -STEP), ErrorKind::Invalid);
    assert_eq!(kind(T0, T0, STEP), ErrorKind::Invalid);
    assert_eq!(kind(END, T0, STEP), ErrorKind::Invalid);
    assert_eq!(
        kind(T0, T0 + (MAX_METRICS_POINTS + 1) * S, S),
        ErrorKind::Invalid
    );
    assert_eq!(kind(i64::MIN, i64::MAX, 1), ErrorKind::Invalid);
    assert!(MetricsEvaluator::new(&q, T0, T0 + MAX_METRICS_POINTS * S, S).is_ok());
    let search = parse("{ } | count() > 1").unwrap();
    assert_eq!(
        MetricsEvaluator::new(&search, T0, END, STEP)
            .unwrap_err()
            .kind,
        ErrorKind::Invalid
    );

    // One series per span id: one more than the limit.
    let specs: Vec<Spec> = (0..=MAX_METRICS_SERIES)
        .map(|i| spec("svc", "x", i64::try_from(i).unwrap() * MS, MS))
        .collect();
    let mut batches = Vec::new();
    for chunk in specs.chunks(200) {
        let n = u8::try_from(batches.len() + 1).unwrap();
        let chunk: Vec<Spec> = chunk
            .iter()
            .map(|s| spec(s.service, s.name, s.start, s.duration))
            .collect();
        batches.push(trace(n, chunk));
    }
    let q = parse("{ } | rate() by (span:id)").unwrap();
    let mut evaluator = MetricsEvaluator::new(&q, T0, END, STEP).unwrap();
    let mut refused = None;
    for b in &batches {
        if let Err(e) = evaluator.observe(&refs(b)) {
            refused = Some(e);
            break;
        }
    }
    let refused = refused.expect("the limit is reached");
    assert_eq!(refused.kind, ErrorKind::Limit);
    assert!(
        refused
            .to_string()
            .contains(&MAX_METRICS_SERIES.to_string())
    );
    assert_eq!(evaluator.finish().unwrap_err().kind, ErrorKind::Limit);
    // Exactly at the limit is fine.
    let at_limit = run("{ } | rate() by (span:id)", &batches[..batches.len() - 1]);
    assert!(at_limit.len() <= MAX_METRICS_SERIES);
}

#[test]
fn the_spanset_part_drives_prefilter_and_evaluate() {
    let name_is = |v: &str| Condition {
        field: Field::Intrinsic(Intrinsic::Name),
        op: CmpOp::Eq,
        value: Static::Str(v.to_string()),
    };
    let q = parse("{ name = \"GET\" } | rate() by (resource.service.name)").unwrap();
    assert_eq!(q.prefilter(), vec![vec![name_is("GET")]]);
    // Either side of the arithmetic may count a trace: only what both require remains.
    let q = parse("({ name = \"GET\" } | rate()) / ({ } | rate())").unwrap();
    assert!(q.prefilter().is_empty());
    let q = parse("({ name = \"GET\" } | rate()) / ({ name = \"GET\" && kind = server } | rate())")
        .unwrap();
    assert_eq!(q.prefilter(), vec![vec![name_is("GET")]]);

    let t = traffic();
    let q = parse("{ status = error } | rate()").unwrap();
    let sets = q.evaluate(&refs(&t[0]));
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].spans.len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Metrics queries assembled from valid pieces evaluate, over any window accepted,
    /// without panicking, and every point lies in the window.
    #[test]
    fn accepted_metrics_queries_evaluate_without_panicking(
        filter in prop::sample::select(vec!["{ }", "{ status = error }", "{ .bytes > 1 }", "{ } > { }"]),
        function in prop::sample::select(vec![
            "rate()", "count_over_time()", "min_over_time(duration)", "max_over_time(.bytes)",
            "avg_over_time(span.bytes)", "sum_over_time(duration)",
            "quantile_over_time(duration, 0, 0.5, 1)", "histogram_over_time(.bytes)",
        ]),
        by in prop::sample::select(vec!["", "by (name)", "by (span.http.method, resource.service.name)"]),
        tail in prop::sample::select(vec!["", " > 0.1", " | topk(1)", " | bottomk(2) != 0"]),
        shape in 0usize..5,
        start in prop::sample::select(vec![i64::MIN, -S, 0, T0, T0 + 5 * S]),
        width in prop::sample::select(vec![1i64, S, 60 * S, i64::MAX]),
        step in prop::sample::select(vec![1i64, 7 * S, 10 * S, i64::MAX]),
    ) {
        let leaf = format!("{filter} | {function} {by}{tail}");
        let text = match shape {
            0 => leaf,
            1 => format!("({leaf}) * -2"),
            2 => format!("1 / ({leaf})"),
            3 => format!("({leaf}) / ({filter} | rate()) | topk(2)"),
            _ => format!("({leaf}) - ({leaf}) <= 0"),
        };
        let query = parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        prop_assert!(query.is_metrics());
        let end = start.saturating_add(width);
        if let Ok(mut evaluator) = MetricsEvaluator::new(&query, start, end, step) {
            for t in traffic().iter().chain(contest().iter()) {
                evaluator.observe(&refs(t)).unwrap();
            }
            for s in evaluator.finish().unwrap() {
                prop_assert!(s.points.iter().all(|(ts, v)| *ts >= start && *ts < end && !v.is_nan()));
            }
        }
    }
}
