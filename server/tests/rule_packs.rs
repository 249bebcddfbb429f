//! The rule packs in `rules/` (see rules/README.md) against the real binary: every pack
//! passes `sightline rules check`, every SLO spec compiles with `sightline rules slo`, the
//! server loads them all and evaluates every rule without an error; every alert follows the
//! packs' conventions (severity, annotations, a runbook section that exists); and, where
//! Debian's `promtool` is on the PATH (CI installs it), `promtool check rules` accepts the
//! packs and the compiled SLOs and `promtool test rules` passes the packs' unit tests.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{PATIENCE, Server};
use serde_json::Value;
use sightline_alerting::rulefmt::{self, ParseOptions, RuleKind};

/// The repository's `rules/` folder.
fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules")
}

/// The files of `dir` whose names end in `suffix`, sorted (none is an error).
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no {suffix} files in {}", dir.display());
    out
}

fn sightline(args: &[&str], files: &[PathBuf]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(args)
        .args(files)
        .env_remove("SIGHTLINE_SERVER")
        .output()
        .expect("run sightline")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Each SLO spec compiled into `dir` as `<name>.rules.yml` (the names
/// rules/slo/tests/slo.test.yml expects).
fn compile_slos(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for spec in files(&rules_dir().join("slo"), ".yml") {
        let result = sightline(&["rules", "slo"], std::slice::from_ref(&spec));
        assert_success(&format!("sightline rules slo {}", spec.display()), &result);
        let stem = spec.file_stem().unwrap().to_string_lossy().into_owned();
        let file = dir.join(format!("{stem}.rules.yml"));
        std::fs::write(&file, &result.stdout).unwrap();
        out.push(file);
    }
    out
}

#[test]
fn every_pack_passes_sightline_rules_check() {
    let packs = files(&rules_dir(), ".yml");
    let out = sightline(&["rules", "check"], &packs);
    assert_success("sightline rules check rules/*.yml", &out);
    let stdout = text(&out.stdout);
    for pack in &packs {
        assert!(
            stdout.contains(&format!("Checking {}\n  SUCCESS", pack.display())),
            "{stdout}"
        );
    }
    let logql = files(&rules_dir().join("logql"), ".yml");
    assert!(!logql.is_empty());
    let out = sightline(&["rules", "check", "--logql"], &logql);
    assert_success("sightline rules check --logql rules/logql/*.yml", &out);
}

#[test]
fn every_slo_spec_compiles_into_rules_that_pass_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let compiled = compile_slos(dir.path());
    assert_eq!(
        compiled.len(),
        files(&rules_dir().join("slo"), ".yml").len()
    );
    let out = sightline(&["rules", "check"], &compiled);
    assert_success("sightline rules check (compiled SLOs)", &out);
}

/// The conventions of rules/README.md: every alert has `severity` critical, warning or
/// info, a summary, a description and a `runbook_url` of the form
/// `docs/runbooks/<file>.md#<alert name in lower case>`, and that runbook has a section
/// (`## <AlertName>`) for it.
#[test]
fn every_alert_has_a_severity_annotations_and_a_runbook_section() {
    let repo = rules_dir().join("..");
    let mut rule_files: Vec<(String, String)> = files(&rules_dir(), ".yml")
        .iter()
        .chain(&files(&rules_dir().join("logql"), ".yml"))
        .map(|f| (f.display().to_string(), std::fs::read_to_string(f).unwrap()))
        .collect();
    for spec in files(&rules_dir().join("slo"), ".yml") {
        let name = spec.display().to_string();
        let text = std::fs::read_to_string(&spec).unwrap();
        let compiled = sightline_alerting::slo::compile(&name, &text).unwrap();
        rule_files.push((name, compiled));
    }
    let mut alerts = 0;
    for (name, text) in &rule_files {
        let options = ParseOptions {
            logql: name.contains("/logql/"),
            ..ParseOptions::default()
        };
        let file = rulefmt::parse(name, text, options).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        for rule in file.groups.iter().flat_map(|g| &g.rules) {
            let RuleKind::Alert {
                name: alert,
                annotations,
                ..
            } = &rule.kind
            else {
                continue;
            };
            alerts += 1;
            let severity = rule.labels.get("severity").map(String::as_str);
            assert!(
                matches!(severity, Some("critical" | "warning" | "info")),
                "{name}: {alert}: severity {severity:?}"
            );
            for key in ["summary", "description", "runbook_url"] {
                assert!(
                    annotations.get(key).is_some_and(|v| !v.trim().is_empty()),
                    "{name}: {alert}: no {key}"
                );
            }
            let url = &annotations["runbook_url"];
            let (path, anchor) = url
                .split_once('#')
                .unwrap_or_else(|| panic!("{name}: {alert}: runbook_url {url} has no anchor"));
            assert!(
                path.starts_with("docs/runbooks/") && path.ends_with(".md"),
                "{name}: {alert}: runbook_url {url}"
            );
            assert_eq!(anchor, alert.to_lowercase(), "{name}: {alert}: {url}");
            let runbook = std::fs::read_to_string(repo.join(path))
                .unwrap_or_else(|e| panic!("{name}: {alert}: {path}: {e}"));
            assert!(
                runbook.lines().any(|l| l == format!("## {alert}")),
                "{path} has no section \"## {alert}\""
            );
        }
    }
    assert!(alerts > 40, "{alerts} alerts");
}

/// promtool, if it runs here; `None` (and a message) otherwise.
fn promtool() -> Option<&'static str> {
    let found = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("promtool is not on the PATH: skipping the promtool checks of rules/");
    }
    found.then_some("promtool")
}

