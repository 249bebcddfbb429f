//! Prometheus's rule-file format: parsed, and checked the way `promtool check rules` checks
//! it, every problem named by file, line and rule.
//!
//! ```yaml
//! groups:
//!   - name: example
//!     interval: 30s          # optional; the global evaluation interval otherwise
//!     limit: 0               # optional; most alerts (series) a rule may produce
//!     labels: {team: x}      # optional; added to every rule's output (3.x)
//!     rules:
//!       - alert: HighErrors
//!         expr: rate(errors_total[5m]) > 1
//!         for: 5m
//!         keep_firing_for: 1m
//!         labels: {severity: page}
//!         annotations: {summary: "…{{ $labels.instance }}…"}
//!       - record: job:errors:rate5m
//!         expr: sum by (job) (rate(errors_total[5m]))
//! ```
//!
//! Only the first YAML document counts (as in Prometheus). Unknown fields are refused
//! (`field X not found in type …`, Prometheus's words) unless `ignore_unknown_fields`.
//! Checks after parsing, with Prometheus's messages: group names present and unique in the
//! file; each rule exactly one of `record`/`alert`; `expr` set and valid PromQL; a recording
//! rule's name a valid metric name and no `for`, `keep_firing_for` or `annotations` on it;
//! label names valid (any UTF-8 as in Prometheus 3) and not `__name__` on alerts. Line
//! numbers come from the text (YAML's block style, what rule files are written in); rules
//! in flow style are placed at their group.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// A parsed rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFile {
    pub groups: Vec<RuleGroup>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroup {
    pub name: String,
    pub interval: Option<Duration>,
    pub query_offset: Option<Duration>,
    /// Most alerts or series one rule may produce; 0 is no limit.
    pub limit: usize,
    pub labels: BTreeMap<String, String>,
    pub rules: Vec<Rule>,
    /// 1-based line of the group's entry.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub kind: RuleKind,
    pub expr: String,
    pub labels: BTreeMap<String, String>,
    /// 1-based line of the rule's entry.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    Alert {
        name: String,
        for_: Duration,
        keep_firing_for: Duration,
        annotations: BTreeMap<String, String>,
    },
    Record {
        name: String,
    },
}

impl Rule {
    /// The alert's or the recorded series' name.
    pub fn name(&self) -> &str {
        match &self.kind {
            RuleKind::Alert { name, .. } | RuleKind::Record { name } => name,
        }
    }
}

/// One problem of a rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub file: String,
    pub line: usize,
    /// Which group and rule (`group "g", rule 2, "Name"`), empty for the file as a whole.
    pub context: String,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.context.is_empty() {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(
                f,
                "{}:{}: {}: {}",
                self.file, self.line, self.context, self.message
            )
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    name: String,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    query_offset: Option<String>,
    #[serde(default)]
    limit: usize,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    record: Option<String>,
    #[serde(default)]
    alert: Option<String>,
    #[serde(default)]
    expr: Option<ExprText>,
    #[serde(default, rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

/// `expr` as written: a string, or a number (`expr: 1`).
#[derive(Deserialize)]
#[serde(untagged)]
enum ExprText {
    Text(String),
    Int(i64),
    Float(f64),
}

impl ExprText {
    fn text(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Int(i) => i.to_string(),
            Self::Float(f) => f.to_string(),
        }
    }
}

/// Options of [`parse`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// Accept fields the format does not know (promtool's `--ignore-unknown-fields`).
    pub ignore_unknown_fields: bool,
    /// The expressions are LogQL metric queries (Loki's ruler format), not PromQL.
    pub logql: bool,
}

