#!/usr/bin/env bash
# The transporturl demo (`make demo`): tucat, the example C tool, against
# real servers on loopback, with certificates made for the occasion.
#
#   (a) tcp://localhost:SMTP + --starttls smtp   -> upgrade to TLS, EHLO, QUIT, 221
#   (b) tls://localhost:TLS                      -> implicit TLS echo
#   (c) tls://localhost:SMTP                     -> refused: TU_E_PLAINTEXT_PEER,
#                                                   with the library's explanation
#
# Needs the library built (cargo build --release), openssl, and python3; the
# SMTP server's aiosmtpd is installed into .venv by scripts/ensure-venv.sh.
# Exits 0 only if all three behaved as described.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 1
CC="${CC:-cc}"
libdir="${TU_LIB_DIR:-$root/target/release}"

# shellcheck source=tests/support/servers.sh
. "$root/tests/support/servers.sh"

bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
die() {
    echo "demo: $*" >&2
    exit 1
}

[ -f "$root/include/transporturl.h" ] || die "include/transporturl.h is missing: run cargo build --release"
[ -f "$libdir/libtransporturl.a" ] || die "$libdir/libtransporturl.a is missing: run cargo build --release"
command -v openssl >/dev/null || die "openssl is not installed"

work="$(mktemp -d "${TMPDIR:-/tmp}/tu-demo.XXXXXX")"
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    tu_servers_stop
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tucat="$work/tucat"
"$CC" -Wall -Wextra -Werror -std=c99 -D_POSIX_C_SOURCE=200809L -O2 -pthread -I"$root/include" \
    "$root/examples/tucat.c" "$libdir/libtransporturl.a" -lpthread -ldl -lm -o "$tucat" \
    || die "building examples/tucat.c failed"

"$root/tests/support/mkcerts.sh" "$work/certs" || die "making certificates failed"
ca="$work/certs/ca.pem"
python="$("$root/scripts/ensure-venv.sh")" || die "could not set up .venv (aiosmtpd)"

tu_servers_init "$work/servers"
tu_start_server smtp "$python" "$root/tests/support/smtp_server.py" \
    --cert "$work/certs/server.pem" --key "$work/certs/server.key" || die "SMTP server failed"
smtp_port="$TU_PORT"
tu_start_server tls python3 "$root/tests/support/tls_server.py" \
    --cert "$work/certs/server.pem" --key "$work/certs/server.key" || die "TLS server failed"
tls_port="$TU_PORT"

echo "tucat:        $("$tucat" --version)"
echo "SMTP server:  127.0.0.1:$smtp_port (plaintext, offers STARTTLS)"
echo "TLS server:   127.0.0.1:$tls_port (implicit TLS, echoes, ends on QUIT)"
echo "trust:        the demo's own CA, $ca (-o ssl.cafile=...)"

show() { # show STEP FILE-PREFIX: print the command's stderr and stdout
    sed 's/^/    stderr| /' "$work/$1.err"
    sed 's/^/    stdout| /' "$work/$1.out"
    echo "    exit status: $(cat "$work/$1.rc")"
}

# (a) STARTTLS
echo
bold "(a) STARTTLS: tucat --starttls smtp -o ssl.cafile=ca.pem tcp://localhost:$smtp_port"
echo "    stdin: EHLO x / QUIT (sent after the upgrade, over TLS)"
printf 'EHLO x\r\nQUIT\r\n' | timeout 20 "$tucat" --starttls smtp -o "ssl.cafile=$ca" \
    -o read_timeout=10 "tcp://localhost:$smtp_port" >"$work/a.out" 2>"$work/a.err"
echo $? >"$work/a.rc"
show a
a_ok=0
if [ "$(cat "$work/a.rc")" = 0 ] \
    && grep -Eq 'connected to .*\(TLSv1\.[23] TLS_[A-Z0-9_]+\) after STARTTLS' "$work/a.err" \
    && grep -q '^221' "$work/a.out"; then
    a_ok=1
fi
a_info="$(sed -n -E 's/.*\((TLSv1\.[23] TLS_[A-Z0-9_]+)\) after STARTTLS.*/\1/p' "$work/a.err")"

# (b) implicit TLS
echo
bold "(b) implicit TLS: tucat -o ssl.cafile=ca.pem tls://localhost:$tls_port"
echo "    stdin: hello from tucat / QUIT"
printf 'hello from tucat\nQUIT\n' | timeout 20 "$tucat" -o "ssl.cafile=$ca" -o read_timeout=10 \
    "tls://localhost:$tls_port" >"$work/b.out" 2>"$work/b.err"
echo $? >"$work/b.rc"
show b
b_ok=0
if [ "$(cat "$work/b.rc")" = 0 ] \
    && grep -Eq 'connected to .*\(TLSv1\.[23] TLS_[A-Z0-9_]+\)' "$work/b.err" \
    && grep -q '^hello from tucat$' "$work/b.out"; then
    b_ok=1
fi
b_info="$(sed -n -E 's/.*connected to .*\((TLSv1\.[23] TLS_[A-Z0-9_]+)\).*/\1/p' "$work/b.err" | head -n 1)"

# (c) TLS to the STARTTLS port
echo
bold "(c) the wrong scheme: tucat -o ssl.cafile=ca.pem tls://localhost:$smtp_port (a STARTTLS port)"
timeout 20 "$tucat" -o "ssl.cafile=$ca" "tls://localhost:$smtp_port" </dev/null \
    >"$work/c.out" 2>"$work/c.err"
echo $? >"$work/c.rc"
show c
c_ok=0
if [ "$(cat "$work/c.rc")" = 1 ] && grep -q '^tucat: TU_E_PLAINTEXT_PEER: .*220' "$work/c.err"; then
    c_ok=1
fi

echo
bold "Summary"
verdict() { if [ "$1" = 1 ]; then echo "ok  "; else echo "FAIL"; fi; }
echo "  $(verdict $a_ok) (a) STARTTLS upgrade on tcp://, ${a_info:-no TLS}, server answered 221 to QUIT"
echo "  $(verdict $b_ok) (b) implicit TLS on tls://, ${b_info:-no TLS}, echo came back, orderly close"
echo "  $(verdict $c_ok) (c) tls:// to a STARTTLS port refused with TU_E_PLAINTEXT_PEER (the 220 quoted)"
if [ "$a_ok$b_ok$c_ok" = 111 ]; then
    echo "demo: all three behaved as expected"
    exit 0
fi
echo "demo: FAILED"
exit 1
