#!/usr/bin/env bash
# `make bench` / `make bench-smoke`: builds the bench driver and every peer
# program that can be built here, then runs them side by side (benches/README.md).
#
#   benches/run.sh            full run: installs libssl-dev, php-cli, valgrind and
#                             matplotlib first; results in benches/results/<date>.*
#   benches/run.sh --smoke    small sizes, one repetition, < 2 minutes; installs
#                             nothing: a peer whose toolchain is missing is skipped
#                             with the reason. Fails only if the transporturl C ABI
#                             row fails. Results in target/bench/smoke/.
#
# Extra arguments go to the driver (e.g. --only W1,W3 --reps 3 --scale 0.5).
# Needs the library built first (`cargo build --release`; the Makefile does it).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 1

smoke=0
driver_args=()
for a in "$@"; do
    if [ "$a" = "--smoke" ]; then smoke=1; fi
    driver_args+=("$a")
done

say() { echo "bench: $*" >&2; }
die() { say "$*"; exit 1; }

lib_a="$root/target/release/libtransporturl.a"
lib_so="$root/target/release/libtransporturl.so"
[ -f "$lib_a" ] && [ -f "$lib_so" ] || die "the library is not built: run cargo build --release (make lib)"

if [ "$smoke" = 0 ]; then
    # The full run installs what it needs (Debian packages, matplotlib in .venv).
    scripts/ensure-apt.sh libssl-dev php-cli valgrind pkg-config || say "could not install every package: the missing peers will be skipped"
fi

# Both ends of a measurement share the machine with the build: keep it quiet.
bench_target="$root/target/bench"
peers_dir="$bench_target/peers"
mkdir -p "$peers_dir"

say "building the driver and the Rust peers (CARGO_TARGET_DIR=target/bench)"
CARGO_TARGET_DIR="$bench_target" cargo build --release --quiet --manifest-path benches/driver/Cargo.toml \
    || die "building benches/driver failed"
drv="$bench_target/release/tu-bench"
peer_rust="$bench_target/release/peer-rust"

peers="$bench_target/peers.txt"
: >"$peers"
add() { # add ID STATUS ARGV...
    local id="$1" st="$2"
    shift 2
    local line="$id"$'\t'"$st"
    for w in "$@"; do line+=$'\t'"$w"; done
    echo "$line" >>"$peers"
}

CC="${CC:-cc}"
cflags=(-std=c11 -O2 -g -Wall -Wextra -Werror -I"$root/include")
log="$bench_target/build.log"
: >"$log"

# transporturl through the C header (the headline row): must build.
"$CC" "${cflags[@]}" -DBACKEND_TU benches/peers/peer.c -o "$peers_dir/c-tu" \
    "$lib_a" -lgcc_s -lutil -lrt -lpthread -lm -ldl >>"$log" 2>&1 \
    || { cat "$log" >&2; die "building the C ABI peer failed"; }
add tu-c ok "$peers_dir/c-tu"
add tu-rust ok "$peer_rust" tu
add rustls ok "$peer_rust" rustls
add rustls-default ok "$peer_rust" rustls-default

if "$CC" "${cflags[@]}" -DBACKEND_PLAIN benches/peers/peer.c -o "$peers_dir/c-plain" >>"$log" 2>&1; then
    add plain ok "$peers_dir/c-plain"
else
    add plain "skip: building the plain-socket peer failed (see $log)"
fi

if "$CC" "${cflags[@]}" -DBACKEND_OPENSSL benches/peers/peer.c -o "$peers_dir/c-openssl" -lssl -lcrypto >>"$log" 2>&1; then
    add openssl ok "$peers_dir/c-openssl"
else
    add openssl "skip: OpenSSL headers/libraries missing (apt-get install libssl-dev)"
fi

# Python: the project venv's interpreter for both Python rows.
py=""
if py="$(scripts/ensure-venv.sh 2>>"$log")"; then :; else py="$(command -v python3 || true)"; fi
if [ -n "$py" ]; then
    add python-ssl ok "$py" "$root/benches/peers/py_peer.py" ssl
    pyenv=(env "PYTHONPATH=$root/bindings/python/src" "TRANSPORTURL_LIB=$lib_so")
    if [ -d bindings/python/src/transporturl ] \
        && "${pyenv[@]}" timeout 30 "$py" -c 'import transporturl; transporturl.connect' >>"$log" 2>&1; then
        add tu-python ok "${pyenv[@]}" "$py" "$root/benches/peers/py_peer.py" tu
    else
        add tu-python "skip: Python binding not built yet (import transporturl failed)"
    fi
    add python-ctypes ok env "TRANSPORTURL_LIB=$lib_so" "$py" "$root/benches/peers/py_peer.py" ctypes
else
    for id in python-ssl tu-python python-ctypes; do add "$id" "skip: no python3"; done
fi

# Go: crypto/tls always; the binding's rows when it builds.
if command -v go >/dev/null 2>&1; then
    export GOFLAGS=-mod=mod GOTOOLCHAIN=local
    if (cd benches/peers/go && timeout 300 go build -o "$peers_dir/go-std" .) >>"$log" 2>&1; then
        add go-tls ok "$peers_dir/go-std" tls
    else
        add go-tls "skip: building the Go crypto/tls peer failed (see $log)"
    fi
    if [ -f bindings/go/go.mod ] \
        && (cd benches/peers/go && timeout 300 go build -tags tubinding -o "$peers_dir/go-tu" .) >>"$log" 2>&1; then
        add tu-go ok "$peers_dir/go-tu" tu
        add go-cgo ok "$peers_dir/go-tu" cgo
    else
        add tu-go "skip: Go binding not built yet (go build -tags tubinding failed, see $log)"
        add go-cgo "skip: Go binding not built yet"
    fi
else
    for id in go-tls tu-go go-cgo; do add "$id" "skip: no Go toolchain (go not on PATH)"; done
fi

if command -v php >/dev/null 2>&1 && php -r 'exit(extension_loaded("openssl") ? 0 : 1);' 2>>"$log"; then
    add php ok "$(command -v php)" "$root/benches/peers/php_peer.php"
else
    add php "skip: php-cli with the openssl extension not installed (apt-get install php-cli)"
fi

if [ "$smoke" = 1 ]; then
    out="$bench_target/smoke"
    stamp="smoke"
else
    out="${BENCH_OUT:-$root/benches/results}"
    stamp="$(date -u +%Y-%m-%d)"
    say "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (2 vCPUs: wait for < 0.5 for numbers worth keeping)"
fi

"$drv" run --peers "$peers" --out "$out" --stamp "$stamp" "${driver_args[@]}"
rc=$?

# The chart (full runs; a smoke run draws one only if matplotlib is already there).
chart_py=""
if [ "$smoke" = 0 ]; then
    chart_py="$(scripts/ensure-venv.sh matplotlib 2>>"$log")" || chart_py=""
elif [ -n "$py" ] && "$py" -c 'import matplotlib' >/dev/null 2>&1; then
    chart_py="$py"
fi
if [ -n "$chart_py" ] && [ -f "$out/$stamp-summary.json" ]; then
    "$chart_py" benches/chart.py "$out/$stamp-summary.json" "$out/$stamp-ratios.png" \
        && say "chart: $out/$stamp-ratios.png" || say "drawing the chart failed"
elif [ "$smoke" = 0 ]; then
    say "no chart: matplotlib could not be installed"
fi
exit $rc
