#!/usr/bin/env bash
# Builds the real servers of the test bed from their Go modules and caches the binaries by version in
# $ZB_CACHE (default /var/cache/ziti-bootstrap), so a warm machine skips the builds.
# Usage: scripts/build-servers.sh [ziti|spire|spire_previous|weed|keycloak|keycloak_testbed|keycloak_next|task ...]   (no argument: all but task)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache=${ZB_CACHE:-/var/cache/ziti-bootstrap}
mkdir -p "$cache"
export GONOSUMDB=github.com/openziti,github.com/spiffe GOFLAGS=-mod=mod GOTOOLCHAIN=local

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# cpu_s: sets cpu to the CPU seconds (user+sys) of this (sub)shell's children so far, from bash's `times` (run
# in this shell: a command substitution's fork has no children).
cpu_s() {
  local f
  f=$(mktemp)
  times >"$f"
  cpu=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }; printf "%d", t }' "$f")
  rm -f "$f"
}

# gotool NAME VERSION MODULE PKG... [--replace LINE] [--cgo-static] [--stamp PKG]: builds PKGs as tools of a scratch
# module into $cache/NAME-VERSION/bin. --stamp PKG sets PKG's Version, Revision and BuildDate (as the project's
# release builds do) to VERSION, the module's commit and its time. The cache key is $dest/.done: it holds what
# changes a build besides the version (the stamp), so a changed recipe rebuilds.
# Failures are checked command by command: callers run it where errexit does not apply (if, ||).
# $step says what to do: "prepare" (the scratch module in $scratch/$target, its modules downloaded: the network),
# "compile" (go build in it: the cores), or both (unset).
gotool() {
  local name=$1 version=$2 module=$3; shift 3
  local dest="$cache/$name-$version" pkgs=() extra=() cgo=0 ldflags="" stamp="" recipe=""
  while [ $# -gt 0 ]; do
    case $1 in
      --replace) extra+=("replace $2"); shift 2 ;;
      --cgo-static) cgo=1; ldflags="-linkmode external -extldflags -static"; shift ;;
      --stamp) stamp=$2; recipe="stamp $2 Version Revision BuildDate"; shift 2 ;;
      *) pkgs+=("$1"); shift ;;
    esac
  done
  if [ -f "$dest/.done" ] && [ "$(cat "$dest/.done")" = "$recipe" ]; then
    [ "${step:-}" = prepare ] || log "$name $version: cached in $dest"
    return 0
  fi
  local work=$scratch/${target:-$name}
  if [ "${step:-}" != compile ]; then
    local t0=$SECONDS
    rm -rf "$work"
    mkdir -p "$work"
    log "$name $version: downloading the modules of ${pkgs[*]}"
    (
      cd "$work"
      go mod init zb-tools-$name >/dev/null 2>&1
      # replace lines first: go get resolves every import, and a replaced module may be the only one served
      for l in "${extra[@]}"; do echo "$l" >>go.mod; done
      for p in "${pkgs[@]}"; do go get -tool "$p@$version" >/dev/null || exit 1; done
      go mod tidy >/dev/null 2>&1 || true
      if [ -n "$stamp" ]; then
        local info rev date
        info=$(go mod download -json "$module@$version") || exit 1
        rev=$(sed -n 's/.*"Hash": *"\([0-9a-f]*\)".*/\1/p' <<<"$info" | head -1)
        date=$(go list -m -f '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' "$module" 2>/dev/null || true)
        ldflags+=" -X $stamp.Version=$version -X $stamp.Revision=${rev:-unknown} -X $stamp.BuildDate=${date:-unknown}"
      fi
      printf '%s' "$ldflags" >.ldflags
    ) || { log "$name $version: FAILED to download its modules"; return 1; }
    log "$name $version: modules in $((SECONDS - t0)) s"
  fi
  [ "${step:-}" != prepare ] || return 0
  local t1=$SECONDS
  log "$name $version: compiling ${pkgs[*]}"
  (
    cd "$work"
    mkdir -p "$dest/bin"
    CGO_ENABLED=$cgo go build -trimpath -ldflags "-s -w $(cat .ldflags)" -o "$dest/bin/" "${pkgs[@]}" || exit 1
    local cpu
    cpu_s
    log "$name $version: built in $((SECONDS - t1)) s, CPU $cpu s (user+sys)"
  ) || { log "$name $version: FAILED to build"; return 1; }
  rm -rf "$work"
  printf '%s' "$recipe" >"$dest/.done"
}

build_ziti()  { gotool ziti "$ZITI_VERSION" github.com/openziti/ziti github.com/openziti/ziti/ziti \
                  --stamp github.com/openziti/ziti/common/version \
                  --replace 'github.com/michaelquigley/pfxlog => github.com/michaelquigley/pfxlog v0.6.10'; }
# SPIRE 1.15 requires github.com/Keyfactor/ejbca-go-client-sdk v1.1.0 (its ejbca UpstreamAuthority plugin), which
# the module proxy does not serve; v1.0.2, which 1.13 uses, serves that plugin too.
build_spire() { gotool spire "$SPIRE_VERSION" github.com/spiffe/spire --cgo-static \
                  --replace 'github.com/Keyfactor/ejbca-go-client-sdk => github.com/Keyfactor/ejbca-go-client-sdk v1.0.2' \
                  github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire/cmd/spire-agent; }
