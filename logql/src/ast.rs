//! The syntax tree of the supported LogQL subset.
//!
//! Regexes are compiled once, when the tree is built, so that evaluation never fails on them
//! and never recompiles per entry. Equality of nodes compares the query text's meaning (names,
//! operators, values), not the compiled regexes. Label matchers and line filters are the
//! log store's own types ([`sightline_model::LabelMatcher`], [`sightline_model::LineFilter`]):
//! the selector and the leading line filters are handed to the store as they are.

use sightline_model::{LabelMatcher, Labels, LineFilter};

/// A whole query: either a log query (returns lines) or a metric query (returns numbers).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Returns log lines, grouped into streams.
    Log(LogExpr),
    /// Returns numbers over time.
    Metric(MetricExpr),
}

/// A stream selector followed by pipeline stages: `{app="api"} |= "error" | json`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogExpr {
    /// The selector's matchers; at least one of them does not match the empty value.
    pub matchers: Vec<LabelMatcher>,
    /// The pipeline, applied in order to every selected entry.
    pub stages: Vec<Stage>,
}

impl LogExpr {
    /// The line filters a store may use as a prefilter: those before the first other stage.
    /// Later ones may apply to a line rewritten by `line_format`, so they stay in the engine.
    pub fn pushdown_line_filters(&self) -> Vec<LineFilter> {
        self.stages
            .iter()
            .map_while(|stage| match stage {
                Stage::LineFilter(filter) => Some(filter.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether every stage is a line filter (so the pipeline never changes labels or lines).
    pub fn has_only_line_filters(&self) -> bool {
        self.stages
            .iter()
            .all(|stage| matches!(stage, Stage::LineFilter(_)))
    }

    /// Whether a stream's labels satisfy every matcher of the selector.
    pub fn matches_stream(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| m.matches_labels(labels))
    }
}

/// One stage of a log pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// `|= "x"` and friends.
    LineFilter(LineFilter),
    /// `| json`: extract every scalar field, nested objects flattened with `_`.
    Json,
    /// `| logfmt`: extract `key=value` pairs.
    Logfmt,
    /// `| label filter expression`.
    LabelFilter(LabelFilter),
    /// `| line_format "…"`.
    LineFormat(LineTemplate),
}

/// A comparison for numeric and duration label filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumericOp {
    /// `=` or `==`
    Eq,
    /// `!=`
    Neq,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

impl NumericOp {
    /// Applies the comparison `left op right`.
    pub fn compare(self, left: f64, right: f64) -> bool {
        match self {
            NumericOp::Eq => left == right,
            NumericOp::Neq => left != right,
            NumericOp::Gt => left > right,
            NumericOp::Ge => left >= right,
            NumericOp::Lt => left < right,
            NumericOp::Le => left <= right,
        }
    }
}

/// A label filter expression: `| status >= 500 and method = "GET"`.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelFilter {
    /// Both hold (`and`, `,` or juxtaposition); binds tighter than `or`.
    And(Box<LabelFilter>, Box<LabelFilter>),
    /// Either holds.
    Or(Box<LabelFilter>, Box<LabelFilter>),
    /// `name =|!=|=~|!~ "value"`: an absent label counts as empty.
    String(LabelMatcher),
    /// `name op 42.5`: the label value is parsed as a float.
    Number {
        /// The label compared.
        name: String,
        op: NumericOp,
        value: f64,
    },
    /// `name op 250ms`: the label value is parsed as a duration; compared in seconds.
    Duration {
        /// The label compared.
        name: String,
        op: NumericOp,
        seconds: f64,
    },
}

/// A `line_format` template. Only `{{.name}}` / `{{ .name }}` substitutions are supported,
/// not Go's full template language (no functions, pipelines, conditionals or `__line__`).
#[derive(Debug, Clone, PartialEq)]
pub struct LineTemplate {
    /// The template as written in the query.
    pub source: String,
    parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq)]
enum TemplatePart {
    Text(String),
    Label(String),
}

impl LineTemplate {
    /// Parses a template; the error names the unsupported action.
    pub fn parse(source: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(TemplatePart::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| "line_format template has an unclosed action {{".to_string())?;
            let action = after[..close].trim();
            let name = action
                .strip_prefix('.')
                .filter(|name| sightline_model::is_valid_label_name(name))
                .ok_or_else(|| {
                    format!(
                        "line_format action {{{{{}}}}} is not supported; only {{{{.label}}}} substitution is",
                        &after[..close]
                    )
                })?;
            parts.push(TemplatePart::Label(name.to_string()));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Text(rest.to_string()));
        }
        Ok(Self {
            source: source.to_string(),
            parts,
        })
    }

    /// Renders the template; a label `lookup` does not find renders as the empty string.
    pub fn render<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
        let mut out = String::with_capacity(self.source.len() + 32);
        for part in &self.parts {
            match part {
                TemplatePart::Text(text) => out.push_str(text),
                TemplatePart::Label(name) => out.push_str(lookup(name).unwrap_or("")),
            }
        }
        out
    }
}

