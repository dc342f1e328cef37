#!/usr/bin/env bash
# Vets and tests the Go binding (race detector on) against the static library.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/bindings/go"
unformatted="$(gofmt -l .)"
if [ -n "$unformatted" ]; then
    echo "gofmt: not formatted: $unformatted" >&2
    exit 1
fi
go vet ./...
go test -race -count=1 ./...