build_spire_previous() { gotool spire "$SPIRE_PREVIOUS_VERSION" github.com/spiffe/spire --cgo-static \
                  github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire/cmd/spire-agent; }
build_weed()  { gotool weed "$SEAWEEDFS_VERSION" github.com/seaweedfs/seaweedfs github.com/seaweedfs/seaweedfs/weed; }
build_task()  { gotool task "$TASK_VERSION" github.com/go-task/task/v3 github.com/go-task/task/v3/cmd/task; }
# keycloak_dist VERSION: the Keycloak distribution VERSION from Maven Central, unpacked into $cache/keycloak-VERSION.
keycloak_dist() {
  local version=$1 dest="$cache/keycloak-$1"
  if [ -f "$dest/.done" ]; then log "keycloak $version: cached in $dest"; return 0; fi
  local t0=$SECONDS work
  work=$(mktemp -d)
  log "keycloak $version: downloading the distribution from Maven Central"
  mvn -q -B dependency:copy -Dartifact="org.keycloak:keycloak-quarkus-dist:$version:tar.gz" \
    -DoutputDirectory="$work" >/dev/null
  mkdir -p "$dest"
  tar -C "$dest" --strip-components=1 -xzf "$work"/keycloak-quarkus-dist-*.tar.gz
  rm -rf "$work"
  touch "$dest/.done"
  log "keycloak $version: ready in $((SECONDS - t0)) s"
}
# keycloak_built VERSION: a copy of the distribution built for the test bed's Keycloaks (kc.sh build: PostgreSQL,
# health), in $cache/keycloak-VERSION-pg; they start --optimized, without the Quarkus build every start-dev makes
# (about 50 s of CPU each, minutes on a loaded machine).
keycloak_built() {
  local version=$1 dest="$cache/keycloak-$1-pg"
  if [ -f "$dest/.done" ]; then log "keycloak $version (built for PostgreSQL): cached in $dest"; return 0; fi
  local t0=$SECONDS
  rm -rf "$dest" && cp -a "$cache/keycloak-$version" "$dest" && rm -f "$dest/.done"
  "$dest/bin/kc.sh" build --db=postgres --health-enabled=true >/dev/null
  touch "$dest/.done"
  log "keycloak $version: built for PostgreSQL in $((SECONDS - t0)) s"
}
build_keycloak() { keycloak_dist "$KEYCLOAK_VERSION"; }
# the test bed's Keycloaks (scripts/test.sh builds it, scripts/up.sh does not need it)
build_keycloak_testbed() { keycloak_dist "$KEYCLOAK_VERSION" && keycloak_built "$KEYCLOAK_VERSION"; }
# the Keycloak the upgrade tests go to (KEYCLOAK_NEXT_*; scripts/test.sh builds it, scripts/up.sh does not need it)
build_keycloak_next() { keycloak_dist "$KEYCLOAK_NEXT_VERSION"; }

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(keycloak keycloak_testbed keycloak_next ziti spire spire_previous weed)   # task: on demand (scripts/build-servers.sh task)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# The Go builds run in two lanes (one per core; go build keeps both busy), one build after another in each lane,
# so that the second finds what the first compiled in the build cache: the standard library and the modules they
# share, compiled twice when the builds ran side by side. The lanes pair the builds that share most (cgo or not:
# SPIRE's two versions). Each lane downloads its builds' modules one after another (go get fetches many modules at
# once), ahead of its compiles: cold, the first compile of each lane starts once its own modules are in (ziti's
# 170 MB, SPIRE's 380 MB), not once everyone's 1.9 GB share the network.
# fetch TARGET...: the module downloads of a lane, in order; each target ends marked prepared or failed.
fetch() {
  local t rc=0
  for t in "$@"; do
    if step=prepare target=$t "build_$t"; then touch "$scratch/$t.prepared"; else touch "$scratch/$t.failed"; rc=1; fi
  done
  return $rc
}
# lane TARGET...: compiles each target once its modules are there (a failed target does not stop the next).
lane() {
  local t rc=0
  for t in "$@"; do
    while [ ! -e "$scratch/$t.prepared" ]; do
      if [ -e "$scratch/$t.failed" ]; then rc=1; continue 2; fi
      sleep 1
    done
    step=compile target=$t "build_$t" || rc=1
  done
  return $rc
}
pids=() cgo_lane=() lane2=()
for t in "${targets[@]}"; do
  case $t in
    ziti | weed | task) lane2+=("$t") ;;
    spire | spire_previous) cgo_lane+=("$t") ;;
    *) "build_$t" & pids+=($!) ;;   # downloads
  esac
done
if [ ${#cgo_lane[@]} -gt 0 ]; then fetch "${cgo_lane[@]}" & pids+=($!); lane "${cgo_lane[@]}" & pids+=($!); fi
if [ ${#lane2[@]} -gt 0 ]; then fetch "${lane2[@]}" & pids+=($!); lane "${lane2[@]}" & pids+=($!); fi
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
exit $rc
