//! What the unit tests of several modules share: a batch builder, a store in a temporary
//! directory, and selections through the [`LogSource`] seam.

use std::path::Path;

use sightline_model::{
    Direction, Entry, LabelMatcher, Labels, LineFilter, LineFilterOp, LogBatch, LogRecord,
    LogSource, LogStream, MatchOp, SelectRequest, TenantId,
};

use crate::{LogStore, LogStoreConfig};

/// One hour in nanoseconds: the default split window.
pub const HOUR: i64 = 3_600_000_000_000;

/// One stream of `service` (labels `service_name` and `env="prod"`) with these lines.
pub fn batch(tenant: &str, service: &str, lines: &[(i64, &str)]) -> LogBatch {
    LogBatch {
        tenant: TenantId::new(tenant).unwrap(),
        streams: vec![LogStream {
            labels: Labels::from_pairs([("service_name", service), ("env", "prod")]),
            resource: vec![
                ("service.name".into(), service.into()),
                ("process.pid".into(), "7".into()),
            ],
            records: lines
                .iter()
                .map(|(ts, body)| LogRecord {
                    timestamp_ns: *ts,
                    body: body.to_string(),
                    trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
    }
}

pub fn open(dir: &Path) -> LogStore {
    LogStore::open(LogStoreConfig::new(dir)).unwrap()
}

/// `name op "value"`.
pub fn matcher(name: &str, op: MatchOp, value: &str) -> LabelMatcher {
    LabelMatcher::new(name, op, value).unwrap()
}

/// `{env="prod"}`: every stream [`batch`] writes.
pub fn prod() -> Vec<LabelMatcher> {
    vec![matcher("env", MatchOp::Equal, "prod")]
}

/// `|= "needle"`.
pub fn contains(needle: &str) -> LineFilter {
    LineFilter::new(LineFilterOp::Contains, needle).unwrap()
}

/// `|~ "regex"`.
pub fn regex(regex: &str) -> LineFilter {
    LineFilter::new(LineFilterOp::Regex, regex).unwrap()
}

/// Every entry of `tenant` the store selects for these matchers and pushed-down filters.
pub fn select(
    store: &LogStore,
    tenant: &str,
    matchers: &[LabelMatcher],
    line_filters: &[LineFilter],
    direction: Direction,
    needs_line: bool,
) -> Vec<Entry> {
    let tenant = TenantId::new(tenant).unwrap();
    let request = SelectRequest {
        tenant: &tenant,
        matchers,
        line_filters,
        start_ns: 0,
        end_ns: i64::MAX,
        direction,
        ordered: true,
        needs_line,
    };
    store
        .select(&request)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}
