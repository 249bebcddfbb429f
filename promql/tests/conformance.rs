//! Runs Prometheus's PromQL conformance scripts (`../shared/datasets/promql`, from
//! prometheus/prometheus `promql/promqltest/testdata`) and requires at least 90% of the
//! evaluation statements of the files that are not skipped to pass.

use std::path::Path;

use sightline_promql::promqltest;

#[test]
fn prometheus_promql_scripts_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/promql");
    if !dir.is_dir() {
        // The data set lives beside the repository, not in it; a checkout without it (a
        // bare clone elsewhere) cannot run this test, which says so instead of failing.
        eprintln!(
            "SKIPPED: PromQL test scripts not found at {} (shared/datasets/promql beside the \
             repository); run `cargo run --release -p sightline-benches --bin promql_conformance`",
            dir.display()
        );
        return;
    }
    let report = promqltest::run_dir(&dir).expect("reading the PromQL test scripts");
    assert!(
        !report.files.is_empty(),
        "no .test files in {}",
        dir.display()
    );
    for f in &report.files {
        eprintln!("{:<28} {:>4}/{:<4}", f.name, f.passed, f.evals);
        for fail in &f.failures {
            eprintln!(
                "    line {} [{}] {}: {}",
                fail.line, fail.cause, fail.expr, fail.reason
            );
        }
    }
    let (evals, passed) = report.totals();
    let rate = report.pass_rate();
    eprintln!("total {passed}/{evals} = {rate:.1}%");
    assert!(
        rate >= 90.0,
        "only {passed} of {evals} PromQL evaluation statements pass ({rate:.1}%), 90% required"
    );
}
