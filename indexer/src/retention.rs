//! Retention: whole splits are deleted once their window ended longer ago than
//! [`LogStoreConfig::retention`](crate::LogStoreConfig::retention). A split is the unit of
//! deletion, so nothing is rewritten and no document is deleted one by one.

use crate::error::IndexerError;
use crate::store::LogStore;

impl LogStore {
    /// Deletes whole splits whose window ended before `now_ns - retention`. Returns how many.
    pub fn apply_retention(&self, now_ns: i64) -> Result<usize, IndexerError> {
        self.splits.apply_retention(now_ns)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sightline_model::{Direction, MatchOp};

    use super::*;
    use crate::LogStoreConfig;
    use crate::split::Split;
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
