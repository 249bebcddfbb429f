//! The alert manager, compatible with Prometheus's Alertmanager: its configuration file,
//! routing, grouping, silences, inhibition, notification log and notifications (issue 14;
//! being built).
//!
//! * [`alerts`]: alerts posted or resent, merged by fingerprint as Alertmanager merges them.
//! * [`config`]: the configuration file, checked as Alertmanager 0.34 checks it.
//! * [`data`]: what a notification carries: Alertmanager's template data, which is also
//!   the webhook payload (version 4).
//! * [`email`]: the email integration: `<email_config>` and the global `smtp_*` keys, the
//!   default notification templates, rendering and delivery over SMTP.
//! * [`dispatch`]: grouping, timers, muting and the notification log's decision to notify.
//! * [`inhibit`]: inhibition rules.
//! * [`integrations`]: receiver integrations Sightline does not deliver to (Slack,
//!   OpsGenie, …), checked for structure as Alertmanager checks them so a configuration
//!   written for Alertmanager is judged the same way.
//! * [`matchers`]: label matchers in both of Alertmanager's syntaxes.
//! * [`route`]: the routing tree: receivers, grouping and timers for an alert.
//! * [`silence`]: silences, created, updated and expired with Alertmanager's rules.
//! * [`timeinterval`]: `time_intervals` (times of day, weekdays, days of month, months,
//!   years, location) for muting and activating routes.

pub mod alerts;
pub mod config;
pub mod data;
pub mod dispatch;
pub mod email;
pub mod inhibit;
pub mod integrations;
pub mod matchers;
pub mod route;
pub mod silence;
pub mod timeinterval;
