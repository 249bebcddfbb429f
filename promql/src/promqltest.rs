//! Runs Prometheus's PromQL test scripts (the `.test` format of `promql/promqltest`) against
//! this engine and compares results the way `promqltest` does: the same float tolerance,
//! NaN equal to NaN, exact label sets, order only when asked for, annotations when asked for,
//! every instant query also re-run with `@` pinned to other times and as a range query.
//!
//! Native histograms (`{{…}}` values, and the custom-bucket histograms `load_with_nhcb`
//! derives from classic ones) are loaded through [`MemorySource::add_histograms`], with
//! counter reset hints set the way Prometheus's TSDB sets them. An evaluation that fails
//! while reading or expecting native histograms is reported as a native-histogram failure,
//! apart from engine mismatches on float data.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use promql_parser::parser::{AtModifier, Expr};
use regex::Regex;
use sightline_model::{Cancellation, LabelMatcher, Labels, METRIC_NAME_LABEL, Sample};

use crate::eval::{OutSample, OutValue, Output, Point};
use crate::histogram::{CUSTOM_BUCKETS_SCHEMA, FloatHistogram};
use crate::quantile::almost_equal;
use crate::series_notation::{SeqValue, parse_series_desc, set_counter_reset_hints, unquote};
use crate::source::HistogramSample;
use crate::{Engine, EngineOptions, MemorySource, QueryError};

/// Test files that exercise native histograms or experimental / very new features, with why
/// they are skipped.
pub const SKIPPED_FILES: &[(&str, &str)] = &[
    (
        "native_histograms.test",
        "native histograms (sources hold float samples only)",
    ),
    ("info.test", "info() function (experimental)"),
    (
        "fill-modifier.test",
        "fill()/fill_left()/fill_right() binary modifiers (experimental)",
    ),
    (
        "extended_vectors.test",
        "anchored/smoothed range selectors (experimental)",
    ),
    (
        "duration_expression.test",
        "duration expressions (experimental)",
    ),
    (
        "type_and_unit.test",
        "__type__/__unit__ labels (experimental)",
    ),
    ("start_timestamps.test", "start timestamps (experimental)"),
];

/// Relative error allowed between expected and actual values (`defaultEpsilon`).
const EPSILON: f64 = 0.000001;

/// Why an evaluation statement failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureCause {
    /// It reads or expects native histograms, which the engine's sources cannot hold.
    NativeHistogram,
    /// `promql-parser` rejects the expression although Prometheus accepts it.
    ParserLimitation,
    /// The engine's result differs from Prometheus's.
    EngineMismatch,
    /// The statement itself could not be read by this harness.
    ScriptSyntax,
}

impl fmt::Display for FailureCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureCause::NativeHistogram => "native histogram",
            FailureCause::ParserLimitation => "parser limitation",
            FailureCause::EngineMismatch => "engine mismatch",
            FailureCause::ScriptSyntax => "script syntax",
        })
    }
}

/// One failed evaluation statement.
#[derive(Debug, Clone)]
pub struct Failure {
    pub line: usize,
    pub expr: String,
    pub cause: FailureCause,
    pub reason: String,
}

/// The outcome of one test file.
#[derive(Debug, Clone, Default)]
pub struct FileReport {
    pub name: String,
    pub evals: usize,
    pub passed: usize,
    pub failures: Vec<Failure>,
}

/// The outcome of a directory of test files.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub files: Vec<FileReport>,
    /// Skipped files with the reason.
    pub skipped: Vec<(String, String)>,
}

impl Report {
    /// Evaluation statements and passes over the files that ran.
    pub fn totals(&self) -> (usize, usize) {
        self.files
            .iter()
            .fold((0, 0), |(e, p), f| (e + f.evals, p + f.passed))
    }

    /// Percentage of evaluation statements that passed.
    pub fn pass_rate(&self) -> f64 {
        let (e, p) = self.totals();
        if e == 0 {
            0.0
        } else {
            100.0 * p as f64 / e as f64
        }
    }

    /// Failures counted by cause.
    pub fn failures_by_cause(&self) -> Vec<(FailureCause, usize)> {
        let mut counts: std::collections::BTreeMap<FailureCause, usize> = Default::default();
        for f in self.files.iter().flat_map(|f| &f.failures) {
            *counts.entry(f.cause).or_default() += 1;
        }
        counts.into_iter().collect()
    }
}

/// Runs every `*.test` file of `dir` (sorted by name), skipping [`SKIPPED_FILES`].
pub fn run_dir(dir: &Path) -> std::io::Result<Report> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".test"))
        .collect();
    names.sort();
    let engine = Engine::new(EngineOptions::default());
    let mut report = Report::default();
    for name in names {
        if let Some((_, why)) = SKIPPED_FILES.iter().find(|(n, _)| *n == name) {
            report.skipped.push((name, why.to_string()));
            continue;
        }
        let text = std::fs::read_to_string(dir.join(&name))?;
        report.files.push(run_script(&name, &text, &engine));
    }
    Ok(report)
}

/// Runs the files of `dir` that [`run_dir`] skips, for information (their results are not
/// part of the conformance figure).
pub fn run_skipped(dir: &Path) -> std::io::Result<Vec<FileReport>> {
    let engine = Engine::new(EngineOptions::default());
    let mut out = Vec::new();
    for (name, _) in SKIPPED_FILES {
        let path = dir.join(name);
        if path.is_file() {
            let text = std::fs::read_to_string(&path)?;
            out.push(run_script(name, &text, &engine));
        }
    }
    Ok(out)
}

