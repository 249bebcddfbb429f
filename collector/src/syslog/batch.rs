//! Accumulates parsed records into one [`LogBatch`] per flush, one [`LogStream`] per distinct
//! resource (service.name + host.name), with the limits that decide when to flush.

use std::collections::HashMap;
use std::time::Duration;

use sightline_model::{LogBatch, LogRecord, LogStream, TenantId, index_labels_from_resource};
use tokio::time::Instant;

/// Scope name stamped on syslog streams, so queries can tell where records came from.
pub(crate) const SCOPE_NAME: &str = "sightline.syslog";

/// A batch being built for one listener or connection.
#[derive(Debug)]
pub(crate) struct Batcher {
    tenant: TenantId,
    max_records: usize,
    max_bytes: usize,
    max_delay: Duration,
    streams: Vec<LogStream>,
    /// Resource attributes → index in `streams`.
    by_resource: HashMap<Vec<(String, String)>, usize>,
    records: usize,
    bytes: usize,
    /// When the oldest pending record arrived: the flush deadline counts from there.
    oldest: Option<Instant>,
}

impl Batcher {
    pub(crate) fn new(
        tenant: TenantId,
        max_records: usize,
        max_bytes: usize,
        max_delay: Duration,
    ) -> Self {
        Self {
            tenant,
            max_records: max_records.max(1),
            max_bytes: max_bytes.max(1),
            max_delay,
            streams: Vec::new(),
            by_resource: HashMap::new(),
            records: 0,
            bytes: 0,
            oldest: None,
        }
    }

    /// Adds a record to the stream of its resource, creating the stream (and computing its
    /// index labels) on first sight.
    pub(crate) fn push(&mut self, resource: Vec<(String, String)>, record: LogRecord) {
        self.bytes += record.body.len()
            + record
                .attributes
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        self.records += 1;
        self.oldest.get_or_insert_with(Instant::now);
        let index = match self.by_resource.get(&resource) {
            Some(&i) => i,
            None => {
                self.streams.push(LogStream {
                    labels: index_labels_from_resource(&resource),
                    resource: resource.clone(),
                    scope_name: SCOPE_NAME.to_string(),
                    scope_version: String::new(),
                    records: Vec::new(),
                });
                self.by_resource.insert(resource, self.streams.len() - 1);
                self.streams.len() - 1
            }
        };
        self.streams[index].records.push(record);
    }

    /// Whether a size limit is reached and the batch should go now.
    pub(crate) fn is_full(&self) -> bool {
        self.records >= self.max_records || self.bytes >= self.max_bytes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// When the batch must be flushed even if not full; `None` when empty.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.oldest.map(|t| t + self.max_delay)
    }

    /// The pending batch, leaving the batcher empty; `None` when there is nothing.
    pub(crate) fn take(&mut self) -> Option<LogBatch> {
        if self.is_empty() {
            return None;
        }
        self.by_resource.clear();
        self.records = 0;
        self.bytes = 0;
        self.oldest = None;
        Some(LogBatch {
            tenant: self.tenant.clone(),
            streams: std::mem::take(&mut self.streams),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(service: &str, host: &str) -> Vec<(String, String)> {
        vec![
            ("service.name".into(), service.into()),
            ("host.name".into(), host.into()),
        ]
    }

    fn rec(body: &str) -> LogRecord {
        LogRecord {
            body: body.into(),
            ..LogRecord::default()
        }
    }

    #[tokio::test]
    async fn groups_records_by_resource_and_flushes_on_limits() {
        let mut b = Batcher::new(TenantId::default(), 4, 1 << 20, Duration::from_millis(10));
        assert!(b.take().is_none() && b.deadline().is_none());
        let start = Instant::now();
        b.push(res("sshd", "a"), rec("1"));
        b.push(res("cron", "a"), rec("2"));
        b.push(res("sshd", "a"), rec("3"));
        assert!(!b.is_full());
        let deadline = b.deadline().unwrap();
        assert!(deadline >= start + Duration::from_millis(10));
        assert!(deadline <= Instant::now() + Duration::from_millis(10));
        b.push(Vec::new(), rec("4"));
        assert!(b.is_full());
        let batch = b.take().unwrap();
        assert!(b.is_empty() && b.deadline().is_none());
        assert_eq!(batch.record_count(), 4);
        assert_eq!(batch.streams.len(), 3);
        let sshd = &batch.streams[0];
        assert_eq!(sshd.labels.get("service_name"), Some("sshd"));
        assert_eq!(sshd.labels.get("host_name"), Some("a"));
        assert_eq!(
            sshd.records
                .iter()
                .map(|r| r.body.as_str())
                .collect::<Vec<_>>(),
            ["1", "3"]
        );
        assert_eq!(sshd.scope_name, SCOPE_NAME);
        assert_eq!(
            batch.streams[2].labels.get("service_name"),
            Some("unknown_service")
        );

        let mut b = Batcher::new(TenantId::default(), 1000, 10, Duration::from_millis(10));
        b.push(Vec::new(), rec("0123456789"));
        assert!(b.is_full(), "byte limit");
    }
}
