//! The store end to end: append, select and metadata across head and blocks, the time
//! rules and limits, durability across reopen, maintenance (cut, compaction, retention,
//! WAL truncation).

use std::path::Path;
use std::sync::Arc;

use sightline_model::{
    LabelMatcher, Labels, MatchOp, MetricBatch, MetricSeries, RejectReason, Sample, TenantId,
    stale_nan,
};
use sightline_tsdb::{Tsdb, TsdbOptions};

const H: i64 = 3600 * 1000;
/// A time aligned to a day (so block and compaction ranges are easy to reason about).
const T0: i64 = 1_699_920_000_000;

fn options(dir: &Path) -> TsdbOptions {
    TsdbOptions {
        dir: dir.to_path_buf(),
        wal_segment_bytes: 64 << 10,
        ..TsdbOptions::default()
    }
}

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn series(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> MetricSeries {
    MetricSeries {
        labels: labels(pairs),
        samples: samples.iter().map(|&(t, v)| Sample { t, v }).collect(),
    }
}

fn batch(t: &str, series: Vec<MetricSeries>) -> MetricBatch {
    MetricBatch {
        tenant: tenant(t),
        series,
    }
}

fn m(name: &str, op: MatchOp, value: &str) -> LabelMatcher {
    LabelMatcher::new(name, op, value).unwrap()
}

fn all(db: &Tsdb, t: &str) -> Vec<MetricSeries> {
    db.select(
        &tenant(t),
        &[m("__name__", MatchOp::Regex, ".+")],
        i64::MIN,
        i64::MAX,
    )
    .unwrap()
}

/// Samples with value bits, for exact comparisons (NaN ≠ NaN otherwise).
fn bits(s: &[MetricSeries]) -> Vec<(Labels, Vec<(i64, u64)>)> {
    s.iter()
        .map(|s| {
            (
                s.labels.clone(),
                s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect(),
            )
        })
        .collect()
}

/// `n` series × samples every `step` ms over `[from, to)`; series 0 ends with a
/// staleness marker.
fn load(db: &Tsdb, t: &str, n: usize, from: i64, to: i64, step: i64) {
    let mut ts = from;
    while ts < to {
        let series: Vec<MetricSeries> = (0..n)
            .map(|i| {
                let v = if i == 0 && ts + step >= to {
                    stale_nan()
                } else {
                    (ts - from) as f64 / 1000.0 + i as f64
                };
                series(
                    &[
                        (
                            "__name__",
                            if i % 2 == 0 {
                                "http_requests_total"
                            } else {
                                "up"
                            },
                        ),
                        ("instance", &format!("host-{i}")),
                        ("job", if i % 3 == 0 { "api" } else { "db" }),
                    ],
                    &[(ts, v)],
                )
            })
            .collect();
        let reports = db.append(&[&batch(t, series)]).unwrap();
        assert_eq!(reports[0].rejected_total(), 0, "{:?}", reports[0]);
        ts += step;
    }
}

#[test]
fn append_and_select_round_trip_with_matchers() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(options(dir.path())).unwrap();
    let b = batch(
        "default",
        vec![
            series(
                &[("__name__", "up"), ("job", "api")],
                &[(T0, 1.0), (T0 + 15_000, 1.0)],
            ),
            series(
                &[("__name__", "up"), ("job", "db"), ("zone", "a")],
                &[(T0, 0.0)],
            ),
            series(
                &[("__name__", "errors"), ("job", "api"), ("code", "500")],
                &[
                    (T0, 3.0),
                    (T0 + 15_000, f64::NAN),
                    (T0 + 30_000, stale_nan()),
                ],
            ),
        ],
    );
    let reports = db.append(&[&b]).unwrap();
    assert_eq!(reports[0].accepted, 6);
    let t = tenant("default");

    let up = db
        .select(&t, &[m("__name__", MatchOp::Equal, "up")], T0, T0 + 60_000)
        .unwrap();
    assert_eq!(up.len(), 2);
    assert_eq!(up[0].labels, labels(&[("__name__", "up"), ("job", "api")]));
    assert_eq!(up[0].samples.len(), 2);

    // Inclusive range ends.
    let one = db
        .select(
            &t,
            &[m("job", MatchOp::Equal, "api")],
            T0 + 15_000,
            T0 + 15_000,
        )
        .unwrap();
    assert_eq!(one.iter().map(|s| s.samples.len()).sum::<usize>(), 2);

    // Regex over values, anchored.
    let re = db
        .select(&t, &[m("job", MatchOp::Regex, "a.i|d")], T0, T0 + H)
        .unwrap();
    assert_eq!(re.len(), 2, "only `api`: the regex is anchored");
    // Empty-matching matcher selects series without the label too.
    let no_zone = db
        .select(
            &t,
            &[
                m("__name__", MatchOp::Equal, "up"),
                m("zone", MatchOp::Equal, ""),
            ],
            T0,
            T0 + H,
        )
        .unwrap();
    assert_eq!(no_zone.len(), 1);
    assert_eq!(no_zone[0].labels.get("job"), Some("api"));
    let not_a = db
        .select(
            &t,
            &[
                m("__name__", MatchOp::Regex, "up|errors"),
                m("zone", MatchOp::NotEqual, "a"),
            ],
            T0,
            T0 + H,
        )
        .unwrap();
    assert_eq!(not_a.len(), 2);
    // All matchers match empty: every series of the tenant.
    let every = db
        .select(&t, &[m("zone", MatchOp::NotRegex, "b")], T0, T0 + H)
        .unwrap();
    assert_eq!(every.len(), 3);
    // Stale markers and other NaNs come back bit for bit.
    let errors = db
        .select(&t, &[m("code", MatchOp::Equal, "500")], T0, T0 + H)
        .unwrap();
    assert!(
        errors[0].samples[1].v.is_nan() && !sightline_model::is_stale_nan(errors[0].samples[1].v)
    );
    assert!(sightline_model::is_stale_nan(errors[0].samples[2].v));
    // Other tenants see nothing.
    assert!(all(&db, "other").is_empty());

    // Metadata.
    assert_eq!(db.series(&t, &[], T0, T0 + H).unwrap().len(), 3);
    assert_eq!(
        db.series(
            &t,
            &[
                vec![m("job", MatchOp::Equal, "db")],
                vec![m("code", MatchOp::Equal, "500")]
            ],
            T0,
            T0 + H
        )
        .unwrap()
        .len(),
        2
    );
    assert!(
        db.series(&t, &[], T0 + H, T0 + 2 * H).unwrap().is_empty(),
        "time filtered"
    );
    assert_eq!(
        db.label_names(&t, &[], T0, T0 + H).unwrap(),
        vec!["__name__", "code", "job", "zone"]
    );
    assert_eq!(
        db.label_values(&t, "job", &[], T0, T0 + H).unwrap(),
        vec!["api".to_string(), "db".to_string()]
    );
    assert_eq!(
        db.label_values(
            &t,
            "__name__",
            &[vec![m("job", MatchOp::Equal, "api")]],
            T0,
            T0 + H
        )
        .unwrap(),
        vec!["errors".to_string(), "up".to_string()]
    );
}