/// Runs one script.
pub fn run_script(name: &str, text: &str, engine: &Engine) -> FileReport {
    let mut report = FileReport {
        name: name.to_string(),
        ..FileReport::default()
    };
    let mut runner = Runner {
        engine,
        store: MemorySource::new(),
        histograms: Vec::new(),
    };
    for cmd in parse_script(text) {
        match cmd {
            Command::Clear => {
                runner.store.clear();
                runner.histograms.clear();
            }
            Command::Load(load) => runner.load(load),
            Command::Eval(eval) => {
                report.evals += 1;
                match runner.eval(&eval) {
                    Ok(()) => report.passed += 1,
                    Err((cause, reason)) => report.failures.push(Failure {
                        line: eval.line,
                        expr: eval.expr.clone(),
                        cause,
                        reason,
                    }),
                }
            }
            Command::Invalid { line, expr, error } => {
                report.evals += 1;
                report.failures.push(Failure {
                    line,
                    expr,
                    cause: FailureCause::ScriptSyntax,
                    reason: error,
                });
            }
        }
    }
    report
}

// ---------------------------------------------------------------------------------------
// Script parsing.

#[derive(Debug)]
struct Load {
    interval: i64,
    with_nhcb: bool,
    series: Vec<(Labels, Vec<SeqValue>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExpectKind {
    Ordered,
    Fail,
    Warn,
    NoWarn,
    Info,
    NoInfo,
}

#[derive(Debug)]
enum MsgMatch {
    Any,
    Exact(String),
    Pattern(Regex),
}

impl MsgMatch {
    fn matches(&self, s: &str) -> bool {
        match self {
            MsgMatch::Any => true,
            MsgMatch::Exact(m) => m == s,
            MsgMatch::Pattern(r) => r.is_match(s),
        }
    }
}

#[derive(Debug)]
enum Expected {
    Nothing,
    Scalar(f64),
    Series(Vec<(Labels, Vec<SeqValue>)>),
}

#[derive(Debug)]
struct Eval {
    line: usize,
    expr: String,
    /// Instant: start == end, step 0.
    start: i64,
    end: i64,
    step: i64,
    /// The instant query's time.
    at: i64,
    is_range: bool,
    fail: bool,
    warn: bool,
    info: bool,
    ordered: bool,
    expects: Vec<(ExpectKind, MsgMatch)>,
    expected: Expected,
    expected_string: Option<String>,
    exclude_from_range: bool,
}

impl Eval {
    fn has(&self, k: ExpectKind) -> bool {
        self.expects.iter().any(|(kind, _)| *kind == k)
    }
    fn is_fail(&self) -> bool {
        self.fail || self.has(ExpectKind::Fail)
    }
    fn is_ordered(&self) -> bool {
        self.ordered || self.has(ExpectKind::Ordered)
    }
}

#[derive(Debug)]
enum Command {
    Clear,
    Load(Load),
    Eval(Eval),
    /// An evaluation statement this harness could not read.
    Invalid {
        line: usize,
        expr: String,
        error: String,
    },
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("static regex"))
}

fn pat_load() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"^load(?:_(with_nhcb))?\s+(.+?)$")
}
fn pat_eval_instant() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$",
    )
}
fn pat_eval_range() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$",
    )
}
fn pat_expect() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$",
    )
}
fn pat_expect_range() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$",
    )
}
fn pat_context_funcs() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"(start|end|range|step)\(\)")
}

/// Prometheus's duration syntax (`1h30m`, `10s53ms`, `0`), in milliseconds.
fn parse_duration(s: &str) -> Result<i64, String> {
    if s == "0" {
        return Ok(0);
    }
    let units: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ];
    let b = s.as_bytes();
    let (mut i, mut total, mut next_unit) = (0usize, 0i64, 0usize);
    if b.is_empty() {
        return Err("empty duration".into());
    }
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(format!("not a valid duration string: {s:?}"));
        }
        let n: i64 = s[start..i]
            .parse()
            .map_err(|_| format!("not a valid duration string: {s:?}"))?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let pos = units[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(|| format!("not a valid duration string: {s:?}"))?;
        total += n * units[next_unit + pos].1;
        next_unit += pos + 1;
    }
    Ok(total)
}

fn parse_script(text: &str) -> Vec<Command> {
    let lines: Vec<String> = text
        .split('\n')
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let word = l
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if word == "clear" {
            cmds.push(Command::Clear);
            i += 1;
        } else if word.starts_with("load") {
            let (next, load) = parse_load(&lines, i);
            if let Some(load) = load {
                cmds.push(Command::Load(load));
            }
            i = next;
        } else if word.starts_with("eval") {
            let (next, cmd) = parse_eval(&lines, i);
            cmds.push(cmd);
            i = next;
        } else {
            i += 1;
        }
    }
    cmds
}

/// Parses a `load` block starting at line `i`; returns the next line to read.
fn parse_load(lines: &[String], i: usize) -> (usize, Option<Load>) {
    let mut j = i + 1;
    while j < lines.len() && !lines[j].is_empty() {
        j += 1;
    }
    let Some(caps) = pat_load().captures(&lines[i]) else {
        return (j, None);
    };
    let Ok(interval) = parse_duration(caps.get(2).map_or("", |m| m.as_str())) else {
        return (j, None);
    };
    let with_nhcb = caps.get(1).is_some();
    let mut series = Vec::new();
    for line in &lines[i + 1..j] {
        // Start-timestamp lines (`metric@st …`) only matter for skipped files.
        if line
            .split_whitespace()
            .next()
            .is_some_and(|w| w.ends_with("@st"))
        {
            continue;
        }
        if let Ok(s) = parse_series_desc(line) {
            series.push(s);
        }
    }
    (
        j,
        Some(Load {
            interval,
            with_nhcb,
            series,
        }),
    )
}

