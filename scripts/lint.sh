#!/usr/bin/env bash
# gofmt and go vet over every Go file of the project (tracked or new, not ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.go' | while read -r f; do [ -f "$f" ] && echo "$f"; done)
bad=$(gofmt -l "${files[@]}")
if [ -n "$bad" ]; then echo "gofmt would change: $bad" >&2; exit 1; fi
go vet ./...
