#!/usr/bin/env bash
# Entrypoint of the edge router of stack ${ZB_STACK_OPENZITI}: enrols the router on its first start, then hands over
# to the image's own entrypoint (/entrypoint.bash), which writes the config and runs the router.
# Interpolated by ziti-bootstrap like the stack file: $$ is a literal $.
set -euo pipefail
home="$${ZITI_HOME:-/ziti-router}"
if [[ ! -s "$${home}/$${ZITI_ROUTER_NAME}.cert" ]]; then
  ctrl="https://$${ZITI_CTRL_ADVERTISED_ADDRESS}:$${ZITI_CTRL_ADVERTISED_PORT}"
  echo "enrolling edge router $${ZITI_ROUTER_NAME} with $${ctrl}"
  # the controller may still be starting: try for a while (the service restarts us after that)
  for i in $$(seq 1 30); do
    if ziti edge login "$${ctrl}" -y -u "$${ZITI_USER}" -p "$$(< /run/secrets/ziti_admin_password)" >/dev/null; then break; fi
    [[ $${i} -lt 30 ]] || exit 1
    sleep 5
  done
  # a router left over from an enrolment that did not finish (its identity is not in our volume) is recreated
  ziti edge delete edge-router "$${ZITI_ROUTER_NAME}" >/dev/null 2>&1 || true
  ziti edge create edge-router "$${ZITI_ROUTER_NAME}" --tunneler-enabled --role-attributes public \
    --jwt-output-file "$${home}/enroll.jwt"
  export ZITI_ENROLL_TOKEN="$${home}/enroll.jwt"
fi
exec /entrypoint.bash "$$@"