fn parse_eval(lines: &[String], i: usize) -> (usize, Command) {
    let header = &lines[i];
    let mut j = i + 1;
    let invalid = |j: usize, expr: &str, error: String| {
        let mut k = j;
        while k < lines.len() && !lines[k].is_empty() {
            k += 1;
        }
        (
            k,
            Command::Invalid {
                line: i + 1,
                expr: expr.to_string(),
                error,
            },
        )
    };
    let mut eval = if let Some(c) = pat_eval_instant().captures(header) {
        let at = match parse_duration(c.get(2).map_or("0", |m| m.as_str())) {
            Ok(t) => t,
            Err(e) => return invalid(j, header, e),
        };
        Eval {
            line: i + 1,
            expr: c[3].to_string(),
            start: at,
            end: at,
            step: 0,
            at,
            is_range: false,
            fail: false,
            warn: false,
            info: false,
            ordered: false,
            expects: Vec::new(),
            expected: Expected::Nothing,
            expected_string: None,
            exclude_from_range: false,
        }
    } else if let Some(c) = pat_eval_range().captures(header) {
        let times = (|| -> Result<(i64, i64, i64), String> {
            Ok((
                parse_duration(&c[2])?,
                parse_duration(&c[3])?,
                parse_duration(&c[4])?,
            ))
        })();
        let (start, end, step) = match times {
            Ok(t) => t,
            Err(e) => return invalid(j, header, e),
        };
        Eval {
            line: i + 1,
            expr: c[5].to_string(),
            start,
            end,
            step,
            at: start,
            is_range: true,
            fail: false,
            warn: false,
            info: false,
            ordered: false,
            expects: Vec::new(),
            expected: Expected::Nothing,
            expected_string: None,
            exclude_from_range: false,
        }
    } else {
        return invalid(j, header, "invalid evaluation command".into());
    };
    let modifier = header
        .split_whitespace()
        .next()
        .and_then(|w| w.strip_prefix("eval_"));
    match modifier {
        Some("fail") => eval.fail = true,
        Some("warn") => eval.warn = true,
        Some("info") => eval.info = true,
        Some("ordered") => eval.ordered = true,
        _ => {}
    }
    let mut series = Vec::new();
    while j < lines.len() && !lines[j].is_empty() {
        let def = &lines[j];
        j += 1;
        if eval.fail && def.starts_with("expected_fail_message") {
            let msg = def["expected_fail_message".len()..].trim().to_string();
            eval.expects.push((ExpectKind::Fail, MsgMatch::Exact(msg)));
            break;
        }
        if eval.fail && def.starts_with("expected_fail_regexp") {
            let pat = def["expected_fail_regexp".len()..].trim();
            match Regex::new(pat) {
                Ok(r) => eval.expects.push((ExpectKind::Fail, MsgMatch::Pattern(r))),
                Err(e) => return invalid(j, &eval.expr, e.to_string()),
            }
            break;
        }
        if def.starts_with("expect range vector") {
            let Some(c) = pat_expect_range().captures(def) else {
                return invalid(
                    j,
                    &eval.expr,
                    format!("invalid range vector definition {def:?}"),
                );
            };
            match (
                parse_duration(&c[1]),
                parse_duration(&c[2]),
                parse_duration(&c[3]),
            ) {
                (Ok(s), Ok(e), Ok(st)) => {
                    eval.start = s;
                    eval.end = e;
                    eval.step = st;
                    eval.at = e;
                    eval.exclude_from_range = true;
                }
                _ => {
                    return invalid(
                        j,
                        &eval.expr,
                        format!("invalid range vector definition {def:?}"),
                    );
                }
            }
            continue;
        }
        if let Some(rest) = def.strip_prefix("expect string") {
            match unquote(rest.trim()) {
                Some(s) => {
                    eval.expected_string = Some(s);
                    eval.exclude_from_range = true;
                }
                None => return invalid(j, &eval.expr, "invalid expected string".into()),
            }
            continue;
        }
        if def.split(' ').next() == Some("expect") {
            let Some(c) = pat_expect().captures(def.trim()) else {
                return invalid(j, &eval.expr, format!("invalid expect statement {def:?}"));
            };
            let kind = match &c[1] {
                "ordered" => ExpectKind::Ordered,
                "fail" => ExpectKind::Fail,
                "warn" => ExpectKind::Warn,
                "no_warn" => ExpectKind::NoWarn,
                "info" => ExpectKind::Info,
                _ => ExpectKind::NoInfo,
            };
            let m = match (c.get(2).map(|m| m.as_str()), c.get(3)) {
                (Some("msg"), Some(t)) => MsgMatch::Exact(t.as_str().trim().to_string()),
                (Some("regex"), Some(t)) => match Regex::new(t.as_str().trim()) {
                    Ok(r) => MsgMatch::Pattern(r),
                    Err(e) => return invalid(j, &eval.expr, e.to_string()),
                },
                _ => MsgMatch::Any,
            };
            eval.expects.push((kind, m));
            continue;
        }
        if let Some(f) = parse_number(def) {
            eval.expected = Expected::Scalar(f);
            break;
        }
        match parse_series_desc(def) {
            Ok(s) => series.push(s),
            Err(e) => return invalid(j, &eval.expr, format!("line {j}: {e}")),
        }
    }
    if !series.is_empty() {
        eval.expected = Expected::Series(series);
    }
    (j, Command::Eval(eval))
}

