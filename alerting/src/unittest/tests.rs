use std::path::PathBuf;

use super::*;

const RULES: &str = r#"
groups:
  - name: rec
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - record: job:up:double
        expr: job:up:sum * 2
  - name: alerts
    rules:
      - alert: Down
        expr: up == 0
        for: 3m
        labels:
          severity: '{{ if eq $labels.job "a" }}page{{ else }}ticket{{ end }}'
        annotations:
          summary: '{{ $labels.instance }} down ({{ $value }}) in {{ $externalLabels.cluster }}'
          total: '{{ with query "sum(up)" }}{{ . | first | value }}{{ end }}'
"#;

/// Runs `test` (a test file) next to a rule file `rules.yml` holding `rules`.
fn run_with(rules: &str, test: &str, options: &Options) -> FileReport {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
    run("t.yml", test, dir.path(), options)
}

fn failures(rules: &str, test: &str) -> Vec<String> {
    run_with(rules, test, &Options::default()).failures
}

#[test]
fn firing_alerts_match_their_expanded_labels_and_annotations() {
    let test = r#"
rule_files: [rules.yml]
tests:
  - interval: 1m
    external_labels: {cluster: c1}
    input_series:
      - series: 'up{job="a", instance="i1"}'
        values: '1 0 0 0 0 0 1'
      - series: 'up{job="b", instance="i2"}'
        values: '1x6'
    alert_rule_test:
      # Pending alerts are not listed: only firing ones.
      - eval_time: 3m
        alertname: Down
        exp_alerts: []
      # Checked against the evaluation at 4m.
      - eval_time: 4m59s
        alertname: Down
        exp_alerts:
          - exp_labels: {job: a, instance: i1, severity: page}
            exp_annotations:
              summary: i1 down (0) in c1
              total: "1"
      - eval_time: 6m
        alertname: Down
        exp_alerts: []
"#;
    assert_eq!(failures(RULES, test), Vec::<String>::new());
}

#[test]
fn a_wrong_alert_expectation_fails_in_promtools_words() {
    let test = r#"
rule_files: [rules.yml]
tests:
  - name: grp
    interval: 1m
    input_series:
      - series: 'up{job="a", instance="i1"}'
        values: '0x10'
    alert_rule_test:
      - eval_time: 10m
        alertname: Down
        exp_alerts:
          - exp_labels: {severity: page}
"#;
    let got = failures(RULES, test);
    let want = r#"    name: grp,
    alertname: Down, time: 10m, 
        exp:[
            0:
              Labels:{alertname="Down", severity="page"}
              Annotations:{}
            ], 
        got:[
            0:
              Labels:{alertname="Down", instance="i1", job="a", severity="page"}
              Annotations:{summary="i1 down (0) in ", total="0"}
            ]"#;
    assert_eq!(got, [want]);
}

#[test]
fn a_wrong_sample_expectation_fails_in_promtools_words() {
    let test = r#"
rule_files: [rules.yml]
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="a", instance="i1"}'
        values: '1 1 1'
    promql_expr_test:
      - expr: job:up:double
        eval_time: 2m
        exp_samples:
          - labels: 'job:up:double{job="b"}'
            value: 2.5
          - labels: 'job:up:double'
            value: 1e-7
      - expr: up
        eval_time: 1m
        exp_samples: []
      - expr: nonexistent
        eval_time: 1m
        exp_samples: []
"#;
    let got = failures(RULES, test);
    assert_eq!(
        got,
        [
            "    expr: \"job:up:double\", time: 2m,\n        exp: {__name__=\"job:up:double\"} 1E-07, {__name__=\"job:up:double\", job=\"b\"} 2.5E+00\n        got: {__name__=\"job:up:double\", job=\"a\"} 2E+00",
            "    expr: \"up\", time: 1m,\n        exp: nil\n        got: {__name__=\"up\", instance=\"i1\", job=\"a\"} 1E+00",
        ]
    );
}

