#!/usr/bin/env bash
# The whole test suite: installs the real peers the interop tests use, then runs the unit and
# end-to-end tests and the interop tests (OpenTelemetry Python SDK in its own virtual
# environment, util-linux logger, Debian's Prometheus).
set -euo pipefail
cd "$(dirname "$0")/.."

# The interop tests run the OpenTelemetry SDK with this interpreter (default: python3).
SIGHTLINE_PYTHON=$(bash scripts/install-test-deps.sh)
export SIGHTLINE_PYTHON
cargo test --workspace --all-targets --features sightline-server/interop