/// Go's `strconv.ParseInt(s, 0, 64)` then `strconv.ParseFloat(s, 64)`.
fn parse_number(s: &str) -> Option<f64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let int = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else if body.len() > 1 && body.starts_with('0') && body.bytes().all(|c| c.is_ascii_digit()) {
        i64::from_str_radix(&body[1..], 8).ok()
    } else if !body.is_empty() && body.bytes().all(|c| c.is_ascii_digit()) {
        body.parse::<i64>().ok()
    } else {
        None
    };
    if let Some(n) = int {
        return Some(if neg { -(n as f64) } else { n as f64 });
    }
    crate::functions::go_parse_float(s)
}

// ---------------------------------------------------------------------------------------
// Running.

struct Runner<'a> {
    engine: &'a Engine,
    store: MemorySource,
    /// Series that had native histogram samples, which the store cannot hold.
    histograms: Vec<Labels>,
}

type EvalResult = Result<(), (FailureCause, String)>;

impl Runner<'_> {
    fn load(&mut self, load: Load) {
        let mut classic: Vec<(Labels, Vec<(i64, f64)>)> = Vec::new();
        for (labels, values) in &load.series {
            let mut samples = Vec::new();
            let mut hists = Vec::new();
            for (k, v) in values.iter().enumerate() {
                let t = k as i64 * load.interval;
                match v {
                    SeqValue::Float(f) => samples.push(Sample { t, v: *f }),
                    SeqValue::Histogram(h, _) => hists.push(HistogramSample {
                        t,
                        h: (**h).clone(),
                    }),
                    SeqValue::Omitted => {}
                }
            }
            if load.with_nhcb {
                classic.push((labels.clone(), samples.iter().map(|s| (s.t, s.v)).collect()));
            }
            self.add_series(labels, samples, hists);
        }
        if load.with_nhcb {
            for (labels, hists) in nhcb_from_classic(&classic) {
                self.add_series(&labels, Vec::new(), hists);
            }
        }
    }

    /// Stores a series' samples, giving its histograms the counter reset hints Prometheus's
    /// TSDB gives them on the way in and out.
    fn add_series(&mut self, labels: &Labels, floats: Vec<Sample>, hists: Vec<HistogramSample>) {
        if !hists.is_empty() && !self.histograms.contains(labels) {
            self.histograms.push(labels.clone());
        }
        if !floats.is_empty() {
            self.store.add(labels.clone(), floats);
        }
        if hists.is_empty() {
            return;
        }
        self.store.add_histograms(labels.clone(), hists);
        // Recompute hints over the whole series, as the TSDB would have set them.
        let sel = [
            LabelMatcher::new(METRIC_NAME_LABEL, sightline_model::MatchOp::Regex, ".*")
                .expect("static matcher"),
        ];
        use crate::SeriesSource;
        let floats: Vec<i64> = self
            .store
            .select(&sel, i64::MIN, i64::MAX)
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s.labels == *labels)
            .flat_map(|s| s.samples.into_iter().map(|x| x.t))
            .collect();
        let mut stored: Vec<HistogramSample> = self
            .store
            .select_histograms(&sel, i64::MIN, i64::MAX)
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s.labels == *labels)
            .flat_map(|s| s.samples)
            .collect();
        set_counter_reset_hints(&floats, &mut stored);
        self.store.add_histograms(labels.clone(), stored);
    }

    fn eval(&self, e: &Eval) -> EvalResult {
        let expr = match promql_parser::parser::parse(&e.expr) {
            Ok(x) => x,
            Err(err) => {
                return Err((
                    FailureCause::ParserLimitation,
                    format!("promql-parser rejects the expression: {err}"),
                ));
            }
        };
        let outcome = if e.is_range {
            self.run_range(e, &expr)
        } else {
            self.run_instant(e, &expr)
        };
        outcome.map_err(|reason| (self.classify(e, &expr), reason))
    }

    /// Whether the expression holds a `\xNN` escape above 0x7f: Go keeps it as a raw byte
    /// (an invalid UTF-8 string the test expects to be rejected), promql-parser decodes it
    /// to a character, so the statement cannot be expressed.
    fn has_raw_byte_escape(expr: &str) -> bool {
        let b = expr.as_bytes();
        b.windows(4).any(|w| {
            w[0] == b'\\'
                && w[1] == b'x'
                && w[2].is_ascii_hexdigit()
                && w[3].is_ascii_hexdigit()
                && {
                    let v = u8::from_str_radix(std::str::from_utf8(&w[2..4]).unwrap_or("0"), 16)
                        .unwrap_or(0);
                    v >= 0x80
                }
        })
    }

    /// Why an evaluation that failed did so.
    fn classify(&self, e: &Eval, expr: &Expr) -> FailureCause {
        if Self::has_raw_byte_escape(&e.expr) {
            return FailureCause::ParserLimitation;
        }
        let expects_histogram = match &e.expected {
            Expected::Series(s) => s.iter().any(|(_, v)| v.iter().any(SeqValue::is_histogram)),
            _ => false,
        };
        if expects_histogram || self.touches_histograms(expr) {
            FailureCause::NativeHistogram
        } else {
            FailureCause::EngineMismatch
        }
    }

    fn touches_histograms(&self, expr: &Expr) -> bool {
        let mut sets: Vec<Vec<LabelMatcher>> = Vec::new();
        collect_selectors(expr, &mut sets);
        sets.iter().any(|set| {
            self.histograms
                .iter()
                .any(|h| set.iter().all(|m| m.matches_labels(h)))
        })
    }

    fn run_range(&self, e: &Eval, expr: &Expr) -> Result<(), String> {
        let res = self.engine.range_query_expr(
            &self.store,
            expr,
            &e.expr,
            e.start,
            e.end,
            e.step,
            &Cancellation::new(),
        );
        let res = match res {
            Err(err) => {
                if e.is_fail() {
                    return check_expected_failure(e, &err);
                }
                return Err(format!("error evaluating query: {err}"));
            }
            Ok(r) => r,
        };
        if e.is_fail() {
            return Err("expected error evaluating query but got none".into());
        }
        check_annotations(e, &res)?;
        compare_result(e, &res.value, e.start, e.end, e.step)
    }

    fn run_instant(&self, e: &Eval, expr: &Expr) -> Result<(), String> {
        let mut queries: Vec<(Expr, i64, bool)> = vec![(expr.clone(), e.at, true)];
        let mut pinned = expr.clone();
        if !pin_at(&mut pinned, e.at, false) {
            let ts = e.at;
            let times: Vec<i64> = if ts == 0 {
                vec![-1000, 0, 1000]
            } else {
                vec![-10 * ts, 0, ts / 5, ts, 10 * ts]
            };
            queries.extend(times.into_iter().map(|t| (pinned.clone(), t, false)));
        }
        for (q, t, original) in queries {
            self.run_instant_one(e, &q, t, original).map_err(|r| {
                if original {
                    r
                } else {
                    format!("with @ pinned, at {}ms: {r}", t)
                }
            })?;
        }
        Ok(())
    }

    fn run_instant_one(&self, e: &Eval, expr: &Expr, t: i64, original: bool) -> Result<(), String> {
        let res = match self.engine.instant_query_expr(
            &self.store,
            expr,
            &e.expr,
            t,
            &Cancellation::new(),
        ) {
            Err(err) => {
                if e.is_fail() {
                    return check_expected_failure(e, &err);
                }
                return Err(format!("error evaluating query: {err}"));
            }
            Ok(r) => r,
        };
        if e.is_fail() {
            return Err("expected error evaluating query but got none".into());
        }
        check_annotations(e, &res)?;
        compare_result(e, &res.value, e.start, e.end, e.step)?;
        if e.exclude_from_range {
            return Ok(());
        }
        let uses_context = if original {
            pat_context_funcs().is_match(&e.expr)
        } else {
            calls_context_function(expr)
        };
        if uses_context {
            return Ok(());
        }
        let range = self
            .engine
            .range_query_expr(
                &self.store,
                expr,
                &e.expr,
                t - 60_000,
                t + 60_000,
                60_000,
                &Cancellation::new(),
            )
            .map_err(|err| format!("error evaluating query in range mode: {err}"))?;
        if e.is_ordered() {
            return Ok(());
        }
        let OutValue::Matrix(m) = range.value else {
            return Err("range mode did not return a matrix".into());
        };
        let vec: Vec<OutSample> = m
            .into_iter()
            .filter_map(|s| {
                s.points.iter().find(|p| p.t == t).map(|p| OutSample {
                    labels: s.labels.clone(),
                    t,
                    v: p.f,
                    h: p.h.clone(),
                })
            })
            .collect();
        let value = if matches!(res.value, OutValue::Scalar { .. }) {
            match vec.first() {
                Some(s) => OutValue::Scalar { t, v: s.v },
                None => return Err("range mode returned no value for a scalar".into()),
            }
        } else {
            OutValue::Vector(vec)
        };
        compare_result(e, &value, e.start, e.end, e.step).map_err(|r| format!("range mode: {r}"))
    }
}

