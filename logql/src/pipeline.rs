//! Runs a log pipeline (line filters, parsers, label filters, `line_format`) on one entry.
//!
//! Semantics follow Loki:
//! - `json` flattens nested objects with `_` (`{"a":{"b":1}}` → `a_b="1"`), skips arrays and
//!   nulls; `logfmt` takes `key=value` and `key="quoted value"` pairs.
//! - Extracted names are sanitized to `[a-zA-Z0-9_]`; a name that collides with a stream
//!   label or a metadata name gets the suffix `_extracted`.
//! - A parser failure adds `__error__="JSONParserErr"` / `"LogfmtParserErr"` and the entry
//!   goes on (filter it out with `| __error__=""`). A numeric or duration label filter on a
//!   value that does not parse adds `__error__="LabelFilterErr"` and lets the entry through;
//!   on an absent label it drops the entry; once an entry has an error, numeric filters let
//!   it through so that only string filters (on `__error__`) decide.
//! - Label filters and `line_format` see stream labels, extracted labels and structured
//!   metadata. Metadata is not part of the result labels: it would split every stream into
//!   one series per distinct value (our documented choice).
//!
//! The result labels are `None` when the pipeline added none, so that pipelines made of line
//! filters and label filters never allocate labels per line.

use std::borrow::Cow;

use sightline_model::Labels;

use crate::ast::{LabelFilter, Stage};
use crate::duration::parse_duration_ns;

/// The label that carries a pipeline error.
pub const ERROR_LABEL: &str = "__error__";
/// `__error__` value when `| json` cannot parse a line as a JSON object.
pub const JSON_PARSER_ERROR: &str = "JSONParserErr";
/// `__error__` value when `| logfmt` cannot parse a line.
pub const LOGFMT_PARSER_ERROR: &str = "LogfmtParserErr";
/// `__error__` value when a numeric/duration label filter meets a value that does not parse.
pub const LABEL_FILTER_ERROR: &str = "LabelFilterErr";

/// A compiled view of a log expression's stages, reusable for every entry of a query.
#[derive(Debug, Clone, Copy)]
pub struct Pipeline<'a> {
    stages: &'a [Stage],
    only_line_filters: bool,
}

/// What a pipeline made of an entry it kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed<'l> {
    /// The line, rewritten only by `line_format`.
    pub line: Cow<'l, str>,
    /// The result labels, or `None` when they equal the stream labels.
    pub labels: Option<Labels>,
}

impl Processed<'_> {
    /// The line and the full result labels, owned.
    pub fn into_owned(self, stream: &Labels) -> (String, Labels) {
        let labels = self.labels.unwrap_or_else(|| stream.clone());
        (self.line.into_owned(), labels)
    }
}

impl<'a> Pipeline<'a> {
    /// A pipeline running `stages` in order.
    pub fn new(stages: &'a [Stage]) -> Self {
        Self {
            stages,
            only_line_filters: stages.iter().all(|s| matches!(s, Stage::LineFilter(_))),
        }
    }

    /// True when there are no stages at all.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// True when every stage is a line filter: lines and labels come out unchanged.
    pub fn only_line_filters(&self) -> bool {
        self.only_line_filters
    }

    /// Runs the pipeline on one entry: `None` when the entry is filtered out.
    pub fn process<'l>(
        &self,
        line: &'l str,
        stream: &Labels,
        metadata: &[(String, String)],
    ) -> Option<Processed<'l>> {
        if self.only_line_filters {
            let keep = self.stages.iter().all(|stage| match stage {
                Stage::LineFilter(filter) => filter.matches(line),
                _ => true,
            });
            return keep.then_some(Processed {
                line: Cow::Borrowed(line),
                labels: None,
            });
        }
        let mut state = EntryState {
            line: Cow::Borrowed(line),
            stream,
            metadata,
            extracted: Vec::new(),
            error: None,
        };
        for stage in self.stages {
            match stage {
                Stage::LineFilter(filter) => {
                    if !filter.matches(&state.line) {
                        return None;
                    }
                }
                Stage::Json => {
                    let line = state.line.clone();
                    if extract_json(&line, &mut |k, v| state.add_extracted(k, v)).is_err() {
                        state.set_error(JSON_PARSER_ERROR);
                    }
                }
                Stage::Logfmt => {
                    let line = state.line.clone();
                    if extract_logfmt(&line, &mut |k, v| state.add_extracted(k, v)).is_err() {
                        state.set_error(LOGFMT_PARSER_ERROR);
                    }
                }
                Stage::LabelFilter(filter) => {
                    let mut new_error = None;
                    if !state.filter(filter, &mut new_error) {
                        return None;
                    }
                    if let Some(error) = new_error {
                        state.set_error(error);
                    }
                }
                Stage::LineFormat(template) => {
                    let rendered = template.render(|name| state.get(name));
                    state.line = Cow::Owned(rendered);
                }
            }
        }
        let labels = (!state.extracted.is_empty() || state.error.is_some()).then(|| {
            let stream_pairs = stream.iter().map(|(k, v)| (k.to_string(), v.to_string()));
            let error = state
                .error
                .map(|e| (ERROR_LABEL.to_string(), e.to_string()));
            Labels::from_pairs(stream_pairs.chain(state.extracted).chain(error))
        });
        Some(Processed {
            line: state.line,
            labels,
        })
    }

    /// [`Pipeline::process`] with owned results: the line and the full result labels.
    pub fn process_owned(
        &self,
        line: &str,
        stream: &Labels,
        metadata: &[(String, String)],
    ) -> Option<(String, Labels)> {
        self.process(line, stream, metadata)
            .map(|p| p.into_owned(stream))
    }
}