/// Parses and checks a rule file. `file` names it in errors. All problems are reported.
pub fn parse(file: &str, text: &str, options: ParseOptions) -> Result<RuleFile, Vec<RuleError>> {
    let err = |line: usize, context: String, message: String| RuleError {
        file: file.to_string(),
        line,
        context,
        message,
    };
    let raw: RawFile = match first_document(text, options) {
        Ok(Some(raw)) => raw,
        Ok(None) => return Ok(RuleFile { groups: vec![] }),
        Err(e) => {
            let line = e.location().map_or(1, |l| l.line());
            return Err(vec![err(line, String::new(), yaml_message(&e))]);
        }
    };
    let lines = locate(text);
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let mut names = HashSet::new();
    for (gi, g) in raw.groups.into_iter().enumerate() {
        let (group_line, rule_lines) = lines.get(gi).cloned().unwrap_or((1, vec![]));
        let group_ctx = format!("group {:?}", g.name);
        if g.name.is_empty() {
            errors.push(err(
                group_line,
                String::new(),
                "Groupname must not be empty".into(),
            ));
        } else if !names.insert(g.name.clone()) {
            errors.push(err(
                group_line,
                String::new(),
                format!("groupname: {:?} is repeated in the same file", g.name),
            ));
        }
        let mut duration = |what: &str, v: &Option<String>| -> Option<Duration> {
            let v = v.as_deref()?;
            match parse_duration(v) {
                Some(d) => Some(d),
                None => {
                    errors.push(err(
                        group_line,
                        group_ctx.clone(),
                        format!("invalid {what} {v:?}: not a valid duration string"),
                    ));
                    None
                }
            }
        };
        let interval = duration("interval", &g.interval);
        let query_offset = duration("query_offset", &g.query_offset);
        for name in g.labels.keys() {
            if let Some(m) = invalid_label_name(name) {
                errors.push(err(group_line, group_ctx.clone(), m));
            }
        }
        let mut rules = Vec::new();
        for (ri, r) in g.rules.into_iter().enumerate() {
            let line = rule_lines.get(ri).copied().unwrap_or(group_line);
            let name = r
                .alert
                .clone()
                .or_else(|| r.record.clone())
                .unwrap_or_default();
            let ctx = format!("group {:?}, rule {}, {:?}", g.name, ri + 1, name);
            let mut problems = Vec::new();
            match (&r.record, &r.alert) {
                (Some(_), Some(_)) => {
                    problems.push("only one of 'record' and 'alert' must be set".to_string())
                }
                (None, None) => problems.push("one of 'record' or 'alert' must be set".into()),
                (Some(rec), None) if rec.is_empty() => {
                    problems.push("one of 'record' or 'alert' must be set".into())
                }
                (None, Some(a)) if a.is_empty() => {
                    problems.push("one of 'record' or 'alert' must be set".into())
                }
                _ => {}
            }
            let expr = r.expr.as_ref().map(ExprText::text).unwrap_or_default();
            if expr.trim().is_empty() {
                problems.push("field 'expr' must be set in rule".into());
            } else if options.logql {
                match sightline_logql::parse(&expr) {
                    Err(e) => problems.push(format!("could not parse expression: {e}")),
                    Ok(sightline_logql::Expr::Log(_)) => problems.push(
                        "could not parse expression: a rule needs a metric query, not a log query"
                            .into(),
                    ),
                    Ok(_) => {}
                }
            } else if let Err(e) = sightline_promql::parse_expr(&expr) {
                problems.push(format!("could not parse expression: {e}"));
            }
            if let Some(rec) = &r.record {
                if r.annotations.is_some() {
                    problems.push("invalid field 'annotations' in recording rule".into());
                }
                if r.for_.is_some() {
                    problems.push("invalid field 'for' in recording rule".into());
                }
                if r.keep_firing_for.is_some() {
                    problems.push("invalid field 'keep_firing_for' in recording rule".into());
                }
                if !rec.is_empty() && !is_metric_name(rec) {
                    problems.push(if rec.contains('{') || rec.contains('}') {
                        format!(
                            "invalid recording rule name: {rec}: braces present in the recording rule name; should it be in expr?"
                        )
                    } else {
                        format!("invalid recording rule name: {rec}")
                    });
                }
            }
            for name in r.labels.keys() {
                if let Some(m) = invalid_label_name(name) {
                    problems.push(m);
                }
                if name == "__name__" && r.alert.is_some() {
                    problems.push("invalid label name: __name__".into());
                }
            }
            for name in r.annotations.iter().flat_map(|a| a.keys()) {
                if name.is_empty() {
                    problems.push("invalid annotation name: \"\"".into());
                }
            }
            // Label and annotation values of alerts are templates (Prometheus parses them
            // when it loads the file).
            if let Some(alert) = &r.alert {
                let funcs = template_funcs();
                let values = r.labels.iter().map(|(k, v)| ("label", k, v)).chain(
                    r.annotations
                        .iter()
                        .flatten()
                        .map(|(k, v)| ("annotation", k, v)),
                );
                for (what, key, text) in values {
                    let source = format!("{}{text}", crate::template::ALERT_TEMPLATE_PREFIX);
                    if let Err(e) = crate::template::Template::parse(
                        &format!("__alert_{alert}"),
                        &source,
                        funcs,
                    ) {
                        problems.push(format!("{what} {key:?}: {e}"));
                    }
                }
            }
            let mut for_ = Duration::ZERO;
            let mut keep = Duration::ZERO;
            for (what, v, slot) in [
                ("for", &r.for_, &mut for_),
                ("keep_firing_for", &r.keep_firing_for, &mut keep),
            ] {
                if let Some(v) = v {
                    match parse_duration(v) {
                        Some(d) => *slot = d,
                        None => problems
                            .push(format!("invalid {what} {v:?}: not a valid duration string")),
                    }
                }
            }
            if !problems.is_empty() {
                errors.extend(problems.into_iter().map(|m| err(line, ctx.clone(), m)));
                continue;
            }
            let kind = match (r.alert, r.record) {
                (Some(name), None) => RuleKind::Alert {
                    name,
                    for_,
                    keep_firing_for: keep,
                    annotations: r.annotations.unwrap_or_default(),
                },
                (None, Some(name)) => RuleKind::Record { name },
                _ => unreachable!("checked above"),
            };
            rules.push(Rule {
                kind,
                expr,
                labels: r.labels,
                line,
            });
        }
        groups.push(RuleGroup {
            name: g.name,
            interval,
            query_offset,
            limit: g.limit,
            labels: g.labels,
            rules,
            line: group_line,
        });
    }
    if errors.is_empty() {
        Ok(RuleFile { groups })
    } else {
        Err(errors)
    }
}

