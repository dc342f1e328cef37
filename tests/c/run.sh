#!/usr/bin/env bash
# Build and run the C tests (and tucat checks) against the built library.
#
#   tests/c/run.sh                 # AddressSanitizer + UBSan, static library
#   TU_SANITIZE=valgrind tests/c/run.sh   # no ASan: the shared library under valgrind
#
# Needs target/release/libtransporturl.a (or .so for valgrind) and
# include/transporturl.h: `cargo build --release` first. Starts its own servers
# on loopback (openssl s_server, tests/support/*.py) with certificates made
# now, runs every test, prints one line per case and a total
# "N passed, M failed" line, and exits non-zero on any failure.
#
# Servers (tests/support/): openssl s_server -rev with the good, wrong-name,
# self-signed, expired and not-yet-valid certificates (127.0.0.1, and ::1 if
# present); tls_server.py with and without close_notify; smtp_server.py (real
# STARTTLS via aiosmtpd from .venv, and --inject); line_server.py (TLS on/off).
#
# Environment: CC (default cc), TU_LIB_DIR (default target/release),
# TU_CTEST_BUILD (default target/ctests), TU_SANITIZE (asan | valgrind | none),
# TU_VECTORS (default tests/vectors/urls.json).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root" || exit 1

CC="${CC:-cc}"
libdir="${TU_LIB_DIR:-$root/target/release}"
build="${TU_CTEST_BUILD:-$root/target/ctests}"
sanitize="${TU_SANITIZE:-asan}"
vectors="${TU_VECTORS:-$root/tests/vectors/urls.json}"

# shellcheck source=tests/support/servers.sh
. "$root/tests/support/servers.sh"

die() {
    echo "run.sh: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}

[ -f "$root/include/transporturl.h" ] || die "include/transporturl.h is missing (cargo build --release)"
case "$sanitize" in
asan | none) [ -f "$libdir/libtransporturl.a" ] || die "$libdir/libtransporturl.a is missing (cargo build --release)" ;;
valgrind) [ -f "$libdir/libtransporturl.so" ] || die "$libdir/libtransporturl.so is missing (cargo build --release)" ;;
*) die "TU_SANITIZE must be asan, valgrind or none" ;;
esac
command -v openssl >/dev/null || die "openssl is not installed (scripts/ensure-apt.sh openssl)"
if [ "$sanitize" = valgrind ]; then
    command -v valgrind >/dev/null || die "valgrind is not installed (scripts/ensure-apt.sh valgrind)"
fi

mkdir -p "$build"
work="$(mktemp -d "${TMPDIR:-/tmp}/tu-ctests.XXXXXX")"
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    tu_servers_stop
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build ----------------------------------------------------------------
cflags=(-Wall -Wextra -Werror -std=c99 -D_POSIX_C_SOURCE=200809L -g -O1 -pthread
        -I"$root/include" -I"$root/tests/c")
case "$sanitize" in
asan)
    # shellcheck disable=SC2054 # commas belong to the flags
    cflags+=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
    libs=("$libdir/libtransporturl.a" -lpthread -ldl -lm)
    ;;
none)
    libs=("$libdir/libtransporturl.a" -lpthread -ldl -lm)
    ;;
valgrind)
    # shellcheck disable=SC2054
    libs=(-L"$libdir" -Wl,-rpath,"$libdir" -ltransporturl -lpthread -ldl -lm)
    ;;
esac

tests=(test_null test_vectors test_tls test_starttls test_sigpipe test_leaks)
for t in "${tests[@]}"; do
    if ! "$CC" "${cflags[@]}" "$root/tests/c/$t.c" "$root/tests/c/harness.c" "${libs[@]}" \
        -o "$build/$t" 2>"$work/$t.build.log"; then
        cat "$work/$t.build.log" >&2
        die "building $t failed"
    fi
done
if ! "$CC" "${cflags[@]}" "$root/examples/tucat.c" "${libs[@]}" -o "$build/tucat" \
    2>"$work/tucat.build.log"; then
    cat "$work/tucat.build.log" >&2
    die "building examples/tucat.c failed"
fi

