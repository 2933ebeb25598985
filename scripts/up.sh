#!/usr/bin/env bash
# Brings the whole system up on this machine with one command, on a fresh machine too: installs what is missing,
# builds (or reuses cached) servers and local images, starts dockerd as a single-node Swarm manager if needed,
# builds ziti-bootstrap and its image, then runs `ziti-bootstrap up --dev`: SPIRE → Keycloak → OpenZiti deployed
# in order, each gated on health, and the bootstrap job (the tool's image, inside the Swarm) converging SPIRE
# entries, the SPIRE CA in OpenZiti, the Keycloak realm and OpenZiti's OIDC login. Generated secrets are kept in
# the state directory (default /var/lib/ziti-bootstrap/dev for root); a re-run makes no mutating call.
#
# Usage: scripts/up.sh [ziti-bootstrap up flags...]      e.g. --prefix dev- --state-dir DIR --rerun-bootstrap
# Stack variables set in the environment win over the local images and the dev defaults, e.g.
#   ZITI_CTRL_PUBLISHED_PORT=21280 ZITI_ROUTER_PUBLISHED_PORT=23022 KEYCLOAK_PUBLISHED_PORT=28080 scripts/up.sh
#   (the README's alternative ports: free of everything the test bed holds; 18080 is its SPIRE server's)
# Remove: bin/ziti-bootstrap down [--volumes]   (the state directory is kept: delete it only with the volumes)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
export GOFLAGS=-mod=mod
phase deps scripts/install-deps.sh
phase build-servers scripts/build-servers.sh ziti spire keycloak
phase docker go run ./internal/testbed/cmd/testbed up docker
images=$(mktemp)
trap 'rm -f "$images"' EXIT
phase images bash -c 'scripts/images.sh >"$1"' images "$images"
# the local images, unless the environment names others
while IFS= read -r line; do
  name=${line%%=*}
  [ -n "${!name:-}" ] || export "$line"
done <"$images"
mkdir -p bin
# the same build as the image's (scripts/images.sh tool), so it comes from the build cache
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
phase build env CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" -o bin/ziti-bootstrap ./cmd/ziti-bootstrap
phase up bin/ziti-bootstrap up --dev "$@"
echo "up: converged. Re-run: scripts/up.sh (no change is made)   Remove: bin/ziti-bootstrap down [--volumes]" >&2