/// Prometheus's template functions, for parsing (no query engine is needed to parse).
fn template_funcs() -> &'static crate::template::Funcs {
    static FUNCS: std::sync::OnceLock<crate::template::Funcs> = std::sync::OnceLock::new();
    FUNCS.get_or_init(|| {
        crate::template::prometheus_funcs(crate::template::PrometheusFuncsConfig::default())
    })
}

/// The first YAML document, deserialized (with unknown fields refused or dropped).
fn first_document(
    text: &str,
    options: ParseOptions,
) -> Result<Option<RawFile>, serde_yaml_ng::Error> {
    let Some(doc) = serde_yaml_ng::Deserializer::from_str(text).next() else {
        return Ok(None);
    };
    if options.ignore_unknown_fields {
        // Through a value, without the unknown keys.
        let mut value = serde_yaml_ng::Value::deserialize(doc)?;
        strip_unknown(&mut value);
        return serde_yaml_ng::from_value(value).map(Some);
    }
    let value = serde_yaml_ng::Value::deserialize(doc)?;
    if value.is_null() {
        return Ok(None);
    }
    // Again from the text for the error's position.
    let doc = serde_yaml_ng::Deserializer::from_str(text)
        .next()
        .expect("a first document");
    RawFile::deserialize(doc).map(Some)
}

