//! The semantics of every operator on small traces built by hand.
//!
//! The main trace (indices in the order `spans()` yields them):
//!
//! ```text
//! 0 root          frontend  server    100 ms  ok
//! ├─ 1 call-backend frontend client    60 ms  error   http.status_code = 500, retry = true
//! │  └─ 3 query     backend   server    50 ms  error   db.system = "postgres", tags = ["a", "b"]
//! └─ 2 render       frontend  internal  10 ms  unset   http.status_code = "200", service.name = "shadow"
//! ```

use sightline_model::{
    AnyValue, Labels, ResourceSpans, ScopeSpans, Span, SpanBatch, SpanId, SpanKind, StatusCode,
    TraceId,
};
use sightline_traceql::{SpanRef, SpanSet, Static, parse};

const MS: i64 = 1_000_000;

struct SpanSpec {
    id: u8,
    parent: Option<u8>,
    name: &'static str,
    kind: SpanKind,
    status: StatusCode,
    duration_ms: i64,
    attributes: Vec<(&'static str, AnyValue)>,
}

fn span(spec: SpanSpec) -> Span {
    Span {
        trace_id: TraceId([7; 16]),
        span_id: SpanId([spec.id; 8]),
        parent_span_id: spec.parent.map(|p| SpanId([p; 8])),
        name: spec.name.to_string(),
        kind: spec.kind,
        start_ns: 1_000 * MS + i64::from(spec.id) * MS,
        end_ns: 1_000 * MS + i64::from(spec.id) * MS + spec.duration_ms * MS,
        status_code: spec.status,
        status_message: if spec.status == StatusCode::Error {
            "boom".to_string()
        } else {
            String::new()
        },
        attributes: spec
            .attributes
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        ..Span::default()
    }
}

fn resource(service: &str, scope_name: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        labels: Labels::from_pairs([("service_name", service)]),
        resource: vec![(
            "service.name".to_string(),
            AnyValue::String(service.to_string()),
        )],
        scopes: vec![ScopeSpans {
            scope_name: scope_name.to_string(),
            scope_version: "1.2.0".to_string(),
            scope_attributes: vec![("lib.lang".to_string(), AnyValue::String("rust".into()))],
            spans,
        }],
    }
}

fn chain_trace() -> SpanBatch {
    let frontend = vec![
        span(SpanSpec {
            id: 1,
            parent: None,
            name: "root",
            kind: SpanKind::Server,
            status: StatusCode::Ok,
            duration_ms: 100,
            attributes: vec![],
        }),
        span(SpanSpec {
            id: 2,
            parent: Some(1),
            name: "call-backend",
            kind: SpanKind::Client,
            status: StatusCode::Error,
            duration_ms: 60,
            attributes: vec![
                ("http.status_code", AnyValue::Int(500)),
                ("retry", AnyValue::Bool(true)),
            ],
        }),
        span(SpanSpec {
            id: 4,
            parent: Some(1),
            name: "render",
            kind: SpanKind::Internal,
            status: StatusCode::Unset,
            duration_ms: 10,
            attributes: vec![
                ("http.status_code", AnyValue::String("200".into())),
                ("service.name", AnyValue::String("shadow".into())),
            ],
        }),
    ];
    let backend = vec![span(SpanSpec {
        id: 3,
        parent: Some(2),
        name: "query",
        kind: SpanKind::Server,
        status: StatusCode::Error,
        duration_ms: 50,
        attributes: vec![
            ("db.system", AnyValue::String("postgres".into())),
            (
                "tags",
                AnyValue::Array(vec![
                    AnyValue::String("a".into()),
                    AnyValue::String("b".into()),
                ]),
            ),
        ],
    })];
    SpanBatch {
        resources: vec![
            resource("frontend", "io.opentelemetry.http", frontend),
            resource("backend", "sqlx", backend),
        ],
        ..SpanBatch::default()
    }
}