if [ "$sanitize" = asan ]; then
    # Prove the sanitizers are really in: the runtime is linked and the code instrumented.
    for b in "${tests[@]}" tucat; do
        if ! { ldd "$build/$b" 2>/dev/null | grep 'libasan\.so' >/dev/null || nm "$build/$b" 2>/dev/null | grep '__asan_init' >/dev/null; }; then
            die "$b is not linked with AddressSanitizer"
        fi
        nm "$build/$b" | grep '__ubsan_handle' >/dev/null || die "$b is not instrumented by UBSan"
    done
    echo "run.sh: built with AddressSanitizer + UBSan ($(ldd "$build/test_null" | grep -o 'libasan[^ ]*' | head -n 1)), static $libdir/libtransporturl.a"
else
    echo "run.sh: built without sanitizers ($sanitize), library in $libdir"
fi

# ---- certificates and servers ----------------------------------------------
certs="$work/certs"
"$root/tests/support/mkcerts.sh" "$certs" || die "mkcerts.sh failed"
tu_servers_init "$work/servers"

start_or_die() {
    tu_start_server "$@" || die "could not start server $1"
}
s_server() { # NAME CERTBASE ACCEPT
    start_or_die "$1" openssl s_server -accept "$3" -cert "$certs/$2.pem" -key "$certs/$2.key" -rev
}

s_server tls server 127.0.0.1:0
export TU_TLS_PORT="$TU_PORT"
s_server wrongname wrongname 127.0.0.1:0
export TU_WRONGNAME_PORT="$TU_PORT"
s_server selfsigned selfsigned 127.0.0.1:0
export TU_SELFSIGNED_PORT="$TU_PORT"
s_server expired expired 127.0.0.1:0
export TU_EXPIRED_PORT="$TU_PORT"
s_server notyet notyet 127.0.0.1:0
export TU_NOTYET_PORT="$TU_PORT"
if tu_have_ipv6; then
    s_server tls6 server '[::1]:0'
    export TU_TLS6_PORT="$TU_PORT"
else
    echo "run.sh: no IPv6 loopback here: the ::1 cases are skipped"
fi

start_or_die echo python3 "$root/tests/support/tls_server.py" --cert "$certs/server.pem" \
    --key "$certs/server.key" --close-notify
export TU_ECHO_PORT="$TU_PORT"
start_or_die trunc python3 "$root/tests/support/tls_server.py" --cert "$certs/server.pem" \
    --key "$certs/server.key" --no-close-notify
export TU_TRUNC_PORT="$TU_PORT"
start_or_die inject python3 "$root/tests/support/smtp_server.py" --inject \
    --cert "$certs/server.pem" --key "$certs/server.key"
export TU_INJECT_PORT="$TU_PORT"
start_or_die line python3 "$root/tests/support/line_server.py" --cert "$certs/server.pem" \
    --key "$certs/server.key"
export TU_LINE_PORT="$TU_PORT"

if venv_python="$("$root/scripts/ensure-venv.sh" 2>"$work/venv.log")"; then
    start_or_die smtp "$venv_python" "$root/tests/support/smtp_server.py" \
        --cert "$certs/server.pem" --key "$certs/server.key"
    export TU_SMTP_PORT="$TU_PORT"
    if tu_have_ipv6; then
        start_or_die smtp6 "$venv_python" "$root/tests/support/smtp_server.py" --host ::1 \
            --cert "$certs/server.pem" --key "$certs/server.key"
        export TU_SMTP6_PORT="$TU_PORT"
    fi
else
    cat "$work/venv.log" >&2
    echo "run.sh: WARNING: no aiosmtpd (scripts/ensure-venv.sh failed): SMTP cases are skipped" >&2
fi

export TU_TEST_CERTS="$certs" TU_VECTORS="$vectors"
# Tests must see the system trust store, never one a developer set for something else.
unset SSL_CERT_FILE SSL_CERT_DIR SSLKEYLOGFILE
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=86}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# ---- run ---------------------------------------------------------------------
# shellcheck disable=SC2054 # commas in valgrind flags
valgrind_opts=(-q --error-exitcode=87 --leak-check=full --errors-for-leak-kinds=definite,indirect
               --show-leak-kinds=definite,indirect --track-fds=no)
