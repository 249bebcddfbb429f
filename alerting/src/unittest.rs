//! Rule unit tests in the format of `promtool test rules`, with promtool's semantics and
//! messages.
//!
//! A test file names rule files (relative to itself, globs allowed), an
//! `evaluation_interval` (1m by default) and test groups. Each test group loads its
//! `input_series` (Prometheus's expanding series notation, native histograms included, one
//! sample every `interval`, which defaults to the evaluation interval) and evaluates every
//! rule group at every evaluation interval from its start up to the latest `eval_time` of its
//! tests, input samples becoming visible as time reaches them and each rule's output (recorded
//! series, `ALERTS`, `ALERTS_FOR_STATE`, staleness markers for series that went away) stored
//! before the next rule runs, as promtool's storage does. Then:
//!
//! * `alert_rule_test` compares, after the evaluation at or just before `eval_time`, the
//!   *firing* alerts of the named alerting rules (every group's rules of that name) with
//!   `exp_alerts`: labels (the series' labels, the rule's expanded labels and `alertname`)
//!   and expanded annotations, exactly;
//! * `promql_expr_test` queries the resulting data at `eval_time` and compares the samples
//!   with `exp_samples` (labels, and `value` or a native `histogram`), exactly or, with the
//!   file's `fuzzy_compare`, ignoring a difference in the last bit of the mantissa.
//!
//! A rule that fails to evaluate ends its test group at that evaluation. Failures are worded
//! as promtool words them, so a failing file names the same alert or expression.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use regex::Regex;
use serde::{Deserialize, Deserializer};
use sightline_model::{LabelMatcher, Labels, MetricSeries, Sample, StoreError, stale_nan};
use sightline_promql::series_notation::{
    SeqValue, parse_metric, parse_series_desc, set_counter_reset_hints, stored_counter_reset_hint,
};
use sightline_promql::{
    Engine, EngineOptions, FloatHistogram, HistogramSample, HistogramSeries, InstantValue,
    MemorySource, SeriesSource, labels_string,
};

use crate::eval::{AlertState, EvalContext, RuleState};
use crate::rulefmt::{self, ParseOptions, RuleKind};
use crate::template::{PrometheusFuncsConfig, QuerySample, format_duration, prometheus_funcs};

/// The evaluation interval when the file gives none.
const DEFAULT_EVALUATION_INTERVAL_MS: i64 = 60_000;

/// How test files are run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Runs only the test groups whose name this matches (promtool's `--run`).
    pub run: Option<Regex>,
    /// Accepts fields the rule-file format does not know (promtool's
    /// `--ignore-unknown-fields`); the test file itself is always read strictly, as
    /// promtool reads it.
    pub ignore_unknown_fields: bool,
}

impl Options {
    /// Options selecting the test groups any of `run` matches (none: every group), as
    /// promtool joins its `--run` flags.
    pub fn new(run: &[String], ignore_unknown_fields: bool) -> Result<Self, regex::Error> {
        let run = if run.is_empty() {
            None
        } else {
            Some(Regex::new(&run.join("|"))?)
        };
        Ok(Options {
            run,
            ignore_unknown_fields,
        })
    }
}

/// The outcome of one test file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The file as named on the command line.
    pub file: String,
    /// Notes printed before the outcome (rule-file patterns that match nothing).
    pub warnings: Vec<String>,
    /// Each failure as promtool prints it; none when the file passed.
    pub failures: Vec<String>,
}

impl FileReport {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

impl fmt::Display for FileReport {
    /// The report as promtool prints it: `Unit Testing:  FILE`, then `  SUCCESS` or
    /// `  FAILED:` and each failure followed by an empty line, then an empty line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Unit Testing:  {}", self.file)?;
        for w in &self.warnings {
            writeln!(f, "  WARNING: {w}")?;
        }
        if self.failures.is_empty() {
            writeln!(f, "  SUCCESS")?;
        } else {
            writeln!(f, "  FAILED:")?;
            for e in &self.failures {
                writeln!(f, "{e}\n")?;
            }
        }
        writeln!(f)
    }
}

