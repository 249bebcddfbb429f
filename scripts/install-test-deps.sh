#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: util-linux's logger (syslog
# peer), Debian's prometheus and promtool (the PromQL/remote_write peer) and the
# OpenTelemetry Python SDK with its OTLP exporters. Idempotent and quiet when
# everything is already there.
set -euo pipefail

need_apt=()
command -v logger >/dev/null 2>&1 || need_apt+=(bsdutils)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
# Debian's package puts both prometheus and promtool on the PATH; nothing is started.
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

if ! python3 -c 'import opentelemetry.sdk._logs, opentelemetry.exporter.otlp.proto.grpc._log_exporter, opentelemetry.exporter.otlp.proto.http._log_exporter' >/dev/null 2>&1; then
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore \
    opentelemetry-sdk opentelemetry-exporter-otlp-proto-grpc opentelemetry-exporter-otlp-proto-http \
    || python3 -m pip install -q --break-system-packages \
    opentelemetry-sdk opentelemetry-exporter-otlp-proto-grpc opentelemetry-exporter-otlp-proto-http
fi