#[test]
fn out_of_order_window_too_old_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(options(dir.path())).unwrap();
    let t = tenant("default");
    let x = [("__name__", "x"), ("job", "a")];
    let newest = T0 + 701_000;
    db.append(&[&batch(
        "default",
        vec![series(&x, &[(T0 + 100_000, 1.0), (newest, 2.0)])],
    )])
    .unwrap();
    // 5 min late: inside the 10 min window, inserted in order.
    let r = db
        .append(&[&batch(
            "default",
            vec![series(&x, &[(newest - 300_000, 1.5), (T0 + 1_000, 9.0)])],
        )])
        .unwrap();
    assert_eq!(r[0].accepted, 1);
    assert_eq!(r[0].rejected, vec![(RejectReason::OutOfOrder, 1)]);
    assert_eq!(
        r[0].first_rejection.as_deref(),
        Some(
            "out of order sample for series {__name__=\"x\", job=\"a\"}: timestamp 1699920001000 is 700000 ms older than the newest sample 1699920701000 (out-of-order window 600000 ms)"
        )
    );
    let got = db
        .select(&t, &[m("__name__", MatchOp::Equal, "x")], T0, T0 + H)
        .unwrap();
    let ts: Vec<i64> = got[0].samples.iter().map(|s| s.t).collect();
    assert_eq!(ts, vec![T0 + 100_000, newest - 300_000, newest]);

    // Same timestamp and value: idempotent; other value: refused. Also inside the window
    // and within one batch.
    let r = db
        .append(&[&batch(
            "default",
            vec![series(
                &x,
                &[
                    (newest, 2.0),
                    (newest, 3.0),
                    (newest - 300_000, 1.5),
                    (newest - 300_000, 7.0),
                    (newest + 1, 4.0),
                    (newest + 1, 5.0),
                ],
            )],
        )])
        .unwrap();
    assert_eq!(r[0].accepted, 3);
    assert_eq!(r[0].rejected, vec![(RejectReason::DuplicateTimestamp, 3)]);
    assert!(
        r[0].first_rejection
            .as_ref()
            .unwrap()
            .contains("duplicate sample for series {__name__=\"x\", job=\"a\"}")
    );

    // After a cut the head starts at the block's end: older samples are too old, even for
    // a new series.
    db.append(&[&batch("default", vec![series(&x, &[(T0 + 4 * H, 1.0)])])])
        .unwrap();
    let rep = db.maintain(T0 + 4 * H).unwrap();
    assert_eq!(rep.blocks_cut, 1);
    let r = db
        .append(&[&batch(
            "default",
            vec![
                series(&[("__name__", "new")], &[(T0 + H, 1.0), (T0 + 2 * H, 1.0)]),
                series(&x, &[(T0 + 2 * H - 1, 1.0)]),
            ],
        )])
        .unwrap();
    assert_eq!(r[0].accepted, 1);
    assert_eq!(r[0].rejected, vec![(RejectReason::TooOld, 2)]);
    assert!(
        r[0].first_rejection
            .as_ref()
            .unwrap()
            .starts_with("too old sample for series {__name__=\"new\"}")
    );
    let stats = db.stats();
    assert_eq!(
        stats.samples_refused,
        vec![
            (RejectReason::OutOfOrder, 1),
            (RejectReason::TooOld, 2),
            (RejectReason::DuplicateTimestamp, 3),
            (RejectReason::SeriesLimit, 0),
        ]
    );
}

