#!/usr/bin/env bash
# Create the project's Python virtualenv (.venv at the repo root) with the
# test dependencies, idempotently. Prints the venv's python path on stdout.
#
#   scripts/ensure-venv.sh            # .venv next to this repo's root
#   VENV=/tmp/v scripts/ensure-venv.sh
#
# Extra packages may be given as arguments; they are installed only if missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$root/.venv}"
python="${PYTHON:-python3}"
pkgs=(aiosmtpd pytest "$@")

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv" >&2
fi

# Install only what is missing (pip's own check is slow and noisy).
missing=()
for p in "${pkgs[@]}"; do
    # importable name: aiosmtpd -> aiosmtpd, pytest -> pytest; dist name check via pip metadata.
    if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; m.version(sys.argv[1])" "$p" >/dev/null 2>&1; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "${missing[@]}" >&2
fi
echo "$venv/bin/python"
