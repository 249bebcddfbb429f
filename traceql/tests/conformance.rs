//! Tempo's own list of example queries, sorted by expected outcome, run through our parser.
//!
//! The list (`traceql/test_examples.yaml`, AGPL-3.0) is read at run time from
//! `$SIGHTLINE_DATASETS` or `<workspace>/../shared/datasets`, never copied into this
//! repository. Every `parse_fails` query must be a syntax error, every `validate_fails` one an
//! invalid (or syntax) error, every `valid` one accepted or refused as unsupported with the
//! construct named; accepted queries must print to text that parses back to the same query.
//! Tempo's `unsupported` section must be refused.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use sightline_traceql::{ErrorKind, parse};

#[derive(Deserialize)]
struct Examples {
    valid: Vec<String>,
    parse_fails: Vec<String>,
    validate_fails: Vec<String>,
    unsupported: Vec<String>,
}

fn examples_path() -> PathBuf {
    match std::env::var_os("SIGHTLINE_DATASETS") {
        Some(dir) => PathBuf::from(dir).join("traceql/test_examples.yaml"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/datasets/traceql/test_examples.yaml"),
    }
}

#[test]
fn tempo_examples_are_classified_like_tempo() {
    let path = examples_path();
    let Ok(text) = std::fs::read_to_string(&path) else {
        println!("{} not found: TraceQL conformance skipped", path.display());
        return;
    };
    let examples: Examples = serde_yaml_ng::from_str(&text).expect("the examples file is YAML");
    let mut failures = Vec::new();

    for query in &examples.parse_fails {
        match parse(query) {
            Err(e) if e.kind == ErrorKind::Syntax && e.line >= 1 && e.column >= 1 => {}
            other => failures.push(format!("parse_fails {query:?}: {other:?}")),
        }
    }
    for query in &examples.validate_fails {
        match parse(query) {
            Err(e) if matches!(e.kind, ErrorKind::Invalid | ErrorKind::Syntax) && e.line >= 1 => {}
            other => failures.push(format!("validate_fails {query:?}: {other:?}")),
        }
    }
    for query in &examples.unsupported {
        if let Ok(q) = parse(query) {
            failures.push(format!("unsupported {query:?} was accepted as {q}"));
        }
    }

    let mut accepted = 0;
    let mut constructs: BTreeMap<String, usize> = BTreeMap::new();
    for query in &examples.valid {
        match parse(query) {
            Ok(parsed) => {
                accepted += 1;
                let printed = parsed.to_string();
                match parse(&printed) {
                    Ok(again) if again == parsed => {}
                    other => failures.push(format!(
                        "valid {query:?} printed as {printed:?}, which parses to {other:?}"
                    )),
                }
            }
            Err(e) if e.kind == ErrorKind::Unsupported && e.message.contains('`') => {
                *constructs.entry(e.message).or_default() += 1;
            }
            Err(e) => failures.push(format!("valid {query:?}: {e}")),
        }
    }

    let total = examples.valid.len();
    println!(
        "TraceQL conformance: {accepted} of {total} valid queries accepted ({:.1} %); \
         {} parse_fails and {} validate_fails refused",
        100.0 * accepted as f64 / total as f64,
        examples.parse_fails.len(),
        examples.validate_fails.len()
    );
    for (construct, count) in &constructs {
        println!("  unsupported ({count}): {construct}");
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