#[test]
fn series_limit_refuses_only_new_series_and_group_commit_reports_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(TsdbOptions {
        max_series_per_tenant: 2,
        ..options(dir.path())
    })
    .unwrap();
    let a = batch("default", vec![series(&[("__name__", "a")], &[(T0, 1.0)])]);
    let b = batch(
        "default",
        vec![
            series(&[("__name__", "b")], &[(T0, 1.0)]),
            series(&[("__name__", "c")], &[(T0, 1.0), (T0 + 1, 2.0)]),
        ],
    );
    let other = batch("other", vec![series(&[("__name__", "c")], &[(T0, 1.0)])]);
    let reports = db.append(&[&a, &b, &other]).unwrap();
    assert_eq!(reports.len(), 3);
    assert_eq!(reports[0].accepted, 1);
    assert_eq!(reports[1].accepted, 1);
    assert_eq!(reports[1].rejected, vec![(RejectReason::SeriesLimit, 2)]);
    assert_eq!(
        reports[1].first_rejection.as_deref(),
        Some(
            "series limit reached for tenant \"default\": new series {__name__=\"c\"} would exceed the limit of 2 series"
        )
    );
    assert_eq!(reports[2].accepted, 1, "limits are per tenant");
    // Existing series still take samples.
    let r = db
        .append(&[&batch(
            "default",
            vec![series(&[("__name__", "a")], &[(T0 + 15_000, 2.0)])],
        )])
        .unwrap();
    assert_eq!(r[0].accepted, 1);
    let st = db.stats();
    assert_eq!(st.head_series, 3);
    assert_eq!(
        st.head_series_by_tenant,
        vec![(tenant("default"), 2), (tenant("other"), 1)]
    );
    assert_eq!(st.samples_appended, 4);
}

