#!/usr/bin/env bash
# Entrypoint of the OpenZiti controller of stack ${ZB_STACK_OPENZITI}: exports the admin password from its Docker
# secret as ZITI_PWD (the image's bootstrap reads it from the environment only), then hands over to the image's own
# entrypoint (/entrypoint.bash), which makes the PKI, the config and, on the first start, the database.
#
# The image's bootstrap creates the default admin with `ziti controller edge init CONFIG --username U --password P`,
# which shows the password in the process list (`ps` on the node) while it runs. The function ziti below, exported
# to the bootstrap script, runs that one command without --password: edge init then prompts for the password and
# its confirmation on its terminal (OpenZiti v1.7.2, controller/subcmd/init.go promptPassword, which reads a
# terminal only: golang.org/x/term ReadPassword), so the command runs on a pseudo-terminal of `script` (util-linux,
# in both the upstream image and zb-local's) and the password is typed into it from a pipe, by printf (a bash
# builtin: no process carries it), with the terminal's echo off (--echo never: nothing reaches the logs). Every
# other ziti command runs unchanged.
# Interpolated by ziti-bootstrap like the stack file: $$ is a literal $.
set -euo pipefail
ZITI_PWD="$$(< /run/secrets/ziti_admin_password)"
export ZITI_PWD
ziti() {
  if [[ "$${1:-} $${2:-} $${3:-}" != "controller edge init" ]]; then
    command ziti "$$@"
    return
  fi
  shift 3
  local args=() pwd="" bin
  while (($$#)); do
    case "$$1" in
      --password | -p) pwd="$${2:-}"; shift; shift || true ;;
      --password=*) pwd="$${1#*=}"; shift ;;
      *) args+=("$$1"); shift ;;
    esac
  done
  bin="$$(type -P ziti)"
  printf '%s\n%s\n' "$${pwd}" "$${pwd}" | script --quiet --return --echo never \
    --command "$$(printf '%q ' "$${bin}" controller edge init "$${args[@]}")" /dev/null
}
export -f ziti
exec /entrypoint.bash "$$@"
