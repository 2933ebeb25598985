#!/usr/bin/env bash
# Installs the Debian packages the test bed needs (idempotent: skips what is present).
set -euo pipefail
need=()
# docker-compose: Debian's compose (1.29, python), for the rendered compose project (render --compose) and its
# end-to-end test; about 11 s to install cold.
for p in docker.io docker-compose postgresql openssl ca-certificates; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
command -v mvn >/dev/null 2>&1 || need+=(maven)   # downloads the Keycloak distribution
if [ ${#need[@]} -gt 0 ]; then
  echo "[deps] installing: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "[deps] ok: docker.io docker-compose postgresql openssl" >&2
