#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: util-linux's logger (syslog
# peer), Debian's prometheus and promtool (the PromQL/remote_write peer), prometheus-alertmanager
# with amtool (the alerting peer), prometheus-node-exporter (the host metrics peer) and, in a virtual
# environment of their own (never into the system's interpreter), the OpenTelemetry Python
# SDK with its OTLP exporters and aiosmtpd. Idempotent and quiet when everything is already there.
#
# Prints one line on stdout: the Python interpreter of that environment, which
# `scripts/test.sh` hands to the tests as SIGHTLINE_PYTHON. The environment lives in
# $SIGHTLINE_VENV, by default outside the repository in the user's cache directory, so that
# every checkout shares it.
set -euo pipefail

venv=${SIGHTLINE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sightline/test-venv}

need_apt=()
command -v logger >/dev/null 2>&1 || need_apt+=(bsdutils)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# Debian splits venv support (ensurepip) out of python3.
python3 -c 'import ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
# Debian's package puts both prometheus and promtool on the PATH; nothing is started.
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
# Alertmanager and amtool: the peers of the alert manager's differential tests (issue 14).
command -v prometheus-alertmanager >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
command -v amtool >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
# node_exporter: the peer of the agent's host metrics (issue 17); the test starts its own.
command -v prometheus-node-exporter >/dev/null 2>&1 || need_apt+=(prometheus-node-exporter)
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
fi

python=$venv/bin/python3
if [ ! -x "$python" ]; then
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv" >&2
fi
if ! "$python" -c 'import opentelemetry.sdk._logs, opentelemetry.exporter.otlp.proto.grpc._log_exporter, opentelemetry.exporter.otlp.proto.http._log_exporter' >/dev/null 2>&1; then
  "$python" -m pip install -q --disable-pip-version-check \
    opentelemetry-sdk opentelemetry-exporter-otlp-proto-grpc opentelemetry-exporter-otlp-proto-http >&2
fi
# aiosmtpd: the SMTP server that receives the alert manager's mail in tests.
if ! "$python" -c 'import aiosmtpd' >/dev/null 2>&1; then
  "$python" -m pip install -q --disable-pip-version-check aiosmtpd >&2
fi
echo "$python"
