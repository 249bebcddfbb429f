//! The nesting limits keep every query they let through safe to parse, evaluate and drop on
//! a thread with the stack the server gives the threads that run queries
//! ([`QUERY_THREAD_STACK_BYTES`]), in debug builds too (whose frames are several times
//! larger), and refuse the queries that used to overflow it and abort the server.

use sightline_model::{Labels, Sample};
use sightline_promql::{
    Engine, MAX_NESTING_DEPTH, MAX_OPERATORS, MemorySource, QUERY_THREAD_STACK_BYTES, QueryError,
};

fn source() -> MemorySource {
    let mut src = MemorySource::new();
    src.add(
        Labels::from_pairs([("__name__", "up"), ("job", "a")]),
        (0..10)
            .map(|i| Sample {
                t: i * 15_000,
                v: 1.0,
            })
            .collect(),
    );
    src
}

/// Runs `f` on a thread with the stack the server's query threads have.
fn on_query_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(QUERY_THREAD_STACK_BYTES)
        .spawn(f)
        .unwrap()
        .join()
        .expect("the query thread overflowed or panicked")
}

#[test]
fn the_deepest_queries_allowed_evaluate_on_the_query_threads_stack() {
    let inner = vec!["up"; MAX_OPERATORS / 2].join(" + ");
    let queries = [
        // Brackets to the limit (the selector's `{}` takes none here).
        format!(
            "{}up{}",
            "abs(".repeat(MAX_NESTING_DEPTH),
            ")".repeat(MAX_NESTING_DEPTH)
        ),
        // Operators to the limit.
        vec!["up"; MAX_OPERATORS + 1].join(" or "),
        vec!["1"; MAX_OPERATORS + 1].join(" - "),
        // Both at once, each deepest.
        format!(
            "{}{}{} * {}",
            "(".repeat(MAX_NESTING_DEPTH - 1),
            inner,
            ")".repeat(MAX_NESTING_DEPTH - 1),
            vec!["-up"; MAX_OPERATORS / 4].join(" / ")
        ),
    ];
    for q in queries {
        let ok = on_query_stack(move || {
            let result = Engine::default().instant_query(&source(), &q, 100_000);
            result.map(|_| ()).map_err(|e| format!("{q:.60}…: {e}"))
        });
        ok.unwrap();
    }
}

#[test]
fn queries_that_crashed_the_server_are_parse_errors() {
    let queries = [
        format!("{}1{}", "(".repeat(2500), ")".repeat(2500)),
        format!("{}up{}", "abs(".repeat(2000), ")".repeat(2000)),
        vec!["1"; 2000].join("+"),
        vec!["up"; 3000].join(" or "),
        vec!["x"; 1 << 19].join("+"),
    ];
    for q in queries {
        let e = on_query_stack(move || Engine::default().instant_query(&source(), &q, 0).err());
        match e {
            Some(QueryError::Parse(p)) => assert!(
                p.message.contains("(the limit)") && p.position.is_some(),
                "{p}"
            ),
            other => panic!("not refused: {other:?}"),
        }
    }
}

/// Found by fuzzing: `promql-parser` turns a number written as a duration into
/// `Duration::from_secs_f64`, which panics out of range; such a query is a parse error.
#[test]
fn numbers_out_of_range_as_durations_are_parse_errors_not_panics() {
    for q in [
        "x[5m:11e31]",
        "max_over_time(rate(x[5m])[30m:11e31])",
        "x[1e400]",
        "x offset 1e300",
        "x[5m:-1]",
    ] {
        let e = on_query_stack(move || Engine::default().instant_query(&source(), q, 0).err());
        match e {
            Some(QueryError::Parse(p)) => {
                assert!(!p.message.is_empty(), "{q}: {p}");
            }
            other => panic!("{q}: not refused as a parse error: {other:?}"),
        }
    }
}
