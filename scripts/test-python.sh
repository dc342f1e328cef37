#!/usr/bin/env bash
# Installs the Python binding into the project venv and runs its tests
# against the freshly built library.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$("$root/scripts/ensure-venv.sh")"
"$py" -m pip install -q --disable-pip-version-check "$root/bindings/python" >/dev/null
export TRANSPORTURL_LIB="$root/target/release/libtransporturl.so"
cd "$root/bindings/python"
"$py" -m pytest -q tests