/// The labels visible while one entry goes through the stages.
struct EntryState<'l, 's> {
    line: Cow<'l, str>,
    stream: &'s Labels,
    metadata: &'s [(String, String)],
    /// Labels added by parsers, names unique.
    extracted: Vec<(String, String)>,
    /// The first error met; Loki reports one error per entry.
    error: Option<&'static str>,
}

impl EntryState<'_, '_> {
    /// Looks a label up: `__error__`, then extracted, stream and metadata names.
    fn get(&self, name: &str) -> Option<&str> {
        if name == ERROR_LABEL {
            return self.error;
        }
        self.extracted
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .or_else(|| self.stream.get(name))
            .or_else(|| {
                self.metadata
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            })
    }

    fn set_error(&mut self, error: &'static str) {
        self.error.get_or_insert(error);
    }

    fn add_extracted(&mut self, raw_name: &str, value: String) {
        let mut name = sanitize_label_name(raw_name);
        if name.is_empty() || name == ERROR_LABEL {
            return;
        }
        let collides =
            self.stream.get(&name).is_some() || self.metadata.iter().any(|(k, _)| *k == name);
        if collides {
            name.push_str("_extracted");
        }
        match self.extracted.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.extracted.push((name, value)),
        }
    }

    /// Evaluates a label filter; a numeric filter that cannot parse a value reports
    /// `LabelFilterErr` through `new_error` and keeps the entry.
    fn filter(&self, filter: &LabelFilter, new_error: &mut Option<&'static str>) -> bool {
        match filter {
            LabelFilter::And(left, right) => {
                self.filter(left, new_error) && self.filter(right, new_error)
            }
            LabelFilter::Or(left, right) => {
                self.filter(left, new_error) || self.filter(right, new_error)
            }
            LabelFilter::String(matcher) => matcher.matches(self.get(&matcher.name).unwrap_or("")),
            LabelFilter::Number { name, op, value } => self.compare(
                name,
                new_error,
                |v| v.trim().parse::<f64>().ok(),
                |v| op.compare(v, *value),
            ),
            LabelFilter::Duration { name, op, seconds } => self.compare(
                name,
                new_error,
                |v| parse_duration_ns(v.trim()).map(|ns| ns as f64 / 1e9),
                |v| op.compare(v, *seconds),
            ),
        }
    }

    fn compare(
        &self,
        name: &str,
        new_error: &mut Option<&'static str>,
        parse: impl Fn(&str) -> Option<f64>,
        test: impl Fn(f64) -> bool,
    ) -> bool {
        if self.error.is_some() || new_error.is_some() {
            return true;
        }
        let Some(raw) = self.get(name) else {
            return false;
        };
        match parse(raw) {
            Some(value) => test(value),
            None => {
                *new_error = Some(LABEL_FILTER_ERROR);
                true
            }
        }
    }
}

/// Maps a parsed key to a label name like Loki: trim, every character outside
/// `[a-zA-Z0-9_]` becomes `_`, a leading digit gets a `_` prefix.
fn sanitize_label_name(key: &str) -> String {
    let key = key.trim();
    if key.is_empty() {
        return String::new();
    }
    sightline_model::attribute_to_label_name(key)
}

/// Calls `sink` for every scalar of a JSON object, nested names joined with `_`.
fn extract_json(line: &str, sink: &mut dyn FnMut(&str, String)) -> Result<(), ()> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(line).map_err(|_| ())?;
    flatten_json("", &object, sink);
    Ok(())
}

