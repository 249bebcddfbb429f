//! Alertmanager's `time_intervals` (being built).