#[test]
fn recorded_series_are_seen_by_later_rules_and_marked_stale_when_they_go() {
    let rules = r#"
groups:
  - name: g
    rules:
      - record: ok
        expr: up == 1
      - record: ok_count
        expr: count(ok)
"#;
    let test = r#"
rule_files: [rules.yml]
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="a"}'
        values: '1 1 0 0'
    promql_expr_test:
      - expr: ok_count
        eval_time: 1m
        exp_samples:
          - labels: ok_count
            value: 1
      # The series went away at 2m: a staleness marker ends it at once.
      - expr: ok
        eval_time: 2m30s
        exp_samples: []
      - expr: count_over_time(ok[10m])
        eval_time: 3m
        exp_samples:
          - labels: '{job="a"}'
            value: 2
"#;
    assert_eq!(failures(rules, test), Vec::<String>::new());
}

#[test]
fn alerts_series_follow_the_alerts_state() {
    let test = r#"
rule_files: [rules.yml]
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="a", instance="i1"}'
        values: '0x10'
    promql_expr_test:
      - expr: ALERTS
        eval_time: 2m
        exp_samples:
          - labels: 'ALERTS{alertname="Down", alertstate="pending", instance="i1", job="a", severity="page"}'
            value: 1
      - expr: ALERTS
        eval_time: 4m
        exp_samples:
          - labels: 'ALERTS{alertname="Down", alertstate="firing", instance="i1", job="a", severity="page"}'
            value: 1
      - expr: ALERTS_FOR_STATE
        eval_time: 4m
        exp_samples:
          - labels: 'ALERTS_FOR_STATE{alertname="Down", instance="i1", job="a", severity="page"}'
            value: 0
"#;
    assert_eq!(failures(RULES, test), Vec::<String>::new());
}

#[test]
fn a_rule_that_fails_to_evaluate_ends_its_test_group() {
    let rules = r#"
groups:
  - name: g
    limit: 1
    rules:
      - record: all
        expr: up
"#;
    let test = r#"
rule_files: [rules.yml]
tests:
  - input_series:
      - series: 'up{i="1"}'
        values: '1 1'
      - series: 'up{i="2"}'
        values: '_ 1'
    promql_expr_test:
      - expr: up
        eval_time: 5m
        exp_samples: []
"#;
    assert_eq!(
        failures(rules, test),
        ["    rule: all, time: 1m0s, err: exceeded limit of 1 with 2 series"]
    );
}

#[test]
fn native_histograms_are_compared_by_their_test_expression() {
    let rules = r#"
groups:
  - name: g
    rules:
      - record: h:sum
        expr: sum(h)
"#;
    let test = r#"
rule_files: [rules.yml]
tests:
  - interval: 1m
    input_series:
      - series: 'h{job="a"}'
        values: '{{sum:3 count:2 buckets:[2]}}+{{sum:1 count:1 buckets:[1]}}x4'
    promql_expr_test:
      - expr: h
        eval_time: 0
        exp_samples:
          - labels: 'h{job="a"}'
            histogram: '{{count:2 sum:3 buckets:[2]}}'
      - expr: h:sum
        eval_time: 4m
        exp_samples:
          - labels: 'h:sum'
            histogram: '{{count:6 sum:7 counter_reset_hint:not_reset buckets:[6]}}'
      - expr: h
        eval_time: 1m
        exp_samples:
          - labels: 'h{job="a"}'
            histogram: '{{count:3 sum:4 buckets:[3]}}'
"#;
    let got = failures(rules, test);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].ends_with("got: {__name__=\"h\", job=\"a\"} {{count:3 sum:4 counter_reset_hint:not_reset buckets:[3]}}"),
        "{}",
        got[0]
    );
}