fn collect_selectors(expr: &Expr, out: &mut Vec<Vec<LabelMatcher>>) {
    match expr {
        Expr::VectorSelector(vs) => {
            if let Ok(sets) = crate::plan::selector_matchers(vs) {
                out.extend(sets);
            }
        }
        Expr::MatrixSelector(ms) => {
            if let Ok(sets) = crate::plan::selector_matchers(&ms.vs) {
                out.extend(sets);
            }
        }
        Expr::Aggregate(a) => {
            collect_selectors(&a.expr, out);
            if let Some(p) = &a.param {
                collect_selectors(p, out);
            }
        }
        Expr::Unary(u) => collect_selectors(&u.expr, out),
        Expr::Binary(b) => {
            collect_selectors(&b.lhs, out);
            collect_selectors(&b.rhs, out);
        }
        Expr::Paren(p) => collect_selectors(&p.expr, out),
        Expr::Subquery(s) => collect_selectors(&s.expr, out),
        Expr::Call(c) => c.args.args.iter().for_each(|a| collect_selectors(a, out)),
        _ => {}
    }
}

const AT_UNSAFE: [&str; 11] = [
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
];

fn at_time(ms: i64) -> AtModifier {
    if ms >= 0 {
        AtModifier::At(UNIX_EPOCH + Duration::from_millis(ms as u64))
    } else {
        AtModifier::At(UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs()))
    }
}

