package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/services"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/agentlauncher"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
)

// healthcheckTimeout bounds `agent-launcher healthcheck` (it reads the files and makes two reads of the engine).
const healthcheckTimeout = 20 * time.Second

const agentLauncherLong = `Keeps one SPIRE agent running on this node as a plain Docker container with the host's PID namespace (a Swarm
service cannot have it, and SPIRE's workload attestation needs it). Run it as a global Swarm service of this image
with the node's Docker socket mounted. It creates the container (and its volumes) when missing, replaces it when its
spec changes (image, files, binds, network), starts it when stopped, then watches its events and does so again.
On SIGTERM it exits and leaves the agent running. Settings, all from the environment:

  ZB_AGENT_IMAGE          the spire-agent image (entrypoint "spire-agent run"); pulled when the node lacks it
  ZB_AGENT_CONTAINER      the agent container's name
  ZB_AGENT_NAMESPACE      label com.docker.stack.namespace of the container and its volumes
  ZB_AGENT_NETWORK        "host", or the attachable overlay the agent joins to reach spire-server
  ZB_AGENT_FILES_DIR      directory whose files (agent.conf, …) are copied to /etc/spire/agent in the container
  ZB_AGENT_SOCKET_VOLUME  volume at /run/spire/agent/public (the Workload API socket api.sock)
  ZB_AGENT_DATA_VOLUME    volume at /var/lib/spire/agent
  ZB_AGENT_BINDS          optional: HOST:CONTAINER,… read-only host binds (e.g. the Docker socket)
  ZB_TOOLS_DIR            optional: copy this executable there as ziti-bootstrap (when it differs)
  DOCKER_HOST             optional: the engine (default unix:///var/run/docker.sock)

Exit codes: 0 stopped by a signal, 2 invalid settings (the variable is named), 1 otherwise.`

func newAgentLauncherCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent-launcher",
		Short: "Keep this node's SPIRE agent running as a container with the host PID namespace (run as a global service)",
		Long:  agentLauncherLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := g.cli()
			return services.WithAgentLauncher(c, func(l *agentlauncher.Launcher) error { return services.AgentLauncher(cmd.Context(), c, l) })
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 only when this node's agent container runs the current spec and is healthy; else say why",
		Long: `The launcher service's Docker healthcheck. Exit 0 when the agent container exists, runs the current spec and
Docker reports it healthy; otherwise exit 1 with one line that says why (2: invalid settings).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return services.WithAgentLauncher(g.cli(), func(l *agentlauncher.Launcher) error {
				ctx, cancel := context.WithTimeout(cmd.Context(), healthcheckTimeout)
				defer cancel()
				if err := l.Check(ctx); err != nil {
					return exitcode.With(exitcode.Internal, err) // Docker counts any non-zero exit as a failed probe
				}
				_, err := fmt.Fprintf(g.stdout, "agent container %s: healthy, current spec\n", l.Settings.Container)
				return err
			})
		},
	})
	return cmd
}