#[test]
fn fuzzy_compare_forgives_the_last_bit_only() {
    let test = |fuzzy: bool, value: &str| {
        format!(
            "fuzzy_compare: {fuzzy}\ntests:\n  - input_series:\n      - series: x\n        values: {value}\n    promql_expr_test:\n      - expr: x\n        eval_time: 0\n        exp_samples:\n          - labels: x\n            value: 3\n"
        )
    };
    assert!(failures("", &test(true, "3.0000000000000004")).is_empty());
    assert!(failures("", &test(true, "2.9999999999999996")).is_empty());
    assert_eq!(failures("", &test(false, "3.0000000000000004")).len(), 1);
    assert_eq!(failures("", &test(true, "3.0000000000000013")).len(), 1);
    assert!(floats_equal(f64::NAN, f64::NAN, false));
    assert!(!floats_equal(-0.0, 1e-320, true));
}

#[test]
fn run_selects_test_groups_by_name() {
    let test = r#"
tests:
  - name: good one
    input_series: [{series: x, values: "1"}]
    promql_expr_test: [{expr: x, eval_time: 0, exp_samples: [{labels: x, value: 1}]}]
  - name: bad one
    input_series: [{series: x, values: "0"}]
    promql_expr_test: [{expr: x, eval_time: 0, exp_samples: [{labels: x, value: 1}]}]
  - input_series: [{series: x, values: "0"}]
    promql_expr_test: [{expr: x, eval_time: 0, exp_samples: [{labels: x, value: 1}]}]
"#;
    let with = |run: &[&str]| {
        let run: Vec<String> = run.iter().map(ToString::to_string).collect();
        run_with("", test, &Options::new(&run, false).unwrap())
            .failures
            .len()
    };
    assert_eq!(with(&[]), 2);
    assert_eq!(with(&["good"]), 0);
    assert_eq!(with(&["bad"]), 1);
    assert_eq!(with(&["good", "bad"]), 1);
    assert!(Options::new(&["(".to_string()], false).is_err());
}

#[test]
fn the_test_group_interval_defaults_to_the_evaluation_interval() {
    let test = r#"
evaluation_interval: 30s
tests:
  - input_series: [{series: x, values: "0 1"}]
    promql_expr_test:
      - expr: x
        eval_time: 30s
        exp_samples: [{labels: x, value: 1}]
"#;
    assert!(failures("", test).is_empty());
}

#[test]
fn the_start_timestamp_shifts_samples_and_time() {
    let test = r#"
tests:
  - start_timestamp: "2021-01-01T00:00:00Z"
    input_series: [{series: x, values: "0 1"}]
    promql_expr_test:
      - expr: x
        eval_time: 1m
        exp_samples: [{labels: x, value: 1}]
      - expr: time()
        eval_time: 1m
        exp_samples: [{value: 1609459260}]
  - start_timestamp: 60.5
    input_series: [{series: x, values: "5"}]
    promql_expr_test:
      - expr: timestamp(x)
        eval_time: 0
        exp_samples: [{value: 60.5}]
  - start_timestamp: 60
    input_series: [{series: x, values: "5"}]
    promql_expr_test:
      - expr: timestamp(x)
        eval_time: 0
        exp_samples: [{value: 60}]
"#;
    assert_eq!(failures("", test), Vec::<String>::new());
}

#[test]
fn group_eval_order_decides_which_rule_sees_which() {
    let rules = r#"
groups:
  - name: second
    rules:
      - record: b
        expr: a + 1
  - name: first
    rules:
      - record: a
        expr: vector(1)
"#;
    let test = |order: &str| {
        format!(
            "rule_files: [rules.yml]\ngroup_eval_order: {order}\ntests:\n  - promql_expr_test:\n      - expr: b\n        eval_time: 0\n        exp_samples: [{{labels: b, value: 2}}]\n"
        )
    };
    assert!(failures(rules, &test("[first, second]")).is_empty());
    assert_eq!(failures(rules, &test("[second, first]")).len(), 1);
    assert_eq!(
        failures(rules, &test("[first, first]")),
        ["group name repeated in evaluation order: first"]
    );
}

