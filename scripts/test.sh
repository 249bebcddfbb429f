#!/usr/bin/env bash
# The whole test suite: installs the real peers the interop tests use, then runs the unit and
# end-to-end tests and the interop tests (OpenTelemetry Python SDK, util-linux logger).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
cargo test --workspace --all-targets --features sightline-server/interop