#[test]
fn reopen_without_flush_replays_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let db = Tsdb::open(options(dir.path())).unwrap();
        load(&db, "default", 20, T0, T0 + 30 * 60_000, 15_000);
        // An out-of-order sample replays into its place.
        db.append(&[&batch(
            "default",
            vec![series(
                &[("__name__", "up"), ("instance", "host-1"), ("job", "db")],
                &[(T0 + 7_500, -1.0)],
            )],
        )])
        .unwrap();
        all(&db, "default")
        // Dropped without flush or maintain: only the WAL has the data.
    };
    assert_eq!(before.len(), 20);
    let db = Tsdb::open(options(dir.path())).unwrap();
    assert_eq!(bits(&all(&db, "default")), bits(&before));
    assert!(sightline_model::is_stale_nan(
        before[0].samples.last().unwrap().v
    ));
    // The rules still hold after replay (the newest sample is known).
    let r = db
        .append(&[&batch(
            "default",
            vec![series(
                &[("__name__", "up"), ("instance", "host-1"), ("job", "db")],
                &[(T0, 5.0)],
            )],
        )])
        .unwrap();
    assert_eq!(r[0].rejected, vec![(RejectReason::OutOfOrder, 1)]);
}

#[test]
fn maintain_cuts_blocks_truncates_the_wal_and_reopens_equal() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(options(dir.path())).unwrap();
    load(&db, "default", 30, T0, T0 + 5 * H, 60_000);
    let before = all(&db, "default");
    let wal_dir = dir.path().join("wal");
    let segments = || std::fs::read_dir(&wal_dir).unwrap().count();
    let wal_before = segments();
    assert!(wal_before > 2);

    let rep = db.maintain(T0 + 5 * H).unwrap();
    // The head spanned 5 h: [T0, T0+2h) is cut; the 3 h left are not more than 1.5
    // block durations (Prometheus's rule).
    assert_eq!(rep.blocks_cut, 1, "{rep:?}");
    assert!(rep.snapshot_written);
    assert!(rep.wal_segments_removed > 0);
    assert!(segments() < wal_before);
    let st = db.stats();
    assert_eq!(st.blocks, 1);
    assert_eq!(st.head_samples, 30 * 180);
    assert_eq!(st.block_samples, 30 * 120);
    assert_eq!(
        bits(&all(&db, "default")),
        bits(&before),
        "same data after the cut"
    );
    // A range inside blocks only, and one spanning block and head.
    let mid = db
        .select(
            &tenant("default"),
            &[m("instance", MatchOp::Equal, "host-3")],
            T0 + H,
            T0 + 4 * H + 30 * 60_000,
        )
        .unwrap();
    assert_eq!(mid[0].samples.len(), 3 * 60 + 31);

    // More data after the snapshot, then a crash (drop without flush).
    load(
        &db,
        "default",
        30,
        T0 + 5 * H,
        T0 + 5 * H + 10 * 60_000,
        60_000,
    );
    let expected = all(&db, "default");
    drop(db);
    let db = Tsdb::open(options(dir.path())).unwrap();
    assert_eq!(bits(&all(&db, "default")), bits(&expected));
    assert_eq!(db.stats().blocks, 1);
    // Samples in the blocks' range are too old after reopen too.
    let r = db
        .append(&[&batch(
            "default",
            vec![series(&[("__name__", "late")], &[(T0 + H, 1.0)])],
        )])
        .unwrap();
    assert_eq!(r[0].rejected, vec![(RejectReason::TooOld, 1)]);
    // flush writes a snapshot: reopening needs no replay and finds the same.
    db.flush().unwrap();
    drop(db);
    let db = Tsdb::open(options(dir.path())).unwrap();
    assert_eq!(bits(&all(&db, "default")), bits(&expected));
}

#[test]
fn compaction_merges_blocks_and_retention_deletes_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(options(dir.path())).unwrap();
    // 9 h of data: cuts of [0,2h) [2,4h) [4,6h) [6,8h); [0,6h) then compacts.
    load(&db, "default", 10, T0, T0 + 9 * H + 30 * 60_000, 5 * 60_000);
    let before = all(&db, "default");
    let rep = db.maintain(T0 + 9 * H).unwrap();
    assert_eq!(rep.blocks_cut, 4, "{rep:?}");
    assert_eq!(rep.compactions, 1, "{rep:?}");
    let st = db.stats();
    assert_eq!(st.blocks, 2, "one 6 h block and one 2 h block");
    assert_eq!(
        bits(&all(&db, "default")),
        bits(&before),
        "compaction keeps data equal"
    );
    let names: Vec<String> = std::fs::read_dir(dir.path().join("blocks/default"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.contains(&format!("{}_{}.blk", T0, T0 + 6 * H)),
        "{names:?}"
    );

    // Reopen keeps them; retention later deletes whole blocks that ended long enough ago.
    drop(db);
    let db = Tsdb::open(options(dir.path())).unwrap();
    assert_eq!(bits(&all(&db, "default")), bits(&before));
    let retention = TsdbOptions::default().retention_ms;
    let rep = db.maintain(T0 + 6 * H + retention).unwrap();
    assert_eq!(rep.blocks_deleted, 1, "{rep:?}");
    let left = all(&db, "default");
    assert!(left.iter().all(|s| s.samples[0].t >= T0 + 6 * H));
    assert!(!left.is_empty());
}

