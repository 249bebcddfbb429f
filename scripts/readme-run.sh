#!/usr/bin/env bash
# Runs the README's own commands, so that they cannot silently break again: the "Run it"
# command (started, waited for until /readyz answers 200, stopped with SIGTERM, exit status
# 0 required), and with it running, every `cargo run --release -- …` client command of the
# tour and of the demo's next steps (`incidents list`, `demo faults`, `demo fault …`; exit
# status 0 required). The run command may be `serve` or `demo`.
#
# The commands are taken from README.md as written, with one change: `--release` is dropped,
# so that the debug build the tests just made is reused instead of a second, optimised build
# of the whole tree. What this guards against (cargo not finding the binary, a subcommand or
# flag that no longer exists, a server that does not come up or stop cleanly) does not
# depend on the profile. The environment variables the README documents put the server on
# free ports and a temporary data directory. `logs import app.log` is left out: it reads the
# reader's own file.
set -euo pipefail
cd "$(dirname "$0")/.."

readme=README.md
# The first line of the first ```sh block after "**Run it**".
run_command=$(awk '/\*\*Run it\*\*/ {found=1} found && /^```sh/ {getline; print; exit}' "$readme")
case "$run_command" in
  "cargo run --release -- serve"* | "cargo run --release -- demo"*) ;;
  *) echo "readme-run: cannot find the README's run command (got: '$run_command')" >&2; exit 1 ;;
esac
mapfile -t client_commands < <(grep -E '^cargo run --release -- (logs |metrics |incidents list( |$)|demo faults?( |$))' "$readme" | grep -v ' logs import ')
if [ ${#client_commands[@]} -eq 0 ]; then
  echo "readme-run: no client commands found in the README" >&2
  exit 1
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

debug_build() { sed -e 's/ --release / /' <<<"$1"; }

echo "readme-run: $(debug_build "$run_command")"
# The log exists before the server starts: the background job opens it only when it is
# scheduled, and a `sed` on a missing file would end this script (set -e, pipefail).
: >"$work/server.log"
# `cargo run` execs the binary on Unix, so the PID below is the server's own.
SIGHTLINE_DATA_DIR="$work/data" \
  SIGHTLINE_HTTP_ADDR=127.0.0.1:0 \
  SIGHTLINE_OTLP_GRPC_ADDR=127.0.0.1:0 \
  SIGHTLINE_OTLP_HTTP_ADDR=127.0.0.1:0 \
  SIGHTLINE_SYSLOG_ADDR=127.0.0.1:0 \
  SIGHTLINE_LOG=info \
  bash -c "exec $(debug_build "$run_command")" 2>"$work/server.log" &
server_pid=$!

# The bound address, from the log line `sightline listening http_addr=…` (port 0 resolved).
http_addr=
for _ in $(seq 1 1800); do
  http_addr=$(sed -n 's/.*sightline listening.* http_addr=\([0-9.:]*\).*/\1/p' "$work/server.log" | head -1 || true)
  [ -n "$http_addr" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "readme-run: the server exited before listening:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  sleep 0.5
done
if [ -z "$http_addr" ]; then
  echo "readme-run: the server never logged its address:" >&2
  tail -50 "$work/server.log" >&2
  exit 1
fi

# GET /readyz with bash alone (a fresh machine need not have curl): prints the status code.
readyz_status() {
  local host=${http_addr%:*} port=${http_addr##*:} line
  exec 3<>"/dev/tcp/$host/$port" || return 1
  printf 'GET /readyz HTTP/1.0\r\nHost: %s\r\n\r\n' "$http_addr" >&3
  read -r line <&3 || true
  exec 3<&- 3>&-
  awk '{print $2}' <<<"$line"
}
ready=
for _ in $(seq 1 600); do
  if [ "$(readyz_status 2>/dev/null)" = 200 ]; then
    ready=1
    break
  fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "readme-run: /readyz never answered 200:" >&2
  tail -50 "$work/server.log" >&2
  exit 1
fi
echo "readme-run: ready on $http_addr"

for command in "${client_commands[@]}"; do
  echo "readme-run: $(debug_build "$command")"
  if ! SIGHTLINE_SERVER="http://$http_addr" bash -c "$(debug_build "$command")" >/dev/null; then
    echo "readme-run: the README command failed: $command" >&2
    exit 1
  fi
done

kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=
if [ "$status" -ne 0 ]; then
  echo "readme-run: the server exited with $status after SIGTERM:" >&2
  tail -50 "$work/server.log" >&2
  exit 1
fi
echo "readme-run: the server stopped cleanly"