/// Pins every selector and subquery outside `@`-pinned subqueries to `@ ts`, as
/// `promqltest`'s `atModifierTestCases`. Returns whether the expression calls a function
/// whose value depends on the evaluation time (then the pinned variants are not run).
fn pin_at(expr: &mut Expr, ts: i64, inside_pinned_subquery: bool) -> bool {
    if inside_pinned_subquery {
        return false;
    }
    match expr {
        Expr::VectorSelector(vs) => {
            if !matches!(vs.at, Some(AtModifier::At(_))) {
                vs.at = Some(at_time(ts));
            }
            false
        }
        Expr::MatrixSelector(ms) => {
            if !matches!(ms.vs.at, Some(AtModifier::At(_))) {
                ms.vs.at = Some(at_time(ts));
            }
            false
        }
        Expr::Subquery(s) => {
            if !matches!(s.at, Some(AtModifier::At(_))) {
                s.at = Some(at_time(ts));
            }
            // Everything inside now sits under a pinned subquery.
            false
        }
        Expr::Aggregate(a) => {
            let p = a.param.as_mut().is_some_and(|p| pin_at(p, ts, false));
            pin_at(&mut a.expr, ts, false) || p
        }
        Expr::Unary(u) => pin_at(&mut u.expr, ts, false),
        Expr::Binary(b) => {
            let l = pin_at(&mut b.lhs, ts, false);
            pin_at(&mut b.rhs, ts, false) || l
        }
        Expr::Paren(p) => pin_at(&mut p.expr, ts, false),
        Expr::Call(c) if matches!(c.func.name, "start" | "end") && c.args.args.is_empty() => {
            // Prometheus resolves `start()`/`end()` to the query's time before printing the
            // pinned expression, so the variants keep the original evaluation time.
            *expr = Expr::NumberLiteral(promql_parser::parser::NumberLiteral::new(
                ts as f64 / 1000.0,
            ));
            false
        }
        Expr::Call(c) => {
            let mut unsafe_call = AT_UNSAFE.contains(&c.func.name);
            for a in &mut c.args.args {
                unsafe_call |= pin_at(a, ts, false);
            }
            unsafe_call
        }
        _ => false,
    }
}

/// Whether the expression calls `start()`, `end()`, `range()` or `step()`.
fn calls_context_function(expr: &Expr) -> bool {
    match expr {
        Expr::Call(c) => {
            matches!(c.func.name, "start" | "end" | "range" | "step")
                || c.args.args.iter().any(|a| calls_context_function(a))
        }
        Expr::Aggregate(a) => {
            calls_context_function(&a.expr)
                || a.param.as_ref().is_some_and(|p| calls_context_function(p))
        }
        Expr::Unary(u) => calls_context_function(&u.expr),
        Expr::Binary(b) => calls_context_function(&b.lhs) || calls_context_function(&b.rhs),
        Expr::Paren(p) => calls_context_function(&p.expr),
        Expr::Subquery(s) => calls_context_function(&s.expr),
        _ => false,
    }
}

fn check_expected_failure(e: &Eval, err: &QueryError) -> Result<(), String> {
    let msg = err.to_string();
    if let Some((_, m)) = e.expects.iter().find(|(k, _)| *k == ExpectKind::Fail)
        && !m.matches(&msg)
    {
        return Err(format!("expected error matching {m:?}, got: {msg}"));
    }
    Ok(())
}

fn check_annotation_kind(
    e: &Eval,
    kind: ExpectKind,
    actual: &[String],
    what: &str,
) -> Result<(), String> {
    let expected: Vec<&MsgMatch> = e
        .expects
        .iter()
        .filter(|(k, _)| *k == kind)
        .map(|(_, m)| m)
        .collect();
    if expected.is_empty() {
        return Ok(());
    }
    if actual.is_empty() {
        return Err(format!("expected {what} annotations but none were found"));
    }
    for m in &expected {
        if !actual.iter().any(|a| m.matches(a)) {
            return Err(format!(
                "expected {what} annotation matching {m:?} but found only {actual:?}"
            ));
        }
    }
    for a in actual {
        if !expected.iter().any(|m| m.matches(a)) {
            return Err(format!("unexpected {what} annotation {a:?}"));
        }
    }
    Ok(())
}

fn check_annotations(e: &Eval, res: &Output) -> Result<(), String> {
    if e.warn && res.warnings.is_empty() {
        return Err("expected warnings but got none".into());
    }
    if e.info && res.infos.is_empty() {
        return Err("expected info annotations but got none".into());
    }
    check_annotation_kind(e, ExpectKind::Warn, &res.warnings, "warn")?;
    check_annotation_kind(e, ExpectKind::Info, &res.infos, "info")?;
    if e.has(ExpectKind::NoWarn) && !res.warnings.is_empty() {
        return Err(format!(
            "unexpected warning annotations: {:?}",
            res.warnings
        ));
    }
    if e.has(ExpectKind::NoInfo) && !res.infos.is_empty() {
        return Err(format!("unexpected info annotations: {:?}", res.infos));
    }
    Ok(())
}

fn fmt_labels(l: &Labels) -> String {
    crate::labels::to_prom_string(l)
}

