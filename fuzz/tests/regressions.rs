//! Replays every committed input through its harness on stable, without libFuzzer: the seeds
//! (`corpus/<target>/`) and the inputs that once crashed or hung (`regressions/<target>/`).
//! This is the cheap check CI can run on every change (see README.md); `cargo fuzz run`
//! is what finds new inputs.

use std::path::Path;

fn replay(target: &str) {
    let harness = sightline_fuzz::targets::ALL
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, f)| *f)
        .unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).unwrap();
            eprintln!("{target}: {}", path.display());
            harness(&data);
            count += 1;
        }
    }
    assert!(count > 0, "no input for {target}");
}

macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { replay(stringify!($name)); })*

        #[test]
        fn every_harness_is_replayed() {
            let tested = [$(stringify!($name)),*];
            for (name, _) in sightline_fuzz::targets::ALL {
                assert!(tested.contains(name), "{name} has no replay test");
            }
        }
    };
}

replay_tests!(
    otlp_logs_proto,
    otlp_metrics_proto,
    otlp_json,
    remote_write,
    loki_push_proto,
    loki_push_json,
    syslog_framing,
    syslog_parse,
    logql,
    promql,
    config,
    traceql,
    otlp_traces_proto,
    rule_file,
    alertmanager_config,
);

/// Finding of issue 10's fuzzing (`regressions/promql/unterminated-string-4k`): locating a
/// lexer error re-lexes every prefix of the query's tail (`locate_lexer_error` in
/// `promql/src/parse_error.rs`), quadratic in the length of an unterminated string: a 4 KiB
/// `x"VVV…` cost about 1000 times a valid query of the same length. The libFuzzer build's
/// time budget catches it; this unoptimised build is too slow overall for that budget, so the
/// test compares the two queries instead, which holds in any build.
#[test]
fn promql_error_location_is_not_quadratic() {
    use sightline_fuzz::check::thread_cpu_time;
    let tail = "V".repeat(4094);
    let valid = format!("x + \"{tail}\"");
    let unterminated = format!("x\"{tail}");
    let cpu = |q: &str| {
        // The best of three, after a first call that builds the grammar's tables.
        let _ = sightline_promql::parse_expr(q);
        (0..3)
            .map(|_| {
                let t0 = thread_cpu_time();
                let _ = sightline_promql::parse_expr(q);
                thread_cpu_time() - t0
            })
            .min()
            .unwrap()
    };
    let (v, u) = (cpu(&valid), cpu(&unterminated));
    assert!(
        u <= v * 50 + std::time::Duration::from_millis(5),
        "refusing a 4 KiB unterminated string took {u:?}, a valid query of that length {v:?}"
    );
}