#[test]
fn unknown_fields_fail_in_rule_files_unless_ignored() {
    let rules = "groups:\n  - name: g\n    owner: me\n    rules:\n      - record: a\n        expr: vector(1)\n";
    let test = "rule_files: [rules.yml]\ntests:\n  - promql_expr_test:\n      - expr: a\n        eval_time: 0\n        exp_samples: [{labels: a, value: 1}]\n";
    let strict = failures(rules, test);
    assert_eq!(strict.len(), 1);
    assert!(strict[0].contains("field owner not found"), "{}", strict[0]);
    let lenient = run_with(rules, test, &Options::new(&[], true).unwrap());
    assert!(lenient.passed(), "{lenient:?}");
    // The test file itself is always read strictly, as promtool reads it.
    let unknown = failures("", "tests:\n  - nmae: x\n");
    assert_eq!(unknown.len(), 1);
    assert!(unknown[0].contains("nmae"), "{}", unknown[0]);
}

#[test]
fn rule_files_that_match_nothing_are_a_warning() {
    let report = run_with(
        "",
        "rule_files: [missing-*.yml]\ntests: []\n",
        &Options::default(),
    );
    assert!(report.passed());
    assert_eq!(report.warnings.len(), 1);
    assert!(report.warnings[0].starts_with("no file match pattern"));
    assert!(
        report
            .to_string()
            .contains("  WARNING: no file match pattern")
    );
}

#[test]
fn malformed_input_fails_the_file_without_panicking() {
    let cases = [
        "tests: [",
        "evaluation_interval: 1x\n",
        "evaluation_interval: 5\n",
        "tests:\n  - interval: -1m\n",
        "tests:\n  - input_series: [{series: 'up{', values: '1'}]\n",
        "tests:\n  - input_series: [{series: up, values: '1 abc'}]\n",
        "tests:\n  - input_series: [{series: up, values: '1x99999999999'}]\n",
        "tests:\n  - alert_rule_test: [{eval_time: 1m}]\n",
        "tests:\n  - promql_expr_test: [{expr: 'up', eval_time: 0, exp_samples: [{labels: 'up{'}]}]\n",
        "tests:\n  - promql_expr_test: [{expr: 'up', eval_time: 0, exp_samples: [{histogram: '1'}]}]\n",
        "tests:\n  - promql_expr_test: [{expr: 'up', eval_time: 0, exp_samples: [{histogram: '{{count:1}} {{count:2}}'}]}]\n",
        "tests:\n  - promql_expr_test: [{expr: 'sum(', eval_time: 0}]\n",
        "tests:\n  - promql_expr_test: [{expr: 'up[5m]', eval_time: 0}]\n",
        "tests:\n  - start_timestamp: yesterday\n",
        "tests:\n  - alert_rule_test: [{eval_time: 200000d, alertname: A}]\n",
        "rule_files: ['[']\ntests: [{}]\n",
    ];
    for case in cases {
        let r = run_with("", case, &Options::default());
        assert!(!r.passed(), "{case:?} passed");
    }
    let r = run_with(
        "",
        "tests:\n  - alert_rule_test: [{eval_time: 1m}]\n",
        &Options::default(),
    );
    assert_eq!(
        r.failures,
        ["an item under alert_rule_test misses required attribute alertname at eval_time 1m"]
    );
    // Empty files and groups pass, as in promtool.
    assert!(run_with("", "", &Options::default()).passed());
    assert!(run_with("", "# nothing\n", &Options::default()).passed());
    assert!(run_with("", "tests:\n  - {}\n", &Options::default()).passed());
}

#[test]
fn reports_print_as_promtool_prints_them() {
    let pass = FileReport {
        file: "a.yml".into(),
        warnings: vec![],
        failures: vec![],
    };
    assert_eq!(pass.to_string(), "Unit Testing:  a.yml\n  SUCCESS\n\n");
    let fail = FileReport {
        file: "b.yml".into(),
        warnings: vec![],
        failures: vec!["one".into(), "two".into()],
    };
    assert_eq!(
        fail.to_string(),
        "Unit Testing:  b.yml\n  FAILED:\none\n\ntwo\n\n\n"
    );
}

