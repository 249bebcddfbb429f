//! Prometheus-style scraping: pull metrics from configured targets ([`ScrapeManager`]).
//!
//! - [`config`]: `scrape_configs` with Prometheus's field names (serde, read from TOML by the
//!   server); [`validate_configs`] checks what serde cannot.
//! - [`discovery`]: static and `file_sd` (JSON) targets, and their labels.
//! - [`relabel`]: `relabel_configs` / `metric_relabel_configs` with Prometheus's semantics.
//! - [`exposition`]: Prometheus text 0.0.4 and OpenMetrics 1.0 parsers.
//! - [`manager`]: one task per job and per target; samples, report series (`up`, …) and
//!   staleness markers go to the metric ingest queue, one batch per scrape.

pub mod config;
pub mod discovery;
pub mod exposition;
pub mod manager;
pub mod relabel;

pub use config::{ConfigError, FileSdConfig, ScrapeConfig, StaticConfig, validate_configs};
pub use manager::{ScrapeHandle, ScrapeManager, TargetHealth, TargetStatus};
pub use relabel::{RelabelAction, RelabelConfig};