#[test]
fn compaction_leftovers_and_temporary_files_are_cleaned_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Tsdb::open(options(dir.path())).unwrap();
        load(&db, "default", 3, T0, T0 + 9 * H, 10 * 60_000);
        db.maintain(T0 + 9 * H).unwrap();
    }
    let bdir = dir.path().join("blocks/default");
    // Simulate a crash after a compaction's output was renamed but before its inputs were
    // deleted: put back a 2 h input (made by another store), and leave a temporary file.
    let other = tempfile::tempdir().unwrap();
    {
        let db = Tsdb::open(options(other.path())).unwrap();
        load(&db, "default", 3, T0, T0 + 4 * H, 10 * 60_000);
        assert_eq!(db.maintain(T0 + 4 * H).unwrap().blocks_cut, 1);
    }
    let input = format!("{}_{}.blk", T0, T0 + 2 * H);
    std::fs::copy(
        other.path().join("blocks/default").join(&input),
        bdir.join(&input),
    )
    .unwrap();
    std::fs::write(bdir.join("123_456.tmp"), b"partial").unwrap();
    let db = Tsdb::open(options(dir.path())).unwrap();
    assert_eq!(db.stats().blocks, 1, "three 2 h blocks compacted into one");
    assert_eq!(all(&db, "default")[0].samples.len(), 9 * 6);
    assert!(!bdir.join(format!("{}_{}.blk", T0, T0 + 2 * H)).exists());
    assert!(!bdir.join("123_456.tmp").exists());
}

#[test]
fn idle_tenant_head_is_cut_and_empty_series_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(options(dir.path())).unwrap();
    // Idleness is judged by the wall clock (a backfill of old samples is not idle), so this
    // test's times are around now, in one block range.
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let base = (wall - 6 * H).div_euclid(2 * H) * 2 * H;
    load(&db, "quiet", 4, base, base + 30 * 60_000, 60_000);
    // Samples hours old but just appended: a backfill, not cut.
    assert_eq!(db.maintain(wall).unwrap().blocks_cut, 0);
    // Nothing appended for 4 h: the whole head goes to blocks and the series are dropped.
    let rep = db.maintain(wall + 4 * H).unwrap();
    assert_eq!(rep.blocks_cut, 1);
    assert_eq!(rep.series_dropped, 4);
    assert_eq!(db.stats().head_series, 0);
    assert_eq!(all(&db, "quiet").len(), 4);
    assert_eq!(
        db.series(&tenant("quiet"), &[], base, base + H)
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        db.label_values(&tenant("quiet"), "instance", &[], base, base + H)
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn concurrent_appends_and_selects() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Tsdb::open(options(dir.path())).unwrap());
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..200i64 {
                    let b = batch(
                        "default",
                        vec![series(
                            &[("__name__", "c"), ("w", &w.to_string())],
                            &[(T0 + i * 1000, i as f64)],
                        )],
                    );
                    assert_eq!(db.append(&[&b]).unwrap()[0].accepted, 1);
                }
            })
        })
        .collect();
    let reader = {
        let db = db.clone();
        std::thread::spawn(move || {
            for _ in 0..50 {
                let got = all(&db, "default");
                for s in got {
                    assert!(s.samples.windows(2).all(|w| w[0].t < w[1].t));
                }
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    reader.join().unwrap();
    let got = all(&db, "default");
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|s| s.samples.len() == 200));
}

#[test]
fn options_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let err = Tsdb::open(TsdbOptions {
        block_duration_ms: 0,
        ..options(dir.path())
    })
    .unwrap_err();
    assert!(err.to_string().contains("block_duration_ms"), "{err}");
}

#[test]
fn the_store_is_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<Tsdb>();
}