/// Compares histograms as `promqltest`'s `compareNativeHistogram`: same layout, counts
/// within the float tolerance, the counter reset hint only when the test states it.
fn histograms_match(exp: &FloatHistogram, got: &FloatHistogram, hint_set: bool) -> bool {
    let close = |a: f64, b: f64| almost_equal(a, b, EPSILON);
    let buckets = |a: &[(i32, f64)], b: &[(i32, f64)]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && close(x.1, y.1))
    };
    exp.schema == got.schema
        && close(exp.count, got.count)
        && close(exp.sum, got.sum)
        && (exp.schema != CUSTOM_BUCKETS_SCHEMA || exp.custom_values == got.custom_values)
        && exp.zero_threshold == got.zero_threshold
        && close(exp.zero_count, got.zero_count)
        && buckets(&exp.positive, &got.positive)
        && buckets(&exp.negative, &got.negative)
        && (!hint_set || exp.counter_reset_hint == got.counter_reset_hint)
}

/// Checks one value against its expectation.
fn value_matches(
    want: &SeqValue,
    f: f64,
    h: Option<&FloatHistogram>,
    what: &str,
) -> Result<(), String> {
    match (want, h) {
        (SeqValue::Float(w), None) => {
            if almost_equal(*w, f, EPSILON) {
                Ok(())
            } else {
                Err(format!("expected {w} for {what} but got {f}"))
            }
        }
        (SeqValue::Histogram(w, hint_set), Some(g)) => {
            if histograms_match(w, g, *hint_set) {
                Ok(())
            } else {
                Err(format!(
                    "expected {} for {what} but got {}",
                    w.test_expression(),
                    g.test_expression()
                ))
            }
        }
        (SeqValue::Float(w), Some(g)) => Err(format!(
            "expected float value {w} for {what} but got histogram {}",
            g.test_expression()
        )),
        (SeqValue::Histogram(w, _), None) => Err(format!(
            "expected histogram {} for {what} but got float value {f}",
            w.test_expression()
        )),
        (SeqValue::Omitted, _) => Err(format!("no expected value for {what}")),
    }
}

/// Compares a result with the expectation, as `promqltest`'s `compareResult`.
fn compare_result(e: &Eval, v: &OutValue, start: i64, end: i64, step: i64) -> Result<(), String> {
    let expected_series = || -> &[(Labels, Vec<SeqValue>)] {
        match &e.expected {
            Expected::Series(s) => s,
            _ => &[],
        }
    };
    match v {
        OutValue::Matrix(m) => {
            if e.is_ordered() {
                return Err("expected ordered result, but query returned a matrix".into());
            }
            if let Expected::Scalar(_) = e.expected {
                return Err("expected scalar result, but got a matrix".into());
            }
            if m.windows(2).any(|w| w[0].labels > w[1].labels) {
                return Err("matrix results should always be sorted by labels".into());
            }
            let exp = expected_series();
            let mut seen = HashSet::new();
            for s in m {
                let what = fmt_labels(&s.labels);
                let Some((_, vals)) = exp.iter().find(|(l, _)| *l == s.labels) else {
                    return Err(format!(
                        "unexpected metric {what} in result, has {}",
                        fmt_points(&s.points)
                    ));
                };
                seen.insert(s.labels.clone());
                let mut want: Vec<(i64, &SeqValue)> = Vec::new();
                for (i, x) in vals.iter().enumerate() {
                    let t = start + i as i64 * step;
                    if t > end {
                        return Err(format!(
                            "expected {} points for {what}, but query time range cannot return this many points",
                            vals.len()
                        ));
                    }
                    if *x != SeqValue::Omitted {
                        want.push((t, x));
                    }
                }
                let want_floats = want.iter().filter(|(_, x)| !x.is_histogram()).count();
                let got_floats = s.points.iter().filter(|p| p.h.is_none()).count();
                if want_floats != got_floats || want.len() != s.points.len() {
                    return Err(format!(
                        "expected {} float points and {} histogram points for {what}, but got {}",
                        want_floats,
                        want.len() - want_floats,
                        fmt_points(&s.points)
                    ));
                }
                // Prometheus compares the float points and the histogram points separately,
                // each in time order.
                let floats_then_hists = |hist: bool| {
                    want.iter()
                        .filter(move |(_, x)| x.is_histogram() == hist)
                        .zip(s.points.iter().filter(move |p| p.h.is_some() == hist))
                };
                for ((wt, wv), p) in floats_then_hists(false).chain(floats_then_hists(true)) {
                    if *wt != p.t {
                        return Err(format!(
                            "expected point at {wt} for {what}, got one at {} (result {})",
                            p.t,
                            fmt_points(&s.points)
                        ));
                    }
                    value_matches(wv, p.f, p.h.as_deref(), &what)
                        .map_err(|r| format!("{r} at t={wt} (result {})", fmt_points(&s.points)))?;
                }
            }
            for (l, _) in exp {
                if !seen.contains(l) {
                    return Err(format!("expected metric {} not found", fmt_labels(l)));
                }
            }
            Ok(())
        }
        OutValue::Vector(vec) => {
            if let Expected::Scalar(_) = e.expected {
                return Err(format!(
                    "expected scalar result, but got a vector of {}",
                    vec.len()
                ));
            }
            let exp = expected_series();
            let mut seen = HashSet::new();
            for (pos, s) in vec.iter().enumerate() {
                let Some(idx) = exp.iter().position(|(l, _)| *l == s.labels) else {
                    let value = match &s.h {
                        Some(h) => h.test_expression(),
                        None => s.v.to_string(),
                    };
                    return Err(format!(
                        "unexpected metric {} in result, has value {value}",
                        fmt_labels(&s.labels)
                    ));
                };
                if e.is_ordered() && idx != pos {
                    return Err(format!(
                        "expected metric {} at position {} but was at {}",
                        fmt_labels(&s.labels),
                        idx + 1,
                        pos + 1
                    ));
                }
                let want = exp[idx].1.first().unwrap_or(&SeqValue::Omitted);
                value_matches(want, s.v, s.h.as_deref(), &fmt_labels(&s.labels))?;
                seen.insert(idx);
            }
            for (i, (l, _)) in exp.iter().enumerate() {
                if !seen.contains(&i) {
                    return Err(format!("expected metric {} not found", fmt_labels(l)));
                }
            }
            Ok(())
        }
        OutValue::Scalar { v, .. } => {
            let Expected::Scalar(want) = e.expected else {
                return Err(format!(
                    "expected vector or matrix result, but got scalar {v}"
                ));
            };
            if !almost_equal(want, *v, EPSILON) {
                return Err(format!("expected scalar {want} but got {v}"));
            }
            Ok(())
        }
        OutValue::String { v, .. } => {
            let want = e.expected_string.as_deref().unwrap_or("");
            if want != v {
                return Err(format!("expected string {want:?} but got {v:?}"));
            }
            Ok(())
        }
    }
}

