#!/usr/bin/env bash
# Runs the whole test suite against the real servers, on a fresh machine too: installs the Debian packages,
# builds (or reuses cached) servers, starts the test bed, checks formatting and vet, then `go test ./...`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
phase deps scripts/install-deps.sh
# servers: the Go builds of the servers keep both cores busy for most of a cold run (half an hour); beside them,
# what needs none of them and mostly waits for the network or the disk: the Docker Engine, the Keycloak
# downloads, the test bed's PostgreSQL and Keycloak (a new Keycloak database takes minutes to set up) and the
# images built from Debian packages (root filesystems, PostgreSQL, Keycloak, the multi-node test bed's node).
# Warm, every part finds its cache in seconds. Each part prints its own "phase" line. The builds run at a lower
# priority (nice): they take whatever CPU the rest leaves, and Keycloak still starts within its 4 minutes.
servers() {
  phase build-servers nice -n 10 scripts/build-servers.sh ziti spire spire_previous weed &
  local builds=$! rc=0
  { phase docker go run ./internal/testbed/cmd/testbed up docker &&
    phase keycloak-dist scripts/build-servers.sh keycloak keycloak_testbed keycloak_next &&
    phase testbed-keycloak go run ./internal/testbed/cmd/testbed up postgres keycloak &&
    phase base-images scripts/images.sh base postgres keycloak node >/dev/null; } || rc=1
  wait "$builds" || rc=1
  return $rc
}
phase servers servers
# bed: the images of the Go-built servers and the test bed, beside lint (gofmt, go vet: the cores, and the build
# cache the tests use next)
bed() {
  phase lint scripts/lint.sh &
  local lint=$! rc=0
  { phase images scripts/images.sh && phase testbed-up go run ./internal/testbed/cmd/testbed up; } || rc=1
  wait "$lint" || rc=1
  return $rc
}
phase bed bed
# a count, not a duration: Go 1.26's fuzz coordinator can report its own -fuzztime deadline as a failure
# ("context deadline exceeded", no failing input; golang/go#75804, fixed in Go 1.27). 30,000 runs: 10 s on a quiet machine here.
phase fuzz-config go test -run '^$' -fuzz FuzzLoad -fuzztime 30000x ./internal/config
# go_test: go test ./... with -json, printed as plain go test prints it, then the 20 slowest tests and the slowest
# packages (internal/testbed/cmd/testreport); the raw events stay in $ZB_TEST_JSON for a closer look.
go_test() {
  local report json=${ZB_TEST_JSON:-${TMPDIR:-/tmp}/zb-go-test-$$.json}
  report=$(mktemp)
  go build -o "$report" ./internal/testbed/cmd/testreport || return 1
  echo "go test events: $json" >&2
  # -p 4: two test binaries at a time (the default on 2 cores) left the packages behind cmd/ziti-bootstrap and
  # internal/crashtest waiting while those two mostly waited for each other (the Swarm's apply lock)
  go test -json -p 4 -count=1 -timeout 60m ./... 2>&1 | tee "$json" | "$report" -top 20
  local rc=("${PIPESTATUS[@]}")
  rm -f "$report"
  [ "${rc[0]}" = 0 ] && [ "${rc[2]}" = 0 ]
}
phase go-test go_test
