//! Parsing: error kinds and positions, limits, canonical text, and no panics on any input.

use proptest::prelude::*;
use sightline_traceql::{
    CmpOp, Condition, ErrorKind, Field, Intrinsic, MAX_NESTING, Scope, Static, parse,
};

fn error(query: &str) -> sightline_traceql::TraceQlError {
    match parse(query) {
        Ok(q) => panic!("{query:?} was accepted as {q}"),
        Err(e) => e,
    }
}

#[test]
fn syntax_errors_name_the_token_and_its_position() {
    let e = error(r#"{ .a = "x" && }"#);
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert_eq!((e.line, e.column), (1, 15));
    assert_eq!(
        e.to_string(),
        "parse error at line 1, column 15: syntax error: unexpected }, expecting a value, an attribute or an intrinsic"
    );
    let e = error("{ name = \"a\" }\n  | count()");
    assert_eq!((e.kind, e.line, e.column), (ErrorKind::Syntax, 2, 5));
    assert_eq!(error("{ .a == 1 }").kind, ErrorKind::Syntax);
    assert_eq!(error("{ trace:name = \"a\" }").kind, ErrorKind::Syntax);
    assert_eq!(error("{ } + { }").kind, ErrorKind::Syntax);
    assert_eq!(error("{ } | topk(3)").kind, ErrorKind::Syntax);
}

#[test]
fn invalid_queries_parse_but_are_refused_with_the_operator_position() {
    let e = error("{ name > 3 }");
    assert_eq!((e.kind, e.column), (ErrorKind::Invalid, 8));
    assert!(e.message.contains("same type"), "{e}");
    assert_eq!(error("{ kind < server }").kind, ErrorKind::Invalid);
    assert_eq!(error("{ .a = nil }").kind, ErrorKind::Invalid);
    assert_eq!(error(r#"{ .a =~ "(" }"#).kind, ErrorKind::Invalid);
    assert_eq!(error("{ status }").kind, ErrorKind::Invalid);
    assert_eq!(error("{ } | by(1)").kind, ErrorKind::Invalid);
    assert_eq!(error("{ } | avg(2) > 1").kind, ErrorKind::Invalid);
    // A syntax error later in the query wins over an invalid part before it.
    assert_eq!(error("{ name > 3 } | count()").kind, ErrorKind::Syntax);
}

#[test]
fn unsupported_constructs_are_named() {
    for (query, construct) in [
        ("{ } | compare({ status = error })", "`compare()`"),
        ("({ } | rate()) > ({ } | rate())", "comparing two metrics"),
        (
            "{ } | rate() | with(most_recent=true)",
            "`with(most_recent=…)`",
        ),
        ("{ event.a = 1 }", "`event.`"),
        ("{ link:traceID = \"a\" }", "`link:traceID`"),
        ("{ parent.a = 1 }", "`parent.`"),
        ("{ nestedSetLeft > 1 }", "`nestedSetLeft`"),
        ("{ } | with(most_recent=true)", "`with()`"),
        ("{ } | count() + count() > 1", "arithmetic on aggregates"),
        (
            "({ } | count()) > ({ } | count())",
            "`({ … } | count()) > 1`",
        ),
        ("{ .a =~ .b }", "regular expression"),
        ("({ } | by(.a)) > ({ })", "`by()`"),
    ] {
        let query = query.replace("| with", "with");
        let e = error(&query);
        assert_eq!(e.kind, ErrorKind::Unsupported, "{query}: {e}");
        assert!(e.message.contains(construct), "{query}: {e}");
    }
    // Validity is checked before support: an invalid unsupported query is invalid.
    assert_eq!(error("{ } | compare({ }, 0)").kind, ErrorKind::Invalid);
    assert_eq!(error("{ } | rate() | topk(0)").kind, ErrorKind::Invalid);
    assert_eq!(
        error("{ } | quantile_over_time(duration, 1.5)").kind,
        ErrorKind::Invalid
    );
    assert_eq!(error("({ } | rate()) / (1 / 0)").kind, ErrorKind::Invalid);
}

#[test]
fn metrics_queries_are_accepted_and_print_back() {
    for (query, canonical) in [
        ("{}|rate()", "{ } | rate()"),
        (
            "{ status = error } | rate() by (resource.service.name, span:name)",
            "{ status = error } | rate() by (resource.service.name, name)",
        ),
        (
            "{} | quantile_over_time(duration, 0, .9, 1) by (span.http.path) | topk(10)",
            "{ } | quantile_over_time(duration, 0.0, 0.9, 1.0) by (span.http.path) | topk(10)",
        ),
        ("({} | rate()) > 10", "{ } | rate() > 10.0"),
        ("10 < ({} | rate())", "{ } | rate() > 10.0"),
        ("3 * 2 + ({} | rate())", "6.0 + ({ } | rate())"),
        ("({} | rate()) / 3 * 2", "({ } | rate()) / 3.0 * 2.0"),
        ("5 + ({} | rate()) * 10", "5.0 + ({ } | rate()) * 10.0"),
        ("(1 / 2) + ({} | rate())", "0.5 + ({ } | rate())"),
        (
            "({} | rate() > 6) * 100 > 5",
            "({ } | rate() > 6.0) * 100.0 > 5.0",
        ),
        (
            "({} | rate()) * 10 + 5 > 50 | topk(1)",
            "({ } | rate()) * 10.0 + 5.0 > 50.0 | topk(1)",
        ),
        (
            "(100 * ({} | rate())) - (200 * ({} | rate()))",
            "100.0 * ({ } | rate()) - 200.0 * ({ } | rate())",
        ),
        (
            "{} | rate() | topk(5) > 20 | bottomk (10) <= 10",
            "{ } | rate() | topk(5) > 20.0 | bottomk(10) <= 10.0",
        ),
        (
            "{} | count_over_time() by (name) | bottomk(10) with(sample=0.1)",
            "{ } | count_over_time() by (name) | bottomk(10) with(sample=0.1)",
        ),
        ("({} | rate() > 1) > 2", "({ } | rate() > 1.0) > 2.0"),
    ] {
        let parsed = parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        assert!(parsed.is_metrics(), "{query}");
        assert_eq!(parsed.to_string(), canonical, "{query}");
        assert_eq!(parse(canonical).as_ref(), Ok(&parsed), "{canonical}");
    }
    assert!(!parse("{ } | count() > 1").unwrap().is_metrics());
    // Hints on search queries still change what a store returns: refused.
    assert_eq!(
        error("{ } with(most_recent=true)").kind,
        ErrorKind::Unsupported
    );
}

#[test]
fn nesting_is_limited_and_named() {
    let deep = format!("{}{{ }}{}", "(".repeat(200), ")".repeat(200));
    let e = error(&deep);
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains(&MAX_NESTING.to_string()), "{e}");
    let ok = format!("{}{{ }}{}", "(".repeat(20), ")".repeat(20));
    assert!(parse(&ok).is_ok());
    let unary = format!("{{ {}true }}", "!".repeat(200));
    assert_eq!(error(&unary).kind, ErrorKind::Invalid);
    // A long chain of conditions is bounded too, without recursion in the parser.
    let long = format!("{{ {} }}", vec![".a = 1"; 2000].join(" && "));
    assert_eq!(error(&long).kind, ErrorKind::Invalid);
    let fine = format!("{{ {} }}", vec![".a = 1"; 100].join(" && "));
    assert!(parse(&fine).is_ok());
}

#[test]
fn canonical_text_parses_back_to_the_same_query() {
    for query in [
        "{ }",
        "{ -(.a * 2) = -2 }",
        "{ (-2) ^ 2 = 4 }",
        "{ -2 ^ 2 = -4 }",
        "{ .a - -1 = 0 && (.b = 1 || .c = 2) }",
        "{ !(.a = 1) && !.b }",
        r#"{ ."a b\"c" = "x\ny" && span.k.l != nil && resource.r =~ "a|b" }"#,
        "{ duration > 1.5s && duration < 1h30m && traceDuration >= 250us }",
        "{ .x = 1.0 && .y = 1e300 && .z = -0.5 }",
        "{ a } >> { b }",
        "{ .a } > { .b } > { .c } && ({ .d } || { .e })",
        "({ .a } | count() > 1) !~ ({ .b } | by(.c) | coalesce())",
        "{ .a } | by(.b + 1) | max(.c * 2) >= -3 | coalesce() | select(.d, name, span:id)",
        "avg(duration) > 1 - 3",
        "{ } | 2 > count()",
        "{ span:parentID = \"ab\" && trace:rootService = \"x\" && instrumentation:version = \"1\" }",
    ] {
        let Ok(parsed) = parse(query) else {
            // `{ a }` is not valid (an identifier), the others are.
            assert_eq!(query, "{ a } >> { b }");
            continue;
        };
        let printed = parsed.to_string();
        assert_eq!(parse(&printed).as_ref(), Ok(&parsed), "{query} → {printed}");
    }
    assert_eq!(parse("{}").unwrap().to_string(), "{ }");
    assert_eq!(
        parse("{ .a=1&&(.b=2||.c=3) }").unwrap().to_string(),
        "{ .a = 1 && (.b = 2 || .c = 3) }"
    );
    assert_eq!(
        parse("{ } | 2 > count()").unwrap().to_string(),
        "{ } | count() < 2"
    );
}

fn attribute(scope: Scope, name: &str) -> Field {
    Field::Attribute {
        scope,
        name: name.to_string(),
    }
}

fn condition(field: Field, op: CmpOp, value: Static) -> Condition {
    Condition { field, op, value }
}

#[test]
fn prefilter_lists_only_what_every_match_implies() {
    let name_is = |n: &str| {
        condition(
            Field::Intrinsic(Intrinsic::Name),
            CmpOp::Eq,
            Static::Str(n.to_string()),
        )
    };
    let q = parse(r#"{ name = "a" && span.x > 3 } && { resource.service.name =~ "s.*" }"#).unwrap();
    assert_eq!(
        q.prefilter(),
        vec![
            vec![
                name_is("a"),
                condition(attribute(Scope::Span, "x"), CmpOp::Gt, Static::Int(3))
            ],
            vec![condition(
                attribute(Scope::Resource, "service.name"),
                CmpOp::Regex,
                Static::Str("s.*".into())
            )],
        ]
    );
    let q = parse(r#"{ name = "a" } > { 3 < .y }"#).unwrap();
    assert_eq!(
        q.prefilter(),
        vec![
            vec![name_is("a")],
            vec![condition(
                attribute(Scope::Unscoped, "y"),
                CmpOp::Gt,
                Static::Int(3)
            )]
        ]
    );
    // Disjunctions, negations and `!=` imply nothing about a single span.
    for query in [
        r#"{ name = "a" || name = "b" }"#,
        r#"{ name = "a" } || { name = "b" }"#,
        r#"{ name != "a" && .b !~ "x" && !(.c = 1) && .d != nil }"#,
        "{ }",
        "{ } | count() > 2",
    ] {
        assert_eq!(
            parse(query).unwrap().prefilter(),
            Vec::<Vec<Condition>>::new(),
            "{query}"
        );
    }
    // The left of a negated structural operator may be absent; the right may not.
    let q = parse(r#"{ name = "a" } !> { name = "b" }"#).unwrap();
    assert_eq!(q.prefilter(), vec![vec![name_is("b")]]);
    // Conjuncts next to a disjunction still hold; stages each hold on their own.
    let q =
        parse(r#"{ name = "a" && (.x = 1 || .y = 2) } | count() > 1 | { name = "b" }"#).unwrap();
    assert_eq!(q.prefilter(), vec![vec![name_is("a")], vec![name_is("b")]]);
    let q = parse(r#"({ name = "a" } | count() > 1) && ({ name = "b" })"#).unwrap();
    assert_eq!(q.prefilter(), vec![vec![name_is("a")], vec![name_is("b")]]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,60}") {
        let _ = parse(&text);
    }

    /// Text built from TraceQL's own pieces reaches deep into the parser; whatever it
    /// accepts must print back to itself.
    #[test]
    fn accepted_token_soup_round_trips(parts in prop::collection::vec(prop::sample::select(vec![
        "{", "}", "(", ")", ",", "=", "!=", "=~", "!~", ">", ">=", "<", "<=", ">>", "<<", "~",
        "!>", "!<", "&>", "&&", "||", "|", "!", "+", "-", "*", "/", "%", "^", "1", "2.5",
        "-3", "10ms", "\"x\"", "true", "nil", "ok", "error", "server", ".a", "span.b",
        "resource.c", "name", "duration", "status", "kind", "span:id", "rootName",
        "count()", "avg(", "max(", "by(", "coalesce()", "select(", "rate()", "topk(2)",
    ]), 0..24)) {
        let text = parts.join(" ");
        if let Ok(query) = parse(&text) {
            let printed = query.to_string();
            prop_assert_eq!(parse(&printed), Ok(query), "{} → {}", text, printed);
        }
    }
}

/// Found by fuzzing: a duration with a long fraction overflowed (`{ .5555…h }` with 31
/// digits); digits below a nanosecond are dropped.
#[test]
fn durations_with_long_fractions_do_not_overflow() {
    let long =
        sightline_traceql::parse("{ duration > .5555555555555555555555555555555h }").unwrap();
    let short = sightline_traceql::parse("{ duration > .555555555555555555h }").unwrap();
    assert_eq!(long, short, "digits past the 18th change nothing");
    assert!(sightline_traceql::parse("{ duration > 1.999999999999999999999999999999ms }").is_ok());
}

/// Found by fuzzing: `!!…!.a` within the nesting limit printed as `!(!(…))`, whose brackets
/// went past it, so the canonical text did not parse back.
#[test]
fn repeated_negation_prints_without_brackets() {
    let q = sightline_traceql::parse(&format!("{{ {}.a != nil }}", "!".repeat(41))).unwrap();
    let text = q.to_string();
    assert_eq!(sightline_traceql::parse(&text).unwrap(), q, "{text}");
    assert!(!text.contains('('), "{text}");
}

/// Found by fuzzing (fourth round): `- - … -.a` likewise printed as `-(-(…))`.
#[test]
fn repeated_minus_prints_without_brackets() {
    let q = sightline_traceql::parse(&format!("{{ {}.a > 1 }}", "-".repeat(45))).unwrap();
    let text = q.to_string();
    assert_eq!(sightline_traceql::parse(&text).unwrap(), q, "{text}");
    assert!(!text.contains('('), "{text}");
    // The input the fuzzer found.
    let found = std::fs::read("../fuzz/regressions/traceql/repeated-minus-nesting").unwrap();
    let found = std::str::from_utf8(&found).unwrap();
    if let Ok(q) = sightline_traceql::parse(found) {
        let text = q.to_string();
        assert_eq!(sightline_traceql::parse(&text).unwrap(), q, "{text}");
    }
}
