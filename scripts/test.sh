#!/usr/bin/env bash
# Runs the whole test suite against the real servers, on a fresh machine too: installs the Debian packages,
# builds (or reuses cached) servers, starts the test bed, checks formatting and vet, then `go test ./...`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
phase deps scripts/install-deps.sh
phase build-servers scripts/build-servers.sh
phase docker go run ./internal/testbed/cmd/testbed up docker
phase images scripts/images.sh
phase testbed-up go run ./internal/testbed/cmd/testbed up
phase lint scripts/lint.sh
phase fuzz-config go test -run '^$' -fuzz FuzzLoad -fuzztime 15s ./internal/config
phase go-test go test -count=1 -timeout 60m ./...