fn flatten_json(
    prefix: &str,
    object: &serde_json::Map<String, serde_json::Value>,
    sink: &mut dyn FnMut(&str, String),
) {
    use serde_json::Value;
    for (key, value) in object {
        let key = key.trim();
        if key.is_empty() {
            continue;
        }
        let name = if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}_{key}")
        };
        match value {
            Value::Object(nested) => flatten_json(&name, nested, sink),
            Value::String(s) => sink(&name, s.clone()),
            Value::Number(n) => sink(&name, n.to_string()),
            Value::Bool(b) => sink(&name, b.to_string()),
            // Loki skips arrays without explicit json expressions, and null has no value.
            Value::Array(_) | Value::Null => {}
        }
    }
}

/// Calls `sink` for every `key=value` pair of a logfmt line. Bare keys (no `=`) carry no
/// value and are skipped. Fails on an empty key, a stray quote or `=`, or an unterminated
/// quoted value; pairs before the failure are kept, as Loki does.
fn extract_logfmt(line: &str, sink: &mut dyn FnMut(&str, String)) -> Result<(), ()> {
    let bytes = line.as_bytes();
    let mut i = 0;
    // Slicing happens only at ASCII bytes, which are always char boundaries.
    loop {
        while i < bytes.len() && bytes[i] <= b' ' {
            i += 1;
        }
        if i == bytes.len() {
            return Ok(());
        }
        let key_start = i;
        while i < bytes.len() && bytes[i] > b' ' && bytes[i] != b'=' && bytes[i] != b'"' {
            i += 1;
        }
        if i == key_start || bytes.get(i) == Some(&b'"') {
            return Err(());
        }
        let key = &line[key_start..i];
        if bytes.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        let value = if bytes.get(i) == Some(&b'"') {
            let (value, end) = unquote_logfmt(line, i + 1).ok_or(())?;
            i = end;
            value
        } else {
            let value_start = i;
            while i < bytes.len() && bytes[i] > b' ' {
                if bytes[i] == b'"' || bytes[i] == b'=' {
                    return Err(());
                }
                i += 1;
            }
            line[value_start..i].to_string()
        };
        sink(key, value);
    }
}