tucat_runner=()
if [ "$sanitize" = valgrind ]; then
    tucat_runner=(valgrind "${valgrind_opts[@]}") # the example under valgrind too
    # Prove that a leak fails the run: a program that loses one option set.
    printf '%s\n' '#include "transporturl.h"' \
        'static void lose(void) { tu_options *volatile o = tu_options_new(); o = 0; (void)o; }' \
        'int main(void) { lose(); return 0; }' >"$work/leak_canary.c"
    "$CC" "${cflags[@]}" "$work/leak_canary.c" "${libs[@]}" -o "$build/leak_canary" \
        || die "building the leak canary failed"
    valgrind "${valgrind_opts[@]}" "$build/leak_canary" >"$work/leak_canary.log" 2>&1
    canary=$?
    [ "$canary" -eq 87 ] || die "valgrind did not fail on a deliberate leak (exit $canary)"
    echo "run.sh: valgrind fails on a deliberate leak (canary exit $canary): definite and indirect leaks count"
fi
total_pass=0
total_fail=0
total_skip=0
failed_names=()

# run_one NAME CMD... — runs a test binary, adds its summary line to the totals
run_one() {
    local name="$1" out rc line p f s
    shift
    out="$work/$name.log"
    echo "== $name"
    if [ "$sanitize" = valgrind ]; then
        # Definite and indirect leaks fail the run; Rust's std keeps some blocks
        # "still reachable" until exit, which is not a leak.
        timeout 300 valgrind "${valgrind_opts[@]}" "$@" >"$out" 2>&1
    else
        timeout 120 "$@" >"$out" 2>&1
    fi
    rc=$?
    cat "$out"
    line="$(grep -E '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$out" | tail -n 1)"
    if [ -n "$line" ]; then
        p="$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')"
        f="$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')"
        s="$(echo "$line" | sed -n -E 's/.*, ([0-9]+) skipped$/\1/p')"
    else
        p=0 f=0 s=""
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    total_skip=$((total_skip + ${s:-0}))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        # a crash, a sanitizer report, a timeout or valgrind error after the summary
        echo "run.sh: $name exited with status $rc (crash, sanitizer report or timeout)"
        total_fail=$((total_fail + 1))
    fi
    if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
        failed_names+=("$name")
    fi
}

# The header alone compiles as C99 and C++ with every warning an error.
for lang in "c:-std=c99" "c++:-std=c++11"; do
    compiler=cc; [ "${lang%%:*}" = "c++" ] && compiler="${CXX:-c++}"
    if echo '#include "transporturl.h"' | "$compiler" -x "${lang%%:*}" "${lang#*:}" -Wall -Wextra -Werror -pedantic \
        -I"$root/include" -fsyntax-only - 2>"$work/header.log"; then
        echo "ok - header compiles as ${lang%%:*} (${lang#*:} -Wall -Wextra -Werror -pedantic)"
        total_pass=$((total_pass + 1))
    else
        cat "$work/header.log"
        echo "FAIL - header compiles as ${lang%%:*}"
        total_fail=$((total_fail + 1)); failed_names+=("header-${lang%%:*}")
    fi
done

for t in "${tests[@]}"; do
    run_one "$t" "$build/$t"
done

# tucat: the example tool, end to end (it is built with the same sanitizers)
tucat_check() { # NAME EXPECTED-EXIT STDOUT-GREP STDERR-GREP STDIN -- TUCAT-ARGS...
    local name="$1" want_rc="$2" out_re="$3" err_re="$4" input="$5" rc ok=1
    shift 6
    printf '%b' "$input" | timeout 120 "${tucat_runner[@]}" "$build/tucat" "$@" >"$work/tucat.out" 2>"$work/tucat.err"
    rc=$?
    [ "$rc" -eq "$want_rc" ] || ok=0
    [ -z "$out_re" ] || grep -Eq "$out_re" "$work/tucat.out" || ok=0
    [ -z "$err_re" ] || grep -Eq "$err_re" "$work/tucat.err" || ok=0
    if [ "$ok" = 1 ]; then
        echo "ok - tucat: $name"
        total_pass=$((total_pass + 1))
    else
        echo "FAIL - tucat: $name (exit $rc, want $want_rc)"
        sed 's/^/    stdout: /' "$work/tucat.out"
        sed 's/^/    stderr: /' "$work/tucat.err"
        total_fail=$((total_fail + 1))
        failed_names+=("tucat: $name")
    fi
}
echo "== tucat"
ca="$certs/ca.pem"
tucat_check "tls:// echo, orderly close" 0 '^hello tucat$' 'connected to .*\(TLSv1\.3 TLS_' \
    'hello tucat\nQUIT\n' -- -o "ssl.cafile=$ca" -o read_timeout=10 "tls://localhost:$TU_ECHO_PORT"
