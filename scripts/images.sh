#!/usr/bin/env bash
# Builds the local images the stack tests deploy, without any registry: the real servers from the binaries that
# scripts/build-servers.sh caches, and from Debian packages. Each image keeps the interface of its upstream image
# (entrypoint, paths, users, environment variables), so the stack files in stacks/ run unchanged on either.
#
#   zb-local/spire-server:<v>   FROM scratch + static spire-server (layout and uid 1000 of ghcr.io/spiffe/spire-server)
#   zb-local/spire-agent:<v>    FROM scratch + static spire-agent  (layout and uid 0 of ghcr.io/spiffe/spire-agent)
#                               for SPIRE_VERSION and SPIRE_PREVIOUS_VERSION (printed as SPIRE_PREVIOUS_*_IMAGE)
#   zb-local/debian:bookworm    debootstrap minbase + CA certificates (tarball cached in $ZB_CACHE); test services
#   zb-local/postgres:15        minbase + PostgreSQL 15 + an entrypoint with the official postgres image's variables
#   zb-local/keycloak:<v>       minbase + Java 17 + the Keycloak distribution (entrypoint /opt/keycloak/bin/kc.sh, uid 1000)
#                               for KEYCLOAK_VERSION and KEYCLOAK_NEXT_VERSION (printed as KEYCLOAK_NEXT_IMAGE)
#   zb-local/ziti-controller:<v>, zb-local/ziti-router:<v>
#                               minbase + static ziti + OpenZiti's own entrypoint/bootstrap scripts (from the ziti
#                               module), as in docker.io/openziti/ziti-{controller,router}. Not FROM scratch: those
#                               entrypoints are bash, and so is reading a Swarm secret into ZITI_PWD.
#   zb-local/ziti-bootstrap:<h> ziti-bootstrap itself, built from this checkout with the repository's Dockerfile
#                               (FROM scratch); the tag is a hash of the binary, so an unchanged tool keeps its tag
#                               and an unchanged bootstrap job is not run again.
#   zb-local/ziti-bootstrap-backup:<h>
#                               the same binary on zb-local/postgres (Dockerfile.backup): the scheduled backup service
#   zb-testbed/node:bookworm    a Docker Engine node of the multi-node test bed (`testbed up swarm3`): debootstrap
#                               minbase + Debian's docker.io (the host's 20.10), tarball cached in $ZB_CACHE. Not a
#                               zb-local/ image: the test bed loads the zb-local/ images into its nodes, not this one.
#
# The Debian-based images are one layer each, on the smallest root filesystem each needs (see build_flat): the
# multi-node test bed's engines store every layer as a full copy (vfs).
# An image is skipped when its tag exists with the same inputs (label org.ziti-bootstrap.inputs); FORCE=1 rebuilds.
# Usage: scripts/images.sh [spire|base|postgres|keycloak|ziti|tool|node ...]   (no argument: all but node)
# Prints the stack variables that select these images (NAME=IMAGE, one per line) on stdout; logs go to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache=${ZB_CACHE:-/var/cache/ziti-bootstrap}
prefix=${ZB_IMAGE_PREFIX:-zb-local}
ziti_v=${ZITI_VERSION#v}
gomodcache=$(go env GOMODCACHE 2>/dev/null || echo "${HOME}/go/pkg/mod")

log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# inputs_hash: a short hash of the build inputs read from stdin.
inputs_hash() { sha256sum | cut -c1-16; }

# fresh TAG HASH: true when TAG exists and was built from the same inputs.
fresh() {
  [ "${FORCE:-0}" = 1 ] && return 1
  local have
  have=$(docker image inspect -f '{{index .Config.Labels "org.ziti-bootstrap.inputs"}}' "$1" 2>/dev/null) || return 1
  [ "$have" = "$2" ]
}

# build TAG HASH DIR: docker build of DIR (its Dockerfile) with the inputs label.
build() {
  local tag=$1 hash=$2 dir=$3 t0=$SECONDS
  docker build -q --label "org.ziti-bootstrap.inputs=$hash" -t "$tag" "$dir" >/dev/null
  log "$tag: built in $((SECONDS - t0)) s"
}

need_bin() { [ -x "$1" ] || die "$1 missing: run scripts/build-servers.sh ${2} first"; }

# spire_images VERSION VAR: the server and agent images of one SPIRE version; prints their stack variables
# VARSERVER_IMAGE and VARAGENT_IMAGE (SPIRE_ for the current version, SPIRE_PREVIOUS_ for the previous one).
spire_images() {
  local version=$1 var=$2 v=${1#v}
  local bin=$cache/spire-$version/bin
  need_bin "$bin/spire-server" spire
  need_bin "$bin/spire-agent" spire
  for what in server agent; do
    local tag=$prefix/spire-$what:$v uid=0
    [ $what = server ] && uid=1000
    local hash
    hash=$( (echo "uid $uid"; sed -n '/^spire_images/,/^}/p' "$0"; cat "$bin/spire-$what") | inputs_hash)
    if fresh "$tag" "$hash"; then log "$tag: up to date"; continue; fi
    if ldd "$bin/spire-$what" >/dev/null 2>&1; then die "$bin/spire-$what is dynamically linked: FROM scratch needs a static build"; fi
    local ctx
    ctx=$(mktemp -d)
    mkdir -p "$ctx/root/opt/spire/bin" "$ctx/root/etc/spire/$what" "$ctx/root/run/spire/$what/public" \
      "$ctx/root/run/spire/$what/private" "$ctx/root/tmp/spire-$what/public" "$ctx/root/tmp/spire-$what/private" \
      "$ctx/root/var/lib/spire/$what"
    cp "$bin/spire-$what" "$ctx/root/opt/spire/bin/"
    chmod -R 755 "$ctx/root"
    # /etc/ssl/certs: the upstream images carry a CA bundle (for upstream authorities reached over HTTPS)
    mkdir -p "$ctx/root/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/root/etc/ssl/certs/"
    cat >"$ctx/Dockerfile" <<EOF
FROM scratch
COPY --chown=$uid:$uid root/ /
WORKDIR /opt/spire
USER $uid:$uid
ENTRYPOINT ["/opt/spire/bin/spire-$what", "run"]
EOF
    build "$tag" "$hash" "$ctx"
    rm -rf "$ctx"
  done
  echo "${var}SERVER_IMAGE=$prefix/spire-server:$v"
  echo "${var}AGENT_IMAGE=$prefix/spire-agent:$v"
}

# the current SPIRE, and the previous one when it is built (SPIRE_PREVIOUS_*: the upgrade tests start from it;
# scripts/build-servers.sh spire_previous, which scripts/test.sh runs and scripts/up.sh does not need)
image_spire() {
  spire_images "$SPIRE_VERSION" SPIRE_
  if [ -x "$cache/spire-$SPIRE_PREVIOUS_VERSION/bin/spire-server" ]; then
    spire_images "$SPIRE_PREVIOUS_VERSION" SPIRE_PREVIOUS_
  else
    log "SPIRE $SPIRE_PREVIOUS_VERSION not built: no SPIRE_PREVIOUS_* images (scripts/build-servers.sh spire_previous)"
  fi
}

# debootstrap_tar NAME PACKAGES HASH: the path of a cached tarball of a debootstrap minbase bookworm root with
# PACKAGES installed (recommends left out, apt lists and caches removed); built when missing. Prints the path.
debootstrap_tar() {
  local name=$1 packages=$2 hash=$3 tarball root t0=$SECONDS
  tarball=$cache/$name-$hash.tar
  if [ -s "$tarball" ]; then echo "$tarball"; return 0; fi
  command -v debootstrap >/dev/null || {
    log "installing debootstrap"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  }
  root=$(mktemp -d /var/tmp/zb-$name.XXXXXX)
  chmod 755 "$root" # it becomes the image's /
  log "$name: debootstrap minbase bookworm into $root"
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
  # no daemons started by postinst scripts; no default PostgreSQL cluster (the entrypoint makes its own)
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  mkdir -p "$root/etc/postgresql-common"
  echo "create_main_cluster = false" >"$root/etc/postgresql-common/createcluster.conf"
  mount --bind /proc "$root/proc"
  trap 'umount "$root/proc" 2>/dev/null || true' EXIT
  log "$name: installing $packages"
  chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive bash -c \
    "apt-get update -qq && apt-get install -y -qq --no-install-recommends $packages >/dev/null && apt-get clean && rm -rf /var/lib/apt/lists/*"
  umount "$root/proc"
  # documentation, manuals and translations: nothing in the images reads them
  rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
    "$root"/var/cache/debconf/*-old "$root"/var/log/*.log "$root"/var/log/apt/*
  trap - EXIT
  tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$root"
  log "$name: root filesystem cached in $tarball in $((SECONDS - t0)) s"
  echo "$tarball"
}

node_tag=zb-testbed/node:bookworm
node_packages="docker.io iptables ca-certificates procps iproute2"

# The test bed's Docker Engine node. dockerd's flags (vfs, addresses) are the test bed's (internal/testbed/swarm.go).
image_node() {
  local hash tarball t0=$SECONDS
  hash=$(echo "debootstrap minbase bookworm: $node_packages" | inputs_hash)
  if fresh "$node_tag" "$hash"; then log "$node_tag: up to date"; echo "ZB_TESTBED_NODE_IMAGE=$node_tag"; return 0; fi
  tarball=$(debootstrap_tar node "$node_packages" "$hash")
  docker import -c "LABEL org.ziti-bootstrap.inputs=$hash" -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["dockerd"]' "$tarball" "$node_tag" >/dev/null
  log "$node_tag: imported in $((SECONDS - t0)) s"
  echo "ZB_TESTBED_NODE_IMAGE=$node_tag"
}

# The Debian-based images are built on the smallest root filesystem each needs, and flattened to one layer
# (build_flat): the multi-node test bed's engines use the vfs storage driver, which stores every layer of an
# image as a full copy of the file system up to it, so a five-layer image on a 650 MB base cost 3 GB per node.
base_tag=$prefix/debian:bookworm            # minbase + CA certificates: the ziti images, test services (SleepImage)
base_packages="ca-certificates"
pg_base_tag=zb-build/debian-postgres:bookworm # + PostgreSQL 15 (not loaded into test bed nodes: not zb-local/)
pg_base_packages="postgresql-15 ca-certificates"
jre_base_tag=zb-build/debian-jre:bookworm   # + Java 17 (Keycloak)
jre_base_packages="openjdk-17-jre-headless ca-certificates"

# import_rootfs TAG NAME PACKAGES: TAG from a cached debootstrap root with PACKAGES (one layer).
import_rootfs() {
  local tag=$1 name=$2 packages=$3 hash tarball t0=$SECONDS
  hash=$(echo "debootstrap minbase bookworm slim: $packages" | inputs_hash)
  if fresh "$tag" "$hash"; then log "$tag: up to date"; return 0; fi
  tarball=$(debootstrap_tar "$name" "$packages" "$hash")
  docker import -c "LABEL org.ziti-bootstrap.inputs=$hash" -c "ENV PATH=$std_path" -c 'CMD ["/bin/bash"]' "$tarball" "$tag" >/dev/null
  log "$tag: imported in $((SECONDS - t0)) s"
}
std_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

image_base() { import_rootfs "$base_tag" debian-bookworm "$base_packages"; }

# build_flat TAG DIR BASE: like build, for a Dockerfile whose last stage is `FROM scratch` + `COPY --from=build / /`
# + the image's configuration: one layer. The inputs hash covers the Dockerfile, its files and the base's ID.
build_flat() {
  local tag=$1 dir=$2 base=$3 hash
  hash=$( (docker image inspect -f '{{.Id}}' "$base"; cd "$dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 cat) | inputs_hash)
  if fresh "$tag" "$hash"; then log "$tag: up to date"; return 0; fi
  build "$tag" "$hash" "$dir"
}

image_postgres() {
  import_rootfs "$pg_base_tag" debian-postgres "$pg_base_packages"
  local tag=$prefix/postgres:15 ctx
  ctx=$(mktemp -d)
  cat >"$ctx/docker-entrypoint.sh" <<'EOF'
#!/usr/bin/env bash
# A small stand-in for the official postgres image's entrypoint, with its variables (POSTGRES_USER, POSTGRES_DB,
# POSTGRES_PASSWORD, each also as *_FILE) and data directory ($PGDATA), for images built without a registry.
set -Eeuo pipefail
file_env() {
  local var=$1 file="${1}_FILE"
  if [[ -n "${!file:-}" ]]; then export "$var=$(<"${!file}")"; fi
}
if [[ "${1:-}" != postgres ]]; then exec "$@"; fi
if [[ $(id -u) == 0 ]]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi
file_env POSTGRES_USER
file_env POSTGRES_PASSWORD
file_env POSTGRES_DB
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
  if [[ -z "${POSTGRES_PASSWORD:-}" ]]; then
    echo "error: database is uninitialized and POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) is not set" >&2
    exit 1
  fi
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-local=trust --auth-host=scram-sha-256 -D "$PGDATA"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
  if [[ "$POSTGRES_DB" != postgres ]]; then
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -c "CREATE DATABASE \"$POSTGRES_DB\""
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop
  echo "PostgreSQL init process complete; ready for start up."
fi
shift
exec postgres -c listen_addresses='*' "$@"
EOF
  chmod 755 "$ctx/docker-entrypoint.sh"
  cat >"$ctx/Dockerfile" <<EOF
FROM $pg_base_tag AS build
RUN mkdir -p /var/lib/postgresql/data /var/run/postgresql && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql && chmod 700 /var/lib/postgresql/data
# JIT compilation is optional (PostgreSQL runs queries without it when its LLVM provider is absent): 131 MB less
RUN rm -rf /usr/lib/x86_64-linux-gnu/libLLVM-* /usr/lib/postgresql/15/lib/bitcode /usr/lib/postgresql/15/lib/llvmjit*
COPY docker-entrypoint.sh /usr/local/bin/
FROM scratch
COPY --from=build / /
ENV PATH=/usr/lib/postgresql/15/bin:$std_path PGDATA=/var/lib/postgresql/data
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
EOF
  build_flat "$tag" "$ctx" "$pg_base_tag"
  rm -rf "$ctx"
  echo "POSTGRES_IMAGE=$tag"
}

# keycloak_image VERSION VAR: the Keycloak image of one version; prints its stack variable VARIMAGE (KEYCLOAK_ for
# the current version, KEYCLOAK_NEXT_ for the one the upgrade tests go to).
keycloak_image() {
  local version=$1 var=$2
  local dist=$cache/keycloak-$version tag=$prefix/keycloak:$version ctx
  [ -f "$dist/.done" ] || die "$dist missing: run scripts/build-servers.sh keycloak first"
  ctx=$(mktemp -d)
  cp -a "$dist" "$ctx/keycloak"
  rm -f "$ctx/keycloak/.done"
  # Like quay.io/keycloak/keycloak: /opt/keycloak, uid 1000, entrypoint kc.sh, /opt/keycloak/data made and owned by
  # that user (a config mounted below it, the realm file up ships, would otherwise make Docker create it as root:
  # Keycloak then cannot write its transaction logs there, and waits 3 x 10 s at its start). Pre-built for PostgreSQL with health
  # enabled, so `start` (which rebuilds only when build options differ) starts without an augmentation step.
  cat >"$ctx/Dockerfile" <<EOF
FROM $jre_base_tag AS build
RUN groupadd -g 1000 keycloak && useradd -u 1000 -g 1000 -d /opt/keycloak -M -s /usr/sbin/nologin keycloak
COPY --chown=1000:1000 keycloak/ /opt/keycloak/
USER 1000
ENV LANG=en_US.UTF-8
RUN /opt/keycloak/bin/kc.sh build --db=postgres --health-enabled=true >/dev/null && mkdir -p /opt/keycloak/data
FROM scratch
COPY --from=build / /
ENV PATH=$std_path LANG=en_US.UTF-8
USER 1000
EXPOSE 8080 9000
ENTRYPOINT ["/opt/keycloak/bin/kc.sh"]
EOF
  build_flat "$tag" "$ctx" "$jre_base_tag"
  rm -rf "$ctx"
  echo "${var}IMAGE=$tag"
  # built for PostgreSQL with health enabled: the stack starts it --optimized (no start-up build check)
  [ "$var" = KEYCLOAK_ ] && echo "KEYCLOAK_OPTIMIZED=true"
  return 0
}

# the current Keycloak, and the next one when it is downloaded (KEYCLOAK_NEXT_IMAGE: the upgrade tests go to it;
# scripts/build-servers.sh keycloak_next, which scripts/test.sh runs and scripts/up.sh does not need)
image_keycloak() {
  import_rootfs "$jre_base_tag" debian-jre "$jre_base_packages"
  keycloak_image "$KEYCLOAK_VERSION" KEYCLOAK_
  if [ -f "$cache/keycloak-$KEYCLOAK_NEXT_VERSION/.done" ]; then
    keycloak_image "$KEYCLOAK_NEXT_VERSION" KEYCLOAK_NEXT_
  else
    log "Keycloak $KEYCLOAK_NEXT_VERSION not downloaded: no KEYCLOAK_NEXT_IMAGE (scripts/build-servers.sh keycloak_next)"
  fi
}

image_ziti() {
  image_base
  local bin=$cache/ziti-$ZITI_VERSION/bin/ziti src=$gomodcache/github.com/openziti/ziti@$ZITI_VERSION/dist/dist-packages/linux
  need_bin "$bin" ziti
  [ -f "$src/openziti-controller/entrypoint.bash" ] || die "$src missing: the ziti module is not in the module cache (scripts/build-servers.sh ziti fetches it)"
  for what in controller router; do
    local tag=$prefix/ziti-$what:$ziti_v ctx
    ctx=$(mktemp -d)
    cp "$bin" "$ctx/ziti"
    cp "$src/openziti-$what/entrypoint.bash" "$src/openziti-$what/bootstrap.bash" "$ctx/"
    chmod 755 "$ctx"/*.bash "$ctx/ziti"
    # Environment as in dist/docker-images/ziti-{controller,router}/Dockerfile of the same ziti version.
    if [ $what = controller ]; then
      env='ZITI_CTRL_BOOTSTRAP_BASH=/bootstrap.bash ZITI_HOME=/ziti-controller ZITI_TIME_FORMAT=utc ZITI_BOOTSTRAP=true \
ZITI_BOOTSTRAP_PKI=true ZITI_BOOTSTRAP_CONFIG=true ZITI_BOOTSTRAP_DATABASE=true ZITI_BOOTSTRAP_CONSOLE=true \
ZITI_PKI_ROOT=pki ZITI_CA_FILE=root ZITI_INTERMEDIATE_FILE=intermediate ZITI_SERVER_FILE=server ZITI_CLIENT_FILE=client \
ZITI_NETWORK_NAME=ctrl ZITI_AUTO_RENEW_CERTS=true ZITI_CTRL_ADVERTISED_PORT=1280 ZITI_CTRL_DATABASE_FILE=bbolt.db ZITI_USER=admin'
    else
      env='ZITI_ROUTER_BOOTSTRAP_BASH=/bootstrap.bash ZITI_HOME=/ziti-router ZITI_TIME_FORMAT=utc ZITI_BOOTSTRAP=true \
ZITI_BOOTSTRAP_CONFIG=true ZITI_BOOTSTRAP_ENROLLMENT=true ZITI_ROUTER_NAME=router ZITI_ROUTER_TYPE=edge \
ZITI_ROUTER_PORT=3022 ZITI_ROUTER_MODE=host ZITI_AUTO_RENEW_CERTS=true'
    fi
    cat >"$ctx/Dockerfile" <<EOF
FROM $base_tag AS build
RUN groupadd -g 2171 ziggy && useradd -u 2171 -g 2171 -d /home/ziggy -m -s /bin/bash ziggy \
 && mkdir -p /ziti-$what && chown 2171:2171 /ziti-$what
COPY ziti /usr/local/bin/ziti
COPY bootstrap.bash entrypoint.bash /
FROM scratch
COPY --from=build / /
ENV PATH=$std_path HOME=/home/ziggy $env
WORKDIR /ziti-$what
USER ziggy
ENTRYPOINT ["/entrypoint.bash"]
EOF
    build_flat "$tag" "$ctx" "$base_tag"
    rm -rf "$ctx"
  done
  echo "ZITI_CONTROLLER_IMAGE=$prefix/ziti-controller:$ziti_v"
  echo "ZITI_ROUTER_IMAGE=$prefix/ziti-router:$ziti_v"
  # the admin console is a separate web application the upstream image carries and these images do not
  echo "ZITI_CONSOLE=false"
}

image_tool() {
  local root ctx hash tag version t0=$SECONDS
  root=$(cd "$here/.." && pwd)
  ctx=$(mktemp -d)
  mkdir -p "$ctx/dist"
  version=$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)
  (cd "$root" && GONOSUMDB=github.com/openziti,github.com/spiffe GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0 \
    go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$ctx/dist/ziti-bootstrap" ./cmd/ziti-bootstrap)
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/dist/"
  cp "$root/Dockerfile" "$root/.dockerignore" "$ctx/"
  hash=$(cat "$ctx/Dockerfile" "$ctx/dist/ziti-bootstrap" "$ctx/dist/ca-certificates.crt" | inputs_hash)
  tag=$prefix/ziti-bootstrap:${hash:0:12}
  if fresh "$tag" "$hash"; then log "$tag: up to date (binary built in $((SECONDS - t0)) s)"; else build "$tag" "$hash" "$ctx"; fi
  echo "ZB_IMAGE=$tag"
  # the backup image: the same binary on the local PostgreSQL image (pg_dump, pg_restore, psql)
  image_postgres >/dev/null
  cp "$root/Dockerfile.backup" "$ctx/Dockerfile"
  hash=$( (docker image inspect -f '{{.Id}}' "$prefix/postgres:15"; cat "$ctx/Dockerfile" "$ctx/dist/ziti-bootstrap") | inputs_hash)
  tag=$prefix/ziti-bootstrap-backup:${hash:0:12}
  if fresh "$tag" "$hash"; then log "$tag: up to date"; else
    docker build -q --build-arg "BASE=$prefix/postgres:15" --label "org.ziti-bootstrap.inputs=$hash" -t "$tag" "$ctx" >/dev/null
    log "$tag: built"
  fi
  rm -rf "$ctx"
  echo "ZB_BACKUP_IMAGE=$tag"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(spire base postgres keycloak ziti tool)
for t in "${targets[@]}"; do
  case $t in
    spire | base | postgres | keycloak | ziti | tool | node) "image_$t" ;;
    *) die "unknown image $t (known: spire base postgres keycloak ziti tool node)" ;;
  esac
done
