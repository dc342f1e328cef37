#!/usr/bin/env bash
# Install Debian packages that are not installed yet, non-interactively.
#   scripts/ensure-apt.sh openssl valgrind
# Runs `apt-get update` once, and only if something is missing.
set -euo pipefail

missing=()
for p in "$@"; do
    if ! dpkg -s "$p" >/dev/null 2>&1 \
        || ! dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed'; then
        missing+=("$p")
    fi
done
[ "${#missing[@]}" -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
echo "ensure-apt: installing ${missing[*]}" >&2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "ensure-apt: installing ${missing[*]} failed" >&2
    exit 1
fi
