//! [`TsdbSource`]: the engine's [`SeriesSource`] over one tenant's data in the TSDB.
//!
//! The adapter lives with the query language, not with the store: the TSDB must never
//! depend on a query language (`sightline-tsdb` does not know PromQL), and not in the HTTP
//! layer either, since the query API and the anomaly runner both evaluate PromQL over it.

use sightline_model::{LabelMatcher, MetricSeries, StoreError, TenantId};
use sightline_tsdb::Tsdb;

use crate::SeriesSource;

/// One tenant's series in the TSDB, as the PromQL engine reads them. Float samples only:
/// the TSDB does not store native histograms, so `select_histograms` keeps its default.
#[derive(Clone, Copy)]
pub struct TsdbSource<'a> {
    pub tsdb: &'a Tsdb,
    pub tenant: &'a TenantId,
}

impl<'a> TsdbSource<'a> {
    pub fn new(tsdb: &'a Tsdb, tenant: &'a TenantId) -> Self {
        Self { tsdb, tenant }
    }
}

impl SeriesSource for TsdbSource<'_> {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<MetricSeries>, StoreError> {
        self.tsdb
            .select(self.tenant, matchers, mint, maxt)
            .map_err(StoreError::new)
    }
}

#[cfg(test)]
mod tests {
    use sightline_model::{Labels, MetricBatch, Sample};
    use sightline_tsdb::TsdbOptions;

    use super::*;
    use crate::{Engine, Value};

    #[test]
    fn the_engine_reads_one_tenant_of_the_tsdb() {
        let dir = tempfile::tempdir().unwrap();
        let tsdb = Tsdb::open(TsdbOptions {
            dir: dir.path().to_path_buf(),
            ..TsdbOptions::default()
        })
        .unwrap();
        let now_ms = 1_700_000_000_000;
        let batch = |tenant: &str, value: f64| MetricBatch {
            tenant: TenantId::new(tenant).unwrap(),
            series: vec![MetricSeries {
                labels: Labels::from_pairs([("__name__", "up"), ("job", "api")]),
                samples: vec![Sample {
                    t: now_ms,
                    v: value,
                }],
            }],
        };
        tsdb.append(&[&batch("a", 1.0), &batch("b", 0.0)]).unwrap();
        let tenant = TenantId::new("a").unwrap();
        let result = Engine::default()
            .instant_query(&TsdbSource::new(&tsdb, &tenant), "sum(up)", now_ms)
            .unwrap();
        match result.value {
            Value::Vector(v) => assert_eq!(v.iter().map(|s| s.v).collect::<Vec<_>>(), [1.0]),
            other => panic!("{other:?}"),
        }
    }
}
