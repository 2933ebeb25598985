#!/usr/bin/env bash
# Brings the system up on this machine with built-in defaults: installs what is missing, builds (or reuses) the
# real servers, starts them on loopback, builds ziti-bootstrap and runs `apply` against them.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
phase deps scripts/install-deps.sh
phase build-servers scripts/build-servers.sh
phase testbed-up go run ./internal/testbed/cmd/testbed up
mkdir -p bin
phase build go build -o bin/ziti-bootstrap ./cmd/ziti-bootstrap
env_file=$(go run ./internal/testbed/cmd/testbed env)
phase apply bin/ziti-bootstrap apply --env-file "$env_file"
echo "up: converged. Re-run: bin/ziti-bootstrap apply --env-file $env_file   Stop: go run ./internal/testbed/cmd/testbed down" >&2