#[test]
fn durations_read_and_print_as_prometheus_does() {
    assert_eq!(parse_model_duration("0"), Ok(0));
    assert_eq!(parse_model_duration("1h30m"), Ok(5_400_000));
    assert_eq!(parse_model_duration("2m59s999ms"), Ok(179_999));
    assert_eq!(parse_model_duration("106700d"), Ok(106_700 * 86_400_000));
    for bad in ["", "5", "1m1h", "1m1m", "-1m", "1x", "m", "200000d"] {
        assert!(parse_model_duration(bad).is_err(), "{bad:?}");
    }
    let shown = |ms: i64| Dur(ms).to_string();
    assert_eq!(shown(0), "0s");
    assert_eq!(shown(86_400_000), "1d");
    assert_eq!(shown(604_800_000), "1w");
    assert_eq!(shown(90 * 86_400_000), "90d");
    assert_eq!(shown(179_999), "2m59s999ms");
    assert_eq!(shown(31_536_000_000), "1y");
}

#[test]
fn floats_print_as_gos_e_format() {
    assert_eq!(go_float_e(1.0), "1E+00");
    assert_eq!(go_float_e(0.0), "0E+00");
    assert_eq!(go_float_e(2.5), "2.5E+00");
    assert_eq!(go_float_e(1e-7), "1E-07");
    assert_eq!(go_float_e(123456.0), "1.23456E+05");
    assert_eq!(go_float_e(3.0000000000000004), "3.0000000000000004E+00");
    assert_eq!(go_float_e(1e300), "1E+300");
    assert_eq!(go_float_e(f64::NAN), "NaN");
    assert_eq!(go_float_e(f64::NEG_INFINITY), "-Inf");
}

// ---------------------------------------------------------------------------------------
// Upstream's unit-test files.

/// The shared conformance data, if this machine has it.
fn dataset() -> Option<PathBuf> {
    let relative = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/alerting");
    [relative, PathBuf::from("/work/shared/datasets/alerting")]
        .into_iter()
        .find(|p| p.join("MANIFEST.md").is_file())
}

/// A run of one test file: (file, `--run` patterns, `--ignore-unknown-fields`, passes, what
/// a failure must name).
type Expectation = (
    &'static str,
    &'static [&'static str],
    bool,
    bool,
    &'static [&'static str],
);

/// Every unit-test file `MANIFEST.md` lists, with the outcome upstream's own tests expect.
const EXPECTED: &[Expectation] = &[
    (
        "prometheus/cmd/promtool/testdata/unittest.yml",
        &[],
        false,
        true,
        &[],
    ),
    (
        "prometheus/cmd/promtool/testdata/long-period.yml",
        &[],
        false,
        true,
        &[],
    ),
    (
        "prometheus/cmd/promtool/testdata/rules_run.yml",
        &[],
        false,
        false,
        &["expr: \"test\", time: 0s,"],
    ),
    (
        "prometheus/cmd/promtool/testdata/rules_run.yml",
        &["correct"],
        false,
        true,
        &[],
    ),
    (
        "prometheus/cmd/promtool/testdata/rules_run.yml",
        &["wrong"],
        false,
        false,
        &["expr: \"test\", time: 0s,"],
    ),
    (
        "prometheus/cmd/promtool/testdata/at-modifier-test.yml",
        &[],
        false,
        true,
        &[],
    ),
    (
        "prometheus/cmd/promtool/testdata/bad-rules-syntax-test.yml",
        &[],
        false,
        false,
        &["bad-rules-syntax.yml", "could not parse expression"],
    ),
    (
        "prometheus/cmd/promtool/testdata/rules_run_extrafields.yml",
        &[],
        false,
        false,
        &["rules_extrafields.yml", "namespace"],
    ),
    (
        "prometheus/cmd/promtool/testdata/rules_run_extrafields.yml",
        &[],
        true,
        true,
        &[],
    ),
    (
        "prometheus/cmd/promtool/testdata/bad-input-series.yml",
        &[],
        false,
        false,
        &["up{job="],
    ),
    (
        "prometheus/cmd/promtool/testdata/bad-promql.yml",
        &[],
        false,
        false,
        &["expr: \"join_1 + on(a) join_2\", time: 0s, err: "],
    ),
    (
        "prometheus/cmd/promtool/testdata/no-test-group-interval.yml",
        &[],
        false,
        true,
        &[],
    ),
    (
        "prometheus/cmd/promtool/testdata/rules_run_fuzzy.yml",
        &[],
        false,
        false,
        &["expr: \"test_low\"", "expr: \"test_high\""],
    ),
    (
        "prometheus/cmd/promtool/testdata/rules_run_fuzzy.yml",
        &["correct"],
        false,
        true,
        &[],
    ),
    (
        "prometheus/cmd/promtool/testdata/rules_run_fuzzy.yml",
        &["wrong"],
        false,
        false,
        &["expr: \"test_low\"", "expr: \"test_high\""],
    ),
    (
        "derived/prometheus-docs/unit_testing_rules.test.yml",
        &[],
        false,
        true,
        &[],
    ),
];

