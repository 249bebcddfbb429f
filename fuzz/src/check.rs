//! Invariants shared by the harnesses.

use std::time::Duration;

use sightline_model::labels::is_valid_label_name;
use sightline_model::{Labels, LogBatch, TenantId};

/// Fixed CPU time every input may use. Compiling a regular expression (LogQL matchers and
/// line filters, the configuration's pattern masks and relabel rules) costs up to about
/// 110 ms in the instrumented build whatever the input's length (`\w{100}`: Unicode classes
/// expand until the `regex` crate's size limit refuses them), so the floor is above that;
/// 10 ms flagged those bounded costs as superlinear. 150 ms then flagged a 602-byte
/// configuration whose pattern mask compiles in 220 ms (the regex crate's bound again) and
/// a 372-byte PromQL error located in 110–170 ms (a bounded number of re-parses, slower
/// when the other core is busy: thread CPU time grows under SMT contention), so 400 ms.
const BASE_BUDGET: Duration = Duration::from_millis(400);
/// CPU time per input byte. A linear parser spends well under a microsecond a byte even
/// instrumented; this is two orders of magnitude above, so only superlinear work (or a
/// large constant factor per byte) trips it at the lengths the fuzzer uses (a few KiB).
const PER_BYTE_BUDGET: Duration = Duration::from_micros(20);
/// Unoptimised builds (the stable regression test) are an order of magnitude slower.
const UNOPTIMISED_FACTOR: u32 = 20;

/// CPU time of the calling thread (not wall time: the machine is shared, and a preempted
/// harness must not look slow).
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The CPU time an input of `len` bytes may take.
pub fn budget(len: usize) -> Duration {
    let b = BASE_BUDGET + PER_BYTE_BUDGET * u32::try_from(len).unwrap_or(u32::MAX);
    if cfg!(fuzzing) || !cfg!(debug_assertions) {
        b
    } else {
        b * UNOPTIMISED_FACTOR
    }
}

/// Runs `f` and asserts that it took CPU time linear in `len`. Over budget, `f` runs up to
/// three more times and the least time counts: the first call in a process also builds
/// lazy statics, and contention for the core (another build, the other fuzzer) only ever
/// adds time — a 128-byte PromQL query whose regexes compile in 350 ms instrumented took
/// 432 ms twice in a row on a busy machine. Intrinsically slow work is slow every time.
/// `SIGHTLINE_FUZZ_NO_TIME_BUDGET=1` turns the check off (profiling, coverage).
pub fn linear_time(len: usize, f: impl Fn()) {
    let t0 = thread_cpu_time();
    f();
    let spent = thread_cpu_time() - t0;
    let budget = budget(len);
    if spent <= budget || std::env::var_os("SIGHTLINE_FUZZ_NO_TIME_BUDGET").is_some() {
        return;
    }
    let mut again = Duration::MAX;
    for _ in 0..3 {
        let t0 = thread_cpu_time();
        f();
        again = again.min(thread_cpu_time() - t0);
        if again <= budget {
            return;
        }
    }
    assert!(
        again <= budget,
        "superlinear work: {again:?} of CPU time for a {len}-byte input, over the budget of \
         {budget:?} ({BASE_BUDGET:?} + {PER_BYTE_BUDGET:?} a byte)"
    );
}

/// A label set the receivers produced must be what the stores can keep: valid names, and the
/// canonical text form (the index's stream key, the TSDB's series key) parses back to it.
pub fn labels(labels: &Labels, what: &str) {
    for (name, value) in labels.iter() {
        assert!(
            is_valid_label_name(name),
            "{what}: invalid label name {name:?} in {labels:?}"
        );
        assert!(
            !value.is_empty(),
            "{what}: empty value of {name:?} in {labels:?}"
        );
    }
    let text = labels.to_canonical();
    assert_eq!(
        Labels::parse_canonical(&text).as_ref(),
        Some(labels),
        "{what}: canonical form {text:?} does not parse back"
    );
}

/// A log batch the receivers produced must go through the write-ahead log unchanged.
pub fn wal_round_trip(streams: Vec<sightline_model::LogStream>) {
    use sightline_ingest::WalCodec;
    let batch = LogBatch {
        tenant: TenantId::new("fuzz").unwrap(),
        streams,
    };
    let payload = batch.encode();
    let back = LogBatch::decode(&payload).expect("a batch we encoded must decode");
    assert_eq!(back, batch, "the WAL codec changed a batch");
}
