#!/usr/bin/env bash
# Entrypoint of the edge router of stack ${ZB_STACK_OPENZITI}: enrols the router when its volume holds no identity,
# then hands over to the image's own entrypoint (/entrypoint.bash), which writes the config and runs the router.
# The router has no admin credential: /opt/zb/ziti-bootstrap (copied onto this node by the SPIRE agent launcher)
# fetches the router's SVID from the node's SPIRE agent and trades it at the router-enrol service for a one-time
# enrolment token (the router is created, or re-enrolled when it exists: this volume lost its identity).
# Interpolated by ziti-bootstrap like the stack file: $$ is a literal $.
set -euo pipefail
home="$${ZITI_HOME:-/ziti-router}"
if [[ ! -s "$${home}/$${ZITI_ROUTER_NAME}.cert" ]]; then
  echo "enrolling edge router $${ZITI_ROUTER_NAME} through $${ZB_ROUTER_ENROL_URL}"
  /opt/zb/ziti-bootstrap router-enrol --server "$${ZB_ROUTER_ENROL_URL}" --server-id "$${ZB_ROUTER_ENROL_SERVER_ID}" \
    --out "$${home}/enroll.jwt" --reenrol
  export ZITI_ENROLL_TOKEN="$${home}/enroll.jwt"
fi
exec /entrypoint.bash "$$@"
