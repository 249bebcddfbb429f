//! The engine's trickiest semantics, pinned with hand-computed expectations: extrapolated
//! rates, staleness and lookback, vector matching, subquery steps, histogram quantiles,
//! Prometheus 2 windows, limits and errors.

use sightline_model::{Labels, MatchOp, Sample, stale_nan};
use sightline_promql::{
    Engine, EngineOptions, FloatHistogram, HistogramSample, InstantSample, MemorySource,
    QueryError, Value, parse_selector,
};

const S: i64 = 1000;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn series(src: &mut MemorySource, pairs: &[(&str, &str)], points: &[(i64, f64)]) {
    src.add(
        labels(pairs),
        points.iter().map(|&(t, v)| Sample { t, v }).collect(),
    );
}

fn instant(src: &MemorySource, q: &str, t: i64) -> Vec<InstantSample> {
    match Engine::default().instant_query(src, q, t).unwrap().value {
        Value::Vector(v) => v,
        other => panic!("expected a vector from {q}, got {other:?}"),
    }
}

fn one(src: &MemorySource, q: &str, t: i64) -> f64 {
    let v = instant(src, q, t);
    assert_eq!(v.len(), 1, "{q} at {t}: {v:?}");
    v[0].v
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn rate_extrapolates_to_the_window_edges() {
    let mut src = MemorySource::new();
    // A counter growing 1/s, scraped every 15s.
    series(
        &mut src,
        &[("__name__", "c_total")],
        &[
            (0, 0.0),
            (15 * S, 15.0),
            (30 * S, 30.0),
            (45 * S, 45.0),
            (60 * S, 60.0),
        ],
    );
    // Window (0s, 60s]: 15..60 sampled over 45s, 15s short of the start (within 1.1 average
    // intervals, so extrapolated fully).
    assert!(close(one(&src, "rate(c_total[1m])", 60 * S), 1.0));
    assert!(close(one(&src, "increase(c_total[1m])", 60 * S), 60.0));

    // A counter reset adds the value before it: 10 -> 20 -> 5 -> 15 is an increase of 25
    // over 45s, extrapolated by 15s at the start.
    let mut src = MemorySource::new();
    series(
        &mut src,
        &[("__name__", "r_total")],
        &[
            (0, 0.0),
            (15 * S, 10.0),
            (30 * S, 20.0),
            (45 * S, 5.0),
            (60 * S, 15.0),
        ],
    );
    assert!(close(
        one(&src, "increase(r_total[1m])", 60 * S),
        25.0 * 60.0 / 45.0
    ));

    // A series starting inside the window is extrapolated by half an interval only.
    let mut src = MemorySource::new();
    series(
        &mut src,
        &[("__name__", "late_total")],
        &[(40 * S, 100.0), (50 * S, 110.0), (60 * S, 120.0)],
    );
    assert!(close(one(&src, "increase(late_total[1m])", 60 * S), 25.0));
    assert!(close(
        one(&src, "rate(late_total[1m])", 60 * S),
        25.0 / 60.0
    ));
    // delta does not stop at zero and extrapolates the same way for a gauge.
    assert!(close(one(&src, "delta(late_total[1m])", 60 * S), 25.0));
    // One sample is not enough.
    assert!(instant(&src, "rate(late_total[5s])", 60 * S).is_empty());
}

#[test]
fn staleness_markers_and_lookback() {
    let mut src = MemorySource::new();
    series(
        &mut src,
        &[("__name__", "m")],
        &[(0, 1.0), (10 * S, stale_nan()), (20 * S, 2.0)],
    );
    assert_eq!(one(&src, "m", 5 * S), 1.0);
    assert!(
        instant(&src, "m", 15 * S).is_empty(),
        "stale marker ends the series"
    );
    assert_eq!(one(&src, "m", 20 * S), 2.0);
    // Lookback is left-open in Prometheus 3: a sample exactly 5m old is gone.
    assert_eq!(one(&src, "m", 320 * S - 1), 2.0);
    assert!(instant(&src, "m", 320 * S).is_empty());
    // Prometheus 2 closed windows keep it.
    let p2 = Engine::new(EngineOptions {
        prometheus2_ranges: true,
        ..EngineOptions::default()
    });
    match p2.instant_query(&src, "m", 320 * S).unwrap().value {
        Value::Vector(v) => assert_eq!(v.len(), 1),
        other => panic!("{other:?}"),
    }
    // Range windows ignore staleness markers and are left-open too.
    assert_eq!(one(&src, "count_over_time(m[20s])", 20 * S), 1.0);
    match p2
        .instant_query(&src, "count_over_time(m[20s])", 20 * S)
        .unwrap()
        .value
    {
        Value::Vector(v) => assert_eq!(v[0].v, 2.0, "closed window includes t=0"),
        other => panic!("{other:?}"),
    }
}

/// Regression (issue 9, item 5): against Debian's Prometheus 2.42 the default engine gave
/// `rate(prometheus_http_requests_total[30s])` 0.7624 where Prometheus gave 0.7791, with
/// equal samples. The series had started inside the window, one increment per scrape, so
/// its zero point lay one scrape interval before its first sample. Prometheus before 2.51
/// limits the extrapolation to the zero point *before* applying the 1.1-interval threshold
/// and so extrapolates a whole interval; 2.51 (PR #13725) and 3.x apply the threshold first
/// and extrapolate half an interval. The default follows 3.x, `prometheus2_ranges` 2.42.
#[test]
fn rate_of_a_counter_starting_inside_the_window_follows_the_chosen_prometheus_version() {
    let mut src = MemorySource::new();
    // Born at 44s (value 0, never scraped), then 1 per second scraped from 45s to 60s.
    let points: Vec<(i64, f64)> = (45..=60).map(|s| (s * S, (s - 44) as f64)).collect();
    series(&mut src, &[("__name__", "c_total")], &points);
    // Window [30s, 60s]: 15 s sampled, 15 s of nothing before it, zero point 1 s before the
    // first sample.
    // Prometheus 3: threshold first → half an interval (0.5 s): 15 × 15.5 / 15.
    assert!(close(one(&src, "increase(c_total[30s])", 60 * S), 15.5));
    assert!(close(one(&src, "rate(c_total[30s])", 60 * S), 15.5 / 30.0));
    // Prometheus 2.42: zero point first (1 s, under the 1.1 s threshold) → 15 × 16 / 15.
    let p2 = Engine::new(EngineOptions {
        prometheus2_ranges: true,
        ..EngineOptions::default()
    });
    let p2_one = |q: &str| match p2.instant_query(&src, q, 60 * S).unwrap().value {
        Value::Vector(v) if v.len() == 1 => v[0].v,
        other => panic!("{q}: {other:?}"),
    };
    assert!(close(p2_one("increase(c_total[30s])"), 16.0));
    assert!(close(p2_one("rate(c_total[30s])"), 16.0 / 30.0));
    // A zero point under half an interval limits both versions alike: 15 × 15.25 / 15.
    let mut near_zero = MemorySource::new();
    let points: Vec<(i64, f64)> = (45..=60).map(|s| (s * S, 0.25 + (s - 45) as f64)).collect();
    series(&mut near_zero, &[("__name__", "c_total")], &points);
    assert!(close(
        one(&near_zero, "increase(c_total[30s])", 60 * S),
        15.25
    ));
}

#[test]
fn group_left_copies_labels_and_rejects_ambiguous_matches() {
    let mut src = MemorySource::new();
    series(
        &mut src,
        &[("__name__", "req"), ("job", "a"), ("instance", "1")],
        &[(0, 10.0)],
    );
    series(
        &mut src,
        &[("__name__", "req"), ("job", "a"), ("instance", "2")],
        &[(0, 20.0)],
    );
    series(
        &mut src,
        &[("__name__", "owner"), ("job", "a"), ("team", "x")],
        &[(0, 1.0)],
    );
    let mut v = instant(&src, "req * on(job) group_left(team) owner", 0);
    v.sort_by(|a, b| a.labels.cmp(&b.labels));
    assert_eq!(v.len(), 2);
    assert_eq!(
        v[0].labels,
        labels(&[("instance", "1"), ("job", "a"), ("team", "x")])
    );
    assert_eq!(v[1].v, 20.0);
    let err = Engine::default()
        .instant_query(&src, "req * on(job) owner", 0)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
    );
    series(
        &mut src,
        &[("__name__", "owner"), ("job", "a"), ("team", "y")],
        &[(0, 1.0)],
    );
    let err = Engine::default()
        .instant_query(&src, "req * on(job) group_left(team) owner", 0)
        .unwrap_err();
    assert!(matches!(err, QueryError::Execution(_)));
    assert!(
        err.to_string().starts_with(
            "found duplicate series for the match group {job=\"a\"} on the right hand-side"
        ),
        "{err}"
    );
}

