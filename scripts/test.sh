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
# go_test: go test ./... with -json, printed as plain go test prints it, then the 20 slowest tests and the slowest
# packages (internal/testbed/cmd/testreport); the raw events stay in $ZB_TEST_JSON for a closer look.
go_test() {
  local report json=${ZB_TEST_JSON:-${TMPDIR:-/tmp}/zb-go-test-$$.json}
  report=$(mktemp)
  go build -o "$report" ./internal/testbed/cmd/testreport
  echo "go test events: $json" >&2
  go test -json -count=1 -timeout 60m ./... 2>&1 | tee "$json" | "$report" -top 20
  local rc=("${PIPESTATUS[@]}")
  rm -f "$report"
  [ "${rc[0]}" = 0 ] && [ "${rc[2]}" = 0 ]
}
phase go-test go_test
