//! Go `text/template`, the subset Prometheus rules and Alertmanager notifications use.
//!
//! A [`Template`] is a set of named trees: the top level of each parsed text plus every
//! `{{define}}`/`{{block}}` in it, so Alertmanager's `default.tmpl` can be loaded once and
//! its templates executed by name. Functions are resolved at parse time from a [`Funcs`]
//! registry ([`prometheus_funcs`], [`alertmanager_funcs`], or the caller's own), methods on
//! data (`.Labels.SortedPairs`) through the same registry.
//!
//! Not supported: `call`, complex numbers, Go struct methods beyond those registered,
//! html/template contextual escaping, and the `tmpl` console function.

mod exec;
mod functions;
mod gofmt;
mod parse;
mod prometheus;
#[cfg(test)]
mod tests;
mod value;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use functions::{Arity, Funcs, Function, Method};
pub use gofmt::{
    format_duration, format_float_v, format_go_layout, format_time_default, quote, sprintf,
};
pub use prometheus::{
    ALERT_TEMPLATE_PREFIX, AlertTemplateData, PrometheusFuncsConfig, QueryEngine, QuerySample,
    alertmanager_funcs, expand_alert_template, humanize, humanize_duration, humanize_percentage,
    humanize_timestamp, humanize1024, parse_prometheus_duration, prometheus_funcs,
};
pub use value::Value;

use parse::{ParseContext, Tree};

/// A template that failed to parse or execute, in Go's message format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The text is not a valid template. Go reports only the line; the byte column
    /// (0-based, as in Go's execution errors) is added here.
    #[error("template: {name}:{line}:{column}: {message}")]
    Parse {
        name: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// Execution failed at a node, including when a limit was exceeded.
    #[error("template: {name}:{line}:{column}: executing \"{template}\" at <{node}>: {message}")]
    Execute {
        name: String,
        line: usize,
        column: usize,
        template: String,
        node: String,
        message: String,
    },
    /// `execute_template` was asked for a name the set does not define.
    #[error("template: no template {name:?} associated with template {parent:?}")]
    NotDefined { name: String, parent: String },
}

/// Bounds on one execution, so a hostile template fails instead of hanging or
/// exhausting memory or stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_output_bytes: usize,
    /// Nodes executed plus range iterations.
    pub max_steps: u64,
    /// Nesting of `{{template}}` calls (Go allows 100000; recursion here is native stack).
    pub max_template_depth: usize,
    /// Size of any one value a function returns (strings in bytes, containers summed),
    /// so repeated doubling through variables cannot exhaust memory without output.
    pub max_value_bytes: usize,
    /// Wall-clock budget of one execution, checked at every step.
    pub max_duration: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_output_bytes: 1 << 20,
            max_steps: 1_000_000,
            max_template_depth: 100,
            max_value_bytes: 1 << 20,
            max_duration: Duration::from_secs(5),
        }
    }
}

/// What a field lookup on a map yields when the key is absent (Go's `missingkey` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingKey {
    /// Nil, printed as `<no value>`.
    #[default]
    Default,
    /// The empty string: Go's zero value for the `map[string]string` label sets that
    /// Prometheus templates over with `missingkey=zero`.
    Zero,
    /// An execution error `map has no entry for key "x"`.
    Error,
}

/// A parsed set of named templates, ready to execute against [`Value`] data.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    trees: HashMap<String, Arc<Tree>>,
    funcs: Funcs,
    limits: Limits,
    missing_key: MissingKey,
}

impl Template {
    /// Parses `text` as the template `name`, with the functions in `funcs`.
    pub fn parse(name: &str, text: &str, funcs: &Funcs) -> Result<Template, TemplateError> {
        let mut template = Template {
            name: name.to_owned(),
            trees: HashMap::new(),
            funcs: funcs.clone(),
            limits: Limits::default(),
            missing_key: MissingKey::default(),
        };
        template.add_parse(name, text)?;
        Ok(template)
    }

    /// Parses another text into the set (another template file); its `define`s replace
    /// same-named ones, and its top level becomes the template `name` unless it is empty.
    pub fn add_parse(&mut self, name: &str, text: &str) -> Result<(), TemplateError> {
        let is_function = |f: &str| self.funcs.contains(f);
        let (root, defines) = parse::build_trees(ParseContext {
            name,
            source: Arc::from(text),
            is_function: &is_function,
        })?;
        let root_is_empty = root
            .root
            .iter()
            .all(|n| matches!(n, parse::Node::Text(t) if t.trim().is_empty()));
        if !root_is_empty || !self.trees.contains_key(name) {
            self.trees.insert(name.to_owned(), root);
        }
        self.trees.extend(defines);
        Ok(())
    }

    /// Returns the template with other execution limits.
    pub fn with_limits(mut self, limits: Limits) -> Template {
        self.limits = limits;
        self
    }

    /// Returns the template with another missing-key behaviour.
    pub fn with_missing_key(mut self, missing_key: MissingKey) -> Template {
        self.missing_key = missing_key;
        self
    }

    /// Returns the name given at parse time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the names of all templates in the set, sorted.
    pub fn template_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.trees.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Executes the main template with `data` as dot and `$`.
    pub fn execute(&self, data: &Value) -> Result<String, TemplateError> {
        self.execute_template(&self.name, data)
    }

    /// Executes the named template of the set (a `define`) with `data`.
    pub fn execute_template(&self, name: &str, data: &Value) -> Result<String, TemplateError> {
        let tree = self
            .trees
            .get(name)
            .cloned()
            .ok_or_else(|| TemplateError::NotDefined {
                name: name.to_owned(),
                parent: self.name.clone(),
            })?;
        exec::Exec::new(self, tree, name, data).run(data)
    }
}
