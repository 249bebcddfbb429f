//! Alerting: Prometheus rule files, their evaluation, and the alert manager (issue 14;
//! being built).
//!
//! * [`alertmanager`]: Alertmanager's configuration, routing, silences, inhibition and
//!   notifications.
//! * [`eval`]: rule evaluation with Prometheus's semantics: recording rules, alerts pending →
//!   firing → resolved with `for` and `keep_firing_for`, `ALERTS` / `ALERTS_FOR_STATE`.
//! * [`rulefmt`]: Prometheus's rule-file format, parsed and checked as `promtool check
//!   rules` does, problems named by file, line, group and rule — templates included.
//! * [`slo`]: SLO specs compiled into the multi-window, multi-burn-rate alerts of the Google
//!   SRE workbook and their recording rules.
//! * [`template`]: the part of Go's `text/template` that Prometheus alerting rules and
//!   Alertmanager notification templates use, with their function libraries, so rule files
//!   and `.tmpl` files written for Prometheus render the same text here. It owns no I/O and
//!   no clock beyond what template functions (`since`, `tz "Local"`) read, and never lets
//!   one template hang or exhaust the process: execution is bounded by [`Limits`].
//! * [`unittest`]: rule unit tests in `promtool test rules`'s format, run with its semantics
//!   (step-by-step evaluation, firing alerts and query results compared at `eval_time`) and
//!   reported in its words.

pub mod alertmanager;
pub mod eval;
pub mod rulefmt;
pub mod slo;
pub mod template;
pub mod unittest;

pub use template::{
    AlertTemplateData, Funcs, Limits, MissingKey, PrometheusFuncsConfig, QueryEngine, QuerySample,
    Template, TemplateError, Value, alertmanager_funcs, expand_alert_template, prometheus_funcs,
};
