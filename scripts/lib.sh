# Shared helpers for the project's scripts (sourced).
export GONOSUMDB=github.com/openziti,github.com/spiffe GOTOOLCHAIN=local
export ZB_CACHE=${ZB_CACHE:-/var/cache/ziti-bootstrap}
# phase NAME CMD...: runs CMD and prints how long it took; a failure stops the script.
phase() {
  local name=$1; shift
  local t0=$SECONDS
  echo "=== phase $name: start $(date -u +%H:%M:%S)" >&2
  if "$@"; then
    echo "=== phase $name: ok in $((SECONDS - t0)) s" >&2
  else
    local rc=$?
    echo "=== phase $name: FAILED (exit $rc) after $((SECONDS - t0)) s" >&2
    return $rc
  fi
}