/// One-minute blocks, so the child cuts blocks, snapshots and truncates its WAL often.
fn crash_options(dir: &Path) -> TsdbOptions {
    TsdbOptions {
        block_duration_ms: 60_000,
        wal_segment_bytes: 16 << 10,
        ..options(dir)
    }
}

/// The writer half of `kill_9_loses_no_acknowledged_sample`: appends until killed,
/// printing each acknowledged sample count. Runs only when that test starts it.
#[test]
#[ignore = "started as a child process by kill_9_loses_no_acknowledged_sample"]
fn crash_child_writer() {
    let Ok(dir) = std::env::var("TSDB_CRASH_DIR") else {
        return;
    };
    let db = Tsdb::open(crash_options(Path::new(&dir))).unwrap();
    for i in 0i64.. {
        let b = batch(
            "default",
            (0..50)
                .map(|s| {
                    series(
                        &[("__name__", "c"), ("s", &s.to_string())],
                        &[(T0 + i * 1000, i as f64)],
                    )
                })
                .collect(),
        );
        assert_eq!(db.append(&[&b]).unwrap()[0].accepted, 50);
        if i % 50 == 49 {
            // Cuts, snapshots and WAL truncation happen while the parent may kill us.
            db.maintain(T0 + i * 1000).unwrap();
        }
        println!("acked {i}");
    }
}

#[test]
fn kill_9_loses_no_acknowledged_sample() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TSDB_CRASH_DIR", dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut acked = -1i64;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        if let Some(n) = line.strip_prefix("acked ") {
            acked = n.parse().unwrap();
            if acked >= 400 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(acked >= 400, "the child stopped early");
    let db = Tsdb::open(crash_options(dir.path())).unwrap();
    assert!(
        db.stats().blocks > 0,
        "the child cut blocks before it was killed"
    );
    let got = db
        .select(
            &tenant("default"),
            &[m("__name__", MatchOp::Equal, "c")],
            i64::MIN,
            i64::MAX,
        )
        .unwrap();
    assert_eq!(got.len(), 50);
    for s in got {
        // Every acknowledged sample is there, in order, without gaps.
        assert!(
            s.samples.len() as i64 > acked,
            "{} samples, {acked} acknowledged",
            s.samples.len()
        );
        for (i, x) in s.samples.iter().enumerate() {
            assert_eq!(x.t, T0 + i as i64 * 1000);
        }
    }
}

#[test]
fn a_sample_far_in_the_future_does_not_push_the_head_into_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(options(dir.path())).unwrap();
    load(&db, "default", 2, T0, T0 + H, 60_000);
    db.append(&[&batch(
        "default",
        vec![series(&[("__name__", "skewed")], &[(T0 + 48 * H, 1.0)])],
    )])
    .unwrap();
    let rep = db.maintain(T0 + H).unwrap();
    assert_eq!(rep.blocks_cut, 0, "{rep:?}");
    let r = db
        .append(&[&batch(
            "default",
            vec![series(&[("__name__", "on_time")], &[(T0 + H, 1.0)])],
        )])
        .unwrap();
    assert_eq!(r[0].accepted, 1);
}

/// A sample ten years ahead (a wrong clock or unit) used to be stored and then make every
/// current sample of its series out of order; it is refused, and the series goes on.
#[test]
fn a_sample_far_in_the_future_is_refused_and_does_not_block_its_series() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(options(dir.path())).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let ten_years = 10 * 365 * 24 * 3_600_000;
    let up = [("__name__", "up"), ("job", "a")];
    let b = batch("t", vec![series(&up, &[(now + ten_years, 1.0)])]);
    let r = db.append(&[&b]).unwrap();
    assert_eq!(r[0].rejected, vec![(RejectReason::TooFarInFuture, 1)]);
    assert!(
        r[0].first_rejection
            .as_deref()
            .is_some_and(|e| e.contains("too far in the future")),
        "{:?}",
        r[0]
    );
    // Within the grace period is fine; so is the present, after it.
    let b = batch(
        "t",
        vec![series(&up, &[(now - 1000, 1.0), (now + 60_000, 2.0)])],
    );
    let r = db.append(&[&b]).unwrap();
    assert_eq!(r[0].rejected_total(), 0, "{:?}", r[0]);
    assert_eq!(all(&db, "t")[0].samples.len(), 2);
}
