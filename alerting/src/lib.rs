//! Alerting: Prometheus rule files, their evaluation, and the alert manager (issue 14).
//!
//! * [`rulefmt`]: Prometheus's rule-file format, parsed and checked as `promtool check
//!   rules` does, problems named by file, line, group and rule.

pub mod rulefmt;