/// Runs the test file at `path`.
pub fn run_file(path: &Path, options: &Options) -> FileReport {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => run(
            &file,
            &text,
            path.parent().unwrap_or(Path::new("")),
            options,
        ),
        Err(e) => FileReport {
            file: file.clone(),
            warnings: Vec::new(),
            failures: vec![format!("open {file}: {e}")],
        },
    }
}

/// Runs the test file `text`, named `file` in the report, whose rule files are relative to
/// `base_dir`.
pub fn run(file: &str, text: &str, base_dir: &Path, options: &Options) -> FileReport {
    let mut report = FileReport {
        file: file.to_string(),
        warnings: Vec::new(),
        failures: Vec::new(),
    };
    let parsed = match parse_test_file(text) {
        Ok(p) => p,
        Err(e) => {
            report.failures.push(e);
            return report;
        }
    };
    let rule_files = match resolve_rule_files(base_dir, &parsed.rule_files, &mut report.warnings) {
        Ok(files) => files,
        Err(e) => {
            report.failures.push(e);
            return report;
        }
    };
    let eval_interval = parsed
        .evaluation_interval
        .map(|d| d.0)
        .filter(|d| *d > 0)
        .unwrap_or(DEFAULT_EVALUATION_INTERVAL_MS);
    let mut group_order: HashMap<String, usize> = HashMap::new();
    for (i, name) in parsed.group_eval_order.iter().enumerate() {
        if group_order.insert(name.0.clone(), i).is_some() {
            report.failures.push(format!(
                "group name repeated in evaluation order: {}",
                name.0
            ));
            return report;
        }
    }
    let setup = Setup {
        rule_files,
        eval_interval,
        group_order,
        fuzzy: parsed.fuzzy_compare,
        ignore_unknown_fields: options.ignore_unknown_fields,
    };
    for group in &parsed.tests {
        let name = group.name.as_ref().map_or("", |n| n.0.as_str());
        if options.run.as_ref().is_some_and(|re| !re.is_match(name)) {
            continue;
        }
        report.failures.extend(setup.run_group(group));
    }
    report
}

// ---------------------------------------------------------------------------------------
// The file format.

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default, deserialize_with = "nullable")]
    rule_files: Vec<Text>,
    #[serde(default)]
    evaluation_interval: Option<Dur>,
    #[serde(default, deserialize_with = "nullable")]
    group_eval_order: Vec<Text>,
    #[serde(default, deserialize_with = "nullable")]
    tests: Vec<TestGroup>,
    #[serde(default, deserialize_with = "nullable")]
    fuzzy_compare: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    interval: Option<Dur>,
    #[serde(default, deserialize_with = "nullable")]
    input_series: Vec<InputSeries>,
    #[serde(default, deserialize_with = "nullable")]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default, deserialize_with = "nullable")]
    promql_expr_test: Vec<PromqlTest>,
    #[serde(default, deserialize_with = "nullable")]
    external_labels: BTreeMap<String, Text>,
    #[serde(default)]
    external_url: Option<Text>,
    #[serde(default)]
    name: Option<Text>,
    #[serde(default)]
    start_timestamp: Option<StartTimestamp>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    #[serde(default, deserialize_with = "nullable")]
    series: Text,
    #[serde(default, deserialize_with = "nullable")]
    values: Text,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    #[serde(default, deserialize_with = "nullable")]
    eval_time: Dur,
    #[serde(default, deserialize_with = "nullable")]
    alertname: Text,
    #[serde(default, deserialize_with = "nullable")]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default, deserialize_with = "nullable")]
    exp_labels: BTreeMap<String, Text>,
    #[serde(default, deserialize_with = "nullable")]
    exp_annotations: BTreeMap<String, Text>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PromqlTest {
    #[serde(default, deserialize_with = "nullable")]
    expr: Text,
    #[serde(default, deserialize_with = "nullable")]
    eval_time: Dur,
    #[serde(default, deserialize_with = "nullable")]
    exp_samples: Vec<ExpSample>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default, deserialize_with = "nullable")]
    labels: Text,
    #[serde(default, deserialize_with = "nullable")]
    value: f64,
    /// A native histogram in series notation; when set, `value` is not compared.
    #[serde(default, deserialize_with = "nullable")]
    histogram: Text,
}

