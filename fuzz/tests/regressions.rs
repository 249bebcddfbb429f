//! Replays every committed input through its harness on stable, without libFuzzer: the seeds
//! (`corpus/<target>/`) and the inputs that once crashed or hung (`regressions/<target>/`).
//! This is the cheap check CI can run on every change (see README.md); `cargo fuzz run`
//! is what finds new inputs.

use std::path::Path;

fn replay(target: &str) {
    let harness = sightline_fuzz::targets::ALL
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, f)| *f)
        .unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).unwrap();
            eprintln!("{target}: {}", path.display());
            harness(&data);
            count += 1;
        }
    }
    assert!(count > 0, "no input for {target}");
}

macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { replay(stringify!($name)); })*

        #[test]
        fn every_harness_is_replayed() {
            let tested = [$(stringify!($name)),*];
            for (name, _) in sightline_fuzz::targets::ALL {
                assert!(tested.contains(name), "{name} has no replay test");
            }
        }
    };
}

replay_tests!(
    otlp_logs_proto,
    otlp_metrics_proto,
    otlp_json,
    remote_write,
    loki_push_proto,
    loki_push_json,
    syslog_framing,
    syslog_parse,
    logql,
    promql,
    config,
);