#[test]
fn upstream_unit_test_files_pass_or_fail_as_upstream_expects() {
    let Some(root) = dataset() else {
        eprintln!("no shared/datasets/alerting: skipped");
        return;
    };
    let manifest = std::fs::read_to_string(root.join("MANIFEST.md")).unwrap();
    // Every unit-test file the manifest lists has an expectation here.
    let listed: Vec<&str> = manifest
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells.len() > 3 && cells[2].starts_with("unit test"))
                .then(|| cells[1].trim_matches('`'))
        })
        .collect();
    assert!(listed.len() >= 11, "{listed:?}");
    for file in &listed {
        assert!(
            EXPECTED.iter().any(|(f, ..)| f == file),
            "{file} is listed in MANIFEST.md but has no expectation"
        );
    }
    for (file, run, ignore_unknown_fields, passes, names) in EXPECTED {
        let run: Vec<String> = run.iter().map(ToString::to_string).collect();
        let options = Options::new(&run, *ignore_unknown_fields).unwrap();
        let report = run_file(&root.join(file), &options);
        assert_eq!(
            report.passed(),
            *passes,
            "{file} --run {run:?} --ignore-unknown-fields={ignore_unknown_fields}:\n{report}"
        );
        let text = report.to_string();
        for name in *names {
            assert!(
                text.contains(name),
                "{file} does not name {name:?}:\n{text}"
            );
        }
    }
}

#[test]
fn query_offset_and_group_labels_apply_as_in_prometheus_3() {
    let rules = r#"
groups:
  - name: g
    query_offset: 1m
    labels: {team: t1, env: group}
    rules:
      - record: copy
        expr: x
        labels: {env: rule}
      - alert: Seen
        expr: x > 0
"#;
    let test = r#"
rule_files: [rules.yml]
tests:
  - interval: 1m
    input_series: [{series: x, values: "1+1x10"}]
    promql_expr_test:
      # Written at 4m from the data of 4m: the evaluation at 5m, one minute back.
      - expr: copy
        eval_time: 5m
        exp_samples: [{labels: 'copy{env="rule", team="t1"}', value: 5}]
      - expr: timestamp(copy)
        eval_time: 5m
        exp_samples: [{labels: '{env="rule", team="t1"}', value: 240}]
      # The alert dates from its first evaluation (0s), not from the data it read.
      - expr: ALERTS_FOR_STATE
        eval_time: 5m
        exp_samples: [{labels: 'ALERTS_FOR_STATE{alertname="Seen", env="group", team="t1"}', value: 60}]
    alert_rule_test:
      - eval_time: 5m
        alertname: Seen
        exp_alerts: [{exp_labels: {env: group, team: t1}}]
"#;
    assert_eq!(failures(rules, test), Vec::<String>::new());
}