fn refs(batch: &SpanBatch) -> Vec<SpanRef<'_>> {
    batch.spans().map(SpanRef::from).collect()
}

/// The names of the matched spans of each spanset.
fn run(query: &str) -> Vec<Vec<String>> {
    let batch = chain_trace();
    run_on(&batch, query)
}

fn run_on(batch: &SpanBatch, query: &str) -> Vec<Vec<String>> {
    let spans = refs(batch);
    let parsed = parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    parsed
        .evaluate(&spans)
        .iter()
        .map(|set| names(&spans, set))
        .collect()
}

fn names(spans: &[SpanRef<'_>], set: &SpanSet) -> Vec<String> {
    set.spans
        .iter()
        .map(|&i| spans[i].span.name.clone())
        .collect()
}

/// The names matched by a single-spanset query, or an empty list when the trace does not
/// match.
fn matched(query: &str) -> Vec<String> {
    let mut sets = run(query);
    assert!(sets.len() <= 1, "{query}: {sets:?}");
    sets.pop().unwrap_or_default()
}

fn set(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn intrinsics_select_the_spans_they_describe() {
    assert_eq!(
        matched("{ }"),
        set(&["root", "call-backend", "render", "query"])
    );
    assert_eq!(matched(r#"{ name = "query" }"#), set(&["query"]));
    assert_eq!(
        matched("{ status = error }"),
        set(&["call-backend", "query"])
    );
    assert_eq!(matched("{ status != error }"), set(&["root", "render"]));
    assert_eq!(matched("{ span:status = ok }"), set(&["root"]));
    assert_eq!(matched("{ kind = server }"), set(&["root", "query"]));
    assert_eq!(matched("{ span:kind = internal }"), set(&["render"]));
    assert_eq!(
        matched("{ duration > 55ms }"),
        set(&["root", "call-backend"])
    );
    assert_eq!(matched("{ span:duration <= 10ms }"), set(&["render"]));
    assert_eq!(
        matched(r#"{ statusMessage = "boom" }"#),
        set(&["call-backend", "query"])
    );
    assert_eq!(matched("{ span:childCount = 2 }"), set(&["root"]));
    assert_eq!(matched("{ childCount = 0 }"), set(&["render", "query"]));
    assert_eq!(
        matched(r#"{ span:id = "0303030303030303" }"#),
        set(&["query"])
    );
    assert_eq!(
        matched(r#"{ span:parentID = "0101010101010101" }"#),
        set(&["call-backend", "render"])
    );
    assert_eq!(matched("{ span:parentID != nil }").len(), 3);
    assert_eq!(
        matched(r#"{ instrumentation:name = "sqlx" && instrumentation:version = "1.2.0" }"#),
        set(&["query"])
    );
    assert_eq!(matched(r#"{ instrumentation.lib.lang = "rust" }"#).len(), 4);
}

#[test]
fn trace_level_intrinsics_hold_for_every_span() {
    assert_eq!(matched(r#"{ rootName = "root" }"#).len(), 4);
    assert_eq!(matched(r#"{ trace:rootName = "query" }"#), set(&[]));
    assert_eq!(matched(r#"{ rootServiceName = "frontend" }"#).len(), 4);
    assert_eq!(matched(r#"{ trace:rootService = "backend" }"#), set(&[]));
    // From the root's start (1.001 s) to render's end (1.004 s + 10 ms) and root's end
    // (1.001 s + 100 ms): 100 ms.
    assert_eq!(matched("{ traceDuration = 100ms }").len(), 4);
    assert_eq!(matched("{ trace:duration > 100ms }"), set(&[]));
    assert_eq!(
        matched(r#"{ trace:id = "07070707070707070707070707070707" }"#).len(),
        4
    );
}

#[test]
fn unscoped_attributes_read_the_span_first_then_the_resource() {
    assert_eq!(matched(r#"{ .service.name = "backend" }"#), set(&["query"]));
    assert_eq!(
        matched(r#"{ .service.name = "frontend" }"#),
        set(&["root", "call-backend"])
    );
    assert_eq!(matched(r#"{ .service.name = "shadow" }"#), set(&["render"]));
    assert_eq!(
        matched(r#"{ resource.service.name = "frontend" }"#),
        set(&["root", "call-backend", "render"])
    );
    assert_eq!(matched(r#"{ span.service.name = "frontend" }"#), set(&[]));
    assert_eq!(
        matched(r#"{ span.db.system = "postgres" }"#),
        set(&["query"])
    );
    assert_eq!(matched(r#"{ resource.db.system = "postgres" }"#), set(&[]));
    assert_eq!(matched(r#"{ ."db.system" = "postgres" }"#), set(&["query"]));
}

#[test]
fn values_of_another_type_never_match_and_numbers_compare_across_types() {
    // 500 is an integer on call-backend, "200" a string on render.
    assert_eq!(
        matched("{ .http.status_code = 500 }"),
        set(&["call-backend"])
    );
    assert_eq!(
        matched("{ .http.status_code = 500.0 }"),
        set(&["call-backend"])
    );
    assert_eq!(
        matched("{ .http.status_code > 100 }"),
        set(&["call-backend"])
    );
    assert_eq!(
        matched(r#"{ .http.status_code = "200" }"#),
        set(&["render"])
    );
    assert_eq!(matched(r#"{ .http.status_code >= "1" }"#), set(&["render"]));
    assert_eq!(matched("{ .http.status_code = true }"), set(&[]));
    // Durations are nanoseconds to plain numbers.
    assert_eq!(matched("{ duration = 50000000 }"), set(&["query"]));
    assert_eq!(
        matched("{ .http.status_code < 1us }"),
        set(&["call-backend"])
    );
    assert_eq!(matched("{ 1 < 1h }").len(), 4);
}

#[test]
fn missing_attributes_fail_every_comparison_but_negation_and_existence() {
    assert_eq!(matched(r#"{ .db.system != "mysql" }"#), set(&["query"]));
    assert_eq!(matched("{ .db.system != nil }"), set(&["query"]));
    assert_eq!(matched("{ nil != .db.system }"), set(&["query"]));
    assert_eq!(
        matched(r#"{ !(.db.system = "postgres") }"#),
        set(&["root", "call-backend", "render"])
    );
    assert_eq!(matched("{ .nope < 1 || .nope >= 1 }"), set(&[]));
    assert_eq!(matched("{ nil != nil }"), set(&[]));
}

#[test]
fn boolean_attributes_filter_alone_and_logic_combines() {
    assert_eq!(matched("{ .retry }"), set(&["call-backend"]));
    assert_eq!(matched("{ !.retry }"), set(&[]));
    assert_eq!(matched("{ .retry = true }"), set(&["call-backend"]));
    assert_eq!(
        matched("{ .retry || kind = internal }"),
        set(&["call-backend", "render"])
    );
    assert_eq!(
        matched("{ status = error && kind = server }"),
        set(&["query"])
    );
    assert_eq!(
        matched("{ !(status = error) && kind != client }"),
        set(&["root", "render"])
    );
    assert_eq!(matched("{ true && !false }").len(), 4);
}

#[test]
fn regexes_are_anchored_at_both_ends() {
    assert_eq!(matched(r#"{ name =~ "call" }"#), set(&[]));
    assert_eq!(matched(r#"{ name =~ "call.*" }"#), set(&["call-backend"]));
    assert_eq!(
        matched(r#"{ name =~ "r.*|q.*" }"#),
        set(&["root", "render", "query"])
    );
    assert_eq!(
        matched(r#"{ name !~ "call.*" }"#),
        set(&["root", "render", "query"])
    );
    // A regex never matches a number.
    assert_eq!(matched(r#"{ .http.status_code =~ "5.*" }"#), set(&[]));
}

#[test]
fn arrays_match_any_element_and_negations_every_element() {
    assert_eq!(matched(r#"{ .tags = "b" }"#), set(&["query"]));
    assert_eq!(matched(r#"{ .tags != "a" }"#), set(&[]));
    assert_eq!(matched(r#"{ .tags != "z" }"#), set(&["query"]));
    assert_eq!(matched(r#"{ .tags =~ "[ab]" }"#), set(&["query"]));
}

#[test]
fn arithmetic_computes_before_comparing() {
    assert_eq!(matched("{ duration * 2 > 150ms }"), set(&["root"]));
    assert_eq!(
        matched("{ .http.status_code + 1 = 501 }"),
        set(&["call-backend"])
    );
    assert_eq!(matched("{ .http.status_code / 0 = 1 }"), set(&[]));
    assert_eq!(
        matched("{ .http.status_code % 7 = 3 }"),
        set(&["call-backend"])
    );
    assert_eq!(
        matched("{ 2 ^ 3 = 8 && -.http.status_code = -500 }"),
        set(&["call-backend"])
    );
    assert_eq!(matched("{ duration - 10ms = 40ms }"), set(&["query"]));
}

#[test]
fn spanset_and_needs_both_sides_and_yields_their_union() {
    assert_eq!(
        matched(r#"{ name = "root" } && { name = "query" }"#),
        set(&["root", "query"])
    );
    assert_eq!(
        matched(r#"{ name = "root" } && { name = "nope" }"#),
        set(&[])
    );
    assert_eq!(
        matched(r#"{ name = "root" } || { name = "nope" }"#),
        set(&["root"])
    );
    assert_eq!(
        matched(r#"{ name = "nope" } || { name = "nada" }"#),
        set(&[])
    );
}

#[test]
fn structural_operators_follow_the_span_tree() {
    assert_eq!(
        matched(r#"{ name = "root" } > { }"#),
        set(&["call-backend", "render"])
    );
    assert_eq!(
        matched(r#"{ name = "root" } > { kind = server }"#),
        set(&[])
    );
    assert_eq!(
        matched(r#"{ name = "root" } >> { }"#),
        set(&["call-backend", "render", "query"])
    );
    assert_eq!(
        matched(r#"{ kind = client } >> { kind = server }"#),
        set(&["query"])
    );
    assert_eq!(
        matched(r#"{ name = "query" } < { }"#),
        set(&["call-backend"])
    );
    assert_eq!(
        matched(r#"{ name = "query" } << { }"#),
        set(&["root", "call-backend"])
    );
    assert_eq!(
        matched(r#"{ name = "call-backend" } ~ { }"#),
        set(&["render"])
    );
    assert_eq!(matched(r#"{ } ~ { }"#), set(&["call-backend", "render"]));
    assert_eq!(matched(r#"{ name = "root" } ~ { }"#), set(&[]));
}

#[test]
fn negated_structural_operators_keep_the_unrelated_right_hand_spans() {
    assert_eq!(
        matched(r#"{ name = "root" } !> { }"#),
        set(&["root", "query"])
    );
    assert_eq!(
        matched(r#"{ name = "call-backend" } !>> { }"#),
        set(&["root", "call-backend", "render"])
    );
    assert_eq!(
        matched(r#"{ name = "query" } !< { }"#),
        set(&["root", "render", "query"])
    );
    assert_eq!(
        matched(r#"{ name = "query" } !<< { }"#),
        set(&["render", "query"])
    );
    assert_eq!(
        matched(r#"{ name = "call-backend" } !~ { }"#),
        set(&["root", "call-backend", "query"])
    );
    // Nothing on the left: every right-hand span is unrelated to it.
    assert_eq!(
        matched(r#"{ name = "nope" } !> { kind = server }"#),
        set(&["root", "query"])
    );
    // Nothing on the right: no match.
    assert_eq!(matched(r#"{ } !> { name = "nope" }"#), set(&[]));
}

#[test]
fn union_structural_operators_keep_both_sides_of_each_relation() {
    assert_eq!(
        matched(r#"{ name = "root" } &> { kind = client }"#),
        set(&["root", "call-backend"])
    );
    assert_eq!(
        matched(r#"{ name = "root" } &> { kind = server }"#),
        set(&[])
    );
    assert_eq!(
        matched(r#"{ name = "query" } &<< { }"#),
        set(&["root", "call-backend", "query"])
    );
    assert_eq!(
        matched(r#"{ name = "query" } &< { }"#),
        set(&["call-backend", "query"])
    );
    assert_eq!(
        matched(r#"{ name = "root" } &>> { status = error }"#),
        set(&["root", "call-backend", "query"])
    );
    assert_eq!(
        matched(r#"{ name = "call-backend" } &~ { name = "render" }"#),
        set(&["call-backend", "render"])
    );
}

#[test]
fn structural_operators_chain_left_to_right() {
    // ({root} > {client}) > {server}: the server spans whose parent is a client child of root.
    assert_eq!(
        matched(r#"{ name = "root" } > { kind = client } > { kind = server }"#),
        set(&["query"])
    );
    assert_eq!(
        matched(r#"{ name = "root" } > { kind = client } && { kind = internal }"#),
        set(&["call-backend", "render"])
    );
}

#[test]
fn aggregates_filter_spansets() {
    assert_eq!(matched("{ } | count() > 3").len(), 4);
    assert_eq!(matched("{ } | count() > 4"), set(&[]));
    assert_eq!(matched("{ } | 3 < count()").len(), 4);
    assert_eq!(
        matched("{ status = error } | avg(duration) = 55ms").len(),
        2
    );
    assert_eq!(
        matched("{ status = error } | avg(duration) > 55ms"),
        set(&[])
    );
    assert_eq!(
        matched("{ status = error } | max(duration) = 60ms").len(),
        2
    );
    assert_eq!(
        matched("{ status = error } | min(duration) = 50ms").len(),
        2
    );
    assert_eq!(
        matched("{ status = error } | sum(duration) = 110ms").len(),
        2
    );
    assert_eq!(
        matched("{ status = error } | sum(duration) != 110ms"),
        set(&[])
    );
    // Spans without a numeric value are left out: only call-backend's 500 counts.
    assert_eq!(matched("{ } | avg(.http.status_code) = 500").len(), 4);
    assert_eq!(matched("{ } | max(.nope) > 0"), set(&[]));
    assert_eq!(matched("max(duration) >= 100ms").len(), 4);
    assert_eq!(matched("{ } | count() > 1 + 2").len(), 4);
    assert_eq!(
        matched("{ } | count() > 1 | { kind = server }"),
        set(&["root", "query"])
    );

    let batch = chain_trace();
    let spans = refs(&batch);
    let sets = parse("{ status = error } | count() = 2")
        .unwrap()
        .evaluate(&spans);
    assert_eq!(sets[0].scalar, Some(Static::Int(2)));
    assert_eq!(
        sets[0].attributes,
        vec![("count()".to_string(), Static::Int(2))]
    );
}

#[test]
fn by_groups_spans_and_coalesce_merges_them_back() {
    let groups = run("{ } | by(resource.service.name)");
    assert_eq!(
        groups,
        vec![set(&["root", "call-backend", "render"]), set(&["query"])]
    );
    assert_eq!(
        run("{ } | by(resource.service.name) | count() > 1"),
        vec![set(&["root", "call-backend", "render"])]
    );
    assert_eq!(
        run("{ } | by(resource.service.name) | count() = 1 | coalesce()"),
        vec![set(&["query"])]
    );
    assert_eq!(run("{ } | by(.nope) | coalesce()").len(), 1);
    // A missing value is a group of its own.
    assert_eq!(run("{ } | by(.db.system)").len(), 2);

    let batch = chain_trace();
    let spans = refs(&batch);
    let sets = parse("{ kind = server } | by(resource.service.name)")
        .unwrap()
        .evaluate(&spans);
    assert_eq!(
        sets[1].attributes,
        vec![(
            "by(resource.service.name)".to_string(),
            Static::Str("backend".into())
        )]
    );
}

#[test]
fn parenthesised_pipelines_combine_as_spansets() {
    assert_eq!(
        matched(r#"({ status = error } | count() > 1) && ({ name = "root" })"#),
        set(&["root", "call-backend", "query"])
    );
    assert_eq!(
        matched(r#"({ status = error } | count() > 2) || ({ name = "root" })"#),
        set(&["root"])
    );
    assert_eq!(
        matched(r#"({ name = "root" } | count() = 1) > ({ } | count() > 1)"#),
        set(&["call-backend", "render"])
    );
    assert_eq!(
        matched(r#"{ name = "root" } | select(span.http.status_code)"#),
        set(&["root"])
    );
}

#[test]
fn orphans_and_empty_traces_are_handled() {
    let batch = chain_trace();
    let spans: Vec<SpanRef<'_>> = refs(&batch).into_iter().skip(1).collect();
    // Without its root, the trace has no root name and root's children are orphans.
    let query = parse(r#"{ rootName = "root" }"#).unwrap();
    assert!(query.evaluate(&spans).is_empty());
    let children = parse("{ } > { }").unwrap().evaluate(&spans);
    assert_eq!(names(&spans, &children[0]), set(&["query"]));
    assert!(parse("{ }").unwrap().evaluate(&[]).is_empty());
}

#[test]
fn span_order_does_not_change_the_answer() {
    let batch = chain_trace();
    let mut spans = refs(&batch);
    spans.reverse();
    let sets = parse(r#"{ name = "root" } >> { status = error }"#)
        .unwrap()
        .evaluate(&spans);
    assert_eq!(names(&spans, &sets[0]), set(&["query", "call-backend"]));
}

#[test]
fn the_deepest_accepted_expression_evaluates_without_exhausting_the_stack() {
    let query = format!("{{ {} }}", vec!["duration > 1ns"; 500].join(" && "));
    assert_eq!(matched(&query).len(), 4);
    let query = format!("{{ {} }}", vec![".nope = 1"; 500].join(" || "));
    assert_eq!(matched(&query), set(&[]));
}

/// A 20,000-span chain (the deepest trace the bad-input tests send): descendant and
/// ancestor relations resolve each span once, and answer exactly.
#[test]
fn structure_over_a_20000_span_chain_is_exact() {
    let n: u64 = 20_000;
    let id = |i: u64| SpanId((i + 1).to_be_bytes());
    let spans: Vec<Span> = (0..n)
        .map(|i| Span {
            trace_id: TraceId([9; 16]),
            span_id: id(i),
            parent_span_id: (i > 0).then(|| id(i - 1)),
            name: if i % 1000 == 0 { "mark" } else { "step" }.to_string(),
            start_ns: i as i64,
            end_ns: i as i64 + 1,
            ..Span::default()
        })
        .collect();
    let batch = SpanBatch {
        tenant: Default::default(),
        resources: vec![resource("deep", "lib", spans)],
    };
    let spans = refs(&batch);
    let count = |q: &str| -> usize {
        parse(q)
            .unwrap()
            .evaluate(&spans)
            .iter()
            .map(|s| s.spans.len())
            .sum()
    };
    // Every span below the first mark (span 0) is its descendant.
    assert_eq!(count(r#"{ name = "mark" } >> { name = "step" }"#), 19_980);
    // Marks 1000 … 19000 have a mark above them; the first one does not.
    assert_eq!(count(r#"{ name = "mark" } >> { name = "mark" }"#), 19);
    assert_eq!(count(r#"{ name = "mark" } << { name = "mark" }"#), 19);
    assert_eq!(count("{ } >> { }"), 19_999);
}
