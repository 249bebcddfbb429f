//! Alerting for Sightline: today the template engine that alert annotations, alert
//! labels and notification texts are expanded with.
//!
//! The engine implements the part of Go's `text/template` that Prometheus alerting rules
//! and Alertmanager notification templates use, with their function libraries, so rule
//! files and `.tmpl` files written for Prometheus render the same text here. It owns no
//! I/O and no clock beyond what template functions (`since`, `tz "Local"`) read, and must
//! never let one template hang or exhaust the process: execution is bounded by [`Limits`].

pub mod template;

pub use template::{
    AlertTemplateData, Funcs, Limits, MissingKey, PrometheusFuncsConfig, QueryEngine, QuerySample,
    Template, TemplateError, Value, alertmanager_funcs, expand_alert_template, prometheus_funcs,
};
