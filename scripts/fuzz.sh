#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of untrusted bytes (issue 10), bounded.
#
#   scripts/fuzz.sh [BUDGET] [TARGET...]
#
# BUDGET per target: `60` (seconds, the default is 10) or `50000r` (executions). Targets
# default to all of fuzz/Cargo.toml's. Builds on the stable toolchain with cargo-fuzz
# (`-s none`: no sanitizer, which needs nightly; Rust code needs none for memory safety, and
# panics, overflows and debug assertions still abort), then runs each target once, one after
# the other (one process, one core), and prints per target: executions, exec/s, crashes.
# Exit status 1 when any target crashed, hung (>10 s of wall time: a niced fuzzer can wait
# seconds for a core while the machine builds; work superlinear in the input is caught by
# the harness's CPU-time budget instead) or ran out of memory (2 GiB); the
# inputs are in fuzz/artifacts/<target>/. New corpus inputs go to fuzz/work/<target>
# (ignored by git), seeds are read from fuzz/corpus/<target>.
#
# Environment: NICE (default 19), FUZZ_KEEP_GOING=1 restarts a target after a crash until its
# time budget is spent (for long runs), FUZZ_ARGS adds libFuzzer flags.
set -euo pipefail
cd "$(dirname "$0")/.."

budget=${1:-10}
shift || true
nice_level=${NICE:-19}

if [[ $budget =~ ^([0-9]+)r$ ]]; then
    limit=(-runs="${BASH_REMATCH[1]}")
    seconds=
elif [[ $budget =~ ^[0-9]+$ ]]; then
    limit=()
    seconds=$budget
else
    echo "usage: $0 [SECONDS | RUNSr] [TARGET...]" >&2
    exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz (crates.io)" >&2
    nice -n "$nice_level" cargo install cargo-fuzz --locked >&2
fi

if (($# > 0)); then
    targets=("$@")
else
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^sightline-fuzz$')
fi

build_start=$SECONDS
if (($# > 0)); then
    for t in "${targets[@]}"; do
        nice -n "$nice_level" cargo fuzz build -s none --fuzz-dir fuzz "$t" >&2
    done
else
    nice -n "$nice_level" cargo fuzz build -s none --fuzz-dir fuzz >&2
fi
echo "built in $((SECONDS - build_start)) s" >&2
bin_dir=fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release

# Bodies (protobuf, JSON) are larger than queries, messages and configuration files.
max_len() {
    case $1 in
    otlp_* | remote_write | loki_push_*) echo 16384 ;;
    *) echo 4096 ;;
    esac
}

printf '%-20s %12s %10s %8s  %s\n' target executions exec/s crashes artifacts
failed=0
for t in "${targets[@]}"; do
    work=fuzz/work/$t
    artifacts=fuzz/artifacts/$t
    mkdir -p "$work" "$artifacts" "fuzz/corpus/$t"
    dict=()
    [[ -f fuzz/dict/$t ]] && dict=(-dict="fuzz/dict/$t")
    log=$artifacts/fuzz.log
    : >"$log"
    execs=0 crashes=0 elapsed=0 start=$SECONDS
    before=$(find "$artifacts" -type f ! -name fuzz.log | wc -l)
    while :; do
        time_limit=()
        if [[ -n $seconds ]]; then
            left=$((seconds - (SECONDS - start)))
            ((left > 0)) || break
            time_limit=(-max_total_time="$left")
        fi
        set +e
        # shellcheck disable=SC2086
        # -reload=0: one process per target, so nothing else adds to the corpus; libFuzzer's
        # default rescans it every second, a stat() per input file (half the CPU time went
        # to the kernel with a few thousand inputs).
        nice -n "$nice_level" "$bin_dir/$t" "${limit[@]}" "${time_limit[@]}" "${dict[@]}" \
            -max_len="$(max_len "$t")" -timeout=10 -reload=0 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} \
            "$work" "fuzz/corpus/$t" >>"$log" 2>&1
        rc=$?
        set -e
        n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        if [[ -z $n ]]; then # killed before its final stats: the last progress line
            n=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
        fi
        execs=$((execs + ${n:-0}))
        # Each run appends its own stats; count only this run's from now on.
        echo "--- end of run (exit $rc) ---" >>"$log"
        sed -i 's/^stat::number_of_executed_units/stat::counted_units/' "$log"
        ((rc == 0)) && break
        crashes=$((crashes + 1))
        [[ ${FUZZ_KEEP_GOING:-0} == 1 && -n $seconds ]] || break
    done
    elapsed=$((SECONDS - start))
    found=$(($(find "$artifacts" -type f ! -name fuzz.log | wc -l) - before))
    rate=$((execs / (elapsed > 0 ? elapsed : 1)))
    printf '%-20s %12d %10d %8d  %s\n' "$t" "$execs" "$rate" "$crashes" \
        "$( ((found > 0)) && echo "$artifacts/ ($found new)" || echo -)"
    ((crashes == 0)) || failed=1
done
exit "$failed"