/// A metric query.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricExpr {
    /// A function over log entries in a sliding window.
    Range(RangeAggregation),
    /// An aggregation across the series of an inner metric expression.
    Vector(VectorAggregation),
    /// `left op right`. The parser folds an operation between two literals into one literal,
    /// as Loki does, so at least one side of a parsed operation is not a literal.
    Binary(BinaryExpr),
    /// A number: a whole query (`1 + 1`), or one side of a binary operation. A literal
    /// query evaluates to one series without labels, with the value at every step.
    Literal(f64),
}

/// A binary operator, in Loki's (and Prometheus') precedence classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `or`: the left side, plus the right side's series that match none on the left.
    Or,
    /// `and`: the left side's series that match one on the right.
    And,
    /// `unless`: the left side's series that match none on the right.
    Unless,
    /// `==`
    Eq,
    /// `!=`
    Neq,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`: a zero divisor gives NaN, as in Loki (not ±Inf as in Prometheus).
    Div,
    /// `%`: a zero divisor gives NaN; the result has the sign of the dividend (Go's `math.Mod`).
    Mod,
    /// `^`: right-associative.
    Pow,
}

impl BinaryOp {
    /// The operator as written in a query.
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Unless => "unless",
            BinaryOp::Eq => "==",
            BinaryOp::Neq => "!=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
        }
    }

    /// Binding strength, 1 (`or`) to 6 (`^`); a higher one binds tighter.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And | BinaryOp::Unless => 2,
            BinaryOp::Eq
            | BinaryOp::Neq
            | BinaryOp::Gt
            | BinaryOp::Ge
            | BinaryOp::Lt
            | BinaryOp::Le => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => 5,
            BinaryOp::Pow => 6,
        }
    }

    /// Whether `a op b op c` is `a op (b op c)` (only `^`); the others associate to the left.
    pub fn is_right_associative(self) -> bool {
        self == BinaryOp::Pow
    }

    /// `and`, `or`, `unless`: they match series, never compute values.
    pub fn is_set_operator(self) -> bool {
        matches!(self, BinaryOp::Or | BinaryOp::And | BinaryOp::Unless)
    }

    /// `==`, `!=`, `>`, `>=`, `<`, `<=`: they filter, or with `bool` return 0 or 1.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq
                | BinaryOp::Neq
                | BinaryOp::Gt
                | BinaryOp::Ge
                | BinaryOp::Lt
                | BinaryOp::Le
        )
    }

    /// Applies an arithmetic or comparison operator to two values: a comparison gives 1.0 when
    /// it holds and 0.0 when not (how Loki folds `1 > 2`); a set operator gives `None`.
    /// Everything follows IEEE 754 (NaN compares unequal to everything, `NaN != x` holds)
    /// except a zero divisor of `/` and `%`, which gives NaN as in Loki.
    pub fn apply(self, left: f64, right: f64) -> Option<f64> {
        let holds = |b: bool| if b { 1.0 } else { 0.0 };
        Some(match self {
            BinaryOp::Add => left + right,
            BinaryOp::Sub => left - right,
            BinaryOp::Mul => left * right,
            BinaryOp::Div if right == 0.0 => f64::NAN,
            BinaryOp::Div => left / right,
            BinaryOp::Mod if right == 0.0 => f64::NAN,
            // Rust's `%` on floats is C's fmod, as Go's math.Mod: the sign of the dividend.
            BinaryOp::Mod => left % right,
            BinaryOp::Pow => left.powf(right),
            BinaryOp::Eq => holds(left == right),
            BinaryOp::Neq => holds(left != right),
            BinaryOp::Gt => holds(left > right),
            BinaryOp::Ge => holds(left >= right),
            BinaryOp::Lt => holds(left < right),
            BinaryOp::Le => holds(left <= right),
            BinaryOp::Or | BinaryOp::And | BinaryOp::Unless => return None,
        })
    }
}

/// Which side of a vector-to-vector operation may have several series per match group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cardinality {
    /// Each series matches at most one on the other side (the default).
    #[default]
    OneToOne,
    /// `group_left`: many on the left to one on the right.
    ManyToOne,
    /// `group_right`: one on the left to many on the right.
    OneToMany,
}

/// How the series of the two sides of a binary operation are paired: by all their labels
/// (the default), `on (a, b)` only the listed ones, or `ignoring (a, b)` all but the listed
/// ones; with `group_left`/`group_right` for many-to-one matching.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VectorMatching {
    /// True for `on`, false for `ignoring` or no modifier.
    pub on: bool,
    /// The labels listed in `on (…)` or `ignoring (…)`.
    pub labels: Vec<String>,
    pub card: Cardinality,
    /// The labels listed in `group_left (…)` / `group_right (…)`: copied onto each result
    /// from the "one" side's series (removed where that series lacks them).
    pub include: Vec<String>,
}

impl VectorMatching {
    /// The labels a series is matched by: its match group.
    pub fn signature(&self, labels: &Labels) -> Labels {
        Labels::from_pairs(
            labels
                .iter()
                .filter(|(name, _)| self.labels.iter().any(|l| l == name) == self.on),
        )
    }

    /// The labels of the result of an arithmetic or comparison operation between `many` and
    /// `one` (for one-to-one matching, the left and the right series): one-to-one keeps the
    /// `on` labels or drops the `ignoring` ones; group_left/group_right keep all the labels
    /// of the "many" side. The `group_…(…)` labels are then taken from the "one" side.
    pub fn result_labels(&self, many: &Labels, one: &Labels) -> Labels {
        let kept = many.iter().filter(|(name, _)| {
            self.card != Cardinality::OneToOne || self.labels.iter().any(|l| l == name) == self.on
        });
        if self.include.is_empty() {
            return Labels::from_pairs(kept);
        }
        let included = |name: &str| self.include.iter().any(|l| l == name);
        Labels::from_pairs(
            kept.filter(|(name, _)| !included(name))
                .chain(one.iter().filter(|(name, _)| included(name))),
        )
    }
}

/// `left op [bool] [on|ignoring (…) [group_left|group_right [(…)]]] right`.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryExpr {
    pub op: BinaryOp,
    /// `bool`: a comparison returns 0 or 1 instead of filtering. Accepted (and without
    /// effect) on other operators, as Loki accepts it.
    pub return_bool: bool,
    /// Vector matching; ignored where a side is a literal, as in Loki.
    pub matching: VectorMatching,
    pub left: Box<MetricExpr>,
    pub right: Box<MetricExpr>,
}

/// A function over a range of log entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOp {
    /// `count_over_time`: entries in the window.
    CountOverTime,
    /// `rate`: entries in the window per second.
    Rate,
    /// `bytes_over_time`: line bytes in the window.
    BytesOverTime,
    /// `bytes_rate`: line bytes in the window per second.
    BytesRate,
}

impl RangeOp {
    /// The function name as written in a query.
    pub fn name(self) -> &'static str {
        match self {
            RangeOp::CountOverTime => "count_over_time",
            RangeOp::Rate => "rate",
            RangeOp::BytesOverTime => "bytes_over_time",
            RangeOp::BytesRate => "bytes_rate",
        }
    }

    /// Whether the function needs the lines (their sizes), not just the timestamps.
    pub fn needs_lines(self) -> bool {
        matches!(self, RangeOp::BytesOverTime | RangeOp::BytesRate)
    }
}

/// `count_over_time({app="api"} |= "error" [5m] offset 1h)`.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeAggregation {
    pub op: RangeOp,
    /// The log query whose entries are counted.
    pub log: LogExpr,
    /// The window length, > 0.
    pub range_ns: i64,
    /// How far the window is shifted into the past (0 without `offset`).
    pub offset_ns: i64,
}

/// An aggregation across series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorOp {
    /// Sum, avg, min, max and count of the group's values at each step.
    Sum,
    Avg,
    Min,
    Max,
    Count,
    /// `topk(k, …)`: the k largest series of each group, at each step.
    Topk(usize),
    /// `bottomk(k, …)`: the k smallest series of each group, at each step.
    Bottomk(usize),
}

/// `by (a, b)` or `without (a, b)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    /// True for `without`: group by every label except the listed ones.
    pub without: bool,
    /// The label names listed.
    pub labels: Vec<String>,
}