fn fmt_points(points: &[Point]) -> String {
    let parts: Vec<String> = points
        .iter()
        .map(|p| match &p.h {
            Some(h) => format!("{} @{}", h.test_expression(), p.t),
            None => format!("{} @{}", p.f, p.t),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// The custom-bucket histograms `load_with_nhcb` derives from classic histogram series
/// (`_bucket` with `le`, `_count`, `_sum`), one per base series and timestamp.
fn nhcb_from_classic(series: &[(Labels, Vec<(i64, f64)>)]) -> Vec<(Labels, Vec<HistogramSample>)> {
    #[derive(Default)]
    struct Temp {
        buckets: Vec<(f64, f64)>,
        count: Option<f64>,
        sum: f64,
    }
    let mut by_base: std::collections::BTreeMap<Labels, std::collections::BTreeMap<i64, Temp>> =
        Default::default();
    for (labels, samples) in series {
        let Some(name) = labels.get(METRIC_NAME_LABEL) else {
            continue;
        };
        let (kind, base) = if let Some(b) = name.strip_suffix("_bucket") {
            let Some(le) = labels.get("le").and_then(crate::functions::go_parse_float) else {
                continue;
            };
            if le.is_nan() {
                continue;
            }
            (Some(le), b)
        } else if let Some(b) = name.strip_suffix("_count") {
            (None, b)
        } else if let Some(b) = name.strip_suffix("_sum") {
            (Some(f64::NAN), b)
        } else {
            continue;
        };
        let base_labels = Labels::from_pairs(
            labels
                .iter()
                .filter(|(k, _)| *k != "le" && *k != METRIC_NAME_LABEL)
                .chain(std::iter::once((METRIC_NAME_LABEL, base))),
        );
        let per_ts = by_base.entry(base_labels).or_default();
        for &(t, v) in samples {
            if sightline_model::is_stale_nan(v) {
                continue;
            }
            let temp = per_ts.entry(t).or_default();
            match kind {
                Some(le) if le.is_nan() => temp.sum = v,
                Some(le) => temp.buckets.push((le, v)),
                None => temp.count = Some(v),
            }
        }
    }
    let mut out = Vec::new();
    for (labels, per_ts) in by_base {
        let mut samples = Vec::new();
        for (t, mut temp) in per_ts {
            if temp.buckets.is_empty() {
                continue;
            }
            temp.buckets
                .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
            if temp.buckets.last().is_some_and(|b| b.0 != f64::INFINITY) {
                let c = temp.count.unwrap_or(temp.buckets[temp.buckets.len() - 1].1);
                temp.buckets.push((f64::INFINITY, c));
            }
            let count = temp.count.unwrap_or(temp.buckets[temp.buckets.len() - 1].1);
            let mut prev = 0.0;
            let mut positive = Vec::new();
            let mut custom = Vec::new();
            for (i, (le, cum)) in temp.buckets.iter().enumerate() {
                if le.is_finite() {
                    custom.push(*le);
                }
                let c = cum - prev;
                prev = *cum;
                if c != 0.0 {
                    positive.push((i as i32, c));
                }
            }
            samples.push(HistogramSample {
                t,
                h: FloatHistogram {
                    schema: CUSTOM_BUCKETS_SCHEMA,
                    count,
                    sum: temp.sum,
                    positive,
                    custom_values: custom.into(),
                    ..FloatHistogram::default()
                },
            });
        }
        if !samples.is_empty() {
            out.push((labels, samples));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration("10s53ms").unwrap(), 10_053);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert!(parse_duration("10").is_err());
    }

    #[test]
    fn runs_a_small_script() {
        let script = r#"
load 1m
  http_requests_total{job="a"} 0+10x10
  http_requests_total{job="b"} 0+20x10

eval instant at 10m sum(rate(http_requests_total[5m]))
  {} 0.5

eval range from 0 to 2m step 1m http_requests_total{job="a"}
  http_requests_total{job="a"} 0 10 20

eval instant at 10m http_requests_total{job="a"} / 0
  expect no_warn
  {job="a"} +Inf

eval instant at 0m 1 + 1
  2

eval instant at 10m sum(http_requests_total)
  {} 1
"#;
        let r = run_script("t", script, &Engine::default());
        assert_eq!(r.evals, 5);
        assert_eq!(r.passed, 4, "{:?}", r.failures);
        assert_eq!(r.failures[0].cause, FailureCause::EngineMismatch);
    }
}
