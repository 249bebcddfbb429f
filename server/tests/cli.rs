//! The command-line clients against the real binary: output into closed pipes, connection
//! errors, time forms, RFC 3339 times and empty results.

mod common;

use std::process::{Command, Output, Stdio};

use common::{Server, loki_push_json, now_ns};
use serde_json::json;

fn sightline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(args)
        .env_remove("SIGHTLINE_SERVER")
        .output()
        .expect("run sightline")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Regression: `sightline config check FILE | head -3` panicked on the broken pipe.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[indexer]\ncommit_interval = \"1s\"\n").unwrap();
    // The reading end is closed before the command writes: its first write fails.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["config", "check"])
        .arg(&file)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{:?} {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

/// Regression: a connection error printed the HTTP library's whole error chain.
#[test]
fn unreachable_server_is_named_with_a_short_cause() {
    // Port 1 on loopback: nothing listens there.
    let out = sightline(&[
        "logs",
        "query",
        "{a=\"b\"}",
        "--server",
        "http://127.0.0.1:1",
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: cannot reach the server at http://127.0.0.1:1: "),
        "{stderr}"
    );
    assert!(!stderr.contains("error sending request"), "{stderr}");
}

/// Regression: metric times printed as raw floats, `--since` and `--start` took different
/// forms, and an empty result printed nothing at all.
#[test]
fn logs_and_metrics_share_time_forms_and_print_rfc3339() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let url = server.url("");
    let now = now_ns();
    let (status, body) = loki_push_json(
        &server,
        "default",
        &json!({"streams": [{"stream": {"service_name": "cli"},
            "values": [[(now - 5_000_000_000).to_string(), "hello from the cli test"]]}]}),
    );
    assert_eq!(status, 204, "{body}");
    server.wait_for_count("default", r#"{service_name="cli"}"#, 1);

    let an_hour_ago = chrono::DateTime::from_timestamp_nanos(now - 3_600_000_000_000)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for since in [
        "1h",
        an_hour_ago.as_str(),
        &((now / 1_000_000_000) - 3600).to_string(),
    ] {
        let out = sightline(&[
            "logs",
            "query",
            r#"{service_name="cli"}"#,
            "--since",
            since,
            "--server",
            &url,
        ]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{since}: {}", text(&out.stderr));
        assert!(
            stdout.contains("hello from the cli test"),
            "{since}: {stdout}"
        );
        // `2025-01-31T12:00:00.123Z …`
        assert!(stdout.split(' ').next().unwrap().ends_with('Z'), "{stdout}");
    }

    for start in ["10m", an_hour_ago.as_str()] {
        let out = sightline(&[
            "metrics",
            "query",
            "vector(1)",
            "--start",
            start,
            "--step",
            "5m",
            "--server",
            &url,
        ]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{start}: {}", text(&out.stderr));
        let point = stdout.lines().nth(1).expect("a point").trim();
        let time = point.split(' ').next().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(time).is_ok(),
            "{start}: {stdout}"
        );
    }

    let out = sightline(&["metrics", "query", "no_such_metric", "--server", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert_eq!(text(&out.stderr).trim(), "no results");
    let out = sightline(&[
        "logs",
        "query",
        r#"{service_name="nobody"}"#,
        "--server",
        &url,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr).trim(), "no results");
}

/// `rules check` accepts a good rule file and refuses a bad one with file, line, group and
/// rule, exit 1; `topology check` names file, line and entity.
#[test]
fn rule_files_and_inventories_are_checked_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        "groups:\n  - name: g\n    rules:\n      - alert: Down\n        expr: up == 0\n        for: 5m\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: rate(x)\n",
    )
    .unwrap();
    let out = sightline(&["rules", "check", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("SUCCESS: 1 rules found"));
    let out = sightline(&[
        "rules",
        "check",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "{}:4: group \"g\", rule 1, \"r\": could not parse expression:",
            bad.display()
        )),
        "{stdout}"
    );
    let inventory = dir.path().join("inventory.toml");
    std::fs::write(&inventory, "[[entity]]\nkind = \"servce\"\nname = \"x\"\n").unwrap();
    let out = sightline(&["topology", "check", inventory.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).starts_with(&format!(
            "{}:1: error: x: unknown entity kind \"servce\"",
            inventory.display()
        )),
        "{}",
        text(&out.stdout)
    );
}

/// `rules slo` compiles an SLO spec into a rule file that `rules check` accepts.
#[test]
fn slo_specs_compile_into_rules_that_check() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("slo.yml");
    std::fs::write(
        &spec,
        "slos:\n  - name: api\n    objective: 99.5\n    window: 28d\n    sli:\n      good: sum(rate(ok_total[{{window}}]))\n      total: sum(rate(all_total[{{window}}]))\n",
    )
    .unwrap();
    let out = sightline(&["rules", "slo", spec.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rules = dir.path().join("slo.rules.yml");
    std::fs::write(&rules, &out.stdout).unwrap();
    let check = sightline(&["rules", "check", rules.to_str().unwrap()]);
    assert!(check.status.success(), "{}", text(&check.stdout));
    assert!(text(&check.stdout).contains("SUCCESS: 11 rules found"));
}

/// The shared alerting conformance data, if this machine has it.
fn alerting_dataset() -> Option<std::path::PathBuf> {
    let relative =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/alerting");
    [
        relative,
        std::path::PathBuf::from("/work/shared/datasets/alerting"),
    ]
    .into_iter()
    .find(|p| p.join("MANIFEST.md").is_file())
}

/// `rules test` gives every unit-test file of `MANIFEST.md` the exit status upstream's own
/// tests expect, with `--run` and `--ignore-unknown-fields` where they change it, and
/// prints promtool's report.
#[test]
fn rule_unit_tests_exit_as_upstream_expects() {
    let Some(root) = alerting_dataset() else {
        eprintln!("no shared/datasets/alerting: skipped");
        return;
    };
    let testdata = "prometheus/cmd/promtool/testdata";
    let cases: &[(&str, &[&str], i32)] = &[
        ("unittest.yml", &[], 0),
        ("long-period.yml", &[], 0),
        ("rules_run.yml", &[], 1),
        ("rules_run.yml", &["--run", "correct"], 0),
        ("rules_run.yml", &["--run", "wrong"], 1),
        ("at-modifier-test.yml", &[], 0),
        ("bad-rules-syntax-test.yml", &[], 1),
        ("rules_run_extrafields.yml", &[], 1),
        ("rules_run_extrafields.yml", &["--ignore-unknown-fields"], 0),
        ("bad-input-series.yml", &[], 1),
        ("bad-promql.yml", &[], 1),
        ("no-test-group-interval.yml", &[], 0),
        ("rules_run_fuzzy.yml", &[], 1),
        ("rules_run_fuzzy.yml", &["--run", "correct"], 0),
        ("rules_run_fuzzy.yml", &["--run", "wrong"], 1),
        (
            "../../../../derived/prometheus-docs/unit_testing_rules.test.yml",
            &[],
            0,
        ),
    ];
    let manifest = std::fs::read_to_string(root.join("MANIFEST.md")).unwrap();
    for line in manifest.lines().filter(|l| l.contains("| unit test")) {
        let file = line.split('`').nth(1).unwrap_or_default();
        let name = file.rsplit('/').next().unwrap_or_default();
        assert!(
            cases.iter().any(|(f, ..)| f.ends_with(name)),
            "{file} is listed in MANIFEST.md but not run here"
        );
    }
    for (file, flags, code) in cases {
        let path = root.join(testdata).join(file);
        let mut args = vec!["rules", "test"];
        args.extend_from_slice(flags);
        args.push(path.to_str().unwrap());
        let out = sightline(&args);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(*code),
            "{file} {flags:?}:\n{stdout}"
        );
        assert!(
            stdout.starts_with(&format!("Unit Testing:  {}\n", path.display())),
            "{stdout}"
        );
        let outcome = if *code == 0 {
            "  SUCCESS\n"
        } else {
            "  FAILED:\n"
        };
        assert!(stdout.contains(outcome), "{file} {flags:?}:\n{stdout}");
    }
    // A failing file names the expression promtool names, and several files are reported
    // in order.
    let run = root.join(testdata).join("rules_run.yml");
    let ok = root.join(testdata).join("unittest.yml");
    let out = sightline(&["rules", "test", ok.to_str().unwrap(), run.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.ends_with(&format!(
            "Unit Testing:  {}\n  FAILED:\n    expr: \"test\", time: 0s,\n        exp: {{__name__=\"test\"}} 1E+00\n        got: {{__name__=\"test\"}} 0E+00\n\n\n",
            run.display()
        )),
        "{stdout}"
    );
    let out = sightline(&["rules", "test", "--run", "(", run.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("invalid --run pattern"));
}