impl Grouping {
    /// The group a series with `labels` belongs to.
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        Labels::from_pairs(
            labels
                .iter()
                .filter(|(name, _)| self.labels.iter().any(|l| l == name) != self.without),
        )
    }
}

/// `sum by (service_name) (rate(…))`.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorAggregation {
    pub op: VectorOp,
    /// `None` aggregates everything into one group (for topk/bottomk: one ranking).
    pub grouping: Option<Grouping>,
    /// The expression aggregated.
    pub inner: Box<MetricExpr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_substitute_labels_only() {
        let t = LineTemplate::parse("{{.level}}: {{ .msg }} ({{.missing}})").unwrap();
        let labels = Labels::from_pairs([("level", "warn"), ("msg", "disk full")]);
        assert_eq!(t.render(|n| labels.get(n)), "warn: disk full ()");
        assert!(LineTemplate::parse("{{ .a | upper }}").is_err());
        assert!(LineTemplate::parse("{{if .a}}x{{end}}").is_err());
        assert!(LineTemplate::parse("oops {{.a").is_err());
        assert_eq!(
            LineTemplate::parse("plain }} text")
                .unwrap()
                .render(|_| None),
            "plain }} text"
        );
    }

    #[test]
    fn grouping_keeps_or_drops_the_listed_labels() {
        let labels = Labels::from_pairs([("a", "1"), ("b", "2"), ("c", "3")]);
        let by = Grouping {
            without: false,
            labels: vec!["a".into(), "c".into()],
        };
        assert_eq!(
            by.group_labels(&labels),
            Labels::from_pairs([("a", "1"), ("c", "3")])
        );
        let without = Grouping {
            without: true,
            labels: vec!["a".into()],
        };
        assert_eq!(
            without.group_labels(&labels),
            Labels::from_pairs([("b", "2"), ("c", "3")])
        );
    }
}
