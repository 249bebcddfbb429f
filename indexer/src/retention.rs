//! Retention: whole splits are deleted once their window ended longer ago than
//! [`LogStoreConfig::retention`](crate::LogStoreConfig::retention). A split is the unit of
//! deletion, so nothing is rewritten and no document is deleted one by one.

use std::sync::Arc;

use crate::error::IndexerError;
use crate::split::Split;
use crate::store::{LogStore, SplitKey};

impl LogStore {
    /// Deletes whole splits whose window ended before `now_ns - retention`. Returns how many.
    pub fn apply_retention(&self, now_ns: i64) -> Result<usize, IndexerError> {
        let Some(retention) = self.config.retention else {
            return Ok(0);
        };
        let cutoff = now_ns.saturating_sub(retention.as_nanos() as i64);
        let expired: Vec<Arc<Split>> = {
            let mut splits = self.splits.write().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<SplitKey> = splits
                .iter()
                .filter(|(_, s)| s.window_end_ns <= cutoff)
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter().filter_map(|k| splits.remove(k)).collect()
        };
        for split in &expired {
            if let Some(writer) = split
                .writer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .writer
                .take()
            {
                drop(writer);
            }
            std::fs::remove_dir_all(&split.dir).map_err(|source| IndexerError::Io {
                path: split.dir.clone(),
                source,
            })?;
            tracing::info!(tenant = %split.tenant, dir = %split.dir.display(), "retention removed split");
        }
        Ok(expired.len())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sightline_model::{Direction, MatchOp};

    use super::*;
    use crate::LogStoreConfig;
    use crate::test_support::*;

    #[test]
    fn retention_deletes_whole_expired_splits() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = LogStoreConfig::new(dir.path());
        config.retention = Some(Duration::from_secs(3600));
        let store = LogStore::open(config).unwrap();
        store
            .add_batch(1, &batch("t", "a", &[(10, "old"), (5 * HOUR + 1, "new")]))
            .unwrap();
        store.commit().unwrap();
        assert_eq!(store.stats().splits, 2);
        assert_eq!(store.apply_retention(6 * HOUR + 2).unwrap(), 1);
        let only_a = [matcher("service_name", MatchOp::Equal, "a")];
        let got = select(&store, "t", &only_a, &[], Direction::Forward, true);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].line, "new");
        assert!(!dir.path().join("t").join(Split::dir_name(0, HOUR)).exists());
    }
}