/// `null` (a key with nothing after it) as the type's default, as Go's YAML reads it.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A YAML scalar read as text, as Go's YAML fills a string from `1` or `true` too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration in milliseconds, written as Prometheus writes durations (`1m`, `1h30m`,
/// `2m59s999ms`, `100d`, `0`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Dur(i64);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Text::deserialize(d)?;
        parse_model_duration(&text.0)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Dur {
    /// As Prometheus's `model.Duration` prints: `1d`, `5m`, `2m59s999ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        let mut out = String::new();
        // Years and weeks only when exact: `90d` reads better than `12w6d`.
        for (unit, mult, exact) in [
            ("y", 31_536_000_000, true),
            ("w", 604_800_000, true),
            ("d", 86_400_000, false),
            ("h", 3_600_000, false),
            ("m", 60_000, false),
            ("s", 1_000, false),
            ("ms", 1, false),
        ] {
            if exact && ms % mult != 0 {
                continue;
            }
            let n = ms / mult;
            if n > 0 {
                out.push_str(&format!("{n}{unit}"));
                ms -= n * mult;
            }
        }
        f.write_str(&out)
    }
}

/// Prometheus's `model.ParseDuration`: units in decreasing order, each at most once, and
/// nothing a Go `time.Duration` cannot hold.
fn parse_model_duration(s: &str) -> Result<i64, String> {
    let invalid = || format!("not a valid duration string: {s:?}");
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 31_536_000_000),
        ("w", 604_800_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let mut rest = s;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        if digits == 0 {
            return Err(invalid());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let pos = UNITS[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(invalid)?
            + next_unit;
        next_unit = pos + 1;
        total = n
            .checked_mul(UNITS[pos].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(invalid)?;
    }
    // A Go `time.Duration` counts nanoseconds in an int64.
    if total > i64::MAX / 1_000_000 {
        return Err("duration out of range".into());
    }
    Ok(total)
}

/// A test group's `start_timestamp`: Unix seconds (fractions allowed), or an RFC 3339 time.
#[derive(Debug, Clone, Copy)]
struct StartTimestamp(i64);

impl<'de> Deserialize<'de> for StartTimestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Text::deserialize(d)?.0;
        let ms = if let Ok(secs) = text.parse::<i64>() {
            secs.checked_mul(1000)
        } else if let Ok(secs) = text.parse::<f64>() {
            let ms = (secs * 1000.0).round();
            (ms.is_finite() && ms.abs() < 9.2e15).then_some(ms as i64)
        } else if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&text) {
            Some(t.timestamp_millis())
        } else {
            None
        };
        ms.map(StartTimestamp).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid start_timestamp {text:?}: expected Unix seconds or an RFC 3339 time"
            ))
        })
    }
}

fn parse_test_file(text: &str) -> Result<TestFile, String> {
    // An empty file (or one of comments only) is an empty test file, as Go reads it.
    if matches!(
        serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text),
        Ok(serde_yaml_ng::Value::Null)
    ) {
        return Ok(TestFile::default());
    }
    serde_yaml_ng::from_str(text).map_err(|e| e.to_string())
}