tucat_check "-N: stdin's end reaches the peer as close_notify" 0 '^half close$' '' \
    'half close\n' -- -N -o "ssl.cafile=$ca" -o read_timeout=10 "tls://localhost:$TU_ECHO_PORT"
tucat_check "tls:// without close_notify exits 1 with TU_E_TRUNCATED" 1 '^QUIT$' 'TU_E_TRUNCATED' \
    'QUIT\n' -- -o "ssl.cafile=$ca" -o read_timeout=10 "tls://localhost:$TU_TRUNC_PORT"
tucat_check "unknown issuer exits 1 with TU_E_CERTIFICATE" 1 '' '^tucat: TU_E_CERTIFICATE: ' \
    '' -- "tls://localhost:$TU_SELFSIGNED_PORT"
tucat_check "bad option exits 2" 2 '' 'TU_E_INVALID_ARGUMENT.*no\.such' '' -- -o no.such=1 \
    "tcp://127.0.0.1:$TU_TLS_PORT"
tucat_check "no URL exits 2" 2 '' 'usage' '' --
if [ -n "${TU_SMTP_PORT:-}" ]; then
    tucat_check "--starttls smtp: EHLO and QUIT over TLS" 0 '^221' \
        'connected to .*\(TLSv1\.[23] TLS_.*after STARTTLS' 'EHLO x\r\nQUIT\r\n' -- \
        --starttls smtp -o "ssl.cafile=$ca" -o read_timeout=10 "tcp://localhost:$TU_SMTP_PORT"
    tucat_check "tls:// to the STARTTLS port: TU_E_PLAINTEXT_PEER" 1 '' \
        '^tucat: TU_E_PLAINTEXT_PEER: .*220' '' -- -o "ssl.cafile=$ca" \
        "tls://localhost:$TU_SMTP_PORT"
fi
tucat_check "--starttls smtp against the injecting server: TU_E_PROTOCOL" 1 '' \
    '^tucat: TU_E_PROTOCOL: ' 'EHLO x\r\n' -- --starttls smtp -o "ssl.cafile=$ca" \
    "tcp://localhost:$TU_INJECT_PORT"

# examples/poll_echo.c: several connections from one poll loop (non-blocking
# mode), against its own echo server, then against the TLS echo server.
if "$CC" "${cflags[@]}" "$root/examples/poll_echo.c" "${libs[@]}" -o "$build/poll_echo" 2>"$work/poll_echo.build.log"; then
    for mode in plain tls; do
        if [ "$mode" = plain ]; then args=(); envs=(); else
            args=("tls://localhost:$TU_ECHO_PORT" "tls://127.0.0.1:$TU_ECHO_PORT"); envs=(TU_CAFILE="$ca"); fi
        if env "${envs[@]}" timeout 120 "${tucat_runner[@]}" "$build/poll_echo" "${args[@]}" >"$work/poll_echo.out" 2>&1; then
            echo "ok - poll_echo: $mode"
            total_pass=$((total_pass + 1))
        else
            echo "FAIL - poll_echo: $mode"; sed 's/^/    /' "$work/poll_echo.out" | tail -20
            total_fail=$((total_fail + 1)); failed_names+=("poll_echo-$mode")
        fi
    done
else
    cat "$work/poll_echo.build.log" >&2
    echo "FAIL - poll_echo: build"; total_fail=$((total_fail + 1)); failed_names+=("poll_echo-build")
fi

echo
if [ "${#failed_names[@]}" -gt 0 ]; then
    echo "run.sh: failed: ${failed_names[*]}"
fi
if [ "$total_skip" -gt 0 ]; then
    echo "$total_pass passed, $total_fail failed, $total_skip skipped"
else
    echo "$total_pass passed, $total_fail failed"
fi
[ "$total_fail" -eq 0 ]