#[test]
fn subquery_steps_are_aligned_to_the_step() {
    let mut src = MemorySource::new();
    let pts: Vec<(i64, f64)> = (0..=12).map(|i| (i * 10 * S, i as f64)).collect();
    series(&mut src, &[("__name__", "x")], &pts);
    // At 65s a [1m:20s] subquery evaluates at 20s, 40s and 60s (multiples of the step in
    // (5s, 65s]), reading 2, 4 and 6.
    assert_eq!(one(&src, "sum_over_time(x[1m:20s])", 65 * S), 12.0);
    // At 60s the step at 0s is on the open edge and left out.
    assert_eq!(one(&src, "count_over_time(x[1m:20s])", 60 * S), 3.0);
    // Range queries evaluate the subquery once and window it per step.
    let r = Engine::default()
        .range_query(&src, "sum_over_time(x[1m:20s])", 60 * S, 120 * S, 30 * S)
        .unwrap();
    match r.value {
        Value::Matrix(m) => {
            let vals: Vec<f64> = m[0].samples.iter().map(|s| s.v).collect();
            assert_eq!(
                vals,
                vec![2.0 + 4.0 + 6.0, 4.0 + 6.0 + 8.0, 8.0 + 10.0 + 12.0]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn histogram_quantile_over_classic_buckets() {
    let mut src = MemorySource::new();
    for (le, c) in [("0.1", 10.0), ("0.5", 20.0), ("1", 25.0), ("+Inf", 30.0)] {
        series(
            &mut src,
            &[("__name__", "lat_bucket"), ("le", le), ("job", "a")],
            &[(0, c)],
        );
    }
    let v = instant(&src, "histogram_quantile(0.5, lat_bucket)", 0);
    assert_eq!(v[0].labels, labels(&[("job", "a")]));
    assert!(close(v[0].v, 0.3), "{}", v[0].v);
    // The rank falls in the +Inf bucket: the highest finite bound.
    assert_eq!(one(&src, "histogram_quantile(0.99, lat_bucket)", 0), 1.0);
    // Non-monotonic buckets are repaired, and the repair is reported.
    series(
        &mut src,
        &[("__name__", "bad_bucket"), ("le", "1"), ("job", "b")],
        &[(0, 5.0)],
    );
    series(
        &mut src,
        &[("__name__", "bad_bucket"), ("le", "2"), ("job", "b")],
        &[(0, 4.0)],
    );
    series(
        &mut src,
        &[("__name__", "bad_bucket"), ("le", "+Inf"), ("job", "b")],
        &[(0, 10.0)],
    );
    let r = Engine::default()
        .instant_query(&src, "histogram_quantile(0.4, bad_bucket)", 0)
        .unwrap();
    assert!(
        r.infos[0].contains("needed to be fixed for monotonicity"),
        "{:?}",
        r.infos
    );
    let q = histogram_quantile_bad_bucket(&r.value);
    assert!(close(q, 0.8), "{q}");
}

fn histogram_quantile_bad_bucket(v: &Value) -> f64 {
    match v {
        Value::Vector(v) => v[0].v,
        other => panic!("{other:?}"),
    }
}

#[test]
fn native_histograms_from_the_source() {
    let mut src = MemorySource::new();
    let h = |count: f64| FloatHistogram {
        count,
        sum: count * 2.0,
        positive: vec![(1, count)],
        ..FloatHistogram::default()
    };
    src.add_histograms(
        labels(&[("__name__", "dur")]),
        (0..=4)
            .map(|i| HistogramSample {
                t: i * 15 * S,
                h: h(10.0 * i as f64),
            })
            .collect(),
    );
    assert_eq!(one(&src, "histogram_count(dur)", 60 * S), 40.0);
    assert_eq!(one(&src, "histogram_sum(dur)", 60 * S), 80.0);
    // All observations are in (1, 2]: the median interpolates exponentially to sqrt(2).
    assert!(close(
        one(&src, "histogram_quantile(0.5, dur)", 60 * S),
        2f64.sqrt()
    ));
    // rate() of a histogram counter: window (0s, 60s] holds counts 10..40, an increase of 30
    // over 45s, extrapolated to 60s like floats.
    assert!(close(
        one(&src, "histogram_count(rate(dur[1m]))", 60 * S),
        30.0 * 60.0 / 45.0 / 60.0
    ));
    // Histogram samples are not part of public float results.
    assert!(instant(&src, "dur", 60 * S).is_empty());
}

#[test]
fn names_are_dropped_at_the_end_and_results_sorted() {
    let mut src = MemorySource::new();
    series(
        &mut src,
        &[("__name__", "a_total"), ("x", "2")],
        &[(0, 1.0), (60 * S, 2.0)],
    );
    series(
        &mut src,
        &[("__name__", "a_total"), ("x", "1")],
        &[(0, 3.0), (60 * S, 4.0)],
    );
    let r = Engine::default()
        .range_query(&src, "a_total * 2", 0, 60 * S, 60 * S)
        .unwrap();
    let Value::Matrix(m) = r.value else { panic!() };
    assert_eq!(m[0].labels, labels(&[("x", "1")]));
    assert_eq!(m[1].samples[1].v, 4.0);
    // label_replace still sees the name that rate() will drop.
    let v = instant(
        &src,
        r#"label_replace(rate(a_total[2m]), "src", "$1", "__name__", "(.*)")"#,
        60 * S,
    );
    assert!(
        v.iter()
            .all(|s| s.labels.get("src") == Some("a_total") && s.labels.get("__name__").is_none())
    );
}

#[test]
fn limits_and_errors() {
    let mut src = MemorySource::new();
    let pts: Vec<(i64, f64)> = (0..100).map(|i| (i * S, i as f64)).collect();
    series(&mut src, &[("__name__", "x")], &pts);
    let small = Engine::new(EngineOptions {
        max_samples: 50,
        ..EngineOptions::default()
    });
    let err = small
        .instant_query(&src, "sum_over_time(x[90s])", 99 * S)
        .unwrap_err();
    assert!(matches!(err, QueryError::TooManySamples(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "query processing would load too many samples into memory in query execution"
    );
    assert!(matches!(
        Engine::default().instant_query(&src, "sum(", 0),
        Err(QueryError::Parse(_))
    ));
    let err = Engine::default()
        .range_query(&src, "x[1m]", 0, 60 * S, 15 * S)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("invalid expression type \"range vector\""),
        "{err}"
    );
    // Two series that only differ by name collide once the name is dropped.
    series(&mut src, &[("__name__", "y")], &[(0, 1.0)]);
    series(&mut src, &[("__name__", "z")], &[(0, 1.0)]);
    let err = Engine::default()
        .instant_query(&src, "-{__name__=~\"y|z\"}", 0)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "vector cannot contain metrics with the same labelset"
    );
}

#[test]
fn series_selectors_parse_to_matchers() {
    let m = parse_selector(r#"up{job="x", instance=~"a.*"}"#).unwrap();
    assert_eq!(m.len(), 3);
    assert!(m.iter().any(|m| m.name == "__name__" && m.value == "up"));
    assert!(
        m.iter()
            .any(|m| m.name == "instance" && m.op == MatchOp::Regex)
    );
    assert_eq!(parse_selector(r#"{__name__=~"a.*"}"#).unwrap().len(), 1);
    assert!(matches!(
        parse_selector("rate(up[5m])"),
        Err(QueryError::Parse(_))
    ));
    assert!(matches!(parse_selector("up{"), Err(QueryError::Parse(_))));
}
