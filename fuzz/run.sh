#!/usr/bin/env bash
# Builds and runs every fuzz target for SECONDS each (default 20), starting
# from the committed seeds (fuzz/seeds/TARGET) plus the corpus earlier runs
# grew (target/fuzz/corpus/TARGET, not committed).
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Installs what it needs when missing: the nightly toolchain (rustup) and
# cargo-fuzz (cargo install --locked). Builds with AddressSanitizer and debug
# assertions. Prints one line per target (executions, corpus size, crashes),
# appends them to $TU_HARDENING_REPORT when set, and exits non-zero on a crash,
# a leak or a timeout; the input that did it is kept under target/fuzz/artifacts/.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
secs="${1:-20}"
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(url_parse options_set c_api)
out="$root/target/fuzz"
mkdir -p "$out"

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "fuzz/run.sh: installing the nightly toolchain (cargo-fuzz needs -Zsanitizer)"
    rustup toolchain install nightly --profile minimal || { echo "fuzz/run.sh: rustup failed"; exit 1; }
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --locked || { echo "fuzz/run.sh: cargo install cargo-fuzz failed"; exit 1; }
fi

cd "$here" || exit 1
echo "fuzz/run.sh: building ${targets[*]} (nightly, ASan, debug assertions)"
build_args=()
[ "${#targets[@]}" -eq 1 ] && build_args=("${targets[0]}") # one target, or all of them
if ! cargo +nightly fuzz build --debug-assertions --target-dir "$out/build" "${build_args[@]}" >"$out/build.log" 2>&1; then
    tail -n 40 "$out/build.log"
    echo "fuzz/run.sh: build failed"
    exit 1
fi

failed=0
for t in "${targets[@]}"; do
    corpus="$out/corpus/$t"
    artifacts="$out/artifacts/$t/"
    mkdir -p "$corpus" "$artifacts"
    log="$out/$t.log"
    # -rss_limit_mb and -timeout catch leaks that grow and inputs that hang;
    # -max_len 4096 keeps mutation quick (inputs starting 0xFF grow to 256 KiB).
    cargo +nightly fuzz run --debug-assertions --target-dir "$out/build" "$t" "$corpus" "$here/seeds/$t" -- \
        -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -dict="$here/url.dict" -artifact_prefix="$artifacts" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)"
    rate="$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)"
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*')"
    units="$(find "$corpus" -type f | wc -l)"
    crashes="$(find "$artifacts" -type f | wc -l)"
    line="fuzz: $t = ${execs:-0} execs in ${secs} s (${rate:-0}/s), coverage ${cov:-?} edges, corpus $units grown + $(find "$here/seeds/$t" -type f | wc -l) seeds, $crashes crash(es)"
    echo "$line"
    [ -n "${TU_HARDENING_REPORT:-}" ] && echo "$line" >>"$TU_HARDENING_REPORT"
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        failed=1
        grep -E -A25 '==ERROR|panicked|SUMMARY|deadly signal|timeout after' "$log" | head -n 60
        echo "fuzz/run.sh: $t failed (exit $rc); inputs kept in $artifacts; log $log"
    fi
done
[ "$failed" -eq 0 ] && echo "fuzz/run.sh: ${#targets[@]} targets, no crash"
exit "$failed"