/// Decodes a quoted logfmt value starting after its opening quote; returns the value and the
/// index after the closing quote.
fn unquote_logfmt(line: &str, start: usize) -> Option<(String, usize)> {
    let mut value = String::new();
    let mut chars = line[start..].char_indices();
    while let Some((offset, c)) = chars.next() {
        match c {
            '"' => return Some((value, start + offset + 1)),
            '\\' => {
                let (_, escaped) = chars.next()?;
                value.push(match escaped {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'b' => '\x08',
                    'f' => '\x0c',
                    'u' => {
                        let hex: String = (0..4)
                            .filter_map(|_| chars.next().map(|(_, h)| h))
                            .collect();
                        char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
                    }
                    other => other,
                });
            }
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{Expr, LogExpr};
    use crate::parser::parse;

    fn log_expr(query: &str) -> LogExpr {
        match parse(query).unwrap() {
            Expr::Log(log) => log,
            Expr::Metric(_) => panic!("not a log query: {query}"),
        }
    }

    fn run(query: &str, line: &str, stream: &Labels) -> Option<(String, Labels)> {
        let log = log_expr(query);
        Pipeline::new(&log.stages).process_owned(line, stream, &[])
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn line_filters_keep_labels_borrowed() {
        let log = log_expr(r#"{app="a"} |= "err" !~ "timeout|retry""#);
        let pipeline = Pipeline::new(&log.stages);
        assert!(pipeline.only_line_filters());
        let stream = labels(&[("app", "a")]);
        let kept = pipeline.process("an err", &stream, &[]).unwrap();
        assert!(matches!(kept.line, Cow::Borrowed("an err")));
        assert_eq!(kept.labels, None);
        assert!(pipeline.process("err: timeout", &stream, &[]).is_none());
        assert!(pipeline.process("fine", &stream, &[]).is_none());
    }

    #[test]
    fn json_flattens_nested_objects_and_renames_collisions() {
        let stream = labels(&[("app", "a"), ("level", "info")]);
        let line = r#"{"a":{"b":1,"c":{"d":true}},"level":"error","http.status":503,"list":[1],"n":null,"9x":"y"}"#;
        let (out_line, out) = run(r#"{app="a"} | json"#, line, &stream).unwrap();
        assert_eq!(out_line, line);
        assert_eq!(
            out,
            labels(&[
                ("app", "a"),
                ("level", "info"),
                ("a_b", "1"),
                ("a_c_d", "true"),
                ("level_extracted", "error"),
                ("http_status", "503"),
                ("_9x", "y"),
            ])
        );
    }

    #[test]
    fn parser_errors_are_labels_and_entries_survive() {
        let stream = labels(&[("app", "a")]);
        let (_, out) = run(r#"{app="a"} | json"#, "not json", &stream).unwrap();
        assert_eq!(out.get(ERROR_LABEL), Some(JSON_PARSER_ERROR));
        assert!(run(r#"{app="a"} | json | __error__="""#, "not json", &stream).is_none());
        let (_, out) = run(r#"{app="a"} | logfmt"#, r#"a=1 b="open"#, &stream).unwrap();
        assert_eq!(out.get(ERROR_LABEL), Some(LOGFMT_PARSER_ERROR));
        assert_eq!(out.get("a"), Some("1"));
    }

    #[test]
    fn logfmt_reads_quoted_values_and_skips_bare_keys() {
        let stream = labels(&[("app", "a")]);
        let line = r#"level=warn msg="disk \"almost\" full" flag path=/var/log dur=1.5s app=x"#;
        let (_, out) = run(r#"{app="a"} | logfmt"#, line, &stream).unwrap();
        assert_eq!(out.get("level"), Some("warn"));
        assert_eq!(out.get("msg"), Some("disk \"almost\" full"));
        assert_eq!(out.get("flag"), None);
        assert_eq!(out.get("path"), Some("/var/log"));
        assert_eq!(out.get("app"), Some("a"));
        assert_eq!(out.get("app_extracted"), Some("x"));
        assert_eq!(out.get(ERROR_LABEL), None);
    }

    #[test]
    fn numeric_and_duration_filters_compare_values() {
        let stream = labels(&[("app", "a")]);
        let q = r#"{app="a"} | logfmt | status >= 500 and latency > 250ms"#;
        assert!(run(q, "status=503 latency=300ms", &stream).is_some());
        assert!(run(q, "status=503 latency=1.5s", &stream).is_some());
        assert!(run(q, "status=503 latency=250ms", &stream).is_none());
        assert!(run(q, "status=200 latency=2s", &stream).is_none());
        // Absent label: dropped. Unparseable: kept with LabelFilterErr.
        assert!(run(q, "latency=2s", &stream).is_none());
        let (_, out) = run(q, "status=abc latency=2s", &stream).unwrap();
        assert_eq!(out.get(ERROR_LABEL), Some(LABEL_FILTER_ERROR));
        let q = r#"{app="a"} | logfmt | status == 200 or status = 204"#;
        assert!(run(q, "status=204", &stream).is_some());
        assert!(run(q, "status=201", &stream).is_none());
    }

    #[test]
    fn string_filters_see_regex_parentheses_and_metadata() {
        let stream = labels(&[("app", "a")]);
        let q = r#"{app="a"} | json | (level=~"warn|error", path!~"/health.*") or user="root""#;
        assert!(run(q, r#"{"level":"error","path":"/api"}"#, &stream).is_some());
        assert!(run(q, r#"{"level":"error","path":"/healthz"}"#, &stream).is_none());
        assert!(run(q, r#"{"level":"errors","path":"/api"}"#, &stream).is_none());
        assert!(run(q, r#"{"level":"debug","user":"root"}"#, &stream).is_some());

        let log = log_expr(r#"{app="a"} | trace_id="abc" | line_format "{{.trace_id}} {{.app}}""#);
        let metadata = vec![("trace_id".to_string(), "abc".to_string())];
        let (line, out) = Pipeline::new(&log.stages)
            .process_owned("x", &stream, &metadata)
            .unwrap();
        assert_eq!(line, "abc a");
        assert_eq!(out, stream, "metadata is not part of the result labels");
    }

    #[test]
    fn line_format_rewrites_the_line_for_later_filters() {
        let stream = labels(&[("app", "a")]);
        let q = r#"{app="a"} | logfmt | line_format "{{.level}}: {{ .msg }}" |= "warn:""#;
        let (line, out) = run(q, r#"level=warn msg="hi there""#, &stream).unwrap();
        assert_eq!(line, "warn: hi there");
        assert_eq!(out.get("msg"), Some("hi there"));
        assert!(run(q, "level=info msg=x", &stream).is_none());
    }
}
