//! Fuzz harnesses for every parser that reads untrusted bytes (issue 10: no input crashes or
//! hangs the server).
//!
//! Each harness is a plain function in [`targets`], so that it runs under libFuzzer
//! (`fuzz_targets/`, `cargo fuzz run`) and, on stable without libFuzzer, over the committed
//! seeds and regression inputs (`tests/regressions.rs`). Beyond "no panic", each checks what
//! must hold of what the parser returns ([`check`]): counts that add up, label sets that
//! survive the canonical text form the stores keep, chunking that does not change framing,
//! and a CPU-time budget linear in the input's length.

pub mod check;
pub mod targets;

/// The server's configuration, compiled from its own source: `sightline-server` is a binary
/// crate, so `Config` has no public path to import (see README.md).
#[path = "../../server/src/config.rs"]
#[allow(dead_code, unused_imports, clippy::all)]
pub mod server_config;
