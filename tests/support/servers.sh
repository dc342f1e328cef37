# shellcheck shell=bash
# Helpers to run loopback test servers from bash; source this file.
#
#   . tests/support/servers.sh
#   tu_servers_init "$workdir"            # logs go to $workdir/NAME.{out,err}
#   trap tu_servers_stop EXIT
#   tu_start_server smtp python3 tests/support/smtp_server.py --cert ... --key ...
#   echo "$TU_PORT"                       # the port the server printed
#
# A server must print "PORT <n>" (our Python servers) or "ACCEPT <host>:<n>"
# (openssl s_server) on stdout once it listens. Its stdin is /dev/null. Every
# server is started under `timeout` so that none outlives a killed runner for
# long, and tu_servers_stop kills exactly the processes that were started here.

# shellcheck disable=SC2034 # TU_PORT is read by the caller
TU_PORT=""
TU_SERVER_PIDS=()
TU_SERVER_DIR=""
TU_SERVER_LIFETIME="${TU_SERVER_LIFETIME:-900}"

tu_servers_init() {
    TU_SERVER_DIR="$1"
    mkdir -p "$TU_SERVER_DIR"
}

# tu_start_server NAME CMD... — sets TU_PORT, returns non-zero on failure.
tu_start_server() {
    local name="$1" pid i port
    shift
    TU_PORT=""
    timeout "$TU_SERVER_LIFETIME" "$@" </dev/null >"$TU_SERVER_DIR/$name.out" 2>"$TU_SERVER_DIR/$name.err" &
    pid=$!
    TU_SERVER_PIDS+=("$pid")
    for _ in $(seq 1 100); do # up to 10 s
        port="$(sed -n -E 's/^(PORT |ACCEPT .*:)([0-9]+)[[:space:]]*$/\2/p' "$TU_SERVER_DIR/$name.out" 2>/dev/null | head -n 1)"
        if [ -n "$port" ]; then
            TU_PORT="$port"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "tu_start_server: $name did not report a port; its stderr:" >&2
    sed 's/^/    /' "$TU_SERVER_DIR/$name.err" >&2
    return 1
}

tu_servers_stop() {
    local pid
    for pid in "${TU_SERVER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${TU_SERVER_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    TU_SERVER_PIDS=()
}

# true when ::1 can be bound here
tu_have_ipv6() {
    python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0)); s.close()' 2>/dev/null
}