fn run_promtool(promtool: &str, args: &[&str], files: &[PathBuf]) {
    let out = Command::new(promtool)
        .args(args)
        .args(files)
        .output()
        .unwrap();
    assert_success(&format!("promtool {}", args.join(" ")), &out);
}

#[test]
fn promtool_checks_the_packs_and_the_compiled_slos() {
    let Some(promtool) = promtool() else { return };
    run_promtool(promtool, &["check", "rules"], &files(&rules_dir(), ".yml"));
    let dir = tempfile::tempdir().unwrap();
    let compiled = compile_slos(dir.path());
    run_promtool(promtool, &["check", "rules"], &compiled);
}

#[test]
fn promtool_unit_tests_of_the_packs_pass() {
    let Some(promtool) = promtool() else { return };
    run_promtool(
        promtool,
        &["test", "rules"],
        &files(&rules_dir().join("tests"), ".test.yml"),
    );
    // The SLO test reads the compiled rules, next to a copy of itself.
    let dir = tempfile::tempdir().unwrap();
    compile_slos(dir.path());
    let test = dir.path().join("slo.test.yml");
    std::fs::copy(rules_dir().join("slo/tests/slo.test.yml"), &test).unwrap();
    run_promtool(promtool, &["test", "rules"], &[test]);
}

/// The server loads `rules/` and `rules/slo/` as `[alerting]` documents it, and every rule
/// evaluates without an error on Sightline's PromQL engine. The copies evaluate every second
/// (`interval: 1m` → `1s`) so that the test does not wait for the minute.
#[test]
fn the_server_loads_and_evaluates_every_pack() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    let slos = dir.path().join("slo");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::create_dir_all(&slos).unwrap();
    let mut expected_groups = 0;
    for pack in files(&rules_dir(), ".yml") {
        let text = std::fs::read_to_string(&pack).unwrap();
        expected_groups += text.matches("\n  - name: ").count();
        std::fs::write(
            rules.join(pack.file_name().unwrap()),
            text.replace("interval: 1m", "interval: 1s"),
        )
        .unwrap();
    }
    for spec in files(&rules_dir().join("slo"), ".yml") {
        expected_groups += std::fs::read_to_string(&spec)
            .unwrap()
            .matches("\n  - name: ")
            .count();
        std::fs::copy(&spec, slos.join(spec.file_name().unwrap())).unwrap();
    }
    // The unit tests live in subfolders, which the loader must leave alone (they are not
    // rule files).
    for (from, to) in [
        (rules_dir().join("tests"), rules.join("tests")),
        (rules_dir().join("slo/tests"), slos.join("tests")),
    ] {
        std::fs::create_dir_all(&to).unwrap();
        for test in files(&from, ".test.yml") {
            std::fs::copy(&test, to.join(test.file_name().unwrap())).unwrap();
        }
    }
    let config = dir.path().join("sightline.toml");
    std::fs::write(
        &config,
        format!(
            "[alerting]\nrule_files = [{:?}]\nslo_files = [{:?}]\nevaluation_interval = \"1s\"\n",
            rules.display().to_string(),
            slos.display().to_string()
        ),
    )
    .unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--self-scrape",
            "true",
        ],
    );

    let get = |path: &str| -> Value {
        server
            .client()
            .get(server.url(path))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let never = "0001-01-01T00:00:00Z";
    let deadline = Instant::now() + PATIENCE;
    let groups = loop {
        let v = get("/api/v1/rules");
        let groups = v["data"]["groups"].as_array().unwrap().clone();
        let evaluated = groups
            .iter()
            .all(|g| g["lastEvaluation"].as_str().is_some_and(|t| t != never));
        if evaluated {
            break groups;
        }
        assert!(Instant::now() < deadline, "not every group evaluated: {v}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(groups.len(), expected_groups, "{groups:?}");
    let mut rules_seen = 0;
    for g in &groups {
        for r in g["rules"].as_array().unwrap() {
            rules_seen += 1;
            assert_eq!(
                r["health"], "ok",
                "group {} rule {}: {}",
                g["name"], r["name"], r["lastError"]
            );
        }
    }
    assert!(rules_seen > 50, "{rules_seen} rules");

    // The watchdog proves the path from the rule files to a firing alert.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let v = get("/api/v1/alerts");
        let firing = v["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["labels"]["alertname"] == "SightlineWatchdog" && a["state"] == "firing");
        if firing {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SightlineWatchdog never fired: {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(server.terminate(), Some(0));
}

/// A fresh server loads the packs built into the binary (`[alerting] rule_packs`, on by
/// default): every group of `rules/*.yml` is there, named `builtin:rules/…`.
#[test]
fn a_fresh_server_loads_the_built_in_packs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("data"), &["--rule-packs", "true"]);
    let v: Value = server
        .client()
        .get(server.url("/api/v1/rules"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let files: std::collections::BTreeSet<String> = v["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["file"].as_str().unwrap().to_owned())
        .collect();
    let mut expected: std::collections::BTreeSet<String> = files_in_rules_dir()
        .into_iter()
        .map(|name| format!("builtin:rules/{name}"))
        .collect();
    expected.insert("builtin:rules/logql/logs.yml".to_owned());
    assert_eq!(files, expected);
}

/// The `*.yml` files of the repository's `rules/`, by name.
fn files_in_rules_dir() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yml"))
        .collect();
    names.sort();
    names
}