/// Removes keys the format does not know (promtool's `--ignore-unknown-fields`).
fn strip_unknown(value: &mut serde_yaml_ng::Value) {
    const FILE: &[&str] = &["groups"];
    const GROUP: &[&str] = &[
        "name",
        "interval",
        "query_offset",
        "limit",
        "labels",
        "rules",
    ];
    const RULE: &[&str] = &[
        "record",
        "alert",
        "expr",
        "for",
        "keep_firing_for",
        "labels",
        "annotations",
    ];
    let keep = |m: &mut serde_yaml_ng::Mapping, known: &[&str]| {
        m.retain(|k, _| k.as_str().is_some_and(|k| known.contains(&k)));
    };
    let Some(file) = value.as_mapping_mut() else {
        return;
    };
    keep(file, FILE);
    for g in file
        .get_mut("groups")
        .and_then(|g| g.as_sequence_mut())
        .into_iter()
        .flatten()
    {
        let Some(g) = g.as_mapping_mut() else {
            continue;
        };
        keep(g, GROUP);
        for r in g
            .get_mut("rules")
            .and_then(|r| r.as_sequence_mut())
            .into_iter()
            .flatten()
        {
            if let Some(r) = r.as_mapping_mut() {
                keep(r, RULE);
            }
        }
    }
}

/// serde's message in Prometheus's words: `field X not found in type rulefmt.Rule`.
fn yaml_message(e: &serde_yaml_ng::Error) -> String {
    let text = e.to_string();
    let text = text
        .split(" at line ")
        .next()
        .unwrap_or(&text)
        .trim_end()
        .to_string();
    if let Some(rest) = text.split("unknown field `").nth(1) {
        let field = rest.split('`').next().unwrap_or_default();
        let ty = if text.starts_with("groups[") && text.contains("].rules[") {
            "rulefmt.Rule"
        } else if text.starts_with("groups[") {
            "rulefmt.RuleGroup"
        } else {
            "rulefmt.RuleGroups"
        };
        return format!("field {field} not found in type {ty}");
    }
    text
}

/// Lines of each group's entry and of each of its rules' entries, by reading the block-style
/// YAML's indentation: `- ` items under `groups:`, and under each group's `rules:`.
fn locate(text: &str) -> Vec<(usize, Vec<usize>)> {
    let mut out: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut group_indent: Option<usize> = None;
    let mut rules_key_indent: Option<usize> = None;
    let mut rule_indent: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if line == "---" || line.starts_with("--- ") {
            break;
        }
        let indent = line.len() - trimmed.len();
        let item = trimmed.starts_with("- ") || trimmed == "-";
        if indent == 0 && trimmed.starts_with("groups:") {
            group_indent = None;
            continue;
        }
        // A new group: a list item at the groups' indentation.
        if item
            && group_indent.is_none_or(|g| g == indent)
            && rule_indent.is_none_or(|r| indent < r)
        {
            if rules_key_indent.is_some_and(|k| indent > k) {
                // A rule item at the rules key's indentation or deeper.
            } else {
                group_indent = Some(indent);
                out.push((n, vec![]));
                rules_key_indent = None;
                rule_indent = None;
                let after = trimmed.trim_start_matches('-').trim_start();
                if after.starts_with("rules:") {
                    rules_key_indent = Some(indent + (trimmed.len() - after.len()));
                }
                continue;
            }
        }
        let key = if item {
            trimmed.trim_start_matches('-').trim_start()
        } else {
            trimmed
        };
        if !item && key.starts_with("rules:") && group_indent.is_some_and(|g| indent > g) {
            rules_key_indent = Some(indent);
            rule_indent = None;
            continue;
        }
        if item
            && let Some(k) = rules_key_indent
            && indent >= k
            && rule_indent.is_none_or(|r| r == indent)
        {
            rule_indent = Some(indent);
            if let Some((_, rules)) = out.last_mut() {
                rules.push(n);
            }
        }
    }
    out
}