/// The rule files: relative ones joined to the test file's folder, globs expanded (a
/// pattern that matches nothing is a warning, as in promtool).
fn resolve_rule_files(
    base_dir: &Path,
    patterns: &[Text],
    warnings: &mut Vec<String>,
) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in patterns {
        let path = if p.0.is_empty() || Path::new(&p.0).is_absolute() {
            PathBuf::from(&p.0)
        } else {
            base_dir.join(&p.0)
        };
        let pattern = path.to_string_lossy().into_owned();
        let matches: Vec<PathBuf> = glob::glob(&pattern)
            .map_err(|e| format!("{pattern}: {e}"))?
            .filter_map(Result::ok)
            .collect();
        if matches.is_empty() {
            warnings.push(format!("no file match pattern {pattern}"));
        }
        out.extend(matches);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Running a test group.

/// What every test group of a file shares.
struct Setup {
    rule_files: Vec<PathBuf>,
    eval_interval: i64,
    group_order: HashMap<String, usize>,
    fuzzy: bool,
    ignore_unknown_fields: bool,
}

/// A rule group as the test runs it.
struct Group {
    offset: i64,
    limit: usize,
    rules: Vec<RunRule>,
}

struct RunRule {
    state: RuleState,
    /// The series the last evaluation produced, to mark stale those the next one does not.
    previous: HashSet<Labels>,
}

/// One input series: its samples in time order, fed to the storage as time reaches them.
struct Input {
    labels: Labels,
    floats: Vec<Sample>,
    hists: Vec<HistogramSample>,
    next_float: usize,
    next_hist: usize,
}

/// The test group's storage: shared with the `query` template function, and read through
/// short locks so that queries inside a rule's evaluation can read it too.
#[derive(Clone, Default)]
struct Storage(Arc<RwLock<MemorySource>>);

impl Storage {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, MemorySource> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl SeriesSource for Storage {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<MetricSeries>, StoreError> {
        let source = self.0.read().unwrap_or_else(|p| p.into_inner());
        source.select(matchers, mint, maxt)
    }

    fn select_histograms(
        &self,
        matchers: &[LabelMatcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<HistogramSeries>, StoreError> {
        let source = self.0.read().unwrap_or_else(|p| p.into_inner());
        source.select_histograms(matchers, mint, maxt)
    }
}

/// One sample of a query result or expectation, as promtool compares them.
#[derive(Debug, Clone)]
struct ParsedSample {
    labels: Labels,
    value: f64,
    /// The histogram's test expression, empty for a float.
    histogram: String,
}

impl fmt::Display for ParsedSample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.histogram.is_empty() {
            write!(
                f,
                "{} {}",
                labels_string(&self.labels),
                go_float_e(self.value)
            )
        } else {
            write!(f, "{} {}", labels_string(&self.labels), self.histogram)
        }
    }
}

impl Setup {
    /// Runs one test group; returns its failures.
    fn run_group(&self, tg: &TestGroup) -> Vec<String> {
        let interval = tg
            .interval
            .map(|d| d.0)
            .filter(|d| *d > 0)
            .unwrap_or(self.eval_interval);
        let start = tg.start_timestamp.map_or(0, |s| s.0);
        let mut inputs = match load_inputs(&tg.input_series, start, interval) {
            Ok(i) => i,
            Err(e) => return vec![e],
        };
        let external_labels: BTreeMap<String, String> = tg
            .external_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect();
        let external_url = tg.external_url.as_ref().map_or("", |u| u.0.as_str());
        let mut groups = match self.load_groups() {
            Ok(g) => g,
            Err(e) => return e,
        };
        let group_name = tg.name.as_ref().map_or("", |n| n.0.as_str());

        // Alert tests by evaluation time; each is checked after the evaluation at or just
        // before its time.
        let mut alert_tests: BTreeMap<Dur, Vec<&AlertTest>> = BTreeMap::new();
        for at in &tg.alert_rule_test {
            if at.alertname.0.is_empty() {
                let in_group = if group_name.is_empty() {
                    String::new()
                } else {
                    format!(" (in TestGroup {group_name})")
                };
                return vec![format!(
                    "an item under alert_rule_test misses required attribute alertname at eval_time {}{in_group}",
                    at.eval_time
                )];
            }
            alert_tests.entry(at.eval_time).or_default().push(at);
        }
        let max_eval = tg
            .alert_rule_test
            .iter()
            .map(|a| a.eval_time.0)
            .chain(tg.promql_expr_test.iter().map(|p| p.eval_time.0))
            .max()
            .unwrap_or(0);

        let engine = Arc::new(Engine::new(EngineOptions {
            default_subquery_step_ms: self.eval_interval,
            ..EngineOptions::default()
        }));
        let storage = Storage::default();
        let mut last_histogram: HashMap<Labels, FloatHistogram> = HashMap::new();
        let mut errors = Vec::new();
        let mut pending_alerts = alert_tests.iter().peekable();
        let mut rel = 0i64;
        while rel <= max_eval {
            let ts = start.saturating_add(rel);
            feed_inputs(&storage, &mut inputs, ts);
            let funcs = prometheus_funcs(PrometheusFuncsConfig {
                query: Some(Arc::new(template_query(
                    engine.clone(),
                    storage.clone(),
                    ts,
                ))),
                external_url: external_url.to_string(),
                path_prefix: url_path(external_url),
                now: ts as f64 / 1000.0,
            });
            let mut eval_errors = Vec::new();
            for g in &mut groups {
                for r in &mut g.rules {
                    let ctx = EvalContext {
                        engine: &engine,
                        source: &storage,
                        query: None,
                        funcs: &funcs,
                        external_labels: &external_labels,
                        external_url,
                    };
                    let t = ts.saturating_sub(g.offset);
                    match r.state.eval(t, g.limit, &ctx) {
                        Ok(out) => {
                            let mut current = HashSet::new();
                            let mut source = storage.write();
                            for (labels, mut v) in out.samples {
                                // Prometheus queries `query_offset` earlier but dates the
                                // alert from the evaluation itself.
                                if labels.get("__name__") == Some("ALERTS_FOR_STATE") {
                                    v += (g.offset / 1000) as f64;
                                }
                                last_histogram.remove(&labels);
                                source.add(labels.clone(), vec![Sample { t, v }]);
                                current.insert(labels);
                            }
                            for (labels, mut h) in out.histograms {
                                h.counter_reset_hint =
                                    stored_counter_reset_hint(last_histogram.get(&labels), &h);
                                last_histogram.insert(labels.clone(), h.clone());
                                source
                                    .add_histograms(labels.clone(), vec![HistogramSample { t, h }]);
                                current.insert(labels);
                            }
                            for gone in r.previous.difference(&current) {
                                last_histogram.remove(gone);
                                source.add(gone.clone(), vec![Sample { t, v: stale_nan() }]);
                            }
                            r.previous = current;
                        }
                        Err(e) => eval_errors.push(format!(
                            "    rule: {}, time: {}, err: {e}",
                            r.state.rule.name(),
                            format_duration(ts.saturating_mul(1_000_000))
                        )),
                    }
                }
            }
            if !eval_errors.is_empty() {
                errors.extend(eval_errors);
                return errors;
            }
            while let Some((at, tests)) =
                pending_alerts.next_if(|(at, _)| at.0 >= rel && at.0 < rel + self.eval_interval)
            {
                let names: HashSet<&str> = tests.iter().map(|t| t.alertname.0.as_str()).collect();
                let got = firing_alerts(&groups, &names);
                for test in tests {
                    errors.extend(check_alerts(test, *at, &got, group_name));
                }
            }
            rel = match rel.checked_add(self.eval_interval) {
                Some(r) => r,
                None => break,
            };
        }

        for pt in &tg.promql_expr_test {
            if let Some(e) = self.check_expr(pt, &engine, &storage, start) {
                errors.push(e);
            }
        }
        errors
    }

    /// Loads every rule group of the rule files, in evaluation order: `group_eval_order`'s
    /// groups by their place there, the others (placed first) in file order.
    fn load_groups(&self) -> Result<Vec<Group>, Vec<String>> {
        let mut loaded = Vec::new();
        for path in &self.rule_files {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| vec![format!("{name}: {e}")])?;
            let parsed = rulefmt::parse(
                &name,
                &text,
                ParseOptions {
                    ignore_unknown_fields: self.ignore_unknown_fields,
                    ..ParseOptions::default()
                },
            )
            .map_err(|errs| errs.iter().map(ToString::to_string).collect::<Vec<_>>())?;
            loaded.extend(parsed.groups);
        }
        // A stable sort: promtool leaves groups it is not told about in no set order.
        loaded.sort_by_key(|g| self.group_order.get(&g.name).copied().unwrap_or(0));
        Ok(loaded
            .into_iter()
            .map(|g| Group {
                offset: g
                    .query_offset
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
                limit: g.limit,
                rules: g
                    .rules
                    .into_iter()
                    .map(|mut rule| {
                        // Group labels (Prometheus 3), overridden by the rule's own.
                        for (k, v) in &g.labels {
                            rule.labels.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                        RunRule {
                            state: RuleState::new(rule),
                            previous: HashSet::new(),
                        }
                    })
                    .collect(),
            })
            .collect())
    }

    /// Runs one `promql_expr_test`; returns its failure.
    fn check_expr(
        &self,
        pt: &PromqlTest,
        engine: &Engine,
        storage: &Storage,
        start: i64,
    ) -> Option<String> {
        let expr = &pt.expr.0;
        let fail = |e: String| {
            Some(format!(
                "    expr: {}, time: {}, err: {e}",
                crate::template::quote(expr),
                pt.eval_time
            ))
        };
        let t = start.saturating_add(pt.eval_time.0);
        let mut got: Vec<ParsedSample> = match engine.instant_query_value(storage, expr, t) {
            Ok(InstantValue::Vector(v)) => v
                .into_iter()
                .map(|s| ParsedSample {
                    labels: s.labels,
                    value: s.v,
                    histogram: s.h.map(|h| h.test_expression()).unwrap_or_default(),
                })
                .collect(),
            Ok(InstantValue::Scalar(v)) => vec![ParsedSample {
                labels: Labels::default(),
                value: v,
                histogram: String::new(),
            }],
            Ok(_) => return fail("rule result is not a vector or scalar".into()),
            Err(e) => return fail(e.to_string()),
        };
        let mut exp = Vec::new();
        for s in &pt.exp_samples {
            let parsed = parse_metric(&s.labels.0).and_then(|labels| {
                let histogram = if s.histogram.0.is_empty() {
                    String::new()
                } else {
                    expected_histogram(&s.histogram.0)?
                };
                Ok(ParsedSample {
                    labels,
                    value: s.value,
                    histogram,
                })
            });
            match parsed {
                Ok(p) => exp.push(p),
                Err(e) => {
                    return fail(format!(
                        "labels {}: {e}",
                        crate::template::quote(&s.labels.0)
                    ));
                }
            }
        }
        exp.sort_by(|a, b| a.labels.cmp(&b.labels));
        got.sort_by(|a, b| a.labels.cmp(&b.labels));
        let same = exp.len() == got.len()
            && exp.iter().zip(&got).all(|(e, g)| {
                e.labels == g.labels
                    && e.histogram == g.histogram
                    && (!e.histogram.is_empty() || floats_equal(e.value, g.value, self.fuzzy))
            });
        if same {
            return None;
        }
        let list = |v: &[ParsedSample]| {
            if v.is_empty() {
                "nil".to_string()
            } else {
                v.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        Some(format!(
            "    expr: {}, time: {},\n        exp: {}\n        got: {}",
            crate::template::quote(expr),
            pt.eval_time,
            list(&exp),
            list(&got)
        ))
    }
}

/// Parses the input series, their samples from `start` every `interval`; a series given
/// twice keeps its last values, as promtool's loader does.
fn load_inputs(series: &[InputSeries], start: i64, interval: i64) -> Result<Vec<Input>, String> {
    let mut by_labels: BTreeMap<Labels, Vec<SeqValue>> = BTreeMap::new();
    for s in series {
        let line = format!("{} {}", s.series.0, s.values.0);
        let (labels, values) = parse_series_desc(line.trim())
            .map_err(|e| format!("input series {}: {e}", crate::template::quote(&line)))?;
        by_labels.insert(labels, values);
    }
    let mut inputs = Vec::new();
    for (labels, values) in by_labels {
        let mut floats = Vec::new();
        let mut hists = Vec::new();
        for (k, v) in values.into_iter().enumerate() {
            let t = (k as i64)
                .checked_mul(interval)
                .and_then(|o| start.checked_add(o))
                .ok_or_else(|| format!("input series {labels:?}: sample times overflow"))?;
            match v {
                SeqValue::Float(v) => floats.push(Sample { t, v }),
                SeqValue::Histogram(h, _) => hists.push(HistogramSample { t, h: *h }),
                SeqValue::Omitted => {}
            }
        }
        let float_times: Vec<i64> = floats.iter().map(|s| s.t).collect();
        set_counter_reset_hints(&float_times, &mut hists);
        inputs.push(Input {
            labels,
            floats,
            hists,
            next_float: 0,
            next_hist: 0,
        });
    }
    Ok(inputs)
}

/// Stores the input samples up to `ts` not stored yet.
fn feed_inputs(storage: &Storage, inputs: &mut [Input], ts: i64) {
    let mut source = storage.write();
    for input in inputs {
        let floats = &input.floats[input.next_float..];
        let n = floats.partition_point(|s| s.t <= ts);
        if n > 0 {
            source.add(input.labels.clone(), floats[..n].to_vec());
            input.next_float += n;
        }
        let hists = &input.hists[input.next_hist..];
        let n = hists.partition_point(|s| s.t <= ts);
        if n > 0 {
            source.add_histograms(input.labels.clone(), hists[..n].to_vec());
            input.next_hist += n;
        }
    }
}

/// The `query` template function: an instant query of the test's data at `ts`.
fn template_query(
    engine: Arc<Engine>,
    storage: Storage,
    ts: i64,
) -> impl Fn(&str) -> Result<Vec<QuerySample>, String> + Send + Sync {
    move |q: &str| {
        let value = engine
            .instant_query_value(&storage, q, ts)
            .map_err(|e| e.to_string())?;
        let sample = |labels: &Labels, value: f64| QuerySample {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        };
        match value {
            InstantValue::Vector(v) => Ok(v.iter().map(|s| sample(&s.labels, s.v)).collect()),
            InstantValue::Scalar(v) => Ok(vec![sample(&Labels::default(), v)]),
            _ => Err("rule result is not a vector or scalar".into()),
        }
    }
}

/// The path of an external URL (the `pathPrefix` template function).
fn url_path(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    after_scheme
        .find('/')
        .map(|i| after_scheme[i..].to_string())
        .unwrap_or_default()
}

/// An alert as promtool compares it: labels and annotations.
type LabelsAndAnnotations = (BTreeMap<String, String>, BTreeMap<String, String>);

/// The firing alerts of every alerting rule named in `names`, by name (one name may be
/// used by rules of several groups).
fn firing_alerts(
    groups: &[Group],
    names: &HashSet<&str>,
) -> HashMap<String, Vec<LabelsAndAnnotations>> {
    let mut got: HashMap<String, Vec<LabelsAndAnnotations>> = HashMap::new();
    for r in groups.iter().flat_map(|g| &g.rules) {
        let RuleKind::Alert { name, .. } = &r.state.rule.kind else {
            continue;
        };
        if !names.contains(name.as_str()) {
            continue;
        }
        got.entry(name.clone()).or_default().extend(
            r.state
                .alerts
                .values()
                .filter(|a| a.state == AlertState::Firing)
                .map(|a| (a.labels.clone(), a.annotations.clone())),
        );
    }
    got
}

/// Compares one `alert_rule_test` with the firing alerts; returns its failure.
fn check_alerts(
    test: &AlertTest,
    at: Dur,
    got: &HashMap<String, Vec<LabelsAndAnnotations>>,
    group_name: &str,
) -> Option<String> {
    let name = &test.alertname.0;
    let mut got: Vec<LabelsAndAnnotations> = got.get(name).cloned().unwrap_or_default();
    let mut exp: Vec<LabelsAndAnnotations> = test
        .exp_alerts
        .iter()
        .map(|a| {
            let mut labels: BTreeMap<String, String> = a
                .exp_labels
                .iter()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect();
            // Written without `alertname`, which the evaluation adds.
            labels.insert("alertname".into(), name.clone());
            let annotations = a
                .exp_annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect();
            (labels, annotations)
        })
        .collect();
    got.sort();
    exp.sort();
    if got == exp {
        return None;
    }
    let test_name = if group_name.is_empty() {
        String::new()
    } else {
        format!("    name: {group_name},\n")
    };
    let indent = "            ";
    Some(format!(
        "{test_name}    alertname: {name}, time: {at}, \n        exp:{}, \n        got:{}",
        indent_lines(&alerts_string(&exp), indent),
        indent_lines(&alerts_string(&got), indent)
    ))
}

/// Alerts as promtool lists them: `[`, then each numbered with its labels and annotations.
fn alerts_string(alerts: &[LabelsAndAnnotations]) -> String {
    if alerts.is_empty() {
        return "[]".into();
    }
    let map_string = |m: &BTreeMap<String, String>| {
        labels_string(&Labels::from_pairs(
            m.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ))
    };
    let items: Vec<String> = alerts
        .iter()
        .enumerate()
        .map(|(i, (labels, annotations))| {
            let one = format!(
                "\nLabels:{}\nAnnotations:{}",
                map_string(labels),
                map_string(annotations)
            );
            format!("{i}:{}", indent_lines(&one, "  "))
        })
        .collect();
    format!("[\n{}\n]", items.join(",\n"))
}

/// Prefixes every line but the first with `indent`.
fn indent_lines(text: &str, indent: &str) -> String {
    text.split('\n')
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                l.to_string()
            } else {
                format!("{indent}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The test expression of an expected `histogram:`, parsed as a one-value series.
fn expected_histogram(text: &str) -> Result<String, String> {
    let (_, values) = parse_series_desc(&format!("{{}} {text}"))?;
    match values.as_slice() {
        [SeqValue::Histogram(h, _)] => Ok(h.test_expression()),
        [other] => Err(format!("expected histogram, got {other:?}")),
        _ => Err(format!("expected 1 value, got {}", values.len())),
    }
}

/// Exact equality (NaN equal to NaN), or with `fuzzy` at most one unit in the last place
/// apart.
fn floats_equal(a: f64, b: f64, fuzzy: bool) -> bool {
    if a == b || (a.is_nan() && b.is_nan()) {
        return true;
    }
    if !fuzzy || !a.is_finite() || !b.is_finite() || a.is_sign_negative() != b.is_sign_negative() {
        return false;
    }
    a.to_bits().abs_diff(b.to_bits()) <= 1
}

/// Go's `strconv.FormatFloat(v, 'E', -1, 64)`: `1E+00`, `2.5E-07`, `NaN`, `+Inf`.
fn go_float_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let s = format!("{v:E}");
    let (mantissa, exp) = s.split_once('E').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!(
        "{mantissa}E{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.unsigned_abs()
    )
}

#[cfg(test)]
mod tests;