/// Prometheus's duration syntax (`1h30m`, `5m`, `250ms`, `1d`, `1w`, `1y`, `0`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut total: u128 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u128 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms: u128 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(n.checked_mul(ms)?)?;
    }
    u64::try_from(total).ok().map(Duration::from_millis)
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Prometheus 3 accepts any valid UTF-8 label name but the empty one.
fn invalid_label_name(name: &str) -> Option<String> {
    name.is_empty()
        .then(|| "invalid label name: \"\"".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<RuleFile, Vec<String>> {
        parse("rules.yml", text, ParseOptions::default())
            .map_err(|e| e.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_good_file_parses_with_lines() {
        let text = "groups:\n  - name: a\n    interval: 30s\n    rules:\n      - alert: Up\n        expr: up == 0\n        for: 5m\n        labels: {severity: page}\n        annotations:\n          summary: \"{{ $labels.instance }} down\"\n\n      # a comment\n      - record: job:up:sum\n        expr: sum by (job) (up)\n  - name: b\n    rules:\n      - record: x\n        expr: 1\n";
        let f = check(text).unwrap();
        assert_eq!(f.groups.len(), 2);
        assert_eq!(f.groups[0].line, 2);
        assert_eq!(f.groups[0].interval, Some(Duration::from_secs(30)));
        let lines: Vec<usize> = f.groups[0].rules.iter().map(|r| r.line).collect();
        assert_eq!(lines, [5, 13]);
        assert_eq!(f.groups[1].line, 15);
        assert_eq!(f.groups[1].rules[0].line, 17);
        assert!(
            matches!(&f.groups[0].rules[0].kind, RuleKind::Alert { for_, .. } if *for_ == Duration::from_secs(300))
        );
        assert_eq!(f.groups[1].rules[0].expr, "1");
    }

    #[test]
    fn problems_are_named_by_line_group_and_rule() {
        let e = check(
            "groups:\n  - name: yolo\n    rules:\n      - record: yolo\n        expr: rate(hi)\n",
        )
        .unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with(
                "rules.yml:4: group \"yolo\", rule 1, \"yolo\": could not parse expression:"
            ),
            "{e:?}"
        );
        let e = check("groups:\n  - name: yolo\n    rules:\n      - record: Hello\n        expr: 1\n        for: 1m\n").unwrap_err();
        assert_eq!(
            e,
            [
                "rules.yml:4: group \"yolo\", rule 1, \"Hello\": invalid field 'for' in recording rule"
            ]
        );
        let e =
            check("groups:\n  - name: a\n    rules: []\n  - name: a\n    rules: []\n").unwrap_err();
        assert_eq!(
            e,
            ["rules.yml:4: groupname: \"a\" is repeated in the same file"]
        );
        let e = check("groups:\n  - name: invalid\n    rules:\n      - record: x\n        expr: 1\n        unexpected_field: y\n").unwrap_err();
        assert_eq!(
            e,
            ["rules.yml:6: field unexpected_field not found in type rulefmt.Rule"]
        );
    }

    #[test]
    fn bad_templates_are_named_with_their_annotation() {
        let e = check("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        annotations:\n          summary: '{{ humanizeX $value }}'\n").unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("rules.yml:4: group \"g\", rule 1, \"A\": annotation \"summary\": template: __alert_A:1:"),
            "{e:?}"
        );
        assert!(e[0].contains("function \"humanizeX\" not defined"), "{e:?}");
    }

    #[test]
    fn unknown_fields_can_be_ignored() {
        let text = "groups:\n  - name: a\n    namespace: foo\n    rules:\n      - alert: A\n        expr: 1\n        owner: me\n";
        assert!(check(text).is_err());
        let f = parse(
            "r.yml",
            text,
            ParseOptions {
                ignore_unknown_fields: true,
                ..ParseOptions::default()
            },
        )
        .unwrap();
        assert_eq!(f.groups[0].rules.len(), 1);
    }

    #[test]
    fn durations_are_prometheus_durations() {
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("m"), None);
    }

    #[test]
    fn logql_rule_files_need_metric_queries() {
        let logql = ParseOptions {
            logql: true,
            ..ParseOptions::default()
        };
        let good = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: 'sum(rate({app=\"x\"} |= \"error\" [5m])) > 1'\n";
        assert!(parse("l.yml", good, logql).is_ok());
        assert!(
            parse("l.yml", good, ParseOptions::default()).is_err(),
            "not PromQL"
        );
        let log_query =
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: '{app=\"x\"}'\n";
        let errors = parse("l.yml", log_query, logql).unwrap_err();
        assert!(
            errors[0].to_string().contains("metric query"),
            "{}",
            errors[0]
        );
    }

    /// Every rule file of the shared conformance set: accepted or refused as upstream's own
    /// tests expect (`MANIFEST.md`).
    #[test]
    fn upstream_rule_files_are_accepted_or_refused_as_upstream_expects() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/datasets/alerting/prometheus");
        let root = if root.exists() {
            root
        } else {
            std::path::PathBuf::from("/work/shared/datasets/alerting/prometheus")
        };
        if !root.exists() {
            eprintln!("no {}: skipped", root.display());
            return;
        }
        let good = [
            "cmd/promtool/testdata/rules.yml",
            "cmd/promtool/testdata/at-modifier.yml",
            "cmd/promtool/testdata/prometheus-rules.lint.yml",
            "cmd/promtool/testdata/rules_duplicates.yml",
            "rules/fixtures/rules.yaml",
            "rules/fixtures/rules1.yaml",
            "rules/fixtures/rules2.yaml",
            "rules/fixtures/rules2_copy.yaml",
            "rules/fixtures/rules_chain.yaml",
            "rules/fixtures/rules_dependencies.yaml",
            "rules/fixtures/rules_multi_doc.yaml",
            "rules/fixtures/rules_multiple_dependents_on_base.yaml",
            "rules/fixtures/rules_multiple_independent.yaml",
            "model/rulefmt/testdata/legacy_validation_annotation.good.yaml",
            "model/rulefmt/testdata/test.yaml",
            "model/rulefmt/testdata/utf-8_annotation.good.yaml",
        ];
        let bad = [
            "cmd/promtool/testdata/bad-rules-syntax.yml",
            "cmd/promtool/testdata/rules_extrafields.yml",
            "rules/fixtures/invalid_rules.yaml",
            "model/rulefmt/testdata/bad_expr.bad.yaml",
            "model/rulefmt/testdata/bad_field.bad.yaml",
            "model/rulefmt/testdata/invalid_record_name.bad.yaml",
            "model/rulefmt/testdata/no_rec_alert.bad.yaml",
            "model/rulefmt/testdata/noexpr.bad.yaml",
            "model/rulefmt/testdata/record_and_alert.bad.yaml",
            "model/rulefmt/testdata/record_and_for.bad.yaml",
        ];
        let run = |p: &str| {
            let text = std::fs::read_to_string(root.join(p)).unwrap();
            parse(p, &text, ParseOptions::default())
        };
        for p in good {
            if let Err(e) = run(p) {
                panic!("{p} refused: {e:?}");
            }
        }
        for p in bad {
            let e = run(p).expect_err(p);
            eprintln!("{p}: {}", e[0]);
        }
        // With promtool's --ignore-unknown-fields the extra fields pass.
        let text =
            std::fs::read_to_string(root.join("cmd/promtool/testdata/rules_extrafields.yml"))
                .unwrap();
        parse(
            "rules_extrafields.yml",
            &text,
            ParseOptions {
                ignore_unknown_fields: true,
                ..ParseOptions::default()
            },
        )
        .unwrap();
    }
}
